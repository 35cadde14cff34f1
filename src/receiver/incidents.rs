//! `hostmedic incidents`: renders the journal as a readable markdown incident
//! log (or filtered JSON), newest last.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use super::journal::{self, Decision, Entry, Event, JournalError};

/// Parses `--since`: a duration ago (`2h`, `30m`, `7d`) or an RFC 3339
/// timestamp. Returns Unix seconds.
pub fn parse_since(s: &str, now: f64) -> Result<f64, String> {
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now - d.as_secs_f64());
    }
    crate::time::parse_rfc3339(s)
        .ok_or_else(|| format!("--since {s:?}: expected a duration (2h, 30m, 7d) or an RFC 3339 timestamp"))
}

fn time(ts: f64) -> String {
    humantime::format_rfc3339_seconds(crate::time::system_time(ts)).to_string()
}

fn clock(ts: f64) -> String {
    let t = time(ts);
    t.get(11..19).unwrap_or(&t).to_string()
}

/// Reads the journal entries at or after `since`.
pub fn load(path: &Path, since: Option<f64>) -> Result<(Vec<Entry>, usize), JournalError> {
    let (mut entries, warnings) = journal::read_from(path, 0)?;
    if let Some(since) = since {
        entries.retain(|e| e.ts >= since);
    }
    Ok((entries, warnings))
}

fn code(s: &str) -> String {
    format!("`{}`", s.replace('`', "'"))
}

fn one_line(s: &str) -> String {
    let first = s.lines().next().unwrap_or("");
    let mut t: String = first.chars().take(200).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    t.replace('|', "\\|")
}

/// Renders markdown. Follow-ups (action results, verification, approvals,
/// notifications) are listed under the decision they belong to.
pub fn markdown(entries: &[Entry], source: &str, since: Option<f64>, warnings: usize) -> String {
    let mut follow: HashMap<&str, Vec<&Entry>> = HashMap::new();
    for e in entries {
        let id = match &e.event {
            Event::Action { id, .. }
            | Event::Verify { id, .. }
            | Event::Approved { id, .. }
            | Event::Spawned { id, .. } => id,
            Event::Notified { id, .. } if !id.is_empty() => id,
            _ => continue,
        };
        follow.entry(id.as_str()).or_default().push(e);
    }
    let mut out = String::new();
    let _ = writeln!(out, "# hostmedic incident log\n");
    let _ = writeln!(
        out,
        "Journal `{source}`, {} entries{}.{}\n",
        entries.len(),
        since.map(|s| format!(" since {}", time(s))).unwrap_or_default(),
        if warnings > 0 {
            format!(" {warnings} unreadable line(s) skipped (torn write after a crash).")
        } else {
            String::new()
        }
    );
    let mut day = String::new();
    let mut printed_ids = std::collections::HashSet::new();
    for e in entries {
        let t = time(e.ts);
        if t.get(..10) != Some(day.as_str()) {
            day = t.get(..10).unwrap_or("").to_string();
            let _ = writeln!(out, "\n## {day}\n");
        }
        match &e.event {
            Event::Alert {
                alertname,
                status,
                labels,
                summary,
                duplicate,
                fingerprint,
                ..
            } => {
                let labels: Vec<String> = labels
                    .iter()
                    .filter(|(k, _)| k.as_str() != "alertname")
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                if *duplicate {
                    let _ = writeln!(
                        out,
                        "- {} **{alertname}** {status} — duplicate delivery (fingerprint {fingerprint}), ignored",
                        clock(e.ts)
                    );
                } else {
                    let _ = writeln!(
                        out,
                        "- {} **{alertname}** {status} {}{}",
                        clock(e.ts),
                        code(&labels.join(", ")),
                        summary
                            .as_deref()
                            .map(|s| format!(" — {}", one_line(s)))
                            .unwrap_or_default()
                    );
                }
            }
            Event::Decision {
                id,
                rule,
                target,
                decision,
                reason,
                actions,
                mode,
                ..
            } => {
                let what = match (decision, reason) {
                    (Decision::Act, _) => format!("acting: {}", actions.join("; ")),
                    (Decision::DryRun, _) => format!("dry run, would run: {}", actions.join("; ")),
                    (Decision::PendingApproval, _) => {
                        format!(
                            "waiting for approval (`hostmedic approve {id}`): {}",
                            actions.join("; ")
                        )
                    }
                    (Decision::Skip, Some(r)) => format!("skipped ({})", r.as_str().replace('_', " ")),
                    (Decision::Skip, None) => "skipped".into(),
                };
                let _ = writeln!(
                    out,
                    "  - rule {} ({mode}) on {} [{id}]: {}",
                    code(rule),
                    code(target),
                    one_line(&what)
                );
                printed_ids.insert(id.as_str());
                for f in follow.get(id.as_str()).into_iter().flatten() {
                    let _ = writeln!(out, "    - {} {}", clock(f.ts), follow_up(&f.event));
                }
            }
            Event::Hold {
                rule,
                target,
                attempts,
                alertname,
                ..
            } => {
                let _ = writeln!(
                    out,
                    "- {} **remediation exhausted**: {} held after {attempts} attempt(s) (rule {}, alert {alertname}); escalated",
                    clock(e.ts),
                    code(target),
                    code(rule)
                );
            }
            Event::HoldCleared { target, by } => {
                let _ = writeln!(out, "- {} hold on {} cleared by {by}", clock(e.ts), code(target));
            }
            Event::Refused {
                alertname,
                rule,
                reason,
                ..
            } => {
                let _ = writeln!(
                    out,
                    "- {} **refused** {alertname} for rule {}: {}",
                    clock(e.ts),
                    code(rule),
                    one_line(reason)
                );
            }
            Event::RefusedForeign {
                alertname,
                status,
                names,
                identity,
                ..
            } => {
                let names: Vec<String> = names.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let why = if names.is_empty() {
                    "names no host (not single-host mode)".to_string()
                } else {
                    format!("names another host ({})", code(&names.join(", ")))
                };
                let _ = writeln!(
                    out,
                    "- {} **{alertname}** {status} refused: {why}; this host is {}",
                    clock(e.ts),
                    code(identity)
                );
            }
            Event::Pipeline(p) => {
                let _ = writeln!(out, "- {} **{}**", clock(e.ts), one_line(&p.message));
            }
            Event::Action { id, .. }
            | Event::Verify { id, .. }
            | Event::Approved { id, .. }
            | Event::Spawned { id, .. }
            | Event::Notified { id, .. } => {
                // Shown under their decision; orphans (decision outside the
                // --since window) are shown on their own.
                if !printed_ids.contains(id.as_str()) {
                    // The pipeline's own notifications belong to no plan: no id.
                    let id = if id.is_empty() {
                        String::new()
                    } else {
                        format!("[{id}] ")
                    };
                    let _ = writeln!(out, "- {} {id}{}", clock(e.ts), follow_up(&e.event));
                }
            }
        }
    }
    out
}

fn follow_up(e: &Event) -> String {
    match e {
        Event::Action {
            description,
            result,
            detail,
            duration_seconds,
            ..
        } => format!(
            "{description}: **{result}** ({duration_seconds:.2} s){}",
            if detail.is_empty() {
                String::new()
            } else {
                format!(" — {}", one_line(detail))
            }
        ),
        Event::Verify { result, detail, .. } => format!(
            "verification: **{}**{}",
            result.replace('_', " "),
            if detail.is_empty() {
                String::new()
            } else {
                format!(" — {}", one_line(detail))
            }
        ),
        Event::Approved { by, .. } => format!("approved by {by}"),
        Event::Spawned { index, pid, pgid, .. } => {
            format!("action {} started pid {pid} (process group {pgid})", index + 1)
        }
        Event::Notified {
            channel,
            kind,
            ok,
            detail,
            ..
        } => format!(
            "{kind} notification to {channel}: {}{}",
            if *ok { "sent" } else { "FAILED" },
            if detail.is_empty() || *ok {
                String::new()
            } else {
                format!(" — {}", one_line(detail))
            }
        ),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_durations_and_timestamps() {
        assert_eq!(parse_since("1h", 7200.0).unwrap(), 3600.0);
        assert_eq!(parse_since("1970-01-01T00:01:00Z", 0.0).unwrap(), 60.0);
        assert!(parse_since("last tuesday", 0.0).is_err());
    }
}
