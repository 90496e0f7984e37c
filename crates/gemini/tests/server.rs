//! The capsule server and client over loopback: every status the server
//! sends, traversal attempts, SNI virtual hosts, client-certificate paths,
//! rate limiting, TOFU first use and mismatch, hostile clients, and the
//! client against molly-brown when it is installed.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tessera_gemini::{Capsule, Error};
use tessera_gemini::{Client, ClientOptions, Header, Server, ServerSettings, VirtualHost};
use tessera_guard::{CertRuleConfig, RateLimitConfig};
use tessera_tls::tofu::HostKey;
use tessera_tls::{self_signed, Fingerprint, Identity, KeyType, TofuStore, Usage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;

/// Every network wait in these tests.
const WAIT: Duration = Duration::from_secs(20);

struct Capsules {
    dir: tempfile::TempDir,
}

impl Capsules {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("main");
        for sub in ["docs", "private", "admin", "empty"] {
            std::fs::create_dir_all(main.join(sub)).unwrap();
        }
        std::fs::write(main.join("index.gmi"), "# Main capsule\n").unwrap();
        std::fs::write(main.join("docs/note.txt"), "a note").unwrap();
        std::fs::write(main.join("private/index.gmi"), "# Private\n").unwrap();
        std::fs::write(main.join("admin/index.gmi"), "# Admin\n").unwrap();
        std::fs::write(main.join("big.bin"), vec![7u8; 300_000]).unwrap();
        std::fs::write(dir.path().join("secret.gmi"), "# Outside the root\n").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.gmi"), main.join("link.gmi")).unwrap();
        let other = dir.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("index.gmi"), "# Other capsule\n").unwrap();
        Self { dir }
    }

    fn host(&self, name: &str, root: &str) -> VirtualHost {
        let issued = self_signed(name, &[], Usage::Server, KeyType::default(), 30).unwrap();
        VirtualHost {
            name: name.to_owned(),
            capsule: Capsule::new(
                &self.dir.path().join(root),
                "text/gemini; charset=utf-8".into(),
                true,
            )
            .unwrap(),
            identity: issued.identity().unwrap(),
        }
    }
}

/// A running server; stops (and is awaited) on drop of the sender.
struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    hosts: Vec<VirtualHost>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
        }
    }
}

async fn start(settings: ServerSettings) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hosts = settings.hosts.clone();
    let server = Server::from_listener(listener, settings).unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .run(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Running {
        addr,
        stop: Some(stop),
        task: Some(task),
        hosts,
    }
}

fn settings(capsules: &Capsules) -> ServerSettings {
    let mut settings = ServerSettings::new(vec![
        capsules.host("localhost", "main"),
        capsules.host("other.test", "other"),
    ]);
    settings.request_timeout = Duration::from_millis(500);
    settings.guard.cert_rules = vec![
        CertRuleConfig {
            prefix: "/private/".into(),
            mode: Some("any".into()),
            fingerprints: vec![],
            require_cert: false,
            allowed_fingerprints: None,
        },
        CertRuleConfig {
            prefix: "/admin".into(),
            mode: Some("listed".into()),
            fingerprints: vec![Fingerprint::of_der(admin().leaf()).to_string()],
            require_cert: false,
            allowed_fingerprints: None,
        },
    ];
    settings
}

fn admin() -> Identity {
    static ADMIN: std::sync::OnceLock<Identity> = std::sync::OnceLock::new();
    ADMIN
        .get_or_init(|| {
            self_signed("admin", &[], Usage::Client, KeyType::default(), 30)
                .unwrap()
                .identity()
                .unwrap()
        })
        .clone()
}

fn stranger() -> Identity {
    self_signed("stranger", &[], Usage::Client, KeyType::default(), 30)
        .unwrap()
        .identity()
        .unwrap()
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// A TLS connection to `addr` with `sni`, accepting any server certificate
/// (loopback only), within [`WAIT`].
async fn connect(addr: SocketAddr, sni: &str, identity: Option<&Identity>) -> std::io::Result<Tls> {
    let config = tessera_tls::dangerous::insecure_client_config("127.0.0.1", identity)
        .map_err(std::io::Error::other)?;
    let name = tessera_tls::server_name(sni).map_err(std::io::Error::other)?;
    let work = async {
        let tcp = TcpStream::connect(addr).await?;
        TlsConnector::from(config).connect(name, tcp).await
    };
    tokio::time::timeout(WAIT, work).await?
}

/// Sends `request` raw over TLS with `sni` and returns everything the server sent.
async fn raw(addr: SocketAddr, sni: &str, request: &[u8], identity: Option<&Identity>) -> String {
    let mut tls = connect(addr, sni, identity).await.unwrap();
    tls.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, tls.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

async fn status(addr: SocketAddr, url: &str) -> String {
    let response = raw(addr, "localhost", format!("{url}\r\n").as_bytes(), None).await;
    response.lines().next().unwrap_or_default().to_owned()
}

fn client(dir: &Path, identity: Option<Identity>) -> Client {
    let store = Arc::new(TofuStore::open(&dir.join("tofu.sqlite3")).unwrap());
    Client::new(
        store,
        ClientOptions {
            identity,
            timeout: WAIT,
            ..ClientOptions::default()
        },
    )
}

#[tokio::test]
async fn serves_files_listings_redirects_and_every_error_status() {
    let capsules = Capsules::new();
    let server = start(settings(&capsules)).await;
    let port = server.addr.port();
    let base = format!("gemini://localhost:{port}");
    let client = client(capsules.dir.path(), None);

    let home = client.get(&format!("{base}/")).await.unwrap();
    assert_eq!(home.header, Header::success("text/gemini; charset=utf-8"));
    assert_eq!(home.body, b"# Main capsule\n");

    let docs = client.get(&format!("{base}/docs")).await.unwrap();
    assert_eq!(docs.redirects.len(), 1);
    assert_eq!(docs.url.path(), "/docs/");
    let listing = String::from_utf8(docs.body).unwrap();
    assert!(listing.contains("=> note.txt note.txt"), "{listing}");

    let note = client
        .get(&format!("{base}/docs/note.txt?x=1"))
        .await
        .unwrap();
    assert_eq!(
        (note.header.meta.as_str(), &note.body[..]),
        ("text/plain", &b"a note"[..])
    );
    let big = client.get(&format!("{base}/big.bin")).await.unwrap();
    assert_eq!(big.body.len(), 300_000);

    assert_eq!(
        status(server.addr, &format!("{base}/missing")).await,
        "51 Not found"
    );
    assert_eq!(
        status(server.addr, &format!("{base}/docs")).await,
        "31 /docs/"
    );
    // Other hosts and ports are not ours.
    assert_eq!(
        status(server.addr, &format!("gemini://example.com:{port}/")).await,
        "53 Proxy request refused"
    );
    assert_eq!(
        status(
            server.addr,
            &format!("gemini://localhost:{}/", port.wrapping_add(1))
        )
        .await,
        "53 Proxy request refused"
    );
    // Malformed requests.
    for (request, expected) in [
        ("https://localhost/", "53 Proxy request refused"),
        ("gopher://localhost/", "53 Proxy request refused"),
        ("/relative", "59 Not an absolute URL"),
        (
            "gemini://user@localhost/",
            "59 URL must not contain userinfo",
        ),
        (
            "gemini://localhost/#top",
            "59 URL must not contain a fragment",
        ),
    ] {
        assert_eq!(status(server.addr, request).await, expected, "{request}");
    }
    server.stop().await;
}

#[tokio::test]
async fn no_path_leaves_the_root() {
    let capsules = Capsules::new();
    let server = start(settings(&capsules)).await;
    let base = format!("gemini://localhost:{}", server.addr.port());
    for path in [
        "/..%2Fsecret.gmi",
        "/docs%2F..%2F..%2Fsecret.gmi",
        "/link.gmi",
        "/%2e%2e%5Csecret.gmi",
    ] {
        let line = status(server.addr, &format!("{base}{path}")).await;
        assert!(line.starts_with("51"), "{path}: {line}");
    }
    // Dot and empty segments are refused as sent, never resolved to another path.
    for (path, expected) in [
        ("/../secret.gmi", "59 Path must not contain dot segments"),
        (
            "/docs/../../secret.gmi",
            "59 Path must not contain dot segments",
        ),
        (
            "/%2e%2e/secret.gmi",
            "59 Path must not contain dot segments",
        ),
        (
            "/%2E%2E/%2e%2e/secret.gmi",
            "59 Path must not contain dot segments",
        ),
        ("/docs/../private/", "59 Path must not contain dot segments"),
        ("/./private/", "59 Path must not contain dot segments"),
        ("//private/", "59 Path must not contain empty segments"),
        ("/%70rivate/", "60 Client certificate required"),
    ] {
        let line = status(server.addr, &format!("{base}{path}")).await;
        assert_eq!(line, expected, "{path}");
    }
    server.stop().await;
}

/// The escapes of escapes that once opened `/private/` without a certificate
/// (a bare `%` decoded twice), and their cousins, against both hosts.
#[tokio::test]
async fn regression_double_percent_decoding_never_opens_a_protected_path() {
    let capsules = Capsules::new();
    let main = capsules.dir.path().join("main");
    std::fs::create_dir_all(main.join("private/deep")).unwrap();
    std::fs::write(main.join("private/deep/index.gmi"), "# Deep\n").unwrap();
    std::fs::create_dir_all(capsules.dir.path().join("other/private")).unwrap();
    std::fs::write(
        capsules.dir.path().join("other/private/index.gmi"),
        "# Private\n",
    )
    .unwrap();
    let server = start(settings(&capsules)).await;
    let port = server.addr.port();
    let refused = [
        "/%%37%30rivate/",
        "/%%37%30rivate/index.gmi",
        "/%%37%30%%37%32ivate/",
        "/%%32%65%%32%65/private/",
        "/x/%%32%65%%32%65/private/",
        "/X/%%32%45%%32%45/private/deep/",
        "/%%36%31dmin/",
        "/%",
        "/private%",
    ];
    let protected = [
        "/private/",
        "/%70rivate/",
        "/priv%61te/deep/",
        "/%70%72%69%76%61%74%65/deep/index.gmi",
    ];
    let dotted = [
        "/%70RIVATE/../private/",
        "/x/%2e%2e/private/",
        "/x/y/.%2E/%2E./private/deep/",
    ];
    for host in ["localhost", "other.test"] {
        let base = format!("gemini://{host}:{port}");
        for (paths, expected) in [
            (&refused[..], "59 Invalid percent-escape in path\r\n"),
            (&protected[..], "60 Client certificate required\r\n"),
            (&dotted[..], "59 Path must not contain dot segments\r\n"),
            (
                &["//private//deep/"][..],
                "59 Path must not contain empty segments\r\n",
            ),
        ] {
            for path in paths {
                let request = format!("{base}{path}\r\n");
                let response = raw(server.addr, host, request.as_bytes(), None).await;
                assert_eq!(response, expected, "{host}{path}");
            }
        }
    }
    // A listed prefix holds the same way: the stranger's certificate is not on the list.
    let base = format!("gemini://localhost:{port}");
    let stranger = stranger();
    for (path, expected) in [
        ("/%61dmin/", "61 Certificate not authorized\r\n"),
        ("/x/../admin", "59 Path must not contain dot segments\r\n"),
        ("/%61%64%6D%69%6E/", "61 Certificate not authorized\r\n"),
        ("/%%36%31dmin/", "59 Invalid percent-escape in path\r\n"),
    ] {
        let request = format!("{base}{path}\r\n");
        let response = raw(
            server.addr,
            "localhost",
            request.as_bytes(),
            Some(&stranger),
        )
        .await;
        assert_eq!(response, expected, "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn virtual_hosts_are_chosen_by_sni_and_url() {
    let capsules = Capsules::new();
    let server = start(settings(&capsules)).await;
    let port = server.addr.port();
    let other = raw(
        server.addr,
        "other.test",
        format!("gemini://other.test:{port}/\r\n").as_bytes(),
        None,
    )
    .await;
    assert_eq!(other, "20 text/gemini; charset=utf-8\r\n# Other capsule\n");
    // The certificate presented is the one of the SNI host.
    for (name, host) in [("other.test", 1), ("localhost", 0)] {
        let tls = connect(server.addr, name, None).await.unwrap();
        let presented = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
        assert_eq!(&presented, server.hosts[host].identity.leaf(), "{name}");
    }
    // A request for one host over a connection made for another is refused.
    let crossed = raw(
        server.addr,
        "other.test",
        format!("gemini://localhost:{port}/\r\n").as_bytes(),
        None,
    )
    .await;
    assert_eq!(crossed, "53 Proxy request refused\r\n");
    server.stop().await;
}

#[tokio::test]
async fn client_certificates_open_protected_paths() {
    let capsules = Capsules::new();
    let server = start(settings(&capsules)).await;
    let base = format!("gemini://localhost:{}", server.addr.port());
    let anonymous = client(capsules.dir.path(), None);
    let stranger = client(capsules.dir.path(), Some(stranger()));
    let admin = client(capsules.dir.path(), Some(admin()));

    let line = |r: tessera_gemini::Response| r.header.to_string();
    assert_eq!(
        line(anonymous.get(&format!("{base}/private/")).await.unwrap()),
        "60 Client certificate required"
    );
    assert_eq!(
        line(stranger.get(&format!("{base}/private/")).await.unwrap()),
        "20 text/gemini; charset=utf-8"
    );
    assert_eq!(
        line(anonymous.get(&format!("{base}/admin/")).await.unwrap()),
        "60 Client certificate required"
    );
    assert_eq!(
        line(stranger.get(&format!("{base}/admin/")).await.unwrap()),
        "61 Certificate not authorized"
    );
    let ok = admin.get(&format!("{base}/admin")).await.unwrap();
    assert_eq!((ok.header.status, &ok.body[..]), (20, &b"# Admin\n"[..]));
    server.stop().await;
}

/// A client that keeps a session cache resumes (a ticket instead of a full
/// handshake), and the resumed session still carries its certificate for
/// the certificate rules.
#[tokio::test]
async fn clients_resume_sessions_with_their_certificate() {
    use tokio_rustls::rustls::HandshakeKind;

    let capsules = Capsules::new();
    let server = start(settings(&capsules)).await;
    let identity = admin();
    // One config, so one session cache for both connections.
    let config =
        tessera_tls::dangerous::insecure_client_config("127.0.0.1", Some(&identity)).unwrap();
    let url = format!("gemini://localhost:{}/admin/\r\n", server.addr.port());
    let mut kinds = Vec::new();
    for _ in 0..2 {
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        let name = tessera_tls::server_name("localhost").unwrap();
        let mut tls =
            tokio::time::timeout(WAIT, TlsConnector::from(config.clone()).connect(name, tcp))
                .await
                .unwrap()
                .unwrap();
        tls.write_all(url.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        // Reading to the end also takes in the tickets the server sent.
        tokio::time::timeout(WAIT, tls.read_to_end(&mut out))
            .await
            .unwrap()
            .unwrap();
        assert!(
            out.ends_with(b"# Admin\n"),
            "{}",
            String::from_utf8_lossy(&out)
        );
        kinds.push(tls.get_ref().1.handshake_kind());
    }
    assert_eq!(
        kinds,
        [Some(HandshakeKind::Full), Some(HandshakeKind::Resumed)]
    );
    server.stop().await;
}

#[tokio::test]
async fn an_expired_client_certificate_gets_62() {
    let capsules = Capsules::new();
    let server = start(settings(&capsules)).await;
    let base = format!("gemini://localhost:{}", server.addr.port());
    let old = old_client_identity();
    let response = raw(
        server.addr,
        "localhost",
        format!("{base}/private/\r\n").as_bytes(),
        Some(&old),
    )
    .await;
    assert_eq!(response, "62 Certificate not valid\r\n");
    server.stop().await;
}

/// A client certificate whose validity ended years ago.
fn old_client_identity() -> Identity {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["old".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    Identity::from_der(vec![cert.der().clone()], key).unwrap()
}

#[tokio::test]
async fn the_rate_limit_answers_44_with_the_real_wait() {
    let capsules = Capsules::new();
    let mut settings = settings(&capsules);
    // Burst 2, one more every 50 s.
    settings.guard.rate_limit = Some(RateLimitConfig {
        rate: 0.02,
        burst: 2,
        ..RateLimitConfig::default()
    });
    let server = start(settings).await;
    let url = format!("gemini://localhost:{}/", server.addr.port());
    assert!(status(server.addr, &url).await.starts_with("20"));
    // A malformed request is charged too.
    assert!(status(server.addr, "nonsense").await.starts_with("59"));
    let limited = status(server.addr, &url).await;
    let seconds: u64 = limited
        .strip_prefix("44 ")
        .unwrap_or_else(|| panic!("expected 44, got {limited:?}"))
        .parse()
        .unwrap();
    // 50 s minus the time the two requests took, rounded up.
    assert!((45..=50).contains(&seconds), "{limited}");
    server.stop().await;
}

#[tokio::test]
async fn tofu_pins_on_first_use_and_refuses_a_changed_certificate() {
    let capsules = Capsules::new();
    let server = start(settings(&capsules)).await;
    let port = server.addr.port();
    let url = format!("gemini://localhost:{port}/");
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path(), None);
    client.get(&url).await.unwrap();
    let store = TofuStore::open(&dir.path().join("tofu.sqlite3")).unwrap();
    let key = HostKey::new("localhost", port).unwrap();
    let pinned = store.lookup(&key).unwrap().unwrap();
    let served = Fingerprint::of_der(server.hosts[0].identity.leaf());
    assert_eq!(pinned.fingerprint, served);
    client.get(&url).await.unwrap();

    // Pin something else: the next request fails in the handshake, naming both.
    let other = Fingerprint::of_der(stranger().leaf());
    store
        .trust(&key, other, None, time::OffsetDateTime::now_utc())
        .unwrap();
    let error = client.get(&url).await.unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, Error::Tls(_)), "{error:?}");
    assert!(
        text.contains(&other.to_string()) && text.contains(&served.to_string()),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn hostile_clients_do_not_stop_the_server() {
    let capsules = Capsules::new();
    let server = start(settings(&capsules)).await;
    let base = format!("gemini://localhost:{}", server.addr.port());

    // No CRLF before the client closes its side.
    let mut tls = connect(server.addr, "localhost", None).await.unwrap();
    tls.write_all(format!("{base}/").as_bytes()).await.unwrap();
    tls.shutdown().await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(WAIT, tls.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out, "59 Request must end with CRLF\r\n");

    // Bare LF.
    let out = raw(
        server.addr,
        "localhost",
        format!("{base}/\n").as_bytes(),
        None,
    )
    .await;
    assert_eq!(out, "59 Request must end with CRLF\r\n");

    // 1024 bytes are fine, 1025 are not.
    let filler = |n: usize| format!("{base}/{}", "a".repeat(n - base.len() - 1));
    assert_eq!(status(server.addr, &filler(1024)).await, "51 Not found");
    assert_eq!(
        status(server.addr, &filler(1025)).await,
        "59 Request longer than 1024 bytes"
    );
    let flood = raw(server.addr, "localhost", &vec![b'a'; 10_000], None).await;
    assert_eq!(flood, "59 Request longer than 1024 bytes\r\n");

    // A slow sender gets 40 when the request deadline passes.
    let out = raw(
        server.addr,
        "localhost",
        format!("{base}/").as_bytes(),
        None,
    )
    .await;
    assert_eq!(out, "40 Request timeout\r\n");

    // Plain TCP to the TLS port: closed, nothing served.
    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    plain.write_all(b"gemini://localhost/\r\n").await.unwrap();
    let mut junk = Vec::new();
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut junk))
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&junk).contains("20 "));

    // Invalid UTF-8.
    let out = raw(
        server.addr,
        "localhost",
        b"gemini://localhost/\xff\xfe\r\n",
        None,
    )
    .await;
    assert_eq!(out, "59 Request is not UTF-8\r\n");

    // Still serving.
    assert!(status(server.addr, &format!("{base}/"))
        .await
        .starts_with("20"));
    server.stop().await;
}

/// Kills the child on every path.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn our_client_fetches_from_molly_brown() {
    if std::process::Command::new("molly-brown")
        .arg("-h")
        .output()
        .is_err()
    {
        // Straight to stderr: the harness captures print macros of passing tests.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIP: molly-brown is not installed (apt install molly-brown; .ci/run installs it)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("capsule");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("index.gmi"), "# Served by molly-brown\n").unwrap();
    let issued = self_signed("localhost", &[], Usage::Server, KeyType::default(), 30).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    issued.write(&cert, &key, false).unwrap();
    // molly-brown cannot report a port: take a free one, then wait until it accepts.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("molly.conf");
    std::fs::write(
        &config,
        format!(
            "Port = {port}\nHostname = \"localhost\"\nCertPath = \"{}\"\nKeyPath = \"{}\"\nDocBase = \"{}\"\nAccessLog = \"{}\"\nErrorLog = \"{}\"\n",
            cert.display(),
            key.display(),
            root.display(),
            dir.path().join("access.log").display(),
            dir.path().join("error.log").display(),
        ),
    )
    .unwrap();
    let _molly = KillOnDrop(
        std::process::Command::new("molly-brown")
            .arg("-c")
            .arg(&config)
            .spawn()
            .unwrap(),
    );
    tokio::time::timeout(WAIT, async {
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("molly-brown did not start listening");
    let client = client(dir.path(), None);
    let response = client
        .get(&format!("gemini://localhost:{port}/"))
        .await
        .unwrap();
    assert_eq!(response.header.status, 20);
    assert!(response.header.meta.starts_with("text/gemini"));
    assert_eq!(response.body, b"# Served by molly-brown\n");
    let missing = client
        .get(&format!("gemini://localhost:{port}/missing.gmi"))
        .await
        .unwrap();
    assert_eq!(missing.header.status, 51);
}

#[tokio::test]
async fn the_acl_answers_53_and_connection_caps_close_at_once() {
    let capsules = Capsules::new();
    let mut settings = settings(&capsules);
    settings.guard.acl = Some(tessera_guard::AclConfig {
        allow: vec![],
        deny: vec!["127.0.0.0/8".into()],
        default: None,
    });
    let server = start(settings).await;
    let url = format!("gemini://localhost:{}/", server.addr.port());
    assert_eq!(status(server.addr, &url).await, "53 Access denied");
    server.stop().await;

    let mut settings = self::settings(&capsules);
    settings.guard.connections = Some(tessera_guard::ConnectionsConfig {
        max_connections: 100,
        max_connections_per_client: 2,
    });
    settings.request_timeout = Duration::from_secs(30);
    let server = start(settings).await;
    let url = format!("gemini://localhost:{}/", server.addr.port());
    // Two idle TLS connections hold this client's slots...
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(connect(server.addr, "localhost", None).await.unwrap());
    }
    // ...so a third is closed before TLS.
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(WAIT, third.read(&mut buffer))
        .await
        .unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // Releasing one slot lets a request through.
    drop(held.pop());
    let line = tokio::time::timeout(WAIT, async {
        loop {
            let line = tokio::spawn(status_owned(server.addr, url.clone())).await;
            if let Ok(Some(line)) = line {
                return line;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert!(line.starts_with("20"), "{line}");
    drop(held);
    server.stop().await;
}

/// Like [`status`], but `None` when the server closes before answering.
async fn status_owned(addr: SocketAddr, url: String) -> Option<String> {
    let mut tls = connect(addr, "localhost", None).await.ok()?;
    tls.write_all(format!("{url}\r\n").as_bytes()).await.ok()?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await.ok()?;
    let text = String::from_utf8_lossy(&out).into_owned();
    text.lines().next().map(str::to_owned)
}

#[tokio::test]
async fn shutdown_finishes_running_requests_then_stops_accepting() {
    let capsules = Capsules::new();
    let mut settings = settings(&capsules);
    settings.request_timeout = Duration::from_secs(30);
    let server = start(settings).await;
    let addr = server.addr;
    let base = format!("gemini://localhost:{}", addr.port());
    // A connection in the middle of its request when shutdown starts...
    let mut tls = connect(addr, "localhost", None).await.unwrap();
    tls.write_all(b"gemini://localhost:").await.unwrap();
    let stopping = tokio::spawn(server.stop());
    // ...can still finish it within the grace period.
    tls.write_all(format!("{}/\r\n", addr.port()).as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(WAIT, tls.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(out.starts_with("20 "), "{out}");
    tokio::time::timeout(WAIT, stopping).await.unwrap().unwrap();
    // The listener is gone.
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "{base} still accepts"
    );
}

#[tokio::test]
async fn the_client_stops_after_five_redirects() {
    // A server that always redirects one step further.
    let issued = self_signed("localhost", &[], Usage::Server, KeyType::default(), 30).unwrap();
    let tls =
        tessera_tls::server_config(&issued.identity().unwrap(), tessera_tls::ClientAuth::None)
            .unwrap();
    struct Redirects(std::sync::atomic::AtomicU32);
    impl tessera_serve::Handler for Redirects {
        async fn serve(self: Arc<Self>, connection: tessera_serve::Admitted) {
            let mut tls = connection.stream;
            let mut line = [0u8; 1100];
            let _ = tls.read(&mut line).await;
            let count = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            let _ = tls
                .write_all(format!("31 /hop{count}\r\n").as_bytes())
                .await;
            let _ = tls.shutdown().await;
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = tessera_serve::Listener::from(listener);
    let mut config = tessera_serve::StageConfig::default();
    config.tls(tls);
    let stage =
        Arc::new(tessera_serve::Stage::new(&listener.local_addr().unwrap(), config).unwrap());
    let served = tokio::spawn(stage.run(
        listener,
        Arc::new(Redirects(0.into())),
        std::future::pending(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let error = client(dir.path(), None)
        .get(&format!("gemini://localhost:{}/", addr.port()))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::TooManyRedirects(5)), "{error:?}");
    served.abort();
}
