//! A journal directory's files as journald names them, measured as `du`
//! measures them ([`crate::du`]): the proof of what the `journal-vacuum`
//! action freed (measured before and after), the journal evidence of an
//! incident, and the `disk_usage` collector's default journal directories.
//!
//! journald appends to its *active* files (`system.journal`,
//! `user-<uid>.journal`); a full or rotated one is renamed to an *archived*
//! file, `system@<seqnum id>-<first seqnum>-<first time>.journal` (or
//! `…journal~` when journald found it unclean). `journalctl --vacuum-size`
//! and `--vacuum-time` remove archived files only, oldest first, and never
//! an active one, whatever its size: the split is made here by name, as
//! journalctl's own vacuum makes it.
//!
//! A leaf of blocking calls: callers run [`measure`] off the runtime.

use std::path::PathBuf;
use std::time::{Instant, UNIX_EPOCH};

use crate::bytes::ByteSize;
use crate::du;

/// journald's own directories: persistent, then volatile (the ones
/// `journalctl` without `--directory` reads and vacuums).
pub const DEFAULT_DIRS: [&str; 2] = ["/var/log/journal", "/run/log/journal"];

/// Most entries one measure walks (a journal directory holds a few hundred
/// files at most).
const MAX_ENTRIES: u64 = 100_000;

/// Most files kept in [`Usage::largest`].
pub const LARGEST: usize = 10;

/// One file of a journal directory.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub path: PathBuf,
    /// Allocated bytes, as `du`.
    pub bytes: u64,
    /// Last modified (Unix seconds): for an archived file, about the time
    /// of its newest entry.
    pub modified: f64,
    pub archived: bool,
}

/// What the journal directories hold, and the room left beside them.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// The directories measured (those of the list that exist).
    pub dirs: Vec<PathBuf>,
    /// Every file's allocated bytes, as `du -s` of the directories.
    pub bytes: u64,
    pub files: usize,
    /// The part `journalctl --vacuum-*` may remove.
    pub archived_bytes: u64,
    pub archived_files: usize,
    /// The oldest archived file's modification time (Unix seconds).
    pub oldest_archived: Option<f64>,
    /// The [`LARGEST`] largest files, largest first.
    pub largest: Vec<File>,
    /// False when the walk was cut short (the figures are lower bounds).
    pub complete: bool,
    /// Bytes free on the filesystem of the first directory.
    pub free: Result<u64, nix::Error>,
}

/// An archived journal file (journalctl may vacuum it) rather than an
/// active one.
pub fn is_archived(name: &str) -> bool {
    name.ends_with(".journal~") || (name.ends_with(".journal") && name.contains('@'))
}

/// Measures those of `dirs` that exist, each walk within `deadline`;
/// `None` when none exists.
pub fn measure(dirs: &[PathBuf], deadline: Instant) -> Option<Usage> {
    let dirs: Vec<PathBuf> = dirs.iter().filter(|d| d.is_dir()).cloned().collect();
    let first = dirs.first()?;
    let mut usage = Usage {
        free: du::free_bytes(first),
        dirs: Vec::new(),
        bytes: 0,
        files: 0,
        archived_bytes: 0,
        archived_files: 0,
        oldest_archived: None,
        largest: Vec::new(),
        complete: true,
    };
    let mut all = Vec::new();
    for dir in &dirs {
        usage.complete &= du::walk_files(dir, deadline, MAX_ENTRIES, |entry, meta| {
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0.0, |d| d.as_secs_f64());
            all.push(File {
                path: entry.path().to_path_buf(),
                bytes: du::allocated(meta),
                modified,
                archived: is_archived(&entry.file_name().to_string_lossy()),
            });
        });
    }
    for f in &all {
        usage.bytes += f.bytes;
        usage.files += 1;
        if f.archived {
            usage.archived_bytes += f.bytes;
            usage.archived_files += 1;
            usage.oldest_archived = Some(usage.oldest_archived.map_or(f.modified, |o: f64| o.min(f.modified)));
        }
    }
    all.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
    all.truncate(LARGEST);
    usage.largest = all;
    usage.dirs = dirs;
    Some(usage)
}

/// `1 archived file`, `3 archived files`.
pub fn files(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

impl Usage {
    /// `12.5MiB in 9 files, 10MiB of them in 8 archived files`.
    pub fn summary(&self) -> String {
        let cut = if self.complete {
            ""
        } else {
            " (walk cut short: at least)"
        };
        format!(
            "{} in {}, {} of them in {}{cut}",
            ByteSize(self.bytes).human(),
            files(self.files, "file"),
            ByteSize(self.archived_bytes).human(),
            files(self.archived_files, "archived file")
        )
    }

    /// The free bytes for people: `3.2GiB`, or why they are not known.
    pub fn free_human(&self) -> String {
        match self.free {
            Ok(b) => ByteSize(b).human(),
            Err(e) => format!("unknown (statvfs: {e})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn archived_files_are_told_by_name() {
        for archived in [
            "system@0f3c2a8e4d6b4a1c9e2f7d5b3a1c0e9f-0000000000000001-0005f1e2d3c4b5a6.journal",
            "user-1000@0f3c2a8e4d6b4a1c9e2f7d5b3a1c0e9f-00000000000003e8-0005f1e2d3c4b5a6.journal",
            "system@0005f1e2d3c4b5a6-1a2b3c4d5e6f7a8b.journal~",
        ] {
            assert!(is_archived(archived), "{archived}");
        }
        for active in [
            "system.journal",
            "user-1000.journal",
            "system.journal.tmp",
            "notes@x.txt",
        ] {
            assert!(!is_archived(active), "{active}");
        }
    }

    #[test]
    fn measures_what_exists_and_splits_archived_from_active() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("journal/0123456789abcdef0123456789abcdef");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("system.journal"), vec![1u8; 64 * 1024]).unwrap();
        std::fs::write(dir.join("system@a-1-2.journal"), vec![1u8; 256 * 1024]).unwrap();
        std::fs::write(dir.join("system@b-3-4.journal"), vec![1u8; 128 * 1024]).unwrap();
        let old = std::time::SystemTime::now() - Duration::from_secs(30 * 86400);
        std::fs::File::options()
            .write(true)
            .open(dir.join("system@a-1-2.journal"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let dirs = [d.path().join("missing"), d.path().join("journal")];
        let u = measure(&dirs, Instant::now() + Duration::from_secs(10)).unwrap();
        assert_eq!(u.dirs, vec![d.path().join("journal")]);
        assert_eq!((u.files, u.archived_files), (3, 2));
        assert!(u.bytes >= 448 * 1024 && u.archived_bytes >= 384 * 1024, "{u:?}");
        assert!(u.bytes > u.archived_bytes);
        let oldest = u.oldest_archived.unwrap();
        let want = old.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        assert!((oldest - want).abs() < 2.0, "{oldest} vs {want}");
        assert_eq!(u.largest[0].path, dir.join("system@a-1-2.journal"));
        assert!(u.free.is_ok() && u.complete);
        assert!(u.summary().contains("in 3 files") && u.summary().contains("in 2 archived files"));
        assert_eq!(measure(&dirs[..1], Instant::now() + Duration::from_secs(10)), None);
    }
}
