//! The systemd collector and the D-Bus helpers against a real systemd 252
//! booted as PID 1 in a private rootfs (tests/support/src/systemd.rs): crash loop
//! (S1), failing timer (S2), expected unit not installed (S3), a user
//! manager, the bus going away, a hung bus, and `unit_state_series`
//! ("all" against "current" on the same units).
//!
//! Over 600 lines on purpose: every test shares one booted-rootfs fixture and
//! its scrape helpers; the scenarios are listed above.

use crate::common;

use std::time::{Duration, Instant, SystemTime};

use common::config::{Section, TestConfig};
use common::systemd::{Spec, SystemdMachine, boot_or_skip};
use common::*;
use hostmedic::config::Config;
use hostmedic::metrics::MetricSet;

const SUCCESS: &str = "hostmedic_scrape_collector_success";

/// The systemd collector alone on `m`'s bus (no user managers, 1 s calls,
/// 4 s per collector); `systemd` adds or overrides keys of `[systemd]`.
fn config(m: &SystemdMachine, systemd: impl FnOnce(&mut Section)) -> Config {
    config_timed(m, "4s", systemd)
}

/// [`config`] with `collector_timeout` as given.
fn config_timed(m: &SystemdMachine, collector_timeout: &str, systemd: impl FnOnce(&mut Section)) -> Config {
    TestConfig::new()
        .disable(&["host", "hwmon"])
        .global(|g| {
            g.set("collector_timeout", collector_timeout);
        })
        .section("systemd", |s| {
            s.set("bus_address", m.bus_address())
                .set("user_managers", "none")
                .set("call_timeout", "1s");
            systemd(s);
        })
        .parse()
}

fn value(set: &MetricSet, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    set.value(name, labels)
}

fn success(set: &MetricSet) -> Option<f64> {
    set.value(SUCCESS, &[("collector", "systemd")])
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The one `unit_info` sample of `name`, as its label map.
fn info_labels(set: &MetricSet, manager: &str, name: &str) -> Option<std::collections::BTreeMap<String, String>> {
    let fam = set.get("hostmedic_systemd_unit_info")?;
    fam.samples
        .iter()
        .find(|s| {
            s.labels.iter().any(|(k, v)| k == "name" && v == name)
                && s.labels.iter().any(|(k, v)| k == "manager" && v == manager)
        })
        .map(|s| s.labels.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
}

const CRASHY: &str = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sh -c 'exit 3'\n\
                      Restart=always\nRestartSec=300ms\n";
const HEALTHY: &str = "[Service]\nExecStart=/bin/sleep infinity\n";

/// S1: a Restart=always unit whose ExecStart fails. NRestarts rises across
/// scrapes and is exported as a counter with the exit status and result.
#[tokio::test(flavor = "multi_thread")]
async fn crash_loop_restart_counter_rises_with_exit_status() {
    let Some(m) = boot_or_skip(
        Spec::new()
            .enabled_unit("crashy.service", CRASHY)
            .enabled_unit("healthy.service", HEALTHY),
    ) else {
        return;
    };
    let srv = InProcess::start(config(&m, |_| {})).await;
    let restarts = "hostmedic_systemd_service_restarts";
    let crashy = [("manager", "system"), ("name", "crashy.service")];

    let first = eventually(Duration::from_secs(20), "crashy restarted at least once", || async {
        let set = srv.app.scrape().await;
        assert_eq!(success(&set), Some(1.0), "{:?}", srv.app.runner.status());
        // systemd resets Result to success when it starts the next attempt
        // (hostmedic keeps the last exit status; see
        // exit_status_of_the_last_exit_is_kept_while_the_next_attempt_runs):
        // take a scrape between attempts, where Result says exit-code.
        let exited = value(&set, "hostmedic_systemd_service_exec_main_status", &crashy) == Some(3.0)
            && info_labels(&set, "system", "crashy.service").is_some_and(|i| i["result"] == "exit-code");
        value(&set, restarts, &crashy)
            .filter(|n| *n >= 1.0 && exited)
            .map(|n| (n, set))
    })
    .await;
    let (n1, set) = first;
    assert_eq!(
        value(&set, "hostmedic_systemd_service_exec_main_status", &crashy),
        Some(3.0)
    );
    let info = info_labels(&set, "system", "crashy.service").expect("crashy unit_info");
    assert_eq!(info["result"], "exit-code", "{info:?}");
    assert_eq!(info["type"], "service");
    assert_eq!(info["load_state"], "loaded");
    // The healthy one is active, never restarted, entered active recently.
    let healthy = [("manager", "system"), ("name", "healthy.service")];
    assert_eq!(
        value(
            &set,
            "hostmedic_systemd_unit_state",
            &[("name", "healthy.service"), ("state", "active")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &set,
            "hostmedic_systemd_unit_state",
            &[("name", "healthy.service"), ("state", "failed")]
        ),
        Some(0.0)
    );
    assert_eq!(value(&set, restarts, &healthy), Some(0.0));
    let entered = value(&set, "hostmedic_systemd_unit_active_enter_timestamp_seconds", &healthy).unwrap();
    assert!(
        (now() - entered).abs() < 600.0,
        "active enter {entered} vs now {}",
        now()
    );
    assert!(
        value(
            &set,
            "hostmedic_systemd_units",
            &[("manager", "system"), ("state", "active")]
        )
        .unwrap()
            >= 1.0
    );
    let version = set.get("hostmedic_systemd_info").expect("systemd_info").samples[0]
        .labels
        .clone();
    assert!(
        version.iter().any(|(k, v)| k == "version" && v.starts_with("252")),
        "{version:?}"
    );
    assert_eq!(
        value(&set, "hostmedic_systemd_manager_up", &[("manager", "system")]),
        Some(1.0)
    );
    // Default filter: no slices, scopes, mounts or devices.
    let names: Vec<String> = set
        .get("hostmedic_systemd_unit_info")
        .unwrap()
        .samples
        .iter()
        .filter_map(|s| s.labels.iter().find(|(k, _)| k == "name").map(|(_, v)| v.clone()))
        .collect();
    assert!(
        names.iter().all(|n| !n.ends_with(".slice") && !n.ends_with(".mount")),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n == "dbus.service"), "{names:?}");

    // It keeps restarting: a later scrape sees a higher counter, matching
    // what systemctl reports at about the same time.
    let n2 = eventually(Duration::from_secs(20), "NRestarts to rise", || async {
        let set = srv.app.scrape().await;
        value(&set, restarts, &crashy).filter(|n| *n > n1)
    })
    .await;
    let shown: f64 = m.show("crashy.service", "NRestarts").parse().unwrap();
    assert!(shown >= n2, "systemctl says {shown}, we said {n2}");

    // The text exposition carries the counter with its _total suffix.
    let (code, body) = get(&srv.url("/metrics")).await;
    assert_eq!(code, 200);
    assert!(
        body.contains("hostmedic_systemd_service_restarts_total{manager=\"system\",name=\"crashy.service\"}"),
        "{body}"
    );
    srv.stop().await;
}

/// S2: a timer firing a oneshot whose script is gone: the service is failed
/// with exit status 2, the timer's trigger times are exported and
/// timer_unit_failed is 1; a timer whose service succeeds shows 0.
/// A crash-looping service that runs a while before each failure: systemd
/// resets ExecMainStatus to 0 whenever it starts the next attempt, so most
/// reads see 0. hostmedic exports the status of the last main process that
/// exited (from the change signals, or a read between attempts) on every
/// scrape once one has exited — with and without the property cache.
#[tokio::test(flavor = "multi_thread")]
async fn exit_status_of_the_last_exit_is_kept_while_the_next_attempt_runs() {
    const SLOW_CRASH: &str = "[Unit]\nStartLimitIntervalSec=0\n[Service]\n\
                              ExecStart=/bin/sh -c 'sleep 1.5; exit 7'\nRestart=always\nRestartSec=100ms\n";
    let Some(m) = boot_or_skip(Spec::new().enabled_unit("slow.service", SLOW_CRASH)) else {
        return;
    };
    let slow = [("manager", "system"), ("name", "slow.service")];
    for refresh in [None, Some("0s")] {
        let srv = InProcess::start(config(&m, |s| {
            if let Some(r) = refresh {
                s.set("refresh_interval", r);
            }
        }))
        .await;
        eventually(Duration::from_secs(20), "slow.service exited once", || async {
            let set = srv.app.scrape().await;
            (value(&set, "hostmedic_systemd_service_exec_main_status", &slow) == Some(7.0)).then_some(())
        })
        .await;
        // From now on every scrape says 7, although the unit spends most of
        // its time running the next attempt (systemd itself reads 0 then).
        let (mut running_seen, mut scrapes) = (0, 0);
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            let set = srv.app.scrape().await;
            assert_eq!(
                value(&set, "hostmedic_systemd_service_exec_main_status", &slow),
                Some(7.0),
                "refresh_interval {refresh:?}"
            );
            if m.show("slow.service", "ExecMainStatus") == "0" {
                running_seen += 1;
            }
            scrapes += 1;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        assert!(
            running_seen > 0,
            "systemd read 0 at some point during {scrapes} scrapes (the case under test)"
        );
        srv.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn timer_with_missing_script_is_failed_with_trigger_times() {
    let timer = "[Timer]\nOnActiveSec=1s\nOnUnitActiveSec=2s\nAccuracySec=1ms\n";
    let Some(m) = boot_or_skip(
        Spec::new()
            .unit(
                "health-check.service",
                "[Service]\nType=oneshot\nExecStart=/bin/sh /usr/local/bin/health-check.sh\n",
            )
            .enabled_unit("health-check.timer", timer)
            .unit("tick.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n")
            .enabled_unit("tick.timer", timer),
    ) else {
        return;
    };
    let srv = InProcess::start(config(&m, |_| {})).await;
    let hc = [
        ("manager", "system"),
        ("timer", "health-check.timer"),
        ("unit", "health-check.service"),
    ];
    let set = eventually(Duration::from_secs(20), "health-check to have failed", || async {
        let set = srv.app.scrape().await;
        let failed = value(
            &set,
            "hostmedic_systemd_unit_state",
            &[("name", "health-check.service"), ("state", "failed")],
        );
        let ticked = value(
            &set,
            "hostmedic_systemd_timer_last_trigger_timestamp_seconds",
            &[("timer", "tick.timer")],
        );
        // Exit status and state come from two reads; a tick between them
        // (every 2 s) would show a running attempt, so wait for a quiet scrape.
        let status = value(
            &set,
            "hostmedic_systemd_service_exec_main_status",
            &[("name", "health-check.service")],
        );
        (failed == Some(1.0) && status == Some(2.0) && ticked.is_some_and(|t| t > 0.0)).then_some(set)
    })
    .await;
    assert_eq!(success(&set), Some(1.0));
    let svc = [("manager", "system"), ("name", "health-check.service")];
    assert_eq!(
        value(&set, "hostmedic_systemd_service_exec_main_status", &svc),
        Some(2.0)
    );
    let info = info_labels(&set, "system", "health-check.service").unwrap();
    assert_eq!(
        (info["result"].as_str(), info["sub_state"].as_str()),
        ("exit-code", "failed")
    );
    assert_eq!(value(&set, "hostmedic_systemd_timer_unit_failed", &hc), Some(1.0));
    let last = value(&set, "hostmedic_systemd_timer_last_trigger_timestamp_seconds", &hc).unwrap();
    let next = value(&set, "hostmedic_systemd_timer_next_elapse_timestamp_seconds", &hc).unwrap();
    let t = now();
    assert!(last > t - 120.0 && last <= t + 1.0, "last trigger {last}, now {t}");
    assert!(next > t - 5.0 && next < t + 120.0, "next elapse {next}, now {t}");
    assert_eq!(
        value(
            &set,
            "hostmedic_systemd_unit_state",
            &[("name", "health-check.timer"), ("state", "active")]
        ),
        Some(1.0)
    );
    let tick = [("timer", "tick.timer"), ("unit", "tick.service")];
    assert_eq!(value(&set, "hostmedic_systemd_timer_unit_failed", &tick), Some(0.0));

    // The timer keeps firing the failing service: its last trigger moves on.
    eventually(Duration::from_secs(15), "the timer to fire again", || async {
        let set = srv.app.scrape().await;
        value(&set, "hostmedic_systemd_timer_last_trigger_timestamp_seconds", &hc).filter(|v| *v > last)
    })
    .await;
    srv.stop().await;
}

/// S3: expected units. One has no unit file (not-found, distinct from
/// inactive), one is installed but not loaded (ListUnits omits it), one is
/// active. Also filtered out by `exclude`, the expected ones still appear.
#[tokio::test(flavor = "multi_thread")]
async fn expected_unit_not_found_is_exported_as_such() {
    let Some(m) = boot_or_skip(
        Spec::new()
            .enabled_unit("healthy.service", HEALTHY)
            .unit("idle.service", "[Service]\nExecStart=/bin/sleep infinity\n"),
    ) else {
        return;
    };
    // Also covers the uncached path (no change subscription).
    let srv = InProcess::start(config(&m, |s| {
        s.strings("expect", ["api.service", "idle.service", "healthy.service"])
            .set("exclude", r".+\.service")
            .set("refresh_interval", "0s");
    }))
    .await;
    let set = srv.app.scrape().await;
    assert_eq!(success(&set), Some(1.0), "{:?}", srv.app.runner.status());
    let e = |n: &'static str| [("manager", "system"), ("name", n)];
    let present = "hostmedic_systemd_expected_unit_present";
    let active = "hostmedic_systemd_expected_unit_active";
    assert_eq!(value(&set, present, &e("api.service")), Some(0.0));
    assert_eq!(value(&set, active, &e("api.service")), Some(0.0));
    assert_eq!(value(&set, present, &e("idle.service")), Some(1.0));
    assert_eq!(value(&set, active, &e("idle.service")), Some(0.0));
    assert_eq!(value(&set, present, &e("healthy.service")), Some(1.0));
    assert_eq!(value(&set, active, &e("healthy.service")), Some(1.0));
    let api = info_labels(&set, "system", "api.service").expect("not-found unit still has unit_info");
    assert_eq!(api["load_state"], "not-found");
    assert_eq!(
        value(
            &set,
            "hostmedic_systemd_unit_state",
            &[("name", "api.service"), ("state", "inactive")]
        ),
        Some(1.0)
    );
    assert_eq!(
        info_labels(&set, "system", "idle.service").unwrap()["load_state"],
        "loaded"
    );
    // exclude applies to everything else.
    assert!(info_labels(&set, "system", "dbus.service").is_none());

    // The helper remediation uses tells "not installed" apart.
    let conn = hostmedic::systemd::connect(
        &hostmedic::systemd::ManagerTarget::system(Some(&m.bus_address())),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let st = hostmedic::systemd::unit_status(&conn, "api.service").await.unwrap();
    assert!(!st.is_installed(), "{st:?}");
    assert_eq!(st.active_state, "inactive");
    srv.stop().await;
}

/// The typed helpers the remediation actions call, on the real manager:
/// status, restart, stop + mask, unmask + start, reset-failed, disable/enable.
#[tokio::test(flavor = "multi_thread")]
async fn unit_helpers_drive_the_real_manager() {
    use hostmedic::systemd as sd;
    let Some(m) = boot_or_skip(
        Spec::new()
            .enabled_vendor_unit(
                "crashy.service",
                &(CRASHY.to_string() + "[Install]\nWantedBy=multi-user.target\n"),
            )
            .enabled_unit(
                "healthy.service",
                &(HEALTHY.to_string() + "[Install]\nWantedBy=multi-user.target\n"),
            ),
    ) else {
        return;
    };
    let conn = sd::connect(
        &sd::ManagerTarget::system(Some(&m.bus_address())),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let st = sd::unit_status(&conn, "healthy.service").await.unwrap();
    assert_eq!((st.active_state.as_str(), st.sub_state.as_str()), ("active", "running"));
    assert_eq!((st.n_restarts, st.result.as_deref()), (Some(0), Some("success")));
    let before = m.show("healthy.service", "MainPID");
    sd::restart_unit(&conn, "healthy.service").await.unwrap();
    m.wait_for(Duration::from_secs(10), "a new MainPID", |m| {
        let p = m.show("healthy.service", "MainPID");
        p != before && p != "0"
    });

    // S1 remediation: stop the loop and mask it (a packaged unit: masking one
    // under /etc/systemd/system is refused with UnitExists, as by systemctl).
    // ExecMainStatus is reset while a new main process runs, so wait for a
    // moment between attempts (auto-restart) to see the exit status.
    let st = sd::wait_for_status(&conn, "crashy.service", Duration::from_secs(20), |s| {
        s.n_restarts.unwrap_or(0) >= 2 && s.exec_main_status == Some(3)
    })
    .await
    .unwrap();
    assert_eq!(st.exec_main_status, Some(3), "{st:?}");
    assert_eq!(st.result.as_deref(), Some("exit-code"), "{st:?}");
    sd::stop_unit(&conn, "crashy.service").await.unwrap();
    let changes = sd::mask_unit_files(&conn, &["crashy.service"]).await.unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c.kind == "symlink" && c.destination == "/dev/null"),
        "{changes:?}"
    );
    sd::reload(&conn).await.unwrap();
    let st = sd::wait_for_status(&conn, "crashy.service", Duration::from_secs(10), |s| {
        s.load_state == "masked" && s.active_state != "activating"
    })
    .await
    .unwrap();
    assert_eq!(st.load_state, "masked", "{st:?}");
    assert!(m.systemctl(&["is-enabled", "crashy.service"]).1.contains("masked"));
    // A masked unit refuses to start.
    assert!(sd::start_unit(&conn, "crashy.service").await.is_err());
    sd::unmask_unit_files(&conn, &["crashy.service"]).await.unwrap();
    sd::reload(&conn).await.unwrap();
    sd::reset_failed_unit(&conn, "crashy.service").await.unwrap();
    let st = sd::unit_status(&conn, "crashy.service").await.unwrap();
    assert_eq!((st.load_state.as_str(), st.n_restarts), ("loaded", Some(0)), "{st:?}");

    // An administrator's unit (in /etc) cannot be masked without force.
    let err = sd::mask_unit_files(&conn, &["healthy.service"]).await.unwrap_err();
    assert_eq!(
        err.dbus_error_name(),
        Some("org.freedesktop.systemd1.UnitExists"),
        "{err}"
    );
    let changes = sd::disable_unit_files(&conn, &["healthy.service"]).await.unwrap();
    assert!(changes.iter().any(|c| c.kind == "unlink"), "{changes:?}");
    assert_eq!(m.systemctl(&["is-enabled", "healthy.service"]).1.trim(), "disabled");
    sd::enable_unit_files(&conn, &["healthy.service"]).await.unwrap();
    assert_eq!(m.systemctl(&["is-enabled", "healthy.service"]).1.trim(), "enabled");
    // GetUnit on an unknown unit is NoSuchUnit; unit_status falls back to LoadUnit.
    let mgr = sd::manager(&conn).await.unwrap();
    let err = sd::timed("GetUnit", Duration::from_secs(5), mgr.get_unit("nope.service"))
        .await
        .unwrap_err();
    assert!(matches!(err, sd::SystemdError::NoSuchUnit(_)), "{err}");
}

/// A user manager (user@1000.service started by lingering) in the same
/// process as the system manager, found by auto-discovery of
/// <runtime dir>/<uid>/bus and labelled user:<name>.
#[tokio::test(flavor = "multi_thread")]
async fn user_manager_is_discovered_and_labelled() {
    let Some(m) = boot_or_skip(
        Spec::new()
            .enabled_unit("healthy.service", HEALTHY)
            .file(
                "/home/medic/.config/systemd/user/hello.service",
                "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=default.target\n",
                0o644,
            )
            .file(
                "/home/medic/.config/systemd/user/oops.service",
                "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'exit 7'\n",
                0o644,
            )
            .linger("medic"),
    ) else {
        return;
    };
    // Enable hello.service for the user the way `systemctl --user enable` would.
    let wants = m.rootfs().join("home/medic/.config/systemd/user/default.target.wants");
    std::fs::create_dir_all(&wants).unwrap();
    std::os::unix::fs::symlink("../hello.service", wants.join("hello.service")).unwrap();
    // The user manager may have started before the symlink: make it re-read.
    let bus = m.root().join("run/user/1000/bus");
    m.wait_for(Duration::from_secs(30), "the user bus", |_| bus.exists());
    let user = |args: &[&str]| m.systemctl_user("medic", 1000, args);
    user(&["daemon-reload"]);
    user(&["start", "hello.service"]);
    user(&["start", "oops.service"]);

    let cfg = config(&m, |s| {
        s.set("user_managers", "auto")
            .path("user_runtime_dir", m.root().join("run/user"))
            .path("passwd_file", m.rootfs().join("etc/passwd"))
            .strings("expect", ["user:medic/hello.service", "user:medic/gone.service"]);
    });
    let srv = InProcess::start(cfg).await;
    let set = eventually(
        Duration::from_secs(20),
        "hello.service active in the user manager",
        || async {
            let set = srv.app.scrape().await;
            (value(
                &set,
                "hostmedic_systemd_expected_unit_active",
                &[("manager", "user:medic"), ("name", "hello.service")],
            ) == Some(1.0))
            .then_some(set)
        },
    )
    .await;
    assert_eq!(success(&set), Some(1.0));
    assert_eq!(
        value(&set, "hostmedic_systemd_manager_up", &[("manager", "user:medic")]),
        Some(1.0)
    );
    assert_eq!(
        value(&set, "hostmedic_systemd_manager_up", &[("manager", "system")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &set,
            "hostmedic_systemd_expected_unit_present",
            &[("manager", "user:medic"), ("name", "gone.service")]
        ),
        Some(0.0)
    );
    let oops = [("manager", "user:medic"), ("name", "oops.service")];
    assert_eq!(
        value(&set, "hostmedic_systemd_service_exec_main_status", &oops),
        Some(7.0)
    );
    // The user's units are not mixed into the system manager's.
    assert!(info_labels(&set, "system", "hello.service").is_none());
    assert!(info_labels(&set, "user:medic", "healthy.service").is_none());
    assert!(set.get("hostmedic_systemd_info").unwrap().samples.len() >= 2);
    srv.stop().await;
}

/// The bus goes away mid-run (dbus stopped inside the machine): the scrape
/// still answers, systemd success=0, and it recovers (reconnects) when the
/// bus is back.
#[tokio::test(flavor = "multi_thread")]
async fn bus_going_away_gives_success_zero_then_recovers() {
    let Some(m) = boot_or_skip(Spec::new().enabled_unit("healthy.service", HEALTHY)) else {
        return;
    };
    let srv = InProcess::start(config(&m, |_| {})).await;
    let set = srv.app.scrape().await;
    assert_eq!(success(&set), Some(1.0), "{:?}", srv.app.runner.status());

    let (ok, out) = m.systemctl(&["stop", "dbus.socket", "dbus.service"]);
    assert!(ok, "{out}");
    let start = Instant::now();
    let set = srv.app.scrape().await;
    assert!(start.elapsed() < Duration::from_secs(6));
    assert_eq!(success(&set), Some(0.0));
    assert_eq!(
        value(&set, "hostmedic_collector_source_present", &[("collector", "systemd")]),
        Some(1.0),
        "a bus that went away is a failure, not an absent source"
    );
    assert!(
        set.get("hostmedic_systemd_unit_state")
            .is_none_or(|f| f.samples.is_empty())
    );
    // The HTTP endpoint answers too.
    let (code, body) = get(&srv.url("/metrics")).await;
    assert_eq!(code, 200);
    assert!(
        body.contains("hostmedic_scrape_collector_success{collector=\"systemd\"} 0"),
        "{body}"
    );

    let (ok, out) = m.systemctl(&["start", "dbus.socket", "dbus.service"]);
    assert!(ok, "{out}");
    eventually(Duration::from_secs(20), "the collector to recover", || async {
        let set = srv.app.scrape().await;
        (success(&set) == Some(1.0)
            && value(
                &set,
                "hostmedic_systemd_unit_state",
                &[("name", "healthy.service"), ("state", "active")],
            ) == Some(1.0))
        .then_some(())
    })
    .await;
    srv.stop().await;
}

/// A hung bus (dbus-daemon frozen with SIGSTOP): the scrape answers within the
/// collector timeout with success=0, and recovers after SIGCONT.
#[tokio::test(flavor = "multi_thread")]
async fn hung_bus_gives_success_zero_within_timeout() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let Some(m) = boot_or_skip(Spec::new().enabled_unit("healthy.service", HEALTHY)) else {
        return;
    };
    let srv = InProcess::start(config(&m, |_| {})).await;
    assert_eq!(success(&srv.app.scrape().await), Some(1.0));
    let pids = m.cgroup_pids("system.slice/dbus.service");
    assert!(
        !pids.is_empty(),
        "dbus-daemon pid not found in {}",
        m.cgroup().display()
    );
    for p in &pids {
        kill(Pid::from_raw(*p), Signal::SIGSTOP).unwrap();
    }
    for _ in 0..2 {
        let start = Instant::now();
        let set = srv.app.scrape().await;
        let took = start.elapsed();
        assert_eq!(success(&set), Some(0.0));
        // collector_timeout is 4 s; call_timeout 1 s.
        assert!(took < Duration::from_secs(6), "scrape took {took:?}");
    }
    for p in &pids {
        kill(Pid::from_raw(*p), Signal::SIGCONT).unwrap();
    }
    eventually(Duration::from_secs(20), "recovery after SIGCONT", || async {
        (success(&srv.app.scrape().await) == Some(1.0)).then_some(())
    })
    .await;
    srv.stop().await;
}

/// No bus at all: the collector reports its source absent (not a failure).
#[tokio::test]
async fn no_bus_is_source_absent() {
    let cfg = TestConfig::new()
        .disable(&["host", "hwmon"])
        .section("systemd", |s| {
            s.set("bus_address", "unix:path=/nonexistent/hostmedic-test/bus")
                .set("user_managers", "none");
        })
        .parse();
    let app = hostmedic::app::App::new(cfg).unwrap();
    let set = app.scrape().await;
    assert_eq!(success(&set), Some(0.0));
    assert_eq!(
        set.value("hostmedic_collector_source_present", &[("collector", "systemd")]),
        Some(0.0)
    );
}

/// `hostmedic_systemd_unit_state{…}` samples as (name, state, value), sorted.
fn unit_states(set: &MetricSet) -> Vec<(String, String, f64)> {
    let label = |s: &hostmedic::metrics::Sample, k: &str| {
        s.labels
            .iter()
            .find(|(lk, _)| lk == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut v: Vec<_> = set
        .get("hostmedic_systemd_unit_state")
        .map(|f| f.samples.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|s| match s.value {
            hostmedic::metrics::Value::Number(n) => (label(s, "name"), label(s, "state"), n),
            ref other => panic!("unit_state is a gauge, got {other:?}"),
        })
        .collect();
    v.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    v
}

/// `unit_state_series = "current"` exports exactly the series `"all"` sets
/// to 1 (one per unit, the current state) and none of the zeros; `"all"`
/// (the default) keeps six per unit. Units in three states on one manager.
#[tokio::test(flavor = "multi_thread")]
async fn unit_state_series_current_keeps_only_the_current_state() {
    let Some(m) = boot_or_skip(
        Spec::new()
            .enabled_unit("healthy.service", HEALTHY)
            .enabled_unit("broken.service", "[Service]\nType=oneshot\nExecStart=/bin/false\n")
            .unit("idle.service", HEALTHY),
    ) else {
        return;
    };
    // idle.service is not pulled in at boot, so not loaded: `expect` makes
    // the collector ask for it by name.
    let only = |s: &mut Section| {
        s.set("include", r"(healthy|broken|idle)\.service")
            .strings("expect", ["idle.service"]);
    };
    let all = InProcess::start(config(&m, only)).await;
    let current = InProcess::start(config(&m, |s| {
        only(s);
        s.set("unit_state_series", "current");
    }))
    .await;
    // Both read the same manager; the oneshot has failed at boot already.
    let (all_set, cur_set) = eventually(Duration::from_secs(20), "two scrapes of the same states", || async {
        let a = all.app.scrape().await;
        let c = current.app.scrape().await;
        let ones: Vec<_> = unit_states(&a).into_iter().filter(|s| s.2 == 1.0).collect();
        (success(&a) == Some(1.0) && success(&c) == Some(1.0) && ones == unit_states(&c) && ones.len() == 3)
            .then_some((a, c))
    })
    .await;

    let all_states = unit_states(&all_set);
    assert_eq!(
        all_states.len(),
        3 * 6,
        "six series per unit by default: {all_states:?}"
    );
    assert_eq!(all_states.iter().filter(|s| s.2 == 0.0).count(), 3 * 5);
    let want = [
        ("broken.service", "failed"),
        ("healthy.service", "active"),
        ("idle.service", "inactive"),
    ];
    let want: Vec<(String, String, f64)> = want.iter().map(|(n, s)| (n.to_string(), s.to_string(), 1.0)).collect();
    let got = unit_states(&cur_set);
    assert_eq!(got, want, "one series per unit, its current state, value 1");
    // Everything else the collector exports is the same in both modes.
    for fam in ["hostmedic_systemd_unit_info", "hostmedic_systemd_units"] {
        let n = |set: &MetricSet| set.get(fam).map(|f| f.samples.len());
        assert_eq!(n(&all_set), n(&cur_set), "{fam}");
    }
    // A state change moves the one series: the unit that was idle starts.
    let (ok, out) = m.systemctl(&["start", "idle.service"]);
    assert!(ok, "{out}");
    eventually(Duration::from_secs(20), "idle.service active, one series", || async {
        let c = current.app.scrape().await;
        let idle: Vec<_> = unit_states(&c).into_iter().filter(|s| s.0 == "idle.service").collect();
        (idle == [("idle.service".to_string(), "active".to_string(), 1.0)]).then_some(())
    })
    .await;
    all.stop().await;
    current.stop().await;
}

#[test]
fn unit_state_series_rejects_unknown_values_naming_the_key() {
    // Raw TOML on purpose: the test is about parsing the key's values.
    let Err(err) = Config::parse("[systemd]\nunit_state_series = \"some\"\n", "test") else {
        panic!("\"some\" is not a mode");
    };
    let msg = format!("{err:#}");
    assert!(msg.contains("unit_state_series"), "{msg}");
    for ok in ["all", "current"] {
        Config::parse(&format!("[systemd]\nunit_state_series = \"{ok}\"\n"), "test").expect(ok);
    }
}

/// Many services read uncached with many units in flight: the collector
/// keeps its pending D-Bus calls under the bus's per-connection limit
/// (dbus-daemon refuses the 129th with `LimitsExceeded`, which used to lose
/// those units' data while the scrape still said success), so every unit is
/// exported on every scrape.
#[tokio::test(flavor = "multi_thread")]
async fn many_units_read_at_once_stay_under_the_bus_pending_call_limit() {
    const N: usize = 300;
    let mut spec = Spec::new();
    for i in 0..N {
        spec = spec.enabled_unit(
            &format!("gen-{i:03}.service"),
            "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n",
        );
    }
    let Some(m) = boot_or_skip(spec) else { return };
    m.wait_for(Duration::from_secs(60), "the generated units started", |m| {
        m.show("gen-299.service", "ActiveState") == "active"
    });
    let cfg = config_timed(&m, "30s", |s| {
        s.set("call_timeout", "20s")
            .set("refresh_interval", "0s")
            .set("max_concurrency", 64);
    });
    let srv = InProcess::start(cfg).await;
    for scrape in 0..3 {
        let set = srv.app.scrape().await;
        assert_eq!(success(&set), Some(1.0), "scrape {scrape}");
        let exported = set
            .get("hostmedic_systemd_service_restarts")
            .map(|f| {
                f.samples
                    .iter()
                    .filter(|s| s.labels.iter().any(|(k, v)| k == "name" && v.starts_with("gen-")))
                    .count()
            })
            .unwrap_or(0);
        assert_eq!(exported, N, "scrape {scrape}: restart counters of the generated units");
    }
    srv.stop().await;
}
