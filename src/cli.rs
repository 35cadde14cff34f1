//! Command-line interface: the subcommands, where each finds its
//! configuration, and logging set-up; the flags themselves are in
//! [`flags`].

mod flags;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

use crate::app::{App, Source};
use crate::config::Config;
use crate::invocation::{config_from_env, locate_config};
use flags::{Cli, Command, ControlArgs, IncidentFormat, LogFormat, LogLevel};

pub use flags::{VERSION, parse_listen_address};

fn init_logging((level, format): (LogLevel, LogFormat)) -> anyhow::Result<()> {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_new(level.as_str()).context("log level")?;
    let registry = tracing_subscriber::registry().with(filter);
    match format {
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
pub fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    crate::install_crypto_provider();
    init_logging(cli.log())?;
    match cli.subcommand() {
        Command::CheckConfig {
            file,
            config,
            web_config,
        } => {
            let path = file.or_else(|| config_from_env(cli.config_flag(&config)));
            let web_config = cli.web_config(&web_config);
            Ok(check_config(&crate::judge::Inputs {
                config: path.as_deref(),
                web_config: web_config.as_deref(),
                listen_address: cli.top.listen_address,
            }))
        }
        Command::Collect { config, .. } => {
            let cfg = load(config_from_env(cli.config_flag(&config)), &cli)?;
            runtime()?.block_on(async {
                let app = App::new(cfg)?;
                print!("{}", app.scrape().await.encode_classic());
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Incidents {
            since,
            format,
            open,
            journal,
            config,
        } => {
            let path = locate_config(cli.config_flag(&config));
            crate::invocation::set(path.as_deref(), cli.web_config(&Default::default()).as_deref());
            incidents(&cli, path, since.as_deref(), format, open, journal)
        }
        Command::Approve { id, control } => {
            let path = format!("/api/v1/actions/{}/approve", crate::http::percent_encode(&id));
            control_request(&cli, &control, &path)
        }
        Command::ClearHold { target, control } => {
            let path = format!("/api/v1/holds/{}/clear", crate::http::percent_encode(&target));
            control_request(&cli, &control, &path)
        }
        Command::Serve(args) => {
            let config = config_from_env(cli.config_flag(&args.config));
            let web_config = cli.web_config(&args.web_config);
            let listen_address = args.listen_address.or(cli.top.listen_address);
            // The same judge, with the same inputs, as `check-config`.
            let verdict = crate::judge::judge(&crate::judge::Inputs {
                config: config.as_deref(),
                web_config: web_config.as_deref(),
                listen_address,
            });
            eprint!("{}", verdict.report());
            let errors = verdict.errors().count();
            let Ok(cfg) = verdict.accepted() else {
                eprintln!(
                    "refusing to start: {errors} error(s) in the configuration (`hostmedic check-config` reports the same)"
                );
                return Ok(ExitCode::FAILURE);
            };
            let source = Source {
                path: config.clone(),
                listen_address,
            };
            let web = crate::web::Layer::load(web_config.as_deref()).with_context(|| {
                let file = web_config.as_deref().unwrap_or(Path::new(""));
                format!("loading --web.config.file {}", file.display())
            })?;
            crate::invocation::set(config.as_deref(), web_config.as_deref());
            runtime()?.block_on(serve(cfg, source, web))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// An error and its causes on one line, each cause once: a cause whose
/// text its context already shows (`reading config file F: <cause>`) is not
/// repeated.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut last = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !last.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        last = text;
    }
    out
}

/// `check-config`: the same judge, with the same inputs, as `serve` at
/// start ([`crate::judge`]); every finding, then the effective config.
fn check_config(inputs: &crate::judge::Inputs<'_>) -> ExitCode {
    let verdict = crate::judge::judge(inputs);
    eprint!("{}", verdict.report());
    let errors = verdict.errors().count();
    match verdict.accepted() {
        Ok(cfg) => {
            print!("{}", cfg.to_toml());
            if inputs.web_config.is_some() {
                eprintln!("web config OK");
            }
            eprintln!("config OK");
            ExitCode::SUCCESS
        }
        Err(_) => {
            eprintln!("config invalid: {errors} error(s)");
            ExitCode::FAILURE
        }
    }
}

/// The configuration at `path` (the embedded default without one), with
/// `--web.listen-address` given before the subcommand.
fn load(path: Option<PathBuf>, cli: &Cli) -> anyhow::Result<Config> {
    let source = Source {
        path,
        listen_address: cli.top.listen_address,
    };
    source.load().context("loading configuration")
}

/// What a person reads when a configuration was chosen for them.
fn config_origin(path: Option<&Path>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None => format!(
            "the embedded default (no --config, no ${}, no {})",
            crate::invocation::CONFIG_ENV,
            crate::invocation::PACKAGED_CONFIG
        ),
    }
}

/// `incidents`: the journal the configuration names (or `--journal`),
/// rendered; a journal that does not exist is an error, not "0 incidents".
fn incidents(
    cli: &Cli,
    config: Option<PathBuf>,
    since: Option<&str>,
    format: IncidentFormat,
    open: bool,
    journal: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    use crate::receiver::incidents;
    let cfg = load(config.clone(), cli)?;
    let path = journal.unwrap_or(cfg.receiver.journal_path.clone());
    if !path.exists() {
        anyhow::bail!(
            "no journal at {} (configuration: {}{}); pass the configuration the running hostmedic uses \
             (--config FILE or ${}) or the journal itself (--journal FILE)",
            path.display(),
            config_origin(config.as_deref()),
            if cfg.receiver.enabled {
                ""
            } else {
                ", where the receiver is off"
            },
            crate::invocation::CONFIG_ENV,
        );
    }
    let since = since
        .map(|s| incidents::parse_since(s, crate::time::now()))
        .transpose()?;
    let (entries, warnings) = incidents::load(&path, since)?;
    let shown = path.display().to_string();
    match (format, open) {
        (IncidentFormat::Md, false) => print!("{}", incidents::markdown(&entries, &shown, since, warnings)),
        (IncidentFormat::Md, true) => print!("{}", incidents::markdown_open(&entries, &shown, since, warnings)),
        (IncidentFormat::Json, open) => println!("{}", incidents::json(&entries, open)?),
    }
    Ok(ExitCode::SUCCESS)
}

/// POSTs to a control endpoint of the running hostmedic with the configured
/// credentials; prints the answer.
fn control_request(cli: &Cli, args: &ControlArgs, path: &str) -> anyhow::Result<ExitCode> {
    let config = locate_config(cli.config_flag(&args.config));
    let cfg = load(config.clone(), cli)?;
    let web_config = cli.web_config(&args.web_config);
    let client = crate::client::Control::new(&cfg, web_config.as_deref(), &args.client)?;
    let (status, body) = runtime()?
        .block_on(client.post(path))
        .with_context(|| format!("configuration: {}", config_origin(config.as_deref())))?;
    print!("{body}");
    if status.is_success() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("hostmedic answered {status}");
    if status == reqwest::StatusCode::UNAUTHORIZED {
        eprintln!(
            "hint: the credentials come from the configuration ({}); pass the one the running hostmedic uses \
             (--config FILE or ${})",
            config_origin(config.as_deref()),
            crate::invocation::CONFIG_ENV
        );
    }
    Ok(ExitCode::FAILURE)
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
    // `cfg` passed the judge (`crate::judge`), the start-up checks included.
    let addr = cfg.web.listen_address;
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
    tracing::info!(address = %local, tls = web.tls_enabled(), version = VERSION, "listening");
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
