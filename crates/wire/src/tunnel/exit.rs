//! The exit side of tunnels: a listener that opens connections to the
//! services it was configured with, for authenticated entries only.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

use super::{open_limits, TUNNEL_PREFIX};
use crate::auth::live::LiveAuth;
use crate::rules::{peer_cert, FrameRules};
use crate::{AuthFailure, Error, Frame, FrameAuth, FrameCodec, MessageType, Rejection, Transport};
use tessera_serve::{tune, Admitted, Handler, Listener, Peer, Refusal, Stage};

/// Limits and layers of a [`TunnelExit`].
#[derive(Clone)]
pub struct TunnelExitOptions {
    /// TLS handshake deadline (default 10 s).
    pub handshake_timeout: Duration,
    /// Deadline for the open request and for connecting to the service (default 10 s).
    pub open_timeout: Duration,
    /// Tunnels open at once at most (default 1024).
    pub max_connections: usize,
    /// Tunnels per client (IPv4 address, IPv6 /64) at most (default 64).
    pub max_connections_per_client: usize,
    /// Checks the open request and signs the answer.
    pub auth: Option<Arc<dyn FrameAuth>>,
    /// Admission control: ACL and rate limit per connection; certificate
    /// rules on `/tunnel/<service>`.
    pub guard: Option<Arc<tessera_guard::Chain>>,
    /// Trusted relays whose connections start with a PROXY v1/v2 header
    /// naming the client (default none).
    pub proxy_from: Option<tessera_guard::Acl>,
    /// How long open tunnels may go on after shutdown starts (default 5 s).
    pub shutdown_grace: Duration,
    /// Where the exit exports its connection counters (`--metrics-listen`).
    pub metrics: Option<tessera_serve::Metrics>,
    /// Name clients by their address in logs instead of their keyed id
    /// (`--log-client-ip`). Default false.
    pub log_client_ip: bool,
    /// A fleet's shared state at admission: client certificates revoked in
    /// its store (refused; open tunnels that presented one are closed as
    /// soon as it is announced) and connection leases. None by default.
    pub fleet: tessera_serve::FleetAdmission,
    /// Open requests accepted once across a fleet (its shared store), not
    /// only once by this exit.
    #[cfg(feature = "fleet")]
    pub fleet_replay: Option<crate::FleetFrameReplay>,
}

impl Default for TunnelExitOptions {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            open_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_connections_per_client: 64,
            auth: None,
            guard: None,
            proxy_from: None,
            shutdown_grace: Duration::from_secs(5),
            metrics: None,
            log_client_ip: false,
            fleet: tessera_serve::FleetAdmission::default(),
            #[cfg(feature = "fleet")]
            fleet_replay: None,
        }
    }
}

impl std::fmt::Debug for TunnelExitOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelExitOptions")
            .field("max_connections", &self.max_connections)
            .field("auth", &self.auth.is_some())
            .finish_non_exhaustive()
    }
}

/// Counters of a [`TunnelExit`].
#[derive(Debug, Default)]
pub struct TunnelStats {
    /// Tunnels opened to a service.
    pub opened: AtomicU64,
    /// Connections refused by the guard or the caps.
    pub refused: AtomicU64,
    /// Open requests refused by the auth layer.
    pub auth_failures: AtomicU64,
    /// Open requests refused by the guard's certificate rules (or for a URI they cannot read canonically).
    pub not_permitted: AtomicU64,
    /// Open requests for a service not configured (or not a tunnel request).
    pub not_found: AtomicU64,
    /// Services that could not be reached.
    pub unreachable: AtomicU64,
}

/// The exit: serves tunnels to a fixed set of named services.
pub struct TunnelExit {
    listener: Listener,
    stage: Arc<Stage>,
    shared: Arc<Shared>,
}

struct Shared {
    rules: Arc<FrameRules>,
    /// The auth layer new tunnels take (`options.auth` at start).
    auth: Arc<LiveAuth>,
    services: HashMap<String, String>,
    options: TunnelExitOptions,
    stats: Arc<TunnelStats>,
}

impl std::fmt::Debug for TunnelExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelExit")
            .field("listener", &self.listener)
            .field("services", &self.shared.services)
            .finish_non_exhaustive()
    }
}

impl TunnelExit {
    /// An exit on `listener` for `services` (name → `host:port`).
    ///
    /// # Errors
    /// [`Error::PlainNotLoopback`] for plain TCP on a non-loopback address,
    /// [`Error::InvalidServiceName`] for a service name that is empty or has a `/`.
    pub fn new(
        listener: TcpListener,
        transport: Transport,
        services: HashMap<String, String>,
        options: TunnelExitOptions,
    ) -> Result<Self, Error> {
        if let Some(bad) = services
            .keys()
            .find(|name| name.is_empty() || name.contains('/'))
        {
            return Err(Error::InvalidServiceName(bad.clone()));
        }
        let listener = Listener::from(listener);
        let stage = crate::server::StageSettings {
            guard: options.guard.as_ref(),
            proxy_from: options.proxy_from.as_ref(),
            caps: (options.max_connections, options.max_connections_per_client),
            handshake_timeout: options.handshake_timeout,
            shutdown_grace: options.shutdown_grace,
            metrics: options.metrics.as_ref(),
            log_client_ip: options.log_client_ip,
            fleet: &options.fleet,
        }
        .build(&listener, transport)?;
        Ok(Self {
            listener,
            stage,
            shared: Arc::new(Shared {
                rules: Arc::new(FrameRules::new(options.guard.clone())),
                auth: Arc::new(LiveAuth::new(options.auth.clone())),
                services,
                options,
                stats: Arc::default(),
            }),
        })
    }

    /// The bound address.
    ///
    /// # Errors
    /// Only if the socket cannot report it.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        crate::server::tcp_addr(&self.listener)
    }

    /// The counters.
    pub fn stats(&self) -> Arc<TunnelStats> {
        self.shared.stats.clone()
    }

    /// A handle that swaps the TLS material and guard of the running exit.
    pub fn reloader(&self) -> crate::Reloader {
        crate::Reloader {
            stage: self.stage.clone(),
            rules: self.shared.rules.clone(),
            auth: self.shared.auth.clone(),
        }
    }

    /// Serves until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        self.stage.run(self.listener, self.shared, shutdown).await;
    }
}

impl Handler for Shared {
    async fn serve(self: Arc<Self>, admitted: Admitted) {
        // An exit listens on TCP only.
        if let Peer::Tcp(_) = admitted.peer {
            tunnel(&self, admitted).await;
        }
    }

    fn refused(&self, _peer: Peer, _id: u64, refusal: &Refusal) {
        if refusal.is_admission() {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One tunnel: the open request, then bytes both ways until either side ends.
async fn tunnel(shared: &Shared, admitted: Admitted) {
    let options = &shared.options;
    let certificate = admitted.certificate.as_ref().map(peer_cert);
    let client = admitted.client.clone();
    let refused = admitted.refused.clone();
    let mut framed = Framed::new(admitted.stream, FrameCodec::new(open_limits()));
    let auth = shared.auth.current();
    let auth = auth.as_deref();
    let request = match tokio::time::timeout(options.open_timeout, framed.next()).await {
        Ok(Some(Ok(frame))) => frame,
        Ok(Some(Err(error))) => {
            tracing::debug!(%error, "bad open request");
            return;
        }
        Ok(None) | Err(_) => return,
    };
    // Refused at admission (its certificate is revoked) or since: no tunnel.
    let checked = if refused.is_cancelled() {
        Err(Rejection::Auth(AuthFailure::Revoked))
    } else {
        check(shared, auth, &request, certificate.as_ref())
    };
    #[cfg(feature = "fleet")]
    let checked = match (checked, &options.fleet_replay) {
        (Ok(target), Some(replay)) => match replay.check(&request).await {
            Ok(()) => Ok(target),
            Err(failure) => {
                shared.stats.auth_failures.fetch_add(1, Ordering::Relaxed);
                Err(Rejection::Auth(failure))
            }
        },
        (checked, _) => checked,
    };
    let target = match checked {
        Ok(target) => target,
        Err(refusal) => {
            tracing::info!(target: "tessera::access", protocol = "tunnel", client, uri = %request.uri, %refusal, "tunnel refused");
            let _ = answer(&mut framed, options, auth, request.answer(refusal)).await;
            return;
        }
    };
    let dial =
        tokio::time::timeout(options.open_timeout, TcpStream::connect(target.as_str())).await;
    let Ok(Ok(mut service)) = dial else {
        shared.stats.unreachable.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(service = target, "service unreachable");
        let reply = request.answer(Rejection::ServiceUnreachable);
        let _ = answer(&mut framed, options, auth, reply).await;
        return;
    };
    tune(&service);
    if answer(
        &mut framed,
        options,
        auth,
        request.reply(MessageType::RESPOND_URI, Bytes::new()),
    )
    .await
    .is_err()
    {
        return;
    }
    shared.stats.opened.fetch_add(1, Ordering::Relaxed);
    let parts = framed.into_parts();
    let mut link = parts.io;
    // Bytes the entry sent right behind its request belong to the service.
    if !parts.read_buf.is_empty() && service.write_all(&parts.read_buf).await.is_err() {
        return;
    }
    let started = std::time::Instant::now();
    let (up, down, ended) = tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut link, &mut service) => match copied {
            Ok((up, down)) => (up, down, "closed".to_owned()),
            Err(error) => (0, 0, format!("broken: {error}")),
        },
        // Its certificate is revoked now (a CRL reloaded, the fleet's store)
        // or a reload denies its client: the bytes are the service's, so the
        // refusal is the close itself.
        () = refused.cancelled() => (0, 0, "refused after a reload or a revocation".to_owned()),
    };
    tracing::info!(
        target: "tessera::access",
        protocol = "tunnel",
        client,
        uri = %request.uri,
        up,
        down,
        ms = started.elapsed().as_secs_f64() * 1e3,
        ended,
        "tunnel"
    );
}

/// The service an open request may reach, or the refusal to send.
fn check<'a>(
    shared: &'a Shared,
    auth: Option<&dyn FrameAuth>,
    request: &Frame,
    certificate: Option<&tessera_guard::PeerCert>,
) -> Result<&'a String, Rejection> {
    let stats = &shared.stats;
    if let Some(auth) = auth {
        if let Err(failure) = auth.verify(request) {
            stats.auth_failures.fetch_add(1, Ordering::Relaxed);
            return Err(Rejection::Auth(failure));
        }
    }
    // The guard's rules add to the auth layer's check, never replace it.
    shared
        .rules
        .permitted(&request.uri, certificate)
        .inspect_err(|_| {
            stats.not_permitted.fetch_add(1, Ordering::Relaxed);
        })?;
    let service = request
        .uri
        .strip_prefix(TUNNEL_PREFIX)
        .filter(|_| request.kind == MessageType::REQUEST_URI)
        .and_then(|name| shared.services.get(name));
    service.ok_or_else(|| {
        stats.not_found.fetch_add(1, Ordering::Relaxed);
        Rejection::NoSuchService
    })
}

async fn answer<T>(
    framed: &mut Framed<T, FrameCodec>,
    options: &TunnelExitOptions,
    auth: Option<&dyn FrameAuth>,
    mut reply: Frame,
) -> Result<(), Error>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Some(auth) = auth {
        auth.sign(&mut reply);
    }
    tokio::time::timeout(options.open_timeout, framed.send(reply))
        .await
        .map_err(|_| Error::Timeout(options.open_timeout))?
}
