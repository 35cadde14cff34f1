//! The HTTP probes' client and its TLS side: a rustls verifier that wraps
//! the real one (the platform's roots, or a probe's `ca_file`:
//! [`super::ca_file`]) and keeps the earliest notAfter of the certificates
//! the server presented, for
//! `hostmedic_probe_tls_cert_not_after_timestamp_seconds`.
//!
//! The chain is recorded before the real verifier decides, so a
//! certificate that fails verification (expired, unknown issuer, wrong
//! name) still reports its expiry: that is exactly when the expiry matters,
//! and the probe's error says why verification failed.
//!
//! Why a wrapper: reqwest's own `TlsInfo` carries the leaf only, while an
//! intermediate that expires first breaks the site just the same
//! (blackbox_exporter's `probe_ssl_earliest_cert_expiry` also takes the
//! earliest over the presented chain). The verifier only sees handshakes,
//! so every run opens a fresh connection (no idle pool, no session
//! resumption); one probe every interval costs one handshake.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::delegate::{Decides, Delegating};

use crate::error::ConfigError;

/// The verifier that decides (platform roots or a `ca_file`), shared by the
/// probes that use the same roots.
pub type Roots = Arc<dyn ServerCertVerifier>;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why a probe's client could not be built. Clone: one failure to load the
/// platform's store is every platform probe's error, shown on each run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsError {
    /// No usable system trust store (e.g. no CA certificates installed).
    #[error("cannot load the system trust store: {0}")]
    TrustStore(#[source] rustls::Error),
    /// The crypto provider supports none of the safe protocol versions.
    #[error("TLS versions: {0}")]
    Versions(#[source] rustls::Error),
    /// reqwest refused the client configuration.
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] Arc<reqwest::Error>),
}

/// The platform's trust store, or why it cannot be loaded.
pub fn platform_roots() -> Result<Roots, TlsError> {
    rustls_platform_verifier::Verifier::new(provider())
        .map(|v| Arc::new(v) as Roots)
        .map_err(TlsError::TrustStore)
}

/// Only the CA certificates of `path` (PEM; `key` names it in errors),
/// and a self-signed server certificate listed there as itself
/// ([`super::ca_file`]).
pub fn ca_file_roots(key: &str, path: &Path) -> Result<Roots, ConfigError> {
    Ok(Arc::new(Delegating(super::ca_file::CaFileVerifier::load(key, path)?)))
}

/// notAfter of one DER certificate, Unix seconds.
fn not_after(der: &CertificateDer<'_>) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// Delegates every decision to `inner`; records the earliest notAfter of
/// the chains presented since the last [`ProbeClient::take_earliest_not_after`],
/// whether `inner` accepts them or not.
#[derive(Debug)]
struct Recording {
    inner: Roots,
    earliest: Mutex<Option<i64>>,
}

impl Decides for Recording {
    fn inner(&self) -> &dyn ServerCertVerifier {
        &*self.inner
    }

    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .filter_map(not_after)
            .min();
        let mut earliest = crate::sync::lock(&self.earliest);
        // A run that follows redirects may shake hands more than once.
        *earliest = match (*earliest, chain) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        drop(earliest);
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }
}

/// One HTTP probe's client. Runs must not overlap (the probe loop runs them
/// one after the other): the recorded expiry belongs to the client.
pub struct ProbeClient {
    http: reqwest::Client,
    tls: Arc<Delegating<Recording>>,
}

impl ProbeClient {
    /// A client verifying servers with `roots`.
    pub fn new(roots: Roots) -> Result<ProbeClient, TlsError> {
        crate::install_crypto_provider();
        let tls = Arc::new(Delegating(Recording {
            inner: roots,
            earliest: Mutex::new(None),
        }));
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Versions)?
            .dangerous()
            .with_custom_certificate_verifier(tls.clone())
            .with_no_client_auth();
        // A resumed session presents no certificates.
        cfg.resumption = rustls::client::Resumption::disabled();
        let http = reqwest::Client::builder()
            .user_agent(concat!("hostmedic/", env!("CARGO_PKG_VERSION")))
            // A health probe checks what this host reaches directly; a proxy
            // from the environment would turn 127.0.0.1 into someone else.
            .no_proxy()
            // Every run connects (and shakes hands) anew.
            .pool_max_idle_per_host(0)
            .tls_backend_preconfigured(cfg)
            .build()
            .map_err(|e| TlsError::HttpClient(Arc::new(e)))?;
        Ok(ProbeClient { http, tls })
    }

    /// A client on the platform's roots.
    pub fn platform() -> Result<ProbeClient, TlsError> {
        ProbeClient::new(platform_roots()?)
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The earliest notAfter recorded since the last call, and forgets it.
    pub fn take_earliest_not_after(&self) -> Option<i64> {
        crate::sync::lock(&self.tls.0.earliest).take()
    }
}
