//! What a server listens on: a TCP socket or a Unix socket, and what it
//! accepts from them. A Unix listener owns its socket file and removes it
//! when it is dropped, so a stopped server leaves nothing behind.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio_util::either::Either;

/// An accepted socket before any protocol byte: TCP or Unix.
pub type Socket = Either<TcpStream, UnixStream>;

/// Who is on the other end of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// A TCP peer: its address (or, behind a trusted relay, the client's from
    /// the PROXY header).
    Tcp(SocketAddr),
    /// A local process on a Unix socket, with its user id when the kernel tells it.
    Unix {
        /// The peer's user id (`SO_PEERCRED`).
        uid: Option<u32>,
    },
}

impl Peer {
    /// The client's IP address (`None` on a Unix socket).
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        match self {
            Self::Tcp(address) => Some(address.ip()),
            Self::Unix { .. } => None,
        }
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(address) => write!(f, "{address}"),
            Self::Unix { uid: Some(uid) } => write!(f, "unix:uid={uid}"),
            Self::Unix { uid: None } => f.write_str("unix"),
        }
    }
}

/// A bound listener.
#[derive(Debug)]
pub enum Listener {
    /// TCP. Make it with `Listener::from`, which sets the options the
    /// accepted connections inherit.
    Tcp(TcpListener),
    /// A Unix socket and the file it was bound at.
    Unix(UnixListener, UnixSocketFile),
}

/// Removes the socket file of a Unix listener when dropped.
#[derive(Debug)]
pub struct UnixSocketFile(PathBuf);

impl Drop for UnixSocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Where a [`Listener`] listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalAddr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix socket path.
    Unix(PathBuf),
}

impl std::fmt::Display for LocalAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(address) => write!(f, "{address}"),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl Listener {
    /// Binds a Unix socket at `path`. A stale socket file left by a crashed
    /// server is replaced; any other existing file is an error.
    ///
    /// # Errors
    /// The bind error, or `AlreadyExists` for a path that is not a socket.
    pub fn bind_unix(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::FileTypeExt;
        if let Ok(metadata) = std::fs::symlink_metadata(path) {
            if !metadata.file_type().is_socket() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
            // Only a socket nobody answers on is stale.
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use by a running server", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        Ok(Self::Unix(listener, UnixSocketFile(path.to_owned())))
    }

    /// Where it listens.
    ///
    /// # Errors
    /// Only if the socket cannot report it.
    pub fn local_addr(&self) -> io::Result<LocalAddr> {
        match self {
            Self::Tcp(listener) => listener.local_addr().map(LocalAddr::Tcp),
            Self::Unix(_, file) => Ok(LocalAddr::Unix(file.0.clone())),
        }
    }

    /// Accepts one connection.
    pub(crate) async fn accept(&self) -> io::Result<(Socket, Peer)> {
        match self {
            Self::Tcp(listener) => {
                let (tcp, address) = listener.accept().await?;
                Ok((Either::Left(tcp), Peer::Tcp(address)))
            }
            Self::Unix(listener, _) => {
                let (unix, _) = listener.accept().await?;
                let uid = unix.peer_cred().ok().map(|cred| cred.uid());
                Ok((Either::Right(unix), Peer::Unix { uid }))
            }
        }
    }
}

impl From<TcpListener> for Listener {
    /// Tunes the listening socket: on Linux the connections it accepts
    /// inherit the options, so no connection pays five `setsockopt`s.
    fn from(listener: TcpListener) -> Self {
        set_options(&socket2::SockRef::from(&listener));
        Self::Tcp(listener)
    }
}

/// Every TCP socket of Tessera: no Nagle delay (request/reply traffic is
/// small and latency-bound), and keepalive probes so a peer that vanished
/// without a FIN (a cut link, a crashed host) is noticed within minutes even
/// on a connection, such as a tunnel, that has no idle deadline of its own.
/// (Accepted sockets have these from their [`Listener`] already.)
pub fn tune(tcp: &TcpStream) {
    set_options(&socket2::SockRef::from(tcp));
}

fn set_options(socket: &socket2::SockRef<'_>) {
    let _ = socket.set_tcp_nodelay(true);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(10))
        .with_retries(6);
    let _ = socket.set_tcp_keepalive(&keepalive);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_tuned(tcp: &TcpStream) {
        let socket = socket2::SockRef::from(tcp);
        assert!(tcp.nodelay().unwrap());
        assert!(socket.keepalive().unwrap());
        assert_eq!(
            socket.tcp_keepalive_time().unwrap(),
            Duration::from_secs(60)
        );
        assert_eq!(
            socket.tcp_keepalive_interval().unwrap(),
            Duration::from_secs(10)
        );
        assert_eq!(socket.tcp_keepalive_retries().unwrap(), 6);
    }

    #[tokio::test]
    async fn sockets_get_no_delay_and_keepalive() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        tune(&tcp);
        assert_tuned(&tcp);
    }

    #[tokio::test]
    async fn accepted_sockets_inherit_the_listeners_options() {
        let listener = Listener::from(TcpListener::bind("127.0.0.1:0").await.unwrap());
        let LocalAddr::Tcp(address) = listener.local_addr().unwrap() else {
            unreachable!("a TCP listener");
        };
        let _client = TcpStream::connect(address).await.unwrap();
        let (Either::Left(accepted), _) = listener.accept().await.unwrap() else {
            unreachable!("a TCP connection");
        };
        assert_tuned(&accepted);
    }

    #[tokio::test]
    async fn a_unix_listener_replaces_a_stale_socket_and_removes_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists(), "a stale socket file");
        let listener = Listener::bind_unix(&path).unwrap();
        assert!(Listener::bind_unix(&path).is_err(), "in use");
        let client = UnixStream::connect(&path).await.unwrap();
        let (_, peer) = listener.accept().await.unwrap();
        assert!(matches!(peer, Peer::Unix { uid: Some(_) }));
        drop(client);
        drop(listener);
        assert!(!path.exists());
        std::fs::write(&path, "not a socket").unwrap();
        assert!(Listener::bind_unix(&path).is_err());
    }
}
