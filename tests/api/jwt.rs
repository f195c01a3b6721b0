//! The user JWT verified by an independent library (PyJWT) against Tessera's JWKS URL.

use crate::helpers::*;

const VERIFY: &str = r#"
import json, sys, jwt
token, jwks_url, aud, sub = sys.argv[1:5]
issuer = sys.argv[5] if len(sys.argv) > 5 else None
client = jwt.PyJWKClient(jwks_url)
key = client.get_signing_key_from_jwt(token)
claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=aud, issuer=issuer,
                    options={"require": ["exp", "sub", "aud", "iat", "iss"]})
assert claims["sub"] == sub, claims
header = jwt.get_unverified_header(token)
assert header["kid"] == key.key_id, header
print(json.dumps({"ok": True, "kid": header["kid"], "exp": claims["exp"]}))
"#;

fn pyjwt(args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new("python3");
    cmd.arg("-c").arg(VERIFY).args(args);
    cmd.output().expect("python3")
}

fn pyjwt_available() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .status()
        .is_ok_and(|s| s.success())
}

async fn pyjwt_verifies_the_user_jwt_against_the_jwks_url(backend: Backend) {
    if !pyjwt_available() {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install PyJWT (pip install pyjwt cryptography)"
        );
        eprintln!("skipping: PyJWT not installed");
        return;
    }
    let server = TestServer::on(backend);
    let app = server.create_app("Verified", "code");
    server.set(&app, &["realmAppId=my-realm-app"]);
    let v = sign_up(&server, &app, "pat@example.com", "pw").await;
    let jwt = v["jwt"].as_str().unwrap();
    let jwks_url = server.url(&format!("/apps/{}/.well-known/jwks.json", app.app_id));
    // The issuer comes from the discovery document, as a relying party would take it.
    let discovery = server
        .get(
            &format!("/apps/{}/.well-known/openid-configuration", app.app_id),
            &[],
        )
        .await
        .json();
    let issuer = discovery["issuer"].as_str().unwrap();
    let out = pyjwt(&[jwt, &jwks_url, "my-realm-app", "pat@example.com", issuer]);
    assert!(
        out.status.success(),
        "PyJWT refused the token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let res: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(res["kid"], header_of(jwt)["kid"]);

    // The wrong audience and a tampered token are refused by the same library.
    let out = pyjwt(&[jwt, &jwks_url, "other-app", "pat@example.com"]);
    assert!(!out.status.success());
    let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].chars().rev().collect();
    let out = pyjwt(&[
        &parts.join("."),
        &jwks_url,
        "my-realm-app",
        "pat@example.com",
    ]);
    assert!(!out.status.success());
}

async fn jwks_and_discovery_documents(backend: Backend) {
    let server = TestServer::on(backend);
    let app = server.create_app("Keys", "code");
    let r = server
        .get(&format!("/apps/{}/.well-known/jwks.json", app.app_id), &[])
        .await;
    assert_eq!(r.status, 200);
    let jwks = r.json();
    let key = &jwks["keys"][0];
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(
        (
            key["kty"].as_str(),
            key["alg"].as_str(),
            key["use"].as_str()
        ),
        (Some("RSA"), Some("RS256"), Some("sig"))
    );
    assert_eq!(key["e"], "AQAB");
    assert!(key.get("d").is_none(), "no private parts in the JWKS");
    // n of a 2048-bit modulus: 256 bytes → 342 base64url characters.
    assert_eq!(key["n"].as_str().unwrap().len(), 342);
    let d = server
        .get(
            &format!("/apps/{}/.well-known/openid-configuration", app.app_id),
            &[],
        )
        .await
        .json();
    assert_eq!(
        d["jwks_uri"],
        server.url(&format!("/apps/{}/.well-known/jwks.json", app.app_id))
    );
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(d["issuer"], server.url(&format!("/apps/{}", app.app_id)));
    let missing = server.get("/apps/0000/.well-known/jwks.json", &[]).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.content_type, "application/problem+json");
}

on_both_backends!(
    pyjwt_verifies_the_user_jwt_against_the_jwks_url,
    jwks_and_discovery_documents,
);
