//! The connection stage every Tessera server shares (gemini, tlslp, wire,
//! the tunnel exit, the netaio-compat server, the trust signer): the accept
//! loop with a permit before `accept`, EMFILE back-off and a graceful stop;
//! PROXY headers from trusted relays under a deadline; the guard's admission
//! before any TLS byte; global and per-client caps; socket tuning; the TLS
//! handshake under a deadline; a `tracing` span per connection with its
//! keyed client id; and a typed [`Refusal`] for everything it closes. TCP and
//! Unix sockets. No protocol crate calls `accept` itself. Around it: reloads
//! on SIGHUP or file changes ([`on_reload`], [`Stage::reload`]) and the
//! OpenMetrics endpoint ([`Metrics`], [`serve_metrics`]).
//!
//! ```
//! use std::sync::Arc;
//! use tessera_serve::{Admitted, Handler, Listener, Stage, StageConfig};
//! use tokio::io::AsyncWriteExt;
//!
//! struct Hello;
//!
//! impl Handler for Hello {
//!     async fn serve(self: Arc<Self>, mut connection: Admitted) {
//!         let _ = connection.stream.write_all(b"hello\n").await;
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = Listener::from(tokio::net::TcpListener::bind("127.0.0.1:0").await?);
//! // No TLS config: plain, which only a loopback listener allows.
//! let stage = Arc::new(Stage::new(&listener.local_addr()?, StageConfig::default())?);
//! stage.run(listener, Arc::new(Hello), async {}).await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)
)]

mod accept;
#[cfg(feature = "cli")]
mod admission_args;
mod connection_leases;
mod error;
mod finish;
mod fleet_admission;
mod listener;
mod live;
mod metrics;
#[cfg(feature = "cli")]
mod metrics_args;
mod metrics_endpoint;
mod proxy;
mod reload;
#[cfg(feature = "cli")]
mod reload_args;
mod revoked_certificates;
mod signal;
mod stage;
mod stage_stats;

#[cfg(feature = "cli")]
pub use admission_args::{parse_rate_limit, AdmissionArgs, AdmissionError};
pub use connection_leases::{ConnectionLease, ConnectionLeases, LeaseRequest};
pub use error::Error;
pub use finish::finish;
pub use fleet_admission::FleetAdmission;
pub use listener::{tune, Listener, LocalAddr, Peer, Socket, UnixSocketFile};
pub use metrics::{duration_buckets, Label, Labels2, Metrics, PowCounters};
#[cfg(feature = "cli")]
pub use metrics_args::{parse_metrics_listen, MetricsArgs};
pub use metrics_endpoint::serve_metrics;
/// The metrics library, so protocol crates build families of the same version.
pub use prometheus_client;
pub use proxy::{read_proxy_header, ProxyError};
pub use reload::on_reload;
#[cfg(feature = "cli")]
pub use reload_args::ReloadArgs;
pub use revoked_certificates::RevokedCertificates;
pub use signal::shutdown_signal;
pub use stage::{Admitted, Handler, Refusal, Reload, Stage, StageConfig, Stream};
pub use stage_stats::StageStats;
