//! The TOFU check inside the rustls handshake, so no request byte reaches an
//! unverified server (nauyaca sends its whole request before it checks).
//!
//! `verify_server_cert` refuses a certificate that differs from the pin at once;
//! the pin itself is written only after the handshake signature has been
//! verified, so a peer that merely replays someone's certificate pins nothing.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use time::OffsetDateTime;

use super::{HostKey, TofuMismatch, TofuStore, Verdict};
use crate::verifier::Signatures;
use crate::{provider, CertificateInfo, Error};

/// A rustls server-certificate verifier for one `(host, port)`, backed by a store.
#[derive(Debug)]
pub struct TofuVerifier {
    store: Arc<TofuStore>,
    key: HostKey,
    signatures: Signatures,
}

impl TofuVerifier {
    /// A verifier for connections to `key`.
    pub fn new(store: Arc<TofuStore>, key: HostKey) -> Self {
        Self {
            store,
            key,
            signatures: Signatures::new(provider()),
        }
    }

    fn pin_after_signature(&self, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let info = CertificateInfo::from_rustls(cert).map_err(|_| bad_encoding())?;
        match self
            .store
            .verify_or_trust(&self.key, &info, OffsetDateTime::now_utc())
        {
            Ok(Verdict::FirstUse) => {
                tracing::info!(host = %self.key, fingerprint = %info.fingerprint(), "first use: certificate pinned");
                Ok(())
            }
            Ok(Verdict::Match { expired }) => {
                if expired {
                    tracing::warn!(host = %self.key, "pinned certificate matches but has expired");
                }
                Ok(())
            }
            Ok(Verdict::Rotated { .. }) => Ok(()),
            Ok(Verdict::Mismatch(mismatch)) => Err(other(Error::from(mismatch))),
            Err(error) => Err(other(error)),
        }
    }
}

impl ServerCertVerifier for TofuVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let info = CertificateInfo::from_rustls(end_entity).map_err(|_| bad_encoding())?;
        let refusal = self
            .store
            .check(&self.key, &info, OffsetDateTime::now_utc())
            .map_err(other)?;
        if let Some(mismatch) = refusal {
            return Err(other(Error::from(mismatch)));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let valid = self.signatures.tls12(message, cert, dss)?;
        self.pin_after_signature(cert)?;
        Ok(valid)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let valid = self.signatures.tls13(message, cert, dss)?;
        self.pin_after_signature(cert)?;
        Ok(valid)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.schemes()
    }
}

/// Finds the TOFU mismatch behind a failed handshake, if that is why it failed.
pub fn mismatch_in<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e TofuMismatch> {
    let mut current: Option<&'e (dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = current {
        if let Some(Error::TofuMismatch(mismatch)) = error.downcast_ref::<Error>() {
            return Some(mismatch);
        }
        if let Some(rustls::Error::Other(other)) = error.downcast_ref::<rustls::Error>() {
            if let Some(Error::TofuMismatch(mismatch)) = other.0.downcast_ref::<Error>() {
                return Some(mismatch);
            }
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                current = Some(inner);
                continue;
            }
        }
        current = error.source();
    }
    None
}

fn other(error: Error) -> rustls::Error {
    rustls::Error::Other(rustls::OtherError(Arc::new(error)))
}

fn bad_encoding() -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
}
