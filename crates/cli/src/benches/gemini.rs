//! `tessera gemini bench`: requests per second for a small `.gmi` file with 1
//! and 32 concurrent clients, a new TLS connection (a full handshake, or
//! with `--resume` a resumed session) per request as Gemini requires, against `tessera gemini serve`
//! and Debian's molly-brown serving the same file with the same certificate,
//! each in its own process, measured in the same run by the same load
//! generator.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use tessera_tls::rustls::client::Resumption;
use tessera_tls::tokio_rustls::TlsConnector;
use tessera_tls::{self_signed, KeyType, Usage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::benches::KillOnDrop;

/// The page both servers serve.
const PAGE: &str = "# A small capsule\n\nHello from the benchmark.\n=> /about.gmi About\n";

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Client counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    clients: Vec<usize>,
    /// Measure only tessera (no molly-brown).
    #[arg(long)]
    no_baseline: bool,
    /// Clients resume TLS sessions (tickets) instead of a full handshake on
    /// every connection, as clients that keep a session cache do.
    #[arg(long)]
    resume: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.seconds > 0.0 && args.seconds <= 600.0,
        "--seconds must be in (0, 600]"
    );
    anyhow::ensure!(
        !args.clients.is_empty() && args.clients.iter().all(|c| (1..=1024).contains(c)),
        "--clients must list counts between 1 and 1024"
    );
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("capsule");
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("index.gmi"), PAGE)?;
    let issued = self_signed("localhost", &[], Usage::Server, KeyType::default(), 30)?;
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    issued.write(&cert, &key, false)?;

    let runtime = crate::runtime()?;
    let duration = Duration::from_secs_f64(args.seconds);
    let (ours, _server) = start_tessera(dir.path(), &root, &cert, &key)?;
    let molly = if args.no_baseline {
        None
    } else {
        Some(start_molly(dir.path(), &root, &cert, &key, &runtime)?)
    };
    // Interleaved (ours, then theirs, per client count) so drift on the
    // machine affects both sides alike.
    let mut results = serde_json::Map::new();
    let mut baseline = serde_json::Map::new();
    for &clients in &args.clients {
        let key = format!("c{clients}_requests_per_s");
        let rate = runtime.block_on(measure(ours, clients, duration, args.resume))?;
        results.insert(key.clone(), rate.into());
        if let Some((theirs, _)) = &molly {
            let rate = runtime.block_on(measure(*theirs, clients, duration, args.resume))?;
            baseline.insert(key, rate.into());
        }
    }
    let baseline = molly.map(|_| serde_json::Value::Object(baseline));
    crate::benches::Report {
        first_column: "small .gmi, new TLS each",
        baseline_key: "molly_brown",
        baseline_title: "molly-brown",
        decimals: 0,
    }
    .print(results, baseline, args.json)?;
    Ok(ExitCode::SUCCESS)
}

/// `tessera gemini serve` in a child process; returns its address.
fn start_tessera(
    dir: &Path,
    root: &Path,
    cert: &Path,
    key: &Path,
) -> anyhow::Result<(SocketAddr, KillOnDrop)> {
    let child = Command::new(std::env::current_exe()?)
        .args([
            "--log-level",
            "error",
            "gemini",
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--root")
        .arg(root)
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .arg("--cert-dir")
        .arg(dir.join("state"))
        .arg("--max-connections-per-client")
        .arg("4096")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting tessera gemini serve")?;
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().context("server stdout")?;
    let addr = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            line.strip_prefix("listening on ")
                .and_then(|a| a.parse().ok())
        })
        .context("tessera gemini serve did not print its address")?;
    Ok((addr, child))
}

/// molly-brown in a child process on a free port; waits until it accepts.
fn start_molly(
    dir: &Path,
    root: &Path,
    cert: &Path,
    key: &Path,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<(SocketAddr, KillOnDrop)> {
    // molly-brown cannot report a port: take a free one, then wait until it accepts.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = dir.join("molly.conf");
    std::fs::write(
        &config,
        format!(
            "Port = {port}\nHostname = \"localhost\"\nCertPath = \"{}\"\nKeyPath = \"{}\"\nDocBase = \"{}\"\nAccessLog = \"/dev/null\"\nErrorLog = \"{}\"\n",
            cert.display(),
            key.display(),
            root.display(),
            dir.join("molly-error.log").display(),
        ),
    )?;
    let child = Command::new("molly-brown")
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting molly-brown (apt install molly-brown, or pass --no-baseline)")?;
    let child = KillOnDrop(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), async {
            while TcpStream::connect(addr).await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .context("molly-brown did not start listening")
    })?;
    Ok((addr, child))
}

/// Requests per second with `clients` clients each running requests back to back.
async fn measure(
    addr: SocketAddr,
    clients: usize,
    duration: Duration,
    resume: bool,
) -> anyhow::Result<f64> {
    let mut config = (*tessera_tls::dangerous::insecure_client_config("127.0.0.1", None)?).clone();
    if !resume {
        config.resumption = Resumption::disabled();
    }
    let connector = TlsConnector::from(Arc::new(config));
    let url = format!("gemini://localhost:{}/\r\n", addr.port());
    // Warm up (and check the answer) before the clock starts.
    request(&connector, addr, &url).await?;
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (connector, url, done) = (connector.clone(), url.clone(), done.clone());
        tasks.spawn(async move {
            while Instant::now() < deadline {
                request(&connector, addr, &url).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// One request on a new connection; the whole page must arrive.
async fn request(connector: &TlsConnector, addr: SocketAddr, url: &str) -> anyhow::Result<()> {
    let exchange = async {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let mut tls = connector
            .connect(tessera_tls::server_name("localhost")?, tcp)
            .await?;
        tls.write_all(url.as_bytes()).await?;
        tls.flush().await?;
        let mut response = Vec::with_capacity(256);
        match tls.read_to_end(&mut response).await {
            Ok(_) => {}
            // A server that skips close_notify still delivered the page.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
            Err(e) => return Err(e.into()),
        }
        anyhow::ensure!(
            response.starts_with(b"20 ") && response.ends_with(PAGE.as_bytes()),
            "unexpected response: {:?}",
            String::from_utf8_lossy(&response[..response.len().min(80)])
        );
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .context("request timed out")?
}
