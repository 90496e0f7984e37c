//! A tiny TLS line service on loopback, used by the demo and the benchmark: the
//! client sends one line, the server answers `hello <client CN>: <line>` and closes.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tessera_serve::{Admitted, Handler, Listener, LocalAddr, Stage, StageConfig, Stream};
use tessera_tls::rustls::pki_types::ServerName;
use tessera_tls::rustls::{ClientConfig, ServerConfig};
use tessera_tls::tokio_rustls::TlsConnector;
use tessera_tls::HandshakeSummary;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Longest line either side reads.
const MAX_LINE: u64 = 1024;
/// Deadline for the handshake and each read.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the service on 127.0.0.1 on a free port, behind tessera-serve's
/// stage like every server (no per-client cap: benchmarks connect from one
/// address); it runs until the task is aborted.
pub(crate) async fn spawn_server(
    config: Arc<ServerConfig>,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let mut stage = StageConfig::default();
    stage
        .tls(config)
        .max_connections(MAX_CONNECTIONS)
        .max_connections_per_client(MAX_CONNECTIONS)
        .handshake_timeout(STEP_TIMEOUT);
    let stage = Arc::new(
        Stage::new(&LocalAddr::Tcp(address), stage)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
    );
    let task = tokio::spawn(stage.run(
        Listener::from(listener),
        Arc::new(Hello),
        std::future::pending(),
    ));
    Ok((address, task))
}

/// Connections the service holds at once.
const MAX_CONNECTIONS: usize = 4096;

/// The service's side of a connection.
struct Hello;

impl Handler for Hello {
    async fn serve(self: Arc<Self>, connection: Admitted) {
        let client = connection
            .certificate
            .as_ref()
            .and_then(|certificate| certificate.common_name().map(str::to_owned))
            .unwrap_or_else(|| "anonymous".to_owned());
        if let Err(error) = answer(connection.stream, &client).await {
            tracing::debug!(%error, "loopback session failed");
        }
    }
}

async fn answer(stream: Stream, client: &str) -> io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    tokio::time::timeout(
        STEP_TIMEOUT,
        (&mut reader).take(MAX_LINE).read_line(&mut line),
    )
    .await??;
    let mut stream = reader.into_inner();
    stream
        .write_all(format!("hello {client}: {}\n", line.trim_end()).as_bytes())
        .await?;
    stream.shutdown().await
}

/// One session: connect, handshake, send `line`, read the answer.
/// Returns the answer and what the handshake negotiated.
pub(crate) async fn request(
    address: SocketAddr,
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    line: &str,
) -> io::Result<(String, HandshakeSummary)> {
    let work = async {
        let tcp = TcpStream::connect(address).await?;
        tcp.set_nodelay(true)?;
        let mut tls = TlsConnector::from(config).connect(server_name, tcp).await?;
        let summary = HandshakeSummary::of(tls.get_ref().1);
        tls.write_all(format!("{line}\n").as_bytes()).await?;
        tls.flush().await?;
        let mut answer = String::new();
        BufReader::new(&mut tls)
            .take(MAX_LINE)
            .read_line(&mut answer)
            .await?;
        if answer.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed without answering",
            ));
        }
        let _ = tls.shutdown().await;
        Ok((answer.trim_end().to_owned(), summary))
    };
    tokio::time::timeout(STEP_TIMEOUT, work)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "session timed out"))?
}
