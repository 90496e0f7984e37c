//! The TLS line protocol (tlslp): a drop-in, concurrent and hardened
//! replacement for the reference Python/C++ server and client
//! (`../shared/spec/tlslp.md`).
//!
//! The protocol lives in sans-IO sessions ([`ServerSession`], [`ClientSession`])
//! over a line [`codec`]; the tokio [`driver`] owns sockets, TLS, timeouts,
//! concurrency limits and shutdown; `tlslp-server` / `tlslp-client` keep the
//! reference's flags, defaults and log files (their front end, [`cli`], is
//! the `cli` feature, so library users do not build clap and its kin).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use tessera_tlslp::{ServerSession, SessionConfig, Sequence, Timeouts};
//!
//! let config = Arc::new(SessionConfig {
//!     token: "abc".into(),
//!     random_string: "LGTk".into(),
//!     n_bits: 0,
//!     sequence: Sequence::Tutorial,
//!     timeouts: Timeouts::default(),
//! });
//! let start = Instant::now();
//! let mut session = ServerSession::new(config, 0, start);
//! assert_eq!(session.poll_transmit().as_deref(), Some("HELLO"));
//! session.handle_line("HELLOBACK", start);
//! assert_eq!(session.poll_transmit().as_deref(), Some("WORK abc 0"));
//! // The WORK reply is due 30 minutes later.
//! assert_eq!(session.poll_timeout(), Some(start + Duration::from_secs(1800)));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)
)]

#[cfg(feature = "cli")]
pub mod cli;
mod client;
pub mod codec;
mod command;
pub mod driver;
mod error;
mod event;
pub mod logfile;
mod profile;
mod repr;
mod server;

pub use client::{ClientOutcome, ClientSession};
pub use command::{checksum, Body, Command, BODY};
pub use error::Error;
pub use event::{Event, Level};
pub use profile::Profile;
pub use repr::py_repr;
pub use server::{
    suffix_passes, Awaiting, FailReason, Outcome, Sequence, ServerSession, SessionConfig, Timeouts,
    PICKS,
};

/// The reference's default WORK token.
pub const DEFAULT_TOKEN: &str = "gkcjcibIFynKssuJnJpSrgvawiVjLjEbdFuYQzuWROTeTaSmqFCAzuwkwLCRgIIq";
