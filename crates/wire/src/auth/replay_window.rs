//! A sliding replay window over message counters, as in IPsec and DTLS: the
//! highest counter seen and a 256-bit map of the counters below it. Messages
//! may arrive out of order by up to 256; older or repeated counters are
//! replays. Shared by the HMAC frame layer and the UDP node's sessions.

const WORDS: usize = 4;
/// How far below the highest counter a late message is still accepted.
pub(crate) const WINDOW: u64 = 64 * WORDS as u64;

#[derive(Debug, Clone, Default)]
pub(crate) struct ReplayWindow {
    /// None until the first counter arrives.
    highest: Option<u64>,
    /// Bit i set: counter `highest - i` was seen.
    seen: [u64; WORDS],
}

impl ReplayWindow {
    /// Records `counter`; false when it was seen before or is too old to tell.
    pub(crate) fn accept(&mut self, counter: u64) -> bool {
        let Some(highest) = self.highest else {
            self.highest = Some(counter);
            self.seen[0] = 1;
            return true;
        };
        if counter > highest {
            shift(&mut self.seen, counter - highest);
            self.highest = Some(counter);
            self.seen[0] |= 1;
            return true;
        }
        let age = highest - counter;
        if age >= WINDOW {
            return false;
        }
        let (word, bit) = ((age / 64) as usize, age % 64);
        if self.seen[word] & (1 << bit) != 0 {
            return false;
        }
        self.seen[word] |= 1 << bit;
        true
    }
}

/// Shifts the window by `by` positions towards older counters.
fn shift(seen: &mut [u64; WORDS], by: u64) {
    if by >= WINDOW {
        *seen = [0; WORDS];
        return;
    }
    let (words, bits) = ((by / 64) as usize, (by % 64) as u32);
    for i in (0..WORDS).rev() {
        let from = i.checked_sub(words);
        let high = from.map_or(0, |f| seen[f] << bits);
        let low = match from.and_then(|f| f.checked_sub(1)) {
            Some(f) if bits > 0 => seen[f] >> (64 - bits),
            _ => 0,
        };
        seen[i] = high | low;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reordering_inside_the_window_is_fine_and_repeats_are_not() {
        let mut window = ReplayWindow::default();
        assert!(window.accept(5));
        assert!(!window.accept(5));
        assert!(window.accept(7));
        assert!(window.accept(6), "late but inside the window");
        assert!(!window.accept(6));
        assert!(window.accept(1000));
        assert!(window.accept(1000 - 255));
        assert!(!window.accept(1000 - 256), "too old to tell");
    }

    #[test]
    fn the_window_shift_is_exact() {
        let mut seen = [1u64, 0, 0, 0];
        shift(&mut seen, 64);
        assert_eq!(seen, [0, 1, 0, 0]);
        shift(&mut seen, 65);
        assert_eq!(seen, [0, 0, 2, 0]);
        shift(&mut seen, 300);
        assert_eq!(seen, [0; 4]);
        let mut seen = [u64::MAX, 0, 0, 0];
        shift(&mut seen, 1);
        assert_eq!(seen, [u64::MAX - 1, 1, 0, 0]);
    }
}
