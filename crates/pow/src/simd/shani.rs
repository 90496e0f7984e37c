//! SHA-256 with the x86 SHA extensions, two candidates interleaved: one
//! `sha256rnds2` stream is latency-bound, two independent ones fill the unit
//! (`../shared/spec/pow.md` §5, point 6). Starts from the state before the
//! varying word's group of four rounds and, for the H7 test, stops after
//! round 61. The state lives in the ABEF/CDGH layout the instructions use;
//! it is converted once per step, not per candidate.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::sha1;
use super::sha256::{Plan, Test, K};

/// Scans `hi × lo` values of the varying word two at a time.
///
/// # Safety
/// The CPU must support SHA, SSE2, SSSE3 and SSE4.1 (`Kernel::ShaNi` detection).
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
pub(super) unsafe fn scan(
    plan: &Plan,
    hi: &[u32],
    lo: &[u32; 4096],
    mask: u32,
    on_hit: &mut dyn FnMut(u32) -> bool,
) -> bool {
    if plan.var == 12 {
        // SAFETY: same features as this function.
        return unsafe { scan_var12(plan, hi, lo, mask, on_hit) };
    }
    let [a, b, c, d, e, f, g, h] = plan.group_prefix.map(|x| x as i32);
    let abef0 = _mm_set_epi32(a, b, e, f);
    let cdgh0 = _mm_set_epi32(c, d, g, h);
    let first_group = plan.var / 4;
    let trailing = plan.test == Test::TrailingH7;
    for &high in hi {
        for pair in lo.chunks_exact(2) {
            let candidates = [high | pair[0], high | pair[1]];
            let mut w = [[_mm_setzero_si128(); 16]; 2];
            for (stream, word) in candidates.iter().enumerate() {
                let mut words = plan.words;
                words[plan.var] = *word;
                for (slot, chunk) in w[stream].iter_mut().zip(words.chunks_exact(4)) {
                    // SAFETY: `chunk` holds 4 u32; unaligned load.
                    *slot = unsafe { _mm_loadu_si128(chunk.as_ptr().cast()) };
                }
            }
            let mut abef = [abef0; 2];
            let mut cdgh = [cdgh0; 2];
            let mut tested = [0u32; 2];
            for group in first_group..16 {
                for stream in 0..2 {
                    if group >= 4 {
                        let ws = &w[stream];
                        let t1 = _mm_sha256msg1_epu32(ws[group - 4], ws[group - 3]);
                        let t2 = _mm_alignr_epi8::<4>(ws[group - 1], ws[group - 2]);
                        w[stream][group] =
                            _mm_sha256msg2_epu32(_mm_add_epi32(t1, t2), ws[group - 1]);
                    }
                    // SAFETY: K holds 64 u32; group * 4 + 4 <= 64; unaligned load.
                    let k = unsafe { _mm_loadu_si128(K.as_ptr().add(group * 4).cast()) };
                    let kw = _mm_add_epi32(w[stream][group], k);
                    cdgh[stream] = _mm_sha256rnds2_epu32(cdgh[stream], abef[stream], kw);
                    if trailing && group == 15 {
                        // After round 61 the new ABEF sits in `cdgh`; F is e of round 60.
                        tested[stream] = _mm_cvtsi128_si32(cdgh[stream]) as u32;
                        continue;
                    }
                    abef[stream] = _mm_sha256rnds2_epu32(
                        abef[stream],
                        cdgh[stream],
                        _mm_shuffle_epi32::<0x0E>(kw),
                    );
                }
            }
            for stream in 0..2 {
                let value = if trailing {
                    plan.midstate[7].wrapping_add(tested[stream])
                } else {
                    plan.midstate[0].wrapping_add(_mm_extract_epi32::<3>(abef[stream]) as u32)
                };
                if value & mask == 0 && on_hit(candidates[stream]) {
                    return true;
                }
            }
        }
    }
    false
}

/// [`scan`] for the varying word 12 (where our layouts put it), unrolled with
/// both streams written out so their instructions interleave.
///
/// # Safety
/// As [`scan`].
// seq! expands index arithmetic on literals (`4 - 4`, `3 >= 4`).
#[allow(
    clippy::eq_op,
    clippy::identity_op,
    clippy::erasing_op,
    clippy::absurd_extreme_comparisons,
    unused_comparisons,
    clippy::int_plus_one
)]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
unsafe fn scan_var12(
    plan: &Plan,
    hi: &[u32],
    lo: &[u32; 4096],
    mask: u32,
    on_hit: &mut dyn FnMut(u32) -> bool,
) -> bool {
    let [a, b, c, d, e, f, g, h] = plan.group_prefix.map(|x| x as i32);
    let abef0 = _mm_set_epi32(a, b, e, f);
    let cdgh0 = _mm_set_epi32(c, d, g, h);
    let word = |i: usize| plan.words[i] as i32;
    let g0 = _mm_set_epi32(word(3), word(2), word(1), word(0));
    let g1 = _mm_set_epi32(word(7), word(6), word(5), word(4));
    let g2 = _mm_set_epi32(word(11), word(10), word(9), word(8));
    let g3 = _mm_set_epi32(word(15), word(14), word(13), 0);
    // SAFETY: K holds 64 u32, so every 4-word group below is in bounds.
    let k = |group: usize| unsafe { _mm_loadu_si128(K.as_ptr().add(group * 4).cast()) };
    let trailing = plan.test == Test::TrailingH7;
    for &high in hi {
        for pair in lo.chunks_exact(2) {
            let candidates = [high | pair[0], high | pair[1]];
            let mut x = [
                g0,
                g1,
                g2,
                _mm_insert_epi32::<0>(g3, candidates[0] as i32),
                g0,
                g0,
                g0,
                g0,
                g0,
                g0,
                g0,
                g0,
                g0,
                g0,
                g0,
                g0,
            ];
            let mut y = [
                g0,
                g1,
                g2,
                _mm_insert_epi32::<0>(g3, candidates[1] as i32),
                g0,
                g0,
                g0,
                g0,
                g0,
                g0,
                g0,
                g0,
                g0,
                g0,
                g0,
                g0,
            ];
            let (mut abef_x, mut cdgh_x, mut abef_y, mut cdgh_y) = (abef0, cdgh0, abef0, cdgh0);
            let mut tested = [0u32; 2];
            seq_macro::seq!(G in 3..16 {
                if G >= 4 {
                    x[G] = _mm_sha256msg2_epu32(
                        _mm_add_epi32(_mm_sha256msg1_epu32(x[G - 4], x[G - 3]), _mm_alignr_epi8::<4>(x[G - 1], x[G - 2])),
                        x[G - 1],
                    );
                    y[G] = _mm_sha256msg2_epu32(
                        _mm_add_epi32(_mm_sha256msg1_epu32(y[G - 4], y[G - 3]), _mm_alignr_epi8::<4>(y[G - 1], y[G - 2])),
                        y[G - 1],
                    );
                }
                let kx = _mm_add_epi32(x[G], k(G));
                let ky = _mm_add_epi32(y[G], k(G));
                cdgh_x = _mm_sha256rnds2_epu32(cdgh_x, abef_x, kx);
                cdgh_y = _mm_sha256rnds2_epu32(cdgh_y, abef_y, ky);
                if G == 15 && trailing {
                    // After round 61 the new ABEF sits in `cdgh`; F is e of round 60.
                    tested = [_mm_cvtsi128_si32(cdgh_x) as u32, _mm_cvtsi128_si32(cdgh_y) as u32];
                } else {
                    abef_x = _mm_sha256rnds2_epu32(abef_x, cdgh_x, _mm_shuffle_epi32::<0x0E>(kx));
                    abef_y = _mm_sha256rnds2_epu32(abef_y, cdgh_y, _mm_shuffle_epi32::<0x0E>(ky));
                }
            });
            let values = if trailing {
                tested.map(|t| plan.midstate[7].wrapping_add(t))
            } else {
                [abef_x, abef_y]
                    .map(|abef| plan.midstate[0].wrapping_add(_mm_extract_epi32::<3>(abef) as u32))
            };
            for stream in 0..2 {
                if values[stream] & mask == 0 && on_hit(candidates[stream]) {
                    return true;
                }
            }
        }
    }
    false
}

/// SHA-1 for Hashcash with `sha1rnds4`, two streams, for the varying word 12:
/// starts from the state after round 11 and computes H0 only.
///
/// # Safety
/// As [`scan`].
// seq! expands index arithmetic on literals (`4 - 4`, `3 >= 4`).
#[allow(
    clippy::eq_op,
    clippy::identity_op,
    clippy::erasing_op,
    clippy::absurd_extreme_comparisons,
    unused_comparisons,
    clippy::int_plus_one
)]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
pub(super) unsafe fn scan_sha1_var12(
    plan: &sha1::Plan,
    hi: &[u32],
    lo: &[u32; 4096],
    mask: u32,
    on_hit: &mut dyn FnMut(u32) -> bool,
) -> bool {
    debug_assert_eq!(plan.var, 12);
    let [a, b, c, d, e] = plan.prefix.map(|x| x as i32);
    let abcd0 = _mm_set_epi32(a, b, c, d);
    let e0 = _mm_set_epi32(e, 0, 0, 0);
    // SHA-1 groups hold W[4g] in the top lane.
    let word = |i: usize| plan.words[i] as i32;
    let g0 = _mm_set_epi32(word(0), word(1), word(2), word(3));
    let g1 = _mm_set_epi32(word(4), word(5), word(6), word(7));
    let g2 = _mm_set_epi32(word(8), word(9), word(10), word(11));
    let g3 = _mm_set_epi32(0, word(13), word(14), word(15));
    for &high in hi {
        for pair in lo.chunks_exact(2) {
            let candidates = [high | pair[0], high | pair[1]];
            let mut x = [g0; 20];
            let mut y = [g0; 20];
            (x[1], x[2], x[3]) = (g1, g2, _mm_insert_epi32::<3>(g3, candidates[0] as i32));
            (y[1], y[2], y[3]) = (g1, g2, _mm_insert_epi32::<3>(g3, candidates[1] as i32));
            // out[g] is ABCD after group g; out[2] is the prefix state.
            let mut out_x = [abcd0; 20];
            let mut out_y = [abcd0; 20];
            out_x[3] = _mm_sha1rnds4_epu32::<0>(abcd0, _mm_add_epi32(e0, x[3]));
            out_y[3] = _mm_sha1rnds4_epu32::<0>(abcd0, _mm_add_epi32(e0, y[3]));
            seq_macro::seq!(G in 4..20 {
                x[G] = _mm_sha1msg2_epu32(_mm_xor_si128(_mm_sha1msg1_epu32(x[G - 4], x[G - 3]), x[G - 2]), x[G - 1]);
                y[G] = _mm_sha1msg2_epu32(_mm_xor_si128(_mm_sha1msg1_epu32(y[G - 4], y[G - 3]), y[G - 2]), y[G - 1]);
                out_x[G] = _mm_sha1rnds4_epu32::<{ G / 5 }>(out_x[G - 1], _mm_sha1nexte_epu32(out_x[G - 2], x[G]));
                out_y[G] = _mm_sha1rnds4_epu32::<{ G / 5 }>(out_y[G - 1], _mm_sha1nexte_epu32(out_y[G - 2], y[G]));
            });
            let values = [out_x[19], out_y[19]].map(|abcd| {
                plan.midstate0
                    .wrapping_add(_mm_extract_epi32::<3>(abcd) as u32)
            });
            for stream in 0..2 {
                if values[stream] & mask == 0 && on_hit(candidates[stream]) {
                    return true;
                }
            }
        }
    }
    false
}
