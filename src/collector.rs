//! The collector contract and the scrape runner that drives every collector.
//!
//! One scrape = all enabled collectors run concurrently, each in its own task
//! under its own timeout, each filling a fresh [`MetricSet`]. A collector that
//! fails, panics or hangs costs only its own metrics: the runner still answers
//! with `hostmedic_scrape_collector_success{collector} 0`.
//!
//! A reload hands the runner a new set ([`Runner::reload`]): a collector
//! whose configuration is unchanged keeps running (its caches, offsets and
//! background task), a changed one is replaced and the old one's background
//! task is cancelled. The set is swapped whole (`arc-swap`), so each scrape
//! runs entirely on the old set or entirely on the new.
//!
//! Also `[global]` ([`GlobalConfig`]): the roots and limits every collector
//! shares, here so collectors need not import `config`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::metrics::MetricSet;

/// Why a collection did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The source does not exist on this host (no Docker socket, no bus…).
    /// Reported as `hostmedic_collector_source_present 0`, not as a failure
    /// worth a page.
    #[error("source unavailable: {0}")]
    Unavailable(String),
    /// The source exists but reading it failed.
    #[error("{0}")]
    Failed(String),
}

impl CollectError {
    pub fn failed(err: impl std::fmt::Display) -> Self {
        CollectError::Failed(err.to_string())
    }
}

/// One source of metrics. Implementations live in `crate::collectors`, one
/// file each.
#[async_trait]
pub trait Collector: Send + Sync + 'static {
    /// Short stable name, used as the `collector` label.
    fn name(&self) -> &'static str;

    /// Writes this scrape's metrics into `out`. Must not block the runtime:
    /// blocking file-system work goes through `tokio::task::spawn_blocking`.
    async fn collect(&self, out: &mut MetricSet) -> Result<(), CollectError>;

    /// Long-running background work (periodic scans, probes, log following).
    /// Spawned once by `serve`; must return when `shutdown` is cancelled.
    /// Collectors that read everything at scrape time keep the default.
    async fn background(self: Arc<Self>, shutdown: CancellationToken) {
        let _ = shutdown;
    }
}

/// Runs `read` on the blocking pool into a fresh set and merges that set
/// into `out`: for collectors whose reads block (procfs files, `sysinfo`).
/// A panic in `read` is reported as a failure.
pub async fn collect_blocking<F>(out: &mut MetricSet, read: F) -> Result<(), CollectError>
where
    F: FnOnce(&mut MetricSet) -> Result<(), CollectError> + Send + 'static,
{
    let set = tokio::task::spawn_blocking(move || {
        let mut set = MetricSet::new();
        read(&mut set).map(|()| set)
    })
    .await
    .map_err(CollectError::failed)??;
    out.extend(set);
    Ok(())
}

/// `[global]`: roots and limits shared by all collectors.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GlobalConfig {
    /// Root of sysfs (hwmon, thermal zones). Point it at a fake tree in tests.
    pub sysfs_root: PathBuf,
    /// Root of procfs.
    pub procfs_root: PathBuf,
    /// Per-collector timeout within one scrape.
    #[serde(with = "humantime_serde")]
    pub collector_timeout: Duration,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            sysfs_root: PathBuf::from("/sys"),
            procfs_root: PathBuf::from("/proc"),
            collector_timeout: Duration::from_secs(5),
        }
    }
}

/// Last outcome of one collector, shown on the landing page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CollectorStatus {
    pub success: bool,
    pub source_present: bool,
    pub duration_seconds: f64,
    pub error: Option<String>,
    #[serde(with = "humantime_serde")]
    pub at: SystemTime,
}

/// A collector as built from the configuration, with a fingerprint of the
/// configuration it was built from: equal fingerprints mean a reload has
/// nothing to change for it.
pub struct Built {
    pub collector: Arc<dyn Collector>,
    pub fingerprint: String,
}

/// One running collector and the token that stops its background task.
struct Running {
    collector: Arc<dyn Collector>,
    fingerprint: String,
    stop: CancellationToken,
}

/// What one scrape runs: the collectors and their timeout.
struct Set {
    running: Vec<Running>,
    timeout: Duration,
}

/// Runs the configured collectors for each scrape.
pub struct Runner {
    set: ArcSwap<Set>,
    /// Parent of every collector's stop token; cancelled at shutdown.
    root: CancellationToken,
    /// Whether background tasks run (set by [`Runner::spawn_background`]):
    /// a collector swapped in later starts its own at once.
    background: AtomicBool,
    status: Mutex<BTreeMap<&'static str, CollectorStatus>>,
}

/// What [`Runner::reload`] did, by collector name.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    pub kept: Vec<&'static str>,
    pub rebuilt: Vec<&'static str>,
    pub stopped: Vec<&'static str>,
}

const DURATION: &str = "hostmedic_scrape_collector_duration_seconds";
const SUCCESS: &str = "hostmedic_scrape_collector_success";
const PRESENT: &str = "hostmedic_collector_source_present";

impl Runner {
    pub fn new(collectors: Vec<Arc<dyn Collector>>, timeout: Duration) -> Self {
        let built = collectors
            .into_iter()
            .map(|collector| Built {
                collector,
                fingerprint: String::new(),
            })
            .collect();
        Runner::from_built(built, timeout)
    }

    /// A runner for collectors built from the configuration.
    pub fn from_built(built: Vec<Built>, timeout: Duration) -> Self {
        let root = CancellationToken::new();
        let running = built.into_iter().map(|b| Running::new(b, &root)).collect();
        Runner {
            set: ArcSwap::from_pointee(Set { running, timeout }),
            root,
            background: AtomicBool::new(false),
            status: Mutex::new(BTreeMap::new()),
        }
    }

    /// The collectors running now, in scrape order.
    pub fn collectors(&self) -> Vec<Arc<dyn Collector>> {
        self.set.load().running.iter().map(|r| r.collector.clone()).collect()
    }

    /// Starts every collector's background task; all stop when `shutdown`
    /// is cancelled.
    pub fn spawn_background(&self, shutdown: &CancellationToken) {
        let (root, shutdown) = (self.root.clone(), shutdown.clone());
        tokio::spawn(async move {
            shutdown.cancelled().await;
            root.cancel();
        });
        self.background.store(true, Ordering::SeqCst);
        for r in &self.set.load().running {
            r.start();
        }
    }

    /// Swaps in the collectors of a reloaded configuration. One whose name
    /// and fingerprint match a running collector is dropped unstarted and
    /// the running one kept, with its state; the others replace what ran
    /// (whose background task is cancelled) and start theirs.
    pub fn reload(&self, built: Vec<Built>, timeout: Duration) -> Reloaded {
        let old = self.set.load_full();
        let mut done = Reloaded::default();
        let mut running = Vec::with_capacity(built.len());
        for b in built {
            let name = b.collector.name();
            match old
                .running
                .iter()
                .find(|r| r.collector.name() == name && r.fingerprint == b.fingerprint)
            {
                Some(same) => {
                    done.kept.push(name);
                    running.push(Running {
                        collector: same.collector.clone(),
                        fingerprint: same.fingerprint.clone(),
                        stop: same.stop.clone(),
                    });
                }
                None => {
                    done.rebuilt.push(name);
                    running.push(Running::new(b, &self.root));
                }
            }
        }
        self.set.store(Arc::new(Set { running, timeout }));
        let started = self.background.load(Ordering::SeqCst);
        for r in &self.set.load().running {
            if started && done.rebuilt.contains(&r.collector.name()) {
                r.start();
            }
        }
        for r in &old.running {
            if !done.kept.contains(&r.collector.name()) {
                r.stop.cancel();
                if !done.rebuilt.contains(&r.collector.name()) {
                    done.stopped.push(r.collector.name());
                }
            }
        }
        let names: Vec<_> = done.kept.iter().chain(&done.rebuilt).copied().collect();
        self.status
            .lock()
            .expect("status lock")
            .retain(|n, _| names.contains(n));
        done
    }

    /// Last status per collector (empty before the first scrape).
    pub fn status(&self) -> BTreeMap<&'static str, CollectorStatus> {
        crate::sync::lock(&self.status).clone()
    }

    /// Runs all collectors concurrently and returns one merged snapshot with
    /// the per-collector duration/success series appended.
    pub async fn gather(&self) -> MetricSet {
        let set = self.set.load_full();
        let tasks: Vec<_> = set.running.iter().map(|r| spawn_collect(r, set.timeout)).collect();

        let mut out = MetricSet::new();
        declare_runner_series(&mut out);
        let mut results = Vec::with_capacity(tasks.len());
        for (name, handle) in tasks {
            results.push((name, join_collect(handle, set.timeout).await));
        }

        let mut status = crate::sync::lock(&self.status);
        for (name, (set, res, took)) in results {
            let (ok, present) = note_status(&mut status, name, &res, took);
            if let Some(set) = set {
                out.extend(set);
            }
            let l = [("collector", name)];
            out.gauge(DURATION, "", &l, took.as_secs_f64());
            out.gauge(SUCCESS, "", &l, if ok { 1.0 } else { 0.0 });
            out.gauge(PRESENT, "", &l, if present { 1.0 } else { 0.0 });
        }
        out
    }
}

/// What one collector's task hands back: its series, its result (timeout
/// included) and how long it took.
type Collected = (
    MetricSet,
    Result<Result<(), CollectError>, tokio::time::error::Elapsed>,
    Duration,
);

/// Starts `r`'s collection in its own task under `timeout`.
fn spawn_collect(r: &Running, timeout: Duration) -> (&'static str, tokio::task::JoinHandle<Collected>) {
    let c = r.collector.clone();
    let name = c.name();
    let handle = tokio::spawn(async move {
        let start = Instant::now();
        let mut set = MetricSet::new();
        let res = tokio::time::timeout(timeout, c.collect(&mut set)).await;
        (set, res, start.elapsed())
    });
    (name, handle)
}

/// Waits for one collection: its series only when it succeeded, a timeout
/// or panic turned into a failure.
async fn join_collect(
    handle: tokio::task::JoinHandle<Collected>,
    timeout: Duration,
) -> (Option<MetricSet>, Result<(), CollectError>, Duration) {
    match handle.await {
        Ok((set, Ok(Ok(())), took)) => (Some(set), Ok(()), took),
        Ok((_, Ok(Err(e)), took)) => (None, Err(e), took),
        Ok((_, Err(_elapsed), took)) => (
            None,
            Err(CollectError::Failed(format!("timed out after {timeout:?}"))),
            took,
        ),
        Err(join) => (
            None,
            Err(CollectError::Failed(format!("collector panicked: {join}"))),
            Duration::ZERO,
        ),
    }
}

/// The runner's own per-collector series, declared before any collector's.
fn declare_runner_series(out: &mut MetricSet) {
    out.declare(
        DURATION,
        "Duration of a collector's collection.",
        crate::metrics::Kind::Gauge,
    );
    out.declare(
        SUCCESS,
        "Whether a collector succeeded (1) or failed, timed out or found no source (0).",
        crate::metrics::Kind::Gauge,
    );
    out.declare(
        PRESENT,
        "Whether the collector's source exists on this host (0: absent, for example no Docker socket).",
        crate::metrics::Kind::Gauge,
    );
}

/// Records `name`'s outcome, logging once per change of state, not once
/// per scrape; returns whether it succeeded and whether its source is present.
fn note_status(
    status: &mut BTreeMap<&'static str, CollectorStatus>,
    name: &'static str,
    res: &Result<(), CollectError>,
    took: Duration,
) -> (bool, bool) {
    let ok = res.is_ok();
    let present = !matches!(res, Err(CollectError::Unavailable(_)));
    let prev = status.get(name);
    let changed = prev.is_none_or(|p| p.success != ok || p.source_present != present);
    if changed {
        match res {
            Ok(()) if prev.is_some() => tracing::info!(collector = name, "collector recovered"),
            Ok(()) => {}
            Err(CollectError::Unavailable(why)) => {
                tracing::info!(collector = name, reason = %why, "source not present on this host")
            }
            Err(e) => tracing::warn!(collector = name, error = %e, "collector failed"),
        }
    }
    status.insert(
        name,
        CollectorStatus {
            success: ok,
            source_present: present,
            duration_seconds: took.as_secs_f64(),
            error: res.as_ref().err().map(|e| e.to_string()),
            at: SystemTime::now(),
        },
    );
    (ok, present)
}

impl Running {
    fn new(b: Built, root: &CancellationToken) -> Running {
        Running {
            collector: b.collector,
            fingerprint: b.fingerprint,
            stop: root.child_token(),
        }
    }

    fn start(&self) {
        tokio::spawn(self.collector.clone().background(self.stop.clone()));
    }
}

/// The background loop of a collector that measures on an interval: runs `scan`
/// on the blocking pool, waits `interval`, and again, until `shutdown`. A scan
/// that panics is logged under `collector` and the next one runs as planned;
/// shutdown does not wait for a scan in flight.
pub async fn scan_every<F>(collector: &'static str, interval: Duration, shutdown: CancellationToken, scan: F)
where
    F: Fn() + Clone + Send + 'static,
{
    spawn_every(collector, interval, shutdown, move || {
        tokio::task::spawn_blocking(scan.clone())
    })
    .await;
}

/// [`scan_every`] for a scan that starts its own task (an async one, with
/// `tokio::spawn`): `start` is called once per interval and its task awaited.
pub async fn spawn_every<F>(collector: &'static str, interval: Duration, shutdown: CancellationToken, start: F)
where
    F: Fn() -> tokio::task::JoinHandle<()> + Send + 'static,
{
    loop {
        let task = start();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            res = task => if let Err(e) = res {
                tracing::error!(collector, error = %e, "{collector}: scan task failed");
            },
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str, Result<f64, &'static str>, Duration);

    #[async_trait]
    impl Collector for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        async fn collect(&self, out: &mut MetricSet) -> Result<(), CollectError> {
            tokio::time::sleep(self.2).await;
            match self.1 {
                Ok(v) => {
                    out.gauge("t_value", "v", &[("c", self.0)], v);
                    Ok(())
                }
                Err("absent") => Err(CollectError::Unavailable("nothing here".into())),
                Err(e) => Err(CollectError::Failed(e.into())),
            }
        }
    }

    struct Panics;
    #[async_trait]
    impl Collector for Panics {
        fn name(&self) -> &'static str {
            "panics"
        }
        async fn collect(&self, _out: &mut MetricSet) -> Result<(), CollectError> {
            panic!("boom")
        }
    }

    #[tokio::test]
    async fn one_bad_collector_never_fails_the_scrape() {
        let runner = Runner::new(
            vec![
                Arc::new(Fixed("good", Ok(7.0), Duration::ZERO)),
                Arc::new(Fixed("bad", Err("broken"), Duration::ZERO)),
                Arc::new(Fixed("absent", Err("absent"), Duration::ZERO)),
                Arc::new(Fixed("hung", Ok(1.0), Duration::from_secs(3600))),
                Arc::new(Panics),
            ],
            Duration::from_millis(200),
        );
        let start = Instant::now();
        let set = runner.gather().await;
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(set.value("t_value", &[("c", "good")]), Some(7.0));
        assert_eq!(set.value("t_value", &[("c", "hung")]), None);
        for (name, ok) in [
            ("good", 1.0),
            ("bad", 0.0),
            ("absent", 0.0),
            ("hung", 0.0),
            ("panics", 0.0),
        ] {
            assert_eq!(set.value(SUCCESS, &[("collector", name)]), Some(ok), "{name}");
        }
        assert_eq!(set.value(PRESENT, &[("collector", "absent")]), Some(0.0));
        assert_eq!(set.value(PRESENT, &[("collector", "bad")]), Some(1.0));
        let st = runner.status();
        assert!(st["hung"].error.as_deref().unwrap().contains("timed out"));
        assert!(st["panics"].error.as_deref().unwrap().contains("panicked"));
    }

    #[tokio::test]
    async fn scan_every_survives_a_panicking_scan_and_stops_on_shutdown() {
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let counted = runs.clone();
        let looping = tokio::spawn(scan_every(
            "test",
            Duration::from_millis(1),
            shutdown.clone(),
            move || {
                if counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    panic!("first scan fails");
                }
            },
        ));
        let third_scan = async {
            while runs.load(std::sync::atomic::Ordering::SeqCst) < 3 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        // A guard against hanging, not a timing claim: after a panic the loop must go on.
        tokio::time::timeout(Duration::from_secs(60), third_scan)
            .await
            .expect("scans go on after one panicked");
        shutdown.cancel();
        looping.await.expect("the loop itself never panics");
    }
}
