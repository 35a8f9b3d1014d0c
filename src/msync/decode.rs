//! Decoding of one MSync message: envelope, command dispatch by direction, zlib inflation of
//! compressed payloads (bounded), and decoding of every `Meta.payload` by namespace.
//!
//! Invariants: nothing here panics on input bytes; inflation never produces more than
//! [`DecodeLimits::max_inflated`] (+1) bytes whatever the payload claims; protobuf nesting is
//! bounded by prost's recursion limit. A meta whose payload does not decode does not fail the
//! message: it is recorded as [`MetaBody::Invalid`]. A `string` field that is not UTF-8 fails
//! nothing either: the message is decoded with the field made readable, and named in
//! [`Decoded::not_utf8`] (see [`super::lossy`]).

use prost::Message;

use super::budget;
use super::lossy::{self, NotUtf8};
use super::pb;
use super::schema;
use crate::net::Dir;

/// Limits that keep decoding bounded whatever the input claims.
#[derive(Clone, Copy, Debug)]
pub struct DecodeLimits {
    /// Largest inflated size of a zlib-compressed payload.
    pub max_inflated: usize,
}

/// What the messages of one connection (or one WebSocket direction) may inflate to over its
/// life, in all: this much, plus [`INFLATE_PER_WIRE_BYTE`] for each of its bytes on the wire.
/// zlib and deflate turn a kilobyte into up to a megabyte, and a connection can send any number
/// of such messages, each under the per-message cap: 100 messages of 8 million empty metas
/// (1.6 GB inflated from a 1.6 MB capture) took `report` 23 to 26 s to walk. Chat traffic
/// inflates to a few times its size, so past 64 times it is not traffic but a bomb: its
/// messages are refused, each said so, until its wire bytes pay for more. Small enough that
/// connections made only to spend it gain little (a TCP handshake is already some 180 bytes).
pub const INFLATE_FREE: u64 = 16 << 10;
pub const INFLATE_PER_WIRE_BYTE: u64 = 64;

/// What is left of an allowance of [`INFLATE_FREE`] plus [`INFLATE_PER_WIRE_BYTE`] per byte of
/// `wire`, once `inflated` bytes were made.
pub fn inflate_left(wire: u64, inflated: u64) -> u64 {
    INFLATE_PER_WIRE_BYTE.saturating_mul(wire).saturating_add(INFLATE_FREE).saturating_sub(inflated)
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits { max_inflated: 16 << 20 }
    }
}

/// `MSync.Command`, tolerant of values the schema does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    Sync,
    Unread,
    Notice,
    Provision,
    Logout,
    Unknown(i32),
}

impl Command {
    pub fn from_i32(v: i32) -> Command {
        match v {
            0 => Command::Sync,
            1 => Command::Unread,
            2 => Command::Notice,
            3 => Command::Provision,
            4 => Command::Logout,
            n => Command::Unknown(n),
        }
    }
    /// The number on the wire: [`Command::from_i32`] reversed.
    pub fn to_i32(self) -> i32 {
        match self {
            Command::Sync => 0,
            Command::Unread => 1,
            Command::Notice => 2,
            Command::Provision => 3,
            Command::Logout => 4,
            Command::Unknown(n) => n,
        }
    }
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        match self {
            Command::Sync => "SYNC".into(),
            Command::Unread => "UNREAD".into(),
            Command::Notice => "NOTICE".into(),
            Command::Provision => "PROVISION".into(),
            Command::Logout => "LOGOUT".into(),
            Command::Unknown(n) => format!("COMMAND_{n}").into(),
        }
    }
}

/// The command message carried in `MSync.payload`, typed by command and direction.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    Provision(pb::Provision),
    UnreadUl(pb::CommUnreadUl),
    UnreadDl(pb::CommUnreadDl),
    Notice(pb::CommNotice),
    SyncUl(pb::CommSyncUl),
    SyncDl(pb::CommSyncDl),
    Logout(pb::Logout),
    /// `encrypt_type` on the envelope says the payload is encrypted; not decodable.
    Encrypted,
    /// A command the schema does not know, one that never travels in this direction (e.g. a
    /// NOTICE from the client), or a `compress_algorimth` other than 0 and 1: the payload bytes
    /// are kept undecoded (inflated if zlib; as on the wire for an unknown compression).
    Raw(Vec<u8>),
}

/// A decoded `Meta.payload`, typed by `Meta.ns`.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaBody {
    Chat(pb::MessageBody),
    Muc(pb::MucBody),
    Roster(pb::RosterBody),
    Statistic(pb::StatisticsBody),
    Conference(pb::ConferenceBody),
    /// NOTIFY, QUERY and unknown namespaces: bodies not in the schema.
    Raw,
    /// No payload field.
    Empty,
    /// The payload did not decode as the namespace's type; the reason.
    Invalid(String),
}

/// One decoded MSync message.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// The envelope. Its `payload` is left as on the wire (possibly compressed).
    pub env: pb::MSync,
    pub command: Command,
    pub body: Body,
    /// `compress_algorimth = 1`: the envelope says the payload is zlib-compressed. Set even when
    /// the payload was not inflated (encrypted, or absent).
    pub zlib: bool,
    /// The inflated payload, when `zlib` is set and a payload was inflated; the bytes `body` was
    /// decoded from. `None` when the payload went undecompressed (use `env.payload`).
    pub plain_payload: Option<Vec<u8>>,
    /// Decoded `Meta.payload` of each meta the body carries, in order (the UL `meta` first, then
    /// DL `metas`); only the first `max_meta_bodies` of them when decoded by [`decode_metas`].
    pub meta_bodies: Vec<MetaBody>,
    /// String fields that were not UTF-8 and were decoded with U+FFFD in place of their invalid
    /// bytes: the envelope's and the command message's first (without them the message would
    /// not decode), then those of the decoded `meta_bodies`. Each field once.
    pub not_utf8: Vec<NotUtf8>,
    /// How many of `not_utf8` are the envelope's or the command message's: non-zero for a
    /// message that decodes only because of them.
    pub not_utf8_in_message: usize,
}

/// Why a frame could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("envelope: {0}")]
    Envelope(String),
    #[error("{command} payload: {reason}")]
    Payload { command: String, reason: String },
    #[error("zlib: {0}")]
    Inflate(String),
    #[error("zlib: inflated payload exceeds {0} bytes")]
    InflateTooLarge(usize),
    /// Its repeated fields hold so many elements that decoding it would take more than the
    /// budget (see [`super::budget`]): not decoded.
    #[error("would take more than {0} bytes decoded (repeated fields of too many elements)")]
    OverBudget(u64),
}

impl Decoded {
    /// The payload bytes the body was decoded from: inflated if it was compressed, else as on the
    /// wire; empty when the field is absent.
    pub fn payload_bytes(&self) -> &[u8] {
        match &self.plain_payload {
            Some(p) => p,
            None => self.env.payload.as_deref().unwrap_or_default(),
        }
    }
}

/// `MSync.compress_algorimth` value meaning zlib.
const COMPRESS_ZLIB: u32 = 1;
/// `EncryptType.ENCRYPT_NONE`.
const ENCRYPT_NONE: i32 = 0;

/// Decodes one MSync message (the bytes after the length prefix / one WebSocket message).
pub fn decode(frame: &[u8], dir: Dir, limits: &DecodeLimits) -> Result<Decoded, DecodeError> {
    decode_metas(frame, dir, limits, usize::MAX)
}

/// As [`decode`], but decodes the payloads of only the first `max_meta_bodies` metas: a consumer
/// that renders from the raw bytes needs none, and the metas' strings are most of the cost of
/// decoding a pull answer. Whether the message decodes does not depend on its metas.
pub fn decode_metas(
    frame: &[u8],
    dir: Dir,
    limits: &DecodeLimits,
    max_meta_bodies: usize,
) -> Result<Decoded, DecodeError> {
    let mut not_utf8 = Vec::new();
    let env: pb::MSync = lossy::decode(frame, schema::msync_desc, &mut not_utf8)
        .map_err(|e| DecodeError::Envelope(e.to_string()))?;
    // proto2 default: an absent command is SYNC (0), which the native SDKs leave out.
    let command = Command::from_i32(env.command.unwrap_or(0));
    let compress = env.compress_algorimth.unwrap_or(0);
    let zlib = compress == COMPRESS_ZLIB;
    let wire = env.payload.as_deref().unwrap_or_default();

    let mut plain_payload = None;
    // Set when the message is large enough to be priced: what its metas' payloads may take.
    let mut budget_left = None;
    let body = if env.encrypt_type.iter().any(|&t| t != ENCRYPT_NONE) {
        Body::Encrypted
    } else if compress != 0 && !zlib {
        Body::Raw(wire.to_vec())
    } else {
        // An empty (or absent) payload is an empty message, compressed or not: zlib of nothing
        // is never zero bytes, so there is nothing to inflate.
        let bytes = if zlib && !wire.is_empty() {
            let inflated = inflate(wire, limits.max_inflated)?;
            &*plain_payload.insert(inflated)
        } else {
            wire
        };
        // The inflated bytes are `bytes` (the wire payload is within the frame).
        let size = frame.len() + if zlib { bytes.len() } else { 0 };
        if budget::needed(size) {
            let limit = budget::budget(size);
            let mut left = limit;
            let fits = schema::msync_desc().is_none_or(|d| budget::charge(frame, d, &mut left))
                && schema::payload_type(command.to_i32(), dir)
                    .is_none_or(|d| budget::charge(bytes, d, &mut left));
            if !fits {
                return Err(DecodeError::OverBudget(limit));
            }
            budget_left = Some(left);
        }
        dispatch(command, dir, bytes, &mut not_utf8)?
    };
    let not_utf8_in_message = not_utf8.len();

    let mut meta = |m: &pb::Meta| {
        if let Some(left) = &mut budget_left {
            let ns = m.ns.unwrap_or(0);
            let payload = m.payload.as_deref().unwrap_or_default();
            if !schema::meta_payload_type(ns).is_none_or(|d| budget::charge(payload, d, left)) {
                return MetaBody::Invalid(
                    "the message's decoding budget is spent (repeated fields of too many elements)"
                        .into(),
                );
            }
        }
        decode_meta_into(m, &mut not_utf8)
    };
    let meta_bodies = match &body {
        Body::SyncUl(ul) => ul.meta.iter().take(max_meta_bodies).map(&mut meta).collect(),
        Body::SyncDl(dl) => dl.metas.iter().take(max_meta_bodies).map(&mut meta).collect(),
        _ => Vec::new(),
    };
    Ok(Decoded {
        env,
        command,
        body,
        zlib,
        plain_payload,
        meta_bodies,
        not_utf8,
        not_utf8_in_message,
    })
}

/// Whether `frame` may decode as a PROVISION: false only when the envelope's fields are
/// well formed and its command (the last field 8, as prost keeps it) is not PROVISION. A scan of
/// the top-level fields, with no allocation, for callers that must see every PROVISION but
/// need nothing else decoded. Anything unusual (a group, a truncated field, the command with
/// another wire type) answers true.
pub fn may_be_provision(frame: &[u8]) -> bool {
    const COMMAND_FIELD: u64 = 8;
    let mut command = 0u64;
    let mut rest = frame;
    while !rest.is_empty() {
        let Some((key, n)) = super::schema::varint(rest) else { return true };
        rest = rest.get(n..).unwrap_or_default();
        let skip = match key & 7 {
            0 => {
                let Some((v, n)) = super::schema::varint(rest) else { return true };
                if key >> 3 == COMMAND_FIELD {
                    command = v;
                }
                n
            }
            _ if key >> 3 == COMMAND_FIELD => return true,
            1 => 8,
            2 => {
                let Some((len, n)) = super::schema::varint(rest) else { return true };
                match usize::try_from(len).ok().and_then(|l| l.checked_add(n)) {
                    Some(total) => total,
                    None => return true,
                }
            }
            5 => 4,
            _ => return true,
        };
        match rest.get(skip..) {
            Some(r) => rest = r,
            None => return true,
        }
    }
    Command::from_i32(command as i32) == Command::Provision
}

/// Inflates a zlib stream, reading at most `max + 1` bytes of output so a bomb costs no more
/// than the cap in memory and time.
fn inflate(input: &[u8], max: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    inflate_into(input, max, &mut out)?;
    Ok(out)
}

/// As [`inflate`], appending to `out` (so a caller can reuse one buffer for every message).
///
/// It gives what `flate2::bufread::ZlibDecoder` read to the end through `take(max + 1)` gives
/// (the same bytes, the same errors), from one inflater per thread reset for each payload:
/// making an inflater zeroes its state and window (~40 KiB), which cost more than inflating a
/// typical payload, and reading to the end zeroed the output before filling it.
pub(crate) fn inflate_into(input: &[u8], max: usize, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    thread_local! {
        static ZLIB: std::cell::RefCell<Option<flate2::Decompress>> =
            const { std::cell::RefCell::new(None) };
    }
    ZLIB.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => {
            let z = slot.get_or_insert_with(|| flate2::Decompress::new(true));
            z.reset(true);
            run_zlib(z, input, max, out)
        }
        // Not reentered today; a fresh inflater would still give the same answer.
        Err(_) => run_zlib(&mut flate2::Decompress::new(true), input, max, out),
    })
}

fn run_zlib(
    z: &mut flate2::Decompress,
    mut input: &[u8],
    max: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    use flate2::{FlushDecompress, Status};
    let corrupt = || DecodeError::Inflate("corrupt deflate stream".into());
    let start = out.len();
    // At most one byte past the cap is made: enough to tell that the cap was passed.
    let limit = max.saturating_add(1);
    // Typical MSync payloads inflate a few times over; start there rather than at zero.
    out.reserve(input.len().saturating_mul(4).min(max));
    loop {
        let made = out.len() - start;
        let allowed = limit.saturating_sub(made);
        if allowed == 0 {
            break;
        }
        if out.capacity() == out.len() {
            out.reserve(made.max(256).min(allowed));
        }
        let eof = input.is_empty();
        let flush = if eof { FlushDecompress::Finish } else { FlushDecompress::None };
        let (in0, out0) = (z.total_in(), z.total_out());
        let status = if out.capacity() - out.len() <= allowed {
            z.decompress_vec(input, out, flush)
        } else {
            // Near the cap: no more than `allowed` bytes, whatever the buffer has room for.
            let mut buf = [0u8; 4096];
            let r =
                z.decompress(input, buf.get_mut(..allowed.min(4096)).unwrap_or_default(), flush);
            let got = usize::try_from(z.total_out() - out0).unwrap_or(usize::MAX);
            out.extend_from_slice(buf.get(..got).unwrap_or_default());
            r
        }
        .map_err(|_| corrupt())?;
        let consumed = usize::try_from(z.total_in() - in0).unwrap_or(usize::MAX);
        input = input.get(consumed..).unwrap_or_default();
        let read = z.total_out() - out0;
        match status {
            Status::StreamEnd => break,
            _ if read > 0 => {}
            _ if eof => return Err(DecodeError::Inflate("incomplete deflate stream".into())),
            // Neither input taken nor output made, with both at hand: it never will be.
            _ if consumed == 0 => return Err(corrupt()),
            _ => {}
        }
    }
    if out.len() - start > max {
        return Err(DecodeError::InflateTooLarge(max));
    }
    Ok(())
}

/// Decodes the command payload as the type the command and direction give it.
fn dispatch(
    command: Command,
    dir: Dir,
    bytes: &[u8],
    not_utf8: &mut Vec<NotUtf8>,
) -> Result<Body, DecodeError> {
    fn typed<M: Message + Default>(
        command: Command,
        dir: Dir,
        bytes: &[u8],
        not_utf8: &mut Vec<NotUtf8>,
        wrap: fn(M) -> Body,
    ) -> Result<Body, DecodeError> {
        let number = command.to_i32();
        lossy::decode(bytes, || schema::payload_type(number, dir), not_utf8).map(wrap).map_err(
            |e| DecodeError::Payload {
                command: command.name().into_owned(),
                reason: e.to_string(),
            },
        )
    }
    let (c, d, b, n) = (command, dir, bytes, not_utf8);
    match (command, dir) {
        (Command::Provision, _) => typed(c, d, b, n, Body::Provision),
        (Command::Unread, Dir::C2S) => typed(c, d, b, n, Body::UnreadUl),
        (Command::Unread, Dir::S2C) => typed(c, d, b, n, Body::UnreadDl),
        (Command::Notice, Dir::S2C) => typed(c, d, b, n, Body::Notice),
        (Command::Sync, Dir::C2S) => typed(c, d, b, n, Body::SyncUl),
        (Command::Sync, Dir::S2C) => typed(c, d, b, n, Body::SyncDl),
        (Command::Logout, _) => typed(c, d, b, n, Body::Logout),
        (Command::Notice, Dir::C2S) | (Command::Unknown(_), _) => Ok(Body::Raw(bytes.to_vec())),
    }
}

/// Decodes a Meta's payload by its namespace.
pub fn decode_meta(meta: &pb::Meta) -> MetaBody {
    decode_meta_into(meta, &mut Vec::new())
}

/// As [`decode_meta`], adding the string fields that were not UTF-8 to `not_utf8`.
pub fn decode_meta_into(meta: &pb::Meta, not_utf8: &mut Vec<NotUtf8>) -> MetaBody {
    fn typed<M: Message + Default>(
        bytes: &[u8],
        ns: i32,
        not_utf8: &mut Vec<NotUtf8>,
        wrap: fn(M) -> MetaBody,
    ) -> MetaBody {
        match lossy::decode(bytes, || schema::meta_payload_type(ns), not_utf8) {
            Ok(m) => wrap(m),
            Err(e) => MetaBody::Invalid(e.to_string()),
        }
    }
    let Some(bytes) = meta.payload.as_deref() else {
        return MetaBody::Empty;
    };
    // proto2 default: an absent namespace is STATISTIC (0).
    let ns = meta.ns.unwrap_or(0);
    let n = not_utf8;
    match ns {
        0 => typed(bytes, ns, n, MetaBody::Statistic),
        1 => typed(bytes, ns, n, MetaBody::Chat),
        2 => typed(bytes, ns, n, MetaBody::Muc),
        3 => typed(bytes, ns, n, MetaBody::Roster),
        4 => typed(bytes, ns, n, MetaBody::Conference),
        _ => MetaBody::Raw,
    }
}

/// Protobuf wire types.
const WT_VARINT: u8 = 0;
const WT_LEN: u8 = 2;

/// The wire type `MSync` gives a field number; `None` for numbers it does not have.
/// `encrypt_type` (11) is repeated and may come packed (LEN) as well as unpacked (varint).
fn envelope_wire_type(field: u64) -> Option<u8> {
    match field {
        1 | 4 | 5 | 7 | 8 | 10 | 11 | 20 => Some(WT_VARINT),
        2 | 3 | 6 | 9 | 12 | 13 | 14 => Some(WT_LEN),
        _ => None,
    }
}

/// Reads a base-128 varint at `*pos`, advancing it; `None` if truncated or longer than 10 bytes.
fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Cheap check used to resynchronise a byte stream: do these bytes look like an MSync envelope?
/// Walks the top-level protobuf fields: every field number must be one MSync has (1-14, 20) with
/// the wire type the schema gives it, the walk must end exactly at the end, and a `command`
/// field, if present, must be 0..=4. Empty input is not plausible. No allocation.
pub fn plausible_envelope(frame: &[u8]) -> bool {
    if frame.is_empty() {
        return false;
    }
    let mut pos = 0usize;
    while pos < frame.len() {
        let Some(key) = read_varint(frame, &mut pos) else {
            return false;
        };
        let field = key >> 3;
        // The low three bits are the wire type, so the cast cannot truncate.
        let wt = (key & 7) as u8;
        let packed_enum = field == 11 && wt == WT_LEN;
        if envelope_wire_type(field) != Some(wt) && !packed_enum {
            return false;
        }
        match wt {
            WT_VARINT => {
                let Some(v) = read_varint(frame, &mut pos) else {
                    return false;
                };
                if field == 8 && v > 4 {
                    return false;
                }
            }
            _ => {
                let Some(len) = read_varint(frame, &mut pos) else {
                    return false;
                };
                let end = usize::try_from(len).ok().and_then(|l| pos.checked_add(l));
                match end {
                    Some(end) if end <= frame.len() => pos = end,
                    _ => return false,
                }
            }
        }
    }
    true
}

/// The `command` of an envelope that may not decode: the last `command` field seen before the
/// walk of top-level fields stops. `Some(Sync)` if the walk reaches the end without one (proto2
/// default), `None` if it stops first. Used to label undecodable frames.
pub fn peek_command(frame: &[u8]) -> Option<Command> {
    let mut pos = 0usize;
    let mut found = None;
    while pos < frame.len() {
        let Some(key) = read_varint(frame, &mut pos) else {
            return found;
        };
        let ok = match key & 7 {
            0 => match read_varint(frame, &mut pos) {
                Some(v) => {
                    if key >> 3 == 8 {
                        // Protobuf truncates an int32 enum read as a varint to its low 32 bits.
                        found = Some(Command::from_i32(v as i32));
                    }
                    true
                }
                None => false,
            },
            1 => pos.checked_add(8).filter(|&e| e <= frame.len()).map(|e| pos = e).is_some(),
            5 => pos.checked_add(4).filter(|&e| e <= frame.len()).map(|e| pos = e).is_some(),
            2 => read_varint(frame, &mut pos)
                .and_then(|l| usize::try_from(l).ok())
                .and_then(|l| pos.checked_add(l))
                .filter(|&e| e <= frame.len())
                .map(|e| pos = e)
                .is_some(),
            _ => false,
        };
        if !ok {
            return found;
        }
    }
    Some(found.unwrap_or(Command::Sync))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use proptest::prelude::*;

    use super::*;

    fn jid(name: &str) -> pb::Jid {
        pb::Jid { name: Some(name.into()), ..Default::default() }
    }

    fn envelope(command: Option<i32>, payload: Option<Vec<u8>>) -> pb::MSync {
        pb::MSync { command, payload, ..Default::default() }
    }

    fn frame(env: &pb::MSync) -> Vec<u8> {
        env.encode_to_vec()
    }

    fn dec(env: &pb::MSync, dir: Dir) -> Result<Decoded, DecodeError> {
        decode(&frame(env), dir, &DecodeLimits::default())
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        assert!(e.write_all(data).is_ok());
        e.finish().unwrap_or_default()
    }

    fn chat_meta(id: u64, text: &str) -> pb::Meta {
        let body = pb::MessageBody {
            r#type: Some(pb::message_body::Type::Chat as i32),
            from: Some(jid("z12")),
            to: Some(jid("z13")),
            contents: vec![pb::message_body::Content {
                r#type: Some(0),
                text: Some(text.into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        pb::Meta {
            id: Some(id),
            to: Some(jid("z13")),
            ns: Some(pb::meta::NameSpace::Chat as i32),
            payload: Some(body.encode_to_vec()),
            ..Default::default()
        }
    }

    fn sync_send() -> pb::MSync {
        let ul = pb::CommSyncUl {
            meta: Some(chat_meta(15089920589600003, "456")),
            ..Default::default()
        };
        envelope(Some(0), Some(ul.encode_to_vec()))
    }

    #[test]
    fn every_command_and_direction() {
        let prov = pb::Provision { version: Some("3.3.4".into()), ..Default::default() };
        let unread_dl = pb::CommUnreadDl {
            unread: vec![pb::MetaQueue { queue: Some(jid("z13")), n: Some(3) }],
            ..Default::default()
        };
        let notice = pb::CommNotice { queue: Some(jid("z13")) };
        let sync_ul =
            pb::CommSyncUl { key: Some(7), queue: Some(jid("z13")), ..Default::default() };
        let sync_dl = pb::CommSyncDl { meta_id: Some(5), server_id: Some(6), ..Default::default() };
        let logout = pb::Logout { reason: Some("bye".into()), ..Default::default() };
        let cases: Vec<(i32, Dir, Vec<u8>, Body)> = vec![
            (3, Dir::C2S, prov.encode_to_vec(), Body::Provision(prov.clone())),
            (3, Dir::S2C, prov.encode_to_vec(), Body::Provision(prov.clone())),
            (1, Dir::C2S, vec![], Body::UnreadUl(pb::CommUnreadUl {})),
            (1, Dir::S2C, unread_dl.encode_to_vec(), Body::UnreadDl(unread_dl.clone())),
            (2, Dir::S2C, notice.encode_to_vec(), Body::Notice(notice.clone())),
            (2, Dir::C2S, notice.encode_to_vec(), Body::Raw(notice.encode_to_vec())),
            (0, Dir::C2S, sync_ul.encode_to_vec(), Body::SyncUl(sync_ul.clone())),
            (0, Dir::S2C, sync_dl.encode_to_vec(), Body::SyncDl(sync_dl.clone())),
            (4, Dir::C2S, logout.encode_to_vec(), Body::Logout(logout.clone())),
            (4, Dir::S2C, logout.encode_to_vec(), Body::Logout(logout.clone())),
            (9, Dir::C2S, vec![1, 2, 3], Body::Raw(vec![1, 2, 3])),
            (-1, Dir::S2C, vec![1, 2, 3], Body::Raw(vec![1, 2, 3])),
        ];
        for (cmd, dir, payload, want) in cases {
            let env = envelope(Some(cmd), Some(payload));
            let d = dec(&env, dir);
            assert_eq!(d.as_ref().map(|d| &d.body), Ok(&want), "command {cmd} {dir:?}");
            let d = d.unwrap_or_else(|_| unreachable!());
            assert_eq!(d.command, Command::from_i32(cmd));
            assert!(!d.zlib);
            assert_eq!(d.plain_payload, None);
        }
    }

    #[test]
    fn unknown_command_keeps_its_number() {
        let d = dec(&envelope(Some(9), None), Dir::C2S);
        assert!(
            matches!(d, Ok(Decoded { command: Command::Unknown(9), body: Body::Raw(ref b), .. }) if b.is_empty())
        );
        assert_eq!(Command::Unknown(9).name(), "COMMAND_9");
    }

    #[test]
    fn absent_payload_is_an_empty_message() {
        // The web SDK sends UNREAD with no payload field at all.
        let d = dec(&envelope(Some(1), None), Dir::C2S);
        assert_eq!(d.map(|d| d.body), Ok(Body::UnreadUl(pb::CommUnreadUl {})));
        let d = dec(&envelope(Some(1), None), Dir::S2C);
        assert_eq!(d.map(|d| d.body), Ok(Body::UnreadDl(pb::CommUnreadDl::default())));
        let d = dec(&envelope(Some(0), None), Dir::S2C);
        assert_eq!(d.map(|d| d.body), Ok(Body::SyncDl(pb::CommSyncDl::default())));
        let d = dec(&envelope(Some(3), None), Dir::C2S);
        assert_eq!(d.map(|d| d.body), Ok(Body::Provision(pb::Provision::default())));
    }

    #[test]
    fn absent_command_is_sync() {
        let mut env = sync_send();
        env.command = None;
        let d = dec(&env, Dir::C2S);
        assert!(matches!(d, Ok(Decoded { command: Command::Sync, body: Body::SyncUl(_), .. })));
        // An empty frame is a valid, empty envelope: SYNC with an empty payload.
        let d = decode(&[], Dir::S2C, &DecodeLimits::default());
        assert_eq!(d.map(|d| d.body), Ok(Body::SyncDl(pb::CommSyncDl::default())));
    }

    #[test]
    fn meta_bodies_in_order() {
        let d = dec(&sync_send(), Dir::C2S);
        let bodies = d.map(|d| d.meta_bodies).unwrap_or_default();
        assert_eq!(bodies.len(), 1);
        assert!(
            matches!(&bodies[0], MetaBody::Chat(m) if m.contents[0].text.as_deref() == Some("456"))
        );

        let dl = pb::CommSyncDl {
            metas: vec![
                chat_meta(1, "a"),
                pb::Meta { ns: Some(5), ..Default::default() },
                chat_meta(3, "c"),
            ],
            ..Default::default()
        };
        let d = dec(&envelope(None, Some(dl.encode_to_vec())), Dir::S2C);
        let bodies = d.map(|d| d.meta_bodies).unwrap_or_default();
        assert_eq!(bodies.len(), 3);
        assert!(
            matches!(&bodies[0], MetaBody::Chat(m) if m.contents[0].text.as_deref() == Some("a"))
        );
        assert_eq!(bodies[1], MetaBody::Empty);
        assert!(
            matches!(&bodies[2], MetaBody::Chat(m) if m.contents[0].text.as_deref() == Some("c"))
        );
    }

    #[test]
    fn zlib_payload_is_inflated() {
        let plain = sync_send().payload.unwrap_or_default();
        let mut env = envelope(Some(0), Some(zlib(&plain)));
        env.compress_algorimth = Some(1);
        let d = dec(&env, Dir::C2S);
        let d = d.unwrap_or_else(|e| panic!("{e}"));
        assert!(d.zlib);
        assert_eq!(d.plain_payload.as_deref(), Some(&plain[..]));
        assert_eq!(d.payload_bytes(), &plain[..]);
        assert!(matches!(d.body, Body::SyncUl(ref ul) if ul.meta.is_some()));
        assert_eq!(d.meta_bodies.len(), 1);
        // The envelope keeps the payload as on the wire.
        assert_eq!(d.env.payload, env.payload);
    }

    #[test]
    fn zlib_absent_payload_is_empty_message() {
        let mut env = envelope(Some(1), None);
        env.compress_algorimth = Some(1);
        let d = dec(&env, Dir::C2S);
        assert!(matches!(
            d,
            Ok(Decoded { zlib: true, plain_payload: None, body: Body::UnreadUl(_), .. })
        ));
    }

    #[test]
    fn zlib_corrupt_and_truncated() {
        let mut env = envelope(Some(0), Some(b"not zlib at all".to_vec()));
        env.compress_algorimth = Some(1);
        assert!(matches!(dec(&env, Dir::S2C), Err(DecodeError::Inflate(_))));

        let good = zlib(&sync_send().payload.unwrap_or_default());
        for cut in 1..good.len() - 4 {
            env.payload = Some(good[..cut].to_vec());
            assert!(
                matches!(dec(&env, Dir::C2S), Err(DecodeError::Inflate(_))),
                "zlib cut at {cut} of {}",
                good.len()
            );
        }
    }

    #[test]
    fn repeated_fields_of_millions_of_elements_are_not_decoded() {
        // 4 million empty metas: 8 MB on the wire, over a gigabyte as `Meta` structs.
        let env = envelope(Some(0), Some([0x22u8, 0x00].repeat(4 << 20)));
        assert!(matches!(dec(&env, Dir::S2C), Err(DecodeError::OverBudget(_))));
        // The same inflated from a zlib payload of a few kilobytes.
        let mut z = envelope(Some(0), Some(zlib(&[0x22u8, 0x00].repeat(4 << 20))));
        z.compress_algorimth = Some(1);
        assert!(z.payload.as_ref().is_some_and(|p| p.len() < 64 << 10));
        assert!(matches!(dec(&z, Dir::S2C), Err(DecodeError::OverBudget(_))));
    }

    #[test]
    fn metas_whose_payloads_spend_the_budget_are_invalid_the_rest_decodes() {
        // A few real metas, then a meta whose chat payload holds 4 million empty contents.
        let mut metas: Vec<pb::Meta> = (0..3).map(|i| chat_meta(i, "hi")).collect();
        let mut bomb = chat_meta(9, "");
        bomb.payload = Some([0x22u8, 0x00].repeat(4 << 20));
        metas.push(bomb);
        let dl = pb::CommSyncDl { metas, ..Default::default() };
        let env = envelope(Some(0), Some(dl.encode_to_vec()));
        let d = dec(&env, Dir::S2C).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.meta_bodies.len(), 4);
        assert!(d.meta_bodies[..3].iter().all(|b| matches!(b, MetaBody::Chat(_))));
        assert!(matches!(&d.meta_bodies[3], MetaBody::Invalid(r) if r.contains("budget")));
    }

    #[test]
    fn zlib_bomb_fails_fast() {
        // 1 GiB of zeros, compressed in a loop so the test never holds it.
        let chunk = vec![0u8; 1 << 20];
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        for _ in 0..1024 {
            assert!(e.write_all(&chunk).is_ok());
        }
        let bomb = e.finish().unwrap_or_default();
        assert!(bomb.len() < 2 << 20, "bomb is {} bytes", bomb.len());
        let mut env = envelope(Some(0), Some(bomb));
        env.compress_algorimth = Some(1);
        let limits = DecodeLimits::default();
        let t = std::time::Instant::now();
        let d = decode(&frame(&env), Dir::S2C, &limits);
        assert_eq!(d, Err(DecodeError::InflateTooLarge(limits.max_inflated)));
        assert!(t.elapsed() < std::time::Duration::from_secs(10));

        // Exactly at the cap is allowed; one byte over is not.
        let data = vec![7u8; 1000];
        let mut env = envelope(Some(7), Some(zlib(&data)));
        env.compress_algorimth = Some(1);
        let d = decode(&frame(&env), Dir::S2C, &DecodeLimits { max_inflated: 1000 });
        assert!(matches!(d, Ok(Decoded { body: Body::Raw(ref b), .. }) if b.len() == 1000));
        let d = decode(&frame(&env), Dir::S2C, &DecodeLimits { max_inflated: 999 });
        assert_eq!(d, Err(DecodeError::InflateTooLarge(999)));
    }

    #[test]
    fn unknown_compression_is_raw() {
        let mut env = sync_send();
        env.compress_algorimth = Some(2);
        let d = dec(&env, Dir::C2S);
        assert!(
            matches!(d, Ok(Decoded { zlib: false, body: Body::Raw(ref b), .. }) if Some(b) == env.payload.as_ref())
        );
    }

    #[test]
    fn encrypted_payload_is_not_decoded() {
        let mut env = envelope(Some(0), Some(vec![0xde, 0xad, 0xbe, 0xef]));
        env.encrypt_type = vec![0, 3];
        let d = dec(&env, Dir::S2C);
        assert!(matches!(d, Ok(Decoded { body: Body::Encrypted, .. })));
        // Compressed and encrypted: inflation is not attempted either.
        env.compress_algorimth = Some(1);
        assert!(matches!(
            dec(&env, Dir::S2C),
            Ok(Decoded { body: Body::Encrypted, zlib: true, plain_payload: None, .. })
        ));
        // ENCRYPT_NONE alone (what the web SDK always sends) is plain.
        let mut env = sync_send();
        env.encrypt_type = vec![0];
        assert!(matches!(dec(&env, Dir::C2S), Ok(Decoded { body: Body::SyncUl(_), .. })));
    }

    #[test]
    fn every_namespace() {
        let meta = |ns: Option<i32>, payload: Vec<u8>| pb::Meta {
            ns,
            payload: Some(payload),
            ..Default::default()
        };
        let stat = pb::StatisticsBody { version: Some("4.1".into()), ..Default::default() };
        let chat = pb::MessageBody { ack_message_id: Some(9), ..Default::default() };
        let muc = pb::MucBody { operation: Some(2), ..Default::default() };
        let roster = pb::RosterBody { operation: Some(2), ..Default::default() };
        let conf = pb::ConferenceBody { operation: Some(1), ..Default::default() };
        assert_eq!(
            decode_meta(&meta(None, stat.encode_to_vec())),
            MetaBody::Statistic(stat.clone())
        );
        assert_eq!(decode_meta(&meta(Some(0), stat.encode_to_vec())), MetaBody::Statistic(stat));
        assert_eq!(decode_meta(&meta(Some(1), chat.encode_to_vec())), MetaBody::Chat(chat));
        assert_eq!(decode_meta(&meta(Some(2), muc.encode_to_vec())), MetaBody::Muc(muc));
        assert_eq!(decode_meta(&meta(Some(3), roster.encode_to_vec())), MetaBody::Roster(roster));
        assert_eq!(decode_meta(&meta(Some(4), conf.encode_to_vec())), MetaBody::Conference(conf));
        assert_eq!(decode_meta(&meta(Some(5), vec![1, 2])), MetaBody::Raw);
        assert_eq!(decode_meta(&meta(Some(6), vec![1, 2])), MetaBody::Raw);
        assert_eq!(decode_meta(&meta(Some(77), vec![1, 2])), MetaBody::Raw);
        assert_eq!(decode_meta(&pb::Meta { ns: Some(1), ..Default::default() }), MetaBody::Empty);
        // Present but empty: an empty message of the namespace's type.
        assert_eq!(decode_meta(&meta(Some(1), vec![])), MetaBody::Chat(pb::MessageBody::default()));
    }

    #[test]
    fn invalid_meta_payload_does_not_fail_the_message() {
        let mut bad = chat_meta(1, "x");
        bad.payload = Some(vec![0x0a, 0x05, 0x01]); // field 1 LEN 5, only one byte follows
        let dl = pb::CommSyncDl { metas: vec![bad, chat_meta(2, "ok")], ..Default::default() };
        let d = dec(&envelope(Some(0), Some(dl.encode_to_vec())), Dir::S2C);
        let bodies = d.map(|d| d.meta_bodies).unwrap_or_default();
        assert!(
            matches!(&bodies[0], MetaBody::Invalid(r) if r.contains("failed to decode")),
            "{bodies:?}"
        );
        assert!(matches!(&bodies[1], MetaBody::Chat(_)));
    }

    #[test]
    fn errors_carry_the_reason() {
        let d = decode(&[0x0a, 0x05, 0x01], Dir::C2S, &DecodeLimits::default());
        assert!(
            matches!(&d, Err(DecodeError::Envelope(r)) if r.contains("failed to decode")),
            "{d:?}"
        );
        let d = dec(&envelope(Some(2), Some(vec![0x0a, 0x05, 0x01])), Dir::S2C);
        assert!(
            matches!(&d, Err(DecodeError::Payload { command, reason }) if command == "NOTICE" && reason.contains("failed to decode")),
            "{d:?}"
        );
        let msg = d.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.starts_with("NOTICE payload: failed to decode"), "{msg}");
    }

    #[test]
    fn every_prefix_of_a_valid_frame() {
        let dl = pb::CommSyncDl {
            status: Some(pb::Status { error_code: Some(0), ..Default::default() }),
            metas: vec![chat_meta(1, "hello"), chat_meta(2, "world")],
            queue: Some(jid("z13")),
            next_key: Some(2),
            ..Default::default()
        };
        let mut env = envelope(Some(0), Some(dl.encode_to_vec()));
        env.guid = Some(jid("z12"));
        env.trace_id = Some(1 << 40);
        let full = frame(&env);
        assert!(decode(&full, Dir::S2C, &DecodeLimits::default()).is_ok());
        assert!(plausible_envelope(&full));
        for cut in 0..full.len() {
            let part = &full[..cut];
            let _ = decode(part, Dir::S2C, &DecodeLimits::default());
            let _ = decode(part, Dir::C2S, &DecodeLimits::default());
            let _ = plausible_envelope(part);
            let _ = peek_command(part);
        }
        // Cutting inside the payload field is never plausible (its length runs past the end).
        // prost writes fields in number order, so without trace_id the payload comes last.
        env.trace_id = None;
        let full = frame(&env);
        let payload_start = full.len() - env.payload.as_ref().map_or(0, Vec::len);
        for cut in payload_start..full.len() {
            assert!(!plausible_envelope(&full[..cut]), "cut {cut}");
        }
    }

    #[test]
    fn plausible_envelope_cases() {
        assert!(!plausible_envelope(&[]));
        assert!(plausible_envelope(&frame(&sync_send())));
        assert!(plausible_envelope(&frame(&envelope(Some(1), None))));
        assert!(plausible_envelope(&frame(&envelope(Some(4), Some(vec![])))));
        // command out of range, even though prost would accept it
        assert!(!plausible_envelope(&frame(&envelope(Some(5), None))));
        assert!(!plausible_envelope(&frame(&envelope(Some(-1), None))));
        // every field MSync has, at once, with encrypt_type unpacked
        let all = pb::MSync {
            version: Some(0),
            guid: Some(jid("z12")),
            auth: Some("tok".into()),
            compress_algorimth: Some(0),
            crypto: Some(0),
            user_agent: Some("ua".into()),
            pov: Some(1),
            command: Some(3),
            payload: Some(vec![1]),
            device_id: Some(0),
            encrypt_type: vec![0, 1],
            encrypt_key: Some("k".into()),
            tag: Some(vec![1]),
            iv: Some(vec![2]),
            trace_id: Some(u64::MAX),
        };
        assert!(plausible_envelope(&frame(&all)));
        // encrypt_type packed
        assert!(plausible_envelope(&[0x5a, 0x02, 0x00, 0x03]));
        // unknown field number 15, 19, 21
        assert!(!plausible_envelope(&[0x78, 0x01]));
        assert!(!plausible_envelope(&[0x98, 0x01, 0x01]));
        assert!(!plausible_envelope(&[0xa8, 0x01, 0x01]));
        // field 0
        assert!(!plausible_envelope(&[0x00, 0x00]));
        // wrong wire type: payload as varint, command as LEN, fixed32/64, groups
        assert!(!plausible_envelope(&[0x48, 0x01]));
        assert!(!plausible_envelope(&[0x42, 0x01, 0x00]));
        assert!(!plausible_envelope(&[0x45, 0, 0, 0, 0]));
        assert!(!plausible_envelope(&[0x41, 0, 0, 0, 0, 0, 0, 0, 0]));
        assert!(!plausible_envelope(&[0x0b, 0x0c]));
        // varint longer than ten bytes; truncated varint; length past the end
        assert!(!plausible_envelope(&[
            0x38, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
        ]));
        assert!(!plausible_envelope(&[0x38, 0xff]));
        assert!(!plausible_envelope(&[0x4a, 0x05, 0x01]));
        assert!(!plausible_envelope(&[
            0x4a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
        ]));
        // a 4-byte length prefix in front of the message is not an envelope
        let mut prefixed = (frame(&sync_send()).len() as u32).to_be_bytes().to_vec();
        prefixed.extend(frame(&sync_send()));
        assert!(!plausible_envelope(&prefixed));
    }

    #[test]
    fn random_bytes_are_mostly_not_plausible() {
        // A fixed xorshift stream so the test is deterministic.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut plausible = 0;
        for _ in 0..10_000 {
            let mut buf = [0u8; 32];
            for b in &mut buf {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            if plausible_envelope(&buf) {
                plausible += 1;
            }
        }
        assert!(plausible < 10, "{plausible} of 10000 random frames looked plausible");
    }

    #[test]
    fn peek_command_labels_broken_frames() {
        assert_eq!(peek_command(&[0x40, 0x03, 0x4a, 0x05, 0x01]), Some(Command::Provision));
        assert_eq!(peek_command(&[0x4a, 0x05, 0x01]), None);
        assert_eq!(peek_command(&[0x08, 0x00]), Some(Command::Sync));
        assert_eq!(peek_command(&[0x40, 0x09]), Some(Command::Unknown(9)));
    }

    #[test]
    fn may_be_provision_sees_provisions() {
        let prov = pb::Provision { version: Some("3.3.4".into()), ..Default::default() };
        assert!(may_be_provision(&frame(&envelope(Some(3), Some(prov.encode_to_vec())))));
        assert!(!may_be_provision(&frame(&envelope(Some(0), Some(prov.encode_to_vec())))));
        assert!(!may_be_provision(&frame(&envelope(None, None))));
        assert!(!may_be_provision(&frame(&envelope(Some(2), None))));
        // The last command wins; so does its low 32 bits.
        assert!(may_be_provision(&[0x40, 0x00, 0x40, 0x03]));
        assert!(!may_be_provision(&[0x40, 0x03, 0x40, 0x00]));
        assert!(may_be_provision(&[0x40, 0x83, 0x80, 0x80, 0x80, 0x10]));
        // Unusual or broken: maybe.
        assert!(may_be_provision(&[0x4a, 0x05, 0x01]));
        assert!(may_be_provision(&[0x42, 0x01, 0x03]));
        assert!(may_be_provision(&[0x0b, 0x0c, 0x40, 0x03]));
        assert!(may_be_provision(&[0x40]));
    }

    /// What `flate2`'s reader gives, read to the end through `take(max + 1)`: the reference
    /// that [`inflate_into`] must match, byte for byte and error for error.
    fn reader_inflate(input: &[u8], max: usize) -> Result<Vec<u8>, String> {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::bufread::ZlibDecoder::new(input)
            .take(max as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| e.to_string())?;
        if out.len() > max {
            return Err("too large".into());
        }
        Ok(out)
    }

    fn ours(input: &[u8], max: usize) -> Result<Vec<u8>, String> {
        let mut out = vec![7u8; 3];
        inflate_into(input, max, &mut out).map_err(|e| match e {
            DecodeError::InflateTooLarge(_) => "too large".to_string(),
            DecodeError::Inflate(m) => m,
            e => e.to_string(),
        })?;
        assert_eq!(out.get(..3), Some(&[7u8; 3][..]), "what was in the buffer stays");
        Ok(out.split_off(3))
    }

    proptest! {
        /// Whole, cut, corrupted and padded zlib streams, with caps below, at and above what
        /// they inflate to: the same output or the same error as the reader, one inflater
        /// reused throughout (a failed stream must not taint the next).
        #[test]
        fn inflate_matches_the_reader(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            repeat in 1usize..40,
            level in 0u32..10,
            cut in any::<proptest::sample::Index>(),
            flip in any::<proptest::sample::Index>(),
            xor in 1u8..=255,
            tail in proptest::collection::vec(any::<u8>(), 0..6),
            slack in 0usize..3,
        ) {
            let plain: Vec<u8> = data.iter().copied().cycle().take(data.len() * repeat).collect();
            let mut enc =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(level));
            prop_assert!(enc.write_all(&plain).is_ok());
            let z = enc.finish().unwrap_or_default();
            let mut cut_z = z.clone();
            cut_z.truncate(cut.index(z.len() + 1));
            let mut flipped = z.clone();
            let i = flip.index(z.len());
            flipped[i] ^= xor;
            let mut padded = z.clone();
            padded.extend_from_slice(&tail);
            for input in [&z, &cut_z, &flipped, &padded, &data] {
                for max in [0, plain.len().saturating_sub(1), plain.len(), plain.len() + slack, 1 << 20] {
                    prop_assert_eq!(ours(input, max), reader_inflate(input, max), "max {}", max);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn may_be_provision_is_never_wrong(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            command in proptest::option::of(0i32..=4),
            payload in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32)),
            tail in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let mut framed = frame(&envelope(command, payload));
            framed.extend_from_slice(&tail);
            for b in [&bytes, &framed] {
                for dir in [Dir::C2S, Dir::S2C] {
                    if let Ok(Decoded { body: Body::Provision(_), .. }) =
                        decode(b, dir, &DecodeLimits::default())
                    {
                        prop_assert!(may_be_provision(b));
                    }
                }
            }
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = plausible_envelope(&bytes);
            let _ = peek_command(&bytes);
            let _ = may_be_provision(&bytes);
            let _ = decode(&bytes, Dir::C2S, &DecodeLimits::default());
            let _ = decode(&bytes, Dir::S2C, &DecodeLimits { max_inflated: 64 });
        }

        #[test]
        fn encoded_envelopes_are_plausible(
            command in proptest::option::of(0i32..=4),
            payload in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
            trace_id in proptest::option::of(any::<u64>()),
            encrypt in proptest::collection::vec(0i32..4, 0..3),
            auth in proptest::option::of(".{0,20}"),
        ) {
            let env = pb::MSync { command, payload, trace_id, encrypt_type: encrypt, auth, ..Default::default() };
            let bytes = frame(&env);
            prop_assert_eq!(plausible_envelope(&bytes), !bytes.is_empty());
        }
    }
}
