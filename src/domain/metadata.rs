//! User metadata: validated against the app's declared fields on every path, and turned into
//! user JWT claims exactly as spec §5 describes, without ever touching registered claims.

use serde_json::{Map, Value};

use super::Error;
use super::settings::{AppSettings, MetaField, REGISTERED_CLAIMS};

/// Largest accepted `metaData` text.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// The value at a dot path.
pub fn get_path<'a>(obj: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut segments = path.split('.');
    let first = segments.next()?;
    let mut cur = obj.get(first)?;
    for seg in segments {
        cur = cur.as_object()?.get(seg)?;
    }
    Some(cur)
}

/// Sets the value at a dot path, creating (or replacing non-object) parents.
pub fn set_path(obj: &mut Map<String, Value>, path: &str, value: Value) {
    let segments: Vec<&str> = path.split('.').collect();
    let Some((last, parents)) = segments.split_last() else {
        return;
    };
    let mut cur = obj;
    for seg in parents {
        let entry = cur
            .entry((*seg).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        cur = next;
    }
    cur.insert((*last).to_owned(), value);
}

/// Parses the `metaData` text (a JSON object in a string) sent by a client.
pub fn parse_input(text: Option<&str>) -> Result<Map<String, Value>, Error> {
    let Some(text) = text else {
        return Ok(Map::new());
    };
    if text.len() > MAX_METADATA_BYTES {
        return Err(Error::InvalidMetadata);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) if map.values().map(depth).max().unwrap_or(0) < MAX_DEPTH => Ok(map),
        _ => Err(Error::InvalidMetadata),
    }
}

/// Deepest nesting accepted in metadata (a path has at most 10 segments; room to spare).
const MAX_DEPTH: usize = 16;

/// Nesting depth of a JSON value (a scalar is 0). Bounded by serde's own recursion limit.
fn depth(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// A metadata value as stored: trimmed; control characters other than line breaks and tabs
/// refused (604), on every path that writes metadata.
pub fn clean_text(s: &str) -> Result<String, Error> {
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Error::InvalidMetadata);
    }
    Ok(s.trim().to_owned())
}

/// Keeps only the declared fields of `input`: each must be a string (trimmed); a required
/// field that is absent or empty fails. Undeclared keys are dropped (spec §3.4).
pub fn validate(
    fields: &[MetaField],
    input: &Map<String, Value>,
) -> Result<Map<String, Value>, Error> {
    let mut out = Map::new();
    for f in fields {
        match get_path(input, &f.path) {
            Some(Value::String(s)) if !s.trim().is_empty() => {
                set_path(&mut out, &f.path, Value::String(clean_text(s)?));
            }
            Some(Value::String(_)) | None | Some(Value::Null) => {
                if f.required {
                    return Err(Error::InvalidMetadata);
                }
            }
            Some(_) => return Err(Error::InvalidMetadata),
        }
    }
    Ok(out)
}

/// The claims of a user JWT (spec §5) before signing.
pub struct ClaimInput<'a> {
    pub settings: &'a AppSettings,
    /// The `iss` claim (the issuer of the app's discovery document).
    pub issuer: &'a str,
    pub handle: &'a str,
    pub anonymous: bool,
    pub user_name: Option<&'a str>,
    pub metadata: &'a Map<String, Value>,
    pub now_secs: i64,
}

/// Builds the claim set: `aud`, `sub`, `exp`, `iat`, optional `email`, then the user's
/// metadata top-level keys; a required field that is empty fails with 604.
pub fn user_claims(input: &ClaimInput<'_>) -> Result<Map<String, Value>, Error> {
    let s = input.settings;
    let hours = if s.user_jwt_expiration <= 0 {
        1
    } else {
        s.user_jwt_expiration
    };
    let mut claims = Map::new();
    claims.insert("iss".into(), Value::String(input.issuer.to_owned()));
    claims.insert("aud".into(), Value::String(s.audience().to_owned()));
    claims.insert("sub".into(), Value::String(input.handle.to_owned()));
    claims.insert("exp".into(), Value::from(input.now_secs + hours * 3600));
    claims.insert("iat".into(), Value::from(input.now_secs));
    let mut email = s.meta_data_email;
    let mut m = input.metadata.clone();
    // `email` and `userName` are Tessera's to set (the handle, the user name): whatever stored
    // metadata holds there (an inviter's values, say) never reaches the claims.
    m.remove("email");
    m.remove("userName");
    for f in &s.meta_data {
        if f.field_name == "email" {
            set_path(&mut m, &f.path, Value::String(input.handle.to_owned()));
            email = false;
        }
        let value = if input.anonymous {
            Some(format!("ANON_{}", f.field_name))
        } else {
            get_path(&m, &f.path)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        match value {
            Some(v) if !v.is_empty() => set_path(&mut m, &f.path, Value::String(v)),
            _ if f.required => return Err(Error::InvalidMetadata),
            _ => {}
        }
    }
    if email {
        claims.insert("email".into(), Value::String(input.handle.to_owned()));
    }
    if s.user_names_enabled
        && let Some(name) = input.user_name
    {
        m.insert("userName".into(), Value::String(name.to_owned()));
    }
    for (k, v) in m {
        if !REGISTERED_CLAIMS.contains(&k.as_str()) {
            claims.insert(k, v);
        }
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(path: &str, name: &str, required: bool) -> MetaField {
        MetaField {
            id: None,
            path: path.into(),
            required,
            field_name: name.into(),
            can_edit: Some(true),
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn validate_keeps_declared_string_fields_only() {
        let fields = [
            field("user_data.name", "name", true),
            field("nick", "nick", false),
        ];
        let input = obj(json!({"user_data": {"name": "  Ann ", "x": 1}, "evil": "y"}));
        assert_eq!(
            validate(&fields, &input).unwrap(),
            obj(json!({"user_data": {"name": "Ann"}}))
        );
        assert_eq!(
            validate(&fields, &obj(json!({}))),
            Err(Error::InvalidMetadata)
        );
        assert_eq!(
            validate(&fields, &obj(json!({"user_data": {"name": {"a": 1}}}))),
            Err(Error::InvalidMetadata)
        );
        assert_eq!(
            validate(&fields, &obj(json!({"user_data": {"name": "  "}}))),
            Err(Error::InvalidMetadata)
        );
        assert_eq!(parse_input(Some("[1]")), Err(Error::InvalidMetadata));
        assert_eq!(parse_input(Some("{bad")), Err(Error::InvalidMetadata));
        let deep = format!("{}1{}", r#"{"a":"#.repeat(17), "}".repeat(17));
        assert_eq!(parse_input(Some(&deep)), Err(Error::InvalidMetadata));
        let ok = format!("{}1{}", r#"{"a":"#.repeat(16), "}".repeat(16));
        assert!(parse_input(Some(&ok)).is_ok());
    }

    fn claims(
        settings: &AppSettings,
        m: Value,
        anonymous: bool,
        user_name: Option<&str>,
    ) -> Result<Value, Error> {
        user_claims(&ClaimInput {
            settings,
            issuer: "http://t/apps/a",
            handle: "ann@x.de",
            anonymous,
            user_name,
            metadata: &obj(m),
            now_secs: 1000,
        })
        .map(Value::Object)
    }

    #[test]
    fn spec_section_5_step_by_step() {
        let mut s = AppSettings::default();
        // Step 1-2: aud defaults to "none", email claim on by default, exp = 24 h.
        let c = claims(&s, json!({}), false, None).unwrap();
        assert_eq!(
            c,
            json!({"iss": "http://t/apps/a", "aud": "none", "sub": "ann@x.de", "exp": 1000 + 24 * 3600, "iat": 1000, "email": "ann@x.de"})
        );
        // 0 hours means one hour.
        s.user_jwt_expiration = 0;
        s.realm_app_id = "realm-1".into();
        let c = claims(&s, json!({}), false, None).unwrap();
        assert_eq!(c["exp"], 1000 + 3600);
        assert_eq!(c["aud"], "realm-1");
        // Step 4: nested paths, and a field named email takes the handle instead of the claim.
        s.meta_data = vec![
            field("user_data.name", "name", true),
            field("contact.mail", "email", false),
        ];
        let c = claims(&s, json!({"user_data": {"name": "Ann"}}), false, None).unwrap();
        assert_eq!(c["user_data"], json!({"name": "Ann"}));
        assert_eq!(c["contact"], json!({"mail": "ann@x.de"}));
        assert!(c.get("email").is_none());
        // Required and empty fails.
        assert_eq!(
            claims(&s, json!({}), false, None),
            Err(Error::InvalidMetadata)
        );
        // Anonymous users get placeholders.
        let c = claims(&s, json!({}), true, None).unwrap();
        assert_eq!(c["user_data"]["name"], "ANON_name");
        // Step 5: userName only when the app enables user names.
        let c = claims(
            &s,
            json!({"user_data": {"name": "Ann"}}),
            false,
            Some("ann"),
        )
        .unwrap();
        assert!(c.get("userName").is_none());
        s.user_names_enabled = true;
        let c = claims(
            &s,
            json!({"user_data": {"name": "Ann"}}),
            false,
            Some("ann"),
        )
        .unwrap();
        assert_eq!(c["userName"], "ann");
    }

    #[test]
    fn metadata_never_overrides_registered_claims() {
        let s = AppSettings::default();
        let c = claims(&s, json!({"sub": "victim", "exp": 9_999_999_999i64, "aud": "x", "iat": 1, "nbf": 1, "iss": "me", "jti": "j", "ok": "1"}), false, None).unwrap();
        assert_eq!(c["sub"], "ann@x.de");
        assert_eq!(c["exp"], 1000 + 24 * 3600);
        assert_eq!(c["aud"], "none");
        assert_eq!(c["iat"], 1000);
        assert!(c.get("nbf").is_none() && c.get("jti").is_none());
        assert_eq!(c["iss"], "http://t/apps/a");
        assert_eq!(c["ok"], "1");
    }

    #[test]
    fn stored_metadata_never_sets_email_or_user_name() {
        // Values an inviter stored under `email` or `userName` stay out of the claims.
        let s = AppSettings::default();
        let c = claims(
            &s,
            json!({"email": "ceo@corp", "userName": "boss"}),
            false,
            None,
        )
        .unwrap();
        assert_eq!(c["email"], "ann@x.de");
        assert!(c.get("userName").is_none(), "{c}");
    }
}
