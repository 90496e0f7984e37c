//! The server driver: accept through the shared connection stage (guard, connection
//! caps, TLS under a deadline; plain TCP only on loopback), then per
//! connection a reader that checks each frame with the server-wide auth
//! layer and dispatches it (bounded in-flight handlers, each under a
//! deadline), and one writer that signs and sends replies and notifications
//! from a queue bounded in frames and bytes (`outbox.rs`). Memory per
//! connection is bounded in bytes: the frame being read, the requests held by
//! running handlers (`max_in_flight_bytes`) and the queued output
//! (`queue_bytes`); queued output of all connections together stays within
//! `output_budget`, by default the process's. A peer that does not read its replies is not read
//! either, and is closed after `write_timeout`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tessera_serve::{
    Admitted, FleetAdmission, Handler, Listener, Metrics, Peer, Refusal, Stage, StageConfig,
};
use tokio::io::AsyncWrite;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::rustls::ServerConfig;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::auth::live::LiveAuth;
use crate::outbox::{Outbox, OutputBudget, Queued};
use crate::pow_gate::{PowAdmission, PowGate};
use crate::revocation_watch::{revoked, RevocationWatch};
use crate::rules::{peer_cert, FrameRules};
use crate::topics::ConnectionId;
use crate::{
    AuthFailure, Error, Frame, FrameAuth, FrameCodec, IntoReply, Limits, Principal, Rejection,
    Request, Response, Router, Topics,
};

/// How connections are secured.
#[derive(Clone, Debug)]
pub enum Transport {
    /// TLS with this configuration (mutual TLS when it requires client certificates).
    Tls(Arc<ServerConfig>),
    /// Plain TCP: refused unless the listener is on a loopback address.
    PlainLoopback,
}

/// What the connection stage of a wire listener (the frame server and the
/// tunnel exit) is built from: the guard's ACL and rate limit per
/// connection, the caps, TLS, and where its counters are exported.
pub(crate) struct StageSettings<'a> {
    pub(crate) guard: Option<&'a Arc<tessera_guard::Chain>>,
    pub(crate) proxy_from: Option<&'a tessera_guard::Acl>,
    pub(crate) caps: (usize, usize),
    pub(crate) handshake_timeout: Duration,
    pub(crate) shutdown_grace: Duration,
    pub(crate) metrics: Option<&'a Metrics>,
    pub(crate) log_client_ip: bool,
    pub(crate) fleet: &'a FleetAdmission,
}

impl StageSettings<'_> {
    /// The stage for `listener`.
    pub(crate) fn build(
        self,
        listener: &Listener,
        transport: Transport,
    ) -> Result<Arc<Stage>, Error> {
        let mut config = StageConfig::default();
        config
            .max_connections(self.caps.0)
            .max_connections_per_client(self.caps.1)
            .handshake_timeout(self.handshake_timeout)
            .shutdown_grace(self.shutdown_grace)
            .log_client_ip(self.log_client_ip);
        if let Transport::Tls(tls) = transport {
            config.tls(tls);
        }
        if let Some(guard) = self.guard {
            config.guard(guard.clone());
        }
        if let Some(relays) = self.proxy_from {
            config.proxy_from(relays.clone());
        }
        if let Some(metrics) = self.metrics {
            config.metrics(metrics.clone());
        }
        config.fleet(self.fleet.clone());
        let stage = Stage::new(&listener.local_addr()?, config)?;
        Ok(Arc::new(stage))
    }
}

/// The address of a wire listener, which is always TCP.
pub(crate) fn tcp_addr(listener: &Listener) -> Result<SocketAddr, Error> {
    match listener.local_addr()? {
        tessera_serve::LocalAddr::Tcp(address) => Ok(address),
        tessera_serve::LocalAddr::Unix(path) => Err(Error::NotTcp(path)),
    }
}

/// Limits and layers of a server. Every wait has a deadline, every queue a bound.
#[derive(Clone)]
pub struct ServerOptions {
    /// Frame size limits.
    pub limits: Limits,
    /// TLS handshake deadline (default 10 s).
    pub handshake_timeout: Duration,
    /// A connection with no frame for this long is closed (default 5 min).
    pub idle_timeout: Duration,
    /// Deadline of one handler; then the client gets ERROR (default 30 s).
    pub handler_timeout: Duration,
    /// Open connections at most; more wait in the backlog (default 1024).
    pub max_connections: usize,
    /// Handlers running at once per connection (default 64).
    pub max_in_flight: usize,
    /// Outgoing frames queued per connection, the slow-consumer bound (default 256).
    pub queue: usize,
    /// Bytes of outgoing frames queued per connection (default 2 MiB): when
    /// they are reached, the connection's replies wait and its reader stops
    /// reading; notifications to it are dropped.
    pub queue_bytes: usize,
    /// Bytes of outgoing frames queued by all connections together, with
    /// the same policy: by default the process's budget
    /// ([`OutputBudget::process`], 256 MiB), shared with every other server
    /// of the process that keeps the default.
    pub output_budget: OutputBudget,
    /// Bytes of requests held by running handlers per connection (default
    /// 2 MiB); beyond it the connection is not read until one finishes.
    pub max_in_flight_bytes: usize,
    /// A peer that takes none of the bytes written to it for this long is
    /// disconnected (default 30 s), returning what its queue held.
    pub write_timeout: Duration,
    /// Subscriptions per connection (default 1024).
    pub max_subscriptions: usize,
    /// How long running handlers may finish after shutdown starts (default 5 s).
    pub shutdown_grace: Duration,
    /// Server-wide auth layer: checks every incoming frame, signs every outgoing one.
    pub auth: Option<Arc<dyn FrameAuth>>,
    /// Admission control (tessera-guard): its ACL and rate limit decide each
    /// new connection before TLS (one token per connection); its
    /// client-certificate rules decide each frame by `"/" + URI`
    /// (NOT_PERMITTED when refused).
    pub guard: Option<Arc<tessera_guard::Chain>>,
    /// Open connections per client (IPv4 address, IPv6 /64) at most (default 64).
    pub max_connections_per_client: usize,
    /// Trusted relays whose connections start with a PROXY v1/v2 header
    /// naming the client (default none: nobody may send one).
    pub proxy_from: Option<tessera_guard::Acl>,
    /// Proof of work each connection must show before anything else (see [`PowAdmission`]).
    pub pow: Option<PowAdmission>,
    /// A revocation list that changes while the server runs (a fleet's):
    /// a connection that used a capability token is closed, with an auth
    /// error naming `revoked`, as soon as the token's revocation id is
    /// announced. Give the same list to the capability layer's verifier,
    /// which refuses the token's frames.
    pub revocations: Option<Arc<dyn tessera_trust::RevocationList>>,
    /// A fleet's shared state at admission: client certificates revoked in
    /// its store (refused; open connections that presented one are closed
    /// with an auth error naming `revoked` as soon as it is announced) and
    /// connection leases. None by default.
    pub fleet: FleetAdmission,
    /// Signed frames accepted once across a fleet (its shared store), not
    /// only once by this server.
    #[cfg(feature = "fleet")]
    pub fleet_replay: Option<crate::FleetFrameReplay>,
    /// Where the server exports its counters (`--metrics-listen`): the
    /// stage's, [`ServerStats`] and requests by route and result.
    pub metrics: Option<Metrics>,
    /// Name clients by their address in logs instead of their keyed id
    /// (`--log-client-ip`). Default false.
    pub log_client_ip: bool,
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("limits", &self.limits)
            .field("max_connections", &self.max_connections)
            .field("auth", &self.auth.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            handler_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_in_flight: 64,
            queue: 256,
            queue_bytes: 2 * 1024 * 1024,
            output_budget: OutputBudget::process(),
            max_in_flight_bytes: 2 * 1024 * 1024,
            write_timeout: Duration::from_secs(30),
            max_subscriptions: 1024,
            shutdown_grace: Duration::from_secs(5),
            auth: None,
            guard: None,
            proxy_from: None,
            max_connections_per_client: 64,
            pow: None,
            revocations: None,
            fleet: FleetAdmission::default(),
            #[cfg(feature = "fleet")]
            fleet_replay: None,
            metrics: None,
            log_client_ip: false,
        }
    }
}

/// Counters a server exposes.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Frames received and accepted by the auth layer.
    pub frames: AtomicU64,
    /// Frames refused by the auth layer.
    pub auth_failures: AtomicU64,
    /// Connections closed for a malformed or oversize frame.
    pub malformed: AtomicU64,
    /// Connections refused by the guard or the per-client cap, before TLS.
    pub refused: AtomicU64,
    /// Frames refused by the guard's certificate rules (or for a URI they cannot read canonically).
    pub not_permitted: AtomicU64,
}

/// A bound server.
pub struct Server<S> {
    listener: Listener,
    stage: Arc<Stage>,
    shared: Arc<Shared<S>>,
}

struct Shared<S> {
    rules: Arc<FrameRules>,
    /// The auth layer new connections take (`options.auth` at start).
    auth: Arc<LiveAuth>,
    router: Router<S>,
    metrics: Option<crate::metrics::WireMetrics>,
    options: ServerOptions,
    topics: Arc<Topics>,
    stats: Arc<ServerStats>,
    next_id: AtomicU64,
    /// Bytes queued for sending, all connections together.
    queued: OutputBudget,
}

impl<S> std::fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync + 'static> Server<S> {
    /// A server on `listener`.
    ///
    /// # Errors
    /// [`Error::PlainNotLoopback`] for plain TCP on a non-loopback address.
    pub fn new(
        listener: TcpListener,
        transport: Transport,
        mut router: Router<S>,
        options: ServerOptions,
    ) -> Result<Self, Error> {
        let listener = Listener::from(listener);
        let stats = Arc::new(ServerStats::default());
        let metrics = options.metrics.as_ref().map(|metrics| {
            let metrics = crate::metrics::register(metrics, stats.clone(), options.pow.is_some());
            router.count_into(metrics.routes.clone());
            metrics
        });
        let stage = StageSettings {
            guard: options.guard.as_ref(),
            proxy_from: options.proxy_from.as_ref(),
            caps: (options.max_connections, options.max_connections_per_client),
            handshake_timeout: options.handshake_timeout,
            shutdown_grace: options.shutdown_grace,
            metrics: options.metrics.as_ref(),
            log_client_ip: options.log_client_ip,
            fleet: &options.fleet,
        }
        .build(&listener, transport)?;
        Ok(Self {
            listener,
            stage,
            shared: Arc::new(Shared {
                rules: Arc::new(FrameRules::new(options.guard.clone())),
                auth: Arc::new(LiveAuth::new(options.auth.clone())),
                router,
                topics: Arc::new(Topics::default()),
                stats,
                metrics,
                next_id: AtomicU64::new(1),
                queued: options.output_budget.clone(),
                options,
            }),
        })
    }

    /// The bound address.
    ///
    /// # Errors
    /// Only if the socket cannot report it.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        tcp_addr(&self.listener)
    }

    /// The pub/sub state, to publish from application code.
    pub fn topics(&self) -> Arc<Topics> {
        self.shared.topics.clone()
    }

    /// The counters.
    pub fn stats(&self) -> Arc<ServerStats> {
        self.shared.stats.clone()
    }

    /// A handle that swaps the TLS material and guard of the running server.
    pub fn reloader(&self) -> crate::Reloader {
        crate::Reloader {
            stage: self.stage.clone(),
            rules: self.shared.rules.clone(),
            auth: self.shared.auth.clone(),
        }
    }

    /// Serves until `shutdown` resolves; then stops accepting and gives running
    /// connections the grace period.
    ///
    /// # Errors
    /// None today: per-connection failures are logged, never fatal.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        self.stage.run(self.listener, self.shared, shutdown).await;
        Ok(())
    }
}

impl<S: Send + Sync + 'static> Handler for Shared<S> {
    async fn serve(self: Arc<Self>, admitted: Admitted) {
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        // A wire server listens on TCP only.
        if let Peer::Tcp(peer) = admitted.peer {
            connection(&self, admitted, peer).await;
        }
    }

    fn refused(&self, _peer: Peer, _id: u64, refusal: &Refusal) {
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        if refusal.is_admission() {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl<S> Shared<S> {
    /// Counts a frame the auth layer (or the fleet's replay check) refused.
    fn auth_refused(&self, failure: AuthFailure) {
        self.stats.auth_failures.fetch_add(1, Ordering::Relaxed);
        if let Some(metrics) = &self.metrics {
            metrics.auth_refused(failure.name());
        }
    }

    /// What every frame passes before the built-in pub/sub and the router:
    /// the server-wide auth layer, the proof-of-work gate, then the guard's
    /// certificate rules (which only add to the auth layer's check, never
    /// replace it). `Err` is the answer the frame gets instead.
    fn screen(
        &self,
        frame: &Frame,
        auth: Option<&Arc<dyn FrameAuth>>,
        gate: &mut PowGate,
        certificate: Option<&tessera_guard::PeerCert>,
    ) -> Result<Option<Principal>, Response> {
        let principal = match auth.map(|auth| auth.authenticate(frame)) {
            None => None,
            Some(Ok(principal)) => principal,
            Some(Err(failure)) => {
                self.auth_refused(failure);
                return Err(Rejection::Auth(failure).into_reply());
            }
        };
        self.stats.frames.fetch_add(1, Ordering::Relaxed);
        if let Some(answer) = gate.filter(frame, time::OffsetDateTime::now_utc()) {
            if let Some(metrics) = &self.metrics {
                metrics.pow(&answer);
            }
            return Err(answer.into_reply());
        }
        if let Err(refusal) = self.rules.permitted(&frame.uri, certificate) {
            self.stats.not_permitted.fetch_add(1, Ordering::Relaxed);
            return Err(refusal.into_reply());
        }
        Ok(principal)
    }
}

/// One connection: read, check, dispatch; a writer task sends what comes back.
async fn connection<S: Send + Sync + 'static>(
    shared: &Arc<Shared<S>>,
    admitted: Admitted,
    peer: SocketAddr,
) {
    let options = &shared.options;
    let id: ConnectionId = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let certificate = admitted.certificate.as_ref();
    let client = admitted.client.clone();
    let refused = admitted.refused.clone();
    let fingerprint = certificate.map(|c| *c.fingerprint().as_bytes());
    let peer_cert = certificate.map(peer_cert);
    let (read, write) = tokio::io::split(admitted.stream);
    let mut frames = FramedRead::new(read, FrameCodec::new(options.limits));
    let (queue, outgoing) = Outbox::new(options.queue, options.queue_bytes, &shared.queued);
    // This connection's auth layer, kept to its end across reloads.
    let auth = shared.auth.current();
    let writer = tokio::spawn(write_frames(
        write,
        outgoing,
        options.limits,
        auth.clone(),
        options.write_timeout,
    ));
    let in_flight = Arc::new(Semaphore::new(options.max_in_flight.max(1)));
    let in_flight_bytes = options.max_in_flight_bytes.clamp(1, Semaphore::MAX_PERMITS);
    let held_requests = Arc::new(Semaphore::new(in_flight_bytes));
    let mut handlers = tokio::task::JoinSet::new();
    let mut gate = PowGate::new(options.pow);
    let mut watch = options.revocations.clone().map(RevocationWatch::new);
    let started = std::time::Instant::now();
    let mut frames_in: u64 = 0;
    let mut ended = "closed";
    loop {
        // Biased, refusals first: a connection refused at admission (or
        // while its frames wait) has none of its frames served.
        let next = tokio::select! {
            biased;
            () = refused.cancelled() => {
                // Its certificate is revoked now (a CRL reloaded, the fleet's
                // store), or a reload's access list denies its client.
                let _ = queue.try_send(Frame::unprompted("", Rejection::Auth(AuthFailure::Revoked)));
                ended = "refused after a reload or a revocation";
                break;
            }
            id = revoked(&mut watch) => {
                tracing::debug!(revocation_id = %id, "capability revoked; closing connection");
                let _ = queue.try_send(Frame::unprompted("", Rejection::Auth(AuthFailure::Revoked)));
                ended = "revoked";
                break;
            }
            next = tokio::time::timeout(options.idle_timeout, frames.next()) => next,
        };
        let next = match next {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(_) => {
                tracing::debug!("idle connection closed");
                ended = "idle";
                break;
            }
        };
        let frame = match next {
            Ok(frame) => frame,
            Err(error) => {
                shared.stats.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%error, "closing connection");
                let _ = queue.try_send(Frame::unprompted("", Rejection::Malformed(error)));
                ended = "malformed frame";
                break;
            }
        };
        frames_in += 1;
        // Reap finished handlers so the set stays small.
        while handlers.try_join_next().is_some() {}
        let principal = match shared.screen(&frame, auth.as_ref(), &mut gate, peer_cert.as_ref()) {
            Ok(principal) => {
                #[cfg(feature = "fleet")]
                if let Some(replay) = &options.fleet_replay {
                    if let Err(failure) = replay.check(&frame).await {
                        shared.auth_refused(failure);
                        let answer = Rejection::Auth(failure).into_reply();
                        if queue.send(frame.answer(answer)).await.is_err() {
                            break;
                        }
                        continue;
                    }
                }
                if let (Some(watch), Some(capability)) = (
                    watch.as_mut(),
                    principal.as_ref().and_then(Principal::capability),
                ) {
                    watch.hold(&capability.identity().revocation_id);
                }
                principal
            }
            Err(answer) => {
                tracing::debug!(kind = %frame.kind, reply = %answer.kind, "answered before routing");
                if queue.send(frame.answer(answer)).await.is_err() {
                    break;
                }
                continue;
            }
        };
        let max_subscriptions = options.max_subscriptions;
        if let Some(answer) = shared.topics.handle(id, &queue, &frame, max_subscriptions) {
            if frame.flags & crate::FLAG_ONE_WAY == 0
                && queue.send(frame.answer(answer)).await.is_err()
            {
                break;
            }
            continue;
        }
        let request = Request {
            frame,
            peer,
            peer_certificate: fingerprint,
            principal,
        };
        let size = request.frame.encoded_len();
        let fallback = request.frame.answer(Rejection::HandlerTimedOut);
        let one_way = request.frame.flags & crate::FLAG_ONE_WAY != 0;
        let router = shared.clone();
        let mut dispatch = Box::pin(async move { router.router.dispatch(request).await });
        // Fast path: a handler that answers without waiting (most do) is
        // answered here, saving a task per request (measured with
        // `tessera wire bench`); one that waits moves to its own task.
        if let std::task::Poll::Ready(reply) = futures_util::poll!(&mut dispatch) {
            if let Some(reply) = reply {
                if queue.send(reply).await.is_err() {
                    break;
                }
            }
            continue;
        }
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        // The request stays in memory until its handler ends: count its bytes.
        let cost = u32::try_from(size.min(in_flight_bytes)).unwrap_or(u32::MAX);
        let Ok(held) = held_requests.clone().acquire_many_owned(cost).await else {
            break;
        };
        let timeout = options.handler_timeout;
        let queue = queue.clone();
        handlers.spawn(async move {
            let _permits = (permit, held);
            let reply = match tokio::time::timeout(timeout, dispatch).await {
                Ok(reply) => reply,
                Err(_) => (!one_way).then_some(fallback),
            };
            if let Some(reply) = reply {
                let _ = queue.send(reply).await;
            }
        });
    }
    shared.topics.remove_connection(id);
    // Answers to a closed connection are useless: stop its handlers.
    handlers.shutdown().await;
    drop(queue);
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    tracing::info!(
        target: "tessera::access",
        protocol = "wire",
        client,
        frames = frames_in,
        cert = certificate.map(|c| c.fingerprint().short()),
        ms = started.elapsed().as_secs_f64() * 1e3,
        ended,
        "session"
    );
}

/// Signs and writes frames until the queue closes, then closes the stream.
/// A peer that stops reading for `stall` loses the connection (the queue
/// closes, so nothing waits on it forever). A frame's bytes stay counted
/// until it is flushed, so the encoder's buffer is bounded too.
async fn write_frames<W: AsyncWrite + Send + Unpin>(
    write: W,
    mut outgoing: mpsc::Receiver<Queued>,
    limits: Limits,
    auth: Option<Arc<dyn FrameAuth>>,
    stall: Duration,
) {
    let mut sink = FramedWrite::new(write, FrameCodec::new(limits));
    let sign = |frame: &mut Frame| {
        if let Some(auth) = &auth {
            auth.sign(frame);
        }
    };
    let mut flushing = Vec::new();
    while let Some(queued) = outgoing.recv().await {
        let batch = async {
            // Write what is queued, then flush once.
            let (mut frame, held) = queued.into_parts();
            sign(&mut frame);
            flushing.push(held);
            sink.feed(frame).await?;
            while let Ok(queued) = outgoing.try_recv() {
                let (mut frame, held) = queued.into_parts();
                sign(&mut frame);
                flushing.push(held);
                sink.feed(frame).await?;
            }
            sink.flush().await
        };
        match tokio::time::timeout(stall, batch).await {
            Ok(Ok(())) => flushing.clear(),
            Ok(Err(error)) => {
                tracing::debug!(%error, "write failed");
                return;
            }
            Err(_) => {
                tracing::debug!("peer stopped reading; closing");
                return;
            }
        }
    }
    let _ = tokio::time::timeout(stall, sink.close()).await;
}
