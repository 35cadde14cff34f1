//! Redaction of text before hostmedic exports, journals or sends it
//! (incident evidence, the processes collector's `cmdline` label, the kill
//! action's messages): a log line or command line that carries a password,
//! a token or an `Authorization:` header keeps its shape but not the secret
//! (`password=[REDACTED]`). A shared leaf: it imports only `error`.
//!
//! Every pattern is a regex; when it has a group named `secret` only that
//! group is replaced, otherwise the whole match. The defaults
//! ([`DEFAULT_PATTERNS`]) cover credentials by their key (`password=`,
//! `token:`, `api_key`, `client_secret`, `DB_PASSWORD=` …, also quoted as in
//! JSON), `Authorization:` headers and bare `Bearer`/`Basic` credentials,
//! command-line flags (`--password x`), user:password in URLs, and secrets
//! recognisable by their shape (AWS access key ids, GitHub and Slack
//! tokens, JWTs, Telegram bot tokens, PEM private keys). Configured
//! patterns (`receiver.evidence.redact`) run after them.

use regex::Regex;

use crate::error::ConfigError;

/// What replaces a secret.
pub const MARKER: &str = "[REDACTED]";

/// The default patterns, in the order they run.
pub const DEFAULT_PATTERNS: &[&str] = &[
    // PEM private keys: everything from the BEGIN line (a log line rarely
    // holds the END line too).
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?P<secret>.*)",
    // Authorization / Proxy-Authorization headers, whatever the scheme.
    r#"(?i)\b(?:proxy-)?authorization["']?\s*[:=]\s*["']?(?:(?:bearer|basic|token|digest|negotiate)\s+)?(?P<secret>[^\s"',;]+)"#,
    // A bare bearer/basic credential.
    r"(?i)\b(?:bearer|basic)\s+(?P<secret>[A-Za-z0-9._~+/=-]{8,})",
    // key=value, key: value, "key": "value" for credential-like keys
    // (also with a prefix: DB_PASSWORD, github_token, aws_secret_access_key).
    r#"(?i)\b[a-z0-9_.-]*(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credentials?|session[_-]?id|cookie)["']?\s*[:=]\s*["']?(?P<secret>[^\s"'&,;]+)"#,
    // Command-line flags: --password x, --token=x, -p:x is too vague.
    r"(?i)--(?:password|passwd|token|api-key|secret|client-secret)(?:=|\s+)(?P<secret>\S+)",
    // user:password@ in a URL.
    r"(?i)\b[a-z][a-z0-9+.-]*://[^\s/:@]+:(?P<secret>[^\s/@]+)@",
    // AWS access key ids.
    r"\b(?P<secret>(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16})\b",
    // GitHub and Slack tokens.
    r"\b(?P<secret>gh[pousr]_[A-Za-z0-9]{30,})\b",
    r"\b(?P<secret>xox[abposr]-[A-Za-z0-9-]{10,})",
    // JSON web tokens.
    r"\b(?P<secret>eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})",
    // Telegram bot tokens (also inside a /bot<token>/ URL).
    r"\d{6,12}:(?P<secret>[A-Za-z0-9_-]{30,})",
];

/// The compiled patterns, defaults first.
#[derive(Debug, Clone)]
pub struct Redactor {
    patterns: Vec<Regex>,
}

impl Redactor {
    /// Compiles the defaults and `extra` (`key[i]` names a bad one).
    pub fn new(key: &str, extra: &[String]) -> Result<Redactor, ConfigError> {
        let mut patterns = Vec::with_capacity(DEFAULT_PATTERNS.len() + extra.len());
        for p in DEFAULT_PATTERNS {
            patterns.push(Regex::new(p).expect("default redaction patterns compile"));
        }
        for (i, p) in extra.iter().enumerate() {
            let k = format!("{key}[{i}]");
            if p.is_empty() {
                return Err(ConfigError::invalid(k, "must not be empty"));
            }
            let re = crate::error::compile_regex(&k, p)?;
            if re.is_match("") {
                return Err(ConfigError::invalid(k, "matches the empty string"));
            }
            patterns.push(re);
        }
        Ok(Redactor { patterns })
    }

    /// `text` with every secret replaced by [`MARKER`].
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for re in &self.patterns {
            if !re.is_match(&out) {
                continue;
            }
            let mut next = String::with_capacity(out.len());
            let mut last = 0;
            for caps in re.captures_iter(&out) {
                let m = caps
                    .name("secret")
                    .or_else(|| caps.get(0))
                    .expect("group 0 always exists");
                if m.as_str() == MARKER || m.is_empty() {
                    continue;
                }
                next.push_str(&out[last..m.start()]);
                next.push_str(MARKER);
                last = m.end();
            }
            next.push_str(&out[last..]);
            out = next;
        }
        out
    }
}

/// The default patterns compiled once, for messages built where no
/// configuration is at hand (the kill action's, the crash recovery's).
pub fn defaults() -> &'static Redactor {
    static DEFAULTS: std::sync::LazyLock<Redactor> = std::sync::LazyLock::new(Redactor::default);
    &DEFAULTS
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new("redact", &[]).expect("defaults compile")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (input, the secret that must be gone, what must stay).
    const CORPUS: &[(&str, &str, &str)] = &[
        (
            "connecting with password=hunter2 to db",
            "hunter2",
            "password=[REDACTED] to db",
        ),
        (
            "DB_PASSWORD=s3cr3t-value ./run",
            "s3cr3t-value",
            "DB_PASSWORD=[REDACTED] ./run",
        ),
        ("token: abcdef123456", "abcdef123456", "token: [REDACTED]"),
        (
            r#"{"api_key": "k-98765zyx", "user": "bob"}"#,
            "k-98765zyx",
            r#""user": "bob""#,
        ),
        ("apikey=AbC123xyz&x=1", "AbC123xyz", "&x=1"),
        ("client_secret=oh-no-42", "oh-no-42", "client_secret=[REDACTED]"),
        (
            "Authorization: Bearer eyJhbGciOi.abc",
            "eyJhbGciOi.abc",
            "Authorization: Bearer [REDACTED]",
        ),
        (
            "authorization: Basic dXNlcjpwYXNz",
            "dXNlcjpwYXNz",
            "authorization: Basic [REDACTED]",
        ),
        (
            "Proxy-Authorization: Digest zzzsecretzzz",
            "zzzsecretzzz",
            "Proxy-Authorization",
        ),
        (
            "curl -H 'Authorization: token ghs_abcdef'",
            "ghs_abcdef",
            "Authorization: token [REDACTED]",
        ),
        (
            "sent Bearer abcdefghij0123456789 upstream",
            "abcdefghij0123456789",
            "Bearer [REDACTED] upstream",
        ),
        (
            "fetch https://alice:pa55w0rd@git.example.com/repo.git",
            "pa55w0rd",
            "alice:[REDACTED]@git.example.com",
        ),
        (
            "mysql://root:toor@127.0.0.1:3306/app",
            "toor@",
            "root:[REDACTED]@127.0.0.1",
        ),
        (
            "key id AKIAIOSFODNN7EXAMPLE in use",
            "AKIAIOSFODNN7EXAMPLE",
            "key id [REDACTED] in use",
        ),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI",
            "aws_secret_access_key = [REDACTED]",
        ),
        (
            "using ghp_0123456789abcdefghijABCDEFGHIJ012345",
            "ghp_0123456789",
            "using [REDACTED]",
        ),
        (
            "slack xoxb-123456789012-abcdefghij",
            "xoxb-123456789012",
            "slack [REDACTED]",
        ),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U ok",
            "dozjgNryP4J3",
            "jwt [REDACTED] ok",
        ),
        (
            "GET /bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage",
            "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
            "/bot123456789:[REDACTED]/sendMessage",
        ),
        (
            "worker --password hunter22 --verbose",
            "hunter22",
            "--password [REDACTED] --verbose",
        ),
        ("worker --token=zzz999", "zzz999", "--token=[REDACTED]"),
        (
            "-----BEGIN RSA PRIVATE KEY-----MIIEpAIBAAKCAQEA",
            "MIIEpAIBAAKCAQEA",
            "-----BEGIN RSA PRIVATE KEY-----[REDACTED]",
        ),
        ("session_id=0a1b2c3d4e", "0a1b2c3d4e", "session_id=[REDACTED]"),
    ];

    /// Lines that carry no secret come through unchanged.
    const CLEAN: &[&str] = &[
        "ModuleNotFoundError: No module named 'feeds'",
        "worker.service: Main process exited, code=exited, status=3/NOTPRESENT",
        "health check failed: feed down (HTTP 503)",
        "tokens processed: 1200",
        "Size must be less than or equal to 2147483648",
        "GET /healthz 200 12ms",
        "2026-12-01T12:00:00+0000 host run.sh[42]: starting",
    ];

    #[test]
    fn corpus_secrets_are_gone_and_shape_stays() {
        let r = Redactor::default();
        for (input, secret, kept) in CORPUS {
            let out = r.redact(input);
            assert!(!out.contains(secret), "{input:?} → {out:?} still holds {secret:?}");
            assert!(out.contains(MARKER), "{input:?} → {out:?}");
            assert!(out.contains(kept), "{input:?} → {out:?} lost {kept:?}");
        }
        for line in CLEAN {
            assert_eq!(r.redact(line), *line);
        }
        // Idempotent: redacting again changes nothing.
        for (input, _, _) in CORPUS {
            let once = r.redact(input);
            assert_eq!(r.redact(&once), once, "{input}");
        }
    }

    #[test]
    fn configured_patterns_with_and_without_a_secret_group() {
        let r = Redactor::new(
            "receiver.evidence.redact",
            &["customer-\\d{6}".to_string(), "pin (?P<secret>\\d{4})".to_string()],
        )
        .unwrap();
        assert_eq!(r.redact("order for customer-123456"), "order for [REDACTED]");
        assert_eq!(r.redact("pin 1234 entered"), "pin [REDACTED] entered");
        let e = Redactor::new("k", &["a*".to_string()]).unwrap_err().to_string();
        assert!(e.contains("k[0]") && e.contains("empty"), "{e}");
    }
}
