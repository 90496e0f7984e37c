//! Replay caches shared by a fleet: an item (a signed frame's sender and
//! counter, a request nonce, a Hashcash stamp, a PoW challenge) is recorded
//! with `SET NX` and the expiry after which it could not be accepted anyway,
//! so an item used on one server is refused on every other. The key holds a
//! digest of the item, so its size is fixed whatever the item's.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::{keys, Error, Store};

/// What an item is; each kind has keys of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReplayKind {
    /// A wire frame signed with HMAC: sender session and counter.
    WireFrame,
    /// A capability-token request: holder and nonce.
    TrustNonce,
    /// A Hashcash stamp, spent until it expires.
    HashcashStamp,
    /// A SHA-256 proof-of-work challenge, single use.
    PowChallenge,
}

impl ReplayKind {
    /// Every kind, for status reports.
    pub const ALL: [Self; 4] = [
        Self::WireFrame,
        Self::TrustNonce,
        Self::HashcashStamp,
        Self::PowChallenge,
    ];

    /// The name used in keys and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::WireFrame => "wire",
            Self::TrustNonce => "nonce",
            Self::HashcashStamp => "stamp",
            Self::PowChallenge => "challenge",
        }
    }
}

/// Shared replay caches on one store.
#[derive(Debug, Clone)]
pub struct FleetReplay {
    store: Arc<Store>,
}

impl FleetReplay {
    /// Replay caches on `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    /// Records `item` of `kind` for `ttl`: `Ok(true)` the first time on any
    /// server, `Ok(false)` when it was already recorded and has not expired.
    ///
    /// # Errors
    /// [`Error::Timeout`] or [`Error::Redis`] when the store cannot say:
    /// the caller's policy decides (by default, refuse).
    pub async fn first_use(
        &self,
        kind: ReplayKind,
        item: &[u8],
        ttl: Duration,
    ) -> Result<bool, Error> {
        let digest = Sha256::new()
            .chain_update(kind.name())
            .chain_update([0])
            .chain_update(item)
            .finalize();
        // 128 bits of the digest: no collision among the items one TTL holds.
        let key = keys::replay(kind.name(), &hex::encode(&digest[..16]));
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut connection = self.store.connection()?;
        let set: Option<String> = self
            .store
            .call(
                redis::cmd("SET")
                    .arg(key)
                    .arg(b"")
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async(&mut connection),
            )
            .await?;
        Ok(set.is_some())
    }
}
