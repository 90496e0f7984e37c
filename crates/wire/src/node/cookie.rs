//! Return routability for newcomers. Identities cost nothing to make and a
//! UDP source address costs nothing to forge, so a flood of fresh signed
//! adverts from many spoofed addresses could fill the peer table. A node
//! therefore admits a node it does not know only once that node has shown
//! it receives at the address it sends from: the first advert is answered
//! with a cookie sent to that address, and only an advert that brings the
//! cookie back joins the table. A forged source never sees its cookie.
//!
//! The cookie is a MAC of the address and the node id under a key this node
//! draws at start, for one period of [`COOKIE_PERIOD`] (the current or the
//! previous one is accepted): the node keeps no state per newcomer. A
//! `COOKIE` datagram (52 bytes) is smaller than the advert that asked for
//! it, so answering spoofed adverts amplifies nothing.

use std::net::IpAddr;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::identity::NodeId;

/// How long a cookie stays valid: one to two periods.
pub(crate) const COOKIE_PERIOD: Duration = Duration::from_secs(30);

/// Issues and checks cookies; stateless apart from its key.
pub(crate) struct CookieJar {
    key: [u8; 32],
}

impl CookieJar {
    pub(crate) fn new() -> Self {
        Self {
            key: rand::random(),
        }
    }

    /// The cookie for `node` advertising from `address`, in the period
    /// `elapsed` (time since the node started) falls in.
    pub(crate) fn issue(&self, elapsed: Duration, address: IpAddr, node: &NodeId) -> [u8; 16] {
        let tag = self
            .mac(period(elapsed), address, node)
            .finalize()
            .into_bytes();
        let mut cookie = [0u8; 16];
        cookie.copy_from_slice(&tag[..16]);
        cookie
    }

    /// Whether `cookie` was issued for `node` at `address` in this period
    /// or the one before (compared in constant time).
    pub(crate) fn check(
        &self,
        elapsed: Duration,
        address: IpAddr,
        node: &NodeId,
        cookie: &[u8; 16],
    ) -> bool {
        let now = period(elapsed);
        [Some(now), now.checked_sub(1)]
            .into_iter()
            .flatten()
            .any(|period| {
                self.mac(period, address, node)
                    .verify_truncated_left(cookie)
                    .is_ok()
            })
    }

    fn mac(&self, period: u64, address: IpAddr, node: &NodeId) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(b"tessera-node cookie");
        mac.update(&period.to_be_bytes());
        match address {
            IpAddr::V4(v4) => mac.update(&v4.to_ipv6_mapped().octets()),
            IpAddr::V6(v6) => mac.update(&v6.octets()),
        }
        mac.update(&node.0);
        mac
    }
}

fn period(elapsed: Duration) -> u64 {
    elapsed.as_secs() / COOKIE_PERIOD.as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_holds_for_its_address_node_and_two_periods_only() {
        let jar = CookieJar::new();
        let (here, there) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let (node, other) = (NodeId([1; 32]), NodeId([2; 32]));
        let start = Duration::from_secs(100);
        let cookie = jar.issue(start, here, &node);
        assert!(jar.check(start, here, &node, &cookie));
        assert!(jar.check(start + COOKIE_PERIOD, here, &node, &cookie));
        assert!(!jar.check(start + COOKIE_PERIOD * 2, here, &node, &cookie));
        assert!(!jar.check(start, there, &node, &cookie));
        assert!(!jar.check(start, here, &other, &cookie));
        assert!(!CookieJar::new().check(start, here, &node, &cookie));
    }
}
