//! The node as a sans-IO state machine, in the manner of quinn-proto: feed it
//! datagrams, sends and clock ticks; take from it datagrams to transmit and
//! events for the application. The tokio driver (`driver.rs`) only moves
//! bytes between this and the sockets, so every rule here is testable with
//! two cores passing datagrams by hand and a clock that jumps.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use snow::StatelessTransportState;

use super::advert::{Advert, AdvertKind};
use super::cookie::CookieJar;
use super::datagram::Datagram;
use super::identity::{noise_builder, NodeId, NodeIdentity};
use super::peers::{PeerInfo, PeerTable, Update};
use super::session::{Established, Initiating, OpenError, PeerSessions};

/// Largest payload one datagram carries (a UDP datagram holds 65,507 bytes
/// over IPv4; the rest is header and AEAD tag).
pub const MAX_PAYLOAD: usize = 60_000;
/// Noise messages are at most 65,535 bytes.
const NOISE_MAX: usize = 65_535;
/// Datagrams queued per peer while its handshake runs.
const PENDING_PER_PEER: usize = 64;
const PROLOGUE: &[u8] = b"tessera-node v1";
/// Cookies sent to one address per second at most (a burst of as many).
/// Per address, not in total, so that a flood from many addresses cannot
/// spend the cookies a real newcomer needs; a cookie is smaller than the
/// advert it answers, so a spoofed victim receives less than was sent.
const COOKIES_PER_ADDRESS: u32 = 10;
/// Cookies answered per second at most: a forged cookie addressed to this
/// node makes it send its advert to the forged source.
const COOKIE_ANSWER_RATE: u32 = 100;

/// What a node reports to its application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// A new peer's advert was seen.
    PeerJoined(PeerInfo),
    /// A peer is gone.
    PeerLeft {
        /// Who.
        peer: PeerInfo,
        /// Why.
        reason: LeaveReason,
    },
    /// An authenticated, decrypted message from a peer.
    Message {
        /// The sender, as proven by the Noise handshake.
        from: NodeId,
        /// What it sent.
        payload: Bytes,
    },
}

/// Why a peer left the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaveReason {
    /// It said goodbye.
    Goodbye,
    /// Nothing heard from it within the peer timeout.
    Timeout,
}

/// Why a send was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No such peer in the table.
    #[error("unknown peer")]
    UnknownPeer,
    /// The payload exceeds the datagram limit.
    #[error("payload of {0} bytes exceeds the datagram limit")]
    TooLarge(usize),
    /// Too many datagrams wait for this peer's handshake.
    #[error("too many datagrams wait for the handshake")]
    Backlogged,
}

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Transmit {
    /// Where.
    pub(crate) to: SocketAddr,
    /// What.
    pub(crate) bytes: Bytes,
}

/// Counters for operators and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Datagrams that were not ours, did not parse, or failed authentication.
    pub dropped: u64,
    /// Data datagrams refused as replays.
    pub replayed: u64,
    /// Handshakes that got no answer after every retry.
    pub handshakes_failed: u64,
    /// Sessions established (either side).
    pub sessions: u64,
    /// Handshakes not answered because the handshake rate was exceeded.
    pub handshakes_shed: u64,
    /// Events the application did not take in time (its queue was full).
    pub events_dropped: u64,
    /// Cookies sent to nodes not in the table; one joins only once it
    /// brings its cookie back (a forged source address never does).
    pub cookies_sent: u64,
}

/// Timings and limits of a node.
#[derive(Clone, Debug)]
pub(crate) struct CoreConfig {
    pub(crate) name: String,
    pub(crate) port: u16,
    /// Milliseconds since the epoch at start: orders this run after earlier ones.
    pub(crate) incarnation: u64,
    pub(crate) advert_targets: Vec<SocketAddr>,
    /// Without multicast, adverts also go to every known peer: how a node
    /// seeded with one address becomes known to that peer and stays alive.
    pub(crate) advertise_to_peers: bool,
    pub(crate) peer_timeout: Duration,
    pub(crate) handshake_retry: Duration,
    pub(crate) handshake_attempts: u32,
    pub(crate) max_peers: usize,
    /// Most peers kept from one source address.
    pub(crate) max_peers_per_source: usize,
    pub(crate) max_payload: usize,
    /// Handshakes answered per second at most (a burst of as many).
    pub(crate) handshake_rate: u32,
    /// Age at which a session is replaced by a new handshake.
    pub(crate) rekey_after: Duration,
}

#[cfg(any(test, feature = "fuzzing"))]
impl CoreConfig {
    /// The timings and limits the core's tests and the fuzz target drive a
    /// node with (the driver builds its own from `NodeConfig`).
    pub(crate) fn with_test_timings(name: String, port: u16, targets: Vec<SocketAddr>) -> Self {
        Self {
            name,
            port,
            incarnation: 1,
            advert_targets: targets,
            advertise_to_peers: true,
            peer_timeout: Duration::from_secs(5),
            handshake_retry: Duration::from_millis(500),
            handshake_attempts: 3,
            max_peers: 16,
            max_peers_per_source: 16,
            max_payload: MAX_PAYLOAD,
            handshake_rate: 100,
            rekey_after: Duration::from_secs(120),
        }
    }
}

pub(crate) struct NodeCore {
    identity: NodeIdentity,
    config: CoreConfig,
    sequence: u64,
    handshake_stamp: u64,
    peers: PeerTable,
    sessions: HashMap<NodeId, PeerSessions>,
    indices: HashMap<u32, NodeId>,
    /// Highest handshake stamp accepted per peer: a replayed INIT is refused.
    last_init: HashMap<NodeId, (u64, u64)>,
    /// Each answered handshake costs four X25519 operations: a flood of
    /// INITs is shed beyond this budget instead of burning the CPU.
    handshakes: tessera_guard::GlobalLimiter,
    /// Newcomers join through a cookie sent to their address (cookie.rs).
    cookies: CookieJar,
    cookies_sent: tessera_guard::Limiter,
    cookies_answered: tessera_guard::GlobalLimiter,
    origin: Instant,
    transmits: VecDeque<Transmit>,
    events: VecDeque<NodeEvent>,
    stats: NodeStats,
}

impl NodeCore {
    pub(crate) fn new(identity: NodeIdentity, config: CoreConfig) -> Self {
        let peers = PeerTable::new(
            identity.id(),
            config.max_peers,
            config.max_peers_per_source,
            config.peer_timeout,
        );
        let rate = config.handshake_rate.max(1);
        let limiter = |rate: u32| {
            tessera_guard::GlobalLimiter::new(f64::from(rate), rate)
                .unwrap_or_else(|_| unreachable!("a rate of at least 1 is valid"))
        };
        let handshakes = limiter(rate);
        Self {
            identity,
            config,
            sequence: 0,
            handshake_stamp: 0,
            peers,
            sessions: HashMap::new(),
            indices: HashMap::new(),
            last_init: HashMap::new(),
            handshakes,
            cookies: CookieJar::new(),
            cookies_sent: tessera_guard::Limiter::new(&tessera_guard::LimiterConfig {
                rate: f64::from(COOKIES_PER_ADDRESS),
                burst: COOKIES_PER_ADDRESS,
                max_clients: 4096,
                ..tessera_guard::LimiterConfig::default()
            })
            .unwrap_or_else(|_| unreachable!("valid limiter settings")),
            cookies_answered: limiter(COOKIE_ANSWER_RATE),
            origin: Instant::now(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: NodeStats::default(),
        }
    }

    pub(crate) fn id(&self) -> NodeId {
        self.identity.id()
    }

    pub(crate) fn stats(&self) -> NodeStats {
        self.stats
    }

    pub(crate) fn peers(&self) -> Vec<PeerInfo> {
        self.peers.infos()
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub(crate) fn poll_event(&mut self) -> Option<NodeEvent> {
        self.events.pop_front()
    }

    fn signed_advert(&mut self, kind: AdvertKind) -> Bytes {
        self.sequence += 1;
        Advert {
            kind,
            node: self.identity.id(),
            noise_key: self.identity.noise_public(),
            incarnation: self.config.incarnation,
            sequence: self.sequence,
            port: self.config.port,
            name: self.config.name.clone(),
        }
        .sign(&self.identity)
    }

    /// Queues a hello to every advert target (multicast groups, seeds), and
    /// to every known peer when there is no multicast.
    pub(crate) fn advertise(&mut self) {
        self.send_advert(AdvertKind::Hello, self.config.advertise_to_peers);
    }

    /// Queues a goodbye to every advert target and every known peer.
    pub(crate) fn goodbye(&mut self) {
        self.send_advert(AdvertKind::Goodbye, true);
    }

    fn send_advert(&mut self, kind: AdvertKind, to_peers: bool) {
        let advert = self.signed_advert(kind);
        let bytes = Datagram::Advert(&advert).encode();
        let mut targets = self.config.advert_targets.clone();
        if to_peers {
            for addr in self.peers.addrs() {
                if !targets.contains(&addr) {
                    targets.push(addr);
                }
            }
        }
        for to in targets {
            self.transmits.push_back(Transmit {
                to,
                bytes: bytes.clone(),
            });
        }
    }

    /// Expires silent peers and retries or abandons unanswered handshakes.
    pub(crate) fn tick(&mut self, now: Instant) {
        for peer in self.peers.expire(now) {
            self.forget(&peer.id);
            self.events.push_back(NodeEvent::PeerLeft {
                peer,
                reason: LeaveReason::Timeout,
            });
        }
        let retry = self.config.handshake_retry;
        let due: Vec<NodeId> = self
            .sessions
            .iter()
            .filter(|(_, state)| {
                state
                    .handshake
                    .as_ref()
                    .is_some_and(|h| now.saturating_duration_since(h.sent_at) >= retry)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(Initiating {
                attempts, pending, ..
            }) = self.take_handshake(&id)
            else {
                continue;
            };
            if attempts >= self.config.handshake_attempts {
                self.stats.handshakes_failed += 1;
                tracing::debug!(peer = %id.short(), dropped = pending.len(), "handshake unanswered");
                continue;
            }
            self.initiate(id, pending, attempts + 1, now);
        }
        // Keys replaced a rekey period ago have had their time.
        let rekey_after = self.config.rekey_after;
        let mut retired = Vec::new();
        for state in self.sessions.values_mut() {
            let replaced_at = state.current.as_ref().map(|c| c.since);
            if replaced_at.is_some_and(|at| now.saturating_duration_since(at) >= rekey_after) {
                retired.extend(state.previous.take().map(|p| p.local_index));
            }
        }
        for index in retired {
            self.indices.remove(&index);
        }
    }

    /// Encrypts `payload` to `peer`, starting a handshake first if needed.
    pub(crate) fn send(
        &mut self,
        peer: NodeId,
        payload: Bytes,
        now: Instant,
    ) -> Result<(), SendError> {
        if payload.len() > self.config.max_payload.min(MAX_PAYLOAD) {
            return Err(SendError::TooLarge(payload.len()));
        }
        let addr = self
            .peers
            .get(&peer)
            .ok_or(SendError::UnknownPeer)?
            .info
            .addr;
        let rekey_after = self.config.rekey_after;
        let state = self.sessions.entry(peer).or_default();
        // A session three periods old (its rekeys all failed) is not used.
        if let Some(stale) = state
            .current
            .take_if(|c| now.saturating_duration_since(c.since) >= rekey_after * 3)
        {
            self.indices.remove(&stale.local_index);
        }
        if let Some(current) = &mut state.current {
            let (receiver, counter, ciphertext) = current
                .seal(&payload)
                .ok_or(SendError::TooLarge(payload.len()))?;
            let rekey = now.saturating_duration_since(current.since) >= rekey_after
                && state.handshake.is_none();
            let bytes = Datagram::Data {
                receiver,
                counter,
                ciphertext: &ciphertext,
            }
            .encode();
            self.transmits.push_back(Transmit { to: addr, bytes });
            if rekey {
                self.initiate(peer, VecDeque::new(), 1, now);
            }
            return Ok(());
        }
        if let Some(handshake) = &mut state.handshake {
            if handshake.pending.len() >= PENDING_PER_PEER {
                return Err(SendError::Backlogged);
            }
            handshake.pending.push_back(payload);
            return Ok(());
        }
        self.initiate(peer, VecDeque::from([payload]), 1, now);
        Ok(())
    }

    /// Sends `payload` to every known peer; returns how many it was queued for.
    pub(crate) fn broadcast(&mut self, payload: &Bytes, now: Instant) -> Result<usize, SendError> {
        let ids: Vec<NodeId> = self.peers.ids().copied().collect();
        let mut sent = 0;
        for id in ids {
            match self.send(id, payload.clone(), now) {
                Ok(()) => sent += 1,
                Err(SendError::TooLarge(len)) => return Err(SendError::TooLarge(len)),
                Err(_) => {}
            }
        }
        Ok(sent)
    }

    /// Handles one received datagram; anything invalid is dropped and counted.
    pub(crate) fn handle(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) {
        let handled = match Datagram::parse(bytes) {
            Some(Datagram::Advert(advert)) => self.on_advert(from, advert, now),
            Some(Datagram::Init { sender, noise }) => self.on_init(from, sender, noise, now),
            Some(Datagram::Response {
                receiver,
                sender,
                noise,
            }) => self.on_response(receiver, sender, noise, now),
            Some(Datagram::Data {
                receiver,
                counter,
                ciphertext,
            }) => self.on_data(receiver, counter, ciphertext, now),
            Some(Datagram::Cookie { node, cookie }) => self.on_cookie(from, &node, cookie, now),
            Some(Datagram::ProvenAdvert { cookie, advert }) => {
                self.on_proven_advert(from, &cookie, advert, now)
            }
            None => false,
        };
        if !handled {
            self.stats.dropped += 1;
        }
    }

    fn on_advert(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) -> bool {
        let Ok(advert) = Advert::verify(bytes) else {
            return false;
        };
        if self.is_newcomer(&advert.node) {
            // It joins once it brings this cookie back from its address.
            if advert.kind == AdvertKind::Hello {
                self.send_cookie(from, &advert, now);
            }
            return true;
        }
        self.apply_advert(&advert, from, now);
        true
    }

    /// A node neither this one nor in the table.
    fn is_newcomer(&self, node: &NodeId) -> bool {
        *node != self.identity.id() && self.peers.get(node).is_none()
    }

    /// Answers a newcomer's advert (or handshake) with a cookie sent to the
    /// address it came from, at the advertised node port.
    fn send_cookie(&mut self, from: SocketAddr, advert: &Advert, now: Instant) {
        let elapsed = now.saturating_duration_since(self.origin);
        if self.cookies_sent.check(from.ip(), nanos(elapsed)).is_err() {
            return;
        }
        let cookie = self.cookies.issue(elapsed, from.ip(), &advert.node);
        let bytes = Datagram::Cookie {
            node: advert.node.0,
            cookie,
        }
        .encode();
        let to = SocketAddr::new(from.ip(), advert.port);
        self.transmits.push_back(Transmit { to, bytes });
        self.stats.cookies_sent += 1;
    }

    /// A cookie for this node: our advert goes back with it to its sender.
    fn on_cookie(
        &mut self,
        from: SocketAddr,
        node: &[u8; 32],
        cookie: [u8; 16],
        now: Instant,
    ) -> bool {
        if *node != self.identity.id().0 {
            return false;
        }
        let elapsed = now.saturating_duration_since(self.origin);
        if self.cookies_answered.check(nanos(elapsed)).is_err() {
            return true;
        }
        let advert = self.signed_advert(AdvertKind::Hello);
        let bytes = Datagram::ProvenAdvert {
            cookie,
            advert: &advert,
        }
        .encode();
        self.transmits.push_back(Transmit { to: from, bytes });
        // A handshake to the cookie's sender was answered with it: start it
        // again right behind the advert rather than at the next retry.
        let waiting = self
            .sessions
            .iter()
            .filter(|(_, state)| state.handshake.is_some())
            .map(|(id, _)| *id)
            .find(|id| {
                self.peers
                    .get(id)
                    .is_some_and(|peer| peer.info.addr == from)
            });
        if let Some((peer, ours)) =
            waiting.and_then(|peer| Some((peer, self.take_handshake(&peer)?)))
        {
            self.initiate(peer, ours.pending, ours.attempts, now);
        }
        true
    }

    /// An advert that brought back the cookie issued to its address: the
    /// node receives there, so it may join.
    fn on_proven_advert(
        &mut self,
        from: SocketAddr,
        cookie: &[u8; 16],
        bytes: &[u8],
        now: Instant,
    ) -> bool {
        let Ok(advert) = Advert::verify(bytes) else {
            return false;
        };
        let elapsed = now.saturating_duration_since(self.origin);
        if !self.cookies.check(elapsed, from.ip(), &advert.node, cookie) {
            return false;
        }
        self.apply_advert(&advert, from, now);
        true
    }

    fn apply_advert(&mut self, advert: &Advert, from: SocketAddr, now: Instant) {
        match self.peers.apply(advert, from, now) {
            Update::Joined => {
                if let Some(peer) = self.peers.get(&advert.node) {
                    self.events
                        .push_back(NodeEvent::PeerJoined(peer.info.clone()));
                }
            }
            Update::Refreshed { restarted: true } => {
                // Its sessions died with it; keep `last_init` so that its old
                // handshakes cannot be replayed.
                self.remove_sessions(&advert.node);
            }
            Update::Left(peer) => {
                self.forget(&peer.id);
                self.events.push_back(NodeEvent::PeerLeft {
                    peer,
                    reason: LeaveReason::Goodbye,
                });
            }
            Update::Refreshed { restarted: false } | Update::Ignored => {}
        }
    }

    fn initiate(&mut self, peer: NodeId, pending: VecDeque<Bytes>, attempts: u32, now: Instant) {
        let Some(known) = self.peers.get(&peer) else {
            return;
        };
        let (addr, remote_key) = (known.info.addr, known.noise_key);
        let Ok(mut handshake) = noise_builder()
            .local_private_key(self.identity.noise_private())
            .and_then(|b| b.remote_public_key(&remote_key))
            .and_then(|b| b.prologue(PROLOGUE))
            .and_then(snow::Builder::build_initiator)
        else {
            return;
        };
        // The payload (encrypted to the responder) proves who we are: our
        // signed advert binds our Ed25519 name to the static key Noise checks.
        self.handshake_stamp += 1;
        let mut payload = BytesMut::from(&self.signed_advert(AdvertKind::Hello)[..]);
        payload.put_u64(self.config.incarnation);
        payload.put_u64(self.handshake_stamp);
        let mut message = vec![0u8; NOISE_MAX];
        let Ok(len) = handshake.write_message(&payload, &mut message) else {
            return;
        };
        let local_index = self.new_index(peer);
        let bytes = Datagram::Init {
            sender: local_index,
            noise: &message[..len],
        }
        .encode();
        self.transmits.push_back(Transmit { to: addr, bytes });
        if let Some(old) = self.take_handshake(&peer) {
            tracing::debug!(peer = %peer.short(), attempts = old.attempts, "handshake restarted");
        }
        self.sessions.entry(peer).or_default().handshake = Some(Initiating {
            handshake: Box::new(handshake),
            local_index,
            sent_at: now,
            attempts,
            pending,
        });
    }

    fn on_init(&mut self, from: SocketAddr, sender: u32, noise: &[u8], now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.origin);
        if self.handshakes.check(nanos(elapsed)).is_err() {
            self.stats.handshakes_shed += 1;
            return true;
        }
        let Ok(mut handshake) = noise_builder()
            .local_private_key(self.identity.noise_private())
            .and_then(|b| b.prologue(PROLOGUE))
            .and_then(snow::Builder::build_responder)
        else {
            return false;
        };
        let mut payload = vec![0u8; NOISE_MAX];
        let Ok(len) = handshake.read_message(noise, &mut payload) else {
            return false;
        };
        let Some((advert_bytes, stamp)) = payload[..len].split_last_chunk::<16>() else {
            return false;
        };
        let Ok(advert) = Advert::verify(advert_bytes) else {
            return false;
        };
        if advert.kind != AdvertKind::Hello
            || handshake.get_remote_static() != Some(&advert.noise_key[..])
        {
            return false;
        }
        let stamp = (
            u64::from_be_bytes(stamp[..8].try_into().unwrap_or_default()),
            u64::from_be_bytes(stamp[8..].try_into().unwrap_or_default()),
        );
        let peer = advert.node;
        if self.last_init.get(&peer).is_some_and(|last| stamp <= *last) {
            return false;
        }
        if self.is_newcomer(&peer) {
            // No session before it has shown its address; its retry will find it known.
            self.send_cookie(from, &advert, now);
            return true;
        }
        self.apply_advert(&advert, from, now);
        let Some(addr) = self.peers.get(&peer).map(|p| p.info.addr) else {
            return false; // A full table: no room for a session either.
        };
        // Both sides initiated at once: the side with the smaller static key
        // keeps its own handshake; the other answers and gives up its own.
        let ours = self
            .sessions
            .get(&peer)
            .and_then(|state| state.handshake.as_ref());
        if ours.is_some() && self.identity.noise_public() < advert.noise_key {
            return true;
        }
        let pending = self
            .take_handshake(&peer)
            .map(|ours| ours.pending)
            .unwrap_or_default();
        let mut message = vec![0u8; NOISE_MAX];
        let Ok(len) = handshake.write_message(&[], &mut message) else {
            return false;
        };
        let Ok(transport) = handshake.into_stateless_transport_mode() else {
            return false;
        };
        self.last_init.insert(peer, stamp);
        let local_index = self.new_index(peer);
        self.transmits.push_back(Transmit {
            to: addr,
            bytes: Datagram::Response {
                receiver: sender,
                sender: local_index,
                noise: &message[..len],
            }
            .encode(),
        });
        self.establish(peer, transport, local_index, sender, pending, now);
        true
    }

    fn on_response(&mut self, receiver: u32, sender: u32, noise: &[u8], now: Instant) -> bool {
        let Some(peer) = self.indices.get(&receiver).copied() else {
            return false;
        };
        let Some(state) = self.sessions.get_mut(&peer) else {
            return false;
        };
        let Some(ours) = state
            .handshake
            .as_mut()
            .filter(|h| h.local_index == receiver)
        else {
            return false;
        };
        let mut payload = vec![0u8; NOISE_MAX];
        if ours.handshake.read_message(noise, &mut payload).is_err() {
            return false;
        }
        let Some(ours) = state.handshake.take() else {
            return false;
        };
        let Ok(transport) = ours.handshake.into_stateless_transport_mode() else {
            self.indices.remove(&ours.local_index);
            return false;
        };
        // The responder already addresses us by the index we sent in INIT.
        self.establish(peer, transport, ours.local_index, sender, ours.pending, now);
        true
    }

    /// Installs new keys for `peer`; the current ones become the previous.
    fn establish(
        &mut self,
        peer: NodeId,
        transport: StatelessTransportState,
        local_index: u32,
        remote_index: u32,
        pending: VecDeque<Bytes>,
        now: Instant,
    ) {
        self.stats.sessions += 1;
        let state = self.sessions.entry(peer).or_default();
        let fresh = Established::new(transport, local_index, remote_index, now);
        let replaced = state.current.replace(fresh);
        if let Some(retired) = std::mem::replace(&mut state.previous, replaced) {
            self.indices.remove(&retired.local_index);
        }
        for payload in pending {
            // Sizes were checked when queued; the session exists now.
            let _ = self.send(peer, payload, now);
        }
    }

    fn on_data(&mut self, receiver: u32, counter: u64, ciphertext: &[u8], now: Instant) -> bool {
        let Some(peer) = self.indices.get(&receiver).copied() else {
            return false;
        };
        let Some(session) = self
            .sessions
            .get_mut(&peer)
            .and_then(|state| state.by_index(receiver))
        else {
            return false;
        };
        let plaintext = match session.open(counter, ciphertext) {
            Ok(plaintext) => plaintext,
            Err(OpenError::Forged) => return false,
            Err(OpenError::Replayed) => {
                self.stats.replayed += 1;
                return true;
            }
        };
        self.peers.touch(&peer, now);
        self.events.push_back(NodeEvent::Message {
            from: peer,
            payload: plaintext.into(),
        });
        true
    }

    fn new_index(&mut self, peer: NodeId) -> u32 {
        loop {
            let index = rand::random::<u32>();
            if let std::collections::hash_map::Entry::Vacant(slot) = self.indices.entry(index) {
                slot.insert(peer);
                return index;
            }
        }
    }

    /// Drops all of a peer's sessions and their indices.
    fn remove_sessions(&mut self, peer: &NodeId) {
        if let Some(state) = self.sessions.remove(peer) {
            for index in state.indices() {
                self.indices.remove(&index);
            }
        }
    }

    /// Takes the peer's handshake under way, if any, and frees its index.
    fn take_handshake(&mut self, peer: &NodeId) -> Option<Initiating> {
        let state = self.sessions.get_mut(peer)?;
        let handshake = state.handshake.take()?;
        if state.is_empty() {
            self.sessions.remove(peer);
        }
        self.indices.remove(&handshake.local_index);
        Some(handshake)
    }

    /// Drops everything about a peer that left or restarted.
    fn forget(&mut self, peer: &NodeId) {
        self.remove_sessions(peer);
        self.last_init.remove(peer);
    }
}

/// A duration in nanoseconds, as the limiters count.
fn nanos(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
