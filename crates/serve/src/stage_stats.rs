//! What one stage counts: connections accepted, admitted and refused (by
//! [`Refusal`](crate::Refusal) name), TLS handshakes failed (by the alert
//! they end with) and how long handshakes take. The counters are always
//! kept (they are atomics); a server with [`Metrics`] exports them.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use tessera_guard::ConnectionLimits;

use crate::metrics::{duration_buckets, Label};
use crate::Metrics;

/// Counters of one stage.
#[derive(Clone, Debug)]
pub struct StageStats {
    accepted: Counter,
    admitted: Counter,
    refused: Family<Label, Counter>,
    handshake_failures: Family<[(&'static str, String); 1], Counter>,
    handshake_seconds: Histogram,
}

impl Default for StageStats {
    fn default() -> Self {
        Self {
            accepted: Counter::default(),
            admitted: Counter::default(),
            refused: Family::default(),
            handshake_failures: Family::default(),
            handshake_seconds: Histogram::new(duration_buckets()),
        }
    }
}

impl StageStats {
    /// Connections accepted.
    pub fn accepted(&self) -> u64 {
        self.accepted.get()
    }

    /// Connections admitted to the protocol.
    pub fn admitted(&self) -> u64 {
        self.admitted.get()
    }

    /// Connections refused for `reason` (a [`Refusal`](crate::Refusal) name).
    pub fn refused(&self, reason: &'static str) -> u64 {
        self.refused
            .get(&[("reason", reason)])
            .map_or(0, |c| c.get())
    }

    pub(crate) fn count_accepted(&self) {
        self.accepted.inc();
    }

    pub(crate) fn count_admitted(&self) {
        self.admitted.inc();
    }

    pub(crate) fn count_refused(&self, reason: &'static str) {
        self.refused.get_or_create(&[("reason", reason)]).inc();
    }

    pub(crate) fn count_handshake(&self, seconds: f64) {
        self.handshake_seconds.observe(seconds);
    }

    pub(crate) fn count_handshake_failure(&self, error: &std::io::Error) {
        self.handshake_failures
            .get_or_create(&[("alert", alert_name(error))])
            .inc();
    }

    /// Adds the stage's families to `metrics`, with the connections open
    /// now read from `limits` at each scrape.
    pub(crate) fn register(&self, metrics: &Metrics, limits: Arc<ConnectionLimits>) {
        metrics.register(
            "connections_accepted",
            "Connections accepted",
            self.accepted.clone(),
        );
        metrics.register(
            "connections_admitted",
            "Connections admitted to the protocol",
            self.admitted.clone(),
        );
        metrics.register(
            "connections_refused",
            "Connections closed before the protocol, by reason",
            self.refused.clone(),
        );
        metrics.register(
            "tls_handshake_failures",
            "TLS handshakes that failed, by the alert they ended with",
            self.handshake_failures.clone(),
        );
        metrics.register(
            "tls_handshake_seconds",
            "Time from accept to a finished TLS handshake",
            self.handshake_seconds.clone(),
        );
        metrics.register_gauge_fn(
            "connections_open",
            "Connections open now (in the handshake or admitted)",
            move || crate::metrics::gauge(limits.open()),
        );
    }
}

/// The TLS alert a failed handshake ended with (sent or received), in
/// snake case as the RFC names it; `connection_closed` when the peer went
/// away without one, `other` for local failures.
fn alert_name(error: &std::io::Error) -> String {
    use rustls::{AlertDescription, Error};
    let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Error>())
    else {
        return "connection_closed".into();
    };
    let alert = match tls {
        Error::AlertReceived(alert) => *alert,
        Error::InvalidCertificate(error) => AlertDescription::from(error.clone()),
        Error::NoCertificatesPresented => AlertDescription::CertificateRequired,
        Error::InvalidMessage(_) => AlertDescription::DecodeError,
        Error::InappropriateMessage { .. } | Error::InappropriateHandshakeMessage { .. } => {
            AlertDescription::UnexpectedMessage
        }
        Error::PeerIncompatible(_) => AlertDescription::HandshakeFailure,
        Error::PeerMisbehaved(_) => AlertDescription::IllegalParameter,
        Error::DecryptError => AlertDescription::DecryptError,
        Error::InvalidCertRevocationList(_) => AlertDescription::BadCertificate,
        Error::NoApplicationProtocol => AlertDescription::NoApplicationProtocol,
        Error::PeerSentOversizedRecord => AlertDescription::RecordOverflow,
        _ => return "other".into(),
    };
    snake_case(&format!("{alert:?}"))
}

/// `UnknownPSKIdentity` → `unknown_psk_identity`: a word starts at an
/// uppercase letter after a lowercase one, or before one.
fn snake_case(camel: &str) -> String {
    let chars: Vec<char> = camel.chars().collect();
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let after_lower = i > 0 && !chars[i - 1].is_ascii_uppercase();
            let before_lower = i > 0
                && chars[i - 1].is_ascii_uppercase()
                && chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if after_lower || before_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else {
            // `Unknown(0x..)`: keep a bounded, label-safe name.
            out.push('_');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_are_named_as_the_rfc_does() {
        let error = |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        assert_eq!(
            alert_name(&error(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Revoked
            ))),
            "certificate_revoked"
        );
        assert_eq!(
            alert_name(&error(rustls::Error::NoCertificatesPresented)),
            "certificate_required"
        );
        assert_eq!(
            alert_name(&error(rustls::Error::AlertReceived(
                rustls::AlertDescription::UnknownCA
            ))),
            "unknown_ca"
        );
        assert_eq!(snake_case("UnknownPSKIdentity"), "unknown_psk_identity");
        assert_eq!(
            alert_name(&std::io::ErrorKind::UnexpectedEof.into()),
            "connection_closed"
        );
    }
}
