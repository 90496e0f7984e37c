//! Multi-buffer hash kernels: one algorithm written once over [`Lanes`], run on
//! plain `u32` (portable), AVX2 (8 lanes) or AVX-512 (16 lanes), picked at run
//! time by CPU feature detection.
//!
//! `dispatch.rs` is the one place that picks the code for a [`Kernel`]. The
//! `unsafe` of this crate lives in three files of this module, each block
//! with a `// SAFETY:` comment: `x86.rs` (the AVX2/AVX-512 lane types),
//! `shani.rs` (the SHA-extension kernels) and `dispatch.rs` (the calls into
//! them after CPU feature detection).

mod dispatch;
mod lanes;
pub(crate) mod sha1;
pub(crate) mod sha256;
#[cfg(target_arch = "x86_64")]
mod shani;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::fmt;

pub(crate) use dispatch::{scan_sha1, scan_sha256};
pub(crate) use lanes::Lanes;

/// The hash kernel a search runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kernel {
    /// One candidate at a time in plain Rust; runs everywhere.
    Portable,
    /// 8 candidates per AVX2 instruction.
    Avx2,
    /// SHA-256 with the SHA extensions, two interleaved streams (SHA-1 searches
    /// fall back to the best lane kernel).
    ShaNi,
    /// 16 candidates per AVX-512 instruction (with `vprord` and `vpternlogd`).
    Avx512,
}

impl Kernel {
    /// The fastest kernel this CPU supports (measured on Zen 4: AVX-512 ahead
    /// of two-stream SHA-NI, which is ahead of AVX2).
    pub fn detect() -> Self {
        Self::available().last().copied().unwrap_or(Self::Portable)
    }

    /// Every kernel this CPU supports, slowest first.
    pub fn available() -> Vec<Self> {
        let mut kernels = vec![Self::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                kernels.push(Self::Avx2);
            }
            if std::arch::is_x86_feature_detected!("sha")
                && std::arch::is_x86_feature_detected!("sse4.1")
                && std::arch::is_x86_feature_detected!("ssse3")
            {
                kernels.push(Self::ShaNi);
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                kernels.push(Self::Avx512);
            }
        }
        kernels
    }

    /// Whether this CPU can run the kernel.
    pub fn is_available(self) -> bool {
        Self::available().contains(&self)
    }

    /// Candidates evaluated per kernel step.
    pub fn lanes(self) -> usize {
        match self {
            Self::Portable => 1,
            Self::Avx2 => 8,
            Self::ShaNi => 2,
            Self::Avx512 => 16,
        }
    }
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Portable => "portable",
            Self::Avx2 => "avx2",
            Self::ShaNi => "sha-ni",
            Self::Avx512 => "avx512",
        })
    }
}

impl std::str::FromStr for Kernel {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "portable" => Ok(Self::Portable),
            "avx2" => Ok(Self::Avx2),
            "sha-ni" | "shani" => Ok(Self::ShaNi),
            "avx512" => Ok(Self::Avx512),
            _ => Err(format!(
                "unknown kernel {text:?}: use portable, avx2, sha-ni or avx512"
            )),
        }
    }
}

/// The 64-symbol alphabet of every nonce we emit: safe on a text line, 6 bits a symbol.
pub(crate) const ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Nonce words are 4 alphabet symbols; the search varies the last word of the
/// nonce as `HI[v >> 12] | LO[v & 4095]`, so lanes take 16 consecutive LO entries.
pub(crate) struct WordTables {
    pub(crate) hi: Box<[u32; 4096]>,
    pub(crate) lo: Box<[u32; 4096]>,
}

impl WordTables {
    pub(crate) fn new(alphabet: &[u8; 64]) -> Self {
        let mut hi = Box::new([0u32; 4096]);
        let mut lo = Box::new([0u32; 4096]);
        for i in 0..4096 {
            let (a, b) = (u32::from(alphabet[i >> 6]), u32::from(alphabet[i & 63]));
            hi[i] = (a << 24) | (b << 16);
            lo[i] = (a << 8) | b;
        }
        Self { hi, lo }
    }
}

/// The loop every lane kernel shares: each `hi × lo` value of the varying word,
/// `V::LANES` at a time; `tested` gives the digest word the puzzle tests, and
/// `on_hit` sees each word whose tested word is zero under `mask` (and stops the
/// scan by returning true).
#[inline(always)]
pub(crate) fn scan_words<V: Lanes>(
    hi: &[u32],
    lo: &[u32; 4096],
    mask: u32,
    on_hit: &mut dyn FnMut(u32) -> bool,
    tested: impl Fn(V) -> V,
) -> bool {
    let mask_v = V::splat(mask);
    for &high in hi {
        let high_v = V::splat(high);
        for chunk in lo.chunks_exact(V::LANES) {
            let mut hits = tested(high_v.or(V::load(chunk))).zero_under_mask(mask_v);
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

/// The 4 symbols of `value` (24 bits) as a big-endian message word.
pub(crate) fn encode_word(alphabet: &[u8; 64], value: u32) -> u32 {
    (0..4).fold(0, |word, i| {
        (word << 8) | u32::from(alphabet[((value >> (18 - 6 * i)) & 63) as usize])
    })
}

#[cfg(test)]
mod tests;
