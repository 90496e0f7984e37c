//! The tokio driver of the capsule server: connections come through
//! tessera-serve's stage (connection caps, TLS under a deadline), then one
//! request line under a deadline, then the guard, the
//! URL checks and the capsule, in the order of `../shared/spec/guard.md` §4.
//! Every connection ends with close_notify and one access-log line.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use tessera_guard::{
    normalize, Chain, Clock, Decision, Denial, Limiter, LimiterConfig, PeerCert,
    Request as GuardRequest,
};
use tessera_serve::{Admitted, Handler, Listener, Peer, Refusal, Stage, StageConfig};
use tessera_tls::{server_config_for_hosts, with_resumption, CertificateInfo, ClientAuth};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::access::authorise;
use crate::cgi::{Cgi, CgiRequest, Spooled};
use crate::metrics::GeminiMetrics;
use crate::request::{find_line_end, parse_request, RequestError, MAX_REQUEST_LINE};
use crate::titan;
use crate::{Capsule, Error, Header, Resolved, ServerSettings};

/// Files up to this size are sent with their header in one write; larger ones stream.
const INLINE_BODY: u64 = 64 * 1024;

/// A bound capsule server.
pub struct Server {
    listener: Listener,
    stage: Arc<Stage>,
    capsules: Arc<Capsules>,
}

/// What every connection is served with: the settings current when it was
/// admitted (a reload swaps them for new connections only).
struct Capsules {
    current: ArcSwap<Shared>,
    local: SocketAddr,
}

/// Swaps a running server's settings ([`Server::reloader`]).
#[derive(Clone)]
pub struct Reloader {
    stage: Arc<Stage>,
    capsules: Arc<Capsules>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").finish_non_exhaustive()
    }
}

impl Reloader {
    /// Serves new connections with `settings` (hosts, certificates,
    /// capsules, guard); connections already open finish with what they
    /// had. Everything is built before anything is swapped, so on an error
    /// the server keeps its settings.
    ///
    /// # Errors
    /// What [`Server::from_listener`] refuses in `settings`.
    pub fn reload(&self, settings: ServerSettings) -> Result<(), Error> {
        let old = self.capsules.current.load_full();
        let (tls, shared) = Shared::build(settings, self.capsules.local, old.metrics.clone())?;
        self.stage
            .reload(tessera_serve::Reload {
                tls: Some(tls),
                ..tessera_serve::Reload::default()
            })
            .map_err(|e| Error::Config(e.to_string()))?;
        self.capsules.current.store(Arc::new(shared));
        Ok(())
    }
}

struct Shared {
    settings: ServerSettings,
    by_name: HashMap<String, usize>,
    chain: Chain,
    log_client_ip: bool,
    port: u16,
    origin: Instant,
    denial_log: Limiter,
    metrics: Option<Arc<GeminiMetrics>>,
    cgi: Cgi,
}

impl Shared {
    /// The TLS configuration and per-connection state of `settings`.
    fn build(
        settings: ServerSettings,
        local: SocketAddr,
        metrics: Option<Arc<GeminiMetrics>>,
    ) -> Result<(Arc<tessera_tls::rustls::ServerConfig>, Self), Error> {
        let identities: Vec<_> = settings
            .hosts
            .iter()
            .map(|h| (h.name.clone(), h.identity.clone()))
            .collect();
        // Gemini opens a connection per request: clients that resume save
        // the full handshake.
        let tls = with_resumption(server_config_for_hosts(
            &identities,
            ClientAuth::AnyCertificate,
        )?)?;
        let by_name = settings
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.name.clone(), i))
            .collect();
        let mut chain = settings.guard.build()?;
        if let Some(limit) = settings.shared_limit.clone() {
            chain = chain.shared(limit);
        }
        if settings.guard.log_client_ip {
            tracing::warn!("log_client_ip is set: raw client addresses will be logged");
        }
        let shared = Self {
            by_name,
            chain,
            log_client_ip: settings.guard.log_client_ip,
            port: settings.public_port.unwrap_or(local.port()),
            origin: Instant::now(),
            // One denial line per client and reason burst, then one per 10 s.
            denial_log: Limiter::new(&LimiterConfig {
                rate: 0.1,
                burst: 3,
                ..LimiterConfig::default()
            })?,
            cgi: Cgi::new(settings.cgi.clone(), settings.cgi_limits),
            metrics: metrics.or_else(|| {
                settings
                    .metrics
                    .as_ref()
                    .map(|m| Arc::new(GeminiMetrics::register(m)))
            }),
            settings,
        };
        Ok((tls, shared))
    }
}

/// What one connection did, for the access log.
#[derive(Debug, Default)]
struct Exchange {
    host: String,
    path: String,
    query_len: usize,
    status: Option<u8>,
    denial: Option<&'static str>,
    bytes: u64,
    /// The reply held back to leave with close_notify (see [`send`]).
    reply: Vec<u8>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .field(
                "hosts",
                &self
                    .capsules
                    .current
                    .load()
                    .by_name
                    .keys()
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `listen` and prepares hosts, TLS and the guard.
    ///
    /// # Errors
    /// [`Error::Io`] when the address cannot be bound; configuration errors.
    pub async fn bind(listen: SocketAddr, settings: ServerSettings) -> Result<Self, Error> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(Error::io(format!("bind {listen}")))?;
        Self::from_listener(listener, settings)
    }

    /// Serves on an already bound listener.
    ///
    /// # Errors
    /// Configuration errors (no host, a bad certificate or guard setting).
    pub fn from_listener(listener: TcpListener, settings: ServerSettings) -> Result<Self, Error> {
        let connections = settings.guard.connections.clone().unwrap_or_default();
        let ipv6_prefix = settings
            .guard
            .rate_limit
            .as_ref()
            .map_or(64, |r| r.ipv6_prefix);
        let local = listener
            .local_addr()
            .map_err(Error::io("read the listening address"))?;
        // The connection stage has the caps only: Gemini charges the ACL and
        // rate limit per request line (`../shared/spec/guard.md` §4), and
        // closes excess connections at once instead of leaving them in the
        // backlog (spec §5).
        let mut stage = StageConfig::default();
        stage
            .max_connections(connections.max_connections)
            .max_connections_per_client(connections.max_connections_per_client)
            .ipv6_prefix(ipv6_prefix)
            .hold_in_backlog(false)
            .handshake_timeout(settings.handshake_timeout)
            .shutdown_grace(settings.shutdown_grace)
            // One key, so the stage's refusal lines and the access lines name a client alike.
            .client_ids(settings.client_ids.clone())
            .log_client_ip(settings.guard.log_client_ip);
        let metrics = settings.metrics.clone();
        if let Some(metrics) = &metrics {
            stage.metrics(metrics.clone());
        }
        if let Some(relays) = settings.guard.relays()? {
            stage.proxy_from(relays);
        }
        stage.fleet(settings.fleet.clone());
        let (tls, shared) = Shared::build(settings, local, None)?;
        stage.tls(tls);
        let listener = Listener::from(listener);
        let stage = Stage::new(&tessera_serve::LocalAddr::Tcp(local), stage)
            .map_err(|e| Error::Config(e.to_string()))?;
        let capsules = Arc::new(Capsules {
            current: ArcSwap::from_pointee(shared),
            local,
        });
        if let Some(metrics) = metrics {
            // Weak: the registry lives in the settings the capsules hold.
            let capsules = Arc::downgrade(&capsules);
            metrics.register_tracked_clients(move || {
                capsules
                    .upgrade()
                    .map_or(0, |c| c.current.load().chain.tracked_clients())
            });
        }
        Ok(Self {
            capsules,
            stage: Arc::new(stage),
            listener,
        })
    }

    /// A handle that swaps the running server's settings (on SIGHUP, say).
    /// The caps, the handshake deadline and trusted relays are the stage's
    /// and stay as they were at start.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            stage: self.stage.clone(),
            capsules: self.capsules.clone(),
        }
    }

    /// The bound address.
    ///
    /// # Errors
    /// Only if the socket cannot report it.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        match self.listener.local_addr() {
            Ok(tessera_serve::LocalAddr::Tcp(address)) => Ok(address),
            Ok(other) => Err(Error::Config(format!("listening on {other}, not TCP"))),
            Err(error) => Err(Error::io("read the listening address")(error)),
        }
    }

    /// Serves until `shutdown` resolves, then stops accepting and gives running
    /// requests the shutdown grace before cutting them off.
    ///
    /// # Errors
    /// None today: per-connection failures are logged, never fatal.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        self.stage.run(self.listener, self.capsules, shutdown).await;
        Ok(())
    }
}

impl Handler for Capsules {
    async fn serve(self: Arc<Self>, admitted: Admitted) {
        // A capsule server listens on TCP only.
        if let Peer::Tcp(peer) = admitted.peer {
            let shared = self.current.load_full();
            connection(&shared, admitted, normalize(peer.ip())).await;
        }
    }

    fn refused(&self, peer: Peer, _id: u64, refusal: &Refusal) {
        if let (true, Some(address)) = (refusal.is_admission(), peer.ip()) {
            log_denial(&self.current.load(), normalize(address), refusal.name());
        }
    }
}

async fn connection(shared: &Shared, admitted: Admitted, address: IpAddr) {
    let started = Instant::now();
    let Admitted {
        stream: mut tls,
        sni,
        certificate: cert,
        refused,
        ..
    } = admitted;
    let mut exchange = Exchange::default();
    let client = Client {
        address,
        sni,
        cert: cert.as_ref(),
        // Refused at admission: its certificate is revoked (a CRL, the fleet's store).
        revoked: refused.is_cancelled(),
    };
    if let Err(error) = exchange_one(shared, &mut tls, client, &mut exchange).await {
        tracing::debug!(client = %client_id(shared, address), %error, "connection ended early");
    }
    // The reply, then close_notify so the client knows the body is complete.
    let finished = tessera_serve::finish(&mut tls, &exchange.reply);
    match tokio::time::timeout(shared.settings.send_timeout, finished).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            let error = Error::io("send the response")(error);
            tracing::debug!(client = %client_id(shared, address), %error, "connection ended early");
        }
        Err(_) => {
            let error = Error::Timeout("sending the response");
            tracing::debug!(client = %client_id(shared, address), %error, "connection ended early");
        }
    }
    access_log(shared, address, cert.as_ref(), &exchange, started.elapsed());
}

/// Who sent the request: what the connection's admission learnt.
struct Client<'a> {
    address: IpAddr,
    sni: Option<String>,
    cert: Option<&'a CertificateInfo>,
    /// The certificate is revoked: every request is answered 62.
    revoked: bool,
}

/// Reads one request and answers it.
async fn exchange_one<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    stream: &mut S,
    client: Client<'_>,
    exchange: &mut Exchange,
) -> Result<(), Error> {
    let Client {
        address,
        sni,
        cert,
        revoked,
    } = client;
    let line = match tokio::time::timeout(shared.settings.request_timeout, read_line(stream)).await
    {
        Err(_) => return send(shared, stream, &Header::request_timeout(), None, exchange).await,
        Ok(Err(error)) => return Err(error),
        Ok(Ok(line)) => line,
    };
    let peer_cert = cert.map(|info| PeerCert {
        fingerprint: tessera_guard::CertFingerprint(*info.fingerprint().as_bytes()),
        not_before: info.not_before(),
        not_after: info.not_after(),
    });
    let clock = Clock {
        monotonic_ns: u64::try_from(shared.origin.elapsed().as_nanos()).unwrap_or(u64::MAX),
        wall: time::OffsetDateTime::now_utc(),
    };
    // ACL and rate limit: every request line is charged once, parsable or not.
    let admission = GuardRequest {
        address: Some(address),
        path: None,
        cert: peer_cert.as_ref(),
    };
    if let Decision::Deny(denial) = shared.chain.admit(&admission, clock).await {
        return refuse(shared, stream, address, &denial, exchange).await;
    }
    if revoked {
        let denial = Denial {
            reason: tessera_guard::DenialReason::CertNotValid,
            retry_after: None,
        };
        return refuse(shared, stream, address, &denial, exchange).await;
    }
    let line = match line {
        Ok((line, rest)) if line.starts_with(b"titan://") => {
            let upload = Titan {
                line: &line,
                head: &rest,
                address,
                sni: sni.as_deref(),
                certificate: cert,
                cert: peer_cert.as_ref(),
                wall: clock.wall,
            };
            return upload.serve(shared, stream, exchange).await;
        }
        line => line.map(|(line, _)| line),
    };
    let request = match line.and_then(|line| parse_request(&line)) {
        Ok(request) => request,
        // Another scheme (http, gopher, …) asks us to be a proxy: 53, as for another host.
        Err(RequestError::WrongScheme) => {
            return send(shared, stream, &Header::proxy_refused(), None, exchange).await
        }
        Err(error) => {
            return send(
                shared,
                stream,
                &Header::bad_request(error.to_string()),
                None,
                exchange,
            )
            .await
        }
    };
    exchange.host.clone_from(&request.host);
    request.path.as_str().clone_into(&mut exchange.path);
    exchange.query_len = request.url.query().map_or(0, str::len);
    let foreign_sni = sni.is_some_and(|sni| {
        tessera_tls::tofu::normalize_host(&sni).map_or(true, |sni| sni != request.host)
    });
    // Another host or port, or a connection made (SNI) for another host: not ours.
    let port_is_ours = request.port.is_none_or(|port| port == shared.port);
    let host = match shared.by_name.get(&request.host) {
        Some(&host) if port_is_ours && !foreign_sni => host,
        _ => return send(shared, stream, &Header::proxy_refused(), None, exchange).await,
    };
    if shared.cgi.covers(&request.path) {
        // The certificate rules first, as for files.
        if let Decision::Deny(denial) =
            shared
                .chain
                .check_certs(&request.path, peer_cert.as_ref(), clock.wall)
        {
            return refuse(shared, stream, address, &denial, exchange).await;
        }
        let client = client_id(shared, address);
        let (header, body) = shared
            .cgi
            .run(&CgiRequest {
                url: &request.url,
                host: &request.host,
                port: shared.port,
                path: &request.path,
                certificate: cert,
                client: &client,
                address: shared.log_client_ip.then_some(address),
                upload: None,
            })
            .await;
        return send(shared, stream, &header, body.map(Body::Bytes), exchange).await;
    }
    // A lookup is a few system calls on local files (microseconds); a hop to
    // the blocking pool costs more than that (15% of requests/s at one client,
    // `tessera gemini bench`), so it runs inline. Large bodies stream async.
    let capsule = &shared.settings.hosts[host].capsule;
    let resolved = match authorise(
        &shared.chain,
        capsule,
        &request.path,
        peer_cert.as_ref(),
        clock.wall,
    ) {
        Ok(resolved) => resolved,
        Err(denial) => return refuse(shared, stream, address, &denial, exchange).await,
    };
    let response = load(capsule, resolved);
    send(shared, stream, &response.0, response.1, exchange).await
}

/// A Titan upload on the Gemini port (`titan.rs`).
struct Titan<'a> {
    line: &'a [u8],
    /// Body bytes that came with the request line.
    head: &'a [u8],
    address: IpAddr,
    sni: Option<&'a str>,
    /// The client's certificate, for a handler's environment.
    certificate: Option<&'a CertificateInfo>,
    /// The same, as the guard's rules see it.
    cert: Option<&'a PeerCert>,
    wall: time::OffsetDateTime,
}

impl Titan<'_> {
    /// Checks, authorises and stores the upload or hands it to its handler;
    /// answers with a redirect to what it wrote, the handler's answer, or
    /// the status that says why not.
    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
        self,
        shared: &Shared,
        stream: &mut S,
        exchange: &mut Exchange,
    ) -> Result<(), Error> {
        let (header, body) = match self.accept(shared, stream, exchange).await {
            Ok(reply) => reply,
            Err(header) => (header, None),
        };
        send(shared, stream, &header, body.map(Body::Bytes), exchange).await
    }

    async fn accept<S: AsyncRead + Unpin>(
        &self,
        shared: &Shared,
        stream: &mut S,
        exchange: &mut Exchange,
    ) -> Result<(Header, Option<Vec<u8>>), Header> {
        let titan = &shared.settings.titan;
        let upload = titan::parse_upload(self.line).map_err(Header::bad_request)?;
        let request = &upload.request;
        exchange.host.clone_from(&request.host);
        request.path.as_str().clone_into(&mut exchange.path);
        let foreign_sni = self.sni.is_some_and(|sni| {
            tessera_tls::tofu::normalize_host(sni).map_or(true, |sni| sni != request.host)
        });
        let port_is_ours = request.port.is_none_or(|port| port == shared.port);
        if !shared.by_name.contains_key(&request.host) || !port_is_ours || foreign_sni {
            return Err(Header::proxy_refused());
        }
        let target = titan.target(&request.path);
        let to_handler =
            target.is_none() && titan.to_handlers && shared.cgi.takes_uploads(&request.path);
        if target.is_none() && !to_handler {
            return Err(Header::bad_request("Uploads are not accepted at this path"));
        }
        if upload.size == 0 {
            return Err(Header::bad_request("Empty upload"));
        }
        if upload.size > titan.max_size {
            return Err(Header::bad_request(format!(
                "Upload too large: at most {} bytes",
                titan.max_size
            )));
        }
        if self.head.len() as u64 > upload.size {
            return Err(Header::bad_request("More bytes than the size said"));
        }
        // A token, or a certificate the rules covering the path allow (an
        // upload path no rule covers needs the token).
        if !titan.token_matches(upload.token.as_deref()) {
            let covered = matches!(
                shared.chain.check_certs(&request.path, None, self.wall),
                Decision::Deny(_)
            );
            if !covered {
                return Err(Header::new(61, "Not authorised to upload here"));
            }
            if let Decision::Deny(denial) =
                shared
                    .chain
                    .check_certs(&request.path, self.cert, self.wall)
            {
                exchange.denial = Some(denial.reason.name());
                log_denial(shared, self.address, denial.reason.name());
                return Err(Header::denied(&denial));
            }
        }
        let idle = shared.settings.request_timeout;
        let Some(target) = target else {
            return self.hand_over(shared, stream, &upload).await;
        };
        let file = match titan::store(stream, self.head, upload.size, &target, idle).await {
            Ok(file) => file,
            Err(error) => {
                tracing::warn!(file = %target.file.display(), %error, "upload not stored");
                return Err(Header::new(59, "Upload incomplete"));
            }
        };
        tracing::info!(target: "tessera::access", file = %file.display(), bytes = upload.size, "upload stored");
        let port = request
            .port
            .map(|port| format!(":{port}"))
            .unwrap_or_default();
        let redirect = Header::redirect(format!(
            "gemini://{}{port}{}",
            request.url.host_str().unwrap_or(&request.host),
            request.path.as_str()
        ));
        Ok((redirect, None))
    }

    /// Receives the whole upload, then hands it to the CGI script or SCGI
    /// application of its path, whose answer is the reply.
    async fn hand_over<S: AsyncRead + Unpin>(
        &self,
        shared: &Shared,
        stream: &mut S,
        upload: &titan::Upload,
    ) -> Result<(Header, Option<Vec<u8>>), Header> {
        let idle = shared.settings.request_timeout;
        let file = match titan::spool(stream, self.head, upload.size, idle).await {
            Ok(file) => file,
            Err(error) => {
                tracing::warn!(%error, "upload not received");
                return Err(Header::new(59, "Upload incomplete"));
            }
        };
        let spooled = Spooled {
            file,
            size: upload.size,
            mime: upload
                .mime
                .clone()
                .unwrap_or_else(|| "text/gemini".to_owned()),
        };
        let request = &upload.request;
        let client = client_id(shared, self.address);
        Ok(shared
            .cgi
            .run(&CgiRequest {
                url: &request.url,
                host: &request.host,
                port: shared.port,
                path: &request.path,
                certificate: self.certificate,
                client: &client,
                address: shared.log_client_ip.then_some(self.address),
                upload: Some(&spooled),
            })
            .await)
    }
}

/// Answers a guard denial with its status line (`../shared/spec/guard.md` §3) and logs it.
async fn refuse<S: AsyncWrite + Unpin>(
    shared: &Shared,
    stream: &mut S,
    address: IpAddr,
    denial: &Denial,
    exchange: &mut Exchange,
) -> Result<(), Error> {
    exchange.denial = Some(denial.reason.name());
    log_denial(shared, address, denial.reason.name());
    send(shared, stream, &Header::denied(denial), None, exchange).await
}

/// The body of a response: small files in memory, large ones streamed.
#[derive(Debug)]
enum Body {
    Bytes(Vec<u8>),
    File(std::fs::File),
}

/// The header and body of what a path resolved to: small files are read
/// here, larger ones are opened and streamed by [`send`].
fn load(capsule: &Capsule, resolved: Resolved) -> (Header, Option<Body>) {
    match resolved {
        Resolved::File { path, mime, .. } => match open(&path) {
            Ok(body) => (Header::success(mime), Some(body)),
            Err(error) => {
                tracing::warn!(file = %path.display(), %error, "cannot read file");
                (Header::not_found(), None)
            }
        },
        Resolved::Listing { body, .. } => (
            Header::success(capsule.gemtext_mime()),
            Some(Body::Bytes(body.into_bytes())),
        ),
        Resolved::Redirect(target) => (Header::redirect(target), None),
        Resolved::Answer { header, .. } => (header, None),
        Resolved::NotFound => (Header::not_found(), None),
    }
}

fn open(path: &Path) -> std::io::Result<Body> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    if size > INLINE_BODY {
        return Ok(Body::File(file));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // The size just read, not the file's: `read_to_end` on a `File` would
    // ask for its size and position again.
    file.take(size).read_to_end(&mut bytes)?;
    Ok(Body::Bytes(bytes))
}

/// Reads the request line: `Ok(Ok(url bytes))`, `Ok(Err)` for a line that
/// can only be answered with 59, `Err` when the connection failed.
/// Reads the request line: the URL, and the bytes that came behind its
/// CRLF (the start of a Titan upload's body).
async fn read_line<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Result<(Vec<u8>, Vec<u8>), RequestError>, Error> {
    let mut buffer = Vec::with_capacity(MAX_REQUEST_LINE);
    let mut chunk = [0u8; MAX_REQUEST_LINE];
    loop {
        if let Some(end) = find_line_end(&buffer) {
            return Ok(end.map(|len| {
                let rest = buffer.split_off(len + 2);
                buffer.truncate(len);
                (buffer, rest)
            }));
        }
        let want = MAX_REQUEST_LINE - buffer.len();
        let read = stream
            .read(&mut chunk[..want])
            .await
            .map_err(Error::io("read the request"))?;
        if read == 0 {
            return Ok(Err(RequestError::NoCrlf));
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// Answers with `header` and `body`. A reply held in memory is kept in
/// `exchange` for [`connection`] to send with close_notify, in one write; a
/// file is streamed here.
async fn send<S: AsyncWrite + Unpin>(
    shared: &Shared,
    stream: &mut S,
    header: &Header,
    body: Option<Body>,
    exchange: &mut Exchange,
) -> Result<(), Error> {
    exchange.status = Some(header.status);
    let mut bytes = header.to_line().into_bytes();
    let file = match body {
        None => None,
        Some(Body::Bytes(body)) => {
            exchange.bytes = body.len() as u64;
            bytes.extend_from_slice(&body);
            None
        }
        Some(Body::File(file)) => Some(file),
    };
    let Some(file) = file else {
        exchange.reply = bytes;
        return Ok(());
    };
    let work = async {
        stream.write_all(&bytes).await?;
        let mut file = tokio::fs::File::from_std(file);
        exchange.bytes = tokio::io::copy(&mut file, stream).await?;
        stream.flush().await
    };
    tokio::time::timeout(shared.settings.send_timeout, work)
        .await
        .map_err(|_| Error::Timeout("sending the response"))?
        .map_err(Error::io("send the response"))
}

fn client_id(shared: &Shared, address: IpAddr) -> String {
    shared
        .settings
        .client_ids
        .id(address, time::OffsetDateTime::now_utc())
}

/// Logs a denial, at most a few per client per 10 s so floods do not flood the log.
fn log_denial(shared: &Shared, address: IpAddr, reason: &'static str) {
    let now = u64::try_from(shared.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
    if shared.denial_log.check(address, now).is_ok() {
        tracing::warn!(client = %client_id(shared, address), reason, "request denied");
    }
}

fn access_log(
    shared: &Shared,
    address: IpAddr,
    cert: Option<&CertificateInfo>,
    exchange: &Exchange,
    elapsed: Duration,
) {
    let Some(status) = exchange.status else {
        return;
    };
    if let Some(metrics) = &shared.metrics {
        metrics.request(status, exchange.denial, elapsed);
    }
    let client = client_id(shared, address);
    let ip = shared.log_client_ip.then(|| address.to_string());
    tracing::info!(
        target: "tessera::access",
        protocol = "gemini",
        client = %client,
        ip = ip.as_deref(),
        host = %exchange.host,
        path = %exchange.path,
        query_len = exchange.query_len,
        status,
        denial = exchange.denial,
        bytes = exchange.bytes,
        cert = cert.map(|c| c.fingerprint().short()),
        ms = elapsed.as_secs_f64() * 1e3,
        "request"
    );
}
