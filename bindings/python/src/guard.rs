//! `tessera.guard`: the admission chain every Tessera server runs (ACL →
//! per-client GCRA rate limit → certificate rules), with the same
//! configuration and the same decisions, plus keyed client ids for logs.

use std::collections::HashMap;
use std::time::Instant;

use pyo3::exceptions::PyValueError;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::PyTraverseError;
use tessera_guard::{
    parse_client, AclConfig, CanonicalPath, CertFingerprint, CertRuleConfig, Clock,
    Decision as GuardDecision, DenialReason, Guard, GuardConfig, PeerCert, RateLimitConfig,
    Request,
};
use tessera_tls::CertificateInfo;

use crate::errors::{self, GuardError};
use crate::ready::Ready;
use crate::time_arg;

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Chain>()?;
    module.add_class::<Decision>()?;
    module.add_class::<ClientIds>()?;
    module.add_class::<AsyncCheck>()?;
    module.add_class::<Ready>()?;
    Ok(())
}

/// What a certificate rule requires: `"public"`, `"any"` certificate, or a
/// list of `sha256:` fingerprints.
#[derive(FromPyObject)]
enum RuleArg {
    Mode(String),
    Listed(Vec<String>),
}

/// The admission chain. Build it from keywords or from the `[guard]` TOML
/// every Tessera server reads (`Chain.from_toml`); decide with `check`.
#[pyclass(frozen, module = "tessera.guard")]
pub(crate) struct Chain {
    chain: tessera_guard::Chain,
    /// Origin of the monotonic clock the rate limits run on.
    started: Instant,
    /// The decisions that carry no wait, made once and shared (they are frozen).
    shared: SharedDecisions,
}

/// One value for each decision that carries no wait (allow, and every
/// denial but the rate limit's), made once and handed out again.
struct ByDecision<T> {
    allowed: T,
    denied: Vec<(DenialReason, T)>,
}

impl<T> ByDecision<T> {
    fn new(mut make: impl FnMut(GuardDecision) -> PyResult<T>) -> PyResult<Self> {
        let denied = DenialReason::ALL
            .iter()
            .filter(|reason| **reason != DenialReason::RateLimited)
            .map(|reason| {
                let denial = tessera_guard::Denial {
                    reason: *reason,
                    retry_after: None,
                };
                Ok((*reason, make(GuardDecision::Deny(denial))?))
            })
            .collect::<PyResult<_>>()?;
        Ok(Self {
            allowed: make(GuardDecision::Allow)?,
            denied,
        })
    }

    /// The value made for `decision`; `None` when it carries a wait.
    fn get(&self, decision: &GuardDecision) -> Option<&T> {
        match decision {
            GuardDecision::Allow => Some(&self.allowed),
            GuardDecision::Deny(denial) if denial.retry_after.is_none() => self
                .denied
                .iter()
                .find(|(reason, _)| *reason == denial.reason)
                .map(|(_, value)| value),
            GuardDecision::Deny(_) => None,
        }
    }
}

/// The Python objects for decisions, shared when they carry no wait (they are frozen).
struct SharedDecisions(ByDecision<Py<Decision>>);

impl SharedDecisions {
    fn new(py: Python<'_>) -> PyResult<Self> {
        ByDecision::new(|decision| Py::new(py, Decision::from(decision))).map(Self)
    }

    /// `decision` as a Python object.
    fn get(&self, py: Python<'_>, decision: GuardDecision) -> PyResult<Py<Decision>> {
        match self.0.get(&decision) {
            Some(shared) => Ok(shared.clone_ref(py)),
            None => Py::new(py, Decision::from(decision)),
        }
    }
}

#[pymethods]
impl Chain {
    /// `allow` / `deny` / `default` form the ACL (addresses or CIDRs; deny
    /// wins); `rate` (per second) and `burst` the per-client limit, keyed by
    /// `ipv4_prefix` / `ipv6_prefix` and tracking at most `max_clients`;
    /// `global_rate` / `global_burst` a budget for everyone; `cert_rules`
    /// maps path prefixes to `"public"`, `"any"` or a list of fingerprints.
    #[new]
    #[pyo3(signature = (*, allow=None, deny=None, default=None, rate=None, burst=10, ipv4_prefix=32, ipv6_prefix=64, max_clients=65_536, global_rate=None, global_burst=None, cert_rules=None, accept_expired_certs=false))]
    fn new(
        py: Python<'_>,
        allow: Option<Vec<String>>,
        deny: Option<Vec<String>>,
        default: Option<String>,
        rate: Option<f64>,
        burst: u32,
        ipv4_prefix: u8,
        ipv6_prefix: u8,
        max_clients: usize,
        global_rate: Option<f64>,
        global_burst: Option<u32>,
        cert_rules: Option<HashMap<String, RuleArg>>,
        accept_expired_certs: bool,
    ) -> PyResult<Self> {
        let acl = (allow.is_some() || deny.is_some() || default.is_some()).then(|| AclConfig {
            allow: allow.unwrap_or_default(),
            deny: deny.unwrap_or_default(),
            default,
        });
        if rate.is_none() && global_rate.is_some() {
            return Err(GuardError::new_err(
                "global_rate needs a per-client rate as well",
            ));
        }
        let rate_limit = rate.map(|rate| RateLimitConfig {
            rate,
            burst,
            ipv4_prefix,
            ipv6_prefix,
            max_clients,
            global_rate,
            global_burst,
        });
        let mut rules: Vec<_> = cert_rules.unwrap_or_default().into_iter().collect();
        // Deterministic order: the longest prefix is matched, whatever the order given.
        rules.sort_by(|a, b| a.0.cmp(&b.0));
        let cert_rules = rules
            .into_iter()
            .map(|(prefix, rule)| {
                let (mode, fingerprints) = match rule {
                    RuleArg::Mode(mode) => (mode, Vec::new()),
                    RuleArg::Listed(list) => ("listed".to_owned(), list),
                };
                CertRuleConfig {
                    prefix,
                    mode: Some(mode),
                    fingerprints,
                    require_cert: false,
                    allowed_fingerprints: None,
                }
            })
            .collect();
        let config = GuardConfig {
            acl,
            rate_limit,
            cert_rules,
            accept_expired_client_certs: accept_expired_certs,
            ..GuardConfig::default()
        };
        Self::build(py, &config)
    }

    /// A chain from the guard TOML Tessera's servers read (a document with a
    /// `[guard]` table, or the table itself).
    #[staticmethod]
    fn from_toml(py: Python<'_>, text: &str) -> PyResult<Self> {
        Self::build(py, &GuardConfig::from_toml(text).map_err(errors::guard)?)
    }

    /// Decides one request. `ip` is the client's address (IPv4-mapped IPv6
    /// is read as IPv4; `None`: no address, e.g. a Unix socket), `path` the
    /// request path (for certificate rules), `cert` the client certificate's
    /// DER (`ssl.SSLSocket.getpeercert(binary_form=True)`) or, when only that
    /// is known, its `sha256:` fingerprint (dates unchecked). `now` (UNIX
    /// seconds) dates the certificate check; `monotonic` (seconds from any
    /// fixed origin) replaces the chain's own clock for the rate limits.
    #[pyo3(signature = (ip=None, path=None, cert=None, *, now=None, monotonic=None))]
    fn check(
        &self,
        py: Python<'_>,
        ip: Option<&str>,
        path: Option<&str>,
        cert: Option<Bound<'_, PyAny>>,
        now: Option<f64>,
        monotonic: Option<f64>,
    ) -> PyResult<Py<Decision>> {
        let address = ip
            .map(|text| {
                parse_client(text)
                    .ok_or_else(|| GuardError::new_err(format!("{text:?} is not an IP address")))
            })
            .transpose()?;
        let path = path
            .map(|raw| CanonicalPath::parse(raw).map_err(errors::guard))
            .transpose()?;
        let cert = cert.map(|cert| peer_cert(&cert)).transpose()?;
        let monotonic_ns = match monotonic {
            Some(seconds) => u64::try_from(time_arg::seconds(seconds, "monotonic")?.as_nanos())
                .unwrap_or(u64::MAX),
            None => self.monotonic_ns(),
        };
        let clock = Clock {
            monotonic_ns,
            wall: time_arg::at(now)?,
        };
        let request = Request {
            address,
            path: path.as_ref(),
            cert: cert.as_ref(),
        };
        self.shared.get(py, self.chain.check(&request, clock))
    }

    /// Decides a request given as tlacacoca's middleware sees it: the request
    /// URL (its path is checked), the client address as text (text that is
    /// not an address counts as no address, which an ACL refuses) and the
    /// client certificate's fingerprint text (one that does not parse matches
    /// no list, but still counts as a certificate). A path with a broken
    /// percent-escape is refused as `access_denied`.
    #[pyo3(signature = (request_url, client_ip, fingerprint=None))]
    fn check_request(
        &self,
        py: Python<'_>,
        request_url: &str,
        client_ip: &str,
        fingerprint: Option<&str>,
    ) -> PyResult<Py<Decision>> {
        let decision = self.decide_request(request_url, client_ip, fingerprint);
        self.shared.get(py, decision)
    }

    /// Requests allowed so far.
    #[getter]
    fn allowed(&self) -> u64 {
        self.chain.allowed()
    }

    /// Requests denied so far, by reason (`"rate_limited"`, `"access_denied"`, …).
    #[getter]
    fn denials(&self) -> HashMap<&'static str, u64> {
        DenialReason::ALL
            .iter()
            .map(|reason| (reason.name(), self.chain.denials(*reason)))
            .collect()
    }

    /// Clients the rate limiter tracks now (bounded by `max_clients`).
    #[getter]
    fn tracked_clients(&self) -> usize {
        self.chain
            .rate_limiter()
            .map_or(0, tessera_guard::Limiter::tracked)
    }
}

impl Chain {
    fn build(py: Python<'_>, config: &GuardConfig) -> PyResult<Self> {
        Ok(Self {
            chain: config.build().map_err(errors::guard)?,
            started: Instant::now(),
            shared: SharedDecisions::new(py)?,
        })
    }

    /// [`Chain::check_request`]'s decision.
    fn decide_request(
        &self,
        request_url: &str,
        client_ip: &str,
        fingerprint: Option<&str>,
    ) -> GuardDecision {
        let Ok(path) = CanonicalPath::parse(url_path(request_url)) else {
            return GuardDecision::Deny(tessera_guard::Denial {
                reason: DenialReason::AccessDenied,
                retry_after: None,
            });
        };
        let cert = fingerprint.map(|text| PeerCert {
            fingerprint: text.parse().unwrap_or_else(|_| unlisted(text)),
            not_before: time::OffsetDateTime::UNIX_EPOCH,
            not_after: time::PrimitiveDateTime::MAX.assume_utc(),
        });
        let request = Request {
            address: parse_client(client_ip),
            path: Some(&path),
            cert: cert.as_ref(),
        };
        // Fingerprint-only certificates carry no dates: no wall clock needed.
        let clock = Clock {
            monotonic_ns: self.monotonic_ns(),
            wall: time::OffsetDateTime::UNIX_EPOCH,
        };
        self.chain.check(&request, clock)
    }

    fn monotonic_ns(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// The path of a request URL as tlacacoca reads it (`urllib.parse.urlparse`),
/// with any query or fragment still on it (`CanonicalPath::parse` cuts them):
/// after the scheme (a letter, then letters, digits, `+`, `-`, `.`, then `:`)
/// and an authority (`//` up to the first `/`, `?` or `#`).
fn url_path(url: &str) -> &str {
    let is_scheme = |scheme: &str| {
        scheme.bytes().enumerate().all(|(index, byte)| {
            byte.is_ascii_alphabetic()
                || (index > 0 && (byte.is_ascii_digit() || matches!(byte, b'+' | b'-' | b'.')))
        })
    };
    // Byte scans, as every request goes through here: `str::find` with a
    // char pattern decodes UTF-8 on the way.
    let rest = match url.bytes().position(|byte| byte == b':') {
        Some(colon) if colon > 0 && is_scheme(&url[..colon]) => &url[colon + 1..],
        _ => url,
    };
    let Some(authority) = rest.strip_prefix("//") else {
        return rest;
    };
    let end = authority
        .bytes()
        .position(|byte| matches!(byte, b'/' | b'?' | b'#'));
    match end {
        Some(end) if authority.as_bytes()[end] == b'/' => &authority[end..],
        _ => "",
    }
}

/// A fingerprint for text that is not one: its SHA-256 under a domain tag,
/// so it can match no certificate's fingerprint on a list.
fn unlisted(text: &str) -> CertFingerprint {
    use sha2::Digest as _;
    let digest = sha2::Sha256::new()
        .chain_update(b"tessera: not a fingerprint\n")
        .chain_update(text.as_bytes())
        .finalize();
    CertFingerprint(digest.into())
}

/// The client certificate as DER bytes, or as its fingerprint text when the
/// caller has only that (its dates are then not checked).
fn peer_cert(cert: &Bound<'_, PyAny>) -> PyResult<PeerCert> {
    if let Ok(text) = cert.extract::<&str>() {
        let fingerprint = text.parse::<CertFingerprint>().map_err(errors::guard)?;
        return Ok(PeerCert {
            fingerprint,
            not_before: time::OffsetDateTime::UNIX_EPOCH,
            not_after: time::PrimitiveDateTime::MAX.assume_utc(),
        });
    }
    let der = cert
        .cast::<pyo3::types::PyBytes>()
        .map_err(|_| PyValueError::new_err("cert is DER bytes or a fingerprint string"))?;
    let info =
        CertificateInfo::parse(der.as_bytes(), "client certificate").map_err(errors::cert)?;
    Ok(PeerCert {
        fingerprint: CertFingerprint(*info.fingerprint().as_bytes()),
        not_before: info.not_before(),
        not_after: info.not_after(),
    })
}

/// A chain's `check_request` for `async` callers, as tlacacoca's
/// middlewares are called: `await check.process_request(url, ip, fingerprint)`
/// gives `convert(decision)`. The answer is a [`Ready`] awaitable, so a call
/// costs no coroutine; the answers to decisions without a wait are converted
/// once, when this is built, and shared.
#[pyclass(frozen, module = "tessera.guard")]
pub(crate) struct AsyncCheck {
    chain: Py<Chain>,
    convert: Py<PyAny>,
    answers: ByDecision<Py<Ready>>,
}

#[pymethods]
impl AsyncCheck {
    #[new]
    fn new(py: Python<'_>, chain: Py<Chain>, convert: Py<PyAny>) -> PyResult<Self> {
        let answers = ByDecision::new(|decision| {
            let decision = chain.get().shared.get(py, decision)?;
            Ready::new(py, convert.call1(py, (decision,))?)
        })?;
        Ok(Self {
            chain,
            convert,
            answers,
        })
    }

    /// An awaitable giving `convert` of the chain's `check_request` decision.
    #[pyo3(signature = (request_url, client_ip, client_cert_fingerprint=None))]
    fn process_request(
        &self,
        py: Python<'_>,
        request_url: &str,
        client_ip: &str,
        client_cert_fingerprint: Option<&str>,
    ) -> PyResult<Py<Ready>> {
        let chain = self.chain.get();
        let decision = chain.decide_request(request_url, client_ip, client_cert_fingerprint);
        if let Some(answer) = self.answers.get(&decision) {
            return Ok(answer.clone_ref(py));
        }
        let decision = chain.shared.get(py, decision)?;
        Ready::new(py, self.convert.call1(py, (decision,))?)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.chain)?;
        visit.call(&self.convert)?;
        visit.call(&self.answers.allowed)?;
        for (_, answer) in &self.answers.denied {
            visit.call(answer)?;
        }
        Ok(())
    }
}

/// A decision: true when allowed. A denial has a `reason` and, when rate
/// limited, `retry_after` (seconds, float) and `retry_after_secs` (whole
/// seconds to advertise, at least 1).
#[pyclass(frozen, get_all, module = "tessera.guard")]
pub(crate) struct Decision {
    allowed: bool,
    reason: Option<&'static str>,
    retry_after: Option<f64>,
    retry_after_secs: Option<u64>,
}

impl From<GuardDecision> for Decision {
    fn from(decision: GuardDecision) -> Self {
        match decision {
            GuardDecision::Allow => Self {
                allowed: true,
                reason: None,
                retry_after: None,
                retry_after_secs: None,
            },
            GuardDecision::Deny(denial) => Self {
                allowed: false,
                reason: Some(denial.reason.name()),
                retry_after: denial.retry_after.map(|wait| wait.as_secs_f64()),
                retry_after_secs: denial.retry_after.map(|_| denial.retry_after_secs()),
            },
        }
    }
}

#[pymethods]
impl Decision {
    fn __bool__(&self) -> bool {
        self.allowed
    }

    fn __repr__(&self) -> String {
        match (self.reason, self.retry_after) {
            (None, _) => "Decision(allowed=True)".to_owned(),
            (Some(reason), None) => format!("Decision(allowed=False, reason={reason:?})"),
            (Some(reason), Some(wait)) => {
                format!("Decision(allowed=False, reason={reason:?}, retry_after={wait:.3})")
            }
        }
    }
}

/// Keyed client ids: an HMAC of the address, so logs and rate-limit keys
/// never hold a raw address. `daily=True` rotates the id every UTC day.
#[pyclass(frozen, module = "tessera.guard")]
pub(crate) struct ClientIds(tessera_guard::ClientIds);

#[pymethods]
impl ClientIds {
    /// With `key` (32 bytes) the ids are stable across restarts; without, a
    /// random key is drawn.
    #[new]
    #[pyo3(signature = (key=None, *, daily=false))]
    fn new(key: Option<&[u8]>, daily: bool) -> PyResult<Self> {
        match key {
            None => Ok(Self(tessera_guard::ClientIds::new(rand::random(), daily))),
            Some(key) => {
                let key: [u8; 32] = key
                    .try_into()
                    .map_err(|_| PyValueError::new_err("key must be exactly 32 bytes"))?;
                Ok(Self(tessera_guard::ClientIds::new(key, daily)))
            }
        }
    }

    /// The key from a file (created with a random key when missing), as the
    /// servers' `--log-key-file`.
    #[staticmethod]
    #[pyo3(signature = (path, *, daily=false))]
    fn from_key_file(path: std::path::PathBuf, daily: bool) -> PyResult<Self> {
        tessera_guard::ClientIds::from_key_file(&path, daily)
            .map(Self)
            .map_err(errors::guard)
    }

    /// The id of `ip` (at `now`, UNIX seconds, for daily ids).
    #[pyo3(signature = (ip, *, now=None))]
    fn id(&self, ip: &str, now: Option<f64>) -> PyResult<String> {
        let address = parse_client(ip)
            .ok_or_else(|| GuardError::new_err(format!("{ip:?} is not an IP address")))?;
        Ok(self.0.id(address, time_arg::at(now)?))
    }
}
