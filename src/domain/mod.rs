//! Use cases. Each public function on [`Core`] is one protocol operation; it takes typed
//! input and the current time (`now`, Unix milliseconds) and returns a domain result.

pub mod admin;
pub mod admin_users;
pub mod anonymous;
pub mod apps;
pub mod auth;
mod error;
pub mod handle;
pub mod invites;
pub mod login;
mod messages;
pub mod metadata;
pub mod password;
pub mod phone;
pub mod profile;
pub mod settings;
pub mod signup;
pub mod tokens;
pub mod two_factor;
pub mod users;

pub use error::{Error, Found, Result};
pub use handle::{Handle, UserName};

use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::crypto::jwt::{ServerClaims, ServerTokens, TokenKind};
use crate::crypto::keys::{EdSigner, RsaSigner};
use crate::crypto::password::Hasher;
use crate::crypto::{Keyring, random};
use crate::notify::{Mailer, SmsGateway};
use crate::store::Store;

/// Lifetimes and budgets from the configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    pub access_token_ttl_secs: i64,
    pub signup_code_ttl_secs: i64,
    pub reset_code_ttl_secs: i64,
    pub invite_code_ttl_secs: i64,
    pub code_max_attempts: i64,
    pub attempt_window_secs: i64,
    pub login_token_ttl_secs: i64,
    pub sms_code_ttl_secs: i64,
    pub sms_send_limit: i64,
    pub mail_send_limit: i64,
    pub login_max_attempts: i64,
    pub login_lockout_secs: i64,
}

/// The service: storage, keys, hashing and delivery, shared by the HTTP server and the CLI.
pub struct Core {
    pub store: Arc<dyn Store>,
    pub keyring: Keyring,
    pub hasher: Hasher,
    pub tokens: ServerTokens,
    pub mailer: Mailer,
    pub sms: SmsGateway,
    pub policy: Policy,
    /// Base URL for links and JWKS addresses (set once the listen address is known).
    pub public_url: RwLock<String>,
    /// Parsed app signing keys by `kid`; a `kid` names one key forever, so entries never go stale.
    signers: RwLock<HashMap<String, Arc<RsaSigner>>>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Public keys of the CosyncJWT server Tessera replaced: its app-tokens stay valid
    /// (`migrate::legacy`).
    pub legacy_app_keys: RwLock<Vec<crate::crypto::keys::RsaPublic>>,
    /// Serialised JWKS per app and when each was made (see `jwks_json`).
    jwks_cache: RwLock<HashMap<String, (i64, Arc<str>)>>,
    /// Apps as last loaded, and when (see `Core::app`).
    apps: RwLock<HashMap<String, (std::time::Instant, apps::App)>>,
    /// Bumped by every `forget_app`: a load that started before is not kept.
    apps_forgotten: std::sync::atomic::AtomicU64,
    /// App-tokens this node has verified, with their app id (see `auth::verify_app_token`).
    verified_app_tokens: RwLock<HashMap<Box<str>, Arc<str>>>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").finish_non_exhaustive()
    }
}

/// What [`Core::new`] assembles.
pub struct CoreParts {
    pub store: Arc<dyn Store>,
    pub keyring: Keyring,
    pub hasher: Hasher,
    pub mailer: Mailer,
    pub sms: SmsGateway,
    pub policy: Policy,
    pub public_url: String,
}

tokio::task_local! {
    /// The client address of the request being served (set by the HTTP layer), so audit
    /// events recorded anywhere in a use case carry it without threading it through calls.
    pub static CLIENT_IP: Option<std::net::IpAddr>;
}

/// Purpose under which the server token key is stored.
const SERVER_TOKEN_KEY: &str = "server-token-ed25519";

impl Core {
    /// Loads (or, on first start, creates) the server token key and assembles the service.
    pub async fn new(parts: CoreParts, now: i64) -> Result<Self> {
        let CoreParts {
            store,
            keyring,
            hasher,
            mailer,
            sms,
            policy,
            public_url,
        } = parts;
        let candidate = EdSigner::generate()?;
        let kid = random::row_id();
        let context = format!("server_keys.sealed:{SERVER_TOKEN_KEY}");
        let sealed = keyring.seal(&context, &candidate)?;
        let (kid, stored) = store
            .server_key_get_or_insert(SERVER_TOKEN_KEY, &kid, &sealed, now)
            .await?;
        let pkcs8 = keyring.open(&context, &stored)?;
        let tokens = ServerTokens::new(EdSigner::from_pkcs8(&kid, &pkcs8)?);
        Ok(Self {
            store,
            keyring,
            hasher,
            tokens,
            mailer,
            sms,
            policy,
            public_url: RwLock::new(public_url),
            signers: RwLock::new(HashMap::new()),
            metrics: Arc::new(crate::metrics::Metrics::new()),
            legacy_app_keys: RwLock::new(Vec::new()),
            jwks_cache: RwLock::new(HashMap::new()),
            verified_app_tokens: RwLock::new(HashMap::new()),
            apps: RwLock::new(HashMap::new()),
            apps_forgotten: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub fn set_public_url(&self, url: String) {
        if let Ok(mut guard) = self.public_url.write() {
            *guard = url;
        }
    }

    pub fn public_url(&self) -> String {
        self.public_url
            .read()
            .map(|g| g.clone())
            .unwrap_or_default()
    }

    /// Issues an access-token for a user.
    pub fn access_token(
        &self,
        app_id: &str,
        user_id: &str,
        epoch: i64,
        now: i64,
    ) -> Result<String> {
        let now_secs = now / 1000;
        Ok(self.tokens.issue(&ServerClaims {
            typ: TokenKind::Access,
            scope: "user".into(),
            app_id: app_id.to_owned(),
            sub: Some(user_id.to_owned()),
            ep: Some(epoch),
            jti: None,
            iat: now_secs,
            exp: Some(now_secs + self.policy.access_token_ttl_secs),
        })?)
    }

    /// Issues the app-token clients embed to identify the app.
    pub fn app_token(&self, app_id: &str, now: i64) -> Result<String> {
        Ok(self.tokens.issue(&ServerClaims {
            typ: TokenKind::App,
            scope: "app".into(),
            app_id: app_id.to_owned(),
            sub: None,
            ep: None,
            jti: None,
            iat: now / 1000,
            exp: None,
        })?)
    }

    fn cached_signer(&self, kid: &str) -> Option<Arc<RsaSigner>> {
        self.signers.read().ok().and_then(|m| m.get(kid).cloned())
    }

    /// The parsed signing key `kid` of `app_id`, decrypted once and cached.
    pub async fn signer(&self, app_id: &str, kid: &str) -> Result<Arc<RsaSigner>> {
        if let Some(s) = self.cached_signer(kid) {
            return Ok(s);
        }
        let keys = self.store.app_keys(app_id).await?;
        let row = keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| Error::Internal(format!("app key {kid} missing")))?;
        let pkcs8 = self.keyring.open(
            &format!("app_keys.sealed_private:{kid}"),
            &row.sealed_private,
        )?;
        let signer = Arc::new(RsaSigner::from_pkcs8(kid, &pkcs8)?);
        if let Ok(mut m) = self.signers.write() {
            m.insert(kid.to_owned(), signer.clone());
        }
        Ok(signer)
    }

    /// Counts one attempt against a budget; `Err` once the budget is spent.
    /// The attempt is counted before the secret is checked, so parallel guesses cannot
    /// exceed the budget.
    pub async fn spend_attempt(&self, key: &str, now: i64, on_exhausted: Error) -> Result<()> {
        self.spend_budget(key, self.policy.code_max_attempts, now, on_exhausted)
            .await
    }

    /// Counts one use of `key` against `limit` uses per attempt window.
    pub async fn spend_budget(
        &self,
        key: &str,
        limit: i64,
        now: i64,
        on_exhausted: Error,
    ) -> Result<()> {
        let window_ms = self.policy.attempt_window_secs * 1000;
        let count = self.store.attempt_hit(key, now, window_ms).await?;
        if count > limit {
            tracing::warn!(
                budget = key.split(':').next().unwrap_or(""),
                "attempt budget exhausted"
            );
            return Err(on_exhausted);
        }
        Ok(())
    }
}

/// A password as sent on the wire (lower-case hex MD5 of the user's password, spec §8).
#[derive(Debug)]
pub struct WirePassword(pub SecretString);

impl WirePassword {
    /// Signup, register, reset and change require exactly 32 characters (spec §1.6).
    pub fn parse_strict(raw: SecretString) -> Result<Self> {
        use secrecy::ExposeSecret;
        if raw.expose_secret().chars().count() != 32 {
            return Err(Error::InvalidData);
        }
        Ok(Self(raw))
    }
}

/// A 6-digit code as typed: a JSON number or string, trimmed (spec §1.6).
pub fn parse_code(raw: &str) -> Result<String> {
    let t = raw.trim();
    if t.len() == 6 && t.bytes().all(|b| b.is_ascii_digit()) {
        Ok(t.to_owned())
    } else {
        Err(Error::InvalidData)
    }
}

/// One audit event to record.
pub struct Audit<'a> {
    pub app_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub action: &'a str,
    pub outcome: &'a str,
    pub ip: Option<&'a str>,
    pub detail: Option<&'a str>,
}

impl Core {
    /// Records what happened to an account (`outcome`: `success`, `failure` or `denied`).
    pub async fn audit_account(
        &self,
        app_id: &str,
        user_id: Option<&str>,
        action: &str,
        outcome: &str,
        now: i64,
    ) {
        self.audit(
            Audit {
                app_id: Some(app_id),
                user_id,
                action,
                outcome,
                ip: None,
                detail: None,
            },
            now,
        )
        .await;
    }

    /// Records an audit event. Best effort: a failure is logged and never fails the caller's
    /// operation. Callers pass ids and codes, never handles, passwords, codes or tokens.
    pub async fn audit(&self, event: Audit<'_>, now: i64) {
        let row = crate::store::AuditRow {
            id: random::row_id(),
            app_id: event.app_id.map(str::to_owned),
            user_id: event.user_id.map(str::to_owned),
            action: event.action.to_owned(),
            outcome: event.outcome.to_owned(),
            ip: event.ip.map(str::to_owned).or_else(|| {
                CLIENT_IP
                    .try_with(|ip| ip.map(|a| a.to_string()))
                    .ok()
                    .flatten()
            }),
            detail: event.detail.map(str::to_owned),
            created_at: now,
        };
        if let Err(e) = self.store.audit_insert(&row).await {
            tracing::warn!(action = event.action, error = %e, "audit event not recorded");
        }
    }
}
