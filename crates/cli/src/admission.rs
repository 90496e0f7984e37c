//! The shared admission flags (`tessera_serve::AdmissionArgs`) turned into
//! what the wire servers' options take.

use std::sync::Arc;

use tessera_serve::AdmissionArgs;

/// Admission for one server: the guard (ACL, rate limit, certificate rules),
/// trusted relays and the caps.
pub(crate) struct Admission {
    pub(crate) guard: Option<Arc<tessera_guard::Chain>>,
    pub(crate) proxy_from: Option<tessera_guard::Acl>,
    pub(crate) max_connections: usize,
    pub(crate) max_connections_per_client: usize,
    pub(crate) log_client_ip: bool,
}

impl Admission {
    /// From the flags (the rate limit in the fleet's store when one is
    /// named), with the server's default caps.
    pub(crate) fn from_args(
        args: &AdmissionArgs,
        fleet: &tessera_fleet::FleetArgs,
        defaults: (usize, usize),
    ) -> anyhow::Result<Self> {
        let config = args.guard_config(tessera_guard::GuardConfig::default())?;
        let (max_connections, max_connections_per_client) = args.caps(&config, defaults);
        Ok(Self {
            guard: AdmissionArgs::chain(&config, fleet.shared_limit()?)?.map(Arc::new),
            proxy_from: config.relays()?,
            max_connections,
            max_connections_per_client,
            log_client_ip: config.log_client_ip,
        })
    }
}
