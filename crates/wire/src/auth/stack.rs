//! Two or more auth layers on one frame, e.g. HMAC between services and a
//! capability token per caller. Each layer signs the frame on its own (each
//! covers the whole frame), and their sections travel together; a frame
//! passes only if every layer accepts its own section, so a stack can only
//! be stricter than any of its layers. Sections cannot be moved between
//! frames, since each covers its frame; none can be dropped, since the count
//! must match.
//!
//! Auth section: for each layer in order, `length (u16, big-endian) || section`.

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::{AuthFailure, Frame, FrameAuth, Principal};

/// Auth layers that must all agree.
pub struct AuthStack {
    layers: Vec<Arc<dyn FrameAuth>>,
}

impl std::fmt::Debug for AuthStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthStack")
            .field("layers", &self.layers.len())
            .finish()
    }
}

impl AuthStack {
    /// The layers, outermost first.
    pub fn new(layers: Vec<Arc<dyn FrameAuth>>) -> Self {
        Self { layers }
    }

    fn sections(&self, auth: &Bytes) -> Result<Vec<Bytes>, AuthFailure> {
        let mut rest = auth.clone();
        let mut sections = Vec::with_capacity(self.layers.len());
        while rest.has_remaining() {
            if rest.remaining() < 2 {
                return Err(AuthFailure::Missing);
            }
            let len = usize::from(rest.get_u16());
            if rest.remaining() < len {
                return Err(AuthFailure::Missing);
            }
            sections.push(rest.split_to(len));
        }
        if sections.len() != self.layers.len() {
            return Err(AuthFailure::Missing);
        }
        Ok(sections)
    }
}

impl FrameAuth for AuthStack {
    fn sign(&self, frame: &mut Frame) {
        let mut auth = BytesMut::new();
        for layer in &self.layers {
            let mut view = frame.clone();
            view.auth = Bytes::new();
            layer.sign(&mut view);
            // A section too long for its length prefix is left out, which
            // the peer refuses as missing: never a silently cut section.
            if let Ok(len) = u16::try_from(view.auth.len()) {
                auth.put_u16(len);
                auth.put_slice(&view.auth);
            }
        }
        frame.auth = auth.freeze();
    }

    fn verify(&self, frame: &Frame) -> Result<(), AuthFailure> {
        self.authenticate(frame).map(drop)
    }

    fn authenticate(&self, frame: &Frame) -> Result<Option<Principal>, AuthFailure> {
        let sections = self.sections(&frame.auth)?;
        let mut principals = Vec::new();
        for (layer, section) in self.layers.iter().zip(sections) {
            let mut view = frame.clone();
            view.auth = section;
            principals.extend(layer.authenticate(&view)?);
        }
        Ok(Some(Principal::All(principals)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HmacAuth, MessageType, Role};

    fn stack(role: Role, first: &[u8], second: &[u8]) -> AuthStack {
        AuthStack::new(vec![
            Arc::new(HmacAuth::new("service", first, role).unwrap()),
            Arc::new(HmacAuth::new("caller", second, role).unwrap()),
        ])
    }

    #[test]
    fn every_layer_must_accept_its_section() {
        let client = stack(Role::Client, b"one", b"two");
        let server = stack(Role::Server, b"one", b"two");
        let mut frame = Frame::new(MessageType::REQUEST_URI, 3, "jobs", &b"run"[..]);
        client.sign(&mut frame);
        let principal = server.authenticate(&frame).unwrap().unwrap();
        assert_eq!(principal.key_id(), Some("service"));
        assert!(matches!(&principal, Principal::All(all) if all.len() == 2));

        // Either secret wrong: refused.
        for (a, b) in [(&b"one"[..], &b"bad"[..]), (&b"bad"[..], &b"two"[..])] {
            let mut forged = Frame::new(MessageType::REQUEST_URI, 4, "jobs", &b"run"[..]);
            stack(Role::Client, a, b).sign(&mut forged);
            assert_eq!(server.verify(&forged), Err(AuthFailure::BadMac));
        }
        // One section alone, or one too many: refused.
        let single = HmacAuth::new("service", b"one", Role::Client).unwrap();
        let mut lone = Frame::new(MessageType::REQUEST_URI, 5, "jobs", &b"run"[..]);
        single.sign(&mut lone);
        assert_eq!(server.verify(&lone), Err(AuthFailure::Missing));
        let mut doubled = Frame::new(MessageType::REQUEST_URI, 6, "jobs", &b"run"[..]);
        client.sign(&mut doubled);
        let mut auth = BytesMut::from(&doubled.auth[..]);
        auth.extend_from_slice(&doubled.auth[..]);
        doubled.auth = auth.freeze();
        assert_eq!(server.verify(&doubled), Err(AuthFailure::Missing));
        // A section moved to another frame does not verify there.
        let mut other = Frame::new(MessageType::DELETE_URI, 3, "jobs", &b"run"[..]);
        other.auth = frame.auth.clone();
        assert_eq!(server.verify(&other), Err(AuthFailure::BadMac));
    }
}
