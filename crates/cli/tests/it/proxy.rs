//! `tessera proxy local` and `tessera proxy exit`: an app on loopback talks
//! to a service through both, over mutual TLS with HMAC; a wrong secret gets
//! the app nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use crate::common;

const WAIT: Duration = Duration::from_secs(20);

/// A line echo service on loopback, in a thread.
pub(crate) fn echo_service() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for socket in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut writer = socket.try_clone()?;
                std::io::copy(&mut BufReader::new(socket), &mut writer)
            });
        }
    });
    addr
}

pub(crate) fn connect_app(local: &common::Server) -> TcpStream {
    let app = TcpStream::connect(local.addr).unwrap();
    app.set_read_timeout(Some(WAIT)).unwrap();
    app
}

#[test]
fn an_app_reaches_the_service_through_local_and_exit() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let pki = pki.to_str().unwrap();
    let service = format!("echo={}", echo_service());
    let secret = ["--hmac-secret", "proxy secret"];
    let exit = common::start(
        &["proxy", "exit"],
        &[&["--service", &service, "--pki", pki][..], &secret].concat(),
    );
    let exit_addr = exit.addr.to_string();
    let local = common::start(
        &["proxy", "local"],
        &[
            &["--exit", &exit_addr, "--service", "echo", "--pki", pki][..],
            &secret,
        ]
        .concat(),
    );
    let mut app = connect_app(&local);
    app.write_all(b"through the tunnel\n").unwrap();
    let mut line = String::new();
    BufReader::new(&app).read_line(&mut line).unwrap();
    assert_eq!(line, "through the tunnel\n");

    // Same exit, wrong secret: the app's connection is closed unanswered.
    let wrong = common::start(
        &["proxy", "local"],
        &[
            "--exit",
            &exit_addr,
            "--service",
            "echo",
            "--pki",
            pki,
            "--hmac-secret",
            "guess",
        ],
    );
    let mut app = connect_app(&wrong);
    app.write_all(b"anyone?\n").unwrap();
    let mut rest = Vec::new();
    assert_eq!(app.read_to_end(&mut rest).unwrap_or(0), 0);
}

#[test]
fn the_local_side_refuses_a_non_loopback_listener() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "proxy",
            "local",
            "--listen",
            "0.0.0.0:0",
            "--exit",
            "127.0.0.1:1",
            "--service",
            "x",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("loopback only"));
}

/// Revoking the entry's client certificate and sending SIGHUP to the exit
/// closes the tunnel that certificate had open.
#[test]
fn sighup_with_a_new_crl_closes_the_revoked_entrys_tunnel() {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::TestCa::new(dir.path());
    let path = |name: &str| ca.path(name);
    for name in ["alice", "carol"] {
        ca.issue_client(name);
    }
    // The CRL the exit starts with lists carol only.
    ca.revoke("carol");
    let service = format!("echo={}", echo_service());
    let (exit, log) = common::start_logged(
        &["proxy", "exit"],
        &[
            "--service",
            &service,
            "--pki",
            &path("ca"),
            "--crl",
            &path("crl.pem"),
        ],
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
            &path("alice"),
        ],
    );
    let mut app = connect_app(&local);
    app.write_all(b"before\n").unwrap();
    let mut reader = BufReader::new(app.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "before\n");

    ca.revoke("alice");
    exit.hang_up();
    let reloaded = common::wait_for_line(&log, "reloaded:");
    assert!(reloaded.contains("1 open tunnel(s) closed"), "{reloaded}");
    // The tunnel is gone: the app's connection ends.
    let mut rest = Vec::new();
    assert_eq!(reader.read_to_end(&mut rest).unwrap_or(0), 0);
}
