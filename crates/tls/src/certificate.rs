//! What a certificate says, read with x509-parser: the facts a user or a log
//! needs after a handshake (fingerprint, names, validity, key type).

use std::fmt;
use std::net::IpAddr;

use rustls_pki_types::CertificateDer;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::{Error, Fingerprint};

/// The parsed facts of one X.509 certificate.
#[derive(Clone, Debug)]
pub struct CertificateInfo {
    der: Vec<u8>,
    fingerprint: Fingerprint,
    subject: String,
    issuer: String,
    common_name: Option<String>,
    subject_alt_names: Vec<SubjectAltName>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    key_algorithm: KeyAlgorithm,
    serial: String,
    version: u32,
    is_ca: bool,
    path_len: Option<u32>,
    key_usage: Vec<&'static str>,
    extended_key_usage: Vec<String>,
}

/// One subjectAltName entry.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubjectAltName {
    /// `DNS:` name.
    Dns(String),
    /// `IP:` address.
    Ip(IpAddr),
    /// `email:` address.
    Email(String),
    /// `URI:`.
    Uri(String),
    /// Any other kind, described.
    Other(String),
}

/// The public key's algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// ECDSA on P-256.
    EcdsaP256,
    /// ECDSA on P-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
    /// RSA with this modulus size in bits.
    Rsa {
        /// Modulus size.
        bits: usize,
    },
    /// Anything else, by OID.
    Other(String),
}

/// Where `now` falls in a certificate's validity period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// Inside the period.
    Valid,
    /// Before not-before.
    NotYetValid,
    /// After not-after.
    Expired,
}

impl CertificateInfo {
    /// Parses a DER certificate. `context` names it in errors (a file name, "peer").
    ///
    /// # Errors
    /// [`Error::InvalidCertificate`] when the bytes are not one X.509 certificate.
    pub fn parse(der: &[u8], context: &str) -> Result<Self, Error> {
        let invalid = |detail: String| Error::InvalidCertificate {
            context: context.to_owned(),
            detail,
        };
        let (rest, cert) = X509Certificate::from_der(der).map_err(|e| invalid(e.to_string()))?;
        if !rest.is_empty() {
            return Err(invalid(format!("{} trailing bytes", rest.len())));
        }
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        let subject_alt_names = match cert.subject_alternative_name() {
            Ok(Some(ext)) => ext.value.general_names.iter().map(san_of).collect(),
            Ok(None) => Vec::new(),
            Err(e) => return Err(invalid(format!("subjectAltName: {e}"))),
        };
        Ok(Self {
            der: der.to_vec(),
            fingerprint: Fingerprint::of_der(der),
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            common_name,
            subject_alt_names,
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            key_algorithm: key_algorithm_of(&cert),
            serial: cert.raw_serial_as_string(),
            version: cert.version().0 + 1,
            is_ca: cert.is_ca(),
            path_len: match cert.basic_constraints() {
                Ok(Some(ext)) => ext.value.path_len_constraint,
                Ok(None) => None,
                Err(e) => return Err(invalid(format!("basicConstraints: {e}"))),
            },
            key_usage: match cert.key_usage() {
                Ok(Some(ext)) => key_usage_names(ext.value),
                Ok(None) => Vec::new(),
                Err(e) => return Err(invalid(format!("keyUsage: {e}"))),
            },
            extended_key_usage: match cert.extended_key_usage() {
                Ok(Some(ext)) => extended_key_usage_names(ext.value),
                Ok(None) => Vec::new(),
                Err(e) => return Err(invalid(format!("extendedKeyUsage: {e}"))),
            },
        })
    }

    /// Parses the certificate a rustls connection received.
    ///
    /// # Errors
    /// As [`CertificateInfo::parse`].
    pub fn from_rustls(der: &CertificateDer<'_>) -> Result<Self, Error> {
        Self::parse(der.as_ref(), "peer certificate")
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// SHA-256 of the DER encoding.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The subject distinguished name, as text.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The issuer distinguished name, as text.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The first subject common name, if any.
    pub fn common_name(&self) -> Option<&str> {
        self.common_name.as_deref()
    }

    /// The subjectAltName entries in certificate order.
    pub fn subject_alt_names(&self) -> &[SubjectAltName] {
        &self.subject_alt_names
    }

    /// Start of validity.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// End of validity.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The public key's algorithm.
    pub fn key_algorithm(&self) -> &KeyAlgorithm {
        &self.key_algorithm
    }

    /// Serial number as colon-separated hex.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// X.509 version (1, 2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Whether basicConstraints marks this as a CA.
    pub fn is_ca(&self) -> bool {
        self.is_ca
    }

    /// basicConstraints' path length limit of a CA, if any.
    pub fn path_len(&self) -> Option<u32> {
        self.path_len
    }

    /// The keyUsage bits set, by their RFC 5280 names (`digitalSignature`,
    /// `keyCertSign`, …); empty without the extension.
    pub fn key_usage(&self) -> &[&'static str] {
        &self.key_usage
    }

    /// The extendedKeyUsage purposes (`serverAuth`, `clientAuth`, …; other
    /// purposes by OID); empty without the extension.
    pub fn extended_key_usage(&self) -> &[String] {
        &self.extended_key_usage
    }

    /// Where `now` falls in the validity period.
    pub fn validity_at(&self, now: OffsetDateTime) -> Validity {
        if now < self.not_before {
            Validity::NotYetValid
        } else if now > self.not_after {
            Validity::Expired
        } else {
            Validity::Valid
        }
    }

    /// Fails with [`Error::CertificateNotValidNow`] unless valid at `now`.
    ///
    /// # Errors
    /// When the certificate is expired or not yet valid.
    pub fn ensure_valid_at(&self, now: OffsetDateTime, context: &str) -> Result<(), Error> {
        let state = match self.validity_at(now) {
            Validity::Valid => return Ok(()),
            Validity::Expired => "expired",
            Validity::NotYetValid => "not yet valid",
        };
        Err(Error::CertificateNotValidNow {
            context: context.to_owned(),
            state,
            not_before: rfc3339(self.not_before),
            not_after: rfc3339(self.not_after),
        })
    }
}

impl fmt::Display for SubjectAltName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(name) => write!(f, "DNS:{name}"),
            Self::Ip(ip) => write!(f, "IP:{ip}"),
            Self::Email(email) => write!(f, "email:{email}"),
            Self::Uri(uri) => write!(f, "URI:{uri}"),
            Self::Other(other) => f.write_str(other),
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EcdsaP256 => f.write_str("ECDSA P-256"),
            Self::EcdsaP384 => f.write_str("ECDSA P-384"),
            Self::Ed25519 => f.write_str("Ed25519"),
            Self::Rsa { bits } => write!(f, "RSA-{bits}"),
            Self::Other(oid) => write!(f, "other ({oid})"),
        }
    }
}

/// Formats a timestamp as RFC 3339 (UTC), for messages and exports.
pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

fn key_usage_names(usage: &x509_parser::extensions::KeyUsage) -> Vec<&'static str> {
    [
        (usage.digital_signature(), "digitalSignature"),
        (usage.non_repudiation(), "nonRepudiation"),
        (usage.key_encipherment(), "keyEncipherment"),
        (usage.data_encipherment(), "dataEncipherment"),
        (usage.key_agreement(), "keyAgreement"),
        (usage.key_cert_sign(), "keyCertSign"),
        (usage.crl_sign(), "cRLSign"),
        (usage.encipher_only(), "encipherOnly"),
        (usage.decipher_only(), "decipherOnly"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect()
}

fn extended_key_usage_names(usage: &x509_parser::extensions::ExtendedKeyUsage<'_>) -> Vec<String> {
    [
        (usage.any, "anyExtendedKeyUsage"),
        (usage.server_auth, "serverAuth"),
        (usage.client_auth, "clientAuth"),
        (usage.code_signing, "codeSigning"),
        (usage.email_protection, "emailProtection"),
        (usage.time_stamping, "timeStamping"),
        (usage.ocsp_signing, "OCSPSigning"),
    ]
    .into_iter()
    .filter(|(set, _)| *set)
    .map(|(_, name)| name.to_owned())
    .chain(usage.other.iter().map(ToString::to_string))
    .collect()
}

fn san_of(name: &GeneralName<'_>) -> SubjectAltName {
    match name {
        GeneralName::DNSName(dns) => SubjectAltName::Dns((*dns).to_owned()),
        GeneralName::RFC822Name(email) => SubjectAltName::Email((*email).to_owned()),
        GeneralName::URI(uri) => SubjectAltName::Uri((*uri).to_owned()),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => SubjectAltName::Ip(IpAddr::from(
                <[u8; 4]>::try_from(*bytes).unwrap_or_default(),
            )),
            16 => SubjectAltName::Ip(IpAddr::from(
                <[u8; 16]>::try_from(*bytes).unwrap_or_default(),
            )),
            _ => SubjectAltName::Other(format!("IP:<{} bytes>", bytes.len())),
        },
        other => SubjectAltName::Other(format!("{other:?}")),
    }
}

fn key_algorithm_of(cert: &X509Certificate<'_>) -> KeyAlgorithm {
    const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
    const P256: &str = "1.2.840.10045.3.1.7";
    const P384: &str = "1.3.132.0.34";
    const ED25519: &str = "1.3.101.112";
    const RSA: &str = "1.2.840.113549.1.1.1";

    let spki = cert.public_key();
    let oid = spki.algorithm.algorithm.to_id_string();
    match oid.as_str() {
        ED25519 => KeyAlgorithm::Ed25519,
        RSA => KeyAlgorithm::Rsa {
            bits: spki.parsed().map(|key| key.key_size()).unwrap_or(0),
        },
        EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|params| params.as_oid().ok())
                .map(|curve| curve.to_id_string());
            match curve.as_deref() {
                Some(P256) => KeyAlgorithm::EcdsaP256,
                Some(P384) => KeyAlgorithm::EcdsaP384,
                Some(other) => KeyAlgorithm::Other(format!("EC curve {other}")),
                None => KeyAlgorithm::Other("EC without curve".to_owned()),
            }
        }
        _ => KeyAlgorithm::Other(oid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_generated_certificate_reads_back() {
        let pki = crate::DevPki::generate(&crate::PkiOptions::default()).unwrap();
        let info = CertificateInfo::parse(pki.server.der().as_ref(), "server").unwrap();
        assert_eq!(info.common_name(), Some("localhost"));
        assert_eq!(info.key_algorithm(), &KeyAlgorithm::EcdsaP256);
        assert_eq!(info.validity_at(OffsetDateTime::now_utc()), Validity::Valid);
        assert!(!info.is_ca());
        assert!(CertificateInfo::parse(pki.ca.der().as_ref(), "ca")
            .unwrap()
            .is_ca());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = CertificateInfo::parse(&bytes, "fuzz");
        }

        #[test]
        fn corrupting_a_certificate_never_panics(index in 0usize..600, byte in any::<u8>()) {
            let pki = crate::DevPki::generate(&crate::PkiOptions::default()).unwrap();
            let mut der = pki.server.der().to_vec();
            let index = index % der.len();
            der[index] = byte;
            let _ = CertificateInfo::parse(&der, "fuzz");
            let _ = CertificateInfo::parse(&der[..index], "fuzz");
        }
    }
}
