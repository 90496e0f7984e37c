//! Fleet mode through the programs: real server processes and one-shot
//! commands sharing a real `redis-server` (started per test on a free
//! loopback port, killed on drop). Without redis-server each test says so
//! and passes; `.ci/run` installs it.

use std::time::Instant;

use tessera_fleet::LocalRedis;

use crate::common::{self, stderr, stdout, tessera};
use crate::gemini::anonymous_request;

/// The store budget these tests give programs: one no busy test machine
/// exceeds, so they see the store's answers rather than the fallbacks.
const BUDGET: &str = "5000";

fn redis() -> Option<LocalRedis> {
    if !LocalRedis::installed() {
        eprintln!("SKIPPED: redis-server is not installed (apt install redis-server)");
        return None;
    }
    Some(LocalRedis::start().expect("redis-server starts"))
}

/// A capsule with one page, served by `tessera gemini serve` with `extra` flags.
fn capsule(dir: &std::path::Path, name: &str, extra: &[&str]) -> common::Server {
    let root = dir.join("capsule");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("index.gmi"), "# Home\n").unwrap();
    let state = dir.join(name);
    let mut args = vec![
        "--root",
        root.to_str().unwrap(),
        "--cert-dir",
        state.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    common::start(&["gemini", "serve"], &args)
}

/// Sends `requests` requests spread over `servers` in turn; returns how
/// many were served (20) and the seconds it took. Anything but 20 or 44 fails.
fn spread(servers: &[common::Server], requests: usize) -> (u32, f64) {
    let started = Instant::now();
    let mut served = 0;
    for i in 0..requests {
        let server = &servers[i % servers.len()];
        let url = format!("gemini://localhost:{}/", server.addr.port());
        let reply = anonymous_request(server.addr, "localhost", &url);
        match &reply[..3] {
            "20 " => served += 1,
            "44 " => {}
            _ => panic!("unexpected reply {reply:?}"),
        }
    }
    (served, started.elapsed().as_secs_f64())
}

#[test]
fn three_gemini_servers_on_one_store_charge_one_rate_limit() {
    let Some(redis) = redis() else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    let (burst, rate) = (5u32, 5.0 / 60.0);
    let fleet: Vec<_> = (0..3)
        .map(|i| {
            capsule(
                dir.path(),
                &format!("node-{i}"),
                &[
                    "--rate-limit",
                    "5/60",
                    "--store",
                    &url,
                    "--store-budget-ms",
                    BUDGET,
                ],
            )
        })
        .collect();
    let (served, elapsed) = spread(&fleet, 24);
    let bound = f64::from(burst) + rate * elapsed + 1.0;
    assert!(served >= burst, "{served} served");
    assert!(
        f64::from(served) <= bound,
        "three servers on one store served {served} in {elapsed:.1} s; the limit allows {bound:.1}"
    );
    // Without the store, each server has a budget of its own: three bursts.
    let alone: Vec<_> = (0..3)
        .map(|i| capsule(dir.path(), &format!("alone-{i}"), &["--rate-limit", "5/60"]))
        .collect();
    let (served_alone, _) = spread(&alone, 24);
    assert!(
        served_alone >= 3 * burst,
        "{served_alone} served without a store"
    );
    // One server with the local store, for comparison: the same bound as the fleet.
    let one = [capsule(dir.path(), "one", &["--rate-limit", "5/60"])];
    let (served_one, elapsed) = spread(&one, 24);
    assert!(f64::from(served_one) <= f64::from(burst) + rate * elapsed + 1.0);
}

#[test]
fn a_hashcash_stamp_is_spent_once_across_the_fleet() {
    let Some(redis) = redis() else { return };
    let minted = tessera(&[
        "pow",
        "hashcash",
        "mint",
        "--bits",
        "8",
        "fleet@example.org",
    ]);
    assert!(minted.status.success(), "{}", stderr(&minted));
    let stamp = stdout(&minted);
    let url = redis.url();
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "pow",
            "hashcash",
            "verify",
            "--bits",
            "8",
            "--resource",
            "fleet@example.org",
            &stamp,
        ];
        args.extend_from_slice(extra);
        tessera(&args)
    };
    // Without a store nothing remembers it between two runs.
    assert!(verify(&[]).status.success());
    assert!(verify(&[]).status.success());
    let first = verify(&["--store", &url, "--store-budget-ms", BUDGET]);
    assert!(first.status.success(), "{}", stderr(&first));
    let second = verify(&["--store", &url, "--store-budget-ms", BUDGET]);
    assert_eq!(second.status.code(), Some(1));
    assert!(
        stderr(&second).contains("already spent"),
        "{}",
        stderr(&second)
    );
    // A store that does not answer refuses (fail closed), quickly and clearly.
    drop(redis);
    let gone = verify(&["--store", &url, "--store-budget-ms", BUDGET]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(stderr(&gone).contains("fail closed"), "{}", stderr(&gone));
    // Unless the operator chose to accept unchecked.
    let open = verify(&[
        "--store",
        &url,
        "--store-budget-ms",
        BUDGET,
        "--store-fallback",
        "fail-open",
    ]);
    assert!(open.status.success(), "{}", stderr(&open));
    assert!(
        stderr(&open).contains("accepted unchecked"),
        "{}",
        stderr(&open)
    );
    let bad = verify(&[
        "--store",
        &url,
        "--store-budget-ms",
        BUDGET,
        "--store-fallback",
        "maybe",
    ]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn trust_requests_are_single_use_and_revocations_reach_the_verifier() {
    let Some(redis) = redis() else { return };
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let issuer = stdout(&tessera(&["trust", "keygen", "--out", &p("issuer.key")]));
    let worker = stdout(&tessera(&["trust", "keygen", "--out", &p("worker.key")]));
    let token = stdout(&tessera(&[
        "trust",
        "mint",
        "--issuer-key",
        &p("issuer.key"),
        "--worker-public",
        &worker,
        "--holder-id",
        "gpu-1",
        "--revocation-id",
        "rev-fleet",
        "--expires-at",
        "1700003600",
    ]));
    let url = redis.url();
    let request = |nonce: &str| {
        let headers = p(&format!("{nonce}.json"));
        let proved = tessera(&[
            "trust",
            "prove",
            "--worker-key",
            &p("worker.key"),
            "--token",
            &token,
            "--method",
            "GET",
            "--path",
            "/status",
            "--timestamp",
            "1700000000",
            "--nonce",
            nonce,
        ]);
        assert!(proved.status.success(), "{}", stderr(&proved));
        std::fs::write(&headers, stdout(&proved)).unwrap();
        tessera(&[
            "trust",
            "verify",
            "--issuer-public",
            &issuer,
            "--headers",
            &headers,
            "--method",
            "GET",
            "--path",
            "/status",
            "--now",
            "1700000000",
            "--store",
            &url,
            "--store-budget-ms",
            BUDGET,
        ])
    };
    let first = request("n-1");
    assert!(first.status.success(), "{}", stderr(&first));
    let replayed = request("n-1");
    assert_eq!(replayed.status.code(), Some(1));
    assert!(
        stderr(&replayed).starts_with("error: replay"),
        "{}",
        stderr(&replayed)
    );
    assert!(request("n-2").status.success());

    let revoked = tessera(&["trust", "revoke", "rev-fleet", "--store", &url]);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    assert!(
        stdout(&revoked).starts_with("revoked rev-fleet"),
        "{}",
        stdout(&revoked)
    );
    let refused = request("n-3");
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).starts_with("error: revoked"),
        "{}",
        stderr(&refused)
    );

    let status = tessera(&["fleet", "status", "--json", "--store", &url]);
    assert!(status.status.success(), "{}", stderr(&status));
    let status: serde_json::Value = serde_json::from_str(&stdout(&status)).unwrap();
    assert_eq!(status["revocations"], 1);
    assert_eq!(status["replay_entries"]["nonce"], 2);
    drop(redis);
    let closed = request("n-4");
    assert_eq!(closed.status.code(), Some(1));
    assert!(
        stderr(&closed).contains("error: store_unavailable"),
        "{}",
        stderr(&closed)
    );
    let gone = tessera(&["fleet", "status", "--store", &url]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(stderr(&gone).contains("unreachable"), "{}", stderr(&gone));
}

#[test]
fn the_fleet_demo_shows_all_three_and_exits_0() {
    if !LocalRedis::installed() {
        eprintln!("SKIPPED: redis-server is not installed (apt install redis-server)");
        let missing = tessera(&["demo", "--fleet"]);
        assert_eq!(missing.status.code(), Some(1));
        assert!(stderr(&missing).contains("apt install redis-server"));
        return;
    }
    let demo = tessera(&["demo", "--fleet"]);
    let out = stdout(&demo);
    assert!(demo.status.success(), "{out}\n{}", stderr(&demo));
    assert!(out.contains("rate limit: 6 of 12"), "{out}");
    assert!(
        out.contains("(accepted) is refused by server 2 (refused)"),
        "{out}"
    );
    assert!(out.contains("6 of 6 connections"), "{out}");
    assert!(out.ends_with("fleet demo: ok"), "{out}");
}

#[test]
fn a_wire_server_with_a_store_refuses_a_token_revoked_in_the_fleet() {
    let Some(redis) = redis() else { return };
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let issuer = stdout(&tessera(&["trust", "keygen", "--out", &p("issuer.key")]));
    let worker = stdout(&tessera(&["trust", "keygen", "--out", &p("worker.key")]));
    let token = stdout(&tessera(&[
        "trust",
        "mint",
        "--issuer-key",
        &p("issuer.key"),
        "--worker-public",
        &worker,
        "--holder-id",
        "w-1",
        "--revocation-id",
        "rev-wire",
        "--expires-at",
        "4000000000",
    ]));
    std::fs::write(p("token"), &token).unwrap();
    let url = redis.url();
    let server = common::start(
        &["wire", "echo-server"],
        &[
            "--plain",
            "--capability-issuer",
            &issuer,
            "--store",
            &url,
            "--store-budget-ms",
            BUDGET,
        ],
    );
    let port = server.addr.to_string();
    let request = |extra: &[&str]| {
        let mut args = vec![
            "wire",
            "request",
            "--plain",
            "--connect",
            &port,
            "--body",
            "hi",
        ];
        args.extend_from_slice(extra);
        tessera(&args)
    };
    let with_token = ["--token", &p("token"), "--worker-key", &p("worker.key")];
    let ok = request(&with_token);
    assert!(ok.status.success(), "{}{}", stdout(&ok), stderr(&ok));
    assert_eq!(stdout(&ok), "RESPOND_URI hi");
    let anonymous = request(&[]);
    assert_eq!(anonymous.status.code(), Some(1));
    assert!(
        stdout(&anonymous).starts_with("AUTH_ERROR"),
        "{}",
        stdout(&anonymous)
    );

    let revoked = tessera(&["trust", "revoke", "rev-wire", "--store", &url]);
    assert!(
        stdout(&revoked).contains("1 running servers told"),
        "{}",
        stdout(&revoked)
    );
    let refused = request(&with_token);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(stdout(&refused), "AUTH_ERROR revoked");
}

/// A client certificate revoked in the store (`tessera trust revoke
/// --certificate`) reaches every server of the fleet: an open tunnel that
/// presented it is closed, a Gemini capsule answers 62 to it, a new tunnel
/// is refused, and a server started after the revocation refuses it too.
#[test]
fn a_client_certificate_revoked_in_the_fleet_is_refused_by_every_server() {
    use std::io::{BufRead, BufReader, Read, Write};

    let Some(redis) = redis() else { return };
    let url = redis.url();
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let store = ["--store", &url, "--store-budget-ms", BUDGET];
    let service = format!("echo={}", crate::proxy::echo_service());
    let exit = common::start(
        &["proxy", "exit"],
        &[&["--service", &service, "--pki", &p("pki")][..], &store].concat(),
    );
    let exit_addr = exit.addr.to_string();
    let local = common::start(
        &["proxy", "local"],
        &[
            "--exit",
            &exit_addr,
            "--service",
            "echo",
            "--pki",
            &p("pki"),
        ],
    );
    let tunnel = || crate::proxy::connect_app(&local);
    let mut open = tunnel();
    open.write_all(b"before\n").unwrap();
    let mut line = String::new();
    BufReader::new(&open).read_line(&mut line).unwrap();
    assert_eq!(line, "before\n");

    let client = [
        "--cert",
        &p("pki/client_cert.pem"),
        "--key",
        &p("pki/ec_private_key.pem"),
    ];
    let gemini = capsule(dir.path(), "node-1", &store);
    let page = |server: &common::Server| {
        let url = format!("gemini://localhost:{}/", server.addr.port());
        let out = crate::gemini::get(dir.path().join("tofu.db").as_path(), &url, &client);
        (out.status.code(), stdout(&out), stderr(&out))
    };
    let (code, body, _) = page(&gemini);
    assert_eq!((code, body.as_str()), (Some(0), "# Home"));

    let revoked = tessera(&[
        "trust",
        "revoke",
        "--certificate",
        &p("pki/client_cert.pem"),
        "--store",
        &url,
    ]);
    let said = stdout(&revoked);
    let fingerprint = stdout(&tessera(&["fingerprint", &p("pki/client_cert.pem")]));
    assert_eq!(
        said,
        format!("revoked {fingerprint}; 2 running servers told"),
        "{}",
        stderr(&revoked)
    );
    // The same certificate named by its fingerprint, in capitals: the same id.
    let again = tessera(&[
        "trust",
        "revoke",
        &fingerprint.to_uppercase(),
        "--store",
        &url,
    ]);
    assert!(
        stdout(&again).starts_with("already revoked"),
        "{}",
        stdout(&again)
    );
    // The open tunnel ends: the exit closes it, the app reads end of stream.
    let mut rest = Vec::new();
    let read = BufReader::new(&open).read_to_end(&mut rest);
    assert!(
        matches!(read, Ok(0)),
        "the tunnel stayed open: {read:?} {rest:?}"
    );
    let (code, _, said) = page(&gemini);
    assert!(code != Some(0) && said.contains("62"), "{code:?} {said}");
    // A new tunnel is refused: the app's connection is closed unanswered.
    let mut refused = tunnel();
    refused.write_all(b"after\n").unwrap();
    let mut nothing = Vec::new();
    let read = refused.read_to_end(&mut nothing);
    assert!(
        matches!(&read, Ok(0))
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{read:?} {nothing:?}"
    );
    // A server that starts now reads the revocation from the store.
    let later = capsule(dir.path(), "node-2", &store);
    let (code, _, said) = page(&later);
    assert!(code != Some(0) && said.contains("62"), "{code:?} {said}");
}

/// With `--fleet-max-connections-per-client 2`, two wire servers on one
/// store admit two connections of a client between them, not two each; a
/// connection that closes frees its place on every server.
#[test]
fn a_client_gets_the_fleet_connection_cap_across_two_servers() {
    let Some(redis) = redis() else { return };
    let url = redis.url();
    let flags = [
        "--plain",
        "--store",
        &url,
        "--store-budget-ms",
        BUDGET,
        "--fleet-max-connections-per-client",
        "2",
    ];
    let servers = [
        common::start(&["wire", "echo-server"], &flags),
        common::start(&["wire", "echo-server"], &flags),
    ];
    let first = echo_connection(&servers[0]).expect("the first connection is admitted");
    let second = echo_connection(&servers[1]).expect("the second connection is admitted");
    for server in &servers {
        assert!(
            echo_connection(server).is_none(),
            "a third connection was admitted on {}",
            server.addr
        );
    }
    drop(first);
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    let third = loop {
        if let Some(connection) = echo_connection(&servers[1]) {
            break connection;
        }
        assert!(
            Instant::now() < deadline,
            "the closed connection's place never freed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    drop((second, third));
}

/// A connection to `server` that an echo went through, or `None` when the
/// server closed it unanswered (refused at admission).
fn echo_connection(server: &common::Server) -> Option<std::net::TcpStream> {
    use std::io::{Read, Write};

    let mut request = bytes::BytesMut::new();
    tessera_wire::Frame::new(
        tessera_wire::MessageType::REQUEST_URI,
        1,
        "echo",
        &b"hi"[..],
    )
    .encode(&tessera_wire::Limits::default(), &mut request)
    .unwrap();
    let mut tcp = std::net::TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    // A refused connection may be closed before the write lands.
    if tcp.write_all(&request).is_err() {
        return None;
    }
    let mut received = bytes::BytesMut::new();
    loop {
        let limits = tessera_wire::Limits::default();
        if let Some(frame) = tessera_wire::Frame::decode(&mut received, &limits).unwrap() {
            assert_eq!(frame.kind, tessera_wire::MessageType::RESPOND_URI);
            return Some(tcp);
        }
        let mut chunk = [0u8; 4096];
        match tcp.read(&mut chunk) {
            Ok(0) => return None,
            Ok(read) => received.extend_from_slice(&chunk[..read]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => return None,
            Err(error) => panic!("no reply and no close within 20 s: {error}"),
        }
    }
}

/// A signer given the store does not mint under a revocation id the fleet
/// revoked.
#[test]
fn a_signer_in_a_fleet_refuses_to_mint_under_a_revoked_id() {
    let Some(redis) = redis() else { return };
    let url = redis.url();
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    tessera(&["trust", "keygen", "--out", &p("issuer.key")]);
    let worker = stdout(&tessera(&["trust", "keygen", "--out", &p("worker.key")]));
    let signer = common::start(
        &["trust", "signer"],
        &[
            "--issuer-key",
            &p("issuer.key"),
            "--store",
            &url,
            "--store-budget-ms",
            BUDGET,
        ],
    );
    let address = signer.addr.to_string();
    let mint = || {
        tessera(&[
            "trust",
            "mint",
            "--signer",
            &address,
            "--worker-public",
            &worker,
            "--holder-id",
            "w-1",
            "--revocation-id",
            "rev-signer",
            "--expires-at",
            "4000000000",
        ])
    };
    let minted = mint();
    assert!(minted.status.success(), "{}", stderr(&minted));
    let revoked = tessera(&["trust", "revoke", "rev-signer", "--store", &url]);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    // The signer follows the feed: refused as soon as the announcement is in.
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let refused = mint();
        if !refused.status.success() {
            assert!(stderr(&refused).contains("revoked"), "{}", stderr(&refused));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the signer still mints a revoked id"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
