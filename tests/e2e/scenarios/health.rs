//! S7 end to end on real processes: a chat bot that is a plain process (no
//! unit, no container) hangs — its single-threaded event loop stops
//! answering, as when blocking calls starved it for 850+ s (here: SIGSTOP).
//!
//! It is watched the way the operator's watchdog did: presence by command
//! line (`[[processes.watch]]`), CRITICAL lines in its log
//! (`[[logfile.watch]]`), its health-check script (a `[[probes.command]]`,
//! exit 0 healthy, 1 not) and its HTTP endpoint (a `[[probes.http]]`). The
//! SHIPPED rules (`for:` clamped in the test copy) and the SHIPPED
//! remediation map (only paths, token and the ntfy server changed) plus one
//! scenario rule:
//!
//! - the bot logs CRITICAL lines → `HostmedicLogErrorPattern` → the shipped
//!   map notifies (pattern, file, count);
//! - the bot hangs → its health check fails → `HostmedicProbeFailing` → the
//!   scenario rule runs the operator's restart command (an `exec` action:
//!   argv, no shell, the probe label templated in), which kills the hung bot
//!   named in its pidfile and starts a new one, then notifies → both probes
//!   succeed again in Prometheus, the watch sees a new process, and the hung
//!   one died of SIGKILL.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::config::{Action, Rule, TestConfig};
use common::e2e::*;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// The bot: one thread serving HTTP (`/health` → 200, `/critical` logs a
/// CRITICAL line like the real bot's starved event loop did), its pid
/// written to the pidfile once it listens. argv: port, log file, pidfile.
const BOT: &str = r#"import http.server, logging, os, sys

port, log, pidfile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
logging.basicConfig(filename=log, level=logging.INFO, format="%(asctime)s %(levelname)s chatbot: %(message)s")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/critical":
            logging.critical("blocking call starved the event loop for 850.3 s; updates dropped")
        elif self.path != "/health":
            self.send_error(404)
            return
        body = b"ok\n"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", port), Handler)
with open(pidfile + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(pidfile + ".tmp", pidfile)
logging.info("listening on 127.0.0.1:%d", port)
server.serve_forever()
"#;

/// The operator's health-check script: exit 0 healthy, 1 not.
const HEALTHCHECK: &str = r#"import sys, urllib.request

try:
    with urllib.request.urlopen(sys.argv[1], timeout=1) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception as e:
    print(f"unhealthy: {e}", file=sys.stderr)
    sys.exit(1)
"#;

/// The operator's restart command for the plain process: kill the bot named
/// in the pidfile (SIGKILL: a hung or stopped process does not handle
/// TERM), wait until it is gone, start a new one in its own session and wait
/// for its pidfile. `$1` says why (the exec action passes the probe name).
fn restart_script(bot: &Path, port: u16, log: &Path, pidfile: &Path) -> String {
    format!(
        r#"#!/bin/sh
set -u
bot={bot}
pidfile={pidfile}
if [ -s "$pidfile" ]; then
  old=$(cat "$pidfile")
  if grep -qF "$bot" "/proc/$old/cmdline" 2>/dev/null; then
    kill -KILL "$old"
    i=0
    # Gone, or a zombie (empty cmdline) waiting for its parent.
    while grep -qF "$bot" "/proc/$old/cmdline" 2>/dev/null; do
      i=$((i + 1)); [ $i -le 100 ] || {{ echo "bot $old survived SIGKILL" >&2; exit 1; }}
      sleep 0.1
    done
    echo "killed bot $old (${{1:-no reason given}})"
  fi
  rm -f "$pidfile"
fi
setsid /usr/bin/python3 "$bot" {port} {log} "$pidfile" </dev/null >>{log}.out 2>&1 &
i=0
until [ -s "$pidfile" ]; do
  i=$((i + 1)); [ $i -le 100 ] || {{ echo "the bot did not start" >&2; exit 1; }}
  sleep 0.1
done
echo "started bot $(cat "$pidfile")"
"#,
        bot = bot.display(),
        pidfile = pidfile.display(),
        log = log.display(),
    )
}

/// The bots of one test. The test process is a child subreaper, so a bot
/// whose starter exited (the restart script daemonizes it) is re-parented to
/// the test, which reaps it rather than leaving a zombie. On drop every bot
/// still running (found by its unique script path) is killed by PID and
/// reaped.
struct Bots {
    script: PathBuf,
    pidfile: PathBuf,
}

impl Bots {
    /// The pid in the pidfile.
    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(&self.pidfile).ok()?.trim().parse().ok()
    }

    /// Reaps `pid` if it has ended: how it ended.
    fn reap(pid: i32) -> Option<WaitStatus> {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => None,
            Ok(s) => Some(s),
        }
    }
}

impl Drop for Bots {
    fn drop(&mut self) {
        for pid in common::procs::pids_with_cmdline(&self.script.display().to_string()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
        }
    }
}

/// The bot's watches (process, log file, HTTP and command probes), the
/// SHIPPED map, and S7's rule: restart the plain process with the
/// operator's command when its health check fails, then tell the operator.
fn bot_config(st: &Stack, nonce: &str, log: &Path, health: &Path, restart: &Path, health_url: &str) -> String {
    let restart = restart.display().to_string();
    let watches = TestConfig::new()
        .disable(&["docker", "systemd"])
        .section("processes", super::one_python("chatbot", &format!("chatbot_{nonce}")))
        .section("logfile", |l| {
            l.set("interval", "200ms").push("watch", |w| {
                w.path("file", log).pairs("patterns", &[("critical", "CRITICAL")]);
            });
        })
        .section("probes", |p| {
            p.push("http", |h| {
                h.set("name", "bot-http")
                    .set("url", health_url)
                    .set("expected_status", 200)
                    .set("timeout", "1s")
                    .set("interval", "1s");
            })
            .push("command", |c| {
                c.set("name", "bot-health")
                    .strings("argv", ["/usr/bin/python3", &health.display().to_string(), health_url])
                    .set("timeout", "10s")
                    .set("interval", "1s");
            });
        })
        .render();
    let rule = TestConfig::new()
        .rule(
            Rule::new("bot-restart", "HostmedicProbeFailing")
                .strings("matchers", [r#"probe="bot-health""#])
                .action(Action::exec([restart.as_str(), "{{ labels.probe }} failing"]).set("timeout", "30s"))
                .action(
                    Action::new("notify")
                        .set("channel", "ops")
                        .set("title", "restarted the chat bot: {{ labels.probe }} failing")
                        .set("message", "{{ annotations.description }}"),
                ),
        )
        .render();
    // The rule after the map's own rules, as an operator appends one.
    format!("{watches}{}\n{rule}", st.shipped_map(&[]))
}

/// `State:` of /proc/<pid>/status, e.g. "S (sleeping)".
fn proc_state(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("State:"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Both probes of the bot (command and HTTP) succeed, as Prometheus sees it.
async fn both_probes_succeed(st: &Stack) {
    for probe in ["bot-health", "bot-http"] {
        st.wait_query(
            Duration::from_secs(30),
            &format!("hostmedic_probe_success{{probe=\"{probe}\"}}"),
            |v| v == 1.0,
        )
        .await;
    }
}

/// The process watch sees exactly one bot.
async fn one_bot_is_watched(st: &Stack) {
    st.wait_query(
        Duration::from_secs(30),
        "hostmedic_process_watch_processes{watch=\"chatbot\"}",
        |v| v == 1.0,
    )
    .await;
}

/// The bot's files in `st`'s folder: its script, its log and pidfile, the
/// health check and the operator's restart command (executable).
struct BotFiles {
    bot: PathBuf,
    log: PathBuf,
    pidfile: PathBuf,
    health: PathBuf,
    restart: PathBuf,
}

impl BotFiles {
    /// Writes the bot `chatbot_<nonce>.py` listening on `port`.
    fn write(st: &Stack, nonce: &str, port: u16) -> BotFiles {
        use std::os::unix::fs::PermissionsExt;
        let f = BotFiles {
            bot: st.path(&format!("chatbot_{nonce}.py")),
            log: st.path("chatbot.log"),
            pidfile: st.path("chatbot.pid"),
            health: st.path("healthcheck.py"),
            restart: st.path("restart-bot.sh"),
        };
        std::fs::write(&f.bot, BOT).unwrap();
        std::fs::write(&f.health, HEALTHCHECK).unwrap();
        std::fs::write(&f.restart, restart_script(&f.bot, port, &f.log, &f.pidfile)).unwrap();
        std::fs::set_permissions(&f.restart, std::fs::Permissions::from_mode(0o755)).unwrap();
        f
    }
}

/// The bot is started the way the operator starts it: the restart command.
/// Returns its pid.
fn first_start(files: &BotFiles, bots: &Bots) -> i32 {
    let out = Command::new(&files.restart).arg("first start").output().unwrap();
    assert!(
        out.status.success(),
        "starting the bot: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    bots.pid().expect("the bot wrote its pidfile")
}

/// The error log: the bot (on `port`) reports its starved event loop
/// twice; the lines are counted and the shipped map notifies, naming `log`.
async fn critical_log_lines_are_reported(st: &Stack, port: u16, log: &Path) {
    for _ in 0..2 {
        let (code, _) = common::get(&format!("http://127.0.0.1:{port}/critical")).await;
        assert_eq!(code, 200);
    }
    st.wait_query(
        Duration::from_secs(30),
        "hostmedic_logfile_matched_lines_total{pattern=\"critical\"}",
        |v| v == 2.0,
    )
    .await;
    let log_shown = log.display().to_string();
    let (_, msg) = st
        .wait_for(Duration::from_secs(60), "error-pattern notification", |st| {
            st.ntfy_messages()
                .into_iter()
                .find(|(_, m)| m.contains("lines matching critical were appended to"))
        })
        .await;
    assert!(msg.contains(&log_shown), "the log file is named: {msg}");
    let count: f64 = msg
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("line count first: {msg}"));
    assert!(count >= 1.0, "{msg}");
}

/// The scenario rule runs the operator's `restart` command with the probe
/// label filled in, and it kills the hung bot `first`; returns its detail.
async fn restart_command_kills_the_hung_bot(st: &Stack, restart: &Path, first: i32) -> String {
    let (action, target, result, detail) = st
        .wait_for(Duration::from_secs(90), "restart command run", |st| {
            st.actions("bot-restart").into_iter().find(|a| a.0 == "exec")
        })
        .await;
    assert_eq!(result, "ok", "{action} {target}: {detail}");
    assert_eq!(
        target,
        format!("exec:{} bot-health failing", restart.display()),
        "argv with the probe label filled in"
    );
    assert!(
        detail.contains(&format!("killed bot {first} (bot-health failing)")),
        "{detail}"
    );
    detail
}

/// A new bot process (the restart's `detail` names it), seen by the watch
/// as started after `started_before`; the hung one (`first`) died of SIGKILL.
async fn a_new_bot_replaces_the_hung_one(st: &Stack, bots: &Bots, first: i32, detail: &str, started_before: f64) {
    let new = bots.pid().expect("pidfile after the restart");
    assert_ne!(new, first, "a new bot process");
    assert!(detail.contains(&format!("started bot {new}")), "{detail}");
    assert!(!proc_state(new).starts_with('T'), "{}", proc_state(new));
    let ended = st
        .wait_for(Duration::from_secs(10), "the hung bot reaped", |_| Bots::reap(first))
        .await;
    assert!(
        matches!(ended, WaitStatus::Signaled(_, Signal::SIGKILL, _)),
        "{ended:?}"
    );
    st.wait_query(
        Duration::from_secs(30),
        "hostmedic_process_watch_oldest_start_time_seconds{watch=\"chatbot\"}",
        |v| v > started_before,
    )
    .await;
    one_bot_is_watched(st).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s7_hung_bot_is_restarted_by_its_command_and_critical_log_lines_are_reported() {
    nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
    let mut st = Stack::new("S7").await;
    let nonce = common::procs::nonce();
    let port = common::alertmanager::free_port();
    let files = BotFiles::write(&st, &nonce, port);
    let bots = Bots {
        script: files.bot.clone(),
        pidfile: files.pidfile.clone(),
    };
    let first = first_start(&files, &bots);

    let health_url = format!("http://127.0.0.1:{port}/health");
    let config = bot_config(&st, &nonce, &files.log, &files.health, &files.restart, &health_url);
    st.start_hostmedic(&config);
    // `for:` 1s, not 0s: a health check that misses its 1 s timeout once on
    // a loaded machine must not count as the hang (two looks, not one).
    st.start_monitoring(Duration::from_secs(1), &[]).await;
    both_probes_succeed(&st).await;
    one_bot_is_watched(&st).await;
    let started_before = st
        .wait_query(
            Duration::from_secs(30),
            "hostmedic_process_watch_oldest_start_time_seconds{watch=\"chatbot\"}",
            |v| v > 0.0,
        )
        .await;
    critical_log_lines_are_reported(&st, port, &files.log).await;

    // Fault: the bot hangs. The process is still there; it answers nothing.
    kill(Pid::from_raw(first), Signal::SIGSTOP).unwrap();
    let sw = Stopwatch::fault_injected("S7");
    // The signal is delivered asynchronously.
    st.wait_for(Duration::from_secs(5), "the bot stopped", |_| {
        proc_state(first).starts_with('T').then_some(())
    })
    .await;
    let detail = restart_command_kills_the_hung_bot(&st, &files.restart, first).await;

    // Healthy again, as Prometheus sees it (the last samples before the
    // restart were failures: the alert had been firing on them).
    both_probes_succeed(&st).await;
    a_new_bot_replaces_the_hung_one(&st, &bots, first, &detail, started_before).await;
    let (_, msg) = st
        .wait_for(Duration::from_secs(20), "restart notification", |st| {
            st.ntfy_messages()
                .into_iter()
                .find(|(t, _)| t == "restarted the chat bot: bot-health failing")
        })
        .await;
    sw.remediated(&st).await;
    assert!(
        msg.contains("The command probe bot-health") && msg.contains("exit code 1"),
        "the health check's exit status: {msg}"
    );
    let acts = st.actions_journaled("bot-restart", 2).await;
    let kinds: Vec<&str> = acts.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(kinds, ["exec", "notify"], "one restart: {acts:?}");
    assert!(acts.iter().all(|a| a.2 == "ok"), "{acts:?}");
    // The probe duration is exported for both kinds.
    for probe in ["bot-health", "bot-http"] {
        let q = format!("hostmedic_probe_duration_seconds{{probe=\"{probe}\"}}");
        assert!(st.query(&q).await.is_some_and(|d| d > 0.0), "{q}");
    }
    st.assert_no_secrets();
}
