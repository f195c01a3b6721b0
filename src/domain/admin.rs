//! Administration (issue "Administration"): server admin tokens, whole-app operations (status,
//! deletion, key rotation, statistics) and the audit log. User-level operations live in
//! `admin_users.rs`. Every change is recorded as an audit event naming what changed, never a
//! value.

use serde_json::{Value, json};

use super::apps::{App, STATUS_ACTIVE, STATUS_INACTIVE, iso_millis};
use super::{Audit, Core, Error, Found};
use crate::crypto::keys::{RsaBits, generate_rsa};
use crate::crypto::random;
use crate::store::{AdminTokenRow, AppKeyRow, AuditFilter, StoreError};

/// Prefix of server admin tokens, so a leaked one is recognisable in a scan.
pub const ADMIN_TOKEN_PREFIX: &str = "tsa_";
/// Keys an app publishes at most (Atlas reads at most three).
pub const PUBLISHED_KEYS: usize = 3;
const ADMIN_TOKEN_PURPOSE: &str = "admin-token";

/// Why an admin call was refused; mapped to problem documents in `http/admin`.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no admin token presented")]
    Unauthenticated,
    #[error("the admin token is not valid")]
    BadToken,
    #[error("the admin token has been revoked or has expired")]
    TokenNoLongerValid,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Domain(#[from] Error),
}

impl From<crate::crypto::CryptoError> for AdminError {
    fn from(e: crate::crypto::CryptoError) -> Self {
        Self::Domain(e.into())
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        Self::Domain(e.into())
    }
}

impl From<super::apps::UpdateError> for AdminError {
    fn from(e: super::apps::UpdateError) -> Self {
        use super::apps::UpdateError as U;
        match e {
            U::NotFound(id) => Self::NotFound(format!("no app with id {id}")),
            U::Invalid(s) => Self::Invalid(s.0),
            U::Domain(d) => Self::Domain(d),
        }
    }
}

pub type AdminResult<T> = std::result::Result<T, AdminError>;

/// A freshly created admin token: the secret is shown once and never stored.
#[derive(Debug, serde::Serialize)]
pub struct CreatedAdminToken {
    pub id: String,
    pub token: String,
    #[serde(rename = "expiresAt", skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// Who is calling the admin API.
#[derive(Debug, Clone)]
pub enum AdminCaller {
    /// A server admin token (its id, for the audit log).
    Token(String),
    /// The CLI on the server's own database.
    Local,
}

impl AdminCaller {
    pub fn label(&self) -> String {
        match self {
            Self::Token(id) => format!("token:{id}"),
            Self::Local => "cli".into(),
        }
    }
}

/// Page bounds given by a caller, clamped.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

impl Page {
    pub fn new(limit: Option<i64>, offset: Option<i64>) -> AdminResult<Self> {
        let limit = limit.unwrap_or(50);
        let offset = offset.unwrap_or(0);
        if !(1..=1000).contains(&limit) || offset < 0 {
            return Err(AdminError::Invalid(
                "limit must be 1..=1000 and offset at least 0".into(),
            ));
        }
        Ok(Self { limit, offset })
    }
}

impl Core {
    /// Creates an admin token named `name`, valid for `ttl_secs` (none: until revoked).
    pub async fn create_admin_token(
        &self,
        name: &str,
        ttl_secs: Option<i64>,
        now: i64,
    ) -> AdminResult<CreatedAdminToken> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(AdminError::Invalid(
                "name must be 1-100 printable characters".into(),
            ));
        }
        if ttl_secs.is_some_and(|t| !(1..=10 * 365 * 86_400).contains(&t)) {
            return Err(AdminError::Invalid(
                "expiry must be 1 second to 10 years".into(),
            ));
        }
        let id = random::row_id();
        let secret = data_encoding::BASE64URL_NOPAD.encode(&random::bytes::<32>()?);
        let expires_at = ttl_secs.map(|t| now + t * 1000);
        self.store
            .admin_token_insert(&AdminTokenRow {
                secret_hash: self.keyring.code_hash(ADMIN_TOKEN_PURPOSE, &id, &secret),
                id: id.clone(),
                name: name.to_owned(),
                created_at: now,
                expires_at,
                revoked_at: None,
                last_used_at: None,
            })
            .await?;
        Ok(CreatedAdminToken {
            token: format!("{ADMIN_TOKEN_PREFIX}{id}.{secret}"),
            id,
            expires_at: expires_at.map(iso_millis),
        })
    }

    /// Checks a presented admin token: malformed or unknown 401, revoked or expired 403.
    pub async fn verify_admin_token(&self, presented: &str, now: i64) -> AdminResult<String> {
        let (id, secret) = presented
            .strip_prefix(ADMIN_TOKEN_PREFIX)
            .and_then(|rest| rest.split_once('.'))
            .filter(|(id, secret)| id.len() <= 64 && secret.len() <= 128)
            .ok_or(AdminError::BadToken)?;
        let row = self
            .store
            .admin_token_get(id)
            .await
            .found()?
            .ok_or(AdminError::BadToken)?;
        // Under any readable master key: a token keeps working during a key rotation.
        if !self
            .keyring
            .code_hash_matches(ADMIN_TOKEN_PURPOSE, id, secret, &row.secret_hash)
        {
            return Err(AdminError::BadToken);
        }
        if row.revoked_at.is_some() || row.expires_at.is_some_and(|e| now > e) {
            return Err(AdminError::TokenNoLongerValid);
        }
        self.store.admin_token_touch(id, now).await?;
        Ok(row.id)
    }

    pub async fn list_admin_tokens(&self) -> AdminResult<Vec<Value>> {
        let rows = self.store.admin_token_list().await?;
        Ok(rows
            .iter()
            .map(|t| {
                json!({
                    "id": t.id,
                    "name": t.name,
                    "createdAt": iso_millis(t.created_at),
                    "expiresAt": t.expires_at.map(iso_millis),
                    "revokedAt": t.revoked_at.map(iso_millis),
                    "lastUsedAt": t.last_used_at.map(iso_millis),
                })
            })
            .collect())
    }

    pub async fn revoke_admin_token(&self, id: &str, now: i64) -> AdminResult<()> {
        if self.store.admin_token_revoke(id, now).await? {
            Ok(())
        } else {
            Err(AdminError::NotFound(format!("no active admin token {id}")))
        }
    }

    /// Loads an app for an admin call (404 when unknown).
    pub async fn admin_app(&self, app_id: &str) -> AdminResult<App> {
        match self.app_uncached(app_id).await {
            Ok(app) => Ok(app),
            Err(Error::AppNotFound) => {
                Err(AdminError::NotFound(format!("no app with id {app_id}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The admin view of an app: public settings, status, keys, which secrets are set (never
    /// their values), and counts.
    pub async fn admin_app_view(&self, app_id: &str) -> AdminResult<Value> {
        let app = self.admin_app(app_id).await?;
        let mut doc = self.application_view(app.id()).await?;
        let keys: Vec<Value> = self
            .store
            .app_keys(app.id())
            .await?
            .iter()
            .map(|k| json!({"kid": k.kid, "status": k.status, "createdAt": iso_millis(k.created_at)}))
            .collect();
        let secrets = self.app_secrets(&app)?;
        let counts = self.store.app_counts(app.id()).await?;
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("appId".into(), Value::String(app.id().to_owned()));
            obj.insert("keys".into(), Value::Array(keys));
            obj.insert("secretsSet".into(), json!(secrets.names_set()));
            obj.insert("jwksUrl".into(), Value::String(self.jwks_url(app.id())));
            obj.insert("stats".into(), counts_json(counts));
        }
        Ok(doc)
    }

    pub async fn app_stats(&self, app_id: &str) -> AdminResult<Value> {
        let app = self.admin_app(app_id).await?;
        Ok(counts_json(self.store.app_counts(app.id()).await?))
    }

    /// Suspends (`inactive`: every route answers 402) or reactivates an app.
    pub async fn set_app_active(
        &self,
        app_id: &str,
        active: bool,
        caller: &AdminCaller,
        now: i64,
    ) -> AdminResult<()> {
        let status = if active {
            STATUS_ACTIVE
        } else {
            STATUS_INACTIVE
        };
        self.update_app(app_id, &[("status".into(), Value::from(status))], now)
            .await?;
        let action = if active {
            "admin.app.activate"
        } else {
            "admin.app.suspend"
        };
        self.admin_audit(Some(app_id), None, action, caller, None, now)
            .await;
        Ok(())
    }

    pub async fn delete_app(
        &self,
        app_id: &str,
        caller: &AdminCaller,
        now: i64,
    ) -> AdminResult<()> {
        let deleted = self.store.app_delete(app_id).await;
        self.forget_app(app_id);
        match deleted {
            Ok(()) => {}
            Err(StoreError::NotFound) => {
                return Err(AdminError::NotFound(format!("no app with id {app_id}")));
            }
            Err(e) => return Err(e.into()),
        }
        self.admin_audit(Some(app_id), None, "admin.app.delete", caller, None, now)
            .await;
        Ok(())
    }

    /// A new signing key becomes active; the old one stays published (retiring) so tokens it
    /// signed still verify, and at most three keys are published.
    pub async fn rotate_app_key(
        &self,
        app_id: &str,
        bits: RsaBits,
        caller: &AdminCaller,
        now: i64,
    ) -> AdminResult<Value> {
        let app = self.admin_app(app_id).await?;
        let key = tokio::task::spawn_blocking(move || generate_rsa(bits))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(Error::from)?;
        let kid = key.public.thumbprint();
        let row = AppKeyRow {
            sealed_private: self
                .keyring
                .seal(&format!("app_keys.sealed_private:{kid}"), &key.pkcs8)
                .map_err(Error::from)?,
            kid: kid.clone(),
            app_id: app.id().to_owned(),
            public_der: key.public.spki_der.clone(),
            status: "active".into(),
            created_at: now,
        };
        let rotated = self.store.app_key_rotate(&row, PUBLISHED_KEYS).await;
        self.forget_app(app_id);
        self.forget_jwks(app_id);
        match rotated {
            Ok(()) => {}
            // Deleted meanwhile (through another node or the CLI).
            Err(StoreError::NotFound | StoreError::Gone) => {
                return Err(AdminError::NotFound(format!("no app with id {app_id}")));
            }
            Err(e) => return Err(e.into()),
        }
        self.admin_audit(
            Some(app_id),
            None,
            "admin.app.rotate_key",
            caller,
            Some(&kid),
            now,
        )
        .await;
        Ok(json!({"kid": kid, "publicKey": key.public.pem(), "jwksUrl": self.jwks_url(app_id)}))
    }

    /// Settings changes by an operator, recorded with the names (never the values) changed.
    pub async fn admin_update_app(
        &self,
        app_id: &str,
        changes: &[(String, Value)],
        caller: &AdminCaller,
        now: i64,
    ) -> AdminResult<Value> {
        if changes.is_empty() {
            return Err(AdminError::Invalid("no settings given".into()));
        }
        self.update_app(app_id, changes, now).await?;
        let names: Vec<&str> = changes.iter().map(|(k, _)| k.as_str()).collect();
        self.admin_audit(
            Some(app_id),
            None,
            "admin.app.update",
            caller,
            Some(&names.join(",")),
            now,
        )
        .await;
        self.admin_app_view(app_id).await
    }

    /// Audit events, newest first.
    pub async fn audit_events(&self, filter: AuditFilter) -> AdminResult<Vec<Value>> {
        let rows = self.store.audit_list(&filter).await?;
        Ok(rows
            .iter()
            .map(|a| {
                json!({
                    "id": a.id,
                    "appId": a.app_id,
                    "userId": a.user_id,
                    "action": a.action,
                    "outcome": a.outcome,
                    "ip": a.ip,
                    "detail": a.detail,
                    "at": iso_millis(a.created_at),
                })
            })
            .collect())
    }

    /// Records an operator's action.
    pub async fn admin_audit(
        &self,
        app_id: Option<&str>,
        user_id: Option<&str>,
        action: &str,
        caller: &AdminCaller,
        detail: Option<&str>,
        now: i64,
    ) {
        let who = caller.label();
        let detail = match detail {
            Some(d) => format!("{who} {d}"),
            None => who,
        };
        self.audit(
            Audit {
                app_id,
                user_id,
                action,
                outcome: "success",
                ip: None,
                detail: Some(&detail),
            },
            now,
        )
        .await;
    }
}

fn counts_json(c: crate::store::AppCounts) -> Value {
    json!({
        "users": c.users,
        "anonymousUsers": c.anonymous_users,
        "pendingSignups": c.pending_signups,
        "invites": c.invites,
    })
}
