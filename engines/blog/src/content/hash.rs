//! A stable 128-bit hash (FNV-1a) for cache keys and memo names.
//!
//! Owns nothing but the algorithm. Invariant: the same sequence of
//! writes gives the same value on every machine, build and version of
//! Rust (unlike `std::hash`, whose hashers may change), because keys are
//! compared across processes and across upgrades of the binary.

const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
const PRIME: u128 = 0x0000000001000000000000000000013B;

/// FNV-1a over 128 bits. Every typed write is length- or tag-prefixed so
/// that ("ab", "c") and ("a", "bc") hash differently.
#[derive(Clone, Debug)]
pub struct Fnv(u128);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(OFFSET)
    }
}

impl Fnv {
    pub fn new() -> Fnv {
        Fnv::default()
    }

    pub fn bytes(&mut self, data: &[u8]) -> &mut Self {
        let mut h = self.0;
        for &b in data {
            h ^= u128::from(b);
            h = h.wrapping_mul(PRIME);
        }
        self.0 = h;
        self
    }

    /// A string, prefixed with its length.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64);
        self.bytes(s.as_bytes())
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    pub fn u128(&mut self, v: u128) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    pub fn finish(&self) -> u128 {
        self.0
    }
}

/// The hash of one byte string.
pub fn of(data: &[u8]) -> u128 {
    Fnv::new().bytes(data).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_and_prefixing() {
        // FNV-1a 128 of "" is the offset basis; of "a" a published value.
        let cases: &[(&[u8], u128)] = &[(b"", OFFSET), (b"a", 0xd228cb696f1a8caf78912b704e4a8964)];
        for (input, want) in cases {
            assert_eq!(of(input), *want, "{input:?}");
        }
        let ab_c = Fnv::new().str("ab").str("c").finish();
        let a_bc = Fnv::new().str("a").str("bc").finish();
        assert_ne!(ab_c, a_bc);
    }
}
