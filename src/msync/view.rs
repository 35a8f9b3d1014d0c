//! Borrowed, allocation-free decoding for analyzers: [`decode`] accepts exactly the frames that
//! [`super::decode::decode`] accepts, and returns views of the fields the report needs, borrowed
//! from the frame (or from a caller's scratch buffer for zlib payloads).
//!
//! Why a second decoder: prost's owned types copy every string and allocate a vector per
//! repeated field, which costs more than the rest of the pipeline together on a busy capture.
//! The report reads a handful of fields per message, so it validates each message by the
//! schema and reads what it needs in place, in the same walk.
//!
//! Invariants:
//! - acceptance is prost's, rule for rule (varints of at most ten bytes whose tenth is 0 or 1,
//!   keys within 32 bits, wire types 0–5, no field 0, wire types that fit known fields, packed
//!   or unpacked repeated scalars, UTF-8 strings, embedded messages that end exactly at their
//!   length, unknown fields and groups skipped under prost's recursion limit of 100). A
//!   differential test and fuzz target hold the two decoders to the same answer;
//! - singular fields that occur more than once read as prost reads them: the last scalar wins,
//!   embedded messages merge field by field;
//! - a `string` field that is not UTF-8 fails the frame, as it fails prost's strict decode;
//!   a decode under [`lossy`] and [`Meta::body_lossy`] accept it, as [`super::decode`] does (see
//!   [`super::lossy`]), for the error path: such a field reads as U+FFFD;
//! - nothing panics and nothing allocates, except inflating a zlib payload into the scratch
//!   buffer (bounded by [`DecodeLimits::max_inflated`]) and keeping a SYNC answer's metas in
//!   the caller's pool (bounded by `MAX_HELD_METAS`); both are reused from frame to frame.

use super::decode::{Command, DecodeLimits};
use super::schema::{self, Kind, MessageDesc, MESSAGES};
use crate::net::Dir;

/// prost's `RECURSION_LIMIT`: the decode context's budget at the top level.
const RECURSION_LIMIT: u32 = 100;

/// Why a frame does not decode (the reasons [`super::decode::DecodeError`] gives, without the
/// text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewError {
    Envelope,
    Payload,
    Inflate,
    InflateTooLarge,
}

/// A JID, borrowed: its parts as bytes that [`check`] validated as UTF-8. They are turned
/// into text ([`Jid::parts`]) only when a name is printed; hashing and comparing them needs none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Jid<'a> {
    pub app_key: Option<&'a [u8]>,
    pub name: Option<&'a [u8]>,
    pub domain: Option<&'a [u8]>,
    pub client_resource: Option<&'a [u8]>,
}

impl<'a> Jid<'a> {
    /// Validates `b` as a `JID` whose fields sit at recursion `budget` (what its parent's
    /// generated validator does) and merges it in, in one walk instead of a check and a read.
    /// On false, `self` holds a partial merge that the caller discards with the message.
    fn merge_checked(&mut self, b: &'a [u8], budget: u32) -> bool {
        let mut pos = 0;
        while pos < b.len() {
            // The usual shape: a one-byte key of a part and a length under 128.
            if let Some(&[k, n]) = b.get(pos..pos + 2) {
                if n < 0x80 && matches!(k, 10 | 18 | 26 | 34) {
                    let end = pos + 2 + usize::from(n);
                    let Some(s) = b.get(pos + 2..end).filter(|s| utf8(s)) else { return false };
                    self.set_part(k, s);
                    pos = end;
                    continue;
                }
            }
            let Some(k) = varint(b, &mut pos) else { return false };
            let start = pos;
            if !field_easemob_pb_jid(k, b, &mut pos, budget) {
                return false;
            }
            if let Ok(k @ (10 | 18 | 26 | 34)) = u8::try_from(k) {
                self.set_part(k, len(b.get(start..pos).unwrap_or_default()));
            }
        }
        true
    }
    #[inline(always)]
    fn set_part(&mut self, key: u8, s: &'a [u8]) {
        match key {
            10 => self.app_key = Some(s),
            18 => self.name = Some(s),
            26 => self.domain = Some(s),
            _ => self.client_resource = Some(s),
        }
    }
    pub fn parts(&self) -> super::jid::JidParts<'a> {
        super::jid::JidParts {
            app_key: self.app_key.map(text),
            name: self.name.map(text),
            domain: self.domain.map(text),
            client_resource: self.client_resource.map(text),
        }
    }
}

/// `Status` (and the `Status` messages of MUC and roster bodies: code 1, text 2), merged over
/// every occurrence of its field as prost merges them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status<'a> {
    pub error_code: Option<i32>,
    /// `reason` (`description` in MUC and roster bodies).
    pub reason: Option<&'a str>,
    /// The message holding the status and its field number, for [`Status::redirects`]: a
    /// repeated field of a merged message is the concatenation over all occurrences.
    parent: &'a [u8],
    field: u32,
}

impl<'a> Status<'a> {
    fn merge(&mut self, b: &'a [u8]) {
        for (n, v) in Fields::new(b) {
            match (n, v) {
                (1, Val::Int(x)) => self.error_code = Some(x as i32),
                (2, Val::Len(s)) => self.reason = Some(text(s)),
                _ => {}
            }
        }
    }
    /// `redirect_info` entries: (host, port), in order.
    pub fn redirects(&self) -> impl Iterator<Item = (Option<&'a str>, Option<u32>)> + 'a {
        repeated(self.parent, self.field).flat_map(|b| repeated(b, 3)).map(|r| {
            let (mut host, mut port) = (None, None);
            for (n, v) in Fields::new(r) {
                match (n, v) {
                    (1, Val::Len(s)) => host = Some(text(s)),
                    (2, Val::Int(x)) => port = Some(x as u32),
                    _ => {}
                }
            }
            (host, port)
        })
    }
}

/// `Meta`: what the report reads of one message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta<'a> {
    pub id: Option<u64>,
    pub from: Option<Jid<'a>>,
    pub to: Option<Jid<'a>>,
    pub ns: Option<i32>,
    pub payload: Option<&'a [u8]>,
}

impl<'a> Meta<'a> {
    /// A meta whose bytes passed validation with their message, read again.
    fn parse(b: &'a [u8]) -> Self {
        let mut m = Meta::default();
        // Checked at the top level's budget, at least what they passed with: cannot fail.
        let valid = m.merge_checked(b, RECURSION_LIMIT);
        debug_assert!(valid, "a validated meta read again");
        m
    }
    /// Validates `b` as a `Meta` whose fields sit at recursion `budget` and merges what
    /// [`Meta`] holds into `self`, in one walk (its JIDs too). On false, `self` holds a partial
    /// merge that the caller discards with the message.
    fn merge_checked(&mut self, b: &'a [u8], budget: u32) -> bool {
        let mut pos = 0;
        while pos < b.len() {
            let Some(k) = varint(b, &mut pos) else { return false };
            let ok = match k {
                0x12 => jid_checked(&mut self.from, b, &mut pos, budget),
                0x1a => jid_checked(&mut self.to, b, &mut pos, budget),
                // The id is read as it is validated: one decode of a long varint, not two.
                0x08 => varint(b, &mut pos).map(|v| self.id = Some(v)).is_some(),
                _ => {
                    let start = pos;
                    let ok = field_easemob_pb_meta(k, b, &mut pos, budget);
                    let v = b.get(start..pos).unwrap_or_default();
                    match k {
                        0x28 if ok => self.ns = Some(int(v) as i32),
                        0x32 if ok => self.payload = Some(len(v)),
                        _ => {}
                    }
                    ok
                }
            };
            if !ok {
                return false;
            }
        }
        true
    }
    /// [`Meta::body`] of a body that it found invalid, accepting `string` fields that are not
    /// UTF-8 (they read as U+FFFD), as [`super::decode::decode_meta`] does; still
    /// [`MetaBody::Invalid`] when the body is broken otherwise.
    #[cold]
    #[inline(never)]
    pub fn body_lossy(&self) -> MetaBody<'a> {
        lossy(|| self.body())
    }

    /// The payload decoded by namespace, as [`super::decode::decode_meta`] does (but a string
    /// that is not UTF-8 makes it invalid: see [`Meta::body_lossy`]): validated and read in
    /// one walk.
    pub fn body(&self) -> MetaBody<'a> {
        let Some(bytes) = self.payload else { return MetaBody::Empty };
        let (ok, body) = match self.ns.unwrap_or(0) {
            0 => {
                let (mut operation, mut reason) = (None, None);
                let ok = walk(bytes, field_easemob_pb_statisticsbody, |k, v| match k {
                    0x08 => operation = Some(int(v) as i32),
                    0x52 => reason = Some(text(len(v))),
                    _ => {}
                });
                (ok, MetaBody::Statistic { operation, reason })
            }
            1 => {
                let mut r#type = None;
                let mut contents = Contents::default();
                let ok = walk(
                    bytes,
                    |k, buf, pos, budget| match k {
                        // Each content is validated and its type read in one walk.
                        0x22 => nested(buf, pos, budget, |c, n| contents.checked(c, n)),
                        _ => field_easemob_pb_messagebody(k, buf, pos, budget),
                    },
                    |k, v| {
                        if k == 0x08 {
                            r#type = Some(int(v) as i32);
                        }
                    },
                );
                (ok, MetaBody::Chat { r#type, bytes, contents })
            }
            2 => {
                let (ok, st) = status_body(bytes, field_easemob_pb_mucbody, 8);
                (ok, MetaBody::Muc(st))
            }
            3 => {
                let (ok, st) = status_body(bytes, field_easemob_pb_rosterbody, 2);
                (ok, MetaBody::Roster(st))
            }
            4 => {
                let (ok, st) = status_body(bytes, field_easemob_pb_conferencebody, 12);
                (ok, MetaBody::Conference(st))
            }
            _ => return MetaBody::Raw,
        };
        if ok {
            body
        } else {
            MetaBody::Invalid
        }
    }
}

/// A decoded `Meta.payload`, typed by `Meta.ns`, reduced to what the report reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaBody<'a> {
    Statistic {
        operation: Option<i32>,
        reason: Option<&'a str>,
    },
    /// `MessageBody`: its type, and its contents' types for [`MetaBody::content_types`].
    Chat {
        r#type: Option<i32>,
        bytes: &'a [u8],
        contents: Contents,
    },
    Muc(Option<Status<'a>>),
    Roster(Option<Status<'a>>),
    Conference(Option<Status<'a>>),
    Raw,
    Empty,
    Invalid,
}

impl<'a> MetaBody<'a> {
    /// The type of each of a chat body's contents, in order: `Content.type`, TEXT (its
    /// default) where a content with other fields leaves it out, and `None` for an empty
    /// content (the placeholder that the SDKs' acks carry), which is of no type.
    pub fn content_types(&self) -> impl Iterator<Item = Option<i32>> + 'a {
        // Held types, or (past the limit) none held and the body read again.
        let (held, again): (Contents, &'a [u8]) = match *self {
            MetaBody::Chat { contents, .. } if contents.all_held() => (contents, &[]),
            MetaBody::Chat { bytes, .. } => (Contents::default(), bytes),
            _ => (Contents::default(), &[]),
        };
        (0..usize::from(held.n))
            .map(move |i| held.types.get(i).copied().flatten())
            .chain(repeated(again, 4).map(content_type))
    }
}

/// The type of each content of a chat body, as read while validating it: the first
/// [`HELD_CONTENTS`] (a real message has one); with more, [`MetaBody::content_types`] reads
/// them all again from the body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Contents {
    types: [Option<i32>; HELD_CONTENTS],
    /// Contents seen, up to `HELD_CONTENTS + 1`.
    n: u8,
}

const HELD_CONTENTS: usize = 4;

impl Contents {
    /// Validates `c` as a `MessageBody.Content` whose fields sit at recursion `budget` and
    /// keeps its type.
    fn checked(&mut self, c: &[u8], budget: u32) -> bool {
        let mut t = None;
        let ok = walk_at(c, budget, field_easemob_pb_messagebody_content, |k, v| {
            if k == 0x08 {
                t = Some(int(v) as i32);
            }
        });
        if let Some(slot) = self.types.get_mut(usize::from(self.n)) {
            *slot = typed(c, t);
        }
        self.n = self.n.saturating_add(1).min(HELD_CONTENTS as u8 + 1);
        ok
    }
    fn all_held(&self) -> bool {
        usize::from(self.n) <= HELD_CONTENTS
    }
}

/// The type of validated content bytes, as [`MetaBody::content_types`] gives it.
fn content_type(c: &[u8]) -> Option<i32> {
    let mut t = None;
    for (n, v) in Fields::new(c) {
        if let (1, Val::Int(x)) = (n, v) {
            t = Some(x as i32);
        }
    }
    typed(c, t)
}

/// A content's type from its bytes `c` and its `Content.type` field `t`: None only when the
/// content has no field the schema knows (so prost reads it as the default content).
fn typed(c: &[u8], t: Option<i32>) -> Option<i32> {
    match t {
        Some(t) => Some(t),
        // Rare (acks), so the schema is looked at only here.
        None => {
            let known = |n| schema::content_desc().is_none_or(|d| d.field(n).is_some());
            Fields::new(c).any(|(n, _)| known(n)).then_some(0)
        }
    }
}

/// A body of which the report reads only the `Status` in field `number`, validated with the
/// one-field validator `field` and read in the same walk.
// Out of line, one copy per body type: the chat path that most metas take stays compact
// enough for the instruction cache (cachegrind: 6–8% fewer I1 misses, no more instructions).
#[inline(never)]
fn status_body<'a>(
    bytes: &'a [u8],
    field: impl FnMut(u64, &'a [u8], &mut usize, u32) -> bool,
    number: u32,
) -> (bool, Option<Status<'a>>) {
    let key = u64::from(number) << 3 | 2;
    let mut st = None;
    let ok = walk(bytes, field, |k, v| {
        if k == key {
            status_merge(&mut st, bytes, number, len(v));
        }
    });
    (ok, st)
}

/// An embedded message's value at `pos` (its key read, its parent's fields at recursion
/// `budget`), handed to `check` with the budget of its own fields, as a generated field
/// validator hands it to the message's validator.
#[inline(always)]
fn nested<'a>(
    buf: &'a [u8],
    pos: &mut usize,
    budget: u32,
    check: impl FnOnce(&'a [u8], u32) -> bool,
) -> bool {
    budget != 0 && delimited(buf, pos).is_some_and(|b| check(b, budget - 1))
}

/// A `JID` field's value at `pos`, validated and merged into `jid` in one walk.
#[inline]
fn jid_checked<'a>(jid: &mut Option<Jid<'a>>, buf: &'a [u8], pos: &mut usize, budget: u32) -> bool {
    nested(buf, pos, budget, |b, n| jid.get_or_insert_default().merge_checked(b, n))
}

/// Merges occurrence `b` of `Status` field `number` of `parent` into `st`, for readers that
/// walk the parent's fields anyway.
fn status_merge<'a>(st: &mut Option<Status<'a>>, parent: &'a [u8], number: u32, b: &'a [u8]) {
    st.get_or_insert(Status { parent, field: number, ..Status::default() }).merge(b);
}

/// The merged JID in field `number` of `bytes`, validated bytes, if any occurrence.
fn jid_field(bytes: &[u8], number: u32) -> Option<Jid<'_>> {
    let mut j: Option<Jid<'_>> = None;
    for b in repeated(bytes, number) {
        // Checked at the top level's budget, at least what they passed with: cannot fail.
        let valid = j.get_or_insert_default().merge_checked(b, RECURSION_LIMIT);
        debug_assert!(valid, "a validated JID read again");
    }
    j
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Provision<'a> {
    pub os_type: Option<i32>,
    pub version: Option<&'a str>,
    pub status: Option<Status<'a>>,
    pub device_uuid: Option<&'a str>,
    pub device_name: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub reason: Option<&'a str>,
}

/// `CommUnreadDL`: status, and the `unread` queues for [`UnreadDl::queues`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnreadDl<'a> {
    pub status: Option<Status<'a>>,
    bytes: &'a [u8],
}

impl<'a> UnreadDl<'a> {
    /// Each `MetaQueue`: its queue and `n`.
    pub fn queues(&self) -> impl Iterator<Item = (Option<Jid<'a>>, Option<u32>)> + 'a {
        repeated(self.bytes, 2).map(|mq| {
            let mut n = None;
            for (f, v) in Fields::new(mq) {
                if let (2, Val::Int(x)) = (f, v) {
                    n = Some(x as u32);
                }
            }
            (jid_field(mq, 1), n)
        })
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncUl<'a> {
    pub meta: Option<Meta<'a>>,
    pub queue: Option<Jid<'a>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncDl<'a> {
    pub status: Option<Status<'a>>,
    pub meta_id: Option<u64>,
    pub next_key: Option<u64>,
    pub queue: Option<Jid<'a>>,
    pub is_last: Option<bool>,
    /// Number of `metas`.
    pub meta_count: u64,
    bytes: &'a [u8],
    /// The first `metas`, as read while validating them.
    held: &'a [Meta<'a>],
    /// Where in `bytes` the `metas` past `held` start being read again.
    rest: usize,
}

impl<'a> SyncDl<'a> {
    /// Hands each of `metas` to `f`, in order: the held ones where they lie (a meta is too
    /// big to copy out for each look), then any past them read again.
    pub fn for_each_meta(&self, mut f: impl FnMut(&Meta<'a>)) {
        self.held.iter().for_each(&mut f);
        let rest = self.bytes.get(self.rest..).unwrap_or_default();
        for b in repeated(rest, 4) {
            f(&Meta::parse(b));
        }
    }
}

/// `metas` of one SYNC answer kept as read during validation; any further are read again
/// from the bytes, so a crafted answer of millions of empty metas costs no more memory.
const MAX_HELD_METAS: usize = 1024;

/// `pool` emptied and retyped for another frame's borrows, keeping its allocation (a
/// collect from an empty vector of a same-sized type reuses the buffer in place).
pub fn recycle<'b>(mut pool: Vec<Meta<'_>>) -> Vec<Meta<'b>> {
    pool.clear();
    pool.into_iter().map(|_| Meta::default()).collect()
}

/// The command message, typed by command and direction (as [`super::decode::Body`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body<'a> {
    Provision(Provision<'a>),
    UnreadUl,
    UnreadDl(UnreadDl<'a>),
    Notice { queue: Option<Jid<'a>> },
    SyncUl(SyncUl<'a>),
    SyncDl(SyncDl<'a>),
    Logout { status: Option<Status<'a>> },
    Encrypted,
    Raw,
}

/// One message, as the report reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msg<'a> {
    pub command: Command,
    /// `MSync.guid`.
    pub guid: Option<Jid<'a>>,
    pub body: Body<'a>,
}

/// `MSync.compress_algorimth` value meaning zlib.
const COMPRESS_ZLIB: u32 = 1;

/// Decodes `frame` as [`super::decode::decode`] would, reading only what [`Msg`] holds. A zlib
/// payload is inflated into `scratch` (cleared first), and the metas of a SYNC answer are kept
/// in `metas` (cleared first, at most `MAX_HELD_METAS`); the result borrows both.
pub fn decode<'a: 'm, 'm>(
    frame: &'a [u8],
    dir: Dir,
    limits: &DecodeLimits,
    scratch: &'a mut Vec<u8>,
    metas: &'m mut Vec<Meta<'a>>,
) -> Result<Msg<'m>, ViewError> {
    decode_capped(frame, dir, || limits.max_inflated, scratch, metas)
}

/// As [`decode`], a zlib payload inflated to at most what `inflate_cap` says, asked only when
/// there is one (a connection's allowance, see [`super::decode::INFLATE_FREE`]).
pub fn decode_capped<'a: 'm, 'm>(
    frame: &'a [u8],
    dir: Dir,
    inflate_cap: impl FnOnce() -> usize,
    scratch: &'a mut Vec<u8>,
    metas: &'m mut Vec<Meta<'a>>,
) -> Result<Msg<'m>, ViewError> {
    let (mut command, mut compress, mut encrypted) = (0i32, 0u32, false);
    let mut payload: &[u8] = &[];
    let mut guid: Option<Jid<'a>> = None;
    let ok = walk(
        frame,
        |k, buf, pos, budget| match k {
            0x12 => jid_checked(&mut guid, buf, pos, budget),
            _ => field_easemob_pb_msync(k, buf, pos, budget),
        },
        |k, v| match k {
            0x20 => compress = int(v) as u32,
            0x40 => command = int(v) as i32,
            0x4a => payload = len(v),
            0x58 => encrypted |= int(v) as i32 != 0,
            0x5a => encrypted |= packed_varints(len(v)).any(|x| x as i32 != 0),
            _ => {}
        },
    );
    if !ok {
        return Err(ViewError::Envelope);
    }
    let command = Command::from_i32(command);
    let body = if encrypted {
        Body::Encrypted
    } else if compress != 0 && compress != COMPRESS_ZLIB {
        Body::Raw
    } else {
        let bytes: &'a [u8] = if compress == COMPRESS_ZLIB && !payload.is_empty() {
            scratch.clear();
            super::decode::inflate_into(payload, inflate_cap(), scratch).map_err(|e| match e {
                super::decode::DecodeError::InflateTooLarge(_) => ViewError::InflateTooLarge,
                _ => ViewError::Inflate,
            })?;
            scratch.as_slice()
        } else {
            payload
        };
        body(command, dir, bytes, metas)?
    };
    Ok(Msg { command, guid, body })
}

thread_local! {
    /// Set while a lossy decode runs: [`utf8`] then accepts any bytes.
    static LOSSY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether a lossy decode is running (on this thread).
pub fn lossy_active() -> bool {
    LOSSY.with(std::cell::Cell::get)
}

/// `f` run with [`LOSSY`] set: a decode in it accepts `string` fields that are not UTF-8.
pub fn lossy<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            LOSSY.with(|l| l.set(self.0));
        }
    }
    let _reset = Reset(LOSSY.with(|l| l.replace(true)));
    f()
}

/// A string that is not UTF-8 met by a validator: accepted only in a lossy decode.
#[cold]
#[inline(never)]
fn not_utf8_accepted() -> bool {
    LOSSY.with(std::cell::Cell::get)
}

/// The command message of `bytes`, validated as its type and read in one walk.
fn body<'a: 'm, 'm>(
    command: Command,
    dir: Dir,
    bytes: &'a [u8],
    metas: &'m mut Vec<Meta<'a>>,
) -> Result<Body<'m>, ViewError> {
    let (ok, body) = match (command, dir) {
        (Command::Notice, Dir::C2S) | (Command::Unknown(_), _) => return Ok(Body::Raw),
        (Command::Provision, _) => {
            let mut p = Provision::default();
            let ok = walk(bytes, field_easemob_pb_provision, |k, v| match k {
                0x08 => p.os_type = Some(int(v) as i32),
                0x12 => p.version = Some(text(len(v))),
                0x42 => status_merge(&mut p.status, bytes, 8, len(v)),
                0x4a => p.device_uuid = Some(text(len(v))),
                0x62 => p.device_name = Some(text(len(v))),
                0x6a => p.resource = Some(text(len(v))),
                0xa2 => p.session_id = Some(text(len(v))),
                0xaa => p.reason = Some(text(len(v))),
                _ => {}
            });
            (ok, Body::Provision(p))
        }
        (Command::Unread, Dir::C2S) => (check_easemob_pb_communreadul(bytes), Body::UnreadUl),
        (Command::Unread, Dir::S2C) => {
            let mut status = None;
            let ok = walk(bytes, field_easemob_pb_communreaddl, |k, v| {
                if k == 0x0a {
                    status_merge(&mut status, bytes, 1, len(v));
                }
            });
            (ok, Body::UnreadDl(UnreadDl { status, bytes }))
        }
        (Command::Notice, _) => {
            let mut queue: Option<Jid<'_>> = None;
            let ok = walk(
                bytes,
                |k, buf, pos, budget| match k {
                    0x0a => jid_checked(&mut queue, buf, pos, budget),
                    _ => field_easemob_pb_commnotice(k, buf, pos, budget),
                },
                |_, _| {},
            );
            (ok, Body::Notice { queue })
        }
        (Command::Sync, Dir::C2S) => {
            let (mut meta, mut queue) = (None::<Meta<'_>>, None::<Jid<'_>>);
            let ok = walk(
                bytes,
                |k, buf, pos, budget| match k {
                    0x0a => nested(buf, pos, budget, |b, n| {
                        meta.get_or_insert_default().merge_checked(b, n)
                    }),
                    0x1a => jid_checked(&mut queue, buf, pos, budget),
                    _ => field_easemob_pb_commsyncul(k, buf, pos, budget),
                },
                |_, _| {},
            );
            (ok, Body::SyncUl(SyncUl { meta, queue }))
        }
        (Command::Sync, Dir::S2C) => {
            metas.clear();
            let mut s = SyncDl { bytes, ..Default::default() };
            let (mut rest, mut queue) = (bytes.len(), None);
            let ok = walk(
                bytes,
                |k, buf, pos, budget| match k {
                    0x22 => {
                        let mut m = Meta::default();
                        let ok = nested(buf, pos, budget, |b, n| m.merge_checked(b, n));
                        if ok && metas.len() < MAX_HELD_METAS {
                            metas.push(m);
                            rest = *pos;
                        }
                        ok
                    }
                    0x32 => jid_checked(&mut queue, buf, pos, budget),
                    _ => field_easemob_pb_commsyncdl(k, buf, pos, budget),
                },
                |k, v| match k {
                    0x0a => status_merge(&mut s.status, bytes, 1, len(v)),
                    0x10 => s.meta_id = Some(int(v)),
                    0x22 => s.meta_count += 1,
                    0x28 => s.next_key = Some(int(v)),
                    0x38 => s.is_last = Some(int(v) != 0),
                    _ => {}
                },
            );
            let mut s: SyncDl<'m> = s;
            s.rest = rest;
            s.queue = queue;
            s.held = metas;
            (ok, Body::SyncDl(s))
        }
        (Command::Logout, _) => {
            let mut status = None;
            let ok = walk(bytes, field_easemob_pb_logout, |k, v| {
                if k == 0x1a {
                    status_merge(&mut status, bytes, 3, len(v));
                }
            });
            (ok, Body::Logout { status })
        }
    };
    if ok {
        Ok(body)
    } else {
        Err(ViewError::Payload)
    }
}

/// Validates `buf` field by field with a generated one-field validator (`field_*`, at prost's
/// top-level recursion budget) and hands each valid field's key and value bytes to `read`, so
/// a message is checked and read in one walk. `read` may have seen fields of a message that
/// then fails: callers keep what it gathered only when this returns true.
#[inline(always)]
fn walk<'a>(
    buf: &'a [u8],
    field: impl FnMut(u64, &'a [u8], &mut usize, u32) -> bool,
    read: impl FnMut(u64, &'a [u8]),
) -> bool {
    walk_at(buf, RECURSION_LIMIT, field, read)
}

/// [`walk`] of a message whose fields sit at recursion `budget`.
#[inline(always)]
fn walk_at<'a>(
    buf: &'a [u8],
    budget: u32,
    mut field: impl FnMut(u64, &'a [u8], &mut usize, u32) -> bool,
    mut read: impl FnMut(u64, &'a [u8]),
) -> bool {
    let mut pos = 0;
    while pos < buf.len() {
        let Some(k) = varint(buf, &mut pos) else { return false };
        let start = pos;
        if !field(k, buf, &mut pos, budget) {
            return false;
        }
        read(k, buf.get(start..pos).unwrap_or_default());
    }
    true
}

/// The varint a validated value starts with.
#[inline(always)]
fn int(v: &[u8]) -> u64 {
    varint(v, &mut 0).unwrap_or_default()
}

/// The bytes of a validated length-delimited value.
#[inline(always)]
fn len(v: &[u8]) -> &[u8] {
    // Validated, `v` is its length's varint and then exactly that many bytes: what follows
    // the varint's last byte is the value, without decoding the length again.
    v.iter().position(|&b| b < 0x80).and_then(|i| v.get(i + 1..)).unwrap_or_default()
}

/// Text of a string field that [`check`] has validated as UTF-8; U+FFFD for one that a lossy
/// decode accepted (the views borrow, so the valid parts cannot be kept around it).
fn text(b: &[u8]) -> &str {
    simdutf8::basic::from_utf8(b).unwrap_or("\u{fffd}")
}

/// prost's varint: at most ten bytes, the tenth 0 or 1.
#[inline(always)]
fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let &first = buf.get(*pos)?;
    if first < 0x80 {
        *pos += 1;
        return Some(u64::from(first));
    }
    // Lengths of 128 B to 16 KiB (every meta of a SYNC answer has one): two bytes, in line.
    if let Some(&second) = buf.get(*pos + 1) {
        if second < 0x80 {
            *pos += 2;
            return Some(u64::from(first & 0x7f) | u64::from(second) << 7);
        }
    }
    let (v, n) = varint_long(buf.get(*pos..)?)?;
    *pos += n;
    Some(v)
}

#[inline(never)]
fn varint_long(rest: &[u8]) -> Option<(u64, usize)> {
    // Where it ends, and whether it is valid at all, by the one rule [`varint_end`] holds.
    let n = varint_end(rest)?;
    let Some(w) = rest.first_chunk::<8>() else {
        // Fewer than eight bytes at hand: n < 8, gathered a byte at a time.
        let v = rest.iter().take(n).enumerate();
        return Some((v.fold(0, |v, (i, &b)| v | u64::from(b & 0x7f) << (7 * i)), n));
    };
    // Ids and timestamps are 5–10 byte varints: with eight bytes at hand, gather the 7-bit
    // groups without a loop per byte.
    let x = u64::from_le_bytes(*w);
    let x = if n >= 8 { x } else { x & ((1u64 << (8 * n)) - 1) };
    // Pairwise: 7-bit groups into 14 bits per 16, 28 per 32, then 56.
    let x = x & 0x7f7f_7f7f_7f7f_7f7f;
    let x = ((x & 0x7f00_7f00_7f00_7f00) >> 1) | (x & 0x007f_007f_007f_007f);
    let x = ((x & 0x3fff_0000_3fff_0000) >> 2) | (x & 0x0000_3fff_0000_3fff);
    let v = ((x & 0x0fff_ffff_0000_0000) >> 4) | (x & 0x0000_0000_0fff_ffff);
    // Bytes nine and ten: 56 bits are in, the tenth byte (checked) holds only the top bit.
    let v = match *rest.get(8..n).unwrap_or_default() {
        [b8] => v | u64::from(b8) << 56,
        [b8, b9] => v | u64::from(b8 & 0x7f) << 56 | u64::from(b9) << 63,
        _ => v,
    };
    Some((v, n))
}

/// Steps `pos` over a varint that [`varint`] would accept, without gathering its value: the
/// validators only need to know where an unread varint ends.
#[inline(always)]
fn varint_ok(buf: &[u8], pos: &mut usize) -> bool {
    match buf.get(*pos) {
        Some(&b) if b < 0x80 => {
            *pos += 1;
            true
        }
        Some(_) => match varint_len(buf.get(*pos..).unwrap_or_default()) {
            Some(n) => {
                *pos += n;
                true
            }
            None => false,
        },
        None => false,
    }
}

/// Length of the varint `rest` starts with, if prost accepts it: at most ten bytes, the tenth
/// 0 or 1.
#[inline(always)]
fn varint_end(rest: &[u8]) -> Option<usize> {
    if let Some(w) = rest.first_chunk::<8>() {
        let ends = !u64::from_le_bytes(*w) & 0x8080_8080_8080_8080;
        if ends != 0 {
            return Some((ends.trailing_zeros() / 8 + 1) as usize);
        }
        return match *rest.get(8..)? {
            [b8, ..] if b8 < 0x80 => Some(9),
            [_, b9, ..] if b9 <= 1 => Some(10),
            _ => None,
        };
    }
    // Fewer than eight bytes: no room for a ninth, so the first byte below 0x80 ends it.
    rest.iter().position(|&b| b < 0x80).map(|i| i + 1)
}

/// [`varint_end`] out of line, for the validators' many call sites.
#[inline(never)]
fn varint_len(rest: &[u8]) -> Option<usize> {
    varint_end(rest)
}

/// Advances `pos` by `n` bytes if they are there.
#[inline]
fn advance(buf: &[u8], pos: &mut usize, n: u64) -> bool {
    let left = buf.len().saturating_sub(*pos);
    if n > left as u64 {
        return false;
    }
    *pos += n as usize;
    true
}

/// A length-delimited value at `pos`: its bytes.
#[inline]
fn delimited<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let len = varint(buf, pos)?;
    let start = *pos;
    if !advance(buf, pos, len) {
        return None;
    }
    buf.get(start..*pos)
}

/// A key as prost reads it: (field number, wire type).
#[inline]
fn key(buf: &[u8], pos: &mut usize) -> Option<(u32, u8)> {
    let k = varint(buf, pos)?;
    if k > u64::from(u32::MAX) {
        return None;
    }
    let wire = (k & 7) as u8;
    let number = (k >> 3) as u32;
    (wire <= 5 && number != 0).then_some((number, wire))
}

/// The fixed wire type (1 or 5) and width of a fixed-size kind.
fn fixed_kind(k: Kind) -> Option<(u8, u64)> {
    if schema::is_fixed32_kind(k) {
        Some((5, 4))
    } else if schema::is_fixed64_kind(k) {
        Some((1, 8))
    } else {
        None
    }
}

include!(concat!(env!("OUT_DIR"), "/view_check.rs"));

/// Whether prost decodes `buf` as message `desc` whose fields sit at recursion `budget`.
pub fn check(desc: &MessageDesc, buf: &[u8], budget: u32) -> bool {
    // The generated validator of `desc`, found by its place in `MESSAGES` (descriptors that
    // are not in the table take the table-driven path).
    let at = (desc as *const MessageDesc as usize).wrapping_sub(MESSAGES.as_ptr() as usize)
        / std::mem::size_of::<MessageDesc>().max(1);
    match MESSAGES.get(at).filter(|m| std::ptr::eq(*m, desc)) {
        Some(_) => check_generated(at, buf, budget).unwrap_or(false),
        None => check_table(desc, buf, budget),
    }
}

/// [`check`] by the schema table alone: the rule the generated validators fall back on, and
/// what the tests hold them to.
pub fn check_table(desc: &MessageDesc, buf: &[u8], budget: u32) -> bool {
    let mut pos = 0;
    while pos < buf.len() {
        let Some((number, wire)) = key(buf, &mut pos) else { return false };
        if !check_number(desc, number, wire, buf, &mut pos, budget) {
            return false;
        }
    }
    true
}

fn check_number(
    desc: &MessageDesc,
    number: u32,
    wire: u8,
    buf: &[u8],
    pos: &mut usize,
    budget: u32,
) -> bool {
    match desc.field(number) {
        Some(f) => check_field(f.kind, f.repeated, wire, buf, pos, budget),
        None => skip(wire, number, buf, pos, budget),
    }
}

/// A key (already read as the varint `k`) that a generated validator of `MESSAGES[i]` has no
/// arm for, and its value, by the table's rule.
#[cold]
fn check_key(i: usize, k: u64, buf: &[u8], pos: &mut usize, budget: u32) -> bool {
    if k > u64::from(u32::MAX) {
        return false;
    }
    let (wire, number) = ((k & 7) as u8, (k >> 3) as u32);
    if wire > 5 || number == 0 {
        return false;
    }
    MESSAGES.get(i).is_some_and(|d| check_number(d, number, wire, buf, pos, budget))
}

/// Whether a string field's bytes are UTF-8. Names and ids are short and ASCII, which
/// `is_ascii` checks a word at a time; chat text often is not, and std's check of it goes a
/// character at a time, where SIMD takes 16 or 32 bytes a step.
#[inline]
fn utf8(s: &[u8]) -> bool {
    s.is_ascii() || simdutf8::basic::from_utf8(s).is_ok() || not_utf8_accepted()
}

/// A packed run of varints at `pos`, well formed.
#[inline]
fn packed_varints_ok(buf: &[u8], pos: &mut usize) -> bool {
    let Some(packed) = delimited(buf, pos) else { return false };
    let mut p = 0;
    while p < packed.len() {
        if !varint_ok(packed, &mut p) {
            return false;
        }
    }
    true
}

fn check_field(
    kind: Kind,
    repeated: bool,
    wire: u8,
    buf: &[u8],
    pos: &mut usize,
    budget: u32,
) -> bool {
    match kind {
        Kind::Message(i) => {
            if wire != 2 || budget == 0 {
                return false;
            }
            let Some(sub) = delimited(buf, pos) else { return false };
            MESSAGES.get(i).is_some_and(|d| check_table(d, sub, budget - 1))
        }
        Kind::String => wire == 2 && delimited(buf, pos).is_some_and(utf8),
        Kind::Bytes => wire == 2 && delimited(buf, pos).is_some(),
        k if schema::is_varint_kind(k) => match wire {
            0 => varint_ok(buf, pos),
            2 if repeated => packed_varints_ok(buf, pos),
            _ => false,
        },
        k => match (fixed_kind(k), wire) {
            (Some((w, width)), _) if wire == w => advance(buf, pos, width),
            (Some((_, width)), 2) if repeated => {
                delimited(buf, pos).is_some_and(|p| p.len() as u64 % width == 0)
            }
            _ => false,
        },
    }
}

/// prost's `skip_field`: an unknown field, groups included, at recursion `budget`.
fn skip(wire: u8, number: u32, buf: &[u8], pos: &mut usize, budget: u32) -> bool {
    if budget == 0 {
        return false;
    }
    match wire {
        0 => varint_ok(buf, pos),
        1 => advance(buf, pos, 8),
        2 => delimited(buf, pos).is_some(),
        5 => advance(buf, pos, 4),
        3 => loop {
            let Some((n, w)) = key(buf, pos) else { return false };
            if w == 4 {
                return n == number;
            }
            if !skip(w, n, buf, pos, budget - 1) {
                return false;
            }
        },
        _ => false,
    }
}

/// One field's value as the readers below see it.
#[derive(Clone, Copy, Debug)]
enum Val<'a> {
    /// A varint (or a fixed value, which the views do not read).
    Int(u64),
    Len(&'a [u8]),
    Other,
}

/// The fields of bytes that [`check`] accepted, in wire order. Stops at anything malformed
/// (which validated bytes never have), so it is safe on any input.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Fields { buf, pos: 0 }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (u32, Val<'a>);
    // Inlined into each reader's match, so the (number, value) pair never goes through memory.
    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let Some((number, wire)) = key(self.buf, &mut self.pos) else {
            self.pos = self.buf.len();
            return None;
        };
        let v = match wire {
            0 => varint(self.buf, &mut self.pos).map(Val::Int),
            2 => delimited(self.buf, &mut self.pos).map(Val::Len),
            1 => advance(self.buf, &mut self.pos, 8).then_some(Val::Other),
            5 => advance(self.buf, &mut self.pos, 4).then_some(Val::Other),
            // Validated bytes hold groups only as unknown fields; skip them whole.
            3 => skip(3, number, self.buf, &mut self.pos, RECURSION_LIMIT).then_some(Val::Other),
            _ => None,
        };
        match v {
            Some(v) => Some((number, v)),
            None => {
                self.pos = self.buf.len();
                None
            }
        }
    }
}

/// Each occurrence of length-delimited field `number` in `buf`.
fn repeated(buf: &[u8], number: u32) -> impl Iterator<Item = &[u8]> {
    Fields::new(buf).filter_map(move |(n, v)| match v {
        Val::Len(b) if n == number => Some(b),
        _ => None,
    })
}

/// The varints of a packed field.
fn packed_varints(b: &[u8]) -> impl Iterator<Item = u64> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || if pos < b.len() { varint(b, &mut pos) } else { None })
}

#[doc(hidden)]
pub mod differential;
#[cfg(test)]
mod tests;
