//! Frame authentication: a layer signs every frame it sends and checks every
//! frame it receives. [`HmacAuth`] is HMAC-SHA256 over the whole frame
//! (header with the type and request id, URI, body and its own key id,
//! timestamp and nonce), with a time window and a replay cache, which netaio's
//! HMAC plugin lacks (it signs only the body and checks neither time nor nonce).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::Frame;

type HmacSha256 = Hmac<Sha256>;

/// Why a frame was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No auth section, or one that does not parse.
    Missing,
    /// A key id this layer does not know.
    UnknownKey,
    /// The MAC does not match (tampered frame, wrong key, swapped type…).
    BadMac,
    /// The timestamp is outside the window.
    Stale,
    /// The nonce was seen before within the window.
    Replayed,
    /// The replay cache is full of live nonces: refuse rather than forget.
    Overloaded,
}

impl AuthFailure {
    /// Snake-case name for logs and counters.
    pub fn name(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::UnknownKey => "unknown_key",
            Self::BadMac => "bad_mac",
            Self::Stale => "stale",
            Self::Replayed => "replayed",
            Self::Overloaded => "overloaded",
        }
    }
}

/// Signs outgoing frames and checks incoming ones.
pub trait FrameAuth: Send + Sync + 'static {
    /// Writes the auth section of `frame`.
    fn sign(&self, frame: &mut Frame);
    /// Checks the auth section of `frame`.
    ///
    /// # Errors
    /// The [`AuthFailure`].
    fn verify(&self, frame: &Frame) -> Result<(), AuthFailure>;
}

const NONCE_LEN: usize = 16;
const MAC_LEN: usize = 32;

/// HMAC-SHA256 frame authentication with key ids, a time window and a
/// bounded replay cache.
///
/// Auth section: `key id length (u8) || key id || timestamp (u64 ms, big-endian)
/// || nonce (16) || MAC (32)`. The MAC covers the encoded header (with the
/// final auth length), the URI, everything of the auth section before the MAC,
/// and the body.
pub struct HmacAuth {
    keys: HashMap<Vec<u8>, Vec<u8>>,
    signing_key_id: Vec<u8>,
    window: Duration,
    replay: Mutex<ReplayCache>,
    failures: AtomicU64,
}

impl std::fmt::Debug for HmacAuth {
    /// Never prints keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HmacAuth")
            .field("key_id", &String::from_utf8_lossy(&self.signing_key_id))
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl HmacAuth {
    /// Signs with `secret` under `key_id` and accepts it; a 30 s window and
    /// room for 100,000 live nonces.
    ///
    /// # Errors
    /// [`crate::Error::Config`] for an empty secret or a key id over 255 bytes.
    pub fn new(key_id: &str, secret: &[u8]) -> Result<Self, crate::Error> {
        if secret.is_empty() {
            return Err(crate::Error::Config("the HMAC secret is empty".into()));
        }
        if key_id.len() > 255 {
            return Err(crate::Error::Config(
                "the key id is longer than 255 bytes".into(),
            ));
        }
        Ok(Self {
            keys: HashMap::from([(key_id.as_bytes().to_vec(), secret.to_vec())]),
            signing_key_id: key_id.as_bytes().to_vec(),
            window: Duration::from_secs(30),
            replay: Mutex::new(ReplayCache::new(100_000)),
            failures: AtomicU64::new(0),
        })
    }

    /// Also accepts frames signed with `secret` under `key_id` (key rotation).
    #[must_use]
    pub fn accept(mut self, key_id: &str, secret: &[u8]) -> Self {
        self.keys
            .insert(key_id.as_bytes().to_vec(), secret.to_vec());
        self
    }

    /// The accepted clock difference (and how long a nonce is remembered).
    #[must_use]
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Frames refused so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn mac(key: &[u8], frame: &Frame, auth_len: usize, auth_prefix: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| {
            // HMAC takes keys of any length; this branch cannot be reached.
            HmacSha256::new_from_slice(&[0]).expect("HMAC accepts a one-byte key")
        });
        mac.update(&frame.signed_prefix(auth_len));
        mac.update(auth_prefix);
        mac.update(&frame.body);
        mac
    }

    fn check(&self, frame: &Frame) -> Result<(), AuthFailure> {
        let auth = &frame.auth[..];
        let id_len = usize::from(*auth.first().ok_or(AuthFailure::Missing)?);
        if auth.len() != 1 + id_len + 8 + NONCE_LEN + MAC_LEN {
            return Err(AuthFailure::Missing);
        }
        let key_id = &auth[1..1 + id_len];
        let rest = &auth[1 + id_len..];
        let timestamp = u64::from_be_bytes(rest[..8].try_into().map_err(|_| AuthFailure::Missing)?);
        let nonce: [u8; NONCE_LEN] = rest[8..8 + NONCE_LEN]
            .try_into()
            .map_err(|_| AuthFailure::Missing)?;
        let tag = &rest[8 + NONCE_LEN..];
        let key = self.keys.get(key_id).ok_or(AuthFailure::UnknownKey)?;
        let prefix_len = auth.len() - MAC_LEN;
        let expected = Self::mac(key, frame, auth.len(), &auth[..prefix_len])
            .finalize()
            .into_bytes();
        if !bool::from(expected.as_slice().ct_eq(tag)) {
            return Err(AuthFailure::BadMac);
        }
        let now = now_ms();
        let window = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        if now.abs_diff(timestamp) > window {
            return Err(AuthFailure::Stale);
        }
        self.replay
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(nonce, timestamp, now, window)
    }
}

impl FrameAuth for HmacAuth {
    fn sign(&self, frame: &mut Frame) {
        let key = &self.keys[&self.signing_key_id];
        let mut auth =
            BytesMut::with_capacity(1 + self.signing_key_id.len() + 8 + NONCE_LEN + MAC_LEN);
        auth.put_u8(self.signing_key_id.len() as u8);
        auth.put_slice(&self.signing_key_id);
        auth.put_u64(now_ms());
        auth.put_slice(&rand::random::<[u8; NONCE_LEN]>());
        let total = auth.len() + MAC_LEN;
        let tag = Self::mac(key, frame, total, &auth).finalize().into_bytes();
        auth.put_slice(&tag);
        frame.auth = auth.freeze();
    }

    fn verify(&self, frame: &Frame) -> Result<(), AuthFailure> {
        let result = self.check(frame);
        if result.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

/// Nonces seen within the window, oldest first; bounded.
#[derive(Debug)]
struct ReplayCache {
    seen: HashMap<[u8; NONCE_LEN], u64>,
    order: VecDeque<([u8; NONCE_LEN], u64)>,
    capacity: usize,
}

impl ReplayCache {
    fn new(capacity: usize) -> Self {
        Self {
            seen: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    fn insert(
        &mut self,
        nonce: [u8; NONCE_LEN],
        timestamp: u64,
        now: u64,
        window: u64,
    ) -> Result<(), AuthFailure> {
        // Forget nonces whose frames are now too old to be accepted anyway.
        while let Some(&(old, at)) = self.order.front() {
            if now.saturating_sub(at) <= window {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&old);
        }
        if self.seen.contains_key(&nonce) {
            return Err(AuthFailure::Replayed);
        }
        if self.seen.len() >= self.capacity {
            return Err(AuthFailure::Overloaded);
        }
        self.seen.insert(nonce, timestamp);
        // Expire by the latest time the frame could still be accepted.
        self.order.push_back((nonce, timestamp.max(now)));
        Ok(())
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Builds an auth section by hand, for tests of refusals.
#[doc(hidden)]
pub fn hmac_section(
    key_id: &str,
    secret: &[u8],
    frame: &Frame,
    timestamp_ms: u64,
    nonce: [u8; 16],
) -> Bytes {
    let mut auth = BytesMut::new();
    auth.put_u8(key_id.len() as u8);
    auth.put_slice(key_id.as_bytes());
    auth.put_u64(timestamp_ms);
    auth.put_slice(&nonce);
    let total = auth.len() + MAC_LEN;
    let tag = HmacAuth::mac(secret, frame, total, &auth)
        .finalize()
        .into_bytes();
    auth.put_slice(&tag);
    auth.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MessageType;

    fn frame() -> Frame {
        Frame::new(MessageType::REQUEST_URI, 9, "echo", &b"hello"[..])
    }

    #[test]
    fn signed_frames_verify_once() {
        let auth = HmacAuth::new("k1", b"secret").unwrap();
        let mut signed = frame();
        auth.sign(&mut signed);
        assert_eq!(auth.verify(&signed), Ok(()));
        assert_eq!(auth.verify(&signed), Err(AuthFailure::Replayed));
        assert_eq!(auth.failures(), 1);
    }

    #[test]
    fn every_part_of_the_frame_is_covered() {
        let auth = HmacAuth::new("k1", b"secret").unwrap();
        let mut signed = frame();
        auth.sign(&mut signed);
        let tamper: [fn(&mut Frame); 5] = [
            |f| f.kind = MessageType::DELETE_URI,
            |f| f.request_id += 1,
            |f| f.uri = "admin".into(),
            |f| f.body = Bytes::from_static(b"hellO"),
            |f| f.flags = crate::FLAG_ONE_WAY,
        ];
        for change in tamper {
            let mut forged = signed.clone();
            change(&mut forged);
            assert_eq!(auth.verify(&forged), Err(AuthFailure::BadMac));
        }
        assert_eq!(auth.verify(&frame()), Err(AuthFailure::Missing));
        let other = HmacAuth::new("k2", b"secret").unwrap();
        assert_eq!(other.verify(&signed), Err(AuthFailure::UnknownKey));
        let wrong = HmacAuth::new("k1", b"other secret").unwrap();
        assert_eq!(wrong.verify(&signed), Err(AuthFailure::BadMac));
    }

    #[test]
    fn stale_frames_and_rotation() {
        let auth = HmacAuth::new("new", b"s2").unwrap().accept("old", b"s1");
        let mut old = frame();
        old.auth = hmac_section("old", b"s1", &old, now_ms(), [1; 16]);
        assert_eq!(auth.verify(&old), Ok(()));
        let mut stale = frame();
        stale.auth = hmac_section("old", b"s1", &stale, now_ms() - 60_000, [2; 16]);
        assert_eq!(auth.verify(&stale), Err(AuthFailure::Stale));
    }

    #[test]
    fn the_replay_cache_is_bounded_and_fails_closed() {
        let mut cache = ReplayCache::new(2);
        assert_eq!(cache.insert([1; 16], 1000, 1000, 10), Ok(()));
        assert_eq!(cache.insert([2; 16], 1000, 1000, 10), Ok(()));
        assert_eq!(
            cache.insert([3; 16], 1000, 1000, 10),
            Err(AuthFailure::Overloaded)
        );
        // Once the first two are out of the window there is room again.
        assert_eq!(cache.insert([3; 16], 1020, 1020, 10), Ok(()));
        assert_eq!(
            cache.insert([3; 16], 1020, 1020, 10),
            Err(AuthFailure::Replayed)
        );
    }
}
