//! Guessing, flooding, enumeration and replay: budgets, rate limits, lockouts, single-use
//! codes and tokens, and answers that do not reveal whether an account exists.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn rate_limits_per_client_address_and_trusted_proxies() {
    let server = TestServer::start_on(
        Backend::Sqlite,
        &[
            ("TESSERA_RATE_LIMIT_PER_MIN", "6"),
            ("TESSERA_PUBLIC_RATE_LIMIT_PER_MIN", "6"),
            ("TESSERA_TRUSTED_PROXIES", "127.0.0.1"),
        ],
    );
    let app = server.create_app("Limited", "code");
    let login = |xff: &'static str| {
        let server = &server;
        let h = app.header();
        async move {
            let mut headers = h.to_vec();
            headers.push(("x-forwarded-for", xff));
            server
                .form(
                    "/api/appuser/login",
                    &headers,
                    &[("handle", "no@x.de"), ("password", &md5_hex("pw"))],
                )
                .await
        }
    };
    // A burst of one (6/min) per client: the second call from one client is refused with the
    // protocol's own refusal and a Retry-After, while another client is served.
    login("203.0.113.7").await.assert_code(600);
    let limited = login("203.0.113.7").await;
    limited.assert_code(600);
    assert!(
        limited.headers.get("retry-after").is_some(),
        "{:?}",
        limited.headers
    );
    let other = login("198.51.100.9").await;
    assert!(other.headers.get("retry-after").is_none());
    // Public routes answer 429 in the problem shape.
    let jwks = format!("/apps/{}/.well-known/jwks.json", app.app_id);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            server
                .get(&jwks, &[("x-forwarded-for", "192.0.2.1")])
                .await
                .status,
        );
    }
    assert_eq!(statuses, vec![200, 429, 429]);
    let audit = server.cli(&["audit", "list", "--app", &app.app_id, "--json"]);
    let events: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    let ips: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["ip"].as_str())
        .collect();
    let _ = ips; // Unknown handles have no account to audit; the proxy test below checks IPs.
}

#[tokio::test]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    // 18 a minute: a burst of three per client.
    let server = TestServer::start_on(Backend::Sqlite, &[("TESSERA_RATE_LIMIT_PER_MIN", "18")]);
    let app = server.create_app("Untrusted", "none");
    let pw = md5_hex("pw");
    let wrong = md5_hex("wrong");
    server
        .form(
            "/api/appuser/signup",
            &app.header(),
            &[("handle", "p@x.de"), ("password", &pw)],
        )
        .await;
    // No trusted proxy: X-Forwarded-For is ignored, so changing it buys no new budget.
    let mut statuses = Vec::new();
    for xff in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        let mut headers = app.header().to_vec();
        headers.push(("x-forwarded-for", xff));
        let r = server
            .form(
                "/api/appuser/login",
                &headers,
                &[("handle", "p@x.de"), ("password", &wrong)],
            )
            .await;
        statuses.push(r.headers.get("retry-after").is_some());
    }
    assert_eq!(
        statuses,
        vec![false, false, true],
        "spoofed addresses shared one budget"
    );
    // The audit log has the socket's address for the failed login, not the forged one.
    let out = server.cli(&[
        "audit",
        "list",
        "--app",
        &app.app_id,
        "--action",
        "login",
        "--json",
    ]);
    let events: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(events["events"][0]["ip"], "127.0.0.1", "{events}");
    assert_eq!(events["events"][0]["outcome"], "failure");
}

#[tokio::test]
async fn lockout_follows_max_login_attempts() {
    let server = TestServer::on(Backend::Sqlite);
    let app = server.create_app("Lock", "code");
    server.set(&app, &["maxLoginAttempts=3"]);
    sign_up(&server, &app, "l@x.de", "pw").await;
    let login = |pw: &'static str| {
        let server = &server;
        let h = app.header();
        async move {
            server
                .form(
                    "/api/appuser/login",
                    &h,
                    &[("handle", "l@x.de"), ("password", &md5_hex(pw))],
                )
                .await
        }
    };
    // Parallel guesses cannot exceed the limit: the counter is atomic in the database.
    let guesses: Vec<_> = (0..8).map(|_| login("wrong")).collect();
    for r in futures::future::join_all(guesses).await {
        r.assert_code(600);
    }
    login("pw").await.assert_code(600);
    let out = server.cli(&[
        "audit",
        "list",
        "--app",
        &app.app_id,
        "--action",
        "login.lockout",
        "--json",
    ]);
    let events: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        !events["events"].as_array().unwrap().is_empty(),
        "lockout audited"
    );
}

#[tokio::test]
async fn no_enumeration_when_the_app_hides_account_existence() {
    let server = TestServer::on(Backend::Sqlite);
    let app = server.create_app("Private", "code");
    sign_up(&server, &app, "known@x.de", "pw").await;
    let h = app.header();
    let forgot = |handle: &'static str| {
        let server = &server;
        async move {
            server
                .form("/api/appuser/forgotPassword", &h, &[("handle", handle)])
                .await
        }
    };
    // The compatible default says which handles exist (spec §3.12)...
    forgot("nobody@x.de").await.assert_code(603);
    server
        .form(
            "/api/appuser/signup",
            &h,
            &[("handle", "pending@x.de"), ("password", &md5_hex("pw"))],
        )
        .await
        .assert_true();
    let pending_login = || async {
        server
            .form(
                "/api/appuser/login",
                &h,
                &[("handle", "pending@x.de"), ("password", &md5_hex("x"))],
            )
            .await
    };
    pending_login().await.assert_code(608);
    // ... the private setting answers alike, and mails only real accounts.
    server.set(&app, &["hideAccountExistence=true"]);
    let before = server.outbox().len();
    forgot("nobody@x.de").await.assert_true();
    forgot("known@x.de").await.assert_true();
    pending_login().await.assert_code(600);
    forgot("bad\u{0}handle").await.assert_code(602);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.outbox().len() < before + 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mails = server.outbox();
    assert_eq!(mails.len(), before + 1, "one mail, to the real account");
    assert!(mails.last().unwrap().contains("To: known@x.de"));
}

#[tokio::test]
async fn codes_hold_against_parallel_guesses_reuse_and_other_accounts() {
    let server = TestServer::start_on(Backend::Sqlite, &[("TESSERA_CODE_MAX_ATTEMPTS", "5")]);
    let app = server.create_app("Codes", "code");
    server.set(&app, &["invitationEnabled=true"]);
    let h = app.header();
    server
        .form(
            "/api/appuser/signup",
            &h,
            &[("handle", "g@x.de"), ("password", &md5_hex("pw"))],
        )
        .await
        .assert_true();
    let code = code_in(&server.outbox().pop().unwrap());
    // 30 parallel wrong guesses: the budget of 5 holds, so the right code is refused after.
    let wrong: Vec<String> = (0..30)
        .map(|i| format!("{:06}", (code.parse::<u32>().unwrap() + 1 + i) % 1_000_000))
        .collect();
    let guesses: Vec<_> = wrong
        .iter()
        .map(|c| {
            let server = &server;
            async move {
                server
                    .form(
                        "/api/appuser/completeSignup",
                        &h,
                        &[("handle", "g@x.de"), ("code", c)],
                    )
                    .await
            }
        })
        .collect();
    for r in futures::future::join_all(guesses).await {
        r.assert_code(602);
    }
    server
        .form(
            "/api/appuser/completeSignup",
            &h,
            &[("handle", "g@x.de"), ("code", &code)],
        )
        .await
        .assert_code(602);

    // A reset code works once, and only for its own account.
    sign_up(&server, &app, "a@x.de", "pw").await;
    sign_up(&server, &app, "b@x.de", "pw").await;
    server
        .form("/api/appuser/forgotPassword", &h, &[("handle", "a@x.de")])
        .await
        .assert_true();
    let reset = code_in(&server.outbox().pop().unwrap());
    let new = md5_hex("new");
    let reset_as = |who: &'static str| {
        let (server, new, reset) = (&server, new.clone(), reset.clone());
        async move {
            server
                .form(
                    "/api/appuser/resetPassword",
                    &h,
                    &[("handle", who), ("password", &new), ("code", &reset)],
                )
                .await
        }
    };
    reset_as("b@x.de").await.assert_code(602);
    reset_as("a@x.de").await.assert_true();
    reset_as("a@x.de").await.assert_code(602);

    // An invite code is bound to the invited handle.
    let at = server
        .form(
            "/api/appuser/login",
            &h,
            &[("handle", "b@x.de"), ("password", &md5_hex("pw"))],
        )
        .await
        .json()["access-token"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .form(
            "/api/appuser/invite",
            &[("access-token", at.as_str())],
            &[("handle", "guest@x.de"), ("senderUserId", "u")],
        )
        .await
        .assert_true();
    let invite = code_in(&server.outbox().pop().unwrap());
    server
        .form(
            "/api/appuser/register",
            &h,
            &[
                ("handle", "intruder@x.de"),
                ("password", &md5_hex("pw")),
                ("code", &invite),
            ],
        )
        .await
        .assert_code(602);
}

#[tokio::test]
async fn a_login_token_completes_once() {
    let server = TestServer::on(Backend::Sqlite);
    let app = server.create_app("Once", "code");
    server.set(&app, &["twoFactorVerification=phone"]);
    let at = sign_up(&server, &app, "o@x.de", "pw").await["access-token"]
        .as_str()
        .unwrap()
        .to_owned();
    let user = [("access-token", at.as_str())];
    server
        .form(
            "/api/appuser/setPhone",
            &user,
            &[("phone", "+44 20 7946 0000")],
        )
        .await
        .assert_true();
    let sms_code = |server: &TestServer| {
        let mut files: Vec<_> = std::fs::read_dir(server.data_dir().join("outbox"))
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "sms"))
            .collect();
        files.sort();
        let text = std::fs::read_to_string(files.last().unwrap()).unwrap();
        text.rsplit(' ').next().unwrap().trim().to_owned()
    };
    server
        .form(
            "/api/appuser/verifyPhone",
            &user,
            &[("code", &sms_code(&server))],
        )
        .await
        .assert_true();
    server
        .form(
            "/api/appuser/setTwoFactorPhoneVerification",
            &user,
            &[("twoFactor", "true")],
        )
        .await
        .assert_true();
    let r = server
        .form(
            "/api/appuser/login",
            &app.header(),
            &[("handle", "o@x.de"), ("password", &md5_hex("pw"))],
        )
        .await;
    let token = r.json()["login-token"].as_str().unwrap().to_owned();
    let code = sms_code(&server);
    let complete = || async {
        server
            .form(
                "/api/appuser/loginComplete",
                &app.header(),
                &[("loginToken", token.as_str()), ("code", code.as_str())],
            )
            .await
    };
    assert_eq!(complete().await.status, 200);
    complete().await.assert_code(600);
    // A login-token is not an access-token.
    server
        .get("/api/appuser/getUser", &[("access-token", token.as_str())])
        .await
        .assert_code(405);
}

#[tokio::test]
async fn cross_origin_calls_only_from_an_apps_listed_origins() {
    let server = TestServer::on(Backend::Sqlite);
    let app = server.create_app("Cors", "code");
    server.set(&app, &[r#"corsOrigins=["https://shop.example"]"#]);
    let call = |origin: &'static str| {
        let server = &server;
        let h = app.header();
        async move {
            let mut headers = h.to_vec();
            headers.push(("origin", origin));
            server.get("/api/appuser/getApplication", &headers).await
        }
    };
    let allowed = call("https://shop.example").await;
    assert_eq!(
        allowed.headers.get("access-control-allow-origin").unwrap(),
        "https://shop.example"
    );
    assert!(
        allowed
            .headers
            .get("access-control-allow-credentials")
            .is_none()
    );
    let refused = call("https://evil.example").await;
    assert!(refused.headers.get("access-control-allow-origin").is_none());
    let preflight = |origin: &'static str| {
        let server = &server;
        async move {
            server
                .raw(
                    reqwest::Method::OPTIONS,
                    "/api/appuser/login",
                    &[
                        ("origin", origin),
                        ("access-control-request-method", "POST"),
                    ],
                    None,
                    Vec::new(),
                )
                .await
        }
    };
    let ok = preflight("https://shop.example").await;
    assert_eq!(ok.status, 204);
    assert!(
        ok.headers
            .get("access-control-allow-headers")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("app-token")
    );
    assert!(
        preflight("https://evil.example")
            .await
            .headers
            .get("access-control-allow-origin")
            .is_none()
    );
    let bad = server.cli(&[
        "app",
        "update",
        &app.app_id,
        "--set",
        r#"corsOrigins=["*"]"#,
    ]);
    assert!(!bad.status.success());
    let _ = json!(null);
}
