//! Reading procfs under a configurable root (`global.procfs_root`): process
//! stat, start time, command line, owner and cgroup. A leaf shared by the
//! processes collector, the kill action and the cgroup leaf;
//! it imports nothing of them.
//!
//! Hand-written rather than the `procfs` crate: the crate can open processes
//! under another root (`Process::new_with_root`), but its boot time and
//! clock-tick helpers read the fixed `/proc`, and the start time must be one
//! derivation shared by the metric and the kill action. The few files read
//! here are small with a stable format, and each read is bounded.
//!
//! Start time in Unix seconds is `btime + starttime / CLK_TCK`, where `btime`
//! is the `btime` line of `<procfs_root>/stat` and `starttime` is field 22 of
//! `<procfs_root>/<pid>/stat` (clock ticks since boot). [`start_time_seconds`]
//! is the single function computing it; the kill action uses it (or
//! [`same_process`], which allows for a wall-clock step) to re-check a pid.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

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

pub fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ProcError + '_ {
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

pub fn page_size() -> Result<u64, ProcError> {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
        Ok(Some(v)) if v > 0 => Ok(v as u64),
        _ => Err(ProcError::Sysconf("_SC_PAGESIZE")),
    }
}

/// Reads at most `limit` bytes of a file.
pub fn read_limited(path: &Path, limit: usize) -> Result<Vec<u8>, ProcError> {
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

/// The fields of `/proc/<pid>/stat` hostmedic uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    /// Command name (field 2, without the parentheses).
    pub comm: String,
    /// State letter (R, S, D, Z, …).
    pub state: char,
    /// Process group (field 5).
    pub pgrp: i32,
    /// Session (field 6).
    pub session: i32,
    /// utime + stime, in clock ticks (the process itself, not its children).
    pub cpu_ticks: u64,
    /// Start time in clock ticks since boot (field 22).
    pub start_ticks: u64,
    /// Resident set size in pages (field 24).
    pub rss_pages: u64,
    /// Number of threads (field 20).
    pub threads: u64,
    /// Virtual memory size in bytes (field 23).
    pub vsize_bytes: u64,
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
        pgrp: rest.get(2)?.parse().ok()?,
        session: rest.get(3)?.parse().ok()?,
        cpu_ticks: field(14)? + field(15)?,
        start_ticks: field(22)?,
        rss_pages: field(24)?,
        threads: field(20)?,
        vsize_bytes: field(23)?,
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

pub fn ticks_to_unix(btime: u64, start_ticks: u64, hz: u64) -> f64 {
    btime as f64 + start_ticks as f64 / hz as f64
}

/// Longest command line read: more is cut, so a process cannot make a
/// reader allocate without bound.
pub const CMDLINE_LIMIT: usize = 32 * 1024;

/// Reads `<procfs>/<pid>/cmdline` (at most [`CMDLINE_LIMIT`] bytes), arguments
/// joined by spaces, trailing whitespace trimmed; empty when unreadable or a
/// kernel thread.
pub fn read_cmdline(procfs: &Path, pid: i32) -> String {
    let path = procfs.join(pid.to_string()).join("cmdline");
    let raw = read_limited(&path, CMDLINE_LIMIT).unwrap_or_default();
    let mut s = String::from_utf8_lossy(&raw).replace('\0', " ");
    let trimmed = s.trim_end().len();
    s.truncate(trimmed);
    s
}

/// Effective uid from `<procfs>/<pid>/status` (the user `ps` shows).
pub fn read_euid(procfs: &Path, pid: i32) -> Option<u32> {
    let raw = read_limited(&procfs.join(pid.to_string()).join("status"), 64 * 1024).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let line = text.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Longest `<procfs>/<pid>/cgroup` read (one line per hierarchy).
const CGROUP_LIMIT: usize = 64 * 1024;

/// The text of `<procfs>/<pid>/cgroup` (at most 64 KiB): one
/// `id:controllers:path` line per hierarchy.
pub fn read_cgroup(procfs: &Path, pid: i64) -> Result<String, ProcError> {
    let raw = read_limited(&procfs.join(pid.to_string()).join("cgroup"), CGROUP_LIMIT)?;
    String::from_utf8(raw).map_err(|_| ProcError::Format {
        path: procfs.join(pid.to_string()).join("cgroup"),
        what: "not UTF-8",
    })
}

/// This boot's identity, `<procfs>/sys/kernel/random/boot_id` (start times
/// in clock ticks only compare within one boot).
pub fn boot_id(procfs: &Path) -> Result<String, ProcError> {
    let raw = read_limited(&procfs.join("sys/kernel/random/boot_id"), 64)?;
    Ok(String::from_utf8_lossy(&raw).trim().to_string())
}

/// The live members of process group `pgid` in session `session` that
/// started at or after `since_ticks` (clock ticks since boot): what is left
/// of a group whose leader started then. Zombies are not counted (they are
/// dead; their new parent reaps them).
pub fn group_members(procfs: &Path, pgid: i32, session: i32, since_ticks: u64) -> Result<Vec<ProcStat>, ProcError> {
    Ok(pids(procfs)?
        .into_iter()
        .filter_map(|pid| read_stat(procfs, pid).ok())
        .filter(|s| {
            s.pgrp == pgid && s.session == session && s.start_ticks >= since_ticks && !matches!(s.state, 'Z' | 'X')
        })
        .collect())
}

/// The pids listed under `procfs` (its numeric entries), in directory order.
pub fn pids(procfs: &Path) -> Result<Vec<i32>, ProcError> {
    let rd = std::fs::read_dir(procfs).map_err(io_err(procfs))?;
    Ok(rd
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .collect())
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
        assert_eq!((s.pgrp, s.session), (4242, 4242));
        assert_eq!(s.cpu_ticks, 300);
        assert_eq!(s.start_ticks, 123456);
        assert_eq!(s.rss_pages, 321);
        assert_eq!(s.threads, 1);
        assert_eq!(s.vsize_bytes, 10000000);
        assert!(parse_stat("12 (x) S 1 2").is_none());
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
}
