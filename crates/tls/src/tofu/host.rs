//! TOFU keys: `(host, port)` with the host normalised so that one server is one
//! row however it is spelled (`../shared/spec/guard.md` §11): lower-case IDNA
//! A-label without a trailing dot; IP literals canonical, without brackets or zone.

use std::fmt;
use std::net::IpAddr;

use idna::AsciiDenyList;

use crate::Error;

/// The Gemini port, the default when `host:port` omits the port.
pub const DEFAULT_PORT: u16 = 1965;

/// A normalised `(host, port)` pair.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostKey {
    host: String,
    port: u16,
}

impl HostKey {
    /// Normalises `host` and pairs it with `port` (1–65535).
    ///
    /// # Errors
    /// [`Error::InvalidHost`] for an empty or invalid name or port 0.
    pub fn new(host: &str, port: u16) -> Result<Self, Error> {
        if port == 0 {
            return Err(invalid(host, "port must be 1-65535"));
        }
        Ok(Self {
            host: normalize_host(host)?,
            port,
        })
    }

    /// Parses `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 literal;
    /// `default_port` applies when no port is given.
    ///
    /// # Errors
    /// [`Error::InvalidHost`] when the text is none of those.
    pub fn parse(text: &str, default_port: u16) -> Result<Self, Error> {
        let text = text.trim();
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| invalid(text, "missing ] after an IPv6 address"))?;
            match after {
                "" => (host, default_port),
                _ => {
                    let port = after
                        .strip_prefix(':')
                        .ok_or_else(|| invalid(text, "expected :PORT after ]"))?;
                    (host, parse_port(text, port)?)
                }
            }
        } else if text.matches(':').count() > 1 {
            (text, default_port)
        } else if let Some((host, port)) = text.split_once(':') {
            (host, parse_port(text, port)?)
        } else {
            (text, default_port)
        };
        Self::new(host, port)
    }

    /// The normalised host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Normalises a host name or IP literal as TOFU keys it.
///
/// # Errors
/// [`Error::InvalidHost`] for an empty, over-long or invalid name.
pub fn normalize_host(host: &str) -> Result<String, Error> {
    let trimmed = host.trim();
    let bare = strip_brackets(trimmed);
    let without_zone = bare.split('%').next().unwrap_or(bare);
    if let Ok(ip) = without_zone.parse::<IpAddr>() {
        return Ok(ip.to_canonical().to_string());
    }
    if bare.contains('%') || bare.contains(':') || bare != trimmed {
        return Err(invalid(host, "not a valid host name or IP address"));
    }
    let name = bare.strip_suffix('.').unwrap_or(bare);
    if name.is_empty() {
        return Err(invalid(host, "empty host"));
    }
    let ascii = idna::domain_to_ascii_cow(name.as_bytes(), AsciiDenyList::URL)
        .map_err(|_| invalid(host, "not a valid host name"))?;
    if ascii.is_empty()
        || ascii.len() > 253
        || ascii
            .split('.')
            .any(|label| label.is_empty() || label.len() > 63)
    {
        return Err(invalid(host, "not a valid host name"));
    }
    Ok(ascii.into_owned())
}

/// `[::1]` → `::1`; anything else unchanged.
pub(crate) fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

fn parse_port(text: &str, port: &str) -> Result<u16, Error> {
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(invalid(text, "port must be 1-65535")),
        Ok(port) => Ok(port),
    }
}

fn invalid(text: &str, reason: &'static str) -> Error {
    Error::InvalidHost {
        text: text.chars().take(300).collect(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spellings_of_one_host_share_a_key() {
        let key = HostKey::new("example.org", 1965).unwrap();
        for text in [
            "Example.ORG",
            "example.org.",
            " example.org:1965",
            "EXAMPLE.org.:1965",
        ] {
            assert_eq!(HostKey::parse(text, DEFAULT_PORT).unwrap(), key, "{text}");
        }
        let ip6 = HostKey::new("2001:db8::1", 1965).unwrap();
        for text in [
            "2001:DB8::1",
            "[2001:db8:0:0::1]",
            "[2001:db8::1]:1965",
            "[fe80::1%eth0]",
        ] {
            let parsed = HostKey::parse(text, DEFAULT_PORT).unwrap();
            if text.contains("fe80") {
                assert_eq!(parsed.host(), "fe80::1");
            } else {
                assert_eq!(parsed, ip6, "{text}");
            }
        }
        assert_eq!(normalize_host("::ffff:192.0.2.1").unwrap(), "192.0.2.1");
        assert_eq!(
            normalize_host("bücher.example").unwrap(),
            "xn--bcher-kva.example"
        );
        assert_eq!(ip6.to_string(), "[2001:db8::1]:1965");
    }

    #[test]
    fn invalid_hosts_and_ports_are_refused() {
        for text in [
            "",
            ":1965",
            "host:0",
            "host:70000",
            "host:abc",
            "[::1",
            "[::1]x",
            "a b",
            "a/b",
            "..",
            "a..b",
        ] {
            assert!(
                HostKey::parse(text, DEFAULT_PORT).is_err(),
                "accepted {text:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_is_idempotent(text in ".{0,80}") {
            if let Ok(key) = HostKey::parse(&text, DEFAULT_PORT) {
                let again = HostKey::parse(&key.to_string(), DEFAULT_PORT).unwrap();
                prop_assert_eq!(again, key);
            }
        }
    }
}
