//! The `kill` action: TERM, grace, KILL, only for an allowed command line
//! and never for a reused PID.

use std::time::Instant;

use super::{ActionEnv, KillAction, Outcome, OutcomeResult, Verification};

pub(crate) async fn run(
    _a: &KillAction,
    pid: i32,
    _start_time: Option<f64>,
    _env: &ActionEnv,
    started: Instant,
) -> Outcome {
    Outcome::new(
        OutcomeResult::Refused,
        format!("kill {pid}: not wired yet on this commit"),
        started,
    )
}

pub(crate) async fn verify(
    _pid: i32,
    _start_time: Option<f64>,
    _env: &ActionEnv,
    _until: tokio::time::Instant,
) -> Verification {
    Verification::NotApplicable
}
