//! Tessera's fixes beyond trust-core: v2 proofs, replay protection, the signer
//! over TCP and a Unix socket, a separate job key and v2 job messages, and
//! property tests.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::json;
use tessera_trust::signer::{serve_signer, SignerClient, SignerOptions};
use tessera_trust::{
    mint, mint_requiring_pop_v2, prove, prove_v2, verify_job_as, JobFormat, MemoryReplayCache,
    MintRequest, Proof, Request, SecretKey, V2Context, Verifier,
};

const NOW: f64 = 1_700_000_000.0;

fn setup() -> (SecretKey, SecretKey, MintRequest) {
    let issuer = SecretKey::from_hex(&"11".repeat(32)).unwrap();
    let holder = SecretKey::from_hex(&"22".repeat(32)).unwrap();
    let request = MintRequest {
        worker_public: holder.public().to_hex(),
        holder_id: "gpu-1".into(),
        facts: vec![("right".into(), vec!["lease".into()])],
        revocation_id: "rev-1".into(),
        expires_at: NOW + 3600.0,
    };
    (issuer, holder, request)
}

const BODY: &[u8] = br#"{"job":1}"#;

fn http() -> Request<'static> {
    Request {
        method: "POST",
        path: "/lease",
        body: BODY,
    }
}

#[test]
fn v2_binds_service_query_and_token_and_can_be_required() {
    let (issuer, holder, request) = setup();
    let token = mint(&issuer, &request).unwrap();
    let query = [("page", "2"), ("q", "a b")];
    let context = V2Context {
        authority: "Jobs.Example:443",
        query: &query,
    };
    let proof = prove_v2(&holder, &token, &http(), &context, "1700000000", "n-1").unwrap();
    assert_eq!(
        proof.headers().last().unwrap(),
        &("X-EP-Version", "2".to_owned())
    );
    let verifier = Verifier::new(&issuer.public()).unwrap();
    verifier
        .authenticate_with(&proof, &http(), &context, NOW)
        .unwrap();
    // Another service, another query, or another token with the same holder: refused.
    let other_query = [("page", "3"), ("q", "a b")];
    for other in [
        V2Context {
            authority: "other.example",
            query: &query,
        },
        V2Context {
            authority: "jobs.example:443",
            query: &other_query,
        },
    ] {
        assert_eq!(
            verifier
                .authenticate_with(&proof, &http(), &other, NOW)
                .unwrap_err()
                .kind(),
            "pop"
        );
    }
    let second = mint(
        &issuer,
        &MintRequest {
            facts: vec![("right".into(), vec!["admin".into()])],
            ..request.clone()
        },
    )
    .unwrap();
    let swapped = Proof {
        token: second.clone(),
        ..proof.clone()
    };
    assert_eq!(
        verifier
            .authenticate_with(&swapped, &http(), &context, NOW)
            .unwrap_err()
            .kind(),
        "pop"
    );
    // v1 has that hole (W5): the same swap passes.
    let v1 = prove(&holder, &token, &http(), "1700000000", "n-2");
    verifier
        .authenticate(
            &Proof {
                token: second,
                ..v1.clone()
            },
            &http(),
            NOW,
        )
        .unwrap();
    // A verifier or a token can refuse v1.
    let mut strict = Verifier::new(&issuer.public()).unwrap();
    strict.require_v2(true);
    assert_eq!(
        strict.authenticate(&v1, &http(), NOW).unwrap_err().kind(),
        "pop"
    );
    let pinned = mint_requiring_pop_v2(&issuer, &request).unwrap();
    let v1_pinned = prove(&holder, &pinned, &http(), "1700000000", "n-3");
    assert_eq!(
        verifier
            .authenticate(&v1_pinned, &http(), NOW)
            .unwrap_err()
            .kind(),
        "pop"
    );
    let v2_pinned = prove_v2(&holder, &pinned, &http(), &context, "1700000000", "n-4").unwrap();
    verifier
        .authenticate_with(&v2_pinned, &http(), &context, NOW)
        .unwrap();
    // Fields with LF are refused in v2.
    let bad = Request {
        method: "POST",
        path: "/a\nb",
        body: BODY,
    };
    assert!(prove_v2(&holder, &token, &bad, &context, "1700000000", "n").is_err());
}

#[test]
fn the_same_proof_twice_is_a_replay() {
    let (issuer, holder, request) = setup();
    let token = mint(&issuer, &request).unwrap();
    let proof = prove(&holder, &token, &http(), "1700000000", "n-1");
    let mut verifier = Verifier::new(&issuer.public()).unwrap();
    verifier.replay_cache(Arc::new(MemoryReplayCache::new(1000)));
    verifier.authenticate(&proof, &http(), NOW).unwrap();
    assert_eq!(
        verifier
            .authenticate(&proof, &http(), NOW + 1.0)
            .unwrap_err()
            .kind(),
        "replay"
    );
    let fresh = prove(&holder, &token, &http(), "1700000000", "n-2");
    verifier.authenticate(&fresh, &http(), NOW).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signer_mints_and_keeps_serving_after_bad_clients() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (issuer, holder, _) = setup();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_signer(
        listener,
        issuer.clone(),
        SignerOptions::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let timeout = std::time::Duration::from_secs(10);
    // Hostile: an oversize length, a truncated frame, a non-object, duplicate keys.
    for (bytes, error) in [
        (vec![0x00, 0x10, 0x00, 0x01], "frame_too_large"),
        (vec![0, 0, 0, 20, b'{'], ""),
        (b"\x00\x00\x00\x02[]".to_vec(), "bad_frame"),
        (
            b"\x00\x00\x00\x1f{\"op\":\"mint\",\"op\":\"public_key\"}".to_vec(),
            "bad_frame",
        ),
    ] {
        let mut raw = tokio::net::TcpStream::connect(&address).await.unwrap();
        raw.write_all(&bytes).await.unwrap();
        raw.shutdown().await.unwrap();
        let mut reply = Vec::new();
        tokio::time::timeout(timeout, raw.read_to_end(&mut reply))
            .await
            .expect("signer hung")
            .unwrap();
        let reply = String::from_utf8_lossy(&reply);
        assert!(!reply.contains("\"ok\":true"));
        assert!(reply.contains(error), "{reply:?} lacks {error}");
    }
    // A correct client afterwards.
    let mut client = tokio::time::timeout(timeout, SignerClient::connect(&address))
        .await
        .unwrap()
        .unwrap();
    let public = tokio::time::timeout(timeout, client.call(&json!({"op": "public_key"})))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(public["public_key"], issuer.public().to_hex());
    let minted = tokio::time::timeout(
        timeout,
        client.call(
            &json!({"op": "mint", "worker_public": holder.public().to_hex(), "holder_id": "gpu-1",
            "facts": {"right": ["lease"]}, "revocation_id": "rev-1", "expires_at": NOW + 60.0}),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let token = minted["token"].as_str().unwrap();
    let proof = prove(&holder, token, &http(), "1700000000", "n-1");
    Verifier::new(&issuer.public())
        .unwrap()
        .authenticate(&proof, &http(), NOW)
        .unwrap();
    let reserved = tokio::time::timeout(
        timeout,
        client.call(
            &json!({"op": "mint", "worker_public": holder.public().to_hex(), "holder_id": "x",
            "facts": {"worker_key": ["evil"]}, "expires_at": NOW}),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(reserved["error"], "bad_request");
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_job_key_signs_jobs_over_a_private_unix_socket() {
    use std::os::unix::fs::PermissionsExt;
    let (issuer, _, _) = setup();
    let job_key = SecretKey::from_hex(&"33".repeat(32)).unwrap();
    let dir = std::env::temp_dir().join(format!("tessera-signer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("signer.sock");
    let _ = std::fs::remove_file(&path);
    let listener = tessera_trust::signer::bind_unix(&path).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let keys = tessera_trust::signer::SignerKeys {
        issuer: issuer.clone(),
        job: Some(job_key.clone()),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_signer(
        listener,
        keys,
        SignerOptions::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let mut client = SignerClient::connect_unix(&path).await.unwrap();
    let mut sign = async |format: serde_json::Value| {
        let request = json!({"op": "sign_job", "job": {"job_id": "j-1"}, "worker_id": "gpu-1", "format": format});
        tokio::time::timeout(std::time::Duration::from_secs(10), client.call(&request))
            .await
            .unwrap()
            .unwrap()
    };
    let v1 = sign(serde_json::Value::Null).await;
    let v2 = sign(json!(2)).await;
    let refused = sign(json!(3)).await;
    let mut job = tessera_trust::parse_job(r#"{"job_id":"j-1"}"#).unwrap();
    job.insert("sig".into(), v1["signature"].clone());
    tessera_trust::verify_job(&job_key.public(), &job, "gpu-1").unwrap();
    assert!(tessera_trust::verify_job(&issuer.public(), &job, "gpu-1").is_err());
    assert!(verify_job_as(JobFormat::V2, &job_key.public(), &job, "gpu-1").is_err());
    // v2 signs the same JSON behind a context string; neither format accepts the other.
    job.insert("sig".into(), v2["signature"].clone());
    verify_job_as(JobFormat::V2, &job_key.public(), &job, "gpu-1").unwrap();
    assert!(tessera_trust::verify_job(&job_key.public(), &job, "gpu-1").is_err());
    assert_eq!(
        tessera_trust::job_message_as(JobFormat::V2, &job, "gpu-1").unwrap(),
        format!(
            "tessera-job/2\n{}",
            tessera_trust::job_message(&job, "gpu-1").unwrap()
        )
    );
    assert_eq!(refused["error"], "bad_request");
    // A live socket is not taken over; once its signer is gone, it is replaced.
    assert!(tessera_trust::signer::bind_unix(&path).is_err());
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    drop(client);
    tessera_trust::signer::bind_unix(&path).unwrap();
    let not_a_socket = dir.join("file");
    std::fs::write(&not_a_socket, "keep").unwrap();
    assert!(tessera_trust::signer::bind_unix(&not_a_socket).is_err());
    assert_eq!(std::fs::read_to_string(&not_a_socket).unwrap(), "keep");
    let _ = std::fs::remove_dir_all(&dir);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_headers_and_tokens_never_panic(
        auth in ".{0,300}", sig in ".{0,140}", ts in ".{0,30}", nonce in ".{0,150}", version in ".{0,3}",
    ) {
        let (issuer, _, _) = setup();
        let headers = [("Authorization", auth.as_str()), ("X-EP-Signature", sig.as_str()), ("X-EP-Timestamp", ts.as_str()),
            ("X-EP-Nonce", nonce.as_str()), ("X-EP-Version", version.as_str())];
        if let Ok(proof) = Proof::from_headers(headers) {
            let _ = Verifier::new(&issuer.public()).unwrap().authenticate(&proof, &http(), NOW);
        }
    }

    #[test]
    fn a_proof_never_verifies_after_any_single_field_change(field in 0usize..5, replacement in "[a-zA-Z0-9/]{1,12}") {
        let (issuer, holder, request) = setup();
        let token = mint(&issuer, &request).unwrap();
        let proof = prove(&holder, &token, &http(), "1700000000", "n-1");
        let verifier = Verifier::new(&issuer.public()).unwrap();
        let body = format!("{replacement}!");
        let (mut method, mut path, mut body_bytes) = ("POST".to_owned(), "/lease".to_owned(), BODY.to_vec());
        let mut changed = proof.clone();
        match field {
            0 => method = format!("{replacement}X"),
            1 => path = format!("/{replacement}-x"),
            2 => body_bytes = body.into_bytes(),
            3 => changed.timestamp = "1700000001".into(),
            // Never "n-1" again: the change must be a change.
            _ => changed.nonce = format!("n-{replacement}-x"),
        }
        let request = Request { method: &method, path: &path, body: &body_bytes };
        prop_assert!(verifier.authenticate(&changed, &request, NOW).is_err());
    }
}

/// A list that changes under the verifier, as a fleet's does.
#[derive(Debug, Default)]
struct Changing {
    revoked: std::sync::Mutex<Option<Vec<String>>>,
}

impl tessera_trust::RevocationList for Changing {
    fn check(&self, id: &str) -> Option<bool> {
        let revoked = self.revoked.lock().unwrap();
        revoked.as_ref().map(|ids| ids.iter().any(|r| r == id))
    }

    fn announcements(&self) -> tokio::sync::broadcast::Receiver<Arc<str>> {
        // Not used by the verifier: it asks on every request.
        tokio::sync::broadcast::channel(1).1
    }
}

#[test]
fn a_revocation_list_that_changes_is_consulted_on_every_request() {
    use tessera_trust::WhenUnknown;
    let (issuer, holder, request) = setup();
    let token = mint(&issuer, &request).unwrap();
    let list = Arc::new(Changing {
        revoked: std::sync::Mutex::new(Some(Vec::new())),
    });
    let mut verifier = Verifier::new(&issuer.public()).unwrap();
    verifier.revocation_list(list.clone(), WhenUnknown::Refuse);
    let proof = prove(&holder, &token, &http(), "1700000000", "n-1");
    assert!(verifier.authenticate(&proof, &http(), NOW).is_ok());
    *list.revoked.lock().unwrap() = Some(vec!["rev-1".into()]);
    let refused = verifier.authenticate(&proof, &http(), NOW).unwrap_err();
    assert_eq!(refused.kind(), "revoked");
    // The list cannot say: refused by default, accepted when asked to.
    *list.revoked.lock().unwrap() = None;
    let unknown = verifier.authenticate(&proof, &http(), NOW).unwrap_err();
    assert_eq!(unknown.kind(), "unavailable");
    verifier.revocation_list(list, WhenUnknown::Accept);
    assert!(verifier.authenticate(&proof, &http(), NOW).is_ok());
}

/// A signer in a fleet does not mint a token under a revocation id the
/// fleet revoked (every verifier would refuse it at once); while the list
/// cannot say, it refuses by default.
#[tokio::test]
async fn the_signer_refuses_to_mint_under_a_revoked_id() {
    let (issuer, holder, _) = setup();
    let list = Arc::new(Changing {
        revoked: std::sync::Mutex::new(Some(vec!["rev-gone".into()])),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = SignerOptions {
        revocations: Some(list.clone()),
        ..SignerOptions::default()
    };
    let server = tokio::spawn(serve_signer(listener, issuer, options, async {
        let _ = stopped.await;
    }));
    let timeout = std::time::Duration::from_secs(10);
    let mut client = tokio::time::timeout(timeout, SignerClient::connect(&address))
        .await
        .unwrap()
        .unwrap();
    let mint = |revocation_id: &str| {
        json!({"op": "mint", "worker_public": holder.public().to_hex(), "holder_id": "w-1",
               "expires_at": 4_000_000_000.0, "revocation_id": revocation_id})
    };
    let mut call = async |request: serde_json::Value| {
        tokio::time::timeout(timeout, client.call(&request))
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(call(mint("rev-live")).await["ok"], true);
    let refused = call(mint("rev-gone")).await;
    assert_eq!(
        (&refused["ok"], &refused["error"]),
        (&json!(false), &json!("revoked"))
    );
    *list.revoked.lock().unwrap() = None;
    let unknown = call(mint("rev-live")).await;
    assert_eq!(unknown["error"], "unavailable");
    // Other operations do not depend on the list.
    assert_eq!(call(json!({"op": "public_key"})).await["ok"], true);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
