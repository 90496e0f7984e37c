//! The tlslp client driver: tries the ports in order (first TCP + TLS success
//! wins), answers the server through a [`ClientSession`], solves WORK with
//! tessera-pow on every core on blocking threads (counting candidates into
//! `ClientOptions::work_counter` for a progress display), and reports how the session
//! ended so the program can exit non-zero on any failure (defect D1).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_tls::rustls::pki_types::ServerName;
use tessera_tls::rustls::ClientConfig;
use tessera_tls::tokio_rustls::client::TlsStream;
use tessera_tls::tokio_rustls::TlsConnector;
use tessera_tls::HandshakeSummary;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::LineReader;
use crate::client::{ClientOutcome, ClientSession};
use crate::event::Level;
use crate::logfile::EventSink;
use crate::profile::Profile;
use crate::repr::py_repr;
use crate::Error;

/// How the client runs.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Host to connect to (also the TLS server name).
    pub host: String,
    /// Ports tried in order.
    pub ports: Vec<u16>,
    /// TLS configuration.
    pub tls: Arc<ClientConfig>,
    /// Deadline for connect + handshake, and for each server line. Default 10 s.
    pub read_timeout: Duration,
    /// Deadline for solving WORK. Default 1800 s.
    pub work_timeout: Duration,
    /// Solver threads; `None` = every core.
    pub threads: Option<usize>,
    /// Body values.
    pub profile: Arc<Profile>,
    /// Count WORK candidates into this counter too (for a progress display).
    pub work_counter: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// Print the reference's stdout lines (`Connected to …`, `Connection closed.`).
    pub print_stdout: bool,
}

/// How a session ended, from the client's side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// DONE answered with OK.
    Done,
    /// The server sent `FAIL <text>`.
    ServerFail(String),
    /// Something else went wrong after connecting.
    Error(String),
}

/// What one client run did.
#[derive(Clone, Debug)]
pub struct ClientReport {
    /// The port that connected.
    pub port: u16,
    /// How the session ended.
    pub end: SessionEnd,
    /// TLS version and cipher suite.
    pub handshake: HandshakeSummary,
    /// WORK: candidates tried and time taken.
    pub work: Option<(u64, Duration)>,
    /// Connect to close.
    pub duration: Duration,
}

/// Connects to the first port that accepts TCP and TLS and runs one session.
///
/// # Errors
/// [`Error::Unreachable`] when no port could be connected (the program exits 1).
pub async fn connect_and_run(
    options: &ClientOptions,
    sink: &dyn EventSink,
) -> Result<ClientReport, Error> {
    let started = Instant::now();
    let name = tessera_tls::server_name(&options.host).map_err(|e| Error::Config(e.to_string()))?;
    let mut connected = None;
    for &port in &options.ports {
        match connect(&options.host, port, &name, options).await {
            Ok(tls) => {
                connected = Some((port, tls));
                break;
            }
            Err(error) => sink.record(
                Level::Warning,
                &format!(
                    "Can't connect to {}:{port}: {error}",
                    py_repr(&options.host)
                ),
            ),
        }
    }
    let Some((port, tls)) = connected else {
        sink.record(Level::Critical, "Not able to connect to any port.  Exiting");
        return Err(Error::Unreachable);
    };
    sink.record(Level::Info, &format!("Connected to {port}"));
    if options.print_stdout {
        let _ = writeln!(std::io::stdout(), "Connected to {port}");
    }
    let handshake = HandshakeSummary::of(tls.get_ref().1);
    let mut work = None;
    let end = run_session(tls, options, sink, &mut work).await;
    if let SessionEnd::Error(error) = &end {
        sink.record(Level::Error, &format!("Client failed: {error}"));
    }
    sink.record(Level::Info, "Connection closed.");
    if options.print_stdout {
        let _ = writeln!(std::io::stdout(), "Connection closed.");
    }
    Ok(ClientReport {
        port,
        end,
        handshake,
        work,
        duration: started.elapsed(),
    })
}

async fn connect(
    host: &str,
    port: u16,
    name: &ServerName<'static>,
    options: &ClientOptions,
) -> Result<TlsStream<TcpStream>, String> {
    let attempt = async {
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|_| format!("Failed to connect to {host}:{port}"))?;
        let _ = tcp.set_nodelay(true);
        TlsConnector::from(options.tls.clone())
            .connect(name.clone(), tcp)
            .await
            .map_err(|e| handshake_failure(host, port, &e))
    };
    tokio::time::timeout(options.read_timeout, attempt)
        .await
        .map_err(|_| format!("Failed to connect to {host}:{port} (timed out)"))?
}

/// Why a handshake failed, in words. A server that closes the connection
/// before answering the ClientHello refused the client at admission (its
/// access list, rate limit or connection caps), before any TLS: say that,
/// rather than rustls' `tls handshake eof`.
fn handshake_failure(host: &str, port: u16, error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => format!(
            "{host}:{port} closed the connection before the TLS handshake: the server \
             refused this client (access list, rate limit or connection cap; its log says which)"
        ),
        _ => format!("TLS handshake with {host}:{port} failed: {error}"),
    }
}

async fn run_session(
    tls: TlsStream<TcpStream>,
    options: &ClientOptions,
    sink: &dyn EventSink,
    work: &mut Option<(u64, Duration)>,
) -> SessionEnd {
    let mut session = ClientSession::new(options.profile.clone(), options.read_timeout, now());
    let mut reader = LineReader::new(tls);
    let end = 'session: loop {
        while let Some(reply) = session.poll_transmit() {
            if let Err(error) = reader.send_line(&reply, options.read_timeout).await {
                break 'session SessionEnd::Error(error.to_string());
            }
        }
        for event in std::iter::from_fn(|| session.poll_event()) {
            sink.record(event.level, &event.message);
        }
        match session.outcome() {
            Some(ClientOutcome::Done) => break SessionEnd::Done,
            Some(ClientOutcome::ServerFail(text)) => break SessionEnd::ServerFail(text.clone()),
            Some(ClientOutcome::Failed(error)) => break SessionEnd::Error(error.to_string()),
            None => {}
        }
        if let Some(puzzle) = session.poll_work() {
            // Solve while watching the connection: a server that closes (or
            // fails the session) stops the solver at once, not at the end of
            // the work timeout. Dropping the solving future cancels it.
            let solving = solve(puzzle, options, work);
            tokio::pin!(solving);
            let watch_until = tokio::time::Instant::now() + options.work_timeout;
            loop {
                tokio::select! {
                    solved = &mut solving => {
                        match solved {
                            Ok(suffix) => session.handle_solution(&suffix, now()),
                            Err(error) => session.handle_work_error(error),
                        }
                        break;
                    }
                    line = reader.next_line(watch_until, "the server") => match line {
                        Ok(line) => {
                            session.handle_line(&line, now());
                            if session.outcome().is_some() {
                                break;
                            }
                        }
                        Err(error) => {
                            session.handle_work_error(error);
                            break;
                        }
                    },
                }
            }
            continue;
        }
        let Some(deadline) = session.poll_timeout() else {
            break SessionEnd::Error("the session waits for nothing".into());
        };
        match reader.next_line(deadline.into(), "the server").await {
            Ok(line) => session.handle_line(&line, now()),
            Err(Error::Timeout(_)) => session.handle_timeout(now()),
            Err(error) => break SessionEnd::Error(error.to_string()),
        }
    };
    let mut tls = reader.into_inner();
    let _ = tokio::time::timeout(Duration::from_secs(1), tls.shutdown()).await;
    end
}

/// The session's clock: tokio's, so paused-time tests step it too.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

async fn solve(
    puzzle: tessera_pow::TlslpPuzzle,
    options: &ClientOptions,
    work: &mut Option<(u64, Duration)>,
) -> Result<String, Error> {
    let mut search = tessera_pow::SearchOptions::default();
    search.timeout(options.work_timeout);
    if let Some(threads) = options.threads {
        search.threads(threads);
    }
    if let Some(counter) = &options.work_counter {
        search.progress_counter(counter.clone());
    }
    let started = Instant::now();
    let result = tessera_pow::solve_tlslp_async(puzzle, search).await;
    let solution = result.map_err(Error::Work)?;
    *work = Some((solution.candidates, started.elapsed()));
    Ok(solution.suffix)
}
