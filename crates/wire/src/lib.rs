//! Routed request/response and pub/sub messages for Tessera: a versioned,
//! bounded frame with request ids, a sans-IO codec, and (in the following
//! modules) a router, a TLS server and a multiplexing client.
//!
//! ```
//! use bytes::BytesMut;
//! use tessera_wire::{Frame, Limits, MessageType};
//!
//! let request = Frame::new(MessageType::REQUEST_URI, 1, "echo", &b"hello"[..]);
//! let mut wire = BytesMut::new();
//! request.encode(&Limits::default(), &mut wire).unwrap();
//! let decoded = Frame::decode(&mut wire, &Limits::default()).unwrap().unwrap();
//! assert_eq!(decoded.reply(MessageType::RESPOND_URI, decoded.body.clone()).request_id, 1);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)
)]

mod codec;
mod error;
mod frame;
mod message;

pub use codec::FrameCodec;
pub use error::Error;
pub use frame::{Frame, Limits, FLAG_ONE_WAY, HEADER_LEN, MAGIC, VERSION};
pub use message::MessageType;
