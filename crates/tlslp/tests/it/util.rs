//! A server on 127.0.0.1:0 in this process, and clients for it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tessera_tls::rustls::pki_types::ServerName;
use tessera_tls::rustls::ClientConfig;
use tessera_tls::tokio_rustls::client::TlsStream;
use tessera_tls::tokio_rustls::TlsConnector;
use tessera_tls::{client_config, server_config, ClientAuth, DevPki, PkiOptions, ServerAuth};
use tessera_tlslp::driver::{serve, ClientOptions, ServerOptions, ServerReport, SessionRecord};
use tessera_tlslp::logfile::NoLog;
use tessera_tlslp::{Profile, Sequence, SessionConfig, DEFAULT_TOKEN};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// Every network wait in these tests ends by then.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(20);

pub(crate) struct TestServer {
    pub(crate) address: SocketAddr,
    pub(crate) pki: DevPki,
    pub(crate) records: mpsc::UnboundedReceiver<SessionRecord>,
    pub(crate) stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<ServerReport>,
}

impl TestServer {
    pub(crate) async fn start(
        sequence: Sequence,
        n_bits: i64,
        tune: impl FnOnce(&mut ServerOptions),
    ) -> Self {
        let pki = DevPki::generate(&PkiOptions::default()).unwrap();
        let tls = server_config(
            &pki.server.identity().unwrap(),
            ClientAuth::Required(pki.roots().unwrap()),
        )
        .unwrap();
        let session = Arc::new(SessionConfig {
            token: DEFAULT_TOKEN.to_owned(),
            random_string: "LGTk".to_owned(),
            n_bits,
            sequence,
            timeouts: tessera_tlslp::Timeouts::default(),
        });
        let mut options = ServerOptions::new(tls, session);
        tune(&mut options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (records_tx, records) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve(
                listener,
                options,
                Arc::new(NoLog),
                Some(records_tx),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .unwrap()
        });
        Self {
            address,
            pki,
            records,
            stop: Some(stop),
            task,
        }
    }

    pub(crate) fn client_tls(&self) -> Arc<ClientConfig> {
        client_config(
            ServerAuth::Roots(self.pki.roots().unwrap()),
            Some(&self.pki.client.identity().unwrap()),
        )
        .unwrap()
    }

    pub(crate) fn client_options(&self) -> ClientOptions {
        ClientOptions {
            host: "localhost".into(),
            ports: vec![self.address.port()],
            tls: self.client_tls(),
            read_timeout: TIMEOUT,
            work_timeout: TIMEOUT,
            threads: Some(2),
            profile: Arc::new(Profile::default()),
            work_counter: None,
            print_stdout: false,
        }
    }

    /// A TLS connection with the client certificate, for hand-written conversations.
    pub(crate) async fn raw(&self) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.address).await.unwrap();
        TlsConnector::from(self.client_tls())
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap()
    }

    pub(crate) async fn next_record(&mut self) -> SessionRecord {
        tokio::time::timeout(TIMEOUT, self.records.recv())
            .await
            .expect("no session record")
            .expect("server gone")
    }

    pub(crate) async fn stop(mut self) -> ServerReport {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(TIMEOUT, self.task)
            .await
            .expect("server did not stop")
            .unwrap()
    }
}

/// A loopback port that refuses connections and that no other test can take
/// meanwhile: a socket bound to it but not listening (a port bound and
/// closed again could be handed to another test's listener). Keep the
/// socket while the port is used.
pub(crate) fn refusing_port() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let address = socket.local_addr().unwrap();
    (socket, address)
}
