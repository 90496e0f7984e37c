//! `tessera demo`: the TLS line protocol with zero configuration. A dev PKI in
//! a temporary directory, `tlslp` served with mutual TLS on 127.0.0.1 on a
//! free port, several clients at once solving the proof of work with progress
//! bars, a summary table, and two hostile clients that must be refused. Exits
//! 0 only if every expected outcome happened.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tessera_tls::rustls::pki_types::ServerName;
use tessera_tls::rustls::ClientConfig;
use tessera_tls::tokio_rustls::TlsConnector;
use tessera_tls::{client_config, server_config, ClientAuth, DevPki, PkiOptions, ServerAuth};
use tessera_tlslp::driver::{
    connect_and_run, serve, ClientOptions, ClientReport, ServerOptions, SessionEnd,
};
use tessera_tlslp::logfile::NoLog;
use tessera_tlslp::{Profile, Sequence, SessionConfig, DEFAULT_TOKEN};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Well-behaved clients run at once.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// WORK difficulty (trailing zero bits); 26 takes a few seconds on 2 cores.
    #[arg(long = "bits", visible_alias = "n_bits", default_value_t = 26, value_parser = clap::value_parser!(u32).range(0..=32))]
    n_bits: u32,
    /// Instead: fleet mode. Starts redis-server on a free loopback port and
    /// three servers that share it, and shows a fleet-wide rate limit, a
    /// replay refused by another server and a revocation closing connections
    /// on all three; exits 0 only if all of that happened.
    #[arg(long)]
    fleet: bool,
}

/// Each network step of the demo ends by then.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    if args.fleet {
        return crate::demos::fleet::run();
    }
    anyhow::ensure!((1..=64).contains(&args.clients), "--clients must be 1-64");
    crate::runtime()?.block_on(demo(args))
}

async fn demo(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut out = std::io::stdout().lock();
    let workdir = tempfile::tempdir().context("creating a temporary directory")?;
    let pki = DevPki::generate(&PkiOptions::default())?;
    pki.write(workdir.path(), false)?;
    writeln!(
        out,
        "dev PKI (ECDSA P-256, tlslp layout) in {}",
        workdir.path().display()
    )?;

    let tls = server_config(&pki.server.identity()?, ClientAuth::Required(pki.roots()?))?;
    let session = Arc::new(SessionConfig {
        token: DEFAULT_TOKEN.to_owned(),
        random_string: "LGTk".to_owned(),
        n_bits: i64::from(args.n_bits),
        sequence: Sequence::Tutorial,
        timeouts: tessera_tlslp::Timeouts::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        ServerOptions::new(tls, session),
        Arc::new(NoLog),
        None,
        async {
            let _ = stopped.await;
        },
    ));
    writeln!(
        out,
        "tlslp server, mutual TLS, on {address}; WORK n_bits {}; {} clients at once\n",
        args.n_bits, args.clients
    )?;
    drop(out);

    let client_tls = client_config(
        ServerAuth::Roots(pki.roots()?),
        Some(&pki.client.identity()?),
    )?;
    let base = ClientOptions {
        host: "localhost".to_owned(),
        ports: vec![address.port()],
        tls: client_tls.clone(),
        read_timeout: STEP_TIMEOUT,
        work_timeout: STEP_TIMEOUT,
        threads: None,
        profile: Arc::new(Profile::default()),
        work_counter: None,
        print_stdout: false,
    };
    let reports = run_clients(&base, args).await?;

    // Hostile 1: a correct client certificate, a correct proof of work, a wrong checksum.
    let wrong_checksum = wrong_checksum_session(address, client_tls, args.n_bits).await;
    // Hostile 2: no client certificate at all.
    let mut anonymous = base.clone();
    anonymous.tls = client_config(ServerAuth::Roots(pki.roots()?), None)?;
    let no_certificate = connect_and_run(&anonymous, &NoLog).await;

    let _ = stop.send(());
    let report = tokio::time::timeout(STEP_TIMEOUT, server)
        .await
        .context("server did not stop")???;

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<8} {:<9} {:<8} {:<24} {:>14} {:>9} {:>10} {:>11}",
        "client",
        "outcome",
        "tls",
        "cipher suite",
        "PoW candidates",
        "PoW s",
        "PoW M/s",
        "session s"
    )?;
    let mut ok = true;
    for (i, result) in reports.iter().enumerate() {
        match result {
            Ok(report) => {
                let (candidates, work_time) = report.work.unwrap_or((0, Duration::ZERO));
                let outcome = match &report.end {
                    SessionEnd::Done => "DONE/OK".to_owned(),
                    SessionEnd::ServerFail(text) => format!("FAIL {text}"),
                    SessionEnd::Error(error) => format!("error: {error}"),
                };
                ok &= report.end == SessionEnd::Done;
                writeln!(
                    out,
                    "{:<8} {:<9} {:<8} {:<24} {:>14} {:>9.2} {:>10.1} {:>11.2}",
                    i + 1,
                    outcome,
                    report.handshake.protocol,
                    report.handshake.cipher_suite,
                    candidates,
                    work_time.as_secs_f64(),
                    candidates as f64 / work_time.as_secs_f64().max(1e-9) / 1e6,
                    report.duration.as_secs_f64()
                )?;
            }
            Err(error) => {
                ok = false;
                writeln!(out, "{:<8} error: {error}", i + 1)?;
            }
        }
    }
    writeln!(out)?;
    let checksum_ok = wrong_checksum.as_deref() == Ok("FAIL Invalid checksum received.");
    writeln!(
        out,
        "hostile: wrong checksum        expected the FAIL line   {}  ({})",
        verdict(checksum_ok),
        match &wrong_checksum {
            Ok(line) => format!("got {line:?}"),
            Err(error) => format!("error: {error}"),
        }
    )?;
    let refused = match &no_certificate {
        Ok(report) => matches!(report.end, SessionEnd::Error(_)),
        Err(_) => true,
    };
    writeln!(
        out,
        "hostile: no client certificate expected handshake refusal {}  ({})",
        verdict(refused),
        match &no_certificate {
            Ok(ClientReport {
                end: SessionEnd::Error(error),
                ..
            }) => error.clone(),
            Ok(report) => format!("{:?}", report.end),
            Err(error) => error.to_string(),
        }
    )?;
    writeln!(
        out,
        "\nserver: {} done, {} failed, {} refused at the handshake, {} aborted",
        report.done, report.failed, report.refused, report.aborted
    )?;
    let server_ok = report.done == args.clients as u64
        && report.failed == 1
        && report.refused == 1
        && report.aborted == 0;
    ok &= checksum_ok && refused && server_ok;
    writeln!(
        out,
        "{} in {:.1} s",
        if ok {
            "every expected outcome happened"
        } else {
            "UNEXPECTED OUTCOMES"
        },
        started.elapsed().as_secs_f64()
    )?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs the clients at once with one progress bar each (on a terminal).
async fn run_clients(
    base: &ClientOptions,
    args: &DemoArgs,
) -> anyhow::Result<Vec<Result<ClientReport, tessera_tlslp::Error>>> {
    let multi = MultiProgress::with_draw_target(if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let style = ProgressStyle::with_template("{spinner} {prefix:<9} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let expected = 2f64.powi(args.n_bits as i32);
    // Rows aligned: every prefix as wide as the last client's.
    let width = args.clients.to_string().len();
    let mut tasks = Vec::new();
    for i in 0..args.clients {
        let counter = Arc::new(AtomicU64::new(0));
        let bar = multi.add(
            ProgressBar::new_spinner()
                .with_style(style.clone())
                .with_prefix(format!("client {:>width$}", i + 1)),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        let mut options = base.clone();
        options.work_counter = Some(counter.clone());
        let task = tokio::spawn(async move { connect_and_run(&options, &NoLog).await });
        tasks.push((task, counter, bar));
    }
    // Every bar moves at once: each tick updates all running clients and
    // finishes the bars of those that ended.
    let mut results: Vec<Option<Result<ClientReport, tessera_tlslp::Error>>> =
        (0..tasks.len()).map(|_| None).collect();
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    while results.iter().any(Option::is_none) {
        ticker.tick().await;
        for ((task, counter, bar), slot) in tasks.iter_mut().zip(results.iter_mut()) {
            if slot.is_some() {
                continue;
            }
            if task.is_finished() {
                let result = task.await.context("client task")?;
                bar.finish_with_message(match &result {
                    Ok(report) => format!("{:?}", report.end),
                    Err(error) => error.to_string(),
                });
                *slot = Some(result);
            } else {
                let tried = counter.load(Ordering::Relaxed) as f64;
                bar.set_message(format!(
                    "proof of work: {tried:>9.2e} candidates tried, {expected:.2e} expected"
                ));
            }
        }
    }
    let results = results.into_iter().flatten().collect();
    Ok(results)
}

/// Writes `bytes` and flushes (a TLS stream buffers like a BufWriter).
async fn send_line(
    stream: &mut (impl tokio::io::AsyncWrite + Unpin),
    bytes: &[u8],
) -> Result<(), String> {
    stream.write_all(bytes).await.map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())
}

/// A session that answers correctly up to the first body command and then
/// sends a wrong checksum; returns the server's next line.
async fn wrong_checksum_session(
    address: std::net::SocketAddr,
    tls: Arc<ClientConfig>,
    n_bits: u32,
) -> Result<String, String> {
    let work = async {
        let tcp = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| e.to_string())?;
        let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
        let stream = TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let mut stream = BufReader::new(stream);
        let mut line = String::new();
        stream
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        send_line(stream.get_mut(), b"HELLOBACK\n").await?;
        line.clear();
        stream
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        let puzzle =
            tessera_pow::TlslpPuzzle::new(DEFAULT_TOKEN, n_bits).map_err(|e| e.to_string())?;
        let solution =
            tessera_pow::solve_tlslp_async(puzzle, tessera_pow::SearchOptions::default())
                .await
                .map_err(|e| e.to_string())?;
        send_line(
            stream.get_mut(),
            format!("{}\n", solution.suffix).as_bytes(),
        )
        .await?;
        line.clear();
        stream
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        send_line(
            stream.get_mut(),
            format!("{} Sample Person\n", "0".repeat(64)).as_bytes(),
        )
        .await?;
        line.clear();
        stream
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        Ok(line.trim_end().to_owned())
    };
    tokio::time::timeout(STEP_TIMEOUT, work)
        .await
        .map_err(|_| "timed out".to_owned())?
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "FAILED"
    }
}
