//! A typed builder for test configurations, replacing TOML written as format
//! strings: `TestConfig::new().disable(&["host"]).receiver(dir, |r| …).rule(…)`,
//! rendered to a file the real binary reads or parsed in-process.
//!
//! It builds a `toml::Table` (the configuration's public form: its key names
//! are part of hostmedic's stable interface) rather than the library's config
//! structs, whose fields are free to change shape: a test written with it
//! keeps checking exactly the keys an operator writes. Paths are written as
//! given (`Path::display`), values keep their TOML types, and every key set
//! through a typed method is spelled once, here. `set` is the escape hatch
//! for a key no test has needed twice yet; a test whose point is the TOML text
//! itself (a parse error, an unknown key) keeps its literal.

use std::path::{Path, PathBuf};

use toml::{Table, Value};

/// A whole configuration file.
#[derive(Debug, Clone, Default)]
pub struct TestConfig {
    root: Table,
}

/// One `[section]` (or `[notify.<name>]`, `[fleet]`, …) being filled in.
#[derive(Debug, Clone, Default)]
pub struct Section(Table);

/// One `[[remediation]]` rule.
#[derive(Debug, Clone)]
pub struct Rule(Table);

/// One action of a rule (`actions`, `exhausted_actions`): an inline table.
#[derive(Debug, Clone)]
pub struct Action(Table);

fn path_value(p: impl AsRef<Path>) -> Value {
    Value::String(p.as_ref().display().to_string())
}

fn strings<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Value {
    Value::Array(
        items
            .into_iter()
            .map(|s| Value::String(s.as_ref().to_string()))
            .collect(),
    )
}

/// Appends `item` to the array of tables `key` of `table` (created empty).
fn push_table(table: &mut Table, key: &str, item: Table) {
    table
        .entry(key)
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .unwrap_or_else(|| panic!("`{key}` is not an array"))
        .push(Value::Table(item));
}

impl TestConfig {
    pub fn new() -> TestConfig {
        TestConfig::default()
    }

    /// Fills in `[name]` (created on first use, kept on later calls).
    pub fn section(mut self, name: &str, f: impl FnOnce(&mut Section)) -> TestConfig {
        let table = self
            .root
            .entry(name)
            .or_insert_with(|| Value::Table(Table::new()))
            .as_table_mut()
            .unwrap_or_else(|| panic!("`{name}` is not a table"));
        let mut s = Section(std::mem::take(table));
        f(&mut s);
        *table = s.0;
        self
    }

    /// `enabled = false` in each named collector section.
    pub fn disable(self, collectors: &[&str]) -> TestConfig {
        collectors.iter().fold(self, |c, name| {
            c.section(name, |s| {
                s.set("enabled", false);
            })
        })
    }

    /// `[global]`: the sysfs/procfs roots and limits.
    pub fn global(self, f: impl FnOnce(&mut Section)) -> TestConfig {
        self.section("global", f)
    }

    /// `[receiver]`, with `enabled = true` and the journal, state and status
    /// files `journal.jsonl`, `state.json`, `status.json` under `dir`; `f` adds
    /// or overrides keys.
    pub fn receiver(self, dir: &Path, f: impl FnOnce(&mut Section)) -> TestConfig {
        self.section("receiver", |r| {
            r.set("enabled", true)
                .path("journal_path", dir.join("journal.jsonl"))
                .path("state_path", dir.join("state.json"))
                .path("status_path", dir.join("status.json"));
            f(r);
        })
    }

    /// `[fleet]` with this host's identity and `single_host = true`.
    pub fn single_host(self, identity: &str) -> TestConfig {
        self.section("fleet", |f| {
            f.set("identity", identity).set("single_host", true);
        })
    }

    /// `[notify.<name>]`: a notification channel of `kind`, filled in by `f`.
    pub fn notify(mut self, name: &str, kind: &str, f: impl FnOnce(&mut Section)) -> TestConfig {
        let mut channel = Section::default();
        channel.set("kind", kind);
        f(&mut channel);
        self.root
            .entry("notify")
            .or_insert_with(|| Value::Table(Table::new()))
            .as_table_mut()
            .expect("`notify` is a table")
            .insert(name.into(), Value::Table(channel.0));
        self
    }

    /// `[notify.<name>]`: a webhook channel to `url` without retries.
    pub fn notify_webhook(self, name: &str, url: &str) -> TestConfig {
        self.notify(name, "webhook", |c| {
            c.set("url", url).set("retries", 0);
        })
    }

    /// Appends a `[[remediation]]` rule.
    pub fn rule(mut self, rule: Rule) -> TestConfig {
        push_table(&mut self.root, "remediation", rule.0);
        self
    }

    /// The configuration as TOML text.
    pub fn render(&self) -> String {
        toml::to_string(&self.root).expect("a TOML table renders")
    }

    /// The configuration as hostmedic reads it (the rendered text parsed by
    /// `Config::parse`); panics with the refusal and the text.
    pub fn parse(&self) -> hostmedic::config::Config {
        let text = self.render();
        hostmedic::config::Config::parse(&text, "test").unwrap_or_else(|e| panic!("{e:#}\n{text}"))
    }

    /// Writes the TOML to `path` and returns it.
    pub fn write(&self, path: impl Into<PathBuf>) -> PathBuf {
        let path = path.into();
        std::fs::write(&path, self.render()).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }
}

impl Section {
    /// Sets `key` to any TOML value (string, integer, bool, array …).
    pub fn set(&mut self, key: &str, value: impl Into<Value>) -> &mut Section {
        self.0.insert(key.into(), value.into());
        self
    }

    /// Sets `key` to a path.
    pub fn path(&mut self, key: &str, p: impl AsRef<Path>) -> &mut Section {
        self.set(key, path_value(p))
    }

    /// Sets `key` to an array of strings.
    pub fn strings<S: AsRef<str>>(&mut self, key: &str, items: impl IntoIterator<Item = S>) -> &mut Section {
        self.set(key, strings(items))
    }

    /// Sets `key` to an array of paths.
    pub fn paths<P: AsRef<Path>>(&mut self, key: &str, items: impl IntoIterator<Item = P>) -> &mut Section {
        self.set(key, Value::Array(items.into_iter().map(path_value).collect()))
    }

    /// Sets `key` to a table of strings (e.g. a logfile watch's `patterns`).
    pub fn pairs(&mut self, key: &str, pairs: &[(&str, &str)]) -> &mut Section {
        let t: Table = pairs.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect();
        self.set(key, t)
    }

    /// Fills in the sub-table `[<section>.key]` (e.g. `[receiver.evidence]`).
    pub fn table(&mut self, key: &str, f: impl FnOnce(&mut Section)) -> &mut Section {
        let mut item = match self.0.remove(key) {
            Some(Value::Table(t)) => Section(t),
            _ => Section::default(),
        };
        f(&mut item);
        self.set(key, item.0)
    }

    /// Appends a `[[key]]` table (a watch, a probe …) filled in by `f`.
    pub fn push(&mut self, key: &str, f: impl FnOnce(&mut Section)) -> &mut Section {
        let mut item = Section::default();
        f(&mut item);
        push_table(&mut self.0, key, item.0);
        self
    }
}

impl Rule {
    /// A rule `name` for alerts named `alertname`.
    pub fn new(name: &str, alertname: &str) -> Rule {
        let mut t = Table::new();
        t.insert("name".into(), name.into());
        t.insert("alertname".into(), alertname.into());
        Rule(t)
    }

    /// Sets any key of the rule (`budget_attempts`, `mode`, `cooldown` …).
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Rule {
        self.0.insert(key.into(), value.into());
        self
    }

    /// Sets `key` to an array of strings (`matchers`, `escalate`, `notify`).
    pub fn strings<S: AsRef<str>>(self, key: &str, items: impl IntoIterator<Item = S>) -> Rule {
        self.set(key, strings(items))
    }

    /// Appends to `actions`.
    pub fn action(self, a: Action) -> Rule {
        self.push_action("actions", a)
    }

    /// Appends to `exhausted_actions`.
    pub fn exhausted_action(self, a: Action) -> Rule {
        self.push_action("exhausted_actions", a)
    }

    fn push_action(mut self, key: &str, a: Action) -> Rule {
        push_table(&mut self.0, key, a.0);
        self
    }
}

impl Action {
    /// An action of `type = kind`; add its keys with [`Action::set`].
    pub fn new(kind: &str) -> Action {
        let mut t = Table::new();
        t.insert("type".into(), kind.into());
        Action(t)
    }

    /// `{ type = "exec", argv = [...] }`.
    pub fn exec<S: AsRef<str>>(argv: impl IntoIterator<Item = S>) -> Action {
        Action::new("exec").set("argv", strings(argv))
    }

    /// `{ type = "systemd", op = op, unit = unit }` (`unit` may be a template
    /// such as `{{ labels.name }}`).
    pub fn systemd(op: &str, unit: &str) -> Action {
        Action::new("systemd").set("op", op).set("unit", unit)
    }

    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Action {
        self.0.insert(key.into(), value.into());
        self
    }

    /// The action as hostmedic reads one of a rule's `actions` (its
    /// `ActionSpec`, deserialized from the table); panics with the refusal.
    pub fn spec(&self) -> hostmedic::actions::ActionSpec {
        Value::Table(self.0.clone())
            .try_into()
            .unwrap_or_else(|e| panic!("{e}: {}", self.0))
    }
}
