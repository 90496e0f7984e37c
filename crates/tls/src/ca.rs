//! An existing dev CA (a `certs dev` directory): issue more certificates from
//! it and revoke them in a CRL, so the CA key stays on the one machine that
//! holds it — instead of copying it to every node that needs a certificate.

use std::path::{Path, PathBuf};

use rcgen::{
    CertificateRevocationListParams, Issuer, KeyIdMethod, KeyPair, RevokedCertParams, SerialNumber,
};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use crate::files::{write_file, FileMode};
use crate::pki::{issue_leaf, layout};
use crate::{CertificateInfo, Error, Issued, PkiOptions, Usage};

/// A CA loaded from `ca_cert.pem` and `ca_key.pem`.
pub struct DevCa {
    cert_path: PathBuf,
    cert: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for DevCa {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCa")
            .field("cert", &self.cert_path)
            .finish_non_exhaustive()
    }
}

/// What a revocation changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revoked {
    /// The revoked certificate's serial, colon-separated hex.
    pub serial: String,
    /// Whether it was already in the list (the CRL is re-signed anyway).
    pub already: bool,
    /// Certificates the list now holds.
    pub listed: usize,
}

impl DevCa {
    /// Loads the CA of a `certs dev` directory.
    ///
    /// # Errors
    /// [`Error::Io`]/PEM errors for missing or unreadable files; [`Error::Ca`]
    /// when the certificate is no CA or the key is not its key.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let cert_path = dir.join(layout::CA_CERT);
        let key_path = dir.join(layout::CA_KEY);
        let cert = crate::load_certificates(&cert_path)?.remove(0);
        let info = CertificateInfo::parse(cert.as_ref(), &cert_path.display().to_string())?;
        let ca_error = |path: &Path, detail: String| Error::Ca {
            path: path.to_owned(),
            detail,
        };
        if !info.is_ca() {
            return Err(ca_error(&cert_path, "not a CA certificate".into()));
        }
        let key_pem = std::fs::read_to_string(&key_path).map_err(|error| Error::Io {
            path: key_path.clone(),
            error,
        })?;
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| ca_error(&key_path, format!("not a private key: {e}")))?;
        let (_, parsed) = X509Certificate::from_der(cert.as_ref())
            .map_err(|e| ca_error(&cert_path, e.to_string()))?;
        if parsed.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(Error::KeyMismatch {
                key: key_path,
                cert: cert_path,
            });
        }
        let issuer = Issuer::from_ca_cert_der(&cert, key)?;
        Ok(Self {
            cert_path,
            cert,
            issuer,
        })
    }

    /// The CA certificate.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// Issues a certificate for `common_name` (and the SANs `names`) signed
    /// by this CA, with the key type and validity of `options`.
    ///
    /// # Errors
    /// [`Error::Generate`] for an invalid name or a failed key generation.
    pub fn issue(
        &self,
        common_name: &str,
        names: Vec<String>,
        usage: Usage,
        options: &PkiOptions,
    ) -> Result<Issued, Error> {
        issue_leaf(
            common_name,
            names,
            usage,
            options,
            OffsetDateTime::now_utc(),
            Some(&self.issuer),
        )
    }

    /// Adds `cert` (which this CA must have issued) to the CRL at `crl_path`
    /// — created if missing, its earlier entries kept — and re-signs it,
    /// valid for `days` days. Written atomically, so a server reading it
    /// sees the old list or the new one.
    ///
    /// # Errors
    /// [`Error::Ca`] for a certificate of another CA or a CRL that is not
    /// this CA's; I/O errors.
    pub fn revoke(
        &self,
        crl_path: &Path,
        cert: &CertificateDer<'_>,
        days: u32,
    ) -> Result<Revoked, Error> {
        let ca_error = |path: &Path, detail: String| Error::Ca {
            path: path.to_owned(),
            detail,
        };
        let (_, ca) = X509Certificate::from_der(self.cert.as_ref())
            .map_err(|e| ca_error(&self.cert_path, e.to_string()))?;
        let (_, leaf) = X509Certificate::from_der(cert.as_ref())
            .map_err(|e| ca_error(crl_path, format!("the certificate to revoke: {e}")))?;
        if leaf.issuer() != ca.subject() || leaf.verify_signature(Some(ca.public_key())).is_err() {
            return Err(ca_error(
                &self.cert_path,
                format!(
                    "did not issue the certificate {} (issuer {})",
                    leaf.subject(),
                    leaf.issuer()
                ),
            ));
        }
        let now = OffsetDateTime::now_utc();
        let mut revoked = self.read_crl(crl_path, &ca)?;
        let serial = leaf.raw_serial().to_vec();
        let already = revoked
            .iter()
            .any(|entry| entry.serial_number.to_bytes() == serial);
        if !already {
            revoked.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&serial),
                revocation_time: now,
                reason_code: None,
                invalidity_date: None,
            });
        }
        let params = CertificateRevocationListParams {
            this_update: now,
            next_update: now + Duration::days(i64::from(days.max(1))),
            // Increasing from one list to the next, as RFC 5280 asks.
            crl_number: SerialNumber::from(
                u64::try_from(now.unix_timestamp_nanos() / 1000).unwrap_or(u64::MAX),
            ),
            issuing_distribution_point: None,
            revoked_certs: revoked,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let listed = params.revoked_certs.len();
        let crl = params.signed_by(&self.issuer)?;
        write_file(crl_path, crl.pem()?.as_bytes(), FileMode::Public, true)?;
        Ok(Revoked {
            serial: leaf.raw_serial_as_string(),
            already,
            listed,
        })
    }

    /// The entries of this CA's CRL at `path` (none when there is no file).
    fn read_crl(
        &self,
        path: &Path,
        ca: &X509Certificate<'_>,
    ) -> Result<Vec<RevokedCertParams>, Error> {
        if !path.exists() {
            return Ok(Vec::new());
        }
        let crls = load_crls(path)?;
        let mut entries = Vec::new();
        for der in &crls {
            let (_, crl) =
                CertificateRevocationList::from_der(der.as_ref()).map_err(|e| Error::Ca {
                    path: path.to_owned(),
                    detail: format!("not a CRL: {e}"),
                })?;
            if crl.issuer() != ca.subject() || crl.verify_signature(ca.public_key()).is_err() {
                return Err(Error::Ca {
                    path: path.to_owned(),
                    detail: "a CRL of another CA; give a new file".into(),
                });
            }
            entries.extend(
                crl.iter_revoked_certificates()
                    .map(|entry| RevokedCertParams {
                        serial_number: SerialNumber::from_slice(entry.raw_serial()),
                        revocation_time: entry.revocation_date.to_datetime(),
                        reason_code: None,
                        invalidity_date: None,
                    }),
            );
        }
        Ok(entries)
    }
}

/// The CRLs of a PEM (`X509 CRL` sections) or DER file, for
/// [`crate::ClientAuth::RequiredWithCrls`].
///
/// # Errors
/// [`Error::Io`] for an unreadable file; [`Error::Ca`] for one that holds no CRL.
pub fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, Error> {
    use rustls_pki_types::pem::PemObject;
    let bytes = std::fs::read(path).map_err(|error| Error::Io {
        path: path.to_owned(),
        error,
    })?;
    let from_pem: Vec<_> = CertificateRevocationListDer::pem_slice_iter(&bytes)
        .filter_map(Result::ok)
        .collect();
    let crls = if from_pem.is_empty() && CertificateRevocationList::from_der(&bytes).is_ok() {
        vec![CertificateRevocationListDer::from(bytes)]
    } else {
        from_pem
    };
    if crls.is_empty() {
        return Err(Error::Ca {
            path: path.to_owned(),
            detail: "no certificate revocation list (PEM `X509 CRL` or DER) in the file".into(),
        });
    }
    Ok(crls)
}
