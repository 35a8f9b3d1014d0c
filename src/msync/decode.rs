//! Decoding of one MSync message: envelope, command dispatch by direction, zlib inflation of
//! compressed payloads (bounded), and decoding of every `Meta.payload` by namespace.
//!
//! Invariants: nothing here panics on input bytes; inflation never produces more than
//! [`DecodeLimits::max_inflated`] (+1) bytes whatever the payload claims; protobuf nesting is
//! bounded by prost's recursion limit. A meta whose payload does not decode does not fail the
//! message: it is recorded as [`MetaBody::Invalid`].

use std::io::Read;

use prost::Message;

use super::pb;
use crate::net::Dir;

/// Limits that keep decoding bounded whatever the input claims.
#[derive(Clone, Copy, Debug)]
pub struct DecodeLimits {
    /// Largest inflated size of a zlib-compressed payload.
    pub max_inflated: usize,
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
    /// are kept as they are (as on the wire, not inflated).
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
    /// DL `metas`).
    pub meta_bodies: Vec<MetaBody>,
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
    let env = pb::MSync::decode(frame).map_err(|e| DecodeError::Envelope(e.to_string()))?;
    // proto2 default: an absent command is SYNC (0), which the native SDKs leave out.
    let command = Command::from_i32(env.command.unwrap_or(0));
    let compress = env.compress_algorimth.unwrap_or(0);
    let zlib = compress == COMPRESS_ZLIB;
    let wire = env.payload.as_deref().unwrap_or_default();

    let mut plain_payload = None;
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
        dispatch(command, dir, bytes)?
    };

    let meta_bodies = match &body {
        Body::SyncUl(ul) => ul.meta.iter().map(decode_meta).collect(),
        Body::SyncDl(dl) => dl.metas.iter().map(decode_meta).collect(),
        _ => Vec::new(),
    };
    Ok(Decoded { env, command, body, zlib, plain_payload, meta_bodies })
}

/// Inflates a zlib stream, reading at most `max + 1` bytes of output so a bomb costs no more
/// than the cap in memory and time.
fn inflate(input: &[u8], max: usize) -> Result<Vec<u8>, DecodeError> {
    let cap = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    // Typical MSync payloads inflate a few times over; start there rather than at zero.
    let mut out = Vec::with_capacity(input.len().saturating_mul(4).min(max));
    flate2::bufread::ZlibDecoder::new(input)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Inflate(e.to_string()))?;
    if out.len() > max {
        return Err(DecodeError::InflateTooLarge(max));
    }
    Ok(out)
}

/// Decodes the command payload as the type the command and direction give it.
fn dispatch(command: Command, dir: Dir, bytes: &[u8]) -> Result<Body, DecodeError> {
    fn typed<M: Message + Default>(
        command: Command,
        bytes: &[u8],
        wrap: fn(M) -> Body,
    ) -> Result<Body, DecodeError> {
        M::decode(bytes).map(wrap).map_err(|e| DecodeError::Payload {
            command: command.name().into_owned(),
            reason: e.to_string(),
        })
    }
    match (command, dir) {
        (Command::Provision, _) => typed(command, bytes, Body::Provision),
        (Command::Unread, Dir::C2S) => typed(command, bytes, Body::UnreadUl),
        (Command::Unread, Dir::S2C) => typed(command, bytes, Body::UnreadDl),
        (Command::Notice, Dir::S2C) => typed(command, bytes, Body::Notice),
        (Command::Sync, Dir::C2S) => typed(command, bytes, Body::SyncUl),
        (Command::Sync, Dir::S2C) => typed(command, bytes, Body::SyncDl),
        (Command::Logout, _) => typed(command, bytes, Body::Logout),
        (Command::Notice, Dir::C2S) | (Command::Unknown(_), _) => Ok(Body::Raw(bytes.to_vec())),
    }
}

/// Decodes a Meta's payload by its namespace.
pub fn decode_meta(meta: &pb::Meta) -> MetaBody {
    fn typed<M: Message + Default>(bytes: &[u8], wrap: fn(M) -> MetaBody) -> MetaBody {
        match M::decode(bytes) {
            Ok(m) => wrap(m),
            Err(e) => MetaBody::Invalid(e.to_string()),
        }
    }
    let Some(bytes) = meta.payload.as_deref() else {
        return MetaBody::Empty;
    };
    // proto2 default: an absent namespace is STATISTIC (0).
    match meta.ns.unwrap_or(0) {
        0 => typed(bytes, MetaBody::Statistic),
        1 => typed(bytes, MetaBody::Chat),
        2 => typed(bytes, MetaBody::Muc),
        3 => typed(bytes, MetaBody::Roster),
        4 => typed(bytes, MetaBody::Conference),
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
