//! LZ4 protocol compression: the streaming envelope negotiated in PROVISION
//! (`protocol_compress_type = [COMPRESS_LZ4]`, `protocol_compress_direction`).
//!
//! Once the server's PROVISION answer accepts LZ4, every later message of the enabled
//! direction(s) is `varint(original length) ‖ CRC-32 (IEEE) of the original, big-endian ‖ one
//! raw LZ4 block` whose dictionary is the previous 64 KiB of original bytes of the same
//! direction on the same connection. [`Lz4Stream`] undoes one direction, [`Lz4Encoder`] makes
//! the envelope (tests, synthesizer), [`CompressionTracker`] follows the negotiation of one
//! connection.
//!
//! Invariants:
//! - The declared original length is checked against the caller's cap before any allocation;
//!   the decoder writes into a buffer of exactly that length, so a block cannot produce more.
//! - A block's match offsets are resolved only inside the dictionary handed to the decoder:
//!   one reaching before it is an error, never a read outside memory.
//! - The history keeps the last 64 KiB of original bytes and knows how many of its trailing
//!   bytes are genuine. After a loss (capture picked up after login, a gap, an undecodable
//!   message) the unknown part is zero-filled so that later offsets stay aligned; a message
//!   that only references genuine bytes still decodes and its CRC proves it. Failures while
//!   the history is incomplete are [`Lz4Error::HistoryLost`], flagged for reporting once per
//!   connection by the tracker. After 64 KiB of genuine output the history is whole again.

use crate::msync::pb::Provision;
use crate::msync::schema::varint;
use crate::net::Dir;

/// Bytes of history a block may reference.
pub const HISTORY: usize = 64 << 10;

/// `Provision.CompressType.COMPRESS_LZ4`.
const COMPRESS_LZ4: i32 = 2;

/// Why an envelope could not be unwrapped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Lz4Error {
    #[error("LZ4 envelope truncated before its block")]
    Truncated,
    #[error("LZ4 envelope declares {len} original bytes, over the cap of {cap}")]
    TooLarge { len: u64, cap: usize },
    #[error("corrupt LZ4 block: {0}")]
    Corrupt(String),
    #[error("LZ4 block decodes to {got} bytes, the envelope declares {want}")]
    LengthMismatch { want: usize, got: usize },
    /// The history this message needs is missing. `report` is true the first time on a
    /// connection (when the error comes through [`CompressionTracker`]).
    #[error("LZ4 history lost (capture started after login, or a gap): message not decodable")]
    HistoryLost { report: bool },
}

/// One unwrapped message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unwrapped<'a> {
    /// The original message bytes.
    pub data: &'a [u8],
    /// Bytes of the envelope (varint, CRC, block).
    pub wire_len: usize,
    /// The CRC carried by the envelope.
    pub crc_expected: u32,
    /// The CRC of `data`. A mismatch with a whole history is a finding: `data` is shown but
    /// may be wrong.
    pub crc_actual: u32,
}

impl Unwrapped<'_> {
    pub fn crc_ok(&self) -> bool {
        self.crc_expected == self.crc_actual
    }
}

/// CRC-32 (IEEE 802.3, as zlib and the envelope use it).
pub fn crc32(data: &[u8]) -> u32 {
    // zlib-rs (0.6) takes inputs under 64 bytes through a word-wise routine that copies a
    // 1 KiB table row for every input byte: tens of times slower than a byte table, and most
    // MSync messages are that short. Longer ones take its carry-less multiply path.
    if data.len() < 64 {
        !data.iter().fold(!0u32, |c, &b| {
            CRC_TABLE.get(usize::from(c as u8 ^ b)).copied().unwrap_or(0) ^ (c >> 8)
        })
    } else {
        zlib_rs::crc32::crc32(0, data)
    }
}

/// The byte-at-a-time table of the reflected polynomial 0xEDB88320.
// Built at compile time, where an index out of range fails the build.
#[allow(clippy::indexing_slicing)]
static CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The parts of an envelope: declared length, CRC, block.
fn split(wire: &[u8]) -> Result<(u64, u32, &[u8]), Lz4Error> {
    let (len, n) = varint(wire).ok_or(Lz4Error::Truncated)?;
    let crc: [u8; 4] =
        wire.get(n..n + 4).and_then(|c| c.try_into().ok()).ok_or(Lz4Error::Truncated)?;
    let crc = u32::from_be_bytes(crc);
    let block = wire.get(n + 4..).unwrap_or_default();
    if block.is_empty() {
        return Err(Lz4Error::Truncated);
    }
    Ok((len, crc, block))
}

/// Whether `wire` could be an LZ4 envelope of at most `cap` original bytes: a cheap test for
/// connections picked up after login, where the negotiation was not seen.
pub fn plausible_envelope(wire: &[u8], cap: usize) -> bool {
    let Ok((len, _, block)) = split(wire) else { return false };
    let Ok(len) = usize::try_from(len) else { return false };
    // LZ4's worst case expansion bounds the block; a block cannot produce more than 255 bytes
    // per input byte (plus the literals), which bounds it from below.
    len <= cap && block.len() <= len + len / 255 + 16 && len <= block.len().saturating_mul(255)
}

/// Whether an envelope of `wire_len` bytes starting with `head` (its first bytes, possibly all)
/// could be plausible: lets a resynchronising parser drop a candidate before waiting for the
/// whole of a long one.
pub fn plausible_envelope_start(head: &[u8], wire_len: usize, cap: usize) -> bool {
    let Some((len, n)) = varint(head) else {
        // Cut inside the varint (or ten bytes without an end, which `varint` rejects too).
        return head.len() < 10;
    };
    let Ok(len) = usize::try_from(len) else { return false };
    let Some(block) = wire_len.checked_sub(n + 4).filter(|&b| b > 0) else { return false };
    len <= cap && block <= len + len / 255 + 16 && len <= block.saturating_mul(255)
}

/// Bytes a history holds beyond [`HISTORY`] before its oldest are let go: trimming moves 64 KiB
/// once per this many bytes of new output, and thousands of connections each hold this much
/// more than the window.
const SLACK: usize = 32 << 10;

/// The last [`HISTORY`] original bytes of one direction.
#[derive(Clone, Debug)]
struct History {
    /// The window, and up to [`SLACK`] older bytes (plus, while one is unwrapped, room for the
    /// message, which is decoded in place after the window it refers to).
    buf: Vec<u8>,
    /// Trailing bytes of `buf` that are genuine (the rest is zero fill after a loss).
    valid: usize,
    /// `buf` is the window of zeros a loss leaves and nothing since: losing it again changes
    /// nothing (a run of losses costs one fill, not 64 KiB each).
    blank: bool,
}

impl History {
    fn whole() -> Self {
        History { buf: Vec::new(), valid: 0, blank: false }
    }

    fn lost() -> Self {
        let mut h = History::whole();
        h.lose();
        h
    }

    fn dict(&self) -> &[u8] {
        self.buf.get(self.buf.len().saturating_sub(HISTORY)..).unwrap_or_default()
    }

    /// Every byte a block could reference is genuine.
    fn complete(&self) -> bool {
        self.valid >= self.dict().len()
    }

    /// Makes room for `n` more bytes: the oldest beyond the window are let go when the buffer
    /// would pass the window and its slack, and the capacity doubles only up to the window and
    /// its slack (a plain doubling would hold up to twice the window per direction).
    fn room_for(&mut self, n: usize) {
        if self.buf.len() + n > HISTORY + SLACK {
            let cut = self.buf.len().saturating_sub(HISTORY);
            self.buf.drain(..cut);
            self.valid = self.valid.min(self.buf.len());
        }
        let want = self.buf.len() + n;
        if want > self.buf.capacity() {
            let grown = want.max(self.buf.capacity().saturating_mul(2).min(HISTORY + SLACK));
            self.buf.reserve_exact(grown - self.buf.len());
        }
    }

    /// After an outsized message, the buffer goes back to the usual size.
    fn settle(&mut self) {
        if self.buf.capacity() > 2 * (HISTORY + SLACK) {
            let cut = self.buf.len().saturating_sub(HISTORY);
            self.buf.drain(..cut);
            self.valid = self.valid.min(self.buf.len());
            self.buf.shrink_to(HISTORY + SLACK);
        }
    }

    fn push(&mut self, data: &[u8], genuine: bool) {
        self.blank = false;
        let data = data.get(data.len().saturating_sub(HISTORY)..).unwrap_or_default();
        self.room_for(data.len());
        self.buf.extend_from_slice(data);
        self.valid = if genuine { self.valid + data.len() } else { 0 };
    }

    /// `n` original bytes are missing: zero fill keeps later offsets aligned.
    fn skip(&mut self, n: usize) {
        self.blank = false;
        let n = n.min(HISTORY);
        self.room_for(n);
        self.buf.resize(self.buf.len() + n, 0);
        self.valid = 0;
    }

    /// Nothing is known of the recent bytes, not even how many there were. The buffer is
    /// reused: a lossy connection loses its history at every gap.
    fn lose(&mut self) {
        if self.blank {
            return;
        }
        self.buf.clear();
        self.room_for(HISTORY);
        self.buf.resize(HISTORY, 0);
        self.valid = 0;
        self.blank = true;
    }
}

/// Unwraps one direction's LZ4 envelopes.
#[derive(Clone, Debug)]
pub struct Lz4Stream {
    hist: History,
}

impl Lz4Stream {
    /// A direction whose first wrapped message is seen (the stream starts with an empty
    /// dictionary).
    pub fn new() -> Self {
        Lz4Stream { hist: History::whole() }
    }

    /// A direction whose earlier messages were not seen.
    pub fn new_lost() -> Self {
        Lz4Stream { hist: History::lost() }
    }

    /// Whether the history is whole (every byte a block could reference is known).
    pub fn history_complete(&self) -> bool {
        self.hist.complete()
    }

    /// Original bytes of this direction were lost in a gap.
    pub fn lose_history(&mut self) {
        self.hist.lose();
    }

    /// Unwraps the next envelope of this direction. The output is at most `cap` bytes. It is
    /// decoded into the history buffer itself, right after the window it refers to: no copy
    /// from an output buffer into the history.
    pub fn unwrap(&mut self, wire: &[u8], cap: usize) -> Result<Unwrapped<'_>, Lz4Error> {
        let (len, crc_expected, block) = split(wire)?;
        let complete = self.hist.complete();
        let len = match usize::try_from(len) {
            Ok(l) if l <= cap => l,
            _ => {
                self.hist.lose();
                return Err(Lz4Error::TooLarge { len, cap });
            }
        };
        // A block cannot give more than 255 bytes per byte of its own: a declared length past
        // that is not believed, and nothing is allocated for it (thousands of tiny envelopes
        // each declaring the cap would otherwise each cost a buffer of the cap, zeroed).
        if len > block.len().saturating_mul(255).saturating_add(16) {
            // How much the sender's history moved is not known either.
            self.hist.lose();
            let e = Lz4Error::Corrupt(format!(
                "declares {len} original bytes, more than a block of {} bytes can give",
                block.len()
            ));
            return Err(if complete { e } else { Lz4Error::HistoryLost { report: false } });
        }
        self.hist.settle();
        self.hist.room_for(len);
        self.hist.blank = false;
        let at = self.hist.buf.len();
        self.hist.buf.resize(at + len, 0);
        let (before, out) = self.hist.buf.split_at_mut(at);
        let dict = before.get(at.saturating_sub(HISTORY)..).unwrap_or_default();
        let res = lz4_flex::block::decompress_into_with_dict(block, out, dict);
        let err = match res {
            Ok(n) if n == len => None,
            Ok(n) => Some(Lz4Error::LengthMismatch { want: len, got: n }),
            Err(e) => Some(Lz4Error::Corrupt(e.to_string())),
        };
        if let Some(e) = err {
            self.hist.buf.truncate(at);
            self.hist.skip(len);
            return Err(if complete { e } else { Lz4Error::HistoryLost { report: false } });
        }
        let crc_actual = crc32(out);
        if crc_actual != crc_expected && !complete {
            self.hist.buf.truncate(at);
            self.hist.skip(len);
            return Err(Lz4Error::HistoryLost { report: false });
        }
        let h = &mut self.hist;
        h.valid = if crc_actual == crc_expected { h.valid + len } else { 0 };
        let data = h.buf.get(at..).unwrap_or_default();
        Ok(Unwrapped { data, wire_len: wire.len(), crc_expected, crc_actual })
    }
}

impl Default for Lz4Stream {
    fn default() -> Self {
        Lz4Stream::new()
    }
}

/// Makes envelopes the way the SDKs' streaming encoder does.
#[derive(Clone, Debug, Default)]
pub struct Lz4Encoder {
    hist: History,
}

impl Default for History {
    fn default() -> Self {
        History::whole()
    }
}

impl Lz4Encoder {
    pub fn new() -> Self {
        Lz4Encoder::default()
    }

    /// The envelope of the next message of this direction.
    pub fn wrap(&mut self, msg: &[u8]) -> Vec<u8> {
        let block = lz4_flex::block::compress_with_dict(msg, self.hist.dict());
        let mut out = Vec::with_capacity(block.len() + 14);
        put_varint(&mut out, msg.len() as u64);
        out.extend_from_slice(&crc32(msg).to_be_bytes());
        out.extend_from_slice(&block);
        self.hist.push(msg, true);
        out
    }
}

/// Follows one connection's protocol-compression negotiation and unwraps its messages.
#[derive(Clone, Debug)]
pub struct CompressionTracker {
    /// Whether the client's PROVISION offered LZ4; `None` until one is seen.
    offer: Option<bool>,
    /// Per direction (`Dir::index`): later messages are wrapped.
    enabled: [bool; 2],
    streams: [Lz4Stream; 2],
    lost_reported: bool,
    cap: usize,
}

impl CompressionTracker {
    /// `cap`: largest original message.
    pub fn new(cap: usize) -> Self {
        CompressionTracker {
            offer: None,
            enabled: [false; 2],
            streams: [Lz4Stream::new(), Lz4Stream::new()],
            lost_reported: false,
            cap,
        }
    }

    /// Whether the client offered LZ4 in its PROVISION.
    pub fn offered(&self) -> bool {
        self.offer == Some(true)
    }

    /// A decoded PROVISION of `dir`. The client's is the offer; the server's answer enables
    /// LZ4 for the directions it names (an absent direction means uplink only) for every
    /// later message, or disables it when it does not list LZ4. A client whose login did not
    /// offer LZ4 cannot wrap its own messages, whatever the server selects (SDKs before LZ4
    /// support keep sending plain ones); a server that selects it anyway may still wrap its
    /// own.
    pub fn on_provision(&mut self, dir: Dir, p: &Provision) {
        let lz4 = p.protocol_compress_type.contains(&COMPRESS_LZ4);
        match dir {
            Dir::C2S => self.offer = Some(lz4),
            Dir::S2C => {
                let (up, down) = match p.protocol_compress_direction.unwrap_or(0) {
                    0 => (true, false),
                    1 => (false, true),
                    // BI, and values newer than the schema: unwrapping is tried, and its CRC
                    // tells whether that was right.
                    _ => (true, true),
                };
                let client_can = self.offer != Some(false);
                self.enabled = [lz4 && up && client_can, lz4 && down];
                self.streams = [Lz4Stream::new(), Lz4Stream::new()];
            }
        }
    }

    /// Treats `dir` as wrapped although the negotiation was not seen (a connection picked up
    /// after login whose messages look like envelopes): its history is unknown.
    pub fn assume_wrapped(&mut self, dir: Dir) {
        if let (Some(e), Some(s)) =
            (self.enabled.get_mut(dir.index()), self.streams.get_mut(dir.index()))
        {
            if !*e {
                *e = true;
                *s = Lz4Stream::new_lost();
            }
        }
    }

    /// Whether later messages of `dir` are LZ4-wrapped.
    pub fn wrapped(&self, dir: Dir) -> bool {
        self.enabled.get(dir.index()).copied().unwrap_or(false)
    }

    /// Bytes of `dir` were lost: its history is gone. A direction that is not wrapped has no
    /// history to lose (it starts a fresh or a lost one when it becomes wrapped), and holds no
    /// 64 KiB of zero fill for it: a lossy capture of thousands of plain connections did.
    pub fn gap(&mut self, dir: Dir) {
        if !self.wrapped(dir) {
            return;
        }
        if let Some(s) = self.streams.get_mut(dir.index()) {
            s.lose_history();
        }
    }

    /// Lets go of what an outsized message of `dir` grew its buffer to, once the message was
    /// used: a connection that goes quiet after one must not hold it.
    pub fn settle(&mut self, dir: Dir) {
        if let Some(s) = self.streams.get_mut(dir.index()) {
            s.hist.settle();
        }
    }

    /// Unwraps a message of a wrapped direction. [`Lz4Error::HistoryLost`] carries
    /// `report: true` only the first time on this connection.
    pub fn unwrap(&mut self, dir: Dir, wire: &[u8]) -> Result<Unwrapped<'_>, Lz4Error> {
        let cap = self.cap;
        let first = !self.lost_reported;
        let Some(s) = self.streams.get_mut(dir.index()) else {
            return Err(Lz4Error::Truncated);
        };
        match s.unwrap(wire, cap) {
            Err(Lz4Error::HistoryLost { .. }) => {
                self.lost_reported = true;
                Err(Lz4Error::HistoryLost { report: first })
            }
            r => r,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn envelope_start_agrees_with_the_whole() {
        let mut enc = Lz4Encoder::new();
        let msg: Vec<u8> = (0..3000u32).map(|i| (i % 7) as u8).collect();
        let w = enc.wrap(&msg);
        for cut in 0..w.len() {
            assert!(plausible_envelope_start(&w[..cut], w.len(), 1 << 20), "cut {cut}");
        }
        assert!(plausible_envelope(&w, 1 << 20));
        // A frame far longer than the declared original cannot be its envelope.
        assert!(!plausible_envelope_start(&w[..8], 1 << 20, 1 << 20));
        assert!(!plausible_envelope_start(&w[..8], w.len(), 100));
        assert!(!plausible_envelope_start(&[0x80; 10], 100, 1 << 20));
    }

    /// Unwraps with a new stream (no history).
    fn fresh(w: &[u8], cap: usize) -> Result<Vec<u8>, Lz4Error> {
        Lz4Stream::new().unwrap(w, cap).map(|u| u.data.to_vec())
    }

    /// Messages of 1-6 KiB that repeat pieces of earlier ones, 200 KiB in all (the window
    /// slides several times).
    fn messages() -> Vec<Vec<u8>> {
        let mut seed = 0x1234_5678u32;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let mut all: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        while all.len() < 200 << 10 {
            let n = 1024 + (rnd() as usize % 5000);
            let mut m = Vec::with_capacity(n);
            while m.len() < n {
                if all.len() > 100 && rnd() % 3 != 0 {
                    // A piece of an earlier message, within the last 60 KiB.
                    let back = 1 + rnd() as usize % all.len().min(60 << 10);
                    let start = all.len() - back;
                    let take = (8 + rnd() as usize % 200).min(back);
                    m.extend_from_slice(&all[start..start + take]);
                } else {
                    m.push(rnd() as u8);
                }
            }
            m.truncate(n);
            all.extend_from_slice(&m);
            out.push(m);
        }
        out
    }

    #[test]
    fn round_trip_through_the_streaming_dictionary() {
        let msgs = messages();
        let mut enc = Lz4Encoder::new();
        let mut dec = Lz4Stream::new();
        let (mut raw, mut wire) = (0usize, 0usize);
        for m in &msgs {
            let w = enc.wrap(m);
            raw += m.len();
            wire += w.len();
            let u = dec.unwrap(&w, 1 << 20).unwrap();
            assert_eq!(u.data, &m[..]);
            assert!(u.crc_ok());
            assert_eq!(u.wire_len, w.len());
            // The window slides over 200 KiB: the buffer holds it and its slack, no more (a
            // plain doubling of the old two-window buffer held up to 128 KiB and more).
            assert!(dec.hist.buf.capacity() <= HISTORY + SLACK, "{}", dec.hist.buf.capacity());
            assert!(enc.hist.buf.capacity() <= HISTORY + SLACK, "{}", enc.hist.buf.capacity());
        }
        assert!(dec.hist.buf.len() >= HISTORY);
        // Only references to earlier messages make this data compress.
        assert!(wire * 2 < raw, "{wire} of {raw}");
        // Without the dictionary the later blocks do not decode.
        let mut enc = Lz4Encoder::new();
        let mut failures = 0;
        for m in &msgs {
            let w = enc.wrap(m);
            if fresh(&w, 1 << 20).is_err() {
                failures += 1;
            }
        }
        assert!(failures > msgs.len() / 2);
    }

    /// One outsized message grows the buffer; the next one shrinks it back, and still refers
    /// to the outsized one's last bytes.
    #[test]
    fn an_outsized_message_does_not_pin_its_buffer() {
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8 ^ (i / 997) as u8).collect();
        let small: Vec<u8> = big[big.len() - 500..].to_vec();
        let mut enc = Lz4Encoder::new();
        let mut dec = Lz4Stream::new();
        for m in [&big, &small] {
            let w = enc.wrap(m);
            assert_eq!(dec.unwrap(&w, 1 << 20).unwrap().data, &m[..]);
        }
        assert!(dec.hist.buf.capacity() <= HISTORY + SLACK, "{}", dec.hist.buf.capacity());
        assert!(dec.history_complete());
    }

    /// An envelope declaring more than its block can give is refused before anything is
    /// allocated for it, and the history is lost: how far the sender's moved is not known.
    #[test]
    fn a_declared_length_past_what_the_block_can_give_is_refused() {
        let mut enc = Lz4Encoder::new();
        let first = enc.wrap(b"0123456789abcdef0123456789abcdef");
        let mut dec = Lz4Stream::new();
        dec.unwrap(&first, 1 << 24).unwrap();
        // 16 MiB declared, five bytes of block.
        let mut liar = Vec::new();
        put_varint(&mut liar, 16 << 20);
        liar.extend_from_slice(&[0, 0, 0, 0, 0x50, b'a', b'b', b'c', b'd', b'e']);
        let cap_before = dec.hist.buf.capacity();
        match dec.unwrap(&liar, 1 << 24) {
            Err(Lz4Error::Corrupt(why)) => assert!(why.contains("more than a block"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(dec.hist.buf.capacity() <= cap_before.max(HISTORY + SLACK));
        assert!(!dec.history_complete());
        // A real message close to the bound (1 MiB of one byte value, a block of about 4 KiB)
        // is decoded, and the buffer it grew is let go once it was used.
        let mut t = CompressionTracker::new(1 << 24);
        let offer = Provision { protocol_compress_type: vec![2], ..Default::default() };
        t.on_provision(Dir::C2S, &offer);
        t.on_provision(Dir::S2C, &offer);
        let big: Vec<u8> = vec![7; 1 << 20];
        let w = Lz4Encoder::new().wrap(&big);
        assert_eq!(t.unwrap(Dir::C2S, &w).unwrap().data, &big[..]);
        assert!(t.streams[0].hist.buf.capacity() > 2 * (HISTORY + SLACK));
        t.settle(Dir::C2S);
        assert!(t.streams[0].hist.buf.capacity() <= HISTORY + SLACK);
        assert!(t.streams[0].history_complete());
    }

    #[test]
    fn empty_and_tiny_messages() {
        let mut enc = Lz4Encoder::new();
        let mut dec = Lz4Stream::new();
        for m in [&b""[..], b"a", b"abcdabcdabcd", b"", b"abcdabcdabcdabcdabcd"] {
            let w = enc.wrap(m);
            assert_eq!(dec.unwrap(&w, 100).unwrap().data, m);
        }
    }

    #[test]
    fn crc_mismatch_is_a_finding() {
        let mut enc = Lz4Encoder::new();
        let mut w = enc.wrap(b"hello hello hello hello");
        w[1] ^= 0x55;
        let mut dec = Lz4Stream::new();
        let u = dec.unwrap(&w, 100).unwrap();
        assert_eq!(u.data, b"hello hello hello hello");
        assert!(!u.crc_ok());
    }

    #[test]
    fn corrupt_and_truncated_envelopes() {
        let mut enc = Lz4Encoder::new();
        let w = enc.wrap(&[7u8; 300]);
        for n in 0..w.len() {
            let r = fresh(&w[..n], 1000);
            assert!(r.is_err(), "{n}");
        }
        // A block that decodes to fewer bytes than declared.
        let mut short = w.clone();
        short[0] = 0xad;
        short.insert(1, 0x02);
        assert!(matches!(
            fresh(&short, 1000),
            Err(Lz4Error::LengthMismatch { .. } | Lz4Error::Corrupt(_))
        ));
        assert_eq!(fresh(&[0x80], 10), Err(Lz4Error::Truncated));
    }

    #[test]
    fn offsets_before_the_dictionary_are_errors() {
        // Token: no literals, a 4-byte match at offset 100; then 5 literal bytes.
        let mut block = vec![0x00, 100, 0, 0x50];
        block.extend_from_slice(b"12345");
        let mut w = Vec::new();
        put_varint(&mut w, 9);
        w.extend_from_slice(&[0, 0, 0, 0]);
        w.extend_from_slice(&block);
        let r = fresh(&w, 100);
        assert!(matches!(r, Err(Lz4Error::Corrupt(_))), "{r:?}");
        // With 50 bytes of history the offset still reaches before it.
        let mut dec = Lz4Stream::new();
        let mut enc = Lz4Encoder::new();
        dec.unwrap(&enc.wrap(&[1u8; 50]), 100).unwrap();
        assert!(matches!(dec.unwrap(&w, 100), Err(Lz4Error::Corrupt(_))));
    }

    #[test]
    fn output_is_capped() {
        let mut enc = Lz4Encoder::new();
        let w = enc.wrap(&vec![0u8; 100_000]);
        assert!(w.len() < 1000);
        assert_eq!(fresh(&w, 99_999), Err(Lz4Error::TooLarge { len: 100_000, cap: 99_999 }));
        // A length that does not fit anywhere.
        let mut w = vec![0xff; 9];
        w.push(0x01);
        w.extend_from_slice(&[0, 0, 0, 0, 0x10]);
        assert!(matches!(fresh(&w, 1 << 20), Err(Lz4Error::TooLarge { .. })));
    }

    #[test]
    fn history_loss_is_reported_once_and_heals() {
        let mut msgs = messages();
        let phase2 = msgs.len();
        // 80 KiB of messages that reference nothing before them, then repeats of those.
        for i in 0..40u32 {
            let m: Vec<u8> = (0..2048u32)
                .map(|j| (j.wrapping_mul(2654435761) ^ i.wrapping_mul(40503)) >> 7)
                .map(|x| x as u8)
                .collect();
            msgs.push(m);
        }
        let phase3 = msgs.len();
        for i in 0..10 {
            let m = msgs[phase3 - 1 - i].clone();
            msgs.push(m);
        }
        let mut enc = Lz4Encoder::new();
        let wires: Vec<Vec<u8>> = msgs.iter().map(|m| enc.wrap(m)).collect();
        let mut t = CompressionTracker::new(1 << 20);
        let offer = Provision { protocol_compress_type: vec![2], ..Default::default() };
        t.on_provision(Dir::C2S, &offer);
        assert!(t.offered() && !t.wrapped(Dir::C2S));
        t.on_provision(Dir::S2C, &offer);
        assert!(t.wrapped(Dir::C2S) && !t.wrapped(Dir::S2C));
        for w in &wires[..5] {
            assert!(t.unwrap(Dir::C2S, w).unwrap().crc_ok());
        }
        // Message 5 is lost in a gap.
        t.gap(Dir::C2S);
        let mut reports = 0;
        let mut lost = 0;
        for (i, w) in wires.iter().enumerate().skip(6) {
            match t.unwrap(Dir::C2S, w) {
                Ok(u) => {
                    assert!(u.crc_ok());
                    assert_eq!(u.data, &msgs[i][..]);
                }
                Err(Lz4Error::HistoryLost { report }) => {
                    assert!(i < phase2, "{i}");
                    lost += 1;
                    reports += usize::from(report);
                }
                Err(e) => panic!("{i}: {e}"),
            }
        }
        assert_eq!(reports, 1);
        assert!(lost > 0);
        // Phase 3 referenced phase 2 only, so the history was whole again.
        assert!(t.streams[0].history_complete());
    }

    /// A gap costs a plain direction nothing, and a wrapped one its history in a buffer that
    /// is reused at the next gap.
    #[test]
    fn gaps_hold_history_only_where_messages_are_wrapped() {
        let mut t = CompressionTracker::new(1 << 20);
        for _ in 0..3 {
            t.gap(Dir::C2S);
            t.gap(Dir::S2C);
        }
        assert_eq!(t.streams.iter().map(|s| s.hist.buf.capacity()).sum::<usize>(), 0);
        let offer = Provision { protocol_compress_type: vec![2], ..Default::default() };
        t.on_provision(Dir::C2S, &offer);
        t.on_provision(Dir::S2C, &offer);
        t.gap(Dir::S2C);
        assert_eq!(t.streams[1].hist.buf.capacity(), 0, "the server's messages are not wrapped");
        t.gap(Dir::C2S);
        let h = &t.streams[0].hist;
        assert!(!h.complete() && h.buf.len() == HISTORY);
        let at = h.buf.as_ptr();
        t.gap(Dir::C2S);
        assert_eq!(t.streams[0].hist.buf.as_ptr(), at);
        assert!(!t.streams[0].history_complete());
    }

    #[test]
    fn negotiation_by_direction() {
        let ans = |dir: Option<i32>, types: Vec<i32>| Provision {
            protocol_compress_type: types,
            protocol_compress_direction: dir,
            ..Default::default()
        };
        let mut t = CompressionTracker::new(100);
        for (d, want) in [
            (None, [true, false]),
            (Some(0), [true, false]),
            (Some(1), [false, true]),
            (Some(2), [true, true]),
        ] {
            t.on_provision(Dir::S2C, &ans(d, vec![2]));
            assert_eq!([t.wrapped(Dir::C2S), t.wrapped(Dir::S2C)], want);
        }
        t.on_provision(Dir::S2C, &ans(Some(2), vec![]));
        assert!(!t.wrapped(Dir::C2S) && !t.wrapped(Dir::S2C));
        // A client that did not offer LZ4 sends plain messages even when the server selects it
        // for both directions; the server's own may be wrapped.
        let mut u = CompressionTracker::new(100);
        u.on_provision(Dir::C2S, &ans(None, vec![0]));
        u.on_provision(Dir::S2C, &ans(Some(2), vec![2]));
        assert!(!u.offered());
        assert_eq!([u.wrapped(Dir::C2S), u.wrapped(Dir::S2C)], [false, true]);
        t.on_provision(Dir::S2C, &ans(Some(2), vec![1]));
        assert!(!t.wrapped(Dir::C2S));
        // Picked up after login: assumed wrapped, history unknown.
        t.assume_wrapped(Dir::S2C);
        assert!(t.wrapped(Dir::S2C));
        let mut enc = Lz4Encoder::new();
        enc.wrap(b"0123456789abcdef0123456789abcdef");
        let w = enc.wrap(b"0123456789abcdef0123456789abcdef");
        assert!(plausible_envelope(&w, 100));
        assert_eq!(t.unwrap(Dir::S2C, &w), Err(Lz4Error::HistoryLost { report: true }));
        // A message that needs no history decodes even so.
        let w = Lz4Encoder::new().wrap(b"fresh");
        assert_eq!(t.unwrap(Dir::S2C, &w).unwrap().data, b"fresh");
    }

    #[test]
    fn crc32_is_ieee() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
        // Both ways of computing it agree, on both sides of the length where they change.
        let data: Vec<u8> =
            (0..300u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for len in 0..data.len() {
            for start in [0, 1, 3] {
                let d = &data[start.min(len)..len];
                assert_eq!(crc32(d), zlib_rs::crc32::crc32(0, d), "len {len} start {start}");
            }
        }
    }

    proptest! {
        #[test]
        fn random_envelopes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2000), hist in prop::collection::vec(any::<u8>(), 0..3000), lost in any::<bool>()) {
            let mut s = if lost { Lz4Stream::new_lost() } else { Lz4Stream::new() };
            let mut enc = Lz4Encoder::new();
            let _ = s.unwrap(&enc.wrap(&hist), 1 << 16);
            let _ = s.unwrap(&data, 1 << 16);
            let _ = plausible_envelope(&data, 1 << 16);
            // A valid varint and CRC in front of random block bytes.
            let mut w = Vec::new();
            put_varint(&mut w, (data.len() * 3) as u64);
            w.extend_from_slice(&[1, 2, 3, 4]);
            w.extend_from_slice(&data);
            let _ = s.unwrap(&w, 1 << 16);
        }

        #[test]
        fn any_message_sequence_round_trips(msgs in prop::collection::vec(prop::collection::vec(0u8..4, 0..3000), 1..20)) {
            let mut enc = Lz4Encoder::new();
            let mut dec = Lz4Stream::new();
            for m in &msgs {
                let w = enc.wrap(m);
                let u = dec.unwrap(&w, 1 << 20).unwrap();
                prop_assert_eq!(u.data, &m[..]);
                prop_assert!(u.crc_ok());
            }
        }
    }
}
