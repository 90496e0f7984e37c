//! `tessera gemini bench`: requests per second, and per second of the
//! server's CPU, for a small `.gmi` file with 1 and 32 concurrent clients, a
//! new TLS connection per request as Gemini requires (a full handshake, or
//! with `--resume` a resumed session). It runs `tessera gemini serve`,
//! Debian's molly-brown and agate (when installed), and the floor: a
//! minimal tokio-rustls server that answers every request with the fixed
//! page and nothing else (this binary, `--serve-floor`). Each is a child
//! process serving the same page; the servers are pinned to CPU 0 and the
//! load generator to the others, and measurements alternate between the
//! servers, round after round, so drift affects all alike.
//!
//! With `--cgi` the request runs a CGI script instead, the same shell script
//! under tessera and molly-brown (agate has no CGI; the floor runs nothing),
//! and the CPU counted includes the scripts'.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use tessera_tls::rustls::client::Resumption;
use tessera_tls::tokio_rustls::{TlsAcceptor, TlsConnector};
use tessera_tls::{self_signed, ClientAuth, Identity, KeyType, Usage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::benches::KillOnDrop;

/// The page every server serves.
const PAGE: &str = "# A small capsule\n\nHello from the benchmark.\n=> /about.gmi About\n";

/// What the CGI script answers after its header.
const CGI_BODY: &str = "# Hello from CGI\n";

/// The CGI script `--cgi` measures: a header and [`CGI_BODY`], from /bin/sh.
const SCRIPT: &str = "#!/bin/sh\nprintf '20 text/gemini\\r\\n# Hello from CGI\\n'\n";

/// Where the script is, below the capsule root (molly-brown runs
/// executables in its `CGIPaths`, which lie within its document root).
const CGI_PATH: &str = "/cgi-bin/hello";

/// The CPU the servers run on with pinning.
const SERVER_CPU: usize = 0;

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Client counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    clients: Vec<usize>,
    /// Rounds: each server is measured once per round and client count; the
    /// median is reported.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    rounds: u32,
    /// Measure only tessera (no molly-brown, agate or floor).
    #[arg(long)]
    no_baseline: bool,
    /// Clients resume TLS sessions (tickets) instead of a full handshake on
    /// every connection, as clients that keep a session cache do.
    #[arg(long)]
    resume: bool,
    /// Do not pin the servers to CPU 0 and the load to the other CPUs.
    #[arg(long)]
    no_pin: bool,
    /// Measure a CGI script (a shell script printing a header and a line)
    /// instead of a static file, under tessera and molly-brown; CPU includes
    /// the scripts'.
    #[arg(long)]
    cgi: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Serve the floor (CERT KEY) on a loopback port and print it: what the
    /// bench starts as its floor server.
    #[arg(long, hide = true, num_args = 2, value_names = ["CERT", "KEY"])]
    serve_floor: Option<Vec<PathBuf>>,
}

/// One server under test.
struct Subject {
    /// Its key in the JSON (and name in the table).
    key: &'static str,
    addr: SocketAddr,
    pid: u32,
    _child: KillOnDrop,
}

impl Subject {
    /// `child`, listening on `addr`.
    fn new(key: &'static str, addr: SocketAddr, child: KillOnDrop) -> Self {
        Self {
            key,
            addr,
            pid: child.0.id(),
            _child: child,
        }
    }
}

/// A subject's medians, per client count.
#[derive(Default)]
struct Results {
    requests_per_s: Vec<f64>,
    requests_per_cpu_s: Vec<f64>,
}

pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    if let Some(files) = &args.serve_floor {
        return serve_floor(&files[0], &files[1]);
    }
    anyhow::ensure!(
        args.seconds > 0.0 && args.seconds <= 600.0,
        "--seconds must be in (0, 600]"
    );
    anyhow::ensure!(
        !args.clients.is_empty() && args.clients.iter().all(|c| (1..=1024).contains(c)),
        "--clients must list counts between 1 and 1024"
    );
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let pin = !args.no_pin && cpus > 1;
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("capsule");
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("index.gmi"), PAGE)?;
    let cgi_dir = root.join("cgi-bin");
    if args.cgi {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&cgi_dir)?;
        let script = cgi_dir.join("hello");
        std::fs::write(&script, SCRIPT)?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    }
    let cgi = args.cgi.then_some(cgi_dir.as_path());
    let issued = self_signed("localhost", &[], Usage::Server, KeyType::default(), 30)?;
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    issued.write(&cert, &key, false)?;

    let runtime = crate::runtime()?;
    let mut subjects = vec![start_tessera(dir.path(), &root, &cert, &key, pin, cgi)?];
    if !args.no_baseline {
        if !args.cgi {
            subjects.push(start_floor(&cert, &key, pin)?);
        }
        match start_molly(dir.path(), &root, &cert, &key, pin, cgi, &runtime) {
            Ok(molly) => subjects.push(molly),
            Err(error) => note(&format!(
                "molly-brown was not measured: {error:#} (apt install molly-brown)"
            )),
        }
        if args.cgi {
            note("agate was not measured: it has no CGI");
        } else {
            match start_agate(dir.path(), &root, pin, &runtime) {
                Ok(agate) => subjects.push(agate),
                Err(error) => note(&format!(
                    "agate was not measured: {error:#} (cargo install agate)"
                )),
            }
        }
    }
    if pin {
        crate::benches::pin_self_away_from(SERVER_CPU)?;
    }
    let duration = Duration::from_secs_f64(args.seconds);
    let mut samples: Vec<Vec<Vec<(f64, f64)>>> =
        vec![vec![Vec::new(); args.clients.len()]; subjects.len()];
    for _ in 0..args.rounds {
        for (c, &clients) in args.clients.iter().enumerate() {
            for (s, subject) in subjects.iter().enumerate() {
                let load = Load {
                    clients,
                    duration,
                    resume: args.resume,
                    cgi: args.cgi,
                };
                let sample = runtime.block_on(measure(subject, &load))?;
                samples[s][c].push(sample);
            }
        }
    }
    let results: Vec<Results> = samples
        .iter()
        .map(|per_clients| Results {
            requests_per_s: per_clients
                .iter()
                .map(|s| median(s.iter().map(|x| x.0)))
                .collect(),
            requests_per_cpu_s: per_clients
                .iter()
                .map(|s| median(s.iter().map(|x| x.1)))
                .collect(),
        })
        .collect();
    let keys: Vec<&str> = subjects.iter().map(|s| s.key).collect();
    if args.json {
        print_json(&keys, &args.clients, &results, args, pin)?;
    } else {
        print_table(&keys, &args.clients, &results, args, pin)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn note(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "tessera: {text}");
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// The JSON object: tessera's values at the top (the keys scripts use),
/// each other server's under its key.
fn print_json(
    keys: &[&str],
    clients: &[usize],
    results: &[Results],
    args: &BenchArgs,
    pin: bool,
) -> anyhow::Result<()> {
    use std::io::Write;
    let values = |r: &Results| {
        let mut object = serde_json::Map::new();
        for (i, c) in clients.iter().enumerate() {
            object.insert(format!("c{c}_requests_per_s"), r.requests_per_s[i].into());
            object.insert(
                format!("c{c}_requests_per_cpu_s"),
                r.requests_per_cpu_s[i].into(),
            );
        }
        object
    };
    let mut top = values(&results[0]);
    for (key, result) in keys.iter().zip(results).skip(1) {
        top.insert((*key).to_owned(), serde_json::Value::Object(values(result)));
    }
    top.insert("resumption".into(), args.resume.into());
    top.insert("cgi".into(), args.cgi.into());
    top.insert("pinned".into(), pin.into());
    top.insert("rounds".into(), args.rounds.into());
    writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::Value::Object(top)
    )?;
    Ok(())
}

fn print_table(
    keys: &[&str],
    clients: &[usize],
    results: &[Results],
    args: &BenchArgs,
    pin: bool,
) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}, {} TLS each, {}, median of {} round(s)",
        if args.cgi {
            "CGI script (CPU includes the scripts')"
        } else {
            "small .gmi"
        },
        if args.resume { "resumed" } else { "new" },
        if pin {
            "servers on CPU 0, load on the others"
        } else {
            "not pinned"
        },
        args.rounds
    )?;
    write!(out, "{:<12}", "server")?;
    for c in clients {
        write!(
            out,
            " {:>14} {:>16}",
            format!("c{c} req/s"),
            format!("c{c} req/CPU-s")
        )?;
    }
    writeln!(out)?;
    for (key, result) in keys.iter().zip(results) {
        write!(out, "{key:<12}")?;
        for i in 0..clients.len() {
            write!(
                out,
                " {:>14.0} {:>16.0}",
                result.requests_per_s[i], result.requests_per_cpu_s[i]
            )?;
        }
        writeln!(out)?;
    }
    for (key, result) in keys.iter().zip(results).skip(1) {
        write!(out, "tessera / {key}, per CPU-second:")?;
        for (i, c) in clients.iter().enumerate() {
            let theirs = result.requests_per_cpu_s[i];
            let ratio = results[0].requests_per_cpu_s[i] / theirs.max(f64::MIN_POSITIVE);
            write!(out, "  c{c} {ratio:.2}×")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// `command`, pinned to the servers' CPU when `pin`.
fn server_command(program: &Path, pin: bool) -> Command {
    if pin {
        let mut command = Command::new("taskset");
        command.arg("-c").arg(SERVER_CPU.to_string()).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// Waits for the `listening on ADDR` line of a child and returns the address.
fn listening_line(child: &mut KillOnDrop, what: &str) -> anyhow::Result<SocketAddr> {
    let stdout = child.0.stdout.take().context("server stdout")?;
    BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            line.strip_prefix("listening on ")
                .and_then(|a| a.parse().ok())
        })
        .with_context(|| format!("{what} did not print its address"))
}

/// `tessera gemini serve` in a child process.
fn start_tessera(
    dir: &Path,
    root: &Path,
    cert: &Path,
    key: &Path,
    pin: bool,
    cgi: Option<&Path>,
) -> anyhow::Result<Subject> {
    let mut command = server_command(&std::env::current_exe()?, pin);
    command
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
        // The guard on, as a capsule runs it: a rate limit the run never
        // reaches and a certificate rule every request is checked against.
        .args([
            "--rate-limit",
            "1000000000/1",
            "--require-cert",
            "/private/",
        ]);
    if let Some(dir) = cgi {
        // No cap below the bench's clients (molly-brown has none): every
        // request runs the script rather than some getting 41.
        command
            .arg("--cgi")
            .arg(format!("/cgi-bin/={}", dir.display()))
            .args(["--cgi-max-running", "1024"]);
    }
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting tessera gemini serve")?;
    let mut child = KillOnDrop(child);
    let addr = listening_line(&mut child, "tessera gemini serve")?;
    Ok(Subject::new("tessera", addr, child))
}

/// The floor server in a child process (this binary, `--serve-floor`).
fn start_floor(cert: &Path, key: &Path, pin: bool) -> anyhow::Result<Subject> {
    let child = server_command(&std::env::current_exe()?, pin)
        .args(["gemini", "bench", "--serve-floor"])
        .arg(cert)
        .arg(key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the floor server")?;
    let mut child = KillOnDrop(child);
    let addr = listening_line(&mut child, "the floor server")?;
    Ok(Subject::new("floor", addr, child))
}

/// The floor: accept, TLS, read up to CRLF, answer the page, close. No
/// guard, no paths, no files, no logs: what any Gemini server on tokio and
/// rustls pays at the least.
fn serve_floor(cert: &Path, key: &Path) -> anyhow::Result<ExitCode> {
    let identity = Identity::load(cert, key)?;
    let config = tessera_tls::server_config(&identity, ClientAuth::None)?;
    let acceptor = TlsAcceptor::from(config);
    crate::runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        crate::listen::announce(listener.local_addr()?)?;
        let response = format!("20 text/gemini\r\n{PAGE}");
        loop {
            let (tcp, _) = listener.accept().await?;
            let (acceptor, response) = (acceptor.clone(), response.clone());
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let answer = async {
                    let mut tls = acceptor.accept(tcp).await?;
                    let mut line = Vec::with_capacity(1026);
                    let mut byte = [0u8; 256];
                    while !line.ends_with(b"\r\n") && line.len() <= 1026 {
                        let n = tls.read(&mut byte).await?;
                        if n == 0 {
                            return Ok(());
                        }
                        line.extend_from_slice(&byte[..n]);
                    }
                    tls.write_all(response.as_bytes()).await?;
                    tls.shutdown().await
                };
                let _ = tokio::time::timeout(Duration::from_secs(30), answer).await;
            });
        }
    })
}

/// molly-brown in a child process on a free port; waits until it accepts.
fn start_molly(
    dir: &Path,
    root: &Path,
    cert: &Path,
    key: &Path,
    pin: bool,
    cgi: Option<&Path>,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Subject> {
    // molly-brown cannot report a port: take a free one, then wait until it accepts.
    let port = free_port()?;
    let config = dir.join("molly.conf");
    let cgi_paths = cgi.map_or(String::new(), |dir| {
        format!("CGIPaths = [\"{}\"]\n", dir.display())
    });
    std::fs::write(
        &config,
        format!(
            "Port = {port}\nHostname = \"localhost\"\nCertPath = \"{}\"\nKeyPath = \"{}\"\nDocBase = \"{}\"\nAccessLog = \"/dev/null\"\nErrorLog = \"{}\"\n{cgi_paths}",
            cert.display(),
            key.display(),
            root.display(),
            dir.join("molly-error.log").display(),
        ),
    )?;
    let child = server_command(Path::new("molly-brown"), pin)
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting molly-brown")?;
    let child = KillOnDrop(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_until_it_accepts(addr, runtime, "molly-brown")?;
    Ok(Subject::new("molly_brown", addr, child))
}

/// agate in a child process on a free port, with the certificate it
/// generates for `localhost` (ECDSA P-256, as ours).
fn start_agate(
    dir: &Path,
    root: &Path,
    pin: bool,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Subject> {
    let port = free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let child = server_command(Path::new("agate"), pin)
        .arg("--content")
        .arg(root)
        .arg("--certs")
        .arg(dir.join("agate-certs"))
        .args(["--hostname", "localhost", "--addr", &addr.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env("RUST_LOG", "error")
        .spawn()
        .context("starting agate")?;
    let child = KillOnDrop(child);
    wait_until_it_accepts(addr, runtime, "agate")?;
    Ok(Subject::new("agate", addr, child))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn wait_until_it_accepts(
    addr: SocketAddr,
    runtime: &tokio::runtime::Runtime,
    what: &str,
) -> anyhow::Result<()> {
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), async {
            while TcpStream::connect(addr).await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .with_context(|| format!("{what} did not start listening"))
    })
}

/// What one measurement asks of a server.
struct Load {
    clients: usize,
    duration: Duration,
    resume: bool,
    /// Request the CGI script, and count its CPU with the server's.
    cgi: bool,
}

/// Requests per second with `clients` clients each running requests back to
/// back, and requests per second of the server's CPU (all its threads, and
/// with `cgi` its scripts).
async fn measure(subject: &Subject, load: &Load) -> anyhow::Result<(f64, f64)> {
    let Load {
        clients,
        duration,
        resume,
        cgi,
    } = *load;
    let cpu_seconds = if cgi {
        crate::benches::process_and_children_cpu_seconds
    } else {
        crate::benches::process_cpu_seconds
    };
    let mut config = (*tessera_tls::dangerous::insecure_client_config("127.0.0.1", None)?).clone();
    if !resume {
        config.resumption = Resumption::disabled();
    }
    let connector = TlsConnector::from(Arc::new(config));
    let addr = subject.addr;
    let (path, body) = if cgi {
        (CGI_PATH, CGI_BODY)
    } else {
        ("/", PAGE)
    };
    let url = format!("gemini://localhost:{}{path}\r\n", addr.port());
    // Warm up (and check the answer, and take a session to resume) before the clock starts.
    request(&connector, addr, &url, body).await?;
    let done = Arc::new(AtomicU64::new(0));
    let cpu_before = cpu_seconds(subject.pid)?;
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (connector, url, done) = (connector.clone(), url.clone(), done.clone());
        tasks.spawn(async move {
            while Instant::now() < deadline {
                request(&connector, addr, &url, body).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(subject.pid)? - cpu_before;
    let requests = done.load(Ordering::Relaxed) as f64;
    // /proc counts CPU in ticks of 10 ms: a run shorter than one reads 0.
    Ok((requests / elapsed, requests / cpu.max(0.01)))
}

/// One request on a new connection; the whole page must arrive.
async fn request(
    connector: &TlsConnector,
    addr: SocketAddr,
    url: &str,
    body: &str,
) -> anyhow::Result<()> {
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
            response.starts_with(b"20 ") && response.ends_with(body.as_bytes()),
            "unexpected response: {:?}",
            String::from_utf8_lossy(&response[..response.len().min(80)])
        );
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .context("request timed out")?
}
