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

    /// The per-deployment key in `path` (32 raw bytes), created 0600 with a random
    /// key on first use, so ids stay stable across restarts but differ between
    /// deployments.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) naming the file when it cannot be read or created, or is
    /// not exactly 32 bytes.
    pub fn from_key_file(path: &std::path::Path, daily: bool) -> Result<Self, crate::Error> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let error = |what: &str, e: &dyn std::fmt::Display| {
            crate::Error::Config(format!("log key file {}: {what}: {e}", path.display()))
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| error("must hold exactly 32 bytes", &bytes.len()))?;
                Ok(Self::new(key, daily))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| error("creating its directory", &e))?;
                }
                let key: [u8; 32] = rand::random();
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| error("creating", &e))?;
                file.write_all(&key).map_err(|e| error("writing", &e))?;
                Ok(Self::new(key, daily))
            }
            Err(e) => Err(error("reading", &e)),
        }
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
    fn the_key_file_is_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("tessera-guard-key-{}", std::process::id()));
        let path = dir.join("log.key");
        let _ = std::fs::remove_file(&path);
        let address: IpAddr = "192.0.2.1".parse().unwrap();
        let now = OffsetDateTime::now_utc();
        let first = ClientIds::from_key_file(&path, false)
            .unwrap()
            .id(address, now);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            ClientIds::from_key_file(&path, false)
                .unwrap()
                .id(address, now),
            first
        );
        std::fs::write(&path, b"short").unwrap();
        assert!(ClientIds::from_key_file(&path, false).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

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
