//! What the background collectors last saw, kept for the receiver's
//! evidence: the size history of each watched path (`paths`) and the
//! over-limit objects of each LFS repository (`git_lfs`).
//!
//! Why a leaf: an incident about a watched file or an LFS repository is best
//! explained by the very measurements its alert was computed from, but the
//! receiver must not import a collector. Both sides hold an [`Observed`]
//! handle to one board instead: the collectors publish after every
//! background scan, the evidence step reads. The application creates one
//! at start-up and hands it to the collector builder and to the receiver,
//! so who shares it shows in their signatures. It is bounded: [`PATH_HISTORY`] samples per watched path, [`MAX_PATHS`] paths,
//! [`MAX_REPOS`] repositories, the LFS list as bounded as the collector's
//! own series (`git_lfs.max_series_per_repo`). A reload that rebuilds a
//! collector keeps what was seen; a path or repository no longer watched
//! drops out after its collector's next publication.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Size samples kept per watched path (a change or a new hour each).
pub const PATH_HISTORY: usize = 48;
/// Watched paths remembered (glob watches can match many).
pub const MAX_PATHS: usize = 1024;
/// LFS repositories remembered.
pub const MAX_REPOS: usize = 256;

/// One size measurement of a watched path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizeSample {
    /// Unix seconds of the measurement.
    pub at: f64,
    /// Bytes; `None`: absent, or the walk was cut short.
    pub size: Option<u64>,
}

/// A watched path's samples, oldest first, and its limit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PathHistory {
    pub watch: String,
    pub path: String,
    pub limit: Option<u64>,
    pub samples: VecDeque<SizeSample>,
}

/// One LFS object over the remote's limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LfsObject {
    pub oid: String,
    pub size: u64,
    /// HEAD paths whose pointer names it (empty: none).
    pub paths: Vec<String>,
}

/// What the last scan of one repository found.
#[derive(Debug, Clone, PartialEq)]
pub struct LfsReport {
    /// Unix seconds of the scan.
    pub scanned_at: f64,
    pub limit: u64,
    /// Objects over the limit (total, not only those listed).
    pub over_limit: u64,
    /// The largest of them, largest first.
    pub objects: Vec<LfsObject>,
    /// Why the repository could not be scanned (then `objects` is empty).
    pub error: Option<String>,
}

#[derive(Default)]
struct Board {
    /// By `(watch, path)`.
    paths: BTreeMap<(String, String), PathHistory>,
    /// By repository path as the collector labels it.
    lfs: BTreeMap<String, LfsReport>,
}

/// A handle to the board; clones share it.
#[derive(Clone, Default)]
pub struct Observed {
    board: Arc<Mutex<Board>>,
}

impl std::fmt::Debug for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observed").finish_non_exhaustive()
    }
}

impl Observed {
    /// Records one measurement of `path` (watch `watch`). A sample equal in
    /// size to the last one only replaces it when the last is less than an
    /// hour old, so the history shows changes and, between them, hourly marks.
    pub fn record_path_size(&self, watch: &str, path: &str, limit: Option<u64>, at: f64, size: Option<u64>) {
        let mut b = crate::sync::lock(&self.board);
        let key = (watch.to_string(), path.to_string());
        if !b.paths.contains_key(&key) && b.paths.len() >= MAX_PATHS {
            return;
        }
        let h = b.paths.entry(key).or_insert_with(|| PathHistory {
            watch: watch.to_string(),
            path: path.to_string(),
            ..PathHistory::default()
        });
        h.limit = limit;
        let sample = SizeSample { at, size };
        match h.samples.back_mut() {
            // The same size again: keep the first time it was seen, unless an
            // hour has passed (the history then shows it held).
            Some(last) if last.size == size && at - last.at < 3600.0 => {}
            _ => h.samples.push_back(sample),
        }
        while h.samples.len() > PATH_HISTORY {
            h.samples.pop_front();
        }
    }

    /// Forgets the paths of `watch` not in `keep` (a glob that matches fewer
    /// files now, a watch removed by a reload).
    pub fn retain_paths(&self, keep: &dyn Fn(&str, &str) -> bool) {
        crate::sync::lock(&self.board).paths.retain(|(w, p), _| keep(w, p));
    }

    /// The histories of every path of `watch` (a glob watch has several).
    pub fn path_history(&self, watch: &str) -> Vec<PathHistory> {
        crate::sync::lock(&self.board)
            .paths
            .values()
            .filter(|h| h.watch == watch)
            .cloned()
            .collect()
    }

    /// Publishes the scan of every repository the git_lfs collector watches;
    /// repositories not in `reports` are forgotten.
    pub fn publish_lfs(&self, reports: Vec<(String, LfsReport)>) {
        let mut b = crate::sync::lock(&self.board);
        b.lfs = reports.into_iter().take(MAX_REPOS).collect();
    }

    /// The last scan of `repo`, when the collector watches it.
    pub fn lfs_report(&self, repo: &str) -> Option<LfsReport> {
        crate::sync::lock(&self.board).lfs.get(repo).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_history_keeps_changes_and_hourly_marks_bounded() {
        let o = Observed::default();
        let w = "observed-test-history";
        o.record_path_size(w, "/a", Some(10), 100.0, Some(1));
        o.record_path_size(w, "/a", Some(10), 160.0, Some(1));
        o.record_path_size(w, "/a", Some(10), 220.0, Some(5));
        o.record_path_size(w, "/a", Some(10), 100.0 + 4000.0, Some(5));
        let h = o.path_history(w);
        assert_eq!(h.len(), 1);
        let sizes: Vec<(f64, Option<u64>)> = h[0].samples.iter().map(|s| (s.at, s.size)).collect();
        assert_eq!(sizes, [(100.0, Some(1)), (220.0, Some(5)), (4100.0, Some(5))]);
        for i in 0..(PATH_HISTORY as u64 * 2) {
            o.record_path_size(w, "/a", None, 5000.0 + i as f64, Some(i));
        }
        let h = o.path_history(w);
        assert_eq!(h[0].samples.len(), PATH_HISTORY);
        assert_eq!(h[0].samples.back().unwrap().size, Some(PATH_HISTORY as u64 * 2 - 1));
        o.retain_paths(&|watch, _| watch != w);
        assert!(o.path_history(w).is_empty());
    }
}
