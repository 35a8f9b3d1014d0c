//! MSync over WebSocket: the HTTP/1.1 upgrade, then RFC 6455 frames, one MSync message per
//! binary message, with permessage-deflate (RFC 7692) when negotiated.
//!
//! [`WebSocket`] is one connection's state machine over both directions' in-order byte streams,
//! fed chunk by chunk like [`super::LengthPrefixSplitter`] and reporting [`WsEvent`]s.
//!
//! Driving it: one `WebSocket` per connection, built with [`WebSocket::new`] when the
//! connection was seen from its SYN (detection said `WebSocketUpgrade`) or
//! [`WebSocket::new_midstream`] when it was picked up later (`WebSocketFrames`); directions
//! must be the real client/server roles (client frames are the masked ones). Feed each
//! direction's in-order data with [`WebSocket::feed`], losses with [`WebSocket::gap`], and call
//! [`WebSocket::finish`] at close. Binary [`WsEvent::Message`]s are MSync envelopes, or LZ4
//! envelopes once [`crate::msync::lz4::CompressionTracker`] says the direction is wrapped.
//!
//! Invariants:
//! - Nothing is allocated from a length read off the wire before it is checked against a cap:
//!   frame payloads against [`WsConfig::max_frame`] (a frame claiming 2^63 bytes is a
//!   [`Problem::Oversize`]), reassembled messages against `max_message`, inflated messages
//!   against `max_inflated`, HTTP heads against `max_header`, bytes held while waiting for the
//!   peer's half of the handshake against `max_pending`.
//! - The events do not depend on how the streams are cut into chunks (only on the order in which
//!   the two directions are fed).
//! - Stream offsets are those of the caller: bytes before a direction's position are ignored,
//!   a jump forward is a gap, after which the direction resynchronises on the next frame header
//!   whose payload the [`FrameCheck`] finds plausible.
//! - Masking that does not match the direction (an unmasked client frame, a masked server
//!   frame) is decoded in sync, as Wireshark does, and reported once per direction: test rigs
//!   and some non-browser clients send such frames throughout. Resynchronisation keeps
//!   requiring the direction's masking, one of its best signals of a frame start, until the
//!   direction has shown in sync that it breaks the rule.
//! - After a rejected upgrade (a non-101 answer) the connection is HTTP again: the answer's
//!   body (by its `Content-Length`) is passed over and the client may send another upgrade on
//!   it, as clients that answer a 401 with credentials do. When the body's end cannot be told
//!   (chunked, or no length) both directions are ignored from there.

use std::borrow::Cow;

use flate2::{Decompress, FlushDecompress, Status};

use super::{FrameCheck, MsyncCheck, SkipReason};
use crate::msync::decode;
use crate::net::Dir;

/// Limits that keep one connection's memory bounded whatever the peers claim.
#[derive(Clone, Copy, Debug)]
pub struct WsConfig {
    /// Largest payload of one frame.
    pub max_frame: u64,
    /// Largest message reassembled from fragments (before inflation).
    pub max_message: usize,
    /// Largest message after permessage-deflate inflation.
    pub max_inflated: usize,
    /// Largest HTTP request or response head.
    pub max_header: usize,
    /// Largest amount of one direction's data held while the other direction's half of the
    /// handshake has not been seen.
    pub max_pending: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            max_frame: 16 << 20,
            max_message: 16 << 20,
            max_inflated: 16 << 20,
            max_header: 16 << 10,
            max_pending: 1 << 20,
        }
    }
}

/// Negotiated permessage-deflate parameters (RFC 7692 section 7.1), as the server accepted them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    /// LZ77 window of the server's messages, 8..=15.
    pub server_max_window_bits: u8,
    /// LZ77 window of the client's messages, 8..=15.
    pub client_max_window_bits: u8,
}

impl Default for DeflateParams {
    fn default() -> Self {
        DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

/// What the upgrade said. Fields the capture did not show are `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Handshake {
    /// Request target of the client's `GET`; `None` when the request was not seen.
    pub path: Option<String>,
    pub host: Option<String>,
    pub origin: Option<String>,
    pub user_agent: Option<String>,
    /// `Sec-WebSocket-Protocol` of the request (the client's offer).
    pub offered_protocols: Option<String>,
    /// `Sec-WebSocket-Extensions` of the request.
    pub offered_extensions: Option<String>,
    /// Status of the server's answer; `None` when it was not seen.
    pub status: Option<u16>,
    /// Reason phrase of the server's answer.
    pub reason: Option<String>,
    /// `Sec-WebSocket-Protocol` of the answer (the server's choice).
    pub protocol: Option<String>,
    /// `Sec-WebSocket-Extensions` of the answer (what is in force).
    pub extensions: Option<String>,
    /// permessage-deflate, when the answer accepted it.
    pub deflate: Option<DeflateParams>,
}

/// A control frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control<'a> {
    Ping {
        payload: &'a [u8],
    },
    Pong {
        payload: &'a [u8],
    },
    /// `code` is absent when the close frame has no body (as the web SDK sends it).
    Close {
        code: Option<u16>,
        reason: Cow<'a, str>,
    },
}

/// One complete data message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsMessage<'a> {
    pub dir: Dir,
    /// Stream offset of the first frame's header.
    pub offset: u64,
    /// Bytes from the first frame's header to the end of the last frame (control frames
    /// interleaved between fragments included).
    pub wire_len: u64,
    /// The message: unmasked, reassembled, inflated.
    pub data: &'a [u8],
    /// Opcode 2; text messages (opcode 1) are not MSync.
    pub binary: bool,
    /// Inflated by permessage-deflate; `payload_len` is then the compressed size.
    pub deflated: bool,
    /// Sum of the frames' payload lengths.
    pub payload_len: u64,
    /// Number of data frames the message was sent in.
    pub frames: u32,
}

/// Something wrong in the stream. Those marked "resync" make the direction look for the next
/// plausible frame header from the byte after the offending header's first; the others are
/// reported and parsing continues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A payload length over the cap (resync).
    Oversize { len: u64 },
    /// A reserved opcode (resync).
    BadOpcode(u8),
    /// RSV bits (as the high nibble of the first byte) that no negotiated extension defines
    /// (resync).
    ReservedBits(u8),
    /// A client frame without mask or a masked server frame: decoded all the same (unmasked
    /// when it has a key), reported for the first such frame of a direction only.
    Masking { masked: bool },
    /// A payload length not in its shortest encoding.
    NonMinimalLength,
    /// A control frame over 125 bytes or not final (resync).
    /// `fin` says which rule was broken: a fragmented control frame printed only its (valid)
    /// length, as if that were the fault.
    BadControl { len: u64, fin: bool },
    /// A continuation frame with no message in progress (resync).
    UnexpectedContinuation,
    /// A new data message started before the previous one's final fragment: the unfinished one
    /// (starting at `started`) is dropped.
    InterruptedMessage { started: u64 },
    /// A reassembled message over the cap: dropped.
    MessageTooLarge { limit: usize },
    /// A binary message with no bytes (after inflation, when deflated): it holds no MSync
    /// envelope, so it is reported instead of being decoded as an all-default one.
    EmptyMessage,
    /// permessage-deflate inflation failed (corrupt data, or history lost after a gap or
    /// mid-stream start).
    Inflate(String),
    /// Inflated message over the cap: dropped.
    InflateTooLarge { limit: usize },
    /// The direction has inflated more than its wire bytes allow (see
    /// [`crate::msync::decode::INFLATE_FREE`]):
    /// `inflated` bytes so far from `wire` bytes of stream. The message is dropped.
    InflateBudget { inflated: u64, wire: u64 },
    /// A close frame with a one-byte body.
    BadClose,
    /// Frames after this direction's close frame (reported once).
    DataAfterClose,
    /// The direction did not start with an HTTP request (client) or status line (server), or
    /// the head is malformed (resync).
    NotHttp,
    /// An HTTP head over the cap (resync).
    HeaderTooLarge { limit: usize },
    /// The client's request is not a WebSocket upgrade: the connection is ignored.
    NotUpgrade,
    /// The other direction's half of the handshake was lost or never came (within
    /// `max_pending` bytes): frames are read assuming the upgrade succeeded.
    HandshakeIncomplete,
}

impl Problem {
    /// A stable name for scripts (`dissect --json`'s `kind`).
    pub fn id(&self) -> &'static str {
        match self {
            Problem::Oversize { .. } => "oversize_frame",
            Problem::BadOpcode(_) => "reserved_opcode",
            Problem::ReservedBits(_) => "reserved_bits",
            Problem::Masking { .. } => "masking",
            Problem::NonMinimalLength => "non_minimal_length",
            Problem::BadControl { .. } => "bad_control_frame",
            Problem::UnexpectedContinuation => "unexpected_continuation",
            Problem::InterruptedMessage { .. } => "interrupted_message",
            Problem::MessageTooLarge { .. } => "message_too_large",
            Problem::EmptyMessage => "empty_message",
            Problem::Inflate(_) => "inflate_failed",
            Problem::InflateTooLarge { .. } => "inflate_too_large",
            Problem::InflateBudget { .. } => "inflate_budget",
            Problem::BadClose => "bad_close",
            Problem::DataAfterClose => "data_after_close",
            Problem::NotHttp => "not_http",
            Problem::HeaderTooLarge { .. } => "http_head_too_large",
            Problem::NotUpgrade => "not_upgrade",
            Problem::HandshakeIncomplete => "handshake_incomplete",
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Oversize { len } => write!(f, "frame payload of {len} bytes, over the cap"),
            Problem::BadOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            Problem::ReservedBits(bits) => {
                write!(f, "reserved bits {bits:#04x} set, no extension negotiated defines them")
            }
            Problem::Masking { masked: true } => f.write_str(
                "masked frame from the server (decoded; later ones of this direction not reported)",
            ),
            Problem::Masking { masked: false } => f.write_str(
                "unmasked frame from the client (decoded; later ones of this direction not reported)",
            ),
            Problem::NonMinimalLength => f.write_str("payload length not in its shortest form"),
            Problem::BadControl { len, fin: false } => {
                write!(f, "fragmented control frame ({len} bytes)")
            }
            Problem::BadControl { len, .. } => {
                write!(f, "control frame of {len} bytes (at most 125)")
            }
            Problem::UnexpectedContinuation => f.write_str("continuation frame with no message"),
            Problem::InterruptedMessage { started } => write!(
                f,
                "new message before the final fragment of the one at offset {started} (dropped)"
            ),
            Problem::MessageTooLarge { limit } => {
                write!(f, "message over the cap of {limit} bytes (dropped)")
            }
            Problem::EmptyMessage => f.write_str("empty binary message"),
            Problem::Inflate(e) => write!(f, "permessage-deflate: cannot inflate ({e})"),
            Problem::InflateTooLarge { limit } => {
                write!(f, "message inflates past the cap of {limit} bytes (dropped)")
            }
            Problem::InflateBudget { inflated, wire } => write!(
                f,
                "permessage-deflate: {inflated} bytes inflated from {wire} bytes of stream, \
                 past {} times: a deflate bomb (message dropped)",
                decode::INFLATE_PER_WIRE_BYTE
            ),
            Problem::BadClose => f.write_str("close frame with a one-byte body"),
            Problem::DataAfterClose => f.write_str("frames after this side's close frame"),
            Problem::NotHttp => f.write_str("not an HTTP request or status line"),
            Problem::HeaderTooLarge { limit } => {
                write!(f, "HTTP head over the cap of {limit} bytes")
            }
            Problem::NotUpgrade => f.write_str("HTTP request that is not a WebSocket upgrade"),
            Problem::HandshakeIncomplete => {
                f.write_str("the other half of the handshake was not captured: frames assumed")
            }
        }
    }
}

/// What [`WebSocket`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WsEvent<'a> {
    /// The server answered 101: frames follow in both directions.
    Upgrade(&'a Handshake),
    /// The server answered something else (401, 404, ...): the session ends with that reason.
    Rejected {
        status: u16,
        reason: &'a str,
        handshake: &'a Handshake,
    },
    Message(WsMessage<'a>),
    Control {
        dir: Dir,
        offset: u64,
        wire_len: u64,
        control: Control<'a>,
    },
    Problem {
        dir: Dir,
        offset: u64,
        problem: Problem,
    },
    /// Bytes not handed on as messages, and why.
    Skipped {
        dir: Dir,
        offset: u64,
        len: u64,
        why: SkipReason,
    },
}

/// Counters for `-V`-style summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WsStats {
    pub messages: [u64; 2],
    pub pings: [u64; 2],
    pub pongs: [u64; 2],
    pub closes: [u64; 2],
}

type Emit<'e> = dyn FnMut(WsEvent<'_>) + 'e;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading the HTTP head into `buf`.
    Http,
    /// Head read; holding later bytes in `buf` until the other direction's head settles the
    /// handshake.
    Held,
    /// In sync on frame boundaries.
    Frames,
    /// Looking for a frame header in `buf`.
    Resync,
    /// Not WebSocket any more (rejected upgrade, plain HTTP).
    Ignore,
}

/// permessage-deflate state of one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Deflate {
    Off,
    /// Not known (picked up mid-stream): RSV1 messages are inflated with the defaults.
    Unknown,
    On {
        takeover: bool,
        bits: u8,
    },
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: u64,
    hdr_len: usize,
    /// The length field used more bytes than needed.
    non_minimal: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Control,
    Data,
}

enum Run {
    Done,
    /// Sync lost: `buf` holds bytes to re-examine, and the data from index `.0` on follows.
    LostAt(usize),
}

/// Buffer capacity kept between messages: enough for the usual message, so that thousands of
/// connections do not each pin what their largest message once needed.
const SHRINK_ABOVE: usize = 16 << 10;
/// Payload bytes examined before a long candidate's payload is complete.
const START_CHECK: usize = 256;
/// Longest RSV1 payload a resynchronising direction will wait for to test by inflating it.
const MAX_DEFLATED_CANDIDATE: u64 = 1 << 20;
/// Work a resynchronising direction may spend examining whole candidate payloads (copying,
/// unmasking, inflating them): this much, plus [`RESYNC_WORK_PER_BYTE`] per byte it has
/// passed over. Candidates overlap: garbage can hold a header claiming megabytes every few
/// bytes, each of which would otherwise be copied in full (360 KB of them took 8.6 s). A
/// candidate longer than what is left is neither waited for nor examined, so a real message
/// that long right after a gap is lost (the ones after it are found), as with the
/// length-prefix splitter's `RESYNC_MAX_WAIT`.
const RESYNC_WORK_BASE: u64 = 256 << 10;
const RESYNC_WORK_PER_BYTE: u64 = 16;

struct Inflater {
    z: Decompress,
    takeover: bool,
}

struct DirState {
    dir: Dir,
    phase: Phase,
    /// Head (Http), held bytes (Held) or unexamined bytes (Resync), starting at `start`.
    buf: Vec<u8>,
    start: u64,
    /// Stream offset of the next byte expected.
    next: u64,
    deflate: Deflate,
    inflater: Option<Inflater>,
    /// Partial frame header.
    hdr: [u8; 14],
    hdr_have: usize,
    /// Stream offset of the current frame's header.
    frame_start: u64,
    /// The frame whose payload is being read, with its role and bytes read so far.
    frame: Option<(Frame, Role)>,
    got: u64,
    ctrl: Vec<u8>,
    msg: Vec<u8>,
    msg_active: bool,
    msg_binary: bool,
    msg_rsv1: bool,
    msg_start: u64,
    msg_frames: u32,
    msg_payload: u64,
    msg_over: bool,
    out: Vec<u8>,
    closed: bool,
    after_close_reported: bool,
    /// Frames read in sync whose masking did not match the direction. Once non-zero,
    /// resynchronisation accepts such frames too: the peer has shown that it sends them.
    odd_masking: u64,
    /// The direction has been in sync on frame boundaries (it was seen from its start, or a
    /// resynchronisation found a frame). Until then (a connection picked up mid-stream),
    /// resynchronisation also accepts frames with the wrong masking, but only two of them
    /// chaining exactly, both plausible: a client that never masks would otherwise have none
    /// of its frames read.
    ever_synced: bool,
    /// Bytes this direction's resynchronisation has passed over, and candidate payload bytes
    /// it has examined (see [`RESYNC_WORK_BASE`]), over the connection's life.
    resync_passed: u64,
    resync_spent: u64,
    /// Bytes of an HTTP head already searched for its end.
    scanned: usize,
    /// Stream offset the direction started at, and bytes it has inflated since (its allowance:
    /// [`crate::msync::decode::INFLATE_FREE`]; the HTTP head counts among its wire bytes).
    origin: u64,
    inflated: u64,
    /// Bytes of an HTTP body still to pass over before the next head (a refused upgrade's
    /// answer).
    body_left: u64,
}

impl DirState {
    fn new(dir: Dir, phase: Phase, start: u64, deflate: Deflate) -> Self {
        DirState {
            dir,
            phase,
            buf: Vec::new(),
            start,
            next: start,
            deflate,
            inflater: None,
            hdr: [0; 14],
            hdr_have: 0,
            frame_start: start,
            origin: start,
            inflated: 0,
            frame: None,
            got: 0,
            ctrl: Vec::new(),
            msg: Vec::new(),
            msg_active: false,
            msg_binary: false,
            msg_rsv1: false,
            msg_start: 0,
            msg_frames: 0,
            msg_payload: 0,
            msg_over: false,
            out: Vec::new(),
            closed: false,
            after_close_reported: false,
            odd_masking: 0,
            ever_synced: phase != Phase::Resync,
            resync_passed: 0,
            resync_spent: 0,
            scanned: 0,
            body_left: 0,
        }
    }

    fn problem(&self, offset: u64, problem: Problem, emit: &mut Emit<'_>) {
        emit(WsEvent::Problem { dir: self.dir, offset, problem });
    }

    /// Offset of the first byte of the partial frame or message in progress, if any.
    fn partial_start(&self) -> Option<u64> {
        if self.msg_active {
            Some(self.msg_start)
        } else if self.frame.is_some() || self.hdr_have > 0 {
            Some(self.frame_start)
        } else {
            None
        }
    }

    /// Drops the frame and message in progress; they end at `end` and are reported skipped.
    fn abandon_frames(&mut self, end: u64, why: SkipReason, emit: &mut Emit<'_>) {
        if let Some(s) = self.partial_start() {
            if end > s {
                emit(WsEvent::Skipped { dir: self.dir, offset: s, len: end - s, why });
            }
        }
        self.reset_frames();
    }

    fn reset_frames(&mut self) {
        self.hdr_have = 0;
        self.frame = None;
        self.got = 0;
        self.ctrl.clear();
        self.msg.clear();
        self.msg_active = false;
        self.msg_over = false;
    }

    /// Runs the in-sync frame parser over `data` at stream offset `base`.
    fn run_frames(
        &mut self,
        cfg: &WsConfig,
        stats: &mut WsStats,
        base: u64,
        data: &[u8],
        emit: &mut Emit<'_>,
    ) -> Run {
        let mut pos = 0usize;
        while pos < data.len() {
            let Some((frame, role)) = self.frame else {
                // Reading a header.
                let prev = self.hdr_have;
                let hdr_pos = pos;
                if prev == 0 {
                    self.frame_start = base + pos as u64;
                }
                let frame = if prev == 0 {
                    match parse_header(data.get(pos..).unwrap_or_default()) {
                        Some(f) => {
                            pos += f.hdr_len;
                            f
                        }
                        None => {
                            let rest = data.get(pos..).unwrap_or_default();
                            self.hdr_have = rest.len().min(14);
                            if let Some(h) = self.hdr.get_mut(..self.hdr_have) {
                                h.copy_from_slice(rest.get(..self.hdr_have).unwrap_or_default());
                            }
                            return Run::Done;
                        }
                    }
                } else {
                    // Complete the header byte by byte: at most 14 bytes, so this is cheap.
                    let mut parsed = None;
                    while let Some(&b) = data.get(pos) {
                        if let Some(slot) = self.hdr.get_mut(self.hdr_have) {
                            *slot = b;
                        }
                        self.hdr_have += 1;
                        pos += 1;
                        parsed = parse_header(self.hdr.get(..self.hdr_have).unwrap_or_default());
                        if parsed.is_some() || self.hdr_have >= 14 {
                            break;
                        }
                    }
                    match parsed {
                        Some(f) => f,
                        None => return Run::Done,
                    }
                };
                self.hdr_have = 0;
                if let Some(p) = self.fatal(cfg, &frame) {
                    self.problem(self.frame_start, p, emit);
                    if self.msg_active && self.frame_start > self.msg_start {
                        // The fragments read so far cannot be completed.
                        let (offset, len) = (self.msg_start, self.frame_start - self.msg_start);
                        let why = SkipReason::Dropped;
                        emit(WsEvent::Skipped { dir: self.dir, offset, len, why });
                    }
                    // The header itself may be garbage: look again from its second byte.
                    let held: Vec<u8> = self.hdr.get(1..prev).unwrap_or_default().to_vec();
                    self.lose_sync(self.frame_start + 1, &held);
                    return Run::LostAt(if prev == 0 { hdr_pos + 1 } else { hdr_pos });
                }
                let role = self.begin_frame(&frame, emit);
                let rest = data.get(pos..).unwrap_or_default();
                // Fast path: a whole unmasked single-frame message in this chunk is borrowed.
                if role == Role::Data
                    && frame.fin
                    && frame.len > 0
                    && frame.mask.is_none()
                    && self.msg.is_empty()
                    && !self.msg_rsv1
                    && !self.msg_over
                    && frame.len <= cfg.max_message as u64
                    && (rest.len() as u64) >= frame.len
                {
                    let n = frame.len as usize;
                    let body = rest.get(..n).unwrap_or_default();
                    pos += n;
                    if let Some(n) = stats.messages.get_mut(self.dir.index()) {
                        *n += 1;
                    }
                    emit(WsEvent::Message(WsMessage {
                        dir: self.dir,
                        offset: self.msg_start,
                        wire_len: base + pos as u64 - self.msg_start,
                        data: body,
                        binary: self.msg_binary,
                        deflated: false,
                        payload_len: frame.len,
                        frames: self.msg_frames,
                    }));
                    self.msg_active = false;
                    continue;
                }
                self.frame = Some((frame, role));
                self.got = 0;
                if frame.len == 0 {
                    self.end_frame(cfg, stats, base + pos as u64, emit);
                }
                continue;
            };
            let rest = data.get(pos..).unwrap_or_default();
            let want = frame.len - self.got;
            let take = usize::try_from(want).unwrap_or(usize::MAX).min(rest.len());
            let part = rest.get(..take).unwrap_or_default();
            self.payload(cfg, &frame, role, part, emit);
            self.got += take as u64;
            pos += take;
            if self.got >= frame.len {
                self.end_frame(cfg, stats, base + pos as u64, emit);
            }
        }
        Run::Done
    }

    fn lose_sync(&mut self, at: u64, held: &[u8]) {
        self.reset_frames();
        self.phase = Phase::Resync;
        self.start = at;
        self.buf.clear();
        self.buf.extend_from_slice(held);
    }

    /// A header that cannot be a frame of this direction in sync: real peers never send these,
    /// garbage often does, so the direction resynchronises. Masking is not among these tests:
    /// real peers do break that rule (see [`DirState::odd_masking`]).
    fn fatal(&self, cfg: &WsConfig, f: &Frame) -> Option<Problem> {
        if f.len > cfg.max_frame {
            return Some(Problem::Oversize { len: f.len });
        }
        if !known_opcode(f.opcode) {
            return Some(Problem::BadOpcode(f.opcode));
        }
        let rsv1_ok = self.deflate != Deflate::Off && matches!(f.opcode, 1 | 2);
        let bad_rsv = if rsv1_ok { f.rsv & 0x3 } else { f.rsv };
        if bad_rsv != 0 {
            return Some(Problem::ReservedBits(bad_rsv << 4));
        }
        if f.opcode >= 8 && (!f.fin || f.len > 125) {
            return Some(Problem::BadControl { len: f.len, fin: f.fin });
        }
        if f.opcode == 0 && !self.msg_active {
            return Some(Problem::UnexpectedContinuation);
        }
        None
    }

    /// Starts a frame that passed [`DirState::fatal`] and decides what its payload is for.
    fn begin_frame(&mut self, f: &Frame, emit: &mut Emit<'_>) -> Role {
        let at = self.frame_start;
        if self.closed && !self.after_close_reported {
            self.after_close_reported = true;
            self.problem(at, Problem::DataAfterClose, emit);
        }
        if f.mask.is_some() != (self.dir == Dir::C2S) {
            self.odd_mask(at, f.mask.is_some(), emit);
        }
        if f.non_minimal {
            self.problem(at, Problem::NonMinimalLength, emit);
        }
        let rsv1_ok = self.deflate != Deflate::Off && matches!(f.opcode, 1 | 2);
        if f.opcode >= 8 {
            self.ctrl.clear();
            return Role::Control;
        }
        if f.opcode == 0 {
            self.msg_frames = self.msg_frames.saturating_add(1);
            self.msg_payload = self.msg_payload.saturating_add(f.len);
            return Role::Data;
        }
        if self.msg_active {
            self.problem(at, Problem::InterruptedMessage { started: self.msg_start }, emit);
            // The fragments read so far are dropped: counted, as when a bad header ends them.
            if at > self.msg_start {
                let (offset, len) = (self.msg_start, at - self.msg_start);
                emit(WsEvent::Skipped { dir: self.dir, offset, len, why: SkipReason::Dropped });
            }
        }
        self.msg.clear();
        self.msg_active = true;
        self.msg_over = false;
        self.msg_binary = f.opcode == 2;
        self.msg_rsv1 = rsv1_ok && f.rsv & 0x4 != 0;
        self.msg_start = at;
        self.msg_frames = 1;
        self.msg_payload = f.len;
        Role::Data
    }

    /// A frame whose masking does not match the direction: counted, and reported the first
    /// time only, since a peer that sends one usually sends nothing else (one line per frame
    /// would bury the rest of the connection).
    #[cold]
    fn odd_mask(&mut self, at: u64, masked: bool, emit: &mut Emit<'_>) {
        self.odd_masking = self.odd_masking.saturating_add(1);
        if self.odd_masking == 1 {
            self.problem(at, Problem::Masking { masked }, emit);
        }
    }

    /// Payload bytes of the current frame, `self.got` bytes into it.
    fn payload(&mut self, cfg: &WsConfig, f: &Frame, role: Role, part: &[u8], emit: &mut Emit<'_>) {
        let phase = (self.got & 3) as usize;
        match role {
            Role::Control => {
                let room = 125usize.saturating_sub(self.ctrl.len()).min(part.len());
                let from = self.ctrl.len();
                self.ctrl.extend_from_slice(part.get(..room).unwrap_or_default());
                if let (Some(key), Some(tail)) = (f.mask, self.ctrl.get_mut(from..)) {
                    unmask(tail, key, phase);
                }
            }
            Role::Data => {
                if self.msg_over {
                    return;
                }
                if self.msg.len().saturating_add(part.len()) > cfg.max_message {
                    self.problem(
                        self.msg_start,
                        Problem::MessageTooLarge { limit: cfg.max_message },
                        emit,
                    );
                    self.msg_over = true;
                    self.msg = Vec::new();
                    return;
                }
                let from = self.msg.len();
                self.msg.extend_from_slice(part);
                if let (Some(key), Some(tail)) = (f.mask, self.msg.get_mut(from..)) {
                    unmask(tail, key, phase);
                }
            }
        }
    }

    /// The current frame is complete; `end` is the stream offset after it.
    fn end_frame(&mut self, cfg: &WsConfig, stats: &mut WsStats, end: u64, emit: &mut Emit<'_>) {
        let Some((f, role)) = self.frame.take() else { return };
        self.got = 0;
        let dir = self.dir;
        let di = dir.index();
        match role {
            Role::Control => {
                let offset = self.frame_start;
                let wire_len = end - offset;
                let control = match f.opcode {
                    9 => {
                        if let Some(n) = stats.pings.get_mut(di) {
                            *n += 1;
                        }
                        Control::Ping { payload: &self.ctrl }
                    }
                    10 => {
                        if let Some(n) = stats.pongs.get_mut(di) {
                            *n += 1;
                        }
                        Control::Pong { payload: &self.ctrl }
                    }
                    _ => {
                        if let Some(n) = stats.closes.get_mut(di) {
                            *n += 1;
                        }
                        self.closed = true;
                        match self.ctrl.as_slice() {
                            [] => Control::Close { code: None, reason: Cow::Borrowed("") },
                            [_] => {
                                emit(WsEvent::Problem { dir, offset, problem: Problem::BadClose });
                                Control::Close { code: None, reason: Cow::Borrowed("") }
                            }
                            [a, b, rest @ ..] => Control::Close {
                                code: Some(u16::from_be_bytes([*a, *b])),
                                reason: String::from_utf8_lossy(rest),
                            },
                        }
                    }
                };
                emit(WsEvent::Control { dir, offset, wire_len, control });
            }
            Role::Data => {
                if !f.fin {
                    return;
                }
                self.msg_active = false;
                if self.msg_over {
                    self.msg_over = false;
                    self.dropped(end, emit);
                    return;
                }
                let deflated = self.msg_rsv1;
                if deflated {
                    if let Err(p) = self.inflate(cfg, end) {
                        self.problem(self.msg_start, p, emit);
                        self.dropped(end, emit);
                        // A message that inflated past the cap left up to the cap in `out`:
                        // kept, every connection that ever got one would hold it.
                        self.release_buffers();
                        return;
                    }
                }
                let data: &[u8] = if deflated { &self.out } else { &self.msg };
                if self.msg_binary && data.is_empty() {
                    self.problem(self.msg_start, Problem::EmptyMessage, emit);
                    self.dropped(end, emit);
                    self.release_buffers();
                    return;
                }
                if let Some(n) = stats.messages.get_mut(di) {
                    *n += 1;
                }
                emit(WsEvent::Message(WsMessage {
                    dir,
                    offset: self.msg_start,
                    wire_len: end - self.msg_start,
                    data,
                    binary: self.msg_binary,
                    deflated,
                    payload_len: self.msg_payload,
                    frames: self.msg_frames,
                }));
                self.release_buffers();
            }
        }
    }

    /// The message ending at `end` is not handed on (too large, not inflatable, empty): its
    /// bytes are counted as skipped, so that the tally accounts for it beside the problem.
    fn dropped(&self, end: u64, emit: &mut Emit<'_>) {
        if end > self.msg_start {
            let (offset, len) = (self.msg_start, end - self.msg_start);
            emit(WsEvent::Skipped { dir: self.dir, offset, len, why: SkipReason::Dropped });
        }
    }

    /// Empties the message buffers once a message is done with, letting go of what a huge one
    /// grew them to: it must not pin them for the connection's lifetime.
    fn release_buffers(&mut self) {
        self.msg.clear();
        self.out.clear();
        if self.msg.capacity() > SHRINK_ABOVE {
            self.msg = Vec::new();
        }
        if self.out.capacity() > SHRINK_ABOVE {
            self.out = Vec::new();
        }
    }

    /// Inflates `msg`, the message ending at stream offset `end`, into `out` (RFC 7692 section
    /// 7.2.2: append 00 00 ff ff, then inflate), within the message cap and what is left of the
    /// direction's allowance.
    fn inflate(&mut self, cfg: &WsConfig, end: u64) -> Result<(), Problem> {
        let (takeover, bits) = match self.deflate {
            Deflate::On { takeover, bits } => (takeover, bits),
            Deflate::Unknown | Deflate::Off => (true, 15),
        };
        let inf = self.inflater.get_or_insert_with(|| Inflater {
            // zlib cannot inflate with an 8-bit window; a larger window decodes the same data.
            z: Decompress::new_with_window_bits(false, bits.clamp(9, 15)),
            takeover,
        });
        if !inf.takeover {
            inf.z.reset(false);
        }
        self.out.clear();
        let wire = end.saturating_sub(self.origin);
        let left = decode::inflate_left(wire, self.inflated);
        let left = usize::try_from(left).unwrap_or(usize::MAX);
        let cap = cfg.max_inflated.min(left);
        let res = inflate_into(&mut inf.z, &self.msg, &mut self.out, cap).and_then(|ended| {
            if ended {
                Ok(true)
            } else {
                inflate_into(&mut inf.z, &[0, 0, 0xff, 0xff], &mut self.out, cap)
            }
        });
        // What failed is charged too: the work was done.
        self.inflated = self.inflated.saturating_add(self.out.len() as u64);
        let res = match res {
            Err(Problem::InflateTooLarge { .. }) if cap < cfg.max_inflated => {
                Err(Problem::InflateBudget { inflated: self.inflated, wire })
            }
            other => other,
        };
        match res {
            // A final block: the next message starts a new stream (RFC 7692 section 7.2.3.3
            // lets a sender end a message this way).
            Ok(true) => inf.z.reset(false),
            Ok(false) => {}
            // The window is now unusable: the next message starts from a fresh one.
            Err(_) => self.inflater = None,
        }
        res.map(|_| ())
    }
}

/// Runs `z` over all of `input`, appending to `out`, failing past `cap` bytes. True when the
/// deflate stream ended (a final block).
fn inflate_into(
    z: &mut Decompress,
    input: &[u8],
    out: &mut Vec<u8>,
    cap: usize,
) -> Result<bool, Problem> {
    let mut consumed = 0usize;
    loop {
        if out.len() > cap {
            return Err(Problem::InflateTooLarge { limit: cap });
        }
        // Room for what this input will likely give (a few times its size), doubling as it
        // gives more: a fixed 64 KiB per message was kept by every direction of every
        // connection between messages.
        let left = input.len().saturating_sub(consumed);
        let want = out.len().max(left.saturating_mul(4)).clamp(256, 64 << 10);
        let room = cap.saturating_add(1).saturating_sub(out.len()).min(want);
        out.reserve(room);
        let (in0, out0) = (z.total_in(), out.len());
        let rest = input.get(consumed..).unwrap_or_default();
        let status = if out.capacity() > cap.saturating_add(1) {
            // The vector grew past the cap (it doubles), and zlib fills whatever spare room it
            // is given: only `room` is offered, so that the cap is not passed by up to the
            // vector's size.
            let total0 = z.total_out();
            out.resize(out0 + room, 0);
            let into = out.get_mut(out0..).unwrap_or_default();
            let r = z.decompress(rest, into, FlushDecompress::Sync);
            let made = usize::try_from(z.total_out() - total0).unwrap_or(usize::MAX);
            out.truncate(out0.saturating_add(made));
            r
        } else {
            z.decompress_vec(rest, out, FlushDecompress::Sync)
        }
        .map_err(|e| Problem::Inflate(e.to_string()))?;
        consumed += usize::try_from(z.total_in() - in0).unwrap_or(usize::MAX);
        let produced = out.len() - out0;
        if out.len() > cap {
            return Err(Problem::InflateTooLarge { limit: cap });
        }
        if status == Status::StreamEnd {
            return Ok(true);
        }
        let spare = out.capacity() > out.len();
        if consumed >= input.len() && spare {
            return Ok(false);
        }
        if produced == 0 && z.total_in() == in0 {
            if consumed >= input.len() {
                return Ok(false);
            }
            return Err(Problem::Inflate("inflate made no progress".into()));
        }
    }
}

/// XORs `buf` with the masking key, `buf[0]` being byte `phase` (mod 4) of the payload.
// Every index is masked with `& 3` into a `[u8; 4]`: it cannot be out of bounds.
#[allow(clippy::indexing_slicing)]
fn unmask(buf: &mut [u8], key: [u8; 4], phase: usize) {
    let k = [key[phase & 3], key[(phase + 1) & 3], key[(phase + 2) & 3], key[(phase + 3) & 3]];
    let k8 = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        if let Ok(a) = <[u8; 8]>::try_from(&*c) {
            c.copy_from_slice(&(u64::from_ne_bytes(a) ^ k8).to_ne_bytes());
        }
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= k[i & 3];
    }
}

fn known_opcode(op: u8) -> bool {
    matches!(op, 0 | 1 | 2 | 8 | 9 | 10)
}

/// A frame header at the start of `b`, or `None` if `b` ends inside it.
fn parse_header(b: &[u8]) -> Option<Frame> {
    let (&b0, &b1) = (b.first()?, b.get(1)?);
    let short = u64::from(b1 & 0x7f);
    let masked = b1 & 0x80 != 0;
    let (len, len_bytes, non_minimal) = match short {
        126 => {
            let l = u64::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]));
            (l, 2, l < 126)
        }
        127 => {
            let s = b.get(2..10)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            let l = u64::from_be_bytes(a);
            (l, 8, l <= 0xffff)
        }
        l => (l, 0, false),
    };
    let mut hdr_len = 2 + len_bytes;
    let mask = if masked {
        let k: [u8; 4] = b.get(hdr_len..hdr_len + 4)?.try_into().ok()?;
        hdr_len += 4;
        Some(k)
    } else {
        None
    };
    Some(Frame {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 0x7,
        opcode: b0 & 0xf,
        mask,
        len,
        hdr_len,
        non_minimal,
    })
}

/// For detection: whether `b` begins with a frame header that a peer could send right after a
/// whole message, with the mask bit `masked` (the message's own): a known opcode, no
/// continuation, RSV1 only on a data frame, a control frame final and short, a minimal length
/// within the default cap. `None` when `b` ends inside the header.
pub(super) fn next_header_fits(b: &[u8], masked: bool) -> Option<bool> {
    let f = parse_header(b)?;
    let rsv_ok = f.rsv == 0 || (f.rsv == 4 && matches!(f.opcode, 1 | 2));
    let control_ok = f.opcode < 8 || (f.fin && f.len <= 125);
    Some(
        f.mask.is_some() == masked
            && known_opcode(f.opcode)
            && f.opcode != 0
            && rsv_ok
            && control_ok
            && !f.non_minimal
            && f.len <= WsConfig::default().max_frame,
    )
}

/// Bytes of candidate payloads [`msync_frame_run`] may examine (copy, unmask, inflate): this
/// much plus four times the bytes searched, whatever their headers claim.
const RUN_WORK_BASE: u64 = 256 << 10;

/// For detection past the look-ahead (a connection picked up mid-stream inside a long
/// message): whether `b`, the first bytes of direction `dir`, holds two whole final binary
/// frames back to back whose payloads `check` finds plausible (unmasked, and inflated when
/// RSV1 is set, the second with the first's window as permessage-deflate's context takeover
/// has it), or (`last`: no more bytes will come) one that ends where `b` does. Server frames
/// must be unmasked; client frames are masked, or unmasked in both frames (test rigs send
/// them so). The work is bounded by what `b` holds.
pub(super) fn msync_frame_run<C: FrameCheck>(b: &[u8], dir: Dir, last: bool, check: &C) -> bool {
    let mut work = RUN_WORK_BASE.saturating_add((b.len() as u64).saturating_mul(4));
    // One inflater for every candidate, reset for each: a new one zeroes its state and window
    // (tens of KiB) each time, which cost more than the rest of the search.
    let mut z: Option<Decompress> = None;
    let mut i = 0usize;
    while let Some(k) = b.get(i..).and_then(|r| r.iter().position(|&x| x & 0xbf == 0x82)) {
        i += k;
        let rest = b.get(i..).unwrap_or_default();
        let masked = rest.get(1).is_some_and(|&b1| b1 & 0x80 != 0);
        if masked && dir == Dir::S2C {
            i += 1;
            continue;
        }
        // The next frame's first bytes turn most candidates away before their payload is
        // examined.
        let next_fits = parse_header(rest).is_some_and(|f| {
            let end = usize::try_from(f.len).unwrap_or(usize::MAX).saturating_add(f.hdr_len);
            match rest.get(end..) {
                Some([]) => last,
                Some([n0, n1, ..]) => n0 & 0xbf == 0x82 && (n1 & 0x80 != 0) == masked,
                _ => false,
            }
        });
        if !next_fits {
            i += 1;
            continue;
        }
        if let Some(z) = z.as_mut().filter(|z| z.total_in() > 0) {
            z.reset(false);
        }
        if let Some(end) = run_frame(rest, masked, &mut z, &mut work, check) {
            let next = rest.get(end..).unwrap_or_default();
            if (last && next.is_empty())
                || run_frame(next, masked, &mut z, &mut work, check).is_some()
            {
                return true;
            }
        }
        if work == 0 {
            return false;
        }
        i += 1;
    }
    false
}

/// The length of a whole final binary frame at the start of `b` with the mask bit `masked`
/// and a plausible payload, charging what examining it costs to `work`. `z` is the inflate
/// window (created by the first RSV1 frame, fresh or reset before the first frame of a run),
/// kept for the next frame.
fn run_frame<C: FrameCheck>(
    b: &[u8],
    masked: bool,
    z: &mut Option<Decompress>,
    work: &mut u64,
    check: &C,
) -> Option<usize> {
    let f = parse_header(b)?;
    let deflated = f.rsv == 4;
    if !f.fin || f.opcode != 2 || !(f.rsv == 0 || deflated) || f.non_minimal || f.len == 0 {
        return None;
    }
    if f.mask.is_some() != masked || f.len > *work {
        return None;
    }
    let len = usize::try_from(f.len).ok()?;
    let end = f.hdr_len.checked_add(len)?;
    let whole = b.get(f.hdr_len..end)?;
    if !deflated {
        // Most candidates fail on their first bytes: judge those before the whole payload.
        let mut head = whole.get(..START_CHECK.min(len)).unwrap_or_default().to_vec();
        if let Some(k) = f.mask {
            unmask(&mut head, k, 0);
        }
        if !check.plausible_start(&head, len) {
            return None;
        }
    }
    *work -= f.len;
    let mut body = Cow::Borrowed(whole);
    if let Some(k) = f.mask {
        let mut v = whole.to_vec();
        unmask(&mut v, k, 0);
        body = Cow::Owned(v);
    }
    if deflated {
        let z = z.get_or_insert_with(|| Decompress::new(false));
        let mut out = Vec::new();
        let cap = usize::try_from(*work).unwrap_or(usize::MAX).min(1 << 20);
        let ok = inflate_into(z, &body, &mut out, cap)
            .and_then(|ended| {
                if ended {
                    Ok(true)
                } else {
                    inflate_into(z, &[0, 0, 0xff, 0xff], &mut out, cap)
                }
            })
            .is_ok();
        *work = work.saturating_sub(out.len() as u64);
        if !ok {
            return None;
        }
        body = Cow::Owned(out);
    }
    check.plausible(&body).then_some(end)
}

thread_local! {
    /// The inflater that resynchronisation tries deflated candidates with, reset for each. A
    /// new one per candidate zeroed its state and 32 KiB window every time: on a capture
    /// picked up mid-stream with permessage-deflate, 70 % of all instructions.
    static PROBE_INFLATER: std::cell::RefCell<Option<Decompress>> =
        const { std::cell::RefCell::new(None) };
}

/// `f` run with this thread's probe inflater, reset (a fresh one should it be in use).
fn with_probe_inflater<T>(f: impl FnOnce(&mut Decompress) -> T) -> T {
    PROBE_INFLATER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => {
            let z = slot.get_or_insert_with(|| Decompress::new(false));
            z.reset(false);
            f(z)
        }
        Err(_) => f(&mut Decompress::new(false)),
    })
}

/// One connection's WebSocket state machine.
pub struct WebSocket<C: FrameCheck = MsyncCheck> {
    cfg: WsConfig,
    check: C,
    c2s: DirState,
    s2c: DirState,
    hs: Handshake,
    /// The request was parsed, or lost in a gap.
    have_request: bool,
    /// The answer was parsed (final status), or lost in a gap.
    have_response: bool,
    settled: bool,
    /// Length of the body of the server's last non-101 answer, when its head says it (`None`:
    /// chunked or up to the close).
    answer_body: Option<u64>,
    stats: WsStats,
}

impl<C: FrameCheck> WebSocket<C> {
    /// A connection seen from its start: both directions begin with the HTTP upgrade.
    pub fn new(cfg: WsConfig, check: C) -> Self {
        WebSocket {
            cfg,
            check,
            c2s: DirState::new(Dir::C2S, Phase::Http, 0, Deflate::Off),
            s2c: DirState::new(Dir::S2C, Phase::Http, 0, Deflate::Off),
            hs: Handshake::default(),
            have_request: false,
            have_response: false,
            settled: false,
            answer_body: None,
            stats: WsStats::default(),
        }
    }

    /// A connection picked up after its upgrade: both directions look for a frame header
    /// first. Direction streams start at `c2s_start` and `s2c_start`. RSV1 messages are inflated
    /// with permessage-deflate's defaults (context takeover, 15-bit windows); with takeover
    /// the first ones usually fail for want of history.
    pub fn new_midstream(cfg: WsConfig, check: C, c2s_start: u64, s2c_start: u64) -> Self {
        WebSocket {
            cfg,
            check,
            c2s: DirState::new(Dir::C2S, Phase::Resync, c2s_start, Deflate::Unknown),
            s2c: DirState::new(Dir::S2C, Phase::Resync, s2c_start, Deflate::Unknown),
            hs: Handshake::default(),
            have_request: true,
            have_response: true,
            settled: true,
            answer_body: None,
            stats: WsStats::default(),
        }
    }

    /// The check used to resynchronise, e.g. to tell it what the connection negotiated since.
    pub fn check_mut(&mut self) -> &mut C {
        &mut self.check
    }

    /// What the upgrade said so far.
    pub fn handshake(&self) -> &Handshake {
        &self.hs
    }

    pub fn stats(&self) -> &WsStats {
        &self.stats
    }

    /// Whether frames are being read (the upgrade succeeded or was assumed).
    pub fn open(&self) -> bool {
        self.settled && self.c2s.phase != Phase::Ignore
    }

    /// Frames of a direction whose masking did not match it (decoded; only the first one is
    /// reported).
    pub fn odd_masking(&self, dir: Dir) -> u64 {
        self.side(dir).odd_masking
    }

    /// Stream offset of the next byte a direction expects.
    pub fn position(&self, dir: Dir) -> u64 {
        self.side(dir).next
    }

    /// The handshake settled and both directions are between messages with nothing held, so
    /// [`WebSocket::finish`] would report nothing.
    pub fn at_rest(&self) -> bool {
        self.settled
            && [&self.c2s, &self.s2c].iter().all(|d| {
                d.phase == Phase::Frames
                    && d.hdr_have == 0
                    && d.frame.is_none()
                    && !d.msg_active
                    && d.buf.is_empty()
            })
    }

    /// Whether a direction is looking for a frame header.
    pub fn resyncing(&self, dir: Dir) -> bool {
        self.side(dir).phase == Phase::Resync
    }

    fn side(&self, dir: Dir) -> &DirState {
        match dir {
            Dir::C2S => &self.c2s,
            Dir::S2C => &self.s2c,
        }
    }

    fn side_mut(&mut self, dir: Dir) -> &mut DirState {
        match dir {
            Dir::C2S => &mut self.c2s,
            Dir::S2C => &mut self.s2c,
        }
    }

    /// Feeds the next in-order bytes of one direction, starting at stream offset `offset`.
    pub fn feed(&mut self, dir: Dir, offset: u64, data: &[u8], emit: &mut Emit<'_>) {
        let next = self.side(dir).next;
        let mut data = data;
        let mut offset = offset;
        if offset < next {
            let skip = usize::try_from(next - offset).unwrap_or(usize::MAX).min(data.len());
            data = data.get(skip..).unwrap_or_default();
            offset += skip as u64;
        }
        if data.is_empty() {
            return;
        }
        if offset > next {
            self.gap(dir, next, offset - next, emit);
        }
        self.side_mut(dir).next = offset + data.len() as u64;
        self.process(dir, offset, data, emit);
    }

    /// `len` bytes of `dir` at `offset` are lost.
    pub fn gap(&mut self, dir: Dir, offset: u64, len: u64, emit: &mut Emit<'_>) {
        let end = offset.saturating_add(len);
        let d = self.side_mut(dir);
        d.next = d.next.max(end);
        match d.phase {
            Phase::Ignore => return,
            Phase::Frames => d.abandon_frames(offset, SkipReason::Gap, emit),
            Phase::Http | Phase::Resync | Phase::Held => {
                if !d.buf.is_empty() {
                    // Bytes a resynchronisation was still examining belong to its skip.
                    let why =
                        if d.phase == Phase::Resync { SkipReason::Resync } else { SkipReason::Gap };
                    let (offset, len) = (d.start, d.buf.len() as u64);
                    emit(WsEvent::Skipped { dir, offset, len, why });
                }
            }
        }
        let was = d.phase;
        d.buf.clear();
        d.start = end;
        // A deflate window with a hole in it is useless.
        d.inflater = None;
        d.reset_frames();
        d.phase = Phase::Resync;
        if was == Phase::Http {
            // This direction's head is lost: settle the handshake without it.
            match dir {
                Dir::C2S => self.have_request = true,
                Dir::S2C => self.have_response = true,
            }
            self.settle(emit);
        }
    }

    /// End of both streams: whatever is buffered is reported skipped.
    pub fn finish(&mut self, emit: &mut Emit<'_>) {
        if !self.settled {
            // One half of the handshake never came (if neither did, this was not WebSocket).
            for (dir, have) in [(Dir::C2S, self.have_request), (Dir::S2C, self.have_response)] {
                let other = if dir == Dir::C2S { self.have_response } else { self.have_request };
                if !have && other {
                    let offset = self.side(dir).start;
                    let problem = Problem::HandshakeIncomplete;
                    emit(WsEvent::Problem { dir, offset, problem });
                }
            }
        }
        for dir in [Dir::C2S, Dir::S2C] {
            let d = self.side_mut(dir);
            match d.phase {
                Phase::Ignore => {}
                Phase::Frames => d.abandon_frames(d.next, SkipReason::End, emit),
                Phase::Http | Phase::Held | Phase::Resync => {
                    if !d.buf.is_empty() {
                        let why = match d.phase {
                            Phase::Resync => SkipReason::Resync,
                            // Frames held for a handshake that never completed (reported).
                            Phase::Held => SkipReason::Dropped,
                            _ => SkipReason::End,
                        };
                        let (offset, len) = (d.start, d.buf.len() as u64);
                        emit(WsEvent::Skipped { dir, offset, len, why });
                    }
                }
            }
            d.buf.clear();
            d.start = d.next;
            d.reset_frames();
        }
    }

    fn process(&mut self, dir: Dir, offset: u64, data: &[u8], emit: &mut Emit<'_>) {
        match self.side(dir).phase {
            Phase::Ignore => {}
            Phase::Http => {
                let d = self.side_mut(dir);
                let skip = usize::try_from(d.body_left).unwrap_or(usize::MAX).min(data.len());
                d.body_left -= skip as u64;
                let (offset, data) = (offset + skip as u64, data.get(skip..).unwrap_or_default());
                if data.is_empty() {
                    return;
                }
                if d.buf.is_empty() {
                    d.start = offset;
                }
                d.buf.extend_from_slice(data);
                self.http(dir, emit);
            }
            Phase::Held => {
                let d = self.side_mut(dir);
                if d.buf.is_empty() {
                    d.start = offset;
                }
                d.buf.extend_from_slice(data);
                if d.buf.len() > self.cfg.max_pending {
                    self.have_request = true;
                    self.have_response = true;
                    self.settle(emit);
                }
            }
            Phase::Frames => {
                let cfg = self.cfg;
                let (d, stats) = match dir {
                    Dir::C2S => (&mut self.c2s, &mut self.stats),
                    Dir::S2C => (&mut self.s2c, &mut self.stats),
                };
                match d.run_frames(&cfg, stats, offset, data, emit) {
                    Run::Done => {}
                    Run::LostAt(i) => {
                        d.buf.extend_from_slice(data.get(i..).unwrap_or_default());
                        self.resync(dir, emit);
                    }
                }
            }
            Phase::Resync => {
                let d = self.side_mut(dir);
                if d.buf.is_empty() {
                    d.start = offset;
                }
                d.buf.extend_from_slice(data);
                self.resync(dir, emit);
            }
        }
    }

    /// Looks for the end of the HTTP head in `buf`; handles it when complete.
    fn http(&mut self, dir: Dir, emit: &mut Emit<'_>) {
        let max_header = self.cfg.max_header;
        let d = self.side_mut(dir);
        let expect: &[u8] = if dir == Dir::C2S { b"GET " } else { b"HTTP/" };
        let n = d.buf.len().min(expect.len());
        if d.buf.get(..n) != expect.get(..n) {
            let at = d.start;
            d.problem(at, Problem::NotHttp, emit);
            return self.head_failed(dir, emit);
        }
        // Resume the search a little before where the last one stopped: the blank line may
        // straddle chunks.
        let from = d.scanned.saturating_sub(3);
        d.scanned = d.buf.len();
        let Some(end) = head_end(d.buf.get(from..).unwrap_or_default()).map(|e| e + from) else {
            if d.buf.len() > max_header {
                let at = d.start;
                d.problem(at, Problem::HeaderTooLarge { limit: max_header }, emit);
                self.head_failed(dir, emit);
            }
            return;
        };
        if end > max_header {
            let at = d.start;
            d.problem(at, Problem::HeaderTooLarge { limit: max_header }, emit);
            return self.head_failed(dir, emit);
        }
        d.scanned = 0;
        let rest = d.buf.split_off(end);
        let head_at = d.start;
        let head = parse_head(&d.buf);
        d.buf.clear();
        let rest_at = head_at + end as u64;
        d.start = rest_at;
        match dir {
            Dir::C2S => {
                let ok = head.first.len() >= 3
                    && head.first.get(1).is_some_and(|t| !t.is_empty())
                    && head.first.get(2).is_some_and(|v| v.starts_with("HTTP/"));
                if !ok {
                    self.c2s.problem(head_at, Problem::NotHttp, emit);
                    self.c2s.buf = rest;
                    self.c2s.start = rest_at;
                    return self.head_failed(dir, emit);
                }
                let upgrade = head.get("upgrade").unwrap_or_default();
                if !upgrade.split(',').any(|t| t.trim().eq_ignore_ascii_case("websocket")) {
                    self.c2s.problem(head_at, Problem::NotUpgrade, emit);
                    self.c2s.phase = Phase::Ignore;
                    self.s2c.phase = Phase::Ignore;
                    self.c2s.buf.clear();
                    self.s2c.buf.clear();
                    return;
                }
                self.hs.path = head.first.get(1).cloned();
                self.hs.host = head.get("host");
                self.hs.origin = head.get("origin");
                self.hs.user_agent = head.get("user-agent");
                self.hs.offered_protocols = head.get("sec-websocket-protocol");
                self.hs.offered_extensions = head.get("sec-websocket-extensions");
                self.have_request = true;
            }
            Dir::S2C => {
                let status = head.first.get(1).and_then(|s| s.parse::<u16>().ok());
                let Some(status) =
                    status.filter(|_| head.first.first().is_some_and(|v| v.starts_with("HTTP/")))
                else {
                    self.s2c.problem(head_at, Problem::NotHttp, emit);
                    self.s2c.buf = rest;
                    self.s2c.start = rest_at;
                    return self.head_failed(dir, emit);
                };
                if (100..200).contains(&status) && status != 101 {
                    // An interim answer: the real one follows.
                    self.s2c.buf = rest;
                    self.s2c.start = rest_at;
                    if !self.s2c.buf.is_empty() {
                        self.http(dir, emit);
                    }
                    return;
                }
                self.answer_body = body_length(&head, status);
                self.hs.status = Some(status);
                self.hs.reason = Some(head.reason.clone());
                self.hs.protocol = head.get("sec-websocket-protocol");
                self.hs.extensions = head.get("sec-websocket-extensions");
                if status == 101 {
                    self.hs.deflate = self.hs.extensions.as_deref().and_then(parse_deflate);
                }
                self.have_response = true;
            }
        }
        let settled = self.settled;
        let d = self.side_mut(dir);
        d.phase = Phase::Held;
        d.buf = rest;
        d.start = rest_at;
        if settled {
            // The handshake was settled without this head (the other side gave up waiting):
            // what follows it is frames.
            d.phase = Phase::Frames;
            let held = std::mem::take(&mut d.buf);
            if !held.is_empty() {
                self.process(dir, rest_at, &held, emit);
            }
        } else {
            self.settle(emit);
        }
    }

    /// A direction's head could not be read: that half of the handshake counts as lost and
    /// the direction looks for frames in what it holds.
    fn head_failed(&mut self, dir: Dir, emit: &mut Emit<'_>) {
        match dir {
            Dir::C2S => self.have_request = true,
            Dir::S2C => self.have_response = true,
        }
        self.side_mut(dir).phase = Phase::Resync;
        self.settle(emit);
        if self.side(dir).phase == Phase::Resync {
            self.resync(dir, emit);
        }
    }

    /// Once both halves of the handshake are in (or lost), reports it and releases the bytes
    /// each direction held.
    fn settle(&mut self, emit: &mut Emit<'_>) {
        if self.settled || !self.have_request || !self.have_response {
            return;
        }
        self.settled = true;
        match self.hs.status {
            Some(101) => {
                emit(WsEvent::Upgrade(&self.hs));
            }
            Some(status) => {
                let reason = self.hs.reason.as_deref().unwrap_or_default();
                emit(WsEvent::Rejected { status, reason, handshake: &self.hs });
                return self.after_refusal(emit);
            }
            // The answer was lost: assume the upgrade succeeded.
            None => {
                let offset = self.s2c.start;
                let problem = Problem::HandshakeIncomplete;
                emit(WsEvent::Problem { dir: Dir::S2C, offset, problem });
            }
        }
        if self.hs.path.is_none() {
            let offset = self.c2s.start;
            let problem = Problem::HandshakeIncomplete;
            emit(WsEvent::Problem { dir: Dir::C2S, offset, problem });
        }
        let (c, s) = match (self.hs.status, self.hs.deflate) {
            (Some(_), None) => (Deflate::Off, Deflate::Off),
            (Some(_), Some(p)) => (
                Deflate::On {
                    takeover: !p.client_no_context_takeover,
                    bits: p.client_max_window_bits,
                },
                Deflate::On {
                    takeover: !p.server_no_context_takeover,
                    bits: p.server_max_window_bits,
                },
            ),
            (None, _) => (Deflate::Unknown, Deflate::Unknown),
        };
        self.c2s.deflate = c;
        self.s2c.deflate = s;
        for dir in [Dir::C2S, Dir::S2C] {
            let d = self.side_mut(dir);
            if d.phase == Phase::Held {
                d.phase = Phase::Frames;
                let held = std::mem::take(&mut d.buf);
                let at = d.start;
                if !held.is_empty() {
                    self.process(dir, at, &held, emit);
                }
            }
        }
    }

    /// The upgrade was refused: the connection goes back to HTTP, where the client may try
    /// again (every message of a retry that succeeds was dropped unreported before). What each
    /// direction held after its head is read again as HTTP, past the answer's body.
    fn after_refusal(&mut self, emit: &mut Emit<'_>) {
        let Some(body) = self.answer_body.take() else {
            // Where the answer ends is not known: nothing after it can be read.
            for d in [&mut self.c2s, &mut self.s2c] {
                d.phase = Phase::Ignore;
                d.buf = Vec::new();
            }
            return;
        };
        self.settled = false;
        self.have_request = false;
        self.have_response = false;
        self.hs = Handshake::default();
        for dir in [Dir::C2S, Dir::S2C] {
            let d = self.side_mut(dir);
            d.phase = Phase::Http;
            d.scanned = 0;
            d.body_left = if dir == Dir::S2C { body } else { 0 };
            let held = std::mem::take(&mut d.buf);
            let at = d.start;
            if !held.is_empty() {
                self.process(dir, at, &held, emit);
            }
            if self.settled {
                // The held bytes settled another handshake, which released what the other
                // direction held.
                return;
            }
        }
    }

    /// Looks for frame boundaries in `buf`, emitting what it skips, until the buffer is used up
    /// or needs more data. Each round moves past at least one byte.
    fn resync(&mut self, dir: Dir, emit: &mut Emit<'_>) {
        loop {
            let buf = std::mem::take(&mut self.side_mut(dir).buf);
            let (at, found, spent) = self.find_boundary(dir, &buf);
            let cfg = self.cfg;
            let (d, stats) = match dir {
                Dir::C2S => (&mut self.c2s, &mut self.stats),
                Dir::S2C => (&mut self.s2c, &mut self.stats),
            };
            d.resync_passed = d.resync_passed.saturating_add(at as u64);
            d.resync_spent = d.resync_spent.saturating_add(spent);
            if at > 0 {
                let why = SkipReason::Resync;
                emit(WsEvent::Skipped { dir, offset: d.start, len: at as u64, why });
            }
            d.start += at as u64;
            if !found {
                let mut buf = buf;
                buf.drain(..at);
                d.buf = buf;
                return;
            }
            d.phase = Phase::Frames;
            d.ever_synced = true;
            d.reset_frames();
            d.inflater = None;
            let base = d.start;
            match d.run_frames(&cfg, stats, base, buf.get(at..).unwrap_or_default(), emit) {
                Run::Done => return,
                Run::LostAt(i) => {
                    d.buf.extend_from_slice(buf.get(at + i..).unwrap_or_default());
                }
            }
        }
    }

    /// The first offset in `buf` where a frame plausibly starts (`true`), or the first that
    /// might once more data arrives (`false`; `buf.len()` if none), and the work spent on
    /// whole candidates on the way.
    fn find_boundary(&self, dir: Dir, buf: &[u8]) -> (usize, bool, u64) {
        let d = self.side(dir);
        let mut spent = 0u64;
        let mut i = 0usize;
        while i < buf.len() {
            // Most bytes cannot start a final binary frame: they are passed over before any
            // other work (this scan runs over every connection picked up mid-stream).
            match buf.get(i..).and_then(|r| r.iter().position(|&b| b & 0x8f == 0x82)) {
                Some(k) => i += k,
                None => return (buf.len(), false, spent),
            }
            // What examining a candidate here may cost: it depends only on the bytes, never
            // on how they were cut into chunks.
            let passed = d.resync_passed.saturating_add(i as u64);
            let budget = RESYNC_WORK_BASE
                .saturating_add(passed.saturating_mul(RESYNC_WORK_PER_BYTE))
                .saturating_sub(d.resync_spent.saturating_add(spent));
            let masking = if d.odd_masking > 0 {
                Masking::Any
            } else if d.ever_synced {
                Masking::Direction
            } else {
                Masking::WrongIfChained
            };
            match self.candidate(dir, d.deflate, masking, buf.get(i..).unwrap_or_default(), budget)
            {
                (Cand::Yes, w) => return (i, true, spent + w),
                (Cand::Need, _) => return (i, false, spent),
                (Cand::No, w) => {
                    spent += w;
                    i += 1;
                }
            }
        }
        (i, false, spent)
    }

    /// Whether a final binary frame of this direction starts at `b[0]` whose payload the check
    /// finds plausible (inflated first if RSV1 says so), and the work that took. A candidate
    /// whose payload (or inflated payload) exceeds `budget` is not one. Which masking it may
    /// have is `masking`'s: a header whose mask bit is wrong is judged by its payload like any
    /// other, under the same budget, when that is allowed.
    fn candidate(
        &self,
        dir: Dir,
        deflate: Deflate,
        masking: Masking,
        b: &[u8],
        budget: u64,
    ) -> (Cand, u64) {
        let wrong = b.get(1).is_some_and(|&b1| (b1 & 0x80 != 0) != (dir == Dir::C2S));
        if !(wrong && masking == Masking::WrongIfChained) {
            return self.one_candidate(dir, deflate, masking == Masking::Any, b, budget);
        }
        // A frame with the wrong masking, on a direction that has shown nothing yet: it counts
        // only if the next frame, right after it, has the same masking and is plausible too.
        // The next header is looked at first: it turns most candidates away before their
        // payload is examined (copied, inflated).
        let Some(f) = parse_header(b) else { return (Cand::Need, 0) };
        let end = usize::try_from(f.len).unwrap_or(usize::MAX).saturating_add(f.hdr_len);
        let next = b.get(end..).unwrap_or_default();
        if let (Some(&n0), Some(&n1)) = (next.first(), next.get(1)) {
            let same_mask = (n1 & 0x80 != 0) != (dir == Dir::C2S);
            if n0 & 0xbf != 0x82 || !same_mask {
                return (Cand::No, 0);
            }
        }
        let (first, w) = self.one_candidate(dir, deflate, true, b, budget);
        if !matches!(first, Cand::Yes) {
            return (first, w);
        }
        if next.len() < 2 {
            return (Cand::Need, 0);
        }
        match self.one_candidate(dir, deflate, true, next, budget.saturating_sub(w)) {
            (Cand::Yes, w2) => (Cand::Yes, w.saturating_add(w2)),
            (Cand::Need, _) => (Cand::Need, 0),
            (Cand::No, w2) => (Cand::No, w.saturating_add(w2)),
        }
    }

    /// [`WebSocket::candidate`] for one frame: its masking must match the direction unless
    /// `any_mask`.
    fn one_candidate(
        &self,
        dir: Dir,
        deflate: Deflate,
        any_mask: bool,
        b: &[u8],
        budget: u64,
    ) -> (Cand, u64) {
        let Some(&b0) = b.first() else { return (Cand::Need, 0) };
        let rsv_ok = match b0 & 0x70 {
            0 => true,
            0x40 => deflate != Deflate::Off,
            _ => false,
        };
        if b0 & 0x8f != 0x82 || !rsv_ok {
            return (Cand::No, 0);
        }
        let Some(&b1) = b.get(1) else { return (Cand::Need, 0) };
        if (b1 & 0x80 != 0) != (dir == Dir::C2S) && !any_mask {
            return (Cand::No, 0);
        }
        let Some(f) = parse_header(b) else { return (Cand::Need, 0) };
        if f.non_minimal || f.len == 0 || f.len > self.cfg.max_frame || f.len > budget {
            return (Cand::No, 0);
        }
        let deflated = f.rsv & 0x4 != 0;
        if deflated && f.len > MAX_DEFLATED_CANDIDATE {
            return (Cand::No, 0);
        }
        let payload = b.get(f.hdr_len..).unwrap_or_default();
        let len = usize::try_from(f.len).unwrap_or(usize::MAX);
        let Some(whole) = payload.get(..len) else {
            if !deflated {
                let mut head =
                    payload.get(..START_CHECK.min(payload.len())).unwrap_or_default().to_vec();
                if let Some(k) = f.mask {
                    unmask(&mut head, k, 0);
                }
                if !self.check.plausible_start(&head, len) {
                    return (Cand::No, 0);
                }
            }
            return (Cand::Need, 0);
        };
        let mut work = f.len;
        let mut body = Cow::Borrowed(whole);
        if let Some(k) = f.mask {
            let mut b = whole.to_vec();
            unmask(&mut b, k, 0);
            body = Cow::Owned(b);
        }
        if deflated {
            let mut out = Vec::new();
            // What inflating may produce is part of the work.
            let left = budget.saturating_sub(work);
            let cap = self.cfg.max_inflated.min(usize::try_from(left).unwrap_or(usize::MAX));
            let ok = with_probe_inflater(|z| {
                inflate_into(z, &body, &mut out, cap)
                    .and_then(|ended| {
                        if ended {
                            Ok(true)
                        } else {
                            inflate_into(z, &[0, 0, 0xff, 0xff], &mut out, cap)
                        }
                    })
                    .is_ok()
            });
            work = work.saturating_add(out.len() as u64);
            if !ok {
                return (Cand::No, work);
            }
            body = Cow::Owned(out);
        }
        if self.check.plausible(&body) {
            (Cand::Yes, work)
        } else {
            (Cand::No, work)
        }
    }
}

enum Cand {
    Yes,
    No,
    Need,
}

/// Which masking a resynchronising direction accepts in a frame.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Masking {
    /// The direction's own (client frames masked, server frames not).
    Direction,
    /// Either (the direction has sent frames with the wrong masking in sync).
    Any,
    /// The direction's own, or the wrong one in two plausible frames chaining exactly.
    WrongIfChained,
}

/// Index after the blank line ending an HTTP head (CRLF or bare LF lines), if present.
pub(super) fn head_end(b: &[u8]) -> Option<usize> {
    let mut i = 0usize;
    while let Some(p) = b.get(i..).and_then(|r| r.iter().position(|&c| c == b'\n')) {
        let nl = i + p;
        match (b.get(nl + 1), b.get(nl + 2)) {
            (Some(b'\n'), _) => return Some(nl + 2),
            (Some(b'\r'), Some(b'\n')) => return Some(nl + 3),
            _ => {}
        }
        i = nl + 1;
    }
    None
}

/// An HTTP head: the first line's words and the header fields (names lowercased).
pub(super) struct Head {
    pub(super) first: Vec<String>,
    /// The status line's reason phrase (everything after the status code).
    reason: String,
    fields: Vec<(String, String)>,
}

impl Head {
    /// A field's value; repeated fields are joined with ", " as RFC 9110 allows.
    pub(super) fn get(&self, name: &str) -> Option<String> {
        let mut out: Option<String> = None;
        for (n, v) in &self.fields {
            if n == name {
                match &mut out {
                    Some(o) => {
                        o.push_str(", ");
                        o.push_str(v);
                    }
                    None => out = Some(v.clone()),
                }
            }
        }
        out
    }
}

pub(super) fn parse_head(b: &[u8]) -> Head {
    let text = String::from_utf8_lossy(b);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first_line = lines.next().unwrap_or_default();
    let first: Vec<String> = first_line.split_whitespace().map(str::to_string).collect();
    let reason = first_line
        .trim()
        .splitn(3, char::is_whitespace)
        .nth(2)
        .map(|r| r.trim().to_string())
        .unwrap_or_default();
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            // An obsolete folded continuation line.
            if let Some((_, v)) = fields.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((n, v)) = line.split_once(':') {
            fields.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Head { first, reason, fields }
}

/// Length of the body of an answer with this head and status, when the head says where it
/// ends (RFC 9112 section 6.3): `None` for a chunked body or one that runs to the close.
fn body_length(head: &Head, status: u16) -> Option<u64> {
    if status == 204 || status == 304 || (100..200).contains(&status) {
        return Some(0);
    }
    if head.get("transfer-encoding").is_some() {
        return None;
    }
    head.get("content-length").and_then(|v| v.trim().parse::<u64>().ok())
}

/// permessage-deflate parameters from the server's `Sec-WebSocket-Extensions`, if it accepted
/// that extension.
fn parse_deflate(ext: &str) -> Option<DeflateParams> {
    for e in ext.split(',') {
        let mut parts = e.split(';').map(str::trim);
        if !parts.next().is_some_and(|n| n.eq_ignore_ascii_case("permessage-deflate")) {
            continue;
        }
        let mut p = DeflateParams::default();
        for param in parts {
            let (k, v) = match param.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
                None => (param, None),
            };
            let bits = v.and_then(|v| v.parse::<u8>().ok()).filter(|b| (8..=15).contains(b));
            match k.to_ascii_lowercase().as_str() {
                "server_no_context_takeover" => p.server_no_context_takeover = true,
                "client_no_context_takeover" => p.client_no_context_takeover = true,
                "server_max_window_bits" => p.server_max_window_bits = bits.unwrap_or(15),
                "client_max_window_bits" => p.client_max_window_bits = bits.unwrap_or(15),
                _ => {}
            }
        }
        return Some(p);
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::frame::testutil::{body, TestCheck};

    /// Problems are told in words (not as Rust's debug text), each under its own stable name.
    #[test]
    fn problems_have_words_and_distinct_names() {
        let all = [
            Problem::Oversize { len: 9 },
            Problem::BadOpcode(3),
            Problem::ReservedBits(0x40),
            Problem::Masking { masked: true },
            Problem::Masking { masked: false },
            Problem::NonMinimalLength,
            Problem::BadControl { len: 200, fin: true },
            Problem::BadControl { len: 2, fin: false },
            Problem::UnexpectedContinuation,
            Problem::InterruptedMessage { started: 5 },
            Problem::MessageTooLarge { limit: 7 },
            Problem::EmptyMessage,
            Problem::Inflate("invalid distance".into()),
            Problem::InflateTooLarge { limit: 7 },
            Problem::InflateBudget { inflated: 9, wire: 1 },
            Problem::BadClose,
            Problem::DataAfterClose,
            Problem::NotHttp,
            Problem::HeaderTooLarge { limit: 7 },
            Problem::NotUpgrade,
            Problem::HandshakeIncomplete,
        ];
        let mut names = std::collections::BTreeSet::new();
        for p in &all {
            let text = p.to_string();
            assert!(!text.contains('{') && !text.contains("Some("), "{p:?}: {text}");
            assert!(!text.is_empty() && !text.contains("::"), "{p:?}: {text}");
            assert!(p.id().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{p:?}");
            names.insert(p.id());
        }
        // Two texts for masking and for control frames, one name each.
        assert_eq!(names.len(), all.len() - 2);
        assert!(Problem::Masking { masked: true }
            .to_string()
            .starts_with("masked frame from the server (decoded"));
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Upgrade(Handshake),
        Rejected(u16, String),
        Msg {
            dir: Dir,
            offset: u64,
            wire_len: u64,
            data: Vec<u8>,
            binary: bool,
            deflated: bool,
            frames: u32,
        },
        Ping(Dir, Vec<u8>),
        Pong(Dir, Vec<u8>),
        Close(Dir, Option<u16>, String),
        Problem(Dir, u64, Problem),
        Skipped(Dir, u64, u64),
    }

    fn to_ev(e: WsEvent<'_>) -> Ev {
        match e {
            WsEvent::Upgrade(h) => Ev::Upgrade(h.clone()),
            WsEvent::Rejected { status, reason, .. } => Ev::Rejected(status, reason.to_string()),
            WsEvent::Message(m) => Ev::Msg {
                dir: m.dir,
                offset: m.offset,
                wire_len: m.wire_len,
                data: m.data.to_vec(),
                binary: m.binary,
                deflated: m.deflated,
                frames: m.frames,
            },
            WsEvent::Control { dir, control, .. } => match control {
                Control::Ping { payload } => Ev::Ping(dir, payload.to_vec()),
                Control::Pong { payload } => Ev::Pong(dir, payload.to_vec()),
                Control::Close { code, reason } => Ev::Close(dir, code, reason.into_owned()),
            },
            WsEvent::Problem { dir, offset, problem } => Ev::Problem(dir, offset, problem),
            WsEvent::Skipped { dir, offset, len, .. } => Ev::Skipped(dir, offset, len),
        }
    }

    /// Adjacent skips of one direction merged: how garbage is cut into skips depends on when
    /// bytes arrive.
    fn merge_skips(evs: Vec<Ev>) -> Vec<Ev> {
        let mut out: Vec<Ev> = Vec::new();
        for e in evs {
            if let (Some(Ev::Skipped(d0, o0, l0)), Ev::Skipped(d1, o1, l1)) = (out.last_mut(), &e) {
                if d0 == d1 && *o0 + *l0 == *o1 {
                    *l0 += l1;
                    continue;
                }
            }
            out.push(e);
        }
        out
    }

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A frame; `wide` forces the 64-bit length form.
    fn frame(b0: u8, mask: Option<[u8; 4]>, payload: &[u8], wide: bool) -> Vec<u8> {
        let mut f = vec![b0];
        let m = if mask.is_some() { 0x80 } else { 0 };
        let n = payload.len();
        if wide {
            f.push(m | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        } else if n < 126 {
            f.push(m | n as u8);
        } else if n <= 0xffff {
            f.push(m | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            f.push(m | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
        let mut p = payload.to_vec();
        if let Some(k) = mask {
            f.extend_from_slice(&k);
            for (i, b) in p.iter_mut().enumerate() {
                *b ^= k[i % 4];
            }
        }
        f.extend_from_slice(&p);
        f
    }

    fn cframe(b0: u8, payload: &[u8]) -> Vec<u8> {
        frame(b0, Some(KEY), payload, false)
    }
    fn sframe(b0: u8, payload: &[u8]) -> Vec<u8> {
        frame(b0, None, payload, false)
    }

    const REQUEST: &str = "GET /ws HTTP/1.1\r\nHost: im-api.example.com\r\nupgrade:  WebSocket\r\nConnection: Upgrade\r\nOrigin: http://localhost:3000\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: msync\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

    fn response(ext: &str) -> String {
        let ext = if ext.is_empty() {
            String::new()
        } else {
            format!("Sec-WebSocket-Extensions: {ext}\r\n")
        };
        format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: msync\r\n{ext}\r\n")
    }

    fn cfg() -> WsConfig {
        WsConfig {
            max_frame: 100_000,
            max_message: 200_000,
            max_inflated: 200_000,
            ..WsConfig::default()
        }
    }

    /// Feeds each direction's chunks (c2s first), then finishes.
    fn run<C: FrameCheck>(
        ws: &mut WebSocket<C>,
        c2s: &[(u64, &[u8])],
        s2c: &[(u64, &[u8])],
    ) -> Vec<Ev> {
        let mut out = Vec::new();
        for &(o, d) in c2s {
            ws.feed(Dir::C2S, o, d, &mut |e| out.push(to_ev(e)));
        }
        for &(o, d) in s2c {
            ws.feed(Dir::S2C, o, d, &mut |e| out.push(to_ev(e)));
        }
        ws.finish(&mut |e| out.push(to_ev(e)));
        out
    }

    fn run_whole(c2s: &[u8], s2c: &[u8]) -> Vec<Ev> {
        let mut ws = WebSocket::new(cfg(), TestCheck);
        run(&mut ws, &[(0, c2s)], &[(0, s2c)])
    }

    fn msgs(evs: &[Ev]) -> Vec<(Dir, Vec<u8>)> {
        evs.iter()
            .filter_map(|e| match e {
                Ev::Msg { dir, data, .. } => Some((*dir, data.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn upgrade_then_masked_and_plain_frames() {
        let (a, b) = (body(10, 1), body(20, 2));
        let mut c = REQUEST.as_bytes().to_vec();
        c.extend(cframe(0x82, &a));
        let mut s = response("permessage-deflate; client_max_window_bits=15").into_bytes();
        let s_head = s.len() as u64;
        s.extend(sframe(0x82, &b));
        let evs = run_whole(&c, &s);
        let Ev::Upgrade(h) = &evs[0] else { panic!("{evs:?}") };
        assert_eq!(h.path.as_deref(), Some("/ws"));
        assert_eq!(h.host.as_deref(), Some("im-api.example.com"));
        assert_eq!(h.origin.as_deref(), Some("http://localhost:3000"));
        assert_eq!(h.protocol.as_deref(), Some("msync"));
        assert_eq!(h.status, Some(101));
        assert_eq!(h.reason.as_deref(), Some("Switching Protocols"));
        assert_eq!(
            h.offered_extensions.as_deref(),
            Some("permessage-deflate; client_max_window_bits")
        );
        assert_eq!(h.deflate, Some(DeflateParams::default()));
        assert_eq!(msgs(&evs), vec![(Dir::C2S, a.clone()), (Dir::S2C, b.clone())]);
        assert_eq!(
            evs[2],
            Ev::Msg {
                dir: Dir::S2C,
                offset: s_head,
                wire_len: 2 + b.len() as u64,
                data: b,
                binary: true,
                deflated: false,
                frames: 1
            }
        );
        assert_eq!(evs.len(), 3);
    }

    #[test]
    fn rejected_upgrade_ends_the_session() {
        for (status, reason) in [(401u16, "Unauthorized"), (404, "Not Found")] {
            let s = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 5\r\n\r\nnope!");
            let evs = run_whole(REQUEST.as_bytes(), s.as_bytes());
            assert_eq!(evs, vec![Ev::Rejected(status, reason.into())]);
        }
    }

    /// A 401 answered with credentials on the same connection: the second upgrade and its
    /// frames are read (they were dropped, uncounted, with the whole connection).
    #[test]
    fn a_refused_upgrade_may_be_tried_again_on_the_same_connection() {
        let m = body(12, 4);
        let retry = REQUEST.replace("\r\n\r\n", "\r\nAuthorization: Bearer t\r\n\r\n");
        let mut c = REQUEST.as_bytes().to_vec();
        c.extend_from_slice(retry.as_bytes());
        c.extend(cframe(0x82, &m));
        let mut s = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 12\r\n\r\nUnauthorized".to_vec();
        s.extend_from_slice(response("").as_bytes());
        s.extend(sframe(0x82, &m));
        // Whole, and one byte at a time.
        let bytes = |v: &[u8]| -> Vec<(u64, Vec<u8>)> {
            v.iter().enumerate().map(|(i, b)| (i as u64, vec![*b])).collect()
        };
        let (cb, sb) = (bytes(&c), bytes(&s));
        let cb: Vec<(u64, &[u8])> = cb.iter().map(|(o, d)| (*o, d.as_slice())).collect();
        let sb: Vec<(u64, &[u8])> = sb.iter().map(|(o, d)| (*o, d.as_slice())).collect();
        for evs in [run_whole(&c, &s), run(&mut WebSocket::new(cfg(), TestCheck), &cb, &sb)] {
            assert_eq!(evs[0], Ev::Rejected(401, "Unauthorized".into()));
            let Ev::Upgrade(h) = &evs[1] else { panic!("{evs:?}") };
            assert_eq!(h.status, Some(101));
            assert_eq!(msgs(&evs), vec![(Dir::C2S, m.clone()), (Dir::S2C, m.clone())]);
            assert_eq!(evs.len(), 4, "{evs:?}");
        }
        // An answer whose end is not known (chunked) still ends the session there.
        let s =
            b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nnope!\r\n0\r\n\r\n";
        assert_eq!(run_whole(&c, s), vec![Ev::Rejected(403, "Forbidden".into())]);
    }

    #[test]
    fn plain_http_request_is_not_an_upgrade() {
        let evs = run_whole(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(evs, vec![Ev::Problem(Dir::C2S, 0, Problem::NotUpgrade)]);
    }

    #[test]
    fn interim_answer_and_lf_only_lines() {
        let c = b"GET /x/ws HTTP/1.1\nHost: h\nUpgrade: websocket\n\n".to_vec();
        let mut s =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 OK\nupgrade: websocket\n\n".to_vec();
        s.extend(sframe(0x82, &body(3, 3)));
        let evs = run_whole(&c, &s);
        let Ev::Upgrade(h) = &evs[0] else { panic!("{evs:?}") };
        assert_eq!(h.path.as_deref(), Some("/x/ws"));
        assert_eq!(h.deflate, None);
        assert_eq!(msgs(&evs).len(), 1);
    }

    #[test]
    fn sixteen_and_sixty_four_bit_lengths() {
        let (a, b, c3) = (body(300, 1), body(70_000, 2), body(5, 3));
        let mut c = REQUEST.as_bytes().to_vec();
        c.extend(cframe(0x82, &a));
        c.extend(frame(0x82, Some(KEY), &b, false));
        let mut s = response("").into_bytes();
        s.extend(frame(0x82, None, &c3, true));
        let evs = run_whole(&c, &s);
        assert_eq!(msgs(&evs), vec![(Dir::C2S, a), (Dir::C2S, b), (Dir::S2C, c3.clone())]);
        // The 64-bit form of a short length is legal framing but not minimal.
        assert!(evs.contains(&Ev::Problem(
            Dir::S2C,
            response("").len() as u64,
            Problem::NonMinimalLength
        )));
    }

    #[test]
    fn fragments_with_interleaved_ping_and_pong() {
        let a = body(100, 1);
        let mut c = REQUEST.as_bytes().to_vec();
        let start = c.len() as u64;
        c.extend(cframe(0x02, &a[..30]));
        c.extend(cframe(0x89, b"hb"));
        c.extend(cframe(0x00, &a[30..31]));
        c.extend(cframe(0x00, &[]));
        c.extend(cframe(0x80, &a[31..]));
        let end = c.len() as u64;
        let mut s = response("").into_bytes();
        s.extend(sframe(0x8a, b"hb"));
        let evs = run_whole(&c, &s);
        assert_eq!(evs[1], Ev::Ping(Dir::C2S, b"hb".to_vec()));
        assert_eq!(
            evs[2],
            Ev::Msg {
                dir: Dir::C2S,
                offset: start,
                wire_len: end - start,
                data: a,
                binary: true,
                deflated: false,
                frames: 4
            }
        );
        assert_eq!(evs[3], Ev::Pong(Dir::S2C, b"hb".to_vec()));
        let mut ws = WebSocket::new(cfg(), TestCheck);
        run(&mut ws, &[(0, &c)], &[(0, &s)]);
        assert_eq!(ws.stats().pings, [1, 0]);
        assert_eq!(ws.stats().pongs, [0, 1]);
    }

    #[test]
    fn a_message_interrupted_by_a_new_one_is_counted_as_skipped() {
        let (a, b) = (body(40, 1), body(20, 2));
        let mut c = REQUEST.as_bytes().to_vec();
        let start = c.len() as u64;
        c.extend(cframe(0x02, &a[..10]));
        c.extend(cframe(0x89, b"hb"));
        let next = c.len() as u64;
        c.extend(cframe(0x82, &b));
        let evs = run_whole(&c, response("").as_bytes());
        assert_eq!(
            evs[2..4],
            [
                Ev::Problem(Dir::C2S, next, Problem::InterruptedMessage { started: start }),
                Ev::Skipped(Dir::C2S, start, next - start),
            ]
        );
        assert_eq!(msgs(&evs), vec![(Dir::C2S, b)]);
    }

    /// An empty binary message holds no envelope: decoded, it would read as an all-default
    /// MSync (a SYNC pull with no queue) and throw off the report's request matching.
    #[test]
    fn an_empty_binary_message_is_a_problem_not_a_message() {
        let a = body(20, 2);
        let mut c = REQUEST.as_bytes().to_vec();
        let at = c.len() as u64;
        c.extend(cframe(0x82, &[]));
        let at2 = c.len() as u64;
        let mut z = flate2::Compress::new(flate2::Compression::default(), false);
        c.extend(cframe(0xc2, &deflate(&mut z, &[])));
        let at3 = c.len() as u64;
        c.extend(cframe(0x02, &[]));
        c.extend(cframe(0x80, &[]));
        c.extend(cframe(0x81, &[]));
        c.extend(cframe(0xc2, &deflate(&mut z, &a)));
        let mut s = response("permessage-deflate").into_bytes();
        s.extend(sframe(0x82, &[]));
        let evs = run_whole(&c, &s);
        let empties: Vec<(Dir, u64)> = evs
            .iter()
            .filter_map(|e| match e {
                Ev::Problem(d, o, Problem::EmptyMessage) => Some((*d, *o)),
                _ => None,
            })
            .collect();
        let s_at = response("permessage-deflate").len() as u64;
        assert_eq!(empties, [(Dir::C2S, at), (Dir::C2S, at2), (Dir::C2S, at3), (Dir::S2C, s_at)]);
        // The empty text message stays a (text) message; the deflate history goes on.
        assert_eq!(msgs(&evs), vec![(Dir::C2S, vec![]), (Dir::C2S, a)]);
        assert_eq!(ws_msgs_binary(&evs), [false, true]);
    }

    fn ws_msgs_binary(evs: &[Ev]) -> Vec<bool> {
        evs.iter()
            .filter_map(|e| match e {
                Ev::Msg { binary, .. } => Some(*binary),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn close_with_and_without_code_and_text_messages() {
        let mut c = REQUEST.as_bytes().to_vec();
        c.extend(cframe(0x81, "héllo".as_bytes()));
        c.extend(cframe(0x88, &[]));
        c.extend(cframe(0x82, &body(1, 1)));
        let mut s = response("").into_bytes();
        let mut close = 4001u16.to_be_bytes().to_vec();
        close.extend_from_slice(b"kicked");
        s.extend(sframe(0x88, &close));
        let evs = run_whole(&c, &s);
        assert!(
            matches!(&evs[1], Ev::Msg { binary: false, data, .. } if data == "héllo".as_bytes())
        );
        assert_eq!(evs[2], Ev::Close(Dir::C2S, None, String::new()));
        assert!(matches!(evs[3], Ev::Problem(Dir::C2S, _, Problem::DataAfterClose)));
        assert_eq!(*evs.last().unwrap(), Ev::Close(Dir::S2C, Some(4001), "kicked".into()));
    }

    /// Raw deflate with sync flush, the 00 00 ff ff tail stripped (RFC 7692 section 7.2.1).
    fn deflate(z: &mut flate2::Compress, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 64);
        z.compress_vec(data, &mut out, flate2::FlushCompress::Sync).unwrap();
        assert_eq!(&out[out.len() - 4..], &[0, 0, 0xff, 0xff]);
        out.truncate(out.len() - 4);
        out
    }

    #[test]
    fn permessage_deflate_with_context_takeover() {
        let msgs_in: Vec<Vec<u8>> = (0..4).map(|i| body(400, (i % 2) as u8)).collect();
        let mut zc = flate2::Compress::new(flate2::Compression::default(), false);
        let mut zs = flate2::Compress::new(flate2::Compression::default(), false);
        let mut c = REQUEST.as_bytes().to_vec();
        let mut s = response("permessage-deflate; client_max_window_bits=15").into_bytes();
        let mut sizes = Vec::new();
        for m in &msgs_in {
            let d = deflate(&mut zc, m);
            sizes.push(d.len());
            // Split the compressed message over two frames: RSV1 only on the first.
            c.extend(cframe(0x42, &d[..d.len() / 2]));
            c.extend(cframe(0x80, &d[d.len() / 2..]));
            s.extend(sframe(0xc2, &deflate(&mut zs, m)));
        }
        // Later messages repeat earlier ones, so they compress to almost nothing.
        assert!(sizes[2] < sizes[0] / 4);
        let evs = run_whole(&c, &s);
        let got = msgs(&evs);
        assert_eq!(got.len(), 8, "{evs:?}");
        for (i, m) in msgs_in.iter().enumerate() {
            assert_eq!(got[i], (Dir::C2S, m.clone()));
            assert_eq!(got[4 + i], (Dir::S2C, m.clone()));
        }
        assert!(evs.iter().all(|e| matches!(e, Ev::Upgrade(_) | Ev::Msg { deflated: true, .. })));
    }

    #[test]
    fn permessage_deflate_without_context_takeover() {
        let m = body(300, 4);
        let mut c = REQUEST.as_bytes().to_vec();
        let mut s = response("permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10").into_bytes();
        for _ in 0..3 {
            let mut z = flate2::Compress::new(flate2::Compression::default(), false);
            c.extend(cframe(0xc2, &deflate(&mut z, &m)));
            let mut z =
                flate2::Compress::new_with_window_bits(flate2::Compression::default(), false, 10);
            s.extend(sframe(0xc2, &deflate(&mut z, &m)));
        }
        // A message deflated with history the receiver does not keep fails alone.
        let mut z = flate2::Compress::new(flate2::Compression::default(), false);
        let _ = deflate(&mut z, &m);
        let bad = deflate(&mut z, &m);
        c.extend(cframe(0xc2, &bad));
        c.extend(cframe(
            0xc2,
            &deflate(&mut flate2::Compress::new(flate2::Compression::default(), false), &m),
        ));
        let evs = run_whole(&c, &s);
        let Ev::Upgrade(h) = &evs[0] else { panic!() };
        let p = h.deflate.unwrap();
        assert!(p.server_no_context_takeover && p.client_no_context_takeover);
        assert_eq!(p.server_max_window_bits, 10);
        let got = msgs(&evs);
        assert_eq!(got.len(), 7, "{evs:?}");
        assert!(got.iter().all(|(_, d)| *d == m));
        assert_eq!(
            evs.iter()
                .filter(|e| matches!(e, Ev::Problem(Dir::C2S, _, Problem::Inflate(_))))
                .count(),
            1
        );
    }

    /// Thousands of connections each keep their buffers between messages: what a small
    /// message needs, not a fixed 64 KiB; after a large message (inflated over several rounds of
    /// room) the buffer is let go.
    #[test]
    fn buffers_kept_between_messages_fit_the_messages() {
        let small = body(300, 3);
        let large: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8 ^ (i / 1000) as u8).collect();
        let mut z = flate2::Compress::new(flate2::Compression::default(), false);
        let mut s = response("permessage-deflate").into_bytes();
        s.extend(sframe(0xc2, &deflate(&mut z, &small)));
        let mut ws = WebSocket::new(cfg(), TestCheck);
        let evs = run(&mut ws, &[(0, REQUEST.as_bytes())], &[(0, &s)]);
        assert_eq!(msgs(&evs), [(Dir::S2C, small.clone())]);
        assert!(ws.s2c.out.capacity() <= 4096, "{} bytes kept", ws.s2c.out.capacity());

        let mut s = response("permessage-deflate").into_bytes();
        let mut z = flate2::Compress::new(flate2::Compression::default(), false);
        s.extend(sframe(0xc2, &deflate(&mut z, &large)));
        s.extend(sframe(0xc2, &deflate(&mut z, &small)));
        let mut ws = WebSocket::new(WsConfig { max_inflated: 1 << 20, ..cfg() }, TestCheck);
        let evs = run(&mut ws, &[(0, REQUEST.as_bytes())], &[(0, &s)]);
        assert_eq!(msgs(&evs), [(Dir::S2C, large), (Dir::S2C, small)]);
        assert!(ws.s2c.out.capacity() <= 16 << 10, "{} bytes kept", ws.s2c.out.capacity());
    }

    /// `n` bytes that deflate to only a few times fewer: within a direction's allowance of 64
    /// times its bytes, so that the per-message cap is what stops them.
    fn compressible(n: u32) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8 ^ (i / 1000) as u8).collect()
    }

    #[test]
    fn inflated_size_is_capped() {
        let big = compressible(300_000);
        let mut z = flate2::Compress::new(flate2::Compression::default(), false);
        let mut s = response("permessage-deflate").into_bytes();
        s.extend(sframe(0xc2, &deflate(&mut z, &big)));
        let evs = run_whole(REQUEST.as_bytes(), &s);
        assert!(evs.contains(&Ev::Problem(
            Dir::S2C,
            response("permessage-deflate").len() as u64,
            Problem::InflateTooLarge { limit: 200_000 }
        )));
        assert!(msgs(&evs).is_empty());
    }

    /// A message that inflates past the cap fills `out` up to the cap before it fails: that
    /// must not stay allocated (a capture of many connections with one such message each
    /// held the cap per connection and direction: 100 connections, 4.1 GB).
    #[test]
    fn a_message_over_the_inflate_cap_does_not_pin_its_buffers() {
        let big = compressible(300_000);
        let mut z = flate2::Compress::new(flate2::Compression::default(), false);
        let mut s = response("permessage-deflate").into_bytes();
        s.extend(sframe(0xc2, &deflate(&mut z, &big)));
        let mut ws = WebSocket::new(cfg(), TestCheck);
        let evs = run(&mut ws, &[(0, REQUEST.as_bytes())], &[(0, &s)]);
        assert!(evs
            .iter()
            .any(|e| matches!(e, Ev::Problem(_, _, Problem::InflateTooLarge { .. }))));
        assert!(ws.s2c.out.capacity() <= SHRINK_ABOVE, "{} bytes kept", ws.s2c.out.capacity());
        assert!(ws.s2c.msg.capacity() <= SHRINK_ABOVE, "{} bytes kept", ws.s2c.msg.capacity());
    }

    /// A direction may inflate 16 KiB plus 64 times its stream's bytes: 300 000 bytes of one
    /// letter deflate to a few hundred, and are a bomb even under the per-message cap. The
    /// direction's next message, paid for by its bytes, is taken in (from a fresh window: the
    /// refused message's history is gone).
    #[test]
    fn a_direction_inflating_past_64_times_its_bytes_is_refused() {
        let bomb = vec![0x41u8; 300_000];
        let mut s = response("permessage-deflate").into_bytes();
        let at = s.len() as u64;
        let mut z = flate2::Compress::new(flate2::Compression::default(), false);
        s.extend(sframe(0xc2, &deflate(&mut z, &bomb)));
        let wire = s.len() as u64;
        let small = body(3000, 5);
        let mut z = flate2::Compress::new(flate2::Compression::default(), false);
        s.extend(sframe(0xc2, &deflate(&mut z, &small)));
        let cfg = WsConfig { max_inflated: 16 << 20, ..cfg() };
        let mut ws = WebSocket::new(cfg, TestCheck);
        let evs = run(&mut ws, &[(0, REQUEST.as_bytes())], &[(0, &s)]);
        let inflated = (16 << 10) + 64 * wire + 1;
        assert!(evs.contains(&Ev::Problem(
            Dir::S2C,
            at,
            Problem::InflateBudget { inflated, wire }
        )));
        assert_eq!(msgs(&evs), [(Dir::S2C, small)]);
    }

    #[test]
    fn a_bad_control_frame_says_whether_it_was_long_or_fragmented() {
        let mut c = REQUEST.as_bytes().to_vec();
        let at = c.len() as u64;
        c.extend(cframe(0x09, b"hb"));
        let mut s = response("").into_bytes();
        let s_at = s.len() as u64;
        s.extend(sframe(0x89, &[0x20; 126]));
        let evs = run_whole(&c, &s);
        assert!(evs.contains(&Ev::Problem(
            Dir::C2S,
            at,
            Problem::BadControl { len: 2, fin: false }
        )));
        assert!(evs.contains(&Ev::Problem(
            Dir::S2C,
            s_at,
            Problem::BadControl { len: 126, fin: true }
        )));
    }

    /// A message that is dropped (not inflatable, over a cap) was only named in a problem
    /// line: its bytes are now counted as skipped too.
    #[test]
    fn dropped_messages_are_counted_as_skipped() {
        let m = body(300, 4);
        let mut z = flate2::Compress::new(flate2::Compression::default(), false);
        let _ = deflate(&mut z, &m);
        let mut s = response("permessage-deflate; server_no_context_takeover").into_bytes();
        let at = s.len() as u64;
        // Deflated against a history the receiver does not keep: it cannot be inflated.
        s.extend(sframe(0xc2, &deflate(&mut z, &m)));
        let end = s.len() as u64;
        let evs = run_whole(REQUEST.as_bytes(), &s);
        assert!(matches!(evs[1], Ev::Problem(Dir::S2C, o, Problem::Inflate(_)) if o == at));
        assert_eq!(evs[2], Ev::Skipped(Dir::S2C, at, end - at));
        // Over the message cap.
        let mut c = REQUEST.as_bytes().to_vec();
        let at = c.len() as u64;
        c.extend(cframe(0x02, &[0x20; 60_000]));
        c.extend(cframe(0x80, &[0x20; 60_000]));
        let end = c.len() as u64;
        let small = WsConfig { max_message: 100_000, ..cfg() };
        let mut ws = WebSocket::new(small, TestCheck);
        let evs = run(&mut ws, &[(0, &c)], &[(0, response("").as_bytes())]);
        assert!(evs.contains(&Ev::Skipped(Dir::C2S, at, end - at)), "{evs:?}");
    }

    /// Each direction's skips with their reasons.
    fn skips_of(
        ws: &mut WebSocket<TestCheck>,
        c2s: &[(u64, &[u8])],
        s2c: &[(u64, &[u8])],
    ) -> Vec<(Dir, u64, u64, SkipReason)> {
        let mut out = Vec::new();
        let mut f = |e: WsEvent<'_>| {
            if let WsEvent::Skipped { dir, offset, len, why } = e {
                out.push((dir, offset, len, why));
            }
        };
        for &(o, d) in s2c {
            ws.feed(Dir::S2C, o, d, &mut f);
        }
        for &(o, d) in c2s {
            ws.feed(Dir::C2S, o, d, &mut f);
        }
        ws.finish(&mut f);
        out
    }

    /// Every skip was printed as "(resynchronising)", also a whole message dropped for a
    /// reason or one cut short by a gap or the end: each says which.
    #[test]
    fn skips_say_why() {
        let m = body(40, 1);
        let mut c = REQUEST.as_bytes().to_vec();
        let at = c.len();
        c.extend(cframe(0x82, &[])); // empty: dropped
        let frag = c.len();
        c.extend(cframe(0x02, &m[..10])); // interrupted by the next message: dropped
        let next = c.len();
        c.extend(cframe(0x82, &m));
        let cut = c.len();
        c.extend(cframe(0x82, &m)); // a gap inside it
        let after = c.len();
        c.extend(cframe(0x82, &m));
        c.extend(cframe(0x82, &m)[..20].to_vec()); // cut by the end
        let end = c.len();
        let (ga, gb) = (cut + 10, cut + 16);
        let s = response("").into_bytes();
        let mut ws = WebSocket::new(cfg(), TestCheck);
        let skips = skips_of(&mut ws, &[(0, &c[..ga]), (gb as u64, &c[gb..])], &[(0, &s)]);
        let u = |x: usize| x as u64;
        assert_eq!(
            skips,
            [
                (Dir::C2S, u(at), u(frag - at), SkipReason::Dropped),
                (Dir::C2S, u(frag), u(next - frag), SkipReason::Dropped),
                (Dir::C2S, u(cut), u(ga - cut), SkipReason::Gap),
                (Dir::C2S, u(gb), u(after - gb), SkipReason::Resync),
                (Dir::C2S, u(end - 20), 20, SkipReason::End),
            ]
        );
        // Frames held for an answer that never came.
        let mut ws = WebSocket::new(cfg(), TestCheck);
        let skips = skips_of(&mut ws, &[(0, &c[..next])], &[]);
        assert_eq!(skips, [(Dir::C2S, u(at), u(next - at), SkipReason::Dropped)]);
        assert_eq!(SkipReason::Resync.words(), "resynchronising");
    }

    #[test]
    fn huge_lengths_are_problems_not_allocations() {
        let mut s = response("").into_bytes();
        let at = s.len() as u64;
        s.extend_from_slice(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]);
        let good = body(7, 9);
        let good_at = s.len() as u64;
        s.extend(sframe(0x82, &good));
        let evs = run_whole(REQUEST.as_bytes(), &s);
        assert_eq!(evs[1], Ev::Problem(Dir::S2C, at, Problem::Oversize { len: 1 << 63 }));
        assert_eq!(evs[2], Ev::Skipped(Dir::S2C, at + 1, good_at - at - 1));
        assert_eq!(msgs(&evs), vec![(Dir::S2C, good)]);
        // A message reassembled from frames under the frame cap can still exceed the message cap.
        let mut c = REQUEST.as_bytes().to_vec();
        let chunk = vec![0x20u8; 90_000];
        c.extend(cframe(0x02, &chunk));
        c.extend(cframe(0x00, &chunk));
        c.extend(cframe(0x00, &chunk));
        c.extend(cframe(0x80, &chunk));
        c.extend(cframe(0x82, &body(2, 2)));
        let evs = run_whole(&c, response("").as_bytes());
        assert!(evs
            .iter()
            .any(|e| matches!(e, Ev::Problem(Dir::C2S, _, Problem::MessageTooLarge { .. }))));
        assert_eq!(msgs(&evs), vec![(Dir::C2S, body(2, 2))]);
    }

    #[test]
    fn garbage_after_upgrade_is_skipped_up_to_a_plausible_frame() {
        let mut s = response("").into_bytes();
        let at = s.len() as u64;
        // 'H' reads as a close frame with RSV1 set: not a frame in sync.
        s.extend_from_slice(b"HTTP/1.1 junk\x82\x05garb\x00\x01 more garbage \x82");
        let good_at = s.len() as u64;
        let good = body(12, 3);
        s.extend(sframe(0x82, &good));
        s.extend(sframe(0x82, &body(1, 1)));
        let evs = run_whole(REQUEST.as_bytes(), &s);
        assert_eq!(evs[1], Ev::Problem(Dir::S2C, at, Problem::ReservedBits(0x40)));
        assert_eq!(evs[2], Ev::Skipped(Dir::S2C, at + 1, good_at - at - 1));
        assert_eq!(msgs(&evs), vec![(Dir::S2C, good), (Dir::S2C, body(1, 1))]);
        // Reserved opcodes are garbage too.
        let mut s = response("").into_bytes();
        s.extend_from_slice(&[0x83, 0x00]);
        s.extend(sframe(0x82, &body(1, 1)));
        let evs = run_whole(REQUEST.as_bytes(), &s);
        assert!(matches!(evs[1], Ev::Problem(Dir::S2C, _, Problem::BadOpcode(3))));
        assert_eq!(msgs(&evs).len(), 1);
    }

    /// [`TestCheck`], counting the bytes it is asked to judge whole.
    struct Counting(std::rc::Rc<std::cell::Cell<u64>>);
    impl FrameCheck for Counting {
        fn plausible(&self, b: &[u8]) -> bool {
            self.0.set(self.0.get() + b.len() as u64);
            TestCheck.plausible(b)
        }
        fn plausible_start(&self, head: &[u8], len: usize) -> bool {
            TestCheck.plausible_start(head, len)
        }
    }

    /// Garbage holding a header every few bytes, each claiming a long payload that starts
    /// plausibly: every one of them was copied and judged in full, so a few hundred KB took
    /// seconds. The work is now bounded by what the resynchronisation passes over.
    #[test]
    fn overlapping_long_candidates_cost_bounded_work() {
        for masked in [false, true] {
            let mut cand = vec![0x82, if masked { 0x80 | 126 } else { 126 }, 0xea, 0x60];
            if masked {
                cand.extend_from_slice(&[0; 4]);
            }
            cand.push(0x08);
            let mut g = vec![0x83, if masked { 0x80 } else { 0 }];
            for _ in 0..2000 {
                g.extend_from_slice(&cand);
            }
            g.extend(std::iter::repeat_n(0x20, 61_000));
            let good = body(10, 3);
            let (mut c, mut s) = (REQUEST.as_bytes().to_vec(), response("").into_bytes());
            let tail = if masked { cframe(0x82, &good) } else { sframe(0x82, &good) };
            let (garbage_dir, other) = if masked { (&mut c, &mut s) } else { (&mut s, &mut c) };
            garbage_dir.extend_from_slice(&g);
            garbage_dir.extend(tail);
            let _ = other;
            let judged = std::rc::Rc::new(std::cell::Cell::new(0));
            let mut ws = WebSocket::new(cfg(), Counting(judged.clone()));
            let evs = run(&mut ws, &[(0, &c)], &[(0, &s)]);
            let dir = if masked { Dir::C2S } else { Dir::S2C };
            assert_eq!(msgs(&evs), vec![(dir, good)], "masked {masked}");
            let bound = RESYNC_WORK_BASE + RESYNC_WORK_PER_BYTE * g.len() as u64 + 60_000;
            assert!(judged.get() <= bound, "{} bytes judged (masked {masked})", judged.get());
        }
    }

    #[test]
    fn gap_abandons_frame_and_resyncs() {
        let mut s = response("").into_bytes();
        let bodies: Vec<Vec<u8>> = (0..4).map(|i| body(50, i)).collect();
        let mut starts = Vec::new();
        for b in &bodies {
            starts.push(s.len());
            s.extend(sframe(0x82, b));
        }
        let (ga, gb) = (starts[1] + 10, starts[1] + 20);
        let mut ws = WebSocket::new(cfg(), TestCheck);
        let evs = run(&mut ws, &[(0, REQUEST.as_bytes())], &[(0, &s[..ga]), (gb as u64, &s[gb..])]);
        assert_eq!(
            msgs(&evs),
            vec![
                (Dir::S2C, bodies[0].clone()),
                (Dir::S2C, bodies[2].clone()),
                (Dir::S2C, bodies[3].clone())
            ]
        );
        assert!(evs.contains(&Ev::Skipped(Dir::S2C, starts[1] as u64, 10)));
        assert!(evs.contains(&Ev::Skipped(Dir::S2C, gb as u64, (starts[2] - gb) as u64)));
    }

    fn masking_problems(evs: &[Ev]) -> Vec<(Dir, u64, bool)> {
        evs.iter()
            .filter_map(|e| match e {
                Ev::Problem(d, o, Problem::Masking { masked }) => Some((*d, *o, *masked)),
                _ => None,
            })
            .collect()
    }

    /// Test rigs and some non-browser clients send unmasked client frames (and some proxies
    /// masked server frames): those messages were lost, each frame a problem and a skip. They
    /// are decoded, and reported once per direction.
    #[test]
    fn frames_with_the_wrong_masking_are_decoded_and_reported_once() {
        let mut c = REQUEST.as_bytes().to_vec();
        let c_at = c.len() as u64;
        for i in 0..3 {
            c.extend(sframe(0x82, &body(20, i)));
        }
        // Fragmented, with a ping between the fragments, and one correctly masked frame.
        let b = body(300, 3);
        c.extend(sframe(0x02, &b[..100]));
        c.extend(sframe(0x89, b"hb"));
        c.extend(sframe(0x80, &b[100..]));
        c.extend(cframe(0x82, &body(5, 4)));
        let mut s = response("").into_bytes();
        let s_at = s.len() as u64;
        s.extend(cframe(0x82, &body(40, 5)));
        s.extend(frame(0x82, Some(KEY), &body(70_000, 6), false));
        s.extend(sframe(0x82, &body(6, 7)));
        let mut ws = WebSocket::new(cfg(), TestCheck);
        let evs = run(&mut ws, &[(0, &c)], &[(0, &s)]);
        assert_eq!(
            msgs(&evs),
            vec![
                (Dir::C2S, body(20, 0)),
                (Dir::C2S, body(20, 1)),
                (Dir::C2S, body(20, 2)),
                (Dir::C2S, b),
                (Dir::C2S, body(5, 4)),
                (Dir::S2C, body(40, 5)),
                (Dir::S2C, body(70_000, 6)),
                (Dir::S2C, body(6, 7)),
            ]
        );
        assert!(evs.contains(&Ev::Ping(Dir::C2S, b"hb".to_vec())));
        assert_eq!(masking_problems(&evs), [(Dir::C2S, c_at, false), (Dir::S2C, s_at, true)]);
        assert!(!evs.iter().any(|e| matches!(e, Ev::Skipped(..))), "{evs:?}");
        assert_eq!((ws.odd_masking(Dir::C2S), ws.odd_masking(Dir::S2C)), (6, 2));
        assert_eq!(
            Problem::Masking { masked: false }.id(),
            "masking",
            "the name scripts match on stays"
        );
    }

    /// After a gap or a bad header, resynchronisation looks for the direction's masking: a
    /// direction that has sent only correctly masked frames is not resynchronised on frames
    /// that break the rule (random bytes would match twice as often), one that has shown it
    /// breaks it is.
    #[test]
    fn resync_accepts_the_wrong_masking_once_the_direction_has_shown_it() {
        let good: Vec<Vec<u8>> = (0..3).map(|i| body(30, i)).collect();
        for shown in [false, true] {
            let mut c = REQUEST.as_bytes().to_vec();
            if shown {
                c.extend(sframe(0x82, &body(8, 9)));
            } else {
                c.extend(cframe(0x82, &body(8, 9)));
            }
            // A reserved opcode: sync is lost here.
            c.extend_from_slice(&[0x83, 0x80, 1, 2, 3, 4]);
            for g in &good {
                c.extend(sframe(0x82, g));
            }
            let mut ws = WebSocket::new(cfg(), TestCheck);
            let evs = run(&mut ws, &[(0, &c)], &[(0, response("").as_bytes())]);
            let got: Vec<Vec<u8>> = msgs(&evs).into_iter().map(|(_, d)| d).collect();
            if shown {
                assert_eq!(got, [vec![body(8, 9)], good.clone()].concat(), "{evs:?}");
                assert_eq!(masking_problems(&evs).len(), 1);
            } else {
                assert_eq!(got, [body(8, 9)], "{evs:?}");
                assert!(masking_problems(&evs).is_empty());
            }
        }
        // After a gap in the middle of a frame, likewise.
        let mut c = REQUEST.as_bytes().to_vec();
        let mut starts = Vec::new();
        for g in &good {
            starts.push(c.len());
            c.extend(sframe(0x82, g));
        }
        c.extend(sframe(0x82, &body(12, 7)));
        let (ga, gb) = (starts[1] + 5, starts[1] + 9);
        let mut ws = WebSocket::new(cfg(), TestCheck);
        let mut evs = Vec::new();
        // The answer first, so that the client's first frames are read in sync before the gap.
        ws.feed(Dir::S2C, 0, response("").as_bytes(), &mut |e| evs.push(to_ev(e)));
        let evs = [evs, run(&mut ws, &[(0, &c[..ga]), (gb as u64, &c[gb..])], &[])].concat();
        assert_eq!(
            msgs(&evs),
            vec![(Dir::C2S, good[0].clone()), (Dir::C2S, good[2].clone()), (Dir::C2S, body(12, 7))]
        );
        assert!(evs.contains(&Ev::Skipped(Dir::C2S, gb as u64, (starts[2] - gb) as u64)));
    }

    /// Picked up mid-stream, a client that never masks had none of its frames read: nothing
    /// had been shown in sync. Two unmasked frames chaining exactly, both plausible, are
    /// taken; one alone is not.
    #[test]
    fn midstream_unmasked_client_frames_are_found_when_two_chain() {
        let good: Vec<Vec<u8>> = (0..3).map(|i| body(30, i)).collect();
        let mut c = b"ail of a frame".to_vec();
        for g in &good {
            c.extend(sframe(0x82, g));
        }
        c.extend(cframe(0x82, &body(9, 8)));
        let mut ws = WebSocket::new_midstream(cfg(), TestCheck, 0, 0);
        let evs = run(&mut ws, &[(0, &c)], &[]);
        let want: Vec<(Dir, Vec<u8>)> =
            good.iter().chain([&body(9, 8)]).map(|g| (Dir::C2S, g.clone())).collect();
        assert_eq!(msgs(&evs), want);
        assert_eq!(masking_problems(&evs), [(Dir::C2S, 14, false)]);
        // Whatever the cuts.
        for step in [1usize, 7, 40] {
            let parts: Vec<(u64, &[u8])> =
                c.chunks(step).enumerate().map(|(i, p)| ((i * step) as u64, p)).collect();
            let mut ws = WebSocket::new_midstream(cfg(), TestCheck, 0, 0);
            assert_eq!(msgs(&run(&mut ws, &parts, &[])), want, "cut every {step}");
        }
        // One unmasked frame, then a masked one: only the masked one.
        let mut c = b"ail of a frame".to_vec();
        c.extend(sframe(0x82, &good[0]));
        c.extend(cframe(0x82, &body(9, 8)));
        let mut ws = WebSocket::new_midstream(cfg(), TestCheck, 0, 0);
        assert_eq!(msgs(&run(&mut ws, &[(0, &c)], &[])), vec![(Dir::C2S, body(9, 8))]);
        // A direction seen in sync keeps the rule: see the test above.
    }

    /// Once a direction has shown frames with the wrong masking, resynchronisation judges those
    /// headers too: garbage full of them costs no more than the bounded work of any other.
    #[test]
    fn wrong_masking_candidates_cost_bounded_work() {
        for client in [true, false] {
            // The header this direction's masking rule would have turned away at once.
            let mut cand = vec![0x82, if client { 126 } else { 0x80 | 126 }, 0xea, 0x60];
            if !client {
                cand.extend_from_slice(&[0; 4]);
            }
            cand.push(0x08);
            let mut g = vec![0x83, 0];
            for _ in 0..2000 {
                g.extend_from_slice(&cand);
            }
            g.extend(std::iter::repeat_n(0x20, 61_000));
            let good = body(10, 3);
            let odd = |p: &[u8]| if client { sframe(0x82, p) } else { cframe(0x82, p) };
            let (mut c, mut s) = (REQUEST.as_bytes().to_vec(), response("").into_bytes());
            let side = if client { &mut c } else { &mut s };
            side.extend(odd(&body(4, 4)));
            side.extend_from_slice(&g);
            side.extend(odd(&good));
            let judged = std::rc::Rc::new(std::cell::Cell::new(0));
            let mut ws = WebSocket::new(cfg(), Counting(judged.clone()));
            let evs = run(&mut ws, &[(0, &c)], &[(0, &s)]);
            let dir = if client { Dir::C2S } else { Dir::S2C };
            assert_eq!(msgs(&evs), vec![(dir, body(4, 4)), (dir, good)], "client {client}");
            let bound = RESYNC_WORK_BASE + RESYNC_WORK_PER_BYTE * g.len() as u64 + 60_000;
            assert!(judged.get() <= bound, "{} bytes judged (client {client})", judged.get());
        }
    }

    #[test]
    fn midstream_pickup_finds_masked_and_plain_frames() {
        let mut c = Vec::new();
        let mut s = Vec::new();
        for i in 0..3 {
            c.extend(cframe(0x82, &body(30, i)));
            s.extend(sframe(0x82, &body(40, i)));
        }
        let mut ws = WebSocket::new_midstream(cfg(), TestCheck, 100, 200);
        let evs = run(&mut ws, &[(100 + 7, &c[7..])], &[(200 + 3, &s[3..])]);
        assert_eq!(
            msgs(&evs),
            vec![
                (Dir::C2S, body(30, 1)),
                (Dir::C2S, body(30, 2)),
                (Dir::S2C, body(40, 1)),
                (Dir::S2C, body(40, 2))
            ]
        );
    }

    #[test]
    fn frames_before_the_answer_wait_for_it() {
        // The server's head arrives in the same chunk feed after the client's frames.
        let mut c = REQUEST.as_bytes().to_vec();
        c.extend(cframe(0x82, &body(3, 1)));
        let mut ws = WebSocket::new(cfg(), TestCheck);
        let mut out = Vec::new();
        ws.feed(Dir::C2S, 0, &c, &mut |e| out.push(to_ev(e)));
        assert!(out.is_empty());
        ws.feed(Dir::S2C, 0, response("").as_bytes(), &mut |e| out.push(to_ev(e)));
        assert_eq!(msgs(&out), vec![(Dir::C2S, body(3, 1))]);
        // No answer at all: reported at the end, the held frame skipped.
        let mut ws = WebSocket::new(cfg(), TestCheck);
        let evs = run(&mut ws, &[(0, &c)], &[]);
        assert_eq!(evs[0], Ev::Problem(Dir::S2C, 0, Problem::HandshakeIncomplete));
        assert_eq!(evs[1], Ev::Skipped(Dir::C2S, REQUEST.len() as u64, 11));
    }

    #[test]
    fn client_frames_without_an_answer_are_read_after_a_while() {
        let mut c = REQUEST.as_bytes().to_vec();
        for i in 0..3 {
            c.extend(cframe(0x82, &body(10, i)));
        }
        let mut s = response("").into_bytes();
        s.extend(sframe(0x82, &body(4, 4)));
        let mut ws = WebSocket::new(WsConfig { max_pending: 20, ..cfg() }, TestCheck);
        let r = REQUEST.len();
        let evs = run(&mut ws, &[(0, &c[..r]), (r as u64, &c[r..])], &[(0, &s)]);
        assert_eq!(evs[0], Ev::Problem(Dir::S2C, 0, Problem::HandshakeIncomplete));
        assert_eq!(msgs(&evs).len(), 4, "{evs:?}");
    }

    #[test]
    fn a_lost_answer_is_reported_and_frames_are_read_anyway() {
        let mut c = REQUEST.as_bytes().to_vec();
        c.extend(cframe(0x82, &body(5, 1)));
        let mut s = response("").into_bytes();
        let at = s.len();
        s.extend(sframe(0x82, &body(6, 2)));
        let mut ws = WebSocket::new(cfg(), TestCheck);
        let evs = run(&mut ws, &[(0, &c)], &[(10, &s[10..])]);
        assert_eq!(evs[0], Ev::Problem(Dir::S2C, 10, Problem::HandshakeIncomplete));
        assert_eq!(msgs(&evs), vec![(Dir::C2S, body(5, 1)), (Dir::S2C, body(6, 2))]);
        assert!(evs.contains(&Ev::Skipped(Dir::S2C, 10, at as u64 - 10)));
    }

    #[test]
    fn unmask_matches_bytewise_at_every_phase() {
        let data: Vec<u8> = (0..37u8).collect();
        for phase in 0..8 {
            let mut a = data.clone();
            unmask(&mut a, KEY, phase);
            let b: Vec<u8> =
                data.iter().enumerate().map(|(i, x)| x ^ KEY[(i + phase) % 4]).collect();
            assert_eq!(a, b);
        }
    }

    fn stream() -> (Vec<u8>, Vec<u8>) {
        let mut c = REQUEST.as_bytes().to_vec();
        let mut s = response("permessage-deflate").into_bytes();
        let mut zc = flate2::Compress::new(flate2::Compression::default(), false);
        for i in 0..6u8 {
            let b = body(20 + 40 * i as usize, i);
            c.extend(cframe(0x02, &b[..5]));
            c.extend(cframe(0x89, &[i]));
            c.extend(cframe(0x80, &b[5..]));
            c.extend(cframe(0xc2, &deflate(&mut zc, &b)));
            s.extend(sframe(0x82, &b));
            s.extend(frame(0x82, None, &b, i == 3));
        }
        c.extend(cframe(0x88, &[]));
        s.extend(sframe(0x88, &[0x03, 0xe8]));
        (c, s)
    }

    fn cut<'a>(s: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<(u64, &'a [u8])> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(s.len() + 1)).collect();
        points.push(0);
        points.push(s.len());
        points.sort_unstable();
        points.dedup();
        points.windows(2).map(|w| (w[0] as u64, &s[w[0]..w[1]])).collect()
    }

    proptest! {
        #[test]
        fn any_segmentation_gives_the_same_events(
            cc in prop::collection::vec(any::<prop::sample::Index>(), 0..60),
            sc in prop::collection::vec(any::<prop::sample::Index>(), 0..60),
        ) {
            let (c, s) = stream();
            let want = run_whole(&c, &s);
            prop_assert_eq!(msgs(&want).len(), 24);
            let mut ws = WebSocket::new(cfg(), TestCheck);
            let got = run(&mut ws, &cut(&c, &cc), &cut(&s, &sc));
            prop_assert_eq!(got, want);
        }

        #[test]
        fn garbage_segmentation_gives_the_same_events_up_to_skip_merging(
            data in prop::collection::vec(any::<u8>(), 0..2000),
            sc in prop::collection::vec(any::<prop::sample::Index>(), 0..30),
        ) {
            let (c, mut s) = stream();
            let head = response("permessage-deflate").len();
            let tail = s.split_off(head);
            s.extend_from_slice(&data);
            s.extend_from_slice(&tail);
            let want = merge_skips(run_whole(&c, &s));
            let mut ws = WebSocket::new(cfg(), TestCheck);
            let got = merge_skips(run(&mut ws, &cut(&c, &[]), &cut(&s, &sc)));
            prop_assert_eq!(got, want);
        }

        /// Whether resynchronisation accepts the wrong masking depends on the bytes before,
        /// never on how they were cut.
        #[test]
        fn wrong_masking_and_resync_give_the_same_events_whatever_the_cuts(
            data in prop::collection::vec(any::<u8>(), 0..600),
            cc in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
        ) {
            let mut c = REQUEST.as_bytes().to_vec();
            for i in 0..3u8 {
                c.extend(sframe(0x82, &body(20 + 30 * i as usize, i)));
            }
            c.extend_from_slice(&[0x83, 0]);
            c.extend_from_slice(&data);
            for i in 3..6u8 {
                c.extend(sframe(0x82, &body(15, i)));
                c.extend(cframe(0x82, &body(9, i)));
            }
            let s = response("").into_bytes();
            let want = merge_skips(run_whole(&c, &s));
            prop_assert!(msgs(&want).len() >= 3);
            let mut ws = WebSocket::new(cfg(), TestCheck);
            let got = merge_skips(run(&mut ws, &cut(&c, &cc), &cut(&s, &[])));
            prop_assert_eq!(got, want);
        }

        #[test]
        fn random_bytes_never_panic(
            a in prop::collection::vec(any::<u8>(), 0..3000),
            b in prop::collection::vec(any::<u8>(), 0..3000),
            mid in any::<bool>(),
            k in any::<prop::sample::Index>(),
        ) {
            let mut ws = if mid {
                WebSocket::new_midstream(cfg(), TestCheck, 0, 0)
            } else {
                WebSocket::new(cfg(), TestCheck)
            };
            let k = k.index(a.len() + 1);
            let mut n = 0usize;
            let mut f = |_e: WsEvent<'_>| n += 1;
            ws.feed(Dir::C2S, 0, &a[..k], &mut f);
            ws.feed(Dir::S2C, 0, &b, &mut f);
            ws.gap(Dir::C2S, k as u64, 5, &mut f);
            ws.feed(Dir::C2S, k as u64 + 5, &a[k..], &mut f);
            ws.finish(&mut f);
        }

        #[test]
        fn upgrade_followed_by_random_frames_never_panics(
            a in prop::collection::vec(any::<u8>(), 0..3000),
            b in prop::collection::vec(any::<u8>(), 0..3000),
        ) {
            let mut ws = WebSocket::new(cfg(), TestCheck);
            let mut c = REQUEST.as_bytes().to_vec();
            c.extend_from_slice(&a);
            let mut s = response("permessage-deflate").into_bytes();
            s.extend_from_slice(&b);
            let mut f = |_e: WsEvent<'_>| {};
            ws.feed(Dir::C2S, 0, &c, &mut f);
            ws.feed(Dir::S2C, 0, &s, &mut f);
            ws.finish(&mut f);
        }
    }
}
