//! The client side of the control subcommands (`approve`, `clear-hold`):
//! reaches the running hostmedic over plain HTTP or TLS (its CA, an optional
//! client certificate) with the receiver's credentials or basic auth for the
//! web layer. Defaults come from the same files the server reads: the
//! listen address from the config, https and the served certificate (as the
//! CA to trust) from `--web.config.file`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::collectors::probes::ca_file::CaFileVerifier;
use crate::collectors::probes::delegate::Delegating;
use crate::config::Config;
use crate::web::WebConfig;
use crate::web::tls::{read_certs, read_key};

/// Flags of the control subcommands.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientArgs {
    /// Base URL of the running hostmedic (default: `web.listen_address`,
    /// https when `--web.config.file` turns TLS on).
    #[arg(long)]
    pub url: Option<String>,
    /// CA certificate(s) to trust for the server (PEM). Default with TLS on
    /// in `--web.config.file`: its `cert_file`.
    #[arg(long = "tls.ca-file")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for `client_auth_type` policies that ask for one.
    #[arg(long = "tls.cert-file", requires = "key_file")]
    pub cert_file: Option<PathBuf>,
    /// Private key (PEM) of `--tls.cert-file`.
    #[arg(long = "tls.key-file", requires = "cert_file")]
    pub key_file: Option<PathBuf>,
    /// Basic-auth user of the web config's `basic_auth_users`.
    #[arg(long = "basic-auth.username", requires = "password_file")]
    pub username: Option<String>,
    /// File holding that user's password (a trailing newline is ignored).
    #[arg(long = "basic-auth.password-file", requires = "username")]
    pub password_file: Option<PathBuf>,
}

/// A ready client for one control request.
pub struct Control {
    base: String,
    client: reqwest::Client,
    authorization: Option<String>,
}

impl Control {
    /// Builds the client from the config, the web config and the flags.
    pub fn new(cfg: &Config, web_config: Option<&Path>, args: &ClientArgs) -> anyhow::Result<Control> {
        let web = web_config
            .map(WebConfig::load)
            .transpose()
            .context("reading --web.config.file")?
            .unwrap_or_default();
        let base = match &args.url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => {
                let mut a = cfg.web.listen_address;
                if a.ip().is_unspecified() {
                    a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                let scheme = if web.tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{a}")
            }
        };
        let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30));
        if base.starts_with("https://") {
            let ca = args
                .ca_file
                .as_deref()
                .map(|p| ("--tls.ca-file", p))
                .or_else(|| {
                    web.tls
                        .as_ref()
                        .map(|t| ("tls_server_config.cert_file", t.cert_file.as_path()))
                })
                .context("an https URL needs --tls.ca-file (or --web.config.file with TLS on)")?;
            builder = builder.use_preconfigured_tls(tls_client(ca, args)?);
        }
        let authorization = match (&args.username, &args.password_file) {
            (Some(user), Some(file)) => {
                use base64::Engine as _;
                let pw = std::fs::read_to_string(file)
                    .with_context(|| format!("reading --basic-auth.password-file {}", file.display()))?;
                let cred = format!("{user}:{}", pw.trim_end_matches(['\n', '\r']));
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(cred)
                ))
            }
            _ => crate::receiver::auth::Auth::load(cfg.receiver.credentials())?.header_value(),
        };
        Ok(Control {
            base,
            client: builder.build().context("building the HTTP client")?,
            authorization,
        })
    }

    /// POSTs to `path`; the answer's status and body.
    pub async fn post(&self, path: &str) -> anyhow::Result<(reqwest::StatusCode, String)> {
        let actor = format!("cli:{}", user_name());
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("x-hostmedic-actor", actor);
        if let Some(h) = &self.authorization {
            req = req.header(reqwest::header::AUTHORIZATION, h);
        }
        let url = format!("{}{path}", self.base);
        let r = req.send().await.with_context(|| format!("POST {url}"))?;
        let status = r.status();
        Ok((status, r.text().await.unwrap_or_default()))
    }
}

/// Who runs the CLI, for the journal's "approved by": `$USER`, else the
/// name of the real uid in the passwd file ([`crate::users`]), else the uid itself.
fn user_name() -> String {
    if let Some(u) = std::env::var("USER").ok().filter(|u| !u.is_empty()) {
        return u;
    }
    let users = crate::users::Users::load(std::path::Path::new(crate::users::PASSWD_FILE));
    users.label(nix::unistd::getuid().as_raw())
}

/// The rustls client configuration: `ca` as the only roots (the flag or
/// key named first), the client certificate when given. The verifier is the
/// probes' `ca_file` one, so a server's own self-signed certificate made
/// with `openssl req -x509` (CA:TRUE) is trusted as `curl --cacert` trusts
/// it ([`crate::collectors::probes::ca_file`]).
fn tls_client((key, ca): (&str, &Path), args: &ClientArgs) -> anyhow::Result<rustls::ClientConfig> {
    let verifier = CaFileVerifier::load(key, ca)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Delegating(verifier)));
    let cfg = match (&args.cert_file, &args.key_file) {
        (Some(c), Some(k)) => builder
            .with_client_auth_cert(read_certs("--tls.cert-file", c)?, read_key("--tls.key-file", k)?)
            .context("--tls.cert-file / --tls.key-file")?,
        _ => builder.with_no_client_auth(),
    };
    Ok(cfg)
}
