//! Proof of work for Tessera: the tlslp WORK puzzle (trailing zero bits of
//! SHA-256), Hashcash v1 stamps compatible with the Debian `hashcash` CLI, and
//! a SHA-256 leading-zero challenge for our own protocols.
//!
//! Solvers use a midstate, a fixed-length nonce in whole words of the last
//! block, only the rounds the test needs, and multi-buffer SIMD kernels picked
//! at run time (AVX-512, AVX2) with a portable fallback; they run on all cores,
//! can be cancelled or given a deadline, report progress, and re-verify what
//! they find. Verification is O(1), bounded in input length and never panics.
//!
//! ```
//! use tessera_pow::{SearchOptions, TlslpPuzzle};
//!
//! # fn main() -> Result<(), tessera_pow::Error> {
//! let puzzle = TlslpPuzzle::new("gkcjcibIFynKssuJnJpSrgvawiVjLjEbdFuYQzuWROTeTaSmqFCAzuwkwLCRgIIq", 12)?;
//! let solution = puzzle.solve(&SearchOptions::default())?;
//! assert!(puzzle.verify(&solution.suffix));
//! # Ok(())
//! # }
//! ```
//!
//! `unsafe` is confined to three files of the private `simd` module (`x86.rs`,
//! `shani.rs`, `dispatch.rs`), where every block carries a `// SAFETY:`
//! comment and runs only after CPU feature detection.
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)
)]

mod bench;
mod challenge;
mod error;
pub mod hashcash;
mod kernel_choice;
mod search;
mod simd;
mod tlslp;

use std::future::Future;

pub use bench::{compress256_rate, digest_per_candidate_rate, kernel_rate, BenchTarget};
pub use challenge::{Challenge, MAX_CHALLENGE_BITS, MAX_NONCE_LEN};
pub use error::Error;
pub use kernel_choice::cache_kernel_choice;
pub use search::{CancelToken, SearchOptions};
pub use simd::Kernel;
pub use tlslp::{
    digest, trailing_zero_bits, Solution, TlslpPuzzle, MAX_BITS, MAX_SUFFIX_LEN, MAX_TOKEN_LEN,
};

/// Runs `work` on a blocking thread; dropping the returned future cancels the
/// search through `options`' cancel token.
pub fn spawn_search<T: Send + 'static>(
    options: SearchOptions,
    work: impl FnOnce(&SearchOptions) -> Result<T, Error> + Send + 'static,
) -> impl Future<Output = Result<T, Error>> {
    let guard = CancelOnDrop(options.cancellation().clone());
    async move {
        let guard = guard;
        let result = tokio::task::spawn_blocking(move || work(&options))
            .await
            .map_err(|error| Error::Task(error.to_string()))?;
        std::mem::forget(guard);
        result
    }
}

/// Solves a tlslp puzzle on blocking threads; dropping the future cancels it.
pub fn solve_tlslp_async(
    puzzle: TlslpPuzzle,
    options: SearchOptions,
) -> impl Future<Output = Result<Solution, Error>> {
    spawn_search(options, move |options| puzzle.solve(options))
}

/// Cancels the search when the future holding it is dropped unfinished.
struct CancelOnDrop(CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}
