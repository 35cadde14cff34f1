//! The processes collector against real processes on this host: a busy-loop
//! child in the top-K with rising CPU seconds, and watches counting real
//! spawned processes (0, 1, 3) by comm and by cmdline.

use crate::common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::eventually;
use common::procs::{Spawned, alias, nonce};
use hostmedic::collector::{CollectError, Collector};
use hostmedic::collectors::processes::{Config, ProcessesCollector, Watch, start_time_seconds};
use hostmedic::metrics::{MetricSet, Value};
use tokio_util::sync::CancellationToken;

async fn scrape(c: &ProcessesCollector) -> MetricSet {
    let mut m = MetricSet::new();
    c.collect(&mut m).await.expect("processes collect");
    m
}

/// Labels of the top-K sample whose `pid` label is `pid`, with its value.
fn top_sample(m: &MetricSet, family: &str, pid: i32) -> Option<(Vec<(String, String)>, f64)> {
    let pid = pid.to_string();
    m.get(family)?.samples.iter().find_map(|s| {
        let hit = s.labels.iter().any(|(k, v)| k == "pid" && *v == pid);
        match (&s.value, hit) {
            (Value::Number(v), true) => Some((s.labels.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(), *v)),
            _ => None,
        }
    })
}

fn label<'a>(labels: &'a [(String, String)], key: &str) -> &'a str {
    labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn busy_loop_child_is_in_top_k_with_rising_cpu_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("hmbusy{}", nonce());
    let sh = alias(dir.path(), &name, "/bin/sh");
    let busy = Spawned::new(&sh, &["-c", "while :; do :; done"]);

    // The machine is shared with compilers and other tests, so K is generous:
    // the point is that a process burning CPU is listed, with a real ratio.
    let cfg = Config {
        top_k: 20,
        sample_interval: Duration::from_millis(500),
        cmdline_label: true,
        ..Config::default()
    };
    let c = Arc::new(ProcessesCollector::new(&cfg, Path::new("/proc"), Path::new("/etc/passwd")).unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(c.clone().background(stop.clone()));

    let (labels, ratio) = eventually(Duration::from_secs(30), "busy loop in the top-K", || {
        let c = c.clone();
        let pid = busy.pid();
        async move {
            let m = scrape(&c).await;
            top_sample(&m, "hostmedic_process_top_cpu_usage_ratio", pid).filter(|(_, r)| *r > 0.05)
        }
    })
    .await;
    assert!(ratio <= 2.0, "one single-threaded loop uses at most ~1 CPU: {ratio}");
    assert_eq!(label(&labels, "comm"), name);
    assert_eq!(
        label(&labels, "cmdline"),
        format!("{} -c while :; do :; done", sh.display())
    );
    let me = nix::unistd::User::from_uid(nix::unistd::geteuid()).unwrap().unwrap();
    assert_eq!(label(&labels, "user"), me.name);

    let m = scrape(&c).await;
    let (_, cpu1) = top_sample(&m, "hostmedic_process_top_cpu_seconds", busy.pid()).expect("cpu seconds");
    let (_, start) = top_sample(&m, "hostmedic_process_top_start_time_seconds", busy.pid()).expect("start time");
    // Exactly what the kill action will compare against.
    assert_eq!(start, start_time_seconds(Path::new("/proc"), busy.pid()).unwrap());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(start <= now + 1.0 && start > now - 120.0, "start {start} now {now}");

    let cpu2 = eventually(Duration::from_secs(30), "cpu seconds to rise", || {
        let c = c.clone();
        let pid = busy.pid();
        async move {
            let m = scrape(&c).await;
            top_sample(&m, "hostmedic_process_top_cpu_seconds", pid)
                .map(|(_, v)| v)
                .filter(|v| *v >= cpu1 + 0.2)
        }
    })
    .await;
    assert!(cpu2 > cpu1);

    // Bounded cardinality: never more than K processes.
    let fam = m.get("hostmedic_process_top_cpu_usage_ratio").unwrap();
    assert!(fam.samples.len() <= 20);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn default_top_k_is_five() {
    let c = ProcessesCollector::new(&Config::default(), Path::new("/proc"), Path::new("/etc/passwd")).unwrap();
    let m = scrape(&c).await; // no background sampler: the scrape takes its own window
    let n = m.get("hostmedic_process_top_cpu_seconds").unwrap().samples.len();
    assert_eq!(n, 5);
}

fn watch(name: &str, comm: Option<String>, cmdline: Option<String>, min: Option<u64>, max: Option<u64>) -> Watch {
    Watch {
        name: name.into(),
        comm,
        cmdline,
        min,
        max,
    }
}

async fn watch_value(c: &ProcessesCollector, family: &str, w: &str) -> Option<f64> {
    scrape(c).await.value(family, &[("watch", w)])
}

async fn wait_count(c: &Arc<ProcessesCollector>, w: &'static str, want: f64) {
    eventually(Duration::from_secs(10), &format!("watch {w} count {want}"), || {
        let c = c.clone();
        async move {
            let v = watch_value(&c, "hostmedic_process_watch_processes", w).await?;
            (v == want).then_some(())
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn watches_count_real_processes_zero_one_three() {
    let dir = tempfile::tempdir().unwrap();
    let n = nonce();
    let comm_name = format!("hmsl{n}");
    let sleep_alias = alias(dir.path(), &comm_name, "/bin/sleep");
    // A unique argument: sleep accepts a fractional number of seconds.
    let arg = format!("3600.{n}");
    let cfg = Config {
        top_k: 0,
        watch: vec![
            watch("by_comm", Some(format!("^{comm_name}$")), None, Some(1), Some(2)),
            watch(
                "by_cmdline",
                None,
                Some(format!("^sleep {}$", regex_escape(&arg))),
                None,
                None,
            ),
            watch("both", Some("^sleep$".into()), Some(regex_escape(&arg)), None, Some(0)),
        ],
        ..Config::default()
    };
    cfg.validate("processes").unwrap();
    let c = Arc::new(ProcessesCollector::new(&cfg, Path::new("/proc"), Path::new("/etc/passwd")).unwrap());

    // Zero matches still report 0 (and no oldest start time).
    let m = scrape(&c).await;
    for w in ["by_comm", "by_cmdline", "both"] {
        assert_eq!(
            m.value("hostmedic_process_watch_processes", &[("watch", w)]),
            Some(0.0),
            "{w}"
        );
        assert_eq!(
            m.value("hostmedic_process_watch_cpu_seconds", &[("watch", w)]),
            Some(0.0)
        );
        assert_eq!(
            m.value("hostmedic_process_watch_resident_memory_bytes", &[("watch", w)]),
            Some(0.0)
        );
        assert_eq!(
            m.value("hostmedic_process_watch_oldest_start_time_seconds", &[("watch", w)]),
            None
        );
    }
    assert_eq!(
        m.value("hostmedic_process_watch_min", &[("watch", "by_comm")]),
        Some(1.0)
    );
    assert_eq!(
        m.value("hostmedic_process_watch_max", &[("watch", "by_comm")]),
        Some(2.0)
    );
    assert_eq!(m.value("hostmedic_process_watch_min", &[("watch", "by_cmdline")]), None);
    assert_eq!(m.value("hostmedic_process_watch_max", &[("watch", "both")]), Some(0.0));

    // One of each.
    let first_alias = Spawned::new(&sleep_alias, &["3600"]);
    let first_sleep = Spawned::new("sleep", &[&arg]);
    wait_count(&c, "by_comm", 1.0).await;
    wait_count(&c, "by_cmdline", 1.0).await;
    wait_count(&c, "both", 1.0).await;
    let oldest = watch_value(&c, "hostmedic_process_watch_oldest_start_time_seconds", "by_comm")
        .await
        .unwrap();
    assert_eq!(
        oldest,
        start_time_seconds(Path::new("/proc"), first_alias.pid()).unwrap()
    );
    let rss = watch_value(&c, "hostmedic_process_watch_resident_memory_bytes", "by_cmdline")
        .await
        .unwrap();
    assert!(rss > 0.0, "a running sleep has resident pages");

    // Three of each; the oldest stays the first one.
    std::thread::sleep(Duration::from_millis(20));
    let more: Vec<Spawned> = (0..2)
        .flat_map(|_| [Spawned::new(&sleep_alias, &["3600"]), Spawned::new("sleep", &[&arg])])
        .collect();
    wait_count(&c, "by_comm", 3.0).await;
    wait_count(&c, "by_cmdline", 3.0).await;
    wait_count(&c, "both", 3.0).await;
    let oldest3 = watch_value(&c, "hostmedic_process_watch_oldest_start_time_seconds", "by_comm")
        .await
        .unwrap();
    assert_eq!(oldest3, oldest);
    let rss3 = watch_value(&c, "hostmedic_process_watch_resident_memory_bytes", "by_cmdline")
        .await
        .unwrap();
    assert!(rss3 > rss, "three sleeps hold more memory than one: {rss3} vs {rss}");

    // All gone: back to 0.
    drop(more);
    drop(first_alias);
    drop(first_sleep);
    wait_count(&c, "by_comm", 0.0).await;
    wait_count(&c, "by_cmdline", 0.0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_cpu_seconds_is_a_counter_across_exits() {
    let n = nonce();
    let marker = format!("hmcpu{n}");
    let cfg = Config {
        top_k: 0,
        sample_interval: Duration::from_millis(200),
        watch: vec![watch("burn", None, Some(regex_escape(&marker)), None, None)],
        ..Config::default()
    };
    let c = Arc::new(ProcessesCollector::new(&cfg, Path::new("/proc"), Path::new("/etc/passwd")).unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(c.clone().background(stop.clone()));
    // Burns CPU for a bounded amount of work, then exits by itself.
    let script = format!("i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done # {marker}");
    let mut burner = Spawned::new("/bin/sh", &["-c", &script]);
    let during = eventually(Duration::from_secs(30), "burner to use CPU", || {
        let c = c.clone();
        async move {
            watch_value(&c, "hostmedic_process_watch_cpu_seconds", "burn")
                .await
                .filter(|v| *v > 0.0)
        }
    })
    .await;
    let status = tokio::task::spawn_blocking(move || {
        let st = burner.0.wait().unwrap();
        (st, burner)
    })
    .await
    .unwrap()
    .0;
    assert!(status.success());
    wait_count(&c, "burn", 0.0).await;
    let after = watch_value(&c, "hostmedic_process_watch_cpu_seconds", "burn")
        .await
        .unwrap();
    assert!(
        after >= during,
        "counter went down after the process exited: {after} < {during}"
    );
    stop.cancel();
}

#[tokio::test]
async fn missing_procfs_is_reported_as_absent() {
    let empty = tempfile::tempdir().unwrap();
    let c = ProcessesCollector::new(&Config::default(), &empty.path().join("nope"), Path::new("/etc/passwd")).unwrap();
    let err = c.collect(&mut MetricSet::new()).await.unwrap_err();
    assert!(matches!(err, CollectError::Unavailable(_)), "{err}");
}

fn regex_escape(s: &str) -> String {
    regex::escape(s)
}
