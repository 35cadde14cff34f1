//! The receiver's sections, rendered from the status document
//! `/api/v1/status` serves: the alert pipeline's heartbeat, the alerts
//! firing with what hostmedic did about each, pending approvals, holds,
//! grown cooldowns and quiet windows.

use std::fmt::Write as _;
use std::time::Duration;

use super::Clock;
use super::html::{heading, html_escape, table};
use crate::receiver::journal::Decision;
use crate::receiver::status::{Firing, StatusDocument};

/// An exec result's first line without the argv it starts with (the
/// target names it already): `["/bin/x"]: exit status 0` → `exit status 0`.
fn without_argv(line: &str) -> &str {
    if !line.starts_with("[\"") {
        return line;
    }
    line.find("\"]")
        .and_then(|i| line[i..].find(": ").map(|j| &line[i + j + 2..]))
        .unwrap_or(line)
}

/// The gist of an action's detail, at most 160 characters: its first line
/// and, when it carries the command's output (`stdout:` / `stderr:` blocks),
/// the first line of that output, which says more than "exit status 0".
pub(super) fn short(detail: &str) -> String {
    let mut lines = detail.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = without_argv(lines.next().unwrap_or_default());
    let output = lines.find(|l| !(l.ends_with(':') && (l.starts_with("stdout") || l.starts_with("stderr"))));
    let line = match output {
        Some(o) => format!("{first}; {o}"),
        None => first.to_string(),
    };
    let mut t: String = line.chars().take(160).collect();
    if t.len() < line.len() {
        t.push('…');
    }
    t
}

/// The alert pipeline's heartbeat.
pub fn pipeline(out: &mut String, c: &Clock, st: &StatusDocument) {
    heading(out, "pipeline", "Alert pipeline");
    let p = &st.pipeline;
    let last = p.last_heartbeat.map(|t| c.at(t)).unwrap_or_else(|| "none yet".into());
    let line = if !p.enabled {
        format!("dead-man's switch off; last {} heartbeat: {last}", p.alertname)
    } else if p.silent {
        format!(
            "SILENT since {}: no {} heartbeat; Prometheus or Alertmanager down?",
            p.silent_since.map(|t| c.at(t)).unwrap_or_default(),
            p.alertname
        )
    } else {
        format!("ok; last {} heartbeat: {last}", p.alertname)
    };
    let class = if p.silent { "failing" } else { "ok" };
    let _ = writeln!(out, "<p class=\"{class}\">{}</p>", html_escape(&line));
}

/// What hostmedic did about one firing alert: its last decision and the
/// last result of the plan it started.
pub(super) fn did(c: &Clock, a: &Firing) -> String {
    let result = a.last_action.as_ref().map(|l| {
        let detail = short(&l.detail);
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        };
        format!("{} {} ({}){detail}", l.action, l.result.replace('_', " "), c.ago(l.ts))
    });
    let Some(d) = &a.alert.decision else {
        return match a.alert.target {
            None => "nothing: no rule maps it".into(),
            Some(_) => "nothing yet".into(),
        };
    };
    let decided = c.ago(d.at);
    match d.decision {
        Decision::Act => result.unwrap_or_else(|| format!("acting (decided {decided}), no result yet")),
        Decision::DryRun => match result {
            Some(r) => format!("dry run, nothing ran: {r}"),
            None => format!("dry run, nothing ran (decided {decided})"),
        },
        Decision::PendingApproval => format!(
            "waiting for approval ({decided}): {}",
            crate::invocation::command(&format!("approve {}", crate::invocation::quote(&d.id)))
        ),
        Decision::Skip => {
            let why = d.reason.as_deref().unwrap_or_default().replace('_', " ");
            let last = result.map(|r| format!("; last result: {r}")).unwrap_or_default();
            format!("not acting: {why} ({decided}){last}")
        }
    }
}

/// The alerts firing, each with what hostmedic did about it.
pub fn firing(out: &mut String, c: &Clock, st: &StatusDocument) {
    heading(out, "firing", "Alerts firing");
    let rows: Vec<Vec<String>> = st
        .firing
        .iter()
        .map(|a| {
            let f = &a.alert;
            vec![
                f.severity.clone(),
                f.name.clone(),
                c.at_text(&f.since),
                f.target.clone().unwrap_or_default(),
                f.summary.clone().unwrap_or_default(),
                did(c, a),
            ]
        })
        .collect();
    table(
        out,
        &["severity", "alert", "since", "target", "summary", "what hostmedic did"],
        &rows,
        "none",
    );
}

/// Pending approvals, each with the command that approves it.
pub fn approvals(out: &mut String, c: &Clock, st: &StatusDocument) {
    heading(out, "approvals", "Pending approvals");
    let rows: Vec<Vec<String>> = st
        .pending_approvals
        .iter()
        .map(|a| {
            vec![
                a.id.clone(),
                a.rule.clone(),
                a.target.clone(),
                a.alertname.clone(),
                c.at(a.at),
                crate::invocation::command(&format!("approve {}", crate::invocation::quote(&a.id))),
            ]
        })
        .collect();
    table(
        out,
        &["id", "rule", "target", "alert", "since", "approve with"],
        &rows,
        "none",
    );
}

/// Targets held after their budget ran out.
pub fn holds(out: &mut String, c: &Clock, st: &StatusDocument) {
    heading(out, "holds", "Holds");
    let rows: Vec<Vec<String>> = st
        .holds
        .iter()
        .map(|(target, h)| {
            vec![
                target.clone(),
                h.rule.clone(),
                h.alertname.clone(),
                c.at(h.since),
                h.attempts.to_string(),
            ]
        })
        .collect();
    table(out, &["target", "rule", "alert", "since", "attempts"], &rows, "none");
}

/// Cooldowns grown by failed attempts.
pub fn backoff(out: &mut String, c: &Clock, st: &StatusDocument) {
    heading(out, "backoff", "Grown cooldowns (backoff)");
    let rows: Vec<Vec<String>> = st
        .backoff
        .iter()
        .map(|(key, b)| {
            // The status document keys backoff by `rule|target`.
            let (rule, target) = key.split_once('|').unwrap_or((key.as_str(), ""));
            vec![
                target.to_string(),
                rule.to_string(),
                b.failures.to_string(),
                humantime::format_duration(Duration::from_secs(b.cooldown_seconds.round() as u64)).to_string(),
                c.at(b.until),
            ]
        })
        .collect();
    table(
        out,
        &["target", "rule", "failed attempts", "cooldown", "until"],
        &rows,
        "none",
    );
}

/// Rules a quiet window keeps from acting now.
pub fn quiet(out: &mut String, st: &StatusDocument) {
    heading(out, "quiet", "Quiet windows now");
    let rows: Vec<Vec<String>> = st
        .quiet
        .iter()
        .map(|q| vec![q.rule.clone(), q.window.clone(), q.timezone.clone().unwrap_or_default()])
        .collect();
    table(out, &["rule (not acting)", "window", "timezone"], &rows, "none");
}
