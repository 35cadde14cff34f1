//! `type = "docker"`: restart, stop or start a container, or change its
//! restart policy, through the Docker engine ([`crate::docker`]). Also the
//! engine connection `shed-load` uses for its containers.

use std::fmt;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::target;
use super::template::{check_literal, render_field};
use super::{ActionEnv, ActionError, Alert, ConfigError, Outcome, OutcomeResult, Verification};

/// `type = "docker"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerAction {
    pub op: DockerOp,
    /// Container name or id, templated.
    pub container: String,
    /// For `op = "restart-policy"`: `no`, `always`, `unless-stopped`,
    /// `on-failure` or `on-failure:N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DockerOp {
    Restart,
    Stop,
    Start,
    RestartPolicy,
}

impl DockerOp {
    pub fn as_str(self) -> &'static str {
        match self {
            DockerOp::Restart => "restart",
            DockerOp::Stop => "stop",
            DockerOp::Start => "start",
            DockerOp::RestartPolicy => "restart-policy",
        }
    }
}

impl DockerAction {
    pub(crate) fn name(&self) -> String {
        format!("docker.{}", self.op.as_str())
    }

    pub(crate) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        check_literal(&format!("{key}.container"), &self.container, target::validate_container)?;
        match (self.op, &self.policy) {
            (DockerOp::RestartPolicy, None) => Err(ConfigError::invalid(
                format!("{key}.policy"),
                "required for op = \"restart-policy\" (e.g. \"no\")",
            )),
            (DockerOp::RestartPolicy, Some(p)) => parse_policy(p)
                .map(|_| ())
                .map_err(|e| ConfigError::invalid(format!("{key}.policy"), e)),
            (_, Some(_)) => Err(ConfigError::invalid(
                format!("{key}.policy"),
                "only valid with op = \"restart-policy\"",
            )),
            (_, None) => Ok(()),
        }
    }

    pub(crate) fn resolve(&self, alert: &Alert) -> Result<Resolved, ActionError> {
        let container = render_field("container", &self.container, alert)?;
        target::validate_container(&container)?;
        Ok(Resolved {
            spec: self.clone(),
            container,
        })
    }
}

/// A docker action with its container: key `docker:<container>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub spec: DockerAction,
    pub container: String,
}

impl fmt::Display for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "docker:{}", self.container)
    }
}

/// The engine call an op makes (the restart policy parsed).
enum Call {
    Restart,
    Stop,
    Start,
    Policy(RestartPolicy),
}

/// A parsed restart policy: name and maximum retry count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: Option<i64>,
}

/// Parses `no`, `always`, `unless-stopped`, `on-failure` or `on-failure:N`.
pub fn parse_policy(s: &str) -> Result<RestartPolicy, String> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    match (name, count) {
        ("no" | "always" | "unless-stopped", None) | ("on-failure", None) => Ok(RestartPolicy {
            name: name.to_string(),
            maximum_retry_count: None,
        }),
        ("on-failure", Some(c)) => {
            let n: i64 = c
                .parse()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| format!("restart policy {s:?}: retry count must be a non-negative integer"))?;
            Ok(RestartPolicy {
                name: name.to_string(),
                maximum_retry_count: Some(n),
            })
        }
        _ => Err(format!(
            "unknown restart policy {s:?} (expected no, always, unless-stopped, on-failure or on-failure:N)"
        )),
    }
}

/// Connects to the configured engine (API version negotiated). Stop and
/// restart extend their own deadline by the container's stop timeout.
pub(crate) async fn connect(env: &ActionEnv) -> Result<crate::docker::Connection, String> {
    let host = crate::docker::resolve_host(env.docker_host.as_deref().unwrap_or(""));
    crate::docker::connect_to(&host, env.docker_timeout)
        .await
        .map_err(|e| e.to_string())
}

fn state_line(s: &crate::docker::ContainerStatus) -> String {
    format!(
        "state {}, health {}, restart policy {}, restart count {}, exit code {}{}",
        s.state,
        s.health,
        s.restart_policy,
        s.restart_count,
        s.exit_code,
        if s.oom_killed { ", OOM-killed" } else { "" }
    )
}

impl Resolved {
    pub(crate) async fn run(&self, env: &ActionEnv, started: Instant) -> Outcome {
        let (a, container) = (&self.spec, self.container.as_str());
        let op = a.op.as_str();
        let call = match (a.op, &a.policy) {
            (DockerOp::RestartPolicy, Some(p)) => match parse_policy(p) {
                Ok(p) => Call::Policy(p),
                Err(e) => {
                    return Outcome::new(OutcomeResult::Refused, format!("docker {op} {container}: {e}"), started);
                }
            },
            (DockerOp::RestartPolicy, None) => {
                return Outcome::new(
                    OutcomeResult::Refused,
                    format!("docker {op} {container}: no policy configured"),
                    started,
                );
            }
            (DockerOp::Restart, _) => Call::Restart,
            (DockerOp::Stop, _) => Call::Stop,
            (DockerOp::Start, _) => Call::Start,
        };
        let what = match &call {
            Call::Policy(p) => format!(
                "docker update --restart={} {container}",
                a.policy.as_deref().unwrap_or(&p.name)
            ),
            _ => format!("docker {op} {container}"),
        };
        let conn = match connect(env).await {
            Ok(c) => c,
            Err(e) => return Outcome::state_unknown(&what, e, env, started),
        };
        let before = match conn.inspect(container).await {
            Ok(s) => s,
            Err(crate::docker::DockerError::NotFound(_)) => {
                return Outcome::new(
                    OutcomeResult::Refused,
                    format!("{what}: container {container} does not exist"),
                    started,
                );
            }
            Err(e) => return Outcome::state_unknown(&what, format_args!("inspect: {e}"), env, started),
        };
        let before_line = state_line(&before);
        if env.dry_run {
            return Outcome::would_run(&what, &before_line, started);
        }
        let res = match &call {
            Call::Restart => conn.restart_container(container, None).await,
            Call::Stop => conn.stop_container(container, None).await,
            Call::Start => conn.start_container(container).await,
            Call::Policy(p) => conn.set_restart_policy(container, &p.name, p.maximum_retry_count).await,
        };
        match res {
            Ok(()) => {
                let after = match conn.inspect(container).await {
                    Ok(s) => state_line(&s),
                    Err(e) => format!("inspect after: {e}"),
                };
                Outcome::acted(
                    &what,
                    Ok("done".into()),
                    &format!("{before_line}; after: {after}"),
                    started,
                )
            }
            Err(e) => Outcome::acted(&what, Err(e.to_string()), &before_line, started),
        }
    }

    /// Verified when: restart/start — running and not restarted for
    /// [`super::poll::STABLE_FOR`], and healthy (or without a health check);
    /// stop — not
    /// running; restart-policy — the policy reads as configured.
    pub(crate) async fn verify(&self, env: &ActionEnv, until: tokio::time::Instant) -> Verification {
        let (a, container) = (&self.spec, self.container.as_str());
        let conn = match connect(env).await {
            Ok(c) => c,
            Err(e) => return Verification::NotHelped(format!("cannot reach the engine: {e}")),
        };
        let want_policy = a.policy.as_deref().and_then(|p| parse_policy(p).ok()).map(|p| p.name);
        let mut poll = super::poll::Poll::until(until);
        let mut up = super::poll::Stable::default();
        loop {
            let last = match conn.inspect(container).await {
                Ok(s) => {
                    let ok = match a.op {
                        DockerOp::Stop => matches!(s.state, "exited" | "created" | "dead"),
                        DockerOp::RestartPolicy => Some(&s.restart_policy) == want_policy.as_ref(),
                        // Stable: running, same start and restart count for
                        // STABLE_FOR (a restart loop does not count); healthy
                        // (or without a health check) at the look that ends it.
                        DockerOp::Restart | DockerOp::Start => {
                            let running = up.look((s.state == "running").then_some((s.restart_count, s.started_at)));
                            running && matches!(s.health, "healthy" | "none")
                        }
                    };
                    if ok {
                        return Verification::Verified;
                    }
                    state_line(&s)
                }
                Err(e) => e.to_string(),
            };
            if !poll.next(up.due()).await {
                return Verification::NotHelped(format!("container {container}: {last}"));
            }
        }
    }
}
