//! tessera-wire end to end on loopback: request/reply over mutual TLS, many
//! requests on one connection and many clients, NOT_FOUND with the request
//! id, pub/sub fan-out and cleanup, HMAC accepting and refusing, hostile
//! frames with the server still serving, deadlines.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tessera_tls::{client_config, server_config, ClientAuth, DevPki, PkiOptions, ServerAuth};
use tessera_wire::{
    hmac_section, Client, ClientOptions, Error, Frame, FrameAuth, HmacAuth, Limits, MessageType,
    Rejection, Request, Response, Role, Router, Server, ServerOptions, ServerStats, Topics,
    Transport,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(20);

fn router() -> Router<()> {
    Router::new(())
        .route(
            MessageType::REQUEST_URI,
            "echo",
            |r: Request, _: Arc<()>| async move {
                Response::new(MessageType::RESPOND_URI, r.frame.body)
            },
        )
        .route(
            MessageType::REQUEST_URI,
            "whoami",
            |r: Request, _: Arc<()>| async move {
                let id = r.peer_certificate.map(hex_prefix).unwrap_or_default();
                Response::new(MessageType::RESPOND_URI, id)
            },
        )
        .route(
            MessageType::REQUEST_URI,
            "slow",
            |_: Request, _: Arc<()>| async move {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Response::new(MessageType::OK, "too late")
            },
        )
        .route_once(
            MessageType::CREATE_URI,
            "ticket",
            |_: Request, _: Arc<()>| async move { Response::new(MessageType::OK, "yours") },
        )
}

fn hex_prefix(bytes: [u8; 32]) -> String {
    bytes[..4].iter().map(|b| format!("{b:02x}")).collect()
}

struct Running {
    addr: SocketAddr,
    topics: Arc<Topics>,
    stats: Arc<ServerStats>,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn start(transport: Transport, options: ServerOptions) -> Running {
    start_with(router(), transport, options).await
}

async fn start_with<S: Send + Sync + 'static>(
    router: Router<S>,
    transport: Transport,
    options: ServerOptions,
) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::new(listener, transport, router, options).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = Running {
        addr: server.local_addr().unwrap(),
        topics: server.topics(),
        stats: server.stats(),
        stop: Some(stop),
    };
    tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    running
}

struct Pki {
    pki: DevPki,
}

impl Pki {
    fn new() -> Self {
        Self {
            pki: DevPki::generate(&PkiOptions::default()).unwrap(),
        }
    }

    fn transport(&self) -> Transport {
        let identity = self.pki.server.identity().unwrap();
        Transport::Tls(
            server_config(&identity, ClientAuth::Required(self.pki.roots().unwrap())).unwrap(),
        )
    }

    async fn client(&self, addr: SocketAddr, options: ClientOptions) -> Result<Client, Error> {
        let config = client_config(
            ServerAuth::Roots(self.pki.roots().unwrap()),
            Some(&self.pki.client.identity().unwrap()),
        )
        .unwrap();
        Client::connect_tls(
            addr,
            tessera_tls::server_name("localhost").unwrap(),
            config,
            options,
        )
        .await
    }
}

#[tokio::test]
async fn request_reply_over_mutual_tls_with_many_requests_in_flight() {
    let pki = Pki::new();
    let server = start(pki.transport(), ServerOptions::default()).await;
    let client = Arc::new(
        pki.client(server.addr, ClientOptions::default())
            .await
            .unwrap(),
    );

    let reply = client
        .request(MessageType::REQUEST_URI, "echo", "hello")
        .await
        .unwrap();
    assert_eq!(
        (reply.kind, &reply.body[..]),
        (MessageType::RESPOND_URI, &b"hello"[..])
    );
    let who = client
        .request(MessageType::REQUEST_URI, "whoami", "")
        .await
        .unwrap();
    assert_eq!(who.body.len(), 8, "the handler sees the client certificate");

    // Unknown routes answer at once, with the request id and URI.
    let missing = client
        .request(MessageType::REQUEST_URI, "no/such/uri", "")
        .await
        .unwrap();
    assert_eq!(
        (missing.kind, missing.uri.as_str()),
        (MessageType::NOT_FOUND, "no/such/uri")
    );

    // 200 requests in flight on one connection, each matched to its own reply.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200u32 {
        let client = client.clone();
        tasks.spawn(async move {
            let body = format!("request {i}");
            let reply = client
                .request(MessageType::REQUEST_URI, "echo", body.clone())
                .await
                .unwrap();
            assert_eq!(reply.body, Bytes::from(body));
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }

    // One-shot handlers answer once.
    assert_eq!(
        client
            .request(MessageType::CREATE_URI, "ticket", "")
            .await
            .unwrap()
            .kind,
        MessageType::OK
    );
    assert_eq!(
        client
            .request(MessageType::CREATE_URI, "ticket", "")
            .await
            .unwrap()
            .kind,
        MessageType::NOT_FOUND
    );
}

#[tokio::test]
async fn many_clients_at_once() {
    let pki = Arc::new(Pki::new());
    let server = start(pki.transport(), ServerOptions::default()).await;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..16 {
        let pki = pki.clone();
        let addr = server.addr;
        tasks.spawn(async move {
            let client = pki.client(addr, ClientOptions::default()).await.unwrap();
            for i in 0..20 {
                let body = format!("{c}-{i}");
                let reply = client
                    .request(MessageType::REQUEST_URI, "echo", body.clone())
                    .await
                    .unwrap();
                assert_eq!(reply.body, Bytes::from(body));
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    assert!(
        server
            .stats
            .frames
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 320
    );
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused_in_the_handshake() {
    let pki = Pki::new();
    let server = start(pki.transport(), ServerOptions::default()).await;
    let config = client_config(ServerAuth::Roots(pki.pki.roots().unwrap()), None).unwrap();
    let result = async {
        let client = Client::connect_tls(
            server.addr,
            tessera_tls::server_name("localhost").unwrap(),
            config,
            ClientOptions::default(),
        )
        .await?;
        client.request(MessageType::REQUEST_URI, "echo", "x").await
    }
    .await;
    assert!(result.is_err(), "{result:?}");
}

#[tokio::test]
async fn pub_sub_fans_out_and_closed_connections_leave_nothing_behind() {
    let server = start(Transport::PlainLoopback, ServerOptions::default()).await;
    let publisher = Client::connect_plain(server.addr, ClientOptions::default())
        .await
        .unwrap();
    let mut subscribers = Vec::new();
    for _ in 0..3 {
        let client = Client::connect_plain(server.addr, ClientOptions::default())
            .await
            .unwrap();
        let subscription = client.subscribe("news").await.unwrap();
        subscribers.push((client, subscription));
    }
    let (_other_client, mut other) = {
        let client = Client::connect_plain(server.addr, ClientOptions::default())
            .await
            .unwrap();
        let subscription = client.subscribe("weather").await.unwrap();
        (client, subscription)
    };
    assert_eq!(server.topics.subscribers("news"), 3);
    publisher.publish("news", "extra!").await.unwrap();
    for (_, subscription) in &mut subscribers {
        let note = tokio::time::timeout(WAIT, subscription.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (note.kind, note.uri.as_str(), &note.body[..]),
            (MessageType::NOTIFY_URI, "news", &b"extra!"[..])
        );
    }
    publisher.publish("weather", "rain").await.unwrap();
    let note = tokio::time::timeout(WAIT, other.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&note.body[..], b"rain");

    // Unsubscribe, and closing connections, remove subscriptions.
    let reply = subscribers[0]
        .0
        .request(MessageType::UNSUBSCRIBE_URI, "news", "")
        .await
        .unwrap();
    assert_eq!(reply.kind, MessageType::CONFIRM_UNSUBSCRIBE);
    drop(subscribers);
    tokio::time::timeout(WAIT, async {
        while server.topics.subscribers("news") > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("subscriptions of closed connections were not removed");
}

/// A subscription the application does not read holds at most its byte
/// budget: later notifications are dropped, not buffered without bound.
#[tokio::test]
async fn an_unread_subscription_holds_at_most_its_bytes() {
    use futures_util::FutureExt;
    let server = start(Transport::PlainLoopback, ServerOptions::default()).await;
    let publisher = Client::connect_plain(server.addr, ClientOptions::default())
        .await
        .unwrap();
    let options = ClientOptions {
        subscription_bytes: 100_000,
        ..ClientOptions::default()
    };
    let client = Client::connect_plain(server.addr, options).await.unwrap();
    let mut subscription = client.subscribe("big").await.unwrap();
    for _ in 0..10 {
        publisher.publish("big", vec![0u8; 40_000]).await.unwrap();
    }
    // Its reply comes after the notifications: the client has seen them all.
    let reply = client
        .request(MessageType::UNSUBSCRIBE_URI, "elsewhere", "")
        .await
        .unwrap();
    assert_eq!(reply.kind, MessageType::CONFIRM_UNSUBSCRIBE);
    let mut kept = 0;
    while let Some(Some(note)) = subscription.next().now_or_never() {
        assert_eq!(note.body.len(), 40_000);
        kept += 1;
    }
    assert_eq!(kept, 2, "two of 40 KB fit in 100 KB; the rest were dropped");
}

fn hmac_options(secret: &[u8]) -> (ServerOptions, ClientOptions) {
    let server: Arc<dyn FrameAuth> = Arc::new(HmacAuth::new("k1", secret, Role::Server).unwrap());
    let client: Arc<dyn FrameAuth> = Arc::new(HmacAuth::new("k1", secret, Role::Client).unwrap());
    (
        ServerOptions {
            auth: Some(server),
            ..ServerOptions::default()
        },
        ClientOptions {
            auth: Some(client),
            ..ClientOptions::default()
        },
    )
}

#[tokio::test]
async fn hmac_accepts_signed_frames_and_refuses_everything_else() {
    let (server_options, client_options) = hmac_options(b"shared secret");
    let server = start(Transport::PlainLoopback, server_options).await;
    let client = Client::connect_plain(server.addr, client_options)
        .await
        .unwrap();
    let reply = client
        .request(MessageType::REQUEST_URI, "echo", "signed")
        .await
        .unwrap();
    assert_eq!(&reply.body[..], b"signed");
    let mut subscription = client.subscribe("t").await.unwrap();
    client.publish("t", "signed notification").await.unwrap();
    let note = tokio::time::timeout(WAIT, subscription.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&note.body[..], b"signed notification");

    // A client with another secret: AUTH_ERROR, not silence.
    let (_, wrong) = hmac_options(b"another secret");
    let intruder = Client::connect_plain(server.addr, wrong).await.unwrap();
    let refused = intruder
        .request(MessageType::REQUEST_URI, "echo", "x")
        .await
        .unwrap();
    assert_eq!(
        (refused.kind, &refused.body[..]),
        (MessageType::AUTH_ERROR, &b"bad_mac"[..])
    );
    // No MAC at all.
    let plain = Client::connect_plain(server.addr, ClientOptions::default())
        .await
        .unwrap();
    let refused = plain
        .request(MessageType::REQUEST_URI, "echo", "x")
        .await
        .unwrap();
    assert_eq!(
        (refused.kind, &refused.body[..]),
        (MessageType::AUTH_ERROR, &b"missing"[..])
    );

    // Raw frames: a valid one, then the same bytes again, then the type swapped.
    let mut frame = Frame::new(MessageType::REQUEST_URI, 77, "echo", &b"raw"[..]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    frame.auth = hmac_section("k1", b"shared secret", Role::Client, &frame, now, [9; 16]);
    let mut raw = TcpStream::connect(server.addr).await.unwrap();
    // Replies come as they are ready (the refusal may overtake the handler's answer).
    let mut replies = exchange(&mut raw, &[frame.clone(), frame.clone()], 2).await;
    replies.sort_by_key(|reply| reply.kind);
    assert_eq!(replies[0].kind, MessageType::RESPOND_URI);
    assert_eq!(
        (replies[1].kind, &replies[1].body[..]),
        (MessageType::AUTH_ERROR, &b"replayed"[..])
    );
    let mut swapped = frame.clone();
    swapped.kind = MessageType::DELETE_URI;
    let mut stale = Frame::new(MessageType::REQUEST_URI, 78, "echo", &b"old"[..]);
    stale.auth = hmac_section(
        "k1",
        b"shared secret",
        Role::Client,
        &stale,
        now - 120_000,
        [10; 16],
    );
    let mut replies = exchange(&mut raw, &[swapped, stale], 2).await;
    replies.sort_by_key(|reply| reply.request_id);
    assert_eq!(&replies[0].body[..], b"bad_mac");
    assert_eq!(&replies[1].body[..], b"stale");
    assert_eq!(
        server
            .stats
            .auth_failures
            .load(std::sync::atomic::Ordering::Relaxed),
        5
    );
}

/// Two live servers sharing an HMAC key: on its own each accepts a frame
/// the other accepted; sharing a fleet's store (a real redis-server), the
/// copy is refused by the second.
#[tokio::test]
async fn a_signed_frame_is_accepted_once_across_a_fleet() {
    use tessera_fleet::{FleetReplay, LocalRedis, Store, StoreConfig};
    use tessera_wire::FleetFrameReplay;

    let signed = |id: u32, nonce: [u8; 16]| {
        let mut frame = Frame::new(MessageType::REQUEST_URI, id, "echo", &b"pay 10"[..]);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        frame.auth = hmac_section("k1", b"shared secret", Role::Client, &frame, now, nonce);
        frame
    };
    let replies = async |servers: &[&Running], frame: &Frame| {
        let mut kinds = Vec::new();
        for server in servers {
            let mut raw = TcpStream::connect(server.addr).await.unwrap();
            let reply = exchange(&mut raw, std::slice::from_ref(frame), 1).await;
            kinds.push((reply[0].kind, reply[0].body.clone()));
        }
        kinds
    };
    // Alone: both accept the same frame.
    let (a, b) = (
        start(Transport::PlainLoopback, hmac_options(b"shared secret").0).await,
        start(Transport::PlainLoopback, hmac_options(b"shared secret").0).await,
    );
    let frame = signed(1, [1; 16]);
    let kinds = replies(&[&a, &b], &frame).await;
    assert!(
        kinds
            .iter()
            .all(|(kind, _)| *kind == MessageType::RESPOND_URI),
        "{kinds:?}"
    );

    if !LocalRedis::installed() {
        eprintln!(
            "SKIPPED (the fleet half): redis-server is not installed (apt install redis-server)"
        );
        return;
    }
    let redis = LocalRedis::start().unwrap();
    let fleet_node = async || {
        let mut config = StoreConfig::new(redis.url());
        config.budget = WAIT;
        let store = Arc::new(Store::open(&config).unwrap());
        let mut options = hmac_options(b"shared secret").0;
        options.fleet_replay = Some(FleetFrameReplay::new(FleetReplay::new(store), WAIT));
        start(Transport::PlainLoopback, options).await
    };
    let (c, d) = (fleet_node().await, fleet_node().await);
    let frame = signed(2, [2; 16]);
    let kinds = replies(&[&c, &d], &frame).await;
    assert_eq!(kinds[0].0, MessageType::RESPOND_URI);
    assert_eq!(
        (kinds[1].0, &kinds[1].1[..]),
        (MessageType::AUTH_ERROR, &b"replayed"[..])
    );
    // Another frame still passes on either.
    let kinds = replies(&[&d], &signed(3, [3; 16])).await;
    assert_eq!(kinds[0].0, MessageType::RESPOND_URI);
    // The store gone: signed frames are refused (fail closed), not waved through.
    drop(redis);
    let kinds = replies(&[&c], &signed(4, [4; 16])).await;
    assert_eq!(
        (kinds[0].0, &kinds[0].1[..]),
        (MessageType::AUTH_ERROR, &b"unavailable"[..])
    );
}

/// Writes `frames` and reads `count` frames back.
async fn exchange(stream: &mut TcpStream, frames: &[Frame], count: usize) -> Vec<Frame> {
    let mut out = BytesMut::new();
    for frame in frames {
        frame.encode(&Limits::default(), &mut out).unwrap();
    }
    stream.write_all(&out).await.unwrap();
    let mut buffer = BytesMut::new();
    let mut replies = Vec::new();
    tokio::time::timeout(WAIT, async {
        while replies.len() < count {
            while let Some(frame) = Frame::decode(&mut buffer, &Limits::default()).unwrap() {
                replies.push(frame);
            }
            if replies.len() >= count {
                break;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "server closed the connection");
            buffer.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .unwrap();
    replies
}

#[tokio::test]
async fn hostile_frames_close_only_their_connection() {
    let server = start(
        Transport::PlainLoopback,
        ServerOptions {
            limits: Limits {
                max_frame: 64 * 1024,
                ..Limits::default()
            },
            ..ServerOptions::default()
        },
    )
    .await;
    // An announced body far over the limit: ERROR, then closed, before any body is read.
    let mut oversize = BytesMut::new();
    oversize.put_slice(b"TW\x01\x00\x00\x00\x00\x00\x01\x00\x04\x00\x00");
    oversize.put_u32(u32::MAX);
    // Garbage, an HTTP request, a TLS ClientHello start, a truncated frame.
    let mut truncated = BytesMut::new();
    Frame::new(MessageType::REQUEST_URI, 1, "echo", vec![0u8; 1000])
        .encode(&Limits::default(), &mut truncated)
        .unwrap();
    truncated.truncate(500);
    for hostile in [
        &oversize[..],
        b"\x00\x01\x02garbage",
        b"GET / HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00",
        &truncated[..],
    ] {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(hostile).await.unwrap();
        if hostile.len() == truncated.len() {
            // The rest never comes: the client gives up and closes.
            stream.shutdown().await.unwrap();
        }
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut rest))
            .await
            .unwrap();
    }
    assert!(
        server
            .stats
            .malformed
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 4
    );
    let client = Client::connect_plain(server.addr, ClientOptions::default())
        .await
        .unwrap();
    let reply = client
        .request(MessageType::REQUEST_URI, "echo", "still here")
        .await
        .unwrap();
    assert_eq!(&reply.body[..], b"still here");
}

#[tokio::test]
async fn deadlines_and_plain_tcp_rules() {
    let server = start(
        Transport::PlainLoopback,
        ServerOptions {
            handler_timeout: Duration::from_millis(200),
            ..ServerOptions::default()
        },
    )
    .await;
    let client = Client::connect_plain(server.addr, ClientOptions::default())
        .await
        .unwrap();
    let reply = client
        .request(MessageType::REQUEST_URI, "slow", "")
        .await
        .unwrap();
    assert_eq!(
        (reply.kind, &reply.body[..]),
        (MessageType::ERROR, &b"handler timed out"[..])
    );
    let error = client
        .request_within(
            MessageType::REQUEST_URI,
            "slow",
            "",
            Duration::from_millis(50),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Timeout(_)), "{error:?}");
    // The connection still works after a timed-out request.
    assert_eq!(
        client
            .request(MessageType::REQUEST_URI, "echo", "ok")
            .await
            .unwrap()
            .kind,
        MessageType::RESPOND_URI
    );

    let wildcard = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let refused = Server::new(
        wildcard,
        Transport::PlainLoopback,
        router(),
        ServerOptions::default(),
    );
    assert!(matches!(refused, Err(Error::PlainNotLoopback(_))));
    let remote: SocketAddr = "192.0.2.1:7000".parse().unwrap();
    assert!(matches!(
        Client::connect_plain(remote, ClientOptions::default()).await,
        Err(Error::PlainNotLoopback(_))
    ));
}

#[tokio::test]
async fn ipv6_loopback_with_mutual_tls_verified_by_ip_address() {
    let pki = Pki::new();
    let listener = tokio::net::TcpListener::bind("[::1]:0").await.unwrap();
    let server = Server::new(
        listener,
        pki.transport(),
        router(),
        ServerOptions::default(),
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run(std::future::pending()));
    let config = client_config(
        ServerAuth::Roots(pki.pki.roots().unwrap()),
        Some(&pki.pki.client.identity().unwrap()),
    )
    .unwrap();
    let name = tessera_tls::server_name("::1").unwrap();
    let client = Client::connect_tls(addr, name, config, ClientOptions::default())
        .await
        .unwrap();
    let reply = client
        .request(MessageType::REQUEST_URI, "echo", "v6")
        .await
        .unwrap();
    assert_eq!(
        (reply.kind, &reply.body[..]),
        (MessageType::RESPOND_URI, &b"v6"[..])
    );
}

/// A server whose guard has `extra` (TOML) and a rule that lists, for
/// `/admin`, only a certificate the test client does not have.
async fn start_guarded(pki: &Pki, extra: &str) -> Running {
    let stranger = tessera_tls::Fingerprint::of_der(pki.pki.server.der()).to_string();
    let config = tessera_guard::GuardConfig::from_toml(&format!(
        "{extra}\n[[guard.cert_rules]]\nprefix = \"/admin\"\nmode = \"listed\"\nfingerprints = [\"{stranger}\"]\n"
    ))
    .unwrap();
    start(
        pki.transport(),
        ServerOptions {
            guard: Some(Arc::new(config.build().unwrap())),
            ..ServerOptions::default()
        },
    )
    .await
}

#[tokio::test]
async fn the_guard_admits_connections_and_certificate_rules_add_to_auth() {
    let pki = Pki::new();
    let server = start_guarded(&pki, "[guard.rate_limit]\nrate = 0.001\nburst = 2\n").await;
    let client = pki
        .client(server.addr, ClientOptions::default())
        .await
        .unwrap();
    let echo = client
        .request(MessageType::REQUEST_URI, "echo", "hi")
        .await
        .unwrap();
    assert_eq!(echo.kind, MessageType::RESPOND_URI);
    // Our client certificate is not on the /admin list, though it passed mutual TLS.
    let refused = client
        .request(MessageType::REQUEST_URI, "admin/users", "")
        .await
        .unwrap();
    assert_eq!(
        (refused.kind, &refused.body[..]),
        (MessageType::NOT_PERMITTED, &b"cert_not_authorized"[..])
    );
    let refused = client
        .request(MessageType::SUBSCRIBE_URI, "admin", "")
        .await
        .unwrap();
    assert_eq!(refused.kind, MessageType::NOT_PERMITTED);
    // A burst of two connections, then the rate limit closes new ones before TLS.
    let second = pki
        .client(server.addr, ClientOptions::default())
        .await
        .unwrap();
    assert_eq!(
        second
            .request(MessageType::REQUEST_URI, "echo", "")
            .await
            .unwrap()
            .kind,
        MessageType::RESPOND_URI
    );
    let third = async {
        let client = pki.client(server.addr, ClientOptions::default()).await?;
        client.request(MessageType::REQUEST_URI, "echo", "").await
    }
    .await;
    assert!(third.is_err(), "{third:?}");
    assert_eq!(
        server
            .stats
            .refused
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        server
            .stats
            .not_permitted
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

/// The guard's rules read `"/" + URI` canonically while the router matches
/// the URI exactly: a URI that the two could read differently is refused, so
/// no spelling of a protected route (`%61dmin`, `x/../admin`, a bare `%`)
/// reaches it past its rule.
#[tokio::test]
async fn regression_uris_the_rules_would_read_otherwise_are_refused() {
    let pki = Pki::new();
    let server = start_guarded(&pki, "").await;
    let client = pki
        .client(server.addr, ClientOptions::default())
        .await
        .unwrap();
    for uri in [
        "%61dmin",
        "%61dmin/users",
        "x/../admin",
        "admin//users",
        "admin/./users",
        "/admin",
        "%%36%31dmin",
        "%",
        "echo%",
        "ech%6F",
    ] {
        let reply = client
            .request(MessageType::REQUEST_URI, uri, "")
            .await
            .unwrap();
        assert_eq!(
            (reply.kind, &reply.body[..]),
            (
                MessageType::ERROR,
                &b"invalid uri: not a canonical path"[..]
            ),
            "{uri}"
        );
    }
    let refused = client
        .request(MessageType::REQUEST_URI, "admin", "")
        .await
        .unwrap();
    assert_eq!(refused.kind, MessageType::NOT_PERMITTED);
    let echo = client
        .request(MessageType::REQUEST_URI, "echo", "still served")
        .await
        .unwrap();
    assert_eq!(
        (echo.kind, &echo.body[..]),
        (MessageType::RESPOND_URI, &b"still served"[..])
    );
}

#[tokio::test]
async fn capability_tokens_with_proof_of_possession_per_frame() {
    use tessera_trust::{mint, MintRequest, SecretKey, Verifier};
    use tessera_wire::CapabilityAuth;

    let issuer = SecretKey::generate();
    let token = |holder: &SecretKey, expires_at: f64| {
        mint(
            &issuer,
            &MintRequest {
                worker_public: holder.public().to_hex(),
                holder_id: "worker-1".into(),
                facts: vec![("right".into(), vec!["echo".into()])],
                revocation_id: tessera_trust::random_revocation_id(),
                expires_at,
            },
        )
        .unwrap()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let server_auth: Arc<dyn FrameAuth> = Arc::new(CapabilityAuth::server(
        Verifier::new(&issuer.public()).unwrap(),
    ));
    let server = start(
        Transport::PlainLoopback,
        ServerOptions {
            auth: Some(server_auth),
            ..ServerOptions::default()
        },
    )
    .await;
    let connect = |auth: CapabilityAuth| {
        let options = ClientOptions {
            auth: Some(Arc::new(auth)),
            ..ClientOptions::default()
        };
        Client::connect_plain(server.addr, options)
    };
    let holder = SecretKey::generate();
    let good_token = token(&holder, now + 3600.0);
    let worker = connect(CapabilityAuth::client(holder, good_token.clone()))
        .await
        .unwrap();
    for i in 0..3 {
        let reply = worker
            .request(MessageType::REQUEST_URI, "echo", format!("job {i}"))
            .await
            .unwrap();
        assert_eq!(reply.kind, MessageType::RESPOND_URI);
    }
    // Someone else's token without its key: the proof fails.
    let thief = connect(CapabilityAuth::client(SecretKey::generate(), good_token))
        .await
        .unwrap();
    let refused = thief
        .request(MessageType::REQUEST_URI, "echo", "x")
        .await
        .unwrap();
    assert_eq!(
        (refused.kind, &refused.body[..]),
        (MessageType::AUTH_ERROR, &b"bad_mac"[..])
    );
    // An expired token.
    let late = SecretKey::generate();
    let expired = token(&late, now - 60.0);
    let late = connect(CapabilityAuth::client(late, expired))
        .await
        .unwrap();
    let refused = late
        .request(MessageType::REQUEST_URI, "echo", "x")
        .await
        .unwrap();
    assert_eq!(
        (refused.kind, &refused.body[..]),
        (MessageType::AUTH_ERROR, &b"expired"[..])
    );
}

/// A fleet's revocation (a real redis-server) reaches a running server: the
/// connection that used the token is closed at once, and its frames on a new
/// connection are refused.
#[tokio::test]
async fn a_fleet_revocation_closes_the_connections_that_hold_the_token() {
    use tessera_fleet::{LocalRedis, Revocations, Store, StoreConfig};
    use tessera_trust::{mint, MintRequest, SecretKey, Verifier, WhenUnknown};
    use tessera_wire::CapabilityAuth;

    if !LocalRedis::installed() {
        eprintln!("SKIPPED: redis-server is not installed (apt install redis-server)");
        return;
    }
    let redis = LocalRedis::start().unwrap();
    let mut config = StoreConfig::new(redis.url());
    config.budget = WAIT;
    let store = Arc::new(Store::open(&config).unwrap());
    let revocations = Revocations::follow(store.clone());
    assert!(revocations.synced(WAIT).await);
    let issuer = SecretKey::generate();
    let mut verifier = Verifier::new(&issuer.public()).unwrap();
    verifier.revocation_list(revocations.clone(), WhenUnknown::Refuse);
    let server = start(
        Transport::PlainLoopback,
        ServerOptions {
            auth: Some(Arc::new(CapabilityAuth::server(verifier))),
            revocations: Some(revocations),
            ..ServerOptions::default()
        },
    )
    .await;
    let holder = SecretKey::generate();
    let token = |revocation_id: &str| {
        mint(
            &issuer,
            &MintRequest {
                worker_public: holder.public().to_hex(),
                holder_id: "worker-1".into(),
                facts: Vec::new(),
                revocation_id: revocation_id.into(),
                expires_at: 4_000_000_000.0,
            },
        )
        .unwrap()
    };
    let connect = |token: String| {
        let auth = CapabilityAuth::client(SecretKey::from_hex(&holder.to_hex()).unwrap(), token);
        let options = ClientOptions {
            auth: Some(Arc::new(auth)),
            ..ClientOptions::default()
        };
        Client::connect_plain(server.addr, options)
    };
    let doomed = connect(token("rev-doomed")).await.unwrap();
    let mut feed = doomed.subscribe("news").await.unwrap();
    let other = connect(token("rev-other")).await.unwrap();
    let mut other_feed = other.subscribe("news").await.unwrap();

    Revocations::revoke(&store, "rev-doomed", WAIT)
        .await
        .unwrap();
    // The connection ends without the client sending anything more.
    let ended = tokio::time::timeout(WAIT, feed.next()).await.unwrap();
    assert!(ended.is_none(), "the connection is closed: {ended:?}");
    // A new connection with the revoked token is refused frame by frame.
    let again = connect(token("rev-doomed")).await.unwrap();
    let refused = again
        .request(MessageType::REQUEST_URI, "echo", "x")
        .await
        .unwrap();
    assert_eq!(
        (refused.kind, &refused.body[..]),
        (MessageType::AUTH_ERROR, &b"revoked"[..])
    );
    // Another token's connection is untouched.
    let reply = other
        .request(MessageType::REQUEST_URI, "echo", "still here")
        .await
        .unwrap();
    assert_eq!(reply.kind, MessageType::RESPOND_URI);
    server.topics.publish("news", &Bytes::from_static(b"hello"));
    let news = tokio::time::timeout(WAIT, other_feed.next()).await.unwrap();
    assert!(news.is_some());
}

#[tokio::test]
async fn stacked_auth_gives_handlers_the_caller_and_route_policies_refuse_more() {
    use tessera_trust::{mint, MintRequest, SecretKey, Verifier};
    use tessera_wire::{AuthStack, CapabilityAuth, PolicyLayer};

    let issuer = SecretKey::generate();
    let holder = SecretKey::generate();
    let token = mint(
        &issuer,
        &MintRequest {
            worker_public: holder.public().to_hex(),
            holder_id: "worker-7".into(),
            facts: vec![("right".into(), vec!["jobs".into()])],
            revocation_id: tessera_trust::random_revocation_id(),
            expires_at: 4_000_000_000.0,
        },
    )
    .unwrap();
    let who = |request: Request, _: Arc<()>| async move {
        let principal = request.principal.ok_or(Rejection::CapabilityRequired)?;
        let capability = principal
            .capability()
            .ok_or(Rejection::CapabilityRequired)?;
        let key = principal.key_id().ok_or(Rejection::CapabilityRequired)?;
        Ok::<_, Rejection>(Response::new(
            MessageType::RESPOND_URI,
            format!("{} via {key}", capability.identity().holder_id),
        ))
    };
    // The policy covers the routes registered before it, not "open".
    let router = Router::new(())
        .route(MessageType::REQUEST_URI, "jobs", who)
        .route(MessageType::REQUEST_URI, "admin", who)
        .layer(PolicyLayer::new("allow if right($r), resource($r)"))
        .route(MessageType::REQUEST_URI, "open", who);
    let server_auth = AuthStack::new(vec![
        Arc::new(HmacAuth::new("service", b"s3cret", Role::Server).unwrap()),
        Arc::new(CapabilityAuth::server(
            Verifier::new(&issuer.public()).unwrap(),
        )),
    ]);
    let options = ServerOptions {
        auth: Some(Arc::new(server_auth)),
        ..ServerOptions::default()
    };
    let server = start_with(router, Transport::PlainLoopback, options).await;
    let both = AuthStack::new(vec![
        Arc::new(HmacAuth::new("service", b"s3cret", Role::Client).unwrap()),
        Arc::new(CapabilityAuth::client(holder, token)),
    ]);
    let client = Client::connect_plain(
        server.addr,
        ClientOptions {
            auth: Some(Arc::new(both)),
            ..ClientOptions::default()
        },
    )
    .await
    .unwrap();
    let ask = |uri: &'static str| {
        let client = &client;
        async move {
            let reply = client
                .request(MessageType::REQUEST_URI, uri, "")
                .await
                .unwrap();
            (
                reply.kind,
                String::from_utf8_lossy(&reply.body).into_owned(),
            )
        }
    };
    assert_eq!(
        ask("jobs").await,
        (MessageType::RESPOND_URI, "worker-7 via service".into())
    );
    assert_eq!(
        ask("admin").await,
        (MessageType::NOT_PERMITTED, "policy".into())
    );
    assert_eq!(
        ask("open").await,
        (MessageType::RESPOND_URI, "worker-7 via service".into())
    );

    // HMAC alone is not the stack: refused before any route.
    let hmac_only = Client::connect_plain(
        server.addr,
        ClientOptions {
            auth: Some(Arc::new(
                HmacAuth::new("service", b"s3cret", Role::Client).unwrap(),
            )),
            ..ClientOptions::default()
        },
    )
    .await
    .unwrap();
    let refused = hmac_only
        .request(MessageType::REQUEST_URI, "open", "")
        .await
        .unwrap();
    assert_eq!(refused.kind, MessageType::AUTH_ERROR);
}

#[tokio::test]
async fn proof_of_work_admission_is_per_connection() {
    let metrics = tessera_serve::Metrics::new();
    let server = start(
        Transport::PlainLoopback,
        ServerOptions {
            pow: Some(tessera_wire::PowAdmission {
                bits: 12,
                ttl: Duration::from_secs(60),
            }),
            metrics: Some(metrics.clone()),
            ..ServerOptions::default()
        },
    )
    .await;
    let client = Client::connect_plain(server.addr, ClientOptions::default())
        .await
        .unwrap();
    let refused = client
        .request(MessageType::REQUEST_URI, "echo", "early")
        .await
        .unwrap();
    assert_eq!(
        (refused.kind, &refused.body[..]),
        (MessageType::AUTH_ERROR, &b"pow_required"[..])
    );
    client.admit_with_work().await.unwrap();
    let reply = client
        .request(MessageType::REQUEST_URI, "echo", "paid")
        .await
        .unwrap();
    assert_eq!(
        (reply.kind, &reply.body[..]),
        (MessageType::RESPOND_URI, &b"paid"[..])
    );
    // A second connection starts unadmitted again.
    let other = Client::connect_plain(server.addr, ClientOptions::default())
        .await
        .unwrap();
    let refused = other
        .request(MessageType::REQUEST_URI, "echo", "free ride")
        .await
        .unwrap();
    assert_eq!(&refused.body[..], b"pow_required");
    // A solution without a challenge fails.
    let wrong = other
        .request(
            MessageType::CREATE_URI,
            tessera_wire::POW_SOLUTION_URI,
            "42",
        )
        .await
        .unwrap();
    assert_eq!(&wrong.body[..], b"pow_failed");
    let text = metrics.encode();
    for line in [
        "tessera_pow_challenges_issued_total 1",
        "tessera_pow_challenges_solved_total 1",
        "tessera_pow_challenges_failed_total 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
}
