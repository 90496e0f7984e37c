//! A UDP node: peers on a link find each other by multicast (IPv4 and IPv6)
//! with adverts signed by each node's Ed25519 key, keep a peer table with
//! timeouts, and exchange datagrams sealed with ChaCha20-Poly1305 under keys
//! from a Noise IK handshake (the `snow` crate), rekeyed every two minutes.
//! A node not yet known joins once a cookie sent to its address came back
//! (return routability), so forged source addresses cannot fill the table.
//! Stopping sends a goodbye.
//!
//! Delivery is that of UDP: datagrams may be lost (a message queued during a
//! handshake that never completes is dropped and counted), but never forged,
//! altered or replayed.

mod advert;
mod cookie;
mod core;
mod datagram;
mod display;
mod driver;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod identity;
mod peers;
mod session;

pub use self::core::{LeaveReason, NodeEvent, NodeStats, SendError, MAX_PAYLOAD};
pub use advert::MAX_NAME_LEN;
pub use display::display_safe;
pub use driver::{Discovery, Node, NodeConfig, NodeEvents, DISCOVERY_PORT};
pub use identity::{NodeId, NodeIdentity};
pub use peers::PeerInfo;
