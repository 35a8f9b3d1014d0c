//! A small FxHash-style hasher for the connection and fragment tables.
//!
//! Keys are attacker-controlled addresses and ports, so this is not DoS-resistant; it is used
//! because SipHash costs more per packet than the rest of the in-order path. Table sizes are
//! bounded by [`super::NetConfig::max_flows`] and the fragment byte budget either way.

use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

/// The bytes of `rest` (1 to 7 of them) as a little-endian word, zero-padded: the value a copy
/// into a zeroed `[u8; 8]` gives, from two overlapping loads instead of a variable-length copy
/// (a libc call, on the path of every JID hashed).
#[inline]
fn tail_word(rest: &[u8]) -> u64 {
    let n = rest.len();
    let le32 = |b: &[u8]| b.first_chunk::<4>().map_or(0, |w| u64::from(u32::from_le_bytes(*w)));
    if n >= 4 {
        // The two loads overlap in bytes n-4..4; OR-ing equal bits leaves them as they are.
        let hi = rest.get(n - 4..).map_or(0, le32);
        le32(rest) | hi << (8 * (n - 4))
    } else {
        let byte = |i: usize| rest.get(i).map_or(0, |&b| u64::from(b));
        byte(0)
            | byte(n / 2) << (8 * (n / 2))
            | byte(n.saturating_sub(1)) << (8 * n.saturating_sub(1))
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            self.add(tail_word(rest));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;
pub(crate) type FxHashMap<K, V> = std::collections::HashMap<K, V, FxBuild>;

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::tail_word;

    #[test]
    fn tail_words_are_zero_padded_little_endian() {
        let bytes = [0x81u8, 0x02, 0xf3, 0x04, 0x95, 0x06, 0xa7];
        for n in 1..8 {
            let mut w = [0u8; 8];
            w[..n].copy_from_slice(&bytes[..n]);
            assert_eq!(tail_word(&bytes[..n]), u64::from_le_bytes(w), "{n} bytes");
        }
    }
}
