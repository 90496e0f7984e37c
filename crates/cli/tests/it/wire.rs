//! `tessera wire echo-server` and `tessera wire request`: the echo contract
//! scripts rely on, over mutual TLS with a generated PKI and over loopback
//! plain TCP with HMAC.

use std::process::{Command, Output};

use crate::common;
use crate::common::stdout;

fn echo_server(args: &[&str]) -> common::Server {
    common::start(&["wire", "echo-server"], args)
}

fn request(server: &common::Server, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "wire",
            "request",
            "--connect",
            // A name, not an address: peers are HOST:PORT everywhere.
            &format!("localhost:{}", server.addr.port()),
            "--timeout",
            "20",
        ])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_echo_contract_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let pki = pki.to_str().unwrap();
    let server = echo_server(&["--pki", pki]);
    let echo = request(&server, &["--pki", pki, "--body", "hello"]);
    assert_eq!(
        (echo.status.code(), stdout(&echo).as_str()),
        (Some(0), "RESPOND_URI hello")
    );
    let missing = request(&server, &["--pki", pki, "--uri", "nowhere"]);
    assert_eq!(
        (missing.status.code(), stdout(&missing).as_str()),
        (Some(1), "NOT_FOUND not found")
    );
    let subscribed = request(
        &server,
        &["--pki", pki, "--type", "SUBSCRIBE_URI", "--uri", "news"],
    );
    assert_eq!(stdout(&subscribed), "CONFIRM_SUBSCRIBE");
    let published = request(
        &server,
        &[
            "--pki",
            pki,
            "--type",
            "publish_uri",
            "--uri",
            "news",
            "--body",
            "x",
        ],
    );
    assert_eq!(
        (published.status.code(), stdout(&published).as_str()),
        (Some(0), "OK")
    );
    // A client from another PKI gets nowhere.
    let other = dir.path().join("other");
    let made = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["certs", "dev", "--out", other.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(made.status.success());
    let stranger = request(&server, &["--pki", other.to_str().unwrap()]);
    assert_eq!(stranger.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&stranger.stderr).contains("TLS"),
        "{stranger:?}"
    );
}

#[test]
fn the_echo_contract_with_hmac_over_loopback() {
    let server = echo_server(&[
        "--plain",
        "--hmac-secret",
        "s3cret",
        "--metrics-listen",
        "0",
        "--rate-limit",
        "100/1",
    ]);
    let echo = request(
        &server,
        &["--plain", "--hmac-secret", "s3cret", "--body", "signed"],
    );
    assert_eq!(
        (echo.status.code(), stdout(&echo).as_str()),
        (Some(0), "RESPOND_URI signed")
    );
    let wrong = request(
        &server,
        &["--plain", "--hmac-secret", "guess", "--body", "x"],
    );
    assert_eq!(
        (wrong.status.code(), stdout(&wrong).as_str()),
        (Some(1), "AUTH_ERROR bad_mac")
    );
    let missing = request(&server, &["--plain", "--body", "x"]);
    assert_eq!(stdout(&missing), "AUTH_ERROR missing");
    let foreign = request(
        &server,
        &["--plain", "--hmac-secret", "s3cret", "--key-id", "other"],
    );
    assert_eq!(stdout(&foreign), "AUTH_ERROR unknown_key");
    let unrouted = request(
        &server,
        &["--plain", "--hmac-secret", "s3cret", "--uri", "nobody/here"],
    );
    assert_eq!(stdout(&unrouted), "NOT_FOUND not found");

    // The metrics saw it: routes by the URIs the server has, others as `unmatched`.
    let expected = [
        "tessera_wire_requests_total{type=\"REQUEST_URI\",result=\"RESPOND_URI\",uri=\"echo\"} 1",
        "tessera_wire_requests_total{type=\"REQUEST_URI\",result=\"NOT_FOUND\",uri=\"unmatched\"} 1",
        "tessera_wire_auth_failures_total 3",
        "tessera_wire_auth_refusals_total{reason=\"bad_mac\"} 1",
        "tessera_wire_auth_refusals_total{reason=\"missing\"} 1",
        "tessera_wire_auth_refusals_total{reason=\"unknown_key\"} 1",
        "tessera_wire_frames_total 2",
        "tessera_connections_admitted_total 5",
        "tessera_guard_tracked_clients 1",
    ];
    let text = common::scrape_until(server.metrics.expect("metrics"), |text| {
        expected.iter().all(|line| text.lines().any(|l| l == *line))
    });
    for line in expected {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
}

#[test]
fn the_hmac_secret_can_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("hmac.secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let secret = secret.to_str().unwrap();
    let server = echo_server(&["--plain", "--hmac-secret-file", secret]);
    // A client given the same secret on the command line is accepted: the
    // file's line ending is not part of the secret.
    let echo = request(
        &server,
        &["--plain", "--hmac-secret", "s3cret", "--body", "filed"],
    );
    assert_eq!(
        (echo.status.code(), stdout(&echo).as_str()),
        (Some(0), "RESPOND_URI filed")
    );
    let both = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "wire",
            "echo-server",
            "--plain",
            "--hmac-secret",
            "x",
            "--hmac-secret-file",
            secret,
        ])
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2), "{both:?}");
}

#[test]
fn every_session_has_an_access_line_at_the_default_level_without_the_address() {
    let (server, log) = common::start_logged(&["wire", "echo-server"], &["--plain"]);
    let echo = request(&server, &["--plain", "--body", "logged"]);
    assert_eq!(stdout(&echo), "RESPOND_URI logged");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let line = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = log.recv_timeout(left).expect("an access line within 30 s");
        if line.contains("session") {
            break line;
        }
    };
    assert!(line.contains("tessera::access"), "{line}");
    assert!(
        line.contains("protocol=\"wire\"") && line.contains("frames=1"),
        "{line}"
    );
    assert!(line.contains("client="), "the keyed client id: {line}");
    assert!(
        !line.contains("127.0.0.1"),
        "no raw address by default: {line}"
    );

    // The operator's opt-in: the address instead of the keyed id.
    let (server, log) =
        common::start_logged(&["wire", "echo-server"], &["--plain", "--log-client-ip"]);
    let echo = request(&server, &["--plain", "--body", "logged"]);
    assert_eq!(stdout(&echo), "RESPOND_URI logged");
    let line = common::wait_for_line(&log, "session");
    assert!(line.contains("client=\"127.0.0.1\""), "{line}");
}

#[test]
fn plain_tcp_is_refused_off_loopback() {
    let refused = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["wire", "echo-server", "--plain", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("loopback"));
}

#[test]
fn the_echo_contract_in_netaio_framing() {
    let server = echo_server(&["--netaio-compat", "--hmac-secret", "legacy"]);
    let compat = ["--netaio-compat", "--hmac-secret", "legacy"];
    let echo = request(&server, &[&compat[..], &["--body", "old friend"]].concat());
    assert_eq!(
        (echo.status.code(), stdout(&echo).as_str()),
        (Some(0), "RESPOND_URI old friend")
    );
    let missing = request(&server, &[&compat[..], &["--uri", "nowhere"]].concat());
    assert_eq!(stdout(&missing), "NOT_FOUND not found");
    let published = request(
        &server,
        &[&compat[..], &["--type", "PUBLISH_URI", "--uri", "news"]].concat(),
    );
    assert_eq!(stdout(&published), "OK");
    // Without the secret the reply is AUTH_ERROR (signed, so only a keyless client reads it).
    let refused = request(&server, &["--netaio-compat", "--body", "x"]);
    assert_eq!(
        (refused.status.code(), stdout(&refused).as_str()),
        (Some(1), "AUTH_ERROR HMAC auth failed")
    );
}

#[test]
fn bench_runs_briefly_and_prints_the_keys_scripts_use() {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "wire",
            "bench",
            "--seconds",
            "0.3",
            "--rounds",
            "1",
            "--clients",
            "1,2",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "c1_raw_echo_per_s",
        "c1_wire_per_s",
        "c1_wire_hmac_per_s",
        "c2_wire_per_s",
    ] {
        assert!(
            json[key].as_f64().is_some_and(|rate| rate > 0.0),
            "{key} in {json}"
        );
    }
}

/// `--deny` on the echo server closes a denied client before any frame (the
/// README said the guard applies; the flags were missing).
#[test]
fn regression_the_echo_server_takes_the_admission_flags() {
    let denied = echo_server(&["--plain", "--deny", "127.0.0.1"]);
    let refused = request(&denied, &["--plain", "--body", "hello"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stdout(&refused));
    let allowed = echo_server(&["--plain", "--allow", "127.0.0.0/8", "--rate-limit", "5/1"]);
    let echo = request(&allowed, &["--plain", "--body", "hello"]);
    assert_eq!(
        (echo.status.code(), stdout(&echo).as_str()),
        (Some(0), "RESPOND_URI hello")
    );
}

/// Four connections that pipeline 1 MiB echo requests and never read their
/// replies used to take the server from 274 MB to a 1,076 MB peak (256 queued
/// frames of 1 MiB each per connection) and it stayed there after they
/// closed. Output queued per connection is now bounded in bytes, and a peer
/// that does not read is not read either. Closed connections give their
/// memory back: RSS returns to within 2 MiB of the baseline, and a second
/// flood does not raise the peak.
#[test]
fn regression_peers_that_pipeline_and_never_read_hold_bounded_memory() {
    let server = echo_server(&["--plain"]);
    let echo = request(&server, &["--plain", "--body", "warm up"]);
    assert_eq!(echo.status.code(), Some(0));
    let (baseline, _) = server.memory_kib();

    flood_without_reading(&server);
    let (_, first_peak) = server.memory_kib();
    let after_first = settled(&server, baseline);
    // Per connection: 2 MiB queued (the frame being written included), one
    // reply waiting for room, one frame being read: 4 MiB, and 4 MiB for the
    // read buffer's growth and the allocator's rounding over four connections.
    assert!(
        first_peak.saturating_sub(baseline) < 4 * 4 * 1024 + 4 * 1024,
        "peak {first_peak} KiB, baseline {baseline} KiB"
    );
    flood_without_reading(&server);
    let (_, second_peak) = server.memory_kib();
    let after_second = settled(&server, baseline);
    eprintln!(
        "server memory (KiB): baseline {baseline}, first flood peak {first_peak}, \
         after it {after_first}, second flood peak {second_peak}, after it {after_second}"
    );
    assert!(
        second_peak.saturating_sub(first_peak) < 4 * 1024,
        "the second flood grew the server from a {first_peak} KiB to a {second_peak} KiB peak"
    );
    for after in [after_first, after_second] {
        assert!(
            after.saturating_sub(baseline) < SETTLED_KIB,
            "RSS stayed at {after} KiB after the peers left (baseline {baseline} KiB)"
        );
    }
    // And it still serves.
    let echo = request(&server, &["--plain", "--body", "still here"]);
    assert_eq!(stdout(&echo), "RESPOND_URI still here");
}

/// The server's RSS once it is back within [`SETTLED_KIB`] of `baseline`, or after 20 s.
fn settled(server: &common::Server, baseline: u64) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (now, _) = server.memory_kib();
        if now.saturating_sub(baseline) < SETTLED_KIB || std::time::Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// How close to its baseline RSS the server must come once flooding peers
/// have left: a flood raises it by about 12–15 MiB, and it settles within
/// 0.3 MiB of the baseline here (jemalloc's background thread purges pages
/// freed for a second). Under glibc's malloc it stayed 0.3–7 MiB above it,
/// in steps of one 1 MiB frame, and a second flood could peak 4 MiB higher.
const SETTLED_KIB: u64 = 2 * 1024;

/// Four connections each write 1 MiB echo requests without reading, until
/// the server stops reading them (their writes time out) or 256 MiB went out;
/// then they close.
fn flood_without_reading(server: &common::Server) {
    use std::io::Write;
    use std::time::Duration;

    let mut request = bytes::BytesMut::new();
    tessera_wire::Frame::new(
        tessera_wire::MessageType::REQUEST_URI,
        1,
        "echo",
        vec![7u8; 1024 * 1024 - 64],
    )
    .encode(&tessera_wire::Limits::default(), &mut request)
    .unwrap();
    let request = request.freeze();
    let flooders: Vec<_> = (0..4)
        .map(|_| {
            let request = request.clone();
            let mut tcp = std::net::TcpStream::connect(server.addr).unwrap();
            std::thread::spawn(move || {
                tcp.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
                (0..256)
                    .take_while(|_| tcp.write_all(&request).is_ok())
                    .count()
            })
        })
        .collect();
    for flooder in flooders {
        let sent = flooder.join().unwrap();
        assert!(
            sent < 256,
            "the server kept reading a peer that never reads"
        );
    }
}

/// A signed frame recorded on its way to a server used to be accepted again
/// by the same server after a restart (its replay cache starts empty). Now
/// a restarted server refuses every frame stamped before it started.
#[test]
fn regression_a_signed_frame_is_not_accepted_again_after_a_restart() {
    use tessera_wire::{FrameAuth, HmacAuth, Limits, MessageType, Role};

    let first = echo_server(&["--plain", "--hmac-secret", "s3cret"]);
    let client = HmacAuth::new("default", b"s3cret", Role::Client).unwrap();
    let mut frame = tessera_wire::Frame::new(MessageType::REQUEST_URI, 1, "echo", &b"once"[..]);
    client.sign(&mut frame);
    let mut recorded = bytes::BytesMut::new();
    frame.encode(&Limits::default(), &mut recorded).unwrap();

    assert_eq!(send_raw(&first, &recorded).kind, MessageType::RESPOND_URI);
    assert_eq!(send_raw(&first, &recorded).kind, MessageType::AUTH_ERROR);
    drop(first);
    let restarted = echo_server(&["--plain", "--hmac-secret", "s3cret"]);
    assert_eq!(
        send_raw(&restarted, &recorded).kind,
        MessageType::AUTH_ERROR
    );
}

/// Sends `bytes` on a new connection and returns the first frame back.
fn send_raw(server: &common::Server, bytes: &[u8]) -> tessera_wire::Frame {
    use std::io::{Read, Write};
    use std::time::Duration;

    let mut tcp = std::net::TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    tcp.write_all(bytes).unwrap();
    let mut received = bytes::BytesMut::new();
    loop {
        let limits = tessera_wire::Limits::default();
        if let Some(frame) = tessera_wire::Frame::decode(&mut received, &limits).unwrap() {
            return frame;
        }
        let mut chunk = [0u8; 4096];
        let read = tcp.read(&mut chunk).expect("a reply within 20 s");
        assert!(read > 0, "the server closed without a reply");
        received.extend_from_slice(&chunk[..read]);
    }
}

/// `wire subscribe` streams what others publish; `--body-file` (a file or
/// `-` for stdin) sends bodies a flag cannot hold.
#[test]
fn subscribe_streams_notifications_published_from_files_and_stdin() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::Stdio;

    /// The subscriber, killed on every path.
    struct Subscriber(std::process::Child);
    impl Drop for Subscriber {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let pki = pki.to_str().unwrap();
    let server = echo_server(&["--pki", pki]);
    let mut subscriber = Subscriber(
        Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["wire", "subscribe", "news", "--count", "2", "--pki", pki])
            .args(["--connect", &format!("localhost:{}", server.addr.port())])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Each wait on the subscriber in a thread, bounded, so a lost line fails
    // the test instead of hanging it (the guard kills the process).
    fn within<T: Send + 'static>(read: impl FnOnce() -> T + Send + 'static) -> T {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = sender.send(read());
        });
        receiver
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the subscriber did not answer in time")
    }
    // Ready once it says so (EOF first means it failed: the test fails).
    let stderr = subscriber.0.stderr.take().unwrap();
    let line = within(move || {
        let mut line = String::new();
        BufReader::new(stderr).read_line(&mut line).map(|_| line)
    })
    .unwrap();
    assert_eq!(line.trim(), "subscribed to news");

    let body_file = dir.path().join("body.txt");
    std::fs::write(&body_file, "from a file").unwrap();
    let from_file = request(
        &server,
        &[
            "--pki",
            pki,
            "--type",
            "PUBLISH_URI",
            "--uri",
            "news",
            "--body-file",
            body_file.to_str().unwrap(),
        ],
    );
    assert_eq!(stdout(&from_file), "OK");
    let mut from_stdin = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "wire",
            "request",
            "--pki",
            pki,
            "--type",
            "PUBLISH_URI",
            "--uri",
            "news",
        ])
        .args(["--connect", &server.addr.to_string(), "--body-file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    from_stdin
        .stdin
        .take()
        .unwrap()
        .write_all(b"from stdin")
        .unwrap();
    let from_stdin = from_stdin.wait_with_output().unwrap();
    assert_eq!(stdout(&from_stdin), "OK");

    // Two notifications, then it exits 0 by itself.
    let mut stdout_pipe = subscriber.0.stdout.take().unwrap();
    let printed = within(move || {
        let mut printed = String::new();
        stdout_pipe.read_to_string(&mut printed).map(|_| printed)
    })
    .unwrap();
    assert_eq!(
        printed,
        "NOTIFY_URI news from a file\nNOTIFY_URI news from stdin\n"
    );
    assert_eq!(subscriber.0.wait().unwrap().code(), Some(0));

    // A body past the frame limit is refused before anything is sent.
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'x'; 2 * 1024 * 1024]).unwrap();
    let refused = request(
        &server,
        &["--pki", pki, "--body-file", big.to_str().unwrap()],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(common::stderr(&refused).contains("frame limit"));
    let sent = request(
        &server,
        &["--pki", pki, "--body-file", body_file.to_str().unwrap()],
    );
    assert_eq!(stdout(&sent), "RESPOND_URI from a file");
}

/// Certificates issued from an existing CA make a node's `--pki` without
/// its key; a revoked one is refused by a server given the CRL.
#[test]
fn issued_certificates_work_and_revoked_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(args)
            .output()
            .unwrap()
    };
    assert!(run(&["certs", "dev", "--out", &path("ca")])
        .status
        .success());
    for (role, name, out) in [
        ("--server", "localhost", "server"),
        ("--client", "alice", "alice"),
        ("--client", "bob", "bob"),
    ] {
        let issued = run(&[
            "certs",
            "issue",
            "--ca-dir",
            &path("ca"),
            role,
            name,
            "--out",
            &path(out),
        ]);
        assert!(issued.status.success(), "{}", common::stderr(&issued));
        assert!(
            !dir.path().join(out).join("ca_key.pem").exists(),
            "the CA key was copied"
        );
    }
    let revoked = run(&[
        "certs",
        "revoke",
        "--ca-dir",
        &path("ca"),
        &path("bob/client_cert.pem"),
    ]);
    assert!(revoked.status.success(), "{}", common::stderr(&revoked));
    assert!(
        stdout(&revoked).starts_with("revoked: serial "),
        "{}",
        stdout(&revoked)
    );
    let again = run(&[
        "certs",
        "revoke",
        "--ca-dir",
        &path("ca"),
        &path("bob/client_cert.pem"),
    ]);
    assert!(
        stdout(&again).starts_with("already revoked:"),
        "{}",
        stdout(&again)
    );
    // A certificate of another CA is not this CA's to revoke.
    assert!(run(&["certs", "dev", "--out", &path("other")])
        .status
        .success());
    let foreign = run(&[
        "certs",
        "revoke",
        "--ca-dir",
        &path("ca"),
        &path("other/client_cert.pem"),
    ]);
    assert_eq!(foreign.status.code(), Some(1));
    assert!(
        common::stderr(&foreign).contains("did not issue"),
        "{}",
        common::stderr(&foreign)
    );

    let server = echo_server(&["--pki", &path("server"), "--crl", &path("ca/crl.pem")]);
    let alice = request(&server, &["--pki", &path("alice"), "--body", "hi"]);
    assert_eq!(
        stdout(&alice),
        "RESPOND_URI hi",
        "{}",
        common::stderr(&alice)
    );
    let bob = request(&server, &["--pki", &path("bob"), "--body", "hi"]);
    assert_eq!(bob.status.code(), Some(1));
    assert!(stdout(&bob).is_empty());
}

/// Revoking a client certificate and sending SIGHUP: that client is refused,
/// the connection it had open is closed, another client is still served.
#[test]
fn sighup_with_a_new_crl_closes_the_revoked_clients_connection_and_refuses_it() {
    use tessera_tls::rustls::pki_types::ServerName;
    use tessera_wire::{Client, ClientOptions, MessageType};

    let dir = tempfile::tempdir().unwrap();
    let ca = common::TestCa::new(dir.path());
    let path = |name: &str| ca.path(name);
    for name in ["alice", "bob", "carol"] {
        ca.issue_client(name);
    }
    // The CRL the server starts with lists carol only.
    ca.revoke("carol");
    let (server, log) = common::start_logged(
        &["wire", "echo-server"],
        &["--pki", &path("ca"), "--crl", &path("crl.pem")],
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let limit = std::time::Duration::from_secs(20);
    let connect = |who: &str| {
        let dir = dir.path().join(who);
        let roots = tessera_tls::load_roots(&dir.join("ca_cert.pem")).unwrap();
        let identity = tessera_tls::Identity::load(
            &dir.join("client_cert.pem"),
            &dir.join("ec_private_key.pem"),
        )
        .unwrap();
        let config =
            tessera_tls::client_config(tessera_tls::ServerAuth::Roots(roots), Some(&identity))
                .unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        runtime
            .block_on(Client::connect_tls(
                server.addr,
                name,
                config,
                ClientOptions::default(),
            ))
            .unwrap()
    };
    let echo = |client: &Client| {
        runtime.block_on(async {
            tokio::time::timeout(
                limit,
                client.request(MessageType::REQUEST_URI, "echo", "hi"),
            )
            .await
            .expect("an answer or an error in time")
            .map(|frame| frame.kind)
        })
    };

    // Alice's connection is open and served, with a subscription on it.
    let alice = connect("alice");
    assert_eq!(echo(&alice).unwrap(), MessageType::RESPOND_URI);
    let mut news = runtime.block_on(alice.subscribe("news")).unwrap();

    ca.revoke("alice");
    server.hang_up();
    let reloaded = common::wait_for_line(&log, "reloaded:");
    assert!(
        reloaded.contains("2 revoked certificate(s) listed, 1 open connection(s) closed"),
        "{reloaded}"
    );
    // Her open connection is closed…
    let ended = runtime.block_on(async { tokio::time::timeout(limit, news.next()).await });
    assert!(matches!(ended, Ok(None)), "{ended:?}");
    assert!(matches!(echo(&alice), Err(tessera_wire::Error::Closed)));
    // …a new one is refused in the handshake…
    assert!(echo(&connect("alice")).is_err());
    // …and Bob is still served.
    assert_eq!(echo(&connect("bob")).unwrap(), MessageType::RESPOND_URI);
}

/// A new secret in --hmac-secret-file and SIGHUP: new connections need the
/// new secret, and the connection already open keeps the one it started
/// with (that a rekeyed layer still refuses replays is `HmacAuth`'s unit test).
#[test]
fn sighup_with_a_new_hmac_secret_rekeys_new_connections() {
    use tessera_wire::{Client, ClientOptions, HmacAuth, MessageType, Role};

    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("hmac.secret");
    std::fs::write(&secret, "first secret\n").unwrap();
    let (server, log) = common::start_logged(
        &["wire", "echo-server"],
        &["--plain", "--hmac-secret-file", secret.to_str().unwrap()],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let limit = std::time::Duration::from_secs(20);
    let old_key = HmacAuth::new("default", b"first secret", Role::Client).unwrap();
    let open = runtime
        .block_on(Client::connect_plain(
            server.addr,
            ClientOptions {
                auth: Some(std::sync::Arc::new(old_key)),
                ..ClientOptions::default()
            },
        ))
        .unwrap();
    let echo = |client: &Client| {
        runtime.block_on(async {
            tokio::time::timeout(
                limit,
                client.request(MessageType::REQUEST_URI, "echo", "hi"),
            )
            .await
            .expect("an answer in time")
            .map(|frame| frame.kind)
        })
    };
    assert_eq!(echo(&open).unwrap(), MessageType::RESPOND_URI);

    // Renamed into place, as deployment tools write secrets.
    let next = dir.path().join("hmac.secret.new");
    std::fs::write(&next, "second secret\n").unwrap();
    std::fs::rename(&next, &secret).unwrap();
    server.hang_up();
    let reloaded = common::wait_for_line(&log, "reloaded:");
    assert!(
        reloaded.contains("a new HMAC secret for new connections"),
        "{reloaded}"
    );

    // The open connection goes on with the old secret…
    assert_eq!(echo(&open).unwrap(), MessageType::RESPOND_URI);
    // …a new one with the old secret is refused, with the new one served.
    let with = |secret: &str| {
        request(
            &server,
            &["--plain", "--hmac-secret", secret, "--body", "x"],
        )
    };
    assert_eq!(stdout(&with("first secret")), "AUTH_ERROR bad_mac");
    assert_eq!(stdout(&with("second secret")), "RESPOND_URI x");
}

/// The netaio-compatible server reloads its guard: a client the new access
/// list denies loses its open connection, and a new one is closed at once.
#[test]
fn sighup_with_a_new_guard_closes_a_denied_netaio_connection() {
    use tessera_wire::netaio::NetaioClient;
    use tessera_wire::MessageType;

    let dir = tempfile::tempdir().unwrap();
    let guard = dir.path().join("guard.toml");
    std::fs::write(&guard, "[guard.acl]\ndeny = [\"192.0.2.1\"]\n").unwrap();
    let (server, log) = common::start_logged(
        &["wire", "echo-server"],
        &["--netaio-compat", "--guard-config", guard.to_str().unwrap()],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let limit = std::time::Duration::from_secs(20);
    let mut open = runtime
        .block_on(NetaioClient::connect(server.addr, None, limit))
        .unwrap();
    let echo = |client: &mut NetaioClient| {
        runtime.block_on(client.request(MessageType::REQUEST_URI, b"echo", b"hi"))
    };
    assert_eq!(echo(&mut open).unwrap().content.as_ref(), b"hi");

    std::fs::write(&guard, "[guard.acl]\ndeny = [\"127.0.0.0/8\"]\n").unwrap();
    server.hang_up();
    let reloaded = common::wait_for_line(&log, "reloaded:");
    assert!(
        reloaded.contains("the guard; 1 open connection(s) closed"),
        "{reloaded}"
    );
    assert!(echo(&mut open).is_err());
    let refused = request(&server, &["--netaio-compat", "--body", "x"]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
}

/// A new key in --capability-issuer-file and SIGHUP: tokens of the new
/// issuer are accepted from then on, the old issuer's are refused.
#[test]
fn sighup_with_a_new_capability_issuer_trusts_its_tokens() {
    use crate::common::tessera;

    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let worker = stdout(&tessera(&["trust", "keygen", "--out", &p("worker.key")]));
    for (issuer, token) in [("old", "old.token"), ("new", "new.token")] {
        let key = p(&format!("{issuer}.key"));
        let public = stdout(&tessera(&["trust", "keygen", "--out", &key]));
        std::fs::write(p(&format!("{issuer}.pub")), format!("{public}\n")).unwrap();
        let minted = tessera(&[
            "trust",
            "mint",
            "--issuer-key",
            &key,
            "--worker-public",
            &worker,
            "--holder-id",
            "w-1",
            "--expires-at",
            "4000000000",
        ]);
        assert!(minted.status.success(), "{}", common::stderr(&minted));
        std::fs::write(p(token), stdout(&minted)).unwrap();
    }
    std::fs::copy(p("old.pub"), p("issuer.pub")).unwrap();
    let (server, log) = common::start_logged(
        &["wire", "echo-server"],
        &["--plain", "--capability-issuer-file", &p("issuer.pub")],
    );
    let with = |token: &str| {
        request(
            &server,
            &[
                "--plain",
                "--token",
                &p(token),
                "--worker-key",
                &p("worker.key"),
                "--body",
                "hi",
            ],
        )
    };
    assert_eq!(stdout(&with("old.token")), "RESPOND_URI hi");
    assert_eq!(stdout(&with("new.token")), "AUTH_ERROR invalid_token");

    std::fs::copy(p("new.pub"), p("issuer.pub.tmp")).unwrap();
    std::fs::rename(p("issuer.pub.tmp"), p("issuer.pub")).unwrap();
    server.hang_up();
    let reloaded = common::wait_for_line(&log, "reloaded:");
    assert!(
        reloaded.contains("a new capability issuer for new connections"),
        "{reloaded}"
    );
    assert_eq!(stdout(&with("new.token")), "RESPOND_URI hi");
    assert_eq!(stdout(&with("old.token")), "AUTH_ERROR invalid_token");
}
