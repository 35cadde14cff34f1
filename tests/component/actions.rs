//! The typed remediation actions on real parts: real child processes for
//! `exec` and `kill`, a local HTTP server playing ntfy / Telegram / webhook
//! for `notify`, a private Docker engine for `docker` and `shed-load`.
//! (systemd actions against a real systemd rootfs: tests/component/actions_systemd.rs.)
//!
//! Over 600 lines on purpose: one section per action type (the `// ----`
//! markers), sharing the child-process and alert helpers at the top.

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::config::TestConfig;
use common::docker::{BUSYBOX_IMAGE, PrivateEngine};
use common::sink::Sink;
use hostmedic::actions::{
    self, ActionEnv, ActionSpec, Alert, AlertStatus, Context, DockerAction, DockerOp, ExecAction, KillAction,
    NotifyAction, NotifyChannel, OutcomeResult, Resolved, ShedLoadAction, SystemdAction, SystemdOp, Verification,
};

fn alert(labels: &[(&str, &str)]) -> Alert {
    Alert {
        alertname: "TestAlert".into(),
        status: AlertStatus::Firing,
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        annotations: [("summary".to_string(), "something broke".to_string())].into(),
        fingerprint: "0123abcd".into(),
        starts_at: "2026-11-22T07:00:00Z".into(),
    }
}

fn write_script(dir: &Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

async fn resolve_and_run(spec: &ActionSpec, a: &Alert, env: &ActionEnv) -> (Resolved, actions::Outcome) {
    let c = spec
        .compile("test.action", &Context { channels: &env.notify })
        .expect("valid spec");
    let t = c.resolve(a).expect("target resolves");
    let o = t.run(a, env).await;
    (t, o)
}

/// A child process killed on drop (by PID) if still running.
struct Proc(Child);

impl Proc {
    fn spawn(args: &[&str]) -> Proc {
        Proc(Command::new(args[0]).args(&args[1..]).spawn().expect("spawn child"))
    }
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
    fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
    fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let end = Instant::now() + within;
        loop {
            if let Some(st) = self.0.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < end, "child {} did not exit", self.pid());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_time_of(pid: i32) -> f64 {
    actions::kill::proc_info(Path::new("/proc"), pid).unwrap().start_time
}

// ---------------------------------------------------------------- exec

#[tokio::test]
async fn exec_templated_argv_and_minimal_env() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(
        dir.path(),
        "show.sh",
        "for a in \"$@\"; do echo \"arg=$a\"; done; env | sort",
    );
    let spec = ActionSpec::from(ExecAction {
        argv: vec![script, "--disk={{ labels.device }}".into(), "{{ labels.evil }}".into()],
        timeout: Duration::from_secs(10),
        user: None,
        group: None,
    });
    let a = alert(&[("device", "sda1"), ("evil", "$(id); rm -rf / `x`"), ("my_label", "v")]);
    let (t, o) = resolve_and_run(&spec, &a, &ActionEnv::default()).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    let argv = &t.target::<ExecAction>().expect("an exec target").argv;
    assert_eq!(argv[1], "--disk=sda1");
    // No shell: the hostile value arrives as one literal argument.
    assert!(o.detail.contains("arg=--disk=sda1\n"), "{}", o.detail);
    assert!(o.detail.contains("arg=$(id); rm -rf / `x`\n"), "{}", o.detail);
    // Minimal environment: PATH plus HOSTMEDIC_ALERT_* only (sh adds PWD/SHLVL).
    for want in [
        "HOSTMEDIC_ALERT_NAME=TestAlert",
        "HOSTMEDIC_ALERT_STATUS=firing",
        "HOSTMEDIC_ALERT_FINGERPRINT=0123abcd",
        "HOSTMEDIC_ALERT_LABEL_DEVICE=sda1",
        "HOSTMEDIC_ALERT_LABEL_MY_LABEL=v",
        "HOSTMEDIC_ALERT_ANNOTATION_SUMMARY=something broke",
        &format!("PATH={}", actions::exec::EXEC_PATH),
    ] {
        assert!(o.detail.contains(want), "missing {want}: {}", o.detail);
    }
    let vars = o.detail.lines().filter_map(|l| l.split_once('=')).map(|(k, _)| k);
    for var in vars.filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')) {
        if var == "arg" {
            continue;
        }
        assert!(
            var.starts_with("HOSTMEDIC_ALERT_") || ["PATH", "PWD", "SHLVL", "_", "OLDPWD"].contains(&var),
            "unexpected variable {var} leaked into the command's environment"
        );
    }
    assert!(!o.detail.contains("HOME="), "{}", o.detail);
}

#[tokio::test]
async fn exec_failure_and_truncated_output() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(
        dir.path(),
        "noisy.sh",
        "i=0; while [ $i -lt 2000 ]; do echo 0123456789012345678901234567890123456789; i=$((i+1)); done; echo oops >&2; exit 3",
    );
    let spec = ActionSpec::from(ExecAction {
        argv: vec![script],
        timeout: Duration::from_secs(20),
        user: None,
        group: None,
    });
    let (_, o) = resolve_and_run(&spec, &alert(&[]), &ActionEnv::default()).await;
    assert_eq!(o.result, OutcomeResult::Failed, "{}", o.detail);
    assert!(o.detail.len() <= actions::DETAIL_MAX, "{}", o.detail.len());
    assert!(o.detail.contains("exit status 3"), "{}", &o.detail[..200]);
    assert!(o.detail.contains("82000 bytes"), "{}", &o.detail[..200]);
}

#[tokio::test]
async fn exec_timeout_kills_the_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("bg.pid");
    let script = write_script(
        dir.path(),
        "hang.sh",
        &format!("sleep 300 & echo $! > {}; echo started; wait", pidfile.display()),
    );
    let spec = ActionSpec::from(ExecAction {
        argv: vec![script],
        timeout: Duration::from_millis(800),
        user: None,
        group: None,
    });
    let t0 = Instant::now();
    let (_, o) = resolve_and_run(&spec, &alert(&[]), &ActionEnv::default()).await;
    assert_eq!(o.result, OutcomeResult::Failed, "{}", o.detail);
    assert!(o.detail.contains("timed out"), "{}", o.detail);
    assert!(
        o.detail.contains("started"),
        "output before the timeout is kept: {}",
        o.detail
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
    // The background grandchild was in the group and is gone too.
    let bg: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    common::eventually(Duration::from_secs(5), "background sleep killed", || async move {
        match actions::kill::proc_info(Path::new("/proc"), bg) {
            Err(_) => Some(()),
            Ok(i) if i.state == 'Z' => Some(()),
            Ok(i) if !i.cmdline.contains("sleep 300") => Some(()),
            Ok(_) => None,
        }
    })
    .await;
}

#[tokio::test]
async fn exec_cancelled_by_the_caller_leaves_nothing_running() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("bg.pid");
    let script = write_script(
        dir.path(),
        "hang.sh",
        &format!("sleep 301 & echo $! > {}; wait", pidfile.display()),
    );
    let spec = ActionSpec::from(ExecAction {
        argv: vec![script],
        timeout: Duration::from_secs(600),
        user: None,
        group: None,
    });
    let a = alert(&[]);
    let t = spec
        .compile("test.action", &Context::default())
        .expect("valid spec")
        .resolve(&a)
        .unwrap();
    let env = ActionEnv::default();
    // The receiver's own per-action timeout drops the future.
    let r = tokio::time::timeout(Duration::from_millis(800), t.run(&a, &env)).await;
    assert!(r.is_err(), "should still have been running");
    let bg: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    common::eventually(Duration::from_secs(5), "background sleep killed", || async move {
        match actions::kill::proc_info(Path::new("/proc"), bg) {
            Err(_) => Some(()),
            Ok(i) if i.state == 'Z' || !i.cmdline.contains("sleep 301") => Some(()),
            Ok(_) => None,
        }
    })
    .await;
}

#[tokio::test]
async fn exec_dry_run_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let script = write_script(dir.path(), "touch.sh", &format!("touch {}", marker.display()));
    let spec = ActionSpec::from(ExecAction {
        argv: vec![script],
        timeout: Duration::from_secs(5),
        user: None,
        group: None,
    });
    let env = ActionEnv {
        dry_run: true,
        ..ActionEnv::default()
    };
    let (_, o) = resolve_and_run(&spec, &alert(&[]), &env).await;
    assert_eq!(o.result, OutcomeResult::DryRun, "{}", o.detail);
    assert!(o.detail.contains("would run"), "{}", o.detail);
    assert!(!marker.exists());
    // The same spec really runs without dry-run.
    let (_, o) = resolve_and_run(&spec, &alert(&[]), &ActionEnv::default()).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    assert!(marker.exists());
}

// ---------------------------------------------------------------- kill

fn kill_spec(allow: &str, grace: Duration) -> ActionSpec {
    ActionSpec::from(KillAction {
        pid: "{{ labels.pid }}".into(),
        allow: allow.into(),
        start_time: Some("{{ labels.start }}".into()),
        grace,
    })
}

#[tokio::test]
async fn kill_terminates_a_matching_process_with_term() {
    let mut p = Proc::spawn(&["sleep", "301"]);
    let pid = p.pid().to_string();
    let start = start_time_of(p.pid()).to_string();
    let spec = kill_spec("^sleep 301$", Duration::from_secs(10));
    let a = alert(&[("pid", &pid), ("start", &start)]);
    let (t, o) = resolve_and_run(&spec, &a, &ActionEnv::default()).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    assert!(
        o.detail.contains("TERM sent") && !o.detail.contains("KILL sent"),
        "{}",
        o.detail
    );
    assert_eq!(p.wait_exit(Duration::from_secs(5)).signal(), Some(15));
    let v = t.verify(&ActionEnv::default(), Duration::from_secs(2)).await;
    assert_eq!(v, Verification::Verified);
}

#[tokio::test]
async fn kill_escalates_to_kill_when_term_is_ignored() {
    let mut p = Proc::spawn(&[
        "sh",
        "-c",
        "trap '' TERM; echo ready; while :; do sleep 0.1; done",
        "term-ignorer",
    ]);
    // Let the shell install its trap.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = p.pid().to_string();
    let start = start_time_of(p.pid()).to_string();
    let spec = kill_spec("term-ignorer", Duration::from_millis(700));
    let t0 = Instant::now();
    let (_, o) = resolve_and_run(
        &spec,
        &alert(&[("pid", &pid), ("start", &start)]),
        &ActionEnv::default(),
    )
    .await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    assert!(o.detail.contains("KILL sent"), "{}", o.detail);
    assert!(
        t0.elapsed() >= Duration::from_millis(700),
        "KILL came before the grace period"
    );
    assert_eq!(p.wait_exit(Duration::from_secs(5)).signal(), Some(9));
}

#[tokio::test]
async fn kill_refuses_a_reused_pid() {
    let mut p = Proc::spawn(&["sleep", "302"]);
    let pid = p.pid().to_string();
    // The alert was about an earlier process on this PID (started 100 s before).
    let stale = (start_time_of(p.pid()) - 100.0).to_string();
    let spec = kill_spec("^sleep", Duration::from_secs(1));
    let a = alert(&[("pid", &pid), ("start", &stale)]);
    let (t, o) = resolve_and_run(&spec, &a, &ActionEnv::default()).await;
    assert_eq!(o.result, OutcomeResult::Refused, "{}", o.detail);
    assert!(o.detail.contains("PID reused"), "{}", o.detail);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(p.alive(), "a reused PID was signalled");
    // verify sees that a different process now holds the PID.
    let v = t.verify(&ActionEnv::default(), Duration::from_millis(100)).await;
    assert_eq!(v, Verification::Verified);
}

#[tokio::test]
async fn kill_refuses_a_command_line_outside_allow() {
    let mut p = Proc::spawn(&["sleep", "303"]);
    let pid = p.pid().to_string();
    let start = start_time_of(p.pid()).to_string();
    let spec = kill_spec("^python3? ", Duration::from_secs(1));
    let a = alert(&[("pid", &pid), ("start", &start)]);
    let (t, o) = resolve_and_run(&spec, &a, &ActionEnv::default()).await;
    assert_eq!(o.result, OutcomeResult::Refused, "{}", o.detail);
    assert!(o.detail.contains("does not match allow"), "{}", o.detail);
    assert!(p.alive());
    let v = t.verify(&ActionEnv::default(), Duration::from_millis(300)).await;
    assert!(
        matches!(v, Verification::NotHelped(ref r) if r.contains("still running")),
        "{v:?}"
    );
    // Dry-run reports, does not signal.
    let spec = kill_spec("^sleep 303$", Duration::from_secs(1));
    let env = ActionEnv {
        dry_run: true,
        ..ActionEnv::default()
    };
    let (_, o) = resolve_and_run(&spec, &a, &env).await;
    assert_eq!(o.result, OutcomeResult::DryRun, "{}", o.detail);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(p.alive());
}

#[tokio::test]
async fn kill_of_a_process_already_gone_is_ok_and_own_pid_refused() {
    let mut p = Proc::spawn(&["true"]);
    let gone = p.pid();
    p.wait_exit(Duration::from_secs(5));
    let spec = ActionSpec::from(KillAction {
        pid: "{{ labels.pid }}".into(),
        allow: ".".into(),
        start_time: None,
        grace: Duration::from_secs(1),
    });
    // The process the alert named has exited: what the kill was for.
    let (t, o) = resolve_and_run(&spec, &alert(&[("pid", &gone.to_string())]), &ActionEnv::default()).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    assert!(o.detail.contains("nothing to signal"), "{}", o.detail);
    assert_eq!(
        t.verify(&ActionEnv::default(), Duration::from_secs(1)).await,
        Verification::Verified
    );
    let me = std::process::id().to_string();
    let (_, o) = resolve_and_run(&spec, &alert(&[("pid", &me)]), &ActionEnv::default()).await;
    assert_eq!(o.result, OutcomeResult::Refused, "{}", o.detail);
}

// ---------------------------------------------------------------- notify

fn channels(cfg: TestConfig) -> BTreeMap<String, NotifyChannel> {
    cfg.parse().notify
}

fn notify_spec(channel: &str) -> ActionSpec {
    ActionSpec::from(NotifyAction {
        channel: channel.into(),
        message: Some("unit {{ labels.unit }} failed: {{ annotations.summary }}".into()),
        title: None,
    })
}

#[tokio::test]
async fn notify_ntfy_publishes_json_with_token() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("ntfy.token");
    std::fs::write(&tok, "tk_ntfysecret123\n").unwrap();
    let env = ActionEnv {
        notify: channels(TestConfig::new().notify("phone", "ntfy", |c| {
            c.set("server", sink.url("/"))
                .set("topic", "hostmedic-alerts")
                .set("priority", 4)
                .strings("tags", ["warning", "robot"])
                .path("token_file", &tok);
        })),
        ..ActionEnv::default()
    };
    let (_, o) = resolve_and_run(&notify_spec("phone"), &alert(&[("unit", "worker.service")]), &env).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    assert!(!o.detail.contains("tk_ntfysecret123"));
    let reqs = sink.all();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/");
    assert_eq!(r.header("authorization"), Some("Bearer tk_ntfysecret123"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        serde_json::json!({
            "topic": "hostmedic-alerts",
            "title": "TestAlert (firing)",
            "message": "unit worker.service failed: something broke",
            "priority": 4,
            "tags": ["warning", "robot"],
        })
    );
}

#[tokio::test]
async fn notify_telegram_send_message_and_token_never_shown() {
    // First answer: 429 (retried); second: 400 whose body echoes the path.
    let sink = Sink::scripted(&[(429, "{\"ok\":false}"), (200, "{\"ok\":true,\"result\":{}}")]).await;
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("bot.token");
    std::fs::write(&tok, "123456:AAsecretBotToken\n").unwrap();
    let cfg = |api_base: String| {
        TestConfig::new().notify("tg", "telegram", |c| {
            c.set("api_base", api_base)
                .path("bot_token_file", &tok)
                .set("chat_id", -100123)
                .set("backoff", "20ms");
        })
    };
    let env = ActionEnv {
        notify: channels(cfg(sink.url(""))),
        ..ActionEnv::default()
    };
    let (_, o) = resolve_and_run(&notify_spec("tg"), &alert(&[("unit", "a.service")]), &env).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    assert!(!o.detail.contains("AAsecretBotToken"), "{}", o.detail);
    assert!(o.detail.contains("attempt 2"), "{}", o.detail);
    let reqs = sink.all();
    assert_eq!(reqs.len(), 2);
    let r = &reqs[1];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/bot123456:AAsecretBotToken/sendMessage");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["chat_id"], serde_json::json!(-100123));
    assert_eq!(
        body["text"],
        "TestAlert (firing)\nunit a.service failed: something broke"
    );

    // A permanent failure whose body echoes the token: not retried, redacted.
    let bad = Sink::scripted(&[(
        400,
        "{\"ok\":false,\"description\":\"bad request for bot123456:AAsecretBotToken\"}",
    )])
    .await;
    let env = ActionEnv {
        notify: channels(cfg(bad.url(""))),
        ..ActionEnv::default()
    };
    let (_, o) = resolve_and_run(&notify_spec("tg"), &alert(&[("unit", "a.service")]), &env).await;
    assert_eq!(o.result, OutcomeResult::Failed, "{}", o.detail);
    assert!(o.detail.contains("HTTP 400"), "{}", o.detail);
    assert!(!o.detail.contains("AAsecretBotToken"), "{}", o.detail);
    assert!(o.detail.contains("[REDACTED]"), "{}", o.detail);
    assert_eq!(bad.all().len(), 1, "a 400 is not retried");
}

#[tokio::test]
async fn notify_webhook_retries_with_backoff_then_gives_up() {
    let sink = Sink::scripted(&[(500, "boom"), (503, "busy"), (502, "bad gw")]).await;
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("hook.token");
    std::fs::write(&tok, "hooksecret-xyz").unwrap();
    let cfg = TestConfig::new().notify("hook", "webhook", |c| {
        c.set("url", sink.url("/hooks/alert?x=1"))
            .path("bearer_token_file", &tok)
            .set("retries", 2)
            .set("backoff", "100ms")
            .pairs("headers", &[("X-Source", "hostmedic-test")]);
    });
    let env = ActionEnv {
        notify: channels(cfg),
        ..ActionEnv::default()
    };
    let t0 = Instant::now();
    let (_, o) = resolve_and_run(&notify_spec("hook"), &alert(&[("unit", "w.service")]), &env).await;
    assert_eq!(o.result, OutcomeResult::Failed, "{}", o.detail);
    assert!(
        o.detail.contains("after 3 attempt(s)") && o.detail.contains("502"),
        "{}",
        o.detail
    );
    // 100 ms then 200 ms of backoff.
    assert!(t0.elapsed() >= Duration::from_millis(300));
    let reqs = sink.all();
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/hooks/alert?x=1");
        assert_eq!(r.header("authorization"), Some("Bearer hooksecret-xyz"));
        assert_eq!(r.header("x-source"), Some("hostmedic-test"));
        let b = r.json();
        assert_eq!(b["source"], "hostmedic");
        assert_eq!(b["message"], "unit w.service failed: something broke");
        assert_eq!(b["alert"]["labels"]["unit"], "w.service");
        assert_eq!(b["alert"]["fingerprint"], "0123abcd");
    }
    // Succeeds once the receiver answers 200.
    let (_, o) = resolve_and_run(&notify_spec("hook"), &alert(&[("unit", "w.service")]), &env).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    assert_eq!(sink.all().len(), 4);
}

/// A notification to a port nothing listens on says so (the refusal, not
/// only reqwest's "error sending request"), for every channel kind, and the
/// Telegram token stays out of the detail.
#[tokio::test]
async fn notify_to_a_closed_port_names_the_refusal() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("bot.token");
    std::fs::write(&tok, "123456:AAsecretBotToken").unwrap();
    let cfg = TestConfig::new()
        .notify_webhook("hook", &format!("{base}/hook"))
        .notify("n", "ntfy", |c| {
            c.set("server", base.as_str()).set("topic", "t").set("retries", 0);
        })
        .notify("tg", "telegram", |c| {
            c.set("api_base", base.as_str())
                .path("bot_token_file", &tok)
                .set("chat_id", 1)
                .set("retries", 0);
        });
    let env = ActionEnv {
        notify: channels(cfg),
        ..ActionEnv::default()
    };
    for name in ["hook", "n", "tg"] {
        let (_, o) = resolve_and_run(&notify_spec(name), &alert(&[("unit", "a.service")]), &env).await;
        assert_eq!(o.result, OutcomeResult::Failed, "{}", o.detail);
        assert!(o.detail.contains("Connection refused"), "{name}: {}", o.detail);
        assert!(!o.detail.contains("AAsecretBotToken"), "{}", o.detail);
    }
}

#[tokio::test]
async fn notify_config_errors_name_the_key() {
    // Raw TOML on purpose: each text is a config hostmedic must refuse.
    let err = |t: &str| hostmedic::config::Config::parse(t, "t").unwrap_err().to_string();
    let e = err("[notify.tg]\nkind = \"telegram\"\nbot_token_file = \"/nonexistent/token\"\nchat_id = 1\n");
    assert!(e.contains("notify.tg.bot_token_file"), "{e}");
    let e = err("[notify.n]\nkind = \"ntfy\"\nserver = \"ftp://x\"\ntopic = \"t\"\n");
    assert!(e.contains("notify.n.server"), "{e}");
    let e = err("[notify.n]\nkind = \"ntfy\"\nserver = \"https://ntfy.sh\"\ntopic = \"a b\"\n");
    assert!(e.contains("notify.n.topic"), "{e}");
    let e = err("[notify.n]\nkind = \"ntfy\"\nserver = \"https://ntfy.sh\"\ntopic = \"t\"\npriority = 9\n");
    assert!(e.contains("notify.n.priority"), "{e}");
    let e = err("[notify.n]\nkind = \"sms\"\n");
    assert!(e.contains("sms"), "{e}");
    let e = err("[notify.w]\nkind = \"webhook\"\nurl = \"https://u:p@example.com/\"\n");
    assert!(e.contains("notify.w.url"), "{e}");
    // Unknown channel in a notify action.
    let spec = notify_spec("nope");
    assert!(
        spec.compile("r.a", &Context::default())
            .unwrap_err()
            .to_string()
            .contains("r.a.channel")
    );
}

// ---------------------------------------------------------------- docker

fn docker_env(e: &PrivateEngine) -> ActionEnv {
    ActionEnv {
        docker_host: Some(e.docker_host()),
        ..ActionEnv::default()
    }
}

fn docker_spec(op: DockerOp, policy: Option<&str>) -> ActionSpec {
    ActionSpec::from(DockerAction {
        op,
        container: "{{ labels.container }}".into(),
        policy: policy.map(str::to_string),
        restart_dependents: false,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_restart_policy_off_stops_a_restart_loop() {
    let Some(e) = PrivateEngine::start_or_skip() else {
        return;
    };
    e.run_detached(&[
        "--name",
        "looper",
        "--restart=always",
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        "sleep 0.3; exit 1",
    ]);
    let env = docker_env(&e);
    common::eventually(Duration::from_secs(30), "looper restarting", || {
        let n: i64 = e.inspect("looper", "{{.RestartCount}}").trim().parse().unwrap_or(0);
        async move { (n >= 2).then_some(()) }
    })
    .await;
    let spec = docker_spec(DockerOp::RestartPolicy, Some("no"));
    let a = alert(&[("container", "looper")]);
    let (t, o) = resolve_and_run(&spec, &a, &env).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    assert!(o.detail.contains("restart policy always"), "{}", o.detail);
    assert_eq!(e.inspect("looper", "{{.HostConfig.RestartPolicy.Name}}").trim(), "no");
    let v = t.verify(&env, Duration::from_secs(10)).await;
    assert_eq!(v, Verification::Verified);
    // The loop ends: the container stays exited and the count stops growing.
    common::eventually(Duration::from_secs(20), "looper exited", || {
        let s = e.inspect("looper", "{{.State.Status}}");
        async move { (s.trim() == "exited").then_some(()) }
    })
    .await;
    let n1 = e.inspect("looper", "{{.RestartCount}}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(e.inspect("looper", "{{.RestartCount}}"), n1, "still restarting");
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_restart_stop_start_and_refusals() {
    let Some(e) = PrivateEngine::start_or_skip() else {
        return;
    };
    e.run_detached(&["--name", "web", "--stop-timeout", "1", BUSYBOX_IMAGE, "sleep", "3000"]);
    let env = docker_env(&e);
    let a = alert(&[("container", "web")]);
    let started_before = e.inspect("web", "{{.State.StartedAt}}");

    let spec = docker_spec(DockerOp::Restart, None);
    let (t, o) = resolve_and_run(&spec, &a, &env).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    assert_ne!(
        e.inspect("web", "{{.State.StartedAt}}"),
        started_before,
        "not restarted"
    );
    assert_eq!(t.verify(&env, Duration::from_secs(15)).await, Verification::Verified);

    let spec = docker_spec(DockerOp::Stop, None);
    let (t, o) = resolve_and_run(&spec, &a, &env).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    assert_eq!(e.inspect("web", "{{.State.Running}}").trim(), "false");
    assert_eq!(t.verify(&env, Duration::from_secs(5)).await, Verification::Verified);
    // A restart/start verification of a stopped container does not pass.
    let start = docker_spec(DockerOp::Start, None);
    let v = start
        .compile("test.action", &Context::default())
        .expect("valid spec")
        .resolve(&a)
        .unwrap()
        .verify(&env, Duration::from_secs(1))
        .await;
    assert!(
        matches!(v, Verification::NotHelped(ref r) if r.contains("exited")),
        "{v:?}"
    );

    let (t, o) = resolve_and_run(&start, &a, &env).await;
    assert_eq!(o.result, OutcomeResult::Ok, "{}", o.detail);
    assert_eq!(e.inspect("web", "{{.State.Running}}").trim(), "true");
    assert_eq!(t.verify(&env, Duration::from_secs(15)).await, Verification::Verified);

    // Dry-run: nothing changes.
    let dry = ActionEnv {
        dry_run: true,
        ..env.clone()
    };
    let (_, o) = resolve_and_run(&docker_spec(DockerOp::Stop, None), &a, &dry).await;
    assert_eq!(o.result, OutcomeResult::DryRun, "{}", o.detail);
    assert_eq!(e.inspect("web", "{{.State.Running}}").trim(), "true");

    // A container that does not exist is refused.
    let (_, o) = resolve_and_run(&spec, &alert(&[("container", "ghost")]), &env).await;
    assert_eq!(o.result, OutcomeResult::Refused, "{}", o.detail);
    // Hostile names never reach the engine.
    for bad in ["a/b", "../web", "web; docker rm -f web", "$(id)", "web x", "/web"] {
        assert!(
            spec.compile("test.action", &Context::default())
                .expect("valid spec")
                .resolve(&alert(&[("container", bad)]))
                .is_err(),
            "{bad:?}"
        );
    }
    assert_eq!(e.inspect("web", "{{.State.Running}}").trim(), "true");
}

#[tokio::test(flavor = "multi_thread")]
async fn shed_load_stops_listed_containers_and_reports_each() {
    let Some(e) = PrivateEngine::start_or_skip() else {
        return;
    };
    e.run_detached(&[
        "--name",
        "batch1",
        "--stop-timeout",
        "1",
        BUSYBOX_IMAGE,
        "sleep",
        "3000",
    ]);
    e.run_detached(&[
        "--name",
        "batch2",
        "--stop-timeout",
        "1",
        BUSYBOX_IMAGE,
        "sleep",
        "3000",
    ]);
    e.run_detached(&["--name", "keep", "--stop-timeout", "1", BUSYBOX_IMAGE, "sleep", "3000"]);
    let env = docker_env(&e);
    let spec = ActionSpec::from(ShedLoadAction {
        units: vec![],
        containers: vec!["batch1".into(), "batch2".into(), "missing".into()],
        manager: "system".into(),
    });
    let (t, o) = resolve_and_run(&spec, &alert(&[]), &env).await;
    // One of three could not be stopped (does not exist): partial failure.
    assert_eq!(o.result, OutcomeResult::Failed, "{}", o.detail);
    assert!(o.detail.contains("container batch1: stopped"), "{}", o.detail);
    assert!(o.detail.contains("container batch2: stopped"), "{}", o.detail);
    assert!(o.detail.contains("container missing:"), "{}", o.detail);
    assert_eq!(e.inspect("batch1", "{{.State.Running}}").trim(), "false");
    assert_eq!(e.inspect("batch2", "{{.State.Running}}").trim(), "false");
    assert_eq!(e.inspect("keep", "{{.State.Running}}").trim(), "true");
    let v = t.verify(&env, Duration::from_secs(2)).await;
    assert!(
        matches!(v, Verification::NotHelped(ref r) if r.contains("missing")),
        "{v:?}"
    );
}

/// A dry run reports what it would run even when the target's manager cannot
/// be reached; without dry-run the same call fails and says why.
#[tokio::test]
async fn dry_run_with_unreachable_manager_still_reports_what_would_run() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("gone.sock");
    let unreachable = |dry_run| ActionEnv {
        system_bus: Some(format!("unix:path={}", gone.display())),
        docker_host: Some(format!("unix://{}", gone.display())),
        dry_run,
        ..ActionEnv::default()
    };
    let specs = [
        ActionSpec::from(SystemdAction {
            op: SystemdOp::Restart,
            unit: "{{ labels.unit }}".into(),
            manager: "system".into(),
        }),
        docker_spec(DockerOp::Restart, None),
    ];
    let a = alert(&[("unit", "web.service"), ("container", "web")]);
    for spec in &specs {
        let (_, o) = resolve_and_run(spec, &a, &unreachable(true)).await;
        assert_eq!(o.result, OutcomeResult::DryRun, "{}", o.detail);
        assert!(o.detail.starts_with("would run "), "{}", o.detail);
        assert!(o.detail.contains("state unknown"), "{}", o.detail);
        let (_, o) = resolve_and_run(spec, &a, &unreachable(false)).await;
        assert_eq!(o.result, OutcomeResult::Failed, "{}", o.detail);
        assert!(o.detail.contains("gone.sock"), "names the endpoint: {}", o.detail);
    }
}
