//! Signed adverts: how a node tells others on the link that it is here (or
//! leaving), at which UDP port, under which Ed25519 name and with which Noise
//! key. The signature covers everything, so a forged advert cannot redirect a
//! node's traffic or announce its departure. `(incarnation, sequence)` only
//! ever grows, so a replayed advert (a stale port, an old goodbye) is ignored.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use ed25519_dalek::{Signature, Signer};

use super::identity::{NodeId, NodeIdentity};

/// Longest node name in an advert, in bytes.
pub const MAX_NAME_LEN: usize = 64;
const SIGNATURE_CONTEXT: &[u8] = b"tessera-node advert v1";
const SIGNATURE_LEN: usize = 64;

/// Whether the sender is here or leaving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AdvertKind {
    /// The node is up; sent periodically.
    Hello,
    /// The node is stopping; peers drop it at once instead of timing it out.
    Goodbye,
}

/// What an advert says, once its signature has been checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Advert {
    pub(crate) kind: AdvertKind,
    pub(crate) node: NodeId,
    pub(crate) noise_key: [u8; 32],
    /// Milliseconds since the epoch when the node started.
    pub(crate) incarnation: u64,
    pub(crate) sequence: u64,
    pub(crate) port: u16,
    pub(crate) name: String,
}

/// Why an advert was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AdvertError {
    Malformed,
    BadSignature,
}

impl Advert {
    /// Encodes and signs.
    pub(crate) fn sign(&self, identity: &NodeIdentity) -> Bytes {
        let mut out = BytesMut::with_capacity(128 + self.name.len());
        out.put_u8(match self.kind {
            AdvertKind::Hello => 1,
            AdvertKind::Goodbye => 2,
        });
        out.put_slice(&self.node.0);
        out.put_slice(&self.noise_key);
        out.put_u64(self.incarnation);
        out.put_u64(self.sequence);
        out.put_u16(self.port);
        let name = truncate(&self.name, MAX_NAME_LEN);
        out.put_u8(name.len() as u8);
        out.put_slice(name.as_bytes());
        let signature = identity.signing().sign(&signed_message(&out));
        out.put_slice(&signature.to_bytes());
        out.freeze()
    }

    /// Decodes and checks the signature against the node id it carries.
    pub(crate) fn verify(mut bytes: &[u8]) -> Result<Self, AdvertError> {
        let all = bytes;
        if bytes.len() < 1 + 32 + 32 + 8 + 8 + 2 + 1 + SIGNATURE_LEN {
            return Err(AdvertError::Malformed);
        }
        let kind = match bytes.get_u8() {
            1 => AdvertKind::Hello,
            2 => AdvertKind::Goodbye,
            _ => return Err(AdvertError::Malformed),
        };
        let mut node = [0u8; 32];
        bytes.copy_to_slice(&mut node);
        let mut noise_key = [0u8; 32];
        bytes.copy_to_slice(&mut noise_key);
        let incarnation = bytes.get_u64();
        let sequence = bytes.get_u64();
        let port = bytes.get_u16();
        let name_len = usize::from(bytes.get_u8());
        if name_len > MAX_NAME_LEN || bytes.len() != name_len + SIGNATURE_LEN {
            return Err(AdvertError::Malformed);
        }
        // Signed as sent, kept as it may be shown (peers' names reach terminals).
        let name = super::display_safe(
            std::str::from_utf8(&bytes[..name_len]).map_err(|_| AdvertError::Malformed)?,
        );
        let signed = &all[..all.len() - SIGNATURE_LEN];
        let signature: [u8; SIGNATURE_LEN] = bytes[name_len..]
            .try_into()
            .map_err(|_| AdvertError::Malformed)?;
        let node = NodeId(node);
        let key = node.verifying_key().ok_or(AdvertError::BadSignature)?;
        key.verify_strict(&signed_message(signed), &Signature::from_bytes(&signature))
            .map_err(|_| AdvertError::BadSignature)?;
        Ok(Self {
            kind,
            node,
            noise_key,
            incarnation,
            sequence,
            port,
            name,
        })
    }

    /// Orders adverts of one node: a later start, or a later advert of the same start.
    pub(crate) fn version(&self) -> (u64, u64) {
        (self.incarnation, self.sequence)
    }
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNATURE_CONTEXT.len() + body.len());
    message.extend_from_slice(SIGNATURE_CONTEXT);
    message.extend_from_slice(body);
    message
}

/// The longest prefix of `text` within `max` bytes that ends on a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advert(identity: &NodeIdentity) -> Advert {
        Advert {
            kind: AdvertKind::Hello,
            node: identity.id(),
            noise_key: identity.noise_public(),
            incarnation: 1,
            sequence: 2,
            port: 7000,
            name: "élan".repeat(20),
        }
    }

    #[test]
    fn signed_adverts_round_trip_and_names_are_cut_on_a_char_boundary() {
        let identity = NodeIdentity::generate();
        let signed = advert(&identity).sign(&identity);
        let decoded = Advert::verify(&signed).unwrap();
        assert_eq!(decoded.name, truncate(&"élan".repeat(20), MAX_NAME_LEN));
        assert!(decoded.name.len() <= MAX_NAME_LEN);
        assert_eq!(decoded.port, 7000);
        assert_eq!(decoded.node, identity.id());
    }

    #[test]
    fn any_changed_byte_breaks_the_advert() {
        let identity = NodeIdentity::generate();
        let signed = advert(&identity).sign(&identity);
        for i in 0..signed.len() {
            let mut forged = signed.to_vec();
            forged[i] ^= 1;
            assert!(Advert::verify(&forged).is_err(), "byte {i}");
        }
        assert_eq!(Advert::verify(&signed[..10]), Err(AdvertError::Malformed));
        // Someone else's key cannot speak for this node.
        let other = NodeIdentity::generate();
        let forged = advert(&identity).sign(&other);
        assert_eq!(Advert::verify(&forged), Err(AdvertError::BadSignature));
    }
}
