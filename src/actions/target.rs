//! Target grammars: every value that names something to act on (a systemd
//! unit, a container, a PID) is checked here before anything runs. These are
//! pure functions so the fuzz target can call them directly.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest unit name systemd accepts (UNIT_NAME_MAX - 1).
pub const UNIT_NAME_MAX: usize = 255;
/// Longest container name accepted.
pub const CONTAINER_NAME_MAX: usize = 255;
/// Largest PID Linux can hand out (PID_MAX_LIMIT, 2^22).
pub const PID_MAX: u32 = 4_194_304;

/// Unit types systemd knows.
pub const UNIT_SUFFIXES: &[&str] = &[
    "service",
    "socket",
    "device",
    "mount",
    "automount",
    "swap",
    "target",
    "path",
    "timer",
    "slice",
    "scope",
];

/// Why a value was refused as a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} refused: {reason}")]
pub struct TargetError {
    pub what: &'static str,
    pub value: String,
    pub reason: String,
}

fn refuse(what: &'static str, value: &str, reason: impl Into<String>) -> TargetError {
    // Keep the echoed value short: it comes from an alert label.
    let value: String = value.chars().take(80).collect();
    TargetError {
        what,
        value,
        reason: reason.into(),
    }
}

/// Validates a systemd unit name: `prefix[@instance].suffix` where the suffix
/// is a known unit type and every character is one of `A-Za-z0-9:_.-@` or a
/// `\xNN` escape. No `/`, no `..`, no whitespace or shell characters, no
/// leading `-` or `.`, at most [`UNIT_NAME_MAX`] bytes.
pub fn validate_unit_name(name: &str) -> Result<(), TargetError> {
    const W: &str = "unit name";
    if name.is_empty() {
        return Err(refuse(W, name, "empty"));
    }
    if name.len() > UNIT_NAME_MAX {
        return Err(refuse(W, name, format!("longer than {UNIT_NAME_MAX} bytes")));
    }
    if name.contains('/') {
        return Err(refuse(W, name, "contains '/'"));
    }
    if name.contains("..") {
        return Err(refuse(W, name, "contains '..'"));
    }
    let b = name.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b':' | b'_' | b'.' | b'-' | b'@' => i += 1,
            b'\\' => {
                let ok =
                    i + 3 < b.len() && b[i + 1] == b'x' && b[i + 2].is_ascii_hexdigit() && b[i + 3].is_ascii_hexdigit();
                if !ok {
                    return Err(refuse(W, name, "'\\' is only allowed as a \\xNN escape"));
                }
                i += 4;
            }
            _ => {
                let ch = name[i..].chars().next().unwrap_or('?');
                return Err(refuse(W, name, format!("character {ch:?} is not allowed")));
            }
        }
    }
    if name.starts_with('-') || name.starts_with('.') || name.starts_with('@') {
        return Err(refuse(W, name, "must start with a letter, digit, ':', '_' or '\\'"));
    }
    let Some((stem, suffix)) = name.rsplit_once('.') else {
        return Err(refuse(W, name, "has no unit type suffix (e.g. .service)"));
    };
    if !UNIT_SUFFIXES.contains(&suffix) {
        return Err(refuse(
            W,
            name,
            format!(
                "unknown unit type suffix .{suffix} (expected one of {})",
                UNIT_SUFFIXES.join(", ")
            ),
        ));
    }
    if stem.is_empty() {
        return Err(refuse(W, name, "empty name before the suffix"));
    }
    match stem.matches('@').count() {
        0 => {}
        1 => {
            if stem.starts_with('@') {
                return Err(refuse(W, name, "empty template name before '@'"));
            }
        }
        _ => return Err(refuse(W, name, "more than one '@'")),
    }
    Ok(())
}

/// Validates a container name or id: Docker's name grammar
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]*` (at most [`CONTAINER_NAME_MAX`] bytes), which
/// also covers 12–64 character hex ids.
pub fn validate_container(name: &str) -> Result<(), TargetError> {
    const W: &str = "container";
    if name.is_empty() {
        return Err(refuse(W, name, "empty"));
    }
    if name.len() > CONTAINER_NAME_MAX {
        return Err(refuse(W, name, format!("longer than {CONTAINER_NAME_MAX} bytes")));
    }
    let b = name.as_bytes();
    if !b[0].is_ascii_alphanumeric() {
        return Err(refuse(W, name, "must start with a letter or digit"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(refuse(W, name, format!("character {c:?} is not allowed")));
    }
    Ok(())
}

/// True when `s` looks like a container id (12–64 lowercase hex digits).
pub fn is_container_id(s: &str) -> bool {
    (12..=64).contains(&s.len()) && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Validates a PID: decimal digits only (no sign, no leading zero, no
/// spaces), greater than 1 (never init), at most [`PID_MAX`].
pub fn validate_pid(s: &str) -> Result<i32, TargetError> {
    const W: &str = "pid";
    if s.is_empty() {
        return Err(refuse(W, s, "empty"));
    }
    if !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(refuse(W, s, "must be a positive decimal integer"));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(refuse(W, s, "leading zero"));
    }
    let n: u32 = s.parse().map_err(|_| refuse(W, s, "out of range"))?;
    if n <= 1 {
        return Err(refuse(W, s, "must be greater than 1"));
    }
    if n > PID_MAX {
        return Err(refuse(W, s, format!("greater than {PID_MAX}")));
    }
    Ok(n as i32)
}

/// Validates a user name for `manager = "user:<name>"` (POSIX portable
/// user names).
pub fn validate_user_name(s: &str) -> Result<(), TargetError> {
    const W: &str = "user name";
    if s.is_empty() || s.len() > 32 {
        return Err(refuse(W, s, "must be 1..=32 characters"));
    }
    if s.starts_with('-') {
        return Err(refuse(W, s, "must not start with '-'"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(refuse(W, s, format!("character {c:?} is not allowed")));
    }
    Ok(())
}

/// Parses a process start time given as Unix seconds (`1700000000` or
/// `1700000000.25`), as exported by the processes collector.
pub fn parse_start_time(s: &str) -> Result<f64, TargetError> {
    const W: &str = "start time";
    let t = s.trim();
    if t.is_empty()
        || !t
            .bytes()
            .all(|c| c.is_ascii_digit() || c == b'.' || c == b'e' || c == b'E' || c == b'+')
    {
        return Err(refuse(W, s, "must be Unix seconds (e.g. 1700000000.5)"));
    }
    let v: f64 = t.parse().map_err(|_| refuse(W, s, "must be Unix seconds"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(refuse(W, s, "must be a positive number of Unix seconds"));
    }
    Ok(v)
}

/// Which systemd manager a unit belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Manager {
    System,
    User(String),
}

impl Manager {
    /// Parses `"system"` or `"user:<name>"`.
    pub fn parse(s: &str) -> Result<Manager, TargetError> {
        if s == "system" {
            return Ok(Manager::System);
        }
        if let Some(user) = s.strip_prefix("user:") {
            validate_user_name(user)?;
            return Ok(Manager::User(user.to_string()));
        }
        Err(refuse("manager", s, "must be \"system\" or \"user:<name>\""))
    }
}

impl fmt::Display for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Manager::System => f.write_str("system"),
            Manager::User(u) => write!(f, "user:{u}"),
        }
    }
}

/// What evidence is taken about: what an action acts on
/// ([`super::Action::subjects`]) or an alert's labels name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Unit {
        manager: Manager,
        unit: String,
    },
    Container(String),
    Process(i32),
    Lfs(String),
    Path(String),
    /// A journal directory (the files journald writes there).
    Journal(String),
}

impl Subject {
    /// The journal's name for it (targets keep their target key).
    pub fn key(&self) -> String {
        match self {
            Subject::Unit { manager, unit } => format!("systemd:{manager}:{unit}"),
            Subject::Container(c) => format!("docker:{c}"),
            Subject::Process(p) => format!("pid:{p}"),
            Subject::Lfs(r) => format!("lfs:{r}"),
            Subject::Path(w) => format!("path:{w}"),
            Subject::Journal(d) => format!("journal:{d}"),
        }
    }
}

/// The default `manager` of the systemd and shed-load actions.
pub(crate) fn default_manager() -> String {
    "system".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names_accepted() {
        for ok in [
            "worker.service",
            "nginx.service",
            "getty@tty1.service",
            "foo@.service",
            "backup.timer",
            "dev-disk-by\\x2duuid-1234.device",
            "user-1000.slice",
            "systemd-fsck@dev-sda1.service",
            "a:b_c.socket",
        ] {
            validate_unit_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn unit_names_refused() {
        let long = format!("{}.service", "a".repeat(250));
        for bad in [
            "",
            "a/b.service",
            "../x.service",
            "x..service",
            "x; rm -rf /",
            "x;rm.service",
            "$(id).service",
            "`id`.service",
            "a b.service",
            "a\tb.service",
            "a\nb.service",
            "worker",
            "worker.exe",
            ".service",
            "-.slice",
            "-x.service",
            "@x.service",
            "a@b@c.service",
            "a\\b.service",
            "a\\x2.service",
            "x|y.service",
            "x&y.service",
            "x>y.service",
            "x*.service",
            "x'y.service",
            "x\"y.service",
            "ünit.service",
            "x\0.service",
            long.as_str(),
        ] {
            assert!(validate_unit_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn containers() {
        for ok in ["web", "my_app.1", "a-b", "0123456789ab", &"f".repeat(64)] {
            validate_container(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "/web",
            "_x",
            ".x",
            "-x",
            "a/b",
            "a b",
            "$(id)",
            "x;y",
            "..",
            "a:b",
            &"a".repeat(256),
        ] {
            assert!(validate_container(bad).is_err(), "{bad:?} accepted");
        }
        assert!(is_container_id("0123456789ab"));
        assert!(!is_container_id("0123456789a"));
        assert!(!is_container_id("web"));
    }

    #[test]
    fn pids() {
        assert_eq!(validate_pid("2").unwrap(), 2);
        assert_eq!(validate_pid("4194304").unwrap(), 4_194_304);
        for bad in [
            "",
            "0",
            "1",
            "-5",
            "+5",
            "05",
            " 5",
            "5 ",
            "5x",
            "4194305",
            "99999999999999999999",
            "$(id)",
        ] {
            assert!(validate_pid(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn validators_never_panic_on_short_inputs() {
        let alphabet = ['a', '.', '\\', 'x', '1', '@', '/', 'é', '-', ' ', '0'];
        let mut buf = Vec::new();
        fn rec(alphabet: &[char], buf: &mut Vec<char>, depth: usize) {
            let s: String = buf.iter().collect();
            let _ = validate_unit_name(&s);
            let _ = validate_unit_name(&format!("{s}.service"));
            let _ = validate_container(&s);
            let _ = validate_pid(&s);
            let _ = validate_user_name(&s);
            let _ = parse_start_time(&s);
            if depth == 0 {
                return;
            }
            for c in alphabet {
                buf.push(*c);
                rec(alphabet, buf, depth - 1);
                buf.pop();
            }
        }
        rec(&alphabet, &mut buf, 4);
    }

    #[test]
    fn users_and_start_times() {
        assert!(validate_user_name("alice").is_ok());
        assert!(validate_user_name("a b").is_err());
        assert!(validate_user_name("-x").is_err());
        assert!(validate_user_name("../root").is_err());
        assert_eq!(parse_start_time("1700000000.5").unwrap(), 1_700_000_000.5);
        assert!(parse_start_time("-1").is_err());
        assert!(parse_start_time("NaN").is_err());
        assert!(parse_start_time("inf").is_err());
        assert!(parse_start_time("").is_err());
    }
}
