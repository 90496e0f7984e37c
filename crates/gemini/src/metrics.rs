//! What the capsule server exports with `--metrics-listen`, next to the
//! connection stage's counters: requests by status, guard denials by reason
//! and how long requests take (handshake excluded).

use std::time::Duration;

use tessera_serve::prometheus_client::metrics::counter::Counter;
use tessera_serve::prometheus_client::metrics::family::Family;
use tessera_serve::prometheus_client::metrics::histogram::Histogram;
use tessera_serve::{duration_buckets, Label, Metrics};

/// The Gemini families, registered in a server's [`Metrics`].
#[derive(Debug)]
pub(crate) struct GeminiMetrics {
    requests: Family<Label, Counter>,
    denials: Family<Label, Counter>,
    seconds: Histogram,
}

impl GeminiMetrics {
    pub(crate) fn register(metrics: &Metrics) -> Self {
        let this = Self {
            requests: Family::default(),
            denials: Family::default(),
            seconds: Histogram::new(duration_buckets()),
        };
        metrics.register(
            "gemini_requests",
            "Gemini requests answered, by status",
            this.requests.clone(),
        );
        metrics.register(
            "guard_denials",
            "Requests the guard refused, by reason",
            this.denials.clone(),
        );
        metrics.register(
            "gemini_request_seconds",
            "From the end of the TLS handshake to the last byte of the response",
            this.seconds.clone(),
        );
        this
    }

    /// Counts one answered request.
    pub(crate) fn request(&self, status: u8, denial: Option<&'static str>, took: Duration) {
        self.requests
            .get_or_create(&[("status", status_label(status))])
            .inc();
        if let Some(reason) = denial {
            self.denials.get_or_create(&[("reason", reason)]).inc();
        }
        self.seconds.observe(took.as_secs_f64());
    }
}

/// The status as a label; the codes of the spec, anything else `other`.
fn status_label(status: u8) -> &'static str {
    match status {
        10 => "10",
        11 => "11",
        20 => "20",
        30 => "30",
        31 => "31",
        40 => "40",
        41 => "41",
        42 => "42",
        43 => "43",
        44 => "44",
        50 => "50",
        51 => "51",
        52 => "52",
        53 => "53",
        59 => "59",
        60 => "60",
        61 => "61",
        62 => "62",
        _ => "other",
    }
}
