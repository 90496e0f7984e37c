//! `tessera fleet bench`: what fleet mode costs. Shared rate-limit decisions
//! per second from one server (every decision a script call on one
//! multiplexed connection, many in flight), their latency, and the same
//! script driven by `redis-benchmark` in the same run: the store's own
//! ceiling. Then the store's memory per tracked client and per replay entry.
//! Rounds alternate between the two so that drift on a shared machine hits both.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use tessera_fleet::{
    FleetRate, FleetReplay, LocalOptions, LocalRedis, ReplayKind, Store, StoreConfig,
};
use tessera_guard::{Limiter, LimiterConfig, SharedRate};

#[derive(Clone, Copy, Debug, Args)]
pub(crate) struct BenchArgs {
    /// Decisions per round.
    #[arg(long, default_value_t = 100_000)]
    decisions: u64,
    /// Decisions in flight at once (ours: tasks on one connection; redis-benchmark: connections).
    #[arg(long, default_value_t = 64)]
    concurrency: u64,
    /// Distinct clients the decisions spread over.
    #[arg(long, default_value_t = 100_000)]
    clients: u32,
    /// Rounds of each side, alternating.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Entries written to measure the store's memory per entry.
    #[arg(long, default_value_t = 100_000)]
    entries: u32,
    /// Pin redis-server to this CPU and this process to the others (needs taskset).
    #[arg(long)]
    pin: Option<usize>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// GCRA settings of the benchmark: 10 a second, a burst of 100 (most decisions allowed).
const RATE: f64 = 10.0;
const BURST: u32 = 100;

/// One round of ours: decisions per second, latency percentiles, CPU seconds.
struct Round {
    per_s: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_s: f64,
    over_budget: u64,
}

pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.decisions >= 1 && args.concurrency >= 1 && args.clients >= 1,
        "counts must be at least 1"
    );
    anyhow::ensure!(
        LocalRedis::installed(),
        "the bench needs redis-server (apt install redis-server)"
    );
    let redis = LocalRedis::start_with(LocalOptions {
        cpu: args.pin,
        ..LocalOptions::default()
    })?;
    if let Some(cpu) = args.pin {
        crate::benches::pin_self_away_from(cpu)?;
    }
    let runtime = crate::runtime()?;
    let limiter = Limiter::new(&LimiterConfig {
        rate: RATE,
        burst: BURST,
        ..LimiterConfig::default()
    })?;
    let (interval, tolerance) = limiter.gcra();
    let store = Arc::new(Store::open(&StoreConfig::new(redis.url()))?);
    let rate = Arc::new(FleetRate::new(store.clone()));
    // Loads the script (and the fleet key) before anything is timed.
    let _verdict = runtime
        .block_on(rate.check(
            limiter.key(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            interval,
            tolerance,
        ))
        .map_err(|_| anyhow::anyhow!("the store did not answer"))?;
    let limiter = Arc::new(limiter);
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..args.rounds {
        ours.push(runtime.block_on(our_round(args, &rate, &limiter))?);
        theirs.push(redis_benchmark(
            args,
            &redis,
            rate.script_sha(),
            interval,
            tolerance,
        )?);
    }
    // Latency a decision adds, one at a time (no queueing behind others).
    let alone = BenchArgs {
        decisions: args.decisions.min(10_000),
        concurrency: 1,
        ..*args
    };
    let single = runtime.block_on(our_round(&alone, &rate, &limiter))?;
    let memory = runtime.block_on(memory_per_entry(&store, &rate, &limiter, args.entries))?;
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let ours_per_s = median(ours.iter().map(|r| r.per_s).collect());
    let theirs_per_s = median(theirs.iter().map(|t| t.0).collect());
    let result = serde_json::json!({
        "decisions_per_s": ours_per_s,
        "decisions_per_cpu_s": median(ours.iter().map(|r| args.decisions as f64 / r.cpu_s.max(1e-9)).collect()),
        "p50_us": median(ours.iter().map(|r| r.p50_us).collect()),
        "p99_us": median(ours.iter().map(|r| r.p99_us).collect()),
        "single_p50_us": single.p50_us,
        "single_p99_us": single.p99_us,
        "over_budget": ours.iter().map(|r| r.over_budget).sum::<u64>(),
        "redis_benchmark_per_s": theirs_per_s,
        "redis_benchmark_p50_us": median(theirs.iter().map(|t| t.1).collect()),
        "redis_benchmark_p99_us": median(theirs.iter().map(|t| t.2).collect()),
        "ratio": ours_per_s / theirs_per_s,
        "bytes_per_tracked_client": memory.0,
        "bytes_per_replay_entry": memory.1,
        "rounds": ours.iter().zip(&theirs).map(|(o, t)| serde_json::json!([o.per_s, t.0])).collect::<Vec<_>>(),
    });
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{result}")?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "shared rate-limit decisions, {} per round, {} in flight, {} clients, {} rounds (median)",
        args.decisions, args.concurrency, args.clients, args.rounds
    )?;
    writeln!(
        out,
        "{:<26} {:>14} {:>16} {:>7}",
        "", "tessera", "redis-benchmark", "ratio"
    )?;
    writeln!(
        out,
        "{:<26} {:>14.0} {:>16.0} {:>6.2}x",
        "decisions/s",
        ours_per_s,
        theirs_per_s,
        ours_per_s / theirs_per_s
    )?;
    writeln!(
        out,
        "{:<26} {:>14.0} {:>16.0} {:>7}",
        "p50 latency (µs)",
        result["p50_us"].as_f64().unwrap_or(0.0),
        result["redis_benchmark_p50_us"].as_f64().unwrap_or(0.0),
        ""
    )?;
    writeln!(
        out,
        "{:<26} {:>14.0} {:>16.0} {:>7}",
        "p99 latency (µs)",
        result["p99_us"].as_f64().unwrap_or(0.0),
        result["redis_benchmark_p99_us"].as_f64().unwrap_or(0.0),
        ""
    )?;
    writeln!(
        out,
        "{:<26} {:>14.0}",
        "p50 one in flight (µs)", single.p50_us
    )?;
    writeln!(
        out,
        "{:<26} {:>14.0}",
        "p99 one in flight (µs)", single.p99_us
    )?;
    writeln!(
        out,
        "{:<26} {:>14.0}",
        "decisions per CPU-second",
        result["decisions_per_cpu_s"].as_f64().unwrap_or(0.0)
    )?;
    writeln!(
        out,
        "{:<26} {:>14}",
        "over the 50 ms budget",
        ours.iter().map(|r| r.over_budget).sum::<u64>()
    )?;
    writeln!(out, "{:<26} {:>14.0}", "bytes per tracked client", memory.0)?;
    writeln!(out, "{:<26} {:>14.0}", "bytes per replay entry", memory.1)?;
    Ok(ExitCode::SUCCESS)
}

/// `args.decisions` decisions from `concurrency` tasks sharing one store connection.
async fn our_round(
    args: &BenchArgs,
    rate: &Arc<FleetRate>,
    limiter: &Arc<Limiter>,
) -> anyhow::Result<Round> {
    let (interval, tolerance) = limiter.gcra();
    let per_task = args.decisions.div_ceil(args.concurrency);
    let cpu_before = crate::benches::process_cpu_seconds(std::process::id())?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..args.concurrency {
        let (rate, limiter, clients) = (rate.clone(), limiter.clone(), args.clients);
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(per_task as usize);
            let mut over_budget = 0u64;
            for i in 0..per_task {
                let client = ((task * per_task + i) % u64::from(clients)) as u32;
                let key = limiter.key(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | client)));
                let sent = Instant::now();
                if rate.check(key, interval, tolerance).await.is_err() {
                    over_budget += 1;
                }
                latencies.push(sent.elapsed().as_micros() as u32);
            }
            (latencies, over_budget)
        });
    }
    let mut latencies = Vec::new();
    let mut over_budget = 0;
    while let Some(done) = tasks.join_next().await {
        let (task_latencies, task_over) = done?;
        latencies.extend(task_latencies);
        over_budget += task_over;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_s = crate::benches::process_cpu_seconds(std::process::id())? - cpu_before;
    latencies.sort_unstable();
    let percentile = |p: f64| f64::from(latencies[((latencies.len() - 1) as f64 * p) as usize]);
    Ok(Round {
        per_s: latencies.len() as f64 / elapsed,
        p50_us: percentile(0.50),
        p99_us: percentile(0.99),
        cpu_s,
        over_budget,
    })
}

/// The same script from `redis-benchmark` (`concurrency` connections, 16
/// commands pipelined on each): (requests/s, p50 µs, p99 µs).
fn redis_benchmark(
    args: &BenchArgs,
    redis: &LocalRedis,
    sha: &str,
    interval: u64,
    tolerance: u64,
) -> anyhow::Result<(f64, f64, f64)> {
    let mut command = Command::new("redis-benchmark");
    command
        .args(["-h", "127.0.0.1", "-p", &redis.port().to_string()])
        .args([
            "-n",
            &args.decisions.to_string(),
            "-c",
            &args.concurrency.to_string(),
            "-P",
            "16",
        ])
        .args([
            "-r",
            &args.clients.to_string(),
            "--csv",
            "EVALSHA",
            sha,
            "1",
        ])
        .arg("tessera:rl:{bench:__rand_int__}:32")
        .args([interval.to_string(), tolerance.to_string()]);
    let output = command
        .output()
        .context("running redis-benchmark (Debian: redis-tools)")?;
    anyhow::ensure!(
        output.status.success(),
        "redis-benchmark failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    let row = text
        .lines()
        .find(|line| line.starts_with("\"EVALSHA"))
        .with_context(|| format!("no result in {text:?}"))?;
    let fields: Vec<f64> = row
        .split("\",\"")
        .skip(1)
        .map(|f| f.trim_matches('"').parse().unwrap_or(0.0))
        .collect();
    anyhow::ensure!(fields.len() >= 6, "unexpected redis-benchmark row {row:?}");
    Ok((fields[0], fields[3] * 1e3, fields[5] * 1e3))
}

/// The store's memory per rate-limit key and per replay entry: `used_memory`
/// before and after writing `entries` of each, divided.
async fn memory_per_entry(
    store: &Arc<Store>,
    rate: &FleetRate,
    limiter: &Limiter,
    entries: u32,
) -> anyhow::Result<(f64, f64)> {
    let used = || async {
        tessera_fleet::status(store, Duration::from_secs(10))
            .await
            .map(|s| s.used_memory as f64)
    };
    // A slow rate keeps every key alive while it is measured.
    let slow = Limiter::new(&LimiterConfig {
        rate: 1.0 / 3600.0,
        burst: 2,
        ..LimiterConfig::default()
    })?;
    let (interval, tolerance) = slow.gcra();
    let before = used().await?;
    for client in 0..entries {
        let key = limiter.key(IpAddr::V4(Ipv4Addr::from(0x6400_0000 | client)));
        let _verdict = rate
            .check(key, interval, tolerance)
            .await
            .map_err(|_| anyhow::anyhow!("the store did not answer"))?;
    }
    let clients = (used().await? - before) / f64::from(entries);
    let replay = FleetReplay::new(store.clone());
    let before = used().await?;
    for entry in 0..entries {
        replay
            .first_use(
                ReplayKind::TrustNonce,
                &entry.to_le_bytes(),
                Duration::from_secs(3600),
            )
            .await?;
    }
    let replays = (used().await? - before) / f64::from(entries);
    Ok((clients, replays))
}
