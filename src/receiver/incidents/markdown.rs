//! The incidents rendered as markdown, grouped by the day each started:
//! the heading with severity and state, what happened, the deliveries, per
//! plan its decision, evidence, actions, verification, timeline and
//! notifications, the holds, the state and the follow-up.

use std::fmt::Write as _;

use super::fold::follow;
use super::{
    Captured, Incident, Notification, Plan, PlanTimeline, State, build, clock, code, esc, one_line, open_only, time,
    zone_of,
};
use crate::evidence::Stage;
use crate::receiver::journal::{Decision, Entry, Event};
use crate::receiver::payload::Status;
use crate::receiver::timeline::Stage as Step;

/// Renders the journal's incidents as markdown, grouped by the day each
/// started; `open` keeps those not resolved.
pub fn markdown(entries: &[Entry], source: &str, since: Option<f64>, warnings: usize) -> String {
    render(entries, source, since, warnings, false)
}

/// [`markdown`] of the incidents not resolved (`--open`).
pub fn markdown_open(entries: &[Entry], source: &str, since: Option<f64>, warnings: usize) -> String {
    render(entries, source, since, warnings, true)
}

fn render(entries: &[Entry], source: &str, since: Option<f64>, warnings: usize, open: bool) -> String {
    let (mut incidents, orphans) = build(entries);
    if open {
        incidents = open_only(incidents);
    }
    let mut out = String::new();
    let _ = writeln!(out, "# hostmedic incident log\n");
    let open_n = incidents.iter().filter(|i| i.state != State::Resolved).count();
    let _ = writeln!(
        out,
        "Journal `{source}`, {} entries{}: {} incident(s){}, {open_n} not resolved.{}\n",
        entries.len(),
        since.map(|s| format!(" since {}", time(s))).unwrap_or_default(),
        incidents.len(),
        if open { " shown (--open)" } else { "" },
        if warnings > 0 {
            format!(" {warnings} unreadable line(s) skipped (torn write after a crash).")
        } else {
            String::new()
        }
    );
    let mut day = String::new();
    for inc in &incidents {
        let t = time(inc.first_seen);
        if t.get(..10) != Some(day.as_str()) {
            day = t.get(..10).unwrap_or("").to_string();
            let _ = writeln!(out, "## {day} (times in {})\n", zone_of(inc.first_seen));
        }
        incident(&mut out, inc);
    }
    if !open && !orphans.is_empty() {
        let _ = writeln!(out, "## Follow-ups of decisions before the window\n");
        for p in orphan_plans(&orphans) {
            let _ = writeln!(out, "- [{}]", p.id);
            plan_lines(&mut out, &p);
        }
    }
    out
}

/// The follow-ups whose decision is not in the entries, gathered per plan
/// id (first seen first), each under a plan without a decision.
fn orphan_plans(orphans: &[&Entry]) -> Vec<Plan> {
    let mut plans: Vec<Plan> = Vec::new();
    for e in orphans {
        let Some(id) = plan_id(&e.event) else { continue };
        let i = match plans.iter().position(|p| p.id == id) {
            Some(i) => i,
            None => {
                plans.push(Plan::follow_ups_of(id, e.ts));
                plans.len() - 1
            }
        };
        follow(&mut plans[i], e);
    }
    plans
}

fn plan_id(e: &Event) -> Option<&str> {
    match e {
        Event::Action { id, .. }
        | Event::Verify { id, .. }
        | Event::Approved { id, .. }
        | Event::Evidence { id, .. }
        | Event::Notified { id, .. } => Some(id),
        Event::Alert { .. }
        | Event::Refused { .. }
        | Event::RefusedForeign { .. }
        | Event::Decision { .. }
        | Event::Spawned { .. }
        | Event::Hold { .. }
        | Event::HoldCleared { .. }
        | Event::Pipeline(_) => None,
    }
}

/// One incident: its heading, what happened, then one line per delivery,
/// refusal, note, notification, plan and hold, and its state.
fn incident(out: &mut String, inc: &Incident) {
    let state = match (inc.state, inc.resolved_at) {
        (State::Resolved, Some(at)) => format!("resolved at {}", time(at)),
        (s, _) => s.as_str().to_string(),
    };
    let _ = writeln!(
        out,
        "### {} {} — {} — **{state}**\n",
        clock(inc.first_seen),
        esc(&inc.alertname),
        esc(inc.severity.as_deref().unwrap_or("no severity")),
    );
    if let Some(s) = &inc.summary {
        let _ = writeln!(out, "**What happened**: {}\n", one_line(s));
    }
    if let Some(d) = &inc.description {
        for l in d.lines().filter(|l| !l.trim().is_empty()).take(12) {
            let _ = writeln!(out, "> {}", esc(l.trim()));
        }
        out.push('\n');
    }
    deliveries(out, inc);
    let alertname = esc(&inc.alertname);
    for r in &inc.refusals {
        let _ = writeln!(out, "- **{alertname}** {}", esc(r));
    }
    for n in &inc.notes {
        let _ = writeln!(out, "- {}", esc(n));
    }
    for n in &inc.notifications {
        let _ = writeln!(out, "- {}", notification_line(n));
    }
    for p in &inc.plans {
        plan(out, p);
    }
    for h in &inc.holds {
        let _ = writeln!(
            out,
            "- {} **remediation exhausted**: {} held after {} attempt(s) (rule {}, alert {}); escalated{}",
            clock(h.at),
            code(&h.target),
            h.attempts,
            code(&h.rule),
            alertname,
            h.cleared
                .as_ref()
                .map(|c| format!("; hold cleared by {} at {}", c.by, clock(c.at)))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(out, "- **State**: {state}");
    if !inc.follow_up.is_empty() {
        let _ = writeln!(out, "- **Follow-up**:");
        for f in &inc.follow_up {
            let _ = writeln!(out, "  - {}", code(f));
        }
    }
    out.push('\n');
}

/// One line per delivery (duplicates counted on one line).
fn deliveries(out: &mut String, inc: &Incident) {
    let labels: Vec<String> = inc
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .map(|(k, v)| format!("{k}={}", esc(v)))
        .collect();
    let alertname = esc(&inc.alertname);
    let mut dups = 0;
    for d in &inc.deliveries {
        if d.duplicate {
            dups += 1;
            continue;
        }
        let _ = writeln!(
            out,
            "- {} **{}** {} {}{}",
            clock(d.at),
            alertname,
            d.status,
            code(&labels.join(", ")),
            inc.summary
                .as_deref()
                .filter(|_| d.status == Status::Firing)
                .map(|s| format!(" — {}", one_line(s)))
                .unwrap_or_default()
        );
    }
    if dups > 0 {
        let _ = writeln!(
            out,
            "- {dups} duplicate delivery(ies) (fingerprint {}), ignored",
            inc.fingerprint
        );
    }
}

fn plan(out: &mut String, p: &Plan) {
    let what = match (p.decision, p.reason) {
        (Decision::Act, _) => format!("acting: {}", p.planned.join("; ")),
        (Decision::DryRun, _) => format!("dry run, would run: {}", p.planned.join("; ")),
        (Decision::PendingApproval, _) => format!(
            "waiting for approval (`{}`): {}",
            crate::invocation::command(&format!("approve {}", p.id)),
            p.planned.join("; ")
        ),
        (Decision::Skip, Some(r)) if !p.detail.is_empty() => {
            format!("skipped ({}: {})", r.as_str().replace('_', " "), p.detail)
        }
        (Decision::Skip, Some(r)) => format!("skipped ({})", r.as_str().replace('_', " ")),
        (Decision::Skip, None) => "skipped".into(),
    };
    let _ = writeln!(
        out,
        "- {} rule {} ({}) on {} [{}]: {}",
        clock(p.at),
        code(&p.rule),
        p.mode,
        code(&p.target),
        p.id,
        one_line(&what)
    );
    plan_lines(out, p);
}

/// What followed a plan's decision, one indented line (or block) each.
fn plan_lines(out: &mut String, p: &Plan) {
    if let Some(by) = &p.approved_by {
        let _ = writeln!(out, "  - approved by {by}");
    }
    for c in p.evidence.iter().filter(|c| c.stage == Stage::Before) {
        evidence(out, c);
    }
    for a in &p.actions {
        let _ = writeln!(
            out,
            "  - {} {}: **{}** ({:.2} s){}",
            clock(a.at),
            esc(&a.description),
            a.result,
            a.duration_seconds,
            // The rest of the detail follows as a block: no "…" here.
            sep_detail(a.detail.lines().next().unwrap_or_default())
        );
        output_block(out, &a.detail);
    }
    if let Some(v) = &p.verification {
        let _ = writeln!(
            out,
            "  - {} verification: **{}**{}",
            clock(v.at),
            v.result.as_str().replace('_', " "),
            sep_detail(&v.detail)
        );
    }
    for c in p.evidence.iter().filter(|c| c.stage == Stage::Verification) {
        evidence(out, c);
    }
    if let Some(t) = p.timeline.as_ref().filter(|t| !t.stages.is_empty()) {
        let _ = writeln!(out, "  - {}", timeline_line(t));
    }
    for n in &p.notifications {
        let _ = writeln!(out, "  - {}", notification_line(n));
    }
}

/// A plan's timeline on one line: each known stage with its seconds (under
/// a second in milliseconds); without a total, why there is none.
fn timeline_line(t: &PlanTimeline) -> String {
    let span = |d: f64| {
        if d < 1.0 {
            format!("{:.0} ms", d * 1000.0)
        } else {
            format!("{d:.2} s")
        }
    };
    let mut parts: Vec<String> = t
        .stages
        .iter()
        .map(|(s, d)| {
            let name = match s {
                Step::AlertToDelivery => "alert→delivery",
                Step::DeliveryToDecision => "delivery→decision",
                Step::DecisionToActionStart => "decision→action",
                Step::Action => "action",
                Step::Verification => "verification",
                Step::Total => "total",
            };
            format!("{name} {}", span(*d))
        })
        .collect();
    if !t.stages.contains_key(&Step::Total) {
        parts.push(
            match (t.at.succeeded, t.at.starts_at) {
                (false, _) => "no total (not remediated)",
                (true, None) => "no total (no alert startsAt)",
                (true, Some(_)) => "no total (startsAt ahead of this host's clock)",
            }
            .to_string(),
        );
    }
    format!("timeline: {}", parts.join(", "))
}

fn notification_line(n: &Notification) -> String {
    format!(
        "{} {} notification to {}: {}{}",
        clock(n.at),
        n.kind,
        n.channel,
        if n.ok { "sent" } else { "FAILED" },
        if n.ok { String::new() } else { sep_detail(&n.detail) }
    )
}

fn sep_detail(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" — {}", one_line(detail))
    }
}

/// Most lines of an action's output shown under it; the journal (and
/// `incidents --json`) keep the whole detail.
const OUTPUT_LINES: usize = 20;

/// What an action's detail says past its first line (the command's stdout
/// and stderr, an exec's `exit status 0` being only the first line), as a
/// text block under the action: the meaningful part is not cut away.
fn output_block(out: &mut String, detail: &str) {
    let rest: Vec<&str> = detail
        .lines()
        .skip(1)
        .map(str::trim_end)
        .skip_while(|l| l.is_empty())
        .collect();
    let rest = rest.as_slice().trim_ascii_end_lines();
    if rest.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n    ```text");
    for l in rest.iter().take(OUTPUT_LINES) {
        let _ = writeln!(out, "    {}", l.replace("```", "` ` `"));
    }
    let _ = writeln!(out, "    ```");
    if rest.len() > OUTPUT_LINES {
        let _ = writeln!(
            out,
            "\n    ({} more line(s): `hostmedic incidents --json`)",
            rest.len() - OUTPUT_LINES
        );
    }
    out.push('\n');
}

/// Slices of lines without the empty ones at their end.
trait TrimLines {
    fn trim_ascii_end_lines(&self) -> &Self;
}

impl TrimLines for [&str] {
    fn trim_ascii_end_lines(&self) -> &Self {
        let end = self.iter().rposition(|l| !l.is_empty()).map_or(0, |i| i + 1);
        &self[..end]
    }
}

fn evidence(out: &mut String, c: &Captured) {
    let _ = writeln!(out, "  - {} evidence {}:", clock(c.at), c.stage.heading());
    for item in &c.items {
        let facts: Vec<String> = item.facts.iter().map(|(k, v)| format!("{k}={}", esc(v))).collect();
        let _ = writeln!(out, "    - {} {}", code(&item.subject), facts.join(", "));
        for e in &item.errors {
            let _ = writeln!(out, "      - not read: {}", one_line(e));
        }
        for s in item.sections.iter().filter(|s| !s.lines.is_empty()) {
            let _ = writeln!(out, "      - {}:\n\n        ```text", s.title);
            for l in &s.lines {
                let _ = writeln!(out, "        {}", esc(l).replace("```", "` ` `"));
            }
            let _ = writeln!(out, "        ```\n");
        }
        if item.truncated_bytes > 0 {
            let _ = writeln!(out, "      - ({} bytes cut to fit the limits)", item.truncated_bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_journal::{journal, timed_journal};
    use super::*;

    #[test]
    fn each_plan_shows_its_timeline_on_one_line() {
        let (entries, _) = timed_journal();
        let md = markdown(&entries, "j", None, 0);
        let want = "  - timeline: alert→delivery 1.00 s, delivery→decision 250 ms, \
                    decision→action 250 ms, action 500 ms, verification 1.50 s, total 3.50 s\n";
        assert!(md.contains(want), "lacks {want:?}:\n{md}");
        // After the verification, once per plan that ran something.
        assert!(md.find("verification: **verified**").unwrap() < md.find("timeline:").unwrap());
        assert_eq!(md.matches("timeline:").count(), 1, "{md}");
        // A failed action: its stages, and why there is no total.
        let mut failed = entries.clone();
        if let Event::Verify { result, .. } = &mut failed[3].event {
            *result = crate::receiver::journal::VerifyResult::NotHelped;
        }
        let md = markdown(&failed, "j", None, 0);
        assert!(md.contains("verification 1.50 s, no total (not remediated)\n"), "{md}");
    }

    #[test]
    fn an_action_keeps_its_output_not_only_exit_status_0() {
        let mut entries = journal();
        let detail = "[\"/usr/local/bin/rotate\"]: exit status 0\nstdout:\nrotated 3 files\nfreed 2.1 GiB\n";
        let mut n = 0;
        for e in &mut entries {
            if let Event::Action { detail: d, .. } = &mut e.event {
                *d = detail.into();
                n += 1;
            }
        }
        assert!(n > 0);
        let md = markdown(&entries, "j", None, 0);
        assert!(md.contains("— [\"/usr/local/bin/rotate\"]: exit status 0\n"), "{md}");
        assert!(!md.contains("exit status 0…"), "{md}");
        let block = "\n    ```text\n    stdout:\n    rotated 3 files\n    freed 2.1 GiB\n    ```\n";
        assert!(md.contains(block), "lacks {block:?}:\n{md}");
        // A long output is bounded, what is left out counted.
        let long: String = (0..30).map(|i| format!("line {i}\n")).collect();
        for e in &mut entries {
            if let Event::Action { detail: d, .. } = &mut e.event {
                *d = format!("first\n{long}");
            }
        }
        let md = markdown(&entries, "j", None, 0);
        assert!(md.contains("    line 19\n    ```\n\n    (10 more line(s)"), "{md}");
        assert!(!md.contains("line 20\n"), "{md}");
    }

    #[test]
    fn follow_ups_of_a_decision_before_the_window_are_listed_apart() {
        let entries: Vec<Entry> = journal().into_iter().filter(|e| e.seq >= 3 && e.seq <= 5).collect();
        let (incidents, orphans) = build(&entries);
        assert!(incidents.is_empty());
        assert_eq!(orphans.len(), 3);
        let md = markdown(&entries, "j", Some(100.1), 0);
        let tail = md.split("## Follow-ups of decisions before the window").nth(1).unwrap();
        assert!(tail.contains("- [a1]"), "{md}");
        assert!(
            tail.contains("evidence before acting:") && tail.contains("ModuleNotFoundError"),
            "{md}"
        );
        assert!(tail.contains("verification: **verified**"), "{md}");
    }

    #[test]
    fn control_characters_from_an_alert_cannot_forge_lines() {
        let mut entries = journal();
        let forged = "worker.service\n# forged heading\r\n- **State**: resolved\u{1b}[2J";
        for e in &mut entries {
            match &mut e.event {
                Event::Alert {
                    labels,
                    alertname,
                    summary,
                    ..
                } => {
                    labels.insert("unit".into(), forged.into());
                    *alertname = "HostmedicUnitCrashLooping\n## forged day".to_string();
                    *summary = Some("crash-looping\r\n### forged incident".into());
                }
                Event::Decision { target, .. } => *target = format!("systemd:system:{forged}"),
                _ => {}
            }
        }
        let md = markdown(&entries, "j", None, 0);
        for line in md.lines() {
            assert!(
                !line.trim_start().starts_with("# forged"),
                "forged line {line:?} in:\n{md}"
            );
            assert!(
                !line.starts_with("## forged") && !line.starts_with("### forged"),
                "{line:?}:\n{md}"
            );
            assert!(!line.contains('\u{1b}') && !line.contains('\r'), "{line:?}");
        }
        assert!(md.contains("unit=worker.service\\n# forged heading\\r\\n"), "{md}");
        assert!(md.contains("HostmedicUnitCrashLooping\\n## forged day"), "{md}");
        assert!(md.contains("\\u{1b}[2J"), "{md}");
    }
}
