//! Who may post alerts and approve actions: a bearer token (from a file or an
//! environment variable) and/or HTTP basic auth, compared in constant time.

use subtle::ConstantTimeEq;

use std::path::Path;

use crate::error::ConfigError;

/// Where the credentials come from (`[receiver]`'s keys, see
/// `ReceiverConfig::credentials`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Sources<'a> {
    pub bearer_token_file: Option<&'a Path>,
    pub bearer_token_env: Option<&'a str>,
    pub basic_auth_username: Option<&'a str>,
    pub basic_auth_password_file: Option<&'a Path>,
}

/// The loaded credentials. Secrets live only here (never in logs, the
/// journal or `check-config` output: the config holds only their sources).
#[derive(Clone, Default)]
pub struct Auth {
    bearer: Option<Vec<u8>>,
    /// `user:password` as sent (before base64).
    basic: Option<Vec<u8>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("bearer", &self.bearer.is_some())
            .field("basic", &self.basic.is_some())
            .finish()
    }
}

fn read_secret(key: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::invalid(key, format!("cannot read {}: {e}", path.display())))?;
    let secret = text.trim_end_matches(['\n', '\r']).as_bytes().to_vec();
    if secret.is_empty() {
        return Err(ConfigError::invalid(key, format!("{} is empty", path.display())));
    }
    Ok(secret)
}

impl Auth {
    /// Reads the configured secrets.
    pub fn load(cfg: Sources<'_>) -> Result<Auth, ConfigError> {
        let mut auth = Auth::default();
        if let Some(p) = cfg.bearer_token_file {
            auth.bearer = Some(read_secret("receiver.bearer_token_file", p)?);
        }
        if let Some(var) = cfg.bearer_token_env {
            if auth.bearer.is_some() {
                return Err(ConfigError::invalid(
                    "receiver.bearer_token_env",
                    "set either bearer_token_file or bearer_token_env, not both",
                ));
            }
            let v = std::env::var(var).map_err(|_| {
                ConfigError::invalid(
                    "receiver.bearer_token_env",
                    format!("environment variable {var} is not set"),
                )
            })?;
            if v.is_empty() {
                return Err(ConfigError::invalid(
                    "receiver.bearer_token_env",
                    format!("{var} is empty"),
                ));
            }
            auth.bearer = Some(v.into_bytes());
        }
        if let (Some(user), Some(p)) = (cfg.basic_auth_username, cfg.basic_auth_password_file) {
            let pw = read_secret("receiver.basic_auth_password_file", p)?;
            let mut cred = user.as_bytes().to_vec();
            cred.push(b':');
            cred.extend(pw);
            auth.basic = Some(cred);
        }
        Ok(auth)
    }

    /// The `Authorization` value a client (the CLI) sends.
    pub fn header_value(&self) -> Option<String> {
        use base64::Engine as _;
        if let Some(t) = &self.bearer {
            return Some(format!("Bearer {}", String::from_utf8_lossy(t)));
        }
        self.basic
            .as_ref()
            .map(|c| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(c)))
    }

    pub fn required(&self) -> bool {
        self.bearer.is_some() || self.basic.is_some()
    }

    /// Checks an `Authorization` header value. With no credentials
    /// configured everything is allowed.
    pub fn check(&self, header: Option<&[u8]>) -> bool {
        if !self.required() {
            return true;
        }
        let Some(h) = header else { return false };
        if let (Some(tok), Some(given)) = (&self.bearer, strip_scheme(h, b"bearer")) {
            return ct_eq(tok, given.trim_ascii());
        }
        if let (Some(cred), Some(given)) = (&self.basic, strip_scheme(h, b"basic")) {
            use base64::Engine as _;
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(given.trim_ascii()) else {
                return false;
            };
            return ct_eq(cred, &decoded);
        }
        false
    }
}

fn strip_scheme<'a>(h: &'a [u8], scheme: &[u8]) -> Option<&'a [u8]> {
    if h.len() > scheme.len() && h[..scheme.len()].eq_ignore_ascii_case(scheme) && h[scheme.len()] == b' ' {
        Some(&h[scheme.len() + 1..])
    } else {
        None
    }
}

/// Constant-time equality. Only the (public) length of the expected secret
/// can leak: a wrong-length guess is compared against the secret itself.
fn ct_eq(expected: &[u8], given: &[u8]) -> bool {
    if expected.len() != given.len() {
        let _ = expected.ct_eq(expected);
        return false;
    }
    expected.ct_eq(given).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tok"), "s3cret\n").unwrap();
        std::fs::write(dir.path().join("pw"), "pw").unwrap();
        let (tok, pw) = (dir.path().join("tok"), dir.path().join("pw"));
        let a = Auth::load(Sources {
            bearer_token_file: Some(&tok),
            basic_auth_username: Some("am"),
            basic_auth_password_file: Some(&pw),
            ..Default::default()
        })
        .unwrap();
        assert!(a.check(Some(b"Bearer s3cret")));
        assert!(a.check(Some(b"bearer s3cret")));
        assert!(!a.check(Some(b"Bearer s3cre")));
        assert!(!a.check(Some(b"Bearer s3cret2")));
        assert!(!a.check(None));
        assert!(a.check(Some(b"Basic YW06cHc="))); // am:pw
        assert!(!a.check(Some(b"Basic YW06cHg=")));
        assert!(!a.check(Some(b"Basic !!!")));
        assert!(format!("{a:?}").contains("bearer: true") && !format!("{a:?}").contains("s3cret"));
    }
}
