//! What a tlslp server exports with `--metrics-listen`, next to the
//! connection stage's counters: sessions by outcome and how long they take,
//! and the WORK puzzles issued, solved and failed with the time clients took.

use tessera_serve::prometheus_client::metrics::counter::Counter;
use tessera_serve::prometheus_client::metrics::family::Family;
use tessera_serve::prometheus_client::metrics::histogram::Histogram;
use tessera_serve::{duration_buckets, Label, Metrics, PowCounters};

use super::report::{SessionOutcome, SessionRecord};
use crate::server::FailReason;

/// The tlslp families, registered in a server's [`Metrics`].
#[derive(Debug)]
pub(super) struct SessionMetrics {
    sessions: Family<Label, Counter>,
    session_seconds: Histogram,
    work: PowCounters,
    solve_seconds: Histogram,
}

impl SessionMetrics {
    pub(super) fn register(metrics: &Metrics) -> Self {
        let this = Self {
            sessions: Family::default(),
            session_seconds: Histogram::new(duration_buckets()),
            work: PowCounters::register(metrics),
            solve_seconds: Histogram::new(duration_buckets()),
        };
        metrics.register(
            "tlslp_sessions",
            "Sessions ended, by outcome",
            this.sessions.clone(),
        );
        metrics.register(
            "tlslp_session_seconds",
            "From accept to close, for sessions past the handshake",
            this.session_seconds.clone(),
        );
        metrics.register(
            "pow_solve_seconds",
            "From sending WORK to a valid reply",
            this.solve_seconds.clone(),
        );
        this
    }

    /// Counts one ended session.
    pub(super) fn session(&self, record: &SessionRecord) {
        self.sessions
            .get_or_create(&[("outcome", outcome_label(&record.outcome))])
            .inc();
        if !matches!(
            record.outcome,
            SessionOutcome::Handshake | SessionOutcome::Refused(_)
        ) {
            self.session_seconds.observe(record.duration.as_secs_f64());
        }
        if record.work_issued {
            self.work.issued.inc();
        }
        if let Some(took) = record.work_time {
            self.work.solved.inc();
            self.solve_seconds.observe(took.as_secs_f64());
        }
        if matches!(
            record.outcome,
            SessionOutcome::Fail(FailReason::InvalidSuffix)
        ) {
            self.work.failed.inc();
        }
    }
}

/// The outcome as a label from a fixed set (a refusal's reason is in the
/// stage's `connections_refused`).
fn outcome_label(outcome: &SessionOutcome) -> &'static str {
    match outcome {
        SessionOutcome::Done => "done",
        SessionOutcome::Fail(FailReason::Random) => "fail_random",
        SessionOutcome::Fail(FailReason::InvalidSuffix) => "fail_invalid_suffix",
        SessionOutcome::Fail(FailReason::InvalidChecksum) => "fail_invalid_checksum",
        SessionOutcome::Fail(FailReason::Receiving) => "fail_receiving",
        SessionOutcome::Timeout => "timeout",
        SessionOutcome::Eof => "eof",
        SessionOutcome::Handshake => "handshake",
        SessionOutcome::Refused(_) => "refused",
        SessionOutcome::Error => "error",
    }
}
