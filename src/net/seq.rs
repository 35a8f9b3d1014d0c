//! TCP sequence numbers: 32-bit values compared with wrapping arithmetic only.
//!
//! Invariant: no code outside this file compares raw `u32` sequence numbers; distances are
//! signed and valid within ±2^31, which TCP windows (at most 2^30) never exceed.

/// A TCP sequence (or acknowledgment) number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// Signed distance `self - other`, wrapping modulo 2^32.
    #[inline]
    pub fn diff(self, other: SeqNumber) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }
    #[inline]
    pub fn plus(self, n: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(n))
    }
}

#[cfg(test)]
mod tests {
    use super::SeqNumber;

    #[test]
    fn wraps() {
        assert_eq!(SeqNumber(5).diff(SeqNumber(u32::MAX - 4)), 10);
        assert_eq!(SeqNumber(u32::MAX - 4).diff(SeqNumber(5)), -10);
        assert_eq!(SeqNumber(u32::MAX).plus(2), SeqNumber(1));
    }
}
