//! `tessera fleet`: what a fleet's shared store holds and whether it answers.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use tessera_fleet::Store;
use tessera_fleet::StoreArgs;

/// The budget of an operator's command: it is not a request, so it may wait longer.
pub(crate) const OPERATOR_BUDGET: Duration = Duration::from_secs(2);

#[derive(Debug, Subcommand)]
pub(crate) enum FleetCommand {
    /// Whether the store answers and how fast, whether the rate-limit script
    /// is loaded, and what Tessera keeps there (keys by kind, revocations).
    /// Exits 1 when the store does not answer.
    Status {
        #[command(flatten)]
        store: StoreArgs,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Shared rate-limit decisions per second and their latency from one
    /// server, next to redis-benchmark running the same script on the same
    /// redis-server (started here), and the store's bytes per tracked client
    /// and per replay entry.
    Bench(crate::benches::fleet::BenchArgs),
}

pub(crate) fn run(command: FleetCommand) -> anyhow::Result<ExitCode> {
    match command {
        FleetCommand::Bench(args) => crate::benches::fleet::run(&args),
        FleetCommand::Status { store, json } => crate::runtime()?.block_on(async {
            let store = required(&store)?;
            let budget = OPERATOR_BUDGET.max(store.budget());
            let status = match tessera_fleet::status(&store, budget).await {
                Ok(status) => status,
                Err(error) => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "tessera: {}: unreachable: {error}",
                        store.url()
                    );
                    return Ok(ExitCode::FAILURE);
                }
            };
            let mut out = std::io::stdout().lock();
            if json {
                let replay: serde_json::Map<String, serde_json::Value> = status
                    .replay_keys
                    .iter()
                    .map(|(kind, n)| (kind.name().to_owned(), (*n).into()))
                    .collect();
                let object = serde_json::json!({
                    "store": status.url,
                    "reachable": true,
                    "latency_us": status.latency.as_micros(),
                    "version": status.version,
                    "script_loaded": status.script_loaded,
                    "rate_limited_clients": status.rate_keys,
                    "replay_entries": replay,
                    "clients_with_leases": status.lease_keys,
                    "revocations": status.revocations,
                    "used_memory_bytes": status.used_memory,
                    "truncated": status.truncated,
                });
                writeln!(out, "{object}")?;
            } else {
                writeln!(
                    out,
                    "store          {} (version {})",
                    status.url, status.version
                )?;
                writeln!(
                    out,
                    "reachable      yes, {:.2} ms round trip",
                    status.latency.as_secs_f64() * 1e3
                )?;
                writeln!(
                    out,
                    "rate script    {}",
                    if status.script_loaded {
                        "loaded"
                    } else {
                        "not loaded yet (loaded by the first decision)"
                    }
                )?;
                writeln!(out, "rate-limited   {} clients in debt", status.rate_keys)?;
                for (kind, n) in &status.replay_keys {
                    writeln!(out, "replay {:<8}{n} live entries", kind.name())?;
                }
                writeln!(
                    out,
                    "leases         {} clients with open connections",
                    status.lease_keys
                )?;
                writeln!(out, "revocations    {}", status.revocations)?;
                writeln!(
                    out,
                    "memory         {} bytes used by the store",
                    status.used_memory
                )?;
                if status.truncated {
                    writeln!(out, "(counts stopped at 1,000,000 keys per kind)")?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }),
    }
}

/// The store a command cannot do without.
pub(crate) fn required(args: &StoreArgs) -> anyhow::Result<Arc<Store>> {
    args.open()?
        .ok_or_else(|| crate::args::usage_error("--store URL (or TESSERA_STORE) is required"))
}
