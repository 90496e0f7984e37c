//! HMAC frame authentication: [`HmacAuth`] is HMAC-SHA256 over the whole frame
//! (header with the type and request id, URI, body and its own key id,
//! timestamp and nonce), with a time window and a replay cache, which netaio's
//! HMAC plugin lacks (it signs only the body and checks neither time nor nonce).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::replay_window::ReplayWindow;
use super::{AuthFailure, FrameAuth, Principal};
use crate::Frame;

type HmacSha256 = Hmac<Sha256>;

/// Which end a layer signs for. Each direction has its own key, so a frame
/// one side signed can never be reflected back to it as the other side's
/// (netaio W2: a server's own signed reply, retyped, was accepted as a request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sends requests, receives replies and notifications.
    Client,
    /// Receives requests, sends replies and notifications.
    Server,
}

impl Role {
    /// What the key of frames this side sends is derived with.
    fn key_label(self) -> &'static [u8] {
        match self {
            Self::Client => b"tessera-wire hmac v1 client->server",
            Self::Server => b"tessera-wire hmac v1 server->client",
        }
    }

    fn peer(self) -> Self {
        match self {
            Self::Client => Self::Server,
            Self::Server => Self::Client,
        }
    }
}

const NONCE_LEN: usize = 16;
const MAC_LEN: usize = 32;

/// HMAC-SHA256 frame authentication with key ids, a time window and
/// replay protection by sender session and counter.
///
/// Auth section: `key id length (u8) || key id || timestamp (u64 ms, big-endian)
/// || nonce (16: sender session 8, counter u64) || MAC (32)`. The MAC covers
/// the encoded header (with the final auth length), the URI, everything of the
/// auth section before the MAC, and the body. Its key is that of the sender's
/// direction, `HMAC(secret, direction label)`: binding the direction this way
/// costs nothing per frame.
///
/// What replay protection guarantees: within one instance (and the layers
/// [`HmacAuth::rekeyed`] makes from it on a reload), each frame is accepted
/// once (sender session and counter, inside the time window). A
/// frame stamped before this instance was created is refused as stale, so a
/// restarted server accepts nothing recorded before the restart (a peer whose
/// clock lags ours has its frames refused for that lag after a restart). Two
/// live instances sharing a key do not share what they accepted: a frame one
/// accepted is accepted once by the other within the window, unless their
/// replay state is shared (fleet mode).
pub struct HmacAuth {
    /// Keyed MAC states by key id, the key schedule done once.
    keys: HashMap<Vec<u8>, DirectionKeys>,
    signing_key_id: Vec<u8>,
    window: Duration,
    /// Shared with the layers [`HmacAuth::rekeyed`] makes from this one.
    replay: Arc<Mutex<ReplayCache>>,
    failures: AtomicU64,
    session: [u8; 8],
    counter: AtomicU64,
    role: Role,
    /// When this instance started (ms since the epoch): a frame stamped
    /// earlier was made for, and perhaps accepted by, an earlier instance
    /// whose replay cache is gone, so it is refused as stale.
    not_before_ms: u64,
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
    /// room for 100,000 live sender sessions.
    ///
    /// # Errors
    /// [`crate::Error::Config`] for an empty secret or a key id over 255 bytes.
    pub fn new(key_id: &str, secret: &[u8], role: Role) -> Result<Self, crate::Error> {
        if secret.is_empty() {
            return Err(crate::Error::Config("the HMAC secret is empty"));
        }
        if key_id.len() > 255 {
            return Err(crate::Error::Config("the key id is longer than 255 bytes"));
        }
        Ok(Self {
            keys: HashMap::from([(key_id.as_bytes().to_vec(), DirectionKeys::new(secret))]),
            signing_key_id: key_id.as_bytes().to_vec(),
            window: Duration::from_secs(30),
            replay: Arc::new(Mutex::new(ReplayCache::new(100_000))),
            failures: AtomicU64::new(0),
            session: rand::random(),
            counter: AtomicU64::new(0),
            role,
            not_before_ms: now_ms(),
        })
    }

    /// A layer with new keys (a reload) that shares this one's replay
    /// cache and start time: a frame this layer accepted is refused by the
    /// new one as a replay, and one stamped before this layer started as
    /// stale, as if no reload had happened. It signs as a new sender
    /// session, with the same role and window.
    ///
    /// # Errors
    /// As [`HmacAuth::new`].
    pub fn rekeyed(&self, key_id: &str, secret: &[u8]) -> Result<Self, crate::Error> {
        let fresh = Self::new(key_id, secret, self.role)?;
        Ok(Self {
            window: self.window,
            replay: self.replay.clone(),
            not_before_ms: self.not_before_ms,
            ..fresh
        })
    }

    /// Also accepts frames signed with `secret` under `key_id` (key rotation).
    #[must_use]
    pub fn accept(mut self, key_id: &str, secret: &[u8]) -> Self {
        self.keys
            .insert(key_id.as_bytes().to_vec(), DirectionKeys::new(secret));
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

    fn mac(key: &HmacSha256, frame: &Frame, auth_len: usize, auth_prefix: &[u8]) -> HmacSha256 {
        let mut mac = key.clone();
        mac.update(&frame.signed_prefix(auth_len));
        mac.update(auth_prefix);
        mac.update(&frame.body);
        mac
    }

    fn check(&self, frame: &Frame) -> Result<Principal, AuthFailure> {
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
        let expected = Self::mac(
            key.sender(self.role.peer()),
            frame,
            auth.len(),
            &auth[..prefix_len],
        )
        .finalize()
        .into_bytes();
        if !bool::from(expected.as_slice().ct_eq(tag)) {
            return Err(AuthFailure::BadMac);
        }
        let now = now_ms();
        let window = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        if now.abs_diff(timestamp) > window || timestamp < self.not_before_ms {
            return Err(AuthFailure::Stale);
        }
        self.replay
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(nonce, timestamp, now, window)?;
        Ok(Principal::Key(String::from_utf8_lossy(key_id).into_owned()))
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
        // Nonce: this signer's session and a counter (see `ReplayCache`).
        auth.put_slice(&self.session);
        auth.put_u64(self.counter.fetch_add(1, Ordering::Relaxed));
        let total = auth.len() + MAC_LEN;
        let tag = Self::mac(key.sender(self.role), frame, total, &auth)
            .finalize()
            .into_bytes();
        auth.put_slice(&tag);
        frame.auth = auth.freeze();
    }

    fn verify(&self, frame: &Frame) -> Result<(), AuthFailure> {
        self.authenticate(frame).map(drop)
    }

    fn authenticate(&self, frame: &Frame) -> Result<Option<Principal>, AuthFailure> {
        let result = self.check(frame);
        if result.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        result.map(Some)
    }
}

/// Replay protection without remembering every nonce: a nonce is a sender
/// session (8 random bytes per [`HmacAuth`]) and a counter, so the receiver
/// keeps per session the highest counter and a 256-frame window below it (as
/// IPsec and DTLS do). Frames from one sender may arrive out of order by up to
/// 256 (several connections sharing one signer); older or repeated counters
/// are replays. Memory is bounded by the number of live sessions: a session
/// idle for longer than the time window can go, since its frames would be
/// stale anyway; with the table full of live sessions, new ones are refused.
#[derive(Debug)]
struct ReplayCache {
    sessions: HashMap<[u8; 8], Session>,
    capacity: usize,
}

#[derive(Debug)]
struct Session {
    window: ReplayWindow,
    last_seen_ms: u64,
}

impl ReplayCache {
    fn new(capacity: usize) -> Self {
        Self {
            sessions: HashMap::new(),
            capacity,
        }
    }

    fn insert(
        &mut self,
        nonce: [u8; NONCE_LEN],
        _timestamp: u64,
        now: u64,
        window: u64,
    ) -> Result<(), AuthFailure> {
        let session: [u8; 8] = nonce[..8].try_into().map_err(|_| AuthFailure::Missing)?;
        let counter = u64::from_be_bytes(nonce[8..].try_into().map_err(|_| AuthFailure::Missing)?);
        if !self.sessions.contains_key(&session) && self.sessions.len() >= self.capacity {
            self.sessions
                .retain(|_, s| now.saturating_sub(s.last_seen_ms) <= window);
            if self.sessions.len() >= self.capacity {
                return Err(AuthFailure::Overloaded);
            }
        }
        let entry = self.sessions.entry(session).or_insert(Session {
            window: ReplayWindow::default(),
            last_seen_ms: now,
        });
        entry.last_seen_ms = now;
        if entry.window.accept(counter) {
            Ok(())
        } else {
            Err(AuthFailure::Replayed)
        }
    }
}

/// A secret's two keys, one per direction, as keyed MAC states.
#[derive(Clone)]
struct DirectionKeys {
    client: HmacSha256,
    server: HmacSha256,
}

impl DirectionKeys {
    fn new(secret: &[u8]) -> Self {
        let derive = |role: Role| {
            let key = keyed(secret).chain_update(role.key_label()).finalize();
            keyed(&key.into_bytes())
        };
        Self {
            client: derive(Role::Client),
            server: derive(Role::Server),
        }
    }

    /// The key of frames `sender` sends.
    fn sender(&self, sender: Role) -> &HmacSha256 {
        match sender {
            Role::Client => &self.client,
            Role::Server => &self.server,
        }
    }
}

fn keyed(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"))
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
    sender: Role,
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
    let tag = HmacAuth::mac(
        DirectionKeys::new(secret).sender(sender),
        frame,
        total,
        &auth,
    )
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
        let client = HmacAuth::new("k1", b"secret", Role::Client).unwrap();
        let server = HmacAuth::new("k1", b"secret", Role::Server).unwrap();
        let mut signed = frame();
        client.sign(&mut signed);
        assert_eq!(server.verify(&signed), Ok(()));
        assert_eq!(server.verify(&signed), Err(AuthFailure::Replayed));
        assert_eq!(server.failures(), 1);
    }

    #[test]
    fn every_part_of_the_frame_and_its_direction_are_covered() {
        let client = HmacAuth::new("k1", b"secret", Role::Client).unwrap();
        let server = HmacAuth::new("k1", b"secret", Role::Server).unwrap();
        let mut signed = frame();
        client.sign(&mut signed);
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
            assert_eq!(server.verify(&forged), Err(AuthFailure::BadMac));
        }
        assert_eq!(server.verify(&frame()), Err(AuthFailure::Missing));
        let other = HmacAuth::new("k2", b"secret", Role::Server).unwrap();
        assert_eq!(other.verify(&signed), Err(AuthFailure::UnknownKey));
        let wrong = HmacAuth::new("k1", b"other secret", Role::Server).unwrap();
        assert_eq!(wrong.verify(&signed), Err(AuthFailure::BadMac));
        // Reflection: the server's own signed frame is not a client's.
        let mut reply = frame().reply(MessageType::RESPOND_URI, &b"hello"[..]);
        server.sign(&mut reply);
        assert_eq!(server.verify(&reply), Err(AuthFailure::BadMac));
        assert_eq!(client.verify(&reply), Ok(()));
    }

    #[test]
    fn stale_frames_and_rotation() {
        let auth = HmacAuth::new("new", b"s2", Role::Server)
            .unwrap()
            .accept("old", b"s1");
        let mut old = frame();
        old.auth = hmac_section("old", b"s1", Role::Client, &old, now_ms(), [1; 16]);
        assert_eq!(auth.verify(&old), Ok(()));
        let mut stale = frame();
        stale.auth = hmac_section(
            "old",
            b"s1",
            Role::Client,
            &stale,
            now_ms() - 60_000,
            [2; 16],
        );
        assert_eq!(auth.verify(&stale), Err(AuthFailure::Stale));
    }

    #[test]
    fn a_rekeyed_layer_remembers_what_its_predecessor_accepted() {
        let client = HmacAuth::new("k1", b"secret", Role::Client).unwrap();
        let server = HmacAuth::new("k1", b"secret", Role::Server).unwrap();
        let mut signed = frame();
        client.sign(&mut signed);
        assert_eq!(server.verify(&signed), Ok(()));
        // The same secret read again: what was accepted stays a replay.
        let reloaded = server.rekeyed("k1", b"secret").unwrap();
        assert_eq!(reloaded.verify(&signed), Err(AuthFailure::Replayed));
        let mut next = frame();
        client.sign(&mut next);
        assert_eq!(reloaded.verify(&next), Ok(()));
        assert_eq!(server.verify(&next), Err(AuthFailure::Replayed));
        // A new secret: the old one's frames no longer pass, the new one's do.
        let rotated = server.rekeyed("k2", b"new secret").unwrap();
        let mut old = frame();
        client.sign(&mut old);
        assert_eq!(rotated.verify(&old), Err(AuthFailure::UnknownKey));
        let new_client = HmacAuth::new("k2", b"new secret", Role::Client).unwrap();
        let mut new = frame();
        new_client.sign(&mut new);
        assert_eq!(rotated.verify(&new), Ok(()));
        // Its replies are signed with the new key as a new sender session.
        let mut reply = frame().reply(MessageType::RESPOND_URI, &b"hello"[..]);
        rotated.sign(&mut reply);
        assert_eq!(new_client.verify(&reply), Ok(()));
        assert_eq!(client.verify(&reply), Err(AuthFailure::UnknownKey));
    }

    fn nonce(session: u8, counter: u64) -> [u8; 16] {
        let mut nonce = [session; 16];
        nonce[8..].copy_from_slice(&counter.to_be_bytes());
        nonce
    }

    #[test]
    fn the_replay_window_accepts_reordering_and_refuses_repeats() {
        let mut cache = ReplayCache::new(10);
        let mut check = |counter| cache.insert(nonce(1, counter), 0, 1000, 10);
        assert_eq!(check(5), Ok(()));
        assert_eq!(check(5), Err(AuthFailure::Replayed));
        assert_eq!(check(7), Ok(()));
        assert_eq!(check(6), Ok(()), "late but inside the window");
        assert_eq!(check(6), Err(AuthFailure::Replayed));
        assert_eq!(check(1000), Ok(()));
        assert_eq!(check(1000 - 255), Ok(()));
        assert_eq!(
            check(1000 - 256),
            Err(AuthFailure::Replayed),
            "too old to tell"
        );
        assert_eq!(check(7), Err(AuthFailure::Replayed));
        for counter in 1001..1300 {
            assert_eq!(check(counter), Ok(()));
        }
        for counter in 1100..1300 {
            assert_eq!(check(counter), Err(AuthFailure::Replayed), "{counter}");
        }
    }

    #[test]
    fn sessions_are_bounded_and_idle_ones_make_room() {
        let mut cache = ReplayCache::new(2);
        assert_eq!(cache.insert(nonce(1, 0), 0, 1000, 10), Ok(()));
        assert_eq!(cache.insert(nonce(2, 0), 0, 1000, 10), Ok(()));
        assert_eq!(
            cache.insert(nonce(3, 0), 0, 1000, 10),
            Err(AuthFailure::Overloaded)
        );
        // Once the first two are idle past the window there is room again.
        assert_eq!(cache.insert(nonce(3, 0), 0, 1020, 10), Ok(()));
        assert_eq!(
            cache.insert(nonce(3, 0), 0, 1020, 10),
            Err(AuthFailure::Replayed)
        );
    }

    #[test]
    fn regression_a_frame_recorded_before_a_restart_is_refused_after_it() {
        let client = HmacAuth::new("k1", b"secret", Role::Client).unwrap();
        let before = HmacAuth::new("k1", b"secret", Role::Server).unwrap();
        let mut recorded = frame();
        client.sign(&mut recorded);
        assert_eq!(before.verify(&recorded), Ok(()));
        // The restarted server is a new instance, created after the frame was made.
        let stamped = u64::from_be_bytes(recorded.auth[3..11].try_into().unwrap());
        while now_ms() <= stamped {
            std::hint::spin_loop();
        }
        let restarted = HmacAuth::new("k1", b"secret", Role::Server).unwrap();
        assert_eq!(restarted.verify(&recorded), Err(AuthFailure::Stale));
        // Frames signed after the restart pass.
        let mut fresh = frame();
        client.sign(&mut fresh);
        assert_eq!(restarted.verify(&fresh), Ok(()));
    }
}
