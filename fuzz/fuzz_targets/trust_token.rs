//! A token envelope (a Biscuit in base64) with a proof, through the
//! verifier: the cheap checks, the parse, the signature and the policy.
#![no_main]

use tessera_trust::{Proof, Request, SecretKey, Verifier};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let issuer = SecretKey::from_hex(&"11".repeat(32)).expect("a valid key");
    let verifier = Verifier::new(&issuer.public()).expect("a verifier");
    let headers = [
        ("Authorization", format!("Biscuit {token}")),
        ("X-EP-Signature", "ab".repeat(64)),
        ("X-EP-Timestamp", "1700000000".to_owned()),
        ("X-EP-Nonce", "nonce-1".to_owned()),
    ];
    let Ok(proof) = Proof::from_headers(headers.iter().map(|(k, v)| (*k, v.as_str()))) else {
        return;
    };
    let request = Request {
        method: "GET",
        path: "/",
        body: b"",
    };
    let _ = verifier.authenticate(&proof, &request, 1_700_000_000.0);
});
