//! The loopback rule of every insecure mode: verification may be skipped only
//! toward `localhost`, 127.0.0.0/8 or ::1, checked before any socket is opened.

use std::net::IpAddr;

use crate::tofu::strip_brackets;
use crate::Error;

/// Whether `host` (a name, an IP literal, optionally in brackets) is loopback.
///
/// Accepts `localhost` in any case with an optional trailing dot, any address in
/// 127.0.0.0/8, `::1` and IPv4-mapped loopback (`::ffff:127.0.0.1`). Other names
/// are refused even if they resolve to loopback: the check must not depend on DNS.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim();
    let host = strip_brackets(host);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return ip.to_canonical().is_loopback();
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    name.eq_ignore_ascii_case("localhost")
}

/// Fails with [`Error::InsecureNotLoopback`] unless `host` is loopback.
///
/// # Errors
/// When `host` is not loopback.
pub fn ensure_loopback(host: &str) -> Result<(), Error> {
    if is_loopback_host(host) {
        Ok(())
    } else {
        Err(Error::InsecureNotLoopback {
            host: host.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_addresses_are_accepted() {
        for host in [
            "localhost",
            "LOCALHOST",
            "localhost.",
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "[::1]",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn everything_else_is_refused() {
        for host in [
            "example.com",
            "localhost.example.com",
            "10.0.0.1",
            "128.0.0.1",
            "::2",
            "0.0.0.0",
            "::",
            "",
            "vm",
            "[::1",
        ] {
            assert!(!is_loopback_host(host), "{host}");
            assert!(matches!(
                ensure_loopback(host),
                Err(Error::InsecureNotLoopback { .. })
            ));
        }
    }
}
