//! TLS for Tessera: rustls configurations for mutual TLS, server-auth only and
//! "any client certificate" servers; a development PKI; PEM loading with errors
//! that name the file; certificate facts and SHA-256 fingerprints; a
//! and a trust-on-first-use store with a verifier that pins inside the
//! handshake. TLS only: the connection stage (accept loop, caps, deadlines)
//! is tessera-serve's.
//!
//! ```
//! use tessera_tls::{client_config, server_config, ClientAuth, DevPki, PkiOptions, ServerAuth};
//!
//! # fn main() -> Result<(), tessera_tls::Error> {
//! let pki = DevPki::generate(&PkiOptions::default())?;
//! // A server that requires a client certificate from the dev CA...
//! let server = server_config(&pki.server.identity()?, ClientAuth::Required(pki.roots()?))?;
//! // ...and a client that verifies the server against the same CA and presents its own.
//! let client = client_config(ServerAuth::Roots(pki.roots()?), Some(&pki.client.identity()?))?;
//! # let _ = (server, client);
//! # Ok(())
//! # }
//! ```
//!
//! Insecure development modes live in [`dangerous`] and refuse any host that is
//! not loopback before a socket is opened.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)
)]

mod ca;
mod certificate;
mod config;
pub mod dangerous;
mod error;
mod files;
mod fingerprint;
mod loopback;
mod pem;
mod pki;
mod probe;
mod revocation;
mod session;
mod sni;
pub mod tofu;
mod verifier;

pub use ca::{load_crls, DevCa, Revoked};
pub use certificate::{CertificateInfo, KeyAlgorithm, SubjectAltName, Validity};
pub use config::{
    client_config, provider, server_config, server_config_for_hosts, server_name, with_resumption,
    ClientAuth, ServerAuth, SESSION_CACHE_SIZE,
};
pub use error::Error;
pub use files::{create_private_dir, write_file, FileMode};
pub use fingerprint::Fingerprint;
pub use loopback::{ensure_loopback, is_loopback_host};
pub use pem::{load_certificates, load_private_key, load_roots, Identity};
pub use pki::{layout, self_signed, DevPki, Issued, KeyType, PkiOptions, Usage};
pub use probe::fetch_server_certificates;
pub use revocation::RevocationList;
pub use session::HandshakeSummary;
pub use sni::SniResolver;
pub use tofu::{mismatch_in as mismatch, TofuStore, TofuVerifier};

pub use rustls;
pub use tokio_rustls;
