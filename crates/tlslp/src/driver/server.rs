//! The tlslp server driver: a task per session behind a global connection cap
//! (a semaphore permit taken before `accept`, so excess clients wait in the
//! kernel backlog) and a per-address cap; a handshake deadline and a deadline
//! per reply line; graceful shutdown. Fixes defects D2, D3, D4 and D16: a bad
//! handshake, a silent peer or a trickler ends only its own session.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_tls::rustls::ServerConfig;
use tessera_tls::tokio_rustls::TlsAcceptor;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::LineReader;
use crate::codec::encode;
use crate::event::Level;
use crate::logfile::EventSink;
use crate::repr::py_repr;
use crate::server::{Awaiting, Outcome, ServerSession, SessionConfig};
use crate::Error;

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// TLS configuration (mutual TLS unless `--insecure`).
    pub tls: Arc<ServerConfig>,
    /// What every session uses.
    pub session: Arc<SessionConfig>,
    /// Deadline for the WORK reply. Default 1800 s.
    pub work_timeout: Duration,
    /// Deadline for every other reply. Default 10 s.
    pub other_timeout: Duration,
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
    /// Pseudonyms for client addresses in records and denial logs.
    pub client_ids: tessera_guard::ClientIds,
    /// Raise WORK difficulty under load; `None` keeps `session.n_bits`.
    pub adaptive_work: Option<AdaptiveWork>,
    /// Relays whose connections start with a PROXY v1/v2 header naming the client.
    pub trusted_relays: Option<tessera_guard::Acl>,
    /// How long a trusted relay may take to send its PROXY header. Default 5 s.
    pub proxy_timeout: Duration,
}

/// Adaptive proof of work: above `threshold` concurrent sessions, one more bit
/// for every `step` sessions, up to `max_bits`; back down as load drops.
#[derive(Clone, Copy, Debug)]
pub struct AdaptiveWork {
    /// Sessions at once before difficulty rises.
    pub threshold: usize,
    /// Extra sessions per extra bit.
    pub step: usize,
    /// The highest n_bits it will ask for.
    pub max_bits: i64,
}

impl AdaptiveWork {
    /// The n_bits for a session starting with `active` sessions running.
    pub fn bits(&self, base: i64, active: usize) -> i64 {
        if active <= self.threshold {
            return base;
        }
        let extra = 1 + (active - self.threshold - 1) / self.step.max(1);
        (base + extra as i64).min(self.max_bits.max(base))
    }
}

impl ServerOptions {
    /// The reference's defaults around a TLS config and session config.
    pub fn new(tls: Arc<ServerConfig>, session: Arc<SessionConfig>) -> Self {
        Self {
            tls,
            session,
            work_timeout: Duration::from_secs(1800),
            other_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_per_address: 32,
            shutdown_grace: Duration::from_secs(10),
            once: false,
            print_stdout: false,
            guard: None,
            client_ids: tessera_guard::ClientIds::random(),
            adaptive_work: None,
            trusted_relays: None,
            proxy_timeout: Duration::from_secs(5),
        }
    }
}

/// One session's structured record (also emitted as a tracing event).
#[derive(Clone, Debug)]
pub struct SessionRecord {
    /// Sequential id within this server run.
    pub id: u64,
    /// Peer address.
    pub peer: SocketAddr,
    /// How it ended: `done`, `fail:<reason>`, `timeout`, `eof`, `handshake`, `refused`, `shutdown`, `error`.
    pub outcome: String,
    /// Wall time from accept to close.
    pub duration: Duration,
    /// Time between sending WORK and the valid reply.
    pub work_time: Option<Duration>,
    /// TLS version and cipher suite, when the handshake completed.
    pub tls: Option<(String, String)>,
    /// The WORK difficulty this session was given.
    pub n_bits: i64,
}

/// Counters of a finished server run.
#[derive(Clone, Debug, Default)]
pub struct ServerReport {
    /// Sessions that ended after DONE.
    pub done: u64,
    /// Sessions that ended with a FAIL line.
    pub failed: u64,
    /// Sessions that failed in the TLS handshake or were refused by a cap.
    pub refused: u64,
    /// Sessions that timed out, lost the peer or hit an I/O error.
    pub aborted: u64,
}

#[derive(Default)]
struct Counters {
    done: AtomicU64,
    failed: AtomicU64,
    refused: AtomicU64,
    aborted: AtomicU64,
    next_id: AtomicU64,
}

/// Serves until `shutdown` resolves (or after one connection with `once`),
/// then stops accepting and lets sessions finish within the grace period.
/// `records` receives one record per session if given.
///
/// # Errors
/// Only if the listener fails in a way that is not per-connection.
pub async fn serve(
    listener: TcpListener,
    options: ServerOptions,
    sink: Arc<dyn EventSink>,
    records: Option<mpsc::UnboundedSender<SessionRecord>>,
    shutdown: impl Future<Output = ()>,
) -> Result<ServerReport, Error> {
    let permits = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let shared = Arc::new(Shared {
        // The semaphore bounds the total (excess clients wait in the backlog); this bounds each client.
        per_client: tessera_guard::ConnectionLimits::new(
            options.max_connections.max(1),
            options.max_per_address,
            64,
        ),
        clock_origin: Instant::now(),
        denial_log: tessera_guard::Limiter::new(&tessera_guard::LimiterConfig {
            rate: 0.1,
            burst: 3,
            ..Default::default()
        })
        .map_err(|e| Error::Config(e.to_string()))?,
        active: std::sync::atomic::AtomicUsize::new(0),
        last_bits: AtomicI64::new(options.session.n_bits),
        counters: Counters::default(),
        acceptor: TlsAcceptor::from(options.tls.clone()),
        cancel: CancellationToken::new(),
        options: Arc::new(options),
        sink,
        records,
    });
    let tracker = TaskTracker::new();
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => permit.map_err(|e| Error::Io(e.to_string()))?,
        };
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // EMFILE and friends: pause instead of spinning; never stop serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let id = shared.counters.next_id.fetch_add(1, Ordering::Relaxed);
        let task = connection(shared.clone(), id, tcp, peer, permit);
        if shared.options.once {
            task.await;
            break;
        }
        tracker.spawn(task);
    }
    // Stop accepting at once: new clients are refused, not left in the backlog.
    drop(listener);
    tracker.close();
    if tokio::time::timeout(shared.options.shutdown_grace, tracker.wait())
        .await
        .is_err()
    {
        shared.cancel.cancel();
        tracker.wait().await;
    }
    let counters = &shared.counters;
    Ok(ServerReport {
        done: counters.done.load(Ordering::Relaxed),
        failed: counters.failed.load(Ordering::Relaxed),
        refused: counters.refused.load(Ordering::Relaxed),
        aborted: counters.aborted.load(Ordering::Relaxed),
    })
}

/// What every connection task of one server shares.
struct Shared {
    options: Arc<ServerOptions>,
    sink: Arc<dyn EventSink>,
    records: Option<mpsc::UnboundedSender<SessionRecord>>,
    per_client: Arc<tessera_guard::ConnectionLimits>,
    clock_origin: Instant,
    denial_log: tessera_guard::Limiter,
    active: std::sync::atomic::AtomicUsize,
    last_bits: AtomicI64,
    counters: Counters,
    acceptor: TlsAcceptor,
    cancel: CancellationToken,
}

/// One connection: the client address (from a PROXY header when the peer is a
/// trusted relay), admission before any TLS byte, then the session.
async fn connection(
    shared: Arc<Shared>,
    id: u64,
    mut tcp: TcpStream,
    relay: SocketAddr,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let options = &shared.options;
    let peer = match &options.trusted_relays {
        Some(relays) if relays.allows(Some(relay.ip())) => {
            let header = tessera_serve::read_proxy_header(&mut tcp);
            match tokio::time::timeout(options.proxy_timeout, header).await {
                Ok(Ok(source)) => source.unwrap_or(relay),
                Ok(Err(error)) => {
                    refuse(&shared, id, relay, &error.to_string());
                    return;
                }
                Err(_) => {
                    refuse(&shared, id, relay, "no PROXY header in time");
                    return;
                }
            }
        }
        _ => relay,
    };
    let now_ns = shared.clock_origin.elapsed().as_nanos() as u64;
    // Connection stage, before any TLS byte: ACL and rate limit, then the per-client cap.
    let slot = admit(options.guard.as_deref(), peer.ip(), now_ns).and_then(|()| {
        shared
            .per_client
            .acquire(peer.ip())
            .map_err(|_| "too_many_connections")
    });
    let slot = match slot {
        Ok(slot) => slot,
        Err(reason) => {
            drop(tcp);
            drop(permit);
            refuse(&shared, id, peer, reason);
            return;
        }
    };
    let client = options
        .client_ids
        .id(peer.ip(), time::OffsetDateTime::now_utc());
    let config = session_config(
        options,
        shared.active.load(Ordering::Relaxed) + 1,
        &shared.last_bits,
        &*shared.sink,
    );
    let _permit = permit;
    let _slot = slot;
    shared.active.fetch_add(1, Ordering::Relaxed);
    let record = session(
        id,
        tcp,
        peer,
        &shared.acceptor,
        options,
        config,
        &*shared.sink,
        &shared.counters,
        &shared.cancel,
    )
    .await;
    shared.active.fetch_sub(1, Ordering::Relaxed);
    emit(&record, &client, shared.records.as_ref());
}

/// Counts, logs (rate-limited per client) and records a refused connection.
fn refuse(shared: &Shared, id: u64, peer: SocketAddr, reason: &str) {
    shared.counters.refused.fetch_add(1, Ordering::Relaxed);
    let client = shared
        .options
        .client_ids
        .id(peer.ip(), time::OffsetDateTime::now_utc());
    // One log line per denial, at most one per 10 s per client after a burst of 3.
    let now_ns = shared.clock_origin.elapsed().as_nanos() as u64;
    if shared.denial_log.check(peer.ip(), now_ns).is_ok() {
        shared.sink.record(
            Level::Warning,
            &format!("Refused client {client}: {reason}"),
        );
    }
    let record = SessionRecord {
        id,
        peer,
        outcome: format!("refused:{reason}"),
        duration: Duration::ZERO,
        work_time: None,
        tls: None,
        n_bits: shared.options.session.n_bits,
    };
    emit(&record, &client, shared.records.as_ref());
}

/// The guard's connection-stage decision: `Err(reason)` closes the connection.
fn admit(
    guard: Option<&tessera_guard::Chain>,
    address: std::net::IpAddr,
    now_ns: u64,
) -> Result<(), &'static str> {
    use tessera_guard::Guard;
    let Some(guard) = guard else {
        return Ok(());
    };
    let request = tessera_guard::Request {
        address: Some(address),
        path: None,
        cert: None,
    };
    let clock = tessera_guard::Clock {
        monotonic_ns: now_ns,
        wall: time::OffsetDateTime::now_utc(),
    };
    match guard.check(&request, clock) {
        tessera_guard::Decision::Allow => Ok(()),
        tessera_guard::Decision::Deny(denial) => Err(denial.reason.name()),
    }
}

/// The session config for a new session: the base one, or with n_bits raised
/// by adaptive work (each change logged once).
fn session_config(
    options: &ServerOptions,
    active: usize,
    last_bits: &AtomicI64,
    sink: &dyn EventSink,
) -> Arc<SessionConfig> {
    let Some(adaptive) = options.adaptive_work else {
        return options.session.clone();
    };
    let bits = adaptive.bits(options.session.n_bits, active);
    if last_bits.swap(bits, Ordering::Relaxed) != bits {
        sink.record(
            Level::Warning,
            &format!("WORK difficulty now {bits} bits ({active} sessions running)"),
        );
    }
    if bits == options.session.n_bits {
        options.session.clone()
    } else {
        Arc::new(SessionConfig {
            n_bits: bits,
            ..(*options.session).clone()
        })
    }
}

/// The structured record of a session (tracing) and to the caller's channel.
fn emit(
    record: &SessionRecord,
    client: &str,
    records: Option<&mpsc::UnboundedSender<SessionRecord>>,
) {
    tracing::info!(target: "tlslp::session", id = record.id, client, outcome = %record.outcome,
        duration_ms = record.duration.as_millis() as u64, work_ms = record.work_time.map(|t| t.as_millis() as u64),
        n_bits = record.n_bits, "session");
    if let Some(records) = records {
        let _ = records.send(record.clone());
    }
}

#[allow(clippy::too_many_arguments)]
async fn session(
    id: u64,
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: &TlsAcceptor,
    options: &ServerOptions,
    config: Arc<SessionConfig>,
    sink: &dyn EventSink,
    counters: &Counters,
    cancel: &CancellationToken,
) -> SessionRecord {
    let started = Instant::now();
    let mut record = SessionRecord {
        id,
        peer,
        outcome: String::new(),
        duration: Duration::ZERO,
        work_time: None,
        tls: None,
        n_bits: config.n_bits,
    };
    let _ = tcp.set_nodelay(true);
    if options.print_stdout {
        let _ = writeln!(
            std::io::stdout(),
            "Connection from ('{}', {})",
            peer.ip(),
            peer.port()
        );
    }
    sink.record(
        Level::Info,
        &format!(
            "Connection from address: {}",
            py_repr(&peer.ip().to_string())
        ),
    );
    sink.record(
        Level::Debug,
        &format!("Connection from port: {}", peer.port()),
    );

    let handshake = tokio::select! {
        () = cancel.cancelled() => None,
        result = tokio::time::timeout(options.handshake_timeout, acceptor.accept(tcp)) => Some(result),
    };
    let tls = match handshake {
        Some(Ok(Ok(tls))) => tls,
        other => {
            let reason = match other {
                None => "shutdown".to_owned(),
                Some(Err(_)) => "handshake timed out".to_owned(),
                Some(Ok(Err(error))) => error.to_string(),
                Some(Ok(Ok(_))) => unreachable!("matched above"),
            };
            sink.record(Level::Error, &format!("TLS handshake failed: {reason}"));
            sink.record(Level::Info, "Connection closed");
            counters.refused.fetch_add(1, Ordering::Relaxed);
            record.outcome = "handshake".into();
            record.duration = started.elapsed();
            return record;
        }
    };
    let summary = tessera_tls::HandshakeSummary::of(tls.get_ref().1);
    record.tls = Some((summary.protocol, summary.cipher_suite));

    let mut session = ServerSession::new(config, rand::random());
    let mut reader = LineReader::new(tls);
    let mut work_sent: Option<Instant> = None;
    let result: Result<(), Error> = async {
        loop {
            while let Some(line) = session.poll_transmit() {
                let bytes = encode(&line)?;
                let deadline = tokio::time::Instant::now() + options.other_timeout;
                tokio::time::timeout_at(deadline, reader.get_mut().write_all(&bytes))
                    .await
                    .map_err(|_| Error::Timeout("sending"))?
                    .map_err(|e| Error::Io(e.to_string()))?;
                if line.starts_with("WORK ") {
                    work_sent = Some(Instant::now());
                }
            }
            for event in std::iter::from_fn(|| session.poll_event()) {
                sink.record(event.level, &event.message);
            }
            let Some(awaiting) = session.awaiting() else {
                return Ok(());
            };
            let (timeout, what) = match awaiting {
                Awaiting::Work => (options.work_timeout, "the WORK reply"),
                _ => (options.other_timeout, "a reply"),
            };
            let deadline = tokio::time::Instant::now() + timeout;
            let line = tokio::select! {
                () = cancel.cancelled() => return Err(Error::Io("server shutting down".into())),
                line = reader.next_line(deadline, what) => line,
            };
            match line {
                Ok(line) => {
                    session.handle_line(&line);
                    if awaiting == Awaiting::Work && session.suffix().is_some() {
                        record.work_time = work_sent.map(|t| t.elapsed());
                    }
                }
                Err(error @ (Error::LineTooLong | Error::InvalidUtf8)) => {
                    session.handle_framing_error(&error);
                }
                Err(error) => return Err(error),
            }
        }
    }
    .await;
    // close_notify, best effort (peers need not send or wait for it).
    let mut tls = reader.into_inner();
    let _ = tokio::time::timeout(Duration::from_secs(1), tls.shutdown()).await;
    match (&result, session.outcome()) {
        (Ok(()), Some(Outcome::Done)) => {
            counters.done.fetch_add(1, Ordering::Relaxed);
            record.outcome = "done".into();
        }
        (Ok(()), Some(Outcome::Fail(reason))) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            record.outcome = format!("fail:{reason:?}").to_lowercase();
        }
        _ => {
            let error = result
                .as_ref()
                .err()
                .map_or_else(|| "ended early".to_owned(), ToString::to_string);
            sink.record(
                Level::Error,
                &format!("Unhandled exception in session: {error}"),
            );
            counters.aborted.fetch_add(1, Ordering::Relaxed);
            record.outcome = match result {
                Err(Error::Timeout(_)) => "timeout".into(),
                Err(Error::Eof) => "eof".into(),
                _ => "error".into(),
            };
        }
    }
    sink.record(Level::Info, "Connection closed");
    if options.print_stdout {
        let _ = writeln!(std::io::stdout(), "Connection closed");
    }
    record.duration = started.elapsed();
    record
}
