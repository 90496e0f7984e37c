//! A node's keys: an Ed25519 key that names the node and signs its adverts,
//! and an X25519 key for the Noise handshake. The advert binds the two, so a
//! peer that trusts the Ed25519 name also knows whom it is encrypting to.

use std::fmt;

use ed25519_dalek::{SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::Error;

/// The public name of a node: its Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; 32]);

impl NodeId {
    /// The first 8 bytes in hex: enough to tell nodes apart in a log or chat.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.short())
    }
}

/// A node's private keys. `Debug` shows only the public id.
#[derive(Clone)]
pub struct NodeIdentity {
    signing: SigningKey,
    noise_private: Zeroizing<[u8; 32]>,
    noise_public: [u8; 32],
}

impl fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

impl NodeIdentity {
    /// Fresh random keys.
    pub fn generate() -> Self {
        let keypair = noise_builder()
            .generate_keypair()
            .unwrap_or_else(|_| unreachable!("the default resolver generates X25519 keys"));
        let mut noise_private = Zeroizing::new([0u8; 32]);
        noise_private.copy_from_slice(&keypair.private);
        let mut noise_public = [0u8; 32];
        noise_public.copy_from_slice(&keypair.public);
        Self {
            signing: SigningKey::from_bytes(&rand::random()),
            noise_private,
            noise_public,
        }
    }

    /// Keys from 64 secret bytes (Ed25519 seed, then X25519 private key), as
    /// written by [`NodeIdentity::to_secret_bytes`].
    ///
    /// # Errors
    /// [`Error::Config`] when the slice is not 64 bytes.
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != 64 {
            return Err(Error::Config("a node key file holds 64 bytes"));
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&bytes[..32]);
        let mut noise_private = Zeroizing::new([0u8; 32]);
        noise_private.copy_from_slice(&bytes[32..]);
        let noise_public = x25519_public(&noise_private);
        Ok(Self {
            signing: SigningKey::from_bytes(&seed),
            noise_private,
            noise_public,
        })
    }

    /// The 64 secret bytes, to keep a node's identity across restarts.
    pub fn to_secret_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut bytes = Zeroizing::new(Vec::with_capacity(64));
        bytes.extend_from_slice(&self.signing.to_bytes());
        bytes.extend_from_slice(&*self.noise_private);
        bytes
    }

    /// The node's public name.
    pub fn id(&self) -> NodeId {
        NodeId(self.signing.verifying_key().to_bytes())
    }

    pub(crate) fn signing(&self) -> &SigningKey {
        &self.signing
    }

    pub(crate) fn noise_private(&self) -> &[u8; 32] {
        &self.noise_private
    }

    pub(crate) fn noise_public(&self) -> [u8; 32] {
        self.noise_public
    }
}

impl NodeId {
    pub(crate) fn verifying_key(&self) -> Option<VerifyingKey> {
        VerifyingKey::from_bytes(&self.0).ok()
    }
}

/// The Noise protocol of node sessions: IK, since an advert has already told
/// the initiator the responder's static key; the responder learns the
/// initiator's from the first message, which carries the initiator's advert.
pub(crate) const NOISE_PARAMS: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";

pub(crate) fn noise_builder() -> snow::Builder<'static> {
    let params = NOISE_PARAMS
        .parse()
        .unwrap_or_else(|_| unreachable!("the Noise pattern name is valid"));
    snow::Builder::new(params)
}

/// The X25519 public key of a private key (RFC 7748 clamping, as snow does).
fn x25519_public(private: &[u8; 32]) -> [u8; 32] {
    curve25519_dalek::MontgomeryPoint::mul_base_clamped(*private).to_bytes()
}
