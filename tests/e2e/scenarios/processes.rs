//! S4 and S9 end to end, on real processes.
//!
//! S4: a runaway "training" script burns a whole CPU → the shipped
//! `HostmedicRunawayProcess` (`for:` clamped) → the remediation is
//! notify-only: the operator is told PID, command line and runtime, nothing
//! is killed; once a person approves (`hostmedic approve <id>`), the allowed
//! kill runs (TERM is ignored by the script, so KILL after the grace period)
//! and is verified.
//!
//! S9: duplicate workers: a watched worker pattern expects exactly one
//! process; two duplicates start → `HostmedicProcessCountOutOfRange` →
//! notification with the count and the expected range.

use crate::common;

use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::config::{Action, Rule};
use common::e2e::*;
use hostmedic::receiver::journal::{Decision, Event};

/// A child process reaped by a thread the moment it dies (as its real
/// parent would), so a killed process does not linger as a zombie.
struct Reaped {
    pid: i32,
    status: Arc<Mutex<Option<ExitStatus>>>,
}

impl Reaped {
    fn spawn(mut cmd: Command) -> Reaped {
        let mut child: Child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let pid = child.id() as i32;
        let status: Arc<Mutex<Option<ExitStatus>>> = Arc::default();
        let s = status.clone();
        std::thread::spawn(move || {
            let st = child.wait().expect("wait");
            *s.lock().unwrap() = Some(st);
        });
        Reaped { pid, status }
    }

    fn exited(&self) -> Option<ExitStatus> {
        *self.status.lock().unwrap()
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// S4's receiver on `st`: the shipped default (tell the operator PID,
/// command line, runtime) for the runaway `train_<nonce>.py`, and its kill
/// allowed only once a person approves.
fn s4_config(st: &Stack, nonce: &str) -> String {
    // Other busy processes on this machine (compilers…) route to no rule.
    let matcher = format!(r#"cmdline=~".*train_{nonce}\\.py.*""#);
    st.receiver()
        .disable(&["docker"])
        .section("processes", |p| {
            // The rules match on the command line: the opt-in label.
            p.set("sample_interval", "1s")
                .set("top_k", 10)
                .set("cmdline_label", true);
        })
        .rule(
            Rule::new("runaway-notify", "HostmedicRunawayProcess")
                .strings("matchers", [&matcher])
                .action(
                    Action::new("notify")
                        .set("channel", "ntfy")
                        .set("title", "runaway process {{ labels.pid }} ({{ labels.comm }})")
                        .set("message", "{{ annotations.description }}"),
                ),
        )
        .rule(
            Rule::new("runaway-train", "HostmedicRunawayProcess")
                .strings("matchers", [&matcher])
                .set("mode", "notify-only")
                .strings("notify", ["telegram"])
                .action(
                    Action::new("kill")
                        .set("allow", format!(r"^/usr/bin/python3 .*/train_{nonce}\.py$"))
                        .set("start_time", "{{ annotations.process_start_time }}")
                        .set("grace", "2s"),
                ),
        )
        .render()
}

/// Starts the runaway `script`. On a shared test machine (other builds,
/// each session its own scheduler autogroup) a busy loop does not get a
/// whole CPU by itself: it runs in its own session (`setsid`) whose
/// autogroup gets nice -20, and nice -20 itself, so it really burns one
/// CPU as in the field. nice execs, so the PID is python's.
fn spawn_runaway(script: &std::path::Path) -> Reaped {
    let mut cmd = Command::new("/usr/bin/nice");
    cmd.args(["-n", "-20", "/usr/bin/python3"]).arg(script);
    // SAFETY: setsid(2) is async-signal-safe; nothing else runs in the child.
    #[allow(unsafe_code)]
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(std::io::Error::from));
    }
    let runaway = Reaped::spawn(cmd);
    // spawn() returned after exec, so the child already leads its own session.
    let own = std::fs::read_to_string("/proc/self/autogroup").unwrap_or_default();
    let its = std::fs::read_to_string(format!("/proc/{}/autogroup", runaway.pid)).unwrap_or_default();
    assert_ne!(own, its, "the runaway has its own autogroup");
    let _ = std::fs::write(format!("/proc/{}/autogroup", runaway.pid), "-20");
    runaway
}

/// Notify-only: the operator hears about it with PID, command line, runtime.
async fn operator_is_told_pid_command_line_and_runtime(st: &Stack, pid: &str, nonce: &str) {
    let note = st
        .wait_for(Duration::from_secs(60), "runaway notification", |st| {
            st.sink.all().into_iter().find(|r| r.path.starts_with("/ntfy"))
        })
        .await;
    let v: serde_json::Value = serde_json::from_str(&note.body).unwrap();
    let msg = format!("{}\n{}", v["title"], v["message"]);
    assert!(msg.contains(pid), "PID in the notification: {msg}");
    assert!(msg.contains(&format!("train_{nonce}.py")), "command line: {msg}");
    assert!(msg.contains("running for"), "runtime: {msg}");
}

/// The kill of `pid` waits for approval in the journal, and the approval
/// request (Telegram) carries a pasteable command and the process's
/// evidence. Returns the plan's id.
async fn approval_is_asked_with_the_evidence(st: &Stack, pid: &str, nonce: &str) -> String {
    let id = st
        .wait_for(Duration::from_secs(10), "pending approval in the journal", |st| {
            st.journal().into_iter().find_map(|e| match e.event {
                Event::Decision {
                    id,
                    rule,
                    decision: Decision::PendingApproval,
                    target,
                    ..
                } if rule == "runaway-train" && target == format!("pid:{pid}") => Some(id),
                _ => None,
            })
        })
        .await;
    let ask = st
        .wait_for(Duration::from_secs(10), "approval request", |st| {
            st.sink.all().into_iter().find(|r| r.path.starts_with("/tg/"))
        })
        .await;
    let text = serde_json::from_str::<serde_json::Value>(&ask.body).unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    // The command names the configuration (not the packaged one), so it
    // works when pasted.
    assert!(
        text.contains(&format!(" approve {id}")) && text.contains("hostmedic --config "),
        "{text}"
    );
    // The request carries the process's evidence (command line, user, CPU)
    // within Telegram's 4096 characters.
    assert!(text.contains(&format!("[pid:{pid}]")), "evidence: {text}");
    assert!(
        text.contains(&format!("train_{nonce}.py")) && text.contains("cpu_average="),
        "{text}"
    );
    assert!(text.contains("user=root (0)"), "{text}");
    assert!(
        text.encode_utf16().count() <= hostmedic::notify::TELEGRAM_TEXT_MAX,
        "{}",
        text.len()
    );
    id
}

/// A person approves plan `id`: TERM (ignored), KILL after 2 s, verified
/// gone; the action journaled once, ok, with its grace period.
async fn approved_kill_runs_after_the_grace_period(st: &Stack, runaway: &Reaped, id: &str) {
    use std::os::unix::process::ExitStatusExt;
    let pid = runaway.pid;
    let out = Command::new(common::binary_path())
        .args(["--config", st.path("hostmedic.toml").to_str().unwrap()])
        .args(["approve", id, "--url", &st.hostmedic().url("")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    st.wait_for(Duration::from_secs(30), "kill verified", |st| {
        st.verified("runaway-train", &format!("pid:{pid}"))
    })
    .await;
    let status = st
        .wait_for(Duration::from_secs(5), "runaway reaped", |_| runaway.exited())
        .await;
    assert_eq!(status.signal(), Some(9), "TERM ignored, KILL after the grace period");
    // The action itself waited the grace period between TERM and KILL (its
    // own journaled duration, not the test's clock: the approval returns
    // while the action already runs).
    let took = st
        .journal()
        .iter()
        .find_map(|e| match &e.event {
            Event::Action {
                rule, duration_seconds, ..
            } if rule == "runaway-train" => Some(*duration_seconds),
            _ => None,
        })
        .expect("kill journaled");
    assert!(took >= 2.0, "grace period honoured: the kill took {took} s");
    let acts = st.actions("runaway-train");
    assert_eq!(acts.len(), 1, "{acts:?}");
    assert_eq!(acts[0].2, "ok", "{acts:?}");
    assert!(
        st.journal()
            .iter()
            .any(|e| matches!(&e.event, Event::Approved { id: i, .. } if *i == id))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn s4_runaway_process_is_reported_and_killed_only_after_approval() {
    let mut st = Stack::new("S4").await;
    let nonce = common::procs::nonce();
    let script = st.path(&format!("train_{nonce}.py"));
    // The runaway: ignores SIGTERM (so only the KILL after the grace period
    // ends it) and spins.
    std::fs::write(
        &script,
        "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass\n",
    )
    .unwrap();
    let config = s4_config(&st, &nonce);
    st.start_hostmedic(&config);
    // `for:` 0s: nothing before the fault can make the rule true (no time
    // window to wait out), so the alert fires at the first evaluation after it.
    st.start_monitoring(Duration::ZERO, &[]).await;

    let runaway = spawn_runaway(&script);
    let sw = Stopwatch::fault_injected("S4");
    let pid = runaway.pid.to_string();
    operator_is_told_pid_command_line_and_runtime(&st, &pid, &nonce).await;
    let id = approval_is_asked_with_the_evidence(&st, &pid, &nonce).await;
    sw.remediated(&st).await; // the remediation for S4 by default is the notification
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(runaway.exited().is_none(), "nothing is killed without approval");
    assert!(st.actions("runaway-train").is_empty());
    approved_kill_runs_after_the_grace_period(&st, &runaway, &id).await;
    st.assert_no_secrets();
}

#[tokio::test(flavor = "multi_thread")]
async fn s9_duplicate_workers_out_of_expected_range_are_reported() {
    let mut st = Stack::new("S9").await;
    let nonce = common::procs::nonce();
    let script = st.path(&format!("worker_{nonce}.py"));
    std::fs::write(&script, "import time\nwhile True:\n    time.sleep(1)\n").unwrap();
    let config = st
        .receiver()
        .disable(&["docker"])
        .section("processes", super::one_python("worker", &format!("worker_{nonce}")))
        .rule(
            Rule::new("worker-count", "HostmedicProcessCountOutOfRange")
                .strings("matchers", [r#"watch="worker""#])
                .action(
                    Action::new("notify")
                        .set("channel", "telegram")
                        .set("message", "{{ annotations.description }}"),
                ),
        )
        .render();
    let spawn = || {
        let mut c = Command::new("/usr/bin/python3");
        c.arg(&script);
        Reaped::spawn(c)
    };
    let _first = spawn();
    st.start_hostmedic(&config);
    // `for:` 0s: nothing before the fault can make the rule true (no time
    // window to wait out), so the alert fires at the first evaluation after it.
    st.start_monitoring(Duration::ZERO, &[]).await;
    st.wait_query(
        Duration::from_secs(30),
        "hostmedic_process_watch_processes{watch=\"worker\"}",
        |v| v == 1.0,
    )
    .await;

    // Fault: a second script and another copy start doing the same job.
    let _dup1 = spawn();
    let _dup2 = spawn();
    let sw = Stopwatch::fault_injected("S9");
    let note = st
        .wait_for(Duration::from_secs(60), "process-count notification", |st| {
            st.sink.all().into_iter().find(|r| r.path.starts_with("/tg/"))
        })
        .await;
    sw.remediated(&st).await;
    let text = serde_json::from_str::<serde_json::Value>(&note.body).unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("3 processes match the watch worker"), "{text}");
    assert!(text.contains("between 1 and 1"), "expected range: {text}");
    let acts = st.actions_journaled("worker-count", 1).await;
    assert!(acts.len() == 1 && acts[0].2 == "ok", "{acts:?}");
    st.assert_no_secrets();
}
