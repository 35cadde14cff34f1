//! Nothing left "acting" after a crash, on the real binary: a plan whose
//! `exec` action is still running (a shell that leaves a background child
//! in its process group) when hostmedic is killed with SIGKILL. The shell
//! and its child outlive hostmedic (nothing kills an own process group on
//! `kill -9` outside systemd); the restarted process, on the same journal
//! and state, kills that group (checked through /proc), journals the action
//! `interrupted` naming what it killed, verifies the plan (its `kill` action
//! never ran, so the runaway it targets is still there: not helped), keeps
//! the attempt spent in the status document, and `hostmedic incidents`
//! shows it.

use crate::common;

use std::time::Duration;

use common::config::{Action, Rule, TestConfig};
use common::procs::Spawned;
use common::*;
use hostmedic::receiver::journal::{self, Entry, Event};
use serde_json::json;

const TOKEN: &str = "t0ken-for-crash-tests-0123456789";

fn journal_of(dir: &std::path::Path) -> Vec<Entry> {
    journal::read_from(&dir.join("journal.jsonl"), 0).unwrap().0
}

/// A live process (not a zombie): its /proc stat exists and is not `Z`.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| !r.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

fn read_pid(path: &std::path::Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Delivers one firing alert with `labels` (an Alertmanager v4 payload).
async fn post_firing(bin: &Binary, labels: serde_json::Value, fingerprint: &str) {
    let alert = json!({"status": "firing", "labels": labels, "annotations": {"summary": "test"},
        "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prom/graph", "fingerprint": fingerprint});
    deliver_alerts(&bin.url("/api/v1/alerts"), TOKEN, vec![alert]).await;
}

/// A receiver in `dir` whose rule `unstick` runs `script` (10 min timeout)
/// and then kills the `/bin/sleep 4242` runaway its alert names.
fn unstick_config(dir: &std::path::Path, script: &str) -> std::path::PathBuf {
    TestConfig::new()
        .disable(&["host", "hwmon"])
        .single_host("h1")
        .receiver(dir, |r| {
            r.path("bearer_token_file", dir.join("token")).set("cooldown", "0s");
        })
        .rule(
            Rule::new("unstick", "Stuck")
                .action(Action::exec(["/bin/sh", "-c", script]).set("timeout", "10m"))
                .action(
                    Action::new("kill")
                        .set("pid", "{{ labels.pid }}")
                        .set("allow", "^/bin/sleep 4242$")
                        .set("grace", "1s"),
                )
                .set("verify_timeout", "1s")
                .set("budget_attempts", 3),
        )
        .write(dir.join("hostmedic.toml"))
}

/// The exec is running and its start is journaled; it leads its own
/// process group, which its background child is in. Returns the leader's
/// and the child's pids and the plan's id.
async fn exec_runs_in_its_own_group(dir: &std::path::Path) -> (i32, i32, String) {
    let (leader, child, spawned) = eventually(Duration::from_secs(20), "exec running and journaled", || async {
        let (l, c) = (read_pid(&dir.join("leader.pid"))?, read_pid(&dir.join("child.pid"))?);
        let sp = journal_of(dir).into_iter().find_map(|e| match e.event {
            Event::Spawned { id, pid, pgid, .. } => Some((id, pid, pgid)),
            _ => None,
        })?;
        Some((l, c, sp))
    })
    .await;
    let (id, pid, pgid) = spawned;
    assert_eq!(
        (pid as i32, pgid as i32),
        (leader, leader),
        "the exec leads its own group"
    );
    let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap();
    let pgrp: i32 = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(pgrp, leader, "the background child is in the exec's group");
    (leader, child, id)
}

/// After the restart: plan `id`'s first action ends `interrupted`, naming
/// the group it killed (`leader`, `child`), the second never runs, the plan
/// is verified not helped (the `runaway` is still there) and the survivors
/// are gone.
async fn restart_ends_the_plan_interrupted(dir: &std::path::Path, id: &str, (leader, child): (i32, i32), runaway: i32) {
    let entries = eventually(
        Duration::from_secs(20),
        "interrupted outcome and verification",
        || async {
            let j = journal_of(dir);
            j.iter()
                .any(|e| matches!(&e.event, Event::Verify { id: v, .. } if *v == id))
                .then_some(j)
        },
    )
    .await;
    let (result, detail, index) = entries
        .iter()
        .find_map(|e| match &e.event {
            Event::Action {
                id: a,
                result,
                detail,
                index,
                ..
            } if *a == id => Some((*result, detail.clone(), *index)),
            _ => None,
        })
        .expect("an outcome for the interrupted plan");
    assert_eq!((result.as_str(), index), ("interrupted", 0), "{detail}");
    assert!(detail.contains(&format!("process group {leader}")), "{detail}");
    assert!(
        detail.contains("killed") && detail.contains(&leader.to_string()) && detail.contains(&child.to_string()),
        "{detail}"
    );
    let outcomes = entries
        .iter()
        .filter(|e| matches!(&e.event, Event::Action { id: a, .. } if *a == id))
        .count();
    assert_eq!(outcomes, 1, "the kill action after the interrupted one never ran");
    let verify = entries
        .iter()
        .find_map(|e| match &e.event {
            Event::Verify {
                id: v, result, detail, ..
            } if *v == id => Some((*result, detail.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(verify.0, "not_helped", "the runaway is still there: {verify:?}");
    assert!(alive(runaway));
    // The surviving group is gone (checked through /proc).
    assert!(!alive(leader) && !alive(child), "survivors killed");
}

/// The attempt stays spent: in the status file in `dir`, and counted in
/// `bin`'s /metrics.
async fn the_attempt_stays_spent(dir: &std::path::Path, bin: &Binary) {
    let status = eventually(
        Duration::from_secs(10),
        "status with the interrupted outcome",
        || async {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("status.json")).ok()?).ok()?;
            v["last_actions"]
                .as_array()?
                .iter()
                .any(|a| a["result"] == "interrupted")
                .then_some(v)
        },
    )
    .await;
    let budgets = status["budgets"].as_object().unwrap();
    assert_eq!(budgets.len(), 1, "{status}");
    assert_eq!(budgets.values().next().unwrap()["attempts"], 1, "{status}");
    let metrics = get(&bin.url("/metrics")).await.1;
    assert!(
        metrics.contains(r#"hostmedic_actions_total{action="exec",result="interrupted"} 1"#),
        "{metrics}"
    );
}

/// `hostmedic incidents` on `cfg` shows the interruption of the group led
/// by `leader`: markdown keeps each detail to one short line; JSON has it whole.
fn incidents_show_the_interruption(cfg: &std::path::Path, leader: i32) {
    let out = std::process::Command::new(binary_path())
        .args(["--config", cfg.to_str().unwrap(), "incidents"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.contains("**interrupted**"), "{md}");
    assert!(md.contains("killed"), "{md}");
    let out = std::process::Command::new(binary_path())
        .args(["--config", cfg.to_str().unwrap(), "incidents", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let interrupted: Vec<&serde_json::Value> = json[0]["plans"][0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["result"] == "interrupted")
        .collect();
    assert_eq!(interrupted.len(), 1, "{json}");
    let detail = interrupted[0]["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("process group {leader}")), "{detail}");
    assert!(detail.contains("killed"), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_mid_action_ends_interrupted_kills_the_surviving_group_and_verifies() {
    let dir = receiver_dir(TOKEN);
    let d = dir.path();
    // The runaway the rule's second action would kill.
    let runaway = Spawned::new("/bin/sleep", &["4242"]);
    let script = format!(
        "echo $$ > {d}/leader.pid; /bin/sleep 300 & echo $! > {d}/child.pid; wait",
        d = d.display()
    );
    let cfg = unstick_config(d, &script);
    let mut bin = Binary::start(&cfg, d);
    let pid = runaway.pid().to_string();
    post_firing(&bin, json!({"alertname": "Stuck", "pid": pid}), "5e1f5e1f5e1f5e1f").await;
    let (leader, child, id) = exec_runs_in_its_own_group(d).await;

    bin.signal_and_wait(nix::sys::signal::Signal::SIGKILL, Duration::from_secs(10))
        .expect("hostmedic killed");
    // Outside systemd nothing kills the group: both outlive hostmedic.
    assert!(alive(leader) && alive(child), "the exec's group outlived hostmedic");
    assert!(
        !journal_of(d).iter().any(|e| matches!(&e.event, Event::Action { .. })),
        "no outcome before the restart"
    );

    let bin = Binary::start(&cfg, d);
    restart_ends_the_plan_interrupted(d, &id, (leader, child), runaway.pid()).await;
    the_attempt_stays_spent(d, &bin).await;

    // A third start finds nothing acting any more.
    drop(bin);
    let bin = Binary::start(&cfg, d);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = journal_of(d)
        .iter()
        .filter(|e| matches!(&e.event, Event::Action { result, .. } if result == "interrupted"))
        .count();
    assert_eq!(again, 1, "{}", bin.log());
    incidents_show_the_interruption(&cfg, leader);
}

/// Under systemd-like conditions the group is already gone when the next
/// start looks (here: it ended by itself before the restart): the outcome
/// says so and nothing is signalled.
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_plan_whose_processes_ended_reports_them_ended() {
    let dir = receiver_dir(TOKEN);
    let d = dir.path();
    let script = format!("echo $$ > {}/leader.pid; /bin/sleep 300", d.display());
    let cfg = TestConfig::new()
        .disable(&["host", "hwmon"])
        .single_host("h1")
        .receiver(d, |r| {
            r.path("bearer_token_file", d.join("token"));
        })
        .rule(Rule::new("slow", "Slow").action(Action::exec(["/bin/sh", "-c", &script]).set("timeout", "10m")))
        .write(d.join("hostmedic.toml"));
    let mut bin = Binary::start(&cfg, d);
    post_firing(&bin, json!({"alertname": "Slow"}), "0123").await;
    let leader = eventually(Duration::from_secs(20), "exec journaled", || async {
        let l = read_pid(&d.join("leader.pid"))?;
        journal_of(d)
            .iter()
            .any(|e| matches!(e.event, Event::Spawned { .. }))
            .then_some(l)
    })
    .await;
    bin.signal_and_wait(nix::sys::signal::Signal::SIGKILL, Duration::from_secs(10))
        .expect("hostmedic killed");
    // What KillMode=control-group does under systemd: the group dies too.
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(leader), nix::sys::signal::Signal::SIGKILL).unwrap();
    eventually(Duration::from_secs(10), "group gone", || async {
        (!alive(leader)).then_some(())
    })
    .await;

    let _bin = Binary::start(&cfg, d);
    let detail = eventually(Duration::from_secs(20), "interrupted outcome", || async {
        journal_of(d).into_iter().find_map(|e| match e.event {
            Event::Action { result, detail, .. } if result == "interrupted" => Some(detail),
            _ => None,
        })
    })
    .await;
    assert!(
        detail.contains(&format!("process group {leader} (action 1): had already ended")),
        "{detail}"
    );
}
