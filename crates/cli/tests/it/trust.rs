//! `tessera trust` as scripts drive it (`../shared/spec/trust.md` §12).

use crate::common::{stderr, stdout, tessera};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[test]
fn keygen_mint_prove_verify_and_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let issuer_pub = stdout(&tessera(&["trust", "keygen", "--out", &p("issuer.key")]));
    assert_eq!(issuer_pub.len(), 64);
    assert_eq!(
        std::fs::metadata(p("issuer.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let again = tessera(&["trust", "keygen", "--out", &p("issuer.key")]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).starts_with("error: usage: "));
    let worker_pub = stdout(&tessera(&["trust", "keygen", "--out", &p("worker.key")]));
    assert_eq!(
        stdout(&tessera(&["trust", "pubkey", "--key", &p("worker.key")])),
        worker_pub
    );

    let minted = tessera(&[
        "trust",
        "mint",
        "--issuer-key",
        &p("issuer.key"),
        "--worker-public",
        &worker_pub,
        "--holder-id",
        "gpu-1",
        "--fact",
        "right=status",
        "--fact",
        "right=lease",
        "--fact",
        "lane=transcribe",
        "--revocation-id",
        "rev-1",
        "--expires-at",
        "1700003600",
    ]);
    assert!(minted.status.success(), "{}", stderr(&minted));
    let token = stdout(&minted);
    std::fs::write(p("body"), br#"{"job":1}"#).unwrap();
    let proved = tessera(&[
        "trust",
        "prove",
        "--worker-key",
        &p("worker.key"),
        "--token",
        &token,
        "--method",
        "POST",
        "--path",
        "/lease",
        "--body-file",
        &p("body"),
        "--timestamp",
        "1700000000",
        "--nonce",
        "n-1",
    ]);
    assert!(proved.status.success(), "{}", stderr(&proved));
    // The token from a file (kept out of `ps`) signs the same request alike.
    std::fs::write(p("token"), format!("{token}\n")).unwrap();
    let from_file = tessera(&[
        "trust",
        "prove",
        "--worker-key",
        &p("worker.key"),
        "--token-file",
        &p("token"),
        "--method",
        "POST",
        "--path",
        "/lease",
        "--body-file",
        &p("body"),
        "--timestamp",
        "1700000000",
        "--nonce",
        "n-1",
    ]);
    assert_eq!(
        stdout(&from_file),
        stdout(&proved),
        "{}",
        stderr(&from_file)
    );
    std::fs::write(p("empty"), "\n").unwrap();
    let empty = tessera(&[
        "trust",
        "prove",
        "--worker-key",
        &p("worker.key"),
        "--token-file",
        &p("empty"),
        "--method",
        "GET",
        "--path",
        "/",
        "--timestamp",
        "1",
        "--nonce",
        "n",
    ]);
    assert_eq!(empty.status.code(), Some(2), "{}", stderr(&empty));
    assert!(stderr(&empty).contains("empty"), "{}", stderr(&empty));
    std::fs::write(p("headers.json"), stdout(&proved)).unwrap();
    let (headers, body) = (p("headers.json"), p("body"));
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "trust",
            "verify",
            "--issuer-public",
            &issuer_pub,
            "--headers",
            &headers,
            "--method",
            "POST",
            "--path",
            "/lease",
            "--body-file",
            &body,
        ];
        args.extend_from_slice(extra);
        tessera(&args)
    };
    let ok = verify(&["--now", "1700000000"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let identity: serde_json::Value = serde_json::from_str(&stdout(&ok)).unwrap();
    assert_eq!(identity["holder_id"], "gpu-1");
    assert_eq!(identity["worker_key"], worker_pub.as_str());
    let allowed = verify(&[
        "--now",
        "1700000000",
        "--allow",
        "allow if req_right($r), right($r)",
        "--request-fact",
        "req_right=lease",
    ]);
    assert!(allowed.status.success(), "{}", stderr(&allowed));
    for (extra, kind) in [
        (vec!["--now", "1700000400"], "stale"),
        (vec!["--now", "1700000000", "--revoked", "rev-1"], "revoked"),
        (
            vec![
                "--now",
                "1700000000",
                "--allow",
                "allow if req_right($r), right($r)",
                "--request-fact",
                "req_right=admin",
            ],
            "policy",
        ),
        (
            vec![
                "--now",
                "1700000000",
                "--allow",
                "allow if right(\"lease\")",
                "--request-fact",
                "right=admin",
            ],
            "config",
        ),
    ] {
        let failed = verify(&extra);
        assert_eq!(failed.status.code(), Some(1), "{extra:?}");
        assert!(
            stderr(&failed).starts_with(&format!("error: {kind}: ")),
            "{extra:?}: {}",
            stderr(&failed)
        );
        // With --json the refusal is an object on stdout as well.
        let mut json = extra.clone();
        json.push("--json");
        let failed = verify(&json);
        assert_eq!(failed.status.code(), Some(1), "{extra:?}");
        let refusal: serde_json::Value = serde_json::from_str(&stdout(&failed)).unwrap();
        assert_eq!(
            (&refusal["valid"], &refusal["error"]),
            (&serde_json::json!(false), &serde_json::json!(kind)),
            "{extra:?}"
        );
    }
    // A policy that does not parse: one sentence with the column, no debug dump.
    let unparsable = verify(&["--now", "1700000000", "--allow", "allow if right($r"]);
    assert_eq!(unparsable.status.code(), Some(1));
    assert_eq!(
        stderr(&unparsable),
        "error: config: the policy does not parse at column 10 (at \"right($r\"): unexpected text"
    );
    let wrong_path = tessera(&[
        "trust",
        "verify",
        "--issuer-public",
        &issuer_pub,
        "--headers",
        &p("headers.json"),
        "--method",
        "POST",
        "--path",
        "/admin",
        "--body-file",
        &p("body"),
        "--now",
        "1700000000",
    ]);
    assert!(stderr(&wrong_path).starts_with("error: pop: "));

    std::fs::write(
        p("job.json"),
        r#"{"job_id": "j-1", "kind": "transcribe", "input": "s3://bucket/a.wav"}"#,
    )
    .unwrap();
    let signature = stdout(&tessera(&[
        "trust",
        "sign-job",
        "--issuer-key",
        &p("issuer.key"),
        "--job",
        &p("job.json"),
        "--worker-id",
        "gpu-1",
    ]));
    assert_eq!(signature.len(), 128);
    let good = tessera(&[
        "trust",
        "verify-job",
        "--issuer-public",
        &issuer_pub,
        "--job",
        &p("job.json"),
        "--worker-id",
        "gpu-1",
        "--signature",
        &signature,
    ]);
    assert!(good.status.success());
    let bad = tessera(&[
        "trust",
        "verify-job",
        "--issuer-public",
        &issuer_pub,
        "--job",
        &p("job.json"),
        "--worker-id",
        "gpu-2",
        "--signature",
        &signature,
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).starts_with("error: job: "));
    // The v2 message is signed and checked only with --v2 on both sides.
    let job = p("job.json");
    let signature_v2 = stdout(&tessera(&[
        "trust",
        "sign-job",
        "--issuer-key",
        &p("issuer.key"),
        "--job",
        &job,
        "--worker-id",
        "gpu-1",
        "--v2",
    ]));
    assert_eq!(signature_v2.len(), 128);
    assert_ne!(signature_v2, signature);
    let verify_v2 = [
        "trust",
        "verify-job",
        "--issuer-public",
        &issuer_pub,
        "--job",
        &job,
        "--worker-id",
        "gpu-1",
        "--signature",
        &signature_v2,
        "--v2",
    ];
    assert!(tessera(&verify_v2).status.success());
    assert_eq!(tessera(&verify_v2[..10]).status.code(), Some(1));
    let reserved = tessera(&[
        "trust",
        "mint",
        "--issuer-key",
        &p("issuer.key"),
        "--worker-public",
        &worker_pub,
        "--holder-id",
        "x",
        "--fact",
        "worker_key=evil",
        "--expires-at",
        "1",
    ]);
    assert_eq!(reserved.status.code(), Some(2));
}

#[test]
fn bench_prints_json() {
    let output = tessera(&["trust", "bench", "--seconds", "0.02", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let value: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    for key in [
        "mint_per_s",
        "prove_per_s",
        "authenticate_per_s",
        "authenticate_policy_per_s",
        "verify_job_per_s",
    ] {
        assert!(value[key].as_f64().unwrap() > 0.0, "{key}");
    }
}

/// SIGTERM used to kill the signer at once (status 143), leaving its socket
/// file behind. Now it stops gracefully: status 0, socket removed.
#[test]
fn regression_the_signer_stops_on_sigterm_and_removes_its_socket() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("issuer.key");
    let socket = dir.path().join("signer.sock");
    let keygen = tessera(&["trust", "keygen", "--out", key.to_str().unwrap()]);
    assert!(keygen.status.success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["trust", "signer", "--issuer-key"])
        .arg(&key)
        .arg("--unix")
        .arg(&socket)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Kill(&mut child);
    // Ready once a request is answered.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut stream = loop {
        if let Ok(stream) = std::os::unix::net::UnixStream::connect(&socket) {
            break stream;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the signer did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let request = br#"{"op":"public_key"}"#;
    stream
        .write_all(&(request.len() as u32).to_be_bytes())
        .unwrap();
    stream.write_all(request).unwrap();
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).unwrap();

    // The CLI signs through the sidecar: the same job signature as with the
    // key file, and a token that verifies against the issuer's public key.
    let socket_arg = socket.to_str().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    std::fs::write(path("job.json"), r#"{"job_id": "j-1"}"#).unwrap();
    let job = path("job.json");
    let sign = |issuer: &[&str]| {
        let mut args = vec!["trust", "sign-job", "--job", &job];
        args.extend_from_slice(issuer);
        args.extend_from_slice(&["--worker-id", "gpu-1"]);
        tessera(&args)
    };
    let by_signer = sign(&["--signer", socket_arg]);
    assert!(by_signer.status.success(), "{}", stderr(&by_signer));
    assert_eq!(
        stdout(&by_signer),
        stdout(&sign(&["--issuer-key", key.to_str().unwrap()]))
    );
    let both = sign(&[
        "--signer",
        socket_arg,
        "--issuer-key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(both.status.code(), Some(2));
    let nowhere = sign(&["--signer", &path("nothing.sock")]);
    assert_eq!(nowhere.status.code(), Some(1));
    assert!(
        stderr(&nowhere).starts_with("error: signer: "),
        "{}",
        stderr(&nowhere)
    );

    let worker = path("worker.key");
    let worker_public = stdout(&tessera(&["trust", "keygen", "--out", &worker]));
    let minted = tessera(&[
        "trust",
        "mint",
        "--signer",
        socket_arg,
        "--worker-public",
        &worker_public,
        "--holder-id",
        "gpu-1",
        "--fact",
        "right=lease",
        "--expires-at",
        "2000000000",
    ]);
    assert!(minted.status.success(), "{}", stderr(&minted));
    let proved = tessera(&[
        "trust",
        "prove",
        "--worker-key",
        &worker,
        "--token",
        &stdout(&minted),
        "--method",
        "GET",
        "--path",
        "/",
        "--timestamp",
        "1700000000",
        "--nonce",
        "n-1",
    ]);
    std::fs::write(path("headers.json"), stdout(&proved)).unwrap();
    let issuer_public = stdout(&tessera(&[
        "trust",
        "pubkey",
        "--key",
        key.to_str().unwrap(),
    ]));
    let verified = tessera(&[
        "trust",
        "verify",
        "--issuer-public",
        &issuer_public,
        "--headers",
        &path("headers.json"),
        "--method",
        "GET",
        "--path",
        "/",
        "--now",
        "1700000000",
    ]);
    assert!(verified.status.success(), "{}", stderr(&verified));
    assert!(
        stdout(&verified).contains("\"holder_id\":\"gpu-1\""),
        "{}",
        stdout(&verified)
    );

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.0.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.0.try_wait().unwrap() {
            break exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the signer did not stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(exit.code(), Some(0));
    assert!(!socket.exists(), "socket file left behind");
}

/// A client that pipelines requests and never reads the answers must not
/// make the signer buffer them: it answers one request at a time, so once
/// the socket is full it stops reading that client, and serves others.
#[test]
fn a_client_that_pipelines_and_never_reads_holds_bounded_signer_memory() {
    use std::io::{Read, Write};
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("issuer.key");
    let keygen = tessera(&["trust", "keygen", "--out", key.to_str().unwrap()]);
    assert!(keygen.status.success());
    let server = crate::common::start(
        &["trust", "signer"],
        &["--issuer-key", key.to_str().unwrap()],
    );
    let request = br#"{"op":"public_key"}"#;
    let mut frame = (request.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(request);
    let ask = |server: &crate::common::Server| {
        let mut tcp = std::net::TcpStream::connect(server.addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        tcp.write_all(&frame).unwrap();
        let mut length = [0u8; 4];
        tcp.read_exact(&mut length).unwrap();
        u32::from_be_bytes(length)
    };
    assert!(ask(&server) > 0);
    let (baseline, _) = server.memory_kib();

    let batch = frame.repeat(4096);
    let floods: Vec<_> = (0..4)
        .map(|_| {
            let batch = batch.clone();
            let mut tcp = std::net::TcpStream::connect(server.addr).unwrap();
            std::thread::spawn(move || {
                tcp.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
                // 64 MiB of requests at most; the signer stops reading long before.
                let sent = (0..256)
                    .take_while(|_| tcp.write_all(&batch).is_ok())
                    .count();
                (tcp, sent)
            })
        })
        .collect();
    let floods: Vec<_> = floods.into_iter().map(|f| f.join().unwrap()).collect();
    for (_, sent) in &floods {
        assert!(
            *sent < 256,
            "the signer kept reading a client that never reads"
        );
    }
    assert!(ask(&server) > 0, "another client is served meanwhile");
    let (_, peak) = server.memory_kib();
    assert!(
        peak.saturating_sub(baseline) < 16 * 1024,
        "peak {peak} KiB over a {baseline} KiB baseline"
    );
}

/// SIGHUP makes the signer read its key file again: new connections sign
/// with the new key, an open one keeps the key it started with.
#[test]
fn sighup_swaps_the_signers_key_for_new_connections() {
    use tessera_trust::signer::SignerClient;

    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("issuer.key");
    let keygen = |out: &std::path::Path| {
        let output = tessera(&["trust", "keygen", "--out", out.to_str().unwrap()]);
        assert!(output.status.success(), "{}", stderr(&output));
    };
    keygen(&key);
    let (server, log) = crate::common::start_logged(
        &["trust", "signer"],
        &["--issuer-key", key.to_str().unwrap()],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let address = server.addr.to_string();
    let limit = std::time::Duration::from_secs(20);
    let public_key = |client: &mut SignerClient| {
        runtime.block_on(async {
            let reply =
                tokio::time::timeout(limit, client.call(&serde_json::json!({"op": "public_key"})))
                    .await
                    .unwrap()
                    .unwrap();
            reply["public_key"].as_str().unwrap().to_owned()
        })
    };
    let connect = || {
        runtime
            .block_on(async { tokio::time::timeout(limit, SignerClient::connect(&address)).await })
            .unwrap()
            .unwrap()
    };
    let mut open = connect();
    let first = public_key(&mut open);

    let new_key = dir.path().join("new.key");
    keygen(&new_key);
    std::fs::rename(&new_key, &key).unwrap();
    server.hang_up();
    crate::common::wait_for_line(&log, "reloaded: the signer's keys");
    let second = public_key(&mut connect());
    assert_ne!(first, second);
    assert_eq!(
        public_key(&mut open),
        first,
        "an open connection keeps its key"
    );
}
