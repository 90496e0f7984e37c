//! `tessera demo --fleet`: three wire servers sharing one `redis-server`
//! (started here on a free loopback port, stopped at the end) show what a
//! fleet shares: one rate limit per client across the three, a Hashcash
//! stamp spent on one server refused by another, and a revocation that
//! closes every connection holding the token, on every server, at once.
//! Exits 0 only if all three happened.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tessera_fleet::{
    FleetRate, FleetReplay, LocalRedis, ReplayKind, Revocations, Store, StoreConfig,
};
use tessera_guard::{Chain, Fallback, Limiter, LimiterConfig, SharedLimit};
use tessera_trust::{mint, MintRequest, SecretKey, Verifier, WhenUnknown};
use tessera_wire::{
    CapabilityAuth, Client, ClientOptions, MessageType, Server, ServerOptions, Subscription,
    Transport,
};

/// Servers in the fleet.
const NODES: usize = 3;
/// The per-client budget: a burst of this many connections, refilled over an
/// hour (so the demo's few seconds refill none of it).
const BURST: u32 = 6;
/// Connection attempts spread over the servers.
const ATTEMPTS: usize = 12;
/// How soon every server must act on a revocation.
const REVOCATION_DEADLINE: Duration = Duration::from_secs(1);
/// Any other step ends by then.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// One server of the demo fleet and its own connection to the store.
struct Node {
    addr: SocketAddr,
    store: Arc<Store>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub(crate) fn run() -> anyhow::Result<ExitCode> {
    if !LocalRedis::installed() {
        let _ = writeln!(
            std::io::stderr(),
            "tessera: the fleet demo needs redis-server (Debian: apt install redis-server); \
             it starts its own on a free loopback port and stops it at the end"
        );
        return Ok(ExitCode::FAILURE);
    }
    let redis = LocalRedis::start().context("starting redis-server")?;
    crate::runtime()?.block_on(demo(&redis))
}

async fn demo(redis: &LocalRedis) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "redis-server on {} (ours; stopped when the demo ends)",
        redis.url()
    )?;
    let issuer = SecretKey::generate();
    let mut nodes = Vec::new();
    for _ in 0..NODES {
        nodes.push(node(&redis.url(), &issuer).await?);
    }
    writeln!(
        out,
        "{NODES} wire servers: {}; each limits a client to {BURST} connections an hour, \
         in the shared store",
        nodes
            .iter()
            .map(|n| n.addr.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )?;

    // 1. One rate limit across the fleet.
    let holder = SecretKey::generate();
    let token = mint(
        &issuer,
        &MintRequest {
            worker_public: holder.public().to_hex(),
            holder_id: "demo-worker".into(),
            facts: Vec::new(),
            revocation_id: "demo-revocation".into(),
            expires_at: 4_000_000_000.0,
        },
    )?;
    let mut open: Vec<(Client, Subscription)> = Vec::new();
    let started = Instant::now();
    for attempt in 0..ATTEMPTS {
        let node = &nodes[attempt % NODES];
        if let Some(connection) = echo(node.addr, &holder, &token).await {
            open.push(connection);
        }
    }
    let admitted = open.len();
    writeln!(
        out,
        "rate limit: {admitted} of {ATTEMPTS} connections spread over {NODES} servers were \
         admitted in {:.1} s (one budget of {BURST}; {} with a budget per server)",
        started.elapsed().as_secs_f64(),
        (BURST as usize * NODES).min(ATTEMPTS)
    )?;
    let rate_shared = admitted == BURST as usize;

    // 2. A stamp spent on one server is refused by another.
    let stamp = tessera_pow::hashcash::mint(
        "demo@example.org",
        12,
        time::OffsetDateTime::now_utc(),
        &tessera_pow::SearchOptions::default(),
    )?;
    let spend = |node: &Node| {
        let replay = FleetReplay::new(node.store.clone());
        let stamp = stamp.clone();
        async move {
            replay
                .first_use(
                    ReplayKind::HashcashStamp,
                    stamp.as_bytes(),
                    Duration::from_secs(3600),
                )
                .await
        }
    };
    let first = spend(&nodes[0]).await?;
    let second = spend(&nodes[1]).await?;
    writeln!(
        out,
        "replay: a Hashcash stamp spent on server 1 ({}) is refused by server 2 ({})",
        if first { "accepted" } else { "refused!" },
        if second { "accepted!" } else { "refused" }
    )?;
    let replay_shared = first && !second;

    // 3. A revocation closes the token's connections on every server.
    let operator = Store::open(&demo_store(&redis.url()))?;
    let started = Instant::now();
    let revoked = Revocations::revoke(&operator, "demo-revocation", STEP_TIMEOUT).await?;
    let mut closed = 0;
    for (_client, subscription) in &mut open {
        if tokio::time::timeout(REVOCATION_DEADLINE, subscription.next())
            .await
            .is_ok_and(|next| next.is_none())
        {
            closed += 1;
        }
    }
    let took = started.elapsed();
    writeln!(
        out,
        "revocation: {} servers heard it; {closed} of {admitted} connections holding the token \
         were closed within {:.0} ms",
        revoked.listeners,
        took.as_secs_f64() * 1e3
    )?;
    let revocation_reached =
        revoked.listeners == NODES as u64 && closed == admitted && admitted > 0;

    let all = rate_shared && replay_shared && revocation_reached;
    writeln!(out, "fleet demo: {}", if all { "ok" } else { "FAILED" })?;
    Ok(if all {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A store with a budget a busy machine does not exceed, so the demo shows
/// the store's answers rather than the fallbacks.
fn demo_store(url: &str) -> StoreConfig {
    let mut config = StoreConfig::new(url);
    config.budget = Duration::from_secs(2);
    config
}

/// Starts one server of the fleet: plain TCP on loopback, the shared rate
/// limit per connection, capability tokens checked against the shared
/// revocation list.
async fn node(url: &str, issuer: &SecretKey) -> anyhow::Result<Node> {
    let store = Arc::new(Store::open(&demo_store(url))?);
    let revocations = Revocations::follow(store.clone());
    anyhow::ensure!(
        revocations.synced(STEP_TIMEOUT).await,
        "the revocation feed did not start"
    );
    let mut verifier = Verifier::new(&issuer.public())?;
    verifier.revocation_list(revocations.clone(), WhenUnknown::Refuse);
    let limiter = Limiter::new(&LimiterConfig {
        rate: f64::from(BURST) / 3600.0,
        burst: BURST,
        ..LimiterConfig::default()
    })?;
    let guard = Chain::new().limiter(limiter).shared(SharedLimit::new(
        Arc::new(FleetRate::new(store.clone())),
        Fallback::Closed,
    ));
    let options = ServerOptions {
        auth: Some(Arc::new(CapabilityAuth::server(verifier))),
        guard: Some(Arc::new(guard)),
        revocations: Some(revocations),
        ..ServerOptions::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = Server::new(
        listener,
        Transport::PlainLoopback,
        crate::commands::wire::echo_router(),
        options,
    )?;
    let addr = server.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    Ok(Node {
        addr,
        store,
        _stop: stop,
    })
}

/// A connection that got an echo back, kept open with a subscription
/// (which ends when the server closes it); `None` when it was refused.
async fn echo(addr: SocketAddr, holder: &SecretKey, token: &str) -> Option<(Client, Subscription)> {
    let auth = CapabilityAuth::client(SecretKey::from_hex(&holder.to_hex()).ok()?, token);
    let options = ClientOptions {
        auth: Some(Arc::new(auth)),
        ..ClientOptions::default()
    };
    let attempt = async {
        let client = Client::connect_plain(addr, options).await.ok()?;
        let reply = client
            .request(MessageType::REQUEST_URI, "echo", "hello")
            .await
            .ok()?;
        if reply.kind != MessageType::RESPOND_URI {
            return None;
        }
        let subscription = client.subscribe("demo").await.ok()?;
        Some((client, subscription))
    };
    tokio::time::timeout(STEP_TIMEOUT, attempt)
        .await
        .ok()
        .flatten()
}
