//! `tessera keys ...`: a new master key, master key rotation, the old CosyncJWT server key.

use anyhow::Context;
use clap::Subcommand;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Settings;
use crate::crypto::{Keyring, MasterKey};
use crate::http::extract::now_ms;
use crate::migrate::rotate::{Progress, RotateOptions};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a new random master key (32 bytes, base64) to a new file with mode 0600.
    GenerateMaster {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Re-seal every encrypted value and re-key every blind index under the key in FILE, in
    /// batches, while servers keep running; resumes where a stopped rotation left off.
    RotateMaster {
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
        /// Rows per batch (progress is saved after each).
        #[arg(long, default_value_t = 500)]
        batch_size: i64,
        /// Pause after each batch, in milliseconds, to leave the database to the servers.
        #[arg(long, default_value_t = 0)]
        pause_ms: u64,
        /// Seconds to wait, when a rotation starts, for running servers to load the new key
        /// (they look every 2 s) before anything is re-sealed.
        #[arg(long, default_value_t = 5)]
        grace_secs: u64,
    },
    /// Show the state of the master key rotation (JSON).
    RotationStatus,
    /// Accept app-tokens signed by the CosyncJWT server Tessera replaces (its PUBLIC key,
    /// PEM or base64 of PEM; `-` reads standard input). Only app-tokens (scope "app") are
    /// accepted, never its access-tokens. Running servers load it within seconds.
    ImportLegacyServerKey {
        #[arg(long, value_name = "PEM_FILE")]
        public_key: PathBuf,
    },
}

pub async fn run(settings: &Settings, cmd: KeysCommand) -> anyhow::Result<()> {
    if let KeysCommand::GenerateMaster { out } = &cmd {
        return generate(out);
    }
    let core =
        crate::server::build_core(settings, settings.public_url_or(&settings.listen)).await?;
    match cmd {
        KeysCommand::GenerateMaster { .. } => Ok(()),
        KeysCommand::RotateMaster {
            new_key_file,
            batch_size,
            pause_ms,
            grace_secs,
        } => {
            let text = std::fs::read_to_string(&new_key_file)
                .with_context(|| format!("reading {}", new_key_file.display()))?;
            let new = MasterKey::from_base64(&text)
                .with_context(|| format!("new master key file {}", new_key_file.display()))?;
            let opts = RotateOptions {
                batch: batch_size.clamp(1, 10_000),
                pause: Duration::from_millis(pause_ms),
                grace: Duration::from_secs(grace_secs),
            };
            let mut bar = Bar::new();
            let summary =
                crate::migrate::rotate::rotate(&core, &new, opts, now_ms, |p| bar.show(p))
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            bar.finish();
            let detail = format!(
                "key id {:08x} -> {:08x}, {} values re-sealed",
                summary.old_kid, summary.new_kid, summary.resealed
            );
            audit(&core, "admin.keys.rotate_master", &detail).await;
            println!(
                "master key rotation complete: {} values re-sealed{}, {} outstanding codes and invites \
                 removed (they cannot be re-keyed); key id {:08x} -> {:08x}.\n\
                 Now restart every node with TESSERA_MASTER_KEY_FILE={} (the old key is then no longer needed).",
                summary.resealed,
                if summary.resumed { " (resumed)" } else { "" },
                summary.dropped,
                summary.old_kid,
                summary.new_kid,
                new_key_file.display()
            );
            Ok(())
        }
        KeysCommand::RotationStatus => {
            let state = core
                .store
                .rotation_get()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let v = match state {
                None => {
                    serde_json::json!({"rotation": null, "keyId": format!("{:08x}", core.keyring.current_id())})
                }
                Some(r) => serde_json::json!({
                    "oldKeyId": format!("{:08x}", r.old_kid),
                    "newKeyId": format!("{:08x}", r.new_kid),
                    "phase": r.phase,
                    "done": r.done,
                    "startedAt": r.started_at,
                    "finishedAt": r.finished_at,
                    "newKeyStillStored": r.sealed_new.is_some(),
                }),
            };
            println!("{v}");
            Ok(())
        }
        KeysCommand::ImportLegacyServerKey { public_key } => {
            let pem = read_input(&public_key)?;
            let (kid, new) = core
                .import_legacy_server_key(&pem, now_ms())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            audit(&core, "admin.keys.import_legacy_server_key", &kid).await;
            println!(
                "{} legacy server key {kid}: app-tokens it signed (scope \"app\") are accepted \
                 (running servers load it within seconds)",
                if new { "imported" } else { "already imported:" }
            );
            Ok(())
        }
    }
}

async fn audit(core: &crate::domain::Core, action: &str, detail: &str) {
    core.audit(
        crate::domain::Audit {
            app_id: None,
            user_id: None,
            action,
            outcome: "success",
            ip: None,
            detail: Some(detail),
        },
        now_ms(),
    )
    .await;
}

fn read_input(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        return Ok(s);
    }
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    anyhow::ensure!(len <= 64 * 1024, "{}: too large for a key", path.display());
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn generate(out: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let key = MasterKey::generate()?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| format!("creating {}", out.display()))?;
    f.write_all(format!("{}\n", key.to_base64()).as_bytes())?;
    f.sync_all()?;
    println!(
        "wrote a new master key (key id {:08x}) to {}",
        Keyring::id_of(&key)?,
        out.display()
    );
    Ok(())
}

/// A progress bar on a terminal; one line per batch otherwise (logs, tests).
struct Bar {
    tty: bool,
    last: Option<Progress>,
}

impl Bar {
    fn new() -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            last: None,
        }
    }

    fn show(&mut self, p: &Progress) {
        let total = p.total.max(1);
        let pct = (p.done.min(total) * 100) / total;
        let mut err = std::io::stderr();
        if self.tty {
            let filled = usize::try_from(pct / 4).unwrap_or(0);
            let _ = write!(
                err,
                "\r[{:<25}] {pct:>3}% {}/{} ({})   ",
                "#".repeat(filled),
                p.done,
                p.total,
                p.table
            );
        } else {
            let _ = writeln!(err, "rotated {}/{} ({})", p.done, p.total, p.table);
        }
        let _ = err.flush();
        self.last = Some(p.clone());
    }

    fn finish(&self) {
        if self.tty && self.last.is_some() {
            eprintln!();
        }
    }
}
