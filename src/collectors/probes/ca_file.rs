//! The verifier of an HTTPS probe's `ca_file` (and of the control
//! subcommands' `--tls.ca-file`, [`crate::client`]): webpki against the
//! file's certificates, and one case webpki refuses that curl (OpenSSL)
//! accepts, a server presenting a self-signed certificate that is itself in
//! the file.
//!
//! Why that case exists: `openssl req -x509 …`, the way operators usually
//! make a self-signed certificate, applies the config's `v3_ca` section, so
//! the certificate says `basicConstraints: CA:TRUE`. webpki refuses a CA
//! certificate as the end entity (`CaUsedAsEndEntity`), checked before it
//! looks for an issuer; OpenSSL instead trusts a certificate found in the
//! trust store as it is, and `curl --cacert c.pem` works.
//!
//! What is accepted, and why it is no weaker: only when webpki answered
//! exactly `CaUsedAsEndEntity` and the presented end-entity certificate is
//! byte-identical to one of the file's. Byte identity is pinning: the
//! operator listed that very certificate, so there is no issuer to find and
//! no path to build; the handshake's signature (checked by rustls through
//! [`ServerCertVerifier::verify_tls13_signature`] and its TLS 1.2 twin with
//! the same public key) proves the server holds its key. What a path does
//! not replace is still checked here: the validity period, the name the
//! probe connected to (subjectAltName, by rustls' own name check), and an
//! extendedKeyUsage, when present, allowing serverAuth. A CA:TRUE leaf
//! that is not in the file (signed by a listed CA, or another self-signed
//! one) still fails with webpki's reason.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ExtendedKeyPurpose};

use super::delegate::Decides;

use crate::error::ConfigError;

/// webpki over a `ca_file`, plus its own certificates as pinned leaves.
#[derive(Debug)]
pub struct CaFileVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    /// The file's certificates, DER as read.
    listed: Vec<CertificateDer<'static>>,
}

impl CaFileVerifier {
    /// Reads the CA certificates of `path` (PEM; `key` names it in errors).
    pub fn load(key: &str, path: &Path) -> Result<CaFileVerifier, ConfigError> {
        let listed = crate::web::tls::read_certs(key, path)?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in &listed {
            roots.add(cert.clone()).map_err(|e| {
                ConfigError::invalid(key, format!("{}: not a usable CA certificate: {e}", path.display()))
            })?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| ConfigError::invalid(key, format!("{}: {e}", path.display())))?;
        Ok(CaFileVerifier { webpki, listed })
    }

    /// The checks a pinned certificate still needs (see the module comment).
    fn verify_listed(
        &self,
        end_entity: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let bad = || rustls::Error::InvalidCertificate(CertificateError::BadEncoding);
        let (_, cert) = x509_parser::parse_x509_certificate(end_entity).map_err(|_| bad())?;
        let at = |t: x509_parser::time::ASN1Time| {
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(t.timestamp().max(0) as u64))
        };
        let (not_before, not_after) = (at(cert.validity().not_before), at(cert.validity().not_after));
        if now.as_secs() < not_before.as_secs() {
            return Err(CertificateError::NotValidYetContext { time: now, not_before }.into());
        }
        if now.as_secs() > not_after.as_secs() {
            return Err(CertificateError::ExpiredContext { time: now, not_after }.into());
        }
        if let Ok(Some(eku)) = cert.extended_key_usage()
            && !(eku.value.server_auth || eku.value.any)
        {
            return Err(CertificateError::InvalidPurposeContext {
                required: ExtendedKeyPurpose::ServerAuth,
                presented: presented_purposes(eku.value),
            }
            .into());
        }
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_name(&parsed, server_name)?;
        Ok(ServerCertVerified::assertion())
    }
}

/// The purposes an extendedKeyUsage allows, as rustls names them in its
/// error (id-kp-N is 1.3.6.1.5.5.7.3.N).
fn presented_purposes(eku: &x509_parser::extensions::ExtendedKeyUsage<'_>) -> Vec<ExtendedKeyPurpose> {
    let kp = |n: usize| ExtendedKeyPurpose::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, n]);
    let named = [
        (eku.client_auth, ExtendedKeyPurpose::ClientAuth),
        (eku.code_signing, kp(3)),
        (eku.email_protection, kp(4)),
        (eku.time_stamping, kp(8)),
        (eku.ocsp_signing, kp(9)),
    ];
    let other = eku.other.iter().map(|oid| {
        let arcs = oid.iter().map(|a| a.map(|n| n as usize).collect()).unwrap_or_default();
        ExtendedKeyPurpose::Other(arcs)
    });
    named
        .into_iter()
        .filter_map(|(set, p)| set.then_some(p))
        .chain(other)
        .collect()
}

/// Whether webpki refused a CA certificate presented as the end entity.
fn ca_used_as_end_entity(e: &rustls::Error) -> bool {
    match e {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
            other.0.downcast_ref::<webpki::Error>() == Some(&webpki::Error::CaUsedAsEndEntity)
        }
        _ => false,
    }
}

impl Decides for CaFileVerifier {
    fn inner(&self) -> &dyn ServerCertVerifier {
        &*self.webpki
    }

    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(e) if ca_used_as_end_entity(&e) && self.listed.iter().any(|c| c.as_ref() == end_entity.as_ref()) => {
                self.verify_listed(end_entity, server_name, now)
            }
            other => other,
        }
    }
}
