//! Unit tests of the landing page: escaping, the verdict line, ages and
//! zones, what hostmedic did per decision, facts of unwatched collectors.

use super::receiver::{did, short};
use super::*;
use serde_json::Value;

/// A clock at `now` in UTC.
fn utc(now: f64) -> Clock {
    Clock {
        now,
        tz: jiff::tz::TimeZone::UTC,
    }
}

/// A status document from its JSON (the keys `/api/v1/status` serves);
/// the top-level keys `v` lacks are those of an empty document.
fn doc(v: Value) -> StatusDocument {
    let mut d = serde_json::to_value(StatusDocument::default()).unwrap();
    for (k, v) in v.as_object().unwrap() {
        assert!(d.get(k).is_some(), "{k} is a key of the status document");
        d[k] = v.clone();
    }
    serde_json::from_value(d).unwrap()
}

fn quiet_status() -> Value {
    serde_json::json!({"pipeline": {"enabled": true, "alertname": "HostmedicWatchdog", "silent": false,
                                    "max_silence_seconds": 600.0, "last_heartbeat": null, "silent_since": null},
                       "firing": [], "holds": {}, "pending_approvals": [], "backoff": {}, "quiet": []})
}

fn page_of(host: Option<&HostSummary>, st: Option<&Value>) -> String {
    let st = st.map(|v| doc(v.clone()));
    page(&Page {
        clock: utc(3600.0),
        collectors: vec![],
        host,
        status: st.as_ref(),
        details_hidden: false,
    })
}

#[test]
fn escapes_what_it_renders() {
    let st = serde_json::json!({
        "pipeline": {"enabled": true, "alertname": "HostmedicWatchdog", "silent": true, "silent_since": 0.0,
                     "max_silence_seconds": 600.0, "last_heartbeat": null},
        "firing": [{"name": "X<script>", "severity": "critical", "since": "t", "summary": "a & b",
                    "last_delivery": 1.0}],
        "holds": {}, "pending_approvals": [],
        "backoff": {"fix<b>|exec:/bin/x \"a&b\"": {"failures": 2, "cooldown_seconds": 1200.0, "until": 60.0}},
        "quiet": [{"rule": "nightly<i>", "window": "Mon-Fri 02:00-03:30", "timezone": "Europe/Berlin"}],
    });
    let html = sections(&utc(72.0), None, Some(&doc(st)));
    assert!(html.contains("not collected yet"));
    assert!(
        html.contains("SILENT since 1970-01-01 00:00:00 UTC (1 min ago)"),
        "{html}"
    );
    assert!(html.contains("X&lt;script&gt;") && html.contains("a &amp; b"), "{html}");
    assert!(!html.contains("<script>"));
    assert!(
        html.contains(
            "<tr><td>exec:/bin/x &quot;a&amp;b&quot;</td><td>fix&lt;b&gt;</td><td>2</td><td>20m</td>\
             <td>1970-01-01 00:01:00 UTC (12 s ago)</td></tr>"
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
    let html = sections(&utc(0.0), None, Some(&doc(quiet_status())));
    for h in [
        "<h2 id=\"backoff\">Grown cooldowns (backoff)</h2>\n<p>none</p>",
        "<h2 id=\"quiet\">Quiet windows now</h2>\n<p>none</p>",
    ] {
        assert!(html.contains(h), "{html}");
    }
}

#[test]
fn ages_read_as_seconds_minutes_hours_days() {
    let c = utc(1_000_000.0);
    let ago = |d: f64| c.ago(1_000_000.0 - d);
    assert_eq!(
        [ago(12.0), ago(200.0), ago(7300.0), ago(3.0 * 86_400.0), ago(-180.0)],
        ["12 s ago", "3 min ago", "2 h ago", "3 d ago", "in 3 min"]
    );
    let berlin = Clock {
        now: 0.0,
        tz: jiff::tz::TimeZone::get("Europe/Berlin").unwrap(),
    };
    assert_eq!(berlin.time(0.0), "1970-01-01 01:00:00 CET", "the zone is named");
}

#[test]
fn verdict_comes_first_and_counts_what_needs_a_person() {
    let mut st = quiet_status();
    let html = page_of(None, Some(&st));
    let body = html.split("<body>\n").nth(1).unwrap();
    assert!(
        body.starts_with("<p id=\"verdict\" class=\"verdict all-ok\"><strong>OK — nothing needs you</strong></p>"),
        "{body}"
    );
    assert!(html.contains("<meta http-equiv=\"refresh\" content=\"10\">"));
    assert!(html.contains("<a href=\"api/v1/status\">status API (JSON)</a>"));
    assert!(!html.contains("<script"), "no script at all");

    st["pipeline"]["silent"] = true.into();
    st["pipeline"]["silent_since"] = 3000.0.into();
    st["pending_approvals"] = serde_json::json!([{"id": "p1", "rule": "r", "target": "t", "at": 3500.0,
                                                  "alertname": "Down", "actions": ["exec"]}]);
    let hold = serde_json::json!({"rule": "r", "since": 1.0, "attempts": 3, "fingerprint": "f", "alertname": "Down"});
    st["holds"] = serde_json::json!({"systemd:system:a.service": hold, "systemd:system:b.service": hold});
    st["firing"] = serde_json::json!([{"name": "Down", "severity": "critical", "since": "1970-01-01T00:50:00Z",
        "target": "t", "last_delivery": 3500.0,
        "decision": {"id": "a1", "rule": "r", "decision": "act", "at": 3400.0},
        "last_action": {"ts": 3588.0, "id": "a1", "rule": "r", "target": "t", "action": "systemd.restart",
                        "result": "failed", "detail": "unit <x> not found"}}]);
    let html = page_of(None, Some(&st));
    let body = html.split("<body>\n").nth(1).unwrap();
    let first = body.lines().next().unwrap();
    assert_eq!(
        first,
        "<p id=\"verdict\" class=\"verdict needs-you\"><strong>Needs you:</strong> \
         <a href=\"#pipeline\">alert pipeline SILENT since 1970-01-01 00:50:00 UTC (10 min ago)</a> · \
         <a href=\"#approvals\">1 pending approval</a> · \
         <a href=\"#holds\">2 holds (remediation stopped)</a> · \
         <a href=\"#firing\">1 failed action</a></p>"
    );
    for id in ["pipeline", "approvals", "holds", "firing"] {
        assert!(html.contains(&format!("<h2 id=\"{id}\">")), "anchor {id}");
    }
    assert!(
        html.contains(
            "<td>1970-01-01 00:50:00 UTC (10 min ago)</td><td>t</td><td></td>\
             <td>systemd.restart failed (12 s ago): unit &lt;x&gt; not found</td>"
        ),
        "{html}"
    );
}

#[test]
fn an_action_detail_keeps_its_output() {
    assert_eq!(
        short("[\"/bin/sh\", \"-c\", \"a: b\"]: exit status 0\nstdout:\nrestarted worker\nmore\n"),
        "exit status 0; restarted worker"
    );
    assert_eq!(short("unit not found"), "unit not found");
    assert_eq!(short(&"x".repeat(300)).chars().count(), 161);
}

#[test]
fn what_hostmedic_did_per_decision() {
    let c = utc(100.0);
    // A firing alert from its JSON, with the keys every one has.
    let a = |v: Value| {
        let mut f = serde_json::json!({"name": "A", "since": "t", "last_delivery": 1.0});
        for (k, v) in v.as_object().unwrap() {
            f[k] = v.clone();
        }
        did(&c, &serde_json::from_value(f).unwrap())
    };
    let last = |ts: f64, action: &str, result: &str, detail: &str| {
        serde_json::json!({"ts": ts, "id": "x", "rule": "r", "target": "t", "action": action,
                           "result": result, "detail": detail})
    };
    assert_eq!(a(serde_json::json!({})), "nothing: no rule maps it");
    assert_eq!(
        a(serde_json::json!({"target": "t",
            "decision": {"id": "p9", "rule": "r", "decision": "pending_approval", "at": 40.0}})),
        "waiting for approval (1 min ago): hostmedic approve p9"
    );
    assert_eq!(
        a(serde_json::json!({"target": "t",
            "decision": {"id": "d1", "rule": "r", "decision": "dry_run", "at": 90.0},
            "last_action": last(95.0, "exec", "dry_run", "would run [\"/x\"]")})),
        "dry run, nothing ran: exec dry run (5 s ago): would run [\"/x\"]"
    );
    assert_eq!(
        a(serde_json::json!({"target": "t",
            "decision": {"id": "s1", "rule": "r", "decision": "skip", "reason": "cooldown", "at": 97.0},
            "last_action": last(50.0, "verify", "verified", "")})),
        "not acting: cooldown (3 s ago); last result: verify verified (50 s ago)"
    );
    assert_eq!(
        a(serde_json::json!({"target": "t", "decision": {"id": "a", "rule": "r", "decision": "act", "at": 99.0}})),
        "acting (decided 1 s ago), no result yet"
    );
}

#[test]
fn facts_of_a_collector_that_did_not_watch_say_so_not_none() {
    let h = HostSummary {
        watched: vec!["host".into()],
        absent_sources: vec!["docker".into(), "hwmon".into()],
        at_startup: true,
        ..Default::default()
    };
    let html = page_of(Some(&h), None);
    for want in [
        "<tr><td>failed units</td><td>not watched (collector off)</td></tr>",
        "<tr><td>unhealthy containers</td><td>not watched (no source)</td></tr>",
        "<tr><td>not watched (no source)</td><td>docker, hwmon</td></tr>",
        "<h3>Temperatures</h3>\n<p>not watched (no source)</p>",
        "hostmedic&#39;s own collection at start (no scrape yet)",
        "OK — nothing needs you</strong> (the receiver is off: no alerts are handled here)",
    ] {
        assert!(html.contains(want), "lacks {want:?}:\n{html}");
    }
    assert!(!html.contains("api/v1/status"), "no status API without the receiver");
    let watched = HostSummary {
        watched: vec!["host".into(), "systemd".into(), "docker".into()],
        ..Default::default()
    };
    let html = page_of(Some(&watched), None);
    assert!(html.contains("<tr><td>failed units</td><td>none</td></tr>"), "{html}");
    assert!(
        html.contains("<h3>Temperatures</h3>\n<p>not watched (collector off)</p>"),
        "{html}"
    );
}
