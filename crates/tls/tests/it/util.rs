//! Shared helpers: a loopback TLS server that records what it saw, and a client.
//!
//! The server runs on tessera-serve's stage: an integration test links the
//! one `tessera-tls` library that tessera-serve uses too, so the dev-dependency
//! loop is harmless here.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{CertificateParams, KeyPair};
use tessera_serve::{Admitted, Handler, Listener, Peer, Refusal, Stage, StageConfig};
use tessera_tls::rustls::pki_types::ServerName;
use tessera_tls::rustls::{ClientConfig, ServerConfig};
use tessera_tls::tokio_rustls::TlsConnector;
use tessera_tls::{CertificateInfo, HandshakeSummary};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Every network wait in these tests ends by then.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// What the server saw of one connection.
#[derive(Debug)]
pub(crate) struct Seen {
    pub(crate) result: Result<Option<CertificateInfo>, String>,
    pub(crate) received: Vec<u8>,
}

/// A server on 127.0.0.1:0, on tessera-serve's connection stage as every
/// Tessera server: handshakes, records the client certificate and the bytes it
/// read, answers "ok\n", and reports each connection (or failed handshake) on
/// the channel.
pub(crate) async fn server(config: Arc<ServerConfig>) -> (SocketAddr, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let listener = Listener::from(listener);
    let mut stage = StageConfig::default();
    stage.tls(config).handshake_timeout(TIMEOUT);
    let stage = Arc::new(Stage::new(&listener.local_addr().unwrap(), stage).unwrap());
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(stage.run(listener, Arc::new(Recorder { tx }), std::future::pending()));
    (address, rx)
}

/// Reports what the test server saw of each connection.
struct Recorder {
    tx: mpsc::Sender<Seen>,
}

impl Handler for Recorder {
    async fn serve(self: Arc<Self>, connection: Admitted) {
        let mut stream = connection.stream;
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(TIMEOUT, stream.read(&mut buf))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(0);
        let _ = stream.write_all(b"ok\n").await;
        let _ = stream.shutdown().await;
        let seen = Seen {
            result: Ok(connection.certificate),
            received: buf[..n].to_vec(),
        };
        let _ = self.tx.send(seen).await;
    }

    fn refused(&self, _peer: Peer, _id: u64, refusal: &Refusal) {
        let _ = self.tx.try_send(Seen {
            result: Err(refusal.to_string()),
            received: Vec::new(),
        });
    }
}

/// Connects, sends "hi", reads the answer. Errors as text.
pub(crate) async fn client(
    address: SocketAddr,
    config: Arc<ClientConfig>,
    host: &str,
) -> Result<(String, HandshakeSummary), std::io::Error> {
    let name: ServerName<'static> = tessera_tls::server_name(host).unwrap();
    let work = async {
        let tcp = TcpStream::connect(address).await?;
        let mut tls = TlsConnector::from(config).connect(name, tcp).await?;
        let summary = HandshakeSummary::of(tls.get_ref().1);
        tls.write_all(b"hi").await?;
        let mut answer = Vec::new();
        tls.read_to_end(&mut answer).await?;
        Ok((String::from_utf8_lossy(&answer).into_owned(), summary))
    };
    tokio::time::timeout(TIMEOUT, work)
        .await
        .expect("client timed out")
}

/// The next connection report, with a timeout.
pub(crate) async fn next_seen(rx: &mut mpsc::Receiver<Seen>) -> Seen {
    tokio::time::timeout(TIMEOUT, rx.recv())
        .await
        .expect("server report timed out")
        .expect("server gone")
}

/// A self-signed certificate valid between two offsets (days) from now, written to dir.
pub(crate) fn dated_certificate(
    dir: &Path,
    name: &str,
    from_days: i64,
    to_days: i64,
) -> (std::path::PathBuf, std::path::PathBuf, CertificateInfo) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::days(from_days);
    params.not_after = now + time::Duration::days(to_days);
    let cert = params.self_signed(&key).unwrap();
    let cert_path = dir.join(format!("{name}-cert.pem"));
    let key_path = dir.join(format!("{name}-key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let info = CertificateInfo::parse(cert.der(), name).unwrap();
    (cert_path, key_path, info)
}
