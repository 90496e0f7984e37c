//! Guard configuration from a TOML `[guard]` section shared by every Tessera
//! server. Invalid configuration is an error at start, never a silent allow-all.
//!
//! ```toml
//! [guard.acl]
//! allow = ["192.0.2.0/24"]
//! deny = ["192.0.2.66"]
//! default = "allow"            # or "deny"
//!
//! [guard.rate_limit]
//! rate = 1.0                   # requests per second refilled
//! burst = 10
//! ipv6_prefix = 64
//! max_clients = 65536
//! # global_rate = 500.0, global_burst = 1000
//!
//! [guard.connections]
//! max_connections = 1024
//! max_connections_per_client = 16
//!
//! # Relays (addresses or CIDRs) whose connections start with a PROXY header.
//! # proxy_from = ["10.0.0.0/8"]
//!
//! [[guard.cert_rules]]
//! prefix = "/admin/"
//! allowed_fingerprints = ["sha256:…"]   # "listed"; or require_cert = true for "any"
//! ```

use serde::Deserialize;

use crate::{
    toml_error_sentence, Acl, AclDefault, CertFingerprint, CertMode, CertRule, CertRules, Chain,
    Error, GlobalLimiter, Limiter, LimiterConfig,
};

/// The `[guard]` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardConfig {
    /// Access list.
    #[serde(default)]
    pub acl: Option<AclConfig>,
    /// Rate limiting.
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
    /// Connection caps.
    #[serde(default)]
    pub connections: Option<ConnectionsConfig>,
    /// Certificate rules.
    #[serde(default)]
    pub cert_rules: Vec<CertRuleConfig>,
    /// Accept client certificates outside their dates (tlacacoca's behaviour).
    #[serde(default)]
    pub accept_expired_client_certs: bool,
    /// Write raw client addresses to logs (off: keyed client ids only).
    #[serde(default)]
    pub log_client_ip: bool,
    /// Trusted relays (addresses or CIDRs) whose connections start with a
    /// PROXY v1/v2 header naming the client; nobody else may send one.
    #[serde(default)]
    pub proxy_from: Vec<String>,
}

/// `[guard.acl]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclConfig {
    /// Allowed addresses or CIDRs.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Denied addresses or CIDRs (win over allow).
    #[serde(default)]
    pub deny: Vec<String>,
    /// `allow` (default) or `deny`.
    #[serde(default)]
    pub default: Option<String>,
}

/// `[guard.rate_limit]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per second refilled. Default 1.0.
    #[serde(default = "default_rate")]
    pub rate: f64,
    /// Bucket size. Default 10.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// IPv4 key prefix. Default 32.
    #[serde(default = "default_v4")]
    pub ipv4_prefix: u8,
    /// IPv6 key prefix. Default 64.
    #[serde(default = "default_v6")]
    pub ipv6_prefix: u8,
    /// Tracked clients at most. Default 65,536.
    #[serde(default = "default_clients")]
    pub max_clients: usize,
    /// Optional global budget (requests per second).
    pub global_rate: Option<f64>,
    /// Burst of the global budget (default: `global_rate` rounded up).
    pub global_burst: Option<u32>,
}

/// `[guard.connections]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionsConfig {
    /// Open connections at most. Default 1024.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Per client (rate-limit key). Default 16.
    #[serde(default = "default_per_client")]
    pub max_connections_per_client: usize,
}

/// One `[[guard.cert_rules]]` entry (our `mode`/`fingerprints` or nauyaca's
/// `require_cert`/`allowed_fingerprints`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertRuleConfig {
    /// Path prefix.
    pub prefix: String,
    /// `public`, `any` or `listed`.
    pub mode: Option<String>,
    /// Fingerprints for `listed`.
    #[serde(default)]
    pub fingerprints: Vec<String>,
    /// nauyaca: any certificate required.
    #[serde(default)]
    pub require_cert: bool,
    /// nauyaca: allow-list (implies a certificate is required).
    pub allowed_fingerprints: Option<Vec<String>>,
}

fn default_rate() -> f64 {
    1.0
}
fn default_burst() -> u32 {
    10
}
fn default_v4() -> u8 {
    32
}
fn default_v6() -> u8 {
    64
}
fn default_clients() -> usize {
    65_536
}
fn default_max_connections() -> usize {
    1024
}
fn default_per_client() -> usize {
    16
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            rate: default_rate(),
            burst: default_burst(),
            ipv4_prefix: default_v4(),
            ipv6_prefix: default_v6(),
            max_clients: default_clients(),
            global_rate: None,
            global_burst: None,
        }
    }
}

impl Default for ConnectionsConfig {
    fn default() -> Self {
        Self {
            max_connections: default_max_connections(),
            max_connections_per_client: default_per_client(),
        }
    }
}

impl GuardConfig {
    /// Parses a TOML document with a `[guard]` table (or the table itself).
    ///
    /// # Errors
    /// [`Error::Config`] for TOML or schema errors.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        #[derive(Deserialize)]
        struct Document {
            guard: Option<toml::Value>,
        }
        let config_error = |e: toml::de::Error| Error::Config(toml_error_sentence(&e, text));
        let document: Document = toml::from_str(text).map_err(config_error)?;
        let table = match document.guard {
            Some(table) => table,
            None => toml::from_str::<toml::Value>(text).map_err(config_error)?,
        };
        table.try_into().map_err(config_error)
    }

    /// The trusted relays of `proxy_from` (`None` when there are none).
    ///
    /// # Errors
    /// [`Error::Config`] for an entry that is not an address or CIDR.
    pub fn relays(&self) -> Result<Option<Acl>, Error> {
        if self.proxy_from.is_empty() {
            return Ok(None);
        }
        Acl::new(&self.proxy_from, &[] as &[String], AclDefault::Deny).map(Some)
    }

    /// Whether the guard has anything to check per connection or request
    /// (an ACL, a rate limit or certificate rules).
    pub fn has_checks(&self) -> bool {
        self.acl.is_some() || self.rate_limit.is_some() || !self.cert_rules.is_empty()
    }

    /// Builds the chain (ACL → rate limit → certificate rules).
    ///
    /// # Errors
    /// [`Error::Config`] naming the invalid entry or setting.
    pub fn build(&self) -> Result<Chain, Error> {
        let mut chain = Chain::new();
        if let Some(acl) = &self.acl {
            let default = match acl.default.as_deref() {
                None | Some("allow") => AclDefault::Allow,
                Some("deny") => AclDefault::Deny,
                Some(other) => {
                    return Err(Error::Config(format!(
                        "acl.default must be \"allow\" or \"deny\", not {other:?}"
                    )))
                }
            };
            chain = chain.acl(Acl::new(&acl.allow, &acl.deny, default)?);
        }
        if let Some(rate) = &self.rate_limit {
            chain = chain.limiter(Limiter::new(&LimiterConfig {
                rate: rate.rate,
                burst: rate.burst,
                ipv4_prefix: rate.ipv4_prefix,
                ipv6_prefix: rate.ipv6_prefix,
                max_clients: rate.max_clients,
            })?);
            if let Some(global_rate) = rate.global_rate {
                let burst = rate
                    .global_burst
                    .unwrap_or(global_rate.ceil().max(1.0) as u32);
                chain = chain.global(GlobalLimiter::new(global_rate, burst)?);
            }
        }
        if !self.cert_rules.is_empty() {
            let rules = self
                .cert_rules
                .iter()
                .map(CertRuleConfig::to_rule)
                .collect::<Result<Vec<_>, _>>()?;
            let mut rules = CertRules::new(rules)?;
            rules.accept_expired(self.accept_expired_client_certs);
            chain = chain.certs(rules);
        }
        Ok(chain)
    }
}

impl CertRuleConfig {
    /// The compiled rule.
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown mode, a bad fingerprint or an empty list.
    pub fn to_rule(&self) -> Result<CertRule, Error> {
        let parse = |list: &[String]| {
            list.iter()
                .map(|f| f.parse::<CertFingerprint>())
                .collect::<Result<Vec<_>, _>>()
        };
        let mode = match (self.mode.as_deref(), &self.allowed_fingerprints) {
            (Some("public"), _) => CertMode::Public,
            (Some("any"), _) => CertMode::Any,
            (Some("listed"), _) => CertMode::Listed(parse(&self.fingerprints)?),
            (Some(other), _) => {
                return Err(Error::Config(format!(
                    "cert rule {:?}: mode must be public, any or listed, not {other:?}",
                    self.prefix
                )))
            }
            (None, Some(list)) => CertMode::Listed(parse(list)?),
            (None, None) if self.require_cert => CertMode::Any,
            (None, None) => CertMode::Public,
        };
        if let CertMode::Listed(list) = &mode {
            if list.is_empty() {
                return Err(Error::Config(format!(
                    "cert rule {:?}: a listed rule needs fingerprints",
                    self.prefix
                )));
            }
        }
        Ok(CertRule {
            prefix: self.prefix.clone(),
            mode,
        })
    }
}
