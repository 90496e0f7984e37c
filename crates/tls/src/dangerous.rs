//! Configurations that skip certificate verification, for development against
//! loopback only. Every constructor checks the host before a socket exists and
//! refuses anything that is not `localhost`, 127.0.0.0/8 or ::1.
//!
//! Even here the handshake signature is verified: "insecure" means the
//! certificate's issuer and names are not checked, not that anyone may answer.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};

use crate::config::client_config_with_verifier;
use crate::loopback::ensure_loopback;
use crate::verifier::AnyServerCertificate;
use crate::{provider, server_config, ClientAuth, Error, Identity};

/// A client configuration that accepts any server certificate, for `host` only
/// if it is loopback.
///
/// # Errors
/// [`Error::InsecureNotLoopback`] for any other host, before anything is sent.
pub fn insecure_client_config(
    host: &str,
    identity: Option<&Identity>,
) -> Result<Arc<ClientConfig>, Error> {
    ensure_loopback(host)?;
    client_config_with_verifier(Arc::new(AnyServerCertificate::new(provider())), identity)
}

/// A server configuration that does not ask for client certificates, for a
/// listener bound to `bind` only if it is a loopback address.
///
/// # Errors
/// [`Error::InsecureNotLoopback`] for any other address, before binding.
pub fn insecure_server_config(
    bind: SocketAddr,
    identity: &Identity,
) -> Result<Arc<ServerConfig>, Error> {
    ensure_loopback(&bind.ip().to_string())?;
    server_config(identity, ClientAuth::None)
}
