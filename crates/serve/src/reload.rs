//! When a server reloads: on SIGHUP, and with `--watch` when a file it
//! reads changes. Its reload function reads the configuration again and
//! swaps it in, or keeps the running one and says exactly what was wrong. A
//! reload never stops the server.

use std::collections::BTreeSet;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::{Label, Metrics};

/// How long a burst of file events must be quiet before a reload: a
/// deployment tool writes a certificate and its key one after the other,
/// an editor writes, renames and deletes.
const SETTLE: Duration = Duration::from_millis(300);

/// Calls `reload` on every SIGHUP, and after changes in the directories of
/// `watched` files (settled for 300 ms; the directories are watched, so
/// files replaced by a rename or a symlink swap are seen), in a task of its
/// own until the runtime stops. `Ok(summary)` is logged at info
/// (`reloaded: summary`), an error at error level with the running
/// configuration kept. Both are counted in `tessera_reloads_total{result}`
/// when `metrics` is given.
///
/// The signal handler is installed when this is called: call it before the
/// server announces itself, so a SIGHUP sent right after reloads instead of
/// killing the process (SIGHUP's default action).
///
/// # Errors
/// The signal handler cannot be installed, or a directory cannot be watched.
///
/// # Panics
/// Outside a tokio runtime (as `tokio::signal` does).
pub fn on_reload<E: Display>(
    watched: &[PathBuf],
    metrics: Option<&Metrics>,
    reload: impl Fn() -> Result<String, E> + Send + 'static,
) -> std::io::Result<()> {
    let mut hangups = signal(SignalKind::hangup())?;
    let (changed, mut changes) = mpsc::channel::<()>(1);
    let watcher = watch(watched, changed)?;
    let outcomes = Family::<Label, Counter>::default();
    if let Some(metrics) = metrics {
        metrics.register("reloads", "Reloads, by result", outcomes.clone());
    }
    tokio::spawn(async move {
        // Lives as long as the task: dropping it stops the watch.
        let _watcher = watcher;
        loop {
            tokio::select! {
                signal = hangups.recv() => if signal.is_none() { break },
                Some(()) = changes.recv() => {
                    // Let the burst settle: every further event restarts the wait.
                    while let Ok(Some(())) = tokio::time::timeout(SETTLE, changes.recv()).await {}
                }
            }
            // Counted before the line is written: whoever reads the line
            // finds the count.
            match reload() {
                Ok(summary) => {
                    outcomes.get_or_create(&[("result", "ok")]).inc();
                    tracing::info!(target: "tessera::reload", "reloaded: {summary}");
                }
                Err(error) => {
                    outcomes.get_or_create(&[("result", "failed")]).inc();
                    tracing::error!(
                        target: "tessera::reload",
                        "reload failed, still serving the previous configuration: {error}"
                    );
                }
            }
        }
    });
    Ok(())
}

/// Watches the directories of `files`; each event sends on `changed` (a
/// full channel already holds a pending change). `None` for no files.
fn watch(
    files: &[PathBuf],
    changed: mpsc::Sender<()>,
) -> std::io::Result<Option<notify::RecommendedWatcher>> {
    let directories: BTreeSet<PathBuf> = files.iter().map(|file| directory_of(file)).collect();
    if directories.is_empty() {
        return Ok(None);
    }
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|event| !event.kind.is_access()) {
            let _ = changed.try_send(());
        }
    })
    .map_err(std::io::Error::other)?;
    for directory in &directories {
        watcher
            .watch(directory, RecursiveMode::NonRecursive)
            .map_err(|e| std::io::Error::other(format!("watch {}: {e}", directory.display())))?;
    }
    Ok(Some(watcher))
}

/// The directory holding `file` (`.` for a bare file name).
fn directory_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    }
}
