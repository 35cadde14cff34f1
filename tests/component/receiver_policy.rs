//! What a rule may add to the plain act-when-matched, on real deliveries:
//! remediation windows (`quiet`: the rule records and notifies instead of
//! acting), cooldown backoff (the cooldown grows per failed attempt, resets
//! after one that helped, and survives a restart), and a container restart
//! that brings its dependents along (`restart_dependents`, on a private
//! Docker engine with a real Debian `docker-compose` project). Alerts arrive
//! over real HTTP at a real in-process hostmedic; actions are real `exec`s
//! and engine calls; notifications reach the local HTTP sink. No clock is
//! faked: windows are placed around the real "now", and backoff is read
//! from the status document and the journal.

use crate::common;

use std::time::Duration;

use common::config::{Action, Rule, TestConfig};
use common::docker::{BUSYBOX_IMAGE, PrivateEngine};
use common::sink::Sink;
use common::*;
use hostmedic::config::Config;
use hostmedic::receiver::journal::{self, Decision, Entry, Event, SkipReason};
use serde_json::Value;

use crate::receiver::{alert, post};

const TOKEN: &str = "t0ken-for-policy-tests-0123";

/// `HH:MM` of the current UTC time shifted by `hours` (wrapping at midnight).
fn utc_clock(hours: i64) -> String {
    let now = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(hours);
    now.strftime("%H:%M").to_string()
}

/// The status document.
async fn status(srv: &InProcess) -> Value {
    srv.status(TOKEN).await
}

fn journal_of(dir: &std::path::Path) -> Vec<Entry> {
    journal::read_from(&dir.join("journal.jsonl"), 0).unwrap().0
}

fn effects(dir: &std::path::Path, prefix: &str) -> usize {
    std::fs::read_dir(dir.join("effects"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quiet_window_covering_now_records_and_notifies_instead_of_acting() {
    let dir = receiver_dir(TOKEN);
    let d = dir.path();
    let sink = Sink::start().await;
    // One window around now (it may cross midnight), one two hours later.
    let covering = format!("{}-{}", utc_clock(-1), utc_clock(1));
    let elsewhere = format!("{}-{}", utc_clock(2), utc_clock(3));
    let mktemp = |name: &str| Action::exec(["/usr/bin/mktemp", &format!("{}/effects/{name}.XXXXXX", d.display())]);
    let text = TestConfig::new()
        .disable(&["host", "hwmon"])
        .single_host("h1")
        .receiver(d, |r| {
            r.path("bearer_token_file", d.join("token"));
        })
        .notify_webhook("sink", &sink.url("/hook"))
        .rule(
            Rule::new("backup-quiet", "DiskBusy")
                .strings("quiet", ["Sat,Sun 00:00-24:00", covering.as_str()])
                .set("timezone", "UTC")
                .strings("notify", ["sink"])
                .action(mktemp("in")),
        )
        .rule(
            Rule::new("elsewhere", "DiskBusy")
                .strings("quiet", [elsewhere.as_str()])
                .set("timezone", "UTC")
                .action(mktemp("out")),
        )
        .render();
    // A weekend makes the first window cover every rule: pick the second.
    let weekend = matches!(
        jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC).weekday(),
        jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday
    );
    let srv = InProcess::start(Config::parse(&text, "test").unwrap()).await;
    let a = alert(
        "DiskBusy",
        &[("device", "sda")],
        "2026-01-01T00:00:00Z",
        "firing",
        "0123456789abcdef",
    );
    let (code, body) = post(&srv.url("/api/v1/alerts"), Some(TOKEN), &payload(vec![a])).await;
    assert_eq!(code, 200, "{body}");

    // The rule outside its window acted; the one inside did not.
    eventually(Duration::from_secs(20), "the other rule's action", || async {
        (effects(d, "out") == 1).then_some(())
    })
    .await;
    let note = eventually(Duration::from_secs(20), "the quiet-window notification", || async {
        sink.all().into_iter().find(|r| r.body.contains("quiet window"))
    })
    .await;
    assert!(note.body.contains("backup-quiet"), "{}", note.body);
    assert!(note.body.contains("Would have run"), "{}", note.body);
    assert_eq!(effects(d, "in"), 0, "nothing runs in a quiet window");

    let entries = journal_of(d);
    let decision = |rule: &str| {
        entries
            .iter()
            .find_map(|e| match &e.event {
                Event::Decision {
                    rule: r,
                    decision,
                    reason,
                    detail,
                    ..
                } if r == rule => Some((*decision, *reason, detail.clone())),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no decision of {rule}"))
    };
    let (dec, reason, detail) = decision("backup-quiet");
    assert_eq!((dec, reason), (Decision::Skip, Some(SkipReason::Quiet)));
    let window = if weekend {
        "Sat,Sun 00:00-24:00"
    } else {
        covering.as_str()
    };
    assert_eq!(detail, format!("window {window:?} (UTC)"));
    assert_eq!(decision("elsewhere").0, Decision::Act);
    eventually(Duration::from_secs(10), "the notification journaled", || async {
        journal_of(d)
            .iter()
            .any(|e| matches!(&e.event, Event::Notified { kind, ok: true, .. } if kind == "quiet"))
            .then_some(())
    })
    .await;

    // The status document, the metrics and `hostmedic incidents` show it.
    let status = status(&srv).await;
    let quiet = status["quiet"].as_array().unwrap();
    assert!(
        quiet
            .iter()
            .any(|q| q["rule"] == "backup-quiet" && q["window"] == window),
        "{quiet:?}"
    );
    // The landing page lists it next to holds and pending approvals.
    let (_, page) = get_with_token(&srv.url("/"), TOKEN).await;
    let row = format!(
        "<tr><td>backup-quiet</td><td>{}</td><td>UTC</td></tr>",
        hostmedic::landing::html_escape(window)
    );
    let section = page
        .split_once("<h2 id=\"quiet\">Quiet windows now</h2>")
        .map(|(_, rest)| rest.split("<h2").next().unwrap_or_default())
        .unwrap_or_else(|| panic!("no quiet section:\n{page}"));
    assert!(section.contains(&row), "landing page lacks {row:?}:\n{page}");
    assert!(
        !section.contains(&elsewhere),
        "a window not covering now is not shown:\n{page}"
    );
    let (_, metrics) = get(&srv.url("/metrics")).await;
    assert!(
        metrics.contains("hostmedic_actions_skipped_total{reason=\"quiet\"} 1"),
        "{metrics}"
    );
    let md = hostmedic::receiver::incidents::markdown(&journal_of(d), "journal.jsonl", None, 0);
    assert!(
        md.contains(&format!("skipped (quiet: window {window:?} (UTC))")),
        "{md}"
    );
    srv.stop().await;
}

/// The backoff attempt on `key`: (failures, cooldown seconds) in the status.
async fn backoff_of(srv: &InProcess, key: &str) -> Option<(u64, f64)> {
    let status = status(srv).await;
    let b = status["backoff"].get(key)?;
    Some((b["failures"].as_u64()?, b["cooldown_seconds"].as_f64()?))
}

/// Posts fresh occurrences of the alert (a new `startsAt` each, so none is a
/// duplicate) until one is planned, i.e. the cooldown is over; returns how
/// many were skipped before it.
async fn deliver_until_acted(srv: &InProcess, n: &mut u32) -> u32 {
    let mut skipped = 0;
    loop {
        *n += 1;
        let starts = format!("2026-01-01T00:{:02}:{:02}Z", *n / 60, *n % 60);
        let a = alert("Flaky", &[], &starts, "firing", "fedcba9876543210");
        let (code, body) = post(&srv.url("/api/v1/alerts"), Some(TOKEN), &payload(vec![a])).await;
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["summary"]["planned"] == 1 {
            return skipped;
        }
        assert_eq!(v["summary"]["skipped"], 1, "{body}");
        skipped += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `detail` of every cooldown skip among `entries`.
fn cooldown_details<'a>(entries: impl Iterator<Item = &'a Entry>) -> Vec<String> {
    entries
        .filter_map(|e| match &e.event {
            Event::Decision {
                reason: Some(SkipReason::Cooldown),
                detail,
                ..
            } => Some(detail.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn cooldown_grows_per_failed_attempt_up_to_the_ceiling_and_resets_after_success() {
    let dir = receiver_dir(TOKEN);
    let d = dir.path().to_path_buf();
    let flag = d.join("fixed");
    // `test -e` exits 1 while the flag file is missing: a failing action
    // that starts to help once the flag is created.
    let text = TestConfig::new()
        .disable(&["host", "hwmon"])
        .single_host("h1")
        .receiver(&d, |r| {
            r.path("bearer_token_file", d.join("token"));
        })
        .rule(
            Rule::new("flaky", "Flaky")
                .set("cooldown", "1s")
                .set("backoff_factor", 2.0)
                .set("backoff_max", "4s")
                .set("budget_attempts", 100)
                .action(Action::exec(["/usr/bin/test", "-e", &flag.display().to_string()])),
        )
        .render();
    let cfg_path = d.join("hostmedic.toml");
    std::fs::write(&cfg_path, &text).unwrap();
    let mut srv = InProcess::start(Config::load(Some(&cfg_path)).unwrap()).await;
    let target = format!("exec:/usr/bin/test -e {}", flag.display());
    let key = format!("flaky|{target}");
    let mut n = 0;
    // 1×, 2×, 4× the cooldown, then capped at 4 s.
    let expected = [2.0, 4.0, 4.0, 4.0];
    for (i, want) in expected.iter().enumerate() {
        deliver_until_acted(&srv, &mut n).await;
        let failures = i as u64 + 1;
        let got = eventually(Duration::from_secs(20), "the failed attempt counted", || async {
            backoff_of(&srv, &key).await.filter(|(f, _)| *f == failures)
        })
        .await;
        assert_eq!(got, (failures, *want), "after failure {failures}");
        if i == 1 {
            // The streak is the journal's: a restart keeps it.
            srv.stop().await;
            srv = InProcess::start(Config::load(Some(&cfg_path)).unwrap()).await;
            assert_eq!(backoff_of(&srv, &key).await, Some((2, 4.0)), "after a restart");
            // The landing page shows the grown cooldown next to the holds.
            let (_, page) = get_with_token(&srv.url("/"), TOKEN).await;
            let row = format!(
                "<tr><td>{}</td><td>flaky</td><td>2</td><td>4s</td>",
                hostmedic::landing::html_escape(&target)
            );
            assert!(
                page.contains("<h2 id=\"backoff\">Grown cooldowns (backoff)</h2>"),
                "{page}"
            );
            assert!(page.contains(&row), "landing page lacks {row:?}:\n{page}");
        }
    }
    // The journal: attempts spaced by at least the cooldown in force, and
    // the skips in between name the grown cooldown.
    let entries = journal_of(&d);
    let acts: Vec<f64> = entries
        .iter()
        .filter(|e| {
            matches!(
                &e.event,
                Event::Decision {
                    decision: Decision::Act,
                    ..
                }
            )
        })
        .map(|e| e.ts)
        .collect();
    assert_eq!(acts.len(), 4);
    for (i, gap) in acts.windows(2).map(|w| w[1] - w[0]).enumerate() {
        let min = expected[i];
        assert!(
            gap >= min,
            "attempt {} came {gap:.2}s after the previous one, cooldown {min}s",
            i + 2
        );
    }
    let skip_details = cooldown_details(entries.iter());
    assert!(
        skip_details
            .iter()
            .any(|d| d.starts_with("4s (backoff after 2 failed attempt(s)) until ")),
        "{skip_details:?}"
    );
    let failed = entries
        .iter()
        .filter(|e| matches!(&e.event, Event::Action { result, .. } if result == "failed"))
        .count();
    assert_eq!(failed, 4);

    // The fix lands: the next attempt helps and the cooldown is back to 1 s.
    std::fs::write(&flag, "").unwrap();
    deliver_until_acted(&srv, &mut n).await;
    eventually(Duration::from_secs(20), "the successful attempt", || async {
        journal_of(&d)
            .iter()
            .any(|e| matches!(&e.event, Event::Action { result, .. } if result == "ok"))
            .then_some(())
    })
    .await;
    assert_eq!(backoff_of(&srv, &key).await, None, "a success resets the backoff");
    let skipped = deliver_until_acted(&srv, &mut n).await;
    let entries = journal_of(&d);
    let success = entries
        .iter()
        .position(|e| matches!(&e.event, Event::Action { result, .. } if result == "ok"))
        .unwrap();
    let details = cooldown_details(entries[success..].iter());
    assert_eq!(details.len() as u32, skipped);
    assert!(details.iter().all(|d| d.starts_with("1s until ")), "{details:?}");
    srv.stop().await;
}

/// A Compose project as Debian's `docker-compose` (1.29, Compose v1) creates
/// it: `b` shares `a`'s network (`network_mode: service:a`, which Compose
/// writes as `container:<a's id>`), `c` has `depends_on: [a]`, which Compose
/// v1 records in no label.
const COMPOSE_FILE: &str = r#"version: "3.8"
services:
  a:
    image: hostmedic-test/busybox
    command: ["sleep", "3600"]
    network_mode: none
    stop_grace_period: 1s
  b:
    image: hostmedic-test/busybox
    command: ["sleep", "3600"]
    network_mode: "service:a"
    stop_grace_period: 1s
  c:
    image: hostmedic-test/busybox
    command: ["sleep", "3600"]
    network_mode: none
    stop_grace_period: 1s
    depends_on: [a]
"#;

fn started_at(e: &PrivateEngine, name: &str) -> String {
    e.inspect(name, "{{.State.StartedAt}}")
}

/// The Compose project `pp` (v1, see [`COMPOSE_FILE`]) brought up in a
/// folder of `dir`, plus a container as Compose v2 labels a service with
/// `depends_on: [a]`, and a target with a network sharer (`solo`,
/// `solo-side`) for a rule without the opt-in.
fn compose_world(e: &PrivateEngine, dir: &std::path::Path) {
    let project = dir.join("pp");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("docker-compose.yml"), COMPOSE_FILE).unwrap();
    let up = std::process::Command::new("/usr/bin/docker-compose")
        .args(["-p", "pp", "up", "-d"])
        .current_dir(&project)
        .env("DOCKER_HOST", e.docker_host())
        .output()
        .expect("docker-compose up");
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    // What Compose v1 really wrote: the network mode, no depends_on label.
    let a_id = e.inspect("pp_a_1", "{{.Id}}");
    assert_eq!(
        e.inspect("pp_b_1", "{{.HostConfig.NetworkMode}}"),
        format!("container:{a_id}")
    );
    assert_eq!(
        e.inspect("pp_c_1", r#"{{index .Config.Labels "com.docker.compose.depends_on"}}"#),
        ""
    );
    e.run_detached(&[
        "--name",
        "pp-v2-1",
        "--stop-timeout",
        "1",
        "--network",
        "none",
        "--label",
        "com.docker.compose.project=pp",
        "--label",
        "com.docker.compose.service=v2",
        "--label",
        "com.docker.compose.depends_on=a:service_started:false",
        BUSYBOX_IMAGE,
        "sleep",
        "3600",
    ]);
    for (name, network) in [("solo", "none"), ("solo-side", "container:solo")] {
        e.run_detached(&[
            "--name",
            name,
            "--stop-timeout",
            "1",
            "--network",
            network,
            BUSYBOX_IMAGE,
            "sleep",
            "3600",
        ]);
    }
}

/// A receiver in `dir` on engine `e`: pp_a_1 restarted with its dependents
/// (and previewed in a dry run), solo restarted without them.
fn dependents_config(e: &PrivateEngine, dir: &std::path::Path) -> String {
    let restart = |dependents: bool| {
        Action::new("docker")
            .set("op", "restart")
            .set("container", "{{ labels.container }}")
            .set("restart_dependents", dependents)
    };
    TestConfig::new()
        .disable(&["host", "hwmon"])
        .single_host("h1")
        .section("docker", |s| {
            s.set("host", e.docker_host());
        })
        .receiver(dir, |r| {
            r.path("bearer_token_file", dir.join("token"));
        })
        .rule(
            Rule::new("with-dependents", "ContainerDown")
                .strings("matchers", [r#"container="pp_a_1""#])
                .action(restart(true)),
        )
        .rule(
            Rule::new("preview", "ContainerDown")
                .strings("matchers", [r#"container="pp_a_1""#])
                .set("mode", "dry-run")
                .action(restart(true)),
        )
        .rule(
            Rule::new("alone", "ContainerDown")
                .strings("matchers", [r#"container="solo""#])
                .action(restart(false)),
        )
        .render()
}

/// Verification covers every container restarted: 3 + 1. The dry run
/// (serialized with the real run on the same target) reports 3 lines.
async fn every_restart_is_verified(dir: &std::path::Path) {
    let verified = eventually(Duration::from_secs(120), "four verifications and the dry run", || async {
        let entries = journal_of(dir);
        let previewed = entries
            .iter()
            .filter(|e| matches!(&e.event, Event::Action { rule, result, .. } if rule == "preview" && result == "dry_run"))
            .count();
        let v: Vec<(String, String)> = entries
            .into_iter()
            .filter_map(|e| match e.event {
                Event::Verify { rule, result, .. } => Some((rule, result.to_string())),
                _ => None,
            })
            .collect();
        (v.len() == 4 && previewed == 3).then_some(v)
    })
    .await;
    assert!(verified.iter().all(|(_, r)| r == "verified"), "{verified:?}");
}

/// One action result per container, the target first; the dry run lists
/// the same dependents and says what it would run.
fn one_result_per_container_the_target_first(dir: &std::path::Path) {
    let restarted: Vec<(String, String, String, String)> = journal_of(dir)
        .into_iter()
        .filter_map(|e| match e.event {
            Event::Action {
                rule,
                description,
                result,
                detail,
                ..
            } => Some((rule, description, result.to_string(), detail)),
            _ => None,
        })
        .collect();
    let of = |rule: &str| -> Vec<&str> {
        restarted
            .iter()
            .filter(|(r, _, result, _)| r == rule && result == "ok")
            .map(|(_, d, _, _)| d.as_str())
            .collect()
    };
    let preview: Vec<&str> = restarted
        .iter()
        .filter(|(r, _, result, _)| r == "preview" && result == "dry_run")
        .map(|(_, _, _, detail)| detail.as_str())
        .collect();
    assert_eq!(preview.len(), 3, "{restarted:?}");
    assert!(
        preview[0].starts_with("would run docker restart pp_a_1 "),
        "{preview:?}"
    );
    assert!(
        preview[1..]
            .iter()
            .all(|p| p.contains(" (depends on pp_a_1) (before: state running")),
        "{preview:?}"
    );
    let with = of("with-dependents");
    assert_eq!(with.len(), 3, "{restarted:?}");
    assert_eq!(with[0], "docker.restart docker:pp_a_1");
    let mut rest = with[1..].to_vec();
    rest.sort();
    assert_eq!(rest, ["docker.restart docker:pp-v2-1", "docker.restart docker:pp_b_1"]);
    assert_eq!(of("alone"), ["docker.restart docker:solo"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_dependents_restarts_network_sharers_and_compose_dependents_after_the_target() {
    let Some(e) = PrivateEngine::start_or_skip() else {
        return;
    };
    if !std::path::Path::new("/usr/bin/docker-compose").exists() && skip_or_fail("docker-compose is not installed") {
        return;
    }
    let dir = receiver_dir(TOKEN);
    let d = dir.path();
    compose_world(&e, d);
    let names = ["pp_a_1", "pp_b_1", "pp_c_1", "pp-v2-1", "solo", "solo-side"];
    let before: Vec<String> = names.iter().map(|n| started_at(&e, n)).collect();

    let srv = InProcess::start(Config::parse(&dependents_config(&e, d), "test").unwrap()).await;
    let alerts = vec![
        alert(
            "ContainerDown",
            &[("container", "pp_a_1")],
            "2026-01-01T00:00:00Z",
            "firing",
            "1111111111111111",
        ),
        alert(
            "ContainerDown",
            &[("container", "solo")],
            "2026-01-01T00:00:00Z",
            "firing",
            "2222222222222222",
        ),
    ];
    let (code, body) = post(&srv.url("/api/v1/alerts"), Some(TOKEN), &payload(alerts)).await;
    assert_eq!(code, 200, "{body}");
    every_restart_is_verified(d).await;
    one_result_per_container_the_target_first(d);

    // The engine agrees: restarted are the target, its network sharer and
    // its Compose v2 dependent; not the v1 `depends_on` one, nor the
    // network sharer of the container whose rule did not opt in.
    let after: Vec<String> = names.iter().map(|n| started_at(&e, n)).collect();
    let changed: Vec<&str> = names
        .iter()
        .zip(before.iter().zip(&after))
        .filter(|(_, (b, a))| b != a)
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(changed, ["pp_a_1", "pp_b_1", "pp-v2-1", "solo"]);
    // The sharer is in the restarted target's network namespace again.
    let a_pid = e.inspect("pp_a_1", "{{.State.Pid}}");
    let b_pid = e.inspect("pp_b_1", "{{.State.Pid}}");
    let netns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_eq!(netns(&a_pid), netns(&b_pid));
    srv.stop().await;
}
