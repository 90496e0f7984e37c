//! Connections end when a capability they used is revoked: each frame is
//! checked against the revocation list anyway, but a fleet's revocation must
//! also close the connections (and tunnels) a revoked token holds open. A
//! connection remembers the revocation ids its frames were authenticated
//! with and listens to the list's announcements.

use std::collections::VecDeque;
use std::sync::Arc;

use tessera_trust::RevocationList;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

/// Revocation ids remembered per connection: one client rarely uses more
/// than one token, and an id forgotten here is still refused on its next frame.
const MAX_HELD: usize = 8;

/// The revocation ids one connection relies on.
pub(crate) struct RevocationWatch {
    list: Arc<dyn RevocationList>,
    announcements: Receiver<Arc<str>>,
    held: VecDeque<Box<str>>,
}

impl RevocationWatch {
    pub(crate) fn new(list: Arc<dyn RevocationList>) -> Self {
        Self {
            announcements: list.announcements(),
            list,
            held: VecDeque::new(),
        }
    }

    /// Notes that a frame was authenticated with `id` (most recent first).
    pub(crate) fn hold(&mut self, id: &str) {
        if self.held.front().is_some_and(|front| &**front == id) {
            return;
        }
        self.held.retain(|held| &**held != id);
        self.held.push_front(id.into());
        self.held.truncate(MAX_HELD);
    }

    /// Resolves with the first held id to be revoked (cancel-safe).
    pub(crate) async fn revoked(&mut self) -> Box<str> {
        loop {
            match self.announcements.recv().await {
                Ok(id) => {
                    if let Some(held) = self.held.iter().find(|held| ***held == *id) {
                        return held.clone();
                    }
                }
                // Announcements were missed: ask the list about each held id.
                Err(RecvError::Lagged(_)) => {
                    if let Some(held) = self
                        .held
                        .iter()
                        .find(|held| self.list.check(held) == Some(true))
                    {
                        return held.clone();
                    }
                }
                Err(RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }
}

/// [`RevocationWatch::revoked`] when there is a watch; never otherwise.
pub(crate) async fn revoked(watch: &mut Option<RevocationWatch>) -> Box<str> {
    match watch {
        Some(watch) => watch.revoked().await,
        None => std::future::pending().await,
    }
}
