//! One peer's Noise sessions. A session is rekeyed after `rekey_after`
//! (the side that sends on it starts a new handshake and keeps sending on
//! the old keys until the new ones are up), so a key compromised later
//! exposes at most one period of traffic. The replaced session is still
//! accepted for receiving during one more period, for datagrams that were
//! in flight; a session three periods old is not used at all.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use snow::{HandshakeState, StatelessTransportState};

use crate::auth::replay_window::ReplayWindow;

/// A handshake we started and wait to hear back on.
pub(super) struct Initiating {
    pub(super) handshake: Box<HandshakeState>,
    pub(super) local_index: u32,
    pub(super) sent_at: Instant,
    pub(super) attempts: u32,
    /// Payloads waiting for the keys (a rekey has none: it sends on the old ones).
    pub(super) pending: VecDeque<Bytes>,
}

/// Keys for both directions.
pub(super) struct Established {
    transport: Box<StatelessTransportState>,
    pub(super) local_index: u32,
    remote_index: u32,
    next_counter: u64,
    window: ReplayWindow,
    pub(super) since: Instant,
}

/// Why a datagram was not opened.
pub(super) enum OpenError {
    /// Not authentic under these keys.
    Forged,
    /// Authentic, but seen before (or too old to tell).
    Replayed,
}

impl Established {
    pub(super) fn new(
        transport: StatelessTransportState,
        local_index: u32,
        remote_index: u32,
        since: Instant,
    ) -> Self {
        Self {
            transport: Box::new(transport),
            local_index,
            remote_index,
            next_counter: 0,
            window: ReplayWindow::default(),
            since,
        }
    }

    /// Encrypts `payload`: the peer's index, the counter, the ciphertext.
    pub(super) fn seal(&mut self, payload: &[u8]) -> Option<(u32, u64, Vec<u8>)> {
        let counter = self.next_counter;
        let mut ciphertext = vec![0u8; payload.len() + 16];
        let len = self
            .transport
            .write_message(counter, payload, &mut ciphertext)
            .ok()?;
        ciphertext.truncate(len);
        self.next_counter += 1;
        Some((self.remote_index, counter, ciphertext))
    }

    /// Decrypts a datagram; only an authentic one moves the replay window.
    pub(super) fn open(&mut self, counter: u64, ciphertext: &[u8]) -> Result<Vec<u8>, OpenError> {
        let mut plaintext = vec![0u8; ciphertext.len()];
        let len = self
            .transport
            .read_message(counter, ciphertext, &mut plaintext)
            .map_err(|_| OpenError::Forged)?;
        if !self.window.accept(counter) {
            return Err(OpenError::Replayed);
        }
        plaintext.truncate(len);
        Ok(plaintext)
    }
}

/// Everything about one peer's sessions.
#[derive(Default)]
pub(super) struct PeerSessions {
    /// Sends and receives.
    pub(super) current: Option<Established>,
    /// Replaced by a rekey; still receives for a while.
    pub(super) previous: Option<Established>,
    /// A handshake under way.
    pub(super) handshake: Option<Initiating>,
}

impl PeerSessions {
    /// Every index that leads here.
    pub(super) fn indices(&self) -> impl Iterator<Item = u32> + '_ {
        let current = self.current.as_ref().map(|s| s.local_index);
        let previous = self.previous.as_ref().map(|s| s.local_index);
        let handshake = self.handshake.as_ref().map(|h| h.local_index);
        current.into_iter().chain(previous).chain(handshake)
    }

    /// The established session `local_index` names, current or previous.
    pub(super) fn by_index(&mut self, local_index: u32) -> Option<&mut Established> {
        [self.current.as_mut(), self.previous.as_mut()]
            .into_iter()
            .flatten()
            .find(|session| session.local_index == local_index)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.current.is_none() && self.previous.is_none() && self.handshake.is_none()
    }
}
