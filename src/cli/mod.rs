//! The command line: `serve`, and admin commands that call the domain directly on the
//! configured database (safe while a server runs on the same data directory).

pub mod import;
pub mod keys;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

use crate::config::Settings;
use crate::crypto::keys::RsaBits;
use crate::domain::apps::NewApp;
use crate::domain::settings::{AppSettings, SignupFlow};
use crate::http::extract::now_ms;

#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "Self-hosted identity service (CosyncJWT protocol, RS256 JWTs)"
)]
pub struct Cli {
    /// TOML configuration file; TESSERA_* environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve,
    /// Manage apps.
    #[command(subcommand)]
    App(AppCommand),
    /// Master key generation and rotation; the old CosyncJWT server key.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Import an app: a CosyncJWT export, or an archive from `tessera export`.
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Write an app (keys, settings, users with hashes) to a passphrase-sealed archive.
    Export(import::ExportArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FlowArg {
    Code,
    Link,
    None,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KeyBitsArg {
    #[value(name = "2048")]
    B2048,
    #[value(name = "3072")]
    B3072,
    #[value(name = "4096")]
    B4096,
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Create an app with a fresh RSA key pair; prints its id, app-token, public key and JWKS URL.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value = "code")]
        signup_flow: FlowArg,
        /// The Realm / Atlas App Services app id (the `aud` of user JWTs).
        #[arg(long)]
        realm_app_id: Option<String>,
        #[arg(long, value_enum, default_value = "2048")]
        key_bits: KeyBitsArg,
    },
    /// List apps.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Change settings: --set NAME=VALUE (VALUE is JSON for structured settings).
    Update {
        app_id: String,
        #[arg(long = "set", value_name = "NAME=VALUE", required = true)]
        set: Vec<String>,
    },
    /// Show one app's settings.
    Show { app_id: String },
    /// Store the app's own template for a message name and locale (spec §6.1 names:
    /// signUp, signUpLink, clickThrough, resetPassword, invite, qrCode, sms, signUpSuccess).
    SetTemplate {
        app_id: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "EN")]
        locale: String,
        #[arg(long)]
        subject: String,
        /// File with the HTML body; placeholders %HANDLE%, %CODE%, %APP_NAME%, %LINK%.
        #[arg(long, value_name = "FILE")]
        html_file: PathBuf,
        /// Text of the link that %LINK% becomes.
        #[arg(long)]
        link_text: Option<String>,
    },
}

/// Runs a non-server command; returns the process exit code.
pub async fn run_app_command(settings: &Settings, cmd: AppCommand) -> anyhow::Result<()> {
    let public_url = settings.public_url_or(&settings.listen);
    if settings.public_url.is_none() && settings.listen.ends_with(":0") {
        eprintln!(
            "tessera: warning: the listen port is 0, so URLs printed here carry no usable port; \
             set TESSERA_PUBLIC_URL to the address clients reach"
        );
    }
    let core = crate::server::build_core(settings, public_url).await?;
    let now = now_ms();
    match cmd {
        AppCommand::Create {
            name,
            signup_flow,
            realm_app_id,
            key_bits,
        } => {
            let settings = AppSettings {
                signup_flow: match signup_flow {
                    FlowArg::Code => SignupFlow::Code,
                    FlowArg::Link => SignupFlow::Link,
                    FlowArg::None => SignupFlow::None,
                },
                realm_app_id: realm_app_id.unwrap_or_default(),
                ..AppSettings::default()
            };
            let key_bits = match key_bits {
                KeyBitsArg::B2048 => RsaBits::B2048,
                KeyBitsArg::B3072 => RsaBits::B3072,
                KeyBitsArg::B4096 => RsaBits::B4096,
            };
            let created = core
                .create_app(
                    NewApp {
                        name,
                        settings,
                        key_bits,
                    },
                    now,
                )
                .await
                .map_err(|e| anyhow::anyhow!("creating the app: {e}"))?;
            println!("{}", serde_json::to_string(&created)?);
        }
        AppCommand::List { json } => {
            let apps = core.list_apps().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            if json {
                let list: Vec<_> = apps
                    .iter()
                    .map(|a| serde_json::json!({"appId": a.id(), "name": a.row.name, "status": a.row.status, "signupFlow": a.settings.signup_flow}))
                    .collect();
                println!("{}", serde_json::to_string(&list)?);
            } else {
                println!("{:<32}  {:<9}  {:<6}  NAME", "APP ID", "STATUS", "FLOW");
                for a in apps {
                    let flow = serde_json::to_value(a.settings.signup_flow)?;
                    println!(
                        "{:<32}  {:<9}  {:<6}  {}",
                        a.id(),
                        a.row.status,
                        flow.as_str().unwrap_or(""),
                        a.row.name
                    );
                }
            }
        }
        AppCommand::Update { app_id, set } => {
            let changes = set
                .iter()
                .map(|s| {
                    s.split_once('=')
                        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
                        .with_context(|| format!("--set {s:?}: expected NAME=VALUE"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let app = core.update_app(&app_id, &changes, now).await?;
            println!(
                "{}",
                serde_json::to_string(
                    &core
                        .application_view(app.id())
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?
                )?
            );
        }
        AppCommand::SetTemplate {
            app_id,
            name,
            locale,
            subject,
            html_file,
            link_text,
        } => {
            let html = std::fs::read_to_string(&html_file)
                .with_context(|| format!("reading {}", html_file.display()))?;
            let row = crate::store::TemplateRow {
                app_id: app_id.clone(),
                name: name.clone(),
                locale: locale.clone(),
                subject,
                html,
                link_text: link_text.unwrap_or_else(|| "LINK".into()),
                updated_at: now,
            };
            core.put_template(&row)
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "template {name}/{locale} for app {app_id}: {e} (names: {:?}; the locale must be one of the app's)",
                        crate::notify::templates::TEMPLATE_NAMES
                    )
                })?;
            println!("stored template {name} ({locale}) for app {app_id}");
        }
        AppCommand::Show { app_id } => {
            let view = core.application_view(&app_id).await.map_err(|e| match e {
                crate::domain::Error::AppNotFound => anyhow::anyhow!("no app with id {app_id}"),
                e => anyhow::anyhow!("app {app_id}: {e}"),
            })?;
            println!("{}", serde_json::to_string_pretty(&view)?);
        }
    }
    Ok(())
}
