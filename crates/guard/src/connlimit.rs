//! Connection limits (`../shared/spec/guard.md` §5): a global cap and a cap per
//! rate-limit key, as RAII permits the driver holds for the life of a
//! connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::address::Bits;

/// Global and per-client connection caps.
#[derive(Debug)]
pub struct ConnectionLimits {
    max_total: usize,
    max_per_client: usize,
    ipv6_prefix: u8,
    total: AtomicUsize,
    per_client: Mutex<HashMap<Bits, usize>>,
}

/// A held connection slot; released on drop.
#[derive(Debug)]
pub struct ConnectionPermit {
    limits: Arc<ConnectionLimits>,
    client: Bits,
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionRefused {
    /// The global cap is reached.
    Total,
    /// This client's cap is reached.
    PerClient,
}

impl ConnectionLimits {
    /// Caps (defaults 1024 and 16 in the spec; IPv6 clients counted per /`ipv6_prefix`).
    pub fn new(max_total: usize, max_per_client: usize, ipv6_prefix: u8) -> Arc<Self> {
        Arc::new(Self {
            max_total: max_total.max(1),
            max_per_client: max_per_client.max(1),
            ipv6_prefix: ipv6_prefix.clamp(1, 128),
            total: AtomicUsize::new(0),
            per_client: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a slot for `address`, or says which cap refused it.
    ///
    /// # Errors
    /// [`ConnectionRefused`] when a cap is reached.
    pub fn acquire(
        self: &Arc<Self>,
        address: IpAddr,
    ) -> Result<ConnectionPermit, ConnectionRefused> {
        let client = match Bits::from(address) {
            Bits::V6(v6) => Bits::V6(v6 & (u128::MAX << (128 - u32::from(self.ipv6_prefix)))),
            v4 => v4,
        };
        if self.total.fetch_add(1, Ordering::AcqRel) >= self.max_total {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(ConnectionRefused::Total);
        }
        let mut per_client = self
            .per_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = per_client.entry(client).or_insert(0);
        if *count >= self.max_per_client {
            drop(per_client);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(ConnectionRefused::PerClient);
        }
        *count += 1;
        Ok(ConnectionPermit {
            limits: self.clone(),
            client,
        })
    }

    /// Connections held now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut per_client = self
            .limits
            .per_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = per_client.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                per_client.remove(&self.client);
            }
        }
        drop(per_client);
        self.limits.total.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_and_permits_release() {
        let limits = ConnectionLimits::new(3, 2, 64);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let b2: IpAddr = "2001:db8::2".parse().unwrap();
        let p1 = limits.acquire(a).unwrap();
        let _p2 = limits.acquire(a).unwrap();
        assert_eq!(limits.acquire(a).unwrap_err(), ConnectionRefused::PerClient);
        let _p3 = limits.acquire(b).unwrap();
        assert_eq!(limits.acquire(b2).unwrap_err(), ConnectionRefused::Total);
        drop(p1);
        assert_eq!(limits.open(), 2);
        let _p4 = limits.acquire(b2).unwrap();
        // b and b2 share a /64.
        assert_eq!(limits.acquire(b).unwrap_err(), ConnectionRefused::Total);
    }
}
