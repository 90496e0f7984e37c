//! Measurements for `tessera pow bench`: each kernel's candidate rate and, in
//! the same run, the two baselines of `../shared/spec/pow.md` §6 — the raw
//! single-stream `sha2::compress256` rate and a digest per candidate.

use std::time::Instant;

use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha256};

use crate::search::{measure, Target};
use crate::Kernel;

/// Which puzzle a kernel rate is measured on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchTarget {
    /// tlslp: SHA-256 trailing zero bits.
    Tlslp,
    /// Hashcash: SHA-1 leading zero bits.
    Hashcash,
}

/// Candidates per second of `kernel` on the calling thread, over `steps` × 65,536 candidates.
pub fn kernel_rate(kernel: Kernel, target: BenchTarget, steps: u64) -> f64 {
    let target = match target {
        BenchTarget::Tlslp => Target::Sha256Trailing,
        BenchTarget::Hashcash => Target::Sha1Leading,
    };
    measure(kernel, target, steps.max(1))
}

/// Single-stream `sha2::compress256` calls per second on one block (the machine's
/// compression limit, with sha2's own SHA-NI detection).
pub fn compress256_rate(calls: u64) -> f64 {
    let mut state = [0u32; 8];
    let mut block = GenericArray::from([0u8; 64]);
    let started = Instant::now();
    for i in 0..calls {
        block[0] = i as u8;
        sha2::compress256(&mut state, std::slice::from_ref(&block));
    }
    std::hint::black_box(state);
    calls as f64 / started.elapsed().as_secs_f64()
}

/// Candidates per second of the naive approach: clone a hasher that absorbed the
/// token, add the suffix, finalize (what the reference solver does with OpenSSL).
pub fn digest_per_candidate_rate(calls: u64) -> f64 {
    let mut base = Sha256::new();
    base.update([b'x'; 64]);
    let started = Instant::now();
    let mut sink = 0u8;
    for i in 0..calls {
        let mut hasher = base.clone();
        hasher.update((i as u32).to_be_bytes());
        sink ^= hasher.finalize()[31];
    }
    std::hint::black_box(sink);
    calls as f64 / started.elapsed().as_secs_f64()
}
