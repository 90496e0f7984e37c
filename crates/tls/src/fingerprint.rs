//! SHA-256 certificate fingerprints: the identity Tessera pins, logs and compares.
//!
//! Displayed as `sha256:<64 lowercase hex>` (the form tlacacoca and nauyaca print);
//! parsed from that form, bare hex or colon-separated pairs in any letter case
//! (`../shared/spec/guard.md` §9.1). Comparison is on the bytes, in constant time.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Error;

/// The SHA-256 digest of a DER-encoded certificate.
#[derive(Clone, Copy, Eq, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    /// Wraps 32 digest bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 digest bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex digits, no prefix.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Colon-separated upper-case pairs, as `openssl x509 -fingerprint -sha256` prints.
    pub fn to_colon_hex(&self) -> String {
        let mut out = String::with_capacity(32 * 3 - 1);
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(':');
            }
            out.push_str(&format!("{byte:02X}"));
        }
        out
    }

    /// The first 16 hex digits: how certificate identities appear in logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }
}

impl PartialEq for Fingerprint {
    /// Constant time: a fingerprint may be an authorisation secret.
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::hash::Hash for Fingerprint {
    /// Consistent with `eq`: both look at the 32 bytes.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = Error;

    /// Accepts `sha256:<hex>`, bare hex and colon-separated pairs, any case.
    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidFingerprint {
            text: text.chars().take(120).collect(),
        };
        let trimmed = text.trim();
        let body = match trimmed.get(..7) {
            Some(prefix) if prefix.eq_ignore_ascii_case("sha256:") => &trimmed[7..],
            _ => trimmed,
        };
        let digits: String = if body.contains(':') {
            let pairs: Vec<&str> = body.split(':').collect();
            if pairs.len() != 32 || pairs.iter().any(|pair| pair.len() != 2) {
                return Err(invalid());
            }
            pairs.concat()
        } else {
            body.to_owned()
        };
        if digits.len() != 64 {
            return Err(invalid());
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&digits, &mut bytes).map_err(|_| invalid())?;
        Ok(Self(bytes))
    }
}

impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn every_accepted_spelling_parses_to_the_same_bytes() {
        let plain: Fingerprint = HEX.parse().unwrap();
        let prefixed: Fingerprint = format!("sha256:{HEX}").parse().unwrap();
        let upper: Fingerprint = format!("SHA256:{}", HEX.to_uppercase()).parse().unwrap();
        let colon: Fingerprint = plain.to_colon_hex().parse().unwrap();
        let colon_lower: Fingerprint = plain.to_colon_hex().to_lowercase().parse().unwrap();
        for other in [prefixed, upper, colon, colon_lower] {
            assert_eq!(plain, other);
        }
        assert_eq!(plain.to_string(), format!("sha256:{HEX}"));
        assert_eq!(plain.short(), &HEX[..16]);
    }

    #[test]
    fn malformed_spellings_are_rejected() {
        for bad in [
            "",
            "sha256:",
            &HEX[..63],
            &format!("{HEX}00"),
            &format!("md5:{HEX}"),
            &HEX.replace('9', "g"),
            "9F:86",
            &format!("sha1:{HEX}"),
        ] {
            assert!(bad.parse::<Fingerprint>().is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn fingerprint_of_der_is_sha256() {
        assert_eq!(Fingerprint::of_der(b"test").to_hex(), HEX);
    }

    proptest! {
        #[test]
        fn display_and_colon_forms_round_trip(bytes in any::<[u8; 32]>()) {
            let fp = Fingerprint::from_bytes(bytes);
            prop_assert_eq!(fp.to_string().parse::<Fingerprint>().unwrap(), fp);
            prop_assert_eq!(fp.to_colon_hex().parse::<Fingerprint>().unwrap(), fp);
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,200}") {
            let _ = text.parse::<Fingerprint>();
        }
    }
}
