//! IPv4 and IPv6 fragment reassembly.
//!
//! Invariants: the bytes held over all datagrams, and a fixed cost per datagram, never exceed
//! the configured budget (the oldest datagrams are dropped first to make room); a datagram never
//! grows past 65535 bytes; a fragment that overlaps already received bytes with different
//! content, or contradicts the known total length, drops its whole datagram (overlap attacks
//! must not choose which bytes we see).
//! Incomplete datagrams are dropped after [`FRAG_TIMEOUT_NS`] of capture time.

use std::collections::VecDeque;

use super::hash::FxHashMap;
use super::parse::Fragment;

/// Capture time after which an incomplete datagram is abandoned (Linux default: 30 s).
pub(crate) const FRAG_TIMEOUT_NS: i64 = 30_000_000_000;
const MAX_DATAGRAM: u32 = 65535;
/// What a held datagram costs beyond its bytes (its entry, its ranges), counted against the
/// budget: a flood of one-fragment datagrams of 8 bytes each must not hold millions of them.
const DATAGRAM_COST: usize = 128;

/// A datagram's identity: source, destination, IPv6, identification, protocol.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct DatagramId {
    src: [u8; 16],
    dst: [u8; 16],
    v6: bool,
    id: u32,
    proto: u8,
}

/// The datagram fragment `f` belongs to.
pub(crate) fn datagram_of(f: &Fragment<'_>) -> DatagramId {
    DatagramId { src: f.src, dst: f.dst, v6: f.v6, id: f.id, proto: f.proto }
}

struct Datagram {
    /// Reassembled payload so far; bytes outside `ranges` are zero.
    buf: Vec<u8>,
    /// Received byte ranges, sorted and non-adjacent-merged.
    ranges: Vec<(u32, u32)>,
    /// Payload length, known once the last fragment (MF clear) arrived.
    total: Option<u32>,
    /// Distinguishes this datagram from an older one with the same key in `order`.
    serial: u64,
}

/// Outcome of adding one fragment.
pub(crate) enum FragResult {
    /// Kept; the datagram is still incomplete.
    Pending,
    /// The datagram is complete: its protocol, addresses and payload.
    Complete { proto: u8, src: [u8; 16], dst: [u8; 16], v6: bool, payload: Vec<u8> },
    /// The fragment (and possibly its datagram) was dropped as bogus or over budget.
    Dropped,
}

#[derive(Default)]
pub(crate) struct Defrag {
    table: FxHashMap<DatagramId, Datagram>,
    /// Datagrams in arrival order, for timeouts and dropping the oldest.
    order: VecDeque<(DatagramId, u64, i64)>,
    bytes: usize,
    serial: u64,
    /// Fragments or datagrams dropped (overlap, bogus, over budget, timed out): IPv4, IPv6.
    pub dropped: [u64; 2],
}

impl Defrag {
    pub fn add(&mut self, f: &Fragment<'_>, now: i64, budget: usize) -> FragResult {
        let len = f.data.len() as u32;
        let Some(end) = f.offset.checked_add(len) else {
            self.drop_one(f.v6);
            return FragResult::Dropped;
        };
        // A middle fragment's payload must be a multiple of 8 bytes; a datagram ends at 64 KiB.
        if f.truncated || end > MAX_DATAGRAM || (f.more && len % 8 != 0) || len == 0 {
            self.drop_one(f.v6);
            return FragResult::Dropped;
        }
        let key = datagram_of(f);
        if !self.table.contains_key(&key) {
            self.serial += 1;
            self.table.insert(
                key,
                Datagram { buf: Vec::new(), ranges: Vec::new(), total: None, serial: self.serial },
            );
            self.order.push_back((key, self.serial, now));
            self.bytes += DATAGRAM_COST;
        }
        let Some(dg) = self.table.get_mut(&key) else {
            return FragResult::Dropped;
        };
        let bogus = match (dg.total, f.more) {
            (Some(t), _) if end > t => true,
            (Some(t), false) if end != t => true,
            (None, false) => dg.ranges.last().is_some_and(|r| r.1 > end),
            _ => false,
        };
        let mut dup = false;
        let mut conflict = bogus;
        if !conflict {
            for &(a, b) in &dg.ranges {
                if a < end && f.offset < b {
                    // Overlap: identical bytes are a harmless duplicate, anything else is an attack
                    // or corruption and poisons the datagram.
                    let lo = a.max(f.offset);
                    let hi = b.min(end);
                    let old = dg.buf.get(lo as usize..hi as usize);
                    let new = f.data.get((lo - f.offset) as usize..(hi - f.offset) as usize);
                    if old.is_none() || old != new {
                        conflict = true;
                        break;
                    }
                    if a <= f.offset && end <= b {
                        dup = true;
                    }
                }
            }
        }
        if conflict {
            self.drop_one(key.v6);
            self.remove(&key);
            return FragResult::Dropped;
        }
        if dup {
            return FragResult::Pending;
        }
        // Overlapping parts are identical, so writing all of it is fine.
        let grow = (end as usize).saturating_sub(dg.buf.len());
        if dg.buf.len() < end as usize {
            dg.buf.resize(end as usize, 0);
        }
        if let Some(dst) = dg.buf.get_mut(f.offset as usize..end as usize) {
            dst.copy_from_slice(f.data);
        }
        self.bytes += grow;
        if !f.more {
            dg.total = Some(end);
        }
        insert_range(&mut dg.ranges, f.offset, end);
        let complete = dg.total.is_some_and(|t| dg.ranges.first() == Some(&(0, t)));
        if complete {
            if let Some(dg) = self.table.remove(&key) {
                self.bytes = self.bytes.saturating_sub(dg.buf.len() + DATAGRAM_COST);
                return FragResult::Complete {
                    proto: key.proto,
                    src: key.src,
                    dst: key.dst,
                    v6: key.v6,
                    payload: dg.buf,
                };
            }
        }
        // Over budget: drop the oldest datagrams (possibly this one).
        while self.bytes > budget {
            let Some((k, serial, _)) = self.order.pop_front() else {
                break;
            };
            if self.table.get(&k).is_some_and(|d| d.serial == serial) {
                self.drop_one(k.v6);
                self.remove(&k);
            }
        }
        if self.table.contains_key(&key) {
            FragResult::Pending
        } else {
            FragResult::Dropped
        }
    }

    fn drop_one(&mut self, v6: bool) {
        if let Some(n) = self.dropped.get_mut(usize::from(v6)) {
            *n += 1;
        }
    }

    fn remove(&mut self, key: &DatagramId) {
        if let Some(dg) = self.table.remove(key) {
            self.bytes = self.bytes.saturating_sub(dg.buf.len() + DATAGRAM_COST);
        }
    }

    /// Drops datagrams older than the timeout; cheap when nothing is due.
    pub fn expire(&mut self, now: i64) {
        while let Some(&(k, serial, ts)) = self.order.front() {
            if now.saturating_sub(ts) < FRAG_TIMEOUT_NS {
                break;
            }
            self.order.pop_front();
            if self.table.get(&k).is_some_and(|d| d.serial == serial) {
                self.drop_one(k.v6);
                self.remove(&k);
            }
        }
        // Stale entries (completed datagrams) pile up only until they reach the front.
        if self.order.len() > 2 * self.table.len() + 1024 {
            let table = &self.table;
            self.order.retain(|(k, s, _)| table.get(k).is_some_and(|d| d.serial == *s));
        }
    }

    /// Whether datagram `d` is held, incomplete.
    pub fn holds(&self, d: &DatagramId) -> bool {
        self.table.contains_key(d)
    }

    /// Drops every incomplete datagram (the input ended), counting each.
    pub fn abandon_all(&mut self) {
        let keys: Vec<DatagramId> = self.table.keys().copied().collect();
        for k in keys {
            self.drop_one(k.v6);
            self.remove(&k);
        }
        self.order.clear();
    }

    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.table.len()
    }
}

/// Inserts `[a, b)` into sorted disjoint ranges, merging touching ones.
fn insert_range(ranges: &mut Vec<(u32, u32)>, a: u32, b: u32) {
    let pos = ranges.partition_point(|r| r.1 < a);
    let mut lo = a;
    let mut hi = b;
    let mut end = pos;
    while let Some(&(ra, rb)) = ranges.get(end) {
        if ra > hi {
            break;
        }
        lo = lo.min(ra);
        hi = hi.max(rb);
        end += 1;
    }
    ranges.splice(pos..end, std::iter::once((lo, hi)));
}
