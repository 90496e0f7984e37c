//! Connection caps per client across a fleet: each admitted connection
//! holds a lease in a store every server shares, so a client's connections
//! are counted on all servers together rather than per server. A lease
//! expires unless its server renews it, so the leases of a server that
//! died free themselves.
//!
//! While the store cannot answer, the per-server cap alone applies (the
//! stage's `max_connections_per_client`): a connection is admitted without a
//! lease rather than refused.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use tessera_guard::Unavailable;

/// The future of one lease request.
pub type LeaseRequest<'a> =
    Pin<Box<dyn Future<Output = Result<Option<ConnectionLease>, Unavailable>> + Send + 'a>>;

/// A store that counts the connections of each client across a fleet.
pub trait ConnectionLeases: Send + Sync + std::fmt::Debug {
    /// A lease for one more connection of the client at `address`:
    /// `Ok(None)` when the client holds as many as the fleet allows, and
    /// [`Unavailable`] instead of waiting longer than the store's budget.
    fn acquire(&self, address: IpAddr) -> LeaseRequest<'_>;
}

/// One connection's lease; released (and no longer renewed) when dropped.
pub struct ConnectionLease {
    _held: Box<dyn Send + Sync>,
}

impl ConnectionLease {
    /// A lease whose release is `held`'s drop.
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        Self {
            _held: Box::new(held),
        }
    }
}

impl std::fmt::Debug for ConnectionLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionLease")
    }
}
