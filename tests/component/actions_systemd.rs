//! systemd actions against a real systemd booted in a separate rootfs
//! (tests/support/src/systemd.rs): restart of a healthy unit, stop + mask of a
//! crash-looping unit, a not-installed unit refused, disable / reset-failed /
//! unmask, a timer stopped, shed-load of units, and a user manager.

use crate::common;

use std::time::Duration;

use common::systemd::{Spec, SystemdMachine, boot_or_skip};
use hostmedic::actions::{
    self, ActionEnv, ActionSpec, Alert, AlertStatus, Context, OutcomeResult, Resolved, ShedLoadAction, SystemdAction,
    SystemdOp, Verification,
};

const CRASHY: &str = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=1\n[Install]\nWantedBy=multi-user.target\n";
const HEALTHY: &str = "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n";

fn env(m: &SystemdMachine) -> ActionEnv {
    m.action_env()
}

fn alert(unit: &str) -> Alert {
    Alert {
        alertname: "UnitFailed".into(),
        status: AlertStatus::Firing,
        labels: [("name".to_string(), unit.to_string())].into(),
        fingerprint: "f00d".into(),
        starts_at: "2026-11-22T07:00:00Z".into(),
        ..Alert::default()
    }
}

fn spec(op: SystemdOp) -> ActionSpec {
    spec_for(op, "system")
}

fn spec_for(op: SystemdOp, manager: &str) -> ActionSpec {
    ActionSpec::from(SystemdAction {
        op,
        unit: "{{ labels.name }}".into(),
        manager: manager.into(),
    })
}

async fn act(s: &ActionSpec, unit: &str, env: &ActionEnv) -> (Resolved, actions::Outcome) {
    s.compile("test.action", &Context::default()).expect("valid spec");
    let a = alert(unit);
    let t = s
        .compile("test.action", &Context::default())
        .expect("valid spec")
        .resolve(&a)
        .expect("target");
    let o = t.run(&a, env).await;
    (t, o)
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_of_a_healthy_unit_is_verified() {
    let Some(m) = boot_or_skip(Spec::new().enabled_unit("healthy.service", HEALTHY)) else {
        return;
    };
    let env = env(&m);
    m.wait_for(Duration::from_secs(20), "healthy active", |m| {
        m.show("healthy.service", "ActiveState") == "active"
    });
    let pid_before = m.show("healthy.service", "MainPID");
    let s = spec(SystemdOp::Restart);
    let (t, o) = act(&s, "healthy.service", &env).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    assert!(o.detail.contains("restart job"), "{}", o.detail);
    assert_eq!(t.verify(&env, Duration::from_secs(20)).await, Verification::Verified);
    assert_ne!(
        m.show("healthy.service", "MainPID"),
        pid_before,
        "main process not replaced"
    );

    // Dry-run reads the state but changes nothing.
    let dry = ActionEnv {
        dry_run: true,
        ..env.clone()
    };
    let (_, o) = act(&spec(SystemdOp::Stop), "healthy.service", &dry).await;
    assert_eq!(o.result, OutcomeResult::DryRun, "{}", o.detail);
    assert!(o.detail.contains("loaded active/running"), "{}", o.detail);
    assert_eq!(m.show("healthy.service", "ActiveState"), "active");
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_loop_is_stopped_and_masked() {
    // A packaged unit (/usr/lib): masking puts /etc/systemd/system/crashy.service -> /dev/null.
    let spec_ = Spec::new()
        .file("/usr/lib/systemd/system/crashy.service", CRASHY, 0o644)
        .unit("fails.service", "[Service]\nExecStart=/bin/false\n")
        .unit("admin.service", HEALTHY);
    let Some(m) = boot_or_skip(spec_) else { return };
    let env = env(&m);
    let (ok, out) = m.systemctl(&["start", "crashy.service"]);
    assert!(ok || out.contains("failed"), "{out}");
    // Between two attempts (`auto-restart`), not in the instant /bin/false
    // runs, so the last attempt's exit status is what systemd reports.
    m.wait_for(Duration::from_secs(30), "crashy restarting", |m| {
        m.show("crashy.service", "NRestarts").parse::<u32>().unwrap_or(0) >= 2
            && m.show("crashy.service", "SubState") == "auto-restart"
    });
    // A restart does not help a crash loop: verification says so.
    let restart = spec(SystemdOp::Restart);
    let (t, o) = act(&restart, "crashy.service", &env).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    assert!(o.detail.contains("last exit status 1"), "{}", o.detail);
    let v = t.verify(&env, Duration::from_secs(4)).await;
    assert!(matches!(v, Verification::NotHelped(_)), "{v:?}");

    // S1: stop, then mask.
    let stop = spec(SystemdOp::Stop);
    let (t, o) = act(&stop, "crashy.service", &env).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    assert_eq!(t.verify(&env, Duration::from_secs(15)).await, Verification::Verified);
    let mask = spec(SystemdOp::Mask);
    let (t, o) = act(&mask, "crashy.service", &env).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    assert!(o.detail.contains("/dev/null"), "{}", o.detail);
    assert_eq!(t.verify(&env, Duration::from_secs(10)).await, Verification::Verified);
    assert_eq!(m.systemctl(&["is-enabled", "crashy.service"]).1.trim(), "masked");
    let n = m.show("crashy.service", "NRestarts");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(m.show("crashy.service", "NRestarts"), n, "still restarting");
    assert_ne!(m.show("crashy.service", "ActiveState"), "active");
    // Starting a masked unit fails (systemd refuses), reported as failed.
    let (_, o) = act(&spec(SystemdOp::Start), "crashy.service", &env).await;
    assert_eq!(o.result, OutcomeResult::Failed, "{}", o.detail);

    // An administrator's unit (its file in /etc/systemd/system) cannot be
    // masked (systemd answers UnitExists, as to `systemctl mask`; a runtime
    // mask in /run would be outranked by /etc): it is disabled instead, the
    // detail says so, and that is what verification checks.
    let (ok, out) = m.systemctl(&["enable", "admin.service"]);
    assert!(ok, "{out}");
    let (t, o) = act(&mask, "admin.service", &env).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    assert!(o.detail.contains("NOT masked"), "{}", o.detail);
    assert!(o.detail.contains("disabled instead"), "{}", o.detail);
    assert_eq!(t.verify(&env, Duration::from_secs(10)).await, Verification::Verified);
    assert_eq!(m.systemctl(&["is-enabled", "admin.service"]).1.trim(), "disabled");
    assert!(
        m.rootfs().join("etc/systemd/system/admin.service").is_file(),
        "the administrator's file is untouched"
    );

    // reset-failed clears a failed unit's state.
    let (_, out) = m.systemctl(&["start", "fails.service"]);
    m.wait_for(Duration::from_secs(10), "fails failed", |m| {
        m.show("fails.service", "ActiveState") == "failed"
    });
    let rf = spec(SystemdOp::ResetFailed);
    let (t, o) = act(&rf, "fails.service", &env).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{} ({out})", o.detail);
    assert!(o.detail.contains("failed/failed"), "{}", o.detail);
    assert_eq!(t.verify(&env, Duration::from_secs(5)).await, Verification::Verified);
    assert_ne!(m.show("fails.service", "ActiveState"), "failed");
    // unmask undoes the mask.
    let unmask = spec(SystemdOp::Unmask);
    let (t, o) = act(&unmask, "crashy.service", &env).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    assert_eq!(t.verify(&env, Duration::from_secs(10)).await, Verification::Verified);
    assert!(!m.rootfs().join("etc/systemd/system/crashy.service").exists());
    // reset-failed of a unit systemd has unloaded is not an error.
    let (_, o) = act(&rf, "fails.service", &env).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
}

#[tokio::test(flavor = "multi_thread")]
async fn not_installed_unit_is_refused_and_disable_and_timer_stop_work() {
    let timer = "[Timer]\nOnActiveSec=1h\n[Install]\nWantedBy=timers.target\n";
    let oneshot = "[Service]\nType=oneshot\nExecStart=/bin/true\n";
    let Some(m) = boot_or_skip(
        Spec::new()
            .enabled_unit("healthy.service", HEALTHY)
            .unit("check.service", oneshot)
            .enabled_unit("check.timer", timer),
    ) else {
        return;
    };
    let env = env(&m);
    // S3: never restart a unit that has no unit file.
    let (_, o) = act(&spec(SystemdOp::Restart), "ghost.service", &env).await;
    assert_eq!(o.result, OutcomeResult::Refused, "{}", o.detail);
    assert!(o.detail.contains("not installed"), "{}", o.detail);
    assert_eq!(m.show("ghost.service", "LoadState"), "not-found");

    // S2: stop the timer.
    m.wait_for(Duration::from_secs(20), "timer active", |m| {
        m.show("check.timer", "ActiveState") == "active"
    });
    let stop = spec(SystemdOp::Stop);
    let (t, o) = act(&stop, "check.timer", &env).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    assert_eq!(t.verify(&env, Duration::from_secs(10)).await, Verification::Verified);
    assert_eq!(m.show("check.timer", "ActiveState"), "inactive");

    let disable = spec(SystemdOp::Disable);
    assert_eq!(m.systemctl(&["is-enabled", "healthy.service"]).1.trim(), "enabled");
    let (t, o) = act(&disable, "healthy.service", &env).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    assert!(o.detail.contains("unlink"), "{}", o.detail);
    assert_eq!(t.verify(&env, Duration::from_secs(10)).await, Verification::Verified);
    assert_eq!(m.systemctl(&["is-enabled", "healthy.service"]).1.trim(), "disabled");

    // A unit whose file is in /etc/systemd/system cannot be masked (systemctl
    // refuses the same way): it is left disabled instead, the detail says
    // so, and the unit file is kept.
    let (_, o) = act(&spec(SystemdOp::Mask), "healthy.service", &env).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    assert!(o.detail.contains("NOT masked"), "{}", o.detail);
    assert_eq!(m.systemctl(&["is-enabled", "healthy.service"]).1.trim(), "disabled");
    assert!(m.rootfs().join("etc/systemd/system/healthy.service").is_file());

    // Hostile label values never reach D-Bus.
    for bad in [
        "a/b.service",
        "../x.service",
        "x; rm -rf /",
        "$(id)",
        "a b.service",
        "healthy",
    ] {
        assert!(
            spec(SystemdOp::Stop)
                .compile("test.action", &Context::default())
                .expect("valid spec")
                .resolve(&alert(bad))
                .is_err(),
            "{bad:?}"
        );
    }
    assert_eq!(m.show("healthy.service", "ActiveState"), "active");
}

#[tokio::test(flavor = "multi_thread")]
async fn shed_load_stops_units_and_user_manager_is_reachable() {
    let user_unit = "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=default.target\n";
    let Some(m) = boot_or_skip(
        Spec::new()
            .enabled_unit("healthy.service", HEALTHY)
            .enabled_unit("batch.service", HEALTHY)
            .file("/home/medic/.config/systemd/user/bot.service", user_unit, 0o644)
            .linger("medic"),
    ) else {
        return;
    };
    let env = env(&m);
    m.wait_for(Duration::from_secs(20), "units active", |m| {
        m.show("batch.service", "ActiveState") == "active" && m.show("healthy.service", "ActiveState") == "active"
    });
    let shed = ActionSpec::from(ShedLoadAction {
        units: vec!["batch.service".into(), "nosuch.service".into()],
        containers: vec![],
        manager: "system".into(),
    });
    let (t, o) = act(&shed, "", &env).await;
    assert_eq!(
        o.result,
        OutcomeResult::Failed,
        "one unit is not installed: {}",
        o.detail
    );
    assert!(o.detail.contains("unit batch.service: stop job"), "{}", o.detail);
    assert!(
        o.detail.contains("unit nosuch.service: FAILED: not installed"),
        "{}",
        o.detail
    );
    m.wait_for(Duration::from_secs(15), "batch stopped", |m| {
        m.show("batch.service", "ActiveState") == "inactive"
    });
    assert_eq!(m.show("healthy.service", "ActiveState"), "active");
    let v = t.verify(&env, Duration::from_secs(3)).await;
    assert_eq!(v, Verification::Verified, "a not-installed unit counts as stopped");

    // The user manager of `medic` (lingering): start its unit over its own bus.
    m.wait_for(Duration::from_secs(30), "user manager up", |m| {
        m.show("user@1000.service", "ActiveState") == "active"
    });
    let start = spec_for(SystemdOp::Start, "user:medic");
    let (t, o) = act(&start, "bot.service", &env).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    assert!(o.detail.contains("--user (medic)"), "{}", o.detail);
    assert_eq!(t.verify(&env, Duration::from_secs(15)).await, Verification::Verified);
    let out = m.systemctl_user("medic", 1000, &["is-active", "bot.service"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "active");
}
