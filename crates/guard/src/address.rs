//! Client address normalisation (`../shared/spec/guard.md` §1): zone ids
//! dropped, IPv4-mapped IPv6 turned into IPv4, addresses compared as numbers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The address every rule and log line keys on.
pub fn normalize(address: IpAddr) -> IpAddr {
    address.to_canonical()
}

/// Parses a client address as text (brackets and a zone id allowed); `None`
/// when it is not an address ("no address": denied by any ACL).
pub fn parse_client(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    let without_zone = bare.split('%').next().unwrap_or(bare);
    without_zone.parse::<IpAddr>().ok().map(normalize)
}

/// An address as bits: IPv4 in the low 32 bits of a `u128`, with its family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Bits {
    V4(u32),
    V6(u128),
}

impl From<IpAddr> for Bits {
    fn from(address: IpAddr) -> Self {
        match normalize(address) {
            IpAddr::V4(v4) => Self::V4(u32::from(v4)),
            IpAddr::V6(v6) => Self::V6(u128::from(v6)),
        }
    }
}

/// The packed form the client id hashes: 4 bytes for IPv4, 16 for IPv6.
pub(crate) fn packed(address: IpAddr) -> Vec<u8> {
    match normalize(address) {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// Display of a rate-limit key: `192.0.2.1/32`, `2001:db8::/64`.
pub(crate) fn key_text(bits: Bits, prefix: u8) -> String {
    match bits {
        Bits::V4(v4) => format!("{}/{prefix}", Ipv4Addr::from(v4)),
        Bits::V6(v6) => format!("{}/{prefix}", Ipv6Addr::from(v6)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spellings_and_mapped_addresses_normalise() {
        assert_eq!(parse_client("::ffff:192.0.2.9"), parse_client("192.0.2.9"));
        assert_eq!(parse_client("::ffff:c000:209"), parse_client("192.0.2.9"));
        assert_eq!(
            parse_client("2001:DB8::1"),
            parse_client("2001:0db8:0:0:0:0:0:1")
        );
        assert_eq!(parse_client("fe80::1%eth0"), parse_client("fe80::1"));
        assert_eq!(parse_client("[::1]"), Some("::1".parse().unwrap()));
        for bad in ["", "unknown", "300.1.1.1", "1.2.3"] {
            assert_eq!(parse_client(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn normalisation_is_idempotent(bytes in any::<[u8; 16]>()) {
            let address = IpAddr::from(bytes);
            prop_assert_eq!(normalize(normalize(address)), normalize(address));
            prop_assert_eq!(parse_client(&normalize(address).to_string()), Some(normalize(address)));
        }
    }
}
