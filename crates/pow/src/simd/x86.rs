//! x86-64 lane types (AVX2, AVX-512) for the shared kernels.
//!
//! Every intrinsic call below is `unsafe` only because it needs a CPU feature;
//! the lane types are used solely inside the `#[target_feature]` entry points
//! of `dispatch.rs`, which run only after `Kernel::available()` detected that
//! feature.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::Lanes;

#[derive(Clone, Copy)]
pub(super) struct Avx2(__m256i);

#[derive(Clone, Copy)]
pub(super) struct Avx512(__m512i);

impl Lanes for Avx2 {
    const LANES: usize = 8;

    #[inline(always)]
    fn splat(value: u32) -> Self {
        // SAFETY: AVX2 is present (see module doc).
        Self(unsafe { _mm256_set1_epi32(value as i32) })
    }
    #[inline(always)]
    fn load(words: &[u32]) -> Self {
        assert!(words.len() >= 8);
        // SAFETY: the slice holds 8 words (checked above); unaligned load; AVX2 present.
        Self(unsafe { _mm256_loadu_si256(words.as_ptr().cast()) })
    }
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        // SAFETY: AVX2 is present.
        Self(unsafe { _mm256_add_epi32(self.0, other.0) })
    }
    #[inline(always)]
    fn xor(self, other: Self) -> Self {
        // SAFETY: AVX2 is present.
        Self(unsafe { _mm256_xor_si256(self.0, other.0) })
    }
    #[inline(always)]
    fn or(self, other: Self) -> Self {
        // SAFETY: AVX2 is present.
        Self(unsafe { _mm256_or_si256(self.0, other.0) })
    }
    #[inline(always)]
    fn ror<const R: i32, const L: i32>(self) -> Self {
        // SAFETY: AVX2 is present.
        Self(unsafe {
            _mm256_or_si256(
                _mm256_srli_epi32::<R>(self.0),
                _mm256_slli_epi32::<L>(self.0),
            )
        })
    }
    #[inline(always)]
    fn shr<const N: i32>(self) -> Self {
        // SAFETY: AVX2 is present.
        Self(unsafe { _mm256_srli_epi32::<N>(self.0) })
    }
    #[inline(always)]
    fn choose(e: Self, f: Self, g: Self) -> Self {
        // SAFETY: AVX2 is present.
        Self(unsafe { _mm256_xor_si256(g.0, _mm256_and_si256(e.0, _mm256_xor_si256(f.0, g.0))) })
    }
    #[inline(always)]
    fn majority(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: AVX2 is present.
        Self(unsafe {
            _mm256_or_si256(
                _mm256_and_si256(a.0, b.0),
                _mm256_and_si256(c.0, _mm256_or_si256(a.0, b.0)),
            )
        })
    }
    #[inline(always)]
    fn zero_under_mask(self, mask: Self) -> u32 {
        // SAFETY: AVX2 is present.
        unsafe {
            let zero = _mm256_cmpeq_epi32(_mm256_and_si256(self.0, mask.0), _mm256_setzero_si256());
            _mm256_movemask_ps(_mm256_castsi256_ps(zero)) as u32
        }
    }
}

impl Lanes for Avx512 {
    const LANES: usize = 16;

    #[inline(always)]
    fn splat(value: u32) -> Self {
        // SAFETY: AVX-512F is present.
        Self(unsafe { _mm512_set1_epi32(value as i32) })
    }
    #[inline(always)]
    fn load(words: &[u32]) -> Self {
        assert!(words.len() >= 16);
        // SAFETY: the slice holds 16 words (checked above); unaligned load; AVX-512F present.
        Self(unsafe { _mm512_loadu_si512(words.as_ptr().cast()) })
    }
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        // SAFETY: AVX-512F is present.
        Self(unsafe { _mm512_add_epi32(self.0, other.0) })
    }
    #[inline(always)]
    fn xor(self, other: Self) -> Self {
        // SAFETY: AVX-512F is present.
        Self(unsafe { _mm512_xor_si512(self.0, other.0) })
    }
    #[inline(always)]
    fn or(self, other: Self) -> Self {
        // SAFETY: AVX-512F is present.
        Self(unsafe { _mm512_or_si512(self.0, other.0) })
    }
    #[inline(always)]
    fn ror<const R: i32, const L: i32>(self) -> Self {
        // SAFETY: AVX-512F is present.
        Self(unsafe { _mm512_ror_epi32::<R>(self.0) })
    }
    #[inline(always)]
    fn shr<const N: i32>(self) -> Self {
        // SAFETY: AVX-512F is present.
        Self(unsafe { _mm512_srl_epi32(self.0, _mm_cvtsi32_si128(N)) })
    }
    #[inline(always)]
    fn xor3(x: Self, y: Self, z: Self) -> Self {
        // SAFETY: AVX-512F is present. 0x96 = x ^ y ^ z.
        Self(unsafe { _mm512_ternarylogic_epi32::<0x96>(x.0, y.0, z.0) })
    }
    #[inline(always)]
    fn choose(e: Self, f: Self, g: Self) -> Self {
        // SAFETY: AVX-512F is present. 0xCA = e ? f : g.
        Self(unsafe { _mm512_ternarylogic_epi32::<0xCA>(e.0, f.0, g.0) })
    }
    #[inline(always)]
    fn majority(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: AVX-512F is present. 0xE8 = majority.
        Self(unsafe { _mm512_ternarylogic_epi32::<0xE8>(a.0, b.0, c.0) })
    }
    #[inline(always)]
    fn zero_under_mask(self, mask: Self) -> u32 {
        // SAFETY: AVX-512F is present.
        u32::from(unsafe { _mm512_testn_epi32_mask(self.0, mask.0) })
    }
}
