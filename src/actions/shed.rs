//! `type = "shed-load"` (S10): stop a configured list of non-essential
//! units and containers, each attempted independently and reported one by
//! one. The result is `ok` only when every one of them was stopped.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::target::{self, Manager, default_manager};
use super::{Action, ActionEnv, ActionError, Alert, ConfigError, Context, Outcome, OutcomeResult, Subject, Verification};

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

/// A shed-load action's manager (of its units): key `shed-load`.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub manager: Manager,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("shed-load")
    }
}

impl Action for ShedLoadAction {
    const TYPE: &'static str = "shed-load";
    type Target = Target;

    fn suggested_timeout(&self) -> Duration {
        Duration::from_secs(90 * (self.units.len() + self.containers.len()).max(1) as u64)
    }

    fn validate(&self, key: &str, _: &Context<'_>) -> Result<(), ConfigError> {
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
    fn resolve(&self, _: &Alert) -> Result<Target, ActionError> {
        let manager = Manager::parse(&self.manager)?;
        for u in &self.units {
            target::validate_unit_name(u)?;
        }
        for c in &self.containers {
            target::validate_container(c)?;
        }
        Ok(Target { manager })
    }

    /// Every listed unit and container.
    fn subjects(&self, t: &Target) -> Vec<Subject> {
        let units = self.units.iter().map(|u| Subject::Unit {
            manager: t.manager.clone(),
            unit: u.clone(),
        });
        units
            .chain(self.containers.iter().cloned().map(Subject::Container))
            .collect()
    }

    async fn run(&self, t: &Target, _: &Alert, env: &ActionEnv, started: Instant) -> Outcome {
        let (manager, units, containers) = (&t.manager, &self.units, &self.containers);
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
                    Err(e) => Err(e.to_string()),
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
    async fn verify(&self, t: &Target, env: &ActionEnv, until: tokio::time::Instant) -> Verification {
        let (manager, units, containers) = (&t.manager, &self.units, &self.containers);
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
                                Ok(s) if s.state.is_stopped() => {}
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
