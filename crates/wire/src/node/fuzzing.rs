//! An entry point for the UDP datagram fuzz target (feature `fuzzing`): the
//! sans-IO node core fed one arbitrary datagram, as from a peer on the LAN.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::core::{CoreConfig, NodeCore, MAX_PAYLOAD};
use super::NodeIdentity;

/// Hands `datagram` to a fresh node core and drains what it wants to send.
/// Must never panic, whatever the bytes.
pub fn handle_datagram(datagram: &[u8]) {
    let identity = NodeIdentity::from_secret_bytes(&[7u8; 64])
        .unwrap_or_else(|_| unreachable!("64 bytes are a node key"));
    let config = CoreConfig {
        name: "fuzz".into(),
        port: 7757,
        incarnation: 1,
        advert_targets: Vec::new(),
        advertise_to_peers: true,
        peer_timeout: Duration::from_secs(5),
        handshake_retry: Duration::from_millis(500),
        handshake_attempts: 3,
        max_peers: 16,
        max_payload: MAX_PAYLOAD,
        handshake_rate: 100,
        rekey_after: Duration::from_secs(120),
    };
    let mut core = NodeCore::new(identity, config);
    let now = Instant::now();
    let from = SocketAddr::from(([192, 0, 2, 1], 7757));
    core.handle(from, datagram, now);
    core.tick(now + Duration::from_secs(1));
    while core.poll_transmit().is_some() {}
    while core.poll_event().is_some() {}
}
