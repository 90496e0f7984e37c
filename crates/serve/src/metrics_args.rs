//! `--metrics-listen`, the flag every server offers to expose its metrics:
//! nothing is served without it, and a port alone binds loopback.

use std::net::{Ipv4Addr, SocketAddr};

use crate::{serve_metrics, Listener, Metrics};

/// The metrics flag (with the `cli` feature): flatten into a server's arguments.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct MetricsArgs {
    /// Serve OpenMetrics text at http://ADDR/metrics (for Prometheus). A
    /// port alone binds loopback (127.0.0.1:PORT); HOST:PORT binds there.
    /// Plain HTTP: expose it only to your scraper. Off unless given.
    #[arg(long, value_name = "[HOST:]PORT", value_parser = parse_metrics_listen)]
    pub metrics_listen: Option<SocketAddr>,
}

impl MetricsArgs {
    /// A registry for the server to fill, when the flag asks for metrics.
    pub fn metrics(&self) -> Option<Metrics> {
        self.metrics_listen.map(|_| Metrics::new())
    }

    /// Binds the endpoint and serves `metrics` on it in a task of its own
    /// (until the runtime stops); returns the bound address.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn start(&self, metrics: Option<&Metrics>) -> std::io::Result<Option<SocketAddr>> {
        let (Some(address), Some(metrics)) = (self.metrics_listen, metrics) else {
            return Ok(None);
        };
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("metrics on {address}: {e}")))?;
        let bound = listener.local_addr()?;
        let metrics = metrics.clone();
        tokio::spawn(serve_metrics(
            Listener::from(listener),
            metrics,
            std::future::pending(),
        ));
        Ok(Some(bound))
    }
}

/// `PORT` (loopback), `localhost:PORT`, `IP:PORT` or `[IPv6]:PORT`.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_metrics_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    if let Some(port) = text.strip_prefix("localhost:") {
        if let Ok(port) = port.parse::<u16>() {
            return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
        }
    }
    text.parse().map_err(|_| {
        format!("{text:?}: expected PORT (loopback), IP:PORT or [IPv6]:PORT, e.g. 9464")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_alone_binds_loopback() {
        assert_eq!(
            parse_metrics_listen("9464").unwrap(),
            "127.0.0.1:9464".parse().unwrap()
        );
        assert_eq!(
            parse_metrics_listen("localhost:0").unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert_eq!(
            parse_metrics_listen("[::1]:9464").unwrap(),
            "[::1]:9464".parse().unwrap()
        );
        for bad in ["", "host:1", "99999", "1.2.3.4"] {
            assert!(parse_metrics_listen(bad).is_err(), "{bad}");
        }
    }
}
