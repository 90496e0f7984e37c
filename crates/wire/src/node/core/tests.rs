use super::*;

struct Net {
    nodes: Vec<(SocketAddr, NodeCore)>,
    now: Instant,
    /// Every datagram that went over the "wire", for replay tests.
    seen: Vec<Transmit>,
}

fn config(port: u16, seeds: Vec<SocketAddr>) -> CoreConfig {
    CoreConfig::with_test_timings(format!("node{port}"), port, seeds)
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Net {
    /// `count` nodes on ports 1001.., each seeded with all the others.
    fn new(count: u16) -> Self {
        let ports: Vec<u16> = (1001..1001 + count).collect();
        let nodes = ports
            .iter()
            .map(|&port| {
                let seeds = ports
                    .iter()
                    .filter(|&&p| p != port)
                    .map(|&p| addr(p))
                    .collect();
                (
                    addr(port),
                    NodeCore::new(NodeIdentity::generate(), config(port, seeds)),
                )
            })
            .collect();
        Self {
            nodes,
            now: Instant::now(),
            seen: Vec::new(),
        }
    }

    fn node(&mut self, i: usize) -> &mut NodeCore {
        &mut self.nodes[i].1
    }

    fn id(&self, i: usize) -> NodeId {
        self.nodes[i].1.id()
    }

    /// Delivers datagrams until none are left; those to unknown addresses are lost.
    fn run(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                let from = self.nodes[i].0;
                while let Some(transmit) = self.nodes[i].1.poll_transmit() {
                    moved = true;
                    self.seen.push(transmit.clone());
                    self.deliver(from, &transmit);
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn deliver(&mut self, from: SocketAddr, transmit: &Transmit) {
        let now = self.now;
        if let Some((_, node)) = self.nodes.iter_mut().find(|(a, _)| *a == transmit.to) {
            node.handle(from, &transmit.bytes, now);
        }
    }

    fn events(&mut self, i: usize) -> Vec<NodeEvent> {
        std::iter::from_fn(|| self.node(i).poll_event()).collect()
    }

    fn messages(&mut self, i: usize) -> Vec<(NodeId, Bytes)> {
        self.events(i)
            .into_iter()
            .filter_map(|event| match event {
                NodeEvent::Message { from, payload } => Some((from, payload)),
                _ => None,
            })
            .collect()
    }

    fn discover(&mut self) {
        for i in 0..self.nodes.len() {
            self.node(i).advertise();
        }
        self.run();
    }
}

#[test]
fn nodes_discover_each_other_and_exchange_sealed_messages() {
    let mut net = Net::new(2);
    net.discover();
    let joined = net.events(0);
    assert!(
        matches!(&joined[..], [NodeEvent::PeerJoined(p)] if p.id == net.id(1) && p.name == "node1002")
    );
    net.events(1);
    let (a, b, now) = (net.id(0), net.id(1), net.now);
    net.node(0)
        .send(b, Bytes::from_static(b"hello b"), now)
        .unwrap();
    net.node(0)
        .send(b, Bytes::from_static(b"and again"), now)
        .unwrap();
    net.run();
    assert_eq!(
        net.messages(1),
        [
            (a, Bytes::from_static(b"hello b")),
            (a, Bytes::from_static(b"and again"))
        ]
    );
    // The responder can answer on the session at once.
    net.node(1)
        .send(a, Bytes::from_static(b"hello a"), now)
        .unwrap();
    net.run();
    assert_eq!(net.messages(0), [(b, Bytes::from_static(b"hello a"))]);
    assert_eq!(net.node(0).stats().sessions, 1);
    assert_eq!(net.node(1).stats().sessions, 1);
    // Nothing on the wire shows the plaintext.
    assert!(net
        .seen
        .iter()
        .all(|t| !t.bytes.windows(7).any(|w| w == b"hello b")));
}

#[test]
fn replayed_tampered_and_foreign_datagrams_are_refused() {
    let mut net = Net::new(2);
    net.discover();
    let (b, now) = (net.id(1), net.now);
    net.node(0)
        .send(b, Bytes::from_static(b"once"), now)
        .unwrap();
    net.run();
    assert_eq!(net.messages(1).len(), 1);
    let data = net.seen.last().unwrap().clone();
    let init = net
        .seen
        .iter()
        .find(|t| matches!(Datagram::parse(&t.bytes), Some(Datagram::Init { .. })))
        .unwrap()
        .clone();

    net.deliver(addr(1001), &data);
    assert_eq!(net.messages(1).len(), 0, "replayed data");
    assert_eq!(net.node(1).stats().replayed, 1);

    let mut tampered = data.bytes.to_vec();
    *tampered.last_mut().unwrap() ^= 1;
    let before = net.node(1).stats().dropped;
    net.node(1).handle(addr(1001), &tampered, now);
    net.node(1).handle(addr(1001), b"TN\x01\x04garbage", now);
    net.node(1).handle(addr(1001), b"not ours at all", now);
    assert_eq!(net.node(1).stats().dropped, before + 3);

    // A replayed handshake does not replace the live session.
    net.deliver(addr(1001), &init);
    net.run();
    net.node(0)
        .send(b, Bytes::from_static(b"still here"), now)
        .unwrap();
    net.run();
    assert_eq!(net.messages(1).len(), 1);
}

#[test]
fn a_stolen_advert_does_not_let_another_key_speak_for_a_node() {
    let mut net = Net::new(2);
    net.discover();
    let advert_of_a = net
        .seen
        .iter()
        .find_map(|t| match Datagram::parse(&t.bytes) {
            Some(Datagram::Advert(advert)) if Advert::verify(advert).unwrap().node == net.id(0) => {
                Some(advert.to_vec())
            }
            _ => None,
        })
        .unwrap();
    // Mallory runs a handshake to B with her own static key but A's advert.
    let mallory = NodeIdentity::generate();
    let b_key = net.node(1).identity.noise_public();
    let mut handshake = noise_builder()
        .local_private_key(mallory.noise_private())
        .and_then(|b| b.remote_public_key(&b_key))
        .and_then(|b| b.prologue(PROLOGUE))
        .and_then(snow::Builder::build_initiator)
        .unwrap();
    let mut payload = advert_of_a;
    payload.extend_from_slice(&[0xff; 16]);
    let mut message = vec![0u8; NOISE_MAX];
    let len = handshake.write_message(&payload, &mut message).unwrap();
    let init = Datagram::Init {
        sender: 1,
        noise: &message[..len],
    }
    .encode();
    let (before, now) = (net.node(1).stats(), net.now);
    net.node(1).handle(addr(6666), &init, now);
    assert_eq!(net.node(1).stats().dropped, before.dropped + 1);
    assert_eq!(net.node(1).poll_transmit(), None, "no response to Mallory");
}

#[test]
fn simultaneous_handshakes_settle_on_one_session_and_lose_nothing() {
    let mut net = Net::new(2);
    net.discover();
    let (a, b, now) = (net.id(0), net.id(1), net.now);
    net.node(0)
        .send(b, Bytes::from_static(b"from a"), now)
        .unwrap();
    net.node(1)
        .send(a, Bytes::from_static(b"from b"), now)
        .unwrap();
    net.run();
    assert_eq!(net.messages(1), [(a, Bytes::from_static(b"from a"))]);
    assert_eq!(net.messages(0), [(b, Bytes::from_static(b"from b"))]);
    net.node(0)
        .send(b, Bytes::from_static(b"after"), now)
        .unwrap();
    net.run();
    assert_eq!(net.messages(1), [(a, Bytes::from_static(b"after"))]);
}

#[test]
fn goodbye_and_timeout_remove_peers() {
    let mut net = Net::new(3);
    net.discover();
    for i in 0..3 {
        net.events(i);
    }
    let (a, now) = (net.id(0), net.now);
    net.node(0).goodbye();
    net.run();
    for i in 1..3 {
        assert!(matches!(&net.events(i)[..],
            [NodeEvent::PeerLeft { peer, reason: LeaveReason::Goodbye }] if peer.id == a));
    }
    // A replayed hello from before the goodbye does not bring A back... until
    // A advertises anew.
    assert_eq!(net.node(1).peers().len(), 1);
    assert_eq!(
        net.node(1).send(a, Bytes::new(), now),
        Err(SendError::UnknownPeer)
    );

    // Node 2 goes silent; node 1 keeps hearing from... nobody, so after the
    // timeout it drops node 2 too.
    net.now += Duration::from_secs(6);
    let later = net.now;
    net.node(1).tick(later);
    assert!(matches!(
        &net.events(1)[..],
        [NodeEvent::PeerLeft {
            reason: LeaveReason::Timeout,
            ..
        }]
    ));
    assert!(net.node(1).peers().is_empty());
}

#[test]
fn an_unanswered_handshake_is_retried_then_abandoned() {
    let mut net = Net::new(2);
    net.discover();
    let (b, now) = (net.id(1), net.now);
    net.nodes[1].0 = addr(9); // B moved away without a word.
    net.node(0)
        .send(b, Bytes::from_static(b"lost"), now)
        .unwrap();
    for step in 1..=4 {
        net.run();
        let at = now + Duration::from_millis(500 * step);
        net.node(0).tick(at);
    }
    let inits = net
        .seen
        .iter()
        .filter(|t| matches!(Datagram::parse(&t.bytes), Some(Datagram::Init { .. })))
        .count();
    assert_eq!(inits, 3);
    assert_eq!(net.node(0).stats().handshakes_failed, 1);
    assert_eq!(
        net.node(0)
            .send(b, Bytes::from(vec![0; MAX_PAYLOAD + 1]), now),
        Err(SendError::TooLarge(MAX_PAYLOAD + 1))
    );
}

#[test]
fn a_restarted_peer_gets_a_new_session() {
    let mut net = Net::new(2);
    net.discover();
    let (b, now) = (net.id(1), net.now);
    net.node(0)
        .send(b, Bytes::from_static(b"one"), now)
        .unwrap();
    net.run();
    assert_eq!(net.messages(1).len(), 1);
    // B restarts with the same keys: a later incarnation, no sessions.
    let identity = net.node(1).identity.clone();
    let mut restarted = config(1002, vec![addr(1001)]);
    restarted.incarnation = 2;
    net.nodes[1].1 = NodeCore::new(identity, restarted);
    net.node(1).advertise();
    net.run();
    net.node(0)
        .send(b, Bytes::from_static(b"two"), now)
        .unwrap();
    net.run();
    let got: Vec<Bytes> = net.messages(1).into_iter().map(|(_, p)| p).collect();
    assert_eq!(got, [Bytes::from_static(b"two")]);
}

mod hostile {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Anything after a valid header, of any kind, is dropped, never a panic.
        #[test]
        fn arbitrary_datagrams_are_dropped(kind in 0u8..6, body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut net = Net::new(2);
            net.discover();
            let mut datagram = vec![b'T', b'N', 1, kind];
            datagram.extend_from_slice(&body);
            net.events(1);
            let (now, before) = (net.now, net.node(1).stats().dropped);
            net.node(1).handle(addr(1001), &datagram, now);
            prop_assert!(net.events(1).is_empty());
            prop_assert_eq!(net.node(1).stats().dropped, before + 1);
        }
    }
}

#[test]
fn a_flood_of_handshakes_is_shed_beyond_the_rate() {
    let mut net = Net::new(2);
    net.discover();
    let (b, now) = (net.id(1), net.now);
    net.node(0).send(b, Bytes::from_static(b"x"), now).unwrap();
    let init = net.node(0).poll_transmit().unwrap();
    // Copies of one INIT: the first is answered, the replays refused, and
    // past the budget they are not even decrypted.
    for _ in 0..150 {
        net.node(1).handle(addr(1001), &init.bytes, now);
    }
    let stats = net.node(1).stats();
    assert_eq!(stats.sessions, 1);
    assert_eq!(stats.handshakes_shed, 50);
    // The budget refills with time.
    let later = now + Duration::from_secs(1);
    net.node(1).handle(addr(1001), &init.bytes, later);
    assert_eq!(net.node(1).stats().handshakes_shed, 50);
}

fn kind_of(transmit: &Transmit) -> &'static str {
    match Datagram::parse(&transmit.bytes) {
        Some(Datagram::Advert(_)) => "advert",
        Some(Datagram::Init { .. }) => "init",
        Some(Datagram::Response { .. }) => "response",
        Some(Datagram::Data { .. }) => "data",
        Some(Datagram::Cookie { .. }) => "cookie",
        Some(Datagram::ProvenAdvert { .. }) => "proven advert",
        None => "?",
    }
}

impl Net {
    /// Takes node `i`'s outgoing datagrams without delivering them.
    fn take(&mut self, i: usize) -> Vec<Transmit> {
        std::iter::from_fn(|| self.node(i).poll_transmit()).collect()
    }
}

#[test]
fn sessions_are_rekeyed_and_old_keys_fade_out() {
    let mut net = Net::new(2);
    net.discover();
    let (b, t0) = (net.id(1), net.now);
    net.node(0).send(b, Bytes::from_static(b"one"), t0).unwrap();
    net.run();
    assert_eq!(net.messages(1).len(), 1);

    // Two periods later A sends twice: on the old keys, and a rekey starts.
    let t1 = t0 + Duration::from_secs(121);
    net.now = t1;
    net.node(0)
        .send(b, Bytes::from_static(b"held 1"), t1)
        .unwrap();
    net.node(0)
        .send(b, Bytes::from_static(b"held 2"), t1)
        .unwrap();
    let out = net.take(0);
    assert_eq!(
        out.iter().map(kind_of).collect::<Vec<_>>(),
        ["data", "init", "data"]
    );
    net.deliver(addr(1001), &out[1]);
    net.run();
    assert_eq!(net.node(0).stats().sessions, 2);
    assert_eq!(net.node(1).stats().sessions, 2);

    // The new keys carry new messages; a datagram in flight on the old ones
    // is still accepted.
    net.node(0).send(b, Bytes::from_static(b"new"), t1).unwrap();
    net.run();
    net.deliver(addr(1001), &out[0]);
    let got: Vec<Bytes> = net.messages(1).into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        got,
        [Bytes::from_static(b"new"), Bytes::from_static(b"held 1")]
    );

    // A period after the rekey the old keys are gone.
    let t2 = t1 + Duration::from_secs(120);
    net.node(1).tick(t2);
    let before = net.node(1).stats().dropped;
    net.now = t2;
    net.deliver(addr(1001), &out[2]);
    assert!(net.messages(1).is_empty());
    assert_eq!(net.node(1).stats().dropped, before + 1);
}

#[test]
fn a_session_whose_rekeys_all_failed_is_not_used() {
    let mut net = Net::new(2);
    net.discover();
    let (b, t0) = (net.id(1), net.now);
    net.node(0).send(b, Bytes::from_static(b"one"), t0).unwrap();
    net.run();
    // Three periods on, the old keys are not used: the payload waits for a
    // new handshake, and arrives under the new keys.
    let late = t0 + Duration::from_secs(361);
    net.now = late;
    net.node(0)
        .send(b, Bytes::from_static(b"late"), late)
        .unwrap();
    let out = net.take(0);
    assert_eq!(out.iter().map(kind_of).collect::<Vec<_>>(), ["init"]);
    net.deliver(addr(1001), &out[0]);
    net.run();
    let got: Vec<Bytes> = net.messages(1).into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        got,
        [Bytes::from_static(b"one"), Bytes::from_static(b"late")]
    );
}

/// A fresh signed advert from `forged`, advertising port 9.
fn forged_hello(forged: &NodeIdentity, i: usize) -> Bytes {
    let advert = Advert {
        kind: AdvertKind::Hello,
        node: forged.id(),
        noise_key: forged.noise_public(),
        incarnation: 1,
        sequence: 1,
        port: 9,
        name: format!("forged{i}"),
    }
    .sign(forged);
    Datagram::Advert(&advert).encode()
}

/// 1,000 fresh identities from 1,000 spoofed source addresses used to fill
/// the peer table (the per-address share does not help against many
/// addresses). Now a newcomer joins only after bringing back a cookie sent
/// to its address: none of the forged ones does, the real peer does.
#[test]
fn regression_a_real_peer_is_discovered_while_a_thousand_forged_identities_arrive() {
    let mut net = Net::new(2);
    let now = net.now;
    for i in 0..1_000 {
        let spoofed = SocketAddr::from(([10, 66, (i / 250) as u8, (i % 250) as u8 + 1], 9));
        let hello = forged_hello(&NodeIdentity::generate(), i);
        net.node(0).handle(spoofed, &hello, now);
    }
    let cookies: Vec<Transmit> = std::iter::from_fn(|| net.node(0).poll_transmit()).collect();
    assert_eq!(cookies.len(), 1_000);
    for cookie in &cookies {
        assert_eq!(kind_of(cookie), "cookie");
        assert!(cookie.bytes.len() < 64, "a cookie amplifies nothing");
    }
    assert!(net.events(0).is_empty(), "a forged identity joined");
    assert_eq!(net.node(0).stats().cookies_sent, 1_000);
    net.discover();
    let real = net.id(1);
    assert!(net
        .events(0)
        .iter()
        .any(|event| matches!(event, NodeEvent::PeerJoined(peer) if peer.id == real)));
}

/// A flooder that does receive at its one address answers its cookies, so
/// its identities do join, but only the address's share of the table.
#[test]
fn a_flood_that_answers_its_cookies_gets_only_its_addresses_share() {
    let mut flooded = config(1001, vec![]);
    flooded.max_peers_per_source = 4;
    let mut node = NodeCore::new(NodeIdentity::generate(), flooded);
    let flooder = SocketAddr::from(([127, 0, 0, 66], 9));
    let start = Instant::now();
    let mut now = start;
    for i in 0..100 {
        // Cookies to one address are rate limited: this flooder keeps within the rate.
        now = start + Duration::from_millis(100 * i as u64);
        let forged = NodeIdentity::generate();
        node.handle(flooder, &forged_hello(&forged, i), now);
        let transmit = node.poll_transmit().expect("a cookie");
        let Some(Datagram::Cookie { cookie, .. }) = Datagram::parse(&transmit.bytes) else {
            panic!("expected a cookie, got {}", kind_of(&transmit));
        };
        let advert = Advert {
            kind: AdvertKind::Hello,
            node: forged.id(),
            noise_key: forged.noise_public(),
            incarnation: 1,
            sequence: 2,
            port: 9,
            name: format!("forged{i}"),
        }
        .sign(&forged);
        let proven = Datagram::ProvenAdvert {
            cookie,
            advert: &advert,
        };
        node.handle(flooder, &proven.encode(), now);
    }
    let joined = std::iter::from_fn(|| node.poll_event()).count();
    assert_eq!(joined, 4, "the flood holds only its address's share");
    // A cookie is bound to its address: brought back from another, it is refused.
    let stranger = NodeIdentity::generate();
    node.handle(flooder, &forged_hello(&stranger, 0), now);
    let transmit = node.poll_transmit().expect("a cookie");
    let Some(Datagram::Cookie { cookie, .. }) = Datagram::parse(&transmit.bytes) else {
        panic!("expected a cookie");
    };
    let advert = Advert {
        kind: AdvertKind::Hello,
        node: stranger.id(),
        noise_key: stranger.noise_public(),
        incarnation: 1,
        sequence: 2,
        port: 9,
        name: "stranger".into(),
    }
    .sign(&stranger);
    let elsewhere = SocketAddr::from(([127, 0, 0, 77], 9));
    let dropped = node.stats().dropped;
    node.handle(
        elsewhere,
        &Datagram::ProvenAdvert {
            cookie,
            advert: &advert,
        }
        .encode(),
        now,
    );
    assert_eq!(node.stats().dropped, dropped + 1);
    assert!(node.poll_event().is_none());
}

/// Cookies to one address are rate limited (a spoofed victim gets at most
/// ten a second, each smaller than the advert that asked for it).
#[test]
fn cookies_to_one_address_are_rate_limited() {
    let mut node = NodeCore::new(NodeIdentity::generate(), config(1001, vec![]));
    let victim = SocketAddr::from(([192, 0, 2, 9], 9));
    let now = Instant::now();
    for i in 0..50 {
        node.handle(victim, &forged_hello(&NodeIdentity::generate(), i), now);
    }
    assert_eq!(node.stats().cookies_sent, u64::from(COOKIES_PER_ADDRESS));
}
