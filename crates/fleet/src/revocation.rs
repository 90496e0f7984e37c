//! Revocations that reach every server: revoking an id adds it to a set the
//! store keeps (so a server that was down catches up when it starts) and
//! announces it on a channel (so running servers learn at once). Each server
//! follows the channel in a task of its own and answers checks from memory,
//! without a round trip per request.
//!
//! While the feed is down the server cannot know of new revocations, so
//! [`Revocations::check`] says [`Unavailable`] and the caller's policy decides
//! (refuse, by default).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use tessera_guard::Unavailable;
use tokio::sync::{broadcast, watch};

use crate::{keys, Error, Store};

/// Revocation ids held at most (a revoked id costs about 100 bytes).
pub const MAX_REVOKED: usize = 1_000_000;

/// Longest revocation id accepted, in bytes.
pub const MAX_ID_LEN: usize = 256;

/// Longest wait between attempts to follow the feed again.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The revocations one server knows, kept current from the store.
#[derive(Debug)]
pub struct Revocations {
    revoked: RwLock<HashSet<String>>,
    synced: watch::Sender<bool>,
    full: AtomicBool,
    announced: broadcast::Sender<Arc<str>>,
    feed: std::sync::OnceLock<tokio::task::AbortHandle>,
}

impl Drop for Revocations {
    fn drop(&mut self) {
        if let Some(feed) = self.feed.get() {
            feed.abort();
        }
    }
}

impl Revocations {
    /// Follows the revocations of `store` from now on (in a task that ends
    /// when the returned value is dropped). Must be called inside a tokio runtime.
    pub fn follow(store: Arc<Store>) -> Arc<Self> {
        let this = Arc::new(Self {
            revoked: RwLock::default(),
            synced: watch::Sender::new(false),
            full: AtomicBool::new(false),
            announced: broadcast::Sender::new(1024),
            feed: std::sync::OnceLock::new(),
        });
        let feed = tokio::spawn(follow_feed(Arc::downgrade(&this), store));
        let _ = this.feed.set(feed.abort_handle());
        this
    }

    /// Whether `id` is revoked: `Err(Unavailable)` while the feed is down
    /// (a revocation could be missed), else what the store said.
    pub fn check(&self, id: &str) -> Result<bool, Unavailable> {
        if !*self.synced.borrow() {
            return Err(Unavailable);
        }
        Ok(self.is_revoked(id))
    }

    /// Whether `id` is among the revocations this server has learnt (even while the feed is down).
    pub fn is_revoked(&self, id: &str) -> bool {
        self.revoked
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(id)
    }

    /// Revocations known.
    pub fn len(&self) -> usize {
        self.revoked
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether none is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ids revoked from now on, as they arrive (to close connections that
    /// hold a capability from them). A receiver that lags misses ids, which
    /// [`Revocations::is_revoked`] still knows.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.announced.subscribe()
    }

    /// Waits until the feed is followed and the stored set read, at most `timeout`.
    pub async fn synced(&self, timeout: Duration) -> bool {
        let mut synced = self.synced.subscribe();
        tokio::time::timeout(timeout, synced.wait_for(|synced| *synced))
            .await
            .is_ok_and(|outcome| outcome.is_ok())
    }

    /// Revokes `id` on every server of the fleet.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty or over-long id; the store's errors.
    pub async fn revoke(store: &Store, id: &str, budget: Duration) -> Result<Revoked, Error> {
        check_id(id)?;
        let mut connection = store.connection()?;
        let (added, listeners): (u64, u64) = store
            .call_within(
                budget,
                redis::pipe()
                    .atomic()
                    .sadd(keys::REVOKED, id)
                    .publish(keys::REVOCATIONS, id)
                    .query_async(&mut connection),
            )
            .await?;
        Ok(Revoked {
            new: added == 1,
            listeners,
        })
    }

    /// Whether the store lists `id` as revoked (one round trip, for
    /// one-shot checks; servers follow the feed instead).
    ///
    /// # Errors
    /// The store's errors.
    pub async fn is_listed(store: &Store, id: &str) -> Result<bool, Error> {
        let mut connection = store.connection()?;
        store
            .call(
                redis::cmd("SISMEMBER")
                    .arg(keys::REVOKED)
                    .arg(id)
                    .query_async(&mut connection),
            )
            .await
    }

    /// Every revoked id in the store.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn list(store: &Store, budget: Duration) -> Result<Vec<String>, Error> {
        let mut connection = store.connection()?;
        store
            .call_within(
                budget,
                redis::cmd("SMEMBERS")
                    .arg(keys::REVOKED)
                    .query_async(&mut connection),
            )
            .await
    }

    fn learn(&self, id: String) {
        let mut revoked = self.revoked.write().unwrap_or_else(PoisonError::into_inner);
        if revoked.len() >= MAX_REVOKED && !revoked.contains(&id) {
            if !self.full.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    cap = MAX_REVOKED,
                    "revocation list full; further revocations are not applied here"
                );
            }
            return;
        }
        if revoked.insert(id.clone()) {
            drop(revoked);
            let _ = self.announced.send(id.into());
        }
    }
}

/// What a revocation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Revoked {
    /// The id was not revoked before.
    pub new: bool,
    /// Feeds that received the announcement (one per running server that follows it).
    pub listeners: u64,
}

fn check_id(id: &str) -> Result<(), Error> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(Error::Config(format!(
            "a revocation id is 1 to {MAX_ID_LEN} bytes"
        )));
    }
    Ok(())
}

/// Follows the feed until the [`Revocations`] is dropped, reconnecting with back-off.
async fn follow_feed(this: Weak<Revocations>, store: Arc<Store>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let error = follow_once(&this, &store).await;
        let Some(revocations) = this.upgrade() else {
            return;
        };
        if revocations.synced.send_replace(false) {
            tracing::warn!(store = store.url(), %error, "revocation feed lost; following it again");
            // It was followed until now: start the back-off over.
            backoff = Duration::from_millis(50);
        }
        drop(revocations);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Subscribes, reads the stored set, then applies announcements as they come.
/// Subscribing first means nothing revoked in between is missed.
async fn follow_once(this: &Weak<Revocations>, store: &Store) -> Error {
    let setup = Duration::from_secs(2).max(store.budget());
    let mut pubsub = match store
        .call_within(setup, store.client().get_async_pubsub())
        .await
    {
        Ok(pubsub) => pubsub,
        Err(error) => return error,
    };
    if let Err(error) = store
        .call_within(setup, pubsub.subscribe(keys::REVOCATIONS))
        .await
    {
        return error;
    }
    let stored = match Revocations::list(store, setup).await {
        Ok(stored) => stored,
        Err(error) => return error,
    };
    {
        let Some(revocations) = this.upgrade() else {
            return Error::Config("stopped".into());
        };
        for id in stored {
            revocations.learn(id);
        }
        if !revocations.synced.send_replace(true) {
            tracing::info!(
                store = store.url(),
                known = revocations.len(),
                "following revocations"
            );
        }
    }
    let mut messages = pubsub.into_on_message();
    while let Some(message) = messages.next().await {
        let Some(revocations) = this.upgrade() else {
            break;
        };
        match message.get_payload::<String>() {
            Ok(id) if check_id(&id).is_ok() => revocations.learn(id),
            _ => tracing::warn!("ignoring a malformed revocation announcement"),
        }
    }
    Error::Config("the revocation feed closed".into())
}

impl tessera_trust::RevocationList for Revocations {
    fn check(&self, id: &str) -> Option<bool> {
        Self::check(self, id).ok()
    }

    fn announcements(&self) -> broadcast::Receiver<Arc<str>> {
        self.subscribe()
    }
}
