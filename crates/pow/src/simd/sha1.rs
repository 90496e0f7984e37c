//! SHA-1 over a fixed midstate and a last block in which one word varies, for
//! Hashcash minting: rounds before the varying word run once per step, and
//! only H0 (leading zero bits) is computed per candidate.

use super::{Kernel, Lanes};

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
    let w = expand::<u32>(block, usize::MAX, 0);
    let mut s = *state;
    for (t, wt) in w.iter().enumerate() {
        round(&mut s, t, *wt);
    }
    for (word, value) in state.iter_mut().zip(s) {
        *word = word.wrapping_add(value);
    }
}

/// Scans `hi × lo` values of the varying word; calls `on_hit` for every word
/// whose H0 is zero under `mask`, and stops when it returns true.
pub(crate) fn scan(
    kernel: Kernel,
    block: &Block,
    hi: &[u32],
    lo: &[u32; 4096],
    mask: u32,
    on_hit: &mut dyn FnMut(u32) -> bool,
) -> bool {
    let mut prefix = block.midstate;
    for t in 0..block.var {
        round(&mut prefix, t, block.words[t]);
    }
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 | Kernel::Avx512 => super::x86::scan_sha1(kernel, block, &prefix, hi, lo, mask, on_hit),
        _ => scan_lanes::<u32>(block, &prefix, hi, lo, mask, on_hit),
    }
}

#[inline(always)]
pub(crate) fn scan_lanes<V: Lanes>(
    block: &Block,
    prefix: &[u32; 5],
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
            let w = expand::<V>(&block.words, block.var, word);
            let mut s = prefix.map(V::splat);
            for (t, wt) in w.iter().enumerate().skip(block.var) {
                round_v(&mut s, t, *wt);
            }
            let h0 = V::splat(block.midstate[0]).add(s[0]);
            let mut hits = h0.zero_under_mask(mask_v);
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

#[inline(always)]
fn expand<V: Lanes>(words: &[u32; 16], var: usize, word: V) -> [V; 80] {
    let mut w = [V::splat(0); 80];
    for (i, slot) in w.iter_mut().enumerate().take(16) {
        *slot = if i == var { word } else { V::splat(words[i]) };
    }
    for t in 16..80 {
        w[t] = V::xor3(w[t - 3], w[t - 8], w[t - 14]).xor(w[t - 16]).rol::<1, 31>();
    }
    w
}

#[inline(always)]
fn round_v<V: Lanes>(s: &mut [V; 5], t: usize, w: V) {
    let [a, b, c, d, e] = *s;
    let (f, k) = match t {
        0..=19 => (V::choose(b, c, d), 0x5A827999),
        20..=39 => (V::xor3(b, c, d), 0x6ED9EBA1),
        40..=59 => (V::majority(b, c, d), 0x8F1BBCDC),
        _ => (V::xor3(b, c, d), 0xCA62C1D6),
    };
    let temp = a.rol::<5, 27>().add(f).add(e).add(V::splat(k).add(w));
    *s = [temp, a, b.rol::<30, 2>(), c, d];
}

fn round(s: &mut [u32; 5], t: usize, w: u32) {
    round_v::<u32>(s, t, w);
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
        sha1::compress(&mut theirs, &[*sha1::digest::generic_array::GenericArray::from_slice(&block)]);
        assert_eq!(ours, theirs);
    }
}
