//! Reload (SIGHUP, `POST /-/reload`) and the self metrics, on the real
//! binary: a changed rule acts while the hold from before survives, a
//! changed collector section is rebuilt while an unchanged one keeps its
//! state (a log follower's count and offset), an invalid file and a key
//! that cannot change are refused with the running configuration kept, and
//! the `process_*` series are plausible and pass promtool. The effect of an
//! action is an `exec` of `/usr/bin/mktemp` creating one file per run.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::config::{Action, Rule, TestConfig};
use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "reload-t0ken-0123456789";

/// The test's folder: token, log file, effects, the config file.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = receiver_dir(TOKEN);
        std::fs::write(dir.path().join("svc.log"), "CRITICAL before start\n").unwrap();
        Fixture { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Files the actions created whose name starts with `prefix`.
    fn effects(&self, prefix: &str) -> usize {
        std::fs::read_dir(self.path("effects"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .count()
    }

    /// The base configuration: receiver with bearer auth, rule `worker`
    /// (`WorkerDown`, budget 1), a log follower on `svc.log`, `[paths]`
    /// watching `watched` files.
    fn config(&self, watched: &[&str]) -> TestConfig {
        let d = self.dir.path();
        let mut cfg = TestConfig::new()
            .disable(&["host", "hwmon", "processes"])
            .single_host("h1")
            .receiver(d, |r| {
                r.path("bearer_token_file", d.join("token")).set("cooldown", "0s");
            })
            .rule(
                Rule::new("worker", "WorkerDown")
                    .action(effect(d, "worker"))
                    .set("budget_attempts", 1),
            )
            .section("logfile", |l| {
                l.set("interval", "50ms").push("watch", |w| {
                    w.path("file", d.join("svc.log"))
                        .pairs("patterns", &[("critical", "CRITICAL")]);
                });
            });
        for name in watched {
            cfg = cfg.section("paths", |p| {
                p.set("scan_interval", "100ms").push("watch", |w| {
                    w.set("name", *name).path("path", d.join(name));
                });
            });
        }
        cfg
    }

    fn write(&self, cfg: &TestConfig) -> PathBuf {
        cfg.write(self.path("hostmedic.toml"))
    }

    fn append_log(&self, text: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.path("svc.log"))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }
}

/// An exec action creating `effects/<prefix>.XXXXXX`.
fn effect(dir: &Path, prefix: &str) -> Action {
    Action::exec(["/usr/bin/mktemp", &format!("{}/effects/{prefix}.XXXXXX", dir.display())])
}

fn firing(name: &str, starts: &str) -> Value {
    json!({"receiver": "hostmedic", "status": "firing", "groupLabels": {}, "commonLabels": {},
           "commonAnnotations": {}, "externalURL": "http://am", "version": "4", "groupKey": "{}:{}",
           "truncatedAlerts": 0,
           "alerts": [{"status": "firing", "labels": {"alertname": name}, "annotations": {},
                       "startsAt": starts, "endsAt": "0001-01-01T00:00:00Z",
                       "generatorURL": "http://prom/graph", "fingerprint": name.bytes().map(|b| format!("{b:02x}")).collect::<String>()}]})
}

async fn post(url: &str, token: Option<&str>, body: Option<&Value>) -> (u16, String) {
    let mut r = client().post(url);
    if let Some(b) = body {
        r = r.json(b);
    }
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Posts one firing alert `name` with the token; the receiver must take it.
async fn fire(hook: &str, name: &str, starts: &str) {
    let (code, body) = post(hook, Some(TOKEN), Some(&firing(name, starts))).await;
    assert_eq!(code, 200, "{body}");
}

/// The value of the first sample of `series` in a classic text scrape:
/// `name` alone, or `name{k="v",…}` matching those labels in any order.
fn sample(body: &str, series: &str) -> Option<f64> {
    let (name, labels) = match series.split_once('{') {
        Some((n, l)) => (n, l.trim_end_matches('}').split(',').collect::<Vec<_>>()),
        None => (series, vec![]),
    };
    body.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        let (have, value) = match rest.strip_prefix('{') {
            Some(r) => r.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        let have: Vec<_> = have.split(',').filter(|p| !p.is_empty()).collect();
        (labels.iter().all(|p| have.contains(p)) && labels.len() == have.len())
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

async fn scrape(bin: &Binary) -> String {
    let (code, body) = get(&bin.url("/metrics")).await;
    assert_eq!(code, 200);
    body
}

async fn wait_sample(bin: &Binary, series: &str, want: f64) {
    eventually(Duration::from_secs(20), &format!("{series} = {want}"), || async {
        (sample(&scrape(bin).await, series) == Some(want)).then_some(())
    })
    .await;
}

async fn wait_effects(fx: &Fixture, prefix: &str, n: usize) {
    eventually(Duration::from_secs(20), &format!("{n} {prefix} effects"), || async {
        (fx.effects(prefix) == n).then_some(())
    })
    .await;
}

fn matched(fx: &Fixture) -> String {
    format!(
        "hostmedic_logfile_matched_lines_total{{file=\"{}\",pattern=\"critical\"}}",
        fx.path("svc.log").display()
    )
}

fn hup(bin: &Binary) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(bin.pid()), nix::sys::signal::Signal::SIGHUP).unwrap();
}

const OK: &str = "hostmedic_config_last_reload_successful";
const AT: &str = "hostmedic_config_last_reload_success_timestamp_seconds";

#[tokio::test(flavor = "multi_thread")]
async fn sighup_swaps_rules_and_changed_collectors_and_keeps_state() {
    let fx = Fixture::new();
    std::fs::write(fx.path("later.txt"), "12345").unwrap();
    let cfg = fx.write(&fx.config(&[]));
    let bin = Binary::start(&cfg, fx.dir.path());
    let hook = bin.url("/api/v1/alerts");
    let before = scrape(&bin).await;
    assert_eq!(sample(&before, OK), Some(1.0), "present from start-up");
    let started_at = sample(&before, AT).expect("success timestamp from start-up");

    // The follower's state: two lines counted since start.
    fx.append_log("CRITICAL one\nCRITICAL two\n");
    wait_sample(&bin, &matched(&fx), 2.0).await;
    // The budget (1) spent, then held.
    fire(&hook, "WorkerDown", "2026-01-01T00:00:00Z").await;
    wait_effects(&fx, "worker", 1).await;
    fire(&hook, "WorkerDown", "2026-01-01T00:10:00Z").await;
    wait_sample(&bin, "hostmedic_remediation_holds_active", 1.0).await;

    // A new rule and a `paths` watch; `[logfile]` unchanged.
    let d = fx.dir.path();
    fx.write(
        &fx.config(&["later.txt"])
            .rule(Rule::new("disk", "DiskFull").action(effect(d, "disk"))),
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    hup(&bin);
    eventually(Duration::from_secs(20), "reload logged", || async {
        bin.log().contains("message=\"configuration reloaded\"").then_some(())
    })
    .await;
    let later = fx.path("later.txt").display().to_string();
    wait_sample(
        &bin,
        &format!("hostmedic_path_size_bytes{{watch=\"later.txt\",path=\"{later}\"}}"),
        5.0,
    )
    .await;
    let after = scrape(&bin).await;
    assert_eq!(sample(&after, OK), Some(1.0));
    assert!(sample(&after, AT).unwrap() > started_at, "success timestamp moves");
    // Kept: the count and the offset (a new follower would start at 0, at the end).
    assert_eq!(sample(&after, &matched(&fx)), Some(2.0), "{after}");
    fx.append_log("CRITICAL three\n");
    wait_sample(&bin, &matched(&fx), 3.0).await;
    // The new rule acts; the hold from before survives.
    fire(&hook, "DiskFull", "2026-01-01T00:20:00Z").await;
    wait_effects(&fx, "disk", 1).await;
    fire(&hook, "WorkerDown", "2026-01-01T00:30:00Z").await;
    let metrics = scrape(&bin).await;
    assert_eq!(sample(&metrics, "hostmedic_remediation_holds_active"), Some(1.0));
    assert_eq!(
        sample(&metrics, "hostmedic_actions_skipped_total{reason=\"hold\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(fx.effects("worker"), 1, "the held target did not run again");
}

#[tokio::test(flavor = "multi_thread")]
async fn post_reload_refuses_an_invalid_file_and_fixed_keys_keeping_the_running_config() {
    let fx = Fixture::new();
    let cfg = fx.write(&fx.config(&[]));
    let bin = Binary::start(&cfg, fx.dir.path());
    let reload = bin.url("/-/reload");
    assert_eq!(get(&reload).await.0, 405);
    assert_eq!(post(&reload, None, None).await.0, 401, "the receiver's credentials");

    // An unknown key: 500 naming it, metric 0, the running config serves on
    // (raw TOML on purpose: an operator's typo appended to the file).
    std::fs::write(
        &cfg,
        format!(
            "{}\n[paths]\nscan_intervall = \"1s\"\n",
            std::fs::read_to_string(&cfg).unwrap()
        ),
    )
    .unwrap();
    let (code, body) = post(&reload, Some(TOKEN), None).await;
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("scan_intervall"), "{body}");
    assert_eq!(sample(&scrape(&bin).await, OK), Some(0.0));
    assert!(bin.log().contains("configuration reload failed"), "{}", bin.log());
    assert!(bin.log().contains("scan_intervall"), "{}", bin.log());
    let hook = bin.url("/api/v1/alerts");
    fire(&hook, "WorkerDown", "2026-01-01T00:00:00Z").await;
    wait_effects(&fx, "worker", 1).await;

    // A key fixed at start-up: refused, named.
    let moved = fx.config(&[]).receiver(fx.dir.path(), |r| {
        r.path("journal_path", fx.path("elsewhere.jsonl"));
    });
    fx.write(&moved);
    let (code, body) = post(&reload, Some(TOKEN), None).await;
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("receiver.journal_path"), "{body}");
    assert!(!fx.path("elsewhere.jsonl").exists());
    let off = fx.config(&[]).section("receiver", |r| {
        r.set("enabled", false);
    });
    fx.write(&off);
    let (code, body) = post(&reload, Some(TOKEN), None).await;
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("receiver.enabled"), "{body}");

    // Back to a valid file: 200, metric 1.
    fx.write(&fx.config(&[]));
    let (code, body) = post(&reload, Some(TOKEN), None).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("kept"), "{body}");
    assert_eq!(sample(&scrape(&bin).await, OK), Some(1.0));
}

/// A reload is judged as `check-config` judges the file: every error, each
/// with the file, its line and its rule, and the rules checked against the
/// file's own `[receiver]` (its 1h cooldown is above the rule's backoff
/// ceiling). The running configuration stays.
#[tokio::test(flavor = "multi_thread")]
async fn reload_lists_every_error_as_check_config_does() {
    let fx = Fixture::new();
    let cfg = fx.write(&fx.config(&[]));
    let bin = Binary::start(&cfg, fx.dir.path());
    let d = fx.dir.path();
    let broken = fx
        .config(&[])
        .receiver(d, |r| {
            r.set("cooldown", "1h");
        })
        .rule(
            Rule::new("grow", "Other")
                .action(effect(d, "grow"))
                .set("backoff_factor", 2.0)
                .set("backoff_max", "10m"),
        )
        .rule(
            Rule::new("re", "Other")
                .action(effect(d, "re"))
                .strings("matchers", ["unit=~\"a(\""]),
        );
    fx.write(&broken);
    let (code, body) = post(&bin.url("/-/reload"), Some(TOKEN), None).await;
    assert_eq!(code, 500, "{body}");
    let errors: Vec<&str> = body
        .lines()
        .filter_map(|l| l.split_once("error: ").map(|(_, e)| e))
        .collect();
    let file = cfg.display().to_string();
    assert_eq!(errors.len(), 2, "{body}");
    assert!(
        errors[0].starts_with(&format!("{file}:"))
            && errors[0].contains(": rule \"grow\": config key `remediation[1].backoff_max`"),
        "{body}"
    );
    assert!(
        errors[1].starts_with(&format!("{file}:"))
            && errors[1].contains(": rule \"re\": config key `remediation[2].matchers[0]`: invalid regex \"a(\""),
        "{body}"
    );
    // The same lines as check-config's on the same file.
    let out = std::process::Command::new(binary_path())
        .arg("check-config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let checked = String::from_utf8_lossy(&out.stderr);
    for e in &errors {
        assert!(
            checked.contains(&format!("error: {e}")),
            "{e}\nnot in check-config's\n{checked}"
        );
    }
    assert_eq!(sample(&scrape(&bin).await, OK), Some(0.0));
    fire(&bin.url("/api/v1/alerts"), "WorkerDown", "2026-01-01T00:00:00Z").await;
    wait_effects(&fx, "worker", 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_reloads_and_sighup_all_succeed() {
    let fx = Fixture::new();
    let cfg = fx.write(&fx.config(&[]));
    let bin = Binary::start(&cfg, fx.dir.path());
    let reload = bin.url("/-/reload");
    let all = futures::future::join_all((0..8).map(|_| post(&reload, Some(TOKEN), None))).await;
    for (code, body) in all {
        assert_eq!(code, 200, "{body}");
    }
    hup(&bin);
    assert_eq!(post(&reload, Some(TOKEN), None).await.0, 200);
    eventually(Duration::from_secs(20), "ten reloads logged", || async {
        (bin.log().matches("message=\"configuration reloaded\"").count() == 10).then_some(())
    })
    .await;
    assert_eq!(sample(&scrape(&bin).await, OK), Some(1.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_default_has_nothing_to_reload() {
    let srv = InProcess::start(hostmedic::config::Config::load(None).unwrap()).await;
    // Not "applied": nothing was re-read (409), and hostmedic keeps running.
    for _ in 0..2 {
        let r = client().post(srv.url("/-/reload")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 409);
        let body = r.text().await.unwrap();
        assert!(body.contains("no configuration file to re-read"), "{body}");
        assert!(!body.contains("reloaded") && !body.contains("applied"), "{body}");
    }
    let (code, _) = crate::common::get(&srv.url("/-/healthy")).await;
    assert_eq!(code, 200);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn process_metrics_are_plausible_and_pass_promtool() {
    let fx = Fixture::new();
    let cfg = fx.write(&fx.config(&[]));
    let bin = Binary::start(&cfg, fx.dir.path());
    let body = scrape(&bin).await;
    let v = |n: &str| sample(&body, n).unwrap_or_else(|| panic!("{n} missing:\n{body}"));
    assert!(v("process_resident_memory_bytes") > 1e6);
    assert!(v("process_virtual_memory_bytes") >= v("process_resident_memory_bytes"));
    assert!(v("process_threads") >= 2.0, "a multi-threaded runtime");
    assert!(v("process_cpu_seconds_total") > 0.0);
    let (open, max) = (v("process_open_fds"), v("process_max_fds"));
    assert!(open >= 3.0 && open < max, "{open} of {max}");
    let age = hostmedic::time::now() - v("process_start_time_seconds");
    assert!((-2.0..60.0).contains(&age), "started {age} s ago");
    assert!(body.contains("# TYPE process_cpu_seconds_total counter"));
    assert!(body.contains("# HELP process_open_fds Number of open file descriptors."));
    promtool_check_metrics(&body);
}
