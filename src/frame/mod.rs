//! Cutting byte streams into MSync messages.
//!
//! On raw TCP every message is a 4-byte big-endian length followed by that many bytes of
//! protobuf. [`LengthPrefixSplitter`] is a per-direction state machine fed arbitrary chunks of
//! the in-order stream: it hands out complete frames, borrowing the chunk when the frame lies
//! inside it and copying only frames that span chunks. Lengths are checked against a cap before
//! anything is buffered, so a hostile length costs nothing.
//!
//! A splitter that does not know where frames start (a connection picked up mid-stream, after a
//! gap, after a frame that was not MSync) is *resynchronising*: it looks for the next offset
//! where a length prefix is followed by bytes that a [`FrameCheck`] accepts as an envelope, and
//! counts the bytes it skipped. Memory in that state is bounded by the frame cap.

use crate::msync::decode::plausible_envelope;
use crate::msync::schema::varint;

pub mod detect;

/// Why bytes of a stream were not handed on as messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// Passed over while looking for the next frame (after a gap, a bad header, mid-stream).
    Resync,
    /// A message given up for the problem reported with it (over a cap, not inflatable,
    /// empty, interrupted, its handshake never completed).
    Dropped,
    /// A frame or message cut short by a gap.
    Gap,
    /// A frame or message cut short by the end of the capture.
    End,
}

impl SkipReason {
    /// A stable name for scripts (`dissect --json`'s `why`).
    pub fn id(self) -> &'static str {
        match self {
            SkipReason::Resync => "resync",
            SkipReason::Dropped => "dropped",
            SkipReason::Gap => "gap",
            SkipReason::End => "end",
        }
    }

    /// What happened, in words.
    pub fn words(self) -> &'static str {
        match self {
            SkipReason::Resync => "resynchronising",
            SkipReason::Dropped => "dropped, see the problem above",
            SkipReason::Gap => "cut short by a gap",
            SkipReason::End => "cut short by the end of the capture",
        }
    }
}

pub mod sockjs;
pub mod websocket;

/// Tells whether bytes look like one message of the protocol being split.
pub trait FrameCheck {
    /// A whole frame body, judged strictly: used to find frame boundaries while
    /// resynchronising, where a false match would misalign everything after it.
    fn plausible(&self, body: &[u8]) -> bool;
    /// A whole frame body read in sync, judged loosely: rejecting it makes the splitter
    /// resynchronise. Defaults to [`FrameCheck::plausible`].
    fn acceptable(&self, body: &[u8]) -> bool {
        self.plausible(body)
    }
    /// The first bytes of a body of `len` bytes (possibly all of it): could a plausible body
    /// start so? Cheap, and used to reject most candidate offsets before buffering a body.
    fn plausible_start(&self, head: &[u8], len: usize) -> bool;
}

/// [`FrameCheck`] for MSync envelopes.
#[derive(Clone, Copy, Debug, Default)]
pub struct MsyncCheck;

impl FrameCheck for MsyncCheck {
    fn plausible(&self, body: &[u8]) -> bool {
        plausible_envelope(body)
    }
    fn acceptable(&self, body: &[u8]) -> bool {
        // Any well-formed protobuf message: a newer client's unknown envelope fields are shown,
        // not treated as a loss of sync.
        well_formed(body)
    }

    fn plausible_start(&self, head: &[u8], len: usize) -> bool {
        // Walk the fields that are wholly inside `head`: each must be an envelope field with
        // its wire type, and a length-delimited one must fit in the announced body.
        let mut pos = 0usize;
        while pos < head.len() {
            let Some((tag, n)) = varint(head.get(pos..).unwrap_or_default()) else {
                return true; // cut inside the tag: cannot tell yet
            };
            pos += n;
            let wire = tag & 7;
            let ok = match tag >> 3 {
                1 | 4 | 5 | 7 | 8 | 10 | 20 => wire == 0,
                11 => wire == 0 || wire == 2,
                2 | 3 | 6 | 9 | 12 | 13 | 14 => wire == 2,
                _ => false,
            };
            if !ok {
                return false;
            }
            let Some((v, n)) = varint(head.get(pos..).unwrap_or_default()) else {
                return true;
            };
            pos += n;
            if wire == 2 {
                match usize::try_from(v).ok().and_then(|l| pos.checked_add(l)) {
                    Some(end) if end <= len => pos = end,
                    _ => return false,
                }
            }
        }
        true
    }
}

/// Whether `b` is a sequence of well-formed top-level protobuf fields ending exactly at its end.
fn well_formed(b: &[u8]) -> bool {
    let mut pos = 0usize;
    while pos < b.len() {
        let Some((tag, n)) = varint(b.get(pos..).unwrap_or_default()) else { return false };
        pos += n;
        if tag >> 3 == 0 || tag >> 3 > 0x1fff_ffff {
            return false;
        }
        let size = match tag & 7 {
            0 => match varint(b.get(pos..).unwrap_or_default()) {
                Some((_, n)) => n,
                None => return false,
            },
            1 => 8,
            2 => match varint(b.get(pos..).unwrap_or_default()) {
                Some((l, n)) => match usize::try_from(l).ok().and_then(|l| l.checked_add(n)) {
                    Some(s) => s,
                    None => return false,
                },
                None => return false,
            },
            5 => 4,
            _ => return false,
        };
        pos = match pos.checked_add(size) {
            Some(p) if p <= b.len() => p,
            _ => return false,
        };
    }
    !b.is_empty()
}

/// What a splitter reports.
#[derive(Debug, PartialEq, Eq)]
pub enum SplitEvent<'a> {
    /// A complete frame: `offset` is the stream offset of its length prefix, `wire_len` the
    /// bytes it occupies (prefix included), `body` the message bytes.
    Frame { offset: u64, wire_len: u64, body: &'a [u8] },
    /// A length prefix over the cap at `offset`. The splitter resynchronises after it.
    Oversize { offset: u64, len: u64 },
    /// A complete frame the check rejected: shown as undecodable, then the splitter
    /// resynchronises from the byte after its prefix.
    Invalid { offset: u64, wire_len: u64, body: &'a [u8] },
    /// Bytes at `offset` skipped while looking for the next frame.
    Skipped { offset: u64, len: u64 },
}

#[derive(Debug)]
enum State {
    /// Reading a length prefix: `have` bytes of it so far.
    Len { have: usize, bytes: [u8; 4] },
    /// Reading a body of `len` bytes, `buf` holding what arrived in earlier chunks.
    Body { len: usize },
    /// Looking for a frame boundary; `buf` holds unexamined bytes starting at `start`.
    Resync,
}

/// How a run over in-sync data ended.
enum Run {
    /// All consumed; a partial prefix or body may be held.
    Done,
    /// Sync was lost: `buf` holds the bytes to re-examine from `start`, and the data from
    /// index `.0` on follows them.
    LostAt(usize),
}

/// Splits one direction of a stream of 4-byte-length-prefixed frames.
#[derive(Debug)]
pub struct LengthPrefixSplitter {
    state: State,
    max_frame: usize,
    /// Partial body (Body state) or unexamined bytes (Resync state).
    buf: Vec<u8>,
    /// Stream offset of the current frame's prefix (Len/Body), or of `buf[0]` (Resync).
    start: u64,
    /// Stream offset of the next byte the splitter expects.
    next: u64,
    /// Bytes before this offset were already reported inside an invalid frame: a resync that
    /// skips them does not count them again.
    quiet_until: u64,
    /// At the end of the stream: candidates whose body is incomplete are rejected, not waited
    /// for.
    final_pass: bool,
    /// Skipped bytes not yet reported (see [`LengthPrefixSplitter::skipped`]).
    pending_skip: Option<(u64, u64)>,
}

/// While resynchronising, a candidate frame longer than this is not waited for: a false
/// candidate would otherwise hold back every frame behind it until its claimed length arrived.
/// A real frame this long right after a gap is lost; the ones after it are found.
pub const RESYNC_MAX_WAIT: usize = 256 << 10;

/// Capacity of the partial-frame buffer that is kept once its frame is complete.
const KEEP_BUF: usize = 2 << 10;

/// The most reserved for a partial body before its bytes arrive, and the most as a multiple
/// of the bytes already here.
const RESERVE_MAX: usize = 64 << 10;
const RESERVE_AHEAD: usize = 4;

impl LengthPrefixSplitter {
    /// `synced`: whether the stream starts at a frame boundary (a connection seen from its
    /// SYN). `max_frame`: the largest body accepted. `start`: stream offset of the first byte.
    pub fn new(max_frame: usize, synced: bool, start: u64) -> Self {
        LengthPrefixSplitter {
            state: if synced { State::Len { have: 0, bytes: [0; 4] } } else { State::Resync },
            max_frame,
            buf: Vec::new(),
            start,
            next: start,
            quiet_until: start,
            final_pass: false,
            pending_skip: None,
        }
    }

    /// Whether the splitter is looking for a frame boundary.
    pub fn resyncing(&self) -> bool {
        matches!(self.state, State::Resync)
    }

    /// Bytes held waiting for more data.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Stream offset of the next byte expected.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Nothing held or pending: between frames (or resynchronising with nothing to examine),
    /// so [`LengthPrefixSplitter::finish`] would report nothing.
    pub fn at_rest(&self) -> bool {
        self.buf.is_empty()
            && self.pending_skip.is_none()
            && matches!(self.state, State::Len { have: 0, .. } | State::Resync)
    }

    /// Feeds the next in-order bytes of the stream, which start at stream offset `offset`.
    /// Bytes before the splitter's position are ignored; a jump forward is treated as a gap.
    pub fn feed<C: FrameCheck + ?Sized>(
        &mut self,
        offset: u64,
        data: &[u8],
        check: &C,
        emit: &mut dyn FnMut(SplitEvent<'_>),
    ) {
        let mut data = data;
        let mut offset = offset;
        if offset < self.next {
            let skip = usize::try_from(self.next - offset).unwrap_or(usize::MAX).min(data.len());
            data = data.get(skip..).unwrap_or_default();
            offset += skip as u64;
        }
        if data.is_empty() {
            return;
        }
        if offset > self.next {
            self.gap(self.next, offset - self.next, emit);
        }
        self.next = offset + data.len() as u64;
        if !matches!(self.state, State::Resync) {
            match self.run_synced(offset, data, check, emit) {
                Run::Done => return,
                Run::LostAt(i) => self.buf.extend_from_slice(data.get(i..).unwrap_or_default()),
            }
        } else {
            self.buf.extend_from_slice(data);
        }
        self.resync(check, emit);
    }

    /// `len` bytes at `offset` are lost. A frame in progress is abandoned (counted as skipped)
    /// and the splitter resynchronises after the gap.
    pub fn gap(&mut self, offset: u64, len: u64, emit: &mut dyn FnMut(SplitEvent<'_>)) {
        self.abandon(emit);
        self.start = offset.saturating_add(len);
        self.next = self.next.max(self.start);
        self.state = State::Resync;
    }

    /// End of stream: frames still findable in the resynchronisation buffer are emitted (a
    /// candidate waiting for a body that will never come no longer blocks them), then whatever
    /// is left is reported as skipped. A body still waiting for the length its prefix claimed
    /// is searched the same way: a corrupted prefix under the frame cap swallows the frames
    /// after it, which the end of the stream would otherwise leave unread.
    pub fn finish<C: FrameCheck + ?Sized>(
        &mut self,
        check: &C,
        emit: &mut dyn FnMut(SplitEvent<'_>),
    ) {
        if let State::Body { len } = self.state {
            let held = std::mem::take(&mut self.buf);
            // The prefix's first byte is passed over here; the rest is searched.
            self.skipped(self.start, 1, emit);
            self.lose_sync(u32::try_from(len).unwrap_or(u32::MAX), &held);
        }
        if matches!(self.state, State::Resync) && !self.buf.is_empty() {
            self.final_pass = true;
            self.resync(check, emit);
            self.final_pass = false;
        }
        self.abandon(emit);
        self.flush_skip(emit);
        self.start = self.next;
    }

    fn abandon(&mut self, emit: &mut dyn FnMut(SplitEvent<'_>)) {
        let held = match self.state {
            State::Len { have, .. } => have as u64,
            State::Body { .. } => 4 + self.buf.len() as u64,
            State::Resync => self.buf.len() as u64,
        };
        self.skipped(self.start, held, emit);
        self.buf.clear();
        if !matches!(self.state, State::Resync) {
            self.state = State::Len { have: 0, bytes: [0; 4] };
        }
    }

    /// Notes skipped bytes; adjacent runs are reported as one (a resync that waits for data
    /// several times is one skip to the reader).
    fn skipped(&mut self, offset: u64, len: u64, emit: &mut dyn FnMut(SplitEvent<'_>)) {
        let end = offset.saturating_add(len);
        let from = offset.max(self.quiet_until);
        if end <= from {
            return;
        }
        match &mut self.pending_skip {
            Some((o, l)) if *o + *l == from => *l += end - from,
            _ => {
                self.flush_skip(emit);
                self.pending_skip = Some((from, end - from));
            }
        }
    }

    fn flush_skip(&mut self, emit: &mut dyn FnMut(SplitEvent<'_>)) {
        if let Some((offset, len)) = self.pending_skip.take() {
            emit(SplitEvent::Skipped { offset, len });
        }
    }

    /// Runs the in-sync state machine over `data` (at stream offset `base`).
    fn run_synced<C: FrameCheck + ?Sized>(
        &mut self,
        base: u64,
        data: &[u8],
        check: &C,
        emit: &mut dyn FnMut(SplitEvent<'_>),
    ) -> Run {
        let mut pos = 0usize;
        while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
            match self.state {
                State::Len { have, mut bytes } => {
                    let len;
                    let whole = if have == 0 { rest.first_chunk::<4>() } else { None };
                    if let Some(prefix) = whole {
                        // The common case: the prefix, and often the whole body, in this chunk.
                        len = u32::from_be_bytes(*prefix);
                        self.start = base + pos as u64;
                        pos += 4;
                    } else {
                        if have == 0 {
                            self.start = base + pos as u64;
                        }
                        let take = (4 - have).min(rest.len());
                        // have < 4 in this state and take <= 4 - have, rest.len().
                        if let (Some(dst), Some(src)) =
                            (bytes.get_mut(have..have + take), rest.get(..take))
                        {
                            dst.copy_from_slice(src);
                        }
                        pos += take;
                        if have + take < 4 {
                            self.state = State::Len { have: have + take, bytes };
                            continue;
                        }
                        len = u32::from_be_bytes(bytes);
                        self.state = State::Len { have: 0, bytes: [0; 4] };
                    }
                    let len_us = len as usize;
                    if len_us > self.max_frame {
                        self.flush_skip(emit);
                        emit(SplitEvent::Oversize { offset: self.start, len: u64::from(len) });
                        // The prefix itself may be garbage: look again from its second byte.
                        self.lose_sync(len, &[]);
                        return Run::LostAt(pos);
                    }
                    let avail = data.get(pos..).unwrap_or_default();
                    if let Some(body) = avail.get(..len_us) {
                        pos += len_us;
                        if !self.complete(body, check, emit) {
                            self.lose_sync(len, body);
                            return Run::LostAt(pos);
                        }
                    } else {
                        self.state = State::Body { len: len_us };
                        self.buf.clear();
                        // Room for the whole body up front, not a chain of doublings as its
                        // segments arrive. The length is the sender's claim: thousands of
                        // connections each sending a prefix and a byte must not each get the
                        // claimed size, so the room is also bounded by what did arrive.
                        let room = len_us.min(avail.len().saturating_mul(RESERVE_AHEAD));
                        self.buf.reserve(room.min(RESERVE_MAX));
                        self.buf.extend_from_slice(avail);
                        pos = data.len();
                    }
                }
                State::Body { len } => {
                    let take = len.saturating_sub(self.buf.len()).min(rest.len());
                    self.buf.extend_from_slice(rest.get(..take).unwrap_or_default());
                    pos += take;
                    if self.buf.len() >= len {
                        let body = std::mem::take(&mut self.buf);
                        self.state = State::Len { have: 0, bytes: [0; 4] };
                        let ok = self.complete(&body, check, emit);
                        self.buf = body;
                        if !ok {
                            let held = std::mem::take(&mut self.buf);
                            self.lose_sync(len as u32, &held);
                            return Run::LostAt(pos);
                        }
                        // A capture holds thousands of connections, each with a message in
                        // flight now and then: a big one's buffer is not kept for the next.
                        if self.buf.capacity() > KEEP_BUF {
                            self.buf = Vec::new();
                        } else {
                            self.buf.clear();
                        }
                    }
                }
                State::Resync => return Run::LostAt(pos),
            }
        }
        Run::Done
    }

    /// A whole body of the frame at `self.start` is here. Returns false when the check rejects
    /// it (reported as invalid).
    fn complete<C: FrameCheck + ?Sized>(
        &mut self,
        body: &[u8],
        check: &C,
        emit: &mut dyn FnMut(SplitEvent<'_>),
    ) -> bool {
        let wire_len = 4 + body.len() as u64;
        self.flush_skip(emit);
        if check.acceptable(body) {
            emit(SplitEvent::Frame { offset: self.start, wire_len, body });
            self.start += wire_len;
            true
        } else {
            emit(SplitEvent::Invalid { offset: self.start, wire_len, body });
            self.quiet_until = self.start + wire_len;
            false
        }
    }

    /// Sync is lost at the frame starting at `self.start` whose prefix announced `len`: the
    /// search for the next boundary starts at the prefix's second byte, with the prefix's last
    /// three bytes and `held` (body bytes already consumed) as the first bytes to examine.
    fn lose_sync(&mut self, len: u32, held: &[u8]) {
        self.state = State::Resync;
        self.start += 1;
        self.buf.clear();
        self.buf.extend_from_slice(&len.to_be_bytes()[1..]);
        self.buf.extend_from_slice(held);
    }

    /// Looks for frame boundaries in `buf` (which starts at `self.start`), emitting what it
    /// skips and the frames it finds, until the buffer is used up or needs more data. Each
    /// round moves past at least one byte, so this ends.
    fn resync<C: FrameCheck + ?Sized>(&mut self, check: &C, emit: &mut dyn FnMut(SplitEvent<'_>)) {
        loop {
            let mut buf = std::mem::take(&mut self.buf);
            let (at, found) = self.find_boundary(&buf, check);
            self.skipped(self.start, at as u64, emit);
            if !found {
                buf.drain(..at);
                self.start += at as u64;
                self.buf = buf;
                return;
            }
            self.start += at as u64;
            self.state = State::Len { have: 0, bytes: [0; 4] };
            let base = self.start;
            match self.run_synced(base, buf.get(at..).unwrap_or_default(), check, emit) {
                Run::Done => return,
                Run::LostAt(i) => {
                    let rest = buf.get(at + i..).unwrap_or_default();
                    self.buf.extend_from_slice(rest);
                }
            }
        }
    }

    /// The first offset in `buf` where a frame plausibly starts (`true`), or the first offset
    /// that might still start one once more data arrives (`false`; `buf.len()` if none).
    fn find_boundary<C: FrameCheck + ?Sized>(&self, buf: &[u8], check: &C) -> (usize, bool) {
        let mut i = 0usize;
        while let Some(prefix) = buf.get(i..).and_then(<[u8]>::first_chunk::<4>) {
            let len = u32::from_be_bytes(*prefix) as usize;
            if len > 0 && len <= self.max_frame {
                let after = buf.get(i + 4..).unwrap_or_default();
                // Only the first bytes are examined before the body is complete: a candidate
                // waiting for a long body must not be re-walked in full at every chunk.
                let head = after.get(..len.min(after.len()).min(256)).unwrap_or_default();
                if check.plausible_start(head, len) {
                    match after.get(..len) {
                        Some(body) if check.plausible(body) => return (i, true),
                        Some(_) => {}
                        // The body is not all here: wait for more data from this candidate.
                        None if !self.final_pass && len <= RESYNC_MAX_WAIT => return (i, false),
                        None => {}
                    }
                }
            }
            i += 1;
        }
        // Fewer than four bytes left: they may begin a prefix (unless nothing more will come).
        if self.final_pass {
            (buf.len(), false)
        } else {
            (i, false)
        }
    }
}

/// A stand-in protocol for the framing tests.
#[cfg(test)]
pub(crate) mod testutil {
    use super::FrameCheck;

    /// A body is plausible iff it is 0x08, bytes in 0x10..0x70, then 0x7f: a zero byte never
    /// occurs inside one, so a length prefix (which has zeros) can only match at a real frame.
    pub(crate) struct TestCheck;
    impl FrameCheck for TestCheck {
        fn plausible(&self, b: &[u8]) -> bool {
            b.len() >= 2
                && b.first() == Some(&0x08)
                && b.last() == Some(&0x7f)
                && b.get(1..b.len() - 1)
                    .is_some_and(|m| m.iter().all(|&x| (0x10..0x70).contains(&x)))
        }
        fn plausible_start(&self, head: &[u8], _len: usize) -> bool {
            head.first().is_none_or(|&b| b == 0x08)
        }
    }

    /// A plausible body of `n + 2` bytes.
    pub(crate) fn body(n: usize, seed: u8) -> Vec<u8> {
        let mut b = vec![0x08];
        b.extend((0..n).map(|i| 0x10 + ((i as u8).wrapping_mul(7).wrapping_add(seed)) % 0x60));
        b.push(0x7f);
        b
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) use super::testutil::{body, TestCheck};

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Frame(u64, u64, Vec<u8>),
        Oversize(u64, u64),
        Invalid(u64, u64),
        Skipped(u64, u64),
    }

    fn run(sp: &mut LengthPrefixSplitter, chunks: &[(u64, &[u8])]) -> Vec<Ev> {
        let mut out = Vec::new();
        for &(off, data) in chunks {
            sp.feed(off, data, &TestCheck, &mut |e| out.push(to_ev(e)));
        }
        sp.finish(&TestCheck, &mut |e| out.push(to_ev(e)));
        out
    }

    fn to_ev(e: SplitEvent<'_>) -> Ev {
        match e {
            SplitEvent::Frame { offset, wire_len, body } => {
                Ev::Frame(offset, wire_len, body.to_vec())
            }
            SplitEvent::Oversize { offset, len } => Ev::Oversize(offset, len),
            SplitEvent::Invalid { offset, wire_len, .. } => Ev::Invalid(offset, wire_len),
            SplitEvent::Skipped { offset, len } => Ev::Skipped(offset, len),
        }
    }

    fn framed(bodies: &[Vec<u8>]) -> Vec<u8> {
        let mut s = Vec::new();
        for b in bodies {
            s.extend_from_slice(&(b.len() as u32).to_be_bytes());
            s.extend_from_slice(b);
        }
        s
    }

    fn frames_of(bodies: &[Vec<u8>]) -> Vec<Ev> {
        let mut off = 0;
        bodies
            .iter()
            .map(|b| {
                let e = Ev::Frame(off, 4 + b.len() as u64, b.clone());
                off += 4 + b.len() as u64;
                e
            })
            .collect()
    }

    #[test]
    fn many_frames_in_one_chunk_and_one_frame_over_many() {
        let bodies = vec![body(3, 1), body(0, 2), body(40, 3)];
        let s = framed(&bodies);
        let mut sp = LengthPrefixSplitter::new(1000, true, 0);
        assert_eq!(run(&mut sp, &[(0, &s)]), frames_of(&bodies));
        let chunks: Vec<(u64, &[u8])> =
            s.iter().enumerate().map(|(i, b)| (i as u64, std::slice::from_ref(b))).collect();
        let mut sp = LengthPrefixSplitter::new(1000, true, 0);
        assert_eq!(run(&mut sp, &chunks), frames_of(&bodies));
    }

    #[test]
    fn a_partial_body_gets_room_by_what_arrived_not_by_its_claim() {
        // A claim of 1 MiB with one byte of it here: no more than a few bytes are reserved.
        let mut sp = LengthPrefixSplitter::new(16 << 20, true, 0);
        let mut s = (1u32 << 20).to_be_bytes().to_vec();
        s.push(0x08);
        sp.feed(0, &s, &TestCheck, &mut |_| {});
        assert_eq!(sp.buffered(), 1);
        assert!(sp.buf.capacity() <= 64, "capacity {}", sp.buf.capacity());
        // A body split in two: room for all of it once half is here, so it is not regrown.
        let b = body(598, 5);
        let framed = framed(std::slice::from_ref(&b));
        let (first, second) = framed.split_at(304);
        let mut sp = LengthPrefixSplitter::new(1000, true, 0);
        sp.feed(0, first, &TestCheck, &mut |_| {});
        assert!(sp.buf.capacity() >= b.len(), "capacity {}", sp.buf.capacity());
        let mut out = Vec::new();
        sp.feed(304, second, &TestCheck, &mut |e| out.push(to_ev(e)));
        assert_eq!(out, frames_of(&[b]));
    }

    #[test]
    fn oversize_is_reported_and_followed_by_resync() {
        let bodies = vec![body(5, 1), body(6, 2)];
        let mut s = vec![0xff, 0xff, 0xff, 0xff, 0x41, 0x42];
        let good = framed(&bodies);
        s.extend_from_slice(&good);
        let mut sp = LengthPrefixSplitter::new(1000, true, 0);
        let out = run(&mut sp, &[(0, &s)]);
        let mut want = vec![Ev::Oversize(0, 0xffff_ffff), Ev::Skipped(1, 5)];
        want.extend(frames_of(&bodies).into_iter().map(|e| match e {
            Ev::Frame(o, l, b) => Ev::Frame(o + 6, l, b),
            e => e,
        }));
        assert_eq!(out, want);
    }

    #[test]
    fn invalid_frame_then_resync_without_double_counting() {
        let bodies = vec![body(5, 1)];
        // A frame whose body fails the check, then a good one.
        let mut s = vec![0, 0, 0, 3, 0x41, 0x42, 0x43];
        s.extend_from_slice(&framed(&bodies));
        let mut sp = LengthPrefixSplitter::new(1000, true, 0);
        let out = run(&mut sp, &[(0, &s)]);
        assert_eq!(out, vec![Ev::Invalid(0, 7), Ev::Frame(7, 11, bodies[0].clone())]);
    }

    #[test]
    fn midstream_start_skips_to_first_boundary() {
        let bodies = vec![body(5, 1), body(9, 2), body(2, 3)];
        let s = framed(&bodies);
        // Start 3 bytes into the first frame's body.
        let cut = 7;
        let mut sp = LengthPrefixSplitter::new(1000, false, cut as u64);
        let out = run(&mut sp, &[(cut as u64, &s[cut..])]);
        let mut want = vec![Ev::Skipped(7, 4)];
        want.extend(frames_of(&bodies).into_iter().skip(1));
        assert_eq!(out, want);
    }

    #[test]
    fn gap_abandons_partial_frame() {
        let bodies = vec![body(5, 1), body(9, 2), body(2, 3)];
        let s = framed(&bodies);
        let f0 = 4 + bodies[0].len();
        // Lose 3 bytes in the middle of frame 1.
        let (a, b) = (f0 + 6, f0 + 9);
        let mut sp = LengthPrefixSplitter::new(1000, true, 0);
        let out = run(&mut sp, &[(0, &s[..a]), (b as u64, &s[b..])]);
        let all = frames_of(&bodies);
        let f2 = f0 + 4 + bodies[1].len();
        let want = vec![
            all[0].clone(),
            Ev::Skipped(f0 as u64, (a - f0) as u64),
            Ev::Skipped(b as u64, (f2 - b) as u64),
            all[2].clone(),
        ];
        assert_eq!(out, want);
    }

    #[test]
    fn finish_reports_partial_data() {
        let s = framed(&[body(10, 1)]);
        let mut sp = LengthPrefixSplitter::new(1000, true, 0);
        assert_eq!(run(&mut sp, &[(0, &s[..9])]), vec![Ev::Skipped(0, 9)]);
        let mut sp = LengthPrefixSplitter::new(1000, true, 0);
        assert_eq!(run(&mut sp, &[(0, &s[..2])]), vec![Ev::Skipped(0, 2)]);
    }

    #[test]
    fn a_claim_that_never_completes_does_not_swallow_the_frames_after_it() {
        let bodies = vec![body(5, 1), body(9, 2), body(2, 3)];
        // A corrupted prefix claiming 900 bytes, under the cap, then whole frames: the stream
        // ends before the claim is met.
        let mut s = vec![0, 0, 3, 0x84, 0x41, 0x42];
        s.extend_from_slice(&framed(&bodies));
        let mut sp = LengthPrefixSplitter::new(1000, true, 0);
        let out = run(&mut sp, &[(0, &s)]);
        let mut want = vec![Ev::Skipped(0, 6)];
        want.extend(frames_of(&bodies).into_iter().map(|e| match e {
            Ev::Frame(o, l, b) => Ev::Frame(o + 6, l, b),
            e => e,
        }));
        assert_eq!(out, want);
    }

    #[test]
    fn repeated_and_overlapping_chunks_are_ignored() {
        let bodies = vec![body(5, 1), body(9, 2)];
        let s = framed(&bodies);
        let mut sp = LengthPrefixSplitter::new(1000, true, 0);
        let out = run(&mut sp, &[(0, &s[..8]), (0, &s[..8]), (4, &s[4..])]);
        assert_eq!(out, frames_of(&bodies));
    }

    #[test]
    fn garbage_never_panics_and_is_all_accounted() {
        let garbage: Vec<u8> =
            (0..5000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let mut sp = LengthPrefixSplitter::new(1000, true, 0);
        let out = run(&mut sp, &[(0, &garbage)]);
        let accounted: u64 = out
            .iter()
            .map(|e| match e {
                Ev::Frame(_, l, _) | Ev::Invalid(_, l) => *l,
                Ev::Skipped(_, l) => *l,
                Ev::Oversize(..) => 0,
            })
            .sum();
        assert!(accounted <= garbage.len() as u64);
        assert!(sp.buffered() == 0);
    }

    fn bodies_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec((0usize..300, any::<u8>()).prop_map(|(n, s)| body(n, s)), 1..30)
    }

    proptest! {
        #[test]
        fn any_segmentation_gives_the_same_frames(bodies in bodies_strategy(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40)) {
            let s = framed(&bodies);
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(s.len() + 1)).collect();
            points.push(0);
            points.push(s.len());
            points.sort_unstable();
            points.dedup();
            let chunks: Vec<(u64, &[u8])> = points.windows(2).map(|w| (w[0] as u64, &s[w[0]..w[1]])).collect();
            let mut sp = LengthPrefixSplitter::new(1000, true, 0);
            prop_assert_eq!(run(&mut sp, &chunks), frames_of(&bodies));
        }

        #[test]
        fn a_gap_loses_exactly_the_frames_it_touches(bodies in bodies_strategy(), a in any::<prop::sample::Index>(), len in 1usize..200, cut in any::<prop::sample::Index>()) {
            let s = framed(&bodies);
            let ga = a.index(s.len());
            let gb = (ga + len).min(s.len());
            let mut chunks: Vec<(u64, &[u8])> = Vec::new();
            let c = cut.index(ga + 1);
            chunks.push((0, &s[..c]));
            chunks.push((c as u64, &s[c..ga]));
            chunks.push((gb as u64, &s[gb..]));
            let mut sp = LengthPrefixSplitter::new(1000, true, 0);
            let out = run(&mut sp, &chunks);
            let got: Vec<Ev> = out.iter().filter(|e| matches!(e, Ev::Frame(..))).cloned().collect();
            let want: Vec<Ev> = frames_of(&bodies).into_iter().filter(|e| match e {
                Ev::Frame(o, l, _) => *o + *l <= ga as u64 || *o >= gb as u64,
                _ => false,
            }).collect();
            prop_assert_eq!(got, want);
            prop_assert!(!out.iter().any(|e| matches!(e, Ev::Invalid(..) | Ev::Oversize(..))));
            // Every byte outside the gap is either in a frame or skipped, exactly once.
            let covered: u64 = out.iter().map(|e| match e { Ev::Frame(_, l, _) | Ev::Skipped(_, l) => *l, _ => 0 }).sum();
            prop_assert_eq!(covered, (s.len() - (gb - ga)) as u64);
        }

        #[test]
        fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..3000), synced in any::<bool>(), split in any::<prop::sample::Index>()) {
            let k = split.index(data.len() + 1);
            let mut sp = LengthPrefixSplitter::new(500, synced, 0);
            let _ = run(&mut sp, &[(0, &data[..k]), (k as u64, &data[k..])]);
        }
    }
}
