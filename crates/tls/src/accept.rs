//! The accept loop every Tessera server shares: accept until shutdown, one
//! task per connection with at most `max_connections` at once (more wait in
//! the backlog), a pause instead of a spin when accept fails (EMFILE), then a
//! graceful stop: no new connections, running ones get a grace period, and
//! whatever still runs after it is cancelled.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How [`serve_connections`] bounds and stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcceptOptions {
    /// Connections handled at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// How long running connections may finish after shutdown starts.
    pub shutdown_grace: Duration,
}

/// Runs `handle` for every accepted connection until `shutdown` resolves, as
/// the module docs say. Returns once every connection task has ended.
pub async fn serve_connections<F, Fut>(
    listener: TcpListener,
    options: AcceptOptions,
    shutdown: impl Future<Output = ()>,
    handle: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(
        options.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // EMFILE and friends: pause instead of spinning; keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let connection = handle(tcp, peer);
        let cancel = cancel.clone();
        tracker.spawn(async move {
            let _permit = permit;
            tokio::select! {
                () = cancel.cancelled() => {}
                () = connection => {}
            }
        });
    }
    // Stop accepting at once: new clients are refused, not left in the backlog.
    drop(listener);
    tracker.close();
    if !tracker.is_empty() {
        tracing::info!(running = tracker.len(), "shutting down");
    }
    if tokio::time::timeout(options.shutdown_grace, tracker.wait())
        .await
        .is_err()
    {
        cancel.cancel();
        tracker.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn serves_then_cancels_what_outlives_the_grace() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let options = AcceptOptions {
            max_connections: 4,
            shutdown_grace: Duration::from_millis(100),
        };
        let server = tokio::spawn(serve_connections(
            listener,
            options,
            async {
                let _ = stopped.await;
            },
            |mut tcp: TcpStream, _| async move {
                let mut byte = [0u8; 1];
                // Echo one byte, then hold the connection open forever.
                if tcp.read_exact(&mut byte).await.is_ok() {
                    let _ = tcp.write_all(&byte).await;
                }
                std::future::pending::<()>().await;
            },
        ));
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"x").await.unwrap();
        let mut back = [0u8; 1];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"x");
        let _ = stop.send(());
        // The held connection is cancelled after the grace period, so this ends.
        tokio::time::timeout(Duration::from_secs(20), server)
            .await
            .unwrap()
            .unwrap();
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
