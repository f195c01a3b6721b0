//! Bringing data in and out: the CosyncJWT export (`cosync`), Tessera's own passphrase-sealed
//! archive (`archive`), the old server's public key (`legacy`) and master key rotation
//! (`rotate`). Both importers build one [`Plan`] of validated values; [`apply`] writes it
//! sealed and indexed exactly as the protocol routes do, skipping what is already there, so a
//! second run creates nothing new.

pub mod archive;
pub mod cosync;
pub mod legacy;
mod pem;
pub mod report;
pub mod rotate;

use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::crypto::keys::RsaSigner;
use crate::domain::apps::STATUS_ACTIVE;
use crate::domain::settings::{AppSecrets, AppSettings};
use crate::domain::two_factor::IDX_PHONE;
use crate::domain::users::{IDX_USER_NAME, NewUser};
use crate::domain::{Core, Found, Handle, UserName};
use crate::store::{AppKeyRow, AppRow, InviteRow, SignupRow, TemplateRow, UserRow};
pub use report::{Report, Where};

/// Why an import could not run at all (a single bad row never stops it; see [`Report`]).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Domain(#[from] crate::domain::Error),
}

impl From<crate::store::StoreError> for ImportError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Domain(e.into())
    }
}

impl From<crate::crypto::CryptoError> for ImportError {
    fn from(e: crate::crypto::CryptoError) -> Self {
        Self::Domain(e.into())
    }
}

/// An app key pair to keep: PKCS#8 private key (wiped when dropped).
pub struct PlannedKey {
    pub pkcs8: Zeroizing<Vec<u8>>,
    pub status: String,
    pub created_at: i64,
}

pub struct PlannedApp {
    pub id: String,
    pub name: String,
    pub status: String,
    pub settings: AppSettings,
    pub secrets: AppSecrets,
    /// The first key signs; the others are published for verification only.
    pub keys: Vec<PlannedKey>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub struct PlannedUser {
    pub from: Where,
    pub handle: Handle,
    /// The source held the handle exactly as normalised (it could log in there).
    pub exact: bool,
    pub password_hash: Option<String>,
    pub status: String,
    pub locale: String,
    pub metadata: Map<String, Value>,
    pub user_name: Option<UserName>,
    pub login_provider: String,
    pub two_factor_phone: bool,
    pub two_factor_google: bool,
    pub totp: Option<Zeroizing<Vec<u8>>>,
    pub totp_last_step: i64,
    /// E.164.
    pub phone: Option<String>,
    pub phone_verified: bool,
    pub last_login: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub struct PlannedSignup {
    pub from: Where,
    pub handle: Handle,
    pub password_hash: String,
    pub code: String,
    pub locale: String,
    pub metadata: Map<String, Value>,
    pub updated_at: i64,
}

pub struct PlannedInvite {
    pub from: Where,
    pub handle: Handle,
    pub sender_handle: Handle,
    pub sender_user_id: String,
    pub code: String,
    pub metadata: Map<String, Value>,
}

/// Everything one import would write, validated.
pub struct Plan {
    pub app: PlannedApp,
    pub users: Vec<PlannedUser>,
    pub signups: Vec<PlannedSignup>,
    pub invites: Vec<PlannedInvite>,
    pub templates: Vec<(Where, TemplateRow)>,
}

/// Users written per transaction.
const BATCH: usize = 500;

/// Writes `plan` (or, with `dry_run`, only checks what would be written).
pub async fn apply(
    core: &Core,
    plan: Plan,
    report: &mut Report,
    dry_run: bool,
    now: i64,
) -> Result<(), ImportError> {
    if let Some(r) = core.store.rotation_get().await?
        && r.phase != "done"
    {
        return Err(ImportError::Input(
            "a master key rotation is under way; finish it (tessera keys rotate-master) first"
                .into(),
        ));
    }
    let Plan {
        app,
        users,
        signups,
        invites,
        templates,
    } = plan;
    let app_id = app.id.clone();
    apply_app(core, app, report, dry_run, now).await?;
    report.app_id = Some(app_id.clone());
    if !dry_run {
        report.app_token = Some(core.app_token(&app_id, now)?);
    }
    for (from, t) in templates {
        report.read("templates");
        if core
            .store
            .template_get(&t.app_id, &t.name, &t.locale)
            .await
            .found()?
            .is_some()
        {
            report.existing("templates");
        } else if dry_run {
            report.created("templates");
        } else if let Err(e) = core.put_template(&t).await {
            report.reject(from, format!("template not stored: {e}"));
        } else {
            report.created("templates");
        }
    }
    for chunk in users.chunks(BATCH) {
        apply_users(core, &app_id, chunk, report, dry_run).await?;
    }
    for s in signups {
        apply_signup(core, &app_id, s, report, dry_run, now).await?;
    }
    for i in invites {
        apply_invite(core, &app_id, i, report, dry_run, now).await?;
    }
    Ok(())
}

async fn apply_app(
    core: &Core,
    app: PlannedApp,
    report: &mut Report,
    dry_run: bool,
    now: i64,
) -> Result<(), ImportError> {
    report.read("apps");
    let mut key_rows = Vec::new();
    for k in &app.keys {
        let signer = RsaSigner::from_pkcs8("", &k.pkcs8)?;
        let kid = signer.public.thumbprint();
        key_rows.push(AppKeyRow {
            sealed_private: core
                .keyring
                .seal(&format!("app_keys.sealed_private:{kid}"), &k.pkcs8)?,
            public_der: signer.public.spki_der.clone(),
            kid,
            app_id: app.id.clone(),
            status: k.status.clone(),
            created_at: k.created_at,
        });
    }
    let Some(active) = key_rows.first().map(|k| k.kid.clone()) else {
        return Err(ImportError::Input("the app has no key pair".into()));
    };
    let existing = core.store.app_get(&app.id).await.found()?;
    if let Some(row) = &existing {
        report.existing("apps");
        if row.active_kid != active {
            report.warn(
                Where::none("app"),
                format!(
                    "app {} exists with another signing key; its settings and keys were left as they are",
                    app.id
                ),
            );
            // Publishing another export's key would let whoever holds it mint JWTs that
            // verify against this app's JWKS.
            return Ok(());
        }
    } else if !dry_run {
        let secrets = if app.secrets == AppSecrets::default() {
            None
        } else {
            let text = serde_json::to_string(&app.secrets)
                .map_err(|e| ImportError::Input(e.to_string()))?;
            Some(
                core.keyring
                    .seal_str(&format!("apps.secrets:{}", app.id), &text)?,
            )
        };
        let row = AppRow {
            id: app.id.clone(),
            name: app.name.clone(),
            status: if app.status.is_empty() {
                STATUS_ACTIVE.into()
            } else {
                app.status.clone()
            },
            settings: app.settings.to_json(),
            secrets,
            active_kid: active,
            created_at: app.created_at,
            updated_at: now.max(app.updated_at),
        };
        let put = core.store.app_put(&row).await;
        core.forget_app(&row.id);
        put?;
        report.created("apps");
    } else {
        report.created("apps");
    }
    for k in &key_rows {
        report.read("keys");
        if dry_run {
            let known = core
                .store
                .app_keys(&app.id)
                .await
                .found()?
                .unwrap_or_default();
            if known.iter().any(|x| x.kid == k.kid) {
                report.existing("keys");
            } else {
                report.created("keys");
            }
        } else if existing.is_some() && k.status == "active" {
            // An existing app keeps the key that signs; an imported one may only be added to
            // what it publishes, never take over signing silently.
            let mut k = k.clone();
            k.status = "retiring".into();
            count(report, "keys", core.store.app_key_put(&k).await?);
        } else {
            count(report, "keys", core.store.app_key_put(k).await?);
        }
    }
    Ok(())
}

fn count(report: &mut Report, what: &'static str, created: bool) {
    if created {
        report.created(what);
    } else {
        report.existing(what);
    }
}

/// Builds the stored row of an imported user: sealed, indexed, with its own id.
pub fn user_row(core: &Core, app_id: &str, u: &PlannedUser) -> Result<UserRow, ImportError> {
    let mut row = core.new_user_row(
        &NewUser {
            app_id,
            handle: &u.handle,
            password_hash: u.password_hash.clone(),
            locale: &u.locale,
            metadata: &u.metadata,
            login_provider: &u.login_provider,
        },
        u.created_at,
    )?;
    let id = row.id.clone();
    if let Some(name) = &u.user_name {
        row.user_name_idx = Some(core.user_name_index(app_id, name));
        row.user_name_enc = Some(
            core.keyring
                .seal_str(&format!("users.{IDX_USER_NAME}:{id}"), name.as_str())?,
        );
    }
    if let Some(secret) = &u.totp {
        row.totp_enc = Some(core.keyring.seal(&format!("users.totp:{id}"), secret)?);
        row.totp_last_step = u.totp_last_step;
    }
    if let Some(phone) = &u.phone {
        row.phone_enc = Some(core.keyring.seal_str(&format!("users.phone:{id}"), phone)?);
        if u.phone_verified {
            row.phone_idx = Some(core.keyring.blind_index(IDX_PHONE, app_id, phone));
        }
    }
    row.status = u.status.clone();
    row.two_factor_google = u.two_factor_google && row.totp_enc.is_some();
    row.two_factor_phone = u.two_factor_phone && row.phone_idx.is_some();
    row.phone_verified = row.phone_idx.is_some();
    row.last_login = u.last_login;
    row.updated_at = u.updated_at;
    Ok(row)
}

async fn apply_users(
    core: &Core,
    app_id: &str,
    users: &[PlannedUser],
    report: &mut Report,
    dry_run: bool,
) -> Result<(), ImportError> {
    let mut rows = Vec::with_capacity(users.len());
    for u in users {
        report.read("users");
        rows.push(user_row(core, app_id, u)?);
    }
    let stored = if dry_run {
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(
                core.store
                    .user_by_handle(app_id, &r.handle_idx)
                    .await
                    .found()?
                    .is_none(),
            );
        }
        out
    } else {
        core.store.users_insert(&rows).await?
    };
    for ((u, row), created) in users.iter().zip(&rows).zip(stored) {
        if created {
            report.created("users");
        } else if core
            .store
            .user_by_handle(app_id, &row.handle_idx)
            .await
            .found()?
            .is_some()
        {
            report.existing("users");
        } else {
            report.reject(
                u.from.clone(),
                "user name or verified phone already belongs to another account".into(),
            );
        }
    }
    Ok(())
}

async fn apply_signup(
    core: &Core,
    app_id: &str,
    s: PlannedSignup,
    report: &mut Report,
    dry_run: bool,
    now: i64,
) -> Result<(), ImportError> {
    report.read("signups");
    let expires_at = s.updated_at + core.policy.signup_code_ttl_secs * 1000;
    if expires_at < now {
        report.reject(
            s.from,
            "pending signup expired (its code is no longer valid)".into(),
        );
        return Ok(());
    }
    if core.find_user(app_id, &s.handle).await?.is_some() {
        report.reject(
            s.from,
            "pending signup of a handle that is already a user".into(),
        );
        return Ok(());
    }
    let idx = core.handle_index(app_id, &s.handle);
    if core.store.signup_get(app_id, &idx).await.found()?.is_some() {
        report.existing("signups");
        return Ok(());
    }
    if dry_run {
        report.created("signups");
        return Ok(());
    }
    let id = crate::crypto::random::row_id();
    let metadata_enc = if s.metadata.is_empty() {
        None
    } else {
        let text =
            serde_json::to_string(&s.metadata).map_err(|e| ImportError::Input(e.to_string()))?;
        Some(
            core.keyring
                .seal_str(&format!("signups.metadata:{id}"), &text)?,
        )
    };
    let row = SignupRow {
        handle_idx: idx,
        handle_enc: core
            .keyring
            .seal_str(&format!("signups.handle:{id}"), s.handle.as_str())?,
        code_hash: core.keyring.code_hash("signup", &id, &s.code),
        id,
        app_id: app_id.to_owned(),
        password_hash: s.password_hash,
        metadata_enc,
        locale: s.locale,
        expires_at,
        created_at: s.updated_at,
        updated_at: s.updated_at,
        contested: false,
    };
    core.store.signup_upsert(&row, "").await?;
    report.created("signups");
    Ok(())
}

async fn apply_invite(
    core: &Core,
    app_id: &str,
    i: PlannedInvite,
    report: &mut Report,
    dry_run: bool,
    now: i64,
) -> Result<(), ImportError> {
    report.read("invites");
    if core.find_user(app_id, &i.handle).await?.is_some() {
        report.reject(i.from, "invite of a handle that is already a user".into());
        return Ok(());
    }
    let Some(sender) = core.find_user(app_id, &i.sender_handle).await? else {
        report.reject(
            i.from,
            "the inviting user (senderHandle) was not imported".into(),
        );
        return Ok(());
    };
    let idx = core.handle_index(app_id, &i.handle);
    if core
        .store
        .invites_for(app_id, &idx)
        .await?
        .iter()
        .any(|x| x.sender_id == sender.id)
    {
        report.existing("invites");
        return Ok(());
    }
    if dry_run {
        report.created("invites");
        return Ok(());
    }
    let payload = json!({
        "senderHandle": i.sender_handle.as_str(),
        "senderUserId": i.sender_user_id,
        "metaData": Value::Object(i.metadata),
    });
    let scope = format!("{app_id}:{}", hex::encode(&idx));
    let mut row = InviteRow {
        app_id: app_id.to_owned(),
        handle_idx: idx.clone(),
        sender_id: sender.id.clone(),
        code_hash: core.keyring.code_hash("invite", &scope, &i.code),
        payload: Vec::new(),
        expires_at: now + core.policy.invite_code_ttl_secs * 1000,
        created_at: now,
    };
    let context = format!(
        "invites.payload:{}:{}:{}",
        row.app_id,
        hex::encode(&row.handle_idx),
        row.sender_id
    );
    row.payload = core.keyring.seal_str(&context, &payload.to_string())?;
    core.store.invite_put(&row).await?;
    report.created("invites");
    Ok(())
}
