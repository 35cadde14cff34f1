//! `type = "shed-load"` (S10): stop a configured list of non-essential
//! units and containers, each attempted independently and reported one by
//! one. The result is `ok` only when every one of them was stopped.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::target::{self, Manager, default_manager};
use super::{ActionEnv, ActionError, ConfigError, Outcome, OutcomeResult, Verification};

/// `type = "shed-load"`: stop a fixed list of non-essential units and
/// containers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShedLoadAction {
    #[serde(default)]
    pub units: Vec<String>,
    #[serde(default)]
    pub containers: Vec<String>,
    /// Manager of `units`: `"system"` (default) or `"user:<name>"`.
    #[serde(default = "default_manager")]
    pub manager: String,
}

impl ShedLoadAction {
    pub(crate) fn suggested_timeout(&self) -> Duration {
        Duration::from_secs(90 * (self.units.len() + self.containers.len()).max(1) as u64)
    }

    pub(crate) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        Manager::parse(&self.manager).map_err(|e| ConfigError::invalid(format!("{key}.manager"), e))?;
        if self.units.is_empty() && self.containers.is_empty() {
            return Err(ConfigError::invalid(
                key,
                "shed-load needs at least one of units, containers",
            ));
        }
        for (i, u) in self.units.iter().enumerate() {
            target::validate_unit_name(u).map_err(|e| ConfigError::invalid(format!("{key}.units[{i}]"), e))?;
        }
        for (i, c) in self.containers.iter().enumerate() {
            target::validate_container(c).map_err(|e| ConfigError::invalid(format!("{key}.containers[{i}]"), e))?;
        }
        Ok(())
    }

    /// Nothing is templated: the lists are checked again and the manager
    /// parsed.
    pub(crate) fn resolve(&self) -> Result<Resolved, ActionError> {
        let manager = Manager::parse(&self.manager)?;
        for u in &self.units {
            target::validate_unit_name(u)?;
        }
        for c in &self.containers {
            target::validate_container(c)?;
        }
        Ok(Resolved {
            spec: self.clone(),
            manager,
        })
    }
}

/// A shed-load action with its manager: key `shed-load`.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub spec: ShedLoadAction,
    pub manager: Manager,
}

impl fmt::Display for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("shed-load")
    }
}

impl Resolved {
    pub(crate) async fn run(&self, env: &ActionEnv, started: Instant) -> Outcome {
        let (manager, units, containers) = (&self.manager, &self.spec.units, &self.spec.containers);
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
        if !containers.is_empty() {
            let conn = super::docker::connect(env).await;
            for c in containers {
                let res = match &conn {
                    Ok(conn) => conn.stop_container(c, None).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.clone()),
                };
                match res {
                    Ok(()) => lines.push(format!("container {c}: stopped")),
                    Err(e) => {
                        failed += 1;
                        lines.push(format!("container {c}: FAILED: {e}"));
                    }
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
    pub(crate) async fn verify(&self, env: &ActionEnv, until: tokio::time::Instant) -> Verification {
        let (manager, units, containers) = (&self.manager, &self.spec.units, &self.spec.containers);
        let mut poll = super::poll::Poll::until(until);
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
                match super::docker::connect(env).await {
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
            if !poll.next(None).await {
                return Verification::NotHelped(still.join("; "));
            }
        }
    }
}
