//! Kernel dispatch, in one place: which code scans a step for each
//! [`Kernel`], and the `#[target_feature]` entry points that compile the
//! shared lane kernels for AVX2 and AVX-512. The hash modules (`sha256.rs`,
//! `sha1.rs`) know nothing of the CPU; the search calls only this file.
//!
//! The `unsafe` here is the calls into feature-gated code, each made only for
//! a kernel that `Kernel::available()` detected (asserted first).
#![allow(unsafe_code)]

use super::{sha1, sha256, Kernel};
#[cfg(target_arch = "x86_64")]
use super::{
    shani,
    x86::{Avx2, Avx512},
};

/// Scans `hi × lo` values of the varying word of a SHA-256 step on `kernel`;
/// calls `on_hit` for every word whose tested digest word is zero under
/// `mask`, and stops when it returns true.
///
/// # Panics
/// When the CPU lacks the kernel's feature: callers pick kernels from
/// `Kernel::available()`, so this is a programming error, never input.
pub(crate) fn scan_sha256(
    kernel: Kernel,
    block: &sha256::Block,
    test: sha256::Test,
    hi: &[u32],
    lo: &[u32; 4096],
    mask: u32,
    on_hit: &mut dyn FnMut(u32) -> bool,
) -> bool {
    assert_available(kernel);
    let plan = sha256::Plan::new(block, test);
    match kernel {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: SHA, SSE2, SSSE3, SSE4.1 detected (asserted above).
        Kernel::ShaNi => unsafe { shani::scan(&plan, hi, lo, mask, on_hit) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F detected (asserted above).
        Kernel::Avx512 => unsafe { sha256_avx512(&plan, hi, lo, mask, on_hit) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 detected (asserted above).
        Kernel::Avx2 => unsafe { sha256_avx2(&plan, hi, lo, mask, on_hit) },
        _ => sha256::scan_portable(&plan, hi, lo, mask, on_hit),
    }
}

/// Scans `hi × lo` values of the varying word of a SHA-1 step on `kernel`;
/// calls `on_hit` for every word whose H0 is zero under `mask`, and stops
/// when it returns true.
///
/// # Panics
/// As [`scan_sha256`].
pub(crate) fn scan_sha1(
    kernel: Kernel,
    block: &sha1::Block,
    hi: &[u32],
    lo: &[u32; 4096],
    mask: u32,
    on_hit: &mut dyn FnMut(u32) -> bool,
) -> bool {
    assert_available(kernel);
    let plan = sha1::Plan::new(block);
    #[cfg(target_arch = "x86_64")]
    if kernel == Kernel::ShaNi && plan.var == 12 {
        // SAFETY: SHA, SSE2, SSSE3, SSE4.1 detected (asserted above).
        return unsafe { shani::scan_sha1_var12(&plan, hi, lo, mask, on_hit) };
    }
    // SHA-NI has no SHA-1 path for other layouts: use the best lane kernel instead.
    let kernel = if kernel == Kernel::ShaNi {
        let available = Kernel::available();
        [Kernel::Avx512, Kernel::Avx2]
            .into_iter()
            .find(|k| available.contains(k))
            .unwrap_or(Kernel::Portable)
    } else {
        kernel
    };
    match kernel {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F detected (asserted above, or found available).
        Kernel::Avx512 => unsafe { sha1_avx512(&plan, hi, lo, mask, on_hit) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 detected (asserted above, or found available).
        Kernel::Avx2 => unsafe { sha1_avx2(&plan, hi, lo, mask, on_hit) },
        _ => sha1::scan_lanes::<u32>(&plan, hi, lo, mask, on_hit),
    }
}

fn assert_available(kernel: Kernel) {
    assert!(
        kernel.is_available(),
        "{kernel} kernel requested on a CPU without it"
    );
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sha256_avx2(
    plan: &sha256::Plan,
    hi: &[u32],
    lo: &[u32; 4096],
    mask: u32,
    on_hit: &mut dyn FnMut(u32) -> bool,
) -> bool {
    sha256::scan_lanes::<Avx2>(plan, hi, lo, mask, on_hit)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn sha256_avx512(
    plan: &sha256::Plan,
    hi: &[u32],
    lo: &[u32; 4096],
    mask: u32,
    on_hit: &mut dyn FnMut(u32) -> bool,
) -> bool {
    sha256::scan_lanes::<Avx512>(plan, hi, lo, mask, on_hit)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sha1_avx2(
    plan: &sha1::Plan,
    hi: &[u32],
    lo: &[u32; 4096],
    mask: u32,
    on_hit: &mut dyn FnMut(u32) -> bool,
) -> bool {
    sha1::scan_lanes::<Avx2>(plan, hi, lo, mask, on_hit)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn sha1_avx512(
    plan: &sha1::Plan,
    hi: &[u32],
    lo: &[u32; 4096],
    mask: u32,
    on_hit: &mut dyn FnMut(u32) -> bool,
) -> bool {
    sha1::scan_lanes::<Avx512>(plan, hi, lo, mask, on_hit)
}
