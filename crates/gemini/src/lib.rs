//! Gemini for Tessera: a capsule server (virtual hosts by SNI, static files
//! that never escape their root, client-certificate paths, rate limits and
//! access lists from `tessera-guard`, privacy-preserving access logs) and a
//! client that pins servers on first use inside the TLS handshake.
//!
//! The protocol core is sans-IO: [`parse_request`] and [`Header`] are pure
//! functions over bytes; [`Server`] and [`Client`] are thin tokio drivers.
//!
//! ```
//! use tessera_gemini::{parse_request, Header};
//!
//! let request = parse_request(b"gemini://Example.org/%64ocs/index.gmi?q").unwrap();
//! assert_eq!((request.host.as_str(), request.path.as_str()), ("example.org", "/docs/index.gmi"));
//! assert!(parse_request(b"gemini://example.org/docs/../index.gmi").is_err());
//! assert_eq!(Header::not_found().to_line(), "51 Not found\r\n");
//! assert!(parse_request(b"gemini://user@example.org/").is_err());
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)
)]

mod access;
mod capsule;
mod cgi;
mod client;
mod config;
mod error;
mod identity;
mod meta;
mod metrics;
mod proxy;
mod request;
mod rules;
mod server;
mod status;
mod titan;

pub use capsule::{Capsule, Resolved, INDEX_FILE, MAX_LISTING};
pub use cgi::{CgiLimits, CgiRoute};
pub use client::{parse_url, Client, ClientOptions, Response, ServerTrust};
pub use config::{ConfigFile, HostConfig, ServerSettings, VirtualHost};
pub use error::Error;
pub use identity::{generated_paths, load_or_generate, GENERATED_DAYS};
pub use request::{find_line_end, parse_request, Request, RequestError, MAX_REQUEST_LINE, MAX_URL};
pub use rules::{PathRules, RuleConfig};
pub use server::{Reloader, Server};
pub use status::{Header, StatusClass, MAX_META};
pub use titan::{TitanRoute, TitanSettings};
pub use url::Url;
