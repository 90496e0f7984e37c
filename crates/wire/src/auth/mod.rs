//! Frame authentication: a layer signs every frame it sends and checks every
//! frame it receives, and says who sent it. [`HmacAuth`] between services,
//! [`CapabilityAuth`] per caller, an [`AuthStack`] to require both; and the
//! sliding replay window that HMAC frames and the UDP node's sessions share.

mod capability;
mod failure;
mod hmac;
pub(crate) mod live;
pub(crate) mod replay_window;
mod stack;

pub use self::hmac::{hmac_section, HmacAuth, Role};
pub use capability::{Capability, CapabilityAuth};
pub use failure::AuthFailure;
pub use stack::AuthStack;

use crate::Frame;

/// Signs outgoing frames and checks incoming ones.
pub trait FrameAuth: Send + Sync + 'static {
    /// Writes the auth section of `frame`.
    fn sign(&self, frame: &mut Frame);
    /// Checks the auth section of `frame`.
    ///
    /// # Errors
    /// The [`AuthFailure`].
    fn verify(&self, frame: &Frame) -> Result<(), AuthFailure>;
    /// Checks `frame` as [`FrameAuth::verify`] does and says who sent it, for
    /// handlers and route policies. Layers that learn nothing about the
    /// sender keep this default.
    ///
    /// # Errors
    /// The [`AuthFailure`].
    fn authenticate(&self, frame: &Frame) -> Result<Option<Principal>, AuthFailure> {
        self.verify(frame).map(|()| None)
    }
}

/// Who an auth layer says sent a frame; handlers see it in
/// [`Request::principal`](crate::Request::principal).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Principal {
    /// A holder of the HMAC key with this id.
    Key(String),
    /// The holder of a capability token, with the token for route policies.
    Capability(Capability),
    /// What each layer of an [`AuthStack`] said, in order.
    All(Vec<Self>),
}

impl Principal {
    /// The capability among what the layers said, if one vouched by token.
    pub fn capability(&self) -> Option<&Capability> {
        match self {
            Self::Capability(capability) => Some(capability),
            Self::All(all) => all.iter().find_map(Self::capability),
            Self::Key(_) => None,
        }
    }

    /// The HMAC key id among what the layers said.
    pub fn key_id(&self) -> Option<&str> {
        match self {
            Self::Key(id) => Some(id),
            Self::All(all) => all.iter().find_map(Self::key_id),
            Self::Capability(_) => None,
        }
    }
}
