//! `tessera`: dev certificates, fingerprints, the TOFU store, benchmarks and the demo.

#![forbid(unsafe_code)]

mod admission;
mod args;
mod benches;
mod commands;
mod demos;
mod listen;
mod log_file;
mod logging;
mod paths;
mod secrets;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// jemalloc rather than glibc's malloc: glibc keeps freed large buffers (a
/// 1 MiB frame raises its mmap threshold, and freed chunks inside its
/// per-thread arenas stay resident), so a server that met a flood of large
/// frames stayed up to 7 MiB above its baseline, by a different amount each
/// run. jemalloc's background thread returns them within about a second
/// (`.cargo/config.toml`); measured in docs/BENCHMARKS.md, "Allocator".
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use commands::{
    certs, chat, docs, fingerprint, fleet, gemini, guard, pow, proxy, tls, tlslp, tofu, trust, wire,
};
use demos::tour;

/// Tessera: secure non-HTTP network services.
///
/// Run `tessera demo` for a zero-configuration tour: a dev PKI, a mutual-TLS
/// server on loopback, clients, and refused hostile clients.
#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    propagate_version = true,
    infer_long_args = true
)]
pub(crate) struct Cli {
    #[command(flatten)]
    logging: logging::LogArgs,

    #[command(subcommand)]
    command: Command,
}

// Parsed once per run; boxing the larger argument sets buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the zero-configuration demo: tlslp over mutual TLS on loopback, clients and hostile clients.
    Demo(tour::DemoArgs),
    /// Generate and inspect certificates.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Print the SHA-256 fingerprint of a certificate file or of the certificate a server presents.
    Fingerprint(fingerprint::FingerprintArgs),
    /// Manage the trust-on-first-use store of pinned server certificates.
    Tofu(tofu::TofuArgs),
    /// Admission control: check a configuration, measure decisions per second.
    #[command(subcommand)]
    Guard(guard::GuardCommand),
    /// Proof of work: tlslp WORK puzzles and Hashcash stamps.
    #[command(subcommand)]
    Pow(pow::PowCommand),
    /// The TLS line protocol: server, client (the reference's flags) and benchmark.
    #[command(subcommand)]
    Tlslp(tlslp::TlslpCommand),
    /// Capability tokens: keys, mint, prove, verify, job signatures, the signer sidecar.
    #[command(subcommand)]
    Trust(trust::TrustCommand),
    /// Gemini: serve a capsule, fetch a URL with TOFU, benchmark against molly-brown.
    #[command(subcommand)]
    Gemini(gemini::GeminiCommand),
    /// Routed messages over TLS: echo server, one-off requests, benchmark.
    #[command(subcommand)]
    Wire(wire::WireCommand),
    /// Chat with nodes on this link, found by multicast, end-to-end encrypted.
    Chat(chat::ChatArgs),
    /// Forward local apps' connections over an authenticated, encrypted tessera-wire link.
    #[command(subcommand)]
    Proxy(proxy::ProxyCommand),
    /// TLS measurements and a tour of tessera-tls.
    #[command(subcommand)]
    Tls(tls::TlsCommand),
    /// Fleet mode: the shared store (Redis or Valkey) several servers use.
    #[command(subcommand)]
    Fleet(fleet::FleetCommand),
    /// Print the shell completion script, e.g. `tessera completions bash > /etc/bash_completion.d/tessera`.
    Completions(docs::CompletionsArgs),
    /// Write man pages for tessera, each subcommand and the tlslp binaries.
    Man(docs::ManArgs),
}

/// What `--version` prints: the version, the commit it was built from, and
/// the proof-of-work kernels this CPU can run.
fn long_version() -> String {
    let kernels: Vec<String> = tessera_pow::Kernel::available()
        .iter()
        .map(ToString::to_string)
        .collect();
    format!(
        "{} (commit {})\nproof-of-work kernels on this CPU: {}",
        env!("CARGO_PKG_VERSION"),
        env!("TESSERA_GIT_COMMIT"),
        kernels.join(", ")
    )
}

/// The whole command line: the derived one, plus what clap's derive cannot
/// say (the long version, `tessera tlslp`'s extra names). Parsing, help,
/// completions and man pages all use this one.
pub(crate) fn command() -> clap::Command {
    Cli::command()
        .long_version(long_version())
        .mut_subcommand("tlslp", tlslp::with_tessera_names)
}

fn main() -> ExitCode {
    let matches = command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    if let Err(error) = logging::init(&cli.logging, matches!(cli.command, Command::Demo(_))) {
        let _ = writeln!(std::io::stderr(), "tessera: --log-file {error}");
        return ExitCode::FAILURE;
    }
    tessera_pow::cache_kernel_choice(None);
    let given = Given {
        log_level: logging::given_level(&matches),
        tlslp_listen: tlslp::listen_given(&matches),
    };
    match run(cli.command, given) {
        Ok(code) => code,
        Err(error) => {
            if is_broken_pipe(&error) {
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(std::io::stderr(), "tessera: {error:#}");
            if error.downcast_ref::<args::UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// What the derived arguments cannot carry: flags added to the command line
/// by [`command`] rather than by the derive.
struct Given {
    /// The global `--log-level` when given (on the command line or in
    /// TESSERA_LOG), for commands that keep a log of their own.
    log_level: Option<String>,
    /// `tessera tlslp server --listen`.
    tlslp_listen: Option<(String, u16)>,
}

fn run(command: Command, given: Given) -> anyhow::Result<ExitCode> {
    match command {
        Command::Demo(args) => tour::run(&args),
        Command::Certs(command) => certs::run(command),
        Command::Fingerprint(args) => fingerprint::run(&args),
        Command::Tofu(args) => tofu::run(args),
        Command::Guard(command) => guard::run(command),
        Command::Pow(command) => pow::run(command),
        Command::Fleet(command) => fleet::run(command),
        Command::Tlslp(command) => {
            tlslp::run(command, given.log_level.as_deref(), given.tlslp_listen)
        }
        Command::Trust(command) => trust::run(command),
        Command::Gemini(command) => gemini::run(command),
        Command::Tls(command) => tls::run(command),
        Command::Wire(command) => wire::run(command),
        Command::Chat(args) => chat::run(args),
        Command::Proxy(command) => proxy::run(command),
        Command::Completions(args) => docs::completions(&args),
        Command::Man(args) => docs::man(&args),
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The runtime of every command that does network I/O (all cores; the
/// servers need them, and short commands pay nothing for idle workers).
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

#[cfg(test)]
mod tests {
    /// Every flag of every subcommand, the global ones propagated and the
    /// tlslp aliases added, is defined without a clash.
    #[test]
    fn the_whole_command_line_is_consistent() {
        super::command().debug_assert();
    }
}
