//! Tokio drivers: sockets, TLS, deadlines, concurrency limits and shutdown
//! around the sans-IO sessions.

mod client;
mod lines;
mod server;

pub use client::{connect_and_run, ClientOptions, ClientReport, SessionEnd};
pub use lines::LineReader;
pub use server::{serve, AdaptiveWork, ServerOptions, ServerReport, SessionRecord};
