//! The client: one connection, many requests in flight matched by request
//! id, each with its own deadline; subscriptions are streams of NOTIFY_URI
//! frames. A reader task routes what arrives; a writer task signs and sends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::outbox::{Outbox, OutputBudget, Queued};
use crate::{Error, Frame, FrameAuth, FrameCodec, Limits, MessageType, FLAG_ONE_WAY};

/// Client settings.
#[derive(Clone)]
pub struct ClientOptions {
    /// Frame size limits.
    pub limits: Limits,
    /// Deadline for connecting and the TLS handshake (default 10 s).
    pub connect_timeout: Duration,
    /// Default deadline of a request (default 10 s).
    pub request_timeout: Duration,
    /// Notifications buffered per subscription; more are dropped (default 256).
    pub subscription_buffer: usize,
    /// Bytes of notifications buffered per subscription; more are dropped
    /// (default 4 MiB), so an application that stops reading one costs at
    /// most this much memory.
    pub subscription_bytes: usize,
    /// Auth layer: signs what the client sends, checks what it receives.
    pub auth: Option<Arc<dyn FrameAuth>>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("limits", &self.limits)
            .field("request_timeout", &self.request_timeout)
            .field("auth", &self.auth.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            subscription_buffer: 256,
            subscription_bytes: 4 * 1024 * 1024,
            auth: None,
        }
    }
}

/// Requests waiting for their reply, by id; `None` once the connection is
/// gone, so a request made after that fails at once.
type Pending = Arc<Mutex<Option<HashMap<u32, oneshot::Sender<Frame>>>>>;
type Writer = FramedWrite<Box<dyn AsyncWrite + Send + Unpin>, FrameCodec>;
type Subscribers = Arc<Mutex<HashMap<String, Outbox>>>;

/// A connection to a tessera-wire server.
pub struct Client {
    /// The write half: requests are written by the task that makes them
    /// (no writer task to wake per request), signed under the lock so the
    /// replay counters reach the wire in order.
    writer: tokio::sync::Mutex<Writer>,
    auth: Option<Arc<dyn FrameAuth>>,
    pending: Pending,
    subscribers: Subscribers,
    next_id: AtomicU32,
    request_timeout: Duration,
    subscription_buffer: usize,
    subscription_bytes: usize,
    reader: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field(
                "in_flight",
                &lock(&self.pending).as_ref().map_or(0, HashMap::len),
            )
            .field("auth", &self.auth.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Client {
    /// Connects over TLS, verifying the server as `config` says.
    ///
    /// # Errors
    /// Connection, handshake or timeout errors.
    pub async fn connect_tls(
        addr: SocketAddr,
        server_name: ServerName<'static>,
        config: Arc<ClientConfig>,
        options: ClientOptions,
    ) -> Result<Self, Error> {
        let deadline = options.connect_timeout;
        let work = async {
            let tcp = TcpStream::connect(addr).await?;
            tessera_serve::tune(&tcp);
            TlsConnector::from(config).connect(server_name, tcp).await
        };
        let tls = tokio::time::timeout(deadline, work)
            .await
            .map_err(|_| Error::Timeout(deadline))?
            .map_err(|error| Error::Io {
                context: "connect over TLS",
                error,
            })?;
        Ok(Self::over(tls, &options))
    }

    /// Connects with plain TCP, which only a loopback address allows.
    ///
    /// # Errors
    /// [`Error::PlainNotLoopback`], or connection errors.
    pub async fn connect_plain(addr: SocketAddr, options: ClientOptions) -> Result<Self, Error> {
        if !addr.ip().is_loopback() {
            return Err(Error::PlainNotLoopback(addr));
        }
        let deadline = options.connect_timeout;
        let tcp = tokio::time::timeout(deadline, TcpStream::connect(addr))
            .await
            .map_err(|_| Error::Timeout(deadline))?
            .map_err(|error| Error::Io {
                context: "connect",
                error,
            })?;
        tessera_serve::tune(&tcp);
        Ok(Self::over(tcp, &options))
    }

    /// A client over an established stream.
    pub fn over<T: AsyncRead + AsyncWrite + Send + 'static>(
        stream: T,
        options: &ClientOptions,
    ) -> Self {
        let (read, write) = tokio::io::split(stream);
        let write: Box<dyn AsyncWrite + Send + Unpin> = Box::new(write);
        let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
        let subscribers: Subscribers = Arc::default();
        let reader = tokio::spawn(read_frames(
            FramedRead::new(read, FrameCodec::new(options.limits)),
            pending.clone(),
            subscribers.clone(),
            options.auth.clone(),
        ));
        Self {
            writer: tokio::sync::Mutex::new(FramedWrite::new(
                write,
                FrameCodec::new(options.limits),
            )),
            auth: options.auth.clone(),
            pending,
            subscribers,
            next_id: AtomicU32::new(1),
            request_timeout: options.request_timeout,
            subscription_buffer: options.subscription_buffer.max(1),
            subscription_bytes: options.subscription_bytes,
            reader,
        }
    }

    /// Sends a request and waits for its reply within the default deadline.
    ///
    /// # Errors
    /// [`Error::Timeout`], or [`Error::Closed`] when the connection ends first.
    pub async fn request(
        &self,
        kind: MessageType,
        uri: &str,
        body: impl Into<Bytes>,
    ) -> Result<Frame, Error> {
        self.request_within(kind, uri, body, self.request_timeout)
            .await
    }

    /// As [`Client::request`] with its own deadline.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn request_within(
        &self,
        kind: MessageType,
        uri: &str,
        body: impl Into<Bytes>,
        deadline: Duration,
    ) -> Result<Frame, Error> {
        let id = self.fresh_id();
        let (reply, answer) = oneshot::channel();
        match lock(&self.pending).as_mut() {
            Some(waiting) => waiting.insert(id, reply),
            None => return Err(Error::Closed),
        };
        let sent = self.send(Frame::new(kind, id, uri, body), deadline).await;
        let result = match sent {
            Err(error) => Err(error),
            Ok(()) => match tokio::time::timeout(deadline, answer).await {
                Ok(Ok(frame)) => Ok(frame),
                Ok(Err(_)) => Err(Error::Closed),
                Err(_) => Err(Error::Timeout(deadline)),
            },
        };
        if let Some(waiting) = lock(&self.pending).as_mut() {
            waiting.remove(&id);
        }
        result
    }

    /// Sends a frame that expects no reply.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub async fn send_one_way(
        &self,
        kind: MessageType,
        uri: &str,
        body: impl Into<Bytes>,
    ) -> Result<(), Error> {
        let mut frame = Frame::new(kind, 0, uri, body);
        frame.flags = FLAG_ONE_WAY;
        self.send(frame, self.request_timeout).await
    }

    /// Signs and writes one frame within `deadline`.
    /// Waiting for the lock counts against the deadline too: a write stuck
    /// behind a peer that stopped reading must not hold every request forever.
    async fn send(&self, mut frame: Frame, deadline: Duration) -> Result<(), Error> {
        let write = async {
            let mut writer = self.writer.lock().await;
            if let Some(auth) = &self.auth {
                auth.sign(&mut frame);
            }
            writer.send(frame).await
        };
        match tokio::time::timeout(deadline, write).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout(deadline)),
        }
    }

    /// Subscribes to `uri`; the stream yields its NOTIFY_URI frames.
    ///
    /// # Errors
    /// As [`Client::request`], or [`Error::Auth`]-style refusals as the
    /// server's reply type other than CONFIRM_SUBSCRIBE.
    pub async fn subscribe(&self, uri: &str) -> Result<Subscription, Error> {
        // Each subscription has its own budget: one the application does not
        // read loses its notifications without holding back the others.
        let budget = OutputBudget::new(self.subscription_bytes);
        let (sender, receiver) =
            Outbox::new(self.subscription_buffer, self.subscription_bytes, &budget);
        lock(&self.subscribers).insert(uri.to_owned(), sender);
        let reply = self
            .request(MessageType::SUBSCRIBE_URI, uri, Bytes::new())
            .await;
        match reply {
            Ok(frame) if frame.kind == MessageType::CONFIRM_SUBSCRIBE => {
                Ok(Subscription { receiver })
            }
            Ok(frame) => {
                lock(&self.subscribers).remove(uri);
                Err(Error::Refused {
                    kind: frame.kind,
                    body: String::from_utf8_lossy(&frame.body).into_owned(),
                })
            }
            Err(error) => {
                lock(&self.subscribers).remove(uri);
                Err(error)
            }
        }
    }

    /// Publishes `body` to the subscribers of `uri`.
    ///
    /// # Errors
    /// As [`Client::request`], or [`Error::Refused`] when the reply is not OK.
    pub async fn publish(&self, uri: &str, body: impl Into<Bytes>) -> Result<(), Error> {
        let reply = self.request(MessageType::PUBLISH_URI, uri, body).await?;
        if reply.kind == MessageType::OK {
            return Ok(());
        }
        Err(Error::Refused {
            kind: reply.kind,
            body: String::from_utf8_lossy(&reply.body).into_owned(),
        })
    }

    /// Passes the server's proof-of-work admission: asks for this
    /// connection's challenge, solves it on the blocking pool (every core),
    /// and sends the solution. Call it first on a server that requires it.
    ///
    /// # Errors
    /// As [`Client::request`]; [`Error::Refused`] when the server refuses the
    /// solution or sends no valid challenge.
    pub async fn admit_with_work(&self) -> Result<(), Error> {
        let refused = |frame: &Frame| Error::Refused {
            kind: frame.kind,
            body: String::from_utf8_lossy(&frame.body).into_owned(),
        };
        let reply = self
            .request(
                MessageType::REQUEST_URI,
                crate::POW_CHALLENGE_URI,
                Bytes::new(),
            )
            .await?;
        let text = std::str::from_utf8(&reply.body).unwrap_or_default();
        let parsed = text.split_once(' ').and_then(|(challenge, context)| {
            Some((
                tessera_pow::Challenge::parse(challenge).ok()?,
                context.to_owned(),
            ))
        });
        let (Some((challenge, context)), MessageType::RESPOND_URI) = (parsed, reply.kind) else {
            return Err(refused(&reply));
        };
        let nonce = tokio::task::spawn_blocking(move || {
            challenge.solve(&context, &tessera_pow::SearchOptions::default())
        })
        .await
        .map_err(|_| Error::Closed)??;
        let verdict = self
            .request(MessageType::CREATE_URI, crate::POW_SOLUTION_URI, nonce)
            .await?;
        if verdict.kind == MessageType::OK {
            Ok(())
        } else {
            Err(refused(&verdict))
        }
    }

    fn fresh_id(&self) -> u32 {
        loop {
            // 0 is for unsolicited frames.
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 {
                return id;
            }
        }
    }
}

/// NOTIFY_URI frames of one subscription.
#[derive(Debug)]
pub struct Subscription {
    receiver: mpsc::Receiver<Queued>,
}

impl Subscription {
    /// The next notification; `None` once the connection is gone.
    pub async fn next(&mut self) -> Option<Frame> {
        self.receiver
            .recv()
            .await
            .map(|queued| queued.into_parts().0)
    }
}

impl futures_util::Stream for Subscription {
    type Item = Frame;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        self.receiver
            .poll_recv(cx)
            .map(|queued| queued.map(|queued| queued.into_parts().0))
    }
}

async fn read_frames<R: AsyncRead + Send + Unpin>(
    mut frames: FramedRead<R, FrameCodec>,
    pending: Pending,
    subscribers: Subscribers,
    auth: Option<Arc<dyn FrameAuth>>,
) {
    while let Some(Ok(frame)) = frames.next().await {
        if let Some(auth) = &auth {
            // A server refusing our frame cannot sign the refusal with a key we
            // would reject; anything else must verify.
            if frame.kind != MessageType::AUTH_ERROR {
                if let Err(failure) = auth.verify(&frame) {
                    tracing::warn!(reason = failure.name(), kind = %frame.kind, "dropping a frame that failed authentication");
                    continue;
                }
            }
        }
        if frame.kind == MessageType::NOTIFY_URI && frame.request_id == 0 {
            let sender = lock(&subscribers).get(&frame.uri).cloned();
            if let Some(sender) = sender {
                // A full subscription drops the notification rather than stall every request.
                let _ = sender.try_send(frame);
            }
            continue;
        }
        let waiter = lock(&pending)
            .as_mut()
            .and_then(|waiting| waiting.remove(&frame.request_id));
        if let Some(waiter) = waiter {
            let _ = waiter.send(frame);
        }
    }
    // The connection is gone: waiting requests and subscriptions end.
    *lock(&pending) = None;
    lock(&subscribers).clear();
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
