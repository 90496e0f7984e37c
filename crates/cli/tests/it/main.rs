//! The `tessera` binary end to end, in one test binary so it links once.

mod chat;
mod cli;
mod common;
mod fleet;
mod gemini;
mod guard;
mod pow;
mod proxy;
mod trust;
mod wire;
