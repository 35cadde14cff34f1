//! Real Prometheus (Debian's `prometheus`) for tests, started on 127.0.0.1
//! with a free port and temporary storage, stopped by PID on drop; and the
//! test copies of the shipped configurations.
//!
//! Prometheus and Alertmanager (`common::alertmanager`) run with the files
//! shipped in `compose/` (no drift): the harness substitutes only addresses,
//! ports, paths and intervals, and fails loudly when a line it must
//! substitute is not there. Rules are the shipped `alerting-rules/*.yml`, or a
//! test copy with every `for:` shortened.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use super::repo_root;

pub use super::alertmanager::free_port;

/// The shipped rule files (`alerting-rules/*.yml`), sorted.
pub fn shipped_rule_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo_root().join("alerting-rules"))
        .expect("alerting-rules/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no rule files in alerting-rules/");
    v
}

/// Alerts about the test machine itself (its pressure stall information):
/// on a machine shared with other tests and builds they are genuinely true
/// at random moments, so the test copies keep their SHIPPED `for:` (minutes)
/// and they stay quiet, except in a scenario that watches the machine on
/// purpose (S10 on pressure, [`shortened_rules_copy_keeping`] with `&[]`).
pub const MACHINE_BOUND_ALERTS: &[&str] = &[
    "HostmedicCpuPressureHigh",
    "HostmedicMemoryPressureHigh",
    "HostmedicIoPressureHigh",
    "HostmedicUnitTopCpuConsumer",
];

/// Rewrites every `for: <duration>` line of a rules file to `for: <new>`,
/// keeping `for: 0s` (and any duration already shorter) as it is, and the
/// `for:` of the alerts named in `keep` untouched. Returns the new text and
/// how many `for:` lines it saw.
pub fn shorten_for(text: &str, new: Duration, keep: &[&str]) -> (String, usize) {
    let mut seen = 0;
    let mut out = String::with_capacity(text.len());
    let mut alert = "";
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let indent = &body[..body.len() - body.trim_start().len()];
        if let Some(name) = body.trim_start().strip_prefix("- alert:") {
            alert = name.trim();
        }
        if let Some(value) = body.trim_start().strip_prefix("for:") {
            seen += 1;
            if keep.contains(&alert) {
                out.push_str(line);
                continue;
            }
            let value = value.trim();
            let current = humantime::parse_duration(value)
                .unwrap_or_else(|e| panic!("`for: {value}` is not a plain duration: {e}"));
            let d = current.min(new);
            let secs = d.as_secs_f64();
            let rendered = if d.subsec_nanos() == 0 {
                format!("{}s", d.as_secs())
            } else {
                format!("{}ms", (secs * 1000.0).round() as u64)
            };
            out.push_str(&format!("{indent}for: {rendered}\n"));
        } else {
            out.push_str(line);
        }
    }
    (out, seen)
}

/// Copies the shipped rules into `dest` with every `for:` shortened to at most
/// `for_` (but the [`MACHINE_BOUND_ALERTS`]), asserting each alert has one.
/// Returns the copied files.
pub fn shortened_rules_copy(dest: &Path, for_: Duration) -> Vec<PathBuf> {
    shortened_rules_copy_keeping(dest, for_, MACHINE_BOUND_ALERTS)
}

/// [`shortened_rules_copy`] keeping the shipped `for:` of the alerts in `keep`.
pub fn shortened_rules_copy_keeping(dest: &Path, for_: Duration, keep: &[&str]) -> Vec<PathBuf> {
    std::fs::create_dir_all(dest).unwrap();
    let mut out = Vec::new();
    for src in shipped_rule_files() {
        let text = std::fs::read_to_string(&src).unwrap();
        let alerts = text.lines().filter(|l| l.trim_start().starts_with("- alert:")).count();
        let (short, seen) = shorten_for(&text, for_, keep);
        assert_eq!(
            seen,
            alerts,
            "{}: every alert needs exactly one `for:` line",
            src.display()
        );
        let to = dest.join(src.file_name().unwrap());
        std::fs::write(&to, short).unwrap();
        out.push(to);
    }
    out
}

/// Replaces `needle` by `with` in `text`, asserting it occurs exactly once
/// (the shipped config must not drift from what the harness expects).
pub fn substitute(text: &str, needle: &str, with: &str, file: &str) -> String {
    let n = text.matches(needle).count();
    assert_eq!(n, 1, "{file}: expected `{needle}` exactly once, found {n}");
    text.replace(needle, with)
}

fn yaml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

/// What every test copy of a shipped Prometheus config (`file`, read from
/// the repository) changes: 1 s scrape/evaluation, rules from
/// `rules_dir/*.yml`.
pub fn fast_prometheus_config(file: &str, rules_dir: &Path) -> String {
    let text = std::fs::read_to_string(repo_root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let text = substitute(&text, "scrape_interval: 15s", "scrape_interval: 1s", file);
    let text = substitute(&text, "evaluation_interval: 15s", "evaluation_interval: 1s", file);
    substitute(
        &text,
        "/etc/prometheus/rules/*.yml",
        &format!("{}/*.yml", rules_dir.display()),
        file,
    )
}

/// What every test copy of a shipped Alertmanager config (`file`, read from
/// the repository) changes: group_interval 1 s. group_wait is the shipped
/// 1 s itself (asserted here, so a change shows up in the tests).
pub fn fast_alertmanager_config(file: &str) -> String {
    let text = std::fs::read_to_string(repo_root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(
        text.matches("group_wait: 1s\n").count(),
        1,
        "{file}: group_wait: 1s, once"
    );
    substitute(&text, "group_interval: 1m", "group_interval: 1s", file)
}

/// `compose/prometheus.yml` for a test: 1 s scrape/evaluation, rules from
/// `rules_dir/*.yml`, the given hostmedic targets and Alertmanagers.
pub fn prometheus_config(targets: &[String], alertmanagers: &[String], rules_dir: &Path) -> String {
    let file = "compose/prometheus.yml";
    let text = fast_prometheus_config(file, rules_dir);
    let text = substitute(
        &text,
        "targets: [\"alertmanager:9093\"]",
        &format!("targets: {}", yaml_list(alertmanagers)),
        file,
    );
    substitute(
        &text,
        "targets: [\"hostmedic:9877\"]",
        &format!("targets: {}", yaml_list(targets)),
        file,
    )
}

/// The bearer-token block of `compose/alertmanager.yml`.
const AM_AUTH_BLOCK: &str = "        http_config:
          authorization:
            type: Bearer
            credentials_file: /etc/alertmanager/secrets/hostmedic-token
";

/// `compose/alertmanager.yml` for a test: group_interval 1 s, the
/// webhook at `webhook_url`, the bearer token read from `token_file` (no
/// authorization at all when `None`).
pub fn alertmanager_config(webhook_url: &str, token_file: Option<&Path>) -> String {
    let file = "compose/alertmanager.yml";
    let text = fast_alertmanager_config(file);
    let text = substitute(
        &text,
        "url: http://hostmedic:9877/api/v1/alerts",
        &format!("url: {webhook_url}"),
        file,
    );
    match token_file {
        Some(f) => substitute(
            &text,
            "credentials_file: /etc/alertmanager/secrets/hostmedic-token",
            &format!("credentials_file: {}", f.display()),
            file,
        ),
        None => substitute(&text, AM_AUTH_BLOCK, "", file),
    }
}

/// Names listed in docs/metrics.md, with the `a / b / c` shorthand expanded.
pub fn contract_metric_names() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(repo_root().join("docs/metrics.md")).unwrap();
    let re = regex::Regex::new(r"hostmedic_[a-z0-9_]+").unwrap();
    let mut names = BTreeSet::new();
    for line in doc.lines() {
        let full: Vec<String> = re.find_iter(line).map(|m| m.as_str().to_string()).collect();
        names.extend(full.iter().cloned());
        // "hostmedic_host_load1 / load5 / load15": the short forms replace a tail.
        if let Some(first) = full.first() {
            for short in line.split(" / ").skip(1) {
                let short: String = short
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if short.is_empty() || short.starts_with("hostmedic_") {
                    continue;
                }
                for (i, _) in first.match_indices('_') {
                    names.insert(format!("{}{}", &first[..=i], short));
                }
            }
        }
    }
    // Histograms expose _bucket/_sum/_count.
    for h in names.clone() {
        if h.ends_with("_seconds") {
            for s in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{h}{s}"));
            }
        }
    }
    names
}

/// hostmedic metric names referenced by a PromQL expression.
pub fn metrics_in(expr: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"hostmedic_[a-z0-9_]+").unwrap();
    re.find_iter(expr).map(|m| m.as_str().to_string()).collect()
}

/// A child process killed by PID on drop, with its output in a log file.
struct Daemon {
    child: Child,
    log: PathBuf,
    name: &'static str,
}

impl Daemon {
    fn spawn(name: &'static str, program: &str, args: &[String], dir: &Path) -> Daemon {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program} (Debian package needed): {e}"));
        Daemon { child, log, name }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_ready(&mut self, url: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = super::client();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("{} exited early ({st}); log:\n{}", self.name, self.log());
            }
            if let Ok(r) = client.get(url).send().await
                && r.status().is_success()
            {
                return;
            }
            if Instant::now() > deadline {
                panic!("{} not ready at {url} after 30 s; log:\n{}", self.name, self.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Kill exactly the child we started, by its PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What to run Prometheus with.
#[derive(Debug, Clone, Default)]
pub struct PrometheusOptions {
    /// hostmedic scrape targets (`host:port`).
    pub targets: Vec<String>,
    /// Alertmanagers (`host:port`); empty for none.
    pub alertmanagers: Vec<String>,
    /// Rule files to load (copied into the instance's rules directory).
    pub rule_files: Vec<PathBuf>,
}

/// A real Prometheus on 127.0.0.1 with 1 s scrape/evaluation interval and
/// `--rules.alert.resend-delay=1s`; stopped on drop.
pub struct Prometheus {
    daemon: Daemon,
    http: reqwest::Client,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub config_file: PathBuf,
}

impl Prometheus {
    pub async fn start(opts: PrometheusOptions) -> Prometheus {
        Prometheus::start_config(&opts.rule_files, |_, rules_dir| {
            prometheus_config(&opts.targets, &opts.alertmanagers, rules_dir)
        })
        .await
    }

    /// Starts Prometheus scraping `targets` and alerting `alertmanagers`
    /// with the shipped rules, every `for:` shortened to at most 1 s.
    pub async fn start_with_short_rules(targets: Vec<String>, alertmanagers: Vec<String>) -> Prometheus {
        // Prometheus::start copies the files into its own rules directory.
        let staging = tempfile::tempdir().unwrap();
        Prometheus::start(PrometheusOptions {
            targets,
            alertmanagers,
            rule_files: shortened_rules_copy(staging.path(), Duration::from_secs(1)),
        })
        .await
    }

    /// Starts Prometheus with the configuration `config(instance_dir,
    /// rules_dir)` returns; `rule_files` are copied into `rules_dir` first.
    pub async fn start_config(rule_files: &[PathBuf], config: impl FnOnce(&Path, &Path) -> String) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let rules_dir = dir.path().join("rules");
        std::fs::create_dir_all(&rules_dir).unwrap();
        for f in rule_files {
            std::fs::copy(f, rules_dir.join(f.file_name().unwrap())).unwrap();
        }
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config(dir.path(), &rules_dir)).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let args = vec![
            format!("--config.file={}", config_file.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address={addr}"),
            "--rules.alert.resend-delay=1s".to_string(),
            "--log.level=info".to_string(),
        ];
        let mut daemon = Daemon::spawn("prometheus", "prometheus", &args, dir.path());
        daemon.wait_ready(&format!("http://{addr}/-/ready")).await;
        Prometheus {
            daemon,
            http: super::client(),
            addr,
            dir,
            config_file,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn log(&self) -> String {
        self.daemon.log()
    }

    pub fn pid(&self) -> u32 {
        self.daemon.child.id()
    }

    async fn api(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect();
        let r = self
            .http
            .get(format!("{}?{}", self.url(path), query.join("&")))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        r.json().await.unwrap_or_else(|e| panic!("{path}: not JSON: {e}"))
    }

    /// Runs an instant query. `Ok(result vector/scalar)` when Prometheus
    /// answers `status: success`, else `Err(error text)`.
    pub async fn query(&self, expr: &str) -> Result<Value, String> {
        let v = self.api("/api/v1/query", &[("query", expr)]).await;
        if v["status"] == "success" {
            Ok(v["data"]["result"].clone())
        } else {
            Err(format!("{}: {}", v["errorType"], v["error"]))
        }
    }

    /// The first sample's value of an instant query, if any.
    pub async fn query_value(&self, expr: &str) -> Option<f64> {
        let r = self.query(expr).await.ok()?;
        let s = r.as_array()?.first()?["value"][1].as_str()?.to_string();
        s.parse().ok()
    }

    /// Active alerts (`/api/v1/alerts`): pending and firing.
    pub async fn alerts(&self) -> Vec<ActiveAlert> {
        let v = self.api("/api/v1/alerts", &[]).await;
        v["data"]["alerts"]
            .as_array()
            .map(|a| a.iter().map(ActiveAlert::from_json).collect())
            .unwrap_or_default()
    }

    /// Waits until an alert named `name` whose labels include `labels` is firing.
    pub async fn wait_firing(&self, name: &str, labels: &[(&str, &str)], timeout: Duration) -> ActiveAlert {
        super::eventually(timeout, &format!("alert {name} {labels:?} firing"), || async {
            self.alerts()
                .await
                .into_iter()
                .find(|a| a.state == "firing" && a.name() == name && a.has_labels(labels))
        })
        .await
    }

    /// Every loaded rule (`/api/v1/rules`), flattened over groups.
    pub async fn rules(&self) -> Vec<Value> {
        let v = self.api("/api/v1/rules", &[]).await;
        let mut out = Vec::new();
        for g in v["data"]["groups"].as_array().cloned().unwrap_or_default() {
            out.extend(g["rules"].as_array().cloned().unwrap_or_default());
        }
        out
    }

    /// Waits until every scrape target is up and has been scraped `n` times.
    pub async fn wait_scraped(&self, n: usize) {
        super::eventually(Duration::from_secs(60), "targets scraped", || async {
            let q = format!(
                "min(count_over_time(up{{job=\"hostmedic\"}}[1m])) >= {n} and min(up{{job=\"hostmedic\"}}) == 1"
            );
            self.query_value(&q).await.map(|_| ())
        })
        .await
    }
}

/// Percent-encodes a query-string value (RFC 3986 unreserved kept).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One alert as returned by `/api/v1/alerts`.
#[derive(Debug, Clone)]
pub struct ActiveAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub state: String,
    pub value: String,
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

impl ActiveAlert {
    fn from_json(v: &Value) -> ActiveAlert {
        ActiveAlert {
            labels: string_map(&v["labels"]),
            annotations: string_map(&v["annotations"]),
            state: v["state"].as_str().unwrap_or_default().to_string(),
            value: v["value"].as_str().unwrap_or_default().to_string(),
        }
    }

    pub fn name(&self) -> &str {
        self.labels.get("alertname").map(String::as_str).unwrap_or_default()
    }

    pub fn has_labels(&self, want: &[(&str, &str)]) -> bool {
        want.iter().all(|(k, v)| self.labels.get(*k).is_some_and(|x| x == v))
    }
}
