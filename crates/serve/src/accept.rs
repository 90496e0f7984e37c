//! The accept loop: accept until shutdown, one task per connection with at
//! most `max_connections` at once (a permit is taken before `accept`, so more
//! clients wait in the kernel backlog, not in our memory), a pause instead of
//! a spin when accept fails (EMFILE), then a graceful stop: no new
//! connections, running ones get a grace period, and whatever still runs
//! after it is cancelled (axum's `serve`, mini-redis' `Listener::run`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{Listener, Peer, Socket};

/// Pause after an accept error that is not the peer's (EMFILE, ENFILE, ENOMEM).
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// How [`accept_loop`] bounds and stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AcceptOptions {
    /// Connections handled at once; more wait in the listen backlog.
    pub(crate) max_connections: usize,
    /// How long running connections may finish after shutdown starts.
    pub(crate) shutdown_grace: Duration,
}

/// Runs `handle` for every accepted connection until `shutdown` resolves, as
/// the module docs say. Returns once every connection task has ended.
pub(crate) async fn accept_loop<F, Fut>(
    listener: Listener,
    options: AcceptOptions,
    shutdown: impl Future<Output = ()>,
    handle: F,
) where
    F: Fn(Socket, Peer) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(
        options.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        // `biased`: once shutdown has fired, no further connection is taken.
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (socket, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    // EMFILE and friends: pause instead of spinning; keep serving.
                    tracing::error!(%error, "accept failed; pausing");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        // Boxed where it is made: a connection's future holds the whole
        // protocol (tens of KiB of state), and each move into the task would
        // copy all of it (`perf`: memmove, ~4% of a Gemini server's CPU).
        let connection = Box::pin(handle(socket, peer));
        let cancel = cancel.clone();
        tracker.spawn(async move {
            let _permit = permit;
            tokio::select! {
                () = cancel.cancelled() => {}
                () = connection => {}
            }
        });
    }
    // Stop accepting at once: new clients are refused, not left in the backlog
    // (and a Unix socket file is removed).
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

/// Errors of one connection that went away before we took it (axum's
/// `is_connection_error`): skip it and accept the next at once.
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

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
        let server = tokio::spawn(accept_loop(
            listener.into(),
            options,
            async {
                let _ = stopped.await;
            },
            |mut socket: Socket, _| async move {
                let mut byte = [0u8; 1];
                // Echo one byte, then hold the connection open forever.
                if socket.read_exact(&mut byte).await.is_ok() {
                    let _ = socket.write_all(&byte).await;
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
