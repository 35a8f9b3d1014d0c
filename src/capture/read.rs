//! Streaming reader for capture files: classic pcap (both byte orders, µs and ns, the
//! modified/Kuznetzov variant, and the Red Hat 6.1, SuSE 6.3 and Nokia record headers) and pcapng (several sections, several interfaces), optionally
//! gzip-, zstd- or LZ4-compressed (recognised by the magic, not by the file name).
//!
//! Invariants:
//! - `buf[pos..end]` holds bytes read from the (decompressed) stream and not yet consumed;
//!   `base` is the stream offset of `buf[0]`, so the next record starts at `base + pos`.
//! - The buffer is compacted and refilled only at the start of a call, so the packet returned by
//!   the previous call stays valid until the next one, as [`PacketSource`] promises.
//! - Memory is bounded by the data actually present, never by a length field: the buffer only
//!   grows when one record needs more room than it has, then at most doubling and only once the
//!   current size is filled with real bytes, so it is never more than twice the bytes received;
//!   any length above [`MAX_BLOCK_LEN`] is `Corrupt`. Resident memory can be about twice the
//!   buffer: the smaller buffers it outgrew are freed, but an allocator may keep their pages
//!   until it purges them (mimalloc, the binary's, does so lazily, and a reader busy filling
//!   its buffer gives it no occasion): a 255 MiB pcapng block read from 150 MB of a gzip
//!   stream holds a 256 MiB buffer and peaks at about 520 MiB.
//! - Every length read from the file is checked against the block it lives in before it is used
//!   as an index, and all slicing of input-derived ranges goes through `get`, so no input can
//!   make the reader panic.
//! - A length above [`MAX_BLOCK_LEN`], or one that cannot hold its block's fixed fields, is
//!   `Corrupt` at the record's offset, and so is a pcap record's above both the file's snaplen
//!   and 256 KiB (the mapped file and the stream alike, whether or not the file ends before
//!   it); a plausible length that runs past the end of the stream is `Truncated` there, since
//!   a stream's length is not known in advance (stdin, gzip) and a capture cut off mid-write
//!   looks exactly like that.
//! - Such damage does not end the reading when what follows can be found again: a pcap record
//!   header's impossible length, or a pcapng block that does not hold together (its length,
//!   its trailing length, a packet block's captured length, a later section header's
//!   byte-order magic, or a length running past the end while credible blocks follow), is
//!   passed over to the next credible record or block within 4 MiB, counted in
//!   `CaptureStats::damaged`, `damaged_bytes` and `first_damage` (its offset and [`Damage`]),
//!   which the caller reports as the error; without one it is the error it always was (see
//!   `FileReader::pcap_damaged` and `FileReader::ng_damaged`).
//! - `Packet::orig_len >= data.len()`: a record claiming a captured length above its original
//!   length gets the captured length as original length, so `orig_len - data.len()` is safe.
//! - Packet numbers count returned packets only: a pcapng packet block naming an undeclared
//!   interface is skipped (counted in `bad_records`) without using a number.
//! - After an error or the end of the stream `done` is set and every later call returns
//!   `Ok(None)`: a caller looping until `None` always terminates.
//! - A read error is held back until the bytes already buffered are used up, so the packets
//!   before a damaged region (a gzip stream cut short, a failing disk) are still returned.
//! - A regular, uncompressed file is memory-mapped instead of read: `buf` is then the whole
//!   file, `eof` is set from the start and nothing is copied. The pages behind the records
//!   already returned are handed back to the kernel every [`RELEASE_STEP`] bytes, so the
//!   resident set does not grow with the file. The file is read as it was when opened: bytes
//!   appended later are not seen. At each step the reader also looks at the file's length: a
//!   file another program truncated ends there in an error, not in a read of pages that are
//!   gone. A truncation inside the step being read still ends the process (SIGBUS), as for
//!   any program that maps its input; read from standard input (`-`) where that can happen.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::Path;

use flate2::bufread::GzDecoder;
use memmap2::Mmap;

use super::ahead::ReadAhead;
use super::lz4frame::{self, Lz4Frames};
use super::{
    CaptureError, CaptureErrorKind, CaptureMeta, CaptureStats, Cut, Damage, InterfaceMeta,
    LinkType, Packet, PacketSource, Timestamp,
};

/// Largest record or block accepted. Real packets are at most a few hundred KiB (the largest
/// snaplen in use is 256 KiB); anything bigger is a corrupt length field.
pub const MAX_BLOCK_LEN: usize = 256 * 1024 * 1024;

/// Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD: the largest packet it reads from a pcap record
/// of the common link types, and the snaplen tcpdump and dumpcap use by default.
const PCAP_STANDARD_MAX: u32 = 256 * 1024;

/// Large enough that a refill is one big read per megabyte of capture.
const INITIAL_BUF: usize = 1024 * 1024;

/// A reader starts this small and doubles up to [`INITIAL_BUF`] once the input proves longer,
/// so opening many small inputs does not zero a megabyte each time.
const FIRST_BUF: usize = 64 * 1024;

/// How far a mapped file is read past the pages last handed back before the next are.
const RELEASE_STEP: usize = 8 * 1024 * 1024;

/// Interfaces one pcapng section may declare; a real capture has a handful.
const MAX_INTERFACES: usize = 65_536;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// zstd frames, which Wireshark also reads captures compressed with (LZ4's magic numbers are
/// the frame reader's, `lz4frame`).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Bytes read ahead to tell how a capture is compressed when it starts with skippable frames.
const SNIFF_LIMIT: usize = 64 << 10;

/// How a capture file is compressed, by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compression {
    Gzip,
    Zstd,
    Lz4,
}

fn compression(head: &[u8]) -> Option<Compression> {
    let magic = head.first_chunk::<4>().map(|b| u32::from_le_bytes(*b));
    if head.starts_with(&GZIP_MAGIC) {
        Some(Compression::Gzip)
    } else if head.starts_with(&ZSTD_MAGIC) || skippable_frame(head).is_some() {
        Some(Compression::Zstd)
    } else if matches!(magic, Some(lz4frame::MAGIC | lz4frame::LEGACY_MAGIC)) {
        Some(Compression::Lz4)
    } else {
        None
    }
}

/// The length of the skippable frame `head` starts with.
fn skippable_frame(head: &[u8]) -> Option<u32> {
    let magic = u32::from_le_bytes(*head.first_chunk::<4>()?);
    let len = u32::from_le_bytes(*head.get(4..)?.first_chunk::<4>()?);
    super::skippable(magic).then_some(len)
}

/// Passes over the skippable frame at the start of `src`, if there is one: true when it did.
fn skip_skippable(src: &mut impl BufRead) -> io::Result<bool> {
    let Some(len) = skippable_frame(src.fill_buf()?) else { return Ok(false) };
    // Its 8-byte header, then `len` bytes of whatever.
    let skip = 8 + u64::from(len);
    if io::copy(&mut src.take(skip), &mut io::sink())? < skip {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(true)
}

/// A zstd stream of one or more frames (as `zstd` writes several files, or `pzstd` one), with
/// skippable frames passed over; the window a frame may ask for is bounded by the decoder
/// (128 MiB, as libzstd's default).
///
/// A frame that fails (cut short, as when the compressor of `tcpdump -w - | zstd` is killed,
/// or damaged) still gives every byte decoded before the failure, then the error. The decoder
/// holds the last window of its output back until the frame ends (later blocks may copy from
/// it), and on a small capture the window is the whole content: without [`SEAL`] a cut file
/// would give nothing at all.
struct ZstdFrames<R: BufRead> {
    src: R,
    frame: Option<ruzstd::decoding::FrameDecoder>,
    /// Why the current frame was sealed: returned once what it held is read.
    failed: Option<io::Error>,
}

/// An empty raw block marked last (block header 0x000001, little-endian), then a content
/// checksum in case the frame announces one: what ends a frame where it failed. A block is
/// read in full before any of it is decoded (and a raw block lands only once all of it is
/// read), so a cut releases exactly the output of the whole blocks before it; damage found
/// while a block decodes also releases what that block gave before it.
const SEAL: [u8; 7] = [1, 0, 0, 0, 0, 0, 0];

impl<R: BufRead> ZstdFrames<R> {
    fn new(src: R) -> Self {
        ZstdFrames { src, frame: None, failed: None }
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(f) = self.frame.as_mut() {
                while f.can_collect() == 0 && !f.is_finished() {
                    let Err(e) =
                        f.decode_blocks(&mut self.src, BlockDecodingStrategy::UptoBlocks(1))
                    else {
                        continue;
                    };
                    f.decode_blocks(&SEAL[..], BlockDecodingStrategy::UptoBlocks(1))
                        .map_err(|e| zstd_error(&e))?;
                    self.failed = Some(zstd_error(&e));
                }
                let n = f.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                if let Some(e) = self.failed.take() {
                    self.frame = None;
                    return Err(e);
                }
                // Every byte of the frame has been read (the hash covers what was read).
                let sums = (f.get_checksum_from_data(), f.get_calculated_checksum());
                self.frame = None;
                if let (Some(want), Some(got)) = sums {
                    if want != got {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "zstd: content checksum mismatch (the frame says {want:#010x}, \
                                 its content gives {got:#010x})"
                            ),
                        ));
                    }
                }
            }
            if self.src.fill_buf()?.is_empty() {
                return Ok(0);
            }
            if skip_skippable(&mut self.src)? {
                continue;
            }
            let mut f = FrameDecoder::new();
            f.init(&mut self.src).map_err(|e| zstd_error(&e))?;
            self.frame = Some(f);
        }
    }
}

/// A zstd decoding failure as an I/O error; one cut short reads as the end of the input.
fn zstd_error(e: &ruzstd::decoding::errors::FrameDecoderError) -> io::Error {
    use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut cut_short = false;
    while let Some(c) = cause {
        cut_short |= c
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::UnexpectedEof);
        cause = c.source();
    }
    let text = match e {
        FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::BadMagicNumber(m)) => {
            format!("zstd: what follows the last frame is not a zstd frame (magic {m:#010x})")
        }
        _ => zstd_description(e),
    };
    let kind = if cut_short { io::ErrorKind::UnexpectedEof } else { io::ErrorKind::InvalidData };
    io::Error::new(kind, text)
}

/// One line on what failed in a zstd frame. The decoder's own `Display` cannot be shown as it
/// is: its outer errors print their causes with `Debug` (`DecompressLiteralsError(…{ … })`),
/// and its block header and block body messages are swapped. Here the part of the frame comes
/// from the outer error, and the detail from the innermost cause, whose text is its own, when
/// that is one plain line.
fn zstd_description(e: &ruzstd::decoding::errors::FrameDecoderError) -> String {
    use ruzstd::decoding::errors::FrameDecoderError as F;
    let part = match e {
        F::ReadFrameHeaderError(_)
        | F::FrameHeaderError(_)
        | F::FailedToInitialize(_)
        | F::WindowSizeTooBig { .. }
        | F::DictNotProvided { .. } => "invalid frame header",
        F::FailedToReadBlockHeader(_) => "invalid block header",
        F::FailedToReadBlockBody(_) => "corrupt compressed block",
        F::FailedToReadChecksum(_) => "cannot read the frame's checksum",
        _ => "decoding failed",
    };
    let mut inner: &dyn std::error::Error = e;
    while let Some(c) = inner.source() {
        inner = c;
    }
    let detail = inner.to_string();
    let plain = !detail.is_empty()
        && detail.len() <= 160
        && !detail.contains(['{', '}', '\n'])
        && detail.chars().any(char::is_alphabetic)
        && !detail.chars().any(char::is_control);
    if !plain {
        return format!("zstd: {part}");
    }
    // "Did not decode …" reads as part of the sentence; "RLE …" keeps its capitals.
    let mut chars = detail.chars();
    let detail = match (chars.next(), chars.next()) {
        (Some(a), Some(b)) if a.is_uppercase() && b.is_lowercase() => {
            a.to_lowercase().chain(detail.chars().skip(1)).collect()
        }
        _ => detail,
    };
    format!("zstd: {part}: {detail}")
}

/// A gzip stream of one or more members (as `gzip` writes concatenated files, and `bgzip` a
/// file in blocks). After the last member, zeros (the padding `tar` and `dd` leave, which
/// `gzip -d` passes over in silence) end the stream as its end would; anything else that is
/// not a member ends it in [`TrailingData`], once every byte of the members before is read.
/// A member's damage, and a member cut short, are errors as the decoder reports them.
struct GzMembers {
    member: GzDecoder<Counted>,
    /// After the last member, or after an error: nothing more is read.
    ended: bool,
}

impl GzMembers {
    fn new(src: Box<dyn BufRead + Send>) -> Self {
        GzMembers { member: GzDecoder::new(Counted::new(src)), ended: false }
    }

    /// Passes over the zeros after the last member, which began `at` bytes into the file.
    fn after_last_member(&mut self, at: u64) -> io::Result<usize> {
        self.ended = true;
        let src = self.member.get_mut();
        loop {
            let chunk = src.fill_buf()?;
            if chunk.is_empty() {
                return Ok(0);
            }
            if chunk.iter().any(|&b| b != 0) {
                return Err(io::Error::new(io::ErrorKind::InvalidData, TrailingData { at }));
            }
            let n = chunk.len();
            src.consume(n);
        }
    }
}

impl Read for GzMembers {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.ended {
            return Ok(0);
        }
        loop {
            // After an error the decoder reads as ended: it must not be taken for a member's end.
            let n = self.member.read(buf).inspect_err(|_| self.ended = true)?;
            if n > 0 {
                return Ok(n);
            }
            // The member ended, its length and CRC checked.
            let at = self.member.get_ref().consumed;
            let next = self.member.get_mut().fill_buf().inspect_err(|_| self.ended = true)?;
            match next.first() {
                None => {
                    self.ended = true;
                    return Ok(0);
                }
                Some(&b) if b == GZIP_MAGIC[0] => {
                    // The decoder starts on the next member only through `reset`, which swaps
                    // its input: swap in a stand-in, then the input back (cheap: the inflater's
                    // state is reset in place, not allocated again).
                    let src = self.member.reset(Counted::new(Box::new(io::empty())));
                    self.member.reset(src);
                }
                Some(_) => return self.after_last_member(at),
            }
        }
    }
}

/// Compressed input that counts the bytes taken from it, to say where trailing data starts.
struct Counted {
    src: Box<dyn BufRead + Send>,
    consumed: u64,
}

impl Counted {
    fn new(src: Box<dyn BufRead + Send>) -> Self {
        Counted { src, consumed: 0 }
    }
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.src.read(buf)?;
        self.consumed += n as u64;
        Ok(n)
    }
}

impl BufRead for Counted {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.src.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.src.consume(n);
        self.consumed += n as u64;
    }
}

/// Bytes after the last member of a gzip stream that are neither a member nor zeros: the
/// reader stops there with a warning, as `gzip -d` does, since every byte before was read.
#[derive(Debug)]
struct TrailingData {
    /// Where they start in the compressed file.
    at: u64,
}

impl std::fmt::Display for TrailingData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "trailing data after the gzip stream (from byte {} of the file), ignored",
            self.at
        )
    }
}

impl std::error::Error for TrailingData {}

/// Whether a read failed on [`TrailingData`].
fn is_trailing_data(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<TrailingData>())
}

const PCAP_MAGIC_US: u32 = 0xA1B2_C3D4;
const PCAP_MAGIC_NS: u32 = 0xA1B2_3C4D;
/// Alexey Kuznetzov's patched libpcap: µs timestamps, 8 more bytes per record header.
const PCAP_MAGIC_MODIFIED: u32 = 0xA1B2_CD34;
/// Record header lengths under the usual µs magic: the standard one, then Red Hat 6.1's
/// patched libpcap (interface index, protocol and packet type: 8 more bytes) and Nokia IPSO's
/// (4 more).
const PCAP_RECORD_HEADERS: [usize; 3] = [16, 24, 20];
/// Under the modified magic: the patched libpcap of late 1999 (24), then SuSE 6.3's (28,
/// with two CPU bytes and padding more).
const MODIFIED_RECORD_HEADERS: [usize; 2] = [24, 28];
const PCAP_FILE_HEADER_LEN: usize = 24;
/// libpcap's LT_LINKTYPE(): the upper bits of the field carry FCS information.
const PCAP_LINKTYPE_MASK: u32 = 0x03FF_FFFF;

/// The section header block type reads the same in both byte orders.
const NG_SHB: [u8; 4] = [0x0A, 0x0D, 0x0D, 0x0A];
const NG_IDB: u32 = 1;
const NG_OPB: u32 = 2;
const NG_SPB: u32 = 3;
const NG_EPB: u32 = 6;
const NG_NRB: u32 = 4;
const NG_ISB: u32 = 5;
const NG_SJE: u32 = 9;
const NG_DSB: u32 = 0x0A;
const NG_CB: u32 = 0x0BAD;
const NG_DCB: u32 = 0x4000_0BAD;
const NG_BOM_BE: [u8; 4] = [0x1A, 0x2B, 0x3C, 0x4D];
const NG_BOM_LE: [u8; 4] = [0x4D, 0x3C, 0x2B, 0x1A];
/// Type, length, byte-order magic, version, section length, trailing length.
const NG_SHB_MIN: usize = 28;
/// Type, length, trailing length.
const NG_BLOCK_MIN: usize = 12;
/// Type, length, interface, two timestamp words, two lengths, trailing length (EPB and OPB).
const NG_PACKET_MIN: usize = 32;
const NG_PACKET_DATA: usize = 28;
const NG_SPB_MIN: usize = 16;
const NG_SPB_DATA: usize = 12;
const NG_IDB_MIN: usize = 20;

const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;
const OPT_IF_NAME: u16 = 2;
const OPT_IF_DESCRIPTION: u16 = 3;
const OPT_IF_FILTER: u16 = 11;
const OPT_IF_OS: u16 = 12;
const OPT_SHB_HARDWARE: u16 = 2;
const OPT_SHB_OS: u16 = 3;
const OPT_SHB_USERAPPL: u16 = 4;
/// Interfaces whose description [`CaptureMeta`] keeps; the rest are only counted.
const META_INTERFACES_MAX: usize = 64;
/// Characters kept of a text option.
const META_TEXT_MAX: usize = 200;

const NANOS_PER_SEC: u64 = 1_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    #[inline]
    fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }
    }
    #[inline]
    fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }
    #[inline]
    fn i64(self, b: [u8; 8]) -> i64 {
        match self {
            Endian::Little => i64::from_le_bytes(b),
            Endian::Big => i64::from_be_bytes(b),
        }
    }
    /// Reads a u32 at `at` of a fixed-size header copy.
    #[inline]
    fn u32_at<const N: usize>(self, h: &[u8; N], at: usize) -> u32 {
        self.u32(array(h, at).unwrap_or_default())
    }
}

/// `N` bytes at `at`, or `None` if they are not all there.
#[inline]
fn array<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// How raw pcapng timestamp units become nanoseconds, decided once per interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TsConv {
    /// Units of 10^-k s with k <= 9 (or 2^0 s): multiply.
    Mul(u64),
    /// Units of 10^-k s with k > 9: divide (0 stands for a divisor beyond u64, result 0).
    Div(u64),
    /// Units of 2^-k s, k >= 1: multiply by 10^9 then shift.
    Shift(u32),
}

impl TsConv {
    fn from_tsresol(v: u8) -> TsConv {
        let exp = u32::from(v & 0x7f);
        if v & 0x80 != 0 {
            if exp == 0 {
                TsConv::Mul(NANOS_PER_SEC)
            } else {
                TsConv::Shift(exp)
            }
        } else if exp <= 9 {
            TsConv::Mul(10u64.pow(9 - exp))
        } else {
            // Beyond 10^19 every 64-bit count is below one nanosecond: Div(0) gives 0.
            TsConv::Div(10u64.checked_pow(exp - 9).unwrap_or(0))
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    /// 0 means unlimited.
    snaplen: u32,
    conv: TsConv,
    /// `if_tsoffset` in nanoseconds.
    offset_ns: i128,
}

impl Interface {
    #[inline]
    fn timestamp(&self, units: u64) -> Timestamp {
        // i128 holds 2^64 × 10^9 and 2^63 × 10^9 with room to spare; the saturating ops are a
        // second guard, and the clamp maps timestamps beyond year 2262 to the i64 limits.
        let ns = match self.conv {
            TsConv::Mul(m) => i128::from(units).saturating_mul(i128::from(m)),
            TsConv::Div(d) => i128::from(units.checked_div(d).unwrap_or(0)),
            TsConv::Shift(s) => {
                let scaled = u128::from(units).saturating_mul(u128::from(NANOS_PER_SEC));
                i128::try_from(scaled.checked_shr(s).unwrap_or(0)).unwrap_or(i128::MAX)
            }
        };
        let total = ns.saturating_add(self.offset_ns);
        Timestamp(i64::try_from(total).unwrap_or(if total < 0 { i64::MIN } else { i64::MAX }))
    }
}

#[derive(Clone, Copy, Debug)]
enum Format {
    Pcap {
        endian: Endian,
        /// Nanoseconds per unit of the fractional timestamp field (1000 for µs, 1 for ns).
        frac_ns: i64,
        record_header: usize,
        link: LinkType,
        /// The file header's snaplen, which bounds a plausible record (see [`pcap_caplen_max`]).
        snaplen: u32,
    },
    /// The byte order is that of the current section.
    PcapNg { endian: Endian },
    /// Same, in a section where an interface block was damaged (see [`LOST_LINK`]).
    PcapNgLost { endian: Endian },
}

/// Where a packet lies in the buffer; turned into a [`Packet`] once the borrow checker allows.
#[derive(Clone, Copy, Debug)]
struct Record {
    start: usize,
    len: usize,
    ts: Timestamp,
    link: LinkType,
    orig_len: u32,
    offset: u64,
}

enum Step {
    Packet(Record),
    /// A block that yields no packet (metadata, skipped or bad record).
    Skip,
    End,
}

/// The bytes a reader holds: read from its input into a buffer of its own, or the whole
/// file mapped.
enum Buf {
    Owned(Vec<u8>),
    Mapped {
        map: Mmap,
        /// Where the pages not yet handed back start.
        released: usize,
        /// The file mapped, to see whether it shrank.
        file: File,
    },
}

impl std::ops::Deref for Buf {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            Buf::Owned(v) => v,
            Buf::Mapped { map, .. } => map,
        }
    }
}

impl Buf {
    /// Hands the pages of a mapping below `pos` back to the kernel once they add up to a
    /// step. They are not lost: touched again, they are read again from the page cache. At
    /// each step it also looks at the file's length: the new length if the file shrank since
    /// it was mapped (reading on would touch pages that are gone).
    #[inline]
    fn release_below(&mut self, pos: usize) -> Option<u64> {
        let Buf::Mapped { map, released, file } = self else { return None };
        if pos.saturating_sub(*released) < RELEASE_STEP {
            return None;
        }
        let upto = pos - pos % RELEASE_STEP;
        hand_back(map, *released, upto - *released);
        *released = upto;
        let now = file.metadata().ok()?.len();
        (now < map.len() as u64).then_some(now)
    }
}

/// Drops this process's pages of `len` bytes of `map` from `from`. Advice: where it is
/// refused (or unknown to the system), the pages only stay resident.
fn hand_back(map: &Mmap, from: usize, len: usize) {
    #[cfg(unix)]
    // SAFETY: MADV_DONTNEED on a read-only file mapping only drops page table entries; a later
    // access faults the same file bytes back in, so no reference into the mapping sees a
    // change.
    let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, len) };
    #[cfg(not(unix))]
    let _ = (map, from, len);
}

/// Reads packets from a pcap or pcapng stream, see the module documentation.
pub struct FileReader {
    name: String,
    input: Box<dyn Read + Send>,
    buf: Buf,
    pos: usize,
    end: usize,
    base: u64,
    eof: bool,
    read_error: Option<io::Error>,
    done: bool,
    format: Format,
    /// Interfaces of the current pcapng section, by interface id.
    interfaces: Vec<Interface>,
    next_index: u64,
    stats: CaptureStats,
    /// How the file is compressed, when it is.
    compression: Option<Compression>,
    /// The pcap magic number the file has (pcapng: none).
    pcap_magic: Option<u32>,
    /// The byte orders of the pcapng sections read so far (bit 0 little, bit 1 big): a file
    /// made by concatenating captures from different machines has both.
    ng_orders: u8,
    meta: CaptureMeta,
}

impl FileReader {
    /// Opens a file ("-" = stdin) and reads its header. Errors name the file.
    pub fn open(path: &Path) -> Result<FileReader, CaptureError> {
        if path.as_os_str() == "-" {
            return FileReader::from_reader("<stdin>".to_string(), Box::new(io::stdin()));
        }
        let name = path.display().to_string();
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                return Err(CaptureError { file: name, offset: 0, kind: CaptureErrorKind::Io(e) })
            }
        };
        match map(&file) {
            Some(map) if compression(&map).is_none() => {
                let end = map.len();
                let buf = Buf::Mapped { map, released: 0, file };
                FileReader::new(name, Box::new(io::empty()), buf, end)
            }
            // Compressed, or not a file that can be mapped (a pipe, a device, an empty file):
            // read it. Mapping does not move the file position.
            _ => FileReader::from_reader(name, Box::new(file)),
        }
    }

    /// Same over any reader; `name` is used in error messages.
    pub fn from_reader(
        name: String,
        input: Box<dyn Read + Send>,
    ) -> Result<FileReader, CaptureError> {
        FileReader::new(name, input, Buf::Owned(vec![0; FIRST_BUF]), 0)
    }

    /// A reader over `input`, holding `end` bytes of it in `buf` already (all of it when
    /// mapped).
    fn new(
        name: String,
        input: Box<dyn Read + Send>,
        buf: Buf,
        end: usize,
    ) -> Result<FileReader, CaptureError> {
        let mapped = matches!(buf, Buf::Mapped { .. });
        let mut rd = FileReader {
            name,
            input,
            buf,
            pos: 0,
            end,
            base: 0,
            eof: mapped,
            read_error: None,
            done: false,
            format: Format::PcapNg { endian: Endian::Little },
            interfaces: Vec::new(),
            next_index: 1,
            stats: CaptureStats::default(),
            compression: None,
            pcap_magic: None,
            ng_orders: 0,
            meta: CaptureMeta::default(),
        };
        if !mapped {
            if let Some(kind) = rd.sniff_compression() {
                rd.start_decompressing(kind);
            }
        }
        rd.read_header()?;
        Ok(rd)
    }

    /// The file's format as capinfos would name it: container, byte order (for pcapng, of the
    /// sections read so far: both when they differ), timestamp unit and record header length
    /// for pcap.
    pub fn format_description(&self) -> String {
        let order = |e: Endian| match e {
            Endian::Little => "little-endian",
            Endian::Big => "big-endian",
        };
        match self.format {
            Format::Pcap { endian, frac_ns, record_header, .. } => {
                let kind = match self.pcap_magic {
                    Some(PCAP_MAGIC_MODIFIED) => "pcap (modified libpcap)",
                    _ => "pcap",
                };
                let unit = if frac_ns == 1 { "nanosecond" } else { "microsecond" };
                format!(
                    "{kind}, {}, {unit} timestamps, {record_header}-byte record headers",
                    order(endian)
                )
            }
            Format::PcapNg { .. } | Format::PcapNgLost { .. } if self.ng_orders == 3 => {
                "pcapng, little-endian and big-endian sections".to_string()
            }
            Format::PcapNg { endian } | Format::PcapNgLost { endian } => {
                format!("pcapng, {}", order(endian))
            }
        }
    }

    /// What the file says about where it was taken, as far as it has been read.
    pub fn meta(&self) -> &CaptureMeta {
        &self.meta
    }

    /// The compression the file was read through, if any.
    pub fn compression(&self) -> Option<&'static str> {
        self.compression.map(|c| match c {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "LZ4",
        })
    }

    /// Index given to the next packet (default 1), so numbering can continue across files.
    pub fn set_next_index(&mut self, n: u64) {
        self.next_index = n;
    }

    /// How the input is compressed, from its first bytes. Two tell gzip, four the others (a
    /// shorter input is no capture); skippable frames, which zstd and LZ4 share, are looked
    /// past to the frame that tells which. Those beyond the first [`SNIFF_LIMIT`] bytes are
    /// dropped from the input unread, as both decoders would pass over them.
    fn sniff_compression(&mut self) -> Option<Compression> {
        self.fill(GZIP_MAGIC.len());
        let mut at = 0usize;
        loop {
            // A skippable frame's header is 8 bytes; what follows one needs 4 to be told.
            self.fill(at + 8);
            let head = self.buf.get(self.pos + at..self.end)?;
            let Some(len) = skippable_frame(head) else { return compression(head) };
            let next = at.saturating_add(8).saturating_add(len as usize);
            if next > SNIFF_LIMIT {
                if !self.discard(next) {
                    return Some(Compression::Zstd);
                }
                at = 0;
            } else if !self.fill(next + ZSTD_MAGIC.len()) {
                // Only skippable frames to the end: zstd's are the usual ones.
                return Some(Compression::Zstd);
            } else {
                at = next;
            }
        }
    }

    /// Drops the next `n` bytes of the input, buffered or not: false if it ends first.
    fn discard(&mut self, n: usize) -> bool {
        let buffered = self.end - self.pos;
        if n <= buffered {
            self.pos += n;
            return true;
        }
        let rest = (n - buffered) as u64;
        self.base = self.base.saturating_add(self.end as u64).saturating_add(rest);
        self.pos = 0;
        self.end = 0;
        let err = match io::copy(&mut (&mut self.input).take(rest), &mut io::sink()) {
            Ok(k) if k == rest => return true,
            Ok(_) => io::ErrorKind::UnexpectedEof.into(),
            Err(e) => e,
        };
        // Told when the capture's header cannot be read.
        self.read_error = Some(err);
        false
    }

    /// Puts a decoder in front of the input, feeding it the bytes already buffered first.
    fn start_decompressing(&mut self, kind: Compression) {
        self.compression = Some(kind);
        let head = self.buf.get(self.pos..self.end).map(<[u8]>::to_vec).unwrap_or_default();
        let raw = std::mem::replace(&mut self.input, Box::new(io::empty()));
        let compressed = BufReader::with_capacity(256 * 1024, Cursor::new(head).chain(raw));
        let decoder: Box<dyn Read + Send> = match kind {
            Compression::Gzip => Box::new(GzMembers::new(Box::new(compressed))),
            Compression::Zstd => Box::new(ZstdFrames::new(compressed)),
            Compression::Lz4 => Box::new(Lz4Frames::new(compressed)),
        };
        self.input =
            if ReadAhead::worth_it() { Box::new(ReadAhead::new(decoder)) } else { decoder };
        // Offsets from here on are the decompressed stream's.
        self.base = 0;
        self.pos = 0;
        self.end = 0;
        self.eof = false;
    }

    fn read_header(&mut self) -> Result<(), CaptureError> {
        if !self.fill(4) {
            return match self.read_error.take() {
                // A gzip stream cut short before the capture header.
                Some(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    Err(self.fail(0, CaptureErrorKind::Truncated(Cut::FileHeader)))
                }
                // What the stream held ends there, as if it were its end.
                Some(e) if is_trailing_data(&e) => Err(self.fail(0, CaptureErrorKind::NotACapture)),
                Some(e) if self.end == self.pos => Err(self.fail(0, CaptureErrorKind::Io(e))),
                _ if self.end == self.pos => Err(self.fail(0, CaptureErrorKind::Empty)),
                _ => Err(self.fail(0, CaptureErrorKind::NotACapture)),
            };
        }
        let magic: [u8; 4] = array(&self.buf, self.pos).unwrap_or_default();
        if magic == NG_SHB {
            return match self.ng_section_header(true)? {
                Step::End => Err(self.fail(0, CaptureErrorKind::Truncated(Cut::SectionHeader))),
                Step::Packet(_) | Step::Skip => Ok(()),
            };
        }
        let (endian, variant) = if let Some(v) = pcap_variant(u32::from_le_bytes(magic)) {
            (Endian::Little, v)
        } else if let Some(v) = pcap_variant(u32::from_be_bytes(magic)) {
            (Endian::Big, v)
        } else {
            return Err(self.fail(0, CaptureErrorKind::NotACapture));
        };
        if !self.fill(PCAP_FILE_HEADER_LEN) {
            self.end_of_input(Cut::FileHeader)?;
            return Err(self.fail(0, CaptureErrorKind::Truncated(Cut::FileHeader)));
        }
        let h: [u8; PCAP_FILE_HEADER_LEN] = array(&self.buf, self.pos).unwrap_or([0; 24]);
        let link = LinkType(endian.u32_at(&h, 20) & PCAP_LINKTYPE_MASK);
        let (frac_ns, headers): (i64, &[usize]) = match variant {
            PCAP_MAGIC_NS => (1, &[16]),
            PCAP_MAGIC_MODIFIED => (1000, &MODIFIED_RECORD_HEADERS),
            _ => (1000, &PCAP_RECORD_HEADERS),
        };
        let snaplen = endian.u32_at(&h, 16);
        self.consume(PCAP_FILE_HEADER_LEN);
        let record_header = self.pcap_record_header(endian, frac_ns, headers, snaplen);
        self.format = Format::Pcap { endian, frac_ns, record_header, link, snaplen };
        self.pcap_magic = Some(variant);
        self.meta.add_interface(InterfaceMeta { link, snaplen, ..InterfaceMeta::default() });
        Ok(())
    }

    /// Which of the record header lengths `headers` (the usual one first) the records at the
    /// current offset have. Old patched libpcaps wrote longer headers under the same magic
    /// numbers, which Wireshark tells apart the same way: the usual length unless the first two
    /// records do not read as records under it and do under another. A wrong length reads the
    /// second header at the wrong place, where its bytes must still pass as a header: a length
    /// within [`MAX_BLOCK_LEN`] and a fraction of a second below one, and for another length a
    /// time within a day of the first record's (a header read 4 bytes late has the real
    /// lengths where the fraction and the length are read, but not the seconds). Another
    /// length is taken only on a second record seen whole, never on a stream that ends first.
    /// A length is plausible as the records are read: up to [`pcap_caplen_max`] of `snaplen`.
    fn pcap_record_header(
        &mut self,
        endian: Endian,
        frac_ns: i64,
        headers: &[usize],
        snaplen: u32,
    ) -> usize {
        enum Probe {
            Header { secs: i64, next: usize },
            End,
            Bad,
        }
        const DAY: i64 = 86_400;
        let units = NANOS_PER_SEC as i64 / frac_ns;
        // The header of length `h` at `at` bytes from here, checked against the seconds of
        // the record before it when given.
        let probe = |rd: &mut FileReader, at: usize, h: usize, before: Option<i64>| {
            if !rd.fill(at.saturating_add(h)) {
                return Probe::End;
            }
            let Some(hdr) = array::<16>(&rd.buf, rd.pos + at) else { return Probe::End };
            let secs = i64::from(endian.u32_at(&hdr, 0));
            let caplen = endian.u32_at(&hdr, 8) as usize;
            if caplen <= MAX_BLOCK_LEN
                && caplen <= pcap_caplen_max(snaplen) as usize
                && i64::from(endian.u32_at(&hdr, 4)) < units
                && before.is_none_or(|b| (secs - b).abs() <= DAY)
            {
                Probe::Header { secs, next: at + h + caplen }
            } else {
                Probe::Bad
            }
        };
        let usual = headers.first().copied().unwrap_or(16);
        // Nothing to tell apart: read nothing ahead (a pipe would wait for a second record).
        if headers.len() < 2 {
            return usual;
        }
        let usual_fits = match probe(self, 0, usual, None) {
            Probe::Header { next, .. } => !matches!(probe(self, next, usual, None), Probe::Bad),
            Probe::End => true,
            Probe::Bad => false,
        };
        if usual_fits {
            return usual;
        }
        let other_fits = |rd: &mut FileReader, h: usize| match probe(rd, 0, h, None) {
            Probe::Header { secs, next } => {
                matches!(probe(rd, next, h, Some(secs)), Probe::Header { .. })
            }
            Probe::End | Probe::Bad => false,
        };
        headers.iter().skip(1).copied().find(|&h| other_fits(self, h)).unwrap_or(usual)
    }

    /// Stream offset of the next unconsumed byte.
    #[inline]
    fn offset(&self) -> u64 {
        self.base.saturating_add(self.pos as u64)
    }

    #[inline]
    fn consume(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.end);
        self.stats.bytes = self.offset();
    }

    /// Makes at least `need` unconsumed bytes available; false if the stream ends (or fails)
    /// first. The buffer never grows past twice the bytes actually received (what it costs in
    /// resident memory: see the module documentation).
    #[inline]
    fn fill(&mut self, need: usize) -> bool {
        if self.end - self.pos >= need {
            return true;
        }
        self.refill(need)
    }

    #[cold]
    fn refill(&mut self, need: usize) -> bool {
        // A mapped file is whole from the start (and `eof` is set).
        let Buf::Owned(buf) = &mut self.buf else { return false };
        if self.eof {
            return false;
        }
        // What is left is less than one record, so moving it to the front is cheap and leaves
        // the whole buffer for one big read.
        if self.pos > 0 {
            buf.copy_within(self.pos..self.end, 0);
            self.base = self.base.saturating_add(self.pos as u64);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.base > 0 && buf.len() < INITIAL_BUF {
            let grown = buf.len().saturating_mul(2).min(INITIAL_BUF);
            buf.resize(grown, 0);
        }
        while self.end - self.pos < need {
            if self.end == buf.len() {
                // Only reached with pos == 0 and need > buf.len(); grows once the current size
                // is full of real data, so a lying length cannot make us allocate.
                let grown = buf.len().saturating_mul(2).min(need).max(self.end + 1);
                buf.resize(grown, 0);
            }
            let Some(room) = buf.get_mut(self.end..) else {
                return false;
            };
            match self.input.read(room) {
                Ok(0) => {
                    self.eof = true;
                    return false;
                }
                Ok(n) => self.end = (self.end + n).min(buf.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.read_error = Some(e);
                    self.eof = true;
                    return false;
                }
            }
        }
        true
    }

    /// A mapped file is now `now` bytes long, shorter than when it was mapped: nothing past
    /// that is read (its pages are gone), and the stream ends there with an error that says
    /// so once the bytes before it are used up.
    #[cold]
    fn shrank(&mut self, now: u64) {
        let now = usize::try_from(now).unwrap_or(usize::MAX);
        self.end = self.end.min(now.max(self.pos));
        self.read_error =
            Some(io::Error::other(format!("the file shrank to {now} bytes while it was read")));
    }

    fn fail(&mut self, offset: u64, kind: CaptureErrorKind) -> CaptureError {
        self.done = true;
        CaptureError { file: self.name.clone(), offset, kind }
    }

    fn corrupt(&mut self, offset: u64, what: String) -> CaptureError {
        self.fail(offset, CaptureErrorKind::Corrupt(what))
    }

    /// The stream ended (or failed) before the record (or header: `cut`) at the current offset
    /// was complete.
    fn end_of_input(&mut self, cut: Cut) -> Result<Step, CaptureError> {
        let offset = self.offset();
        let partial = self.end > self.pos;
        self.done = true;
        match self.read_error.take() {
            // A gzip stream cut short: the capture inside it is truncated.
            Some(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(self.fail(offset, CaptureErrorKind::Truncated(cut)))
            }
            // The capture in the stream is cut short whatever follows it.
            Some(e) if is_trailing_data(&e) && partial => {
                Err(self.fail(offset, CaptureErrorKind::Truncated(cut)))
            }
            Some(e) if is_trailing_data(&e) => {
                Err(self.fail(offset, CaptureErrorKind::Trailing(e.to_string())))
            }
            Some(e) => Err(self.fail(offset, CaptureErrorKind::Io(e))),
            None if partial => Err(self.fail(offset, CaptureErrorKind::Truncated(cut))),
            None => Ok(Step::End),
        }
    }

    /// Damage in the pcapng block at `offset`, the current offset: a length that cannot be, a
    /// trailing length that differs, a length running past the end of the file, a packet block
    /// whose fields contradict its length, a section header whose byte-order magic is invalid.
    /// The blocks after it are looked for as the next 4-byte aligned place, `from` bytes from
    /// the block's start or more and within [`NG_RESYNC_WINDOW`] of that, where a credible
    /// block (see [`ng_credible`]) is followed by another or ends the file. The bytes passed
    /// over are counted in the stats, with the first damage; without such a place it is the
    /// error it always was (`Truncated` for a length running past the end).
    ///
    /// `section` is the byte order of a damaged section header (its magic's, or the current
    /// one's when the magic is what is damaged): its section starts all the same, without
    /// interfaces, so the place looked for is in that byte order and a packet block cannot be
    /// one before an interface block. A section header found as the place (or after it) is
    /// read as one: its byte order and interfaces replace the current ones.
    #[cold]
    #[inline(never)]
    fn ng_damaged(
        &mut self,
        offset: u64,
        damage: Damage,
        section: Option<Endian>,
        from: usize,
    ) -> Result<Step, CaptureError> {
        let (endian, interfaces) = match (section, self.format) {
            (Some(e), _) => (e, 0),
            (None, Format::PcapNg { endian } | Format::PcapNgLost { endian }) => {
                (endian, self.interfaces.len())
            }
            (None, Format::Pcap { endian, .. }) => (endian, 0),
        };
        // A damaged block that reads as an interface block keeps its place among the
        // section's interfaces, so that those after it keep their ids.
        let lost_interface = section.is_none()
            && array::<4>(&self.buf, self.pos).map(|b| endian.u32(b)) == Some(NG_IDB);
        let interfaces = interfaces + usize::from(lost_interface);
        let _ = self.fill(from.saturating_add(2 * NG_RESYNC_WINDOW));
        let avail = self.buf.get(self.pos..self.end).unwrap_or_default();
        let at_end = self.eof;
        let limit = avail.len().min(from.saturating_add(NG_RESYNC_WINDOW));
        let find = |endian: Endian, limit: usize| {
            (from..limit).step_by(4).find(|&at| {
                let Some((len, e, n)) = ng_credible(avail, at, endian, interfaces) else {
                    return false;
                };
                let next = at + len;
                (at_end && next == avail.len()) || ng_credible(avail, next, e, n).is_some()
            })
        };
        let mut found = find(endian, limit).map(|at| (at, endian));
        // A section header whose byte-order magic is damaged: its section may be in either
        // order; the nearer place wins.
        if damage == Damage::ByteOrder {
            let other = match endian {
                Endian::Little => Endian::Big,
                Endian::Big => Endian::Little,
            };
            let nearer = found.map_or(limit, |(at, _)| at);
            found = find(other, nearer).map(|at| (at, other)).or(found);
        }
        let Some((skip, endian)) = found else {
            return match damage {
                Damage::BeyondEnd { .. } if section.is_some() => {
                    self.end_of_input(Cut::SectionHeader)
                }
                Damage::BeyondEnd { .. } => self.end_of_input(Cut::Record),
                _ => Err(self.corrupt(offset, damage.to_string())),
            };
        };
        if section.is_some() {
            self.meta.sections += 1;
            self.format = Format::PcapNg { endian };
            if damage != Damage::ByteOrder {
                self.ng_orders |= match endian {
                    Endian::Little => 1,
                    Endian::Big => 2,
                };
            }
            self.interfaces.clear();
        }
        if lost_interface && self.interfaces.len() < MAX_INTERFACES {
            self.interfaces.push(Interface {
                link: LinkType(LOST_LINK),
                snaplen: 0,
                conv: TsConv::from_tsresol(6),
                offset_ns: 0,
            });
            if let Format::PcapNg { endian } = self.format {
                self.format = Format::PcapNgLost { endian };
            }
        }
        self.consume(skip);
        let st = &mut self.stats;
        st.damaged = st.damaged.saturating_add(1);
        st.damaged_bytes = st.damaged_bytes.saturating_add(skip as u64);
        st.first_damage.get_or_insert((offset, damage));
        Ok(Step::Skip)
    }

    /// Whether a record of `len` bytes at the current offset is followed by a plausible record
    /// header, its time within a day of `shape.secs`. A record that ends the file (or that the
    /// file ends within) is not: the end of a file cut short is no evidence either way.
    fn pcap_next_fits(&mut self, len: usize, shape: RecordShape) -> bool {
        let RecordShape { endian, frac_ns, record_header, snaplen, secs } = shape;
        let end = record_header + len;
        if !self.fill(end + 16) {
            return false;
        }
        array::<16>(&self.buf, self.pos + end)
            .and_then(|h| pcap_header_plausible(&h, endian, frac_ns, snaplen))
            .is_some_and(|(_, s)| (s - secs).abs() <= 86_400)
    }

    /// A record whose captured length cannot be, or differs from its original length other
    /// than by the snaplen's cut: the length to read it with. The original length when the
    /// next record starts after that but not after the captured length (a damaged captured
    /// length, repaired and counted); otherwise the captured length, as any record's, when it
    /// can be; `None` when it cannot be: damage to pass over.
    fn pcap_odd_len(
        &mut self,
        offset: u64,
        caplen: u32,
        orig_len: u32,
        shape: RecordShape,
    ) -> Option<usize> {
        if caplen as usize > MAX_BLOCK_LEN || caplen > pcap_caplen_max(shape.snaplen) {
            return self.pcap_repair(offset, caplen, orig_len, shape);
        }
        if self.pcap_next_fits(caplen as usize, shape) {
            return Some(caplen as usize);
        }
        self.pcap_repair(offset, caplen, orig_len, shape).or(Some(caplen as usize))
    }

    /// The original length of a record whose captured length is damaged, when a record starts
    /// right after it; counted as repaired.
    #[cold]
    #[inline(never)]
    fn pcap_repair(
        &mut self,
        offset: u64,
        caplen: u32,
        orig_len: u32,
        shape: RecordShape,
    ) -> Option<usize> {
        let len = orig_len as usize;
        if orig_len == caplen
            || len > MAX_BLOCK_LEN
            || orig_len > pcap_caplen_max(shape.snaplen)
            || !self.pcap_next_fits(len, shape)
        {
            return None;
        }
        let st = &mut self.stats;
        st.repaired = st.repaired.saturating_add(1);
        st.first_damage.get_or_insert((offset, Damage::RecordLengthRepaired(caplen, orig_len)));
        Some(len)
    }

    /// A pcap record header at `offset` whose length cannot be (a damaged or misaligned
    /// file): the records after it are looked for, as the next offset within
    /// [`PCAP_RESYNC_WINDOW`] where two plausible headers follow each other (or one ends the
    /// file), their times within a day. The bytes passed over are counted in the stats, with
    /// the first such place; without a next record it is the error it always was.
    #[cold]
    #[inline(never)]
    fn pcap_damaged(
        &mut self,
        offset: u64,
        caplen: u32,
        endian: Endian,
        frac_ns: i64,
        record_header: usize,
        snaplen: u32,
    ) -> Result<Step, CaptureError> {
        let _ = self.fill(PCAP_RESYNC_WINDOW);
        let avail = self.buf.get(self.pos..self.end).unwrap_or_default();
        let at_end = self.eof;
        let header = |at: usize| {
            let h = array::<16>(avail, at)?;
            pcap_header_plausible(&h, endian, frac_ns, snaplen)
        };
        let found = (1..avail.len().min(PCAP_RESYNC_WINDOW)).find(|&at| {
            let Some((len, secs)) = header(at) else { return false };
            let next = at + record_header + len;
            match header(next) {
                Some((_, secs2)) => (secs2 - secs).abs() <= 86_400,
                // The last record of the file.
                None => at_end && next == avail.len(),
            }
        });
        let Some(skip) = found else {
            let what = if len_exceeds(caplen) {
                format!("record length {caplen} exceeds the limit of {MAX_BLOCK_LEN} bytes")
            } else if snaplen > PCAP_STANDARD_MAX {
                format!(
                    "record length {caplen} is implausible: above the file's snaplen of \
                     {snaplen} bytes"
                )
            } else {
                format!(
                    "record length {caplen} is implausible: above the usual maximum of \
                     {PCAP_STANDARD_MAX} bytes (the file's snaplen is {snaplen})"
                )
            };
            return Err(self.corrupt(offset, what));
        };
        self.consume(skip);
        let st = &mut self.stats;
        st.damaged = st.damaged.saturating_add(1);
        st.damaged_bytes = st.damaged_bytes.saturating_add(skip as u64);
        st.first_damage.get_or_insert((offset, Damage::RecordLength(caplen)));
        Ok(Step::Skip)
    }

    fn step(&mut self) -> Result<Step, CaptureError> {
        if self.done {
            return Ok(Step::End);
        }
        match self.format {
            Format::Pcap { endian, frac_ns, record_header, link, snaplen } => {
                self.pcap_record(endian, frac_ns, record_header, link, snaplen)
            }
            Format::PcapNg { endian } => self.ng_block::<false>(endian),
            Format::PcapNgLost { endian } => self.ng_block::<true>(endian),
        }
    }

    #[inline]
    fn pcap_record(
        &mut self,
        endian: Endian,
        frac_ns: i64,
        record_header: usize,
        link: LinkType,
        snaplen: u32,
    ) -> Result<Step, CaptureError> {
        if !self.fill(record_header) {
            return self.end_of_input(Cut::Record);
        }
        let offset = self.offset();
        let Some(h) = array::<16>(&self.buf, self.pos) else {
            return self.end_of_input(Cut::Record);
        };
        let (secs, frac, caplen, orig_len) = pcap_record_fields(&h, endian);
        let len = caplen as usize;
        // A length that cannot be is checked before the record is looked for: a file that
        // ends before such a length is damaged, not cut. One that is neither the whole packet
        // nor a cut at the snaplen is checked against where the next record starts.
        if len > MAX_BLOCK_LEN
            || caplen > pcap_caplen_max(snaplen)
            || (caplen != orig_len && (caplen > orig_len || caplen != snaplen))
        {
            return self.pcap_odd_record(offset);
        }
        self.pcap_take(offset, secs, frac, frac_ns, record_header, len, orig_len, link)
    }

    /// The record of `len` bytes after the header at the current offset, once its length is
    /// settled.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn pcap_take(
        &mut self,
        offset: u64,
        secs: i64,
        frac: i64,
        frac_ns: i64,
        record_header: usize,
        len: usize,
        orig_len: u32,
        link: LinkType,
    ) -> Result<Step, CaptureError> {
        let total = record_header + len;
        if !self.fill(total) {
            return self.end_of_input(Cut::Record);
        }
        let start = self.pos + record_header;
        self.consume(total);
        // secs < 2^32 and frac < 2^32: secs × 10^9 + frac × 1000 stays below 2^63.
        let ts =
            secs.saturating_mul(NANOS_PER_SEC as i64).saturating_add(frac.saturating_mul(frac_ns));
        Ok(Step::Packet(Record {
            start,
            len,
            ts: Timestamp(ts),
            link,
            orig_len: orig_len.max(len as u32),
            offset,
        }))
    }

    /// The record at the current offset (`offset`), whose length is odd (see `pcap_record`):
    /// read with the length [`Self::pcap_odd_len`] settles on, or passed over as damage. What
    /// it needs is read again from the file's format and the record's header, which keeps the
    /// common path's call short.
    #[cold]
    #[inline(never)]
    fn pcap_odd_record(&mut self, offset: u64) -> Result<Step, CaptureError> {
        let Format::Pcap { endian, frac_ns, record_header, link, snaplen } = self.format else {
            return Err(self.corrupt(offset, "a pcap record outside a pcap file".to_string()));
        };
        let Some(h) = array::<16>(&self.buf, self.pos) else {
            return self.end_of_input(Cut::Record);
        };
        let (secs, frac, caplen, orig_len) = pcap_record_fields(&h, endian);
        let shape = RecordShape { endian, frac_ns, record_header, snaplen, secs };
        match self.pcap_odd_len(offset, caplen, orig_len, shape) {
            Some(len) => {
                self.pcap_take(offset, secs, frac, frac_ns, record_header, len, orig_len, link)
            }
            None => self.pcap_damaged(offset, caplen, endian, frac_ns, record_header, snaplen),
        }
    }

    /// Reads a section header block at the current offset and starts its section.
    fn ng_section_header(&mut self, first: bool) -> Result<Step, CaptureError> {
        let offset = self.offset();
        if !self.fill(12) {
            return self.end_of_input(Cut::SectionHeader);
        }
        let h: [u8; 12] = array(&self.buf, self.pos).unwrap_or_default();
        let endian = match array::<4>(&h, 8) {
            Some(NG_BOM_BE) => Endian::Big,
            Some(NG_BOM_LE) => Endian::Little,
            _ if first => return Err(self.fail(offset, CaptureErrorKind::NotACapture)),
            _ => {
                let current = match self.format {
                    Format::PcapNg { endian }
                    | Format::PcapNgLost { endian }
                    | Format::Pcap { endian, .. } => endian,
                };
                return self.ng_damaged(offset, Damage::ByteOrder, Some(current), 4);
            }
        };
        let len = endian.u32_at(&h, 4) as usize;
        // Checked before anything is read or allocated for it.
        if !ng_len_ok(len, NG_SHB_MIN) {
            let damage =
                Damage::BlockLength { len: len as u32, min: NG_SHB_MIN as u32, section: true };
            if first {
                return Err(self.corrupt(offset, damage.to_string()));
            }
            return self.ng_damaged(offset, damage, Some(endian), 4);
        }
        if !self.fill(len) {
            if first {
                return self.end_of_input(Cut::SectionHeader);
            }
            return self.ng_damaged(offset, Damage::BeyondEnd { len: len as u32 }, Some(endian), 4);
        }
        if let Some(damage) = self.ng_trailer_differs(endian, len) {
            if first {
                return Err(self.corrupt(offset, damage.to_string()));
            }
            return self.ng_damaged(offset, damage, Some(endian), 4);
        }
        let block = self.ng_current_block(len);
        let major = endian.u16(array(block, 12).unwrap_or_default());
        let minor = endian.u16(array(block, 14).unwrap_or_default());
        if major != 1 {
            return Err(self.corrupt(offset, format!("unsupported pcapng version {major}.{minor}")));
        }
        let block = self.buf.get(self.pos..self.pos.saturating_add(len)).unwrap_or_default();
        let opts = block.get(NG_SHB_MIN - 4..len.saturating_sub(4)).unwrap_or_default();
        self.meta.sections += 1;
        for (code, value) in options(opts, endian) {
            let slot = match code {
                OPT_SHB_HARDWARE => &mut self.meta.hardware,
                OPT_SHB_OS => &mut self.meta.os,
                OPT_SHB_USERAPPL => &mut self.meta.application,
                _ => continue,
            };
            // The first section that says is the one shown.
            slot.get_or_insert_with(|| text_option(value));
        }
        self.consume(len);
        self.format = Format::PcapNg { endian };
        self.ng_orders |= match endian {
            Endian::Little => 1,
            Endian::Big => 2,
        };
        self.interfaces.clear();
        Ok(Step::Skip)
    }

    /// Whether the trailing length of the block of `len` bytes at the current offset (buffered
    /// whole) differs from `len`: the damage it is.
    #[inline]
    fn ng_trailer_differs(&self, endian: Endian, len: usize) -> Option<Damage> {
        let trailer = array(&self.buf, self.pos + len - 4).map(|b| endian.u32(b));
        if trailer == Some(len as u32) {
            return None;
        }
        Some(Damage::TrailingLength { len: len as u32, trailer: trailer.unwrap_or(0) })
    }

    /// The block of `len` bytes at the current offset, once it is buffered whole.
    #[inline]
    fn ng_current_block(&self, len: usize) -> &[u8] {
        self.buf.get(self.pos..self.pos.saturating_add(len)).unwrap_or_default()
    }

    /// The block at the current offset; `LOST`: the section has a damaged interface block's
    /// placeholder, whose packets are skipped (counted in `bad_records`).
    #[inline]
    fn ng_block<const LOST: bool>(&mut self, endian: Endian) -> Result<Step, CaptureError> {
        if !self.fill(8) {
            return self.end_of_input(Cut::Record);
        }
        let offset = self.offset();
        let h: [u8; 8] = array(&self.buf, self.pos).unwrap_or_default();
        if array::<4>(&h, 0) == Some(NG_SHB) {
            return self.ng_section_header(false);
        }
        let block_type = endian.u32_at(&h, 0);
        let len = endian.u32_at(&h, 4) as usize;
        // A block of a type not known here is skipped whole: any length that can be will do.
        let min = ng_min_len(block_type).unwrap_or(NG_BLOCK_MIN);
        if !ng_len_ok(len, min) {
            let damage = Damage::BlockLength { len: len as u32, min: min as u32, section: false };
            return self.ng_damaged(offset, damage, None, 4);
        }
        if !self.fill(len) {
            return self.ng_damaged(offset, Damage::BeyondEnd { len: len as u32 }, None, 4);
        }
        if let Some(damage) = self.ng_trailer_differs(endian, len) {
            return self.ng_damaged(offset, damage, None, 4);
        }
        // Only now: buffering may have moved the block to the front of the buffer.
        let start = self.pos;
        let block = self.buf.get(start..start + len).unwrap_or_default();
        let parsed = match block_type {
            NG_EPB | NG_OPB => parse_packet_block(block, endian, block_type, &self.interfaces),
            NG_SPB => parse_simple_packet_block(block, endian, &self.interfaces),
            NG_IDB => {
                let (ifc, meta) = parse_interface(block, endian);
                let (section, id) = (self.meta.sections, self.interfaces.len());
                self.meta.add_interface(InterfaceMeta { section, id, ..meta });
                Parsed::Interface(ifc)
            }
            _ => Parsed::Skipped,
        };
        let step = match parsed {
            Parsed::Packet { link, .. } if LOST && link.0 == LOST_LINK => {
                self.stats.bad_records += 1;
                Step::Skip
            }
            Parsed::Packet { data, len: caplen, ts, link, orig_len } => Step::Packet(Record {
                start: start + data,
                len: caplen,
                ts,
                link,
                orig_len,
                offset,
            }),
            Parsed::Interface(ifc) => {
                if self.interfaces.len() >= MAX_INTERFACES {
                    return Err(self.corrupt(
                        offset,
                        format!("more than {MAX_INTERFACES} interfaces in one section"),
                    ));
                }
                self.interfaces.push(ifc);
                Step::Skip
            }
            Parsed::Skipped => {
                self.stats.skipped_blocks += 1;
                Step::Skip
            }
            Parsed::UnknownInterface => {
                self.stats.bad_records += 1;
                Step::Skip
            }
            // The block's length holds (its trailing copy agrees): the next one is looked for
            // from its end.
            Parsed::Corrupt(what) => {
                return self.ng_damaged(offset, Damage::Packet(what), None, len)
            }
        };
        self.consume(len);
        Ok(step)
    }
}

fn len_exceeds(caplen: u32) -> bool {
    caplen as usize > MAX_BLOCK_LEN
}

/// A pcap record header's seconds, fraction, captured length and original length.
#[inline(always)]
fn pcap_record_fields(h: &[u8; 16], endian: Endian) -> (i64, i64, u32, u32) {
    let secs = i64::from(endian.u32_at(h, 0));
    let frac = i64::from(endian.u32_at(h, 4));
    (secs, frac, endian.u32_at(h, 8), endian.u32_at(h, 12))
}

/// What a pcap record's neighbours are checked against: the file's byte order, timestamp
/// unit, record header length and snaplen, and the record's own seconds.
#[derive(Clone, Copy)]
struct RecordShape {
    endian: Endian,
    frac_ns: i64,
    record_header: usize,
    snaplen: u32,
    secs: i64,
}

/// How far past a damaged pcap record header the next plausible one is looked for.
const PCAP_RESYNC_WINDOW: usize = 4 << 20;

/// How far past damage in a pcapng block the next credible block is looked for.
const NG_RESYNC_WINDOW: usize = PCAP_RESYNC_WINDOW;

/// The link type of the interface a damaged interface block declared, whose description is
/// lost: its packets are skipped as if it were undeclared, but the interfaces after it keep
/// their ids. pcapng link types are 16 bits, so no interface block declares it.
const LOST_LINK: u32 = u32::MAX;

/// The least length of a pcapng block of a type known here (the section header aside).
#[inline]
fn ng_min_len(block_type: u32) -> Option<usize> {
    match block_type {
        NG_EPB | NG_OPB => Some(NG_PACKET_MIN),
        NG_SPB => Some(NG_SPB_MIN),
        NG_IDB => Some(NG_IDB_MIN),
        NG_NRB | NG_ISB | NG_SJE | NG_DSB | NG_CB | NG_DCB => Some(NG_BLOCK_MIN),
        _ => None,
    }
}

/// Whether a pcapng block length can be, for a block whose type needs at least `min` bytes.
#[inline]
fn ng_len_ok(len: usize, min: usize) -> bool {
    len <= MAX_BLOCK_LEN && len >= min && len % 4 == 0
}

/// Whether the bytes of `avail` at `at` start a credible pcapng block, when looking for one
/// in damage within a section of byte order `endian` that has declared `interfaces`
/// interfaces: a section header with a valid byte-order magic and version 1 (in its own byte
/// order), or a block of a known type (packet, interface, name resolution, statistics,
/// decryption secrets, systemd journal, custom); a length that can be for its type; the whole
/// block in `avail`, its trailing length equal to its length; for a packet block, an interface
/// the section declared and a captured length within the block. Returns the block's length and
/// the byte order and interfaces of what follows it.
fn ng_credible(
    avail: &[u8],
    at: usize,
    endian: Endian,
    interfaces: usize,
) -> Option<(usize, Endian, usize)> {
    let h = array::<12>(avail, at)?;
    let trailer_is = |e: Endian, len: usize| {
        let end = at.checked_add(len)?;
        array::<4>(avail, end.checked_sub(4)?).map(|t| e.u32(t) == len as u32)
    };
    if array::<4>(&h, 0) == Some(NG_SHB) {
        let e = match array::<4>(&h, 8)? {
            NG_BOM_BE => Endian::Big,
            NG_BOM_LE => Endian::Little,
            _ => return None,
        };
        let len = e.u32_at(&h, 4) as usize;
        let major = e.u16(array(avail, at.checked_add(12)?)?);
        let ok = ng_len_ok(len, NG_SHB_MIN) && major == 1 && trailer_is(e, len)?;
        return ok.then_some((len, e, 0));
    }
    let block_type = endian.u32_at(&h, 0);
    let len = endian.u32_at(&h, 4) as usize;
    let min = ng_min_len(block_type)?;
    if !ng_len_ok(len, min) || !trailer_is(endian, len)? {
        return None;
    }
    let packet_fits = || {
        let caplen = endian.u32(array(avail, at.checked_add(20)?)?) as usize;
        Some(caplen <= len - NG_PACKET_MIN)
    };
    let ok = match block_type {
        NG_EPB => (endian.u32_at(&h, 8) as usize) < interfaces && packet_fits()?,
        NG_OPB => usize::from(endian.u16(array(&h, 8)?)) < interfaces && packet_fits()?,
        NG_SPB => interfaces > 0,
        _ => true,
    };
    let after = if block_type == NG_IDB { interfaces + 1 } else { interfaces };
    ok.then_some((len, endian, after))
}

/// Whether `h` (a pcap record header's first 16 bytes) could be a record's when looking for
/// one in damage: a time after 1970 with a fraction of a second below one second in the file's
/// unit, a captured length above 0, within the file's bounds and no more than the original
/// length (zeros, the usual filling of a damaged file, are no record). Returns the captured
/// length and the seconds.
fn pcap_header_plausible(
    h: &[u8; 16],
    endian: Endian,
    frac_ns: i64,
    snaplen: u32,
) -> Option<(usize, i64)> {
    let frac = i64::from(endian.u32_at(h, 4));
    let caplen = endian.u32_at(h, 8);
    let orig_len = endian.u32_at(h, 12);
    let secs = i64::from(endian.u32_at(h, 0));
    let plausible = secs > 0
        && frac.saturating_mul(frac_ns) < NANOS_PER_SEC as i64
        && caplen > 0
        && caplen <= pcap_caplen_max(snaplen)
        && caplen <= orig_len
        && orig_len <= pcap_caplen_max(snaplen).max(1 << 20);
    plausible.then_some((caplen as usize, secs))
}

/// The largest captured length a record of a pcap file with this snaplen can plausibly have.
/// Writers that cut at the snaplen sometimes write a little more than it, so the snaplen
/// alone is too strict, and one of 0 says nothing; but no real packet is above both it and
/// [`PCAP_STANDARD_MAX`]. Such a length is a misaligned or damaged header, and calling it a
/// truncated record would pass off the damage as a harmless cut at the end of the file (and
/// buffer the file's remaining bytes looking for its end).
fn pcap_caplen_max(snaplen: u32) -> u32 {
    snaplen.max(PCAP_STANDARD_MAX)
}

fn pcap_variant(magic: u32) -> Option<u32> {
    matches!(magic, PCAP_MAGIC_US | PCAP_MAGIC_NS | PCAP_MAGIC_MODIFIED).then_some(magic)
}

/// What one pcapng block contributes; computed while the block is borrowed.
enum Parsed {
    Packet {
        /// Offset of the packet data within the block.
        data: usize,
        len: usize,
        ts: Timestamp,
        link: LinkType,
        orig_len: u32,
    },
    Interface(Interface),
    Skipped,
    UnknownInterface,
    Corrupt(&'static str),
}

/// An enhanced (or obsolete) packet block; `block` is whole and at least `NG_PACKET_MIN` long.
#[inline]
fn parse_packet_block(
    block: &[u8],
    endian: Endian,
    block_type: u32,
    interfaces: &[Interface],
) -> Parsed {
    let Some(h) = array::<NG_PACKET_DATA>(block, 0) else {
        return Parsed::Corrupt("packet block too short");
    };
    let interface = if block_type == NG_OPB {
        u32::from(endian.u16(array(&h, 8).unwrap_or_default()))
    } else {
        endian.u32_at(&h, 8)
    };
    let units = (u64::from(endian.u32_at(&h, 12)) << 32) | u64::from(endian.u32_at(&h, 16));
    let caplen = endian.u32_at(&h, 20);
    let orig_len = endian.u32_at(&h, 24);
    let room = block.len().saturating_sub(NG_PACKET_MIN);
    let len = caplen as usize;
    if len > room {
        return Parsed::Corrupt("captured length exceeds the packet block");
    }
    let Some(ifc) = interfaces.get(interface as usize) else {
        return Parsed::UnknownInterface;
    };
    Parsed::Packet {
        data: NG_PACKET_DATA,
        len,
        ts: ifc.timestamp(units),
        link: ifc.link,
        orig_len: orig_len.max(caplen),
    }
}

/// A simple packet block: interface 0, no timestamp (given as 0, the epoch), and the captured
/// length is whatever the block holds up to the original length and the snaplen.
fn parse_simple_packet_block(block: &[u8], endian: Endian, interfaces: &[Interface]) -> Parsed {
    let Some(ifc) = interfaces.first() else {
        return Parsed::UnknownInterface;
    };
    let orig_len = endian.u32(array(block, 8).unwrap_or_default());
    let room = block.len().saturating_sub(NG_SPB_MIN);
    let mut len = room.min(orig_len as usize);
    if ifc.snaplen != 0 {
        len = len.min(ifc.snaplen as usize);
    }
    Parsed::Packet {
        data: NG_SPB_DATA,
        len,
        ts: Timestamp(0),
        link: ifc.link,
        orig_len: orig_len.max(u32::try_from(len).unwrap_or(u32::MAX)),
    }
}

impl CaptureMeta {
    fn add_interface(&mut self, m: InterfaceMeta) {
        self.interfaces_total += 1;
        if self.interfaces.len() < META_INTERFACES_MAX {
            self.interfaces.push(m);
        }
    }
}

/// The options of a pcapng block: `opts` is what follows the block's fixed fields, without
/// the trailing length. A malformed option ends the list rather than the capture.
fn options(mut opts: &[u8], endian: Endian) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let oh = array::<4>(opts, 0)?;
        let code = endian.u16(array(&oh, 0).unwrap_or_default());
        let len = usize::from(endian.u16(array(&oh, 2).unwrap_or_default()));
        let value = opts.get(4..4 + len)?;
        if code == OPT_END {
            return None;
        }
        let padded = (len + 3) & !3;
        opts = opts.get(4 + padded..).unwrap_or_default();
        Some((code, value))
    })
}

/// An interface description block; `block` is whole and at least `NG_IDB_MIN` long. Malformed
/// options end the option list rather than the capture: the interface is still usable.
fn parse_interface(block: &[u8], endian: Endian) -> (Interface, InterfaceMeta) {
    let link = LinkType(u32::from(endian.u16(array(block, 8).unwrap_or_default())));
    let snaplen = endian.u32(array(block, 12).unwrap_or_default());
    let mut tsresol = 6u8;
    let mut tsoffset = 0i64;
    let mut meta = InterfaceMeta { link, snaplen, ..InterfaceMeta::default() };
    let opts = block.get(16..block.len().saturating_sub(4)).unwrap_or_default();
    for (code, value) in options(opts, endian) {
        match code {
            OPT_IF_TSRESOL => {
                if let Some(&v) = value.first() {
                    tsresol = v;
                }
            }
            OPT_IF_TSOFFSET => {
                if let Some(v) = array::<8>(value, 0) {
                    tsoffset = endian.i64(v);
                }
            }
            OPT_IF_NAME => meta.name = Some(text_option(value)),
            OPT_IF_DESCRIPTION => meta.description = Some(text_option(value)),
            // A filter's first byte says its kind: 0 is a libpcap filter string.
            OPT_IF_FILTER if value.first() == Some(&0) => {
                meta.filter = Some(text_option(value.get(1..).unwrap_or_default()));
            }
            OPT_IF_OS => meta.os = Some(text_option(value)),
            _ => {}
        }
    }
    let ifc = Interface {
        link,
        snaplen,
        conv: TsConv::from_tsresol(tsresol),
        offset_ns: i128::from(tsoffset).saturating_mul(i128::from(NANOS_PER_SEC)),
    };
    (ifc, meta)
}

/// A text option as it can be shown: valid UTF-8 or not, at most [`META_TEXT_MAX`]
/// characters, control characters escaped (a crafted file must not drive the terminal).
fn text_option(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let text = text.trim_end_matches('\0');
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == META_TEXT_MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The whole of `file` mapped, read-only, if it is a regular file that is not empty (and the
/// system maps files at all); None otherwise, and the file is read instead.
fn map(file: &File) -> Option<Mmap> {
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() == 0 {
        return None;
    }
    // SAFETY: the mapping is only read. Its bytes are those of the file, which this program
    // never writes; the module documentation says what another writer can do.
    let map = unsafe { Mmap::map(file) }.ok()?;
    // Advice again: more read-ahead where it is taken.
    #[cfg(unix)]
    let _ = map.advise(memmap2::Advice::Sequential);
    Some(map)
}

impl std::fmt::Debug for FileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader")
            .field("name", &self.name)
            .field("offset", &self.offset())
            .field("format", &self.format)
            .field("interfaces", &self.interfaces.len())
            .field("next_index", &self.next_index)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl PacketSource for FileReader {
    fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        // The packet the previous call returned is no longer borrowed.
        if let Some(now) = self.buf.release_below(self.pos) {
            self.shrank(now);
        }
        let rec = loop {
            match self.step()? {
                Step::Packet(rec) => break rec,
                Step::Skip => continue,
                Step::End => return Ok(None),
            }
        };
        let end = rec.start.saturating_add(rec.len);
        if end > self.buf.len() {
            // Unreachable by construction (every record was buffered whole); kept so that a
            // mistake shows as an error instead of a panic.
            return Err(self.corrupt(rec.offset, "record outside the read buffer".to_string()));
        }
        let index = self.next_index;
        self.next_index = self.next_index.saturating_add(1);
        self.stats.records += 1;
        Ok(Some(Packet {
            index,
            ts: rec.ts,
            link: rec.link,
            orig_len: rec.orig_len,
            data: self.buf.get(rec.start..end).unwrap_or_default(),
            file_offset: rec.offset,
        }))
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_next_index(&mut self, n: u64) {
        FileReader::set_next_index(self, n);
    }

    fn stats(&self) -> CaptureStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    /// A packet as the tests expect (and observe) it.
    #[derive(Clone, Debug, PartialEq, Eq)]
    struct Pkt {
        index: u64,
        ts: i64,
        link: u32,
        orig_len: u32,
        data: Vec<u8>,
        offset: u64,
    }

    /// A capture built by hand, with what a reader should return for it.
    struct Cap {
        e: Endian,
        bytes: Vec<u8>,
        /// Expected packets with the stream offset where their record ends.
        packets: Vec<(Pkt, usize)>,
        /// Offsets where a record or block ends (a clean place to cut the file).
        bounds: Vec<usize>,
    }

    impl Cap {
        fn new(e: Endian) -> Cap {
            Cap { e, bytes: Vec::new(), packets: Vec::new(), bounds: Vec::new() }
        }
        fn u16(&mut self, v: u16) -> &mut Self {
            let b = match self.e {
                Endian::Little => v.to_le_bytes(),
                Endian::Big => v.to_be_bytes(),
            };
            self.bytes.extend_from_slice(&b);
            self
        }
        fn u32(&mut self, v: u32) -> &mut Self {
            let b = match self.e {
                Endian::Little => v.to_le_bytes(),
                Endian::Big => v.to_be_bytes(),
            };
            self.bytes.extend_from_slice(&b);
            self
        }
        fn raw(&mut self, b: &[u8]) -> &mut Self {
            self.bytes.extend_from_slice(b);
            self
        }
        fn bound(&mut self) {
            self.bounds.push(self.bytes.len());
        }
        fn expect(&mut self, ts: i64, link: u32, orig_len: u32, data: &[u8], offset: usize) {
            let index = self.packets.len() as u64 + 1;
            let p = Pkt { index, ts, link, orig_len, data: data.to_vec(), offset: offset as u64 };
            let end = self.bytes.len();
            self.packets.push((p, end));
        }

        fn pcap_header(e: Endian, magic: u32, link: u32, snaplen: u32) -> Cap {
            let mut c = Cap::new(e);
            c.u32(magic).u16(2).u16(4).u32(0).u32(0).u32(snaplen).u32(link);
            c.bound();
            c
        }
        #[allow(clippy::too_many_arguments)]
        fn pcap_record(&mut self, modified: bool, secs: u32, frac: u32, data: &[u8], orig: u32) {
            self.u32(secs).u32(frac).u32(data.len() as u32).u32(orig);
            if modified {
                self.u32(3).u16(0x0800).raw(&[0, 0]);
            }
            self.raw(data);
            self.bound();
        }

        /// A pcapng block with `body` padded to 4 bytes.
        fn block(&mut self, btype: u32, body: &[u8]) -> usize {
            let off = self.bytes.len();
            let padded = (body.len() + 3) & !3;
            let len = (12 + padded) as u32;
            self.u32(btype).u32(len).raw(body);
            self.raw(&vec![0; padded - body.len()]);
            self.u32(len);
            self.bound();
            off
        }
        fn body(&self) -> Cap {
            Cap::new(self.e)
        }
        fn shb(&mut self) {
            let mut b = self.body();
            b.u32(0x1A2B_3C4D).u16(1).u16(0).u32(u32::MAX).u32(u32::MAX);
            b.u16(4).u16(5).raw(b"test\0\0\0\0").u16(0).u16(0);
            self.block(0x0A0D_0D0A, &b.bytes);
        }
        fn idb(&mut self, link: u16, snaplen: u32, tsresol: Option<u8>, tsoffset: Option<i64>) {
            let mut b = self.body();
            b.u16(link).u16(0).u32(snaplen);
            // An option we do not use comes first, to check the walk over the list.
            b.u16(2).u16(3).raw(b"et0\0");
            if let Some(r) = tsresol {
                b.u16(9).u16(1).raw(&[r, 0, 0, 0]);
            }
            if let Some(o) = tsoffset {
                b.u16(14).u16(8);
                let bytes = match self.e {
                    Endian::Little => o.to_le_bytes(),
                    Endian::Big => o.to_be_bytes(),
                };
                b.raw(&bytes);
            }
            b.u16(0).u16(0);
            self.block(1, &b.bytes);
        }
        fn epb(&mut self, iface: u32, units: u64, data: &[u8], orig: u32) -> usize {
            let mut b = self.body();
            b.u32(iface).u32((units >> 32) as u32).u32(units as u32);
            b.u32(data.len() as u32).u32(orig).raw(data);
            b.raw(&vec![0; ((data.len() + 3) & !3) - data.len()]);
            // An epb_flags option after the data.
            b.u16(2).u16(4).u32(1).u16(0).u16(0);
            self.block(6, &b.bytes)
        }
        fn opb(&mut self, iface: u16, units: u64, data: &[u8], orig: u32) -> usize {
            let mut b = self.body();
            b.u16(iface).u16(0).u32((units >> 32) as u32).u32(units as u32);
            b.u32(data.len() as u32).u32(orig).raw(data);
            self.block(2, &b.bytes)
        }
        fn spb(&mut self, orig: u32, data: &[u8]) -> usize {
            let mut b = self.body();
            b.u32(orig).raw(data);
            self.block(3, &b.bytes)
        }
    }

    fn reader(bytes: &[u8]) -> Result<FileReader, CaptureError> {
        FileReader::from_reader("test.pcap".to_string(), Box::new(Cursor::new(bytes.to_vec())))
    }

    fn owned(p: &Packet<'_>) -> Pkt {
        Pkt {
            index: p.index,
            ts: p.ts.0,
            link: p.link.0,
            orig_len: p.orig_len,
            data: p.data.to_vec(),
            offset: p.file_offset,
        }
    }

    /// Every packet, then the error that ended the stream (if any). Checks that the reader
    /// stays at `None` afterwards.
    fn drain(rd: &mut FileReader) -> (Vec<Pkt>, Option<CaptureError>) {
        let mut got = Vec::new();
        let mut err = None;
        loop {
            match rd.next_packet() {
                Ok(Some(p)) => got.push(owned(&p)),
                Ok(None) => break,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
            assert!(got.len() < 1_000_000, "reader does not terminate");
        }
        for _ in 0..3 {
            assert!(matches!(rd.next_packet(), Ok(None)));
        }
        (got, err)
    }

    /// Every packet of a capture, the error that ended it, and the reader's totals.
    type ReadOut = (Vec<Pkt>, Option<CaptureError>, CaptureStats);

    /// A way to read a capture's bytes: as a stream, compressed, from a file.
    type ReadWith = fn(&[u8]) -> ReadOut;

    fn read_all(bytes: &[u8]) -> ReadOut {
        match reader(bytes) {
            Ok(mut rd) => {
                let (p, e) = drain(&mut rd);
                (p, e, rd.stats())
            }
            Err(e) => (Vec::new(), Some(e), CaptureStats::default()),
        }
    }

    fn expected(c: &Cap) -> Vec<Pkt> {
        c.packets.iter().map(|(p, _)| p.clone()).collect()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap_or_default();
        enc.finish().unwrap_or_default()
    }

    fn kind_name(e: &CaptureError) -> &'static str {
        match e.kind {
            CaptureErrorKind::Io(_) => "io",
            CaptureErrorKind::NotACapture | CaptureErrorKind::Empty => "not",
            CaptureErrorKind::Corrupt(_) => "corrupt",
            CaptureErrorKind::Truncated(_) => "truncated",
            CaptureErrorKind::Trailing(_) => "trailing",
        }
    }

    const NS: i64 = 1_000_000_000;

    fn pcap_sample(e: Endian, magic: u32) -> Cap {
        let modified = magic == PCAP_MAGIC_MODIFIED;
        let unit = if magic == PCAP_MAGIC_NS { 1 } else { 1000 };
        let mut c = Cap::pcap_header(e, magic, 1 | 0x1000_0000, 96);
        let mut off = c.bytes.len();
        c.pcap_record(modified, 1_700_000_000, 123_456, b"first packet", 12);
        c.expect(1_700_000_000 * NS + 123_456 * unit, 1, 12, b"first packet", off);
        off = c.bytes.len();
        // caplen above snaplen and above origlen: the bytes present are returned.
        let big = vec![0xAB; 200];
        c.pcap_record(modified, 4_000_000_000, 999_999, &big, 150);
        c.expect(4_000_000_000 * NS + 999_999 * unit, 1, 200, &big, off);
        off = c.bytes.len();
        c.pcap_record(modified, 0, 0, b"", 60);
        c.expect(0, 1, 60, b"", off);
        c
    }

    #[test]
    fn pcap_byte_orders_and_resolutions() {
        for e in [Endian::Little, Endian::Big] {
            for magic in [PCAP_MAGIC_US, PCAP_MAGIC_NS, PCAP_MAGIC_MODIFIED] {
                let c = pcap_sample(e, magic);
                let (got, err, stats) = read_all(&c.bytes);
                assert!(err.is_none(), "{e:?} {magic:x}: {err:?}");
                assert_eq!(got, expected(&c), "{e:?} {magic:x}");
                assert_eq!(stats.records, 3);
                assert_eq!(stats.bytes, c.bytes.len() as u64);
                let (gz, gerr, _) = read_all(&gzip(&c.bytes));
                assert!(gerr.is_none(), "{gerr:?}");
                assert_eq!(gz, expected(&c), "gzip {e:?} {magic:x}");
            }
        }
    }

    /// Two sections of different byte orders; interfaces with different link types,
    /// resolutions and offsets; SPB, OPB, an unknown block and packets on undeclared interfaces.
    fn pcapng_sample() -> Cap {
        let mut c = Cap::new(Endian::Little);
        c.shb();
        c.idb(1, 0, Some(9), None);
        c.idb(101, 64, Some(0x80 | 10), Some(100));
        let off = c.epb(0, 1_700_000_000_123_456_789, b"ns on ethernet", 14);
        c.expect(1_700_000_000_123_456_789, 1, 14, b"ns on ethernet", off);
        // 2^-10 s units: 3 s + 512/1024 s, plus a 100 s offset.
        let off = c.epb(1, 3 * 1024 + 512, b"raw", 1500);
        c.expect(103 * NS + NS / 2, 101, 1500, b"raw", off);
        c.block(0x0BAD, b"unknown block type");
        c.epb(5, 0, b"nowhere", 7);
        // SPB: orig 10 < data present; interface 0 has no snaplen.
        let off = c.spb(10, b"simple packet block");
        c.expect(0, 1, 10, b"simple pac", off);
        let off = c.opb(1, 1024, b"obsolete", 8);
        c.expect(101 * NS, 101, 8, b"obsolete", off);
        c.block(5, &[0; 20]); // interface statistics: skipped.

        c.e = Endian::Big;
        c.shb();
        // The interfaces of the first section are gone.
        c.epb(1, 0, b"old interface", 13);
        c.idb(113, 8, None, Some(-10));
        let off = c.epb(0, 2_000_000, b"default microseconds", 20);
        c.expect(-8 * NS, 113, 20, b"default microseconds", off);
        // SPB capped by the 8-byte snaplen.
        let off = c.spb(20, b"0123456789abcdefghij");
        c.expect(0, 113, 20, b"01234567", off);
        c
    }

    #[test]
    fn pcapng_sections_interfaces_and_block_kinds() {
        let c = pcapng_sample();
        let (got, err, stats) = read_all(&c.bytes);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(got, expected(&c));
        assert_eq!(stats.records, 6);
        let mut rd = reader(&c.bytes).unwrap_or_else(|e| panic!("{e}"));
        let _ = drain(&mut rd);
        assert_eq!(rd.format_description(), "pcapng, little-endian and big-endian sections");
        assert_eq!(stats.skipped_blocks, 2);
        assert_eq!(stats.bad_records, 2);
        assert_eq!(stats.bytes, c.bytes.len() as u64);
        let (gz, gerr, gstats) = read_all(&gzip(&c.bytes));
        assert!(gerr.is_none(), "{gerr:?}");
        assert_eq!(gz, expected(&c));
        assert_eq!(gstats, stats);
    }

    #[test]
    fn gzip_members_are_concatenated() {
        let c = pcapng_sample();
        let (a, b) = c.bytes.split_at(100);
        let mut two = gzip(a);
        two.extend_from_slice(&gzip(b));
        let (got, err, _) = read_all(&two);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(got, expected(&c));
    }

    /// What follows the last gzip member: zeros (tar's and dd's padding) are passed over as
    /// `gzip -d` does; anything else that is not a member is a warning after every packet, at
    /// the end of the capture, naming where it starts in the file; never a truncated record.
    #[test]
    fn gzip_trailing_zeros_are_ignored_and_other_trailing_data_is_a_warning() {
        let c = pcap_sample(Endian::Little, PCAP_MAGIC_US);
        let want = expected(&c);
        // Many members, an empty one among them, each started on the same decoder.
        let mut members = gzip(b"");
        for piece in c.bytes.chunks(7) {
            members.extend(gzip(piece));
        }
        for (name, packed) in [("one member", gzip(&c.bytes)), ("members", members)] {
            let (got, err, _) = read_all(&packed);
            assert!(err.is_none(), "{name}: {err:?}");
            assert_eq!(got, want, "{name}");
            for pad in [1, 512, 70_000] {
                let mut padded = packed.clone();
                padded.resize(packed.len() + pad, 0);
                let (got, err, stats) = read_all(&padded);
                assert!(err.is_none(), "{name} + {pad} zeros: {err:?}");
                assert_eq!(got, want, "{name} + {pad} zeros");
                assert_eq!(stats.bytes, c.bytes.len() as u64);
            }
            let mut zeros_then_junk = vec![0; 300];
            zeros_then_junk.push(7);
            for junk in [&b"\x00\x01garbage"[..], b"8 bytes!", &zeros_then_junk] {
                let mut bad = packed.clone();
                bad.extend_from_slice(junk);
                let (got, err, _) = read_all(&bad);
                assert_eq!(got, want, "{name} + {junk:?}");
                let e = err.unwrap_or_else(|| panic!("{name} + {junk:?}: no warning"));
                assert!(e.is_warning(), "{name}: {e}");
                assert_eq!((e.offset, kind_name(&e)), (c.bytes.len() as u64, "trailing"));
                assert_eq!(
                    e.to_string(),
                    format!(
                        "test.pcap: offset {}: trailing data after the gzip stream (from byte {} \
                         of the file), ignored",
                        c.bytes.len(),
                        packed.len()
                    )
                );
            }
        }
        // A capture cut inside a record, then junk: the record is what is cut.
        let cut = c.bytes.len() - 3;
        let mut bad = gzip(&c.bytes[..cut]);
        bad.extend_from_slice(b"junk");
        let (got, err, _) = read_all(&bad);
        assert_eq!(got.len(), want.len() - 1);
        let e = err.unwrap_or_else(|| panic!("no error"));
        assert!(matches!(e.kind, CaptureErrorKind::Truncated(Cut::Record)), "{e}");
        // Junk after an empty stream: nothing there is a capture.
        let mut bad = gzip(b"");
        bad.extend_from_slice(b"junk");
        let (_, err, _) = read_all(&bad);
        assert_eq!(err.map(|e| kind_name(&e)), Some("not"));
    }

    fn zstd(bytes: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(bytes, ruzstd::encoding::CompressionLevel::Fastest)
    }

    fn lz4(bytes: &[u8]) -> Vec<u8> {
        crate::capture::lz4frame::encode::frame(bytes, crate::capture::lz4frame::encode::PLAIN)
    }

    /// A skippable frame (zstd's and LZ4's) holding `n` bytes.
    fn skippable(n: u8) -> Vec<u8> {
        let mut f = vec![0x53, 0x2a, 0x4d, 0x18, n, 0, 0, 0];
        f.extend(std::iter::repeat_n(0xee, usize::from(n)));
        f
    }

    /// zstd and LZ4 streams read as the capture inside them, frames concatenated and
    /// skippable frames passed over wherever they stand, the first included.
    #[test]
    fn zstd_and_lz4_frames_are_read() {
        for c in [pcapng_sample(), pcap_sample(Endian::Big, PCAP_MAGIC_NS)] {
            let want = expected(&c);
            let (a, b) = c.bytes.split_at(100);
            for (name, one) in [("zstd", zstd as fn(&[u8]) -> Vec<u8>), ("lz4", lz4)] {
                let (got, err, _) = read_all(&one(&c.bytes));
                assert!(err.is_none(), "{name}: {err:?}");
                assert_eq!(got, want, "{name}");
                let mut frames = skippable(3);
                frames.extend(one(a));
                frames.extend(skippable(0));
                frames.extend(one(b));
                frames.extend(skippable(9));
                let (got, err, _) = read_all(&frames);
                assert!(err.is_none(), "{name} in frames: {err:?}");
                assert_eq!(got, want, "{name} in frames");
                // Skippable frames first, too long to be looked past in the buffer.
                let mut big = Vec::new();
                for n in [70_000u32, 200_000] {
                    big.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18]);
                    big.extend_from_slice(&n.to_le_bytes());
                    big.resize(big.len() + n as usize, 0x5a);
                }
                big.extend(one(&c.bytes));
                let (got, err, _) = read_all(&big);
                assert!(err.is_none(), "{name} after big skippable frames: {err:?}");
                assert_eq!(got, want, "{name} after big skippable frames");
                let (got, err, _) = read_all(&big[..150_000]);
                assert!(got.is_empty(), "{name}: cut in a big skippable frame");
                let err = err.map(|e| e.kind);
                assert!(
                    matches!(err, Some(CaptureErrorKind::Truncated(Cut::FileHeader))),
                    "{name}: cut in a big skippable frame: {err:?}"
                );
                // Bytes after the last frame that are not a frame: an error there.
                let mut junk = one(&c.bytes);
                junk.extend_from_slice(b"not a frame at all");
                let (got, err, _) = read_all(&junk);
                assert_eq!(got, want, "{name} + junk");
                assert!(err.is_some(), "{name}: junk after the last frame went unnoticed");
            }
        }
    }

    /// A compressed stream cut short always ends in an error, never silently, after what
    /// could be decoded of it.
    #[test]
    fn every_prefix_of_compressed_streams() {
        let c = pcapng_sample();
        let all = expected(&c);
        for (name, packed) in
            [("gzip", gzip(&c.bytes)), ("zstd", zstd(&c.bytes)), ("lz4", lz4(&c.bytes))]
        {
            for cut in 0..packed.len() {
                let (got, err, _) = read_all(&packed[..cut]);
                assert_eq!(got[..], all[..got.len()], "{name} cut at {cut}");
                let e = err.unwrap_or_else(|| panic!("{name} cut at {cut}: no error"));
                assert!(
                    matches!(
                        e.kind,
                        CaptureErrorKind::Truncated(_)
                            | CaptureErrorKind::NotACapture
                            | CaptureErrorKind::Empty
                            | CaptureErrorKind::Io(_)
                    ),
                    "{name} cut at {cut}: {e}"
                );
            }
        }
    }

    /// A pcap of 400 records of 150 to 156 bytes (about 70 KB): big enough for many
    /// compressed blocks, small enough to cut everywhere.
    fn four_hundred_records() -> Cap {
        let mut c = Cap::pcap_header(Endian::Little, PCAP_MAGIC_US, 1, 65535);
        for i in 0..400u32 {
            let off = c.bytes.len();
            let data: Vec<u8> = (0..150 + i % 7).map(|j| (i * 31 + j * 7) as u8).collect();
            c.pcap_record(false, 1_700_000_000 + i, 0, &data, data.len() as u32);
            c.expect(i64::from(1_700_000_000 + i) * NS, 1, data.len() as u32, &data, off);
        }
        c
    }

    /// Text options are shown as they can be: a crafted file's escape sequences escaped, its
    /// long strings cut, invalid UTF-8 replaced; a malformed option list just ends.
    #[test]
    fn text_options_are_tamed_and_bad_option_lists_end() {
        assert_eq!(text_option(b"eth0\0\0"), "eth0");
        assert_eq!(text_option(b"a\x1b[31mred\nb"), "a\\u{1b}[31mred\\nb");
        assert_eq!(text_option(b"\xff!"), "\u{fffd}!");
        let long = text_option(&[b'x'; 1000]);
        assert_eq!(long.chars().count(), META_TEXT_MAX + 1);
        assert!(long.ends_with('…'));
        // code 2 "ab" (padded), code 3 claiming 200 bytes it does not have.
        let mut opts = vec![2, 0, 2, 0, b'a', b'b', 0, 0];
        opts.extend([3, 0, 200, 0, b'c']);
        let got: Vec<_> = options(&opts, Endian::Little).collect();
        assert_eq!(got, vec![(2u16, &b"ab"[..])]);
    }

    /// Interfaces past the first 64 are counted, not kept: a file declaring thousands costs
    /// no more to describe.
    #[test]
    fn interface_descriptions_are_bounded() {
        let mut c = Cap::new(Endian::Big);
        c.shb();
        c.idb(1, 96, None, None);
        c.idb(1, 96, None, None);
        // Interface ids start again in a new section.
        c.shb();
        for _ in 0..68 {
            c.idb(101, 200, None, None);
        }
        let mut rd = reader(&c.bytes).unwrap_or_else(|e| panic!("{e}"));
        let _ = drain(&mut rd);
        let m = rd.meta();
        assert_eq!((m.sections, m.interfaces.len(), m.interfaces_total), (2, 64, 70));
        let at = |i: usize| (m.interfaces[i].section, m.interfaces[i].id, m.interfaces[i].snaplen);
        assert_eq!([at(1), at(2), at(63)], [(1, 1, 96), (2, 0, 200), (2, 61, 200)]);
        assert!(rd.format_description().starts_with("pcapng, big-endian"));
    }

    /// An LZ4 capture in one 4 MiB block (what `lz4` makes of a capture under 4 MiB) cut
    /// anywhere gives the packets the bytes before the cut hold, then an error: not nothing.
    #[test]
    fn an_lz4_capture_cut_short_gives_the_packets_before_the_cut() {
        use crate::capture::lz4frame::encode::{frame, Opts, PLAIN};
        let c = four_hundred_records();
        let all = expected(&c);
        for linked in [false, true] {
            let f = frame(&c.bytes, Opts { code: 7, linked, ..PLAIN });
            let (got, err, _) = read_all(&f);
            assert!(err.is_none(), "{err:?}");
            assert_eq!(got, all);
            let mut last = 0;
            for cut in (7..f.len()).step_by(997).chain([f.len() - 5]) {
                let (got, err, _) = read_all(&f[..cut]);
                assert_eq!(got[..], all[..got.len()], "cut at {cut}");
                assert!(got.len() >= last, "cut at {cut}: fewer than a shorter cut");
                last = got.len();
                let e = err.unwrap_or_else(|| panic!("cut at {cut}: no error"));
                assert!(matches!(e.kind, CaptureErrorKind::Truncated(_)), "cut at {cut}: {e}");
            }
            // Before the end mark: every packet.
            assert_eq!(last, all.len());
            let (got, _, _) = read_all(&f[..f.len() / 2]);
            assert!(got.len() > all.len() * 2 / 5, "half the file: {} packets", got.len());
        }
    }

    /// A zstd frame of raw blocks of `block` bytes: 8 MiB window, content checksum (the low 32
    /// bits of the content's XXH64) when `checksum`. What a cut of it can give is exact: the
    /// blocks wholly before the cut.
    fn zstd_raw_blocks(bytes: &[u8], block: usize, checksum: bool) -> (Vec<u8>, Vec<usize>) {
        // Frame header descriptor: no dictionary, no content size, window descriptor present;
        // window 2^(10 + 13) bytes.
        let mut z = vec![0x28, 0xb5, 0x2f, 0xfd, if checksum { 0x04 } else { 0x00 }, 13 << 3];
        // Where each block ends in `z`.
        let mut ends = Vec::new();
        let chunks: Vec<&[u8]> = bytes.chunks(block).collect();
        for (i, c) in chunks.iter().enumerate() {
            let last = u32::from(i + 1 == chunks.len());
            let h = last | (c.len() as u32) << 3;
            z.extend_from_slice(&h.to_le_bytes()[..3]);
            z.extend_from_slice(c);
            ends.push(z.len());
        }
        if checksum {
            let sum = twox_hash::XxHash64::oneshot(0, bytes) as u32;
            z.extend_from_slice(&sum.to_le_bytes());
        }
        (z, ends)
    }

    /// A zstd capture cut short (or damaged) gives every packet of the blocks before the
    /// failure, then an error. The decoder holds its last window back until the frame ends,
    /// and here the window is larger than the whole capture: unless the frame is sealed where
    /// it failed, nothing comes out.
    #[test]
    fn a_zstd_frame_that_fails_gives_what_was_decoded_before() {
        let c = four_hundred_records();
        let all = expected(&c);
        const BLOCK: usize = 4096;
        for checksum in [false, true] {
            let (z, ends) = zstd_raw_blocks(&c.bytes, BLOCK, checksum);
            let (got, err, _) = read_all(&z);
            assert!(err.is_none(), "whole frame: {err:?}");
            assert_eq!(got, all);
            for cut in (6..z.len()).step_by(997).chain([z.len() - 1]) {
                // The capture bytes in the blocks that end at or before the cut.
                let whole = ends.iter().filter(|&&e| e <= cut).count();
                let decodable = (whole * BLOCK).min(c.bytes.len());
                let want = c.packets.iter().filter(|(_, end)| *end <= decodable).count();
                let (got, err, _) = read_all(&z[..cut]);
                assert_eq!(got.len(), want, "cut at {cut} (checksum {checksum})");
                assert_eq!(got[..], all[..want], "cut at {cut} (checksum {checksum})");
                let e = err.unwrap_or_else(|| panic!("cut at {cut}: no error"));
                assert!(matches!(e.kind, CaptureErrorKind::Truncated(_)), "cut at {cut}: {e}");
            }
            // Damage: a reserved block type in the header after the first `k` blocks.
            let k = ends.len() / 2;
            let mut bad = z.clone();
            bad[ends[k - 1]] |= 0b110;
            let want = c.packets.iter().filter(|(_, end)| *end <= k * BLOCK).count();
            assert!(want > 100);
            let (got, err, _) = read_all(&bad);
            assert_eq!(got.len(), want, "damaged (checksum {checksum})");
            assert_eq!(got[..], all[..want], "damaged (checksum {checksum})");
            assert!(matches!(err.map(|e| e.kind), Some(CaptureErrorKind::Io(_))));
        }
        // A content checksum that does not match: every packet, then an error that says so.
        let (mut z, _) = zstd_raw_blocks(&c.bytes, BLOCK, true);
        let n = z.len();
        z[n - 1] ^= 0x80;
        let (got, err, _) = read_all(&z);
        assert_eq!(got, all);
        let e = err.unwrap_or_else(|| panic!("a wrong checksum went unnoticed"));
        assert!(e.to_string().contains("zstd: content checksum mismatch"), "{e}");
    }

    /// A damaged zstd frame is reported in one plain line: which part of the frame failed and
    /// the decoder's innermost reason, never its nested `Debug` text.
    #[test]
    fn zstd_errors_are_one_plain_line() {
        use ruzstd::decoding::errors::{
            DecodeBlockContentError, DecompressBlockError, DecompressLiteralsError,
            FrameDecoderError,
        };
        // What a byte changed in the middle of sample.pcapng.zst gave.
        let e = FrameDecoderError::FailedToReadBlockBody(
            DecodeBlockContentError::DecompressBlockError(
                DecompressBlockError::DecompressLiteralsError(
                    DecompressLiteralsError::DecodedLiteralCountMismatch {
                        decoded: 12981,
                        expected: 12980,
                    },
                ),
            ),
        );
        assert_eq!(
            zstd_error(&e).to_string(),
            "zstd: corrupt compressed block: did not decode enough literals: 12981, Should have \
             been: 12980"
        );
        // Every byte of a compressed capture changed in turn: whatever the decoder finds wrong
        // reads as a sentence.
        let packed = zstd(&four_hundred_records().bytes);
        let mut seen = 0;
        for at in (4..packed.len()).step_by(13) {
            let mut bad = packed.clone();
            bad[at] ^= 0x5a;
            let (_, err, _) = read_all(&bad);
            let Some(e) = err.filter(|e| matches!(e.kind, CaptureErrorKind::Io(_))) else {
                continue;
            };
            let text = e.to_string();
            assert!(text.contains(": zstd: "), "byte {at}: {text}");
            assert!(!text.contains(['{', '\n']) && !text.contains("Error("), "byte {at}: {text}");
            seen += usize::from(text.contains("zstd: corrupt compressed block: "));
        }
        assert!(seen > 10, "{seen} corrupt blocks");
    }

    #[test]
    fn numbering_continues() {
        let c = pcap_sample(Endian::Little, PCAP_MAGIC_US);
        let mut rd = reader(&c.bytes).unwrap_or_else(|e| panic!("{e}"));
        rd.set_next_index(41);
        let (got, _) = drain(&mut rd);
        let idx: Vec<u64> = got.iter().map(|p| p.index).collect();
        assert_eq!(idx, vec![41, 42, 43]);
    }

    #[test]
    fn not_a_capture() {
        for bytes in [&b""[..], b"\x1f", b"abc", b"hello world, this is text", b"\x1f\x8b"] {
            let Err(e) = reader(bytes) else { panic!("{bytes:?} accepted") };
            assert_eq!(e.offset, 0);
            assert!(
                matches!(
                    e.kind,
                    CaptureErrorKind::NotACapture
                        | CaptureErrorKind::Empty
                        | CaptureErrorKind::Truncated(_)
                ),
                "{bytes:?}: {e}"
            );
        }
        let Err(e) = reader(b"not a capture at all") else { panic!("accepted") };
        assert_eq!(e.to_string(), "test.pcap: offset 0: not a pcap or pcapng capture");
        // Nothing at all, plain or once decompressed, is said to be empty; a few bytes are not.
        for bytes in [Vec::new(), gzip(b"")] {
            let Err(e) = reader(&bytes) else { panic!("{bytes:?} accepted") };
            assert_eq!(e.to_string(), "test.pcap: offset 0: empty: no capture header");
        }
        let Err(e) = reader(b"abc") else { panic!("accepted") };
        assert!(matches!(e.kind, CaptureErrorKind::NotACapture), "{e}");
        // A pcapng SHB with a bad byte-order magic.
        let mut bad = pcapng_sample().bytes;
        bad[8] = 0;
        assert!(matches!(
            reader(&bad).map(|_| ()),
            Err(CaptureError { offset: 0, kind: CaptureErrorKind::NotACapture, .. })
        ));
    }

    #[test]
    fn open_names_the_file() {
        let path = Path::new("/nonexistent/dir/x.pcap");
        let Err(e) = FileReader::open(path) else { panic!("opened") };
        assert!(e.to_string().starts_with("/nonexistent/dir/x.pcap: offset 0: "), "{e}");
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn open_reads_a_file() {
        let c = pcapng_sample();
        let path =
            std::env::temp_dir().join(format!("msyncdump-read-{}.pcapng.gz", std::process::id()));
        std::fs::write(&path, gzip(&c.bytes)).unwrap_or_default();
        let rd = FileReader::open(&path);
        let _ = std::fs::remove_file(&path);
        let mut rd = rd.unwrap_or_else(|e| panic!("{e}"));
        let (got, err) = drain(&mut rd);
        assert!(err.is_none());
        assert_eq!(got, expected(&c));
    }

    /// What [`read_all`] gives, from a file of `bytes` opened (so mapped when not empty).
    fn read_file(bytes: &[u8]) -> ReadOut {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("msyncdump-read-{}-{n}.pcap", std::process::id()));
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
        let rd = FileReader::open(&path);
        let _ = std::fs::remove_file(&path);
        match rd {
            Ok(mut rd) => {
                assert_eq!(matches!(rd.buf, Buf::Mapped { .. }), !bytes.is_empty());
                let (p, e) = drain(&mut rd);
                (p, e, rd.stats())
            }
            Err(e) => {
                assert!(e.to_string().contains(&*path.display().to_string()), "{e}");
                (Vec::new(), Some(e), CaptureStats::default())
            }
        }
    }

    /// Cutting a capture anywhere yields the packets wholly before the cut, then `Truncated`
    /// at the first incomplete record, or the header the cut falls in (nothing at a clean
    /// cut), then `None`.
    fn check_every_prefix(c: &Cap) {
        check_every_prefix_with(c, read_all);
        check_every_prefix_with(c, read_file);
    }

    fn check_every_prefix_with(c: &Cap, read: fn(&[u8]) -> ReadOut) {
        let all = expected(c);
        for cut in 0..=c.bytes.len() {
            let (got, err, _) = read(&c.bytes[..cut]);
            let whole: Vec<Pkt> =
                c.packets.iter().filter(|(_, end)| *end <= cut).map(|(p, _)| p.clone()).collect();
            assert_eq!(got, whole, "cut at {cut}");
            assert_eq!(got[..], all[..got.len()]);
            let first = c.bounds.first().copied().unwrap_or(0);
            match err {
                None => assert!(c.bounds.contains(&cut), "cut at {cut}: no error"),
                // Under four bytes there is no magic number to know a capture by.
                Some(e) if cut < 4 => {
                    assert_eq!(e.offset, 0, "cut at {cut}");
                    assert_eq!(kind_name(&e), "not", "cut at {cut}: {e}");
                }
                // Inside the file's header: that is what is cut, not a record.
                Some(e) if cut < first => {
                    let ng = c.bytes.starts_with(&NG_SHB);
                    let want = if ng { Cut::SectionHeader } else { Cut::FileHeader };
                    assert_eq!(e.offset, 0, "cut at {cut}");
                    assert!(
                        matches!(e.kind, CaptureErrorKind::Truncated(k) if k == want),
                        "cut at {cut}: {e}"
                    );
                    assert!(e
                        .to_string()
                        .ends_with(&format!("truncated {want} (file ends inside it)")));
                }
                Some(e) => {
                    assert!(e.is_warning(), "cut at {cut}: {e}");
                    let start = c.bounds.iter().copied().filter(|&b| b <= cut).max();
                    assert_eq!(Some(e.offset as usize), start, "cut at {cut}");
                    assert!(!c.bounds.contains(&cut));
                    // A later section header is known as one once its length is there too.
                    let start = start.unwrap_or(0);
                    let shb =
                        c.bytes.get(start..start + 4) == Some(&NG_SHB[..]) && cut >= start + 8;
                    let want = if shb { Cut::SectionHeader } else { Cut::Record };
                    assert!(
                        matches!(e.kind, CaptureErrorKind::Truncated(k) if k == want),
                        "cut at {cut}: {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_prefix_of_pcap() {
        check_every_prefix(&pcap_sample(Endian::Big, PCAP_MAGIC_NS));
        check_every_prefix(&pcap_sample(Endian::Little, PCAP_MAGIC_MODIFIED));
    }

    #[test]
    fn every_prefix_of_pcapng() {
        check_every_prefix(&pcapng_sample());
    }

    /// The record headers of old patched libpcaps (Red Hat 6.1: 8 bytes more under the usual
    /// magic; Nokia IPSO: 4 more; SuSE 6.3: 12 more under the modified magic, where 8 more is
    /// the usual) are told apart from the usual ones by their first two records, as tshark's
    /// `editcap -F rh6_1pcap / nokiapcap / suse6_3pcap / modpcap` writes them.
    #[test]
    fn patched_libpcap_record_headers_are_told_apart() {
        let variants = [
            (PCAP_MAGIC_US, 0),
            (PCAP_MAGIC_US, 8),
            (PCAP_MAGIC_US, 4),
            (PCAP_MAGIC_MODIFIED, 8),
            (PCAP_MAGIC_MODIFIED, 12),
        ];
        for e in [Endian::Little, Endian::Big] {
            for (magic, extra) in variants {
                let mut c = Cap::pcap_header(e, magic, 1, 65_535);
                for (i, len) in [58usize, 74, 1514, 60, 9].into_iter().enumerate() {
                    let data: Vec<u8> = (0..len).map(|b| (b * 31 + i) as u8).collect();
                    let (secs, usec) = (1_509_019_200 + i as u32, 123_456 * i as u32);
                    let start = c.bytes.len();
                    c.u32(secs).u32(usec).u32(len as u32).u32(len as u32);
                    // What the patches added: interface index, protocol, packet type, padding.
                    c.raw(&[0xEE; 12][..extra]).raw(&data);
                    c.bound();
                    let ts = i64::from(secs) * NS + i64::from(usec) * 1000;
                    c.expect(ts, 1, len as u32, &data, start);
                }
                let (got, err, _) = read_all(&c.bytes);
                assert!(err.is_none(), "{e:?} {magic:x} +{extra}: {err:?}");
                assert_eq!(got, expected(&c), "{e:?} {magic:x} +{extra}");
                // One record cannot tell: the usual header is taken.
                let one = c.packets.first().map_or(0, |(_, end)| *end);
                let (got, _, _) = read_all(&c.bytes[..one]);
                assert_eq!(got.len(), 1, "{e:?} {magic:x} +{extra}: one record");
            }
        }
    }

    /// A pcap file a little over three release steps long, of records of many sizes (so that
    /// some straddle the steps' boundaries), and the path it is written to.
    fn long_file(name: &str) -> (Cap, std::path::PathBuf) {
        let mut c = Cap::pcap_header(Endian::Little, PCAP_MAGIC_US, 1, 65_535);
        let mut i = 0u32;
        while c.bytes.len() < 3 * RELEASE_STEP + 12_345 {
            let data = vec![i as u8; 1 + (i as usize * 7919) % 3000];
            let start = c.bytes.len();
            c.pcap_record(false, i, 0, &data, data.len() as u32);
            c.expect(i64::from(i) * NS, 1, data.len() as u32, &data, start);
            i += 1;
        }
        let path =
            std::env::temp_dir().join(format!("msyncdump-{name}-{}.pcap", std::process::id()));
        std::fs::write(&path, &c.bytes).unwrap_or_else(|e| panic!("{e}"));
        (c, path)
    }

    /// The same packets, offsets and totals as reading the file, with the pages behind them
    /// handed back on the way.
    #[test]
    fn a_mapped_file_gives_what_reading_it_gives_and_hands_pages_back() {
        let (c, path) = long_file("map");
        let (want, err, stats) = read_all(&c.bytes);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(want, expected(&c));
        let rd = FileReader::open(&path);
        let _ = std::fs::remove_file(&path);
        let mut rd = rd.unwrap_or_else(|e| panic!("{e}"));
        let (got, err) = drain(&mut rd);
        assert!(err.is_none(), "{err:?}");
        assert!(got == want, "the mapped file's packets differ from the read ones");
        assert_eq!(rd.stats(), stats);
        let Buf::Mapped { released, .. } = rd.buf else { panic!("not mapped") };
        assert_eq!(released, 3 * RELEASE_STEP);
    }

    /// A file cut short by another program while it is read: the records before the cut, then
    /// an error at the record it cuts, never a read past it.
    #[test]
    fn a_mapped_file_that_shrinks_ends_in_an_error_where_it_now_ends() {
        let (c, path) = long_file("shrink");
        let rd = FileReader::open(&path);
        let mut rd = rd.unwrap_or_else(|e| panic!("{e}"));
        let mut got = Vec::new();
        while rd.offset() < RELEASE_STEP as u64 + 1000 {
            match rd.next_packet() {
                Ok(Some(p)) => got.push(owned(&p)),
                other => panic!("{other:?}"),
            }
        }
        let cut = 2 * RELEASE_STEP + RELEASE_STEP / 2;
        let file = std::fs::OpenOptions::new().write(true).open(&path);
        file.and_then(|f| f.set_len(cut as u64)).unwrap_or_else(|e| panic!("{e}"));
        let _ = std::fs::remove_file(&path);
        let (rest, err) = drain(&mut rd);
        got.extend(rest);
        let whole: Vec<Pkt> =
            c.packets.iter().filter(|(_, end)| *end <= cut).map(|(p, _)| p.clone()).collect();
        assert!(got == whole, "{} packets, not the {} before the cut", got.len(), whole.len());
        let e = err.unwrap_or_else(|| panic!("no error"));
        let next = c.packets.iter().find(|(_, end)| *end > cut).map(|(p, _)| p.offset);
        assert_eq!(Some(e.offset), next);
        assert!(e.to_string().contains(&format!("the file shrank to {cut} bytes")), "{e}");
    }

    /// A pcapng file whose second block (at offset `at`) says it is `len` bytes long.
    fn lying_block(len: u32) -> (Vec<u8>, u64) {
        let mut c = Cap::new(Endian::Little);
        c.shb();
        let at = c.bytes.len();
        c.idb(1, 0, None, None);
        c.bytes[at + 4..at + 8].copy_from_slice(&len.to_le_bytes());
        c.bytes.extend_from_slice(&[0; 64]);
        (c.bytes, at as u64)
    }

    #[test]
    fn lying_block_lengths_are_corrupt() {
        for len in [0, 8, 12, 16, 30, 0x7FFF_FFFC, u32::MAX] {
            let (bytes, at) = lying_block(len);
            let (_, err, _) = read_all(&bytes);
            let e = err.unwrap_or_else(|| panic!("length {len}: no error"));
            assert_eq!(e.offset, at, "length {len}: {e}");
            assert_eq!(kind_name(&e), "corrupt", "length {len}: {e}");
        }
        // Longer than the rest of the file: the file ends inside the block.
        let (bytes, at) = lying_block(4096);
        let (_, err, _) = read_all(&bytes);
        let e = err.unwrap_or_else(|| panic!("no error"));
        assert_eq!((e.offset, kind_name(&e)), (at, "truncated"));
        // Within the file but disagreeing with the trailing copy.
        let (bytes, at) = lying_block(36);
        let (_, err, _) = read_all(&bytes);
        let e = err.unwrap_or_else(|| panic!("no error"));
        assert_eq!((e.offset, kind_name(&e)), (at, "corrupt"));
    }

    #[test]
    fn packet_lengths_beyond_their_block_are_corrupt() {
        let mut c = Cap::new(Endian::Big);
        c.shb();
        c.idb(1, 0, None, None);
        let at = c.epb(0, 0, b"abcd", 4);
        // caplen 9 in a block with room for 4 (plus 12 bytes of options).
        c.bytes[at + 20..at + 24].copy_from_slice(&17u32.to_be_bytes());
        let (got, err, _) = read_all(&c.bytes);
        assert!(got.is_empty());
        let e = err.unwrap_or_else(|| panic!("no error"));
        assert_eq!((e.offset, kind_name(&e)), (at as u64, "corrupt"));

        let mut p = Cap::pcap_header(Endian::Little, PCAP_MAGIC_US, 1, 65535);
        p.pcap_record(false, 1, 2, b"ok", 2);
        let at = p.bytes.len();
        p.u32(1).u32(2).u32(0x4000_0000).u32(0x4000_0000).raw(&[0; 100]);
        let (got, err, _) = read_all(&p.bytes);
        assert_eq!(got.len(), 1);
        let e = err.unwrap_or_else(|| panic!("no error"));
        assert_eq!((e.offset, kind_name(&e)), (at as u64, "corrupt"));
        assert!(e.to_string().starts_with(&format!("test.pcap: offset {at}: corrupt capture: ")));
    }

    /// A record header overwritten (a damaged file, read as it is or through gzip): the
    /// records after it are found again, the stretch passed over (the damaged record) is
    /// counted, and where it began is kept. Damage with no record after it stays the error.
    #[test]
    fn records_after_a_damaged_header_are_read() {
        let mut p = Cap::pcap_header(Endian::Little, PCAP_MAGIC_US, 1, 65535);
        for i in 0..5 {
            p.pcap_record(false, 100 + i, 2, b"before", 6);
        }
        let at = p.bytes.len();
        p.pcap_record(false, 200, 3, b"damaged!", 8);
        for i in 0..5 {
            p.pcap_record(false, 300 + i, 4, b"after", 5);
        }
        p.bytes[at + 8..at + 16].copy_from_slice(&[0xff; 8]);
        for (how, bytes) in [("plain", p.bytes.clone()), ("gzip", gzip(&p.bytes))] {
            let (got, err, stats) = read_all(&bytes);
            assert!(err.is_none(), "{how}: {err:?}");
            assert_eq!(got.len(), 10, "{how}");
            assert_eq!((stats.damaged, stats.damaged_bytes), (1, 24), "{how}");
            assert_eq!(
                stats.first_damage,
                Some((at as u64, Damage::RecordLength(u32::MAX))),
                "{how}"
            );
        }
        // Nothing that reads as two records in a row after the damage: the error, as before.
        let mut q = Cap::pcap_header(Endian::Little, PCAP_MAGIC_US, 1, 65535);
        q.pcap_record(false, 100, 2, b"ok", 2);
        let at = q.bytes.len();
        q.u32(1).u32(2).u32(u32::MAX).u32(u32::MAX).raw(&[0x5a; 5000]);
        let (got, err, stats) = read_all(&q.bytes);
        assert_eq!((got.len(), stats.damaged), (1, 0));
        let e = err.unwrap_or_else(|| panic!("no error"));
        assert_eq!((e.offset, kind_name(&e)), (at as u64, "corrupt"));
    }

    /// The ways a capture's bytes are read: as a stream, through gzip, mapped from a file.
    fn read_ways() -> [(&'static str, ReadWith); 3] {
        [("stream", read_all), ("gzip", |b| read_all(&gzip(b))), ("mapped", read_file)]
    }

    impl Cap {
        /// The 4 bytes at `at` as this capture's byte order reads them.
        fn get32(&self, at: usize) -> u32 {
            let b = self.bytes[at..at + 4].try_into().unwrap_or_default();
            self.e.u32(b)
        }
        /// Overwrites the 4 bytes at `at` with `v` in this capture's byte order.
        fn put32(&mut self, at: usize, v: u32) {
            let b = match self.e {
                Endian::Little => v.to_le_bytes(),
                Endian::Big => v.to_be_bytes(),
            };
            self.bytes[at..at + 4].copy_from_slice(&b);
        }
        /// `n` enhanced packet blocks on interface 0 (nanosecond units, link `link`), expected.
        fn epbs(&mut self, n: u8, tag: u8, link: u32) {
            for i in 0..n {
                let data = [tag, i, tag, i, tag];
                let units = 1_700_000_000_000_000_000 + u64::from(tag) * 1000 + u64::from(i);
                let off = self.epb(0, units, &data, 5);
                self.expect(units as i64, link, 5, &data, off);
            }
        }
    }

    /// A pcapng section in byte order `e` with one interface: three packets, a fourth at the
    /// returned offset (the one to damage, not expected), then three more.
    fn ng_around(e: Endian) -> (Cap, usize) {
        let mut c = Cap::new(e);
        c.shb();
        c.idb(1, 0, Some(9), None);
        c.epbs(3, b'b', 1);
        let at = c.epb(0, 2_000, b"damaged!", 8);
        c.epbs(3, b'a', 1);
        (c, at)
    }

    /// Reads `c` in every way and checks that it gives the packets expected, no error, and one
    /// damaged stretch at `at` of `bytes` bytes, the damage being `damage`.
    fn check_resync(c: &Cap, at: usize, bytes: usize, damage: Damage, what: &str) {
        for (how, read) in read_ways() {
            let (got, err, stats) = read(&c.bytes);
            assert!(err.is_none(), "{what}, {:?}, {how}: {err:?}", c.e);
            assert_eq!(got, expected(c), "{what}, {:?}, {how}", c.e);
            assert_eq!(
                (stats.damaged, stats.damaged_bytes, stats.first_damage),
                (1, bytes as u64, Some((at as u64, damage))),
                "{what}, {:?}, {how}",
                c.e
            );
            assert_eq!(stats.bytes, c.bytes.len() as u64, "{what}, {:?}, {how}", c.e);
        }
    }

    /// An enhanced packet block whose length (or trailing length, or captured length) is
    /// damaged costs that packet only, in either byte order, read as a stream, through gzip
    /// or mapped: the next block is found where the damaged one really ends.
    #[test]
    fn a_damaged_pcapng_block_costs_that_block_only() {
        for e in [Endian::Little, Endian::Big] {
            let (c, at) = ng_around(e);
            let len = c.get32(at + 4);
            assert_eq!(len, 52);
            let cases: [(&str, usize, u32, Damage); 7] = [
                (
                    "longer, its trailer elsewhere",
                    4,
                    len + 64,
                    Damage::TrailingLength {
                        len: len + 64,
                        trailer: c.get32(at + len as usize + 60),
                    },
                ),
                (
                    "beyond the limit",
                    4,
                    0x7FFF_FFF0,
                    Damage::BlockLength { len: 0x7FFF_FFF0, min: 32, section: false },
                ),
                ("past the end of the file", 4, 1 << 20, Damage::BeyondEnd { len: 1 << 20 }),
                ("too short", 4, 16, Damage::BlockLength { len: 16, min: 32, section: false }),
                (
                    "not a multiple of 4",
                    4,
                    len + 2,
                    Damage::BlockLength { len: len + 2, min: 32, section: false },
                ),
                (
                    "trailing length",
                    len as usize - 4,
                    len ^ 0x100,
                    Damage::TrailingLength { len, trailer: len ^ 0x100 },
                ),
                (
                    "captured length",
                    20,
                    200,
                    Damage::Packet("captured length exceeds the packet block"),
                ),
            ];
            for (what, field, value, damage) in cases {
                let mut d = ng_around(e).0;
                d.put32(at + field, value);
                check_resync(&d, at, len as usize, damage, what);
            }
        }
    }

    /// A block type damaged: a simple packet block (20 bytes) read as an obsolete packet block
    /// (one bit: 3 to 2), which needs 32; an enhanced packet block whose type reads as a
    /// section header, which starts a section all the same: the interface declared after it
    /// is its first, and the packets after it are that interface's.
    #[test]
    fn a_damaged_block_type() {
        for e in [Endian::Little, Endian::Big] {
            let mut c = Cap::new(e);
            c.shb();
            c.idb(1, 0, Some(9), None);
            c.epbs(2, b'b', 1);
            let at = c.spb(4, b"spb!");
            c.epbs(2, b'a', 1);
            c.put32(at, NG_OPB);
            check_resync(
                &c,
                at,
                20,
                Damage::BlockLength { len: 20, min: 32, section: false },
                "spb",
            );

            let mut c = Cap::new(e);
            c.shb();
            c.idb(1, 0, Some(9), None);
            c.epbs(2, b'b', 1);
            let at = c.epb(0, 2_000, b"damaged!", 8);
            let len = c.get32(at + 4) as usize;
            c.idb(101, 0, Some(9), None);
            c.epbs(2, b'a', 101);
            c.bytes[at..at + 4].copy_from_slice(&NG_SHB);
            check_resync(&c, at, len, Damage::ByteOrder, "section header");
            let mut rd = reader(&c.bytes).unwrap_or_else(|e| panic!("{e}"));
            let _ = drain(&mut rd);
            assert_eq!(rd.meta().sections, 2);
            assert_eq!(rd.meta().interfaces.iter().map(|i| i.section).collect::<Vec<_>>(), [1, 2]);
        }
    }

    /// Damage in the block right before an interface block, or a section header (of the other
    /// byte order): the reading goes on from there, with the interfaces (and byte order) they
    /// bring. A section header whose byte-order magic is damaged is found again in the other
    /// byte order, and its section starts there without interfaces.
    #[test]
    fn damage_right_before_an_interface_or_a_section() {
        for e in [Endian::Little, Endian::Big] {
            let other = if e == Endian::Little { Endian::Big } else { Endian::Little };
            // Before an interface block.
            let (mut c, at) = ng_around(e);
            c.idb(101, 0, Some(9), None);
            let data = b"on the second interface";
            let off = c.epb(1, 7, data, 23);
            c.expect(7, 101, 23, data, off);
            c.epbs(1, b'z', 1);
            let len = c.get32(at + 4) as usize;
            c.put32(at + 4, 16);
            let damage = Damage::BlockLength { len: 16, min: 32, section: false };
            check_resync(&c, at, len, damage, "before an interface");

            // Before a section header of the other byte order.
            let (mut c, at) = ng_around(e);
            let len = c.get32(at + 4) as usize;
            c.e = other;
            c.shb();
            c.idb(113, 0, Some(9), None);
            c.epbs(3, b'c', 113);
            c.e = e;
            c.put32(at + len - 4, 0x5a5a_5a5a);
            let damage = Damage::TrailingLength { len: len as u32, trailer: 0x5a5a_5a5a };
            check_resync(&c, at, len, damage, "before a section header");

            // A section header of the other byte order with its magic damaged.
            let mut c = Cap::new(e);
            c.shb();
            c.idb(1, 0, Some(9), None);
            c.epbs(3, b'b', 1);
            c.e = other;
            let shb = c.bytes.len();
            c.shb();
            let len = c.get32(shb + 4) as usize;
            c.idb(113, 0, Some(9), None);
            c.epbs(3, b'c', 113);
            c.bytes[shb + 8..shb + 12].copy_from_slice(b"\0\0\0\0");
            check_resync(&c, shb, len, Damage::ByteOrder, "a section header's magic");
        }
    }

    /// A damaged interface block keeps its place: the interfaces after it keep their ids, and
    /// the packets naming it are skipped as naming an undeclared one.
    #[test]
    fn a_damaged_interface_block_keeps_its_place() {
        for e in [Endian::Little, Endian::Big] {
            let mut c = Cap::new(e);
            c.shb();
            let at = c.bytes.len();
            c.idb(101, 0, None, None);
            let len = c.get32(at + 4) as usize;
            c.idb(1, 0, Some(9), None);
            c.epb(0, 5, b"on the lost interface", 21);
            let data = b"on the second";
            let off = c.epb(1, 1_000, data, 13);
            c.expect(1_000, 1, 13, data, off);
            c.epb(0, 6, b"on the lost interface", 21);
            c.put32(at + 4, len as u32 + 2);
            let damage =
                Damage::BlockLength { len: len as u32 + 2, min: NG_IDB_MIN as u32, section: false };
            check_resync(&c, at, len, damage, "interface");
            let (_, _, stats) = read_all(&c.bytes);
            assert_eq!(stats.bad_records, 2);
        }
    }

    /// Damage with no credible block after it is the error it always was, with the same
    /// message: nothing after it (zeros, noise, blocks that do not hold together, packets
    /// naming interfaces never declared), or the damaged block the last of the file (a length
    /// running past the end of the file is then a truncated block, as before).
    #[test]
    fn damage_with_no_block_after_it_is_the_error_it_was() {
        for e in [Endian::Little, Endian::Big] {
            for (tail, fill) in [("zeros", 0u8), ("noise", 0x5a)] {
                let mut c = Cap::new(e);
                c.shb();
                c.idb(1, 0, Some(9), None);
                c.epbs(2, b'b', 1);
                let at = c.epb(0, 2_000, b"damaged!", 8);
                c.raw(&vec![fill; 5000]);
                let mut short = Cap { bytes: c.bytes.clone(), ..ng_around(e).0 };
                short.put32(at + 4, 16);
                let mut trailer = Cap { bytes: c.bytes.clone(), ..ng_around(e).0 };
                trailer.put32(at + 48, 44);
                for (d, what) in [
                    (&short, "block length 16 is less than the minimum of 32 bytes"),
                    (&trailer, "block length 52 differs from its trailing length 44"),
                ] {
                    for (how, read) in read_ways() {
                        let (got, err, stats) = read(&d.bytes);
                        assert_eq!(got, expected(&c), "{e:?} {tail} {how}");
                        assert_eq!((stats.damaged, stats.first_damage), (0, None));
                        let err = err.unwrap_or_else(|| panic!("{e:?} {tail} {how}: no error"));
                        assert_eq!((err.offset, kind_name(&err)), (at as u64, "corrupt"));
                        assert!(
                            err.to_string()
                                .ends_with(&format!("offset {at}: corrupt capture: {what}")),
                            "{e:?} {tail} {how}: {err}"
                        );
                    }
                }
            }
            // Packet blocks after the damage naming an interface the section never declared.
            let mut c = Cap::new(e);
            c.shb();
            c.idb(1, 0, Some(9), None);
            c.epbs(2, b'b', 1);
            let at = c.epb(0, 2_000, b"damaged!", 8);
            for i in 0..4 {
                c.epb(3, i, b"nowhere", 7);
            }
            c.put32(at + 4, 30);
            let (got, err, stats) = read_all(&c.bytes);
            assert_eq!((got, stats.damaged), (expected(&c), 0));
            let err = err.unwrap_or_else(|| panic!("no error"));
            assert_eq!((err.offset, kind_name(&err)), (at as u64, "corrupt"));

            // The last block damaged.
            for (value, field, kind) in
                [(16, 4, "corrupt"), (200, 20, "corrupt"), (52 + 64, 4, "truncated")]
            {
                let mut c = Cap::new(e);
                c.shb();
                c.idb(1, 0, Some(9), None);
                c.epbs(3, b'b', 1);
                let at = c.epb(0, 2_000, b"damaged!", 8);
                c.put32(at + field, value);
                for (how, read) in read_ways() {
                    let (got, err, stats) = read(&c.bytes);
                    assert_eq!((got, stats.damaged), (expected(&c), 0), "{how}");
                    let err = err.unwrap_or_else(|| panic!("{how}: no error"));
                    assert_eq!((err.offset, kind_name(&err)), (at as u64, kind), "{how}");
                }
            }
        }
    }

    /// A pcapng capture of `n` packets over two interfaces, with the offsets where each
    /// packet's block starts and ends.
    fn ng_many(n: u32) -> (Cap, Vec<(usize, usize)>) {
        let mut c = Cap::new(Endian::Little);
        c.shb();
        c.idb(1, 0, Some(9), None);
        c.idb(101, 0, None, None);
        let mut blocks = Vec::new();
        for i in 0..n {
            let data: Vec<u8> = (0..(i % 23) as u8).map(|k| k.wrapping_mul(37) ^ i as u8).collect();
            let off = c.epb(i % 2, 1_000_000 + u64::from(i), &data, data.len() as u32);
            let link = if i % 2 == 0 { 1 } else { 101 };
            let ts = if i % 2 == 0 {
                1_000_000 + i64::from(i)
            } else {
                (1_000_000 + i64::from(i)) * 1000
            };
            c.expect(ts, link, data.len() as u32, &data, off);
            blocks.push((off, c.bytes.len()));
        }
        (c, blocks)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// A few bytes overwritten anywhere in a pcapng capture (read as it is or through
        /// gzip): the reader ends, returns no more packets than the file has, every packet
        /// whose block lies wholly before the first damaged byte as it is, and every packet it
        /// returns is one of the file's (after the damage, numbered on) unless its own block
        /// was damaged.
        #[test]
        fn random_pcapng_damage_is_survived(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..5),
            compress in any::<bool>(),
        ) {
            let (c, blocks) = ng_many(60);
            let mut bytes = c.bytes.clone();
            for (i, v) in &edits {
                let at = i.index(bytes.len());
                bytes[at] = *v;
            }
            let first = edits.iter().map(|(i, _)| i.index(bytes.len())).min().unwrap_or(0);
            let dirty = |from: usize, to: usize| {
                edits.iter().any(|(i, _)| (from..to).contains(&i.index(bytes.len())))
            };
            // Damage to the section or interface blocks changes what the packets read as.
            let headers = dirty(0, blocks[0].0);
            let input = if compress { gzip(&bytes) } else { bytes.clone() };
            let (got, _, stats) = read_all(&input);
            let all = expected(&c);
            prop_assert!(got.len() <= all.len());
            let intact = blocks.iter().take_while(|(_, end)| *end <= first).count();
            prop_assert!(got.len() >= intact);
            prop_assert_eq!(&got[..intact], &all[..intact]);
            for p in &got[intact..] {
                let Some(k) = blocks.iter().position(|(off, _)| *off as u64 == p.offset) else {
                    // A block whose type or length was damaged into a packet block's (an
                    // interface block whose type 1 became 3, a simple packet block, say) is
                    // read as one: it must be damaged where it starts.
                    let at = usize::try_from(p.offset).unwrap_or(usize::MAX);
                    if !dirty(at, at.saturating_add(8)) {
                        return Err(TestCaseError::fail(format!("no block at {}", p.offset)));
                    }
                    continue;
                };
                if !headers && !dirty(blocks[k].0, blocks[k].1) {
                    prop_assert_eq!(
                        (&p.data, p.ts, p.link),
                        (&all[k].data, all[k].ts, all[k].link)
                    );
                }
            }
            prop_assert!(stats.damaged_bytes <= bytes.len() as u64);
        }
    }

    /// A record's captured length damaged (a flipped bit) to another value that can be, or to
    /// one that cannot: the record is read with its original length where the next record
    /// starts there, and counted as repaired; nothing after it is lost. Records sliced short of
    /// the snaplen, whose next record starts where they say, are read as they are.
    #[test]
    fn a_damaged_captured_length_is_repaired_from_the_original() {
        let mut p = Cap::pcap_header(Endian::Little, PCAP_MAGIC_US, 1, 65535);
        for i in 0..3 {
            p.pcap_record(false, 100 + i, 2, b"before", 6);
        }
        let at = p.bytes.len();
        p.pcap_record(false, 200, 3, &[7u8; 300], 300);
        for i in 0..3 {
            p.pcap_record(false, 300 + i, 4, b"after", 5);
        }
        // Sliced records (a capture cut at 8 bytes whatever the snaplen says).
        for i in 0..3 {
            p.pcap_record(false, 400 + i, 4, b"sliced..", 1500);
        }
        let (whole, _, _) = read_all(&p.bytes);
        assert_eq!(whole.len(), 10);
        for (caplen, how) in
            [(300 ^ 0x100, "smaller"), (300 ^ 0x400, "larger"), (300 | 1 << 24, "impossible")]
        {
            for gz in [false, true] {
                let mut b = p.bytes.clone();
                b[at + 8..at + 12].copy_from_slice(&(caplen as u32).to_le_bytes());
                let bytes = if gz { gzip(&b) } else { b };
                let (got, err, stats) = read_all(&bytes);
                assert!(err.is_none(), "{how}: {err:?}");
                assert_eq!(got, whole, "{how}");
                assert_eq!((stats.repaired, stats.damaged), (1, 0), "{how}");
                let want = Damage::RecordLengthRepaired(caplen as u32, 300);
                assert_eq!(stats.first_damage, Some((at as u64, want)), "{how}");
            }
        }
        let (_, err, stats) = read_all(&p.bytes);
        assert!(err.is_none());
        assert_eq!((stats.repaired, stats.first_damage), (0, None));
    }

    /// A pcap of snaplen `snaplen` with one good record, then a record header claiming
    /// `claimed` bytes followed by `present` bytes; and the offset of that header.
    fn claiming(snaplen: u32, claimed: u32, present: usize) -> (Vec<u8>, u64) {
        let mut p = Cap::pcap_header(Endian::Little, PCAP_MAGIC_US, 1, snaplen);
        p.pcap_record(false, 1, 2, b"ok", 2);
        let at = p.bytes.len();
        p.u32(1).u32(3).u32(claimed).u32(claimed).raw(&vec![0x5a; present]);
        (p.bytes, at as u64)
    }

    /// A pcap record longer than both the snaplen and 256 KiB is a damaged header, not a
    /// record cut by the end of the file, read from a stream, compressed or mapped; up to
    /// either, it is read (or truncated, when the file ends inside it).
    #[test]
    fn implausible_pcap_record_lengths_are_corrupt_even_when_the_file_ends_first() {
        let reads: [(&str, ReadWith); 3] =
            [("stream", read_all), ("gzip", |b| read_all(&gzip(b))), ("mapped", read_file)];
        for (how, read) in reads {
            let usual =
                |s: u32| format!("the usual maximum of 262144 bytes (the file's snaplen is {s})");
            // The file's next 200 bytes, with a length that would need 194 MB.
            for (snaplen, claimed, above) in [
                (65_535, 194_688_089, usual(65_535)),
                (0, PCAP_STANDARD_MAX + 1, usual(0)),
                (300_000, 300_001, "the file's snaplen of 300000 bytes".to_string()),
            ] {
                let (bytes, at) = claiming(snaplen, claimed, 200);
                let (got, err, _) = read(&bytes);
                assert_eq!(got.len(), 1, "{how} {snaplen} {claimed}");
                let e = err.unwrap_or_else(|| panic!("{how} {snaplen} {claimed}: no error"));
                assert_eq!((e.offset, kind_name(&e)), (at, "corrupt"), "{how}: {e}");
                assert!(!e.is_warning());
                assert!(
                    e.to_string().ends_with(&format!(
                        "offset {at}: corrupt capture: record length {claimed} is implausible: \
                         above {above}"
                    )),
                    "{how}: {e}"
                );
            }
            // Over a small snaplen but within 256 KiB, or within a larger snaplen: read.
            for (snaplen, len) in [(100, PCAP_STANDARD_MAX), (0, 70_000), (300_000, 300_000)] {
                let (bytes, _) = claiming(snaplen, len, len as usize);
                let (got, err, _) = read(&bytes);
                assert!(err.is_none(), "{how} {snaplen} {len}: {err:?}");
                assert_eq!(got.len(), 2, "{how} {snaplen} {len}");
                assert_eq!(got[1].data.len(), len as usize);
                // The same record cut short by the end of the file is truncated.
                let (got, err, _) = read(&bytes[..bytes.len() - 1]);
                assert_eq!(got.len(), 1);
                let e = err.unwrap_or_else(|| panic!("{how} {snaplen} {len}: no error"));
                assert!(e.is_warning(), "{how} {snaplen} {len}: {e}");
            }
        }
    }

    /// Hands out data in small uneven pieces, then optionally fails.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        n: usize,
        fail: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.at == self.data.len() {
                if self.fail {
                    return Err(io::Error::other("disk on fire"));
                }
                return Ok(0);
            }
            self.n = self.n % 7 + 1;
            if self.n == 3 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let k = self.n.min(out.len()).min(self.data.len() - self.at);
            out[..k].copy_from_slice(&self.data[self.at..self.at + k]);
            self.at += k;
            Ok(k)
        }
    }

    #[test]
    fn large_records_and_short_reads() {
        // Records larger than the initial buffer (and within the snaplen, so plausible), and
        // many small ones spanning refills.
        let huge: Vec<u8> = (0..3 * INITIAL_BUF + 5).map(|i| i as u8).collect();
        let mut c = Cap::pcap_header(Endian::Little, PCAP_MAGIC_NS, 1, huge.len() as u32);
        let mut off = c.bytes.len();
        c.pcap_record(false, 1, 1, &huge, huge.len() as u32);
        c.expect(NS + 1, 1, huge.len() as u32, &huge, off);
        for i in 0..3000u32 {
            let data = vec![i as u8; (i % 1500) as usize];
            off = c.bytes.len();
            c.pcap_record(false, 2, i, &data, data.len() as u32);
            c.expect(2 * NS + i64::from(i), 1, data.len() as u32, &data, off);
        }
        let (got, err, _) = read_all(&c.bytes);
        assert!(err.is_none());
        assert!(got == expected(&c));

        let slow = Trickle { data: c.bytes.clone(), at: 0, n: 0, fail: true };
        let mut rd = FileReader::from_reader("slow".into(), Box::new(slow))
            .unwrap_or_else(|e| panic!("{e}"));
        let (got, err) = drain(&mut rd);
        assert!(got == expected(&c));
        // The read error comes after every packet, at the end of what was read.
        let e = err.unwrap_or_else(|| panic!("no error"));
        assert_eq!((e.offset, kind_name(&e)), (c.bytes.len() as u64, "io"));
        assert!(rd.buf.len() <= 4 * INITIAL_BUF, "buffer grew to {}", rd.buf.len());
    }

    #[test]
    fn pcapng_with_short_reads() {
        let c = pcapng_sample();
        let slow = Trickle { data: c.bytes.clone(), at: 0, n: 0, fail: false };
        let mut rd = FileReader::from_reader("slow".into(), Box::new(slow))
            .unwrap_or_else(|e| panic!("{e}"));
        let (got, err) = drain(&mut rd);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(got, expected(&c));
        assert_eq!(rd.stats().bad_records, 2);
    }

    #[test]
    fn reader_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<FileReader>();
    }

    #[test]
    fn timestamp_resolutions() {
        let ifc = |r: u8, off: i64| Interface {
            link: LinkType::ETHERNET,
            snaplen: 0,
            conv: TsConv::from_tsresol(r),
            offset_ns: i128::from(off) * 1_000_000_000,
        };
        assert_eq!(ifc(6, 0).timestamp(1_500_000).0, 1_500_000_000);
        assert_eq!(ifc(0, 0).timestamp(2).0, 2 * NS);
        assert_eq!(ifc(9, 0).timestamp(7).0, 7);
        assert_eq!(ifc(12, 0).timestamp(7_000).0, 7);
        assert_eq!(ifc(127, 0).timestamp(u64::MAX).0, 0);
        assert_eq!(ifc(0x80, 0).timestamp(3).0, 3 * NS);
        assert_eq!(ifc(0x80 | 1, 0).timestamp(3).0, NS + NS / 2);
        assert_eq!(ifc(0x80 | 30, 0).timestamp(1 << 30).0, NS);
        assert_eq!(ifc(0xFF, 0).timestamp(u64::MAX).0, 0);
        assert_eq!(ifc(6, -5).timestamp(1_000_000).0, -4 * NS);
        assert_eq!(ifc(0, 0).timestamp(u64::MAX).0, i64::MAX);
        assert_eq!(ifc(9, i64::MIN).timestamp(0).0, i64::MIN);
    }

    fn samples() -> Vec<Vec<u8>> {
        vec![
            pcap_sample(Endian::Little, PCAP_MAGIC_US).bytes,
            pcap_sample(Endian::Big, PCAP_MAGIC_MODIFIED).bytes,
            pcapng_sample().bytes,
        ]
    }

    /// Reads to the end; the loop bound is generous (every record is at least 12 bytes).
    fn survives(bytes: &[u8]) {
        if let Ok(mut rd) = reader(bytes) {
            let mut n = 0usize;
            while let Ok(Some(p)) = rd.next_packet() {
                assert!(p.data.len() <= bytes.len() * 64 + 64);
                n += 1;
                assert!(n <= bytes.len() * 64 + 1, "does not terminate");
            }
            assert!(matches!(rd.next_packet(), Ok(None)));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            survives(&bytes);
        }

        #[test]
        fn random_headers_never_panic(
            head in prop_oneof![
                Just(vec![0xD4, 0xC3, 0xB2, 0xA1]),
                Just(vec![0xA1, 0xB2, 0x3C, 0x4D]),
                Just(vec![0x0A, 0x0D, 0x0D, 0x0A, 0x1C, 0, 0, 0, 0x4D, 0x3C, 0x2B, 0x1A]),
            ],
            tail in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let mut bytes = head;
            bytes.extend_from_slice(&tail);
            survives(&bytes);
        }

        #[test]
        fn mutations_never_panic(
            which in 0usize..3,
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
            compress in 0u8..3,
        ) {
            let mut bytes = samples().swap_remove(which);
            if compress == 2 {
                // Damage the compressed stream itself.
                bytes = gzip(&bytes);
            }
            for (i, v) in edits {
                let at = i.index(bytes.len());
                bytes[at] = v;
            }
            let keep = bytes.len() - cut.index(bytes.len() / 4 + 1);
            bytes.truncate(keep);
            if compress == 1 {
                bytes = gzip(&bytes);
            }
            survives(&bytes);
        }
    }
}
