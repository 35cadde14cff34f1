//! The status stage: the status document (holds, attempts per target,
//! cooldowns, pending approvals, last actions, the alerts firing, the alert
//! pipeline's heartbeat and the host summary of the last scrape) served at
//! `/api/v1/status` and written to `receiver.status_path`, and the holds view
//! for metrics.

use std::collections::BTreeMap;

use super::Receiver;
use super::config::{ReceiverConfig, Rule};
use super::state::State;

impl Receiver {
    /// The status document, from the current state.
    pub async fn status_json(&self) -> serde_json::Value {
        let s = self.settings();
        let core = self.ledger.core().await;
        document(&s.cfg, &s.rules, &core.state, self.host.json())
    }

    /// Current holds as (rule, target).
    pub fn holds(&self) -> Vec<(String, String)> {
        self.ledger.holds()
    }
}

/// Builds the status document; attempts count within the longest budget
/// window any rule uses. `host` is the last scrape's summary
/// ([`crate::hostsummary`]).
pub fn document(cfg: &ReceiverConfig, rules: &[Rule], s: &State, host: serde_json::Value) -> serde_json::Value {
    let now = crate::time::now();
    let max_window = rules
        .iter()
        .map(|r| r.budget_window)
        .chain([cfg.budget_window])
        .max()
        .unwrap_or_default()
        .as_secs_f64();
    let budgets: BTreeMap<&String, serde_json::Value> = s
        .attempts
        .iter()
        .map(|(t, v)| {
            let recent: Vec<f64> = v.iter().copied().filter(|x| now - x < max_window).collect();
            (
                t,
                serde_json::json!({"attempts": recent.len(), "last_attempt": recent.last()}),
            )
        })
        .collect();
    serde_json::json!({
        "updated": now,
        "dry_run": cfg.dry_run,
        "journal_seq": s.last_seq,
        "holds": s.holds,
        "budgets": budgets,
        "cooldowns": s.cooldowns,
        "pending_approvals": s.pending.iter().map(|(id, p)| serde_json::json!({
            "id": id, "rule": p.rule, "target": p.target, "at": p.at,
            "alertname": p.alert.alertname(), "actions": p.actions,
        })).collect::<Vec<_>>(),
        "last_actions": s.last_actions,
        "firing": s.firing.list(),
        "pipeline": s.pipeline.status(&cfg.heartbeat),
        "host": host,
    })
}
