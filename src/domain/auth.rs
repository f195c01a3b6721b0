//! Credentials of the CosyncJWT routes (spec §1.3), resolved as the compatible superset the
//! spec recommends: every presented token is verified on its own, app context comes from
//! `app-token`/`appToken`, user context from `access-token`, and each route demands what it needs.

use crate::crypto::jwt::TokenKind;
use crate::store::UserRow;

use super::{Core, Error, Found, Result};

/// The raw credentials a request carried.
#[derive(Default)]
pub struct Presented<'a> {
    pub server_secret: Option<&'a str>,
    pub app_token: Option<&'a str>,
    pub access_token: Option<&'a str>,
    pub query_app_token: Option<&'a str>,
}

impl std::fmt::Debug for Presented<'_> {
    /// Which credentials came, never what they are.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented")
            .field("server_secret", &self.server_secret.is_some())
            .field("app_token", &self.app_token.is_some())
            .field("access_token", &self.access_token.is_some())
            .field("query_app_token", &self.query_app_token.is_some())
            .finish()
    }
}

/// A verified user session (from an access-token); still to be checked against the store.
#[derive(Debug, Clone)]
pub struct Session {
    pub app_id: String,
    pub user_id: String,
    pub epoch: i64,
}

/// Who is calling.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// App id from any credential.
    pub app_id: Option<String>,
    /// True when an app-token (header or query) was presented and verified.
    pub app_scope: bool,
    pub session: Option<Session>,
}

impl Caller {
    /// Routes marked **app**: an app-token must have been presented (else code 400).
    pub fn require_app_scope(&self) -> Result<&str> {
        match (&self.app_id, self.app_scope) {
            (Some(id), true) => Ok(id),
            _ => Err(Error::InvalidAppToken),
        }
    }

    /// Routes marked **appId**: any credential naming an app; `missing` otherwise.
    pub fn require_app_id(&self, missing: Error) -> Result<&str> {
        self.app_id.as_deref().ok_or(missing)
    }

    /// Routes marked **user**: an access-token; `missing` otherwise.
    pub fn require_session(&self, missing: Error) -> Result<&Session> {
        self.session.as_ref().ok_or(missing)
    }
}

/// How many verified app-tokens a node remembers: one per app and client build, plus those
/// the signup-link mails carry. Only tokens this service signed get in, so guessing cannot
/// fill it; when full it starts again, which costs no more than the checks it saves.
const VERIFIED_APP_TOKENS: usize = 4096;

impl Core {
    fn verify_app_token(&self, token: &str, now: i64) -> Option<String> {
        // Tessera's app-tokens never expire and the server key is never withdrawn, so the
        // verdict depends on the token's text alone; nearly every request carries one, and
        // remembering it spares a signature check each.
        if let Some(app_id) = self
            .verified_app_tokens
            .read()
            .ok()
            .and_then(|m| m.get(token).cloned())
        {
            return Some(app_id.to_string());
        }
        match self.tokens.verify(token, TokenKind::App, now / 1000) {
            Ok(c) => {
                if let Ok(mut m) = self.verified_app_tokens.write() {
                    if m.len() >= VERIFIED_APP_TOKENS {
                        m.clear();
                    }
                    m.insert(token.into(), c.app_id.as_str().into());
                }
                Some(c.app_id)
            }
            // App-tokens of the CosyncJWT server Tessera replaced, once its key is imported;
            // not remembered, as they may carry an expiry.
            Err(_) => self.verify_legacy_app_token(token, now),
        }
    }

    /// Resolves presented credentials. A presented but invalid token is refused with its
    /// code even if another credential would do.
    pub fn resolve_caller(&self, p: &Presented<'_>, now: i64) -> Result<Caller> {
        if p.server_secret.is_some() {
            return Err(Error::ServerSecretRejected);
        }
        let mut caller = Caller::default();
        if let Some(t) = p.app_token {
            caller.app_id = Some(
                self.verify_app_token(t, now)
                    .ok_or(Error::InvalidAppToken)?,
            );
            caller.app_scope = true;
        }
        if let Some(t) = p.access_token {
            match self.tokens.verify(t, TokenKind::Access, now / 1000) {
                Ok(c) => {
                    let (Some(user_id), Some(epoch)) = (c.sub, c.ep) else {
                        return Err(Error::InvalidAccessToken);
                    };
                    if caller.app_id.as_ref().is_some_and(|a| *a != c.app_id) {
                        return Err(Error::InvalidAccessToken);
                    }
                    caller.app_id = Some(c.app_id.clone());
                    caller.session = Some(Session {
                        app_id: c.app_id,
                        user_id,
                        epoch,
                    });
                }
                // The Kotlin SDK sends its app-token in this header for resetPassword.
                Err(_) => match self.verify_app_token(t, now) {
                    Some(app_id) if caller.app_id.as_ref().is_none_or(|a| *a == app_id) => {
                        caller.app_id = Some(app_id);
                        caller.app_scope = true;
                    }
                    _ => return Err(Error::InvalidAccessToken),
                },
            }
        }
        if let (Some(t), None) = (p.query_app_token, p.app_token) {
            let app_id = self
                .verify_app_token(t, now)
                .ok_or(Error::InvalidAppToken)?;
            if caller.app_id.as_ref().is_some_and(|a| *a != app_id) {
                return Err(Error::InvalidAppToken);
            }
            caller.app_id = Some(app_id);
            caller.app_scope = true;
        }
        Ok(caller)
    }

    /// The user behind a session. A credential change since the token was issued (password
    /// change or reset, suspension) revokes it: 405. A deleted user: 602 (spec §3.15).
    pub async fn session_user(&self, session: &Session) -> Result<UserRow> {
        let user = self
            .store
            .user_get(&session.app_id, &session.user_id)
            .await
            .found()?
            .ok_or(Error::InvalidData)?;
        if user.epoch != session.epoch {
            return Err(Error::InvalidAccessToken);
        }
        Ok(user)
    }
}
