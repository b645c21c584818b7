//! The injected random source of every engine.
//!
//! Engines never read `/dev/urandom` themselves: the reactor seeds one [`Rng`] per engine
//! from the OS at start-up, and tests seed it with a constant so runs repeat. ChaCha12 keeps
//! the output unpredictable from what peers see of it (tags, branches, Call-IDs, ICE
//! credentials, SRTP master keys), which a small mixing generator would not.

use rand_chacha::ChaCha12Rng;
use rand_core::{RngCore, SeedableRng};

/// A seedable cryptographically strong random generator.
#[derive(Debug, Clone)]
pub struct Rng(ChaCha12Rng);

/// The characters of [`Rng::token`]: letters and digits, safe in every SIP token, SDP
/// `ice-ufrag` (RFC 8839 sec. 5.4) and URI user part.
const TOKEN_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

impl Rng {
    /// A generator from 32 bytes of OS randomness (production) or a constant (tests).
    pub fn from_seed(seed: [u8; 32]) -> Rng {
        Rng(ChaCha12Rng::from_seed(seed))
    }

    /// A generator from a 64-bit seed: for tests and for deriving per-object generators.
    pub fn seed_from_u64(seed: u64) -> Rng {
        Rng(ChaCha12Rng::seed_from_u64(seed))
    }

    /// A new independent generator seeded from this one (one per call, bridge, ...).
    pub fn fork(&mut self) -> Rng {
        let mut seed = [0u8; 32];
        self.fill(&mut seed);
        Rng::from_seed(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    /// Fills `dest` with random bytes.
    pub fn fill(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }

    /// A uniform value in `0..=max` (the RFC 2782 SRV weight draw needs an inclusive bound).
    pub fn below_or_equal(&mut self, max: u32) -> u32 {
        // Multiply-shift maps 32 random bits onto 0..=max; the bias is below 2^-32 per draw.
        ((u64::from(self.next_u32()) * (u64::from(max) + 1)) >> 32) as u32
    }

    /// `len` random letters and digits (about 5.95 bits each).
    pub fn token(&mut self, len: usize) -> String {
        let mut out = String::with_capacity(len);
        while out.len() < len {
            // Rejection sampling keeps the draw uniform: 62 * 4 = 248 < 256.
            let b = (self.next_u32() & 0xff) as usize;
            if b < TOKEN_ALPHABET.len() * 4 {
                out.push(TOKEN_ALPHABET[b % TOKEN_ALPHABET.len()] as char);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let (mut a, mut b, mut c) = (
            Rng::seed_from_u64(1),
            Rng::seed_from_u64(1),
            Rng::seed_from_u64(2),
        );
        let xa: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
    }

    #[test]
    fn tokens_are_alphanumeric_of_the_asked_length() {
        let mut r = Rng::seed_from_u64(7);
        for len in [0, 1, 10, 32] {
            let t = r.token(len);
            assert_eq!(t.len(), len);
            assert!(t.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn below_or_equal_stays_in_range_and_reaches_both_ends() {
        let mut r = Rng::seed_from_u64(3);
        let draws: Vec<u32> = (0..1000).map(|_| r.below_or_equal(3)).collect();
        assert!(draws.iter().all(|&d| d <= 3));
        assert!(draws.contains(&0) && draws.contains(&3));
        assert_eq!(r.below_or_equal(0), 0);
    }

    #[test]
    fn forks_are_independent_of_each_other() {
        let mut parent = Rng::seed_from_u64(9);
        let mut a = parent.fork();
        let mut b = parent.fork();
        assert_ne!(a.next_u64(), b.next_u64());
    }
}
