//! PROXY protocol v1 and v2 headers from trusted relays
//! (`../shared/spec/guard.md` §1): framed here (a header is parsed once all
//! of it has come), read with the `ppp` crate. The source address in the
//! header replaces the relay's address for every decision.

use std::net::{IpAddr, SocketAddr};

use ppp::HeaderResult;

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
/// [`Error::Proxy`] when the bytes are not a PROXY header or it exceeds
/// [`MAX_PROXY_HEADER`].
pub fn parse_proxy_header(input: &[u8]) -> Result<ProxyHeader, Error> {
    Ok(match parse_proxy_details(input, MAX_PROXY_HEADER)? {
        None => ProxyHeader::Incomplete,
        Some(details) => ProxyHeader::Complete {
            source: details.source,
            length: details.length,
        },
    })
}

/// Everything a PROXY header says, for callers that want more than the
/// client's address (the Python package's tlacacoca-compatible parser).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyDetails {
    /// 1 (text) or 2 (binary).
    pub version: u8,
    /// A v2 `LOCAL` header: the relay's own connection (a health check),
    /// whose addresses are not a client's.
    pub local: bool,
    /// The address family the header names.
    pub family: ProxyFamily,
    /// The original client, for a relayed TCP connection over IPv4 or IPv6.
    pub source: Option<SocketAddr>,
    /// The address the client connected to, alongside `source`.
    pub destination: Option<SocketAddr>,
    /// v2 type-length-value extensions (type, value), in wire order.
    pub tlvs: Vec<(u8, Vec<u8>)>,
    /// Bytes the header takes; the protocol starts after them.
    pub length: usize,
}

/// The address family of a PROXY header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyFamily {
    /// `UNKNOWN` (v1) or `AF_UNSPEC` (v2).
    Unspecified,
    /// IPv4 (`TCP4`).
    Inet,
    /// IPv6 (`TCP6`).
    Inet6,
    /// A Unix socket (v2 only).
    Unix,
}

/// The signature that starts a v2 header.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The fixed start of a v2 header: signature, version and command, family
/// and transport, payload length.
const V2_FIXED: usize = 16;
/// What starts a v1 header.
const V1_PREFIX: &[u8; 6] = b"PROXY ";
/// The longest v1 line, CRLF included.
const V1_MAX_LENGTH: usize = 107;

/// Parses a whole PROXY header of at most `max_length` bytes from the start
/// of `input`, with everything it carries. `Ok(None)` while more bytes are
/// needed; an error as soon as they can no longer form a header.
///
/// # Errors
/// [`Error::Proxy`] for bytes that are not a PROXY header, a v2 header whose
/// length field says more than `max_length`, or malformed TLVs.
pub fn parse_proxy_details(input: &[u8], max_length: usize) -> Result<Option<ProxyDetails>, Error> {
    let Some(header) = whole_header(input, max_length)? else {
        return Ok(None);
    };
    if header.starts_with(V2_SIGNATURE) && header[12] == 0x20 {
        // LOCAL: the receiver uses the real endpoints and discards the
        // block, family included, whatever it holds (`ppp` would still
        // want the family's addresses there).
        let family = match header[13] >> 4 {
            0x1 => ProxyFamily::Inet,
            0x2 => ProxyFamily::Inet6,
            0x3 => ProxyFamily::Unix,
            _ => ProxyFamily::Unspecified,
        };
        return Ok(Some(ProxyDetails {
            version: 2,
            local: true,
            family,
            source: None,
            destination: None,
            tlvs: Vec::new(),
            length: header.len(),
        }));
    }
    match HeaderResult::parse(header) {
        HeaderResult::V1(Ok(header)) => Ok(Some(v1_details(&header))),
        HeaderResult::V2(Ok(header)) => v2_details(&header).map(Some),
        HeaderResult::V1(Err(error)) => Err(Error::Proxy(error.to_string())),
        HeaderResult::V2(Err(error)) => Err(Error::Proxy(error.to_string())),
    }
}

/// The bytes of the whole header at the start of `input`, once all have
/// come: `Ok(None)` while more may, an error as soon as they cannot start a
/// header. Only whole headers go to `ppp`, which reads a v1 line cut after a
/// space (`... 56324 `) as a malformed one rather than an incomplete one.
fn whole_header(input: &[u8], max_length: usize) -> Result<Option<&[u8]>, Error> {
    let fail = |message: String| Err(Error::Proxy(message));
    let Some(&first) = input.first() else {
        return Ok(None);
    };
    if first == V2_SIGNATURE[0] {
        if !V2_SIGNATURE.starts_with(&input[..input.len().min(V2_SIGNATURE.len())]) {
            return fail("invalid PROXY v2 signature".into());
        }
        // Version 2 and a known command, family and transport: refused as
        // soon as the byte that says otherwise has come.
        if input
            .get(12)
            .is_some_and(|byte| !matches!(byte, 0x20 | 0x21))
        {
            return fail(format!(
                "unsupported PROXY v2 version or command {:#04x}",
                input[12]
            ));
        }
        if input
            .get(13)
            .is_some_and(|byte| byte >> 4 > 3 || byte & 0x0f > 2)
        {
            return fail(format!(
                "unknown PROXY v2 family or transport {:#04x}",
                input[13]
            ));
        }
        if input.len() < V2_FIXED {
            return Ok(None);
        }
        let length = V2_FIXED + usize::from(u16::from_be_bytes([input[14], input[15]]));
        if length > max_length {
            return fail(format!(
                "PROXY v2 header too large ({length} > {max_length} bytes)"
            ));
        }
        return Ok(input.get(..length));
    }
    if !V1_PREFIX.starts_with(&input[..input.len().min(V1_PREFIX.len())]) {
        return fail("missing PROXY protocol header".into());
    }
    let line = &input[..input.len().min(V1_MAX_LENGTH.min(max_length))];
    let end = line.windows(2).position(|pair| pair == b"\r\n");
    // A CR or LF anywhere but in the closing CRLF: refused whether or not
    // the CRLF has come, so a header is never refused once more bytes come.
    let before_end = &line[..end.unwrap_or(line.len() - 1)];
    if before_end.contains(&b'\r') || line[..end.unwrap_or(line.len())].contains(&b'\n') {
        return fail("PROXY v1 header has a bare CR or LF".into());
    }
    if let Some(end) = end {
        return Ok(Some(&input[..end + 2]));
    }
    if line.len() == V1_MAX_LENGTH.min(max_length) {
        return fail(format!("PROXY v1 header longer than {} bytes", line.len()));
    }
    Ok(None)
}

/// Source and destination of an IPv4 header (v1 and v2 share the type).
fn ipv4_endpoints(ip: &ppp::v2::IPv4) -> (SocketAddr, SocketAddr) {
    (
        SocketAddr::new(IpAddr::V4(ip.source_address), ip.source_port),
        SocketAddr::new(IpAddr::V4(ip.destination_address), ip.destination_port),
    )
}

/// Source and destination of an IPv6 header.
fn ipv6_endpoints(ip: &ppp::v2::IPv6) -> (SocketAddr, SocketAddr) {
    (
        SocketAddr::new(IpAddr::V6(ip.source_address), ip.source_port),
        SocketAddr::new(IpAddr::V6(ip.destination_address), ip.destination_port),
    )
}

fn v1_details(header: &ppp::v1::Header<'_>) -> ProxyDetails {
    let (family, addresses) = match header.addresses {
        ppp::v1::Addresses::Tcp4(ip) => (ProxyFamily::Inet, Some(ipv4_endpoints(&ip))),
        ppp::v1::Addresses::Tcp6(ip) => (ProxyFamily::Inet6, Some(ipv6_endpoints(&ip))),
        ppp::v1::Addresses::Unknown => (ProxyFamily::Unspecified, None),
    };
    ProxyDetails {
        version: 1,
        local: false,
        family,
        source: addresses.map(|(source, _)| source),
        destination: addresses.map(|(_, destination)| destination),
        tlvs: Vec::new(),
        length: header.header.len(),
    }
}

fn v2_details(header: &ppp::v2::Header<'_>) -> Result<ProxyDetails, Error> {
    use ppp::v2::{Addresses, Protocol};
    let family = match header.addresses {
        Addresses::Unspecified => ProxyFamily::Unspecified,
        Addresses::IPv4(_) => ProxyFamily::Inet,
        Addresses::IPv6(_) => ProxyFamily::Inet6,
        Addresses::Unix(_) => ProxyFamily::Unix,
    };
    // Addresses count only for a relayed stream: datagrams, Unix sockets and
    // UNSPEC fall back to the connection's own endpoints.
    let addresses = match header.addresses {
        _ if header.protocol != Protocol::Stream => None,
        Addresses::IPv4(ip) => Some(ipv4_endpoints(&ip)),
        Addresses::IPv6(ip) => Some(ipv6_endpoints(&ip)),
        Addresses::Unspecified | Addresses::Unix(_) => None,
    };
    // After the address block; `ppp` counts an UNSPEC header's whole payload
    // as its (ignored) addresses, the specification none of it.
    let tlv_bytes = match header.addresses {
        Addresses::Unspecified => &header.as_bytes()[V2_FIXED..],
        _ => header.tlv_bytes(),
    };
    let tlvs = tlvs(tlv_bytes)?;
    Ok(ProxyDetails {
        version: 2,
        local: false,
        family,
        source: addresses.map(|(source, _)| source),
        destination: addresses.map(|(_, destination)| destination),
        tlvs,
        length: header.len(),
    })
}

/// v2 type-length-value extensions: a type byte, a big-endian u16 length,
/// the value; they must fill `bytes` exactly.
fn tlvs(mut bytes: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, Error> {
    let mut tlvs = Vec::new();
    while let Some((&[kind, high, low], rest)) = bytes.split_first_chunk::<3>() {
        let length = usize::from(u16::from_be_bytes([high, low]));
        let Some((value, rest)) = rest.split_at_checked(length) else {
            return Err(Error::Proxy("truncated PROXY v2 TLV value".into()));
        };
        tlvs.push((kind, value.to_vec()));
        bytes = rest;
    }
    if bytes.is_empty() {
        Ok(tlvs)
    } else {
        Err(Error::Proxy("truncated PROXY v2 TLV header".into()))
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

    /// A v1 or v2 header for a relayed TCP connection, and its client.
    fn valid_header() -> impl Strategy<Value = (Vec<u8>, SocketAddr)> {
        let v1 = (any::<SocketAddr>(), any::<SocketAddr>()).prop_filter_map(
            "one family",
            |(source, destination)| {
                let family = match (source, destination) {
                    (SocketAddr::V4(_), SocketAddr::V4(_)) => "TCP4",
                    (SocketAddr::V6(_), SocketAddr::V6(_)) => "TCP6",
                    _ => return None,
                };
                let line = format!(
                    "PROXY {family} {} {} {} {}\r\n",
                    source.ip(),
                    destination.ip(),
                    source.port(),
                    destination.port()
                );
                // The header carries no IPv6 flow label or scope id.
                Some((
                    line.into_bytes(),
                    SocketAddr::new(source.ip(), source.port()),
                ))
            },
        );
        let v2 = (
            any::<(std::net::SocketAddrV4, u16)>(),
            proptest::collection::vec(
                (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..20)),
                0..4,
            ),
        )
            .prop_map(|((source, port), tlvs)| {
                let mut payload = source.ip().octets().to_vec();
                payload.extend_from_slice(&[192, 0, 2, 1]);
                payload.extend_from_slice(&source.port().to_be_bytes());
                payload.extend_from_slice(&port.to_be_bytes());
                for (kind, value) in tlvs {
                    payload.push(kind);
                    payload.extend_from_slice(&u16::try_from(value.len()).unwrap().to_be_bytes());
                    payload.extend_from_slice(&value);
                }
                let mut bytes = V2_SIGNATURE.to_vec();
                bytes.extend_from_slice(&[0x21, 0x11]);
                bytes.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
                bytes.extend_from_slice(&payload);
                (bytes, SocketAddr::V4(source))
            });
        prop_oneof![v1, v2]
    }

    #[test]
    fn regression_a_v1_line_cut_after_a_port_is_incomplete() {
        // `ppp` alone read this as a header with a bad destination port: a
        // relay's header split there by TCP dropped the connection.
        let cut = b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 ";
        assert_eq!(parse_proxy_header(cut).unwrap(), ProxyHeader::Incomplete);
        assert!(parse_proxy_header(b"PROXY TCP4 1.2.3.4\n").is_err());
        // A bare CR is refused whole as it is cut, not only while cut.
        assert!(parse_proxy_header(b"PROXY UNKNOWN \rx").is_err());
        assert!(parse_proxy_header(b"PROXY UNKNOWN \rx\r\n").is_err());
        assert!(parse_proxy_header(&[b"PROXY ".as_slice(), &[b'A'; 101]].concat()).is_err());
    }

    #[test]
    fn details_of_v1_and_v2_headers() {
        let v1 = b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 1234\r\nrest";
        let details = parse_proxy_details(v1, 4096).unwrap().unwrap();
        assert_eq!(details.version, 1);
        assert_eq!(details.family, ProxyFamily::Inet);
        assert_eq!(details.source, Some("203.0.113.7:56324".parse().unwrap()));
        assert_eq!(details.destination, Some("192.0.2.1:1234".parse().unwrap()));
        assert_eq!(details.length, v1.len() - 4);
        assert_eq!(parse_proxy_details(&v1[..20], 4096).unwrap(), None);
        assert_eq!(parse_proxy_details(b"", 4096).unwrap(), None);
        assert!(parse_proxy_details(b"\x16\x03\x01", 4096).is_err());

        let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        v2.extend_from_slice(&[0x21, 0x11, 0x00, 0x12]);
        v2.extend_from_slice(&[198, 51, 100, 9, 192, 0, 2, 1]);
        v2.extend_from_slice(&443u16.to_be_bytes());
        v2.extend_from_slice(&1965u16.to_be_bytes());
        v2.extend_from_slice(&[0x02, 0x00, 0x03, b'a', b'.', b'b']);
        let details = parse_proxy_details(&v2, 4096).unwrap().unwrap();
        assert_eq!((details.version, details.local), (2, false));
        assert_eq!(details.source, Some("198.51.100.9:443".parse().unwrap()));
        assert_eq!(details.destination, Some("192.0.2.1:1965".parse().unwrap()));
        assert_eq!(details.tlvs, vec![(0x02, b"a.b".to_vec())]);
        assert_eq!(details.length, 34);
        assert_eq!(parse_proxy_details(&v2[..30], 4096).unwrap(), None);
        // The length field alone tells that the header is too long.
        assert!(parse_proxy_details(&v2[..16], 33).is_err());

        // LOCAL: the relay's own connection; addresses and TLVs ignored.
        v2[12] = 0x20;
        let local = parse_proxy_details(&v2, 4096).unwrap().unwrap();
        assert!(local.local && local.source.is_none() && local.tlvs.is_empty());
        // A TLV that runs past the header.
        v2[12] = 0x21;
        v2[30] = 0x09;
        assert!(parse_proxy_details(&v2, 4096).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
            let _ = parse_proxy_header(&bytes);
            let _ = parse_proxy_details(&bytes, 4096);
        }

        #[test]
        fn a_header_is_incomplete_until_its_last_byte(header in valid_header()) {
            let (bytes, source) = header;
            for cut in 0..bytes.len() {
                prop_assert_eq!(
                    parse_proxy_header(&bytes[..cut]).map_err(|e| e.to_string()),
                    Ok(ProxyHeader::Incomplete),
                    "{:?}",
                    &bytes[..cut]
                );
            }
            let whole = ProxyHeader::Complete { source: Some(source), length: bytes.len() };
            prop_assert_eq!(parse_proxy_header(&bytes).unwrap(), whole);
            let followed = [bytes.as_slice(), b"\x16\x03\x01 rest"].concat();
            prop_assert_eq!(parse_proxy_header(&followed).unwrap(), whole);
        }
    }
}
