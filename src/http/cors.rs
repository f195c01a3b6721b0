//! CORS for the CosyncJWT routes, per app: an origin listed in the app's `corsOrigins` may
//! call them from a browser; nobody else, and never with credentials (cookies). A preflight
//! carries no app-token, so it is answered for origins that some app lists; the real request
//! is then checked against its own app's list.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use super::extract::RequestLog;
use crate::domain::Core;

pub async fn cors(State(core): State<Arc<Core>>, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let cosync = req.uri().path().starts_with("/api/appuser/");
    let Some(origin) = origin.filter(|_| cosync) else {
        return next.run(req).await;
    };
    if req.method() == Method::OPTIONS {
        return preflight(&core, &origin).await;
    }
    let log = req.extensions().get::<Arc<RequestLog>>().cloned();
    let mut res = next.run(req).await;
    let app_id = log.as_ref().and_then(|l| l.app_id.get());
    if let Some(app_id) = app_id
        && let Ok(app) = core.app(app_id).await
        && app.settings.cors_origins.contains(&origin)
    {
        allow(res.headers_mut(), &origin);
    }
    res.headers_mut()
        .append(header::VARY, HeaderValue::from_static("origin"));
    res
}

async fn preflight(core: &Core, origin: &str) -> Response {
    let listed = core.list_apps().await.is_ok_and(|apps| {
        apps.iter()
            .any(|a| a.settings.cors_origins.iter().any(|o| o == origin))
    });
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("origin"));
    if listed {
        allow(h, origin);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("app-token, access-token, content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    res
}

fn allow(h: &mut HeaderMap, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
}
