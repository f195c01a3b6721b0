//! Storage: small traits per aggregate combined into [`Store`], and the SQL implementation
//! that serves both SQLite and PostgreSQL. Rows hold sealed values and blind indexes only;
//! sealing and opening happen in the domain.

pub mod migration;
pub mod sql;

#[cfg(test)]
mod conformance;

use async_trait::async_trait;

/// Storage failures, mapped by the domain to protocol errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique index refused the write (one account per app and handle, and so on).
    #[error("conflict on {0}")]
    Conflict(String),
    /// The database cannot be reached right now.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database refused a value (a NUL byte in text, for PostgreSQL).
    #[error("value refused by the database")]
    Invalid,
    /// The row a write hangs on is gone (its app was deleted meanwhile).
    #[error("the parent row is gone")]
    Gone,
    #[error("database error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone)]
pub struct AppRow {
    pub id: String,
    pub name: String,
    pub status: String,
    /// JSON of the app's public settings.
    pub settings: String,
    /// Sealed JSON of the app's secret settings (provider credentials).
    pub secrets: Option<Vec<u8>>,
    /// The key that signs new user JWTs.
    pub active_kid: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone)]
pub struct AppKeyRow {
    pub kid: String,
    pub app_id: String,
    pub sealed_private: Vec<u8>,
    pub public_der: Vec<u8>,
    /// `active` (signs) or `retiring` (published for verification only).
    pub status: String,
    pub created_at: i64,
}

#[derive(Clone)]
pub struct UserRow {
    pub id: String,
    pub app_id: String,
    pub handle_idx: Vec<u8>,
    pub handle_enc: Vec<u8>,
    pub user_name_idx: Option<Vec<u8>>,
    pub user_name_enc: Option<Vec<u8>>,
    pub password_hash: Option<String>,
    pub status: String,
    pub locale: String,
    pub metadata_enc: Option<Vec<u8>>,
    pub epoch: i64,
    pub login_provider: String,
    pub two_factor_phone: bool,
    pub two_factor_google: bool,
    pub totp_enc: Option<Vec<u8>>,
    pub totp_last_step: i64,
    pub phone_enc: Option<Vec<u8>>,
    pub phone_idx: Option<Vec<u8>>,
    pub phone_verified: bool,
    pub last_login: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// An `ANON_` user (counted apart in the app's statistics).
    pub anonymous: bool,
}

/// A change to a user's two-factor columns; `None` leaves a column as it is.
#[derive(Debug, Default)]
pub struct TwoFactorChange<'a> {
    pub phone: Option<bool>,
    pub google: Option<bool>,
    /// A new sealed TOTP secret (`None` inside removes it) and the last step counted as used.
    pub totp: Option<(Option<&'a [u8]>, i64)>,
}

#[derive(Clone)]
pub struct SignupRow {
    pub id: String,
    pub app_id: String,
    pub handle_idx: Vec<u8>,
    pub handle_enc: Vec<u8>,
    pub password_hash: String,
    pub metadata_enc: Option<Vec<u8>>,
    pub locale: String,
    pub code_hash: Vec<u8>,
    pub expires_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Re-requested with another password while pending (see migration 0007).
    pub contested: bool,
}

#[derive(Clone)]
pub struct CodeRow {
    pub app_id: String,
    pub purpose: String,
    pub subject: Vec<u8>,
    pub code_hash: Vec<u8>,
    pub payload: Option<Vec<u8>>,
    pub expires_at: i64,
    pub created_at: i64,
}

#[async_trait]
pub trait ServerKeyStore: Send + Sync {
    /// Stores the key for `purpose` unless one exists; returns the one that is stored.
    async fn server_key_get_or_insert(
        &self,
        purpose: &str,
        kid: &str,
        sealed: &[u8],
        now: i64,
    ) -> StoreResult<(String, Vec<u8>)>;
}

#[async_trait]
pub trait AppStore: Send + Sync {
    async fn app_create(&self, app: &AppRow, key: &AppKeyRow) -> StoreResult<()>;
    async fn app_get(&self, id: &str) -> StoreResult<AppRow>;
    async fn app_list(&self) -> StoreResult<Vec<AppRow>>;
    /// Writes an app's name, status, settings, `updated_at` and, when `app.secrets` is
    /// `Some`, its secrets, provided its `updated_at` is still `seen_updated_at`: `Conflict`
    /// when another write came first, `NotFound` when the app is gone. The active key is
    /// `app_key_rotate`'s alone.
    async fn app_update(&self, app: &AppRow, seen_updated_at: i64) -> StoreResult<()>;
    async fn app_keys(&self, app_id: &str) -> StoreResult<Vec<AppKeyRow>>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    async fn user_create(&self, user: &UserRow) -> StoreResult<()>;
    async fn user_by_handle(&self, app_id: &str, handle_idx: &[u8]) -> StoreResult<UserRow>;
    async fn user_by_name(&self, app_id: &str, user_name_idx: &[u8]) -> StoreResult<UserRow>;
    async fn user_get(&self, app_id: &str, id: &str) -> StoreResult<UserRow>;
    /// How many users the app has.
    async fn user_count(&self, app_id: &str) -> StoreResult<i64>;
    // Updates write only their own columns, so concurrent calls never undo each other
    // (a profile edit racing a password change must not bring the old hash or epoch back).

    /// Sets a new password hash and bumps the credential epoch (revoking every earlier
    /// token); optionally switches 2FA off. Returns the new epoch.
    async fn user_set_password(
        &self,
        app_id: &str,
        id: &str,
        hash: &str,
        clear_two_factor: bool,
        now: i64,
    ) -> StoreResult<i64>;
    /// Replaces the hash only if it is still `old_hash` (a parameter upgrade at login must
    /// not undo a password change made meanwhile); false if it was not.
    async fn user_rehash(
        &self,
        app_id: &str,
        id: &str,
        old_hash: &str,
        new_hash: &str,
    ) -> StoreResult<bool>;
    async fn user_set_locale(
        &self,
        app_id: &str,
        id: &str,
        locale: &str,
        now: i64,
    ) -> StoreResult<()>;
    async fn user_set_metadata(
        &self,
        app_id: &str,
        id: &str,
        metadata_enc: Option<&[u8]>,
        now: i64,
    ) -> StoreResult<()>;
    /// Sets the user name if the user has none yet (false otherwise); `Conflict` if another
    /// user of the app has it.
    async fn user_set_user_name(
        &self,
        app_id: &str,
        id: &str,
        name_idx: &[u8],
        name_enc: &[u8],
        now: i64,
    ) -> StoreResult<bool>;
    async fn user_set_last_login(&self, app_id: &str, id: &str, now: i64) -> StoreResult<()>;
    /// The user whose verified phone has this blind index.
    async fn user_by_phone(&self, app_id: &str, phone_idx: &[u8]) -> StoreResult<UserRow>;
    /// Writes only the phone columns; `Conflict` if another user of the app has verified the
    /// same number.
    async fn user_set_phone(&self, user: &UserRow) -> StoreResult<()>;
    /// Writes the two-factor columns `change` names, and no others.
    async fn user_set_two_factor(
        &self,
        app_id: &str,
        id: &str,
        change: &TwoFactorChange<'_>,
        now: i64,
    ) -> StoreResult<()>;
    /// Records `step` as the last accepted TOTP step if it is later than the stored one;
    /// false if it is not (a replay). Atomic, so one code is accepted once across nodes.
    async fn user_totp_advance(&self, app_id: &str, id: &str, step: i64) -> StoreResult<bool>;
    /// Deletes the user and everything keyed by the account (pending signup, codes, invites
    /// to it and invites it sent).
    async fn user_delete(&self, user: &UserRow) -> StoreResult<()>;
}

#[async_trait]
pub trait SignupStore: Send + Sync {
    /// Inserts or replaces the pending signup for (app, handle). Replacing an unexpired one
    /// marks it contested unless its stored hash is still `same_password_as` (the hash the
    /// caller found the new password to match; empty if none).
    async fn signup_upsert(&self, row: &SignupRow, same_password_as: &str) -> StoreResult<()>;
    async fn signup_get(&self, app_id: &str, handle_idx: &[u8]) -> StoreResult<SignupRow>;
    async fn signup_delete(&self, app_id: &str, handle_idx: &[u8]) -> StoreResult<()>;
    /// Atomically removes the pending signup `signup_id` and creates `user`;
    /// `NotFound` if the signup is gone (completed concurrently), `Conflict` if the user exists.
    async fn signup_complete(&self, signup_id: &str, user: &UserRow) -> StoreResult<()>;
}

#[async_trait]
pub trait CodeStore: Send + Sync {
    /// Inserts or replaces the outstanding code for (app, purpose, subject).
    async fn code_put(&self, row: &CodeRow) -> StoreResult<()>;
    async fn code_get(&self, app_id: &str, purpose: &str, subject: &[u8]) -> StoreResult<CodeRow>;
    async fn code_delete(&self, app_id: &str, purpose: &str, subject: &[u8]) -> StoreResult<()>;
    /// Deletes the code if its hash still matches; true if this call removed it (single use).
    async fn code_take(
        &self,
        app_id: &str,
        purpose: &str,
        subject: &[u8],
        code_hash: &[u8],
    ) -> StoreResult<bool>;
}

/// A pending invitation of one handle by one inviter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteRow {
    pub app_id: String,
    pub handle_idx: Vec<u8>,
    /// The inviting user's id.
    pub sender_id: String,
    pub code_hash: Vec<u8>,
    /// Sealed sender handle, sender's Realm id and invite metadata.
    pub payload: Vec<u8>,
    pub expires_at: i64,
    pub created_at: i64,
}

#[async_trait]
pub trait InviteStore: Send + Sync {
    /// Inserts or replaces the invite of (app, handle, sender); other senders' stay.
    async fn invite_put(&self, invite: &InviteRow) -> StoreResult<()>;
    /// Every pending invite of the handle, oldest first.
    async fn invites_for(&self, app_id: &str, handle_idx: &[u8]) -> StoreResult<Vec<InviteRow>>;
    /// Atomically consumes `invite` (which must still have its code hash), creates `user`,
    /// and removes the handle's other invites: `NotFound` if the invite is gone, `Conflict`
    /// if the user exists.
    async fn invite_take_and_create_user(
        &self,
        invite: &InviteRow,
        user: &UserRow,
    ) -> StoreResult<()>;
    async fn invite_delete(
        &self,
        app_id: &str,
        handle_idx: &[u8],
        sender_id: &str,
    ) -> StoreResult<()>;
}

#[async_trait]
pub trait AttemptStore: Send + Sync {
    /// Counts one attempt against `key` and returns the count in the current window;
    /// a window older than `window_ms` starts over. Atomic under concurrent calls.
    async fn attempt_hit(&self, key: &str, now: i64, window_ms: i64) -> StoreResult<i64>;
    async fn attempt_clear(&self, key: &str) -> StoreResult<()>;
    /// Clears every budget of one account (keys ending in `:suffix`).
    async fn attempt_clear_suffix(&self, suffix: &str) -> StoreResult<()>;
}

#[derive(Debug, Clone)]
pub struct TemplateRow {
    pub app_id: String,
    pub name: String,
    pub locale: String,
    pub subject: String,
    pub html: String,
    pub link_text: String,
    pub updated_at: i64,
}

#[async_trait]
pub trait TemplateStore: Send + Sync {
    async fn template_get(
        &self,
        app_id: &str,
        name: &str,
        locale: &str,
    ) -> StoreResult<TemplateRow>;
    async fn template_put(&self, row: &TemplateRow) -> StoreResult<()>;
    async fn template_list(&self, app_id: &str) -> StoreResult<Vec<TemplateRow>>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub id: String,
    pub app_id: Option<String>,
    pub user_id: Option<String>,
    /// What happened, e.g. `login`, `password.change`, `admin.app.update`.
    pub action: String,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    pub ip: Option<String>,
    /// A short non-secret note (an error code, a setting name).
    pub detail: Option<String>,
    pub created_at: i64,
}

/// Filters for listing audit events; every field optional.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub app_id: Option<String>,
    pub user_id: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn audit_insert(&self, row: &AuditRow) -> StoreResult<()>;
    /// Newest first.
    async fn audit_list(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRow>>;
}

/// A server admin token: only a keyed hash of its secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTokenRow {
    pub id: String,
    pub name: String,
    pub secret_hash: Vec<u8>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

/// Counts shown by the admin API per app.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppCounts {
    pub users: i64,
    pub anonymous_users: i64,
    pub pending_signups: i64,
    pub invites: i64,
}

/// What operators need beyond the end-user flows: admin tokens, whole-app operations,
/// listings and counts.
#[async_trait]
pub trait AdminStore: Send + Sync {
    async fn admin_token_insert(&self, row: &AdminTokenRow) -> StoreResult<()>;
    async fn admin_token_get(&self, id: &str) -> StoreResult<AdminTokenRow>;
    /// Oldest first.
    async fn admin_token_list(&self) -> StoreResult<Vec<AdminTokenRow>>;
    /// Marks the token revoked; false if it was unknown or already revoked.
    async fn admin_token_revoke(&self, id: &str, now: i64) -> StoreResult<bool>;
    async fn admin_token_touch(&self, id: &str, now: i64) -> StoreResult<()>;
    /// Deletes the app and everything that belongs to it.
    async fn app_delete(&self, app_id: &str) -> StoreResult<()>;
    /// Atomically makes `key` the app's active key: the previous active key retires, and
    /// retiring keys beyond the newest `keep` published keys are retired for good.
    async fn app_key_rotate(&self, key: &AppKeyRow, keep: usize) -> StoreResult<()>;
    /// Users in creation order, a page at a time.
    async fn user_list(&self, app_id: &str, limit: i64, offset: i64) -> StoreResult<Vec<UserRow>>;
    /// Sets the status and bumps the credential epoch (every earlier token is revoked).
    async fn user_set_status(
        &self,
        app_id: &str,
        id: &str,
        status: &str,
        now: i64,
    ) -> StoreResult<()>;
    /// Pending signups in creation order, a page at a time.
    async fn signup_list(
        &self,
        app_id: &str,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<SignupRow>>;
    /// Pending invites in creation order, a page at a time.
    async fn invite_list(
        &self,
        app_id: &str,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<InviteRow>>;
    async fn app_counts(&self, app_id: &str) -> StoreResult<AppCounts>;
}

#[async_trait]
pub trait HealthStore: Send + Sync {
    async fn ping(&self) -> StoreResult<()>;
    /// Connections in the pool, and how many of them are idle.
    fn pool_stats(&self) -> (u32, usize);
}

/// Everything the domain needs from storage.
pub trait Store:
    ServerKeyStore
    + AppStore
    + UserStore
    + SignupStore
    + CodeStore
    + InviteStore
    + AttemptStore
    + TemplateStore
    + AuditStore
    + AdminStore
    + HealthStore
    + migration::MigrationStore
{
}

impl<T> Store for T where
    T: ServerKeyStore
        + AppStore
        + UserStore
        + SignupStore
        + CodeStore
        + InviteStore
        + AttemptStore
        + TemplateStore
        + AuditStore
        + AdminStore
        + HealthStore
        + migration::MigrationStore
{
}
