//! End-to-end wiring for the S1–S12 scenario tests: a notification sink, the
//! real hostmedic binary, real Alertmanager and real Prometheus evaluating a
//! test copy of the shipped rules, plus readers for the incident journal and
//! a fault-to-remediation stopwatch.
//!
//! Order of start-up (each part needs the address of the one before):
//! sink → hostmedic (its config names the sink) → Alertmanager (webhook to
//! hostmedic with bearer auth) → Prometheus (scrapes hostmedic, alerts to
//! Alertmanager). Every child is killed by PID on drop.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::{Binary, client};

/// The bearer token every e2e Alertmanager sends and every e2e hostmedic expects.
pub const TOKEN: &str = "e2e-secret-token-7f3a9c";

/// Repository root (where `alerting-rules/` lives).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A free loopback port (bound then released; callers retry on a lost race).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

// ---------------------------------------------------------------------------
// Notification sink: plays ntfy, Telegram and a generic webhook.
// ---------------------------------------------------------------------------

/// One HTTP request received by the sink.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// A local HTTP server on 127.0.0.1:0 that records every request and answers
/// 200 with a body that satisfies ntfy, Telegram's Bot API and webhooks.
pub struct Sink {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sink {
    pub async fn start() -> Sink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let addr = listener.local_addr().unwrap();
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let store = received.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let store = store.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let store = store.clone();
                        async move {
                            let method = req.method().to_string();
                            let path = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
                            let headers = req
                                .headers()
                                .iter()
                                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                                .collect();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            store.lock().unwrap().push(Received {
                                method,
                                path,
                                headers,
                                body: String::from_utf8_lossy(&body).into_owned(),
                                at: Instant::now(),
                            });
                            let reply = r#"{"ok":true,"result":{"message_id":1},"id":"e2e","event":"message"}"#;
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from_static(reply.as_bytes())))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Sink { addr, received, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Requests whose path starts with `prefix`.
    pub fn on(&self, prefix: &str) -> Vec<Received> {
        self.all().into_iter().filter(|r| r.path.starts_with(prefix)).collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------
// Incident journal (JSON lines) reader.
// ---------------------------------------------------------------------------

/// Reads the append-only JSON-lines journal; a torn last line is ignored.
pub fn journal_entries(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Every string anywhere in `v` (for "does this entry mention X" checks that
/// do not depend on the exact field layout).
pub fn strings_in(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => o.iter().for_each(|(k, x)| {
                out.push(k.clone());
                walk(x, out)
            }),
            Value::Number(n) => out.push(n.to_string()),
            Value::Bool(b) => out.push(b.to_string()),
            Value::Null => {}
        }
    }
    walk(v, &mut out);
    out
}

// ---------------------------------------------------------------------------
// Child processes: Alertmanager and Prometheus.
// ---------------------------------------------------------------------------

/// A child process killed by PID on drop, its output in `log`.
pub struct Daemon {
    pub name: &'static str,
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Daemon {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Spawns `cmd` (args built for `port`) and waits for `/-/ready`.
    /// Retries with a fresh port if the port was taken meanwhile.
    async fn spawn(name: &'static str, dir: &Path, build: impl Fn(u16) -> Command) -> Daemon {
        let log = dir.join(format!("{name}.log"));
        for _attempt in 0..3 {
            let port = free_port();
            let out = std::fs::File::create(&log).unwrap();
            let mut cmd = build(port);
            let child = cmd
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
            let mut d = Daemon {
                name,
                child,
                port,
                log: log.clone(),
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            let http = client();
            loop {
                if let Ok(Some(_)) = d.child.try_wait() {
                    break; // exited: maybe the port was taken; retry
                }
                if let Ok(r) = http.get(d.url("/-/ready")).send().await
                    && r.status().is_success()
                {
                    return d;
                }
                if Instant::now() > deadline {
                    panic!("{name} not ready after 30 s; log:\n{}", d.log_text());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            eprintln!("{name} exited during start-up, retrying; log:\n{}", d.log_text());
        }
        panic!("{name} failed to start 3 times; see {}", log.display());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts real Alertmanager (group_wait 1 s) delivering every alert to
/// `webhook_url` with bearer auth (token read from `token_file`).
pub async fn start_alertmanager(dir: &Path, webhook_url: &str, token_file: &Path) -> Daemon {
    let conf = dir.join("alertmanager.yml");
    std::fs::write(
        &conf,
        format!(
            r#"route:
  receiver: hostmedic
  group_by: ['...']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hostmedic
    webhook_configs:
      - url: "{webhook_url}"
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: "{}"
"#,
            token_file.display()
        ),
    )
    .unwrap();
    let data = dir.join("am-data");
    std::fs::create_dir_all(&data).unwrap();
    Daemon::spawn("alertmanager", dir, |port| {
        let mut c = Command::new("prometheus-alertmanager");
        c.arg(format!("--config.file={}", conf.display()))
            .arg(format!("--storage.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=debug");
        c
    })
    .await
}

/// Shortens a Prometheus duration literal to test speed: every `for:` longer
/// than `max_for` becomes `max_for`.
pub fn shorten_for(line: &str, max_for: &str) -> String {
    let trimmed = line.trim_start();
    if let Some(rest) = trimmed.strip_prefix("for:") {
        let dur = rest.trim().trim_matches(|c| c == '"' || c == '\'');
        let secs = parse_prom_duration(dur);
        let max = parse_prom_duration(max_for);
        if let (Some(s), Some(m)) = (secs, max)
            && s > m
        {
            let indent = &line[..line.len() - trimmed.len()];
            return format!("{indent}for: {max_for}");
        }
    }
    line.to_string()
}

/// Parses `1h30m`, `10m`, `90s`, `500ms` into seconds.
pub fn parse_prom_duration(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push(chars.next().unwrap());
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        total += n * match unit.as_str() {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "w" => 604800.0,
            "y" => 31536000.0,
            _ => return None,
        };
        any = true;
    }
    (any && num.is_empty()).then_some(total)
}

/// Copies the shipped rules (`alerting-rules/*.yml`) into `dst`, with every
/// `for:` clamped to `max_for`. Nothing else is changed.
pub fn rules_test_copy(dst: &Path, max_for: &str) -> Vec<PathBuf> {
    let src = repo_root().join("alerting-rules");
    std::fs::create_dir_all(dst).unwrap();
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&src)
        .unwrap_or_else(|e| panic!("reading {}: {e}", src.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    entries.sort();
    for p in entries {
        let text = std::fs::read_to_string(&p).unwrap();
        let copy: Vec<String> = text.lines().map(|l| shorten_for(l, max_for)).collect();
        let d = dst.join(p.file_name().unwrap());
        std::fs::write(&d, copy.join("\n") + "\n").unwrap();
        out.push(d);
    }
    assert!(!out.is_empty(), "no rule files in {}", src.display());
    out
}

/// Starts real Prometheus (1 s scrape and evaluation, resend delay 1 s)
/// scraping `targets` and alerting to `alertmanager`, with `rule_files`.
pub async fn start_prometheus(dir: &Path, targets: &[SocketAddr], alertmanager: u16, rule_files: &[PathBuf]) -> Daemon {
    let conf = dir.join("prometheus.yml");
    let rules: Vec<String> = rule_files.iter().map(|p| format!("  - \"{}\"", p.display())).collect();
    let targets: Vec<String> = targets.iter().map(|a| format!("\"{a}\"")).collect();
    std::fs::write(
        &conf,
        format!(
            r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
{}
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:{alertmanager}"]
scrape_configs:
  - job_name: hostmedic
    static_configs:
      - targets: [{}]
"#,
            rules.join("\n"),
            targets.join(", ")
        ),
    )
    .unwrap();
    let data = dir.join("prom-data");
    std::fs::create_dir_all(&data).unwrap();
    Daemon::spawn("prometheus", dir, |port| {
        let mut c = Command::new("prometheus");
        c.arg(format!("--config.file={}", conf.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--rules.alert.resend-delay=1s")
            .arg("--log.level=debug");
        c
    })
    .await
}

// ---------------------------------------------------------------------------
// The whole stack.
// ---------------------------------------------------------------------------

/// One scenario's stack. Fields drop in reverse order of start-up.
pub struct Stack {
    pub prometheus: Option<Daemon>,
    pub alertmanager: Option<Daemon>,
    pub hostmedic: Option<Binary>,
    pub sink: Sink,
    pub dir: tempfile::TempDir,
    pub scenario: &'static str,
}

impl Stack {
    /// A scratch folder, the sink and the token file (`<dir>/token`).
    pub async fn new(scenario: &'static str) -> Stack {
        let dir = tempfile::Builder::new()
            .prefix(&format!("hostmedic-e2e-{scenario}-"))
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("token"), TOKEN).unwrap();
        Stack {
            prometheus: None,
            alertmanager: None,
            hostmedic: None,
            sink: Sink::start().await,
            dir,
            scenario,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn token_file(&self) -> PathBuf {
        self.path("token")
    }

    pub fn journal_path(&self) -> PathBuf {
        self.path("state/journal.jsonl")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    /// Writes `config` to `<dir>/hostmedic.toml` and starts the binary.
    pub fn start_hostmedic(&mut self, config: &str) {
        let p = self.path("hostmedic.toml");
        std::fs::write(&p, config).unwrap();
        std::fs::create_dir_all(self.state_dir()).unwrap();
        self.hostmedic = Some(Binary::start(&p, self.dir.path()));
    }

    pub fn hostmedic(&self) -> &Binary {
        self.hostmedic.as_ref().expect("hostmedic started")
    }

    /// Starts Alertmanager (to hostmedic's webhook) and Prometheus (scraping
    /// hostmedic, evaluating the test copy of the shipped rules).
    pub async fn start_monitoring(&mut self, max_for: &str, webhook_path: &str) {
        let hm = self.hostmedic().addr;
        let am = start_alertmanager(
            self.dir.path(),
            &format!("http://{hm}{webhook_path}"),
            &self.token_file(),
        )
        .await;
        let rules = rules_test_copy(&self.path("rules"), max_for);
        let prom = start_prometheus(self.dir.path(), &[hm], am.port, &rules).await;
        self.alertmanager = Some(am);
        self.prometheus = Some(prom);
    }

    pub fn journal(&self) -> Vec<Value> {
        journal_entries(&self.journal_path())
    }

    /// Prometheus' current alerts (name → state) for diagnostics.
    pub async fn prom_alerts(&self) -> String {
        let Some(p) = &self.prometheus else {
            return String::new();
        };
        match client().get(p.url("/api/v1/alerts")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => e.to_string(),
        }
    }

    /// Value of an instant PromQL query (first sample), if any.
    pub async fn query(&self, q: &str) -> Option<f64> {
        let p = self.prometheus.as_ref()?;
        let v: Value = client()
            .get(p.url(&format!("/api/v1/query?query={}", urlencode(q))))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Everything useful when a scenario times out.
    pub async fn diagnostics(&self) -> String {
        let mut s = String::new();
        s += &format!("--- prometheus alerts:\n{}\n", self.prom_alerts().await);
        if let Some(am) = &self.alertmanager {
            let a = match client().get(am.url("/api/v2/alerts")).send().await {
                Ok(r) => r.text().await.unwrap_or_default(),
                Err(e) => e.to_string(),
            };
            s += &format!("--- alertmanager alerts:\n{a}\n");
            s += &format!("--- alertmanager log tail:\n{}\n", tail(&am.log_text(), 20));
        }
        if let Some(hm) = &self.hostmedic {
            s += &format!("--- hostmedic log tail:\n{}\n", tail(&hm.log(), 60));
        }
        s += &format!(
            "--- journal:\n{}\n",
            std::fs::read_to_string(self.journal_path()).unwrap_or_default()
        );
        s += &format!("--- sink:\n{:#?}\n", self.sink.all());
        s
    }

    /// Polls `f` every 200 ms until Some, or panics after `timeout` with diagnostics.
    pub async fn wait_for<T>(&self, timeout: Duration, what: &str, mut f: impl FnMut(&Stack) -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "[{}] timed out after {timeout:?} waiting for {what}\n{}",
                    self.scenario,
                    self.diagnostics().await
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Percent-encodes a query-string value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Measures fault-to-remediation time and reports it in the line format the
/// bench script collects: `e2e S1 fault_to_remediation_seconds=7.3`.
pub struct Stopwatch {
    scenario: &'static str,
    start: Instant,
}

impl Stopwatch {
    /// Call right after injecting the fault.
    pub fn fault_injected(scenario: &'static str) -> Stopwatch {
        Stopwatch {
            scenario,
            start: Instant::now(),
        }
    }

    /// Call once the remediation is verified; prints (and, when
    /// `HOSTMEDIC_E2E_TIMINGS` names a file, appends) the timing line.
    pub fn remediated(&self) -> f64 {
        let secs = self.start.elapsed().as_secs_f64();
        let line = format!("e2e {} fault_to_remediation_seconds={secs:.1}", self.scenario);
        println!("{line}");
        eprintln!("{line}");
        if let Ok(p) = std::env::var("HOSTMEDIC_E2E_TIMINGS") {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(p) {
                let _ = writeln!(f, "{line}");
            }
        }
        secs
    }
}
