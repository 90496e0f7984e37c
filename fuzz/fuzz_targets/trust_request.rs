//! The proof headers of a request (`Authorization: Biscuit …`, `X-EP-*`),
//! the canonical strings built from them, and a job to verify.
#![no_main]

use tessera_trust::{canonical_v1, parse_job, parse_timestamp, Proof, Request};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let headers: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .collect();
    if let Ok(proof) = Proof::from_headers(headers.iter().copied()) {
        let _ = parse_timestamp(&proof.timestamp);
        let request = Request {
            method: "POST",
            path: "/jobs",
            body: data,
        };
        let _ = canonical_v1(&request, &proof.timestamp, &proof.nonce);
    }
    let pairs: Vec<(&str, &str)> = text
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .collect();
    let _ = Proof::from_query(pairs.iter().copied());
    let _ = parse_job(text);
});
