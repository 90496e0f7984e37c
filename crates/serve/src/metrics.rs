//! The metrics a server exposes (OpenMetrics text, `prometheus-client`).
//! One [`Metrics`] handle per process: the stage and the protocol register
//! their families in it while the server starts, the endpoint
//! (`metrics_endpoint.rs`) encodes it on each scrape. Every family's labels
//! come from a fixed set (reasons, statuses, routes the server has), never
//! from what a client sends, so the registry's memory stays bounded.

use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Metric, Registry};

/// A label set of one label whose values are names we chose.
pub type Label = [(&'static str, &'static str); 1];

/// A label set of two such labels.
pub type Labels2 = [(&'static str, &'static str); 2];

/// A shared registry, cheap to clone; every metric name gets `tessera_`.
#[derive(Clone)]
pub struct Metrics(Arc<Mutex<Registry>>);

impl Default for Metrics {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Registry::with_prefix("tessera"))))
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `metric` as `tessera_NAME` (counters also get `_total`).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry().register(name, help, metric);
    }

    /// Adds values computed at each scrape (counters a server keeps anyway).
    pub fn register_collector(&self, collector: impl Collector) {
        self.registry().register_collector(Box::new(collector));
    }

    /// Adds a gauge whose value `read` computes at each scrape (a count the
    /// server keeps anyway, such as open connections or tracked clients).
    pub fn register_gauge_fn(
        &self,
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> i64 + Send + Sync + 'static,
    ) {
        self.register_collector(GaugeFn { name, help, read });
    }

    /// Adds `guard_tracked_clients`: the clients `read` says the guard's
    /// rate limiter holds state for now (its memory, in clients).
    pub fn register_tracked_clients(&self, read: impl Fn() -> usize + Send + Sync + 'static) {
        self.register_gauge_fn(
            "guard_tracked_clients",
            "Clients the guard's rate limiter holds state for now",
            move || gauge(read()),
        );
    }

    /// The OpenMetrics text of every metric, ending in `# EOF`.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry());
        text
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        // A panic while registering leaves a usable registry.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Proof-of-work challenges sent, answered with a valid solution and
/// answered wrongly: one set of names for every server that asks for work
/// (tlslp's WORK puzzles, the wire server's gate), so a dashboard reads
/// them alike.
#[derive(Clone, Debug, Default)]
pub struct PowCounters {
    /// Challenges sent.
    pub issued: Counter,
    /// Challenges answered with a valid solution.
    pub solved: Counter,
    /// Challenges answered with an invalid (or late, or unasked-for) one.
    pub failed: Counter,
}

impl PowCounters {
    /// The three counters, registered in `metrics`.
    pub fn register(metrics: &Metrics) -> Self {
        let counters = Self::default();
        metrics.register(
            "pow_challenges_issued",
            "Proof-of-work challenges sent",
            counters.issued.clone(),
        );
        metrics.register(
            "pow_challenges_solved",
            "Proof-of-work challenges answered with a valid solution",
            counters.solved.clone(),
        );
        metrics.register(
            "pow_challenges_failed",
            "Proof-of-work challenges answered wrongly",
            counters.failed.clone(),
        );
        counters
    }
}

/// A gauge read at each scrape ([`Metrics::register_gauge_fn`]).
struct GaugeFn<F> {
    name: &'static str,
    help: &'static str,
    read: F,
}

impl<F> std::fmt::Debug for GaugeFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GaugeFn").field("name", &self.name).finish()
    }
}

impl<F: Fn() -> i64 + Send + Sync + 'static> Collector for GaugeFn<F> {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let gauge = ConstGauge::new((self.read)());
        let metric = encoder.encode_descriptor(self.name, self.help, None, gauge.metric_type())?;
        gauge.encode(metric)
    }
}

/// A count as a gauge value.
pub(crate) fn gauge(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Histogram buckets for durations from 1 ms to about 16 s.
pub fn duration_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 15)
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;

    use super::*;

    #[test]
    fn families_are_prefixed_and_labelled() {
        let metrics = Metrics::new();
        let requests = Family::<Label, Counter>::default();
        metrics.register("requests", "Requests by status", requests.clone());
        requests.get_or_create(&[("status", "20")]).inc();
        let text = metrics.encode();
        assert!(
            text.contains("tessera_requests_total{status=\"20\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
