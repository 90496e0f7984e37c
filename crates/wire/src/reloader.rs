//! What a reload changes in a running wire server or tunnel exit: the TLS
//! configuration, guard and auth layer of new connections, the certificate
//! rules of the frames that follow, and the open connections a revoked
//! certificate or the new access list now refuses.

use std::sync::Arc;

use tessera_serve::{Reload, Stage};
use tessera_tls::RevocationList;

use crate::auth::live::LiveAuth;
use crate::auth::FrameAuth;
use crate::rules::FrameRules;
use crate::server::Transport;
use crate::Error;

/// Swaps a running server's TLS material and guard ([`crate::Server::reloader`],
/// [`crate::tunnel::TunnelExit::reloader`]).
#[derive(Clone)]
pub struct Reloader {
    pub(crate) stage: Arc<Stage>,
    pub(crate) rules: Arc<FrameRules>,
    pub(crate) auth: Arc<LiveAuth>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").finish_non_exhaustive()
    }
}

impl Reloader {
    /// New connections get `transport` and `guard`, frames from now on the
    /// guard's certificate rules; open connections whose certificate
    /// `revoked` lists, or whose client the new access list denies, are
    /// closed with `AUTH_ERROR revoked`. Returns how many were closed.
    ///
    /// # Errors
    /// [`Error::Stage`] for TLS given to a plain server; nothing changed.
    pub fn reload(
        &self,
        transport: Transport,
        guard: Option<Arc<tessera_guard::Chain>>,
        revoked: RevocationList,
    ) -> Result<usize, Error> {
        let tls = match transport {
            Transport::Tls(tls) => Some(tls),
            Transport::PlainLoopback => None,
        };
        let closed = self.stage.reload(Reload {
            tls,
            guard: guard.clone(),
            revoked,
        })?;
        self.rules.set(guard);
        Ok(closed)
    }

    /// Connections opened from now on authenticate frames with `auth` (new
    /// HMAC keys, say); open ones keep the layer they started with to their
    /// end. Build the new layer with [`crate::HmacAuth::rekeyed`] so frames
    /// the old one accepted stay refused as replays.
    pub fn set_auth(&self, auth: Option<Arc<dyn FrameAuth>>) {
        self.auth.set(auth);
    }
}

/// Swaps a running netaio-compatible server's guard
/// ([`crate::netaio::NetaioServer::reloader`]). It has no TLS and no
/// certificates; its HMAC secret stays as it was at start.
#[derive(Clone)]
pub struct NetaioReloader {
    pub(crate) stage: Arc<Stage>,
}

impl std::fmt::Debug for NetaioReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetaioReloader").finish_non_exhaustive()
    }
}

impl NetaioReloader {
    /// New connections pass `guard`; open ones whose client its access list
    /// denies are closed. Returns how many.
    pub fn reload(&self, guard: Option<Arc<tessera_guard::Chain>>) -> usize {
        let reload = Reload {
            tls: None,
            guard,
            revoked: RevocationList::default(),
        };
        // Without TLS in the reload, the stage has nothing to refuse.
        self.stage.reload(reload).unwrap_or(0)
    }
}
