//! The tlslp server driver: a task per session behind a global connection cap
//! (a semaphore permit taken before `accept`, so excess clients wait in the
//! kernel backlog) and a per-address cap; a handshake deadline and a deadline
//! per reply line; graceful shutdown. Fixes defects D2, D3, D4 and D16: a bad
//! handshake, a silent peer or a trickler ends only its own session.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
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
    let per_address: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    let counters = Arc::new(Counters::default());
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let acceptor = TlsAcceptor::from(options.tls.clone());
    let options = Arc::new(options);
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
        let id = counters.next_id.fetch_add(1, Ordering::Relaxed);
        let address_slot = AddressSlot::take(&per_address, peer.ip(), options.max_per_address);
        let task = {
            let (acceptor, options, sink, counters, records, cancel) = (
                acceptor.clone(),
                options.clone(),
                sink.clone(),
                counters.clone(),
                records.clone(),
                cancel.clone(),
            );
            async move {
                let _permit = permit;
                let record = match address_slot {
                    Some(_slot) => {
                        session(
                            id, tcp, peer, &acceptor, &options, &*sink, &counters, &cancel,
                        )
                        .await
                    }
                    None => {
                        drop(tcp);
                        counters.refused.fetch_add(1, Ordering::Relaxed);
                        sink.record(
                            Level::Debug,
                            &format!("Refused {}: too many sessions from this address", peer.ip()),
                        );
                        SessionRecord {
                            id,
                            peer,
                            outcome: "refused".into(),
                            duration: Duration::ZERO,
                            work_time: None,
                            tls: None,
                        }
                    }
                };
                tracing::info!(target: "tlslp::session", id = record.id, client = %client_id(peer.ip()), outcome = %record.outcome,
                    duration_ms = record.duration.as_millis() as u64, work_ms = record.work_time.map(|t| t.as_millis() as u64),
                    n_bits = options.session.n_bits, "session");
                if let Some(records) = records {
                    let _ = records.send(record);
                }
            }
        };
        if options.once {
            task.await;
            break;
        }
        tracker.spawn(task);
    }
    // Stop accepting at once: new clients are refused, not left in the backlog.
    drop(listener);
    tracker.close();
    if tokio::time::timeout(options.shutdown_grace, tracker.wait())
        .await
        .is_err()
    {
        cancel.cancel();
        tracker.wait().await;
    }
    Ok(ServerReport {
        done: counters.done.load(Ordering::Relaxed),
        failed: counters.failed.load(Ordering::Relaxed),
        refused: counters.refused.load(Ordering::Relaxed),
        aborted: counters.aborted.load(Ordering::Relaxed),
    })
}

#[allow(clippy::too_many_arguments)]
async fn session(
    id: u64,
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: &TlsAcceptor,
    options: &ServerOptions,
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

    let mut session = ServerSession::new(options.session.clone(), rand::random());
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

/// A per-address session slot, released on drop.
struct AddressSlot {
    map: Arc<Mutex<HashMap<IpAddr, usize>>>,
    address: IpAddr,
}

impl AddressSlot {
    fn take(map: &Arc<Mutex<HashMap<IpAddr, usize>>>, address: IpAddr, cap: usize) -> Option<Self> {
        let address = address.to_canonical();
        let mut counts = map.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(address).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(Self {
            map: map.clone(),
            address,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

/// A per-process pseudonym for a client address in structured records (raw
/// addresses stay in the reference log only, which is where the reference puts them).
fn client_id(address: IpAddr) -> String {
    use sha2::{Digest, Sha256};
    use std::sync::OnceLock;
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    let key = KEY.get_or_init(rand::random);
    let mut hasher = Sha256::new();
    hasher.update(key);
    hasher.update(address.to_canonical().to_string().as_bytes());
    hex::encode(&hasher.finalize()[..8])
}
