//! `check-config` is the same judge as `serve`: a table of configurations,
//! each given to the real binary twice with the same inputs (file, web
//! config, `--web.listen-address`), once as `hostmedic check-config` and
//! once as `hostmedic serve` on a loopback port. Both must give the same
//! verdict (serve exits non-zero at once, or comes up and answers
//! `/-/healthy`) and print the same findings, and each finding must be the
//! one the case expects.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::binary_path;
use crate::common::config::{Action, Rule, TestConfig};

/// Where the receiver is refused without authentication: TEST-NET-1, an
/// address no interface here has, so nothing can ever listen on it.
const NON_LOOPBACK: &str = "192.0.2.1:0";

struct Case {
    name: &'static str,
    config: String,
    web: Option<String>,
    listen: &'static str,
    accept: bool,
    /// Each finding line (in order) contains its entry.
    findings: Vec<&'static str>,
}

/// The lines the judge prints: `error: …` and `warning: …`.
fn findings(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.starts_with("error: ") || l.starts_with("warning: "))
        .map(str::to_string)
        .collect()
}

fn args(dir: &Path, case: &Case) -> Vec<String> {
    let config = dir.join(format!("{}.toml", case.name));
    std::fs::write(&config, &case.config).unwrap();
    let mut a = vec!["--config".to_string(), config.display().to_string()];
    if let Some(web) = &case.web {
        let f = dir.join(format!("{}.web.yml", case.name));
        std::fs::write(&f, web).unwrap();
        a.extend(["--web.config.file".to_string(), f.display().to_string()]);
    }
    a.extend(["--web.listen-address".to_string(), case.listen.to_string()]);
    a
}

fn check_config(args: &[String]) -> (bool, Vec<String>) {
    let out = Command::new(binary_path())
        .args(args)
        .arg("check-config")
        .output()
        .unwrap();
    (out.status.success(), findings(&String::from_utf8_lossy(&out.stderr)))
}

/// Runs `serve`: `(true, findings)` once it listens and answers
/// `/-/healthy` (then stopped by its PID), `(false, findings)` when it
/// exits non-zero first.
fn serve(args: &[String]) -> (bool, Vec<String>) {
    let mut child = Command::new(binary_path())
        .args(args)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut log = String::new();
    let listening = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                log.push_str(&line);
                log.push('\n');
                if line.contains("message=listening") {
                    let addr = line.split_whitespace().find_map(|w| w.strip_prefix("address="));
                    break addr.map(|a| a.parse::<SocketAddr>().unwrap());
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break None,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("serve neither listened nor exited in 30 s:\n{log}");
            }
        }
    };
    let Some(addr) = listening else {
        let status = child.wait().unwrap();
        assert!(!status.success(), "serve exited 0 without listening:\n{log}");
        return (false, findings(&log));
    };
    let healthy = get_healthy(addr);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    assert!(healthy.starts_with("HTTP/1.1 200"), "/-/healthy: {healthy}\n{log}");
    (true, findings(&log))
}

fn get_healthy(addr: SocketAddr) -> String {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn base() -> TestConfig {
    TestConfig::new().disable(&["docker", "systemd", "processes"])
}

fn true_rule(name: &str, alert: &str) -> Rule {
    Rule::new(name, alert).action(Action::exec(["/usr/bin/true"]))
}

fn cases(d: &Path) -> Vec<Case> {
    std::fs::write(d.join("token"), "s3cret\n").unwrap();
    let receiver = |f: &dyn Fn(&mut crate::common::config::Section)| base().receiver(d, |r| f(r));
    let hash = bcrypt::hash("pw", 4).unwrap();
    let case = |name, config: TestConfig, accept, findings| Case {
        name,
        config: config.render(),
        web: None,
        listen: "127.0.0.1:0",
        accept,
        findings,
    };
    vec![
        case("plain", base(), true, vec![]),
        case(
            "receiver_with_a_rule",
            receiver(&|_| {}).rule(true_rule("r", "A")),
            true,
            vec![],
        ),
        Case {
            listen: NON_LOOPBACK,
            ..case(
                "non_loopback_without_credentials",
                receiver(&|_| {}),
                false,
                vec!["receiver.allow_unauthenticated_non_loopback"],
            )
        },
        case(
            "backoff_below_the_global_cooldown",
            receiver(&|r| {
                r.set("cooldown", "1h");
            })
            .rule(
                true_rule("grow", "A")
                    .set("backoff_factor", 2.0)
                    .set("backoff_max", "10m"),
            ),
            false,
            vec![": rule \"grow\": config key `remediation[0].backoff_max`: 10m is below the rule's cooldown of 1h"],
        ),
        case(
            "every_error_listed",
            receiver(&|_| {})
                .rule(true_rule("re", "A").strings("matchers", ["unit=~\"ab(c\""]))
                .rule(true_rule("esc", "B").strings("escalate", ["pager"])),
            false,
            vec![
                ": rule \"re\": config key `remediation[0].matchers[0]`: invalid regex \"ab(c\": unclosed group at character 3",
                ": rule \"esc\": config key `remediation[1].escalate[0]`: no [notify.pager] channel",
            ],
        ),
        case(
            "duration_without_unit",
            receiver(&|r| {
                r.set("cooldown", "10");
            }),
            false,
            vec!["did you mean \"10s\"?"],
        ),
        case(
            "missing_journal_directory",
            receiver(&|r| {
                r.path("journal_path", d.join("no-such-dir/journal.jsonl"));
            }),
            false,
            vec!["config key `receiver.journal_path`: directory"],
        ),
        case(
            "missing_token_file",
            receiver(&|r| {
                r.path("bearer_token_file", d.join("no-token"));
            }),
            false,
            vec!["config key `receiver.bearer_token_file`"],
        ),
        case(
            "web_users_without_a_web_config",
            receiver(&|r| {
                r.strings("web_users", ["alertmanager"]);
            }),
            false,
            vec!["config key `receiver.web_users[0]`"],
        ),
        Case {
            web: Some(format!("basic_auth_users:\n  prometheus: {hash}\n")),
            ..case(
                "web_users_not_in_the_web_config",
                receiver(&|r| {
                    r.strings("web_users", ["alertmanager"]);
                }),
                false,
                vec!["config key `receiver.web_users[0]`"],
            )
        },
        Case {
            web: Some("tls_server_config:\n  cert_file: a.pem\n".into()),
            ..case("broken_web_config", base(), false, vec!["tls_server_config.key_file"])
        },
        case(
            "rules_with_the_receiver_off",
            base().rule(true_rule("never", "A")),
            true,
            vec!["warning: ", "will never run: the receiver is off"],
        ),
        case(
            "label_the_shipped_alert_never_carries",
            receiver(&|_| {})
                .rule(Rule::new("hb", "HostmedicWatchdog").action(Action::systemd("restart", "{{ labels.unit }}"))),
            true,
            vec![
                "warning: ",
                "the shipped alert HostmedicWatchdog carries no label \"unit\"",
            ],
        ),
        Case {
            config: "[web\nlisten_address = 1\n".into(),
            ..case("not_toml", base(), false, vec!["not TOML"])
        },
    ]
}

#[test]
fn check_config_and_serve_give_the_same_verdict_and_findings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for case in cases(d) {
        let args = args(d, &case);
        let (checked, check_findings) = check_config(&args);
        let (served, serve_findings) = serve(&args);
        let name = case.name;
        assert_eq!(
            checked, case.accept,
            "{name}: check-config verdict; findings {check_findings:#?}"
        );
        assert_eq!(
            served, case.accept,
            "{name}: serve verdict; findings {serve_findings:#?}"
        );
        assert_eq!(check_findings, serve_findings, "{name}: the same findings from both");
        let text = check_findings.join("\n");
        if case.findings.is_empty() {
            assert!(check_findings.is_empty(), "{name}: {text}");
        }
        for want in &case.findings {
            assert!(text.contains(want), "{name}: want {want:?} in\n{text}");
        }
        // Errors come one a line, each with the file and its line number.
        let file = d.join(format!("{name}.toml")).display().to_string();
        for f in check_findings.iter().filter(|f| f.contains(&file)) {
            let rest = &f[f.find(&file).unwrap() + file.len()..];
            assert!(rest.starts_with(':'), "{name}: {f}");
        }
    }
}
