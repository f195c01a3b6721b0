//! Standard routes: per-app JWKS (RFC 7517) and OpenID discovery metadata, and health.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

use super::error::problem_from;
use crate::domain::Core;

pub fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/apps/{app_id}/.well-known/jwks.json", get(jwks))
        .route(
            "/apps/{app_id}/.well-known/openid-configuration",
            get(openid),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

fn json(v: &serde_json::Value) -> Response {
    let mut res = (StatusCode::OK, v.to_string()).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res
}

async fn jwks(State(core): State<Arc<Core>>, Path(app_id): Path<String>) -> Response {
    match core.jwks(&app_id).await {
        Ok(v) => json(&v),
        Err(e) => problem_from(&e),
    }
}

async fn openid(State(core): State<Arc<Core>>, Path(app_id): Path<String>) -> Response {
    match core.openid_configuration(&app_id).await {
        Ok(v) => json(&v),
        Err(e) => problem_from(&e),
    }
}

/// Alive: the process answers.
async fn healthz() -> &'static str {
    "ok"
}

/// Ready: the database answers.
async fn readyz(State(core): State<Arc<Core>>) -> Response {
    match core.store.ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => problem_from(&e.into()),
    }
}
