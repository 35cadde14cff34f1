//! Evidence about an LFS repository: the objects over the remote's size
//! limit with the HEAD paths whose pointers name them, as the git_lfs
//! collector's last background scan found them (read from the
//! [`Observed`] board: the facts the alert was computed from,
//! without scanning the store again or importing the collector).

use super::Item;
use crate::bytes::ByteSize;
use crate::observed::Observed;

pub fn capture(observed: &Observed, repo: &str) -> Item {
    let mut item = Item::new(format!("lfs:{repo}"), "lfs");
    item.look_further = format!("git -C {repo} lfs ls-files --size; git -C {repo} log --stat -3");
    let Some(r) = observed.lfs_report(repo) else {
        item.errors
            .push("not scanned: the git_lfs collector does not watch this repository (git_lfs.repos)".into());
        return item;
    };
    item.fact("scanned", crate::time::rfc3339_seconds(r.scanned_at));
    item.fact("size_limit", ByteSize(r.limit).human());
    if let Some(e) = r.error {
        item.errors.push(format!("scan: {e}"));
        return item;
    }
    item.fact("objects_over_limit", r.over_limit);
    item.section(
        "objects over the limit (largest first)",
        r.objects
            .iter()
            .map(|o| {
                let paths = if o.paths.is_empty() {
                    "no HEAD path names it".to_string()
                } else {
                    o.paths.join(", ")
                };
                format!("{paths}: {} (oid {})", ByteSize(o.size).human(), o.oid)
            })
            .collect(),
        false,
    );
    item
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::{LfsObject, LfsReport};

    #[test]
    fn names_paths_and_sizes_of_offending_objects() {
        let repo = "/evidence-test/backup";
        let observed = Observed::default();
        observed.publish_lfs(vec![(
            repo.to_string(),
            LfsReport {
                scanned_at: 1.0,
                limit: 2 << 30,
                over_limit: 1,
                objects: vec![LfsObject {
                    oid: "ab".repeat(32),
                    size: 3 << 30,
                    paths: vec!["snapshots/2026-11-21.tar".into()],
                }],
                error: None,
            },
        )]);
        let item = capture(&observed, repo);
        let line = &item.sections[0].lines[0];
        assert!(line.starts_with("snapshots/2026-11-21.tar: 3GiB"), "{line}");
        assert_eq!(item.facts["objects_over_limit"], "1");
        let unknown = capture(&observed, "/elsewhere");
        assert!(unknown.errors[0].contains("git_lfs.repos"));
    }
}
