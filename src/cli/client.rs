//! How admin commands reach the admin API: in process on the configured database (the same
//! router the server runs, marked as a local caller), or over HTTP with `--server` and `--token`.

use anyhow::Context;
use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::Value;
use tower::ServiceExt;

use crate::config::Settings;
use crate::http::admin::LocalAdmin;

/// An admin API reachable locally or remotely.
pub enum AdminClient {
    Local(axum::Router),
    Remote {
        base: String,
        token: String,
        http: reqwest::Client,
    },
}

/// A refused call: the problem document's status and detail.
#[derive(Debug, thiserror::Error)]
#[error("{detail} (HTTP {status})")]
pub struct Refused {
    pub status: u16,
    pub detail: String,
}

impl AdminClient {
    pub async fn new(
        settings: &Settings,
        server: Option<String>,
        token: Option<String>,
    ) -> anyhow::Result<Self> {
        match (server, token) {
            (Some(base), Some(token)) => Ok(Self::Remote {
                base: base.trim_end_matches('/').to_owned(),
                token,
                http: reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(60))
                    .build()?,
            }),
            (Some(_), None) => anyhow::bail!("--server needs --token (or TESSERA_ADMIN_TOKEN)"),
            (None, _) => {
                let public_url = settings.public_url_or(&settings.listen);
                let core = crate::server::build_core(settings, public_url).await?;
                Ok(Self::Local(crate::http::router(
                    core,
                    crate::server::router_options(settings),
                )))
            }
        }
    }

    /// Calls `method path` with an optional JSON body; the JSON answer (`null` for 204), or
    /// the refusal.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let (status, text) = match self {
            Self::Local(router) => {
                let mut req = Request::builder().method(method).uri(path);
                if body.is_some() {
                    req = req.header(header::CONTENT_TYPE, "application/json");
                }
                let mut req =
                    req.body(Body::from(body.map(Value::to_string).unwrap_or_default()))?;
                req.extensions_mut().insert(LocalAdmin);
                let res = router.clone().oneshot(req).await?;
                let status = res.status().as_u16();
                let bytes = axum::body::to_bytes(res.into_body(), 64 * 1024 * 1024).await?;
                (status, String::from_utf8_lossy(&bytes).into_owned())
            }
            Self::Remote { base, token, http } => {
                let url = format!("{base}{path}");
                let method = reqwest::Method::from_bytes(method.as_str().as_bytes())?;
                let mut req = http.request(method, &url).bearer_auth(token);
                if let Some(b) = body {
                    req = req
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(b.to_string());
                }
                let res = req
                    .send()
                    .await
                    .with_context(|| format!("reaching {base}"))?;
                let status = res.status().as_u16();
                (status, res.text().await?)
            }
        };
        if status == 204 {
            return Ok(Value::Null);
        }
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            let detail = value
                .get("detail")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            Err(Refused { status, detail }.into())
        }
    }
}

/// Percent-encodes a path segment or query value.
pub fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
