//! The one error type of `tessera-tlslp`.

use std::io;

/// Everything that can end a tlslp session or stop a program.
///
/// [`Error::is_peer_fault`] tells what the peer did wrong (bad framing, a
/// line out of order, silence) from this side's configuration and sockets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A line exceeded 1000 bytes including its LF.
    #[error("line longer than 1000 bytes")]
    LineTooLong,
    /// A line was not UTF-8.
    #[error("line is not UTF-8")]
    InvalidUtf8,
    /// The peer closed before a complete line.
    #[error("peer closed the connection")]
    Eof,
    /// No complete line before the step's deadline.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The server sent something the client does not understand.
    #[error("unexpected server line {0:?}")]
    UnexpectedLine(String),
    /// The server ended the session with a FAIL line.
    #[error("server failed the session: {0}")]
    ServerFail(String),
    /// The WORK suffix did not have enough trailing zero bits.
    #[error("invalid suffix")]
    InvalidSuffix,
    /// A body reply's checksum was wrong.
    #[error("invalid checksum")]
    InvalidChecksum,
    /// The WORK line asked for something the client refuses (token, n_bits).
    #[error("refusing WORK: {0}")]
    BadWork(String),
    /// Proof of work could not be computed (timeout, cancelled).
    #[error("proof of work failed: {0}")]
    Work(#[source] tessera_pow::Error),
    /// No port of the server accepted TCP and TLS.
    #[error("not able to connect to any port")]
    Unreachable,
    /// A socket or the TLS layer failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The connection stage could not be set up.
    #[error(transparent)]
    Stage(#[from] tessera_serve::Error),
    /// Invalid configuration (a flag, a file, the insecure rule).
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// Whether the peer is at fault: bad framing, a line the protocol does
    /// not allow there, a refused WORK, silence or an early close — rather
    /// than this side's configuration, sockets or solver.
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            Self::LineTooLong
                | Self::InvalidUtf8
                | Self::Eof
                | Self::Timeout(_)
                | Self::UnexpectedLine(_)
                | Self::ServerFail(_)
                | Self::InvalidSuffix
                | Self::InvalidChecksum
                | Self::BadWork(_)
        )
    }
}
