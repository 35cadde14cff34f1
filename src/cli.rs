//! Command-line interface: flags in the exporter convention, subcommands, and
//! logging set-up.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "hostmedic",
    version,
    about = "Prometheus exporter and Alertmanager webhook receiver that heals a Linux host"
)]
pub struct Cli {
    /// Configuration file (TOML). Without it the embedded default is used.
    #[arg(long, global = true, env = "HOSTMEDIC_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address to listen on (overrides `web.listen_address`).
    #[arg(long = "web.listen-address", global = true)]
    pub listen_address: Option<SocketAddr>,

    /// Log level: error, warn, info, debug, trace (or a tracing filter).
    #[arg(long = "log.level", global = true, default_value = "info")]
    pub log_level: String,

    /// Log format.
    #[arg(long = "log.format", global = true, value_enum, default_value_t = LogFormat::Logfmt)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the exporter and webhook receiver (the default).
    Serve,
    /// Validate a configuration file and print the effective configuration.
    CheckConfig {
        /// File to check (defaults to --config, else the embedded default).
        file: Option<PathBuf>,
    },
    /// Run one collection and print it to stdout in the Prometheus text format.
    Collect,
}

fn init_logging(cli: &Cli) -> anyhow::Result<()> {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .with_context(|| format!("invalid --log.level {:?}", cli.log_level))?;
    let registry = tracing_subscriber::registry().with(filter);
    match cli.log_format {
        LogFormat::Logfmt => registry
            .with(tracing_logfmt::builder().layer().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
    }
    .context("installing the logger")?;
    Ok(())
}

/// Entry point behind `main`.
pub fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    crate::install_crypto_provider();
    init_logging(&cli)?;
    match &cli.command {
        Some(Command::CheckConfig { file }) => {
            let path = file.as_ref().or(cli.config.as_ref());
            match Config::load(path.map(|p| p.as_path())) {
                Ok(cfg) => {
                    print!("{}", cfg.to_toml());
                    eprintln!("config OK");
                    Ok(std::process::ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("config invalid: {e}");
                    Ok(std::process::ExitCode::FAILURE)
                }
            }
        }
        Some(Command::Collect) => {
            let cfg = load(&cli)?;
            let rt = runtime()?;
            rt.block_on(async {
                let app = App::new(cfg)?;
                let set = app.scrape().await;
                print!("{}", set.encode_classic());
                anyhow::Ok(())
            })?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        None | Some(Command::Serve) => {
            let cfg = load(&cli)?;
            runtime()?.block_on(serve(cfg))?;
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

fn load(cli: &Cli) -> anyhow::Result<Config> {
    let mut cfg = Config::load(cli.config.as_deref()).context("loading configuration")?;
    if let Some(addr) = cli.listen_address {
        cfg.web.listen_address = addr;
    }
    Ok(cfg)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

/// `hostmedic serve`: bind, start background work, serve until SIGTERM/SIGINT.
pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    let addr = cfg.web.listen_address;
    let app = App::new(cfg)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let shutdown = CancellationToken::new();
    app.runner.spawn_background(&shutdown);
    tokio::spawn(signal_shutdown(shutdown.clone()));
    tracing::info!(address = %local, version = env!("CARGO_PKG_VERSION"), "listening");
    crate::server::run(listener, app, shutdown).await
}

async fn signal_shutdown(token: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers; stop hostmedic with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    token.cancel();
}
