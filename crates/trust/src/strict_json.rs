//! The signer's frames are strict RFC 8259 JSON (weakness W8): serde_json
//! already refuses a BOM, `NaN` and invalid UTF-8, and keeps the last of
//! duplicate keys; this pass refuses duplicates instead, at any depth, so two
//! parsers can never read one frame two ways.

use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};

/// Whether `text` is JSON with no object holding the same key twice.
pub(crate) fn has_no_duplicate_keys(text: &[u8]) -> bool {
    serde_json::from_slice::<NoDuplicateKeys>(text).is_ok()
}

/// Deserializes anything, failing on a repeated key in any object.
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Self)
    }
}

impl<'de> Visitor<'de> for NoDuplicateKeys {
    type Value = Self;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON without duplicate object keys")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key) {
                return Err(A::Error::custom("duplicate object key"));
            }
            map.next_value::<Self>()?;
        }
        Ok(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<Self>()?.is_some() {}
        Ok(self)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::has_no_duplicate_keys;

    #[test]
    fn duplicates_are_found_at_any_depth_and_numbers_of_any_size_pass() {
        assert!(has_no_duplicate_keys(
            br#"{"op":"sign_job","job":{"n":123456789012345678901234567890,"x":[1.5e300,{"a":1}]}}"#
        ));
        assert!(!has_no_duplicate_keys(
            br#"{"op":"mint","op":"public_key"}"#
        ));
        assert!(!has_no_duplicate_keys(br#"{"job":{"a":[{"k":1,"k":2}]}}"#));
        assert!(!has_no_duplicate_keys(b"{\"a\":NaN}"));
    }
}
