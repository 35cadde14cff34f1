//! What running and verifying an action produce: one [`OutcomeResult`]
//! (spelled `ok`, `failed`, `refused`, `dry_run`, `interrupted` everywhere: journal,
//! metrics, API), the [`Outcome`] that carries it with its detail and
//! duration, and the [`Verification`] of its effect.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::ActionEnv;

/// Most output kept in an [`Outcome::detail`].
pub const DETAIL_MAX: usize = 4096;

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeResult {
    Ok,
    Failed,
    /// Not attempted: a safety check said no (grammar, allow pattern, start
    /// time, unit not installed…).
    Refused,
    /// `dry-run` is how journals written before the spelling was unified
    /// say it.
    #[serde(alias = "dry-run")]
    DryRun,
    /// hostmedic stopped (crash, `kill -9`, power loss) while the action was
    /// running or waiting to run; journaled by the next start, which counts
    /// the attempt as spent and verifies the plan.
    Interrupted,
}

impl OutcomeResult {
    /// The one spelling of the result (journal, metric label, API).
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeResult::Ok => "ok",
            OutcomeResult::Failed => "failed",
            OutcomeResult::Refused => "refused",
            OutcomeResult::DryRun => "dry_run",
            OutcomeResult::Interrupted => "interrupted",
        }
    }
}

impl OutcomeResult {
    /// `ok` or `dry_run`: the action went as hoped (or would have), so the
    /// plan goes on to its next action.
    pub fn went_as_hoped(self) -> bool {
        matches!(self, OutcomeResult::Ok | OutcomeResult::DryRun)
    }
}

crate::spelled!(OutcomeResult);

/// Why the actions an action brings along ([`Action::followers`](super::Action::followers))
/// cannot be named: the action's own error, erased like the action.
pub type FollowersError = Box<dyn std::error::Error + Send + Sync>;

/// The result of running an action: secrets are never part of `detail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub result: OutcomeResult,
    /// Human-readable detail, truncated to [`DETAIL_MAX`] bytes.
    pub detail: String,
    #[serde(rename = "duration_seconds", with = "secs_f64")]
    pub duration: Duration,
}

impl Outcome {
    pub fn new(result: OutcomeResult, detail: impl Into<String>, started: Instant) -> Outcome {
        Outcome {
            result,
            detail: truncate(detail.into(), DETAIL_MAX),
            duration: started.elapsed(),
        }
    }

    /// What a dry run reports for `what` on a target whose state was read
    /// (`before`).
    pub fn would_run(what: &str, before: &str, started: Instant) -> Outcome {
        Outcome::new(
            OutcomeResult::DryRun,
            format!("would run {what} (before: {before})"),
            started,
        )
    }

    /// The outcome of the call that acts (`Ok`: what happened), with the
    /// target's state read before it.
    pub fn acted(what: &str, done: Result<String, impl std::fmt::Display>, before: &str, started: Instant) -> Outcome {
        match done {
            Ok(done) => Outcome::new(OutcomeResult::Ok, format!("{what}: {done} (before: {before})"), started),
            Err(e) => Outcome::new(
                OutcomeResult::Failed,
                format!("{what}: {e} (before: {before})"),
                started,
            ),
        }
    }

    /// The target's manager (D-Bus, Docker engine) could not be asked for the
    /// target's state: a failure, except in a dry run, which still reports
    /// what it would have run (a dry run must not depend on the bus being up).
    pub fn state_unknown(what: &str, err: impl std::fmt::Display, env: &ActionEnv, started: Instant) -> Outcome {
        if env.dry_run {
            Outcome::new(
                OutcomeResult::DryRun,
                format!("would run {what} (state unknown: {err})"),
                started,
            )
        } else {
            Outcome::new(OutcomeResult::Failed, format!("{what}: {err}"), started)
        }
    }
}

/// The result of verifying an action's effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verification", content = "reason", rename_all = "kebab-case")]
pub enum Verification {
    Verified,
    NotHelped(String),
    NotApplicable,
}

mod secs_f64 {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

/// Truncates `s` to at most `max` bytes on a char boundary, marking the cut.
pub fn truncate(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let marker = if max >= 64 { "…[truncated]" } else { "" };
    let mut cut = max - marker.len();
    while cut > 0 && !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s.push_str(marker);
    s
}
