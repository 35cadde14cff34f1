//! The `shed-load` action: stop a configured list of non-essential units and
//! containers, reporting each.

use std::time::Instant;

use super::{ActionEnv, Manager, Outcome, OutcomeResult, Verification};

pub(crate) async fn run(
    _manager: &Manager,
    _units: &[String],
    _containers: &[String],
    _env: &ActionEnv,
    started: Instant,
) -> Outcome {
    Outcome::new(
        OutcomeResult::Refused,
        "shed-load: not wired yet on this commit",
        started,
    )
}

pub(crate) async fn verify(
    _manager: &Manager,
    _units: &[String],
    _containers: &[String],
    _env: &ActionEnv,
    _until: tokio::time::Instant,
) -> Verification {
    Verification::NotApplicable
}
