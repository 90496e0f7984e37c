//! Client-certificate authorisation by path (`../shared/spec/guard.md` §9):
//! the rule with the longest prefix matching the canonical path on segment
//! boundaries decides; `any` needs a certificate, `listed` one on its list
//! (compared as bytes, in constant time); certificates outside their dates get
//! 62 unless expired certificates are accepted.

use std::fmt;
use std::str::FromStr;

use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use crate::{CanonicalPath, Denial, DenialReason, Error};

/// The SHA-256 of a DER certificate. Parsed from `sha256:<hex>`, bare hex or
/// colon pairs in any case; displayed as `sha256:<64 lowercase hex>`.
#[derive(Clone, Copy, Eq)]
pub struct CertFingerprint(pub [u8; 32]);

impl PartialEq for CertFingerprint {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Display for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl FromStr for CertFingerprint {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid = || {
            Error::Config(format!("invalid fingerprint {text:?}: expected sha256:<64 hex>, 64 hex digits or colon pairs"))
        };
        let trimmed = text.trim();
        let body = match trimmed.get(..7) {
            Some(prefix) if prefix.eq_ignore_ascii_case("sha256:") => &trimmed[7..],
            _ => trimmed,
        };
        let digits: String = if body.contains(':') {
            let pairs: Vec<&str> = body.split(':').collect();
            if pairs.len() != 32 || pairs.iter().any(|p| p.len() != 2) {
                return Err(invalid());
            }
            pairs.concat()
        } else {
            body.to_owned()
        };
        let mut bytes = [0u8; 32];
        if digits.len() != 64 {
            return Err(invalid());
        }
        hex::decode_to_slice(&digits, &mut bytes).map_err(|_| invalid())?;
        Ok(Self(bytes))
    }
}

/// The peer certificate as the guard sees it.
#[derive(Clone, Copy, Debug)]
pub struct PeerCert {
    /// SHA-256 of the DER certificate.
    pub fingerprint: CertFingerprint,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// What a path requires.
#[derive(Clone, Debug, PartialEq)]
pub enum CertMode {
    /// Nothing.
    Public,
    /// Some client certificate.
    Any,
    /// A certificate on this list.
    Listed(Vec<CertFingerprint>),
}

/// One rule.
#[derive(Clone, Debug, PartialEq)]
pub struct CertRule {
    /// Path prefix (canonicalised when compiled; matched on segment boundaries).
    pub prefix: String,
    /// What it requires.
    pub mode: CertMode,
}

impl CertRule {
    /// A rule requiring any certificate under `prefix`.
    pub fn any(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            mode: CertMode::Any,
        }
    }

    /// A rule requiring one of `fingerprints` under `prefix`.
    pub fn listed(prefix: &str, fingerprints: Vec<CertFingerprint>) -> Self {
        Self {
            prefix: prefix.to_owned(),
            mode: CertMode::Listed(fingerprints),
        }
    }
}

/// Compiled rules.
#[derive(Clone, Debug, Default)]
pub struct CertRules {
    /// (canonical prefix without trailing slash, rule), longest first.
    rules: Vec<(String, CertRule)>,
    clock_skew: Duration,
    accept_expired: bool,
}

impl CertRules {
    /// Compiles rules.
    ///
    /// # Errors
    /// [`Error::Config`] when two rules share a canonical prefix or a prefix
    /// holds a `%` that is not an escape.
    pub fn new(rules: Vec<CertRule>) -> Result<Self, Error> {
        let mut compiled: Vec<(String, CertRule)> = Vec::with_capacity(rules.len());
        for rule in rules {
            let prefix = CanonicalPath::parse(&rule.prefix).map_err(|e| {
                Error::Config(format!("certificate rule prefix {:?}: {e}", rule.prefix))
            })?;
            let key = prefix.as_str().trim_end_matches('/').to_owned();
            if compiled.iter().any(|(existing, _)| *existing == key) {
                return Err(Error::Config(format!(
                    "two certificate rules for the prefix {:?}",
                    rule.prefix
                )));
            }
            compiled.push((key, rule));
        }
        compiled.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        Ok(Self {
            rules: compiled,
            clock_skew: Duration::minutes(5),
            accept_expired: false,
        })
    }

    /// Tolerance for certificate dates. Default 5 minutes.
    pub fn clock_skew(&mut self, skew: Duration) -> &mut Self {
        self.clock_skew = skew;
        self
    }

    /// Ignore certificate dates (tlacacoca's behaviour). Default false.
    pub fn accept_expired(&mut self, accept: bool) -> &mut Self {
        self.accept_expired = accept;
        self
    }

    /// The rule for a path, if any (longest prefix, segment boundary).
    pub fn rule_for(&self, path: &CanonicalPath) -> Option<&CertRule> {
        let path = path.as_str();
        self.rules
            .iter()
            .find(|(prefix, _)| {
                prefix.is_empty()
                    || path == prefix
                    || path
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            })
            .map(|(_, rule)| rule)
    }

    /// Checks a request for `path` with an optional certificate at wall time `now`.
    pub fn check(
        &self,
        path: &CanonicalPath,
        cert: Option<&PeerCert>,
        now: OffsetDateTime,
    ) -> Result<(), Denial> {
        let Some(rule) = self.rule_for(path) else {
            return Ok(());
        };
        let listed = match &rule.mode {
            CertMode::Public => return Ok(()),
            CertMode::Any => None,
            CertMode::Listed(list) => Some(list),
        };
        let Some(cert) = cert else {
            return Err(Denial::new(DenialReason::CertRequired));
        };
        if !self.accept_expired
            && (now + self.clock_skew < cert.not_before || now - self.clock_skew > cert.not_after)
        {
            return Err(Denial::new(DenialReason::CertNotValid));
        }
        if let Some(list) = listed {
            // Compare against every entry so timing does not reveal the position.
            let found = list
                .iter()
                .fold(false, |found, entry| found | (*entry == cert.fingerprint));
            if !found {
                return Err(Denial::new(DenialReason::CertNotAuthorized));
            }
        }
        Ok(())
    }
}
