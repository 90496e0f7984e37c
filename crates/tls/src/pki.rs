//! Development PKI with rcgen: a CA, a server and a client certificate, and
//! self-signed certificates, written in the tlslp reference's `certificates/`
//! layout (`../shared/spec/tlslp.md` §10) so one directory serves our programs
//! and the reference tools alike.
//!
//! Unlike the reference's `make certs` (defect D6) the client certificate is
//! X.509 v3 with extendedKeyUsage clientAuth, which rustls requires.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, RsaKeySize,
};
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

use crate::files::{create_private_dir, write_file, FileMode};
use crate::{Error, Identity};

/// File names of the tlslp reference's `certificates/` directory.
pub mod layout {
    /// CA certificate.
    pub const CA_CERT: &str = "ca_cert.pem";
    /// CA private key.
    pub const CA_KEY: &str = "ca_key.pem";
    /// Server certificate.
    pub const SERVER_CERT: &str = "server-cert.pem";
    /// Server private key.
    pub const SERVER_KEY: &str = "server-key.pem";
    /// Client certificate.
    pub const CLIENT_CERT: &str = "client_cert.pem";
    /// Client private key (the reference names it for its EC key type).
    pub const CLIENT_KEY: &str = "ec_private_key.pem";
}

/// The key algorithm of generated certificates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyType {
    /// ECDSA on P-256 with SHA-256 (default: small and fast).
    #[default]
    EcdsaP256,
    /// Ed25519.
    Ed25519,
    /// RSA-2048 with SHA-256, for peers that need RSA.
    Rsa2048,
}

/// What a generated certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// TLS server (extendedKeyUsage serverAuth).
    Server,
    /// TLS client (extendedKeyUsage clientAuth).
    Client,
    /// Either role (both purposes), e.g. a Gemini capsule's self-signed certificate.
    ServerAndClient,
}

/// Options for [`DevPki::generate`].
#[derive(Clone, Debug)]
pub struct PkiOptions {
    key_type: KeyType,
    ca_days: u32,
    leaf_days: u32,
    server_names: Vec<String>,
    client_name: String,
}

impl Default for PkiOptions {
    fn default() -> Self {
        Self {
            key_type: KeyType::EcdsaP256,
            ca_days: 3650,
            leaf_days: 365,
            server_names: Vec::new(),
            client_name: "client".to_owned(),
        }
    }
}

impl PkiOptions {
    /// Key algorithm of every key. Default ECDSA P-256.
    pub fn key_type(&mut self, key_type: KeyType) -> &mut Self {
        self.key_type = key_type;
        self
    }

    /// Days the CA is valid. Default 3650 (as the reference).
    pub fn ca_days(&mut self, days: u32) -> &mut Self {
        self.ca_days = days;
        self
    }

    /// Days the server and client certificates are valid. Default 365 (as the reference).
    pub fn leaf_days(&mut self, days: u32) -> &mut Self {
        self.leaf_days = days;
        self
    }

    /// Extra server names (DNS names or IP addresses) beside localhost, 127.0.0.1 and ::1.
    pub fn server_names(&mut self, names: impl IntoIterator<Item = String>) -> &mut Self {
        self.server_names.extend(names);
        self
    }

    /// Common name of the client certificate. Default `client`.
    pub fn client_name(&mut self, name: impl Into<String>) -> &mut Self {
        self.client_name = name.into();
        self
    }
}

/// A generated certificate with its private key.
#[derive(Clone)]
pub struct Issued {
    der: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
    key_der: Vec<u8>,
}

/// A CA with a server and a client certificate it signed.
#[derive(Clone, Debug)]
pub struct DevPki {
    /// The CA.
    pub ca: Issued,
    /// The server certificate (SANs localhost, 127.0.0.1, ::1 and the extra names).
    pub server: Issued,
    /// The client certificate (clientAuth).
    pub client: Issued,
}

impl DevPki {
    /// Generates a fresh CA, server and client certificate.
    ///
    /// # Errors
    /// [`Error::Generate`] when a name is invalid or key generation fails.
    pub fn generate(options: &PkiOptions) -> Result<Self, Error> {
        let now = OffsetDateTime::now_utc();
        let ca_key = generate_key(options.key_type)?;
        let mut ca_params = CertificateParams::default();
        // A name of its own per CA (from its key), so two dev CAs never share a
        // subject: a certificate from the other one is then "unknown issuer",
        // not a signature failure against a same-named anchor.
        let ca_id = crate::Fingerprint::of_der(ca_key.public_key_raw()).short();
        ca_params.distinguished_name = name(&format!("Tessera Dev CA {}", &ca_id[..8]));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut ca_params, now, options.ca_days);
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca = Issued::new(ca_cert.der().clone(), ca_cert.pem(), &ca_key);
        let issuer = Issuer::new(ca_params, ca_key);

        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        for extra in &options.server_names {
            if !names.contains(extra) {
                names.push(extra.clone());
            }
        }
        let server = issue_leaf(
            "localhost",
            names,
            Usage::Server,
            options,
            now,
            Some(&issuer),
        )?;
        let client = issue_leaf(
            &options.client_name,
            Vec::new(),
            Usage::Client,
            options,
            now,
            Some(&issuer),
        )?;
        Ok(Self { ca, server, client })
    }

    /// Writes the six PEM files into `dir` (created 0700 if missing), keys 0600.
    /// Returns the paths written.
    ///
    /// # Errors
    /// [`Error::WouldOverwrite`] if a file exists and `overwrite` is false (nothing is
    /// written then); [`Error::Io`] naming the file.
    pub fn write(&self, dir: &Path, overwrite: bool) -> Result<Vec<PathBuf>, Error> {
        create_private_dir(dir)?;
        let files = [
            (
                layout::CA_CERT,
                self.ca.cert_pem.as_bytes(),
                FileMode::Public,
            ),
            (layout::CA_KEY, self.ca.key_pem.as_bytes(), FileMode::Secret),
            (
                layout::SERVER_CERT,
                self.server.cert_pem.as_bytes(),
                FileMode::Public,
            ),
            (
                layout::SERVER_KEY,
                self.server.key_pem.as_bytes(),
                FileMode::Secret,
            ),
            (
                layout::CLIENT_CERT,
                self.client.cert_pem.as_bytes(),
                FileMode::Public,
            ),
            (
                layout::CLIENT_KEY,
                self.client.key_pem.as_bytes(),
                FileMode::Secret,
            ),
        ];
        if !overwrite {
            if let Some((name, _, _)) = files.iter().find(|(name, _, _)| dir.join(name).exists()) {
                return Err(Error::WouldOverwrite {
                    path: dir.join(name),
                });
            }
        }
        files
            .iter()
            .map(|(name, contents, mode)| {
                let path = dir.join(name);
                write_file(&path, contents, *mode, overwrite).map(|()| path)
            })
            .collect()
    }

    /// A root store trusting only this CA.
    ///
    /// # Errors
    /// Never for a generated CA; typed for symmetry with [`crate::load_roots`].
    pub fn roots(&self) -> Result<RootCertStore, Error> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der.clone())?;
        Ok(roots)
    }
}

/// Generates a self-signed certificate for `common_name` (also its first SAN) plus `names`.
///
/// # Errors
/// [`Error::Generate`] when a name is invalid or key generation fails.
pub fn self_signed(
    common_name: &str,
    names: &[String],
    usage: Usage,
    key_type: KeyType,
    days: u32,
) -> Result<Issued, Error> {
    let mut options = PkiOptions::default();
    options.key_type(key_type).leaf_days(days);
    let mut all = vec![common_name.to_owned()];
    all.extend(names.iter().filter(|n| *n != common_name).cloned());
    issue_leaf(
        common_name,
        all,
        usage,
        &options,
        OffsetDateTime::now_utc(),
        None,
    )
}

impl Issued {
    fn new(der: CertificateDer<'static>, cert_pem: String, key: &KeyPair) -> Self {
        Self {
            der,
            cert_pem,
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }

    /// The certificate, DER.
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The certificate and its key as a TLS identity.
    ///
    /// # Errors
    /// Only if rustls cannot use the generated key (not expected).
    pub fn identity(&self) -> Result<Identity, Error> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        Identity::from_der(vec![self.der.clone()], key)
    }

    /// Writes the certificate (0644) and key (0600).
    ///
    /// # Errors
    /// As [`write_file`].
    pub fn write(&self, cert_path: &Path, key_path: &Path, overwrite: bool) -> Result<(), Error> {
        if !overwrite {
            for path in [cert_path, key_path] {
                if path.exists() {
                    return Err(Error::WouldOverwrite {
                        path: path.to_owned(),
                    });
                }
            }
        }
        write_file(
            cert_path,
            self.cert_pem.as_bytes(),
            FileMode::Public,
            overwrite,
        )?;
        write_file(
            key_path,
            self.key_pem.as_bytes(),
            FileMode::Secret,
            overwrite,
        )
    }
}

impl fmt::Debug for Issued {
    /// Never prints the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field(
                "fingerprint",
                &crate::Fingerprint::of_der(self.der.as_ref()),
            )
            .finish_non_exhaustive()
    }
}

impl FromStr for KeyType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "ecdsa" | "ecdsa-p256" | "p256" | "p-256" => Ok(Self::EcdsaP256),
            "ed25519" => Ok(Self::Ed25519),
            "rsa" | "rsa2048" | "rsa-2048" => Ok(Self::Rsa2048),
            _ => Err(format!(
                "unknown key type {text:?}: use ecdsa-p256, ed25519 or rsa-2048"
            )),
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::Ed25519 => "ed25519",
            Self::Rsa2048 => "rsa-2048",
        })
    }
}

pub(crate) fn issue_leaf(
    common_name: &str,
    names: Vec<String>,
    usage: Usage,
    options: &PkiOptions,
    now: OffsetDateTime,
    issuer: Option<&Issuer<'_, KeyPair>>,
) -> Result<Issued, Error> {
    let key = generate_key(options.key_type)?;
    let mut params = CertificateParams::new(names)?;
    params.distinguished_name = name(common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if options.key_type == KeyType::Rsa2048 {
        params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    params.extended_key_usages = match usage {
        Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
        Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        Usage::ServerAndClient => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    };
    params.use_authority_key_identifier_extension = issuer.is_some();
    set_validity(&mut params, now, options.leaf_days);
    let cert = match issuer {
        Some(issuer) => params.signed_by(&key, issuer)?,
        None => params.self_signed(&key)?,
    };
    Ok(Issued::new(cert.der().clone(), cert.pem(), &key))
}

fn generate_key(key_type: KeyType) -> Result<KeyPair, Error> {
    Ok(match key_type {
        KeyType::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?,
        KeyType::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519)?,
        KeyType::Rsa2048 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048)?,
    })
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Valid from an hour ago (tolerates clock skew between peers) for `days` days.
pub(crate) fn set_validity(params: &mut CertificateParams, now: OffsetDateTime, days: u32) {
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(i64::from(days));
}
