//! What can go wrong talking to the shared store.

/// A fleet store error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store address or its settings are unusable (a start-up error).
    #[error("store: {0}")]
    Config(String),
    /// The store did not answer within the budget.
    #[error("store did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The store refused the command or the connection failed.
    #[error("store: {0}")]
    Redis(#[from] redis::RedisError),
    /// Starting a local `redis-server` failed.
    #[error("redis-server: {0}")]
    LocalServer(String),
}
