//! The one error type of `tessera-trust`: a variant per check, so callers (and
//! the CLI) see which check failed (`../shared/spec/trust.md` §10). Nothing
//! escapes as a panic or an untyped error (weakness W1).

use std::io;

/// Why a request, token, job or frame was refused.
///
/// [`Error::is_peer_fault`] tells what the caller sent wrong from this
/// side's configuration, input and sockets.
#[derive(Debug, thiserror::Error)]
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
    /// A shared check (revocation list, replay store) cannot say now, and
    /// its policy is to refuse.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A job signature is missing, malformed or wrong.
    #[error("job: {0}")]
    Job(String),
    /// Invalid input to mint / sign (bad key, reserved fact name, …).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A signer frame that breaks the framing rules.
    #[error("wire: {0}")]
    Frame(FrameFault),
    /// A signer socket failed (bind, connect, read, write).
    #[error("wire: {0}")]
    Io(#[from] io::Error),
    /// The signer's connection stage could not be set up.
    #[error("wire: {0}")]
    Stage(#[from] tessera_serve::Error),
}

/// How a signer frame broke the framing rules (spec §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameFault {
    /// The length prefix exceeds the frame cap.
    #[error("signer frame too large")]
    TooLarge,
    /// The body is not a strict UTF-8 JSON object.
    #[error("signer frame is not an object")]
    NotAnObject,
    /// The connection closed inside a frame.
    #[error("signer connection closed mid-frame")]
    Truncated,
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
            Self::Unavailable(_) => "unavailable",
            Self::Job(_) => "job",
            Self::Invalid(_) => "usage",
            Self::Frame(_) | Self::Io(_) | Self::Stage(_) => "wire",
        }
    }

    /// Whether the caller is at fault (what it sent is malformed, forged,
    /// stale, replayed, revoked, expired or not allowed) rather than this
    /// side's configuration, input or sockets.
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            Self::Malformed(_)
                | Self::Token(_)
                | Self::Identity(_)
                | Self::Revoked
                | Self::Stale
                | Self::Pop
                | Self::Expired
                | Self::Policy
                | Self::Replay
                | Self::Job(_)
                | Self::Frame(_)
        )
    }

    /// The detail without the kind prefix.
    pub fn detail(&self) -> String {
        let text = self.to_string();
        text.split_once(": ")
            .map_or(text.clone(), |(_, rest)| rest.to_owned())
    }
}
