//! `tessera.certs`: self-signed certificates and a development PKI (rcgen),
//! certificate details and fingerprints in the format every Tessera tool
//! prints (`sha256:<hex>`), and PEM loading with errors that name the file.

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tessera_tls::{CertificateInfo, DevPki, Fingerprint, Issued, KeyType, PkiOptions, Usage};

use crate::errors::{self, CertError};

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Certificate>()?;
    module.add_class::<CertInfo>()?;
    module.add_class::<Pki>()?;
    module.add_function(wrap_pyfunction!(self_signed, module)?)?;
    module.add_function(wrap_pyfunction!(dev_pki, module)?)?;
    module.add_function(wrap_pyfunction!(fingerprint, module)?)?;
    module.add_function(wrap_pyfunction!(parse_certificate, module)?)?;
    module.add_function(wrap_pyfunction!(load_certificates, module)?)?;
    module.add_function(wrap_pyfunction!(load_certificate, module)?)?;
    Ok(())
}

/// A generated certificate and its private key.
#[pyclass(frozen, module = "tessera.certs")]
pub(crate) struct Certificate(Issued);

#[pymethods]
impl Certificate {
    /// The certificate, PEM.
    #[getter]
    fn cert_pem(&self) -> &str {
        self.0.cert_pem()
    }

    /// The private key, PKCS#8 PEM.
    #[getter]
    fn key_pem(&self) -> &str {
        self.0.key_pem()
    }

    /// The certificate, DER.
    #[getter]
    fn der<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.0.der().as_ref())
    }

    /// `sha256:<hex>` of the DER certificate.
    #[getter]
    fn fingerprint(&self) -> String {
        Fingerprint::of_der(self.0.der().as_ref()).to_string()
    }

    /// The certificate's details.
    #[getter]
    fn info(&self) -> PyResult<CertInfo> {
        CertInfo::parse(self.0.der().as_ref(), "generated certificate")
    }

    /// Writes the certificate (mode 0644) and key (0600); refuses to replace
    /// existing files unless `overwrite`.
    #[pyo3(signature = (cert_path, key_path, *, overwrite=false))]
    fn write(&self, cert_path: PathBuf, key_path: PathBuf, overwrite: bool) -> PyResult<()> {
        self.0
            .write(&cert_path, &key_path, overwrite)
            .map_err(errors::cert)
    }

    fn __repr__(&self) -> String {
        format!("Certificate({})", self.fingerprint())
    }
}

fn key_type(name: &str) -> PyResult<KeyType> {
    match name {
        "ecdsa-p256" => Ok(KeyType::EcdsaP256),
        "ed25519" => Ok(KeyType::Ed25519),
        "rsa-2048" => Ok(KeyType::Rsa2048),
        other => Err(PyValueError::new_err(format!(
            "key_type must be \"ecdsa-p256\", \"ed25519\" or \"rsa-2048\", not {other:?}"
        ))),
    }
}

fn usage(name: &str) -> PyResult<Usage> {
    match name {
        "server" => Ok(Usage::Server),
        "client" => Ok(Usage::Client),
        "both" => Ok(Usage::ServerAndClient),
        other => Err(PyValueError::new_err(format!(
            "usage must be \"server\", \"client\" or \"both\", not {other:?}"
        ))),
    }
}

/// A self-signed certificate for `common_name` (also its first subject
/// alternative name) and `names` (DNS names or IP addresses).
#[pyfunction]
#[pyo3(signature = (common_name, names=Vec::new(), *, usage="both", key_type="ecdsa-p256", days=365))]
fn self_signed(
    common_name: &str,
    names: Vec<String>,
    usage: &str,
    key_type: &str,
    days: u32,
) -> PyResult<Certificate> {
    if days == 0 {
        return Err(PyValueError::new_err("days must be at least 1"));
    }
    let usage = self::usage(usage)?;
    let key_type = self::key_type(key_type)?;
    tessera_tls::self_signed(common_name, &names, usage, key_type, days)
        .map(Certificate)
        .map_err(errors::cert)
}

/// A development PKI: a CA, a server certificate (localhost, 127.0.0.1, ::1
/// and `server_names`) and a client certificate it signed.
#[pyclass(frozen, module = "tessera.certs")]
pub(crate) struct Pki(DevPki);

#[pymethods]
impl Pki {
    /// The CA.
    #[getter]
    fn ca(&self) -> Certificate {
        Certificate(self.0.ca.clone())
    }

    /// The server certificate.
    #[getter]
    fn server(&self) -> Certificate {
        Certificate(self.0.server.clone())
    }

    /// The client certificate (extendedKeyUsage clientAuth).
    #[getter]
    fn client(&self) -> Certificate {
        Certificate(self.0.client.clone())
    }

    /// Writes the six files in the layout `tessera certs dev` uses (keys
    /// 0600, directory 0700) and returns their paths.
    #[pyo3(signature = (directory, *, overwrite=false))]
    fn write(&self, directory: PathBuf, overwrite: bool) -> PyResult<Vec<PathBuf>> {
        self.0.write(&directory, overwrite).map_err(errors::cert)
    }
}

/// Generates a development PKI (see `Pki`).
#[pyfunction]
#[pyo3(signature = (*, server_names=Vec::new(), client_name="client", key_type="ecdsa-p256", ca_days=3650, leaf_days=365))]
fn dev_pki(
    server_names: Vec<String>,
    client_name: &str,
    key_type: &str,
    ca_days: u32,
    leaf_days: u32,
) -> PyResult<Pki> {
    if ca_days == 0 || leaf_days == 0 {
        return Err(PyValueError::new_err(
            "ca_days and leaf_days must be at least 1",
        ));
    }
    let mut options = PkiOptions::default();
    options
        .key_type(self::key_type(key_type)?)
        .ca_days(ca_days)
        .leaf_days(leaf_days)
        .server_names(server_names)
        .client_name(client_name);
    DevPki::generate(&options).map(Pki).map_err(errors::cert)
}

/// What a certificate says. Times are UNIX seconds.
#[pyclass(frozen, get_all, module = "tessera.certs")]
pub(crate) struct CertInfo {
    subject: String,
    issuer: String,
    common_name: Option<String>,
    subject_alt_names: Vec<String>,
    not_before: i64,
    not_after: i64,
    fingerprint: String,
    serial: String,
    key_algorithm: String,
    is_ca: bool,
}

impl CertInfo {
    fn parse(der: &[u8], context: &str) -> PyResult<Self> {
        let info = CertificateInfo::parse(der, context).map_err(errors::cert)?;
        Ok(Self {
            subject: info.subject().to_owned(),
            issuer: info.issuer().to_owned(),
            common_name: info.common_name().map(str::to_owned),
            subject_alt_names: info
                .subject_alt_names()
                .iter()
                .map(ToString::to_string)
                .collect(),
            not_before: info.not_before().unix_timestamp(),
            not_after: info.not_after().unix_timestamp(),
            fingerprint: info.fingerprint().to_string(),
            serial: info.serial().to_owned(),
            key_algorithm: info.key_algorithm().to_string(),
            is_ca: info.is_ca(),
        })
    }
}

#[pymethods]
impl CertInfo {
    fn __repr__(&self) -> String {
        format!("CertInfo(subject={:?}, {})", self.subject, self.fingerprint)
    }
}

/// The DER of a certificate given as DER bytes or PEM text.
pub(crate) fn der_of(certificate: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(bytes) = certificate.cast::<PyBytes>() {
        return Ok(bytes.as_bytes().to_vec());
    }
    let text: String = certificate
        .extract()
        .map_err(|_| PyValueError::new_err("a certificate is DER bytes or PEM text"))?;
    let mut reader = text.as_bytes();
    match first_pem_certificate(&mut reader) {
        Some(der) => Ok(der),
        None => Err(CertError::new_err("no CERTIFICATE block in the PEM text")),
    }
}

/// The first CERTIFICATE block of PEM text.
fn first_pem_certificate(reader: &mut &[u8]) -> Option<Vec<u8>> {
    use tessera_tls::rustls::pki_types::pem::PemObject;
    tessera_tls::rustls::pki_types::CertificateDer::pem_slice_iter(reader)
        .next()?
        .ok()
        .map(|der| der.to_vec())
}

/// `sha256:<hex>` of a certificate (DER bytes or PEM text), as every Tessera
/// tool prints it.
#[pyfunction]
fn fingerprint(certificate: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(Fingerprint::of_der(&der_of(certificate)?).to_string())
}

/// The details of a certificate (DER bytes or PEM text).
#[pyfunction]
fn parse_certificate(certificate: &Bound<'_, PyAny>) -> PyResult<CertInfo> {
    CertInfo::parse(&der_of(certificate)?, "certificate")
}

/// Every certificate of a PEM file, DER; raises `CertError` naming the file
/// when it is missing, not PEM or holds no certificate.
#[pyfunction]
fn load_certificates(py: Python<'_>, path: PathBuf) -> PyResult<Vec<Bound<'_, PyBytes>>> {
    let certificates = tessera_tls::load_certificates(&path).map_err(errors::cert)?;
    Ok(certificates
        .iter()
        .map(|der| PyBytes::new(py, der.as_ref()))
        .collect())
}

/// The details of the first certificate of a PEM file.
#[pyfunction]
fn load_certificate(path: PathBuf) -> PyResult<CertInfo> {
    let certificates = tessera_tls::load_certificates(&path).map_err(errors::cert)?;
    let first = certificates
        .first()
        .ok_or_else(|| CertError::new_err(format!("{}: no certificate", path.display())))?;
    CertInfo::parse(first.as_ref(), &path.display().to_string())
}
