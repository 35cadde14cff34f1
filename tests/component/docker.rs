//! The docker collector against a real, private Docker engine (see
//! tests/support/src/docker.rs): health turning healthy then unhealthy, no health
//! check reading `none`, a crash loop under `--restart=always`, an OOM kill,
//! and the engine stopped mid-run and started again. Also the shared
//! `hostmedic::docker` helpers the remediation actions use.

use crate::common;

use std::time::{Duration, SystemTime};

use common::config::TestConfig;
use common::docker::{BUSYBOX_IMAGE, PrivateEngine};
use common::*;
use hostmedic::collector::Collector;
use hostmedic::collectors::docker::{Config, DockerCollector, MemorySource};
use hostmedic::config::GlobalConfig;
use hostmedic::metrics::{MetricSet, Value};

fn collector(e: &PrivateEngine, extra: impl FnOnce(&mut Config)) -> DockerCollector {
    let mut cfg = Config {
        host: e.docker_host(),
        timeout: Duration::from_secs(5),
        ..Config::default()
    };
    extra(&mut cfg);
    DockerCollector::new(&cfg, &Default::default()).unwrap()
}

async fn scrape(c: &DockerCollector) -> MetricSet {
    let mut m = MetricSet::new();
    c.collect(&mut m).await.expect("docker collect");
    m
}

/// The label value whose one-hot sample is 1 for `container`; asserts that
/// exactly one is.
fn one_hot(m: &MetricSet, family: &str, label: &str, container: &str) -> Option<String> {
    let fam = m.get(family)?;
    let mut hot = Vec::new();
    let mut n = 0;
    for s in &fam.samples {
        if !s.labels.iter().any(|(k, v)| k == "container" && v == container) {
            continue;
        }
        n += 1;
        if s.value == Value::Number(1.0) {
            hot.extend(s.labels.iter().filter(|(k, _)| k == label).map(|(_, v)| v.clone()));
        } else {
            assert_eq!(s.value, Value::Number(0.0), "{family} {container}");
        }
    }
    if n == 0 {
        return None;
    }
    assert_eq!(hot.len(), 1, "{family} for {container} is not one-hot: {hot:?}");
    hot.pop()
}

fn val(m: &MetricSet, family: &str, container: &str) -> Option<f64> {
    m.value(family, &[("container", container)])
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread")]
async fn health_check_turns_healthy_then_unhealthy() {
    let Some(e) = PrivateEngine::start_or_skip() else {
        return;
    };
    e.run_detached(&[
        "--name",
        "web",
        "--health-cmd",
        "test -f /ok",
        "--health-interval=1s",
        "--health-timeout=1s",
        "--health-retries=2",
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        "touch /ok; exec sleep 3600",
    ]);
    let c = collector(&e, |_| {});
    let health = |m: &MetricSet| one_hot(m, "hostmedic_docker_container_health", "health", "web");

    let m = scrape(&c).await;
    let first = health(&m).unwrap();
    assert!(first == "starting" || first == "healthy", "{first}");
    let m = eventually(Duration::from_secs(30), "web healthy", || async {
        let m = scrape(&c).await;
        (health(&m).as_deref() == Some("healthy")).then_some(m)
    })
    .await;
    assert_eq!(
        val(&m, "hostmedic_docker_container_health_failing_streak", "web"),
        Some(0.0)
    );
    assert_eq!(
        one_hot(&m, "hostmedic_docker_container_state", "state", "web").as_deref(),
        Some("running")
    );

    e.docker(&["exec", "web", "rm", "/ok"]);
    let m = eventually(Duration::from_secs(30), "web unhealthy", || async {
        let m = scrape(&c).await;
        (health(&m).as_deref() == Some("unhealthy")).then_some(m)
    })
    .await;
    let streak = val(&m, "hostmedic_docker_container_health_failing_streak", "web").unwrap();
    assert!(streak >= 2.0, "failing streak {streak}");
    // Unhealthy is still running: the state does not hide the health.
    assert_eq!(
        one_hot(&m, "hostmedic_docker_container_state", "state", "web").as_deref(),
        Some("running")
    );
    let engine_streak: f64 = e.inspect("web", "{{.State.Health.FailingStreak}}").parse().unwrap();
    assert!(engine_streak >= streak);
}

/// `api` (no health check, a memory limit, a restart policy, Compose
/// labels; its id is returned), `skip-me` for the exclude filter, `done`
/// that exits 3 and `fresh` that is only created.
fn start_policy_containers(e: &PrivateEngine) -> String {
    let id = e.run_detached(&[
        "--name",
        "api",
        "--memory=64m",
        "--restart=unless-stopped",
        "--label",
        "com.docker.compose.project=shop",
        "--label",
        "com.docker.compose.service=api",
        BUSYBOX_IMAGE,
        "sleep",
        "3600",
    ]);
    e.run_detached(&["--name", "skip-me", BUSYBOX_IMAGE, "sleep", "3600"]);
    e.run_detached(&["--name", "done", BUSYBOX_IMAGE, "sh", "-c", "exit 3"]);
    e.docker(&["create", "--name", "fresh", BUSYBOX_IMAGE, "true"]);
    id
}

/// `api` (container `id`): no health check reads "none", never "unhealthy",
/// with no streak series; its labels, restart policy, memory and start
/// time. Returns the start time.
fn running_api_without_health_check(m: &MetricSet, id: &str) -> f64 {
    assert_eq!(
        one_hot(m, "hostmedic_docker_container_health", "health", "api").as_deref(),
        Some("none")
    );
    assert_eq!(
        m.value(
            "hostmedic_docker_container_health",
            &[("container", "api"), ("health", "unhealthy")]
        ),
        Some(0.0)
    );
    assert_eq!(val(m, "hostmedic_docker_container_health_failing_streak", "api"), None);
    assert_eq!(
        one_hot(m, "hostmedic_docker_container_state", "state", "api").as_deref(),
        Some("running")
    );
    let info = [
        ("container", "api"),
        ("id", id),
        ("image", BUSYBOX_IMAGE),
        ("compose_project", "shop"),
        ("compose_service", "api"),
    ];
    assert_eq!(m.value("hostmedic_docker_container_info", &info), Some(1.0));
    assert_eq!(
        m.value(
            "hostmedic_docker_container_restart_policy",
            &[("container", "api"), ("policy", "unless-stopped")]
        ),
        Some(1.0)
    );
    assert_eq!(val(m, "hostmedic_docker_container_restarts", "api"), Some(0.0));
    assert_eq!(
        val(m, "hostmedic_docker_container_memory_limit_bytes", "api"),
        Some(67108864.0)
    );
    let usage = val(m, "hostmedic_docker_container_memory_usage_bytes", "api").unwrap();
    assert!(usage > 0.0 && usage < 67108864.0, "usage {usage}");
    let started = val(m, "hostmedic_docker_container_started_timestamp_seconds", "api").unwrap();
    assert!((now() - 300.0..now() + 5.0).contains(&started), "started {started}");
    assert_eq!(
        val(m, "hostmedic_docker_container_finished_timestamp_seconds", "api"),
        None
    );
    started
}

/// `done` exited with its own code after `api_started`; stopped containers
/// have no usage series and unlimited ones no limit series. `fresh` never
/// started: state created, no timestamps. `skip-me` is excluded.
fn stopped_created_and_excluded(m: &MetricSet, api_started: f64) {
    assert_eq!(val(m, "hostmedic_docker_container_exit_code", "done"), Some(3.0));
    assert_eq!(val(m, "hostmedic_docker_container_oom_killed", "done"), Some(0.0));
    assert!(val(m, "hostmedic_docker_container_finished_timestamp_seconds", "done").unwrap() >= api_started - 5.0);
    assert_eq!(val(m, "hostmedic_docker_container_memory_usage_bytes", "done"), None);
    assert_eq!(val(m, "hostmedic_docker_container_memory_limit_bytes", "done"), None);
    assert_eq!(
        m.value(
            "hostmedic_docker_container_restart_policy",
            &[("container", "done"), ("policy", "no")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.value(
            "hostmedic_docker_container_info",
            &[("container", "done"), ("compose_project", "")]
        ),
        Some(1.0)
    );
    assert_eq!(
        one_hot(m, "hostmedic_docker_container_state", "state", "fresh").as_deref(),
        Some("created")
    );
    assert_eq!(
        val(m, "hostmedic_docker_container_started_timestamp_seconds", "fresh"),
        None
    );
    assert_eq!(one_hot(m, "hostmedic_docker_container_state", "state", "skip-me"), None);
}

/// Memory: the cgroup files (default, collector `c`) and the engine's
/// one-shot stats (memory_source = "stats", and the fallback when the
/// cgroup cannot be found, here through an empty procfs root) agree.
async fn memory_sources_agree(e: &PrivateEngine, c: &DockerCollector) {
    let conn = hostmedic::docker::connect(&Config {
        host: e.docker_host(),
        ..Config::default()
    })
    .await
    .unwrap();
    let from_stats = conn.memory_usage("api").await.unwrap().unwrap() as f64;
    let stats_cfg = collector(e, |cfg| cfg.memory_source = MemorySource::Stats);
    let empty = tempfile::tempdir().unwrap();
    let global = GlobalConfig {
        procfs_root: empty.path().to_path_buf(),
        ..GlobalConfig::default()
    };
    let fallback = DockerCollector::new(
        &Config {
            host: e.docker_host(),
            ..Config::default()
        },
        &global,
    )
    .unwrap();
    for (how, m) in [
        ("cgroup", scrape(c).await),
        ("stats", scrape(&stats_cfg).await),
        ("fallback", scrape(&fallback).await),
    ] {
        let v = val(&m, "hostmedic_docker_container_memory_usage_bytes", "api").unwrap();
        assert!(
            (v - from_stats).abs() <= 1_048_576.0,
            "{how}: {v} vs one-shot stats {from_stats}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_health_check_is_none_with_labels_policy_memory_and_filters() {
    let Some(e) = PrivateEngine::start_or_skip() else {
        return;
    };
    let id = start_policy_containers(&e);
    let c = collector(&e, |cfg| cfg.exclude = "^skip-".into());
    let m = eventually(Duration::from_secs(20), "done exited", || async {
        let m = scrape(&c).await;
        (one_hot(&m, "hostmedic_docker_container_state", "state", "done").as_deref() == Some("exited")).then_some(m)
    })
    .await;
    let started = running_api_without_health_check(&m, &id);
    stopped_created_and_excluded(&m, started);

    // The engine's API version is the one we negotiated down to.
    let api = e.docker(&["version", "-f", "{{.Server.APIVersion}}"]);
    let version = e.docker(&["version", "-f", "{{.Server.Version}}"]);
    assert_eq!(
        m.value(
            "hostmedic_docker_info",
            &[("version", version.as_str()), ("api_version", api.as_str())]
        ),
        Some(1.0)
    );
    memory_sources_agree(&e, &c).await;

    // include keeps only matching names.
    let only = collector(&e, |cfg| cfg.include = "^(api|done)$".into());
    let m = scrape(&only).await;
    let names: Vec<String> = m
        .get("hostmedic_docker_container_info")
        .unwrap()
        .samples
        .iter()
        .flat_map(|s| {
            s.labels
                .iter()
                .filter(|(k, _)| k == "container")
                .map(|(_, v)| v.clone())
        })
        .collect();
    assert_eq!(names, vec!["api".to_string(), "done".to_string()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_loop_under_restart_always_has_rising_restart_count() {
    let Some(e) = PrivateEngine::start_or_skip() else {
        return;
    };
    e.run_detached(&[
        "--name",
        "loop",
        "--restart=always",
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        "sleep 0.2; exit 7",
    ]);
    let c = collector(&e, |_| {});
    let first = eventually(Duration::from_secs(30), "a first restart", || async {
        let m = scrape(&c).await;
        val(&m, "hostmedic_docker_container_restarts", "loop").filter(|r| *r >= 1.0)
    })
    .await;
    let m = eventually(Duration::from_secs(60), "more restarts", || async {
        let m = scrape(&c).await;
        val(&m, "hostmedic_docker_container_restarts", "loop")
            .filter(|r| *r > first)
            .map(|_| m)
    })
    .await;
    assert_eq!(
        m.value(
            "hostmedic_docker_container_restart_policy",
            &[("container", "loop"), ("policy", "always")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get("hostmedic_docker_container_restarts").unwrap().kind,
        hostmedic::metrics::Kind::Counter
    );
    eventually(Duration::from_secs(30), "exit code 7 of the last run", || async {
        let m = scrape(&c).await;
        (val(&m, "hostmedic_docker_container_exit_code", "loop") == Some(7.0)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oom_kill_exports_flag_and_exit_code_137() {
    let Some(e) = PrivateEngine::start_or_skip() else {
        return;
    };
    e.run_oom_hog("hog", "8m");
    e.run_detached(&["--name", "calm", "--memory=8m", BUSYBOX_IMAGE, "sleep", "3600"]);
    let c = collector(&e, |_| {});
    // The engine records the exit and the OOM event (from containerd)
    // separately; under load the flag can land a moment after the exit.
    let m = eventually(Duration::from_secs(60), "hog exited with the OOM flag", || async {
        let m = scrape(&c).await;
        let exited = one_hot(&m, "hostmedic_docker_container_state", "state", "hog").as_deref() == Some("exited");
        (exited && val(&m, "hostmedic_docker_container_oom_killed", "hog") == Some(1.0)).then_some(m)
    })
    .await;
    assert_eq!(val(&m, "hostmedic_docker_container_exit_code", "hog"), Some(137.0));
    assert_eq!(
        val(&m, "hostmedic_docker_container_memory_limit_bytes", "hog"),
        Some(8388608.0)
    );
    assert_eq!(val(&m, "hostmedic_docker_container_oom_killed", "calm"), Some(0.0));
    assert_eq!(val(&m, "hostmedic_docker_container_exit_code", "calm"), Some(0.0));
    assert_eq!(e.inspect("hog", "{{.State.OOMKilled}} {{.State.ExitCode}}"), "true 137");
}

#[test]
fn engine_stopped_mid_run_then_started_again() {
    let Some(mut e) = PrivateEngine::start_or_skip() else {
        return;
    };
    e.run_detached(&[
        "--name",
        "keeper",
        "--restart=always",
        "--stop-timeout=1",
        BUSYBOX_IMAGE,
        "sleep",
        "3600",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = TestConfig::new()
        .section("docker", |d| {
            d.set("host", e.docker_host()).set("timeout", "2s");
        })
        .disable(&["hwmon"])
        .write(dir.path().join("hostmedic.toml"));
    let bin = Binary::start(&cfg, dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let metrics = || rt.block_on(get(&bin.url("/metrics"))).1;
    let success = |body: &str, v: u8| {
        body.contains(&format!(
            "hostmedic_scrape_collector_success{{collector=\"docker\"}} {v}\n"
        ))
    };

    let body = metrics();
    assert!(success(&body, 1), "{body}");
    assert!(body.contains("hostmedic_docker_container_state{container=\"keeper\",state=\"running\"} 1"));
    promtool_check_metrics(&body);

    e.stop();
    for _ in 0..3 {
        let body = metrics();
        assert!(success(&body, 0), "{body}");
        assert!(
            !body.contains("hostmedic_docker_container_state"),
            "stale series: {body}"
        );
    }
    let failures = |log: &str| {
        log.lines()
            .filter(|l| {
                l.contains("collector=docker") && (l.contains("collector failed") || l.contains("source not present"))
            })
            .count()
    };
    // The log file is filled by a thread copying the child's stderr: wait for it.
    let log_with = |want: &dyn Fn(&str) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let log = bin.log();
            if want(&log) || std::time::Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let log = log_with(&|l| failures(l) >= 1);
    assert_eq!(
        failures(&log),
        1,
        "one log line for the outage, not one per scrape:\n{log}"
    );

    e.start();
    let rt2 = tokio::runtime::Runtime::new().unwrap();
    rt2.block_on(eventually(Duration::from_secs(60), "docker collector back", || async {
        let body = get(&bin.url("/metrics")).await.1;
        (success(&body, 1) && body.contains("container=\"keeper\"")).then_some(())
    }));
    let recovered = |log: &str| {
        log.lines()
            .any(|l| l.contains("collector=docker") && l.contains("collector recovered"))
    };
    let log = log_with(&recovered);
    assert!(recovered(&log), "{log}");
    assert_eq!(failures(&log), 1, "{log}");
    for l in log.lines().filter(|l| l.contains("collector=docker")) {
        eprintln!("hostmedic: {l}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn shared_helpers_restart_disable_policy_stop_start_and_inspect() {
    let Some(e) = PrivateEngine::start_or_skip() else {
        return;
    };
    e.run_detached(&["--name", "svc", "--restart=always", BUSYBOX_IMAGE, "sleep", "3600"]);
    // A 1 s request timeout, shorter than the stop timeouts below: stop and
    // restart must wait for the container to go down, not time out.
    let cfg = Config {
        host: e.docker_host(),
        timeout: Duration::from_secs(1),
        ..Config::default()
    };
    let conn = hostmedic::docker::connect(&cfg).await.unwrap();
    assert!(!conn.api_version.is_empty());

    let before = conn.inspect("svc").await.unwrap();
    assert_eq!(
        (
            before.state.as_str(),
            before.health.as_str(),
            before.restart_policy.as_str()
        ),
        ("running", "none", "always")
    );
    // sleep as PID 1 ignores SIGTERM: the engine waits the whole 2 s, longer
    // than the 1 s request timeout.
    conn.restart_container("svc", Some(Duration::from_secs(2)))
        .await
        .unwrap();
    let after = conn.inspect("svc").await.unwrap();
    assert_eq!(after.state.as_str(), "running");
    assert!(
        after.started_at > before.started_at,
        "{:?} {:?}",
        after.started_at,
        before.started_at
    );

    conn.disable_restart("svc").await.unwrap();
    assert_eq!(conn.inspect("svc").await.unwrap().restart_policy, "no");
    assert_eq!(e.inspect("svc", "{{.HostConfig.RestartPolicy.Name}}"), "no");

    conn.stop_container("svc", Some(Duration::from_secs(2))).await.unwrap();
    assert_eq!(conn.inspect("svc").await.unwrap().state.as_str(), "exited");
    conn.stop_container("svc", Some(Duration::from_secs(1))).await.unwrap(); // already stopped: ok
    conn.start_container("svc").await.unwrap();
    assert_eq!(conn.inspect("svc").await.unwrap().state.as_str(), "running");
    assert!(conn.memory_usage("svc").await.unwrap().unwrap() > 0);

    let missing = conn.inspect("nope").await.unwrap_err();
    assert!(
        matches!(missing, hostmedic::docker::DockerError::NotFound(_)),
        "{missing}"
    );
    assert!(conn.set_restart_policy("svc", "sometimes", None).await.is_err());
}
