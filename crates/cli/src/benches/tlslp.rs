//! `tessera tlslp bench`: complete mutual-TLS sessions per second on loopback
//! (client and server in this process), and the server's memory per session
//! held waiting in WORK (server in a child process, so only its RSS counts).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::benches::KillOnDrop;
use clap::Args;
use tessera_tls::rustls::client::Resumption;
use tessera_tls::rustls::pki_types::ServerName;
use tessera_tls::tokio_rustls::TlsConnector;
use tessera_tls::{client_config, server_config, ClientAuth, DevPki, PkiOptions, ServerAuth};
use tessera_tlslp::driver::{connect_and_run, serve, ClientOptions, ServerOptions, SessionEnd};
use tessera_tlslp::logfile::NoLog;
use tessera_tlslp::{Profile, Sequence, SessionConfig, DEFAULT_TOKEN};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as AsyncBufReader};

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Seconds the sessions/s measurement runs.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Clients running sessions at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Sessions held open in WORK for the memory measurement (0 skips it).
    #[arg(long, default_value_t = 10_000)]
    hold: usize,
    /// Allow TLS session resumption (off: every session is a full handshake, as the reference client).
    #[arg(long)]
    resume: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.seconds > 0.0 && args.seconds <= 600.0,
        "--seconds must be in (0, 600]"
    );
    anyhow::ensure!(
        (1..=4096).contains(&args.concurrency),
        "--concurrency must be 1-4096"
    );
    anyhow::ensure!(args.hold <= 50_000, "--hold must be at most 50000");
    let runtime = crate::runtime()?;
    let (sessions_per_s, done) = runtime.block_on(sessions_per_second(args))?;
    let memory = if args.hold > 0 {
        Some(runtime.block_on(memory_per_session(args.hold))?)
    } else {
        None
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(
            out,
            "{}",
            serde_json::json!({
                "sessions_per_s": sessions_per_s,
                "sessions": done,
                "concurrency": args.concurrency,
                "resumption": args.resume,
                "held_sessions": memory.map(|m| m.0),
                "server_rss_kib_per_session": memory.map(|m| m.1),
                "server_rss_kib_idle": memory.map(|m| m.2),
                "server_rss_kib_loaded": memory.map(|m| m.3),
            })
        )?;
    } else {
        writeln!(
            out,
            "complete mTLS sessions (HELLO, WORK n_bits 1, 8 bodies, DONE; {}): {sessions_per_s:.0}/s with {} clients ({done} sessions)",
            if args.resume { "resumption allowed" } else { "full handshakes" },
            args.concurrency
        )?;
        if let Some((held, per_session, idle, loaded)) = memory {
            writeln!(out, "server memory: {held} sessions waiting in WORK; RSS {idle} KiB idle, {loaded} KiB loaded: {per_session:.1} KiB per session")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn sessions_per_second(args: &BenchArgs) -> anyhow::Result<(f64, u64)> {
    let pki = DevPki::generate(&PkiOptions::default())?;
    let tls = server_config(&pki.server.identity()?, ClientAuth::Required(pki.roots()?))?;
    let session = Arc::new(SessionConfig {
        token: DEFAULT_TOKEN.into(),
        random_string: "LGTk".into(),
        n_bits: 1,
        sequence: Sequence::Tutorial,
        timeouts: tessera_tlslp::Timeouts::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let mut server_options = ServerOptions::new(tls, session);
    server_options.max_per_address = args.concurrency * 2;
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        server_options,
        Arc::new(NoLog),
        None,
        async {
            let _ = stopped.await;
        },
    ));
    let mut client_tls = (*client_config(
        ServerAuth::Roots(pki.roots()?),
        Some(&pki.client.identity()?),
    )?)
    .clone();
    if !args.resume {
        client_tls.resumption = Resumption::disabled();
    }
    let options = ClientOptions {
        host: "localhost".into(),
        ports: vec![port],
        tls: Arc::new(client_tls),
        read_timeout: Duration::from_secs(30),
        work_timeout: Duration::from_secs(30),
        threads: Some(1),
        profile: Arc::new(Profile::default()),
        work_counter: None,
        print_stdout: false,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (options, stop, done, failed) =
                (options.clone(), stop.clone(), done.clone(), failed.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match connect_and_run(&options, &NoLog).await {
                        Ok(report) if report.end == SessionEnd::Done => {
                            done.fetch_add(1, Ordering::Relaxed)
                        }
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = stop_server.send(());
    let _ = server.await;
    let failures = failed.load(Ordering::Relaxed);
    anyhow::ensure!(
        failures == 0,
        "{failures} sessions failed during the benchmark"
    );
    let done = done.load(Ordering::Relaxed);
    Ok((done as f64 / elapsed, done))
}

/// (held, KiB per session, RSS idle, RSS loaded) of a child `tessera tlslp server`.
async fn memory_per_session(hold: usize) -> anyhow::Result<(usize, f64, u64, u64)> {
    // Both processes hold `hold` sockets; raise the soft limit as far as the hard one allows.
    let wanted = hold as u64 + 1024;
    let granted =
        rlimit::increase_nofile_limit(wanted).context("raising the file-descriptor limit")?;
    anyhow::ensure!(
        granted >= wanted,
        "file-descriptor limit {granted} is below the {wanted} needed; lower --hold"
    );
    let dir = tempfile::tempdir()?;
    DevPki::generate(&PkiOptions::default())?.write(dir.path(), false)?;
    let p = |name: &str| dir.path().join(name);
    let child = Command::new(std::env::current_exe()?)
        .args([
            "tlslp",
            "server",
            "--host",
            "localhost",
            "--port",
            "0",
            "--n_bits",
            "60",
            "--work-timeout",
            "600",
        ])
        .arg("--max-connections")
        .arg((hold + 16).to_string())
        .arg("--max-per-ip")
        .arg((hold + 16).to_string())
        .arg("--log-level")
        .arg("CRITICAL")
        .arg("--log-dir")
        .arg(dir.path().join("logs"))
        .arg("--log-key-file")
        .arg(dir.path().join("log.key"))
        .arg("--no-rate-limit")
        .arg("--server-cert")
        .arg(p("server-cert.pem"))
        .arg("--server-key")
        .arg(p("server-key.pem"))
        .arg("--ca-cert")
        .arg(p("ca_cert.pem"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the server")?;
    let mut child = KillOnDrop(child);
    let pid = child.0.id();
    let mut first = String::new();
    BufReader::new(child.0.stdout.take().context("server stdout")?).read_line(&mut first)?;
    let port: u16 = first
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .context("server did not print its port")?;
    let idle = rss_kib(pid)?;

    let pki_roots = tessera_tls::load_roots(&p("ca_cert.pem"))?;
    let identity = tessera_tls::Identity::load(&p("client_cert.pem"), &p("ec_private_key.pem"))?;
    let mut client_tls = (*client_config(ServerAuth::Roots(pki_roots), Some(&identity))?).clone();
    client_tls.resumption = Resumption::disabled();
    let connector = TlsConnector::from(Arc::new(client_tls));
    let limit = Arc::new(tokio::sync::Semaphore::new(128));
    let mut opening = Vec::with_capacity(hold);
    for _ in 0..hold {
        let (connector, limit) = (connector.clone(), limit.clone());
        opening.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await.ok()?;
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()?;
            let name = ServerName::try_from("localhost").ok()?;
            let tls = tokio::time::timeout(Duration::from_secs(30), connector.connect(name, tcp))
                .await
                .ok()?
                .ok()?;
            let mut stream = AsyncBufReader::new(tls);
            let mut line = String::new();
            stream.read_line(&mut line).await.ok()?;
            stream.get_mut().write_all(b"HELLOBACK\n").await.ok()?;
            stream.get_mut().flush().await.ok()?;
            line.clear();
            stream.read_line(&mut line).await.ok()?;
            line.starts_with("WORK ").then_some(stream)
        }));
    }
    let mut held = Vec::with_capacity(hold);
    for task in opening {
        if let Some(stream) = task.await? {
            held.push(stream);
        }
    }
    anyhow::ensure!(
        held.len() == hold,
        "only {} of {hold} sessions reached WORK",
        held.len()
    );
    let loaded = rss_kib(pid)?;
    let per_session = loaded.saturating_sub(idle) as f64 / hold as f64;
    drop(held);
    Ok((hold, per_session, idle, loaded))
}

/// Resident set size of `pid` in KiB (Linux `/proc`).
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("reading /proc (Linux only)")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .context("no VmRSS in /proc status")
}
