//! Reading what the kernel accounts per cgroup, and who owns a process: a
//! leaf shared by the systemd collector (per-unit resources), the docker
//! collector (per-container resources), the processes collector (owner
//! labels) and the incident evidence (the owner of a process). It imports
//! none of them; it reads files through [`crate::procfs`] only.
//!
//! # Hierarchies
//!
//! cgroup v2 ("unified") is one tree; `<root>/cgroup.controllers` marks it.
//! On a hybrid host (v1 controllers plus systemd's v2 tree) it is mounted at
//! `<root>/unified`: [`Hierarchies::detect`] finds it. cgroup v1 has one tree
//! per controller, `<root>/<controllers>` (for example `memory`,
//! `cpu,cpuacct`), named by the second field of `/proc/<pid>/cgroup`.
//!
//! # Files read (v2), and what each gives
//!
//! - `cpu.stat` `usage_usec`: CPU time of the cgroup and its descendants;
//!   present in every v2 cgroup (the kernel's basic accounting), even where
//!   the `cpu` controller is not enabled.
//! - `memory.current`, `memory.peak` (kernel ≥ 5.19), `pids.current`,
//!   `io.stat` (`rbytes`/`wbytes` summed over devices): only where the
//!   parent enables the `memory`, `pids` or `io` controller.
//! - `{cpu,memory,io}.pressure`: pressure stall information (PSI), present
//!   in every v2 cgroup on a kernel with PSI; [`parse_pressure`] is also the
//!   parser of the host's `/proc/pressure/*`.
//!
//! A file that is absent gives `None` for that figure, never an error: the
//! caller exports the figure as absent and says which resources it could
//! read ([`Availability`]).
//!
//! # Files read (v1), for containers on a v1 or hybrid host
//!
//! `cpuacct.usage` (ns), `memory.usage_in_bytes` + `memory.stat`,
//! `blkio.throttle.io_service_bytes_recursive` (or the non-recursive file),
//! `pids.current`. v1 has no pressure files.
//!
//! # Owner of a process
//!
//! [`owner`] reads `<procfs>/<pid>/cgroup` and names the systemd unit that
//! owns the process (the first non-slice unit on its path, as systemd
//! itself attributes processes; below `user@<uid>.service` the user manager,
//! labelled `user:<name>` like the systemd collector's `manager` label) and
//! the Docker container (`docker-<id>.scope`, `/docker/<id>` or any 64-hex
//! path component).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::metrics::MetricSet;
use crate::systemd::Passwd;

/// The cgroup trees under one root (`<sysfs_root>/fs/cgroup` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchies {
    /// Where the v1 controller trees are mounted (`<root>/<controllers>`).
    pub root: PathBuf,
    /// The v2 tree: `root` itself on a v2-only host, `root/unified` on a
    /// hybrid one, `None` when there is none (v1 only).
    pub unified: Option<PathBuf>,
}

impl Hierarchies {
    /// Looks at `root` (blocking, two `stat`s): the v2 tree is the directory
    /// holding `cgroup.controllers`.
    pub fn detect(root: &Path) -> Self {
        let unified = [root.to_path_buf(), root.join("unified")]
            .into_iter()
            .find(|d| d.join("cgroup.controllers").is_file());
        Hierarchies {
            root: root.to_path_buf(),
            unified,
        }
    }

    /// The v2 directory of the cgroup `path` (as `/proc/<pid>/cgroup` or a
    /// unit's `ControlGroup` names it, relative to this tree's root). `None`
    /// without a v2 tree, for the root cgroup itself (whose figures are the
    /// host's, not one unit's), and for paths leaving the tree (`/..`: a
    /// process outside our cgroup namespace).
    pub fn v2_dir(&self, path: &str) -> Option<PathBuf> {
        join_below(self.unified.as_deref()?, path)
    }

    /// The v1 directory of `path` in the tree of `controllers` (e.g.
    /// `cpu,cpuacct`). Same rules as [`Hierarchies::v2_dir`].
    pub fn v1_dir(&self, controllers: &str, path: &str) -> Option<PathBuf> {
        if controllers.is_empty() || controllers.contains('/') {
            return None;
        }
        join_below(&self.root.join(controllers), path)
    }
}

/// `base/path` for a non-root cgroup path that stays below `base`.
fn join_below(base: &Path, path: &str) -> Option<PathBuf> {
    let rel = Path::new(path.trim_start_matches('/'));
    let mut normal = 0;
    for c in rel.components() {
        match c {
            Component::Normal(_) => normal += 1,
            Component::CurDir => {}
            _ => return None,
        }
    }
    (normal > 0).then(|| base.join(rel))
}

/// One PSI line: the share of wall time some (or all) tasks were stalled.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PressureLine {
    /// Averages over 10 s, 60 s and 300 s, in percent (0–100).
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    /// Total stall time since boot (or since the cgroup was created), µs.
    pub total_usec: u64,
}

/// One `*.pressure` file: `some` always, `full` where the kernel has it
/// (memory and io; cpu too since 5.13, where it is 0 at the host level).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pressure {
    pub some: Option<PressureLine>,
    pub full: Option<PressureLine>,
}

impl Pressure {
    /// `("some", line)` and `("full", line)` for the lines present.
    pub fn kinds(&self) -> impl Iterator<Item = (&'static str, PressureLine)> + '_ {
        [("some", self.some), ("full", self.full)]
            .into_iter()
            .filter_map(|(k, l)| Some((k, l?)))
    }
}

/// Parses a PSI file (`/proc/pressure/cpu`, `<cgroup>/io.pressure`, …):
/// lines `some|full avg10=… avg60=… avg300=… total=…`. `None` when no line
/// parses; a line missing a field is skipped.
pub fn parse_pressure(text: &str) -> Option<Pressure> {
    let mut p = Pressure::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let kind = words.next();
        let mut l = PressureLine::default();
        let mut seen = 0u8;
        for w in words {
            let Some((k, v)) = w.split_once('=') else { continue };
            let ok = match k {
                "avg10" => v.parse().map(|v| l.avg10 = v).is_ok(),
                "avg60" => v.parse().map(|v| l.avg60 = v).is_ok(),
                "avg300" => v.parse().map(|v| l.avg300 = v).is_ok(),
                "total" => v.parse().map(|v| l.total_usec = v).is_ok(),
                _ => false,
            };
            seen += u8::from(ok);
        }
        if seen != 4 {
            continue;
        }
        match kind {
            Some("some") => p.some = Some(l),
            Some("full") => p.full = Some(l),
            _ => {}
        }
    }
    (p.some.is_some() || p.full.is_some()).then_some(p)
}

/// The PSI resources, in file order: `cpu`, `memory`, `io`.
pub const PRESSURE_RESOURCES: [&str; 3] = ["cpu", "memory", "io"];

/// Bytes read and written, summed over devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoBytes {
    pub read: u64,
    pub written: u64,
}

/// What one cgroup's files say; `None`: the file is absent or unreadable.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Usage {
    /// CPU time, µs (v2 `cpu.stat` `usage_usec`; v1 `cpuacct.usage` / 1000).
    pub cpu_usec: Option<u64>,
    /// Memory charged to the cgroup, page cache included (v2
    /// `memory.current`, v1 `memory.usage_in_bytes`).
    pub memory_current: Option<u64>,
    /// Highest `memory_current` seen (v2 `memory.peak`).
    pub memory_peak: Option<u64>,
    /// `memory_current` minus inactive file pages: `docker stats`' figure.
    /// Only filled by [`process_usage`] (it costs one more read).
    pub memory_working_set: Option<u64>,
    /// Tasks (threads) in the cgroup (`pids.current`).
    pub tasks: Option<u64>,
    pub io: Option<IoBytes>,
    /// `cpu`, `memory`, `io` pressure, in [`PRESSURE_RESOURCES`] order.
    pub pressure: [Option<Pressure>; 3],
}

/// Longest cgroup file read: `io.stat` has one line per device, the others
/// are a few lines.
const FILE_LIMIT: usize = 64 * 1024;

fn read_text(path: &Path) -> Option<String> {
    let raw = crate::procfs::read_limited(path, FILE_LIMIT).ok()?;
    String::from_utf8(raw).ok()
}

fn read_u64(path: &Path) -> Option<u64> {
    read_text(path)?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file (`cpu.stat`, `memory.stat`).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// Sums `rbytes=`/`wbytes=` over the devices of a v2 `io.stat`.
pub fn parse_io_stat(text: &str) -> IoBytes {
    let mut io = IoBytes::default();
    for w in text.split_whitespace() {
        if let Some(v) = w.strip_prefix("rbytes=") {
            io.read = io.read.saturating_add(v.parse().unwrap_or(0));
        } else if let Some(v) = w.strip_prefix("wbytes=") {
            io.written = io.written.saturating_add(v.parse().unwrap_or(0));
        }
    }
    io
}

/// Sums `<dev> Read N` / `<dev> Write N` of a v1
/// `blkio.throttle.io_service_bytes(_recursive)` (the `Total` line is left out).
pub fn parse_blkio(text: &str) -> IoBytes {
    let mut io = IoBytes::default();
    for l in text.lines() {
        let mut w = l.split_whitespace();
        let (Some(_dev), Some(op), Some(v)) = (w.next(), w.next(), w.next()) else {
            continue;
        };
        let v: u64 = v.parse().unwrap_or(0);
        match op {
            "Read" => io.read = io.read.saturating_add(v),
            "Write" => io.written = io.written.saturating_add(v),
            _ => {}
        }
    }
    io
}

/// Reads a v2 cgroup directory (blocking; up to eight small reads; no
/// `memory.stat`). Absent files give `None`; an absent directory gives an
/// all-`None` [`Usage`].
pub fn read_v2(dir: &Path) -> Usage {
    Usage {
        cpu_usec: read_text(&dir.join("cpu.stat")).and_then(|t| keyed(&t, "usage_usec")),
        memory_current: read_u64(&dir.join("memory.current")),
        memory_peak: read_u64(&dir.join("memory.peak")),
        memory_working_set: None,
        tasks: read_u64(&dir.join("pids.current")),
        io: read_text(&dir.join("io.stat")).map(|t| parse_io_stat(&t)),
        pressure: PRESSURE_RESOURCES
            .map(|r| read_text(&dir.join(format!("{r}.pressure"))).and_then(|t| parse_pressure(&t))),
    }
}

/// `usage` minus the inactive file pages (v1 `total_inactive_file`, v2
/// `inactive_file`, looked up in the `memory.stat` fields by `stat`):
/// `docker stats`' figure, for the cgroup files and the engine's stats alike.
pub fn working_set(usage: u64, stat: impl Fn(&str) -> Option<u64>) -> u64 {
    let inactive = stat("total_inactive_file")
        .or_else(|| stat("inactive_file"))
        .unwrap_or(0);
    if inactive < usage { usage - inactive } else { usage }
}

/// One line of `/proc/<pid>/cgroup`: `id:controllers:path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupLine<'a> {
    /// Comma-separated v1 controllers (`name=systemd` for systemd's named
    /// v1 tree); empty for the v2 tree.
    pub controllers: &'a str,
    pub path: &'a str,
}

/// Parses the text of `/proc/<pid>/cgroup`; malformed lines are skipped.
pub fn parse_proc_cgroup(text: &str) -> Vec<CgroupLine<'_>> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
                return None;
            };
            Some(CgroupLine { controllers, path })
        })
        .collect()
}

/// The v1 line whose controllers include `controller`.
fn v1_line<'a>(lines: &[CgroupLine<'a>], controller: &str) -> Option<CgroupLine<'a>> {
    lines
        .iter()
        .find(|l| l.controllers.split(',').any(|c| c == controller))
        .copied()
}

/// The resources of the cgroup process `pid` is in (blocking; a few small
/// reads), for a container's main process: each figure from its v1
/// controller's tree when the process is in one (a v1 or hybrid host),
/// else from the v2 tree; pressure from the v2 tree only. Fills
/// `memory_working_set`. `None` when `<procfs>/<pid>/cgroup` cannot be read
/// (the process is gone); figures whose files cannot be read (for example
/// hostmedic in another cgroup namespace: paths start with `/..`) are `None`.
pub fn process_usage(procfs: &Path, h: &Hierarchies, pid: i64) -> Option<Usage> {
    let text = crate::procfs::read_cgroup(procfs, pid).ok()?;
    let lines = parse_proc_cgroup(&text);
    let v2 = lines
        .iter()
        .find(|l| l.controllers.is_empty())
        .and_then(|l| h.v2_dir(l.path));
    let mut u = v2.as_deref().map(read_v2).unwrap_or_default();
    // v1: each controller's own tree overrides what the v2 tree lacks.
    let v1 = |controller: &str| v1_line(&lines, controller).and_then(|l| h.v1_dir(l.controllers, l.path));
    let mut memory_dir = v2.clone().filter(|_| u.memory_current.is_some());
    if let Some(d) = v1("memory")
        && let Some(m) = read_u64(&d.join("memory.usage_in_bytes"))
    {
        u.memory_current = Some(m);
        u.memory_peak = read_u64(&d.join("memory.max_usage_in_bytes"));
        memory_dir = Some(d);
    }
    if let Some(ns) = v1("cpuacct").and_then(|d| read_u64(&d.join("cpuacct.usage"))) {
        u.cpu_usec = Some(ns / 1000);
    }
    let blkio = v1("blkio").and_then(|d| {
        read_text(&d.join("blkio.throttle.io_service_bytes_recursive"))
            .or_else(|| read_text(&d.join("blkio.throttle.io_service_bytes")))
    });
    if let Some(t) = blkio {
        u.io = Some(parse_blkio(&t));
    }
    if let Some(n) = v1("pids").and_then(|d| read_u64(&d.join("pids.current"))) {
        u.tasks = Some(n);
    }
    if let (Some(m), Some(d)) = (u.memory_current, memory_dir) {
        let stat = read_text(&d.join("memory.stat")).unwrap_or_default();
        u.memory_working_set = Some(working_set(m, |k| keyed(&stat, k)));
    }
    Some(u)
}

/// The resources [`Availability`] reports, each with the file that gives it.
pub const RESOURCES: [(&str, &str); 6] = [
    ("cpu", "cpu.stat / cpuacct.usage"),
    ("memory", "memory.current / memory.usage_in_bytes"),
    ("memory_peak", "memory.peak / memory.max_usage_in_bytes"),
    ("tasks", "pids.current"),
    ("io", "io.stat / blkio.throttle.io_service_bytes"),
    ("pressure", "{cpu,memory,io}.pressure (cgroup v2 only)"),
];

/// Which resources a collector could read this scrape, over every cgroup
/// it read: a resource is available when at least one cgroup had its file.
/// Exported as `hostmedic_cgroup_resource_available{collector,resource,reason}`:
/// `1` with `reason=""`, else `0` with `reason="file_absent"` (cgroups were
/// read, none had the file: the controller is not enabled for them, or
/// cgroup v1 for pressure) or `reason="no_cgroup"` (no cgroup directory
/// could be read at all: nothing running, no v2 tree, or the paths lie
/// outside the configured root).
#[derive(Debug, Clone, Default)]
pub struct Availability {
    /// cgroups whose directory existed.
    read: u64,
    /// Per resource of [`RESOURCES`]: cgroups that had it.
    had: [u64; 6],
}

/// `hostmedic_cgroup_resource_available`.
pub const AVAILABLE: &str = "hostmedic_cgroup_resource_available";

impl Availability {
    /// Counts one cgroup read (`usage` all `None`: directory absent, not counted).
    pub fn note(&mut self, u: &Usage) {
        let has = [
            u.cpu_usec.is_some(),
            u.memory_current.is_some(),
            u.memory_peak.is_some(),
            u.tasks.is_some(),
            u.io.is_some(),
            u.pressure.iter().any(Option::is_some),
        ];
        if !has.iter().any(|h| *h) {
            return;
        }
        self.read += 1;
        for (n, h) in self.had.iter_mut().zip(has) {
            *n += u64::from(h);
        }
    }

    /// `(resource, available, reason)` for every resource.
    pub fn report(&self) -> impl Iterator<Item = (&'static str, bool, &'static str)> + '_ {
        RESOURCES.iter().zip(self.had).map(|((r, _), n)| {
            let reason = match (n, self.read) {
                (0, 0) => "no_cgroup",
                (0, _) => "file_absent",
                _ => "",
            };
            (*r, n > 0, reason)
        })
    }

    /// Writes the series for `collector`, and logs (debug) what is missing.
    pub fn write(&self, out: &mut MetricSet, collector: &str) {
        for ((resource, ok, reason), (_, file)) in self.report().zip(RESOURCES) {
            if !ok {
                tracing::debug!(collector, resource, reason, file, "cgroup resource not readable");
            }
            out.gauge(
                AVAILABLE,
                "1 when at least one cgroup read by this collector had the resource's file this scrape; 0 with the reason (file_absent: controller not enabled or cgroup v1; no_cgroup: no cgroup directory readable).",
                &[("collector", collector), ("resource", resource), ("reason", reason)],
                f64::from(u8::from(ok)),
            );
        }
    }
}

/// The series names one collector writes a cgroup's [`Usage`] under
/// (counters without `_total`); `None`: that figure is not exported.
#[derive(Debug, Clone, Copy)]
pub struct SeriesNames {
    pub cpu: &'static str,
    pub memory_current: Option<&'static str>,
    pub memory_peak: Option<&'static str>,
    pub tasks: Option<&'static str>,
    pub io_read: &'static str,
    pub io_written: &'static str,
    /// Labels `resource` (cpu, memory, io) and `kind` (some, full).
    pub pressure: &'static str,
}

/// Writes the figures of `u` that are present, each with `labels` (and
/// `resource`/`kind` on the pressure series). Absent files write nothing.
pub fn write_usage(out: &mut MetricSet, names: &SeriesNames, labels: &[(&'static str, &str)], u: &Usage) {
    if let Some(us) = u.cpu_usec {
        out.counter(
            names.cpu,
            "CPU time used by the cgroup and its descendants (cpu.stat usage_usec; cpuacct.usage on cgroup v1).",
            labels,
            us as f64 / 1e6,
        );
    }
    let gauges = [
        (
            names.memory_current,
            u.memory_current,
            "Memory charged to the cgroup, page cache included (memory.current).",
        ),
        (
            names.memory_peak,
            u.memory_peak,
            "Highest memory charged to the cgroup since it was created (memory.peak, kernel 5.19+).",
        ),
        (names.tasks, u.tasks, "Tasks (threads) in the cgroup (pids.current)."),
    ];
    for (name, v, help) in gauges {
        if let (Some(name), Some(v)) = (name, v) {
            out.gauge(name, help, labels, v as f64);
        }
    }
    if let Some(io) = u.io {
        out.counter(
            names.io_read,
            "Bytes read from block devices by the cgroup, summed over devices (io.stat rbytes; blkio on cgroup v1).",
            labels,
            io.read as f64,
        );
        out.counter(
            names.io_written,
            "Bytes written to block devices by the cgroup, summed over devices (io.stat wbytes; blkio on cgroup v1).",
            labels,
            io.written as f64,
        );
    }
    let mut l: Vec<(&'static str, &str)> = labels.to_vec();
    let n = l.len();
    for (resource, p) in PRESSURE_RESOURCES.iter().zip(&u.pressure) {
        let Some(p) = p else { continue };
        for (kind, line) in p.kinds() {
            l.truncate(n);
            l.extend([("resource", *resource), ("kind", kind)]);
            out.counter(
                names.pressure,
                "Time some (kind=some) or all (kind=full) non-idle tasks of the cgroup were stalled on the resource (PSI total, cgroup v2 only).",
                &l,
                line.total_usec as f64 / 1e6,
            );
        }
    }
}

/// Who owns a process: its systemd unit (and that unit's manager) and its
/// Docker container, from `/proc/<pid>/cgroup`. Each part is `None` when the
/// path names none.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Owner {
    /// `system`, or `user:<name>` (`user:<uid>` when the uid has no passwd
    /// entry) for units of a user manager: the systemd collector's
    /// `manager` label.
    pub manager: Option<String>,
    /// The unit, e.g. `nginx.service`, `session-3.scope`,
    /// `docker-<id>.scope`.
    pub unit: Option<String>,
    /// Full (64 hex) Docker container id.
    pub container_id: Option<String>,
}

/// The owner of process `pid` (blocking; one read of `<procfs>/<pid>/cgroup`);
/// `passwd` names the users of user managers. `None` when the file cannot be
/// read (the process is gone).
pub fn owner(procfs: &Path, pid: i32, passwd: &Passwd) -> Option<Owner> {
    let text = crate::procfs::read_cgroup(procfs, i64::from(pid)).ok()?;
    Some(parse_owner(&text, passwd))
}

/// [`owner`] from the text of `/proc/<pid>/cgroup`. The unit comes from the
/// v2 line, else systemd's named v1 tree (`name=systemd`), else any line;
/// the container from the first line naming one.
pub fn parse_owner(text: &str, passwd: &Passwd) -> Owner {
    let lines = parse_proc_cgroup(text);
    let mut ordered: Vec<&CgroupLine> = Vec::with_capacity(lines.len());
    ordered.extend(lines.iter().filter(|l| l.controllers.is_empty()));
    ordered.extend(lines.iter().filter(|l| l.controllers == "name=systemd"));
    ordered.extend(
        lines
            .iter()
            .filter(|l| !l.controllers.is_empty() && l.controllers != "name=systemd"),
    );
    let mut o = Owner::default();
    for l in &ordered {
        if o.unit.is_none()
            && let Some((manager, unit)) = unit_of_path(l.path, passwd)
        {
            o.manager = Some(manager);
            o.unit = Some(unit);
        }
        if o.container_id.is_none() {
            o.container_id = container_of_path(l.path);
        }
    }
    o
}

/// Unit types that can hold processes in a cgroup.
const PROCESS_UNIT_TYPES: [&str; 6] = ["service", "scope", "slice", "socket", "mount", "swap"];

fn is_unit_name(s: &str) -> bool {
    s.rsplit_once('.')
        .is_some_and(|(stem, ty)| !stem.is_empty() && PROCESS_UNIT_TYPES.contains(&ty))
}

/// `(manager, unit)` of a cgroup path: the first non-slice unit component,
/// and below `user@<uid>.service` the first non-slice unit after it, of the
/// user manager. A path of slices only names its last slice.
fn unit_of_path(path: &str, passwd: &Passwd) -> Option<(String, String)> {
    let manager = "system".to_string();
    let mut last_slice = None;
    let mut comps = path.split('/').filter(|c| !c.is_empty() && *c != "..");
    while let Some(c) = comps.next() {
        if !is_unit_name(c) {
            // A delegated subtree (docker's cgroupfs layout, …): not a unit.
            break;
        }
        if c.ends_with(".slice") {
            last_slice = Some(c);
            continue;
        }
        let uid = c
            .strip_prefix("user@")
            .and_then(|r| r.strip_suffix(".service"))
            .and_then(|u| u.parse::<u32>().ok());
        if let Some(uid) = uid {
            let rest: Vec<&str> = comps.clone().collect();
            if !rest.is_empty() {
                let user = passwd.name(uid).map(str::to_string).unwrap_or_else(|| uid.to_string());
                let sub = rest.join("/");
                if let Some((_, unit)) = unit_of_path(&sub, passwd) {
                    return Some((format!("user:{user}"), unit));
                }
            }
        }
        return Some((manager, c.to_string()));
    }
    last_slice.map(|s| (manager, s.to_string()))
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The Docker container id in a cgroup path: `docker-<id>.scope` (systemd
/// driver) or a bare `<id>` component (`/docker/<id>`, cgroupfs driver or a
/// `--cgroup-parent`).
fn container_of_path(path: &str) -> Option<String> {
    path.split('/').find_map(|c| {
        let id = c
            .strip_prefix("docker-")
            .and_then(|r| r.strip_suffix(".scope"))
            .unwrap_or(c);
        is_container_id(id).then(|| id.to_string())
    })
}

/// Counts of processes per owner, for a bounded owner label set: the `limit`
/// owners with the most processes, by count then name.
pub fn top_owners(counts: &BTreeMap<Owner, u64>, limit: usize) -> Vec<(&Owner, u64)> {
    let mut v: Vec<(&Owner, u64)> = counts.iter().map(|(o, n)| (o, *n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v.truncate(limit);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(p: PathBuf, s: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    }

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn pressure_lines() {
        let p = parse_pressure(
            "some avg10=2.72 avg60=3.26 avg300=8.98 total=3111662556\nfull avg10=0.00 avg60=0.10 avg300=0.00 total=7\n",
        )
        .unwrap();
        assert_eq!(
            p.some,
            Some(PressureLine {
                avg10: 2.72,
                avg60: 3.26,
                avg300: 8.98,
                total_usec: 3111662556
            })
        );
        assert_eq!(p.full.unwrap().total_usec, 7);
        assert_eq!(p.kinds().count(), 2);
        // Old kernels: cpu has no full line.
        let p = parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n").unwrap();
        assert!(p.full.is_none());
        assert_eq!(p.kinds().map(|(k, _)| k).collect::<Vec<_>>(), ["some"]);
        assert!(parse_pressure("").is_none());
        assert!(parse_pressure("some avg10=x avg60=0 avg300=0 total=1\n").is_none());
    }

    #[test]
    fn io_stat_and_blkio() {
        let io = parse_io_stat("8:0 rbytes=100 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n259:0 rbytes=5 wbytes=1\n");
        assert_eq!(io, IoBytes { read: 105, written: 21 });
        assert_eq!(parse_io_stat(""), IoBytes::default());
        let io = parse_blkio("8:0 Read 10\n8:0 Write 4\n8:0 Sync 3\n8:16 Read 1\nTotal 18\n");
        assert_eq!(io, IoBytes { read: 11, written: 4 });
    }

    #[test]
    fn v2_files_present_and_absent() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("system.slice/a.service");
        w(
            d.join("cpu.stat"),
            "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n",
        );
        w(d.join("memory.current"), "4096\n");
        w(d.join("memory.peak"), "8192\n");
        w(d.join("pids.current"), "3\n");
        w(d.join("io.stat"), "8:0 rbytes=7 wbytes=9 rios=1 wios=1\n");
        w(
            d.join("cpu.pressure"),
            "some avg10=1.00 avg60=0.00 avg300=0.00 total=11\n",
        );
        w(
            d.join("io.pressure"),
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=12\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=13\n",
        );
        let u = read_v2(&d);
        assert_eq!(u.cpu_usec, Some(2_500_000));
        assert_eq!(u.memory_current, Some(4096));
        assert_eq!(u.memory_peak, Some(8192));
        assert_eq!(u.tasks, Some(3));
        assert_eq!(u.io, Some(IoBytes { read: 7, written: 9 }));
        assert_eq!(u.pressure[0].unwrap().some.unwrap().total_usec, 11);
        assert!(u.pressure[1].is_none());
        assert_eq!(u.pressure[2].unwrap().full.unwrap().total_usec, 13);
        // Only cpu.stat (a hybrid host's unified tree without controllers).
        let e = t.path().join("system.slice/b.service");
        w(e.join("cpu.stat"), "usage_usec 1\n");
        let u = read_v2(&e);
        assert_eq!(u.cpu_usec, Some(1));
        assert_eq!((u.memory_current, u.tasks, u.io), (None, None, None));
        assert_eq!(read_v2(&t.path().join("gone")), Usage::default());

        let mut a = Availability::default();
        a.note(&read_v2(&d));
        a.note(&read_v2(&e));
        a.note(&Usage::default());
        let r: Vec<_> = a.report().collect();
        assert_eq!(r[0], ("cpu", true, ""));
        assert_eq!(r[2], ("memory_peak", true, ""));
        let mut only_e = Availability::default();
        only_e.note(&read_v2(&e));
        let r: Vec<_> = only_e.report().collect();
        assert_eq!(r[1], ("memory", false, "file_absent"));
        assert_eq!(r[5], ("pressure", false, "file_absent"));
        assert!(
            Availability::default()
                .report()
                .all(|(_, ok, why)| !ok && why == "no_cgroup")
        );
    }

    #[test]
    fn detects_unified_tree() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(Hierarchies::detect(t.path()).unified, None);
        w(t.path().join("unified/cgroup.controllers"), "hugetlb\n");
        assert_eq!(Hierarchies::detect(t.path()).unified, Some(t.path().join("unified")));
        w(t.path().join("cgroup.controllers"), "cpu io memory pids\n");
        let h = Hierarchies::detect(t.path());
        assert_eq!(h.unified.as_deref(), Some(t.path()));
        assert_eq!(
            h.v2_dir("/system.slice/x.service"),
            Some(t.path().join("system.slice/x.service"))
        );
        assert_eq!(h.v2_dir("/"), None, "the root cgroup is the host's");
        assert_eq!(h.v2_dir(""), None);
        assert_eq!(h.v2_dir("/../../system.slice/x.service"), None);
        assert_eq!(h.v1_dir("cpu,cpuacct", "/a"), Some(t.path().join("cpu,cpuacct/a")));
        assert_eq!(h.v1_dir("", "/a"), None);
    }

    #[test]
    fn process_usage_v1_and_v2() {
        let t = tempfile::tempdir().unwrap();
        let (proc_, cg) = (t.path().join("proc"), t.path().join("cgroup"));
        // Hybrid host: v1 controllers plus an (empty-controller) unified tree.
        w(cg.join("unified/cgroup.controllers"), "hugetlb\n");
        let h = Hierarchies::detect(&cg);
        w(
            proc_.join("42/cgroup"),
            "9:name=systemd:/x\n8:pids:/hmd1/abc\n7:blkio:/hmd1/abc\n4:memory:/hmd1/abc\n1:cpu,cpuacct:/hmd1/abc\n0::/hmd1/abc\n",
        );
        w(cg.join("memory/hmd1/abc/memory.usage_in_bytes"), "1000000\n");
        w(cg.join("memory/hmd1/abc/memory.max_usage_in_bytes"), "2000000\n");
        w(
            cg.join("memory/hmd1/abc/memory.stat"),
            "cache 5\ntotal_inactive_file 250000\n",
        );
        w(cg.join("cpu,cpuacct/hmd1/abc/cpuacct.usage"), "3000000000\n");
        w(
            cg.join("blkio/hmd1/abc/blkio.throttle.io_service_bytes_recursive"),
            "8:0 Read 4096\n8:0 Write 8192\nTotal 12288\n",
        );
        w(cg.join("pids/hmd1/abc/pids.current"), "2\n");
        w(cg.join("unified/hmd1/abc/cpu.stat"), "usage_usec 1\n");
        w(
            cg.join("unified/hmd1/abc/memory.pressure"),
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=9\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=4\n",
        );
        let u = process_usage(&proc_, &h, 42).unwrap();
        assert_eq!(u.memory_current, Some(1_000_000));
        assert_eq!(u.memory_peak, Some(2_000_000));
        assert_eq!(u.memory_working_set, Some(750_000));
        assert_eq!(u.cpu_usec, Some(3_000_000), "v1 cpuacct wins over the unified cpu.stat");
        assert_eq!(
            u.io,
            Some(IoBytes {
                read: 4096,
                written: 8192
            })
        );
        assert_eq!(u.tasks, Some(2));
        assert_eq!(u.pressure[1].unwrap().full.unwrap().total_usec, 4);

        // v2 only.
        let cg2 = t.path().join("cg2");
        w(cg2.join("cgroup.controllers"), "cpu io memory pids\n");
        let h2 = Hierarchies::detect(&cg2);
        w(proc_.join("43/cgroup"), "0::/system.slice/docker-def.scope\n");
        let d = cg2.join("system.slice/docker-def.scope");
        w(d.join("memory.current"), "4096\n");
        w(d.join("memory.stat"), "anon 4096\ninactive_file 96\n");
        w(d.join("cpu.stat"), "usage_usec 77\n");
        let u = process_usage(&proc_, &h2, 43).unwrap();
        assert_eq!(
            (u.memory_current, u.memory_working_set, u.cpu_usec),
            (Some(4096), Some(4000), Some(77))
        );
        assert_eq!(u.io, None);
        // Gone, unreadable, outside our namespace, or in the root cgroup.
        assert_eq!(process_usage(&proc_, &h2, 44), None);
        w(proc_.join("45/cgroup"), "4:memory:/gone\n");
        assert_eq!(process_usage(&proc_, &h, 45).unwrap().memory_current, None);
        w(proc_.join("46/cgroup"), "0::/../../system.slice/docker-def.scope\n");
        assert_eq!(process_usage(&proc_, &h2, 46).unwrap(), Usage::default());
        w(proc_.join("47/cgroup"), "0::/\n");
        assert_eq!(process_usage(&proc_, &h2, 47).unwrap(), Usage::default());
    }

    #[test]
    fn working_set_subtracts_inactive_file() {
        let ws = |stat: &str| working_set(1000, |k| keyed(stat, k));
        assert_eq!(ws(""), 1000);
        assert_eq!(ws("inactive_file 300\n"), 700);
        assert_eq!(ws("inactive_file 300\ntotal_inactive_file 400\n"), 600);
        assert_eq!(ws("total_inactive_file 4000\n"), 1000);
    }

    #[test]
    fn owners() {
        let pw = Passwd::parse("medic:x:1000:1000::/home/medic:/bin/sh\n");
        let own = |text: &str| parse_owner(text, &pw);
        let o = |m: Option<&str>, u: Option<&str>, c: Option<&str>| Owner {
            manager: m.map(Into::into),
            unit: u.map(Into::into),
            container_id: c.map(Into::into),
        };
        assert_eq!(
            own("0::/system.slice/nginx.service\n"),
            o(Some("system"), Some("nginx.service"), None)
        );
        // Sub-cgroups of a delegated unit still belong to the unit.
        assert_eq!(
            own("0::/system.slice/app.service/worker/3\n"),
            o(Some("system"), Some("app.service"), None)
        );
        assert_eq!(
            own("0::/user.slice/user-1000.slice/user@1000.service/app.slice/sync.service\n"),
            o(Some("user:medic"), Some("sync.service"), None)
        );
        assert_eq!(
            own("0::/user.slice/user-1001.slice/user@1001.service/init.scope\n"),
            o(Some("user:1001"), Some("init.scope"), None)
        );
        assert_eq!(
            own("0::/user.slice/user-1000.slice/session-3.scope\n"),
            o(Some("system"), Some("session-3.scope"), None)
        );
        assert_eq!(
            own(&format!("0::/system.slice/docker-{ID}.scope\n")),
            o(Some("system"), Some(&format!("docker-{ID}.scope")), Some(ID))
        );
        // cgroupfs driver on a hybrid host: the v2 line is the root, the unit
        // comes from name=systemd, the container from the v1 paths.
        assert_eq!(
            own(&format!("9:name=systemd:/docker/{ID}\n4:memory:/docker/{ID}\n0::/\n")),
            o(None, None, Some(ID))
        );
        assert_eq!(
            own(&format!(
                "9:name=systemd:/system.slice/containerd.service\n4:memory:/docker/{ID}\n0::/\n"
            )),
            o(Some("system"), Some("containerd.service"), Some(ID))
        );
        assert_eq!(own("0::/init.scope\n"), o(Some("system"), Some("init.scope"), None));
        assert_eq!(own("0::/system.slice\n"), o(Some("system"), Some("system.slice"), None));
        assert_eq!(own("0::/\n"), Owner::default());
        assert_eq!(own("garbage\n"), Owner::default());
        // Outside our cgroup namespace the path starts with /..
        assert_eq!(
            own("0::/../../system.slice/cron.service\n"),
            o(Some("system"), Some("cron.service"), None)
        );
        // Upper-case or short hex is not a Docker id.
        assert_eq!(own(&format!("0::/docker/{}\n", ID.to_uppercase())).container_id, None);
        assert_eq!(own("0::/docker/abc\n").container_id, None);

        let t = tempfile::tempdir().unwrap();
        w(t.path().join("7/cgroup"), "0::/system.slice/x.service\n");
        assert_eq!(owner(t.path(), 7, &pw).unwrap().unit.as_deref(), Some("x.service"));
        assert_eq!(owner(t.path(), 8, &pw), None);
    }

    #[test]
    fn top_owners_bounded() {
        let mut m = BTreeMap::new();
        for (u, n) in [("a.service", 1), ("b.service", 5), ("c.service", 5), ("d.service", 2)] {
            m.insert(
                Owner {
                    manager: Some("system".into()),
                    unit: Some(u.into()),
                    container_id: None,
                },
                n,
            );
        }
        let top: Vec<_> = top_owners(&m, 3)
            .into_iter()
            .map(|(o, n)| (o.unit.clone().unwrap(), n))
            .collect();
        assert_eq!(
            top,
            [
                ("b.service".into(), 5),
                ("c.service".into(), 5),
                ("d.service".into(), 2)
            ]
        );
    }
}
