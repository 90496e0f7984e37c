//! Reverse proxying: requests under a path prefix are forwarded to an
//! upstream Gemini server (`--proxy /mirror/=gemini://upstream:1965/`:
//! `/mirror/a.gmi?q` is fetched as `gemini://upstream:1965/a.gmi?q`).
//!
//! The upstream is verified as the Gemini client verifies servers: trust on
//! first use in a TOFU store, inside the handshake, so a pin set ahead with
//! `tessera tofu trust` makes it a fingerprint pin; or, given CA roots, its
//! chain must lead to one of them and name its host. The upstream's answer is
//! passed on (redirects into the upstream rewritten to our prefix) under
//! the CGI limits: one deadline for the whole exchange, its size capped,
//! and the requests in flight counted with the scripts. Whatever goes wrong
//! upstream is a `43` to the client and a line in the log. Client
//! certificates are not forwarded: the upstream sees the proxy.

use url::Url;

use crate::cgi::{CgiLimits, CgiRequest};
use crate::{Client, ClientOptions, Error, Header, ServerTrust, StatusClass};

/// Where a prefix's requests go, and how the upstream is verified.
#[derive(Clone, Debug)]
pub(crate) struct Upstream {
    /// A `gemini://` URL whose path ends in `/`, without query or fragment.
    base: Url,
    trust: ServerTrust,
}

impl Upstream {
    /// `url` as an upstream (`gemini://HOST[:PORT][/PATH/]`).
    ///
    /// # Errors
    /// [`Error::Config`] for anything else.
    pub(crate) fn new(url: &str, trust: ServerTrust) -> Result<Self, Error> {
        let bad = |reason: String| Error::Config(format!("proxy upstream {url:?}: {reason}"));
        let mut base = crate::client::parse_url(url).map_err(|e| bad(e.to_string()))?;
        if base.query().is_some() || base.fragment().is_some() {
            return Err(bad("no query or fragment in an upstream".into()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Self { base, trust })
    }

    /// Fetches the upstream's answer to `request`, whose path is `rest`
    /// below `prefix`: its header and (for a success) its body.
    pub(crate) async fn forward(
        &self,
        prefix: &str,
        rest: &str,
        request: &CgiRequest<'_>,
        limits: CgiLimits,
    ) -> (Header, Option<Vec<u8>>) {
        let mut target = format!("{}{rest}", self.base);
        if let Some(query) = request.url.query() {
            target.push('?');
            target.push_str(query);
        }
        let client = Client::verifying(
            self.trust.clone(),
            ClientOptions {
                identity: None,
                timeout: limits.timeout,
                max_body: u64::try_from(limits.max_output).unwrap_or(u64::MAX),
                max_redirects: 0,
            },
        );
        let fetched = async {
            let url = crate::client::parse_url(&target)?;
            client.fetch(&url).await
        };
        let response = match tokio::time::timeout(limits.timeout, fetched).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return self.failed(&target, &error.to_string()),
            Err(_) => return self.failed(&target, "no answer in time"),
        };
        let mut header = response.header;
        if header.class() == Some(StatusClass::Redirect) {
            header.meta = self.ours(&header.meta, prefix, request);
        }
        let body = (header.class() == Some(StatusClass::Success)).then_some(response.body);
        (header, body)
    }

    /// A redirect into the upstream (its URL, or an absolute path under its
    /// base), pointed at the same place through us. Relative references
    /// resolve alike on both sides and pass as they are.
    fn ours(&self, target: &str, prefix: &str, request: &CgiRequest<'_>) -> String {
        if let Some(rest) = target.strip_prefix(self.base.as_str()) {
            let port = match request.url.port() {
                Some(port) => format!(":{port}"),
                None => String::new(),
            };
            return format!("gemini://{}{port}{prefix}{rest}", request.host);
        }
        match target.strip_prefix(self.base.path()) {
            Some(rest) if target.starts_with('/') && !target.starts_with("//") => {
                format!("{prefix}{rest}")
            }
            _ => target.to_owned(),
        }
    }

    fn failed(&self, target: &str, reason: &str) -> (Header, Option<Vec<u8>>) {
        tracing::warn!(upstream = %self.base, target, reason, "proxied request failed");
        (Header::new(43, "Proxy error"), None)
    }
}
