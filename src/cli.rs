//! Command-line interface: flags in the exporter convention, subcommands, and
//! logging set-up.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::app::{App, Source};
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

    /// Web configuration file (YAML, the exporter-toolkit format): TLS,
    /// client certificates, basic auth and response headers for every
    /// endpoint; see docs/security.md. `approve`/`clear-hold` read it too
    /// (https when TLS is on, the served certificate as the default CA).
    #[arg(long = "web.config.file", global = true, env = "HOSTMEDIC_WEB_CONFIG")]
    pub web_config: Option<PathBuf>,

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
    /// Render the incident journal (`receiver.journal_path`) as markdown or JSON.
    Incidents {
        /// Only entries newer than a duration ago (`2h`, `7d`) or an RFC 3339 timestamp.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, value_enum, default_value_t = IncidentFormat::Md)]
        format: IncidentFormat,
        /// Only the incidents not resolved (still firing, held, waiting for approval).
        #[arg(long)]
        open: bool,
        /// Journal file (defaults to `receiver.journal_path`).
        #[arg(long)]
        journal: Option<PathBuf>,
    },
    /// Approve a pending notify-only remediation on the running hostmedic.
    Approve {
        /// The action id from the notification or the journal (e.g. `a42`).
        id: String,
        #[command(flatten)]
        client: crate::client::ClientArgs,
    },
    /// Clear the hold on a target (after its remediation budget was spent).
    ClearHold {
        /// Target key as in the journal/status, e.g. `systemd:system:worker.service`.
        target: String,
        #[command(flatten)]
        client: crate::client::ClientArgs,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum IncidentFormat {
    Md,
    Json,
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
            let cfg = match Config::load(path.map(|p| p.as_path())) {
                Ok(cfg) => cfg,
                Err(e) => {
                    eprintln!("config invalid: {e}");
                    return Ok(std::process::ExitCode::FAILURE);
                }
            };
            if let Some(web) = &cli.web_config {
                let checked = crate::web::check(web).and_then(|w| {
                    let users: Vec<String> = w.users.keys().cloned().collect();
                    cfg.receiver.check_web_users(&users)
                });
                if let Err(e) = checked {
                    eprintln!("web config {} invalid: {e}", web.display());
                    return Ok(std::process::ExitCode::FAILURE);
                }
                eprintln!("web config OK");
            }
            print!("{}", cfg.to_toml());
            eprintln!("config OK");
            Ok(std::process::ExitCode::SUCCESS)
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
        Some(Command::Incidents {
            since,
            format,
            open,
            journal,
        }) => {
            let cfg = load(&cli)?;
            let path = journal.clone().unwrap_or(cfg.receiver.journal_path.clone());
            let since = since
                .as_deref()
                .map(|s| crate::receiver::incidents::parse_since(s, crate::time::now()))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let (entries, warnings) = crate::receiver::incidents::load(&path, since)?;
            let shown = path.display().to_string();
            match (format, open) {
                (IncidentFormat::Md, false) => print!(
                    "{}",
                    crate::receiver::incidents::markdown(&entries, &shown, since, warnings)
                ),
                (IncidentFormat::Md, true) => print!(
                    "{}",
                    crate::receiver::incidents::markdown_open(&entries, &shown, since, warnings)
                ),
                (IncidentFormat::Json, open) => {
                    println!("{}", crate::receiver::incidents::json(&entries, *open)?)
                }
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        Some(Command::Approve { id, client }) => {
            let cfg = load(&cli)?;
            let path = format!("/api/v1/actions/{}/approve", crate::http::percent_encode(id));
            control(&cfg, cli.web_config.as_deref(), client, &path)
        }
        Some(Command::ClearHold { target, client }) => {
            let cfg = load(&cli)?;
            let path = format!("/api/v1/holds/{}/clear", crate::http::percent_encode(target));
            control(&cfg, cli.web_config.as_deref(), client, &path)
        }
        None | Some(Command::Serve) => {
            let cfg = load(&cli)?;
            let web = crate::web::Layer::load(cli.web_config.as_deref()).with_context(|| {
                let file = cli.web_config.as_deref().unwrap_or(std::path::Path::new(""));
                format!("loading --web.config.file {}", file.display())
            })?;
            runtime()?.block_on(serve(cfg, source(&cli), web))?;
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

/// Where the configuration comes from (read again on reload).
fn source(cli: &Cli) -> Source {
    Source {
        path: cli.config.clone(),
        listen_address: cli.listen_address,
    }
}

fn load(cli: &Cli) -> anyhow::Result<Config> {
    source(cli).load().context("loading configuration")
}

/// POSTs to a control endpoint of the running hostmedic with the configured
/// credentials; prints the answer.
fn control(
    cfg: &Config,
    web_config: Option<&std::path::Path>,
    args: &crate::client::ClientArgs,
    path: &str,
) -> anyhow::Result<std::process::ExitCode> {
    let client = crate::client::Control::new(cfg, web_config, args)?;
    let (status, body) = runtime()?.block_on(client.post(path))?;
    print!("{body}");
    if status.is_success() {
        Ok(std::process::ExitCode::SUCCESS)
    } else {
        eprintln!("hostmedic answered {status}");
        Ok(std::process::ExitCode::FAILURE)
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

/// `hostmedic serve`: bind, start background work, serve until
/// SIGTERM/SIGINT; SIGHUP reloads `cfg` from `source` and the web config.
pub async fn serve(cfg: Config, source: Source, web: std::sync::Arc<crate::web::Layer>) -> anyhow::Result<()> {
    // First of all, before READY=1 can be sent: the default action of
    // SIGHUP, SIGTERM and SIGINT ends the process (no final checkpoint).
    use tokio::signal::unix::{SignalKind, signal};
    let hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let addr = cfg.web.listen_address;
    crate::receiver::check_listen(&cfg.receiver, addr, &web.users())?;
    let app = App::with_source(cfg, source, web.clone())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let shutdown = CancellationToken::new();
    let flush = app.spawn_background(&shutdown);
    app.spawn_first_collection(&shutdown);
    tokio::spawn(signal_shutdown(term, int, shutdown.clone()));
    tokio::spawn(reload_on_hangup(hup, app.clone(), shutdown.clone()));
    tracing::info!(address = %local, tls = web.tls_enabled(), version = env!("CARGO_PKG_VERSION"), "listening");
    // The socket is bound and listening (connections queue from here on), so
    // systemd may start what depends on us.
    notify_systemd(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("listening"),
    ]);
    let served = crate::server::serve(listener, app, web, shutdown).await;
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    // The receiver writes its last checkpoint and status file on the way out.
    if tokio::time::timeout(FLUSH_AT_EXIT, flush.wait()).await.is_err() {
        tracing::warn!(
            within = ?FLUSH_AT_EXIT,
            "state and status files not written at exit; the journal has everything and is replayed at start"
        );
    }
    served
}

/// Tells the service manager about a state change (`Type=notify` in
/// deploy/hostmedic.service). Without `NOTIFY_SOCKET` (not run by systemd)
/// this does nothing. The variable stays set: removing it would race with
/// other threads reading the environment, and children it leaks to (exec
/// actions, probes) are not heard, as systemd only accepts the main PID's
/// messages (`NotifyAccess=main`, the default).
fn notify_systemd(state: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::warn!(error = %e, "cannot notify systemd (NOTIFY_SOCKET)");
    }
}

/// How long `serve` waits at exit for the receiver's last state write.
const FLUSH_AT_EXIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Reloads the configuration on each SIGHUP until shutdown. The outcome is
/// logged and counted by [`App::reload`].
async fn reload_on_hangup(mut hup: tokio::signal::unix::Signal, app: std::sync::Arc<App>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            got = hup.recv() => if got.is_none() { return },
        }
        tracing::info!("SIGHUP received: reloading the configuration");
        let _ = app.reload().await;
    }
}

/// Cancels `token` at the first SIGTERM or SIGINT (handlers installed by
/// `serve` before it says it is ready).
async fn signal_shutdown(
    mut term: tokio::signal::unix::Signal,
    mut int: tokio::signal::unix::Signal,
    token: CancellationToken,
) {
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    token.cancel();
}
