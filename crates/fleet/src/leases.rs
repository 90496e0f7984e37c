//! Connection caps per client across a fleet. Each client's open
//! connections, on every server, are members of one sorted set in the
//! store, scored by the time their lease runs out. Taking a lease is one
//! script on the store's clock (drop the leases that ran out, count, add);
//! a server renews all its leases in one pipeline every third of the lease
//! time, and removes a lease when its connection closes. A server that dies
//! stops renewing, so its clients' leases free themselves within the lease
//! time.
//!
//! Keys carry the keyed client id (IPv6 clients per /64), never an address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tessera_guard::{ClientIds, Unavailable};
use tessera_serve::{ConnectionLease, ConnectionLeases, LeaseRequest};
use tokio::sync::mpsc;

use crate::fleet_key::FleetKey;
use crate::{keys, Store};

/// Takes a lease: drops the ones that ran out, refuses at the cap, adds one.
/// Arguments: the cap, the lease time in ms, the lease's id. Returns 1 when taken.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
";

/// Renews the leases named (those still there) for another lease time.
/// Arguments: the lease time in ms, then the leases' ids.
const RENEW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', until_ms, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 0
";

/// How long a lease lasts unless renewed, by default.
pub const DEFAULT_LEASE_TIME: Duration = Duration::from_secs(30);

/// A lease taken or given back, for the task that renews and releases.
enum Change {
    Held { key: String, id: String },
    Released { key: String, id: String },
}

/// Connections per client counted across every server on one store.
#[derive(Debug)]
pub struct FleetLeases {
    store: Arc<Store>,
    key: FleetKey,
    max_per_client: u32,
    lease_time: Duration,
    acquire: redis::Script,
    /// This server's prefix for lease ids, so that servers never collide.
    server: String,
    next: AtomicU64,
    changes: mpsc::UnboundedSender<Change>,
}

impl FleetLeases {
    /// At most `max_per_client` connections per client across the fleet,
    /// leases lasting `lease_time` unless renewed. Starts the renewing task:
    /// call inside a tokio runtime.
    pub fn new(store: Arc<Store>, max_per_client: u32, lease_time: Duration) -> Self {
        let lease_time = lease_time.max(Duration::from_secs(1));
        // Unbounded, yet bounded by the connections: two messages each.
        let (changes, received) = mpsc::unbounded_channel();
        tokio::spawn(keep_leases(store.clone(), lease_time, received));
        Self {
            key: FleetKey::new(store.clone()),
            store,
            max_per_client: max_per_client.max(1),
            lease_time,
            acquire: redis::Script::new(ACQUIRE),
            server: hex::encode(rand::random::<[u8; 8]>()),
            next: AtomicU64::new(0),
            changes,
        }
    }

    async fn take(&self, address: IpAddr) -> Result<Option<ConnectionLease>, Unavailable> {
        let fleet_key = self.key.get().await.map_err(|_| Unavailable)?;
        let client = ClientIds::new(fleet_key, false)
            .id(client_prefix(address), time::OffsetDateTime::UNIX_EPOCH);
        let key = keys::lease(&client);
        let id = format!(
            "{}-{}",
            self.server,
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        let mut connection = self.store.connection().map_err(|_| Unavailable)?;
        let mut invocation = self.acquire.key(&key);
        invocation
            .arg(self.max_per_client)
            .arg(millis(self.lease_time))
            .arg(&id);
        let taken: i64 = self
            .store
            .call(invocation.invoke_async(&mut connection))
            .await
            .map_err(|_| Unavailable)?;
        if taken != 1 {
            return Ok(None);
        }
        let _ = self.changes.send(Change::Held {
            key: key.clone(),
            id: id.clone(),
        });
        Ok(Some(ConnectionLease::new(Lease {
            key,
            id,
            changes: self.changes.clone(),
        })))
    }
}

impl ConnectionLeases for FleetLeases {
    fn acquire(&self, address: IpAddr) -> LeaseRequest<'_> {
        Box::pin(self.take(address))
    }
}

/// A held lease: given back when its connection's admission is dropped.
struct Lease {
    key: String,
    id: String,
    changes: mpsc::UnboundedSender<Change>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = self.changes.send(Change::Released {
            key: std::mem::take(&mut self.key),
            id: std::mem::take(&mut self.id),
        });
    }
}

/// Renews this server's leases every third of the lease time and removes
/// released ones (a batch per wake-up), until every sender is gone.
async fn keep_leases(
    store: Arc<Store>,
    lease_time: Duration,
    mut changes: mpsc::UnboundedReceiver<Change>,
) {
    let renew = redis::Script::new(RENEW);
    let mut held: HashMap<String, String> = HashMap::new();
    let mut tick = tokio::time::interval(lease_time / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            change = changes.recv() => {
                let Some(change) = change else { return };
                let mut released = Vec::new();
                for change in std::iter::once(change).chain(std::iter::from_fn(|| changes.try_recv().ok())) {
                    match change {
                        Change::Held { key, id } => {
                            held.insert(id, key);
                        }
                        Change::Released { key, id } => {
                            held.remove(&id);
                            released.push((key, id));
                        }
                    }
                }
                if !released.is_empty() {
                    release(&store, &released).await;
                }
            }
            _ = tick.tick() => renew_all(&store, &renew, lease_time, &held).await,
        }
    }
}

/// Removes `released` leases in one pipeline; a failure leaves them to expire.
async fn release(store: &Store, released: &[(String, String)]) {
    let mut pipe = redis::pipe();
    for (key, id) in released {
        pipe.zrem(key, id).ignore();
    }
    if let Ok(mut connection) = store.connection() {
        let _: Result<(), _> = store.call(pipe.query_async(&mut connection)).await;
    }
}

/// Renews every held lease, one script call per client, in one pipeline.
async fn renew_all(
    store: &Store,
    renew: &redis::Script,
    lease_time: Duration,
    held: &HashMap<String, String>,
) {
    if held.is_empty() {
        return;
    }
    let mut by_client: HashMap<&str, Vec<&str>> = HashMap::new();
    for (id, key) in held {
        by_client.entry(key).or_default().push(id);
    }
    let invocations: Vec<redis::ScriptInvocation<'_>> = by_client
        .into_iter()
        .map(|(key, ids)| {
            let mut invocation = renew.key(key);
            invocation.arg(millis(lease_time)).arg(ids);
            invocation
        })
        .collect();
    // Loaded in the same pipeline: a store that restarted lost its scripts.
    let mut pipe = redis::pipe();
    pipe.load_script(renew).ignore();
    for invocation in &invocations {
        pipe.invoke_script(invocation).ignore();
    }
    if let Ok(mut connection) = store.connection() {
        let _: Result<(), _> = store.call(pipe.query_async(&mut connection)).await;
    }
}

/// The client an address counts for: IPv4 addresses alone, IPv6 per /64.
fn client_prefix(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
