//! One module per `tessera` subcommand: its flags and what it runs.

pub(crate) mod certs;
pub(crate) mod chat;
pub(crate) mod docs;
pub(crate) mod fingerprint;
pub(crate) mod fleet;
pub(crate) mod gemini;
pub(crate) mod guard;
pub(crate) mod listener_reload;
pub(crate) mod pow;
pub(crate) mod proxy;
pub(crate) mod tls;
pub(crate) mod tlslp;
pub(crate) mod tofu;
pub(crate) mod trust;
pub(crate) mod wire;
