//! The connection stage every tessera-wire listener shares (the frame server
//! and the tunnel exit): before any TLS byte, the guard's ACL and rate limit
//! and the per-client cap; then the TLS handshake under a deadline, or plain
//! TCP, which only a loopback listener allows. Per frame, the guard's
//! client-certificate rules decide by `"/" + URI`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_guard::{Chain, ConnectionLimits, ConnectionPermit, PeerCert};
use tessera_tls::CertificateInfo;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;

use crate::{Error, Transport};

/// An admitted connection's stream: plain on loopback, else TLS.
pub(crate) type Stream = Either<TcpStream, TlsStream<TcpStream>>;

/// A connection past the entrance. Its slot under the connection caps is
/// held for as long as this lives.
pub(crate) struct Admitted {
    pub(crate) stream: Stream,
    /// The client certificate, when TLS asked for one.
    pub(crate) certificate: Option<CertificateInfo>,
    _slot: ConnectionPermit,
}

/// Why a connection did not get in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The guard or a connection cap said no (counted as refused).
    Refused,
    /// The TLS handshake failed or timed out.
    Handshake,
}

pub(crate) struct Entrance {
    acceptor: Option<TlsAcceptor>,
    per_client: Arc<ConnectionLimits>,
    guard: Option<Arc<Chain>>,
    origin: Instant,
    handshake_timeout: Duration,
}

/// The limits of an [`Entrance`].
pub(crate) struct EntranceOptions {
    pub(crate) guard: Option<Arc<Chain>>,
    pub(crate) max_connections: usize,
    pub(crate) max_connections_per_client: usize,
    pub(crate) handshake_timeout: Duration,
}

impl Entrance {
    /// # Errors
    /// [`Error::PlainNotLoopback`] for plain TCP on a non-loopback address.
    pub(crate) fn new(
        local: SocketAddr,
        transport: Transport,
        options: EntranceOptions,
    ) -> Result<Self, Error> {
        let acceptor = match transport {
            Transport::Tls(config) => Some(TlsAcceptor::from(config)),
            Transport::PlainLoopback if local.ip().is_loopback() => None,
            Transport::PlainLoopback => return Err(Error::PlainNotLoopback(local)),
        };
        Ok(Self {
            acceptor,
            per_client: ConnectionLimits::new(
                options.max_connections.max(1),
                options.max_connections_per_client,
                64,
            ),
            guard: options.guard,
            origin: Instant::now(),
            handshake_timeout: options.handshake_timeout,
        })
    }

    /// Lets `tcp` in, or says why not.
    pub(crate) async fn admit(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
    ) -> Result<Admitted, Refusal> {
        let address = tessera_guard::normalize(peer.ip());
        if let Some(guard) = &self.guard {
            let request = tessera_guard::Request {
                address: Some(address),
                path: None,
                cert: None,
            };
            let clock = tessera_guard::Clock {
                monotonic_ns: u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX),
                wall: time::OffsetDateTime::now_utc(),
            };
            if let tessera_guard::Decision::Deny(denial) =
                tessera_guard::Guard::check(&**guard, &request, clock)
            {
                tracing::debug!(reason = denial.reason.name(), "connection refused");
                return Err(Refusal::Refused);
            }
        }
        let Ok(slot) = self.per_client.acquire(address) else {
            tracing::debug!("connection refused: too many from this client");
            return Err(Refusal::Refused);
        };
        let _ = tcp.set_nodelay(true);
        let Some(acceptor) = &self.acceptor else {
            return Ok(Admitted {
                stream: Either::Left(tcp),
                certificate: None,
                _slot: slot,
            });
        };
        match tokio::time::timeout(self.handshake_timeout, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => {
                let certificate = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|der| CertificateInfo::from_rustls(der).ok());
                Ok(Admitted {
                    stream: Either::Right(tls),
                    certificate,
                    _slot: slot,
                })
            }
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "TLS handshake failed");
                Err(Refusal::Handshake)
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                Err(Refusal::Handshake)
            }
        }
    }

    /// The guard's certificate rules for a frame on `uri`.
    pub(crate) fn permitted(
        &self,
        uri: &str,
        certificate: Option<&PeerCert>,
    ) -> Result<(), &'static str> {
        let Some(guard) = &self.guard else {
            return Ok(());
        };
        let path = tessera_guard::normalize_path(&format!("/{uri}"));
        match guard.check_certs(&path, certificate, time::OffsetDateTime::now_utc()) {
            tessera_guard::Decision::Allow => Ok(()),
            tessera_guard::Decision::Deny(denial) => Err(denial.reason.name()),
        }
    }
}

/// The certificate facts the guard's rules look at.
pub(crate) fn peer_cert(certificate: &CertificateInfo) -> PeerCert {
    PeerCert {
        fingerprint: tessera_guard::CertFingerprint(*certificate.fingerprint().as_bytes()),
        not_before: certificate.not_before(),
        not_after: certificate.not_after(),
    }
}
