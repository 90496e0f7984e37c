//! The command lines of `tlslp-server` and `tlslp-client` (also `tessera tlslp
//! server|client`): the reference's flag names, defaults and behaviours
//! (`../shared/spec/tlslp.md` §7), unique prefixes of long flags accepted,
//! plus our limits. Exit codes are documented in each `--help`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use tessera_tls::{dangerous, load_roots, ClientAuth, Identity, ServerAuth};

use crate::driver::{connect_and_run, ClientOptions, ServerOptions, SessionEnd};
use crate::event::Level;
use crate::logfile::{EventSink, LogFile};
use crate::profile::Profile;
use crate::server::{Sequence, SessionConfig, Timeouts};
use crate::{Body, DEFAULT_TOKEN};

/// The reference's refusal text for `--insecure` toward a host that is not loopback.
fn insecure_refusal(host: &str) -> String {
    format!(
        "Refusing insecure TLS to {host}. For non-local hosts, enable certificate verification."
    )
}

/// TLS line protocol server: HELLO, WORK (proof of work), body commands, DONE.
///
/// Serves many sessions at once (the reference serves one). Exit codes: 0 after
/// the single tutorial session or a clean shutdown (SIGINT/SIGTERM); 1 on a
/// configuration, certificate or bind error; 2 on a usage error.
#[derive(Clone, Debug, Args)]
pub struct ServerArgs {
    /// Address (IPv4 or IPv6) or name to bind; loopback (localhost,
    /// 127.0.0.0/8, ::1) with --insecure.
    #[arg(long, default_value = "localhost")]
    host: String,
    /// TCP port (0 picks a free one and prints it).
    #[arg(long, default_value_t = 1234)]
    port: u16,
    /// Server certificate (PEM).
    #[arg(long, default_value = "certificates/server-cert.pem")]
    server_cert: PathBuf,
    /// Server private key (PEM).
    #[arg(long, default_value = "certificates/server-key.pem")]
    server_key: PathBuf,
    /// CA that client certificates must chain to.
    #[arg(long, default_value = "certificates/ca_cert.pem")]
    ca_cert: PathBuf,
    /// Seconds to wait for the WORK reply (whole line).
    #[arg(long, default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..))]
    work_timeout: u64,
    /// Seconds to wait for every other reply (whole line).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    other_timeout: u64,
    /// Do not request client certificates (only on loopback: localhost,
    /// 127.0.0.0/8 or ::1).
    #[arg(long)]
    insecure: bool,
    /// WORK token.
    #[arg(long, default_value = DEFAULT_TOKEN)]
    token: String,
    /// Argument of body commands and of the random FAIL.
    #[arg(long, default_value = "LGTk")]
    random_string: String,
    /// WORK difficulty in trailing zero bits (any integer, as the reference; ≤ 0 accepts every suffix).
    #[arg(long = "n_bits", default_value_t = 28, allow_negative_numbers = true)]
    n_bits: i64,
    /// DEBUG, INFO, WARNING, ERROR or CRITICAL.
    #[arg(id = LOG_LEVEL_ID, long = "log-level", default_value = "INFO", value_parser = parse_level)]
    log_level: Level,
    /// Tutorial: fixed sequence, one session, then exit; fixed log timestamps, log truncated.
    #[arg(long)]
    tutorial: bool,
    /// Seconds a TLS handshake may take.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    handshake_timeout: u64,
    /// Refuse client certificates listed in this CRL (PEM or DER; `tessera
    /// certs revoke` writes one), read at start and on SIGHUP (sessions of a
    /// certificate it now lists are closed).
    #[arg(long, value_name = "FILE")]
    crl: Option<PathBuf>,
    /// Load and check the certificates, key, CA, CRL and guard settings,
    /// then exit 0 if valid, 1 with what is wrong — without serving.
    #[arg(long)]
    check_config: bool,
    /// Seconds running sessions may take to finish after SIGINT/SIGTERM.
    #[arg(long, default_value_t = 10)]
    shutdown_grace: u64,
    /// Directory of server.log. Default: $XDG_STATE_HOME/tlslp/logs.
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// Adaptive proof of work: raise n_bits under load up to this many bits (off by default).
    #[arg(long, value_name = "MAX_BITS")]
    adaptive_work: Option<i64>,
    /// Adaptive work: sessions at once before n_bits rises.
    #[arg(long, default_value_t = 64)]
    adaptive_threshold: usize,
    /// Adaptive work: extra sessions per extra bit.
    #[arg(long, default_value_t = 32)]
    adaptive_step: usize,
    #[command(flatten)]
    admission: tessera_serve::AdmissionArgs,
    /// Fleet mode: the per-client rate limit in a store other servers share.
    #[command(flatten)]
    fleet: tessera_fleet::FleetArgs,
    #[command(flatten)]
    metrics: tessera_serve::MetricsArgs,
    #[command(flatten)]
    reload: tessera_serve::ReloadArgs,
    /// Turn the default per-client rate limit (a burst of 20 sessions, then 2
    /// per second) off.
    #[arg(long, conflicts_with = "rate_limit")]
    no_rate_limit: bool,
    /// Key for the pseudonymous client ids in denial logs and session records
    /// (32 bytes, created 0600 if missing). Default: $XDG_DATA_HOME/tessera/log.key.
    #[arg(long)]
    log_key_file: Option<PathBuf>,
}

/// The guard config from `--guard-config` and the admission flags, with
/// tlslp's default rate limit unless one is set or `--no-rate-limit`.
fn server_guard(args: &ServerArgs) -> anyhow::Result<tessera_guard::GuardConfig> {
    let mut config = args
        .admission
        .guard_config(tessera_guard::GuardConfig::default())?;
    if args.no_rate_limit {
        config.rate_limit = None;
    } else if config.rate_limit.is_none() {
        config.rate_limit = Some(tessera_guard::RateLimitConfig {
            rate: 2.0,
            burst: 20,
            ..Default::default()
        });
    }
    Ok(config)
}

/// TLS line protocol client: answers the server, solving WORK on every core.
///
/// Exit codes (the reference exits 0 even on failure): 0 when the session
/// ended with DONE/OK; 1 when no port connected, the server sent FAIL, or any
/// error happened after connecting; 2 on a usage error.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Server host, also the TLS server name (SNI, certificate check).
    #[arg(long, default_value = "localhost")]
    host: String,
    /// Comma-separated ports tried in order; the first TCP + TLS success is used.
    #[arg(long, default_value = "3115,7883,8235,38154,1234,55532", value_parser = parse_ports)]
    ports: PortList,
    /// Client certificate (PEM).
    #[arg(long, default_value = "certificates/client_cert.pem")]
    client_cert: PathBuf,
    /// Client private key (PEM).
    #[arg(long, default_value = "certificates/ec_private_key.pem")]
    private_key: PathBuf,
    /// CA the server certificate must chain to.
    #[arg(long, default_value = "certificates/ca_cert.pem")]
    ca_cert: PathBuf,
    /// Accepted for compatibility and ignored: the solver is built in.
    #[arg(long, hide = true)]
    work_binary: Option<PathBuf>,
    /// Seconds the proof of work may take.
    #[arg(long, default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..))]
    work_timeout: u64,
    /// Seconds for connect + handshake and for each server line.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    other_timeout: u64,
    /// Skip server verification (only toward loopback: localhost, 127.0.0.0/8
    /// or ::1); presents no client certificate.
    #[arg(long)]
    insecure: bool,
    /// DEBUG, INFO, WARNING, ERROR or CRITICAL.
    #[arg(id = LOG_LEVEL_ID, long = "log-level", default_value = "INFO", value_parser = parse_level)]
    log_level: Level,
    /// Tutorial logging: fixed timestamps, log truncated (the protocol is unchanged).
    #[arg(long)]
    tutorial: bool,
    /// TOML file with full_name, email1, email2, social, birthdate, country, addr_line1, addr_line2.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Value for FULL_NAME (overrides the profile).
    #[arg(long)]
    full_name: Option<String>,
    /// Value for EMAIL1.
    #[arg(long)]
    email1: Option<String>,
    /// Value for EMAIL2.
    #[arg(long)]
    email2: Option<String>,
    /// Value for SOCIAL.
    #[arg(long)]
    social: Option<String>,
    /// Value for BIRTHDATE.
    #[arg(long)]
    birthdate: Option<String>,
    /// Value for COUNTRY.
    #[arg(long)]
    country: Option<String>,
    /// Value for ADDR_LINE1.
    #[arg(long)]
    addr_line1: Option<String>,
    /// Value for ADDR_LINE2.
    #[arg(long)]
    addr_line2: Option<String>,
    /// Solver threads. Default: every core.
    #[arg(long)]
    threads: Option<usize>,
    /// Directory of client.log. Default: $XDG_STATE_HOME/tlslp/logs.
    #[arg(long)]
    log_dir: Option<PathBuf>,
}

/// A parsed `--ports` value.
#[derive(Clone, Debug)]
pub struct PortList(Vec<u16>);

fn parse_ports(text: &str) -> Result<PortList, String> {
    text.split(',')
        .map(|p| match p.trim().parse::<u16>() {
            Ok(0) | Err(_) => Err(format!("invalid port {p:?}: each must be 1-65535")),
            Ok(port) => Ok(port),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(PortList)
}

/// The clap id of both programs' `--log-level`, distinct from `tessera`'s
/// global flag of the same name (whose values are strings), so that
/// `tessera tlslp` can rename this one and feed it from the global one.
pub const LOG_LEVEL_ID: &str = "tlslp_log_level";

impl ServerArgs {
    /// Sets the log file's level (as `--log-level` does).
    pub fn set_log_level(&mut self, level: Level) {
        self.log_level = level;
    }

    /// Sets where to listen (as `--host` and `--port` do).
    pub fn set_address(&mut self, host: String, port: u16) {
        self.host = host;
        self.port = port;
    }
}

impl ClientArgs {
    /// Sets the log file's level (as `--log-level` does).
    pub fn set_log_level(&mut self, level: Level) {
        self.log_level = level;
    }
}

fn parse_level(text: &str) -> Result<Level, String> {
    Level::parse(text).ok_or_else(|| {
        format!("invalid choice {text:?} (choose from DEBUG, INFO, WARNING, ERROR, CRITICAL)")
    })
}

/// Runs the server until SIGINT/SIGTERM (or one session in tutorial mode).
///
/// # Errors
/// Configuration, certificate and bind errors.
pub async fn run_server(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let dir = args.log_dir.clone().unwrap_or_else(LogFile::default_dir);
    let log = Arc::new(
        LogFile::open(
            &dir,
            "server.log",
            "tlslp.server",
            args.log_level,
            args.tutorial,
        )
        .with_context(|| format!("opening the log in {}", dir.display()))?,
    );
    log.record(Level::Info, "Server starting");
    if args.insecure && !tessera_tls::is_loopback_host(&args.host) {
        anyhow::bail!(insecure_refusal(&args.host));
    }
    log.record(
        Level::Debug,
        &format!("CA cert exists: {}", py_bool(args.ca_cert.exists())),
    );
    log.record(
        Level::Debug,
        &format!("Server cert exists: {}", py_bool(args.server_cert.exists())),
    );
    log.record(
        Level::Debug,
        &format!("Server key exists: {}", py_bool(args.server_key.exists())),
    );
    let guard = server_guard(&args)?;
    anyhow::ensure!(args.adaptive_step > 0, "--adaptive-step must be at least 1");
    // A name's IPv4 address first, as the reference binds (`localhost` is
    // 127.0.0.1), else its IPv6 one; an address literal of either family as is.
    let addresses: Vec<std::net::SocketAddr> =
        tokio::net::lookup_host((args.host.as_str(), args.port))
            .await
            .with_context(|| format!("resolving {}", args.host))?
            .collect();
    let address = addresses
        .iter()
        .find(|address| address.is_ipv4())
        .or_else(|| addresses.first())
        .copied()
        .with_context(|| format!("{} has no address", args.host))?;
    let tls = server_tls(&args, address)?;
    if args.check_config {
        use std::io::Write;
        guard.relays()?;
        tessera_serve::AdmissionArgs::chain(&guard, args.fleet.shared_limit()?)?;
        writeln!(
            std::io::stdout(),
            "configuration OK: tlslp server on {address}"
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("binding {address}"))?;
    let port = listener.local_addr()?.port();
    let metrics = args.metrics.metrics();
    if let Some(address) = args.metrics.start(metrics.as_ref()).await? {
        use std::io::Write;
        writeln!(std::io::stdout(), "metrics on http://{address}/metrics")?;
    }
    // Before the announcement: see shutdown_signal.
    let shutdown = tessera_serve::shutdown_signal();
    // An IPv6 literal in brackets, as in any URL.
    let url_host = if args.host.contains(':') {
        format!("[{}]", args.host)
    } else {
        args.host.clone()
    };
    log.record(
        Level::Info,
        &format!(
            "Server listening on https://{}:{port}",
            crate::py_repr(&url_host)
        ),
    );
    use std::io::Write;
    let _ = writeln!(
        std::io::stdout(),
        "Server listening on https://{url_host}:{port}"
    );
    let _ = std::io::stdout().flush();

    let args_for_reload = args.clone();
    let session = Arc::new(SessionConfig {
        token: args.token,
        random_string: args.random_string,
        n_bits: args.n_bits,
        sequence: if args.tutorial {
            Sequence::Tutorial
        } else {
            Sequence::Random
        },
        timeouts: Timeouts {
            work: Duration::from_secs(args.work_timeout),
            reply: Duration::from_secs(args.other_timeout),
        },
    });
    let mut options = ServerOptions::new(tls, session);
    options.handshake_timeout = Duration::from_secs(args.handshake_timeout);
    (options.max_connections, options.max_per_address) = args.admission.caps(&guard, (10_000, 32));
    options.shutdown_grace = Duration::from_secs(args.shutdown_grace);
    options.once = args.tutorial;
    options.print_stdout = true;
    // --log-client-ip (an admission flag) or the guard's `log_client_ip`; a
    // --tutorial session on loopback writes the reference's lines anyway.
    options.log_client_ip = guard.log_client_ip;
    options.trusted_relays = guard.relays()?;
    options.metrics.clone_from(&metrics);
    options.guard =
        tessera_serve::AdmissionArgs::chain(&guard, args.fleet.shared_limit()?)?.map(Arc::new);
    options.fleet = args.fleet.admission()?;
    let key_file = match &args.log_key_file {
        Some(path) => Some(path.clone()),
        None => default_log_key_file(),
    };
    if let Some(path) = key_file {
        options.client_ids = tessera_guard::ClientIds::from_key_file(&path, false)?;
    }
    options.adaptive_work = args
        .adaptive_work
        .map(|max_bits| crate::driver::AdaptiveWork {
            threshold: args.adaptive_threshold,
            step: args.adaptive_step,
            max_bits,
        });
    let server = crate::driver::Server::new(listener, options, log.clone(), None)?;
    reload_on_sighup(
        args_for_reload,
        address,
        server.stage(),
        log,
        metrics.as_ref(),
    )?;
    server.run(shutdown).await;
    Ok(ExitCode::SUCCESS)
}

/// The server's TLS configuration: its certificate and key, and the CA and
/// CRL its clients' certificates are checked against.
fn server_tls(
    args: &ServerArgs,
    address: std::net::SocketAddr,
) -> anyhow::Result<Arc<tessera_tls::rustls::ServerConfig>> {
    let identity = Identity::load(&args.server_cert, &args.server_key)?;
    Ok(if args.insecure {
        dangerous::insecure_server_config(address, &identity)?
    } else {
        let roots = load_roots(&args.ca_cert)?;
        let client_auth = match &args.crl {
            Some(crl) => ClientAuth::RequiredWithCrls(roots, tessera_tls::load_crls(crl)?),
            None => ClientAuth::Required(roots),
        };
        tessera_tls::server_config(&identity, client_auth)?
    })
}

/// On SIGHUP (and with --watch when one of its files changes): the
/// certificate, key, CA, CRL and guard read again; sessions
/// in progress whose certificate the CRL now lists (or whose client the new
/// ACL denies) are closed.
fn reload_on_sighup(
    args: ServerArgs,
    address: std::net::SocketAddr,
    stage: Arc<tessera_serve::Stage>,
    log: Arc<LogFile>,
    metrics: Option<&tessera_serve::Metrics>,
) -> anyhow::Result<()> {
    let watched = args.reload.watched(
        [&args.server_cert, &args.server_key, &args.ca_cert]
            .into_iter()
            .chain(&args.crl)
            .chain(&args.admission.guard_config)
            .cloned(),
    );
    let reload = move || {
        let tls = server_tls(&args, address)?;
        let guard =
            tessera_serve::AdmissionArgs::chain(&server_guard(&args)?, args.fleet.shared_limit()?)?;
        let revoked = match &args.crl {
            Some(path) => tessera_tls::RevocationList::new(path, &tessera_tls::load_crls(path)?)?,
            None => tessera_tls::RevocationList::default(),
        };
        let listed = revoked.len();
        let closed = stage.reload(tessera_serve::Reload {
            tls: Some(tls),
            guard: guard.map(Arc::new),
            revoked,
        })?;
        anyhow::Ok(format!(
            "{listed} revoked certificate(s) listed, {closed} session(s) closed"
        ))
    };
    // In the server's log file too, where its operators read everything else.
    tessera_serve::on_reload(&watched, metrics, move || match reload() {
        Ok(summary) => {
            log.record(Level::Info, &format!("Reloaded: {summary}"));
            Ok(summary)
        }
        Err(error) => {
            let error = format!("{error:#}");
            log.record(Level::Error, &format!("Reload failed: {error}"));
            Err(error)
        }
    })?;
    Ok(())
}

/// Runs one client session.
///
/// # Errors
/// Configuration and certificate errors (a failed session is an exit code, not an error).
pub async fn run_client(args: ClientArgs) -> anyhow::Result<ExitCode> {
    let dir = args.log_dir.clone().unwrap_or_else(LogFile::default_dir);
    let log = LogFile::open(
        &dir,
        "client.log",
        "tlslp.client",
        args.log_level,
        args.tutorial,
    )
    .with_context(|| format!("opening the log in {}", dir.display()))?;
    log.record(
        Level::Debug,
        &format!("Client cert exists: {}", py_bool(args.client_cert.exists())),
    );
    log.record(
        Level::Debug,
        &format!("Private key exists: {}", py_bool(args.private_key.exists())),
    );
    // The reference checks its solver binary here; ours is built in.
    log.record(Level::Info, "WORK binary exists: True");

    let mut profile = match &args.profile {
        Some(path) => Profile::load(path)?,
        None => Profile::default(),
    };
    for (body, value) in [
        (Body::FullName, &args.full_name),
        (Body::Email1, &args.email1),
        (Body::Email2, &args.email2),
        (Body::Social, &args.social),
        (Body::Birthdate, &args.birthdate),
        (Body::Country, &args.country),
        (Body::AddrLine1, &args.addr_line1),
        (Body::AddrLine2, &args.addr_line2),
    ] {
        if let Some(value) = value {
            anyhow::ensure!(
                !value.contains('\n') && value.len() <= 900,
                "--{} must be one line of at most 900 bytes",
                body.name().to_lowercase().replace('_', "-")
            );
            profile.set(body, value.clone());
        }
    }

    let tls = if args.insecure {
        if !tessera_tls::is_loopback_host(&args.host) {
            for port in &args.ports.0 {
                log.record(
                    Level::Warning,
                    &format!(
                        "Can't connect to {}:{port}: {}",
                        crate::py_repr(&args.host),
                        insecure_refusal(&args.host)
                    ),
                );
            }
            log.record(Level::Critical, "Not able to connect to any port.  Exiting");
            return Ok(ExitCode::FAILURE);
        }
        dangerous::insecure_client_config(&args.host, None)?
    } else {
        let identity = Identity::load(&args.client_cert, &args.private_key)?;
        tessera_tls::client_config(
            ServerAuth::Roots(load_roots(&args.ca_cert)?),
            Some(&identity),
        )?
    };
    let options = ClientOptions {
        host: args.host,
        ports: args.ports.0,
        tls,
        read_timeout: Duration::from_secs(args.other_timeout),
        work_timeout: Duration::from_secs(args.work_timeout),
        threads: args.threads,
        profile: Arc::new(profile),
        work_counter: Some(Arc::default()),
        print_stdout: true,
    };
    let spinner = options.work_counter.clone().map(spin_while_solving);
    let result = connect_and_run(&options, &log).await;
    if let Some(spinner) = spinner {
        spinner.abort();
        let _ = spinner.await;
    }
    match result {
        Ok(report) if report.end == SessionEnd::Done => Ok(ExitCode::SUCCESS),
        Ok(report) => {
            if let SessionEnd::ServerFail(text) = &report.end {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "tlslp-client: server ended the session: FAIL {text}"
                );
            }
            Ok(ExitCode::FAILURE)
        }
        Err(_) => Ok(ExitCode::FAILURE),
    }
}

/// Shows a spinner with the proof-of-work rate on a terminal's stderr while
/// `tried` grows; clears it when aborted. Off a terminal it shows nothing.
fn spin_while_solving(tried: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if !std::io::stderr().is_terminal() {
            return;
        }
        // Cleared on every exit, abort included, when the guard drops.
        let bar = ClearOnDrop(indicatif::ProgressBar::new_spinner());
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(120));
        loop {
            tick.tick().await;
            let count = tried.load(Ordering::Relaxed) as f64;
            if count == 0.0 {
                continue;
            }
            let rate = count / started.elapsed().as_secs_f64().max(1e-9) / 1e6;
            bar.0.set_message(format!(
                "proof of work: {count:.3e} candidates tried, {rate:.1} M/s"
            ));
            bar.0.tick();
        }
    })
}

/// A progress bar cleared when dropped.
struct ClearOnDrop(indicatif::ProgressBar);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// `$XDG_DATA_HOME/tessera/log.key` (or `~/.local/share/tessera/log.key`).
fn default_log_key_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share"))
        })?;
    Some(base.join("tessera").join("log.key"))
}

fn py_bool(value: bool) -> &'static str {
    if value {
        "True"
    } else {
        "False"
    }
}

/// Structured records (one per server session, target `tlslp::session`) go to
/// stderr when `TESSERA_LOG` enables them, e.g. `TESSERA_LOG=tlslp::session=info`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,tessera::reload=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The shared `main` of `tlslp-server` and `tlslp-client`: tracing, a runtime,
/// one error line on stderr.
pub fn run_main<F>(program: &str, run: impl FnOnce() -> F) -> ExitCode
where
    F: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    use std::io::Write;
    init_tracing();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run()));
    match result {
        Ok(code) => code,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "{program}: {error:#}");
            ExitCode::FAILURE
        }
    }
}
