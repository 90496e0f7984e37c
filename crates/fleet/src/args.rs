//! The flags that name a fleet's shared store, read the same way by every
//! program (with the `cli` feature): [`StoreArgs`] for one-shot commands,
//! [`FleetArgs`] (adds the rate-limit fallback) for servers.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tessera_guard::{Fallback, SharedLimit};
use tessera_trust::WhenUnknown;

use crate::{
    Error, FleetLeases, FleetRate, Revocations, RevokedCertificates, Store, StoreConfig,
    DEFAULT_LEASE_TIME,
};
use tessera_serve::FleetAdmission;

/// `--store` and its password and budget.
#[derive(Clone, Debug, clap::Args)]
pub struct StoreArgs {
    /// Shared store of a fleet (Redis or Valkey): redis://HOST:PORT/DB, or
    /// rediss:// for TLS. Programs given the same store share per-client rate
    /// limits, replay caches and revocations. Without it, state stays in this process.
    #[arg(long = "store", env = "TESSERA_STORE", value_name = "URL")]
    pub url: Option<String>,
    /// File whose first line is the store's password (or its ACL user's;
    /// name the user in the URL, redis://USER@HOST). Without it,
    /// TESSERA_STORE_PASSWORD is used when set. Never put a password in the URL.
    #[arg(long = "store-password-file", value_name = "FILE", requires = "url")]
    pub password_file: Option<PathBuf>,
    /// For rediss:// stores: the CA certificates (PEM) the store's
    /// certificate must chain to [default: the system's trust store].
    #[arg(long = "store-ca-file", value_name = "FILE", requires = "url")]
    pub ca_file: Option<PathBuf>,
    /// The longest a connection or request waits on the store, in milliseconds.
    #[arg(long = "store-budget-ms", value_name = "MS", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub budget_ms: u64,
    /// The store once opened: every part of a server (rate limits,
    /// revocations, leases, replay) shares one set of connections.
    #[arg(skip)]
    opened: OnceLock<Arc<Store>>,
}

impl Default for StoreArgs {
    /// No store; the default budget.
    fn default() -> Self {
        Self {
            url: None,
            password_file: None,
            ca_file: None,
            budget_ms: 50,
            opened: OnceLock::new(),
        }
    }
}

impl StoreArgs {
    /// The store named, when one is; the same one on every call. It
    /// connects on first use, so a server starts while the store is down.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad address or an unreadable password file.
    pub fn open(&self) -> Result<Option<Arc<Store>>, Error> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        if let Some(store) = self.opened.get() {
            return Ok(Some(store.clone()));
        }
        let mut config =
            StoreConfig::new(url.clone()).password_from(self.password_file.as_deref())?;
        config.budget = Duration::from_millis(self.budget_ms);
        config.ca_file.clone_from(&self.ca_file);
        let store = Arc::new(Store::open(&config)?);
        Ok(Some(self.opened.get_or_init(|| store).clone()))
    }
}

/// A server's fleet flags: the store, and what rate limits do without it.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct FleetArgs {
    /// The shared store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Rate limits while the store does not answer in time: local (each
    /// server applies the limit alone), fail-open (allow) or fail-closed (refuse).
    #[arg(long = "store-rate-fallback", value_name = "POLICY", default_value = "local", value_parser = Fallback::parse)]
    pub rate_fallback: Fallback,
    /// Replay and revocation checks (signed frames, tokens, client
    /// certificates revoked with `tessera trust revoke sha256:…`) while the
    /// store cannot say: fail-closed (refuse) or fail-open (accept as if
    /// unseen and not revoked).
    #[arg(long = "store-fallback", value_name = "POLICY", default_value = "fail-closed", value_parser = WhenUnknown::parse)]
    pub fallback: WhenUnknown,
    /// Open connections per client across every server on the store, counted
    /// with leases that expire 30 s after a server stops renewing them. Off
    /// unless given; while the store cannot answer, each server's own
    /// --max-connections-per-client alone applies.
    #[arg(long = "fleet-max-connections-per-client", value_name = "N", requires = "url", value_parser = clap::value_parser!(u32).range(1..))]
    pub fleet_max_connections_per_client: Option<u32>,
}

impl FleetArgs {
    /// The shared per-client limit, when a store is named.
    ///
    /// # Errors
    /// As [`StoreArgs::open`].
    pub fn shared_limit(&self) -> Result<Option<SharedLimit>, Error> {
        Ok(self
            .store
            .open()?
            .map(|store| SharedLimit::new(Arc::new(FleetRate::new(store)), self.rate_fallback)))
    }

    /// What a connection stage takes from the store, when one is named:
    /// the client certificates the fleet revoked, and connection leases
    /// when `--fleet-max-connections-per-client` is given (inside a tokio
    /// runtime: both start tasks).
    ///
    /// # Errors
    /// As [`StoreArgs::open`].
    pub fn admission(&self) -> Result<FleetAdmission, Error> {
        let Some(store) = self.store.open()? else {
            return Ok(FleetAdmission::default());
        };
        Ok(self.admission_with(Revocations::follow(store.clone()), &store))
    }

    /// [`FleetArgs::admission`] on revocations already followed from `store`.
    pub fn admission_with(
        &self,
        revocations: Arc<Revocations>,
        store: &Arc<Store>,
    ) -> FleetAdmission {
        FleetAdmission {
            revoked_certificates: Some(self.certificates(revocations)),
            connection_leases: self.fleet_max_connections_per_client.map(|max| {
                Arc::new(FleetLeases::new(store.clone(), max, DEFAULT_LEASE_TIME))
                    as Arc<dyn tessera_serve::ConnectionLeases>
            }),
        }
    }

    /// The certificates `revocations` lists, under this fallback.
    fn certificates(
        &self,
        revocations: Arc<Revocations>,
    ) -> Arc<dyn tessera_serve::RevokedCertificates> {
        Arc::new(RevokedCertificates::new(revocations, self.fallback))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        fleet: FleetArgs,
    }

    fn flags(args: &[&str]) -> Result<FleetArgs, String> {
        Command::try_parse_from(std::iter::once("server").chain(args.iter().copied()))
            .map(|command| command.fleet)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn store_flags_name_one_shared_store() {
        let none = flags(&[]).unwrap();
        assert!(none.shared_limit().unwrap().is_none());
        assert_eq!(none.rate_fallback, Fallback::Local);
        let fleet = flags(&[
            "--store",
            "redis://127.0.0.1:6379/0",
            "--store-budget-ms",
            "20",
            "--store-rate-fallback",
            "fail-closed",
        ])
        .unwrap();
        let limit = fleet.shared_limit().unwrap().unwrap();
        assert_eq!(limit.fallback, Fallback::Closed);
        assert_eq!(fleet.store.budget_ms, 20);
        // Every part of a server shares the one store the flags name.
        let store = fleet.store.open().unwrap().unwrap();
        assert!(Arc::ptr_eq(&store, &fleet.store.open().unwrap().unwrap()));
        assert!(Arc::ptr_eq(
            &store,
            &fleet.clone().store.open().unwrap().unwrap()
        ));
        for bad in [
            &["--store-password-file", "/tmp/x"][..],
            &["--store", "redis://h/0", "--store-rate-fallback", "maybe"],
            &["--store", "redis://h/0", "--store-budget-ms", "0"],
        ] {
            assert!(flags(bad).is_err(), "{bad:?}");
        }
        let secret = flags(&["--store", "redis://u:hunter2@127.0.0.1/0"]).unwrap();
        let error = secret.shared_limit().unwrap_err().to_string();
        assert!(
            error.contains("--store-password-file") && !error.contains("hunter2"),
            "{error}"
        );
    }
}
