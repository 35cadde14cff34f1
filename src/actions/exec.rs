//! `type = "exec"`: an argv run without a shell through
//! [`crate::command`] (own process group, timeout that kills the group,
//! bounded output), with a minimal environment (`PATH` and the alert as
//! `HOSTMEDIC_ALERT_*`) and `/` as working directory.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::template::{check_template, has_placeholders, render_field};
use super::{ActionEnv, ActionError, Alert, ConfigError, Outcome, OutcomeResult};
use crate::command::{self, Captured, Ended};

/// `type = "exec"`: argv run without a shell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecAction {
    /// `argv[0]` is an absolute path, fixed (not templated); the rest may be
    /// templated.
    pub argv: Vec<String>,
    #[serde(default = "default_exec_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_exec_timeout() -> Duration {
    Duration::from_secs(60)
}

impl ExecAction {
    pub(crate) fn suggested_timeout(&self) -> Duration {
        self.timeout + Duration::from_secs(5)
    }

    /// Config-time checks: argv non-empty, argv[0] an absolute path to an
    /// existing executable file (not templated).
    pub(crate) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let a = self;
        use std::os::unix::fs::PermissionsExt;
        let Some(prog) = a.argv.first() else {
            return Err(ConfigError::invalid(format!("{key}.argv"), "must not be empty"));
        };
        let k0 = format!("{key}.argv[0]");
        if has_placeholders(prog) {
            return Err(ConfigError::invalid(k0, "the program must be fixed, not templated"));
        }
        if !prog.starts_with('/') {
            return Err(ConfigError::invalid(k0, format!("{prog:?} must be an absolute path")));
        }
        let meta = std::fs::metadata(prog).map_err(|e| ConfigError::invalid(&k0, format!("{prog}: {e}")))?;
        if !meta.is_file() {
            return Err(ConfigError::invalid(k0, format!("{prog} is not a regular file")));
        }
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(ConfigError::invalid(k0, format!("{prog} is not executable")));
        }
        for (i, arg) in a.argv.iter().enumerate().skip(1) {
            check_template(&format!("{key}.argv[{i}]"), arg)?;
        }
        if a.timeout.is_zero() {
            return Err(ConfigError::invalid(format!("{key}.timeout"), "must be greater than 0"));
        }
        Ok(())
    }

    pub(crate) fn resolve(&self, alert: &Alert) -> Result<Resolved, ActionError> {
        let mut argv = Vec::with_capacity(self.argv.len());
        for (i, arg) in self.argv.iter().enumerate() {
            let v = render_field(&format!("argv[{i}]"), arg, alert)?;
            if v.contains('\0') {
                return Err(ActionError::Other(format!("argv[{i}]: value contains a NUL byte")));
            }
            argv.push(v);
        }
        Ok(Resolved {
            spec: self.clone(),
            argv,
        })
    }
}

/// An exec action with its rendered argv: key `exec:<argv joined by spaces>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub spec: ExecAction,
    pub argv: Vec<String>,
}

impl fmt::Display for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exec:{}", self.argv.join(" "))
    }
}

/// `PATH` given to commands (the only variable besides `HOSTMEDIC_ALERT_*`).
pub const EXEC_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Most bytes of stdout and of stderr kept.
const OUTPUT_MAX: usize = super::DETAIL_MAX;

/// The environment a command gets: `PATH` plus `HOSTMEDIC_ALERT_NAME`,
/// `_STATUS`, `_FINGERPRINT`, `_STARTS_AT`, `_LABEL_<NAME>` and
/// `_ANNOTATION_<NAME>` (names upper-cased, other characters as `_`).
/// Values containing NUL are left out.
pub fn alert_env(alert: &Alert) -> Vec<(String, String)> {
    fn var(name: &str) -> String {
        name.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect()
    }
    let mut env = vec![
        ("PATH".to_string(), EXEC_PATH.to_string()),
        ("HOSTMEDIC_ALERT_NAME".to_string(), alert.alertname.clone()),
        ("HOSTMEDIC_ALERT_STATUS".to_string(), alert.status.clone()),
        ("HOSTMEDIC_ALERT_FINGERPRINT".to_string(), alert.fingerprint.clone()),
        ("HOSTMEDIC_ALERT_STARTS_AT".to_string(), alert.starts_at.clone()),
    ];
    for (k, v) in &alert.labels {
        env.push((format!("HOSTMEDIC_ALERT_LABEL_{}", var(k)), v.clone()));
    }
    for (k, v) in &alert.annotations {
        env.push((format!("HOSTMEDIC_ALERT_ANNOTATION_{}", var(k)), v.clone()));
    }
    env.retain(|(_, v)| !v.contains('\0'));
    env
}

fn describe(name: &str, out: &Captured) -> String {
    let text = String::from_utf8_lossy(&out.kept);
    let text = text.trim_end();
    if out.truncated() {
        format!("{name} ({} bytes, first {} kept):\n{text}\n", out.total, out.kept.len())
    } else if text.is_empty() {
        String::new()
    } else {
        format!("{name}:\n{text}\n")
    }
}

impl Resolved {
    pub(crate) async fn run(&self, alert: &Alert, env: &ActionEnv, started: Instant) -> Outcome {
        let (argv, timeout) = (&self.argv, self.spec.timeout);
        if argv.is_empty() {
            return Outcome::new(OutcomeResult::Refused, "exec: empty argv", started);
        }
        let shown = format!("{argv:?}");
        if env.dry_run {
            return Outcome::new(
                OutcomeResult::DryRun,
                format!("would run {shown} (timeout {})", humantime::format_duration(timeout)),
                started,
            );
        }
        let cmd = command::Command {
            argv: argv.clone(),
            env: alert_env(alert),
            current_dir: Some("/".into()),
            timeout,
            stdout_max: Some(OUTPUT_MAX),
            stderr_max: OUTPUT_MAX,
            // Background processes still holding the pipes do not keep us
            // waiting.
            drain: Duration::from_millis(500),
        };
        let out = match cmd.run(None).await {
            Ok(o) => o,
            Err(e) => return Outcome::new(OutcomeResult::Failed, format!("cannot start {shown}: {e}"), started),
        };
        let output = format!("{}{}", describe("stdout", &out.stdout), describe("stderr", &out.stderr));
        match out.ended {
            Ended::WaitFailed(e) => Outcome::new(
                OutcomeResult::Failed,
                format!("{shown}: waiting failed: {e}\n{output}"),
                started,
            ),
            Ended::TimedOut | Ended::Cancelled => Outcome::new(
                OutcomeResult::Failed,
                format!(
                    "{shown}: timed out after {}, process group killed\n{output}",
                    humantime::format_duration(timeout)
                ),
                started,
            ),
            Ended::Exited(st) if st.success() => {
                Outcome::new(OutcomeResult::Ok, format!("{shown}: exit status 0\n{output}"), started)
            }
            Ended::Exited(st) => Outcome::new(OutcomeResult::Failed, format!("{shown}: {st}\n{output}"), started),
        }
    }
}
