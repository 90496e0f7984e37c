//! Integration tests of tessera-tls over loopback, one binary (links once).

mod handshake;
mod openssl;
mod pem;
mod tofu;
mod util;
