//! `tessera wire bench`: round trips per second of 64-byte requests over
//! mutual TLS on loopback, 1 and 32 clients (one connection each, requests
//! back to back), for tessera-wire without and with HMAC, next to a raw
//! tokio-rustls echo (read 64 bytes, write them back) measured in the same
//! run: the ceiling a framed, routed protocol can approach.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use rustls::{ClientConfig, ServerConfig};
use tessera_tls::{client_config, server_config, ClientAuth, DevPki, PkiOptions, ServerAuth};
use tessera_wire::{
    Client, ClientOptions, FrameAuth, HmacAuth, MessageType, Role, Server, ServerOptions, Transport,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Client counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    clients: Vec<usize>,
    /// Also measure netaio 0.0.9 (Python, plain TCP) with benches/netaio_bench.py.
    #[arg(long)]
    baseline: bool,
    /// Slices each measurement is split into, taken in turn with the others.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// Round trips and the time they took, summed over slices.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    done: u64,
    elapsed: Duration,
}

impl Tally {
    fn rate(self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Self) {
        self.done += other.done;
        self.elapsed += other.elapsed;
    }
}

const PAYLOAD: [u8; 64] = [b'x'; 64];

pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::ensure!(
        args.seconds > 0.0 && args.seconds <= 600.0,
        "--seconds must be in (0, 600]"
    );
    anyhow::ensure!((1..=100).contains(&args.rounds), "--rounds must be 1-100");
    anyhow::ensure!(
        !args.clients.is_empty() && args.clients.iter().all(|c| (1..=1024).contains(c)),
        "--clients must list counts between 1 and 1024"
    );
    let duration = Duration::from_secs_f64(args.seconds);
    let pki = DevPki::generate(&PkiOptions::default())?;
    let server_tls = server_config(&pki.server.identity()?, ClientAuth::Required(pki.roots()?))?;
    let client_tls = client_config(
        ServerAuth::Roots(pki.roots()?),
        Some(&pki.client.identity()?),
    )?;
    let runtime = crate::runtime()?;
    let mut rows = Vec::new();
    runtime.block_on(async {
        let raw = start_raw_echo(server_tls.clone()).await?;
        let plain = start_wire(server_tls.clone(), None).await?;
        let secret = b"bench secret";
        let hmac = start_wire(server_tls.clone(), Some(hmac_auth(secret, Role::Server)?)).await?;
        for &clients in &args.clients {
            // Short slices in turn, summed: drift on a shared machine hits all three alike.
            let slice = duration / args.rounds;
            let (mut raw_total, mut wire_total, mut hmac_total) =
                (Tally::default(), Tally::default(), Tally::default());
            for _ in 0..args.rounds {
                raw_total += measure("raw echo", clients, slice, || {
                    raw_client(raw, client_tls.clone())
                })
                .await?;
                wire_total += measure("wire", clients, slice, || {
                    wire_client(plain, client_tls.clone(), None)
                })
                .await?;
                hmac_total += measure("wire+hmac", clients, slice, || {
                    wire_client(
                        hmac,
                        client_tls.clone(),
                        Some(hmac_auth(secret, Role::Client)),
                    )
                })
                .await?;
            }
            rows.push((
                clients,
                raw_total.rate(),
                wire_total.rate(),
                hmac_total.rate(),
            ));
        }
        anyhow::Ok(())
    })?;
    // netaio (Python, plain TCP) runs after ours, in the same command.
    let netaio = if args.baseline {
        let counts: Vec<String> = args.clients.iter().map(ToString::to_string).collect();
        crate::benches::python_baseline(
            "netaio_bench.py",
            &[args.seconds.to_string(), counts.join(",")],
            "netaio==0.0.9",
        )
    } else {
        None
    };
    let netaio_rate = |clients: usize| {
        netaio
            .as_ref()
            .and_then(|b| b[format!("c{clients}_per_s")].as_f64())
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut object = serde_json::Map::new();
        for (clients, raw, wire, hmac) in &rows {
            object.insert(format!("c{clients}_raw_echo_per_s"), (*raw).into());
            object.insert(format!("c{clients}_wire_per_s"), (*wire).into());
            object.insert(format!("c{clients}_wire_hmac_per_s"), (*hmac).into());
        }
        let mut object = serde_json::Value::Object(object);
        if let Some(netaio) = netaio.clone() {
            object["netaio"] = netaio;
        }
        writeln!(out, "{object}")?;
    } else {
        writeln!(
            out,
            "{:<8} {:>12} {:>12} {:>12} {:>7} {:>7} {:>10} {:>9}",
            "clients",
            "raw echo/s",
            "wire/s",
            "wire+hmac/s",
            "wire",
            "hmac",
            "netaio/s",
            "vs netaio"
        )?;
        for (clients, raw, wire, hmac) in &rows {
            let theirs = netaio_rate(*clients);
            writeln!(
                out,
                "{clients:<8} {raw:>12.0} {wire:>12.0} {hmac:>12.0} {:>6.0}% {:>6.0}% {:>10} {:>9}",
                100.0 * wire / raw,
                100.0 * hmac / raw,
                theirs.map_or_else(|| "-".to_owned(), |t| format!("{t:.0}")),
                theirs.map_or_else(|| "-".to_owned(), |t| format!("{:.1}x", wire / t)),
            )?;
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn hmac_auth(secret: &[u8], role: Role) -> anyhow::Result<Arc<dyn FrameAuth>> {
    Ok(Arc::new(HmacAuth::new("bench", secret, role)?))
}

/// Something that does one round trip at a time.
trait RoundTrip: Send + 'static {
    fn round_trip(&mut self) -> impl std::future::Future<Output = anyhow::Result<()>> + Send;
}

struct RawClient(tokio_rustls::client::TlsStream<tokio::net::TcpStream>);

impl RoundTrip for RawClient {
    async fn round_trip(&mut self) -> anyhow::Result<()> {
        self.0.write_all(&PAYLOAD).await?;
        // tokio-rustls may keep a record that the socket did not take at once
        // until the next write or a flush: without it, a round trip can wait
        // forever for an echo of bytes never sent.
        self.0.flush().await?;
        let mut back = [0u8; 64];
        self.0.read_exact(&mut back).await?;
        anyhow::ensure!(back == PAYLOAD, "raw echo mismatch");
        Ok(())
    }
}

struct WireClient(Client);

impl RoundTrip for WireClient {
    async fn round_trip(&mut self) -> anyhow::Result<()> {
        let reply = self
            .0
            .request(MessageType::REQUEST_URI, "echo", &PAYLOAD[..])
            .await?;
        anyhow::ensure!(
            reply.kind == MessageType::RESPOND_URI && reply.body[..] == PAYLOAD,
            "wire echo mismatch: {} {:?}",
            reply.kind,
            reply.body
        );
        Ok(())
    }
}

async fn raw_client(addr: SocketAddr, config: Arc<ClientConfig>) -> anyhow::Result<RawClient> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let tls = TlsConnector::from(config)
        .connect(tessera_tls::server_name("localhost")?, tcp)
        .await?;
    Ok(RawClient(tls))
}

async fn wire_client(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    auth: Option<anyhow::Result<Arc<dyn FrameAuth>>>,
) -> anyhow::Result<WireClient> {
    let options = ClientOptions {
        auth: auth.transpose()?,
        ..ClientOptions::default()
    };
    let client = Client::connect_tls(
        addr,
        tessera_tls::server_name("localhost")?,
        config,
        options,
    )
    .await?;
    Ok(WireClient(client))
}

/// `step` within [`STEP_TIMEOUT`]: a stalled connection or round trip fails
/// the bench with a message instead of hanging it.
async fn bounded<T>(
    what: &str,
    step: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(STEP_TIMEOUT, step)
        .await
        .map_err(|_| anyhow::anyhow!("{what} stalled for {STEP_TIMEOUT:?}"))?
}

/// The longest one connection or round trip may take in the bench.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// Round trips with `clients` connections made by `connect`, for `duration`.
async fn measure<C, F, Fut>(
    name: &'static str,
    clients: usize,
    duration: Duration,
    connect: F,
) -> anyhow::Result<Tally>
where
    C: RoundTrip,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<C>>,
{
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        let mut connection = bounded(&format!("{name}: a connection"), connect()).await?;
        bounded(
            &format!("{name}: the first round trip"),
            connection.round_trip(),
        )
        .await?;
        connections.push(connection);
    }
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for mut connection in connections {
        let done = done.clone();
        tasks.spawn(async move {
            while Instant::now() < deadline {
                bounded(&format!("{name}: a round trip"), connection.round_trip()).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(Tally {
        done: done.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    })
}

async fn start_wire(
    tls: Arc<ServerConfig>,
    auth: Option<Arc<dyn FrameAuth>>,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let options = ServerOptions {
        auth,
        ..ServerOptions::default()
    };
    let server = Server::new(
        listener,
        Transport::Tls(tls),
        crate::commands::wire::echo_router(),
        options,
    )?;
    let addr = server.local_addr()?;
    tokio::spawn(server.run(std::future::pending()));
    Ok(addr)
}

/// The ceiling: TLS with no framing, routing or tasks per request (the
/// connection stage as every server has it, then a bare echo).
async fn start_raw_echo(tls: Arc<ServerConfig>) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut config = tessera_serve::StageConfig::default();
    config.tls(tls).max_connections_per_client(1024);
    let stage = Arc::new(tessera_serve::Stage::new(
        &tessera_serve::LocalAddr::Tcp(addr),
        config,
    )?);
    tokio::spawn(stage.run(listener.into(), Arc::new(RawEcho), std::future::pending()));
    Ok(addr)
}

/// Echoes 64-byte messages.
struct RawEcho;

impl tessera_serve::Handler for RawEcho {
    async fn serve(self: Arc<Self>, connection: tessera_serve::Admitted) {
        let mut stream = connection.stream;
        let mut buffer = [0u8; 64];
        while stream.read_exact(&mut buffer).await.is_ok() {
            if stream.write_all(&buffer).await.is_err() || stream.flush().await.is_err() {
                return;
            }
        }
    }
}
