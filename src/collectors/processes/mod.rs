//! `processes` collector: the top-K processes by recent CPU use, and process
//! watches (count, CPU, oldest start, memory of the processes matching a regex).
//!
//! It reads `<procfs_root>/<pid>/{stat,cmdline,status}` through
//! [`crate::procfs`] instead of using sysinfo: sysinfo's `/proc` path is fixed
//! (no configurable root, so no container's or test's procfs), and it rounds
//! start times to whole seconds, while the runaway-process kill action must
//! identify a process exactly by pid + start time ([`start_time_seconds`],
//! re-exported from the leaf, is the one derivation of it).
//!
//! Files: `config.rs` (the section and its check-and-compile step),
//! `watch.rs` (one watch's matching and counter), this file (scan, sampler,
//! scrape).
//!
//! CPU usage ratio: a background task samples every process's CPU ticks every
//! `sample_interval`; a scrape compares the current ticks against the newest
//! sample that is at least one second old, so the ratio is meaningful from
//! the first scrape on (1.0 = one full CPU).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::cgroup::Owner;
use crate::collector::{CollectError, Collector};
use crate::error::ConfigError;
use crate::metrics::MetricSet;
use crate::procfs::{page_size, read_cmdline, read_euid, ticks_to_unix};
use crate::redact::Redactor;
use crate::users::Users;

mod config;
mod watch;

pub use self::config::{Config, MAX_TOP_K, Watch};
// The procfs readers this collector exported before they moved to the leaf.
use self::watch::WatchState;
pub use crate::procfs::{
    ProcError, ProcStat, START_TIME_TOLERANCE_SECONDS, boot_time, clock_ticks_per_second, parse_stat, read_stat,
    same_process, start_time_seconds,
};

/// Most owners listed per watch by `hostmedic_process_watch_owner_processes`
/// (those with the most matching processes): bounds its label sets.
pub const MAX_OWNERS_PER_WATCH: usize = 5;

/// Label form of a command line: secrets redacted (before the cut, so no
/// cut can leave half a secret), control characters replaced, cut to
/// `max_chars` characters with a trailing `…`; kernel threads (empty
/// cmdline) show as `[comm]` like ps.
pub fn cmdline_label(cmdline: &str, comm: &str, max_chars: usize, redactor: &Redactor) -> String {
    if cmdline.is_empty() {
        return format!("[{comm}]");
    }
    shorten_cmdline(&redactor.redact(cmdline), max_chars)
}

/// `cmdline` with control characters replaced, cut to `max_chars`.
fn shorten_cmdline(cmdline: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (n, ch) in cmdline.chars().enumerate() {
        if n + 1 >= max_chars && cmdline.chars().count() > max_chars {
            out.push('…');
            break;
        }
        out.push(if ch.is_control() { ' ' } else { ch });
    }
    out
}

/// One process as seen by one scan.
#[derive(Debug, Clone)]
pub(super) struct Proc {
    pub(super) stat: ProcStat,
    /// Present when some watch matches on cmdline, or for top-K entries.
    pub(super) cmdline: Option<String>,
}

pub(super) type Key = (i32, u64); // (pid, start ticks): unique across pid reuse

/// Lists every process under `procfs`. Processes that exit mid-scan are skipped.
fn scan(procfs: &Path, with_cmdline: bool) -> Result<Vec<Proc>, ProcError> {
    let mut out = Vec::new();
    for pid in crate::procfs::pids(procfs)? {
        let Ok(stat) = read_stat(procfs, pid) else {
            continue;
        };
        let cmdline = with_cmdline.then(|| read_cmdline(procfs, pid));
        out.push(Proc { stat, cmdline });
    }
    Ok(out)
}

/// CPU ticks of every process at one instant (a baseline for the ratio).
struct Sample {
    at: Instant,
    ticks: HashMap<Key, u64>,
}

struct State {
    /// Newest last; at most two.
    samples: VecDeque<Sample>,
    watches: Vec<WatchState>,
}

/// The collector; its state is shared with blocking tasks.
pub struct ProcessesCollector {
    inner: Arc<Inner>,
}

struct Inner {
    procfs: PathBuf,
    /// See `processes.owner_cgroup_root`.
    owner_cgroup_root: String,
    /// Names the users of user managers in the owner labels (the systemd
    /// collector's `systemd.passwd_file`, re-read every scrape).
    passwd_file: PathBuf,
    top_k: usize,
    sample_interval: Duration,
    /// `Some` when `processes.cmdline_label` is on: the label's redaction.
    cmdline_redactor: Option<Redactor>,
    cmdline_max_chars: usize,
    need_cmdline: bool,
    hz: u64,
    page_size: u64,
    state: Mutex<State>,
}

/// A baseline younger than this gives a noisy ratio (ticks are 10 ms).
const MIN_WINDOW: Duration = Duration::from_secs(1);
/// Without any baseline this old, a scrape takes its own over this window.
const FALLBACK_WINDOW: Duration = Duration::from_millis(500);

impl ProcessesCollector {
    /// `passwd_file` names user managers' users in the owner labels; the
    /// `cmdline` label (when on) is redacted by the default patterns.
    pub fn new(cfg: &Config, procfs_root: &Path, passwd_file: &Path) -> Result<Self, ConfigError> {
        Self::with_redactor(cfg, procfs_root, passwd_file, Redactor::default())
    }

    /// Like [`ProcessesCollector::new`], the `cmdline` label redacted by
    /// `redactor` (the defaults plus `receiver.evidence.redact`).
    pub fn with_redactor(
        cfg: &Config,
        procfs_root: &Path,
        passwd_file: &Path,
        redactor: Redactor,
    ) -> Result<Self, ConfigError> {
        Ok(ProcessesCollector {
            inner: Arc::new(Inner::new(cfg, procfs_root, passwd_file, redactor)?),
        })
    }
}

impl Inner {
    fn new(cfg: &Config, procfs_root: &Path, passwd_file: &Path, redactor: Redactor) -> Result<Self, ConfigError> {
        let watches = cfg.build("processes")?.into_iter().map(WatchState::new).collect();
        let hz = clock_ticks_per_second().map_err(|e| ConfigError::invalid("processes", e))?;
        let page_size = page_size().map_err(|e| ConfigError::invalid("processes", e))?;
        Ok(Inner {
            procfs: procfs_root.to_path_buf(),
            owner_cgroup_root: cfg.owner_cgroup_root.clone(),
            passwd_file: passwd_file.to_path_buf(),
            top_k: cfg.top_k,
            sample_interval: cfg.sample_interval,
            cmdline_redactor: cfg.cmdline_label.then_some(redactor),
            cmdline_max_chars: cfg.cmdline_max_chars,
            need_cmdline: cfg.watch.iter().any(|w| w.cmdline.is_some()),
            hz,
            page_size,
            state: Mutex::new(State {
                samples: VecDeque::new(),
                watches,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }

    fn scan(&self) -> Result<Vec<Proc>, CollectError> {
        match scan(&self.procfs, self.need_cmdline) {
            Ok(v) => Ok(v),
            Err(ProcError::Io { path, source }) if source.kind() == std::io::ErrorKind::NotFound => {
                Err(CollectError::Unavailable(format!("no procfs at {}", path.display())))
            }
            Err(e) => Err(CollectError::failed(e)),
        }
    }

    /// One background sample: records ticks as a ratio baseline and folds the
    /// scan into the watch counters (so processes that exit between scrapes
    /// still count).
    fn sample(&self) -> Result<(), CollectError> {
        let procs = self.scan()?;
        let at = Instant::now();
        let ticks = procs
            .iter()
            .map(|p| ((p.stat.pid, p.stat.start_ticks), p.stat.cpu_ticks))
            .collect();
        let mut st = self.lock();
        for w in st.watches.iter_mut() {
            w.update(&procs);
        }
        st.samples.push_back(Sample { at, ticks });
        while st.samples.len() > 2 {
            st.samples.pop_front();
        }
        Ok(())
    }

    /// Whether a baseline at least `FALLBACK_WINDOW` old exists.
    fn has_baseline(&self) -> bool {
        self.lock().samples.iter().any(|s| s.at.elapsed() >= FALLBACK_WINDOW)
    }

    /// One scrape: a fresh scan, ratios against the best baseline, top-K and watches.
    fn read(&self, out: &mut MetricSet) -> Result<(), CollectError> {
        let btime = boot_time(&self.procfs).map_err(|e| match e {
            ProcError::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                CollectError::Unavailable(e.to_string())
            }
            e => CollectError::failed(e),
        })?;
        let procs = self.scan()?;
        let mut st = self.lock();
        let st = &mut *st;
        let ranked = self.rank(&procs, &st.samples);
        // One table per scrape names both the `user` label and user managers.
        let users = crate::users::Users::load(&self.passwd_file);
        let owner_of = |pid: i32| {
            crate::cgroup::owner_below(&self.procfs, pid, &self.owner_cgroup_root, &users).unwrap_or_default()
        };
        for (ratio, p) in ranked.iter().take(self.top_k) {
            self.top(out, *ratio, p, btime, &users, &owner_of(p.stat.pid));
        }
        for w in st.watches.iter_mut() {
            self.watch(out, w, &procs, btime, &owner_of);
        }
        Ok(())
    }

    /// Each process with its CPU ratio against the newest baseline at least
    /// `MIN_WINDOW` old (else the oldest one), busiest first.
    fn rank<'p>(&self, procs: &'p [Proc], samples: &VecDeque<Sample>) -> Vec<(f64, &'p Proc)> {
        let now = Instant::now();
        let hz = self.hz as f64;
        let base = samples
            .iter()
            .rev()
            .find(|s| now.duration_since(s.at) >= MIN_WINDOW)
            .or(samples.front());
        let mut ranked: Vec<(f64, &Proc)> = procs
            .iter()
            .map(|p| {
                let ratio = match base {
                    Some(b) if now > b.at => {
                        let before = b.ticks.get(&(p.stat.pid, p.stat.start_ticks)).copied().unwrap_or(0);
                        let window = now.duration_since(b.at).as_secs_f64();
                        p.stat.cpu_ticks.saturating_sub(before) as f64 / hz / window
                    }
                    _ => 0.0,
                };
                (ratio, p)
            })
            .collect();
        ranked.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then(b.1.stat.cpu_ticks.cmp(&a.1.stat.cpu_ticks))
                .then(a.1.stat.pid.cmp(&b.1.stat.pid))
        });
        ranked
    }

    /// The series of one top-K process.
    fn top(&self, out: &mut MetricSet, ratio: f64, p: &Proc, btime: u64, users: &Users, owner: &Owner) {
        let hz = self.hz as f64;
        let pid = p.stat.pid.to_string();
        let cmdline = self.cmdline_redactor.as_ref().map(|r| {
            let raw = match &p.cmdline {
                Some(c) => c.clone(),
                None => read_cmdline(&self.procfs, p.stat.pid),
            };
            cmdline_label(&raw, &p.stat.comm, self.cmdline_max_chars, r)
        });
        let user = read_euid(&self.procfs, p.stat.pid)
            .map(|uid| users.label(uid))
            .unwrap_or_default();
        let mut l = vec![("pid", pid.as_str()), ("comm", p.stat.comm.as_str())];
        if let Some(c) = &cmdline {
            l.push(("cmdline", c.as_str()));
        }
        l.push(("user", user.as_str()));
        owner_labels(&mut l, owner);
        out.gauge(
            "hostmedic_process_top_cpu_usage_ratio",
            "CPU used by this process since the previous sample (1.0 = one full CPU).",
            &l,
            ratio,
        );
        out.counter(
            "hostmedic_process_top_cpu_seconds",
            "User + system CPU time consumed by this process.",
            &l,
            p.stat.cpu_ticks as f64 / hz,
        );
        out.gauge(
            "hostmedic_process_top_start_time_seconds",
            "Process start time, Unix seconds (boot time + /proc/<pid>/stat starttime).",
            &l,
            ticks_to_unix(btime, p.stat.start_ticks, self.hz),
        );
    }

    /// The series of one watch (its counters updated by this scan).
    fn watch(
        &self,
        out: &mut MetricSet,
        w: &mut WatchState,
        procs: &[Proc],
        btime: u64,
        owner_of: &dyn Fn(i32) -> Owner,
    ) {
        let hz = self.hz as f64;
        let matching = w.update(procs);
        let l = [("watch", w.cfg.name.as_str())];
        out.gauge(
            "hostmedic_process_watch_processes",
            "Number of processes matching this watch.",
            &l,
            matching.len() as f64,
        );
        if let Some(min) = w.cfg.min {
            out.gauge(
                "hostmedic_process_watch_min",
                "Configured minimum process count of this watch.",
                &l,
                min as f64,
            );
        }
        if let Some(max) = w.cfg.max {
            out.gauge(
                "hostmedic_process_watch_max",
                "Configured maximum process count of this watch.",
                &l,
                max as f64,
            );
        }
        out.counter(
            "hostmedic_process_watch_cpu_seconds",
            "CPU time of the processes matching this watch, including exited ones seen since hostmedic started.",
            &l,
            w.cpu_ticks() as f64 / hz,
        );
        if let Some(oldest) = matching.iter().map(|p| p.stat.start_ticks).min() {
            out.gauge(
                "hostmedic_process_watch_oldest_start_time_seconds",
                "Start time of the oldest matching process, Unix seconds (absent with no match).",
                &l,
                ticks_to_unix(btime, oldest, self.hz),
            );
        }
        let mut owners: BTreeMap<crate::cgroup::Owner, u64> = BTreeMap::new();
        for p in &matching {
            *owners.entry(owner_of(p.stat.pid)).or_default() += 1;
        }
        for (owner, n) in crate::cgroup::top_owners(&owners, MAX_OWNERS_PER_WATCH) {
            let mut ol = vec![("watch", w.cfg.name.as_str())];
            owner_labels(&mut ol, owner);
            out.gauge(
                "hostmedic_process_watch_owner_processes",
                "Matching processes per owner (systemd unit and manager, Docker container; from /proc/<pid>/cgroup), for the owners with the most processes.",
                &ol,
                n as f64,
            );
        }
        let rss: u64 = matching.iter().map(|p| p.stat.rss_pages).sum();
        out.gauge(
            "hostmedic_process_watch_resident_memory_bytes",
            "Summed resident memory of the matching processes.",
            &l,
            (rss * self.page_size) as f64,
        );
    }
}

/// Appends the `manager`, `unit`, `container` labels an owner has (a part it
/// lacks adds no label).
fn owner_labels<'a>(l: &mut Vec<(&'static str, &'a str)>, o: &'a crate::cgroup::Owner) {
    for (k, v) in [
        ("manager", &o.manager),
        ("unit", &o.unit),
        ("container", &o.container_id),
    ] {
        if let Some(v) = v {
            l.push((k, v.as_str()));
        }
    }
}

#[async_trait]
impl Collector for ProcessesCollector {
    fn name(&self) -> &'static str {
        "processes"
    }

    async fn collect(&self, out: &mut MetricSet) -> Result<(), CollectError> {
        let inner = self.inner.clone();
        if inner.top_k > 0 {
            // First scrape before the sampler's first baseline has aged: take
            // our own short window so the ratio still means something.
            let me = inner.clone();
            let sampled = tokio::task::spawn_blocking(move || {
                if me.has_baseline() {
                    return Ok(false);
                }
                me.sample().map(|()| true)
            })
            .await
            .map_err(CollectError::failed)??;
            if sampled {
                tokio::time::sleep(FALLBACK_WINDOW).await;
            }
        }
        crate::collector::collect_blocking(out, move |set| inner.read(set)).await
    }

    async fn background(self: Arc<Self>, shutdown: CancellationToken) {
        let mut last_error: Option<String> = None;
        let interval = self.inner.sample_interval;
        loop {
            let me = self.inner.clone();
            let res = tokio::task::spawn_blocking(move || me.sample()).await;
            let err = match res {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(e.to_string()),
            };
            if err != last_error {
                if let Some(e) = &err {
                    tracing::warn!(collector = "processes", error = %e, "process sampling failed");
                }
                last_error = err;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortens_cmdlines() {
        let r = Redactor::default();
        let label = |c: &str, comm: &str, n: usize| cmdline_label(c, comm, n, &r);
        assert_eq!(label("", "kworker/0:1", 20), "[kworker/0:1]");
        assert_eq!(label("python3 bot.py", "python3", 20), "python3 bot.py");
        let long = "python3 -m worker --queue=high --concurrency=4";
        let s = label(long, "python3", 20);
        assert_eq!(s.chars().count(), 20);
        assert!(s.starts_with("python3 -m worker -") && s.ends_with('…'), "{s}");
        assert_eq!(label("a\tb", "a", 20), "a b");
        assert_eq!(label("exactly8", "e", 8), "exactly8");
    }

    #[test]
    fn cmdline_label_is_redacted_before_the_cut() {
        let r = Redactor::default();
        let s = cmdline_label("app --password=hunter2 --db-token xyz", "app", 80, &r);
        assert_eq!(s, "app --password=[REDACTED] --db-token xyz");
        // A cut in the middle of the secret would otherwise leak its start.
        let s = cmdline_label("app --password=hunter2hunter2", "app", 20, &r);
        assert!(!s.contains("hunt"), "{s}");
        let r = Redactor::new("receiver.evidence.redact", &["customer-\\d+".into()]).unwrap();
        assert_eq!(cmdline_label("job customer-42", "job", 80, &r), "job [REDACTED]");
    }

    #[test]
    fn validation_names_keys() {
        let mut c = Config::default();
        c.watch.push(Watch {
            name: "w".into(),
            comm: None,
            cmdline: None,
            min: None,
            max: None,
        });
        assert!(
            c.validate("processes")
                .unwrap_err()
                .to_string()
                .contains("processes.watch[0]")
        );
        c.watch[0].cmdline = Some("(".into());
        let e = c.validate("processes").unwrap_err().to_string();
        assert!(e.contains("processes.watch[0].cmdline"), "{e}");
        c.watch[0].cmdline = Some("bot".into());
        c.watch[0].min = Some(3);
        c.watch[0].max = Some(1);
        assert!(
            c.validate("processes")
                .unwrap_err()
                .to_string()
                .contains("processes.watch[0].min")
        );
        c.watch[0].max = Some(3);
        c.validate("processes").unwrap();
        c.top_k = 1000;
        assert!(
            c.validate("processes")
                .unwrap_err()
                .to_string()
                .contains("processes.top_k")
        );
    }
}
