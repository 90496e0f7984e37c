//! The one error type of `tessera-pow`.

use crate::Kernel;

/// Everything that can go wrong in `tessera-pow`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tlslp token is empty, too long or has a character outside `[A-Za-z0-9_-]`.
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),

    /// Difficulty outside the supported range.
    #[error("n_bits {bits} is outside 0..={max}")]
    InvalidBits {
        /// What was asked.
        bits: u32,
        /// The largest supported value.
        max: u32,
    },

    /// The caller cancelled the search.
    #[error("search cancelled")]
    Cancelled,

    /// The deadline passed before a solution was found.
    #[error("no solution found before the deadline")]
    DeadlineExceeded,

    /// Every nonce length up to the cap was searched without a solution
    /// (probability below 2^-256 for the supported difficulties).
    #[error("search space exhausted")]
    SearchExhausted,

    /// The requested kernel needs a CPU feature this machine lacks.
    #[error("the {0} kernel is not supported by this CPU")]
    KernelUnavailable(Kernel),

    /// A Hashcash stamp is malformed or fails a rule; the text says which.
    #[error("invalid stamp: {0}")]
    InvalidStamp(String),

    /// A Hashcash resource is empty or contains a colon.
    #[error("invalid resource: {0}")]
    InvalidResource(&'static str),

    /// A challenge is malformed, expired or bound to another context.
    #[error("invalid challenge: {0}")]
    InvalidChallenge(&'static str),

    /// The spent-stamp store failed.
    #[error("spent-stamp store: {0}")]
    Store(#[from] rusqlite::Error),

    /// The spent-stamp set is at its cap with no expired entry to drop.
    #[error("spent-stamp set is full ({0} stamps)")]
    SpentSetFull(usize),

    /// A blocking search task failed to run.
    #[error("search task failed: {0}")]
    Task(String),
}
