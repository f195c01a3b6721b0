//! The CosyncJWT end-user routes (`/api/appuser/*`, spec §3), one file per group.

mod account;
mod doc;
mod invites;
mod password;
mod session;
mod two_factor;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;

use super::error::{WireError, json_body};
use crate::domain::Core;
use crate::domain::tokens::Issued;

pub fn router() -> OpenApiRouter<Arc<Core>> {
    OpenApiRouter::new()
        .merge(session::router())
        .merge(password::router())
        .merge(invites::router())
        .merge(account::router())
        .merge(two_factor::router())
}

/// A successful CosyncJWT answer.
pub enum Reply {
    /// Exactly the four bytes `true` (Swift compares the raw text).
    True,
    Json(Value),
    Html(String),
}

pub type Answer = Result<Reply, WireError>;

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Reply::True => json_body(StatusCode::OK, "true".into()),
            Reply::Json(v) => json_body(StatusCode::OK, v.to_string()),
            Reply::Html(html) => {
                let mut res = (StatusCode::OK, html).into_response();
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=UTF-8"),
                );
                super::security_headers(res.headers_mut());
                res
            }
        }
    }
}

/// `{"jwt","access-token"}`, plus `signed-user-token` where the flow issues one.
pub fn issued_json(issued: Issued) -> Value {
    let mut v = json!({"jwt": issued.jwt, "access-token": issued.access_token});
    if let (Some(t), Some(obj)) = (issued.signed_user_token, v.as_object_mut()) {
        obj.insert("signed-user-token".into(), Value::String(t));
    }
    v
}
