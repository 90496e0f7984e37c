//! Routed request/response and pub/sub messages for Tessera: a versioned,
//! bounded frame with request ids and a sans-IO codec; a router of async
//! handlers answering `Result<Response, E: IntoReply>`, with tower-style layers (deadlines, concurrency limits, checks,
//! capability policies); a server over TLS (plain TCP on loopback only) with
//! built-in subscribe/publish and tessera-guard admission; a client that
//! multiplexes requests on one connection; HMAC frame authentication with a
//! replay window, capability tokens (tessera-trust) with proof of possession
//! per frame, and [`AuthStack`] to require both. [`tunnel`] carries byte
//! streams to named services (`tessera proxy`). [`node`] is the UDP side:
//! multicast discovery with signed adverts and Noise-sealed datagrams between
//! peers. The `netaio-compat` feature talks to netaio 0.0.9 peers.
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

mod auth;
mod client;
mod codec;
mod error;
#[cfg(feature = "fleet")]
mod fleet_replay;
mod frame;
mod handler;
mod layer;
mod message;
mod metrics;
#[cfg(feature = "netaio-compat")]
pub mod netaio;
pub mod node;
mod outbox;
mod pow_gate;
mod reloader;
mod reply;
mod revocation_watch;
mod router;
mod rules;
mod server;
mod topics;
pub mod tunnel;

pub use auth::{
    hmac_section, AuthFailure, AuthStack, Capability, CapabilityAuth, FrameAuth, HmacAuth,
    Principal, Role,
};
pub use client::{Client, ClientOptions, Subscription};
pub use codec::FrameCodec;
pub use error::Error;
#[cfg(feature = "fleet")]
pub use fleet_replay::FleetFrameReplay;
pub use frame::{Frame, Limits, FLAG_ONE_WAY, HEADER_LEN, MAGIC, VERSION};
pub use handler::{Handler, HandlerFuture, Request};
pub use layer::{CheckLayer, ConcurrencyLimitLayer, Layer, PolicyLayer, TimeoutLayer};
pub use message::MessageType;
pub use outbox::{OutputBudget, PROCESS_OUTPUT_BYTES};
pub use pow_gate::{PowAdmission, POW_CHALLENGE_URI, POW_SOLUTION_URI};
pub use reloader::{NetaioReloader, Reloader};
pub use reply::{IntoReply, Rejection, Response};
pub use router::Router;
pub use server::{Server, ServerOptions, ServerStats, Transport};
pub use topics::Topics;
