//! Tokio drivers: sockets, TLS, deadlines, concurrency limits and shutdown
//! around the sans-IO sessions.

mod adaptive;
mod client;
mod lines;
mod metrics;
mod report;
mod server;

pub use adaptive::AdaptiveWork;
pub use client::{connect_and_run, ClientOptions, ClientReport, SessionEnd};
pub use lines::LineReader;
pub use report::{ServerReport, SessionOutcome, SessionRecord};
pub use server::{serve, Server, ServerOptions};
