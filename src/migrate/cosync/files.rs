//! The export's files: read from a folder or a zip (entries only ever read into memory;
//! unsafe names refused), and CSV rows checked one by one (UTF-8, NUL, field sizes). Also
//! the value forms the reference's csv-writer produced (JS dates, `[object Object]`).

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use super::{
    APP_FILE, FILES, MAX_FIELD_BYTES, MAX_FILE_BYTES, MAX_TEMPLATE_BYTES, MAX_ZIP_ENTRIES,
};
use crate::migrate::{ImportError, Report, Where};

/// The export's files by name (only the five known names are kept).
pub fn read_files(
    path: &Path,
    report: &mut Report,
) -> Result<HashMap<&'static str, Vec<u8>>, ImportError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| ImportError::Input(format!("{}: {e}", path.display())))?;
    let mut files = HashMap::new();
    if meta.is_dir() {
        for name in FILES {
            let p = path.join(name);
            if p.exists() {
                let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                if len > MAX_FILE_BYTES {
                    return Err(ImportError::Input(format!("{name} is larger than 512 MiB")));
                }
                let bytes = std::fs::read(&p)
                    .map_err(|e| ImportError::Input(format!("{}: {e}", p.display())))?;
                files.insert(name, bytes);
            }
        }
    } else {
        read_zip(path, &mut files, report)?;
    }
    for name in FILES {
        if !files.contains_key(name) {
            report.warn(
                Where::none(name),
                "file not in the export; nothing of it imported".into(),
            );
        }
    }
    if !files.contains_key(APP_FILE) {
        return Err(ImportError::Input(format!(
            "{}: no {APP_FILE}: not a CosyncJWT export (a zip of CSV files, or a folder of them)",
            path.display()
        )));
    }
    Ok(files)
}

pub(super) fn read_zip(
    path: &Path,
    files: &mut HashMap<&'static str, Vec<u8>>,
    report: &mut Report,
) -> Result<(), ImportError> {
    let file = std::fs::File::open(path)
        .map_err(|e| ImportError::Input(format!("{}: {e}", path.display())))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| {
        ImportError::Input(format!(
            "{}: not a readable zip archive: {e}",
            path.display()
        ))
    })?;
    if zip.len() > MAX_ZIP_ENTRIES {
        return Err(ImportError::Input(format!(
            "{}: {} entries; a CosyncJWT export has five",
            path.display(),
            zip.len()
        )));
    }
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| ImportError::Input(format!("zip entry {i}: {e}")))?;
        let raw_name = entry
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "\u{fffd}".into());
        // Entries are only ever read into memory, but a name that climbs out of the archive
        // (`../`, absolute, drive letters, backslashes) marks a hostile archive: refuse it.
        if entry.enclosed_name().is_none()
            || raw_name.starts_with('/')
            || raw_name.split('/').any(|c| c == "..")
            || raw_name.contains('\\')
            || raw_name.contains(':')
            || raw_name.chars().any(char::is_control)
        {
            report.warn(
                Where::none(&format!("zip entry {}", i + 1)),
                format!(
                    "refused: unsafe path {:?}",
                    raw_name.escape_debug().to_string()
                ),
            );
            continue;
        }
        if entry.is_dir() {
            continue;
        }
        let base = raw_name.rsplit('/').next().unwrap_or("");
        let Some(name) = FILES.iter().find(|f| **f == base) else {
            report.warn(
                Where::none(&format!("zip entry {}", i + 1)),
                "ignored: not one of the export's files".into(),
            );
            continue;
        };
        let mut bytes = Vec::new();
        // One budget for the whole archive, so a handful of inflated entries cannot add up
        // to gigabytes in memory.
        let budget = MAX_FILE_BYTES.saturating_sub(total);
        (&mut entry)
            .take(budget + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ImportError::Input(format!("{name}: cannot be read: {e}")))?;
        total += bytes.len() as u64;
        if total > MAX_FILE_BYTES {
            return Err(ImportError::Input(
                "the archive's files come to more than 512 MiB unpacked".into(),
            ));
        }
        if files.insert(name, bytes).is_some() {
            return Err(ImportError::Input(format!(
                "{name} appears twice in the archive"
            )));
        }
    }
    Ok(())
}

/// One CSV row as text fields by column name.
pub(super) struct Row {
    pub(super) at: Where,
    pub(super) fields: HashMap<String, String>,
}

impl Row {
    pub(super) fn get(&self, name: &str) -> &str {
        self.fields.get(name).map(|s| s.trim()).unwrap_or("")
    }

    pub(super) fn raw(&self, name: &str) -> &str {
        self.fields.get(name).map(String::as_str).unwrap_or("")
    }
}

/// Parses a CSV file: header names as written (first occurrence wins), each row checked for
/// UTF-8, control characters and field size. Bad rows are reported and skipped.
pub(super) fn rows(file: &str, bytes: &[u8], report: &mut Report, big: &[&str]) -> Vec<Row> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(bytes);
    let headers: Vec<String> = match rdr.byte_headers() {
        Ok(h) => h
            .iter()
            .map(|f| String::from_utf8_lossy(f).trim().to_owned())
            .collect(),
        Err(e) => {
            report.reject(Where::row(file, 0), format!("unreadable header: {e}"));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut n = 0;
    loop {
        n += 1;
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                report.reject(Where::row(file, n), format!("malformed CSV: {e}"));
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    break;
                }
                continue;
            }
        }
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        match check_record(&headers, &record, big) {
            Ok(fields) => out.push(Row {
                at: Where::row(file, n),
                fields,
            }),
            Err(reason) => report.reject(Where::row(file, n), reason),
        }
    }
    out
}

pub(super) fn check_record(
    headers: &[String],
    record: &csv::ByteRecord,
    big: &[&str],
) -> Result<HashMap<String, String>, String> {
    let mut fields = HashMap::new();
    for (i, value) in record.iter().enumerate() {
        let Some(name) = headers.get(i) else {
            if value.is_empty() {
                continue;
            }
            return Err(format!(
                "more fields than the header names (field {})",
                i + 1
            ));
        };
        let text =
            std::str::from_utf8(value).map_err(|_| format!("field {name} is not valid UTF-8"))?;
        let limit = if big.contains(&name.as_str()) {
            MAX_TEMPLATE_BYTES
        } else {
            MAX_FIELD_BYTES
        };
        if text.len() > limit {
            return Err(format!(
                "field {name} is {} bytes, over the {limit}-byte limit",
                text.len()
            ));
        }
        if text.contains('\0') {
            return Err(format!("field {name} contains a NUL character"));
        }
        fields
            .entry(name.clone())
            .or_insert_with(|| text.to_owned());
    }
    Ok(fields)
}

/// Values a spreadsheet would run as a formula (CSV injection); refused where they would
/// become an identity (handle, user name).
pub(super) fn formula_like(s: &str) -> bool {
    s.trim_start().starts_with(['=', '+', '-', '@', '\t', '\r'])
}

pub(super) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" | "" => Some(false),
        _ => None,
    }
}

/// A time as csv-writer wrote a JS `Date` (`Tue Jul 02 2024 10:11:12 GMT+0000 (…)`), or
/// ISO 8601, or Unix milliseconds; Unix milliseconds out.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    let rfc = time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &rfc) {
        return i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok();
    }
    let head = s.split(" (").next().unwrap_or(s);
    let fmt = time::macros::format_description!(
        "[weekday repr:short] [month repr:short] [day] [year] [hour]:[minute]:[second] GMT[offset_hour sign:mandatory][offset_minute]"
    );
    time::OffsetDateTime::parse(head, &fmt)
        .ok()
        .and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok())
}

/// A JSON object as the export holds metadata; `Err` with the reason otherwise.
pub(super) fn parse_object(s: &str) -> Result<Map<String, Value>, String> {
    if s.is_empty() {
        return Ok(Map::new());
    }
    if s.starts_with("[object") {
        return Err("not recoverable: the export wrote [object Object]".into());
    }
    match serde_json::from_str::<Value>(s) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("not a JSON object".into()),
        Err(_) => Err("not valid JSON".into()),
    }
}

/// A 6-digit code as the reference stored it (a number 100000-999999).
pub(super) fn parse_code(s: &str) -> Option<String> {
    let t = s.trim();
    (t.len() == 6 && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.to_owned())
}
