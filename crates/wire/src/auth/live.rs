//! The server-wide auth layer a reload can replace. Each connection takes
//! the layer current when it starts and keeps it to the end, so a
//! connection never changes keys midway; the ones opened after a reload get
//! the new layer.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::FrameAuth;

/// The auth layer new connections get (`None`: frames are not authenticated).
#[derive(Default)]
pub(crate) struct LiveAuth(ArcSwap<Option<Arc<dyn FrameAuth>>>);

impl LiveAuth {
    pub(crate) fn new(auth: Option<Arc<dyn FrameAuth>>) -> Self {
        Self(ArcSwap::from_pointee(auth))
    }

    /// The layer for a connection starting now.
    pub(crate) fn current(&self) -> Option<Arc<dyn FrameAuth>> {
        self.0.load().as_ref().clone()
    }

    pub(crate) fn set(&self, auth: Option<Arc<dyn FrameAuth>>) {
        self.0.store(Arc::new(auth));
    }
}
