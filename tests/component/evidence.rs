//! Evidence on real parts: a systemd 252 booted in its own rootfs whose
//! units log a secret and an error and exit; hostmedic reads the machine's
//! own journald files with the host's `journalctl --root`, the unit state
//! over its bus, redacts, and (through the receiver) journals the evidence
//! and sends it to a local HTTP sink playing the webhook channel.

use crate::common;

use std::time::Duration;

use common::config::{Action, Rule, TestConfig};
use common::sink::Sink;
use common::systemd::{Spec, SystemdMachine, boot_or_skip};
use hostmedic::actions::Manager;
use hostmedic::evidence::{EvidenceConfig, Item, Stage, Subject};
use hostmedic::receiver::journal::{self, Event};
use serde_json::json;

const SECRET: &str = "hunter2-s3cr3t-value";
const BEARER: &str = "abcdef0123456789bearer";

/// Logs 120 lines of progress, a password, an Authorization header and its
/// real error, then exits 3.
const LEAKY: &str = "[Service]\nExecStart=/bin/sh -c 'for i in $(seq 1 120); do echo \"import progress: batch $i of 120 written\"; done; \
     echo \"connecting to db with password=hunter2-s3cr3t-value\"; \
     echo \"GET /feed Authorization: Bearer abcdef0123456789bearer\"; \
     echo \"ModuleNotFoundError: No module named feeds\" >&2; exit 3'\n\
     [Install]\nWantedBy=multi-user.target\n";

/// A user unit of `medic` that logs a token and its error, then exits 4 a
/// moment later: journald attributes a line to its user unit by the
/// writer's cgroup, which it cannot read once the writer is gone (a line of
/// a process that exits at once can lack `_SYSTEMD_USER_UNIT`; see
/// docs/evidence.md).
const USER_LEAKY: &str = "[Service]\nExecStart=/bin/sh -c 'echo \"user side token=tok-9999999 refused\"; \
     echo \"FileNotFoundError: /home/medic/model.bin\" >&2; sleep 1; exit 4'\n";

fn boot() -> Option<SystemdMachine> {
    let m = boot_or_skip(
        Spec::new()
            .enabled_unit("leaky.service", LEAKY)
            .file("/home/medic/.config/systemd/user/userleak.service", USER_LEAKY, 0o644)
            .linger("medic"),
    )?;
    m.wait_for(Duration::from_secs(30), "leaky.service failed", |m| {
        m.show("leaky.service", "ActiveState") == "failed"
    });
    Some(m)
}

fn journal_text(item: &Item) -> String {
    item.sections
        .iter()
        .filter(|s| s.title == "journal")
        .flat_map(|s| s.lines.iter())
        .cloned()
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn unit_evidence_reads_the_machines_real_journal_redacted() {
    let Some(m) = boot() else { return };
    let env = m.action_env();
    m.wait_for(Duration::from_secs(30), "user manager up", |m| {
        m.show("user@1000.service", "ActiveState") == "active"
    });
    let _ = m.systemctl_user("medic", 1000, &["start", "userleak.service"]);
    let cap = EvidenceConfig {
        journal_root: m.root(),
        lines: 10,
        ..EvidenceConfig::default()
    }
    .compile("receiver.evidence")
    .unwrap();
    let subjects = [
        Subject::Unit {
            manager: Manager::System,
            unit: "leaky.service".into(),
        },
        Subject::Unit {
            manager: Manager::User("medic".into()),
            unit: "userleak.service".into(),
        },
    ];
    // journald writes as the lines arrive, and the user unit exits a
    // moment after its last line: give both a moment.
    let mut items = Vec::new();
    for _ in 0..60 {
        items = cap.capture(&env, &Default::default(), &subjects).await;
        let (sys, user) = (journal_text(&items[0]), journal_text(&items[1]));
        let exited = items[1].facts.contains_key("ExecMainStatus");
        if sys.contains("ModuleNotFoundError") && user.contains("FileNotFoundError") && exited {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (sys, user) = (&items[0], &items[1]);
    assert!(sys.errors.is_empty() && user.errors.is_empty(), "{items:#?}");
    let text = journal_text(sys);
    assert!(
        text.contains("ModuleNotFoundError: No module named feeds"),
        "the unit's own error line from the machine's journald:\n{text}"
    );
    assert!(text.contains("password=[REDACTED]"), "{text}");
    assert!(text.contains("Authorization: Bearer [REDACTED]"), "{text}");
    assert!(!text.contains(SECRET) && !text.contains(BEARER), "{text}");
    assert_eq!(sys.facts["ExecMainStatus"], "3", "{:?}", sys.facts);
    assert_eq!(sys.facts["Result"], "exit-code", "{:?}", sys.facts);
    assert!(sys.facts["ActiveState"].starts_with("failed"), "{:?}", sys.facts);
    assert!(sys.facts.contains_key("NRestarts"), "{:?}", sys.facts);
    assert_eq!(
        sys.look_further,
        "journalctl -u leaky.service -n 50; systemctl status leaky.service"
    );

    let utext = journal_text(user);
    assert!(
        utext.contains("FileNotFoundError: /home/medic/model.bin"),
        "{utext}\n{}",
        fields_of(&m, "FileNotFoundError")
    );
    assert!(
        utext.contains("token=[REDACTED]") && !utext.contains("tok-9999999"),
        "{utext}"
    );
    assert_eq!(user.facts["ExecMainStatus"], "4", "{:?}", user.facts);
    assert!(user.look_further.starts_with("journalctl --user -u userleak.service"));

    // The bounds hold on real output too.
    let small = EvidenceConfig {
        journal_root: m.root(),
        max_item_bytes: 256,
        max_incident_bytes: 256,
        ..EvidenceConfig::default()
    }
    .compile("receiver.evidence")
    .unwrap();
    let items = small.capture(&env, &Default::default(), &subjects[..1]).await;
    assert!(items[0].size() <= 256, "{}", items[0].size());
    assert!(items[0].truncated_bytes > 0);

    // A wrong journal source is reported in the item, not a failure.
    let wrong = EvidenceConfig {
        journalctl: "/nonexistent/journalctl".into(),
        ..EvidenceConfig::default()
    }
    .compile("receiver.evidence")
    .unwrap();
    let items = wrong.capture(&env, &Default::default(), &subjects[..1]).await;
    assert!(
        items[0].errors.iter().any(|e| e.starts_with("journal:")),
        "{:?}",
        items[0]
    );
    assert_eq!(items[0].facts["ExecMainStatus"], "3", "the bus part still read");
}

#[tokio::test(flavor = "multi_thread")]
async fn receiver_journals_and_notifies_redacted_evidence_within_the_limit() {
    let Some(m) = boot() else { return };
    let dir = common::receiver_dir("evidence-token");
    let d = dir.path();
    std::fs::write(d.join("bot-token"), "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw\n").unwrap();
    let sink = Sink::start().await;
    let text = TestConfig::new()
        .disable(&["host", "hwmon", "docker", "processes"])
        .section("systemd", |s| {
            s.set("bus_address", m.bus_address())
                .path("user_runtime_dir", m.root().join("run/user"))
                .path("passwd_file", m.rootfs().join("etc/passwd"));
        })
        .receiver(d, |r| {
            // Enough evidence that the Telegram message must be cut.
            r.path("bearer_token_file", d.join("token")).table("evidence", |e| {
                e.path("journal_root", m.root())
                    .set("lines", 200)
                    .set("max_item_bytes", 65536)
                    .set("max_incident_bytes", 65536);
            });
        })
        .notify_webhook("sink", &sink.url("/hook"))
        .notify("tg", "telegram", |c| {
            c.set("api_base", sink.url("/tg"))
                .path("bot_token_file", d.join("bot-token"))
                .set("chat_id", -42)
                .set("retries", 0);
        })
        .rule(
            Rule::new("unit-failed", "HostmedicUnitFailed")
                .strings("notify", ["sink", "tg"])
                .action(Action::systemd("reset-failed", "{{ labels.unit }}")),
        )
        .render();
    let cfg = hostmedic::config::Config::parse(&text, "test").unwrap();
    let srv = common::InProcess::start(cfg).await;
    let body = json!({"receiver": "hostmedic", "status": "firing", "alerts": [{
        "status": "firing",
        "labels": {"alertname": "HostmedicUnitFailed", "unit": "leaky.service", "manager": "system", "severity": "warning"},
        "annotations": {"summary": "leaky.service failed", "runbook_url": "docs/runbooks.md#hostmedicunitfailed"},
        "startsAt": "2026-12-01T12:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prom/graph", "fingerprint": "1e4c0000aaaa0001"}],
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am",
        "version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0});
    let r = common::client()
        .post(srv.url("/api/v1/alerts"))
        .bearer_auth("evidence-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut got = None;
    for _ in 0..120 {
        let all = sink.all();
        let hook = all.iter().find(|r| r.path == "/hook").cloned();
        let tg = all.iter().find(|r| r.path.starts_with("/tg/")).cloned();
        if let (Some(h), Some(t)) = (hook, tg) {
            got = Some((h, t));
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (hook, tg) = got.expect("outcome notifications at the sink (webhook and Telegram)");
    // Telegram: within its 4096 characters, headline whole, the newest
    // journal lines kept (the oldest progress lines went), the secret never.
    let text = tg.json()["text"].as_str().unwrap().to_string();
    assert!(text.encode_utf16().count() <= 4096, "{}", text.len());
    assert!(
        text.starts_with("unit-failed ran on systemd:system:leaky.service"),
        "{text}"
    );
    assert!(text.contains("ModuleNotFoundError: No module named feeds"), "{text}");
    assert!(text.contains("bytes cut to fit the limits"), "{text}");
    assert!(!text.contains("batch 1 of 120"), "{text}");
    assert!(!tg.body.contains(SECRET) && !tg.body.contains(BEARER));
    let msg = hook.json()["message"].as_str().unwrap().to_string();
    assert!(msg.contains("Evidence (before acting):"), "{msg}");
    assert!(msg.contains("ModuleNotFoundError: No module named feeds"), "{msg}");
    assert!(msg.contains("password=[REDACTED]"), "{msg}");
    assert!(
        !hook.body.contains(SECRET) && !hook.body.contains(BEARER),
        "{}",
        hook.body
    );
    assert!(msg.len() <= hostmedic::notify::WEBHOOK_MESSAGE_MAX);

    let journal_file = d.join("journal.jsonl");
    let raw = std::fs::read_to_string(&journal_file).unwrap();
    assert!(!raw.contains(SECRET) && !raw.contains(BEARER), "secret in the journal");
    let entries = journal::read_from(&journal_file, 0).unwrap().0;
    let stages: Vec<Stage> = entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::Evidence { stage, items, .. } => {
                assert!(items[0].subject == "systemd:system:leaky.service", "{items:?}");
                Some(*stage)
            }
            _ => None,
        })
        .collect();
    assert_eq!(stages, [Stage::Before, Stage::Verification]);
    let before = entries
        .iter()
        .find_map(|e| match &e.event {
            Event::Evidence { items, stage, .. } if *stage == Stage::Before => Some(items[0].clone()),
            _ => None,
        })
        .unwrap();
    assert!(journal_text(&before).contains("[REDACTED]"));

    // `hostmedic incidents` shows it, as markdown and as JSON.
    let md = hostmedic::receiver::incidents::markdown(&entries, "j", None, 0);
    for want in [
        "HostmedicUnitFailed — warning",
        "ModuleNotFoundError: No module named feeds",
        "`look further: journalctl -u leaky.service -n 50; systemctl status leaky.service`",
        "`runbook: docs/runbooks.md#hostmedicunitfailed`",
        "**State**: still firing",
    ] {
        assert!(md.contains(want), "lacks {want:?}:\n{md}");
    }
    assert!(!md.contains(SECRET));
    srv.stop().await;
}

/// The journal fields of the entries whose message contains `needle`, for
/// a failure message.
fn fields_of(m: &SystemdMachine, needle: &str) -> String {
    let out = std::process::Command::new("/usr/bin/journalctl")
        .arg(format!("--root={}", m.root().display()))
        .args(["-o", "json", "--no-pager"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(needle))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Benchmark (run on purpose: `cargo nextest run --release --test component
/// --run-ignored only -E 'test(/bench_unit_capture/)' --no-capture`): the
/// evidence of one system unit (bus state + `journalctl --root … -n 20`)
/// against, in the same run, the commands an operator runs for the same
/// facts: `journalctl` alone with the same arguments, and `systemctl status
/// -n 20` inside the machine. Prints medians and ratios for BENCHMARKS.md;
/// asserts nothing about time.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark"]
async fn bench_unit_capture() {
    let Some(m) = boot() else { return };
    let env = m.action_env();
    let cap = EvidenceConfig {
        journal_root: m.root(),
        ..EvidenceConfig::default()
    }
    .compile("receiver.evidence")
    .unwrap();
    let subject = [Subject::Unit {
        manager: Manager::System,
        unit: "leaky.service".into(),
    }];
    let runs = 50;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut capture = Vec::new();
    let mut journalctl = Vec::new();
    let mut status = Vec::new();
    let args =
        hostmedic::evidence::unit::journal_args(&cap, &Default::default(), &Manager::System, "leaky.service").unwrap();
    for _ in 0..runs {
        let t = std::time::Instant::now();
        let items = cap.capture(&env, &Default::default(), &subject).await;
        capture.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(items[0].errors.is_empty(), "{:?}", items[0]);
        let t = std::time::Instant::now();
        let out = std::process::Command::new("/usr/bin/journalctl")
            .args(&args)
            .output()
            .unwrap();
        journalctl.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(out.status.success());
        let t = std::time::Instant::now();
        let out = m.exec(&["systemctl", "status", "leaky.service", "-n", "20", "--no-pager"]);
        status.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(!out.stdout.is_empty());
    }
    let (c, j, s) = (median(capture), median(journalctl), median(status));
    println!(
        "evidence-bench runs={runs} capture_ms={c:.1} journalctl_ms={j:.1} systemctl_status_ms={s:.1} \
         capture/journalctl={:.2} capture/systemctl_status={:.2}",
        c / j,
        c / s
    );
}
