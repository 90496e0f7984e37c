//! The threaded search shared by every puzzle: a message prefix, then a nonce of
//! alphabet symbols placed in whole words of the last block so that padding and
//! length never change, scanned by a kernel in steps of 65,536 candidates.
//!
//! Workers take steps from one atomic counter (disjoint parts of the nonce
//! space), check cancellation and the deadline between steps (milliseconds),
//! add to the progress counter per step, and every hit is re-verified with the
//! plain digest before it is returned. When a nonce length is exhausted the
//! search continues with a longer one, so it always terminates with a solution
//! (tlslp defect D5: the reference searches one length and can spin forever).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::kernel_choice::fastest;
use crate::simd::{encode_word, scan_sha1, scan_sha256, sha1, sha256, Kernel, WordTables};
use crate::Error;

/// Candidates per step: 16 high halves × 4096 low halves of the varying word.
const STEP: u64 = 16 * 4096;
/// Symbols per message word.
const SYMBOLS_PER_WORD: usize = 4;

/// Which hash and which end of the digest a puzzle tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// SHA-256, trailing zero bits (tlslp).
    Sha256Trailing,
    /// SHA-256, leading zero bits (challenges).
    Sha256Leading,
    /// SHA-1, leading zero bits (Hashcash).
    Sha1Leading,
}

/// Cancels a running search from another thread; cloning shares the flag.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every search holding this token to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// How a search runs: threads, kernel, deadline, cancellation and progress.
#[derive(Clone, Debug)]
pub struct SearchOptions {
    threads: usize,
    /// `None`: the kernel measured fastest for the puzzle's hash on this CPU.
    kernel: Option<Kernel>,
    deadline: Option<Instant>,
    cancel: CancelToken,
    progress: Arc<AtomicU64>,
}

impl Default for SearchOptions {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            kernel: None,
            deadline: None,
            cancel: CancelToken::new(),
            progress: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl SearchOptions {
    /// Worker threads. Default: every core. At least 1.
    pub fn threads(&mut self, threads: usize) -> &mut Self {
        self.threads = threads.max(1);
        self
    }

    /// The kernel. Default: the one measured fastest on this CPU for the
    /// puzzle's hash (measured once per process, a few milliseconds).
    ///
    /// # Errors
    /// [`Error::KernelUnavailable`] when this CPU cannot run it.
    pub fn kernel(&mut self, kernel: Kernel) -> Result<&mut Self, Error> {
        if !kernel.is_available() {
            return Err(Error::KernelUnavailable(kernel));
        }
        self.kernel = Some(kernel);
        Ok(self)
    }

    /// Give up with [`Error::DeadlineExceeded`] after `timeout`.
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.deadline = Instant::now().checked_add(timeout);
        self
    }

    /// Stop with [`Error::Cancelled`] when `token` is cancelled.
    pub fn cancel_token(&mut self, token: CancelToken) -> &mut Self {
        self.cancel = token;
        self
    }

    /// The token that cancels searches run with these options.
    pub fn cancellation(&self) -> &CancelToken {
        &self.cancel
    }

    /// Counts candidates into `counter` (shared with an observer, e.g. a progress bar).
    pub fn progress_counter(&mut self, counter: Arc<AtomicU64>) -> &mut Self {
        self.progress = counter;
        self
    }

    /// Candidates tried so far (relaxed; grows by one step at a time).
    pub fn progress(&self) -> Arc<AtomicU64> {
        self.progress.clone()
    }

    /// The configured thread count.
    pub fn thread_count(&self) -> usize {
        self.threads
    }

    /// The kernel a tlslp (SHA-256) search will use.
    pub fn selected_kernel(&self) -> Kernel {
        self.kernel
            .unwrap_or_else(|| fastest(Target::Sha256Trailing))
    }

    fn kernel_for(&self, target: Target) -> Kernel {
        self.kernel.unwrap_or_else(|| fastest(target))
    }
}

/// A found nonce and what finding it cost.
#[derive(Clone, Debug)]
pub(crate) struct Found {
    pub(crate) nonce: String,
    pub(crate) candidates: u64,
}

/// Where the nonce sits: `prefix` (message bytes before it, filler included) is
/// word-aligned in the last block and leaves room for the nonce and padding.
struct Layout {
    prefix: Vec<u8>,
    nonce_len: usize,
}

impl Layout {
    /// Lays out `message + filler + nonce(nonce_len)`. The filler (symbols of
    /// the alphabet) puts the nonce in whole words ending at byte 52 of the last
    /// block, as the hashcash CLI does: the more message words precede the
    /// varying one, the more rounds run once per step instead of per candidate.
    /// When that would make the suffix longer than `max_suffix_len`, the nonce
    /// goes right after the message instead (still word-aligned, one block).
    fn new(message: &[u8], nonce_len: usize, alphabet: &[u8; 64], max_suffix_len: usize) -> Self {
        const NONCE_END: usize = 52;
        let tail = message.len() % 64;
        let late_start = NONCE_END - nonce_len;
        let late_filler = if tail <= late_start {
            late_start - tail
        } else {
            64 - tail + late_start
        };
        let aligned = tail.next_multiple_of(SYMBOLS_PER_WORD);
        let early_filler = if aligned + nonce_len + 9 <= 64 {
            aligned - tail
        } else {
            64 - tail
        };
        let filler = if late_filler + nonce_len <= max_suffix_len {
            late_filler
        } else {
            early_filler
        };
        let mut prefix = message.to_vec();
        prefix.extend(std::iter::repeat_n(alphabet[0], filler));
        Self { prefix, nonce_len }
    }

    fn filler_len(&self, message_len: usize) -> usize {
        self.prefix.len() - message_len
    }

    /// The last block's words with the nonce words zeroed, the midstate input
    /// blocks, and the index of the first nonce word.
    fn blocks(&self) -> (Vec<[u32; 16]>, [u32; 16], usize) {
        let full = self.prefix.len() / 64;
        let mut last = [0u8; 64];
        let tail = &self.prefix[full * 64..];
        last[..tail.len()].copy_from_slice(tail);
        let end = tail.len() + self.nonce_len;
        last[end] = 0x80;
        let bits = ((self.prefix.len() + self.nonce_len) as u64) * 8;
        last[56..].copy_from_slice(&bits.to_be_bytes());
        let head = self.prefix[..full * 64]
            .chunks_exact(64)
            .map(sha256::words_of)
            .collect();
        (head, sha256::words_of(&last), tail.len() / SYMBOLS_PER_WORD)
    }

    fn outer_words(&self) -> usize {
        self.nonce_len / SYMBOLS_PER_WORD - 1
    }

    fn steps(&self) -> u64 {
        // 2^24 values per outer word, 256 steps per varying word.
        1u64.checked_shl(24 * self.outer_words() as u32)
            .unwrap_or(u64::MAX)
            * 256
    }
}

/// Nonce length in symbols for `bits` of work: a keyspace of at least
/// 2^(bits + 8), in whole words.
pub(crate) fn nonce_len_for(bits: u32) -> usize {
    let symbols = (bits as usize + 8).div_ceil(6);
    symbols.max(1).next_multiple_of(SYMBOLS_PER_WORD)
}

/// Mask on the tested digest word: its low (`trailing`) or high bits that must be zero.
fn mask_for(target: Target, bits: u32) -> u32 {
    match (target, bits) {
        (_, 0) => 0,
        (_, 32..) => u32::MAX,
        (Target::Sha256Trailing, n) => (1u32 << n) - 1,
        (_, n) => u32::MAX << (32 - n),
    }
}

/// Finds a nonce such that `verify(nonce)` holds, searching nonce lengths from
/// `nonce_len_for(bits)` up to `max_nonce_len`. `verify` gets the whole suffix
/// (filler + nonce) and must check the full digest.
pub(crate) fn search(
    message: &[u8],
    alphabet: &[u8; 64],
    target: Target,
    bits: u32,
    max_suffix_len: usize,
    options: &SearchOptions,
    verify: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Found, Error> {
    let tables = WordTables::new(alphabet);
    let mask = mask_for(target, bits);
    let kernel = options.kernel_for(target);
    let started = options.progress.load(Ordering::Relaxed);
    let mut nonce_len = nonce_len_for(bits);
    loop {
        let layout = Layout::new(message, nonce_len, alphabet, max_suffix_len);
        if layout.filler_len(message.len()) + nonce_len > max_suffix_len {
            return Err(Error::SearchExhausted);
        }
        if let Some(nonce) = search_length(
            &layout,
            message.len(),
            alphabet,
            target,
            kernel,
            mask,
            &tables,
            options,
            verify,
        )? {
            return Ok(Found {
                nonce,
                candidates: options.progress.load(Ordering::Relaxed) - started,
            });
        }
        nonce_len += SYMBOLS_PER_WORD;
    }
}

#[allow(clippy::too_many_arguments)]
fn search_length(
    layout: &Layout,
    message_len: usize,
    alphabet: &[u8; 64],
    target: Target,
    kernel: Kernel,
    mask: u32,
    tables: &WordTables,
    options: &SearchOptions,
    verify: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Option<String>, Error> {
    let (head, last, first_word) = layout.blocks();
    let var = first_word + layout.outer_words();
    let filler = std::str::from_utf8(&layout.prefix[message_len..])
        .unwrap_or_default()
        .to_owned();
    let midstate256 = head.iter().fold(sha256::IV, |mut s, b| {
        sha256::compress(&mut s, b);
        s
    });
    let midstate1 = head.iter().fold(sha1::IV, |mut s, b| {
        sha1::compress(&mut s, b);
        s
    });
    let steps = layout.steps();
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let found: Mutex<Option<String>> = Mutex::new(None);
    let outcome: Mutex<Option<Error>> = Mutex::new(None);

    std::thread::scope(|scope| {
        for _ in 0..options.threads {
            scope.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                if options.cancel.is_cancelled()
                    || options.deadline.is_some_and(|d| Instant::now() >= d)
                {
                    let error = if options.cancel.is_cancelled() {
                        Error::Cancelled
                    } else {
                        Error::DeadlineExceeded
                    };
                    outcome
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get_or_insert(error);
                    stop.store(true, Ordering::Relaxed);
                    return;
                }
                let step = next.fetch_add(1, Ordering::Relaxed);
                if step >= steps {
                    return;
                }
                let outer = step / 256;
                let hi_start = ((step % 256) * 16) as usize;
                let mut words = last;
                let mut outer_text = String::new();
                for j in 0..layout.outer_words() {
                    let value = ((outer >> (24 * j)) & 0xFF_FFFF) as u32;
                    let word = encode_word(alphabet, value);
                    words[first_word + j] = word;
                    outer_text.extend(word.to_be_bytes().map(char::from));
                }
                let mut on_hit = |word: u32| {
                    let mut suffix = filler.clone();
                    suffix.push_str(&outer_text);
                    suffix.extend(word.to_be_bytes().map(char::from));
                    if verify(&suffix) {
                        found
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .get_or_insert(suffix);
                        stop.store(true, Ordering::Relaxed);
                        true
                    } else {
                        false
                    }
                };
                let hi = &tables.hi[hi_start..hi_start + 16];
                match target {
                    Target::Sha256Trailing | Target::Sha256Leading => {
                        let test = if target == Target::Sha256Trailing {
                            sha256::Test::TrailingH7
                        } else {
                            sha256::Test::LeadingH0
                        };
                        let block = sha256::Block {
                            midstate: midstate256,
                            words,
                            var,
                        };
                        scan_sha256(kernel, &block, test, hi, &tables.lo, mask, &mut on_hit);
                    }
                    Target::Sha1Leading => {
                        let block = sha1::Block {
                            midstate: midstate1,
                            words,
                            var,
                        };
                        scan_sha1(kernel, &block, hi, &tables.lo, mask, &mut on_hit);
                    }
                }
                options.progress.fetch_add(STEP, Ordering::Relaxed);
            });
        }
    });
    if let Some(suffix) = found.into_inner().unwrap_or_else(PoisonError::into_inner) {
        return Ok(Some(suffix));
    }
    match outcome.into_inner().unwrap_or_else(PoisonError::into_inner) {
        Some(error) => Err(error),
        None => Ok(None),
    }
}

/// Candidates per second of `kernel` on one thread for `target`, scanning
/// `steps` steps of a fixed message whose test never passes early enough to stop.
pub(crate) fn measure(kernel: Kernel, target: Target, steps: u64) -> f64 {
    let tables = WordTables::new(crate::simd::ALPHABET);
    let layout = Layout::new(&[b'x'; 64], 8, crate::simd::ALPHABET, 64);
    let (head, last, first_word) = layout.blocks();
    let var = first_word + layout.outer_words();
    let started = Instant::now();
    for step in 0..steps {
        let hi_start = ((step % 256) * 16) as usize;
        let hi = &tables.hi[hi_start..hi_start + 16];
        let mut ignore = |_| false;
        match target {
            Target::Sha1Leading => {
                let mut mid = sha1::IV;
                head.iter().for_each(|b| sha1::compress(&mut mid, b));
                let block = sha1::Block {
                    midstate: mid,
                    words: last,
                    var,
                };
                scan_sha1(kernel, &block, hi, &tables.lo, u32::MAX, &mut ignore);
            }
            _ => {
                let mut mid = sha256::IV;
                head.iter().for_each(|b| sha256::compress(&mut mid, b));
                let block = sha256::Block {
                    midstate: mid,
                    words: last,
                    var,
                };
                let test = if target == Target::Sha256Trailing {
                    sha256::Test::TrailingH7
                } else {
                    sha256::Test::LeadingH0
                };
                scan_sha256(kernel, &block, test, hi, &tables.lo, u32::MAX, &mut ignore);
            }
        }
    }
    (steps * STEP) as f64 / started.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_lengths_give_at_least_bits_plus_eight_of_keyspace() {
        for bits in 0..=64 {
            let len = nonce_len_for(bits);
            assert_eq!(len % 4, 0);
            assert!(6 * len as u32 >= bits + 8, "{bits}: {len}");
        }
        assert_eq!(nonce_len_for(20), 8);
        assert_eq!(nonce_len_for(16), 4);
    }

    #[test]
    fn layouts_keep_the_nonce_in_one_aligned_final_block() {
        for message_len in 0..200 {
            for nonce_len in [4, 8, 12, 16] {
                let message = vec![b'a'; message_len];
                let layout = Layout::new(&message, nonce_len, crate::simd::ALPHABET, 64);
                let tail = layout.prefix.len() % 64;
                assert_eq!(tail % 4, 0);
                assert!(tail + nonce_len + 9 <= 64);
            }
        }
    }

    #[test]
    fn an_exhausted_nonce_length_continues_with_a_longer_one() {
        // Refuse every 4-symbol nonce: the whole first length (2^24 candidates)
        // is scanned, then 8-symbol nonces are searched and one is found.
        let mut options = SearchOptions::default();
        options.threads(2);
        // A 12-byte suffix cap forces the compact layout: 1 filler + 4 or 8 symbols.
        let verify = |suffix: &str| {
            suffix.len() > 5 && crate::tlslp::trailing_zero_bits(&crate::digest("tok", suffix)) >= 4
        };
        let found = search(
            b"tok",
            crate::simd::ALPHABET,
            Target::Sha256Trailing,
            4,
            12,
            &options,
            &verify,
        )
        .unwrap();
        assert_eq!(found.nonce.len(), 9, "{}", found.nonce);
        assert!(found.candidates >= 1 << 24);
        // With an 8-byte cap there is no longer length to try.
        let none = search(
            b"tok",
            crate::simd::ALPHABET,
            Target::Sha256Trailing,
            4,
            8,
            &options,
            &verify,
        );
        assert!(matches!(none, Err(Error::SearchExhausted)));
    }

    #[test]
    fn cancellation_and_deadline_stop_a_search() {
        let puzzle = crate::TlslpPuzzle::new("cancel", 64).unwrap();
        let options = SearchOptions::default();
        let token = options.cancellation().clone();
        let progress = options.progress();
        // Cancel once the search has really started (progress moved).
        let canceller = std::thread::spawn(move || {
            while progress.load(Ordering::Relaxed) == 0 {
                std::thread::yield_now();
            }
            token.cancel();
        });
        // A 2^64 search returns only because it honours the flag.
        let result = puzzle.solve(&options);
        canceller.join().unwrap();
        assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");

        let mut options = SearchOptions::default();
        options.timeout(Duration::from_millis(20));
        assert!(matches!(
            puzzle.solve(&options),
            Err(Error::DeadlineExceeded)
        ));
    }

    #[test]
    fn masks_select_the_tested_bits() {
        assert_eq!(mask_for(Target::Sha256Trailing, 4), 0xF);
        assert_eq!(mask_for(Target::Sha1Leading, 4), 0xF000_0000);
        assert_eq!(mask_for(Target::Sha256Leading, 40), u32::MAX);
        assert_eq!(mask_for(Target::Sha256Trailing, 0), 0);
    }
}
