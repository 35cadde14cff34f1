//! Disk use as `du` counts it and free space as `df` shows it, written once
//! for the `disk_usage` collector, the `journal-vacuum` action and the
//! journal evidence, so the figures an alert names, the bytes an action
//! says it freed and the evidence of an incident are the same measure:
//!
//! - [`walk_files`]: every file below a directory, never leaving its
//!   filesystem nor following symlinks, a file with several hard links once,
//!   within a deadline and an entry count; [`allocated`] is what one takes
//!   (allocated blocks, `st_blocks × 512`: a sparse file counts for what it
//!   occupies, a preallocated one for all it reserved);
//! - [`free_bytes`]: what the filesystem holding a path has left for
//!   unprivileged writers (`statvfs`'s `f_bavail × f_frsize`, `df`'s
//!   Avail, the `host` collector's `avail_bytes`).
//!
//! A leaf of blocking calls: callers run them off the runtime
//! (`spawn_blocking`).

use std::collections::HashSet;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

/// Calls `visit` with every entry below `root` that is not a directory
/// (and `root` itself when it is a file), each inode once. Stops after
/// `max_entries` entries or at `deadline`; returns whether the walk
/// finished (when not, what was visited is a lower bound). Entries that
/// vanish or cannot be read during the walk are skipped.
pub fn walk_files(
    root: &Path,
    deadline: Instant,
    max_entries: u64,
    mut visit: impl FnMut(&walkdir::DirEntry, &Metadata),
) -> bool {
    let mut linked: HashSet<(u64, u64)> = HashSet::new();
    let walker = walkdir::WalkDir::new(root).follow_links(false).same_file_system(true);
    for (n, entry) in walker.into_iter().enumerate() {
        if n as u64 >= max_entries || (n % 256 == 0 && Instant::now() > deadline) {
            return false;
        }
        let Ok(entry) = entry else { continue };
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() || (meta.nlink() > 1 && !linked.insert((meta.dev(), meta.ino()))) {
            continue;
        }
        visit(&entry, &meta);
    }
    true
}

/// The bytes a file occupies on disk (allocated blocks, as `du`).
pub fn allocated(meta: &Metadata) -> u64 {
    meta.blocks() * 512
}

/// Bytes free for unprivileged writers on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> nix::Result<u64> {
    let st = nix::sys::statvfs::statvfs(path)?;
    Ok(st.blocks_available().saturating_mul(st.fragment_size()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn files_once_each_with_their_blocks() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::write(d.path().join("a/b/f"), vec![1u8; 100_000]).unwrap();
        std::fs::hard_link(d.path().join("a/b/f"), d.path().join("a/g")).unwrap();
        std::fs::write(d.path().join("h"), b"x").unwrap();
        let (mut files, mut bytes) = (0, 0);
        let complete = walk_files(d.path(), Instant::now() + Duration::from_secs(10), 100, |_, m| {
            files += 1;
            bytes += allocated(m);
        });
        assert!(complete);
        assert_eq!(files, 2, "the hard link is counted once");
        assert!((100_000..200_000).contains(&bytes), "{bytes}");
        assert!(!walk_files(
            d.path(),
            Instant::now() + Duration::from_secs(10),
            2,
            |_, _| {}
        ));
    }

    #[test]
    fn free_bytes_are_what_df_calls_avail() {
        let d = tempfile::tempdir().unwrap();
        let df = std::process::Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(d.path())
            .output()
            .unwrap();
        let df: u64 = String::from_utf8_lossy(&df.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df's Avail");
        let ours = free_bytes(d.path()).unwrap();
        // Other writers share the filesystem: equal within a few MiB.
        assert!(ours.abs_diff(df) < 64 << 20, "statvfs {ours}, df {df}");
        assert!(free_bytes(&d.path().join("missing")).is_err());
    }
}
