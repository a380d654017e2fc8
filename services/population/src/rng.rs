//! Index-addressable randomness.
//!
//! Every subject draws from its own ChaCha8 stream (key from the seed and the subject
//! kind, stream number = the subject's index), so any index can be generated alone, in any
//! order, on any thread, and always gives the same subject. Identifiers that must be
//! unique are not drawn at random: they come from keyed bijections of the index
//! ([`SlotPermutation`], [`mix64`]), which cannot collide.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The splitmix64 finaliser: a bijection on `u64` that scatters bits well.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A 256-bit key for one purpose (`domain`) derived from the seed.
pub(crate) fn derive_key(seed: u64, domain: u64) -> [u8; 32] {
    let mut key = [0u8; 32];
    let mut s = mix64(seed ^ domain.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    for chunk in key.chunks_exact_mut(8) {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        chunk.copy_from_slice(&mix64(s).to_le_bytes());
    }
    key
}

/// A keyed bijection on `[0, 2^BITS)`: a six-round Feistel network with alternating
/// half widths (13 and 12 bits), so it is a permutation of exactly `2^25` values.
#[derive(Debug, Clone)]
pub(crate) struct SlotPermutation {
    keys: [u64; 6],
}

impl SlotPermutation {
    pub const BITS: u32 = 25;

    pub fn new(seed: u64) -> Self {
        let mut keys = [0u64; 6];
        for (i, k) in keys.iter_mut().enumerate() {
            *k = mix64(seed ^ 0x5107_5107 ^ ((i as u64 + 1) << 40));
        }
        Self { keys }
    }

    pub fn permute(&self, x: u32) -> u32 {
        debug_assert!(x < 1 << Self::BITS);
        let (mut l, mut r) = (x >> 12, x & 0xfff);
        let (mut lw, mut rw) = (13u32, 12u32);
        for k in self.keys {
            let f = (mix64(u64::from(r) ^ k) as u32) & ((1 << lw) - 1);
            let nl = r;
            let nr = l ^ f;
            l = nl;
            r = nr;
            std::mem::swap(&mut lw, &mut rw);
        }
        // after an even number of rounds the widths are back to (13, 12)
        (l << rw) | r
    }
}

/// The random draws of one subject.
pub(crate) struct Draw {
    rng: ChaCha8Rng,
}

impl Draw {
    pub fn new(key: [u8; 32], stream: u64) -> Self {
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_stream(stream);
        Self { rng }
    }

    pub fn u32(&mut self) -> u32 {
        self.rng.next_u32()
    }

    pub fn u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in `[0, n)` (multiply-shift; the bias is below 2^-32 · n).
    pub fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.u32()) * u64::from(n)) >> 32) as u32
    }

    /// Uniform in `[lo, hi]`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(lo <= hi);
        lo + i64::from(self.below((hi - lo + 1) as u32))
    }

    /// Standard normal (Box–Muller, one of the pair).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit(); // (0, 1]
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// `exp(N(mu, sigma))`.
    pub fn lognormal(&mut self, mu: f64, sigma: f64) -> f64 {
        (mu + sigma * self.normal()).exp()
    }

    /// Exponential with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u32) as usize]
    }

    /// An index drawn with the given integer weights.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut r = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if r < w {
                return i;
            }
            r -= w;
        }
        weights.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_permutation_is_a_bijection() {
        let p = SlotPermutation::new(7);
        let n = 1u32 << SlotPermutation::BITS;
        let mut seen = vec![0u64; (n as usize).div_ceil(64)];
        for x in 0..n {
            let y = p.permute(x);
            assert!(y < n);
            let (w, b) = ((y / 64) as usize, y % 64);
            assert_eq!(seen[w] & (1 << b), 0, "{x} -> {y} twice");
            seen[w] |= 1 << b;
        }
    }

    #[test]
    fn draws_are_reproducible_per_stream() {
        let key = derive_key(42, 1);
        let a: Vec<u64> = (0..8).map(|_| Draw::new(key, 5).u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Draw::new(key, 5).u64(), Draw::new(key, 6).u64());
        assert_ne!(
            Draw::new(key, 5).u64(),
            Draw::new(derive_key(43, 1), 5).u64()
        );
        let mut d = Draw::new(key, 9);
        for _ in 0..1000 {
            let u = d.unit();
            assert!((0.0..1.0).contains(&u));
            let r = d.range(-3, 3);
            assert!((-3..=3).contains(&r));
            assert!(d.weighted(&[0, 5, 0, 1]) % 2 == 1);
        }
    }
}
