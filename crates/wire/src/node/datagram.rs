//! The node's datagrams: a 4-byte header (`TN`, version, kind) and then
//!
//! - `ADVERT`: a signed advert, in clear (it is public anyway);
//! - `INIT`: the initiator's session index and Noise IK message 1, whose
//!   encrypted payload is the initiator's signed advert and a handshake stamp;
//! - `RESPONSE`: the initiator's index, the responder's index, Noise message 2;
//! - `DATA`: the receiver's index, a 64-bit counter (the AEAD nonce) and the
//!   ChaCha20-Poly1305 ciphertext of the payload;
//! - `COOKIE`: the node id an advert came from and a 16-byte cookie, sent
//!   back to the advert's source address;
//! - `PROVEN_ADVERT`: that cookie and a signed advert, which shows the
//!   advertiser receives at the address it sends from.
//!
//! Indices, as in WireGuard, let a receiver find the session without trying
//! keys, and the explicit counter lets datagrams be lost or reordered.

use bytes::{Buf, BufMut, Bytes, BytesMut};

const MAGIC: &[u8; 2] = b"TN";
/// 2: unknown nodes join through a cookie (`COOKIE`, `PROVEN_ADVERT`).
const VERSION: u8 = 2;

/// A parsed datagram, borrowing its payload.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Datagram<'a> {
    Advert(&'a [u8]),
    Init {
        sender: u32,
        noise: &'a [u8],
    },
    Response {
        receiver: u32,
        sender: u32,
        noise: &'a [u8],
    },
    Data {
        receiver: u32,
        counter: u64,
        ciphertext: &'a [u8],
    },
    Cookie {
        node: [u8; 32],
        cookie: [u8; 16],
    },
    ProvenAdvert {
        cookie: [u8; 16],
        advert: &'a [u8],
    },
}

const ADVERT: u8 = 1;
const INIT: u8 = 2;
const RESPONSE: u8 = 3;
const DATA: u8 = 4;
const COOKIE: u8 = 5;
const PROVEN_ADVERT: u8 = 6;

impl<'a> Datagram<'a> {
    /// None for anything that is not a well-formed datagram of ours.
    pub(crate) fn parse(mut bytes: &'a [u8]) -> Option<Self> {
        if bytes.len() < 4 || &bytes[..2] != MAGIC || bytes[2] != VERSION {
            return None;
        }
        let kind = bytes[3];
        bytes.advance(4);
        let need = match kind {
            ADVERT => 0,
            INIT => 4,
            RESPONSE => 8,
            DATA => 12,
            COOKIE => 48,
            PROVEN_ADVERT => 16,
            _ => return None,
        };
        if bytes.len() < need {
            return None;
        }
        Some(match kind {
            ADVERT => Self::Advert(bytes),
            INIT => Self::Init {
                sender: bytes.get_u32(),
                noise: bytes,
            },
            RESPONSE => Self::Response {
                receiver: bytes.get_u32(),
                sender: bytes.get_u32(),
                noise: bytes,
            },
            DATA => Self::Data {
                receiver: bytes.get_u32(),
                counter: bytes.get_u64(),
                ciphertext: bytes,
            },
            COOKIE if bytes.len() == 48 => {
                let (node, cookie) = bytes.split_at(32);
                Self::Cookie {
                    node: node.try_into().ok()?,
                    cookie: cookie.try_into().ok()?,
                }
            }
            COOKIE => return None,
            _ => {
                let (cookie, advert) = bytes.split_at(16);
                Self::ProvenAdvert {
                    cookie: cookie.try_into().ok()?,
                    advert,
                }
            }
        })
    }

    pub(crate) fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(64);
        out.put_slice(MAGIC);
        out.put_u8(VERSION);
        match self {
            Self::Advert(advert) => {
                out.put_u8(ADVERT);
                out.put_slice(advert);
            }
            Self::Init { sender, noise } => {
                out.put_u8(INIT);
                out.put_u32(*sender);
                out.put_slice(noise);
            }
            Self::Response {
                receiver,
                sender,
                noise,
            } => {
                out.put_u8(RESPONSE);
                out.put_u32(*receiver);
                out.put_u32(*sender);
                out.put_slice(noise);
            }
            Self::Data {
                receiver,
                counter,
                ciphertext,
            } => {
                out.put_u8(DATA);
                out.put_u32(*receiver);
                out.put_u64(*counter);
                out.put_slice(ciphertext);
            }
            Self::Cookie { node, cookie } => {
                out.put_u8(COOKIE);
                out.put_slice(node);
                out.put_slice(cookie);
            }
            Self::ProvenAdvert { cookie, advert } => {
                out.put_u8(PROVEN_ADVERT);
                out.put_slice(cookie);
                out.put_slice(advert);
            }
        }
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_kind_round_trips() {
        let samples = [
            Datagram::Advert(b"advert"),
            Datagram::Init {
                sender: 7,
                noise: b"m1",
            },
            Datagram::Response {
                receiver: 7,
                sender: 9,
                noise: b"m2",
            },
            Datagram::Data {
                receiver: 9,
                counter: u64::MAX,
                ciphertext: b"",
            },
            Datagram::Cookie {
                node: [3; 32],
                cookie: [4; 16],
            },
            Datagram::ProvenAdvert {
                cookie: [5; 16],
                advert: b"advert",
            },
        ];
        for sample in samples {
            assert_eq!(Datagram::parse(&sample.encode()), Some(sample));
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Datagram::parse(&bytes);
        }
    }
}
