//! Minting tokens with exactly trust-core's authority block
//! (`../shared/spec/trust.md` §3): `worker_key`, `worker_id`, the app facts
//! (predicates in the given order, values sorted), `revocation`, and the expiry
//! check. Values are bound as terms, never spliced into Datalog text; names are
//! validated and the identity predicates are reserved (weakness W6).

use biscuit_auth::builder::{Check, Fact, Term};
use biscuit_auth::Biscuit;

use crate::{Error, SecretKey};

/// Predicates the token's identity uses; app facts may not.
pub const RESERVED: [&str; 5] = [
    "worker_key",
    "worker_id",
    "revocation",
    "time",
    "pop_version",
];

/// What a token binds.
#[derive(Clone, Debug, PartialEq)]
pub struct MintRequest {
    /// The holder's public key, 64 hex digits (stored lower case).
    pub worker_public: String,
    /// The holder id (may be empty).
    pub holder_id: String,
    /// App facts: predicate → values, in predicate order.
    pub facts: Vec<(String, Vec<String>)>,
    /// The application revocation id.
    pub revocation_id: String,
    /// UNIX seconds; the fraction is truncated.
    pub expires_at: f64,
}

/// Whether `name` is an ASCII identifier `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A fresh revocation id (128 random bits, hex) for tokens minted without one.
pub fn random_revocation_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Mints a token signed by `issuer`.
///
/// # Errors
/// [`Error::Invalid`] for a bad worker key, predicate name or expiry.
pub fn mint(issuer: &SecretKey, request: &MintRequest) -> Result<String, Error> {
    mint_inner(issuer, request, false)
}

/// Mints a token that also carries `pop_version(2)`: verifiers then refuse v1
/// proofs for it (no downgrade, weakness W5).
///
/// # Errors
/// As [`mint`].
pub fn mint_requiring_pop_v2(issuer: &SecretKey, request: &MintRequest) -> Result<String, Error> {
    mint_inner(issuer, request, true)
}

fn mint_inner(issuer: &SecretKey, request: &MintRequest, pop_v2: bool) -> Result<String, Error> {
    let worker = request.worker_public.to_ascii_lowercase();
    if worker.len() != 64 || !worker.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Invalid(
            "worker public key must be 64 hex digits".into(),
        ));
    }
    if !(request.expires_at.is_finite() && request.expires_at >= 0.0) {
        return Err(Error::Invalid(
            "expires_at must be a finite number of seconds ≥ 0".into(),
        ));
    }
    let invalid = |e: biscuit_auth::error::Token| Error::Invalid(e.to_string());
    let mut builder = Biscuit::builder()
        .fact(fact("worker_key", &worker))
        .map_err(invalid)?
        .fact(fact("worker_id", &request.holder_id))
        .map_err(invalid)?;
    for (name, values) in &request.facts {
        if !is_identifier(name) {
            return Err(Error::Invalid(format!("invalid fact predicate: {name:?}")));
        }
        if RESERVED.contains(&name.as_str()) {
            return Err(Error::Invalid(format!(
                "fact predicate {name:?} is reserved"
            )));
        }
        let mut sorted = values.clone();
        sorted.sort();
        for value in &sorted {
            builder = builder.fact(fact(name, value)).map_err(invalid)?;
        }
    }
    builder = builder
        .fact(fact("revocation", &request.revocation_id))
        .map_err(invalid)?;
    if pop_v2 {
        builder = builder
            .fact(Fact::new("pop_version".to_owned(), vec![Term::Integer(2)]))
            .map_err(invalid)?;
    }
    let mut check = Check::try_from("check if time($t), $t <= {expiry}").map_err(invalid)?;
    check
        .set("expiry", Term::Date(request.expires_at.trunc() as u64))
        .map_err(invalid)?;
    builder = builder.check(check).map_err(invalid)?;
    let token = builder.build(&issuer.biscuit()).map_err(invalid)?;
    token.to_base64().map_err(invalid)
}

fn fact(name: &str, value: &str) -> Fact {
    Fact::new(name.to_owned(), vec![Term::Str(value.to_owned())])
}
