//! Integration tests of tessera-tlslp over real TLS on loopback.

mod golden;
mod guarded;
mod hostile;
mod sessions;
mod util;
