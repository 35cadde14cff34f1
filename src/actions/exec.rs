//! The `exec` action: argv without a shell, minimal environment, timeout
//! that kills the process group, output captured and truncated.

use std::time::Instant;

use super::{ActionEnv, ActionError, Alert, ConfigError, ExecAction, Outcome, OutcomeResult, Target};

/// Config-time checks: argv non-empty, argv[0] an absolute path to an
/// existing executable file (not templated).
pub(crate) fn validate(key: &str, a: &ExecAction) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let Some(prog) = a.argv.first() else {
        return Err(ConfigError::invalid(format!("{key}.argv"), "must not be empty"));
    };
    let k0 = format!("{key}.argv[0]");
    if super::template::has_placeholders(prog) {
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
        super::check_template(&format!("{key}.argv[{i}]"), arg)?;
    }
    if a.timeout.is_zero() {
        return Err(ConfigError::invalid(format!("{key}.timeout"), "must be greater than 0"));
    }
    Ok(())
}

pub(crate) fn resolve(a: &ExecAction, alert: &Alert) -> Result<Target, ActionError> {
    let mut argv = Vec::with_capacity(a.argv.len());
    for (i, arg) in a.argv.iter().enumerate() {
        let v = super::render(&format!("argv[{i}]"), arg, alert)?;
        if v.contains('\0') {
            return Err(ActionError::Other(format!("argv[{i}]: value contains a NUL byte")));
        }
        argv.push(v);
    }
    Ok(Target::Command { argv })
}

pub(crate) async fn run(
    _a: &ExecAction,
    argv: &[String],
    _alert: &Alert,
    _env: &ActionEnv,
    started: Instant,
) -> Outcome {
    Outcome::new(
        OutcomeResult::Refused,
        format!("exec {argv:?}: not wired yet on this commit"),
        started,
    )
}
