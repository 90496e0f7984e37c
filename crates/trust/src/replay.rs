//! Replay protection (weakness W4): each (holder key, nonce) is remembered
//! until its timestamp leaves the skew window; the cache has a hard cap and,
//! when full of live entries, refuses rather than forgets (fail closed).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

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

/// An in-memory cache with at most `cap` entries.
#[derive(Debug)]
pub struct MemoryReplayCache {
    cap: usize,
    entries: Mutex<HashMap<(String, String), f64>>,
}

impl MemoryReplayCache {
    /// Default cap: 1,000,000 nonces.
    pub const DEFAULT_CAP: usize = 1_000_000;

    /// A cache holding at most `cap` nonces.
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Nonces held.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no nonce is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (holder.to_owned(), nonce.to_owned());
        if entries.get(&key).is_some_and(|expiry| *expiry >= now) {
            return Err(Error::Replay);
        }
        if entries.len() >= self.cap && !entries.contains_key(&key) {
            entries.retain(|_, expiry| *expiry >= now);
            if entries.len() >= self.cap {
                return Err(Error::Limits("replay cache full of live nonces".into()));
            }
        }
        entries.insert(key, expires_at);
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
        assert_eq!(
            cache.check_and_insert("k", "n1", 100.0, 1.0),
            Err(Error::Replay)
        );
        cache.check_and_insert("other", "n1", 100.0, 1.0).unwrap();
        // Past its window the nonce may come back (its timestamp is stale anyway).
        cache.check_and_insert("k", "n1", 300.0, 200.0).unwrap();
        for i in 0..1_000_000u32 {
            let now = f64::from(i);
            let _ = cache.check_and_insert("k", &i.to_string(), now + 600.0, now);
            assert!(cache.len() <= 1000);
        }
    }
}
