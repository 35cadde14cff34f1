//! The landing page's sections after the collectors' table: the host at a
//! glance (the last scrape's [`HostSummary`]) and, with the receiver on, the
//! alert pipeline's heartbeat, the alerts firing, holds, grown cooldowns
//! (backoff), the rules in a quiet window and pending approvals, all rendered from the same status document `/api/v1/status`
//! serves, so the page and the JSON cannot disagree.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use crate::hostsummary::HostSummary;

/// Escapes text for HTML element content and attribute values (control
/// characters first, as everywhere alert text is shown: [`crate::text`]).
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in crate::text::escape(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What replaces the receiver's sections for a request that the status API
/// would refuse (`Receiver::may_read_status`).
pub const DETAILS_HIDDEN: &str = "<p class=\"details-hidden\">details hidden: authenticate \
(the receiver's credentials, as for <a href=\"api/v1/status\">/api/v1/status</a>) to see the alert \
pipeline, firing alerts, holds and pending approvals</p>\n";

fn time(ts: f64) -> String {
    humantime::format_rfc3339_seconds(crate::time::system_time(ts)).to_string()
}

fn gib(bytes: f64) -> String {
    format!("{:.1} GiB", bytes / (1u64 << 30) as f64)
}

fn percent(ratio: f64) -> String {
    format!("{:.0} %", ratio * 100.0)
}

/// A table with a header row; `empty` replaces it when there are no rows.
fn table(out: &mut String, head: &[&str], rows: &[Vec<String>], empty: &str) {
    if rows.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", html_escape(empty));
        return;
    }
    out.push_str("<table>");
    if head.iter().any(|h| !h.is_empty()) {
        out.push_str("<tr>");
        for h in head {
            let _ = write!(out, "<th>{}</th>", html_escape(h));
        }
        out.push_str("</tr>");
    }
    out.push('\n');
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", html_escape(c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn units(v: &[crate::hostsummary::Unit]) -> String {
    v.iter()
        .map(|u| format!("{} ({})", u.name, u.manager))
        .collect::<Vec<_>>()
        .join(", ")
}

fn or_none(s: String) -> String {
    if s.is_empty() { "none".into() } else { s }
}

/// The host section.
pub fn host(out: &mut String, h: Option<&HostSummary>) {
    out.push_str("<h2>Host</h2>\n");
    let Some(h) = h else {
        out.push_str("<p>not scraped yet</p>\n");
        return;
    };
    let _ = writeln!(out, "<p>From the scrape at {}.</p>", time(h.scraped_at));
    let mut facts: Vec<Vec<String>> = Vec::new();
    if let Some(l) = &h.load {
        facts.push(vec![
            "load per CPU (1m / 5m / 15m)".into(),
            format!(
                "{:.2} / {:.2} / {:.2} over {} CPUs",
                l.load1_per_cpu, l.load5_per_cpu, l.load15_per_cpu, l.cpus
            ),
        ]);
    }
    if let Some(m) = &h.memory {
        facts.push(vec![
            "memory available".into(),
            format!(
                "{} of {} ({})",
                gib(m.available_bytes),
                gib(m.total_bytes),
                percent(m.available_ratio)
            ),
        ]);
    }
    facts.push(vec!["failed units".into(), or_none(units(&h.failed_units))]);
    facts.push(vec![
        "unhealthy containers".into(),
        or_none(h.unhealthy_containers.join(", ")),
    ]);
    facts.push(vec![
        "expected units missing".into(),
        or_none(units(&h.expected_units_missing)),
    ]);
    facts.push(vec![
        "expected units inactive".into(),
        or_none(units(&h.expected_units_inactive)),
    ]);
    if !h.absent_sources.is_empty() {
        facts.push(vec!["not watched (no source)".into(), h.absent_sources.join(", ")]);
    }
    table(out, &["", ""], &facts, "");
    let temps: Vec<Vec<String>> = h
        .temperatures
        .iter()
        .map(|t| {
            let thr = |v: Option<f64>| v.map(|c| format!("{c:.0} °C")).unwrap_or_else(|| "–".into());
            vec![
                format!(
                    "{}/{}{}",
                    t.chip,
                    t.sensor,
                    if t.label.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", t.label)
                    }
                ),
                format!("{:.1} °C", t.celsius),
                thr(t.max_celsius),
                thr(t.crit_celsius),
                t.state.into(),
            ]
        })
        .collect();
    out.push_str("<h3>Temperatures</h3>\n");
    table(
        out,
        &["sensor", "now", "max", "crit", "state"],
        &temps,
        "no temperature sensors",
    );
    let disks: Vec<Vec<String>> = h
        .filesystems
        .iter()
        .map(|f| {
            vec![
                f.mountpoint.clone(),
                format!("{} ({})", f.device, f.fstype),
                percent(f.used_ratio),
                format!("{} free of {}", gib(f.avail_bytes), gib(f.size_bytes)),
            ]
        })
        .collect();
    out.push_str("<h3>Disks</h3>\n");
    table(
        out,
        &["mount point", "device", "used", "space"],
        &disks,
        "no filesystems",
    );
    for (list, n) in &h.omitted {
        let _ = writeln!(
            out,
            "<p>{n} more {} not shown.</p>",
            html_escape(&list.replace('_', " "))
        );
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

/// The receiver's sections, from its status document.
pub fn receiver(out: &mut String, st: &Value) {
    out.push_str("<h2>Alert pipeline</h2>\n");
    let p = &st["pipeline"];
    let last = p["last_heartbeat"]
        .as_f64()
        .map(time)
        .unwrap_or_else(|| "none yet".into());
    let line = if !p["enabled"].as_bool().unwrap_or(false) {
        format!("dead-man's switch off; last {} heartbeat: {last}", s(&p["alertname"]))
    } else if p["silent"].as_bool().unwrap_or(false) {
        format!(
            "SILENT since {}: no {} heartbeat; Prometheus or Alertmanager down?",
            p["silent_since"].as_f64().map(time).unwrap_or_default(),
            s(&p["alertname"])
        )
    } else {
        format!("ok; last {} heartbeat: {last}", s(&p["alertname"]))
    };
    let class = if p["silent"].as_bool().unwrap_or(false) {
        "failing"
    } else {
        "ok"
    };
    let _ = writeln!(out, "<p class=\"{class}\">{}</p>", html_escape(&line));

    out.push_str("<h2>Alerts firing</h2>\n");
    let rows: Vec<Vec<String>> = st["firing"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            vec![
                s(&a["severity"]),
                s(&a["name"]),
                s(&a["since"]),
                s(&a["target"]),
                s(&a["summary"]),
            ]
        })
        .collect();
    table(out, &["severity", "alert", "since", "target", "summary"], &rows, "none");

    out.push_str("<h2>Holds</h2>\n");
    let rows: Vec<Vec<String>> = st["holds"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(target, h)| {
            vec![
                target.clone(),
                s(&h["rule"]),
                s(&h["alertname"]),
                h["since"].as_f64().map(time).unwrap_or_default(),
                s(&h["attempts"]),
            ]
        })
        .collect();
    table(out, &["target", "rule", "alert", "since", "attempts"], &rows, "none");

    out.push_str("<h2>Grown cooldowns (backoff)</h2>\n");
    let rows: Vec<Vec<String>> = st["backoff"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, b)| {
            // The status document keys backoff by `rule|target`.
            let (rule, target) = key.split_once('|').unwrap_or((key.as_str(), ""));
            vec![
                target.to_string(),
                rule.to_string(),
                s(&b["failures"]),
                b["cooldown_seconds"]
                    .as_f64()
                    .map(|d| humantime::format_duration(Duration::from_secs(d.round() as u64)).to_string())
                    .unwrap_or_default(),
                b["until"].as_f64().map(time).unwrap_or_default(),
            ]
        })
        .collect();
    table(
        out,
        &["target", "rule", "failed attempts", "cooldown", "until"],
        &rows,
        "none",
    );

    out.push_str("<h2>Quiet windows now</h2>\n");
    let rows: Vec<Vec<String>> = st["quiet"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|q| vec![s(&q["rule"]), s(&q["window"]), s(&q["timezone"])])
        .collect();
    table(out, &["rule (not acting)", "window", "timezone"], &rows, "none");

    out.push_str("<h2>Pending approvals</h2>\n");
    let rows: Vec<Vec<String>> = st["pending_approvals"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            vec![
                s(&a["id"]),
                s(&a["rule"]),
                s(&a["target"]),
                s(&a["alertname"]),
                a["at"].as_f64().map(time).unwrap_or_default(),
                crate::invocation::command(&format!("approve {}", s(&a["id"]))),
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

/// Every section after the collectors' table.
pub fn sections(host_summary: Option<&HostSummary>, status: Option<&Value>) -> String {
    let mut out = String::new();
    host(&mut out, host_summary);
    if let Some(st) = status {
        receiver(&mut out, st);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_it_renders() {
        let st = serde_json::json!({
            "pipeline": {"enabled": true, "alertname": "Watchdog", "silent": true, "silent_since": 0.0},
            "firing": [{"name": "X<script>", "severity": "critical", "since": "t", "summary": "a & b"}],
            "holds": {}, "pending_approvals": [],
            "backoff": {"fix<b>|exec:/bin/x \"a&b\"": {"failures": 2, "cooldown_seconds": 1200.0, "until": 60.0}},
            "quiet": [{"rule": "nightly<i>", "window": "Mon-Fri 02:00-03:30", "timezone": "Europe/Berlin"}],
        });
        let html = sections(None, Some(&st));
        assert!(html.contains("not scraped yet"));
        assert!(html.contains("SILENT since 1970-01-01T00:00:00Z"), "{html}");
        assert!(html.contains("X&lt;script&gt;") && html.contains("a &amp; b"), "{html}");
        assert!(!html.contains("<script>"));
        assert!(
            html.contains(
                "<tr><td>exec:/bin/x &quot;a&amp;b&quot;</td><td>fix&lt;b&gt;</td><td>2</td><td>20m</td>\
                 <td>1970-01-01T00:01:00Z</td></tr>"
            ),
            "{html}"
        );
        assert!(
            html.contains("<tr><td>nightly&lt;i&gt;</td><td>Mon-Fri 02:00-03:30</td><td>Europe/Berlin</td></tr>"),
            "{html}"
        );
        assert!(!html.contains("<b>") && !html.contains("<i>"));
    }

    #[test]
    fn no_backoff_and_no_quiet_window_say_none() {
        let st = serde_json::json!({"pipeline": {}, "firing": [], "holds": {}, "pending_approvals": [],
                                    "backoff": {}, "quiet": []});
        let html = sections(None, Some(&st));
        for h in [
            "<h2>Grown cooldowns (backoff)</h2>\n<p>none</p>",
            "<h2>Quiet windows now</h2>\n<p>none</p>",
        ] {
            assert!(html.contains(h), "{html}");
        }
    }
}
