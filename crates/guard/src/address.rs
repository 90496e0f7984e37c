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
    // Byte scans: the searchers `split_once` and `contains` set up cost more
    // than these few bytes do.
    let without_zone = match bare.bytes().position(|byte| byte == b'%') {
        Some(zone) => &bare[..zone],
        None => bare,
    };
    // Only IPv6 has a colon: parse as the one family it can be.
    if without_zone.bytes().any(|byte| byte == b':') {
        without_zone
            .parse::<Ipv6Addr>()
            .ok()
            .map(|v6| normalize(IpAddr::V6(v6)))
    } else {
        parse_ipv4(without_zone.as_bytes()).map(IpAddr::V4)
    }
}

/// Dotted-quad IPv4 exactly as `Ipv4Addr::from_str` reads it (four decimal
/// octets up to 255, no leading zeros, nothing else), in a quarter of its
/// instructions: every request's address goes through here.
fn parse_ipv4(text: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut octet = 0;
    let mut value = 0u16;
    let mut digits = 0;
    for &byte in text {
        match byte {
            b'0'..=b'9' if digits < 3 && !(digits == 1 && value == 0) => {
                value = value * 10 + u16::from(byte - b'0');
                digits += 1;
            }
            b'.' if digits > 0 && octet < 3 => {
                octets[octet] = u8::try_from(value).ok()?;
                octet += 1;
                value = 0;
                digits = 0;
            }
            _ => return None,
        }
    }
    if digits == 0 || octet < 3 {
        return None;
    }
    octets[3] = u8::try_from(value).ok()?;
    Some(Ipv4Addr::from(octets))
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
        fn ipv4_is_read_as_the_standard_library_reads_it(
            text in prop_oneof!["[0-9.]{0,20}", "[0-9]{1,4}(\\.[0-9]{1,4}){2,4}", "\\PC{0,16}"]
        ) {
            prop_assert_eq!(parse_ipv4(text.as_bytes()), text.parse::<Ipv4Addr>().ok(), "{:?}", text);
        }

        #[test]
        fn normalisation_is_idempotent(bytes in any::<[u8; 16]>()) {
            let address = IpAddr::from(bytes);
            prop_assert_eq!(normalize(normalize(address)), normalize(address));
            prop_assert_eq!(parse_client(&normalize(address).to_string()), Some(normalize(address)));
        }
    }
}
