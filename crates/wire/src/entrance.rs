//! The connection stage every tessera-wire listener shares (the frame server
//! and the tunnel exit): before any TLS byte, the guard's ACL and rate limit
//! and the per-client cap; then the TLS handshake under a deadline, or plain
//! TCP, which only a loopback listener allows. Per frame, the guard's
//! client-certificate rules decide by `"/" + URI`, which must already be a
//! canonical path (`tessera_guard::CanonicalPath`): a URI the rules would
//! read differently from the router's exact match (`%70`, `a/../b`, `a//b`,
//! a bare `%`) is refused, so the rules check exactly the route that runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_guard::{CanonicalPath, Chain, ConnectionLimits, ConnectionPermit, PeerCert};
use tessera_tls::CertificateInfo;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;

use crate::{Error, MessageType, Transport};

/// The `ERROR` body for a URI that is not a canonical path.
pub(crate) const NOT_CANONICAL: &str = "invalid uri: not a canonical path";

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
        tune(&tcp);
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

    /// The guard's certificate rules for a frame on `uri`: `Err` carries
    /// the reply's type (`ERROR` for a URI not in canonical form,
    /// `NOT_PERMITTED` for a rule's denial) and its body.
    pub(crate) fn permitted(
        &self,
        uri: &str,
        certificate: Option<&PeerCert>,
    ) -> Result<(), (MessageType, &'static str)> {
        let Some(guard) = &self.guard else {
            return Ok(());
        };
        let path = CanonicalPath::parse(&format!("/{uri}"))
            .ok()
            .filter(|path| path.as_str().get(1..) == Some(uri))
            .ok_or((MessageType::ERROR, NOT_CANONICAL))?;
        match guard.check_certs(&path, certificate, time::OffsetDateTime::now_utc()) {
            tessera_guard::Decision::Allow => Ok(()),
            tessera_guard::Decision::Deny(denial) => {
                Err((MessageType::NOT_PERMITTED, denial.reason.name()))
            }
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

/// Every TCP socket of tessera-wire: no Nagle delay (frames are small and
/// latency-bound), and keepalive probes so a peer that vanished without a
/// FIN (a cut link, a crashed host) is noticed within minutes even on a
/// connection, such as a tunnel, that has no idle deadline of its own.
pub(crate) fn tune(tcp: &TcpStream) {
    let _ = tcp.set_nodelay(true);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(10))
        .with_retries(6);
    let _ = socket2::SockRef::from(tcp).set_tcp_keepalive(&keepalive);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sockets_get_no_delay_and_keepalive() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        tune(&tcp);
        let socket = socket2::SockRef::from(&tcp);
        assert!(tcp.nodelay().unwrap());
        assert!(socket.keepalive().unwrap());
        assert_eq!(
            socket.tcp_keepalive_time().unwrap(),
            Duration::from_secs(60)
        );
    }
}
