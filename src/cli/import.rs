//! `tessera import cosync|tessera ...` and `tessera export`: moving apps between servers.

use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

use crate::config::Settings;
use crate::http::extract::now_ms;
use crate::migrate::Report;
use crate::migrate::cosync::CosyncOptions;

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import a CosyncJWT export (the admin export zip, or a folder of its CSV files): the
    /// app with its key pair and settings, users with their bcrypt hashes, second factors,
    /// pending signups and invites, templates. Re-running it creates nothing new.
    Cosync {
        path: PathBuf,
        /// Check and count everything, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// App id to use when the export carries none (it is read from appToken otherwise).
        #[arg(long)]
        app_id: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Restore an app archive written by `tessera export` (same app id, keys and users).
    Tessera {
        path: PathBuf,
        #[arg(long, value_name = "FILE")]
        passphrase_file: PathBuf,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

/// `tessera export --app ID PATH --passphrase-file FILE`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long = "app", value_name = "APP_ID")]
    pub app_id: String,
    /// Archive to write (created; never overwritten).
    pub path: PathBuf,
    /// File holding the passphrase (at least 12 characters) that seals the archive.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: PathBuf,
}

fn passphrase(path: &Path) -> anyhow::Result<String> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    anyhow::ensure!(
        len <= 4096,
        "{}: too large for a passphrase",
        path.display()
    );
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

fn print(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(())
}

pub async fn run_import(settings: &Settings, cmd: ImportCommand) -> anyhow::Result<()> {
    let core =
        crate::server::build_core(settings, settings.public_url_or(&settings.listen)).await?;
    let now = now_ms();
    let started = std::time::Instant::now();
    let (report, json) = match cmd {
        ImportCommand::Cosync {
            path,
            dry_run,
            app_id,
            json,
        } => {
            let mut report = Report::new(&path.display().to_string(), dry_run);
            let files = crate::migrate::cosync::read_files(&path, &mut report)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let plan =
                crate::migrate::cosync::plan(&files, &CosyncOptions { app_id }, &mut report, now)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            crate::migrate::apply(&core, plan, &mut report, dry_run, now)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            (report, json)
        }
        ImportCommand::Tessera {
            path,
            passphrase_file,
            dry_run,
            json,
        } => {
            let pass = passphrase(&passphrase_file)?;
            let mut report = Report::new(&path.display().to_string(), dry_run);
            let plan = crate::migrate::archive::plan(&path, &pass, &mut report)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            crate::migrate::apply(&core, plan, &mut report, dry_run, now)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            (report, json)
        }
    };
    if !report.dry_run {
        let users = report.counts.get("users").cloned().unwrap_or_default();
        let detail = format!(
            "users created {} existing {} rejected {}",
            users.created, users.existing, users.rejected
        );
        core.audit(
            crate::domain::Audit {
                app_id: report.app_id.as_deref(),
                user_id: None,
                action: "admin.import",
                outcome: "success",
                ip: None,
                detail: Some(&detail),
            },
            now,
        )
        .await;
    }
    print(&report, json)?;
    let users = report.counts.get("users").map(|c| c.read).unwrap_or(0);
    tracing::info!(
        users,
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "import finished"
    );
    Ok(())
}

pub async fn run_export(settings: &Settings, args: ExportArgs) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let pass = passphrase(&args.passphrase_file)?;
    let core =
        crate::server::build_core(settings, settings.public_url_or(&settings.listen)).await?;
    let (bytes, users) = core
        .export_app(&args.app_id, &pass, now_ms())
        .await
        .map_err(|e| anyhow::anyhow!("exporting app {}: {e}", args.app_id))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&args.path)
        .with_context(|| format!("creating {}", args.path.display()))?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    let detail = format!("users {users}");
    core.audit(
        crate::domain::Audit {
            app_id: Some(&args.app_id),
            user_id: None,
            action: "admin.export",
            outcome: "success",
            ip: None,
            detail: Some(&detail),
        },
        now_ms(),
    )
    .await;
    println!(
        "exported app {} ({users} users) to {}, sealed with the passphrase",
        args.app_id,
        args.path.display()
    );
    Ok(())
}
