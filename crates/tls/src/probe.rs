//! Fetching a server's certificate without trusting it: the handshake is
//! completed (the server proves it holds the key), nothing is sent, and the
//! connection is closed with close_notify.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::client_config_with_verifier;
use crate::verifier::AnyServerCertificate;
use crate::{provider, server_name, CertificateInfo, Error};

/// The certificate chain a server at `host:port` presents, end-entity first.
///
/// # Errors
/// [`Error::Io`] when the connection fails or `timeout` passes (the path names the
/// address); [`Error::Rustls`] when the handshake fails.
pub async fn fetch_server_certificates(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<Vec<CertificateInfo>, Error> {
    let address = format!("{}:{port}", bracket(host));
    let io_error = Error::io(&address);
    let config =
        client_config_with_verifier(Arc::new(AnyServerCertificate::new(provider())), None)?;
    let name = server_name(host)?;
    let work = async {
        let tcp = TcpStream::connect(&address).await?;
        tcp.set_nodelay(true)?;
        let mut tls = TlsConnector::from(config).connect(name, tcp).await?;
        let chain = tls
            .get_ref()
            .1
            .peer_certificates()
            .map(<[_]>::to_vec)
            .unwrap_or_default();
        let _ = tls.shutdown().await;
        Ok::<_, std::io::Error>(chain)
    };
    let chain = tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"))
        .and_then(|r| r)
        .map_err(io_error)?;
    chain.iter().map(CertificateInfo::from_rustls).collect()
}

/// `host` as it goes before `:port`: IPv6 literals in brackets.
pub(crate) fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}
