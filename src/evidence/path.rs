//! Evidence about a watched path (`[[paths.watch]]`): its size history as
//! far as this process knows it — the paths collector's measurements since
//! start, a sample per change and hourly marks between (read from the
//! [`Observed`] board), with the configured limit.

use super::Item;
use crate::bytes::ByteSize;
use crate::observed::Observed;

pub fn capture(observed: &Observed, watch: &str) -> Item {
    let mut item = Item::new(format!("path:{watch}"), "path");
    let histories = observed.path_history(watch);
    if histories.is_empty() {
        item.errors
            .push("not measured: no [[paths.watch]] with this name has been measured since start".into());
        return item;
    }
    item.look_further = format!(
        "du -sh {}",
        histories.iter().map(|h| h.path.as_str()).collect::<Vec<_>>().join(" ")
    );
    for h in &histories {
        if let Some(l) = h.limit {
            item.fact("max_size", ByteSize(l).human());
        }
        if let Some(last) = h.samples.back() {
            item.fact(
                &format!("size {}", h.path),
                last.size
                    .map(|s| ByteSize(s).human())
                    .unwrap_or_else(|| "absent or not measured".into()),
            );
        }
        item.section(
            &format!("size history of {} (oldest first)", h.path),
            h.samples
                .iter()
                .map(|s| {
                    format!(
                        "{} {}",
                        crate::time::rfc3339_seconds(s.at),
                        s.size
                            .map(|b| format!("{} ({b} bytes)", ByteSize(b).human()))
                            .unwrap_or_else(|| "absent or not measured".into())
                    )
                })
                .collect(),
            true,
        );
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_and_limit() {
        let w = "evidence-path-test";
        let observed = Observed::default();
        observed.record_path_size(w, "/srv/app.db-wal", Some(8 << 20), 1000.0, Some(1 << 20));
        observed.record_path_size(w, "/srv/app.db-wal", Some(8 << 20), 1010.0, Some(12 << 20));
        let item = capture(&observed, w);
        assert_eq!(item.facts["max_size"], "8MiB");
        assert_eq!(item.facts["size /srv/app.db-wal"], "12MiB");
        let lines = &item.sections[0].lines;
        assert_eq!(lines.len(), 2);
        assert!(lines[1].contains("12MiB"), "{lines:?}");
        assert!(capture(&observed, "never-measured").errors[0].contains("not measured"));
    }
}
