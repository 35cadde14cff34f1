//! `processes` collector: the top-K processes by recent CPU use, and process
//! watches (count, CPU, oldest start, memory of the processes matching a regex).
//!
//! It reads `<procfs_root>/<pid>/{stat,cmdline,status}` itself instead of
//! using sysinfo: sysinfo's `/proc` path is fixed (no configurable root, so no
//! container's or test's procfs), and it rounds start times to whole seconds,
//! while the runaway-process kill action must identify a process exactly by
//! pid + start time. The files read are small and their format is stable.
//!
//! Start time in Unix seconds is `btime + starttime / CLK_TCK`, where `btime`
//! is the `btime` line of `<procfs_root>/stat` and `starttime` is field 22 of
//! `<procfs_root>/<pid>/stat` (clock ticks since boot). [`start_time_seconds`]
//! is the single function computing it; the kill action must use it (or
//! [`same_process`], which allows for a wall-clock step) to re-check a pid.
//!
//! CPU usage ratio: a background task samples every process's CPU ticks every
//! `sample_interval`; a scrape compares the current ticks against the newest
//! sample that is at least one second old, so the ratio is meaningful from
//! the first scrape on (1.0 = one full CPU).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::collector::{CollectError, Collector};
use crate::config::{ConfigError, compile_regex};
use crate::metrics::MetricSet;

/// `[processes]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub enabled: bool,
    /// How many processes the top-CPU series list (0 disables them).
    pub top_k: usize,
    /// How often the background sampler records every process's CPU ticks.
    #[serde(with = "humantime_serde")]
    pub sample_interval: Duration,
    /// The `cmdline` label is cut to this many characters.
    pub cmdline_max_chars: usize,
    /// `[[processes.watch]]` entries.
    pub watch: Vec<Watch>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            top_k: 5,
            sample_interval: Duration::from_secs(5),
            cmdline_max_chars: 80,
            watch: Vec::new(),
        }
    }
}

/// `[[processes.watch]]`: processes whose comm and/or cmdline match.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watch {
    /// The `watch` label.
    pub name: String,
    /// Regex on the command name (`/proc/<pid>/comm`, at most 15 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    /// Regex on the full command line, arguments joined by single spaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    /// Expected minimum count (exported as `hostmedic_process_watch_min`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u64>,
    /// Expected maximum count (exported as `hostmedic_process_watch_max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
}

pub const MAX_TOP_K: usize = 100;

impl Config {
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if self.top_k > MAX_TOP_K {
            return Err(ConfigError::invalid(
                format!("{key}.top_k"),
                format!("must be at most {MAX_TOP_K} (each listed process is a label set)"),
            ));
        }
        if self.sample_interval < Duration::from_millis(100) {
            return Err(ConfigError::invalid(
                format!("{key}.sample_interval"),
                "must be at least 100ms",
            ));
        }
        if self.cmdline_max_chars < 8 {
            return Err(ConfigError::invalid(
                format!("{key}.cmdline_max_chars"),
                "must be at least 8",
            ));
        }
        let mut names = HashSet::new();
        for (i, w) in self.watch.iter().enumerate() {
            let k = format!("{key}.watch[{i}]");
            if w.name.trim().is_empty() {
                return Err(ConfigError::invalid(format!("{k}.name"), "must not be empty"));
            }
            if !names.insert(w.name.as_str()) {
                return Err(ConfigError::invalid(
                    format!("{k}.name"),
                    format!("duplicate watch name {:?}", w.name),
                ));
            }
            if w.comm.is_none() && w.cmdline.is_none() {
                return Err(ConfigError::invalid(
                    k,
                    "needs `comm` or `cmdline` (a regex); both means both must match",
                ));
            }
            if let Some(r) = &w.comm {
                compile_regex(&format!("{k}.comm"), r)?;
            }
            if let Some(r) = &w.cmdline {
                compile_regex(&format!("{k}.cmdline"), r)?;
            }
            if let (Some(min), Some(max)) = (w.min, w.max)
                && min > max
            {
                return Err(ConfigError::invalid(
                    format!("{k}.min"),
                    format!("min ({min}) is greater than max ({max})"),
                ));
            }
        }
        Ok(())
    }
}

/// Errors reading procfs.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("reading {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: unexpected format: {what}")]
    Format { path: PathBuf, what: &'static str },
    #[error("sysconf({0}) unavailable")]
    Sysconf(&'static str),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ProcError + '_ {
    move |source| ProcError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, the unit of the times in
/// `/proc/<pid>/stat`).
pub fn clock_ticks_per_second() -> Result<u64, ProcError> {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(v)) if v > 0 => Ok(v as u64),
        _ => Err(ProcError::Sysconf("_SC_CLK_TCK")),
    }
}

fn page_size() -> Result<u64, ProcError> {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
        Ok(Some(v)) if v > 0 => Ok(v as u64),
        _ => Err(ProcError::Sysconf("_SC_PAGESIZE")),
    }
}

/// Reads at most `limit` bytes of a file.
fn read_limited(path: &Path, limit: usize) -> Result<Vec<u8>, ProcError> {
    let f = File::open(path).map_err(io_err(path))?;
    let mut buf = Vec::with_capacity(limit.min(4096));
    f.take(limit as u64).read_to_end(&mut buf).map_err(io_err(path))?;
    Ok(buf)
}

/// Boot time in Unix seconds: the `btime` line of `<procfs>/stat`.
pub fn boot_time(procfs: &Path) -> Result<u64, ProcError> {
    let path = procfs.join("stat");
    let text = read_limited(&path, 1 << 20)?;
    let text = String::from_utf8_lossy(&text);
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or(ProcError::Format {
            path,
            what: "no btime line",
        })
}

/// The fields of `/proc/<pid>/stat` this collector uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    /// Command name (field 2, without the parentheses).
    pub comm: String,
    /// State letter (R, S, D, Z, …).
    pub state: char,
    /// utime + stime, in clock ticks (the process itself, not its children).
    pub cpu_ticks: u64,
    /// Start time in clock ticks since boot (field 22).
    pub start_ticks: u64,
    /// Resident set size in pages (field 24).
    pub rss_pages: u64,
}

/// Parses the text of `/proc/<pid>/stat`. The command name may contain spaces
/// and parentheses, so the fields after it are found from the *last* `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let comm = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is field 3 (state); field N is rest[N - 3].
    let field = |n: usize| -> Option<u64> { rest.get(n - 3)?.parse().ok() };
    Some(ProcStat {
        pid,
        comm,
        state: rest.first()?.chars().next()?,
        cpu_ticks: field(14)? + field(15)?,
        start_ticks: field(22)?,
        rss_pages: field(24)?,
    })
}

/// Reads and parses `<procfs>/<pid>/stat`.
pub fn read_stat(procfs: &Path, pid: i32) -> Result<ProcStat, ProcError> {
    let path = procfs.join(pid.to_string()).join("stat");
    let raw = read_limited(&path, 4096)?;
    parse_stat(&String::from_utf8_lossy(&raw)).ok_or(ProcError::Format {
        path,
        what: "cannot parse stat fields",
    })
}

/// Start time of `pid` in Unix seconds, `btime + starttime / CLK_TCK`: the
/// value exported as `hostmedic_process_top_start_time_seconds`. Computed the
/// same way (same f64 operations) on every call, so a value taken from a
/// metric compares equal to a fresh reading of the same process unless the
/// wall clock was stepped in between (which moves `btime`); a caller that
/// must survive clock steps should allow about one second of tolerance.
pub fn start_time_seconds(procfs: &Path, pid: i32) -> Result<f64, ProcError> {
    let stat = read_stat(procfs, pid)?;
    Ok(ticks_to_unix(
        boot_time(procfs)?,
        stat.start_ticks,
        clock_ticks_per_second()?,
    ))
}

/// Largest difference between a recorded start time and a fresh reading that
/// still identifies the same process: absorbs a wall-clock step (which moves
/// `btime`) of up to a second; a pid cannot be reused within that time.
pub const START_TIME_TOLERANCE_SECONDS: f64 = 1.0;

/// Whether `pid` is still the process that started at `start_time` (Unix
/// seconds, as exported by this collector). `Ok(false)` when the pid is gone
/// or belongs to a newer process. For the kill action's last check.
pub fn same_process(procfs: &Path, pid: i32, start_time: f64) -> Result<bool, ProcError> {
    match start_time_seconds(procfs, pid) {
        Ok(now) => Ok((now - start_time).abs() <= START_TIME_TOLERANCE_SECONDS),
        Err(ProcError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn ticks_to_unix(btime: u64, start_ticks: u64, hz: u64) -> f64 {
    btime as f64 + start_ticks as f64 / hz as f64
}

/// Reads `<procfs>/<pid>/cmdline` (at most 32 KiB), arguments joined by spaces.
fn read_cmdline(procfs: &Path, pid: i32) -> String {
    let path = procfs.join(pid.to_string()).join("cmdline");
    let raw = read_limited(&path, 32 * 1024).unwrap_or_default();
    let mut s = String::from_utf8_lossy(&raw).replace('\0', " ");
    let trimmed = s.trim_end().len();
    s.truncate(trimmed);
    s
}

/// Effective uid from `<procfs>/<pid>/status` (the user `ps` shows).
fn read_euid(procfs: &Path, pid: i32) -> Option<u32> {
    let raw = read_limited(&procfs.join(pid.to_string()).join("status"), 64 * 1024).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let line = text.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Label form of a command line: control characters replaced, cut to
/// `max_chars` characters with a trailing `…`; kernel threads (empty cmdline)
/// show as `[comm]` like ps.
pub fn shorten_cmdline(cmdline: &str, comm: &str, max_chars: usize) -> String {
    if cmdline.is_empty() {
        return format!("[{comm}]");
    }
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
struct Proc {
    stat: ProcStat,
    /// Present when some watch matches on cmdline, or for top-K entries.
    cmdline: Option<String>,
}

type Key = (i32, u64); // (pid, start ticks): unique across pid reuse

/// Lists every process under `procfs`. Processes that exit mid-scan are skipped.
fn scan(procfs: &Path, with_cmdline: bool) -> Result<Vec<Proc>, ProcError> {
    let rd = std::fs::read_dir(procfs).map_err(io_err(procfs))?;
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
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

/// A watch's compiled regexes and the state that makes its CPU counter monotonic.
struct WatchState {
    cfg: Watch,
    comm: Option<regex::Regex>,
    cmdline: Option<regex::Regex>,
    /// Last seen ticks of each currently matching process.
    live: HashMap<Key, u64>,
    /// Ticks of matching processes that have since exited (or stopped matching).
    retired_ticks: u64,
}

impl WatchState {
    fn matches(&self, p: &Proc) -> bool {
        self.comm.as_ref().is_none_or(|r| r.is_match(&p.stat.comm))
            && self
                .cmdline
                .as_ref()
                .is_none_or(|r| r.is_match(p.cmdline.as_deref().unwrap_or("")))
    }

    /// Folds one scan into the counter state; returns the matching processes.
    fn update<'a>(&mut self, procs: &'a [Proc]) -> Vec<&'a Proc> {
        let matching: Vec<&Proc> = procs.iter().filter(|p| self.matches(p)).collect();
        let mut live = HashMap::with_capacity(matching.len());
        for p in &matching {
            let key = (p.stat.pid, p.stat.start_ticks);
            // ticks never decrease for one process; max() guards odd readings
            let prev = self.live.get(&key).copied().unwrap_or(0);
            live.insert(key, p.stat.cpu_ticks.max(prev));
        }
        for (key, ticks) in &self.live {
            if !live.contains_key(key) {
                self.retired_ticks += ticks;
            }
        }
        self.live = live;
        matching
    }

    fn cpu_ticks(&self) -> u64 {
        self.retired_ticks + self.live.values().sum::<u64>()
    }
}

struct State {
    /// Newest last; at most two.
    samples: VecDeque<Sample>,
    watches: Vec<WatchState>,
    users: HashMap<u32, String>,
}

/// The collector; its state is shared with blocking tasks.
pub struct ProcessesCollector {
    inner: Arc<Inner>,
}

struct Inner {
    procfs: PathBuf,
    top_k: usize,
    sample_interval: Duration,
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
    pub fn new(cfg: &Config, procfs_root: &Path) -> Result<Self, ConfigError> {
        Ok(ProcessesCollector {
            inner: Arc::new(Inner::new(cfg, procfs_root)?),
        })
    }
}

impl Inner {
    fn new(cfg: &Config, procfs_root: &Path) -> Result<Self, ConfigError> {
        let mut watches = Vec::new();
        for (i, w) in cfg.watch.iter().enumerate() {
            let k = format!("processes.watch[{i}]");
            watches.push(WatchState {
                comm: w
                    .comm
                    .as_deref()
                    .map(|r| compile_regex(&format!("{k}.comm"), r))
                    .transpose()?,
                cmdline: w
                    .cmdline
                    .as_deref()
                    .map(|r| compile_regex(&format!("{k}.cmdline"), r))
                    .transpose()?,
                cfg: w.clone(),
                live: HashMap::new(),
                retired_ticks: 0,
            });
        }
        let hz = clock_ticks_per_second().map_err(|e| ConfigError::invalid("processes", e))?;
        let page_size = page_size().map_err(|e| ConfigError::invalid("processes", e))?;
        Ok(Inner {
            procfs: procfs_root.to_path_buf(),
            top_k: cfg.top_k,
            sample_interval: cfg.sample_interval,
            cmdline_max_chars: cfg.cmdline_max_chars,
            need_cmdline: cfg.watch.iter().any(|w| w.cmdline.is_some()),
            hz,
            page_size,
            state: Mutex::new(State {
                samples: VecDeque::new(),
                watches,
                users: HashMap::new(),
            }),
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, CollectError> {
        self.state
            .lock()
            .map_err(|_| CollectError::failed("processes state lock poisoned"))
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
        let mut st = self.lock()?;
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
        self.state
            .lock()
            .map(|st| st.samples.iter().any(|s| s.at.elapsed() >= FALLBACK_WINDOW))
            .unwrap_or(false)
    }

    fn user_name(users: &mut HashMap<u32, String>, uid: u32) -> String {
        users
            .entry(uid)
            .or_insert_with(|| match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
                Ok(Some(u)) => u.name,
                _ => uid.to_string(),
            })
            .clone()
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
        let now = Instant::now();
        let hz = self.hz as f64;
        let mut st = self.lock()?;
        let st = &mut *st;

        // Newest baseline at least MIN_WINDOW old, else the oldest one we have.
        let base = st
            .samples
            .iter()
            .rev()
            .find(|s| now.duration_since(s.at) >= MIN_WINDOW)
            .or(st.samples.front());
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

        for (ratio, p) in ranked.iter().take(self.top_k) {
            let pid = p.stat.pid.to_string();
            let cmdline = match &p.cmdline {
                Some(c) => c.clone(),
                None => read_cmdline(&self.procfs, p.stat.pid),
            };
            let cmdline = shorten_cmdline(&cmdline, &p.stat.comm, self.cmdline_max_chars);
            let user = match read_euid(&self.procfs, p.stat.pid) {
                Some(uid) => Self::user_name(&mut st.users, uid),
                None => String::new(),
            };
            let l = [
                ("pid", pid.as_str()),
                ("comm", p.stat.comm.as_str()),
                ("cmdline", cmdline.as_str()),
                ("user", user.as_str()),
            ];
            out.gauge(
                "hostmedic_process_top_cpu_usage_ratio",
                "CPU used by this process since the previous sample (1.0 = one full CPU).",
                &l,
                *ratio,
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

        for w in st.watches.iter_mut() {
            let matching = w.update(&procs);
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
            let rss: u64 = matching.iter().map(|p| p.stat.rss_pages).sum();
            out.gauge(
                "hostmedic_process_watch_resident_memory_bytes",
                "Summed resident memory of the matching processes.",
                &l,
                (rss * self.page_size) as f64,
            );
        }
        Ok(())
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
        let set = tokio::task::spawn_blocking(move || {
            let mut set = MetricSet::new();
            inner.read(&mut set).map(|()| set)
        })
        .await
        .map_err(CollectError::failed)??;
        out.extend(set);
        Ok(())
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
    fn parses_stat_with_odd_comm() {
        let line = "4242 (we ird) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 50 0 0 20 0 1 0 123456 10000000 321 18446744073709551615 \
                    1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.pid, 4242);
        assert_eq!(s.comm, "we ird) (x)");
        assert_eq!(s.state, 'S');
        assert_eq!(s.cpu_ticks, 300);
        assert_eq!(s.start_ticks, 123456);
        assert_eq!(s.rss_pages, 321);
        assert!(parse_stat("12 (x) S 1 2").is_none());
    }

    #[test]
    fn shortens_cmdlines() {
        assert_eq!(shorten_cmdline("", "kworker/0:1", 20), "[kworker/0:1]");
        assert_eq!(shorten_cmdline("python3 bot.py", "python3", 20), "python3 bot.py");
        let long = "python3 -m worker --queue=high --concurrency=4";
        let s = shorten_cmdline(long, "python3", 20);
        assert_eq!(s.chars().count(), 20);
        assert!(s.starts_with("python3 -m worker -") && s.ends_with('…'), "{s}");
        assert_eq!(shorten_cmdline("a\tb", "a", 20), "a b");
        assert_eq!(shorten_cmdline("exactly8", "e", 8), "exactly8");
    }

    #[test]
    fn own_start_time_matches_proc_and_clock() {
        let procfs = Path::new("/proc");
        let me = std::process::id() as i32;
        let t = start_time_seconds(procfs, me).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        // This test process started a moment ago (allow for a slow machine
        // and btime's whole-second resolution).
        assert!(t <= now + 1.0 && t > now - 3600.0, "start {t} now {now}");
        assert_eq!(t, start_time_seconds(procfs, me).unwrap());
        assert!(same_process(procfs, me, t).unwrap());
        assert!(
            !same_process(procfs, me, t - 5.0).unwrap(),
            "an older process with our pid"
        );
        assert!(!same_process(procfs, i32::MAX, t).unwrap(), "no such pid");
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
