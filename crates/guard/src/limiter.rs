//! GCRA rate limiting with bounded memory (`../shared/spec/guard.md` §7).
//!
//! A token bucket that starts full with `burst` tokens and refills at `rate`
//! per second is, exactly, GCRA on one `u64` per client: the theoretical
//! arrival time (TAT) in integer nanoseconds. Written here rather than taken
//! from `governor` because the spec needs a hard cap on tracked clients with a
//! stated eviction rule and an exact `retry_after`.
//!
//! Keys are the normalised address cut to a prefix (IPv4 /32, IPv6 /64 by
//! default). The table is a fixed set-associative array split into shards
//! under their own mutexes, so a check on one key is
//! atomic (no over-admission across threads) and shards rarely contend. Each
//! key lives in one bucket of 8 entries: an entry whose TAT has passed is free
//! (indistinguishable from a new client), and a full bucket evicts its smallest
//! TAT, the client closest to a full bucket, so an evicted client gains at most
//! one burst. Memory therefore stays at `max_clients` entries whatever the
//! number of distinct addresses.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use foldhash::fast::RandomState;

use crate::address::Bits;
use crate::Error;

/// Shards of the client table (each behind its own mutex).
const SHARDS: usize = 64;

/// Rate-limit settings.
#[derive(Clone, Debug, PartialEq)]
pub struct LimiterConfig {
    /// Requests per second refilled (> 0, fractional allowed). Default 1.0.
    pub rate: f64,
    /// Bucket size (≥ 1). Default 10.
    pub burst: u32,
    /// IPv4 key prefix. Default 32.
    pub ipv4_prefix: u8,
    /// IPv6 key prefix. Default 64.
    pub ipv6_prefix: u8,
    /// Clients tracked at most. Default 65,536.
    pub max_clients: usize,
}

impl Default for LimiterConfig {
    fn default() -> Self {
        Self {
            rate: 1.0,
            burst: 10,
            ipv4_prefix: 32,
            ipv6_prefix: 64,
            max_clients: 65_536,
        }
    }
}

/// A rate-limit key: the address cut to the configured prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateKey {
    bits: Bits,
    prefix: u8,
}

impl RateKey {
    /// The address cut to the prefix (the network's first address).
    pub fn address(&self) -> IpAddr {
        match self.bits {
            Bits::V4(v4) => IpAddr::V4(v4.into()),
            Bits::V6(v6) => IpAddr::V6(v6.into()),
        }
    }

    /// The prefix length, in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

impl std::fmt::Display for RateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::address::key_text(self.bits, self.prefix))
    }
}

/// Where TATs live: in memory by default; a shared store can be added for fleets.
pub trait RateStore: Send + Sync {
    /// Applies GCRA to `key` at `now` (ns): `Ok(())` and the TAT advanced by
    /// `interval`, or `Err(wait_ns)` with the state unchanged.
    fn check(&self, key: RateKey, now: u64, interval: u64, tolerance: u64) -> Result<(), u64>;
    /// Keys currently held.
    fn len(&self) -> usize;
    /// Whether no key is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Evictions so far.
    fn evictions(&self) -> u64;
}

/// The per-client limiter.
pub struct Limiter {
    interval: u64,
    tolerance: u64,
    ipv4_prefix: u8,
    ipv6_prefix: u8,
    store: Box<dyn RateStore>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("interval_ns", &self.interval)
            .field("tolerance_ns", &self.tolerance)
            .field("tracked", &self.store.len())
            .finish()
    }
}

impl Limiter {
    /// A limiter with the in-memory store.
    ///
    /// # Errors
    /// [`Error::Config`] for a rate ≤ 0 or not finite, burst 0, a prefix out of
    /// range or `max_clients` 0.
    pub fn new(config: &LimiterConfig) -> Result<Self, Error> {
        let store = MemoryStore::new(config.max_clients)?;
        Self::with_store(config, Box::new(store))
    }

    /// A limiter over another store.
    ///
    /// # Errors
    /// As [`Limiter::new`].
    pub fn with_store(config: &LimiterConfig, store: Box<dyn RateStore>) -> Result<Self, Error> {
        let (interval, tolerance) = gcra_parameters(config.rate, config.burst)?;
        if config.ipv4_prefix == 0
            || config.ipv4_prefix > 32
            || config.ipv6_prefix == 0
            || config.ipv6_prefix > 128
        {
            return Err(Error::Config(
                "rate-limit prefixes must be 1-32 (IPv4) and 1-128 (IPv6)".into(),
            ));
        }
        Ok(Self {
            interval,
            tolerance,
            ipv4_prefix: config.ipv4_prefix,
            ipv6_prefix: config.ipv6_prefix,
            store,
        })
    }

    /// The key `address` is limited under.
    pub fn key(&self, address: IpAddr) -> RateKey {
        match Bits::from(address) {
            Bits::V4(v4) => RateKey {
                bits: Bits::V4(v4 & (u32::MAX << (32 - u32::from(self.ipv4_prefix)))),
                prefix: self.ipv4_prefix,
            },
            Bits::V6(v6) => RateKey {
                bits: Bits::V6(v6 & (u128::MAX << (128 - u32::from(self.ipv6_prefix)))),
                prefix: self.ipv6_prefix,
            },
        }
    }

    /// Charges one request for `address` at `now` (nanoseconds of a monotonic
    /// clock). `Err(retry_after)` when the budget is exhausted; a denied
    /// request costs nothing.
    pub fn check(&self, address: IpAddr, now: u64) -> Result<(), Duration> {
        self.store
            .check(self.key(address), now, self.interval, self.tolerance)
            .map_err(Duration::from_nanos)
    }

    /// The GCRA emission interval and tolerance, in nanoseconds.
    pub fn gcra(&self) -> (u64, u64) {
        (self.interval, self.tolerance)
    }

    /// Clients tracked now (never above `max_clients`).
    pub fn tracked(&self) -> usize {
        self.store.len()
    }

    /// Clients evicted from a full table so far.
    pub fn evictions(&self) -> u64 {
        self.store.evictions()
    }
}

/// One budget shared by everyone (`global_rate`, `global_burst`): a CAS loop on one TAT.
#[derive(Debug)]
pub struct GlobalLimiter {
    tat: AtomicU64,
    interval: u64,
    tolerance: u64,
}

impl GlobalLimiter {
    /// A global budget.
    ///
    /// # Errors
    /// As [`Limiter::new`].
    pub fn new(rate: f64, burst: u32) -> Result<Self, Error> {
        let (interval, tolerance) = gcra_parameters(rate, burst)?;
        Ok(Self {
            tat: AtomicU64::new(0),
            interval,
            tolerance,
        })
    }

    /// Charges one request at `now`.
    pub fn check(&self, now: u64) -> Result<(), Duration> {
        let mut current = self.tat.load(Ordering::Acquire);
        loop {
            let tat = current.max(now);
            if tat - now > self.tolerance {
                return Err(Duration::from_nanos(tat - self.tolerance - now));
            }
            match self.tat.compare_exchange_weak(
                current,
                tat + self.interval,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }
}

/// `T = round(1e9 / rate)`, `tau = (burst - 1) * T` (§7.2).
fn gcra_parameters(rate: f64, burst: u32) -> Result<(u64, u64), Error> {
    if !(rate.is_finite() && rate > 0.0) {
        return Err(Error::Config(format!(
            "rate must be a positive number of requests per second, not {rate}"
        )));
    }
    if burst == 0 {
        return Err(Error::Config("burst must be at least 1".into()));
    }
    let interval = (1e9 / rate).round();
    if !(1.0..=1e18).contains(&interval) {
        return Err(Error::Config(format!("rate {rate} is out of range")));
    }
    let interval = interval as u64;
    Ok((interval, interval.saturating_mul(u64::from(burst - 1))))
}

/// The in-memory store: a set-associative table. A key hashes to one bucket
/// of 8 entries; a lookup scans that bucket; an insert takes an entry
/// whose TAT has passed (equivalent to an empty one) or else evicts the
/// smallest TAT in the bucket. No allocation after construction, O(1) per
/// decision, and exactly `max_clients` entries of 32 bytes whatever the load.
pub struct MemoryStore {
    shards: Vec<Mutex<Vec<Entry>>>,
    hasher: RandomState,
    evictions: AtomicU64,
}

/// Entries per bucket: the eviction sample of §7.4.
const WAYS: usize = 8;

#[derive(Clone, Copy)]
struct Entry {
    key: RateKey,
    /// Theoretical arrival time; `<= now` means free.
    tat: u64,
}

impl MemoryStore {
    /// A store holding at most `max_clients` keys (rounded down to whole buckets, at least one).
    ///
    /// # Errors
    /// [`Error::Config`] for 0.
    pub fn new(max_clients: usize) -> Result<Self, Error> {
        if max_clients == 0 {
            return Err(Error::Config("max_clients must be at least 1".into()));
        }
        let buckets = (max_clients / WAYS).max(1);
        let shards = SHARDS.min(buckets);
        let empty = Entry {
            key: RateKey {
                bits: Bits::V4(0),
                prefix: 0,
            },
            tat: 0,
        };
        // Spread the buckets exactly: the first `buckets % shards` shards take one more.
        let shard = |i: usize| {
            Mutex::new(vec![
                empty;
                (buckets / shards + usize::from(i < buckets % shards))
                    * WAYS
            ])
        };
        Ok(Self {
            shards: (0..shards).map(shard).collect(),
            hasher: RandomState::default(),
            evictions: AtomicU64::new(0),
        })
    }

    /// Entries the table has room for.
    pub fn capacity(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// Keys still in debt at `now` (the others are equivalent to absent).
    pub fn in_debt(&self, now: u64) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                shard
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .iter()
                    .filter(|e| e.tat > now)
                    .count()
            })
            .sum()
    }
}

impl RateStore for MemoryStore {
    fn check(&self, key: RateKey, now: u64, interval: u64, tolerance: u64) -> Result<(), u64> {
        use std::hash::BuildHasher;
        let hash = self.hasher.hash_one(key);
        let shard = &self.shards[(hash as usize) % self.shards.len()];
        let mut entries = shard.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = ((hash >> 32) as usize) % (entries.len() / WAYS);
        let bucket = &mut entries[bucket * WAYS..(bucket + 1) * WAYS];
        // The key's own slot, in debt or refilled (a refilled key comes back
        // to it rather than taking a second slot); `tat > 0` skips empty slots.
        if let Some(entry) = bucket.iter_mut().find(|e| e.key == key && e.tat > 0) {
            let tat = entry.tat.max(now);
            if tat - now > tolerance {
                return Err(tat - tolerance - now);
            }
            entry.tat = tat + interval;
            return Ok(());
        }
        // A new key is a full bucket: always allowed since burst ≥ 1.
        let victim = bucket
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| e.tat)
            .map_or(0, |(index, _)| index);
        if bucket[victim].tat > now {
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
        bucket[victim] = Entry {
            key,
            tat: now + interval,
        };
        Ok(())
    }

    fn len(&self) -> usize {
        // Without a clock here, count every entry ever used; `in_debt` is exact.
        self.shards
            .iter()
            .map(|shard| {
                shard
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .iter()
                    .filter(|e| e.tat > 0)
                    .count()
            })
            .sum()
    }

    fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
