//! `tessera gemini`: serve a capsule, fetch a URL, and measure both against
//! molly-brown.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use tessera_gemini::{Client, ClientOptions, ConfigFile, HostConfig, Server, StatusClass};
use tessera_guard::{CertRuleConfig, ConnectionsConfig};
use tessera_tls::tofu::RotationPolicy;
use tessera_tls::{Identity, TofuStore};

#[derive(Debug, Subcommand)]
pub(crate) enum GeminiCommand {
    /// Serve a directory (or several virtual hosts) as a Gemini capsule.
    ///
    /// `.gmi` files are served as text/gemini, other files by extension;
    /// a directory serves its index.gmi or a generated listing. Without
    /// --cert/--key a self-signed certificate is generated once per host and
    /// kept in --cert-dir, so clients that pinned it keep trusting it. Runs
    /// until SIGINT/SIGTERM, then lets running requests finish; SIGHUP (or
    /// --watch) reloads the configuration and certificates.
    Serve(Box<ServeArgs>),
    /// Fetch a gemini:// URL and print the body.
    ///
    /// The server is pinned on first use in the TOFU store; a changed
    /// certificate is refused before the request is sent. Exit status: 0 for
    /// a 2x response, the status itself (10-69) for any other, 1 for errors
    /// (network, TLS, TOFU mismatch, malformed response).
    Get(GetArgs),
    /// Upload FILE to a titan:// URL (Titan, on the server's Gemini port).
    ///
    /// The server answers with a redirect to the gemini:// URL of the
    /// result, printed on stdout (or, from a CGI or SCGI handler, with a
    /// page, printed as it is). Exit status: 0 when it was accepted, the
    /// status itself (10-69) when refused, 1 for errors.
    Put(PutArgs),
    /// Requests per second for a small .gmi file, 1 and 32 clients, a new TLS
    /// connection per request, next to molly-brown serving the same file.
    Bench(crate::benches::gemini::BenchArgs),
}

#[derive(Clone, Debug, Args)]
pub(crate) struct ServeArgs {
    /// TOML configuration (hosts, guard, timeouts); flags below override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory to serve for --hostname.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Address to listen on (default: port 1965 on every IPv6 and IPv4 address, or IPv4 only where IPv6 is off).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// Host name of the --root capsule (URLs naming other hosts get 53).
    #[arg(long, value_name = "NAME", default_value = "localhost")]
    hostname: String,
    /// Certificate chain (PEM) for --hostname; with --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// Private key (PEM) for --hostname; with --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Where generated certificates and the log key are kept [default: $XDG_DATA_HOME/tessera/gemini].
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// Paths under PREFIX need a client certificate (any); repeatable. Without one: 60.
    #[arg(long, value_name = "PREFIX")]
    require_cert: Vec<String>,
    /// Paths under PREFIX need a certificate with this SHA-256 fingerprint;
    /// repeatable, several per prefix allowed. Another certificate: 61.
    #[arg(long, value_name = "PREFIX=FINGERPRINT")]
    allow_cert: Vec<String>,
    /// `lang` parameter for text/gemini (e.g. en).
    #[arg(long)]
    lang: Option<String>,
    /// `charset` parameter for text/gemini [default: utf-8].
    #[arg(long)]
    charset: Option<String>,
    /// Answer 51 for directories without index.gmi instead of a generated listing.
    #[arg(long)]
    no_listings: bool,
    /// Read agate-style `.meta` files: per-file MIME types and parameters
    /// (`index.gmi: ;lang=en`), redirects and statuses (`old.gmi: 31 /new.gmi`).
    #[arg(long)]
    meta_files: bool,
    /// Seconds for the request line after the handshake [default: 10].
    #[arg(long, value_name = "SECONDS")]
    request_timeout: Option<f64>,
    /// Executables in DIR answer requests under PREFIX (CGI, repeatable):
    /// `--cgi /app/=DIR` runs DIR/hello for /app/hello/rest, with PATH_INFO
    /// /rest. No shell, an empty environment plus the CGI variables
    /// (docs/CGI.md), stdin closed.
    #[arg(long, value_name = "PREFIX=DIR")]
    cgi: Vec<String>,
    /// Requests under PREFIX go to the SCGI application at ADDRESS (a Unix
    /// socket path, or a loopback HOST:PORT), repeatable; the same variables
    /// and limits as CGI.
    #[arg(long, value_name = "PREFIX=ADDRESS")]
    scgi: Vec<String>,
    /// Requests under PREFIX are forwarded to the Gemini server at URL
    /// (`--proxy-pass /mirror/=gemini://host:1965/`, repeatable). The
    /// upstream is pinned on first use in --proxy-db (pin it ahead with
    /// `tessera tofu trust`), or verified against --proxy-ca; its answer is capped like CGI output and
    /// bounded by --cgi-timeout; a failure is `43`. Client certificates are
    /// not forwarded.
    #[arg(long, value_name = "PREFIX=URL")]
    proxy_pass: Vec<String>,
    /// The TOFU store upstream pins are kept in [default: the one `gemini
    /// get` uses].
    #[arg(long, value_name = "FILE", conflicts_with = "proxy_ca")]
    proxy_db: Option<PathBuf>,
    /// Verify --proxy-pass upstreams against these CA certificates (PEM):
    /// their chain must lead to one and name the upstream's host. Instead
    /// of pinning them on first use.
    #[arg(long, value_name = "FILE")]
    proxy_ca: Option<PathBuf>,
    /// Seconds a CGI script may run before it is killed (the client gets 42).
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = crate::args::seconds)]
    cgi_timeout: Duration,
    /// Titan uploads under PREFIX are written below DIR (repeatable):
    /// authorised by the --allow-cert/--require-cert rules covering the path,
    /// or by --titan-token-file. The reply redirects to the gemini:// URL.
    #[arg(long, value_name = "PREFIX=DIR")]
    titan: Vec<String>,
    /// Largest Titan upload, in bytes; checked before reading any of it.
    #[arg(long, value_name = "BYTES", default_value_t = 10 * 1024 * 1024)]
    titan_max_size: u64,
    /// A file holding a token that authorises Titan uploads (`token=` in the URL).
    #[arg(long, value_name = "FILE")]
    titan_token_file: Option<PathBuf>,
    /// Hand Titan uploads under a --cgi or --scgi prefix (and no --titan one)
    /// to that script or application: received whole first, then its stdin
    /// (CGI) or the body after the SCGI header, with CONTENT_LENGTH and
    /// CONTENT_TYPE; its answer is the reply. Authorised as any upload.
    #[arg(long)]
    titan_to_cgi: bool,
    /// CGI scripts running at once; beyond, clients get 41.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    cgi_max_running: u64,
    /// Admission. Gemini charges the ACL and rate limit per request (over
    /// the limit: `44 <seconds>`; denied: `53`); --guard-config replaces the
    /// `[guard]` section of --config.
    #[command(flatten)]
    admission: tessera_serve::AdmissionArgs,
    /// Fleet mode: the per-client rate limit in a store other servers share.
    #[command(flatten)]
    fleet: tessera_fleet::FleetArgs,
    #[command(flatten)]
    metrics: tessera_serve::MetricsArgs,
    #[command(flatten)]
    reload: tessera_serve::ReloadArgs,
    #[command(flatten)]
    check: crate::args::CheckConfig,
}

#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// The gemini:// URL.
    url: String,
    /// Client certificate presented when the server asks (PEM), with --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// The same as --cert CERT --key KEY, in one flag.
    #[arg(
        long,
        value_name = "CERT,KEY",
        conflicts_with = "cert",
        hide_short_help = true
    )]
    identity: Option<String>,
    /// Write the body here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// TOFU store [default: $XDG_DATA_HOME/tessera/tofu.sqlite3].
    #[arg(
        long,
        visible_alias = "tofu-db",
        env = "TESSERA_TOFU_DB",
        value_name = "FILE"
    )]
    db: Option<PathBuf>,
    /// What a changed certificate means: always a mismatch, or accepted once
    /// the pinned one has expired.
    #[arg(long, value_enum, default_value_t = Rotation::Never)]
    tofu_rotation: Rotation,
    /// Redirects followed at most.
    #[arg(long, default_value_t = 5)]
    max_redirects: usize,
    /// Seconds allowed for each step (connect, handshake, header, body).
    #[arg(long, default_value = "30", value_name = "SECONDS", value_parser = crate::args::seconds)]
    timeout: Duration,
    /// Print the response header line (`20 text/gemini`) on stdout before
    /// the body, whatever the status.
    #[arg(long)]
    header: bool,
    /// Largest body accepted, in bytes.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_size: u64,
}

#[derive(Debug, Args)]
pub(crate) struct PutArgs {
    /// The file to upload.
    file: PathBuf,
    /// Where: `titan://HOST[:PORT]/PATH`.
    url: String,
    /// MIME type of the upload [default: text/gemini for .gmi, else by extension].
    #[arg(long)]
    mime: Option<String>,
    /// File holding the upload token the server was given (--titan-token-file).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Client certificate presented when the server asks (PEM), with --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// TOFU store [default: $XDG_DATA_HOME/tessera/tofu.sqlite3].
    #[arg(long, env = "TESSERA_TOFU_DB", value_name = "FILE")]
    db: Option<PathBuf>,
    /// Seconds allowed for each step (connect, handshake, upload, answer).
    #[arg(long, default_value = "30", value_name = "SECONDS", value_parser = crate::args::seconds)]
    timeout: Duration,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Rotation {
    /// Any change is a mismatch.
    Never,
    /// Accept a new certificate when the pinned one has expired.
    AfterExpiry,
}

pub(crate) fn run(command: GeminiCommand) -> anyhow::Result<ExitCode> {
    match command {
        GeminiCommand::Serve(args) => serve(&args),
        GeminiCommand::Get(args) => get(&args),
        GeminiCommand::Put(args) => put(&args),
        GeminiCommand::Bench(args) => crate::benches::gemini::run(&args),
    }
}

fn serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let file = settings_file(args)?;
    let cert_dir = match &args.cert_dir {
        Some(dir) => dir.clone(),
        None => crate::paths::data_dir()?.join("gemini"),
    };
    let mut settings = file.resolve(&cert_dir)?;
    settings.shared_limit = args.fleet.shared_limit()?;
    settings.metrics = args.metrics.metrics();
    dynamic_content(args, &mut settings)?;
    if let Some(code) = args.check.passed(&format!(
        "{} capsule(s): {}",
        settings.hosts.len(),
        settings
            .hosts
            .iter()
            .map(|host| host.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))? {
        return Ok(code);
    }
    crate::runtime()?.block_on(async {
        let listener = match (args.listen, &file.listen) {
            (Some(listen), _) => crate::listen::bind(listen).await?,
            (None, Some(listen)) => {
                crate::listen::bind(
                    listen
                        .parse()
                        .with_context(|| format!("listen = {listen:?} is not ADDR:PORT"))?,
                )
                .await?
            }
            (None, None) => match crate::listen::bind("[::]:1965".parse()?).await {
                Ok(listener) => listener,
                Err(_) => crate::listen::bind("0.0.0.0:1965".parse()?).await?,
            },
        };
        let addr = listener.local_addr()?;
        settings.fleet = args.fleet.admission()?;
        let server = Server::from_listener(listener, settings.clone())?;
        reload_on_sighup(args, &file, &server, &settings, cert_dir)?;
        let mut out = std::io::stdout().lock();
        for host in &settings.hosts {
            writeln!(
                out,
                "serving gemini://{}:{}/ from {}",
                host.name,
                addr.port(),
                host.capsule.root().display()
            )?;
        }
        drop(out);
        crate::listen::metrics(&args.metrics, settings.metrics.as_ref()).await?;
        let shutdown = crate::listen::ready(addr)?;
        server.run(shutdown).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// On SIGHUP (and with --watch when one of its files changes): the
/// configuration file, the flags and every file they name read again (certificates and keys of every host, capsule settings, the
/// guard) and swapped in for new connections.
fn reload_on_sighup(
    args: &ServeArgs,
    file: &ConfigFile,
    server: &Server,
    started_with: &tessera_gemini::ServerSettings,
    cert_dir: PathBuf,
) -> anyhow::Result<()> {
    // The files it reads: the config, the guard config, each host's certificate and key.
    let watched = args.reload.watched(
        args.config
            .iter()
            .chain(&args.admission.guard_config)
            .chain(
                file.hosts
                    .iter()
                    .flat_map(|host| host.cert.iter().chain(&host.key)),
            )
            .cloned(),
    );
    let (args, reloader) = (args.clone(), server.reloader());
    let (shared_limit, metrics) = (
        started_with.shared_limit.clone(),
        started_with.metrics.clone(),
    );
    let reload = move || {
        let mut settings = settings_file(&args)?.resolve(&cert_dir)?;
        settings.shared_limit.clone_from(&shared_limit);
        settings.metrics.clone_from(&metrics);
        dynamic_content(&args, &mut settings)?;
        let hosts = settings.hosts.len();
        reloader.reload(settings)?;
        anyhow::Ok(format!("{hosts} capsule(s)"))
    };
    tessera_serve::on_reload(&watched, started_with.metrics.as_ref(), move || {
        reload().map_err(|e| format!("{e:#}"))
    })?;
    Ok(())
}

/// The CGI, SCGI, proxy and Titan routes and limits of the flags.
fn dynamic_content(
    args: &ServeArgs,
    settings: &mut tessera_gemini::ServerSettings,
) -> anyhow::Result<()> {
    settings.cgi = args
        .cgi
        .iter()
        .map(|spec| tessera_gemini::CgiRoute::parse(spec))
        .chain(
            args.scgi
                .iter()
                .map(|spec| tessera_gemini::CgiRoute::parse_scgi(spec)),
        )
        .collect::<Result<_, _>>()?;
    if !args.proxy_pass.is_empty() {
        let trust = match &args.proxy_ca {
            Some(file) => tessera_gemini::ServerTrust::Roots(Arc::new(
                tessera_tls::load_roots(file)
                    .with_context(|| format!("--proxy-ca {}", file.display()))?,
            )),
            None => tessera_gemini::ServerTrust::Tofu(Arc::new(tofu_store(
                args.proxy_db.as_ref(),
                Rotation::Never,
            )?)),
        };
        for spec in &args.proxy_pass {
            settings
                .cgi
                .push(tessera_gemini::CgiRoute::parse_proxy(spec, trust.clone())?);
        }
    }
    settings.cgi_limits = tessera_gemini::CgiLimits {
        timeout: args.cgi_timeout,
        max_running: usize::try_from(args.cgi_max_running).unwrap_or(usize::MAX),
        ..tessera_gemini::CgiLimits::default()
    };
    settings.titan = tessera_gemini::TitanSettings {
        routes: args
            .titan
            .iter()
            .map(|spec| tessera_gemini::TitanRoute::parse(spec))
            .collect::<Result<_, _>>()?,
        max_size: args.titan_max_size,
        token: args
            .titan_token_file
            .as_deref()
            .map(|path| crate::secrets::read_secret_file(path, "Titan token"))
            .transpose()?
            .map(|token| token.as_str().to_owned()),
        to_handlers: args.titan_to_cgi,
    };
    Ok(())
}

/// The configuration file with the flags merged in.
fn settings_file(args: &ServeArgs) -> anyhow::Result<ConfigFile> {
    let mut file = match &args.config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    match &args.root {
        Some(root) => {
            let host = HostConfig {
                name: args.hostname.clone(),
                root: root.clone(),
                cert: args.cert.clone(),
                key: args.key.clone(),
                rules: Vec::new(),
            };
            file.hosts
                .retain(|h| !h.name.eq_ignore_ascii_case(&host.name));
            file.hosts.insert(0, host);
        }
        None if args.cert.is_some() => {
            return Err(crate::args::usage_error(
                "--cert and --key are for the --root capsule; give --root too",
            ))
        }
        None => {}
    }
    if args.cert_dir.is_some() {
        file.cert_dir.clone_from(&args.cert_dir);
    }
    if args.lang.is_some() {
        file.lang.clone_from(&args.lang);
    }
    if args.charset.is_some() {
        file.charset.clone_from(&args.charset);
    }
    if args.no_listings {
        file.directory_listings = Some(false);
    }
    if args.meta_files {
        file.meta_files = Some(true);
    }
    if args.request_timeout.is_some() {
        file.request_timeout = args.request_timeout;
    }
    file.guard = args
        .admission
        .guard_config(std::mem::take(&mut file.guard))?;
    let admission = &args.admission;
    if admission.max_connections.is_some() || admission.max_connections_per_client.is_some() {
        let (max_connections, max_connections_per_client) = admission.caps(&file.guard, (1024, 16));
        file.guard.connections = Some(ConnectionsConfig {
            max_connections,
            max_connections_per_client,
        });
    }
    for prefix in &args.require_cert {
        file.guard.cert_rules.push(CertRuleConfig {
            prefix: prefix.clone(),
            mode: Some("any".into()),
            fingerprints: Vec::new(),
            require_cert: false,
            allowed_fingerprints: None,
        });
    }
    for entry in &args.allow_cert {
        let (prefix, fingerprint) = entry
            .split_once('=')
            .with_context(|| format!("--allow-cert {entry:?}: expected PREFIX=FINGERPRINT"))?;
        match file
            .guard
            .cert_rules
            .iter_mut()
            .find(|rule| rule.prefix == prefix && rule.mode.as_deref() == Some("listed"))
        {
            Some(rule) => rule.fingerprints.push(fingerprint.to_owned()),
            None => file.guard.cert_rules.push(CertRuleConfig {
                prefix: prefix.to_owned(),
                mode: Some("listed".into()),
                fingerprints: vec![fingerprint.to_owned()],
                require_cert: false,
                allowed_fingerprints: None,
            }),
        }
    }
    Ok(file)
}

/// The TOFU store at `db` (or the default one) with `rotation`.
fn tofu_store(db: Option<&PathBuf>, rotation: Rotation) -> anyhow::Result<TofuStore> {
    let db = match db {
        Some(path) => path.clone(),
        None => crate::paths::default_tofu_db()?,
    };
    let mut store = TofuStore::open(&db)?;
    store.set_rotation_policy(match rotation {
        Rotation::Never => RotationPolicy::Never,
        Rotation::AfterExpiry => RotationPolicy::AfterExpiry,
    });
    Ok(store)
}

fn put(args: &PutArgs) -> anyhow::Result<ExitCode> {
    let body =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let mime =
        args.mime
            .clone()
            .unwrap_or_else(|| match args.file.extension().and_then(|e| e.to_str()) {
                Some("gmi" | "gemini") => "text/gemini".to_owned(),
                _ => mime_guess::from_path(&args.file)
                    .first_or_octet_stream()
                    .to_string(),
            });
    let token = args
        .token_file
        .as_deref()
        .map(|path| crate::secrets::read_secret_file(path, "upload token"))
        .transpose()?;
    let identity = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => Some(Identity::load(cert, key)?),
        _ => None,
    };
    let client = Client::new(
        Arc::new(tofu_store(args.db.as_ref(), Rotation::Never)?),
        ClientOptions {
            identity,
            timeout: args.timeout,
            ..ClientOptions::default()
        },
    );
    let response = crate::runtime()?.block_on(client.upload(
        &args.url,
        &body,
        &mime,
        token.as_deref().map(String::as_str),
    ))?;
    let mut out = std::io::stdout().lock();
    match response.header.class() {
        Some(StatusClass::Redirect) => {
            writeln!(out, "{}", response.header.meta)?;
            return Ok(ExitCode::SUCCESS);
        }
        // A handler (CGI, SCGI) may answer with a page instead.
        Some(StatusClass::Success) => {
            out.write_all(&response.body)?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let _ = writeln!(
        std::io::stderr(),
        "tessera gemini: {} from {}",
        response.header,
        args.url
    );
    Ok(ExitCode::from(response.header.status))
}

/// Fetches one URL (following redirects) and prints or saves the body.
fn get(args: &GetArgs) -> anyhow::Result<ExitCode> {
    let identity = match (&args.identity, &args.cert, &args.key) {
        (_, Some(cert), Some(key)) => Some(Identity::load(cert, key)?),
        (Some(pair), _, _) => {
            let (cert, key) = pair.split_once(',').ok_or_else(|| {
                crate::args::usage_error(format!("--identity {pair:?}: expected CERT.pem,KEY.pem"))
            })?;
            Some(Identity::load(cert.as_ref(), key.as_ref())?)
        }
        _ => None,
    };
    let client = Client::new(
        Arc::new(tofu_store(args.db.as_ref(), args.tofu_rotation)?),
        ClientOptions {
            identity,
            timeout: args.timeout,
            max_body: args.max_size,
            max_redirects: args.max_redirects,
        },
    );
    let response = crate::runtime()?.block_on(client.get(&args.url))?;
    for hop in &response.redirects {
        tracing::info!(to = %hop, "redirected");
    }
    if args.header {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", response.header)?;
        out.flush()?;
    }
    if response.header.class() != Some(StatusClass::Success) {
        let what = match response.header.class() {
            Some(StatusClass::Input) => "the server asks for input",
            Some(StatusClass::TemporaryFailure) => "temporary failure",
            Some(StatusClass::PermanentFailure) => "permanent failure",
            Some(StatusClass::CertificateRequired) => "client certificate problem",
            _ => "unexpected status",
        };
        let _ = writeln!(
            std::io::stderr(),
            "tessera gemini: {} ({what}) from {}",
            response.header,
            response.url
        );
        return Ok(ExitCode::from(response.header.status));
    }
    tracing::info!(mime = %response.header.meta, bytes = response.body.len(), "response");
    match &args.output {
        Some(path) => std::fs::write(path, &response.body)
            .with_context(|| format!("writing {}", path.display()))?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&response.body)?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
