//! The fleet pieces against a real `redis-server` started on a free loopback
//! port per test (killed on drop). Without redis-server installed each test
//! says so and passes; `.ci/run` installs it, so CI never skips.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_fleet::{
    FleetLeases, FleetRate, FleetReplay, LocalOptions, LocalRedis, ReplayKind, Revocations, Store,
    StoreConfig,
};
use tessera_guard::{
    Chain, Clock, Decision, Fallback, Limiter, LimiterConfig, Request, SharedLimit,
};
use tessera_serve::ConnectionLeases;

/// Every wait on the network in these tests ends by then.
const WAIT: Duration = Duration::from_secs(10);

fn redis() -> Option<LocalRedis> {
    if !LocalRedis::installed() {
        eprintln!("SKIPPED: redis-server is not installed (apt install redis-server)");
        return None;
    }
    Some(LocalRedis::start().expect("redis-server starts"))
}

/// A server's store with a budget no busy test machine exceeds, so these
/// tests see the store's answers, not the fallbacks.
fn node(url: &str) -> Arc<Store> {
    let mut config = StoreConfig::new(url);
    config.budget = WAIT;
    Arc::new(Store::open(&config).unwrap())
}

/// A store with the default budget (50 ms), as servers run.
fn node_with_default_budget(url: &str) -> Arc<Store> {
    Arc::new(Store::open(&StoreConfig::new(url)).unwrap())
}

/// A shared limit on a connection of its own, as another server would have.
fn fleet_limit(redis: &LocalRedis, fallback: Fallback) -> SharedLimit {
    SharedLimit::new(Arc::new(FleetRate::new(node(&redis.url()))), fallback)
}

fn limiter(rate: f64, burst: u32) -> Limiter {
    Limiter::new(&LimiterConfig {
        rate,
        burst,
        ..LimiterConfig::default()
    })
    .unwrap()
}

fn request(address: &str) -> Request<'static> {
    Request {
        address: Some(address.parse::<IpAddr>().unwrap()),
        path: None,
        cert: None,
    }
}

fn clock() -> Clock {
    Clock {
        monotonic_ns: 0,
        wall: time::OffsetDateTime::now_utc(),
    }
}

/// Waits (bounded) until `probe` holds.
async fn eventually(what: &str, mut probe: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !probe().await {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn three_nodes_share_one_budget_per_client() {
    let Some(redis) = redis() else { return };
    let (rate, burst) = (2.0, 5);
    let nodes: Vec<Chain> = (0..3)
        .map(|_| {
            Chain::new()
                .limiter(limiter(rate, burst))
                .shared(fleet_limit(&redis, Fallback::Closed))
        })
        .collect();
    let started = Instant::now();
    let mut admitted = 0u32;
    for i in 0..60 {
        if nodes[i % 3].admit(&request("192.0.2.7"), clock()).await == Decision::Allow {
            admitted += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let bound = f64::from(burst) + rate * elapsed + 1.0;
    assert!(
        admitted >= burst,
        "{admitted} admitted, the burst is {burst}"
    );
    assert!(
        f64::from(admitted) <= bound,
        "{admitted} admitted over three nodes in {elapsed:.2} s; at most {bound:.1} allowed"
    );
    for chain in &nodes {
        assert_eq!(chain.fallbacks(), 0, "the store answered every decision");
    }
    // Another client has its own budget.
    assert_eq!(
        nodes[0].admit(&request("192.0.2.8"), clock()).await,
        Decision::Allow
    );
}

#[tokio::test]
async fn a_shared_denial_says_when_to_come_back_like_the_local_limiter() {
    let Some(redis) = redis() else { return };
    let interval = Duration::from_secs(60);
    let chain = Chain::new()
        .limiter(limiter(1.0 / 60.0, 2))
        .shared(fleet_limit(&redis, Fallback::Closed));
    for _ in 0..2 {
        assert_eq!(
            chain.admit(&request("198.51.100.1"), clock()).await,
            Decision::Allow
        );
    }
    let Decision::Deny(denial) = chain.admit(&request("198.51.100.1"), clock()).await else {
        panic!("the third request is over the burst");
    };
    let wait = denial.retry_after.expect("a rate denial says when");
    // The local limiter would say one interval minus the time since the first request.
    assert!(wait <= interval && wait > interval - WAIT, "{wait:?}");
}

#[tokio::test]
async fn an_item_used_on_one_node_is_refused_on_every_other() {
    let Some(redis) = redis() else { return };
    let (a, b) = (
        FleetReplay::new(node(&redis.url())),
        FleetReplay::new(node(&redis.url())),
    );
    let ttl = Duration::from_secs(60);
    for kind in ReplayKind::ALL {
        let item = format!("1:20:261203:alice::{}:1", kind.name());
        assert!(
            a.first_use(kind, item.as_bytes(), ttl).await.unwrap(),
            "{kind:?}"
        );
        assert!(
            !b.first_use(kind, item.as_bytes(), ttl).await.unwrap(),
            "{kind:?}"
        );
        assert!(
            !a.first_use(kind, item.as_bytes(), ttl).await.unwrap(),
            "{kind:?}"
        );
    }
    // Kinds do not collide: the same bytes as another kind are a first use.
    assert!(a
        .first_use(ReplayKind::WireFrame, b"same", ttl)
        .await
        .unwrap());
    assert!(a
        .first_use(ReplayKind::TrustNonce, b"same", ttl)
        .await
        .unwrap());
}

#[tokio::test]
async fn a_revocation_reaches_running_nodes_and_later_ones() {
    let Some(redis) = redis() else { return };
    let running: Vec<_> = (0..2)
        .map(|_| Revocations::follow(node(&redis.url())))
        .collect();
    for node in &running {
        assert!(node.synced(WAIT).await, "the feed is followed");
        assert_eq!(node.check("rev-1"), Ok(false));
    }
    let mut announced = running[0].subscribe();
    let operator = node(&redis.url());
    let started = Instant::now();
    let revoked = Revocations::revoke(&operator, "rev-1", WAIT).await.unwrap();
    assert!(revoked.new);
    assert_eq!(revoked.listeners, 2, "both running nodes follow the feed");
    let again = Revocations::revoke(&operator, "rev-1", WAIT).await.unwrap();
    assert!(!again.new, "already revoked");
    assert!(Revocations::is_listed(&operator, "rev-1").await.unwrap());
    assert!(!Revocations::is_listed(&operator, "rev-2").await.unwrap());
    let id = tokio::time::timeout(WAIT, announced.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&*id, "rev-1");
    eprintln!(
        "revocation reached a running node in {:?}",
        started.elapsed()
    );
    for node in &running {
        eventually("every running node knows", async || {
            node.check("rev-1") == Ok(true)
        })
        .await;
    }
    let later = Revocations::follow(node(&redis.url()));
    assert!(later.synced(WAIT).await);
    assert_eq!(
        later.check("rev-1"),
        Ok(true),
        "a node started afterwards catches up"
    );
    assert_eq!(later.check("rev-2"), Ok(false));
    for bad in ["", &"x".repeat(300)] {
        assert!(Revocations::revoke(&operator, bad, WAIT).await.is_err());
    }
}

#[tokio::test]
async fn a_store_that_goes_away_costs_at_most_the_budget_then_recovers() {
    let Some(mut redis) = redis() else { return };
    let store = node_with_default_budget(&redis.url());
    let chain = Chain::new()
        .limiter(limiter(1000.0, 1000))
        .shared(SharedLimit::new(
            Arc::new(FleetRate::new(store.clone())),
            Fallback::Local,
        ));
    let replay = FleetReplay::new(store.clone());
    let revocations = Revocations::follow(node_with_default_budget(&redis.url()));
    assert!(revocations.synced(WAIT).await);
    assert_eq!(
        chain.admit(&request("192.0.2.1"), clock()).await,
        Decision::Allow
    );
    assert_eq!(chain.fallbacks(), 0);

    redis.kill();
    // Every decision still gets an answer, by the fallback policy.
    for _ in 0..20 {
        let decided = tokio::time::timeout(WAIT, chain.admit(&request("192.0.2.1"), clock())).await;
        assert_eq!(
            decided.unwrap(),
            Decision::Allow,
            "the local fallback allows"
        );
    }
    assert!(chain.fallbacks() >= 20);
    assert!(!store.is_reachable());
    assert!(store.outages() >= 1);
    let used = tokio::time::timeout(WAIT, replay.first_use(ReplayKind::PowChallenge, b"c", WAIT))
        .await
        .unwrap();
    assert!(
        used.is_err(),
        "a replay check cannot say yes while the store is gone"
    );
    eventually("the feed is known lost", async || {
        revocations.check("x").is_err()
    })
    .await;

    redis.restart().unwrap();
    let fallbacks = chain.fallbacks();
    eventually("decisions come from the store again", async || {
        chain.admit(&request("192.0.2.1"), clock()).await == Decision::Allow && store.is_reachable()
    })
    .await;
    assert!(replay
        .first_use(ReplayKind::PowChallenge, b"c", WAIT)
        .await
        .unwrap());
    eventually("the feed is followed again", async || {
        revocations.check("x") == Ok(false)
    })
    .await;
    let before = chain.fallbacks();
    assert_eq!(
        chain.admit(&request("192.0.2.1"), clock()).await,
        Decision::Allow
    );
    assert_eq!(
        chain.fallbacks(),
        before,
        "recovered: no fallback after {fallbacks}"
    );
}

#[tokio::test]
async fn an_acl_user_needs_its_password() {
    if !LocalRedis::installed() {
        eprintln!("SKIPPED: redis-server is not installed (apt install redis-server)");
        return;
    }
    let password = "correct horse battery staple";
    let redis = LocalRedis::start_with(LocalOptions {
        user: Some(("tessera".into(), password.into())),
        ..LocalOptions::default()
    })
    .unwrap();
    let replay = |config: StoreConfig| FleetReplay::new(Arc::new(Store::open(&config).unwrap()));
    let without = replay(StoreConfig::new(redis.url()));
    let refused = without.first_use(ReplayKind::TrustNonce, b"n", WAIT).await;
    assert!(refused.is_err(), "no password, no access");
    let dir = std::env::temp_dir().join(format!("tessera-fleet-acl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("password"), format!("{password}\n")).unwrap();
    let config = StoreConfig::new(redis.url())
        .password_from(Some(&dir.join("password")))
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(replay(config)
        .first_use(ReplayKind::TrustNonce, b"n", WAIT)
        .await
        .unwrap());
}

#[tokio::test]
async fn a_tls_store_is_verified_against_its_ca() {
    use tessera_fleet::LocalTls;
    use tessera_tls::{DevPki, PkiOptions};

    if !LocalRedis::installed() {
        eprintln!("SKIPPED: redis-server is not installed (apt install redis-server)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = DevPki::generate(&PkiOptions::default()).unwrap();
    pki.write(dir.path(), false).unwrap();
    let file = |name: &str| dir.path().join(name);
    use tessera_tls::layout::{CA_CERT, SERVER_CERT, SERVER_KEY};
    let redis = LocalRedis::start_with(LocalOptions {
        tls: Some(LocalTls {
            cert: file(SERVER_CERT),
            key: file(SERVER_KEY),
            ca: file(CA_CERT),
        }),
        ..LocalOptions::default()
    })
    .unwrap();
    assert!(redis.url().starts_with("rediss://localhost:"));
    let mut config = StoreConfig::new(redis.url());
    config.ca_file = Some(file(CA_CERT));
    let replay = FleetReplay::new(Arc::new(Store::open(&config).unwrap()));
    assert!(replay
        .first_use(ReplayKind::TrustNonce, b"t", WAIT)
        .await
        .unwrap());
    // Another CA: the store's certificate does not verify, nothing is sent.
    let other = DevPki::generate(&PkiOptions::default()).unwrap();
    std::fs::write(file("other-ca.pem"), other.ca.cert_pem()).unwrap();
    config.ca_file = Some(file("other-ca.pem"));
    let stranger = FleetReplay::new(Arc::new(Store::open(&config).unwrap()));
    assert!(stranger
        .first_use(ReplayKind::TrustNonce, b"u", WAIT)
        .await
        .is_err());
    // Verification cannot be turned off.
    let insecure = Store::open(&StoreConfig::new(format!("{}#insecure", redis.url())));
    assert!(insecure
        .unwrap_err()
        .to_string()
        .contains("always verified"));
    // A CA file with a plain address is a mistake, said at start.
    let mut plain = StoreConfig::new("redis://127.0.0.1:6379/0");
    plain.ca_file = Some(file(CA_CERT));
    assert!(Store::open(&plain).is_err());
}

#[tokio::test]
async fn status_reports_what_tessera_keeps() {
    let Some(redis) = redis() else { return };
    let store = node(&redis.url());
    let chain = Chain::new()
        .limiter(limiter(1.0, 5))
        .shared(SharedLimit::new(
            Arc::new(FleetRate::new(store.clone())),
            Fallback::Closed,
        ));
    for client in ["192.0.2.1", "192.0.2.2", "2001:db8::1"] {
        assert_eq!(
            chain.admit(&request(client), clock()).await,
            Decision::Allow
        );
    }
    let replay = FleetReplay::new(store.clone());
    assert!(replay
        .first_use(ReplayKind::HashcashStamp, b"s", WAIT)
        .await
        .unwrap());
    Revocations::revoke(&store, "rev-9", WAIT).await.unwrap();
    let leases = FleetLeases::new(store.clone(), 4, Duration::from_secs(30));
    let _lease = leases.acquire("192.0.2.1".parse().unwrap()).await.unwrap();
    let status = tessera_fleet::status(&store, WAIT).await.unwrap();
    assert_eq!(status.lease_keys, 1);
    assert!(status.script_loaded);
    assert_eq!(status.rate_keys, 3);
    assert!(status.replay_keys.contains(&(ReplayKind::HashcashStamp, 1)));
    assert!(status.replay_keys.contains(&(ReplayKind::WireFrame, 0)));
    assert_eq!(status.revocations, 1);
    assert!(
        status.version.starts_with(|c: char| c.is_ascii_digit()),
        "{}",
        status.version
    );
    // No address reaches the store: keys hold keyed ids.
    let mut connection = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut connection)
        .await
        .unwrap();
    for key in &keys {
        assert!(
            !key.contains("192.0.2") && !key.contains("2001:db8"),
            "{key}"
        );
    }
}

/// The lease set's members and their expiry (ms on the store's clock).
async fn leases_in_store(url: &str) -> Vec<(String, f64)> {
    let mut connection = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("tessera:cl:*")
        .query_async(&mut connection)
        .await
        .unwrap();
    let mut members = Vec::new();
    for key in keys {
        let scored: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(&key)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut connection)
            .await
            .unwrap();
        members.extend(scored);
    }
    members
}

#[tokio::test]
async fn connection_leases_cap_a_client_across_servers_and_free_themselves() {
    let Some(redis) = redis() else { return };
    let url = redis.url();
    let lease_time = Duration::from_secs(2);
    let (a, b) = (
        FleetLeases::new(node(&url), 2, lease_time),
        FleetLeases::new(node(&url), 2, lease_time),
    );
    let client: IpAddr = "192.0.2.7".parse().unwrap();
    let first = a.acquire(client).await.unwrap().expect("a first lease");
    let second = b.acquire(client).await.unwrap().expect("a second lease");
    assert!(a.acquire(client).await.unwrap().is_none(), "a third on a");
    assert!(b.acquire(client).await.unwrap().is_none(), "a third on b");
    // Another client, and the same /64 of IPv6 counted as one.
    assert!(a
        .acquire("192.0.2.8".parse().unwrap())
        .await
        .unwrap()
        .is_some());
    let v6 = a.acquire("2001:db8::1".parse().unwrap()).await.unwrap();
    let v6_again = b.acquire("2001:db8::2".parse().unwrap()).await.unwrap();
    assert!(v6.is_some() && v6_again.is_some());
    assert!(a
        .acquire("2001:db8::3".parse().unwrap())
        .await
        .unwrap()
        .is_none());

    // Held leases are renewed: their expiry moves on while they are held.
    let before = leases_in_store(&url).await;
    eventually("a renewal", async || {
        let now = leases_in_store(&url).await;
        before
            .iter()
            .all(|(id, until)| now.iter().any(|(held, later)| held == id && later > until))
    })
    .await;
    assert!(
        a.acquire(client).await.unwrap().is_none(),
        "renewed, still counted"
    );

    // A connection that closes gives its lease back.
    drop(first);
    let mut kept = Vec::new();
    eventually("the released lease taken again", async || {
        let lease = b.acquire(client).await.unwrap();
        let taken = lease.is_some();
        kept.extend(lease);
        taken
    })
    .await;
    drop(second);

    // A server that dies stops renewing: its leases run out by themselves.
    let dead_url = url.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let dying = FleetLeases::new(node(&dead_url), 2, lease_time);
            let client: IpAddr = "198.51.100.1".parse().unwrap();
            for _ in 0..2 {
                std::mem::forget(dying.acquire(client).await.unwrap().expect("a lease"));
            }
            std::mem::forget(dying);
        });
        // Dropping the runtime ends the renewing task, as a crash would.
    })
    .join()
    .unwrap();
    let other: IpAddr = "198.51.100.1".parse().unwrap();
    assert!(
        a.acquire(other).await.unwrap().is_none(),
        "held by the dead server"
    );
    eventually("the dead server's leases expired", async || {
        let lease = a.acquire(other).await.unwrap();
        let taken = lease.is_some();
        kept.extend(lease);
        taken
    })
    .await;
}
