//! Legacy interoperability with netaio 0.0.9 (feature `netaio-compat`, off by
//! default): its frame and packify auth dict, its HMAC plugin, a server that
//! runs a [`Router`](crate::Router) for netaio clients, and a client for
//! netaio servers. This mode is weaker than tessera-wire's own protocol and
//! is meant for migrations only: no TLS (netaio has none), no request ids,
//! a MAC that covers neither the message type nor the direction. We add what
//! stays wire-compatible: bounded frames and queues, deadlines, a time window
//! and a replay cache with a budget per peer on the MAC, our own signed frames
//! refused when sent back, and every error reply carrying the request's URI
//! (so netaio's client stops waiting); replies to frames that failed
//! authentication go unsigned, so the server is no signing oracle. See
//! `../shared/spec/netaio-wire.md`.

mod client;
mod frame;
mod hmac;
mod packify;
mod server;

pub use client::NetaioClient;
pub use frame::{Decoded, NetaioCodec, NetaioFrame, NETAIO_HEADER_LEN, NETAIO_MAX_PAYLOAD};
pub use hmac::{netaio_mac, NetaioHmac};
pub use packify::Value;
pub use server::{NetaioOptions, NetaioServer};

/// Bytes from spaced hex, for the spec's examples in tests.
#[cfg(test)]
pub(crate) fn hex(text: &str) -> Vec<u8> {
    let text: String = text.split_whitespace().collect();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digits"))
        .collect()
}
