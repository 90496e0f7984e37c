//! An entry point for the UDP datagram fuzz target (feature `fuzzing`): the
//! sans-IO node core fed one arbitrary datagram, as from a peer on the LAN.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::core::{CoreConfig, NodeCore};
use super::NodeIdentity;

/// Hands `datagram` to a fresh node core and drains what it wants to send.
/// Must never panic, whatever the bytes.
pub fn handle_datagram(datagram: &[u8]) {
    let identity = NodeIdentity::from_secret_bytes(&[7u8; 64])
        .unwrap_or_else(|_| unreachable!("64 bytes are a node key"));
    let config = CoreConfig::with_test_timings("fuzz".into(), 7757, Vec::new());
    let mut core = NodeCore::new(identity, config);
    let now = Instant::now();
    let from = SocketAddr::from(([192, 0, 2, 1], 7757));
    core.handle(from, datagram, now);
    core.tick(now + Duration::from_secs(1));
    while core.poll_transmit().is_some() {}
    while core.poll_event().is_some() {}
}
