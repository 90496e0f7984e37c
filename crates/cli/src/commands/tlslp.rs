//! `tessera tlslp`: the drop-in server and client under one command, with the
//! same flags as `tlslp-server` / `tlslp-client`.

use std::process::ExitCode;

use clap::Subcommand;
use tessera_tlslp::cli::{run_client, run_server, ClientArgs, ServerArgs};

#[derive(Debug, Subcommand)]
pub(crate) enum TlslpCommand {
    /// The tlslp server (same flags as tlslp-server).
    Server(ServerArgs),
    /// The tlslp client (same flags as tlslp-client).
    Client(ClientArgs),
    /// Sessions per second and memory per waiting session.
    Bench(crate::benches::tlslp::BenchArgs),
}

pub(crate) fn run(command: TlslpCommand) -> anyhow::Result<ExitCode> {
    let runtime = crate::runtime()?;
    match command {
        TlslpCommand::Server(args) => runtime.block_on(run_server(args)),
        TlslpCommand::Client(args) => runtime.block_on(run_client(args)),
        TlslpCommand::Bench(args) => crate::benches::tlslp::run(&args),
    }
}
