//! The command line as clap parses it: each subcommand declares only the
//! flags it reads (so its `--help` lists only those), every flag carries
//! its description, and values that have a grammar (log level, listen
//! address) are checked while parsing, so a typo exits 2 with the accepted
//! values instead of being silently ignored.
//!
//! The flags of `serve` are also accepted before any subcommand
//! (`hostmedic --config F serve`, `hostmedic --config F approve ID`): that is
//! how the systemd unit and the docs spell them. A flag given after the
//! subcommand wins over the same flag given before it.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `--version`: the package version, the Git revision and the build date
/// (`build.rs`; "unknown" when built outside a Git checkout).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("HOSTMEDIC_GIT_REVISION"),
    ", built ",
    env!("HOSTMEDIC_BUILD_DATE"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "hostmedic",
    version = VERSION,
    about = "Prometheus exporter and Alertmanager webhook receiver that heals a Linux host")]
pub struct Cli {
    /// The flags of `serve` (the default subcommand).
    #[command(flatten)]
    pub top: ServeArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `--config`.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArg {
    /// Configuration file (TOML). Default: $HOSTMEDIC_CONFIG, else
    /// /etc/hostmedic/hostmedic.toml for approve, clear-hold and incidents
    /// when it exists, else the embedded default.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `--web.config.file`.
#[derive(Debug, Clone, Default, Args)]
pub struct WebConfigArg {
    /// Web configuration file (YAML, the exporter-toolkit format): TLS,
    /// client certificates, basic auth and response headers; see
    /// docs/security.md. Default: $HOSTMEDIC_WEB_CONFIG.
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config: Option<PathBuf>,
}

/// `--log.level` and `--log.format`.
#[derive(Debug, Clone, Default, Args)]
pub struct LogArgs {
    /// Only log lines at this level or more severe [default: info].
    #[arg(long = "log.level", value_enum, value_name = "LEVEL")]
    pub level: Option<LogLevel>,
    /// Log line format (logs go to stderr) [default: logfmt].
    #[arg(long = "log.format", value_enum, value_name = "FORMAT")]
    pub format: Option<LogFormat>,
}

/// The flags of `serve`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub web_config: WebConfigArg,
    /// Address to listen on, overriding `web.listen_address`: host:port,
    /// `:port` (every interface) or `name:port` (resolved), as node_exporter.
    #[arg(long = "web.listen-address", value_name = "ADDR", value_parser = parse_listen_address)]
    pub listen_address: Option<SocketAddr>,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the exporter and webhook receiver (the default).
    Serve(ServeArgs),
    /// Validate a configuration file and print the effective configuration.
    CheckConfig {
        /// File to check (defaults to --config, else the embedded default).
        file: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        web_config: WebConfigArg,
    },
    /// Run one collection and print it to stdout in the Prometheus text format.
    Collect {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Render the incident journal (`receiver.journal_path`) as markdown or JSON.
    Incidents {
        /// Only entries newer than a duration ago (`2h`, `7d`) or an RFC 3339 timestamp.
        #[arg(long)]
        since: Option<String>,
        /// Output format: markdown for people, JSON for programs.
        #[arg(long, value_enum, default_value_t = IncidentFormat::Md)]
        format: IncidentFormat,
        /// Only the incidents not resolved (still firing, held, waiting for approval).
        #[arg(long)]
        open: bool,
        /// Journal file (defaults to `receiver.journal_path`).
        #[arg(long, value_name = "FILE")]
        journal: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Approve a pending notify-only remediation on the running hostmedic.
    Approve {
        /// The action id from the notification or the journal (e.g. `a42`).
        id: String,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Clear the hold on a target (after its remediation budget was spent).
    ClearHold {
        /// Target key as in the journal/status, e.g. `systemd:system:worker.service`.
        target: String,
        #[command(flatten)]
        control: ControlArgs,
    },
}

/// The flags of `approve` and `clear-hold`.
#[derive(Debug, Clone, Args)]
pub struct ControlArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub web_config: WebConfigArg,
    #[command(flatten)]
    pub client: crate::client::ClientArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum IncidentFormat {
    Md,
    Json,
}

/// Why a `--web.listen-address` value is not an address to listen on
/// (clap shows it after the flag and the value).
#[derive(Debug, thiserror::Error)]
pub enum ListenAddressError {
    #[error("{0:?}: expected a port number after ':'")]
    Port(String),
    #[error("{0:?}: expected host:port or :port")]
    Form(String),
    #[error("{address:?}: cannot resolve: {source}")]
    Resolve {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0:?}: the name has no address")]
    NoAddress(String),
}

/// `--web.listen-address` as node_exporter reads it: `host:port`, `:port`
/// for every interface, a host name resolved (its first address).
pub fn parse_listen_address(s: &str) -> Result<SocketAddr, ListenAddressError> {
    if let Some(port) = s.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| ListenAddressError::Port(s.to_string()))?;
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if !s.contains(':') {
        return Err(ListenAddressError::Form(s.to_string()));
    }
    let mut addrs = s.to_socket_addrs().map_err(|source| ListenAddressError::Resolve {
        address: s.to_string(),
        source,
    })?;
    addrs.next().ok_or_else(|| ListenAddressError::NoAddress(s.to_string()))
}

impl Cli {
    /// The subcommand (`serve` when none is given).
    pub fn subcommand(&self) -> Command {
        match &self.command {
            Some(c) => c.clone(),
            None => Command::Serve(ServeArgs::default()),
        }
    }

    /// `--config` given after the subcommand, else before it.
    pub fn config_flag(&self, sub: &ConfigArg) -> Option<PathBuf> {
        sub.config.clone().or_else(|| self.top.config.config.clone())
    }

    /// `--web.config.file` after the subcommand, else before it, else
    /// `$HOSTMEDIC_WEB_CONFIG`.
    pub fn web_config(&self, sub: &WebConfigArg) -> Option<PathBuf> {
        sub.web_config
            .clone()
            .or_else(|| self.top.web_config.web_config.clone())
            .or_else(|| {
                std::env::var_os("HOSTMEDIC_WEB_CONFIG")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
    }

    /// The log flags in force: the subcommand's, else those given before it.
    pub fn log(&self) -> (LogLevel, LogFormat) {
        let sub = match &self.command {
            Some(Command::Serve(s)) => Some(&s.log),
            Some(Command::Collect { log, .. }) => Some(log),
            _ => None,
        };
        let level = sub.and_then(|l| l.level).or(self.top.log.level);
        let format = sub.and_then(|l| l.format).or(self.top.log.format);
        (level.unwrap_or(LogLevel::Info), format.unwrap_or(LogFormat::Logfmt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent_and_every_flag_is_described() {
        let cmd = <Cli as CommandFactory>::command();
        cmd.clone().debug_assert();
        let mut missing = Vec::new();
        let mut check = |c: &clap::Command| {
            for a in c.get_arguments() {
                if a.get_help().is_none() && !matches!(a.get_id().as_str(), "help" | "version") {
                    missing.push(format!("{} {}", c.get_name(), a.get_id()));
                }
            }
        };
        check(&cmd);
        cmd.get_subcommands().for_each(&mut check);
        assert!(missing.is_empty(), "flags without a description: {missing:?}");
    }

    #[test]
    fn listen_address_like_node_exporter() {
        assert_eq!(parse_listen_address(":9877").unwrap(), "0.0.0.0:9877".parse().unwrap());
        assert_eq!(
            parse_listen_address("127.0.0.1:1").unwrap(),
            "127.0.0.1:1".parse().unwrap()
        );
        assert_eq!(parse_listen_address("[::1]:2").unwrap(), "[::1]:2".parse().unwrap());
        assert!(parse_listen_address("localhost:9877").unwrap().ip().is_loopback());
        assert!(matches!(
            parse_listen_address(":port"),
            Err(ListenAddressError::Port(_))
        ));
        assert_eq!(
            parse_listen_address("9877").unwrap_err().to_string(),
            "\"9877\": expected host:port or :port"
        );
    }

    #[test]
    fn a_flag_after_the_subcommand_wins() {
        let cli = Cli::try_parse_from(["hostmedic", "--config", "a", "approve", "--config", "b", "x"]).unwrap();
        let Command::Approve { control, .. } = cli.subcommand() else {
            panic!("approve")
        };
        assert_eq!(cli.config_flag(&control.config), Some(PathBuf::from("b")));
        let cli = Cli::try_parse_from(["hostmedic", "--config", "a", "approve", "x"]).unwrap();
        let Command::Approve { control, .. } = cli.subcommand() else {
            panic!("approve")
        };
        assert_eq!(cli.config_flag(&control.config), Some(PathBuf::from("a")));
    }

    #[test]
    fn unknown_log_level_is_refused() {
        let e = Cli::try_parse_from(["hostmedic", "--log.level=verbose"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("debug"), "{e}");
        let cli = Cli::try_parse_from(["hostmedic", "--log.level", "debug", "serve"]).unwrap();
        assert_eq!(cli.log().0, LogLevel::Debug);
    }
}
