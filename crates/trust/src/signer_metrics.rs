//! What the signer sidecar exports with `--metrics-listen`, next to the
//! connection stage's counters: requests by operation and result.

use serde_json::{Map, Value};
use tessera_serve::prometheus_client::metrics::counter::Counter;
use tessera_serve::prometheus_client::metrics::family::Family;
use tessera_serve::{Labels2, Metrics};

/// The signer's family, registered in a server's [`Metrics`].
#[derive(Clone, Debug)]
pub(crate) struct SignerMetrics {
    requests: Family<Labels2, Counter>,
}

impl SignerMetrics {
    pub(crate) fn register(metrics: &Metrics) -> Self {
        let requests = Family::default();
        metrics.register(
            "signer_requests",
            "Signer requests answered, by operation and result",
            requests.clone(),
        );
        Self { requests }
    }

    /// Counts one reply to `request` (`None`: a frame that was not an object).
    pub(crate) fn reply(&self, request: Option<&Map<String, Value>>, reply: &Value) {
        let op = match request.and_then(|r| r.get("op")).and_then(Value::as_str) {
            Some("public_key") => "public_key",
            Some("mint") => "mint",
            Some("sign_job") => "sign_job",
            Some(_) => "other",
            None => "none",
        };
        let result = match reply.get("error").and_then(Value::as_str) {
            None => "ok",
            Some("bad_request") => "bad_request",
            Some("unknown_op") => "unknown_op",
            Some("bad_frame") => "bad_frame",
            Some("frame_too_large") => "frame_too_large",
            Some("revoked") => "revoked",
            Some("unavailable") => "unavailable",
            Some(_) => "other",
        };
        self.requests
            .get_or_create(&[("op", op), ("result", result)])
            .inc();
    }
}
