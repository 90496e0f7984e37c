//! `tessera tlslp`: the drop-in server and client under one command, with the
//! same flags as `tlslp-server` / `tlslp-client`.

use std::process::ExitCode;

use clap::Subcommand;
use tessera_tlslp::cli::{run_client, run_server, ClientArgs, ServerArgs, LOG_LEVEL_ID};
use tessera_tlslp::Level;

#[derive(Debug, Subcommand)]
pub(crate) enum TlslpCommand {
    /// The tlslp server (same flags as tlslp-server).
    Server(ServerArgs),
    /// The tlslp client (same flags as tlslp-client).
    Client(ClientArgs),
    /// Sessions per second and memory per waiting session.
    Bench(crate::benches::tlslp::BenchArgs),
}

/// `tessera tlslp` also takes Tessera's names for the flags the reference
/// names its own way (`--cert`/`--key` for the certificate and key, `--bits`
/// for the difficulty); the drop-in binaries keep the reference's alone.
/// Its `--log-level` is the global one, which sets the log file's level too.
pub(crate) fn with_tessera_names(tlslp: clap::Command) -> clap::Command {
    let alias = |name: &'static str| move |arg: clap::Arg| arg.visible_alias(name);
    let global_log_level = |arg: clap::Arg| arg.long("tlslp-log-level").hide(true);
    tlslp
        .mut_subcommand("server", |server| {
            server
                .arg(
                    clap::Arg::new(LISTEN_ID)
                        .long("listen")
                        .value_name("ADDR:PORT")
                        .value_parser(listen_address)
                        .conflicts_with_all(["host", "port"])
                        .help("Where to listen, as every tessera server takes it (--host and --port in one)"),
                )
                .mut_arg("server_cert", alias("cert"))
                .mut_arg("server_key", alias("key"))
                .mut_arg("n_bits", alias("bits"))
                .mut_arg(LOG_LEVEL_ID, global_log_level)
        })
        .mut_subcommand("client", |client| {
            client
                .mut_arg("client_cert", alias("cert"))
                .mut_arg("private_key", alias("key"))
                .mut_arg(LOG_LEVEL_ID, global_log_level)
        })
}

/// The id of `tessera tlslp server --listen`.
const LISTEN_ID: &str = "listen";

/// `--listen ADDR:PORT` as the host and port the reference's flags take
/// (`[::1]:1234`, `127.0.0.1:0`, `localhost:1965`).
fn listen_address(text: &str) -> Result<(String, u16), String> {
    crate::args::split_host_port(text).ok_or_else(|| format!("{text:?} is not ADDR:PORT"))
}

/// The `--listen` value given to `tessera tlslp server`, if any.
pub(crate) fn listen_given(matches: &clap::ArgMatches) -> Option<(String, u16)> {
    matches
        .subcommand_matches("tlslp")?
        .subcommand_matches("server")?
        .get_one::<(String, u16)>(LISTEN_ID)
        .cloned()
}

/// The tlslp log file's level for a global `--log-level` the user gave: the
/// reference's names as they are, ours mapped to the nearest.
fn file_level(text: &str) -> Option<Level> {
    Level::parse(&text.to_ascii_uppercase()).or(match text.to_ascii_lowercase().as_str() {
        "trace" => Some(Level::Debug),
        "warn" => Some(Level::Warning),
        "off" => Some(Level::Critical),
        _ => None,
    })
}

/// Runs the subcommand; `log_level`: the global `--log-level`, when given;
/// `listen`: the server's `--listen`, when given.
pub(crate) fn run(
    command: TlslpCommand,
    log_level: Option<&str>,
    listen: Option<(String, u16)>,
) -> anyhow::Result<ExitCode> {
    let runtime = crate::runtime()?;
    let level = log_level.and_then(file_level);
    match command {
        TlslpCommand::Server(mut args) => {
            if let Some(level) = level {
                args.set_log_level(level);
            }
            if let Some((host, port)) = listen {
                args.set_address(host, port);
            }
            runtime.block_on(async {
                crate::log_file::reopen_on_sighup()?;
                run_server(args).await
            })
        }
        TlslpCommand::Client(mut args) => {
            if let Some(level) = level {
                args.set_log_level(level);
            }
            runtime.block_on(run_client(args))
        }
        TlslpCommand::Bench(args) => crate::benches::tlslp::run(&args),
    }
}
