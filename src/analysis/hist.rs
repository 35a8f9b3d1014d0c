//! A small log-linear histogram for latencies in nanoseconds.
//!
//! The first [`EXACT`] samples are kept as they are, so a histogram of a few samples (most of
//! them: one per queue and connection) reads back exactly. Past that, values below 128 are
//! counted exactly; above, each power of two is split into 128 linear buckets, so a bucket's
//! width is under 1/128 of its lower bound, and a percentile read back (the bucket's midpoint,
//! clamped to the exact min and max) is within 0.4 % of a recorded value. Buckets are kept
//! sparse (only the ones hit, 8 bytes each), so an idle histogram costs a few words and a busy
//! one at most a few hundred entries whatever the number of samples: memory grows with the
//! spread of values, never with their count.
//!
//! Invariants: the samples are kept exactly while `count <= EXACT`, and as buckets once it
//! is past (whose counts then sum to `count`, short of a bucket saturating at 2^51 samples);
//! `min <= max` once `count > 0`. What a histogram reads back depends only on the samples
//! recorded and merged into it, not on their order.

const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
/// Samples kept exactly before the buckets take over.
pub const EXACT: usize = 8;

/// Bits of a packed bucket entry that hold its count; the bucket number sits above them.
const COUNT_BITS: u32 = 51;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// 64 bytes, whatever it holds: tables of tens of thousands of queues hold three each.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// While `count <= EXACT`: the samples (in recording order). Past that: one entry per
    /// bucket hit, `bucket << COUNT_BITS | samples`, sorted (so by bucket). One vector for both
    /// keeps the struct small; 8-byte entries keep a busy histogram small.
    data: Vec<u64>,
    count: u64,
    min: i64,
    max: i64,
    /// The sum of the samples (all non-negative), as a 128-bit number in two halves, so the
    /// struct needs no 16-byte alignment.
    sum_lo: u64,
    sum_hi: u64,
}

fn bucket_of(v: u64) -> u16 {
    if v < SUB {
        return v as u16;
    }
    // e >= SUB_BITS here; the top SUB_BITS+1 bits select the bucket.
    let e = 63 - v.leading_zeros();
    let sub = (v >> (e - SUB_BITS)) & (SUB - 1);
    // e <= 63 gives at most (63 - 6) * 128 + 127 = 7423, which fits u16 (and 13 bits).
    ((u64::from(e - SUB_BITS + 1) << SUB_BITS) + sub) as u16
}

/// Lowest and highest value of a bucket.
fn bucket_range(b: u16) -> (u64, u64) {
    let b = u64::from(b);
    if b < SUB {
        return (b, b);
    }
    let e = (b >> SUB_BITS) + u64::from(SUB_BITS) - 1;
    let sub = b & (SUB - 1);
    let shift = e - u64::from(SUB_BITS);
    let lo = ((SUB + sub) << shift) as u128;
    let hi = lo + (1u128 << shift) - 1;
    (lo.min(u128::from(u64::MAX)) as u64, hi.min(u128::from(u64::MAX)) as u64)
}

fn entry_bucket(e: u64) -> u16 {
    (e >> COUNT_BITS) as u16
}

impl Histogram {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `data` holds samples rather than buckets.
    fn is_exact(&self) -> bool {
        self.count <= EXACT as u64
    }

    /// Records one value; negative values (clock steps backwards in a capture) count as 0.
    pub fn record(&mut self, v: i64) {
        let v = v.max(0);
        if self.count < EXACT as u64 {
            if self.data.capacity() == 0 {
                self.data.reserve_exact(EXACT);
            }
            self.data.push(v as u64);
        } else {
            self.spill();
            self.add_bucket(bucket_of(v as u64), 1);
        }
        if self.count == 0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.count += 1;
        self.add_sum(v as u64, 0);
    }

    fn add_sum(&mut self, lo: u64, hi: u64) {
        let (l, carry) = self.sum_lo.overflowing_add(lo);
        self.sum_lo = l;
        self.sum_hi = self.sum_hi.wrapping_add(hi).wrapping_add(u64::from(carry));
    }

    /// Turns the exact samples into buckets; a no-op once they are. Call before `count`
    /// passes [`EXACT`].
    fn spill(&mut self) {
        if self.is_exact() {
            let samples = std::mem::take(&mut self.data);
            for v in samples {
                self.add_bucket(bucket_of(v), 1);
            }
        }
    }

    fn add_bucket(&mut self, b: u16, n: u64) {
        match self.data.binary_search_by_key(&b, |&e| entry_bucket(e)) {
            Ok(i) => {
                if let Some(e) = self.data.get_mut(i) {
                    // Saturates past 2^51 samples in one bucket: a year at 70 million a second.
                    let c = ((*e & COUNT_MASK) + n).min(COUNT_MASK);
                    *e = (*e & !COUNT_MASK) | c;
                }
            }
            Err(i) => self.data.insert(i, u64::from(b) << COUNT_BITS | n.min(COUNT_MASK)),
        }
    }

    /// Buckets in use (0 while the samples are kept exactly).
    #[cfg(test)]
    pub(super) fn bucket_count(&self) -> usize {
        if self.is_exact() {
            0
        } else {
            self.data.len()
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn min(&self) -> Option<i64> {
        (self.count > 0).then_some(self.min)
    }

    pub fn max(&self) -> Option<i64> {
        (self.count > 0).then_some(self.max)
    }

    pub fn mean(&self) -> Option<f64> {
        let sum = u128::from(self.sum_hi) << 64 | u128::from(self.sum_lo);
        (self.count > 0).then(|| sum as f64 / self.count as f64)
    }

    /// The value at quantile `q` (0.0–1.0): the sample of rank ⌈q·count⌉, exactly while the
    /// samples are few, else the midpoint of the bucket holding it, clamped to the exact min
    /// and max so p0 and p100 are exact.
    pub fn quantile(&self, q: f64) -> Option<i64> {
        if self.count == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        if rank == self.count || self.min == self.max {
            return Some(self.max);
        }
        if self.is_exact() {
            let mut v = self.data.clone();
            v.sort_unstable();
            let x = usize::try_from(rank - 1).ok().and_then(|i| v.get(i)).copied()?;
            return Some(i64::try_from(x).unwrap_or(i64::MAX));
        }
        let mut seen = 0u64;
        for &e in &self.data {
            seen += e & COUNT_MASK;
            if seen >= rank {
                let (lo, hi) = bucket_range(entry_bucket(e));
                let mid = lo + (hi - lo) / 2;
                let mid = i64::try_from(mid).unwrap_or(i64::MAX);
                return Some(mid.clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        if self.count + other.count <= EXACT as u64 {
            self.data.extend_from_slice(&other.data);
        } else {
            self.spill();
            if other.is_exact() {
                for &v in &other.data {
                    self.add_bucket(bucket_of(v), 1);
                }
            } else {
                for &e in &other.data {
                    self.add_bucket(entry_bucket(e), e & COUNT_MASK);
                }
            }
        }
        if self.count == 0 {
            self.min = other.min;
            self.max = other.max;
        } else {
            self.min = self.min.min(other.min);
            self.max = self.max.max(other.max);
        }
        self.count += other.count;
        self.add_sum(other.sum_lo, other.sum_hi);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_contiguously() {
        let mut prev_hi = None;
        for b in 0..7000u16 {
            let (lo, hi) = bucket_range(b);
            assert!(lo <= hi);
            if let Some(p) = prev_hi {
                assert_eq!(lo, p + 1, "bucket {b}");
            }
            prev_hi = Some(hi);
            assert_eq!(bucket_of(lo), b);
            assert_eq!(bucket_of(hi), b);
        }
        assert!(bucket_of(u64::MAX) > 7000);
    }

    #[test]
    fn quantiles_within_one_percent() {
        let mut h = Histogram::new();
        // 1 µs .. 10 s in a geometric progression, plus exact small values.
        let mut vals: Vec<i64> = Vec::new();
        let mut v = 1_000.0f64;
        while v < 1e10 {
            vals.push(v as i64);
            v *= 1.013;
        }
        for &x in &vals {
            h.record(x);
        }
        vals.sort_unstable();
        for q in [0.01, 0.1, 0.5, 0.9, 0.99, 0.999] {
            let rank = ((q * vals.len() as f64).ceil() as usize).clamp(1, vals.len());
            let truth = vals[rank - 1] as f64;
            let got = h.quantile(q).unwrap_or(0) as f64;
            assert!((got - truth).abs() / truth < 0.01, "q={q} truth={truth} got={got}");
        }
        assert_eq!(h.min(), Some(vals[0]));
        assert_eq!(h.max(), vals.last().copied());
        assert_eq!(h.quantile(1.0), vals.last().copied());
        assert_eq!(h.count(), vals.len() as u64);
    }

    #[test]
    fn small_values_exact_and_merge() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        assert_eq!(a.quantile(0.5), None);
        for v in 1..=50 {
            a.record(v);
        }
        for v in 51..=100 {
            b.record(v);
        }
        b.record(-5);
        a.merge(&b);
        assert_eq!(a.count(), 101);
        assert_eq!(a.min(), Some(0));
        assert_eq!(a.max(), Some(100));
        assert_eq!(a.quantile(0.5), Some(50));
        assert_eq!(a.quantile(0.9), Some(90));
    }

    /// Whatever the order of recording and merging, the same samples read back the same.
    #[test]
    fn order_of_samples_and_merges_does_not_matter() {
        let vals: Vec<i64> = (0..40).map(|i| (i * 7919 % 97) * 1_000_003).collect();
        for cut in [0, 3, 8, 9, 20, 40] {
            let (a, b) = vals.split_at(cut);
            let mut x = Histogram::new();
            let mut y = Histogram::new();
            for &v in a {
                x.record(v);
            }
            for &v in b.iter().rev() {
                y.record(v);
            }
            let mut xy = x.clone();
            xy.merge(&y);
            let mut yx = y.clone();
            yx.merge(&x);
            let mut whole = Histogram::new();
            for &v in &vals {
                whole.record(v);
            }
            for q in [0.1, 0.5, 0.9, 0.99] {
                assert_eq!(xy.quantile(q), whole.quantile(q), "cut {cut} q {q}");
                assert_eq!(yx.quantile(q), whole.quantile(q), "cut {cut} q {q}");
            }
        }
    }

    #[test]
    fn few_samples_read_back_exactly() {
        let mut h = Histogram::new();
        for v in [12_500_001, 7_000_003, 690_000_017] {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), Some(12_500_001));
        assert_eq!(h.quantile(0.1), Some(7_000_003));
        assert_eq!(h.bucket_count(), 0);
        for _ in 0..100 {
            h.record(5);
        }
        assert!(h.bucket_count() > 0);
        assert_eq!(h.quantile(0.5), Some(5));
    }

    /// The sum outgrows 64 bits (its carry into the high half) and still reads back.
    #[test]
    fn mean_of_huge_samples() {
        let mut h = Histogram::new();
        for _ in 0..3 {
            h.record(i64::MAX);
        }
        assert_eq!(h.mean(), Some(i64::MAX as f64));
        let mut many = Histogram::new();
        for _ in 0..20 {
            many.record(i64::MAX);
        }
        many.merge(&h);
        assert_eq!(many.count(), 23);
        assert_eq!(many.mean(), Some(i64::MAX as f64));
        assert_eq!(many.quantile(0.5), Some(i64::MAX));
    }

    #[test]
    fn extreme_values_do_not_panic() {
        let mut h = Histogram::new();
        h.record(i64::MAX);
        h.record(0);
        assert_eq!(h.quantile(1.0), Some(i64::MAX));
        assert_eq!(h.quantile(0.0), Some(0));
    }
}
