//! Issuing the user JWT (spec §5) and the token pair a successful login answers with.

use serde_json::{Map, Value};

use super::apps::App;
use super::metadata::{ClaimInput, user_claims};
use super::{Core, Error, Result};
use crate::crypto::jwt::sign_rs256;
use crate::store::UserRow;

/// How stale `lastLogin` may be (see `issue_signed`).
const LAST_LOGIN_RESOLUTION_MS: i64 = 60_000;

/// The Atlas limit on an encoded token (spec atlas-custom-jwt).
pub const MAX_JWT_CHARS: usize = 2048;

/// What login-like calls answer with.
#[derive(Debug, Clone)]
pub struct Issued {
    pub jwt: String,
    pub access_token: String,
    /// For Swift SDK releases before 2023-10-29 (spec §2).
    pub signed_user_token: Option<String>,
}

impl Core {
    /// Signs the user JWT with the app's active key; refuses a token over 2048 characters.
    pub async fn user_jwt(
        &self,
        app: &App,
        user: &UserRow,
        handle: &str,
        now: i64,
    ) -> Result<String> {
        let metadata = self.user_metadata(user)?;
        let user_name = self.user_name(user)?;
        let issuer = self.issuer(app.id());
        let claims = user_claims(&ClaimInput {
            settings: &app.settings,
            issuer: &issuer,
            handle,
            anonymous: handle.contains(super::handle::ANON_MARKER),
            user_name: user_name.as_deref(),
            metadata: &metadata,
            now_secs: now / 1000,
        })?;
        let signer = self.signer(app.id(), &app.row.active_kid).await?;
        let jwt = sign_rs256(&signer, &claims)?;
        if jwt.len() > MAX_JWT_CHARS {
            tracing::warn!(
                app = app.id(),
                chars = jwt.len(),
                "user JWT over the 2048-character limit"
            );
            return Err(Error::InvalidMetadata);
        }
        Ok(jwt)
    }

    /// The `{jwt, access-token}` pair for a user who has just proven who they are.
    pub async fn issue(&self, app: &App, user: &UserRow, handle: &str, now: i64) -> Result<Issued> {
        let jwt = self.user_jwt(app, user, handle, now).await?;
        self.issue_signed(app, user, jwt, now).await
    }

    /// The pair for a user whose JWT is already signed: account-creating calls sign it before
    /// they store the user, so a JWT over the limit fails the call and stores nothing.
    pub async fn issue_signed(
        &self,
        app: &App,
        user: &UserRow,
        jwt: String,
        now: i64,
    ) -> Result<Issued> {
        let access_token = self.access_token(app.id(), &user.id, user.epoch, now)?;
        // `lastLogin` to the minute: a user logging in again within a minute costs no write
        // (on SQLite every write is an fsync, and the write would dwarf the rest of a login).
        if user
            .last_login
            .is_none_or(|last| now - last >= LAST_LOGIN_RESOLUTION_MS)
        {
            self.store
                .user_set_last_login(app.id(), &user.id, now)
                .await?;
        }
        Ok(Issued {
            jwt,
            access_token,
            signed_user_token: None,
        })
    }

    /// The legacy `signed-user-token` (spec §2): RS256 under the app key with `handle`,
    /// `appId`, `code` and `metaData` as a JSON string indented by ten spaces.
    pub async fn signed_user_token(
        &self,
        app: &App,
        handle: &str,
        code: &str,
        metadata: &Map<String, Value>,
        extra: Map<String, Value>,
        now: i64,
    ) -> Result<String> {
        let meta_text = if metadata.is_empty() {
            String::new()
        } else {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"          ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            serde::Serialize::serialize(metadata, &mut ser)
                .map_err(|e| Error::Internal(e.to_string()))?;
            String::from_utf8(buf).map_err(|e| Error::Internal(e.to_string()))?
        };
        let mut claims = Map::new();
        claims.insert("handle".into(), Value::String(handle.to_owned()));
        claims.insert("appId".into(), Value::String(app.id().to_owned()));
        claims.insert(
            "code".into(),
            code.parse::<u64>().map(Value::from).unwrap_or(Value::Null),
        );
        claims.insert("metaData".into(), Value::String(meta_text));
        claims.insert("iat".into(), Value::from(now / 1000));
        claims.extend(extra);
        let signer = self.signer(app.id(), &app.row.active_kid).await?;
        Ok(sign_rs256(&signer, &claims)?)
    }
}
