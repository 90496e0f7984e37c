//! The one error type of `tessera-trust`: a variant per check, so callers (and
//! the CLI) see which check failed (`../shared/spec/trust.md` §10). Nothing
//! escapes as a panic or an untyped error (weakness W1).

/// Why a request, token, job or frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The proof or request is syntactically unusable.
    #[error("malformed: {0}")]
    Malformed(String),
    /// The token does not parse or does not verify against the issuer key.
    #[error("token: {0}")]
    Token(String),
    /// The token's identity facts are missing or ambiguous.
    #[error("identity: {0}")]
    Identity(String),
    /// The token's revocation id is on the deny-list.
    #[error("revoked: worker credential is revoked")]
    Revoked,
    /// The timestamp is outside the skew window.
    #[error("stale: stale request (replay or clock skew)")]
    Stale,
    /// The proof-of-possession signature does not verify.
    #[error("pop: proof-of-possession signature failed")]
    Pop,
    /// The token is past its expiry.
    #[error("expired: token expired")]
    Expired,
    /// The policy denied the request or a token check failed.
    #[error("policy: worker not authorized for this operation")]
    Policy,
    /// A Datalog run limit was hit.
    #[error("limits: {0}")]
    Limits(String),
    /// The verifier's own input is unusable (policy text, request-fact names).
    #[error("config: {0}")]
    Config(String),
    /// The nonce was seen before within the skew window.
    #[error("replay: nonce already used")]
    Replay,
    /// A job signature is missing, malformed or wrong.
    #[error("job: {0}")]
    Job(String),
    /// Invalid input to mint / sign (bad key, reserved fact name, …).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A signer frame or connection problem.
    #[error("wire: {0}")]
    Wire(String),
}

impl Error {
    /// The kind name of spec §10 / §12.2.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::Token(_) => "token",
            Self::Identity(_) => "identity",
            Self::Revoked => "revoked",
            Self::Stale => "stale",
            Self::Pop => "pop",
            Self::Expired => "expired",
            Self::Policy => "policy",
            Self::Limits(_) => "limits",
            Self::Config(_) => "config",
            Self::Replay => "replay",
            Self::Job(_) => "job",
            Self::Invalid(_) => "usage",
            Self::Wire(_) => "wire",
        }
    }

    /// The detail without the kind prefix.
    pub fn detail(&self) -> String {
        let text = self.to_string();
        text.split_once(": ")
            .map_or(text.clone(), |(_, rest)| rest.to_owned())
    }
}
