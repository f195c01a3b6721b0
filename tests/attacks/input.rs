//! Hostile input on every route: control characters in every string field, oversized and
//! deeply nested bodies, structured values where strings belong, look-alike handles.

use serde_json::{Value, json};

use crate::helpers::*;

/// Every CosyncJWT route with the string fields it reads.
const ROUTES: &[(&str, &[&str])] = &[
    ("login", &["handle", "password"]),
    ("loginAnonymous", &["handle", "locale"]),
    ("signup", &["handle", "password", "metaData", "locale"]),
    ("completeSignup", &["handle", "code"]),
    ("invite", &["handle", "senderUserId", "metaData"]),
    (
        "register",
        &["handle", "password", "code", "metaData", "locale"],
    ),
    ("forgotPassword", &["handle"]),
    ("resetPassword", &["handle", "password", "code"]),
    ("changePassword", &["password", "newPassword"]),
    ("setUserName", &["userName"]),
    ("setLocale", &["locale"]),
    ("setUserMetadata", &["metaData"]),
    ("deleteAccount", &["handle", "password"]),
    ("loginComplete", &["loginToken", "code"]),
    ("setPhone", &["phone"]),
    ("verifyPhone", &["code"]),
    ("setTwoFactorGoogleVerification", &["twoFactor", "code"]),
];

fn valid(field: &str) -> String {
    match field {
        "handle" => "someone@x.de".into(),
        "password" | "newPassword" => md5_hex("pw"),
        "code" => "123456".into(),
        "metaData" => "{}".into(),
        "locale" => "EN".into(),
        "phone" => "+442079460000".into(),
        "twoFactor" => "true".into(),
        _ => "value".into(),
    }
}

#[tokio::test]
async fn control_characters_in_every_string_field_are_refused_cleanly() {
    let server = TestServer::on(Backend::Sqlite);
    let app = server.create_app("Hostile", "code");
    server.set(
        &app,
        &[
            "invitationEnabled=true",
            "anonymousLoginEnabled=true",
            "userNamesEnabled=true",
            "twoFactorVerification=google",
            // Declared fields, so metaData is read (spec §3.4) and its values checked.
            r#"metaData=[{"path":"a","fieldName":"a","required":false,"canEdit":true}]"#,
            r#"metaDataInvite=[{"path":"b","fieldName":"b","required":false}]"#,
        ],
    );
    let at = sign_up(&server, &app, "host@x.de", "pw").await["access-token"]
        .as_str()
        .unwrap()
        .to_owned();
    for (route, fields) in ROUTES {
        let headers = [
            ("app-token", app.app_token.as_str()),
            ("access-token", at.as_str()),
        ];
        for field in *fields {
            for bad in ["a\u{0}b", "a\u{7}b", "a\u{1b}[31mb", "\u{202e}abc", "a\nb"] {
                let mut body = serde_json::Map::new();
                for f in *fields {
                    body.insert((*f).into(), Value::String(valid(f)));
                }
                body.insert(
                    (*field).into(),
                    Value::String(format!("{}{bad}", valid(field))),
                );
                let r = server
                    .json(
                        &format!("/api/appuser/{route}"),
                        &headers,
                        Value::Object(body),
                    )
                    .await;
                // Never a server error and never a success built on the hostile value (a
                // route may still answer its usual refusal first, e.g. 600 for a password).
                assert_eq!(
                    r.status, 400,
                    "{route}.{field} {bad:?}: {} {}",
                    r.status, r.text
                );
                let code = r.json()["code"].as_u64().unwrap();
                assert!(code != 500, "{route}.{field} {bad:?}: {}", r.text);
            }
        }
    }
    // The host account is untouched by all of it.
    assert_eq!(
        server
            .get("/api/appuser/getUser", &[("access-token", at.as_str())])
            .await
            .json()["handle"],
        "host@x.de"
    );
}

#[tokio::test]
async fn oversized_nested_and_mistyped_bodies() {
    let server = TestServer::on(Backend::Sqlite);
    let app = server.create_app("Shapes", "code");
    server.set(
        &app,
        &[r#"metaData=[{"path":"a","fieldName":"a","required":false,"canEdit":true}]"#],
    );
    let h = app.header();
    let pw = md5_hex("pw");
    let signup = |body: Value| server.json("/api/appuser/signup", &h, body);
    // A body over 64 kB, a field over 4 kB.
    signup(json!({"handle": "a@x.de", "password": pw, "locale": "x".repeat(70_000)}))
        .await
        .assert_code(602);
    signup(json!({"handle": format!("{}@x.de", "a".repeat(5_000)), "password": pw}))
        .await
        .assert_code(602);
    // Metadata nested deeper than 16 levels; a body nested past the JSON parser's limit.
    let deep = format!("{}1{}", r#"{"a":"#.repeat(40), "}".repeat(40));
    signup(json!({"handle": "a@x.de", "password": pw, "metaData": deep}))
        .await
        .assert_code(604);
    let very_deep = format!(
        r#"{{"handle":"a@x.de","password":"{pw}","x":{}1{}}}"#,
        "[".repeat(300),
        "]".repeat(300)
    );
    server
        .raw(
            reqwest::Method::POST,
            "/api/appuser/signup",
            &h,
            Some("application/json"),
            very_deep.into(),
        )
        .await
        .assert_code(602);
    // Objects, arrays, numbers and booleans where a string belongs (NoSQL-injection shapes).
    for handle in [json!({"$gt": ""}), json!(["a@x.de"]), json!(true)] {
        signup(json!({"handle": handle, "password": pw}))
            .await
            .assert_code(602);
    }
    server
        .json(
            "/api/appuser/login",
            &h,
            json!({"handle": "a@x.de", "password": {"$ne": null}}),
        )
        .await
        .assert_code(602);
    assert!(server.outbox().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn look_alike_handles_are_one_account_or_refused() {
    let server = TestServer::on(Backend::Sqlite);
    let app = server.create_app("Alike", "none");
    let signup = |handle: &'static str| {
        let server = &server;
        let h = app.header();
        async move {
            server
                .form(
                    "/api/appuser/signup",
                    &h,
                    &[("handle", handle), ("password", &md5_hex("pw"))],
                )
                .await
        }
    };
    assert_eq!(signup("kate@x.de").await.status, 200);
    // Case and Unicode case mappings of the same letters (the Kelvin sign lower-cases to
    // `k`), full-width-free NFC variants and whitespace reach the same account.
    for same in ["KATE@X.DE", " kate@x.de ", "\u{212a}ate@x.de"] {
        signup(same).await.assert_code(601);
    }
    // Invisible characters that would make a look-alike are refused outright.
    for hidden in [
        "ka\u{200b}te@x.de",
        "kate\u{feff}@x.de",
        "k\u{00ad}ate@x.de",
    ] {
        signup(hidden).await.assert_code(602);
    }
}
