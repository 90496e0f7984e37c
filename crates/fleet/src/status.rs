//! What `tessera fleet status` reports: whether the store answers and how
//! fast, whether the rate-limit script is loaded, and what Tessera keeps in it.

use std::time::{Duration, Instant};

use crate::{keys, Error, ReplayKind, Store};

/// Keys counted at most per report (a `SCAN` of a huge store stops there).
const MAX_SCANNED: u64 = 1_000_000;

/// A store's state, as far as Tessera uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The address (without any password).
    pub url: String,
    /// Round-trip time of a PING.
    pub latency: Duration,
    /// The server's version (`redis_version` or `valkey_version`).
    pub version: String,
    /// Whether the rate-limit script is cached by the server.
    pub script_loaded: bool,
    /// Clients in rate-limit debt.
    pub rate_keys: u64,
    /// Live replay entries by kind.
    pub replay_keys: Vec<(ReplayKind, u64)>,
    /// Clients holding connection leases (fleet-wide connection caps).
    pub lease_keys: u64,
    /// Revoked ids.
    pub revocations: u64,
    /// Memory the server uses, in bytes.
    pub used_memory: u64,
    /// Whether counting stopped at the cap before the end of the keys.
    pub truncated: bool,
}

/// Asks `store` for its [`Status`], each call within `budget`.
///
/// # Errors
/// The store's errors (unreachable, refused).
pub async fn status(store: &Store, budget: Duration) -> Result<Status, Error> {
    let mut connection = store.connection()?;
    let started = Instant::now();
    let _: String = store
        .call_within(budget, redis::cmd("PING").query_async(&mut connection))
        .await?;
    let latency = started.elapsed();
    let info: String = store
        .call_within(
            budget,
            redis::cmd("INFO")
                .arg("server")
                .query_async(&mut connection),
        )
        .await?;
    let memory: String = store
        .call_within(
            budget,
            redis::cmd("INFO")
                .arg("memory")
                .query_async(&mut connection),
        )
        .await?;
    let version = info_field(&info, "valkey_version")
        .or_else(|| info_field(&info, "redis_version"))
        .unwrap_or("unknown")
        .to_owned();
    let used_memory = info_field(&memory, "used_memory")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let sha = crate::rate::gcra_script().get_hash().to_owned();
    let loaded: Vec<bool> = store
        .call_within(
            budget,
            redis::cmd("SCRIPT")
                .arg("EXISTS")
                .arg(sha)
                .query_async(&mut connection),
        )
        .await?;
    let revocations: u64 = store
        .call_within(
            budget,
            redis::cmd("SCARD")
                .arg(keys::REVOKED)
                .query_async(&mut connection),
        )
        .await?;
    let (rate_keys, mut truncated) =
        count(store, budget, &format!("{}*", keys::RATE_PREFIX)).await?;
    let (lease_keys, cut) = count(store, budget, &format!("{}*", keys::LEASE_PREFIX)).await?;
    truncated |= cut;
    let mut replay_keys = Vec::new();
    for kind in ReplayKind::ALL {
        let pattern = format!("{}{}:*", keys::REPLAY_PREFIX, kind.name());
        let (n, cut) = count(store, budget, &pattern).await?;
        truncated |= cut;
        replay_keys.push((kind, n));
    }
    Ok(Status {
        url: store.url().to_owned(),
        latency,
        version,
        script_loaded: loaded.first().copied().unwrap_or(false),
        rate_keys,
        replay_keys,
        lease_keys,
        revocations,
        used_memory,
        truncated,
    })
}

/// Keys matching `pattern`, by `SCAN` (never `KEYS`, which blocks the server).
async fn count(store: &Store, budget: Duration, pattern: &str) -> Result<(u64, bool), Error> {
    let mut connection = store.connection()?;
    let mut cursor = 0u64;
    let mut total = 0u64;
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) = store
            .call_within(
                budget,
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut connection),
            )
            .await?;
        total += batch.len() as u64;
        if next == 0 {
            return Ok((total, false));
        }
        if total >= MAX_SCANNED {
            return Ok((total, true));
        }
        cursor = next;
    }
}

fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}
