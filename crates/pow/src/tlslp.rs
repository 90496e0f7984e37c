//! The tlslp WORK puzzle (`../shared/spec/pow.md` §1): a suffix such that
//! SHA-256(token ‖ suffix) read as a big-endian integer has its lowest `n_bits`
//! bits zero. Verification is one or two compressions and never panics.

use sha2::{Digest, Sha256};

use crate::search::{search, Found, SearchOptions, Target};
use crate::Error;

/// Longest token the reference client accepts.
pub const MAX_TOKEN_LEN: usize = 128;
/// Largest difficulty the reference client accepts.
pub const MAX_BITS: u32 = 64;
/// Longest suffix we produce or verify: verification stays at most two
/// compressions past the token, and nobody needs more (spec §1).
pub const MAX_SUFFIX_LEN: usize = 64;

/// A WORK challenge: a token and the number of trailing zero bits required.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlslpPuzzle {
    token: String,
    bits: u32,
}

/// A found suffix and what it cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Solution {
    /// The suffix to send.
    pub suffix: String,
    /// Candidates evaluated (all threads).
    pub candidates: u64,
}

impl TlslpPuzzle {
    /// A puzzle for `token` (1–128 characters of `[A-Za-z0-9_-]`) and `bits` (0–64).
    ///
    /// # Errors
    /// [`Error::InvalidToken`] or [`Error::InvalidBits`].
    pub fn new(token: &str, bits: u32) -> Result<Self, Error> {
        if token.is_empty() {
            return Err(Error::InvalidToken("empty"));
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(Error::InvalidToken("longer than 128 characters"));
        }
        if !token.bytes().all(is_token_byte) {
            return Err(Error::InvalidToken("characters outside [A-Za-z0-9_-]"));
        }
        if bits > MAX_BITS {
            return Err(Error::InvalidBits {
                bits,
                max: MAX_BITS,
            });
        }
        Ok(Self {
            token: token.to_owned(),
            bits,
        })
    }

    /// The token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Trailing zero bits required.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Expected candidates to a solution: 2^bits.
    pub fn expected_work(&self) -> f64 {
        2f64.powi(self.bits as i32)
    }

    /// Whether `suffix` solves the puzzle. Suffixes longer than
    /// [`MAX_SUFFIX_LEN`] are refused before hashing.
    pub fn verify(&self, suffix: &str) -> bool {
        suffix.len() <= MAX_SUFFIX_LEN
            && trailing_zero_bits(&digest(&self.token, suffix)) >= self.bits
    }

    /// Searches for a suffix of `[A-Za-z0-9_-]`. Always terminates with a
    /// solution unless cancelled or out of time; the solution is re-verified.
    ///
    /// # Errors
    /// [`Error::Cancelled`], [`Error::DeadlineExceeded`].
    pub fn solve(&self, options: &SearchOptions) -> Result<Solution, Error> {
        let verify = |suffix: &str| self.verify(suffix);
        let Found { nonce, candidates } = search(
            self.token.as_bytes(),
            crate::simd::ALPHABET,
            Target::Sha256Trailing,
            self.bits,
            MAX_SUFFIX_LEN,
            options,
            &verify,
        )?;
        debug_assert!(self.verify(&nonce));
        Ok(Solution {
            suffix: nonce,
            candidates,
        })
    }
}

/// SHA-256 of token ‖ suffix.
pub fn digest(token: &str, suffix: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(token.as_bytes());
    hasher.update(suffix.as_bytes());
    hasher.finalize().into()
}

/// Trailing zero bits of a digest read as a big-endian integer.
pub fn trailing_zero_bits(digest: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in digest.iter().rev() {
        if *byte == 0 {
            bits += 8;
        } else {
            return bits + byte.trailing_zeros();
        }
    }
    bits
}

fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TOKEN: &str = "gkcjcibIFynKssuJnJpSrgvawiVjLjEbdFuYQzuWROTeTaSmqFCAzuwkwLCRgIIq";

    #[test]
    fn the_worked_example_of_the_spec() {
        assert_eq!(
            hex::encode(digest(TOKEN, "B9PD")),
            "f28e9c209c6cc5b41fa0aaebdaddeb895f7941b864b3074d36170e043cb00000"
        );
        assert!(TlslpPuzzle::new(TOKEN, 20).unwrap().verify("B9PD"));
        assert!(!TlslpPuzzle::new(TOKEN, 21).unwrap().verify("B9PD"));
        assert!(TlslpPuzzle::new(TOKEN, 0).unwrap().verify("anything"));
    }

    #[test]
    fn tokens_and_bits_are_checked() {
        assert!(TlslpPuzzle::new("", 1).is_err());
        assert!(TlslpPuzzle::new("abc.def", 1).is_err());
        assert!(TlslpPuzzle::new(&"a".repeat(129), 1).is_err());
        assert!(TlslpPuzzle::new(&"a".repeat(128), 64).is_ok());
        assert!(TlslpPuzzle::new("abc", 65).is_err());
    }

    #[test]
    fn over_long_suffixes_are_refused_before_hashing() {
        let puzzle = TlslpPuzzle::new(TOKEN, 0).unwrap();
        assert!(puzzle.verify(&"A".repeat(MAX_SUFFIX_LEN)));
        assert!(!puzzle.verify(&"A".repeat(MAX_SUFFIX_LEN + 1)));
    }

    #[test]
    fn every_kernel_solves_and_the_solution_verifies() {
        for kernel in crate::Kernel::available() {
            for bits in [0, 1, 12, 17] {
                let puzzle = TlslpPuzzle::new(TOKEN, bits).unwrap();
                let mut options = SearchOptions::default();
                options.kernel(kernel).unwrap().threads(2);
                let solution = puzzle.solve(&options).unwrap();
                assert!(puzzle.verify(&solution.suffix), "{kernel} {bits}");
                assert!(solution.suffix.len() <= MAX_SUFFIX_LEN);
                assert!(
                    solution.suffix.bytes().all(is_token_byte),
                    "{}",
                    solution.suffix
                );
            }
        }
    }

    /// tlslp defect D5: with the default token no 1-character suffix solves
    /// n_bits 5 or 6 and no 3-character suffix solves 18; the reference solver,
    /// which tries only that length, spins forever there.
    #[test]
    fn regression_d5_difficulties_without_a_minimal_length_solution_are_solved() {
        for bits in [5, 6, 18] {
            let puzzle = TlslpPuzzle::new(TOKEN, bits).unwrap();
            let solution = puzzle.solve(&SearchOptions::default()).unwrap();
            assert!(puzzle.verify(&solution.suffix));
            assert!(solution.suffix.len() > bits.div_ceil(6) as usize);
        }
    }

    #[test]
    fn tokens_of_every_length_are_solved() {
        for len in [1, 3, 55, 56, 60, 63, 64, 65, 100, 128] {
            let token = "t".repeat(len);
            let puzzle = TlslpPuzzle::new(&token, 10).unwrap();
            let solution = puzzle.solve(&SearchOptions::default()).unwrap();
            assert!(puzzle.verify(&solution.suffix), "token length {len}");
        }
    }

    #[tokio::test]
    async fn dropping_the_async_solve_cancels_it() {
        let options = SearchOptions::default();
        let token = options.cancellation().clone();
        let progress = options.progress();
        let future = crate::solve_tlslp_async(TlslpPuzzle::new(TOKEN, 64).unwrap(), options);
        let handle = tokio::spawn(future);
        while progress.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        handle.abort();
        let _ = handle.await;
        assert!(token.is_cancelled());
        let solved = crate::solve_tlslp_async(
            TlslpPuzzle::new(TOKEN, 8).unwrap(),
            SearchOptions::default(),
        )
        .await
        .unwrap();
        assert!(TlslpPuzzle::new(TOKEN, 8).unwrap().verify(&solved.suffix));
    }

    proptest! {
        #[test]
        fn verify_never_panics(token in "[A-Za-z0-9_-]{1,128}", bits in 0u32..=64, suffix in ".{0,100}") {
            let puzzle = TlslpPuzzle::new(&token, bits).unwrap();
            let _ = puzzle.verify(&suffix);
        }

        #[test]
        fn trailing_zero_bits_matches_the_integer_reading(bytes in any::<[u8; 32]>()) {
            let as_int = u128::from_be_bytes(bytes[16..].try_into().unwrap());
            let expected = if as_int == 0 { 128 + u128::from_be_bytes(bytes[..16].try_into().unwrap()).trailing_zeros().min(128) } else { as_int.trailing_zeros() };
            prop_assert_eq!(trailing_zero_bits(&bytes), expected);
        }
    }
}
