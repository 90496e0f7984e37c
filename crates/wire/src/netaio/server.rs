//! A server for netaio clients: frames are handled one at a time per
//! connection, in order, as netaio's own server does, so replies to pipelined
//! requests keep their order; notifications are pushed between them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tessera_serve::{Admitted, Handler, Listener, Peer, Stage, StageConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;

use super::{Decoded, NetaioCodec, NetaioFrame, NetaioHmac};
use crate::outbox::{Outbox, OutputBudget, Queued};
use crate::{Error, Frame, MessageType, Rejection, Request, Router, Topics};

/// Limits of the compat server.
#[derive(Clone, Debug)]
pub struct NetaioOptions {
    /// Shared secret for netaio's HMAC plugin; `None` accepts unsigned frames.
    pub hmac: Option<Arc<NetaioHmac>>,
    /// Largest body accepted (netaio's limit is 65,535).
    pub max_body: usize,
    /// A connection with no frame for this long is closed (default 5 min).
    pub idle_timeout: Duration,
    /// Deadline of one handler (default 30 s).
    pub handler_timeout: Duration,
    /// Open connections at most; more wait in the backlog (default 1024).
    pub max_connections: usize,
    /// Open connections per client (IPv4 address, IPv6 /64) at most; more
    /// are closed at once (default 16), so one client cannot take every slot.
    pub max_connections_per_client: usize,
    /// A new connection that sends nothing for this long is closed (default 10 s).
    pub first_bytes_timeout: Duration,
    /// Admission control (tessera-guard): its ACL and rate limit decide each
    /// new connection before anything is read.
    pub guard: Option<Arc<tessera_guard::Chain>>,
    /// Trusted relays whose connections start with a PROXY v1/v2 header
    /// naming the client (default none).
    pub proxy_from: Option<tessera_guard::Acl>,
    /// Outgoing frames queued per connection (default 256).
    pub queue: usize,
    /// Bytes of outgoing frames queued per connection (default 1 MiB): when
    /// reached, replies wait and the connection is not read; notifications
    /// to it are dropped.
    pub queue_bytes: usize,
    /// Bytes of outgoing frames queued by all connections together, with
    /// the same policy: by default the process's budget
    /// ([`OutputBudget::process`](crate::OutputBudget::process), 256 MiB),
    /// shared with every other server of the process.
    pub output_budget: OutputBudget,
    /// Accept connections on non-loopback addresses (plain TCP!).
    pub allow_remote: bool,
    /// How long running connections may finish after shutdown starts (default 5 s).
    pub shutdown_grace: Duration,
    /// Where the server exports its counters (`--metrics-listen`): the
    /// stage's and requests by route and result.
    pub metrics: Option<tessera_serve::Metrics>,
    /// Name clients by their address in logs instead of their keyed id
    /// (`--log-client-ip`). Default false.
    pub log_client_ip: bool,
}

impl Default for NetaioOptions {
    fn default() -> Self {
        Self {
            hmac: None,
            max_body: usize::from(u16::MAX),
            idle_timeout: Duration::from_secs(300),
            handler_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_connections_per_client: 16,
            first_bytes_timeout: Duration::from_secs(10),
            guard: None,
            proxy_from: None,
            queue: 256,
            queue_bytes: 1024 * 1024,
            output_budget: OutputBudget::process(),
            allow_remote: false,
            shutdown_grace: Duration::from_secs(5),
            metrics: None,
            log_client_ip: false,
        }
    }
}

/// A netaio-compatible server.
pub struct NetaioServer<S> {
    listener: Listener,
    stage: Arc<Stage>,
    shared: Arc<Shared<S>>,
}

struct Shared<S> {
    router: Router<S>,
    options: NetaioOptions,
    topics: Arc<Topics>,
    next_id: AtomicU64,
    /// Bytes queued for sending, all connections together.
    queued: OutputBudget,
}

impl<S> std::fmt::Debug for NetaioServer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetaioServer")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync + 'static> NetaioServer<S> {
    /// A server on `listener`.
    ///
    /// # Errors
    /// [`Error::PlainNotLoopback`] for a non-loopback listener without `allow_remote`.
    pub fn new(
        listener: TcpListener,
        mut router: Router<S>,
        options: NetaioOptions,
    ) -> Result<Self, Error> {
        let local = listener.local_addr()?;
        if !local.ip().is_loopback() && !options.allow_remote {
            return Err(Error::PlainNotLoopback(local));
        }
        let listener = Listener::from(listener);
        let mut config = StageConfig::default();
        config
            .max_connections(options.max_connections)
            .max_connections_per_client(options.max_connections_per_client)
            .first_bytes_timeout(options.first_bytes_timeout)
            .shutdown_grace(options.shutdown_grace)
            .plain_beyond_loopback(options.allow_remote)
            .log_client_ip(options.log_client_ip);
        if let Some(guard) = &options.guard {
            config.guard(guard.clone());
        }
        if let Some(relays) = &options.proxy_from {
            config.proxy_from(relays.clone());
        }
        if let Some(metrics) = &options.metrics {
            config.metrics(metrics.clone());
            router.count_into(crate::metrics::register_routes(metrics));
        }
        let stage = Stage::new(&listener.local_addr()?, config)?;
        Ok(Self {
            listener,
            stage: Arc::new(stage),
            shared: Arc::new(Shared {
                router,
                topics: Arc::new(Topics::default()),
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
        crate::server::tcp_addr(&self.listener)
    }

    /// A handle that swaps the running server's guard (on SIGHUP, say).
    pub fn reloader(&self) -> crate::NetaioReloader {
        crate::NetaioReloader {
            stage: self.stage.clone(),
        }
    }

    /// Serves until `shutdown` resolves.
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
        // A netaio server listens on TCP only, without TLS.
        if let (Peer::Tcp(peer), Either::Left(Either::Left(tcp))) = (admitted.peer, admitted.stream)
        {
            connection(&self, tcp, peer, &admitted.refused).await;
        }
    }
}

async fn connection<S: Send + Sync + 'static>(
    shared: &Arc<Shared<S>>,
    tcp: TcpStream,
    peer: SocketAddr,
    refused: &CancellationToken,
) {
    let options = &shared.options;
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let (read, write) = tcp.into_split();
    let codec = NetaioCodec::new(options.max_body);
    let mut frames = FramedRead::new(read, codec);
    let (queue, outgoing) = Outbox::new(options.queue, options.queue_bytes, &shared.queued);
    // Refusals of frames that did not authenticate go out unsigned (as
    // netaio's own do): a signed one would be a MAC over a URI the sender
    // chose, which netaio's type-blind MAC lets it replay as anything (W1).
    let (refusals, unsigned) = mpsc::channel::<Frame>(REFUSALS_QUEUED);
    let writer = tokio::spawn(write_frames(
        FramedWrite::new(write, codec),
        outgoing,
        unsigned,
        options.hmac.clone(),
        options.idle_timeout,
    ));
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(options.idle_timeout, frames.next()) => next,
            // A reload's access list denies the client now; netaio has no
            // frame for that, so the close is the refusal.
            () = refused.cancelled() => break,
        };
        let Ok(Some(next)) = next else {
            break;
        };
        let reply = match next {
            Err(error) => {
                // netaio closes without a word; a typed error first is kinder and compatible.
                // The connection's span names the client.
                tracing::debug!(%error, "closing netaio connection");
                break;
            }
            Ok(Decoded::BadChecksum { uri }) => {
                Some(Reply::Unsigned(reply_to(&uri, Rejection::BadChecksum)))
            }
            Ok(Decoded::Frame(frame)) => handle(shared, id, &queue, frame, peer).await,
        };
        let sent = match reply {
            Some(Reply::Signed(reply)) => queue.send(reply).await.is_ok(),
            Some(Reply::Unsigned(reply)) => refusals.send(reply).await.is_ok(),
            None => true,
        };
        if !sent {
            break;
        }
    }
    shared.topics.remove_connection(id);
    drop((queue, refusals));
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
}

/// Refusals of unauthenticated frames waiting to be written, per connection;
/// when full, the connection stops reading (its sender waits).
const REFUSALS_QUEUED: usize = 16;

/// netaio frames carry no request id: an answer names the URI only.
fn reply_to(uri: &Bytes, refusal: Rejection) -> Frame {
    Frame::unprompted(&String::from_utf8_lossy(uri), refusal)
}

/// A reply, and whether it may carry our MAC.
enum Reply {
    /// To a frame that authenticated (or on a server without a secret).
    Signed(Frame),
    /// To a frame that did not: never signed.
    Unsigned(Frame),
}

/// One frame: auth, the built-in subscribe/publish, else the router.
async fn handle<S: Send + Sync + 'static>(
    shared: &Arc<Shared<S>>,
    connection: u64,
    queue: &Outbox,
    frame: NetaioFrame,
    peer: SocketAddr,
) -> Option<Reply> {
    if let Some(hmac) = &shared.options.hmac {
        if let Err(failure) = hmac.verify(&frame, peer.ip()) {
            tracing::debug!(reason = failure.name(), "netaio frame refused");
            return Some(Reply::Unsigned(reply_to(&frame.uri, Rejection::NetaioAuth)));
        }
    }
    let Ok(uri) = String::from_utf8(frame.uri.to_vec()) else {
        return Some(Reply::Signed(reply_to(&frame.uri, Rejection::UriNotUtf8)));
    };
    let request = Frame::new(MessageType(frame.kind), 0, uri, frame.content);
    if let Some(answer) = shared.topics.handle(connection, queue, &request, 1024) {
        return Some(Reply::Signed(request.answer(answer)));
    }
    let fallback = request.answer(Rejection::HandlerTimedOut);
    let request = Request {
        frame: request,
        peer,
        peer_certificate: None,
        principal: None,
    };
    tokio::time::timeout(
        shared.options.handler_timeout,
        shared.router.dispatch(request),
    )
    .await
    .unwrap_or(Some(fallback))
    .map(Reply::Signed)
}

/// Writes replies and notifications (`outgoing`, signed when the server has
/// a secret) and refusals of unauthenticated frames (`unsigned`).
async fn write_frames(
    mut sink: FramedWrite<tokio::net::tcp::OwnedWriteHalf, NetaioCodec>,
    mut outgoing: mpsc::Receiver<Queued>,
    mut unsigned: mpsc::Receiver<Frame>,
    hmac: Option<Arc<NetaioHmac>>,
    stall: Duration,
) {
    loop {
        // Held until the frame is written: its bytes stay counted meanwhile.
        let ((frame, _held), sign) = tokio::select! {
            Some(queued) = outgoing.recv() => {
                let (frame, held) = queued.into_parts();
                ((frame, Some(held)), true)
            }
            Some(frame) = unsigned.recv() => ((frame, None), false),
            else => return,
        };
        let mut frame = NetaioFrame::new(
            frame.kind.0,
            Bytes::from(frame.uri.into_bytes()),
            frame.body,
        );
        if let Some(hmac) = hmac.as_ref().filter(|_| sign) {
            hmac.sign(&mut frame);
        }
        match tokio::time::timeout(stall, sink.send(frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::debug!(%error, "netaio write failed");
                return;
            }
            Err(_) => return,
        }
    }
}
