//! Which certificates a set of CRLs revokes, for connections that are
//! already open: the TLS handshake checks a new client against the CRLs
//! (rustls-webpki), this checks a live one again after the CRLs change.

use std::collections::HashSet;
use std::path::Path;

use rustls_pki_types::CertificateRevocationListDer;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use crate::{CertificateInfo, Error};

/// The (issuer, serial number) pairs a set of CRLs lists. The CRLs'
/// signatures are not checked here: the same files were accepted by the
/// handshake's verifier when the server loaded them.
#[derive(Clone, Debug, Default)]
pub struct RevocationList {
    revoked: HashSet<(Vec<u8>, Vec<u8>)>,
}

impl RevocationList {
    /// The entries of `crls`, read from `path` by [`crate::load_crls`].
    ///
    /// # Errors
    /// [`Error::Ca`] naming `path` for a CRL that does not parse.
    pub fn new(path: &Path, crls: &[CertificateRevocationListDer<'_>]) -> Result<Self, Error> {
        let mut revoked = HashSet::new();
        for der in crls {
            let (_, crl) =
                CertificateRevocationList::from_der(der.as_ref()).map_err(|e| Error::Ca {
                    path: path.to_owned(),
                    detail: format!("not a valid certificate revocation list: {e}"),
                })?;
            let issuer = crl.issuer().as_raw().to_vec();
            revoked.extend(
                crl.iter_revoked_certificates()
                    .map(|entry| (issuer.clone(), entry.raw_serial().to_vec())),
            );
        }
        Ok(Self { revoked })
    }

    /// Whether the list revokes `certificate` (same issuer and serial number).
    pub fn revokes(&self, certificate: &CertificateInfo) -> bool {
        if self.revoked.is_empty() {
            return false;
        }
        X509Certificate::from_der(certificate.der()).is_ok_and(|(_, parsed)| {
            self.revoked.contains(&(
                parsed.issuer().as_raw().to_vec(),
                parsed.raw_serial().to_vec(),
            ))
        })
    }

    /// How many certificates it lists.
    pub fn len(&self) -> usize {
        self.revoked.len()
    }

    /// Whether it lists none.
    pub fn is_empty(&self) -> bool {
        self.revoked.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DevPki, PkiOptions};

    #[test]
    fn a_revoked_certificate_is_found_and_another_is_not() {
        let dir = tempfile::tempdir().unwrap();
        DevPki::generate(&PkiOptions::default())
            .unwrap()
            .write(dir.path(), false)
            .unwrap();
        let ca = crate::DevCa::load(dir.path()).unwrap();
        let options = PkiOptions::default();
        let revoked = ca
            .issue("gone", vec![], crate::Usage::Client, &options)
            .unwrap();
        let kept = ca
            .issue("kept", vec![], crate::Usage::Client, &options)
            .unwrap();
        let crl = dir.path().join("crl.pem");
        ca.revoke(&crl, revoked.der(), 30).unwrap();
        let list = RevocationList::new(&crl, &crate::load_crls(&crl).unwrap()).unwrap();
        assert_eq!(list.len(), 1);
        let info = |der| CertificateInfo::from_rustls(der).unwrap();
        assert!(list.revokes(&info(revoked.der())));
        assert!(!list.revokes(&info(kept.der())));
        assert!(!RevocationList::default().revokes(&info(revoked.der())));
    }
}
