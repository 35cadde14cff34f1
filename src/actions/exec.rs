//! `type = "exec"`: an argv run without a shell through
//! [`crate::command`] (own process group, timeout that kills the group,
//! bounded output), with a minimal environment (`PATH` and the alert as
//! `HOSTMEDIC_ALERT_*`) and `/` as working directory, optionally as another
//! user and group (`user`/`group`, looked up at run time in the passwd and
//! group files [`Accounts`] names). The program's pid and start time are
//! reported as it starts ([`ActionEnv::spawned`]), so the receiver can
//! journal them and a restart after a crash can find what survived.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::template::{check_template, has_placeholders, render_field};
use super::{Action, ActionEnv, ActionError, Alert, ConfigError, Context, Outcome, OutcomeResult, Subject, Verification};
use crate::command::{self, Captured, Ended, RunAs};
use crate::users::Users;

/// `type = "exec"`: argv run without a shell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecAction {
    /// `argv[0]` is an absolute path, fixed (not templated); the rest may be
    /// templated.
    pub argv: Vec<String>,
    #[serde(default = "default_exec_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Run as this user: a name from the passwd file or a numeric uid. Its
    /// primary group is the group unless `group` is set. `None`: hostmedic's
    /// own user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Run with this primary group: a name from the group file or a numeric
    /// gid. `None`: the user's primary group (or hostmedic's own group when
    /// `user` is not set either).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

fn default_exec_timeout() -> Duration {
    Duration::from_secs(60)
}

/// An exec action's rendered argv: key `exec:<argv joined by spaces>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub argv: Vec<String>,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exec:{}", self.argv.join(" "))
    }
}

/// Why `prog` (an absolute path) is not a program to run: missing, not a
/// regular file, or not executable. Checked at config time.
pub(crate) fn check_program(prog: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let shown = prog.display();
    let meta = std::fs::metadata(prog).map_err(|e| format!("{shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("{shown} is not executable"));
    }
    Ok(())
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
        ("HOSTMEDIC_ALERT_STATUS".to_string(), alert.status.as_str().to_string()),
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

impl Action for ExecAction {
    const TYPE: &'static str = "exec";
    type Target = Target;

    fn suggested_timeout(&self) -> Duration {
        self.timeout + Duration::from_secs(5)
    }

    /// Config-time checks: argv non-empty, argv[0] an absolute path to an
    /// existing executable file (not templated).
    fn validate(&self, key: &str, _: &Context<'_>) -> Result<(), ConfigError> {
        let a = self;
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
        check_program(Path::new(prog)).map_err(|why| ConfigError::invalid(k0, why))?;
        for (i, arg) in a.argv.iter().enumerate().skip(1) {
            check_template(&format!("{key}.argv[{i}]"), arg)?;
        }
        if a.timeout.is_zero() {
            return Err(ConfigError::invalid(format!("{key}.timeout"), "must be greater than 0"));
        }
        for (field, value) in [("user", &a.user), ("group", &a.group)] {
            if let Some(v) = value {
                AccountId::parse(v).map_err(|why| ConfigError::invalid(format!("{key}.{field}"), why))?;
            }
        }
        Ok(())
    }

    fn resolve(&self, alert: &Alert) -> Result<Target, ActionError> {
        let mut argv = Vec::with_capacity(self.argv.len());
        for (i, arg) in self.argv.iter().enumerate() {
            let v = render_field(&format!("argv[{i}]"), arg, alert)?;
            if v.contains('\0') {
                return Err(ActionError::Other(format!("argv[{i}]: value contains a NUL byte")));
            }
            argv.push(v);
        }
        Ok(Target { argv })
    }

    /// A command's effect is its own business: nothing to look at.
    async fn verify(&self, _: &Target, _: &ActionEnv, _: tokio::time::Instant) -> Verification {
        Verification::NotApplicable
    }

    /// What a command touches is not known.
    fn subjects(&self, _: &Target) -> Vec<Subject> {
        Vec::new()
    }

    // long because: each way a child process can end is reported in its own words.
    async fn run(&self, t: &Target, alert: &Alert, env: &ActionEnv, started: Instant) -> Outcome {
        let (argv, timeout) = (&t.argv, self.timeout);
        if argv.is_empty() {
            return Outcome::new(OutcomeResult::Refused, "exec: empty argv", started);
        }
        let run_as = match env
            .exec_accounts
            .run_as(self.user.as_deref(), self.group.as_deref())
            .await
        {
            Ok(r) => r,
            Err(why) => return Outcome::new(OutcomeResult::Failed, format!("exec {argv:?}: {why}"), started),
        };
        let shown = match run_as {
            None => format!("{argv:?}"),
            Some(RunAs { uid, gid }) => {
                let id = |v: Option<u32>| v.map_or_else(|| "own".to_string(), |v| v.to_string());
                format!("{argv:?} as uid {} gid {}", id(uid), id(gid))
            }
        };
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
            run_as,
        };
        let report = |pid| {
            if let Some(sink) = &env.spawned {
                sink.report(pid);
            }
        };
        let out = match cmd.run_observed(None, report).await {
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
            Ended::Exited(st) => Outcome::new(
                if st.success() {
                    OutcomeResult::Ok
                } else {
                    OutcomeResult::Failed
                },
                format!("{shown}: {}\n{output}", crate::command::describe_status(&st)),
                started,
            ),
        }
    }
}

// ---------------------------------------------------------------- accounts

/// Where `user` and `group` names are looked up (`receiver.passwd_file`,
/// `receiver.group_file`). Read at each run, so an account created after
/// startup is found. Hand-parsed rather than through libc's NSS
/// (`getpwnam`): the files must be configurable (tests point them at
/// fixtures, a container at the host's), and NSS always reads the running
/// system's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accounts {
    pub passwd_file: PathBuf,
    pub group_file: PathBuf,
}

impl Default for Accounts {
    fn default() -> Self {
        Accounts {
            passwd_file: PathBuf::from("/etc/passwd"),
            group_file: PathBuf::from("/etc/group"),
        }
    }
}

/// Why an exec action's `user` or `group` is not one to run as: its syntax
/// (config time), or its file at run time (names resolve when the action
/// runs, so an account created later is found).
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0:?} is not a valid id (0 to 4294967294)")]
    BadId(String),
    #[error(
        "{0:?} is neither a numeric id nor an account name (a letter or _, then letters, digits, _ . -, at most 32)"
    )]
    BadName(String),
    #[error("cannot read {}: {source}", .path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("user {user:?} is not in {}", .file.display())]
    UnknownUser { user: String, file: PathBuf },
    #[error("group {group:?} is not in {}", .file.display())]
    UnknownGroup { group: String, file: PathBuf },
    #[error("user {user:?} has no entry with a primary group in {}: set `group`", .file.display())]
    NoPrimaryGroup { user: String, file: PathBuf },
}

/// A `user` or `group` value: a numeric id or an account name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AccountId<'a> {
    Id(u32),
    Name(&'a str),
}

impl<'a> AccountId<'a> {
    /// Digits: an id (not `4294967295`, which means "unchanged" to the
    /// kernel). Otherwise a name as `useradd` accepts it: a letter or `_`,
    /// then letters, digits, `_`, `.`, `-`, at most 32 characters, an
    /// optional trailing `$`.
    fn parse(v: &'a str) -> Result<AccountId<'a>, AccountError> {
        if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
            return match v.parse::<u32>() {
                Ok(id) if id != u32::MAX => Ok(AccountId::Id(id)),
                _ => Err(AccountError::BadId(v.to_string())),
            };
        }
        let body = v.strip_suffix('$').unwrap_or(v);
        let mut chars = body.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !first_ok || !rest_ok || v.len() > 32 {
            return Err(AccountError::BadName(v.to_string()));
        }
        Ok(AccountId::Name(v))
    }
}

/// A passwd or group file as [`Users`] reads it; unreadable is an error.
async fn read_accounts(path: &Path) -> Result<Users, AccountError> {
    Users::try_read(path).await.map_err(|source| AccountError::Unreadable {
        path: path.to_path_buf(),
        source,
    })
}

impl Accounts {
    /// The uid/gid to run with; `Ok(None)` when neither is set. `Err` says
    /// which name is unknown and in which file.
    pub async fn run_as(&self, user: Option<&str>, group: Option<&str>) -> Result<Option<RunAs>, AccountError> {
        let (uid, primary) = match user.map(AccountId::parse).transpose()? {
            None => (None, None),
            Some(id) => {
                let passwd = read_accounts(&self.passwd_file).await?;
                let found = match id {
                    AccountId::Id(uid) => Some((uid, passwd.primary_gid_of(uid))),
                    AccountId::Name(n) => passwd.uid(n).map(|uid| (uid, passwd.primary_gid(n))),
                };
                let Some((uid, gid)) = found else {
                    return Err(AccountError::UnknownUser {
                        user: user.unwrap_or_default().to_string(),
                        file: self.passwd_file.clone(),
                    });
                };
                (Some(uid), gid)
            }
        };
        let gid = match group.map(AccountId::parse).transpose()? {
            None => primary,
            Some(AccountId::Id(gid)) => Some(gid),
            Some(AccountId::Name(n)) => {
                // A group file has the passwd shape: name, password, gid.
                let groups = read_accounts(&self.group_file).await?;
                match groups.uid(n) {
                    Some(gid) => Some(gid),
                    None => {
                        return Err(AccountError::UnknownGroup {
                            group: n.to_string(),
                            file: self.group_file.clone(),
                        });
                    }
                }
            }
        };
        if uid.is_some() && gid.is_none() {
            return Err(AccountError::NoPrimaryGroup {
                user: user.unwrap_or_default().to_string(),
                file: self.passwd_file.clone(),
            });
        }
        Ok((uid.is_some() || gid.is_some()).then_some(RunAs { uid, gid }))
    }
}

#[cfg(test)]
mod account_tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\npostgres:x:107:114::/var/lib/postgresql:/bin/sh\nbroken:x:notanumber:1::/:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nssl-cert:x:111:postgres\npostgres:x:114:\n";

    fn fixture() -> (tempfile::TempDir, Accounts) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("passwd"), PASSWD).unwrap();
        std::fs::write(dir.path().join("group"), GROUP).unwrap();
        let acc = Accounts {
            passwd_file: dir.path().join("passwd"),
            group_file: dir.path().join("group"),
        };
        (dir, acc)
    }

    #[test]
    fn ids_and_names_are_checked_for_syntax() {
        assert_eq!(AccountId::parse("107").ok(), Some(AccountId::Id(107)));
        assert_eq!(AccountId::parse("www-data").ok(), Some(AccountId::Name("www-data")));
        assert_eq!(AccountId::parse("machine$").ok(), Some(AccountId::Name("machine$")));
        assert_eq!(
            AccountId::parse("4294967295").unwrap_err().to_string(),
            "\"4294967295\" is not a valid id (0 to 4294967294)"
        );
        for bad in [
            "",
            "4294967295",
            "99999999999",
            "-rf",
            "a b",
            "root:0",
            "1abc",
            &"a".repeat(33),
        ] {
            assert!(AccountId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[tokio::test]
    async fn names_resolve_through_the_files_at_run_time() {
        let (_dir, acc) = fixture();
        let r = |u: Option<&'static str>, g: Option<&'static str>| {
            let acc = acc.clone();
            // The error as the outcome's detail shows it.
            async move { acc.run_as(u, g).await.map_err(|e| e.to_string()) }
        };
        assert_eq!(r(None, None).await, Ok(None));
        let both = Ok(Some(RunAs {
            uid: Some(107),
            gid: Some(114),
        }));
        assert_eq!(r(Some("postgres"), None).await, both.clone());
        assert_eq!(r(Some("107"), None).await, both);
        let cert = Ok(Some(RunAs {
            uid: Some(107),
            gid: Some(111),
        }));
        assert_eq!(r(Some("postgres"), Some("ssl-cert")).await, cert);
        assert_eq!(
            r(None, Some("114")).await,
            Ok(Some(RunAs {
                uid: None,
                gid: Some(114)
            }))
        );
        let e = r(Some("mysql"), None).await.unwrap_err();
        assert!(e.contains("user \"mysql\" is not in") && e.contains("passwd"), "{e}");
        let e = r(Some("postgres"), Some("wheel")).await.unwrap_err();
        assert!(e.contains("group \"wheel\" is not in") && e.contains("group"), "{e}");
        let e = r(Some("4242"), None).await.unwrap_err();
        assert!(e.contains("set `group`"), "{e}");
        assert_eq!(
            r(Some("4242"), Some("0")).await,
            Ok(Some(RunAs {
                uid: Some(4242),
                gid: Some(0)
            }))
        );
        let missing = Accounts {
            passwd_file: PathBuf::from("/nonexistent/passwd"),
            ..acc.clone()
        };
        let e = missing.run_as(Some("postgres"), None).await.unwrap_err().to_string();
        assert!(e.contains("cannot read /nonexistent/passwd"), "{e}");
    }
}
