//! PROXY protocol v1 and v2 headers from trusted relays
//! (`../shared/spec/guard.md` §1), parsed with the `ppp` crate: the source
//! address in the header replaces the relay's address for every decision.

use std::net::{IpAddr, SocketAddr};

use ppp::{HeaderResult, PartialResult};

use crate::Error;

/// Longest header accepted (v1 is at most 107 bytes; v2 with TLVs is bounded here).
pub const MAX_PROXY_HEADER: usize = 536;

/// What the start of a relayed connection holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyHeader {
    /// Not enough bytes yet.
    Incomplete,
    /// A header of `length` bytes; `source` is the client (`None` for UNKNOWN / LOCAL / Unix).
    Complete {
        /// The original client, when the relay knows it.
        source: Option<SocketAddr>,
        /// Bytes the header takes; the protocol starts after them.
        length: usize,
    },
}

/// Parses a PROXY header at the start of `input`.
///
/// # Errors
/// [`Error::Config`]-free: [`Error::Proxy`] when the bytes are not a PROXY header
/// or it exceeds [`MAX_PROXY_HEADER`].
pub fn parse_proxy_header(input: &[u8]) -> Result<ProxyHeader, Error> {
    let window = &input[..input.len().min(MAX_PROXY_HEADER)];
    let header = HeaderResult::parse(window);
    if header.is_incomplete() {
        return if window.len() >= MAX_PROXY_HEADER {
            Err(Error::Proxy("header longer than 536 bytes".into()))
        } else {
            Ok(ProxyHeader::Incomplete)
        };
    }
    match header {
        HeaderResult::V1(Ok(header)) => {
            let source = match header.addresses {
                ppp::v1::Addresses::Tcp4(ip) => Some(SocketAddr::new(
                    IpAddr::V4(ip.source_address),
                    ip.source_port,
                )),
                ppp::v1::Addresses::Tcp6(ip) => Some(SocketAddr::new(
                    IpAddr::V6(ip.source_address),
                    ip.source_port,
                )),
                ppp::v1::Addresses::Unknown => None,
            };
            Ok(ProxyHeader::Complete {
                source,
                length: header.header.len(),
            })
        }
        HeaderResult::V2(Ok(header)) => {
            let source = match header.addresses {
                ppp::v2::Addresses::IPv4(ip) => Some(SocketAddr::new(
                    IpAddr::V4(ip.source_address),
                    ip.source_port,
                )),
                ppp::v2::Addresses::IPv6(ip) => Some(SocketAddr::new(
                    IpAddr::V6(ip.source_address),
                    ip.source_port,
                )),
                _ => None,
            };
            Ok(ProxyHeader::Complete {
                source,
                length: header.len(),
            })
        }
        HeaderResult::V1(Err(error)) => Err(Error::Proxy(error.to_string())),
        HeaderResult::V2(Err(error)) => Err(Error::Proxy(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn v1_and_v2_headers() {
        let v1 = b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 1234\r\n\x16\x03\x01";
        assert_eq!(
            parse_proxy_header(v1).unwrap(),
            ProxyHeader::Complete {
                source: Some("203.0.113.7:56324".parse().unwrap()),
                length: v1.len() - 3
            }
        );
        assert_eq!(
            parse_proxy_header(b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n").unwrap(),
            ProxyHeader::Complete {
                source: Some("[2001:db8::1]:1".parse().unwrap()),
                length: 40
            }
        );
        assert_eq!(
            parse_proxy_header(b"PROXY UNKNOWN\r\n").unwrap(),
            ProxyHeader::Complete {
                source: None,
                length: 15
            }
        );
        assert_eq!(
            parse_proxy_header(b"PROXY TCP4 203.0").unwrap(),
            ProxyHeader::Incomplete
        );
        assert!(parse_proxy_header(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03").is_err());
        assert!(parse_proxy_header(b"GET / HTTP/1.1\r\n").is_err());

        let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        v2.extend_from_slice(&[0x21, 0x11, 0x00, 0x0c]);
        v2.extend_from_slice(&[198, 51, 100, 9, 192, 0, 2, 1]);
        v2.extend_from_slice(&443u16.to_be_bytes());
        v2.extend_from_slice(&1965u16.to_be_bytes());
        assert_eq!(
            parse_proxy_header(&v2).unwrap(),
            ProxyHeader::Complete {
                source: Some("198.51.100.9:443".parse().unwrap()),
                length: 28
            }
        );
        assert_eq!(
            parse_proxy_header(&v2[..20]).unwrap(),
            ProxyHeader::Incomplete
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
            let _ = parse_proxy_header(&bytes);
        }
    }
}
