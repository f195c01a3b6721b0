//! One user, pending signup, invite or template row of the export into a planned record,
//! or a rejection with its reason; duplicates across rows resolved.

use serde_json::Map;
use std::collections::{HashMap, HashSet};
use zeroize::Zeroizing;

use super::files::{Row, formula_like, parse_bool, parse_code, parse_object, parse_time};
use crate::crypto::password::is_bcrypt;
use crate::domain::handle::ANON_MARKER;
use crate::domain::phone::Phone;
use crate::domain::{Handle, UserName};
use crate::migrate::{PlannedInvite, PlannedSignup, PlannedUser, Report, Where};
use crate::notify::templates::TEMPLATE_NAMES;
use crate::store::TemplateRow;

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

pub(super) fn plan_users(
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
    if handle.as_str() != row.raw("handle").trim() {
        // The JWT `sub` is the handle: a consumer keyed on it sees a new user.
        report.warn(
            row.at.clone(),
            "handle stored as typed in the export; imported lower-cased, so its JWT sub changes"
                .into(),
        );
    }
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
            // Checked again after folding: full-width `＝` becomes `=`.
            Ok(u) if formula_like(u.as_str()) => {
                return Err("userName is a formula-like value".into());
            }
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

pub(super) fn plan_signup(
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

pub(super) fn plan_invite(app_id: &str, row: Row, report: &mut Report) -> Option<PlannedInvite> {
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

pub(super) fn plan_template(
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
