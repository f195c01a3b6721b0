//! Token forgery and confusion: every token Tessera accepts is pinned to its algorithm, key,
//! kind, app and credential epoch.

use base64::Engine;
use serde_json::{Value, json};

use crate::helpers::*;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn part(token: &str, i: usize) -> Value {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').nth(i).unwrap())
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// A token with the given header and claims and the signature of `like` (or none).
fn forge(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// HS256 over `header.claims` keyed with `key` (the classic RS/HS confusion).
fn hs256(header: &Value, claims: &Value, key: &[u8]) -> String {
    let unsigned = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let script = "import hmac,hashlib,sys,base64;print(base64.urlsafe_b64encode(hmac.new(sys.argv[1].encode(),sys.argv[2].encode(),hashlib.sha256).digest()).decode().rstrip('='))";
    let out = std::process::Command::new("python3")
        .args(["-c", script, std::str::from_utf8(key).unwrap(), &unsigned])
        .output()
        .unwrap();
    format!(
        "{unsigned}.{}",
        String::from_utf8(out.stdout).unwrap().trim()
    )
}

#[tokio::test]
async fn forged_and_confused_tokens_are_refused() {
    let server = TestServer::on(Backend::Sqlite);
    let app = server.create_app("Tokens", "code");
    let other = server.create_app("Other", "code");
    let signed = sign_up(&server, &app, "t@x.de", "pw").await;
    let access = signed["access-token"].as_str().unwrap().to_owned();
    let user_jwt = signed["jwt"].as_str().unwrap().to_owned();
    let get_user = |token: String| {
        let server = &server;
        async move {
            server
                .get("/api/appuser/getUser", &[("access-token", token.as_str())])
                .await
        }
    };
    assert_eq!(get_user(access.clone()).await.status, 200);
    let header = part(&access, 0);
    let claims = part(&access, 1);
    let sig = access.rsplit('.').next().unwrap().to_owned();
    let mut forged = Vec::new();
    // alg none, with and without a signature.
    let mut none = header.clone();
    none["alg"] = json!("none");
    forged.push(forge(&none, &claims, ""));
    forged.push(forge(&none, &claims, &sig));
    // HS256 keyed with the app's public key (the RS256/HS256 confusion).
    let mut hs = header.clone();
    hs["alg"] = json!("HS256");
    forged.push(hs256(&hs, &claims, app.public_key.as_bytes()));
    // Keys or key URLs supplied in the header; an unknown kid; no kid.
    for (k, v) in [
        ("jku", json!("http://127.0.0.1:1/keys")),
        ("jwk", json!({"kty": "oct", "k": "AAAA"})),
        ("x5u", json!("http://127.0.0.1:1/cert")),
    ] {
        let mut h = header.clone();
        h[k] = v;
        forged.push(forge(&h, &claims, &sig));
    }
    let mut unknown_kid = header.clone();
    unknown_kid["kid"] = json!("not-a-key");
    forged.push(forge(&unknown_kid, &claims, &sig));
    let mut no_kid = header.clone();
    no_kid.as_object_mut().unwrap().remove("kid");
    forged.push(forge(&no_kid, &claims, &sig));
    // Claims changed under the original signature: another app, a later exp, exp as text.
    for (k, v) in [
        ("appId", json!(other.app_id)),
        ("exp", json!(9_999_999_999i64)),
        ("exp", json!("9999999999")),
        ("typ", json!("app")),
    ] {
        let mut c = claims.clone();
        c[k] = v;
        forged.push(forge(&header, &c, &sig));
    }
    // Other kinds of token where an access-token belongs, and an oversized one.
    forged.push(user_jwt.clone());
    forged.push(format!("{access}{}", "A".repeat(5000)));
    for token in forged {
        get_user(token.clone()).await.assert_code(405);
    }
    // An app-token in the access-token header names the app (spec §1.3), not a user.
    get_user(app.app_token.clone()).await.assert_code(602);
    // The user JWT and an access-token are not app-tokens either.
    for token in [user_jwt.as_str(), access.as_str()] {
        server
            .form(
                "/api/appuser/signup",
                &[("app-token", token)],
                &[("handle", "n@x.de"), ("password", &md5_hex("pw"))],
            )
            .await
            .assert_code(400);
    }
}

#[tokio::test]
async fn revoked_and_single_use_tokens_stay_dead() {
    let server = TestServer::on(Backend::Sqlite);
    let app = server.create_app("Revoke", "code");
    let at1 = sign_up(&server, &app, "r@x.de", "pw").await["access-token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Password change revokes earlier access-tokens.
    server
        .form(
            "/api/appuser/changePassword",
            &[("access-token", at1.as_str())],
            &[
                ("password", &md5_hex("pw")),
                ("newPassword", &md5_hex("pw2")),
            ],
        )
        .await
        .assert_true();
    server
        .get("/api/appuser/getUser", &[("access-token", at1.as_str())])
        .await
        .assert_code(405);
    // Deletion revokes too.
    let login = server
        .form(
            "/api/appuser/login",
            &app.header(),
            &[("handle", "r@x.de"), ("password", &md5_hex("pw2"))],
        )
        .await;
    let at2 = login.json()["access-token"].as_str().unwrap().to_owned();
    server
        .form(
            "/api/appuser/deleteAccount",
            &[("access-token", at2.as_str())],
            &[("handle", "r@x.de"), ("password", &md5_hex("pw2"))],
        )
        .await
        .assert_true();
    let after = server
        .get("/api/appuser/getUser", &[("access-token", at2.as_str())])
        .await;
    assert_eq!(after.status, 400, "{}", after.text);
    assert!(
        [405, 602].contains(&after.json()["code"].as_u64().unwrap()),
        "{}",
        after.text
    );
}
