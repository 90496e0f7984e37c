//! SHA-1 over a fixed midstate and a last block in which one word varies, for
//! Hashcash minting: rounds before the varying word run once per step, and
//! only H0 (leading zero bits) is computed per candidate.

use super::Lanes;

pub(crate) const IV: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];

/// A last block with one varying word, over a fixed midstate.
#[derive(Clone, Debug)]
pub(crate) struct Block {
    pub(crate) midstate: [u32; 5],
    pub(crate) words: [u32; 16],
    /// Index of the varying word; `words[var]` is ignored.
    pub(crate) var: usize,
}

/// The portable compression function, for midstates and re-checks.
pub(crate) fn compress(state: &mut [u32; 5], block: &[u32; 16]) {
    let mut w = [0u32; 80];
    w[..16].copy_from_slice(block);
    for t in 16..80 {
        w[t] = (w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]).rotate_left(1);
    }
    let mut s = *state;
    for (t, wt) in w.iter().enumerate() {
        round_v::<u32>(&mut s, t, K[t / 20].wrapping_add(*wt));
    }
    for (word, value) in state.iter_mut().zip(s) {
        *word = word.wrapping_add(value);
    }
}

const K: [u32; 4] = [0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xCA62C1D6];

/// What one step can compute without the varying word: the state after the
/// rounds before it, each schedule word's constant XOR part and whether it
/// varies, and K + W for the constant words.
pub(crate) struct Plan {
    pub(crate) var: usize,
    pub(crate) midstate0: u32,
    pub(crate) prefix: [u32; 5],
    /// The block's words (the varying one is overwritten per candidate).
    pub(crate) words: [u32; 16],
    /// Bit 0: W[t-3] varies, 1: W[t-8], 2: W[t-14], 3: W[t-16]; 0 = constant word.
    terms: [u8; 80],
    constant: [u32; 80],
    k_plus_w: [u32; 80],
}

impl Plan {
    pub(crate) fn new(block: &Block) -> Self {
        let var = block.var;
        let mut varies = [false; 80];
        varies[var] = true;
        let mut w = [0u32; 80];
        w[..16].copy_from_slice(&block.words);
        w[var] = 0;
        let mut terms = [0u8; 80];
        let mut constant = [0u32; 80];
        for t in 16..80 {
            for (bit, back) in [3, 8, 14, 16].into_iter().enumerate() {
                if varies[t - back] {
                    terms[t] |= 1 << bit;
                } else {
                    constant[t] ^= w[t - back];
                }
            }
            varies[t] = terms[t] != 0;
            // A constant word is its rotated XOR; a varying one keeps only the constant part (unrotated).
            w[t] = if varies[t] {
                0
            } else {
                constant[t].rotate_left(1)
            };
        }
        let mut k_plus_w = [0u32; 80];
        for t in 0..80 {
            k_plus_w[t] = K[t / 20].wrapping_add(w[t]);
        }
        let mut prefix = block.midstate;
        for (t, kw) in k_plus_w.iter().enumerate().take(var) {
            round_v::<u32>(&mut prefix, t, *kw);
        }
        Self {
            var,
            midstate0: block.midstate[0],
            words: block.words,
            prefix,
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
    super::scan_words::<V>(hi, lo, mask, on_hit, |word| first_word::<V>(plan, word))
}

/// H0 for each lane's varying word.
#[inline(always)]
fn first_word<V: Lanes>(plan: &Plan, word: V) -> V {
    let mut w = [V::splat(0); 80];
    w[plan.var] = word;
    for t in 16..80 {
        let terms = plan.terms[t];
        if terms == 0 {
            continue;
        }
        let mut x = V::splat(plan.constant[t]);
        if terms & 1 != 0 {
            x = x.xor(w[t - 3]);
        }
        if terms & 2 != 0 {
            x = x.xor(w[t - 8]);
        }
        if terms & 4 != 0 {
            x = x.xor(w[t - 14]);
        }
        if terms & 8 != 0 {
            x = x.xor(w[t - 16]);
        }
        w[t] = x.rol::<1, 31>();
    }
    let mut s = plan.prefix.map(V::splat);
    for t in plan.var..80 {
        let k_plus_w = if t == plan.var || plan.terms[t] != 0 {
            V::splat(K[t / 20]).add(w[t])
        } else {
            V::splat(plan.k_plus_w[t])
        };
        round_v(&mut s, t, k_plus_w);
    }
    V::splat(plan.midstate0).add(s[0])
}

#[inline(always)]
fn round_v<V: Lanes>(s: &mut [V; 5], t: usize, k_plus_w: V) {
    let [a, b, c, d, e] = *s;
    let f = match t {
        0..=19 => V::choose(b, c, d),
        40..=59 => V::majority(b, c, d),
        _ => V::xor3(b, c, d),
    };
    let temp = a.rol::<5, 27>().add(f).add(e).add(k_plus_w);
    *s = [temp, a, b.rol::<30, 2>(), c, d];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_compress_matches_sha1() {
        let block: Vec<u8> = (100..164u8).collect();
        let mut ours = IV;
        compress(&mut ours, &super::super::sha256::words_of(&block));
        let mut theirs = IV;
        sha1::compress(
            &mut theirs,
            &[*sha1::digest::generic_array::GenericArray::from_slice(
                &block,
            )],
        );
        assert_eq!(ours, theirs);
    }
}
