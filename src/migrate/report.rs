//! What an import did: counts per kind of record, and every rejected row and warning with its
//! file, row number and reason. Reasons never quote the row's values (they are personal data).

use serde::Serialize;
use std::collections::BTreeMap;

/// Where a record came from: file and 1-based data row (the header is row 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Where {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<usize>,
}

impl Where {
    pub fn row(file: &str, row: usize) -> Self {
        Self {
            file: file.to_owned(),
            row: Some(row),
        }
    }

    pub fn none(file: &str) -> Self {
        Self {
            file: file.to_owned(),
            row: None,
        }
    }
}

impl std::fmt::Display for Where {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.row {
            Some(r) => write!(f, "{} row {r}", self.file),
            None => f.write_str(&self.file),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(flatten)]
    pub at: Where,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Records read (valid ones; rejected rows are counted under `rejected`).
    pub read: u64,
    /// Written by this run (or, in a dry run, that would be).
    pub created: u64,
    /// Already there from an earlier run; left as they are.
    pub existing: u64,
    pub rejected: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub source: String,
    pub dry_run: bool,
    /// The imported app and a Tessera app-token for it (existing CosyncJWT app-tokens keep
    /// working once the old server key is imported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_token: Option<String>,
    pub counts: BTreeMap<String, Counts>,
    pub rejected: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

impl Report {
    pub fn new(source: &str, dry_run: bool) -> Self {
        Self {
            source: source.to_owned(),
            dry_run,
            ..Self::default()
        }
    }

    fn entry(&mut self, what: &str) -> &mut Counts {
        self.counts.entry(what.to_owned()).or_default()
    }

    pub fn read(&mut self, what: &str) {
        self.entry(what).read += 1;
    }

    pub fn created(&mut self, what: &str) {
        self.entry(what).created += 1;
    }

    pub fn existing(&mut self, what: &str) {
        self.entry(what).existing += 1;
    }

    /// A row left out, and why; counted against the kind its file holds.
    pub fn reject(&mut self, at: Where, reason: String) {
        let kind = kind_of(&at.file);
        self.entry(kind).rejected += 1;
        self.rejected.push(Problem { at, reason });
    }

    /// Something imported with a change, or not imported but not a row (a setting, a file).
    pub fn warn(&mut self, at: Where, reason: String) {
        self.warnings.push(Problem { at, reason });
    }

    /// Human-readable summary: counts, then each rejected row and warning on its own line.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{} {}\n",
            if self.dry_run {
                "dry run of import from"
            } else {
                "import from"
            },
            self.source
        );
        if let (Some(id), Some(token)) = (&self.app_id, &self.app_token) {
            out.push_str(&format!("app {id}\napp-token {token}\n"));
        }
        out.push_str(&format!(
            "{:<10} {:>8} {:>8} {:>8} {:>8}\n",
            "",
            "read",
            if self.dry_run { "would" } else { "created" },
            "existing",
            "rejected"
        ));
        for (what, c) in &self.counts {
            out.push_str(&format!(
                "{what:<10} {:>8} {:>8} {:>8} {:>8}\n",
                c.read, c.created, c.existing, c.rejected
            ));
        }
        for p in &self.rejected {
            out.push_str(&format!("rejected: {}: {}\n", p.at, p.reason));
        }
        for p in &self.warnings {
            out.push_str(&format!("warning: {}: {}\n", p.at, p.reason));
        }
        out
    }
}

/// The kind of record a file holds, by its name.
fn kind_of(file: &str) -> &'static str {
    let base = file.rsplit('/').next().unwrap_or(file);
    if base.starts_with("user") {
        "users"
    } else if base.starts_with("signup") {
        "signups"
    } else if base.starts_with("invite") {
        "invites"
    } else if base.starts_with("email-template") || base.starts_with("template") {
        "templates"
    } else if base.starts_with("app") {
        "apps"
    } else {
        "files"
    }
}
