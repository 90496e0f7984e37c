//! `tessera.tofu`: the trust-on-first-use store `tessera tofu` and the
//! Gemini client use (the same SQLite file, schema and rules), so a Python
//! client and the CLI share their pins.

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use tessera_tls::tofu::{HostKey, KnownHost as StoredHost, RotationPolicy, TrustedBy, Verdict};
use tessera_tls::{CertificateInfo, Fingerprint, TofuStore};

use crate::errors::{self, CertificateChanged, TofuError};
use crate::time_arg;

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Store>()?;
    module.add_class::<KnownHost>()?;
    module.add_class::<TofuVerdict>()?;
    module.add_function(wrap_pyfunction!(default_path, module)?)?;
    Ok(())
}

/// `$XDG_DATA_HOME/tessera/tofu.sqlite3`, the CLI's default store.
#[pyfunction]
pub(crate) fn default_path() -> PyResult<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "tessera")
        .ok_or_else(|| TofuError::new_err("no home directory to keep the TOFU store in"))?;
    Ok(TofuStore::default_path(dirs.data_dir()))
}

fn tofu(error: tessera_tls::Error) -> PyErr {
    match error {
        tessera_tls::Error::TofuMismatch(mismatch) => changed(&mismatch),
        other => TofuError::new_err(other.to_string()),
    }
}

fn changed(mismatch: &tessera_tls::tofu::TofuMismatch) -> PyErr {
    CertificateChanged::new_err((
        mismatch.to_string(),
        mismatch.key.host().to_owned(),
        mismatch.key.port(),
        mismatch.stored.to_string(),
        mismatch.presented.to_string(),
        mismatch.first_seen.unix_timestamp(),
    ))
}

/// What a server presented, checked: its key, its certificate (DER bytes or
/// PEM text) and the time to judge it at.
fn presented(
    host: &str,
    port: u16,
    cert: &Bound<'_, PyAny>,
    now: Option<f64>,
) -> PyResult<(HostKey, CertificateInfo, time::OffsetDateTime)> {
    let info = CertificateInfo::parse(&crate::certs::der_of(cert)?, "server certificate")
        .map_err(errors::cert)?;
    Ok((key(host, port)?, info, time_arg::at(now)?))
}

fn key(host: &str, port: u16) -> PyResult<HostKey> {
    HostKey::new(host, port).map_err(tofu)
}

/// A pinned server. Times are UNIX seconds.
#[pyclass(frozen, get_all, module = "tessera.tofu")]
pub(crate) struct KnownHost {
    host: String,
    port: u16,
    fingerprint: String,
    first_seen: i64,
    last_seen: i64,
    not_after: Option<i64>,
    trusted_by: &'static str,
}

impl From<StoredHost> for KnownHost {
    fn from(pin: StoredHost) -> Self {
        Self {
            host: pin.key.host().to_owned(),
            port: pin.key.port(),
            fingerprint: pin.fingerprint.to_string(),
            first_seen: pin.first_seen.unix_timestamp(),
            last_seen: pin.last_seen.unix_timestamp(),
            not_after: pin.not_after.map(time::OffsetDateTime::unix_timestamp),
            trusted_by: match pin.trusted_by {
                TrustedBy::FirstUse => "first-use",
                TrustedBy::Manual => "manual",
                TrustedBy::Import => "import",
                TrustedBy::Rotation => "rotation",
            },
        }
    }
}

#[pymethods]
impl KnownHost {
    fn __repr__(&self) -> String {
        format!(
            "KnownHost({}:{}, {}, trusted_by={:?})",
            self.host, self.port, self.fingerprint, self.trusted_by
        )
    }
}

/// What `verify_or_trust` decided: `kind` is `"first_use"` (now pinned),
/// `"match"` (with `expired` when the certificate's not-after has passed)
/// or `"rotated"` (the expired pin was replaced; `previous` names it).
#[pyclass(frozen, get_all, module = "tessera.tofu")]
pub(crate) struct TofuVerdict {
    kind: &'static str,
    expired: bool,
    previous: Option<String>,
}

#[pymethods]
impl TofuVerdict {
    fn __repr__(&self) -> String {
        format!(
            "TofuVerdict(kind={:?}, expired={})",
            self.kind, self.expired
        )
    }
}

/// The TOFU store at `path` (default: the CLI's). `rotation="after-expiry"`
/// accepts a new certificate once the pinned one has expired.
#[pyclass(frozen, module = "tessera.tofu", name = "TofuStore")]
pub(crate) struct Store(TofuStore);

#[pymethods]
impl Store {
    #[new]
    #[pyo3(signature = (path=None, *, read_only=false, rotation="never"))]
    fn new(path: Option<PathBuf>, read_only: bool, rotation: &str) -> PyResult<Self> {
        let policy = match rotation {
            "never" => RotationPolicy::Never,
            "after-expiry" => RotationPolicy::AfterExpiry,
            other => {
                return Err(PyValueError::new_err(format!(
                    "rotation must be \"never\" or \"after-expiry\", not {other:?}"
                )))
            }
        };
        let path = match path {
            Some(path) => path,
            None => default_path()?,
        };
        let mut store = if read_only {
            TofuStore::open_read_only(&path)
        } else {
            TofuStore::open(&path)
        }
        .map_err(tofu)?;
        store.set_rotation_policy(policy);
        Ok(Self(store))
    }

    /// The store's file.
    #[getter]
    fn path(&self) -> PathBuf {
        self.0.path().to_owned()
    }

    /// Checks the certificate (DER bytes or PEM text) a server presented: pins it on first
    /// contact, accepts a match, and raises `CertificateChanged` (writing
    /// nothing) when it differs from the pin.
    #[pyo3(signature = (host, port, cert, *, now=None))]
    fn verify_or_trust(
        &self,
        py: Python<'_>,
        host: &str,
        port: u16,
        cert: &Bound<'_, PyAny>,
        now: Option<f64>,
    ) -> PyResult<TofuVerdict> {
        let (key, info, now) = presented(host, port, cert, now)?;
        let verdict = py
            .detach(|| self.0.verify_or_trust(&key, &info, now))
            .map_err(tofu)?;
        match verdict {
            Verdict::FirstUse => Ok(TofuVerdict {
                kind: "first_use",
                expired: false,
                previous: None,
            }),
            Verdict::Match { expired } => Ok(TofuVerdict {
                kind: "match",
                expired,
                previous: None,
            }),
            Verdict::Rotated { previous } => Ok(TofuVerdict {
                kind: "rotated",
                expired: false,
                previous: Some(previous.to_string()),
            }),
            Verdict::Mismatch(mismatch) => Err(changed(&mismatch)),
        }
    }

    /// Like `verify_or_trust` without writing: raises `CertificateChanged`
    /// on a mismatch, returns `False` when the host has no pin yet.
    #[pyo3(signature = (host, port, cert, *, now=None))]
    fn check(
        &self,
        py: Python<'_>,
        host: &str,
        port: u16,
        cert: &Bound<'_, PyAny>,
        now: Option<f64>,
    ) -> PyResult<bool> {
        let (key, info, now) = presented(host, port, cert, now)?;
        let (mismatch, known) = py
            .detach(|| {
                let mismatch = self.0.check(&key, &info, now)?;
                let known = self.0.lookup(&key)?.is_some();
                Ok::<_, tessera_tls::Error>((mismatch, known))
            })
            .map_err(tofu)?;
        match mismatch {
            Some(mismatch) => Err(changed(&mismatch)),
            None => Ok(known),
        }
    }

    /// The pin for a server, or `None`.
    fn lookup(&self, py: Python<'_>, host: &str, port: u16) -> PyResult<Option<KnownHost>> {
        let key = key(host, port)?;
        Ok(py
            .detach(|| self.0.lookup(&key))
            .map_err(tofu)?
            .map(KnownHost::from))
    }

    /// Pins `fingerprint` for a server (replacing any pin); returns the
    /// fingerprint it replaced, if different.
    #[pyo3(signature = (host, port, fingerprint, *, not_after=None))]
    fn trust(
        &self,
        py: Python<'_>,
        host: &str,
        port: u16,
        fingerprint: &str,
        not_after: Option<f64>,
    ) -> PyResult<Option<String>> {
        let key = key(host, port)?;
        let fingerprint: Fingerprint = fingerprint.parse().map_err(tofu)?;
        let not_after = not_after.map(|at| time_arg::at(Some(at))).transpose()?;
        let now = time::OffsetDateTime::now_utc();
        Ok(py
            .detach(|| self.0.trust(&key, fingerprint, not_after, now))
            .map_err(tofu)?
            .map(|previous| previous.to_string()))
    }

    /// Forgets a server's pin; whether there was one.
    fn revoke(&self, py: Python<'_>, host: &str, port: u16) -> PyResult<bool> {
        let key = key(host, port)?;
        py.detach(|| self.0.revoke(&key)).map_err(tofu)
    }

    /// Forgets every port of `host`; how many pins were removed.
    fn revoke_host(&self, py: Python<'_>, host: &str) -> PyResult<usize> {
        py.detach(|| self.0.revoke_host(host)).map_err(tofu)
    }

    /// Every pin.
    fn list(&self, py: Python<'_>) -> PyResult<Vec<KnownHost>> {
        Ok(py
            .detach(|| self.0.list())
            .map_err(tofu)?
            .into_iter()
            .map(KnownHost::from)
            .collect())
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        let count = py.detach(|| self.0.len()).map_err(tofu)?;
        Ok(usize::try_from(count).unwrap_or(usize::MAX))
    }
}
