//! The Gemini client: one TLS connection per request, the server verified by
//! trust on first use inside the handshake (so nothing is sent to a server
//! whose certificate changed), an optional client identity, redirects followed
//! up to a limit, and the body bounded.

use std::sync::Arc;
use std::time::Duration;

use tessera_tls::tofu::{HostKey, DEFAULT_PORT};
use tessera_tls::{client_config, server_name, Identity, ServerAuth, TofuStore, TofuVerifier};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use url::Url;

use crate::request::MAX_URL;
use crate::status::MAX_META;
use crate::{Error, Header, StatusClass};

/// How the client behaves.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Certificate and key presented when a server asks for one.
    pub identity: Option<Identity>,
    /// Deadline for each step: connect, handshake, header, body.
    pub timeout: Duration,
    /// Largest body accepted.
    pub max_body: u64,
    /// Redirects followed at most (the Gemini specification suggests 5).
    pub max_redirects: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            identity: None,
            timeout: Duration::from_secs(30),
            max_body: 64 * 1024 * 1024,
            max_redirects: 5,
        }
    }
}

/// A response: the final URL, the header and (for 2x) the body.
#[derive(Clone, Debug)]
pub struct Response {
    /// The URL that answered (after redirects).
    pub url: Url,
    /// The header.
    pub header: Header,
    /// The body (empty unless the status is 2x).
    pub body: Vec<u8>,
    /// Redirects followed, in order.
    pub redirects: Vec<Url>,
}

/// A Gemini client pinning servers in a TOFU store (as Gemini clients do),
/// or verifying them against CA roots.
#[derive(Clone, Debug)]
pub struct Client {
    trust: ServerTrust,
    options: ClientOptions,
}

/// How a client verifies servers.
#[derive(Clone, Debug)]
pub enum ServerTrust {
    /// Trust on first use in this store: a pin set ahead is a fingerprint pin.
    Tofu(Arc<TofuStore>),
    /// The server's chain must lead to one of these roots and name the host.
    Roots(Arc<tessera_tls::rustls::RootCertStore>),
}

impl Client {
    /// A client pinning servers in `store`.
    pub fn new(store: Arc<TofuStore>, options: ClientOptions) -> Self {
        Self::verifying(ServerTrust::Tofu(store), options)
    }

    /// A client verifying servers as `trust` says.
    pub fn verifying(trust: ServerTrust, options: ClientOptions) -> Self {
        Self { trust, options }
    }

    /// Requests `url`, following redirects to other `gemini://` URLs.
    ///
    /// # Errors
    /// A bad URL, a TOFU mismatch ([`Error::Tls`] with both fingerprints), a
    /// network failure or timeout, a malformed response, a redirect loop or too
    /// many redirects.
    pub async fn get(&self, url: &str) -> Result<Response, Error> {
        let mut url = parse_url(url)?;
        let mut redirects = Vec::new();
        loop {
            let mut response = self.fetch(&url).await?;
            if response.header.class() != Some(StatusClass::Redirect) {
                response.redirects = redirects;
                return Ok(response);
            }
            if redirects.len() >= self.options.max_redirects {
                return Err(Error::TooManyRedirects(self.options.max_redirects));
            }
            let target = url
                .join(&response.header.meta)
                .map_err(|e| Error::InvalidUrl {
                    url: response.header.meta.clone(),
                    reason: format!("redirect target: {e}"),
                })?;
            if target.scheme() != "gemini" {
                return Err(Error::InvalidUrl {
                    url: target.to_string(),
                    reason: "redirect to another scheme is not followed".into(),
                });
            }
            if target == url || redirects.contains(&target) {
                return Err(Error::TooManyRedirects(self.options.max_redirects));
            }
            redirects.push(target.clone());
            url = target;
        }
    }

    /// One request, no redirects followed.
    ///
    /// # Errors
    /// As [`Client::get`], minus redirects.
    pub async fn fetch(&self, url: &Url) -> Result<Response, Error> {
        self.exchange(url, format!("{url}\r\n").as_bytes()).await
    }

    /// Uploads `body` to the `titan://` URL `url` (its host and path; the
    /// size, `mime` and `token` parameters are added), as a Titan client
    /// does. The server answers with a redirect to the result, which is not
    /// followed.
    ///
    /// # Errors
    /// As [`Client::fetch`]; [`Error::InvalidUrl`] for a URL that is not
    /// `titan://` or already has parameters.
    pub async fn upload(
        &self,
        url: &str,
        body: &[u8],
        mime: &str,
        token: Option<&str>,
    ) -> Result<Response, Error> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = url
            .strip_prefix("titan://")
            .ok_or_else(|| invalid("expected a titan:// URL"))?;
        if rest.contains(';') {
            return Err(invalid("give --mime and --token as flags, not in the URL"));
        }
        // The host, port and path, checked as a Gemini URL would be.
        let target = parse_url(&format!("gemini://{rest}"))?;
        let mut line = format!("titan://{rest};size={};mime={mime}", body.len());
        if let Some(token) = token {
            line.push_str(";token=");
            line.push_str(token);
        }
        line.push_str("\r\n");
        let mut request = line.into_bytes();
        request.extend_from_slice(body);
        self.exchange(&target, &request).await
    }

    /// Sends `request` (a request line, and for Titan its body) to the
    /// server `url` names and reads the response.
    async fn exchange(&self, url: &Url, request: &[u8]) -> Result<Response, Error> {
        let (host, port) = host_and_port(url)?;
        let auth = match &self.trust {
            ServerTrust::Tofu(store) => ServerAuth::Tofu(Arc::new(TofuVerifier::new(
                store.clone(),
                HostKey::new(&host, port)?,
            ))),
            ServerTrust::Roots(roots) => ServerAuth::Roots((**roots).clone()),
        };
        let connector = TlsConnector::from(client_config(auth, self.options.identity.as_ref())?);
        let name = server_name(&host)?;
        let deadline = self.options.timeout;
        let address = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let tcp = tokio::time::timeout(deadline, TcpStream::connect(&address))
            .await
            .map_err(|_| Error::Timeout("connecting"))?
            .map_err(Error::io(format!("connect to {address}")))?;
        let _ = tcp.set_nodelay(true);
        let mut tls = tokio::time::timeout(deadline, connector.connect(name, tcp))
            .await
            .map_err(|_| Error::Timeout("in the TLS handshake"))?
            .map_err(handshake_error)?;
        // Flushed: a TLS stream buffers like a BufWriter.
        let sent = async {
            tls.write_all(request).await?;
            tls.flush().await
        };
        tokio::time::timeout(deadline, sent)
            .await
            .map_err(|_| Error::Timeout("sending the request"))?
            .map_err(Error::io("send the request"))?;
        let (header, mut body) = tokio::time::timeout(deadline, read_header(&mut tls))
            .await
            .map_err(|_| Error::Timeout("waiting for the response header"))??;
        if header.class() == Some(StatusClass::Success) {
            let limit = self.options.max_body;
            let mut rest = Vec::new();
            let read = (&mut tls).take(limit.saturating_sub(body.len() as u64) + 1);
            tokio::time::timeout(deadline, read_to_end_lenient(read, &mut rest))
                .await
                .map_err(|_| Error::Timeout("reading the body"))??;
            body.extend_from_slice(&rest);
            if body.len() as u64 > limit {
                return Err(Error::BodyTooLarge(limit));
            }
        } else {
            body.clear();
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), tls.shutdown()).await;
        Ok(Response {
            url: url.clone(),
            header,
            body,
            redirects: Vec::new(),
        })
    }
}

/// Parses and checks a URL the client can request.
///
/// # Errors
/// [`Error::InvalidUrl`] for anything but an absolute `gemini://` URL with a
/// host, no userinfo and at most 1024 bytes.
pub fn parse_url(text: &str) -> Result<Url, Error> {
    let invalid = |reason: &str| Error::InvalidUrl {
        url: text.to_owned(),
        reason: reason.to_owned(),
    };
    let mut url = Url::parse(text).map_err(|e| invalid(&e.to_string()))?;
    if url.scheme() != "gemini" {
        return Err(invalid("only gemini:// URLs are supported"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("userinfo is not allowed in Gemini URLs"));
    }
    url.set_fragment(None);
    if url.path().is_empty() {
        url.set_path("/");
    }
    if url.as_str().len() > MAX_URL {
        return Err(invalid("longer than 1024 bytes"));
    }
    host_and_port(&url)?;
    Ok(url)
}

fn host_and_port(url: &Url) -> Result<(String, u16), Error> {
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Error::InvalidUrl {
            url: url.to_string(),
            reason: "no host".into(),
        })?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Ok((host, url.port().unwrap_or(DEFAULT_PORT)))
}

/// A handshake failure, with a TOFU mismatch surfaced as such.
fn handshake_error(error: std::io::Error) -> Error {
    if let Some(mismatch) = error
        .get_ref()
        .and_then(|inner| tessera_tls::mismatch(inner))
    {
        return Error::Tls(mismatch.clone().into());
    }
    Error::io("TLS handshake")(error)
}

/// Reads the header line; returns it and any body bytes read past it.
async fn read_header<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(Header, Vec<u8>), Error> {
    // Two digits, a space, META and CRLF.
    const LIMIT: usize = 2 + 1 + MAX_META + 2;
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(lf) = buffer.iter().position(|&b| b == b'\n') {
            let line = buffer[..lf]
                .strip_suffix(b"\r")
                .ok_or_else(|| Error::BadResponse("header does not end with CRLF".into()))?;
            let header = Header::parse(line)?;
            let rest = buffer[lf + 1..].to_vec();
            return Ok((header, rest));
        }
        if buffer.len() > LIMIT {
            return Err(Error::BadResponse("header longer than 1029 bytes".into()));
        }
        let read = match stream.read(&mut chunk).await {
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(error) => return Err(Error::io("read the response header")(error)),
        };
        if read == 0 {
            return Err(Error::BadResponse(
                "connection closed before a header".into(),
            ));
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// Reads to the end; a server that closes without close_notify still ends the
/// body (many capsules in the wild do), logged at debug level.
async fn read_to_end_lenient<R: tokio::io::AsyncRead + Unpin>(
    mut reader: R,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    match reader.read_to_end(out).await {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            tracing::debug!("server closed without close_notify");
            Ok(())
        }
        Err(error) => Err(Error::io("read the body")(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert_eq!(
            parse_url("gemini://example.org").unwrap().as_str(),
            "gemini://example.org/"
        );
        assert_eq!(
            parse_url("gemini://example.org/a#frag").unwrap().as_str(),
            "gemini://example.org/a"
        );
        for bad in [
            "https://example.org/",
            "gemini://u@example.org/",
            "gemini:///x",
            "nope",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        let long = format!("gemini://example.org/{}", "a".repeat(1100));
        assert!(parse_url(&long).is_err());
        let (host, port) = host_and_port(&parse_url("gemini://[::1]:1966/").unwrap()).unwrap();
        assert_eq!((host.as_str(), port), ("::1", 1966));
    }
}
