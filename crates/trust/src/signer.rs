//! The signer sidecar (`../shared/spec/trust.md` §9, §12.3): frames are a
//! 4-byte big-endian length and a JSON object; requests `public_key`, `mint`,
//! `sign_job` (optional `"format": 2` for the domain-separated job message);
//! replies `{"ok":true,…}` or `{"ok":false,"error":KIND}`. Bounded
//! frames, per-frame, reply and idle timeouts; connections come through
//! tessera-serve's stage (caps, first-bytes deadline, graceful stop), and one
//! bad client never stops the server.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::{json, Map, Value};
use tessera_serve::{Admitted, Handler, Listener, Metrics, Stage, StageConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::job::{sign_job_as, JobFormat};
use crate::mint::{mint, MintRequest};
use crate::signer_metrics::SignerMetrics;
use crate::strict_json::has_no_duplicate_keys;
use crate::{Error, FrameFault, RevocationList, SecretKey, WhenUnknown};

/// trust-core's frame cap.
pub const MAX_FRAME: usize = 1_048_576;
/// The signer's own cap (spec §12.3).
pub const SIGNER_MAX_FRAME: usize = 64 * 1024;

/// Encodes a frame (compact JSON, keys in the value's own order).
///
/// # Errors
/// [`FrameFault::TooLarge`] when the body exceeds [`MAX_FRAME`].
pub fn encode_frame(body: &Value) -> Result<Vec<u8>, Error> {
    // A `Value` always serialises: its map keys are strings.
    let text = body.to_string();
    if text.len() > MAX_FRAME {
        return Err(Error::Frame(FrameFault::TooLarge));
    }
    let mut frame = (text.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(text.as_bytes());
    Ok(frame)
}

/// What reading one frame gave.
#[derive(Debug)]
pub enum Frame {
    /// A JSON object.
    Object(Map<String, Value>),
    /// Framing intact but the body is not a strict UTF-8 JSON object
    /// (duplicate keys are refused).
    Bad,
    /// The length prefix exceeds the cap; the body is left unread, so the
    /// stream is out of sync and must be closed.
    TooLarge(usize),
}

/// Reads one frame of at most `cap` bytes.
///
/// # Errors
/// [`FrameFault::Truncated`] for EOF mid-frame, [`Error::Io`].
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    cap: usize,
) -> Result<Option<Frame>, Error> {
    let mut length = [0u8; 4];
    match reader.read_exact(&mut length).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(Error::Io(e)),
    }
    let length = u32::from_be_bytes(length) as usize;
    if length > cap {
        return Ok(Some(Frame::TooLarge(length)));
    }
    let mut body = vec![0u8; length];
    reader
        .read_exact(&mut body)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => Error::Frame(FrameFault::Truncated),
            _ => Error::Io(e),
        })?;
    Ok(Some(match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) if has_no_duplicate_keys(&body) => Frame::Object(map),
        _ => Frame::Bad,
    }))
}

/// The signer's keys: the issuer (Biscuit root) and, optionally, a separate
/// job-signing key (weakness W7; without one, jobs are signed with the issuer
/// key as trust-core does).
#[derive(Clone, Debug)]
pub struct SignerKeys {
    /// Mints tokens.
    pub issuer: SecretKey,
    /// Signs jobs when set.
    pub job: Option<SecretKey>,
}

impl From<SecretKey> for SignerKeys {
    fn from(issuer: SecretKey) -> Self {
        Self { issuer, job: None }
    }
}

/// The signer's keys, replaceable while it runs (a reload): each connection
/// signs with the keys current when it was accepted.
#[derive(Clone)]
pub struct LiveKeys(Arc<ArcSwap<SignerKeys>>);

impl LiveKeys {
    /// Connections accepted from now on use `keys`.
    pub fn replace(&self, keys: SignerKeys) {
        self.0.store(Arc::new(keys));
    }
}

impl std::fmt::Debug for LiveKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveKeys")
    }
}

impl From<SignerKeys> for LiveKeys {
    fn from(keys: SignerKeys) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(keys)))
    }
}

impl From<SecretKey> for LiveKeys {
    fn from(issuer: SecretKey) -> Self {
        SignerKeys::from(issuer).into()
    }
}

/// Answers one request object.
pub fn handle_request(keys: &SignerKeys, request: &Map<String, Value>) -> Value {
    let issuer = &keys.issuer;
    let bad = |what: &str| json!({"ok": false, "error": "bad_request", "detail": what});
    match request.get("op").and_then(Value::as_str) {
        Some("public_key") => match &keys.job {
            None => json!({"ok": true, "public_key": issuer.public().to_hex()}),
            Some(job) => {
                json!({"ok": true, "public_key": issuer.public().to_hex(), "job_public_key": job.public().to_hex()})
            }
        },
        Some("mint") => {
            let (Some(worker_public), Some(holder_id), Some(expires_at)) = (
                request.get("worker_public").and_then(Value::as_str),
                request.get("holder_id").and_then(Value::as_str),
                request.get("expires_at").and_then(Value::as_f64),
            ) else {
                return bad("mint needs worker_public, holder_id and expires_at");
            };
            let mut facts = Vec::new();
            match request.get("facts") {
                None | Some(Value::Null) => {}
                Some(Value::Object(map)) => {
                    for (name, values) in map {
                        let Some(values) = values.as_array() else {
                            return bad("facts values must be arrays of strings");
                        };
                        let Some(values) = values
                            .iter()
                            .map(|v| v.as_str().map(str::to_owned))
                            .collect::<Option<Vec<_>>>()
                        else {
                            return bad("facts values must be arrays of strings");
                        };
                        facts.push((name.clone(), values));
                    }
                }
                Some(_) => return bad("facts must be an object"),
            }
            let revocation_id = match request.get("revocation_id") {
                None | Some(Value::Null) => crate::random_revocation_id(),
                Some(Value::String(id)) => id.clone(),
                Some(_) => return bad("revocation_id must be a string"),
            };
            let mint_request = MintRequest {
                worker_public: worker_public.to_owned(),
                holder_id: holder_id.to_owned(),
                facts,
                revocation_id,
                expires_at,
            };
            match mint(issuer, &mint_request) {
                Ok(token) => json!({"ok": true, "token": token}),
                Err(error) => bad(&error.detail()),
            }
        }
        Some("sign_job") => {
            let (Some(Value::Object(job)), Some(worker_id)) = (
                request.get("job"),
                request.get("worker_id").and_then(Value::as_str),
            ) else {
                return bad("sign_job needs job (object) and worker_id");
            };
            let format = match request.get("format") {
                None | Some(Value::Null) => JobFormat::V1,
                Some(format) if format.as_u64() == Some(1) => JobFormat::V1,
                Some(format) if format.as_u64() == Some(2) => JobFormat::V2,
                Some(_) => return bad("format must be 1 or 2"),
            };
            match sign_job_as(format, keys.job.as_ref().unwrap_or(issuer), job, worker_id) {
                Ok(signature) => json!({"ok": true, "signature": signature}),
                Err(error) => bad(&error.detail()),
            }
        }
        _ => json!({"ok": false, "error": "unknown_op"}),
    }
}

/// Limits of the signer.
#[derive(Clone, Copy, Debug)]
pub struct SignerLimits {
    /// Largest frame. Default 64 KiB.
    pub max_frame: usize,
    /// Time to receive a frame once it started, and to send a reply. Default 10 s.
    pub frame_timeout: Duration,
    /// Time a connection may sit idle between frames. Default 60 s.
    pub idle_timeout: Duration,
    /// Connections at once. Default 256.
    pub max_connections: usize,
    /// Connections at once from one client (a local user on a Unix socket,
    /// an address on TCP). Default 16.
    pub max_connections_per_client: usize,
}

impl Default for SignerLimits {
    fn default() -> Self {
        Self {
            max_frame: SIGNER_MAX_FRAME,
            frame_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 256,
            max_connections_per_client: 16,
        }
    }
}

/// How a signer serves: its limits, where its counters go, and a fleet's
/// revocations. [`Default`]: the default limits, no metrics, no fleet.
#[derive(Clone, Debug, Default)]
pub struct SignerOptions {
    /// Frame size, deadlines and connection caps.
    pub limits: SignerLimits,
    /// Where the stage's counters and requests by operation and result are
    /// registered (`--metrics-listen`).
    pub metrics: Option<Metrics>,
    /// A fleet's revocations: `mint` refuses a revocation id revoked there
    /// (`"error": "revoked"`), since verifiers would refuse the token at once.
    pub revocations: Option<Arc<dyn RevocationList>>,
    /// What `mint` does with a revocation id while `revocations` cannot say:
    /// refuse (`"error": "unavailable"`, default) or mint.
    pub when_unknown: WhenUnknown,
}

/// Binds the signer's Unix socket at `path` and makes it 0600 (the socket's
/// permissions are its access control). A socket left behind by a signer that
/// is gone is replaced; a live one, or any other file, is not; the file is
/// removed when the signer stops. The mode is set just after binding, so for
/// no window at all put the socket in a directory only the service user can
/// enter.
///
/// # Errors
/// [`Error::Io`], naming the path, when the socket cannot be created or the
/// path is in use.
pub fn bind_unix(path: &std::path::Path) -> Result<Listener, Error> {
    use std::os::unix::fs::PermissionsExt;
    let failed = |e: std::io::Error| Error::Io(with_path(path, &e));
    let listener = Listener::bind_unix(path).map_err(failed)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
    Ok(listener)
}

/// Serves the signer through the shared connection stage until `shutdown`
/// resolves: plain on loopback TCP or a Unix socket only, per-client caps (a
/// Unix peer counts per user id), a deadline for the first bytes, then a
/// graceful stop that closes idle connections at once, answers requests in
/// progress and removes the socket file. See [`SignerOptions`].
///
/// # Errors
/// [`Error::Stage`] for a TCP listener that is not on loopback; never for
/// per-connection problems.
pub async fn serve_signer(
    listener: impl Into<Listener>,
    keys: impl Into<LiveKeys>,
    options: SignerOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), Error> {
    let SignerOptions {
        limits,
        metrics,
        revocations,
        when_unknown,
    } = options;
    let listener = listener.into();
    let local = listener.local_addr()?;
    let mut config = StageConfig::default();
    config
        .max_connections(limits.max_connections)
        .max_connections_per_client(limits.max_connections_per_client)
        .first_bytes_timeout(limits.frame_timeout)
        .shutdown_grace(limits.frame_timeout);
    if let Some(metrics) = &metrics {
        config.metrics(metrics.clone());
    }
    let stage = Arc::new(Stage::new(&local, config)?);
    let handler = Arc::new(SignerHandler {
        keys: keys.into(),
        limits,
        metrics: metrics.as_ref().map(SignerMetrics::register),
        revoked: revocations.map(|list| RevokedIds { list, when_unknown }),
    });
    stage.run(listener, handler, shutdown).await;
    Ok(())
}

/// The signer's side of an admitted connection.
struct SignerHandler {
    keys: LiveKeys,
    limits: SignerLimits,
    metrics: Option<SignerMetrics>,
    revoked: Option<RevokedIds>,
}

/// A fleet's revoked ids, as `mint` consults them.
struct RevokedIds {
    list: Arc<dyn RevocationList>,
    when_unknown: WhenUnknown,
}

impl RevokedIds {
    /// The refusal of a `mint` request whose revocation id is revoked (or
    /// cannot be checked now, under a refusing policy); `None` for others.
    fn refusal(&self, request: &Map<String, Value>) -> Option<Value> {
        if request.get("op").and_then(Value::as_str) != Some("mint") {
            return None;
        }
        let id = request.get("revocation_id").and_then(Value::as_str)?;
        match self.list.check(id) {
            Some(false) => None,
            Some(true) => Some(
                json!({"ok": false, "error": "revoked", "detail": format!("revocation id {id:?} is revoked in the fleet")}),
            ),
            None if self.when_unknown == WhenUnknown::Accept => None,
            None => Some(
                json!({"ok": false, "error": "unavailable", "detail": "the fleet's revocations cannot be checked now"}),
            ),
        }
    }
}

impl Handler for SignerHandler {
    async fn serve(self: Arc<Self>, connection: Admitted) {
        let stopping = connection.stopping.clone();
        let keys = self.keys.0.load_full();
        let exchange = Exchange {
            keys: &keys,
            limits: self.limits,
            stopping: &stopping,
            metrics: self.metrics.as_ref(),
            revoked: self.revoked.as_ref(),
        };
        if let Err(error) = exchange.run(connection.stream).await {
            tracing::debug!(%error, "signer connection ended");
        }
    }
}

/// One connection: any number of request/reply exchanges.
///
/// # Errors
/// [`Error::Io`] when a reply cannot be sent.
pub async fn signer_connection<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    keys: &SignerKeys,
    limits: SignerLimits,
) -> Result<(), Error> {
    let stopping = CancellationToken::new();
    let exchange = Exchange {
        keys,
        limits,
        stopping: &stopping,
        metrics: None,
        revoked: None,
    };
    exchange.run(stream).await
}

/// What one connection's exchanges need.
struct Exchange<'a> {
    keys: &'a SignerKeys,
    limits: SignerLimits,
    /// Closes the connection between requests once cancelled.
    stopping: &'a CancellationToken,
    metrics: Option<&'a SignerMetrics>,
    revoked: Option<&'a RevokedIds>,
}

impl Exchange<'_> {
    /// [`signer_connection`]: request/reply exchanges until the peer closes,
    /// idles out or the server stops.
    async fn run<S: AsyncRead + AsyncWrite + Unpin>(&self, mut stream: S) -> Result<(), Error> {
        let Self {
            keys,
            limits,
            stopping,
            metrics,
            revoked,
        } = *self;
        loop {
            // The idle timeout covers the wait for a frame to start; the frame timeout its body.
            let mut first = [0u8; 1];
            // `biased` towards the read: at a stop, a request whose bytes have
            // arrived is still answered; only a connection with nothing pending closes.
            let started = tokio::select! {
                biased;
                started = tokio::time::timeout(limits.idle_timeout, stream.read(&mut first)) => started,
                () = stopping.cancelled() => return Ok(()),
            };
            match started {
                Ok(Ok(1)) => {}
                _ => return Ok(()),
            }
            let mut rest = std::io::Cursor::new(first).chain(&mut stream);
            let Ok(Ok(Some(frame))) = tokio::time::timeout(
                limits.frame_timeout,
                read_frame(&mut rest, limits.max_frame),
            )
            .await
            else {
                return Ok(());
            };
            let (request, reply) = match &frame {
                Frame::Object(request) => {
                    let refusal = revoked.and_then(|revoked| revoked.refusal(request));
                    let reply = refusal.unwrap_or_else(|| handle_request(keys, request));
                    (Some(request), reply)
                }
                Frame::Bad => (None, json!({"ok": false, "error": "bad_frame"})),
                Frame::TooLarge(_) => (None, json!({"ok": false, "error": "frame_too_large"})),
            };
            if let Some(metrics) = metrics {
                metrics.reply(request, &reply);
            }
            if let Frame::TooLarge(_) = frame {
                let reply = encode_frame(&reply)?;
                let _ = tokio::time::timeout(limits.frame_timeout, stream.write_all(&reply)).await;
                return Ok(());
            }
            // A client that stops reading must not hold its connection slot forever.
            match tokio::time::timeout(
                limits.frame_timeout,
                stream.write_all(&encode_frame(&reply)?),
            )
            .await
            {
                Ok(written) => written?,
                Err(_) => return Ok(()),
            }
        }
    }
}

/// A stream the signer client can speak over.
trait Connection: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Connection for T {}

/// A client for the signer, over TCP or a Unix socket.
pub struct SignerClient {
    stream: Box<dyn Connection>,
}

impl std::fmt::Debug for SignerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignerClient").finish_non_exhaustive()
    }
}

impl SignerClient {
    /// A client over a stream already connected to a signer.
    pub fn from_stream(stream: impl AsyncRead + AsyncWrite + Unpin + Send + 'static) -> Self {
        Self {
            stream: Box::new(stream),
        }
    }

    /// Connects to `address` over TCP.
    ///
    /// # Errors
    /// [`Error::Io`] when the connection fails.
    pub async fn connect(address: &str) -> Result<Self, Error> {
        let stream = TcpStream::connect(address).await?;
        Ok(Self {
            stream: Box::new(stream),
        })
    }

    /// Connects to the Unix socket at `path`.
    ///
    /// # Errors
    /// [`Error::Io`], naming the path, when the connection fails.
    pub async fn connect_unix(path: &std::path::Path) -> Result<Self, Error> {
        let stream = tokio::net::UnixStream::connect(path)
            .await
            .map_err(|e| with_path(path, &e))?;
        Ok(Self {
            stream: Box::new(stream),
        })
    }

    /// Sends one request and reads the reply.
    ///
    /// # Errors
    /// [`Error::Io`] for transport problems, [`Error::Frame`] for an
    /// unusable reply.
    pub async fn call(&mut self, request: &Value) -> Result<Map<String, Value>, Error> {
        self.stream.write_all(&encode_frame(request)?).await?;
        // The stream may buffer (TLS does): the request must leave now.
        self.stream.flush().await?;
        match read_frame(&mut self.stream, MAX_FRAME).await? {
            Some(Frame::Object(reply)) => Ok(reply),
            Some(Frame::Bad) => Err(Error::Frame(FrameFault::NotAnObject)),
            Some(Frame::TooLarge(_)) => Err(Error::Frame(FrameFault::TooLarge)),
            None => Err(Error::Frame(FrameFault::Truncated)),
        }
    }
}

/// `error`, its message prefixed with `path` (the kind kept).
fn with_path(path: &std::path::Path, error: &std::io::Error) -> std::io::Error {
    std::io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}
