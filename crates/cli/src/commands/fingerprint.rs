//! `tessera fingerprint`: the SHA-256 fingerprint of a certificate file, or of
//! the certificate a server presents (fetched without sending any data).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tessera_tls::tofu::{HostKey, DEFAULT_PORT};
use tessera_tls::CertificateInfo;

#[derive(Debug, Args)]
pub(crate) struct FingerprintArgs {
    /// A PEM certificate file, or HOST:PORT of a TLS server (port defaults to 1965).
    /// An existing file wins over a host name; a missing one that looks like a
    /// path (a `/`, or ending in .pem, .crt, .cer or .der) is an error, not a host.
    target: String,
    /// Print the colon-separated upper-case form (as openssl) instead of `sha256:<hex>`.
    #[arg(long, conflicts_with = "json")]
    colon: bool,
    /// Print one JSON object: the fingerprint in both forms and the
    /// certificate's facts (as `certs inspect --json`).
    #[arg(long)]
    json: bool,
    /// Seconds to wait for the server (connect + handshake).
    #[arg(long, default_value = "10", value_name = "SECONDS", value_parser = crate::args::seconds)]
    timeout: Duration,
}

pub(crate) fn run(args: &FingerprintArgs) -> anyhow::Result<ExitCode> {
    let infos = if Path::new(&args.target).exists() || looks_like_a_path(&args.target) {
        let path = Path::new(&args.target);
        tessera_tls::load_certificates(path)?
            .iter()
            .map(|der| CertificateInfo::parse(der.as_ref(), &args.target))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .take(1)
            .collect::<Vec<_>>()
    } else {
        let key = HostKey::parse(&args.target, DEFAULT_PORT)?;
        let chain = crate::runtime()?.block_on(tessera_tls::fetch_server_certificates(
            key.host(),
            key.port(),
            args.timeout,
        ))?;
        chain.into_iter().take(1).collect()
    };
    let mut out = std::io::stdout().lock();
    for info in infos {
        if args.json {
            let mut object = crate::commands::certs::certificate_json(&info);
            object["target"] = serde_json::Value::from(args.target.as_str());
            writeln!(out, "{object}")?;
        } else if args.colon {
            writeln!(out, "{}", info.fingerprint().to_colon_hex())?;
        } else {
            writeln!(out, "{}", info.fingerprint())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `target` names a file rather than a host: no host name holds a
/// `/`, and certificate file endings are not the top-level domains users mean.
fn looks_like_a_path(target: &str) -> bool {
    let lower = target.to_ascii_lowercase();
    target.contains('/')
        || [".pem", ".crt", ".cer", ".der"]
            .iter()
            .any(|ending| lower.ends_with(ending))
}

#[cfg(test)]
mod tests {
    use super::looks_like_a_path;

    #[test]
    fn files_and_hosts_are_told_apart() {
        for path in ["missing.pem", "./cert", "/etc/ssl/x", "CA.CRT", "a.der"] {
            assert!(looks_like_a_path(path), "{path}");
        }
        for host in ["example.org", "localhost:1965", "[::1]:1965", "192.0.2.1"] {
            assert!(!looks_like_a_path(host), "{host}");
        }
    }
}
