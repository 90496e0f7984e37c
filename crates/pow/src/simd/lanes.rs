//! The operations a hash round needs, over any number of 32-bit lanes.

/// A vector of 32-bit lanes. `u32` is the one-lane portable case.
pub(crate) trait Lanes: Copy {
    /// Candidates per value.
    const LANES: usize;
    fn splat(value: u32) -> Self;
    /// Loads `LANES` words; `words.len() >= LANES`.
    fn load(words: &[u32]) -> Self;
    fn add(self, other: Self) -> Self;
    fn xor(self, other: Self) -> Self;
    fn or(self, other: Self) -> Self;
    /// Rotate right by `R` bits; `L == 32 - R` (stable Rust cannot compute it).
    fn ror<const R: i32, const L: i32>(self) -> Self;
    /// Rotate left by `L` bits; `R == 32 - L`.
    fn rol<const L: i32, const R: i32>(self) -> Self {
        self.ror::<R, L>()
    }
    fn shr<const N: i32>(self) -> Self;
    /// `x ^ y ^ z`.
    fn xor3(x: Self, y: Self, z: Self) -> Self {
        x.xor(y).xor(z)
    }
    /// SHA "choose": bits of `f` where `e` is set, else of `g`.
    fn choose(e: Self, f: Self, g: Self) -> Self;
    /// SHA "majority" of three.
    fn majority(a: Self, b: Self, c: Self) -> Self;
    /// Bit `i` set when lane `i` of `self & mask` is zero.
    fn zero_under_mask(self, mask: Self) -> u32;
}

impl Lanes for u32 {
    const LANES: usize = 1;

    #[inline(always)]
    fn splat(value: u32) -> Self {
        value
    }
    #[inline(always)]
    fn load(words: &[u32]) -> Self {
        words[0]
    }
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        self.wrapping_add(other)
    }
    #[inline(always)]
    fn xor(self, other: Self) -> Self {
        self ^ other
    }
    #[inline(always)]
    fn or(self, other: Self) -> Self {
        self | other
    }
    #[inline(always)]
    fn ror<const R: i32, const L: i32>(self) -> Self {
        self.rotate_right(R as Self)
    }
    #[inline(always)]
    fn shr<const N: i32>(self) -> Self {
        self >> N
    }
    #[inline(always)]
    fn choose(e: Self, f: Self, g: Self) -> Self {
        g ^ (e & (f ^ g))
    }
    #[inline(always)]
    fn majority(a: Self, b: Self, c: Self) -> Self {
        (a & b) | (c & (a | b))
    }
    #[inline(always)]
    fn zero_under_mask(self, mask: Self) -> u32 {
        Self::from(self & mask == 0)
    }
}
