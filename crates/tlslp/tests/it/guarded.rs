//! The guard in front of the server: denied clients are closed before TLS, and
//! adaptive work raises n_bits under load.

use std::sync::Arc;

use tessera_guard::{Acl, AclDefault, Chain, Limiter, LimiterConfig};
use tessera_tlslp::driver::{connect_and_run, AdaptiveWork};
use tessera_tlslp::logfile::MemoryLog;
use tessera_tlslp::Sequence;
use tokio::io::AsyncReadExt;

use crate::hostile::read_line;
use crate::util::{TestServer, TIMEOUT};

async fn closed_before_tls(server: &TestServer) -> bool {
    let mut tcp = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    let mut buf = [0u8; 8];
    matches!(
        tokio::time::timeout(TIMEOUT, tcp.read(&mut buf))
            .await
            .expect("not closed"),
        Ok(0) | Err(_)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_denied_client_is_closed_before_the_handshake() {
    let acl = Acl::new::<&str>(&[], &["127.0.0.0/8"], AclDefault::Allow).unwrap();
    let mut server = TestServer::start(Sequence::Tutorial, 0, |o| {
        o.guard = Some(Arc::new(Chain::new().acl(acl)));
    })
    .await;
    assert!(closed_before_tls(&server).await);
    assert_eq!(
        server.next_record().await.outcome.to_string(),
        "refused:access_denied"
    );
    // The client says it was refused before TLS, not only `tls handshake eof`.
    let log = MemoryLog::default();
    let refused = tokio::time::timeout(TIMEOUT, connect_and_run(&server.client_options(), &log))
        .await
        .expect("the client gives up");
    assert!(refused.is_err());
    let warning = &log.events()[0].message;
    assert!(
        warning.contains("closed the connection before the TLS handshake")
            && warning.contains("refused this client"),
        "{warning}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_admits_the_burst_then_closes() {
    let limiter = Limiter::new(&LimiterConfig {
        rate: 0.001,
        burst: 2,
        ..LimiterConfig::default()
    })
    .unwrap();
    let mut server = TestServer::start(Sequence::Tutorial, 0, |o| {
        o.guard = Some(Arc::new(Chain::new().limiter(limiter)));
    })
    .await;
    for _ in 0..2 {
        let mut tls = server.raw().await;
        assert_eq!(read_line(&mut tls).await, "HELLO");
        drop(tls);
        let _ = server.next_record().await;
    }
    assert!(closed_before_tls(&server).await);
    assert_eq!(
        server.next_record().await.outcome.to_string(),
        "refused:rate_limited"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_work_raises_n_bits_with_sessions_running() {
    let adaptive = AdaptiveWork {
        threshold: 1,
        step: 1,
        max_bits: 3,
    };
    assert_eq!(adaptive.bits(1, 1), 1);
    assert_eq!(adaptive.bits(1, 2), 2);
    assert_eq!(adaptive.bits(1, 9), 3);
    let server =
        TestServer::start(Sequence::Tutorial, 1, |o| o.adaptive_work = Some(adaptive)).await;
    let mut held = Vec::new();
    let mut bits = Vec::new();
    for _ in 0..3 {
        let mut tls = server.raw().await;
        assert_eq!(read_line(&mut tls).await, "HELLO");
        tokio::io::AsyncWriteExt::write_all(&mut tls, b"HELLOBACK\n")
            .await
            .unwrap();
        let work = read_line(&mut tls).await;
        bits.push(work.rsplit(' ').next().unwrap().to_owned());
        held.push(tls);
    }
    assert_eq!(bits, ["1", "2", "3"]);
    drop(held);
    server.stop().await;
}

/// Connects as a trusted relay: a PROXY v1 header naming `source`, then TLS.
async fn via_relay(
    server: &TestServer,
    source: &str,
) -> Option<tessera_tls::tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use tokio::io::AsyncWriteExt;
    let mut tcp = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    tcp.write_all(
        format!(
            "PROXY TCP4 {source} 127.0.0.1 40000 {}\r\n",
            server.address.port()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let name = tessera_tls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tessera_tls::tokio_rustls::TlsConnector::from(server.client_tls())
        .connect(name, tcp)
        .await
        .ok()?;
    Some(tls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_relay_names_the_client_the_guard_judges() {
    let acl = Acl::new::<&str>(&[], &["203.0.113.0/24"], AclDefault::Allow).unwrap();
    let relays = Acl::new(&["127.0.0.1"], &[] as &[&str], AclDefault::Deny).unwrap();
    let mut server = TestServer::start(Sequence::Tutorial, 0, |o| {
        o.guard = Some(Arc::new(Chain::new().acl(acl)));
        o.trusted_relays = Some(relays);
    })
    .await;
    // The relayed client is allowed and is who the records name.
    let mut tls = via_relay(&server, "198.51.100.9")
        .await
        .expect("handshake through the relay");
    assert_eq!(read_line(&mut tls).await, "HELLO");
    drop(tls);
    let record = server.next_record().await;
    assert_eq!(record.peer.ip().to_string(), "198.51.100.9");
    // A relayed client from a denied network is refused although the relay is loopback.
    let refused = via_relay(&server, "203.0.113.7").await;
    if let Some(mut tls) = refused {
        let mut buf = [0u8; 4];
        assert!(!matches!(tls.read(&mut buf).await, Ok(n) if n > 0));
    }
    let record = server.next_record().await;
    assert_eq!(record.outcome.to_string(), "refused:access_denied");
    assert_eq!(record.peer.ip().to_string(), "203.0.113.7");
    // Without a header, the relay's connection is refused.
    let mut tcp = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut tcp, b"\x16\x03\x01\x00\x05hello")
        .await
        .unwrap();
    assert!(server
        .next_record()
        .await
        .outcome
        .to_string()
        .starts_with("refused:"));
    server.stop().await;
}
