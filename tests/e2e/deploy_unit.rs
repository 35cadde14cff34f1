//! The Debian package, installed for real into the systemd test rootfs,
//! runs hostmedic as a unit of that real systemd with the shipped hardening,
//! and every kind of action still works from inside the sandbox.
//!
//! The package is built by the test (`cargo deb --no-build --profile dev`:
//! the debug binary the test suite already built, stripped, about 2 s — no
//! release build) and installed with `dpkg -i` inside the booted machine, so
//! its maintainer scripts enable and start the unit as on a real host. The
//! test then does what an operator does: edits the conffile
//! `/etc/hostmedic/hostmedic.toml` (receiver on, a token, a remediation map)
//! and restarts the unit. No drop-in: the effective unit is the shipped one,
//! checked with `systemctl show` and the main process's own capability set.
//!
//! hostmedic listens on 127.0.0.1:9877 inside the machine's network
//! namespace; the test reaches it from a thread that joined that namespace
//! (`setns`), POSTs Alertmanager-format webhooks, and checks the effects in
//! the machine (systemctl), the journal and /metrics.

use crate::common;

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::config::{Action, Rule, TestConfig};
use common::git_lfs::{self, Repo};
use common::systemd::{Spec, SystemdMachine, boot_or_skip};
use hostmedic::receiver::journal::{self, Entry, Event};
use serde_json::{Value, json};

const TOKEN: &str = "deploy-unit-test-token-0123456789";
const LISTEN: &str = "127.0.0.1:9877";

/// Fails at its first start, runs for good from the second on.
const FLAKY: &str = "[Service]\nStateDirectory=flaky\nExecStart=/bin/sh -c 'if [ -e /var/lib/flaky/second ]; then exec /bin/sleep infinity; fi; touch /var/lib/flaky/second; exit 3'\n[Install]\nWantedBy=multi-user.target\n";
/// A process of another user for the kill action (a sleep stands in for a
/// runaway: the action matches its command line, not its CPU use).
const RUNAWAY: &str = "[Service]\nUser=medic\nExecStart=/bin/sleep 86400\n[Install]\nWantedBy=multi-user.target\n";
const TIMER: &str = "[Timer]\nOnActiveSec=1h\n[Install]\nWantedBy=timers.target\n";
const TIMER_SERVICE: &str = "[Service]\nType=oneshot\nExecStart=/bin/false\n";

/// The conffile as the operator edits it: receiver on, one rule per action.
fn operator_config() -> TestConfig {
    let manager_system = |r: Rule| r.strings("matchers", [r#"manager="system""#]);
    TestConfig::new()
        .section("web", |w| {
            w.set("listen_address", LISTEN);
        })
        .disable(&["docker"])
        .section("systemd", |s| {
            s.strings("expect", ["flaky.service"]);
        })
        .section("git_lfs", |g| {
            g.strings("repos", ["/srv/repo"]);
        })
        .receiver(Path::new("/var/lib/hostmedic"), |r| {
            r.set("bearer_token_file", "/etc/hostmedic/webhook.token");
        })
        .rule(
            manager_system(Rule::new("restart-failed", "HostmedicUnitFailed"))
                .action(Action::systemd("restart", "{{ labels.name }}")),
        )
        .rule(
            manager_system(Rule::new("timer-service-failing", "HostmedicTimerServiceFailing"))
                .action(Action::systemd("stop", "{{ labels.timer }}"))
                .action(Action::systemd("mask", "{{ labels.unit }}")),
        )
        .rule(
            Rule::new("runaway-kill", "HostmedicRunawayProcess").action(
                Action::new("kill")
                    .set("allow", "^/bin/sleep 86400$")
                    .set("start_time", "{{ labels.start_time }}")
                    .set("grace", "2s"),
            ),
        )
        .rule(
            Rule::new("checkpoint-as-nobody", "DeployTestCheckpoint").action(
                Action::exec(["/usr/bin/id"])
                    .set("user", "nobody")
                    .set("group", "nogroup")
                    .set("timeout", "10s"),
            ),
        )
        .rule(
            Rule::new("slow-exec", "DeployTestSlow").action(Action::exec(["/bin/sleep", "600"]).set("timeout", "20m")),
        )
}

fn alert(name: &str, labels: &[(&str, &str)], fp: &str) -> Value {
    let mut l = serde_json::Map::new();
    l.insert("alertname".into(), json!(name));
    for (k, v) in labels {
        l.insert((*k).into(), json!(v));
    }
    json!({"receiver": "hostmedic", "status": "firing", "alerts": [{
        "status": "firing", "labels": l, "annotations": {"summary": "deploy test"},
        "startsAt": "2026-12-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph", "fingerprint": fp}],
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://alertmanager", "version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0})
}

/// One HTTP request to hostmedic inside the machine, from a thread that
/// joined the machine's network namespace (sockets belong to the namespace
/// of the thread that creates them).
fn request(pid: i32, method: &str, path: &str, body: Option<Value>) -> Result<(u16, String), String> {
    let (method, url) = (method.to_string(), format!("http://{LISTEN}{path}"));
    std::thread::spawn(move || {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).map_err(|e| e.to_string())?;
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| e.to_string())?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            let client = common::client();
            let mut r = match method.as_str() {
                "POST" => client.post(&url).bearer_auth(TOKEN),
                _ => client.get(&url),
            };
            if let Some(b) = body {
                r = r.json(&b);
            }
            let resp = r
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let code = resp.status().as_u16();
            Ok((code, resp.text().await.map_err(|e| e.to_string())?))
        })
    })
    .join()
    .map_err(|_| "request thread panicked".to_string())?
}

fn post(m: &SystemdMachine, body: Value) {
    let (code, text) = request(m.pid(), "POST", "/api/v1/alerts", Some(body)).expect("webhook delivered");
    assert_eq!(code, 200, "webhook answer: {text}");
}

fn metrics(m: &SystemdMachine) -> String {
    let (code, text) = request(m.pid(), "GET", "/metrics", None).expect("scrape");
    assert_eq!(code, 200, "{text}");
    text
}

/// The value of the first sample whose line starts with `name{` and
/// contains every fragment.
fn sample(body: &str, name: &str, fragments: &[&str]) -> Option<f64> {
    body.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| fragments.iter().all(|f| l.contains(f)))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn run_ok(m: &SystemdMachine, argv: &[&str]) -> String {
    let out = m.exec(argv);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{argv:?} in the machine: {text}");
    text
}

fn journal_of(m: &SystemdMachine) -> Vec<Entry> {
    journal::read_from(&m.rootfs().join("var/lib/hostmedic/journal.jsonl"), 0)
        .map(|(e, _)| e)
        .unwrap_or_default()
}

/// Waits for `rule`'s `Verify` entry and returns its result (or, when one
/// of its actions did not succeed, what that action said).
fn wait_verify(m: &SystemdMachine, rule: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = journal_of(m).into_iter().find_map(|e| match e.event {
            Event::Verify { rule: r, result, .. } if r == rule => Some(result.to_string()),
            Event::Action {
                rule: r,
                action,
                result,
                detail,
                ..
            } if r == rule && result != "ok" => Some(format!("{action} {result}: {detail}")),
            _ => None,
        });
        if let Some(r) = found {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "no verify entry for {rule}; journal:\n{}\nunit log:\n{}",
            std::fs::read_to_string(m.rootfs().join("var/lib/hostmedic/journal.jsonl")).unwrap_or_default(),
            String::from_utf8_lossy(
                &m.exec(&["journalctl", "-u", "hostmedic", "--no-pager", "-n", "50"])
                    .stdout
            )
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `(action, result, detail)` of `rule`'s `Action` entries.
fn actions_of(m: &SystemdMachine, rule: &str) -> Vec<(String, String, String)> {
    journal_of(m)
        .into_iter()
        .filter_map(|e| match e.event {
            Event::Action {
                rule: r,
                action,
                result,
                detail,
                ..
            } if r == rule => Some((action, result.to_string(), detail)),
            _ => None,
        })
        .collect()
}

/// What systemd and hostmedic say about the unit (for failure messages).
fn unit_log(m: &SystemdMachine) -> String {
    let st = m.systemctl(&["status", "--no-pager", "-l", "hostmedic"]).1;
    let log = m.exec(&["journalctl", "-u", "hostmedic", "--no-pager", "-n", "60"]);
    format!("{st}\n{}", String::from_utf8_lossy(&log.stdout))
}

fn wait_active(m: &SystemdMachine, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while m.show("hostmedic.service", "ActiveState") != "active" {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{}",
            unit_log(m)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Builds the package from the already built debug binary; `None` (after
/// skip_or_fail) when cargo-deb is missing.
fn build_deb(out_dir: &Path) -> Option<PathBuf> {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_hostmedic"));
    let target_dir = bin.parent().and_then(Path::parent).expect("<target>/debug/hostmedic");
    let deb = out_dir.join("hostmedic.deb");
    let t0 = Instant::now();
    let out = match Command::new("cargo")
        .args([
            "deb",
            "--no-build",
            "--profile",
            "dev",
            "--fast",
            "--quiet",
            "--manifest-path",
        ])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("-o")
        .arg(&deb)
        .env("CARGO_TARGET_DIR", target_dir)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            common::skip_or_fail(&format!("cannot run cargo: {e}"));
            return None;
        }
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("no such command") {
            common::skip_or_fail("cargo-deb is not installed (scripts/test installs it)");
            return None;
        }
        panic!("cargo deb failed: {err}");
    }
    eprintln!(
        "cargo deb --no-build --profile dev: {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    Some(deb)
}

/// Capability bits of a `CapBnd:` hex mask.
fn cap_bits(hex: &str) -> Vec<u32> {
    let v = u64::from_str_radix(hex.trim(), 16).expect("hex mask");
    (0..64).filter(|b| v & (1 << b) != 0).collect()
}

/// Polls `f` every 200 ms until it returns `Some`; fails after `within`
/// with `what` and the unit's log.
fn wait_some<T>(m: &SystemdMachine, within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}:\n{}", unit_log(m));
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits for the last `Action` entry of `rule` (`what` names it when none comes).
fn wait_action(m: &SystemdMachine, rule: &str, what: &str) -> (String, String, String) {
    wait_some(m, Duration::from_secs(30), what, || actions_of(m, rule).pop())
}

/// The units the actions work on: one that fails once, another user's
/// runaway, a vendor timer with its service.
fn machine_spec() -> Spec {
    Spec::new()
        .enabled_unit("flaky.service", FLAKY)
        .enabled_unit("runaway.service", RUNAWAY)
        .enabled_vendor_unit("cleanup.timer", TIMER)
        .file("/usr/lib/systemd/system/cleanup.service", TIMER_SERVICE, 0o644)
}

/// An LFS repository with two objects at /srv/repo in the machine (git is
/// not there: hostmedic reads repositories itself).
fn copy_lfs_repo(m: &SystemdMachine, work: &Path) {
    let repo = Repo::init_lfs(&work.join("repo"), &["*.bin"]);
    repo.write("data/a.bin", &b"first LFS object\n".repeat(50));
    repo.write("data/b.bin", &b"second LFS object\n".repeat(80));
    repo.commit(&[".gitattributes", "data/a.bin", "data/b.bin"], "two objects");
    std::fs::create_dir_all(m.rootfs().join("srv")).unwrap();
    let st = Command::new("cp")
        .arg("-a")
        .arg(&repo.dir)
        .arg(m.rootfs().join("srv/repo"))
        .status()
        .unwrap();
    assert!(st.success());
    assert!(
        !m.exec(&["sh", "-c", "command -v git"]).status.success(),
        "git is in the rootfs"
    );
}

/// `dpkg -i` (the maintainer scripts enable and start the unit), then the
/// operator's edit of the conffile and a restart.
fn install_and_configure(m: &SystemdMachine, deb: &Path) {
    std::fs::copy(deb, m.rootfs().join("root/hostmedic.deb")).unwrap();
    run_ok(m, &["dpkg", "-i", "/root/hostmedic.deb"]);
    assert_eq!(m.show("hostmedic.service", "UnitFileState"), "enabled");
    wait_active(m, "hostmedic started by the package");

    std::fs::write(m.rootfs().join("etc/hostmedic/webhook.token"), TOKEN).unwrap();
    std::fs::write(
        m.rootfs().join("etc/hostmedic/hostmedic.toml"),
        operator_config().render(),
    )
    .unwrap();
    run_ok(m, &["hostmedic", "check-config", "/etc/hostmedic/hostmedic.toml"]);
    run_ok(m, &["systemctl", "restart", "hostmedic"]);
    wait_active(m, "hostmedic restarted with the operator's configuration");
}

/// The effective unit is the shipped one, hardening included.
fn effective_unit_is_the_shipped_one(m: &SystemdMachine) {
    assert_eq!(m.show("hostmedic.service", "DropInPaths"), "");
    // The packaged file (bookworm's merged /usr shows it as /lib/…).
    let fragment = m.show("hostmedic.service", "FragmentPath");
    assert!(
        [
            "/lib/systemd/system/hostmedic.service",
            "/usr/lib/systemd/system/hostmedic.service"
        ]
        .contains(&fragment.as_str()),
        "{fragment}"
    );
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/hostmedic.service")).unwrap();
    for line in shipped.lines().filter(|l| !l.starts_with('#') && l.contains('=')) {
        let (key, value) = line.split_once('=').unwrap();
        if [
            "yes",
            "strict",
            "read-only",
            "native",
            "notify",
            "main",
            "on-failure",
            "hostmedic",
        ]
        .contains(&value)
        {
            assert_eq!(m.show("hostmedic.service", key), value, "effective {key}=");
        }
    }
    let caps = m.show("hostmedic.service", "CapabilityBoundingSet");
    let mut effective: Vec<String> = caps.split_whitespace().map(str::to_uppercase).collect();
    let mut wanted: Vec<String> = shipped
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("bounding set in the unit")
        .split_whitespace()
        .map(String::from)
        .collect();
    effective.sort();
    wanted.sort();
    assert_eq!(effective, wanted);
}

/// The running process is confined as the unit says: bounding set,
/// no_new_privs, seccomp.
fn running_process_is_confined(m: &SystemdMachine) {
    let host_pid = *m
        .cgroup_pids("system.slice/hostmedic.service")
        .first()
        .expect("hostmedic's pid");
    let status = std::fs::read_to_string(format!("/proc/{host_pid}/status")).unwrap();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    // CAP_DAC_READ_SEARCH 2, CAP_KILL 5, CAP_SETGID 6, CAP_SETUID 7.
    assert_eq!(cap_bits(&field("CapBnd:")), vec![2, 5, 6, 7], "{status}");
    assert_eq!(field("NoNewPrivs:"), "1");
    assert_eq!(field("Seccomp:"), "2");
}

/// /metrics: units read over the bus, the LFS repository scanned.
fn metrics_show_units_and_the_lfs_repository(m: &SystemdMachine) {
    let body = metrics(m);
    let state = |body: &str, unit: &str, s: &str| {
        sample(
            body,
            "hostmedic_systemd_unit_state",
            &[
                &format!("name=\"{unit}\""),
                &format!("state=\"{s}\""),
                "manager=\"system\"",
            ],
        )
    };
    assert_eq!(state(&body, "flaky.service", "failed"), Some(1.0), "{body}");
    assert_eq!(state(&body, "dbus.service", "active"), Some(1.0), "{body}");
    assert_eq!(state(&body, "hostmedic.service", "active"), Some(1.0), "{body}");
    let lfs = ["repo=\"/srv/repo\""];
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let body = metrics(m);
        if sample(&body, "hostmedic_git_lfs_objects", &lfs).is_some() || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(sample(&body, "hostmedic_git_lfs_repo_up", &lfs), Some(1.0), "{body}");
    assert_eq!(sample(&body, "hostmedic_git_lfs_objects", &lfs), Some(2.0), "{body}");
    common::promtool_check_metrics(&body);
}

/// Restarts a failed unit.
fn restarts_a_failed_unit(m: &SystemdMachine) {
    post(
        m,
        alert(
            "HostmedicUnitFailed",
            &[("manager", "system"), ("name", "flaky.service")],
            "0000000000000001",
        ),
    );
    assert_eq!(wait_verify(m, "restart-failed"), "verified");
    assert_eq!(m.show("flaky.service", "ActiveState"), "active");
}

/// Stops a timer and masks its service.
fn stops_a_timer_and_masks_its_service(m: &SystemdMachine) {
    m.wait_for(Duration::from_secs(10), "cleanup.timer active", |m| {
        m.show("cleanup.timer", "ActiveState") == "active"
    });
    post(
        m,
        alert(
            "HostmedicTimerServiceFailing",
            &[
                ("manager", "system"),
                ("timer", "cleanup.timer"),
                ("unit", "cleanup.service"),
            ],
            "0000000000000002",
        ),
    );
    assert_eq!(wait_verify(m, "timer-service-failing"), "verified");
    assert_eq!(m.show("cleanup.timer", "ActiveState"), "inactive");
    assert_eq!(m.show("cleanup.service", "UnitFileState"), "masked");
}

/// Kills an allowed runaway process of another user (CAP_KILL).
fn kills_an_allowed_runaway_of_another_user(m: &SystemdMachine) {
    let in_pid = m.show("runaway.service", "MainPID");
    let runaway_host = *m
        .cgroup_pids("system.slice/runaway.service")
        .first()
        .expect("runaway's pid");
    let start = hostmedic::actions::kill::proc_info(Path::new("/proc"), runaway_host)
        .unwrap()
        .start_time;
    post(
        m,
        alert(
            "HostmedicRunawayProcess",
            &[("pid", &in_pid), ("start_time", &format!("{start}"))],
            "0000000000000003",
        ),
    );
    assert_eq!(wait_verify(m, "runaway-kill"), "verified");
    assert!(
        std::fs::metadata(format!("/proc/{runaway_host}")).is_err() || m.show("runaway.service", "MainPID") != in_pid
    );
}

/// exec as nobody:nogroup from inside the sandbox (CAP_SETUID, CAP_SETGID).
fn execs_as_nobody_from_the_sandbox(m: &SystemdMachine) {
    post(m, alert("DeployTestCheckpoint", &[], "0000000000000004"));
    let exec = wait_action(m, "checkpoint-as-nobody", "exec action never ran");
    assert_eq!(exec.1, "ok", "{exec:?}");
    assert!(
        exec.2
            .contains("uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"),
        "{exec:?}"
    );
}

/// systemd-analyze security, online, for the unit as started here.
fn exposure_is_what_the_docs_say(m: &SystemdMachine) {
    let sec = String::from_utf8_lossy(
        &m.exec(&["systemd-analyze", "security", "--no-pager", "hostmedic.service"])
            .stdout,
    )
    .into_owned();
    let overall = sec
        .lines()
        .find_map(|l| l.strip_prefix("→ Overall exposure level for hostmedic.service: "))
        .unwrap_or_else(|| panic!("no overall exposure in:\n{sec}"))
        .to_string();
    eprintln!("systemd-analyze security hostmedic.service (online): {overall}");
    for l in sec.lines().filter(|l| l.starts_with('✗')) {
        eprintln!("  {}", l.split_whitespace().take(2).collect::<Vec<_>>().join(" "));
    }
    let score: f64 = overall.split_whitespace().next().unwrap().parse().unwrap();
    assert!(
        score <= 3.0,
        "exposure {overall} is worse than docs/deploy.md says:\n{sec}"
    );
}

/// `systemctl reload`: the operator adds a rule to the conffile; the same
/// process (no restart) takes it, and what it had journaled still counts.
fn reload_takes_an_added_rule_in_the_same_process(m: &SystemdMachine) {
    let pid_before = m.show("hostmedic.service", "MainPID");
    let seq_before = journal_of(m).last().map(|e| e.seq).unwrap_or(0);
    let config = operator_config()
        .rule(
            Rule::new("added-by-reload", "DeployTestReloaded").action(
                Action::exec(["/usr/bin/id", "-u"])
                    .set("user", "nobody")
                    .set("timeout", "10s"),
            ),
        )
        .render();
    std::fs::write(m.rootfs().join("etc/hostmedic/hostmedic.toml"), config).unwrap();
    run_ok(m, &["systemctl", "reload", "hostmedic"]);
    wait_some(m, Duration::from_secs(30), "no reload logged", || {
        unit_log(m).contains("configuration reloaded").then_some(())
    });
    let body = metrics(m);
    assert!(
        body.lines().any(|l| l == "hostmedic_config_last_reload_successful 1"),
        "reload not counted as successful"
    );
    assert_eq!(
        m.show("hostmedic.service", "MainPID"),
        pid_before,
        "reload restarted the process"
    );
    post(m, alert("DeployTestReloaded", &[], "0000000000000005"));
    let added = wait_action(m, "added-by-reload", "the reloaded rule never ran");
    assert_eq!(added.1, "ok", "{added:?}");
    assert!(added.2.contains("65534"), "{added:?}");
    // The journal goes on from where it was: nothing before the reload lost,
    // the reloaded rule's entries numbered after it.
    let after = journal_of(m);
    assert!(
        after.iter().any(|e| e.seq == seq_before),
        "entries before the reload kept"
    );
    assert!(
        after
            .iter()
            .filter(|e| matches!(&e.event, Event::Action { rule, .. } if rule == "added-by-reload"))
            .all(|e| e.seq > seq_before),
        "the sequence goes on after the reload"
    );
}

/// The pid (in the machine) of the process `rule`'s first decision spawned,
/// once the journal has it.
fn spawned_pid(m: &SystemdMachine, rule: &str) -> Option<u32> {
    let j = journal_of(m);
    let id = j.iter().find_map(|e| match &e.event {
        Event::Decision { id, rule: r, .. } if r == rule => Some(id.clone()),
        _ => None,
    })?;
    j.iter().find_map(|e| match &e.event {
        Event::Spawned { id: s, pid, .. } if *s == id => Some(*pid),
        _ => None,
    })
}

/// kill -9 in the middle of an action, under systemd: the default
/// KillMode=control-group ends the exec with the main process; the unit
/// comes back (Restart=on-failure) and journals the plan `interrupted`,
/// its process group already ended.
fn kill9_mid_action_is_journaled_interrupted(m: &SystemdMachine) {
    post(m, alert("DeployTestSlow", &[], "0000000000000006"));
    let pid = wait_some(m, Duration::from_secs(30), "the slow exec never started", || {
        spawned_pid(m, "slow-exec")
    });
    let alive = |pid: u32| m.exec(&["test", "-e", &format!("/proc/{pid}")]).status.success();
    assert!(alive(pid), "the exec runs");
    let main_before = m.show("hostmedic.service", "MainPID");
    run_ok(
        m,
        &["systemctl", "kill", "--signal=SIGKILL", "--kill-whom=main", "hostmedic"],
    );
    let detail = wait_some(m, Duration::from_secs(60), "no interrupted outcome", || {
        actions_of(m, "slow-exec")
            .into_iter()
            .find(|a| a.1 == "interrupted")
            .map(|a| a.2)
    });
    assert_ne!(m.show("hostmedic.service", "MainPID"), main_before, "restarted");
    assert_ne!(m.show("hostmedic.service", "NRestarts"), "0");
    assert!(!alive(pid), "systemd ended the exec with the main process");
    assert!(detail.contains("had already ended"), "{detail}");
}

/// A clean stop writes the final checkpoint: it covers the whole journal.
fn clean_stop_checkpoints_the_whole_journal(m: &SystemdMachine) {
    run_ok(m, &["systemctl", "stop", "hostmedic"]);
    assert_eq!(m.show("hostmedic.service", "ActiveState"), "inactive");
    assert_eq!(m.show("hostmedic.service", "Result"), "success");
    assert_eq!(m.show("hostmedic.service", "ExecMainStatus"), "0");
    let entries = journal_of(m);
    let last = entries.last().expect("journal entries");
    let last_action = entries
        .iter()
        .filter(|e| matches!(e.event, Event::Action { .. } | Event::Verify { .. }))
        .map(|e| e.ts)
        .fold(0.0, f64::max);
    let state_path = m.rootfs().join("var/lib/hostmedic/state.json");
    let checkpoint: Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    assert_eq!(checkpoint["last_seq"], json!(last.seq), "{checkpoint}");
    let journal_len = std::fs::metadata(m.rootfs().join("var/lib/hostmedic/journal.jsonl"))
        .unwrap()
        .len();
    assert_eq!(checkpoint["journal_offset"], json!(journal_len));
    let written = std::fs::metadata(&state_path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        written >= last_action,
        "checkpoint at {written}, last action at {last_action}"
    );
}

#[test]
fn packaged_unit_runs_every_action_under_its_hardening() {
    if !git_lfs::tools_present() && common::skip_or_fail("git and git-lfs are needed to prepare the repository") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let Some(deb) = build_deb(work.path()) else {
        return;
    };
    let Some(m) = boot_or_skip(machine_spec()) else {
        return;
    };
    m.wait_for(Duration::from_secs(20), "flaky.service failed", |m| {
        m.show("flaky.service", "ActiveState") == "failed"
    });
    copy_lfs_repo(&m, work.path());
    install_and_configure(&m, &deb);
    effective_unit_is_the_shipped_one(&m);
    running_process_is_confined(&m);
    metrics_show_units_and_the_lfs_repository(&m);
    restarts_a_failed_unit(&m);
    stops_a_timer_and_masks_its_service(&m);
    kills_an_allowed_runaway_of_another_user(&m);
    execs_as_nobody_from_the_sandbox(&m);
    exposure_is_what_the_docs_say(&m);
    reload_takes_an_added_rule_in_the_same_process(&m);
    kill9_mid_action_is_journaled_interrupted(&m);
    clean_stop_checkpoints_the_whole_journal(&m);
}
