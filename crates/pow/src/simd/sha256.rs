//! SHA-256 over a fixed midstate and a last block in which one word varies,
//! computing only what the zero-bit test needs (`../shared/spec/pow.md` §5):
//! rounds before the varying word run once per step, and a trailing-zero test
//! stops after round 61 (H7 is the midstate's word 7 plus the `e` of round 60).

use super::{Kernel, Lanes};

pub(crate) const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

const K: [u32; 64] = [
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
    // No varying word: `var` past the block.
    let w = schedule::<u32>(block, usize::MAX, 64).map_var(0);
    let mut s = *state;
    for (i, k) in K.iter().enumerate() {
        round(&mut s, w.get(i), *k);
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

/// Scans `hi × lo` values of the varying word; calls `on_hit` for every word
/// whose tested digest word is zero under `mask`, and stops when it returns true.
pub(crate) fn scan(
    kernel: Kernel,
    block: &Block,
    test: Test,
    hi: &[u32],
    lo: &[u32; 4096],
    mask: u32,
    on_hit: &mut dyn FnMut(u32) -> bool,
) -> bool {
    let prefix = prefix_state(block);
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 | Kernel::Avx512 => super::x86::scan_sha256(kernel, block, &prefix, test, hi, lo, mask, on_hit),
        _ => scan_lanes::<u32>(block, &prefix, test, hi, lo, mask, on_hit),
    }
}

/// State after the rounds that precede the varying word.
fn prefix_state(block: &Block) -> [u32; 8] {
    let mut s = block.midstate;
    for i in 0..block.var {
        round(&mut s, block.words[i], K[i]);
    }
    s
}

#[inline(always)]
pub(crate) fn scan_lanes<V: Lanes>(
    block: &Block,
    prefix: &[u32; 8],
    test: Test,
    hi: &[u32],
    lo: &[u32; 4096],
    mask: u32,
    on_hit: &mut dyn FnMut(u32) -> bool,
) -> bool {
    let mask_v = V::splat(mask);
    for &high in hi {
        let high_v = V::splat(high);
        for chunk in lo.chunks_exact(V::LANES) {
            let word = high_v.or(V::load(chunk));
            let tested = match test {
                Test::TrailingH7 => trailing_word::<V>(block, prefix, word),
                Test::LeadingH0 => leading_word::<V>(block, prefix, word),
            };
            let mut hits = tested.zero_under_mask(mask_v);
            while hits != 0 {
                let lane = hits.trailing_zeros() as usize;
                hits &= hits - 1;
                if on_hit(high | chunk[lane]) {
                    return true;
                }
            }
        }
    }
    false
}

/// H7 for each lane's value of the varying word.
#[inline(always)]
fn trailing_word<V: Lanes>(block: &Block, prefix: &[u32; 8], word: V) -> V {
    let w = schedule::<V>(&block.words, block.var, 61).map_var(word);
    let mut s = prefix.map(V::splat);
    for i in block.var..61 {
        round_v(&mut s, w.get(i), K[i]);
    }
    // After round index 60, e (s[4]) is what ends up in h.
    V::splat(block.midstate[7]).add(s[4])
}

/// H0 for each lane's value of the varying word.
#[inline(always)]
fn leading_word<V: Lanes>(block: &Block, prefix: &[u32; 8], word: V) -> V {
    let w = schedule::<V>(&block.words, block.var, 64).map_var(word);
    let mut s = prefix.map(V::splat);
    for i in block.var..64 {
        round_v(&mut s, w.get(i), K[i]);
    }
    V::splat(block.midstate[0]).add(s[0])
}

/// A message schedule with a placeholder for the varying word, completed by `map_var`.
struct Schedule<'a, V> {
    words: &'a [u32; 16],
    var: usize,
    len: usize,
    _lanes: std::marker::PhantomData<V>,
}

struct Expanded<V> {
    w: [V; 64],
}

impl<V: Lanes> Expanded<V> {
    #[inline(always)]
    fn get(&self, i: usize) -> V {
        self.w[i]
    }
}

impl<V: Lanes> Schedule<'_, V> {
    #[inline(always)]
    fn map_var(self, word: V) -> Expanded<V> {
        let mut w = [V::splat(0); 64];
        for (i, slot) in w.iter_mut().enumerate().take(16) {
            *slot = if i == self.var { word } else { V::splat(self.words[i]) };
        }
        for i in 16..self.len {
            w[i] = small_sigma1(w[i - 2]).add(w[i - 7]).add(small_sigma0(w[i - 15])).add(w[i - 16]);
        }
        Expanded { w }
    }
}

#[inline(always)]
fn schedule<V: Lanes>(words: &[u32; 16], var: usize, len: usize) -> Schedule<'_, V> {
    Schedule {
        words,
        var,
        len,
        _lanes: std::marker::PhantomData,
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
fn round_v<V: Lanes>(s: &mut [V; 8], w: V, k: u32) {
    let [a, b, c, d, e, f, g, h] = *s;
    let big_sigma1 = V::xor3(e.ror::<6, 26>(), e.ror::<11, 21>(), e.ror::<25, 7>());
    let t1 = h.add(big_sigma1).add(V::choose(e, f, g)).add(V::splat(k).add(w));
    let big_sigma0 = V::xor3(a.ror::<2, 30>(), a.ror::<13, 19>(), a.ror::<22, 10>());
    let t2 = big_sigma0.add(V::majority(a, b, c));
    *s = [t1.add(t2), a, b, c, d.add(t1), e, f, g];
}

fn round(s: &mut [u32; 8], w: u32, k: u32) {
    round_v::<u32>(s, w, k);
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
        sha2::compress256(&mut theirs, &[*sha2::digest::generic_array::GenericArray::from_slice(&block)]);
        assert_eq!(ours, theirs);
    }
}
