//! What the `tessera` servers share on start: binding with an error that
//! names the address, and the `listening on ADDR` line scripts and tests wait for.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;

/// Binds `addr`.
pub(crate) async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// Prints `listening on ADDR` and flushes: the server accepts from now on.
pub(crate) fn announce(addr: SocketAddr) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {addr}")?;
    out.flush()?;
    Ok(())
}
