//! Standard routes: per-app JWKS (RFC 7517) and OpenID discovery metadata, and health.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::problem_from;
use crate::domain::Core;

pub fn router() -> OpenApiRouter<Arc<Core>> {
    OpenApiRouter::new()
        .routes(routes!(jwks))
        .routes(routes!(openid))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

fn json(v: &serde_json::Value) -> Response {
    json_text(v.to_string())
}

fn json_text(text: String) -> Response {
    let mut res = (StatusCode::OK, text).into_response();
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

/// The app's published signing keys (RFC 7517; at most three, RS256, each with a `kid`).
#[utoipa::path(get, path = "/apps/{app_id}/.well-known/jwks.json", tag = "standard",
    params(("app_id" = String, Path)),
    responses((status = 200, description = "A JWK Set", body = Object), (status = 404, description = "No such app")))]
async fn jwks(State(core): State<Arc<Core>>, Path(app_id): Path<String>) -> Response {
    match core
        .jwks_json(&app_id, crate::http::extract::now_ms())
        .await
    {
        Ok(text) => json_text(text.to_string()),
        Err(e) => problem_from(&e),
    }
}

/// OpenID Provider metadata describing the app's tokens (issuer, jwks_uri, algorithms).
#[utoipa::path(get, path = "/apps/{app_id}/.well-known/openid-configuration", tag = "standard",
    params(("app_id" = String, Path)),
    responses((status = 200, description = "Discovery metadata", body = Object), (status = 404, description = "No such app")))]
async fn openid(State(core): State<Arc<Core>>, Path(app_id): Path<String>) -> Response {
    match core.openid_configuration(&app_id).await {
        Ok(v) => json(&v),
        Err(e) => problem_from(&e),
    }
}

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "standard", responses((status = 200, description = "`ok`", body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// Ready: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "standard",
    responses((status = 200, description = "`ready`", body = String), (status = 503, description = "The database does not answer")))]
async fn readyz(State(core): State<Arc<Core>>) -> Response {
    match core.store.ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => problem_from(&e.into()),
    }
}

/// Prometheus text exposition: requests and latency per route and status, logins by outcome,
/// codes sent, lockouts, hashing queue depth, database pool use.
#[utoipa::path(get, path = "/metrics", tag = "standard",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(State(core): State<Arc<Core>>) -> Response {
    let (size, idle) = core.store.pool_stats();
    let body = core.metrics.render(core.hasher.queue_depth(), size, idle);
    let mut res = (StatusCode::OK, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}
