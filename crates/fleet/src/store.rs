//! The connection to the shared store (Redis or Valkey): one multiplexed
//! connection per server that every task pipelines on, reconnected in the
//! background with back-off, and a budget no call may exceed. Whether the
//! store is reachable is logged once per change, not once per request.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::IntoConnectionInfo;
use zeroize::Zeroizing;

use crate::Error;

/// Environment variable holding the store password when no file is given.
pub const PASSWORD_ENV: &str = "TESSERA_STORE_PASSWORD";

/// How to reach the store.
#[derive(Clone)]
pub struct StoreConfig {
    /// `redis://HOST:PORT/DB` or `rediss://…` for TLS; an ACL user may be
    /// named (`redis://USER@HOST`), a password never (see `password`).
    pub url: String,
    /// The longest any request waits on the store. Default 50 ms.
    pub budget: Duration,
    /// The password (or the ACL user's), from a file or the environment.
    pub password: Option<Zeroizing<String>>,
    /// For `rediss://`: the CA certificates (PEM) the store's certificate
    /// must chain to; without it, the system's trust store.
    pub ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for StoreConfig {
    /// Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.url)
            .field("budget", &self.budget)
            .field("password", &self.password.as_ref().map(|_| "set"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl StoreConfig {
    /// The default budget for one call.
    pub const DEFAULT_BUDGET: Duration = Duration::from_millis(50);

    /// A store at `url` with the default budget and no password.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            budget: Self::DEFAULT_BUDGET,
            password: None,
            ca_file: None,
        }
    }

    /// Reads the password from `file` (first line, trailing newline cut),
    /// else from [`PASSWORD_ENV`] when set.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file when it cannot be read.
    pub fn password_from(mut self, file: Option<&std::path::Path>) -> Result<Self, Error> {
        self.password = match file {
            Some(path) => {
                let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|error| {
                    Error::Config(format!("password file {}: {error}", path.display()))
                })?);
                Some(Zeroizing::new(
                    text.lines().next().unwrap_or_default().to_owned(),
                ))
            }
            None => std::env::var(PASSWORD_ENV).ok().map(Zeroizing::new),
        };
        Ok(self)
    }
}

/// The shared store of one server.
pub struct Store {
    url: String,
    client: redis::Client,
    manager: ConnectionManagerConfig,
    /// Made on first use, inside the runtime that drives it.
    connection: OnceLock<ConnectionManager>,
    budget: Duration,
    reachable: AtomicBool,
    outages: AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.url)
            .field("budget", &self.budget)
            .field("reachable", &self.reachable.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Prepares the connection; nothing is sent yet, so a server starts
    /// while the store is down and uses it once it is back.
    ///
    /// # Errors
    /// [`Error::Config`] for an address that is not `redis://` or
    /// `rediss://`, or that carries a password.
    pub fn open(config: &StoreConfig) -> Result<Self, Error> {
        let url = &config.url;
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(Error::Config(format!(
                "{url:?}: expected redis://HOST:PORT/DB or rediss://HOST:PORT/DB"
            )));
        }
        let info = url
            .as_str()
            .into_connection_info()
            .map_err(|error| Error::Config(format!("{url:?}: {error}")))?;
        if info.redis_settings().password().is_some() {
            return Err(Error::Config(format!(
                "{}: the address must not hold a password (command lines are visible to every \
                 user); give it in a file (--store-password-file) or in {PASSWORD_ENV}",
                redact(url)
            )));
        }
        let mut redis_settings = info.redis_settings().clone();
        if let Some(password) = &config.password {
            redis_settings = redis_settings.set_password(password.as_str());
        }
        let info = info.set_redis_settings(redis_settings);
        let client = match info.addr() {
            redis::ConnectionAddr::TcpTls { insecure: true, .. } => {
                return Err(Error::Config(format!(
                    "{}: the store's certificate is always verified (#insecure is refused); \
                     give its CA with --store-ca-file",
                    redact(url)
                )));
            }
            redis::ConnectionAddr::TcpTls { .. } => {
                let root_cert = match &config.ca_file {
                    Some(path) => Some(std::fs::read(path).map_err(|error| {
                        Error::Config(format!("CA file {}: {error}", path.display()))
                    })?),
                    None => None,
                };
                let certificates = redis::TlsCertificates {
                    client_tls: None,
                    root_cert,
                };
                redis::Client::build_with_tls(info, certificates)
                    .map_err(|error| Error::Config(format!("{}: {error}", redact(url))))?
            }
            _ if config.ca_file.is_some() => {
                return Err(Error::Config(format!(
                    "{}: a CA file is for rediss:// (TLS) addresses",
                    redact(url)
                )));
            }
            _ => redis::Client::open(info)?,
        };
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.budget.max(Duration::from_millis(500))))
            .set_response_timeout(None)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(2))
            .set_number_of_retries(usize::MAX);
        Ok(Self {
            url: redact(url),
            client,
            manager,
            connection: OnceLock::new(),
            budget: config.budget,
            reachable: AtomicBool::new(true),
            outages: AtomicU64::new(0),
        })
    }

    /// The address, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The budget of one call.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Times the store went from reachable to not.
    pub fn outages(&self) -> u64 {
        self.outages.load(Ordering::Relaxed)
    }

    /// Whether the last call got an answer.
    pub fn is_reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// A handle on the shared connection (cheap to clone; calls pipeline).
    pub(crate) fn connection(&self) -> Result<ConnectionManager, Error> {
        if let Some(connection) = self.connection.get() {
            return Ok(connection.clone());
        }
        let connection = self
            .client
            .get_connection_manager_lazy(self.manager.clone())?;
        Ok(self.connection.get_or_init(|| connection).clone())
    }

    /// The client, for connections of their own (pub/sub).
    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }

    /// Runs one call under the budget, noting whether the store answered.
    ///
    /// # Errors
    /// [`Error::Timeout`] past the budget, [`Error::Redis`] when the store
    /// refused or the connection failed.
    pub async fn call<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Error> {
        self.call_within(self.budget, call).await
    }

    /// [`Store::call`] with another budget (start-up and operator commands).
    ///
    /// # Errors
    /// As [`Store::call`].
    pub async fn call_within<T>(
        &self,
        budget: Duration,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Error> {
        let outcome = match tokio::time::timeout(budget, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Error::Redis(error)),
            Err(_) => Err(Error::Timeout(budget)),
        };
        match &outcome {
            // A command error (wrong type, NOSCRIPT, ACL) came from a store that answered.
            Ok(_) => self.note_reachable(),
            Err(Error::Redis(error)) if !is_connection_error(error) => self.note_reachable(),
            Err(error) => self.note_unreachable(error),
        }
        outcome
    }

    fn note_reachable(&self) {
        if !self.reachable.swap(true, Ordering::Relaxed) {
            tracing::info!(store = %self.url, "shared store reachable again");
        }
    }

    fn note_unreachable(&self, error: &Error) {
        if self.reachable.swap(false, Ordering::Relaxed) {
            self.outages.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(store = %self.url, %error, "shared store unreachable; applying the fallback policies until it is back");
        }
    }
}

/// Errors of the connection rather than of one command.
fn is_connection_error(error: &redis::RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_unrecoverable_error()
}

/// The address with any password replaced, for messages and logs.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user, host)) if user.contains(':') => {
            let user = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn addresses_are_checked_at_start() {
        assert!(Store::open(&StoreConfig::new("redis://127.0.0.1:6379/0")).is_ok());
        for bad in ["127.0.0.1:6379", "http://127.0.0.1/", "redis://"] {
            let error = Store::open(&StoreConfig::new(bad)).unwrap_err();
            assert!(matches!(error, Error::Config(_)), "{bad}: {error}");
        }
        let error = Store::open(&StoreConfig::new("redis://app:hunter2@127.0.0.1:6379/0"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("must not hold a password"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn passwords_come_from_a_file_and_never_print() {
        let dir = std::env::temp_dir().join(format!("tessera-fleet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("password");
        std::fs::write(&file, "s3cret\n").unwrap();
        let config = StoreConfig::new("redis://127.0.0.1/0")
            .password_from(Some(&file))
            .unwrap();
        assert_eq!(
            config.password.as_deref().map(String::as_str),
            Some("s3cret")
        );
        assert!(!format!("{config:?}").contains("s3cret"));
        let missing =
            StoreConfig::new("redis://127.0.0.1/0").password_from(Some(&dir.join("none")));
        assert!(missing.unwrap_err().to_string().contains("password file"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
