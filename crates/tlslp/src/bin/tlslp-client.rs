//! `tlslp-client`: drop-in for the reference TLS line protocol client.

use std::process::ExitCode;

use clap::Parser;
use tessera_tlslp::cli::{run_client, ClientArgs};

#[derive(Parser)]
#[command(name = "tlslp-client", version, infer_long_args = true)]
struct Cli {
    #[command(flatten)]
    args: ClientArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tessera_tlslp::cli::init_tracing();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => match runtime.block_on(run_client(cli.args)) {
            Ok(code) => code,
            Err(error) => {
                eprintln!("tlslp-client: {error:#}");
                ExitCode::FAILURE
            }
        },
        Err(error) => {
            eprintln!("tlslp-client: {error}");
            ExitCode::FAILURE
        }
    }
}
