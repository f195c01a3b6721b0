//! HTTP: the only module that imports axum. Routers merge here; requests get their path
//! normalised (a doubled leading slash from the Swift SDK still routes, spec §1.1) and one
//! log line each, without query strings (they carry tokens and codes).

pub mod admin;
pub mod cors;
pub mod cosync;
pub mod docs;
pub mod error;
pub mod extract;
pub mod limits;
pub mod well_known;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::domain::Core;

/// How the router guards requests.
#[derive(Debug, Clone)]
pub struct RouterOptions {
    /// No request runs longer than this.
    pub deadline: Duration,
    pub limits: limits::LimitSettings,
}

/// All routes, with state.
pub fn router(core: Arc<Core>, options: RouterOptions) -> Router {
    let deadline = options.deadline;
    let limits = Arc::new(limits::Limits::new(&options.limits));
    let (routes, api) = api_router().split_for_parts();
    routes
        .layer(axum::Extension(Arc::new(docs::Docs::new(&api))))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(move |req, next| {
            with_deadline(deadline, req, next)
        }))
        .layer(middleware::from_fn_with_state(core.clone(), cors::cors))
        .layer(middleware::from_fn_with_state(limits, limits::guard))
        .layer(middleware::from_fn_with_state(core.clone(), log_request))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .with_state(core)
}

/// Every route with its OpenAPI description.
pub fn api_router() -> utoipa_axum::router::OpenApiRouter<Arc<Core>> {
    use utoipa::OpenApi;
    utoipa_axum::router::OpenApiRouter::with_openapi(docs::ApiDoc::openapi())
        .merge(cosync::router())
        .merge(well_known::router())
        .merge(admin::router())
        .merge(docs::router())
}

async fn not_found() -> Response {
    error::problem(StatusCode::NOT_FOUND, "no such route")
}

async fn method_not_allowed() -> Response {
    error::problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "this route does not take that method",
    )
}

/// Answers 503 when a request outlives its deadline (a database that stopped answering
/// mid-query, where neither the pool's nor the server's timeout can fire). The handler is
/// dropped at its next await; a transaction in flight rolls back.
async fn with_deadline(deadline: Duration, req: Request, next: Next) -> Response {
    let cosync = req.uri().path().starts_with("/api/appuser/");
    match tokio::time::timeout(deadline, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            tracing::error!(
                deadline_secs = deadline.as_secs(),
                "request exceeded its deadline; answering 503"
            );
            let unavailable = crate::domain::Error::Unavailable("request deadline".into());
            if cosync {
                error::WireError(unavailable).into_response()
            } else {
                error::problem_from(&unavailable)
            }
        }
    }
}

/// One line per request (method, route template, status, latency, app id, request id; never
/// a query string, handle or secret) and the request metrics. The request id comes from a
/// well-formed `x-request-id` header or is made here, and is echoed in the answer.
async fn log_request(State(core): State<Arc<Core>>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    let log = Arc::new(extract::RequestLog::default());
    // Admin routes name the app in their path.
    if let Some(i) = route.split('/').position(|s| s == "{app_id}")
        && let Some(app_id) = req.uri().path().split('/').nth(i)
    {
        let _ = log.app_id.set(app_id.chars().take(64).collect());
    }
    req.extensions_mut().insert(log.clone());
    let mut res = next.run(req).await;
    let status = res.status().as_u16();
    let seconds = start.elapsed().as_secs_f64();
    core.metrics
        .request(method.as_str(), &route, status, seconds);
    tracing::info!(
        %method,
        route,
        status,
        latency_ms = seconds * 1000.0,
        app_id = log.app_id.get().map(String::as_str).unwrap_or(""),
        request_id,
        "request"
    );
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

/// Collapses repeated slashes in the path before routing.
pub fn normalize_path(mut req: Request) -> Request {
    let uri = req.uri();
    if uri.path().contains("//") {
        let mut path = String::with_capacity(uri.path().len());
        for c in uri.path().chars() {
            if !(c == '/' && path.ends_with('/')) {
                path.push(c);
            }
        }
        let pq = match uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        if let Ok(new) = pq.parse::<Uri>() {
            *req.uri_mut() = new;
        }
    }
    req
}

/// Headers for HTML pages: no framing, no sniffing, no scripts from anywhere.
pub fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}
