//! `type = "journal-vacuum"`: frees the disk space journald's archived
//! files take, and proves it. Runs `journalctl --vacuum-size=…
//! --vacuum-time=… [--directory=…]` as an argv through [`crate::command`]
//! (no shell, own process group, a timeout that kills the group, bounded
//! output) and measures, before and after, the journal's disk use
//! (allocated blocks, as `du`) and the free bytes of the filesystem it is
//! on ([`crate::journal_files`]), so the outcome says what went: `freed
//! 6MiB (journal 8MiB → 2MiB; filesystem free 1.2GiB → 1.2GiB)`.
//! Verification measures again: the journal smaller than before the run, or
//! within the limits.
//!
//! journalctl removes archived files only, oldest first; an active file
//! (`system.journal`) stays whatever its size, and verification says so
//! when the active files alone are over `max_size`. journalctl has no dry
//! run: a dry run measures and reports what would run, and runs nothing.
//! The directory is fixed in the config, never taken from an alert: which
//! files may be deleted is the operator's choice.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::exec::{EXEC_PATH, check_program};
use super::{Action, ActionEnv, ActionError, Alert, ConfigError, Context, Outcome, OutcomeResult, Subject, Verification};
use crate::bytes::ByteSize;
use crate::command::{self, Captured, Ended};
use crate::journal_files::{self, Usage};

/// `type = "journal-vacuum"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalVacuumAction {
    /// `--vacuum-size`: archived files go, oldest first, until those left
    /// take at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<ByteSize>,
    /// `--vacuum-time`: archived files whose entries are all older go.
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub max_age: Option<Duration>,
    /// `--directory`; `None`: journald's own directories (no
    /// `--directory`), [`journal_files::DEFAULT_DIRS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_dir: Option<PathBuf>,
    /// The program: an absolute path, or a name looked up in
    /// [`EXEC_PATH`].
    #[serde(default = "default_journalctl")]
    pub journalctl: String,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_journalctl() -> String {
    "journalctl".to_string()
}

fn default_timeout() -> Duration {
    Duration::from_secs(60)
}

/// The longest one measure of the journal walks (its figures are then
/// lower bounds and say so).
const MEASURE_WITHIN: Duration = Duration::from_secs(20);

/// Most bytes of journalctl's stdout and of its stderr kept.
const OUTPUT_MAX: usize = 64 * 1024;

/// A vacuum's journal: key `journal-vacuum` (journald's own directories)
/// or `journal-vacuum:<journal_dir>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub journal_dir: Option<PathBuf>,
    /// What the run measured before vacuuming.
    pub before: Before,
}

impl Target {
    /// The directories measured: `journal_dir`, or journald's own.
    pub fn dirs(&self) -> Vec<PathBuf> {
        match &self.journal_dir {
            Some(d) => vec![d.clone()],
            None => journal_files::DEFAULT_DIRS.map(PathBuf::from).to_vec(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.journal_dir {
            Some(d) => write!(f, "journal-vacuum:{}", d.display()),
            None => f.write_str("journal-vacuum"),
        }
    }
}

/// The journal as the run found it before vacuuming, shared by the clones
/// of one resolved action: verification compares with it.
#[derive(Debug, Clone, Default)]
pub struct Before(Arc<OnceLock<Usage>>);

/// Two resolved vacuums are the same action whatever their runs measured.
impl PartialEq for Before {
    fn eq(&self, _: &Before) -> bool {
        true
    }
}

/// Why a vacuum could not start or its journal not be measured.
#[derive(Debug, thiserror::Error)]
pub enum VacuumError {
    /// A bare program name is in none of [`EXEC_PATH`]'s directories.
    #[error("{name} not found in {EXEC_PATH} (install systemd's journalctl or set `journalctl` to its path)")]
    NotFound { name: String },
    /// The program named is not one to run.
    #[error("{0}")]
    Unusable(String),
    /// None of the journal directories exists.
    #[error("no journal directory: {0} does not exist")]
    NoJournal(String),
    /// The blocking task measuring the journal did not complete.
    #[error("measuring the journal: {0}")]
    Task(#[source] tokio::task::JoinError),
}

/// `journalctl` as configured: a path as given, a bare name looked up in
/// [`EXEC_PATH`] (the `PATH` the command gets).
fn locate(program: &str) -> Result<PathBuf, VacuumError> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        if !p.is_absolute() {
            return Err(VacuumError::Unusable(format!("{program:?} must be an absolute path or a bare name")));
        }
        return check_program(&p).map(|()| p).map_err(VacuumError::Unusable);
    }
    std::env::split_paths(EXEC_PATH)
        .map(|d| d.join(program))
        .find(|p| check_program(p).is_ok())
        .ok_or_else(|| VacuumError::NotFound {
            name: program.to_string(),
        })
}

/// Measures `dirs` off the runtime.
async fn measure(dirs: Vec<PathBuf>) -> Result<Usage, VacuumError> {
    let deadline = Instant::now() + MEASURE_WITHIN;
    let shown = dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ");
    tokio::task::spawn_blocking(move || journal_files::measure(&dirs, deadline))
        .await
        .map_err(VacuumError::Task)?
        .ok_or(VacuumError::NoJournal(shown))
}

/// `7d`, `12h`, `90m`, `45s`: the largest unit that divides it.
fn short(d: Duration) -> String {
    let s = d.as_secs();
    for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if s >= n && s.is_multiple_of(n) {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
}

/// The journal and its filesystem as one line: `journal 8MiB in 9 files,
/// … ; filesystem free 1.2GiB`.
fn state_line(u: &Usage) -> String {
    format!("journal {}; filesystem free {}", u.summary(), u.free_human())
}

/// What journalctl said, shortly: how many files it deleted and its
/// `Vacuuming done, freed …` lines.
fn journalctl_said(stdout: &Captured, stderr: &Captured) -> String {
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&stdout.kept),
        String::from_utf8_lossy(&stderr.kept)
    );
    let deleted = text.lines().filter(|l| l.starts_with("Deleted ")).count();
    let mut said = format!("journalctl deleted {}", journal_files::files(deleted, "archived file"));
    for l in text.lines().filter(|l| l.starts_with("Vacuuming done")) {
        said.push_str("; ");
        said.push_str(l.trim().trim_end_matches('.'));
    }
    said
}

/// What was freed, in words and in bytes (the second line, for checks).
fn freed_line(before: &Usage, after: &Usage) -> String {
    let freed = before.bytes.saturating_sub(after.bytes);
    let h = |b: u64| ByteSize(b).human();
    let free = |u: &Usage| u.free.map_or_else(|e| format!("unknown ({e})"), |b| b.to_string());
    format!(
        "freed {} (journal {} → {}; filesystem free {} → {})\nbytes: journal {} → {}, filesystem free {} → {}",
        h(freed),
        h(before.bytes),
        h(after.bytes),
        before.free_human(),
        after.free_human(),
        before.bytes,
        after.bytes,
        free(before),
        free(after),
    )
}

impl JournalVacuumAction {
    /// journalctl's arguments after the program.
    fn args(&self, t: &Target) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(size) = self.max_size {
            args.push(format!("--vacuum-size={}", size.bytes()));
        }
        if let Some(age) = self.max_age {
            args.push(format!("--vacuum-time={}s", age.as_secs()));
        }
        if let Some(d) = &t.journal_dir {
            args.push(format!("--directory={}", d.display()));
        }
        args
    }

    /// Why `u` is over the limits (empty: within them) at `now` (Unix
    /// seconds).
    fn over_limits(&self, u: &Usage, now: f64) -> Vec<String> {
        let mut over = Vec::new();
        if let Some(max) = self.max_size
            && u.bytes > max.bytes()
        {
            let mut why = format!("{} over max_size {}", ByteSize(u.bytes).human(), max.human());
            let active = u.bytes - u.archived_bytes;
            if active > max.bytes() {
                why.push_str(&format!(
                    " (its active files alone hold {}, and journalctl removes archived files only)",
                    ByteSize(active).human()
                ));
            }
            over.push(why);
        }
        if let (Some(max), Some(oldest)) = (self.max_age, u.oldest_archived)
            && now - oldest > max.as_secs_f64()
        {
            over.push(format!(
                "an archived file last written {} ago, over max_age {}",
                humantime::format_duration(Duration::from_secs((now - oldest) as u64)),
                short(max)
            ));
        }
        over
    }

    /// The outcome of a journalctl that ran, with the journal measured
    /// before and after.
    fn ended(&self, what: &str, out: command::Output, before: &Usage, after: Result<Usage, VacuumError>) -> (OutcomeResult, String) {
        let said = journalctl_said(&out.stdout, &out.stderr);
        let stderr = String::from_utf8_lossy(&out.stderr.kept).trim_end().to_string();
        match out.ended {
            Ended::Exited(st) if st.success() => match after {
                Ok(after) => (OutcomeResult::Ok, format!("{what}: {}\n{said}", freed_line(before, &after))),
                Err(e) => (
                    OutcomeResult::Ok,
                    format!("{what}: {said}; the journal could not be measured after: {e} (before: {})", state_line(before)),
                ),
            },
            Ended::Exited(st) => (
                OutcomeResult::Failed,
                format!("{what}: {} (before: {})\n{stderr}", command::describe_status(&st), state_line(before)),
            ),
            Ended::TimedOut | Ended::Cancelled => (
                OutcomeResult::Failed,
                format!(
                    "{what}: timed out after {}, process group killed (before: {})\n{stderr}",
                    humantime::format_duration(self.timeout),
                    state_line(before)
                ),
            ),
            Ended::WaitFailed(e) => (OutcomeResult::Failed, format!("{what}: waiting failed: {e}")),
        }
    }
}

impl Action for JournalVacuumAction {
    const TYPE: &'static str = "journal-vacuum";
    type Target = Target;

    fn suggested_timeout(&self) -> Duration {
        self.timeout + 2 * MEASURE_WITHIN + Duration::from_secs(5)
    }

    /// At least one limit; sizes and ages journalctl takes as limits (0
    /// means "no limit" to it); an absolute `journal_dir`; a `journalctl`
    /// that is there and executable.
    fn validate(&self, key: &str, _: &Context<'_>) -> Result<(), ConfigError> {
        if self.max_size.is_none() && self.max_age.is_none() {
            return Err(ConfigError::invalid(
                format!("{key}.max_size"),
                "neither max_size nor max_age is set: journal-vacuum needs at least one limit",
            ));
        }
        if self.max_size == Some(ByteSize(0)) {
            return Err(ConfigError::invalid(
                format!("{key}.max_size"),
                "must be above 0 (journalctl reads 0 as no limit)",
            ));
        }
        if self.max_age.is_some_and(|a| a < Duration::from_secs(1)) {
            return Err(ConfigError::invalid(format!("{key}.max_age"), "must be at least 1s"));
        }
        if let Some(d) = &self.journal_dir
            && !d.is_absolute()
        {
            return Err(ConfigError::invalid(
                format!("{key}.journal_dir"),
                format!("{} is not an absolute path", d.display()),
            ));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::invalid(format!("{key}.timeout"), "must be greater than 0"));
        }
        locate(&self.journalctl)
            .map(drop)
            .map_err(|e| ConfigError::invalid(format!("{key}.journalctl"), e))
    }

    /// Nothing comes from the alert.
    fn resolve(&self, _: &Alert) -> Result<Target, ActionError> {
        Ok(Target {
            journal_dir: self.journal_dir.clone(),
            before: Before::default(),
        })
    }

    /// `journal-vacuum max_size=500MiB max_age=7d` (and `journal_dir=…`).
    fn describe(&self, _: &Target) -> String {
        let mut s = Self::TYPE.to_string();
        if let Some(m) = self.max_size {
            s.push_str(&format!(" max_size={}", m.human()));
        }
        if let Some(a) = self.max_age {
            s.push_str(&format!(" max_age={}", short(a)));
        }
        if let Some(d) = &self.journal_dir {
            s.push_str(&format!(" journal_dir={}", d.display()));
        }
        s
    }

    fn subjects(&self, t: &Target) -> Vec<Subject> {
        t.dirs()
            .into_iter()
            .map(|d| Subject::Journal(d.display().to_string()))
            .collect()
    }

    async fn run(&self, t: &Target, _: &Alert, env: &ActionEnv, started: Instant) -> Outcome {
        let args = self.args(t);
        let what = format!("{} {}", self.journalctl, args.join(" "));
        let failed = |d: String| Outcome::new(OutcomeResult::Failed, d, started);
        let program = match locate(&self.journalctl) {
            Ok(p) => p,
            Err(e) => return failed(format!("{what}: {e}")),
        };
        let before = match measure(t.dirs()).await {
            Ok(u) => u,
            Err(e) => return failed(format!("{what}: {e}")),
        };
        let _ = t.before.0.set(before.clone());
        if env.dry_run {
            return Outcome::would_run(&what, &state_line(&before), started);
        }
        let cmd = command::Command {
            argv: std::iter::once(program.display().to_string()).chain(args).collect(),
            env: vec![("PATH".to_string(), EXEC_PATH.to_string())],
            current_dir: Some(Path::new("/").into()),
            timeout: self.timeout,
            stdout_max: Some(OUTPUT_MAX),
            stderr_max: OUTPUT_MAX,
            drain: Duration::from_millis(500),
            run_as: None,
        };
        let report = |pid| {
            if let Some(sink) = &env.spawned {
                sink.report(pid);
            }
        };
        let out = match cmd.run_observed(None, report).await {
            Ok(o) => o,
            Err(e) => return failed(format!("cannot start {what}: {e}")),
        };
        let after = measure(t.dirs()).await;
        let (result, detail) = self.ended(&what, out, &before, after);
        Outcome::new(result, detail, started)
    }

    /// Verified when the journal is smaller than the run found it, or
    /// within the limits (there was nothing to vacuum); otherwise not
    /// helped, with the numbers.
    async fn verify(&self, t: &Target, _: &ActionEnv, _: tokio::time::Instant) -> Verification {
        let after = match measure(t.dirs()).await {
            Ok(u) => u,
            Err(e) => return Verification::NotHelped(e.to_string()),
        };
        let before = t.before.0.get();
        if before.is_some_and(|b| after.bytes < b.bytes) {
            return Verification::Verified;
        }
        let over = self.over_limits(&after, crate::time::now());
        if over.is_empty() {
            return Verification::Verified;
        }
        let was = before.map_or_else(|| "not measured".to_string(), |b| ByteSize(b.bytes).human());
        Verification::NotHelped(format!(
            "journal {was} → {}: {}",
            ByteSize(after.bytes).human(),
            over.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_text: &str) -> JournalVacuumAction {
        toml::from_str(toml_text).unwrap_or_else(|e| panic!("{toml_text}: {e}"))
    }

    fn compile_err(a: &JournalVacuumAction) -> String {
        a.validate("remediation[0].actions[0]", &Context::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn spec_parses_and_describes_itself() {
        let a = spec("max_size = \"500MiB\"\nmax_age = \"7d\"\n");
        assert_eq!(a.max_size, Some(ByteSize(500 << 20)));
        assert_eq!(a.max_age, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!((a.journalctl.as_str(), a.timeout), ("journalctl", Duration::from_secs(60)));
        let t = a.resolve(&Alert::default()).unwrap();
        assert_eq!(a.describe(&t), "journal-vacuum max_size=500MiB max_age=7d");
        assert_eq!(t.to_string(), "journal-vacuum");
        assert_eq!(
            a.args(&t),
            ["--vacuum-size=524288000", "--vacuum-time=604800s"]
        );
        assert_eq!(
            a.subjects(&t),
            [
                Subject::Journal("/var/log/journal".into()),
                Subject::Journal("/run/log/journal".into())
            ]
        );
        let a = spec("max_age = \"36h\"\njournal_dir = \"/srv/j\"\n");
        let t = a.resolve(&Alert::default()).unwrap();
        assert_eq!(a.describe(&t), "journal-vacuum max_age=36h journal_dir=/srv/j");
        assert_eq!(t.to_string(), "journal-vacuum:/srv/j");
        assert_eq!(a.args(&t), ["--vacuum-time=129600s", "--directory=/srv/j"]);
        assert_eq!(short(Duration::from_secs(5400)), "90m");
        assert_eq!(short(Duration::from_secs(61)), "61s");
        assert!(toml::from_str::<JournalVacuumAction>("max_size = \"1GiB\"\nmax_sise = 1\n").is_err());
        // Through the registry, and back as `check-config` prints it.
        let table: toml::Table = toml::from_str("type = \"journal-vacuum\"\nmax_size = \"1MiB\"\n").unwrap();
        let s = super::super::ActionSpec::deserialize(toml::Value::Table(table)).unwrap();
        assert_eq!(s.kind(), "journal-vacuum");
        assert!(s.is_destructive());
        assert_eq!(
            toml::to_string(&s).unwrap(),
            "type = \"journal-vacuum\"\njournalctl = \"journalctl\"\nmax_size = 1048576\ntimeout = \"1m\"\n"
        );
    }

    #[test]
    fn validation_names_the_key() {
        let key = "remediation[0].actions[0]";
        let e = compile_err(&spec(""));
        assert!(e.contains(&format!("{key}.max_size")) && e.contains("at least one limit"), "{e}");
        let e = compile_err(&spec("max_size = 0\n"));
        assert!(e.contains(&format!("{key}.max_size")) && e.contains("above 0"), "{e}");
        let e = compile_err(&spec("max_age = \"500ms\"\n"));
        assert!(e.contains(&format!("{key}.max_age")), "{e}");
        let e = compile_err(&spec("max_age = \"7d\"\njournal_dir = \"var/log/journal\"\n"));
        assert!(e.contains(&format!("{key}.journal_dir")) && e.contains("not an absolute path"), "{e}");
        let e = compile_err(&spec("max_age = \"7d\"\ntimeout = \"0s\"\n"));
        assert!(e.contains(&format!("{key}.timeout")), "{e}");
        let e = compile_err(&spec("max_age = \"7d\"\njournalctl = \"no-such-journalctl\"\n"));
        assert!(e.contains(&format!("{key}.journalctl")) && e.contains("not found in /usr/local/sbin"), "{e}");
        let e = compile_err(&spec("max_age = \"7d\"\njournalctl = \"/nonexistent/journalctl\"\n"));
        assert!(e.contains(&format!("{key}.journalctl")) && e.contains("/nonexistent/journalctl"), "{e}");
        let e = compile_err(&spec("max_age = \"7d\"\njournalctl = \"bin/journalctl\"\n"));
        assert!(e.contains("absolute path or a bare name"), "{e}");
        let e = compile_err(&spec("max_age = \"7d\"\njournalctl = \"/etc/passwd\"\n"));
        assert!(e.contains("/etc/passwd is not executable"), "{e}");
        // A bare name is found in the commands' PATH (as `/bin/sh` is here).
        spec("max_age = \"7d\"\njournalctl = \"sh\"\n")
            .validate(key, &Context::default())
            .unwrap();
    }

    fn usage(bytes: u64, archived: u64, oldest: Option<f64>) -> Usage {
        Usage {
            dirs: vec![PathBuf::from("/j")],
            bytes,
            files: 3,
            archived_bytes: archived,
            archived_files: 2,
            oldest_archived: oldest,
            largest: Vec::new(),
            complete: true,
            free: Ok(1 << 30),
        }
    }

    #[test]
    fn limits_tell_what_is_over_and_why() {
        let a = spec("max_size = \"100MiB\"\nmax_age = \"7d\"\n");
        let now = 1_000_000_000.0;
        assert!(a.over_limits(&usage(50 << 20, 40 << 20, Some(now - 86_400.0)), now).is_empty());
        let over = a.over_limits(&usage(150 << 20, 140 << 20, Some(now - 8.0 * 86_400.0)), now);
        assert_eq!(over.len(), 2, "{over:?}");
        assert!(over[0].starts_with("150MiB over max_size 100MiB"), "{over:?}");
        assert!(!over[0].contains("active files"), "{over:?}");
        assert!(over[1].contains("8days ago, over max_age 7d"), "{over:?}");
        let over = a.over_limits(&usage(150 << 20, 10 << 20, None), now);
        assert!(over[0].contains("its active files alone hold 140MiB"), "{over:?}");
        let line = freed_line(&usage(150 << 20, 0, None), &usage(50 << 20, 0, None));
        assert!(line.starts_with("freed 100MiB (journal 150MiB → 50MiB; filesystem free 1GiB → 1GiB)"), "{line}");
        assert!(line.ends_with(&format!("bytes: journal {} → {}, filesystem free {} → {}", 150u64 << 20, 50u64 << 20, 1u64 << 30, 1u64 << 30)), "{line}");
    }

    #[test]
    fn journalctl_output_is_summed_up() {
        let err = Captured {
            kept: b"Deleted archived journal /j/system@a-1-2.journal (8.0M).\nDeleted archived journal /j/system@b-3-4.journal (8.0M).\nVacuuming done, freed 16.0M of archived journals from /j.\n".to_vec(),
            total: 0,
        };
        assert_eq!(
            journalctl_said(&Captured::default(), &err),
            "journalctl deleted 2 archived files; Vacuuming done, freed 16.0M of archived journals from /j"
        );
    }

    #[tokio::test]
    async fn a_dry_run_measures_and_runs_nothing() {
        let d = tempfile::tempdir().unwrap();
        let journal = d.path().join("journal");
        std::fs::create_dir(&journal).unwrap();
        std::fs::write(journal.join("system@a-1-2.journal"), vec![1u8; 64 << 10]).unwrap();
        std::fs::write(journal.join("system.journal"), vec![1u8; 8 << 10]).unwrap();
        // A journalctl that would leave a mark if it ran.
        let mark = d.path().join("ran");
        let prog = d.path().join("journalctl");
        std::fs::write(&prog, format!("#!/bin/sh\ntouch {}\n", mark.display())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        let a = JournalVacuumAction {
            max_size: Some(ByteSize(1)),
            max_age: None,
            journal_dir: Some(journal.clone()),
            journalctl: prog.display().to_string(),
            timeout: Duration::from_secs(10),
        };
        a.validate("a", &Context::default()).unwrap();
        let t = a.resolve(&Alert::default()).unwrap();
        let env = ActionEnv {
            dry_run: true,
            ..ActionEnv::default()
        };
        let o = a.run(&t, &Alert::default(), &env, Instant::now()).await;
        assert_eq!(o.result, OutcomeResult::DryRun, "{}", o.detail);
        assert!(o.detail.starts_with(&format!("would run {} --vacuum-size=1 --directory=", prog.display())), "{}", o.detail);
        assert!(
            o.detail.contains("in 2 files") && o.detail.contains("in 1 archived file;") && o.detail.contains("filesystem free"),
            "{}",
            o.detail
        );
        assert!(!mark.exists(), "the dry run ran journalctl");
        assert!(journal.join("system@a-1-2.journal").exists());

        // Without a journal there is nothing to measure: failed, and why.
        let gone = JournalVacuumAction {
            journal_dir: Some(journal.join("missing")),
            ..a
        };
        let t = gone.resolve(&Alert::default()).unwrap();
        let o = gone.run(&t, &Alert::default(), &ActionEnv::default(), Instant::now()).await;
        assert_eq!(o.result, OutcomeResult::Failed, "{}", o.detail);
        assert!(o.detail.contains("no journal directory") && o.detail.contains("missing does not exist"), "{}", o.detail);
        assert!(!mark.exists());
    }
}
