//! S8 end to end on a private Docker engine (tests/support/src/docker.rs), with
//! the SHIPPED rules (`for:` clamped in the test copy) and the SHIPPED
//! remediation map (config/remediation.example.toml; only paths, token and
//! the ntfy server changed).
//!
//! S8: a containerised trading bot reported "unhealthy" (its health check
//! failed), restarted over and over, and was OOM-killed (exit 137) near its
//! memory limit. Watched: state, health, restart count, OOM flag, exit code,
//! memory usage and limit.
//!
//! - unhealthy: the bot's health check starts failing →
//!   `HostmedicContainerUnhealthy` → `docker restart` (verified: running,
//!   healthy, not restarting) → the bot is healthy again, the operator is
//!   told. This is the scenario's timed fault ("S8").
//! - restart loop: a `--restart=always` container that exits non-zero right
//!   away → `HostmedicContainerRestartLoop` → its restart policy set to `no`
//!   (verified), the loop ends (the restart count stays still), the operator
//!   is told, with the exit code.
//! - memory: a container at ~85 % of its limit →
//!   `HostmedicContainerMemoryNearLimit` → notification (notify-only), while
//!   one at ~50 % stays quiet; a container that runs out of memory is
//!   OOM-killed (exit 137) → `HostmedicContainerOOMKilled` → notification
//!   naming the container, the exit code and the limit.

use crate::common;

use std::time::Duration;

use common::docker::{BUSYBOX_IMAGE, PrivateEngine};
use common::e2e::*;

/// `[docker]` on the private engine; the process collector (not part of S8)
/// off, so the only busy parts are the ones under test.
fn docker_section(e: &PrivateEngine) -> String {
    let section = common::config::TestConfig::new()
        .section("docker", |d| {
            d.set("host", e.docker_host()).set("timeout", "3s");
        })
        .disable(&["processes"])
        .render();
    format!("\n{section}")
}

/// The first ntfy message whose title or text names `needle`.
fn ntfy_naming(st: &Stack, needle: &str) -> Option<(String, String)> {
    st.ntfy_messages()
        .into_iter()
        .find(|(t, m)| t.contains(needle) || m.contains(needle))
}

/// PromQL: `container`'s memory usage as a fraction of its limit.
fn memory_ratio(container: &str) -> String {
    let bytes = |what: &str| format!("hostmedic_docker_container_memory_{what}_bytes{{container=\"{container}\"}}");
    format!("{} / {}", bytes("usage"), bytes("limit"))
}

/// The trading bot: marks its market feed up at start (the file its health
/// check looks for stands in for a health endpoint answering 200), exits on
/// SIGTERM as a bot that shuts down cleanly does.
const BOT: &str = "trap 'exit 0' TERM; touch /tmp/feed-ok; sleep 3600 & wait";

#[tokio::test(flavor = "multi_thread")]
async fn s8_unhealthy_container_is_restarted_and_healthy_again() {
    let Some(e) = PrivateEngine::start_or_skip() else {
        return;
    };
    e.run_detached(&[
        "--name",
        "trading-bot",
        "--health-cmd",
        "test -f /tmp/feed-ok || { echo 'market feed down: no /tmp/feed-ok'; exit 1; }",
        "--health-interval=1s",
        "--health-timeout=1s",
        "--health-retries=2",
        "--memory=64m",
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        BOT,
    ]);
    let mut st = Stack::new("S8").await;
    st.start_hostmedic(&format!("{}{}", docker_section(&e), st.shipped_map(&[])));
    // `for:` 0s: nothing before the fault can make the rule true (no time
    // window to wait out), so the alert fires at the first evaluation after it.
    st.start_monitoring(Duration::ZERO, &[]).await;
    st.wait_query(
        Duration::from_secs(60),
        "hostmedic_docker_container_health{container=\"trading-bot\",health=\"healthy\"}",
        |v| v == 1.0,
    )
    .await;
    let started = e.inspect("trading-bot", "{{.State.StartedAt}}");

    // Fault: the bot's feed drops; its health check fails from now on (it
    // only comes back when the bot starts again).
    e.docker(&["exec", "trading-bot", "rm", "/tmp/feed-ok"]);
    let sw = Stopwatch::fault_injected("S8");

    st.wait_for(Duration::from_secs(90), "trading-bot restarted (verified)", |st| {
        st.verified("container-unhealthy", "docker:trading-bot")
    })
    .await;
    sw.remediated(&st).await;
    let acts = st.actions("container-unhealthy");
    assert_eq!(acts.len(), 1, "{acts:?}");
    let (action, target, result, detail) = &acts[0];
    assert_eq!(
        (action.as_str(), target.as_str(), result.as_str()),
        ("docker.restart", "docker:trading-bot", "ok"),
        "{detail}"
    );
    assert!(detail.contains("before: state running, health unhealthy"), "{detail}");

    // Really restarted, and healthy again (engine's view and the exporter's).
    assert_ne!(
        e.inspect("trading-bot", "{{.State.StartedAt}}"),
        started,
        "not restarted"
    );
    assert_eq!(
        e.inspect("trading-bot", "{{.State.Status}} {{.State.Health.Status}}"),
        "running healthy"
    );
    st.wait_query(
        Duration::from_secs(30),
        "hostmedic_docker_container_health{container=\"trading-bot\",health=\"healthy\"}",
        |v| v == 1.0,
    )
    .await;
    // The operator hears what was done and that it helped.
    let (title, msg) = st
        .wait_for(Duration::from_secs(20), "restart outcome notification", |st| {
            ntfy_naming(st, "container-unhealthy ran on docker:trading-bot")
        })
        .await;
    assert!(title.ends_with(": verified"), "{title}: {msg}");
    assert!(msg.contains("docker.restart docker:trading-bot: ok"), "{title}: {msg}");
    // The evidence: the failing health-check output the engine kept, in the
    // journal and in the notification.
    const WHY: &str = "exit 1: market feed down: no /tmp/feed-ok";
    let ev = st.evidence("docker:trading-bot");
    let (_, before) = ev.first().expect("evidence journaled");
    assert_eq!(
        before.facts.get("Health").map(String::as_str),
        Some("unhealthy"),
        "{before:#?}"
    );
    let probes = before
        .sections
        .iter()
        .find(|s| s.title.starts_with("health checks"))
        .unwrap_or_else(|| panic!("{before:#?}"));
    assert!(probes.lines.iter().any(|l| l.contains(WHY)), "{probes:#?}");
    assert!(msg.contains(WHY), "{msg}");
    assert!(msg.len() <= hostmedic::notify::NTFY_MESSAGE_MAX);
    st.assert_no_secrets();
}

#[tokio::test(flavor = "multi_thread")]
async fn s8_restart_loop_is_stopped_and_memory_near_limit_and_oom_kill_are_reported() {
    let Some(e) = PrivateEngine::start_or_skip() else {
        return;
    };
    let mut st = Stack::new("S8").await;
    st.start_hostmedic(&format!("{}{}", docker_section(&e), st.shipped_map(&[])));
    st.start_monitoring(Duration::from_secs(3), &[]).await;
    // The loop must start under Prometheus' eyes: the restart count rises
    // fastest at first (the engine doubles its back-off after each exit).
    st.wait_query(Duration::from_secs(60), "hostmedic_docker_info", |v| v == 1.0)
        .await;

    // Faults: a feed relay that dies at start with exit code 3 under
    // --restart=always; a bot holding its order book in memory at ~85 % of
    // its limit (tmpfs pages are charged to its cgroup and cannot be
    // reclaimed without swap), a calm one at ~50 %; a bot whose memory grows
    // until the kernel kills it (tail keeps the newline-free /dev/zero
    // "line" in memory).
    e.run_detached(&[
        "--name",
        "feed-relay",
        "--restart=always",
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        "sleep 0.3; exit 3",
    ]);
    let fill = |mib: u32| format!("dd if=/dev/zero of=/dev/shm/book bs=1M count={mib} && exec sleep 3600");
    for (name, mib) in [("bot-heavy", 27), ("bot-calm", 16)] {
        e.run_detached(&[
            "--name",
            name,
            "--memory=32m",
            "--memory-swap=32m",
            BUSYBOX_IMAGE,
            "sh",
            "-c",
            &fill(mib),
        ]);
    }
    e.run_oom_hog("bot-oom", "8m");

    // Restart loop → restart policy off (verified) → the operator is told.
    st.wait_for(
        Duration::from_secs(90),
        "feed-relay restart policy off (verified)",
        |st| st.verified("container-restart-loop", "docker:feed-relay"),
    )
    .await;
    assert_eq!(e.inspect("feed-relay", "{{.HostConfig.RestartPolicy.Name}}"), "no");
    let (_, msg) = st
        .wait_for(Duration::from_secs(20), "restart-loop notification", |st| {
            st.ntfy_messages()
                .into_iter()
                .find(|(t, _)| t == "restart policy of feed-relay set to no")
        })
        .await;
    assert!(msg.contains("Container feed-relay on"), "{msg}");
    let times: u64 = msg
        .split(" times in the last 10 minutes")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("restart count in {msg}"));
    assert!(times >= 3, "it did loop: {msg}");
    assert!(
        msg.contains("docker update --restart unless-stopped feed-relay"),
        "{msg}"
    );
    let acts = st.actions("container-restart-loop");
    let kinds: Vec<&str> = acts.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(kinds, ["docker.restart-policy", "notify"], "{acts:?}");
    assert!(acts.iter().all(|a| a.2 == "ok"), "{acts:?}");
    assert!(acts[0].3.contains("restart policy always"), "{acts:?}");
    // The loop is over: a restart already scheduled may still run, then the
    // container stays exited and its restart count stays still.
    st.wait_for(Duration::from_secs(30), "feed-relay exited for good", |_| {
        (e.inspect("feed-relay", "{{.State.Status}}") == "exited").then_some(())
    })
    .await;
    let count = e.inspect("feed-relay", "{{.RestartCount}}");
    assert!(count.parse::<u64>().unwrap() >= 3, "{count}");
    assert_eq!(e.inspect("feed-relay", "{{.State.ExitCode}}"), "3");
    st.wait_query(
        Duration::from_secs(30),
        "hostmedic_docker_container_exit_code{container=\"feed-relay\"}",
        |v| v == 3.0,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(e.inspect("feed-relay", "{{.RestartCount}}"), count, "still restarting");
    assert_eq!(e.inspect("feed-relay", "{{.State.Status}}"), "exited");

    // Memory at ~85 % of the limit → notified (the shipped map only notifies).
    let (_, msg) = st
        .wait_for(Duration::from_secs(60), "memory-near-limit notification", |st| {
            ntfy_naming(st, "Container bot-heavy on")
        })
        .await;
    assert!(msg.contains("of its memory limit"), "{msg}");
    assert!(msg.contains("of 32MiB"), "the limit: {msg}");
    assert!(msg.contains("at 100% the kernel OOM-kills it"), "{msg}");
    let used = st
        .query(&memory_ratio("bot-heavy"))
        .await
        .expect("bot-heavy usage ratio");
    assert!((0.8..1.0).contains(&used), "bot-heavy at {used}");
    assert_eq!(
        e.inspect("bot-heavy", "{{.State.Status}}"),
        "running",
        "near the limit, not over"
    );

    // OOM kill → notified with the exit code and the limit.
    let (_, msg) = st
        .wait_for(Duration::from_secs(60), "OOM-kill notification", |st| {
            ntfy_naming(st, "killed container bot-oom")
        })
        .await;
    assert!(
        msg.contains("running out of memory (exit code 137, memory limit 8MiB)"),
        "{msg}"
    );
    assert_eq!(
        e.inspect("bot-oom", "{{.State.OOMKilled}} {{.State.ExitCode}}"),
        "true 137"
    );
    let acts = st.actions("container-oom-killed");
    assert!(
        !acts.is_empty() && acts.iter().all(|a| a.0 == "notify" && a.2 == "ok"),
        "{acts:?}"
    );

    // The calm bot (~50 % of the same limit) was seen, and never alerted on.
    let calm = st.query(&memory_ratio("bot-calm")).await.expect("bot-calm usage ratio");
    assert!((0.4..0.8).contains(&calm), "bot-calm at {calm}");
    let noisy: Vec<_> = st
        .ntfy_messages()
        .into_iter()
        .filter(|(t, m)| t.contains("bot-calm") || m.contains("bot-calm"))
        .collect();
    assert!(noisy.is_empty(), "{noisy:?}");
    st.assert_no_secrets();
}
