//! The real binaries in tutorial mode reproduce the reference's golden logs
//! (`tests/data/golden/`, copied from the shared reference data), compared as its README prescribes.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Kills the server on every path out of the test.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn golden(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/golden")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The README's normalisation: drop DEBUG lines and (client) the `Can't connect`
/// lines; replace the port, the WORK arguments, body arguments and the values
/// the client answered (ours are fake samples, the reference's are fixed).
fn normalise(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| !line.contains(" DEBUG ") && !line.contains("Can't connect to"))
        .map(|line| {
            let (head, message) = line.split_once(": ").unwrap();
            let message = if let Some(rest) =
                message.strip_prefix("Server listening on https://'localhost':")
            {
                let _ = rest;
                "Server listening on https://'localhost':<port>".to_owned()
            } else if message.starts_with("Connected to ") {
                "Connected to <port>".to_owned()
            } else if message.starts_with("Received 'WORK ") {
                "Received 'WORK <token> <n_bits>'".to_owned()
            } else if let Some(rest) = message.strip_prefix("Received '") {
                match rest.split_once(' ') {
                    Some((name, _))
                        if tessera_tlslp::BODY.iter().any(|body| body.name() == name) =>
                    {
                        format!("Received '{name} <random>'")
                    }
                    _ if rest == "OK'" || rest == "HELLO'" || rest == "DONE'" => message.to_owned(),
                    _ => "Received '<value>'".to_owned(),
                }
            } else if message.starts_with("Sending to server: '")
                && message != "Sending to server: ''"
            {
                "Sending to server: '<value>\\n'".to_owned()
            } else {
                message.to_owned()
            };
            format!("{head}: {message}")
        })
        .collect()
}

fn bin(name: &str) -> PathBuf {
    match name {
        "tlslp-server" => PathBuf::from(env!("CARGO_BIN_EXE_tlslp-server")),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_tlslp-client")),
    }
}

#[test]
fn tutorial_logs_match_the_golden_files() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certificates");
    tessera_tls::DevPki::generate(&tessera_tls::PkiOptions::default())
        .unwrap()
        .write(&certs, false)
        .unwrap();
    let state = dir.path().join("state");

    let server = Command::new(bin("tlslp-server"))
        .args(["--tutorial", "--n_bits", "16", "--port", "0"])
        .current_dir(dir.path())
        .env("XDG_STATE_HOME", &state)
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = KillOnDrop(server);
    let mut stdout = BufReader::new(server.0.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let port = first.trim().rsplit(':').next().unwrap().to_owned();
    assert!(
        first.starts_with("Server listening on https://localhost:"),
        "{first}"
    );

    // A closed port first, as in the golden run (its WARNING line is dropped in the comparison).
    let (_refusing, closed) = crate::util::refusing_port();
    let closed = closed.port();
    let client = Command::new(bin("tlslp-client"))
        .args(["--tutorial", "--ports", &format!("{closed},{port}")])
        .current_dir(dir.path())
        .env("XDG_STATE_HOME", &state)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(client.status.success(), "client exit {:?}", client.status);
    let status = server.0.wait().unwrap();
    assert!(
        status.success(),
        "tutorial server exits 0 after its session"
    );

    let logs = state.join("tlslp/logs");
    let ours_server = std::fs::read_to_string(logs.join("server.log")).unwrap();
    let ours_client = std::fs::read_to_string(logs.join("client.log")).unwrap();
    assert_eq!(normalise(&ours_server), normalise(&golden("server.log")));
    assert_eq!(normalise(&ours_client), normalise(&golden("client.log")));
    // The fixed timestamp, exactly.
    assert!(ours_server
        .lines()
        .all(|l| l.starts_with("2000-01-01T00:00:00+0100 ")));
    assert_eq!(ours_server.lines().count(), 23);
}

/// Outside the tutorial, the connection lines name the client by its keyed
/// id; `--log-client-ip` brings the address back.
#[test]
fn connection_lines_carry_the_keyed_id_unless_addresses_are_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    tessera_tls::DevPki::generate(&tessera_tls::PkiOptions::default())
        .unwrap()
        .write(&dir.path().join("certificates"), false)
        .unwrap();
    for (extra, want_address) in [(None, false), (Some("--log-client-ip"), true)] {
        let state = dir.path().join(format!("state-{want_address}"));
        let mut args = vec!["--n_bits", "4", "--port", "0"];
        args.extend(extra);
        let server = Command::new(bin("tlslp-server"))
            .args(&args)
            .current_dir(dir.path())
            .env("XDG_STATE_HOME", &state)
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut server = KillOnDrop(server);
        let mut stdout = BufReader::new(server.0.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let port = first.trim().rsplit(':').next().unwrap().to_owned();
        let client = Command::new(bin("tlslp-client"))
            .args(["--ports", &port])
            .current_dir(dir.path())
            .env("XDG_STATE_HOME", dir.path().join("client-state"))
            .stderr(Stdio::null())
            .output()
            .unwrap();
        // The session may end in the reference's random FAIL: only its lines matter here.
        assert!(
            client.status.code().is_some(),
            "client killed: {:?}",
            client.status
        );
        // Stopped first, so reading its stdout ends (at EOF) whatever it printed.
        drop(server);
        let mut printed = String::new();
        stdout.read_to_string(&mut printed).unwrap();
        let connection = printed
            .lines()
            .find(|line| line.starts_with("Connection from ("))
            .expect("the reference's stdout line for the session")
            .to_owned();
        let log = std::fs::read_to_string(state.join("tlslp/logs/server.log")).unwrap();
        let line = log
            .lines()
            .find(|line| line.contains("Connection from address: "))
            .expect("a connection line");
        assert_eq!(line.contains("'127.0.0.1'"), want_address, "{line}");
        assert_eq!(
            connection.contains("'127.0.0.1'"),
            want_address,
            "{connection}"
        );
        if !want_address {
            let id = line.rsplit("address: ").next().unwrap().trim_matches('\'');
            assert!(
                id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
                "a keyed id: {line}"
            );
        }
    }
}

/// `--metrics-listen` serves the sessions a real client ran, scraped with
/// curl (a real HTTP client); its line comes before the reference's.
#[test]
fn metrics_count_the_sessions_clients_ran() {
    let dir = tempfile::tempdir().unwrap();
    tessera_tls::DevPki::generate(&tessera_tls::PkiOptions::default())
        .unwrap()
        .write(&dir.path().join("certificates"), false)
        .unwrap();
    let server = Command::new(bin("tlslp-server"))
        .args(["--n_bits", "4", "--port", "0", "--metrics-listen", "0"])
        .current_dir(dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = KillOnDrop(server);
    let mut stdout = BufReader::new(server.0.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let metrics = line
        .trim()
        .strip_prefix("metrics on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    let port = line.trim().rsplit(':').next().unwrap().to_owned();
    for _ in 0..2 {
        let client = Command::new(bin("tlslp-client"))
            .args(["--ports", &port])
            .current_dir(dir.path())
            .env("XDG_STATE_HOME", dir.path().join("client-state"))
            .stderr(Stdio::null())
            .output()
            .unwrap();
        assert!(client.status.code().is_some(), "{:?}", client.status);
    }
    // The server counts a session as it closes, just after the client
    // has its last line: scrape until both are there (at most 20 s).
    let sessions = |text: &str| -> u64 {
        text.lines()
            .filter(|l| l.starts_with("tessera_tlslp_sessions_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let text = loop {
        let scraped = Command::new("curl")
            .args(["--silent", "--fail", "--max-time", "10", &metrics])
            .output()
            .expect("curl runs");
        assert!(scraped.status.success(), "{scraped:?}");
        let text = String::from_utf8(scraped.stdout).unwrap();
        if sessions(&text) == 2 || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(sessions(&text), 2, "{text}");
    assert!(
        text.lines()
            .any(|l| l == "tessera_connections_admitted_total 2"),
        "{text}"
    );
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|n| n.parse::<u64>().ok())
    };
    let solved = value("tessera_pow_challenges_solved_total");
    assert_eq!(solved, value("tessera_pow_solve_seconds_count"), "{text}");
    // Every session that got as far as a valid suffix was issued WORK, and
    // a session that ended DONE went through it.
    let issued = value("tessera_pow_challenges_issued_total").expect("issued");
    let done = value("tessera_tlslp_sessions_total{outcome=\"done\"}").unwrap_or(0);
    assert!(issued >= solved.unwrap_or(0) && issued >= done, "{text}");
    assert!(issued <= 2, "{text}");
}

/// Revoking a client's certificate and sending SIGHUP closes the session
/// it has in progress (long before its reply deadline), and says so in the
/// server's log file.
#[test]
fn sighup_with_a_new_crl_closes_a_revoked_clients_session() {
    use tessera_tls::tokio_rustls::{rustls::pki_types::ServerName, TlsConnector};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};

    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certificates");
    tessera_tls::DevPki::generate(&tessera_tls::PkiOptions::default())
        .unwrap()
        .write(&certs, false)
        .unwrap();
    let ca = tessera_tls::DevCa::load(&certs).unwrap();
    let options = tessera_tls::PkiOptions::default();
    let issue = |name: &str| {
        let issued = ca
            .issue(name, vec![], tessera_tls::Usage::Client, &options)
            .unwrap();
        let (cert, key) = (
            dir.path().join(format!("{name}.pem")),
            dir.path().join(format!("{name}.key")),
        );
        issued.write(&cert, &key, false).unwrap();
        (issued, cert, key)
    };
    let (alice, alice_cert, alice_key) = issue("alice");
    let (carol, _, _) = issue("carol");
    let crl = dir.path().join("crl.pem");
    ca.revoke(&crl, carol.der(), 30).unwrap();

    let state = dir.path().join("state");
    let server = Command::new(bin("tlslp-server"))
        .args(["--n_bits", "4", "--port", "0", "--other-timeout", "600"])
        .args(["--work-timeout", "600", "--crl", crl.to_str().unwrap()])
        .current_dir(dir.path())
        .env("XDG_STATE_HOME", &state)
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = KillOnDrop(server);
    let stderr = server.0.stderr.take().unwrap();
    let (lines, log) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut stdout = BufReader::new(server.0.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let port: u16 = first.trim().rsplit(':').next().unwrap().parse().unwrap();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let limit = std::time::Duration::from_secs(20);
    // Alice's session is in progress: the server's first line is read, its
    // reply deadline is ten minutes away.
    let mut session = runtime.block_on(async {
        let roots = tessera_tls::load_roots(&certs.join("ca_cert.pem")).unwrap();
        let identity = tessera_tls::Identity::load(&alice_cert, &alice_key).unwrap();
        let config =
            tessera_tls::client_config(tessera_tls::ServerAuth::Roots(roots), Some(&identity))
                .unwrap();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let tls = TlsConnector::from(config).connect(name, tcp).await.unwrap();
        let mut session = tokio::io::BufReader::new(tls);
        let mut line = String::new();
        tokio::time::timeout(limit, session.read_line(&mut line))
            .await
            .unwrap()
            .unwrap();
        assert!(!line.is_empty());
        session
    });

    ca.revoke(&crl, alice.der(), 30).unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let reloaded = loop {
        let line = log.recv_timeout(limit).expect("a reload line");
        if line.contains("reloaded:") {
            break line;
        }
    };
    assert!(
        reloaded.contains("2 revoked certificate(s) listed, 1 session(s) closed"),
        "{reloaded}"
    );
    runtime.block_on(async {
        let mut rest = Vec::new();
        let ended = tokio::time::timeout(limit, session.read_to_end(&mut rest)).await;
        assert!(ended.is_ok(), "the session is closed");
    });
    // The session's line is written as its task ends, maybe just after the
    // client saw the close: read the file until it is there (at most 20 s).
    let deadline = std::time::Instant::now() + limit;
    let file = loop {
        let file = std::fs::read_to_string(state.join("tlslp/logs/server.log")).unwrap();
        if file.contains("refused after a reload") || std::time::Instant::now() > deadline {
            break file;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(
        file.contains("Reloaded: 2 revoked certificate(s) listed, 1 session(s) closed"),
        "{file}"
    );
    assert!(file.contains("refused after a reload"), "{file}");
}
