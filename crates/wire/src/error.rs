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
    #[error("authentication failed: {}", .0.name())]
    Auth(crate::AuthFailure),
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
    Config(&'static str),
    /// A tunnel service name that is empty or has a `/`.
    #[error("service name {0:?}: must be non-empty, without '/'")]
    InvalidServiceName(String),
    /// A wire server was given a Unix socket; wire speaks TCP only.
    #[error("listening on unix:{}, not TCP", .0.display())]
    NotTcp(std::path::PathBuf),
    /// The connection stage could not be built.
    #[error("connection stage: {0}")]
    Stage(tessera_serve::Error),
    /// The server's proof-of-work challenge could not be solved.
    #[error("proof of work: {0}")]
    Pow(#[from] tessera_pow::Error),
}

impl Error {
    /// Whether the peer is at fault (bytes that are not a frame, a frame
    /// over the limits, one the auth layer refused, an unusable challenge)
    /// rather than this side's configuration or its sockets.
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            Self::Malformed(_) | Self::FrameTooLarge { .. } | Self::Auth(_) | Self::Pow(_)
        )
    }
}

impl From<tessera_serve::Error> for Error {
    fn from(error: tessera_serve::Error) -> Self {
        match error {
            tessera_serve::Error::PlainNotLoopback(address) => Self::PlainNotLoopback(address),
            error => Self::Stage(error),
        }
    }
}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Self {
        Self::Io {
            context: "socket",
            error,
        }
    }
}
