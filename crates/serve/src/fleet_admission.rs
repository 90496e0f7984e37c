//! What a stage takes from a fleet's shared store at admission: client
//! certificates revoked across the fleet and connection leases. Empty (the
//! default), a stage decides alone.

use std::sync::Arc;

use crate::{ConnectionLeases, RevokedCertificates};

/// The fleet's part of admission; [`Default`] is none.
#[derive(Clone, Debug, Default)]
pub struct FleetAdmission {
    /// Client certificates revoked in the fleet's store: refused at
    /// admission, and open connections that presented one are refused
    /// ([`crate::Admitted::refused`]) as soon as it is announced.
    pub revoked_certificates: Option<Arc<dyn RevokedCertificates>>,
    /// Connections per client counted across the fleet (off by default).
    pub connection_leases: Option<Arc<dyn ConnectionLeases>>,
}
