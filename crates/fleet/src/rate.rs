//! The guard's GCRA evaluated in the store: one script per decision, loaded
//! once and called by its SHA, run on the store's clock so that servers with
//! different clocks share one budget. The state of a client is one string
//! key holding its theoretical arrival time (microseconds, on Redis `TIME`),
//! which expires when that time passes: a passed TAT is a full bucket, so an
//! expired key and a present one decide alike and Redis holds only clients in
//! debt.
//!
//! Keys carry the keyed client id (an HMAC of the client's address prefix
//! under a key the fleet shares through the store), never an address.

use std::sync::Arc;
use std::time::Duration;

use tessera_guard::{ClientIds, RateKey, SharedCheck, SharedRate, Unavailable};

use crate::fleet_key::FleetKey;
use crate::{keys, Store};

/// The GCRA script. Arguments: interval and tolerance in nanoseconds.
/// Returns -1 when allowed, else the wait in nanoseconds (≥ 1).
const GCRA: &str = r"
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1]) / 1000
local tolerance = tonumber(ARGV[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat - now > tolerance then
  return math.ceil((tat - tolerance - now) * 1000)
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.3f', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1)
return -1
";

/// The GCRA script (its SHA is what the store caches it under).
pub(crate) fn gcra_script() -> redis::Script {
    redis::Script::new(GCRA)
}

/// A per-client rate limit shared by every server on one store.
#[derive(Debug, Clone)]
pub struct FleetRate {
    store: Arc<Store>,
    key: Arc<FleetKey>,
    script: Arc<redis::Script>,
}

impl FleetRate {
    /// A shared limit on `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            key: Arc::new(FleetKey::new(store.clone())),
            store,
            script: Arc::new(gcra_script()),
        }
    }

    /// The SHA the script is called by (what `SCRIPT EXISTS` is asked about).
    pub fn script_sha(&self) -> &str {
        self.script.get_hash()
    }

    async fn decide(
        &self,
        key: RateKey,
        interval: u64,
        tolerance: u64,
    ) -> Result<Result<(), Duration>, Unavailable> {
        let fleet_key = self.key.get().await.map_err(|_| Unavailable)?;
        let id =
            ClientIds::new(fleet_key, false).id(key.address(), time::OffsetDateTime::UNIX_EPOCH);
        let redis_key = keys::rate(&id, key.prefix());
        let mut connection = self.store.connection().map_err(|_| Unavailable)?;
        let mut invocation = self.script.key(redis_key);
        invocation.arg(interval).arg(tolerance);
        let wait: i64 = self
            .store
            .call(invocation.invoke_async(&mut connection))
            .await
            .map_err(|_| Unavailable)?;
        Ok(match u64::try_from(wait) {
            Ok(wait) => Err(Duration::from_nanos(wait.max(1))),
            Err(_) => Ok(()),
        })
    }
}

impl SharedRate for FleetRate {
    fn check(&self, key: RateKey, interval: u64, tolerance: u64) -> SharedCheck<'_> {
        Box::pin(self.decide(key, interval, tolerance))
    }
}
