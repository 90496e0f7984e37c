//! Why an auth layer refused a frame: a closed set that the layers return,
//! [`crate::Error`] carries and the replies name. It depends on nothing else
//! of the crate, so the error type can name it without a module cycle.

/// Why a frame was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No auth section, or one that does not parse.
    Missing,
    /// A key id this layer does not know.
    UnknownKey,
    /// The MAC does not match (tampered frame, wrong key, swapped type…).
    BadMac,
    /// The timestamp is outside the window.
    Stale,
    /// The nonce was seen before within the window.
    Replayed,
    /// The replay cache is full of live nonces: refuse rather than forget.
    Overloaded,
    /// A frame this side signed itself, sent back to it (netaio's MAC does
    /// not cover the direction, netaio W2).
    Reflected,
    /// A capability token past its expiry.
    Expired,
    /// A capability token that is not valid here (other issuer, malformed).
    InvalidToken,
    /// A capability token whose revocation id was revoked.
    Revoked,
    /// A shared check (the fleet's revocation list) cannot say now, and its
    /// policy is to refuse.
    Unavailable,
}

impl AuthFailure {
    /// Snake-case name for logs and counters.
    pub fn name(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::UnknownKey => "unknown_key",
            Self::BadMac => "bad_mac",
            Self::Stale => "stale",
            Self::Replayed => "replayed",
            Self::Reflected => "reflected",
            Self::Overloaded => "overloaded",
            Self::Expired => "expired",
            Self::InvalidToken => "invalid_token",
            Self::Revoked => "revoked",
            Self::Unavailable => "unavailable",
        }
    }
}
