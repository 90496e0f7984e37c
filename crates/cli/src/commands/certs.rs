//! `tessera certs`: generate a development PKI or self-signed certificates, and
//! inspect certificate files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use tessera_tls::{
    layout, self_signed, CertificateInfo, DevCa, DevPki, FileMode, KeyType, PkiOptions, Usage,
    Validity,
};
use time::OffsetDateTime;

#[derive(Debug, Subcommand)]
pub(crate) enum CertsCommand {
    /// Generate a CA, a server and a client certificate for development.
    ///
    /// Writes the tlslp reference layout, so the same directory works with the
    /// reference tools: ca_cert.pem, ca_key.pem, server-cert.pem, server-key.pem,
    /// client_cert.pem, ec_private_key.pem. Keys are written 0600. The server
    /// certificate names localhost, 127.0.0.1 and ::1 plus every --name; the client
    /// certificate is X.509 v3 with extendedKeyUsage clientAuth.
    Dev(DevArgs),
    /// Generate a self-signed certificate (e.g. for a Gemini capsule): DIR/cert.pem and DIR/key.pem.
    SelfSigned(SelfSignedArgs),
    /// Issue a certificate from an existing dev CA, so its key stays on this machine.
    ///
    /// Writes --out in the `certs dev` layout for one role: ca_cert.pem plus
    /// client_cert.pem and ec_private_key.pem (--client), or server-cert.pem
    /// and server-key.pem (--server) — a directory another node uses as its
    /// `--pki` without ever seeing the CA key.
    Issue(IssueArgs),
    /// Revoke a certificate the CA issued: add it to the CA's CRL (created
    /// if missing) and re-sign the list. Servers given `--crl FILE` refuse it.
    Revoke(RevokeArgs),
    /// Show subject, SANs, validity, fingerprint and key type of each certificate in a PEM file.
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
pub(crate) struct IssueArgs {
    /// The CA's directory (`certs dev` layout: ca_cert.pem, ca_key.pem).
    #[arg(long, value_name = "DIR")]
    ca_dir: PathBuf,
    /// A client certificate with this common name.
    #[arg(
        long,
        value_name = "NAME",
        conflicts_with = "server",
        required_unless_present = "server"
    )]
    client: Option<String>,
    /// A server certificate for these names (DNS names or IP addresses;
    /// repeatable, the first is also the common name).
    #[arg(long = "server", value_name = "NAME", value_parser = subject_name)]
    server: Vec<String>,
    /// Directory to write into (created 0700 if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Key algorithm: ecdsa-p256, ed25519 or rsa-2048.
    #[arg(long, default_value = "ecdsa-p256")]
    key_type: KeyType,
    /// Days the certificate is valid.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..))]
    days: u32,
    /// Overwrite existing files (without it, nothing is written if any exists).
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    /// The CA's directory (`certs dev` layout: ca_cert.pem, ca_key.pem).
    #[arg(long, value_name = "DIR")]
    ca_dir: PathBuf,
    /// The certificate to revoke (PEM).
    cert: PathBuf,
    /// The CRL to update [default: crl.pem in --ca-dir].
    #[arg(long, value_name = "FILE")]
    crl: Option<PathBuf>,
    /// Days until the list's next update.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    days: u32,
}

#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    /// Directory to write into (created 0700 if missing).
    #[arg(long, default_value = "certificates")]
    out: PathBuf,
    /// Extra server name (DNS name or IP address); repeatable.
    #[arg(long = "name", value_name = "NAME", value_parser = subject_name)]
    names: Vec<String>,
    /// Common name of the client certificate.
    #[arg(long, default_value = "client")]
    client_cn: String,
    /// Key algorithm: ecdsa-p256, ed25519 or rsa-2048.
    #[arg(long, default_value = "ecdsa-p256")]
    key_type: KeyType,
    /// Days the CA is valid.
    #[arg(long, default_value_t = 3650)]
    ca_days: u32,
    /// Days the server and client certificates are valid.
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Overwrite existing files (without it, nothing is written if any exists).
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SelfSignedArgs {
    /// Common name, also the first subjectAltName (e.g. the capsule's host name).
    #[arg(long, value_parser = subject_name)]
    cn: String,
    /// Directory to write cert.pem and key.pem into.
    #[arg(long)]
    out: PathBuf,
    /// Extra subjectAltName (DNS name or IP address); repeatable.
    #[arg(long = "name", value_name = "NAME", value_parser = subject_name)]
    names: Vec<String>,
    /// What the certificate is for.
    #[arg(long, value_enum, default_value_t = UsageArg::Server)]
    usage: UsageArg,
    /// Key algorithm: ecdsa-p256, ed25519 or rsa-2048.
    #[arg(long, default_value = "ecdsa-p256")]
    key_type: KeyType,
    /// Days the certificate is valid.
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum UsageArg {
    Server,
    Client,
    Both,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// PEM file holding one or more certificates.
    file: PathBuf,
    /// Print a JSON array, one object per certificate.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(command: CertsCommand) -> anyhow::Result<ExitCode> {
    match command {
        CertsCommand::Dev(args) => dev(&args),
        CertsCommand::SelfSigned(args) => self_signed_cmd(&args),
        CertsCommand::Issue(args) => issue(&args),
        CertsCommand::Revoke(args) => revoke(&args),
        CertsCommand::Inspect(args) => inspect(&args.file, args.json),
    }
}

fn issue(args: &IssueArgs) -> anyhow::Result<ExitCode> {
    let ca = DevCa::load(&args.ca_dir)?;
    let mut options = PkiOptions::default();
    options.key_type(args.key_type).leaf_days(args.days);
    let (issued, cert_name, key_name) = match &args.client {
        Some(name) => (
            ca.issue(name, Vec::new(), Usage::Client, &options),
            layout::CLIENT_CERT,
            layout::CLIENT_KEY,
        ),
        None => (
            ca.issue(
                &args.server[0],
                args.server.clone(),
                Usage::Server,
                &options,
            ),
            layout::SERVER_CERT,
            layout::SERVER_KEY,
        ),
    };
    let issued = issued.context("issuing the certificate")?;
    let ca_pem = std::fs::read_to_string(args.ca_dir.join(layout::CA_CERT))
        .with_context(|| format!("reading {}", args.ca_dir.join(layout::CA_CERT).display()))?;
    let files = [
        (layout::CA_CERT, ca_pem.as_str(), FileMode::Public),
        (cert_name, issued.cert_pem(), FileMode::Public),
        (key_name, issued.key_pem(), FileMode::Secret),
    ];
    if !args.force {
        if let Some((name, _, _)) = files
            .iter()
            .find(|(name, _, _)| args.out.join(name).exists())
        {
            anyhow::bail!(
                "{} already exists; pass --force to overwrite",
                args.out.join(name).display()
            );
        }
    }
    tessera_tls::create_private_dir(&args.out)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "issued from the CA in {}:", args.ca_dir.display())?;
    for (name, contents, mode) in files {
        let path = args.out.join(name);
        tessera_tls::write_file(&path, contents.as_bytes(), mode, true)?;
        writeln!(out, "  {}", path.display())?;
    }
    writeln!(
        out,
        "fingerprint: {}",
        tessera_tls::Fingerprint::of_der(issued.der())
    )?;
    Ok(ExitCode::SUCCESS)
}

fn revoke(args: &RevokeArgs) -> anyhow::Result<ExitCode> {
    let ca = DevCa::load(&args.ca_dir)?;
    let cert = tessera_tls::load_certificates(&args.cert)?.remove(0);
    let crl = args
        .crl
        .clone()
        .unwrap_or_else(|| args.ca_dir.join("crl.pem"));
    let revoked = ca.revoke(&crl, &cert, args.days)?;
    writeln!(
        std::io::stdout().lock(),
        "{} serial {} in {} ({} listed); servers read it with --crl {}",
        if revoked.already {
            "already revoked:"
        } else {
            "revoked:"
        },
        revoked.serial,
        crl.display(),
        revoked.listed,
        crl.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

fn dev(args: &DevArgs) -> anyhow::Result<ExitCode> {
    crate::args::require(args.days > 0 && args.ca_days > 0, || {
        "--days and --ca-days must be at least 1".into()
    })?;
    let mut options = PkiOptions::default();
    options
        .key_type(args.key_type)
        .ca_days(args.ca_days)
        .leaf_days(args.days)
        .server_names(args.names.iter().cloned())
        .client_name(args.client_cn.clone());
    let pki = DevPki::generate(&options).context("generating the dev PKI")?;
    let written = pki.write(&args.out, args.force)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "wrote a {} dev PKI to {}:",
        args.key_type,
        args.out.display()
    )?;
    for path in written {
        writeln!(out, "  {}", path.display())?;
    }
    writeln!(
        out,
        "CA fingerprint:     {}",
        tessera_tls::Fingerprint::of_der(pki.ca.der())
    )?;
    writeln!(
        out,
        "server fingerprint: {}",
        tessera_tls::Fingerprint::of_der(pki.server.der())
    )?;
    writeln!(
        out,
        "client fingerprint: {}",
        tessera_tls::Fingerprint::of_der(pki.client.der())
    )?;
    Ok(ExitCode::SUCCESS)
}

fn self_signed_cmd(args: &SelfSignedArgs) -> anyhow::Result<ExitCode> {
    crate::args::require(args.days > 0, || "--days must be at least 1".into())?;
    let usage = match args.usage {
        UsageArg::Server => Usage::Server,
        UsageArg::Client => Usage::Client,
        UsageArg::Both => Usage::ServerAndClient,
    };
    let issued = self_signed(&args.cn, &args.names, usage, args.key_type, args.days)
        .with_context(|| format!("generating a certificate for {:?}", args.cn))?;
    tessera_tls::create_private_dir(&args.out)?;
    let cert = args.out.join("cert.pem");
    let key = args.out.join("key.pem");
    issued.write(&cert, &key, args.force)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "wrote {} and {}", cert.display(), key.display())?;
    writeln!(
        out,
        "fingerprint: {}",
        tessera_tls::Fingerprint::of_der(issued.der())
    )?;
    Ok(ExitCode::SUCCESS)
}

fn inspect(file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let certs = tessera_tls::load_certificates(file)?;
    let infos = certs
        .iter()
        .map(|der| CertificateInfo::parse(der.as_ref(), &file.display().to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = std::io::stdout().lock();
    if json {
        let array: Vec<serde_json::Value> = infos.iter().map(certificate_json).collect();
        writeln!(out, "{}", serde_json::Value::Array(array))?;
        return Ok(ExitCode::SUCCESS);
    }
    for (index, info) in infos.iter().enumerate() {
        if infos.len() > 1 {
            writeln!(out, "certificate {} of {}", index + 1, certs.len())?;
        }
        print_certificate(&mut out, info)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A time as RFC 3339, as every command prints times.
pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn validity_now(info: &CertificateInfo) -> Validity {
    info.validity_at(OffsetDateTime::now_utc())
}

/// The facts `print_certificate` shows, as one JSON object.
pub(crate) fn certificate_json(info: &CertificateInfo) -> serde_json::Value {
    serde_json::json!({
        "subject": info.subject(),
        "issuer": info.issuer(),
        "common_name": info.common_name(),
        "subject_alt_names": info.subject_alt_names().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "not_before": rfc3339(info.not_before()),
        "not_after": rfc3339(info.not_after()),
        "validity": match validity_now(info) {
            Validity::Valid => "valid",
            Validity::Expired => "expired",
            Validity::NotYetValid => "not_yet_valid",
        },
        "key": info.key_algorithm().to_string(),
        "version": info.version(),
        "serial": info.serial(),
        "is_ca": info.is_ca(),
        "path_len": info.path_len(),
        "key_usage": info.key_usage(),
        "extended_key_usage": info.extended_key_usage(),
        "fingerprint": info.fingerprint().to_string(),
        "fingerprint_colon": info.fingerprint().to_colon_hex(),
    })
}

/// Prints the facts of one certificate, one `key: value` per line.
pub(crate) fn print_certificate(
    out: &mut impl Write,
    info: &CertificateInfo,
) -> std::io::Result<()> {
    let validity = match validity_now(info) {
        Validity::Valid => "valid now",
        Validity::Expired => "EXPIRED",
        Validity::NotYetValid => "NOT YET VALID",
    };
    let sans: Vec<String> = info
        .subject_alt_names()
        .iter()
        .map(ToString::to_string)
        .collect();
    writeln!(out, "subject:      {}", info.subject())?;
    writeln!(out, "issuer:       {}", info.issuer())?;
    writeln!(
        out,
        "SANs:         {}",
        if sans.is_empty() {
            "(none)".to_owned()
        } else {
            sans.join(", ")
        }
    )?;
    writeln!(out, "not before:   {}", rfc3339(info.not_before()))?;
    writeln!(
        out,
        "not after:    {} ({validity})",
        rfc3339(info.not_after())
    )?;
    writeln!(out, "key:          {}", info.key_algorithm())?;
    let ca = match (info.is_ca(), info.path_len()) {
        (true, Some(len)) => format!(", CA (path length {len})"),
        (true, None) => ", CA".to_owned(),
        (false, _) => String::new(),
    };
    writeln!(out, "version:      v{}{ca}", info.version())?;
    let list = |items: Vec<&str>| {
        if items.is_empty() {
            "(none)".to_owned()
        } else {
            items.join(", ")
        }
    };
    writeln!(out, "key usage:    {}", list(info.key_usage().to_vec()))?;
    writeln!(
        out,
        "ext. usage:   {}",
        list(
            info.extended_key_usage()
                .iter()
                .map(String::as_str)
                .collect()
        )
    )?;
    writeln!(out, "serial:       {}", info.serial())?;
    writeln!(out, "fingerprint:  {}", info.fingerprint())?;
    writeln!(out, "sha256 colon: {}", info.fingerprint().to_colon_hex())?;
    Ok(())
}

/// A name a certificate may carry as a subjectAltName: a DNS name or an IP
/// address, checked as clients will check it (an empty or malformed name is
/// a usage error rather than a certificate no client accepts).
fn subject_name(text: &str) -> Result<String, String> {
    if text.parse::<std::net::IpAddr>().is_ok() {
        return Ok(text.to_owned());
    }
    rustls::pki_types::DnsName::try_from(text)
        .map(|_| text.to_owned())
        .map_err(|_| format!("{text:?} is not a DNS name or IP address"))
}
