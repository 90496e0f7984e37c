//! What the `tessera` servers share on start: binding with an error that
//! names the address, and the `listening on ADDR` line scripts and tests wait
//! for, printed only once the stop signal is installed.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;

/// Binds `addr`.
pub(crate) async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// Installs the stop signal's handlers, then announces `addr`: a signal
/// sent as soon as the line is read stops the server gracefully. Returns
/// the stop signal, for the server's run.
pub(crate) fn ready(addr: SocketAddr) -> anyhow::Result<impl Future<Output = ()> + Send> {
    let shutdown = tessera_serve::shutdown_signal();
    crate::log_file::reopen_on_sighup()?;
    announce(addr)?;
    Ok(shutdown)
}

/// Prints `listening on ADDR` and flushes: the server accepts from now on.
pub(crate) fn announce(addr: SocketAddr) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {addr}")?;
    out.flush()?;
    Ok(())
}

/// Starts the metrics endpoint when `--metrics-listen` asks for it, and
/// prints `metrics on http://ADDR/metrics` (before `listening on`).
pub(crate) async fn metrics(
    args: &tessera_serve::MetricsArgs,
    metrics: Option<&tessera_serve::Metrics>,
) -> anyhow::Result<()> {
    if let Some(address) = args.start(metrics).await? {
        let mut out = std::io::stdout().lock();
        writeln!(out, "metrics on http://{address}/metrics")?;
        out.flush()?;
    }
    Ok(())
}
