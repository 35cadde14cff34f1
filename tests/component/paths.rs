//! The paths collector on a real file system through the in-process server:
//! a growing file, a growing directory, a glob, a missing path, and the
//! configured limit, each visible after the next background measurement.

use crate::common;

fn l<'a>(watch: &'a str, p: &'a str) -> [(&'a str, &'a str); 2] {
    [("watch", watch), ("path", p)]
}

use std::time::Duration;

use common::config::TestConfig;
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn growth_of_files_and_directories_shows_in_the_next_scan() {
    let t = tempfile::tempdir().unwrap();
    let wal = t.path().join("db.sqlite-wal");
    std::fs::write(&wal, vec![1u8; 1000]).unwrap();
    let spool = t.path().join("spool");
    std::fs::create_dir_all(spool.join("deep/er")).unwrap();
    std::fs::write(spool.join("deep/er/a"), vec![0u8; 300]).unwrap();
    std::fs::write(t.path().join("one.log"), "abc").unwrap();
    let cfg = TestConfig::new()
        .disable(&["hwmon"])
        .section("paths", |p| {
            p.set("scan_interval", "200ms")
                .push("watch", |w| {
                    w.set("name", "wal").path("path", &wal).set("max_size", "100MB");
                })
                .push("watch", |w| {
                    w.set("name", "spool").path("path", &spool).set("timeout", "5s");
                })
                .push("watch", |w| {
                    w.set("name", "logs").path("path", t.path().join("*.log"));
                })
                .push("watch", |w| {
                    w.set("name", "later").path("path", t.path().join("later.txt"));
                });
        })
        .parse();
    let srv = InProcess::start(cfg).await;
    let w = wal.display().to_string();
    let s = spool.display().to_string();
    let later = t.path().join("later.txt").display().to_string();
    let value = |name: &'static str, watch: &'static str, path: String| {
        let app = srv.app.clone();
        async move {
            app.scrape()
                .await
                .value(name, &[("watch", watch), ("path", path.as_str())])
        }
    };
    eventually(Duration::from_secs(20), "first measurement", || async {
        (value("hostmedic_path_size_bytes", "wal", w.clone()).await == Some(1000.0)).then_some(())
    })
    .await;
    let set = srv.app.scrape().await;
    assert_eq!(set.value("hostmedic_path_size_limit_bytes", &l("wal", &w)), Some(1e8));
    assert_eq!(set.value("hostmedic_path_exists", &l("wal", &w)), Some(1.0));
    let mtime = set
        .value("hostmedic_path_modified_timestamp_seconds", &l("wal", &w))
        .unwrap();
    assert!(mtime > 1.7e9, "{mtime}");
    assert_eq!(set.value("hostmedic_path_size_bytes", &l("spool", &s)), Some(300.0));
    assert_eq!(set.value("hostmedic_path_size_limit_bytes", &l("spool", &s)), None);
    let one = t.path().join("one.log").display().to_string();
    assert_eq!(set.value("hostmedic_path_size_bytes", &l("logs", &one)), Some(3.0));
    assert_eq!(set.value("hostmedic_path_exists", &l("later", &later)), Some(0.0));
    assert_eq!(set.value("hostmedic_path_size_bytes", &l("later", &later)), None);

    // Grow the file, the directory (new subdirectory), add a glob match and
    // create the missing file.
    std::fs::write(&wal, vec![1u8; 250_000]).unwrap();
    std::fs::create_dir_all(spool.join("new")).unwrap();
    std::fs::write(spool.join("new/b"), vec![0u8; 4096]).unwrap();
    std::fs::write(t.path().join("two.log"), "defgh").unwrap();
    std::fs::write(t.path().join("later.txt"), "now").unwrap();
    let two = t.path().join("two.log").display().to_string();
    eventually(Duration::from_secs(20), "growth", || async {
        let set = srv.app.scrape().await;
        (set.value("hostmedic_path_size_bytes", &l("wal", &w)) == Some(250_000.0)
            && set.value("hostmedic_path_size_bytes", &l("spool", &s)) == Some(4396.0)
            && set.value("hostmedic_path_size_bytes", &l("logs", &two)) == Some(5.0)
            && set.value("hostmedic_path_exists", &l("later", &later)) == Some(1.0))
        .then_some(())
    })
    .await;

    let (_, body) = get(&srv.url("/metrics")).await;
    assert!(body.contains("Cached: measured in the background"), "{body}");
    assert!(body.contains("hostmedic_scrape_collector_success{collector=\"paths\"} 1"));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_configured_means_no_collector() {
    let srv = InProcess::start(TestConfig::new().disable(&["hwmon"]).parse()).await;
    let set = srv.app.scrape().await;
    assert_eq!(
        set.value("hostmedic_collector_source_present", &[("collector", "host")]),
        Some(1.0)
    );
    for c in ["paths", "git_lfs"] {
        assert_eq!(
            set.value("hostmedic_collector_source_present", &[("collector", c)]),
            None,
            "{c}"
        );
    }
    srv.stop().await;

    // A search root without repositories: the collector runs, source absent.
    let empty = tempfile::tempdir().unwrap();
    let cfg = TestConfig::new()
        .disable(&["hwmon"])
        .section("git_lfs", |g| {
            g.paths("search_roots", [empty.path()]).set("scan_interval", "1h");
        })
        .parse();
    let srv = InProcess::start(cfg).await;
    eventually(Duration::from_secs(20), "git_lfs source absent", || async {
        let set = srv.app.scrape().await;
        (set.value("hostmedic_collector_source_present", &[("collector", "git_lfs")]) == Some(0.0)).then_some(())
    })
    .await;
    srv.stop().await;
}
