//! The connections a stage admitted and that are still open, so that a
//! reload can check them again (a revoked certificate, an address the new
//! access list denies) and close those it refuses. A slot leaves the set
//! when its connection is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tessera_tls::CertificateInfo;
use tokio_util::sync::CancellationToken;

use crate::Peer;

/// The open connections, by id.
#[derive(Debug, Default)]
pub(crate) struct LiveConnections(Mutex<HashMap<u64, Live>>);

#[derive(Debug)]
struct Live {
    peer: Peer,
    certificate: Option<CertificateInfo>,
    refused: CancellationToken,
}

/// A connection's place in [`LiveConnections`]; leaving it on drop.
#[derive(Debug)]
pub(crate) struct LiveSlot {
    set: Arc<LiveConnections>,
    id: u64,
}

impl Drop for LiveSlot {
    fn drop(&mut self) {
        self.set.entries().remove(&self.id);
    }
}

impl LiveConnections {
    /// Adds connection `id`; the token is cancelled if a reload refuses it.
    pub(crate) fn add(
        self: &Arc<Self>,
        id: u64,
        peer: Peer,
        certificate: Option<&CertificateInfo>,
    ) -> (LiveSlot, CancellationToken) {
        let refused = CancellationToken::new();
        self.entries().insert(
            id,
            Live {
                peer,
                certificate: certificate.cloned(),
                refused: refused.clone(),
            },
        );
        (
            LiveSlot {
                set: self.clone(),
                id,
            },
            refused,
        )
    }

    /// Refuses every open connection `keep` does not keep; returns how many.
    pub(crate) fn refuse_unless(
        &self,
        keep: impl Fn(&Peer, Option<&CertificateInfo>) -> bool,
    ) -> usize {
        let entries = self.entries();
        let mut refused = 0;
        for live in entries.values() {
            if !live.refused.is_cancelled() && !keep(&live.peer, live.certificate.as_ref()) {
                live.refused.cancel();
                refused += 1;
            }
        }
        refused
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Live>> {
        // The map stays consistent whatever panicked while it was held.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
