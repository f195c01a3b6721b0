//! The OpenAPI 3.1 document of every route (generated from the handlers' annotations, so the
//! router and the document cannot drift apart), served at `/openapi.json`, and an API
//! reference page at `/docs` rendered from it on the server (no script, no CDN).

use axum::Extension;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::fmt::Write as _;
use std::sync::Arc;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::Core;
use crate::notify::templates::escape_html;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera",
        description = "Self-hosted identity service: the CosyncJWT end-user protocol (`/api/appuser`), per-app JWKS and discovery, and the admin API (`/admin/v1`)."
    ),
    modifiers(&Credentials),
    tags(
        (name = "cosync", description = "CosyncJWT end-user routes (spec §3): JSON, form-encoded or Content-Type-less form bodies; errors are HTTP 400 `{code, message}`"),
        (name = "standard", description = "JWKS, OpenID discovery, health, metrics, this document"),
        (name = "admin", description = "Administration: bearer admin token; errors are RFC 9457 problem documents"),
    )
)]
pub struct ApiDoc;

/// The credentials the routes take.
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "app_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("app-token"))),
        );
        components.add_security_scheme(
            "access_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("access-token"))),
        );
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document, serialised once, and the page rendered from it.
pub struct Docs {
    json: String,
    html: String,
}

impl Docs {
    pub fn new(api: &utoipa::openapi::OpenApi) -> Self {
        let value = serde_json::to_value(api).unwrap_or(Value::Null);
        Self {
            json: value.to_string(),
            html: render(&value),
        }
    }
}

pub fn router() -> OpenApiRouter<Arc<Core>> {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .routes(routes!(docs_page))
}

/// This OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "standard",
    responses((status = 200, description = "The OpenAPI document of every route", body = Object)))]
async fn openapi_json(Extension(docs): Extension<Arc<Docs>>) -> Response {
    let mut res = (StatusCode::OK, docs.json.clone()).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// The API reference, rendered from the OpenAPI document.
#[utoipa::path(get, path = "/docs", tag = "standard",
    responses((status = 200, description = "An HTML page", content_type = "text/html")))]
async fn docs_page(Extension(docs): Extension<Arc<Docs>>) -> Response {
    let mut res = (StatusCode::OK, docs.html.clone()).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    super::security_headers(res.headers_mut());
    res
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn render(api: &Value) -> String {
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Tessera API</title><style>\
         body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}\
         code{background:#f3f3f3;padding:0 .2em}h3{margin-bottom:.2em}.m{font-weight:bold;text-transform:uppercase}\
         table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}\
         </style></head><body><h1>Tessera API</h1>",
    );
    let text = |v: &Value| escape_html(v.as_str().unwrap_or(""));
    let _ = write!(
        out,
        "<p>{}</p><p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI {}).</p>",
        text(&api["info"]["description"]),
        text(&api["openapi"])
    );
    let empty = serde_json::Map::new();
    let paths = api["paths"].as_object().unwrap_or(&empty);
    for tag in api["tags"].as_array().into_iter().flatten() {
        let name = tag["name"].as_str().unwrap_or("");
        let _ = write!(
            out,
            "<h2>{}</h2><p>{}</p>",
            escape_html(name),
            text(&tag["description"])
        );
        for (path, item) in paths {
            for method in METHODS {
                let op = &item[method];
                if op.is_null()
                    || !op["tags"]
                        .as_array()
                        .is_some_and(|t| t.iter().any(|x| x == name))
                {
                    continue;
                }
                render_operation(&mut out, method, path, op);
            }
        }
    }
    out.push_str("</body></html>");
    out
}

fn render_operation(out: &mut String, method: &str, path: &str, op: &Value) {
    let text = |v: &Value| escape_html(v.as_str().unwrap_or(""));
    let _ = write!(
        out,
        "<h3><span class=\"m\">{method}</span> <code>{}</code></h3>",
        escape_html(path)
    );
    for key in ["summary", "description"] {
        if op[key].is_string() {
            let _ = write!(out, "<p>{}</p>", text(&op[key]));
        }
    }
    if let Some(params) = op["parameters"].as_array() {
        out.push_str("<table><tr><th>parameter</th><th>in</th><th>required</th><th></th></tr>");
        for p in params {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                text(&p["name"]),
                text(&p["in"]),
                p["required"].as_bool().unwrap_or(false),
                text(&p["description"])
            );
        }
        out.push_str("</table>");
    }
    if let Some(content) = op["requestBody"]["content"].as_object() {
        let types: Vec<String> = content.keys().map(|k| escape_html(k)).collect();
        let _ = write!(out, "<p>Body: {}</p>", types.join(", "));
    }
    if let Some(responses) = op["responses"].as_object() {
        out.push_str("<ul>");
        for (status, r) in responses {
            let _ = write!(
                out,
                "<li><b>{}</b> {}</li>",
                escape_html(status),
                text(&r["description"])
            );
        }
        out.push_str("</ul>");
    }
}
