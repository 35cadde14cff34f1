//! The status stage: the status document (holds, attempts per target,
//! cooldowns and their backoff, rules in a quiet window, pending approvals,
//! last actions, the alerts firing, the alert pipeline's heartbeat and the
//! host summary of the last scrape) served at `/api/v1/status` and written
//! to `receiver.status_path`, and the holds view for metrics.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::config::{HeartbeatConfig, ReceiverConfig, Rule};
use super::engine::Receiver;
use super::firing::FiringAlert;
use super::state::{Hold, LastAction, PipelineState, State};
use crate::hostsummary::HostSummary;

/// The status document: what `/api/v1/status` serves, `receiver.status_path`
/// holds and the landing page renders (one type, so they cannot disagree).
/// Its JSON spelling is a contract: fields keep their names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusDocument {
    /// When it was built (Unix seconds).
    pub updated: f64,
    pub dry_run: bool,
    /// The last journal entry folded in.
    pub journal_seq: u64,
    /// Target → its hold.
    pub holds: BTreeMap<String, Hold>,
    /// Target → attempts within the longest budget window.
    pub budgets: BTreeMap<String, Budget>,
    /// `rule|target` → when its cooldown started (Unix seconds).
    pub cooldowns: BTreeMap<String, f64>,
    /// `rule|target` → a cooldown grown by failed attempts.
    pub backoff: BTreeMap<String, Backoff>,
    /// Rules a quiet window keeps from acting now.
    pub quiet: Vec<Quiet>,
    pub pending_approvals: Vec<PendingApproval>,
    pub last_actions: VecDeque<LastAction>,
    pub firing: Vec<Firing>,
    pub pipeline: Pipeline,
    /// The last scrape's summary (`null` before the first).
    pub host: Option<HostSummary>,
}

/// A target's attempts within the longest budget window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub attempts: usize,
    /// The latest of them (Unix seconds; `null` when none).
    pub last_attempt: Option<f64>,
}

/// A cooldown grown by failed attempts: how many, how long, until when.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Backoff {
    pub failures: u32,
    pub cooldown_seconds: f64,
    /// Unix seconds.
    pub until: f64,
}

/// A rule a quiet window keeps from acting right now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Quiet {
    pub rule: String,
    /// The window as configured (`Mon-Fri 02:00-03:30`).
    pub window: String,
    /// `null`: the host's zone.
    pub timezone: Option<String>,
}

/// A plan waiting for a person's approval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PendingApproval {
    /// The approval id (`hostmedic approve <id>`).
    pub id: String,
    pub rule: String,
    pub target: String,
    /// When it was asked (Unix seconds).
    pub at: f64,
    pub alertname: String,
    pub actions: Vec<String>,
}

/// A firing alert with the latest result of what hostmedic did about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Firing {
    #[serde(flatten)]
    pub alert: FiringAlert,
    /// The latest action or verification result of the plan its last
    /// decision started, or for a decision that started none (a cooldown,
    /// a hold) the latest of its rule on its target (absent when none has
    /// come, or it left the bounded last actions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_action: Option<LastAction>,
}

/// The alert pipeline's heartbeat (the dead-man's switch).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Silence is watched for.
    pub enabled: bool,
    /// The heartbeat alert's name.
    pub alertname: String,
    pub max_silence_seconds: f64,
    /// Unix seconds (`null`: none yet).
    pub last_heartbeat: Option<f64>,
    pub silent: bool,
    /// When the silence began (`null` while not silent).
    pub silent_since: Option<f64>,
}

impl Pipeline {
    fn of(p: &PipelineState, cfg: &HeartbeatConfig) -> Pipeline {
        Pipeline {
            enabled: cfg.enabled,
            alertname: cfg.alertname.clone(),
            max_silence_seconds: cfg.max_silence.as_secs_f64(),
            last_heartbeat: p.last_heartbeat,
            silent: p.silent_since.is_some(),
            silent_since: p.silent_since,
        }
    }
}

impl Receiver {
    /// The status document, from the current state.
    pub async fn status(&self) -> StatusDocument {
        let s = self.settings();
        let core = self.ledger.core().await;
        document(&s.cfg, &s.rules, &core.state, self.host.load().as_deref().cloned())
    }

    /// Current holds as (rule, target).
    pub fn holds(&self) -> Vec<(String, String)> {
        self.ledger.holds()
    }
}

/// The alerts firing, each with its `last_action` ([`Firing::last_action`]).
fn firing(s: &State) -> Vec<Firing> {
    s.firing
        .list()
        .into_iter()
        .map(|a| {
            let last = a.decision.as_ref().and_then(|d| {
                let mut last = s.last_actions.iter().rev();
                last.clone().find(|l| l.id == d.id).or_else(|| {
                    let target = a.target.as_deref()?;
                    last.find(|l| l.rule == d.rule && l.target == target)
                })
            });
            Firing {
                alert: a.clone(),
                last_action: last.cloned(),
            }
        })
        .collect()
}

/// Builds the status document; attempts count within the longest budget
/// window any rule uses. `host` is the last scrape's summary
/// ([`crate::hostsummary`]).
pub fn document(cfg: &ReceiverConfig, rules: &[Rule], s: &State, host: Option<HostSummary>) -> StatusDocument {
    let now = crate::time::now();
    let max_window = rules
        .iter()
        .map(|r| r.budget_window)
        .chain([cfg.budget_window])
        .max()
        .unwrap_or_default()
        .as_secs_f64();
    let budgets = s
        .attempts
        .iter()
        .map(|(t, v)| {
            let recent: Vec<f64> = v.iter().copied().filter(|x| now - x < max_window).collect();
            let b = Budget {
                attempts: recent.len(),
                last_attempt: recent.last().copied(),
            };
            (t.clone(), b)
        })
        .collect();
    let backoff = s
        .cooldowns
        .keys()
        .filter_map(|key| {
            let (rule, target) = key.split_once('|')?;
            let rule = rules.iter().find(|r| r.cfg.name == rule)?;
            let (last, failures, d) = super::policy::cooldown(s, rule, target)?;
            // Only a cooldown that grew: failures on a rule without
            // backoff leave it as it is (that is a plain cooldown).
            (failures > 0 && d > rule.cooldown).then(|| {
                let b = Backoff {
                    failures,
                    cooldown_seconds: d.as_secs_f64(),
                    until: last + d.as_secs_f64(),
                };
                (key.clone(), b)
            })
        })
        .collect();
    let quiet = rules
        .iter()
        .filter_map(|r| {
            let w = super::policy::quiet_window(r, now)?;
            Some(Quiet {
                rule: r.cfg.name.clone(),
                window: w.text.to_string(),
                timezone: r.quiet.as_ref().map(|q| q.timezone.to_string()),
            })
        })
        .collect();
    let pending_approvals = s
        .pending
        .iter()
        .map(|(id, p)| PendingApproval {
            id: id.clone(),
            rule: p.rule.clone(),
            target: p.target.clone(),
            at: p.at,
            alertname: p.alert.alertname().to_string(),
            actions: p.actions.clone(),
        })
        .collect();
    StatusDocument {
        updated: now,
        dry_run: cfg.dry_run,
        journal_seq: s.last_seq,
        holds: s.holds.clone(),
        budgets,
        cooldowns: s.cooldowns.clone(),
        backoff,
        quiet,
        pending_approvals,
        last_actions: s.last_actions.clone(),
        firing: firing(s),
        pipeline: Pipeline::of(&s.pipeline, &cfg.heartbeat),
        host,
    }
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

    /// Rule `rule` on target `t` acted at `now` and failed once: a cooldown
    /// and a streak of one failure.
    fn failed_once(s: &mut State, rule: &str, now: f64) {
        let key = crate::receiver::state::cooldown_key(rule, "t");
        s.cooldowns.insert(key.clone(), now);
        let streak = Streak {
            before: 1,
            id: "a1".into(),
            actions: 1,
            outcome: AttemptOutcome::Failed,
        };
        s.streaks.insert(key, streak);
    }

    #[test]
    fn backoff_lists_only_cooldowns_that_grew() {
        let rules = [rule("plain", ""), rule("grows", "backoff_factor = 2.0")];
        let mut s = State::default();
        let now = crate::time::now();
        for r in ["plain", "grows"] {
            failed_once(&mut s, r, now);
        }
        let doc = document(&ReceiverConfig::default(), &rules, &s, None);
        let backoff = &doc.backoff;
        assert_eq!(backoff.keys().collect::<Vec<_>>(), ["grows|t"], "{backoff:?}");
        assert_eq!(backoff["grows|t"].cooldown_seconds, 240.0);
        // The plain cooldown is still in the status document, as a cooldown.
        assert!(doc.cooldowns.contains_key("plain|t"));
    }

    #[test]
    fn the_document_keeps_its_json_keys_and_reads_back() {
        let rules = [rule("grows", "backoff_factor = 2.0")];
        let mut s = State::default();
        let now = crate::time::now();
        failed_once(&mut s, "grows", now);
        s.attempts.insert("t".into(), vec![now]);
        let doc = document(&ReceiverConfig::default(), &rules, &s, None);
        let v = serde_json::to_value(&doc).unwrap();
        let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            keys(&v),
            [
                "backoff",
                "budgets",
                "cooldowns",
                "dry_run",
                "firing",
                "holds",
                "host",
                "journal_seq",
                "last_actions",
                "pending_approvals",
                "pipeline",
                "quiet",
                "updated"
            ]
        );
        assert_eq!(
            keys(&v["pipeline"]),
            [
                "alertname",
                "enabled",
                "last_heartbeat",
                "max_silence_seconds",
                "silent",
                "silent_since"
            ]
        );
        assert_eq!(keys(&v["budgets"]["t"]), ["attempts", "last_attempt"]);
        assert_eq!(
            keys(&v["backoff"]["grows|t"]),
            ["cooldown_seconds", "failures", "until"]
        );
        assert!(v["host"].is_null() && v["pipeline"]["silent_since"].is_null());
        let back: StatusDocument = serde_json::from_value(v).unwrap();
        assert_eq!(back, doc);
    }
}
