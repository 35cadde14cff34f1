//! `probes` collector: HTTP and command health checks, each run in the
//! background on its own interval with its last result cached for scrapes.
//!
//! Command probes run an argv through [`crate::command`] (no shell, a new
//! process group) with an environment of `PATH` only, stdin from /dev/null
//! and stdout discarded; at the timeout the whole group gets SIGKILL, so a
//! hanging check (and whatever it spawned) never outlives its timeout. A missing executable is
//! reported as success 0, exit code -1, with one log line per change.
//!
//! HTTPS probes also report the earliest expiry of the certificates the
//! server presented ([`tls`]), so a renewal that silently stopped is seen
//! weeks before the probe starts failing, and still once it has failed.
//! A `ca_file` may name the server's own self-signed certificate
//! ([`ca_file`]). A failed run's error carries its whole cause chain
//! ([`crate::error::chain`]: "Connection refused", "invalid peer
//! certificate: UnknownIssuer").

pub mod ca_file;
pub mod delegate;
pub mod tls;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::collector::{CollectError, Collector};
use crate::command::{Command, Ended};
use crate::error::ConfigError;
use crate::metrics::MetricSet;

/// `[probes]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub enabled: bool,
    /// `[[probes.http]]` entries.
    pub http: Vec<HttpProbe>,
    /// `[[probes.command]]` entries.
    pub command: Vec<CommandProbe>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            http: Vec::new(),
            command: Vec::new(),
        }
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_interval() -> Duration {
    Duration::from_secs(30)
}

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn default_path() -> String {
    DEFAULT_PATH.to_string()
}

/// One expected status code, or several.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum StatusSet {
    One(u16),
    Many(Vec<u16>),
}

impl StatusSet {
    fn codes(&self) -> &[u16] {
        match self {
            StatusSet::One(c) => std::slice::from_ref(c),
            StatusSet::Many(v) => v,
        }
    }
}

/// `[[probes.http]]`: a GET whose status must be expected.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProbe {
    /// The `probe` label; unique across all probes.
    pub name: String,
    pub url: String,
    /// Expected status code(s); default: any 2xx. Redirects are followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_status: Option<StatusSet>,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// PEM file of the CA certificate(s) an `https` URL's server is checked
    /// against, instead of the platform's roots (a private CA, a
    /// self-signed server). Absolute path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// `[[probes.command]]`: a program whose exit code 0 means healthy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandProbe {
    /// The `probe` label; unique across all probes.
    pub name: String,
    /// Program and arguments, run without a shell; a bare program name is
    /// looked up in `path`.
    pub argv: Vec<String>,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Working directory (default: hostmedic's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<PathBuf>,
    /// The only environment variable the command gets.
    #[serde(default = "default_path")]
    pub path: String,
}

impl Config {
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let mut names = HashSet::new();
        let mut check_common = |k: &str, name: &str, timeout: Duration, interval: Duration| {
            if name.trim().is_empty() {
                return Err(ConfigError::invalid(format!("{k}.name"), "must not be empty"));
            }
            if !names.insert(name.to_string()) {
                return Err(ConfigError::invalid(
                    format!("{k}.name"),
                    format!("duplicate probe name {name:?} (names are unique across http and command probes)"),
                ));
            }
            if timeout.is_zero() {
                return Err(ConfigError::invalid(format!("{k}.timeout"), "must be greater than 0"));
            }
            if interval < Duration::from_millis(100) {
                return Err(ConfigError::invalid(format!("{k}.interval"), "must be at least 100ms"));
            }
            Ok(())
        };
        for (i, p) in self.http.iter().enumerate() {
            let k = format!("{key}.http[{i}]");
            check_common(&k, &p.name, p.timeout, p.interval)?;
            let url = reqwest::Url::parse(&p.url)
                .map_err(|e| ConfigError::invalid(format!("{k}.url"), format!("invalid URL: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ConfigError::invalid(format!("{k}.url"), "scheme must be http or https"));
            }
            if let Some(ca) = &p.ca_file
                && !ca.is_absolute()
            {
                return Err(ConfigError::invalid(
                    format!("{k}.ca_file"),
                    format!("{} must be an absolute path", ca.display()),
                ));
            }
            if let Some(set) = &p.expected_status {
                if set.codes().is_empty() {
                    return Err(ConfigError::invalid(
                        format!("{k}.expected_status"),
                        "must list at least one code",
                    ));
                }
                if let Some(bad) = set.codes().iter().find(|c| !(100..=599).contains(*c)) {
                    return Err(ConfigError::invalid(
                        format!("{k}.expected_status"),
                        format!("{bad} is not an HTTP status code"),
                    ));
                }
            }
        }
        for (i, p) in self.command.iter().enumerate() {
            let k = format!("{key}.command[{i}]");
            check_common(&k, &p.name, p.timeout, p.interval)?;
            if p.argv.first().is_none_or(|a| a.is_empty()) {
                return Err(ConfigError::invalid(
                    format!("{k}.argv"),
                    "needs at least the program to run",
                ));
            }
        }
        Ok(())
    }
}

/// Why a probe run failed (the log line; metrics carry the numbers).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// `source` is without its URL (the message names it once), shown with
    /// its whole cause chain ("Connection refused", "invalid peer
    /// certificate: UnknownIssuer").
    #[error("GET {url}: {}", crate::error::chain(.source))]
    Http { url: String, source: reqwest::Error },
    #[error("GET {url}: unexpected status {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url}: no response within {timeout:?}")]
    HttpTimeout { url: String, timeout: Duration },
    #[error("cannot start {program:?}: {}", crate::error::chain(.source))]
    Spawn { program: String, source: std::io::Error },
    #[error("{program:?} exited with {status}{stderr}")]
    Exit {
        program: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("{program:?} still running after {timeout:?}; its process group was killed")]
    CommandTimeout { program: String, timeout: Duration },
    #[error("waiting for {program:?}: {}", crate::error::chain(.source))]
    Wait { program: String, source: std::io::Error },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Http,
    Command,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Command => "command",
        }
    }
}

/// The last completed run of one probe.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub success: bool,
    /// HTTP status (0: no response) or exit code (-1: killed, signalled or not started).
    pub code: i64,
    pub duration: Duration,
    /// When the run finished.
    pub at: SystemTime,
    pub error: Option<String>,
    /// The earliest notAfter (Unix seconds) of the certificates the server
    /// presented in the run's TLS handshakes, verified or not (an expired or
    /// untrusted certificate is when it matters); None without TLS.
    pub cert_not_after: Option<i64>,
}

type Results = Arc<Mutex<Vec<Option<ProbeResult>>>>;

pub struct ProbesCollector {
    http: Vec<HttpProbe>,
    command: Vec<CommandProbe>,
    /// One client per http probe (it records the probe's certificates), or
    /// why it could not be built (e.g. a host without a system trust store):
    /// then that probe fails with the reason, and hostmedic still starts and
    /// runs everything else.
    clients: Vec<Result<tls::ProbeClient, tls::TlsError>>,
    /// Indexed http probes first, then command probes; None until the first run.
    results: Results,
}

impl ProbesCollector {
    /// Checks the section ([`Config::validate`]) and builds the collector.
    pub fn new(cfg: &Config) -> Result<Self, ConfigError> {
        cfg.validate("probes")?;
        // The platform's store is loaded once, and only when a probe uses it.
        let platform = cfg.http.iter().any(|p| p.ca_file.is_none()).then(tls::platform_roots);
        let clients = cfg
            .http
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let roots = match &p.ca_file {
                    Some(ca) => Ok(tls::ca_file_roots(&format!("probes.http[{i}].ca_file"), ca)?),
                    None => platform.clone().expect("loaded when a probe has no ca_file"),
                };
                Ok(roots.and_then(tls::ProbeClient::new))
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let n = cfg.http.len() + cfg.command.len();
        Ok(ProbesCollector {
            http: cfg.http.clone(),
            command: cfg.command.clone(),
            clients,
            results: Arc::new(Mutex::new(vec![None; n])),
        })
    }

    fn probe(&self, i: usize) -> (&str, Kind) {
        if i < self.http.len() {
            (&self.http[i].name, Kind::Http)
        } else {
            (&self.command[i - self.http.len()].name, Kind::Command)
        }
    }
}

/// Runs one HTTP probe.
pub async fn run_http(client: &tls::ProbeClient, p: &HttpProbe) -> ProbeResult {
    let start = Instant::now();
    // A run cut short by the timeout may have left a record behind.
    let _ = client.take_earliest_not_after();
    let res = tokio::time::timeout(p.timeout, async {
        let resp = client.http().get(&p.url).timeout(p.timeout).send().await?;
        let status = resp.status().as_u16();
        // Read (and drop) the body so a server that hangs mid-body counts too.
        let _ = resp.bytes().await?;
        Ok::<u16, reqwest::Error>(status)
    })
    .await;
    let timed_out = || {
        let e = ProbeError::HttpTimeout {
            url: p.url.clone(),
            timeout: p.timeout,
        };
        (false, 0, Some(e.to_string()))
    };
    let (success, code, error) = match res {
        Ok(Ok(status)) => {
            let ok = match &p.expected_status {
                Some(set) => set.codes().contains(&status),
                None => (200..300).contains(&status),
            };
            let err = (!ok).then(|| {
                ProbeError::Status {
                    url: p.url.clone(),
                    status,
                }
                .to_string()
            });
            (ok, status as i64, err)
        }
        Ok(Err(e)) if e.is_timeout() => timed_out(),
        Ok(Err(e)) => (
            false,
            e.status().map(|s| s.as_u16() as i64).unwrap_or(0),
            Some(
                ProbeError::Http {
                    url: p.url.clone(),
                    source: e.without_url(),
                }
                .to_string(),
            ),
        ),
        Err(_) => timed_out(),
    };
    ProbeResult {
        success,
        code,
        duration: start.elapsed(),
        at: SystemTime::now(),
        error,
        cert_not_after: client.take_earliest_not_after(),
    }
}

/// Bytes of a failing command's stderr kept for its log line.
const STDERR_KEEP: usize = 512;

/// Runs one command probe; `shutdown` kills it early.
pub async fn run_command(p: &CommandProbe, shutdown: &CancellationToken) -> ProbeResult {
    let start = Instant::now();
    let (code, error) = match command_outcome(p, shutdown).await {
        Ok(()) => (0, None),
        Err((code, e)) => (code, Some(e.to_string())),
    };
    ProbeResult {
        success: error.is_none(),
        code,
        duration: start.elapsed(),
        at: SystemTime::now(),
        error,
        cert_not_after: None,
    }
}

async fn command_outcome(p: &CommandProbe, shutdown: &CancellationToken) -> Result<(), (i64, ProbeError)> {
    let program = p.argv[0].clone();
    let cmd = Command {
        argv: p.argv.clone(),
        env: vec![("PATH".to_string(), p.path.clone())],
        current_dir: p.working_dir.clone(),
        timeout: p.timeout,
        stdout_max: None,
        stderr_max: STDERR_KEEP,
        // A leftover grandchild holding stderr open only costs this bounded
        // wait.
        drain: Duration::from_secs(1),
        run_as: None,
    };
    let out = cmd.run(Some(shutdown)).await.map_err(|source| {
        (
            -1,
            ProbeError::Spawn {
                program: program.clone(),
                source,
            },
        )
    })?;
    let status = match out.ended {
        Ended::Exited(st) => st,
        Ended::TimedOut | Ended::Cancelled => {
            return Err((
                -1,
                ProbeError::CommandTimeout {
                    program,
                    timeout: p.timeout,
                },
            ));
        }
        Ended::WaitFailed(source) => return Err((-1, ProbeError::Wait { program, source })),
    };
    if status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr.kept);
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    let stderr = if first.is_empty() {
        String::new()
    } else {
        format!(": {first}")
    };
    Err((
        status.code().map(i64::from).unwrap_or(-1),
        ProbeError::Exit {
            program,
            status,
            stderr,
        },
    ))
}

#[async_trait]
impl Collector for ProbesCollector {
    fn name(&self) -> &'static str {
        "probes"
    }

    async fn collect(&self, out: &mut MetricSet) -> Result<(), CollectError> {
        let results = crate::sync::lock(&self.results).clone();
        for (i, r) in results.iter().enumerate() {
            let Some(r) = r else { continue }; // not run yet: no series rather than a false 0
            let (name, kind) = self.probe(i);
            let lk = [("probe", name), ("kind", kind.label())];
            out.gauge(
                "hostmedic_probe_success",
                "Whether the probe's last run succeeded.",
                &lk,
                if r.success { 1.0 } else { 0.0 },
            );
            match kind {
                Kind::Http => out.gauge(
                    "hostmedic_probe_status_code",
                    "HTTP status of the last run (0: no response).",
                    &[("probe", name)],
                    r.code as f64,
                ),
                Kind::Command => out.gauge(
                    "hostmedic_probe_exit_code",
                    "Exit code of the last run (-1: killed at timeout, killed by a signal, or not started).",
                    &[("probe", name)],
                    r.code as f64,
                ),
            }
            out.gauge(
                "hostmedic_probe_duration_seconds",
                "How long the last run took.",
                &lk,
                r.duration.as_secs_f64(),
            );
            let at = r.at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
            out.gauge(
                "hostmedic_probe_last_run_timestamp_seconds",
                "When the last run finished, Unix seconds.",
                &lk,
                at.as_secs_f64(),
            );
            if let Some(t) = r.cert_not_after {
                out.gauge(
                    "hostmedic_probe_tls_cert_not_after_timestamp_seconds",
                    "Earliest notAfter of the TLS certificates the server presented on the last run, Unix seconds.",
                    &[("probe", name)],
                    t as f64,
                );
            }
        }
        Ok(())
    }

    async fn background(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..crate::sync::lock(&self.results).len() {
            let me = self.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move { me.probe_loop(i, shutdown).await });
        }
        while tasks.join_next().await.is_some() {}
    }
}

impl ProbesCollector {
    /// Runs probe `i` every interval until shutdown; logs once per change.
    async fn probe_loop(&self, i: usize, shutdown: CancellationToken) {
        let (name, kind) = self.probe(i);
        let interval = match kind {
            Kind::Http => self.http[i].interval,
            Kind::Command => self.command[i - self.http.len()].interval,
        };
        let mut last_error: Option<String> = None;
        let mut first = true;
        loop {
            let r = match kind {
                Kind::Http => {
                    tokio::select! {
                        r = async {
                            match &self.clients[i] {
                                Ok(c) => run_http(c, &self.http[i]).await,
                                Err(e) => ProbeResult {
                                    success: false,
                                    code: 0,
                                    duration: Duration::ZERO,
                                    at: SystemTime::now(),
                                    error: Some(e.to_string()),
                                    cert_not_after: None,
                                },
                            }
                        } => r,
                        _ = shutdown.cancelled() => return,
                    }
                }
                Kind::Command => run_command(&self.command[i - self.http.len()], &shutdown).await,
            };
            if shutdown.is_cancelled() {
                return;
            }
            if r.error != last_error || first {
                match &r.error {
                    Some(e) => {
                        tracing::warn!(collector = "probes", probe = name, kind = kind.label(), error = %e, "probe failing")
                    }
                    None if !first => tracing::info!(
                        collector = "probes",
                        probe = name,
                        kind = kind.label(),
                        "probe recovered"
                    ),
                    None => {}
                }
                last_error = r.error.clone();
                first = false;
            }
            crate::sync::lock(&self.results)[i] = Some(r);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
}
