//! Hostile clients: each gets the reply the spec prescribes (a FAIL line or a
//! closed connection) and the server keeps serving a correct session afterwards.

use std::time::Duration;

use tessera_tls::rustls::pki_types::ServerName;
use tessera_tls::tokio_rustls::client::TlsStream;
use tessera_tls::tokio_rustls::TlsConnector;
use tessera_tlslp::driver::{connect_and_run, SessionEnd};
use tessera_tlslp::logfile::NoLog;
use tessera_tlslp::{checksum, Sequence, DEFAULT_TOKEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::util::{TestServer, TIMEOUT};

pub(crate) async fn read_line(tls: &mut TlsStream<TcpStream>) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(TIMEOUT, async {
        loop {
            match tls.read(&mut byte).await {
                Ok(0) | Err(_) => break,
                Ok(_) if byte[0] == b'\n' => break,
                Ok(_) => line.push(byte[0]),
            }
        }
    })
    .await
    .expect("no line from the server");
    String::from_utf8(line).unwrap()
}

async fn send(tls: &mut TlsStream<TcpStream>, bytes: &[u8]) {
    tls.write_all(bytes).await.unwrap();
}

/// Answers a tutorial session at n_bits 0 by hand after HELLO was read.
pub(crate) async fn finish_tutorial_session(tls: &mut TlsStream<TcpStream>) {
    send(tls, b"HELLOBACK\n").await;
    assert!(read_line(tls).await.starts_with("WORK "));
    send(tls, b"\n").await;
    let sum = checksum(DEFAULT_TOKEN, "LGTk");
    for _ in 0..8 {
        let line = read_line(tls).await;
        assert!(line.ends_with(" LGTk"), "{line}");
        send(tls, format!("{sum} value\n").as_bytes()).await;
    }
    assert_eq!(read_line(tls).await, "DONE");
    send(tls, b"OK\n").await;
}

/// Reads HELLO and WORK, answering HELLO; returns the WORK line.
async fn to_work(tls: &mut TlsStream<TcpStream>) -> String {
    assert_eq!(read_line(tls).await, "HELLO");
    send(tls, b"HELLOBACK\n").await;
    read_line(tls).await
}

async fn still_serves(server: &TestServer) {
    let report = connect_and_run(&server.client_options(), &NoLog)
        .await
        .unwrap();
    assert_eq!(report.end, SessionEnd::Done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_suffix_gets_its_fail_line() {
    let mut server = TestServer::start(Sequence::Tutorial, 24, |_| {}).await;
    let mut tls = server.raw().await;
    assert!(to_work(&mut tls).await.starts_with("WORK "));
    send(&mut tls, b"urRb\n").await; // 0 trailing zero bits (spec §4.3)
    assert_eq!(
        read_line(&mut tls).await,
        "FAIL Invalid suffix returned from client."
    );
    assert_eq!(
        server.next_record().await.outcome.to_string(),
        "fail:invalidsuffix"
    );
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_checksum_gets_its_fail_line() {
    let mut server = TestServer::start(Sequence::Tutorial, 0, |_| {}).await;
    let mut tls = server.raw().await;
    to_work(&mut tls).await;
    send(&mut tls, b"\n").await;
    assert_eq!(read_line(&mut tls).await, "FULL_NAME LGTk");
    send(&mut tls, format!("{} Sample\n", "0".repeat(64)).as_bytes()).await;
    assert_eq!(read_line(&mut tls).await, "FAIL Invalid checksum received.");
    assert_eq!(
        server.next_record().await.outcome.to_string(),
        "fail:invalidchecksum"
    );
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_and_non_utf8_replies_get_fail_receiving() {
    let mut server = TestServer::start(Sequence::Tutorial, 0, |_| {}).await;
    for bad in [
        format!("{}\n", "a".repeat(1000)).into_bytes(),
        b"\xff\xfe\xfd\n".to_vec(),
        vec![b'x'; 5000],
    ] {
        let mut tls = server.raw().await;
        assert_eq!(read_line(&mut tls).await, "HELLO");
        let _ = tls.write_all(&bad).await;
        assert_eq!(read_line(&mut tls).await, "FAIL receiving.");
        assert_eq!(
            server.next_record().await.outcome.to_string(),
            "fail:receiving"
        );
    }
    // 999 bytes + LF is fine.
    let mut tls = server.raw().await;
    assert_eq!(read_line(&mut tls).await, "HELLO");
    send(&mut tls, format!("{}\n", "a".repeat(999)).as_bytes()).await;
    assert!(read_line(&mut tls).await.starts_with("WORK "));
    drop(tls);
    let _ = server.next_record().await;
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_tcp_missing_certificate_and_silence_end_only_their_connection() {
    let mut server = TestServer::start(Sequence::Tutorial, 0, |o| {
        o.handshake_timeout = Duration::from_secs(2);
    })
    .await;

    // Plain TCP speaking the protocol to the TLS port.
    let mut plain = TcpStream::connect(server.address).await.unwrap();
    plain.write_all(b"HELLOBACK\n").await.unwrap();
    assert_eq!(server.next_record().await.outcome.to_string(), "handshake");

    // A client without a certificate.
    let no_cert = tessera_tls::client_config(
        tessera_tls::ServerAuth::Roots(server.pki.roots().unwrap()),
        None,
    )
    .unwrap();
    let tcp = TcpStream::connect(server.address).await.unwrap();
    if let Ok(mut tls) = TlsConnector::from(no_cert)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
    {
        // TLS 1.3: the refusal arrives on the first read.
        let mut buf = [0u8; 16];
        assert!(!matches!(tls.read(&mut buf).await, Ok(n) if n > 0));
    }
    assert_eq!(server.next_record().await.outcome.to_string(), "handshake");

    // Silence: connect and say nothing. A correct session runs meanwhile.
    let silent = TcpStream::connect(server.address).await.unwrap();
    still_serves(&server).await;
    let mut outcomes = vec![
        server.next_record().await.outcome.to_string(),
        server.next_record().await.outcome.to_string(),
    ];
    outcomes.sort();
    assert_eq!(outcomes, ["done", "handshake"]);
    drop(silent);
    drop(plain);
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abrupt_close_and_a_trickling_peer_end_without_a_fail_line() {
    let mut server = TestServer::start(Sequence::Tutorial, 0, |o| {
        std::sync::Arc::make_mut(&mut o.session).timeouts.reply = Duration::from_secs(1);
    })
    .await;
    // Vanishes after HELLO.
    let mut tls = server.raw().await;
    assert_eq!(read_line(&mut tls).await, "HELLO");
    drop(tls);
    assert_eq!(server.next_record().await.outcome.to_string(), "eof");

    // Trickles one byte every 100 ms without ever ending the line: the
    // per-line deadline ends it (a per-read timeout would not, defect D16).
    let mut tls = server.raw().await;
    assert_eq!(read_line(&mut tls).await, "HELLO");
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if tls.write_all(b"x").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert_eq!(server.next_record().await.outcome.to_string(), "timeout");
    trickle.abort();
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_address_cap_refuses_extra_sessions_at_once() {
    let mut server = TestServer::start(Sequence::Tutorial, 0, |o| o.max_per_address = 1).await;
    let mut first = server.raw().await;
    assert_eq!(read_line(&mut first).await, "HELLO");
    let mut second = TcpStream::connect(server.address).await.unwrap();
    let mut buf = [0u8; 8];
    let closed = tokio::time::timeout(TIMEOUT, second.read(&mut buf))
        .await
        .expect("not closed");
    assert!(matches!(closed, Ok(0) | Err(_)));
    assert_eq!(
        server.next_record().await.outcome.to_string(),
        "refused:too_many_from_client"
    );
    finish_tutorial_session(&mut first).await;
    assert_eq!(server.next_record().await.outcome.to_string(), "done");
    still_serves(&server).await;
    server.stop().await;
}

/// Peers that complete the handshake and then never read: the server's
/// lines wait in the socket, each session ends at its reply deadline, and
/// correct sessions are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_that_never_read_end_at_the_deadline_without_blocking_others() {
    let mut server = TestServer::start(Sequence::Tutorial, 0, |o| {
        std::sync::Arc::make_mut(&mut o.session).timeouts.reply = Duration::from_secs(1);
    })
    .await;
    let mut silent = Vec::new();
    for _ in 0..8 {
        silent.push(server.raw().await);
    }
    still_serves(&server).await;
    let mut outcomes = Vec::new();
    while outcomes.len() < 9 {
        outcomes.push(server.next_record().await.outcome.to_string());
    }
    outcomes.sort();
    assert_eq!(
        outcomes.iter().filter(|o| *o == "timeout").count(),
        8,
        "{outcomes:?}"
    );
    drop(silent);
    still_serves(&server).await;
    server.stop().await;
}

/// The client used to keep solving after the server gave up on it (its WORK
/// deadline passed and it closed), burning every core until the client's own
/// work timeout (30 minutes by default). It now stops when the server closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_the_client_stops_solving_when_the_server_closes() {
    let mut server = TestServer::start(Sequence::Tutorial, 40, |o| {
        std::sync::Arc::make_mut(&mut o.session).timeouts.work = Duration::from_secs(1);
    })
    .await;
    let mut options = server.client_options();
    options.work_timeout = Duration::from_secs(600);
    let report = tokio::time::timeout(TIMEOUT, connect_and_run(&options, &NoLog))
        .await
        .expect("the client kept solving after the server closed")
        .unwrap();
    assert!(
        matches!(&report.end, SessionEnd::Error(error) if error.contains("closed")),
        "{:?}",
        report.end
    );
    assert_eq!(server.next_record().await.outcome.to_string(), "timeout");
    server.stop().await;
}
