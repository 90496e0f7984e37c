//! `tessera.trust`: capability tokens (Biscuit), proofs of possession, the
//! verifier with its replay cache and deny-list, and signed jobs — the
//! trust-core wire formats, with trust-core's weaknesses refused
//! (`../shared/spec/trust.md`).

use std::collections::HashMap;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tessera_trust::{JobFormat, MemoryReplayCache, MintRequest, Request, V2Context};

use crate::errors::{self, InvalidInput};

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<SecretKey>()?;
    module.add_class::<PublicKey>()?;
    module.add_class::<Proof>()?;
    module.add_class::<Verifier>()?;
    module.add_class::<Authenticated>()?;
    module.add_function(wrap_pyfunction!(mint, module)?)?;
    module.add_function(wrap_pyfunction!(prove, module)?)?;
    module.add_function(wrap_pyfunction!(sign_job, module)?)?;
    module.add_function(wrap_pyfunction!(verify_job, module)?)?;
    module.add_function(wrap_pyfunction!(job_message, module)?)?;
    Ok(())
}

/// An Ed25519 private key (issuer or holder), kept as its 32-byte seed.
#[pyclass(frozen, module = "tessera.trust")]
pub(crate) struct SecretKey(tessera_trust::SecretKey);

#[pymethods]
impl SecretKey {
    /// The key of a 64-hex-digit seed.
    #[new]
    fn new(hex: &str) -> PyResult<Self> {
        tessera_trust::SecretKey::from_hex(hex)
            .map(Self)
            .map_err(errors::trust)
    }

    /// A fresh random key.
    #[staticmethod]
    fn generate() -> Self {
        Self(tessera_trust::SecretKey::generate())
    }

    /// The seed, 64 lower-case hex digits. Keep it secret.
    #[getter]
    fn hex(&self) -> String {
        self.0.to_hex()
    }

    /// The public key.
    #[getter]
    fn public(&self) -> PublicKey {
        PublicKey(self.0.public())
    }

    /// A detached Ed25519 signature (64 bytes) over `message`.
    fn sign<'py>(&self, py: Python<'py>, message: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let signature = hex::decode(self.0.sign_hex(message))
            .map_err(|error| InvalidInput::new_err(error.to_string()))?;
        Ok(PyBytes::new(py, &signature))
    }

    /// Never shows the seed.
    fn __repr__(&self) -> String {
        format!("SecretKey(public={})", self.0.public().to_hex())
    }
}

/// An Ed25519 public key.
#[pyclass(frozen, eq, module = "tessera.trust")]
#[derive(PartialEq)]
pub(crate) struct PublicKey(tessera_trust::PublicKey);

#[pymethods]
impl PublicKey {
    /// The key of 64 hex digits.
    #[new]
    fn new(hex: &str) -> PyResult<Self> {
        tessera_trust::PublicKey::from_hex(hex)
            .map(Self)
            .map_err(errors::trust)
    }

    /// 64 lower-case hex digits.
    #[getter]
    fn hex(&self) -> String {
        self.0.to_hex()
    }

    fn __repr__(&self) -> String {
        format!("PublicKey({:?})", self.0.to_hex())
    }
}

/// A key given as its class or as hex text.
#[derive(FromPyObject)]
enum SecretArg<'py> {
    Key(PyRef<'py, SecretKey>),
    Hex(String),
}

impl SecretArg<'_> {
    fn key(&self) -> PyResult<tessera_trust::SecretKey> {
        match self {
            Self::Key(key) => Ok(key.0.clone()),
            Self::Hex(hex) => tessera_trust::SecretKey::from_hex(hex).map_err(errors::trust),
        }
    }
}

#[derive(FromPyObject)]
enum PublicArg<'py> {
    Key(PyRef<'py, PublicKey>),
    Hex(String),
}

impl PublicArg<'_> {
    fn key(&self) -> PyResult<tessera_trust::PublicKey> {
        match self {
            Self::Key(key) => Ok(key.0),
            Self::Hex(hex) => tessera_trust::PublicKey::from_hex(hex).map_err(errors::trust),
        }
    }
}

/// Mints a token for the holder key `worker_public` (hex) and `holder_id`,
/// with app `facts` (predicate → values), a `revocation_id` (random when
/// omitted) and `expires_at` (UNIX seconds). With `require_pop_v2`,
/// verifiers refuse v1 proofs for it.
#[pyfunction]
#[pyo3(signature = (issuer, worker_public, holder_id, *, expires_at, facts=None, revocation_id=None, require_pop_v2=false))]
fn mint(
    issuer: SecretArg<'_>,
    worker_public: String,
    holder_id: String,
    expires_at: f64,
    facts: Option<Vec<(String, Vec<String>)>>,
    revocation_id: Option<String>,
    require_pop_v2: bool,
) -> PyResult<String> {
    let request = MintRequest {
        worker_public,
        holder_id,
        facts: facts.unwrap_or_default(),
        revocation_id: revocation_id.unwrap_or_else(tessera_trust::random_revocation_id),
        expires_at,
    };
    let issuer = issuer.key()?;
    let minted = if require_pop_v2 {
        tessera_trust::mint_requiring_pop_v2(&issuer, &request)
    } else {
        tessera_trust::mint(&issuer, &request)
    };
    minted.map_err(errors::trust)
}

/// A signed request: what travels in the `Authorization` / `X-EP-*`
/// headers or the `token` / `sig` / `ts` / `nonce` query.
#[pyclass(frozen, get_all, module = "tessera.trust")]
pub(crate) struct Proof {
    version: u8,
    token: String,
    signature: String,
    timestamp: String,
    nonce: String,
}

impl Proof {
    fn inner(&self) -> tessera_trust::Proof {
        tessera_trust::Proof {
            version: self.version,
            token: self.token.clone(),
            signature: self.signature.clone(),
            timestamp: self.timestamp.clone(),
            nonce: self.nonce.clone(),
        }
    }
}

impl From<tessera_trust::Proof> for Proof {
    fn from(proof: tessera_trust::Proof) -> Self {
        Self {
            version: proof.version,
            token: proof.token,
            signature: proof.signature,
            timestamp: proof.timestamp,
            nonce: proof.nonce,
        }
    }
}

#[pymethods]
impl Proof {
    /// A proof from its parts (as received some other way than headers or a query).
    #[new]
    #[pyo3(signature = (token, signature, timestamp, nonce, *, version=1))]
    fn new(
        token: String,
        signature: String,
        timestamp: String,
        nonce: String,
        version: u8,
    ) -> PyResult<Self> {
        if !matches!(version, 1 | 2) {
            return Err(PyValueError::new_err(format!(
                "version must be 1 or 2, not {version}"
            )));
        }
        Ok(Self {
            version,
            token,
            signature,
            timestamp,
            nonce,
        })
    }

    /// The request headers (`Authorization: Biscuit …`, `X-EP-Signature`,
    /// `X-EP-Timestamp`, `X-EP-Nonce`, and `X-EP-Version: 2` for v2).
    fn headers(&self) -> HashMap<&'static str, String> {
        self.inner().headers().into_iter().collect()
    }

    /// Reads the header form (names in any case).
    #[staticmethod]
    fn from_headers(headers: HashMap<String, String>) -> PyResult<Self> {
        tessera_trust::Proof::from_headers(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map(Self::from)
            .map_err(errors::trust)
    }

    /// Reads the query form (`token`, `sig`, `ts`, `nonce`, optional `v`).
    #[staticmethod]
    fn from_query(params: HashMap<String, String>) -> PyResult<Self> {
        tessera_trust::Proof::from_query(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map(Self::from)
            .map_err(errors::trust)
    }

    fn __repr__(&self) -> String {
        format!(
            "Proof(version={}, timestamp={:?}, nonce={:?})",
            self.version, self.timestamp, self.nonce
        )
    }
}

/// Signs a request with the holder key. `timestamp` defaults to now, `nonce`
/// to 128 random bits; `version=2` also binds `authority`, the query and
/// the token (the v2 canonical string).
#[pyfunction]
#[pyo3(signature = (holder, token, method, path, body=b"".as_slice(), *, timestamp=None, nonce=None, version=1, authority="", query=None))]
fn prove(
    holder: SecretArg<'_>,
    token: &str,
    method: &str,
    path: &str,
    body: &[u8],
    timestamp: Option<String>,
    nonce: Option<String>,
    version: u8,
    authority: &str,
    query: Option<Vec<(String, String)>>,
) -> PyResult<Proof> {
    let holder = holder.key()?;
    let timestamp = timestamp.unwrap_or_else(now_timestamp);
    let nonce = nonce.unwrap_or_else(|| hex::encode(rand::random::<[u8; 16]>()));
    let request = Request { method, path, body };
    let proof = match version {
        1 => tessera_trust::prove(&holder, token, &request, &timestamp, &nonce),
        2 => {
            let query = query.unwrap_or_default();
            let pairs: Vec<(&str, &str)> = query
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let context = V2Context {
                authority,
                query: &pairs,
            };
            tessera_trust::prove_v2(&holder, token, &request, &context, &timestamp, &nonce)
                .map_err(errors::trust)?
        }
        other => {
            return Err(PyValueError::new_err(format!(
                "version must be 1 or 2, not {other}"
            )))
        }
    };
    Ok(proof.into())
}

fn now_timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // Whole seconds: what trust-core sends, and the only form v2 accepts.
    now.as_secs().to_string()
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Who sent an authenticated request.
#[pyclass(frozen, module = "tessera.trust")]
pub(crate) struct Authenticated(tessera_trust::Authenticated);

#[pymethods]
impl Authenticated {
    /// The holder id the token names.
    #[getter]
    fn holder_id(&self) -> &str {
        &self.0.identity().holder_id
    }

    /// The holder's public key, hex.
    #[getter]
    fn worker_key(&self) -> &str {
        &self.0.identity().worker_key
    }

    /// The token's revocation id.
    #[getter]
    fn revocation_id(&self) -> &str {
        &self.0.identity().revocation_id
    }

    fn __repr__(&self) -> String {
        format!("Authenticated(holder_id={:?})", self.0.identity().holder_id)
    }
}

/// Verifies requests for tokens of one issuer: skew window (`max_skew`
/// seconds, default 300), a deny-list of revocation ids, a replay cache of
/// `replay_capacity` nonces (0 turns it off), and `require_v2`.
#[pyclass(frozen, module = "tessera.trust")]
pub(crate) struct Verifier(tessera_trust::Verifier);

#[pymethods]
impl Verifier {
    #[new]
    #[pyo3(signature = (issuer, *, max_skew=300.0, revoked=Vec::new(), replay_capacity=100_000, require_v2=false))]
    fn new(
        issuer: PublicArg<'_>,
        max_skew: f64,
        revoked: Vec<String>,
        replay_capacity: usize,
        require_v2: bool,
    ) -> PyResult<Self> {
        if !(max_skew.is_finite() && max_skew >= 0.0) {
            return Err(PyValueError::new_err(
                "max_skew must be a finite, non-negative number",
            ));
        }
        let mut verifier = tessera_trust::Verifier::new(&issuer.key()?).map_err(errors::trust)?;
        verifier
            .max_skew(max_skew)
            .revoked(revoked)
            .require_v2(require_v2);
        if replay_capacity > 0 {
            verifier.replay_cache(Arc::new(MemoryReplayCache::new(replay_capacity)));
        }
        Ok(Self(verifier))
    }

    /// Checks `proof` for the request (method, path, body; for v2 also
    /// `authority` and `query`) at `now` (UNIX seconds, default now).
    /// Raises the `TrustError` subclass of the first failed check.
    #[pyo3(signature = (proof, method, path, body=b"".as_slice(), *, authority="", query=None, now=None))]
    fn authenticate(
        &self,
        py: Python<'_>,
        proof: &Proof,
        method: &str,
        path: &str,
        body: &[u8],
        authority: &str,
        query: Option<Vec<(String, String)>>,
        now: Option<f64>,
    ) -> PyResult<Authenticated> {
        let proof = proof.inner();
        let query = query.unwrap_or_default();
        let now = now.unwrap_or_else(unix_now);
        let body = body.to_vec();
        let (method, path, authority) = (method.to_owned(), path.to_owned(), authority.to_owned());
        // Verifying a token takes tens of microseconds: let other threads run.
        py.detach(|| {
            let pairs: Vec<(&str, &str)> = query
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let request = Request {
                method: &method,
                path: &path,
                body: &body,
            };
            let context = V2Context {
                authority: &authority,
                query: &pairs,
            };
            self.0.authenticate_with(&proof, &request, &context, now)
        })
        .map(Authenticated)
        .map_err(errors::trust)
    }

    /// Runs the Datalog policy `allow` (e.g. `allow if worker_id($w), op("read")`)
    /// against the token and `request_facts` (name → value). Raises
    /// `PolicyDenied` when it does not allow.
    #[pyo3(signature = (authenticated, allow, request_facts=Vec::new(), *, now=None))]
    fn check_policy(
        &self,
        py: Python<'_>,
        authenticated: &Authenticated,
        allow: &str,
        request_facts: Vec<(String, String)>,
        now: Option<f64>,
    ) -> PyResult<()> {
        let now = now.unwrap_or_else(unix_now);
        py.detach(|| {
            self.0
                .check_policy(&authenticated.0, &request_facts, allow, now)
        })
        .map_err(errors::trust)
    }
}

fn job_format(name: &str) -> PyResult<JobFormat> {
    match name {
        "v1" => Ok(JobFormat::V1),
        "v2" => Ok(JobFormat::V2),
        other => Err(PyValueError::new_err(format!(
            "format must be \"v1\" or \"v2\", not {other:?}"
        ))),
    }
}

/// The exact text a job signature covers (`job` is JSON text; `sig` is left out).
#[pyfunction]
#[pyo3(signature = (job, worker_id, *, format="v1"))]
fn job_message(job: &str, worker_id: &str, format: &str) -> PyResult<String> {
    let job = tessera_trust::parse_job(job).map_err(errors::trust)?;
    tessera_trust::job_message_as(job_format(format)?, &job, worker_id).map_err(errors::trust)
}

/// Signs a job (JSON text of an object) for `worker_id`: 128 hex digits to
/// put in its `sig` field. `format="v2"` is domain-separated.
#[pyfunction]
#[pyo3(signature = (issuer, job, worker_id, *, format="v1"))]
fn sign_job(issuer: SecretArg<'_>, job: &str, worker_id: &str, format: &str) -> PyResult<String> {
    let job = tessera_trust::parse_job(job).map_err(errors::trust)?;
    tessera_trust::sign_job_as(job_format(format)?, &issuer.key()?, &job, worker_id)
        .map_err(errors::trust)
}

/// Checks the `sig` field of a job (JSON text); raises `JobInvalid`.
#[pyfunction]
#[pyo3(signature = (issuer, job, worker_id, *, format="v1"))]
fn verify_job(issuer: PublicArg<'_>, job: &str, worker_id: &str, format: &str) -> PyResult<()> {
    let job = tessera_trust::parse_job(job).map_err(errors::trust)?;
    tessera_trust::verify_job_as(job_format(format)?, &issuer.key()?, &job, worker_id)
        .map_err(errors::trust)
}
