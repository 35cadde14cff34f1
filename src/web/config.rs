//! The web configuration file (`--web.config.file`) in the exporter-toolkit
//! YAML format that node_exporter, Prometheus and Alertmanager read, parsed
//! and validated once into [`WebConfig`], the values the server runs from.
//! Every error names its key (`tls_server_config.client_auth_type`, …).
//! Paths in the file are relative to the file's own folder, as in the
//! toolkit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hyper::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use crate::error::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    min_version: Option<String>,
    max_version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Accepted for compatibility; hostmedic serves HTTP/1.1 only.
    #[serde(default)]
    #[allow(dead_code)]
    http2: Option<bool>,
}

/// `tls_server_config.client_auth_type`, with Go's `crypto/tls` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    /// Asks for a certificate; accepts none, does not verify one given.
    RequestClientCert,
    /// Requires a certificate (proof of its key), does not verify its chain.
    RequireAnyClientCert,
    /// Verifies a certificate against `client_ca_file` when one is given.
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    fn parse(s: &str) -> Option<ClientAuth> {
        Some(match s {
            "" | "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::RequestClientCert,
            // "RequireClientCert" is the toolkit's old spelling, still read.
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            _ => return None,
        })
    }

    /// True when a given certificate is checked against `client_ca_file`.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

/// A TLS protocol version the toolkit names (`TLS12`, `TLS13`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    fn parse(key: &str, s: &str) -> Result<TlsVersion, ConfigError> {
        match s {
            "TLS12" => Ok(TlsVersion::Tls12),
            "TLS13" => Ok(TlsVersion::Tls13),
            "TLS10" | "TLS11" => Err(ConfigError::invalid(
                key,
                format!("{s} is not supported (rustls speaks TLS12 and TLS13 only)"),
            )),
            _ => Err(ConfigError::invalid(
                key,
                format!("unknown TLS version {s:?} (expected TLS12 or TLS13)"),
            )),
        }
    }
}

/// The validated `tls_server_config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_auth: ClientAuth,
    pub client_ca_file: Option<PathBuf>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
}

/// The validated web configuration. `Default` is no file: plain HTTP, no
/// basic auth, no extra headers.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    pub tls: Option<TlsSettings>,
    /// User → bcrypt hash (each checked to be a bcrypt hash).
    pub users: BTreeMap<String, String>,
    /// Extra response headers, from `http_server_config.headers`.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// Headers `http_server_config.headers` may set, with the values allowed
/// (empty: any). The same list as the exporter-toolkit: nothing else can be
/// configured, so hostmedic answers like the rest of the ecosystem.
const SETTABLE_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

impl WebConfig {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<WebConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        WebConfig::parse(&text, dir).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                origin: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates `text`; relative paths are taken from `dir`.
    pub fn parse(text: &str, dir: &Path) -> Result<WebConfig, ConfigError> {
        // An empty file is an empty document: everything off, as in the toolkit.
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig::default()
        } else {
            serde_path_to_error::deserialize(serde_yaml_ng::Deserializer::from_str(text)).map_err(|e| {
                let path = e.path().to_string();
                let message = if path == "." {
                    e.inner().to_string()
                } else {
                    format!("{path}: {}", e.inner())
                };
                ConfigError::Parse {
                    origin: "web config".into(),
                    message,
                }
            })?
        };
        let tls = raw
            .tls_server_config
            .map(|t| tls_settings(t, dir))
            .transpose()?
            .flatten();
        let mut users = BTreeMap::new();
        for (user, hash) in raw.basic_auth_users.unwrap_or_default() {
            let key = format!("basic_auth_users.{user}");
            if user.contains(':') {
                return Err(ConfigError::invalid(key, "a user name cannot contain ':'"));
            }
            hash.parse::<bcrypt::HashParts>()
                .map_err(|e| ConfigError::invalid(&key, format!("not a bcrypt hash: {e}")))?;
            users.insert(user, hash);
        }
        let mut headers = Vec::new();
        for (name, value) in raw.http_server_config.unwrap_or_default().headers {
            let key = format!("http_server_config.headers.{name}");
            let Some((canonical, allowed)) = SETTABLE_HEADERS.iter().find(|(h, _)| *h == name) else {
                return Err(ConfigError::invalid(
                    key,
                    format!(
                        "this header can not be configured (settable: {})",
                        SETTABLE_HEADERS.iter().map(|(h, _)| *h).collect::<Vec<_>>().join(", ")
                    ),
                ));
            };
            if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
                return Err(ConfigError::invalid(
                    key,
                    format!("expected one of {allowed:?}, got {value:?}"),
                ));
            }
            let value =
                HeaderValue::from_str(&value).map_err(|e| ConfigError::invalid(&key, format!("invalid value: {e}")))?;
            let name = HeaderName::from_bytes(canonical.as_bytes()).expect("the settable header names are valid");
            headers.push((name, value));
        }
        Ok(WebConfig { tls, users, headers })
    }
}

/// `tls_server_config` → settings; `None` when neither cert nor key is set
/// (TLS off, as in the toolkit, where such a section only disables TLS).
fn tls_settings(t: RawTls, dir: &Path) -> Result<Option<TlsSettings>, ConfigError> {
    const K: &str = "tls_server_config";
    let join = |p: PathBuf| if p.is_relative() { dir.join(p) } else { p };
    let client_auth = match t.client_auth_type.as_deref() {
        None => ClientAuth::NoClientCert,
        Some(s) => ClientAuth::parse(s).ok_or_else(|| {
            ConfigError::invalid(
                format!("{K}.client_auth_type"),
                format!(
                    "unknown value {s:?} (expected NoClientCert, RequestClientCert, RequireAnyClientCert, \
                     VerifyClientCertIfGiven or RequireAndVerifyClientCert)"
                ),
            )
        })?,
    };
    let (cert_file, key_file) = match (t.cert_file, t.key_file) {
        (None, None) => {
            if t.client_ca_file.is_some() || t.client_auth_type.is_some() {
                return Err(ConfigError::invalid(
                    format!("{K}.cert_file"),
                    "client certificate settings need cert_file and key_file (TLS)",
                ));
            }
            return Ok(None);
        }
        (Some(_), None) => return Err(ConfigError::invalid(format!("{K}.key_file"), "missing key_file")),
        (None, Some(_)) => return Err(ConfigError::invalid(format!("{K}.cert_file"), "missing cert_file")),
        (Some(c), Some(k)) => (join(c), join(k)),
    };
    let client_ca_file = t.client_ca_file.map(join);
    if client_auth.verifies() && client_ca_file.is_none() {
        return Err(ConfigError::invalid(
            format!("{K}.client_ca_file"),
            format!("client_auth_type {client_auth:?} needs client_ca_file"),
        ));
    }
    if client_ca_file.is_some() && client_auth == ClientAuth::NoClientCert {
        return Err(ConfigError::invalid(
            format!("{K}.client_auth_type"),
            "client_ca_file is set but client_auth_type is NoClientCert (client CAs configured without a client auth policy)",
        ));
    }
    let version = |key: &str, v: Option<String>, default| match v {
        None => Ok(default),
        Some(s) => TlsVersion::parse(&format!("{K}.{key}"), &s),
    };
    let min_version = version("min_version", t.min_version, TlsVersion::Tls12)?;
    let max_version = version("max_version", t.max_version, TlsVersion::Tls13)?;
    if min_version > max_version {
        return Err(ConfigError::invalid(
            format!("{K}.min_version"),
            "min_version is above max_version",
        ));
    }
    Ok(Some(TlsSettings {
        cert_file,
        key_file,
        client_auth,
        client_ca_file,
        min_version,
        max_version,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        WebConfig::parse(text, Path::new("/etc/hostmedic"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn full_file_and_relative_paths() {
        let c = WebConfig::parse(
            "tls_server_config:\n  cert_file: tls/c.pem\n  key_file: /k.pem\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  min_version: TLS13\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\nbasic_auth_users:\n  am: $2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\n",
            Path::new("/etc/hostmedic"),
        )
        .unwrap();
        let t = c.tls.unwrap();
        assert_eq!(t.cert_file, Path::new("/etc/hostmedic/tls/c.pem"));
        assert_eq!(t.key_file, Path::new("/k.pem"));
        assert_eq!(t.client_ca_file.as_deref(), Some(Path::new("/etc/hostmedic/ca.pem")));
        assert_eq!(t.client_auth, ClientAuth::RequireAndVerifyClientCert);
        assert_eq!((t.min_version, t.max_version), (TlsVersion::Tls13, TlsVersion::Tls13));
        assert_eq!(c.users.len(), 1);
        assert_eq!(c.headers[0].0.as_str(), "x-frame-options");
    }

    #[test]
    fn errors_name_their_key() {
        assert!(err("tls_server_config:\n  cert_file: a\n").contains("tls_server_config.key_file"));
        assert!(err("basic_auth_users:\n  am: plain\n").contains("basic_auth_users.am"));
        assert!(err("http_server_config:\n  headers:\n    Server: x\n").contains("headers.Server"));
        assert!(err("http_server_config:\n  headers:\n    X-Frame-Options: allow\n").contains("X-Frame-Options"));
        assert!(
            err("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS11\n").contains("min_version")
        );
        assert!(
            err("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Verify\n")
                .contains("client_auth_type")
        );
        assert!(
            err("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n")
                .contains("client_ca_file")
        );
        assert!(
            err("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n")
                .contains("client_auth_type")
        );
        let unknown = err("tls_server_config:\n  cert: a\n");
        assert!(unknown.contains("unknown field `cert`"), "{unknown}");
    }

    #[test]
    fn empty_file_is_everything_off() {
        let c = WebConfig::parse("", Path::new("/")).unwrap();
        assert!(c.tls.is_none() && c.users.is_empty() && c.headers.is_empty());
    }
}
