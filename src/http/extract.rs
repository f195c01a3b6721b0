//! Our own extractor for the CosyncJWT routes, so every rejection uses the protocol's error
//! shape. Bodies may be JSON, form-encoded, or form without a Content-Type (Swift); fields
//! are typed strictly: an object or array where a string belongs is 602.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use secrecy::SecretString;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

use super::error::WireError;
use crate::domain::auth::{Caller, Presented};
use crate::domain::{Core, Error};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest single field (metaData has its own, larger limit).
pub const MAX_FIELD_BYTES: usize = 4 * 1024;
pub const MAX_METADATA_FIELD_BYTES: usize = 16 * 1024;

/// One field as it arrived.
#[derive(Debug, Clone)]
enum Field {
    Text(String),
    Number(String),
    Bool(bool),
    Null,
    /// An object or array: never acceptable where the protocol expects a scalar.
    Structured,
}

/// A JSON object's members in order; a repeated key is an error, as a repeated form field is
/// (which of two values counts would otherwise depend on the parser).
struct UniqueObject(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for UniqueObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = UniqueObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<UniqueObject, A::Error> {
                let mut seen = std::collections::HashSet::new();
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Value>()? {
                    if !seen.insert(k.clone()) {
                        return Err(serde::de::Error::custom("duplicate key"));
                    }
                    out.push((k, v));
                }
                Ok(UniqueObject(out))
            }
        }
        d.deserialize_map(Members)
    }
}

/// Whether a JSON object names a key twice at its top level (serde keeps the last silently).
pub fn repeats_a_key(bytes: &[u8]) -> bool {
    serde_json::from_slice::<UniqueObject>(bytes)
        .err()
        .is_some_and(|e| e.to_string().starts_with("duplicate key"))
}

/// The request's fields: the body's, or for GET routes the query string's.
#[derive(Debug, Default)]
pub struct Fields(HashMap<String, Field>);

impl Fields {
    /// A body's fields: JSON when `json`, else form-encoded (an empty body has none). The one
    /// decoder of every CosyncJWT body (and a fuzz target).
    pub fn from_body(bytes: &[u8], json: bool) -> Result<Self, Error> {
        if json {
            Self::from_json(bytes)
        } else if bytes.iter().all(u8::is_ascii_whitespace) {
            Ok(Self::default())
        } else {
            Self::from_form(bytes)
        }
    }

    fn from_form(bytes: &[u8]) -> Result<Self, Error> {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(bytes) {
            let mut v = v.into_owned();
            // SDKs put `phone=+4479…` in form bodies unencoded, and form decoding turns the `+`
            // into a space: a phone that starts with a space and a digit meant `+`.
            if k == "phone"
                && v.starts_with(' ')
                && v[1..].starts_with(|c: char| c.is_ascii_digit())
            {
                v.replace_range(..1, "+");
            }
            // Bytes that are not UTF-8 decode to U+FFFD: refused, never stored altered.
            if k.contains('\u{FFFD}') || v.contains('\u{FFFD}') {
                return Err(Error::InvalidData);
            }
            if map.insert(k.into_owned(), Field::Text(v)).is_some() {
                return Err(Error::InvalidData);
            }
        }
        Ok(Self(map))
    }

    fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        let Ok(UniqueObject(obj)) = serde_json::from_slice::<UniqueObject>(bytes) else {
            return Err(Error::InvalidData);
        };
        let map = obj
            .into_iter()
            .map(|(k, v)| {
                let f = match v {
                    Value::String(s) => Field::Text(s),
                    Value::Number(n) => Field::Number(n.to_string()),
                    Value::Bool(b) => Field::Bool(b),
                    Value::Null => Field::Null,
                    Value::Array(_) | Value::Object(_) => Field::Structured,
                };
                (k, f)
            })
            .collect();
        Ok(Self(map))
    }

    /// A text field; absent or empty is `None`, the wrong type or an oversized value is 602.
    pub fn text(&self, name: &str) -> Result<Option<String>, Error> {
        let limit = if name == "metaData" {
            MAX_METADATA_FIELD_BYTES
        } else {
            MAX_FIELD_BYTES
        };
        let value = match self.0.get(name) {
            None | Some(Field::Null) => return Ok(None),
            Some(Field::Text(s)) => s.clone(),
            Some(Field::Number(n)) => n.clone(),
            Some(Field::Bool(b)) => b.to_string(),
            Some(Field::Structured) => return Err(Error::InvalidData),
        };
        if value.len() > limit {
            return Err(Error::InvalidData);
        }
        // No field of the protocol has a use for control or invisible characters (metaData's
        // JSON text may hold line breaks and tabs between its tokens). Surrounding whitespace,
        // tabs included, is trimmed where values are normalised.
        let hostile = |c: char| {
            if name == "metaData" {
                c.is_control() && !matches!(c, '\n' | '\r' | '\t')
            } else {
                c.is_control() || crate::domain::handle::invisible(c)
            }
        };
        if value.trim().chars().any(hostile) {
            return Err(Error::InvalidData);
        }
        Ok(Some(value).filter(|v| !v.is_empty()))
    }

    /// A field the route cannot do without: absent or empty is 403.
    pub fn required(&self, name: &str) -> Result<String, Error> {
        self.text(name)?.ok_or(Error::MissingParameter)
    }

    /// A required secret (password, code): kept out of `Debug` from here on.
    pub fn required_secret(&self, name: &str) -> Result<SecretString, Error> {
        self.required(name).map(SecretString::from)
    }

    /// `true`/`"true"` is true, anything else false (spec §1.6 `twoFactor`).
    pub fn flag(&self, name: &str) -> Result<bool, Error> {
        Ok(self.text(name)?.as_deref() == Some("true"))
    }
}

/// What handlers learn about a request for its log line (the app it concerns).
#[derive(Debug, Default)]
pub struct RequestLog {
    pub app_id: std::sync::OnceLock<String>,
}

/// A parsed CosyncJWT request: verified caller and fields.
pub struct CosyncRequest {
    pub caller: Caller,
    pub fields: Fields,
    pub now: i64,
    /// The client's address (the socket peer).
    pub ip: Option<std::net::IpAddr>,
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

/// Milliseconds since the Unix epoch; read once per request at the edge.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl FromRequest<Arc<Core>> for CosyncRequest {
    type Rejection = WireError;

    async fn from_request(req: Request, core: &Arc<Core>) -> Result<Self, Self::Rejection> {
        let now = now_ms();
        let (parts, body) = req.into_parts();
        let ip = parts
            .extensions
            .get::<super::limits::ClientIp>()
            .map(|c| c.0);
        let query =
            Fields::from_form(parts.uri.query().unwrap_or("").as_bytes()).unwrap_or_default();
        let query_token = query.text("appToken").ok().flatten();
        let presented = Presented {
            server_secret: header_str(&parts.headers, "server-secret"),
            app_token: header_str(&parts.headers, "app-token"),
            access_token: header_str(&parts.headers, "access-token"),
            query_app_token: query_token.as_deref(),
        };
        let caller = core.resolve_caller(&presented, now)?;
        if let (Some(log), Some(app_id)) =
            (parts.extensions.get::<Arc<RequestLog>>(), &caller.app_id)
        {
            let _ = log.app_id.set(app_id.clone());
        }
        let bytes: Bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| Error::InvalidData)?;
        let fields = if parts.method == axum::http::Method::GET {
            query
        } else {
            let json = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| {
                    ct.trim_start()
                        .to_ascii_lowercase()
                        .starts_with("application/json")
                });
            Fields::from_body(&bytes, json)?
        };
        Ok(Self {
            caller,
            fields,
            now,
            ip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_follows_node_querystring() {
        let f = Fields::from_form(b"handle=a%2Bb@x.de&metaData={\"a\": \"b c\"}&x=1+2&bad=%zz")
            .unwrap();
        assert_eq!(f.text("handle").unwrap().unwrap(), "a+b@x.de");
        assert_eq!(f.text("metaData").unwrap().unwrap(), "{\"a\": \"b c\"}");
        assert_eq!(f.text("x").unwrap().unwrap(), "1 2");
        assert_eq!(f.text("bad").unwrap().unwrap(), "%zz");
        assert!(Fields::from_form(b"a=1&a=2").is_err());
    }

    #[test]
    fn json_fields_are_typed_strictly() {
        let f = Fields::from_json(
            br#"{"code": 123456, "twoFactor": true, "handle": {"$ne": 1}, "n": null, "e": ""}"#,
        )
        .unwrap();
        assert_eq!(f.text("code").unwrap().unwrap(), "123456");
        assert!(f.flag("twoFactor").unwrap());
        assert_eq!(f.text("handle"), Err(Error::InvalidData));
        assert_eq!(f.text("n").unwrap(), None);
        assert_eq!(f.required("e"), Err(Error::MissingParameter));
        assert_eq!(f.required("missing"), Err(Error::MissingParameter));
        assert!(Fields::from_json(b"[1,2]").is_err());
        assert!(Fields::from_json(b"{bad").is_err());
        let long = format!(r#"{{"handle": "{}"}}"#, "a".repeat(MAX_FIELD_BYTES + 1));
        assert_eq!(
            Fields::from_json(long.as_bytes()).unwrap().text("handle"),
            Err(Error::InvalidData)
        );
    }
}
