//! Reads the CosyncJWT admin export (spec §7 "Import / export"): a zip of CSV files, or the
//! same files in a folder. `app-collection.csv` (one app, keys and secrets in clear),
//! `user-collection.csv`, `signup-collection.csv`, `invite-collection.csv`,
//! `email-template-collection.csv`; columns by header name, as the reference's csv-writer
//! wrote them. Every row is validated on its own: a bad row is reported with its file, row
//! number and reason and the rest goes on. Nothing from the archive touches the filesystem.

mod files;
mod records;

use std::collections::HashMap;
use zeroize::Zeroizing;

use files::{Row, parse_object, rows};
pub use files::{parse_time, read_files};
use records::{plan_invite, plan_signup, plan_template, plan_users};
use serde_json::Value;

use super::{ImportError, Plan, PlannedApp, PlannedKey, Report, Where, pem};
use crate::domain::settings::{AppSecrets, AppSettings, SECRET_SETTINGS};

pub const APP_FILE: &str = "app-collection.csv";
pub const USER_FILE: &str = "user-collection.csv";
pub const SIGNUP_FILE: &str = "signup-collection.csv";
pub const INVITE_FILE: &str = "invite-collection.csv";
pub const TEMPLATE_FILE: &str = "email-template-collection.csv";
const FILES: [&str; 5] = [APP_FILE, USER_FILE, SIGNUP_FILE, INVITE_FILE, TEMPLATE_FILE];

/// Largest file read (zip entries are read at most this far: no zip bomb fills memory).
const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;
/// Most entries looked at in a zip.
const MAX_ZIP_ENTRIES: usize = 1000;
/// Largest value of any field but templates and keys.
pub const MAX_FIELD_BYTES: usize = 8 * 1024;
/// Largest template body.
const MAX_TEMPLATE_BYTES: usize = 256 * 1024;

/// Options of `tessera import cosync`.
#[derive(Debug, Clone, Default)]
pub struct CosyncOptions {
    /// The app id to use when the export does not carry one the importer can read.
    pub app_id: Option<String>,
}

/// Builds the import plan from the export's files.
pub fn plan(
    files: &HashMap<&'static str, Vec<u8>>,
    options: &CosyncOptions,
    report: &mut Report,
    now: i64,
) -> Result<Plan, ImportError> {
    let empty = Vec::new();
    let file = |n: &str| files.get(n).unwrap_or(&empty);
    let app_rows = rows(
        APP_FILE,
        file(APP_FILE),
        report,
        &["appPrivateKey", "appPublicKey"],
    );
    let users = rows(USER_FILE, file(USER_FILE), report, &[]);
    let app = plan_app(&app_rows, &users, options, report, now)?;
    let locales = app.settings.locales.clone();
    let users = plan_users(&app.id, users, &locales, report, now);
    let signups = rows(SIGNUP_FILE, file(SIGNUP_FILE), report, &[])
        .into_iter()
        .filter_map(|r| plan_signup(&app.id, r, &locales, report, now))
        .collect();
    let invites = rows(INVITE_FILE, file(INVITE_FILE), report, &[])
        .into_iter()
        .filter_map(|r| plan_invite(&app.id, r, report))
        .collect();
    let templates = rows(
        TEMPLATE_FILE,
        file(TEMPLATE_FILE),
        report,
        &["htmlTemplate"],
    )
    .into_iter()
    .filter_map(|r| plan_template(&app.id, r, &locales, report, now))
    .collect();
    Ok(Plan {
        app,
        users,
        signups,
        invites,
        templates,
    })
}

pub fn valid_app_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Settings columns of `app-collection.csv` that map one to one onto Tessera's settings.
const SETTING_COLUMNS: &[&str] = &[
    "jwtEnabled",
    "anonymousLoginEnabled",
    "userNamesEnabled",
    "appleLoginEnabled",
    "appleBundleId",
    "googleLoginEnabled",
    "googleClientId",
    "emailExtension",
    "emailExtensionSenderEmail",
    "handle",
    "invitationEnabled",
    "signupEnabled",
    "signupFlow",
    "twoFactorVerification",
    "googleAppName",
    "maxUsers",
    "maxLoginAttempts",
    "passwordFilter",
    "passwordMinLength",
    "passwordMinUpper",
    "passwordMinLower",
    "passwordMinDigit",
    "passwordMinSpecial",
    "userJWTExpiration",
    "realmAppId",
    "metaDataEmail",
    "locales",
    "appData",
    "metaData",
    "metaDataInvite",
];

fn plan_app(
    app_rows: &[Row],
    users: &[Row],
    options: &CosyncOptions,
    report: &mut Report,
    now: i64,
) -> Result<PlannedApp, ImportError> {
    let Some(row) = app_rows.first() else {
        return Err(ImportError::Input(format!(
            "{APP_FILE} has no valid app row"
        )));
    };
    if app_rows.len() > 1 {
        report.warn(
            Where::none(APP_FILE),
            "more than one app row; only the first was imported".into(),
        );
    }
    // The app id: as given, else the export's own (an `appId` column, the claim of its
    // app-token, the users' `appId`). Kept, because legacy app-tokens carry it.
    let from_users = users.iter().map(|u| u.get("appId")).find(|s| !s.is_empty());
    let from_token = super::legacy::unverified_app_id(row.get("appToken"));
    let candidates = [
        options.app_id.as_deref(),
        Some(row.get("appId")).filter(|s| !s.is_empty()),
        from_token.as_deref(),
        from_users,
    ];
    let id = candidates
        .iter()
        .flatten()
        .next()
        .map(|s| s.to_string())
        .ok_or_else(|| {
            ImportError::Input(
                "the export names no app id (no appId, no readable appToken); give --app-id".into(),
            )
        })?;
    if !valid_app_id(&id) {
        return Err(ImportError::Input(
            "the app id must be 1-64 letters, digits, '-' or '_'".into(),
        ));
    }
    let private = pem::rsa_private_pkcs8(row.raw("appPrivateKey"))
        .map_err(|e| ImportError::Input(format!("{APP_FILE}: appPrivateKey: {e}")))?;
    let signer = crate::crypto::keys::RsaSigner::from_pkcs8("", &private)
        .map_err(|e| ImportError::Input(format!("{APP_FILE}: appPrivateKey: {e}")))?;
    if !row.get("appPublicKey").is_empty() {
        let public = pem::rsa_public(row.raw("appPublicKey"))
            .map_err(|e| ImportError::Input(format!("{APP_FILE}: appPublicKey: {e}")))?;
        if public.spki_der != signer.public.spki_der {
            return Err(ImportError::Input(format!(
                "{APP_FILE}: appPublicKey is not the public half of appPrivateKey"
            )));
        }
    }
    let mut settings = AppSettings::default();
    for col in SETTING_COLUMNS {
        let value = row.get(col);
        if value.is_empty() {
            continue;
        }
        let value = match *col {
            "locales" => locales_json(value),
            "metaData" | "metaDataInvite" => match meta_fields_json(value) {
                Ok(v) => v,
                Err(e) => {
                    report.warn(row.at.clone(), format!("setting {col} not imported: {e}"));
                    continue;
                }
            },
            "appData" if parse_object(value).is_err() => {
                report.warn(
                    row.at.clone(),
                    "setting appData not imported: not a JSON object".into(),
                );
                continue;
            }
            _ => value.to_owned(),
        };
        match settings.set(col, &value) {
            Ok(next) => settings = next,
            Err(e) => report.warn(row.at.clone(), format!("setting {col} not imported: {e}")),
        }
    }
    let mut secrets = AppSecrets::default();
    for name in SECRET_SETTINGS {
        let value = row.get(name);
        if !value.is_empty()
            && let Err(e) = secrets.set(name, value)
        {
            report.warn(row.at.clone(), format!("{name} not imported: {e}"));
        }
    }
    if !row.get("emailExtensionAPIKey").is_empty() {
        report.warn(
            row.at.clone(),
            "emailExtensionAPIKey (SendGrid) not imported: Tessera sends mail through its own SMTP settings"
                .into(),
        );
    }
    let status = match row.get("status") {
        "" | "active" => "active",
        "inactive" => "inactive",
        "migrated" => "migrated",
        other => {
            report.warn(
                row.at.clone(),
                format!(
                    "unknown app status {:?}; imported as active",
                    other.escape_debug().to_string()
                ),
            );
            "active"
        }
    };
    let name = row.get("name");
    let name =
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            report.warn(
                row.at.clone(),
                "app name missing or invalid; named after its id".into(),
            );
            format!("imported {id}")
        } else {
            name.to_owned()
        };
    let created_at = parse_time(row.get("createdAt")).unwrap_or(now);
    Ok(PlannedApp {
        id,
        name,
        status: status.into(),
        settings,
        secrets,
        keys: vec![PlannedKey {
            pkcs8: Zeroizing::new(private),
            status: "active".into(),
            created_at,
        }],
        created_at,
        updated_at: parse_time(row.get("updatedAt")).unwrap_or(now),
    })
}

/// `["EN","FR"]`, or `EN,FR` as String() of an array writes it.
fn locales_json(s: &str) -> String {
    if s.starts_with('[') {
        return s.to_owned();
    }
    let list: Vec<String> = s
        .split(',')
        .map(|l| l.trim().to_ascii_uppercase())
        .filter(|l| !l.is_empty())
        .collect();
    serde_json::to_string(&list).unwrap_or_else(|_| "[\"EN\"]".into())
}

/// The metadata field declarations without the database's own keys (`_id`).
fn meta_fields_json(s: &str) -> Result<String, String> {
    if s.starts_with("[object") {
        return Err("not recoverable: the export wrote [object Object]".into());
    }
    let v: Value = serde_json::from_str(s).map_err(|_| "not valid JSON".to_owned())?;
    let Value::Array(items) = v else {
        return Err("not a JSON array".into());
    };
    let cleaned: Vec<Value> = items
        .into_iter()
        .map(|mut f| {
            if let Some(o) = f.as_object_mut() {
                o.retain(|k, _| {
                    ["id", "path", "required", "fieldName", "canEdit"].contains(&k.as_str())
                });
            }
            f
        })
        .collect();
    Ok(Value::Array(cleaned).to_string())
}

#[cfg(test)]
mod tests {
    use super::files::*;
    use super::*;

    #[test]
    fn times_in_the_forms_the_export_wrote() {
        assert_eq!(
            parse_time("2024-07-02T10:11:12.000Z"),
            Some(1_719_915_072_000)
        );
        assert_eq!(
            parse_time("Tue Jul 02 2024 10:11:12 GMT+0000 (Coordinated Universal Time)"),
            Some(1_719_915_072_000)
        );
        assert_eq!(
            parse_time("Tue Jul 02 2024 12:11:12 GMT+0200 (Central European Summer Time)"),
            Some(1_719_915_072_000)
        );
        assert_eq!(parse_time("1719915072000"), Some(1_719_915_072_000));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn csv_rows_are_checked_one_by_one() {
        let mut report = Report::new("t", false);
        let data =
            b"handle,password\na@x.de,h\n\"b\xff@x.de\",h\nc@x.de,\"multi\nline\"\nd\0@x.de,h\n";
        let got = rows("user-collection.csv", data, &mut report, &[]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].at.row, Some(3));
        assert_eq!(report.rejected.len(), 2);
        assert_eq!(report.rejected[0].at.row, Some(2));
        assert!(report.rejected[0].reason.contains("UTF-8"));
        assert!(report.rejected[1].reason.contains("NUL"));
    }

    #[test]
    fn locales_and_metadata_declarations() {
        assert_eq!(locales_json("EN, fr"), r#"["EN","FR"]"#);
        assert_eq!(locales_json(r#"["EN"]"#), r#"["EN"]"#);
        let m = meta_fields_json(r#"[{"_id":"x","path":"a.b","fieldName":"b","required":true}]"#)
            .unwrap();
        assert!(!m.contains("_id"));
        assert!(meta_fields_json("[object Object]").is_err());
    }

    #[test]
    fn formula_like_values() {
        for v in ["=HYPERLINK(\"x\")", "+1+1", "-2", "@SUM(A1)"] {
            assert!(formula_like(v), "{v}");
        }
        assert!(!formula_like("alice@example.com"));
    }
}
