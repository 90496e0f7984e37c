//! netaio 0.0.9 frames (`../shared/spec/netaio-wire.md` §1–2): a 9-byte
//! header (type, auth length, body length, CRC-32 of the body), a packify
//! auth dict, and a body of `u16 uri length || uri || content`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::packify::Value;
use crate::Error;

/// netaio header size.
pub const NETAIO_HEADER_LEN: usize = 9;
/// Largest `uri + content` netaio itself can send (§1).
pub const NETAIO_MAX_PAYLOAD: usize = 65_423 - 1;

/// One netaio frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetaioFrame {
    /// Message type (netaio numbering, as [`crate::MessageType`]).
    pub kind: u8,
    /// The auth dict (empty dict when unauthenticated).
    pub auth: Value,
    /// The URI, raw bytes.
    pub uri: Bytes,
    /// The content.
    pub content: Bytes,
}

impl NetaioFrame {
    /// A frame with an empty auth dict.
    pub fn new(kind: u8, uri: impl Into<Bytes>, content: impl Into<Bytes>) -> Self {
        Self {
            kind,
            auth: Value::Dict(Vec::new()),
            uri: uri.into(),
            content: content.into(),
        }
    }

    /// The body as on the wire: what the CRC and netaio's MAC cover.
    pub fn body(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(2 + self.uri.len() + self.content.len());
        body.put_u16(self.uri.len() as u16);
        body.extend_from_slice(&self.uri);
        body.extend_from_slice(&self.content);
        body
    }
}

/// Encodes and decodes netaio frames; `max_body` bounds what is accepted.
#[derive(Clone, Copy, Debug)]
pub struct NetaioCodec {
    max_body: usize,
}

impl NetaioCodec {
    /// A codec accepting bodies up to `max_body` bytes (at most 65,535).
    pub fn new(max_body: usize) -> Self {
        Self {
            max_body: max_body.min(usize::from(u16::MAX)),
        }
    }
}

impl Default for NetaioCodec {
    fn default() -> Self {
        Self::new(usize::from(u16::MAX))
    }
}

/// What went wrong with a frame whose length was fine: netaio answers a bad
/// CRC with ERROR and keeps the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A valid frame.
    Frame(NetaioFrame),
    /// The CRC did not match; the frame's type and URI, if readable.
    BadChecksum {
        /// The URI as far as it could be read.
        uri: Bytes,
    },
}

impl Decoder for NetaioCodec {
    type Item = Decoded;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Decoded>, Error> {
        if src.len() < NETAIO_HEADER_LEN {
            return Ok(None);
        }
        let mut header = &src[..NETAIO_HEADER_LEN];
        let kind = header.get_u8();
        let auth_len = usize::from(header.get_u16());
        let body_len = usize::from(header.get_u16());
        let checksum = header.get_u32();
        if auth_len == 0 {
            return Err(Error::Malformed("netaio frame without an auth block"));
        }
        if body_len < 2 || body_len > self.max_body {
            return Err(Error::FrameTooLarge {
                size: NETAIO_HEADER_LEN + auth_len + body_len,
                limit: NETAIO_HEADER_LEN + usize::from(u16::MAX) + self.max_body,
            });
        }
        let total = NETAIO_HEADER_LEN + auth_len + body_len;
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        let mut frame = src.split_to(total).freeze();
        frame.advance(NETAIO_HEADER_LEN);
        let auth = frame.split_to(auth_len);
        let body = frame;
        let uri_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
        if 2 + uri_len > body.len() {
            return Err(Error::Malformed("netaio uri length past the body"));
        }
        let uri = body.slice(2..2 + uri_len);
        if crc32fast::hash(&body) != checksum {
            return Ok(Some(Decoded::BadChecksum { uri }));
        }
        let auth = Value::decode(&auth)?;
        if !matches!(auth, Value::Dict(_)) {
            return Err(Error::Malformed("netaio auth block is not a dict"));
        }
        Ok(Some(Decoded::Frame(NetaioFrame {
            kind,
            auth,
            uri,
            content: body.slice(2 + uri_len..),
        })))
    }
}

impl Encoder<NetaioFrame> for NetaioCodec {
    type Error = Error;

    fn encode(&mut self, frame: NetaioFrame, dst: &mut BytesMut) -> Result<(), Error> {
        let auth = frame.auth.encode();
        let body = frame.body();
        if body.len() > self.max_body || auth.len() > usize::from(u16::MAX) {
            return Err(Error::FrameTooLarge {
                size: NETAIO_HEADER_LEN + auth.len() + body.len(),
                limit: NETAIO_HEADER_LEN + usize::from(u16::MAX) + self.max_body,
            });
        }
        dst.reserve(NETAIO_HEADER_LEN + auth.len() + body.len());
        dst.put_u8(frame.kind);
        dst.put_u16(auth.len() as u16);
        dst.put_u16(body.len() as u16);
        dst.put_u32(crc32fast::hash(&body));
        dst.put_slice(&auth);
        dst.put_slice(&body);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netaio::hex;

    #[test]
    fn the_captured_echo_round_trips_byte_for_byte() {
        let wire = hex("00 0003 0012 8d3e9858 4d4000 0004 6563686f 68656c6c6f206e657461696f");
        let mut buffer = BytesMut::from(&wire[..]);
        let Some(Decoded::Frame(frame)) = NetaioCodec::default().decode(&mut buffer).unwrap()
        else {
            panic!("expected a frame");
        };
        assert_eq!(
            (frame.kind, &frame.uri[..], &frame.content[..]),
            (0, &b"echo"[..], &b"hello netaio"[..])
        );
        let mut out = BytesMut::new();
        NetaioCodec::default().encode(frame, &mut out).unwrap();
        assert_eq!(&out[..], &wire[..]);
    }

    #[test]
    fn bad_checksums_and_bad_frames() {
        let mut wire = hex("00 0003 0012 deadbeef 4d4000 0004 6563686f 68656c6c6f206e657461696f");
        let mut buffer = BytesMut::from(&wire[..]);
        assert_eq!(
            NetaioCodec::default().decode(&mut buffer).unwrap(),
            Some(Decoded::BadChecksum {
                uri: Bytes::from_static(b"echo")
            })
        );
        wire[2] = 0; // auth length 0
        wire[1] = 0;
        assert!(NetaioCodec::default()
            .decode(&mut BytesMut::from(&wire[..]))
            .is_err());
        let oversize = hex("00 0003 ffff 00000000");
        assert!(NetaioCodec::new(1024)
            .decode(&mut BytesMut::from(&oversize[..]))
            .is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..1024)) {
            let mut buffer = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = NetaioCodec::default().decode(&mut buffer) {}
        }
    }
}
