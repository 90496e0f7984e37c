//! The one error type of `tessera-wire`.

use std::io;

/// Everything that can go wrong in `tessera-wire`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer sent bytes that are not a valid frame; the connection is closed.
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
    /// A frame exceeds a configured limit.
    #[error("frame of {size} bytes exceeds a limit (max frame {limit} bytes)")]
    FrameTooLarge {
        /// The frame's size as announced.
        size: usize,
        /// The frame limit.
        limit: usize,
    },
    /// A socket failed.
    #[error("{context}: {error}")]
    Io {
        /// What we were doing.
        context: &'static str,
        /// What the operating system said.
        error: io::Error,
    },
    /// TLS configuration or certificates.
    #[error(transparent)]
    Tls(#[from] tessera_tls::Error),
    /// A request got no reply in time.
    #[error("no reply within {0:?}")]
    Timeout(std::time::Duration),
    /// The connection closed while requests were waiting.
    #[error("connection closed")]
    Closed,
    /// Plain TCP was asked for a non-loopback address.
    #[error("plain TCP is allowed on loopback only, not {0}")]
    PlainNotLoopback(std::net::SocketAddr),
    /// An auth layer refused a frame.
    #[error("authentication failed: {0}")]
    Auth(&'static str),
    /// The server answered with something other than the expected reply.
    #[error("refused: {kind}: {body}")]
    Refused {
        /// The reply type (e.g. AUTH_ERROR, NOT_FOUND).
        kind: crate::MessageType,
        /// Its body, as text.
        body: String,
    },
    /// Invalid configuration.
    #[error("configuration: {0}")]
    Config(String),
}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Self {
        Self::Io {
            context: "socket",
            error,
        }
    }
}
