//! Docker actions: restart, stop, start, restart policy.

use std::time::{Duration, Instant};

use super::{ActionEnv, DockerAction, DockerOp, Outcome, OutcomeResult, Verification};

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

pub(crate) async fn run(a: &DockerAction, container: &str, env: &ActionEnv, started: Instant) -> Outcome {
    let op = a.op.as_str();
    let policy = match (a.op, &a.policy) {
        (DockerOp::RestartPolicy, Some(p)) => match parse_policy(p) {
            Ok(p) => Some(p),
            Err(e) => return Outcome::new(OutcomeResult::Refused, format!("docker {op} {container}: {e}"), started),
        },
        (DockerOp::RestartPolicy, None) => {
            return Outcome::new(
                OutcomeResult::Refused,
                format!("docker {op} {container}: no policy configured"),
                started,
            );
        }
        _ => None,
    };
    let what = match &policy {
        Some(p) => format!(
            "docker update --restart={} {container}",
            a.policy.as_deref().unwrap_or(&p.name)
        ),
        None => format!("docker {op} {container}"),
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
        return Outcome::new(
            OutcomeResult::DryRun,
            format!("would run {what} (before: {before_line})"),
            started,
        );
    }
    let res = match (a.op, &policy) {
        (DockerOp::Restart, _) => conn.restart_container(container, None).await,
        (DockerOp::Stop, _) => conn.stop_container(container, None).await,
        (DockerOp::Start, _) => conn.start_container(container).await,
        (DockerOp::RestartPolicy, Some(p)) => conn.set_restart_policy(container, &p.name, p.maximum_retry_count).await,
        (DockerOp::RestartPolicy, None) => unreachable!("checked above"),
    };
    match res {
        Ok(()) => {
            let after = match conn.inspect(container).await {
                Ok(s) => state_line(&s),
                Err(e) => format!("inspect after: {e}"),
            };
            Outcome::new(
                OutcomeResult::Ok,
                format!("{what}: done (before: {before_line}; after: {after})"),
                started,
            )
        }
        Err(e) => Outcome::new(
            OutcomeResult::Failed,
            format!("{what}: {e} (before: {before_line})"),
            started,
        ),
    }
}

/// Verified when: restart/start — running, healthy (or without a health
/// check) and not restarted between two looks a second apart; stop — not
/// running; restart-policy — the policy reads as configured.
pub(crate) async fn verify(
    a: &DockerAction,
    container: &str,
    env: &ActionEnv,
    until: tokio::time::Instant,
) -> Verification {
    let conn = match connect(env).await {
        Ok(c) => c,
        Err(e) => return Verification::NotHelped(format!("cannot reach the engine: {e}")),
    };
    let want_policy = a.policy.as_deref().and_then(|p| parse_policy(p).ok()).map(|p| p.name);
    let mut stable: Option<(i64, Option<std::time::SystemTime>)> = None;
    loop {
        let last = match conn.inspect(container).await {
            Ok(s) => {
                let ok = match a.op {
                    DockerOp::Stop => matches!(s.state, "exited" | "created" | "dead"),
                    DockerOp::RestartPolicy => Some(&s.restart_policy) == want_policy.as_ref(),
                    DockerOp::Restart | DockerOp::Start => {
                        let up = s.state == "running" && matches!(s.health, "healthy" | "none");
                        let mark = (s.restart_count, s.started_at);
                        let seen_before = stable == Some(mark);
                        stable = up.then_some(mark);
                        up && seen_before
                    }
                };
                if ok {
                    return Verification::Verified;
                }
                state_line(&s)
            }
            Err(e) => e.to_string(),
        };
        if tokio::time::Instant::now() >= until {
            return Verification::NotHelped(format!("container {container}: {last}"));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
