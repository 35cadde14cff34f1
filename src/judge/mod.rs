//! The one judge of a configuration: `hostmedic check-config`, the start of
//! `hostmedic serve` and every reload ask [`judge`] with the same inputs
//! (the configuration file, the web config file, `--web.listen-address`),
//! so what check-config accepts is what serve starts with, and what serve
//! refuses check-config refuses, with the same words.
//!
//! Every error is reported, not the first: all syntax errors; else the type
//! errors of each section and rule on its own ([`document`]); else every
//! semantic error ([`Config::validate`]) and every start-up check (the web
//! config and its users, authentication on a non-loopback address, the
//! directories of the journal, state and status files). Each names the
//! file, the line and, in a `[[remediation]]` rule, the rule. Warnings
//! (rules that can never run, a template reading a label the shipped alert
//! does not carry, see [`shipped`]) never refuse.

pub mod document;
pub mod shipped;

use std::net::SocketAddr;
use std::path::Path;

use crate::config::{Config, ConfigError};
use document::{Document, PartError};

/// What is judged: the same for check-config, serve and a reload.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inputs<'a> {
    /// `--config` (`None`: the embedded default).
    pub config: Option<&'a Path>,
    /// `--web.config.file`.
    pub web_config: Option<&'a Path>,
    /// `--web.listen-address`, over `web.listen_address`.
    pub listen_address: Option<SocketAddr>,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// check-config exits 1, serve does not start, a reload is refused.
    Error,
    /// Reported; nothing is refused.
    Warning,
}

/// One thing the judge found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    /// The file (`<embedded default>` for the compiled-in one).
    pub origin: String,
    pub line: Option<usize>,
    /// The `[[remediation]]` rule it is in, by name.
    pub rule: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        write!(f, "{level}: {}", self.origin)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(r) = &self.rule {
            write!(f, ": rule {r:?}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The judgement: the configuration to run with when nothing refuses it,
/// and every finding.
#[derive(Debug)]
pub struct Verdict {
    pub config: Option<Config>,
    pub findings: Vec<Finding>,
}

impl Verdict {
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.level == Level::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.level == Level::Warning)
    }

    /// Every finding, one a line.
    pub fn report(&self) -> String {
        self.findings.iter().map(|f| format!("{f}\n")).collect()
    }

    /// The configuration, or every error as one ([`ConfigError::Report`]).
    pub fn accepted(self) -> Result<Config, ConfigError> {
        let errors: Vec<String> = self.errors().map(ToString::to_string).collect();
        match self.config {
            Some(cfg) if errors.is_empty() => Ok(cfg),
            _ => Err(ConfigError::Report(errors.join("\n"))),
        }
    }
}

/// Judges `inputs` (see the module documentation).
pub fn judge(inputs: &Inputs<'_>) -> Verdict {
    let (origin, text) = match inputs.config {
        None => (
            "<embedded default>".to_string(),
            crate::config::DEFAULT_CONFIG.to_string(),
        ),
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => (p.display().to_string(), t),
            Err(e) => {
                let f = error(&p.display().to_string(), None, None, format!("cannot read it: {e}"));
                return Verdict {
                    config: None,
                    findings: vec![f],
                };
            }
        },
    };
    let mut j = Judging {
        origin,
        findings: Vec::new(),
    };
    let config = j.judge_text(&text, inputs);
    let config = config.filter(|_| !j.findings.iter().any(|f| f.level == Level::Error));
    Verdict {
        config,
        findings: j.findings,
    }
}

fn error(origin: &str, line: Option<usize>, rule: Option<String>, message: String) -> Finding {
    Finding {
        level: Level::Error,
        origin: origin.to_string(),
        line,
        rule,
        message,
    }
}

struct Judging {
    origin: String,
    findings: Vec<Finding>,
}

impl Judging {
    fn push(&mut self, level: Level, line: Option<usize>, rule: Option<String>, message: String) {
        let f = Finding {
            level,
            origin: self.origin.clone(),
            line,
            rule,
            message,
        };
        if !self.findings.contains(&f) {
            self.findings.push(f);
        }
    }

    /// Everything about the file's text; the configuration when it has one.
    fn judge_text(&mut self, text: &str, inputs: &Inputs<'_>) -> Option<Config> {
        let doc = match Document::parse(text) {
            Ok(d) => d,
            Err(errors) => {
                for e in errors {
                    let line = e.span.map(|s| line_of_text(text, s.start));
                    self.push(Level::Error, line, None, format!("not TOML: {}", e.message));
                }
                return None;
            }
        };
        let type_errors = doc.type_errors();
        if !type_errors.is_empty() {
            for e in type_errors {
                self.part_error(&doc, e);
            }
            return None;
        }
        let mut cfg = match doc.config() {
            Ok(c) => c,
            Err(e) => {
                self.part_error(&doc, e);
                return None;
            }
        };
        if let Some(addr) = inputs.listen_address {
            cfg.web.listen_address = addr;
        }
        if let Err(e) = cfg.validate() {
            self.config_errors(&doc, &cfg, e);
        }
        self.startup(&doc, &cfg, inputs.web_config);
        self.warnings(&doc, &cfg);
        Some(cfg)
    }

    fn part_error(&mut self, doc: &Document<'_>, e: PartError) {
        let line = e.span.as_ref().map(|s| doc.line_of(s.start));
        let rule = e.rule.and_then(|i| doc.rule(i).0);
        let hint = e.span.as_ref().and_then(|s| duration_hint(&e.message, doc.text_of(s)));
        let message = match hint {
            Some(h) => format!("{}; {h}", e.message),
            None => e.message,
        };
        self.push(Level::Error, line, rule, message);
    }

    /// Each semantic error at the line of its key, in its rule.
    fn config_errors(&mut self, doc: &Document<'_>, cfg: &Config, e: ConfigError) {
        for e in e.into_list() {
            let (line, rule) = match &e {
                ConfigError::Invalid { key, .. } => locate(doc, cfg, key),
                _ => (None, None),
            };
            self.push(Level::Error, line, rule, e.to_string());
        }
    }

    /// What `serve` needs beyond a valid file: a valid web config whose
    /// users `receiver.web_users` names, authentication when the receiver
    /// listens beyond loopback, and the directories its files go in.
    fn startup(&mut self, doc: &Document<'_>, cfg: &Config, web: Option<&Path>) {
        let users = match web.map(crate::web::check) {
            None => Some(Vec::new()),
            Some(Ok(w)) => Some(w.users.keys().cloned().collect()),
            Some(Err(e)) => {
                let origin = web.map(|p| p.display().to_string()).unwrap_or_default();
                self.findings
                    .push(error(&origin, None, None, format!("web config invalid: {e}")));
                None
            }
        };
        // Without a valid web config its users are unknown: no listen check.
        if let Some(users) = users
            && let Err(e) = crate::receiver::check_listen(&cfg.receiver, cfg.web.listen_address, &users)
        {
            self.config_errors(doc, cfg, e);
        }
        if !cfg.receiver.enabled {
            return;
        }
        let rc = &cfg.receiver;
        let mut missing: Vec<&Path> = Vec::new();
        for (key, path) in [
            ("receiver.journal_path", &rc.journal_path),
            ("receiver.state_path", &rc.state_path),
            ("receiver.status_path", &rc.status_path),
        ] {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if dir.is_dir() || missing.contains(&dir) {
                continue;
            }
            missing.push(dir);
            let e = ConfigError::invalid(
                key,
                format!(
                    "directory {} does not exist: create it, writable only by the user hostmedic runs as \
                     (hostmedic creates no directories; the package and the unit's StateDirectory= make /var/lib/hostmedic)",
                    dir.display()
                ),
            );
            self.config_errors(doc, cfg, e);
        }
    }

    /// Rules that can never run, and templates that read what the shipped
    /// alert does not carry.
    fn warnings(&mut self, doc: &Document<'_>, cfg: &Config) {
        if !cfg.receiver.enabled && !cfg.remediation.is_empty() {
            let line = doc.line_of_key("receiver.enabled").or(doc.rule(0).1);
            let n = cfg.remediation.len();
            self.push(
                Level::Warning,
                line,
                None,
                format!(
                    "{n} [[remediation]] rule(s) will never run: the receiver is off (set receiver.enabled = true)"
                ),
            );
        }
        for (i, rule) in cfg.remediation.iter().enumerate() {
            let Some(shipped) = shipped::shipped().get(&rule.alertname) else {
                continue;
            };
            let line = doc.rule(i).1;
            for (field, name) in rule_placeholders(rule) {
                if let Some(why) = not_carried(&rule.alertname, shipped, &name) {
                    self.push(Level::Warning, line, Some(rule.name.clone()), format!("{field}: {why}"));
                }
            }
        }
    }
}

/// Why the shipped alert `alertname` never carries `name` (`labels.unit`,
/// `annotations.x`); `None` when it does, or may.
fn not_carried(alertname: &str, shipped: &shipped::Shipped, name: &str) -> Option<String> {
    let list = |s: &std::collections::BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
    if let Some(label) = name.strip_prefix("labels.") {
        let known = shipped.labels.as_ref()?;
        return (!known.contains(label)).then(|| {
            format!(
                "`{{{{ {name} }}}}`: the shipped alert {alertname} carries no label {label:?} (it has: {}); the action will fail to render",
                list(known)
            )
        });
    }
    let annotation = name.strip_prefix("annotations.")?;
    (!shipped.annotations.contains(annotation)).then(|| {
        format!(
            "`{{{{ {name} }}}}`: the shipped alert {alertname} has no annotation {annotation:?} (it has: {})",
            list(&shipped.annotations)
        )
    })
}

/// Every `labels.X` / `annotations.X` the rule's actions read, with the
/// action key (`actions[0]`).
fn rule_placeholders(rule: &crate::receiver::config::RuleConfig) -> Vec<(String, String)> {
    fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
            serde_json::Value::Object(o) => o.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    for (list, actions) in [
        ("actions", &rule.actions),
        ("exhausted_actions", &rule.exhausted_actions),
    ] {
        for (j, a) in actions.iter().enumerate() {
            let mut texts = Vec::new();
            strings(&serde_json::to_value(a).unwrap_or_default(), &mut texts);
            for name in texts.iter().flat_map(|t| crate::actions::template::placeholders(t)) {
                let item = (format!("{list}[{j}]"), name);
                if !found.contains(&item) {
                    found.push(item);
                }
            }
        }
    }
    found
}

/// The line of `key` and the rule it is in (by name).
fn locate(doc: &Document<'_>, cfg: &Config, key: &str) -> (Option<usize>, Option<String>) {
    let rule = key
        .strip_prefix("remediation[")
        .and_then(|r| r.split_once(']'))
        .and_then(|(i, _)| i.parse::<usize>().ok());
    let name = rule.and_then(|i| cfg.remediation.get(i)).map(|r| r.name.clone());
    let line = doc.line_of_key(key).or_else(|| rule.and_then(|i| doc.rule(i).1));
    (line, name)
}

fn line_of_text(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// A duration written without a unit (`cooldown = "10"`, `= 10`): the
/// unit it probably meant.
fn duration_hint(message: &str, written: &str) -> Option<String> {
    let m = message.to_ascii_lowercase();
    if !(m.contains("time unit") || m.contains("duration") || m.contains("unit needed")) {
        return None;
    }
    let digits = written.trim().trim_matches(|c| c == '"' || c == '\'').trim();
    (!digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()))
        .then(|| format!("a duration needs a unit: did you mean \"{digits}s\"?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge_text(text: &str) -> Verdict {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.toml");
        std::fs::write(&p, text.replace("@DIR@", &dir.path().display().to_string())).unwrap();
        let mut v = judge(&Inputs {
            config: Some(&p),
            ..Inputs::default()
        });
        for f in &mut v.findings {
            f.origin = f.origin.replace(&p.display().to_string(), "h.toml");
        }
        v
    }

    fn lines(v: &Verdict) -> Vec<String> {
        v.findings.iter().map(ToString::to_string).collect()
    }

    const RECEIVER: &str = "[receiver]\nenabled = true\njournal_path = \"@DIR@/j\"\nstate_path = \"@DIR@/s\"\nstatus_path = \"@DIR@/st\"\n";

    #[test]
    fn every_semantic_error_names_file_line_and_rule() {
        let text = format!(
            "{RECEIVER}cooldown = \"1h\"\n\n[[remediation]]\nname = \"first\"\nalertname = \"A\"\nmatchers = ['unit=~\"ab(c\"']\nactions = [{{ type = \"exec\", argv = [\"/usr/bin/true\"] }}]\n\n[[remediation]]\nname = \"second\"\nalertname = \"B\"\nbackoff_factor = 2.0\nbackoff_max = \"10m\"\nescalate = [\"pager\"]\nactions = [{{ type = \"exec\", argv = [\"/usr/bin/true\"] }}]\n"
        );
        let v = judge_text(&text);
        let l = lines(&v);
        assert_eq!(v.errors().count(), 3, "{l:#?}");
        assert!(l[0].starts_with("error: h.toml:11: rule \"first\": config key `remediation[0].matchers[0]`: invalid regex \"ab(c\": unclosed group at character 3"), "{l:#?}");
        assert!(
            l.iter()
                .any(|f| f.starts_with("error: h.toml:19: rule \"second\": config key `remediation[1].escalate[0]`")),
            "{l:#?}"
        );
        // Checked against this [receiver]'s cooldown (1h), not the default.
        assert!(
            l.iter().any(|f| f
                .starts_with("error: h.toml:18: rule \"second\": config key `remediation[1].backoff_max`")
                && f.contains("below the rule's cooldown of 1h")),
            "{l:#?}"
        );
        assert!(v.accepted().is_err());
    }

    #[test]
    fn type_errors_of_every_part_and_a_unit_hint() {
        let v = judge_text(
            "[receiver]\ncooldown = \"10\"\n\n[web]\nlisten_adress = \"x\"\n\n[[remediation]]\nname = \"r\"\nalertname = \"A\"\nverify = \"yes\"\nactions = []\n",
        );
        let l = lines(&v);
        assert_eq!(l.len(), 3, "{l:#?}");
        assert!(
            l[0].starts_with("error: h.toml:2: ") && l[0].ends_with("did you mean \"10s\"?"),
            "{l:#?}"
        );
        assert!(
            l[1].starts_with("error: h.toml:5: ") && l[1].contains("listen_adress"),
            "{l:#?}"
        );
        assert!(l[2].starts_with("error: h.toml:10: rule \"r\": "), "{l:#?}");
    }

    #[test]
    fn missing_journal_directory_is_an_error_and_rules_without_receiver_a_warning() {
        let v = judge_text(
            "[receiver]\nenabled = true\njournal_path = \"@DIR@/nope/j.jsonl\"\nstate_path = \"@DIR@/s\"\nstatus_path = \"@DIR@/st\"\n",
        );
        let l = lines(&v);
        assert!(
            l.len() == 1
                && l[0].contains("h.toml:3: config key `receiver.journal_path`: directory")
                && l[0].contains("nope does not exist"),
            "{l:#?}"
        );
        let v = judge_text(
            "[[remediation]]\nname = \"r\"\nalertname = \"A\"\nactions = [{ type = \"exec\", argv = [\"/usr/bin/true\"] }]\n",
        );
        let l = lines(&v);
        assert!(v.errors().next().is_none() && l.len() == 1, "{l:#?}");
        assert!(
            l[0].starts_with("warning: h.toml:2: 1 [[remediation]] rule(s) will never run"),
            "{l:#?}"
        );
        assert!(v.accepted().is_ok());
    }

    #[test]
    fn a_label_the_shipped_alert_never_carries_is_a_warning() {
        let rule = |alert: &str, unit: &str| {
            format!(
                "{RECEIVER}[[remediation]]\nname = \"r\"\nalertname = \"{alert}\"\nactions = [{{ type = \"systemd\", op = \"restart\", unit = \"{unit}\" }}]\n"
            )
        };
        let v = judge_text(&rule("HostmedicWatchdog", "{{ labels.unit }}"));
        let l = lines(&v);
        assert!(v.errors().next().is_none(), "{l:#?}");
        assert!(l.len() == 1 && l[0].starts_with("warning: h.toml:7: rule \"r\": actions[0]: `{{ labels.unit }}`: the shipped alert HostmedicWatchdog carries no label \"unit\""), "{l:#?}");
        // Labels the expression keeps from its series cannot be listed: no warning.
        assert!(
            judge_text(&rule("HostmedicUnitFailed", "{{ labels.unit }}"))
                .findings
                .is_empty()
        );
        assert!(
            judge_text(&rule("HostmedicUnitFailed", "{{ labels.whatever }}"))
                .findings
                .is_empty()
        );
        // Annotations are always known.
        let v = judge_text(&rule("HostmedicUnitFailed", "{{ annotations.sumary }}.service"));
        assert!(
            lines(&v)[0].contains("has no annotation \"sumary\""),
            "{:#?}",
            lines(&v)
        );
    }

    #[test]
    fn embedded_default_is_accepted_without_findings() {
        let v = judge(&Inputs::default());
        assert!(v.findings.is_empty(), "{:#?}", lines(&v));
        assert!(v.accepted().is_ok());
    }
}
