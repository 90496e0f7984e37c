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

/// What a verifier does when its [`RevocationList`] cannot say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WhenUnknown {
    /// Refuse the request (default): a revoked token must not slip through.
    #[default]
    Refuse,
    /// Accept it, as if the id were not revoked.
    Accept,
}
