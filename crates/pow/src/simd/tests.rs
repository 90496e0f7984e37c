//! Every kernel against the `sha2` and `sha1` crates on random inputs: the set
//! of words a kernel reports must be exactly the set whose real digest passes.

use rand::{Rng, SeedableRng};
use sha1::digest::generic_array::GenericArray;

use super::{sha1 as k1, sha256 as k256, Kernel, WordTables, ALPHABET};

/// Random blocks; every other case varies word 12, the unrolled fast path.
fn random_case(rng: &mut rand::rngs::StdRng, case: usize) -> ([u8; 64], [u8; 64], usize) {
    let mut first = [0u8; 64];
    let mut last = [0u8; 64];
    rng.fill(&mut first[..]);
    rng.fill(&mut last[..]);
    let var = if case.is_multiple_of(2) {
        12
    } else {
        rng.random_range(0..16)
    };
    (first, last, var)
}

fn bytes_with(last: &[u8; 64], var: usize, word: u32) -> [u8; 64] {
    let mut block = *last;
    block[var * 4..var * 4 + 4].copy_from_slice(&word.to_be_bytes());
    block
}

#[test]
fn sha256_kernels_report_exactly_the_words_whose_digest_passes() {
    let tables = WordTables::new(ALPHABET);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for case in 0..8 {
        let (first, last, var) = random_case(&mut rng, case);
        let mut midstate = k256::IV;
        sha2::compress256(&mut midstate, &[GenericArray::clone_from_slice(&first)]);
        let block = k256::Block {
            midstate,
            words: k256::words_of(&last),
            var,
        };
        let hi = &tables.hi[case * 7..case * 7 + 1];
        for (test, mask) in [
            (k256::Test::TrailingH7, 0x1F),
            (k256::Test::LeadingH0, 0xF800_0000),
        ] {
            let expected: Vec<u32> = tables
                .lo
                .iter()
                .map(|lo| hi[0] | lo)
                .filter(|word| {
                    let mut state = midstate;
                    sha2::compress256(
                        &mut state,
                        &[GenericArray::clone_from_slice(&bytes_with(
                            &last, var, *word,
                        ))],
                    );
                    let tested = if test == k256::Test::TrailingH7 {
                        state[7]
                    } else {
                        state[0]
                    };
                    tested & mask == 0
                })
                .collect();
            assert!(!expected.is_empty());
            for kernel in Kernel::available() {
                let mut found = Vec::new();
                super::scan_sha256(kernel, &block, test, hi, &tables.lo, mask, &mut |w| {
                    found.push(w);
                    false
                });
                assert_eq!(found, expected, "{kernel} {test:?} case {case} var {var}");
            }
        }
    }
}

#[test]
fn sha1_kernels_report_exactly_the_words_whose_digest_passes() {
    let tables = WordTables::new(ALPHABET);
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for case in 0..8 {
        let (first, last, var) = random_case(&mut rng, case);
        let mut midstate = k1::IV;
        sha1::compress(&mut midstate, &[GenericArray::clone_from_slice(&first)]);
        let block = k1::Block {
            midstate,
            words: k256::words_of(&last),
            var,
        };
        let hi = &tables.hi[case * 5..case * 5 + 1];
        let mask = 0xF800_0000;
        let expected: Vec<u32> = tables
            .lo
            .iter()
            .map(|lo| hi[0] | lo)
            .filter(|word| {
                let mut state = midstate;
                sha1::compress(
                    &mut state,
                    &[GenericArray::clone_from_slice(&bytes_with(
                        &last, var, *word,
                    ))],
                );
                state[0] & mask == 0
            })
            .collect();
        assert!(!expected.is_empty());
        for kernel in Kernel::available() {
            let mut found = Vec::new();
            super::scan_sha1(kernel, &block, hi, &tables.lo, mask, &mut |w| {
                found.push(w);
                false
            });
            assert_eq!(found, expected, "{kernel} case {case} var {var}");
        }
    }
}

#[test]
fn a_hit_stops_the_scan() {
    let tables = WordTables::new(ALPHABET);
    let block = k256::Block {
        midstate: k256::IV,
        words: [0; 16],
        var: 3,
    };
    for kernel in Kernel::available() {
        let mut calls = 0;
        let stopped = super::scan_sha256(
            kernel,
            &block,
            k256::Test::TrailingH7,
            &tables.hi[..1],
            &tables.lo,
            0,
            &mut |_| {
                calls += 1;
                true
            },
        );
        assert!(stopped);
        assert_eq!(calls, 1, "{kernel}");
    }
}
