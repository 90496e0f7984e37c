//! tessera-wire's integration tests, in one binary so they link once.

mod netaio_compat;
mod node;
mod tunnel;
mod wire;
