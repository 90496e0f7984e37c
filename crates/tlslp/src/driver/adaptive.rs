//! Adaptive proof of work: under load each new session gets a harder WORK.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::event::Level;
use crate::logfile::EventSink;
use crate::server::SessionConfig;

/// Adaptive proof of work: above `threshold` concurrent sessions, one more bit
/// for every `step` sessions, up to `max_bits`; back down as load drops.
#[derive(Clone, Copy, Debug)]
pub struct AdaptiveWork {
    /// Sessions at once before difficulty rises.
    pub threshold: usize,
    /// Extra sessions per extra bit.
    pub step: usize,
    /// The highest n_bits it will ask for.
    pub max_bits: i64,
}

impl AdaptiveWork {
    /// The n_bits for a session starting with `active` sessions running.
    pub fn bits(&self, base: i64, active: usize) -> i64 {
        if active <= self.threshold {
            return base;
        }
        let extra = 1 + (active - self.threshold - 1) / self.step.max(1);
        (base + extra as i64).min(self.max_bits.max(base))
    }
}

/// The session config for a new session: `base`, or with n_bits raised by
/// `adaptive` (each change of difficulty logged once, in `last_bits`).
pub(super) fn session_config(
    base: &Arc<SessionConfig>,
    adaptive: Option<AdaptiveWork>,
    active: usize,
    last_bits: &AtomicI64,
    sink: &dyn EventSink,
) -> Arc<SessionConfig> {
    let Some(adaptive) = adaptive else {
        return base.clone();
    };
    let bits = adaptive.bits(base.n_bits, active);
    if last_bits.swap(bits, Ordering::Relaxed) != bits {
        sink.record(
            Level::Warning,
            &format!("WORK difficulty now {bits} bits ({active} sessions running)"),
        );
    }
    if bits == base.n_bits {
        base.clone()
    } else {
        Arc::new(SessionConfig {
            n_bits: bits,
            ..(**base).clone()
        })
    }
}
