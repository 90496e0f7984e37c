//! The connection stage over loopback, with real TLS: what a client sees at
//! each step (admitted, refused by the guard or a cap, cut off by a
//! deadline), PROXY headers from trusted and untrusted peers, Unix sockets
//! and the graceful stop.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_guard::{Acl, AclDefault, Chain};
use tessera_serve::{Admitted, Handler, Listener, Peer, Refusal, Stage, StageConfig};
use tessera_tls::{server_config, ClientAuth, Identity, KeyType, Usage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;

/// Every network wait in these tests.
const WAIT: Duration = Duration::from_secs(20);

/// Answers each connection with what the stage found out, then holds it
/// open until the client closes (so it keeps its slot).
#[derive(Default)]
struct Report {
    refusals: Mutex<Vec<String>>,
}

impl Handler for Report {
    async fn serve(self: Arc<Self>, mut connection: Admitted) {
        let line = format!(
            "peer={} cert={} sni={}\n",
            connection.peer,
            connection.certificate.is_some(),
            connection.sni.as_deref().unwrap_or("-")
        );
        let _ = connection.stream.write_all(line.as_bytes()).await;
        let _ = connection.stream.flush().await;
        let mut rest = Vec::new();
        let _ = connection.stream.read_to_end(&mut rest).await;
    }

    fn refused(&self, _peer: Peer, _id: u64, refusal: &Refusal) {
        self.refusals
            .lock()
            .unwrap()
            .push(refusal.name().to_owned());
    }
}

struct Running {
    addr: SocketAddr,
    stage: Arc<Stage>,
    handler: Arc<Report>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().map(|stop| stop.send(()));
        tokio::time::timeout(WAIT, self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

async fn start(config: &StageConfig) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = Listener::from(listener);
    let stage = Arc::new(Stage::new(&listener.local_addr().unwrap(), config.clone()).unwrap());
    let handler = Arc::new(Report::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(stage.clone().run(listener, handler.clone(), async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stage,
        handler,
        stop: Some(stop),
        task,
    }
}

fn identity() -> Identity {
    tessera_tls::self_signed("localhost", &[], Usage::Server, KeyType::default(), 30)
        .unwrap()
        .identity()
        .unwrap()
}

fn tls_config() -> StageConfig {
    let mut config = StageConfig::default();
    config.tls(server_config(&identity(), ClientAuth::AnyCertificate).unwrap());
    config
}

/// Connects from `source` (a loopback address) to `addr`.
async fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    tokio::time::timeout(WAIT, socket.connect(addr))
        .await
        .unwrap()
        .unwrap()
}

/// A TLS client over `tcp` that reads the server's first line.
async fn tls_line(tcp: TcpStream) -> std::io::Result<String> {
    let config = tessera_tls::dangerous::insecure_client_config("127.0.0.1", None)
        .map_err(std::io::Error::other)?;
    let name = tessera_tls::server_name("localhost").map_err(std::io::Error::other)?;
    let work = async {
        let mut tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await?;
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while tls.read(&mut byte).await? == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    };
    tokio::time::timeout(WAIT, work).await?
}

/// Waits until the server closes `tcp` (EOF or reset), within [`WAIT`].
async fn closed_by_server(tcp: &mut TcpStream) {
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(WAIT, tcp.read(&mut buffer)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "expected a close, got {read:?}"
    );
}

/// Waits until the server ends `tcp`, whatever it sent first (a TLS alert).
async fn ended_by_server(tcp: &mut TcpStream) {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(WAIT, tcp.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the server kept the connection open");
}

#[tokio::test]
async fn admits_over_tls_with_sni_and_the_client_address() {
    let server = start(&tls_config()).await;
    let line = tls_line(connect_from("127.0.0.1", server.addr).await)
        .await
        .unwrap();
    assert!(line.starts_with("peer=127.0.0.1:"), "{line}");
    assert!(line.ends_with("cert=false sni=localhost"), "{line}");
    assert_eq!(server.stage.stats().admitted(), 1);
    server.stop().await;
}

#[tokio::test]
async fn the_per_client_cap_refuses_at_once_and_spares_other_clients() {
    let mut config = tls_config();
    config
        .max_connections_per_client(3)
        .handshake_timeout(WAIT * 3);
    let server = start(&config).await;
    // Three silent connections from one client hold its slots in the handshake.
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(connect_from("127.0.0.1", server.addr).await);
    }
    let mut fourth = connect_from("127.0.0.1", server.addr).await;
    closed_by_server(&mut fourth).await;
    // Another client is still served.
    let line = tls_line(connect_from("127.0.0.2", server.addr).await)
        .await
        .unwrap();
    assert!(line.starts_with("peer=127.0.0.2:"), "{line}");
    assert_eq!(
        *server.handler.refusals.lock().unwrap(),
        ["too_many_from_client"]
    );
    assert_eq!(server.stage.stats().refused("too_many_from_client"), 1);
    drop(silent);
    server.stop().await;
}

#[tokio::test]
async fn a_silent_client_is_cut_off_at_the_handshake_deadline() {
    let mut config = tls_config();
    config.handshake_timeout(Duration::from_millis(200));
    let server = start(&config).await;
    let mut silent = connect_from("127.0.0.1", server.addr).await;
    closed_by_server(&mut silent).await;
    assert_eq!(
        *server.handler.refusals.lock().unwrap(),
        ["handshake_timeout"]
    );
    // Its slot is free again: the same client gets in.
    assert_eq!(server.stage.open_connections(), 0);
    server.stop().await;
}

#[tokio::test]
async fn the_guard_refuses_before_any_tls_byte() {
    let acl = Acl::new(&["127.0.0.2"], &[] as &[&str], AclDefault::Deny).unwrap();
    let mut config = tls_config();
    config.guard(Arc::new(Chain::new().acl(acl)));
    let server = start(&config).await;
    let mut refused = connect_from("127.0.0.1", server.addr).await;
    // The server never speaks TLS to it: the first read is the close.
    closed_by_server(&mut refused).await;
    let line = tls_line(connect_from("127.0.0.2", server.addr).await)
        .await
        .unwrap();
    assert!(line.starts_with("peer=127.0.0.2:"), "{line}");
    assert_eq!(*server.handler.refusals.lock().unwrap(), ["access_denied"]);
    server.stop().await;
}

#[tokio::test]
async fn proxy_headers_count_only_from_trusted_relays() {
    let relays = Acl::new(&["127.0.0.2"], &[] as &[&str], AclDefault::Deny).unwrap();
    let mut config = tls_config();
    config
        .proxy_from(relays)
        .proxy_timeout(Duration::from_millis(300));
    let server = start(&config).await;
    // A trusted relay's header names the client.
    let mut relayed = connect_from("127.0.0.2", server.addr).await;
    relayed
        .write_all(b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 443\r\n")
        .await
        .unwrap();
    let line = tls_line(relayed).await.unwrap();
    assert!(line.starts_with("peer=198.51.100.7:40000 "), "{line}");
    // From anyone else the same bytes are just a broken TLS handshake.
    let mut forged = connect_from("127.0.0.1", server.addr).await;
    forged
        .write_all(b"PROXY TCP4 198.51.100.8 127.0.0.1 40000 443\r\n")
        .await
        .unwrap();
    ended_by_server(&mut forged).await;
    // A trusted relay that sends nothing is cut off at the PROXY deadline.
    let mut slow = connect_from("127.0.0.2", server.addr).await;
    closed_by_server(&mut slow).await;
    let refusals = server.handler.refusals.lock().unwrap().clone();
    assert!(
        refusals.contains(&"handshake_failed".to_owned()),
        "{refusals:?}"
    );
    assert!(
        refusals.contains(&"proxy_timeout".to_owned()),
        "{refusals:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn plain_is_for_loopback_only() {
    let local = tessera_serve::LocalAddr::Tcp("192.0.2.1:7000".parse().unwrap());
    let error = Stage::new(&local, StageConfig::default()).unwrap_err();
    assert!(error.to_string().contains("loopback only"), "{error}");
}

#[tokio::test]
async fn unix_sockets_are_capped_per_user_and_removed_at_stop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stage.sock");
    let listener = Listener::bind_unix(&path).unwrap();
    let mut config = StageConfig::default();
    config.max_connections_per_client(2);
    let stage = Arc::new(Stage::new(&listener.local_addr().unwrap(), config).unwrap());
    let handler = Arc::new(Report::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(stage.clone().run(listener, handler.clone(), async {
        let _ = stopped.await;
    }));
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut client = tokio::net::UnixStream::connect(&path).await.unwrap();
        let mut line = [0u8; 9];
        tokio::time::timeout(WAIT, client.read_exact(&mut line))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&line, b"peer=unix");
        held.push(client);
    }
    // The same user's third connection is closed at once.
    let mut third = tokio::net::UnixStream::connect(&path).await.unwrap();
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(WAIT, third.read(&mut buffer))
        .await
        .unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    drop(held);
    let _ = stop.send(());
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    assert!(!path.exists(), "the socket file is removed at stop");
}

#[tokio::test]
async fn a_plain_client_that_says_nothing_loses_its_slot_at_the_first_bytes_deadline() {
    let mut config = StageConfig::default();
    config
        .first_bytes_timeout(Duration::from_millis(200))
        .max_connections_per_client(1);
    let server = start(&config).await;
    let mut silent = connect_from("127.0.0.1", server.addr).await;
    closed_by_server(&mut silent).await;
    // The slot is free again: the same client, speaking first, is served.
    let mut talker = connect_from("127.0.0.1", server.addr).await;
    talker.write_all(b"hi").await.unwrap();
    let mut line = [0u8; 15];
    tokio::time::timeout(WAIT, talker.read_exact(&mut line))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&line, b"peer=127.0.0.1:");
    assert_eq!(
        *server.handler.refusals.lock().unwrap(),
        ["first_bytes_timeout"]
    );
    drop(talker);
    server.stop().await;
}

/// Ends every connection with `finish` and a fixed reply.
struct Finisher {
    reply: Vec<u8>,
}

impl Handler for Finisher {
    async fn serve(self: Arc<Self>, mut connection: Admitted) {
        tessera_serve::finish(&mut connection.stream, &self.reply)
            .await
            .unwrap();
    }

    fn refused(&self, _peer: Peer, _id: u64, _refusal: &Refusal) {}
}

/// A reply smaller than rustls's send buffer (queued, then written with
/// close_notify) and one larger (written out as it fills) both arrive whole
/// and end with close_notify, which tokio-rustls reports as a clean end.
#[tokio::test]
async fn finish_sends_the_whole_reply_then_close_notify() {
    for size in [100, 300_000] {
        let reply: Vec<u8> = (0..size).map(|i: u32| (i % 251) as u8).collect();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let listener = Listener::from(listener);
        let stage = Arc::new(Stage::new(&listener.local_addr().unwrap(), tls_config()).unwrap());
        let handler = Arc::new(Finisher {
            reply: reply.clone(),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(stage.run(listener, handler, async {
            let _ = stopped.await;
        }));
        let config = tessera_tls::dangerous::insecure_client_config("127.0.0.1", None).unwrap();
        let name = tessera_tls::server_name("localhost").unwrap();
        let tcp = connect_from("127.0.0.1", addr).await;
        let received = tokio::time::timeout(WAIT, async {
            let mut tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            let mut received = Vec::new();
            tls.read_to_end(&mut received).await.map(|_| received)
        })
        .await
        .unwrap()
        .expect("a clean end, with close_notify");
        assert_eq!(received.len(), reply.len());
        assert!(received == reply, "{size} bytes differ");
        let _ = stop.send(());
        tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    }
}
