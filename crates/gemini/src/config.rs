//! Server settings: the TOML file a capsule operator writes, and the resolved
//! settings the server runs with (hosts with their roots and certificates,
//! the guard, timeouts). Command-line flags are merged into the file by the
//! `tessera gemini serve` command.
//!
//! ```toml
//! listen = "[::]:1965"
//! lang = "en"                      # added to text/gemini as lang=en
//! charset = "utf-8"
//! directory_listings = true
//! # cert_dir = "/var/lib/tessera/gemini"   # generated certificates
//!
//! [[host]]
//! name = "example.org"
//! root = "/srv/gemini/example.org"
//! # cert = "/etc/tessera/example.org.crt"  # else self-signed, generated once
//! # key = "/etc/tessera/example.org.key"
//!
//! [[host.rule]]                    # per path: redirect, status or MIME type
//! path = "/old/*"
//! redirect = "/new/$1"
//!
//! [guard.rate_limit]
//! rate = 1.0
//! burst = 10
//!
//! [[guard.cert_rules]]
//! prefix = "/private/"
//! mode = "any"
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tessera_guard::{ClientIds, GuardConfig};
use tessera_tls::Identity;

use crate::{identity, Capsule, Error};

/// The configuration file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Listening address (default `[::]:1965`, which also takes IPv4 clients).
    pub listen: Option<String>,
    /// Where generated certificates are kept.
    pub cert_dir: Option<PathBuf>,
    /// `lang` parameter of `text/gemini` (e.g. `en`), none by default.
    pub lang: Option<String>,
    /// `charset` parameter of `text/gemini` (default `utf-8`).
    pub charset: Option<String>,
    /// Generated listings for directories without `index.gmi` (default true).
    pub directory_listings: Option<bool>,
    /// Read agate-style `.meta` files (per-file MIME types, redirects, `52
    /// Gone`); default false.
    pub meta_files: Option<bool>,
    /// Seconds for the TLS handshake (default 10).
    pub handshake_timeout: Option<f64>,
    /// Seconds for the request line after the handshake (default 10).
    pub request_timeout: Option<f64>,
    /// Seconds to send a response (default 300).
    pub send_timeout: Option<f64>,
    /// Seconds running requests get on shutdown (default 5).
    pub shutdown_grace: Option<f64>,
    /// 32-byte key for the client ids in logs (created 0600 if missing).
    pub log_key_file: Option<PathBuf>,
    /// `"daily"`: derive a new log key each UTC day.
    pub log_key_rotation: Option<String>,
    /// Virtual hosts.
    #[serde(default, rename = "host")]
    pub hosts: Vec<HostConfig>,
    /// Admission control (`[guard]`, shared with every Tessera server).
    #[serde(default)]
    pub guard: GuardConfig,
}

/// One `[[host]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// The host name clients use (and send as SNI).
    pub name: String,
    /// The directory served.
    pub root: PathBuf,
    /// Certificate chain (PEM); with `key`. Else a generated self-signed one.
    pub cert: Option<PathBuf>,
    /// Private key (PEM).
    pub key: Option<PathBuf>,
    /// Per-path redirects, statuses and MIME types (`[[host.rule]]`,
    /// `rules.rs`), the first match winning.
    #[serde(default, rename = "rule")]
    pub rules: Vec<crate::RuleConfig>,
}

impl ConfigFile {
    /// Reads and parses a file.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file and the problem.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| {
            Error::Config(format!(
                "{}: {}",
                path.display(),
                tessera_guard::toml_error_sentence(&e, &text)
            ))
        })
    }

    /// The MIME type of `.gmi` files: `text/gemini; charset=…` plus `lang` when set.
    pub fn gemtext_mime(&self) -> String {
        let mut mime = format!(
            "text/gemini; charset={}",
            self.charset.as_deref().unwrap_or("utf-8")
        );
        if let Some(lang) = &self.lang {
            mime.push_str("; lang=");
            mime.push_str(lang);
        }
        mime
    }

    /// Resolves hosts (roots checked, certificates loaded or generated under
    /// `default_cert_dir` unless `cert_dir` is set), the log key and timeouts.
    ///
    /// # Errors
    /// [`Error::Config`] for no host, a duplicate host, a bad root, a
    /// certificate without its key, bad timeouts or log settings; TLS errors
    /// naming the file.
    pub fn resolve(&self, default_cert_dir: &Path) -> Result<ServerSettings, Error> {
        if self.hosts.is_empty() {
            return Err(Error::Config(
                "no host configured: give --root (and --hostname) or a [[host]] table".into(),
            ));
        }
        let cert_dir = self.cert_dir.as_deref().unwrap_or(default_cert_dir);
        let mime = self.gemtext_mime();
        let listings = self.directory_listings.unwrap_or(true);
        let mut hosts: Vec<VirtualHost> = Vec::new();
        for host in &self.hosts {
            let name = tessera_tls::tofu::normalize_host(&host.name)
                .map_err(|e| Error::Config(format!("host {:?}: {e}", host.name)))?;
            if hosts.iter().any(|h| h.name == name) {
                return Err(Error::Config(format!("host {name} is configured twice")));
            }
            let identity = match (&host.cert, &host.key) {
                (Some(cert), Some(key)) => Identity::load(cert, key)?,
                (None, None) => identity::load_or_generate(cert_dir, &name)?,
                _ => {
                    return Err(Error::Config(format!(
                    "host {name}: give both cert and key, or neither for a generated certificate"
                )))
                }
            };
            let rules = crate::PathRules::new(&host.rules)
                .map_err(|e| Error::Config(format!("host {name}: {e}")))?;
            let capsule = Capsule::new(&host.root, mime.clone(), listings)?
                .with_meta_files(self.meta_files.unwrap_or(false))
                .with_rules(rules);
            hosts.push(VirtualHost {
                name,
                capsule,
                identity,
            });
        }
        let daily = match self.log_key_rotation.as_deref() {
            None | Some("never") => false,
            Some("daily") => true,
            Some(other) => {
                return Err(Error::Config(format!(
                    "log_key_rotation must be \"daily\" or \"never\", not {other:?}"
                )))
            }
        };
        let client_ids = match &self.log_key_file {
            Some(path) => ClientIds::from_key_file(path, daily)?,
            None => ClientIds::from_key_file(&cert_dir.join("log.key"), daily)?,
        };
        let seconds = |value: Option<f64>, default: u64, name: &str| match value {
            None => Ok(Duration::from_secs(default)),
            Some(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(Duration::from_secs_f64(v)),
            Some(v) => Err(Error::Config(format!(
                "{name} must be between 0 and 86400 seconds, not {v}"
            ))),
        };
        Ok(ServerSettings {
            hosts,
            guard: self.guard.clone(),
            handshake_timeout: seconds(self.handshake_timeout, 10, "handshake_timeout")?,
            request_timeout: seconds(self.request_timeout, 10, "request_timeout")?,
            send_timeout: seconds(self.send_timeout, 300, "send_timeout")?,
            shutdown_grace: seconds(self.shutdown_grace, 5, "shutdown_grace")?,
            client_ids,
            public_port: None,
            shared_limit: None,
            fleet: tessera_serve::FleetAdmission::default(),
            metrics: None,
            cgi: Vec::new(),
            cgi_limits: crate::CgiLimits::default(),
            titan: crate::TitanSettings::default(),
        })
    }
}

/// One virtual host, ready to serve.
#[derive(Clone, Debug)]
pub struct VirtualHost {
    /// Normalised host name.
    pub name: String,
    /// What it serves.
    pub capsule: Capsule,
    /// Its certificate and key.
    pub identity: Identity,
}

/// Everything a [`Server`](crate::Server) runs with.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// Virtual hosts; the first answers clients that send no SNI.
    pub hosts: Vec<VirtualHost>,
    /// Admission control.
    pub guard: GuardConfig,
    /// TLS handshake deadline.
    pub handshake_timeout: Duration,
    /// Request line deadline after the handshake (then `40 Request timeout`).
    pub request_timeout: Duration,
    /// Deadline for sending one response.
    pub send_timeout: Duration,
    /// How long running requests may finish after shutdown starts.
    pub shutdown_grace: Duration,
    /// Keyed client ids for logs.
    pub client_ids: ClientIds,
    /// The port URLs may name; default the listener's (set it behind port forwarding).
    pub public_port: Option<u16>,
    /// The per-client rate limit in a store a fleet shares, instead of in memory.
    pub shared_limit: Option<tessera_guard::SharedLimit>,
    /// A fleet's shared state at admission: client certificates revoked in
    /// its store (every request over one is answered `62`) and connection
    /// leases. None by default.
    pub fleet: tessera_serve::FleetAdmission,
    /// Where the server exports its counters (`--metrics-listen`); none by default.
    pub metrics: Option<tessera_serve::Metrics>,
    /// Paths answered by CGI scripts (every host); none by default.
    pub cgi: Vec<crate::CgiRoute>,
    /// Limits on CGI scripts.
    pub cgi_limits: crate::CgiLimits,
    /// Titan uploads; none accepted by default.
    pub titan: crate::TitanSettings,
}

impl ServerSettings {
    /// Settings for `hosts` with default timeouts, an empty guard and a random log key.
    pub fn new(hosts: Vec<VirtualHost>) -> Self {
        Self {
            hosts,
            guard: GuardConfig::default(),
            handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(5),
            client_ids: ClientIds::random(),
            public_port: None,
            shared_limit: None,
            fleet: tessera_serve::FleetAdmission::default(),
            metrics: None,
            cgi: Vec::new(),
            cgi_limits: crate::CgiLimits::default(),
            titan: crate::TitanSettings::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses_and_resolves() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("example.org");
        std::fs::create_dir_all(&root).unwrap();
        let text = format!(
            "listen = \"127.0.0.1:1965\"\nlang = \"en\"\n\n[[host]]\nname = \"Example.ORG\"\nroot = {root:?}\n\n\
             [guard.rate_limit]\nrate = 1.0\nburst = 10\n\n[[guard.cert_rules]]\nprefix = \"/private/\"\nmode = \"any\"\n"
        );
        let file: ConfigFile = toml::from_str(&text).unwrap();
        assert_eq!(file.gemtext_mime(), "text/gemini; charset=utf-8; lang=en");
        let settings = file.resolve(&dir.path().join("certs")).unwrap();
        assert_eq!(settings.hosts[0].name, "example.org");
        assert!(dir.path().join("certs/example.org.crt").exists());
        assert!(settings.guard.build().is_ok());
    }

    #[test]
    fn mistakes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        let root = dir.path().to_str().unwrap();
        for (text, expected) in [
            ("", "no host configured"),
            (&*format!("[[host]]\nname = \"a\"\nroot = {root:?}\n[[host]]\nname = \"A\"\nroot = {root:?}\n"), "configured twice"),
            (&*format!("[[host]]\nname = \"a\"\nroot = {root:?}\ncert = \"x.pem\"\n"), "both cert and key"),
            ("[[host]]\nname = \"a\"\nroot = \"/nonexistent/dir\"\n", "/nonexistent/dir"),
            (&*format!("request_timeout = -1\n[[host]]\nname = \"a\"\nroot = {root:?}\n"), "request_timeout"),
        ] {
            let file: ConfigFile = toml::from_str(text).unwrap();
            let error = file.resolve(&certs).unwrap_err().to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
        assert!(toml::from_str::<ConfigFile>("colour = \"blue\"").is_err());
    }
}
