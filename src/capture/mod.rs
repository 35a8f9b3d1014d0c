//! Sources of timestamped link-layer packets: classic pcap (both byte orders, µs and ns),
//! pcapng (several sections and interfaces, each with its own link type and timestamp
//! resolution), both optionally gzip-, zstd- or LZ4-compressed, read as a stream with bounded memory.
//!
//! Invariant: a [`Packet`] borrows the reader's buffer and is valid until the next call to
//! [`PacketSource::next_packet`]; `data.len()` is the captured length, never more than the
//! record said, and `orig_len` may be larger (snaplen truncation).

mod ahead;
mod lz4frame;
mod read;
pub mod write;

pub use read::{FileReader, MAX_BLOCK_LEN};

use std::fmt;
use std::io::{self, Read};

/// Capture time in nanoseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_secs_nanos(secs: i64, nanos: u32) -> Self {
        Timestamp(secs.saturating_mul(1_000_000_000).saturating_add(i64::from(nanos)))
    }
    pub fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }
    pub fn subsec_nanos(self) -> u32 {
        // rem_euclid of a positive modulus is in 0..1e9, which fits u32.
        self.0.rem_euclid(1_000_000_000) as u32
    }
    /// Signed difference `self - earlier` in nanoseconds.
    pub fn since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// Whether a capture's timestamps only go forward, as capinfos' "strict time order": a
/// clock stepped back on the capturing host, files given out of order, or interfaces merged
/// unsorted all make packets earlier than the one before them. Every time the report derives
/// across such a step is suspect, so the step is told, not hidden.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeOrder {
    /// Packets earlier than the packet before them (in the order read).
    pub steps_back: u64,
    /// The first such packet: its record number and time.
    pub first: Option<(u64, Timestamp)>,
    /// The largest step back in nanoseconds, and the packet that made it.
    pub largest: Option<(i64, u64, Timestamp)>,
    /// The earliest packet: its time and record number.
    pub earliest: Option<(Timestamp, u64)>,
    /// The time of the last packet read (meaningless before the first).
    prev: i64,
}

impl TimeOrder {
    /// Takes in the next packet read, record `index` at `ts`.
    #[inline]
    pub fn see(&mut self, index: u64, ts: Timestamp) {
        // In order, past the first packet: one comparison and one store.
        if ts.0 < self.prev || self.earliest.is_none() {
            self.out_of_line(index, ts);
        }
        self.prev = ts.0;
    }

    /// The first packet, and steps back: rare, so kept off the per-packet path.
    #[cold]
    fn out_of_line(&mut self, index: u64, ts: Timestamp) {
        let Some((earliest, _)) = self.earliest else {
            self.earliest = Some((ts, index));
            return;
        };
        self.steps_back += 1;
        self.first.get_or_insert((index, ts));
        let step = Timestamp(self.prev).since(ts);
        if self.largest.is_none_or(|(l, _, _)| step > l) {
            self.largest = Some((step, index, ts));
        }
        if ts < earliest {
            self.earliest = Some((ts, index));
        }
    }

    pub fn is_strict(&self) -> bool {
        self.steps_back == 0
    }
}

/// A pcap/pcapng link-layer header type (LINKTYPE_* value). Unknown values are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    pub const PPP: LinkType = LinkType(9);
    pub const PPP_HDLC: LinkType = LinkType(50);
    pub const RAW: LinkType = LinkType(101);
    pub const C_HDLC: LinkType = LinkType(104);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const NFLOG: LinkType = LinkType(239);
    pub const PKTAP: LinkType = LinkType(258);
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            LinkType::NULL => "NULL",
            LinkType::ETHERNET => "EN10MB",
            LinkType::PPP => "PPP",
            LinkType::PPP_HDLC => "PPP_HDLC",
            LinkType::C_HDLC => "C_HDLC",
            LinkType::PKTAP => "PKTAP",
            LinkType::RAW => "RAW",
            LinkType::LOOP => "LOOP",
            LinkType::LINUX_SLL => "LINUX_SLL",
            LinkType::IPV4 => "IPV4",
            LinkType::IPV6 => "IPV6",
            LinkType::NFLOG => "NFLOG",
            LinkType::LINUX_SLL2 => "LINUX_SLL2",
            _ => return write!(f, "{}", self.0),
        };
        write!(f, "{name} ({})", self.0)
    }
}

/// One capture record.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// 1-based number of the record in the capture (Wireshark's frame number); records of
    /// several files given on one command line continue the numbering.
    pub index: u64,
    pub ts: Timestamp,
    pub link: LinkType,
    /// Length of the packet on the wire; larger than `data.len()` when the snaplen cut it.
    pub orig_len: u32,
    pub data: &'a [u8],
    /// Byte offset of the record header in the (decompressed) file.
    pub file_offset: u64,
}

/// A capture record copied out of the reader's buffer, to be handed on later.
#[derive(Clone, Debug)]
pub struct OwnedPacket {
    pub index: u64,
    pub ts: Timestamp,
    pub link: LinkType,
    pub orig_len: u32,
    pub data: Vec<u8>,
    pub file_offset: u64,
}

impl OwnedPacket {
    pub fn of(p: &Packet<'_>) -> OwnedPacket {
        OwnedPacket {
            index: p.index,
            ts: p.ts,
            link: p.link,
            orig_len: p.orig_len,
            data: p.data.to_vec(),
            file_offset: p.file_offset,
        }
    }

    pub fn packet(&self) -> Packet<'_> {
        Packet {
            index: self.index,
            ts: self.ts,
            link: self.link,
            orig_len: self.orig_len,
            data: &self.data,
            file_offset: self.file_offset,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureErrorKind {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a pcap or pcapng capture")]
    NotACapture,
    /// No byte at all (after decompression, for a compressed file): said apart from a file
    /// that is not a capture, as tcpdump and capinfos do, since it usually means a capture
    /// that was never written to rather than the wrong file.
    #[error("empty: no capture header")]
    Empty,
    #[error("corrupt capture: {0}")]
    Corrupt(String),
    /// The file ends inside a record, or a header: everything before it was read.
    #[error("truncated {0} (file ends inside it)")]
    Truncated(Cut),
    /// Bytes after the end of a compressed stream that are not part of it: everything before
    /// them was read.
    #[error("{0}")]
    Trailing(String),
}

/// What a file cut short ends inside of. A file cut inside its header has no record to speak
/// of, and saying "record" there sends the reader looking for one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// The pcap file header, or the first bytes of a capture whose format is not known yet.
    FileHeader,
    /// A pcapng section header block.
    SectionHeader,
    /// A pcap record, or a pcapng block other than a section header.
    Record,
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cut::FileHeader => "file header",
            Cut::SectionHeader => "section header block",
            Cut::Record => "record",
        })
    }
}

/// An error with the file and byte offset it concerns. Displayed as one line.
#[derive(Debug, thiserror::Error)]
#[error("{file}: offset {offset}: {kind}")]
pub struct CaptureError {
    pub file: String,
    pub offset: u64,
    pub kind: CaptureErrorKind,
}

impl CaptureError {
    /// A truncated last record, or data after the end of a compressed stream, is a warning,
    /// not a failure: what came before stands. (A file cut inside its first header fails to
    /// open, which is an error whatever its kind.)
    pub fn is_warning(&self) -> bool {
        matches!(self.kind, CaptureErrorKind::Truncated(_) | CaptureErrorKind::Trailing(_))
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Packet records returned.
    pub records: u64,
    /// pcapng blocks that were not packets or metadata we use (skipped and counted).
    pub skipped_blocks: u64,
    /// Bytes of (decompressed) capture read so far.
    pub bytes: u64,
    /// Packet records that were skipped because they cannot be placed (a pcapng packet block
    /// naming an interface its section never declared).
    pub bad_records: u64,
    /// Stretches passed over after damage (a pcap record header whose length could not be, a
    /// pcapng block that does not hold together), the bytes in them, and where the first began
    /// with what was wrong there.
    pub damaged: u64,
    pub damaged_bytes: u64,
    pub first_damage: Option<(u64, Damage)>,
    /// pcap records whose captured length was damaged, read with their original length
    /// instead because the record after them starts there.
    pub repaired: u64,
}

impl CaptureStats {
    /// What was done about damage, for the error line and `info`: "B bytes in K damaged
    /// stretches passed over", "R record lengths repaired", or both.
    pub fn damage_done(&self) -> String {
        let mut parts = Vec::new();
        if self.damaged > 0 {
            let s = if self.damaged == 1 { "" } else { "es" };
            parts.push(format!(
                "{} bytes in {} damaged stretch{s} passed over",
                self.damaged_bytes, self.damaged
            ));
        }
        if self.repaired > 0 {
            let s = if self.repaired == 1 { "" } else { "s" };
            parts.push(format!(
                "{} record length{s} repaired (read as the original length, where the next \
                 record starts)",
                self.repaired
            ));
        }
        parts.join(", ")
    }
}

/// What was wrong where a reader found damage and looked for the records after it. Displayed
/// as the error it would have been had nothing been found after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// A pcap record header claiming a captured length that cannot be.
    RecordLength(u32),
    /// A pcap record header whose captured length is not where the next record starts, while
    /// its original length is: `(captured, original)`.
    RecordLengthRepaired(u32, u32),
    /// A pcapng block whose length cannot be: above the limit, below its type's minimum or
    /// not a multiple of 4. `section`: the block is a section header.
    BlockLength { len: u32, min: u32, section: bool },
    /// A pcapng block whose trailing length differs from its leading one.
    TrailingLength { len: u32, trailer: u32 },
    /// A pcapng block whose length runs past the end of the file while blocks follow it.
    BeyondEnd { len: u32 },
    /// A pcapng packet block whose fields contradict its length.
    Packet(&'static str),
    /// A pcapng section header block with an invalid byte-order magic.
    ByteOrder,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Damage::RecordLength(n) => write!(f, "record length {n} is implausible"),
            Damage::RecordLengthRepaired(n, orig) => write!(
                f,
                "record length {n} does not end where a record starts; its original length \
                 {orig} does"
            ),
            Damage::BlockLength { len, min, section } => {
                let what = if section { "section header block" } else { "block" };
                if len as usize > read::MAX_BLOCK_LEN {
                    let max = read::MAX_BLOCK_LEN;
                    write!(f, "{what} length {len} exceeds the limit of {max} bytes")
                } else if len < min {
                    write!(f, "{what} length {len} is less than the minimum of {min} bytes")
                } else {
                    write!(f, "{what} length {len} is not a multiple of 4")
                }
            }
            Damage::TrailingLength { len, trailer } => {
                write!(f, "block length {len} differs from its trailing length {trailer}")
            }
            Damage::BeyondEnd { len } => {
                write!(f, "block length {len} runs past the end of the file")
            }
            Damage::Packet(what) => f.write_str(what),
            Damage::ByteOrder => {
                f.write_str("section header block with an invalid byte-order magic")
            }
        }
    }
}

/// What a capture file says about where it was taken (pcapng's section and interface
/// options; a pcap's one link type and snaplen), for `info`. Text is shown as it can be:
/// truncated, control characters escaped.
#[derive(Clone, Debug, Default)]
pub struct CaptureMeta {
    /// pcapng sections (0 for pcap).
    pub sections: u64,
    /// `shb_hardware`, `shb_os`, `shb_userappl` of the first section that has each.
    pub hardware: Option<String>,
    pub os: Option<String>,
    pub application: Option<String>,
    /// Interfaces in the order declared over all sections, the first 64 of them.
    pub interfaces: Vec<InterfaceMeta>,
    /// Interfaces declared, kept or not.
    pub interfaces_total: u64,
}

#[derive(Clone, Debug, Default)]
pub struct InterfaceMeta {
    /// The pcapng section declaring it (1 for the first; 0 for pcap) and its id there:
    /// interface ids start again in each section.
    pub section: u64,
    pub id: usize,
    pub link: LinkType,
    /// 0: no limit.
    pub snaplen: u32,
    pub name: Option<String>,
    pub description: Option<String>,
    /// The capture filter, when given as a libpcap filter string.
    pub filter: Option<String>,
    pub os: Option<String>,
}

/// Anything that yields packets: a capture file, a live interface.
pub trait PacketSource {
    fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError>;
    fn stats(&self) -> CaptureStats;
    /// The file (or interface) name, for messages.
    fn name(&self) -> &str;
    /// Index given to the next packet, so numbering can continue across files.
    fn set_next_index(&mut self, n: u64);
}
#[cfg(feature = "live")]
pub mod live;

/// Reads until `buf` is full, the input ends or a read fails: how many bytes it got, and the
/// failure (after those bytes, which are still good).
fn fill(src: &mut impl Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut n = 0;
    while let Some(room) = buf.get_mut(n..).filter(|r| !r.is_empty()) {
        match src.read(room) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

/// A skippable frame's magic (zstd's and LZ4's alike: its low nibble is free).
fn skippable(magic: u32) -> bool {
    magic & !0xf == 0x184D_2A50
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_order_counts_steps_back_and_keeps_the_first_largest_and_earliest() {
        let mut t = TimeOrder::default();
        for (i, ts) in [10, 20, 20, 30].into_iter().enumerate() {
            t.see(i as u64 + 1, Timestamp(ts));
        }
        assert!(t.is_strict(), "equal times are in order");
        assert_eq!((t.first, t.largest, t.earliest), (None, None, Some((Timestamp(10), 1))));
        // 30 → 25 (5 back), 25 → 40, 40 → 5 (35 back, and the earliest), 5 → 4 (1 back).
        for (i, ts) in [25, 40, 5, 4].into_iter().enumerate() {
            t.see(i as u64 + 5, Timestamp(ts));
        }
        assert_eq!(t.steps_back, 3);
        assert_eq!(t.first, Some((5, Timestamp(25))));
        assert_eq!(t.largest, Some((35, 7, Timestamp(5))));
        assert_eq!(t.earliest, Some((Timestamp(4), 8)));
        assert!(!t.is_strict());
    }
}
