//! The `exec` action: argv without a shell, minimal environment, timeout
//! that kills the process group, output captured and truncated.

use std::time::{Duration, Instant};

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

/// Reads all of `r`, keeping the first `max` bytes.
async fn capture(mut r: impl tokio::io::AsyncRead + Unpin, max: usize) -> (Vec<u8>, usize) {
    use tokio::io::AsyncReadExt;
    let mut kept = Vec::new();
    let mut total = 0usize;
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                total += n;
                let room = max.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (kept, total)
}

fn describe(name: &str, out: &(Vec<u8>, usize)) -> String {
    let text = String::from_utf8_lossy(&out.0);
    let text = text.trim_end();
    if out.1 > out.0.len() {
        format!("{name} ({} bytes, first {} kept):\n{text}\n", out.1, out.0.len())
    } else if text.is_empty() {
        String::new()
    } else {
        format!("{name}:\n{text}\n")
    }
}

/// Kills the command's process group when dropped before being disarmed:
/// if the caller gives up on the action (its own timeout cancels this
/// future), nothing the command started is left running.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            kill_group(pgid);
        }
    }
}

fn kill_group(pgid: u32) {
    // The child is its own process group leader (process_group(0)).
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}

pub(crate) async fn run(a: &ExecAction, argv: &[String], alert: &Alert, env: &ActionEnv, started: Instant) -> Outcome {
    if argv.is_empty() {
        return Outcome::new(OutcomeResult::Refused, "exec: empty argv", started);
    }
    let shown = format!("{argv:?}");
    if env.dry_run {
        return Outcome::new(
            OutcomeResult::DryRun,
            format!("would run {shown} (timeout {})", humantime::format_duration(a.timeout)),
            started,
        );
    }
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .envs(alert_env(alert))
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::new(OutcomeResult::Failed, format!("cannot start {shown}: {e}"), started),
    };
    let pgid = child.id();
    let mut guard = GroupGuard(pgid);
    let out = tokio::spawn(capture(child.stdout.take().expect("piped stdout"), OUTPUT_MAX));
    let err = tokio::spawn(capture(child.stderr.take().expect("piped stderr"), OUTPUT_MAX));
    let status = tokio::time::timeout(a.timeout, child.wait()).await;
    let timed_out = status.is_err();
    if timed_out && let Some(pgid) = pgid {
        kill_group(pgid);
    }
    let status = match status {
        Ok(s) => s,
        Err(_) => child.wait().await,
    };
    // Finished (or killed above): background processes a successful command
    // left behind are its own business.
    guard.0 = None;
    // Output: whatever arrived; background processes still holding the pipes
    // do not keep us waiting.
    let collect = |h: tokio::task::JoinHandle<(Vec<u8>, usize)>| async move {
        let abort = h.abort_handle();
        match tokio::time::timeout(Duration::from_millis(500), h).await {
            Ok(Ok(v)) => v,
            _ => {
                abort.abort();
                (Vec::new(), 0)
            }
        }
    };
    let (stdout, stderr) = (collect(out).await, collect(err).await);
    let output = format!("{}{}", describe("stdout", &stdout), describe("stderr", &stderr));
    match status {
        Err(e) => Outcome::new(
            OutcomeResult::Failed,
            format!("{shown}: waiting failed: {e}\n{output}"),
            started,
        ),
        Ok(_) if timed_out => Outcome::new(
            OutcomeResult::Failed,
            format!(
                "{shown}: timed out after {}, process group killed\n{output}",
                humantime::format_duration(a.timeout)
            ),
            started,
        ),
        Ok(st) if st.success() => Outcome::new(OutcomeResult::Ok, format!("{shown}: exit status 0\n{output}"), started),
        Ok(st) => Outcome::new(OutcomeResult::Failed, format!("{shown}: {st}\n{output}"), started),
    }
}
