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
//! The buckets hit sit in a small open-addressing table rather than a sorted list: most
//! histograms are per queue, cold in cache when a sample arrives, and a binary search walked
//! several cache lines one dependent load after another (and shifted the tail on every new
//! bucket), where a hashed slot is one line. Reading back sorts the few entries once.
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

/// Slots of a table when the samples spill into it (a power of two).
const FIRST_SLOTS: usize = 16;
/// A new bucket that would sit further than this from its home slot grows the table instead.
const MAX_PROBE: usize = 8;
/// More than twice the buckets there are (`bucket_of(u64::MAX)` is 7423), so a table this size
/// is never full and is never grown past: 128 KiB at most, whatever the values.
const MAX_SLOTS: usize = 16384;

/// 64 bytes, whatever it holds: tables of tens of thousands of queues hold three each.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    /// While `count <= EXACT`: the samples (in recording order). Past that: a table of
    /// [`FIRST_SLOTS`] or more slots (a power of two), linear probing from the slot that
    /// [`home`] gives a bucket; a slot is 0 when empty, else `bucket << COUNT_BITS | samples`
    /// (never 0: a bucket holds a sample). One vector for both keeps the struct small; 8-byte
    /// entries keep a busy histogram small.
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

/// The first slot to try for bucket `b` in a table of `slots` slots (a power of two).
/// Fibonacci hashing: neighbouring buckets (the usual spread of one latency) land apart, so
/// runs of them do not pile into one long probe sequence.
fn home(b: u16, slots: usize) -> usize {
    let bits = slots.trailing_zeros();
    if bits == 0 {
        return 0;
    }
    (u64::from(b).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
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
            let samples = std::mem::replace(&mut self.data, vec![0; FIRST_SLOTS]);
            for v in samples {
                self.add_bucket(bucket_of(v), 1);
            }
        }
    }

    fn add_bucket(&mut self, b: u16, n: u64) {
        loop {
            let slots = self.data.len();
            let mask = slots.wrapping_sub(1);
            // A table of the largest size is probed through: it has room for every bucket.
            let probes = if slots >= MAX_SLOTS { slots } else { slots.min(MAX_PROBE + 1) };
            let mut i = home(b, slots);
            for _ in 0..probes {
                let Some(e) = self.data.get_mut(i) else { break };
                if *e == 0 {
                    *e = u64::from(b) << COUNT_BITS | n.clamp(1, COUNT_MASK);
                    return;
                }
                if entry_bucket(*e) == b {
                    // Saturates past 2^51 samples in one bucket: a year at 70 million a second.
                    let c = ((*e & COUNT_MASK) + n).min(COUNT_MASK);
                    *e = (*e & !COUNT_MASK) | c;
                    return;
                }
                i = (i + 1) & mask;
            }
            if slots >= MAX_SLOTS {
                return;
            }
            self.grow();
        }
    }

    /// Doubles the table (at least [`FIRST_SLOTS`]) and puts every entry back.
    fn grow(&mut self) {
        let slots = (self.data.len() * 2).clamp(FIRST_SLOTS, MAX_SLOTS);
        let old = std::mem::replace(&mut self.data, vec![0; slots]);
        for e in old.into_iter().filter(|&e| e != 0) {
            self.add_bucket(entry_bucket(e), e & COUNT_MASK);
        }
    }

    /// The buckets' entries in bucket order (sorting the entries sorts by bucket, the high
    /// bits). Only meaningful once the samples spilled.
    fn sorted_entries(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.data.iter().copied().filter(|&e| e != 0).collect();
        v.sort_unstable();
        v
    }

    /// Buckets in use (0 while the samples are kept exactly).
    #[cfg(test)]
    pub(super) fn bucket_count(&self) -> usize {
        if self.is_exact() {
            0
        } else {
            self.data.iter().filter(|&&e| e != 0).count()
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
        for e in self.sorted_entries() {
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
                for &e in other.data.iter().filter(|&&e| e != 0) {
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

    /// Every bucket there is, hit in an order that clusters them in the table: all are kept,
    /// each once, the table stays within its bound, and ranks read back in bucket order.
    #[test]
    fn every_bucket_fits_and_reads_back_in_order() {
        let last = bucket_of(i64::MAX as u64);
        let mut h = Histogram::new();
        for b in (0..=last).rev().step_by(2).chain((0..=last).rev().skip(1).step_by(2)) {
            h.record(i64::try_from(bucket_range(b).0).unwrap_or(i64::MAX));
        }
        let n = usize::from(last) + 1;
        assert_eq!(h.count(), n as u64);
        assert_eq!(h.bucket_count(), n);
        assert!(h.data.len() <= MAX_SLOTS);
        for b in [200u16, 1000, 5000] {
            let q = (f64::from(b) + 0.5) / n as f64;
            let (lo, hi) = bucket_range(b);
            let got = h.quantile(q).and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
            assert!(lo <= got && got <= hi, "bucket {b}: {got} not in {lo}..={hi}");
        }
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
