//! netaio's HMAC plugin (`../shared/spec/netaio-wire.md` §6), for talking to
//! netaio peers only: its own SHA-256 construction with a 136-byte block over
//! `ts || body`. It does not cover the type, the URI length's header or the
//! direction (netaio W1, W2); we add what stays compatible: a time window on
//! `ts` and a bounded nonce cache against replays (W3).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::packify::Value;
use super::NetaioFrame;
use crate::AuthFailure;

/// netaio's MAC: see the module docs.
pub fn netaio_mac(secret: &[u8], nonce: &[u8], ts: [u8; 4], body: &[u8]) -> [u8; 32] {
    let master = Sha256::digest(secret);
    let mut k = Sha256::new();
    k.update(Sha256::digest(master));
    k.update(Sha256::digest(nonce));
    k.update(Sha256::digest(b"mac"));
    let mut k0 = [0u8; 136];
    k0[..32].copy_from_slice(&k.finalize());
    let pad = |byte: u8| k0.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(ts)
        .chain_update(body)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Nonces seen, by nonce and in arrival order (for expiry).
#[derive(Debug, Default)]
struct SeenNonces {
    by_nonce: HashMap<Vec<u8>, u64>,
    order: VecDeque<(Vec<u8>, u64)>,
}

/// Signs and checks netaio frames with a shared secret.
pub struct NetaioHmac {
    secret: Vec<u8>,
    window_secs: u64,
    seen: Mutex<SeenNonces>,
    capacity: usize,
}

impl std::fmt::Debug for NetaioHmac {
    /// Never prints the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetaioHmac")
            .field("window_secs", &self.window_secs)
            .finish_non_exhaustive()
    }
}

impl NetaioHmac {
    /// netaio's HMAC with `secret` (its UTF-8 bytes when netaio is given text),
    /// a 60 s window and room for 200,000 live nonces.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            secret: secret.to_vec(),
            window_secs: 60,
            seen: Mutex::new(SeenNonces::default()),
            capacity: 200_000,
        }
    }

    /// Sets the auth fields `nonce`, `ts` and `hmac`.
    pub fn sign(&self, frame: &mut NetaioFrame) {
        let nonce: [u8; 16] = rand::random();
        let ts = (now_secs() as u32).to_be_bytes();
        let mac = netaio_mac(&self.secret, &nonce, ts, &frame.body());
        frame.auth = Value::Dict(vec![
            (Value::Str("nonce".into()), Value::Bytes(nonce.to_vec())),
            (Value::Str("ts".into()), Value::Bytes(ts.to_vec())),
            (Value::Str("hmac".into()), Value::Bytes(mac.to_vec())),
        ]);
    }

    /// Checks the fields netaio sets, the time window and the nonce.
    ///
    /// # Errors
    /// The [`AuthFailure`].
    pub fn verify(&self, frame: &NetaioFrame) -> Result<(), AuthFailure> {
        let bytes = |key| match frame.auth.get(key) {
            Some(Value::Bytes(bytes)) => Some(bytes.clone()),
            _ => None,
        };
        let (Some(nonce), Some(mac)) = (bytes("nonce"), bytes("hmac")) else {
            return Err(AuthFailure::Missing);
        };
        let ts: [u8; 4] = match frame.auth.get("ts") {
            Some(Value::Bytes(bytes)) => bytes
                .as_slice()
                .try_into()
                .map_err(|_| AuthFailure::Missing)?,
            Some(Value::Int(n)) if *n > 0 => u32::try_from(*n)
                .map_err(|_| AuthFailure::Missing)?
                .to_be_bytes(),
            _ => return Err(AuthFailure::Missing),
        };
        let expected = netaio_mac(&self.secret, &nonce, ts, &frame.body());
        if !bool::from(expected.as_slice().ct_eq(&mac)) {
            return Err(AuthFailure::BadMac);
        }
        let now = now_secs();
        if now.abs_diff(u64::from(u32::from_be_bytes(ts))) > self.window_secs {
            return Err(AuthFailure::Stale);
        }
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        // A frame is fresh for the window on either side of now: keep nonces twice that.
        while let Some((old, at)) = seen.order.front() {
            if now.saturating_sub(*at) <= self.window_secs * 2 {
                break;
            }
            let old = old.clone();
            seen.by_nonce.remove(&old);
            seen.order.pop_front();
        }
        if seen.by_nonce.contains_key(&nonce) {
            return Err(AuthFailure::Replayed);
        }
        if seen.by_nonce.len() >= self.capacity {
            return Err(AuthFailure::Overloaded);
        }
        seen.by_nonce.insert(nonce.clone(), now);
        seen.order.push_back((nonce, now));
        Ok(())
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_vector() {
        let mac = netaio_mac(
            b"tessera-test-secret",
            &(0..16).collect::<Vec<u8>>(),
            [0x65, 0, 0, 0],
            &[
                0x00, 0x04, b'e', b'c', b'h', b'o', b'h', b'e', b'l', b'l', b'o',
            ],
        );
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "e8f654be3fb6133830eb2ef6bb9731ee0609e5d64da8031acdf78764ac1b7798"
        );
    }

    #[test]
    fn sign_verify_replay_and_tamper() {
        let auth = NetaioHmac::new(b"secret");
        let mut frame = NetaioFrame::new(0, &b"echo"[..], &b"hi"[..]);
        auth.sign(&mut frame);
        assert_eq!(auth.verify(&frame), Ok(()));
        assert_eq!(auth.verify(&frame), Err(AuthFailure::Replayed));
        let mut tampered = frame.clone();
        tampered.content = bytes::Bytes::from_static(b"ho");
        assert_eq!(auth.verify(&tampered), Err(AuthFailure::BadMac));
        assert_eq!(
            auth.verify(&NetaioFrame::new(0, &b"echo"[..], &b"hi"[..])),
            Err(AuthFailure::Missing)
        );
        assert_eq!(
            NetaioHmac::new(b"other").verify(&frame),
            Err(AuthFailure::BadMac)
        );
    }
}
