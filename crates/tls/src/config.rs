//! rustls configurations for the three server modes (mutual TLS, server-auth
//! only, any client certificate) and the client modes (CA roots or TOFU).
//!
//! TLS 1.2 is the minimum and 1.3 preferred, the order rustls negotiates by
//! default; the crypto provider is aws-lc-rs.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::ServerName;

use crate::tofu::strip_brackets;
use crate::verifier::AnyClientCertificate;
use crate::{Error, Identity, SniResolver, TofuVerifier};

/// How a server treats client certificates.
#[derive(Debug)]
pub enum ClientAuth {
    /// Mutual TLS: a client certificate chaining to these roots is required;
    /// one with an extendedKeyUsage must allow clientAuth.
    Required(RootCertStore),
    /// [`ClientAuth::Required`], and a certificate listed in one of these
    /// CRLs (from [`crate::load_crls`]) is refused as revoked.
    RequiredWithCrls(
        RootCertStore,
        Vec<rustls_pki_types::CertificateRevocationListDer<'static>>,
    ),
    /// Request a certificate and accept any, self-signed included, with its
    /// handshake signature verified; the application authorises the fingerprint.
    /// A client may also send none.
    AnyCertificate,
    /// Do not request a client certificate.
    None,
}

/// How a client verifies the server.
#[derive(Debug)]
pub enum ServerAuth {
    /// The server chain must lead to one of these roots and name the host in a SAN.
    Roots(RootCertStore),
    /// Trust on first use, checked inside the handshake.
    Tofu(Arc<TofuVerifier>),
}

/// The crypto provider every Tessera config uses (aws-lc-rs), with the
/// SHA-256 suites first: AES-128-GCM matches the 128-bit strength of X25519
/// and P-256, and SHA-256, unlike SHA-384, has instructions of its own on
/// current x86 and ARM CPUs. The TLS 1.3 key schedule hashes a lot per
/// handshake; on the servers' benchmark machine SHA-384 took 14% of a
/// Gemini server's CPU (docs/BENCHMARKS.md).
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            let mut provider = rustls::crypto::aws_lc_rs::default_provider();
            // A stable sort: within each hash, the provider's own order.
            provider.cipher_suites.sort_by_key(|suite| {
                let common = match suite {
                    rustls::SupportedCipherSuite::Tls13(suite) => &suite.common,
                    rustls::SupportedCipherSuite::Tls12(suite) => &suite.common,
                };
                common.hash_provider.algorithm() != rustls::crypto::hash::HashAlgorithm::SHA256
            });
            Arc::new(provider)
        })
        .clone()
}

/// A server configuration presenting `identity`.
///
/// # Errors
/// An empty root store for [`ClientAuth::Required`], or a key rustls cannot use.
pub fn server_config(
    identity: &Identity,
    client_auth: ClientAuth,
) -> Result<Arc<ServerConfig>, Error> {
    let key = identity.certified_key(&provider())?;
    server_config_with_resolver(
        Arc::new(rustls::sign::SingleCertAndKey::from(key)),
        client_auth,
    )
}

/// A server configuration for several virtual hosts, each presenting its own
/// identity by SNI (see [`SniResolver`]); the first host is the default.
///
/// # Errors
/// As [`server_config`], or an empty or invalid host list.
pub fn server_config_for_hosts(
    hosts: &[(String, Identity)],
    client_auth: ClientAuth,
) -> Result<Arc<ServerConfig>, Error> {
    server_config_with_resolver(Arc::new(SniResolver::new(hosts)?), client_auth)
}

/// Sessions a server keeps for resumption by session id (TLS 1.2 clients).
pub const SESSION_CACHE_SIZE: usize = 4096;

/// `config` with session resumption for clients that use it: TLS 1.3
/// tickets sealed under a key that rotates every 6 hours (aws-lc-rs's
/// `Ticketer`: a ticket is accepted for 6 to 12 hours, and the server keeps
/// nothing per client), and TLS 1.2 session ids in a cache of at most
/// [`SESSION_CACHE_SIZE`] sessions. A resumed session carries the client
/// certificate of its full handshake, so a server that revokes
/// certificates checks them on every connection (the connection stage
/// does); a reload builds a new config, whose new key ends every earlier
/// ticket.
///
/// # Errors
/// [`Error::Rustls`] when no ticket key can be made.
pub fn with_resumption(config: Arc<ServerConfig>) -> Result<Arc<ServerConfig>, Error> {
    let mut config = Arc::unwrap_or_clone(config);
    config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()?;
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE_SIZE);
    Ok(Arc::new(config))
}

fn server_config_with_resolver(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    client_auth: ClientAuth,
) -> Result<Arc<ServerConfig>, Error> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match client_auth {
        ClientAuth::Required(roots) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|err| rustls::Error::General(format!("client verifier: {err}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        ClientAuth::RequiredWithCrls(roots, crls) => {
            // Our CAs sign clients directly: the CRL speaks for end entities.
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .with_crls(crls)
                    .only_check_end_entity_revocation()
                    .build()
                    .map_err(|err| rustls::Error::General(format!("client verifier: {err}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        ClientAuth::AnyCertificate => builder.with_client_cert_verifier(Arc::new(
            AnyClientCertificate::new(provider.clone(), false),
        )),
        ClientAuth::None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver);
    // Our order (see `provider`), not the client's.
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

/// A client configuration verifying the server by `server_auth`, presenting
/// `identity` when the server asks for a certificate.
///
/// # Errors
/// A key rustls cannot use.
pub fn client_config(
    server_auth: ServerAuth,
    identity: Option<&Identity>,
) -> Result<Arc<ClientConfig>, Error> {
    let verifier: Arc<dyn ServerCertVerifier> = match server_auth {
        ServerAuth::Roots(roots) => {
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|err| rustls::Error::General(format!("server verifier: {err}")))?
        }
        ServerAuth::Tofu(verifier) => verifier,
    };
    client_config_with_verifier(verifier, identity)
}

pub(crate) fn client_config_with_verifier(
    verifier: Arc<dyn ServerCertVerifier>,
    identity: Option<&Identity>,
) -> Result<Arc<ClientConfig>, Error> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match identity {
        Some(identity) => builder.with_client_cert_resolver(Arc::new(
            rustls::sign::SingleCertAndKey::from(identity.certified_key(&provider)?),
        )),
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The TLS server name for `host`: an IP literal (brackets and zone dropped) or a DNS name.
///
/// # Errors
/// [`Error::InvalidHost`] when `host` is neither.
pub fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    let bare = strip_brackets(host);
    let bare = bare.split('%').next().unwrap_or(bare);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(bare.to_owned()).map_err(|_| Error::InvalidHost {
        text: host.to_owned(),
        reason: "not a DNS name or IP address",
    })
}
