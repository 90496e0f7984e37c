//! tessera-wire's integration tests, in one binary so they link once.

mod netaio_compat;
mod node;
mod tunnel;
mod wire;

/// A loopback port that refuses connections and that no other test can take
/// meanwhile: a socket bound to it but not listening (a port bound and
/// closed again could be handed to another test's listener). Keep the
/// socket while the port is used.
pub(crate) fn refusing_port() -> (tokio::net::TcpSocket, std::net::SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let address = socket.local_addr().unwrap();
    (socket, address)
}
