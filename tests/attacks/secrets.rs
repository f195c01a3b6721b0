//! Nothing secret leaves: not in logs, audit events, error bodies or HTML pages, and pages
//! carry the headers that keep them out of frames and scripts.

use crate::helpers::*;

#[tokio::test]
async fn no_password_code_or_token_in_logs_audit_or_errors() {
    let server = TestServer::on(Backend::Sqlite);
    let app = server.create_app("Quiet", "code");
    let pw = md5_hex("the password");
    let h = app.header();
    server
        .form(
            "/api/appuser/signup",
            &h,
            &[("handle", "quiet@x.de"), ("password", &pw)],
        )
        .await
        .assert_true();
    let code = code_in(&server.outbox().pop().unwrap());
    let done = server
        .form(
            "/api/appuser/completeSignup",
            &h,
            &[("handle", "quiet@x.de"), ("code", &code)],
        )
        .await;
    let access = done.json()["access-token"].as_str().unwrap().to_owned();
    let wrong = server
        .form(
            "/api/appuser/login",
            &h,
            &[("handle", "quiet@x.de"), ("password", &md5_hex("no"))],
        )
        .await;
    wrong.assert_code(600);
    let bad_token = server
        .get(
            "/api/appuser/getUser",
            &[("access-token", &format!("{access}x"))],
        )
        .await;
    let mut seen: Vec<String> = server.drain_log();
    seen.push(wrong.text.clone());
    seen.push(bad_token.text.clone());
    let audit = server.cli(&[
        "audit",
        "list",
        "--app",
        &app.app_id,
        "--json",
        "--limit",
        "1000",
    ]);
    seen.push(String::from_utf8(audit.stdout).unwrap());
    for text in &seen {
        for secret in [
            pw.as_str(),
            code.as_str(),
            access.as_str(),
            app.app_token.as_str(),
            "quiet@x.de",
        ] {
            assert!(!text.contains(secret), "{secret:?} leaked into: {text}");
        }
    }
}

#[tokio::test]
async fn html_pages_carry_security_headers() {
    let server = TestServer::on(Backend::Sqlite);
    let app = server.create_app("Pages", "link");
    let page = server
        .get(
            &format!(
                "/api/appuser/completeSignup?appToken={}&handle=a@x.de&code=123456",
                app.app_token
            ),
            &[],
        )
        .await;
    let docs = server.get("/docs", &[]).await;
    for p in [&page, &docs] {
        assert!(p.content_type.starts_with("text/html"));
        for (name, want) in [
            ("x-frame-options", "DENY"),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
        ] {
            assert_eq!(p.headers.get(name).unwrap(), want, "{name}");
        }
        let csp = p
            .headers
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    }
}
