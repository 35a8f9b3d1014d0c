//! The schema as a static table generated at build time from `proto/`, and a walker over
//! protobuf wire bytes guided by it.
//!
//! Generated prost types drop unknown fields and cannot say where a field was, so every
//! rendering walks the wire bytes instead: [`Reader`] reads raw fields without copying,
//! [`walk_frame`] / [`walk_message`] interpret them with the schema table and hand them to a
//! [`Visitor`] (one per output format). The walker resolves `MSync.payload` by command and
//! direction ([`payload_type`]; the command may follow the payload on the wire, so each
//! message's fields are read before any is visited), inflates zlib payloads (bounded by
//! `RenderOpts::max_inflated`), refuses encrypted ones, and resolves `Meta.payload` by
//! namespace ([`meta_payload_type`]).
//!
//! Invariants:
//! - nothing derived from input can panic: every length is compared with the bytes left
//!   before slicing, with no arithmetic that can overflow;
//! - recursion is one level per embedded message and stops at `RenderOpts::max_depth` (never
//!   above [`HARD_MAX_DEPTH`]); groups are skipped iteratively and fail past
//!   [`MAX_GROUP_DEPTH`], so no input can exhaust the stack;
//! - a malformed embedded message or payload becomes [`Visitor::opaque`] (its bytes and the
//!   reason) and the walk goes on; only the top-level message ends in [`Visitor::error`];
//! - the cost is linear in the input (plus a sort of each message's fields when they are out
//!   of order), with no allocation per field.

include!(concat!(env!("OUT_DIR"), "/schema_table.rs"));

/// A protobuf varint at the start of `b`: its value and length, or None when `b` ends inside
/// it or it runs past ten bytes. For quick scans that need no error detail.
#[inline]
pub fn varint(b: &[u8]) -> Option<(u64, usize)> {
    // Keys and most lengths take one or two bytes: those without the loop.
    match *b {
        [a, ..] if a < 0x80 => return Some((u64::from(a), 1)),
        [a, c, ..] if c < 0x80 => return Some((u64::from(a & 0x7f) | u64::from(c) << 7, 2)),
        _ => {}
    }
    varint_loop(b)
}

fn varint_loop(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// A field's wire-level kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Double,
    Float,
    Int64,
    Uint64,
    Int32,
    Fixed64,
    Fixed32,
    Bool,
    String,
    Bytes,
    Uint32,
    Sfixed32,
    Sfixed64,
    Sint32,
    Sint64,
    /// Index into [`ENUMS`].
    Enum(usize),
    /// Index into [`MESSAGES`].
    Message(usize),
}

#[derive(Debug)]
pub struct FieldDesc {
    pub number: u32,
    /// The `.proto` name (snake_case, with the schema's few camelCase exceptions).
    pub name: &'static str,
    /// The canonical protobuf-JSON name (lowerCamelCase).
    pub json_name: &'static str,
    pub kind: Kind,
    pub repeated: bool,
}

#[derive(Debug)]
pub struct MessageDesc {
    /// e.g. `easemob.pb.CommSyncDL`.
    pub full_name: &'static str,
    /// Sorted by field number.
    pub fields: &'static [FieldDesc],
}

impl PartialEq for EnumDesc {
    fn eq(&self, other: &Self) -> bool {
        self.full_name == other.full_name
    }
}

#[derive(Debug)]
pub struct EnumDesc {
    pub full_name: &'static str,
    pub values: &'static [(i32, &'static str)],
}

/// Index of the message called `full_name` (e.g. `easemob.pb.MSync`) in [`MESSAGES`].
pub fn message(full_name: &str) -> Option<usize> {
    MESSAGES.iter().position(|m| m.full_name == full_name)
}

/// Index of the enum called `full_name` in [`ENUMS`].
pub fn enum_index(full_name: &str) -> Option<usize> {
    ENUMS.iter().position(|e| e.full_name == full_name)
}

impl MessageDesc {
    /// The field numbered `number`; fields are sorted by number, so a binary search.
    pub fn field(&self, number: u32) -> Option<&'static FieldDesc> {
        // `fields` is `&'static`, so the result outlives `self`.
        let fields: &'static [FieldDesc] = self.fields;
        // Most messages number their fields 1, 2, 3, … : then field n sits at index n - 1, and
        // the walkers (which look up every field of every message twice) skip the search.
        let direct = number.checked_sub(1).and_then(|i| fields.get(usize::try_from(i).ok()?));
        if let Some(f) = direct.filter(|f| f.number == number) {
            return Some(f);
        }
        fields.binary_search_by_key(&number, |f| f.number).ok().and_then(|i| fields.get(i))
    }
}

impl EnumDesc {
    /// The name of `value`, if the schema knows it (enums are small: a linear scan).
    pub fn name_of(&self, value: i32) -> Option<&'static str> {
        let values: &'static [(i32, &'static str)] = self.values;
        values.iter().find(|(n, _)| *n == value).map(|(_, s)| *s)
    }
}

/// The protobuf wire types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireType {
    Varint,
    Fixed64,
    Len,
    /// A proto2 group (start group .. end group); never in our schema, skipped as a whole.
    Group,
    Fixed32,
}

impl WireType {
    pub fn as_str(self) -> &'static str {
        match self {
            WireType::Varint => "varint",
            WireType::Fixed64 => "fixed64",
            WireType::Len => "bytes",
            WireType::Group => "group",
            WireType::Fixed32 => "fixed32",
        }
    }
}

/// Why bytes are not a well-formed protobuf message. `offset` is relative to the start of the
/// buffer being parsed (the frame, or an inflated payload).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated varint at offset {0}")]
    TruncatedVarint(usize),
    #[error("varint longer than 10 bytes at offset {0}")]
    OverlongVarint(usize),
    #[error("invalid wire type {wire} at offset {offset}")]
    InvalidWireType { wire: u8, offset: usize },
    #[error("field number 0 at offset {0}")]
    FieldZero(usize),
    #[error("data at offset {offset} needs {need} bytes, {have} left")]
    Truncated { offset: usize, need: u64, have: usize },
    #[error("end group without start at offset {0}")]
    UnexpectedEndGroup(usize),
    #[error("groups nested deeper than {limit} at offset {offset}")]
    GroupTooDeep { offset: usize, limit: usize },
    #[error("unterminated group starting at offset {0}")]
    UnterminatedGroup(usize),
    #[error("end group for field {got} closes group {want} at offset {offset}")]
    MismatchedEndGroup { offset: usize, want: u32, got: u32 },
    /// Not malformed, but more fields than one message is shown with (see [`MAX_SHOWN_FIELDS`]).
    #[error("more than {limit} fields in one message: the rest of it is not shown")]
    TooManyFields { limit: usize },
}

/// Deepest group nesting skipped before giving up (protobuf's own parsers use 100).
pub const MAX_GROUP_DEPTH: usize = 100;

/// Hard ceiling on embedded-message recursion, whatever `RenderOpts::max_depth` says: the walker
/// recurses once per level, so this bounds its stack use.
pub const HARD_MAX_DEPTH: usize = 200;

/// The most fields (packed elements included) one walk shows. A field can take two bytes on
/// the wire and a line of output, and the walker's stack holds every field of the messages it
/// is inside: a frame of millions of tiny fields rendered whole took 50 times its size
/// (930 MB for 16 MB). Real messages have thousands; past the limit the rest is not shown and
/// the walk ends with [`WireError::TooManyFields`].
pub const MAX_SHOWN_FIELDS: usize = 1 << 18;

/// A zero-copy reader over protobuf wire bytes. Every read checks the remaining length first, so
/// no read can panic; positions are byte offsets into `buf`.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// One raw field as it sits on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Len(&'a [u8]),
    /// The bytes between the start-group and end-group tags (exclusive).
    Group(&'a [u8]),
}

impl RawValue<'_> {
    pub fn wire_type(&self) -> WireType {
        match self {
            RawValue::Varint(_) => WireType::Varint,
            RawValue::Fixed64(_) => WireType::Fixed64,
            RawValue::Fixed32(_) => WireType::Fixed32,
            RawValue::Len(_) => WireType::Len,
            RawValue::Group(_) => WireType::Group,
        }
    }
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub fn pos(&self) -> usize {
        self.pos
    }
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
    fn remaining(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    pub fn varint(&mut self) -> Result<u64, WireError> {
        let start = self.pos;
        let mut v: u64 = 0;
        for (i, &b) in self.remaining().iter().enumerate() {
            if i == 10 {
                return Err(WireError::OverlongVarint(start));
            }
            // The tenth byte carries bit 63 only; more would overflow 64 bits (protowire's
            // rule too).
            if i == 9 && b > 1 {
                return Err(WireError::OverlongVarint(start));
            }
            v |= u64::from(b & 0x7f).checked_shl(7 * i as u32).unwrap_or(0);
            if b & 0x80 == 0 {
                self.pos = start + i + 1;
                return Ok(v);
            }
        }
        if self.remaining().len() >= 10 {
            Err(WireError::OverlongVarint(start))
        } else {
            Err(WireError::TruncatedVarint(start))
        }
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], WireError> {
        let rest = self.remaining();
        let have = rest.len();
        // Compare before converting so a huge claimed length can neither overflow nor slice.
        if n > have as u64 {
            return Err(WireError::Truncated { offset: self.pos, need: n, have });
        }
        let n = n as usize;
        let (head, _) = rest.split_at(n);
        self.pos += n;
        Ok(head)
    }

    pub fn fixed32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_le_bytes(a))
    }

    pub fn fixed64(&mut self) -> Result<u64, WireError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Reads a tag: `(field number, wire type number)`.
    fn tag(&mut self) -> Result<(u32, u8), WireError> {
        let at = self.pos;
        let t = self.varint()?;
        let wire = (t & 7) as u8;
        let number = t >> 3;
        if number == 0 {
            return Err(WireError::FieldZero(at));
        }
        if number > u64::from(u32::MAX >> 3) {
            // Beyond the largest legal field number (2^29 - 1): treat as garbage.
            return Err(WireError::InvalidWireType { wire, offset: at });
        }
        Ok((number as u32, wire))
    }

    /// Skips the body of a group whose start tag was just read, iteratively (no recursion, so
    /// any nesting costs constant stack), and returns the bytes between the tags.
    fn group(&mut self, number: u32, start_offset: usize) -> Result<&'a [u8], WireError> {
        let body_start = self.pos;
        let mut open: Vec<u32> = Vec::new();
        open.push(number);
        loop {
            if self.is_empty() {
                return Err(WireError::UnterminatedGroup(start_offset));
            }
            let at = self.pos;
            let (n, wire) = self.tag()?;
            match wire {
                0 => {
                    self.varint()?;
                }
                1 => {
                    self.take(8)?;
                }
                2 => {
                    let len = self.varint()?;
                    self.take(len)?;
                }
                3 => {
                    if open.len() >= MAX_GROUP_DEPTH {
                        return Err(WireError::GroupTooDeep { offset: at, limit: MAX_GROUP_DEPTH });
                    }
                    open.push(n);
                }
                4 => {
                    let want = open.pop().unwrap_or(0);
                    if want != n {
                        return Err(WireError::MismatchedEndGroup { offset: at, want, got: n });
                    }
                    if open.is_empty() {
                        return Ok(self.buf.get(body_start..at).unwrap_or(&[]));
                    }
                }
                5 => {
                    self.take(4)?;
                }
                w => return Err(WireError::InvalidWireType { wire: w, offset: at }),
            }
        }
    }

    /// Reads one field: `(offset of its tag, number, value)`, or `None` at the end.
    pub fn field(&mut self) -> Result<Option<(usize, u32, RawValue<'a>)>, WireError> {
        if self.is_empty() {
            return Ok(None);
        }
        let at = self.pos;
        let (number, wire) = self.tag()?;
        let v = match wire {
            0 => RawValue::Varint(self.varint()?),
            1 => RawValue::Fixed64(self.fixed64()?),
            2 => {
                let len = self.varint()?;
                RawValue::Len(self.take(len)?)
            }
            3 => RawValue::Group(self.group(number, at)?),
            4 => return Err(WireError::UnexpectedEndGroup(at)),
            5 => RawValue::Fixed32(self.fixed32()?),
            w => return Err(WireError::InvalidWireType { wire: w, offset: at }),
        };
        Ok(Some((at, number, v)))
    }
}

impl WireError {
    /// The same error with its offsets moved by `base` (from an embedded message's own bytes to
    /// the enclosing buffer's).
    pub fn shifted(self, base: usize) -> WireError {
        use WireError::*;
        let s = |o: usize| o.saturating_add(base);
        match self {
            TruncatedVarint(o) => TruncatedVarint(s(o)),
            OverlongVarint(o) => OverlongVarint(s(o)),
            InvalidWireType { wire, offset } => InvalidWireType { wire, offset: s(offset) },
            FieldZero(o) => FieldZero(s(o)),
            Truncated { offset, need, have } => Truncated { offset: s(offset), need, have },
            UnexpectedEndGroup(o) => UnexpectedEndGroup(s(o)),
            GroupTooDeep { offset, limit } => GroupTooDeep { offset: s(offset), limit },
            UnterminatedGroup(o) => UnterminatedGroup(s(o)),
            MismatchedEndGroup { offset, want, got } => {
                MismatchedEndGroup { offset: s(offset), want, got }
            }
            TooManyFields { limit } => TooManyFields { limit },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The walker.

use crate::msync::render::RenderOpts;
use crate::net::Dir;

/// Where a field sits and what the schema says of it.
#[derive(Clone, Copy, Debug)]
pub struct FieldInfo {
    /// Offset of the field's tag within the frame; `None` inside a zlib-inflated payload, whose
    /// bytes are not in the frame (see `local_offset`).
    pub offset: Option<usize>,
    /// Offset of the tag within the buffer being walked (the frame or the inflated payload).
    pub local_offset: usize,
    pub number: u32,
    pub wire: WireType,
    /// `None` for field numbers the schema does not know, and for known fields that arrive with
    /// a wire type their type cannot have (protobuf parsers treat those as unknown too).
    pub desc: Option<&'static FieldDesc>,
    /// The message the field belongs to.
    pub parent: &'static MessageDesc,
    /// In number order, a later occurrence of this singular field follows (protobuf: last wins).
    pub superseded: bool,
    /// A value of a `KeyValue` whose key names a credential
    /// ([`crate::msync::render::is_secret_key`]): redacted like a secret field.
    pub secret_value: bool,
}

impl FieldInfo {
    /// The field as a [`NotUtf8`](crate::msync::lossy::NotUtf8) warning names it.
    pub fn not_utf8(&self) -> crate::msync::lossy::NotUtf8 {
        crate::msync::lossy::NotUtf8 {
            message: self.parent.full_name,
            field: self.desc.map_or("?", |d| d.name),
        }
    }

    /// Whether the field is a secret (by name, see [`crate::msync::render::is_secret`]). A
    /// secret field that arrives with a wire type its type cannot have is shown as an unknown
    /// field (`desc` is `None`), but its bytes are still the secret's: its number decides.
    ///
    /// A field number the schema does not know, carrying bytes, in a message that carries
    /// credentials (the envelope, PROVISION) is taken as one too: a newer SDK's token there
    /// would otherwise print in clear, and nothing else of interest is expected beside them.
    pub fn is_secret(&self) -> bool {
        if self.secret_value {
            return true;
        }
        match self.desc.or_else(|| self.parent.field(self.number)) {
            Some(d) => crate::msync::render::is_secret(self.parent.full_name, d.name),
            None => {
                matches!(self.wire, WireType::Len | WireType::Group)
                    && self
                        .parent
                        .fields
                        .iter()
                        .any(|d| crate::msync::render::is_credential(d.name))
            }
        }
    }
}

/// A field value, interpreted by the schema.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'b> {
    /// int32, int64, sint32, sint64, sfixed32, sfixed64.
    Int(i64),
    /// uint32, uint64, fixed32, fixed64.
    Uint(u64),
    Bool(bool),
    F32(f32),
    F64(f64),
    Str(&'b str),
    /// `bytes` fields.
    Bytes(&'b [u8]),
    /// A `string` field whose bytes are not UTF-8 (shown lossily, with a warning).
    NotUtf8(&'b [u8]),
    /// An enum value; `name` is `None` when the schema does not know the number.
    Enum {
        number: i32,
        name: Option<&'static str>,
        desc: &'static EnumDesc,
    },
    /// An unknown field, as it was on the wire.
    Raw(RawValue<'b>),
}

/// An embedded message about to be walked.
#[derive(Clone, Copy, Debug)]
pub struct Nested<'b> {
    pub desc: &'static MessageDesc,
    /// The message's bytes (inflated, for a zlib payload).
    pub bytes: &'b [u8],
    /// Its length on the wire.
    pub wire_len: usize,
    /// The bytes were zlib-inflated from the wire.
    pub zlib: bool,
    /// A `bytes` field resolved to a message (`MSync.payload`, `Meta.payload`).
    pub payload: bool,
}

/// Why a length-delimited field is shown as bytes instead of a message.
#[derive(Clone, Copy, Debug)]
pub enum Opaque<'e> {
    /// `MSync.encrypt_type` names a cipher: the payload cannot be read.
    Encrypted,
    /// Nested deeper than `RenderOpts::max_depth`.
    TooDeep(&'static MessageDesc),
    /// The bytes are not a well-formed message of this type. The error's offsets are frame
    /// offsets, or offsets within the inflated payload when `inflated`.
    Invalid { ty: &'static MessageDesc, err: &'e WireError, inflated: bool },
    /// The zlib payload of type `ty` could not be inflated (corrupt, or over
    /// `RenderOpts::max_inflated`).
    Inflate { ty: &'static MessageDesc, err: &'e InflateError },
    /// Packed repeated scalars that do not parse.
    BadPacked(&'e WireError),
}

impl std::fmt::Display for Opaque<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Opaque::Encrypted => f.write_str("encrypted"),
            Opaque::TooDeep(m) => write!(f, "{} nested too deep", m.full_name),
            Opaque::Invalid { ty, err, inflated } => {
                write!(f, "not a valid {}: {err}", ty.full_name)?;
                if *inflated {
                    f.write_str(" (offset within the inflated payload)")?;
                }
                Ok(())
            }
            Opaque::Inflate { err, .. } => write!(f, "{err}"),
            Opaque::BadPacked(e) => write!(f, "bad packed field: {e}"),
        }
    }
}

impl Opaque<'_> {
    /// Whether the bytes shown may hold a secret: they are (or inflate to) a message whose type
    /// can carry one, at any depth (see [`holds_secrets`]). Renderers redact such bytes unless
    /// secrets are shown: a Provision that does not parse, or one past `--max-depth`, would
    /// otherwise print its password in hex or base64. Encrypted payloads are ciphertext, and
    /// packed scalars are never secrets.
    pub fn may_hold_secrets(&self) -> bool {
        match self {
            Opaque::TooDeep(ty) | Opaque::Invalid { ty, .. } | Opaque::Inflate { ty, .. } => {
                holds_secrets(ty)
            }
            Opaque::Encrypted | Opaque::BadPacked(_) => false,
        }
    }
}

/// Whether a message of type `desc` can carry a secret field (see
/// [`crate::msync::render::is_secret`]) at any depth, following embedded messages and the
/// payloads the walker resolves (`MSync.payload` by command, `Meta.payload` by namespace).
/// Computed once for the whole schema.
pub fn holds_secrets(desc: &MessageDesc) -> bool {
    static SECRET: std::sync::OnceLock<Vec<bool>> = std::sync::OnceLock::new();
    let table = SECRET.get_or_init(|| {
        let k = known();
        let index = |d: Option<&'static MessageDesc>| {
            d.and_then(|d| MESSAGES.iter().position(|m| std::ptr::eq(m, d)))
        };
        // What each message leads to: its embedded message fields, and for MSync and Meta the
        // types their payload bytes resolve to.
        let edges: Vec<Vec<usize>> = MESSAGES
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut e: Vec<usize> = m
                    .fields
                    .iter()
                    .filter_map(|f| match f.kind {
                        Kind::Message(j) => Some(j),
                        _ => None,
                    })
                    .collect();
                if Some(i) == k.msync {
                    for c in 0..=4 {
                        for dir in [Dir::C2S, Dir::S2C] {
                            e.extend(index(payload_type(c, dir)));
                        }
                    }
                }
                if Some(i) == k.meta {
                    e.extend((0..=4).filter_map(|ns| index(meta_payload_type(ns))));
                }
                e
            })
            .collect();
        // A KeyValue's value is a secret when its key names a credential.
        let mut secret: Vec<bool> = MESSAGES
            .iter()
            .enumerate()
            .map(|(i, m)| {
                Some(i) == k.key_value
                    || m.fields.iter().any(|f| crate::msync::render::is_secret(m.full_name, f.name))
            })
            .collect();
        // Propagate to the types that lead to a secret one, until nothing changes.
        loop {
            let mut changed = false;
            for (i, e) in edges.iter().enumerate() {
                if !secret.get(i).copied().unwrap_or(true)
                    && e.iter().any(|&j| secret.get(j).copied().unwrap_or(false))
                {
                    if let Some(s) = secret.get_mut(i) {
                        *s = true;
                        changed = true;
                    }
                }
            }
            if !changed {
                break secret;
            }
        }
    });
    MESSAGES
        .iter()
        .position(|m| std::ptr::eq(m, desc))
        .and_then(|i| table.get(i).copied())
        // A descriptor outside the table: assume the worst.
        .unwrap_or(true)
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    #[error("zlib: inflated payload exceeds {0} bytes")]
    TooLarge(usize),
    #[error("zlib: {0}")]
    Corrupt(String),
}

/// Inflates a zlib stream, refusing to produce more than `max` bytes.
pub fn inflate(data: &[u8], max: usize) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::new();
    super::decode::inflate_into(data, max, &mut out).map_err(|e| match e {
        super::decode::DecodeError::InflateTooLarge(_) => InflateError::TooLarge(max),
        super::decode::DecodeError::Inflate(m) => InflateError::Corrupt(m),
        e => InflateError::Corrupt(e.to_string()),
    })?;
    Ok(out)
}

/// Callbacks of a walk. The walker calls them in the visitor's chosen order (wire order, or by
/// [`Visitor::rank`]); every embedded message is bracketed by `message_start`/`message_end`.
pub trait Visitor {
    /// Keep fields in wire order (no grouping of repeated fields) instead of sorting by rank.
    fn wire_order(&self) -> bool {
        false
    }
    /// Sort key of a field within its message (stable: equal ranks keep wire order). The default
    /// is the field number, unknown fields after known ones.
    fn rank(&self, parent: &'static MessageDesc, number: u32, known: bool) -> u64 {
        let _ = parent;
        u64::from(number) | if known { 0 } else { 1 << 32 }
    }
    /// A scalar (or unknown) field. Packed repeated fields yield one call per element.
    fn value(&mut self, f: &FieldInfo, v: Value<'_>);
    /// An embedded message begins; return `false` to skip its fields (no `message_end` then).
    fn message_start(&mut self, f: &FieldInfo, n: &Nested<'_>) -> bool;
    fn message_end(&mut self, f: &FieldInfo, n: &Nested<'_>);
    /// Before the first and after the last element of a known repeated field (sorted order only).
    fn repeated_start(&mut self, f: &FieldInfo) {
        let _ = f;
    }
    fn repeated_end(&mut self, f: &FieldInfo) {
        let _ = f;
    }
    /// A length-delimited field shown as bytes, and why.
    fn opaque(&mut self, f: &FieldInfo, why: Opaque<'_>, bytes: &[u8]);
    /// The top-level message stops being parseable here; the fields before it were visited.
    fn error(&mut self, err: &WireError);
}

/// Indices of the messages payload resolution needs, looked up once.
struct Known {
    msync: Option<usize>,
    meta: Option<usize>,
    provision: Option<usize>,
    unread_ul: Option<usize>,
    unread_dl: Option<usize>,
    notice: Option<usize>,
    sync_ul: Option<usize>,
    sync_dl: Option<usize>,
    logout: Option<usize>,
    message_body: Option<usize>,
    content: Option<usize>,
    key_value: Option<usize>,
    muc_body: Option<usize>,
    roster_body: Option<usize>,
    statistics_body: Option<usize>,
    conference_body: Option<usize>,
}

fn known() -> &'static Known {
    static K: std::sync::OnceLock<Known> = std::sync::OnceLock::new();
    K.get_or_init(|| {
        let m = |n: &str| message(&format!("easemob.pb.{n}"));
        Known {
            msync: m("MSync"),
            meta: m("Meta"),
            provision: m("Provision"),
            unread_ul: m("CommUnreadUL"),
            unread_dl: m("CommUnreadDL"),
            notice: m("CommNotice"),
            sync_ul: m("CommSyncUL"),
            sync_dl: m("CommSyncDL"),
            logout: m("Logout"),
            message_body: m("MessageBody"),
            content: m("MessageBody.Content"),
            key_value: m("KeyValue"),
            muc_body: m("MUCBody"),
            roster_body: m("RosterBody"),
            statistics_body: m("StatisticsBody"),
            conference_body: m("ConferenceBody"),
        }
    })
}

/// The message `MSync.payload` carries for `command` in direction `dir`.
pub fn payload_type(command: i32, dir: Dir) -> Option<&'static MessageDesc> {
    let k = known();
    let i = match (command, dir) {
        (0, Dir::C2S) => k.sync_ul,
        (0, Dir::S2C) => k.sync_dl,
        (1, Dir::C2S) => k.unread_ul,
        (1, Dir::S2C) => k.unread_dl,
        (2, _) => k.notice,
        (3, _) => k.provision,
        (4, _) => k.logout,
        _ => None,
    }?;
    MESSAGES.get(i)
}

/// The message `Meta.payload` carries for namespace `ns`.
pub fn meta_payload_type(ns: i32) -> Option<&'static MessageDesc> {
    let k = known();
    let i = match ns {
        0 => k.statistics_body,
        1 => k.message_body,
        2 => k.muc_body,
        3 => k.roster_body,
        4 => k.conference_body,
        _ => None,
    }?;
    MESSAGES.get(i)
}

/// The `easemob.pb.MessageBody.Content` descriptor.
pub fn content_desc() -> Option<&'static MessageDesc> {
    known().content.and_then(|i| MESSAGES.get(i))
}

/// The `easemob.pb.MSync` descriptor.
pub fn msync_desc() -> Option<&'static MessageDesc> {
    known().msync.and_then(|i| MESSAGES.get(i))
}

/// One field of the message being walked, in the walker's scratch stack (offsets into the
/// buffer being walked, so the stack holds no borrows).
#[derive(Clone, Copy, Debug)]
struct Rec {
    offset: usize,
    number: u32,
    wire: WireType,
    /// Varint / fixed value.
    v: u64,
    /// Range of a length-delimited or group body.
    start: usize,
    end: usize,
    rank: u64,
    /// The schema knows the field and the wire type fits its kind.
    known: bool,
}

/// Whether a field of `d`'s kind can arrive with wire type `wire` (packed for repeated scalars).
fn compatible(d: &FieldDesc, wire: WireType) -> bool {
    match wire {
        WireType::Varint => is_varint_kind(d.kind),
        WireType::Fixed32 => is_fixed32_kind(d.kind),
        WireType::Fixed64 => is_fixed64_kind(d.kind),
        WireType::Len => {
            matches!(d.kind, Kind::String | Kind::Bytes | Kind::Message(_))
                || (d.repeated
                    && (is_varint_kind(d.kind)
                        || is_fixed32_kind(d.kind)
                        || is_fixed64_kind(d.kind)))
        }
        WireType::Group => false,
    }
}

/// Walks a whole MSync frame (the envelope and everything it carries).
pub fn walk_frame<V: Visitor>(frame: &[u8], dir: Dir, opts: &RenderOpts, v: &mut V) {
    if let Some(d) = msync_desc() {
        walk_message(frame, d, dir, opts, v);
    }
}

/// Walks `buf` as a message of type `desc` (top level: depth 0). Fields before a wire error are
/// visited, then [`Visitor::error`] is called.
pub fn walk_message<V: Visitor>(
    buf: &[u8],
    desc: &'static MessageDesc,
    dir: Dir,
    opts: &RenderOpts,
    v: &mut V,
) {
    let mut w = Walker {
        v,
        dir,
        max_depth: opts.max_depth.min(HARD_MAX_DEPTH),
        max_inflated: opts.max_inflated,
        left: MAX_SHOWN_FIELDS,
        cut: false,
        // Reuse this thread's stack from earlier walks: no allocation per frame once warm. A
        // walk started from inside a visitor finds the cell empty and uses a fresh Vec.
        scratch: SCRATCH.with(|c| c.take()),
    };
    w.scratch.clear();
    let res = w.parse(buf, desc, 0);
    w.emit(buf, Loc { frame: Some(0), local: 0 }, desc, 0, 0);
    let mut scratch = std::mem::take(&mut w.scratch);
    if let Err(e) = res {
        w.v.error(&e);
    } else if w.cut {
        w.v.error(&WireError::TooManyFields { limit: MAX_SHOWN_FIELDS });
    }
    scratch.clear();
    // Don't keep a huge stack alive after a pathological frame.
    if scratch.capacity() <= 1 << 16 {
        SCRATCH.with(|c| c.set(scratch));
    }
}

thread_local! {
    static SCRATCH: std::cell::Cell<Vec<Rec>> = const { std::cell::Cell::new(Vec::new()) };
}

struct Walker<'v, V> {
    v: &'v mut V,
    dir: Dir,
    max_depth: usize,
    max_inflated: usize,
    /// Fields that may still be shown (see [`MAX_SHOWN_FIELDS`]).
    left: usize,
    /// A field was left unshown for want of `left`: nothing after it is shown.
    cut: bool,
    scratch: Vec<Rec>,
}

pub(crate) fn is_varint_kind(k: Kind) -> bool {
    matches!(
        k,
        Kind::Int64
            | Kind::Uint64
            | Kind::Int32
            | Kind::Bool
            | Kind::Uint32
            | Kind::Sint32
            | Kind::Sint64
            | Kind::Enum(_)
    )
}

pub(crate) fn is_fixed32_kind(k: Kind) -> bool {
    matches!(k, Kind::Fixed32 | Kind::Sfixed32 | Kind::Float)
}

pub(crate) fn is_fixed64_kind(k: Kind) -> bool {
    matches!(k, Kind::Fixed64 | Kind::Sfixed64 | Kind::Double)
}

/// Interprets a varint/fixed wire value as the field's scalar kind.
fn scalar(kind: Kind, raw: u64) -> Value<'static> {
    // Truncating casts are protobuf's own semantics for 32-bit types.
    match kind {
        Kind::Int64 | Kind::Sfixed64 => Value::Int(raw as i64),
        Kind::Int32 | Kind::Sfixed32 => Value::Int(i64::from(raw as i32)),
        Kind::Uint64 | Kind::Fixed64 => Value::Uint(raw),
        Kind::Uint32 | Kind::Fixed32 => Value::Uint(u64::from(raw as u32)),
        Kind::Bool => Value::Bool(raw != 0),
        Kind::Sint32 => {
            let n = raw as u32;
            Value::Int(i64::from((n >> 1) as i32 ^ -((n & 1) as i32)))
        }
        Kind::Sint64 => Value::Int((raw >> 1) as i64 ^ -((raw & 1) as i64)),
        Kind::Float => Value::F32(f32::from_bits(raw as u32)),
        Kind::Double => Value::F64(f64::from_bits(raw)),
        Kind::Enum(e) => match ENUMS.get(e) {
            Some(d) => Value::Enum { number: raw as i32, name: d.name_of(raw as i32), desc: d },
            None => Value::Int(i64::from(raw as i32)),
        },
        // Not scalar kinds; callers never pass them.
        Kind::String | Kind::Bytes | Kind::Message(_) => Value::Raw(RawValue::Varint(raw)),
    }
}

/// Where a buffer being walked starts: in the frame (`None` inside inflated bytes) and within
/// the buffer the walk started from (the frame, or the inflated payload).
#[derive(Clone, Copy, Debug)]
struct Loc {
    frame: Option<usize>,
    local: usize,
}

/// What a `bytes` field of the message being emitted resolves to.
enum Resolve {
    Plain,
    Unknown,
    Encrypted,
    Message { desc: &'static MessageDesc, zlib: bool },
}

impl<V: Visitor> Walker<'_, V> {
    /// Reads every field of `buf` onto the scratch stack (above `start`) and sorts them unless
    /// the visitor wants wire order. On error the fields read so far stay on the stack.
    fn parse(
        &mut self,
        buf: &[u8],
        desc: &'static MessageDesc,
        start: usize,
    ) -> Result<(), WireError> {
        let mut r = Reader::new(buf);
        let mut res = Ok(());
        // The stack's length is at hand for the push anyway: the limit is checked against it.
        let before = self.scratch.len();
        let full = before.saturating_add(self.left);
        loop {
            if self.scratch.len() >= full {
                self.cut |= !r.is_empty();
                break;
            }
            match r.field() {
                Ok(Some((offset, number, raw))) => {
                    let (wire, v, range) = match raw {
                        RawValue::Varint(x) => (WireType::Varint, x, (0, 0)),
                        RawValue::Fixed64(x) => (WireType::Fixed64, x, (0, 0)),
                        RawValue::Fixed32(x) => (WireType::Fixed32, u64::from(x), (0, 0)),
                        RawValue::Len(b) => (WireType::Len, 0, sub_range(buf, b)),
                        RawValue::Group(b) => (WireType::Group, 0, sub_range(buf, b)),
                    };
                    // A known field with a wire type its kind cannot have is treated as unknown.
                    let known = desc.field(number).is_some_and(|d| compatible(d, wire));
                    let rank = self.v.rank(desc, number, known);
                    self.scratch.push(Rec {
                        offset,
                        number,
                        wire,
                        v,
                        start: range.0,
                        end: range.1,
                        rank,
                        known,
                    });
                }
                Ok(None) => break,
                Err(e) => {
                    res = Err(e);
                    break;
                }
            }
        }
        self.left -= self.scratch.len() - before;
        if !self.v.wire_order() {
            if let Some(s) = self.scratch.get_mut(start..) {
                // Usually already in order (encoders write fields by number): check first, as
                // that costs no allocation. Stable: repeated elements keep their wire order.
                if !s.is_sorted_by_key(|r| r.rank) {
                    s.sort_by_key(|r| r.rank);
                }
            }
        }
        res
    }

    /// Emits the fields of the message at `scratch[start..]`.
    fn emit(
        &mut self,
        buf: &[u8],
        base: Loc,
        desc: &'static MessageDesc,
        start: usize,
        depth: usize,
    ) {
        let end = self.scratch.len();
        let k = known();
        let is = |i: Option<usize>| {
            i.and_then(|i| MESSAGES.get(i)).is_some_and(|m| std::ptr::eq(m, desc))
        };
        // Context the payload fields need, which may come after them on the wire.
        let mut command = 0i32;
        let mut zlib = false;
        let mut encrypted = false;
        let mut ns = 0i32;
        let is_msync = is(k.msync);
        let is_meta = is(k.meta);
        // A KeyValue whose key names a credential: its value (fields 3..=6) is a secret.
        let mut secret_kv = false;
        if is(k.key_value) {
            for r in self.scratch.get(start..end).unwrap_or(&[]) {
                if r.number == 1 && r.wire == WireType::Len {
                    let key = buf.get(r.start..r.end).unwrap_or(&[]);
                    secret_kv =
                        std::str::from_utf8(key).is_ok_and(crate::msync::render::is_secret_key);
                }
            }
        }
        if is_msync || is_meta {
            for r in self.scratch.get(start..end).unwrap_or(&[]) {
                match (is_msync, r.number, r.wire) {
                    (true, 8, WireType::Varint) => command = r.v as i32,
                    (true, 4, WireType::Varint) => zlib = r.v == 1,
                    (true, 11, WireType::Varint) => encrypted |= r.v != 0,
                    (true, 11, WireType::Len) => {
                        let mut pr = Reader::new(buf.get(r.start..r.end).unwrap_or(&[]));
                        while let Ok(x) = pr.varint() {
                            encrypted |= x != 0;
                        }
                    }
                    (false, 5, WireType::Varint) => ns = r.v as i32,
                    _ => {}
                }
            }
        }
        let grouped = !self.v.wire_order();
        let cut_before = self.cut;
        for i in start..end {
            let Some(&r) = self.scratch.get(i) else { break };
            let prev = if i > start { self.scratch.get(i - 1).copied() } else { None };
            let next = if i + 1 < end { self.scratch.get(i + 1).copied() } else { None };
            let fd = if r.known { desc.field(r.number) } else { None };
            // Runs group occurrences of one field that are all known (or all unknown).
            let same =
                |o: Option<Rec>| o.is_some_and(|o| o.number == r.number && o.known == r.known);
            let info = FieldInfo {
                offset: base.frame.map(|b| b.saturating_add(r.offset)),
                local_offset: base.local.saturating_add(r.offset),
                number: r.number,
                wire: r.wire,
                desc: fd,
                parent: desc,
                superseded: grouped && fd.is_some_and(|d| !d.repeated) && same(next),
                secret_value: secret_kv && (3..=6).contains(&r.number),
            };
            let run = grouped && fd.is_some_and(|d| d.repeated);
            if run && !same(prev) {
                self.v.repeated_start(&info);
            }
            let body = buf.get(r.start..r.end).unwrap_or(&[]);
            match fd {
                None => {
                    let raw = match r.wire {
                        WireType::Varint => RawValue::Varint(r.v),
                        WireType::Fixed64 => RawValue::Fixed64(r.v),
                        WireType::Fixed32 => RawValue::Fixed32(r.v as u32),
                        WireType::Len => RawValue::Len(body),
                        WireType::Group => RawValue::Group(body),
                    };
                    self.v.value(&info, Value::Raw(raw));
                }
                Some(d) => {
                    let body_base = Loc {
                        frame: base.frame.map(|b| b.saturating_add(r.start)),
                        local: base.local.saturating_add(r.start),
                    };
                    let res = if is_msync && r.number == 9 {
                        if encrypted {
                            Resolve::Encrypted
                        } else {
                            match payload_type(command, self.dir) {
                                Some(t) => Resolve::Message { desc: t, zlib },
                                None => Resolve::Unknown,
                            }
                        }
                    } else if is_meta && r.number == 6 {
                        match meta_payload_type(ns) {
                            Some(t) => Resolve::Message { desc: t, zlib: false },
                            None => Resolve::Unknown,
                        }
                    } else {
                        Resolve::Plain
                    };
                    self.field(&info, d, &r, body, body_base, res, depth);
                }
            }
            if run && !same(next) {
                self.v.repeated_end(&info);
            }
            if self.cut && !cut_before {
                // The limit was reached inside this field: what follows it is not shown. (Fields
                // read before the limit was reached at this level are all shown.) Close the run
                // this field is in.
                if run && same(next) {
                    self.v.repeated_end(&info);
                }
                break;
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn field(
        &mut self,
        info: &FieldInfo,
        d: &'static FieldDesc,
        r: &Rec,
        body: &[u8],
        body_base: Loc,
        res: Resolve,
        depth: usize,
    ) {
        match (r.wire, d.kind) {
            (WireType::Len, Kind::Message(m)) => match MESSAGES.get(m) {
                Some(md) => self.nested(info, md, body, body, body_base, false, false, depth),
                None => self.v.value(info, Value::Bytes(body)),
            },
            (WireType::Len, Kind::String) => match std::str::from_utf8(body) {
                Ok(s) => self.v.value(info, Value::Str(s)),
                Err(_) => self.v.value(info, Value::NotUtf8(body)),
            },
            (WireType::Len, Kind::Bytes) => match res {
                Resolve::Plain | Resolve::Unknown => self.v.value(info, Value::Bytes(body)),
                Resolve::Encrypted => self.v.opaque(info, Opaque::Encrypted, body),
                Resolve::Message { desc, zlib: false } => {
                    self.nested(info, desc, body, body, body_base, false, true, depth)
                }
                Resolve::Message { desc, zlib: true } => match inflate(body, self.max_inflated) {
                    Ok(plain) => {
                        let at = Loc { frame: None, local: 0 };
                        self.nested(info, desc, &plain, body, at, true, true, depth)
                    }
                    Err(e) => self.v.opaque(info, Opaque::Inflate { ty: desc, err: &e }, body),
                },
            },
            (WireType::Len, k) => {
                // Packed repeated scalars.
                let mut pr = Reader::new(body);
                while !pr.is_empty() {
                    if self.left == 0 {
                        self.cut = true;
                        break;
                    }
                    self.left -= 1;
                    let x = if is_varint_kind(k) {
                        pr.varint()
                    } else if is_fixed32_kind(k) {
                        pr.fixed32().map(u64::from)
                    } else {
                        pr.fixed64()
                    };
                    match x {
                        Ok(x) => self.v.value(info, scalar(k, x)),
                        Err(e) => {
                            self.v.opaque(info, Opaque::BadPacked(&e), body);
                            break;
                        }
                    }
                }
            }
            (_, k) => self.v.value(info, scalar(k, r.v)),
        }
    }

    /// Walks an embedded message, or reports it as opaque when too deep or malformed.
    #[allow(clippy::too_many_arguments)]
    fn nested(
        &mut self,
        info: &FieldInfo,
        desc: &'static MessageDesc,
        bytes: &[u8],
        wire: &[u8],
        base: Loc,
        zlib: bool,
        payload: bool,
        depth: usize,
    ) {
        if depth + 1 > self.max_depth {
            self.v.opaque(info, Opaque::TooDeep(desc), bytes);
            return;
        }
        if self.left == 0 && !bytes.is_empty() {
            // Shown with none of its fields, it would look empty.
            self.cut = true;
            return;
        }
        let start = self.scratch.len();
        if let Err(e) = self.parse(bytes, desc, start) {
            self.scratch.truncate(start);
            // Report the fault where the user can find it: in the frame when the bytes are
            // the frame's, else within the inflated payload.
            let e = e.shifted(base.frame.unwrap_or(base.local));
            let inflated = base.frame.is_none();
            self.v.opaque(info, Opaque::Invalid { ty: desc, err: &e, inflated }, bytes);
            return;
        }
        let n = Nested { desc, bytes, wire_len: wire.len(), zlib, payload };
        if self.v.message_start(info, &n) {
            self.emit(bytes, base, desc, start, depth + 1);
            self.v.message_end(info, &n);
        }
        self.scratch.truncate(start);
    }
}

/// The range `sub` occupies in `buf` (it is a subslice the reader returned), so the scratch
/// stack can keep offsets instead of borrows.
fn sub_range(buf: &[u8], sub: &[u8]) -> (usize, usize) {
    let s = (sub.as_ptr() as usize).saturating_sub(buf.as_ptr() as usize);
    (s, s.saturating_add(sub.len()))
}

/// Parses a `JID` message whose only fields are its four strings (as the SDK prints them);
/// `None` if anything else is there, so the caller falls back to the generic notation.
pub fn parse_jid(bytes: &[u8]) -> Option<crate::msync::jid::JidParts<'_>> {
    let mut j = crate::msync::jid::JidParts::default();
    let mut r = Reader::new(bytes);
    while let Some((_, n, v)) = r.field().ok()? {
        let RawValue::Len(b) = v else { return None };
        let s = std::str::from_utf8(b).ok()?;
        match n {
            1 => j.app_key = Some(s),
            2 => j.name = Some(s),
            3 => j.domain = Some(s),
            4 => j.client_resource = Some(s),
            _ => return None,
        }
    }
    Some(j)
}

/// Frames shared by the renderers' tests: the seed's log lines, rebuilt with the prost types.
#[cfg(test)]
pub(crate) mod samples {
    use crate::msync::pb;
    use crate::msync::render::RenderOpts;
    use crate::net::Dir;
    use prost::Message;

    pub const RES: &str = "android_3c4df774-1a75-3b61-a912-ffc4d280adae";
    pub const UUID: &str = "3c4df774-1a75-3b61-a912-ffc4d280adae";

    pub fn jid(app: Option<&str>, name: &str, domain: Option<&str>, res: Option<&str>) -> pb::Jid {
        pb::Jid {
            app_key: app.map(Into::into),
            name: Some(name.into()),
            domain: domain.map(Into::into),
            client_resource: res.map(Into::into),
        }
    }

    pub fn envelope(command: i32, payload: Vec<u8>) -> pb::MSync {
        pb::MSync {
            version: Some(0),
            command: Some(command),
            payload: Some(payload),
            ..Default::default()
        }
    }

    pub fn provision_send() -> Vec<u8> {
        let p = pb::Provision {
            os_type: Some(1),
            version: Some("3.3.4".into()),
            compress_type: vec![0],
            device_uuid: Some(UUID.into()),
            is_manual_login: Some(true),
            password: Some("hunter2".into()),
            device_name: Some("LGENexus 5".into()),
            resource: Some(RES.into()),
            ..Default::default()
        };
        let mut m = envelope(3, p.encode_to_vec());
        m.guid = Some(jid(Some("easemob-demo#chatdemoui"), "zl2", Some("easemob.com"), Some(RES)));
        m.auth = Some("YWMtsecret-token".into());
        m.compress_algorimth = Some(0);
        m.encode_to_vec()
    }

    pub fn provision_recv() -> Vec<u8> {
        let p = pb::Provision {
            compress_type: vec![0],
            status: Some(pb::Status { error_code: Some(0), ..Default::default() }),
            resource: Some(RES.into()),
            ..Default::default()
        };
        envelope(3, p.encode_to_vec()).encode_to_vec()
    }

    pub fn text_body(from: &str, to: &str, text: &str, ext: bool) -> pb::MessageBody {
        pb::MessageBody {
            r#type: Some(1),
            from: Some(jid(None, from, None, None)),
            to: Some(jid(None, to, None, None)),
            contents: vec![pb::message_body::Content {
                r#type: Some(0),
                text: Some(text.into()),
                ..Default::default()
            }],
            ext: if ext {
                vec![pb::KeyValue {
                    key: Some("weichat".into()),
                    r#type: Some(8),
                    value: Some(pb::key_value::Value::StringValue(
                        "{\"originType\":\"webim\"}".into(),
                    )),
                }]
            } else {
                vec![]
            },
            ..Default::default()
        }
    }

    pub fn sync_send_msg() -> Vec<u8> {
        let meta = pb::Meta {
            id: Some(15089920589600003),
            from: Some(jid(None, "z12", None, Some(RES))),
            to: Some(jid(None, "z13", None, None)),
            ns: Some(1),
            payload: Some(text_body("z12", "z13", "456", false).encode_to_vec()),
            ..Default::default()
        };
        let ul = pb::CommSyncUl { meta: Some(meta), ..Default::default() };
        let mut m = envelope(0, ul.encode_to_vec());
        m.compress_algorimth = Some(0);
        m.encode_to_vec()
    }

    pub fn sync_ack() -> Vec<u8> {
        let dl = pb::CommSyncDl {
            status: Some(pb::Status { error_code: Some(0), ..Default::default() }),
            meta_id: Some(15089920589600003),
            server_id: Some(392677097702688788),
            timestamp: Some(1508992061436),
            ..Default::default()
        };
        envelope(0, dl.encode_to_vec()).encode_to_vec()
    }

    pub fn notice() -> Vec<u8> {
        let n = pb::CommNotice { queue: Some(jid(None, "z13", None, Some("webim_device_uuid"))) };
        envelope(2, n.encode_to_vec()).encode_to_vec()
    }

    pub fn sync_pull() -> Vec<u8> {
        let ul = pb::CommSyncUl {
            queue: Some(jid(None, "z13", None, Some("webim_device_uuid"))),
            ..Default::default()
        };
        let mut m = envelope(0, ul.encode_to_vec());
        m.compress_algorimth = Some(0);
        m.encode_to_vec()
    }

    pub fn pull_dl() -> pb::CommSyncDl {
        let meta = pb::Meta {
            id: Some(392677053607969272),
            from: Some(jid(
                Some("easemob-demo#chatdemoui"),
                "z13",
                Some("easemob.com"),
                Some("webim_device_uuid"),
            )),
            to: Some(jid(Some("easemob-demo#chatdemoui"), "z12", Some("easemob.com"), None)),
            timestamp: Some(1508992051149),
            ns: Some(1),
            payload: Some(text_body("z13", "z12", "123", true).encode_to_vec()),
            ..Default::default()
        };
        pb::CommSyncDl {
            status: Some(pb::Status { error_code: Some(0), ..Default::default() }),
            metas: vec![meta],
            next_key: Some(392677053607969272),
            queue: Some(jid(None, "z13", None, None)),
            timestamp: Some(1508992051178),
            ..Default::default()
        }
    }

    pub fn sync_pull_answer() -> Vec<u8> {
        use prost::Message;
        envelope(0, pull_dl().encode_to_vec()).encode_to_vec()
    }

    /// Every seed frame with its direction.
    pub fn all() -> Vec<(Vec<u8>, Dir)> {
        vec![
            (provision_send(), Dir::C2S),
            (provision_recv(), Dir::S2C),
            (sync_send_msg(), Dir::C2S),
            (sync_ack(), Dir::S2C),
            (notice(), Dir::S2C),
            (sync_pull(), Dir::C2S),
            (sync_pull_answer(), Dir::S2C),
            (unread_dl(), Dir::S2C),
            (envelope(1, vec![]).encode_to_vec(), Dir::C2S),
            (logout(), Dir::C2S),
            (logout(), Dir::S2C),
            (zlib_pull_answer(), Dir::S2C),
            (encrypted(), Dir::C2S),
            (odd(), Dir::S2C),
        ]
    }

    pub fn unread_dl() -> Vec<u8> {
        let dl = pb::CommUnreadDl {
            status: Some(pb::Status { error_code: Some(0), ..Default::default() }),
            unread: vec![pb::MetaQueue { queue: Some(jid(None, "z13", None, None)), n: Some(2) }],
            timestamp: Some(1508992051178),
        };
        envelope(1, dl.encode_to_vec()).encode_to_vec()
    }

    pub fn logout() -> Vec<u8> {
        let l = pb::Logout {
            session_id: Some("s1".into()),
            reason: Some("bye".into()),
            status: Some(pb::Status {
                error_code: Some(2),
                reason: Some("no".into()),
                ..Default::default()
            }),
        };
        envelope(4, l.encode_to_vec()).encode_to_vec()
    }

    pub fn zlib_pull_answer() -> Vec<u8> {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = z.write_all(&pull_dl().encode_to_vec());
        let mut m = envelope(0, z.finish().unwrap_or_default());
        m.compress_algorimth = Some(1);
        m.encode_to_vec()
    }

    pub fn encrypted() -> Vec<u8> {
        let mut m = envelope(0, vec![1, 2, 3, 4]);
        m.encrypt_type = vec![0, 3];
        m.tag = Some(vec![9; 4]);
        m.encode_to_vec()
    }

    /// An envelope with an unknown command value, an unknown enum value in the payload's
    /// status and unknown fields of every wire type.
    pub fn odd() -> Vec<u8> {
        let dl = pb::CommSyncDl {
            status: Some(pb::Status { error_code: Some(99), ..Default::default() }),
            ..Default::default()
        };
        let mut b = envelope(0, dl.encode_to_vec()).encode_to_vec();
        // field 42 varint 7; field 43 fixed32; field 44 fixed64; field 45 bytes "hi"; field 46 group.
        b.extend_from_slice(&[0xd0, 0x02, 7]);
        b.extend_from_slice(&[0xdd, 0x02, 1, 0, 0, 0]);
        b.extend_from_slice(&[0xe1, 0x02, 2, 0, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&[0xea, 0x02, 2, b'h', b'i']);
        b.extend_from_slice(&[0xf3, 0x02, 0x08, 0x01, 0xf4, 0x02]);
        b
    }

    /// Secrets where the walker cannot show them as fields, each found in the bytes of its
    /// frame (the zlib one in its inflated payload): a login whose Provision does not parse;
    /// a zlib login; a pull answer whose chat body does not parse; a chat body whose
    /// attachment key arrives as fixed64 (an unknown field to the walker).
    pub const HIDDEN: [&str; 4] = ["hunter2", "zlib-hunter2", "att-key", "SECRETK8"];

    pub fn hidden_secrets() -> Vec<(Vec<u8>, Dir)> {
        use std::io::Write;
        let p = pb::Provision { password: Some(HIDDEN[0].into()), ..Default::default() };
        let mut bad = p.encode_to_vec();
        bad.extend_from_slice(&[0x0a, 0x05, 0x01]); // field 1, LEN 5, one byte left
        let login = envelope(3, bad).encode_to_vec();
        let p = pb::Provision { password: Some(HIDDEN[1].into()), ..Default::default() };
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = z.write_all(&p.encode_to_vec());
        let mut zlogin = envelope(3, z.finish().unwrap_or_default());
        zlogin.compress_algorimth = Some(1);
        let content = pb::message_body::Content {
            r#type: Some(1),
            secret_key: Some(HIDDEN[2].into()),
            ..Default::default()
        };
        let body = pb::MessageBody { contents: vec![content], ..Default::default() };
        let mut bad_body = body.encode_to_vec();
        bad_body.extend_from_slice(&[0x0a, 0x05, 0x01]);
        let meta = |payload: Vec<u8>| pb::Meta {
            id: Some(1),
            ns: Some(1),
            payload: Some(payload),
            ..Default::default()
        };
        let dl = pb::CommSyncDl { metas: vec![meta(bad_body)], ..Default::default() };
        let pull = envelope(0, dl.encode_to_vec()).encode_to_vec();
        // Content { type: IMAGE, secretKey (8) as fixed64 }
        let mut wrong = vec![0x08, 0x01, 0x41];
        wrong.extend_from_slice(HIDDEN[3].as_bytes());
        let body = [&[0x22, wrong.len() as u8][..], &wrong].concat();
        let ul = pb::CommSyncUl { meta: Some(meta(body)), ..Default::default() };
        let send = envelope(0, ul.encode_to_vec()).encode_to_vec();
        vec![
            (login, Dir::C2S),
            (zlogin.encode_to_vec(), Dir::C2S),
            (pull, Dir::S2C),
            (send, Dir::C2S),
        ]
    }

    /// Checks a renderer against [`hidden_secrets`]: none shows at any `--max-depth` up to 4
    /// or when the zlib payload is over the inflate cap; with `show_secrets` the ones in bytes
    /// that did not parse (and the zlib one) show.
    pub fn check_hidden(render: impl Fn(&[u8], Dir, &RenderOpts) -> String) {
        let variants = (0..=4)
            .map(|max_depth| RenderOpts { max_depth, ..Default::default() })
            .chain([RenderOpts::default(), RenderOpts { max_inflated: 4, ..Default::default() }]);
        for opts in variants {
            for (f, d) in hidden_secrets() {
                let out = render(&f, d, &opts);
                for secret in HIDDEN {
                    assert!(!shows(&out, secret), "{secret} with {opts:?} in {out}");
                }
            }
        }
        let opts = RenderOpts { show_secrets: true, ..Default::default() };
        let all: String = hidden_secrets().iter().map(|(f, d)| render(f, *d, &opts)).collect();
        for secret in HIDDEN.iter().take(3) {
            assert!(shows(&all, secret), "{secret} not in {all}");
        }
    }

    /// Whether `out` shows `secret` as text, hex or base64 (at any of the three alignments;
    /// the characters that depend on neighbouring bytes are left out).
    pub fn shows(out: &str, secret: &str) -> bool {
        const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
        let b64 = |b: &[u8]| -> String {
            let mut s = String::new();
            for c in b.chunks(3) {
                let n =
                    c.iter().enumerate().fold(0u32, |n, (i, &x)| n | u32::from(x) << (16 - 8 * i));
                for k in 0..=c.len() {
                    s.push(char::from(B64[(n >> (18 - 6 * k) & 63) as usize]));
                }
            }
            s
        };
        let aligned = (0..3).any(|a| {
            let mut b = vec![0u8; a];
            b.extend_from_slice(secret.as_bytes());
            let enc = b64(&b);
            // Skip the characters that hold the padding bytes, and the last (partial) one.
            let inner = enc.get(a * 4 / 3 + 1..enc.len().saturating_sub(1)).unwrap_or("");
            inner.len() >= 4 && out.contains(inner)
        });
        out.contains(secret) || out.contains(&hex) || aligned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts what a walk shows: values, messages, and the error it ends with.
    #[derive(Default)]
    struct Count {
        values: usize,
        messages: usize,
        open_runs: i64,
        error: Option<WireError>,
    }

    impl Visitor for Count {
        fn value(&mut self, _: &FieldInfo, _: Value<'_>) {
            self.values += 1;
        }
        fn message_start(&mut self, _: &FieldInfo, _: &Nested<'_>) -> bool {
            self.messages += 1;
            true
        }
        fn message_end(&mut self, _: &FieldInfo, _: &Nested<'_>) {}
        fn repeated_start(&mut self, _: &FieldInfo) {
            self.open_runs += 1;
        }
        fn repeated_end(&mut self, _: &FieldInfo) {
            self.open_runs -= 1;
        }
        fn opaque(&mut self, _: &FieldInfo, _: Opaque<'_>, _: &[u8]) {
            self.values += 1;
        }
        fn error(&mut self, err: &WireError) {
            assert!(self.error.is_none(), "a second error: {err}");
            self.error = Some(err.clone());
        }
    }

    fn count(frame: &[u8]) -> Count {
        let mut c = Count::default();
        walk_frame(frame, Dir::S2C, &RenderOpts::default(), &mut c);
        c
    }

    #[test]
    fn a_walk_shows_a_bounded_number_of_fields() {
        let cut = Some(WireError::TooManyFields { limit: MAX_SHOWN_FIELDS });
        // The envelope (version, SYNC, an empty payload), then unknown fields: at the top level,
        // inside a meta, as elements of a packed field, and as empty metas.
        let head = [0x08, 0x00, 0x40, 0x00];
        let many = MAX_SHOWN_FIELDS + 10;
        let unknown = [0xd0, 0x02, 0x00].repeat(many);
        let mut top = head.to_vec();
        top.extend_from_slice(&[0x4a, 0x00]);
        top.extend_from_slice(&unknown);
        let c = count(&top);
        assert_eq!(c.values + c.messages, MAX_SHOWN_FIELDS);
        assert_eq!(c.error, cut);

        let nest = |inner: &[u8]| {
            let mut b = vec![];
            let mut n = inner.len() as u64;
            while n >= 0x80 {
                b.push((n as u8) | 0x80);
                n >>= 7;
            }
            b.push(n as u8);
            b.extend_from_slice(inner);
            b
        };
        let mut meta = vec![0x22];
        meta.extend(nest(&unknown));
        let mut f = head.to_vec();
        f.push(0x4a);
        f.extend(nest(&meta));
        let c = count(&f);
        assert!(c.values > MAX_SHOWN_FIELDS - 10 && c.values <= MAX_SHOWN_FIELDS, "{}", c.values);
        assert_eq!(c.error, cut);
        assert_eq!(c.open_runs, 0);

        // Packed MSync.encrypt_type (field 11).
        let mut f = head.to_vec();
        f.push(0x5a);
        f.extend(nest(&vec![0; many]));
        let c = count(&f);
        assert!(c.values > MAX_SHOWN_FIELDS - 10 && c.values <= MAX_SHOWN_FIELDS, "{}", c.values);
        assert_eq!(c.error, cut);
        assert_eq!(c.open_runs, 0);

        // Empty metas: the run of them is closed where the walk stops.
        let mut f = head.to_vec();
        f.push(0x4a);
        f.extend(nest(&[0x22, 0x00].repeat(many)));
        let c = count(&f);
        assert!(c.messages > MAX_SHOWN_FIELDS - 10 && c.messages <= MAX_SHOWN_FIELDS);
        assert_eq!(c.error, cut);
        assert_eq!(c.open_runs, 0);

        // Under the limit, everything, and no error.
        let mut f = head.to_vec();
        f.extend_from_slice(&[0xd0, 0x02, 0x00].repeat(1000));
        let c = count(&f);
        assert_eq!((c.values, c.error), (1002, None));
    }

    #[test]
    fn which_messages_hold_secrets() {
        let holds = |n: &str| {
            message(&format!("easemob.pb.{n}")).and_then(|i| MESSAGES.get(i)).map(holds_secrets)
        };
        for n in ["MSync", "Provision", "CommSyncUL", "CommSyncDL", "Meta", "MessageBody"] {
            assert_eq!(holds(n), Some(true), "{n}");
        }
        assert_eq!(holds("MessageBody.Content"), Some(true));
        assert_eq!(holds("KeyValue"), Some(true));
        for n in ["JID", "Status", "CommNotice", "CommUnreadDL", "MUCBody", "Logout"] {
            assert_eq!(holds(n), Some(false), "{n}");
        }
    }

    #[test]
    fn quick_varint_shortcuts_agree_with_the_loop() {
        let mut cases: Vec<Vec<u8>> = vec![vec![], vec![0x80], vec![0xff, 0x80], vec![0x80; 11]];
        for a in 0..=255u8 {
            cases.push(vec![a]);
            for c in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                cases.push(vec![a, c]);
                cases.push(vec![a, c, 0x05]);
            }
        }
        for b in &cases {
            assert_eq!(varint(b), varint_loop(b), "{b:02x?}");
        }
    }

    #[test]
    fn varints() {
        assert_eq!(Reader::new(&[0xac, 0x02]).varint(), Ok(300));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Reader::new(&max).varint(), Ok(u64::MAX));
        assert_eq!(Reader::new(&[0x80; 11]).varint(), Err(WireError::OverlongVarint(0)));
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(Reader::new(&over).varint(), Err(WireError::OverlongVarint(0)));
        let mut long = vec![0x80; 10];
        long.push(0);
        assert_eq!(Reader::new(&long).varint(), Err(WireError::OverlongVarint(0)));
        assert_eq!(Reader::new(&[0x80, 0x80]).varint(), Err(WireError::TruncatedVarint(0)));
        assert_eq!(Reader::new(&[]).varint(), Err(WireError::TruncatedVarint(0)));
    }

    #[test]
    fn fields_and_errors() {
        let mut r = Reader::new(&[0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i', 0x1d, 1, 0, 0, 0]);
        assert_eq!(r.field(), Ok(Some((0, 1, RawValue::Varint(150)))));
        assert_eq!(r.field(), Ok(Some((3, 2, RawValue::Len(b"hi")))));
        assert_eq!(r.field(), Ok(Some((7, 3, RawValue::Fixed32(1)))));
        assert_eq!(r.field(), Ok(None));
        // Claimed lengths beyond the buffer, including ones near u64::MAX.
        let huge = [0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(matches!(Reader::new(&huge).field(), Err(WireError::Truncated { offset: 11, .. })));
        assert!(matches!(Reader::new(&[0x0a, 0x05, 1]).field(), Err(WireError::Truncated { .. })));
        assert_eq!(
            Reader::new(&[0x08, 0x01, 0x0e]).field().and_then(|_| Reader::new(&[0x0e]).field()),
            Err(WireError::InvalidWireType { wire: 6, offset: 0 })
        );
        let mut r = Reader::new(&[0x08, 0x01, 0x0f]);
        assert!(r.field().is_ok());
        assert_eq!(r.field(), Err(WireError::InvalidWireType { wire: 7, offset: 2 }));
        assert_eq!(Reader::new(&[0x00]).field(), Err(WireError::FieldZero(0)));
        assert_eq!(Reader::new(&[0x0c]).field(), Err(WireError::UnexpectedEndGroup(0)));
        assert!(matches!(Reader::new(&[0x09, 1, 2]).field(), Err(WireError::Truncated { .. })));
    }

    #[test]
    fn groups() {
        // field 1 group { field 2 varint 5, field 3 group { } } then field 4.
        let b = [0x0b, 0x10, 0x05, 0x1b, 0x1c, 0x0c, 0x20, 0x01];
        let mut r = Reader::new(&b);
        assert_eq!(r.field(), Ok(Some((0, 1, RawValue::Group(&b[1..5])))));
        assert_eq!(r.field(), Ok(Some((6, 4, RawValue::Varint(1)))));
        assert_eq!(Reader::new(&[0x0b, 0x10, 0x05]).field(), Err(WireError::UnterminatedGroup(0)));
        assert!(matches!(
            Reader::new(&[0x0b, 0x14]).field(),
            Err(WireError::MismatchedEndGroup { want: 1, got: 2, .. })
        ));
        let deep = vec![0x0b; 500_000];
        let t = std::time::Instant::now();
        assert!(matches!(Reader::new(&deep).field(), Err(WireError::GroupTooDeep { .. })));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn lookups_and_resolution() {
        let i = message("easemob.pb.CommSyncDL");
        let d = i.and_then(|i| MESSAGES.get(i));
        assert!(d.is_some_and(|d| d.field(4).is_some_and(|f| f.name == "metas" && f.repeated)));
        assert!(d.is_some_and(|d| d.field(42).is_none()));
        assert!(message("nope").is_none());
        for m in MESSAGES {
            assert!(m.fields.windows(2).all(|w| matches!(w, [a, b] if a.number < b.number)));
        }
        let name = |c, d| payload_type(c, d).map(|m| m.full_name);
        assert_eq!(name(3, Dir::C2S), Some("easemob.pb.Provision"));
        assert_eq!(name(1, Dir::C2S), Some("easemob.pb.CommUnreadUL"));
        assert_eq!(name(1, Dir::S2C), Some("easemob.pb.CommUnreadDL"));
        assert_eq!(name(2, Dir::S2C), Some("easemob.pb.CommNotice"));
        assert_eq!(name(0, Dir::C2S), Some("easemob.pb.CommSyncUL"));
        assert_eq!(name(0, Dir::S2C), Some("easemob.pb.CommSyncDL"));
        assert_eq!(name(4, Dir::S2C), Some("easemob.pb.Logout"));
        assert_eq!(name(5, Dir::S2C), None);
        assert_eq!(meta_payload_type(1).map(|m| m.full_name), Some("easemob.pb.MessageBody"));
        assert_eq!(meta_payload_type(6).map(|m| m.full_name), None);
        let e = enum_index("easemob.pb.MSync.Command").and_then(|i| ENUMS.get(i));
        assert_eq!(e.and_then(|e| e.name_of(3)), Some("PROVISION"));
        assert_eq!(e.and_then(|e| e.name_of(99)), None);
    }

    #[test]
    fn scalars() {
        assert_eq!(scalar(Kind::Sint32, 3), Value::Int(-2));
        assert_eq!(scalar(Kind::Sint64, 4), Value::Int(2));
        assert_eq!(scalar(Kind::Int32, u64::MAX), Value::Int(-1));
        assert_eq!(scalar(Kind::Uint32, u64::MAX), Value::Uint(u64::from(u32::MAX)));
        assert_eq!(scalar(Kind::Bool, 2), Value::Bool(true));
        assert_eq!(scalar(Kind::Double, 1.5f64.to_bits()), Value::F64(1.5));
    }

    #[test]
    fn inflate_bounds() {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = z.write_all(&[7u8; 1000]);
        let c = z.finish().unwrap_or_default();
        assert_eq!(inflate(&c, 1000).map(|v| v.len()), Ok(1000));
        assert_eq!(inflate(&c, 999), Err(InflateError::TooLarge(999)));
        assert!(matches!(inflate(&[1, 2, 3], 10), Err(InflateError::Corrupt(_))));
    }

    #[test]
    fn jids() {
        let j = parse_jid(&[0x12, 3, b'z', b'1', b'3', 0x22, 1, b'r']);
        assert_eq!(j.map(|j| j.to_string()), Some("z13/r".to_string()));
        assert!(parse_jid(&[0x28, 1]).is_none());
        assert!(parse_jid(&[0x12, 1, 0xff]).is_none());
    }
}
