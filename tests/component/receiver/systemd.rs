//! The receiver's systemd actions on a real systemd booted in its own rootfs.

use super::*;

const CRASHY: &str = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=1\n[Install]\nWantedBy=multi-user.target\n";

const HEALTHY: &str = "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n";

/// S1/S6 end to end on a real systemd (booted in its own rootfs by
/// tests/support/src/systemd.rs): the webhook restarts a healthy unit (verified);
/// a crash-looping unit is restarted until its budget is spent (not helped),
/// then held, escalated, and stopped + masked by `exhausted_actions`.
#[tokio::test(flavor = "multi_thread")]
async fn systemd_restart_verified_and_crash_loop_budget_stops_and_masks() {
    use common::systemd::{Spec, boot_or_skip};
    let Some(m) = boot_or_skip(
        Spec::new()
            .file("/usr/lib/systemd/system/crashy.service", CRASHY, 0o644)
            .enabled_unit("healthy.service", HEALTHY),
    ) else {
        return;
    };
    let (ok, out) = m.systemctl(&["start", "crashy.service"]);
    assert!(ok || out.contains("failed"), "{out}");
    let fx = Fixture::new();
    let sink = Sink::start().await;
    let d = fx.dir.path();
    let text = TestConfig::new()
        .disable(&["host", "hwmon", "docker"])
        .section("systemd", |s| {
            s.set("enabled", false)
                .set("bus_address", m.bus_address())
                .path("user_runtime_dir", m.root().join("run/user"))
                .path("passwd_file", m.rootfs().join("etc/passwd"));
        })
        .receiver(d, |r| {
            r.path("bearer_token_file", d.join("token"))
                .set("cooldown", "0s")
                .set("verify_timeout", "4s");
        })
        .notify_webhook("sink", &sink.url("/hook"))
        .rule(
            Rule::new("restart-down", "UnitDown")
                .strings("matchers", [r#"manager="system""#])
                .action(Action::systemd("restart", "{{ labels.name }}")),
        )
        .rule(
            Rule::new("crash-loop", "UnitCrashLooping")
                .action(Action::systemd("restart", "{{ labels.name }}"))
                .set("budget_attempts", 2)
                .exhausted_action(Action::systemd("stop", "{{ labels.name }}"))
                .exhausted_action(Action::systemd("mask", "{{ labels.name }}"))
                .strings("escalate", ["sink"]),
        )
        .render();
    let srv = InProcess::start(Config::parse(&text, "test").unwrap()).await;
    let url = srv.url("/api/v1/alerts");
    let results = |fx: &Fixture| -> Vec<(String, String)> {
        fx.journal()
            .iter()
            .filter_map(|e| match &e.event {
                Event::Action { action, result, .. } => Some((action.clone(), result.to_string())),
                Event::Verify { result, .. } => Some(("verify".into(), result.to_string())),
                _ => None,
            })
            .collect()
    };

    // A healthy unit restarted on request: verified active.
    let before = m.show("healthy.service", "ExecMainPID");
    let down = alert(
        "UnitDown",
        &[("manager", "system"), ("name", "healthy.service")],
        "2026-01-01T00:00:00Z",
        "firing",
        "0a",
    );
    assert_eq!(post(&url, Some(TOKEN), &payload(vec![down])).await.0, 200);
    eventually(Duration::from_secs(30), "restart verified", || async {
        results(&fx)
            .contains(&("verify".into(), "verified".into()))
            .then_some(())
    })
    .await;
    assert_ne!(m.show("healthy.service", "ExecMainPID"), before, "restarted");
    assert_eq!(m.show("healthy.service", "ActiveState"), "active");

    // The crash loop: two restarts that do not help, then the budget is spent.
    for (i, s) in ["2026-01-01T01:00:00Z", "2026-01-01T01:10:00Z"].iter().enumerate() {
        let a = alert("UnitCrashLooping", &[("name", "crashy.service")], s, "firing", "0b");
        assert_eq!(post(&url, Some(TOKEN), &payload(vec![a])).await.0, 200);
        eventually(Duration::from_secs(30), "restart judged", || async {
            (results(&fx)
                .iter()
                .filter(|r| r.0 == "verify" && r.1 == "not_helped")
                .count()
                == i + 1)
                .then_some(())
        })
        .await;
    }
    let a = alert(
        "UnitCrashLooping",
        &[("name", "crashy.service")],
        "2026-01-01T01:20:00Z",
        "firing",
        "0b",
    );
    assert_eq!(post(&url, Some(TOKEN), &payload(vec![a])).await.0, 200);
    let esc = eventually(Duration::from_secs(30), "escalation", || async {
        sink.all()
            .into_iter()
            .find(|r| r.body.contains("remediation exhausted"))
    })
    .await;
    assert!(esc.body.contains("systemd:system:crashy.service"), "{}", esc.body);
    assert!(
        esc.body.contains("not_helped"),
        "history shows the failed verifications: {}",
        esc.body
    );
    eventually(Duration::from_secs(30), "stop + mask ran", || async {
        let r = results(&fx);
        (r.contains(&("systemd.stop".into(), "ok".into())) && r.contains(&("systemd.mask".into(), "ok".into())))
            .then_some(())
    })
    .await;
    assert_eq!(m.systemctl(&["is-enabled", "crashy.service"]).1.trim(), "masked");
    let n = m.show("crashy.service", "NRestarts");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(m.show("crashy.service", "NRestarts"), n, "the loop is stopped");
    let restarts = results(&fx).iter().filter(|r| r.0 == "systemd.restart").count();
    assert_eq!(restarts, 3, "1 healthy + 2 crash-loop restarts, none after the budget");
    let (_, metrics) = get(&srv.url("/metrics")).await;
    assert!(
        metrics.contains("hostmedic_actions_total{action=\"systemd.restart\",result=\"verified\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hostmedic_actions_total{action=\"systemd.restart\",result=\"not_helped\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hostmedic_remediation_hold{rule=\"crash-loop\",target=\"systemd:system:crashy.service\"} 1"),
        "{metrics}"
    );
    srv.stop().await;
}
