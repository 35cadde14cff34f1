//! Shared test harness: in-process servers on 127.0.0.1:0, the real binary as
//! a child process (killed by PID on drop), and a small HTTP client.
//!
//! The library crate `hostmedic-test-support` (a workspace member and a
//! dev-dependency of hostmedic): compiled once for both test binaries
//! (`tests/component`, `tests/e2e`, which import it as `common`), and linted
//! as a library, so an unused private helper is a warning here.

pub mod e2e;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub mod alertmanager;
pub mod config;
pub mod netns;
pub mod prometheus;
pub mod sink;

use hostmedic::app::App;
use hostmedic::config::Config;

pub mod procs;
use tokio_util::sync::CancellationToken;

pub mod systemd;

/// A hostmedic served in-process on an ephemeral loopback port.
pub struct InProcess {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    pub shutdown: CancellationToken,
    pub handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl InProcess {
    pub async fn start(cfg: Config) -> InProcess {
        hostmedic::install_crypto_provider();
        let app = App::new(cfg).expect("valid config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        app.spawn_background(&shutdown);
        let handle = tokio::spawn(hostmedic::server::run(listener, app.clone(), shutdown.clone()));
        InProcess {
            addr,
            app,
            shutdown,
            handle,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The receiver's status document (`GET /api/v1/status`, bearer `token`).
    pub async fn status(&self, token: &str) -> serde_json::Value {
        let r = client()
            .get(self.url("/api/v1/status"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(15), self.handle).await;
    }
}

pub fn client() -> reqwest::Client {
    hostmedic::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// GETs `url` and returns (status, body).
pub async fn get(url: &str) -> (u16, String) {
    let r = client().get(url).send().await.expect("GET");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// GET with a bearer token (what the status API and the landing page's
/// receiver sections ask for when the receiver has credentials).
pub async fn get_with_token(url: &str, token: &str) -> (u16, String) {
    let r = client().get(url).bearer_auth(token).send().await.expect("GET");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// The real hostmedic binary running as a child process; killed on drop.
pub struct Binary {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr_log: PathBuf,
}

/// The repository root (where `Cargo.toml`, `alerting-rules/`, `deploy/`
/// live): this crate is `tests/support` inside it.
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(Path::parent)
        .expect("tests/support has two parents")
        .to_path_buf()
}

/// The `hostmedic` binary cargo built for the running test binary. A
/// library gets no `CARGO_BIN_EXE_hostmedic` (cargo sets it only when it
/// compiles an integration test), so: nextest's runtime
/// `NEXTEST_BIN_EXE_hostmedic`, else the binary beside the test binary's
/// `deps/` directory (`<target>/<profile>/hostmedic`, where `cargo test`
/// puts it).
pub fn binary_path() -> PathBuf {
    if let Some(p) = std::env::var_os("NEXTEST_BIN_EXE_hostmedic") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("a test binary lives in <target>/<profile>/deps");
    let bin = profile_dir.join("hostmedic");
    assert!(
        bin.is_file(),
        "{} is not built (run the tests through cargo)",
        bin.display()
    );
    bin
}

impl Binary {
    /// Starts `hostmedic serve --config <config>` on 127.0.0.1:0 and waits for
    /// its "listening" log line. Its stderr is copied to `<dir>/hostmedic.log`.
    pub fn start(config: &Path, dir: &Path) -> Binary {
        Binary::start_with(config, dir, &[])
    }

    pub fn start_with(config: &Path, dir: &Path, extra: &[&str]) -> Binary {
        Binary::start_with_prefix(&[], config, dir, extra)
    }

    /// Like [`Binary::start_with`], but runs the binary through the command
    /// `prefix` (e.g. `setpriv … --`); an empty prefix runs it directly.
    /// `extra` may name its own listen address (a restart on the same port)
    /// and log level (default debug).
    pub fn start_with_prefix(prefix: &[&str], config: &Path, dir: &Path, extra: &[&str]) -> Binary {
        Binary::spawn(prefix, config, dir, extra, true)
    }

    /// Like [`Binary::start_with`], at the binary's own default log level
    /// (no `--log.level` unless `extra` names one): what an operator's
    /// `journalctl` shows.
    pub fn start_at_default_log_level(config: &Path, dir: &Path, extra: &[&str]) -> Binary {
        Binary::spawn(&[], config, dir, extra, false)
    }

    fn spawn(prefix: &[&str], config: &Path, dir: &Path, extra: &[&str], debug_log: bool) -> Binary {
        let default_unless_given = |flag: &'static str, value: &'static str| -> Vec<&str> {
            if extra.contains(&flag) {
                vec![]
            } else {
                vec![flag, value]
            }
        };
        let mut cmd = match prefix.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(binary_path());
                c
            }
            None => Command::new(binary_path()),
        };
        let mut child = cmd
            .arg("--config")
            .arg(config)
            .args(default_unless_given("--web.listen-address", "127.0.0.1:0"))
            .args(if debug_log {
                default_unless_given("--log.level", "debug")
            } else {
                vec![]
            })
            .args(extra)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn hostmedic (prefix {prefix:?}): {e}"));
        let stderr = child.stderr.take().unwrap();
        let log = dir.join("hostmedic.log");
        let (tx, rx) = std::sync::mpsc::channel();
        let log_path = log.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log_path)
                .unwrap();
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(f, "{line}");
                if !sent
                    && line.contains("message=listening")
                    && let Some(a) = line.split_whitespace().find_map(|w| w.strip_prefix("address="))
                {
                    let _ = tx.send(a.parse::<SocketAddr>().unwrap());
                    sent = true;
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "hostmedic (prefix {prefix:?}) did not start; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        Binary {
            child,
            addr,
            stderr_log: log,
        }
    }

    /// Starts `hostmedic serve` as user `nobody` (uid/gid 65534, no
    /// supplementary groups, log level info) through util-linux's `setpriv`,
    /// so permission bits apply even though the tests run as root.
    pub fn start_as_nobody(config: &Path, dir: &Path) -> Binary {
        Binary::start_with_prefix(
            &["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"],
            config,
            dir,
            &["--log.level", "info"],
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends a signal to this child (by its PID) and waits up to `wait` for it to exit.
    pub fn signal_and_wait(
        &mut self,
        sig: nix::sys::signal::Signal,
        wait: Duration,
    ) -> Option<std::process::ExitStatus> {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig);
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `hostmedic --config <config> incidents --since 1h`: the markdown
/// incident log an operator reads (panics, with stderr, when it fails).
pub fn incidents_last_hour(config: &Path) -> String {
    let out = Command::new(binary_path())
        .arg("--config")
        .arg(config)
        .args(["incidents", "--since", "1h"])
        .output()
        .expect("run hostmedic incidents");
    assert!(
        out.status.success(),
        "hostmedic incidents: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` every 100 ms until it returns Some or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A temporary folder for a receiver test: the bearer token in `token`
/// (newline-terminated, as an operator's file) and an empty `effects/`
/// folder for the actions' traces.
pub fn receiver_dir(token: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("effects")).unwrap();
    std::fs::write(dir.path().join("token"), format!("{token}\n")).unwrap();
    dir
}

/// The default configuration, reading `sysfs` as the sysfs root.
pub fn config_with_sysfs(sysfs: &Path) -> Config {
    config::TestConfig::new()
        .global(|g| {
            g.path("sysfs_root", sysfs);
        })
        .parse()
}

/// Writes a fake hwmon tree with one chip into `root`.
pub fn fake_hwmon(root: &Path, millideg: i64) {
    let d = root.join("class/hwmon/hwmon0");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("name"), "coretemp\n").unwrap();
    std::fs::write(d.join("temp1_input"), format!("{millideg}\n")).unwrap();
    std::fs::write(d.join("temp1_label"), "Package id 0\n").unwrap();
    std::fs::write(d.join("temp1_max"), "100000\n").unwrap();
    std::fs::write(d.join("temp1_crit"), "105000\n").unwrap();
}

/// `true` when running under CI (`CI=true`), where real parts must not skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Skips (returns true, printing why) outside CI, or panics inside CI.
pub fn skip_or_fail(reason: &str) -> bool {
    if in_ci() {
        panic!("required test part unavailable in CI: {reason}");
    }
    eprintln!("SKIPPED: {reason}");
    true
}
pub mod docker;
pub mod git_lfs;
pub mod grafana;

/// Asserts that `promtool check metrics` (Debian package prometheus) finds
/// nothing in `body`.
pub fn promtool_check_metrics(body: &str) {
    use std::io::Write;
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) must be installed");
    p.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && findings.trim().is_empty(),
        "promtool findings:\n{findings}"
    );
}

/// The value of the unlabelled sample `name` in a text exposition (`/metrics`).
pub fn sample_value(exposition: &str, name: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// An Alertmanager webhook body (version 4) carrying `alerts`; its status
/// is `firing` when any alert fires, `resolved` otherwise.
pub fn payload(alerts: Vec<serde_json::Value>) -> serde_json::Value {
    let status = if alerts.iter().any(|a| a["status"] == "firing") {
        "firing"
    } else {
        "resolved"
    };
    serde_json::json!({"receiver": "hostmedic", "status": status, "alerts": alerts, "groupLabels": {},
           "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am", "version": "4",
           "groupKey": "{}:{}", "truncatedAlerts": 0})
}

/// Delivers `alerts` ([`payload`]) to the receiver at `url` (its
/// `/api/v1/alerts`) with bearer `token`, as Alertmanager does; the answer
/// must be 200 (its body is shown otherwise).
pub async fn deliver_alerts(url: &str, token: &str, alerts: Vec<serde_json::Value>) {
    let r = client()
        .post(url)
        .bearer_auth(token)
        .json(&payload(alerts))
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    assert_eq!(code, 200, "{}", r.text().await.unwrap());
}

/// The ids of the journal's decisions that are `decision`, in journal order.
pub fn decision_ids(
    entries: &[hostmedic::receiver::journal::Entry],
    decision: hostmedic::receiver::journal::Decision,
) -> Vec<String> {
    use hostmedic::receiver::journal::Event;
    entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::Decision { id, decision: d, .. } if *d == decision => Some(id.clone()),
            _ => None,
        })
        .collect()
}

/// Who approved, for each approval in the journal, in journal order.
pub fn approved_by(entries: &[hostmedic::receiver::journal::Entry]) -> Vec<String> {
    use hostmedic::receiver::journal::Event;
    entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::Approved { by, .. } => Some(by.clone()),
            _ => None,
        })
        .collect()
}
