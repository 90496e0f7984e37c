//! The connection stage: what happens to a connection between `accept` and
//! the protocol, in this order and nowhere else.
//!
//! 1. A PROXY header, read under a deadline, only from relays in
//!    `proxy_from`; the client address in it replaces the relay's.
//! 2. The guard's ACL and rate limit (when the protocol charges them per
//!    connection), before any TLS byte.
//! 3. The global and per-client caps: a slot held as long as the connection.
//! 4. Socket tuning, then the TLS handshake under a deadline (or plain, which
//!    only a loopback listener allows, with an optional deadline for the
//!    first bytes).
//!
//! Every refusal is typed ([`Refusal`]), counted ([`StageStats`]) and closes
//! the socket before any protocol byte. An admitted connection runs in a
//! `tracing` span carrying its id and keyed client id.
//!
//! [`Stage::reload`] swaps the TLS configuration and guard for new
//! connections and refuses the open ones a new CRL or access list no longer
//! lets in (they are kept in a set for that, `live.rs`).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use tessera_guard::{
    Acl, Chain, ClientIds, ConnectionLimits, ConnectionPermit, ConnectionRefused, Limiter,
    LimiterConfig,
};
use tessera_tls::CertificateInfo;
use tokio::sync::broadcast;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use crate::accept::{accept_loop, AcceptOptions};
use crate::live::{LiveConnections, LiveSlot};
use crate::{
    read_proxy_header, ConnectionLease, Error, FleetAdmission, Listener, LocalAddr, Metrics, Peer,
    ProxyError, Socket, StageStats,
};

/// An admitted connection's stream: plain (loopback only) or TLS. The TLS
/// state (about 1.5 KiB) is boxed so that moving the stream into a protocol's
/// futures, each of which keeps its own slot for it, copies a pointer: it
/// halved the memory of an idle tlslp session (see docs/BENCHMARKS.md).
pub type Stream = Either<Socket, Box<TlsStream<Socket>>>;

/// How the stage admits connections. Defaults: TLS required, no guard, 1,024
/// connections, 16 per client, 10 s for the handshake, 5 s for a PROXY
/// header, 5 s of grace at shutdown.
#[derive(Clone, Debug)]
pub struct StageConfig {
    tls: Option<Arc<rustls::ServerConfig>>,
    guard: Option<Arc<Chain>>,
    max_connections: usize,
    max_connections_per_client: usize,
    ipv6_prefix: u8,
    hold_in_backlog: bool,
    proxy_from: Option<Acl>,
    proxy_timeout: Duration,
    handshake_timeout: Duration,
    first_bytes_timeout: Option<Duration>,
    plain_beyond_loopback: bool,
    shutdown_grace: Duration,
    client_ids: Option<ClientIds>,
    log_client_ip: bool,
    metrics: Option<Metrics>,
    fleet: FleetAdmission,
}

impl Default for StageConfig {
    fn default() -> Self {
        Self {
            tls: None,
            guard: None,
            max_connections: 1024,
            max_connections_per_client: 16,
            ipv6_prefix: 64,
            hold_in_backlog: true,
            proxy_from: None,
            proxy_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            first_bytes_timeout: None,
            plain_beyond_loopback: false,
            shutdown_grace: Duration::from_secs(5),
            client_ids: None,
            log_client_ip: false,
            metrics: None,
            fleet: FleetAdmission::default(),
        }
    }
}

impl StageConfig {
    /// Serves TLS with `config`. Without it connections stay plain, which
    /// [`Stage::new`] allows on loopback listeners and Unix sockets only.
    pub fn tls(&mut self, config: Arc<rustls::ServerConfig>) -> &mut Self {
        self.tls = Some(config);
        self
    }

    /// Charges the guard's ACL and rate limit once per connection, before TLS.
    /// Protocols that charge per request (Gemini) leave this unset.
    pub fn guard(&mut self, guard: Arc<Chain>) -> &mut Self {
        self.guard = Some(guard);
        self
    }

    /// Connections at once. Default 1,024. See [`hold_in_backlog`](Self::hold_in_backlog).
    pub fn max_connections(&mut self, max: usize) -> &mut Self {
        self.max_connections = max.max(1);
        self
    }

    /// Connections at once from one client (IPv4 address, IPv6 prefix, or
    /// Unix user); more are closed at once. Default 16.
    pub fn max_connections_per_client(&mut self, max: usize) -> &mut Self {
        self.max_connections_per_client = max.max(1);
        self
    }

    /// IPv6 clients count per prefix of this length for the per-client cap. Default 64.
    pub fn ipv6_prefix(&mut self, bits: u8) -> &mut Self {
        self.ipv6_prefix = bits;
        self
    }

    /// At `max_connections`: `true` (default) leaves new clients waiting in
    /// the kernel backlog; `false` accepts and closes them at once (the
    /// Gemini spec's choice, so a client learns at once).
    pub fn hold_in_backlog(&mut self, hold: bool) -> &mut Self {
        self.hold_in_backlog = hold;
        self
    }

    /// Relays whose connections start with a PROXY header (others never do).
    pub fn proxy_from(&mut self, relays: Acl) -> &mut Self {
        self.proxy_from = Some(relays);
        self
    }

    /// How long a relay has for its PROXY header. Default 5 s.
    pub fn proxy_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.proxy_timeout = timeout;
        self
    }

    /// How long the TLS handshake may take. Default 10 s.
    pub fn handshake_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.handshake_timeout = timeout;
        self
    }

    /// For plain connections (no TLS handshake to bound): how long a client
    /// may stay silent before its first bytes; then it is closed and its
    /// slot freed. Default: no deadline (the protocol's own idle timeout).
    pub fn first_bytes_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.first_bytes_timeout = Some(timeout);
        self
    }

    /// Allows plain connections on addresses that are not loopback, for a
    /// protocol that has no TLS and authenticates its frames itself (netaio).
    /// Default false.
    pub fn plain_beyond_loopback(&mut self, allow: bool) -> &mut Self {
        self.plain_beyond_loopback = allow;
        self
    }

    /// How long running connections may finish once shutdown starts. Default 5 s.
    pub fn shutdown_grace(&mut self, grace: Duration) -> &mut Self {
        self.shutdown_grace = grace;
        self
    }

    /// Keys for the client ids in connection spans (raw addresses never reach logs).
    pub fn client_ids(&mut self, ids: ClientIds) -> &mut Self {
        self.client_ids = Some(ids);
        self
    }

    /// Names clients by their address in connection spans, refusal lines
    /// and [`Admitted::client`], instead of the keyed id (the operator's
    /// opt-in, `--log-client-ip`). Default false.
    pub fn log_client_ip(&mut self, log: bool) -> &mut Self {
        self.log_client_ip = log;
        self
    }

    /// Exports the stage's counters ([`StageStats`]) in `metrics`.
    pub fn metrics(&mut self, metrics: Metrics) -> &mut Self {
        self.metrics = Some(metrics);
        self
    }

    /// Admits with a fleet's shared state too: its revoked client
    /// certificates and its connection leases ([`FleetAdmission`]).
    pub fn fleet(&mut self, fleet: FleetAdmission) -> &mut Self {
        self.fleet = fleet;
        self
    }
}

/// Why the stage closed a connection before the protocol saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The guard's ACL refused the client.
    AccessDenied,
    /// The guard's rate limit refused the client.
    RateLimited,
    /// The global connection cap was reached.
    TooManyConnections,
    /// The client has its per-client number of connections open.
    TooManyFromClient,
    /// A trusted relay sent no valid PROXY header.
    Proxy(ProxyError),
    /// A trusted relay sent no PROXY header in time.
    ProxyTimeout,
    /// The TLS handshake failed (the message says how).
    Handshake(String),
    /// The TLS handshake did not finish in time.
    HandshakeTimeout,
    /// A plain connection sent nothing before its first-bytes deadline.
    FirstBytesTimeout,
}

impl Refusal {
    /// A stable name for logs and counters.
    pub fn name(&self) -> &'static str {
        match self {
            Self::AccessDenied => "access_denied",
            Self::RateLimited => "rate_limited",
            Self::TooManyConnections => "too_many_connections",
            Self::TooManyFromClient => "too_many_from_client",
            Self::Proxy(_) => "proxy_header",
            Self::ProxyTimeout => "proxy_timeout",
            Self::Handshake(_) => "handshake_failed",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::FirstBytesTimeout => "first_bytes_timeout",
        }
    }

    /// Whether admission refused it (guard, caps), as opposed to a broken
    /// or slow peer (PROXY header, handshake).
    pub fn is_admission(&self) -> bool {
        matches!(
            self,
            Self::AccessDenied
                | Self::RateLimited
                | Self::TooManyConnections
                | Self::TooManyFromClient
        )
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Proxy(error) => write!(f, "{error}"),
            Self::Handshake(error) => write!(f, "TLS handshake failed: {error}"),
            Self::HandshakeTimeout => f.write_str("TLS handshake timed out"),
            Self::ProxyTimeout => f.write_str("no PROXY header in time"),
            Self::FirstBytesTimeout => f.write_str("nothing sent in time"),
            _ => f.write_str(self.name()),
        }
    }
}

/// A connection past the stage. Its slot under the caps is held for as
/// long as this lives.
#[derive(Debug)]
pub struct Admitted {
    /// The stream, TLS unless the listener is loopback-only plain.
    pub stream: Stream,
    /// The client (after a PROXY header).
    pub peer: Peer,
    /// The client certificate, when TLS asked for one and got it.
    pub certificate: Option<CertificateInfo>,
    /// The SNI name the client sent.
    pub sni: Option<String>,
    /// This server's number for the connection (also in its span).
    pub id: u64,
    /// The client's keyed id (HMAC of its address), for logs: never the address.
    pub client: String,
    /// Cancelled when the server starts to stop: a protocol closes idle
    /// connections at once and lets a request in progress finish (within the
    /// grace period, after which the connection's task is dropped).
    pub stopping: CancellationToken,
    /// Cancelled when a reload refuses this connection (its certificate is
    /// revoked now, or the new access list denies its client): a protocol
    /// sends its refusal and closes it at once.
    pub refused: CancellationToken,
    _slot: ConnectionPermit,
    _lease: Option<ConnectionLease>,
    _live: LiveSlot,
}

/// What a server does with the connections the stage admits.
pub trait Handler: Send + Sync + 'static {
    /// Serves one admitted connection (in a task of its own, so a server can
    /// keep `self` for tasks it spawns).
    fn serve(self: Arc<Self>, connection: Admitted) -> impl Future<Output = ()> + Send;

    /// Told of each refusal, after the stage counted and logged it; `id` is
    /// the number the connection would have had.
    fn refused(&self, _peer: Peer, _id: u64, _refusal: &Refusal) {}
}

/// What a reload hands a running stage ([`Stage::reload`]).
#[derive(Debug, Default)]
pub struct Reload {
    /// The TLS configuration for new connections (certificates, keys, CA,
    /// CRLs); `None` keeps the current one.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The guard for new connections (`None`: no guard any more). Its
    /// rate-limit state starts afresh.
    pub guard: Option<Arc<Chain>>,
    /// The certificates now revoked: open connections that presented one
    /// are refused.
    pub revoked: tessera_tls::RevocationList,
}

/// The connection stage of one server.
pub struct Stage {
    config: StageConfig,
    /// The TLS configuration new connections get (`None`: plain); a reload
    /// swaps it, handshakes in progress keep theirs.
    tls: ArcSwapOption<rustls::ServerConfig>,
    /// The guard new connections pass; a reload swaps it. Shared with the
    /// tracked-clients gauge.
    guard: Arc<ArcSwapOption<Chain>>,
    /// The certificates the last reload's CRLs list, checked once more for
    /// each connection admitted (its handshake may have begun before).
    revoked: ArcSwap<tessera_tls::RevocationList>,
    live: Arc<LiveConnections>,
    limits: Arc<ConnectionLimits>,
    origin: Instant,
    next_id: AtomicU64,
    stats: StageStats,
    stopping: CancellationToken,
    /// At most a few refusal lines per client per 10 s, so a flood does not
    /// flood the log. (Its settings are constants; `None` never happens.)
    refusal_log: Option<Limiter>,
    /// Keyed ids for logs: the configured key, or a random one per process.
    client_ids: ClientIds,
}

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage")
            .field("config", &self.config)
            .field("tls", &self.tls.load().is_some())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Stage {
    /// A stage for a listener at `local`.
    ///
    /// # Errors
    /// [`Error::PlainNotLoopback`] for plain TCP on a non-loopback address.
    pub fn new(local: &LocalAddr, config: StageConfig) -> Result<Self, Error> {
        if let (None, LocalAddr::Tcp(address)) = (&config.tls, local) {
            if !address.ip().is_loopback() && !config.plain_beyond_loopback {
                return Err(Error::PlainNotLoopback(*address));
            }
        }
        let limits = ConnectionLimits::new(
            config.max_connections,
            config.max_connections_per_client,
            config.ipv6_prefix,
        );
        let client_ids = config.client_ids.clone().unwrap_or_else(ClientIds::random);
        let stats = StageStats::default();
        let guard = Arc::new(ArcSwapOption::new(config.guard.clone()));
        if let Some(metrics) = &config.metrics {
            stats.register(metrics, limits.clone());
            if config.guard.is_some() {
                let guard = guard.clone();
                metrics.register_tracked_clients(move || {
                    guard.load().as_deref().map_or(0, Chain::tracked_clients)
                });
            }
        }
        Ok(Self {
            tls: ArcSwapOption::new(config.tls.clone()),
            guard,
            revoked: ArcSwap::default(),
            live: Arc::default(),
            config,
            client_ids,
            limits,
            origin: Instant::now(),
            next_id: AtomicU64::new(1),
            stats,
            stopping: CancellationToken::new(),
            refusal_log: Limiter::new(&LimiterConfig {
                rate: 0.1,
                burst: 3,
                ..LimiterConfig::default()
            })
            .ok(),
        })
    }

    /// The counters.
    pub fn stats(&self) -> &StageStats {
        &self.stats
    }

    /// Connections holding a slot now.
    pub fn open_connections(&self) -> usize {
        self.limits.open()
    }

    /// Applies a reload: new connections get the new TLS configuration and
    /// guard (connections open or in their handshake keep what they started
    /// with), then every open connection is checked again and those whose
    /// certificate is revoked now, or whose client the new access list
    /// denies, are refused ([`Admitted::refused`]). Returns how many.
    ///
    /// # Errors
    /// [`Error::PlainStage`] for TLS given to a plain stage; nothing changed.
    pub fn reload(&self, reload: Reload) -> Result<usize, Error> {
        if let Some(tls) = reload.tls {
            if self.tls.load().is_none() {
                return Err(Error::PlainStage);
            }
            self.tls.store(Some(tls));
        }
        self.guard.store(reload.guard);
        self.revoked.store(Arc::new(reload.revoked));
        // Stored first, checked after: a connection admitted meanwhile is
        // either in the set now or checks the new material itself (`admit`).
        Ok(self
            .live
            .refuse_unless(|peer, certificate| self.keeps(peer, certificate)))
    }

    /// Whether the current guard's ACL, revocation list and shared
    /// revocations still let this connection in.
    fn keeps(&self, peer: &Peer, certificate: Option<&CertificateInfo>) -> bool {
        let allowed = match (self.guard.load().as_deref(), peer.ip()) {
            (Some(guard), Some(address)) => {
                guard.allows_address(Some(tessera_guard::normalize(address)))
            }
            _ => true,
        };
        let revoked = |certificate: &CertificateInfo| {
            self.revoked.load().revokes(certificate)
                || self
                    .config
                    .fleet
                    .revoked_certificates
                    .as_ref()
                    .is_some_and(|shared| shared.refuses(&certificate.fingerprint()))
        };
        allowed && !certificate.is_some_and(revoked)
    }

    /// Refuses open connections whose certificate is revoked, each time
    /// the shared revocations announce one, until the receiver closes.
    async fn follow_revocations(&self, mut announcements: broadcast::Receiver<Arc<str>>) {
        loop {
            match announcements.recv().await {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    let refused = self
                        .live
                        .refuse_unless(|peer, certificate| self.keeps(peer, certificate));
                    if refused > 0 {
                        tracing::info!(
                            target: "tessera::reload",
                            refused,
                            "connections closed: certificate revoked in the fleet"
                        );
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// Serves `listener` until `shutdown` resolves: every connection goes
    /// through admission (guard, caps, PROXY header, TLS), then to `handler`
    /// in its own task and span; then the graceful stop of the accept loop.
    pub async fn run<H: Handler>(
        self: Arc<Self>,
        listener: Listener,
        handler: Arc<H>,
        shutdown: impl Future<Output = ()>,
    ) {
        let options = AcceptOptions {
            // Without a backlog hold, the caps close excess connections at once.
            max_connections: if self.config.hold_in_backlog {
                self.config.max_connections
            } else {
                usize::MAX
            },
            shutdown_grace: self.config.shutdown_grace,
        };
        let stop = CancellationToken::new();
        let revocations = self
            .config
            .fleet
            .revoked_certificates
            .as_ref()
            .map(|shared| {
                let stage = self.clone();
                let announcements = shared.announcements();
                tokio::spawn(async move { stage.follow_revocations(announcements).await })
            });
        // The loop runs in a task of its own, on a worker: the connection
        // tasks it spawns then start on the same worker's queue, where a loop
        // polled by the caller (often `block_on`, on the main thread) would
        // hand every connection to a worker through a wakeup, two context
        // switches per connection (`docs/BENCHMARKS.md`).
        let stage = self.clone();
        let accepting = accept_loop(
            listener,
            options,
            stop.clone().cancelled_owned(),
            move |socket, peer| {
                let stage = stage.clone();
                let handler = handler.clone();
                async move {
                    let id = stage.next_id.fetch_add(1, Ordering::Relaxed);
                    // Info: at --log-level info every line of a connection names
                    // it and its keyed client.
                    let span =
                        tracing::info_span!("connection", id, client = tracing::field::Empty);
                    async move {
                        match stage.admit(socket, peer, id).await {
                            Ok(connection) => handler.clone().serve(connection).await,
                            Err((peer, refusal)) => handler.refused(peer, id, &refusal),
                        }
                    }
                    .instrument(span)
                    .await;
                }
            },
        );
        let mut accepting = AbortOnDropHandle::new(tokio::spawn(accepting));
        let ended = tokio::select! {
            () = shutdown => None,
            ended = &mut accepting => Some(ended),
        };
        let ended = match ended {
            Some(ended) => ended,
            None => {
                self.stopping.cancel();
                stop.cancel();
                accepting.await
            }
        };
        if let Err(error) = ended {
            if error.is_panic() {
                std::panic::resume_unwind(error.into_panic());
            }
        }
        if let Some(revocations) = revocations {
            revocations.abort();
        }
    }

    /// Takes one accepted socket through the steps of the module docs.
    async fn admit(
        &self,
        mut socket: Socket,
        mut peer: Peer,
        id: u64,
    ) -> Result<Admitted, (Peer, Refusal)> {
        self.stats.count_accepted();
        if let (Either::Left(tcp), Some(relays), Peer::Tcp(relay)) =
            (&mut socket, &self.config.proxy_from, peer)
        {
            if relays.allows(Some(relay.ip())) {
                match tokio::time::timeout(self.config.proxy_timeout, read_proxy_header(tcp)).await
                {
                    Ok(Ok(source)) => peer = source.map_or(peer, Peer::Tcp),
                    Ok(Err(error)) => return Err(self.refuse(peer, Refusal::Proxy(error))),
                    Err(_) => return Err(self.refuse(peer, Refusal::ProxyTimeout)),
                }
            }
        }
        let key = client_key(peer);
        let client = self.client_name(peer);
        tracing::Span::current().record("client", client.as_str());
        let guard = self.guard.load_full();
        if let (Some(guard), Some(address)) = (guard, peer.ip()) {
            let request = tessera_guard::Request {
                address: Some(tessera_guard::normalize(address)),
                path: None,
                cert: None,
            };
            let clock = tessera_guard::Clock {
                monotonic_ns: u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX),
                wall: time::OffsetDateTime::now_utc(),
            };
            if let tessera_guard::Decision::Deny(denial) = guard.admit(&request, clock).await {
                let refusal = match denial.reason {
                    tessera_guard::DenialReason::RateLimited => Refusal::RateLimited,
                    _ => Refusal::AccessDenied,
                };
                return Err(self.refuse(peer, refusal));
            }
        }
        let slot = match self.limits.acquire(key) {
            Ok(slot) => slot,
            Err(ConnectionRefused::Total) => {
                return Err(self.refuse(peer, Refusal::TooManyConnections))
            }
            Err(ConnectionRefused::PerClient) => {
                return Err(self.refuse(peer, Refusal::TooManyFromClient))
            }
        };
        let lease = self
            .lease(peer)
            .await
            .map_err(|refusal| self.refuse(peer, refusal))?;
        // TCP options (no delay, keepalive) come from the listener (`Listener::from`).
        let Some(tls) = self.tls.load_full() else {
            if let Some(deadline) = self.config.first_bytes_timeout {
                if tokio::time::timeout(deadline, first_byte(&socket))
                    .await
                    .is_err()
                {
                    return Err(self.refuse(peer, Refusal::FirstBytesTimeout));
                }
            }
            self.stats.count_admitted();
            let (live, refused) = self.live.add(id, peer, None);
            return Ok(Admitted {
                stream: Either::Left(socket),
                peer,
                certificate: None,
                sni: None,
                id,
                client,
                stopping: self.stopping.clone(),
                refused,
                _slot: slot,
                _lease: lease,
                _live: live,
            });
        };
        let started = Instant::now();
        let acceptor = TlsAcceptor::from(tls);
        let tls = match tokio::time::timeout(self.config.handshake_timeout, acceptor.accept(socket))
            .await
        {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => {
                self.stats.count_handshake_failure(&error);
                return Err(self.refuse(peer, Refusal::Handshake(error.to_string())));
            }
            Err(_) => return Err(self.refuse(peer, Refusal::HandshakeTimeout)),
        };
        let connection = tls.get_ref().1;
        let certificate = connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|der| CertificateInfo::from_rustls(der).ok());
        let sni = connection.server_name().map(str::to_owned);
        self.stats.count_handshake(started.elapsed().as_secs_f64());
        self.stats.count_admitted();
        let (live, refused) = self.live.add(id, peer, certificate.as_ref());
        if !self.keeps(&peer, certificate.as_ref()) {
            refused.cancel();
        }
        Ok(Admitted {
            stream: Either::Right(Box::new(tls)),
            peer,
            certificate,
            sni,
            id,
            client,
            stopping: self.stopping.clone(),
            refused,
            _slot: slot,
            _lease: lease,
            _live: live,
        })
    }

    /// A lease for one more connection of this client, when the fleet
    /// counts them: refused at the fleet's cap; while the store cannot
    /// answer, the per-server cap (already taken) alone applies.
    async fn lease(&self, peer: Peer) -> Result<Option<ConnectionLease>, Refusal> {
        let (Some(leases), Some(address)) = (&self.config.fleet.connection_leases, peer.ip())
        else {
            return Ok(None);
        };
        match leases.acquire(tessera_guard::normalize(address)).await {
            Ok(Some(lease)) => Ok(Some(lease)),
            Ok(None) => Err(Refusal::TooManyFromClient),
            Err(tessera_guard::Unavailable) => Ok(None),
        }
    }

    /// Counts and logs a refusal: admission refusals (ACL, limits, rate) at
    /// info, a few per client per 10 s; other peer failures at debug, as
    /// attackers set their volume.
    fn refuse(&self, peer: Peer, refusal: Refusal) -> (Peer, Refusal) {
        self.stats.count_refused(refusal.name());
        let now = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let logged = refusal.is_admission()
            && self
                .refusal_log
                .as_ref()
                .is_some_and(|log| log.check(client_key(peer), now).is_ok());
        if logged {
            let client = self.client_name(peer);
            tracing::info!(
                target: "tessera::access",
                client,
                reason = refusal.name(),
                detail = %refusal,
                "connection refused"
            );
        } else {
            tracing::debug!(reason = refusal.name(), detail = %refusal, "connection refused");
        }
        (peer, refusal)
    }
}

impl Stage {
    /// How logs name `peer`: its keyed id, or with `log_client_ip` its address.
    fn client_name(&self, peer: Peer) -> String {
        match peer {
            Peer::Tcp(address) if self.config.log_client_ip => {
                tessera_guard::normalize(address.ip()).to_string()
            }
            Peer::Unix { .. } if self.config.log_client_ip => peer.to_string(),
            _ => self
                .client_ids
                .id(client_key(peer), time::OffsetDateTime::now_utc()),
        }
    }
}

/// Waits until the peer has sent a byte (or closed), without taking it:
/// readiness alone can be spurious, so a `MSG_PEEK` read confirms it.
async fn first_byte(socket: &Socket) -> std::io::Result<()> {
    let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    loop {
        let peeked = match socket {
            Either::Left(tcp) => {
                tcp.readable().await?;
                tcp.try_io(tokio::io::Interest::READABLE, || {
                    socket2::SockRef::from(tcp).peek(&mut byte)
                })
            }
            Either::Right(unix) => {
                unix.readable().await?;
                unix.try_io(tokio::io::Interest::READABLE, || {
                    socket2::SockRef::from(unix).peek(&mut byte)
                })
            }
        };
        match peeked {
            Ok(_) => return Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
    }
}

/// The key a client is counted under: its normalised address, or for a Unix
/// peer its user id inside 0.0.0.0/8, a range no TCP peer can come from
/// (RFC 1122 §3.2.1.3), so local users are capped apart from each other.
fn client_key(peer: Peer) -> IpAddr {
    match peer {
        Peer::Tcp(address) => tessera_guard::normalize(address.ip()),
        Peer::Unix { uid } => {
            let uid = uid.unwrap_or(u32::MAX) & 0x00ff_ffff;
            IpAddr::V4(Ipv4Addr::from(uid))
        }
    }
}
