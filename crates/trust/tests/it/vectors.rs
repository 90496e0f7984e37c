//! Every case of `tests/data/vectors.json` (the shared trust vectors, produced by trust-core
//! 0.1.0), the `tessera` side.

use std::path::Path;

use serde_json::Value;
use tessera_trust::{
    canonical_v1, job_message, mint, parse_job, sign_job, verify_job, MintRequest, Proof,
    PublicKey, Request, SecretKey, Verifier,
};

fn vectors() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vectors.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // The file is Python's JSON: a few recorded values are NaN / Infinity, which
    // no test here reads; make them null so strict JSON parses.
    let text = text
        .replace(": NaN", ": null")
        .replace(": -Infinity", ": null")
        .replace(": Infinity", ": null");
    serde_json::from_str(&text).unwrap()
}

fn key(v: &Value, name: &str) -> SecretKey {
    SecretKey::from_hex(v["keys"][name]["seed_hex"].as_str().unwrap()).unwrap()
}

fn public(v: &Value, name: &str) -> PublicKey {
    PublicKey::from_hex(v["keys"][name]["public_hex"].as_str().unwrap()).unwrap()
}

#[test]
fn keys_derive_their_public_keys() {
    let v = vectors();
    for (name, entry) in v["keys"].as_object().unwrap() {
        assert_eq!(
            key(&v, name).public().to_hex(),
            entry["public_hex"].as_str().unwrap(),
            "{name}"
        );
    }
}

#[test]
fn minted_tokens_have_trust_cores_authority_block() {
    let v = vectors();
    let mut compared = 0;
    for (id, token) in v["tokens"].as_object().unwrap() {
        if token["how"] != "mint_biscuit" {
            continue;
        }
        let inputs = &token["inputs"];
        let facts: Vec<(String, Vec<String>)> = inputs["facts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| {
                let name = pair[0].as_str().unwrap().to_owned();
                let values = pair[1]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect();
                (name, values)
            })
            .collect();
        let request = MintRequest {
            worker_public: inputs["worker_public"].as_str().unwrap().to_owned(),
            holder_id: inputs["holder_id"].as_str().unwrap().to_owned(),
            facts,
            revocation_id: inputs["revocation_id"].as_str().unwrap().to_owned(),
            expires_at: inputs["expires_at"].as_f64().unwrap(),
        };
        let issuer = key(&v, inputs["issuer"].as_str().unwrap());
        let result = mint(&issuer, &request);
        if request
            .facts
            .iter()
            .any(|(name, _)| tessera_trust::RESERVED.contains(&name.as_str()))
        {
            // W6: reserved predicates are refused at mint.
            assert!(result.is_err(), "{id}");
            continue;
        }
        let token_text = result.unwrap_or_else(|e| panic!("{id}: {e}"));
        let parsed =
            biscuit_auth::Biscuit::from_base64(&token_text, issuer.public_biscuit()).unwrap();
        assert_eq!(
            parsed.print_block_source(0).unwrap(),
            token["authority_source"].as_str().unwrap(),
            "{id}"
        );
        assert_eq!(
            parsed.block_version(0).unwrap(),
            token["authority_block_version"].as_u64().unwrap() as u32,
            "{id}"
        );
        compared += 1;
    }
    assert!(compared >= 8);
}

#[test]
fn canonical_strings_and_signatures() {
    let v = vectors();
    for case in v["canonical"].as_array().unwrap() {
        let body = hex::decode(case["body_hex"].as_str().unwrap()).unwrap();
        let request = Request {
            method: case["method"].as_str().unwrap(),
            path: case["path"].as_str().unwrap(),
            body: &body,
        };
        let text = canonical_v1(
            &request,
            case["timestamp"].as_str().unwrap(),
            case["nonce"].as_str().unwrap(),
        );
        assert_eq!(
            text,
            case["canonical_text"].as_str().unwrap(),
            "{}",
            case["name"]
        );
        let signer = key(&v, case["signer"].as_str().unwrap());
        assert_eq!(
            signer.sign_hex(text.as_bytes()),
            case["signature_hex"].as_str().unwrap(),
            "{}",
            case["name"]
        );
    }
}

#[test]
fn request_cases() {
    let v = vectors();
    let cases = v["requests"].as_array().unwrap();
    assert!(cases.len() >= 60);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let accept: Vec<&str> = case["tessera"]["accept"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let outcome = run_request(&v, case);
        match &outcome {
            Ok(identity) => {
                assert!(
                    accept.contains(&"ok"),
                    "{name}: accepted, expected {accept:?}"
                );
                let expected = &case["tessera"]["identity"];
                assert_eq!(
                    identity.holder_id,
                    expected["holder_id"].as_str().unwrap(),
                    "{name}"
                );
                assert_eq!(
                    identity.worker_key,
                    expected["worker_key"].as_str().unwrap(),
                    "{name}"
                );
            }
            Err(error) => assert!(
                accept.contains(&error.kind()),
                "{name}: {error} ({}), expected {accept:?}",
                error.kind()
            ),
        }
    }
}

#[test]
fn the_token_cache_never_changes_an_outcome() {
    let v = vectors();
    // One verifier per issuer, shared by every case and run twice: the second
    // pass takes every token that parsed from the cache.
    let mut shared = std::collections::HashMap::new();
    for pass in 0..2 {
        for case in v["requests"].as_array().unwrap() {
            let issuer = case["issuer_public"].as_str().unwrap().to_owned();
            let verifier = shared
                .entry(issuer.clone())
                .or_insert_with(|| Verifier::new(&public(&v, &issuer)).unwrap());
            let uncached = run_request_with(&v, case, None);
            let cached = run_request_with(&v, case, Some(verifier));
            assert_eq!(
                cached.as_ref().map_err(tessera_trust::Error::kind),
                uncached.as_ref().map_err(tessera_trust::Error::kind),
                "pass {pass} {}",
                case["name"]
            );
        }
    }
}

fn run_request(v: &Value, case: &Value) -> Result<tessera_trust::Identity, tessera_trust::Error> {
    run_request_with(v, case, None)
}

fn run_request_with(
    v: &Value,
    case: &Value,
    shared: Option<&Verifier>,
) -> Result<tessera_trust::Identity, tessera_trust::Error> {
    let proof = match case["form"].as_str().unwrap() {
        "headers" => {
            let headers: Vec<(String, String)> = case["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            Proof::from_headers(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))?
        }
        _ => {
            let query: Vec<(String, String)> = case["query"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            Proof::from_query(query.iter().map(|(k, v)| (k.as_str(), v.as_str())))?
        }
    };
    let body = hex::decode(case["body_hex"].as_str().unwrap()).unwrap();
    let request = Request {
        method: case["method"].as_str().unwrap(),
        path: case["path"].as_str().unwrap(),
        body: &body,
    };
    let mut verifier = match shared {
        Some(shared) => shared.clone(),
        None => {
            let mut fresh = Verifier::new(&public(v, case["issuer_public"].as_str().unwrap()))?;
            fresh.token_cache(None);
            fresh
        }
    };
    verifier.max_skew(case["max_skew_seconds"].as_f64().unwrap());
    verifier.revoked(
        case["revoked_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_str().unwrap().to_owned()),
    );
    let now = case["now"].as_f64().unwrap();
    let authenticated = verifier.authenticate(&proof, &request, now)?;
    if let Some(policy) = case["policy"].as_object() {
        let facts: Vec<(String, String)> = policy["request_facts"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        verifier.check_policy(
            &authenticated,
            &facts,
            policy["allow"].as_str().unwrap(),
            now,
        )?;
    }
    Ok(authenticated.identity().clone())
}

#[test]
fn job_signatures() {
    let v = vectors();
    for case in v["jobs"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let accept: Vec<&str> = case["tessera"]["accept"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let issuer = key(&v, case["issuer"].as_str().unwrap());
        let job = match parse_job(case["job_json"].as_str().unwrap()) {
            Ok(job) => job,
            Err(error) => {
                assert!(accept.contains(&"reject"), "{name}: {error}");
                continue;
            }
        };
        let worker = case["worker_id"].as_str().unwrap();
        match job_message(&job, worker) {
            Ok(message) => {
                assert_eq!(message, case["canonical_text"].as_str().unwrap(), "{name}");
                assert_eq!(
                    sign_job(&issuer, &job, worker).unwrap(),
                    case["signature_hex"].as_str().unwrap(),
                    "{name}"
                );
            }
            Err(error) => assert!(accept.contains(&"reject"), "{name}: {error}"),
        }
    }
}

#[test]
fn job_verification_cases() {
    let v = vectors();
    for case in v["job_verify"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let accept = case["tessera"]["accept"][0].as_str().unwrap();
        let mut job = parse_job(case["job_json"].as_str().unwrap()).unwrap();
        job.insert("sig".into(), case["signature_hex"].clone());
        let result = verify_job(
            &public(&v, case["issuer_public"].as_str().unwrap()),
            &job,
            case["worker_id"].as_str().unwrap(),
        );
        assert_eq!(
            if result.is_ok() { "ok" } else { "fail" },
            accept,
            "{name}: {result:?}"
        );
    }
}

#[tokio::test]
async fn signer_frames() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let v = vectors();
    let issuer = key(&v, "issuer");
    for frame in v["wire"]["frames"].as_array().unwrap() {
        let name = frame["name"].as_str().unwrap();
        let expect = frame["tessera_signer"].as_str().unwrap();
        let bytes = hex::decode(frame["bytes_hex"].as_str().unwrap()).unwrap();
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let limits = tessera_trust::signer::SignerLimits::default();
        let issuer = issuer.clone();
        let task = tokio::spawn(async move {
            tessera_trust::signer::signer_connection(
                server,
                &tessera_trust::signer::SignerKeys::from(issuer),
                limits,
            )
            .await
        });
        client.write_all(&bytes).await.unwrap();
        client.shutdown().await.unwrap();
        let mut replies = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            client.read_to_end(&mut replies),
        )
        .await
        .expect("signer hung")
        .unwrap();
        task.await.unwrap().unwrap();
        let mut oks = 0;
        let mut errors = 0;
        let mut rest = replies.as_slice();
        while rest.len() >= 4 {
            let length = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            let reply: Value = serde_json::from_slice(&rest[4..4 + length]).unwrap();
            if reply["ok"] == true {
                oks += 1;
            } else {
                errors += 1;
            }
            rest = &rest[4 + length..];
        }
        match expect {
            "ok" => assert_eq!(
                (oks, errors),
                (
                    if name == "two_frames_back_to_back" {
                        2
                    } else {
                        1
                    },
                    0
                ),
                "{name}"
            ),
            "close" | "error_or_close" => assert_eq!(oks, 0, "{name}"),
            other => panic!("unknown expectation {other}"),
        }
    }
}
