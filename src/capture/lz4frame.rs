//! LZ4-compressed captures: the frame format the `lz4` tool writes (and its legacy format,
//! `lz4 -l`), one frame after another, skippable frames passed over.
//!
//! Why not a library's frame decoder: a capture cut short must still give every byte that can
//! be decoded, and those decoders hand out nothing of a block that is not whole. A block is
//! 4 MiB by default, so a small capture cut anywhere gave no packet at all. Here a block cut
//! short is decoded as far as its bytes go, and a damaged one up to the damage: LZ4 has no
//! entropy stage, so the literals and matches before that point are exact. Whole blocks still
//! go through `lz4_flex`'s block decoder; only the block that fails takes the slow path.
//!
//! Invariants:
//! - Nothing is allocated from a length field: a block is at most its frame's maximum (4 MiB;
//!   8 MiB in the legacy format), checked before it is read, and the buffers are sized to that
//!   maximum.
//! - The error that ends decoding is returned after the bytes decoded before it, once.
//! - Every checksum and size the format declares is checked: the header checksum when the
//!   header is read, a block's checksum and the content checksum and size after the bytes
//!   they cover are handed out (a checksum says that a block is damaged, not where, and the
//!   bytes before the damage are exact).

use std::hash::Hasher;
use std::io::{self, Read};

use twox_hash::XxHash32;

pub(super) const MAGIC: u32 = 0x184D_2204;
/// `lz4 -l`: the format before frames had headers.
pub(super) const LEGACY_MAGIC: u32 = 0x184C_2102;

/// How far back a match may reach: what a linked block keeps of the blocks before it.
const WINDOW: usize = 64 << 10;
/// The legacy format's blocks decode to at most 8 MiB.
const LEGACY_BLOCK: usize = 8 << 20;
/// What an 8 MiB block can take at worst compressed (LZ4_compressBound).
const LEGACY_PACKED_MAX: usize = LEGACY_BLOCK + LEGACY_BLOCK / 255 + 16;

pub(super) struct Lz4Frames<R> {
    src: R,
    frame: Option<Frame>,
    /// A magic already read: a legacy frame ends where the next frame's magic stands.
    magic: Option<u32>,
    /// Decoded bytes: `out[pos..end]` are not handed out yet.
    out: Vec<u8>,
    pos: usize,
    end: usize,
    /// The compressed block being decoded.
    packed: Vec<u8>,
    /// What ended decoding: returned once the bytes decoded before it are read.
    failed: Option<io::Error>,
}

struct Frame {
    legacy: bool,
    /// Blocks may copy from the blocks before them (the last [`WINDOW`] bytes, `hist`).
    linked: bool,
    hist: Vec<u8>,
    block_sums: bool,
    block_max: usize,
    content: Option<XxHash32>,
    size: Option<u64>,
    produced: u64,
}

fn eof(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, format!("lz4: the input ends inside {what}"))
}

fn invalid(text: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("lz4: {text}"))
}

/// Reads until `buf` is full or the input ends: how many bytes it got.
fn fill_all(src: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    match super::fill(src, buf) {
        (_, Some(e)) => Err(e),
        (got, None) => Ok(got),
    }
}

/// Four little-endian bytes, or the error that the input ended inside `what`. `Ok(None)`: it
/// ended right there, before any of them.
fn read_u32(src: &mut impl Read, what: &str) -> io::Result<Option<u32>> {
    let mut b = [0u8; 4];
    match fill_all(src, &mut b)? {
        0 => Ok(None),
        4 => Ok(Some(u32::from_le_bytes(b))),
        _ => Err(eof(what)),
    }
}

impl<R: Read> Lz4Frames<R> {
    pub(super) fn new(src: R) -> Self {
        Lz4Frames {
            src,
            frame: None,
            magic: None,
            out: Vec::new(),
            pos: 0,
            end: 0,
            packed: Vec::new(),
            failed: None,
        }
    }

    /// Starts the next frame, or passes a skippable one. `Ok(false)`: the input has ended
    /// cleanly, between frames.
    fn next_frame(&mut self) -> io::Result<bool> {
        let magic = match self.magic.take() {
            Some(m) => m,
            None => match read_u32(&mut self.src, "a frame's magic number")? {
                Some(m) => m,
                None => return Ok(false),
            },
        };
        if super::skippable(magic) {
            let len = read_u32(&mut self.src, "a skippable frame")?
                .ok_or_else(|| eof("a skippable frame"))?;
            let len = u64::from(len);
            if io::copy(&mut (&mut self.src).take(len), &mut io::sink())? < len {
                return Err(eof("a skippable frame"));
            }
            return Ok(true);
        }
        let mut frame = Frame {
            legacy: true,
            linked: false,
            hist: Vec::new(),
            block_sums: false,
            block_max: LEGACY_BLOCK,
            content: None,
            size: None,
            produced: 0,
        };
        if magic == MAGIC {
            self.descriptor(&mut frame)?;
        } else if magic != LEGACY_MAGIC {
            return Err(invalid(format!(
                "what follows the last frame is not an LZ4 frame (magic {magic:#010x})"
            )));
        }
        self.frame = Some(frame);
        Ok(true)
    }

    /// Reads and checks a frame descriptor (what follows the magic).
    fn descriptor(&mut self, frame: &mut Frame) -> io::Result<()> {
        // FLG, BD, the optional content size (8) and dictionary id (4), the checksum byte.
        let mut desc = [0u8; 15];
        if fill_all(&mut self.src, desc.get_mut(..2).unwrap_or_default())? < 2 {
            return Err(eof("a frame header"));
        }
        let [flg, bd] = [desc[0], desc[1]];
        if flg >> 6 != 1 {
            return Err(invalid(format!("frame format version {} is not 1", flg >> 6)));
        }
        if flg & 0x02 != 0 || bd & 0x8f != 0 {
            return Err(invalid("reserved bits are set in the frame header".to_string()));
        }
        frame.block_max = match (bd >> 4) & 7 {
            4 => 64 << 10,
            5 => 256 << 10,
            6 => 1 << 20,
            7 => 4 << 20,
            n => return Err(invalid(format!("block size code {n} is not 4 to 7"))),
        };
        let (has_size, has_dict) = (flg & 0x08 != 0, flg & 0x01 != 0);
        // The optional fields, then the header checksum byte.
        let n = 2 + 8 * usize::from(has_size) + 4 * usize::from(has_dict);
        let rest = desc.get_mut(2..=n).unwrap_or_default();
        if fill_all(&mut self.src, rest)? < rest.len() {
            return Err(eof("a frame header"));
        }
        let fields = desc.get(..n).unwrap_or_default();
        let hc = (XxHash32::oneshot(0, fields) >> 8) as u8;
        if desc.get(n) != Some(&hc) {
            return Err(invalid("frame header checksum mismatch".to_string()));
        }
        if has_dict {
            let id = fields.last_chunk::<4>().map(|b| u32::from_le_bytes(*b));
            return Err(invalid(format!(
                "the frame needs dictionary {}, which a capture reader is not given",
                id.unwrap_or_default()
            )));
        }
        if has_size {
            frame.size =
                fields.get(2..).and_then(|b| b.first_chunk::<8>()).map(|b| u64::from_le_bytes(*b));
        }
        frame.legacy = false;
        frame.linked = flg & 0x20 == 0;
        frame.block_sums = flg & 0x10 != 0;
        frame.content = (flg & 0x04 != 0).then(|| XxHash32::with_seed(0));
        Ok(())
    }

    /// Decodes the frame's next block into `out[..end]`, or ends the frame. An error that
    /// leaves decoded bytes behind is kept in `failed` and returned after them.
    fn next_block(&mut self) -> io::Result<()> {
        let Some(frame) = self.frame.as_mut() else { return Ok(()) };
        self.pos = 0;
        self.end = 0;
        let Some(head) = read_u32(&mut self.src, "a block header")? else {
            if frame.legacy {
                // The legacy format has no end mark: the input's end is the frame's.
                self.frame = None;
                return Ok(());
            }
            return Err(eof("a frame (no end mark)"));
        };
        if frame.legacy {
            if head == LEGACY_MAGIC || head == MAGIC || super::skippable(head) {
                self.magic = Some(head);
                self.frame = None;
                return Ok(());
            }
        } else if head == 0 {
            return self.end_frame();
        }
        let (stored, len) = if frame.legacy {
            (false, head as usize)
        } else {
            (head & 0x8000_0000 != 0, (head & 0x7fff_ffff) as usize)
        };
        let max = if frame.legacy { LEGACY_PACKED_MAX } else { frame.block_max };
        if len > max {
            return Err(invalid(format!(
                "a block of {len} bytes, over the frame's maximum of {max}"
            )));
        }
        self.packed.resize(len, 0);
        // What stops the block's bytes or its checksum short (the input's end, a read error)
        // is told after the bytes decoded from what came before it.
        let (got, mut stop) = super::fill(&mut self.src, &mut self.packed);
        let whole = got == len;
        if !whole && stop.is_none() {
            stop = Some(eof("a block"));
        }
        let mut sum_ok = true;
        if whole && frame.block_sums {
            match read_u32(&mut self.src, "a block checksum") {
                Ok(Some(want)) => sum_ok = XxHash32::oneshot(0, &self.packed) == want,
                Ok(None) => stop = Some(eof("a block checksum")),
                Err(e) => stop = Some(e),
            }
        }
        let packed = self.packed.get(..got).unwrap_or_default();
        if self.out.len() < frame.block_max {
            self.out.resize(frame.block_max, 0);
        }
        let dict = if frame.linked { &frame.hist[..] } else { &[][..] };
        if stored {
            let n = got.min(self.out.len());
            self.out
                .get_mut(..n)
                .unwrap_or_default()
                .copy_from_slice(packed.get(..n).unwrap_or_default());
            self.end = n;
        } else if whole {
            match lz4_flex::block::decompress_into_with_dict(packed, &mut self.out, dict) {
                Ok(n) => self.end = n,
                Err(e) => {
                    self.end = decode_prefix(packed, dict, &mut self.out);
                    self.failed = Some(invalid(format!("corrupt block: {e}")));
                }
            }
        } else {
            self.end = decode_prefix(packed, dict, &mut self.out);
        }
        let data = self.out.get(..self.end).unwrap_or_default();
        if let Some(h) = frame.content.as_mut() {
            h.write(data);
        }
        frame.produced += data.len() as u64;
        if frame.linked {
            let keep = WINDOW.saturating_sub(data.len()).min(frame.hist.len());
            frame.hist.drain(..frame.hist.len() - keep);
            frame.hist.extend_from_slice(
                data.get(data.len().saturating_sub(WINDOW)..).unwrap_or_default(),
            );
        }
        if !sum_ok && self.failed.is_none() {
            // As for the content checksum, the bytes are handed out first: damage in a
            // block's literals changes only those bytes, and a capture record that the
            // damage breaks is told where it is. The checksum cannot say where the damage is.
            self.failed = Some(invalid(format!(
                "block checksum mismatch in the {} bytes before this point",
                self.end
            )));
        } else if self.failed.is_none() {
            self.failed = stop;
        }
        if self.failed.is_some() {
            self.frame = None;
        }
        Ok(())
    }

    /// After the end mark: the content checksum and size, when the frame declares them.
    fn end_frame(&mut self) -> io::Result<()> {
        let Some(frame) = self.frame.take() else { return Ok(()) };
        if let Some(h) = frame.content {
            let want = read_u32(&mut self.src, "a content checksum")?
                .ok_or_else(|| eof("a content checksum"))?;
            let got = h.finish_32();
            if want != got {
                return Err(invalid(format!(
                    "content checksum mismatch (the frame says {want:#010x}, its content \
                     gives {got:#010x})"
                )));
            }
        }
        if let Some(size) = frame.size.filter(|&s| s != frame.produced) {
            return Err(invalid(format!(
                "the frame holds {} bytes, its header says {size}",
                frame.produced
            )));
        }
        Ok(())
    }
}

impl<R: Read> Read for Lz4Frames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Each pass hands out bytes, ends, or consumes input (a header, a block, a frame):
        // no endless loop.
        loop {
            if let Some(ready) = self.out.get(self.pos..self.end).filter(|r| !r.is_empty()) {
                let n = ready.len().min(buf.len());
                buf.get_mut(..n)
                    .unwrap_or_default()
                    .copy_from_slice(ready.get(..n).unwrap_or_default());
                self.pos += n;
                return Ok(n);
            }
            if let Some(e) = self.failed.take() {
                return Err(e);
            }
            if self.frame.is_some() {
                if let Err(e) = self.next_block() {
                    self.frame = None;
                    return Err(e);
                }
            } else if !self.next_frame()? {
                return Ok(0);
            }
        }
    }
}

/// Decodes the LZ4 block `src` into `out` as far as it goes: to the input's end (a block cut
/// short), to where it stops making sense (a match reaching before `dict` or past `out`), or
/// to its last sequence. Returns how many bytes it wrote; all are exact for the bytes read,
/// since a sequence's literals and match depend on nothing after them.
fn decode_prefix(src: &[u8], dict: &[u8], out: &mut [u8]) -> usize {
    let mut i = 0usize;
    let mut o = 0usize;
    // A length: the token's nibble, and while it is 15, bytes added up to the first below 255.
    let length = |nibble: u8, i: &mut usize| -> Option<usize> {
        let mut n = usize::from(nibble);
        if nibble == 15 {
            loop {
                let b = *src.get(*i)?;
                *i += 1;
                n = n.saturating_add(usize::from(b));
                if b != 255 {
                    break;
                }
            }
        }
        Some(n)
    };
    loop {
        let Some(&token) = src.get(i) else { return o };
        i += 1;
        let Some(lit) = length(token >> 4, &mut i) else { return o };
        let take = lit.min(src.len() - i).min(out.len() - o);
        if let (Some(d), Some(s)) = (out.get_mut(o..o + take), src.get(i..i + take)) {
            d.copy_from_slice(s);
        }
        o += take;
        i += take;
        if take < lit {
            return o;
        }
        let Some(&[lo, hi]) = src.get(i..i + 2).and_then(|b| b.first_chunk::<2>()) else {
            return o;
        };
        i += 2;
        let offset = usize::from(u16::from_le_bytes([lo, hi]));
        let Some(m) = length(token & 15, &mut i) else { return o };
        if offset == 0 || offset > o + dict.len() {
            return o;
        }
        // Byte by byte: a match may overlap what it writes (offset below its length).
        for _ in 0..m.saturating_add(4) {
            let byte =
                if offset > o { dict.get(dict.len() + o - offset) } else { out.get(o - offset) };
            let Some(b) = byte.copied() else { return o };
            let Some(slot) = out.get_mut(o) else { return o };
            *slot = b;
            o += 1;
        }
    }
}

/// LZ4 frames made the way the `lz4` tool makes them, with every option it has, so that the
/// bytes a cut or damage leaves are known exactly.
#[cfg(test)]
pub(super) mod encode {
    use super::{LEGACY_BLOCK, LEGACY_MAGIC, MAGIC, WINDOW};
    use twox_hash::XxHash32;

    #[derive(Clone, Copy, Debug)]
    pub struct Opts {
        /// Block size code, 4 (64 KiB) to 7 (4 MiB).
        pub code: u8,
        pub linked: bool,
        pub block_sums: bool,
        pub content_sum: bool,
        pub size: bool,
    }

    pub const PLAIN: Opts =
        Opts { code: 4, linked: false, block_sums: false, content_sum: true, size: false };

    fn block_size(code: u8) -> usize {
        64 << (2 * (code - 4))
    }

    /// One frame: its bytes, and for each block where it ends in them and how many content
    /// bytes come before its end.
    pub fn frame_with_ends(data: &[u8], o: Opts) -> (Vec<u8>, Vec<(usize, usize)>) {
        let flg = 0x40
            | u8::from(!o.linked) << 5
            | u8::from(o.block_sums) << 4
            | u8::from(o.size) << 3
            | u8::from(o.content_sum) << 2;
        let mut f = MAGIC.to_le_bytes().to_vec();
        let desc_at = f.len();
        f.extend([flg, o.code << 4]);
        if o.size {
            f.extend((data.len() as u64).to_le_bytes());
        }
        let hc = (XxHash32::oneshot(0, &f[desc_at..]) >> 8) as u8;
        f.push(hc);
        let mut ends = Vec::new();
        let mut done = 0usize;
        for chunk in data.chunks(block_size(o.code) << 10) {
            let dict = if o.linked { &data[done.saturating_sub(WINDOW)..done] } else { &[][..] };
            let packed = lz4_flex::block::compress_with_dict(chunk, dict);
            let (head, body) = if packed.len() < chunk.len() {
                (packed.len() as u32, &packed[..])
            } else {
                (chunk.len() as u32 | 0x8000_0000, chunk)
            };
            f.extend(head.to_le_bytes());
            f.extend_from_slice(body);
            if o.block_sums {
                f.extend(XxHash32::oneshot(0, body).to_le_bytes());
            }
            done += chunk.len();
            ends.push((f.len(), done));
        }
        f.extend([0; 4]);
        if o.content_sum {
            f.extend(XxHash32::oneshot(0, data).to_le_bytes());
        }
        (f, ends)
    }

    pub fn frame(data: &[u8], o: Opts) -> Vec<u8> {
        frame_with_ends(data, o).0
    }

    /// `lz4 -l`: independent blocks of 8 MiB (here `block` bytes), no end mark.
    pub fn legacy(data: &[u8], block: usize) -> Vec<u8> {
        assert!(block <= LEGACY_BLOCK);
        let mut f = LEGACY_MAGIC.to_le_bytes().to_vec();
        for chunk in data.chunks(block) {
            let packed = lz4_flex::block::compress(chunk);
            f.extend((packed.len() as u32).to_le_bytes());
            f.extend(packed);
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::encode::{frame, frame_with_ends, legacy, Opts, PLAIN};
    use super::*;
    use proptest::prelude::*;

    /// Text-like bytes that compress (repeats at many distances, some reaching across blocks)
    /// with stretches of noise that do not.
    fn content(n: usize, seed: u32) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761).max(1);
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            match x % 4 {
                0 if v.len() > 100 => {
                    let back = (x as usize >> 3) % v.len().min(70_000) + 1;
                    let len = (x as usize >> 20) % 300 + 4;
                    for _ in 0..len {
                        v.push(v[v.len() - back]);
                    }
                }
                1 => v.extend_from_slice(b"PROVISION easemob-demo#chatdemoui_user"),
                _ => v.push(x as u8),
            }
        }
        v.truncate(n);
        v
    }

    fn read(bytes: &[u8]) -> (Vec<u8>, Option<io::Error>) {
        let mut r = Lz4Frames::new(bytes);
        let mut out = Vec::new();
        let mut buf = [0u8; 7919];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    const ALL: [Opts; 5] = [
        PLAIN,
        Opts { code: 4, linked: true, block_sums: true, content_sum: false, size: true },
        Opts { code: 5, linked: true, block_sums: false, content_sum: true, size: false },
        Opts { code: 6, linked: false, block_sums: true, content_sum: true, size: true },
        Opts { code: 7, linked: true, block_sums: false, content_sum: false, size: false },
    ];

    #[test]
    fn frames_with_every_option_read_back() {
        let data = content(700_000, 1);
        for o in ALL {
            let (got, err) = read(&frame(&data, o));
            assert!(err.is_none(), "{o:?}: {err:?}");
            assert!(got == data, "{o:?}");
        }
        let (got, err) = read(&legacy(&data, 300_000));
        assert!(err.is_none(), "legacy: {err:?}");
        assert!(got == data, "legacy");
        // Frames one after another, legacy ones among them, and skippable frames.
        let (a, b) = data.split_at(250_000);
        let (b, c) = b.split_at(200_000);
        let mut s = frame(a, ALL[1]);
        s.extend(legacy(b, 65_536));
        s.extend([0x5a, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9]);
        s.extend(legacy(c, 100_000));
        s.extend(frame(b"", PLAIN));
        let (got, err) = read(&s);
        assert!(err.is_none(), "{err:?}");
        assert!(got == data);
    }

    /// A cut anywhere gives a prefix of the content, then "the input ends inside": all of the
    /// whole blocks before the cut, and, of the block it falls in, close to as much as the
    /// bytes before the cut hold.
    #[test]
    fn a_cut_gives_what_the_bytes_before_it_hold() {
        let data = content(300_000, 2);
        for o in ALL {
            let (f, ends) = frame_with_ends(&data, o);
            let mut last = 0;
            for cut in (1..f.len()).step_by(1531).chain([f.len() - 1]) {
                let (got, err) = read(&f[..cut]);
                assert!(data.starts_with(&got), "{o:?} cut at {cut}: not a prefix");
                let e = err.unwrap_or_else(|| panic!("{o:?} cut at {cut}: no error"));
                assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{o:?} cut at {cut}: {e}");
                let whole = ends.iter().rev().find(|(end, _)| *end <= cut).map(|e| e.1);
                assert!(got.len() >= whole.unwrap_or(0), "{o:?} cut at {cut}");
                assert!(got.len() >= last, "{o:?} cut at {cut}: less than a shorter cut");
                last = got.len();
            }
            // Nine tenths of a 4 MiB block (the whole content here): most of it, not nothing.
            if o.code == 7 {
                let (got, _) = read(&f[..f.len() * 9 / 10]);
                assert!(got.len() > data.len() * 8 / 10, "{o:?}: {} bytes", got.len());
            }
        }
    }

    #[test]
    fn damage_is_told_after_the_bytes_before_it() {
        let data = content(300_000, 3);
        // An offset reaching before the start: the block's bytes before that sequence.
        let mut f = frame(&data, Opts { code: 7, ..PLAIN });
        let first = 7 + 4; // magic, FLG, BD, HC, block size
                           // Overwrite a sequence early in the block with a literal-free match far back.
        let at = first + 2000;
        let (good, _) = read(&f[..at]);
        f[at..at + 3].copy_from_slice(&[0x00, 0xff, 0xff]);
        let (got, err) = read(&f);
        assert!(data.starts_with(&got));
        assert!(got.len() + 100 >= good.len(), "{} against {}", got.len(), good.len());
        assert!(got.len() > 1500, "{} bytes before the damage", got.len());
        let e = err.unwrap_or_else(|| panic!("no error for a corrupt block"));
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        // A block checksum: the block's bytes, then the mismatch.
        let o = Opts { code: 4, block_sums: true, ..PLAIN };
        let (mut f, ends) = frame_with_ends(&data, o);
        let sum_at = ends[1].0 - 4;
        f[sum_at] ^= 1;
        let (got, err) = read(&f);
        assert_eq!(got.len(), ends[1].1);
        assert!(err.is_some_and(|e| e.to_string().contains("block checksum mismatch")));
        // The content checksum and size: all bytes, then the mismatch.
        for (o, from_end) in [(PLAIN, 1), (Opts { size: true, content_sum: false, ..PLAIN }, 0)] {
            let mut f = frame(&data, o);
            if o.size {
                f[6] ^= 1; // the content size's low byte; the header checksum is redone
                let hc = (XxHash32::oneshot(0, &f[4..14]) >> 8) as u8;
                f[14] = hc;
            } else {
                let n = f.len();
                f[n - from_end] ^= 1;
            }
            let (got, err) = read(&f);
            assert!(got == data, "{o:?}");
            assert_eq!(err.map(|e| e.kind()), Some(io::ErrorKind::InvalidData), "{o:?}");
        }
    }

    /// A read that fails inside a block (a failing disk, a pipe's writer gone) is told after
    /// what the block's bytes before it hold, as a cut is.
    #[test]
    fn a_read_error_inside_a_block_comes_after_its_bytes() {
        struct Failing<'a>(&'a [u8]);
        impl Read for Failing<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Err(io::Error::other("disk on fire"));
                }
                let n = buf.len().min(self.0.len()).min(1000);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let data = content(200_000, 4);
        let f = frame(&data, Opts { code: 7, ..PLAIN });
        let (want, _) = read(&f[..f.len() / 2]);
        let mut r = Lz4Frames::new(Failing(&f[..f.len() / 2]));
        let mut got = Vec::new();
        let err = r.read_to_end(&mut got).err();
        assert!(got == want && got.len() > 50_000, "{} bytes against {}", got.len(), want.len());
        assert!(err.is_some_and(|e| e.to_string() == "disk on fire"));
    }

    #[test]
    fn bad_headers_are_errors_that_say_what() {
        let f = frame(b"abc", PLAIN);
        let with = |i: usize, b: u8| {
            let mut g = f.clone();
            g[i] = b;
            read(&g).1.map(|e| e.to_string()).unwrap_or_default()
        };
        assert!(with(6, f[6] ^ 0xff).contains("header checksum"));
        assert!(with(4, 0x80).contains("version"));
        assert!(with(4, f[4] | 0x02).contains("reserved"));
        assert!(with(5, 0x30).contains("block size code 3"));
        let mut dict = MAGIC.to_le_bytes().to_vec();
        dict.extend([0x61, 0x40, 7, 0, 0, 0]);
        dict.push((XxHash32::oneshot(0, &dict[4..]) >> 8) as u8);
        let e = read(&dict).1.map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("dictionary 7"), "{e}");
        let mut junk = f.clone();
        junk.extend(b"trailing");
        let e = read(&junk).1.map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("not an LZ4 frame"), "{e}");
        // A block size past the frame's maximum is refused before anything is allocated.
        let mut big = f[..7].to_vec();
        big.extend(0x7fff_fff0u32.to_le_bytes());
        let e = read(&big).1.map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("over the frame's maximum"), "{e}");
    }

    proptest! {
        /// A block cut anywhere decodes to a prefix of its content, longer the later the cut,
        /// and whole to all of it; with a dictionary, as a linked block does.
        #[test]
        fn decode_prefix_of_any_cut(seed in 1u32..10_000, n in 0usize..20_000, d in 0usize..5_000, cut in 0.0f64..1.0) {
            let all = content(n + d, seed);
            let (dict, data) = all.split_at(d);
            let packed = lz4_flex::block::compress_with_dict(data, dict);
            let mut out = vec![0u8; data.len()];
            let n_all = decode_prefix(&packed, dict, &mut out);
            prop_assert_eq!(&out[..n_all], data);
            let c = (packed.len() as f64 * cut) as usize;
            let mut part = vec![0u8; data.len()];
            let n_part = decode_prefix(&packed[..c], dict, &mut part);
            prop_assert!(data.starts_with(&part[..n_part]));
            let mut less = vec![0u8; data.len()];
            let n_less = decode_prefix(&packed[..c / 2], dict, &mut less);
            prop_assert!(n_less <= n_part);
        }

        /// Any bytes after a valid frame header: no panic, and a prefix-bounded output.
        #[test]
        fn garbage_blocks_never_panic(body in proptest::collection::vec(any::<u8>(), 0..3000), linked: bool) {
            let mut f = frame(b"", Opts { linked, ..PLAIN });
            f.truncate(7);
            f.extend(body);
            // Every block takes at least its 4-byte header and gives at most 64 KiB.
            let blocks = (f.len() - 7) / 4 + 1;
            let (got, _) = read(&f);
            prop_assert!(got.len() <= blocks << 16);
        }
    }
}
