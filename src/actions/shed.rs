//! The `shed-load` action (S10): stop a configured list of non-essential
//! units and containers, each attempted independently and reported one by
//! one. The result is `ok` only when every one of them was stopped.

use std::time::Instant;

use super::{ActionEnv, Manager, Outcome, OutcomeResult, Verification};

pub(crate) async fn run(
    manager: &Manager,
    units: &[String],
    containers: &[String],
    env: &ActionEnv,
    started: Instant,
) -> Outcome {
    if env.dry_run {
        return Outcome::new(
            OutcomeResult::DryRun,
            format!("would stop units {units:?} ({manager}) and containers {containers:?}"),
            started,
        );
    }
    let mut lines = Vec::new();
    let mut failed = 0;
    for unit in units {
        match super::systemd::stop_quietly(manager, unit, env).await {
            Ok(d) => lines.push(format!("unit {unit}: {d}")),
            Err(e) => {
                failed += 1;
                lines.push(format!("unit {unit}: FAILED: {e}"));
            }
        }
    }
    let conn = if containers.is_empty() {
        None
    } else {
        Some(super::docker::connect(env).await)
    };
    for c in containers {
        let res = match &conn {
            Some(Ok(conn)) => conn.stop_container(c, None).await.map_err(|e| e.to_string()),
            Some(Err(e)) => Err(e.clone()),
            None => unreachable!("connected when there are containers"),
        };
        match res {
            Ok(()) => lines.push(format!("container {c}: stopped")),
            Err(e) => {
                failed += 1;
                lines.push(format!("container {c}: FAILED: {e}"));
            }
        }
    }
    let total = units.len() + containers.len();
    let head = format!("shed-load: {} of {total} stopped", total - failed);
    let result = if failed == 0 {
        OutcomeResult::Ok
    } else {
        OutcomeResult::Failed
    };
    Outcome::new(result, format!("{head}\n{}", lines.join("\n")), started)
}

/// Verified when every listed unit is inactive/failed and every container
/// is not running.
pub(crate) async fn verify(
    manager: &Manager,
    units: &[String],
    containers: &[String],
    env: &ActionEnv,
    until: tokio::time::Instant,
) -> Verification {
    loop {
        let mut still = Vec::new();
        for unit in units {
            match super::systemd::stopped_state(manager, unit, env).await {
                Ok(None) => {}
                Ok(Some(state)) => still.push(format!("unit {unit} is {state}")),
                Err(e) => still.push(format!("unit {unit}: {e}")),
            }
        }
        if !containers.is_empty() {
            let host = crate::docker::resolve_host(env.docker_host.as_deref().unwrap_or(""));
            match crate::docker::connect_to(&host, env.docker_timeout).await {
                Ok(conn) => {
                    for c in containers {
                        match conn.inspect(c).await {
                            Ok(s) if matches!(s.state, "exited" | "created" | "dead") => {}
                            Ok(s) => still.push(format!("container {c} is {}", s.state)),
                            Err(e) => still.push(format!("container {c}: {e}")),
                        }
                    }
                }
                Err(e) => still.push(format!("docker: {e}")),
            }
        }
        if still.is_empty() {
            return Verification::Verified;
        }
        if tokio::time::Instant::now() >= until {
            return Verification::NotHelped(still.join("; "));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
