//! `tessera tofu`: list, trust, revoke, check, export and import pinned server
//! certificates in the TOFU store.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use tessera_tls::tofu::{HostKey, ImportMode, ImportReport, DEFAULT_PORT};
use tessera_tls::{FileMode, Fingerprint, TofuStore};
use time::OffsetDateTime;

use crate::commands::certs::rfc3339 as date;

/// `tofu check`'s exit code when the server presents another certificate than its pin.
const CHECK_MISMATCH: u8 = 3;
/// `tofu check`'s exit code when the server is not pinned.
const CHECK_UNKNOWN: u8 = 4;

#[derive(Debug, Args)]
pub(crate) struct TofuArgs {
    /// The store (SQLite). Default: $XDG_DATA_HOME/tessera/tofu.sqlite3.
    #[arg(long, global = true, env = "TESSERA_TOFU_DB")]
    db: Option<PathBuf>,

    #[command(subcommand)]
    command: TofuCommand,
}

#[derive(Debug, Subcommand)]
enum TofuCommand {
    /// List pinned servers.
    List {
        /// Print a JSON array, one object per pin.
        #[arg(long)]
        json: bool,
    },
    /// Pin the certificate HOST:PORT presents now (or --fingerprint), replacing any pin.
    ///
    /// Use this after you have confirmed that a changed certificate is legitimate.
    Trust {
        /// HOST:PORT (port defaults to 1965).
        target: String,
        /// Pin this fingerprint instead of connecting.
        #[arg(long)]
        fingerprint: Option<Fingerprint>,
        /// Seconds to wait for the server.
        #[arg(long, default_value = "10", value_name = "SECONDS", value_parser = crate::args::seconds)]
        timeout: Duration,
    },
    /// Remove the pin of HOST:PORT (or of every port of HOST with --all-ports).
    ///
    /// Exits 1 when nothing was pinned.
    Revoke {
        /// HOST:PORT, or HOST with --all-ports.
        target: String,
        /// Remove the pins of every port of the host.
        #[arg(long)]
        all_ports: bool,
    },
    /// Compare the certificate HOST:PORT presents with its pin, without changing the store.
    ///
    /// Exits 0 on a match, 3 on a mismatch, 4 when the server is not pinned,
    /// 1 when the server could not be reached (or another error), 2 on a
    /// usage error.
    Check {
        /// HOST:PORT (port defaults to 1965).
        target: String,
        /// Seconds to wait for the server.
        #[arg(long, default_value = "10", value_name = "SECONDS", value_parser = crate::args::seconds)]
        timeout: Duration,
    },
    /// Write every pin as JSON to stdout or --output.
    Export {
        /// File to write instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Import pins from our JSON export or nauyaca's TOML export.
    ///
    /// Hosts pinned to another fingerprint are reported as conflicts and kept
    /// unless --replace; the command then exits 1.
    Import {
        /// The export file.
        file: PathBuf,
        /// File format; `auto` tells JSON from TOML by content.
        #[arg(long, value_enum, default_value_t = ImportFormat::Auto)]
        format: ImportFormat,
        /// Replace conflicting pins with the imported fingerprints.
        #[arg(long)]
        replace: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ImportFormat {
    Auto,
    Json,
    Nauyaca,
}

pub(crate) fn run(args: TofuArgs) -> anyhow::Result<ExitCode> {
    let path = match args.db {
        Some(path) => path,
        None => crate::paths::default_tofu_db()?,
    };
    // Reading commands open the store read-only and never create it.
    let reads = matches!(
        args.command,
        TofuCommand::List { .. } | TofuCommand::Check { .. } | TofuCommand::Export { .. }
    );
    if reads && !path.exists() {
        return run_without_store(&args.command, &path);
    }
    let store = if reads {
        TofuStore::open_read_only(&path)?
    } else {
        TofuStore::open(&path)?
    };
    let mut out = std::io::stdout().lock();
    let now = OffsetDateTime::now_utc();
    match args.command {
        TofuCommand::List { json: true } => {
            let pins: Vec<serde_json::Value> = store
                .list()?
                .into_iter()
                .map(|pin| {
                    serde_json::json!({
                        "host": pin.key.host(),
                        "port": pin.key.port(),
                        "fingerprint": pin.fingerprint.to_string(),
                        "first_seen": date(pin.first_seen),
                        "last_seen": date(pin.last_seen),
                        "not_after": pin.not_after.map(date),
                        "trusted_by": pin.trusted_by,
                    })
                })
                .collect();
            writeln!(out, "{}", serde_json::Value::Array(pins))?;
        }
        TofuCommand::List { json: false } => {
            let hosts = store.list()?;
            if hosts.is_empty() {
                writeln!(out, "no pinned servers in {}", path.display())?;
            }
            for pin in hosts {
                writeln!(
                    out,
                    "{}  {}  first seen {}  last seen {}  not after {}  ({})",
                    pin.key,
                    pin.fingerprint,
                    date(pin.first_seen),
                    date(pin.last_seen),
                    pin.not_after.map_or_else(|| "unknown".to_owned(), date),
                    serde_json::to_value(pin.trusted_by)?
                        .as_str()
                        .unwrap_or("?"),
                )?;
            }
        }
        TofuCommand::Trust {
            target,
            fingerprint,
            timeout,
        } => {
            let key = HostKey::parse(&target, DEFAULT_PORT)?;
            let (fingerprint, not_after) = match fingerprint {
                Some(fingerprint) => (fingerprint, None),
                None => {
                    let info = fetch(&key, timeout)?;
                    (info.fingerprint(), Some(info.not_after()))
                }
            };
            let previous = store.trust(&key, fingerprint, not_after, now)?;
            write!(out, "pinned {fingerprint} for {key}")?;
            match previous {
                Some(previous) => writeln!(out, " (replaced {previous})")?,
                None => writeln!(out)?,
            }
        }
        TofuCommand::Revoke { target, all_ports } => {
            let removed = if all_ports {
                store.revoke_host(&target)?
            } else {
                usize::from(store.revoke(&HostKey::parse(&target, DEFAULT_PORT)?)?)
            };
            writeln!(out, "removed {removed} pin(s) for {target}")?;
            if removed == 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
        TofuCommand::Check { target, timeout } => {
            let key = HostKey::parse(&target, DEFAULT_PORT)?;
            let info = fetch(&key, timeout)?;
            match store.lookup(&key)? {
                Some(pin) if pin.fingerprint == info.fingerprint() => {
                    writeln!(out, "match: {key} presents {}", info.fingerprint())?;
                }
                Some(pin) => {
                    writeln!(
                        out,
                        "MISMATCH: {key} presents {} but {} is pinned (first seen {})",
                        info.fingerprint(),
                        pin.fingerprint,
                        date(pin.first_seen)
                    )?;
                    return Ok(ExitCode::from(CHECK_MISMATCH));
                }
                None => {
                    writeln!(
                        out,
                        "unknown: {key} is not pinned; it presents {}",
                        info.fingerprint()
                    )?;
                    return Ok(ExitCode::from(CHECK_UNKNOWN));
                }
            }
        }
        TofuCommand::Export { output } => {
            let json = store.export_json()?;
            match output {
                Some(file) => tessera_tls::write_file(
                    &file,
                    format!("{json}\n").as_bytes(),
                    FileMode::Public,
                    true,
                )?,
                None => writeln!(out, "{json}")?,
            }
        }
        TofuCommand::Import {
            file,
            format,
            replace,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let mode = if replace {
                ImportMode::Replace
            } else {
                ImportMode::KeepExisting
            };
            let json = match format {
                ImportFormat::Json => true,
                ImportFormat::Nauyaca => false,
                ImportFormat::Auto => text.trim_start().starts_with('{'),
            };
            let report = if json {
                store.import_json(&text, mode)?
            } else {
                store.import_nauyaca_toml(&text, mode)?
            };
            return print_report(&mut out, &report);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(out: &mut impl Write, report: &ImportReport) -> anyhow::Result<ExitCode> {
    writeln!(
        out,
        "added {}, unchanged {}, conflicts {}",
        report.added,
        report.unchanged,
        report.conflicts.len()
    )?;
    for conflict in &report.conflicts {
        writeln!(
            out,
            "conflict: {} pinned {} import has {} ({})",
            conflict.key,
            conflict.stored,
            conflict.imported,
            if report.conflicts_replaced {
                "replaced"
            } else {
                "kept; use --replace to take the import"
            }
        )?;
    }
    Ok(
        if report.conflicts.is_empty() || report.conflicts_replaced {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// `list`, `check` and `export` where no store exists: answered as for an
/// empty one (export has nothing to write), creating nothing.
fn run_without_store(command: &TofuCommand, path: &std::path::Path) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match command {
        TofuCommand::List { json } => {
            if *json {
                writeln!(out, "[]")?;
            } else {
                writeln!(
                    out,
                    "no pinned servers: there is no TOFU store at {}",
                    path.display()
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        TofuCommand::Check { target, timeout } => {
            let key = HostKey::parse(target, DEFAULT_PORT)?;
            let info = fetch(&key, *timeout)?;
            writeln!(
                out,
                "unknown: {key} is not pinned (there is no TOFU store at {}); it presents {}",
                path.display(),
                info.fingerprint()
            )?;
            Ok(ExitCode::from(CHECK_UNKNOWN))
        }
        _ => anyhow::bail!("there is no TOFU store at {}", path.display()),
    }
}

fn fetch(key: &HostKey, timeout: Duration) -> anyhow::Result<tessera_tls::CertificateInfo> {
    let chain = crate::runtime()?.block_on(tessera_tls::fetch_server_certificates(
        key.host(),
        key.port(),
        timeout,
    ))?;
    chain
        .into_iter()
        .next()
        .with_context(|| format!("{key} presented no certificate"))
}
