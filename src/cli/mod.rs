//! The command line: `serve`, and admin commands. Every admin command goes through the admin
//! API: in process on the configured database (safe while a server runs on it), or with
//! `--server URL --token T` over HTTP. Human tables by default, `--json` for scripts.

mod client;
mod commands;
pub mod import;
pub mod keys;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

pub use client::AdminClient;
pub use commands::run;

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

/// Where admin commands go, and how they print.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// A running server's base URL: the command goes over its admin API.
    #[arg(long, global = true, env = "TESSERA_ADMIN_URL", value_name = "URL")]
    pub server: Option<String>,
    /// Admin token for --server.
    #[arg(
        long,
        global = true,
        env = "TESSERA_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve,
    /// Manage apps.
    App {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        cmd: AppCommand,
    },
    /// Manage an app's users.
    User {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        cmd: UserCommand,
    },
    /// Manage an app's pending signups.
    Signup {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        cmd: SignupCommand,
    },
    /// Manage an app's invitations.
    Invite {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        cmd: InviteCommand,
    },
    /// Read the audit log.
    Audit {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        cmd: AuditCommand,
    },
    /// Server administration: admin tokens.
    Admin {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        cmd: AdminCommand,
    },
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

impl KeyBitsArg {
    pub fn bits(self) -> u32 {
        match self {
            Self::B2048 => 2048,
            Self::B3072 => 3072,
            Self::B4096 => 4096,
        }
    }
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
    List,
    /// Show one app: settings, status, keys, which secrets are set, counts.
    Show { app_id: String },
    /// Change settings: --set NAME=VALUE (VALUE is JSON for structured settings).
    Update {
        app_id: String,
        #[arg(long = "set", value_name = "NAME=VALUE", required = true)]
        set: Vec<String>,
    },
    /// Suspend an app (its CosyncJWT routes answer 402; getApplication shows the status).
    Suspend { app_id: String },
    /// Reactivate a suspended app.
    Activate { app_id: String },
    /// Delete an app with all its users and data.
    Delete {
        app_id: String,
        /// Confirms the deletion.
        #[arg(long)]
        yes: bool,
    },
    /// A new signing key; the old one stays published while retiring (at most three).
    RotateKey {
        app_id: String,
        #[arg(long, value_enum, default_value = "2048")]
        key_bits: KeyBitsArg,
    },
    /// Users, anonymous users, pending signups, invites.
    Stats { app_id: String },
    /// The app's own templates.
    Templates { app_id: String },
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

/// A user, by id or by exact handle or user name.
#[derive(Debug, Clone, Args)]
pub struct UserRef {
    pub app_id: String,
    /// The user's id (see `user list`), a handle (anything with `@`), or with --by the kind.
    pub user: String,
    #[arg(long, value_enum, default_value = "id")]
    pub by: UserBy,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum UserBy {
    Id,
    Handle,
    UserName,
}

#[derive(Debug, Clone, Args)]
pub struct PageArgs {
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
    #[arg(long, default_value_t = 0)]
    pub offset: i64,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// List users, oldest first.
    List {
        app_id: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one user.
    Show(UserRef),
    /// Suspend a user (every token revoked).
    Suspend(UserRef),
    /// Reactivate a user.
    Activate(UserRef),
    /// Delete a user.
    Delete {
        #[command(flatten)]
        user: UserRef,
        #[arg(long)]
        yes: bool,
    },
    /// Set declared metadata fields: --meta '{"user_data":{"name":"Ann"}}'.
    SetMetadata {
        #[command(flatten)]
        user: UserRef,
        #[arg(long, value_name = "JSON")]
        meta: String,
    },
    /// Mail the user a password-reset code.
    ResetPassword(UserRef),
    /// Switch the user's second factors off.
    Disable2fa(UserRef),
}

#[derive(Debug, Subcommand)]
pub enum SignupCommand {
    /// List pending signups.
    List {
        app_id: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Mail a pending signup a new code.
    Resend { app_id: String, handle: String },
    /// Remove a pending signup.
    Remove { app_id: String, handle: String },
}

#[derive(Debug, Subcommand)]
pub enum InviteCommand {
    /// List pending invites.
    List {
        app_id: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Invite handles (repeat --handle), or every line of --file (one handle per line).
    Create {
        app_id: String,
        #[arg(long = "handle")]
        handles: Vec<String>,
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Invite metadata for every invite (JSON object).
        #[arg(long, value_name = "JSON")]
        meta: Option<String>,
        #[arg(long)]
        locale: Option<String>,
    },
    /// Mail a handle's pending invites again with new codes.
    Resend { app_id: String, handle: String },
    /// Remove a handle's pending invites.
    Remove { app_id: String, handle: String },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Audit events, newest first.
    List {
        #[arg(long)]
        app: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        outcome: Option<String>,
        /// Only events at or after this Unix time in milliseconds.
        #[arg(long)]
        from: Option<i64>,
        /// Only events at or before this Unix time in milliseconds.
        #[arg(long)]
        to: Option<i64>,
        #[command(flatten)]
        page: PageArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Admin tokens for the admin API.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once and stored only as a hash.
    Create {
        #[arg(long, default_value = "admin")]
        name: String,
        #[arg(long)]
        expires_in_days: Option<i64>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke { id: String },
}
