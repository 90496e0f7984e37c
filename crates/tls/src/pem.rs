//! Reading PEM files: certificates, private keys, identities and trust roots,
//! with errors that name the file and say what was wrong with it.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls_pki_types::pem::SectionKind;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;

use crate::{provider, CertificateInfo, Error};

/// Largest PEM file we read; certificate chains and keys are a few KiB.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// A certificate chain and the private key that belongs to its first certificate.
#[derive(Debug)]
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Loads a certificate chain and its key, checks that they belong together and
    /// that the end-entity certificate is valid now.
    ///
    /// # Errors
    /// A file is missing or not PEM, holds the wrong kind of item, the key does
    /// not match, or the certificate is expired or not yet valid.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, Error> {
        let chain = load_certificates(cert_path)?;
        let key = load_private_key(key_path)?;
        let identity = Self::from_der(chain, key).map_err(|err| match err {
            Error::Rustls(rustls::Error::InconsistentKeys(_)) => Error::KeyMismatch {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
            },
            other => other,
        })?;
        let leaf =
            CertificateInfo::parse(identity.chain[0].as_ref(), &cert_path.display().to_string())?;
        leaf.ensure_valid_at(OffsetDateTime::now_utc(), &cert_path.display().to_string())?;
        Ok(identity)
    }

    /// Builds an identity from DER items, checking that the key matches.
    ///
    /// # Errors
    /// An empty chain, a key rustls cannot use, or a key that does not match.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, Error> {
        if chain.is_empty() {
            return Err(rustls::Error::NoCertificatesPresented.into());
        }
        CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider())?;
        Ok(Self { chain, key })
    }

    /// The chain, end-entity first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The end-entity certificate.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// A copy of the private key.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }

    pub(crate) fn certified_key(
        &self,
        provider: &CryptoProvider,
    ) -> Result<Arc<CertifiedKey>, Error> {
        Ok(Arc::new(CertifiedKey::from_der(
            self.chain.clone(),
            self.key.clone_key(),
            provider,
        )?))
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// Loads every certificate of a PEM file, in file order.
///
/// # Errors
/// The file is unreadable, not PEM, or holds no certificate.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let sections = read_sections(path)?;
    let certs: Vec<_> = sections
        .iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| CertificateDer::from(der.clone()))
        .collect();
    if certs.is_empty() {
        return Err(missing(path, "CERTIFICATE", &sections));
    }
    Ok(certs)
}

/// Loads the one private key of a PEM file (PKCS#8, PKCS#1 RSA or SEC1 EC).
///
/// # Errors
/// The file is unreadable, not PEM, holds an encrypted key, no key, or several keys.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let sections = read_sections(path)?;
    let mut keys = sections.iter().filter_map(|(kind, der)| match kind {
        SectionKind::PrivateKey => Some(PrivateKeyDer::Pkcs8(der.clone().into())),
        SectionKind::RsaPrivateKey => Some(PrivateKeyDer::Pkcs1(der.clone().into())),
        SectionKind::EcPrivateKey => Some(PrivateKeyDer::Sec1(der.clone().into())),
        _ => None,
    });
    let Some(key) = keys.next() else {
        return Err(missing(path, "PRIVATE KEY", &sections));
    };
    if keys.next().is_some() {
        return Err(Error::InvalidPem {
            path: path.to_owned(),
            detail: "more than one private key".to_owned(),
        });
    }
    Ok(key)
}

/// Loads a CA file into a root store holding exactly its certificates.
///
/// # Errors
/// The file cannot be loaded, or a certificate in it is not a usable trust anchor.
pub fn load_roots(path: &Path) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for cert in load_certificates(path)? {
        let info = CertificateInfo::parse(cert.as_ref(), &path.display().to_string())?;
        info.ensure_valid_at(OffsetDateTime::now_utc(), &path.display().to_string())?;
        roots.add(cert).map_err(|err| Error::InvalidCertificate {
            context: path.display().to_string(),
            detail: err.to_string(),
        })?;
    }
    Ok(roots)
}

fn read_sections(path: &Path) -> Result<Vec<(SectionKind, Vec<u8>)>, Error> {
    let metadata = fs::metadata(path).map_err(Error::io(path))?;
    if metadata.len() > MAX_PEM_BYTES {
        return Err(Error::InvalidPem {
            path: path.to_owned(),
            detail: format!("file is larger than {MAX_PEM_BYTES} bytes"),
        });
    }
    let bytes = fs::read(path).map_err(Error::io(path))?;
    if contains(&bytes, b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || contains(&bytes, b"Proc-Type: 4,ENCRYPTED")
    {
        return Err(Error::EncryptedKey {
            path: path.to_owned(),
        });
    }
    let mut reader: &[u8] = &bytes;
    let mut sections = Vec::new();
    loop {
        match rustls_pki_types::pem::from_buf(&mut reader) {
            Ok(Some(section)) => sections.push(section),
            Ok(None) => break,
            Err(err) => {
                return Err(Error::InvalidPem {
                    path: path.to_owned(),
                    detail: err.to_string(),
                })
            }
        }
    }
    if sections.is_empty() && !contains(&bytes, b"-----BEGIN ") {
        return Err(Error::InvalidPem {
            path: path.to_owned(),
            detail: "no PEM section (is it DER?)".to_owned(),
        });
    }
    Ok(sections)
}

fn missing(path: &Path, expected: &'static str, sections: &[(SectionKind, Vec<u8>)]) -> Error {
    Error::MissingPemItem {
        path: PathBuf::from(path),
        expected,
        found: sections
            .iter()
            .map(|(kind, _)| label(*kind).to_owned())
            .collect(),
    }
}

fn label(kind: SectionKind) -> &'static str {
    match kind {
        SectionKind::Certificate => "CERTIFICATE",
        SectionKind::PublicKey => "PUBLIC KEY",
        SectionKind::RsaPrivateKey => "RSA PRIVATE KEY",
        SectionKind::PrivateKey => "PRIVATE KEY",
        SectionKind::EcPrivateKey => "EC PRIVATE KEY",
        SectionKind::Crl => "X509 CRL",
        SectionKind::Csr => "CERTIFICATE REQUEST",
        _ => "another item",
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn arbitrary_files_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096), pem_prefix in any::<bool>()) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("input.pem");
            let mut contents = if pem_prefix { b"-----BEGIN CERTIFICATE-----\n".to_vec() } else { Vec::new() };
            contents.extend_from_slice(&bytes);
            fs::write(&path, &contents).unwrap();
            let _ = load_certificates(&path);
            let _ = load_private_key(&path);
            let _ = load_roots(&path);
        }
    }
}
