//! The landing page in a real browser: the real hostmedic binary in four
//! situations an operator meets (a healthy host, a silent alert pipeline,
//! alerts with an approval pending and actions that ran or failed, a host
//! whose sources are absent), each page loaded by headless Chromium (Debian's
//! `chromium`, installed by `scripts/test`). The assertions read the DOM the
//! browser built (`--dump-dom`), reduced to its visible text, so they check
//! what a person reads, in the order it is read: the verdict line first.
//! Each page is also kept as a screenshot under
//! `target/test-artifacts/landing/<scenario>.png` (docs/e2e.md). No page is
//! ever scraped by Prometheus here: the host part comes from hostmedic's
//! own first collection at start.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::config::{Action, Rule, TestConfig};
use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "t0ken-for-landing-0123456789";

/// The Chromium binary, or `None` (skipped outside CI) when not installed.
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("chromium"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        skip_or_fail("chromium is not installed (scripts/test installs Debian's `chromium`)");
    }
    found
}

/// Runs headless Chromium with a fresh profile on `url`, `what` being
/// `--dump-dom` or `--screenshot=…`; its stdout.
fn browse(chromium: &Path, url: &str, what: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .arg(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(what)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium {what:?} {url}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Where the screenshots are kept: `<target dir>/test-artifacts/landing`.
fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("test-artifacts/landing");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The visible text of a DOM dump: the body without tags, entities
/// decoded, whitespace collapsed.
fn text_of(dom: &str) -> String {
    let body = dom.split_once("<body").map_or(dom, |(_, b)| b);
    let body = body.split_once('>').map_or(body, |(_, b)| b);
    let mut text = String::with_capacity(body.len());
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The page as the browser rendered it: (DOM, visible text); the
/// screenshot is kept as `<name>.png`.
fn load(chromium: &Path, url: &str, name: &str) -> (String, String) {
    let dom = browse(chromium, url, &["--dump-dom".to_string()]);
    let png = artifacts().join(format!("{name}.png"));
    let _ = std::fs::remove_file(&png);
    browse(
        chromium,
        url,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,900".into(),
        ],
    );
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("screenshot {}: {e}", png.display()));
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "{} is a rendered PNG",
        png.display()
    );
    let text = text_of(&dom);
    (dom, text)
}

/// Asserts the parts of `text` come in this order.
fn in_order(text: &str, parts: &[&str]) {
    let mut at = 0;
    for p in parts {
        match text[at..].find(p) {
            Some(i) => at += i + p.len(),
            None => panic!("{p:?} missing or out of order (after byte {at}) in:\n{text}"),
        }
    }
}

/// The status document, through the API the page links to.
async fn status(bin: &Binary) -> Value {
    let r = client()
        .get(bin.url("/api/v1/status"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.unwrap()
}

/// Waits for hostmedic's first collection at start (no scrape is made).
async fn first_collection(bin: &Binary) {
    eventually(Duration::from_secs(30), "the first collection at start", || async {
        let (_, page) = get(&bin.url("/")).await;
        page.contains("own collection at start").then_some(())
    })
    .await;
}

fn alert(name: &str, severity: &str, summary: &str, fp: &str) -> Value {
    json!({"status": "firing", "labels": {"alertname": name, "severity": severity, "instance": "h1"},
           "annotations": {"summary": summary}, "startsAt": "2026-11-01T10:00:00Z",
           "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom/graph", "fingerprint": fp})
}

async fn deliver(bin: &Binary, alerts: Vec<Value>) {
    deliver_alerts(&bin.url("/api/v1/alerts"), TOKEN, alerts).await;
}

/// A receiver in `dir` (fake sysfs with one 45 °C sensor, no Docker or
/// systemd watched), its heartbeat allowed `max_silence`, with `rules`.
fn config(dir: &Path, max_silence: &str, rules: Vec<Rule>) -> PathBuf {
    let sysfs = dir.join("sys");
    fake_hwmon(&sysfs, 45_000);
    let cfg = TestConfig::new()
        .global(|g| {
            g.path("sysfs_root", &sysfs);
        })
        .disable(&["docker", "systemd", "git_lfs", "paths", "probes", "logfile"])
        .single_host("h1")
        .receiver(dir, |r| {
            // The browser brings no token: the page is opened to it as to the
            // status API (`status_public`; hidden otherwise, tested in
            // tests/component/security.rs).
            r.path("bearer_token_file", dir.join("token"))
                .set("status_public", true)
                .set("cooldown", "0s")
                .table("heartbeat", |h| {
                    h.set("max_silence", max_silence).set("check_interval", "100ms");
                });
        });
    rules
        .into_iter()
        .fold(cfg, TestConfig::rule)
        .write(dir.join("hostmedic.toml"))
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_host_reads_ok_nothing_needs_you_before_any_scrape() {
    let Some(chromium) = chromium() else { return };
    let dir = receiver_dir(TOKEN);
    let bin = Binary::start(&config(dir.path(), "10m", vec![]), dir.path());
    first_collection(&bin).await;

    let (dom, text) = load(&chromium, &bin.url("/"), "healthy");
    assert!(
        text.starts_with("OK — nothing needs you hostmedic "),
        "the verdict is the first thing read:\n{text}"
    );
    in_order(
        &text,
        &[
            "status API (JSON)",
            "this page reloads every 10 s",
            "Alert pipeline",
            "Alerts firing none",
            "Pending approvals none",
            "Holds none",
            "Host",
            "From hostmedic's own collection at start (no scrape yet) at ",
            " s ago)",
            "failed units not watched (collector off)",
            "unhealthy containers not watched (collector off)",
            "Temperatures",
            "coretemp/temp1 (Package id 0) 45.0 °C 100 °C 105 °C ok",
            "Disks",
            "Collectors",
            "hwmon ok",
        ],
    );
    assert!(
        !text.contains("not scraped yet") && !text.contains("not collected yet"),
        "{text}"
    );
    assert!(dom.contains("<meta http-equiv=\"refresh\" content=\"10\">"), "{dom}");
    assert!(dom.contains("href=\"api/v1/status\""), "{dom}");
    assert!(!dom.contains("<script"), "plain HTML, no script");
    // The status API says the same, and no scrape happened.
    let st = status(&bin).await;
    assert_eq!(st["host"]["at_startup"], true, "{}", st["host"]);
    assert_eq!(st["host"]["temperatures"][0]["celsius"], 45.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_pipeline_is_the_first_line() {
    let Some(chromium) = chromium() else { return };
    let dir = receiver_dir(TOKEN);
    let bin = Binary::start(&config(dir.path(), "1s", vec![]), dir.path());
    eventually(Duration::from_secs(30), "the pipeline silent", || async {
        (status(&bin).await["pipeline"]["silent"] == true).then_some(())
    })
    .await;
    first_collection(&bin).await;

    let (dom, text) = load(&chromium, &bin.url("/"), "pipeline-silent");
    assert!(
        text.starts_with("Needs you: alert pipeline SILENT since "),
        "the verdict is the first thing read:\n{text}"
    );
    in_order(
        &text,
        &[
            "Needs you: alert pipeline SILENT since ",
            " s ago) hostmedic ",
            "Alert pipeline SILENT since ",
            "no HostmedicWatchdog heartbeat; Prometheus or Alertmanager down?",
            "Host",
        ],
    );
    assert!(
        dom.contains("<a href=\"#pipeline\">alert pipeline SILENT since "),
        "the verdict links to its section: {dom}"
    );
    assert!(dom.contains("<h2 id=\"pipeline\">"), "{dom}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_approval_and_failed_action_are_counted_and_each_alert_says_what_was_done() {
    let Some(chromium) = chromium() else { return };
    let dir = receiver_dir(TOKEN);
    let rules = vec![
        Rule::new("restart-worker", "WorkerDown").action(Action::exec(["/bin/sh", "-c", "echo worker restarted"])),
        Rule::new("clean-disk", "DiskFull").action(Action::exec(["/bin/sh", "-c", "echo no space >&2; exit 3"])),
        Rule::new("ask-runaway", "Runaway")
            .set("mode", "notify-only")
            .action(Action::exec(["/bin/true"])),
    ];
    let bin = Binary::start(&config(dir.path(), "10m", rules), dir.path());
    deliver(
        &bin,
        vec![
            alert("WorkerDown", "critical", "worker <b>down</b> & out", "aa01"),
            alert("DiskFull", "warning", "disk full", "aa02"),
            alert("Runaway", "warning", "a runaway process", "aa03"),
        ],
    )
    .await;
    let st = eventually(Duration::from_secs(30), "both actions' results", || async {
        let st = status(&bin).await;
        let results = st["firing"]
            .as_array()?
            .iter()
            .filter(|a| a["last_action"]["result"].is_string())
            .count();
        (results == 2).then_some(st)
    })
    .await;
    let id = st["pending_approvals"][0]["id"]
        .as_str()
        .expect("Runaway waits")
        .to_string();
    first_collection(&bin).await;

    let (dom, text) = load(&chromium, &bin.url("/"), "approval-pending");
    assert!(
        text.starts_with("Needs you: 1 pending approval · 1 failed action hostmedic "),
        "the verdict is the first thing read:\n{text}"
    );
    assert!(dom.contains("<a href=\"#approvals\">1 pending approval</a>"), "{dom}");
    assert!(dom.contains("<a href=\"#firing\">1 failed action</a>"), "{dom}");
    in_order(
        &text,
        &[
            "Alerts firing",
            "what hostmedic did",
            // Critical first, its summary as text (escaped, never markup).
            "critical WorkerDown 2026-11-01 10:00:00 UTC (",
            "worker <b>down</b> & out",
            "exec ok (",
            " s ago): exit status 0; worker restarted",
            "warning DiskFull",
            "exec failed (",
            " s ago): exit status 3; no space",
            "warning Runaway",
            "waiting for approval (",
            &format!(
                "hostmedic --config {} approve {id}",
                dir.path().join("hostmedic.toml").display()
            ),
            "Pending approvals",
            &format!("{id} ask-runaway"),
            &format!(
                "hostmedic --config {} approve {id}",
                dir.path().join("hostmedic.toml").display()
            ),
            "Holds none",
            "Host",
        ],
    );
    assert!(!dom.contains("<b>down</b>"), "alert text is escaped: {dom}");
}

#[tokio::test(flavor = "multi_thread")]
async fn absent_sources_read_not_watched_instead_of_none() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("empty-sys")).unwrap();
    let cfg = TestConfig::new()
        .global(|g| {
            g.path("sysfs_root", d.join("empty-sys"));
        })
        .section("systemd", |s| {
            s.set("bus_address", format!("unix:path={}", d.join("no-bus").display()));
        })
        .section("docker", |s| {
            s.set("host", format!("unix://{}", d.join("no-docker.sock").display()));
        })
        .disable(&["git_lfs", "paths", "probes", "logfile"])
        .write(d.join("hostmedic.toml"));
    let bin = Binary::start(&cfg, d);
    first_collection(&bin).await;

    let (dom, text) = load(&chromium, &bin.url("/"), "sources-absent");
    assert!(
        text.starts_with("OK — nothing needs you (the receiver is off: no alerts are handled here) hostmedic "),
        "an absent source is not a failure:\n{text}"
    );
    in_order(
        &text,
        &[
            "Host",
            "failed units not watched (no source)",
            "unhealthy containers not watched (no source)",
            "expected units missing not watched (no source)",
            "not watched (no source) hwmon, docker, systemd",
            "Temperatures not watched (no source)",
            "Collectors",
            "docker source absent",
            "systemd source absent",
        ],
    );
    assert!(!text.contains("failed units none"), "{text}");
    assert!(!dom.contains("api/v1/status"), "no status API without the receiver");
    assert!(bin.log().contains("first collection at start done"), "{}", bin.log());
}
