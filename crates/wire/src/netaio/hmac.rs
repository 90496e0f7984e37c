//! netaio's HMAC plugin (`../shared/spec/netaio-wire.md` §6), for talking to
//! netaio peers only: its own SHA-256 construction with a 136-byte block over
//! `ts || body`. It does not cover the type, the URI length's header or the
//! direction (netaio W1, W2); we add what stays compatible: a time window on
//! `ts`, a nonce cache against replays (W3) in which each peer address has a
//! budget of its own, and nonces that carry a tag keyed by this instance, so
//! a frame we signed is refused when it is sent back to us (W2) without a
//! table of what we sent. A frame stamped in a second before this instance
//! started is refused, so a restarted server accepts nothing recorded
//! earlier (netaio's timestamps have whole seconds: one recorded in the very
//! second of the restart, before it, is the exception).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
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

/// Nonces seen, by nonce and in arrival order (for expiry), with how many
/// each peer address holds.
#[derive(Debug, Default)]
struct SeenNonces {
    by_nonce: HashMap<Vec<u8>, u64>,
    order: VecDeque<(Vec<u8>, u64, IpAddr)>,
    per_peer: HashMap<IpAddr, usize>,
}

/// Signs and checks netaio frames with a shared secret.
pub struct NetaioHmac {
    secret: Vec<u8>,
    /// Tags this instance's own nonces; random per instance, never sent.
    own_key: [u8; 32],
    window_secs: u64,
    seen: Mutex<SeenNonces>,
    capacity: usize,
    per_peer: usize,
    /// This instance's start (s since the epoch): frames stamped in an
    /// earlier second may have been accepted by an earlier instance whose
    /// nonce cache is gone, so they are refused as stale.
    not_before_secs: u64,
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
    /// a 60 s window and room for [`Self::CAPACITY`] live nonces, at most
    /// [`Self::PER_PEER`] of them from one peer address.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            secret: secret.to_vec(),
            own_key: rand::random(),
            window_secs: 60,
            seen: Mutex::new(SeenNonces::default()),
            capacity: Self::CAPACITY,
            per_peer: Self::PER_PEER,
            not_before_secs: now_secs(),
        }
    }

    /// Live nonces kept at most, all peers together: about 30 MiB when full
    /// (each entry is kept twice, by nonce and by age, with its peer).
    pub const CAPACITY: usize = 200_000;

    /// Live nonces one peer address may hold (about 160 frames/s sustained
    /// over the two minutes a nonce is kept). A peer over it is refused with
    /// [`AuthFailure::Overloaded`]; the others are not affected, so filling
    /// the cache takes [`Self::CAPACITY`] / `PER_PEER` = 10 addresses.
    pub const PER_PEER: usize = 20_000;

    /// Sets the auth fields `nonce`, `ts` and `hmac`. The nonce is 8 random
    /// bytes and an 8-byte tag of them under this instance's own key.
    pub fn sign(&self, frame: &mut NetaioFrame) {
        let mut nonce = [0u8; 16];
        let random: [u8; 8] = rand::random();
        nonce[..8].copy_from_slice(&random);
        nonce[8..].copy_from_slice(&self.own_tag(&random));
        let ts = (now_secs() as u32).to_be_bytes();
        let mac = netaio_mac(&self.secret, &nonce, ts, &frame.body());
        frame.auth = Value::Dict(vec![
            (Value::Str("nonce".into()), Value::Bytes(nonce.to_vec())),
            (Value::Str("ts".into()), Value::Bytes(ts.to_vec())),
            (Value::Str("hmac".into()), Value::Bytes(mac.to_vec())),
        ]);
    }

    /// Checks the fields netaio sets, the time window and the nonce of a
    /// frame from `peer`.
    ///
    /// # Errors
    /// The [`AuthFailure`]: [`AuthFailure::Reflected`] for a frame this
    /// instance signed, [`AuthFailure::Overloaded`] when `peer` has its
    /// budget of live nonces (or the cache is full).
    pub fn verify(&self, frame: &NetaioFrame, peer: IpAddr) -> Result<(), AuthFailure> {
        let bytes = |key| match frame.auth.get(key) {
            Some(Value::Bytes(bytes)) => Some(bytes.clone()),
            _ => None,
        };
        let (Some(nonce), Some(mac)) = (bytes("nonce"), bytes("hmac")) else {
            return Err(AuthFailure::Missing);
        };
        // netaio sends 16 bytes; a longer nonce would only cost cache memory.
        if nonce.len() > MAX_NONCE {
            return Err(AuthFailure::Missing);
        }
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
        let stamped = u64::from(u32::from_be_bytes(ts));
        if now.abs_diff(stamped) > self.window_secs || stamped < self.not_before_secs {
            return Err(AuthFailure::Stale);
        }
        if nonce.len() == 16 && bool::from(self.own_tag(&nonce[..8]).ct_eq(&nonce[8..])) {
            return Err(AuthFailure::Reflected);
        }
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.expire(now, self.window_secs * 2);
        if seen.by_nonce.contains_key(&nonce) {
            return Err(AuthFailure::Replayed);
        }
        let held = seen.per_peer.get(&peer).copied().unwrap_or(0);
        if held >= self.per_peer || seen.by_nonce.len() >= self.capacity {
            return Err(AuthFailure::Overloaded);
        }
        seen.by_nonce.insert(nonce.clone(), now);
        seen.order.push_back((nonce, now, peer));
        *seen.per_peer.entry(peer).or_default() += 1;
        Ok(())
    }

    /// The first 8 bytes of HMAC-SHA256 under the instance key: a nonce
    /// whose second half is the tag of its first was made by this instance
    /// (a forger has one chance in 2^64).
    fn own_tag(&self, random: &[u8]) -> [u8; 8] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.own_key)
            .expect("HMAC takes a key of any length");
        mac.update(random);
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&mac.finalize().into_bytes()[..8]);
        tag
    }
}

impl SeenNonces {
    /// Forgets nonces older than `keep` seconds: a frame is fresh for the
    /// window on either side of now, so nonces are kept twice the window.
    fn expire(&mut self, now: u64, keep: u64) {
        while let Some((_, at, _)) = self.order.front() {
            if now.saturating_sub(*at) <= keep {
                break;
            }
            let Some((old, _, peer)) = self.order.pop_front() else {
                break;
            };
            self.by_nonce.remove(&old);
            if let Some(held) = self.per_peer.get_mut(&peer) {
                *held -= 1;
                if *held == 0 {
                    self.per_peer.remove(&peer);
                }
            }
        }
    }
}

/// Longest nonce accepted, in bytes (netaio's are 16).
const MAX_NONCE: usize = 64;

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

    const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn signed(by: &NetaioHmac) -> NetaioFrame {
        let mut frame = NetaioFrame::new(0, &b"echo"[..], &b"hi"[..]);
        by.sign(&mut frame);
        frame
    }

    #[test]
    fn sign_verify_replay_and_tamper() {
        let client = NetaioHmac::new(b"secret");
        let auth = NetaioHmac::new(b"secret");
        let frame = signed(&client);
        assert_eq!(auth.verify(&frame, PEER), Ok(()));
        assert_eq!(auth.verify(&frame, PEER), Err(AuthFailure::Replayed));
        let mut tampered = frame.clone();
        tampered.content = bytes::Bytes::from_static(b"ho");
        assert_eq!(auth.verify(&tampered, PEER), Err(AuthFailure::BadMac));
        assert_eq!(
            auth.verify(&NetaioFrame::new(0, &b"echo"[..], &b"hi"[..]), PEER),
            Err(AuthFailure::Missing)
        );
        assert_eq!(
            NetaioHmac::new(b"other").verify(&frame, PEER),
            Err(AuthFailure::BadMac)
        );
    }

    #[test]
    fn regression_a_frame_we_signed_is_refused_when_sent_back() {
        let server = NetaioHmac::new(b"secret");
        let reply = signed(&server);
        assert_eq!(server.verify(&reply, PEER), Err(AuthFailure::Reflected));
        // Retyped, as netaio's MAC allows: still ours.
        let mut retyped = reply.clone();
        retyped.kind = 7;
        assert_eq!(server.verify(&retyped, PEER), Err(AuthFailure::Reflected));
        // Another instance with the same secret (a client, a second server) accepts it.
        assert_eq!(NetaioHmac::new(b"secret").verify(&reply, PEER), Ok(()));
    }

    #[test]
    fn regression_one_peer_filling_its_nonce_budget_does_not_lock_out_another() {
        let mut server = NetaioHmac::new(b"secret");
        server.per_peer = 8;
        let client = NetaioHmac::new(b"secret");
        let flooder: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..8 {
            assert_eq!(server.verify(&signed(&client), flooder), Ok(()));
        }
        assert_eq!(
            server.verify(&signed(&client), flooder),
            Err(AuthFailure::Overloaded)
        );
        assert_eq!(server.verify(&signed(&client), PEER), Ok(()));
        // Expired nonces give the budget back.
        let mut seen = server.seen.lock().unwrap();
        seen.expire(now_secs() + 1_000, 120);
        assert!(seen.per_peer.is_empty() && seen.by_nonce.is_empty());
    }

    #[test]
    fn regression_a_frame_recorded_before_a_restart_is_refused_after_it() {
        let client = NetaioHmac::new(b"secret");
        let before = NetaioHmac::new(b"secret");
        let recorded = signed(&client);
        assert_eq!(before.verify(&recorded, PEER), Ok(()));
        let mut restarted = NetaioHmac::new(b"secret");
        // As if it had started in the second after the frame was made.
        restarted.not_before_secs += 1;
        assert_eq!(restarted.verify(&recorded, PEER), Err(AuthFailure::Stale));
    }
}
