//! What the real binary lets out (issue 21, "Security"): a secret in a
//! running process's argv never reaches `/metrics`, the receiver's journal,
//! state and status files are owner-only, and alert text with control
//! characters cannot forge lines where it is rendered.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::config::TestConfig;
use common::procs::{Spawned, alias, nonce};
use common::*;
use serde_json::json;

/// The `/metrics` lines of the top-K series whose `comm` is `comm`.
async fn top_lines(b: &Binary, comm: &str) -> Option<Vec<String>> {
    let (code, body) = get(&b.url("/metrics")).await;
    assert_eq!(code, 200);
    let tag = format!("comm=\"{comm}\"");
    let lines: Vec<String> = body
        .lines()
        .filter(|l| l.starts_with("hostmedic_process_top_") && l.contains(&tag))
        .map(str::to_string)
        .collect();
    (!lines.is_empty()).then_some(lines)
}

/// Starts the binary with only the processes collector (`top_k` 100, so
/// the busy child is listed however busy the machine is).
fn start(dir: &Path, name: &str, cmdline_label: bool) -> Binary {
    let cfg = TestConfig::new()
        .disable(&["host", "hwmon", "pressure", "docker", "systemd", "git_lfs"])
        .section("processes", |p| {
            p.set("top_k", 100)
                .set("cmdline_label", cmdline_label)
                .set("cmdline_max_chars", 400);
        })
        .write(dir.join(format!("{name}.toml")));
    Binary::start(&cfg, dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_in_a_running_process_argv_never_reaches_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let comm = format!("hmsec{}", nonce());
    let secret = format!("hunter2-{}", nonce());
    let sh = alias(dir.path(), &comm, "/bin/sh");
    let flag = format!("--password={secret}");
    // argv: <alias> -c <loop> <alias> --password=…: a busy process that ranks.
    let _busy = Spawned::new(&sh, &["-c", "while :; do :; done", &comm, &flag]);

    // Default: comm only, no cmdline label at all.
    let b = start(dir.path(), "default", false);
    let lines = eventually(Duration::from_secs(30), "the busy child in the top-K", || {
        top_lines(&b, &comm)
    })
    .await;
    assert!(lines.iter().all(|l| !l.contains("cmdline=")), "{lines:#?}");
    let (_, body) = get(&b.url("/metrics")).await;
    assert!(!body.contains(&secret), "the secret is in /metrics");
    drop(b);

    // Opted in: the command line is there, its secret redacted.
    let b = start(dir.path(), "opted-in", true);
    let lines = eventually(Duration::from_secs(30), "the busy child in the top-K", || {
        top_lines(&b, &comm)
    })
    .await;
    let want = format!(
        "cmdline=\"{} -c while :; do :; done {comm} --password=[REDACTED]\"",
        sh.display()
    );
    assert!(lines.iter().all(|l| l.contains(&want)), "{want}\n{lines:#?}");
    let (_, body) = get(&b.url("/metrics")).await;
    assert!(!body.contains(&secret), "the secret is in /metrics");
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[tokio::test(flavor = "multi_thread")]
async fn journal_state_and_status_files_are_0600_whatever_the_umask() {
    let dir = receiver_dir("t0ken-for-tests-0123456789");
    let d = dir.path();
    let var = d.join("var");
    // hostmedic creates no directories (the package makes /var/lib/hostmedic
    // 0700): an operator's, made under umask 022.
    for sub in ["journal", "state"] {
        std::fs::create_dir_all(var.join(sub)).unwrap();
    }
    let cfg = TestConfig::new()
        .disable(&["host", "hwmon", "processes", "pressure", "docker", "systemd", "git_lfs"])
        .single_host("h1")
        .section("receiver", |r| {
            r.set("enabled", true)
                .path("journal_path", var.join("journal/journal.jsonl"))
                .path("state_path", var.join("state/state.json"))
                .path("status_path", var.join("status.json"))
                .path("bearer_token_file", d.join("token"));
        })
        .write(d.join("hostmedic.toml"));
    // Under the usual umask 022 a plain create would give 0644 and 0755.
    let b = Binary::start_with_prefix(&["sh", "-c", "umask 022 && exec \"$@\"", "sh"], &cfg, d, &[]);
    let alert = json!({"status": "firing", "labels": {"alertname": "Nothing", "instance": "h1"},
        "annotations": {}, "startsAt": "2026-01-01T00:00:00Z", "fingerprint": "0a"});
    deliver_alerts(&b.url("/api/v1/alerts"), "t0ken-for-tests-0123456789", vec![alert]).await;
    let files = [
        var.join("journal/journal.jsonl"),
        var.join("state/state.json"),
        var.join("status.json"),
    ];
    eventually(Duration::from_secs(20), "journal, state and status files", || async {
        files.iter().all(|f| f.exists()).then_some(())
    })
    .await;
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    // No temp file of the atomic writes is left readable either.
    for e in std::fs::read_dir(&var).unwrap().flatten() {
        if e.path().is_file() {
            assert_eq!(mode(&e.path()), 0o600, "{}", e.path().display());
        }
    }
    drop(b);
}

const TOKEN: &str = "t0ken-for-tests-0123456789";

/// A receiver with bearer auth and one notify-only rule (`Runaway`: an
/// approval waits), `status_public` as given.
fn receiver_config(d: &Path, status_public: bool) -> std::path::PathBuf {
    TestConfig::new()
        .disable(&["host", "hwmon", "processes", "pressure", "docker", "systemd", "git_lfs"])
        .single_host("h1")
        .receiver(d, |r| {
            r.path("bearer_token_file", d.join("token"))
                .set("status_public", status_public);
        })
        .rule(
            common::config::Rule::new("runaway", "Runaway")
                .set("mode", "notify-only")
                .action(common::config::Action::exec(["/bin/true"])),
        )
        .write(d.join(format!("public-{status_public}.toml")))
}

async fn post_alert(b: &Binary, alertname: &str, summary: &str) {
    let alert = json!({"status": "firing", "labels": {"alertname": alertname, "instance": "h1", "pid": "4242"},
        "annotations": {"summary": summary}, "startsAt": "2026-01-01T00:00:00Z", "fingerprint": "0b"});
    deliver_alerts(&b.url("/api/v1/alerts"), TOKEN, vec![alert]).await;
}

async fn page(b: &Binary, token: Option<&str>, path: &str) -> (u16, String) {
    let mut r = client().get(b.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_landing_page_hides_what_the_status_api_protects() {
    let dir = receiver_dir(TOKEN);
    let b = Binary::start(&receiver_config(dir.path(), false), dir.path());
    post_alert(&b, "Runaway", "pid 4242 is busy").await;
    let (code, status) = page(&b, Some(TOKEN), "/api/v1/status").await;
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let id = status["pending_approvals"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a pending approval: {status}"))
        .to_string();

    // Without credentials: 401 from the API, and the page hides the same.
    assert_eq!(page(&b, None, "/api/v1/status").await.0, 401);
    let (code, html) = page(&b, None, "/").await;
    assert_eq!(code, 200);
    assert!(html.contains("details hidden: authenticate"), "{html}");
    // The id as the page would show it (a bare "a2" is also in a CSS colour).
    let shown_id = format!(">{id}<");
    for secret in [shown_id.as_str(), "Runaway", "pid 4242 is busy"] {
        assert!(!html.contains(secret), "{secret:?} shown unauthenticated:\n{html}");
    }
    // With them: everything.
    let (_, html) = page(&b, Some(TOKEN), "/").await;
    assert!(html.contains(&id) && html.contains("Runaway"), "{html}");
    assert!(!html.contains("details hidden"), "{html}");
    drop(b);

    // `status_public = true`: both open, alike.
    let b = Binary::start(&receiver_config(dir.path(), true), dir.path());
    assert_eq!(page(&b, None, "/api/v1/status").await.0, 200);
    let (_, html) = page(&b, None, "/").await;
    assert!(html.contains(&id) && !html.contains("details hidden"), "{html}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newline_in_alert_text_is_escaped_on_the_page_and_in_the_log() {
    let dir = receiver_dir(TOKEN);
    let b = Binary::start(&receiver_config(dir.path(), false), dir.path());
    post_alert(&b, "Runaway", "busy\n# forged\u{1b}[2J").await;
    let (_, html) = page(&b, Some(TOKEN), "/").await;
    assert!(html.contains("busy\\n# forged\\u{1b}[2J"), "{html}");
    assert!(!html.contains('\u{1b}') && !html.contains("busy\n"), "{html}");
    let (_, status) = page(&b, Some(TOKEN), "/api/v1/status").await;
    assert!(status.contains("Runaway"), "{status}");
    // Every log line is a logfmt record: nothing an alert carries starts one.
    for line in b.log().lines() {
        assert!(
            line.starts_with("ts=") || line.contains("level="),
            "forged log line {line:?}"
        );
    }
}
