//! The scrape endpoint: `GET /metrics` over plain HTTP/1.x, answered with
//! the registry's OpenMetrics text and closed. It goes through a stage of its
//! own (caps, a deadline for the request), so a scraper, or anyone who can
//! reach the port, costs a bounded amount: 16 connections, 4 per client, a
//! request head of at most 8 KiB within 5 s.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Admitted, Error, Handler, Listener, Metrics, Stage, StageConfig};

/// The longest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client has to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// The content type Prometheus asks for and `prometheus-client` writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `metrics` on `listener` until `shutdown` resolves. The endpoint
/// is plain HTTP: on a listener that is not loopback the operator chose to
/// expose it (the flags bind loopback unless told otherwise).
///
/// # Errors
/// None today; the signature leaves room for a TLS endpoint.
pub async fn serve_metrics(
    listener: Listener,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let mut config = StageConfig::default();
    config
        .max_connections(16)
        .max_connections_per_client(4)
        .first_bytes_timeout(HEAD_TIMEOUT)
        .plain_beyond_loopback(true)
        .shutdown_grace(Duration::from_secs(1));
    let stage = Arc::new(Stage::new(&listener.local_addr()?, config)?);
    stage
        .run(listener, Arc::new(Endpoint(metrics)), shutdown)
        .await;
    Ok(())
}

struct Endpoint(Metrics);

impl Handler for Endpoint {
    async fn serve(self: Arc<Self>, mut connection: Admitted) {
        let reply = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut connection)).await {
            Ok(Some(head)) => self.answer(&head),
            Ok(None) => response("400 Bad Request", "text/plain", "bad request\n", true),
            Err(_) => return,
        };
        let _ = connection.stream.write_all(&reply).await;
        let _ = connection.stream.shutdown().await;
    }
}

impl Endpoint {
    fn answer(&self, head: &str) -> Vec<u8> {
        let mut parts = head.split(' ');
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let path = target.split('?').next().unwrap_or("");
        match (method, path) {
            ("GET" | "HEAD", "/metrics") => {
                response("200 OK", OPENMETRICS, &self.0.encode(), method == "GET")
            }
            ("GET" | "HEAD", _) => response(
                "404 Not Found",
                "text/plain",
                "only /metrics is served here\n",
                method == "GET",
            ),
            _ => response(
                "405 Method Not Allowed",
                "text/plain",
                "GET /metrics\n",
                true,
            ),
        }
    }
}

/// Reads up to the blank line ending the request head; returns its first
/// line, or `None` for a head that is too long, not UTF-8 or cut short.
async fn read_head(connection: &mut Admitted) -> Option<String> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() >= MAX_HEAD {
            return None;
        }
        let n = connection.stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let text = std::str::from_utf8(&head).ok()?;
    text.lines().next().map(str::to_owned)
}

fn response(status: &str, content_type: &str, body: &str, with_body: bool) -> Vec<u8> {
    let mut reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if with_body {
        reply.extend_from_slice(body.as_bytes());
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_of_metrics_is_answered_with_them() {
        let endpoint = Endpoint(Metrics::new());
        let ok = String::from_utf8(endpoint.answer("GET /metrics HTTP/1.1")).unwrap();
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains(OPENMETRICS) && ok.ends_with("# EOF\n"), "{ok}");
        let head = String::from_utf8(endpoint.answer("HEAD /metrics HTTP/1.1")).unwrap();
        assert!(head.ends_with("\r\n\r\n"), "{head}");
        let other = String::from_utf8(endpoint.answer("GET /admin HTTP/1.1")).unwrap();
        assert!(other.starts_with("HTTP/1.1 404"), "{other}");
        let post = String::from_utf8(endpoint.answer("POST /metrics HTTP/1.1")).unwrap();
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    }
}
