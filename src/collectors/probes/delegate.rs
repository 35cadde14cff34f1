//! The rustls [`ServerCertVerifier`] methods the probes' verifiers hand on
//! unchanged, written once: [`super::ca_file`] (webpki plus pinned leaves)
//! and [`super::tls`] (recording the chain's expiry) each decide
//! `verify_server_cert` themselves and leave the handshake signatures, the
//! signature schemes and the root hints to the verifier they wrap.
//!
//! Why a wrapper type: rustls' trait is foreign, so a blanket
//! `impl<T: Decides> ServerCertVerifier for T` is refused (orphan rule);
//! [`Delegating`] is the local type that carries the impl.

use std::fmt::Debug;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// A verifier that decides the server's certificate itself and delegates
/// everything else to [`Decides::inner`].
pub trait Decides: Debug + Send + Sync {
    /// The verifier the signature checks, schemes and root hints come from.
    fn inner(&self) -> &dyn ServerCertVerifier;

    /// The decision on the presented chain, as
    /// [`ServerCertVerifier::verify_server_cert`].
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error>;
}

/// `D` as a rustls verifier.
#[derive(Debug)]
pub struct Delegating<D>(pub D);

impl<D: Decides> ServerCertVerifier for Delegating<D> {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.inner().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.inner().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.inner().supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.0.inner().root_hint_subjects()
    }
}
