//! The frame, sans-IO: magic and version, type, flags, request id, URI, auth
//! section and body, every length bounded before anything is buffered.
//!
//! ```text
//! offset size field
//!  0     2    magic "TW"
//!  2     1    version (1)
//!  3     1    message type
//!  4     1    flags (bit 0: one-way, no reply expected; others must be 0)
//!  5     4    request id (u32, big-endian; 0 for unsolicited frames)
//!  9     2    URI length (u16)        — URI: UTF-8, at most `Limits::max_uri`
//! 11     2    auth length (u16)       — auth section: opaque to the codec
//! 13     4    body length (u32)
//! 17     …    URI, auth, body
//! ```
//!
//! Unlike netaio's frame, the header names the protocol and its version (a
//! stray client fails fast), carries a request id (replies are matched
//! exactly, many requests share one connection), and has no CRC: TLS or the
//! auth layer protects integrity, a CRC would only detect accidents.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::{Error, MessageType};

/// The first bytes of every frame.
pub const MAGIC: [u8; 2] = *b"TW";
/// The frame version this codec speaks.
pub const VERSION: u8 = 1;
/// Header size in bytes.
pub const HEADER_LEN: usize = 17;
/// Flag: the sender expects no reply.
pub const FLAG_ONE_WAY: u8 = 0x01;
const KNOWN_FLAGS: u8 = FLAG_ONE_WAY;

/// One message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The message type.
    pub kind: MessageType,
    /// Flags ([`FLAG_ONE_WAY`]).
    pub flags: u8,
    /// Matches a reply to its request; 0 for unsolicited frames.
    pub request_id: u32,
    /// The resource.
    pub uri: String,
    /// The auth section, written and checked by an auth layer.
    pub auth: Bytes,
    /// The payload.
    pub body: Bytes,
}

/// Size limits a codec enforces, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Whole frame, header included (default 1 MiB).
    pub max_frame: usize,
    /// URI (default 1024).
    pub max_uri: usize,
    /// Auth section (default 8 KiB: room for a capability token and its proof).
    pub max_auth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame: 1024 * 1024,
            max_uri: 1024,
            max_auth: 8 * 1024,
        }
    }
}

impl Frame {
    /// A frame with no auth section and no flags.
    pub fn new(
        kind: MessageType,
        request_id: u32,
        uri: impl Into<String>,
        body: impl Into<Bytes>,
    ) -> Self {
        Self {
            kind,
            flags: 0,
            request_id,
            uri: uri.into(),
            auth: Bytes::new(),
            body: body.into(),
        }
    }

    /// A reply of `kind` to this frame: same request id and URI.
    pub fn reply(&self, kind: MessageType, body: impl Into<Bytes>) -> Self {
        Self::new(kind, self.request_id, self.uri.clone(), body)
    }

    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.uri.len() + self.auth.len() + self.body.len()
    }

    /// The header and URI exactly as encoded, with the auth length set to
    /// `auth_len`: what an auth layer signs together with the body.
    pub fn signed_prefix(&self, auth_len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.uri.len());
        self.put_header(&mut out, auth_len);
        out.extend_from_slice(self.uri.as_bytes());
        out
    }

    fn put_header(&self, out: &mut impl BufMut, auth_len: usize) {
        out.put_slice(&MAGIC);
        out.put_u8(VERSION);
        out.put_u8(self.kind.0);
        out.put_u8(self.flags);
        out.put_u32(self.request_id);
        out.put_u16(u16::try_from(self.uri.len()).unwrap_or(u16::MAX));
        out.put_u16(u16::try_from(auth_len).unwrap_or(u16::MAX));
        out.put_u32(u32::try_from(self.body.len()).unwrap_or(u32::MAX));
    }

    /// Appends the encoding to `out`.
    ///
    /// # Errors
    /// [`Error::FrameTooLarge`] when a part exceeds `limits` (nothing is written).
    pub fn encode(&self, limits: &Limits, out: &mut BytesMut) -> Result<(), Error> {
        check_lengths(self.uri.len(), self.auth.len(), self.body.len(), limits)?;
        if self.flags & !KNOWN_FLAGS != 0 {
            return Err(Error::Malformed("unknown flags"));
        }
        out.reserve(self.encoded_len());
        self.put_header(out, self.auth.len());
        out.put_slice(self.uri.as_bytes());
        out.put_slice(&self.auth);
        out.put_slice(&self.body);
        Ok(())
    }

    /// Decodes one frame from the front of `buffer`: `Ok(None)` when more bytes
    /// are needed. Lengths are checked as soon as the header is in, so an
    /// oversize frame is refused before it is buffered.
    ///
    /// # Errors
    /// [`Error::Malformed`] (bad magic, version, flags, UTF-8) or
    /// [`Error::FrameTooLarge`]; the stream cannot be resynchronised after either.
    pub fn decode(buffer: &mut BytesMut, limits: &Limits) -> Result<Option<Self>, Error> {
        if buffer.len() < HEADER_LEN {
            // Refuse a wrong protocol as early as its first bytes show it.
            if !MAGIC.starts_with(&buffer[..buffer.len().min(2)]) {
                return Err(Error::Malformed("not a tessera-wire frame (bad magic)"));
            }
            if buffer.len() > 2 && buffer[2] != VERSION {
                return Err(Error::Malformed("unsupported frame version"));
            }
            return Ok(None);
        }
        let mut header = &buffer[..HEADER_LEN];
        let magic = [header.get_u8(), header.get_u8()];
        if magic != MAGIC {
            return Err(Error::Malformed("not a tessera-wire frame (bad magic)"));
        }
        if header.get_u8() != VERSION {
            return Err(Error::Malformed("unsupported frame version"));
        }
        let kind = MessageType(header.get_u8());
        let flags = header.get_u8();
        if flags & !KNOWN_FLAGS != 0 {
            return Err(Error::Malformed("unknown flags"));
        }
        let request_id = header.get_u32();
        let uri_len = usize::from(header.get_u16());
        let auth_len = usize::from(header.get_u16());
        let body_len = header.get_u32() as usize;
        check_lengths(uri_len, auth_len, body_len, limits)?;
        let total = HEADER_LEN + uri_len + auth_len + body_len;
        if buffer.len() < total {
            buffer.reserve(total - buffer.len());
            return Ok(None);
        }
        let mut frame = buffer.split_to(total).freeze();
        frame.advance(HEADER_LEN);
        let uri = frame.split_to(uri_len);
        let auth = frame.split_to(auth_len);
        let uri = std::str::from_utf8(&uri)
            .map_err(|_| Error::Malformed("URI is not UTF-8"))?
            .to_owned();
        Ok(Some(Self {
            kind,
            flags,
            request_id,
            uri,
            auth,
            body: frame,
        }))
    }
}

fn check_lengths(uri: usize, auth: usize, body: usize, limits: &Limits) -> Result<(), Error> {
    let total = HEADER_LEN
        .saturating_add(uri)
        .saturating_add(auth)
        .saturating_add(body);
    if uri > limits.max_uri.min(usize::from(u16::MAX))
        || auth > limits.max_auth.min(usize::from(u16::MAX))
        || total > limits.max_frame
        || u32::try_from(body).is_err()
    {
        return Err(Error::FrameTooLarge {
            size: total,
            limit: limits.max_frame,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn round_trip(frame: &Frame) -> Frame {
        let mut buffer = BytesMut::new();
        frame.encode(&Limits::default(), &mut buffer).unwrap();
        assert_eq!(buffer.len(), frame.encoded_len());
        let decoded = Frame::decode(&mut buffer, &Limits::default())
            .unwrap()
            .unwrap();
        assert!(buffer.is_empty());
        decoded
    }

    #[test]
    fn layout_is_as_documented() {
        let frame = Frame::new(MessageType::REQUEST_URI, 7, "echo", &b"hi"[..]);
        let mut buffer = BytesMut::new();
        frame.encode(&Limits::default(), &mut buffer).unwrap();
        assert_eq!(
            &buffer[..],
            b"TW\x01\x00\x00\x00\x00\x00\x07\x00\x04\x00\x00\x00\x00\x00\x02echohi"
        );
        assert_eq!(round_trip(&frame), frame);
    }

    #[test]
    fn partial_input_waits_and_bad_input_fails_fast() {
        let frame = Frame::new(MessageType::PUBLISH_URI, 1, "t", vec![1u8; 100]);
        let mut encoded = BytesMut::new();
        frame.encode(&Limits::default(), &mut encoded).unwrap();
        for cut in 0..encoded.len() {
            let mut partial = BytesMut::from(&encoded[..cut]);
            assert_eq!(
                Frame::decode(&mut partial, &Limits::default()).unwrap(),
                None,
                "{cut}"
            );
        }
        for garbage in [&b"G"[..], b"GET / HTTP/1.1\r\n", b"TW\x02", b"\x16\x03\x01"] {
            let mut buffer = BytesMut::from(garbage);
            assert!(
                Frame::decode(&mut buffer, &Limits::default()).is_err(),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn oversize_lengths_are_refused_from_the_header() {
        let limits = Limits {
            max_frame: 1000,
            ..Limits::default()
        };
        let mut header = BytesMut::new();
        header.put_slice(b"TW\x01\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00");
        header.put_u32(u32::MAX);
        assert!(matches!(
            Frame::decode(&mut header, &limits),
            Err(Error::FrameTooLarge { .. })
        ));
        let big = Frame::new(MessageType::OK, 1, "x", vec![0u8; 2000]);
        assert!(big.encode(&limits, &mut BytesMut::new()).is_err());
        let long_uri = Frame::new(MessageType::OK, 1, "u".repeat(2000), Bytes::new());
        assert!(long_uri
            .encode(&Limits::default(), &mut BytesMut::new())
            .is_err());
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(
            kind in any::<u8>(),
            one_way in any::<bool>(),
            request_id in any::<u32>(),
            uri in "[a-z/]{0,64}",
            auth in proptest::collection::vec(any::<u8>(), 0..256),
            body in proptest::collection::vec(any::<u8>(), 0..4096),
        ) {
            let frame = Frame {
                kind: MessageType(kind),
                flags: if one_way { FLAG_ONE_WAY } else { 0 },
                request_id,
                uri,
                auth: auth.into(),
                body: body.into(),
            };
            prop_assert_eq!(round_trip(&frame), frame);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut buffer = BytesMut::from(&bytes[..]);
            let limits = Limits { max_frame: 1024, ..Limits::default() };
            while let Ok(Some(frame)) = Frame::decode(&mut buffer, &limits) {
                prop_assert!(frame.encoded_len() <= 1024);
            }
        }

        #[test]
        fn arbitrary_bytes_after_a_valid_header_never_panic(
            kind in any::<u8>(),
            tail in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            let mut buffer = BytesMut::new();
            buffer.put_slice(b"TW\x01");
            buffer.put_u8(kind);
            buffer.put_slice(&tail);
            let _ = Frame::decode(&mut buffer, &Limits::default());
        }
    }
}
