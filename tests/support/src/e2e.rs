//! End-to-end wiring for the S1–S12 scenario tests: the notification sink,
//! the real hostmedic binary (receiver on, bearer auth, remediation config
//! written by the test), real Alertmanager delivering to it, real Prometheus
//! scraping it and evaluating a test copy of the SHIPPED rules, plus the
//! journal reader and the fault-to-remediation stopwatch.
//!
//! Start-up order (each part needs the address of the one before): sink →
//! hostmedic → Alertmanager → Prometheus. The parts themselves are the
//! shared harnesses (`sink.rs`, `alertmanager.rs`); every child is stopped by
//! PID on drop.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hostmedic::receiver::journal::{self, Entry, Event, VerifyResult};

use super::alertmanager::{Alertmanager, WebhookTarget};
use super::config::TestConfig;
use super::prometheus::{MACHINE_BOUND_ALERTS, Prometheus, PrometheusOptions, shortened_rules_copy_keeping};
use super::sink::Sink;
use super::{Binary, client};

/// How often the waits below look again: a tenth of a second is below what
/// the scenarios measure and costs little (a journal read, a local query).
const POLL: Duration = Duration::from_millis(100);

/// The bearer token every e2e Alertmanager sends and every e2e hostmedic expects.
pub const TOKEN: &str = "e2e-secret-token-7f3a9c";
/// The Telegram bot token the sink sees in its request path; must never
/// appear in the journal, the status file or the log.
pub const BOT_TOKEN: &str = "123456:e2e-bot-secret-Zq9";

/// The shared test copy of the shipped rules (`for:` shortened to at most
/// `max_for`, see `prometheus::shortened_rules_copy`) with each `(from, to)`
/// text replacement of `edits` applied. A scenario that must change a
/// threshold says so where it calls this; each edit must match exactly once.
/// The [`MACHINE_BOUND_ALERTS`] keep their shipped `for:` unless `watch_machine`.
pub fn rules_test_copy(dst: &Path, max_for: Duration, edits: &[(&str, &str)]) -> Vec<PathBuf> {
    rules_test_copy_watching(dst, max_for, false, edits)
}

/// [`rules_test_copy`], with the machine-bound alerts' `for:` clamped too when
/// `watch_machine` (a scenario about this machine's own pressure).
pub fn rules_test_copy_watching(
    dst: &Path,
    max_for: Duration,
    watch_machine: bool,
    edits: &[(&str, &str)],
) -> Vec<PathBuf> {
    let keep = if watch_machine { &[][..] } else { MACHINE_BOUND_ALERTS };
    let files = shortened_rules_copy_keeping(dst, max_for, keep);
    let mut applied = vec![0usize; edits.len()];
    for f in &files {
        let mut text = std::fs::read_to_string(f).unwrap();
        for (i, (from, to)) in edits.iter().enumerate() {
            applied[i] += text.matches(from).count();
            text = text.replace(from, to);
        }
        std::fs::write(f, text).unwrap();
    }
    for (i, (from, _)) in edits.iter().enumerate() {
        assert_eq!(applied[i], 1, "rule edit {from:?} must match exactly once");
    }
    files
}

/// One scenario's stack. Fields drop in declaration order: Prometheus and
/// Alertmanager stop before hostmedic, the scratch folder goes last.
pub struct Stack {
    pub prometheus: Option<Prometheus>,
    pub alertmanager: Option<Alertmanager>,
    pub hostmedic: Option<Binary>,
    pub sink: Sink,
    pub dir: tempfile::TempDir,
    pub scenario: &'static str,
    /// The machine-bound alerts (this machine's own pressure) get their
    /// `for:` clamped like the others: only for a scenario about them.
    pub watch_machine: bool,
}

impl Stack {
    /// A scratch folder with the token files, and the sink.
    pub async fn new(scenario: &'static str) -> Stack {
        let dir = tempfile::Builder::new()
            .prefix(&format!("hostmedic-e2e-{scenario}-"))
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
        std::fs::write(dir.path().join("bot-token"), format!("{BOT_TOKEN}\n")).unwrap();
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        Stack {
            prometheus: None,
            alertmanager: None,
            hostmedic: None,
            sink: Sink::start().await,
            dir,
            scenario,
            watch_machine: false,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn journal_path(&self) -> PathBuf {
        self.path("state/journal.jsonl")
    }

    pub fn status_path(&self) -> PathBuf {
        self.path("state/status.json")
    }

    /// `[receiver]` with bearer auth and the state files in the scratch
    /// folder, plus three notification channels on the sink: `ntfy`
    /// (`/ntfy`), `telegram` (`/tg/bot<token>/sendMessage`) and `webhook`
    /// (`/hook`). Add sections and rules to the returned builder.
    pub fn receiver(&self) -> TestConfig {
        let d = self.dir.path();
        TestConfig::new()
            .receiver(&d.join("state"), |r| {
                r.path("bearer_token_file", d.join("token"));
            })
            .notify("ntfy", "ntfy", |c| {
                c.set("server", self.sink.url("/ntfy"))
                    .set("topic", "hostmedic-e2e")
                    .set("priority", 4)
                    .strings("tags", ["rotating_light"])
                    .set("retries", 1);
            })
            .notify("telegram", "telegram", |c| {
                c.set("api_base", self.sink.url("/tg"))
                    .path("bot_token_file", d.join("bot-token"))
                    .set("chat_id", -100200300)
                    .set("retries", 1);
            })
            .notify("webhook", "webhook", |c| {
                c.set("url", self.sink.url("/hook")).set("retries", 1);
            })
    }

    /// The SHIPPED remediation map (`config/remediation.example.toml`, from
    /// its marker on: `[receiver]`, `[notify.ops]` and every rule) with only
    /// the token file, the state paths and the ntfy server pointed at this
    /// stack (the sink's `/ntfy`), then each `(from, to)` of `edits` applied
    /// (each must match exactly once; a test that shortens a cooldown says
    /// so where it calls this).
    pub fn shipped_map(&self, edits: &[(&str, &str)]) -> String {
        let text = std::fs::read_to_string(super::prometheus::repo_root().join("config/remediation.example.toml"))
            .expect("config/remediation.example.toml");
        let marker = "# --- remediation map (shared with compose/hostmedic.toml) ---";
        let start = text.find(marker).expect("remediation map marker");
        let d = self.dir.path().display();
        let mut map = text[start..].to_string();
        let ntfy = self.sink.url("/ntfy");
        let tok = format!("bearer_token_file = \"{d}/token\"");
        let journal = format!("journal_path = \"{d}/state/journal.jsonl\"");
        let state = format!("state_path = \"{d}/state/state.json\"");
        let status = format!("status_path = \"{d}/state/status.json\"");
        let server = format!("server = \"{ntfy}\"");
        let fixed: [(&str, &str); 5] = [
            ("bearer_token_file = \"/etc/hostmedic/secrets/hostmedic-token\"", &tok),
            ("journal_path = \"/var/lib/hostmedic/journal.jsonl\"", &journal),
            ("state_path = \"/var/lib/hostmedic/state.json\"", &state),
            ("status_path = \"/var/lib/hostmedic/status.json\"", &status),
            ("server = \"https://ntfy.sh\"", &server),
        ];
        for (from, to) in fixed.iter().chain(edits.iter()) {
            let n = map.matches(from).count();
            assert_eq!(n, 1, "remediation map edit {from:?} must match exactly once, found {n}");
            map = map.replace(from, to);
        }
        map
    }

    /// ntfy notifications (title, message) received so far.
    pub fn ntfy_messages(&self) -> Vec<(String, String)> {
        self.sink
            .all()
            .into_iter()
            .filter(|r| r.path.starts_with("/ntfy"))
            .filter_map(|r| {
                let v: serde_json::Value = serde_json::from_str(&r.body).ok()?;
                Some((
                    v["title"].as_str().unwrap_or_default().to_string(),
                    v["message"].as_str().unwrap_or_default().to_string(),
                ))
            })
            .collect()
    }

    /// Writes `config` to `<dir>/hostmedic.toml` and starts the binary on
    /// 127.0.0.1:0 (or on `addr`, to come back on the same port after a crash).
    pub fn start_hostmedic(&mut self, config: &str) {
        let p = self.path("hostmedic.toml");
        std::fs::write(&p, config).unwrap();
        self.hostmedic = Some(Binary::start(&p, self.dir.path()));
    }

    /// Restarts hostmedic on the address it had (after a kill -9), same config.
    pub fn restart_hostmedic_same_port(&mut self) {
        let addr = self.hostmedic().addr.to_string();
        if let Some(mut old) = self.hostmedic.take() {
            let _ = old.child.kill();
            let _ = old.child.wait();
        }
        let p = self.path("hostmedic.toml");
        self.hostmedic = Some(Binary::start_with(
            &p,
            self.dir.path(),
            &["--web.listen-address", &addr],
        ));
    }

    pub fn hostmedic(&self) -> &Binary {
        self.hostmedic.as_ref().expect("hostmedic started")
    }

    /// Starts Alertmanager (webhook to hostmedic with the bearer token) and
    /// Prometheus (scraping hostmedic every second, evaluating the test copy
    /// of the shipped rules with `for:` clamped to `max_for` and `edits`).
    /// `max_for` is `Duration::ZERO` where nothing before the fault can make
    /// a rule true: every second of a `for:` is then only delay.
    pub async fn start_monitoring(&mut self, max_for: Duration, edits: &[(&str, &str)]) {
        let hm = self.hostmedic().addr;
        let am = Alertmanager::start(
            self.dir.path(),
            "alertmanager",
            &WebhookTarget {
                url: format!("http://{hm}/api/v1/alerts"),
                bearer: Some(TOKEN.to_string()),
            },
            None,
        );
        let rules = rules_test_copy_watching(&self.path("rules"), max_for, self.watch_machine, edits);
        let prom = Prometheus::start(PrometheusOptions {
            targets: vec![hm.to_string()],
            alertmanagers: vec![am.addr()],
            rule_files: rules,
        })
        .await;
        self.alertmanager = Some(am);
        self.prometheus = Some(prom);
    }

    /// The journal as hostmedic wrote it (a torn last line is skipped).
    pub fn journal(&self) -> Vec<Entry> {
        journal::read_from(&self.journal_path(), 0)
            .map(|(e, _)| e)
            .unwrap_or_default()
    }

    /// The first `Verify` entry for `rule` whose target contains `target`,
    /// with result `verified`.
    pub fn verified(&self, rule: &str, target: &str) -> Option<Entry> {
        self.journal().into_iter().find(|e| {
            matches!(&e.event, Event::Verify { rule: r, target: t, result, .. }
                if r == rule && t.contains(target) && *result == VerifyResult::Verified)
        })
    }

    /// `Action` entries of `rule` as (action, target, result, detail).
    pub fn actions(&self, rule: &str) -> Vec<(String, String, String, String)> {
        self.journal()
            .into_iter()
            .filter_map(|e| match e.event {
                Event::Action {
                    rule: r,
                    action,
                    target,
                    result,
                    detail,
                    ..
                } if r == rule => Some((action, target, result.as_str().to_string(), detail)),
                _ => None,
            })
            .collect()
    }

    /// The evidence journaled so far about `subject` (a target key such as
    /// `docker:web`), as (stage, item), oldest first.
    pub fn evidence(&self, subject: &str) -> Vec<(hostmedic::evidence::Stage, hostmedic::evidence::Item)> {
        self.journal()
            .into_iter()
            .filter_map(|e| match e.event {
                Event::Evidence { stage, items, .. } => Some((stage, items)),
                _ => None,
            })
            .flat_map(|(stage, items)| items.into_iter().map(move |i| (stage, i)))
            .filter(|(_, i)| i.subject == subject)
            .collect()
    }

    /// [`Stack::actions`] once `rule` has at least `n` of them: an action
    /// is journaled when it returns, a moment after its effect (a
    /// notification at the sink) can be seen.
    pub async fn actions_journaled(&self, rule: &str, n: usize) -> Vec<(String, String, String, String)> {
        self.wait_for(
            Duration::from_secs(10),
            &format!("{n} actions of {rule} journaled"),
            |st| Some(st.actions(rule)).filter(|a| a.len() >= n),
        )
        .await
    }

    /// Value of an instant PromQL query (first sample), if any.
    pub async fn query(&self, q: &str) -> Option<f64> {
        self.prometheus.as_ref()?.query_value(q).await
    }

    /// Everything useful when a scenario times out.
    pub async fn diagnostics(&self) -> String {
        let get = |url: String| async move {
            match client().get(url).send().await {
                Ok(r) => r.text().await.unwrap_or_default(),
                Err(e) => e.to_string(),
            }
        };
        let mut s = String::new();
        if let Some(p) = &self.prometheus {
            s += &format!("--- prometheus alerts:\n{}\n", get(p.url("/api/v1/alerts")).await);
            s += &format!("--- prometheus log tail:\n{}\n", tail(&p.log(), 10));
        }
        if let Some(am) = &self.alertmanager {
            s += &format!(
                "--- alertmanager alerts:\n{}\n",
                get(format!("{}/api/v2/alerts", am.url())).await
            );
            s += &format!("--- alertmanager log tail:\n{}\n", tail(&am.log(), 15));
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

    /// Polls `f` every 100 ms until Some, or panics after `timeout` with diagnostics.
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
            tokio::time::sleep(POLL).await;
        }
    }

    /// Like [`Stack::wait_for`] for an async PromQL condition.
    pub async fn wait_query(&self, timeout: Duration, q: &str, ok: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.query(q).await
                && ok(v)
            {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "[{}] timed out after {timeout:?} waiting for `{q}` (last {:?})\n{}",
                    self.scenario,
                    self.query(q).await,
                    self.diagnostics().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Asserts no secret leaked into the journal, the status file or the log.
    pub fn assert_no_secrets(&self) {
        let journal = std::fs::read_to_string(self.journal_path()).unwrap_or_default();
        let status = std::fs::read_to_string(self.status_path()).unwrap_or_default();
        let log = self.hostmedic.as_ref().map(|h| h.log()).unwrap_or_default();
        for (what, text) in [("journal", &journal), ("status", &status), ("log", &log)] {
            for secret in [TOKEN, BOT_TOKEN] {
                assert!(
                    !text.contains(secret),
                    "[{}] secret leaked into the {what}",
                    self.scenario
                );
            }
        }
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Measures fault-to-remediation time and reports it in the line format
/// `benches/e2e.sh` collects: `e2e S1 fault_to_remediation_seconds=7.3`,
/// followed by where those seconds went (`e2e S1 stages …`, see
/// [`Stopwatch::remediated`]).
pub struct Stopwatch {
    scenario: &'static str,
    start: Instant,
    /// The same instant as Unix seconds, to compare with the journal's.
    wall: f64,
}

impl Stopwatch {
    /// Call right after injecting the fault.
    pub fn fault_injected(scenario: &'static str) -> Stopwatch {
        Stopwatch {
            scenario,
            start: Instant::now(),
            wall: hostmedic::time::now(),
        }
    }

    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Call once the remediation is verified: prints the timing line and
    /// the stage line (and appends both to `$HOSTMEDIC_E2E_TIMINGS` when
    /// set). The stages come from `st`'s journal
    /// (`hostmedic::receiver::timeline::from_journal`), for the remediation
    /// the scenario waited for: the latest run that ended verified, else
    /// the latest run that ended ok. `fault_to_alert` is the fault to the
    /// alert's `startsAt` (scrape, evaluation, the rule's `for:`),
    /// `observed` the remediation's end to this call (the test's polling and
    /// whatever else it waited for; slightly negative for a notification,
    /// which the sink sees before the action returns and is journaled: the
    /// journal is then read again for up to 5 s, until that run is in it).
    pub async fn remediated(&self, st: &Stack) -> f64 {
        let secs = self.elapsed();
        let now = hostmedic::time::now();
        let mut lines = vec![format!("e2e {} fault_to_remediation_seconds={secs:.1}", self.scenario)];
        let deadline = Instant::now() + Duration::from_secs(5);
        let stages = loop {
            let found = self.stages(&st.journal(), now);
            if found.is_some() || Instant::now() > deadline {
                break found;
            }
            tokio::time::sleep(POLL).await;
        };
        if let Some(stages) = stages {
            lines.push(format!("e2e {} stages {stages}", self.scenario));
        }
        for line in &lines {
            println!("{line}");
        }
        if let Ok(p) = std::env::var("HOSTMEDIC_E2E_TIMINGS") {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(p) {
                for line in &lines {
                    let _ = writeln!(f, "{line}");
                }
            }
        }
        secs
    }

    /// `name=seconds` for each known stage of the remediation (see
    /// [`Stopwatch::remediated`]) that ended after the fault, by `now` (a
    /// notification's run up to a second later).
    fn stages(&self, journal: &[Entry], now: f64) -> Option<String> {
        use hostmedic::receiver::timeline::{Stage, from_journal};
        let runs = from_journal(journal);
        let ended = |t: &&hostmedic::receiver::timeline::Timeline| {
            t.verify_end
                .or(t.action_end)
                .filter(|e| t.succeeded && *e >= self.wall && *e <= now + 1.0)
        };
        let pick = |verified: bool| {
            runs.values()
                .filter(|t| !verified || t.verify_end.is_some())
                .filter_map(|t| Some((ended(&t)?, t)))
                .max_by(|a, b| a.0.total_cmp(&b.0))
        };
        let (end, t) = pick(true).or_else(|| pick(false))?;
        let mut out = Vec::new();
        if let Some(s) = t.starts_at {
            out.push(format!("fault_to_alert={:.2}", s - self.wall));
        }
        for (stage, d) in t.stages() {
            if stage != Stage::Total {
                out.push(format!("{}={d:.2}", stage.as_str()));
            }
        }
        out.push(format!("observed={:.2}", now - end));
        Some(out.join(" "))
    }
}
