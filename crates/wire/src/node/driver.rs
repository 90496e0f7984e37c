//! The tokio driver of a [`NodeCore`]: one task owns the core and the node
//! socket, discovery sockets feed it through a channel, and the application
//! talks to it through [`Node`] (commands) and [`NodeEvents`] (events).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::core::{CoreConfig, NodeCore, NodeEvent, NodeStats, SendError, Transmit, MAX_PAYLOAD};
use super::identity::{NodeId, NodeIdentity};
use super::peers::PeerInfo;
use crate::Error;

/// Where adverts are multicast and heard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Discovery {
    /// An IPv4 group, joined on the interface with the given address
    /// (unspecified: the kernel's choice).
    V4 {
        /// Group and port.
        group: SocketAddrV4,
        /// Local interface address.
        interface: Ipv4Addr,
    },
    /// An IPv6 group, joined on the interface with the given index (0: the
    /// kernel's choice).
    V6 {
        /// Group and port.
        group: SocketAddrV6,
        /// Interface index.
        interface: u32,
    },
}

/// The default discovery port.
pub const DISCOVERY_PORT: u16 = 7757;

impl Discovery {
    /// 239.255.77.77 (organisation-local scope) on the default port.
    pub fn default_v4() -> Self {
        Self::V4 {
            group: SocketAddrV4::new(Ipv4Addr::new(239, 255, 77, 77), DISCOVERY_PORT),
            interface: Ipv4Addr::UNSPECIFIED,
        }
    }

    /// ff12::7757 (link-local scope, transient) on the default port.
    pub fn default_v6() -> Self {
        Self::V6 {
            group: SocketAddrV6::new(
                Ipv6Addr::new(0xff12, 0, 0, 0, 0, 0, 0, 0x7757),
                DISCOVERY_PORT,
                0,
                0,
            ),
            interface: 0,
        }
    }

    /// Both default groups, on one discovery port.
    pub fn defaults(port: u16) -> Vec<Self> {
        [Self::default_v4(), Self::default_v6()]
            .into_iter()
            .map(|d| d.with_port(port))
            .collect()
    }

    /// The same group on another port.
    pub fn with_port(mut self, port: u16) -> Self {
        match &mut self {
            Self::V4 { group, .. } => group.set_port(port),
            Self::V6 { group, .. } => group.set_port(port),
        }
        self
    }

    /// The group's socket address.
    pub fn group(&self) -> SocketAddr {
        match self {
            Self::V4 { group, .. } => SocketAddr::V4(*group),
            Self::V6 { group, .. } => SocketAddr::V6(*group),
        }
    }
}

/// How a node runs.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The name in this node's adverts (at most 64 bytes are sent).
    pub name: String,
    /// The node socket. The default `[::]:0` is dual-stack: IPv6 and IPv4.
    pub listen: SocketAddr,
    /// Multicast groups to advertise on and listen to.
    pub discovery: Vec<Discovery>,
    /// Addresses of node sockets to advertise to directly, for links
    /// without multicast.
    pub seeds: Vec<SocketAddr>,
    /// How often to advertise.
    pub advert_interval: Duration,
    /// A peer not heard from for this long is dropped.
    pub peer_timeout: Duration,
    /// How long to wait for a handshake answer before sending it again.
    pub handshake_retry: Duration,
    /// Handshake attempts before queued datagrams are dropped.
    pub handshake_attempts: u32,
    /// Most peers kept; adverts of further nodes are ignored (default 256).
    pub max_peers: usize,
    /// Most peers kept from one source address (default 32): a flood of
    /// fresh identities from one address cannot fill the table, so real
    /// nodes elsewhere on the link are still discovered.
    pub max_peers_per_source: usize,
    /// Largest payload accepted by `send` (at most [`MAX_PAYLOAD`]).
    pub max_payload: usize,
    /// Events buffered for the application; an application that falls this
    /// far behind loses events (counted in [`NodeStats::events_dropped`])
    /// rather than the node's memory growing without bound.
    pub event_capacity: usize,
    /// Handshakes answered per second at most; a flood beyond it is shed.
    pub handshake_rate: u32,
    /// Sessions are replaced by a new handshake at this age (default 2 min),
    /// so keys compromised later expose at most this much traffic.
    pub rekey_after: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            name: String::from("tessera"),
            listen: SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
            discovery: Discovery::defaults(DISCOVERY_PORT),
            seeds: Vec::new(),
            advert_interval: Duration::from_secs(1),
            peer_timeout: Duration::from_secs(5),
            handshake_retry: Duration::from_millis(500),
            handshake_attempts: 5,
            max_peers: 256,
            max_peers_per_source: 32,
            max_payload: MAX_PAYLOAD,
            event_capacity: 1024,
            handshake_rate: 200,
            rekey_after: Duration::from_secs(120),
        }
    }
}

/// A running node. Dropping it stops the node (with a goodbye) as well.
#[derive(Debug)]
pub struct Node {
    id: NodeId,
    local_addr: SocketAddr,
    discovery: Vec<SocketAddr>,
    commands: mpsc::Sender<Command>,
    task: Option<JoinHandle<()>>,
}

/// The events of a node, in order.
#[derive(Debug)]
pub struct NodeEvents(mpsc::Receiver<NodeEvent>);

impl NodeEvents {
    /// The next event; `None` once the node has stopped.
    pub async fn recv(&mut self) -> Option<NodeEvent> {
        self.0.recv().await
    }
}

enum Command {
    Send(NodeId, Bytes, oneshot::Sender<Result<(), SendError>>),
    Broadcast(Bytes, oneshot::Sender<Result<usize, SendError>>),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    Stats(oneshot::Sender<NodeStats>),
}

impl Node {
    /// Binds the sockets, joins the groups and starts advertising.
    ///
    /// # Errors
    /// [`Error::Io`] when the node socket cannot be bound, or no discovery
    /// group can be joined and there are no seeds either.
    pub async fn start(
        identity: NodeIdentity,
        config: NodeConfig,
    ) -> Result<(Self, NodeEvents), Error> {
        let socket = bind_node_socket(config.listen)?;
        let local_addr = socket
            .local_addr()
            .map_err(io("reading the node address"))?;
        let (datagrams_tx, datagrams_rx) = mpsc::channel(256);
        // A group that cannot be joined (no IPv6 on this host, say) is left
        // out with a warning; the node fails only if none can be.
        let mut groups = Vec::new();
        let mut last_error = None;
        for discovery in &config.discovery {
            match bind_discovery_socket(discovery) {
                Ok(group_socket) => {
                    let group_socket = Arc::new(group_socket);
                    tokio::spawn(forward_datagrams(
                        Arc::clone(&group_socket),
                        datagrams_tx.clone(),
                    ));
                    groups.push((discovery.group(), group_socket));
                }
                Err(error) => {
                    tracing::warn!(group = %discovery.group(), %error, "discovery group left out");
                    last_error = Some(error);
                }
            }
        }
        drop(datagrams_tx);
        if let Some(error) = last_error.filter(|_| groups.is_empty() && config.seeds.is_empty()) {
            return Err(error);
        }
        let incarnation = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let core = NodeCore::new(
            identity,
            CoreConfig {
                name: config.name.clone(),
                port: local_addr.port(),
                incarnation,
                advert_targets: groups
                    .iter()
                    .map(|(group, _)| *group)
                    .chain(config.seeds.iter().copied())
                    .collect(),
                advertise_to_peers: config.discovery.is_empty(),
                peer_timeout: config.peer_timeout,
                handshake_retry: config.handshake_retry,
                handshake_attempts: config.handshake_attempts,
                max_peers: config.max_peers,
                max_peers_per_source: config.max_peers_per_source,
                max_payload: config.max_payload,
                handshake_rate: config.handshake_rate,
                rekey_after: config.rekey_after,
            },
        );
        let id = core.id();
        let (commands, commands_rx) = mpsc::channel(64);
        let (events_tx, events_rx) = mpsc::channel(config.event_capacity.max(1));
        let driver = Driver {
            core,
            socket,
            local_addr,
            groups,
            events: events_tx,
            events_dropped: 0,
        };
        let discovery = driver.groups.iter().map(|(group, _)| *group).collect();
        let task = tokio::spawn(driver.run(commands_rx, datagrams_rx, config.advert_interval));
        Ok((
            Self {
                id,
                local_addr,
                discovery,
                commands,
                task: Some(task),
            },
            NodeEvents(events_rx),
        ))
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The node socket's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The multicast groups this node advertises on and listens to (those
    /// of its configuration that could be joined).
    pub fn discovery(&self) -> &[SocketAddr] {
        &self.discovery
    }

    /// Sends `payload` to one peer, sealed; a first send runs the handshake.
    ///
    /// # Errors
    /// [`SendError`] for an unknown peer, an oversize payload or a backlog;
    /// [`SendError::UnknownPeer`] too if the node has stopped.
    pub async fn send(&self, peer: NodeId, payload: impl Into<Bytes>) -> Result<(), SendError> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::Send(peer, payload.into(), reply))
            .await
            .ok_or(SendError::UnknownPeer)?;
        answer.await.unwrap_or(Err(SendError::UnknownPeer))
    }

    /// Sends `payload` to every known peer; returns how many.
    ///
    /// # Errors
    /// [`SendError::TooLarge`] for an oversize payload.
    pub async fn broadcast(&self, payload: impl Into<Bytes>) -> Result<usize, SendError> {
        let (reply, answer) = oneshot::channel();
        if self
            .command(Command::Broadcast(payload.into(), reply))
            .await
            .is_none()
        {
            return Ok(0);
        }
        answer.await.unwrap_or(Ok(0))
    }

    /// The peers known now, by name.
    pub async fn peers(&self) -> Vec<PeerInfo> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::Peers(reply)).await;
        answer.await.unwrap_or_default()
    }

    /// Counters.
    pub async fn stats(&self) -> NodeStats {
        let (reply, answer) = oneshot::channel();
        self.command(Command::Stats(reply)).await;
        answer.await.unwrap_or_default()
    }

    /// Says goodbye to the peers and stops.
    pub async fn stop(mut self) {
        self.commands = mpsc::channel(1).0;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    async fn command(&self, command: Command) -> Option<()> {
        self.commands.send(command).await.ok()
    }
}

struct Driver {
    core: NodeCore,
    socket: UdpSocket,
    local_addr: SocketAddr,
    groups: Vec<(SocketAddr, Arc<UdpSocket>)>,
    events: mpsc::Sender<NodeEvent>,
    events_dropped: u64,
}

impl Driver {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut group_datagrams: mpsc::Receiver<(SocketAddr, Bytes)>,
        advert_interval: Duration,
    ) {
        let mut buffer = vec![0u8; 65_536];
        let mut ticks = tokio::time::interval(advert_interval.min(Duration::from_millis(250)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_advert: Option<Instant> = None;
        loop {
            tokio::select! {
                received = self.socket.recv_from(&mut buffer) => match received {
                    Ok((len, from)) => self.core.handle(canonical(from), &buffer[..len], Instant::now()),
                    Err(error) => tracing::debug!(%error, "node socket receive failed"),
                },
                Some((from, datagram)) = group_datagrams.recv() => {
                    self.core.handle(canonical(from), &datagram, Instant::now());
                }
                command = commands.recv() => match command {
                    Some(command) => self.apply(command),
                    None => break,
                },
                _ = ticks.tick() => {
                    let now = Instant::now();
                    self.core.tick(now);
                    if last_advert.is_none_or(|at| now.duration_since(at) >= advert_interval) {
                        self.core.advertise();
                        last_advert = Some(now);
                    }
                }
            }
            self.flush().await;
        }
        self.core.goodbye();
        self.flush().await;
    }

    fn apply(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Send(peer, payload, reply) => {
                let _ = reply.send(self.core.send(peer, payload, now));
            }
            Command::Broadcast(payload, reply) => {
                let _ = reply.send(self.core.broadcast(&payload, now));
            }
            Command::Peers(reply) => {
                let _ = reply.send(self.core.peers());
            }
            Command::Stats(reply) => {
                let mut stats = self.core.stats();
                stats.events_dropped = self.events_dropped;
                let _ = reply.send(stats);
            }
        }
    }

    async fn flush(&mut self) {
        while let Some(Transmit { to, bytes }) = self.core.poll_transmit() {
            // Adverts to a group leave by its socket (same family); the rest
            // by the node socket, which, being IPv6, reaches IPv4 peers by
            // their mapped addresses.
            let (socket, to) = match self.groups.iter().find(|(group, _)| *group == to) {
                Some((_, group_socket)) => (&**group_socket, to),
                None if self.local_addr.is_ipv6() => (&self.socket, mapped(to)),
                None => (&self.socket, to),
            };
            if let Err(error) = socket.send_to(&bytes, to).await {
                tracing::debug!(%error, %to, "datagram not sent");
            }
        }
        while let Some(event) = self.core.poll_event() {
            match self.events.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => self.events_dropped += 1,
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }
}

/// Relays a discovery socket's datagrams to the driver.
async fn forward_datagrams(socket: Arc<UdpSocket>, to: mpsc::Sender<(SocketAddr, Bytes)>) {
    let mut buffer = vec![0u8; 65_536];
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buffer) => match received {
                Ok((len, from)) => {
                    if to.send((from, Bytes::copy_from_slice(&buffer[..len]))).await.is_err() {
                        return;
                    }
                }
                Err(error) => tracing::debug!(%error, "discovery receive failed"),
            },
            () = to.closed() => return,
        }
    }
}

fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |error| Error::Io { context, error }
}

/// The node socket; an unspecified IPv6 address is made dual-stack.
fn bind_node_socket(listen: SocketAddr) -> Result<UdpSocket, Error> {
    let socket = Socket::new(
        Domain::for_address(listen),
        Type::DGRAM,
        Some(Protocol::UDP),
    )
    .map_err(io("creating the node socket"))?;
    if listen.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED) {
        socket
            .set_only_v6(false)
            .map_err(io("making the node socket dual-stack"))?;
    }
    socket
        .bind(&listen.into())
        .map_err(io("binding the node socket"))?;
    into_tokio(socket)
}

/// A socket on the group's port, shared with other nodes on this machine,
/// that has joined the group and sends to it with loopback on and a hop
/// limit of 1 (adverts stay on the link).
fn bind_discovery_socket(discovery: &Discovery) -> Result<UdpSocket, Error> {
    let socket = Socket::new(
        Domain::for_address(discovery.group()),
        Type::DGRAM,
        Some(Protocol::UDP),
    )
    .map_err(io("creating a discovery socket"))?;
    socket
        .set_reuse_address(true)
        .map_err(io("sharing the discovery port"))?;
    socket
        .set_reuse_port(true)
        .map_err(io("sharing the discovery port"))?;
    match discovery {
        Discovery::V4 { group, interface } => {
            let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, group.port()));
            socket
                .bind(&any.into())
                .map_err(io("binding the IPv4 discovery port"))?;
            socket
                .join_multicast_v4(group.ip(), interface)
                .map_err(io("joining the IPv4 discovery group"))?;
            socket
                .set_multicast_if_v4(interface)
                .map_err(io("choosing the IPv4 multicast interface"))?;
            socket
                .set_multicast_loop_v4(true)
                .map_err(io("enabling multicast loopback"))?;
            socket
                .set_multicast_ttl_v4(1)
                .map_err(io("setting the multicast TTL"))?;
        }
        Discovery::V6 { group, interface } => {
            socket
                .set_only_v6(true)
                .map_err(io("making the IPv6 discovery socket IPv6-only"))?;
            let any = SocketAddr::from((Ipv6Addr::UNSPECIFIED, group.port()));
            socket
                .bind(&any.into())
                .map_err(io("binding the IPv6 discovery port"))?;
            socket
                .join_multicast_v6(group.ip(), *interface)
                .map_err(io("joining the IPv6 discovery group"))?;
            socket
                .set_multicast_if_v6(*interface)
                .map_err(io("choosing the IPv6 multicast interface"))?;
            socket
                .set_multicast_loop_v6(true)
                .map_err(io("enabling multicast loopback"))?;
            socket
                .set_multicast_hops_v6(1)
                .map_err(io("setting the multicast hop limit"))?;
        }
    }
    into_tokio(socket)
}

fn into_tokio(socket: Socket) -> Result<UdpSocket, Error> {
    socket
        .set_nonblocking(true)
        .map_err(io("making a socket non-blocking"))?;
    UdpSocket::from_std(socket.into()).map_err(io("registering a socket"))
}

/// IPv4-mapped IPv6 addresses (from the dual-stack socket) as plain IPv4, so a
/// peer has one address whichever way it was heard.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// An IPv4 address as IPv4-mapped IPv6, for a dual-stack socket.
fn mapped(to: SocketAddr) -> SocketAddr {
    match to {
        SocketAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port()),
        SocketAddr::V6(_) => to,
    }
}
