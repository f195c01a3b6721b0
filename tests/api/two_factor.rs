//! The second factor over the real server (spec §3.2, §3.21-§3.24, §4.4): authenticator codes
//! from an independent generator (pyotp), SMS through a local Twilio-style endpoint and the
//! outbox, and the fixes of spec §10 (typed single-use login-tokens, replay refusal, budgets).

use base64::Engine;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::sms_sink::SmsSink;

/// The code an authenticator app shows for `secret` at now + `offset_secs`, from pyotp.
fn pyotp_code(secret: &str, offset_secs: i64) -> String {
    let script = "import pyotp, sys, time\n\
                  print(pyotp.TOTP(sys.argv[1]).at(time.time() + float(sys.argv[2])))";
    let out = std::process::Command::new("python3")
        .args(["-c", script, secret, &offset_secs.to_string()])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "pyotp failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn pyotp_available() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import pyotp"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install pyotp (pip install pyotp)"
        );
        eprintln!("skipping: pyotp not installed");
    }
    ok
}

/// What a user types into an authenticator app: the shown secret without spaces.
fn typed_secret(shown: &str) -> String {
    shown.replace(' ', "").to_ascii_uppercase()
}

async fn login(server: &TestServer, app: &TestApp, handle: &str, password: &str) -> Value {
    let r = server
        .form(
            "/api/appuser/login",
            &app.header(),
            &[("handle", handle), ("password", &md5_hex(password))],
        )
        .await;
    assert_eq!(r.status, 200, "login {handle}: {}", r.text);
    r.json()
}

async fn login_token(server: &TestServer, app: &TestApp, handle: &str, password: &str) -> String {
    let v = login(server, app, handle, password).await;
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 1, "only a login-token: {v}");
    obj["login-token"].as_str().unwrap().to_owned()
}

async fn complete(server: &TestServer, app: &TestApp, token: &str, code: &str) -> Reply {
    server
        .form(
            "/api/appuser/loginComplete",
            &app.header(),
            &[("loginToken", token), ("code", code)],
        )
        .await
}

fn access(v: &Value) -> String {
    v["access-token"].as_str().unwrap().to_owned()
}

async fn authenticator_app_login(backend: Backend) {
    if !pyotp_available() {
        return;
    }
    let server = TestServer::on(backend);
    let app = server.create_app("Totp Demo", "code");
    server.set(
        &app,
        &["twoFactorVerification=google", "googleAppName=Demo Auth"],
    );
    let signed = sign_up(&server, &app, "t@x.de", "pw").await;
    let at = access(&signed);
    let user = [("access-token", at.as_str())];

    // Enrol: the secret in the spec's format, and a real PNG of the otpauth URI.
    let r = server
        .json(
            "/api/appuser/setTwoFactorGoogleVerification",
            &user,
            json!({"twoFactor": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
    let shown = v["googleSecretKey"].as_str().unwrap();
    assert_eq!(shown.len(), 39, "{shown}");
    assert!(shown.split(' ').all(|g| {
        g.len() == 4
            && g.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    }));
    let qr = v["QRDataImage"].as_str().unwrap();
    let png = base64::engine::general_purpose::STANDARD
        .decode(qr.strip_prefix("data:image/png;base64,").unwrap())
        .unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let me = server.get("/api/appuser/getUser", &user).await.json();
    assert_eq!(me["twoFactorGoogleVerification"], true);
    // The secret is not mailed (spec §10 item 10): the notice carries no secret.
    let secret = typed_secret(shown);
    let notice = server.outbox().pop().unwrap();
    assert!(notice.contains("authenticator"), "{notice}");
    assert!(!notice.contains(&secret) && !notice.contains(&secret.to_lowercase()));

    // Login now asks for the second factor; the password alone gives no JWT.
    let token = login_token(&server, &app, "t@x.de", "pw").await;
    complete(&server, &app, &token, "000000")
        .await
        .assert_code(600);
    let code = pyotp_code(&secret, 0);
    let r = complete(&server, &app, &token, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let done = r.json();
    assert_eq!(claims(done["jwt"].as_str().unwrap())["sub"], "t@x.de");
    let fresh = access(&done);
    assert_eq!(
        server
            .get("/api/appuser/getUser", &[("access-token", &fresh)])
            .await
            .json()["handle"],
        "t@x.de"
    );

    // The same login-token again, and the same code with a fresh login-token: refused.
    complete(&server, &app, &token, &code)
        .await
        .assert_code(600);
    let token2 = login_token(&server, &app, "t@x.de", "pw").await;
    complete(&server, &app, &token2, &code)
        .await
        .assert_code(600);

    // A password change revokes outstanding login-tokens (the next step's code is unused
    // and valid, so only the revocation refuses it).
    let next = pyotp_code(&secret, 30);
    server
        .form(
            "/api/appuser/changePassword",
            &[("access-token", &fresh)],
            &[
                ("password", &md5_hex("pw")),
                ("newPassword", &md5_hex("pw2")),
            ],
        )
        .await
        .assert_true();
    complete(&server, &app, &token2, &next)
        .await
        .assert_code(600);

    // The next step's code (within the ±1 window) works, sent as a JSON number.
    let token3 = login_token(&server, &app, "t@x.de", "pw2").await;
    let r = server
        .json(
            "/api/appuser/loginComplete",
            &app.header(),
            json!({"loginToken": token3, "code": next.parse::<u64>().unwrap()}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let tokens = r.json();

    // Other token kinds are not login-tokens; garbage neither; a non-numeric code is 602.
    let token4 = login_token(&server, &app, "t@x.de", "pw2").await;
    complete(&server, &app, &access(&tokens), "123456")
        .await
        .assert_code(600);
    complete(&server, &app, &app.app_token, "123456")
        .await
        .assert_code(600);
    complete(&server, &app, "x.y.z", "123456")
        .await
        .assert_code(600);
    complete(&server, &app, &token4, "12ab56")
        .await
        .assert_code(602);
    server
        .form(
            "/api/appuser/loginComplete",
            &app.header(),
            &[("loginToken", &token4)],
        )
        .await
        .assert_code(403);
    server
        .form(
            "/api/appuser/loginComplete",
            &[],
            &[("loginToken", &token4), ("code", "123456")],
        )
        .await
        .assert_code(403);
    // A login-token of another app is refused there.
    let other = server.create_app("Other", "code");
    complete(&server, &other, &token4, "123456")
        .await
        .assert_code(600);

    // Disabling (with the Swift SDK's doubled slash) turns the gate off again.
    server
        .form(
            "//api/appuser/setTwoFactorGoogleVerification",
            &[("access-token", &access(&tokens))],
            &[("twoFactor", "false")],
        )
        .await
        .assert_true();
    let v = login(&server, &app, "t@x.de", "pw2").await;
    assert!(v["jwt"].is_string(), "{v}");
    let me = server
        .get("/api/appuser/getUser", &[("access-token", &access(&v))])
        .await
        .json();
    assert_eq!(me["twoFactorGoogleVerification"], false);
}

async fn authenticator_confirmation_and_code_budget(backend: Backend) {
    if !pyotp_available() {
        return;
    }
    let server = TestServer::start_on(backend, &[("TESSERA_CODE_MAX_ATTEMPTS", "3")]);
    let app = server.create_app("Confirm", "code");
    server.set(
        &app,
        &[
            "twoFactorVerification=google",
            "twoFactorRequireConfirmation=true",
        ],
    );
    let at = access(&sign_up(&server, &app, "c@x.de", "pw").await);
    let user = [("access-token", at.as_str())];
    let r = server
        .form(
            "/api/appuser/setTwoFactorPhoneVerification",
            &user,
            &[("twoFactor", "true")],
        )
        .await;
    assert_eq!(
        r.status, 200,
        "the app's mode decides, not the route: {}",
        r.text
    );
    let secret = typed_secret(r.json()["googleSecretKey"].as_str().unwrap());
    // Not on until a code from the new secret arrives.
    let me = server.get("/api/appuser/getUser", &user).await.json();
    assert_eq!(me["twoFactorGoogleVerification"], false);
    assert!(login(&server, &app, "c@x.de", "pw").await["jwt"].is_string());
    let enable = |code: String| {
        let server = &server;
        async move {
            server
                .form(
                    "/api/appuser/setTwoFactorGoogleVerification",
                    &user,
                    &[("twoFactor", "true"), ("code", &code)],
                )
                .await
        }
    };
    enable("000000".into()).await.assert_code(602);
    let code = pyotp_code(&secret, 0);
    enable(code.clone()).await.assert_true();
    let me = server.get("/api/appuser/getUser", &user).await.json();
    assert_eq!(me["twoFactorGoogleVerification"], true);
    // The step that confirmed cannot log in as well.
    let token = login_token(&server, &app, "c@x.de", "pw").await;
    complete(&server, &app, &token, &code)
        .await
        .assert_code(600);

    // Wrong guesses spend one budget per account: past it even the right code fails.
    let token = login_token(&server, &app, "c@x.de", "pw").await;
    complete(&server, &app, &token, "111111")
        .await
        .assert_code(600);
    complete(&server, &app, &token, "222222")
        .await
        .assert_code(600);
    complete(&server, &app, &token, &pyotp_code(&secret, 30))
        .await
        .assert_code(600);
}

/// App with SMS credentials pointing at a local Twilio-style endpoint.
fn sms_app(server: &TestServer, name: &str) -> TestApp {
    let app = server.create_app(name, "code");
    server.set(
        &app,
        &[
            "twoFactorVerification=phone",
            "phoneDefaultRegion=DE",
            "TWILIOAccountSid=AC0123456789abcdef",
            "TWILIOToken=tw-secret-token",
            "TWILIOPhoneNumber=+1 555 010 0999",
        ],
    );
    app
}

async fn sms_login_through_a_twilio_compatible_api(backend: Backend) {
    let sink = SmsSink::start();
    let server = TestServer::start_on(
        backend,
        &[
            ("TESSERA_SMS_BASE_URL", &sink.base_url),
            ("TESSERA_CODE_MAX_ATTEMPTS", "3"),
            ("TESSERA_SMS_SEND_LIMIT", "20"),
        ],
    );
    let app = sms_app(&server, "Sms");
    let at = access(&sign_up(&server, &app, "s@x.de", "pw").await);
    let user = [("access-token", at.as_str())];

    // Provider secrets never show in the public app view.
    let view = server
        .get("/api/appuser/getApplication", &app.header())
        .await;
    assert!(!view.text.contains("tw-secret-token") && !view.text.contains("TWILIO"));
    assert_eq!(view.json()["twoFactorVerification"], "phone");

    // Enabling phone 2FA needs a verified phone.
    server
        .form(
            "/api/appuser/setTwoFactorPhoneVerification",
            &user,
            &[("twoFactor", "true")],
        )
        .await
        .assert_code(410);
    server
        .form(
            "/api/appuser/setPhone",
            &user,
            &[("phone", "+1 555 010 0000")],
        )
        .await
        .assert_true();
    let sms = sink.last();
    assert_eq!(sms.method, "POST");
    assert_eq!(
        sms.path,
        "/2010-04-01/Accounts/AC0123456789abcdef/Messages.json"
    );
    let basic =
        base64::engine::general_purpose::STANDARD.encode("AC0123456789abcdef:tw-secret-token");
    assert_eq!(sms.authorization, format!("Basic {basic}"));
    assert!(
        sms.content_type
            .starts_with("application/x-www-form-urlencoded")
    );
    assert_eq!(sms.field("To"), "+15550100000");
    assert_eq!(sms.field("From"), "+15550100999");
    assert!(sms.field("Body").contains("Sms"), "{:?}", sms.form);
    let me = server.get("/api/appuser/getUser", &user).await.json();
    assert_eq!(
        (me["phone"].as_str(), me["phoneVerified"].as_bool()),
        (Some("+15550100000"), Some(false))
    );

    server
        .form("/api/appuser/verifyPhone", &user, &[("code", "12x456")])
        .await
        .assert_code(602);
    let wrong = if sms.code() == "100000" {
        "100001"
    } else {
        "100000"
    };
    server
        .form("/api/appuser/verifyPhone", &user, &[("code", wrong)])
        .await
        .assert_code(602);
    server
        .json(
            "/api/appuser/verifyPhone",
            &user,
            json!({"code": sms.code().parse::<u64>().unwrap()}),
        )
        .await
        .assert_true();
    let me = server.get("/api/appuser/getUser", &user).await.json();
    assert_eq!(me["phoneVerified"], true);
    server
        .form(
            "/api/appuser/setTwoFactorPhoneVerification",
            &user,
            &[("twoFactor", "true")],
        )
        .await
        .assert_true();
    assert_eq!(
        server.get("/api/appuser/getUser", &user).await.json()["twoFactorPhoneVerification"],
        true
    );

    // Login sends an SMS code; loginComplete with it gives the token pair, once.
    let sent = sink.all().len();
    let token = login_token(&server, &app, "s@x.de", "pw").await;
    assert_eq!(sink.all().len(), sent + 1);
    let code = sink.last().code();
    assert_eq!(sink.last().field("To"), "+15550100000");
    let r = complete(&server, &app, &token, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json()["jwt"].is_string());
    complete(&server, &app, &token, &code)
        .await
        .assert_code(600);

    // A newer login-token replaces the older one; wrong codes beyond the budget lock the flow.
    let old = login_token(&server, &app, "s@x.de", "pw").await;
    let old_code = sink.last().code();
    let token = login_token(&server, &app, "s@x.de", "pw").await;
    let code = sink.last().code();
    complete(&server, &app, &old, &old_code)
        .await
        .assert_code(600);
    complete(&server, &app, &token, "000000")
        .await
        .assert_code(600);
    complete(&server, &app, &token, "999999")
        .await
        .assert_code(600);
    complete(&server, &app, &token, &code)
        .await
        .assert_code(600);

    // Every written form of a verified number is that number: another user gets 412.
    let at2 = access(&sign_up(&server, &app, "s2@x.de", "pw").await);
    for same in ["+1-555-010-0000", "0015550100000"] {
        server
            .form(
                "/api/appuser/setPhone",
                &[("access-token", &at2)],
                &[("phone", same)],
            )
            .await
            .assert_code(412);
    }
    server
        .form(
            "/api/appuser/setPhone",
            &[("access-token", &at2)],
            &[("phone", "not a phone")],
        )
        .await
        .assert_code(602);
    server
        .form("/api/appuser/setPhone", &[("access-token", &at2)], &[])
        .await
        .assert_code(403);

    // A provider failure answers 500 and leaves no code behind.
    sink.answer(400);
    server
        .form(
            "/api/appuser/setPhone",
            &[("access-token", &at2)],
            &[("phone", "+1 555 010 0002")],
        )
        .await
        .assert_code(500);
    let failed_code = sink.last().code();
    sink.answer(201);
    server
        .form(
            "/api/appuser/verifyPhone",
            &[("access-token", &at2)],
            &[("code", &failed_code)],
        )
        .await
        .assert_code(602);
    let me2 = server
        .get("/api/appuser/getUser", &[("access-token", &at2)])
        .await
        .json();
    assert!(me2.get("phone").is_none(), "{me2}");

    // A password reset keeps 2FA by default: the next login still asks for the SMS code.
    server
        .form(
            "/api/appuser/forgotPassword",
            &app.header(),
            &[("handle", "s@x.de")],
        )
        .await
        .assert_true();
    let reset = code_in(&server.outbox().pop().unwrap());
    server
        .form(
            "/api/appuser/resetPassword",
            &app.header(),
            &[
                ("handle", "s@x.de"),
                ("password", &md5_hex("new")),
                ("code", &reset),
            ],
        )
        .await
        .assert_true();
    login_token(&server, &app, "s@x.de", "new").await;
    // An app may choose the reference behaviour.
    server.set(&app, &["resetPasswordRemovesTwoFactor=true"]);
    server
        .form(
            "/api/appuser/forgotPassword",
            &app.header(),
            &[("handle", "s@x.de")],
        )
        .await
        .assert_true();
    let reset = code_in(&server.outbox().pop().unwrap());
    server
        .form(
            "/api/appuser/resetPassword",
            &app.header(),
            &[
                ("handle", "s@x.de"),
                ("password", &md5_hex("newer")),
                ("code", &reset),
            ],
        )
        .await
        .assert_true();
    assert!(login(&server, &app, "s@x.de", "newer").await["jwt"].is_string());

    // The provider token is stored sealed, not in clear.
    let raw = std::fs::read(server.data_dir().join("tessera.db")).unwrap_or_default();
    assert!(!String::from_utf8_lossy(&raw).contains("tw-secret-token"));
}

async fn sms_codes_expire_and_sends_are_limited(backend: Backend) {
    let server = TestServer::start_on(
        backend,
        &[
            ("TESSERA_SMS_CODE_TTL_SECS", "1"),
            ("TESSERA_SMS_SEND_LIMIT", "2"),
        ],
    );
    let app = server.create_app("Outbox", "code");
    server.set(&app, &["twoFactorVerification=phone"]);
    let at = access(&sign_up(&server, &app, "o@x.de", "pw").await);
    let user = [("access-token", at.as_str())];
    server
        .form(
            "/api/appuser/setPhone",
            &user,
            &[("phone", "+44 20 7946 0000")],
        )
        .await
        .assert_true();
    // No provider account: the message is a `.sms` file in the outbox.
    let outbox = server.data_dir().join("outbox");
    let files: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "sms"))
        .collect();
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(files[0].path()).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("To: +442079460000"));
    let body = lines.next().unwrap();
    assert!(body.starts_with("Body: Outbox code: "), "{text}");
    let code = body.rsplit(' ').next().unwrap().to_owned();
    assert_eq!(code.len(), 6);
    // No number without `+` when the app has no default region.
    server
        .form(
            "/api/appuser/setPhone",
            &user,
            &[("phone", "020 7946 0000")],
        )
        .await
        .assert_code(602);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    server
        .form("/api/appuser/verifyPhone", &user, &[("code", &code)])
        .await
        .assert_code(602);
    // One more send is allowed, then the limit answers 602 without sending.
    server
        .form(
            "/api/appuser/setPhone",
            &user,
            &[("phone", "+44 20 7946 0000")],
        )
        .await
        .assert_true();
    server
        .form(
            "/api/appuser/setPhone",
            &user,
            &[("phone", "+44 20 7946 0001")],
        )
        .await
        .assert_code(602);
    let count = std::fs::read_dir(&outbox)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "sms"))
        .count();
    assert_eq!(count, 2);
}

async fn two_factor_errors(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("No2fa", "code");
    let at = access(&sign_up(&server, &app, "n@x.de", "pw").await);
    let user = [("access-token", at.as_str())];
    let post = |path: &'static str, body: Vec<(&'static str, &'static str)>| {
        let server = &server;
        async move { server.form(path, &user, &body).await }
    };
    // An app without 2FA: 408 on the Google route, 409 on the phone route and setPhone.
    post(
        "/api/appuser/setTwoFactorGoogleVerification",
        vec![("twoFactor", "true")],
    )
    .await
    .assert_code(408);
    post(
        "/api/appuser/setTwoFactorPhoneVerification",
        vec![("twoFactor", "true")],
    )
    .await
    .assert_code(409);
    post("/api/appuser/setPhone", vec![("phone", "+15550100000")])
        .await
        .assert_code(409);
    // A Google-mode app has no phones.
    server.set(&app, &["twoFactorVerification=google"]);
    post("/api/appuser/setPhone", vec![("phone", "+15550100000")])
        .await
        .assert_code(409);
    // Without an access-token: 602; an app-token is not a user.
    for path in [
        "/api/appuser/setPhone",
        "/api/appuser/verifyPhone",
        "/api/appuser/setTwoFactorGoogleVerification",
        "/api/appuser/setTwoFactorPhoneVerification",
    ] {
        server
            .form(
                path,
                &app.header(),
                &[("twoFactor", "true"), ("phone", "+1"), ("code", "123456")],
            )
            .await
            .assert_code(602);
    }
    // Strict types: an object where the code belongs.
    server
        .json(
            "/api/appuser/verifyPhone",
            &user,
            json!({"code": {"$gt": 0}}),
        )
        .await
        .assert_code(602);
    // Hostile settings are refused by the CLI.
    let out = server.cli(&[
        "app",
        "update",
        &app.app_id,
        "--set",
        "TWILIOAccountSid=../../x",
    ]);
    assert!(!out.status.success());
    let out = server.cli(&[
        "app",
        "update",
        &app.app_id,
        "--set",
        "phoneDefaultRegion=Mars",
    ]);
    assert!(!out.status.success());
}

async fn sms_login_past_the_send_limit_reuses_the_code_sent(backend: Backend) {
    let sink = SmsSink::start();
    let server = TestServer::start_on(
        backend,
        &[
            ("TESSERA_SMS_BASE_URL", &sink.base_url),
            ("TESSERA_SMS_SEND_LIMIT", "2"),
        ],
    );
    let app = sms_app(&server, "SmsLimit");
    let at = access(&sign_up(&server, &app, "l@x.de", "pw").await);
    let user = [("access-token", at.as_str())];
    // An SDK's form body with the `+` unencoded (form decoding would make it a space), in an
    // app whose default region (DE) must not swallow the country code.
    server
        .raw(
            reqwest::Method::POST,
            "/api/appuser/setPhone",
            &user,
            None,
            b"phone=+447946095800".to_vec(),
        )
        .await
        .assert_true();
    assert_eq!(sink.last().field("To"), "+447946095800");
    server
        .form(
            "/api/appuser/verifyPhone",
            &user,
            &[("code", &sink.last().code())],
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
    // Two logins send; later ones (someone with the password, say) send nothing but still
    // answer a login-token, and the code last sent completes the newest one.
    let sent = sink.all().len();
    let mut tokens = Vec::new();
    for _ in 0..4 {
        tokens.push(login_token(&server, &app, "l@x.de", "pw").await);
    }
    assert_eq!(
        sink.all().len(),
        sent + 2,
        "two SMS within the limit, no more"
    );
    let code = sink.last().code();
    let done = complete(&server, &app, &tokens[3], &code).await;
    assert_eq!(done.status, 200, "{}", done.text);
    // Single use across the tokens that share it.
    complete(&server, &app, &tokens[2], &code)
        .await
        .assert_code(600);
}

async fn a_confirmed_authenticator_needs_a_code_to_go(backend: Backend) {
    if !pyotp_available() {
        return;
    }
    let server = TestServer::on(backend);
    let app = server.create_app("KeepTotp", "code");
    server.set(
        &app,
        &[
            "twoFactorVerification=google",
            "twoFactorRequireConfirmation=true",
        ],
    );
    let at = access(&sign_up(&server, &app, "k@x.de", "pw").await);
    let user = [("access-token", at.as_str())];
    let set = |body: Vec<(&'static str, String)>| {
        let server = &server;
        async move {
            let body: Vec<(&str, &str)> = body.iter().map(|(k, v)| (*k, v.as_str())).collect();
            server
                .form("/api/appuser/setTwoFactorGoogleVerification", &user, &body)
                .await
        }
    };
    let r = set(vec![("twoFactor", "true".into())]).await;
    let secret = typed_secret(r.json()["googleSecretKey"].as_str().unwrap());
    set(vec![
        ("twoFactor", "true".into()),
        ("code", pyotp_code(&secret, 0)),
    ])
    .await
    .assert_true();
    let google_on = || async {
        server.get("/api/appuser/getUser", &user).await.json()["twoFactorGoogleVerification"]
            .as_bool()
    };
    // An access-token alone neither switches it off nor swaps the secret.
    set(vec![("twoFactor", "false".into())])
        .await
        .assert_code(602);
    set(vec![]).await.assert_code(602);
    set(vec![("twoFactor", "true".into())])
        .await
        .assert_code(602);
    set(vec![
        ("twoFactor", "false".into()),
        ("code", "000000".into()),
    ])
    .await
    .assert_code(602);
    assert_eq!(google_on().await, Some(true));
    // A current code from the authenticator does.
    set(vec![
        ("twoFactor", "false".into()),
        ("code", pyotp_code(&secret, 30)),
    ])
    .await
    .assert_true();
    assert_eq!(google_on().await, Some(false));
    assert!(login(&server, &app, "k@x.de", "pw").await["jwt"].is_string());
}

on_both_backends!(
    authenticator_app_login,
    authenticator_confirmation_and_code_budget,
    sms_login_through_a_twilio_compatible_api,
    sms_codes_expire_and_sends_are_limited,
    two_factor_errors,
    sms_login_past_the_send_limit_reuses_the_code_sent,
    a_confirmed_authenticator_needs_a_code_to_go,
);
