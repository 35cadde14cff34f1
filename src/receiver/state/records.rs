//! The records the safety state keeps (holds, pending approvals, last
//! actions, failure streaks, plans acting and the processes they started),
//! as the checkpoint writes them.

use serde::{Deserialize, Serialize};

use crate::receiver::payload::PayloadAlert;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    pub rule: String,
    pub since: f64,
    pub fingerprint: String,
    pub alertname: String,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub rule: String,
    pub target: String,
    pub at: f64,
    pub alert: PayloadAlert,
    pub actions: Vec<String>,
}

/// Who approved a plan, and when: a second approval of it is told so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub by: String,
    pub at: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastAction {
    pub ts: f64,
    pub id: String,
    pub rule: String,
    pub target: String,
    pub action: String,
    pub result: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// How the latest attempt on a (rule, target) went, as far as the journal
/// has told: backoff counts the failed ones (docs/receiver.md, "Backoff").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// Running (or cut short by a crash): no result yet.
    Open,
    /// Every action `ok` and no verification `not_helped`.
    Helped,
    /// An action ended other than `ok` (failed, refused, timed out…) or a
    /// verification said `not_helped`.
    Failed,
}

/// The failure streak of one (rule, target).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Streak {
    /// Consecutive failed attempts before the latest one.
    pub before: u32,
    /// The latest attempt's plan id, its number of actions and its outcome.
    pub id: String,
    pub actions: usize,
    pub outcome: AttemptOutcome,
}

impl Streak {
    /// Consecutive failed attempts now: the latest counts once it failed, a
    /// latest that helped resets the count, one still open keeps the count
    /// of those before it.
    pub fn failures(&self) -> u32 {
        match self.outcome {
            AttemptOutcome::Failed => self.before + 1,
            AttemptOutcome::Helped => 0,
            AttemptOutcome::Open => self.before,
        }
    }
}

/// A plan that is acting: an `act` decision or an approval whose actions
/// have not all journaled an outcome yet (they run in order and stop at the
/// first that is not ok). One that is still here at start was cut short by
/// a crash: the start journals it `interrupted` (see `recover`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acting {
    pub rule: String,
    pub target: String,
    /// When the decision (or approval) was journaled.
    pub since: f64,
    /// One description per action, as the decision listed them.
    pub actions: Vec<String>,
    /// How many actions have journaled an outcome.
    pub done: usize,
    /// The alert, to resolve the plan's targets again for its verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<Box<PayloadAlert>>,
    /// Processes its actions started, as journaled (`spawned`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Child>,
}

/// A process an action of an acting plan started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Child {
    pub index: usize,
    pub pid: u32,
    pub pgid: u32,
    pub sid: u32,
    pub start_ticks: u64,
    pub boot_id: String,
}
