//! The guard in front of the server: denied clients are closed before TLS, and
//! adaptive work raises n_bits under load.

use std::sync::Arc;

use tessera_guard::{Acl, AclDefault, Chain, Limiter, LimiterConfig};
use tessera_tlslp::driver::AdaptiveWork;
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
    assert_eq!(server.next_record().await.outcome, "refused:access_denied");
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
    assert_eq!(server.next_record().await.outcome, "refused:rate_limited");
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
