//! The `tessera` binary: parse the command line, load settings, start logging, dispatch.

use clap::Parser;
use tessera::cli::{Cli, Command};
use tessera::config::{LogFormat, Settings};

fn init_tracing(format: LogFormat, serving: bool) {
    // Admin commands print their answer; their in-process request lines are noise there.
    let default = if serving { "info,sqlx=warn" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log file or pipe gets plain text to grep.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tessera: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    init_tracing(settings.log_format, matches!(cli.command, Command::Serve));
    let result = match cli.command {
        Command::Serve => tessera::server::serve(settings).await,
        Command::Keys(cmd) => tessera::cli::keys::run(&settings, cmd).await,
        Command::Import(cmd) => tessera::cli::import::run_import(&settings, cmd).await,
        Command::Export(args) => tessera::cli::import::run_export(&settings, args).await,
        other => tessera::cli::run(&settings, other).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
