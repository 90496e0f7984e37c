//! Fleet mode: the state that must be one across several Tessera servers —
//! per-client rate limits, replay caches, revocations — kept in Redis or
//! Valkey. Each piece implements what a building block asks of a shared
//! store ([`FleetRate`] is the guard's [`SharedRate`](tessera_guard::SharedRate));
//! without a store every server keeps its state in memory, as before.
//!
//! No request waits on the store longer than its budget ([`StoreConfig::budget`],
//! 50 ms by default); what happens then is the caller's stated policy.
//!
//! ```no_run
//! use std::sync::Arc;
//! use tessera_fleet::{FleetRate, Store, StoreConfig};
//! use tessera_guard::{Chain, Fallback, Limiter, LimiterConfig, SharedLimit};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(Store::open(&StoreConfig::new("redis://127.0.0.1:6379/0"))?);
//! let chain = Chain::new()
//!     .limiter(Limiter::new(&LimiterConfig::default())?)
//!     .shared(SharedLimit::new(Arc::new(FleetRate::new(store)), Fallback::Local));
//! # let _ = chain;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)
)]

#[cfg(feature = "cli")]
mod args;
mod certificates;
mod error;
mod fleet_key;
pub mod keys;
mod leases;
mod local;
mod rate;
mod replay;
mod revocation;
mod status;
mod store;

#[cfg(feature = "cli")]
pub use args::{FleetArgs, StoreArgs};
pub use certificates::{certificate_revocation_id, RevokedCertificates};
pub use error::Error;
pub use leases::{FleetLeases, DEFAULT_LEASE_TIME};
pub use local::{LocalOptions, LocalRedis, LocalTls};
pub use rate::FleetRate;
pub use replay::{FleetReplay, ReplayKind};
pub use revocation::{Revocations, Revoked, MAX_ID_LEN, MAX_REVOKED};
pub use status::{status, Status};
pub use store::{Store, StoreConfig, PASSWORD_ENV};
