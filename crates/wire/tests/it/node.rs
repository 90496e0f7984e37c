//! The UDP node end to end: real sockets on loopback, seeded discovery
//! (which needs no multicast), and multicast discovery on IPv4 and IPv6 in a
//! network namespace of its own (as root; skipped with a printed reason
//! otherwise).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::process::Command;
use std::time::Duration;

use tessera_wire::node::{
    Discovery, LeaveReason, Node, NodeConfig, NodeEvent, NodeEvents, NodeId, NodeIdentity,
};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

fn quick(name: &str) -> NodeConfig {
    NodeConfig {
        name: name.into(),
        discovery: Vec::new(),
        advert_interval: Duration::from_millis(100),
        peer_timeout: Duration::from_secs(1),
        ..NodeConfig::default()
    }
}

async fn start(config: NodeConfig) -> (Node, NodeEvents) {
    Node::start(NodeIdentity::generate(), config).await.unwrap()
}

/// Waits for the first event that `pick` accepts, skipping the others.
async fn wait_for<T>(events: &mut NodeEvents, mut pick: impl FnMut(NodeEvent) -> Option<T>) -> T {
    timeout(WAIT, async {
        loop {
            let event = events.recv().await.expect("node stopped");
            if let Some(found) = pick(event) {
                return found;
            }
        }
    })
    .await
    .expect("event in time")
}

/// Waits until every one of `ids` has joined, in any order.
async fn all_joined(events: &mut NodeEvents, ids: &[NodeId]) {
    let mut missing = ids.to_vec();
    wait_for(events, |e| {
        if let NodeEvent::PeerJoined(peer) = e {
            missing.retain(|id| *id != peer.id);
        }
        missing.is_empty().then_some(())
    })
    .await;
}

async fn message_from(events: &mut NodeEvents, id: NodeId) -> Vec<u8> {
    wait_for(events, |e| match e {
        NodeEvent::Message { from, payload } if from == id => Some(payload.to_vec()),
        _ => None,
    })
    .await
}

fn at(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

#[tokio::test]
async fn seeded_nodes_meet_over_ipv4_and_ipv6_and_talk_sealed() {
    let (hub, mut hub_events) = start(quick("hub")).await;
    let port = hub.local_addr().port();
    let v4 = NodeConfig {
        seeds: vec![at("127.0.0.1", port)],
        ..quick("v4")
    };
    let v6 = NodeConfig {
        seeds: vec![at("::1", port)],
        ..quick("v6")
    };
    let (four, mut four_events) = start(v4).await;
    let (six, mut six_events) = start(v6).await;
    all_joined(&mut hub_events, &[four.id(), six.id()]).await;
    all_joined(&mut four_events, &[hub.id()]).await;
    all_joined(&mut six_events, &[hub.id()]).await;

    four.send(hub.id(), &b"over IPv4"[..]).await.unwrap();
    assert_eq!(message_from(&mut hub_events, four.id()).await, b"over IPv4");
    six.send(hub.id(), &b"over IPv6"[..]).await.unwrap();
    assert_eq!(message_from(&mut hub_events, six.id()).await, b"over IPv6");
    assert_eq!(hub.broadcast(&b"to all"[..]).await.unwrap(), 2);
    assert_eq!(message_from(&mut four_events, hub.id()).await, b"to all");
    assert_eq!(message_from(&mut six_events, hub.id()).await, b"to all");

    let names: Vec<String> = hub.peers().await.into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["v4", "v6"]);
    let six_id = six.id();
    six.stop().await;
    let reason = wait_for(&mut hub_events, |e| match e {
        NodeEvent::PeerLeft { peer, reason } if peer.id == six_id => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, LeaveReason::Goodbye);
    // One session each way in (a retried handshake under load may add one).
    assert!(hub.stats().await.sessions >= 2);
}

#[test]
fn a_silent_peer_times_out() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (hub, mut hub_events) = runtime.block_on(start(quick("hub")));
    let seed = at("::1", hub.local_addr().port());
    // The peer runs on a runtime of its own; shutting that down stops it
    // without a goodbye, as a crash or a pulled cable would.
    let peer_runtime = tokio::runtime::Runtime::new().unwrap();
    let (peer, peer_events) = peer_runtime.block_on(start(NodeConfig {
        seeds: vec![seed],
        ..quick("silent")
    }));
    let peer_id = peer.id();
    runtime.block_on(all_joined(&mut hub_events, &[peer_id]));
    peer_runtime.shutdown_background();
    let reason = runtime.block_on(wait_for(&mut hub_events, |e| match e {
        NodeEvent::PeerLeft { peer, reason } if peer.id == peer_id => Some(reason),
        _ => None,
    }));
    assert_eq!(reason, LeaveReason::Timeout);
    drop((peer, peer_events));
}

#[tokio::test]
async fn a_group_that_cannot_be_joined_is_left_out_unless_it_is_all_there_is() {
    let unjoinable = Discovery::V6 {
        group: SocketAddrV6::new("ff12::7757".parse().unwrap(), 0, 0, 0),
        interface: 999_999,
    };
    let alone = NodeConfig {
        discovery: vec![unjoinable],
        ..quick("alone")
    };
    assert!(Node::start(NodeIdentity::generate(), alone).await.is_err());
    let seeded = NodeConfig {
        discovery: vec![unjoinable],
        seeds: vec![at("::1", 9)],
        ..quick("seeded")
    };
    let (node, _events) = start(seeded).await;
    assert!(node.discovery().is_empty());
}

/// Set when this binary runs inside the namespace made by the test below.
const IN_NETNS: &str = "TESSERA_NODE_TEST_IN_NETNS";

#[test]
fn multicast_discovery_on_ipv4_and_ipv6_in_a_network_namespace() {
    if std::env::var_os(IN_NETNS).is_some() {
        return tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(multicast_discovery());
    }
    let Some(namespace) = Namespace::create() else {
        return;
    };
    // The name as the test harness knows it inside this binary's `node` module.
    let output = Command::new("ip")
        .args(["netns", "exec", &namespace.0])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "node::multicast_discovery_on_ipv4_and_ipv6_in_a_network_namespace",
            "--nocapture",
        ])
        .env(IN_NETNS, "1")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "the test inside the namespace failed"
    );
    // A name that matches nothing passes with 0 tests: make sure it ran.
    assert!(
        report.contains("test result: ok. 1 passed"),
        "the test inside the namespace did not run"
    );
}

async fn multicast_discovery() {
    let tn0 = std::fs::read_to_string("/sys/class/net/tn0/ifindex").unwrap();
    let groups = [
        Discovery::V4 {
            group: SocketAddrV4::new(Ipv4Addr::new(239, 255, 77, 77), 7757),
            interface: Ipv4Addr::LOCALHOST,
        },
        Discovery::V6 {
            group: SocketAddrV6::new("ff12::7757".parse().unwrap(), 7757, 0, 0),
            interface: tn0.trim().parse().unwrap(),
        },
    ];
    for (label, discovery) in [
        ("IPv4", &groups[..1]),
        ("IPv6", &groups[1..]),
        ("both", &groups[..]),
    ] {
        println!("discovery over {label}");
        let config = |name: &str| NodeConfig {
            discovery: discovery.to_vec(),
            ..quick(name)
        };
        let (a, mut a_events) = start(config("a")).await;
        let (b, mut b_events) = start(config("b")).await;
        let (c, mut c_events) = start(config("c")).await;
        for (events, others) in [
            (&mut a_events, [b.id(), c.id()]),
            (&mut b_events, [a.id(), c.id()]),
            (&mut c_events, [a.id(), b.id()]),
        ] {
            all_joined(events, &others).await;
        }
        let families: Vec<bool> = a.peers().await.iter().map(|p| p.addr.is_ipv6()).collect();
        match label {
            "IPv4" => assert_eq!(families, [false, false]),
            "IPv6" => assert_eq!(families, [true, true]),
            _ => assert_eq!(families.len(), 2),
        }
        assert_eq!(a.broadcast(&b"hello link"[..]).await.unwrap(), 2);
        assert_eq!(message_from(&mut b_events, a.id()).await, b"hello link");
        assert_eq!(message_from(&mut c_events, a.id()).await, b"hello link");
        c.send(b.id(), &b"just you"[..]).await.unwrap();
        assert_eq!(message_from(&mut b_events, c.id()).await, b"just you");
        let c_id = c.id();
        c.stop().await;
        for events in [&mut a_events, &mut b_events] {
            let reason = wait_for(events, |e| match e {
                NodeEvent::PeerLeft { peer, reason } if peer.id == c_id => Some(reason),
                _ => None,
            })
            .await;
            assert_eq!(reason, LeaveReason::Goodbye);
        }
        a.stop().await;
        b.stop().await;
    }
}

/// A network namespace with loopback and a veth pair, up and multicast-capable;
/// deleted on drop.
struct Namespace(String);

impl Namespace {
    fn create() -> Option<Self> {
        if !running_as_root() {
            skip("multicast discovery needs a network namespace, which needs root");
            return None;
        }
        let name = format!("tessera-node-{}", std::process::id());
        if let Err(reason) = ip(&["netns", "add", &name]) {
            skip(&format!("cannot create a network namespace ({reason})"));
            return None;
        }
        let namespace = Self(name);
        // IPv4 multicast works on loopback; IPv6 multicast needs a real
        // link, so a veth pair, without duplicate address detection so its
        // link-local addresses are usable at once.
        let setup: [&[&str]; 7] = [
            &[
                "sh",
                "-c",
                "echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad",
            ],
            &["ip", "link", "set", "lo", "up"],
            &["ip", "link", "set", "lo", "multicast", "on"],
            &["ip", "route", "add", "224.0.0.0/4", "dev", "lo"],
            &[
                "ip", "link", "add", "tn0", "type", "veth", "peer", "name", "tn1",
            ],
            &["ip", "link", "set", "tn1", "up"],
            &["ip", "link", "set", "tn0", "up"],
        ];
        for step in setup {
            let mut args = vec!["netns", "exec", &namespace.0];
            args.extend_from_slice(step);
            if let Err(reason) = ip(&args) {
                skip(&format!("cannot set up the namespace: {step:?}: {reason}"));
                return None;
            }
        }
        Some(namespace)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.0]);
    }
}

/// Says why the test did not run, on the process's stderr itself: the test
/// harness captures `eprintln!` of passing tests, and a skip must show.
fn skip(reason: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED multicast discovery test: {reason}"
    );
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find(|line| line.starts_with("Uid:"))
            .and_then(|line| line.split_whitespace().nth(2))
            == Some("0")
    })
}
