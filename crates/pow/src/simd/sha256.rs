//! SHA-256 over a fixed midstate and a last block in which one word varies,
//! computing only what the zero-bit test needs (`../shared/spec/pow.md` §5):
//! rounds before the varying word run once per step, and a trailing-zero test
//! stops after round 61 (H7 is the midstate's word 7 plus the `e` of round 60).

use super::Lanes;

pub(crate) const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

pub(crate) const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// Which digest word the search tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Test {
    /// Low bits of H7 (tlslp: trailing zero bits); rounds 62-64 are skipped.
    TrailingH7,
    /// High bits of H0 (leading zero bits); all 64 rounds.
    LeadingH0,
}

/// A last block with one varying word, over a fixed midstate.
#[derive(Clone, Debug)]
pub(crate) struct Block {
    pub(crate) midstate: [u32; 8],
    pub(crate) words: [u32; 16],
    /// Index of the varying word; `words[var]` is ignored.
    pub(crate) var: usize,
}

/// The portable compression function, for midstates and re-checks.
pub(crate) fn compress(state: &mut [u32; 8], block: &[u32; 16]) {
    let mut w = [0u32; 64];
    w[..16].copy_from_slice(block);
    for i in 16..64 {
        w[i] = small_sigma1(w[i - 2])
            .wrapping_add(w[i - 7])
            .wrapping_add(small_sigma0(w[i - 15]))
            .wrapping_add(w[i - 16]);
    }
    let mut s = *state;
    for i in 0..64 {
        round(&mut s, K[i].wrapping_add(w[i]));
    }
    for (word, value) in state.iter_mut().zip(s) {
        *word = word.wrapping_add(value);
    }
}

/// Big-endian words of a 64-byte block.
pub(crate) fn words_of(bytes: &[u8]) -> [u32; 16] {
    let mut words = [0u32; 16];
    for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(4)) {
        *word = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    words
}

/// Everything about one step that does not depend on the varying word,
/// computed once in scalar code: the state after the rounds before it, and for
/// each schedule word whether it varies, the sum of its constant terms, and
/// K + W for the constant ones (pow.md §5, points 3 and 4).
pub(crate) struct Plan {
    pub(crate) test: Test,
    pub(crate) var: usize,
    /// Rounds to run: 61 for the H7 test, 64 for H0.
    rounds: usize,
    pub(crate) midstate: [u32; 8],
    prefix: [u32; 8],
    /// State after the rounds before the varying word's group of four.
    pub(crate) group_prefix: [u32; 8],
    /// The block's words (the varying one is overwritten per candidate).
    pub(crate) words: [u32; 16],
    /// T1 of round `var` without W, and its T2 (both constant).
    var_t1: u32,
    var_t2: u32,
    /// Bit 0: σ1(W[i-2]) varies, 1: W[i-7], 2: σ0(W[i-15]), 3: W[i-16]; 0 = constant word.
    terms: [u8; 64],
    constant: [u32; 64],
    k_plus_w: [u32; 64],
}

impl Plan {
    pub(crate) fn new(block: &Block, test: Test) -> Self {
        let rounds = match test {
            Test::TrailingH7 => 61,
            Test::LeadingH0 => 64,
        };
        let var = block.var;
        let terms = dependency_terms(var);
        let mut w = [0u32; 64];
        w[..16].copy_from_slice(&block.words);
        w[var] = 0;
        let mut constant = [0u32; 64];
        for i in 16..rounds {
            let parts = [
                small_sigma1(w[i - 2]),
                w[i - 7],
                small_sigma0(w[i - 15]),
                w[i - 16],
            ];
            for (bit, value) in parts.into_iter().enumerate() {
                if terms[i] & (1 << bit) == 0 {
                    constant[i] = constant[i].wrapping_add(value);
                }
            }
            // A varying word's scalar value is never read: its terms say so.
            w[i] = constant[i];
        }
        let mut k_plus_w = [0u32; 64];
        for i in 0..64 {
            k_plus_w[i] = K[i].wrapping_add(w[i]);
        }
        // State after the rounds before the varying word's group of four
        // (SHA-NI works in groups), then after the rest of the rounds before it.
        let group_start = var / 4 * 4;
        let mut group_prefix = block.midstate;
        for kw in k_plus_w.iter().take(group_start) {
            round(&mut group_prefix, *kw);
        }
        let mut prefix = group_prefix;
        for kw in k_plus_w.iter().take(var).skip(group_start) {
            round(&mut prefix, *kw);
        }
        let [a, b, c, _, e, f, g, h] = prefix;
        let var_t1 = h
            .wrapping_add(e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25))
            .wrapping_add(g ^ (e & (f ^ g)))
            .wrapping_add(K[var]);
        let var_t2 = (a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22))
            .wrapping_add((a & b) | (c & (a | b)));
        Self {
            test,
            var,
            rounds,
            midstate: block.midstate,
            prefix,
            group_prefix,
            words: block.words,
            var_t1,
            var_t2,
            terms,
            constant,
            k_plus_w,
        }
    }
}

#[inline(always)]
pub(crate) fn scan_lanes<V: Lanes>(
    plan: &Plan,
    hi: &[u32],
    lo: &[u32; 4096],
    mask: u32,
    on_hit: &mut dyn FnMut(u32) -> bool,
) -> bool {
    scan_with::<V>(plan, hi, lo, mask, on_hit, tested_word::<V>)
}

/// The portable kernel: the unrolled path where the layout allows it.
pub(crate) fn scan_portable(
    plan: &Plan,
    hi: &[u32],
    lo: &[u32; 4096],
    mask: u32,
    on_hit: &mut dyn FnMut(u32) -> bool,
) -> bool {
    match (plan.var, plan.test) {
        (FAST_VAR, Test::TrailingH7) => {
            scan_with::<u32>(plan, hi, lo, mask, on_hit, tested_word_unrolled::<61>)
        }
        (FAST_VAR, Test::LeadingH0) => {
            scan_with::<u32>(plan, hi, lo, mask, on_hit, tested_word_unrolled::<64>)
        }
        _ => scan_with::<u32>(plan, hi, lo, mask, on_hit, tested_word::<u32>),
    }
}

#[inline(always)]
fn scan_with<V: Lanes>(
    plan: &Plan,
    hi: &[u32],
    lo: &[u32; 4096],
    mask: u32,
    on_hit: &mut dyn FnMut(u32) -> bool,
    tested_word: impl Fn(&Plan, V) -> V,
) -> bool {
    super::scan_words::<V>(hi, lo, mask, on_hit, |word| tested_word(plan, word))
}

/// The varying word our layouts use (the nonce ends at byte 52 of the block).
pub(crate) const FAST_VAR: usize = 12;
const FAST_TERMS: [u8; 64] = dependency_terms(FAST_VAR);

/// Which terms of each schedule word depend on word `var` (bits as in [`Plan`]).
const fn dependency_terms(var: usize) -> [u8; 64] {
    let mut varies = [false; 64];
    varies[var] = true;
    let mut terms = [0u8; 64];
    let mut i = 16;
    while i < 64 {
        let mut t = 0;
        if varies[i - 2] {
            t |= 1;
        }
        if varies[i - 7] {
            t |= 2;
        }
        if varies[i - 15] {
            t |= 4;
        }
        if varies[i - 16] {
            t |= 8;
        }
        terms[i] = t;
        varies[i] = t != 0;
        i += 1;
    }
    terms
}

/// [`tested_word`] for one lane and `var == FAST_VAR`, fully unrolled with
/// constant indices so the schedule lives in registers (1.7× the loop on the
/// portable path). The SIMD kernels keep the loop: unrolled, LLVM stops
/// inlining their feature-gated intrinsics and they slow down twentyfold.
// seq! expands index arithmetic on literals (`4 - 4`, `3 >= 4`).
#[allow(
    clippy::eq_op,
    clippy::identity_op,
    clippy::erasing_op,
    clippy::absurd_extreme_comparisons,
    unused_comparisons,
    clippy::int_plus_one
)]
#[inline(always)]
fn tested_word_unrolled<const ROUNDS: usize>(plan: &Plan, word: u32) -> u32 {
    let mut w = [0u32; 64];
    w[FAST_VAR] = word;
    seq_macro::seq!(I in 16..64 {
        if I < ROUNDS && FAST_TERMS[I] != 0 {
            let mut x = plan.constant[I];
            if FAST_TERMS[I] & 1 != 0 {
                x = x.wrapping_add(small_sigma1(w[I - 2]));
            }
            if FAST_TERMS[I] & 2 != 0 {
                x = x.wrapping_add(w[I - 7]);
            }
            if FAST_TERMS[I] & 4 != 0 {
                x = x.wrapping_add(small_sigma0(w[I - 15]));
            }
            if FAST_TERMS[I] & 8 != 0 {
                x = x.wrapping_add(w[I - 16]);
            }
            w[I] = x;
        }
    });
    let mut s = plan.prefix;
    seq_macro::seq!(I in 12..64 {
        if I < ROUNDS {
            let k_plus_w = if I == FAST_VAR || FAST_TERMS[I] != 0 {
                K[I].wrapping_add(w[I])
            } else {
                plan.k_plus_w[I]
            };
            round(&mut s, k_plus_w);
        }
    });
    if ROUNDS == 61 {
        plan.midstate[7].wrapping_add(s[4])
    } else {
        plan.midstate[0].wrapping_add(s[0])
    }
}

/// H7 (trailing test) or H0 (leading test) for each lane's varying word.
#[inline(always)]
fn tested_word<V: Lanes>(plan: &Plan, word: V) -> V {
    let mut w = [V::splat(0); 64];
    w[plan.var] = word;
    for i in 16..plan.rounds {
        let terms = plan.terms[i];
        if terms == 0 {
            continue;
        }
        let mut x = V::splat(plan.constant[i]);
        if terms & 1 != 0 {
            x = x.add(small_sigma1(w[i - 2]));
        }
        if terms & 2 != 0 {
            x = x.add(w[i - 7]);
        }
        if terms & 4 != 0 {
            x = x.add(small_sigma0(w[i - 15]));
        }
        if terms & 8 != 0 {
            x = x.add(w[i - 16]);
        }
        w[i] = x;
    }
    // Round `var`: all but W is known, so T1 and T2 were folded into the plan.
    let [a, b, c, d, e, f, g, _] = plan.prefix.map(V::splat);
    let t1 = V::splat(plan.var_t1).add(w[plan.var]);
    let mut s = [t1.add(V::splat(plan.var_t2)), a, b, c, d.add(t1), e, f, g];
    for i in plan.var + 1..plan.rounds {
        let k_plus_w = if plan.terms[i] != 0 {
            V::splat(K[i]).add(w[i])
        } else {
            V::splat(plan.k_plus_w[i])
        };
        // For the H7 test, `a` from round 58 on never reaches e of round 60.
        if plan.test == Test::TrailingH7 && i >= 58 {
            round_e_only(&mut s, k_plus_w);
        } else {
            round_v(&mut s, k_plus_w);
        }
    }
    match plan.test {
        // After round index 60, e (s[4]) is what ends up in h.
        Test::TrailingH7 => V::splat(plan.midstate[7]).add(s[4]),
        Test::LeadingH0 => V::splat(plan.midstate[0]).add(s[0]),
    }
}

#[inline(always)]
fn small_sigma0<V: Lanes>(x: V) -> V {
    V::xor3(x.ror::<7, 25>(), x.ror::<18, 14>(), x.shr::<3>())
}

#[inline(always)]
fn small_sigma1<V: Lanes>(x: V) -> V {
    V::xor3(x.ror::<17, 15>(), x.ror::<19, 13>(), x.shr::<10>())
}

#[inline(always)]
fn round_v<V: Lanes>(s: &mut [V; 8], k_plus_w: V) {
    let [a, b, c, d, e, f, g, h] = *s;
    let big_sigma1 = V::xor3(e.ror::<6, 26>(), e.ror::<11, 21>(), e.ror::<25, 7>());
    let t1 = h.add(big_sigma1).add(V::choose(e, f, g)).add(k_plus_w);
    let big_sigma0 = V::xor3(a.ror::<2, 30>(), a.ror::<13, 19>(), a.ror::<22, 10>());
    let t2 = big_sigma0.add(V::majority(a, b, c));
    *s = [t1.add(t2), a, b, c, d.add(t1), e, f, g];
}

/// A round whose new `a` is never read: only `e` is computed.
#[inline(always)]
fn round_e_only<V: Lanes>(s: &mut [V; 8], k_plus_w: V) {
    let [a, b, c, d, e, f, g, h] = *s;
    let big_sigma1 = V::xor3(e.ror::<6, 26>(), e.ror::<11, 21>(), e.ror::<25, 7>());
    let t1 = h.add(big_sigma1).add(V::choose(e, f, g)).add(k_plus_w);
    *s = [a, a, b, c, d.add(t1), e, f, g];
}

fn round(s: &mut [u32; 8], k_plus_w: u32) {
    round_v::<u32>(s, k_plus_w);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_compress_matches_sha2() {
        let block: Vec<u8> = (0..64u8).collect();
        let mut ours = IV;
        compress(&mut ours, &words_of(&block));
        let mut theirs = IV;
        sha2::compress256(
            &mut theirs,
            &[*sha2::digest::generic_array::GenericArray::from_slice(
                &block,
            )],
        );
        assert_eq!(ours, theirs);
    }
}
