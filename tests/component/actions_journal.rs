//! The journal-vacuum action on a real journald: the systemd booted in its
//! own rootfs (tests/support/src/systemd.rs) keeps its persistent journal
//! on a tmpfs of its own (64 MiB, mounted by a mount unit inside the
//! machine), with 1 MiB journal files; a unit logs ~20,000 lines and the
//! journal is rotated, so journald leaves archived files behind. The action
//! runs this host's `journalctl` with `journal_dir` at that journal as the
//! host sees it (`/proc/<pid>/root/var/log/journal`) — never the host's own
//! journal — and its numbers are checked against `du` and against the free
//! bytes of that tmpfs, which nothing else writes to: what the outcome says
//! it freed is what the filesystem got back.
//!
//! Also: a dry run changes nothing; through the receiver (the real binary
//! at its default log level), a `HostmedicDiskAlmostFull` alert vacuums,
//! verification says verified, the service log has the action's info line,
//! `hostmedic incidents` tells it with the journal's evidence, and the
//! cooldown holds the next alert back.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::config::{Action, Rule, TestConfig};
use common::systemd::{Spec, SystemdMachine, boot_or_skip};
use common::*;
use hostmedic::actions::{ActionEnv, ActionSpec, Alert, Context, JournalVacuumAction, OutcomeResult, Verification};
use hostmedic::bytes::ByteSize;
use hostmedic::receiver::journal::{self, Decision, Event};

use crate::receiver::{TOKEN, alert, post};

/// journald in the machine: persistent, 1 MiB files, no rate limit, and
/// limits of its own far above what the test writes (so only the action
/// removes files).
const JOURNALD_CONF: &str = "[Journal]\nStorage=persistent\nSystemMaxFileSize=1M\nSystemMaxUse=48M\nSystemKeepFree=1M\nRateLimitIntervalSec=0\nRateLimitBurst=0\n";

/// The persistent journal on a tmpfs of its own (journald's flush requires
/// the mounts for /var/log/journal, so it waits for this one).
const JOURNAL_MOUNT: &str = "[Unit]\nDefaultDependencies=no\nBefore=local-fs.target\n[Mount]\nWhat=tmpfs\nWhere=/var/log/journal\nType=tmpfs\nOptions=size=64m,mode=2755\n";

const CHATTY_SCRIPT: &str = "#!/bin/sh\ni=0\nwhile [ $i -lt 20000 ]; do\n  echo \"chatty line $i: the quick brown fox jumps over the lazy dog to fill the journal with something to vacuum\"\n  i=$((i+1))\ndone\n";
const CHATTY: &str = "[Service]\nType=oneshot\nExecStart=/usr/local/bin/chatty\n";

/// A booted machine whose journal holds archived files, and that journal's
/// directory as this host sees it.
fn machine_with_a_grown_journal() -> Option<(SystemdMachine, PathBuf)> {
    let m = boot_or_skip(
        Spec::new()
            .file("/etc/systemd/journald.conf.d/test.conf", JOURNALD_CONF, 0o644)
            .enabled_unit("var-log-journal.mount", JOURNAL_MOUNT)
            .file("/usr/local/bin/chatty", CHATTY_SCRIPT, 0o755)
            .unit("chatty.service", CHATTY),
    )?;
    let fs = m.exec(&["findmnt", "-n", "-o", "FSTYPE", "/var/log/journal"]);
    assert_eq!(
        String::from_utf8_lossy(&fs.stdout).trim(),
        "tmpfs",
        "the journal's own tmpfs"
    );
    let (ok, out) = m.systemctl(&["start", "chatty.service"]);
    assert!(ok, "{out}");
    for step in [
        ["journalctl", "--flush"],
        ["journalctl", "--sync"],
        ["journalctl", "--rotate"],
    ] {
        let o = m.exec(&step);
        assert!(o.status.success(), "{step:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let dir = m.root().join("var/log/journal");
    assert!(
        dir.starts_with(format!("/proc/{}/root", m.pid())),
        "the machine's journal, never the host's"
    );
    let archived = journal_files(&dir)
        .iter()
        .filter(|(name, _)| name.contains('@'))
        .count();
    assert!(
        archived >= 5,
        "journald archived {archived} files: {:?}",
        journal_files(&dir)
    );
    Some((m, dir))
}

/// `(name, allocated bytes)` of every file below `dir` (one level of
/// machine-id directories), sorted by name.
fn journal_files(dir: &Path) -> Vec<(String, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for sub in std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()) {
        let entries: Vec<PathBuf> = if sub.is_dir() {
            std::fs::read_dir(&sub).unwrap().map(|e| e.unwrap().path()).collect()
        } else {
            vec![sub]
        };
        for f in entries {
            let meta = std::fs::symlink_metadata(&f).unwrap();
            out.push((
                f.file_name().unwrap().to_string_lossy().into_owned(),
                meta.blocks() * 512,
            ));
        }
    }
    out.sort();
    out
}

/// `du -s -B1 <dir>`.
fn du(dir: &Path) -> u64 {
    let out = Command::new("du").args(["-s", "-B1"]).arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("du's total")
}

/// `(size, available)` bytes of the filesystem holding `dir`, by
/// `stat -f` (statfs on the path itself: `df` would look the path up in
/// this host's mount table, which does not have the machine's tmpfs).
fn statfs(dir: &Path) -> (u64, u64) {
    let out = Command::new("stat")
        .args(["-f", "-c", "%b %a %S"])
        .arg(dir)
        .output()
        .unwrap();
    let n: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    assert_eq!(n.len(), 3, "stat -f: {}", String::from_utf8_lossy(&out.stderr));
    (n[0] * n[2], n[1] * n[2])
}

/// The outcome's exact figures: `bytes: journal X → Y, filesystem free A → B`.
fn figures(detail: &str) -> [u64; 4] {
    let line = detail
        .lines()
        .find_map(|l| l.strip_prefix("bytes: journal "))
        .unwrap_or_else(|| panic!("no bytes line: {detail}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    nums.try_into()
        .unwrap_or_else(|n| panic!("four figures in {line:?}: {n:?}"))
}

fn vacuum(dir: &Path, max_size: &str) -> JournalVacuumAction {
    JournalVacuumAction {
        max_size: Some(max_size.parse().unwrap()),
        max_age: None,
        journal_dir: Some(dir.to_path_buf()),
        // The host's own journalctl, on the machine's journal directory.
        journalctl: "/usr/bin/journalctl".into(),
        timeout: Duration::from_secs(60),
    }
}

/// Tolerance between two measures of a journal journald may append to.
const SLACK: u64 = 256 << 10;

#[tokio::test(flavor = "multi_thread")]
async fn journal_vacuum_frees_a_real_journal_and_proves_it() {
    let Some((_m, dir)) = machine_with_a_grown_journal() else {
        return;
    };
    assert_eq!(statfs(&dir).0, 64 << 20, "the journal's tmpfs, seen from the host");
    let s = ActionSpec::from(vacuum(&dir, "2MiB"));
    let t = s
        .compile("remediation[0].actions[0]", &Context::default())
        .expect("valid spec")
        .resolve(&Alert::default())
        .expect("target");
    assert_eq!(t.key(), format!("journal-vacuum:{}", dir.display()));
    assert_eq!(
        t.describe(),
        format!("journal-vacuum max_size=2MiB journal_dir={}", dir.display())
    );

    // A dry run measures and changes nothing.
    let files = journal_files(&dir);
    let dry = ActionEnv {
        dry_run: true,
        ..ActionEnv::default()
    };
    let o = t.run(&Alert::default(), &dry).await;
    assert_eq!(o.result, OutcomeResult::DryRun, "{}", o.detail);
    assert!(
        o.detail.starts_with(&format!(
            "would run /usr/bin/journalctl --vacuum-size=2097152 --directory={}",
            dir.display()
        )),
        "{}",
        o.detail
    );
    assert_eq!(journal_files(&dir), files, "a dry run deleted files");

    let (du_before, free_before) = (du(&dir), statfs(&dir).1);
    let started = Instant::now();
    let o = t.run(&Alert::default(), &ActionEnv::default()).await;
    let took = started.elapsed();
    let (du_after, free_after) = (du(&dir), statfs(&dir).1);
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    let [before, after, fs_before, fs_after] = figures(&o.detail);
    eprintln!(
        "journal-vacuum on a real journal in {took:?}: du {du_before} → {du_after}, outcome journal {before} → {after}, \
         tmpfs free {free_before} → {free_after} (outcome {fs_before} → {fs_after})\n{}",
        o.detail
    );
    // The outcome's journal figures are du's…
    assert!(before.abs_diff(du_before) <= SLACK, "{before} vs du {du_before}");
    assert!(after.abs_diff(du_after) <= SLACK, "{after} vs du {du_after}");
    // …and what it says was freed came back to the filesystem.
    assert!(fs_before.abs_diff(free_before) <= SLACK && fs_after.abs_diff(free_after) <= SLACK);
    let freed = before - after;
    assert!(freed >= 4 << 20, "freed only {freed} bytes");
    assert!(
        (fs_after - fs_before).abs_diff(freed) <= SLACK,
        "{fs_before} → {fs_after} for {freed} freed"
    );
    assert!(
        o.detail.starts_with(&format!(
            "/usr/bin/journalctl --vacuum-size=2097152 --directory={}: freed {} (journal {} → {};",
            dir.display(),
            ByteSize(freed).human(),
            ByteSize(before).human(),
            ByteSize(after).human()
        )),
        "{}",
        o.detail
    );
    assert!(
        o.detail.contains("Vacuuming done, freed"),
        "journalctl's own summary: {}",
        o.detail
    );
    // journalctl's promise: the archived files left take at most max_size;
    // the active ones stay.
    let left = journal_files(&dir);
    let archived: u64 = left.iter().filter(|(n, _)| n.contains('@')).map(|(_, b)| b).sum();
    assert!(archived <= 2 << 20, "{archived} archived bytes left: {left:?}");
    assert!(left.iter().any(|(n, _)| n == "system.journal"), "{left:?}");
    assert_eq!(
        t.verify(&ActionEnv::default(), Duration::from_secs(5)).await,
        Verification::Verified
    );

    // A limit below the active files' size: every archived file goes (the
    // journal shrank: verified)…
    let o = run_fresh(&dir, "1KiB").await;
    assert_eq!(o.0.result, OutcomeResult::Ok, "{}", o.0.detail);
    let left = journal_files(&dir);
    assert!(
        left.iter().all(|(n, _)| !n.contains('@')),
        "archived files left: {left:?}"
    );
    let [_, active_only, ..] = figures(&o.0.detail);
    let active: u64 = left.iter().map(|(_, b)| b).sum();
    assert!(
        active_only.abs_diff(active) <= SLACK,
        "{active_only} vs the active files' {active}"
    );
    assert_eq!(o.1, Verification::Verified);
    // …and then a vacuum that can remove nothing is not helped: the active
    // files alone are over max_size, which journalctl never touches.
    let (o, v) = run_fresh(&dir, "1KiB").await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    assert!(o.detail.contains("journalctl deleted 0 archived files"), "{}", o.detail);
    match v {
        Verification::NotHelped(why) => assert!(
            why.contains("over max_size 1KiB") && why.contains("its active files alone hold"),
            "{why}"
        ),
        v => panic!("an active journal over max_size is not helped: {v:?}"),
    }
}

/// Resolves `vacuum(dir, max_size)` anew (as the receiver does per alert),
/// runs it and verifies it.
async fn run_fresh(dir: &Path, max_size: &str) -> (hostmedic::actions::Outcome, Verification) {
    let t = ActionSpec::from(vacuum(dir, max_size))
        .compile("k", &Context::default())
        .unwrap()
        .resolve(&Alert::default())
        .unwrap();
    let o = t.run(&Alert::default(), &ActionEnv::default()).await;
    let v = t.verify(&ActionEnv::default(), Duration::from_secs(5)).await;
    (o, v)
}

#[tokio::test(flavor = "multi_thread")]
async fn journal_vacuum_through_the_receiver_is_told_and_cooled_down() {
    let Some((_m, dir)) = machine_with_a_grown_journal() else {
        return;
    };
    let fx = receiver_dir(TOKEN);
    let d = fx.path();
    let cfg = TestConfig::new()
        .disable(&["host", "hwmon", "docker", "systemd", "processes"])
        .single_host("h1")
        .receiver(d, |r| {
            r.path("bearer_token_file", d.join("token"))
                .set("cooldown", "1h")
                .set("verify_timeout", "10s");
        })
        .rule(
            Rule::new("journal-on-root", "HostmedicDiskAlmostFull")
                .strings("matchers", [r#"mountpoint="/""#])
                .action(
                    Action::new("journal-vacuum")
                        .set("max_size", "2MiB")
                        .set("journal_dir", dir.display().to_string())
                        .set("journalctl", "/usr/bin/journalctl"),
                )
                .set("budget_attempts", 2),
        )
        .write(d.join("hostmedic.toml"));
    let bin = Binary::start_at_default_log_level(&cfg, d, &[]);
    let url = bin.url("/api/v1/alerts");
    let full = |starts: &str| {
        alert(
            "HostmedicDiskAlmostFull",
            &[("mountpoint", "/"), ("device", "/dev/vda")],
            starts,
            "firing",
            "d15c",
        )
    };
    let du_before = du(&dir);
    assert_eq!(
        post(&url, Some(TOKEN), &payload(vec![full("2026-01-01T00:00:00Z")]))
            .await
            .0,
        200
    );
    let entries = || journal::read_from(&d.join("journal.jsonl"), 0).unwrap().0;
    let verified = eventually(Duration::from_secs(60), "the vacuum verified", || async {
        entries().into_iter().find_map(|e| match e.event {
            Event::Verify { result, detail, .. } => Some((result.to_string(), detail)),
            _ => None,
        })
    })
    .await;
    assert_eq!(verified.0, "verified", "{}", verified.1);
    let detail = entries()
        .into_iter()
        .find_map(|e| match e.event {
            Event::Action {
                action, result, detail, ..
            } if action == "journal-vacuum" => {
                assert_eq!(result, OutcomeResult::Ok, "{detail}");
                Some(detail)
            }
            _ => None,
        })
        .expect("the action's outcome");
    let [before, after, ..] = figures(&detail);
    assert!(
        before.abs_diff(du_before) <= SLACK && after.abs_diff(du(&dir)) <= SLACK,
        "{detail}"
    );
    assert!(before - after >= 4 << 20, "{detail}");

    // The operator's view: one info line for the outcome…
    let log = bin.log();
    let key = format!("target=journal-vacuum:{}", dir.display());
    assert!(
        log.lines().any(|l| l.contains("level=info")
            && l.contains("remediation action")
            && l.contains("rule=journal-on-root")
            && l.contains("result=ok")
            && l.contains(&key)),
        "{log}"
    );
    // …and the incident log, with the journal's evidence.
    let md = incidents_last_hour(&cfg);
    assert!(md.contains("**HostmedicDiskAlmostFull** firing"), "{md}");
    assert!(
        md.contains(&format!("journal-vacuum max_size=2MiB journal_dir={}", dir.display())),
        "{md}"
    );
    assert!(md.contains("freed "), "{md}");
    assert!(
        md.contains(&format!("journal:{}", dir.display())),
        "the journal's evidence: {md}"
    );

    // The cooldown holds the next alert back: nothing runs again.
    assert_eq!(
        post(&url, Some(TOKEN), &payload(vec![full("2026-01-01T00:10:00Z")]))
            .await
            .0,
        200
    );
    eventually(Duration::from_secs(20), "the second decision", || async {
        (entries()
            .iter()
            .filter(|e| matches!(e.event, Event::Decision { .. }))
            .count()
            == 2)
            .then_some(())
    })
    .await;
    let acted = decision_ids(&entries(), Decision::Act);
    assert_eq!(
        acted.len(),
        1,
        "the cooldown let a second vacuum through: {:?}",
        entries()
    );
    let runs = entries()
        .iter()
        .filter(|e| matches!(&e.event, Event::Action { action, .. } if action == "journal-vacuum"))
        .count();
    assert_eq!(runs, 1);
}
