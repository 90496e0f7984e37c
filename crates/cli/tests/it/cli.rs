//! The `tessera` binary as a user runs it: exit codes, stdout, one-line errors.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use tessera_tls::{server_config, ClientAuth, DevPki, Fingerprint, PkiOptions};
use tokio::io::AsyncWriteExt;

fn tessera(args: &[&str], home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("HOME", home)
        .env_remove("TESSERA_TOFU_DB")
        .env_remove("TESSERA_STORE")
        .env_remove("TESSERA_LOG")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Names that no client could match were written into certificates: an empty
/// name, one with spaces or punctuation. They are usage errors now, and
/// nothing is written.
#[test]
fn certificate_names_that_are_not_dns_names_or_addresses_are_usage_errors() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("pki");
    let out = out.to_str().unwrap();
    for args in [
        &["certs", "dev", "--out", out, "--name", "bad name!"][..],
        &["certs", "dev", "--out", out, "--name", ""],
        &["certs", "self-signed", "--out", out, "--cn", ""],
        &[
            "certs",
            "self-signed",
            "--out",
            out,
            "--cn",
            "ok.example",
            "--name",
            "a b",
        ],
    ] {
        let refused = tessera(args, home.path());
        assert_eq!(refused.status.code(), Some(2), "{args:?}");
        assert!(stderr(&refused).contains("is not a DNS name or IP address"));
        assert!(!Path::new(out).exists(), "{args:?} wrote files");
    }
    let accepted = tessera(
        &[
            "certs",
            "self-signed",
            "--out",
            out,
            "--cn",
            "ok.example",
            "--name",
            "::1",
        ],
        home.path(),
    );
    assert!(accepted.status.success(), "{}", stderr(&accepted));
}

#[test]
fn certs_dev_writes_the_reference_layout_with_private_keys() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("certificates");
    let output = tessera(
        &[
            "certs",
            "dev",
            "--out",
            out.to_str().unwrap(),
            "--name",
            "node.test",
        ],
        home.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    for (file, mode) in [
        ("ca_cert.pem", 0o644),
        ("ca_key.pem", 0o600),
        ("server-cert.pem", 0o644),
        ("server-key.pem", 0o600),
        ("client_cert.pem", 0o644),
        ("ec_private_key.pem", 0o600),
    ] {
        let meta = std::fs::metadata(out.join(file)).unwrap_or_else(|_| panic!("{file} missing"));
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{file}");
        assert!(stdout(&output).contains(file));
    }
    // Refuses to overwrite without --force, and says so on one line.
    let again = tessera(
        &["certs", "dev", "--out", out.to_str().unwrap()],
        home.path(),
    );
    assert!(!again.status.success());
    assert!(
        stderr(&again).starts_with("tessera: ") && stderr(&again).contains("--force"),
        "{}",
        stderr(&again)
    );
    assert_eq!(stderr(&again).lines().count(), 1);
    assert!(tessera(
        &[
            "certs",
            "dev",
            "--out",
            out.to_str().unwrap(),
            "--force",
            "--name",
            "node.test"
        ],
        home.path()
    )
    .status
    .success());

    let inspect = tessera(
        &[
            "certs",
            "inspect",
            out.join("server-cert.pem").to_str().unwrap(),
        ],
        home.path(),
    );
    assert!(inspect.status.success());
    let text = stdout(&inspect);
    for expected in [
        "CN=localhost",
        "DNS:localhost",
        "IP:127.0.0.1",
        "IP:::1",
        "DNS:node.test",
        "ECDSA P-256",
        "sha256:",
        "valid now",
        "key usage:    digitalSignature",
        "ext. usage:   serverAuth",
    ] {
        assert!(text.contains(expected), "{expected} missing in {text}");
    }

    // The same facts for machines, the CA's flags among them.
    let json = |file: &str| {
        let output = tessera(
            &[
                "certs",
                "inspect",
                "--json",
                out.join(file).to_str().unwrap(),
            ],
            home.path(),
        );
        assert!(output.status.success(), "{}", stderr(&output));
        serde_json::from_str::<serde_json::Value>(&stdout(&output)).unwrap()
    };
    let server = &json("server-cert.pem")[0];
    assert_eq!(server["common_name"], "localhost");
    assert_eq!(server["is_ca"], false);
    assert_eq!(
        server["extended_key_usage"],
        serde_json::json!(["serverAuth"])
    );
    assert!(server["subject_alt_names"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("DNS:node.test")));
    assert_eq!(server["validity"], "valid");
    let ca = &json("ca_cert.pem")[0];
    assert_eq!(ca["is_ca"], true);
    assert!(ca["key_usage"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("keyCertSign")));
    let fingerprint = tessera(
        &[
            "fingerprint",
            "--json",
            out.join("ca_cert.pem").to_str().unwrap(),
        ],
        home.path(),
    );
    let fingerprint: serde_json::Value = serde_json::from_str(&stdout(&fingerprint)).unwrap();
    assert_eq!(fingerprint["fingerprint"], ca["fingerprint"]);
    assert_eq!(fingerprint["fingerprint_colon"], ca["fingerprint_colon"]);
}

#[test]
fn self_signed_and_fingerprint_of_a_file() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("capsule");
    let output = tessera(
        &[
            "certs",
            "self-signed",
            "--cn",
            "capsule.example",
            "--out",
            out.to_str().unwrap(),
            "--key-type",
            "ed25519",
        ],
        home.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let cert = out.join("cert.pem");
    let der = tessera_tls::load_certificates(&cert).unwrap().remove(0);
    let expected = Fingerprint::of_der(der.as_ref());
    let printed = tessera(&["fingerprint", cert.to_str().unwrap()], home.path());
    assert_eq!(stdout(&printed).trim(), expected.to_string());
    let colon = tessera(
        &["fingerprint", "--colon", cert.to_str().unwrap()],
        home.path(),
    );
    assert_eq!(stdout(&colon).trim(), expected.to_colon_hex());
    assert!(stdout(&tessera(
        &["certs", "inspect", cert.to_str().unwrap()],
        home.path()
    ))
    .contains("Ed25519"));
}

#[test]
fn errors_are_one_line_on_stderr_with_a_nonzero_exit() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        vec!["certs", "inspect", "/nonexistent/cert.pem"],
        vec!["fingerprint", "missing.pem"],
        vec![
            "gemini",
            "serve",
            "--root",
            ".",
            "--cert",
            "/nonexistent/c.pem",
            "--key",
            "/nonexistent/k.pem",
        ],
        vec!["tofu", "--db", "/nonexistent/dir/tofu.sqlite3", "export"],
        vec!["fingerprint", "no-such-host.invalid:1965", "--timeout", "2"],
        vec!["tofu", "trust", "bad host:1965"],
        vec!["tofu", "revoke", "capsule.example:0"],
    ] {
        let output = tessera(&args, home.path());
        assert!(!output.status.success(), "{args:?}");
        let err = stderr(&output);
        assert!(err.starts_with("tessera: "), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        // One cause, once (it used to be printed twice).
        assert!(err.matches("(os error").count() <= 1, "{args:?}: {err}");
    }
}

/// Exit codes are the same everywhere: 2 for a usage error, clap's own or
/// one of the command's range checks, before anything runs.
#[test]
fn usage_errors_exit_2_and_global_flags_go_before_or_after_the_command() {
    let home = tempfile::tempdir().unwrap();
    let verify = ["pow", "verify", "--token", "abc", "--bits", "0", "x"];
    // The global flags before the command, after it, or between its own.
    for args in [
        [&["--log-level", "debug"][..], &verify].concat(),
        [&verify[..], &["--log-level", "debug"]].concat(),
        [&verify[..4], &["--log-format", "json"], &verify[4..]].concat(),
        [&verify[..], &["--log-level", "WARNING"]].concat(),
    ] {
        let ok = tessera(&args, home.path());
        assert_eq!(ok.status.code(), Some(0), "{args:?}: {}", stderr(&ok));
    }
    let bogus_level = tessera(
        &[&verify[..], &["--log-level", "bogus"]].concat(),
        home.path(),
    );
    assert_eq!(bogus_level.status.code(), Some(2));
    let bogus_format = tessera(
        &[&["--log-format", "xml"][..], &verify].concat(),
        home.path(),
    );
    assert_eq!(bogus_format.status.code(), Some(2));
    for args in [
        &["pow", "solve", "--token", "abc", "--bits", "65"][..],
        &[
            "pow",
            "solve",
            "--token",
            "abc",
            "--bits",
            "1",
            "--threads",
            "0",
        ],
        &[
            "pow",
            "solve",
            "--token",
            "abc",
            "--bits",
            "1",
            "--timeout",
            "-1",
        ],
        &["pow", "hashcash", "mint", "--bits", "61", "x"],
        &["fleet", "status"],
        &["wire", "request", "--timeout", "0"],
        &["wire", "request", "--connect", "no-port"],
        &["wire", "request", "--connect", "bad host!:7700"],
        &["guard", "check", "--ip", "notanip", "--path", "/"],
        &["fingerprint", "127.0.0.1:1", "--timeout", "NaN"],
        &[
            "gemini",
            "get",
            "gemini://localhost/",
            "--identity",
            "only-one-file",
        ],
    ] {
        let refused = tessera(args, home.path());
        assert_eq!(
            refused.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&refused)
        );
        assert!(stdout(&refused).is_empty(), "{args:?}");
    }
}

/// `tessera tlslp` takes Tessera's flag names next to the reference's, and
/// binds IPv6 as well as IPv4; `--insecure` follows the loopback rule of
/// every other command (127.0.0.0/8 and ::1 count).
#[test]
fn tlslp_server_takes_both_vocabularies_and_binds_ipv6_loopback() {
    let home = tempfile::tempdir().unwrap();
    let pki = DevPki::generate(&PkiOptions::default()).unwrap();
    let dir = home.path().join("pki");
    pki.write(&dir, false).unwrap();
    let file = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let logs = home.path().join("logs");
    for (host, address) in [
        ("::1", vec!["--listen", "[::1]:0"]),
        (
            "127.0.0.2",
            vec!["--host", "127.0.0.2", "--port", "0", "--insecure"],
        ),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["tlslp", "server", "--bits", "1"])
            .args(&address)
            .args([
                "--cert",
                &file("server-cert.pem"),
                "--key",
                &file("server-key.pem"),
            ])
            .args([
                "--ca-cert",
                &file("ca_cert.pem"),
                "--log-dir",
                logs.to_str().unwrap(),
            ])
            .env("HOME", home.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let line = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()))
            .map_while(Result::ok)
            .next();
        let _ = child.kill();
        let _ = child.wait();
        let line = line.unwrap_or_default();
        let expected = if host.contains(':') {
            format!("https://[{host}]:")
        } else {
            format!("https://{host}:")
        };
        assert!(
            line.starts_with(&format!("Server listening on {expected}")),
            "{host}: {line:?}"
        );
    }
}

/// A bench whose Python baseline cannot run still prints its own results,
/// and says how to install the baseline.
#[test]
fn a_missing_baseline_leaves_our_results_and_an_install_hint() {
    let home = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "guard",
            "bench",
            "--seconds",
            "0.05",
            "--clients",
            "1000",
            "--baseline",
        ])
        // No python3 on this PATH.
        .env("PATH", home.path())
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("chain_per_s"),
        "{}",
        stdout(&output)
    );
    assert!(
        stderr(&output).contains("python3 -m pip install tlacacoca==0.3.0"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn regression_a_missing_certificate_file_is_not_looked_up_as_a_host() {
    let home = tempfile::tempdir().unwrap();
    for missing in ["missing.pem", "certs/server.crt"] {
        let output = tessera(&["fingerprint", missing], home.path());
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{missing}: {err}");
        assert!(
            err.contains(missing) && err.contains("No such file"),
            "{missing}: {err}"
        );
        assert!(!err.contains("host"), "{missing}: {err}");
    }
}

#[test]
fn regression_reading_tofu_commands_create_nothing() {
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("mistyped/dir/tofu.sqlite3");
    let db = db.to_str().unwrap();
    let list = tessera(&["tofu", "--db", db, "list"], home.path());
    assert!(list.status.success(), "{}", stderr(&list));
    assert!(
        stdout(&list).contains("there is no TOFU store at"),
        "{}",
        stdout(&list)
    );
    let export = tessera(&["tofu", "--db", db, "export"], home.path());
    assert_eq!(export.status.code(), Some(1));
    assert!(
        stderr(&export).contains("there is no TOFU store at"),
        "{}",
        stderr(&export)
    );
    assert!(!home.path().join("mistyped").exists());
    // An existing store is read without being written: its bytes stay the same.
    let existing = home.path().join("tofu.sqlite3");
    let existing = existing.to_str().unwrap();
    let trust = tessera(
        &[
            "tofu",
            "--db",
            existing,
            "trust",
            "capsule.example:1965",
            "--fingerprint",
            &format!("sha256:{}", "ab".repeat(32)),
        ],
        home.path(),
    );
    assert!(trust.status.success(), "{}", stderr(&trust));
    let before = std::fs::read(existing).unwrap();
    let list = tessera(&["tofu", "--db", existing, "list"], home.path());
    assert!(
        stdout(&list).contains("capsule.example:1965"),
        "{}",
        stdout(&list)
    );
    assert_eq!(std::fs::read(existing).unwrap(), before);
}

/// Serves TLS handshakes with the given certificate on 127.0.0.1:0 until dropped.
fn serve(pki: &DevPki) -> (u16, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = server_config(&pki.server.identity().unwrap(), ClientAuth::None).unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    struct HandshakeOnly;
    impl tessera_serve::Handler for HandshakeOnly {
        async fn serve(self: Arc<Self>, mut connection: tessera_serve::Admitted) {
            let _ = connection.stream.shutdown().await;
        }
    }
    let listener = tessera_serve::Listener::from(listener);
    let mut stage = tessera_serve::StageConfig::default();
    stage.tls(config);
    let stage = tessera_serve::Stage::new(&listener.local_addr().unwrap(), stage).unwrap();
    runtime.spawn(Arc::new(stage).run(listener, Arc::new(HandshakeOnly), std::future::pending()));
    (port, runtime)
}

#[test]
fn tofu_commands_against_a_live_server() {
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("tofu.sqlite3");
    let db = db.to_str().unwrap();
    let pki = DevPki::generate(&PkiOptions::default()).unwrap();
    let (port, _runtime) = serve(&pki);
    let target = format!("127.0.0.1:{port}");
    let expected = Fingerprint::of_der(pki.server.der()).to_string();

    let fp = tessera(&["fingerprint", &target], home.path());
    assert!(fp.status.success(), "{}", stderr(&fp));
    assert_eq!(stdout(&fp).trim(), expected);

    let unknown = tessera(&["tofu", "--db", db, "check", &target], home.path());
    assert_eq!(unknown.status.code(), Some(4), "not pinned");
    assert!(stdout(&unknown).starts_with("unknown"));

    let trust = tessera(&["tofu", "--db", db, "trust", &target], home.path());
    assert!(trust.status.success(), "{}", stderr(&trust));
    assert!(stdout(&trust).contains(&expected));
    let check = tessera(&["tofu", "--db", db, "check", &target], home.path());
    assert!(check.status.success(), "{}", stdout(&check));
    let list = tessera(&["tofu", "--db", db, "list"], home.path());
    assert!(
        stdout(&list).contains(&target)
            && stdout(&list).contains(&expected)
            && stdout(&list).contains("manual")
    );
    let list = tessera(&["tofu", "list", "--json", "--db", db], home.path());
    let pins: serde_json::Value = serde_json::from_str(&stdout(&list)).unwrap();
    assert_eq!(
        (
            &pins[0]["host"],
            &pins[0]["port"],
            &pins[0]["fingerprint"],
            &pins[0]["trusted_by"]
        ),
        (
            &serde_json::json!("127.0.0.1"),
            &serde_json::json!(port),
            &serde_json::json!(expected),
            &serde_json::json!("manual")
        )
    );

    // Pin something else: check reports the mismatch with both fingerprints.
    let other = Fingerprint::of_der(b"other").to_string();
    assert!(tessera(
        &[
            "tofu",
            "--db",
            db,
            "trust",
            &target,
            "--fingerprint",
            &other
        ],
        home.path()
    )
    .status
    .success());
    let mismatch = tessera(&["tofu", "--db", db, "check", &target], home.path());
    assert_eq!(mismatch.status.code(), Some(3), "a mismatch");
    assert!(
        stdout(&mismatch).contains(&expected) && stdout(&mismatch).contains(&other),
        "{}",
        stdout(&mismatch)
    );

    // Nobody listens: neither a mismatch nor unknown.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let unreachable = tessera(
        &[
            "tofu",
            "--db",
            db,
            "check",
            &format!("127.0.0.1:{closed_port}"),
            "--timeout",
            "5",
        ],
        home.path(),
    );
    assert_eq!(
        unreachable.status.code(),
        Some(1),
        "{}",
        stderr(&unreachable)
    );

    // Export, revoke, import.
    let export_path = home.path().join("pins.json");
    assert!(tessera(
        &[
            "tofu",
            "--db",
            db,
            "export",
            "--output",
            export_path.to_str().unwrap()
        ],
        home.path()
    )
    .status
    .success());
    assert!(
        tessera(&["tofu", "--db", db, "revoke", &target], home.path())
            .status
            .success()
    );
    assert!(
        !tessera(&["tofu", "--db", db, "revoke", &target], home.path())
            .status
            .success()
    );
    let import = tessera(
        &["tofu", "--db", db, "import", export_path.to_str().unwrap()],
        home.path(),
    );
    assert!(import.status.success(), "{}", stderr(&import));
    assert!(stdout(&import).contains("added 1"));

    // The default store lives under XDG_DATA_HOME.
    assert!(tessera(&["tofu", "trust", &target], home.path())
        .status
        .success());
    assert!(home.path().join("data/tessera/tofu.sqlite3").exists());
}

#[test]
fn tls_demo_runs_every_step_as_expected() {
    let home = tempfile::tempdir().unwrap();
    let output = tessera(&["tls", "demo", "--clients", "3"], home.path());
    assert!(
        output.status.success(),
        "{}\n{}",
        stdout(&output),
        stderr(&output)
    );
    let text = stdout(&output);
    assert!(text.contains("3/3 answered"), "{text}");
    assert!(!text.contains("FAILED"), "{text}");
}

#[test]
fn demo_runs_tlslp_sessions_and_refuses_both_hostile_clients() {
    let home = tempfile::tempdir().unwrap();
    let output = tessera(&["demo", "--clients", "3", "--bits", "10"], home.path());
    assert!(
        output.status.success(),
        "{}\n{}",
        stdout(&output),
        stderr(&output)
    );
    let text = stdout(&output);
    assert_eq!(text.matches("DONE/OK").count(), 3, "{text}");
    assert!(
        text.contains("got \"FAIL Invalid checksum received.\""),
        "{text}"
    );
    assert!(
        text.contains("server: 3 done, 1 failed, 1 refused at the handshake, 0 aborted"),
        "{text}"
    );
    assert!(text.contains("every expected outcome happened"), "{text}");
}

#[test]
fn tlslp_bench_runs_briefly() {
    let home = tempfile::tempdir().unwrap();
    let output = tessera(
        &[
            "tlslp",
            "bench",
            "--seconds",
            "0.3",
            "--concurrency",
            "4",
            "--hold",
            "20",
            "--json",
        ],
        home.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let value: serde_json::Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert!(value["sessions_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(value["held_sessions"].as_u64(), Some(20));
}

/// The Gemini bench measures tessera and the floor (and molly-brown or
/// agate where installed), per second and per server CPU-second.
#[test]
fn gemini_bench_runs_briefly() {
    let home = tempfile::tempdir().unwrap();
    let output = tessera(
        &[
            "gemini",
            "bench",
            "--seconds",
            "0.3",
            "--clients",
            "2",
            "--json",
        ],
        home.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let value: serde_json::Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    for object in [&value, &value["floor"]] {
        assert!(
            object["c2_requests_per_s"].as_f64().unwrap() > 0.0,
            "{value}"
        );
        assert!(
            object["c2_requests_per_cpu_s"].as_f64().unwrap() > 0.0,
            "{value}"
        );
    }
    assert_eq!(value["resumption"], false);
}

/// `--cgi` measures a CGI script under tessera (and molly-brown where
/// installed), CPU of the scripts included; the floor and agate run none.
#[test]
fn gemini_bench_measures_a_cgi_script() {
    let home = tempfile::tempdir().unwrap();
    let output = tessera(
        &[
            "gemini",
            "bench",
            "--cgi",
            "--seconds",
            "0.3",
            "--clients",
            "2",
            "--json",
        ],
        home.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let value: serde_json::Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert!(
        value["c2_requests_per_cpu_s"].as_f64().unwrap() > 0.0,
        "{value}"
    );
    assert_eq!(value["cgi"], true);
    assert!(
        value.get("floor").is_none() && value.get("agate").is_none(),
        "{value}"
    );
}

#[test]
fn tls_bench_runs_briefly() {
    let home = tempfile::tempdir().unwrap();
    let output = tessera(
        &[
            "tls",
            "bench",
            "--seconds",
            "0.2",
            "--concurrency",
            "2",
            "--tofu-hosts",
            "100",
            "--json",
        ],
        home.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let value: serde_json::Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert!(value["mtls_handshakes_per_s"].as_f64().unwrap() > 0.0);
    assert!(value["tofu_checks_per_s"].as_f64().unwrap() > 0.0);
}

/// Every server takes the same admission flags, named the same way.
#[test]
fn every_server_offers_the_same_admission_flags() {
    let home = tempfile::tempdir().unwrap();
    for server in [
        &["gemini", "serve"][..],
        &["tlslp", "server"],
        &["wire", "echo-server"],
        &["proxy", "exit"],
    ] {
        let help = tessera(&[server, &["--help"]].concat(), home.path());
        let text = stdout(&help);
        for flag in [
            "--guard-config <FILE>",
            "--allow <CIDR>",
            "--deny <CIDR>",
            "--rate-limit <N/SECONDS>",
            "--max-connections <N>",
            "--max-connections-per-client <N>",
            "--proxy-from <CIDR>",
        ] {
            assert!(text.contains(flag), "{server:?} lacks {flag}");
        }
    }
}

/// `--check-config` loads what a server would and says whether it is
/// valid, without serving: exit 0 for a good setup, 1 naming what is wrong.
#[test]
fn every_server_checks_its_configuration_without_serving() {
    let home = tempfile::tempdir().unwrap();
    let path = |name: &str| home.path().join(name).to_str().unwrap().to_owned();
    assert!(
        tessera(&["certs", "dev", "--out", &path("pki")], home.path())
            .status
            .success()
    );
    let key = path("issuer.key");
    assert!(tessera(&["trust", "keygen", "--out", &key], home.path())
        .status
        .success());
    std::fs::write(path("not-a-crl.pem"), "nothing here\n").unwrap();
    std::fs::write(path("bad.toml"), "[guard.acl]\nallow = [\"10.0.0.1/8\"]\n").unwrap();
    let pki = path("pki");
    let file = |name: &str| format!("{pki}/{name}");
    let (cert, key_pem, ca) = (
        file("server-cert.pem"),
        file("server-key.pem"),
        file("ca_cert.pem"),
    );
    let tlslp = |extra: &[&str]| {
        let mut args = vec![
            "tlslp",
            "server",
            "--port",
            "0",
            "--cert",
            &cert,
            "--key",
            &key_pem,
            "--ca-cert",
            &ca,
            "--log-dir",
            &pki,
        ];
        args.extend_from_slice(extra);
        args.push("--check-config");
        tessera(&args, home.path())
    };
    let cases: Vec<(Output, Option<&str>)> = vec![
        (
            tessera(
                &["wire", "echo-server", "--pki", &pki, "--check-config"],
                home.path(),
            ),
            None,
        ),
        (
            tessera(
                &[
                    "wire",
                    "echo-server",
                    "--pki",
                    &pki,
                    "--crl",
                    &path("not-a-crl.pem"),
                    "--check-config",
                ],
                home.path(),
            ),
            Some("no certificate revocation list"),
        ),
        (
            tessera(
                &[
                    "proxy",
                    "exit",
                    "--pki",
                    &pki,
                    "--service",
                    "ssh=127.0.0.1:22",
                    "--check-config",
                ],
                home.path(),
            ),
            None,
        ),
        (
            tessera(
                &[
                    "proxy",
                    "exit",
                    "--pki",
                    &pki,
                    "--service",
                    "ssh=127.0.0.1:22",
                    "--guard-config",
                    &path("bad.toml"),
                    "--check-config",
                ],
                home.path(),
            ),
            Some("host bits set"),
        ),
        (
            tessera(
                &[
                    "gemini",
                    "serve",
                    "--root",
                    &pki,
                    "--cert",
                    &cert,
                    "--key",
                    &key_pem,
                    "--check-config",
                ],
                home.path(),
            ),
            None,
        ),
        (
            tessera(
                &[
                    "gemini",
                    "serve",
                    "--root",
                    &pki,
                    "--cert",
                    &ca,
                    "--key",
                    &key_pem,
                    "--check-config",
                ],
                home.path(),
            ),
            Some("does not match"),
        ),
        (tlslp(&[]), None),
        (
            tlslp(&["--guard-config", &path("bad.toml")]),
            Some("host bits set"),
        ),
        (
            tessera(
                &[
                    "trust",
                    "signer",
                    "--issuer-key",
                    &key,
                    "--unix",
                    &path("s.sock"),
                    "--check-config",
                ],
                home.path(),
            ),
            None,
        ),
        (
            tessera(
                &[
                    "trust",
                    "signer",
                    "--issuer-key",
                    &cert,
                    "--unix",
                    &path("s.sock"),
                    "--check-config",
                ],
                home.path(),
            ),
            Some("64 hex digits"),
        ),
    ];
    for (index, (output, problem)) in cases.iter().enumerate() {
        match problem {
            None => {
                assert_eq!(
                    output.status.code(),
                    Some(0),
                    "case {index}: {}",
                    stderr(output)
                );
                assert!(stdout(output).contains("configuration OK"), "case {index}");
            }
            Some(problem) => {
                // A key file that holds no key is a bad value of its flag (2),
                // as everywhere in `tessera trust`; the rest fail to load (1).
                let expected = if problem.contains("hex digits") { 2 } else { 1 };
                assert_eq!(
                    output.status.code(),
                    Some(expected),
                    "case {index}: {}",
                    stderr(output)
                );
                assert!(
                    stderr(output).contains(problem),
                    "case {index}: {}",
                    stderr(output)
                );
            }
        }
    }
    assert!(
        !home.path().join("s.sock").exists(),
        "the signer bound its socket"
    );
}

#[test]
fn completions_are_valid_shell_and_man_pages_cover_every_command() {
    let home = tempfile::tempdir().unwrap();
    let bash = tessera(&["completions", "bash"], home.path());
    assert!(bash.status.success(), "{bash:?}");
    let script = home.path().join("tessera.bash");
    std::fs::write(&script, &bash.stdout).unwrap();
    // bash itself checks the script's syntax.
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(syntax.status.success(), "{syntax:?}");
    assert!(String::from_utf8_lossy(&bash.stdout).contains("echo-server"));
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = tessera(&["completions", shell], home.path());
        assert!(
            out.status.success() && out.stdout.len() > 1000,
            "{shell}: {out:?}"
        );
    }
    let bad = tessera(&["completions", "tcsh"], home.path());
    assert_eq!(bad.status.code(), Some(2));

    let dir = home.path().join("man");
    let man = tessera(&["man", "--out", dir.to_str().unwrap()], home.path());
    assert!(man.status.success(), "{man:?}");
    let listed = String::from_utf8_lossy(&man.stdout).lines().count();
    for page in [
        "tessera.1",
        "tessera-certs-dev.1",
        "tessera-wire-echo-server.1",
        "tessera-gemini-serve.1",
        "tessera-trust-signer.1",
        "tlslp-server.1",
        "tlslp-client.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        let name = page.trim_end_matches(".1");
        assert!(text.contains(&format!(".TH {name} 1 ")), "{page}");
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), listed);
    let tlslp = std::fs::read_to_string(dir.join("tlslp-server.1")).unwrap();
    assert!(
        tlslp.contains("n_bits") || tlslp.contains("n\\_bits"),
        "the reference's flags"
    );
}

#[test]
fn version_names_the_commit_and_the_proof_of_work_kernels() {
    let home = tempfile::tempdir().unwrap();
    let long = tessera(&["--version"], home.path());
    assert!(long.status.success(), "{long:?}");
    let text = String::from_utf8_lossy(&long.stdout);
    assert!(
        text.starts_with(&format!("tessera {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(
        text.contains("proof-of-work kernels on this CPU: portable"),
        "{text}"
    );
    let short = tessera(&["-V"], home.path());
    assert_eq!(
        String::from_utf8_lossy(&short.stdout).trim(),
        format!("tessera {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn systemd_units_verify_and_name_real_flags_and_pages() {
    let units_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/systemd");
    let mut units: Vec<_> = std::fs::read_dir(&units_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "service"))
        .collect();
    units.sort();
    assert_eq!(units.len(), 3, "{units:?}");
    let home = tempfile::tempdir().unwrap();
    let man_dir = home.path().join("man");
    assert!(
        tessera(&["man", "--out", man_dir.to_str().unwrap()], home.path())
            .status
            .success()
    );
    let analyze = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok();
    if !analyze {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED (systemd-analyze verify of contrib/systemd): systemd-analyze is not installed"
        );
    }
    for unit in units {
        let text = std::fs::read_to_string(&unit).unwrap();
        let name = unit.file_name().unwrap().to_str().unwrap();
        for page in text
            .lines()
            .filter_map(|l| l.strip_prefix("Documentation=man:"))
        {
            let page = page.trim_end_matches("(1)");
            assert!(
                man_dir.join(format!("{page}.1")).exists(),
                "{name}: no page {page}"
            );
        }
        // The command line uses flags tessera has (clap checks names before --help).
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart=/usr/local/bin/tessera "))
            .unwrap_or_else(|| panic!("{name}: no ExecStart of /usr/local/bin/tessera"));
        let flags = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(exec.split_whitespace())
            .arg("--help")
            .output()
            .unwrap();
        assert!(flags.status.success(), "{name}: {flags:?}");
        for hardening in [
            "DynamicUser=yes",
            "ProtectSystem=strict",
            "NoNewPrivileges=yes",
            "CapabilityBoundingSet=\n",
        ] {
            assert!(text.contains(hardening), "{name}: {hardening}");
        }
        if analyze {
            let local = home.path().join(name);
            std::fs::write(
                &local,
                text.replace("/usr/local/bin/tessera", env!("CARGO_BIN_EXE_tessera")),
            )
            .unwrap();
            let verify = Command::new("systemd-analyze")
                .args(["verify", "--man=no"])
                .arg(&local)
                .output()
                .unwrap();
            assert!(
                verify.status.success() && verify.stderr.is_empty(),
                "{name}: {}",
                String::from_utf8_lossy(&verify.stderr)
            );
        }
    }
}
