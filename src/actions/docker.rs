//! Docker actions: restart, stop, start, restart policy.

use std::time::Instant;

use super::{ActionEnv, DockerAction, Outcome, OutcomeResult, Verification};

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

pub(crate) async fn run(a: &DockerAction, container: &str, _env: &ActionEnv, started: Instant) -> Outcome {
    Outcome::new(
        OutcomeResult::Refused,
        format!("docker {} {container}: not wired yet on this commit", a.op.as_str()),
        started,
    )
}

pub(crate) async fn verify(
    _a: &DockerAction,
    _container: &str,
    _env: &ActionEnv,
    _until: tokio::time::Instant,
) -> Verification {
    Verification::NotApplicable
}
