//! Reads the CosyncJWT admin export (spec §7 "Import / export"): a zip of CSV files, or the
//! same files in a folder. `app-collection.csv` (one app, keys and secrets in clear),
//! `user-collection.csv`, `signup-collection.csv`, `invite-collection.csv`,
//! `email-template-collection.csv`; columns by header name, as the reference's csv-writer
//! wrote them. Every row is validated on its own: a bad row is reported with its file, row
//! number and reason and the rest goes on. Nothing from the archive touches the filesystem.

use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;
use zeroize::Zeroizing;

use super::{
    ImportError, Plan, PlannedApp, PlannedInvite, PlannedKey, PlannedSignup, PlannedUser, Report,
    Where, pem,
};
use crate::crypto::password::is_bcrypt;
use crate::domain::handle::ANON_MARKER;
use crate::domain::phone::Phone;
use crate::domain::settings::{AppSecrets, AppSettings, SECRET_SETTINGS};
use crate::domain::{Handle, UserName};
use crate::notify::templates::TEMPLATE_NAMES;
use crate::store::TemplateRow;

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

fn read_zip(
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
        (&mut entry)
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ImportError::Input(format!("{name}: cannot be read: {e}")))?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(ImportError::Input(format!("{name} is larger than 512 MiB")));
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
struct Row {
    at: Where,
    fields: HashMap<String, String>,
}

impl Row {
    fn get(&self, name: &str) -> &str {
        self.fields.get(name).map(|s| s.trim()).unwrap_or("")
    }

    fn raw(&self, name: &str) -> &str {
        self.fields.get(name).map(String::as_str).unwrap_or("")
    }
}

/// Parses a CSV file: header names as written (first occurrence wins), each row checked for
/// UTF-8, control characters and field size. Bad rows are reported and skipped.
fn rows(file: &str, bytes: &[u8], report: &mut Report, big: &[&str]) -> Vec<Row> {
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

fn check_record(
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
fn formula_like(s: &str) -> bool {
    s.trim_start().starts_with(['=', '+', '-', '@', '\t', '\r'])
}

fn parse_bool(s: &str) -> Option<bool> {
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
fn parse_object(s: &str) -> Result<Map<String, Value>, String> {
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
fn parse_code(s: &str) -> Option<String> {
    let t = s.trim();
    (t.len() == 6 && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.to_owned())
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

/// A handle as the export holds it: refused if it is not a handle Tessera could log in.
fn handle_of(row: &Row, col: &str) -> Result<Handle, String> {
    let raw = row.raw(col);
    if raw.trim().is_empty() {
        return Err(format!("{col} is missing"));
    }
    if formula_like(raw) {
        return Err(format!("{col} is a formula-like value"));
    }
    Handle::parse(raw).map_err(|_| format!("{col} is not a valid handle"))
}

fn bcrypt_of(row: &Row) -> Result<Option<String>, String> {
    let p = row.get("password");
    if p.is_empty() {
        return Ok(None);
    }
    if is_bcrypt(p) {
        Ok(Some(p.to_owned()))
    } else {
        Err("password is not a bcrypt hash ($2a$/$2b$/$2y$)".into())
    }
}

fn locale_of(row: &Row, locales: &[String], report: &mut Report) -> String {
    let l = row.get("locale").to_ascii_uppercase();
    if l.is_empty() {
        return "EN".into();
    }
    if locales.contains(&l) {
        l
    } else {
        report.warn(
            row.at.clone(),
            "locale not among the app's locales; set to EN".into(),
        );
        "EN".into()
    }
}

fn check_app(app_id: &str, row: &Row) -> Result<(), String> {
    let a = row.get("appId");
    if a.is_empty() || a == app_id {
        Ok(())
    } else {
        Err("belongs to another app (appId differs)".into())
    }
}

fn plan_users(
    app_id: &str,
    rows: Vec<Row>,
    locales: &[String],
    report: &mut Report,
    now: i64,
) -> Vec<PlannedUser> {
    let mut planned: Vec<PlannedUser> = Vec::new();
    let mut by_handle: HashMap<String, usize> = HashMap::new();
    let mut names: HashSet<String> = HashSet::new();
    let mut phones: HashSet<String> = HashSet::new();
    for row in rows {
        let user = match plan_user(app_id, &row, locales, report, now) {
            Ok(u) => u,
            Err(reason) => {
                report.reject(row.at.clone(), reason);
                continue;
            }
        };
        // The reference stored some handles un-normalised (spec §10.18), so one account may
        // appear twice. The row whose stored handle already was normalised is the one that
        // could log in; it wins, else the first.
        if let Some(&i) = by_handle.get(user.handle.as_str()) {
            let (kept, dropped) = if user.exact && !planned[i].exact {
                let old = std::mem::replace(&mut planned[i], user);
                (planned[i].from.clone(), old.from)
            } else {
                (planned[i].from.clone(), user.from)
            };
            report.reject(
                dropped,
                format!("duplicate handle (same as {kept} after trimming and lower-casing)"),
            );
            continue;
        }
        by_handle.insert(user.handle.as_str().to_owned(), planned.len());
        planned.push(user);
    }
    for u in &mut planned {
        if let Some(n) = &u.user_name
            && !names.insert(n.as_str().to_owned())
        {
            report.warn(
                u.from.clone(),
                "user name used by an earlier row; imported without it".into(),
            );
            u.user_name = None;
        }
        if u.phone_verified
            && let Some(p) = &u.phone
            && !phones.insert(p.clone())
        {
            report.warn(
                u.from.clone(),
                "verified phone used by an earlier row; imported unverified".into(),
            );
            u.phone_verified = false;
            u.two_factor_phone = false;
        }
    }
    planned
}

fn plan_user(
    app_id: &str,
    row: &Row,
    locales: &[String],
    report: &mut Report,
    now: i64,
) -> Result<PlannedUser, String> {
    check_app(app_id, row)?;
    let handle = handle_of(row, "handle")?;
    let anonymous = handle.as_str().contains(ANON_MARKER);
    let password_hash = bcrypt_of(row)?;
    let status = match row.get("status") {
        "" | "active" => "active",
        "suspend" | "suspended" | "inactive" => "suspend",
        "pending" => "pending",
        _ => return Err("unknown status".into()),
    };
    let login_provider = match row.get("loginProvider") {
        "" => "",
        "apple" => "apple",
        "google" => "google",
        _ => return Err("unknown loginProvider".into()),
    };
    if password_hash.is_none() && !anonymous && login_provider.is_empty() {
        report.warn(
            row.at.clone(),
            "no password hash: the user sets one with forgotPassword".into(),
        );
    }
    let metadata = match parse_object(row.get("metaData")) {
        Ok(m) => m,
        Err(e) => {
            report.warn(row.at.clone(), format!("metaData {e}; imported without it"));
            Map::new()
        }
    };
    let user_name = match row.get("userName") {
        "" => None,
        n if formula_like(n) => return Err("userName is a formula-like value".into()),
        n => match UserName::parse(n) {
            Ok(u) => Some(u),
            Err(_) => {
                report.warn(
                    row.at.clone(),
                    "userName invalid; imported without it".into(),
                );
                None
            }
        },
    };
    let mut warn_flag = |col: &str| {
        let v = parse_bool(row.get(col));
        if v.is_none() {
            report.warn(
                row.at.clone(),
                format!("{col} is not true/false; taken as false"),
            );
        }
        v.unwrap_or(false)
    };
    let two_factor_phone = warn_flag("twoFactorPhoneVerification");
    let two_factor_google = warn_flag("twoFactorGoogleVerification");
    let phone_verified_flag = warn_flag("phoneVerified");
    let totp = match row.get("googleSecretKey") {
        "" => None,
        s => {
            let compact: String = s
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_ascii_uppercase();
            match data_encoding::BASE32_NOPAD.decode(compact.trim_end_matches('=').as_bytes()) {
                Ok(b) if b.len() >= 10 => Some(Zeroizing::new(b)),
                _ => {
                    report.warn(
                        row.at.clone(),
                        "googleSecretKey is not base32; authenticator 2FA dropped".into(),
                    );
                    None
                }
            }
        }
    };
    let phone = match row.get("phone") {
        "" => None,
        p => match Phone::parse(p, "") {
            Ok(p) => Some(p.as_str().to_owned()),
            Err(_) => {
                report.warn(
                    row.at.clone(),
                    "phone is not an E.164 number; imported without it".into(),
                );
                None
            }
        },
    };
    let created_at = parse_time(row.get("createdAt")).unwrap_or(now);
    Ok(PlannedUser {
        from: row.at.clone(),
        exact: row.raw("handle") == handle.as_str(),
        password_hash,
        status: status.into(),
        locale: locale_of(row, locales, report),
        metadata,
        user_name,
        login_provider: login_provider.into(),
        two_factor_phone,
        two_factor_google,
        totp,
        totp_last_step: 0,
        phone_verified: phone_verified_flag && phone.is_some(),
        phone,
        last_login: parse_time(row.get("lastLogin")),
        created_at,
        updated_at: parse_time(row.get("updatedAt")).unwrap_or(created_at),
        handle,
    })
}

fn plan_signup(
    app_id: &str,
    row: Row,
    locales: &[String],
    report: &mut Report,
    now: i64,
) -> Option<PlannedSignup> {
    let status = row.get("status").to_owned();
    if status == "verified" || status == "active" {
        // Completed signups are users already (user-collection.csv).
        return None;
    }
    let result = (|| {
        check_app(app_id, &row)?;
        if status != "pending" {
            return Err("unknown status".to_owned());
        }
        let handle = handle_of(&row, "handle")?;
        if handle.is_anonymous() {
            return Err("anonymous handles do not sign up".into());
        }
        let password_hash = bcrypt_of(&row)?.ok_or("password is missing")?;
        let code = parse_code(row.get("code")).ok_or("code is not 6 digits")?;
        let metadata = parse_object(row.get("metaData")).map_err(|e| format!("metaData {e}"))?;
        Ok((handle, password_hash, code, metadata))
    })();
    match result {
        Ok((handle, password_hash, code, metadata)) => Some(PlannedSignup {
            locale: locale_of(&row, locales, report),
            updated_at: parse_time(row.get("updatedAt")).unwrap_or(now),
            from: row.at,
            handle,
            password_hash,
            code,
            metadata,
        }),
        Err(reason) => {
            report.reject(row.at, reason);
            None
        }
    }
}

fn plan_invite(app_id: &str, row: Row, report: &mut Report) -> Option<PlannedInvite> {
    if row.get("status") == "verified" {
        return None;
    }
    let result = (|| {
        check_app(app_id, &row)?;
        if !matches!(row.get("status"), "" | "pending") {
            return Err("unknown status".to_owned());
        }
        let handle = handle_of(&row, "handle")?;
        let sender_handle = handle_of(&row, "senderHandle")?;
        let code = parse_code(row.get("code")).ok_or("code is not 6 digits")?;
        let metadata = parse_object(row.get("metaData")).map_err(|e| format!("metaData {e}"))?;
        let sender_user_id = row.get("senderUserId");
        if sender_user_id.chars().count() > 256 || sender_user_id.chars().any(char::is_control) {
            return Err("senderUserId is invalid".into());
        }
        Ok((
            handle,
            sender_handle,
            sender_user_id.to_owned(),
            code,
            metadata,
        ))
    })();
    match result {
        Ok((handle, sender_handle, sender_user_id, code, metadata)) => Some(PlannedInvite {
            from: row.at,
            handle,
            sender_handle,
            sender_user_id,
            code,
            metadata,
        }),
        Err(reason) => {
            report.reject(row.at, reason);
            None
        }
    }
}

fn plan_template(
    app_id: &str,
    row: Row,
    locales: &[String],
    report: &mut Report,
    now: i64,
) -> Option<(Where, TemplateRow)> {
    let name = row.get("templateName");
    let locale = match row.get("locale") {
        "" => "EN".to_owned(),
        l => l.to_ascii_uppercase(),
    };
    let reason = if check_app(app_id, &row).is_err() {
        Some("belongs to another app (appId differs)")
    } else if !TEMPLATE_NAMES.contains(&name) {
        Some("unknown templateName")
    } else if !locales.contains(&locale) {
        Some("locale not among the app's locales")
    } else if row.raw("subject").contains(['\r', '\n']) {
        Some("subject contains a line break")
    } else {
        None
    };
    if let Some(reason) = reason {
        report.reject(row.at, reason.into());
        return None;
    }
    let link_text = match row.get("localeLinkText") {
        "" => "LINK",
        t => t,
    };
    Some((
        row.at.clone(),
        TemplateRow {
            app_id: app_id.to_owned(),
            name: name.to_owned(),
            locale,
            subject: row.get("subject").to_owned(),
            html: row.raw("htmlTemplate").to_owned(),
            link_text: link_text.to_owned(),
            updated_at: parse_time(row.get("updatedAt")).unwrap_or(now),
        },
    ))
}

#[cfg(test)]
mod tests {
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
