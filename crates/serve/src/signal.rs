//! The signal every server stops on.

use std::future::Future;

use tokio::signal::unix::{signal, SignalKind};

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what `systemctl stop`, `docker
/// stop` and `kill` send), so a server stops gracefully on either.
///
/// The handlers are installed when this is called, not when the future is
/// first polled: call it before announcing that the server is ready, so a
/// signal sent right after the announcement still stops it gracefully
/// instead of killing it.
///
/// # Panics
/// Outside a tokio runtime (as `tokio::signal` does).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send {
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            (Ok(mut only), Err(_)) | (Err(_), Ok(mut only)) => {
                only.recv().await;
            }
            // No handler could be installed: the default action stops the process.
            (Err(_), Err(_)) => std::future::pending().await,
        }
    }
}
