//! The main job end to end: create an app with the CLI, sign up, complete, log in, read.

use serde_json::json;

use crate::helpers::*;

async fn healthz_and_app_list(backend: Backend) {
    let server = TestServer::on(backend);
    let r = server.get("/healthz", &[]).await;
    assert_eq!((r.status, r.text.as_str()), (200, "ok"));
    let app = server.create_app("Listed App", "code");
    let out = server.cli(&["app", "list", "--json"]);
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["apps"][0]["appId"], app.app_id.as_str());
    assert_eq!(list["apps"][0]["name"], "Listed App");
    // Without --json: a table a person reads.
    let out = server.cli(&["app", "list"]);
    let table = String::from_utf8(out.stdout).unwrap();
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("APP ID"), "{table}");
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(&app.app_id) && row.contains("active") && row.ends_with("Listed App"),
        "{table}"
    );
    assert!(app.public_key.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert!(
        app.jwks_url
            .ends_with(&format!("/apps/{}/.well-known/jwks.json", app.app_id))
    );
}

async fn signup_code_flow_with_form_json_and_bare_bodies(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Flow", "code");
    let pw = md5_hex("correct horse");

    // Swift: form body without a Content-Type, '+' sent as %2B.
    let body = format!("handle=Ann%2Btest@Example.com&password={pw}&locale=en");
    let r = server
        .raw(
            reqwest::Method::POST,
            "/api/appuser/signup",
            &app.header(),
            None,
            body.into_bytes(),
        )
        .await;
    r.assert_true();
    assert_eq!(r.content_type, "application/json; charset=UTF-8");
    let mail = server.outbox().pop().unwrap();
    assert!(mail.contains("To: ann+test@example.com"), "{mail}");
    let code = code_in(&mail);

    // React: JSON body with a numeric code.
    let done = server
        .json(
            "/api/appuser/completeSignup",
            &app.header(),
            json!({"handle": "ann+test@example.com", "code": code.parse::<u32>().unwrap()}),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    let v = done.json();
    assert!(
        v["jwt"].is_string() && v["access-token"].is_string() && v["signed-user-token"].is_string()
    );
    assert_eq!(
        claims(v["jwt"].as_str().unwrap())["sub"],
        "ann+test@example.com"
    );

    // The code is single-use.
    server
        .json(
            "/api/appuser/completeSignup",
            &app.header(),
            json!({"handle": "ann+test@example.com", "code": code}),
        )
        .await
        .assert_code(602);

    // Kotlin: JSON with all-string fields; mixed-case handle with spaces logs in.
    let login = server
        .json(
            "/api/appuser/login",
            &app.header(),
            json!({"handle": "  ANN+test@example.COM ", "password": pw}),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    let tokens = login.json();
    let jwt = tokens["jwt"].as_str().unwrap();
    assert_eq!(claims(jwt)["sub"], "ann+test@example.com");
    assert_eq!(claims(jwt)["aud"], "none");
    assert_eq!(claims(jwt)["email"], "ann+test@example.com");
    assert_eq!(header_of(jwt)["alg"], "RS256");
    assert!(header_of(jwt)["kid"].is_string());

    // getUser with the access-token.
    let at = tokens["access-token"].as_str().unwrap();
    let user = server
        .get("/api/appuser/getUser", &[("access-token", at)])
        .await;
    assert_eq!(user.status, 200, "{}", user.text);
    let u = user.json();
    assert_eq!(u["handle"], "ann+test@example.com");
    assert_eq!(u["appId"], app.app_id.as_str());
    assert_eq!(u["locale"], "EN");
    assert_eq!(u["status"], "active");
    assert_eq!(u["twoFactorGoogleVerification"], false);
    assert_eq!(u["metaData"], json!({}));
    let created = u["createdAt"].as_str().unwrap();
    assert_eq!(created.len(), 24, "ISO date with milliseconds: {created}");
    assert!(created.ends_with('Z') && created.as_bytes()[19] == b'.');
    assert!(u["lastLogin"].is_string());

    // A wrong password is 600; an unknown handle is 600 too.
    server
        .form(
            "/api/appuser/login",
            &app.header(),
            &[
                ("handle", "ann+test@example.com"),
                ("password", &md5_hex("nope")),
            ],
        )
        .await
        .assert_code(600);
    server
        .form(
            "/api/appuser/login",
            &app.header(),
            &[("handle", "ghost@example.com"), ("password", &pw)],
        )
        .await
        .assert_code(600);
}

async fn signup_flow_none_answers_tokens_and_code(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Instant", "none");
    let r = server
        .form(
            "/api/appuser/signup",
            &app.header(),
            &[("handle", "bo@example.com"), ("password", &md5_hex("pw"))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert!(v["jwt"].is_string() && v["access-token"].is_string());
    assert!(v["code"].is_u64());
    assert!(v["signed-user-token"].is_string());
    // The account exists at once: a second signup is 601, login works.
    server
        .form(
            "/api/appuser/signup",
            &app.header(),
            &[("handle", "bo@example.com"), ("password", &md5_hex("pw"))],
        )
        .await
        .assert_code(601);
    let login = server
        .form(
            "/api/appuser/login",
            &app.header(),
            &[("handle", "bo@example.com"), ("password", &md5_hex("pw"))],
        )
        .await;
    assert_eq!(login.status, 200);
}

async fn pending_signup_blocks_login_and_a_contested_signup_keeps_no_password(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Pending", "code");
    let h = app.header();
    let attacker = md5_hex("attacker");
    let owner = md5_hex("owner");
    let login = |pw: String| {
        let server = &server;
        async move {
            server
                .form(
                    "/api/appuser/login",
                    &h,
                    &[("handle", "v@example.com"), ("password", &pw)],
                )
                .await
        }
    };
    let signup = |pw: String| {
        let server = &server;
        async move {
            server
                .form(
                    "/api/appuser/signup",
                    &h,
                    &[("handle", "v@example.com"), ("password", &pw)],
                )
                .await
                .assert_true();
            code_in(&server.outbox().pop().unwrap())
        }
    };
    let first_code = signup(attacker.clone()).await;
    login(attacker.clone()).await.assert_code(608);
    // The mailbox owner signs up too, with another password: the earlier code is dead, and
    // whoever completes the signup proves the mailbox, not which password is theirs.
    let owner_code = signup(owner.clone()).await;
    if first_code != owner_code {
        server
            .form(
                "/api/appuser/completeSignup",
                &h,
                &[("handle", "v@example.com"), ("code", &first_code)],
            )
            .await
            .assert_code(602);
    }
    let done = server
        .form(
            "/api/appuser/completeSignup",
            &h,
            &[("handle", "v@example.com"), ("code", &owner_code)],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.json()["jwt"].is_string(), "{}", done.text);
    // Neither requester's password opens the account; a reset sets the owner's.
    login(attacker.clone()).await.assert_code(600);
    login(owner.clone()).await.assert_code(600);
    server
        .form(
            "/api/appuser/forgotPassword",
            &h,
            &[("handle", "v@example.com")],
        )
        .await
        .assert_true();
    let reset = code_in(&server.outbox().pop().unwrap());
    server
        .form(
            "/api/appuser/resetPassword",
            &h,
            &[
                ("handle", "v@example.com"),
                ("password", &owner),
                ("code", &reset),
            ],
        )
        .await
        .assert_true();
    assert_eq!(login(owner).await.status, 200);
    login(attacker).await.assert_code(600);
}

async fn a_resend_with_the_same_password_keeps_it(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Resend", "code");
    let h = app.header();
    let pw = md5_hex("same");
    for _ in 0..2 {
        server
            .form(
                "/api/appuser/signup",
                &h,
                &[("handle", "s@example.com"), ("password", &pw)],
            )
            .await
            .assert_true();
    }
    let code = code_in(&server.outbox().pop().unwrap());
    let done = server
        .form(
            "/api/appuser/completeSignup",
            &h,
            &[("handle", "s@example.com"), ("code", &code)],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    let ok = server
        .form(
            "/api/appuser/login",
            &h,
            &[("handle", "s@example.com"), ("password", &pw)],
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

async fn wrong_codes_spend_a_budget_that_survives_resends(backend: Backend) {
    let server = TestServer::start_on(backend, &[("TESSERA_CODE_MAX_ATTEMPTS", "3")]);
    let app = server.create_app("Budget", "code");
    let pw = md5_hex("pw");
    server
        .form(
            "/api/appuser/signup",
            &app.header(),
            &[("handle", "g@example.com"), ("password", &pw)],
        )
        .await
        .assert_true();
    let code = code_in(&server.outbox().pop().unwrap());
    let wrong = if code == "111111" { "222222" } else { "111111" };
    for _ in 0..2 {
        server
            .form(
                "/api/appuser/completeSignup",
                &app.header(),
                &[("handle", "g@example.com"), ("code", wrong)],
            )
            .await
            .assert_code(602);
    }
    // A resend draws a new code but keeps the spent attempts.
    server
        .form(
            "/api/appuser/signup",
            &app.header(),
            &[("handle", "g@example.com"), ("password", &pw)],
        )
        .await
        .assert_true();
    let code = code_in(&server.outbox().pop().unwrap());
    server
        .form(
            "/api/appuser/completeSignup",
            &app.header(),
            &[("handle", "g@example.com"), ("code", wrong)],
        )
        .await
        .assert_code(602);
    // Budget spent: even the right code is refused now.
    server
        .form(
            "/api/appuser/completeSignup",
            &app.header(),
            &[("handle", "g@example.com"), ("code", &code)],
        )
        .await
        .assert_code(602);
}

async fn doubled_slash_routes_and_get_application_hides_secrets(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Visible", "code");
    let r = server
        .get("//api/appuser/getApplication", &app.header())
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["name"], "Visible");
    for key in [
        "signupEnabled",
        "invitationEnabled",
        "anonymousLoginEnabled",
        "userNamesEnabled",
        "googleLoginEnabled",
        "appleLoginEnabled",
        "passwordFilter",
    ] {
        assert!(v[key].is_boolean(), "{key}");
    }
    for key in [
        "passwordMinLength",
        "passwordMinUpper",
        "passwordMinLower",
        "passwordMinDigit",
        "passwordMinSpecial",
    ] {
        assert!(v[key].is_i64(), "{key}");
    }
    assert_eq!(v["signupFlow"], "code");
    assert_eq!(v["twoFactorVerification"], "none");
    assert!(v["appData"].is_object() && v["locales"].is_array());
    for secret in [
        "appToken",
        "appSecret",
        "appPrivateKey",
        "appPublicKey",
        "emailExtensionAPIKey",
        "TWILIOToken",
        "appId",
    ] {
        assert!(v.get(secret).is_none(), "{secret} must not be returned");
    }
    assert!(!r.text.contains("PRIVATE"));
}

async fn sigterm_and_sigint_stop_the_server_even_with_a_stalled_client(backend: Backend) {
    use std::io::Write;
    for signal in ["TERM", "INT"] {
        let mut server = TestServer::start_on(backend, &[("TESSERA_REQUEST_TIMEOUT_SECS", "1")]);
        assert_eq!(server.get("/healthz", &[]).await.status, 200);
        // A client that sends half its headers and then nothing.
        let addr = server.base.trim_start_matches("http://").to_owned();
        let mut stalled = std::net::TcpStream::connect(&addr).expect("connect");
        stalled
            .write_all(b"POST /api/appuser/login HTTP/1.1\r\nHost: x\r\n")
            .expect("write");
        let status = server
            .signal_and_wait(signal, std::time::Duration::from_secs(15))
            .unwrap_or_else(|| panic!("SIG{signal}: still running after 15 s"));
        assert!(status.success(), "SIG{signal}: exit status {status}");
        drop(stalled);
    }
}

on_both_backends!(
    healthz_and_app_list,
    signup_code_flow_with_form_json_and_bare_bodies,
    signup_flow_none_answers_tokens_and_code,
    pending_signup_blocks_login_and_a_contested_signup_keeps_no_password,
    a_resend_with_the_same_password_keeps_it,
    sigterm_and_sigint_stop_the_server_even_with_a_stalled_client,
    wrong_codes_spend_a_budget_that_survives_resends,
    doubled_slash_routes_and_get_application_hides_secrets,
);
