//! `tessera wire`: an echo server and a request command for quick checks of
//! tessera-wire deployments and scripts, and the round-trip benchmark.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use tessera_tls::{
    client_config, layout, server_config, ClientAuth, DevPki, Identity, PkiOptions, ServerAuth,
};
use tessera_wire::netaio::{NetaioClient, NetaioHmac, NetaioOptions, NetaioServer};
use tessera_wire::{
    AuthStack, CapabilityAuth, Client, ClientOptions, FrameAuth, HmacAuth, MessageType, Request,
    Response, Role, Router, Server, ServerOptions, Transport,
};
use tokio_rustls::rustls::ClientConfig;
use zeroize::Zeroizing;

use crate::args::PeerAddr;
use crate::commands::listener_reload::{AuthLayers, CapabilityLayer, HmacLayer, ListenerReload};

#[derive(Debug, Subcommand)]
pub(crate) enum WireCommand {
    /// Serve the echo contract scripts rely on.
    ///
    /// REQUEST_URI on `echo` answers RESPOND_URI with the same content; any
    /// other route answers NOT_FOUND with the request id; SUBSCRIBE_URI
    /// answers CONFIRM_SUBSCRIBE; PUBLISH_URI answers OK and sends NOTIFY_URI
    /// to every subscriber of the URI. With --hmac-secret every frame must
    /// carry a valid MAC (else AUTH_ERROR) and every reply carries one.
    /// Mutual TLS with the development PKI in --pki (generated on first use)
    /// unless --plain, which is allowed on loopback only. --netaio-compat
    /// speaks netaio 0.0.9's frames and HMAC instead (legacy and weaker: plain
    /// TCP, no request ids, a MAC that covers neither type nor direction).
    /// Runs until SIGINT/SIGTERM; SIGHUP (or --watch) reloads the PKI, CRL,
    /// guard, --hmac-secret-file and --capability-issuer-file (with
    /// --netaio-compat, the guard only).
    EchoServer(Box<EchoArgs>),
    /// Send one request and print the reply's type and body.
    ///
    /// Exit 0 when the reply is RESPOND_URI, OK, CONFIRM_SUBSCRIBE or
    /// CONFIRM_UNSUBSCRIBE; 1 for any other reply (NOT_FOUND, AUTH_ERROR, …)
    /// or error.
    Request(RequestArgs),
    /// Subscribe to a URI and print each notification as it arrives, one
    /// line each: `NOTIFY_URI URI BODY` (control characters escaped).
    ///
    /// Exit 0 after --count notifications or on SIGINT/SIGTERM; 1 when the
    /// subscription is refused or the server closes the connection.
    Subscribe(SubscribeArgs),
    /// Round trips per second of 64-byte requests, 1 and 32 clients, with and
    /// without HMAC, next to a raw tokio-rustls echo measured in the same run.
    Bench(crate::benches::wire::BenchArgs),
}

/// How both ends secure the connection.
#[derive(Debug, Args)]
pub(crate) struct Security {
    #[command(flatten)]
    pki: PkiArgs,
    /// Plain TCP instead of mutual TLS (loopback addresses only).
    #[arg(long)]
    plain: bool,
    #[command(flatten)]
    hmac: HmacArgs,
}

/// Where the development PKI for mutual TLS lives.
#[derive(Clone, Debug, Args)]
pub(crate) struct PkiArgs {
    /// Development PKI directory (`tessera certs dev` layout); a server
    /// generates one there on first use, clients read it
    /// [default: $XDG_DATA_HOME/tessera/wire-pki].
    #[arg(long, value_name = "DIR")]
    pki: Option<PathBuf>,
}

/// Revoked client certificates, for a server of mutual TLS.
#[derive(Clone, Debug, Args)]
pub(crate) struct CrlArgs {
    /// Refuse client certificates listed in this CRL (PEM or DER; `tessera
    /// certs revoke` writes one), read at start and on SIGHUP (open
    /// connections of a certificate it now lists are closed).
    #[arg(long, value_name = "FILE")]
    crl: Option<PathBuf>,
}

impl CrlArgs {
    /// The certificates the CRL lists (none without --crl).
    pub(crate) fn revoked(&self) -> anyhow::Result<tessera_tls::RevocationList> {
        Ok(match &self.crl {
            Some(path) => tessera_tls::RevocationList::new(path, &tessera_tls::load_crls(path)?)?,
            None => tessera_tls::RevocationList::default(),
        })
    }
}

/// HMAC frame authentication.
#[derive(Clone, Debug, Args)]
pub(crate) struct HmacArgs {
    /// Shared secret for HMAC frame authentication. Visible in `ps`: prefer
    /// --hmac-secret-file or the environment variable.
    #[arg(
        long,
        env = "TESSERA_WIRE_HMAC_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    hmac_secret: Option<String>,
    /// The HMAC secret from a file (its first line), so it stays out of `ps`.
    #[arg(
        long,
        env = "TESSERA_WIRE_HMAC_SECRET_FILE",
        value_name = "FILE",
        conflicts_with = "hmac_secret"
    )]
    hmac_secret_file: Option<PathBuf>,
    /// Key id sent with HMAC frames.
    #[arg(long, default_value = "default", value_name = "ID")]
    key_id: String,
    /// Accepted clock difference for HMAC frames, in seconds.
    #[arg(long, default_value_t = 30)]
    pub(crate) hmac_window: u64,
}

#[derive(Debug, Args)]
pub(crate) struct EchoArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:7700")]
    listen: SocketAddr,
    #[command(flatten)]
    security: Security,
    #[command(flatten)]
    crl: CrlArgs,
    #[command(flatten)]
    check: crate::args::CheckConfig,
    /// Largest frame accepted, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    max_frame: usize,
    /// Speak netaio 0.0.9's wire format (plain TCP; with --hmac-secret, its HMAC plugin).
    #[arg(long)]
    netaio_compat: bool,
    /// With --netaio-compat: accept non-loopback clients over plain TCP.
    #[arg(long, requires = "netaio_compat")]
    allow_remote_plain: bool,
    /// Admission before any frame (the guard's certificate rules from
    /// --guard-config apply to each frame's "/" + URI).
    #[command(flatten)]
    admission: tessera_serve::AdmissionArgs,
    /// Require a capability token (tessera trust mint) from this issuer,
    /// public key in 64 hex digits, with proof of possession on every frame
    /// (AUTH_ERROR otherwise). With --hmac-secret too, a frame needs both. With
    /// --store, tokens revoked in the fleet (tessera trust revoke) are refused
    /// and connections that used them are closed. (With --store, every
    /// signed frame, HMAC or token, is also accepted once across the fleet.)
    #[arg(long, value_name = "HEX", conflicts_with = "netaio_compat")]
    capability_issuer: Option<String>,
    /// --capability-issuer from a file (64 hex digits, as `tessera trust
    /// pubkey` prints them), read again on a reload: tokens of a new issuer
    /// are accepted on connections opened from then on.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["netaio_compat", "capability_issuer"]
    )]
    capability_issuer_file: Option<PathBuf>,
    /// Fleet mode: the per-client rate limit, signed-frame replay, token and
    /// certificate revocations in a store other servers share.
    #[command(flatten)]
    fleet: tessera_fleet::FleetArgs,
    #[command(flatten)]
    metrics: tessera_serve::MetricsArgs,
    #[command(flatten)]
    reload: tessera_serve::ReloadArgs,
}

/// How a client reaches a server: `wire request` and `wire subscribe`.
#[derive(Debug, Args)]
pub(crate) struct ConnectArgs {
    /// The server, as HOST:PORT (a name's addresses are tried in order).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:7700", value_parser = PeerAddr::parse)]
    connect: PeerAddr,
    /// TLS server name to verify.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// Seconds to wait for the connection and each reply.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = crate::args::seconds)]
    timeout: Duration,
    #[command(flatten)]
    security: Security,
    /// File holding a capability token (tessera trust mint) to present,
    /// with --worker-key, the key it was minted for.
    #[arg(long, value_name = "FILE", requires = "worker_key")]
    token: Option<PathBuf>,
    /// The token holder's key file (tessera trust keygen), which proves
    /// possession on every frame.
    #[arg(long, value_name = "FILE", requires = "token")]
    worker_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct RequestArgs {
    #[command(flatten)]
    peer: ConnectArgs,
    /// Message type: a name (REQUEST_URI, PUBLISH_URI, …) or a number.
    #[arg(long = "type", default_value = "REQUEST_URI", value_parser = parse_type)]
    kind: MessageType,
    /// The URI.
    #[arg(long, default_value = "echo")]
    uri: String,
    /// The body.
    #[arg(long, default_value = "", conflicts_with = "body_file")]
    body: String,
    /// Read the body from FILE (`-`: standard input), up to the frame limit (1 MiB).
    #[arg(long, value_name = "FILE")]
    body_file: Option<PathBuf>,
    /// Speak netaio 0.0.9's wire format to a netaio (or compat) server.
    #[arg(long)]
    netaio_compat: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SubscribeArgs {
    #[command(flatten)]
    peer: ConnectArgs,
    /// The URI to follow.
    uri: String,
    /// Exit 0 after this many notifications (default: run until SIGINT/SIGTERM
    /// or the server closes the connection, which exits 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
}

fn parse_type(text: &str) -> Result<MessageType, String> {
    if let Ok(number) = text.parse::<u8>() {
        return Ok(MessageType(number));
    }
    (0..=u8::MAX)
        .map(MessageType)
        .find(|kind| {
            kind.name()
                .is_some_and(|name| name.eq_ignore_ascii_case(text))
        })
        .ok_or_else(|| {
            format!("unknown message type {text:?}: use a name like REQUEST_URI or a number")
        })
}

pub(crate) fn run(command: WireCommand) -> anyhow::Result<ExitCode> {
    match command {
        WireCommand::EchoServer(args) => echo_server(&args),
        WireCommand::Request(args) => request(&args),
        WireCommand::Subscribe(args) => subscribe(&args),
        WireCommand::Bench(args) => crate::benches::wire::run(&args),
    }
}

/// The echo contract's router.
pub(crate) fn echo_router() -> Router<()> {
    Router::new(()).route(
        MessageType::REQUEST_URI,
        "echo",
        |request: Request, _: Arc<()>| async move {
            Response::new(MessageType::RESPOND_URI, request.frame.body)
        },
    )
}

impl HmacArgs {
    /// The secret, from --hmac-secret-file or --hmac-secret, if either is given.
    pub(crate) fn secret(&self) -> anyhow::Result<Option<Zeroizing<String>>> {
        match (&self.hmac_secret_file, &self.hmac_secret) {
            (Some(path), _) => Ok(Some(crate::secrets::read_secret_file(path, "HMAC secret")?)),
            (None, Some(secret)) => Ok(Some(Zeroizing::new(secret.clone()))),
            (None, None) => Ok(None),
        }
    }

    pub(crate) fn auth(&self, role: Role) -> anyhow::Result<Option<Arc<dyn FrameAuth>>> {
        let Some(secret) = self.secret()? else {
            return Ok(None);
        };
        Ok(Some(Arc::new(self.layer(&secret, role)?)))
    }

    /// The HMAC layer for `secret`, with the flags' key id and window.
    pub(crate) fn layer(&self, secret: &str, role: Role) -> anyhow::Result<HmacAuth> {
        Ok(HmacAuth::new(&self.key_id, secret.as_bytes(), role)?
            .window(Duration::from_secs(self.hmac_window)))
    }

    /// The key id frames are signed under.
    pub(crate) fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The file a reload reads the secret from again, if one was given.
    pub(crate) fn secret_file(&self) -> Option<&Path> {
        self.hmac_secret_file.as_deref()
    }
}

impl PkiArgs {
    fn dir(&self) -> anyhow::Result<PathBuf> {
        match &self.pki {
            Some(dir) => Ok(dir.clone()),
            None => Ok(crate::paths::data_dir()?.join("wire-pki")),
        }
    }

    /// The files a server reads: its certificate, key and CA, the CRL and
    /// the guard config (for --watch).
    pub(crate) fn server_files(
        &self,
        crl: &CrlArgs,
        admission: &tessera_serve::AdmissionArgs,
    ) -> anyhow::Result<Vec<PathBuf>> {
        let dir = self.dir()?;
        let mut files: Vec<PathBuf> = [layout::SERVER_CERT, layout::SERVER_KEY, layout::CA_CERT]
            .iter()
            .map(|name| dir.join(name))
            .collect();
        files.extend(crl.crl.clone());
        files.extend(admission.guard_config.clone());
        Ok(files)
    }

    /// Mutual TLS for a server, generating the PKI on first use; client
    /// certificates listed in `crl` are refused.
    pub(crate) fn server_transport(&self, crl: &CrlArgs) -> anyhow::Result<Transport> {
        let dir = self.dir()?;
        ensure_pki(&dir)?;
        let identity = Identity::load(
            &dir.join(layout::SERVER_CERT),
            &dir.join(layout::SERVER_KEY),
        )?;
        let roots = tessera_tls::load_roots(&dir.join(layout::CA_CERT))?;
        let client_auth = match &crl.crl {
            Some(path) => ClientAuth::RequiredWithCrls(roots, tessera_tls::load_crls(path)?),
            None => ClientAuth::Required(roots),
        };
        Ok(Transport::Tls(server_config(&identity, client_auth)?))
    }

    /// The client side of mutual TLS, with the PKI's client certificate.
    pub(crate) fn client_tls(&self) -> anyhow::Result<Arc<ClientConfig>> {
        let dir = self.dir()?;
        let roots = tessera_tls::load_roots(&dir.join(layout::CA_CERT)).with_context(|| {
            format!(
                "no development PKI in {}; start the server first or pass --pki",
                dir.display()
            )
        })?;
        let identity = Identity::load(
            &dir.join(layout::CLIENT_CERT),
            &dir.join(layout::CLIENT_KEY),
        )?;
        Ok(client_config(ServerAuth::Roots(roots), Some(&identity))?)
    }
}

/// The development PKI in `dir`, generated there first if it has none.
fn ensure_pki(dir: &Path) -> anyhow::Result<()> {
    if !dir.join(layout::CA_CERT).exists() {
        DevPki::generate(&PkiOptions::default())?.write(dir, false)?;
        tracing::info!(dir = %dir.display(), "generated a development PKI");
    }
    Ok(())
}

fn echo_server(args: &EchoArgs) -> anyhow::Result<ExitCode> {
    if args.netaio_compat {
        return netaio_echo_server(args);
    }
    let defaults = ServerOptions::default();
    let admission = crate::admission::Admission::from_args(
        &args.admission,
        &args.fleet,
        (
            defaults.max_connections,
            defaults.max_connections_per_client,
        ),
    )?;
    let security = &args.security;
    let transport = if security.plain {
        Transport::PlainLoopback
    } else {
        security.pki.server_transport(&args.crl)?
    };
    let hmac = HmacLayer::new(&security.hmac)?;
    let mut options = ServerOptions {
        limits: tessera_wire::Limits {
            max_frame: args.max_frame,
            ..tessera_wire::Limits::default()
        },
        guard: admission.guard,
        proxy_from: admission.proxy_from,
        max_connections: admission.max_connections,
        max_connections_per_client: admission.max_connections_per_client,
        log_client_ip: admission.log_client_ip,
        metrics: args.metrics.metrics(),
        ..ServerOptions::default()
    };
    let issuer = match (&args.capability_issuer, &args.capability_issuer_file) {
        (Some(hex), _) => Some(
            tessera_trust::PublicKey::from_hex(hex)
                .map_err(|e| anyhow::anyhow!("--capability-issuer: {}", e.detail()))?,
        ),
        (None, Some(file)) => Some(read_issuer(file)?),
        (None, None) => None,
    };
    let store = args.fleet.store.open()?;
    crate::runtime()?.block_on(async {
        let mut capability = None;
        if let Some(store) = &store {
            // Twice the longest acceptance window of the auth layers (the HMAC
            // window; a capability verifier's default 300 s skew).
            let window = if issuer.is_some() {
                security.hmac.hmac_window.max(300)
            } else {
                security.hmac.hmac_window
            };
            let replay = tessera_fleet::FleetReplay::new(store.clone());
            options.fleet_replay = Some(
                tessera_wire::FleetFrameReplay::new(replay, Duration::from_secs(2 * window))
                    .when_unknown(args.fleet.fallback),
            );
        }
        // One feed for both kinds: tokens' revocation ids and certificates'.
        let revocations = store.map(|store| {
            let revocations = tessera_fleet::Revocations::follow(store.clone());
            options.fleet = args.fleet.admission_with(revocations.clone(), &store);
            revocations
        });
        if let Some(issuer) = issuer {
            let mut verifier = tessera_trust::Verifier::new(&issuer)?;
            if let Some(revocations) = revocations {
                verifier.revocation_list(revocations.clone(), args.fleet.fallback);
                options.revocations = Some(revocations);
            }
            capability = Some(CapabilityLayer::new(
                issuer,
                CapabilityAuth::server(verifier),
                args.capability_issuer_file.clone(),
            ));
        }
        let layers = AuthLayers { hmac, capability };
        options.auth = layers.current();
        if let Some(code) = args
            .check
            .passed(&format!("wire echo-server on {}", args.listen))?
        {
            return Ok(code);
        }
        let listener = crate::listen::bind(args.listen).await?;
        crate::listen::metrics(&args.metrics, options.metrics.as_ref()).await?;
        let metrics = options.metrics.clone();
        let server = Server::new(listener, transport, echo_router(), options)?;
        ListenerReload {
            pki: (!args.security.plain).then(|| args.security.pki.clone()),
            crl: args.crl.clone(),
            admission: args.admission.clone(),
            fleet: args.fleet.clone(),
            caps: (
                defaults.max_connections,
                defaults.max_connections_per_client,
            ),
            connections: "open connection(s)",
            auth: layers,
        }
        .install(&args.reload, server.reloader(), metrics.as_ref())?;
        let shutdown = crate::listen::ready(server.local_addr()?)?;
        server.run(shutdown).await?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

fn netaio_echo_server(args: &EchoArgs) -> anyhow::Result<ExitCode> {
    let defaults = NetaioOptions::default();
    let admission = crate::admission::Admission::from_args(
        &args.admission,
        &args.fleet,
        (
            defaults.max_connections,
            defaults.max_connections_per_client,
        ),
    )?;
    let options = NetaioOptions {
        hmac: args
            .security
            .hmac
            .secret()?
            .map(|secret| Arc::new(NetaioHmac::new(secret.as_bytes()))),
        max_body: args.max_frame.min(usize::from(u16::MAX)),
        guard: admission.guard,
        proxy_from: admission.proxy_from,
        max_connections: admission.max_connections,
        max_connections_per_client: admission.max_connections_per_client,
        log_client_ip: admission.log_client_ip,
        allow_remote: args.allow_remote_plain,
        metrics: args.metrics.metrics(),
        ..NetaioOptions::default()
    };
    if let Some(code) = args
        .check
        .passed(&format!("netaio-compat echo-server on {}", args.listen))?
    {
        return Ok(code);
    }
    crate::runtime()?.block_on(async {
        let listener = crate::listen::bind(args.listen).await?;
        crate::listen::metrics(&args.metrics, options.metrics.as_ref()).await?;
        let metrics = options.metrics.clone();
        let server = NetaioServer::new(listener, echo_router(), options)?;
        tracing::warn!("netaio-compat: plain TCP and netaio's weaker HMAC, for migrations only");
        // Only the guard reloads here: no TLS, and the secret stays as at start.
        let reloader = server.reloader();
        let (admission_args, fleet) = (args.admission.clone(), args.fleet.clone());
        let caps = (
            defaults.max_connections,
            defaults.max_connections_per_client,
        );
        tessera_serve::on_reload(
            &args.reload.watched(args.admission.guard_config.clone()),
            metrics.as_ref(),
            move || {
                let admission =
                    crate::admission::Admission::from_args(&admission_args, &fleet, caps)
                        .map_err(|e| format!("{e:#}"))?;
                let closed = reloader.reload(admission.guard);
                Ok::<_, String>(format!("the guard; {closed} open connection(s) closed"))
            },
        )?;
        let shutdown = crate::listen::ready(server.local_addr()?)?;
        server.run(shutdown).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The replies that mean success for `tessera wire request`.
const SUCCESS: [MessageType; 4] = [
    MessageType::RESPOND_URI,
    MessageType::OK,
    MessageType::CONFIRM_SUBSCRIBE,
    MessageType::CONFIRM_UNSUBSCRIBE,
];

fn netaio_request(args: &RequestArgs, body: &[u8]) -> anyhow::Result<ExitCode> {
    let timeout = args.peer.timeout;
    let hmac = args
        .peer
        .security
        .hmac
        .secret()?
        .map(|secret| Arc::new(NetaioHmac::new(secret.as_bytes())));
    let reply = crate::runtime()?.block_on(async {
        let mut client = args
            .peer
            .connect
            .connect_first(|addr| {
                let hmac = hmac.clone();
                async move { Ok(NetaioClient::connect(addr, hmac, timeout).await?) }
            })
            .await?;
        anyhow::Ok(client.request(args.kind, args.uri.as_bytes(), body).await?)
    })?;
    let kind = MessageType(reply.kind);
    writeln!(
        std::io::stdout().lock(),
        "{kind} {}",
        String::from_utf8_lossy(&reply.content)
    )?;
    Ok(if SUCCESS.contains(&kind) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn request(args: &RequestArgs) -> anyhow::Result<ExitCode> {
    let body = match &args.body_file {
        Some(path) => read_body(path)?,
        None => args.body.clone().into_bytes(),
    };
    if args.netaio_compat {
        return netaio_request(args, &body);
    }
    let reply = crate::runtime()?.block_on(async {
        let client = args.peer.client().await?;
        anyhow::Ok(client.request(args.kind, &args.uri, body).await?)
    })?;
    writeln!(
        std::io::stdout().lock(),
        "{} {}",
        reply.kind,
        String::from_utf8_lossy(&reply.body)
    )?;
    Ok(if SUCCESS.contains(&reply.kind) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A request body from a file or `-` (standard input), refused past the
/// frame limit rather than read whole.
fn read_body(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let limit = tessera_wire::Limits::default().max_frame;
    let mut body = Vec::new();
    let source: Box<dyn Read> = if path == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?)
    };
    source
        .take(limit as u64 + 1)
        .read_to_end(&mut body)
        .with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(
        body.len() <= limit,
        "--body-file {}: more than the frame limit of {limit} bytes",
        path.display()
    );
    Ok(body)
}

fn subscribe(args: &SubscribeArgs) -> anyhow::Result<ExitCode> {
    let runtime = crate::runtime()?;
    runtime.block_on(async {
        let client = args.peer.client().await?;
        let shutdown = tessera_serve::shutdown_signal();
        tokio::pin!(shutdown);
        let mut subscription = client.subscribe(&args.uri).await?;
        // On stderr, so that stdout holds notifications alone; scripts (and
        // tests) wait for it before publishing.
        let _ = writeln!(
            std::io::stderr(),
            "subscribed to {}",
            args.uri.escape_debug()
        );
        let mut seen = 0u64;
        loop {
            let frame = tokio::select! {
                frame = subscription.next() => frame,
                () = &mut shutdown => return Ok(ExitCode::SUCCESS),
            };
            let Some(frame) = frame else {
                let _ = writeln!(
                    std::io::stderr(),
                    "tessera: the server closed the connection"
                );
                return Ok(ExitCode::FAILURE);
            };
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{} {} {}",
                frame.kind,
                frame.uri.escape_debug(),
                String::from_utf8_lossy(&frame.body).escape_debug()
            )?;
            out.flush()?;
            seen += 1;
            if args.count == Some(seen) {
                return Ok(ExitCode::SUCCESS);
            }
        }
    })
}

impl ConnectArgs {
    /// Connects as the flags say: mutual TLS (or plain on loopback), with
    /// HMAC and a capability token when given.
    async fn client(&self) -> anyhow::Result<Client> {
        let security = &self.security;
        let mut auth = security.hmac.auth(Role::Client)?;
        if let (Some(token), Some(key)) = (&self.token, &self.worker_key) {
            let read = |path: &PathBuf| {
                std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
            };
            let holder = tessera_trust::SecretKey::from_hex(read(key)?.trim())
                .map_err(|e| anyhow::anyhow!("--worker-key {}: {}", key.display(), e.detail()))?;
            let capability: Arc<dyn FrameAuth> =
                Arc::new(CapabilityAuth::client(holder, read(token)?.trim()));
            auth = stacked(auth, Some(capability));
        }
        let options = ClientOptions {
            connect_timeout: self.timeout,
            request_timeout: self.timeout,
            auth,
            ..ClientOptions::default()
        };
        if security.plain {
            return self
                .connect
                .connect_first(|addr| {
                    let options = options.clone();
                    async move { Ok(Client::connect_plain(addr, options).await?) }
                })
                .await;
        }
        let config = security.pki.client_tls()?;
        let name = tessera_tls::server_name(&self.server_name)?;
        self.connect
            .connect_first(|addr| {
                let (name, config, options) = (name.clone(), config.clone(), options.clone());
                async move { Ok(Client::connect_tls(addr, name, config, options).await?) }
            })
            .await
    }
}

/// `first` then `second`, each when given: a frame must pass both.
pub(crate) fn stacked(
    first: Option<Arc<dyn FrameAuth>>,
    second: Option<Arc<dyn FrameAuth>>,
) -> Option<Arc<dyn FrameAuth>> {
    match (first, second) {
        (Some(first), Some(second)) => Some(Arc::new(AuthStack::new(vec![first, second]))),
        (first, second) => first.or(second),
    }
}

/// The issuer public key in `file` (64 hex digits, surrounding space ignored).
pub(crate) fn read_issuer(file: &Path) -> anyhow::Result<tessera_trust::PublicKey> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading the capability issuer {}", file.display()))?;
    tessera_trust::PublicKey::from_hex(text.trim())
        .map_err(|e| anyhow::anyhow!("the capability issuer {}: {}", file.display(), e.detail()))
}
