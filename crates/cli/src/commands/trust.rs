//! `tessera trust`: the CLI contract of `../shared/spec/trust.md` §12. Success
//! exits 0; a failed verification exits 1 with `error: <kind>: <detail>` on
//! stderr; a usage problem exits 2 with `error: usage: <detail>`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tessera_trust::signer::SignerClient;
use tessera_trust::{
    mint, parse_timestamp, prove, MintRequest, Proof, PublicKey, Request, SecretKey, Verifier,
};
use zeroize::Zeroizing;

#[derive(Debug, Subcommand)]
pub(crate) enum TrustCommand {
    /// Write a new 32-byte seed as 64 hex digits (mode 0600, never overwriting); print its public key.
    Keygen {
        /// The key file to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the public key of a key file.
    Pubkey {
        /// The key file (64 hex digits).
        #[arg(long)]
        key: PathBuf,
    },
    /// Mint a token (trust-core's encoding) and print it.
    Mint {
        #[command(flatten)]
        issuer: IssuerArgs,
        /// Holder public key, 64 hex digits.
        #[arg(long)]
        worker_public: String,
        /// Holder id.
        #[arg(long)]
        holder_id: String,
        /// NAME=VALUE fact (repeatable; values of one NAME are sorted).
        #[arg(long = "fact", value_name = "NAME=VALUE")]
        facts: Vec<String>,
        /// Application revocation id (default: 128 random bits, hex).
        #[arg(long)]
        revocation_id: Option<String>,
        /// Expiry, UNIX seconds.
        #[arg(long)]
        expires_at: String,
    },
    /// Sign a request (canonical string v1); print the four headers as one JSON object.
    Prove {
        /// Holder key file.
        #[arg(long)]
        worker_key: PathBuf,
        /// The token. Visible in `ps`: prefer --token-file.
        #[arg(long, required_unless_present = "token_file")]
        token: Option<String>,
        /// The token from a file (its first line), so it stays out of `ps`.
        #[arg(long, value_name = "FILE", conflicts_with = "token")]
        token_file: Option<PathBuf>,
        /// Request method, verbatim.
        #[arg(long)]
        method: String,
        /// Request path, verbatim.
        #[arg(long)]
        path: String,
        /// Request body (default: empty).
        #[arg(long)]
        body_file: Option<PathBuf>,
        /// Timestamp text, signed verbatim.
        #[arg(long)]
        timestamp: String,
        /// Nonce text.
        #[arg(long)]
        nonce: String,
    },
    /// Verify a request; print {"holder_id", "worker_key", "revocation_id"}.
    Verify {
        /// Issuer public key, 64 hex digits.
        #[arg(long)]
        issuer_public: String,
        /// JSON object of header names to values (header form).
        #[arg(long, conflicts_with = "query", required_unless_present = "query")]
        headers: Option<PathBuf>,
        /// JSON object {token, sig, ts, nonce} (query form).
        #[arg(long)]
        query: Option<PathBuf>,
        /// Request method.
        #[arg(long)]
        method: String,
        /// Request path.
        #[arg(long)]
        path: String,
        /// Request body (default: empty).
        #[arg(long)]
        body_file: Option<PathBuf>,
        /// Verifier clock, UNIX seconds.
        #[arg(long)]
        now: String,
        /// Allowed clock difference, seconds.
        #[arg(long, default_value = "300")]
        max_skew: String,
        /// Revoked application id (repeatable).
        #[arg(long)]
        revoked: Vec<String>,
        /// Datalog allow policy, run after authentication.
        #[arg(long)]
        allow: Option<String>,
        /// NAME=VALUE request fact for the policy (repeatable, distinct names).
        #[arg(long = "request-fact", value_name = "NAME=VALUE", requires = "allow")]
        request_facts: Vec<String>,
        /// With a store, ids revoked there are refused, and a nonce verified
        /// once anywhere in the fleet is refused as a replay.
        #[command(flatten)]
        store: tessera_fleet::StoreArgs,
        /// Replay and revocation checks while the store does not answer in
        /// time: fail-closed (refuse) or fail-open (accept as if unseen).
        #[arg(long, value_name = "POLICY", default_value = "fail-closed", value_parser = tessera_trust::WhenUnknown::parse, requires = "url")]
        store_fallback: tessera_trust::WhenUnknown,
        /// A refusal is a JSON object on stdout too, {"valid": false,
        /// "error", "detail"}, next to the accepted request's object.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token's revocation id, or a client certificate, across a
    /// fleet: added to the store's set (servers that start later read it)
    /// and announced to running ones, which refuse the token or certificate
    /// from then on and close the connections that use it. Prints how many
    /// servers heard it.
    Revoke {
        /// The revocation id (what `mint --revocation-id` set), or a client
        /// certificate's fingerprint as `tessera fingerprint` prints it
        /// (`sha256:` and 64 hex digits).
        #[arg(required_unless_present = "certificate")]
        id: Option<String>,
        /// Revoke the client certificate in this PEM file (its first) instead.
        #[arg(long, value_name = "FILE", conflicts_with = "id")]
        certificate: Option<PathBuf>,
        #[command(flatten)]
        store: tessera_fleet::StoreArgs,
    },
    /// Sign a job (JSON object file) for a worker; print the signature hex.
    SignJob {
        #[command(flatten)]
        issuer: IssuerArgs,
        /// The job file.
        #[arg(long)]
        job: PathBuf,
        /// The worker id.
        #[arg(long)]
        worker_id: String,
        /// Use the domain-separated v2 message (`tessera-job/2` LF canonical JSON)
        /// instead of trust-core's bare JSON; signer and verifier must agree.
        #[arg(long)]
        v2: bool,
    },
    /// Verify a job signature; exit 0 if valid, 1 if not.
    VerifyJob {
        /// Issuer public key.
        #[arg(long)]
        issuer_public: String,
        /// The job file.
        #[arg(long)]
        job: PathBuf,
        /// The worker id.
        #[arg(long)]
        worker_id: String,
        /// The signature hex.
        #[arg(long)]
        signature: String,
        /// Use the domain-separated v2 message (`tessera-job/2` LF canonical JSON)
        /// instead of trust-core's bare JSON; signer and verifier must agree.
        #[arg(long)]
        v2: bool,
    },
    /// Run the signer sidecar (length-prefixed JSON; ops public_key, mint, sign_job).
    Signer {
        /// Issuer key file.
        #[arg(long)]
        issuer_key: PathBuf,
        /// Separate job-signing key file (default: jobs are signed with the issuer key, as trust-core does).
        #[arg(long)]
        job_key: Option<PathBuf>,
        /// Loopback address to listen on, e.g. 127.0.0.1:7000.
        #[arg(long, required_unless_present = "unix", conflicts_with = "unix")]
        listen: Option<String>,
        /// Unix socket path to listen on (created 0600, removed at exit).
        #[arg(long)]
        unix: Option<PathBuf>,
        /// Connections at once at most; more wait in the kernel's backlog.
        #[arg(long, default_value_t = 256)]
        max_connections: usize,
        #[command(flatten)]
        check: crate::args::CheckConfig,
        /// Connections at once from one client (a local user on --unix, an
        /// address on --listen); more are closed at once.
        #[arg(long, default_value_t = 16)]
        max_connections_per_client: usize,
        /// On SIGHUP (and with --watch when a key file changes) the keys
        /// are read again; connections open then keep the old ones.
        #[command(flatten)]
        reload: tessera_serve::ReloadArgs,
        #[command(flatten)]
        metrics: tessera_serve::MetricsArgs,
        /// With a store, `mint` refuses a revocation id the fleet revoked
        /// (`tessera trust revoke`): verifiers would refuse the token at once.
        #[command(flatten)]
        store: tessera_fleet::StoreArgs,
        /// `mint` while the store's revocations cannot be followed:
        /// fail-closed (refuse, "error": "unavailable") or fail-open (mint).
        #[arg(long, value_name = "POLICY", default_value = "fail-closed", value_parser = tessera_trust::WhenUnknown::parse, requires = "url")]
        store_fallback: tessera_trust::WhenUnknown,
    },
    /// Operations per second on one core: mint, prove, authenticate, policy, verify_job.
    Bench(crate::benches::trust::BenchArgs),
}

/// A failure and how it exits.
/// Where the signing key is: a key file here, or a running signer sidecar
/// that keeps it (`tessera trust signer`).
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct IssuerArgs {
    /// Issuer (or job) key file.
    #[arg(long, value_name = "FILE")]
    issuer_key: Option<PathBuf>,
    /// Ask the signer sidecar instead, so the key never leaves it: its Unix
    /// socket (a path, with a `/`) or its HOST:PORT.
    #[arg(long, value_name = "SOCKET")]
    signer: Option<String>,
}

/// How long the signer may take to answer.
const SIGNER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// One request to the signer sidecar at `socket`; its reply when `ok`.
fn ask_signer(
    socket: &str,
    request: &serde_json::Value,
) -> Result<serde_json::Map<String, serde_json::Value>, Failure> {
    let failed = |detail: String| Failure::Signer(format!("{socket}: {detail}"));
    let runtime = crate::runtime().map_err(|e| failed(e.to_string()))?;
    let reply = runtime.block_on(async {
        let connected = if socket.contains('/') {
            SignerClient::connect_unix(Path::new(socket)).await
        } else {
            SignerClient::connect(socket).await
        };
        let mut client = connected.map_err(|e| failed(e.detail()))?;
        tokio::time::timeout(SIGNER_TIMEOUT, client.call(request))
            .await
            .map_err(|_| failed(format!("no answer within {SIGNER_TIMEOUT:?}")))?
            .map_err(|e| failed(e.detail()))
    })?;
    if reply.get("ok") == Some(&serde_json::Value::Bool(true)) {
        return Ok(reply);
    }
    let field = |name: &str| reply.get(name).and_then(serde_json::Value::as_str);
    Err(failed(format!(
        "{}{}",
        field("error").unwrap_or("refused"),
        field("detail")
            .map(|d| format!(": {d}"))
            .unwrap_or_default()
    )))
}

/// The string `field` of a signer reply.
fn reply_text(
    reply: &serde_json::Map<String, serde_json::Value>,
    field: &str,
) -> Result<String, Failure> {
    reply
        .get(field)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Failure::Signer(format!("the reply has no {field}")))
}

enum Failure {
    Usage(String),
    /// The signer sidecar could not be reached or refused the request.
    Signer(String),
    Verify(tessera_trust::Error),
    /// The fleet's store could not answer a check that fails closed.
    Store(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Usage(detail) | Self::Signer(detail) | Self::Store(detail) => f.write_str(detail),
            Self::Verify(error) => write!(f, "{}: {}", error.kind(), error.detail()),
        }
    }
}

impl From<tessera_trust::Error> for Failure {
    fn from(error: tessera_trust::Error) -> Self {
        Self::Verify(error)
    }
}

pub(crate) fn run(command: TrustCommand) -> anyhow::Result<ExitCode> {
    if let TrustCommand::Bench(args) = &command {
        return crate::benches::trust::run(args);
    }
    let json = matches!(command, TrustCommand::Verify { json: true, .. });
    match execute(command) {
        Ok(code) => Ok(code),
        Err(Failure::Verify(error)) if json => {
            let object = serde_json::json!({
                "valid": false,
                "error": error.kind(),
                "detail": error.detail(),
            });
            let _ = writeln!(std::io::stdout(), "{object}");
            Ok(ExitCode::FAILURE)
        }
        Err(Failure::Usage(detail)) => {
            let _ = writeln!(std::io::stderr(), "error: usage: {detail}");
            Ok(ExitCode::from(2))
        }
        Err(Failure::Signer(detail)) => {
            let _ = writeln!(std::io::stderr(), "error: signer: {detail}");
            Ok(ExitCode::FAILURE)
        }
        Err(Failure::Store(detail)) => {
            let _ = writeln!(std::io::stderr(), "error: store_unavailable: {detail}");
            Ok(ExitCode::FAILURE)
        }
        Err(Failure::Verify(error)) => {
            let _ = writeln!(
                std::io::stderr(),
                "error: {}: {}",
                error.kind(),
                error.detail()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

fn execute(command: TrustCommand) -> Result<ExitCode, Failure> {
    let mut out = std::io::stdout().lock();
    let io = |e: std::io::Error| Failure::Usage(e.to_string());
    match command {
        TrustCommand::Keygen { out: path } => {
            use std::os::unix::fs::OpenOptionsExt;
            let key = SecretKey::generate();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
            writeln!(file, "{}", key.to_hex()).map_err(io)?;
            writeln!(out, "{}", key.public().to_hex()).map_err(io)?;
        }
        TrustCommand::Pubkey { key } => {
            writeln!(out, "{}", read_key(&key)?.public().to_hex()).map_err(io)?;
        }
        TrustCommand::Mint {
            issuer,
            worker_public,
            holder_id,
            facts,
            revocation_id,
            expires_at,
        } => {
            let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
            for fact in &facts {
                let (name, value) = fact
                    .split_once('=')
                    .ok_or_else(|| Failure::Usage(format!("--fact {fact:?} is not NAME=VALUE")))?;
                match grouped.iter_mut().find(|(n, _)| n == name) {
                    Some((_, values)) => values.push(value.to_owned()),
                    None => grouped.push((name.to_owned(), vec![value.to_owned()])),
                }
            }
            let expires_at = number(&expires_at, "--expires-at")?;
            let request = MintRequest {
                worker_public,
                holder_id,
                facts: grouped,
                revocation_id: revocation_id.unwrap_or_else(tessera_trust::random_revocation_id),
                expires_at,
            };
            let token = match (&issuer.issuer_key, &issuer.signer) {
                (Some(key), _) => {
                    mint(&read_key(key)?, &request).map_err(|e| Failure::Usage(e.detail()))?
                }
                (None, Some(socket)) => {
                    let facts: serde_json::Map<String, serde_json::Value> = request
                        .facts
                        .iter()
                        .map(|(name, values)| (name.clone(), serde_json::json!(values)))
                        .collect();
                    let reply = ask_signer(
                        socket,
                        &serde_json::json!({
                            "op": "mint",
                            "worker_public": request.worker_public,
                            "holder_id": request.holder_id,
                            "facts": facts,
                            "revocation_id": request.revocation_id,
                            "expires_at": request.expires_at,
                        }),
                    )?;
                    reply_text(&reply, "token")?
                }
                (None, None) => unreachable!("clap requires --issuer-key or --signer"),
            };
            writeln!(out, "{token}").map_err(io)?;
        }
        TrustCommand::Prove {
            worker_key,
            token,
            token_file,
            method,
            path,
            body_file,
            timestamp,
            nonce,
        } => {
            let holder = read_key(&worker_key)?;
            let body = read_body(body_file.as_deref())?;
            let token = match (token_file, token) {
                (Some(path), _) => crate::secrets::read_secret_file(&path, "token")
                    .map_err(|e| Failure::Usage(format!("{e:#}")))?,
                (None, Some(token)) => Zeroizing::new(token),
                (None, None) => {
                    return Err(Failure::Usage("--token or --token-file is required".into()))
                }
            };
            let proof = prove(
                &holder,
                &token,
                &Request {
                    method: &method,
                    path: &path,
                    body: &body,
                },
                &timestamp,
                &nonce,
            );
            let object: serde_json::Map<String, serde_json::Value> = proof
                .headers()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v)))
                .collect();
            writeln!(out, "{}", serde_json::Value::Object(object)).map_err(io)?;
        }
        TrustCommand::Verify {
            issuer_public,
            headers,
            query,
            method,
            path,
            body_file,
            now,
            max_skew,
            revoked,
            allow,
            request_facts,
            store,
            store_fallback,
            json: _,
        } => {
            let issuer = read_public(&issuer_public)?;
            let now = number(&now, "--now")?;
            let max_skew = number(&max_skew, "--max-skew")?;
            let (file, parse): (_, fn(_) -> _) = match (&headers, &query) {
                (Some(file), _) => (file, Proof::from_headers),
                (None, Some(file)) => (file, Proof::from_query),
                (None, None) => {
                    return Err(Failure::Usage(
                        "one of --headers or --query is required".into(),
                    ))
                }
            };
            let pairs = string_pairs(&json_object(file)?, file)?;
            let proof = parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
            let body = read_body(body_file.as_deref())?;
            let mut verifier = Verifier::new(&issuer)?;
            verifier.max_skew(max_skew).revoked(revoked);
            let request = Request {
                method: &method,
                path: &path,
                body: &body,
            };
            let authenticated = verifier.authenticate(&proof, &request, now)?;
            if let Some(allow) = allow {
                let mut facts: Vec<(String, String)> = Vec::new();
                for fact in &request_facts {
                    let (name, value) = fact.split_once('=').ok_or_else(|| {
                        Failure::Usage(format!("--request-fact {fact:?} is not NAME=VALUE"))
                    })?;
                    if facts.iter().any(|(n, _)| n == name) {
                        return Err(Failure::Verify(tessera_trust::Error::Config(format!(
                            "request fact {name:?} given twice"
                        ))));
                    }
                    facts.push((name.to_owned(), value.to_owned()));
                }
                verifier.check_policy(&authenticated, &facts, &allow, now)?;
            }
            let identity = authenticated.identity();
            if let Some(store) = store.open().map_err(|e| Failure::Usage(e.to_string()))? {
                fleet_checks(&store, store_fallback, identity, &proof.nonce, max_skew)?;
            }
            let result = serde_json::json!({"holder_id": identity.holder_id, "worker_key": identity.worker_key, "revocation_id": identity.revocation_id});
            writeln!(out, "{result}").map_err(io)?;
        }
        TrustCommand::Revoke {
            id,
            certificate,
            store,
        } => {
            let id = revocation_id(id, certificate.as_deref())?;
            let store = crate::commands::fleet::required(&store)
                .map_err(|e| Failure::Usage(e.to_string()))?;
            let budget = crate::commands::fleet::OPERATOR_BUDGET.max(store.budget());
            let revoked = runtime()?
                .block_on(tessera_fleet::Revocations::revoke(&store, &id, budget))
                .map_err(|e| Failure::Store(e.to_string()))?;
            let state = if revoked.new {
                "revoked"
            } else {
                "already revoked"
            };
            writeln!(
                out,
                "{state} {id}; {} running servers told",
                revoked.listeners
            )
            .map_err(io)?;
        }
        TrustCommand::SignJob {
            issuer,
            job,
            worker_id,
            v2,
        } => {
            let text = read_text(&job)?;
            let job = tessera_trust::parse_job(&text).map_err(|e| Failure::Usage(e.detail()))?;
            let signature = match (&issuer.issuer_key, &issuer.signer) {
                (Some(key), _) => {
                    tessera_trust::sign_job_as(job_format(v2), &read_key(key)?, &job, &worker_id)
                        .map_err(|e| Failure::Usage(e.detail()))?
                }
                (None, Some(socket)) => {
                    let reply = ask_signer(
                        socket,
                        &serde_json::json!({
                            "op": "sign_job",
                            "job": job,
                            "worker_id": worker_id,
                            "format": if v2 { 2 } else { 1 },
                        }),
                    )?;
                    reply_text(&reply, "signature")?
                }
                (None, None) => unreachable!("clap requires --issuer-key or --signer"),
            };
            writeln!(out, "{signature}").map_err(io)?;
        }
        TrustCommand::VerifyJob {
            issuer_public,
            job,
            worker_id,
            signature,
            v2,
        } => {
            let issuer = read_public(&issuer_public)?;
            let text = read_text(&job)?;
            let mut job =
                tessera_trust::parse_job(&text).map_err(|e| Failure::Usage(e.detail()))?;
            job.insert("sig".to_owned(), serde_json::Value::String(signature));
            tessera_trust::verify_job_as(job_format(v2), &issuer, &job, &worker_id)?;
        }
        TrustCommand::Signer {
            issuer_key,
            job_key,
            listen,
            unix,
            max_connections,
            max_connections_per_client,
            check,
            reload,
            metrics,
            store,
            store_fallback,
        } => {
            let limits = tessera_trust::signer::SignerLimits {
                max_connections,
                max_connections_per_client,
                ..Default::default()
            };
            let store = store.open().map_err(|e| Failure::Usage(e.to_string()))?;
            let watched =
                reload.watched(std::iter::once(issuer_key.clone()).chain(job_key.clone()));
            let read_keys = move || -> Result<_, Failure> {
                Ok(tessera_trust::signer::SignerKeys {
                    issuer: read_key(&issuer_key)?,
                    job: job_key.as_deref().map(read_key).transpose()?,
                })
            };
            let keys = tessera_trust::signer::LiveKeys::from(read_keys()?);
            if let Some(code) = check
                .passed("the signer's keys")
                .map_err(|e| Failure::Usage(e.to_string()))?
            {
                return Ok(code);
            }
            let runtime = crate::runtime().map_err(|e| Failure::Usage(e.to_string()))?;
            runtime.block_on(async {
                // Before the socket is there or announced: see shutdown_signal.
                let shutdown = tessera_serve::shutdown_signal();
                crate::log_file::reopen_on_sighup().map_err(io)?;
                let registry = metrics.metrics();
                crate::listen::metrics(&metrics, registry.as_ref())
                    .await
                    .map_err(|e| Failure::Usage(format!("{e:#}")))?;
                let live = keys.clone();
                tessera_serve::on_reload(&watched, registry.as_ref(), move || {
                    live.replace(read_keys().map_err(|e| e.to_string())?);
                    Ok::<_, String>("the signer's keys".to_owned())
                })
                .map_err(io)?;
                let listener = match (listen, unix) {
                    (Some(listen), _) => {
                        let address: std::net::SocketAddr = listen.parse().map_err(|_| {
                            Failure::Usage(format!("--listen {listen:?} is not ADDRESS:PORT"))
                        })?;
                        if !address.ip().is_loopback() {
                            return Err(Failure::Usage(
                                "the signer listens on loopback only".into(),
                            ));
                        }
                        let listener = tokio::net::TcpListener::bind(address)
                            .await
                            .map_err(|e| Failure::Usage(format!("binding {address}: {e}")))?;
                        // The line every tessera server prints when it accepts.
                        crate::listen::announce(listener.local_addr().map_err(io)?)
                            .map_err(|e| Failure::Usage(e.to_string()))?;
                        tessera_serve::Listener::from(listener)
                    }
                    (None, Some(path)) => tessera_trust::signer::bind_unix(&path)
                        .map_err(|e| Failure::Usage(e.detail()))?,
                    (None, None) => {
                        return Err(Failure::Usage(
                            "one of --listen or --unix is required".into(),
                        ))
                    }
                };
                let options = tessera_trust::signer::SignerOptions {
                    limits,
                    metrics: registry,
                    revocations: store.map(|store| {
                        tessera_fleet::Revocations::follow(store)
                            as std::sync::Arc<dyn tessera_trust::RevocationList>
                    }),
                    when_unknown: store_fallback,
                };
                tessera_trust::signer::serve_signer(listener, keys, options, shutdown)
                    .await
                    .map_err(Failure::Verify)
            })?;
        }
        TrustCommand::Bench(_) => unreachable!("handled in run"),
    }
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    crate::runtime().map_err(|e| Failure::Usage(e.to_string()))
}

/// The checks a fleet shares for an authenticated request: the token's
/// revocation id is not in the store's set, and the (holder, nonce) pair is
/// used here first (kept for twice the skew window, the longest a timestamp
/// stays acceptable). While the store cannot answer, `fallback` decides.
fn fleet_checks(
    store: &std::sync::Arc<tessera_fleet::Store>,
    fallback: tessera_trust::WhenUnknown,
    identity: &tessera_trust::Identity,
    nonce: &str,
    max_skew: f64,
) -> Result<(), Failure> {
    // `Ok(None)`: the store could not say and the fallback accepts.
    let answered = |outcome: Result<bool, tessera_fleet::Error>| match outcome {
        Ok(answer) => Ok(Some(answer)),
        Err(error) if fallback == tessera_trust::WhenUnknown::Accept => {
            tracing::warn!(store = store.url(), %error, "accepted unchecked (--store-fallback fail-open)");
            Ok(None)
        }
        Err(error) => Err(Failure::Store(format!("{}: {error}; refused", store.url()))),
    };
    runtime()?.block_on(async {
        let listed = tessera_fleet::Revocations::is_listed(store, &identity.revocation_id).await;
        if answered(listed)? == Some(true) {
            return Err(Failure::Verify(tessera_trust::Error::Revoked));
        }
        let item = format!("{}\0{nonce}", identity.worker_key);
        let ttl = std::time::Duration::from_secs_f64((2.0 * max_skew).clamp(1.0, 86_400.0));
        let first = tessera_fleet::FleetReplay::new(store.clone())
            .first_use(tessera_fleet::ReplayKind::TrustNonce, item.as_bytes(), ttl)
            .await;
        match answered(first)? {
            Some(false) => Err(Failure::Verify(tessera_trust::Error::Replay)),
            Some(true) | None => Ok(()),
        }
    })
}

/// What `trust revoke` revokes: a token's revocation id as given, a
/// fingerprint (`sha256:…`, any case or colons) in the one form servers
/// check, or the fingerprint of the certificate in `certificate`.
fn revocation_id(id: Option<String>, certificate: Option<&Path>) -> Result<String, Failure> {
    if let Some(path) = certificate {
        let der = tessera_tls::load_certificates(path)
            .map_err(|e| Failure::Usage(e.to_string()))?
            .into_iter()
            .next()
            .ok_or_else(|| Failure::Usage(format!("{}: no certificate in it", path.display())))?;
        return Ok(tessera_fleet::certificate_revocation_id(
            &tessera_tls::Fingerprint::of_der(der.as_ref()),
        ));
    }
    let id = id.unwrap_or_default();
    if id
        .get(..7)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("sha256:"))
    {
        let fingerprint = id
            .parse::<tessera_tls::Fingerprint>()
            .map_err(|e| Failure::Usage(e.to_string()))?;
        return Ok(tessera_fleet::certificate_revocation_id(&fingerprint));
    }
    Ok(id)
}

fn job_format(v2: bool) -> tessera_trust::JobFormat {
    if v2 {
        tessera_trust::JobFormat::V2
    } else {
        tessera_trust::JobFormat::V1
    }
}

/// A public key given on the command line.
fn read_public(hex: &str) -> Result<PublicKey, Failure> {
    PublicKey::from_hex(hex)
        .map_err(|_| Failure::Usage("--issuer-public must be a 64-hex-digit public key".into()))
}

fn read_text(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))
}

/// A key file: 64 hex digits and optional trailing whitespace.
fn read_key(path: &Path) -> Result<SecretKey, Failure> {
    let text = read_text(path)?;
    let trimmed = text.trim_end();
    if trimmed.len() != 64 || !trimmed.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Failure::Usage(format!(
            "{}: a key file holds 64 hex digits",
            path.display()
        )));
    }
    SecretKey::from_hex(trimmed).map_err(|e| Failure::Usage(e.detail()))
}

fn read_body(path: Option<&Path>) -> Result<Vec<u8>, Failure> {
    match path {
        Some(path) => {
            std::fs::read(path).map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))
        }
        None => Ok(Vec::new()),
    }
}

fn number(text: &str, flag: &str) -> Result<f64, Failure> {
    parse_timestamp(text).map_err(|_| {
        Failure::Usage(format!(
            "{flag} {text:?} is not a decimal number of seconds"
        ))
    })
}

fn json_object(path: &Path) -> Result<serde_json::Map<String, serde_json::Value>, Failure> {
    match serde_json::from_str(&read_text(path)?) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err(Failure::Usage(format!(
            "{}: not a JSON object",
            path.display()
        ))),
    }
}

fn string_pairs(
    map: &serde_json::Map<String, serde_json::Value>,
    path: &Path,
) -> Result<Vec<(String, String)>, Failure> {
    map.iter()
        .map(|(k, v)| {
            v.as_str()
                .map(|v| (k.clone(), v.to_owned()))
                .ok_or_else(|| {
                    Failure::Usage(format!("{}: values must be strings", path.display()))
                })
        })
        .collect()
}
