//! `tessera guard`: test a configuration against an address, path and
//! certificate, and measure guard decisions per second next to tlacacoca.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use tessera_guard::{
    parse_client, Acl, AclDefault, CanonicalPath, CertFingerprint, CertRule, CertRules, Chain,
    Clock, Decision, Guard, GuardConfig, Limiter, LimiterConfig, PeerCert, Request,
};
use time::OffsetDateTime;

#[derive(Debug, Subcommand)]
pub(crate) enum GuardCommand {
    /// Print the decision a configuration makes for one request.
    ///
    /// Exit 0 when allowed, 1 when denied (the status line is printed).
    Check {
        /// TOML file with a `[guard]` section.
        #[arg(long)]
        config: PathBuf,
        /// Client address (IPv4 or IPv6; brackets and a zone are allowed).
        #[arg(long, value_parser = client_address)]
        ip: IpAddr,
        /// Request path (canonicalised as the server would; a bare `%` is a usage error).
        #[arg(long)]
        path: Option<String>,
        /// Client certificate (PEM) the request presents.
        #[arg(long)]
        cert: Option<PathBuf>,
        /// Print one JSON object: {"client", "path", "allowed", "reason",
        /// "gemini_status", "retry_after_secs"}.
        #[arg(long)]
        json: bool,
    },
    /// Decisions per second on one core, and memory after 1,000,000 clients.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Distinct client addresses for the memory measurement.
    #[arg(long, default_value_t = 1_000_000)]
    clients: u32,
    /// Also run benches/tlacacoca_guard.py (needs python3 and tlacacoca 0.3.0) and print both.
    #[arg(long)]
    baseline: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(command: GuardCommand) -> anyhow::Result<ExitCode> {
    match command {
        GuardCommand::Check {
            config,
            ip,
            path,
            cert,
            json,
        } => check(&config, ip, path.as_deref(), cert.as_deref(), json),
        GuardCommand::Bench(args) => bench(&args),
    }
}

/// `--ip`: an address as the guard reads clients' (a usage error otherwise,
/// rather than a check of "no address").
fn client_address(text: &str) -> Result<IpAddr, String> {
    parse_client(text).ok_or_else(|| format!("{text:?} is not an IP address"))
}

fn check(
    config: &std::path::Path,
    ip: IpAddr,
    path: Option<&str>,
    cert: Option<&std::path::Path>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let chain = GuardConfig::from_toml(&text)
        .and_then(|config| config.build())
        .with_context(|| config.display().to_string())?;
    let address = Some(ip);
    let peer = match cert {
        Some(path) => {
            let der = tessera_tls::load_certificates(path)?.remove(0);
            let info =
                tessera_tls::CertificateInfo::parse(der.as_ref(), &path.display().to_string())?;
            Some(PeerCert {
                fingerprint: CertFingerprint(*info.fingerprint().as_bytes()),
                not_before: info.not_before(),
                not_after: info.not_after(),
            })
        }
        None => None,
    };
    let canonical = path
        .map(|raw| {
            CanonicalPath::parse(raw)
                .map_err(|error| crate::args::usage_error(format!("--path {raw:?}: {error}")))
        })
        .transpose()?;
    let request = Request {
        address,
        path: canonical.as_ref(),
        cert: peer.as_ref(),
    };
    let clock = Clock {
        monotonic_ns: 0,
        wall: OffsetDateTime::now_utc(),
    };
    let decision = chain.check(&request, clock);
    let mut out = std::io::stdout().lock();
    if json {
        let denial = match &decision {
            Decision::Allow => None,
            Decision::Deny(denial) => Some(denial),
        };
        let object = serde_json::json!({
            "client": ip.to_string(),
            "path": canonical.as_ref().map(ToString::to_string),
            "allowed": denial.is_none(),
            "reason": denial.map(|d| d.reason.to_string()),
            "gemini_status": denial.map(|d| tessera_gemini::Header::denied(d).status),
            "retry_after_secs": denial.and_then(|d| d.retry_after.map(|_| d.retry_after_secs())),
        });
        writeln!(out, "{object}")?;
        return Ok(if denial.is_none() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    writeln!(
        out,
        "client: {}",
        address.map_or_else(|| "no address".to_owned(), |a| a.to_string())
    )?;
    if let Some(path) = &canonical {
        writeln!(out, "path:   {path}")?;
    }
    match decision {
        Decision::Allow => {
            writeln!(out, "allow")?;
            Ok(ExitCode::SUCCESS)
        }
        Decision::Deny(denial) => {
            let gemini = tessera_gemini::Header::denied(&denial);
            writeln!(out, "deny: {} ({gemini})", denial.reason)?;
            Ok(ExitCode::FAILURE)
        }
    }
}

fn bench(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    crate::args::require(args.seconds > 0.0 && args.seconds <= 60.0, || {
        "--seconds must be in (0, 60]".into()
    })?;
    let seconds = args.seconds;
    // The limiter takes `now` from its caller (sans-IO); the bench reads the
    // monotonic clock once per batch of 1024 decisions, as a server that
    // timestamps each accept batch would.
    let origin = Instant::now();
    let clock = std::cell::Cell::new(0u64);
    let now = || clock.get();
    let mut results = serde_json::Map::new();

    let limiter = Limiter::new(&LimiterConfig::default())?;
    let warm: Vec<IpAddr> = (0..1000u32)
        .map(|i| IpAddr::from(Ipv4Addr::from(0xC633_0000 + i)))
        .collect();
    results.insert(
        "limiter_warm_per_s".into(),
        rate(seconds, &clock, origin, |i| {
            let _ = limiter.check(warm[i % 1000], now());
        })
        .into(),
    );
    let fresh = Limiter::new(&LimiterConfig::default())?;
    results.insert(
        "limiter_new_key_per_s".into(),
        rate(seconds, &clock, origin, |i| {
            let _ = fresh.check(IpAddr::from(Ipv4Addr::from(0x0B00_0000 + i as u32)), now());
        })
        .into(),
    );
    let outside: IpAddr = "192.0.2.1".parse()?;
    for n in [100u32, 1000, 100_000] {
        let acl = Acl::new(&prefixes(n), &[] as &[String], AclDefault::Allow)?;
        results.insert(
            format!("acl_{n}_per_s"),
            rate(seconds, &clock, origin, |_| {
                std::hint::black_box(acl.allows(Some(std::hint::black_box(outside))));
            })
            .into(),
        );
    }
    let mut allow = prefixes(99);
    allow.push("192.0.2.0/24".into());
    let chain = Chain::new()
        .acl(Acl::new(&allow, &[] as &[String], AclDefault::Allow)?)
        .limiter(Limiter::new(&LimiterConfig {
            rate: 1e9,
            burst: 1_000_000,
            ..LimiterConfig::default()
        })?)
        .certs(CertRules::new(vec![
            CertRule::any("/admin/"),
            CertRule::any("/private/"),
            CertRule::listed("/club/", vec![CertFingerprint([0xab; 32])]),
        ])?);
    let wall = OffsetDateTime::now_utc();
    let public = CanonicalPath::parse("/public/index.gmi")?;
    results.insert(
        "chain_per_s".into(),
        rate(seconds, &clock, origin, |_| {
            let request = Request {
                address: Some(outside),
                path: Some(&public),
                cert: None,
            };
            let decision = chain.check(
                &request,
                Clock {
                    monotonic_ns: now(),
                    wall,
                },
            );
            debug_assert_eq!(decision, Decision::Allow);
        })
        .into(),
    );

    let before = rss_mib()?;
    let flood = Limiter::new(&LimiterConfig::default())?;
    for i in 0..args.clients {
        if i % 1024 == 0 {
            clock.set(origin.elapsed().as_nanos() as u64);
        }
        let _ = flood.check(IpAddr::from(Ipv4Addr::from(0x0C00_0000 + i)), now());
    }
    results.insert(
        "rss_growth_mib_1m_clients".into(),
        (rss_mib()? - before).into(),
    );
    results.insert(
        "tracked_clients_after_1m".into(),
        (flood.tracked() as u64).into(),
    );

    let baseline = if args.baseline {
        crate::benches::python_baseline(
            "tlacacoca_guard.py",
            &[
                "--seconds".into(),
                args.seconds.to_string(),
                "--clients".into(),
                args.clients.to_string(),
            ],
            "tlacacoca==0.3.0",
        )
    } else {
        None
    };
    crate::benches::Report {
        first_column: "measurement",
        baseline_key: "tlacacoca",
        baseline_title: "tlacacoca",
        decimals: 1,
    }
    .print(results, baseline, args.json)?;
    Ok(ExitCode::SUCCESS)
}

/// Calls `op` for about `seconds`; returns calls per second.
fn rate(
    seconds: f64,
    clock: &std::cell::Cell<u64>,
    origin: Instant,
    mut op: impl FnMut(usize),
) -> f64 {
    let started = Instant::now();
    let mut count = 0usize;
    while started.elapsed().as_secs_f64() < seconds {
        clock.set(origin.elapsed().as_nanos() as u64);
        for _ in 0..1024 {
            op(count);
            count += 1;
        }
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// `n` distinct, non-adjacent /24 networks (so none merge) that never contain 192.0.2.1.
fn prefixes(n: u32) -> Vec<String> {
    (0..n)
        .map(|i| format!("{}/24", Ipv4Addr::from(0x0A00_0000 + (i << 9))))
        .collect()
}

fn rss_mib() -> anyhow::Result<f64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc (Linux only)")?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .context("no VmRSS")?;
    Ok(kib / 1024.0)
}
