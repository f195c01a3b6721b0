//! App-tokens of the CosyncJWT server Tessera replaces (spec §1.3, §2): RS256 under the old
//! server key with claims `appId` and `scope: "app"`. Baked into shipped client apps, they stay
//! valid once the operator imports the old server's *public* key. Verification pins RS256 and
//! the imported keys, and accepts scope `app` only: the old server's access-tokens (scope
//! `user`), login-tokens (no scope) and server secrets are refused, so users log in again.

use serde_json::{Map, Value};

use super::ImportError;
use crate::crypto::b64url_decode;
use crate::crypto::jwt::MAX_TOKEN_LEN;
use crate::crypto::keys::RsaPublic;
use crate::domain::Core;

/// Longest app id a legacy token may name (the reference uses 32 hex digits).
const MAX_APP_ID: usize = 64;

impl Core {
    /// Reads the imported keys into memory (at start, and every few seconds while serving).
    pub async fn load_legacy_keys(&self) -> Result<usize, ImportError> {
        let rows = self.store.legacy_keys().await?;
        let mut keys = Vec::with_capacity(rows.len());
        for (kid, der) in rows {
            match RsaPublic::from_spki_der(&der) {
                Ok(k) => keys.push(k),
                Err(e) => tracing::error!(kid, error = %e, "stored legacy server key unreadable"),
            }
        }
        let n = keys.len();
        if let Ok(mut guard) = self.legacy_app_keys.write() {
            *guard = keys;
        }
        Ok(n)
    }

    /// Stores the old server's public key (PEM, or base64 of PEM); returns its thumbprint
    /// and whether it was new.
    pub async fn import_legacy_server_key(
        &self,
        pem_text: &str,
        now: i64,
    ) -> Result<(String, bool), ImportError> {
        let key = super::pem::rsa_public(pem_text).map_err(ImportError::Input)?;
        let kid = key.thumbprint();
        let new = self.store.legacy_key_put(&kid, &key.spki_der, now).await?;
        self.load_legacy_keys().await?;
        Ok((kid, new))
    }

    /// The app id of a valid legacy app-token; `None` for anything else.
    pub fn verify_legacy_app_token(&self, token: &str, now: i64) -> Option<String> {
        let keys = self.legacy_app_keys.read().ok()?;
        if keys.is_empty() || token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let header: Map<String, Value> = serde_json::from_slice(&b64url_decode(h)?).ok()?;
        // Pinned: RS256 only (never `none`, never HS256 keyed with the public key), no
        // critical extensions, and the key is ours, never one the header names or carries.
        if header.get("alg")?.as_str()? != "RS256"
            || header.contains_key("crit")
            || header.get("typ").is_some_and(|t| t.as_str() != Some("JWT"))
        {
            return None;
        }
        let sig = b64url_decode(s)?;
        let signed = &token.as_bytes()[..h.len() + 1 + c.len()];
        if !keys.iter().any(|k| k.verify(signed, &sig)) {
            return None;
        }
        let claims: Map<String, Value> = serde_json::from_slice(&b64url_decode(c)?).ok()?;
        if claims.get("scope")?.as_str()? != "app" {
            return None;
        }
        let now_secs = now / 1000;
        if claims
            .get("exp")
            .is_some_and(|e| e.as_i64().is_none_or(|e| e < now_secs))
            || claims
                .get("nbf")
                .is_some_and(|n| n.as_i64().is_none_or(|n| n > now_secs + 30))
        {
            return None;
        }
        let app_id = claims.get("appId")?.as_str()?;
        if app_id.is_empty()
            || app_id.len() > MAX_APP_ID
            || !app_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
        Some(app_id.to_owned())
    }
}

/// The `appId` claim of a token, read without verifying it (to learn the id an export's
/// app-token carries; never used to grant anything).
pub fn unverified_app_id(token: &str) -> Option<String> {
    let claims = token.split('.').nth(1)?;
    let claims: Map<String, Value> = serde_json::from_slice(&b64url_decode(claims)?).ok()?;
    Some(claims.get("appId")?.as_str()?.to_owned())
}
