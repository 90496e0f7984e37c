//! The entry side of tunnels: a loopback listener for local apps, each of
//! whose connections gets its own tunnel to the exit.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;

use super::open_tunnel;
use crate::{Error, FrameAuth};
use tessera_serve::{tune, Admitted, Handler, Listener, Peer, Stage, StageConfig};
use tokio_util::either::Either;

/// Limits and layers of a [`TunnelEntry`].
#[derive(Clone)]
pub struct TunnelEntryOptions {
    /// Deadline for reaching the exit and for its answer (default 10 s).
    pub connect_timeout: Duration,
    /// Local connections relayed at once at most (default 256).
    pub max_connections: usize,
    /// Signs the open request and checks the answer.
    pub auth: Option<Arc<dyn FrameAuth>>,
    /// How long open tunnels may go on after shutdown starts (default 5 s).
    pub shutdown_grace: Duration,
}

impl Default for TunnelEntryOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            max_connections: 256,
            auth: None,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl std::fmt::Debug for TunnelEntryOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelEntryOptions")
            .field("max_connections", &self.max_connections)
            .field("auth", &self.auth.is_some())
            .finish_non_exhaustive()
    }
}

/// Opens tunnels to one service behind an exit.
pub struct TunnelEntry {
    exits: Vec<SocketAddr>,
    server_name: ServerName<'static>,
    tls: TlsConnector,
    service: String,
    options: TunnelEntryOptions,
}

impl std::fmt::Debug for TunnelEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelEntry")
            .field("exits", &self.exits)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl TunnelEntry {
    /// Tunnels to `service` on the exit at `exits` (the addresses of one
    /// exit, tried in order, as a resolved host name gives them), verified as
    /// `server_name` by `tls` (which should carry a client certificate: exits
    /// ask for one).
    pub fn new(
        exits: Vec<SocketAddr>,
        server_name: ServerName<'static>,
        tls: Arc<ClientConfig>,
        service: &str,
        options: TunnelEntryOptions,
    ) -> Self {
        Self {
            exits,
            server_name,
            tls: TlsConnector::from(tls),
            service: service.to_owned(),
            options,
        }
    }

    /// Opens one tunnel: the TLS stream, now a pipe to the service, and
    /// bytes the service already sent.
    ///
    /// # Errors
    /// Connection, TLS, timeout and refusal errors (see [`open_tunnel`]).
    pub async fn open(&self) -> Result<(TlsStream<TcpStream>, BytesMut), Error> {
        let deadline = self.options.connect_timeout;
        let connect = async {
            let tcp = TcpStream::connect(&self.exits[..]).await?;
            tune(&tcp);
            self.tls.connect(self.server_name.clone(), tcp).await
        };
        let tls = tokio::time::timeout(deadline, connect)
            .await
            .map_err(|_| Error::Timeout(deadline))?
            .map_err(|error| Error::Io {
                context: "connecting to the tunnel exit",
                error,
            })?;
        open_tunnel(tls, &self.service, self.options.auth.as_deref(), deadline).await
    }

    /// Relays every connection accepted on `listener` through a tunnel of its
    /// own, until `shutdown` resolves. The listener must be on loopback: the
    /// local side is plain TCP.
    ///
    /// # Errors
    /// [`Error::PlainNotLoopback`] for a listener on another address.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        let listener = Listener::from(listener);
        let mut config = StageConfig::default();
        // Every local app comes from loopback: one client, as many slots as the total.
        config
            .max_connections(self.options.max_connections)
            .max_connections_per_client(self.options.max_connections)
            .shutdown_grace(self.options.shutdown_grace);
        let stage = Stage::new(&listener.local_addr()?, config)?;
        Arc::new(stage)
            .run(listener, Arc::new(self), shutdown)
            .await;
        Ok(())
    }

    async fn relay(&self, mut app: TcpStream, peer: SocketAddr) {
        let (mut link, early) = match self.open().await {
            Ok(opened) => opened,
            Err(error) => {
                // The app sees its connection closed; the reason goes to the log.
                tracing::warn!(%peer, service = %self.service, %error, "tunnel not opened");
                return;
            }
        };
        if !early.is_empty() && app.write_all(&early).await.is_err() {
            return;
        }
        match tokio::io::copy_bidirectional(&mut app, &mut link).await {
            Ok((up, down)) => tracing::debug!(%peer, up, down, "tunnel closed"),
            Err(error) => tracing::debug!(%peer, %error, "tunnel broken"),
        }
    }
}

impl Handler for TunnelEntry {
    async fn serve(self: Arc<Self>, admitted: Admitted) {
        // The local side listens on loopback TCP only.
        if let (Peer::Tcp(peer), Either::Left(Either::Left(app))) = (admitted.peer, admitted.stream)
        {
            self.relay(app, peer).await;
        }
    }
}
