//! The one error type of `tessera-guard`.

/// What can go wrong building a guard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Invalid configuration; the message names the entry or setting.
    #[error("guard configuration: {0}")]
    Config(String),
    /// A connection from a trusted relay did not start with a valid PROXY header.
    #[error("PROXY protocol: {0}")]
    Proxy(String),
    /// A path holds a `%` not followed by two hex digits (the peer's fault
    /// in a request, the operator's in a rule prefix).
    #[error("invalid percent-escape at byte {offset} of the path: '%' must be followed by two hex digits")]
    PathEscape {
        /// Where the `%` stands in the path.
        offset: usize,
    },
}
