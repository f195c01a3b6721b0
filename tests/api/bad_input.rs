//! Bad input on each route gets the spec's `{code, message}` and stores nothing.

use serde_json::json;

use crate::helpers::*;

async fn missing_fields_are_403_and_bad_passwords_602(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Bad", "code");
    let h = app.header();
    let pw = md5_hex("pw");
    for (path, body) in [
        ("/api/appuser/signup", vec![("password", pw.as_str())]),
        ("/api/appuser/signup", vec![("handle", "a@x.de")]),
        (
            "/api/appuser/signup",
            vec![("handle", ""), ("password", pw.as_str())],
        ),
        ("/api/appuser/completeSignup", vec![("handle", "a@x.de")]),
        ("/api/appuser/completeSignup", vec![("code", "123456")]),
        ("/api/appuser/login", vec![("handle", "a@x.de")]),
        ("/api/appuser/login", vec![("password", pw.as_str())]),
    ] {
        server.form(path, &h, &body).await.assert_code(403);
    }
    for bad in ["short", &"a".repeat(33), ""] {
        let r = server
            .form(
                "/api/appuser/signup",
                &h,
                &[("handle", "a@x.de"), ("password", bad)],
            )
            .await;
        r.assert_code(if bad.is_empty() { 403 } else { 602 });
    }
    for code in ["12a456", "1234567", "12345", "0x1f00", "１２３４５６"] {
        server
            .form(
                "/api/appuser/completeSignup",
                &h,
                &[("handle", "a@x.de"), ("code", code)],
            )
            .await
            .assert_code(602);
    }
    assert!(server.outbox().is_empty(), "no mail for refused input");
}

async fn credentials_are_checked_with_the_protocol_codes(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Creds", "code");
    let other = TestServer::on(backend).create_app("Elsewhere", "code");
    let pw = md5_hex("pw");
    let body = [("handle", "a@x.de"), ("password", pw.as_str())];
    // No credential, a garbage token, a token from another server: 400.
    server
        .form("/api/appuser/signup", &[], &body)
        .await
        .assert_code(400);
    server
        .form("/api/appuser/login", &[("app-token", "garbage")], &body)
        .await
        .assert_code(400);
    server
        .form("/api/appuser/login", &other.header(), &body)
        .await
        .assert_code(400);
    // A garbage access-token: 405; getUser without one: 602.
    server
        .get("/api/appuser/getUser", &[("access-token", "x.y.z")])
        .await
        .assert_code(405);
    server
        .get("/api/appuser/getUser", &app.header())
        .await
        .assert_code(602);
    // getApplication without any credential: 602; server-secret is refused with 500.
    server
        .get("/api/appuser/getApplication", &[])
        .await
        .assert_code(602);
    server
        .get("/api/appuser/getApplication", &[("server-secret", "x")])
        .await
        .assert_code(500);
    // An app-token is not an access-token and vice versa.
    let v = sign_up(&server, &app, "tok@x.de", "pw").await;
    let at = v["access-token"].as_str().unwrap();
    server
        .form("/api/appuser/login", &[("app-token", at)], &body)
        .await
        .assert_code(400);
    // The React SDK sends its access-token on login: not an app scope → 400.
    server
        .form("/api/appuser/login", &[("access-token", at)], &body)
        .await
        .assert_code(400);
    // The query appToken works for app context.
    let r = server
        .get(
            &format!("/api/appuser/getApplication?appToken={}", app.app_token),
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
}

async fn malformed_hostile_and_oversized_bodies(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Hostile", "code");
    let h = app.header();
    let pw = md5_hex("pw");
    // Malformed JSON and a JSON array.
    for body in ["{\"handle\": ", "[1,2,3]", "\"str\""] {
        server
            .raw(
                reqwest::Method::POST,
                "/api/appuser/signup",
                &h,
                Some("application/json"),
                body.into(),
            )
            .await
            .assert_code(602);
    }
    // An object where a string belongs (NoSQL-injection shape).
    server
        .json(
            "/api/appuser/login",
            &h,
            json!({"handle": {"$ne": ""}, "password": pw}),
        )
        .await
        .assert_code(602);
    server
        .json(
            "/api/appuser/signup",
            &h,
            json!({"handle": ["a@x.de"], "password": pw}),
        )
        .await
        .assert_code(602);
    // NUL and control characters, a 10 kB handle.
    for handle in [
        "a\u{0}b@x.de",
        "a\u{7}@x.de",
        &format!("{}@x.de", "a".repeat(10_000)),
        // Invisible characters that would make a look-alike of another account.
        "a\u{200B}@x.de",
        "\u{FEFF}a@x.de",
        "a\u{202E}@x.de",
        // A display name whose address part is someone else's mailbox.
        "\"a@x.de\" <victim@y.de>",
        "\"q q\"@x.de",
        "a@x.de, victim@y.de",
    ] {
        server
            .json(
                "/api/appuser/signup",
                &h,
                json!({"handle": handle, "password": pw}),
            )
            .await
            .assert_code(602);
    }
    // A body over 64 kB.
    let big = format!(
        "handle=a@x.de&password={pw}&metaData={}",
        "x".repeat(70_000)
    );
    server
        .raw(
            reqwest::Method::POST,
            "/api/appuser/signup",
            &h,
            Some("application/x-www-form-urlencoded"),
            big.into(),
        )
        .await
        .assert_code(602);
    // Duplicate form fields are ambiguous: refused.
    server
        .raw(
            reqwest::Method::POST,
            "/api/appuser/signup",
            &h,
            None,
            format!("handle=a@x.de&handle=b@x.de&password={pw}").into(),
        )
        .await
        .assert_code(602);
    // Bytes that are not UTF-8, raw or percent-encoded; a JSON key given twice.
    for body in [
        b"handle=a\xff@x.de&password=".to_vec(),
        b"handle=a%FF@x.de&password=".to_vec(),
    ] {
        let mut body = body;
        body.extend_from_slice(pw.as_bytes());
        server
            .raw(reqwest::Method::POST, "/api/appuser/signup", &h, None, body)
            .await
            .assert_code(602);
    }
    server
        .raw(
            reqwest::Method::POST,
            "/api/appuser/signup",
            &h,
            Some("application/json"),
            format!(r#"{{"handle":"a@x.de","handle":"b@x.de","password":"{pw}"}}"#).into(),
        )
        .await
        .assert_code(602);
    // A route asked with the wrong method: 405, in the problem shape.
    let wrong = server.get("/api/appuser/signup", &h).await;
    assert_eq!(
        (wrong.status, wrong.content_type.as_str()),
        (405, "application/problem+json")
    );
    assert!(server.outbox().is_empty(), "nothing was sent");
    // Nothing was stored: the handle signs up cleanly now.
    let v = sign_up(&server, &app, "a@x.de", "pw").await;
    assert!(v["jwt"].is_string());
}

async fn locale_and_metadata_validation(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Meta", "code");
    server.set(
        &app,
        &[
            r#"metaData=[{"path":"user_data.name","fieldName":"name","required":true}]"#,
            r#"locales=["EN","FR"]"#,
        ],
    );
    let h = app.header();
    let pw = md5_hex("pw");
    let ok_meta = r#"{"user_data":{"name":"Zoé"}}"#;
    server
        .form(
            "/api/appuser/signup",
            &h,
            &[
                ("handle", "m@x.de"),
                ("password", &pw),
                ("metaData", ok_meta),
                ("locale", "DE"),
            ],
        )
        .await
        .assert_code(602);
    for bad in [
        "{}",
        "not json",
        r#"{"user_data":{"name":7}}"#,
        r#"{"user_data":"flat"}"#,
    ] {
        server
            .form(
                "/api/appuser/signup",
                &h,
                &[("handle", "m@x.de"), ("password", &pw), ("metaData", bad)],
            )
            .await
            .assert_code(604);
    }
    server
        .form(
            "/api/appuser/signup",
            &h,
            &[
                ("handle", "m@x.de"),
                ("password", &pw),
                ("metaData", ok_meta),
                ("locale", "fr"),
            ],
        )
        .await
        .assert_true();
    let code = code_in(&server.outbox().pop().unwrap());
    let v = server
        .form(
            "/api/appuser/completeSignup",
            &h,
            &[("handle", "m@x.de"), ("code", &code)],
        )
        .await
        .json();
    let c = claims(v["jwt"].as_str().unwrap());
    assert_eq!(c["user_data"]["name"], "Zoé");
    let at = v["access-token"].as_str().unwrap().to_owned();
    let u = server
        .get("/api/appuser/getUser", &[("access-token", &at)])
        .await
        .json();
    assert_eq!(u["locale"], "FR");
    assert_eq!(u["metaData"], json!({"user_data": {"name": "Zoé"}}));
    // An app that declares no fields does not read metaData at all (spec §3.4).
    let plain = server.create_app("NoMeta", "code");
    server
        .form(
            "/api/appuser/signup",
            &plain.header(),
            &[
                ("handle", "p@x.de"),
                ("password", &pw),
                ("metaData", "{not json"),
            ],
        )
        .await
        .assert_true();
}

on_both_backends!(
    missing_fields_are_403_and_bad_passwords_602,
    credentials_are_checked_with_the_protocol_codes,
    malformed_hostile_and_oversized_bodies,
    locale_and_metadata_validation,
);
