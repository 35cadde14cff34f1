//! Docker's disk use named, against a real, private engine (see
//! tests/support/src/docker.rs): images built with BuildKit (build cache), a
//! dangling image, a stopped container's writable layer, volumes, and a
//! chatty container whose json-file log grows. The collector's
//! `hostmedic_docker_disk_*` series must equal what `docker system df`
//! reports (to its 4 printed digits) and the log series the file's size.

use crate::common;

use std::time::Duration;

use common::docker::{BUSYBOX_IMAGE, PrivateEngine};
use common::*;
use hostmedic::collector::Collector;
use hostmedic::collectors::docker::{Config, DockerCollector};
use hostmedic::metrics::MetricSet;

/// A size as the docker CLI prints it (`units.HumanSize`: decimal, 4
/// significant digits), in bytes.
fn human_bytes(s: &str) -> f64 {
    let s = s.split_whitespace().next().unwrap_or(s);
    let at = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (n, unit) = s.split_at(at);
    let scale = match unit {
        "B" | "" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        other => panic!("unknown size unit {other:?} in {s:?}"),
    };
    n.parse::<f64>().unwrap_or_else(|_| panic!("size {s:?}")) * scale
}

/// `docker system df`'s (size, reclaimable) per kind label.
fn cli_df(e: &PrivateEngine) -> Vec<(&'static str, f64, f64)> {
    let out = e.docker(&["system", "df", "--format", "{{.Type}}\t{{.Size}}\t{{.Reclaimable}}"]);
    out.lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let kind = match f[0] {
                "Images" => "images",
                "Containers" => "containers",
                "Local Volumes" => "volumes",
                "Build Cache" => "build_cache",
                other => panic!("unknown docker system df type {other:?}"),
            };
            (kind, human_bytes(f[1]), human_bytes(f[2]))
        })
        .collect()
}

/// Equal to what the CLI printed, to its 4 significant digits.
fn same_as_printed(ours: f64, printed: f64, what: &str) {
    assert!(
        (ours - printed).abs() <= printed * 6e-4 + 1.0,
        "{what}: hostmedic says {ours}, docker system df {printed}"
    );
}

fn collector(e: &PrivateEngine) -> DockerCollector {
    let cfg = Config {
        host: e.docker_host(),
        timeout: Duration::from_secs(5),
        ..Config::default()
    };
    DockerCollector::new(&cfg, &Default::default()).unwrap()
}

async fn scrape(c: &DockerCollector) -> MetricSet {
    let mut m = MetricSet::new();
    c.collect(&mut m).await.expect("docker collect");
    m
}

const BLOB: usize = 3_000_000;

/// `app:1` built twice (the first build left dangling, two build cache
/// records), a stopped container with 200 kB in its writable layer, volume
/// `kept` (1 MB, unused) and `mounted` (used by the running `sleeper`).
pub fn disk_world(e: &PrivateEngine) {
    e.build_blob_image("hostmedic-test/app:1", BLOB, 1);
    e.build_blob_image("hostmedic-test/app:1", BLOB, 2);
    e.docker(&["volume", "create", "kept"]);
    e.docker(&["volume", "create", "mounted"]);
    e.docker(&[
        "run",
        "--rm",
        "-v",
        "kept:/d",
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        "head -c 1000000 /dev/urandom > /d/f",
    ]);
    e.docker(&[
        "run",
        "--name",
        "stopped",
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        "head -c 200000 /dev/urandom > /junk",
    ]);
    e.run_detached(&["--name", "sleeper", "-v", "mounted:/m", BUSYBOX_IMAGE, "sleep", "3600"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn disk_usage_matches_docker_system_df() {
    let Some(e) = PrivateEngine::start_or_skip() else {
        return;
    };
    disk_world(&e);
    let c = collector(&e);
    let before = scrape(&c).await;
    assert_eq!(
        before.value("hostmedic_docker_disk_usage_last_scan_timestamp_seconds", &[]),
        None,
        "nothing before the first background scan"
    );
    let report = c.scan_disk_usage().await.expect("/system/df");
    let m = scrape(&c).await;
    let cli = cli_df(&e);
    assert_eq!(cli.len(), 4, "{cli:?}");
    for (kind, size, reclaimable) in &cli {
        let ours = m.value("hostmedic_docker_disk_usage_bytes", &[("kind", kind)]).unwrap();
        let ours_r = m
            .value("hostmedic_docker_disk_reclaimable_bytes", &[("kind", kind)])
            .unwrap();
        eprintln!("{kind}: {ours} bytes ({size} printed), reclaimable {ours_r} ({reclaimable} printed)");
        same_as_printed(ours, *size, kind);
        same_as_printed(ours_r, *reclaimable, &format!("{kind} reclaimable"));
    }
    let v = |family: &str, kind: &str| m.value(family, &[("kind", kind)]).unwrap();
    // What was made: the dangling build's blob is reclaimable, both builds are cached.
    assert!(v("hostmedic_docker_disk_reclaimable_bytes", "images") >= BLOB as f64);
    assert!(v("hostmedic_docker_disk_usage_bytes", "build_cache") >= 2.0 * BLOB as f64);
    assert!(v("hostmedic_docker_disk_reclaimable_bytes", "volumes") >= 1e6);
    assert!(v("hostmedic_docker_disk_reclaimable_bytes", "containers") >= 2e5);
    let at = m
        .value("hostmedic_docker_disk_usage_last_scan_timestamp_seconds", &[])
        .unwrap();
    assert_eq!(at, report.at as f64);
    let dangling: Vec<_> = report.usage.images.iter().filter(|i| i.dangling()).collect();
    assert_eq!(dangling.len(), 1, "{:?}", report.usage.images);
}

/// The background task reads `/system/df` on its own every `df_interval`.
#[tokio::test(flavor = "multi_thread")]
async fn disk_usage_is_read_in_the_background() {
    let Some(e) = PrivateEngine::start_or_skip() else {
        return;
    };
    let cfg = Config {
        host: e.docker_host(),
        df_interval: Duration::from_secs(10),
        ..Config::default()
    };
    let c = std::sync::Arc::new(DockerCollector::new(&cfg, &Default::default()).unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(c.clone().background(stop.clone()));
    eventually(Duration::from_secs(30), "a background /system/df", || async {
        let m = scrape(&c).await;
        m.value("hostmedic_docker_disk_usage_bytes", &[("kind", "images")])
            .filter(|b| *b > 0.0)
    })
    .await;
    stop.cancel();
    task.await.unwrap();
}

/// Writes 4000 lines, waits for /more, writes 4000 more: the log series
/// follows the json-file log's size.
#[tokio::test(flavor = "multi_thread")]
async fn container_log_size_follows_the_log_file() {
    let Some(e) = PrivateEngine::start_or_skip() else {
        return;
    };
    e.run_detached(&[
        "--name",
        "chatty",
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        "burst() { i=0; while [ $i -lt 4000 ]; do echo \"line $i of a chatty container\"; i=$((i+1)); done; }; \
         burst; while [ ! -f /more ]; do sleep 0.2; done; burst; exec sleep 3600",
    ]);
    let c = collector(&e);
    let path = e.inspect("chatty", "{{.LogPath}}");
    let file_size = || std::fs::metadata(&path).map(|m| m.len() as f64).unwrap_or(0.0);
    let log = |m: &MetricSet| m.value("hostmedic_docker_container_log_bytes", &[("container", "chatty")]);
    // The first burst is in the file once its size stops changing.
    let first = eventually(Duration::from_secs(60), "first burst logged", || async {
        let a = file_size();
        tokio::time::sleep(Duration::from_millis(500)).await;
        (a > 4000.0 * 40.0 && a == file_size()).then_some(a)
    })
    .await;
    assert_eq!(log(&scrape(&c).await), Some(first));
    e.docker(&["exec", "chatty", "touch", "/more"]);
    let second = eventually(Duration::from_secs(60), "second burst logged", || async {
        let a = file_size();
        tokio::time::sleep(Duration::from_millis(500)).await;
        (a > first * 1.9 && a == file_size()).then_some(a)
    })
    .await;
    assert_eq!(log(&scrape(&c).await), Some(second));
    eprintln!("chatty's log: {first} then {second} bytes");
}

/// `docker-prune` on [`disk_world`] plus an unlisted unused volume: a dry
/// run changes nothing; the run removes the dangling image, the build
/// cache and the listed unused volume, keeps the listed volume in use, the
/// unlisted one, the stopped container (no `containers = true`) and the
/// running one, and says what it freed; verification sees it.
#[tokio::test(flavor = "multi_thread")]
async fn docker_prune_frees_only_what_it_may() {
    use hostmedic::actions::{ActionEnv, ActionSpec, Alert, Context, DockerPruneAction, OutcomeResult, Verification};
    let Some(e) = PrivateEngine::start_or_skip() else {
        return;
    };
    disk_world(&e);
    e.docker(&["volume", "create", "unlisted"]);
    let spec = ActionSpec::from(DockerPruneAction {
        containers: false,
        volumes: vec!["kept".into(), "mounted".into()],
        timeout: Duration::from_secs(60),
    });
    let c = spec.compile("test.action", &Context::default()).expect("valid spec");
    let env = |dry_run| ActionEnv {
        docker_host: Some(e.docker_host()),
        dry_run,
        ..ActionEnv::default()
    };
    let dangling = || e.docker(&["image", "ls", "-q", "--filter", "dangling=true"]);
    let volumes = || e.docker(&["volume", "ls", "-q"]);
    assert_eq!(dangling().lines().count(), 1);

    let t = c.resolve(&Alert::default()).unwrap();
    let o = t.run(&Alert::default(), &env(true)).await;
    eprintln!("dry run: {}", o.detail);
    assert_eq!(o.result, OutcomeResult::DryRun, "{}", o.detail);
    assert!(o.detail.contains("dangling images 1 (2.8MiB)"), "{}", o.detail);
    assert!(
        o.detail.contains("would prune (") && o.detail.contains("build cache records "),
        "{}",
        o.detail
    );
    assert!(o.detail.contains("volume kept (976.5KiB)"), "{}", o.detail);
    assert!(
        o.detail.contains("volume mounted kept: used by 1 container(s)"),
        "{}",
        o.detail
    );
    assert_eq!(dangling().lines().count(), 1, "a dry run removes nothing");
    assert!(volumes().lines().any(|v| v == "kept"));

    let t = c.resolve(&Alert::default()).unwrap();
    let o = t.run(&Alert::default(), &env(false)).await;
    eprintln!("run: {}", o.detail);
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    // One image removed; its layer may be freed by the build cache prune
    // that follows (BuildKit's cache holds it too), so no size here.
    assert!(o.detail.contains(" (1), build cache "), "{}", o.detail);
    assert!(o.detail.contains("volume kept 976.5KiB"), "{}", o.detail);
    assert!(o.detail.contains("volume mounted kept (in use)"), "{}", o.detail);
    assert!(o.detail.contains("filesystem free "), "{}", o.detail);
    assert_eq!(
        t.verify(&env(false), Duration::from_secs(5)).await,
        Verification::Verified
    );

    assert_eq!(dangling(), "", "the dangling image is gone");
    let cli = cli_df(&e);
    let cache = cli.iter().find(|k| k.0 == "build_cache").unwrap();
    assert_eq!((cache.1, cache.2), (0.0, 0.0), "the build cache is gone: {cli:?}");
    let left: Vec<String> = volumes().lines().map(str::to_string).collect();
    assert!(!left.contains(&"kept".to_string()), "{left:?}");
    assert!(
        left.contains(&"mounted".to_string()) && left.contains(&"unlisted".to_string()),
        "{left:?}"
    );
    assert_eq!(e.inspect("stopped", "{{.State.Status}}"), "exited");
    assert_eq!(e.inspect("sleeper", "{{.State.Status}}"), "running");
    assert_eq!(
        e.docker(&["image", "ls", "-q", "hostmedic-test/app:1"]).lines().count(),
        1
    );
}
