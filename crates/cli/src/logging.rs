//! The tracing subscriber: human format on a terminal, JSON on request, to stderr.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;

/// Logging flags shared by every command.
#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// Log level: off, error, warn, info, debug or trace (DEBUG … CRITICAL
    /// too), or a filter such as `warn,tessera_wire=debug`; before or after
    /// the command. The default shows warnings, every server's access lines
    /// (one per request or session, target `tessera::access`) and reloads.
    #[arg(
        long,
        global = true,
        default_value = DEFAULT_FILTER,
        env = "TESSERA_LOG",
        value_parser = log_filter
    )]
    log_level: String,

    /// Log format: `human` (default) or `json` (one object per line, for machines).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,

    /// Append log lines to FILE instead of stderr (created 0600; a server
    /// reopens it on SIGHUP, for logrotate).
    #[arg(long, global = true, value_name = "FILE")]
    log_file: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

/// `--log-level`: a level name, or a filter of `target=level` directives.
/// A bare word that is no level is refused (a filter would read it as a
/// target name and log nothing of ours).
fn log_filter(text: &str) -> Result<String, String> {
    let level = match text.to_ascii_lowercase().as_str() {
        // The tlslp programs' (Python's) names for the same levels.
        "warning" => "warn".to_owned(),
        "critical" => "error".to_owned(),
        other => other.to_owned(),
    };
    if matches!(
        level.as_str(),
        "off" | "error" | "warn" | "info" | "debug" | "trace"
    ) {
        return Ok(level);
    }
    if text.contains('=') && EnvFilter::try_new(text).is_ok() {
        return Ok(text.to_owned());
    }
    Err(format!(
        "{text:?} is not a log level (off, error, warn, info, debug, trace) \
         or a filter such as warn,tessera_wire=debug"
    ))
}

/// The `--log-level` text the user gave (flag or TESSERA_LOG), not the default.
pub(crate) fn given_level(matches: &clap::ArgMatches) -> Option<String> {
    use clap::parser::ValueSource;
    match matches.value_source("log_level") {
        Some(ValueSource::CommandLine | ValueSource::EnvVariable) => matches
            .get_raw("log_level")
            .and_then(|mut values| values.next())
            .map(|value| value.to_string_lossy().into_owned()),
        _ => None,
    }
}

/// Warnings, the servers' access lines and their reloads.
const DEFAULT_FILTER: &str = "warn,tessera::access=info,tessera::reload=info";

/// Installs the subscriber. `quiet_by_default`: a command that prints its
/// own report (the demos, whose servers run in-process) drops the access
/// lines unless the user asked for a level.
///
/// # Errors
/// --log-file cannot be opened.
pub(crate) fn init(args: &LogArgs, quiet_by_default: bool) -> std::io::Result<()> {
    let level = if quiet_by_default && args.log_level == DEFAULT_FILTER {
        "warn"
    } else {
        args.log_level.as_str()
    };
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("warn"));
    if let Some(path) = &args.log_file {
        crate::log_file::open(path)?;
    }
    // The log file's writer falls back to stderr without --log-file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| crate::log_file::Writer)
        .with_ansi(args.log_file.is_none() && std::io::stderr().is_terminal());
    match args.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}
