//! The log follower on real files: start at the end, append, a line split
//! across two writes, rename rotation, copytruncate, a very long line, a file
//! that appears later; and the collector's background follower end to end.

use crate::common;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::eventually;
use hostmedic::collector::Collector;
use hostmedic::collectors::logfile::{Config, FileWatch, Follower, LogfileCollector};
use hostmedic::metrics::MetricSet;
use tokio_util::sync::CancellationToken;

fn watch(file: &Path) -> FileWatch {
    let mut patterns = BTreeMap::new();
    patterns.insert("critical".to_string(), "CRITICAL".to_string());
    patterns.insert("traceback".to_string(), "^Traceback".to_string());
    FileWatch {
        file: file.to_path_buf(),
        patterns,
    }
}

fn counts(f: &Follower) -> (u64, u64) {
    let m: BTreeMap<&str, u64> = f.counts().collect();
    (m["critical"], m["traceback"])
}

fn append(path: &Path, s: &str) {
    let mut f = OpenOptions::new().append(true).create(true).open(path).unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

#[test]
fn starts_at_end_then_counts_appended_and_split_lines() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("bot.log");
    std::fs::write(&p, "CRITICAL old\nTraceback (most recent call last):\n").unwrap();
    let mut f = Follower::new(&watch(&p), 4096).unwrap();
    f.poll();
    assert!(f.readable());
    assert_eq!(counts(&f), (0, 0), "history before start is not counted");

    append(&p, "INFO fine\nCRITICAL db down\nTraceback (most recent call last):\n");
    f.poll();
    assert_eq!(counts(&f), (1, 1));
    f.poll();
    assert_eq!(counts(&f), (1, 1), "a poll with nothing new counts nothing");

    // One line written in two pieces, polled in between: counted once.
    append(&p, "2026-11-22 CRITI");
    f.poll();
    assert_eq!(counts(&f), (1, 1));
    append(&p, "CAL split line\n");
    f.poll();
    assert_eq!(counts(&f), (2, 1));

    // CRLF and a line matching both patterns.
    append(&p, "Traceback CRITICAL\r\n");
    f.poll();
    assert_eq!(counts(&f), (3, 2));
    assert_eq!(f.last_error(), None);
}

#[test]
fn follows_rename_rotation_without_recounting() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("app.log");
    std::fs::write(&p, "").unwrap();
    let mut f = Follower::new(&watch(&p), 4096).unwrap();
    f.poll();

    // The writer keeps its fd across the rename, as a daemon does until HUP.
    let mut writer = OpenOptions::new().append(true).open(&p).unwrap();
    writer.write_all(b"CRITICAL one\n").unwrap();
    f.poll();
    assert_eq!(counts(&f), (1, 0));

    writer
        .write_all(b"CRITICAL two, before rotation\nCRITICAL three, unterminated")
        .unwrap();
    std::fs::rename(&p, d.path().join("app.log.1")).unwrap();
    // Path missing: the old file is still read to its end.
    f.poll();
    assert!(!f.readable());
    assert_eq!(counts(&f), (2, 0), "complete lines of the old file");
    writer.write_all(b" late\n").unwrap();
    drop(writer);

    // New file appears: the old file is finished first, the new one read from 0.
    std::fs::write(&p, "CRITICAL in new file\n").unwrap();
    f.poll();
    assert!(f.readable());
    assert_eq!(counts(&f), (4, 0));
    f.poll();
    assert_eq!(counts(&f), (4, 0));

    // Rotation in one go (rename + create between two polls), with an
    // unterminated last line in the old file: counted once, at the switch.
    append(&p, "CRITICAL five\nCRITICAL six, no newline");
    std::fs::rename(&p, d.path().join("app.log.2")).unwrap();
    std::fs::write(&p, "Traceback in newest\n").unwrap();
    f.poll();
    assert_eq!(counts(&f), (6, 1));
    f.poll();
    assert_eq!(counts(&f), (6, 1));
}

#[test]
fn handles_copytruncate() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.log");
    std::fs::write(&p, "").unwrap();
    let mut f = Follower::new(&watch(&p), 4096).unwrap();
    f.poll();
    append(&p, "CRITICAL a\nCRITICAL b\nCRITICAL c\n");
    f.poll();
    assert_eq!(counts(&f), (3, 0));

    // Truncate in place (same inode) and write less than before.
    File::create(&p).unwrap();
    append(&p, "CRITICAL d\n");
    f.poll();
    assert_eq!(counts(&f), (4, 0), "the new content is read from offset 0");
    f.poll();
    assert_eq!(counts(&f), (4, 0));
    append(&p, "CRITICAL e\n");
    f.poll();
    assert_eq!(counts(&f), (5, 0));
}

#[test]
fn very_long_line_counts_once_with_a_capped_buffer() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("long.log");
    std::fs::write(&p, "").unwrap();
    let mut f = Follower::new(&watch(&p), 1024).unwrap();
    f.poll();
    // 3 MiB line (longer than the read chunk and the line cap), written in
    // three pieces with polls in between; the pattern is in its first bytes.
    let piece = "x".repeat(1024 * 1024);
    append(&p, &format!("CRITICAL {piece}"));
    f.poll();
    append(&p, &piece);
    f.poll();
    assert_eq!(f.pending_bytes(), 1024, "the held line is capped");
    append(&p, &format!("{piece} CRITICAL again\nCRITICAL short\n"));
    f.poll();
    assert_eq!(counts(&f), (2, 0), "the long line once, then the short one");

    // A long line whose only match lies beyond the cap is not counted, and the
    // following line is unaffected (the buffer was reset).
    append(&p, &format!("{piece}CRITICAL\nTraceback x\n"));
    f.poll();
    assert_eq!(counts(&f), (2, 1));
}

#[test]
fn missing_file_is_read_from_its_beginning_when_it_appears() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("later.log");
    let mut f = Follower::new(&watch(&p), 4096).unwrap();
    f.poll();
    assert!(!f.readable());
    assert!(f.last_error().unwrap().contains("later.log"), "{:?}", f.last_error());
    f.poll();
    std::fs::write(&p, "CRITICAL first line of a new file\n").unwrap();
    f.poll();
    assert!(f.readable());
    assert_eq!(counts(&f), (1, 0));
}

#[tokio::test]
async fn collector_follows_in_the_background() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("svc.log");
    std::fs::write(&p, "CRITICAL before start\n").unwrap();
    let missing = d.path().join("missing.log");
    let cfg = Config {
        interval: Duration::from_millis(50),
        watch: vec![watch(&p), watch(&missing)],
        ..Config::default()
    };
    cfg.validate("logfile").unwrap();
    let c = Arc::new(LogfileCollector::new(&cfg).unwrap());
    let stop = CancellationToken::new();
    let bg = tokio::spawn(c.clone().background(stop.clone()));
    let file = p.display().to_string();
    let scrape = || async {
        let mut m = MetricSet::new();
        c.collect(&mut m).await.unwrap();
        m
    };
    eventually(Duration::from_secs(10), "first poll", || async {
        scrape()
            .await
            .value("hostmedic_logfile_readable", &[("file", &file)])
            .filter(|v| *v == 1.0)
    })
    .await;
    let m = scrape().await;
    let missing_s = missing.display().to_string();
    assert_eq!(
        m.value("hostmedic_logfile_readable", &[("file", &missing_s)]),
        Some(0.0)
    );
    for (f, pat) in [(&file, "critical"), (&file, "traceback"), (&missing_s, "critical")] {
        let l = [("file", f.as_str()), ("pattern", pat)];
        assert_eq!(m.value("hostmedic_logfile_matched_lines", &l), Some(0.0), "{l:?}");
    }

    append(&p, "CRITICAL x\nTraceback y\nCRITICAL z\n");
    eventually(Duration::from_secs(10), "appended lines counted", || async {
        let m = scrape().await;
        let crit = m.value(
            "hostmedic_logfile_matched_lines",
            &[("file", &file), ("pattern", "critical")],
        )?;
        let tb = m.value(
            "hostmedic_logfile_matched_lines",
            &[("file", &file), ("pattern", "traceback")],
        )?;
        ((crit, tb) == (2.0, 1.0)).then_some(())
    })
    .await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), bg).await.unwrap().unwrap();
}

#[test]
fn validation_names_keys() {
    let mut cfg = Config::default();
    let mut w = watch(Path::new("/var/log/x.log"));
    w.patterns.insert("bad".into(), "(".into());
    cfg.watch.push(w);
    let e = cfg.validate("logfile").unwrap_err().to_string();
    assert!(e.contains("logfile.watch[0].patterns.bad"), "{e}");
    cfg.watch[0].patterns.remove("bad");
    cfg.watch.push(watch(Path::new("/var/log/x.log")));
    let e = cfg.validate("logfile").unwrap_err().to_string();
    assert!(e.contains("logfile.watch[1].file"), "{e}");
}
