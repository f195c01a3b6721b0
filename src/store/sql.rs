//! The one SQL implementation of [`Store`](super::Store), over sqlx's Any driver with
//! portable SQL (`$N` placeholders, integer times, 0/1 flags, `ON CONFLICT`, `RETURNING`).
//! Backend differences live only in `connect` (pragmas, migrations).

use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, AssertSqlSafe, Row, SqlSafeStr};
use std::borrow::Cow;
use std::time::Duration;

use super::*;

/// Pool settings taken from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    pub max_connections: u32,
    /// How long a request waits for a connection before the store reports `Unavailable`.
    pub acquire_timeout: Duration,
    /// PostgreSQL `statement_timeout` for every connection; `None` keeps the server's default.
    /// (SQLite has no equivalent; its `busy_timeout` bounds lock waits instead.)
    pub statement_timeout: Option<Duration>,
}

/// Which SQL dialect a database URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Checks a database URL and names the backend it selects. The URL is never echoed (it may
    /// hold a password, or be a password pasted in the wrong place); errors name at most the
    /// scheme or a parameter's name.
    pub fn from_url(url: &str) -> StoreResult<Self> {
        let bad = |why: &str| Err(StoreError::Other(why.to_owned()));
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let (path, query) = split_sqlite(rest);
            // Decoded as the driver decodes them, so an encoded ":memory:" is caught too.
            if path.is_empty()
                || path == ":memory:"
                || query_pairs(query).any(|(k, v)| k == "mode" && v == "memory")
            {
                return bad(
                    "the database URL names an in-memory SQLite database, which loses \
                     everything when the process ends; give a file, e.g. \
                     sqlite:///var/lib/tessera/tessera.db?mode=rwc",
                );
            }
            check_parameters(query, SQLITE_PARAMETERS)?;
            return Ok(Self::Sqlite);
        }
        if let Some(rest) = ["postgres://", "postgresql://"]
            .iter()
            .find_map(|p| url.strip_prefix(p))
        {
            let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
            // '&' or '=' before the '?' is a parameter typed after '&' instead of '?', which
            // would become part of the database name, and the server repeats that name.
            let after_credentials = location.rsplit_once('@').map_or(location, |(_, hp)| hp);
            let path_name = after_credentials.split_once('/').map_or("", |(_, db)| db);
            let named = query_pairs(query)
                .filter(|(k, _)| k == "dbname")
                .map(|(_, v)| v);
            if location.contains(['&', '='])
                || std::iter::once(decode(path_name))
                    .chain(named)
                    .any(|db| db.contains(['&', '=']))
            {
                return bad(
                    "the database URL has '&' or '=' before its '?' or in the database name; \
                     parameters follow a '?', and a password writes '&' as %26 and '=' as %3D",
                );
            }
            check_parameters(query, POSTGRES_PARAMETERS)?;
            return Ok(Self::Postgres);
        }
        match url.split_once("://") {
            Some((scheme, _)) if looks_like_scheme(scheme) => Err(StoreError::Other(format!(
                "unsupported database URL scheme {scheme:?} (expected sqlite: or postgres://)"
            ))),
            _ => bad("the database URL is not a sqlite: or postgres:// URL"),
        }
    }

    /// For logs: `sqlite` or `postgres`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// The connection parameters the driver understands, with the values it accepts (None: any).
/// Anything else is refused here rather than passed on: the driver would log an unknown
/// parameter with its value (which may be a secret), or repeat a value it rejects.
type Parameters = &'static [(&'static str, Option<&'static [&'static str]>)];
const SSL_MODES: &[&str] = &[
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];
const POSTGRES_PARAMETERS: Parameters = &[
    ("sslmode", Some(SSL_MODES)),
    ("ssl-mode", Some(SSL_MODES)),
    ("sslrootcert", None),
    ("ssl-root-cert", None),
    ("ssl-ca", None),
    ("sslcert", None),
    ("ssl-cert", None),
    ("sslkey", None),
    ("ssl-key", None),
    ("statement-cache-capacity", None),
    ("host", None),
    ("hostaddr", None),
    ("port", None),
    ("dbname", None),
    ("user", None),
    ("password", None),
    ("application_name", None),
    ("options", None),
];
/// `vfs` is left out: no Tessera deployment needs another SQLite VFS.
const SQLITE_PARAMETERS: Parameters = &[
    ("mode", Some(&["ro", "rw", "rwc"])),
    ("cache", Some(&["private", "shared"])),
    ("immutable", Some(&["true", "false", "1", "0"])),
];

/// A `sqlite:` URL's file and query, the file decoded as the driver decodes it.
fn split_sqlite(rest: &str) -> (String, &str) {
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    (decode(path), query)
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The query's pairs, decoded as the driver decodes them.
fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()))
}

fn check_parameters(query: &str, known: Parameters) -> StoreResult<()> {
    let names = || {
        known
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (key, value) in query_pairs(query) {
        match known.iter().find(|(name, _)| *name == key) {
            Some((_, Some(values))) if !values.iter().any(|v| v.eq_ignore_ascii_case(&value)) => {
                return Err(StoreError::Other(format!(
                    "the database URL's {key} has a value Tessera does not accept (accepted: {})",
                    values.join(", ")
                )));
            }
            Some(_) => {}
            None => {
                // A name that could be a secret typed in the wrong place is not repeated.
                let plain = key.len() <= 20
                    && key
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c == '-');
                let shown = if plain {
                    format!(": {key:?}")
                } else {
                    String::new()
                };
                return Err(StoreError::Other(format!(
                    "the database URL has a parameter Tessera does not accept{shown} (accepted: {})",
                    names()
                )));
            }
        }
    }
    Ok(())
}

/// RFC 3986 scheme syntax, and short: a letter, then letters, digits, `+`, `-` or `.`.
fn looks_like_scheme(s: &str) -> bool {
    s.len() <= 16
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The SQL store; cheap to clone.
#[derive(Clone, Debug)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
}

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        3,
        "templates",
        include_str!("../../migrations/sqlite/0003_templates.sql"),
    ),
    (
        4,
        "audit",
        include_str!("../../migrations/sqlite/0004_audit.sql"),
    ),
    (
        5,
        "phones",
        include_str!("../../migrations/sqlite/0005_phones.sql"),
    ),
    (
        6,
        "invites",
        include_str!("../../migrations/sqlite/0006_invites.sql"),
    ),
    (
        7,
        "contested_signups",
        include_str!("../../migrations/sqlite/0007_contested_signups.sql"),
    ),
    (
        8,
        "admin",
        include_str!("../../migrations/sqlite/0008_admin.sql"),
    ),
    (
        10,
        "keys_and_migration",
        include_str!("../../migrations/sqlite/0010_keys_and_migration.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        3,
        "templates",
        include_str!("../../migrations/postgres/0003_templates.sql"),
    ),
    (
        4,
        "audit",
        include_str!("../../migrations/postgres/0004_audit.sql"),
    ),
    (
        5,
        "phones",
        include_str!("../../migrations/postgres/0005_phones.sql"),
    ),
    (
        6,
        "invites",
        include_str!("../../migrations/postgres/0006_invites.sql"),
    ),
    (
        7,
        "contested_signups",
        include_str!("../../migrations/postgres/0007_contested_signups.sql"),
    ),
    (
        8,
        "admin",
        include_str!("../../migrations/postgres/0008_admin.sql"),
    ),
    (
        10,
        "keys_and_migration",
        include_str!("../../migrations/postgres/0010_keys_and_migration.sql"),
    ),
];

fn migrator(list: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    let migrations = list
        .iter()
        .map(|(version, name, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*name),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// Set on every SQLite connection: WAL with full sync, so acknowledged writes survive a crash.
const SQLITE_SESSION: &str = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; \
     PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;";

/// The file a `sqlite:` URL names, decoded, for error messages (a path holds no secret;
/// callers format it with `{:?}` so control characters cannot forge log lines).
fn sqlite_file(url: &str) -> String {
    split_sqlite(url.strip_prefix("sqlite:").unwrap_or(url)).0
}

/// A pooled connection idle at least this long is pinged before it is handed out.
pub const IDLE_PING_AFTER: Duration = Duration::from_secs(1);

impl SqlStore {
    /// Connects, applies the backend's migrations and returns the store.
    /// SQLite runs in WAL mode with `synchronous=FULL`, so acknowledged writes survive a crash.
    pub async fn connect(url: &str, opts: PoolOptions) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let mut pool_opts = AnyPoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(opts.acquire_timeout)
            // sqlx pings every connection it takes back, so one idle for less than
            // IDLE_PING_AFTER answered moments ago; one idle for longer may have died with the
            // database (restart, failover, network cut) and is pinged and, if dead, replaced,
            // so the node recovers without a restart. (Pinging on every acquire cost each
            // query a third round trip to the database.)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_PING_AFTER {
                        use sqlx::Connection;
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            });
        match backend {
            Backend::Sqlite => {
                pool_opts = pool_opts.after_connect(|conn, _meta| {
                    Box::pin(async move {
                        use sqlx::Executor;
                        conn.execute(SQLITE_SESSION).await?;
                        Ok(())
                    })
                });
            }
            Backend::Postgres => {
                if let Some(limit) = opts.statement_timeout {
                    let ms = limit.as_millis();
                    pool_opts = pool_opts.after_connect(move |conn, _meta| {
                        Box::pin(async move {
                            // SET takes no bind parameters; `ms` is an integer we formatted.
                            let sql = format!("SET statement_timeout = {ms}");
                            sqlx::query(AssertSqlSafe(sql)).execute(&mut *conn).await?;
                            Ok(())
                        })
                    });
                }
            }
        }
        // One direct attempt first: it names the cause (refused, unknown host, authentication
        // failed) where the pool would only time out, and it is bounded, so a server that
        // accepts TCP and never answers ends start-up after one acquire timeout.
        // On SQLite it also applies the session settings, which write (WAL mode), so a
        // read-only file fails here with its cause instead of the pool retrying until timeout.
        {
            use sqlx::{Connection, Executor};
            let attempt = async {
                let mut conn = sqlx::AnyConnection::connect(url).await?;
                if backend == Backend::Sqlite {
                    conn.execute(SQLITE_SESSION).await?;
                }
                conn.close().await
            };
            match tokio::time::timeout(opts.acquire_timeout, attempt).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) if backend == Backend::Sqlite => {
                    return Err(StoreError::Other(format!(
                        "cannot open the SQLite database {:?}: {e} (its directory must exist and \
                         be writable; mode=rwc in the URL creates the file)",
                        sqlite_file(url)
                    )));
                }
                Ok(Err(e)) => return Err(map_err(e)),
                Err(_) if backend == Backend::Sqlite => {
                    return Err(StoreError::Unavailable(format!(
                        "the SQLite database {:?} did not open within {} s: another process \
                         may hold a lock on it",
                        sqlite_file(url),
                        opts.acquire_timeout.as_secs()
                    )));
                }
                Err(_) => {
                    return Err(StoreError::Unavailable(format!(
                        "the database server accepted the connection but did not answer within {} s",
                        opts.acquire_timeout.as_secs()
                    )));
                }
            }
        }
        let pool = pool_opts.connect(url).await.map_err(map_err)?;
        let list = match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        // The migrator takes a database lock (pg_advisory_lock on PostgreSQL) before it reads
        // the applied versions, so several nodes starting at once apply each migration once.
        migrator(list).run(&pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) => match map_err(inner) {
                StoreError::Unavailable(m) => StoreError::Unavailable(m),
                other => StoreError::Other(format!("migration failed: {other}")),
            },
            other => StoreError::Other(format!("migration failed: {other}")),
        })?;
        Ok(Self { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// Maps driver errors to store errors: unique violations become `Conflict`, lost
/// connections become `Unavailable` (answered with 503 upstream).
pub fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(conflict_name(db.constraint(), db.message()))
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::Gone,
        // PostgreSQL text cannot hold NUL (22021) or characters it cannot convert (22P05).
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c == "22021" || c == "22P05") => {
            StoreError::Invalid
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Database(db) => {
            let msg = db.message().to_owned();
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            // SQLite's "database is locked"; PostgreSQL SQLSTATE classes 08 (connection),
            // 53 (insufficient resources, e.g. too many connections), 57 (operator
            // intervention: shutdown, cannot connect now, statement_timeout), 40 (deadlock,
            // serialization failure: worth a retry), and 55000 ("database is not currently
            // accepting connections") and 3D000 (database gone) when a connection opens.
            if msg.contains("locked")
                || ["08", "40", "53", "57"].iter().any(|c| code.starts_with(c))
                || code == "55000"
                || code == "3D000"
            {
                StoreError::Unavailable(msg)
            } else {
                StoreError::Other(msg)
            }
        }
        _ => StoreError::Other(e.to_string()),
    }
}

/// Unique indexes by the columns SQLite names in its error message, so that `Conflict` carries
/// PostgreSQL's constraint name on both backends. Add new unique indexes here; any other
/// SQLite unique failure is a primary key (`<table>_pkey`, as PostgreSQL names it).
const UNIQUE_INDEXES: &[(&str, &str)] = &[
    ("users.app_id, users.handle_idx", "users_handle"),
    ("users.app_id, users.user_name_idx", "users_user_name"),
    ("signups.app_id, signups.handle_idx", "signups_handle"),
    ("users.app_id, users.phone_idx", "users_phone"),
];

/// The violated constraint: PostgreSQL reports its name; SQLite reports
/// "UNIQUE constraint failed: table.col, table.col".
fn conflict_name(constraint: Option<&str>, message: &str) -> String {
    if let Some(name) = constraint {
        return name.to_owned();
    }
    let columns = message.rsplit(": ").next().unwrap_or("").trim();
    if let Some((_, name)) = UNIQUE_INDEXES.iter().find(|(cols, _)| *cols == columns) {
        return (*name).to_owned();
    }
    match columns.split_once('.') {
        Some((table, _)) => format!("{table}_pkey"),
        None => "unique".to_owned(),
    }
}

/// `NotFound` when an update touched no row.
fn found_if(rows_affected: u64) -> StoreResult<()> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

fn flag(b: bool) -> i16 {
    i16::from(b)
}

fn get_flag(row: &AnyRow, col: &str) -> Result<bool, sqlx::Error> {
    Ok(row.try_get::<i16, _>(col)? != 0)
}

fn app_from(row: &AnyRow) -> Result<AppRow, sqlx::Error> {
    Ok(AppRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        status: row.try_get("status")?,
        settings: row.try_get("settings")?,
        secrets: row.try_get("secrets")?,
        active_kid: row.try_get("active_kid")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn key_from(row: &AnyRow) -> Result<AppKeyRow, sqlx::Error> {
    Ok(AppKeyRow {
        kid: row.try_get("kid")?,
        app_id: row.try_get("app_id")?,
        sealed_private: row.try_get("sealed_private")?,
        public_der: row.try_get("public_der")?,
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(super) fn user_from(row: &AnyRow) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        id: row.try_get("id")?,
        app_id: row.try_get("app_id")?,
        handle_idx: row.try_get("handle_idx")?,
        handle_enc: row.try_get("handle_enc")?,
        user_name_idx: row.try_get("user_name_idx")?,
        user_name_enc: row.try_get("user_name_enc")?,
        password_hash: row.try_get("password_hash")?,
        status: row.try_get("status")?,
        locale: row.try_get("locale")?,
        metadata_enc: row.try_get("metadata_enc")?,
        epoch: row.try_get("epoch")?,
        login_provider: row.try_get("login_provider")?,
        two_factor_phone: get_flag(row, "two_factor_phone")?,
        two_factor_google: get_flag(row, "two_factor_google")?,
        totp_enc: row.try_get("totp_enc")?,
        totp_last_step: row.try_get("totp_last_step")?,
        phone_enc: row.try_get("phone_enc")?,
        phone_idx: row.try_get("phone_idx")?,
        phone_verified: get_flag(row, "phone_verified")?,
        last_login: row.try_get("last_login")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        anonymous: get_flag(row, "anonymous")?,
    })
}

fn signup_from(row: &AnyRow) -> Result<SignupRow, sqlx::Error> {
    Ok(SignupRow {
        id: row.try_get("id")?,
        app_id: row.try_get("app_id")?,
        handle_idx: row.try_get("handle_idx")?,
        handle_enc: row.try_get("handle_enc")?,
        password_hash: row.try_get("password_hash")?,
        metadata_enc: row.try_get("metadata_enc")?,
        locale: row.try_get("locale")?,
        code_hash: row.try_get("code_hash")?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        contested: get_flag(row, "contested")?,
    })
}

fn code_from(row: &AnyRow) -> Result<CodeRow, sqlx::Error> {
    Ok(CodeRow {
        app_id: row.try_get("app_id")?,
        purpose: row.try_get("purpose")?,
        subject: row.try_get("subject")?,
        code_hash: row.try_get("code_hash")?,
        payload: row.try_get("payload")?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
    })
}

fn one<T>(
    r: Result<Option<AnyRow>, sqlx::Error>,
    f: fn(&AnyRow) -> Result<T, sqlx::Error>,
) -> StoreResult<T> {
    match r.map_err(map_err)? {
        Some(row) => f(&row).map_err(map_err),
        None => Err(StoreError::NotFound),
    }
}

pub(super) const USER_INSERT: &str = "INSERT INTO users (id, app_id, handle_idx, handle_enc, user_name_idx, \
    user_name_enc, password_hash, status, locale, metadata_enc, epoch, login_provider, \
    two_factor_phone, two_factor_google, totp_enc, totp_last_step, phone_enc, phone_idx, \
    phone_verified, last_login, created_at, updated_at, anonymous) VALUES ($1, $2, $3, $4, $5, $6, \
    $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)";

pub(super) fn bind_user<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    u: &'q UserRow,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    q.bind(&u.id)
        .bind(&u.app_id)
        .bind(&u.handle_idx)
        .bind(&u.handle_enc)
        .bind(&u.user_name_idx)
        .bind(&u.user_name_enc)
        .bind(&u.password_hash)
        .bind(&u.status)
        .bind(&u.locale)
        .bind(&u.metadata_enc)
        .bind(u.epoch)
        .bind(&u.login_provider)
        .bind(flag(u.two_factor_phone))
        .bind(flag(u.two_factor_google))
        .bind(&u.totp_enc)
        .bind(u.totp_last_step)
        .bind(&u.phone_enc)
        .bind(&u.phone_idx)
        .bind(flag(u.phone_verified))
        .bind(u.last_login)
        .bind(u.created_at)
        .bind(u.updated_at)
        .bind(flag(u.anonymous))
}

#[async_trait]
impl ServerKeyStore for SqlStore {
    async fn server_key_get_or_insert(
        &self,
        purpose: &str,
        kid: &str,
        sealed: &[u8],
        now: i64,
    ) -> StoreResult<(String, Vec<u8>)> {
        sqlx::query(
            "INSERT INTO server_keys (purpose, kid, sealed, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (purpose) DO NOTHING",
        )
        .bind(purpose)
        .bind(kid)
        .bind(sealed)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        let row = sqlx::query("SELECT kid, sealed FROM server_keys WHERE purpose = $1")
            .bind(purpose)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok((
            row.try_get("kid").map_err(map_err)?,
            row.try_get("sealed").map_err(map_err)?,
        ))
    }
}

#[async_trait]
impl AppStore for SqlStore {
    async fn app_create(&self, app: &AppRow, key: &AppKeyRow) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query(
            "INSERT INTO apps (id, name, status, settings, secrets, active_kid, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&app.id)
        .bind(&app.name)
        .bind(&app.status)
        .bind(&app.settings)
        .bind(&app.secrets)
        .bind(&app.active_kid)
        .bind(app.created_at)
        .bind(app.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO app_keys (kid, app_id, sealed_private, public_der, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.kid)
        .bind(&key.app_id)
        .bind(&key.sealed_private)
        .bind(&key.public_der)
        .bind(&key.status)
        .bind(key.created_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn app_get(&self, id: &str) -> StoreResult<AppRow> {
        let r = sqlx::query("SELECT * FROM apps WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await;
        one(r, app_from)
    }

    async fn app_list(&self) -> StoreResult<Vec<AppRow>> {
        let rows = sqlx::query("SELECT * FROM apps ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(|r| app_from(r).map_err(map_err)).collect()
    }

    async fn app_update(&self, app: &AppRow, seen_updated_at: i64) -> StoreResult<()> {
        let sql = if app.secrets.is_some() {
            "UPDATE apps SET name = $2, status = $3, settings = $4, updated_at = $5, secrets = $7 \
             WHERE id = $1 AND updated_at = $6"
        } else {
            "UPDATE apps SET name = $2, status = $3, settings = $4, updated_at = $5 \
             WHERE id = $1 AND updated_at = $6"
        };
        let mut query = sqlx::query(sql)
            .bind(&app.id)
            .bind(&app.name)
            .bind(&app.status)
            .bind(&app.settings)
            .bind(app.updated_at)
            .bind(seen_updated_at);
        if let Some(secrets) = &app.secrets {
            query = query.bind(secrets);
        }
        let done = query.execute(&self.pool).await.map_err(map_err)?;
        if done.rows_affected() == 0 {
            return match self.app_get(&app.id).await {
                Ok(_) => Err(StoreError::Conflict("apps.updated_at".into())),
                Err(e) => Err(e),
            };
        }
        Ok(())
    }

    async fn app_keys(&self, app_id: &str) -> StoreResult<Vec<AppKeyRow>> {
        let rows = sqlx::query("SELECT * FROM app_keys WHERE app_id = $1 ORDER BY created_at, kid")
            .bind(app_id)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(|r| key_from(r).map_err(map_err)).collect()
    }
}

#[async_trait]
impl UserStore for SqlStore {
    async fn user_create(&self, user: &UserRow) -> StoreResult<()> {
        bind_user(sqlx::query(USER_INSERT), user)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn user_by_handle(&self, app_id: &str, handle_idx: &[u8]) -> StoreResult<UserRow> {
        let r = sqlx::query("SELECT * FROM users WHERE app_id = $1 AND handle_idx = $2")
            .bind(app_id)
            .bind(handle_idx)
            .fetch_optional(&self.pool)
            .await;
        one(r, user_from)
    }

    async fn user_by_name(&self, app_id: &str, user_name_idx: &[u8]) -> StoreResult<UserRow> {
        let r = sqlx::query("SELECT * FROM users WHERE app_id = $1 AND user_name_idx = $2")
            .bind(app_id)
            .bind(user_name_idx)
            .fetch_optional(&self.pool)
            .await;
        one(r, user_from)
    }

    async fn user_get(&self, app_id: &str, id: &str) -> StoreResult<UserRow> {
        let r = sqlx::query("SELECT * FROM users WHERE app_id = $1 AND id = $2")
            .bind(app_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await;
        one(r, user_from)
    }

    async fn user_count(&self, app_id: &str) -> StoreResult<i64> {
        sqlx::query("SELECT COUNT(*) AS n FROM users WHERE app_id = $1")
            .bind(app_id)
            .fetch_one(&self.pool)
            .await
            .and_then(|row| row.try_get::<i64, _>("n"))
            .map_err(map_err)
    }

    async fn user_set_password(
        &self,
        app_id: &str,
        id: &str,
        hash: &str,
        clear_two_factor: bool,
        now: i64,
    ) -> StoreResult<i64> {
        let row = sqlx::query(
            "UPDATE users SET password_hash = $3, epoch = epoch + 1, updated_at = $4, \
             two_factor_google = CASE WHEN $5 = 1 THEN 0 ELSE two_factor_google END, \
             two_factor_phone = CASE WHEN $5 = 1 THEN 0 ELSE two_factor_phone END, \
             totp_enc = CASE WHEN $5 = 1 THEN NULL ELSE totp_enc END \
             WHERE app_id = $1 AND id = $2 RETURNING epoch",
        )
        .bind(app_id)
        .bind(id)
        .bind(hash)
        .bind(now)
        .bind(flag(clear_two_factor))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?
        .ok_or(StoreError::NotFound)?;
        row.try_get::<i64, _>("epoch").map_err(map_err)
    }

    async fn user_rehash(
        &self,
        app_id: &str,
        id: &str,
        old_hash: &str,
        new_hash: &str,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE users SET password_hash = $4 WHERE app_id = $1 AND id = $2 \
             AND password_hash = $3",
        )
        .bind(app_id)
        .bind(id)
        .bind(old_hash)
        .bind(new_hash)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn user_set_locale(
        &self,
        app_id: &str,
        id: &str,
        locale: &str,
        now: i64,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE users SET locale = $3, updated_at = $4 WHERE app_id = $1 AND id = $2",
        )
        .bind(app_id)
        .bind(id)
        .bind(locale)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        found_if(done.rows_affected())
    }

    async fn user_set_metadata(
        &self,
        app_id: &str,
        id: &str,
        metadata_enc: Option<&[u8]>,
        now: i64,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE users SET metadata_enc = $3, updated_at = $4 WHERE app_id = $1 AND id = $2",
        )
        .bind(app_id)
        .bind(id)
        .bind(metadata_enc)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        found_if(done.rows_affected())
    }

    async fn user_set_user_name(
        &self,
        app_id: &str,
        id: &str,
        name_idx: &[u8],
        name_enc: &[u8],
        now: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE users SET user_name_idx = $3, user_name_enc = $4, updated_at = $5 \
             WHERE app_id = $1 AND id = $2 AND user_name_idx IS NULL",
        )
        .bind(app_id)
        .bind(id)
        .bind(name_idx)
        .bind(name_enc)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn user_delete(&self, user: &UserRow) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let gone = sqlx::query("DELETE FROM users WHERE app_id = $1 AND id = $2")
            .bind(&user.app_id)
            .bind(&user.id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if gone.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        // Everything keyed by the account: pending signups, codes (by handle or user id).
        sqlx::query("DELETE FROM signups WHERE app_id = $1 AND handle_idx = $2")
            .bind(&user.app_id)
            .bind(&user.handle_idx)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("DELETE FROM codes WHERE app_id = $1 AND (subject = $2 OR subject = $3)")
            .bind(&user.app_id)
            .bind(&user.handle_idx)
            .bind(user.id.as_bytes())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        // Invites to the account and invites it sent.
        sqlx::query(
            "DELETE FROM invites WHERE app_id = $1 AND (handle_idx = $2 OR sender_id = $3)",
        )
        .bind(&user.app_id)
        .bind(&user.handle_idx)
        .bind(&user.id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn user_by_phone(&self, app_id: &str, phone_idx: &[u8]) -> StoreResult<UserRow> {
        let r = sqlx::query("SELECT * FROM users WHERE app_id = $1 AND phone_idx = $2")
            .bind(app_id)
            .bind(phone_idx)
            .fetch_optional(&self.pool)
            .await;
        one(r, user_from)
    }

    async fn user_set_phone(&self, u: &UserRow) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE users SET phone_enc = $3, phone_idx = $4, phone_verified = $5, \
             updated_at = $6 WHERE app_id = $1 AND id = $2",
        )
        .bind(&u.app_id)
        .bind(&u.id)
        .bind(&u.phone_enc)
        .bind(&u.phone_idx)
        .bind(flag(u.phone_verified))
        .bind(u.updated_at)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        found_if(done.rows_affected())
    }

    async fn user_set_two_factor(
        &self,
        app_id: &str,
        id: &str,
        change: &TwoFactorChange<'_>,
        now: i64,
    ) -> StoreResult<()> {
        let (set_totp, totp_enc, last_step) = match change.totp {
            Some((enc, step)) => (1i16, enc, step),
            None => (0, None, 0),
        };
        let done = sqlx::query(
            "UPDATE users SET two_factor_phone = COALESCE($3, two_factor_phone), \
             two_factor_google = COALESCE($4, two_factor_google), \
             totp_enc = CASE WHEN $5 = 1 THEN $6 ELSE totp_enc END, \
             totp_last_step = CASE WHEN $5 = 1 THEN $7 ELSE totp_last_step END, \
             updated_at = $8 WHERE app_id = $1 AND id = $2",
        )
        .bind(app_id)
        .bind(id)
        .bind(change.phone.map(flag))
        .bind(change.google.map(flag))
        .bind(set_totp)
        .bind(totp_enc)
        .bind(last_step)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        found_if(done.rows_affected())
    }

    async fn user_totp_advance(&self, app_id: &str, id: &str, step: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE users SET totp_last_step = $3 WHERE app_id = $1 AND id = $2 \
             AND totp_last_step < $3",
        )
        .bind(app_id)
        .bind(id)
        .bind(step)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn user_set_last_login(&self, app_id: &str, id: &str, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE users SET last_login = $3 WHERE app_id = $1 AND id = $2")
            .bind(app_id)
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

#[async_trait]
impl SignupStore for SqlStore {
    async fn signup_upsert(&self, s: &SignupRow, same_password_as: &str) -> StoreResult<()> {
        // Decided in the statement, so a request racing another cannot miss the contest.
        sqlx::query(
            "INSERT INTO signups (id, app_id, handle_idx, handle_enc, password_hash, metadata_enc, \
             locale, code_hash, expires_at, created_at, updated_at, contested) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0) \
             ON CONFLICT (app_id, handle_idx) DO UPDATE SET id = excluded.id, \
             handle_enc = excluded.handle_enc, password_hash = excluded.password_hash, \
             metadata_enc = excluded.metadata_enc, locale = excluded.locale, \
             code_hash = excluded.code_hash, expires_at = excluded.expires_at, \
             updated_at = excluded.updated_at, \
             contested = CASE WHEN signups.expires_at < $11 THEN 0 \
             WHEN signups.password_hash = $12 THEN signups.contested ELSE 1 END",
        )
        .bind(&s.id)
        .bind(&s.app_id)
        .bind(&s.handle_idx)
        .bind(&s.handle_enc)
        .bind(&s.password_hash)
        .bind(&s.metadata_enc)
        .bind(&s.locale)
        .bind(&s.code_hash)
        .bind(s.expires_at)
        .bind(s.created_at)
        .bind(s.updated_at)
        .bind(same_password_as)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn signup_get(&self, app_id: &str, handle_idx: &[u8]) -> StoreResult<SignupRow> {
        let r = sqlx::query("SELECT * FROM signups WHERE app_id = $1 AND handle_idx = $2")
            .bind(app_id)
            .bind(handle_idx)
            .fetch_optional(&self.pool)
            .await;
        one(r, signup_from)
    }

    async fn signup_delete(&self, app_id: &str, handle_idx: &[u8]) -> StoreResult<()> {
        sqlx::query("DELETE FROM signups WHERE app_id = $1 AND handle_idx = $2")
            .bind(app_id)
            .bind(handle_idx)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn signup_complete(&self, signup_id: &str, user: &UserRow) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // The delete comes first: it takes the write lock and decides which concurrent
        // completion wins; the loser finds nothing to delete.
        let gone = sqlx::query("DELETE FROM signups WHERE id = $1 AND app_id = $2")
            .bind(signup_id)
            .bind(&user.app_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if gone.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        bind_user(sqlx::query(USER_INSERT), user)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }
}

#[async_trait]
impl CodeStore for SqlStore {
    async fn code_put(&self, c: &CodeRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO codes (app_id, purpose, subject, code_hash, payload, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (app_id, purpose, subject) DO UPDATE \
             SET code_hash = excluded.code_hash, payload = excluded.payload, \
             expires_at = excluded.expires_at, created_at = excluded.created_at",
        )
        .bind(&c.app_id)
        .bind(&c.purpose)
        .bind(&c.subject)
        .bind(&c.code_hash)
        .bind(&c.payload)
        .bind(c.expires_at)
        .bind(c.created_at)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn code_get(&self, app_id: &str, purpose: &str, subject: &[u8]) -> StoreResult<CodeRow> {
        let r =
            sqlx::query("SELECT * FROM codes WHERE app_id = $1 AND purpose = $2 AND subject = $3")
                .bind(app_id)
                .bind(purpose)
                .bind(subject)
                .fetch_optional(&self.pool)
                .await;
        one(r, code_from)
    }

    async fn code_delete(&self, app_id: &str, purpose: &str, subject: &[u8]) -> StoreResult<()> {
        sqlx::query("DELETE FROM codes WHERE app_id = $1 AND purpose = $2 AND subject = $3")
            .bind(app_id)
            .bind(purpose)
            .bind(subject)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn code_take(
        &self,
        app_id: &str,
        purpose: &str,
        subject: &[u8],
        code_hash: &[u8],
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM codes WHERE app_id = $1 AND purpose = $2 AND subject = $3 AND code_hash = $4",
        )
        .bind(app_id)
        .bind(purpose)
        .bind(subject)
        .bind(code_hash)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl AttemptStore for SqlStore {
    async fn attempt_clear_suffix(&self, suffix: &str) -> StoreResult<()> {
        // Keys are `purpose:app:subject`; the suffix names one account in one app.
        let pattern = format!("%:{}", suffix.replace(['%', '_'], ""));
        sqlx::query("DELETE FROM attempts WHERE key LIKE $1")
            .bind(pattern)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn attempt_hit(&self, key: &str, now: i64, window_ms: i64) -> StoreResult<i64> {
        let row = sqlx::query(
            "INSERT INTO attempts (key, count, window_start) VALUES ($1, 1, $2) \
             ON CONFLICT (key) DO UPDATE SET \
             count = CASE WHEN attempts.window_start <= $3 THEN 1 ELSE attempts.count + 1 END, \
             window_start = CASE WHEN attempts.window_start <= $3 THEN $2 ELSE attempts.window_start END \
             RETURNING count",
        )
        .bind(key)
        .bind(now)
        .bind(now - window_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        row.try_get::<i64, _>("count").map_err(map_err)
    }

    async fn attempt_clear(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM attempts WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

#[async_trait]
impl HealthStore for SqlStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    fn pool_stats(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }
}

#[async_trait]
impl TemplateStore for SqlStore {
    async fn template_get(
        &self,
        app_id: &str,
        name: &str,
        locale: &str,
    ) -> StoreResult<TemplateRow> {
        let r =
            sqlx::query("SELECT * FROM templates WHERE app_id = $1 AND name = $2 AND locale = $3")
                .bind(app_id)
                .bind(name)
                .bind(locale)
                .fetch_optional(&self.pool)
                .await;
        one(r, template_from)
    }

    async fn template_put(&self, t: &TemplateRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO templates (app_id, name, locale, subject, html, link_text, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (app_id, name, locale) DO UPDATE SET \
             subject = excluded.subject, html = excluded.html, link_text = excluded.link_text, \
             updated_at = excluded.updated_at",
        )
        .bind(&t.app_id)
        .bind(&t.name)
        .bind(&t.locale)
        .bind(&t.subject)
        .bind(&t.html)
        .bind(&t.link_text)
        .bind(t.updated_at)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn template_list(&self, app_id: &str) -> StoreResult<Vec<TemplateRow>> {
        let rows = sqlx::query("SELECT * FROM templates WHERE app_id = $1 ORDER BY name, locale")
            .bind(app_id)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| template_from(r).map_err(map_err))
            .collect()
    }
}

fn invite_from(row: &AnyRow) -> Result<InviteRow, sqlx::Error> {
    Ok(InviteRow {
        app_id: row.try_get("app_id")?,
        handle_idx: row.try_get("handle_idx")?,
        sender_id: row.try_get("sender_id")?,
        code_hash: row.try_get("code_hash")?,
        payload: row.try_get("payload")?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
    })
}

#[async_trait]
impl InviteStore for SqlStore {
    async fn invite_put(&self, i: &InviteRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO invites (app_id, handle_idx, sender_id, code_hash, payload, expires_at, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (app_id, handle_idx, sender_id) DO UPDATE SET code_hash = $4, \
             payload = $5, expires_at = $6, created_at = $7",
        )
        .bind(&i.app_id)
        .bind(&i.handle_idx)
        .bind(&i.sender_id)
        .bind(&i.code_hash)
        .bind(&i.payload)
        .bind(i.expires_at)
        .bind(i.created_at)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn invites_for(&self, app_id: &str, handle_idx: &[u8]) -> StoreResult<Vec<InviteRow>> {
        let rows = sqlx::query(
            "SELECT * FROM invites WHERE app_id = $1 AND handle_idx = $2 ORDER BY created_at",
        )
        .bind(app_id)
        .bind(handle_idx)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(invite_from)
            .collect::<Result<_, _>>()
            .map_err(map_err)
    }

    async fn invite_take_and_create_user(
        &self,
        invite: &InviteRow,
        user: &UserRow,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // All of the handle's invites go in one statement, locked in one order, and only if
        // this invite is still among them: two invites taken at once cannot deadlock.
        let gone = sqlx::query(
            "DELETE FROM invites WHERE app_id = $1 AND handle_idx = $2 AND EXISTS \
             (SELECT 1 FROM invites WHERE app_id = $1 AND handle_idx = $2 AND sender_id = $3 \
             AND code_hash = $4)",
        )
        .bind(&invite.app_id)
        .bind(&invite.handle_idx)
        .bind(&invite.sender_id)
        .bind(&invite.code_hash)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if gone.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        bind_user(sqlx::query(USER_INSERT), user)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn invite_delete(
        &self,
        app_id: &str,
        handle_idx: &[u8],
        sender_id: &str,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM invites WHERE app_id = $1 AND handle_idx = $2 AND sender_id = $3")
            .bind(app_id)
            .bind(handle_idx)
            .bind(sender_id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

fn template_from(row: &AnyRow) -> Result<TemplateRow, sqlx::Error> {
    Ok(TemplateRow {
        app_id: row.try_get("app_id")?,
        name: row.try_get("name")?,
        locale: row.try_get("locale")?,
        subject: row.try_get("subject")?,
        html: row.try_get("html")?,
        link_text: row.try_get("link_text")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn audit_from(row: &AnyRow) -> Result<AuditRow, sqlx::Error> {
    Ok(AuditRow {
        id: row.try_get("id")?,
        app_id: row.try_get("app_id")?,
        user_id: row.try_get("user_id")?,
        action: row.try_get("action")?,
        outcome: row.try_get("outcome")?,
        ip: row.try_get("ip")?,
        detail: row.try_get("detail")?,
        created_at: row.try_get("created_at")?,
    })
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn audit_insert(&self, a: &AuditRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_events (id, app_id, user_id, action, outcome, ip, detail, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&a.id)
        .bind(&a.app_id)
        .bind(&a.user_id)
        .bind(&a.action)
        .bind(&a.outcome)
        .bind(&a.ip)
        .bind(&a.detail)
        .bind(a.created_at)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn audit_list(&self, f: &AuditFilter) -> StoreResult<Vec<AuditRow>> {
        // Every filter is a bound parameter; NULL means "any".
        let rows = sqlx::query(
            "SELECT * FROM audit_events WHERE ($1 IS NULL OR app_id = $1) \
             AND ($2 IS NULL OR user_id = $2) AND ($3 IS NULL OR action = $3) \
             AND ($4 IS NULL OR outcome = $4) AND ($5 IS NULL OR created_at >= $5) \
             AND ($6 IS NULL OR created_at <= $6) \
             ORDER BY created_at DESC, id DESC LIMIT $7 OFFSET $8",
        )
        .bind(&f.app_id)
        .bind(&f.user_id)
        .bind(&f.action)
        .bind(&f.outcome)
        .bind(f.from)
        .bind(f.to)
        .bind(f.limit.clamp(1, 1000))
        .bind(f.offset.max(0))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| audit_from(r).map_err(map_err))
            .collect()
    }
}

fn admin_token_from(row: &AnyRow) -> Result<AdminTokenRow, sqlx::Error> {
    Ok(AdminTokenRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        secret_hash: row.try_get("secret_hash")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

#[async_trait]
impl AdminStore for SqlStore {
    async fn admin_token_insert(&self, t: &AdminTokenRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO admin_tokens (id, name, secret_hash, created_at, expires_at, revoked_at, \
             last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&t.id)
        .bind(&t.name)
        .bind(&t.secret_hash)
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.revoked_at)
        .bind(t.last_used_at)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn admin_token_get(&self, id: &str) -> StoreResult<AdminTokenRow> {
        let r = sqlx::query("SELECT * FROM admin_tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await;
        one(r, admin_token_from)
    }

    async fn admin_token_list(&self) -> StoreResult<Vec<AdminTokenRow>> {
        let rows = sqlx::query("SELECT * FROM admin_tokens ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| admin_token_from(r).map_err(map_err))
            .collect()
    }

    async fn admin_token_revoke(&self, id: &str, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE admin_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn admin_token_touch(&self, id: &str, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE admin_tokens SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn app_delete(&self, app_id: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // Children first, so the result does not depend on foreign-key enforcement.
        for table in [
            "invites",
            "codes",
            "signups",
            "users",
            "templates",
            "app_keys",
        ] {
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE app_id = $1"
            )))
            .bind(app_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        let gone = sqlx::query("DELETE FROM apps WHERE id = $1")
            .bind(app_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if gone.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        // Attempt counters name the app inside their key.
        sqlx::query("DELETE FROM attempts WHERE key LIKE $1")
            .bind(format!("%:{app_id}:%"))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn app_key_rotate(&self, key: &AppKeyRow, keep: usize) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // `updated_at` moves strictly forward, so a concurrent `app_update` sees the change.
        let moved = sqlx::query(
            "UPDATE apps SET active_kid = $2, \
             updated_at = CASE WHEN updated_at >= $3 THEN updated_at + 1 ELSE $3 END WHERE id = $1",
        )
        .bind(&key.app_id)
        .bind(&key.kid)
        .bind(key.created_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if moved.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "UPDATE app_keys SET status = 'retiring' WHERE app_id = $1 AND status = 'active'",
        )
        .bind(&key.app_id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO app_keys (kid, app_id, sealed_private, public_der, status, created_at) \
             VALUES ($1, $2, $3, $4, 'active', $5)",
        )
        .bind(&key.kid)
        .bind(&key.app_id)
        .bind(&key.sealed_private)
        .bind(&key.public_der)
        .bind(key.created_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        // The new key and the newest `keep - 1` others stay published. The new key is never
        // among the retired, whatever its timestamp: rotations racing each other commit in
        // any order, and the last one to commit is the one that signs.
        let published = sqlx::query(
            "SELECT kid FROM app_keys WHERE app_id = $1 AND status = 'retiring' \
             ORDER BY created_at DESC, kid DESC",
        )
        .bind(&key.app_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        for row in published.iter().skip(keep.saturating_sub(1)) {
            let kid: String = row.try_get("kid").map_err(map_err)?;
            sqlx::query("UPDATE app_keys SET status = 'retired' WHERE kid = $1")
                .bind(kid)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn user_list(&self, app_id: &str, limit: i64, offset: i64) -> StoreResult<Vec<UserRow>> {
        let rows = sqlx::query(
            "SELECT * FROM users WHERE app_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3",
        )
        .bind(app_id)
        .bind(limit.clamp(1, 1000))
        .bind(offset.max(0))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(|r| user_from(r).map_err(map_err)).collect()
    }

    async fn user_set_status(
        &self,
        app_id: &str,
        id: &str,
        status: &str,
        now: i64,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE users SET status = $3, epoch = epoch + 1, updated_at = $4 \
             WHERE app_id = $1 AND id = $2",
        )
        .bind(app_id)
        .bind(id)
        .bind(status)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn signup_list(
        &self,
        app_id: &str,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<SignupRow>> {
        let rows = sqlx::query(
            "SELECT * FROM signups WHERE app_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3",
        )
        .bind(app_id)
        .bind(limit.clamp(1, 1000))
        .bind(offset.max(0))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| signup_from(r).map_err(map_err))
            .collect()
    }

    async fn invite_list(
        &self,
        app_id: &str,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<InviteRow>> {
        let rows = sqlx::query(
            "SELECT * FROM invites WHERE app_id = $1 \
             ORDER BY created_at, handle_idx, sender_id LIMIT $2 OFFSET $3",
        )
        .bind(app_id)
        .bind(limit.clamp(1, 1000))
        .bind(offset.max(0))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| invite_from(r).map_err(map_err))
            .collect()
    }

    async fn app_counts(&self, app_id: &str) -> StoreResult<AppCounts> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM users WHERE app_id = $1) AS users, \
             (SELECT COUNT(*) FROM users WHERE app_id = $1 AND anonymous = 1) AS anonymous_users, \
             (SELECT COUNT(*) FROM signups WHERE app_id = $1) AS pending_signups, \
             (SELECT COUNT(*) FROM invites WHERE app_id = $1) AS invites",
        )
        .bind(app_id)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        let n = |c: &str| row.try_get::<i64, _>(c).map_err(map_err);
        Ok(AppCounts {
            users: n("users")?,
            anonymous_users: n("anonymous_users")?,
            pending_signups: n("pending_signups")?,
            invites: n("invites")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(url: &str) -> String {
        match Backend::from_url(url) {
            Err(StoreError::Other(m)) => m,
            other => panic!("expected an error for {url:?}, got {other:?}"),
        }
    }

    #[test]
    fn the_scheme_selects_the_backend() {
        assert_eq!(
            Backend::from_url("sqlite:///tmp/a.db").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("postgres://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::from_url("postgresql://u@h/db").ok(),
            Some(Backend::Postgres)
        );
    }

    #[test]
    fn an_unsupported_url_is_named_by_its_scheme_and_never_echoed_whole() {
        assert_eq!(
            message("mysql://root:hunter2@db/x"),
            "unsupported database URL scheme \"mysql\" (expected sqlite: or postgres://)"
        );
        // A password pasted into the URL setting, with or without a colon in it, is not
        // repeated; nor is one after a known scheme without its "//".
        for secret in [
            "hunter2-very-secret",
            "hunter2:very secret",
            "",
            "://x",
            "p@ss:word",
            "mysql:x",
            "postgres:S3cretPw!",
            "postgresql:/S3cretPw!",
        ] {
            let m = message(secret);
            assert_eq!(m, "the database URL is not a sqlite: or postgres:// URL");
        }
    }

    #[test]
    fn in_memory_sqlite_is_refused() {
        for url in [
            "sqlite::memory:",
            "sqlite:",
            "sqlite://",
            "sqlite:///tmp/x.db?mode=memory",
            // Encoded, as the driver would decode it.
            "sqlite://%3Amemory%3A",
            "sqlite:///tmp/x.db?mode=memor%79",
        ] {
            assert!(message(url).contains("in-memory SQLite"), "{url}");
        }
        assert_eq!(
            Backend::from_url("sqlite:///tmp/x.db?mode=rwc&cache=shared").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("sqlite:relative.db").ok(),
            Some(Backend::Sqlite)
        );
    }

    #[test]
    fn unknown_parameters_are_refused_by_name_never_by_value() {
        let m = message("postgres://u@h/db?sslmode=disable&sslpassword=S3cretPw!");
        assert!(m.contains("\"sslpassword\""), "{m}");
        assert!(!m.contains("S3cretPw"), "{m}");
        let m = message("sqlite:///tmp/x.db?mode=rwc&vfs=S3cretPw!");
        assert!(m.contains("\"vfs\""), "{m}");
        assert!(!m.contains("S3cretPw"), "{m}");
        // A name that may itself be a secret is not repeated.
        let m = message("postgres://u@h/db?S3cretPw!");
        assert!(
            m.starts_with(
                "the database URL has a parameter Tessera does not accept (accepted: sslmode,"
            ),
            "{m}"
        );
        assert!(!m.contains("S3cretPw"), "{m}");
        // '&' where '?' was meant would make the rest part of the database name, which the
        // server repeats in its error.
        for url in [
            "postgres://u@h:5432/db&password=S3cretPw!",
            "postgres://u@h:5432/db&password=S3cret@Pw!",
            "postgres://u@h:5432/db%26password%3DS3cretPw!",
            "postgres://u@h:5432/?dbname=db%26password%3DS3cretPw!",
        ] {
            let m = message(url);
            assert!(m.contains("parameters follow a '?'"), "{url}: {m}");
            assert!(!m.contains("S3cretPw"), "{url}: {m}");
        }
        // A value outside the few a parameter takes is refused without being repeated.
        for url in [
            "postgres://u@h/db?sslmode=S3cretPw!",
            "sqlite:///tmp/x.db?mode=S3cretPw!",
            "sqlite:///tmp/x.db?cache=S3cretPw!",
        ] {
            let m = message(url);
            assert!(
                m.contains("has a value Tessera does not accept"),
                "{url}: {m}"
            );
            assert!(!m.contains("S3cretPw"), "{url}: {m}");
        }
        for ok in [
            "postgres://u:p%40ss@h:5432/db?sslmode=verify-full&sslrootcert=/etc/ca.pem",
            "postgres://u@localhost/db?host=/var/run/postgresql",
            "postgres:///db?host=/var/run/postgresql&user=u",
            "postgres://u@h/test?sslmode=disable&options=-c%20search_path%3Dt_1",
            "postgres://u@h",
            "postgres://u@h/db?sslmode=DISABLE",
        ] {
            assert_eq!(Backend::from_url(ok).ok(), Some(Backend::Postgres), "{ok}");
        }
    }
}
