//! Reassembly of one direction of a TCP connection into a byte stream.
//!
//! Invariants:
//! - `next` is the stream offset of the next byte to emit; every byte below it was emitted as
//!   `Data` or covered by a `Gap`, exactly once and in offset order.
//! - `next_seq` is the sequence number of the byte at `next`; offsets of other sequence numbers
//!   are derived by signed wrapping distance from it, so streams past 4 GiB keep counting.
//! - The out-of-order buffer holds disjoint ranges, all starting above `next`; `buffered` is the
//!   sum of their [`held_cost`]s and is also counted in the table-wide total.
//! - First data wins: bytes already emitted or buffered are never replaced by a later copy.

use std::collections::BTreeMap;

use super::seq::SeqNumber;
use super::{ConnId, Dir, NetStats, PktCtx, StreamEvent, StreamSink, TcpNote};

/// Segments (or ACKs) further ahead than this are impossible for real TCP (the largest window
/// is 2^30) and are rejected rather than turned into huge gaps.
pub(crate) const MAX_AHEAD: u64 = 1 << 30;

/// What an out-of-order segment of `len` bytes is charged against the buffer caps: its memory,
/// not only its bytes (counting bytes alone let a flood of one-byte segments hold some 75 times
/// the cap). Measured with the binary's allocator (mimalloc): an entry of the map takes about
/// 68 bytes of B-tree nodes (32-byte entries in nodes between half and fully used), and the
/// allocator rounds the bytes up to its size classes, by up to about a quarter.
pub(crate) fn held_cost(len: usize) -> usize {
    len + len / 4 + SEGMENT_OVERHEAD
}

const SEGMENT_OVERHEAD: usize = 80;

// The overhead was measured for entries of this size; a larger entry needs it measured again.
const _: () = assert!(2 * std::mem::size_of::<(u64, Vec<u8>)>() <= SEGMENT_OVERHEAD);

/// Where events of one direction go, with the counters they update.
pub(crate) struct Out<'s, S: StreamSink + ?Sized> {
    pub sink: &'s mut S,
    pub pkt: PktCtx,
    pub conn: ConnId,
    pub dir: Dir,
    pub stats: &'s mut NetStats,
    pub total: &'s mut usize,
}

impl<S: StreamSink + ?Sized> Out<'_, S> {
    #[inline]
    fn data(&mut self, offset: u64, data: &[u8]) {
        self.data_at(self.pkt, offset, data);
    }
    #[inline]
    fn data_at(&mut self, pkt: PktCtx, offset: u64, data: &[u8]) {
        if !data.is_empty() {
            self.sink
                .event(pkt, StreamEvent::Data { conn: self.conn, dir: self.dir, offset, data });
        }
    }
    fn gap(&mut self, offset: u64, len: u64) {
        if len > 0 {
            self.stats.gap_bytes += len;
            self.sink
                .event(self.pkt, StreamEvent::Gap { conn: self.conn, dir: self.dir, offset, len });
        }
    }
    pub fn note(&mut self, note: TcpNote) {
        match note {
            TcpNote::Retransmission => self.stats.retransmissions += 1,
            TcpNote::OutOfOrder => self.stats.out_of_order += 1,
            TcpNote::Overlap => self.stats.overlaps += 1,
            TcpNote::BufferLimit => self.stats.buffer_limits += 1,
            TcpNote::KeepAlive => self.stats.keep_alives += 1,
            TcpNote::ZeroWindow => self.stats.zero_windows += 1,
            TcpNote::ZeroWindowProbe => self.stats.zero_window_probes += 1,
            TcpNote::RstIgnored => self.stats.rst_ignored += 1,
            _ => {}
        }
        self.sink.event(self.pkt, StreamEvent::Note { conn: self.conn, dir: self.dir, note });
    }
}

/// Buffer limits for one insertion.
#[derive(Clone, Copy)]
pub(crate) struct Limits {
    pub flow: usize,
    pub total: usize,
}

/// Bytes that came past a hole, held until it fills or is given up, with the packet that
/// brought them: bytes released after a gap were complete when that packet came, not when the
/// hole was given up (up to [`REORDER_WINDOW`] packets later, minutes on a quiet connection).
#[derive(Debug)]
struct Held {
    bytes: Vec<u8>,
    pkt: PktCtx,
}

impl Held {
    #[inline]
    fn len(&self) -> usize {
        self.bytes.len()
    }
}

#[derive(Default, Debug)]
pub(crate) struct Half {
    /// A sequence number base is known (SYN, SYN+ACK's ack, or first segment seen).
    pub started: bool,
    /// A SYN of this direction was seen (a later one at the same place was sent again).
    pub syn_seen: bool,
    next_seq: SeqNumber,
    pub next: u64,
    /// Stream offset of the FIN (end of the data in this direction), once seen.
    pub fin_off: Option<u64>,
    ooo: BTreeMap<u64, Held>,
    buffered: usize,
    /// The peer acknowledged bytes up to this offset that were not seen, and how many more
    /// packets of the connection may pass before they are declared lost: a capture point can
    /// see an ACK before the (reordered) data it covers.
    acked_hole: Option<(u64, u8)>,
    /// The peer's last advertised window was zero: this direction may only probe.
    pub peer_window_zero: bool,
    /// Offset of the last zero-window probe's byte: data resuming there is no overlap.
    probe_at: Option<u64>,
}

/// How far from the data seen an RST's sequence number may lie and still be its sender's: the
/// data it sent but the capture missed, or what the peer acknowledged, are within a window of
/// this (Linux's largest default receive buffer is 6 MiB). A blind RST with a random sequence
/// number falls inside by a chance of 1 in 32.
const RST_SLACK: i128 = 64 << 20;

/// Buffered data that starts this far past everything before it (the data seen, acknowledged
/// or buffered) is taken for a wrong sequence number (a flipped bit in a corrupt capture)
/// rather than data after a hole, once nothing has come to fill the hole: no sender gets that
/// far ahead of its peer's window unnoticed, and a gap up to it would report everything in
/// between as lost. Nor does it make the segments that follow late ("out of order").
const ISLAND: u64 = 1 << 20;

/// Packets of a connection that may pass after an ACK for unseen data before that data is
/// declared lost.
const REORDER_WINDOW: u8 = 4;

impl Half {
    /// Sets the sequence number of stream offset 0.
    pub fn start(&mut self, seq: SeqNumber) {
        self.started = true;
        self.next_seq = seq;
        self.next = 0;
    }

    /// The sequence number of the next byte expected (past everything seen or acknowledged),
    /// once this direction carried data.
    pub fn expected(&self) -> Option<SeqNumber> {
        let h = self.horizon();
        // Truncation to u32 is the modulo-2^32 step of the sequence space.
        (self.started && h > 0).then(|| self.next_seq.plus((h - self.next) as u32))
    }

    /// Stream offset of `seq` (may be negative: before the stream start).
    #[inline]
    pub fn offset_of(&self, seq: SeqNumber) -> i128 {
        // Measured from the horizon (the furthest known offset), so acknowledged-but-unseen
        // runs longer than 2 GiB still map to the right offsets.
        let h = self.horizon();
        // Truncation to u32 is the modulo-2^32 step of the sequence space.
        let h_seq = self.next_seq.plus((h - self.next) as u32);
        i128::from(h) + i128::from(seq.diff(h_seq))
    }

    #[inline]
    fn advance(&mut self, to: u64) {
        if to > self.next {
            // Truncation to u32 is the modulo-2^32 step of the sequence space.
            self.next_seq = self.next_seq.plus((to - self.next) as u32);
            self.next = to;
        }
    }

    /// The furthest offset known to exist: emitted data, or acknowledged data not yet seen.
    /// Plausibility bounds are measured from here, so a long run of acknowledged-but-unseen
    /// data does not make later segments look impossibly far ahead.
    fn horizon(&self) -> u64 {
        self.acked_hole.map_or(self.next, |(l, _)| l.max(self.next))
    }

    /// Whether a segment of `len` bytes (without SYN, FIN or RST) at stream offset `off` is a
    /// keep-alive: Wireshark's test, the sequence number before the end of the data seen so far.
    /// That byte was emitted, declared lost or is buffered, so taking a probe for a keep-alive
    /// never drops data the stream is still waiting for.
    pub fn is_keep_alive(&self, off: i128, len: u64) -> bool {
        if len > 1 {
            return false;
        }
        let seen_end = self.ooo.last_key_value().map_or(self.next, |(&k, v)| k + v.len() as u64);
        off == i128::from(seen_end.max(self.next)) - 1
    }

    /// Whether `seq` lies within the stream seen so far, from its first byte to the furthest
    /// one seen, buffered or acknowledged: where no SYN can be, since a SYN takes the sequence
    /// number before the first byte (a new connection's ISN lands there only by rare chance).
    pub fn inside(&self, seq: SeqNumber) -> bool {
        if !self.started {
            return false;
        }
        let seen_end = self.ooo.last_key_value().map_or(0, |(&k, v)| k + v.len() as u64);
        let off = self.offset_of(seq);
        off >= 0 && off <= i128::from(self.horizon().max(seen_end))
    }

    /// Whether an RST at `seq` can be this direction's sender's (see [`RST_SLACK`]); one from
    /// a direction with no sequence base yet cannot be judged and is taken.
    pub fn rst_plausible(&self, seq: SeqNumber) -> bool {
        if !self.started {
            return true;
        }
        let off = self.offset_of(seq);
        off >= i128::from(self.next) - RST_SLACK && off <= i128::from(self.horizon()) + RST_SLACK
    }

    /// Whether a segment of `len` bytes at `off` is a zero-window probe (see
    /// [`TcpNote::ZeroWindowProbe`]): one byte at the next expected sequence number, or at the
    /// last probe's, while the peer's window is zero. Returns `Some(first)`, `first` telling
    /// whether the byte is new here (the probe is sent again until the window opens).
    #[inline]
    pub fn zero_window_probe(&mut self, off: i128, len: u64) -> Option<bool> {
        if !self.peer_window_zero || len != 1 {
            return None;
        }
        if self.probe_at.is_some_and(|p| i128::from(p) == off) {
            return Some(false);
        }
        let seen_end = self.ooo.last_key_value().map_or(self.next, |(&k, v)| k + v.len() as u64);
        if off != i128::from(seen_end.max(self.next)) {
            return None;
        }
        self.probe_at = u64::try_from(off).ok();
        Some(true)
    }

    /// A segment of `len` bytes at offset `off` after the connection closed. It belongs to the
    /// closed connection when it starts within the stream, at or before its end (a
    /// retransmission, or data that was in flight when it closed): the end moves past it and
    /// the bytes past the old end are returned. `None`: the sequence number is elsewhere, so
    /// this is another connection on the same 4-tuple (a new ISN lands in the old stream's few
    /// bytes of the 2^32 only by rare chance).
    pub fn after_close(&mut self, off: i128, len: u64) -> Option<u64> {
        // A FIN at the end takes the sequence number after the last byte: data sent after it
        // starts one further.
        let end_seq = self.next + u64::from(self.fin_off == Some(self.next));
        if !self.started || off < 0 || off > i128::from(end_seq) {
            return None;
        }
        let off = off as u64;
        let end = off.saturating_add(len);
        let past = end.saturating_sub(off.max(self.next));
        self.advance(end);
        Some(past)
    }

    /// All data seen up to the FIN was emitted (or gapped).
    pub fn fin_done(&self) -> bool {
        self.fin_off.is_some_and(|f| self.next >= f)
    }

    /// Handles one segment's payload at (possibly negative) stream offset `off`; `missing`
    /// bytes after the payload were cut by the snaplen.
    pub fn segment<S: StreamSink + ?Sized>(
        &mut self,
        off: i128,
        data: &[u8],
        missing: u32,
        fin: bool,
        lim: Limits,
        out: &mut Out<'_, S>,
    ) {
        let full_len = data.len() as u64 + u64::from(missing);
        if off > i128::from(self.horizon()) + i128::from(MAX_AHEAD) {
            out.note(TcpNote::BadSequence);
            return;
        }
        // Bytes before the stream start are a retransmission of something we never tracked.
        let (off, data, missing) = if off < 0 {
            let skip = u64::try_from(-off).unwrap_or(u64::MAX);
            if skip >= full_len {
                if full_len > 0 {
                    out.note(TcpNote::Retransmission);
                }
                return;
            }
            let skip_data = skip.min(data.len() as u64) as usize;
            let skip_missing = (skip - skip_data as u64) as u32;
            (0u64, data.get(skip_data..).unwrap_or(&[]), missing - skip_missing)
        } else {
            (off as u64, data, missing)
        };
        let mut data = data;
        let mut missing = missing;
        let mut end = off + data.len() as u64;
        let mut full_end = end + u64::from(missing);
        if self.fin_off == Some(off) && full_end > off {
            // Bytes where the FIN was: the FIN took that sequence number, and a sender that
            // sent one sends nothing after it. Going on, this one shows the FIN was not real
            // (its bit flipped in a corrupt capture); the stream's end is not known after all.
            out.note(TcpNote::BadSequence);
            self.fin_off = None;
        }
        if let Some(f) = self.fin_off {
            // The FIN takes the sequence number after the last byte, so a segment without bytes
            // (the ACKs of a side that closed first while the other still sends) sits at f + 1.
            let impossible = if full_end == off { off > f.saturating_add(1) } else { full_end > f };
            if impossible {
                // Data past a FIN cannot be part of this stream.
                out.note(TcpNote::BadSequence);
                let keep = f.saturating_sub(off);
                data = data.get(..(keep.min(data.len() as u64)) as usize).unwrap_or(&[]);
                end = off + data.len() as u64;
                missing = f.saturating_sub(end).min(u64::from(missing)) as u32;
                full_end = end + u64::from(missing);
            }
        }
        if fin {
            match self.fin_off {
                None => self.fin_off = Some(full_end),
                // The same FIN again, alone: sent again (a copy with data is counted below, as
                // data).
                Some(f) if f == full_end && full_len == 0 => out.note(TcpNote::Retransmission),
                Some(_) => {}
            }
        }
        if !data.is_empty() {
            if end <= self.next {
                out.note(TcpNote::Retransmission);
            } else if off <= self.next {
                if off < self.next {
                    // Resuming at the byte of a zero-window probe (which the receiver dropped)
                    // once the window opened is no overlap.
                    if self.probe_at.take_if(|p| *p == off).is_none() {
                        out.note(TcpNote::Overlap);
                    }
                } else if self
                    .ooo
                    .first_key_value()
                    .is_some_and(|(&k, _)| k.saturating_sub(end) < ISLAND)
                {
                    // Expected next, but later data came first: this one is late.
                    out.note(TcpNote::OutOfOrder);
                }
                self.in_order(off, data, out);
            } else {
                self.insert_ooo(off, data, lim, out);
            }
        }
        if missing > 0 {
            out.note(TcpNote::Snaplen);
            // Only when the present bytes are delivered is the cut-off tail the next hole; an
            // out-of-order truncated segment leaves its tail as an ordinary hole.
            if self.next >= end && self.next < full_end && off <= self.next {
                self.flush_to(full_end, out);
            }
        }
    }

    fn in_order<S: StreamSink + ?Sized>(&mut self, off: u64, data: &[u8], out: &mut Out<'_, S>) {
        let end = off + data.len() as u64;
        loop {
            let first = self.ooo.first_key_value().map(|(&k, _)| k);
            let lim = first.map_or(end, |k| k.min(end));
            if self.next < lim {
                let a = (self.next - off) as usize;
                let b = (lim - off) as usize;
                out.data(self.next, data.get(a..b).unwrap_or(&[]));
                self.advance(lim);
            }
            if self.next >= end {
                self.release_contiguous(out);
                break;
            }
            if !self.release_one(out, None) {
                break;
            }
        }
    }

    /// Emits the first buffered range if it starts at or before `next`: as part of the current
    /// packet when `stamp` is `None` (it filled the hole before the range), else after a gap,
    /// as part of the latest packet that brought the bytes released so far (`stamp`, updated).
    fn release_one<S: StreamSink + ?Sized>(
        &mut self,
        out: &mut Out<'_, S>,
        stamp: Option<&mut Option<PktCtx>>,
    ) -> bool {
        match self.ooo.first_key_value() {
            Some((&k, _)) if k <= self.next => {}
            _ => return false,
        }
        let Some((k, v)) = self.ooo.pop_first() else {
            return false;
        };
        let cost = held_cost(v.len());
        self.buffered = self.buffered.saturating_sub(cost);
        *out.total = out.total.saturating_sub(cost);
        let end = k + v.len() as u64;
        if end > self.next {
            let skip = (self.next - k) as usize;
            let pkt = match stamp {
                None => out.pkt,
                Some(st) => {
                    let p = match *st {
                        Some(p) if p.index >= v.pkt.index => p,
                        _ => v.pkt,
                    };
                    *st = Some(p);
                    p
                }
            };
            out.data_at(pkt, self.next, v.bytes.get(skip..).unwrap_or(&[]));
            self.advance(end);
        }
        true
    }

    fn release_contiguous<S: StreamSink + ?Sized>(&mut self, out: &mut Out<'_, S>) {
        while self.release_one(out, None) {}
    }

    fn insert_ooo<S: StreamSink + ?Sized>(
        &mut self,
        off: u64,
        data: &[u8],
        lim: Limits,
        out: &mut Out<'_, S>,
    ) {
        let end = off + data.len() as u64;
        let mut cur = off;
        let mut overlapped = false;
        if let Some((&k, v)) = self.ooo.range(..=off).next_back() {
            let ke = k + v.len() as u64;
            if ke > cur {
                cur = ke.min(end);
                overlapped = true;
            }
        }
        let mut pieces: Vec<(u64, u64)> = Vec::new();
        if cur < end {
            for (&k, v) in self.ooo.range(cur..end) {
                overlapped = true;
                if k > cur {
                    pieces.push((cur, k));
                }
                cur = cur.max(k + v.len() as u64);
                if cur >= end {
                    break;
                }
            }
            if cur < end {
                pieces.push((cur, end));
            }
        }
        if pieces.is_empty() {
            out.note(TcpNote::Retransmission);
            return;
        }
        // A segment past a hole is not out of order by itself (Wireshark: "previous segment
        // not captured"): the hole is reported if it is given up, and the segment that fills it
        // is the late one. Only a segment arriving after data beyond it is.
        if overlapped {
            out.note(TcpNote::Overlap);
        } else if self.ooo.range(end..end.saturating_add(ISLAND)).next().is_some() {
            out.note(TcpNote::OutOfOrder);
        }
        for (a, b) in pieces {
            if let Some(bytes) = data.get((a - off) as usize..(b - off) as usize) {
                self.ooo.insert(a, Held { bytes: bytes.to_vec(), pkt: out.pkt });
                let cost = held_cost(bytes.len());
                self.buffered += cost;
                *out.total += cost;
            }
        }
        if self.buffered > lim.flow || *out.total > lim.total {
            out.note(TcpNote::BufferLimit);
            while self.buffered > lim.flow || (*out.total > lim.total && self.buffered > 0) {
                let Some(&k) = self.ooo.keys().next() else {
                    break;
                };
                self.flush_to(k, out);
            }
        }
    }

    /// Declares everything below `limit` that was not seen lost: gaps for holes, buffered data
    /// in between, then whatever buffered data continues contiguously.
    pub fn flush_to<S: StreamSink + ?Sized>(&mut self, limit: u64, out: &mut Out<'_, S>) {
        let mut stamp = None;
        loop {
            while self.release_one(out, Some(&mut stamp)) {}
            if self.next >= limit {
                break;
            }
            let first = self.ooo.first_key_value().map(|(&k, _)| k);
            let to = first.map_or(limit, |k| k.min(limit));
            out.gap(self.next, to - self.next);
            self.advance(to);
        }
    }

    /// Acknowledgment from the peer: bytes below it will never be retransmitted.
    pub fn ack(&mut self, ack: SeqNumber) {
        if !self.started {
            return;
        }
        let off = self.offset_of(ack);
        let next = i128::from(self.next);
        if off > i128::from(self.horizon()) + i128::from(MAX_AHEAD) {
            return;
        }
        if let Some((limit, left)) = self.acked_hole {
            // A peer's acknowledgments only grow: one below an acknowledged-but-unseen limit
            // contradicts it. Either that limit was corrupt in the capture (one flipped bit
            // would declare the rest of the stream lost) or the two ACKs were captured out
            // of order and the higher comes again; the hole is not declared on its word alone.
            if off < i128::from(limit) {
                self.acked_hole = (off > next).then_some((off as u64, left));
            }
        }
        if off <= next {
            return;
        }
        let mut limit = off as u64;
        if let Some(f) = self.fin_off {
            // The FIN takes one sequence number but no stream byte.
            limit = limit.min(f);
        }
        if limit > self.next {
            let (prev, left) = self.acked_hole.unwrap_or((0, REORDER_WINDOW));
            self.acked_hole = Some((prev.max(limit), left));
        }
    }

    /// Called once per packet of the connection, after it was processed: acknowledged bytes
    /// still missing once the reordering window has passed are declared lost.
    pub fn tick<S: StreamSink + ?Sized>(&mut self, out: &mut Out<'_, S>) {
        let Some((limit, left)) = self.acked_hole else { return };
        if self.next >= limit {
            self.acked_hole = None;
        } else if left == 0 {
            self.acked_hole = None;
            self.flush_to(limit, out);
        } else {
            self.acked_hole = Some((limit, left - 1));
        }
    }

    /// Connection end: everything buffered (and anything before a seen FIN) is flushed.
    pub fn flush_all<S: StreamSink + ?Sized>(&mut self, out: &mut Out<'_, S>) {
        self.drop_islands(out);
        let buf_end = self.ooo.last_key_value().map_or(0, |(&k, v)| k + v.len() as u64);
        let acked = self.acked_hole.take().map_or(0, |(l, _)| l);
        let limit = buf_end.max(self.fin_off.unwrap_or(0)).max(acked);
        if limit > self.next {
            self.flush_to(limit, out);
        }
    }

    /// Drops buffered data that starts more than [`ISLAND`] past everything before it: see
    /// there. Called when the holes before it will not be filled any more.
    fn drop_islands<S: StreamSink + ?Sized>(&mut self, out: &mut Out<'_, S>) {
        let mut reach = self.horizon().max(self.fin_off.unwrap_or(0));
        let mut far = Vec::new();
        for (&k, v) in &self.ooo {
            if k > reach.saturating_add(ISLAND) {
                far.push(k);
            } else {
                reach = reach.max(k + v.len() as u64);
            }
        }
        for k in far {
            if let Some(v) = self.ooo.remove(&k) {
                let cost = held_cost(v.len());
                self.buffered = self.buffered.saturating_sub(cost);
                *out.total = out.total.saturating_sub(cost);
                out.note(TcpNote::BadSequence);
            }
        }
    }

    /// Releases the buffer accounting (when the connection is dropped).
    pub fn clear(&mut self, total: &mut usize) {
        *total = total.saturating_sub(self.buffered);
        self.buffered = 0;
        self.ooo.clear();
    }
}
