//! The OpenAPI document (valid OpenAPI 3.1, every served route in it), the `/docs` page, the
//! Prometheus metrics and the per-request log line.

use serde_json::Value;

use crate::helpers::*;

const VALIDATE: &str = r#"
import json, sys
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename
spec, _ = read_from_filename(sys.argv[1])
validate(spec)
print(spec["openapi"])
"#;

fn validator_available() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install openapi-spec-validator"
        );
        eprintln!("skipping the schema check: openapi-spec-validator not installed");
    }
    ok
}

/// Every route the service serves, as (method, path template).
const SERVED: &[(&str, &str)] = &[
    ("post", "/api/appuser/login"),
    ("post", "/api/appuser/loginAnonymous"),
    ("post", "/api/appuser/signup"),
    ("post", "/api/appuser/completeSignup"),
    ("get", "/api/appuser/completeSignup"),
    ("post", "/api/appuser/invite"),
    ("post", "/api/appuser/register"),
    ("post", "/api/appuser/forgotPassword"),
    ("post", "/api/appuser/resetPassword"),
    ("post", "/api/appuser/changePassword"),
    ("get", "/api/appuser/getUser"),
    ("get", "/api/appuser/getApplication"),
    ("get", "/api/appuser/userNameAvailable"),
    ("post", "/api/appuser/setUserName"),
    ("post", "/api/appuser/setLocale"),
    ("post", "/api/appuser/setUserMetadata"),
    ("post", "/api/appuser/deleteAccount"),
    ("post", "/api/appuser/loginComplete"),
    ("post", "/api/appuser/setPhone"),
    ("post", "/api/appuser/verifyPhone"),
    ("post", "/api/appuser/setTwoFactorGoogleVerification"),
    ("post", "/api/appuser/setTwoFactorPhoneVerification"),
    ("get", "/apps/{app_id}/.well-known/jwks.json"),
    ("get", "/apps/{app_id}/.well-known/openid-configuration"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
    ("get", "/admin/v1/tokens"),
    ("post", "/admin/v1/tokens"),
    ("delete", "/admin/v1/tokens/{token_id}"),
    ("get", "/admin/v1/apps"),
    ("post", "/admin/v1/apps"),
    ("get", "/admin/v1/apps/{app_id}"),
    ("patch", "/admin/v1/apps/{app_id}"),
    ("delete", "/admin/v1/apps/{app_id}"),
    ("post", "/admin/v1/apps/{app_id}/suspend"),
    ("post", "/admin/v1/apps/{app_id}/activate"),
    ("post", "/admin/v1/apps/{app_id}/keys/rotate"),
    ("get", "/admin/v1/apps/{app_id}/stats"),
    ("get", "/admin/v1/apps/{app_id}/templates"),
    ("put", "/admin/v1/apps/{app_id}/templates/{name}/{locale}"),
    ("get", "/admin/v1/apps/{app_id}/users"),
    ("get", "/admin/v1/apps/{app_id}/users/lookup"),
    ("get", "/admin/v1/apps/{app_id}/users/{user_id}"),
    ("delete", "/admin/v1/apps/{app_id}/users/{user_id}"),
    ("post", "/admin/v1/apps/{app_id}/users/{user_id}/suspend"),
    ("post", "/admin/v1/apps/{app_id}/users/{user_id}/activate"),
    ("put", "/admin/v1/apps/{app_id}/users/{user_id}/metadata"),
    (
        "post",
        "/admin/v1/apps/{app_id}/users/{user_id}/reset-password",
    ),
    (
        "post",
        "/admin/v1/apps/{app_id}/users/{user_id}/disable-2fa",
    ),
    ("get", "/admin/v1/apps/{app_id}/signups"),
    ("delete", "/admin/v1/apps/{app_id}/signups"),
    ("post", "/admin/v1/apps/{app_id}/signups/resend"),
    ("get", "/admin/v1/apps/{app_id}/invites"),
    ("post", "/admin/v1/apps/{app_id}/invites"),
    ("delete", "/admin/v1/apps/{app_id}/invites"),
    ("post", "/admin/v1/apps/{app_id}/invites/resend"),
    ("get", "/admin/v1/audit"),
];

async fn openapi_document_is_valid_and_complete(backend: Backend) {
    let server = TestServer::on(backend);
    let r = server.get("/openapi.json", &[]).await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["openapi"].as_str().unwrap().get(..3), Some("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                documented.push((method.to_owned(), path.clone()));
            }
        }
    }
    let mut served: Vec<(String, String)> = SERVED
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    served.sort();
    documented.sort();
    assert_eq!(
        documented, served,
        "the document lists exactly the served routes"
    );
    // Each documented route is really routed (a wrong method or path would be 405/404).
    let app = server.create_app("Doc", "code");
    for (method, path) in &documented {
        let concrete = path
            .replace("{app_id}", &app.app_id)
            .replace("{user_id}", "u")
            .replace("{token_id}", "t")
            .replace("{name}", "signUp")
            .replace("{locale}", "EN");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = server
            .raw(method.clone(), &concrete, &[], None, Vec::new())
            .await;
        let unrouted = r.text.contains("no such route") || r.status == 405;
        assert!(
            !unrouted,
            "{method} {concrete} is documented but not routed: {} {}",
            r.status, r.text
        );
    }
    // The CosyncJWT routes document both body encodings.
    let signup = &doc["paths"]["/api/appuser/signup"]["post"]["requestBody"]["content"];
    assert!(
        signup.get("application/json").is_some()
            && signup.get("application/x-www-form-urlencoded").is_some()
    );
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert!(
        schemes.contains_key("app_token")
            && schemes.contains_key("access_token")
            && schemes.contains_key("admin_token")
    );

    if validator_available() {
        let file = server.dir.path().join("openapi.json");
        std::fs::write(&file, &r.text).unwrap();
        let out = std::process::Command::new("python3")
            .args(["-c", VALIDATE, file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "not a valid OpenAPI document: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The reference page is rendered from the same document.
    let page = server.get("/docs", &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"));
    assert!(page.headers.get("content-security-policy").is_some());
    for (_, path) in SERVED {
        assert!(page.text.contains(path), "/docs lacks {path}");
    }
}

async fn metrics_and_request_log(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Metered", "code");
    sign_up(&server, &app, "m@x.de", "pw").await;
    let h = app.header();
    let login = |pw: &'static str| {
        let server = &server;
        async move {
            server
                .form(
                    "/api/appuser/login",
                    &h,
                    &[("handle", "m@x.de"), ("password", &md5_hex(pw))],
                )
                .await
        }
    };
    assert_eq!(login("pw").await.status, 200);
    login("wrong").await.assert_code(600);
    let traced = server
        .raw(
            reqwest::Method::GET,
            "/api/appuser/getApplication",
            &[
                ("app-token", app.app_token.as_str()),
                ("x-request-id", "trace-42"),
            ],
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(traced.headers.get("x-request-id").unwrap(), "trace-42");
    let made = server.get("/healthz", &[]).await;
    let made_id = made
        .headers
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(made_id.len(), 32, "{made_id}");

    let m = server.get("/metrics", &[]).await;
    assert_eq!(m.status, 200);
    assert!(m.content_type.starts_with("text/plain"));
    let has = |needle: &str| m.text.lines().any(|l| l.starts_with(needle));
    assert!(
        has("tessera_logins_total{outcome=\"success\"} 1"),
        "{}",
        m.text
    );
    assert!(
        has("tessera_logins_total{outcome=\"failure\"} 1"),
        "{}",
        m.text
    );
    assert!(
        has("tessera_codes_sent_total{channel=\"mail\",message=\"signUp\"} 1"),
        "{}",
        m.text
    );
    assert!(
        has(
            "tessera_http_requests_total{method=\"POST\",route=\"/api/appuser/login\",status=\"200\"} 1"
        ),
        "{}",
        m.text
    );
    assert!(
        has("tessera_http_request_duration_seconds_bucket{"),
        "{}",
        m.text
    );
    assert!(has("tessera_hash_queue_depth 0"), "{}", m.text);
    assert!(
        has("tessera_db_pool_connections{state=\"idle\"}"),
        "{}",
        m.text
    );
    assert!(!m.text.contains("m@x.de") && !m.text.contains(&app.app_token));

    // One log line per request with route, status, app id and request id; no handle.
    let lines = server.wait_for_log("trace-42");
    let line: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    let fields = &line["fields"];
    assert_eq!(fields["route"], "/api/appuser/getApplication");
    assert_eq!(fields["status"], 200);
    assert_eq!(fields["app_id"], app.app_id.as_str());
    assert_eq!(fields["request_id"], "trace-42");
    assert!(fields["latency_ms"].is_number());
    assert!(
        !server
            .drain_log()
            .iter()
            .chain(&lines)
            .any(|l| l.contains("m@x.de"))
    );
}

on_both_backends!(
    openapi_document_is_valid_and_complete,
    metrics_and_request_log,
);
