//! Reads the PROXY v1/v2 header a trusted relay sends first
//! (`../shared/spec/guard.md` §1), consuming exactly its bytes so the
//! protocol (TLS) starts right after, with no polling: v2 has a fixed
//! 16-byte prefix that states its length, v1 is at most 107 bytes ending in
//! CRLF and is read byte by byte (only relays send it, once per connection).

use std::net::SocketAddr;

use tessera_guard::{parse_proxy_header, ProxyHeader, MAX_PROXY_HEADER};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The v2 signature (12 bytes) then version/command, family and a u16 length.
const V2_PREFIX: usize = 16;

/// Longest v1 header (the PROXY protocol specification, section 2.1).
const V1_MAX: usize = 107;

/// Why a relay's header was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The relay closed before the header was complete.
    #[error("relay closed inside the PROXY header")]
    Closed,
    /// The bytes are not a PROXY header, or one longer than allowed.
    #[error("invalid PROXY header: {0}")]
    Invalid(String),
    /// Reading the socket failed.
    #[error("reading the PROXY header: {0}")]
    Io(std::io::ErrorKind),
}

/// Reads one header: `Ok(Some(client))`, or `Ok(None)` when the relay does
/// not know the client (UNKNOWN, LOCAL, Unix); the caller keeps the relay's
/// address then. The caller bounds the time.
///
/// # Errors
/// [`ProxyError`] for a closed, failed or invalid header.
pub async fn read_proxy_header<R: AsyncRead + Unpin>(
    stream: &mut R,
) -> Result<Option<SocketAddr>, ProxyError> {
    let mut buffer = Vec::with_capacity(V2_PREFIX);
    read_exact_into(stream, &mut buffer, 1).await?;
    if buffer[0] == b'\r' {
        read_exact_into(stream, &mut buffer, V2_PREFIX - 1).await?;
        let length = usize::from(u16::from_be_bytes([buffer[14], buffer[15]]));
        if V2_PREFIX + length > MAX_PROXY_HEADER {
            return Err(ProxyError::Invalid(format!(
                "header longer than {MAX_PROXY_HEADER} bytes"
            )));
        }
        read_exact_into(stream, &mut buffer, length).await?;
    } else {
        while !buffer.ends_with(b"\r\n") {
            if buffer.len() >= V1_MAX {
                return Err(ProxyError::Invalid(format!(
                    "v1 header longer than {V1_MAX} bytes"
                )));
            }
            read_exact_into(stream, &mut buffer, 1).await?;
        }
    }
    match parse_proxy_header(&buffer) {
        Ok(ProxyHeader::Complete { source, length }) if length == buffer.len() => Ok(source),
        Ok(_) => Err(ProxyError::Invalid("incomplete header".into())),
        Err(error) => Err(ProxyError::Invalid(error.to_string())),
    }
}

async fn read_exact_into<R: AsyncRead + Unpin>(
    stream: &mut R,
    buffer: &mut Vec<u8>,
    count: usize,
) -> Result<(), ProxyError> {
    let start = buffer.len();
    buffer.resize(start + count, 0);
    match stream.read_exact(&mut buffer[start..]).await {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => Err(ProxyError::Closed),
        Err(error) => Err(ProxyError::Io(error.kind())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8]) -> (Result<Option<SocketAddr>, ProxyError>, Vec<u8>) {
        let mut input = bytes;
        let result = read_proxy_header(&mut input).await;
        (result, input.to_vec())
    }

    #[tokio::test]
    async fn v1_and_v2_headers_are_consumed_exactly() {
        let (source, rest) = read(b"PROXY TCP4 192.0.2.7 192.0.2.1 5555 443\r\n\x16\x03").await;
        assert_eq!(source, Ok(Some("192.0.2.7:5555".parse().unwrap())));
        assert_eq!(rest, b"\x16\x03");
        let (source, rest) = read(b"PROXY UNKNOWN\r\nhello").await;
        assert_eq!((source, rest.as_slice()), (Ok(None), &b"hello"[..]));

        let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
        v2.extend_from_slice(&[198, 51, 100, 9, 192, 0, 2, 1, 0x1f, 0x90, 0x01, 0xbb]);
        v2.extend_from_slice(b"TLS");
        let (source, rest) = read(&v2).await;
        assert_eq!(source, Ok(Some("198.51.100.9:8080".parse().unwrap())));
        assert_eq!(rest, b"TLS");
    }

    #[tokio::test]
    async fn bad_and_short_headers_are_refused() {
        assert_eq!(
            read(b"PROXY TCP4 192.0.2.7").await.0,
            Err(ProxyError::Closed)
        );
        assert!(matches!(
            read(b"GET / HTTP/1.1\r\n").await.0,
            Err(ProxyError::Invalid(_))
        ));
        let long = [b"PROXY ".as_slice(), &[b'x'; 200]].concat();
        assert!(matches!(read(&long).await.0, Err(ProxyError::Invalid(_))));
        let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11".to_vec();
        v2.extend_from_slice(&u16::MAX.to_be_bytes());
        assert!(matches!(read(&v2).await.0, Err(ProxyError::Invalid(_))));
        assert_eq!(read(b"").await.0, Err(ProxyError::Closed));
    }
}
