//! Privacy-preserving client ids for logs (`../shared/spec/guard.md` §10):
//! `hex(HMAC-SHA256(key, packed address))[..16]`, with an optional daily key.

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

type HmacSha256 = Hmac<Sha256>;

/// Derives client ids from a secret 32-byte key.
#[derive(Clone)]
pub struct ClientIds {
    key: [u8; 32],
    daily: bool,
}

impl std::fmt::Debug for ClientIds {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIds")
            .field("daily", &self.daily)
            .finish_non_exhaustive()
    }
}

impl ClientIds {
    /// Ids under `key`; with `daily`, the key of each UTC day is derived from it.
    pub fn new(key: [u8; 32], daily: bool) -> Self {
        Self { key, daily }
    }

    /// A fresh random key (per process); persistent keys come from a key file.
    pub fn random() -> Self {
        Self::new(rand::random(), false)
    }

    /// The 16-hex-digit id of `address` at `now`.
    pub fn id(&self, address: IpAddr, now: OffsetDateTime) -> String {
        let key = if self.daily {
            self.day_key(now)
        } else {
            self.key
        };
        let mut mac = HmacSha256::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(&crate::address::packed(address));
        hex::encode(&mac.finalize().into_bytes()[..8])
    }

    fn day_key(&self, now: OffsetDateTime) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        let date = now.date();
        mac.update(
            format!(
                "tessera-log-v1:{:04}-{:02}-{:02}",
                date.year(),
                u8::from(date.month()),
                date.day()
            )
            .as_bytes(),
        );
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_keys_make_ids_unlinkable_across_days() {
        let ids = ClientIds::new([7; 32], true);
        let address: IpAddr = "203.0.113.7".parse().unwrap();
        let day1 = time::macros::datetime!(2026-11-23 10:00 UTC);
        let day2 = time::macros::datetime!(2026-11-24 10:00 UTC);
        assert_eq!(
            ids.id(address, day1),
            ids.id(address, day1 + time::Duration::hours(5))
        );
        assert_ne!(ids.id(address, day1), ids.id(address, day2));
        assert_eq!(ids.id(address, day1).len(), 16);
    }
}
