//! The signal every server stops on.

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what `systemctl stop`, `docker
/// stop` and `kill` send), so a server stops gracefully on either.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let Ok(mut terminate) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        let _ = interrupt.await;
        return;
    };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
}
