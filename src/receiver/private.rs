//! Owner-only files: the journal, the state checkpoint and the status file
//! hold alert payloads, action output and incident evidence, so the receiver
//! creates them 0600 and the directories it makes for them 0700, whatever
//! the process umask (a run outside systemd's `UMask=0077` would otherwise
//! leave them world-readable). A journal left 0644 by an older version is
//! narrowed to 0600 when it is opened.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every file the receiver writes.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory the receiver creates.
pub const DIR_MODE: u32 = 0o700;

/// Creates `path`'s parent directory (and the missing ones above it) 0700.
/// Directories that already exist keep their mode.
pub fn create_parent(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir),
        None => Ok(()),
    }
}

/// Opens `path` for reading and appending, creating it 0600; an existing
/// file with group or other bits is narrowed to 0600.
pub fn open_append(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)?;
    narrow(&file)?;
    Ok(file)
}

/// Creates (truncating) `path` for writing, 0600.
pub fn create_new(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    narrow(&file)?;
    Ok(file)
}

/// Drops group and other bits from an open file's mode.
fn narrow(file: &File) -> std::io::Result<()> {
    let mode = file.metadata()?.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        file.set_permissions(Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn files_are_0600_and_new_directories_0700_whatever_the_umask() {
        let t = tempfile::tempdir().unwrap();
        let deep = t.path().join("a/b/journal.jsonl");
        create_parent(&deep).unwrap();
        assert_eq!(mode(&t.path().join("a")), DIR_MODE);
        assert_eq!(mode(&t.path().join("a/b")), DIR_MODE);
        drop(open_append(&deep).unwrap());
        assert_eq!(mode(&deep), FILE_MODE);
        let other = t.path().join("a/status.json");
        drop(create_new(&other).unwrap());
        assert_eq!(mode(&other), FILE_MODE);
        // A file an older version left world-readable is narrowed.
        let old = t.path().join("old.jsonl");
        std::fs::write(&old, "x\n").unwrap();
        std::fs::set_permissions(&old, Permissions::from_mode(0o644)).unwrap();
        drop(open_append(&old).unwrap());
        assert_eq!(mode(&old), FILE_MODE);
    }
}
