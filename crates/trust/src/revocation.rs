//! Revocation lists that change while a verifier runs: a fleet's shared list
//! (tessera-fleet follows it over Redis) tells every verifier of a revoked
//! id at once, and announces it so long-lived sessions that rely on it end.

use std::sync::Arc;

/// A list of revoked revocation ids kept current by someone else.
pub trait RevocationList: Send + Sync + std::fmt::Debug {
    /// Whether `id` is revoked; `None` when the list cannot say now (its
    /// source is unreachable and a revocation could be missed).
    fn check(&self, id: &str) -> Option<bool>;

    /// Ids revoked from now on, as they arrive. A receiver that lags misses
    /// announcements, never a [`RevocationList::check`].
    fn announcements(&self) -> tokio::sync::broadcast::Receiver<Arc<str>>;
}

/// What a check of shared state (a revocation list, a fleet's replay cache)
/// does when that state cannot say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WhenUnknown {
    /// Refuse the request (default): a revoked token must not slip through.
    #[default]
    Refuse,
    /// Accept it, as if the id were not revoked.
    Accept,
}

impl WhenUnknown {
    /// Reads `fail-closed` ([`WhenUnknown::Refuse`]) or `fail-open` ([`WhenUnknown::Accept`]).
    ///
    /// # Errors
    /// A message naming both values.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "fail-closed" => Ok(Self::Refuse),
            "fail-open" => Ok(Self::Accept),
            other => Err(format!("{other:?}: expected fail-closed or fail-open")),
        }
    }
}
