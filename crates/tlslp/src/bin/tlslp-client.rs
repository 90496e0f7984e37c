//! `tlslp-client`: drop-in for the reference TLS line protocol client.

use std::process::ExitCode;

use clap::Parser;
use tessera_tlslp::cli::{run_client, run_main, ClientArgs};

#[derive(Parser)]
#[command(name = "tlslp-client", version, infer_long_args = true)]
struct Cli {
    #[command(flatten)]
    args: ClientArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tessera_pow::cache_kernel_choice(None);
    run_main("tlslp-client", || run_client(cli.args))
}
