//! The tracing subscriber: human format on a terminal, JSON on request, to stderr.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;

/// Logging flags shared by every command.
#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// Log level: error, warn, info, debug or trace (or a RUST_LOG-style filter); give it before the command.
    #[arg(long, default_value = "warn", env = "TESSERA_LOG")]
    log_level: String,

    /// Log format: `human` (default) or `json` (one object per line, for machines).
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

pub(crate) fn init(args: &LogArgs) {
    let filter = EnvFilter::try_new(&args.log_level).unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match args.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
