//! S12 end to end: every check and action lands in an incident journal that
//! loses nothing (append-only, survives `kill -9`), a status JSON and a
//! readable markdown log, and notifications reach ntfy, Telegram and a
//! generic webhook (played by the local sink, request formats asserted).
//!
//! Fault: a CPU sensor (fake sysfs hwmon tree, the machine has none) climbs
//! past its chip's high threshold → the shipped `HostmedicTemperatureOverMax`
//! (`for:` clamped to 2 s in the test copy) → Alertmanager → hostmedic's
//! `[[remediation]]` notifies on the three channels.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::config::{Action, Rule};
use common::e2e::*;
use hostmedic::receiver::journal::{Decision, Event};

/// S12's receiver on `st`: the fake hwmon tree at `sysfs`, and the
/// temperature alert notifying ntfy, Telegram and the webhook.
fn s12_config(st: &Stack, sysfs: &Path) -> String {
    st.receiver()
        .global(|g| {
            g.path("sysfs_root", sysfs);
        })
        .disable(&["docker"])
        .rule(
            Rule::new("cpu-temperature", "HostmedicTemperatureOverMax")
                .action(Action::new("notify").set("channel", "ntfy"))
                .action(Action::new("notify").set("channel", "telegram"))
                .action(Action::new("notify").set("channel", "webhook")),
        )
        .render()
}

/// Waits until ntfy, Telegram and the webhook have each been sent a
/// request; returns how many requests the sink has then.
async fn wait_for_the_three_channels(st: &Stack) -> usize {
    st.wait_for(
        Duration::from_secs(60),
        "ntfy, telegram and webhook notifications",
        |st| {
            let all = st.sink.all();
            let ok = ["/ntfy", "/tg/", "/hook"]
                .iter()
                .all(|p| all.iter().any(|r| r.path.starts_with(p)));
            ok.then_some(all.len())
        },
    )
    .await
}

/// Request formats as the real services expect them.
fn requests_are_each_services_format(st: &Stack) {
    let all = st.sink.all();
    let ntfy = all.iter().find(|r| r.path.starts_with("/ntfy")).unwrap();
    assert_eq!(ntfy.method, "POST");
    let v: serde_json::Value = serde_json::from_str(&ntfy.body).expect("ntfy JSON publish");
    assert_eq!(v["topic"], "hostmedic-e2e");
    assert_eq!(v["priority"], 4);
    assert_eq!(v["tags"][0], "rotating_light");
    assert!(
        v["title"].as_str().unwrap().contains("HostmedicTemperatureOverMax"),
        "{v}"
    );
    let tg = all.iter().find(|r| r.path.starts_with("/tg/")).unwrap();
    assert_eq!(tg.path, format!("/tg/bot{BOT_TOKEN}/sendMessage"));
    let v: serde_json::Value = serde_json::from_str(&tg.body).expect("telegram JSON");
    assert_eq!(v["chat_id"], -100200300);
    let text = v["text"].as_str().unwrap();
    assert!(text.contains("HostmedicTemperatureOverMax"), "{text}");
    assert!(text.contains("101.5"), "the summary carries the reading: {text}");
    let hook = all.iter().find(|r| r.path.starts_with("/hook")).unwrap();
    assert_eq!(hook.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&hook.body).expect("webhook JSON");
    assert_eq!(v["source"], "hostmedic");
    assert_eq!(v["alert"]["labels"]["chip"], "coretemp", "{v}");
}

/// Journal: the alert, the decision, three ok actions, in a gap-free
/// sequence; the status JSON (written atomically) has caught up with it.
async fn journal_and_status_have_the_alert_and_its_actions(st: &Stack) {
    let entries = st
        .wait_for(
            Duration::from_secs(10),
            "three ok notify actions in the journal",
            |st| {
                let ok = st.actions("cpu-temperature").iter().filter(|a| a.2 == "ok").count();
                (ok == 3).then(|| st.journal())
            },
        )
        .await;
    assert!(entries.iter().any(|e| matches!(&e.event,
        Event::Alert { alertname, status, labels, .. }
            if alertname == "HostmedicTemperatureOverMax" && status == "firing" && labels["sensor"] == "temp1")));
    assert!(entries.iter().any(|e| matches!(&e.event,
        Event::Decision { rule, decision: Decision::Act, .. } if rule == "cpu-temperature")));
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "gap-free sequence: {seqs:?}");

    let status: serde_json::Value = st
        .wait_for(Duration::from_secs(10), "status.json with the last actions", |st| {
            let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(st.status_path()).ok()?).ok()?;
            (v["journal_seq"].as_u64()? >= *seqs.last().unwrap()).then_some(v)
        })
        .await;
    assert!(
        status["last_actions"].to_string().contains("cpu-temperature"),
        "{status}"
    );
}

/// kill -9: nothing acknowledged is lost; the restarted process appends
/// on, journaling the resolved alert once the fault clears (the sensor
/// under `sysfs` back to 64 °C).
async fn kill9_loses_nothing_and_the_journal_goes_on(st: &mut Stack, sysfs: &Path) {
    let before = std::fs::read(st.journal_path()).unwrap();
    let mut hm = st.hostmedic.take().unwrap();
    hm.signal_and_wait(nix::sys::signal::Signal::SIGKILL, Duration::from_secs(5))
        .expect("hostmedic died");
    st.hostmedic = Some(hm);
    st.restart_hostmedic_same_port();
    let last_before = st.journal().last().unwrap().seq;

    common::fake_hwmon(sysfs, 64_000);
    st.wait_for(
        Duration::from_secs(60),
        "resolved alert journaled after the restart",
        |st| {
            st.journal().into_iter().find(|e| {
                e.seq > last_before
                    && matches!(&e.event, Event::Alert { alertname, status, .. }
                    if alertname == "HostmedicTemperatureOverMax" && status == "resolved")
            })
        },
    )
    .await;
    let after = std::fs::read(st.journal_path()).unwrap();
    assert!(after.starts_with(&before), "journal is append-only across kill -9");
    let entries = st.journal();
    assert!(
        entries.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "sequence continues"
    );
}

/// Markdown and JSON renderings of the same journal (`hostmedic
/// incidents`), with the acting plan's timeline and no bot token.
fn incidents_render_the_journal(st: &Stack) {
    let run = |fmt: &str| {
        let out = Command::new(common::binary_path())
            .args(["--config", st.path("hostmedic.toml").to_str().unwrap()])
            .args(["incidents", "--format", fmt])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let md = run("md");
    assert!(md.starts_with("# hostmedic incident log"), "{md}");
    for needle in [
        "HostmedicTemperatureOverMax",
        "cpu-temperature",
        "resolved",
        "ntfy",
        "telegram",
        "webhook",
    ] {
        assert!(md.contains(needle), "markdown lacks {needle}:\n{md}");
    }
    let json = run("json");
    assert!(json.contains("HostmedicTemperatureOverMax"));
    // The acting plan's timeline, from real Prometheus and Alertmanager
    // instants: one markdown line, and the JSON stages up to the total.
    assert!(md.contains("  - timeline: alert→delivery "), "{md}");
    let incidents: serde_json::Value = serde_json::from_str(&json).unwrap();
    let timeline = incidents
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["plans"].as_array().unwrap())
        .find(|p| p["rule"] == "cpu-temperature" && p["decision"] == "act")
        .map(|p| p["timeline"].clone())
        .unwrap_or_default();
    for stage in ["alert_to_delivery", "action", "total"] {
        assert!(timeline["stages"][stage].as_f64().is_some(), "no {stage}: {timeline}");
    }
    assert_eq!(timeline["succeeded"], true, "{timeline}");
    assert!(!md.contains(BOT_TOKEN) && !json.contains(BOT_TOKEN));
}

#[tokio::test(flavor = "multi_thread")]
async fn s12_journal_status_markdown_and_three_channels_survive_kill9() {
    let mut st = Stack::new("S12").await;
    let sysfs = st.path("sys");
    common::fake_hwmon(&sysfs, 71_000); // max 100 °C, crit 105 °C
    let config = s12_config(&st, &sysfs);
    st.start_hostmedic(&config);
    // `for:` 0s: nothing before the fault can make the rule true (no time
    // window to wait out), so the alert fires at the first evaluation after it.
    st.start_monitoring(Duration::ZERO, &[]).await;
    st.wait_query(Duration::from_secs(30), "hostmedic_hwmon_temp_celsius", |v| v == 71.0)
        .await;

    // Fault: 101.5 °C, over the chip's 100 °C high threshold.
    common::fake_hwmon(&sysfs, 101_500);
    let sw = Stopwatch::fault_injected("S12");
    let n = wait_for_the_three_channels(&st).await;
    sw.remediated(&st).await;
    assert_eq!(n, 3, "one request per channel: {:#?}", st.sink.all());
    requests_are_each_services_format(&st);
    journal_and_status_have_the_alert_and_its_actions(&st).await;
    kill9_loses_nothing_and_the_journal_goes_on(&mut st, &sysfs).await;
    incidents_render_the_journal(&st);
    st.assert_no_secrets();
}
