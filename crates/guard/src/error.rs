//! The one error type of `tessera-guard`.

/// What can go wrong building a guard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Invalid configuration; the message names the entry or setting.
    #[error("guard configuration: {0}")]
    Config(String),
}
