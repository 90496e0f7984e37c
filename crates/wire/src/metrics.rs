//! What a wire server exports with `--metrics-listen`, next to the
//! connection stage's counters: requests by message type, route and result
//! (the type of the reply), the frames its checks refused and the
//! proof-of-work gate's challenges. Routes are
//! labelled by the URIs the server has routes for; a URI without one counts
//! as `unmatched`, so a client cannot grow the registry.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tessera_serve::prometheus_client::collector::Collector;
use tessera_serve::prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use tessera_serve::prometheus_client::metrics::counter::{ConstCounter, Counter};
use tessera_serve::prometheus_client::metrics::family::Family;
use tessera_serve::{Label, Labels2, Metrics, PowCounters};

use crate::server::ServerStats;
use crate::{MessageType, Rejection, Response};

/// Requests by `type` and `result` (message type names) and `uri`.
pub(crate) type RouteCounts = Family<(Labels2, [(&'static str, String); 1]), Counter>;

/// The label of a URI nobody routes.
pub(crate) const UNMATCHED: &str = "unmatched";

/// The families a wire server counts into while it runs.
pub(crate) struct WireMetrics {
    /// Answered requests, counted by the router.
    pub(crate) routes: RouteCounts,
    auth_refusals: Family<Label, Counter>,
    /// The proof-of-work gate's challenges, when the server has one.
    pow: Option<PowCounters>,
}

impl WireMetrics {
    /// Counts what the proof-of-work gate answered.
    pub(crate) fn pow(&self, answer: &Result<Response, Rejection>) {
        let Some(pow) = &self.pow else { return };
        let counter = match answer {
            Ok(reply) if reply.kind == MessageType::RESPOND_URI => &pow.issued,
            Ok(reply) if reply.kind == MessageType::OK => &pow.solved,
            Err(Rejection::PowFailed) => &pow.failed,
            _ => return,
        };
        counter.inc();
    }

    /// Counts a frame the auth layer refused, by [`crate::AuthFailure`] name.
    pub(crate) fn auth_refused(&self, reason: &'static str) {
        self.auth_refusals
            .get_or_create(&[("reason", reason)])
            .inc();
    }
}

/// Registers the wire families in `metrics`.
pub(crate) fn register(metrics: &Metrics, stats: Arc<ServerStats>, pow: bool) -> WireMetrics {
    metrics.register_collector(StatsCollector(stats));
    let auth_refusals = Family::default();
    metrics.register(
        "wire_auth_refusals",
        "Frames the auth layer refused, by reason (bad_mac, replayed, expired, revoked, …)",
        auth_refusals.clone(),
    );
    let pow = pow.then(|| PowCounters::register(metrics));
    WireMetrics {
        routes: register_routes(metrics),
        auth_refusals,
        pow,
    }
}

/// Registers the requests family alone (the netaio-compat server keeps no
/// [`ServerStats`]).
pub(crate) fn register_routes(metrics: &Metrics) -> RouteCounts {
    let routes = RouteCounts::default();
    metrics.register(
        "wire_requests",
        "Requests answered, by message type, route and the reply's type",
        routes.clone(),
    );
    routes
}

/// Counts one answered request.
pub(crate) fn count(counts: &RouteCounts, kind: MessageType, uri: String, result: MessageType) {
    let name = |kind: MessageType| kind.name().unwrap_or("other");
    counts
        .get_or_create(&(
            [("type", name(kind)), ("result", name(result))],
            [("uri", uri)],
        ))
        .inc();
}

/// [`ServerStats`] read at each scrape.
#[derive(Debug)]
struct StatsCollector(Arc<ServerStats>);

impl Collector for StatsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let stats = &self.0;
        for (name, help, value) in [
            (
                "wire_frames",
                "Frames the auth layer accepted",
                &stats.frames,
            ),
            (
                "wire_auth_failures",
                "Frames the auth layer refused (bad MAC, replay, expired, revoked)",
                &stats.auth_failures,
            ),
            (
                "wire_not_permitted",
                "Frames the certificate rules refused",
                &stats.not_permitted,
            ),
            (
                "wire_malformed",
                "Connections closed for a malformed or oversize frame",
                &stats.malformed,
            ),
        ] {
            let counter = ConstCounter::new(value.load(Ordering::Relaxed));
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}
