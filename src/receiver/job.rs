//! The work a plan leaves for after the webhook is acknowledged (the run
//! stage's input): its own file so that planning does not depend on
//! running.

use super::journal::NotifyKind;
use super::timeline::Timeline;
use crate::actions::{Alert, Resolved};

/// Work to do after the webhook has been acknowledged.
#[derive(Debug)]
pub enum Job {
    /// Run a rule's actions (or exhausted actions) on their targets.
    Run {
        id: String,
        rule: usize,
        target: String,
        alert: Alert,
        targets: Vec<Resolved>,
        dry_run: bool,
        /// The instants so far (alert, delivery, decision); the run adds
        /// the rest and the stages go to the latency histogram.
        timeline: Timeline,
    },
    /// Tell channels something (an approval request, an escalation).
    Notify {
        id: String,
        channels: Vec<String>,
        kind: NotifyKind,
        alert: Alert,
        title: String,
        message: String,
    },
}
