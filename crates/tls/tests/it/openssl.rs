//! Interop with the real `openssl` CLI: our certificates verify, and mutual-TLS
//! handshakes work in both directions. Skips with a printed reason when openssl
//! is absent; `.ci/run` installs it so CI never skips.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use tessera_tls::rustls::pki_types::ServerName;
use tessera_tls::tokio_rustls::TlsConnector;
use tessera_tls::{
    client_config, load_roots, server_config, ClientAuth, DevPki, Identity, PkiOptions, ServerAuth,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::util::{next_seen, server, TIMEOUT};

/// Kills the child on every path out of the test.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl_available() -> bool {
    let found = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        // Straight to stderr: the harness captures print macros of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: openssl not installed (apt-get install openssl)"
        );
    }
    found
}

fn dev_pki(dir: &Path) {
    let mut options = PkiOptions::default();
    options.server_names(["tessera.test".to_owned()]);
    DevPki::generate(&options)
        .unwrap()
        .write(dir, false)
        .unwrap();
}

#[test]
fn our_certificates_pass_openssl_verify_with_their_purposes() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    dev_pki(dir.path());
    for (file, purpose) in [
        ("server-cert.pem", "sslserver"),
        ("client_cert.pem", "sslclient"),
    ] {
        let output = Command::new("openssl")
            .args(["verify", "-purpose", purpose, "-CAfile"])
            .arg(dir.path().join("ca_cert.pem"))
            .arg(dir.path().join(file))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.trim_end().ends_with(": OK"),
            "{file}: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // The client certificate is X.509 v3 (rustls refuses v1: tlslp defect D6).
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(dir.path().join("client_cert.pem"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Version: 3"), "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
}

#[test]
fn openssl_fingerprint_equals_ours() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    dev_pki(dir.path());
    let cert = dir.path().join("server-cert.pem");
    let output = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let theirs = text.trim().rsplit('=').next().unwrap().to_owned();
    let ours = tessera_tls::Fingerprint::of_der(
        tessera_tls::load_certificates(&cert).unwrap()[0].as_ref(),
    );
    assert_eq!(ours.to_colon_hex(), theirs);
}

#[tokio::test]
async fn openssl_s_client_completes_mutual_tls_with_our_server() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    dev_pki(dir.path());
    let p = |name: &str| dir.path().join(name);
    let identity = Identity::load(&p("server-cert.pem"), &p("server-key.pem")).unwrap();
    let config = server_config(
        &identity,
        ClientAuth::Required(load_roots(&p("ca_cert.pem")).unwrap()),
    )
    .unwrap();
    let (address, mut seen) = server(config).await;

    let child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &address.to_string(),
            "-servername",
            "localhost",
            "-verify_hostname",
            "localhost",
            "-verify_return_error",
            "-quiet",
            "-CAfile",
        ])
        .arg(p("ca_cert.pem"))
        .arg("-cert")
        .arg(p("client_cert.pem"))
        .arg("-key")
        .arg(p("ec_private_key.pem"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    child.0.stdin.take().unwrap().write_all(b"hi").unwrap();
    let report = next_seen(&mut seen).await;
    let peer = report
        .result
        .expect("handshake")
        .expect("client certificate");
    assert_eq!(peer.common_name(), Some("client"));
    assert_eq!(report.received, b"hi");
    let mut stdout = child.0.stdout.take().unwrap();
    let answer = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let answer = tokio::time::timeout(TIMEOUT, answer)
        .await
        .expect("s_client did not finish")
        .unwrap();
    assert_eq!(answer, "ok\n");
}

#[tokio::test]
async fn our_client_completes_mutual_tls_with_openssl_s_server() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    dev_pki(dir.path());
    let p = |name: &str| dir.path().join(name);
    // s_server does not report the port it bound for -accept 0: take a free one.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-Verify",
            "1",
            "-verify_return_error",
            "-rev",
            "-naccept",
            "1",
            "-cert",
        ])
        .arg(p("server-cert.pem"))
        .arg("-key")
        .arg(p("server-key.pem"))
        .arg("-CAfile")
        .arg(p("ca_cert.pem"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    // Ready when it prints ACCEPT.
    let stdout = child.0.stdout.take().unwrap();
    let ready = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        lines.any(|line| line.is_ok_and(|l| l.starts_with("ACCEPT")))
    });
    assert!(tokio::time::timeout(TIMEOUT, ready)
        .await
        .expect("s_server not ready")
        .unwrap());

    let config = client_config(
        ServerAuth::Roots(load_roots(&p("ca_cert.pem")).unwrap()),
        Some(&Identity::load(&p("client_cert.pem"), &p("ec_private_key.pem")).unwrap()),
    )
    .unwrap();
    let work = async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let mut tls = TlsConnector::from(Arc::clone(&config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await?;
        tls.write_all(b"hello\n").await?;
        let mut line = String::new();
        tokio::io::BufReader::new(&mut tls)
            .read_line(&mut line)
            .await?;
        Ok::<_, std::io::Error>(line)
    };
    let line = tokio::time::timeout(TIMEOUT, work)
        .await
        .expect("timed out")
        .unwrap();
    assert_eq!(line.trim_end(), "olleh");
    drop(child);
}
