//! `tlslp-server`: drop-in for the reference TLS line protocol server.

use std::process::ExitCode;

use clap::Parser;
use tessera_tlslp::cli::{run_server, ServerArgs};

#[derive(Parser)]
#[command(name = "tlslp-server", version, infer_long_args = true)]
struct Cli {
    #[command(flatten)]
    args: ServerArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tessera_tlslp::cli::init_tracing();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => match runtime.block_on(run_server(cli.args)) {
            Ok(code) => code,
            Err(error) => {
                eprintln!("tlslp-server: {error:#}");
                ExitCode::FAILURE
            }
        },
        Err(error) => {
            eprintln!("tlslp-server: {error}");
            ExitCode::FAILURE
        }
    }
}
