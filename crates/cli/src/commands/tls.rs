//! `tessera tls`: measurements and a tour of tessera-tls.

use std::process::ExitCode;

use clap::Subcommand;

use crate::{benches, demos};

#[derive(Debug, Subcommand)]
pub(crate) enum TlsCommand {
    /// Measure mTLS handshakes/s on loopback and TOFU checks/s on a large store.
    Bench(benches::tls::BenchArgs),
    /// Tour of tessera-tls: dev PKI, mutual TLS, refused clients, TOFU, on loopback.
    Demo(demos::tls::TlsDemoArgs),
}

pub(crate) fn run(command: TlsCommand) -> anyhow::Result<ExitCode> {
    match command {
        TlsCommand::Bench(args) => benches::tls::run(&args),
        TlsCommand::Demo(args) => demos::tls::run(&args),
    }
}
