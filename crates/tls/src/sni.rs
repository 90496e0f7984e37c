//! Virtual hosts on one listener: the certificate is chosen by the SNI name the
//! client sends. A client that sends no SNI (IP-literal URLs) or an unknown name
//! gets the first host's certificate, so it still reaches the application,
//! which then refuses the foreign host with its own status instead of a bare
//! handshake failure.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::tofu::normalize_host;
use crate::{provider, Error, Identity};

/// Picks a certificate by SNI name; see the module docs for the fallback.
#[derive(Debug)]
pub struct SniResolver {
    by_name: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl SniResolver {
    /// A resolver for `(host name, identity)` pairs; the first is the default.
    ///
    /// # Errors
    /// [`Error::InvalidHost`] for an empty list or a bad name, or a key rustls cannot use.
    pub fn new(hosts: &[(String, Identity)]) -> Result<Self, Error> {
        let provider = provider();
        let mut by_name = HashMap::new();
        let mut default = None;
        for (name, identity) in hosts {
            let key = identity.certified_key(&provider)?;
            default.get_or_insert_with(|| key.clone());
            by_name.insert(normalize_host(name)?, key);
        }
        let default = default.ok_or_else(|| Error::InvalidHost {
            text: String::new(),
            reason: "a server needs at least one host",
        })?;
        Ok(Self { by_name, default })
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = hello
            .server_name()
            .and_then(|name| {
                let name = name.strip_suffix('.').unwrap_or(name);
                match self.by_name.get(name) {
                    Some(key) => Some(key),
                    None => self.by_name.get(&name.to_ascii_lowercase()),
                }
            })
            .unwrap_or(&self.default);
        Some(chosen.clone())
    }
}
