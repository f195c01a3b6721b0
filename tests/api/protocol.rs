//! Every CosyncJWT end-user route of spec §3 (but 2FA): success bodies, the error codes the
//! spec lists, and the fixes of spec §10, over the real server.

use serde_json::json;

use crate::helpers::*;
use crate::smtp::SmtpSink;

async fn tokens_of(
    server: &TestServer,
    app: &TestApp,
    handle: &str,
    password: &str,
) -> (String, String) {
    let r = server
        .form(
            "/api/appuser/login",
            &app.header(),
            &[("handle", handle), ("password", &md5_hex(password))],
        )
        .await;
    assert_eq!(r.status, 200, "login {handle}: {}", r.text);
    let v = r.json();
    (
        v["jwt"].as_str().unwrap().into(),
        v["access-token"].as_str().unwrap().into(),
    )
}

async fn mail_goes_over_smtp_and_a_refused_send_leaves_nothing(backend: Backend) {
    let sink = SmtpSink::start();
    let server = TestServer::start_on(
        backend,
        &[
            ("TESSERA_SMTP_URL", &sink.url()),
            ("TESSERA_MAIL_FROM", "Demo <no-reply@demo.test>"),
        ],
    );
    let app = server.create_app("Smtp", "code");
    let pw = md5_hex("pw");
    *sink.refuse.lock().unwrap() = true;
    server
        .form(
            "/api/appuser/signup",
            &app.header(),
            &[("handle", "s@x.de"), ("password", &pw)],
        )
        .await
        .assert_code(500);
    // Nothing half-created: no pending signup (login is 600, not 608).
    server
        .form(
            "/api/appuser/login",
            &app.header(),
            &[("handle", "s@x.de"), ("password", &pw)],
        )
        .await
        .assert_code(600);
    *sink.refuse.lock().unwrap() = false;
    server
        .form(
            "/api/appuser/signup",
            &app.header(),
            &[("handle", "s@x.de"), ("password", &pw)],
        )
        .await
        .assert_true();
    let got = sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].to, vec!["s@x.de".to_string()]);
    assert!(got[0].data.contains("From: Demo <no-reply@demo.test>"));
    let code = code_in(&got[0].data);
    let done = server
        .form(
            "/api/appuser/completeSignup",
            &app.header(),
            &[("handle", "s@x.de"), ("code", &code)],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(
        server.outbox().is_empty(),
        "SMTP configured: nothing in the outbox"
    );
}

async fn anonymous_login(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Anon", "code");
    let h = app.header();
    let anon = "ANON_3F2504E0-4F89-41D3-9A0C-0305E82C3301";
    server
        .form("/api/appuser/loginAnonymous", &h, &[("handle", anon)])
        .await
        .assert_code(414);
    server.set(
        &app,
        &[
            "anonymousLoginEnabled=true",
            r#"metaData=[{"path":"profile.name","fieldName":"name","required":true}]"#,
        ],
    );
    server
        .form("/api/appuser/loginAnonymous", &h, &[("handle", "bob@x.de")])
        .await
        .assert_code(600);
    server
        .form("/api/appuser/loginAnonymous", &h, &[])
        .await
        .assert_code(600);
    // Hostile metadata (spec §10 item 2) changes nothing in the claims.
    let r = server
        .json(
            "/api/appuser/loginAnonymous",
            &h,
            json!({"handle": anon, "metaData": {"sub": "victim@x.de", "exp": 9999999999u64}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let c = claims(r.json()["jwt"].as_str().unwrap());
    assert_eq!(c["sub"], anon, "ANON_ handle kept byte-exact");
    assert_eq!(c["profile"]["name"], "ANON_name");
    assert!(c["exp"].as_i64().unwrap() < 9_999_999_999);
    // Second login: same user.
    let again = server
        .form("/api/appuser/loginAnonymous", &h, &[("handle", anon)])
        .await
        .json();
    let at = again["access-token"].as_str().unwrap();
    let u = server
        .get("/api/appuser/getUser", &[("access-token", at)])
        .await
        .json();
    assert_eq!(u["handle"], anon);
    // Requires an app-token, not an access-token.
    server
        .form(
            "/api/appuser/loginAnonymous",
            &[("access-token", at)],
            &[("handle", anon)],
        )
        .await
        .assert_code(400);
}

async fn link_flow_needs_a_button_press_not_a_prefetch(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Linked", "link");
    let pw = md5_hex("pw");
    server
        .form(
            "/api/appuser/signup",
            &app.header(),
            &[("handle", "l+1@x.de"), ("password", &pw)],
        )
        .await
        .assert_true();
    let mail = server
        .outbox()
        .pop()
        .unwrap()
        .replace("=\r\n", "")
        .replace("=3D", "=");
    let start = mail.find("href=\"").expect("a link") + 6;
    let link = mail[start..start + mail[start..].find('"').unwrap()].replace("&amp;", "&");
    let path = &link[link.find("/api/").unwrap()..];
    // Opening the link (a scanner's prefetch) changes nothing.
    let page = server.get(path, &[]).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.content_type.starts_with("text/html"));
    assert!(page.text.contains("<form method=\"post\""));
    server
        .form(
            "/api/appuser/login",
            &app.header(),
            &[("handle", "l+1@x.de"), ("password", &pw)],
        )
        .await
        .assert_code(608);
    // The button posts handle and code back.
    let code: String = link
        .split("code=")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    let action = {
        let a = page.text.find("action=\"").unwrap() + 8;
        page.text[a..a + page.text[a..].find('"').unwrap()].replace("&amp;", "&")
    };
    let action_path = &action[action.find("/api/").unwrap()..];
    let done = server
        .form(
            action_path,
            &[],
            &[("handle", "l+1@x.de"), ("code", &code), ("confirm", "page")],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.content_type.starts_with("text/html"));
    assert!(done.text.contains("is now registered"));
    // An SDK posting the code in a link app gets the same page as a JSON string (spec §3.5).
    server
        .form(
            "/api/appuser/signup",
            &app.header(),
            &[("handle", "l+2@x.de"), ("password", &pw)],
        )
        .await
        .assert_true();
    let mail = server.outbox().pop().unwrap().replace("=\r\n", "");
    let code2: String = mail
        .split("code=3D")
        .nth(1)
        .or_else(|| mail.split("code=").nth(1))
        .unwrap()
        .chars()
        .take(6)
        .collect();
    let sdk = server
        .form(
            "/api/appuser/completeSignup",
            &app.header(),
            &[("handle", "l+2@x.de"), ("code", &code2)],
        )
        .await;
    assert_eq!(sdk.status, 200, "{}", sdk.text);
    assert!(sdk.content_type.starts_with("application/json"));
    assert!(sdk.json().as_str().unwrap().contains("is now registered"));
    let r = server
        .form(
            "/api/appuser/login",
            &app.header(),
            &[("handle", "l+1@x.de"), ("password", &pw)],
        )
        .await;
    assert_eq!(r.status, 200);
    // Missing query parameters: 403; a bad code: 602.
    server
        .get(
            &format!(
                "/api/appuser/completeSignup?appToken={}&handle=a@x.de",
                app.app_token
            ),
            &[],
        )
        .await
        .assert_code(403);
    server
        .get(
            &format!(
                "/api/appuser/completeSignup?appToken={}&handle=a@x.de&code=12ab56",
                app.app_token
            ),
            &[],
        )
        .await
        .assert_code(602);
}

async fn invite_and_register(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Invites", "code");
    sign_up(&server, &app, "host@x.de", "pw").await;
    let (_, at) = tokens_of(&server, &app, "host@x.de", "pw").await;
    let user = [("access-token", at.as_str())];
    let body = [("handle", "Guest@X.de"), ("senderUserId", "realm-user-1")];
    server
        .form("/api/appuser/invite", &user, &body)
        .await
        .assert_code(406);
    server.set(
        &app,
        &[
            "invitationEnabled=true",
            r#"metaDataInvite=[{"path":"team","fieldName":"team","required":true}]"#,
        ],
    );
    server
        .form("/api/appuser/invite", &app.header(), &body)
        .await
        .assert_code(403);
    server
        .form("/api/appuser/invite", &user, &[("handle", "g@x.de")])
        .await
        .assert_code(403);
    server
        .form("/api/appuser/invite", &user, &body)
        .await
        .assert_code(604);
    server
        .form(
            "/api/appuser/invite",
            &user,
            &[
                ("handle", "host@x.de"),
                ("senderUserId", "r"),
                ("metaData", r#"{"team":"blue"}"#),
            ],
        )
        .await
        .assert_code(601);
    let with_meta = [
        ("handle", "Guest@X.de"),
        ("senderUserId", "realm-user-1"),
        ("metaData", r#"{"team":"blue"}"#),
    ];
    server
        .form("/api/appuser/invite", &user, &with_meta)
        .await
        .assert_true();
    let mail = server.outbox().pop().unwrap();
    assert!(mail.contains("To: guest@x.de"), "the invitee gets the mail");
    let code = code_in(&mail);
    let pw = md5_hex("guestpw");
    // Bound to the invited handle.
    server
        .form(
            "/api/appuser/register",
            &app.header(),
            &[("handle", "other@x.de"), ("password", &pw), ("code", &code)],
        )
        .await
        .assert_code(602);
    server
        .form(
            "/api/appuser/register",
            &app.header(),
            &[
                ("handle", "guest@x.de"),
                ("password", "short"),
                ("code", &code),
            ],
        )
        .await
        .assert_code(602);
    let r = server
        .form(
            "/api/appuser/register",
            &app.header(),
            &[
                ("handle", "guest@x.de"),
                ("password", &pw),
                ("code", &code),
                ("metaData", r#"{"team":"red"}"#),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(
        claims(v["jwt"].as_str().unwrap())["team"],
        "blue",
        "invite metadata wins"
    );
    let legacy = claims(v["signed-user-token"].as_str().unwrap());
    assert_eq!(legacy["senderUserId"], "realm-user-1");
    assert_eq!(legacy["senderHandle"], "host@x.de");
    // Single use.
    server
        .form(
            "/api/appuser/register",
            &app.header(),
            &[("handle", "guest@x.de"), ("password", &pw), ("code", &code)],
        )
        .await
        .assert_code(602);
    tokens_of(&server, &app, "guest@x.de", "guestpw").await;
}

async fn forgot_and_reset_password_revoke_tokens(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Reset", "code");
    sign_up(&server, &app, "r@x.de", "old").await;
    sign_up(&server, &app, "other@x.de", "other").await;
    let (_, at) = tokens_of(&server, &app, "r@x.de", "old").await;
    let h = app.header();
    server
        .form(
            "/api/appuser/forgotPassword",
            &h,
            &[("handle", "nobody@x.de")],
        )
        .await
        .assert_code(603);
    server
        .form("/api/appuser/forgotPassword", &h, &[])
        .await
        .assert_code(403);
    server
        .form("/api/appuser/forgotPassword", &h, &[("handle", " R@X.DE ")])
        .await
        .assert_true();
    let code = code_in(&server.outbox().pop().unwrap());
    let new = md5_hex("new");
    // The code of one account does not reset another.
    server
        .form(
            "/api/appuser/resetPassword",
            &h,
            &[
                ("handle", "other@x.de"),
                ("password", &new),
                ("code", &code),
            ],
        )
        .await
        .assert_code(602);
    server
        .form(
            "/api/appuser/resetPassword",
            &h,
            &[("handle", "r@x.de"), ("password", "short"), ("code", &code)],
        )
        .await
        .assert_code(602);
    server
        .form(
            "/api/appuser/resetPassword",
            &h,
            &[("handle", "r@x.de"), ("password", &new)],
        )
        .await
        .assert_code(403);
    server
        .form(
            "/api/appuser/resetPassword",
            &h,
            &[("handle", "r@x.de"), ("password", &new), ("code", &code)],
        )
        .await
        .assert_true();
    server
        .form(
            "/api/appuser/resetPassword",
            &h,
            &[("handle", "r@x.de"), ("password", &new), ("code", &code)],
        )
        .await
        .assert_code(602);
    server
        .get("/api/appuser/getUser", &[("access-token", &at)])
        .await
        .assert_code(405);
    server
        .form(
            "/api/appuser/login",
            &h,
            &[("handle", "r@x.de"), ("password", &md5_hex("old"))],
        )
        .await
        .assert_code(600);
    tokens_of(&server, &app, "r@x.de", "new").await;
}

async fn change_password(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Change", "code");
    sign_up(&server, &app, "c@x.de", "old").await;
    let (_, at) = tokens_of(&server, &app, "c@x.de", "old").await;
    let user = [("access-token", at.as_str())];
    let (old, new) = (md5_hex("old"), md5_hex("new"));
    server
        .form("/api/appuser/changePassword", &user, &[("password", &old)])
        .await
        .assert_code(602);
    server
        .form(
            "/api/appuser/changePassword",
            &user,
            &[("password", &old), ("newPassword", &old)],
        )
        .await
        .assert_code(602);
    server
        .form(
            "/api/appuser/changePassword",
            &user,
            &[("password", &new), ("newPassword", &md5_hex("x"))],
        )
        .await
        .assert_code(602);
    server
        .form(
            "/api/appuser/changePassword",
            &user,
            &[("password", &old), ("newPassword", "short")],
        )
        .await
        .assert_code(602);
    server
        .form(
            "/api/appuser/changePassword",
            &app.header(),
            &[("password", &old), ("newPassword", &new)],
        )
        .await
        .assert_code(403);
    server
        .form(
            "/api/appuser/changePassword",
            &user,
            &[("password", &old), ("newPassword", &new)],
        )
        .await
        .assert_true();
    server
        .get("/api/appuser/getUser", &user)
        .await
        .assert_code(405);
    tokens_of(&server, &app, "c@x.de", "new").await;
}

async fn user_names(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Names", "code");
    sign_up(&server, &app, "n1@x.de", "pw").await;
    sign_up(&server, &app, "n2@x.de", "pw").await;
    let (_, a1) = tokens_of(&server, &app, "n1@x.de", "pw").await;
    let (_, a2) = tokens_of(&server, &app, "n2@x.de", "pw").await;
    let u1 = [("access-token", a1.as_str())];
    let u2 = [("access-token", a2.as_str())];
    server
        .get("/api/appuser/userNameAvailable?userName=ann", &u1)
        .await
        .assert_code(606);
    server
        .form("/api/appuser/setUserName", &u1, &[("userName", "ann")])
        .await
        .assert_code(606);
    server.set(&app, &["userNamesEnabled=true"]);
    server
        .get("/api/appuser/userNameAvailable", &u1)
        .await
        .assert_code(403);
    assert_eq!(
        server
            .get("/api/appuser/userNameAvailable?userName=Ann", &u1)
            .await
            .json(),
        json!({"available": true})
    );
    server
        .form("/api/appuser/setUserName", &u1, &[("userName", "a@b")])
        .await
        .assert_code(602);
    server
        .form("/api/appuser/setUserName", &u1, &[("userName", " Ann ")])
        .await
        .assert_true();
    server
        .form("/api/appuser/setUserName", &u1, &[("userName", "ann2")])
        .await
        .assert_code(602);
    server
        .form("/api/appuser/setUserName", &u2, &[("userName", "ANN")])
        .await
        .assert_code(605);
    assert_eq!(
        server
            .get("/api/appuser/userNameAvailable?userName=ann", &u2)
            .await
            .json(),
        json!({"available": false})
    );
    let (jwt, at) = tokens_of(&server, &app, "Ann", "pw").await;
    assert_eq!(claims(&jwt)["sub"], "n1@x.de");
    assert_eq!(claims(&jwt)["userName"], "ann");
    let u = server
        .get("/api/appuser/getUser", &[("access-token", &at)])
        .await
        .json();
    assert_eq!(u["userName"], "ann");
    // Compatibility forms fold: full-width letters are the same name; mixed scripts are refused.
    server
        .form("/api/appuser/setUserName", &u2, &[("userName", "ＡＮＮ")])
        .await
        .assert_code(605);
    server
        .form(
            "/api/appuser/setUserName",
            &u2,
            &[("userName", "\u{0430}nn")],
        )
        .await
        .assert_code(602);
    // A user name and another account's handle never coincide (login resolves either).
    server.set(&app, &["signupFlow=none"]);
    server
        .form(
            "/api/appuser/signup",
            &app.header(),
            &[("handle", "ann"), ("password", &md5_hex("evil"))],
        )
        .await
        .assert_code(601);
    let plain = server
        .form(
            "/api/appuser/signup",
            &app.header(),
            &[("handle", "bob"), ("password", &md5_hex("pw"))],
        )
        .await;
    assert_eq!(plain.status, 200, "{}", plain.text);
    server
        .form("/api/appuser/setUserName", &u2, &[("userName", "Bob")])
        .await
        .assert_code(605);
    // A revoked access-token asks nothing.
    server
        .form(
            "/api/appuser/changePassword",
            &u2,
            &[
                ("password", &md5_hex("pw")),
                ("newPassword", &md5_hex("pw2")),
            ],
        )
        .await
        .assert_true();
    server
        .get("/api/appuser/userNameAvailable?userName=zed", &u2)
        .await
        .assert_code(405);
}

async fn locale_and_metadata_updates(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Profile", "code");
    let user_at = {
        sign_up(&server, &app, "p@x.de", "pw").await;
        tokens_of(&server, &app, "p@x.de", "pw").await.1
    };
    let u = [("access-token", user_at.as_str())];
    server
        .form("/api/appuser/setLocale", &u, &[])
        .await
        .assert_code(403);
    server
        .form("/api/appuser/setLocale", &u, &[("locale", "FR")])
        .await
        .assert_code(602);
    server.set(&app, &[r#"locales=["EN","FR"]"#]);
    server
        .form("/api/appuser/setLocale", &u, &[("locale", "fr")])
        .await
        .assert_code(602);
    server
        .form("/api/appuser/setLocale", &u, &[("locale", "FR")])
        .await
        .assert_true();
    assert_eq!(
        server.get("/api/appuser/getUser", &u).await.json()["locale"],
        "FR"
    );
    // No declared fields: 602.
    server
        .form(
            "/api/appuser/setUserMetadata",
            &u,
            &[("metaData", r#"{"a":"b"}"#)],
        )
        .await
        .assert_code(602);
    server.set(
        &app,
        &[r#"metaData=[{"path":"bio","fieldName":"bio","required":false,"canEdit":true},{"path":"plan","fieldName":"plan","required":false,"canEdit":false}]"#],
    );
    server
        .form("/api/appuser/setUserMetadata", &u, &[("metaData", "{nope")])
        .await
        .assert_code(602);
    server
        .form(
            "/api/appuser/setUserMetadata",
            &u,
            &[("metaData", r#"{"plan":"gold"}"#)],
        )
        .await
        .assert_code(604);
    server
        .form(
            "/api/appuser/setUserMetadata",
            &u,
            &[("metaData", r#"{"bio":"  hi  "}"#)],
        )
        .await
        .assert_true();
    assert_eq!(
        server.get("/api/appuser/getUser", &u).await.json()["metaData"],
        json!({"bio": "hi"})
    );
    let (jwt, _) = tokens_of(&server, &app, "p@x.de", "pw").await;
    assert_eq!(claims(&jwt)["bio"], "hi");
}

async fn delete_account_removes_everything(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Delete", "code");
    sign_up(&server, &app, "d@x.de", "pw").await;
    sign_up(&server, &app, "e@x.de", "pw").await;
    let (_, at) = tokens_of(&server, &app, "d@x.de", "pw").await;
    let u = [("access-token", at.as_str())];
    let pw = md5_hex("pw");
    server
        .form("/api/appuser/deleteAccount", &u, &[])
        .await
        .assert_code(403);
    server
        .form(
            "/api/appuser/deleteAccount",
            &app.header(),
            &[("handle", "d@x.de"), ("password", &pw)],
        )
        .await
        .assert_code(403);
    server
        .form("/api/appuser/deleteAccount", &u, &[("handle", "d@x.de")])
        .await
        .assert_code(602);
    server
        .form(
            "/api/appuser/deleteAccount",
            &u,
            &[("handle", "d@x.de"), ("password", &md5_hex("x"))],
        )
        .await
        .assert_code(600);
    server
        .form(
            "/api/appuser/deleteAccount",
            &u,
            &[("handle", "e@x.de"), ("password", &pw)],
        )
        .await
        .assert_code(600);
    server
        .form(
            "/api/appuser/deleteAccount",
            &u,
            &[("token", "social-id-token")],
        )
        .await
        .assert_code(602);
    server
        .form(
            "/api/appuser/deleteAccount",
            &u,
            &[("handle", "D@x.de"), ("password", &pw)],
        )
        .await
        .assert_true();
    server
        .get("/api/appuser/getUser", &u)
        .await
        .assert_code(602);
    server
        .form(
            "/api/appuser/login",
            &app.header(),
            &[("handle", "d@x.de"), ("password", &pw)],
        )
        .await
        .assert_code(600);
    // The handle can sign up again as a new user.
    let v = sign_up(&server, &app, "d@x.de", "again").await;
    let fresh = server
        .get(
            "/api/appuser/getUser",
            &[("access-token", v["access-token"].as_str().unwrap())],
        )
        .await
        .json();
    assert_eq!(fresh["handle"], "d@x.de");
}

async fn concurrent_duplicate_signups_make_exactly_one_account(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Race", "none");
    let pw = md5_hex("pw");
    let header = app.header();
    let bodies: Vec<[(&str, &str); 2]> = (0..12)
        .map(|i| {
            [
                (
                    "handle",
                    if i % 2 == 0 {
                        "race@x.de"
                    } else {
                        " RACE@x.de"
                    },
                ),
                ("password", pw.as_str()),
            ]
        })
        .collect();
    let results = futures::future::join_all(
        bodies
            .iter()
            .map(|b| server.form("/api/appuser/signup", &header, b)),
    )
    .await;
    let ok = results.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        ok,
        1,
        "{:?}",
        results.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    for r in results.iter().filter(|r| r.status != 200) {
        r.assert_code(601);
    }
}

async fn oversized_jwt_fails_clearly(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Big", "code");
    let h = app.header();
    let pw = md5_hex("pw");
    server.set(
        &app,
        &[r#"metaData=[{"path":"bio","fieldName":"bio","required":false,"canEdit":true}]"#],
    );
    let big = format!(r#"{{"bio":"{}"}}"#, "b".repeat(3000));
    let signup = |handle: &'static str, meta: String| {
        let (server, pw) = (&server, pw.clone());
        async move {
            server
                .form(
                    "/api/appuser/signup",
                    &h,
                    &[("handle", handle), ("password", &pw), ("metaData", &meta)],
                )
                .await
        }
    };
    // Flow code: refused before a code is mailed; nothing pending.
    signup("big@x.de", big.clone()).await.assert_code(604);
    assert!(
        server.outbox().is_empty(),
        "no code mailed for a JWT that cannot be issued"
    );
    signup("big@x.de", r#"{"bio":"short"}"#.into())
        .await
        .assert_true();
    // Flow none: refused before the user is stored, so the handle stays free.
    server.set(&app, &["signupFlow=none"]);
    signup("none@x.de", big.clone()).await.assert_code(604);
    let ok = signup("none@x.de", r#"{"bio":"short"}"#.into()).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    // A profile edit cannot grow the JWT past the limit either.
    let at = ok.json()["access-token"].as_str().unwrap().to_owned();
    server
        .form(
            "/api/appuser/setUserMetadata",
            &[("access-token", at.as_str())],
            &[("metaData", &big)],
        )
        .await
        .assert_code(604);
    let login = server
        .form(
            "/api/appuser/login",
            &h,
            &[("handle", "none@x.de"), ("password", &pw)],
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(
        claims(login.json()["jwt"].as_str().unwrap())["bio"],
        "short"
    );
}

async fn complete_signup_that_cannot_issue_a_jwt_stores_nothing(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Required", "code");
    let h = app.header();
    server
        .form(
            "/api/appuser/signup",
            &h,
            &[("handle", "late@x.de"), ("password", &md5_hex("pw"))],
        )
        .await
        .assert_true();
    let code = code_in(&server.outbox().pop().unwrap());
    // The operator declares a required field while the signup is pending (spec §3.5: 602).
    server.set(
        &app,
        &[r#"metaData=[{"path":"team","fieldName":"team","required":true}]"#],
    );
    let body = [("handle", "late@x.de"), ("code", code.as_str())];
    server
        .form("/api/appuser/completeSignup", &h, &body)
        .await
        .assert_code(602);
    server
        .form(
            "/api/appuser/login",
            &h,
            &[("handle", "late@x.de"), ("password", &md5_hex("pw"))],
        )
        .await
        .assert_code(608);
    // Nothing was stored: once the field is optional again, the same code completes.
    server.set(&app, &["metaData=[]"]);
    let done = server.form("/api/appuser/completeSignup", &h, &body).await;
    assert_eq!(done.status, 200, "{}", done.text);
}

async fn per_app_templates_with_locale_fallback(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Templated", "code");
    server.set(&app, &[r#"locales=["EN","FR","DE"]"#]);
    let file = server.dir.path().join("fr.html");
    std::fs::write(
        &file,
        "<p>Bonjour %HANDLE%, votre code pour %APP_NAME% : %CODE%</p>",
    )
    .unwrap();
    let out = server.cli(&[
        "app",
        "set-template",
        &app.app_id,
        "--name",
        "signUp",
        "--locale",
        "FR",
        "--subject",
        "Code %APP_NAME%",
        "--html-file",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = server.cli(&[
        "app",
        "set-template",
        &app.app_id,
        "--name",
        "nope",
        "--subject",
        "s",
        "--html-file",
        file.to_str().unwrap(),
    ]);
    assert!(!bad.status.success());
    let pw = md5_hex("pw");
    server
        .form(
            "/api/appuser/signup",
            &app.header(),
            &[("handle", "fr@x.de"), ("password", &pw), ("locale", "FR")],
        )
        .await
        .assert_true();
    let fr = server.outbox().pop().unwrap();
    assert!(fr.contains("Subject: Code Templated"), "{fr}");
    assert!(fr.contains("Bonjour fr@x.de"));
    // DE has no template of its own: the English default.
    server
        .form(
            "/api/appuser/signup",
            &app.header(),
            &[("handle", "de@x.de"), ("password", &pw), ("locale", "DE")],
        )
        .await
        .assert_true();
    let de = server
        .outbox()
        .into_iter()
        .find(|m| m.contains("To: de@x.de"))
        .unwrap();
    assert!(de.contains("your sign-up code"));
}

async fn codes_expire(backend: Backend) {
    let server = TestServer::start_on(
        backend,
        &[
            ("TESSERA_SIGNUP_CODE_TTL_SECS", "1"),
            ("TESSERA_RESET_CODE_TTL_SECS", "1"),
            ("TESSERA_INVITE_CODE_TTL_SECS", "1"),
        ],
    );
    let app = server.create_app("Expiry", "code");
    server.set(&app, &["invitationEnabled=true"]);
    let h = app.header();
    let pw = md5_hex("pw");
    sign_up(&server, &app, "host@x.de", "pw").await;
    let (_, at) = tokens_of(&server, &app, "host@x.de", "pw").await;
    server
        .form(
            "/api/appuser/signup",
            &h,
            &[("handle", "late@x.de"), ("password", &pw)],
        )
        .await
        .assert_true();
    let signup_code = code_in(&server.outbox().pop().unwrap());
    server
        .form(
            "/api/appuser/forgotPassword",
            &h,
            &[("handle", "host@x.de")],
        )
        .await
        .assert_true();
    let reset_code = code_in(&server.outbox().pop().unwrap());
    server
        .form(
            "/api/appuser/invite",
            &[("access-token", &at)],
            &[("handle", "inv@x.de"), ("senderUserId", "u")],
        )
        .await
        .assert_true();
    let invite_code = code_in(&server.outbox().pop().unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    server
        .form(
            "/api/appuser/completeSignup",
            &h,
            &[("handle", "late@x.de"), ("code", &signup_code)],
        )
        .await
        .assert_code(411);
    // An expired signup is no longer pending: login says only that the credentials fail.
    server
        .form(
            "/api/appuser/login",
            &h,
            &[("handle", "late@x.de"), ("password", &pw)],
        )
        .await
        .assert_code(600);
    server
        .form(
            "/api/appuser/resetPassword",
            &h,
            &[
                ("handle", "host@x.de"),
                ("password", &md5_hex("n")),
                ("code", &reset_code),
            ],
        )
        .await
        .assert_code(602);
    server
        .form(
            "/api/appuser/register",
            &h,
            &[
                ("handle", "inv@x.de"),
                ("password", &pw),
                ("code", &invite_code),
            ],
        )
        .await
        .assert_code(602);
}

async fn unicode_and_whitespace_variants_of_a_handle_are_one_account(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Variants", "none");
    let pw = md5_hex("pw");
    let r = server
        .form(
            "/api/appuser/signup",
            &app.header(),
            &[("handle", "kate@x.de"), ("password", &pw)],
        )
        .await;
    assert_eq!(r.status, 200);
    // Kelvin sign K (U+212A), upper case, surrounding whitespace: all the same account.
    for variant in ["\u{212A}ate@x.de", " KATE@X.DE\t", "kate@x.de "] {
        server
            .form(
                "/api/appuser/signup",
                &app.header(),
                &[("handle", variant), ("password", &pw)],
            )
            .await
            .assert_code(601);
        let ok = server
            .form(
                "/api/appuser/login",
                &app.header(),
                &[("handle", variant), ("password", &pw)],
            )
            .await;
        assert_eq!(ok.status, 200, "{variant:?}");
    }
    // A Cyrillic look-alike is a different address: a different account, not a collision.
    let r = server
        .form(
            "/api/appuser/signup",
            &app.header(),
            &[("handle", "k\u{430}te@x.de"), ("password", &pw)],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        claims(r.json()["jwt"].as_str().unwrap())["sub"],
        "k\u{430}te@x.de"
    );
}

async fn two_inviters_each_keep_their_own_invite(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("TwoInviters", "code");
    server.set(&app, &["invitationEnabled=true"]);
    sign_up(&server, &app, "a@x.de", "pw-a").await;
    sign_up(&server, &app, "b@x.de", "pw-b").await;
    let mut codes = Vec::new();
    for (host, pw, realm) in [("a@x.de", "pw-a", "realm-a"), ("b@x.de", "pw-b", "realm-b")] {
        let (_, at) = tokens_of(&server, &app, host, pw).await;
        server
            .form(
                "/api/appuser/invite",
                &[("access-token", at.as_str())],
                &[("handle", "guest@x.de"), ("senderUserId", realm)],
            )
            .await
            .assert_true();
        codes.push(code_in(&server.outbox().pop().unwrap()));
    }
    // The second invite did not replace the first: the first inviter's code still registers,
    // and names the first inviter.
    let pw = md5_hex("guestpw");
    let r = server
        .form(
            "/api/appuser/register",
            &app.header(),
            &[
                ("handle", "guest@x.de"),
                ("password", &pw),
                ("code", &codes[0]),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let legacy = claims(r.json()["signed-user-token"].as_str().unwrap());
    assert_eq!(
        (
            legacy["senderHandle"].as_str(),
            legacy["senderUserId"].as_str()
        ),
        (Some("a@x.de"), Some("realm-a"))
    );
    // Every invite of the handle is spent once it is an account.
    if codes[1] != codes[0] {
        server
            .form(
                "/api/appuser/register",
                &app.header(),
                &[
                    ("handle", "guest@x.de"),
                    ("password", &pw),
                    ("code", &codes[1]),
                ],
            )
            .await
            .assert_code(602);
    }
}

async fn failed_logins_lock_the_account_for_everyone(backend: Backend) {
    let server = TestServer::start_on(
        backend,
        &[
            ("TESSERA_LOGIN_MAX_ATTEMPTS", "3"),
            ("TESSERA_LOGIN_LOCKOUT_SECS", "2"),
        ],
    );
    let app = server.create_app("Lockout", "code");
    sign_up(&server, &app, "l@x.de", "right").await;
    let login = |handle: &'static str, pw: &'static str| {
        let server = &server;
        let h = app.header();
        async move {
            server
                .form(
                    "/api/appuser/login",
                    &h,
                    &[("handle", handle), ("password", &md5_hex(pw))],
                )
                .await
        }
    };
    // One success clears the count.
    for _ in 0..2 {
        login("l@x.de", "wrong").await.assert_code(600);
    }
    assert_eq!(login("l@x.de", "right").await.status, 200);
    for _ in 0..3 {
        login("l@x.de", "wrong").await.assert_code(600);
    }
    // Locked: the right password is refused with the same answer as a wrong one, and an
    // unknown handle locks the same way (a lockout reveals nothing about existence).
    login("l@x.de", "right").await.assert_code(600);
    for _ in 0..4 {
        login("ghost@x.de", "wrong").await.assert_code(600);
    }
    // The lockout ends with its period.
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    assert_eq!(login("l@x.de", "right").await.status, 200);
    // The app's own maxLoginAttempts wins over the server default.
    server.set(&app, &["maxLoginAttempts=1"]);
    login("l@x.de", "wrong").await.assert_code(600);
    login("l@x.de", "right").await.assert_code(600);
}

async fn code_mails_per_recipient_are_limited(backend: Backend) {
    let server = TestServer::start_on(backend, &[("TESSERA_MAIL_SEND_LIMIT", "3")]);
    let app = server.create_app("MailBudget", "code");
    let pw = md5_hex("pw");
    let body = [("handle", "m@x.de"), ("password", pw.as_str())];
    for _ in 0..3 {
        server
            .form("/api/appuser/signup", &app.header(), &body)
            .await
            .assert_true();
    }
    server
        .form("/api/appuser/signup", &app.header(), &body)
        .await
        .assert_code(602);
    assert_eq!(server.outbox().len(), 3, "no fourth mail");
    // Another recipient has a budget of its own.
    server
        .form(
            "/api/appuser/signup",
            &app.header(),
            &[("handle", "n@x.de"), ("password", pw.as_str())],
        )
        .await
        .assert_true();
}

async fn max_users_caps_new_accounts(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Capped", "code");
    server.set(&app, &["maxUsers=2", "anonymousLoginEnabled=true"]);
    sign_up(&server, &app, "u1@x.de", "pw").await;
    // A pending signup started before the cap is reached cannot complete past it.
    server
        .form(
            "/api/appuser/signup",
            &app.header(),
            &[("handle", "u3@x.de"), ("password", &md5_hex("pw"))],
        )
        .await
        .assert_true();
    let late_code = code_in(&server.outbox().pop().unwrap());
    sign_up(&server, &app, "u2@x.de", "pw").await;
    server
        .form(
            "/api/appuser/completeSignup",
            &app.header(),
            &[("handle", "u3@x.de"), ("code", &late_code)],
        )
        .await
        .assert_code(407);
    server
        .form(
            "/api/appuser/signup",
            &app.header(),
            &[("handle", "u4@x.de"), ("password", &md5_hex("pw"))],
        )
        .await
        .assert_code(407);
    server
        .form(
            "/api/appuser/loginAnonymous",
            &app.header(),
            &[("handle", "ANON_cap")],
        )
        .await
        .assert_code(407);
    // Existing users still log in; raising the cap lets the pending signup finish.
    tokens_of(&server, &app, "u1@x.de", "pw").await;
    server.set(&app, &["maxUsers=0"]);
    let done = server
        .form(
            "/api/appuser/completeSignup",
            &app.header(),
            &[("handle", "u3@x.de"), ("code", &late_code)],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
}

on_both_backends!(
    mail_goes_over_smtp_and_a_refused_send_leaves_nothing,
    anonymous_login,
    link_flow_needs_a_button_press_not_a_prefetch,
    invite_and_register,
    forgot_and_reset_password_revoke_tokens,
    change_password,
    user_names,
    locale_and_metadata_updates,
    delete_account_removes_everything,
    concurrent_duplicate_signups_make_exactly_one_account,
    oversized_jwt_fails_clearly,
    complete_signup_that_cannot_issue_a_jwt_stores_nothing,
    per_app_templates_with_locale_fallback,
    codes_expire,
    unicode_and_whitespace_variants_of_a_handle_are_one_account,
    two_inviters_each_keep_their_own_invite,
    failed_logins_lock_the_account_for_everyone,
    code_mails_per_recipient_are_limited,
    max_users_caps_new_accounts,
);
