//! The one error type of `tessera-gemini`.

use std::io;

/// Everything that can go wrong in `tessera-gemini`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Invalid configuration, named.
    #[error("configuration: {0}")]
    Config(String),
    /// A TLS or certificate problem (a TOFU mismatch shows both fingerprints).
    #[error(transparent)]
    Tls(#[from] tessera_tls::Error),
    /// A guard configuration problem.
    #[error(transparent)]
    Guard(#[from] tessera_guard::Error),
    /// A socket or file.
    #[error("{context}: {error}")]
    Io {
        /// What we were doing.
        context: String,
        /// What the operating system said (in the message, not repeated as a cause).
        error: io::Error,
    },
    /// A step did not finish in time.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// A URL the client cannot request.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server's response is not Gemini.
    #[error("malformed response: {0}")]
    BadResponse(String),
    /// More redirects than allowed, or a loop.
    #[error("too many redirects (limit {0})")]
    TooManyRedirects(usize),
    /// The body exceeds the client's limit.
    #[error("response body larger than {0} bytes")]
    BodyTooLarge(u64),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let context = context.into();
        move |error| Self::Io { context, error }
    }
}
