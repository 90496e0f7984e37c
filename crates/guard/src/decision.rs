//! The outcome of a guard (`../shared/spec/guard.md` §2–§3): typed, with no protocol's wording (Gemini words its denials in tessera-gemini).

use std::fmt;
use std::time::Duration;

/// Allow, or deny with a reason.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Decision {
    /// Go on.
    Allow,
    /// Refuse.
    Deny(Denial),
}

/// A refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// Why.
    pub reason: DenialReason,
    /// For [`DenialReason::RateLimited`]: how long until the same request is allowed.
    pub retry_after: Option<Duration>,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DenialReason {
    /// Per-client or global budget exhausted (44).
    RateLimited,
    /// The ACL denied the address (53).
    AccessDenied,
    /// The path needs a client certificate (60).
    CertRequired,
    /// The certificate is not on the path's list (61).
    CertNotAuthorized,
    /// The certificate is outside its validity dates (62).
    CertNotValid,
}

impl DenialReason {
    /// Every reason, for counters.
    pub const ALL: [Self; 5] = [
        Self::RateLimited,
        Self::AccessDenied,
        Self::CertRequired,
        Self::CertNotAuthorized,
        Self::CertNotValid,
    ];

    /// Snake-case name used in logs, metrics and the vectors.
    pub fn name(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::AccessDenied => "access_denied",
            Self::CertRequired => "cert_required",
            Self::CertNotAuthorized => "cert_not_authorized",
            Self::CertNotValid => "cert_not_valid",
        }
    }
}

impl fmt::Display for DenialReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Denial {
    pub(crate) fn new(reason: DenialReason) -> Self {
        Self {
            reason,
            retry_after: None,
        }
    }

    /// Whole seconds to advertise: `retry_after` rounded up, at least 1 (§7.3).
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.map_or(1, |wait| {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            secs.max(1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up() {
        let d = |ns: u64| Denial {
            reason: DenialReason::RateLimited,
            retry_after: Some(Duration::from_nanos(ns)),
        };
        assert_eq!(d(1).retry_after_secs(), 1);
        assert_eq!(d(1_000_000_000).retry_after_secs(), 1);
        assert_eq!(d(1_000_000_001).retry_after_secs(), 2);
        assert_eq!(d(3_875_000_000).retry_after_secs(), 4);
    }
}
