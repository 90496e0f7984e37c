//! The exception tree, and the one place each crate's error becomes one.
//!
//! ```text
//! TesseraError
//! ├── PowError ── SearchCancelled, SearchTimeout, InvalidStamp, StampSpent, InvalidChallenge
//! ├── GuardError
//! ├── CertError
//! ├── TofuError ── CertificateChanged
//! └── TrustError ── MalformedRequest, TokenInvalid, IdentityInvalid, Revoked, Stale,
//!                   PopFailed, Expired, PolicyDenied, LimitsExceeded, ConfigInvalid,
//!                   Replayed, Unavailable, JobInvalid, InvalidInput, SignerError
//! ```
//!
//! Errors about the caller's input that Python code checks the same way
//! everywhere (a negative count, a wrong type) stay `ValueError` / `TypeError`.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    tessera,
    TesseraError,
    PyException,
    "Base of every error Tessera raises."
);

create_exception!(
    tessera.pow,
    PowError,
    TesseraError,
    "A proof-of-work input or search failed."
);
create_exception!(
    tessera.pow,
    SearchCancelled,
    PowError,
    "The search was cancelled."
);
create_exception!(
    tessera.pow,
    SearchTimeout,
    PowError,
    "No solution before the timeout."
);
create_exception!(
    tessera.pow,
    InvalidStamp,
    PowError,
    "A Hashcash stamp failed a rule; the message says which."
);
create_exception!(
    tessera.pow,
    StampSpent,
    PowError,
    "The Hashcash stamp was already spent."
);
create_exception!(
    tessera.pow,
    InvalidChallenge,
    PowError,
    "A challenge is malformed, expired, or its nonce does not solve it."
);

create_exception!(
    tessera.guard,
    GuardError,
    TesseraError,
    "Invalid guard configuration or input."
);

create_exception!(
    tessera.certs,
    CertError,
    TesseraError,
    "A certificate, key or PEM file is unusable."
);

create_exception!(
    tessera.tofu,
    TofuError,
    TesseraError,
    "The TOFU store failed, or a host or fingerprint is invalid."
);
create_exception!(
    tessera.tofu,
    CertificateChanged,
    TofuError,
    "A server presented another certificate than the pinned one."
);

create_exception!(
    tessera.trust,
    TrustError,
    TesseraError,
    "A trust check refused, or trust input is unusable."
);
create_exception!(
    tessera.trust,
    MalformedRequest,
    TrustError,
    "The proof or request is syntactically unusable."
);
create_exception!(
    tessera.trust,
    TokenInvalid,
    TrustError,
    "The token does not parse or does not verify against the issuer key."
);
create_exception!(
    tessera.trust,
    IdentityInvalid,
    TrustError,
    "The token's identity facts are missing or ambiguous."
);
create_exception!(
    tessera.trust,
    Revoked,
    TrustError,
    "The token's revocation id is revoked."
);
create_exception!(
    tessera.trust,
    Stale,
    TrustError,
    "The request's timestamp is outside the skew window."
);
create_exception!(
    tessera.trust,
    PopFailed,
    TrustError,
    "The proof-of-possession signature does not verify."
);
create_exception!(
    tessera.trust,
    Expired,
    TrustError,
    "The token is past its expiry."
);
create_exception!(
    tessera.trust,
    PolicyDenied,
    TrustError,
    "The policy denied the request."
);
create_exception!(
    tessera.trust,
    LimitsExceeded,
    TrustError,
    "A Datalog run limit was hit."
);
create_exception!(
    tessera.trust,
    ConfigInvalid,
    TrustError,
    "The verifier's own input (policy, fact names) is unusable."
);
create_exception!(
    tessera.trust,
    Replayed,
    TrustError,
    "The request's nonce was already used."
);
create_exception!(
    tessera.trust,
    Unavailable,
    TrustError,
    "A shared check cannot answer now, and its policy is to refuse."
);
create_exception!(
    tessera.trust,
    JobInvalid,
    TrustError,
    "A job signature is missing, malformed or wrong."
);
create_exception!(
    tessera.trust,
    InvalidInput,
    TrustError,
    "Invalid input to mint or sign (bad key, reserved fact name, ...)."
);
create_exception!(
    tessera.trust,
    SignerError,
    TrustError,
    "The signer connection failed or broke the framing rules."
);

/// Adds every exception class to the native module.
pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    macro_rules! add {
        ($($name:ident),* $(,)?) => {
            $(module.add(stringify!($name), py.get_type::<$name>())?;)*
        };
    }
    add!(
        TesseraError,
        PowError,
        SearchCancelled,
        SearchTimeout,
        InvalidStamp,
        StampSpent,
        InvalidChallenge,
        GuardError,
        CertError,
        TofuError,
        CertificateChanged,
        TrustError,
        MalformedRequest,
        TokenInvalid,
        IdentityInvalid,
        Revoked,
        Stale,
        PopFailed,
        Expired,
        PolicyDenied,
        LimitsExceeded,
        ConfigInvalid,
        Replayed,
        Unavailable,
        JobInvalid,
        InvalidInput,
        SignerError,
    );
    Ok(())
}

/// A `tessera-pow` error as its exception.
pub(crate) fn pow(error: tessera_pow::Error) -> PyErr {
    use tessera_pow::Error as E;
    let message = error.to_string();
    match error {
        E::Cancelled => SearchCancelled::new_err(message),
        E::DeadlineExceeded => SearchTimeout::new_err(message),
        E::InvalidStamp(_) => InvalidStamp::new_err(message),
        E::InvalidChallenge(_) => InvalidChallenge::new_err(message),
        _ => PowError::new_err(message),
    }
}

/// A `tessera-guard` error as its exception.
pub(crate) fn guard(error: tessera_guard::Error) -> PyErr {
    GuardError::new_err(error.to_string())
}

/// A `tessera-tls` error as its exception.
pub(crate) fn cert(error: tessera_tls::Error) -> PyErr {
    CertError::new_err(error.to_string())
}

/// A `tessera-trust` error as its exception.
pub(crate) fn trust(error: tessera_trust::Error) -> PyErr {
    use tessera_trust::Error as E;
    let message = error.to_string();
    match error {
        E::Malformed(_) => MalformedRequest::new_err(message),
        E::Token(_) => TokenInvalid::new_err(message),
        E::Identity(_) => IdentityInvalid::new_err(message),
        E::Revoked => Revoked::new_err(message),
        E::Stale => Stale::new_err(message),
        E::Pop => PopFailed::new_err(message),
        E::Expired => Expired::new_err(message),
        E::Policy => PolicyDenied::new_err(message),
        E::Limits(_) => LimitsExceeded::new_err(message),
        E::Config(_) => ConfigInvalid::new_err(message),
        E::Replay => Replayed::new_err(message),
        E::Unavailable(_) => Unavailable::new_err(message),
        E::Job(_) => JobInvalid::new_err(message),
        E::Invalid(_) => InvalidInput::new_err(message),
        _ => SignerError::new_err(message),
    }
}
