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
        // 64 hex digits, or 32 colon-separated pairs (3 × 32 − 1 characters);
        // decoded in place, without allocating.
        let mut bytes = [0u8; 32];
        let digits = body.as_bytes();
        let decoded = match digits.len() {
            64 => digits
                .chunks_exact(2)
                .zip(&mut bytes)
                .all(|(pair, byte)| decode_pair(pair, byte)),
            95 => digits.chunks(3).zip(&mut bytes).all(|(chunk, byte)| {
                chunk.get(2).is_none_or(|c| *c == b':') && decode_pair(&chunk[..2], byte)
            }),
            _ => false,
        };
        if !decoded {
            return Err(invalid());
        }
        Ok(Self(bytes))
    }
}

/// Two hex digits (either case) into `byte`; false for anything else.
fn decode_pair(pair: &[u8], byte: &mut u8) -> bool {
    fn nibble(digit: u8) -> Option<u8> {
        match digit {
            b'0'..=b'9' => Some(digit - b'0'),
            b'a'..=b'f' => Some(digit - b'a' + 10),
            b'A'..=b'F' => Some(digit - b'A' + 10),
            _ => None,
        }
    }
    match (nibble(pair[0]), nibble(pair[1])) {
        (Some(high), Some(low)) => {
            *byte = high << 4 | low;
            true
        }
        _ => false,
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

#[cfg(test)]
mod fingerprint_tests {
    use super::CertFingerprint;

    #[test]
    fn every_documented_spelling_parses_to_the_same_value() {
        let hex = "ab".repeat(31) + "cd";
        let expected: CertFingerprint = format!("sha256:{hex}").parse().unwrap();
        let pairs: Vec<String> = (0..32).map(|i| hex[2 * i..2 * i + 2].to_owned()).collect();
        for spelling in [
            hex.clone(),
            hex.to_uppercase(),
            format!("SHA256:{hex}"),
            format!("  sha256:{hex}\n"),
            pairs.join(":"),
            format!("sha256:{}", pairs.join(":").to_uppercase()),
        ] {
            assert_eq!(
                spelling.parse::<CertFingerprint>().unwrap(),
                expected,
                "{spelling}"
            );
        }
    }

    #[test]
    fn wrong_lengths_and_digits_are_refused() {
        let hex = "ab".repeat(32);
        let pairs = vec!["ab"; 32].join(":");
        for bad in [
            String::new(),
            hex[..63].to_owned(),
            format!("{hex}0"),
            format!("sha256:{}", "zz".repeat(32)),
            "a".repeat(95),
            vec!["ab"; 31].join(":"),
            format!("{}:abc", vec!["ab"; 30].join(":")),
            pairs.replacen(':', ";", 1),
            format!("sha1:{hex}"),
        ] {
            assert!(bad.parse::<CertFingerprint>().is_err(), "{bad:?}");
        }
    }
}
