//! Integration tests of tessera-tlslp over real TLS on loopback.

mod golden;
mod hostile;
mod sessions;
mod util;
