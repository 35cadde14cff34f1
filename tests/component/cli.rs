//! The command line in an operator's hands, on the real binary: the control
//! subcommands find the running hostmedic of a packaged install (through
//! `HOSTMEDIC_CONFIG`, the way the tests stand in for
//! `/etc/hostmedic/hostmedic.toml`), the commands hostmedic prints work when
//! pasted, the control answers say what is true, the service log at its
//! default level tells what was decided and done and what was refused, and
//! flags are checked (log level, listen address, per-subcommand help,
//! `--version`, one error line).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::config::{Action, Rule, TestConfig};
use common::sink::Sink;
use common::*;
use hostmedic::receiver::journal::{self, Decision};

use crate::receiver::{TOKEN, alert, post};

/// A temporary folder laid out like a packaged install: the configuration
/// and the token in `etc/hostmedic/`, the journal in `var/lib/hostmedic/`,
/// the actions' traces in `effects/`.
struct Packaged {
    dir: tempfile::TempDir,
}

impl Packaged {
    fn new() -> Packaged {
        let dir = tempfile::tempdir().unwrap();
        for d in ["etc/hostmedic", "var/lib/hostmedic", "effects"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        std::fs::write(dir.path().join("etc/hostmedic/token"), format!("{TOKEN}\n")).unwrap();
        Packaged { dir }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn config(&self) -> PathBuf {
        self.path("etc/hostmedic/hostmedic.toml")
    }
    fn effects(&self) -> usize {
        std::fs::read_dir(self.path("effects")).map(|d| d.count()).unwrap_or(0)
    }
    fn journal(&self) -> Vec<journal::Entry> {
        journal::read_from(&self.path("var/lib/hostmedic/journal.jsonl"), 0)
            .map(|(e, _)| e)
            .unwrap_or_default()
    }
    /// The receiver on `port` with bearer auth and one notify-only rule
    /// (`Runaway`, approval asked of the sink).
    fn write(&self, port: u16, sink: &str) -> PathBuf {
        let var = self.path("var/lib/hostmedic");
        TestConfig::new()
            .disable(&["host", "hwmon"])
            .single_host("h1")
            .section("web", |w| {
                w.set("listen_address", format!("127.0.0.1:{port}"));
            })
            .receiver(&var, |r| {
                r.path("bearer_token_file", self.path("etc/hostmedic/token"))
                    .set("cooldown", "0s");
            })
            .notify_webhook("sink", sink)
            .rule(
                Rule::new("runaway", "Runaway")
                    .set("mode", "notify-only")
                    .strings("notify", ["sink"])
                    .action(Action::exec([
                        "/usr/bin/mktemp",
                        &format!("{}/approved.XXXXXX", self.path("effects").display()),
                    ])),
            )
            .write(self.config())
    }
}

/// A port free on 127.0.0.1 right now (the configuration must name it: the
/// CLI finds the server through `web.listen_address`).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `hostmedic <args>` as an operator runs it: no `--config`, the
/// configuration named only by `HOSTMEDIC_CONFIG`, `$USER` unset.
fn operator(config: &Path, args: &[&str]) -> Output {
    Command::new(binary_path())
        .args(args)
        .env("HOSTMEDIC_CONFIG", config)
        .env_remove("USER")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The name of this process's uid in the passwd database.
fn my_name() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .map(|u| u.name)
        .unwrap_or_else(|| nix::unistd::getuid().to_string())
}

/// A packaged install: `approve`, `clear-hold` and `incidents` without
/// `--config` reach the running hostmedic (the configuration from
/// `HOSTMEDIC_CONFIG`), the approval note's command names the
/// configuration (there and on the landing page), a second approval and an unknown hold say what is true,
/// "approved by" names the uid's account when `$USER` is unset, and the
/// command `incidents` prints works when pasted into a shell.
#[tokio::test(flavor = "multi_thread")]
async fn control_subcommands_find_the_running_hostmedic_and_say_what_is_true() {
    let pkg = Packaged::new();
    let sink = Sink::start().await;
    let port = free_port();
    let cfg = pkg.write(port, &sink.url("/hook"));
    let listen = format!("127.0.0.1:{port}");
    let bin = Binary::start_with(&cfg, pkg.dir.path(), &["--web.listen-address", &listen]);
    let url = bin.url("/api/v1/alerts");
    for fp in ["01", "02"] {
        let a = alert("Runaway", &[("pid", "4242")], "2026-01-01T00:00:00Z", "firing", fp);
        assert_eq!(post(&url, Some(TOKEN), &payload(vec![a])).await.0, 200);
    }
    let ids = eventually(Duration::from_secs(20), "two pending approvals", || async {
        Some(decision_ids(&pkg.journal(), Decision::PendingApproval)).filter(|ids| ids.len() == 2)
    })
    .await;
    let pasted = format!("hostmedic --config {} approve {}", cfg.display(), ids[0]);
    eventually(Duration::from_secs(20), "the approval note naming --config", || async {
        sink.all().into_iter().find(|r| r.body.contains(&pasted))
    })
    .await;

    // The landing page's "approve with" is the same pasteable command.
    let page = client().get(bin.url("/")).bearer_auth(TOKEN).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains(&pasted), "landing page lacks {pasted:?}:\n{page}");

    let out = operator(&cfg, &["approve", &ids[0]]);
    assert!(out.status.success(), "{}", text(&out));
    eventually(Duration::from_secs(20), "the approved action", || async {
        (pkg.effects() == 1).then_some(())
    })
    .await;
    let by = approved_by(&pkg.journal());
    assert_eq!(by, vec![format!("cli:{}", my_name())], "$USER unset: the uid's name");

    let again = operator(&cfg, &["approve", &ids[0]]);
    assert!(!again.status.success());
    let want = format!("already approved by cli:{} at ", my_name());
    assert!(text(&again).contains(&want), "{}", text(&again));
    assert!(!text(&again).contains("no pending action"), "{}", text(&again));

    let clear = operator(&cfg, &["clear-hold", "systemd:system:nothing.service"]);
    assert!(!clear.status.success());
    assert!(
        text(&clear).contains("no hold on target \\\"systemd:system:nothing.service\\\"; no target is held"),
        "{}",
        text(&clear)
    );
    assert!(!text(&clear).contains("pending action"), "{}", text(&clear));

    let md = operator(&cfg, &["incidents"]);
    assert!(md.status.success(), "{}", text(&md));
    let md = String::from_utf8_lossy(&md.stdout).to_string();
    assert!(md.contains(&format!("approved by cli:{}", my_name())), "{md}");
    let follow_up = format!("approve: hostmedic --config {} approve {}", cfg.display(), ids[1]);
    let line = md
        .lines()
        .find(|l| l.contains(&follow_up))
        .unwrap_or_else(|| panic!("no pasteable follow-up {follow_up:?} in:\n{md}"));
    // Pasted into a shell where hostmedic is on the PATH and nothing is set.
    let command = line.split('`').nth(1).unwrap().trim_start_matches("approve: ");
    let bin_dir = binary_path().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let pasted = Command::new("/bin/sh")
        .args(["-c", command])
        .env("PATH", path)
        .env_remove("HOSTMEDIC_CONFIG")
        .output()
        .unwrap();
    assert!(pasted.status.success(), "{command}: {}", text(&pasted));
    eventually(
        Duration::from_secs(20),
        "the action approved by the pasted command",
        || async { (pkg.effects() == 2).then_some(()) },
    )
    .await;
    drop(bin);
}

/// `incidents` reading a journal that does not exist fails (it is not "0
/// incidents") and names the path it looked at and the configuration.
#[test]
fn incidents_on_a_missing_journal_is_an_error_naming_path_and_config() {
    let pkg = Packaged::new();
    let cfg = pkg.write(free_port(), "http://127.0.0.1:9/hook");
    let out = operator(&cfg, &["incidents"]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let journal = pkg.path("var/lib/hostmedic/journal.jsonl");
    assert!(err.contains(&format!("no journal at {}", journal.display())), "{err}");
    assert!(err.contains(&cfg.display().to_string()), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("0 incident"));
}

/// At the default log level (no `--log.level`), the service log has one
/// line per decision and per action outcome (rule, target, result, id), a
/// warning for a failed action, and a warning with the reason and the peer
/// for each refused request.
#[tokio::test(flavor = "multi_thread")]
async fn service_log_tells_decisions_outcomes_and_refusals_at_the_default_level() {
    let dir = receiver_dir(TOKEN);
    let d = dir.path();
    let cfg = TestConfig::new()
        .disable(&["host", "hwmon"])
        .single_host("h1")
        .receiver(d, |r| {
            r.path("bearer_token_file", d.join("token")).set("cooldown", "0s");
        })
        .rule(Rule::new("worker", "WorkerDown").action(Action::exec([
            "/usr/bin/mktemp",
            &format!("{}/effects/ran.XXXXXX", d.display()),
        ])))
        .rule(Rule::new("broken", "Broken").action(Action::exec(["/bin/false"])))
        .write(d.join("hostmedic.toml"));
    let bin = Binary::start_at_default_log_level(&cfg, d, &[]);
    let url = bin.url("/api/v1/alerts");
    let worker = alert("WorkerDown", &[], "2026-01-01T00:00:00Z", "firing", "0a");
    let broken = alert("Broken", &[], "2026-01-01T00:00:00Z", "firing", "0b");
    assert_eq!(post(&url, Some(TOKEN), &payload(vec![worker])).await.0, 200);
    assert_eq!(post(&url, Some(TOKEN), &payload(vec![broken])).await.0, 200);
    assert_eq!(post(&url, None, &payload(vec![])).await.0, 401);
    let r = client()
        .post(&url)
        .bearer_auth(TOKEN)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);

    let has = |log: &str, level: &str, parts: &[&str]| {
        log.lines()
            .any(|l| l.contains(&format!("level={level}")) && parts.iter().all(|p| l.contains(p)))
    };
    // The log is written by the service's own (non-blocking) writer: wait
    // for its last two lines, the failed action's and the 415's (a snapshot
    // taken at the first could miss the second, which failed once under load).
    let log = eventually(
        Duration::from_secs(20),
        "the failed action's and the 415's warnings",
        || async {
            let log = bin.log();
            (has(&log, "warn", &["remediation action", "rule=broken", "result=failed"])
                && has(&log, "warn", &["request refused", "status=415"]))
            .then_some(log)
        },
    )
    .await;
    let ids = decision_ids(
        &journal::read_from(&d.join("journal.jsonl"), 0).unwrap().0,
        Decision::Act,
    );
    assert!(
        has(
            &log,
            "info",
            &[
                "remediation decision",
                "rule=worker",
                "decision=act",
                &format!("id={}", ids[0])
            ]
        ),
        "{log}"
    );
    assert!(
        has(&log, "info", &["remediation decision", "rule=broken", "decision=act"]),
        "{log}"
    );
    assert!(
        has(
            &log,
            "info",
            &["remediation action", "rule=worker", "result=ok", "target="]
        ),
        "{log}"
    );
    assert!(
        has(
            &log,
            "warn",
            &["request refused", "status=401", "peer=127.0.0.1:", "credentials"]
        ),
        "{log}"
    );
    assert!(
        has(
            &log,
            "warn",
            &["request refused", "status=415", "peer=127.0.0.1:", "content type"]
        ),
        "{log}"
    );
    assert!(!log.contains("level=debug"), "the default level is info: {log}");
}

/// An unknown log level is refused (exit 2, the accepted values listed)
/// instead of silently dropping every line.
#[test]
fn unknown_log_level_is_refused_with_the_accepted_values() {
    let out = Command::new(binary_path())
        .args(["--log.level=verbose", "serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error, warn, info, debug, trace"), "{err}");
}

/// `--web.listen-address` as node_exporter reads it: a host name is
/// resolved (`localhost:PORT` serves on loopback), and `:PORT` means every
/// interface (shown here without binding one: the receiver without
/// credentials refuses the unspecified address before binding).
#[tokio::test(flavor = "multi_thread")]
async fn listen_address_takes_host_names_and_bare_ports() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = TestConfig::new()
        .disable(&["host", "hwmon"])
        .write(dir.path().join("hostmedic.toml"));
    let port = free_port();
    let bin = Binary::start_with(
        &cfg,
        dir.path(),
        &["--web.listen-address", &format!("localhost:{port}")],
    );
    assert!(bin.addr.ip().is_loopback(), "{}", bin.addr);
    assert_eq!(bin.addr.port(), port);
    let (status, body) = get(&bin.url("/-/healthy")).await;
    assert_eq!((status, body.as_str()), (200, "Healthy\n"));
    drop(bin);

    let open = TestConfig::new()
        .disable(&["host", "hwmon"])
        .receiver(dir.path(), |_| {})
        .write(dir.path().join("open.toml"));
    let out = Command::new(binary_path())
        .arg("--config")
        .arg(&open)
        .args(["--web.listen-address", ":19877", "serve"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("non-loopback 0.0.0.0:19877"), "{}", text(&out));
}

/// Each subcommand's `--help` lists its own flags only.
#[test]
fn each_subcommand_help_shows_only_its_own_flags() {
    let help = |sub: &str| {
        let out = Command::new(binary_path()).args([sub, "--help"]).output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let incidents = help("incidents");
    assert!(
        incidents.contains("--since") && incidents.contains("--config"),
        "{incidents}"
    );
    for other in ["--web.listen-address", "--url", "--log.format", "--tls.ca-file"] {
        assert!(
            !incidents.contains(other),
            "incidents --help lists {other}:\n{incidents}"
        );
    }
    let approve = help("approve");
    assert!(
        approve.contains("--url") && approve.contains("--web.config.file"),
        "{approve}"
    );
    for other in ["--since", "--web.listen-address", "--log.level"] {
        assert!(!approve.contains(other), "approve --help lists {other}:\n{approve}");
    }
    let serve = help("serve");
    assert!(
        serve.contains("--web.listen-address") && serve.contains("--log.level"),
        "{serve}"
    );
    assert!(!serve.contains("--url") && !serve.contains("--since"), "{serve}");
}

/// `--version` names the revision and the build date; a bad `--config`
/// prints its error once.
#[test]
fn version_has_revision_and_build_date_and_errors_print_once() {
    let out = Command::new(binary_path()).arg("--version").output().unwrap();
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let re =
        regex::Regex::new(r"^hostmedic \d+\.\d+\.\d+ \(revision ([0-9a-f]{7,}|unknown), built \d{4}-\d{2}-\d{2}\)$")
            .unwrap();
    assert!(re.is_match(&v), "{v}");

    let out = Command::new(binary_path())
        .args(["--config", "nope.toml", "collect"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(err.contains("nope.toml"), "{err}");
}
