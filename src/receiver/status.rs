//! The status stage: the status document (holds, attempts per target,
//! cooldowns and their backoff, rules in a quiet window, pending approvals,
//! last actions, the alerts firing, the alert pipeline's heartbeat and the
//! host summary of the last scrape) served at `/api/v1/status` and written
//! to `receiver.status_path`, and the holds view for metrics.

use std::collections::BTreeMap;

use super::config::{ReceiverConfig, Rule};
use super::engine::Receiver;
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

/// The alerts firing, each with `last_action`: the latest action or
/// verification result of the plan its last decision started, or for a
/// decision that started none (a cooldown, a hold) the latest of its rule on
/// its target (absent when none has come, or it left the bounded last
/// actions).
fn firing(s: &State) -> Vec<serde_json::Value> {
    s.firing
        .list()
        .into_iter()
        .map(|a| {
            let mut v = serde_json::to_value(a).unwrap_or_default();
            let last = a.decision.as_ref().and_then(|d| {
                let mut last = s.last_actions.iter().rev();
                last.clone().find(|l| l.id == d.id).or_else(|| {
                    let target = a.target.as_deref()?;
                    last.find(|l| l.rule == d.rule && l.target == target)
                })
            });
            if let (Some(l), Some(o)) = (last, v.as_object_mut()) {
                o.insert("last_action".into(), serde_json::to_value(l).unwrap_or_default());
            }
            v
        })
        .collect()
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
    // Cooldowns grown by failed attempts: how many, how long, until when.
    let backoff: BTreeMap<&String, serde_json::Value> = s
        .cooldowns
        .keys()
        .filter_map(|key| {
            let (rule, target) = key.split_once('|')?;
            let rule = rules.iter().find(|r| r.cfg.name == rule)?;
            let (last, failures, d) = super::policy::cooldown(s, rule, target)?;
            // Only a cooldown that grew: failures on a rule without
            // backoff leave it as it is (that is a plain cooldown).
            (failures > 0 && d > rule.cooldown).then(|| {
                (
                    key,
                    serde_json::json!({"failures": failures, "cooldown_seconds": d.as_secs_f64(),
                                       "until": last + d.as_secs_f64()}),
                )
            })
        })
        .collect();
    // Rules a quiet window keeps from acting right now.
    let quiet: Vec<serde_json::Value> = rules
        .iter()
        .filter_map(|r| {
            let w = super::policy::quiet_window(r, now)?;
            let tz = r.quiet.as_ref().map(|q| q.timezone.as_str());
            Some(serde_json::json!({"rule": r.cfg.name, "window": w.text, "timezone": tz}))
        })
        .collect();
    serde_json::json!({
        "updated": now,
        "dry_run": cfg.dry_run,
        "journal_seq": s.last_seq,
        "holds": s.holds,
        "budgets": budgets,
        "cooldowns": s.cooldowns,
        "backoff": backoff,
        "quiet": quiet,
        "pending_approvals": s.pending.iter().map(|(id, p)| serde_json::json!({
            "id": id, "rule": p.rule, "target": p.target, "at": p.at,
            "alertname": p.alert.alertname(), "actions": p.actions,
        })).collect::<Vec<_>>(),
        "last_actions": s.last_actions,
        "firing": firing(s),
        "pipeline": s.pipeline.status(&cfg.heartbeat),
        "host": host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receiver::config::{RuleConfig, compile_rules};
    use crate::receiver::state::{AttemptOutcome, Streak};

    fn rule(name: &str, extra: &str) -> Rule {
        let cfg: RuleConfig = toml::from_str(&format!(
            "name = \"{name}\"\nalertname = \"A\"\ncooldown = \"60s\"\n{extra}\nactions = [{{ type = \"exec\", argv = [\"/usr/bin/true\"] }}]"
        ))
        .unwrap();
        compile_rules(&[cfg], &ReceiverConfig::default(), &Default::default())
            .unwrap()
            .remove(0)
    }

    #[test]
    fn backoff_lists_only_cooldowns_that_grew() {
        let rules = [rule("plain", ""), rule("grows", "backoff_factor = 2.0")];
        let mut s = State::default();
        let now = crate::time::now();
        for r in ["plain", "grows"] {
            let key = crate::receiver::state::cooldown_key(r, "t");
            s.cooldowns.insert(key.clone(), now);
            let streak = Streak {
                before: 1,
                id: "a1".into(),
                actions: 1,
                outcome: AttemptOutcome::Failed,
            };
            s.streaks.insert(key, streak);
        }
        let doc = document(&ReceiverConfig::default(), &rules, &s, serde_json::Value::Null);
        let backoff = doc["backoff"].as_object().unwrap();
        assert_eq!(backoff.keys().collect::<Vec<_>>(), ["grows|t"], "{backoff:?}");
        assert_eq!(backoff["grows|t"]["cooldown_seconds"], 240.0);
        // The plain cooldown is still in the status document, as a cooldown.
        assert!(doc["cooldowns"].get("plain|t").is_some());
    }
}
