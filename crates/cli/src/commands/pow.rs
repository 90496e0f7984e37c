//! `tessera pow`: solve and verify tlslp WORK puzzles, mint and verify Hashcash
//! stamps, and measure the kernels against the machine's compression limit.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use tessera_pow::hashcash::{self, HashcashPolicy};
use tessera_pow::{BenchTarget, Kernel, SearchOptions, TlslpPuzzle};
use time::OffsetDateTime;

#[derive(Debug, Subcommand)]
pub(crate) enum PowCommand {
    /// Find a suffix such that SHA-256(token + suffix) ends in N zero bits; prints the suffix.
    ///
    /// Uses every core and the fastest kernel this CPU has. Expected work is
    /// 2^N candidates (p99: 4.6 × 2^N); a progress bar shows candidates tried on a TTY.
    Solve(SolveArgs),
    /// Check a tlslp suffix: exit 0 if SHA-256(token + suffix) ends in N zero bits, 1 if not.
    Verify {
        /// The WORK token.
        #[arg(long)]
        token: String,
        /// Required trailing zero bits (0-64).
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=64))]
        bits: u32,
        /// The suffix to check.
        suffix: String,
    },
    /// Hashcash v1 stamps, compatible with the Debian `hashcash` tool.
    #[command(subcommand)]
    Hashcash(HashcashCommand),
    /// Measure each kernel's candidates/s next to the raw SHA-256 compression rate.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub(crate) struct SolveArgs {
    /// The WORK token (1-128 characters of [A-Za-z0-9_-]).
    #[arg(long)]
    token: String,
    /// Required trailing zero bits (0-64).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=64))]
    bits: u32,
    #[command(flatten)]
    search: SearchArgs,
}

#[derive(Debug, Args)]
pub(crate) struct SearchArgs {
    /// Worker threads, 1-1024. Default: every core.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// Kernel: portable, avx2 or avx512. Default: the fastest available.
    #[arg(long)]
    kernel: Option<Kernel>,
    /// Give up after this many seconds (exit 1).
    #[arg(long, value_name = "SECONDS", value_parser = crate::args::seconds)]
    timeout: Option<Duration>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum HashcashCommand {
    /// Mint a stamp for RESOURCE worth --bits; prints the stamp alone.
    Mint {
        /// Zero bits of the stamp, 0-60 (the CLI's default is 20).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=60))]
        bits: u32,
        /// What the stamp is for (e-mail address, host name, service id); lower-cased.
        resource: String,
        #[command(flatten)]
        search: SearchArgs,
    },
    /// Verify a stamp with the CLI's default rules (28-day expiry, 2-day grace).
    ///
    /// Exits 0 iff valid for --bits and --resource; otherwise 1 with the reason on stderr.
    Verify {
        /// Required zero bits, 0-160.
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=160))]
        bits: u32,
        /// Required resource (compared ignoring case).
        #[arg(long)]
        resource: String,
        /// The stamp.
        stamp: String,
        /// With a store, a stamp is spent once across the fleet: a second
        /// verification anywhere fails.
        #[command(flatten)]
        store: tessera_fleet::StoreArgs,
        /// Replay and revocation checks while the store does not answer in
        /// time: fail-closed (refuse) or fail-open (accept as if unseen).
        #[arg(long, value_name = "POLICY", default_value = "fail-closed", value_parser = tessera_trust::WhenUnknown::parse, requires = "url")]
        store_fallback: tessera_trust::WhenUnknown,
    },
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Steps of 65,536 candidates each kernel measurement runs.
    #[arg(long, default_value_t = 400)]
    steps: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(command: PowCommand) -> anyhow::Result<ExitCode> {
    match command {
        PowCommand::Solve(args) => solve(&args),
        PowCommand::Verify {
            token,
            bits,
            suffix,
        } => {
            let puzzle = TlslpPuzzle::new(&token, bits)?;
            if puzzle.verify(&suffix) {
                Ok(ExitCode::SUCCESS)
            } else {
                let _ = writeln!(
                    std::io::stderr(),
                    "tessera: invalid: SHA-256 has {} trailing zero bits, {bits} required",
                    tessera_pow::trailing_zero_bits(&tessera_pow::digest(&token, &suffix))
                );
                Ok(ExitCode::FAILURE)
            }
        }
        PowCommand::Hashcash(HashcashCommand::Mint {
            bits,
            resource,
            search,
        }) => {
            let options = search.options()?;
            let stamp = hashcash::mint(&resource, bits, OffsetDateTime::now_utc(), &options)?;
            writeln!(std::io::stdout(), "{stamp}")?;
            Ok(ExitCode::SUCCESS)
        }
        PowCommand::Hashcash(HashcashCommand::Verify {
            bits,
            resource,
            stamp,
            store,
            store_fallback,
        }) => {
            let now = OffsetDateTime::now_utc();
            let verified =
                match hashcash::verify(&stamp, &HashcashPolicy::new(bits, &resource), now) {
                    Ok(verified) => verified,
                    Err(error) => {
                        let _ = writeln!(std::io::stderr(), "tessera: {error}");
                        return Ok(ExitCode::FAILURE);
                    }
                };
            let Some(store) = store.open()? else {
                return Ok(ExitCode::SUCCESS);
            };
            // Spent until it would expire anyway (the CLI's rules always give an expiry).
            let ttl = verified
                .expires_at
                .map_or(time::Duration::days(30), |expires| expires - now);
            let ttl = Duration::try_from(ttl).unwrap_or(Duration::from_secs(1));
            let replay = tessera_fleet::FleetReplay::new(store.clone());
            let first = crate::runtime()?.block_on(replay.first_use(
                tessera_fleet::ReplayKind::HashcashStamp,
                verified.text.as_bytes(),
                ttl,
            ));
            match first {
                Ok(true) => Ok(ExitCode::SUCCESS),
                Ok(false) => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "tessera: invalid stamp: already spent (in the fleet's store)"
                    );
                    Ok(ExitCode::FAILURE)
                }
                Err(error) if store_fallback == tessera_trust::WhenUnknown::Accept => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "tessera: {}: {error}; accepted unchecked (--store-fallback fail-open)",
                        store.url()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "tessera: refused: {}: {error}; replay checks fail closed",
                        store.url()
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        PowCommand::Bench(args) => bench(&args),
    }
}

impl SearchArgs {
    fn options(&self) -> anyhow::Result<SearchOptions> {
        let mut options = SearchOptions::default();
        if let Some(threads) = self.threads {
            options.threads(usize::from(threads));
        }
        if let Some(kernel) = self.kernel {
            options.kernel(kernel)?;
        }
        if let Some(timeout) = self.timeout {
            options.timeout(timeout);
        }
        Ok(options)
    }
}

fn solve(args: &SolveArgs) -> anyhow::Result<ExitCode> {
    let puzzle = TlslpPuzzle::new(&args.token, args.bits)?;
    let options = args.search.options()?;
    let progress = options.progress();
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let started = Instant::now();
    let expected = puzzle.expected_work();
    let result = std::thread::scope(|scope| {
        if let Some(bar) = &bar {
            let progress = progress.clone();
            let (kernel, threads) = (options.selected_kernel(), options.thread_count());
            scope.spawn(move || {
                while !bar.is_finished() {
                    let tried = progress.load(Ordering::Relaxed) as f64;
                    let rate = tried / started.elapsed().as_secs_f64().max(1e-9);
                    bar.set_message(format!(
                        "{:.3e} candidates tried, {:.3e} expected, {:.1} M/s ({} × {} threads)",
                        tried,
                        expected,
                        rate / 1e6,
                        kernel,
                        threads
                    ));
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        let result = puzzle.solve(&options);
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        result
    });
    let solution = result.with_context(|| format!("solving {} bits", args.bits))?;
    writeln!(std::io::stdout(), "{}", solution.suffix)?;
    tracing::info!(
        candidates = solution.candidates,
        seconds = started.elapsed().as_secs_f64(),
        "solved"
    );
    Ok(ExitCode::SUCCESS)
}

fn bench(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    crate::args::require((1..=1_000_000).contains(&args.steps), || {
        "--steps must be 1-1000000".into()
    })?;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let calls = args.steps * 65_536 / 4;
    let compress = tessera_pow::compress256_rate(calls);
    let naive = tessera_pow::digest_per_candidate_rate(calls / 4);
    let mut rows = Vec::new();
    for kernel in Kernel::available() {
        for target in [BenchTarget::Tlslp, BenchTarget::Hashcash] {
            let steps = if kernel == Kernel::Portable {
                args.steps / 4
            } else {
                args.steps
            };
            let one = tessera_pow::kernel_rate(kernel, target, steps);
            let all = parallel_rate(kernel, target, steps, threads);
            rows.push((kernel, target, one, all));
        }
    }
    let cli_rate = hashcash_cli_rate();
    let best_hashcash = rows
        .iter()
        .filter(|row| row.1 == BenchTarget::Hashcash)
        .map(|row| (row.2, row.3))
        .fold((0.0f64, 0.0f64), |best, (one, all)| {
            (best.0.max(one), best.1.max(all))
        });
    let mut out = std::io::stdout().lock();
    if args.json {
        let kernels: Vec<_> = rows
            .iter()
            .map(|(kernel, target, one, all)| {
                serde_json::json!({
                    "kernel": kernel.to_string(),
                    "puzzle": format!("{target:?}").to_lowercase(),
                    "per_thread_per_s": one,
                    "threads": threads,
                    "all_threads_per_s": all,
                    "ratio_to_compress256": one / compress,
                })
            })
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::json!({
                "compress256_per_s": compress,
                "digest_per_candidate_per_s": naive,
                "hashcash_cli_per_s": cli_rate,
                "hashcash_best_per_thread_per_s": best_hashcash.0,
                "hashcash_best_all_threads_per_s": best_hashcash.1,
                "kernels": kernels,
            })
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "baselines (one thread):")?;
    writeln!(
        out,
        "  sha2::compress256, single stream       {:>10.1} M/s",
        compress / 1e6
    )?;
    writeln!(
        out,
        "  digest per candidate (clone+finalize)  {:>10.1} M/s",
        naive / 1e6
    )?;
    writeln!(
        out,
        "{:<9} {:<9} {:>12} {:>8} {:>16} {:>9} {:>10}",
        "kernel",
        "puzzle",
        "1 thread M/s",
        "×comp",
        format!("{threads} threads M/s"),
        "scaling",
        "×naive"
    )?;
    for (kernel, target, one, all) in rows {
        writeln!(
            out,
            "{:<9} {:<9} {:>12.1} {:>8.2} {:>16.1} {:>9.2} {:>10.1}",
            kernel.to_string(),
            format!("{target:?}").to_lowercase(),
            one / 1e6,
            one / compress,
            all / 1e6,
            all / one,
            one / naive
        )?;
    }
    writeln!(out, "(×comp: per-thread rate / single-stream compress256; hashcash rows compare SHA-1 candidates to it for scale only)")?;
    match cli_rate {
        Some(cli) => writeln!(
            out,
            "hashcash minting: Debian `hashcash -s` {:.1} M/s (one core); ours {:.1} M/s per thread ({:.1}×), {:.1} M/s on {threads} threads ({:.1}×)",
            cli / 1e6,
            best_hashcash.0 / 1e6,
            best_hashcash.0 / cli,
            best_hashcash.1 / 1e6,
            best_hashcash.1 / cli
        )?,
        None => writeln!(out, "hashcash minting: the Debian `hashcash` CLI is not installed; no baseline")?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The Debian CLI's own speed report (`hashcash -s`: "speed: N preimage tests per second").
fn hashcash_cli_rate() -> Option<f64> {
    let output = std::process::Command::new("hashcash")
        .arg("-s")
        .output()
        .ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    text.lines()
        .find_map(|line| line.strip_prefix("speed: "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
}

/// Aggregate rate of `threads` threads each measuring `kernel`.
fn parallel_rate(kernel: Kernel, target: BenchTarget, steps: u64, threads: usize) -> f64 {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| tessera_pow::kernel_rate(kernel, target, steps));
        }
    });
    (steps * 65_536 * threads as u64) as f64 / started.elapsed().as_secs_f64()
}
