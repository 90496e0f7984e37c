//! The demos: `tessera demo` (the tour), `tessera demo --fleet`, `tessera tls demo`, and the small
//! loopback line service they and the TLS bench talk to.

pub(crate) mod fleet;
pub(crate) mod loopback;
pub(crate) mod tls;
pub(crate) mod tour;
