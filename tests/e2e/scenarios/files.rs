//! S5 and S11 end to end, on real repositories and real files.
//!
//! S5: the nightly backup commits a 3 GiB snapshot into a Git LFS repository
//! whose remote rejects objects over 2 GiB → `HostmedicLfsObjectOverLimit`
//! fires before any push → hostmedic notifies with the offending object and
//! path, and deletes nothing.
//!
//! S11: an application's SQLite write-ahead log grows past its configured
//! size (autocheckpoint off, connection held open) → the shipped
//! `HostmedicWatchedFileOverSize` (`for:` clamped) → hostmedic runs the
//! configured command (`sqlite3 … PRAGMA wal_checkpoint(TRUNCATE)`) → the WAL
//! is empty again and the alert resolves.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::config::{Action, Rule};
use common::e2e::*;
use common::git_lfs::Repo;
use hostmedic::receiver::journal::Event;

const GIB: u64 = 1 << 30;

#[tokio::test(flavor = "multi_thread")]
async fn s5_lfs_object_over_remote_limit_is_reported_with_paths_and_nothing_deleted() {
    if !common::git_lfs::tools_present() && common::skip_or_fail("git and git-lfs are not installed") {
        return;
    }
    let mut st = Stack::new("S5").await;
    let repo = Repo::init_lfs(&st.path("backup"), &["*.tar"]);
    repo.write("snapshots/2026-11-19.tar", b"small nightly snapshot\n");
    repo.commit(&["snapshots/2026-11-19.tar"], "nightly 2026-11-19");
    let config = st
        .receiver()
        .disable(&["docker"])
        .section("git_lfs", |g| {
            g.strings("repos", [repo.dir.display().to_string()])
                .set("scan_interval", "1s");
        })
        .rule(
            Rule::new("lfs-over-limit", "HostmedicLfsObjectOverLimit")
                .action(Action::new("notify").set("channel", "ntfy"))
                .action(Action::new("notify").set("channel", "webhook")),
        )
        .render();
    st.start_hostmedic(&config);
    st.start_monitoring(Duration::from_secs(2), &[]).await;
    let q = format!("hostmedic_git_lfs_objects{{repo=\"{}\"}}", repo.dir.display());
    st.wait_query(Duration::from_secs(30), &q, |v| v == 1.0).await;

    // Fault: the nightly backup commits a 3 GiB snapshot (its pointer, then
    // the sparse object in the LFS store, as `git lfs` leaves them). The
    // pointer goes first so the object never shows up without its path (with
    // `git add` the object lands a moment before the commit; the alert may
    // then fire before the path is known, which this test does not exercise).
    let size = 3 * GIB;
    let oid = common::git_lfs::sha256_hex(b"snapshot-2026-11-21");
    repo.pointer("snapshots/2026-11-21.tar", &oid, size);
    repo.commit(&["snapshots/2026-11-21.tar"], "nightly 2026-11-21");
    assert_eq!(repo.sparse_object("snapshot-2026-11-21", size), oid);
    let sw = Stopwatch::fault_injected("S5");

    let (ntfy, hook) = st
        .wait_for(Duration::from_secs(60), "LFS notifications", |st| {
            let all = st.sink.all();
            let n = all.iter().find(|r| r.path.starts_with("/ntfy"))?.clone();
            let h = all.iter().find(|r| r.path.starts_with("/hook"))?.clone();
            Some((n, h))
        })
        .await;
    sw.remediated(&st).await;
    let v: serde_json::Value = serde_json::from_str(&ntfy.body).unwrap();
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("snapshots/2026-11-21.tar"), "offending path named: {msg}");
    assert!(msg.contains("3GiB") || msg.contains("3 GiB"), "its size: {msg}");
    assert!(
        !msg.contains("2026-11-19.tar"),
        "the small object is not offending: {msg}"
    );
    let v: serde_json::Value = serde_json::from_str(&hook.body).unwrap();
    assert_eq!(v["alert"]["labels"]["repo"], repo.dir.display().to_string());
    let acts = st.actions_journaled("lfs-over-limit", 2).await;
    assert!(acts.len() == 2 && acts.iter().all(|a| a.2 == "ok"), "{acts:?}");

    // The metrics say which object and which path (the facts the rule used).
    let q = format!("hostmedic_git_lfs_object_over_limit_bytes{{oid=\"{oid}\",path=\"snapshots/2026-11-21.tar\"}}");
    assert_eq!(st.query(&q).await, Some(size as f64));

    // Nothing was deleted or rewritten.
    let obj = repo.objects_dir().join(&oid[0..2]).join(&oid[2..4]).join(&oid);
    assert_eq!(std::fs::metadata(&obj).unwrap().len(), size);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    let ls = repo.git(&["lfs", "ls-files", "-s"]);
    assert!(
        ls.contains("snapshots/2026-11-21.tar") && ls.contains("snapshots/2026-11-19.tar"),
        "{ls}"
    );
    st.assert_no_secrets();
}

/// The application: opens `db` in WAL mode with autocheckpoint off, writes a
/// little, then on `go` appears writes `mib` MiB and keeps the connection
/// open (so SQLite never checkpoints on close).
fn start_wal_app(db: &std::path::Path, go: &std::path::Path, mib: u32) -> Child {
    let script = format!(
        r#"
import os, sqlite3, time
c = sqlite3.connect({db:?}, isolation_level=None)
c.execute("PRAGMA journal_mode=WAL")
c.execute("PRAGMA wal_autocheckpoint=0")
c.execute("CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, payload BLOB)")
c.execute("INSERT INTO events (payload) VALUES (zeroblob(1000))")
print("ready", flush=True)
while not os.path.exists({go:?}):
    time.sleep(0.05)
for _ in range({mib}):
    c.execute("BEGIN")
    for _ in range(16):
        c.execute("INSERT INTO events (payload) VALUES (randomblob(65536))")
    c.execute("COMMIT")
print("grown", flush=True)
while True:
    time.sleep(3600)
"#,
        db = db.display().to_string(),
        go = go.display().to_string(),
    );
    Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("python3")
}

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s11_sqlite_wal_over_size_runs_the_configured_checkpoint() {
    let sqlite = std::path::Path::new("/usr/bin/sqlite3");
    if !sqlite.exists() && common::skip_or_fail("/usr/bin/sqlite3 (Debian package sqlite3) is not installed") {
        return;
    }
    let mut st = Stack::new("S11").await;
    let db = st.path("app/app.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let wal = st.path("app/app.db-wal");
    let go = st.path("app/go");
    let _app = KillOnDrop(start_wal_app(&db, &go, 12));
    let config = st
        .receiver()
        .disable(&["docker"])
        .section("paths", |p| {
            p.set("scan_interval", "1s").push("watch", |w| {
                w.set("name", "app-wal").path("path", &wal).set("max_size", "8MiB");
            });
        })
        .rule(
            Rule::new("wal-checkpoint", "HostmedicWatchedFileOverSize")
                .strings("matchers", [r#"watch="app-wal""#])
                .action(
                    Action::exec([
                        "/usr/bin/sqlite3".to_string(),
                        db.display().to_string(),
                        "PRAGMA wal_checkpoint(TRUNCATE);".to_string(),
                    ])
                    .set("timeout", "30s"),
                )
                .action(Action::new("notify").set("channel", "webhook")),
        )
        .render();
    st.start_hostmedic(&config);
    // `for:` 0s: nothing before the fault can make the rule true (no time
    // window to wait out), so the alert fires at the first evaluation after it.
    st.start_monitoring(Duration::ZERO, &[]).await;
    let q = "hostmedic_path_size_bytes{watch=\"app-wal\"}";
    st.wait_query(Duration::from_secs(30), q, |v| v > 0.0 && v < 8.0 * 1048576.0)
        .await;

    // Fault: the application writes 12 MiB without checkpointing.
    std::fs::write(&go, b"").unwrap();
    let sw = Stopwatch::fault_injected("S11");
    st.wait_for(Duration::from_secs(30), "WAL over 8 MiB", |_| {
        (std::fs::metadata(&wal).ok()?.len() > 8 << 20).then_some(())
    })
    .await;

    let act = st
        .wait_for(Duration::from_secs(60), "the checkpoint command ran", |st| {
            st.actions("wal-checkpoint").into_iter().find(|a| a.0 == "exec")
        })
        .await;
    assert_eq!(act.2, "ok", "{act:?}");
    st.wait_for(Duration::from_secs(10), "WAL truncated to 0 bytes", |_| {
        (std::fs::metadata(&wal).ok()?.len() == 0).then_some(())
    })
    .await;
    sw.remediated(&st).await;

    // The database kept its data (a checkpoint, not a deletion).
    let out = Command::new(sqlite)
        .arg(&db)
        .arg("SELECT count(*) FROM events;")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), (1 + 12 * 16).to_string());

    // hostmedic sees the file back under its limit and the alert resolves.
    st.wait_query(Duration::from_secs(30), q, |v| v == 0.0).await;
    st.wait_for(Duration::from_secs(60), "resolved alert journaled", |st| {
        st.journal().into_iter().find(|e| {
            matches!(&e.event, Event::Alert { alertname, status, .. }
                if alertname == "HostmedicWatchedFileOverSize" && status == "resolved")
        })
    })
    .await;
    st.assert_no_secrets();
}
