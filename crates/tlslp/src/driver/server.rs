//! The tlslp server driver on tessera-serve's connection stage (which owns
//! the accept loop, PROXY headers, guard admission before TLS, the global and
//! per-address caps, the handshake deadline and the graceful stop): a task per
//! session with a deadline per reply line. Fixes defects D2, D3, D4 and D16:
//! a bad handshake, a silent peer or a trickler ends only its own session.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_serve::{Admitted, Handler, Listener, Peer, Refusal, Stage, StageConfig, Stream};
use tessera_tls::rustls::ServerConfig;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;

use super::adaptive::{session_config, AdaptiveWork};
use super::report::{emit, Counters, ServerReport, SessionOutcome, SessionRecord};
use super::LineReader;
use crate::event::Level;
use crate::logfile::EventSink;
use crate::repr::py_repr;
use crate::server::{Outcome, ServerSession, SessionConfig};
use crate::Error;

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// TLS configuration (mutual TLS unless `--insecure`).
    pub tls: Arc<ServerConfig>,
    /// What every session uses, its reply deadlines among it.
    pub session: Arc<SessionConfig>,
    /// Deadline for the TLS handshake. Default 10 s (the reference has none, D3).
    pub handshake_timeout: Duration,
    /// Sessions at once, all clients. Default 10,000.
    pub max_connections: usize,
    /// Sessions at once from one address. Default 32.
    pub max_per_address: usize,
    /// How long running sessions may finish after shutdown begins. Default 10 s.
    pub shutdown_grace: Duration,
    /// Serve one connection, then return (tutorial mode).
    pub once: bool,
    /// Print the reference's stdout lines (`Connection from (…)`, `Connection closed`).
    pub print_stdout: bool,
    /// Admission before the TLS handshake (ACL, rate limit); `None` admits everyone.
    pub guard: Option<Arc<tessera_guard::Chain>>,
    /// Pseudonyms for client addresses in records and logs.
    pub client_ids: tessera_guard::ClientIds,
    /// Write raw client addresses in the connection lines (default: the
    /// keyed id, except a tutorial session on loopback, which writes the
    /// reference's lines exactly).
    pub log_client_ip: bool,
    /// Raise WORK difficulty under load; `None` keeps `session.n_bits`.
    pub adaptive_work: Option<AdaptiveWork>,
    /// Relays whose connections start with a PROXY v1/v2 header naming the client.
    pub trusted_relays: Option<tessera_guard::Acl>,
    /// How long a trusted relay may take to send its PROXY header. Default 5 s.
    pub proxy_timeout: Duration,
    /// Where the server exports its counters (`--metrics-listen`): the
    /// stage's, sessions by outcome and WORK puzzles solved.
    pub metrics: Option<tessera_serve::Metrics>,
    /// A fleet's shared state at admission: client certificates revoked in
    /// its store (refused; open sessions that presented one are closed as
    /// soon as it is announced) and connection leases. None by default.
    pub fleet: tessera_serve::FleetAdmission,
}

impl ServerOptions {
    /// The reference's defaults around a TLS config and session config.
    pub fn new(tls: Arc<ServerConfig>, session: Arc<SessionConfig>) -> Self {
        Self {
            tls,
            session,
            handshake_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_per_address: 32,
            shutdown_grace: Duration::from_secs(10),
            once: false,
            print_stdout: false,
            guard: None,
            client_ids: tessera_guard::ClientIds::random(),
            log_client_ip: false,
            adaptive_work: None,
            trusted_relays: None,
            proxy_timeout: Duration::from_secs(5),
            metrics: None,
            fleet: tessera_serve::FleetAdmission::default(),
        }
    }
}

/// Serves until `shutdown` resolves (or after one connection with `once`),
/// then stops accepting and lets sessions finish within the grace period.
/// `records` receives one record per session if given.
///
/// # Errors
/// As [`Server::new`].
pub async fn serve(
    listener: TcpListener,
    options: ServerOptions,
    sink: Arc<dyn EventSink>,
    records: Option<mpsc::UnboundedSender<SessionRecord>>,
    shutdown: impl Future<Output = ()>,
) -> Result<ServerReport, Error> {
    Ok(Server::new(listener, options, sink, records)?
        .run(shutdown)
        .await)
}

/// A bound tlslp server.
pub struct Server {
    listener: Listener,
    stage: Arc<Stage>,
    server: Arc<TlslpServer>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server on `listener`; `records` receives one record per session if given.
    ///
    /// # Errors
    /// [`Error::Io`] when the listener's address cannot be read, [`Error::Stage`]
    /// when the connection stage cannot be set up.
    pub fn new(
        listener: TcpListener,
        options: ServerOptions,
        sink: Arc<dyn EventSink>,
        records: Option<mpsc::UnboundedSender<SessionRecord>>,
    ) -> Result<Self, Error> {
        build(listener, options, sink, records)
    }

    /// The connection stage, to reload its TLS material and guard
    /// ([`Stage::reload`]): sessions in progress whose certificate is
    /// revoked then, or whose client the new ACL denies, are closed.
    pub fn stage(&self) -> Arc<Stage> {
        self.stage.clone()
    }

    /// Serves until `shutdown` resolves (or after one connection with `once`).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> ServerReport {
        let once_done = self.server.once_done.clone();
        self.stage
            .run(self.listener, self.server.clone(), async move {
                tokio::select! {
                    () = shutdown => {}
                    () = once_done.cancelled() => {}
                }
            })
            .await;
        self.server.counters.report()
    }
}

fn build(
    listener: TcpListener,
    options: ServerOptions,
    sink: Arc<dyn EventSink>,
    records: Option<mpsc::UnboundedSender<SessionRecord>>,
) -> Result<Server, Error> {
    let listener = Listener::from(listener);
    let local = listener.local_addr()?;
    let mut config = StageConfig::default();
    config
        .tls(options.tls.clone())
        // One session at a time in tutorial mode: the first one is the only one.
        .max_connections(if options.once {
            1
        } else {
            options.max_connections
        })
        .max_connections_per_client(options.max_per_address)
        .handshake_timeout(options.handshake_timeout)
        .proxy_timeout(options.proxy_timeout)
        .shutdown_grace(options.shutdown_grace)
        .client_ids(options.client_ids.clone())
        .log_client_ip(options.log_client_ip);
    if let Some(guard) = &options.guard {
        config.guard(guard.clone());
    }
    if let Some(relays) = &options.trusted_relays {
        config.proxy_from(relays.clone());
    }
    if let Some(metrics) = &options.metrics {
        config.metrics(metrics.clone());
    }
    config.fleet(options.fleet.clone());
    let stage = Arc::new(Stage::new(&local, config)?);
    let server = Arc::new(TlslpServer {
        denial_log: tessera_guard::Limiter::new(&tessera_guard::LimiterConfig {
            rate: 0.1,
            burst: 3,
            ..Default::default()
        })
        .map_err(|e| Error::Config(e.to_string()))?,
        clock_origin: Instant::now(),
        active: AtomicUsize::new(0),
        last_bits: AtomicI64::new(options.session.n_bits),
        counters: options
            .metrics
            .as_ref()
            .map_or_else(Counters::default, Counters::exported),
        once_done: CancellationToken::new(),
        options,
        sink,
        records,
    });
    Ok(Server {
        listener,
        stage,
        server,
    })
}

/// What every session of one server shares.
struct TlslpServer {
    options: ServerOptions,
    sink: Arc<dyn EventSink>,
    records: Option<mpsc::UnboundedSender<SessionRecord>>,
    clock_origin: Instant,
    denial_log: tessera_guard::Limiter,
    active: AtomicUsize,
    last_bits: AtomicI64,
    counters: Counters,
    /// Cancelled after the first connection in `once` mode, which stops the server.
    once_done: CancellationToken,
}

impl Handler for TlslpServer {
    async fn serve(self: Arc<Self>, connection: Admitted) {
        let peer = socket_addr(connection.peer);
        let client = self.client_id(peer);
        let active = self.active.fetch_add(1, Ordering::Relaxed) + 1;
        let config = session_config(
            &self.options.session,
            self.options.adaptive_work,
            active,
            &self.last_bits,
            &*self.sink,
        );
        self.log_connection(peer);
        let started = Instant::now();
        let n_bits = config.n_bits;
        // Biased, the refusal first: a session refused at admission (its
        // certificate is revoked) does not start; one refused later (a
        // reload, a revocation announced) ends at once.
        let record = tokio::select! {
            biased;
            () = connection.refused.cancelled() => {
                self.sink.record(Level::Warning, &format!("Closed the session of {client}: refused after a reload or a revocation"));
                SessionRecord {
                    id: connection.id,
                    peer,
                    outcome: SessionOutcome::Refused("reload".to_owned()),
                    duration: started.elapsed(),
                    work_issued: false,
                    work_time: None,
                    tls: None,
                    n_bits,
                }
            }
            record = session(
                connection.id,
                connection.stream,
                peer,
                &self.options,
                config,
                &*self.sink,
            ) => record,
        };
        self.active.fetch_sub(1, Ordering::Relaxed);
        emit(&record, &client, &self.counters, self.records.as_ref());
        self.end_of_once();
    }

    fn refused(&self, peer: Peer, id: u64, refusal: &Refusal) {
        let peer = socket_addr(peer);
        let client = self.client_id(peer);
        let outcome = match refusal {
            Refusal::Handshake(_) | Refusal::HandshakeTimeout => {
                // The reference logs the connection, then the failed handshake.
                self.log_connection(peer);
                let reason = match refusal {
                    Refusal::Handshake(error) => error.as_str(),
                    _ => "handshake timed out",
                };
                self.sink
                    .record(Level::Error, &format!("TLS handshake failed: {reason}"));
                self.sink.record(Level::Info, "Connection closed");
                SessionOutcome::Handshake
            }
            _ => {
                // One log line per denial, at most one per 10 s per client after a burst of 3.
                let now_ns = self.clock_origin.elapsed().as_nanos() as u64;
                if self.denial_log.check(peer.ip(), now_ns).is_ok() {
                    self.sink.record(
                        Level::Warning,
                        &format!("Refused client {client}: {refusal}"),
                    );
                }
                SessionOutcome::Refused(refusal.name().to_owned())
            }
        };
        let record = SessionRecord {
            id,
            peer,
            outcome,
            duration: Duration::ZERO,
            work_issued: false,
            work_time: None,
            tls: None,
            n_bits: self.options.session.n_bits,
        };
        emit(&record, &client, &self.counters, self.records.as_ref());
        self.end_of_once();
    }
}

impl TlslpServer {
    fn client_id(&self, peer: SocketAddr) -> String {
        self.options
            .client_ids
            .id(peer.ip(), time::OffsetDateTime::now_utc())
            .to_string()
    }

    /// The reference's lines for a new connection. They name the client by
    /// its keyed id unless the operator asked for addresses, or this is the
    /// tutorial's one session on loopback (the reference's golden log).
    fn log_connection(&self, peer: SocketAddr) {
        let tutorial_on_loopback = self.options.once && peer.ip().is_loopback();
        let client = if self.options.log_client_ip || tutorial_on_loopback {
            peer.ip().to_string()
        } else {
            self.client_id(peer)
        };
        if self.options.print_stdout {
            let _ = writeln!(
                std::io::stdout(),
                "Connection from ('{client}', {})",
                peer.port()
            );
        }
        self.sink.record(
            Level::Info,
            &format!("Connection from address: {}", py_repr(&client)),
        );
        self.sink.record(
            Level::Debug,
            &format!("Connection from port: {}", peer.port()),
        );
    }

    fn end_of_once(&self) {
        if self.options.once {
            self.once_done.cancel();
        }
    }
}

/// The sessions' clock: tokio's, so paused-time tests step it too.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// tlslp listens on TCP only; a Unix peer (never seen) reads as 0.0.0.0:0.
fn socket_addr(peer: Peer) -> SocketAddr {
    match peer {
        Peer::Tcp(address) => address,
        Peer::Unix { .. } => SocketAddr::from(([0, 0, 0, 0], 0)),
    }
}

/// One admitted session: the exchange of lines until DONE, FAIL or an error.
async fn session(
    id: u64,
    stream: Stream,
    peer: SocketAddr,
    options: &ServerOptions,
    config: Arc<SessionConfig>,
    sink: &dyn EventSink,
) -> SessionRecord {
    let started = Instant::now();
    let mut record = SessionRecord {
        id,
        peer,
        outcome: SessionOutcome::Error,
        duration: Duration::ZERO,
        work_issued: false,
        work_time: None,
        tls: None,
        n_bits: config.n_bits,
    };
    if let Either::Right(tls) = &stream {
        let summary = tessera_tls::HandshakeSummary::of(tls.get_ref().1);
        record.tls = Some((summary.protocol, summary.cipher_suite));
    }
    let reply_timeout = config.timeouts.reply;
    let mut session = ServerSession::new(config, rand::random(), now());
    let mut reader = LineReader::new(stream);
    let result: Result<(), Error> = async {
        loop {
            while let Some(line) = session.poll_transmit() {
                reader.send_line(&line, reply_timeout).await?;
            }
            for event in std::iter::from_fn(|| session.poll_event()) {
                sink.record(event.level, &event.message);
            }
            let Some(deadline) = session.poll_timeout() else {
                return Ok(());
            };
            match reader.next_line(deadline.into(), "a reply").await {
                Ok(line) => session.handle_line(&line, now()),
                Err(Error::Timeout(_)) => session.handle_timeout(now()),
                Err(error @ (Error::LineTooLong | Error::InvalidUtf8)) => {
                    session.handle_framing_error(&error);
                }
                Err(error) => return Err(error),
            }
        }
    }
    .await;
    // close_notify, best effort (peers need not send or wait for it).
    let mut stream = reader.into_inner();
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
    record.work_issued = session.work_issued();
    record.work_time = session.work_time();
    record.outcome = match (result, session.outcome()) {
        (Ok(()), Some(Outcome::Done)) => SessionOutcome::Done,
        (Ok(()), Some(Outcome::Fail(reason))) => SessionOutcome::Fail(reason.clone()),
        (result, outcome) => {
            let (error, outcome) = match (result, outcome) {
                (Ok(()), Some(Outcome::TimedOut(awaiting))) => (
                    Error::Timeout(awaiting.description()).to_string(),
                    SessionOutcome::Timeout,
                ),
                (Err(error @ Error::Timeout(_)), _) => (error.to_string(), SessionOutcome::Timeout),
                (Err(error @ Error::Eof), _) => (error.to_string(), SessionOutcome::Eof),
                (Err(error), _) => (error.to_string(), SessionOutcome::Error),
                (Ok(()), _) => ("ended early".to_owned(), SessionOutcome::Error),
            };
            sink.record(
                Level::Error,
                &format!("Unhandled exception in session: {error}"),
            );
            outcome
        }
    };
    sink.record(Level::Info, "Connection closed");
    if options.print_stdout {
        let _ = writeln!(std::io::stdout(), "Connection closed");
    }
    record.duration = started.elapsed();
    record
}
