//! IP access control, deny first (`../shared/spec/guard.md` §6): an address in
//! any deny entry is refused; else, with an allow list, only its entries pass;
//! else the default applies.
//!
//! Entries are merged into sorted, disjoint ranges per address family, so a
//! decision is two binary searches whatever the number of entries (tlacacoca
//! scans its lists linearly).

use std::net::IpAddr;

use crate::address::Bits;
use crate::Error;

/// What the ACL does with addresses matching no list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AclDefault {
    /// Allow (the default).
    #[default]
    Allow,
    /// Deny.
    Deny,
}

/// A compiled access list.
#[derive(Clone, Debug, Default)]
pub struct Acl {
    allow: Ranges,
    deny: Ranges,
    has_allow: bool,
    default: AclDefault,
}

#[derive(Clone, Debug, Default)]
struct Ranges {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl Acl {
    /// Compiles allow and deny entries (addresses or CIDRs).
    ///
    /// # Errors
    /// [`Error::Config`] naming the first invalid entry (not an address or CIDR,
    /// prefix out of range, host bits set).
    pub fn new<S: AsRef<str>>(allow: &[S], deny: &[S], default: AclDefault) -> Result<Self, Error> {
        Ok(Self {
            allow: Ranges::parse(allow)?,
            deny: Ranges::parse(deny)?,
            has_allow: !allow.is_empty(),
            default,
        })
    }

    /// Whether lists are empty and the default is deny (everything denied; worth a warning).
    pub fn denies_everything(&self) -> bool {
        !self.has_allow && self.deny.is_empty() && self.default == AclDefault::Deny
    }

    /// Whether an address may connect. `None` ("no address") is allowed only
    /// when the ACL is empty with a default of allow.
    pub fn allows(&self, address: Option<IpAddr>) -> bool {
        let Some(address) = address else {
            return !self.has_allow && self.deny.is_empty() && self.default == AclDefault::Allow;
        };
        let bits = Bits::from(address);
        if self.deny.contains(bits) {
            return false;
        }
        if self.has_allow {
            return self.allow.contains(bits);
        }
        self.default == AclDefault::Allow
    }
}

impl Ranges {
    fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, Error> {
        let mut ranges = Self::default();
        for entry in entries {
            match parse_entry(entry.as_ref())? {
                Entry::V4(start, end) => ranges.v4.push((start, end)),
                Entry::V6(start, end) => ranges.v6.push((start, end)),
            }
        }
        ranges.v4 = merge(ranges.v4);
        ranges.v6 = merge(ranges.v6);
        Ok(ranges)
    }

    fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    fn contains(&self, bits: Bits) -> bool {
        match bits {
            Bits::V4(address) => find(&self.v4, address),
            Bits::V6(address) => find(&self.v6, address),
        }
    }
}

enum Entry {
    V4(u32, u32),
    V6(u128, u128),
}

fn parse_entry(text: &str) -> Result<Entry, Error> {
    let bad = |why: &str| Error::Config(format!("ACL entry '{text}' {why}"));
    let (address, prefix) = match text.trim().split_once('/') {
        Some((address, prefix)) => (
            address,
            Some(
                prefix
                    .parse::<u8>()
                    .map_err(|_| bad("has an invalid prefix length"))?,
            ),
        ),
        None => (text.trim(), None),
    };
    let address: IpAddr = address
        .parse()
        .map_err(|_| bad("is not an IP address or CIDR"))?;
    match address {
        IpAddr::V4(v4) => v4_range(u32::from(v4), prefix.unwrap_or(32), text),
        IpAddr::V6(v6) => {
            let prefix = prefix.unwrap_or(128);
            if prefix > 128 {
                return Err(bad("has a prefix longer than 128"));
            }
            // An IPv4-mapped entry (::ffff:a.b.c.d/96+n) is the IPv4 entry a.b.c.d/n.
            if let Some(v4) = v6.to_ipv4_mapped() {
                if prefix >= 96 {
                    return v4_range(u32::from(v4), prefix - 96, text);
                }
            }
            let bits = u128::from(v6);
            let host = u128::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
            if bits & host != 0 {
                return Err(bad(&format!(
                    "has host bits set; use /128 for one address or {}/{prefix}",
                    std::net::Ipv6Addr::from(bits & !host)
                )));
            }
            Ok(Entry::V6(bits, bits | host))
        }
    }
}

fn v4_range(bits: u32, prefix: u8, text: &str) -> Result<Entry, Error> {
    if prefix > 32 {
        return Err(Error::Config(format!(
            "ACL entry '{text}' has a prefix longer than 32"
        )));
    }
    let host = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
    if bits & host != 0 {
        return Err(Error::Config(format!(
            "ACL entry '{text}' has host bits set; use /32 for one address or {}/{prefix}",
            std::net::Ipv4Addr::from(bits & !host)
        )));
    }
    Ok(Entry::V4(bits, bits | host))
}

fn merge<T: Ord + Copy + num::Step>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut merged: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if start <= last.1 || T::is_next(last.1, start) => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

fn find<T: Ord + Copy>(ranges: &[(T, T)], address: T) -> bool {
    let index = ranges.partition_point(|(start, _)| *start <= address);
    index > 0 && ranges[index - 1].1 >= address
}

/// Adjacency for merging ranges (`a + 1 == b`), without overflow.
mod num {
    pub(super) trait Step {
        fn is_next(a: Self, b: Self) -> bool;
    }
    impl Step for u32 {
        fn is_next(a: Self, b: Self) -> bool {
            a.checked_add(1) == Some(b)
        }
    }
    impl Step for u128 {
        fn is_next(a: Self, b: Self) -> bool {
            a.checked_add(1) == Some(b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(text: &str) -> Option<IpAddr> {
        crate::address::parse_client(text)
    }

    #[test]
    fn deny_first_then_allow_then_default() {
        let acl = Acl::new(&["10.1.2.3"], &["10.0.0.0/8"], AclDefault::Allow).unwrap();
        assert!(!acl.allows(ip("10.1.2.3")));
        assert!(!acl.allows(ip("192.0.2.1")));
        let acl = Acl::new::<&str>(&[], &["203.0.113.0/24"], AclDefault::Deny).unwrap();
        assert!(!acl.allows(ip("198.51.100.1")));
        let acl = Acl::new(&["2001:db8::/32"], &["2001:db8:bad::/48"], AclDefault::Deny).unwrap();
        assert!(acl.allows(ip("2001:db8:1::1")));
        assert!(!acl.allows(ip("2001:db8:bad::1")));
        assert!(!acl.allows(None));
    }

    #[test]
    fn invalid_entries_name_themselves() {
        for bad in [
            "192.168.1.100/24",
            "10.0.0.0/33",
            "not-an-ip",
            "2001:db8::1/32",
            "1.2.3.4/x",
        ] {
            let error = Acl::new(&[bad], &[], AclDefault::Allow)
                .unwrap_err()
                .to_string();
            assert!(error.contains(bad), "{error}");
        }
        let error = Acl::new(&["192.168.1.100/24"], &[], AclDefault::Allow)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("host bits") && error.contains("192.168.1.0/24"),
            "{error}"
        );
        assert!(Acl::new::<&str>(&[], &[], AclDefault::Deny)
            .unwrap()
            .denies_everything());
    }

    proptest! {
        #[test]
        fn matches_a_brute_force_model(
            entries in proptest::collection::vec((any::<u32>(), 0u8..=32, any::<bool>()), 0..20),
            address in any::<u32>(),
            default_allow in any::<bool>(),
        ) {
            let mut allow = Vec::new();
            let mut deny = Vec::new();
            for (base, prefix, is_deny) in &entries {
                let host = u32::MAX.checked_shr(u32::from(*prefix)).unwrap_or(0);
                let text = format!("{}/{prefix}", std::net::Ipv4Addr::from(base & !host));
                if *is_deny { deny.push(text) } else { allow.push(text) }
            }
            let default = if default_allow { AclDefault::Allow } else { AclDefault::Deny };
            let acl = Acl::new(&allow, &deny, default).unwrap();
            let inside = |list: &[String]| list.iter().any(|entry| {
                let (base, prefix) = entry.split_once('/').unwrap();
                let base = u32::from(base.parse::<std::net::Ipv4Addr>().unwrap());
                let prefix: u32 = prefix.parse().unwrap();
                prefix == 0 || (address >> (32 - prefix)) == (base >> (32 - prefix))
            });
            let expected = if inside(&deny) { false } else if !allow.is_empty() { inside(&allow) } else { default_allow };
            prop_assert_eq!(acl.allows(Some(IpAddr::from(std::net::Ipv4Addr::from(address)))), expected);
        }
    }
}
