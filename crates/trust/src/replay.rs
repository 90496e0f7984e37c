//! Replay protection (weakness W4): each (holder key, nonce) is remembered
//! until its timestamp leaves the skew window; the cache has a hard cap and,
//! when full of live entries, refuses rather than forgets (fail closed).

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashSet};
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};

use crate::Error;

/// Where seen nonces live; a shared store can back a fleet.
pub trait ReplayCache: Send + Sync {
    /// Records (holder, nonce) until `expires_at` (UNIX seconds); `Err(Replay)`
    /// if it is already there and live.
    ///
    /// # Errors
    /// [`Error::Replay`], or [`Error::Limits`] when the cache is full of live entries.
    fn check_and_insert(
        &self,
        holder: &str,
        nonce: &str,
        expires_at: f64,
        now: f64,
    ) -> Result<(), Error>;
}

/// An in-memory cache with at most `cap` entries, about 90 bytes each (a
/// 32-byte digest of the pair, held in a set and in an expiry heap), so the
/// default cap costs about 90 MiB when full. Expired entries leave in expiry
/// order, O(log n) each: a full cache never rescans itself per request.
#[derive(Debug)]
pub struct MemoryReplayCache {
    cap: usize,
    live: Mutex<Live>,
}

/// A (holder, nonce) pair as a fixed-size key.
type Key = [u8; 32];

#[derive(Debug, Default)]
struct Live {
    keys: HashSet<Key>,
    by_expiry: BinaryHeap<Reverse<Expiring>>,
}

/// A key and when it expires, ordered by expiry.
#[derive(Debug, PartialEq)]
struct Expiring(f64, Key);

impl Eq for Expiring {}

impl PartialOrd for Expiring {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Expiring {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

impl MemoryReplayCache {
    /// Default cap: 1,000,000 nonces.
    pub const DEFAULT_CAP: usize = 1_000_000;

    /// A cache holding at most `cap` nonces.
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            live: Mutex::default(),
        }
    }

    /// Nonces held.
    pub fn len(&self) -> usize {
        self.lock().keys.len()
    }

    /// Whether no nonce is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ReplayCache for MemoryReplayCache {
    fn check_and_insert(
        &self,
        holder: &str,
        nonce: &str,
        expires_at: f64,
        now: f64,
    ) -> Result<(), Error> {
        let mut live = self.lock();
        let Live { keys, by_expiry } = &mut *live;
        while let Some(Reverse(Expiring(expiry, key))) = by_expiry.peek() {
            if *expiry >= now {
                break;
            }
            keys.remove(key);
            by_expiry.pop();
        }
        // The holder's length first, so no two pairs share the digested bytes.
        let key: Key = Sha256::new()
            .chain_update((holder.len() as u64).to_be_bytes())
            .chain_update(holder)
            .chain_update(nonce)
            .finalize()
            .into();
        if keys.contains(&key) {
            return Err(Error::Replay);
        }
        if keys.len() >= self.cap {
            return Err(Error::Limits("replay cache full of live nonces".into()));
        }
        keys.insert(key);
        by_expiry.push(Reverse(Expiring(expires_at, key)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_refused_the_second_time_and_the_cap_holds_under_a_million() {
        let cache = MemoryReplayCache::new(1000);
        cache.check_and_insert("k", "n1", 100.0, 0.0).unwrap();
        assert!(matches!(
            cache.check_and_insert("k", "n1", 100.0, 1.0),
            Err(Error::Replay)
        ));
        cache.check_and_insert("other", "n1", 100.0, 1.0).unwrap();
        // Past its window the nonce may come back (its timestamp is stale anyway).
        cache.check_and_insert("k", "n1", 300.0, 200.0).unwrap();
        for i in 0..1_000_000u32 {
            let now = f64::from(i);
            let _ = cache.check_and_insert("k", &i.to_string(), now + 600.0, now);
            assert!(cache.len() <= 1000);
        }
    }

    #[test]
    fn a_cache_full_of_live_nonces_refuses_and_frees_room_as_they_expire() {
        let cache = MemoryReplayCache::new(2);
        cache.check_and_insert("k", "a", 10.0, 0.0).unwrap();
        cache.check_and_insert("k", "b", 20.0, 0.0).unwrap();
        assert!(matches!(
            cache.check_and_insert("k", "c", 30.0, 5.0),
            Err(Error::Limits(_))
        ));
        cache.check_and_insert("k", "c", 30.0, 15.0).unwrap();
        assert!(matches!(
            cache.check_and_insert("k", "b", 30.0, 15.0),
            Err(Error::Replay)
        ));
        // The digest keeps ("ab", "c") apart from ("a", "bc").
        let pairs = MemoryReplayCache::new(10);
        pairs.check_and_insert("ab", "c", 10.0, 0.0).unwrap();
        pairs.check_and_insert("a", "bc", 10.0, 0.0).unwrap();
    }
}
