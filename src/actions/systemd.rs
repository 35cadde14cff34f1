//! systemd actions over D-Bus (system or user manager).

use std::time::Instant;

use super::{ActionEnv, Manager, Outcome, OutcomeResult, SystemdOp, Verification};

pub(crate) async fn run(op: SystemdOp, manager: &Manager, unit: &str, _env: &ActionEnv, started: Instant) -> Outcome {
    Outcome::new(
        OutcomeResult::Refused,
        format!(
            "systemd {} {unit} ({manager}): not wired yet on this commit",
            op.as_str()
        ),
        started,
    )
}

pub(crate) async fn verify(
    _op: SystemdOp,
    _manager: &Manager,
    _unit: &str,
    _env: &ActionEnv,
    _until: tokio::time::Instant,
) -> Verification {
    Verification::NotApplicable
}
