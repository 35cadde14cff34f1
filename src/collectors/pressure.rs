//! `pressure` collector: the host's pressure stall information (PSI) from
//! `<procfs_root>/pressure/{cpu,memory,io}`, a better "is this host
//! overloaded" signal than the load average, which counts tasks blocked on
//! I/O as load and says nothing about memory (scenario S10: a 1-CPU host at
//! load 7.6).
//!
//! Each file has a `some` line (at least one task stalled) and, for memory
//! and io (and cpu since kernel 5.13, where it is 0 at the host level), a
//! `full` line (all non-idle tasks stalled); every line carries the 10 s,
//! 60 s and 300 s averages (percent) and the total stall time in µs. The
//! lines are parsed by the one PSI parser in [`crate::cgroup`], which also
//! reads the per-unit and per-container `*.pressure` files.
//!
//! A kernel without PSI (no `/proc/pressure`, or booted with `psi=0`, where
//! reading fails with `EOPNOTSUPP`) is an absent source, not a failure.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::cgroup::{PRESSURE_RESOURCES, Pressure, parse_pressure};
use crate::collector::{CollectError, Collector};
use crate::metrics::MetricSet;

/// `[pressure]` section: only `enabled`.
pub type Config = super::Switch;

pub struct PressureCollector {
    procfs: PathBuf,
}

impl PressureCollector {
    pub fn new(procfs_root: &Path) -> Self {
        PressureCollector {
            procfs: procfs_root.to_path_buf(),
        }
    }
}

pub const STALLED: &str = "hostmedic_host_pressure_stalled_seconds";
pub const RATIO: &str = "hostmedic_host_pressure_ratio";

/// Why a pressure file, or all three, gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum PressureError {
    /// The file could not be read (absent, or `EOPNOTSUPP` under `psi=0`).
    #[error(transparent)]
    Unreadable(#[from] crate::procfs::ProcError),
    /// The file holds no line the PSI parser reads.
    #[error("{}: no PSI line", .0.display())]
    NoPsiLine(PathBuf),
    /// None of the three files gave pressure: each one's reason.
    #[error("no pressure stall information: {}", joined(.0))]
    NoneRead(Vec<PressureError>),
}

fn joined(errors: &[PressureError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Reads the three files (blocking; three small reads). `Err` with the reason
/// when none can be read; a resource whose file is missing or unparsable is
/// left out (`None`).
fn read(procfs: &Path) -> Result<[Option<Pressure>; 3], PressureError> {
    let dir = procfs.join("pressure");
    let mut errors = Vec::new();
    let read = PRESSURE_RESOURCES.map(|r| {
        let path = dir.join(r);
        match crate::procfs::read_limited(&path, 4096) {
            Ok(raw) => {
                let p = parse_pressure(&String::from_utf8_lossy(&raw));
                if p.is_none() {
                    errors.push(PressureError::NoPsiLine(path));
                }
                p
            }
            Err(e) => {
                errors.push(e.into());
                None
            }
        }
    });
    if read.iter().all(Option::is_none) {
        return Err(PressureError::NoneRead(errors));
    }
    for e in errors {
        tracing::debug!(error = %e, "pressure file skipped");
    }
    Ok(read)
}

/// Writes the series of docs/metrics.md (pressure section).
fn write(out: &mut MetricSet, read: &[Option<Pressure>; 3]) {
    const STALLED_HELP: &str = "Time some (kind=some) or all (kind=full) non-idle tasks of the host were stalled on the resource (/proc/pressure total).";
    const RATIO_HELP: &str = "Share of wall time some (kind=some) or all (kind=full) non-idle tasks were stalled on the resource, averaged by the kernel over the window (/proc/pressure avgN / 100).";
    for (resource, p) in PRESSURE_RESOURCES.iter().zip(read) {
        let Some(p) = p else { continue };
        for (kind, line) in p.kinds() {
            let l = [("resource", *resource), ("kind", kind)];
            out.counter(STALLED, STALLED_HELP, &l, line.total_usec as f64 / 1e6);
            for (window, avg) in [("10s", line.avg10), ("60s", line.avg60), ("300s", line.avg300)] {
                let l = [("resource", *resource), ("kind", kind), ("window", window)];
                out.gauge(RATIO, RATIO_HELP, &l, avg / 100.0);
            }
        }
    }
}

#[async_trait]
impl Collector for PressureCollector {
    fn name(&self) -> &'static str {
        "pressure"
    }

    async fn collect(&self, out: &mut MetricSet) -> Result<(), CollectError> {
        let procfs = self.procfs.clone();
        let read = tokio::task::spawn_blocking(move || read(&procfs))
            .await
            .map_err(CollectError::failed)?
            .map_err(|e| CollectError::Unavailable(e.to_string()))?;
        write(out, &read);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_host_pressure_and_reports_absence() {
        let t = tempfile::tempdir().unwrap();
        let c = PressureCollector::new(t.path());
        let mut out = MetricSet::new();
        match c.collect(&mut out).await {
            Err(CollectError::Unavailable(why)) => assert!(why.contains("pressure/cpu"), "{why}"),
            other => panic!("expected unavailable, got {other:?}"),
        }
        std::fs::create_dir_all(t.path().join("pressure")).unwrap();
        std::fs::write(
            t.path().join("pressure/cpu"),
            "some avg10=2.50 avg60=1.00 avg300=0.50 total=3000000\n",
        )
        .unwrap();
        std::fs::write(
            t.path().join("pressure/memory"),
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=10\nfull avg10=10.00 avg60=0.00 avg300=0.00 total=1500000\n",
        )
        .unwrap();
        let mut out = MetricSet::new();
        c.collect(&mut out).await.unwrap();
        let v = |name: &str, l: &[(&str, &str)]| out.value(name, l);
        assert_eq!(v(STALLED, &[("resource", "cpu"), ("kind", "some")]), Some(3.0));
        assert_eq!(v(STALLED, &[("resource", "cpu"), ("kind", "full")]), None);
        assert_eq!(v(STALLED, &[("resource", "memory"), ("kind", "full")]), Some(1.5));
        assert_eq!(
            v(RATIO, &[("resource", "cpu"), ("kind", "some"), ("window", "10s")]),
            Some(0.025)
        );
        assert_eq!(
            v(RATIO, &[("resource", "memory"), ("kind", "full"), ("window", "10s")]),
            Some(0.1)
        );
        assert_eq!(
            v(STALLED, &[("resource", "io"), ("kind", "some")]),
            None,
            "io file absent"
        );
    }

    #[tokio::test]
    async fn this_kernel() {
        // The machine's own /proc: PSI is either there (then cpu some is
        // exported) or the collector says why not.
        let mut out = MetricSet::new();
        match PressureCollector::new(Path::new("/proc")).collect(&mut out).await {
            Ok(()) => assert!(out.value(STALLED, &[("resource", "cpu"), ("kind", "some")]).is_some()),
            Err(CollectError::Unavailable(_)) => assert!(std::fs::read("/proc/pressure/cpu").is_err()),
            Err(e) => panic!("{e}"),
        }
    }
}
