//! Finding the engine (configured host, `DOCKER_HOST`, the local socket),
//! connecting with the API version negotiated down, and the container
//! operations hostmedic makes, each under the connection's deadline. Kept
//! apart from the status types it returns, which the collector also builds
//! from the engine's own answers.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::ContainerSummaryStateEnum;
use bollard::models::{ContainerUpdateBody, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptions, LogsOptions, RestartContainerOptions, StartContainerOptions,
    StatsOptions, StopContainerOptions,
};
use futures::StreamExt;

use super::error::{deadline, engine_err};
use super::{ContainerStatus, DEFAULT_HOST, DockerError, HealthProbe, Listed, own_name};

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

impl Connection {
    /// The per-request deadline configured at connect time.
    pub fn timeout(&self) -> Duration {
        self.docker.timeout()
    }

    pub(super) async fn run<T>(
        &self,
        what: String,
        fut: impl Future<Output = Result<T, BollardError>>,
    ) -> Result<T, DockerError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_resolution_prefers_configured_value() {
        assert_eq!(resolve_host("unix:///x.sock"), "unix:///x.sock");
        assert!(check_host("ssh://me@box").is_err());
        assert!(check_host("tcp://127.0.0.1:2375").is_ok());
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
}
