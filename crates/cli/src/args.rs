//! Argument types every command shares, so that a concept reads and checks
//! the same everywhere: `--timeout SECONDS` (decimals allowed, positive) and
//! a peer's `HOST:PORT` (names as well as addresses). A value that fails
//! here is a usage error (exit 2) before anything runs.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// A command line that parsed but asks for something the command cannot
/// do; `main` prints it like any error and exits 2, as for clap's own.
#[derive(Debug)]
pub(crate) struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error with `message`.
pub(crate) fn usage_error(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// `Ok` when `condition` holds, else the usage error `message()`.
pub(crate) fn require(condition: bool, message: impl FnOnce() -> String) -> anyhow::Result<()> {
    if condition {
        Ok(())
    } else {
        Err(usage_error(message()))
    }
}

/// `--check-config`, on every server.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct CheckConfig {
    /// Load and check everything this server would use (certificates, keys,
    /// CA, CRL, guard and capsule configuration, secrets, the fleet store),
    /// then exit 0 if it is all valid, 1 with what is wrong — without serving.
    #[arg(long)]
    check_config: bool,
}

impl CheckConfig {
    /// With `--check-config`, once everything loaded: says so and gives the
    /// exit code; `None` to go on and serve.
    pub(crate) fn passed(&self, what: &str) -> anyhow::Result<Option<std::process::ExitCode>> {
        if !self.check_config {
            return Ok(None);
        }
        use std::io::Write;
        writeln!(std::io::stdout().lock(), "configuration OK: {what}")?;
        Ok(Some(std::process::ExitCode::SUCCESS))
    }
}

/// The most seconds a timeout may be (a day): beyond it is a typo.
const MAX_SECONDS: f64 = 86_400.0;

/// `--timeout`-style seconds: a positive number, decimals allowed.
pub(crate) fn seconds(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 && value <= MAX_SECONDS => {
            Ok(Duration::from_secs_f64(value))
        }
        _ => Err(format!(
            "{text:?} is not a number of seconds between 0 (excluded) and {MAX_SECONDS}"
        )),
    }
}

/// A peer to connect to: `HOST:PORT`, `IP:PORT` or `[IPv6]:PORT`, resolved
/// when connecting (so `localhost:7700` works like `127.0.0.1:7700`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PeerAddr {
    host: String,
    port: u16,
}

impl PeerAddr {
    /// Parses `HOST:PORT`; the clap value parser of every peer flag.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let invalid = || format!("{text:?} is not HOST:PORT (a name or address, then a port)");
        let (host, port) = split_host_port(text).ok_or_else(invalid)?;
        if tessera_tls::server_name(&host).is_err() || port == 0 {
            return Err(invalid());
        }
        Ok(Self { host, port })
    }

    /// The host as given, without IPv6 brackets (also the default TLS name).
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// Every address the host resolves to, in the resolver's order.
    pub(crate) fn resolve(&self) -> anyhow::Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|error| anyhow::anyhow!("cannot resolve {self}: {error}"))?
            .collect();
        anyhow::ensure!(!addrs.is_empty(), "{self} resolves to no address");
        Ok(addrs)
    }

    /// Runs `connect` on each resolved address until one succeeds; the last
    /// error otherwise.
    pub(crate) async fn connect_first<T, F, Fut>(&self, mut connect: F) -> anyhow::Result<T>
    where
        F: FnMut(SocketAddr) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<T>>,
    {
        let mut last = None;
        for addr in self.resolve()? {
            match connect(addr).await {
                Ok(connected) => return Ok(connected),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("{self} resolves to no address")))
    }
}

/// `HOST:PORT`, `IP:PORT` or `[IPv6]:PORT` split into a non-empty host
/// (without brackets) and a port; `None` when it is none of them.
pub(crate) fn split_host_port(text: &str) -> Option<(String, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    if host.is_empty() {
        return None;
    }
    Some((host.to_owned(), port.parse().ok()?))
}

impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_names_or_addresses_with_a_port() {
        let peer = PeerAddr::parse("localhost:7700").unwrap();
        assert_eq!(
            (peer.host(), peer.to_string().as_str()),
            ("localhost", "localhost:7700")
        );
        assert!(peer.resolve().unwrap().iter().any(|a| a.ip().is_loopback()));
        let v6 = PeerAddr::parse("[::1]:7800").unwrap();
        assert_eq!((v6.host(), v6.to_string().as_str()), ("::1", "[::1]:7800"));
        assert_eq!(PeerAddr::parse("127.0.0.1:1").unwrap().host(), "127.0.0.1");
        for bad in [
            "no-port",
            ":7700",
            "host:",
            "host:0",
            "host:70000",
            "::1:7800",
            "[::1:7800",
            "bad name!:1",
            "a b:1",
        ] {
            assert!(PeerAddr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seconds_are_positive_and_may_be_fractional() {
        assert_eq!(seconds("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(seconds("10"), Ok(Duration::from_secs(10)));
        for bad in ["0", "-1", "NaN", "inf", "1e9", "", "ten"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
    }
}
