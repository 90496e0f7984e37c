//! The peer table: who was heard from, where, and when. Bounded; a peer not
//! heard from within the timeout is dropped, as is one that says goodbye.
//!
//! Identities cost nothing to make, so a flood of fresh signed ones could
//! fill the table and keep real nodes out. Each source address therefore
//! holds at most `per_source` entries: a flood from one address takes only
//! its own share. Known peers are never evicted for newcomers; a newcomer
//! that finds the table (or its address's share) full is ignored until a
//! slot frees. A flood from many spoofed source addresses never reaches the
//! table: a newcomer is applied here only once it brought back a cookie
//! sent to its address (`cookie.rs`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::advert::{Advert, AdvertKind};
use super::identity::NodeId;

/// A known peer, as reported to the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its Ed25519 name.
    pub id: NodeId,
    /// The name it gave itself (unauthenticated by anyone but itself), with
    /// control and format characters shown as U+FFFD ([`super::display_safe`]).
    pub name: String,
    /// Where its node socket is.
    pub addr: SocketAddr,
}

#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) info: PeerInfo,
    pub(crate) noise_key: [u8; 32],
    version: (u64, u64),
    incarnation: u64,
    last_seen: Instant,
}

/// What an advert changed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Update {
    /// A node we did not know.
    Joined,
    /// A known node advertised again; `restarted` if it is a new incarnation
    /// (its old sessions are gone).
    Refreshed { restarted: bool },
    /// A known node said goodbye.
    Left(PeerInfo),
    /// Ignored: our own advert, an old or replayed one, an unknown node's
    /// goodbye, or a full table (or a full share for its source address).
    Ignored,
}

#[derive(Debug)]
pub(crate) struct PeerTable {
    me: NodeId,
    peers: HashMap<NodeId, Peer>,
    capacity: usize,
    per_source: usize,
    timeout: Duration,
}

impl PeerTable {
    pub(crate) fn new(me: NodeId, capacity: usize, per_source: usize, timeout: Duration) -> Self {
        Self {
            me,
            peers: HashMap::new(),
            capacity,
            per_source,
            timeout,
        }
    }

    /// Applies a verified advert received from `source` (whose port is replaced
    /// by the advertised one: adverts may come from the discovery socket).
    pub(crate) fn apply(&mut self, advert: &Advert, source: SocketAddr, now: Instant) -> Update {
        if advert.node == self.me {
            return Update::Ignored;
        }
        let mut addr = source;
        addr.set_port(advert.port);
        // Counted only for a newcomer: a known node's advert never pays for it.
        let full = !self.peers.contains_key(&advert.node)
            && (self.peers.len() >= self.capacity
                || from_source(&self.peers, source.ip()) >= self.per_source);
        match (self.peers.get_mut(&advert.node), advert.kind) {
            (Some(peer), _) if advert.version() <= peer.version => Update::Ignored,
            (Some(_), AdvertKind::Goodbye) => match self.peers.remove(&advert.node) {
                Some(peer) => Update::Left(peer.info),
                None => Update::Ignored,
            },
            (Some(peer), AdvertKind::Hello) => {
                let restarted = advert.incarnation != peer.incarnation;
                peer.version = advert.version();
                peer.incarnation = advert.incarnation;
                peer.last_seen = now;
                peer.noise_key = advert.noise_key;
                peer.info.addr = addr;
                peer.info.name.clone_from(&advert.name);
                Update::Refreshed { restarted }
            }
            (None, AdvertKind::Goodbye) => Update::Ignored,
            (None, AdvertKind::Hello) if full => Update::Ignored,
            (None, AdvertKind::Hello) => {
                self.peers.insert(
                    advert.node,
                    Peer {
                        info: PeerInfo {
                            id: advert.node,
                            name: advert.name.clone(),
                            addr,
                        },
                        noise_key: advert.noise_key,
                        version: advert.version(),
                        incarnation: advert.incarnation,
                        last_seen: now,
                    },
                );
                Update::Joined
            }
        }
    }

    /// Any authenticated traffic from a peer also shows it is alive.
    pub(crate) fn touch(&mut self, id: &NodeId, now: Instant) {
        if let Some(peer) = self.peers.get_mut(id) {
            peer.last_seen = now;
        }
    }

    /// Drops and returns the peers silent for longer than the timeout.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<PeerInfo> {
        let timeout = self.timeout;
        let expired: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, peer)| now.saturating_duration_since(peer.last_seen) > timeout)
            .map(|(id, _)| *id)
            .collect();
        expired
            .iter()
            .filter_map(|id| self.peers.remove(id))
            .map(|peer| peer.info)
            .collect()
    }

    pub(crate) fn get(&self, id: &NodeId) -> Option<&Peer> {
        self.peers.get(id)
    }

    pub(crate) fn addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.peers.values().map(|peer| peer.info.addr)
    }

    pub(crate) fn ids(&self) -> impl Iterator<Item = &NodeId> {
        self.peers.keys()
    }

    pub(crate) fn infos(&self) -> Vec<PeerInfo> {
        let mut infos: Vec<PeerInfo> = self.peers.values().map(|p| p.info.clone()).collect();
        infos.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        infos
    }
}

/// How many peers sit at `ip`.
fn from_source(peers: &HashMap<NodeId, Peer>, ip: IpAddr) -> usize {
    peers
        .values()
        .filter(|peer| peer.info.addr.ip() == ip)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::identity::NodeIdentity;

    fn advert(identity: &NodeIdentity, kind: AdvertKind, version: (u64, u64)) -> Advert {
        Advert {
            kind,
            node: identity.id(),
            noise_key: identity.noise_public(),
            incarnation: version.0,
            sequence: version.1,
            port: 9000,
            name: "peer".into(),
        }
    }

    #[test]
    fn join_refresh_replay_goodbye_and_timeout() {
        let me = NodeIdentity::generate();
        let peer = NodeIdentity::generate();
        let source: SocketAddr = "[::1]:5555".parse().unwrap();
        let t0 = Instant::now();
        let mut table = PeerTable::new(me.id(), 8, 8, Duration::from_secs(5));
        let hello = |v| advert(&peer, AdvertKind::Hello, v);
        assert_eq!(
            table.apply(&advert(&me, AdvertKind::Hello, (1, 1)), source, t0),
            Update::Ignored
        );
        assert_eq!(table.apply(&hello((1, 1)), source, t0), Update::Joined);
        assert_eq!(table.get(&peer.id()).unwrap().info.addr.port(), 9000);
        assert_eq!(
            table.apply(&hello((1, 1)), source, t0),
            Update::Ignored,
            "replay"
        );
        assert_eq!(
            table.apply(&hello((1, 2)), source, t0),
            Update::Refreshed { restarted: false }
        );
        assert_eq!(
            table.apply(&hello((2, 0)), source, t0),
            Update::Refreshed { restarted: true }
        );
        let old_goodbye = advert(&peer, AdvertKind::Goodbye, (1, 9));
        assert_eq!(table.apply(&old_goodbye, source, t0), Update::Ignored);
        let goodbye = advert(&peer, AdvertKind::Goodbye, (2, 1));
        assert!(
            matches!(table.apply(&goodbye, source, t0), Update::Left(info) if info.id == peer.id())
        );
        assert!(table.infos().is_empty());

        assert_eq!(table.apply(&hello((3, 0)), source, t0), Update::Joined);
        assert!(table.expire(t0 + Duration::from_secs(5)).is_empty());
        table.touch(&peer.id(), t0 + Duration::from_secs(4));
        assert!(table.expire(t0 + Duration::from_secs(9)).is_empty());
        let expired = table.expire(t0 + Duration::from_secs(10));
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].id, peer.id());
    }

    #[test]
    fn the_table_is_bounded() {
        let me = NodeIdentity::generate();
        let mut table = PeerTable::new(me.id(), 2, 2, Duration::from_secs(5));
        let source: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let now = Instant::now();
        let updates: Vec<Update> = (0..3)
            .map(|_| {
                let peer = NodeIdentity::generate();
                table.apply(&advert(&peer, AdvertKind::Hello, (1, 1)), source, now)
            })
            .collect();
        assert_eq!(updates, [Update::Joined, Update::Joined, Update::Ignored]);
    }

    #[test]
    fn regression_a_flood_of_identities_from_one_address_takes_only_its_share() {
        let me = NodeIdentity::generate();
        let mut table = PeerTable::new(me.id(), 16, 4, Duration::from_secs(5));
        let flooder: SocketAddr = "192.0.2.66:9".parse().unwrap();
        let now = Instant::now();
        let joined = (0..1_000)
            .filter(|_| {
                let forged = NodeIdentity::generate();
                table.apply(&advert(&forged, AdvertKind::Hello, (1, 1)), flooder, now)
                    == Update::Joined
            })
            .count();
        assert_eq!(joined, 4);
        let real = NodeIdentity::generate();
        let elsewhere: SocketAddr = "192.0.2.7:9".parse().unwrap();
        assert_eq!(
            table.apply(&advert(&real, AdvertKind::Hello, (1, 1)), elsewhere, now),
            Update::Joined
        );
        // A known peer at the flooded address still refreshes.
        let known = table
            .infos()
            .into_iter()
            .find(|info| info.addr.ip() == flooder.ip())
            .unwrap();
        assert!(table.get(&known.id).is_some());
    }
}
