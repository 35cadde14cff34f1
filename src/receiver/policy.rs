//! The policy stage: a pure decision per (rule, target) from the safety
//! state — duplicate, hold, cooldown, budget, then the rule's mode (act,
//! dry-run, pending approval). No journal, no I/O, no clock: the caller
//! passes `now` and journals what was decided.

use std::time::Duration;

use super::config::{Mode, Rule};
use super::journal::{self, SkipReason};
use super::state::{self, State};

/// What to do with one (rule, target) of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing runs: held, cooling down, or the budget is spent.
    Skip(SkipReason),
    /// Run the actions now (consumes one attempt of the target's budget).
    Act,
    /// Record (and run in dry-run mode) what would run.
    DryRun,
    /// Notify and wait for a person's approval.
    PendingApproval,
}

impl Decision {
    /// The journal's spelling: the decision, its skip reason, and whether the
    /// event carries the whole alert (an approval runs from it later).
    pub fn journal(self) -> (journal::Decision, Option<SkipReason>, bool) {
        match self {
            Decision::Skip(r) => (journal::Decision::Skip, Some(r), false),
            // The alert is kept for what a person (approval) or a restart
            // after a crash (verifying an interrupted plan) needs later.
            Decision::Act => (journal::Decision::Act, None, true),
            Decision::DryRun => (journal::Decision::DryRun, None, false),
            Decision::PendingApproval => (journal::Decision::PendingApproval, None, true),
        }
    }
}

/// The mode a rule runs in: the global `receiver.dry_run` wins.
pub fn mode(global_dry_run: bool, rule: &Rule) -> Mode {
    if global_dry_run { Mode::DryRun } else { rule.cfg.mode }
}

/// True when the same delivery (`dedup_key`: fingerprint|startsAt|status) was
/// seen within `window` (HA peers and Alertmanager retries send it again).
/// Pruning runs once a minute, so the window itself is checked here.
pub fn duplicate(s: &State, dedup_key: &str, now: f64, window: Duration) -> bool {
    s.dedup
        .get(&state::dedup_digest(dedup_key))
        .is_some_and(|t| now - t < window.as_secs_f64())
}

/// Decides for one (rule, target): a hold always wins; cooldown and budget
/// do not apply in dry-run mode (nothing is attempted); then the mode.
pub fn decide(s: &State, rule: &Rule, target: &str, now: f64, mode: Mode) -> Decision {
    if s.holds.contains_key(target) {
        return Decision::Skip(SkipReason::Hold);
    }
    if mode != Mode::DryRun {
        let cooling = s
            .cooldowns
            .get(&state::cooldown_key(&rule.cfg.name, target))
            .is_some_and(|t| now - t < rule.cooldown.as_secs_f64());
        if cooling {
            return Decision::Skip(SkipReason::Cooldown);
        }
        if s.attempts_within(target, now, rule.budget_window.as_secs_f64()) >= rule.budget_attempts {
            return Decision::Skip(SkipReason::Budget);
        }
    }
    match mode {
        Mode::Auto => Decision::Act,
        Mode::DryRun => Decision::DryRun,
        Mode::NotifyOnly => Decision::PendingApproval,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receiver::config::{ReceiverConfig, RuleConfig, compile_rules};
    use crate::receiver::state::Hold;

    const T: &str = "systemd:system:x.service";

    /// cooldown 60s, budget 2 attempts within 600s.
    fn rule() -> Rule {
        let cfg: RuleConfig = toml::from_str(
            r#"name = "r"
alertname = "A"
cooldown = "60s"
budget_attempts = 2
budget_window = "600s"
actions = [{ type = "exec", argv = ["/usr/bin/true"] }]"#,
        )
        .expect("rule parses");
        compile_rules(&[cfg], &ReceiverConfig::default(), &Default::default())
            .expect("rule compiles")
            .remove(0)
    }

    fn held() -> State {
        let mut s = State::default();
        s.holds.insert(
            T.into(),
            Hold {
                rule: "r".into(),
                since: 0.0,
                fingerprint: "f".into(),
                alertname: "A".into(),
                attempts: 2,
            },
        );
        s
    }

    fn attempted(times: &[f64]) -> State {
        let mut s = State::default();
        s.attempts.insert(T.into(), times.to_vec());
        s
    }

    fn cooling(at: f64) -> State {
        let mut s = State::default();
        s.cooldowns.insert(state::cooldown_key("r", T), at);
        s
    }

    #[test]
    fn decision_table() {
        use Decision::{Act, PendingApproval, Skip};
        use Mode::{Auto, NotifyOnly};
        let now = 1000.0;
        let rows: Vec<(&str, State, Mode, Decision)> = vec![
            ("fresh, auto", State::default(), Auto, Act),
            ("fresh, dry-run", State::default(), Mode::DryRun, Decision::DryRun),
            ("fresh, notify-only", State::default(), NotifyOnly, PendingApproval),
            ("held, auto", held(), Auto, Skip(SkipReason::Hold)),
            ("held, dry-run", held(), Mode::DryRun, Skip(SkipReason::Hold)),
            ("held, notify-only", held(), NotifyOnly, Skip(SkipReason::Hold)),
            ("cooling, auto", cooling(now - 30.0), Auto, Skip(SkipReason::Cooldown)),
            (
                "cooling, notify-only",
                cooling(now - 30.0),
                NotifyOnly,
                Skip(SkipReason::Cooldown),
            ),
            (
                "cooling ignored in dry-run",
                cooling(now - 30.0),
                Mode::DryRun,
                Decision::DryRun,
            ),
            ("cooldown over", cooling(now - 60.0), Auto, Act),
            ("one attempt left", attempted(&[now - 100.0]), Auto, Act),
            (
                "budget spent",
                attempted(&[now - 500.0, now - 100.0]),
                Auto,
                Skip(SkipReason::Budget),
            ),
            (
                "budget ignored in dry-run",
                attempted(&[now - 500.0, now - 100.0]),
                Mode::DryRun,
                Decision::DryRun,
            ),
            (
                "old attempts age out",
                attempted(&[now - 700.0, now - 100.0]),
                Auto,
                Act,
            ),
        ];
        let r = rule();
        for (name, s, mode, want) in rows {
            assert_eq!(decide(&s, &r, T, now, mode), want, "{name}");
        }
    }

    #[test]
    fn duplicates_within_the_window_only() {
        let mut s = State::default();
        s.dedup.insert(state::dedup_digest("f|t|firing"), 100.0);
        let w = Duration::from_secs(60);
        assert!(duplicate(&s, "f|t|firing", 159.0, w));
        assert!(!duplicate(&s, "f|t|firing", 160.0, w), "window over");
        assert!(!duplicate(&s, "f|t|resolved", 120.0, w), "other key");
    }

    #[test]
    fn global_dry_run_wins_and_maps_to_the_journal() {
        let r = rule();
        assert_eq!(mode(true, &r), Mode::DryRun);
        assert_eq!(mode(false, &r), Mode::Auto);
        assert_eq!(
            Decision::PendingApproval.journal(),
            (journal::Decision::PendingApproval, None, true)
        );
        assert_eq!(
            Decision::Skip(SkipReason::Budget).journal(),
            (journal::Decision::Skip, Some(SkipReason::Budget), false)
        );
    }
}
