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
    /// In constant time: the bytes' differences are gathered without a
    /// branch and tested once.
    fn eq(&self, other: &Self) -> bool {
        let difference = self
            .0
            .iter()
            .zip(&other.0)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b));
        difference.ct_eq(&0).into()
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
        // 64 hex digits, or 32 colon-separated pairs (3 × 32 − 1 characters).
        let body = body.as_bytes();
        let digits = match body.len() {
            64 => <[u8; 64]>::try_from(body).map_err(|_| invalid())?,
            95 => without_separators(body).ok_or_else(invalid)?,
            _ => return Err(invalid()),
        };
        let bytes = decode_hex(&digits).ok_or_else(invalid)?;
        Ok(Self(bytes))
    }
}

/// The 64 digits of 32 colon-separated pairs; `None` if a separator is not `:`.
fn without_separators(pairs: &[u8]) -> Option<[u8; 64]> {
    let mut digits = [0u8; 64];
    for (pair, chunk) in digits.chunks_exact_mut(2).zip(pairs.chunks(3)) {
        if chunk.get(2).is_some_and(|separator| *separator != b':') {
            return None;
        }
        pair.copy_from_slice(&chunk[..2]);
    }
    Some(digits)
}

/// 64 hex digits (either case) into 32 bytes, or `None`. Plain arithmetic
/// on fixed-size arrays, without a branch per digit, so the compiler can
/// vectorise it: every request with a certificate comes through here.
fn decode_hex(digits: &[u8; 64]) -> Option<[u8; 32]> {
    let mut nibbles = [0u8; 64];
    let mut valid = true;
    for (nibble, &digit) in nibbles.iter_mut().zip(digits) {
        let lower = digit | 0x20;
        let is_digit = digit.wrapping_sub(b'0') < 10;
        let is_letter = lower.wrapping_sub(b'a') < 6;
        *nibble = if is_digit {
            digit.wrapping_sub(b'0')
        } else {
            lower.wrapping_sub(b'a' - 10)
        };
        valid &= is_digit | is_letter;
    }
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(nibbles.chunks_exact(2)) {
        *byte = pair[0] << 4 | pair[1];
    }
    valid.then_some(bytes)
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

    /// Whether `now` lies within the certificate's dates, give or take the
    /// clock skew. As nanoseconds: date arithmetic on `OffsetDateTime`s
    /// costs more than all the rest of a decision.
    fn within_dates(&self, cert: &PeerCert, now: OffsetDateTime) -> bool {
        let now = now.unix_timestamp_nanos();
        let skew = self.clock_skew.whole_nanoseconds();
        now + skew >= cert.not_before.unix_timestamp_nanos()
            && now - skew <= cert.not_after.unix_timestamp_nanos()
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
        if !self.accept_expired && !self.within_dates(cert, now) {
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
    use proptest::prelude::*;

    /// What a fingerprint's text means, written the plain way.
    fn model(text: &str) -> Option<[u8; 32]> {
        let text = text.trim();
        let body = match text.get(..7) {
            Some(prefix) if prefix.eq_ignore_ascii_case("sha256:") => &text[7..],
            _ => text,
        };
        let hex: String = match body.len() {
            64 => body.to_owned(),
            95 if body.bytes().skip(2).step_by(3).all(|byte| byte == b':') => {
                body.split(':').collect()
            }
            _ => return None,
        };
        hex::decode(hex).ok()?.try_into().ok()
    }

    proptest! {
        #[test]
        fn parsing_agrees_with_the_plain_reading(
            text in prop_oneof![
                "(sha256:|SHA256:| )?[0-9a-fA-F]{64}",
                "(sha256:)?([0-9a-fA-F]{2}:){31}[0-9a-fA-F]{2}",
                "(sha256:)?[0-9a-fA-Fg:;]{62,97}",
                "\\PC{0,100}",
            ]
        ) {
            let parsed = text.parse::<CertFingerprint>().ok().map(|f| f.0);
            prop_assert_eq!(parsed, model(&text), "{:?}", text);
        }
    }

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
