//! Every key Tessera writes to the store, in one place: all under `tessera:`,
//! each with a TTL except the revocation set, and with the client or item in
//! a `{hash tag}` so that a Redis Cluster spreads clients over its shards
//! while one client's keys stay on one.

/// The key the fleet's client-id key is kept under.
pub(crate) const FLEET_KEY: &str = "tessera:fleet:key";

/// The set of revoked revocation ids (persisted, so a node that was down catches up).
pub const REVOKED: &str = "tessera:revoked";

/// The channel revocations are announced on.
pub const REVOCATIONS: &str = "tessera:revocations";

/// Key prefix of rate-limit state.
pub(crate) const RATE_PREFIX: &str = "tessera:rl:";

/// Key prefix of connection leases.
pub(crate) const LEASE_PREFIX: &str = "tessera:cl:";

/// Key prefix of replay-cache entries.
pub(crate) const REPLAY_PREFIX: &str = "tessera:rp:";

/// The rate-limit key of a client (its keyed id) limited at `prefix` bits.
pub(crate) fn rate(client_id: &str, prefix: u8) -> String {
    format!("{RATE_PREFIX}{{{client_id}}}:{prefix}")
}

/// The replay key of an item of `kind` (its digest, hex).
pub(crate) fn replay(kind: &str, digest: &str) -> String {
    format!("{REPLAY_PREFIX}{kind}:{{{digest}}}")
}

/// The connection-lease set of a client (its keyed id).
pub(crate) fn lease(client_id: &str) -> String {
    format!("{LEASE_PREFIX}{{{client_id}}}")
}
