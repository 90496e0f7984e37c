//! What a server run reports: one record per session (also a `tracing`
//! event) and the counters of the whole run.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use super::metrics::SessionMetrics;
use crate::server::FailReason;

/// How a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionOutcome {
    /// The client sent DONE.
    Done,
    /// The server sent FAIL.
    Fail(FailReason),
    /// A reply did not arrive in time.
    Timeout,
    /// The client closed the connection mid-session.
    Eof,
    /// The TLS handshake failed or timed out.
    Handshake,
    /// Closed before TLS by admission or a bad PROXY header (the reason's name).
    Refused(String),
    /// Any other I/O or protocol error, or a server shutdown.
    Error,
}

impl std::fmt::Display for SessionOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Done => f.write_str("done"),
            Self::Fail(reason) => write!(f, "fail:{}", format!("{reason:?}").to_lowercase()),
            Self::Timeout => f.write_str("timeout"),
            Self::Eof => f.write_str("eof"),
            Self::Handshake => f.write_str("handshake"),
            Self::Refused(reason) => write!(f, "refused:{reason}"),
            Self::Error => f.write_str("error"),
        }
    }
}

/// One session's structured record (also emitted as a tracing event).
#[derive(Clone, Debug)]
pub struct SessionRecord {
    /// Sequential id within this server run.
    pub id: u64,
    /// Peer address.
    pub peer: SocketAddr,
    /// How it ended.
    pub outcome: SessionOutcome,
    /// Wall time from accept to close.
    pub duration: Duration,
    /// Whether the session got as far as WORK.
    pub work_issued: bool,
    /// Time between sending WORK and the valid reply.
    pub work_time: Option<Duration>,
    /// TLS version and cipher suite, when the handshake completed.
    pub tls: Option<(String, String)>,
    /// The WORK difficulty this session was given.
    pub n_bits: i64,
}

/// Counters of a finished server run.
#[derive(Clone, Debug, Default)]
pub struct ServerReport {
    /// Sessions that ended after DONE.
    pub done: u64,
    /// Sessions that ended with a FAIL line.
    pub failed: u64,
    /// Sessions that failed in the TLS handshake or were refused by a cap.
    pub refused: u64,
    /// Sessions that timed out, lost the peer or hit an I/O error.
    pub aborted: u64,
}

/// The live counters behind a [`ServerReport`], and the exported metrics
/// when the server has them.
#[derive(Debug, Default)]
pub(super) struct Counters {
    done: AtomicU64,
    failed: AtomicU64,
    refused: AtomicU64,
    aborted: AtomicU64,
    metrics: Option<SessionMetrics>,
}

impl Counters {
    /// Counters that also export to `metrics`.
    pub(super) fn exported(metrics: &tessera_serve::Metrics) -> Self {
        Self {
            metrics: Some(SessionMetrics::register(metrics)),
            ..Self::default()
        }
    }

    /// Counts one ended session.
    pub(super) fn count(&self, record: &SessionRecord) {
        if let Some(metrics) = &self.metrics {
            metrics.session(record);
        }
        let counter = match &record.outcome {
            SessionOutcome::Done => &self.done,
            SessionOutcome::Fail(_) => &self.failed,
            SessionOutcome::Handshake | SessionOutcome::Refused(_) => &self.refused,
            SessionOutcome::Timeout | SessionOutcome::Eof | SessionOutcome::Error => &self.aborted,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn report(&self) -> ServerReport {
        ServerReport {
            done: self.done.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            aborted: self.aborted.load(Ordering::Relaxed),
        }
    }
}

/// Counts the record, emits it as a tracing event (target `tlslp::session`)
/// and sends it to the caller's channel.
pub(super) fn emit(
    record: &SessionRecord,
    client: &str,
    counters: &Counters,
    records: Option<&mpsc::UnboundedSender<SessionRecord>>,
) {
    counters.count(record);
    tracing::info!(target: "tlslp::session", id = record.id, client, outcome = %record.outcome,
        duration_ms = record.duration.as_millis() as u64, work_ms = record.work_time.map(|t| t.as_millis() as u64),
        n_bits = record.n_bits, "session");
    if let Some(records) = records {
        let _ = records.send(record.clone());
    }
}
