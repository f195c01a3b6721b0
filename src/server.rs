//! Start-up and shutdown: the master key, the store, the service, the listener.

use anyhow::Context;
use axum::ServiceExt as _;
use secrecy::ExposeSecret;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tower::Layer as _;

use crate::config::Settings;
use crate::crypto::password::{HashCost, Hasher};
use crate::crypto::{Keyring, MasterKey};
use crate::domain::{Core, CoreParts, Policy};
use crate::http::extract::now_ms;
use crate::notify::{Mailer, SmsGateway};
use crate::store::sql::{Backend, PoolOptions, SqlStore};

/// Name of the generated key file inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

/// The master key, and the path of the key file if this call generated it.
pub struct LoadedKey {
    pub key: MasterKey,
    pub generated: Option<std::path::PathBuf>,
}

/// The master key from `TESSERA_MASTER_KEY`, the file `TESSERA_MASTER_KEY_FILE` names, or
/// the data directory (generated there with mode 0600 on first start).
pub fn load_master_key(settings: &Settings) -> anyhow::Result<LoadedKey> {
    match existing_master_key(settings)? {
        Some(key) => Ok(LoadedKey {
            key,
            generated: None,
        }),
        None => new_master_key(settings),
    }
}

/// Generates the key file in the data directory (first start).
fn new_master_key(settings: &Settings) -> anyhow::Result<LoadedKey> {
    let path = settings.data_dir.join(MASTER_KEY_FILE);
    let key = MasterKey::generate()?;
    if write_new_secret_file(&path, &format!("{}\n", key.to_base64()))? {
        tracing::warn!(
            path = %path.display(),
            "generated a new master key; back it up and keep it secret: without it the data cannot be read"
        );
        return Ok(LoadedKey {
            key,
            generated: Some(path),
        });
    }
    // Another process created it meanwhile.
    Ok(LoadedKey {
        key: read_key_file(&path)?,
        generated: None,
    })
}

/// The master key given in the settings or kept in the data directory; None when there is
/// none yet (the first start).
fn existing_master_key(settings: &Settings) -> anyhow::Result<Option<MasterKey>> {
    if let Some(k) = &settings.master_key {
        return Ok(Some(
            MasterKey::from_base64(k.expose_secret()).context("TESSERA_MASTER_KEY")?,
        ));
    }
    if let Some(path) = &settings.master_key_file {
        return read_key_file(path).map(Some);
    }
    let path = settings.data_dir.join(MASTER_KEY_FILE);
    if path.exists() {
        return read_key_file(&path).map(Some);
    }
    Ok(None)
}

fn read_key_file(path: &Path) -> anyhow::Result<MasterKey> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .with_context(|| format!("reading master key file {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            "the master key file is readable by other users; restrict it with chmod 600"
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading master key file {}", path.display()))?;
    MasterKey::from_base64(&text).with_context(|| format!("master key file {}", path.display()))
}

/// Creates `path` with mode 0600; false if it already exists (another process won the race).
fn write_new_secret_file(path: &Path, content: &str) -> anyhow::Result<bool> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match file {
        Ok(mut f) => {
            f.write_all(content.as_bytes())?;
            f.sync_all()?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

fn ensure_data_dir(settings: &Settings) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !settings.data_dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&settings.data_dir)
            .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
    }
    Ok(())
}

/// Opens the database and assembles the service (used by `serve` and the CLI alike).
/// `sqlite`, `postgres`, or `unsupported` for a URL neither accepts.
fn database_label(settings: &Settings) -> &'static str {
    Backend::from_url(settings.database_url.expose_secret()).map_or("unsupported", Backend::name)
}

pub async fn build_core(settings: &Settings, public_url: String) -> anyhow::Result<Arc<Core>> {
    ensure_data_dir(settings)?;
    // A key given or kept is checked before the database is touched; a new one is generated
    // only once the database opened. So a bad key writes nothing to the database, and a
    // start-up that cannot reach the database leaves no new key behind.
    let existing_key = existing_master_key(settings)?;
    let store = SqlStore::connect(
        settings.database_url.expose_secret(),
        PoolOptions {
            max_connections: settings.db_max_connections,
            acquire_timeout: Duration::from_secs(settings.db_acquire_timeout_secs),
            statement_timeout: (settings.db_statement_timeout_secs > 0)
                .then(|| Duration::from_secs(settings.db_statement_timeout_secs)),
        },
    )
    .await
    .map_err(|e| {
        // One clear line for operators; the error text never contains the URL or its password.
        tracing::error!(
            database = database_label(settings),
            error = %e,
            "cannot open the database at start-up"
        );
        e
    })
    .context("opening the database")?;
    let loaded = match existing_key {
        Some(key) => LoadedKey {
            key,
            generated: None,
        },
        None => new_master_key(settings)?,
    };
    let keyring = Keyring::new(&loaded.key)?;
    // A master key rotation under way: read the new key too (migrate::rotate).
    crate::migrate::rotate::follow(&store, &keyring)
        .await
        .context("following the master key rotation")?;
    let hasher = Hasher::new(
        HashCost {
            memory_kib: settings.argon2_memory_kib,
            iterations: settings.argon2_iterations,
        },
        settings.hash_workers,
        settings.hash_queue,
    )?;
    let mailer = Mailer::new(
        settings.smtp_url.as_ref(),
        &settings.mail_from,
        settings.data_dir.join("outbox"),
    )?;
    let sms = SmsGateway::new(&settings.sms_base_url, settings.data_dir.join("outbox"))?;
    let policy = Policy {
        access_token_ttl_secs: settings.access_token_ttl_secs,
        signup_code_ttl_secs: settings.signup_code_ttl_secs,
        reset_code_ttl_secs: settings.reset_code_ttl_secs,
        invite_code_ttl_secs: settings.invite_code_ttl_secs,
        code_max_attempts: settings.code_max_attempts,
        attempt_window_secs: settings.attempt_window_secs,
        login_token_ttl_secs: settings.login_token_ttl_secs,
        sms_code_ttl_secs: settings.sms_code_ttl_secs,
        sms_send_limit: settings.sms_send_limit,
        mail_send_limit: settings.mail_send_limit,
        login_max_attempts: settings.login_max_attempts,
        login_lockout_secs: settings.login_lockout_secs,
    };
    let core = Core::new(
        CoreParts {
            store: Arc::new(store),
            keyring,
            hasher,
            mailer,
            sms,
            policy,
            public_url,
        },
        now_ms(),
    )
    .await
    .map_err(|e| match &loaded.generated {
        // A key generated just now cannot open a database that already holds data: the
        // real key is missing. Leave no stray key file behind to confuse the next start.
        Some(path) => {
            let _ = std::fs::remove_file(path);
            anyhow::anyhow!(
                "starting the service: {e}: the database holds data sealed under another master \
                 key; give it with TESSERA_MASTER_KEY or TESSERA_MASTER_KEY_FILE, or restore {}",
                path.display()
            )
        }
        None => anyhow::anyhow!("starting the service: {e}"),
    })?;
    core.load_legacy_keys()
        .await
        .context("loading legacy server keys")?;
    Ok(Arc::new(core))
}

/// The router's guards as configured.
pub fn router_options(settings: &Settings) -> crate::http::RouterOptions {
    crate::http::RouterOptions {
        deadline: Duration::from_secs(settings.request_timeout_secs),
        limits: crate::http::limits::LimitSettings {
            sensitive_per_min: settings.rate_limit_per_min,
            public_per_min: settings.public_rate_limit_per_min,
            trusted_proxies: settings.trusted_proxies.clone(),
        },
    }
}

/// `tessera serve`: binds, logs the bound address, serves until SIGTERM or SIGINT.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let bound = listener.local_addr()?;
    let core = build_core(&settings, settings.public_url_or(&bound.to_string())).await?;
    crate::migrate::rotate::spawn_follower(core.clone());
    let app = crate::http::router(core, router_options(&settings));
    let service = tower::util::MapRequestLayer::new(crate::http::normalize_path).layer(app);
    tracing::info!(address = %bound, database = database_label(&settings), "listening");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut stopping = stop_rx.clone();
    let server = axum::serve(
        listener,
        service.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let mut rx = stop_rx;
        let _ = rx.wait_for(|stop| *stop).await;
    });
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    // In-flight requests get their deadline to finish; a client that never completes its
    // request (headers sent a byte at a time, say) cannot hold the shutdown beyond it.
    let grace = Duration::from_secs(settings.request_timeout_secs + 1);
    tokio::select! {
        served = server => served?,
        () = async {
            let _ = stopping.wait_for(|stop| *stop).await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(grace_secs = grace.as_secs(), "connections still open after the grace period; stopping anyway");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            std::future::pending::<()>().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!("shutting down");
}
