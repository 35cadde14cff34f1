//! Docker Engine access shared by the `docker` collector and the remediation
//! actions: one way to connect (configured host, else `DOCKER_HOST`, else the
//! local socket; API version negotiated down to what the engine speaks, e.g.
//! 1.41 on Debian 12; every request under a timeout) and the few container
//! operations hostmedic needs, each returning a typed [`DockerError`].
//!
//! Every helper takes a connected [`Docker`] from [`connect`] and applies the
//! client's own timeout ([`Docker::timeout`]) as a hard deadline, so a hung
//! engine never hangs a scrape or an action.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, SystemTime};

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::ContainerSummaryStateEnum;
use bollard::models::{
    ContainerInspectResponse, ContainerStateStatusEnum, ContainerUpdateBody, HealthStatusEnum, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptions, LogsOptions, RestartContainerOptions, StartContainerOptions,
    StatsOptions, StopContainerOptions,
};
use futures::StreamExt;

/// The engine address used when neither the configuration nor `DOCKER_HOST`
/// names one.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Compose's labels, exported on `hostmedic_docker_container_info`.
pub const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";
pub const COMPOSE_SERVICE_LABEL: &str = "com.docker.compose.service";
/// Compose v2's record of a service's `depends_on`:
/// `service:condition:restart,…` (e.g. `db:service_healthy:false`).
/// Compose v1 (Debian 12's `docker-compose` 1.29) writes none.
pub const COMPOSE_DEPENDS_ON_LABEL: &str = "com.docker.compose.depends_on";

/// Why talking to the engine failed.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The unix socket does not exist: no engine on this host (or it is stopped
    /// and removed its socket).
    #[error("no Docker engine socket at {0}")]
    SocketAbsent(String),
    /// The host string is not `unix://`, `tcp://` or `http://`.
    #[error("unsupported Docker host {0:?} (use unix://, tcp:// or http://)")]
    BadHost(String),
    /// The engine did not answer within the client's timeout.
    #[error("Docker engine at {host} did not answer {what} within {timeout:?}")]
    Timeout {
        host: String,
        what: String,
        timeout: Duration,
    },
    /// The container does not exist (HTTP 404).
    #[error("container {0} not found")]
    NotFound(String),
    /// A caller passed a value the engine would not accept.
    #[error("{0}")]
    Invalid(String),
    /// Any other engine or transport error, shown with bollard's whole
    /// cause chain (its hyper errors alone say only "client error
    /// (Connect)").
    #[error("Docker engine at {host}, {what}: {}", crate::error::chain(.source))]
    Engine {
        host: String,
        what: String,
        #[source]
        source: BollardError,
    },
}

/// What the engine answers when a container changed state on its own while
/// a request about it was being carried out (a restart loop exits, or is
/// restarted by the engine, between the engine's check and its runtime
/// call). Seen from Docker 20.10's `update`: "Cannot update container …:
/// cannot update a stopped container: unknown" and "… cannot update a
/// deleted process"; 409 conflicts ("… is restarting, wait until the
/// container is running") and a dependent's "cannot join network of a non
/// running container" (or runc's "namespace path: lstat /proc/…/ns/net: no
/// such file or directory") have the same cause.
const RACED_ANSWERS: &[&str] = &[
    // The daemon's wrapper of the runtime's answer to `update`, made after
    // the new configuration was saved (and rolled back on failure): with
    // only the restart policy changed, the runtime's resource update can
    // fail only because the task changed under it ("cannot update a stopped
    // container", "… a deleted process", "task … not found").
    "cannot update container",
    "cannot update a stopped container",
    "cannot update a deleted process",
    "is restarting",
    "is not running",
    "not running",
    "cannot join network of a non running container",
    // A `network_mode: container:` sharer started as its parent exits:
    // runc finds the parent's namespace gone.
    "namespace path: lstat /proc/",
    "no such process",
];

impl DockerError {
    /// True when no engine is there at all (socket missing), as opposed to an
    /// engine that exists but fails.
    pub fn is_absent(&self) -> bool {
        matches!(self, DockerError::SocketAbsent(_))
    }

    /// True for the engine's answers that a state change racing the request
    /// produced ([`RACED_ANSWERS`], any 409 conflict): the same request,
    /// made again once the state is read again, is expected to succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            DockerError::Engine {
                source: BollardError::DockerResponseServerError { status_code, message },
                ..
            } => {
                let m = message.to_ascii_lowercase();
                *status_code == 409 || (*status_code >= 500 && RACED_ANSWERS.iter().any(|r| m.contains(r)))
            }
            _ => false,
        }
    }
}

/// The engine address to use: `configured` when non-empty, else `DOCKER_HOST`
/// when set, else [`DEFAULT_HOST`].
pub fn resolve_host(configured: &str) -> String {
    if !configured.is_empty() {
        return configured.to_string();
    }
    match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.is_empty() => h,
        _ => DEFAULT_HOST.to_string(),
    }
}

/// Checks the scheme of a host string (used by config validation too).
pub fn check_host(host: &str) -> Result<(), DockerError> {
    if host.starts_with("unix://") || host.starts_with("tcp://") || host.starts_with("http://") {
        Ok(())
    } else {
        Err(DockerError::BadHost(host.to_string()))
    }
}

/// A connected, version-negotiated client plus what the engine said about
/// itself.
#[derive(Debug, Clone)]
pub struct Connection {
    pub docker: Docker,
    /// The address actually used.
    pub host: String,
    /// Engine version (`/version` `Version`), e.g. `20.10.24+dfsg1`.
    pub version: String,
    /// The engine's maximum API version, e.g. `1.41`.
    pub api_version: String,
}

/// Where the engine is and how long a request may take: what [`connect`]
/// needs, whoever configures it (the docker collector converts its section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Configured address; empty: `DOCKER_HOST`, else [`DEFAULT_HOST`] (see [`resolve_host`]).
    pub host: String,
    /// Deadline of every request (see [`connect_to`]).
    pub timeout: Duration,
}

/// Connects to the engine `settings` name (see [`connect_to`]).
pub async fn connect(settings: impl Into<Settings>) -> Result<Connection, DockerError> {
    let s = settings.into();
    connect_to(&resolve_host(&s.host), s.timeout).await
}

/// Connects to `host` (`unix:///path`, `tcp://h:p` or `http://h:p`), asks the
/// engine for its version and negotiates the API version down to it. Every
/// later request made through the returned client has `timeout` as its
/// deadline (bollard counts whole seconds, so it is rounded up to at least 1 s).
pub async fn connect_to(host: &str, timeout: Duration) -> Result<Connection, DockerError> {
    check_host(host)?;
    let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
    let secs = secs.max(1);
    let docker = if let Some(path) = host.strip_prefix("unix://") {
        if !Path::new(path).exists() {
            return Err(DockerError::SocketAbsent(path.to_string()));
        }
        Docker::connect_with_unix(host, secs, bollard::API_DEFAULT_VERSION)
    } else {
        Docker::connect_with_http(host, secs, bollard::API_DEFAULT_VERSION)
    };
    let docker = docker.map_err(|e| engine_err(host, "connecting", e))?;
    let docker = deadline(host, "version negotiation", timeout, docker.negotiate_version()).await?;
    let v = deadline(host, "/version", timeout, docker.version()).await?;
    Ok(Connection {
        host: host.to_string(),
        version: v.version.unwrap_or_default(),
        api_version: v.api_version.unwrap_or_default(),
        docker,
    })
}

fn engine_err(host: &str, what: &str, e: BollardError) -> DockerError {
    match e {
        BollardError::SocketNotFoundError(p) => DockerError::SocketAbsent(p),
        BollardError::DockerResponseServerError { status_code: 404, .. } => DockerError::NotFound(what.to_string()),
        BollardError::RequestTimeoutError => DockerError::Timeout {
            host: host.to_string(),
            what: what.to_string(),
            timeout: Duration::ZERO,
        },
        source => DockerError::Engine {
            host: host.to_string(),
            what: what.to_string(),
            source,
        },
    }
}

/// Runs one engine request under `timeout`, mapping both kinds of failure.
async fn deadline<T>(
    host: &str,
    what: &str,
    timeout: Duration,
    fut: impl Future<Output = Result<T, BollardError>>,
) -> Result<T, DockerError> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(BollardError::RequestTimeoutError)) | Err(_) => Err(DockerError::Timeout {
            host: host.to_string(),
            what: what.to_string(),
            timeout,
        }),
        Ok(Err(e)) => Err(engine_err(host, what, e)),
    }
}

impl Connection {
    /// The per-request deadline configured at connect time.
    pub fn timeout(&self) -> Duration {
        self.docker.timeout()
    }

    async fn run<T>(&self, what: String, fut: impl Future<Output = Result<T, BollardError>>) -> Result<T, DockerError> {
        match deadline(&self.host, &what, self.timeout(), fut).await {
            // A 404 names the container, not the request.
            Err(DockerError::NotFound(_)) => Err(DockerError::NotFound(what)),
            other => other,
        }
    }

    /// Restarts a container (`POST /containers/{name}/restart`); `stop_timeout`
    /// is how long the engine waits after SIGTERM before SIGKILL (engine default
    /// when `None`). The request deadline is extended by `stop_timeout`.
    pub async fn restart_container(&self, name: &str, stop_timeout: Option<Duration>) -> Result<(), DockerError> {
        let opts = RestartContainerOptions {
            t: stop_timeout.map(|d| d.as_secs().min(i32::MAX as u64) as i32),
            signal: None,
        };
        let limit = self.stop_limit(stop_timeout);
        let docker = self.docker.clone().with_timeout(limit + Duration::from_secs(1));
        let fut = docker.restart_container(name, Some(opts));
        self.with_limit(name, "restart", limit, fut).await
    }

    /// Stops a container (`POST /containers/{name}/stop`); see
    /// [`Connection::restart_container`] for `stop_timeout`. Stopping an
    /// already stopped container succeeds.
    pub async fn stop_container(&self, name: &str, stop_timeout: Option<Duration>) -> Result<(), DockerError> {
        let opts = StopContainerOptions {
            t: stop_timeout.map(|d| d.as_secs().min(i32::MAX as u64) as i32),
            signal: None,
        };
        let limit = self.stop_limit(stop_timeout);
        let docker = self.docker.clone().with_timeout(limit + Duration::from_secs(1));
        let fut = docker.stop_container(name, Some(opts));
        self.with_limit(name, "stop", limit, fut).await
    }

    /// The engine answers a stop/restart only after the container is down,
    /// which can take the whole stop timeout (10 s engine default), then the
    /// SIGKILL and the exit event (seconds on a loaded host): the request
    /// deadline is the connection's timeout plus the stop timeout plus 10 s.
    fn stop_limit(&self, stop_timeout: Option<Duration>) -> Duration {
        self.timeout() + stop_timeout.unwrap_or(Duration::from_secs(10)) + Duration::from_secs(10)
    }

    async fn with_limit(
        &self,
        name: &str,
        verb: &str,
        limit: Duration,
        fut: impl Future<Output = Result<(), BollardError>>,
    ) -> Result<(), DockerError> {
        let what = format!("{verb} {name}");
        match tokio::time::timeout(limit, fut).await {
            Ok(Ok(())) => Ok(()),
            // 304 Not Modified: already in the requested state.
            Ok(Err(BollardError::DockerResponseServerError { status_code: 304, .. })) => Ok(()),
            Ok(Err(BollardError::DockerResponseServerError { status_code: 404, .. })) => {
                Err(DockerError::NotFound(name.to_string()))
            }
            Ok(Err(BollardError::RequestTimeoutError)) | Err(_) => Err(DockerError::Timeout {
                host: self.host.clone(),
                what,
                timeout: limit,
            }),
            Ok(Err(e)) => Err(engine_err(&self.host, &what, e)),
        }
    }

    /// Starts a stopped container. Starting a running one succeeds.
    pub async fn start_container(&self, name: &str) -> Result<(), DockerError> {
        let fut = self.docker.start_container(name, None::<StartContainerOptions>);
        match self.run(name.to_string(), fut).await {
            Err(DockerError::Engine {
                source: BollardError::DockerResponseServerError { status_code: 304, .. },
                ..
            }) => Ok(()),
            other => other,
        }
    }

    /// Sets a container's restart policy (`POST /containers/{name}/update`).
    /// `policy` is `no`, `always`, `unless-stopped` or `on-failure`;
    /// `max_retries` only applies to `on-failure`. Use
    /// [`Connection::disable_restart`] to stop a restart loop.
    pub async fn set_restart_policy(
        &self,
        name: &str,
        policy: &str,
        max_retries: Option<i64>,
    ) -> Result<(), DockerError> {
        let pname = match policy {
            "no" | "" => RestartPolicyNameEnum::NO,
            "always" => RestartPolicyNameEnum::ALWAYS,
            "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
            "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
            other => return Err(DockerError::Invalid(format!("unknown restart policy {other:?}"))),
        };
        let body = ContainerUpdateBody {
            restart_policy: Some(RestartPolicy {
                name: Some(pname),
                maximum_retry_count: max_retries.filter(|_| policy == "on-failure"),
            }),
            ..Default::default()
        };
        self.run(name.to_string(), self.docker.update_container(name, body))
            .await
    }

    /// Turns a container's restart policy off (`restart=no`), the remedy for a
    /// restart loop. The running container is left as it is.
    pub async fn disable_restart(&self, name: &str) -> Result<(), DockerError> {
        self.set_restart_policy(name, "no", None).await
    }

    /// Lists every container, running or not (`GET /containers/json?all=1`).
    pub async fn list(&self) -> Result<Vec<Listed>, DockerError> {
        let opts = ListContainersOptions {
            all: true,
            ..Default::default()
        };
        let list = self
            .run("container list".into(), self.docker.list_containers(Some(opts)))
            .await?;
        Ok(list
            .into_iter()
            .map(|c| Listed {
                name: own_name(c.names.as_deref().unwrap_or_default()).to_string(),
                id: c.id.unwrap_or_default(),
                running: c.state == Some(ContainerSummaryStateEnum::RUNNING),
                network_mode: c.host_config.and_then(|h| h.network_mode).unwrap_or_default(),
                labels: c.labels.unwrap_or_default(),
            })
            .collect())
    }

    /// Inspects one container (`GET /containers/{name}/json`).
    pub async fn inspect(&self, name: &str) -> Result<ContainerStatus, DockerError> {
        let resp = self
            .run(
                name.to_string(),
                self.docker.inspect_container(name, None::<InspectContainerOptions>),
            )
            .await?;
        Ok(ContainerStatus::from_inspect(resp))
    }

    /// The outcome of the container's last health-check probes, oldest
    /// first, as the engine keeps them (`State.Health.Log`, up to five):
    /// `(start time, exit code, output)`. Empty without a health check.
    pub async fn health_log(&self, name: &str) -> Result<Vec<HealthProbe>, DockerError> {
        let resp = self
            .run(
                name.to_string(),
                self.docker.inspect_container(name, None::<InspectContainerOptions>),
            )
            .await?;
        let log = resp
            .state
            .and_then(|s| s.health)
            .and_then(|h| h.log)
            .unwrap_or_default();
        Ok(log
            .into_iter()
            .map(|p| HealthProbe {
                start: p.start.map(|t| t.to_string()).unwrap_or_default(),
                exit_code: p.exit_code.unwrap_or(-1),
                output: p.output.unwrap_or_default(),
            })
            .collect())
    }

    /// The last `lines` lines the container wrote (stdout and stderr, with
    /// the engine's timestamps), at most `max_bytes` read. Containers with a
    /// logging driver the engine cannot read back answer an error.
    pub async fn logs_tail(&self, name: &str, lines: usize, max_bytes: usize) -> Result<Vec<String>, DockerError> {
        let opts = LogsOptions {
            stdout: true,
            stderr: true,
            timestamps: true,
            tail: lines.to_string(),
            ..Default::default()
        };
        let mut stream = self.docker.logs(name, Some(opts));
        let read = async move {
            let mut text = String::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                if text.len() >= max_bytes {
                    break;
                }
            }
            Ok(text)
        };
        let text = self.run(format!("logs {name}"), read).await?;
        Ok(text.lines().map(str::to_string).collect())
    }

    /// Current memory use of a running container from one-shot stats
    /// (`stream=false&one-shot=true`): usage minus inactive file cache, as
    /// `docker stats` shows it. One-shot skips the second CPU sample, but
    /// engine 20.10 still answers only at its stats collector's next 1 s tick,
    /// so this takes up to 1 s; the collector reads the cgroup files instead
    /// ([`crate::cgroup::process_usage`]) and uses this only as the fallback.
    pub async fn memory_usage(&self, name: &str) -> Result<Option<u64>, DockerError> {
        let opts = StatsOptions {
            stream: false,
            one_shot: true,
        };
        let mut stream = self.docker.stats(name, Some(opts));
        let first = self
            .run(format!("stats {name}"), async move { stream.next().await.transpose() })
            .await?;
        Ok(first.and_then(|s| s.memory_stats).and_then(|m| {
            let usage = m.usage?;
            let stats = m.stats.unwrap_or_default();
            Some(crate::cgroup::working_set(usage, |k| stats.get(k).copied()))
        }))
    }
}

/// One health-check probe as the engine recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthProbe {
    /// When it started (RFC 3339, as the engine wrote it).
    pub start: String,
    pub exit_code: i64,
    /// Its output (the engine keeps at most 4 KiB).
    pub output: String,
}

/// One container as the engine lists it: enough to find who depends on whom.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listed {
    pub id: String,
    /// Its own name, without the leading slash ([`own_name`]).
    pub name: String,
    pub running: bool,
    /// `HostConfig.NetworkMode`: `bridge`, `host`, `none`, a network's name,
    /// or `container:<id or name>` for one that shares another's network.
    pub network_mode: String,
    pub labels: HashMap<String, String>,
}

/// A container's own name among the names the list gives: a linked
/// container also carries names like `/other/alias`; its own is the one
/// with a single slash. Without the slash.
pub fn own_name(names: &[String]) -> &str {
    names
        .iter()
        .find(|n| n.matches('/').count() == 1)
        .or(names.first())
        .map(|n| n.trim_start_matches('/'))
        .unwrap_or_default()
}

/// A container's state as the engine's typed answer has it (bollard's
/// `ContainerStateStatusEnum`; `stopping`, only in newer engines, reads
/// `running`), kept as an enum until it is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Created,
    Running,
    Restarting,
    Paused,
    Exited,
    Dead,
    Removing,
}

impl State {
    /// The engine's spelling (metric label, messages).
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Restarting => "restarting",
            State::Paused => "paused",
            State::Exited => "exited",
            State::Dead => "dead",
            State::Removing => "removing",
        }
    }

    /// Not running and not about to: created, exited or dead.
    pub fn is_stopped(self) -> bool {
        matches!(self, State::Exited | State::Created | State::Dead)
    }
}

/// A container's health (bollard's `HealthStatusEnum`); `None` means the
/// container has no health check (distinct from `Unhealthy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Unhealthy,
    Starting,
    None,
}

impl Health {
    /// The engine's spelling (metric label, messages).
    pub const fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
            Health::Starting => "starting",
            Health::None => "none",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Container states, in the order of the one-hot `state` label.
pub const STATES: [&str; 7] = [
    State::Created.as_str(),
    State::Running.as_str(),
    State::Restarting.as_str(),
    State::Paused.as_str(),
    State::Exited.as_str(),
    State::Dead.as_str(),
    State::Removing.as_str(),
];
/// Health values, in the order of the one-hot `health` label.
pub const HEALTHS: [&str; 4] = [
    Health::Healthy.as_str(),
    Health::Unhealthy.as_str(),
    Health::Starting.as_str(),
    Health::None.as_str(),
];

/// What hostmedic needs to know about one container, from one inspect.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerStatus {
    pub id: String,
    /// Name without the leading slash.
    pub name: String,
    /// Image as the container was created with (e.g. `busybox:latest`).
    pub image: String,
    pub state: State,
    pub health: Health,
    /// Consecutive failed health checks; `None` without a health check.
    pub failing_streak: Option<i64>,
    pub restart_count: i64,
    pub oom_killed: bool,
    pub exit_code: i64,
    /// `no`, `always`, `unless-stopped` or `on-failure`.
    pub restart_policy: String,
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    /// The memory limit in bytes; `None` when unlimited.
    pub memory_limit: Option<u64>,
    /// Host PID of the container's main process while it runs.
    pub pid: Option<i64>,
    pub labels: HashMap<String, String>,
}

impl ContainerStatus {
    pub fn from_inspect(r: ContainerInspectResponse) -> ContainerStatus {
        let st = r.state.unwrap_or_default();
        let state = match st.status {
            Some(ContainerStateStatusEnum::CREATED) => State::Created,
            Some(ContainerStateStatusEnum::RUNNING) | Some(ContainerStateStatusEnum::STOPPING) => State::Running,
            Some(ContainerStateStatusEnum::PAUSED) => State::Paused,
            Some(ContainerStateStatusEnum::RESTARTING) => State::Restarting,
            Some(ContainerStateStatusEnum::REMOVING) => State::Removing,
            Some(ContainerStateStatusEnum::EXITED) => State::Exited,
            Some(ContainerStateStatusEnum::DEAD) => State::Dead,
            Some(ContainerStateStatusEnum::EMPTY) | None => {
                if st.running == Some(true) {
                    State::Running
                } else {
                    State::Created
                }
            }
        };
        let (health, failing_streak) = match &st.health {
            Some(h) => {
                let s = match h.status {
                    Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
                    Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
                    Some(HealthStatusEnum::STARTING) => Health::Starting,
                    Some(HealthStatusEnum::NONE) | Some(HealthStatusEnum::EMPTY) | None => Health::None,
                };
                (s, (s != Health::None).then(|| h.failing_streak.unwrap_or(0)))
            }
            None => (Health::None, None),
        };
        let host = r.host_config.unwrap_or_default();
        let restart_policy = host
            .restart_policy
            .and_then(|p| p.name)
            .map(|n| n.to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "no".to_string());
        let config = r.config.unwrap_or_default();
        ContainerStatus {
            id: r.id.unwrap_or_default(),
            name: r.name.unwrap_or_default().trim_start_matches('/').to_string(),
            image: config.image.or(r.image).unwrap_or_default(),
            state,
            health,
            failing_streak,
            restart_count: r.restart_count.unwrap_or(0),
            oom_killed: st.oom_killed.unwrap_or(false),
            exit_code: st.exit_code.unwrap_or(0),
            restart_policy,
            started_at: st.started_at.as_deref().and_then(parse_time),
            finished_at: st.finished_at.as_deref().and_then(parse_time),
            memory_limit: host.memory.filter(|m| *m > 0).map(|m| m as u64),
            pid: st.pid.filter(|p| *p > 0),
            labels: config.labels.unwrap_or_default(),
        }
    }

    /// Value of a label, empty when absent.
    pub fn label(&self, key: &str) -> &str {
        self.labels.get(key).map(String::as_str).unwrap_or("")
    }
}

/// Parses the engine's RFC 3339 timestamps; the zero time
/// `0001-01-01T00:00:00Z` ("never") gives `None`.
pub fn parse_time(s: &str) -> Option<SystemTime> {
    if s.starts_with("0001-") {
        return None;
    }
    crate::time::parse_rfc3339(s)
        .filter(|t| *t > 0.0)
        .map(crate::time::system_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_resolution_prefers_configured_value() {
        assert_eq!(resolve_host("unix:///x.sock"), "unix:///x.sock");
        assert!(check_host("ssh://me@box").is_err());
        assert!(check_host("tcp://127.0.0.1:2375").is_ok());
    }

    #[test]
    fn engine_timestamps_parse_and_zero_time_is_none() {
        let t = parse_time("2026-11-22T07:40:14.825378218Z").unwrap();
        let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!((secs - 1_795_333_214.825_378).abs() < 1e-3, "{secs}");
        assert_eq!(parse_time("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_time("garbage"), None);
    }

    #[test]
    fn inspect_without_health_is_none_and_zero_times_are_absent() {
        let json = r#"{"Id":"abc","Name":"/web","RestartCount":3,
            "State":{"Status":"exited","Running":false,"OOMKilled":true,"ExitCode":137,
                     "StartedAt":"2026-11-22T07:40:14.825378218Z","FinishedAt":"0001-01-01T00:00:00Z"},
            "HostConfig":{"Memory":0,"RestartPolicy":{"Name":"","MaximumRetryCount":0}},
            "Config":{"Image":"busybox","Labels":{"com.docker.compose.project":"p"}}}"#;
        let r: ContainerInspectResponse = serde_json::from_str(json).unwrap();
        let s = ContainerStatus::from_inspect(r);
        assert_eq!(
            (s.name.as_str(), s.state, s.health),
            ("web", State::Exited, Health::None)
        );
        assert_eq!((s.restart_count, s.oom_killed, s.exit_code), (3, true, 137));
        assert_eq!(s.restart_policy, "no");
        assert_eq!(s.failing_streak, None);
        assert_eq!(s.memory_limit, None);
        assert!(s.started_at.is_some() && s.finished_at.is_none());
        assert_eq!(s.label(COMPOSE_PROJECT_LABEL), "p");
        assert_eq!(s.label(COMPOSE_SERVICE_LABEL), "");
    }

    /// An engine address nothing listens on: the error names the refusal
    /// (bollard's own message stops at "client error (Connect)").
    #[tokio::test]
    async fn engine_errors_carry_the_whole_cause() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = format!("tcp://{}", closed.local_addr().unwrap());
        drop(closed);
        let e = connect_to(&host, Duration::from_secs(5)).await.err().unwrap();
        assert!(matches!(e, DockerError::Engine { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("Connection refused"), "{text}");
        // Shown once when the chain is walked again (its source is in it).
        assert_eq!(crate::error::chain(&e), text);
    }

    #[test]
    fn raced_answers_are_transient_and_others_are_not() {
        let answer = |status_code: u16, message: &str| DockerError::Engine {
            host: "unix:///x".into(),
            what: "update flap".into(),
            source: BollardError::DockerResponseServerError {
                status_code,
                message: message.into(),
            },
        };
        // Seen on Debian's docker.io 20.10 while a restart loop ran.
        for m in [
            "Cannot update container 64656e: cannot update a stopped container: unknown",
            "Cannot update container 64656e: cannot update a deleted process: unknown",
            "Cannot update container 64656e: task 64656e not found: not found",
            "Cannot restart container sharer: failed to create shim task: OCI runtime create failed: runc create \
             failed: unable to create new parent process: namespace path: lstat /proc/1012/ns/net: no such file",
        ] {
            assert!(answer(500, m).is_transient(), "{m}");
        }
        assert!(answer(409, "Container flap is restarting, wait until the container is running").is_transient());
        assert!(!answer(500, "Cannot restart container web: permission denied").is_transient());
        assert!(!answer(400, "invalid restart policy").is_transient());
        assert!(!DockerError::NotFound("flap".into()).is_transient());
    }
}
