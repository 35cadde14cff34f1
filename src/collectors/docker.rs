//! `docker` collector: per-container state, health, restarts, OOM kills, exit
//! codes, restart policy, timestamps and memory, read from the Docker Engine
//! API at scrape time (scenario S8: an unhealthy, restart-looping, OOM-killed
//! container).
//!
//! One scrape = one `GET /containers/json?all=1`, then one inspect per kept
//! container (concurrently, bounded by `concurrency`, each under `timeout`),
//! then memory, CPU, I/O and pressure of the running ones from their cgroup
//! files ([`crate::cgroup`]), found through the main process's
//! `/proc/<pid>/cgroup`. The engine's one-shot
//! stats (`stream=false&one-shot=true`) are only the fallback (or
//! `memory_source = "stats"`): engine 20.10 answers them at its stats
//! collector's next 1 s tick, so they cost up to 1 s per round of requests,
//! measured 4 s per scrape for 50 containers (BENCHMARKS.md). Nothing is
//! cached between scrapes except the connection; after any engine error the
//! connection is dropped and re-negotiated next scrape, so an engine that was
//! stopped, upgraded or restarted is picked up again.
//!
//! Disk: each container's json-file log size (its inspect's `LogPath`, one
//! `stat` on the blocking pool, at scrape time), and what the engine's disk
//! use is made of (images, build cache, containers, volumes, with the
//! reclaimable part of each), from `/system/df`. That request walks every
//! layer and volume (minutes on a big host), so it never runs on a scrape: a
//! background task makes it every `df_interval` and the scrapes export the
//! last answer with its time.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::collector::{CollectError, Collector, GlobalConfig, spawn_every};
use crate::docker::{
    COMPOSE_PROJECT_LABEL, COMPOSE_SERVICE_LABEL, Connection, ContainerStatus, DiskKind, DiskUsage, DockerError,
    HEALTHS, STATES, State,
};
use crate::error::{ConfigError, compile_regex};
use crate::metrics::MetricSet;

/// `[docker]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub enabled: bool,
    /// Engine address (`unix:///path`, `tcp://host:port`). Empty: `DOCKER_HOST`
    /// when set, else `unix:///var/run/docker.sock`.
    pub host: String,
    /// Only containers whose name (no leading slash) matches this regex; empty
    /// keeps all.
    pub include: String,
    /// Containers whose name matches this regex are left out; empty drops none.
    pub exclude: String,
    /// Deadline of each engine request (list, inspect, stats). Whole seconds,
    /// at least 1 s; keep it below `global.collector_timeout`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How many containers are inspected at the same time.
    pub concurrency: usize,
    /// Where memory usage comes from: `cgroup` (the container's cgroup files
    /// under `global.sysfs_root`, found through `global.procfs_root`; one-shot
    /// stats only when those cannot be read) or `stats` (always the engine's
    /// one-shot stats, which on engine 20.10 take up to 1 s).
    pub memory_source: MemorySource,
    /// How often the engine's disk use (`/system/df`) is read in the
    /// background; `0s` turns it off. At least 10s otherwise.
    #[serde(with = "humantime_serde")]
    pub df_interval: Duration,
}

/// The deadline of one `/system/df` request: it walks every layer and
/// volume, which takes minutes on a big host.
pub const DF_TIMEOUT: Duration = Duration::from_secs(120);

/// `docker.memory_source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemorySource {
    Cgroup,
    Stats,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            host: String::new(),
            include: String::new(),
            exclude: String::new(),
            timeout: Duration::from_secs(3),
            concurrency: 16,
            memory_source: MemorySource::Cgroup,
            df_interval: Duration::from_secs(5 * 60),
        }
    }
}

/// The include/exclude filters compiled (`None`: the pattern is empty).
struct Filters {
    include: Option<regex::Regex>,
    exclude: Option<regex::Regex>,
}

impl Config {
    /// Checks the section by building what the collector runs with.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        self.build(key).map(drop)
    }

    fn build(&self, key: &str) -> Result<Filters, ConfigError> {
        if !self.host.is_empty() {
            crate::docker::check_host(&self.host).map_err(|e| ConfigError::invalid(format!("{key}.host"), e))?;
        }
        let opt = |name: &str, re: &str| -> Result<Option<regex::Regex>, ConfigError> {
            if re.is_empty() {
                Ok(None)
            } else {
                compile_regex(&format!("{key}.{name}"), re).map(Some)
            }
        };
        let filters = Filters {
            include: opt("include", &self.include)?,
            exclude: opt("exclude", &self.exclude)?,
        };
        if self.timeout < Duration::from_secs(1) || self.timeout.subsec_nanos() != 0 {
            return Err(ConfigError::invalid(
                format!("{key}.timeout"),
                "must be a whole number of seconds, at least 1s",
            ));
        }
        if self.concurrency == 0 {
            return Err(ConfigError::invalid(format!("{key}.concurrency"), "must be at least 1"));
        }
        if !self.df_interval.is_zero() && self.df_interval < Duration::from_secs(10) {
            return Err(ConfigError::invalid(
                format!("{key}.df_interval"),
                "must be 0s (off) or at least 10s",
            ));
        }
        Ok(filters)
    }
}

/// The section's engine address and request deadline, as [`crate::docker::connect`] takes them.
impl From<&Config> for crate::docker::Settings {
    fn from(cfg: &Config) -> Self {
        crate::docker::Settings {
            host: cfg.host.clone(),
            timeout: cfg.timeout,
        }
    }
}

pub struct DockerCollector {
    cfg: Config,
    procfs: PathBuf,
    sysfs: PathBuf,
    include: Option<regex::Regex>,
    exclude: Option<regex::Regex>,
    conn: Mutex<Option<Connection>>,
    /// The last `/system/df` answer.
    disk: RwLock<Option<Arc<DiskReport>>>,
}

/// One `/system/df` answer and when it came (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskReport {
    pub usage: DiskUsage,
    pub at: u64,
}

/// One container as read this scrape.
struct Sample {
    status: ContainerStatus,
    memory_usage: Option<u64>,
    /// Its cgroup's files (running containers, `memory_source = "cgroup"`).
    cgroup: Option<crate::cgroup::Usage>,
    /// Size of its json-file log (`None`: another driver, or not readable
    /// from here).
    log_bytes: Option<u64>,
}

/// What the blocking pool reads for one container: its cgroup files, its log's size.
type HostFiles = (Option<crate::cgroup::Usage>, Option<u64>);

const STATE: &str = "hostmedic_docker_container_state";

/// The per-container cgroup series (memory has its own, older series).
const CGROUP_SERIES: crate::cgroup::SeriesNames = crate::cgroup::SeriesNames {
    cpu: "hostmedic_docker_container_cpu_seconds",
    memory_current: None,
    memory_peak: None,
    tasks: None,
    io_read: "hostmedic_docker_container_io_read_bytes",
    io_written: "hostmedic_docker_container_io_written_bytes",
    pressure: "hostmedic_docker_container_pressure_stalled_seconds",
};
const HEALTH: &str = "hostmedic_docker_container_health";

impl DockerCollector {
    /// `global` gives the procfs/sysfs roots used to find container cgroups.
    pub fn new(cfg: &Config, global: &GlobalConfig) -> Result<Self, ConfigError> {
        let Filters { include, exclude } = cfg.build("docker")?;
        Ok(DockerCollector {
            include,
            exclude,
            cfg: cfg.clone(),
            procfs: global.procfs_root.clone(),
            sysfs: global.sysfs_root.clone(),
            conn: Mutex::new(None),
            disk: RwLock::new(None),
        })
    }

    /// Reads `/system/df` now and keeps the answer for the scrapes.
    pub async fn scan_disk_usage(&self) -> Result<Arc<DiskReport>, DockerError> {
        let conn = self.connection().await?;
        let usage = match conn.disk_usage(DF_TIMEOUT).await {
            Ok(u) => u,
            Err(e) => {
                self.forget_connection();
                return Err(e);
            }
        };
        let report = Arc::new(DiskReport {
            usage,
            at: crate::time::now() as u64,
        });
        *crate::sync::write(&self.disk) = Some(report.clone());
        Ok(report)
    }

    /// Whether a container name passes the include/exclude filters.
    pub fn keeps(&self, name: &str) -> bool {
        self.include.as_ref().is_none_or(|re| re.is_match(name))
            && !self.exclude.as_ref().is_some_and(|re| re.is_match(name))
    }

    async fn connection(&self) -> Result<Connection, DockerError> {
        if let Some(c) = crate::sync::lock(&self.conn).clone() {
            return Ok(c);
        }
        let c = crate::docker::connect(&self.cfg).await?;
        *crate::sync::lock(&self.conn) = Some(c.clone());
        Ok(c)
    }

    fn forget_connection(&self) {
        *crate::sync::lock(&self.conn) = None;
    }

    /// Lists, filters and reads every container.
    async fn read(&self, conn: &Connection) -> Result<Vec<Sample>, DockerError> {
        let ids = self.kept_ids(conn).await?;
        let statuses = self.inspect_all(conn, ids).await?;
        let mut out = self.with_cgroups(statuses).await;
        self.fill_memory_from_stats(conn, &mut out).await;
        out.sort_by(|a, b| a.status.name.cmp(&b.status.name));
        Ok(out)
    }

    /// The ids of every container (running or not) whose name passes the filters.
    async fn kept_ids(&self, conn: &Connection) -> Result<Vec<String>, DockerError> {
        let opts = bollard::query_parameters::ListContainersOptions {
            all: true,
            ..Default::default()
        };
        let list = tokio::time::timeout(conn.timeout(), conn.docker.list_containers(Some(opts)))
            .await
            .map_err(|_| DockerError::Timeout {
                host: conn.host.clone(),
                what: "container list".into(),
                timeout: conn.timeout(),
            })?
            .map_err(|e| DockerError::Engine {
                host: conn.host.clone(),
                what: "container list".into(),
                source: e,
            })?;
        Ok(list
            .into_iter()
            .filter(|c| self.keeps(crate::docker::own_name(c.names.as_deref().unwrap_or_default())))
            .filter_map(|c| c.id)
            .collect())
    }

    /// Inspects `ids` concurrently; containers removed since the list are left out.
    async fn inspect_all(&self, conn: &Connection, ids: Vec<String>) -> Result<Vec<ContainerStatus>, DockerError> {
        let results: Vec<Result<Option<ContainerStatus>, DockerError>> = futures::stream::iter(ids)
            .map(|id| async move {
                match conn.inspect(&id).await {
                    Ok(s) => Ok(Some(s)),
                    // Removed between list and inspect.
                    Err(DockerError::NotFound(_)) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .buffer_unordered(self.cfg.concurrency)
            .collect()
            .await;
        let mut statuses = Vec::with_capacity(results.len());
        for r in results {
            if let Some(s) = r? {
                statuses.push(s);
            }
        }
        Ok(statuses)
    }

    /// One sample per status, with the files each container has on this
    /// host read in one blocking task (microseconds each): the cgroup files
    /// of every running container when `memory_source = "cgroup"`, and every
    /// container's log size.
    async fn with_cgroups(&self, statuses: Vec<ContainerStatus>) -> Vec<Sample> {
        let cgroups = self.cfg.memory_source == MemorySource::Cgroup;
        let wanted: Vec<(Option<i64>, Option<PathBuf>)> = statuses
            .iter()
            .map(|s| (s.pid.filter(|_| cgroups && has_memory(s)), s.log_path.clone()))
            .collect();
        let (procfs, sysfs) = (self.procfs.clone(), self.sysfs.clone());
        let read: Vec<HostFiles> = tokio::task::spawn_blocking(move || read_host_files(&procfs, &sysfs, &wanted))
            .await
            .unwrap_or_else(|_| Vec::new());
        let mut read = read.into_iter();
        statuses
            .into_iter()
            .map(|status| {
                let (cgroup, log_bytes) = read.next().unwrap_or_default();
                Sample {
                    memory_usage: cgroup.as_ref().and_then(|u| u.memory_working_set),
                    cgroup,
                    log_bytes,
                    status,
                }
            })
            .collect()
    }

    /// One-shot stats, concurrently, for the running containers whose memory
    /// the cgroup files did not give.
    async fn fill_memory_from_stats(&self, conn: &Connection, out: &mut [Sample]) {
        let missing: Vec<usize> = (0..out.len())
            .filter(|&i| out[i].memory_usage.is_none() && has_memory(&out[i].status))
            .collect();
        let fetched: Vec<(usize, Option<u64>)> = futures::stream::iter(missing)
            .map(|i| {
                let (id, name) = (out[i].status.id.clone(), out[i].status.name.clone());
                async move {
                    match conn.memory_usage(&id).await {
                        Ok(m) => (i, m),
                        Err(e) => {
                            // Only this series is left out; the container's
                            // state is still worth exporting.
                            tracing::debug!(container = %name, error = %e, "no memory stats");
                            (i, None)
                        }
                    }
                }
            })
            // One-shot stats requests just wait for the engine's next stats
            // tick: issuing them together costs one tick, not one per batch.
            .buffer_unordered(self.cfg.concurrency.max(64))
            .collect()
            .await;
        for (i, m) in fetched {
            out[i].memory_usage = m;
        }
    }
}

/// Whether the container has memory in use worth reading (running or paused).
fn has_memory(s: &ContainerStatus) -> bool {
    matches!(s.state, State::Running | State::Paused)
}

/// Per container: the cgroup files of its main process (`None`: no pid
/// given, or its cgroup cannot be read), under `<sysfs>/fs/cgroup`, and the
/// size of its log file (`None`: no path, or it cannot be read from here,
/// e.g. inside a container without the engine's data root).
fn read_host_files(procfs: &Path, sysfs: &Path, wanted: &[(Option<i64>, Option<PathBuf>)]) -> Vec<HostFiles> {
    let h = crate::cgroup::Hierarchies::detect(&sysfs.join("fs/cgroup"));
    wanted
        .iter()
        .map(|(pid, log)| {
            (
                pid.and_then(|pid| crate::cgroup::process_usage(procfs, &h, pid)),
                log.as_ref().and_then(|p| std::fs::metadata(p).ok()).map(|m| m.len()),
            )
        })
        .collect()
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Writes the metrics of docs/metrics.md (docker section) for `samples`.
fn write(out: &mut MetricSet, conn: &Connection, samples: &[Sample]) {
    out.gauge(
        "hostmedic_docker_info",
        "Docker Engine version and maximum API version; always 1.",
        &[("version", &conn.version), ("api_version", &conn.api_version)],
        1.0,
    );
    for s in samples {
        write_identity(out, &s.status);
        write_state(out, &s.status);
        write_lifecycle(out, &s.status);
        write_memory(out, s);
        if let Some(b) = s.log_bytes {
            out.gauge(
                "hostmedic_docker_container_log_bytes",
                "Size of the container's json-file log (LogPath), read at scrape time; absent with another logging driver or when the file cannot be read from here.",
                &[("container", s.status.name.as_str())],
                b as f64,
            );
        }
    }
}

/// The last `/system/df` answer: bytes and reclaimable bytes per kind, and when.
pub fn write_disk(out: &mut MetricSet, r: &DiskReport) {
    for kind in DiskKind::ALL {
        let k = r.usage.kind(kind);
        out.gauge(
            "hostmedic_docker_disk_usage_bytes",
            "Disk used by the engine's images, build cache, containers (writable layers) or volumes, as docker system df counts it; read in the background every docker.df_interval.",
            &[("kind", kind.as_str())],
            k.bytes as f64,
        );
        out.gauge(
            "hostmedic_docker_disk_reclaimable_bytes",
            "The part of hostmedic_docker_disk_usage_bytes nothing uses (unused images, build cache not in use, stopped containers, unused volumes), as docker system df counts it.",
            &[("kind", kind.as_str())],
            k.reclaimable as f64,
        );
    }
    out.gauge(
        "hostmedic_docker_disk_usage_last_scan_timestamp_seconds",
        "When the last /system/df answer came (Unix seconds).",
        &[],
        r.at as f64,
    );
}

/// `container_info`: name, id, image and compose labels.
fn write_identity(out: &mut MetricSet, st: &ContainerStatus) {
    out.gauge(
        "hostmedic_docker_container_info",
        "Container identity; always 1. compose_* are empty outside Docker Compose.",
        &[
            ("container", st.name.as_str()),
            ("id", &st.id),
            ("image", &st.image),
            ("compose_project", st.label(COMPOSE_PROJECT_LABEL)),
            ("compose_service", st.label(COMPOSE_SERVICE_LABEL)),
        ],
        1.0,
    );
}

/// The one-hot state and health series and the health check's failing streak.
fn write_state(out: &mut MetricSet, st: &ContainerStatus) {
    let c = st.name.as_str();
    for state in STATES {
        out.gauge(
            STATE,
            "Container state, one-hot: exactly one state is 1.",
            &[("container", c), ("state", state)],
            f64::from(u8::from(st.state.as_str() == state)),
        );
    }
    for health in HEALTHS {
        out.gauge(
            HEALTH,
            "Container health, one-hot: none = no health check (not the same as unhealthy).",
            &[("container", c), ("health", health)],
            f64::from(u8::from(st.health.as_str() == health)),
        );
    }
    if let Some(streak) = st.failing_streak {
        out.gauge(
            "hostmedic_docker_container_health_failing_streak",
            "Consecutive failed health checks as reported by the engine (only for containers with a health check).",
            &[("container", c)],
            streak as f64,
        );
    }
}

/// Restarts, last exit (OOM kill, exit code), restart policy and the
/// start/finish timestamps.
fn write_lifecycle(out: &mut MetricSet, st: &ContainerStatus) {
    let c = st.name.as_str();
    out.counter(
        "hostmedic_docker_container_restarts",
        "Times the engine restarted the container under its restart policy (RestartCount; the engine resets it when the container is started by hand).",
        &[("container", c)],
        st.restart_count as f64,
    );
    out.gauge(
        "hostmedic_docker_container_oom_killed",
        "1 when the container's last exit was an OOM kill.",
        &[("container", c)],
        f64::from(u8::from(st.oom_killed)),
    );
    out.gauge(
        "hostmedic_docker_container_exit_code",
        "Exit code of the container's last run (137 = SIGKILL, e.g. OOM kill; 0 while it never exited).",
        &[("container", c)],
        st.exit_code as f64,
    );
    out.gauge(
        "hostmedic_docker_container_restart_policy",
        "The container's restart policy (no, always, unless-stopped, on-failure); always 1.",
        &[("container", c), ("policy", &st.restart_policy)],
        1.0,
    );
    if let Some(t) = st.started_at {
        out.gauge(
            "hostmedic_docker_container_started_timestamp_seconds",
            "Unix time the container last started (absent if it never started).",
            &[("container", c)],
            unix_seconds(t),
        );
    }
    if let Some(t) = st.finished_at {
        out.gauge(
            "hostmedic_docker_container_finished_timestamp_seconds",
            "Unix time the container last exited (absent if it never exited).",
            &[("container", c)],
            unix_seconds(t),
        );
    }
}

/// Memory usage, the cgroup series and the memory limit.
fn write_memory(out: &mut MetricSet, s: &Sample) {
    let c = s.status.name.as_str();
    if let Some(m) = s.memory_usage {
        out.gauge(
            "hostmedic_docker_container_memory_usage_bytes",
            "Memory in use as docker stats shows it (usage minus inactive file cache), read at scrape time, not cached: from the container's cgroup files (memory_source=cgroup, default) or the engine's one-shot stats (stream=false, one-shot=true; also the fallback); running containers only.",
            &[("container", c)],
            m as f64,
        );
    }
    if let Some(u) = &s.cgroup {
        crate::cgroup::write_usage(out, &CGROUP_SERIES, &[("container", c)], u);
    }
    if let Some(m) = s.status.memory_limit {
        out.gauge(
            "hostmedic_docker_container_memory_limit_bytes",
            "The container's memory limit (--memory); absent when unlimited.",
            &[("container", c)],
            m as f64,
        );
    }
}

#[async_trait]
impl Collector for DockerCollector {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn collect(&self, out: &mut MetricSet) -> Result<(), CollectError> {
        let to_collect_error = |e: DockerError| {
            if e.is_absent() {
                CollectError::Unavailable(e.to_string())
            } else {
                CollectError::Failed(e.to_string())
            }
        };
        let disk = crate::sync::read(&self.disk).clone();
        if let Some(r) = disk {
            write_disk(out, &r);
        }
        let conn = self.connection().await.map_err(to_collect_error)?;
        match self.read(&conn).await {
            Ok(samples) => {
                write(out, &conn, &samples);
                if self.cfg.memory_source == MemorySource::Cgroup {
                    let mut avail = crate::cgroup::Availability::default();
                    samples
                        .iter()
                        .filter_map(|s| s.cgroup.as_ref())
                        .for_each(|u| avail.note(u));
                    avail.write(out, "docker");
                }
                Ok(())
            }
            Err(e) => {
                // Reconnect (and renegotiate) next scrape.
                self.forget_connection();
                // A socket that disappeared means the engine is gone, not broken.
                let gone = conn
                    .host
                    .strip_prefix("unix://")
                    .is_some_and(|p| !std::path::Path::new(p).exists());
                if gone {
                    Err(CollectError::Unavailable(format!(
                        "no Docker engine socket at {}",
                        conn.host
                    )))
                } else {
                    Err(to_collect_error(e))
                }
            }
        }
    }

    async fn background(self: Arc<Self>, shutdown: CancellationToken) {
        let interval = self.cfg.df_interval;
        if interval.is_zero() {
            return;
        }
        spawn_every("docker", interval, shutdown, move || {
            let me = self.clone();
            tokio::spawn(async move {
                if let Err(e) = me.scan_disk_usage().await {
                    tracing::warn!(error = %e, "docker: /system/df failed; the last answer stays exported");
                }
            })
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_apply_to_names() {
        let cfg = Config {
            include: "^app-".into(),
            exclude: "-debug$".into(),
            ..Config::default()
        };
        let c = DockerCollector::new(&cfg, &Default::default()).unwrap();
        assert!(c.keeps("app-web"));
        assert!(!c.keeps("app-web-debug"));
        assert!(!c.keeps("db"));
        let all = DockerCollector::new(&Config::default(), &Default::default()).unwrap();
        assert!(all.keeps("anything"));
    }

    #[test]
    fn config_errors_name_the_key() {
        let bad = |text: &str| crate::config::Config::parse(text, "t").unwrap_err().to_string();
        assert!(bad("[docker]\ninclude = \"(\"\n").contains("docker.include"));
        assert!(bad("[docker]\ntimeout = \"500ms\"\n").contains("docker.timeout"));
        assert!(bad("[docker]\nhost = \"ssh://x\"\n").contains("docker.host"));
        assert!(bad("[docker]\nconcurrency = 0\n").contains("docker.concurrency"));
        assert!(bad("[docker]\ndf_interval = \"2s\"\n").contains("docker.df_interval"));
        crate::config::Config::parse("[docker]\ndf_interval = \"0s\"\n", "t").expect("0s turns it off");
        assert!(bad("[docker]\nsocket = \"/x\"\n").contains("socket"));
    }

    #[tokio::test]
    async fn absent_socket_is_unavailable_not_failed() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config {
            host: format!("unix://{}/docker.sock", dir.path().display()),
            ..Config::default()
        };
        let c = DockerCollector::new(&cfg, &Default::default()).unwrap();
        let err = c.collect(&mut MetricSet::new()).await.unwrap_err();
        assert!(matches!(err, CollectError::Unavailable(_)), "{err}");
    }

    #[tokio::test]
    async fn socket_without_engine_is_failed() {
        // A socket file nobody answers on: a crashed engine leaves one behind.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(listener);
        let cfg = Config {
            host: format!("unix://{}", path.display()),
            ..Config::default()
        };
        let c = DockerCollector::new(&cfg, &Default::default()).unwrap();
        let err = c.collect(&mut MetricSet::new()).await.unwrap_err();
        assert!(matches!(err, CollectError::Failed(_)), "{err}");
    }
}
