//! SIGHUP, the signal every server reloads on: its handler reads the
//! configuration again and swaps it in, or keeps the running one and says
//! exactly what was wrong. A reload never stops the server.

use std::fmt::Display;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::signal::unix::{signal, SignalKind};

use crate::{Label, Metrics};

/// Calls `reload` on every SIGHUP, in a task of its own, until the runtime
/// stops: `Ok(summary)` is logged at info (`reloaded: summary`), an error at
/// error level with the running configuration kept. Both are counted in
/// `tessera_reloads_total{result}` when `metrics` is given.
///
/// The handler is installed when this is called: call it before the server
/// announces itself, so a SIGHUP sent right after reloads instead of
/// killing the process (SIGHUP's default action).
///
/// # Errors
/// The handler cannot be installed.
///
/// # Panics
/// Outside a tokio runtime (as `tokio::signal` does).
pub fn reload_on_sighup<E: Display>(
    metrics: Option<&Metrics>,
    reload: impl Fn() -> Result<String, E> + Send + 'static,
) -> std::io::Result<()> {
    let mut hangups = signal(SignalKind::hangup())?;
    let outcomes = Family::<Label, Counter>::default();
    if let Some(metrics) = metrics {
        metrics.register("reloads", "Reloads on SIGHUP, by result", outcomes.clone());
    }
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let result = match reload() {
                Ok(summary) => {
                    tracing::info!(target: "tessera::reload", "reloaded: {summary}");
                    "ok"
                }
                Err(error) => {
                    tracing::error!(
                        target: "tessera::reload",
                        "reload failed, still serving the previous configuration: {error}"
                    );
                    "failed"
                }
            };
            outcomes.get_or_create(&[("result", result)]).inc();
        }
    });
    Ok(())
}
