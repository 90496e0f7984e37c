//! tessera-trust's integration tests, one binary: the shared vectors, the
//! fixes beyond trust-core, and the signer behind the connection stage.

mod behaviour;
mod signer;
mod vectors;
