//! The verifier of Tessera's own tokens: arbitrary text (and mutations of a real token) is
//! refused without a panic, and nothing but the genuine token verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tessera::crypto::jwt::{ServerClaims, ServerTokens, TokenKind};
use tessera::crypto::keys::EdSigner;

fn tokens() -> &'static (ServerTokens, String) {
    static T: OnceLock<(ServerTokens, String)> = OnceLock::new();
    T.get_or_init(|| {
        let pkcs8 = EdSigner::generate().expect("key");
        let t = ServerTokens::new(EdSigner::from_pkcs8("k1", &pkcs8).expect("key"));
        let genuine = t
            .issue(&ServerClaims {
                typ: TokenKind::Access,
                scope: "user".into(),
                app_id: "app".into(),
                sub: Some("u".into()),
                ep: Some(0),
                jti: None,
                iat: 0,
                exp: Some(i64::MAX / 2),
            })
            .expect("token");
        (t, genuine)
    })
}

fuzz_target!(|data: &[u8]| {
    let (t, genuine) = tokens();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for kind in [TokenKind::Access, TokenKind::App, TokenKind::Login] {
        if t.verify(text, kind, 0).is_ok() {
            assert_eq!(text, genuine, "only the genuine token verifies");
        }
    }
    // Splice the input into the genuine token's parts.
    let mut parts: Vec<&str> = genuine.split('.').collect();
    let i = data.first().map_or(0, |b| usize::from(*b) % 3);
    parts[i] = text;
    let spliced = parts.join(".");
    if spliced != *genuine {
        assert!(t.verify(&spliced, TokenKind::Access, 0).is_err());
    }
});
