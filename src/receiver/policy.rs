//! The policy stage: a pure decision per (rule, target) from the safety
//! state — hold, quiet window, cooldown (grown by backoff), budget, then
//! the rule's mode (act, dry-run, pending approval). No journal, no I/O, no
//! clock: the caller passes `now` and journals what was decided.

use std::time::Duration;

use super::config::{Mode, Rule};
use super::journal::{self, SkipReason};
use super::quiet::Window;
use super::state::{self, State};

/// What to do with one (rule, target) of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing runs: held, in a quiet window, cooling down, or the budget is spent.
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

/// The rule's quiet window covering `now`, if any.
pub fn quiet_window(rule: &Rule, now: f64) -> Option<&Window> {
    rule.quiet.as_ref().and_then(|q| q.covering(now))
}

/// The cooldown after `failures` consecutive failed attempts:
/// `cooldown × backoff_factor^failures`, at most `backoff_max` (never below
/// the plain cooldown).
pub fn cooldown_after(rule: &Rule, failures: u32) -> Duration {
    if failures == 0 || rule.backoff_factor <= 1.0 {
        return rule.cooldown;
    }
    let grown = rule.cooldown.as_secs_f64() * rule.backoff_factor.powi(failures.min(1024) as i32);
    let max = rule.backoff_max.max(rule.cooldown);
    if grown.is_finite() && grown < max.as_secs_f64() {
        Duration::from_secs_f64(grown)
    } else {
        max
    }
}

/// The cooldown of (rule, target) in force: (last attempt, consecutive
/// failures, its length), when there was an attempt.
pub fn cooldown(s: &State, rule: &Rule, target: &str) -> Option<(f64, u32, Duration)> {
    let key = state::cooldown_key(&rule.cfg.name, target);
    let last = *s.cooldowns.get(&key)?;
    let failures = s.streaks.get(&key).map_or(0, state::Streak::failures);
    Some((last, failures, cooldown_after(rule, failures)))
}

/// Decides for one (rule, target): a hold always wins; a quiet window
/// covering `now` comes next (in every mode: nothing acts in it, not even
/// exhausted actions); cooldown and budget do not apply in dry-run mode
/// (nothing is attempted); then the mode.
pub fn decide(s: &State, rule: &Rule, target: &str, now: f64, mode: Mode) -> Decision {
    if s.holds.contains_key(target) {
        return Decision::Skip(SkipReason::Hold);
    }
    if quiet_window(rule, now).is_some() {
        return Decision::Skip(SkipReason::Quiet);
    }
    if mode != Mode::DryRun {
        let cooling = cooldown(s, rule, target).is_some_and(|(last, _, d)| now - last < d.as_secs_f64());
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

/// The decision's `detail` for the journal: the quiet window
/// (`window "Mon-Fri 02:00-03:30" (UTC)`), or the cooldown's length, its
/// growth and its end (`20m (backoff after 2 failed attempt(s)) until …`).
/// Empty for other decisions.
pub fn detail(s: &State, rule: &Rule, target: &str, now: f64, decision: Decision) -> String {
    match decision {
        Decision::Skip(SkipReason::Quiet) => match (quiet_window(rule, now), &rule.quiet) {
            (Some(w), Some(q)) => format!("window {:?} ({})", w.text, q.timezone),
            _ => String::new(),
        },
        Decision::Skip(SkipReason::Cooldown) => match cooldown(s, rule, target) {
            Some((last, failures, d)) => format!(
                "{}{} until {}",
                humantime::format_duration(Duration::from_secs(d.as_secs())),
                if failures > 0 {
                    format!(" (backoff after {failures} failed attempt(s))")
                } else {
                    String::new()
                },
                humantime::format_rfc3339_seconds(crate::time::system_time(last + d.as_secs_f64()))
            ),
            None => String::new(),
        },
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receiver::config::{ReceiverConfig, RuleConfig, compile_rules};
    use crate::receiver::state::{AttemptOutcome, Hold, Streak};
    use Decision::Skip;

    const T: &str = "systemd:system:x.service";

    /// cooldown 60s, budget 2 attempts within 600s, plus `extra` keys.
    fn rule_with(extra: &str) -> Rule {
        let cfg: RuleConfig = toml::from_str(&format!(
            r#"name = "r"
alertname = "A"
cooldown = "60s"
budget_attempts = 2
budget_window = "600s"
{extra}
actions = [{{ type = "exec", argv = ["/usr/bin/true"] }}]"#
        ))
        .expect("rule parses");
        compile_rules(&[cfg], &ReceiverConfig::default(), &Default::default())
            .expect("rule compiles")
            .remove(0)
    }

    fn rule() -> Rule {
        rule_with("")
    }

    /// `now` (1000 s after the epoch) is a Thursday, 00:16:40 UTC.
    fn quiet_now() -> Rule {
        rule_with(
            r#"quiet = ["Fri 00:00-01:00", "Thu 00:00-01:00"]
timezone = "UTC""#,
        )
    }

    fn quiet_elsewhere() -> Rule {
        rule_with(
            r#"quiet = ["Thu 01:00-02:00", "Wed 22:00-00:15"]
timezone = "UTC""#,
        )
    }

    /// cooldown 60s × 2 per failed attempt, at most 200s.
    fn backoff() -> Rule {
        rule_with("backoff_factor = 2.0\nbackoff_max = \"200s\"")
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

    /// Last attempt at `at`, after `before` consecutive failures, with
    /// `outcome` so far.
    fn streak(at: f64, before: u32, outcome: AttemptOutcome) -> State {
        let mut s = cooling(at);
        s.streaks.insert(
            state::cooldown_key("r", T),
            Streak {
                before,
                id: "a1".into(),
                actions: 1,
                outcome,
            },
        );
        s
    }

    fn spent_budget(now: f64) -> State {
        attempted(&[now - 500.0, now - 100.0])
    }

    #[test]
    fn decision_table() {
        use Decision::{Act, PendingApproval, Skip};
        use Mode::{Auto, NotifyOnly};
        let now = 1000.0;
        use AttemptOutcome::{Failed, Helped, Open};
        let (plain, quiet, elsewhere, backoff) = (rule(), quiet_now(), quiet_elsewhere(), backoff());
        let rows: Vec<(&str, &Rule, State, Mode, Decision)> = vec![
            ("fresh, auto", &plain, State::default(), Auto, Act),
            (
                "fresh, dry-run",
                &plain,
                State::default(),
                Mode::DryRun,
                Decision::DryRun,
            ),
            (
                "fresh, notify-only",
                &plain,
                State::default(),
                NotifyOnly,
                PendingApproval,
            ),
            ("held, auto", &plain, held(), Auto, Skip(SkipReason::Hold)),
            ("held, dry-run", &plain, held(), Mode::DryRun, Skip(SkipReason::Hold)),
            ("held, notify-only", &plain, held(), NotifyOnly, Skip(SkipReason::Hold)),
            (
                "cooling, auto",
                &plain,
                cooling(now - 30.0),
                Auto,
                Skip(SkipReason::Cooldown),
            ),
            (
                "cooling, notify-only",
                &plain,
                cooling(now - 30.0),
                NotifyOnly,
                Skip(SkipReason::Cooldown),
            ),
            (
                "cooling ignored in dry-run",
                &plain,
                cooling(now - 30.0),
                Mode::DryRun,
                Decision::DryRun,
            ),
            ("cooldown over", &plain, cooling(now - 60.0), Auto, Act),
            ("one attempt left", &plain, attempted(&[now - 100.0]), Auto, Act),
            (
                "budget spent",
                &plain,
                attempted(&[now - 500.0, now - 100.0]),
                Auto,
                Skip(SkipReason::Budget),
            ),
            (
                "budget ignored in dry-run",
                &plain,
                attempted(&[now - 500.0, now - 100.0]),
                Mode::DryRun,
                Decision::DryRun,
            ),
            (
                "old attempts age out",
                &plain,
                attempted(&[now - 700.0, now - 100.0]),
                Auto,
                Act,
            ),
            (
                "quiet window, auto",
                &quiet,
                State::default(),
                Auto,
                Skip(SkipReason::Quiet),
            ),
            (
                "quiet window, dry-run",
                &quiet,
                State::default(),
                Mode::DryRun,
                Skip(SkipReason::Quiet),
            ),
            (
                "quiet window, notify-only",
                &quiet,
                State::default(),
                NotifyOnly,
                Skip(SkipReason::Quiet),
            ),
            (
                "a hold beats a quiet window",
                &quiet,
                held(),
                Auto,
                Skip(SkipReason::Hold),
            ),
            (
                "a quiet window beats a spent budget (no hold, no exhausted actions)",
                &quiet,
                spent_budget(now),
                Auto,
                Skip(SkipReason::Quiet),
            ),
            ("windows not covering now", &elsewhere, State::default(), Auto, Act),
            (
                "cooling outside the windows",
                &elsewhere,
                cooling(now - 30.0),
                Auto,
                Skip(SkipReason::Cooldown),
            ),
            (
                "backoff: 1 failure doubles 60s",
                &backoff,
                streak(now - 100.0, 0, Failed),
                Auto,
                Skip(SkipReason::Cooldown),
            ),
            (
                "backoff: 120s over",
                &backoff,
                streak(now - 120.0, 0, Failed),
                Auto,
                Act,
            ),
            (
                "backoff: 2 failures, 240s",
                &backoff,
                streak(now - 190.0, 1, Failed),
                Auto,
                Skip(SkipReason::Cooldown),
            ),
            (
                "backoff: capped at 200s",
                &backoff,
                streak(now - 200.0, 1, Failed),
                Auto,
                Act,
            ),
            (
                "backoff: 9 failures still 200s",
                &backoff,
                streak(now - 200.0, 8, Failed),
                Auto,
                Act,
            ),
            (
                "backoff: running attempt keeps the level before it",
                &backoff,
                streak(now - 100.0, 1, Open),
                Auto,
                Skip(SkipReason::Cooldown),
            ),
            (
                "backoff: a helped attempt resets",
                &backoff,
                streak(now - 60.0, 3, Helped),
                Auto,
                Act,
            ),
            (
                "backoff: plain cooldown before any failure",
                &backoff,
                streak(now - 30.0, 0, Open),
                Auto,
                Skip(SkipReason::Cooldown),
            ),
            (
                "backoff ignored in dry-run",
                &backoff,
                streak(now - 100.0, 3, Failed),
                Mode::DryRun,
                Decision::DryRun,
            ),
            (
                "no backoff_factor: failures do not grow it",
                &plain,
                streak(now - 60.0, 5, Failed),
                Auto,
                Act,
            ),
        ];
        for (name, r, s, mode, want) in rows {
            assert_eq!(decide(&s, r, T, now, mode), want, "{name}");
        }
    }

    #[test]
    fn backoff_grows_per_failure_up_to_the_ceiling() {
        let r = backoff();
        let secs: Vec<u64> = (0..5).map(|n| cooldown_after(&r, n).as_secs()).collect();
        assert_eq!(secs, [60, 120, 200, 200, 200]);
        assert_eq!(cooldown_after(&r, u32::MAX).as_secs(), 200);
        assert_eq!(cooldown_after(&rule(), 7).as_secs(), 60);
    }

    #[test]
    fn details_name_the_window_and_the_grown_cooldown() {
        let now = 1000.0;
        let d = detail(&State::default(), &quiet_now(), T, now, Skip(SkipReason::Quiet));
        assert_eq!(d, r#"window "Thu 00:00-01:00" (UTC)"#);
        let d = detail(
            &streak(now - 100.0, 1, AttemptOutcome::Failed),
            &backoff(),
            T,
            now,
            Skip(SkipReason::Cooldown),
        );
        assert_eq!(
            d,
            "3m 20s (backoff after 2 failed attempt(s)) until 1970-01-01T00:18:20Z"
        );
        assert_eq!(detail(&State::default(), &rule(), T, now, Decision::Act), "");
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
