//! The key every server of a fleet derives client ids with, so that one
//! client has one rate-limit key on every server. It is created once, at
//! random, by the first server to ask (`SET NX`), and read by the others:
//! no configuration to keep in step, and never an address in the store.

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use tokio::sync::OnceCell;

use crate::{keys, Error, Store};

/// How long fetching the key may take (once per server, not per request).
const FETCH_BUDGET: Duration = Duration::from_secs(2);

/// The fleet's client-id key, fetched once.
#[derive(Debug)]
pub(crate) struct FleetKey {
    store: Arc<Store>,
    key: OnceCell<[u8; 32]>,
}

impl FleetKey {
    pub(crate) fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            key: OnceCell::new(),
        }
    }

    /// The key; the first call creates or reads it in the store.
    pub(crate) async fn get(&self) -> Result<[u8; 32], Error> {
        self.key
            .get_or_try_init(|| async {
                let mut connection = self.store.connection()?;
                let fresh: [u8; 32] = rand::random();
                let budget = self.store.budget().max(FETCH_BUDGET);
                let _: Option<String> = self
                    .store
                    .call_within(
                        budget,
                        redis::cmd("SET")
                            .arg(keys::FLEET_KEY)
                            .arg(&fresh[..])
                            .arg("NX")
                            .query_async(&mut connection),
                    )
                    .await?;
                let stored: Vec<u8> = self
                    .store
                    .call_within(budget, connection.get(keys::FLEET_KEY))
                    .await?;
                stored.try_into().map_err(|bytes: Vec<u8>| {
                    Error::Config(format!(
                        "{} holds {} bytes, not a 32-byte key",
                        keys::FLEET_KEY,
                        bytes.len()
                    ))
                })
            })
            .await
            .copied()
    }
}
