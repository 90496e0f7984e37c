//! `tessera gemini serve` and `tessera gemini get` as scripts drive them: the
//! flags the issue names, exit statuses, a certificate generated once and kept.

use std::path::Path;
use std::process::{Command, Output};

use tessera_tls::{self_signed, Fingerprint, KeyType, Usage};

use crate::common;

fn serve(args: &[&str]) -> common::Server {
    common::start(&["gemini", "serve"], args)
}

pub(crate) fn get(db: &Path, url: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["gemini", "get", "--timeout", "20", url])
        .args(extra)
        .env("TESSERA_TOFU_DB", db)
        .output()
        .unwrap()
}

/// `tessera gemini put LOCAL URL EXTRA…` (a Titan upload).
fn put(db: &Path, local: &Path, url: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["gemini", "put", "--timeout", "20"])
        .arg(local)
        .arg(url)
        .args(extra)
        .env("TESSERA_TOFU_DB", db)
        .output()
        .unwrap()
}

/// `dir/capsule` with an index.gmi of `# Home`.
fn capsule(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("capsule");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("index.gmi"), "# Home\n").unwrap();
    root
}

/// The fingerprint of the certificate a server on loopback `port` presents now.
fn served_fingerprint(runtime: &tokio::runtime::Runtime, port: u16) -> Fingerprint {
    runtime.block_on(async {
        let limit = std::time::Duration::from_secs(20);
        tessera_tls::fetch_server_certificates("127.0.0.1", port, limit)
            .await
            .unwrap()[0]
            .fingerprint()
    })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn serve_and_get_with_certificate_paths_and_exit_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let root = dir.path().join("capsule");
    std::fs::create_dir_all(root.join("private")).unwrap();
    std::fs::create_dir_all(root.join("admin")).unwrap();
    std::fs::write(root.join("index.gmi"), "# Home\n").unwrap();
    std::fs::write(root.join("private/index.gmi"), "# Private\n").unwrap();
    std::fs::write(root.join("admin/index.gmi"), "# Admin\n").unwrap();
    for (name, file) in [("admin", "admin"), ("guest", "guest")] {
        self_signed(name, &[], Usage::Client, KeyType::default(), 30)
            .unwrap()
            .write(
                &dir.path().join(format!("{file}.crt")),
                &dir.path().join(format!("{file}.key")),
                false,
            )
            .unwrap();
    }
    let admin_der = tessera_tls::load_certificates(Path::new(&p("admin.crt"))).unwrap();
    let admin_fp = Fingerprint::of_der(&admin_der[0]).to_string();
    let allow = format!("/admin/={admin_fp}");
    let root_arg = root.to_str().unwrap().to_owned();
    let server = serve(&[
        "--root",
        &root_arg,
        "--cert-dir",
        &p("state"),
        "--require-cert",
        "/private/",
        "--allow-cert",
        &allow,
    ]);
    let db = dir.path().join("tofu.sqlite3");
    let base = format!("gemini://localhost:{}", server.addr.port());
    let admin = format!("{},{}", p("admin.crt"), p("admin.key"));
    let guest = format!("{},{}", p("guest.crt"), p("guest.key"));

    let home = get(&db, &format!("{base}/"), &[]);
    assert_eq!(
        (home.status.code(), text(&home.stdout).as_str()),
        (Some(0), "# Home\n")
    );

    let with_header = get(&db, &format!("{base}/"), &["--header"]);
    assert_eq!(
        text(&with_header.stdout),
        "20 text/gemini; charset=utf-8\n# Home\n"
    );
    let missing = get(&db, &format!("{base}/missing.gmi"), &["--header"]);
    assert_eq!(text(&missing.stdout), "51 Not found\n");
    let missing = get(&db, &format!("{base}/missing.gmi"), &[]);
    assert_eq!(missing.status.code(), Some(51));
    assert!(
        text(&missing.stderr).contains("51 Not found"),
        "{}",
        text(&missing.stderr)
    );

    assert_eq!(
        get(&db, &format!("{base}/private/"), &[]).status.code(),
        Some(60)
    );
    let (guest_cert, guest_key) = (p("guest.crt"), p("guest.key"));
    let private = get(
        &db,
        &format!("{base}/private"),
        &["--cert", &guest_cert, "--key", &guest_key],
    );
    assert_eq!(
        (private.status.code(), text(&private.stdout).as_str()),
        (Some(0), "# Private\n")
    );
    assert_eq!(
        get(&db, &format!("{base}/admin/"), &["--identity", &guest])
            .status
            .code(),
        Some(61)
    );
    let out = p("admin.gmi");
    let allowed = get(
        &db,
        &format!("{base}/admin/"),
        &["--identity", &admin, "--output", &out],
    );
    assert_eq!(allowed.status.code(), Some(0), "{}", text(&allowed.stderr));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "# Admin\n");

    // The generated certificate is kept: after a restart the pinned one still matches.
    drop(server);
    let again = serve(&["--root", &root_arg, "--cert-dir", &p("state")]);
    let url = format!("gemini://localhost:{}/", again.addr.port());
    let first = get(&db, &url, &[]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let served = tessera_tls::load_certificates(Path::new(&p("state/localhost.crt"))).unwrap();

    // Pin another certificate for that host:port: the client refuses, naming both.
    let other = Fingerprint::of_der(&admin_der[0]);
    let store = tessera_tls::TofuStore::open(&db).unwrap();
    let key = tessera_tls::tofu::HostKey::new("localhost", again.addr.port()).unwrap();
    store
        .trust(&key, other, None, time::OffsetDateTime::now_utc())
        .unwrap();
    let refused = get(&db, &url, &[]);
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("has changed"), "{stderr}");
    assert!(stderr.contains(&other.to_string()), "{stderr}");
    assert!(
        stderr.contains(&Fingerprint::of_der(&served[0]).to_string()),
        "{stderr}"
    );
}

#[test]
fn rate_limit_flag_answers_44() {
    let dir = tempfile::tempdir().unwrap();
    let root = capsule(dir.path());
    let server = serve(&[
        "--root",
        root.to_str().unwrap(),
        "--cert-dir",
        dir.path().join("state").to_str().unwrap(),
        "--rate-limit",
        "1/60",
    ]);
    let db = dir.path().join("tofu.sqlite3");
    let url = format!("gemini://localhost:{}/", server.addr.port());
    assert_eq!(get(&db, &url, &[]).status.code(), Some(0));
    let limited = get(&db, &url, &[]);
    assert_eq!(limited.status.code(), Some(44));
    let stderr = text(&limited.stderr);
    let seconds: u64 = stderr
        .split_whitespace()
        .nth(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!((50..=60).contains(&seconds), "{stderr}");
}

#[test]
fn metrics_show_the_traffic_sent() {
    let dir = tempfile::tempdir().unwrap();
    let root = capsule(dir.path());
    let server = serve(&[
        "--root",
        root.to_str().unwrap(),
        "--cert-dir",
        dir.path().join("state").to_str().unwrap(),
        "--rate-limit",
        "2/3600",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    let metrics = server.metrics.expect("a `metrics on` line");
    assert!(metrics.ip().is_loopback());
    let before = common::scrape_until(metrics, |_| true);
    assert!(
        !before.contains("tessera_gemini_requests_total{"),
        "{before}"
    );

    let db = dir.path().join("tofu.sqlite3");
    let base = format!("gemini://localhost:{}", server.addr.port());
    assert_eq!(get(&db, &format!("{base}/"), &[]).status.code(), Some(0));
    assert_eq!(
        get(&db, &format!("{base}/gone.gmi"), &[]).status.code(),
        Some(51)
    );
    assert_eq!(get(&db, &format!("{base}/"), &[]).status.code(), Some(44));
    // Bytes that are not TLS: a failed handshake, counted by its alert.
    let mut plain = std::net::TcpStream::connect(server.addr).unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    std::io::Write::write_all(&mut plain, b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let _ = std::io::Read::read_to_end(&mut plain, &mut Vec::new());

    let expected = [
        "tessera_gemini_requests_total{status=\"20\"} 1",
        "tessera_gemini_requests_total{status=\"51\"} 1",
        "tessera_gemini_requests_total{status=\"44\"} 1",
        "tessera_guard_denials_total{reason=\"rate_limited\"} 1",
        "tessera_connections_accepted_total 4",
        "tessera_connections_admitted_total 3",
        "tessera_connections_refused_total{reason=\"handshake_failed\"} 1",
        "tessera_tls_handshake_seconds_count 3",
        "tessera_gemini_request_seconds_count 3",
        "tessera_connections_open 0",
        "tessera_guard_tracked_clients 1",
    ];
    let text = common::scrape_until(metrics, |text| {
        expected.iter().all(|line| text.lines().any(|l| l == *line))
    });
    for line in expected {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    assert!(
        text.contains("tessera_tls_handshake_failures_total{alert=\""),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
}

/// A certificate for `localhost` written over `cert`/`key` (new files
/// renamed into place, as deployment tools do); returns its fingerprint.
fn new_certificate(cert: &Path, key: &Path) -> Fingerprint {
    let issued = self_signed("localhost", &[], Usage::Server, KeyType::default(), 30).unwrap();
    let (new_cert, new_key) = (cert.with_extension("new"), key.with_extension("new"));
    issued.write(&new_cert, &new_key, true).unwrap();
    std::fs::rename(&new_key, key).unwrap();
    std::fs::rename(&new_cert, cert).unwrap();
    Fingerprint::of_der(issued.der())
}

#[test]
fn sighup_swaps_the_certificate_for_new_connections_and_keeps_it_when_the_new_one_is_broken() {
    use tessera_tls::tokio_rustls::{rustls::pki_types::ServerName, TlsConnector};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().unwrap();
    let root = capsule(dir.path());
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let first = new_certificate(&cert, &key);
    let (server, log) = common::start_logged(
        &["gemini", "serve"],
        &[
            "--root",
            root.to_str().unwrap(),
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--cert-dir",
            dir.path().join("state").to_str().unwrap(),
            "--metrics-listen",
            "0",
        ],
    );
    let port = server.addr.port();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let limit = std::time::Duration::from_secs(20);
    let served = || served_fingerprint(&runtime, port);
    assert_eq!(served(), first);

    // A connection past its handshake, its request not sent yet.
    let mut open = runtime.block_on(async {
        let config = tessera_tls::dangerous::insecure_client_config("localhost", None).unwrap();
        let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        tokio::time::timeout(limit, TlsConnector::from(config).connect(name, tcp))
            .await
            .unwrap()
            .unwrap()
    });

    let second = new_certificate(&cert, &key);
    server.hang_up();
    common::wait_for_line(&log, "reloaded: 1 capsule(s)");
    assert_eq!(served(), second, "new connections get the new certificate");

    // The open connection completes, on the certificate it started with.
    let reply = runtime.block_on(async {
        let presented = open.get_ref().1.peer_certificates().unwrap()[0].clone();
        assert_eq!(Fingerprint::of_der(&presented), first);
        open.write_all(format!("gemini://localhost:{port}/\r\n").as_bytes())
            .await
            .unwrap();
        let mut reply = Vec::new();
        tokio::time::timeout(limit, open.read_to_end(&mut reply))
            .await
            .unwrap()
            .unwrap();
        String::from_utf8(reply).unwrap()
    });
    assert!(
        reply.starts_with("20 ") && reply.ends_with("# Home\n"),
        "{reply}"
    );

    // A broken certificate: the reload fails, says why, and changes nothing.
    std::fs::write(&cert, "not a certificate\n").unwrap();
    server.hang_up();
    let failed = common::wait_for_line(&log, "reload failed");
    assert!(failed.contains("cert.pem"), "{failed}");
    assert_eq!(served(), second, "the running certificate stays");
    let text = common::scrape_until(server.metrics.expect("metrics"), |_| true);
    for line in [
        "tessera_reloads_total{result=\"ok\"} 1",
        "tessera_reloads_total{result=\"failed\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
}

/// With --watch a certificate renamed into place is served without a signal.
#[test]
fn watch_reloads_when_the_certificate_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let root = capsule(dir.path());
    let tls = dir.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let (cert, key) = (tls.join("cert.pem"), tls.join("key.pem"));
    let first = new_certificate(&cert, &key);
    let (server, log) = common::start_logged(
        &["gemini", "serve"],
        &[
            "--root",
            root.to_str().unwrap(),
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--cert-dir",
            dir.path().join("state").to_str().unwrap(),
            "--watch",
        ],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let served = || served_fingerprint(&runtime, server.addr.port());
    assert_eq!(served(), first);
    let second = new_certificate(&cert, &key);
    // The temporary files written first may start a reload of their own
    // (on a slow machine, before the renames): wait for the one that serves
    // the new certificate; `wait_for_line` fails after 20 s without one.
    loop {
        common::wait_for_line(&log, "reloaded: 1 capsule(s)");
        if served() == second {
            break;
        }
    }
}

/// `--log-file`: access lines in a 0600 file, a new one after logrotate
/// moved it and sent SIGHUP.
#[test]
fn the_log_file_is_private_and_reopened_on_sighup() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let root = capsule(dir.path());
    let log = dir.path().join("access.log");
    let server = serve(&[
        "--root",
        root.to_str().unwrap(),
        "--cert-dir",
        dir.path().join("state").to_str().unwrap(),
        "--log-file",
        log.to_str().unwrap(),
    ]);
    let mode = std::fs::metadata(&log).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let db = dir.path().join("tofu.sqlite3");
    let url = |path: &str| format!("gemini://localhost:{}/{path}", server.addr.port());
    // The server writes a request's line just after its client is done.
    let line_for = |file: &Path, path: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            if text.contains(&format!("path={path}")) || std::time::Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    assert_eq!(get(&db, &url(""), &[]).status.code(), Some(0));
    let first = line_for(&log, "/");
    assert!(
        first.contains("tessera::access") && first.contains("status=20"),
        "{first}"
    );

    let rotated = dir.path().join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    server.hang_up();
    // Once the server has reopened the file, a request's line lands in it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !log.exists() {
        assert!(std::time::Instant::now() < deadline, "no new log file");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(get(&db, &url("gone.gmi"), &[]).status.code(), Some(51));
    let second = line_for(&log, "/gone.gmi");
    assert!(second.contains("status=51"), "{second}");
    assert!(!std::fs::read_to_string(&rotated)
        .unwrap()
        .contains("gone.gmi"));
}

/// CGI scripts written by the test: the environment they see (and do not
/// see), PATH_INFO and the query, a client certificate, and the limits on a
/// script that hangs, one that floods, one with a bad header.
#[test]
fn cgi_scripts_answer_with_their_environment_and_limits() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let root = capsule(dir.path());
    let scripts = dir.path().join("cgi");
    std::fs::create_dir_all(&scripts).unwrap();
    for (name, body) in [
        (
            "env",
            "printf '20 text/plain\\r\\n'\nenv | sort\necho oops >&2\n",
        ),
        // Starts a child of its own, in the background, then hangs.
        (
            "slow",
            "sleep 61 &\necho $! > background.pid\nexec sleep 60\n",
        ),
        (
            "flood",
            "printf '20 text/plain\\r\\n'\nexec head -c 10000000 /dev/zero\n",
        ),
        ("bad", "echo hello\n"),
        (
            "down",
            "printf '50 Down for maintenance\\r\\nignored body'\n",
        ),
    ] {
        let path = scripts.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(scripts.join("plain.txt"), "not executable").unwrap();
    let cgi = format!("/app/={}", scripts.display());
    let (server, log) = common::start_logged(
        &["gemini", "serve"],
        &[
            "--root",
            root.to_str().unwrap(),
            "--cert-dir",
            dir.path().join("state").to_str().unwrap(),
            "--cgi",
            &cgi,
            "--cgi-timeout",
            "1",
        ],
    );
    self_signed("ada", &[], Usage::Client, KeyType::default(), 30)
        .unwrap()
        .write(
            &dir.path().join("ada.crt"),
            &dir.path().join("ada.key"),
            false,
        )
        .unwrap();
    let db = dir.path().join("tofu.sqlite3");
    let port = server.addr.port();
    let url = |path: &str| format!("gemini://localhost:{port}{path}");

    let env = get(&db, &url("/app/env/extra/path?a=1"), &["--header"]);
    assert_eq!(env.status.code(), Some(0), "{}", text(&env.stderr));
    let env = text(&env.stdout);
    for line in [
        "20 text/plain",
        "GATEWAY_INTERFACE=CGI/1.1",
        "SERVER_PROTOCOL=GEMINI",
        "SERVER_NAME=localhost",
        &format!("SERVER_PORT={port}"),
        &format!("GEMINI_URL=gemini://localhost:{port}/app/env/extra/path?a=1"),
        "SCRIPT_NAME=/app/env",
        "PATH_INFO=/extra/path",
        "QUERY_STRING=a=1",
    ] {
        assert!(env.lines().any(|l| l == line), "{line} in\n{env}");
    }
    let remote = env
        .lines()
        .find_map(|l| l.strip_prefix("REMOTE_HOST="))
        .unwrap_or_else(|| panic!("{env}"));
    assert!(
        remote.len() == 16 && remote.bytes().all(|b| b.is_ascii_hexdigit()),
        "{env}"
    );
    // Nothing of the server's environment: no HOME, none of cargo's
    // variables, no address, no certificate.
    for absent in ["HOME=", "CARGO", "REMOTE_ADDR=", "AUTH_TYPE="] {
        assert!(!env.contains(absent), "{absent} in\n{env}");
    }
    common::wait_for_line(&log, "oops");

    let ada = get(
        &db,
        &url("/app/env"),
        &[
            "--cert",
            dir.path().join("ada.crt").to_str().unwrap(),
            "--key",
            dir.path().join("ada.key").to_str().unwrap(),
        ],
    );
    let ada = text(&ada.stdout);
    let der = tessera_tls::load_certificates(&dir.path().join("ada.crt")).unwrap();
    let fingerprint = Fingerprint::of_der(&der[0]);
    for line in [
        "AUTH_TYPE=Certificate".to_owned(),
        format!("TLS_CLIENT_HASH={fingerprint}"),
        "REMOTE_USER=ada".to_owned(),
    ] {
        assert!(ada.lines().any(|l| l == line), "{line} in\n{ada}");
    }

    let status = |path: &str| {
        let out = get(&db, &url(path), &["--header"]);
        text(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(status("/app/slow"), "42 CGI script timed out");
    // Its background child went with it (the script's process group).
    let background = std::fs::read_to_string(scripts.join("background.pid")).unwrap();
    let stat = format!("/proc/{}/stat", background.trim());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        // Gone, or a zombie waiting for its new parent to reap it.
        let state = std::fs::read_to_string(&stat).ok();
        let alive = state.is_some_and(|s| {
            let after = s.rsplit(')').next().unwrap_or("");
            !after.trim_start().starts_with(['Z', 'X'])
        });
        if !alive {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{background} still runs"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(status("/app/flood"), "42 CGI output too large");
    assert_eq!(status("/app/bad"), "42 CGI error");
    assert_eq!(status("/app/down"), "50 Down for maintenance");
    assert_eq!(status("/app/plain.txt"), "51 Not found");
    assert_eq!(status("/app/missing"), "51 Not found");
    assert_eq!(status("/app/"), "51 Not found");
    // Without --titan-to-cgi no script is sent an upload.
    let note = dir.path().join("note.txt");
    std::fs::write(&note, "hello").unwrap();
    let upload = put(&db, &note, &url("/app/env").replace("gemini", "titan"), &[]);
    assert_eq!(upload.status.code(), Some(59), "{}", text(&upload.stderr));
    // The capsule still serves the rest.
    assert_eq!(status("/"), "20 text/gemini; charset=utf-8");
}

/// A minimal SCGI application on loopback, in a thread: it answers each
/// request with the variables it received, one `NAME=VALUE` per line, and
/// `BODY=` and the body.
fn scgi_app() -> std::net::SocketAddr {
    use std::io::{BufRead, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = std::io::BufReader::new(stream);
            let mut length = Vec::new();
            if reader.read_until(b':', &mut length).is_err() {
                continue;
            }
            let length: usize = std::str::from_utf8(&length[..length.len() - 1])
                .unwrap()
                .parse()
                .unwrap();
            let mut fields = vec![0; length + 1];
            reader.read_exact(&mut fields).unwrap();
            let parts: Vec<&[u8]> = fields[..length].split(|&b| b == 0).collect();
            let mut reply = b"20 text/plain\r\n".to_vec();
            let mut content_length = 0;
            for pair in parts.chunks(2).filter(|pair| pair.len() == 2) {
                if pair[0] == b"CONTENT_LENGTH" {
                    content_length = std::str::from_utf8(pair[1]).unwrap().parse().unwrap();
                }
                reply.extend_from_slice(pair[0]);
                reply.push(b'=');
                reply.extend_from_slice(pair[1]);
                reply.push(b'\n');
            }
            // The body (a Titan upload) follows the header.
            let mut body = vec![0; content_length];
            reader.read_exact(&mut body).unwrap();
            reply.extend_from_slice(b"BODY=");
            reply.extend_from_slice(&body);
            let mut stream = reader.into_inner();
            let _ = stream.write_all(&reply);
        }
    });
    address
}

#[test]
fn scgi_applications_get_the_cgi_variables_and_answer() {
    let dir = tempfile::tempdir().unwrap();
    let root = capsule(dir.path());
    let app = format!("/app/={}", scgi_app());
    // A port nobody listens on: the application is down.
    let (_refusing, down) = common::refusing_port();
    let gone = format!("/down/={down}");
    let server = serve(&[
        "--root",
        root.to_str().unwrap(),
        "--cert-dir",
        dir.path().join("state").to_str().unwrap(),
        "--scgi",
        &app,
        "--scgi",
        &gone,
    ]);
    let db = dir.path().join("tofu.sqlite3");
    let port = server.addr.port();
    let out = get(
        &db,
        &format!("gemini://localhost:{port}/app/items/7?q=x"),
        &["--header"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let body = text(&out.stdout);
    for line in [
        "20 text/plain",
        "CONTENT_LENGTH=0",
        "SCGI=1",
        "SCRIPT_NAME=/app",
        "PATH_INFO=/items/7",
        "QUERY_STRING=q=x",
        "SERVER_PROTOCOL=GEMINI",
    ] {
        assert!(body.lines().any(|l| l == line), "{line} in\n{body}");
    }
    let down = get(
        &db,
        &format!("gemini://localhost:{port}/down/x"),
        &["--header"],
    );
    assert_eq!(text(&down.stdout), "43 SCGI application unavailable\n");
}

/// With `--titan-to-cgi`, a Titan upload under a CGI or SCGI prefix is
/// received whole and handed over: the script reads it on stdin, the SCGI
/// application after its header; their answers are the replies. Uploads are
/// still authorised and capped.
#[test]
fn titan_uploads_are_handed_to_a_cgi_script_or_an_scgi_application() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = capsule(dir.path());
    let scripts = dir.path().join("cgi");
    std::fs::create_dir_all(&scripts).unwrap();
    let wiki = scripts.join("wiki");
    std::fs::write(
        &wiki,
        "#!/bin/sh\nprintf '20 text/plain\\r\\n'\n\
         for name in SERVER_PROTOCOL CONTENT_LENGTH CONTENT_TYPE PATH_INFO; do\n\
         eval \"echo $name=\\$$name\"\ndone\nprintf 'BODY='\ncat\n",
    )
    .unwrap();
    std::fs::set_permissions(&wiki, std::fs::Permissions::from_mode(0o755)).unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "upload-secret\n").unwrap();
    let cgi = format!("/w/={}", scripts.display());
    let scgi = format!("/app/={}", scgi_app());
    let server = serve(&[
        "--root",
        root.to_str().unwrap(),
        "--cert-dir",
        dir.path().join("state").to_str().unwrap(),
        "--cgi",
        &cgi,
        "--scgi",
        &scgi,
        "--titan-to-cgi",
        "--titan-token-file",
        token.to_str().unwrap(),
        "--titan-max-size",
        "1000",
    ]);
    let db = dir.path().join("tofu.sqlite3");
    let url = |path: &str| format!("titan://localhost:{}{path}", server.addr.port());
    let page = dir.path().join("page.txt");
    std::fs::write(&page, "= a new page =").unwrap();
    let with_token = [
        "--token-file",
        token.to_str().unwrap(),
        "--mime",
        "text/plain",
    ];

    let by_script = put(&db, &page, &url("/w/wiki/Home"), &with_token);
    assert_eq!(
        by_script.status.code(),
        Some(0),
        "{}",
        text(&by_script.stderr)
    );
    assert_eq!(
        text(&by_script.stdout),
        "SERVER_PROTOCOL=TITAN\nCONTENT_LENGTH=14\nCONTENT_TYPE=text/plain\n\
         PATH_INFO=/Home\nBODY== a new page ="
    );
    let by_app = put(&db, &page, &url("/app/items/7"), &with_token);
    assert_eq!(by_app.status.code(), Some(0), "{}", text(&by_app.stderr));
    let reply = text(&by_app.stdout);
    assert!(reply.starts_with("CONTENT_LENGTH=14\nSCGI=1\n"), "{reply}");
    for line in [
        "SERVER_PROTOCOL=TITAN",
        "CONTENT_TYPE=text/plain",
        "PATH_INFO=/items/7",
    ] {
        assert!(reply.lines().any(|l| l == line), "{line} in\n{reply}");
    }
    assert!(reply.ends_with("\nBODY== a new page ="), "{reply}");

    // Refused before any handler runs: no token (no certificate rule covers
    // the path either), over the cap, a path no handler answers.
    let refused = put(&db, &page, &url("/w/wiki/Home"), &[]);
    assert_eq!(refused.status.code(), Some(61), "{}", text(&refused.stderr));
    let big = dir.path().join("big.txt");
    std::fs::write(&big, "x".repeat(1001)).unwrap();
    assert_eq!(
        put(&db, &big, &url("/w/wiki/Home"), &with_token)
            .status
            .code(),
        Some(59)
    );
    assert_eq!(
        put(&db, &page, &url("/elsewhere"), &with_token)
            .status
            .code(),
        Some(59)
    );
}

/// `--proxy-pass` forwards a prefix to a second `tessera gemini serve`: its
/// files come through as it sends them, its redirects point back through the
/// proxy, the upstream is pinned, and an upstream that is down is a `43`.
#[test]
fn proxy_pass_forwards_a_prefix_to_another_capsule() {
    let dir = tempfile::tempdir().unwrap();
    let upstream_root = dir.path().join("upstream");
    std::fs::create_dir_all(upstream_root.join("docs/sub")).unwrap();
    std::fs::write(upstream_root.join("docs/page.gmi"), "# Upstream page\n").unwrap();
    std::fs::write(upstream_root.join("docs/sub/index.gmi"), "# Sub\n").unwrap();
    let upstream = serve(&[
        "--root",
        upstream_root.to_str().unwrap(),
        "--cert-dir",
        dir.path().join("upstream-state").to_str().unwrap(),
    ]);
    let (_refusing, down) = common::refusing_port();
    let root = capsule(dir.path());
    let pins = dir.path().join("proxy-pins.sqlite3");
    let mirror = format!("/mirror/=gemini://localhost:{}/docs/", upstream.addr.port());
    let gone = format!("/gone/=gemini://localhost:{}/", down.port());
    let server = serve(&[
        "--root",
        root.to_str().unwrap(),
        "--cert-dir",
        dir.path().join("state").to_str().unwrap(),
        "--proxy-pass",
        &mirror,
        "--proxy-pass",
        &gone,
        "--proxy-db",
        pins.to_str().unwrap(),
    ]);
    let db = dir.path().join("tofu.sqlite3");
    let base = format!("gemini://localhost:{}", server.addr.port());
    let page = get(&db, &format!("{base}/mirror/page.gmi?x=1"), &["--header"]);
    assert_eq!(page.status.code(), Some(0), "{}", text(&page.stderr));
    // Header and body as the upstream sends them.
    let direct = format!("gemini://localhost:{}/docs/page.gmi", upstream.addr.port());
    let direct = get(&db, &direct, &["--header"]);
    assert_eq!(text(&page.stdout), text(&direct.stdout));
    assert!(text(&page.stdout).ends_with("\n# Upstream page\n"));
    // The upstream's redirect (a directory without its slash) comes back
    // pointing under our prefix, and the client follows it through us.
    let sub = get(&db, &format!("{base}/mirror/sub"), &["--header"]);
    assert_eq!(sub.status.code(), Some(0), "{}", text(&sub.stderr));
    assert!(
        text(&sub.stdout).ends_with("\n# Sub\n"),
        "{}",
        text(&sub.stdout)
    );
    // Our own files are still ours.
    assert_eq!(text(&get(&db, &format!("{base}/"), &[]).stdout), "# Home\n");
    // The upstream was pinned on first use, in the proxy's own store.
    let pinned = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["tofu", "list", "--db", pins.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        text(&pinned.stdout).contains(&upstream.addr.port().to_string()),
        "{}",
        text(&pinned.stdout)
    );
    let down = get(&db, &format!("{base}/gone/x"), &["--header"]);
    assert_eq!(text(&down.stdout), "43 Proxy error\n");
}

/// With `--proxy-ca`, an upstream is verified against a CA instead of
/// pinned: one whose certificate the CA issued is served, one checked
/// against another CA is a `43`.
#[test]
fn proxy_pass_verifies_an_upstream_against_a_ca() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    for pki in ["pki", "other"] {
        let made = common::tessera(&["certs", "dev", "--out", &p(pki)]);
        assert!(made.status.success(), "{}", text(&made.stderr));
    }
    let upstream_root = dir.path().join("upstream");
    std::fs::create_dir_all(&upstream_root).unwrap();
    std::fs::write(upstream_root.join("index.gmi"), "# Behind a CA\n").unwrap();
    let upstream = serve(&[
        "--root",
        upstream_root.to_str().unwrap(),
        "--cert",
        &p("pki/server-cert.pem"),
        "--key",
        &p("pki/server-key.pem"),
        "--cert-dir",
        &p("upstream-state"),
    ]);
    let root = capsule(dir.path());
    let mirror = format!("/mirror/=gemini://localhost:{}/", upstream.addr.port());
    let proxy = |ca: &str, state: &str| {
        serve(&[
            "--root",
            root.to_str().unwrap(),
            "--cert-dir",
            &p(state),
            "--proxy-pass",
            &mirror,
            "--proxy-ca",
            &p(ca),
        ])
    };
    let db = dir.path().join("tofu.sqlite3");
    let trusted = proxy("pki/ca_cert.pem", "trusted-state");
    let page = get(
        &db,
        &format!("gemini://localhost:{}/mirror/", trusted.addr.port()),
        &[],
    );
    assert_eq!(
        (page.status.code(), text(&page.stdout).as_str()),
        (Some(0), "# Behind a CA\n"),
        "{}",
        text(&page.stderr)
    );
    let wrong = proxy("other/ca_cert.pem", "wrong-state");
    let refused = get(
        &db,
        &format!("gemini://localhost:{}/mirror/", wrong.addr.port()),
        &["--header"],
    );
    assert_eq!(text(&refused.stdout), "43 Proxy error\n");
}

/// Titan uploads through `tessera gemini put`: stored with a listed
/// certificate or the token, refused without either, with another
/// certificate, over the size cap or outside the upload prefix.
#[test]
fn titan_uploads_are_authorised_capped_and_kept_inside_their_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = capsule(dir.path());
    let uploads = root.join("files");
    std::fs::create_dir_all(&uploads).unwrap();
    for name in ["ada", "eve"] {
        self_signed(name, &[], Usage::Client, KeyType::default(), 30)
            .unwrap()
            .write(
                &dir.path().join(format!("{name}.crt")),
                &dir.path().join(format!("{name}.key")),
                false,
            )
            .unwrap();
    }
    let ada = tessera_tls::load_certificates(&dir.path().join("ada.crt")).unwrap();
    let allow = format!("/files/={}", Fingerprint::of_der(&ada[0]));
    let token = dir.path().join("token");
    std::fs::write(&token, "upload-secret\n").unwrap();
    let titan = format!("/files/={}", uploads.display());
    let server = serve(&[
        "--root",
        root.to_str().unwrap(),
        "--cert-dir",
        dir.path().join("state").to_str().unwrap(),
        "--allow-cert",
        &allow,
        "--titan",
        &titan,
        "--titan-token-file",
        token.to_str().unwrap(),
        "--titan-max-size",
        "1000",
    ]);
    let port = server.addr.port();
    let db = dir.path().join("tofu.sqlite3");
    let file = |name: &str, bytes: usize| {
        let path = dir.path().join(name);
        std::fs::write(&path, "x".repeat(bytes)).unwrap();
        path
    };
    let put = |local: &Path, path: &str, extra: &[&str]| {
        put(
            &db,
            local,
            &format!("titan://localhost:{port}{path}"),
            extra,
        )
    };
    let identity = |name: &str| {
        [
            "--cert".to_owned(),
            dir.path().join(format!("{name}.crt")).display().to_string(),
            "--key".to_owned(),
            dir.path().join(format!("{name}.key")).display().to_string(),
        ]
    };
    let ada_args = identity("ada");
    let ada_args: Vec<&str> = ada_args.iter().map(String::as_str).collect();
    let eve_args = identity("eve");
    let eve_args: Vec<&str> = eve_args.iter().map(String::as_str).collect();

    // Ada's certificate is listed for /files/: stored, and served.
    let note = file("note.gmi", 100);
    let stored = put(&note, "/files/note.gmi", &ada_args);
    assert_eq!(stored.status.code(), Some(0), "{}", text(&stored.stderr));
    let url = format!("gemini://localhost:{port}/files/note.gmi");
    assert_eq!(text(&stored.stdout), format!("{url}\n"));
    assert_eq!(
        std::fs::read(uploads.join("note.gmi")).unwrap(),
        vec![b'x'; 100]
    );
    // Reading below /files/ needs Ada's certificate too (the same rule).
    assert_eq!(text(&get(&db, &url, &ada_args).stdout), "x".repeat(100));
    // The token alone, into a new subdirectory.
    let token_arg = ["--token-file", token.to_str().unwrap()];
    let by_token = put(&note, "/files/sub/by-token.gmi", &token_arg);
    assert_eq!(
        by_token.status.code(),
        Some(0),
        "{}",
        text(&by_token.stderr)
    );
    assert!(uploads.join("sub/by-token.gmi").is_file());

    // Refused: no certificate, another one, too large, outside the prefix.
    assert_eq!(put(&note, "/files/a.gmi", &[]).status.code(), Some(60));
    assert_eq!(
        put(&note, "/files/a.gmi", &eve_args).status.code(),
        Some(61)
    );
    let big = file("big.bin", 1001);
    assert_eq!(
        put(&big, "/files/big.bin", &ada_args).status.code(),
        Some(59)
    );
    assert_eq!(
        put(&note, "/elsewhere.gmi", &ada_args).status.code(),
        Some(59)
    );
    assert_eq!(
        put(&note, "/files/.hidden", &ada_args).status.code(),
        Some(59)
    );
    assert!(!uploads.join("a.gmi").exists() && !uploads.join("big.bin").exists());
    assert!(!root.join("elsewhere.gmi").exists());
    // Nothing half-written is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&uploads)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().ends_with(".upload"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// `--meta-files`: agate's `.meta` overrides; without the flag they are ignored.
#[test]
fn meta_files_override_types_and_statuses_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let root = capsule(dir.path());
    std::fs::write(root.join("gone.gmi"), "old").unwrap();
    std::fs::write(root.join("notes.txt"), "notes").unwrap();
    std::fs::write(
        root.join(".meta"),
        "index.gmi: ;lang=de\ngone.gmi: 52 This page is gone\n*.txt: text/plain; charset=latin1\n",
    )
    .unwrap();
    let db = dir.path().join("tofu.sqlite3");
    let state = dir.path().join("state");
    let first_line = |server: &common::Server, path: &str| {
        let url = format!("gemini://localhost:{}{path}", server.addr.port());
        let out = get(&db, &url, &["--header"]);
        text(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let args = [
        "--root",
        root.to_str().unwrap(),
        "--cert-dir",
        state.to_str().unwrap(),
    ];
    let with = serve(&[&args[..], &["--meta-files"]].concat());
    assert_eq!(
        first_line(&with, "/"),
        "20 text/gemini; charset=utf-8;lang=de"
    );
    assert_eq!(first_line(&with, "/gone.gmi"), "52 This page is gone");
    assert_eq!(
        first_line(&with, "/notes.txt"),
        "20 text/plain; charset=latin1"
    );
    assert_eq!(first_line(&with, "/.meta"), "51 Not found");
    drop(with);
    let without = serve(&args);
    assert_eq!(
        first_line(&without, "/gone.gmi"),
        "20 text/gemini; charset=utf-8"
    );
    assert_eq!(first_line(&without, "/notes.txt"), "20 text/plain");
}

/// `[[host.rule]]` in the capsule file: a pattern redirect the client
/// follows, a `52` for a file that is gone (or never existed), a language
/// for a directory, and a bad rule refused at start with its path.
#[test]
fn path_rules_in_the_capsule_file_redirect_retire_and_retype() {
    let dir = tempfile::tempdir().unwrap();
    let root = capsule(dir.path());
    std::fs::create_dir_all(root.join("new")).unwrap();
    std::fs::create_dir_all(root.join("fr")).unwrap();
    std::fs::write(root.join("new/page.gmi"), "# Moved here\n").unwrap();
    std::fs::write(root.join("fr/index.gmi"), "# Bonjour\n").unwrap();
    let config = dir.path().join("capsule.toml");
    let write_config = |rules: &str| {
        std::fs::write(
            &config,
            format!(
                "[[host]]\nname = \"localhost\"\nroot = {:?}\n{rules}",
                root.to_str().unwrap()
            ),
        )
        .unwrap();
    };
    write_config(
        "[[host.rule]]\npath = \"/old/*\"\nredirect = \"/new/$1\"\n\
         [[host.rule]]\npath = \"/gone.gmi\"\nstatus = 52\nmeta = \"Gone for good\"\n\
         [[host.rule]]\npath = \"/fr/*\"\nlang = \"fr\"\n",
    );
    let state = dir.path().join("state");
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--cert-dir",
        state.to_str().unwrap(),
    ];
    let server = serve(&args);
    let db = dir.path().join("tofu.sqlite3");
    let base = format!("gemini://localhost:{}", server.addr.port());
    let moved = get(&db, &format!("{base}/old/page.gmi"), &["--header"]);
    assert_eq!(moved.status.code(), Some(0), "{}", text(&moved.stderr));
    assert_eq!(
        text(&moved.stdout),
        "20 text/gemini; charset=utf-8\n# Moved here\n"
    );
    let gone = get(&db, &format!("{base}/gone.gmi"), &["--header"]);
    assert_eq!(
        (gone.status.code(), text(&gone.stdout)),
        (Some(52), "52 Gone for good\n".to_owned())
    );
    let french = get(&db, &format!("{base}/fr/"), &["--header"]);
    assert_eq!(
        text(&french.stdout),
        "20 text/gemini; charset=utf-8; lang=fr\n# Bonjour\n"
    );
    drop(server);

    write_config("[[host.rule]]\npath = \"/x/../y\"\nstatus = 51\n");
    let refused = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["gemini", "serve", "--check-config"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("\"/x/../y\""),
        "{}",
        text(&refused.stderr)
    );
}

#[test]
fn help_names_every_flag_scripts_rely_on() {
    let help = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["gemini", "serve", "--help"])
        .output()
        .unwrap();
    let help = text(&help.stdout);
    for flag in [
        "--root",
        "--listen",
        "--hostname",
        "--cert",
        "--key",
        "--require-cert",
        "--allow-cert",
        "--rate-limit",
        "--config",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["gemini", "serve", "--rate-limit", "ten", "--root", "."])
        .output()
        .unwrap();
    // A malformed flag value is a usage error, caught before anything starts.
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("N/SECONDS"));
}

/// Sends one request line over TLS without a client certificate (SNI `host`)
/// and returns all the server sent, every wait bounded.
pub(crate) fn anonymous_request(addr: std::net::SocketAddr, host: &str, line: &str) -> String {
    use std::io::{Read, Write};
    let config = tessera_tls::dangerous::insecure_client_config("127.0.0.1", None).unwrap();
    let name = tessera_tls::server_name(host).unwrap();
    let connection = rustls::ClientConnection::new(config, name).unwrap();
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    let wait = Some(std::time::Duration::from_secs(20));
    tcp.set_read_timeout(wait).unwrap();
    tcp.set_write_timeout(wait).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    tls.write_all(format!("{line}\r\n").as_bytes()).unwrap();
    let mut out = Vec::new();
    tls.read_to_end(&mut out).unwrap();
    text(&out)
}

/// The reported hole: `%%37%30rivate` reached `--require-cert /private/`
/// without a certificate. Through the command line, with `--root` and with
/// `[[host]]` tables, for `--require-cert` and `--allow-cert` prefixes.
#[test]
fn regression_double_percent_decoding_through_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    for root in ["capsule", "second"] {
        for sub in ["private/deep", "club"] {
            let sub = dir.path().join(root).join(sub);
            std::fs::create_dir_all(&sub).unwrap();
            std::fs::write(sub.join("index.gmi"), "# Protected\n").unwrap();
        }
    }
    let club = format!("/club/=sha256:{}", "ab".repeat(32));
    let flags = ["--require-cert", "/private/", "--allow-cert", club.as_str()];
    let config = dir.path().join("gemini.toml");
    std::fs::write(
        &config,
        format!(
            "[[host]]\nname = \"localhost\"\nroot = {:?}\n\n[[host]]\nname = \"second.test\"\nroot = {:?}\n",
            p("capsule"),
            p("second")
        ),
    )
    .unwrap();
    let state = p("state");
    let root = p("capsule");
    let by_root: Vec<&str> = [
        &["--root", root.as_str(), "--cert-dir", state.as_str()][..],
        &flags,
    ]
    .concat();
    let config_arg = config.to_str().unwrap();
    let by_config: Vec<&str> = [
        &["--config", config_arg, "--cert-dir", state.as_str()][..],
        &flags,
    ]
    .concat();
    for (args, hosts) in [
        (by_root, &["localhost"][..]),
        (by_config, &["localhost", "second.test"][..]),
    ] {
        let server = serve(&args);
        let port = server.addr.port();
        for host in hosts {
            let url = |path: &str| format!("gemini://{host}:{port}{path}");
            for path in ["/private/", "/%70rivate/", "/%70riv%61te/deep/"] {
                let reply = anonymous_request(server.addr, host, &url(path));
                assert_eq!(reply, "60 Client certificate required\r\n", "{host}{path}");
            }
            for path in ["/club/", "/%63lub/"] {
                let reply = anonymous_request(server.addr, host, &url(path));
                assert_eq!(reply, "60 Client certificate required\r\n", "{host}{path}");
            }
            for path in [
                "/%2e%2e/private/deep/",
                "/a/%2E./%70riv%61te/",
                "/x/.%2e/club/",
                "/%2570rivate/../private/",
            ] {
                let reply = anonymous_request(server.addr, host, &url(path));
                assert_eq!(
                    reply, "59 Path must not contain dot segments\r\n",
                    "{host}{path}"
                );
            }
            for path in [
                "/%%37%30rivate/",
                "/%2570rivate/%%37%30rivate/deep/",
                "/%%32%65%%32%65/private/",
                "/x/%%32%65%%32%65/private/",
                "/%%36%33lub/",
            ] {
                let reply = anonymous_request(server.addr, host, &url(path));
                assert_eq!(
                    reply, "59 Invalid percent-escape in path\r\n",
                    "{host}{path}"
                );
            }
            // An escaped percent sign is a literal one: a name that does not exist.
            let reply = anonymous_request(server.addr, host, &url("/%2570rivate/"));
            assert_eq!(reply, "51 Not found\r\n", "{host}");
        }
    }
}

/// Clients that ask for a large file and read no more than its status must
/// not make the server hold the file (or its encrypted copy) in memory: it
/// streams in small chunks, and a peer that stops reading stops the stream.
#[test]
fn peers_that_never_read_a_large_response_hold_bounded_memory() {
    use std::io::{Read, Write};

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("capsule");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("big.bin"), vec![b'x'; 16 * 1024 * 1024]).unwrap();
    std::fs::write(root.join("index.gmi"), "# Home\n").unwrap();
    let state = dir.path().join("state");
    let server = serve(&[
        "--root",
        root.to_str().unwrap(),
        "--cert-dir",
        state.to_str().unwrap(),
    ]);
    let home = anonymous_request(server.addr, "localhost", "gemini://localhost/");
    assert!(home.starts_with("20 "), "{home}");
    let (baseline, _) = server.memory_kib();

    let config = tessera_tls::dangerous::insecure_client_config("127.0.0.1", None).unwrap();
    let silent: Vec<_> = (0..8)
        .map(|_| {
            let name = tessera_tls::server_name("localhost").unwrap();
            let connection = rustls::ClientConnection::new(config.clone(), name).unwrap();
            let tcp = std::net::TcpStream::connect(server.addr).unwrap();
            let wait = Some(std::time::Duration::from_secs(20));
            tcp.set_read_timeout(wait).unwrap();
            tcp.set_write_timeout(wait).unwrap();
            let mut tls = rustls::StreamOwned::new(connection, tcp);
            tls.write_all(b"gemini://localhost/big.bin\r\n").unwrap();
            // The response has started; nothing more is read.
            let mut status = [0u8; 3];
            tls.read_exact(&mut status).unwrap();
            assert_eq!(&status, b"20 ");
            tls
        })
        .collect();
    // The server has written what the sockets take and waits; others are served.
    let home = anonymous_request(server.addr, "localhost", "gemini://localhost/");
    assert!(home.starts_with("20 "), "{home}");
    let (_, peak) = server.memory_kib();
    assert!(
        peak.saturating_sub(baseline) < 16 * 1024,
        "8 unread 16 MiB responses: peak {peak} KiB over a {baseline} KiB baseline"
    );
    drop(silent);
    let home = anonymous_request(server.addr, "localhost", "gemini://localhost/");
    assert!(home.starts_with("20 "), "{home}");
}
