//! `tlslp-server`: drop-in for the reference TLS line protocol server.

use std::process::ExitCode;

use clap::Parser;
use tessera_tlslp::cli::{run_main, run_server, ServerArgs};

#[derive(Parser)]
#[command(name = "tlslp-server", version, infer_long_args = true)]
struct Cli {
    #[command(flatten)]
    args: ServerArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    run_main("tlslp-server", || run_server(cli.args))
}
