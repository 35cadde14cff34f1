//! TLS for the web layer: the rustls `ServerConfig` built from
//! `tls_server_config` (ring provider, versions, client-certificate policy)
//! and the certificate store that re-reads the certificate and key when
//! their files change. The exporter-toolkit re-reads them on every
//! handshake; here a handshake checks the files' metadata at most every
//! [`CHECK_EVERY`], so a replaced certificate is served on the next
//! connection after that without a restart. A new pair that does not load
//! (unreadable, not PEM, key not matching) keeps the old one and logs an
//! error.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme};

use super::config::{ClientAuth, TlsSettings, TlsVersion};
use crate::error::ConfigError;

/// How often a handshake looks at the certificate and key files' metadata.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the PEM certificates of `path` (`key` names the config key).
pub fn read_certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ConfigError::invalid(key, format!("reading certificates from {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ConfigError::invalid(
            key,
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    Ok(certs)
}

/// Reads the PEM private key of `path`.
pub fn read_key(key: &str, path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| ConfigError::invalid(key, format!("reading the private key from {}: {e}", path.display())))
}

/// What identifies one version of a file: a replaced file (new inode) or a
/// rewritten one (new mtime or size) differs.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

struct Current {
    key: Arc<CertifiedKey>,
    stamps: (Stamp, Stamp),
    checked: Instant,
}

/// The served certificate and key, re-read when their files change.
pub struct CertStore {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: Mutex<Current>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore").field("cert_file", &self.cert_file).finish()
    }
}

impl CertStore {
    /// Loads the pair now (an error names the key).
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<CertStore, ConfigError> {
        let stamps = (stamp(cert_file), stamp(key_file));
        let key = load_pair(cert_file, key_file)?;
        Ok(CertStore {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            current: Mutex::new(Current {
                key,
                stamps,
                checked: Instant::now(),
            }),
        })
    }

    /// The pair to serve; re-reads the files when they changed since the
    /// last look (at most every [`CHECK_EVERY`]).
    fn get(&self) -> Arc<CertifiedKey> {
        let mut cur = crate::sync::lock(&self.current);
        if cur.checked.elapsed() >= CHECK_EVERY {
            cur.checked = Instant::now();
            let stamps = (stamp(&self.cert_file), stamp(&self.key_file));
            if stamps != cur.stamps {
                // Remembered even when the load fails: a broken pair is
                // reported once, not on every handshake; fixing either file
                // changes its stamp again.
                cur.stamps = stamps;
                match load_pair(&self.cert_file, &self.key_file) {
                    Ok(key) => {
                        tracing::info!(cert_file = %self.cert_file.display(), "TLS certificate reloaded");
                        cur.key = key;
                    }
                    Err(e) => tracing::error!(
                        error = %e,
                        "new TLS certificate or key not loaded; serving the previous one"
                    ),
                }
            }
        }
        cur.key.clone()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

fn load_pair(cert_file: &Path, key_file: &Path) -> Result<Arc<CertifiedKey>, ConfigError> {
    let certs = read_certs("tls_server_config.cert_file", cert_file)?;
    let key = read_key("tls_server_config.key_file", key_file)?;
    let ck = CertifiedKey::from_der(certs, key, &provider()).map_err(|e| {
        ConfigError::invalid(
            "tls_server_config.key_file",
            format!(
                "{} does not fit the certificate in {}: {e}",
                key_file.display(),
                cert_file.display()
            ),
        )
    })?;
    Ok(Arc::new(ck))
}

/// Builds the server configuration: loads the pair and the client CAs now.
pub fn server_config(t: &TlsSettings) -> Result<Arc<ServerConfig>, ConfigError> {
    let provider = provider();
    let store = Arc::new(CertStore::load(&t.cert_file, &t.key_file)?);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (t.min_version..=t.max_version).contains(v))
    .map(|(_, p)| p)
    .collect();
    let verifier = client_verifier(t, &provider)?;
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| ConfigError::invalid("tls_server_config.min_version", e))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(store);
    // hyper is built for HTTP/1.1 only.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

fn client_verifier(
    t: &TlsSettings,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, ConfigError> {
    let any = |mandatory| -> Arc<dyn ClientCertVerifier> {
        Arc::new(AnyClientCert {
            mandatory,
            algorithms: provider.signature_verification_algorithms,
        })
    };
    let verified = |optional: bool| -> Result<Arc<dyn ClientCertVerifier>, ConfigError> {
        const KEY: &str = "tls_server_config.client_ca_file";
        let Some(ca) = &t.client_ca_file else {
            return Err(ConfigError::invalid(KEY, "needed by this client_auth_type"));
        };
        let mut roots = RootCertStore::empty();
        for cert in read_certs(KEY, ca)? {
            roots
                .add(cert)
                .map_err(|e| ConfigError::invalid(KEY, format!("{}: {e}", ca.display())))?;
        }
        let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
        let builder = if optional {
            builder.allow_unauthenticated()
        } else {
            builder
        };
        builder.build().map_err(|e| ConfigError::invalid(KEY, e))
    };
    Ok(match t.client_auth {
        ClientAuth::NoClientCert => WebPkiClientVerifier::no_client_auth(),
        ClientAuth::RequestClientCert => any(false),
        ClientAuth::RequireAnyClientCert => any(true),
        ClientAuth::VerifyClientCertIfGiven => verified(true)?,
        ClientAuth::RequireAndVerifyClientCert => verified(false)?,
    })
}

/// `RequestClientCert` / `RequireAnyClientCert`: takes any certificate
/// without checking its chain (Go's semantics), but still checks the
/// handshake signature, so the client holds the certificate's key. rustls
/// ships no such verifier, hence this one.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
