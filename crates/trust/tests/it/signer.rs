//! The signer behind tessera-serve's stage: silent clients cannot lock others
//! out, and a stop answers the request in progress and removes the socket.

use std::time::Duration;

use serde_json::json;
use tessera_trust::signer::{
    bind_unix, encode_frame, serve_signer, SignerClient, SignerLimits, SignerOptions,
};
use tessera_trust::SecretKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(10);

fn issuer() -> SecretKey {
    SecretKey::from_hex(&"11".repeat(32)).unwrap()
}

/// 500 silent connections from one client used to take every slot for the
/// 60 s idle timeout. Now that client gets its per-client share, the rest are
/// closed at once, the silent ones lose their slots at the first-bytes
/// deadline, and another client is answered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_silent_connections_from_one_client_do_not_lock_out_others() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let limits = SignerLimits {
        max_connections_per_client: 4,
        frame_timeout: Duration::from_millis(500),
        ..SignerLimits::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = SignerOptions {
        limits,
        ..SignerOptions::default()
    };
    let server = tokio::spawn(serve_signer(listener, issuer(), options, async {
        let _ = stopped.await;
    }));
    let from = |source: &'static str| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        tokio::time::timeout(WAIT, socket.connect(address))
            .await
            .unwrap()
            .unwrap()
    };
    let mut silent = Vec::new();
    for _ in 0..500 {
        silent.push(from("127.0.0.2").await);
    }
    // Another client is answered while the 500 are open.
    let other = from("127.0.0.1").await;
    let mut client = SignerClient::from_stream(other);
    let reply = tokio::time::timeout(WAIT, client.call(&json!({"op": "public_key"})))
        .await
        .expect("the signer answers another client")
        .unwrap();
    assert_eq!(reply["public_key"], issuer().public().to_hex());
    // Every silent connection is closed: the excess at once, the rest at the deadline.
    for mut tcp in silent {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(WAIT, tcp.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");
    }
    let _ = stop.send(());
    tokio::time::timeout(WAIT, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// On stop the signer used to exit at once, dropping a half-received request
/// and leaving its socket file behind. Now the request in progress is
/// answered, an idle connection is closed, and the socket file is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_stop_answers_the_request_in_progress_and_removes_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer.sock");
    let listener = bind_unix(&path).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_signer(
        listener,
        issuer(),
        SignerOptions::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let mut idle = SignerClient::connect_unix(&path).await.unwrap();
    tokio::time::timeout(WAIT, idle.call(&json!({"op": "public_key"})))
        .await
        .unwrap()
        .unwrap();
    let mut busy = tokio::net::UnixStream::connect(&path).await.unwrap();
    let frame = encode_frame(&json!({"op": "public_key"})).unwrap();
    let (head, tail) = frame.split_at(6);
    busy.write_all(head).await.unwrap();
    // A request is in progress; wait until the server has it (the idle
    // connection's call proves the server is running), then stop.
    let mut probe = SignerClient::connect_unix(&path).await.unwrap();
    tokio::time::timeout(WAIT, probe.call(&json!({"op": "public_key"})))
        .await
        .unwrap()
        .unwrap();
    drop(probe);
    let _ = stop.send(());
    // The listener goes first: the socket file disappears.
    tokio::time::timeout(WAIT, async {
        while path.exists() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("socket file removed");
    busy.write_all(tail).await.unwrap();
    let mut length = [0u8; 4];
    tokio::time::timeout(WAIT, busy.read_exact(&mut length))
        .await
        .expect("the request in progress is answered")
        .unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(length) as usize];
    busy.read_exact(&mut body).await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("\"ok\":true"));
    // Then both connections are closed and the server returns.
    tokio::time::timeout(WAIT, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(idle.call(&json!({"op": "public_key"})).await.is_err());
    let mut rest = Vec::new();
    let _ = busy.read_to_end(&mut rest).await;
    assert!(rest.is_empty());
}

/// With metrics, every reply is counted by operation and result, next to the
/// stage's connection counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_operation_and_result() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let metrics = tessera_serve::Metrics::new();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn({
        let metrics = metrics.clone();
        async move {
            serve_signer(
                listener,
                issuer(),
                SignerOptions {
                    metrics: Some(metrics.clone()),
                    ..SignerOptions::default()
                },
                async {
                    let _ = stopped.await;
                },
            )
            .await
        }
    });
    let mut client = tokio::time::timeout(WAIT, SignerClient::connect(&address.to_string()))
        .await
        .unwrap()
        .unwrap();
    for request in [
        json!({"op": "public_key"}),
        json!({"op": "public_key"}),
        json!({"op": "mint"}),
        json!({"op": "steal_key"}),
    ] {
        tokio::time::timeout(WAIT, client.call(&request))
            .await
            .unwrap()
            .unwrap();
    }
    // A frame that is not a JSON object.
    let mut raw = tokio::net::TcpStream::connect(address).await.unwrap();
    raw.write_all(&[0, 0, 0, 2, b'[', b']']).await.unwrap();
    let mut length = [0u8; 4];
    tokio::time::timeout(WAIT, raw.read_exact(&mut length))
        .await
        .unwrap()
        .unwrap();
    let text = metrics.encode();
    for line in [
        "tessera_signer_requests_total{op=\"public_key\",result=\"ok\"} 2",
        "tessera_signer_requests_total{op=\"mint\",result=\"bad_request\"} 1",
        "tessera_signer_requests_total{op=\"other\",result=\"unknown_op\"} 1",
        "tessera_signer_requests_total{op=\"none\",result=\"bad_frame\"} 1",
        "tessera_connections_admitted_total 2",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    let _ = stop.send(());
    drop((client, raw));
    tokio::time::timeout(WAIT, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
