//! GCRA rate limiting with bounded memory (`../shared/spec/guard.md` §7).
//!
//! A token bucket that starts full with `burst` tokens and refills at `rate`
//! per second is, exactly, GCRA on one `u64` per client: the theoretical
//! arrival time (TAT) in integer nanoseconds. Written here rather than taken
//! from `governor` because the spec needs a hard cap on tracked clients with a
//! stated eviction rule and an exact `retry_after`.
//!
//! Keys are the normalised address cut to a prefix (IPv4 /32, IPv6 /64 by
//! default). The table is split into shards, each a hash map from key to a slot
//! in a fixed-capacity slab under its own mutex, so a check on one key is
//! atomic (no over-admission across threads) and shards rarely contend. A full
//! shard evicts with a clock hand: of the next 8 slots it takes the first whose
//! TAT has passed (indistinguishable from a new client), else the one with the
//! smallest TAT, the client closest to a full bucket; an evicted client can gain
//! at most one burst. Memory therefore stays at `max_clients` entries whatever
//! the number of distinct addresses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use foldhash::fast::RandomState;

use crate::address::Bits;
use crate::Error;

/// Shards of the client table.
const SHARDS: usize = 64;
/// Slots the clock hand looks at per eviction.
const EVICTION_SAMPLE: usize = 8;

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

/// The in-memory store: sharded maps into fixed slabs with clock eviction.
pub struct MemoryStore {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    evictions: AtomicU64,
}

struct Shard {
    index: HashMap<RateKey, u32, RandomState>,
    slots: Vec<Slot>,
    capacity: usize,
    hand: usize,
}

#[derive(Clone, Copy)]
struct Slot {
    key: RateKey,
    tat: u64,
}

impl MemoryStore {
    /// A store holding at most `max_clients` keys.
    ///
    /// # Errors
    /// [`Error::Config`] for 0.
    pub fn new(max_clients: usize) -> Result<Self, Error> {
        if max_clients == 0 {
            return Err(Error::Config("max_clients must be at least 1".into()));
        }
        let shards = SHARDS.min(max_clients);
        let hasher = RandomState::default();
        let shards = (0..shards)
            .map(|i| {
                // Spread the cap exactly: the first `max_clients % shards` shards take one more.
                let capacity = max_clients / shards + usize::from(i < max_clients % shards);
                Mutex::new(Shard {
                    index: HashMap::with_capacity_and_hasher(capacity, hasher.clone()),
                    slots: Vec::with_capacity(capacity),
                    capacity,
                    hand: 0,
                })
            })
            .collect();
        Ok(Self {
            shards,
            hasher,
            evictions: AtomicU64::new(0),
        })
    }

    fn shard(&self, key: &RateKey) -> &Mutex<Shard> {
        use std::hash::BuildHasher;
        let hash = self.hasher.hash_one(key);
        &self.shards[(hash >> 32) as usize % self.shards.len()]
    }
}

impl RateStore for MemoryStore {
    fn check(&self, key: RateKey, now: u64, interval: u64, tolerance: u64) -> Result<(), u64> {
        let mut shard = self
            .shard(&key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(&slot) = shard.index.get(&key) {
            let slot = &mut shard.slots[slot as usize];
            let tat = slot.tat.max(now);
            if tat - now > tolerance {
                return Err(tat - tolerance - now);
            }
            slot.tat = tat + interval;
            return Ok(());
        }
        // A new key is a full bucket (TAT = now): always allowed since burst ≥ 1.
        let slot = Slot {
            key,
            tat: now + interval,
        };
        if shard.slots.len() < shard.capacity {
            let index = shard.slots.len() as u32;
            shard.slots.push(slot);
            shard.index.insert(key, index);
        } else {
            let victim = shard.victim(now);
            let old = shard.slots[victim];
            shard.index.remove(&old.key);
            shard.slots[victim] = slot;
            shard.index.insert(key, victim as u32);
            // Reusing a slot whose TAT has passed forgets nothing; only a client
            // still in debt is evicted.
            if old.tat > now {
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                shard
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .index
                    .len()
            })
            .sum()
    }

    fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }
}

impl Shard {
    /// The slot to reuse: the first of the next few whose TAT has passed, else the smallest TAT.
    fn victim(&mut self, now: u64) -> usize {
        let len = self.slots.len();
        let mut best = self.hand % len;
        for step in 0..EVICTION_SAMPLE.min(len) {
            let index = (self.hand + step) % len;
            if self.slots[index].tat <= now {
                best = index;
                break;
            }
            if self.slots[index].tat < self.slots[best].tat {
                best = index;
            }
        }
        self.hand = (best + 1) % len;
        best
    }
}

#[cfg(test)]
mod tests;
