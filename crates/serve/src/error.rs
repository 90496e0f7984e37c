//! The one error type of `tessera-serve`: what can be wrong with how a
//! server is set up (per-connection problems are [`crate::Refusal`]s).

use std::net::SocketAddr;

/// A stage that cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Plain connections were asked for on an address that is not loopback.
    #[error("plain (non-TLS) connections are allowed on loopback only, not on {0}")]
    PlainNotLoopback(SocketAddr),
    /// A reload gave TLS to a stage that serves plain connections.
    #[error("this server is plain (no TLS): a reload cannot give it a TLS configuration")]
    PlainStage,
    /// The listener cannot report its address.
    #[error("read the listening address: {0}")]
    Io(#[from] std::io::Error),
}
