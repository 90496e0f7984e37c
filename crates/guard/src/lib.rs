//! Admission control for Tessera servers, sans-IO (`../shared/spec/guard.md`):
//! client address normalisation, a deny-first ACL over prefix ranges, GCRA
//! rate limiting with bounded memory, client-certificate rules by path,
//! connection limits as RAII permits, and keyed client ids for logs. Nothing
//! here touches a socket or reads the clock: callers pass both in.
//!
//! ```
//! use tessera_guard::{Acl, AclDefault, Chain, Clock, Decision, Guard, Limiter, LimiterConfig, Request};
//!
//! # fn main() -> Result<(), tessera_guard::Error> {
//! let chain = Chain::new()
//!     .acl(Acl::new(&["192.0.2.0/24"], &["192.0.2.66"], AclDefault::Deny)?)
//!     .limiter(Limiter::new(&LimiterConfig { burst: 2, ..LimiterConfig::default() })?);
//! let clock = Clock { monotonic_ns: 0, wall: time::OffsetDateTime::UNIX_EPOCH };
//! let request = |ip: &str| Request { address: ip.parse().ok(), path: None, cert: None };
//! assert_eq!(chain.check(&request("192.0.2.1"), clock), Decision::Allow);
//! assert!(matches!(chain.check(&request("192.0.2.66"), clock), Decision::Deny(_)));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)
)]

mod acl;
mod address;
mod certrule;
mod chain;
mod client_id;
mod config;
mod connlimit;
mod decision;
mod error;
mod limiter;
mod path;
mod proxy;
mod shared;
mod toml_error;

pub use acl::{Acl, AclDefault};
pub use address::{normalize, parse_client};
pub use certrule::{CertFingerprint, CertMode, CertRule, CertRules, PeerCert};
pub use chain::{Chain, Clock, Guard, Request};
pub use client_id::ClientIds;
pub use config::{AclConfig, CertRuleConfig, ConnectionsConfig, GuardConfig, RateLimitConfig};
pub use connlimit::{ConnectionLimits, ConnectionPermit, ConnectionRefused};
pub use decision::{Decision, Denial, DenialReason};
pub use error::Error;
pub use limiter::{GlobalLimiter, Limiter, LimiterConfig, MemoryStore, RateKey, RateStore};
pub use path::CanonicalPath;
pub use proxy::{
    parse_proxy_details, parse_proxy_header, ProxyDetails, ProxyFamily, ProxyHeader,
    MAX_PROXY_HEADER,
};
pub use shared::{Fallback, SharedCheck, SharedLimit, SharedRate, SharedVerdict, Unavailable};
pub use toml_error::toml_error_sentence;
