//! The admission flags every server offers, named and read the same way:
//! `--guard-config`, `--allow`/`--deny`, `--rate-limit`, the two caps and
//! `--proxy-from`. They fill one `[guard]` config, so a flag and the same
//! setting in a file mean the same thing.

use std::path::PathBuf;

use tessera_guard::{AclConfig, GuardConfig, RateLimitConfig, SharedLimit};

/// Admission flags (with the `cli` feature): flatten into a server's arguments.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct AdmissionArgs {
    /// Guard configuration: TOML with a `[guard]` section (acl, rate_limit,
    /// connections, proxy_from, cert_rules). The flags below add to it.
    #[arg(long, value_name = "FILE")]
    pub guard_config: Option<PathBuf>,
    /// Allow only these addresses or CIDRs (repeatable); others are closed
    /// before any protocol byte.
    #[arg(long = "allow", value_name = "CIDR")]
    pub allow: Vec<String>,
    /// Deny these addresses or CIDRs (repeatable; wins over --allow).
    #[arg(long = "deny", value_name = "CIDR")]
    pub deny: Vec<String>,
    /// Per-client rate limit (IPv4 address, IPv6 /64): a burst of N, then
    /// one more every SECONDS/N; e.g. 10/60.
    #[arg(long, value_name = "N/SECONDS", value_parser = parse_rate_limit)]
    pub rate_limit: Option<RateLimitConfig>,
    /// Connections at once, all clients [default: 1024; tlslp 10000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,
    /// Connections at once from one client (IPv4 address, IPv6 /64); more
    /// are closed at once [default: 16; tlslp 32].
    #[arg(long, value_name = "N", alias = "max-per-ip", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections_per_client: Option<u64>,
    /// Trusted relay (address or CIDR, repeatable) whose connections start
    /// with a PROXY v1/v2 header; the client it names is used for every
    /// decision. Nobody else may send one.
    #[arg(long = "proxy-from", value_name = "CIDR")]
    pub proxy_from: Vec<String>,
    /// Write clients' raw addresses in the logs (default: their keyed ids,
    /// an HMAC of the address, so logs hold no addresses).
    #[arg(long)]
    pub log_client_ip: bool,
}

/// Why the admission flags cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// `--guard-config` cannot be read.
    #[error("{path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// `--guard-config` or a flag is not a valid guard setting.
    #[error("{0}")]
    Guard(#[from] tessera_guard::Error),
}

impl AdmissionArgs {
    /// The guard config: `--guard-config` when given (else `base`, e.g. a
    /// server's own config file), with the flags added on top.
    ///
    /// # Errors
    /// [`AdmissionError`] for an unreadable or invalid file.
    pub fn guard_config(&self, base: GuardConfig) -> Result<GuardConfig, AdmissionError> {
        let mut config = match &self.guard_config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| AdmissionError::Read {
                    path: path.clone(),
                    error,
                })?;
                GuardConfig::from_toml(&text).map_err(|error| match error {
                    tessera_guard::Error::Config(detail) => {
                        tessera_guard::Error::Config(format!("{}: {detail}", path.display()))
                    }
                    other => other,
                })?
            }
            None => base,
        };
        if !self.allow.is_empty() || !self.deny.is_empty() {
            let acl = config.acl.get_or_insert_with(AclConfig::default);
            acl.allow.extend(self.allow.iter().cloned());
            acl.deny.extend(self.deny.iter().cloned());
        }
        if let Some(limit) = &self.rate_limit {
            config.rate_limit = Some(limit.clone());
        }
        config.proxy_from.extend(self.proxy_from.iter().cloned());
        config.log_client_ip |= self.log_client_ip;
        // Check every entry now, so a typo fails at start.
        config.relays()?;
        config.build()?;
        Ok(config)
    }

    /// The guard of `config`, with `shared` (a fleet's per-client limit)
    /// when given: `None` when the config checks nothing.
    ///
    /// # Errors
    /// An invalid guard setting.
    pub fn chain(
        config: &GuardConfig,
        shared: Option<SharedLimit>,
    ) -> Result<Option<tessera_guard::Chain>, AdmissionError> {
        if !config.has_checks() {
            return Ok(None);
        }
        let chain = config.build()?;
        Ok(Some(match shared {
            Some(limit) => chain.shared(limit),
            None => chain,
        }))
    }

    /// The caps `(max_connections, max_connections_per_client)`: each flag,
    /// else `[guard.connections]` of `config`, else the server's `defaults`.
    pub fn caps(&self, config: &GuardConfig, defaults: (usize, usize)) -> (usize, usize) {
        let from_file = config.connections.as_ref();
        let pick = |flag: Option<u64>, file: Option<usize>, default: usize| {
            flag.map_or(file.unwrap_or(default), |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            })
        };
        (
            pick(
                self.max_connections,
                from_file.map(|c| c.max_connections),
                defaults.0,
            ),
            pick(
                self.max_connections_per_client,
                from_file.map(|c| c.max_connections_per_client),
                defaults.1,
            ),
        )
    }
}

/// `N/SECONDS` as a rate limit: a burst of N refilled over SECONDS.
///
/// # Errors
/// A message naming the expected form.
pub fn parse_rate_limit(spec: &str) -> Result<RateLimitConfig, String> {
    let parsed = spec.split_once('/').and_then(|(n, seconds)| {
        Some((
            n.trim().parse::<u32>().ok()?,
            seconds.trim().parse::<f64>().ok()?,
        ))
    });
    match parsed {
        Some((n, seconds)) if n >= 1 && seconds.is_finite() && seconds > 0.0 => {
            Ok(RateLimitConfig {
                rate: f64::from(n) / seconds,
                burst: n,
                ..RateLimitConfig::default()
            })
        }
        _ => Err(format!(
            "{spec:?}: expected N/SECONDS with N >= 1 and SECONDS > 0, e.g. 10/60"
        )),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        admission: AdmissionArgs,
    }

    fn flags(args: &[&str]) -> Result<AdmissionArgs, String> {
        Command::try_parse_from(std::iter::once("server").chain(args.iter().copied()))
            .map(|command| command.admission)
            .map_err(|e| e.to_string())
    }

    fn parse(args: &[&str]) -> Result<GuardConfig, String> {
        flags(args)?
            .guard_config(GuardConfig::default())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn flags_fill_the_guard_config() {
        let config = parse(&[
            "--allow",
            "10.0.0.0/8",
            "--deny",
            "10.0.0.66",
            "--rate-limit",
            "10/60",
            "--max-per-ip",
            "4",
            "--proxy-from",
            "192.0.2.1",
        ])
        .unwrap();
        let acl = config.acl.as_ref().unwrap();
        assert_eq!(acl.allow, ["10.0.0.0/8"]);
        assert_eq!(acl.deny, ["10.0.0.66"]);
        let limit = config.rate_limit.as_ref().unwrap();
        assert_eq!(limit.burst, 10);
        assert!((limit.rate - 10.0 / 60.0).abs() < 1e-9);
        assert!(config
            .relays()
            .unwrap()
            .unwrap()
            .allows(Some("192.0.2.1".parse().unwrap())));
        assert!(parse(&[]).unwrap().relays().unwrap().is_none());
    }

    #[test]
    fn caps_come_from_the_flag_then_the_file_then_the_server() {
        let mut config = GuardConfig::default();
        let none = flags(&[]).unwrap();
        assert_eq!(none.caps(&config, (10_000, 32)), (10_000, 32));
        config.connections = Some(tessera_guard::ConnectionsConfig {
            max_connections: 500,
            max_connections_per_client: 8,
        });
        assert_eq!(none.caps(&config, (10_000, 32)), (500, 8));
        let per_ip = flags(&["--max-per-ip", "4"]).unwrap();
        assert_eq!(per_ip.caps(&config, (10_000, 32)), (500, 4));
    }

    #[test]
    fn rate_limits_parse() {
        let limit = parse_rate_limit("10/60").unwrap();
        assert_eq!(limit.burst, 10);
        assert!((limit.rate - 10.0 / 60.0).abs() < 1e-12);
        for bad in ["10", "0/60", "10/0", "a/b", "10/-1", "10/inf"] {
            assert!(parse_rate_limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_values_are_refused_at_start() {
        for bad in [
            &["--allow", "not-an-address"][..],
            &["--proxy-from", "10.0.0.0/99"],
            &["--rate-limit", "0/60"],
            &["--rate-limit", "ten"],
            &["--max-connections", "0"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let missing = parse(&["--guard-config", "/nonexistent/guard.toml"]).unwrap_err();
        assert!(
            missing.starts_with("/nonexistent/guard.toml: "),
            "{missing}"
        );
    }

    #[test]
    fn a_guard_config_file_is_read_and_the_flags_add_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("guard.toml");
        std::fs::write(
            &path,
            "[guard]\nproxy_from = [\"192.0.2.1\"]\n[guard.acl]\ndeny = [\"198.51.100.0/24\"]\n",
        )
        .unwrap();
        let config = parse(&[
            "--guard-config",
            path.to_str().unwrap(),
            "--deny",
            "203.0.113.9",
        ])
        .unwrap();
        assert_eq!(config.acl.unwrap().deny, ["198.51.100.0/24", "203.0.113.9"]);
        assert_eq!(config.proxy_from, ["192.0.2.1"]);
    }
}
