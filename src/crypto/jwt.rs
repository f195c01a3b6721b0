//! Compact JWS (RFC 7515) for the two kinds of token Tessera signs:
//! the user JWT (RS256 under the app's key, consumed by others) and Tessera's own tokens
//! (EdDSA under the server key, typed and expiring, verified only here).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::keys::{EdSigner, RsaSigner};
use super::{CryptoError, b64url, b64url_decode};

/// Longest token accepted for verification; anything larger is refused unparsed.
pub const MAX_TOKEN_LEN: usize = 4096;

/// Signs `claims` as an RS256 JWT with the app key; the header names the key by `kid`.
pub fn sign_rs256(signer: &RsaSigner, claims: &Map<String, Value>) -> Result<String, CryptoError> {
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": signer.kid});
    let mut token = encode_parts(&header, claims)?;
    let sig = signer.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&b64url(&sig));
    Ok(token)
}

fn encode_parts(header: &impl Serialize, claims: &impl Serialize) -> Result<String, CryptoError> {
    let h = serde_json::to_vec(header).map_err(|_| CryptoError::Failed)?;
    let c = serde_json::to_vec(claims).map_err(|_| CryptoError::Failed)?;
    let mut out = b64url(&h);
    out.push('.');
    out.push_str(&b64url(&c));
    Ok(out)
}

/// What a server token is for. Verification names the kind it expects and refuses every other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Identifies an app to the CosyncJWT routes; baked into client apps, so it does not expire.
    App,
    /// A user's session with Tessera (`access-token`).
    Access,
    /// The first half of a two-factor login (`login-token`).
    Login,
}

/// Claims of Tessera's own tokens. Unknown claims are refused, so a token of one shape
/// cannot pass as another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerClaims {
    /// Token kind, checked on every verification.
    pub typ: TokenKind,
    /// Kept for CosyncJWT compatibility: `app` or `user`.
    pub scope: String,
    #[serde(rename = "appId")]
    pub app_id: String,
    /// User id for user-bound tokens.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sub: Option<String>,
    /// Credential epoch of the user at issue time; a change revokes the token.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ep: Option<i64>,
    /// Unique id, for single-use tokens.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub jti: Option<String>,
    pub iat: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exp: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EdHeader {
    alg: String,
    typ: String,
    kid: String,
}

/// Why a token was refused (never shown to clients, only logged at debug level).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("token header not accepted")]
    Header,
    #[error("bad signature")]
    Signature,
    #[error("wrong token kind")]
    Kind,
    #[error("token expired")]
    Expired,
}

/// Clock leeway for `exp`, in seconds.
const LEEWAY_SECS: i64 = 30;

/// Signs and verifies Tessera's own tokens with the server Ed25519 key.
#[derive(Debug)]
pub struct ServerTokens {
    signer: EdSigner,
}

impl ServerTokens {
    pub fn new(signer: EdSigner) -> Self {
        Self { signer }
    }

    pub fn issue(&self, claims: &ServerClaims) -> Result<String, CryptoError> {
        let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": self.signer.kid});
        let mut token = encode_parts(&header, claims)?;
        let sig = self.signer.sign(token.as_bytes());
        token.push('.');
        token.push_str(&b64url(&sig));
        Ok(token)
    }

    /// Verifies a token of kind `want`: algorithm and key are pinned (never read from the
    /// token), the kind must match, and an `exp` is required for every kind but `App`.
    pub fn verify(
        &self,
        token: &str,
        want: TokenKind,
        now_secs: i64,
    ) -> Result<ServerClaims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: EdHeader = b64url_decode(h)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed)?;
        if header.alg != "EdDSA" || header.typ != "JWT" || header.kid != self.signer.kid {
            return Err(TokenError::Header);
        }
        let sig = b64url_decode(s).ok_or(TokenError::Malformed)?;
        let signed_len = h.len() + 1 + c.len();
        if !self.signer.verify(&token.as_bytes()[..signed_len], &sig) {
            return Err(TokenError::Signature);
        }
        let claims: ServerClaims = b64url_decode(c)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed)?;
        if claims.typ != want {
            return Err(TokenError::Kind);
        }
        match (want, claims.exp) {
            (TokenKind::App, _) => {}
            (_, None) => return Err(TokenError::Expired),
            (_, Some(exp)) if exp + LEEWAY_SECS < now_secs => return Err(TokenError::Expired),
            _ => {}
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> ServerTokens {
        let doc = EdSigner::generate().unwrap();
        ServerTokens::new(EdSigner::from_pkcs8("k1", &doc).unwrap())
    }

    fn access(exp: i64) -> ServerClaims {
        ServerClaims {
            typ: TokenKind::Access,
            scope: "user".into(),
            app_id: "a".into(),
            sub: Some("u".into()),
            ep: Some(0),
            jti: None,
            iat: 0,
            exp: Some(exp),
        }
    }

    #[test]
    fn round_trip_and_kind_pinning() {
        let t = tokens();
        let tok = t.issue(&access(1000)).unwrap();
        assert_eq!(
            t.verify(&tok, TokenKind::Access, 900).unwrap(),
            access(1000)
        );
        assert_eq!(t.verify(&tok, TokenKind::Login, 900), Err(TokenError::Kind));
        assert_eq!(t.verify(&tok, TokenKind::App, 900), Err(TokenError::Kind));
        assert_eq!(
            t.verify(&tok, TokenKind::Access, 2000),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn refuses_foreign_key_alg_none_and_tampering() {
        let t = tokens();
        let tok = t.issue(&access(1000)).unwrap();
        assert_eq!(
            tokens().verify(&tok, TokenKind::Access, 0),
            Err(TokenError::Signature)
        );
        let parts: Vec<&str> = tok.split('.').collect();
        let none = format!(
            "{}.{}.",
            b64url(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
            parts[1]
        );
        assert_eq!(
            t.verify(&none, TokenKind::Access, 0),
            Err(TokenError::Header)
        );
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64url(br#"{"typ":"access","scope":"user","appId":"b","iat":0,"exp":1000}"#),
            parts[2]
        );
        assert_eq!(
            t.verify(&forged, TokenKind::Access, 0),
            Err(TokenError::Signature)
        );
        assert_eq!(
            t.verify(&"a".repeat(5000), TokenKind::Access, 0),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            t.verify("a.b", TokenKind::Access, 0),
            Err(TokenError::Malformed)
        );
    }
}
