//! `tessera tls bench`: mutual-TLS handshakes per second on loopback, and TOFU
//! checks per second on a large store next to the per-check commit that
//! tlacacoca and nauyaca do, measured in the same run.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use tessera_tls::rustls::client::Resumption;
use tessera_tls::tofu::HostKey;
use tessera_tls::{
    client_config, server_config, server_name, CertificateInfo, ClientAuth, DevPki, PkiOptions,
    ServerAuth, TofuStore,
};
use time::OffsetDateTime;

use crate::benches::rate;

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Concurrent handshaking clients.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Hosts in the TOFU store (max 1,000,000).
    #[arg(long, default_value_t = 100_000)]
    tofu_hosts: u32,
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
        (1..=10_000).contains(&args.concurrency),
        "--concurrency must be 1-10000"
    );
    anyhow::ensure!(
        (1..=1_000_000).contains(&args.tofu_hosts),
        "--tofu-hosts must be 1-1000000"
    );
    let duration = Duration::from_secs_f64(args.seconds);

    let handshakes =
        crate::runtime()?.block_on(handshakes_per_second(duration, args.concurrency))?;
    let dir = tempfile::tempdir()?;
    let (ours, baseline) = tofu_checks_per_second(dir.path(), args.tofu_hosts, duration)?;

    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(
            out,
            "{}",
            serde_json::json!({
                "mtls_handshakes_per_s": handshakes,
                "concurrency": args.concurrency,
                "tofu_hosts": args.tofu_hosts,
                "tofu_checks_per_s": ours,
                "tofu_baseline_commit_per_check_per_s": baseline,
                "tofu_ratio": ours / baseline,
            })
        )?;
    } else {
        writeln!(out, "{:<58} {:>14}", "measurement", "per second")?;
        writeln!(
            out,
            "{:<58} {:>14.0}",
            format!(
                "mTLS handshakes, ECDSA P-256, full, {} clients",
                args.concurrency
            ),
            handshakes
        )?;
        writeln!(
            out,
            "{:<58} {:>14.0}",
            format!("TOFU check (match), {} hosts", args.tofu_hosts),
            ours
        )?;
        writeln!(
            out,
            "{:<58} {:>14.0}",
            "baseline: open + SELECT + UPDATE + commit per check", baseline
        )?;
        writeln!(out, "TOFU ratio: {:.1}x", ours / baseline)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Full (non-resumed) mutual-TLS sessions per second: handshake, one line each way, close.
async fn handshakes_per_second(duration: Duration, concurrency: usize) -> anyhow::Result<f64> {
    let pki = DevPki::generate(&PkiOptions::default())?;
    let server = server_config(&pki.server.identity()?, ClientAuth::Required(pki.roots()?))?;
    let (address, server_task) = crate::demos::loopback::spawn_server(server).await?;
    let mut client = (*client_config(
        ServerAuth::Roots(pki.roots()?),
        Some(&pki.client.identity()?),
    )?)
    .clone();
    client.resumption = Resumption::disabled();
    let client = Arc::new(client);
    let name = server_name("localhost")?;

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (stop, done, failed, client, name) = (
                stop.clone(),
                done.clone(),
                failed.clone(),
                client.clone(),
                name.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match crate::demos::loopback::request(
                        address,
                        client.clone(),
                        name.clone(),
                        "x",
                    )
                    .await
                    {
                        Ok(_) => done.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    server_task.abort();
    let failures = failed.load(Ordering::Relaxed);
    anyhow::ensure!(
        failures == 0,
        "{failures} sessions failed during the benchmark"
    );
    Ok(done.load(Ordering::Relaxed) as f64 / elapsed)
}

/// TOFU match checks per second: ours, and the commit-per-check baseline.
fn tofu_checks_per_second(
    dir: &Path,
    hosts: u32,
    duration: Duration,
) -> anyhow::Result<(f64, f64)> {
    let now = OffsetDateTime::now_utc();
    let pki = DevPki::generate(&PkiOptions::default())?;
    let presented = CertificateInfo::parse(pki.server.der().as_ref(), "bench")?;
    let fingerprint = presented.fingerprint();
    let host = |i: u32| format!("host{i}.example");

    let store = TofuStore::open(&dir.join("tofu.sqlite3"))?;
    let entries: Vec<_> = (0..hosts)
        .map(|i| {
            serde_json::json!({
                "host": host(i), "port": 1965, "fingerprint": fingerprint.to_string(),
                "first_seen": "2026-01-01T00:00:00Z",
                "last_seen": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                "not_after": null, "trusted_by": "first-use",
            })
        })
        .collect();
    let export =
        serde_json::json!({"format": "tessera-tofu", "version": 1, "hosts": entries}).to_string();
    store
        .import_json(&export, tessera_tls::tofu::ImportMode::KeepExisting)
        .context("filling the TOFU store")?;
    let keys: Vec<HostKey> = (0..hosts)
        .map(|i| HostKey::new(&host(i), 1965))
        .collect::<Result<_, _>>()?;

    let mut next = Xorshift(0x9E37_79B9_7F4A_7C15);
    let ours = rate(duration, || {
        let key = &keys[(next.next() % u64::from(hosts)) as usize];
        let verdict = store.verify_or_trust(key, &presented, now)?;
        anyhow::ensure!(
            matches!(verdict, tessera_tls::tofu::Verdict::Match { .. }),
            "unexpected {verdict:?}"
        );
        Ok(())
    })?;

    // The reference design: a new connection per operation, SELECT, then an
    // UPDATE of last_seen committed on every match, default journal.
    let baseline_path = dir.join("baseline.db");
    {
        let mut db = rusqlite::Connection::open(&baseline_path)?;
        db.execute_batch(
            "CREATE TABLE known_hosts (hostname TEXT NOT NULL, port INTEGER NOT NULL, fingerprint TEXT NOT NULL,
             first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, PRIMARY KEY (hostname, port))",
        )?;
        let tx = db.transaction()?;
        for i in 0..hosts {
            tx.execute(
                "INSERT INTO known_hosts VALUES (?1, 1965, ?2, '2026-01-01', '2026-01-01')",
                rusqlite::params![host(i), fingerprint.to_string()],
            )?;
        }
        tx.commit()?;
    }
    let presented_text = fingerprint.to_string();
    let baseline = rate(duration, || {
        let name = host((next.next() % u64::from(hosts)) as u32);
        let db = rusqlite::Connection::open(&baseline_path)?;
        let stored: String = db.query_row(
            "SELECT fingerprint FROM known_hosts WHERE hostname = ?1 AND port = 1965",
            [&name],
            |row| row.get(0),
        )?;
        anyhow::ensure!(stored == presented_text, "baseline mismatch");
        db.execute(
            "UPDATE known_hosts SET last_seen = ?1 WHERE hostname = ?2 AND port = 1965",
            rusqlite::params![now.unix_timestamp().to_string(), name],
        )?;
        Ok(())
    })?;
    Ok((ours, baseline))
}

/// A tiny deterministic generator so runs pick the same hosts.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
