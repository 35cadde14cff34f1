//! Evidence about a journal directory (a `journal-vacuum` action's
//! subject): its disk use, the part journalctl may vacuum (archived files)
//! and the part it never does (active files), the oldest archived file,
//! the free bytes of its filesystem and its largest files — measured now,
//! as the action measures it ([`crate::journal_files`]), so the evidence
//! before acting and at verification shows the same figures as the
//! outcome's "freed …".

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::Item;
use crate::bytes::ByteSize;
use crate::journal_files;

/// The longest one walk of the directory (the capture's own timeout
/// bounds the whole).
const WALK_WITHIN: Duration = Duration::from_secs(10);

pub async fn capture(dir: &str) -> Item {
    let mut item = Item::new(format!("journal:{dir}"), "journal");
    item.look_further = format!("journalctl --disk-usage --directory={dir}; ls -lS {dir}/*");
    let path = PathBuf::from(dir);
    let root = path.clone();
    let measured =
        tokio::task::spawn_blocking(move || journal_files::measure(&[path], Instant::now() + WALK_WITHIN)).await;
    let u = match measured {
        Ok(Some(u)) => u,
        Ok(None) => {
            item.fact("disk use", "absent (no such directory)");
            return item;
        }
        Err(e) => {
            item.errors.push(format!("measuring task: {e}"));
            return item;
        }
    };
    item.fact("disk use", u.summary());
    item.fact(
        "active files (never vacuumed)",
        ByteSize(u.bytes - u.archived_bytes).human(),
    );
    if let Some(o) = u.oldest_archived {
        item.fact("oldest archived file written", crate::time::rfc3339_seconds(o));
    }
    item.fact("filesystem free", u.free_human());
    item.section(
        &format!("largest files in {dir} (largest first)"),
        u.largest
            .iter()
            .map(|f| {
                format!(
                    "{} {} ({}, written {})",
                    ByteSize(f.bytes).human(),
                    f.path.strip_prefix(&root).unwrap_or(&f.path).display(),
                    if f.archived { "archived" } else { "active" },
                    crate::time::rfc3339_seconds(f.modified)
                )
            })
            .collect(),
        false,
    );
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sizes_the_split_and_the_largest_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("system.journal"), vec![1u8; 16 << 10]).unwrap();
        std::fs::write(d.path().join("system@a-1-2.journal"), vec![1u8; 64 << 10]).unwrap();
        let dir = d.path().display().to_string();
        let item = capture(&dir).await;
        assert_eq!(item.subject, format!("journal:{dir}"));
        assert!(item.errors.is_empty(), "{:?}", item.errors);
        assert!(item.facts["disk use"].contains("in 2 files"), "{:?}", item.facts);
        assert!(item.facts.contains_key("oldest archived file written"));
        let lines = &item.sections[0].lines;
        assert!(
            lines[0].contains("B system@a-1-2.journal (archived"),
            "relative to the directory: {lines:?}"
        );
        assert!(lines[1].contains("system.journal (active"), "{lines:?}");
        let gone = capture(&format!("{dir}/missing")).await;
        assert!(gone.facts["disk use"].starts_with("absent"), "{:?}", gone.facts);
    }
}
