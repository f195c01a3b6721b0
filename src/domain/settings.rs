//! Per-app settings (spec §6 `apps`, minus secrets and ids): stored as JSON, returned by
//! `getApplication`, and changed one validated `NAME=VALUE` at a time.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Claims metadata may never set (spec §5, DESIGN.md §3.4).
pub const REGISTERED_CLAIMS: &[&str] = &["sub", "aud", "exp", "iat", "nbf", "iss", "jti"];

/// A declared metadata field: where its value lives (`path`, a dot path) and the name a
/// JWT consumer maps it to (`fieldName`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetaField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub path: String,
    #[serde(default)]
    pub required: bool,
    pub field_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_edit: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignupFlow {
    Code,
    Link,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TwoFactorMode {
    None,
    Phone,
    Google,
}

/// Every public setting of an app; key names and JSON types are those of spec §3.20.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct AppSettings {
    pub jwt_enabled: bool,
    pub anonymous_login_enabled: bool,
    pub user_names_enabled: bool,
    pub apple_login_enabled: bool,
    pub apple_bundle_id: String,
    pub google_login_enabled: bool,
    pub google_client_id: String,
    pub email_extension: bool,
    pub email_extension_sender_email: String,
    pub handle: String,
    pub invitation_enabled: bool,
    pub signup_enabled: bool,
    pub signup_flow: SignupFlow,
    pub two_factor_verification: TwoFactorMode,
    pub google_app_name: String,
    /// Tessera: enabling authenticator 2FA needs a code from the new secret before it is on.
    pub two_factor_require_confirmation: bool,
    /// Tessera: a password reset also switches 2FA off (the reference always did).
    pub reset_password_removes_two_factor: bool,
    /// Tessera: ISO 3166-1 region for phone numbers typed without `+` (empty: `+` required).
    pub phone_default_region: String,
    /// Tessera: `login` and `forgotPassword` answer alike whether or not an account exists
    /// (no 608 for a pending signup, `forgotPassword` always `true`). Off by default because
    /// the CosyncJWT clients show those answers.
    pub hide_account_existence: bool,
    /// Tessera: browser origins (`https://app.example`) allowed to call the CosyncJWT routes
    /// of this app; none by default, and never with credentials (cookies).
    pub cors_origins: Vec<String>,
    pub max_users: i64,
    pub max_login_attempts: i64,
    pub password_filter: bool,
    pub password_min_length: i64,
    pub password_min_upper: i64,
    pub password_min_lower: i64,
    pub password_min_digit: i64,
    pub password_min_special: i64,
    #[serde(rename = "userJWTExpiration")]
    pub user_jwt_expiration: i64,
    pub realm_app_id: String,
    pub app_data: Map<String, Value>,
    pub meta_data_invite: Vec<MetaField>,
    pub meta_data: Vec<MetaField>,
    pub meta_data_email: bool,
    pub locales: Vec<String>,
}

impl Default for AppSettings {
    fn default() -> Self {
        Self {
            jwt_enabled: true,
            anonymous_login_enabled: false,
            user_names_enabled: false,
            apple_login_enabled: false,
            apple_bundle_id: String::new(),
            google_login_enabled: false,
            google_client_id: String::new(),
            email_extension: false,
            email_extension_sender_email: String::new(),
            handle: "email".into(),
            invitation_enabled: false,
            signup_enabled: true,
            signup_flow: SignupFlow::Code,
            two_factor_verification: TwoFactorMode::None,
            google_app_name: String::new(),
            two_factor_require_confirmation: false,
            reset_password_removes_two_factor: false,
            phone_default_region: String::new(),
            hide_account_existence: false,
            cors_origins: Vec::new(),
            max_users: 0,
            max_login_attempts: 0,
            password_filter: false,
            password_min_length: 5,
            password_min_upper: 0,
            password_min_lower: 0,
            password_min_digit: 0,
            password_min_special: 0,
            user_jwt_expiration: 24,
            realm_app_id: String::new(),
            app_data: Map::new(),
            meta_data_invite: Vec::new(),
            meta_data: Vec::new(),
            meta_data_email: true,
            locales: vec!["EN".into()],
        }
    }
}

/// Why a setting change was refused; the message is shown to the operator.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingError(pub String);

impl AppSettings {
    pub fn from_json(text: &str) -> Result<Self, SettingError> {
        let s: Self = serde_json::from_str(text).map_err(|e| SettingError(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// Applies `name=value`: `value` is JSON where the setting is structured (or a bare
    /// string for text settings). Unknown names and wrong types are refused.
    pub fn set(&self, name: &str, value: &str) -> Result<Self, SettingError> {
        let mut doc = serde_json::to_value(self).map_err(|e| SettingError(e.to_string()))?;
        let Some(obj) = doc.as_object_mut() else {
            return Err(SettingError("settings are not an object".into()));
        };
        let Some(current) = obj.get(name) else {
            let known: Vec<&String> = obj.keys().collect();
            return Err(SettingError(format!(
                "unknown setting {name:?}; known: {known:?}"
            )));
        };
        let parsed = match serde_json::from_str::<Value>(value) {
            // A text setting takes the text as typed unless it is a quoted JSON string:
            // `realmAppId=12345` is the id "12345", not a number.
            Ok(v) if current.is_string() && !v.is_string() => Value::String(value.to_owned()),
            Ok(v) => v,
            Err(_) if current.is_string() => Value::String(value.to_owned()),
            Err(e) => {
                return Err(SettingError(format!(
                    "{name}: value is not valid JSON: {e}"
                )));
            }
        };
        obj.insert(name.to_owned(), parsed);
        let next: Self =
            serde_json::from_value(doc).map_err(|e| SettingError(format!("{name}: {e}")))?;
        next.validate()?;
        Ok(next)
    }

    /// Rules that keep the app usable and its tokens valid.
    pub fn validate(&self) -> Result<(), SettingError> {
        if !self.locales.iter().any(|l| l == "EN") {
            return Err(SettingError("locales must contain EN".into()));
        }
        for l in &self.locales {
            if l.len() != 2 || !l.chars().all(|c| c.is_ascii_uppercase()) {
                return Err(SettingError(format!(
                    "locale {l:?} is not two upper-case letters"
                )));
            }
        }
        if !(0..=24 * 365).contains(&self.user_jwt_expiration) {
            return Err(SettingError(
                "userJWTExpiration must be 0..=8760 hours".into(),
            ));
        }
        if !self.phone_default_region.is_empty()
            && !super::phone::Phone::known_region(&self.phone_default_region)
        {
            return Err(SettingError(format!(
                "phoneDefaultRegion {:?} is not an ISO 3166-1 region code",
                self.phone_default_region
            )));
        }
        if self.google_app_name.chars().count() > 100 || self.google_app_name.contains(':') {
            return Err(SettingError(
                "googleAppName must be at most 100 characters without ':'".into(),
            ));
        }
        if [
            self.password_min_length,
            self.password_min_upper,
            self.password_min_lower,
            self.password_min_digit,
            self.password_min_special,
        ]
        .iter()
        .any(|n| !(0..=1024).contains(n))
        {
            return Err(SettingError("password settings must be 0..=1024".into()));
        }
        if self.max_login_attempts < 0 || self.max_users < 0 {
            return Err(SettingError("limits cannot be negative".into()));
        }
        for (kind, fields) in [
            ("metaData", &self.meta_data),
            ("metaDataInvite", &self.meta_data_invite),
        ] {
            for f in fields.iter() {
                validate_path(kind, &f.path)?;
                validate_claim_owner(kind, f)?;
                if f.field_name.is_empty() || f.field_name.chars().count() > 64 {
                    return Err(SettingError(format!(
                        "{kind}: fieldName must be 1-64 characters"
                    )));
                }
            }
            // One value per path: a path inside another field's value (`a` and `a.b`) could
            // never hold both, so every later signup would fail.
            for (i, a) in fields.iter().enumerate() {
                for b in &fields[i + 1..] {
                    let nested = |outer: &str, inner: &str| {
                        inner
                            .strip_prefix(outer)
                            .is_some_and(|r| r.starts_with('.'))
                    };
                    if a.path == b.path || nested(&a.path, &b.path) || nested(&b.path, &a.path) {
                        return Err(SettingError(format!(
                            "{kind}: paths {:?} and {:?} overlap",
                            a.path, b.path
                        )));
                    }
                }
            }
        }
        if !self.email_extension_sender_email.is_empty()
            && self
                .email_extension_sender_email
                .parse::<lettre::Address>()
                .is_err()
        {
            return Err(SettingError(
                "emailExtensionSenderEmail must be a bare mail address".into(),
            ));
        }
        if self.cors_origins.len() > 20 || self.cors_origins.iter().any(|o| !valid_origin(o)) {
            return Err(SettingError(
                "corsOrigins: at most 20 origins like https://app.example (scheme, host, optional port; no path or *)".into(),
            ));
        }
        if self.realm_app_id.chars().count() > 200
            || self.realm_app_id.chars().any(char::is_control)
        {
            return Err(SettingError(
                "realmAppId must be at most 200 characters without control characters".into(),
            ));
        }
        Ok(())
    }

    /// The `aud` claim of user JWTs.
    pub fn audience(&self) -> &str {
        if self.realm_app_id.is_empty() {
            "none"
        } else {
            &self.realm_app_id
        }
    }
}

/// The secret settings (provider credentials). Stored sealed with the app, write-only: no
/// view of an app ever shows them (spec §10 item 14).
pub const SECRET_SETTINGS: &[&str] = &["TWILIOAccountSid", "TWILIOToken", "TWILIOPhoneNumber"];

/// An app's secret settings; empty strings mean unset.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppSecrets {
    #[serde(rename = "TWILIOAccountSid")]
    pub twilio_account_sid: String,
    #[serde(rename = "TWILIOToken")]
    pub twilio_token: String,
    #[serde(rename = "TWILIOPhoneNumber")]
    pub twilio_phone_number: String,
}

impl std::fmt::Debug for AppSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSecrets")
            .field("set", &self.names_set())
            .finish()
    }
}

impl AppSecrets {
    /// Sets one secret; an empty value clears it.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), SettingError> {
        let value = value.trim();
        if value.len() > 256 || value.chars().any(char::is_control) {
            return Err(SettingError(format!(
                "{name}: at most 256 printable characters"
            )));
        }
        match name {
            "TWILIOAccountSid" => {
                // It becomes a URL path segment.
                if !value.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(SettingError(
                        "TWILIOAccountSid: letters and digits only".into(),
                    ));
                }
                self.twilio_account_sid = value.to_owned();
            }
            "TWILIOToken" => self.twilio_token = value.to_owned(),
            "TWILIOPhoneNumber" => {
                self.twilio_phone_number = if value.is_empty() {
                    String::new()
                } else {
                    super::phone::Phone::parse(value, "")
                        .map_err(|_| {
                            SettingError("TWILIOPhoneNumber: an E.164 number (+…)".into())
                        })?
                        .as_str()
                        .to_owned()
                };
            }
            other => return Err(SettingError(format!("unknown secret setting {other:?}"))),
        }
        Ok(())
    }

    /// Names of the secrets that are set (for operators; never the values).
    pub fn names_set(&self) -> Vec<&'static str> {
        [
            ("TWILIOAccountSid", &self.twilio_account_sid),
            ("TWILIOToken", &self.twilio_token),
            ("TWILIOPhoneNumber", &self.twilio_phone_number),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(n, _)| n)
        .collect()
    }

    /// The app's SMS provider account, if all three parts are set.
    pub fn sms_credentials(&self) -> Option<crate::notify::SmsCredentials> {
        if self.twilio_account_sid.is_empty()
            || self.twilio_token.is_empty()
            || self.twilio_phone_number.is_empty()
        {
            return None;
        }
        Some(crate::notify::SmsCredentials {
            account_sid: self.twilio_account_sid.clone(),
            auth_token: self.twilio_token.clone().into(),
            from: self.twilio_phone_number.clone(),
        })
    }
}

/// `email` and `userName` are claims Tessera sets itself (spec §5): a field may hold the
/// handle as `email` (fieldName `email`), but no user-supplied value may land there.
fn validate_claim_owner(kind: &str, f: &MetaField) -> Result<(), SettingError> {
    let first = f.path.split('.').next().unwrap_or("");
    // Only the user's own fields may name the handle; an inviter's value never becomes it.
    let handle_as_email = kind == "metaData" && f.path == "email" && f.field_name == "email";
    if (first == "email" && !handle_as_email) || first == "userName" {
        return Err(SettingError(format!(
            "{kind}: path {:?} would set the {first:?} claim Tessera sets itself",
            f.path
        )));
    }
    Ok(())
}

/// `scheme://host[:port]`, nothing more (an origin as browsers send it).
fn valid_origin(o: &str) -> bool {
    let Some((scheme, rest)) = o.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && o.len() <= 200
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

fn validate_path(kind: &str, path: &str) -> Result<(), SettingError> {
    let segments: Vec<&str> = path.split('.').collect();
    if path.len() > 200
        || segments
            .iter()
            .any(|s| s.is_empty() || s.chars().any(char::is_control))
    {
        return Err(SettingError(format!("{kind}: invalid path {path:?}")));
    }
    if let Some(first) = segments.first()
        && REGISTERED_CLAIMS.contains(first)
    {
        return Err(SettingError(format!(
            "{kind}: path {path:?} would overwrite the registered claim {first:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_serialize_with_spec_names_and_types() {
        let v = serde_json::to_value(AppSettings::default()).unwrap();
        assert_eq!(v["signupFlow"], "code");
        assert_eq!(v["twoFactorVerification"], "none");
        assert_eq!(v["userNamesEnabled"], false);
        assert_eq!(v["passwordMinLength"], 5);
        assert_eq!(v["userJWTExpiration"], 24);
        assert_eq!(v["locales"], serde_json::json!(["EN"]));
        assert!(v["appData"].is_object());
    }

    #[test]
    fn set_parses_validates_and_refuses_unknown() {
        let s = AppSettings::default();
        assert_eq!(
            s.set("signupFlow", "none").unwrap().signup_flow,
            SignupFlow::None
        );
        assert_eq!(
            s.set("realmAppId", "my-realm").unwrap().realm_app_id,
            "my-realm"
        );
        assert!(
            s.set("userNamesEnabled", "true")
                .unwrap()
                .user_names_enabled
        );
        assert!(s.set("signupFlow", "sideways").is_err());
        assert!(s.set("userNamesEnabled", "yes").is_err());
        assert!(s.set("appToken", "x").is_err());
        assert!(s.set("locales", r#"["FR"]"#).is_err());
        let m = s
            .set(
                "metaData",
                r#"[{"path":"user_data.name","fieldName":"name","required":true,"canEdit":true}]"#,
            )
            .unwrap();
        assert_eq!(m.meta_data[0].path, "user_data.name");
        assert!(
            s.set("metaData", r#"[{"path":"sub","fieldName":"x"}]"#)
                .is_err()
        );
        assert!(
            s.set("metaData", r#"[{"path":"exp.x","fieldName":"x"}]"#)
                .is_err()
        );
        assert!(
            s.set("metaData", r#"[{"path":"a..b","fieldName":"x"}]"#)
                .is_err()
        );
        assert!(
            s.set("metaData", r#"[{"path":"a","fieldName":"x","evil":1}]"#)
                .is_err()
        );
        assert_eq!(
            s.set("phoneDefaultRegion", "DE")
                .unwrap()
                .phone_default_region,
            "DE"
        );
        assert!(s.set("phoneDefaultRegion", "Germany").is_err());
        assert!(s.set("googleAppName", "a:b").is_err());
        assert!(s.set("passwordMinLength", "-5").is_err());
        assert_eq!(s.set("realmAppId", "12345").unwrap().realm_app_id, "12345");
        assert_eq!(
            s.set("realmAppId", "\"quoted\"").unwrap().realm_app_id,
            "quoted"
        );
        assert!(s.set("realmAppId", "app\nX-Injected: 1").is_err());
        for overlapping in [
            r#"[{"path":"a","fieldName":"a"},{"path":"a.b","fieldName":"b"}]"#,
            r#"[{"path":"a.b","fieldName":"b"},{"path":"a","fieldName":"a"}]"#,
            r#"[{"path":"a","fieldName":"a"},{"path":"a","fieldName":"b"}]"#,
        ] {
            assert!(s.set("metaData", overlapping).is_err(), "{overlapping}");
        }
        assert!(
            s.set(
                "metaData",
                r#"[{"path":"a","fieldName":"a"},{"path":"ab.c","fieldName":"b"}]"#
            )
            .is_ok()
        );
        assert!(
            s.set(
                "metaDataInvite",
                r#"[{"path":"email","fieldName":"email"}]"#
            )
            .is_err(),
            "an inviter never sets the email claim"
        );
        for bad in [
            r#"[{"path":"email","fieldName":"mail"}]"#,
            r#"[{"path":"email.x","fieldName":"email"}]"#,
            r#"[{"path":"userName","fieldName":"u"}]"#,
        ] {
            assert!(s.set("metaData", bad).is_err(), "{bad}");
        }
        assert!(
            s.set("metaData", r#"[{"path":"email","fieldName":"email"}]"#)
                .is_ok()
        );
        assert!(
            s.set("TWILIOToken", "x").is_err(),
            "secrets are not public settings"
        );
    }

    #[test]
    fn secrets_are_validated_and_never_debug_printed() {
        let mut s = AppSecrets::default();
        s.set("TWILIOAccountSid", "AC0123abcd").unwrap();
        s.set("TWILIOToken", "tok-very-secret").unwrap();
        assert!(s.sms_credentials().is_none(), "incomplete account");
        s.set("TWILIOPhoneNumber", "+1 555 010 0001").unwrap();
        assert_eq!(s.twilio_phone_number, "+15550100001");
        let creds = s.sms_credentials().unwrap();
        assert_eq!(creds.account_sid, "AC0123abcd");
        assert!(!format!("{s:?}{creds:?}").contains("tok-very-secret"));
        assert!(s.set("TWILIOAccountSid", "../x").is_err());
        assert!(s.set("TWILIOPhoneNumber", "not a number").is_err());
        assert!(s.set("TWILIOToken", "a\nb").is_err());
        assert!(s.set("TWILIOToken", "a\u{0}b").is_err());
        assert!(s.set("Other", "x").is_err());
        s.set("TWILIOToken", "").unwrap();
        assert_eq!(s.names_set(), vec!["TWILIOAccountSid", "TWILIOPhoneNumber"]);
    }
}
