//! Apps: creation with a fresh RSA key pair, settings, status checks, the `getApplication`
//! view, and the published keys (JWKS).

use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::settings::{AppSecrets, AppSettings, SECRET_SETTINGS, SettingError};
use super::{Core, Error, Found, Result};
use crate::crypto::keys::{RsaBits, RsaPublic, generate_rsa};
use crate::crypto::random;
use crate::store::{AppKeyRow, AppRow, StoreError};

/// How long a node serves an app's JWKS from memory.
pub const JWKS_TTL_MS: i64 = 5_000;

/// How long a node serves an app (settings, status, active key) from memory. A change made
/// through another node or by the CLI on the database applies within this time.
pub const APP_CACHE_TTL: Duration = Duration::from_secs(1);

/// Past this many cached apps, expired copies are dropped before another is added.
const APP_CACHE_ENTRIES: usize = 1024;

/// How often `update_app` reads and applies again when another write came first.
const UPDATE_ATTEMPTS: usize = 5;

/// Status strings of spec §6.
pub const STATUS_ACTIVE: &str = "active";
pub const STATUS_INACTIVE: &str = "inactive";
pub const STATUS_MIGRATED: &str = "migrated";

/// An app with its parsed settings.
#[derive(Debug, Clone)]
pub struct App {
    pub row: AppRow,
    pub settings: AppSettings,
}

impl App {
    pub fn id(&self) -> &str {
        &self.row.id
    }

    /// Spec "status check": inactive → 402, migrated → 413.
    pub fn check_status(&self) -> Result<()> {
        match self.row.status.as_str() {
            STATUS_INACTIVE => Err(Error::AppSuspended),
            STATUS_MIGRATED => Err(Error::AppMigrated),
            _ => Ok(()),
        }
    }
}

/// What `tessera app create` prints.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApp {
    pub app_id: String,
    pub app_token: String,
    pub public_key: String,
    pub jwks_url: String,
}

/// Options for a new app.
#[derive(Debug, Clone)]
pub struct NewApp {
    pub name: String,
    pub settings: AppSettings,
    pub key_bits: RsaBits,
}

/// A failed settings change, for the operator.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("no app with id {0}")]
    NotFound(String),
    // The message is the whole story; no `source`, so a chain printer does not repeat it.
    #[error("invalid setting: {0}")]
    Invalid(SettingError),
    #[error(transparent)]
    Domain(#[from] Error),
}

impl From<SettingError> for UpdateError {
    fn from(e: SettingError) -> Self {
        Self::Invalid(e)
    }
}

impl Core {
    /// Loads an app; unknown → 401 (spec §3 "Every route that loads the app answers 401").
    /// Served from this node's copy when it is younger than [`APP_CACHE_TTL`]: nearly every
    /// request loads its app, and a change made through this node replaces the copy at once.
    pub async fn app(&self, app_id: &str) -> Result<App> {
        if let Some(app) = self.apps.read().ok().and_then(|m| {
            m.get(app_id)
                .filter(|(at, _)| at.elapsed() < APP_CACHE_TTL)
                .map(|(_, app)| app.clone())
        }) {
            return Ok(app);
        }
        let loaded_at = Instant::now();
        let generation = self.apps_forgotten.load(Ordering::Acquire);
        let app = self.app_uncached(app_id).await?;
        if let Ok(mut m) = self.apps.write() {
            // A change made through this node while the row was read: the copy may predate it.
            if self.apps_forgotten.load(Ordering::Acquire) == generation {
                if m.len() >= APP_CACHE_ENTRIES {
                    m.retain(|_, (at, _)| at.elapsed() < APP_CACHE_TTL);
                    if m.len() >= APP_CACHE_ENTRIES {
                        m.clear();
                    }
                }
                m.insert(app_id.to_owned(), (loaded_at, app.clone()));
            }
        }
        Ok(app)
    }

    /// Drops this node's copy of an app after a change (see [`Core::app`]).
    pub fn forget_app(&self, app_id: &str) {
        if let Ok(mut m) = self.apps.write() {
            self.apps_forgotten.fetch_add(1, Ordering::AcqRel);
            m.remove(app_id);
        }
    }

    /// Loads an app from the database, for whoever must see its latest state (operators).
    pub async fn app_uncached(&self, app_id: &str) -> Result<App> {
        let row = self
            .store
            .app_get(app_id)
            .await
            .found()?
            .ok_or(Error::AppNotFound)?;
        let settings = AppSettings::from_json(&row.settings)
            .map_err(|e| Error::Internal(format!("stored settings of app {}: {e}", row.id)))?;
        Ok(App { row, settings })
    }

    /// Loads an app and applies the status check.
    pub async fn active_app(&self, app_id: &str) -> Result<App> {
        let app = self.app(app_id).await?;
        app.check_status()?;
        Ok(app)
    }

    /// Creates an app with a new signing key; returns what a client app is configured with.
    pub async fn create_app(&self, new: NewApp, now: i64) -> Result<CreatedApp> {
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(Error::InvalidData);
        }
        new.settings.validate().map_err(|_| Error::InvalidData)?;
        let app_id = random::app_id()?;
        let key = tokio::task::spawn_blocking(move || generate_rsa(new.key_bits))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let kid = key.public.thumbprint();
        let sealed = self
            .keyring
            .seal(&format!("app_keys.sealed_private:{kid}"), &key.pkcs8)?;
        let row = AppRow {
            id: app_id.clone(),
            name: name.to_owned(),
            status: STATUS_ACTIVE.into(),
            settings: new.settings.to_json(),
            secrets: None,
            active_kid: kid.clone(),
            created_at: now,
            updated_at: now,
        };
        let key_row = AppKeyRow {
            kid,
            app_id: app_id.clone(),
            sealed_private: sealed,
            public_der: key.public.spki_der.clone(),
            status: "active".into(),
            created_at: now,
        };
        self.store.app_create(&row, &key_row).await?;
        Ok(CreatedApp {
            app_token: self.app_token(&app_id, now)?,
            public_key: key.public.pem(),
            jwks_url: self.jwks_url(&app_id),
            app_id,
        })
    }

    /// Refuses a new account once the app has `maxUsers` (0 = no cap) users: 407, as for an
    /// app that takes no signups. A soft cap: calls racing for the last place may pass it.
    pub async fn check_user_cap(&self, app: &App) -> Result<()> {
        let cap = app.settings.max_users;
        if cap > 0 && self.store.user_count(app.id()).await? >= cap {
            return Err(Error::SignupDisabled);
        }
        Ok(())
    }

    /// The `iss` of the app's user JWTs, as its discovery document names it.
    pub fn issuer(&self, app_id: &str) -> String {
        format!("{}/apps/{app_id}", self.public_url())
    }

    pub fn jwks_url(&self, app_id: &str) -> String {
        format!("{}/apps/{app_id}/.well-known/jwks.json", self.public_url())
    }

    pub async fn list_apps(&self) -> Result<Vec<App>> {
        let rows = self.store.app_list().await?;
        rows.into_iter()
            .map(|row| {
                let settings = AppSettings::from_json(&row.settings)
                    .map_err(|e| Error::Internal(e.to_string()))?;
                Ok(App { row, settings })
            })
            .collect()
    }

    /// Applies changes atomically (all or none), each value with its setting's own JSON type
    /// (text for `name`, `status` and the secrets). `name` and `status` are columns;
    /// everything else is a setting of spec §6. The app is read from the database, never
    /// from this node's copy, and written only if nobody changed it meanwhile (else read
    /// and applied again), so a change made elsewhere is never written over.
    pub async fn update_app(
        &self,
        app_id: &str,
        changes: &[(String, Value)],
        now: i64,
    ) -> Result<App, UpdateError> {
        for _ in 0..UPDATE_ATTEMPTS {
            let app = match self.app_uncached(app_id).await {
                Ok(a) => a,
                Err(Error::AppNotFound) => return Err(UpdateError::NotFound(app_id.to_owned())),
                Err(e) => return Err(e.into()),
            };
            let seen = app.row.updated_at;
            let (app, secrets_changed) = self.apply_changes(app, changes, now)?;
            let mut row = app.row.clone();
            if !secrets_changed {
                row.secrets = None;
            }
            let stored = self.store.app_update(&row, seen).await;
            self.forget_app(app_id);
            match stored {
                Ok(()) => return Ok(app),
                Err(StoreError::Conflict(_)) => continue,
                Err(StoreError::NotFound) => return Err(UpdateError::NotFound(app_id.to_owned())),
                Err(e) => return Err(Error::from(e).into()),
            }
        }
        Err(Error::Unavailable(format!("app {app_id} kept changing while being updated")).into())
    }

    /// `update_app`'s changes applied to a copy; true when the secrets changed.
    fn apply_changes(
        &self,
        mut app: App,
        changes: &[(String, Value)],
        now: i64,
    ) -> Result<(App, bool), UpdateError> {
        let mut secrets = None;
        for (name, value) in changes {
            let text = || {
                value
                    .as_str()
                    .ok_or_else(|| SettingError(format!("{name}: expected text")))
            };
            match name.as_str() {
                n if SECRET_SETTINGS.contains(&n) => {
                    if secrets.is_none() {
                        secrets = Some(self.app_secrets(&app)?);
                    }
                    if let Some(s) = secrets.as_mut() {
                        s.set(n, text()?)?;
                    }
                }
                "name" => {
                    let v = text()?.trim();
                    if v.is_empty() || v.chars().count() > 200 || v.chars().any(char::is_control) {
                        return Err(
                            SettingError("name must be 1-200 printable characters".into()).into(),
                        );
                    }
                    app.row.name = v.to_owned();
                }
                "status" => {
                    let value = text()?;
                    if ![STATUS_ACTIVE, STATUS_INACTIVE, STATUS_MIGRATED].contains(&value) {
                        return Err(SettingError(
                            "status must be active, inactive or migrated".into(),
                        )
                        .into());
                    }
                    app.row.status = value.to_owned();
                }
                _ => app.settings = app.settings.set_value(name, value.clone())?,
            }
        }
        let secrets_changed = secrets.is_some();
        if let Some(s) = secrets {
            app.row.secrets = Some(self.seal_app_secrets(app.id(), &s)?);
        }
        app.row.settings = app.settings.to_json();
        // Strictly later than what was read, so the next writer's check sees the change.
        app.row.updated_at = now.max(app.row.updated_at + 1);
        Ok((app, secrets_changed))
    }

    /// The app's secret settings, opened.
    pub fn app_secrets(&self, app: &App) -> Result<AppSecrets> {
        let Some(sealed) = &app.row.secrets else {
            return Ok(AppSecrets::default());
        };
        let text = self
            .keyring
            .open_str(&format!("apps.secrets:{}", app.id()), sealed)?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Internal(format!("stored secrets of app {}: {e}", app.id())))
    }

    fn seal_app_secrets(&self, app_id: &str, secrets: &AppSecrets) -> Result<Vec<u8>> {
        let text = serde_json::to_string(secrets).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(self
            .keyring
            .seal_str(&format!("apps.secrets:{app_id}"), &text)?)
    }

    /// `getApplication` (spec §3.20): every public setting, never a secret or key.
    pub async fn application_view(&self, app_id: &str) -> Result<Value> {
        let app = self.app(app_id).await?;
        let mut doc =
            serde_json::to_value(&app.settings).map_err(|e| Error::Internal(e.to_string()))?;
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("name".into(), Value::String(app.row.name.clone()));
            obj.insert("status".into(), Value::String(app.row.status.clone()));
            obj.insert(
                "createdAt".into(),
                Value::String(iso_millis(app.row.created_at)),
            );
            obj.insert(
                "updatedAt".into(),
                Value::String(iso_millis(app.row.updated_at)),
            );
        }
        Ok(doc)
    }

    /// The app's published keys as an RFC 7517 JWK Set (at most three: Atlas's limit).
    pub async fn jwks(&self, app_id: &str) -> Result<Value> {
        let _ = self.app(app_id).await?;
        let mut keys = self.store.app_keys(app_id).await?;
        keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        let jwks: Vec<Value> = keys
            .iter()
            .filter(|k| k.status == "active" || k.status == "retiring")
            .take(3)
            .map(|k| RsaPublicFromDer::jwk(&k.public_der, &k.kid))
            .collect::<Result<_>>()?;
        Ok(json!({ "keys": jwks }))
    }

    /// The app's JWKS, serialised: made at most every few seconds per node, since consumers
    /// fetch it far more often than keys change. A key rotated on another node shows here
    /// within `JWKS_TTL_MS` (on this node, at once).
    pub async fn jwks_json(&self, app_id: &str, now: i64) -> Result<Arc<str>> {
        if let Some((made, json)) = self
            .jwks_cache
            .read()
            .ok()
            .and_then(|c| c.get(app_id).cloned())
            && now - made < JWKS_TTL_MS
        {
            return Ok(json);
        }
        let json: Arc<str> = self.jwks(app_id).await?.to_string().into();
        if let Ok(mut c) = self.jwks_cache.write() {
            // Apps come and go; drop stale entries instead of growing.
            c.retain(|_, (made, _)| now - *made < JWKS_TTL_MS);
            c.insert(app_id.to_owned(), (now, json.clone()));
        }
        Ok(json)
    }

    /// Forgets the app's cached JWKS (after a key change on this node).
    pub fn forget_jwks(&self, app_id: &str) {
        if let Ok(mut c) = self.jwks_cache.write() {
            c.remove(app_id);
        }
    }

    /// OpenID Provider metadata for the app (the parts that describe its tokens).
    pub async fn openid_configuration(&self, app_id: &str) -> Result<Value> {
        let _ = self.app(app_id).await?;
        Ok(json!({
            "issuer": self.issuer(app_id),
            "jwks_uri": self.jwks_url(app_id),
            "id_token_signing_alg_values_supported": ["RS256"],
            "subject_types_supported": ["public"],
            "response_types_supported": ["id_token"],
            "claims_supported": ["iss", "aud", "sub", "exp", "iat", "email", "userName"],
        }))
    }
}

/// Builds JWKs from stored SPKI DER.
struct RsaPublicFromDer;

impl RsaPublicFromDer {
    fn jwk(spki_der: &[u8], kid: &str) -> Result<Value> {
        let public = RsaPublic::from_spki_der(spki_der)?;
        Ok(public.jwk(kid))
    }
}

/// ISO-8601 UTC with milliseconds, as the SDKs parse it (spec §3.15).
pub fn iso_millis(ms: i64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// Reads a settings map for display.
pub fn settings_map(settings: &AppSettings) -> Map<String, Value> {
    serde_json::to_value(settings)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso_dates_have_milliseconds() {
        assert_eq!(
            super::iso_millis(1_719_915_072_000),
            "2024-07-02T10:11:12.000Z"
        );
        assert_eq!(
            super::iso_millis(1_719_915_072_345),
            "2024-07-02T10:11:12.345Z"
        );
    }
}
