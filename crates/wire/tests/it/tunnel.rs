//! Tunnels end to end on loopback: a local app talks to a service through
//! an entry and an exit over mutual TLS with HMAC on the open request; the
//! exit refuses unknown services, bad MACs, missing client certificates, and
//! reports unreachable services.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tessera_tls::{client_config, server_config, ClientAuth, DevPki, PkiOptions, ServerAuth};
use tessera_wire::tunnel::{
    open_tunnel, TunnelEntry, TunnelEntryOptions, TunnelExit, TunnelExitOptions, TunnelStats,
};
use tessera_wire::{Error, FrameAuth, HmacAuth, MessageType, Role, Transport};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);
const BANNER: &[u8] = b"service ready\n";

/// A service that greets first (as SSH and SMTP do), then echoes.
struct BannerEcho;

impl tessera_serve::Handler for BannerEcho {
    async fn serve(self: Arc<Self>, connection: tessera_serve::Admitted) {
        let mut stream = connection.stream;
        if stream.write_all(BANNER).await.is_ok() {
            let (mut read, mut write) = tokio::io::split(stream);
            let _ = tokio::io::copy(&mut read, &mut write).await;
        }
    }
}

/// [`BannerEcho`] on loopback, plain TCP, through the shared stage.
async fn banner_echo_service() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = tessera_serve::Listener::from(listener);
    let stage = tessera_serve::Stage::new(
        &listener.local_addr().unwrap(),
        tessera_serve::StageConfig::default(),
    )
    .unwrap();
    tokio::spawn(Arc::new(stage).run(listener, Arc::new(BannerEcho), std::future::pending()));
    addr
}

fn hmac(role: Role, secret: &[u8]) -> Arc<dyn FrameAuth> {
    Arc::new(HmacAuth::new("proxy", secret, role).unwrap())
}

struct Exit {
    addr: SocketAddr,
    stats: Arc<TunnelStats>,
    _stop: oneshot::Sender<()>,
}

async fn start_exit(pki: &DevPki, services: HashMap<String, String>) -> Exit {
    let options = TunnelExitOptions {
        auth: Some(hmac(Role::Server, b"tunnel secret")),
        ..TunnelExitOptions::default()
    };
    start_exit_with(pki, services, options).await
}

async fn start_exit_with(
    pki: &DevPki,
    services: HashMap<String, String>,
    options: TunnelExitOptions,
) -> Exit {
    let identity = pki.server.identity().unwrap();
    let transport = Transport::Tls(
        server_config(&identity, ClientAuth::Required(pki.roots().unwrap())).unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let exit = TunnelExit::new(listener, transport, services, options).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = Exit {
        addr: exit.local_addr().unwrap(),
        stats: exit.stats(),
        _stop: stop,
    };
    tokio::spawn(exit.run(async move {
        let _ = stopped.await;
    }));
    running
}

fn entry(
    pki: &DevPki,
    exit: SocketAddr,
    service: &str,
    secret: &[u8],
    with_cert: bool,
) -> TunnelEntry {
    let identity = pki.client.identity().unwrap();
    let tls = client_config(
        ServerAuth::Roots(pki.roots().unwrap()),
        with_cert.then_some(&identity),
    )
    .unwrap();
    let options = TunnelEntryOptions {
        auth: Some(hmac(Role::Client, secret)),
        connect_timeout: WAIT,
        ..TunnelEntryOptions::default()
    };
    TunnelEntry::new(
        vec![exit],
        tessera_tls::server_name("localhost").unwrap(),
        tls,
        service,
        options,
    )
}

#[tokio::test]
async fn local_apps_reach_the_service_through_the_tunnel() {
    let pki = DevPki::generate(&PkiOptions::default()).unwrap();
    let service = banner_echo_service().await;
    let exit = start_exit(&pki, HashMap::from([("echo".into(), service.to_string())])).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let (_stop, stopped) = oneshot::channel::<()>();
    let entry = entry(&pki, exit.addr, "echo", b"tunnel secret", true);
    tokio::spawn(entry.serve(listener, async move {
        let _ = stopped.await;
    }));

    let apps = (0..16).map(|i| {
        tokio::spawn(async move {
            let app = TcpStream::connect(local).await.unwrap();
            let mut app = BufReader::new(app);
            let mut banner = String::new();
            app.read_line(&mut banner).await.unwrap();
            assert_eq!(banner.as_bytes(), BANNER);
            let message = format!("app {i} says {}\n", "x".repeat(i * 1000));
            app.get_mut().write_all(message.as_bytes()).await.unwrap();
            let mut echoed = String::new();
            app.read_line(&mut echoed).await.unwrap();
            assert_eq!(echoed, message);
        })
    });
    for app in apps {
        timeout(WAIT, app).await.unwrap().unwrap();
    }
    assert_eq!(exit.stats.opened.load(Ordering::Relaxed), 16);
}

#[tokio::test]
async fn the_exit_refuses_what_it_should() {
    let pki = DevPki::generate(&PkiOptions::default()).unwrap();
    let service = banner_echo_service().await;
    // A port nothing listens on, reserved for the whole test.
    let (_refusing, closed) = crate::refusing_port();
    let services = HashMap::from([
        ("echo".to_owned(), service.to_string()),
        ("gone".to_owned(), closed.to_string()),
    ]);
    let exit = start_exit(&pki, services).await;
    // `#[track_caller]` closures are unstable: the line of a failure is the
    // closure's, so the panic names the error (and its Debug form).
    let refused = |result: Result<_, Error>| match result {
        Err(Error::Refused { kind, .. }) => kind,
        Err(other) => panic!("expected a refusal, got {other} ({other:?})"),
        Ok(_) => panic!("expected a refusal, got a tunnel"),
    };

    let unknown = entry(&pki, exit.addr, "mail", b"tunnel secret", true);
    assert_eq!(
        refused(timeout(WAIT, unknown.open()).await.unwrap()),
        MessageType::NOT_FOUND
    );
    let wrong_secret = entry(&pki, exit.addr, "echo", b"guessed", true);
    assert_eq!(
        refused(timeout(WAIT, wrong_secret.open()).await.unwrap()),
        MessageType::AUTH_ERROR
    );
    let unreachable = entry(&pki, exit.addr, "gone", b"tunnel secret", true);
    assert_eq!(
        refused(timeout(WAIT, unreachable.open()).await.unwrap()),
        MessageType::ERROR
    );
    let anonymous = entry(&pki, exit.addr, "echo", b"tunnel secret", false);
    assert!(timeout(WAIT, async {
        // Without a client certificate the handshake or the first read fails.
        let (mut link, _) = anonymous.open().await?;
        let mut byte = [0u8; 1];
        link.read_exact(&mut byte).await?;
        Ok::<_, Error>(())
    })
    .await
    .unwrap()
    .is_err());
    // No MAC at all, straight over TLS.
    let identity = pki.client.identity().unwrap();
    let tls = client_config(ServerAuth::Roots(pki.roots().unwrap()), Some(&identity)).unwrap();
    let tcp = TcpStream::connect(exit.addr).await.unwrap();
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(tessera_tls::server_name("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(
        refused(open_tunnel(stream, "echo", None, WAIT).await),
        MessageType::AUTH_ERROR
    );

    let stats = &exit.stats;
    assert_eq!(stats.not_found.load(Ordering::Relaxed), 1);
    assert_eq!(stats.auth_failures.load(Ordering::Relaxed), 2);
    assert_eq!(stats.unreachable.load(Ordering::Relaxed), 1);
    assert_eq!(stats.opened.load(Ordering::Relaxed), 0);

    // And the exit still serves.
    let good = entry(&pki, exit.addr, "echo", b"tunnel secret", true);
    let (link, early) = timeout(WAIT, good.open()).await.unwrap().unwrap();
    let mut link = BufReader::new(link);
    let mut banner = early.to_vec();
    if banner.is_empty() {
        link.read_until(b'\n', &mut banner).await.unwrap();
    }
    assert_eq!(banner, BANNER);
}

#[tokio::test]
async fn entries_listen_on_loopback_only_and_exits_check_service_names() {
    let pki = DevPki::generate(&PkiOptions::default()).unwrap();
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let entry = entry(&pki, "127.0.0.1:1".parse().unwrap(), "echo", b"s", true);
    assert!(matches!(
        entry.serve(listener, std::future::pending()).await,
        Err(Error::PlainNotLoopback(_))
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let services = HashMap::from([("a/b".to_owned(), "127.0.0.1:1".to_owned())]);
    assert!(matches!(
        TunnelExit::new(
            listener,
            Transport::PlainLoopback,
            services,
            TunnelExitOptions::default()
        ),
        Err(Error::InvalidServiceName(_))
    ));
}

/// Signs the first frame with the real layer, then gives every later frame
/// that same auth section: an attacker replaying a recorded open request.
struct Replaying {
    inner: Arc<dyn FrameAuth>,
    recorded: std::sync::Mutex<Option<bytes::Bytes>>,
}

impl FrameAuth for Replaying {
    fn sign(&self, frame: &mut tessera_wire::Frame) {
        let mut recorded = self.recorded.lock().unwrap();
        match &*recorded {
            Some(auth) => frame.auth = auth.clone(),
            None => {
                self.inner.sign(frame);
                *recorded = Some(frame.auth.clone());
            }
        }
    }

    fn verify(&self, frame: &tessera_wire::Frame) -> Result<(), tessera_wire::AuthFailure> {
        self.inner.verify(frame)
    }
}

/// Two exits sharing an HMAC key and a fleet's store (a real redis-server):
/// an open request accepted by one is refused `replayed` by the other.
#[tokio::test]
async fn an_open_request_is_accepted_once_across_a_fleet_of_exits() {
    use tessera_fleet::{FleetReplay, LocalRedis, Store, StoreConfig};

    if !LocalRedis::installed() {
        eprintln!("SKIPPED: redis-server is not installed (apt install redis-server)");
        return;
    }
    let redis = LocalRedis::start().unwrap();
    let pki = DevPki::generate(&PkiOptions::default()).unwrap();
    let service = banner_echo_service().await;
    let services = HashMap::from([("echo".to_owned(), service.to_string())]);
    let fleet_exit = async || {
        let mut config = StoreConfig::new(redis.url());
        config.budget = WAIT;
        let store = Arc::new(Store::open(&config).unwrap());
        let options = TunnelExitOptions {
            auth: Some(hmac(Role::Server, b"tunnel secret")),
            fleet_replay: Some(tessera_wire::FleetFrameReplay::new(
                FleetReplay::new(store),
                WAIT,
            )),
            ..TunnelExitOptions::default()
        };
        start_exit_with(&pki, services.clone(), options).await
    };
    let (a, b) = (fleet_exit().await, fleet_exit().await);
    let replaying = Replaying {
        inner: hmac(Role::Client, b"tunnel secret"),
        recorded: std::sync::Mutex::new(None),
    };
    let identity = pki.client.identity().unwrap();
    let tls = client_config(ServerAuth::Roots(pki.roots().unwrap()), Some(&identity)).unwrap();
    let open = async |exit: &Exit| {
        let tcp = TcpStream::connect(exit.addr).await.unwrap();
        let stream = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(tessera_tls::server_name("localhost").unwrap(), tcp)
            .await
            .unwrap();
        open_tunnel(stream, "echo", Some(&replaying), WAIT).await
    };
    assert!(open(&a).await.is_ok(), "the first use is accepted");
    match open(&b).await {
        Err(Error::Refused { kind, body }) => {
            assert_eq!((kind, body.as_str()), (MessageType::AUTH_ERROR, "replayed"));
        }
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("a recorded open request opened a second tunnel"),
    }
    assert_eq!(b.stats.auth_failures.load(Ordering::Relaxed), 1);
    assert_eq!(b.stats.opened.load(Ordering::Relaxed), 0);
}
