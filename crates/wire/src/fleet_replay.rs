//! Signed frames accepted once across a fleet (feature `fleet`). Each server
//! keeps its own replay window, so a frame captured on its way to one server
//! could be replayed to another that shares the key. With a fleet's store,
//! every authenticated frame's auth section, which holds a MAC or signature
//! that no other frame has, is recorded there first: a copy is refused on
//! every server until it would be stale anyway. One store round trip per frame.

use std::time::Duration;

use tessera_fleet::{FleetReplay, ReplayKind};
use tessera_trust::WhenUnknown;

use crate::{AuthFailure, Frame};

/// A fleet-wide replay check for signed frames.
#[derive(Clone, Debug)]
pub struct FleetFrameReplay {
    replay: FleetReplay,
    ttl: Duration,
    when_unknown: WhenUnknown,
}

impl FleetFrameReplay {
    /// Records frames in `replay` for `ttl`, which must cover the auth
    /// layers' acceptance window on both sides of now (twice the HMAC window,
    /// twice a capability verifier's skew). Refuses frames while the store
    /// cannot answer.
    pub fn new(replay: FleetReplay, ttl: Duration) -> Self {
        Self {
            replay,
            ttl,
            when_unknown: WhenUnknown::Refuse,
        }
    }

    /// What to do while the store cannot answer (default: refuse).
    pub fn when_unknown(mut self, when_unknown: WhenUnknown) -> Self {
        self.when_unknown = when_unknown;
        self
    }

    /// `Ok` for a frame no server has accepted (or one without auth).
    pub(crate) async fn check(&self, frame: &Frame) -> Result<(), AuthFailure> {
        if frame.auth.is_empty() {
            return Ok(());
        }
        match self
            .replay
            .first_use(ReplayKind::WireFrame, &frame.auth, self.ttl)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(AuthFailure::Replayed),
            Err(_) if self.when_unknown == WhenUnknown::Accept => Ok(()),
            Err(_) => Err(AuthFailure::Unavailable),
        }
    }
}
