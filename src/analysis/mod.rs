//! The analyzer behind `msyncdump report`: it consumes the [`Event`] stream and keeps, per
//! connection, the session (login, end, traffic, heartbeats), request/response matching for
//! latencies, error statuses, message counts and expert-info findings, and, for the whole run,
//! the queues (notices, pulls, drains) and the senders and receivers of messages.
//! [`Analyzer::report`] folds that into a [`Report`].
//!
//! Invariants that keep it fit for multi-GB captures:
//! - It decodes for itself ([`Consumer::defers_decoding`]) with [`crate::msync::view`]: the
//!   same acceptance as the full decoder, no allocation, and only the fields it reads.
//! - Memory grows with sessions, queues and users, never with messages: per connection a fixed
//!   set of counters and histograms plus the requests still pending and the queues being
//!   drained right now; per queue and per user one entry in a run-wide table ([`Tables`]).
//!   A queue's transient state (a NOTICE awaiting its pull, pulls awaiting answers, the open
//!   drain) is dropped as soon as the drain ends, so a session that talks to thousands of
//!   peers over days holds only the few it is draining.
//! - The run-wide tables are keyed by JID, and also by connection when a `--user` or `--conn`
//!   filter may narrow the report to some connections later ([`Tables::split`]). Shards over
//!   disjoint connections merge them entry by entry ([`Analyzer::merge`]), so any number of
//!   shards gives the same report.
//! - JIDs are keyed by a 64-bit hash of their parts, so the common path formats no string; the
//!   string is built once, when a JID is first seen.
//! - Pending-request maps and tables are capped; what does not fit is counted and shown as a
//!   finding instead of growing without bound.
//! - Percentiles come from [`hist::Histogram`] (bounded, ~1 % error).
//!
//! Matching is per connection and exact: a send by its `meta.id`, a pull by its queue, a NOTICE
//! by the client's next pull of that queue; UNREAD, PROVISION and LOGOUT carry no id. Queues
//! match exactly first, else by bare JID (the SDK pulls `z13/webim_device_uuid` and is answered
//! for `z13`). Requests without an id take the answer newest first (see [`take_answered`]): a
//! client asks again only once answered or tired of waiting, so an older request still pending
//! was abandoned, and pairing it with the newer request's answer would report a latency of
//! minutes that no one waited.

pub mod hist;
#[cfg(test)]
mod tests;

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hash::Hasher;
use std::io;

use crate::capture::Timestamp;
use crate::msync::decode::{Command, DecodeLimits};
use crate::msync::pb;
use crate::msync::view::{self, Body, MetaBody};
use crate::net::hash::{FxHashMap, FxHasher};
use crate::net::{CloseReason, ConnMeta, Dir, PktCtx, TcpNote};
use crate::pipeline::{Consumer, Event, FrameProblem, MsgCtx, Totals, Transport, TransportNote};
use crate::report::{
    CountRow, ErrorRow, FindingRow, Heartbeats, LatencyRow, LoginInfo, MessageStats, NotAnalysed,
    Overview, QueueRow, Report, ReportOptions, SessionRow, Severity, Spread, TimeBound, Where,
    WsEnd,
};
use hist::Histogram;

/// Requests awaiting an answer, per connection and kind, before new ones are dropped.
pub const PENDING_CAP: usize = 4096;
/// Largest pending-pull buffer kept for reuse once its queue is forgotten, in entries.
const SPARE_CAP: usize = 16;
/// Sent meta ids remembered per connection for duplicate detection: clients resend a message
/// within seconds, a few dozen sends later at most.
const RECENT_IDS_CAP: usize = 128;
/// Distinct queues and distinct senders / receivers in the run-wide tables. Each costs a
/// string and, for queues, statistics, so a stream naming a new JID in every message must not
/// grow them without bound: JIDs past the cap are counted together under one name.
pub const TABLE_CAP: usize = 1 << 18;
/// Queues being drained at once on one connection (each holds its pending pulls).
pub const LIVE_QUEUE_CAP: usize = 4096;
/// Sessions listed per queue row; the count goes on past it.
const QUEUE_SESSIONS_CAP: usize = 64;
const REASON_CAP: usize = 32;
/// Distinct error codes per session, and in the run's error table. A server answering every
/// request with another status (2^32 of them) must not grow a row per message: codes past the
/// cap are counted together under [`OTHER_CODES`].
pub const ERROR_CODES_CAP: usize = 16;
pub const ERROR_ROWS_CAP: usize = 1024;
/// The error row that counts the codes past the cap.
pub const OTHER_CODES: &str = "(other codes)";
/// Places remembered per finding kind per connection.
const PLACES_CAP: usize = 5;
/// Requests of one kind (and queue) sent within this of the one answered are one burst and may
/// still be answered; older pending ones were given up by the client.
pub const BURST_NS: i64 = 1_000_000_000;
/// App keys / domains remembered per connection.
const ZONE_CAP: usize = 8;

/// The exchange kinds of the Latency section, in display order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exchange {
    Login,
    Unread,
    Send,
    Pull,
    Notice,
    Logout,
}

impl Exchange {
    pub const ALL: [Exchange; 6] = [
        Exchange::Login,
        Exchange::Unread,
        Exchange::Send,
        Exchange::Pull,
        Exchange::Notice,
        Exchange::Logout,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Exchange::Login => "login",
            Exchange::Unread => "unread",
            Exchange::Send => "send",
            Exchange::Pull => "pull",
            Exchange::Notice => "notice",
            Exchange::Logout => "logout",
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

/// Kinds of expert-info findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingKind {
    LostSegment,
    Retransmission,
    OutOfOrder,
    Overlap,
    BufferLimit,
    Snaplen,
    BadSequence,
    Rst,
    Midstream,
    Undecodable,
    /// A meta whose payload does not decode as its namespace's body type.
    UndecodableBody,
    /// A message (or a meta's body) with a `string` field that is not UTF-8: decoded all the
    /// same, the field read as U+FFFD.
    StringNotUtf8,
    Oversize,
    SkippedBytes,
    Unanswered,
    UnknownAck,
    DuplicateMetaId,
    NextKeyBackwards,
    DrainStall,
    LoginFailed,
    NoProvision,
    SlowExchange,
    PendingOverflow,
    TableOverflow,
    ErrorStatus,
    Kicked,
    /// Packets the capture itself dropped (live: kernel or interface drops).
    CaptureDrops,
    /// An LZ4-wrapped message whose CRC did not match its unwrapped bytes.
    Lz4Crc,
    /// LZ4 history missing: wrapped messages of a direction could not be unwrapped.
    Lz4HistoryLost,
    /// A WebSocket protocol violation (bad opcode, masking, oversize frame, inflate failure…).
    WsProblem,
    /// A WebSocket upgrade the server refused.
    WsRejected,
    /// TCP keep-alive probes: idle connections kept open, not a problem.
    KeepAlive,
    /// A receiver advertised a zero window: its application stopped reading.
    ZeroWindow,
    /// Probes of a zero window (the sender waiting for it to open).
    ZeroWindowProbe,
    /// RSTs outside the sequence space of their sender, which closed nothing.
    RstIgnored,
    /// Packets timestamped before the packet ahead of them in the capture (capture-wide).
    TimeBackwards,
    /// Answers (or pulls, or drains' ends) stamped before what they answer: the clock stepped
    /// back in between, and the negative time is kept out of the figures.
    NegativeTime,
}

impl FindingKind {
    pub fn id(self) -> &'static str {
        match self {
            FindingKind::LostSegment => "lost_segment",
            FindingKind::Retransmission => "retransmission",
            FindingKind::OutOfOrder => "out_of_order",
            FindingKind::Overlap => "overlap",
            FindingKind::BufferLimit => "reassembly_buffer_limit",
            FindingKind::Snaplen => "snaplen_cut",
            FindingKind::BadSequence => "bad_sequence",
            FindingKind::Rst => "rst",
            FindingKind::Midstream => "midstream",
            FindingKind::Undecodable => "undecodable_frame",
            FindingKind::UndecodableBody => "undecodable_meta_body",
            FindingKind::StringNotUtf8 => "string_not_utf8",
            FindingKind::Oversize => "oversize_frame",
            FindingKind::SkippedBytes => "skipped_bytes",
            FindingKind::Unanswered => "unanswered_request",
            FindingKind::UnknownAck => "ack_unknown_meta_id",
            FindingKind::DuplicateMetaId => "duplicate_meta_id",
            FindingKind::NextKeyBackwards => "next_key_backwards",
            FindingKind::DrainStall => "drain_stall",
            FindingKind::LoginFailed => "login_failed",
            FindingKind::NoProvision => "no_provision",
            FindingKind::SlowExchange => "slow_exchange",
            FindingKind::PendingOverflow => "pending_overflow",
            FindingKind::TableOverflow => "table_overflow",
            FindingKind::ErrorStatus => "error_status",
            FindingKind::Kicked => "kicked",
            FindingKind::CaptureDrops => "capture_drops",
            FindingKind::Lz4Crc => "lz4_crc_mismatch",
            FindingKind::Lz4HistoryLost => "lz4_history_lost",
            FindingKind::WsProblem => "websocket_problem",
            FindingKind::WsRejected => "websocket_rejected",
            FindingKind::KeepAlive => "keep_alive",
            FindingKind::ZeroWindow => "zero_window",
            FindingKind::ZeroWindowProbe => "zero_window_probe",
            FindingKind::RstIgnored => "rst_ignored",
            FindingKind::TimeBackwards => "time_backwards",
            FindingKind::NegativeTime => "negative_time",
        }
    }
    pub fn severity(self) -> Severity {
        use FindingKind::*;
        match self {
            LostSegment | BufferLimit | Undecodable | Oversize | NextKeyBackwards | LoginFailed
            | Kicked | CaptureDrops | Lz4Crc | WsRejected => Severity::Error,
            Lz4HistoryLost | WsProblem => Severity::Warning,
            Retransmission | OutOfOrder | Overlap | Snaplen | BadSequence | Rst | SkippedBytes
            | UndecodableBody | StringNotUtf8 | Unanswered | UnknownAck | DuplicateMetaId
            | DrainStall | SlowExchange | PendingOverflow | TableOverflow | ErrorStatus
            | ZeroWindow | RstIgnored | TimeBackwards | NegativeTime => Severity::Warning,
            // Expected of a capture started after the login; the user may still be inferred.
            Midstream | NoProvision => Severity::Note,
            // A stack probing an idle connection: a fact about it, nothing went wrong.
            KeepAlive => Severity::Note,
            // The consequence of a zero window, which is the warning.
            ZeroWindowProbe => Severity::Note,
        }
    }
    fn summary(self, value: u64) -> String {
        match self {
            FindingKind::LostSegment => format!("lost segments: {value} bytes never captured"),
            FindingKind::Retransmission => "TCP retransmissions".into(),
            FindingKind::OutOfOrder => "out-of-order TCP segments".into(),
            FindingKind::Overlap => "overlapping TCP segments".into(),
            FindingKind::BufferLimit => "out-of-order buffer full: data given up".into(),
            FindingKind::Snaplen => "packets cut by the snaplen".into(),
            FindingKind::BadSequence => "impossible TCP sequence numbers".into(),
            FindingKind::Rst => "connections reset (RST)".into(),
            FindingKind::Midstream => "connections picked up mid-stream (no SYN)".into(),
            FindingKind::Undecodable => "undecodable MSync frames".into(),
            FindingKind::UndecodableBody => {
                "meta payloads that do not decode as their namespace's body".into()
            }
            FindingKind::StringNotUtf8 => {
                "messages or meta bodies with a string that is not UTF-8 (decoded with U+FFFD)"
                    .into()
            }
            FindingKind::Oversize => "oversize frame lengths (stream resynchronised)".into(),
            FindingKind::SkippedBytes => {
                format!("{value} bytes skipped (resynchronising, or messages dropped or cut short)")
            }
            FindingKind::Unanswered => "requests never answered".into(),
            FindingKind::UnknownAck => "acks for meta ids never sent".into(),
            FindingKind::DuplicateMetaId => "meta ids sent more than once".into(),
            FindingKind::NextKeyBackwards => "next_key moved backwards".into(),
            FindingKind::DrainStall => {
                "queue drains that stalled (no is_last / no progress)".into()
            }
            FindingKind::LoginFailed => "failed logins".into(),
            FindingKind::NoProvision => "MSync sessions without PROVISION".into(),
            FindingKind::SlowExchange => {
                format!("slow exchanges (worst {})", crate::report::fmt_dur(value as i64))
            }
            FindingKind::PendingOverflow => "pending requests over the per-session cap".into(),
            FindingKind::TableOverflow => {
                format!(
                    "more than {TABLE_CAP} distinct queues or peers, or {ERROR_CODES_CAP} error \
                     codes in a session: the rest counted together"
                )
            }
            FindingKind::ErrorStatus => "error statuses returned by the server".into(),
            FindingKind::Kicked => "users logged in elsewhere / kicked".into(),
            FindingKind::Lz4Crc => "LZ4-wrapped messages whose CRC did not match".into(),
            FindingKind::Lz4HistoryLost => {
                "LZ4 history missing (picked up after login, a gap, or an earlier wrapped message that was damaged): wrapped messages not unwrapped".into()
            }
            FindingKind::WsProblem => "WebSocket protocol problems".into(),
            FindingKind::WsRejected => "WebSocket upgrades refused by the server".into(),
            FindingKind::KeepAlive => "TCP keep-alive probes".into(),
            FindingKind::ZeroWindow => {
                "TCP zero windows: a receiver's buffer was full (its application not reading)".into()
            }
            FindingKind::ZeroWindowProbe => "TCP zero-window probes".into(),
            FindingKind::RstIgnored => {
                "RSTs outside their sender's sequence space (spoofed or stale): ignored".into()
            }
            FindingKind::CaptureDrops => {
                "packets dropped by the capture (kernel or interface): streams have gaps it could not see"
                    .into()
            }
            FindingKind::TimeBackwards => format!(
                "packets timestamped before the packet ahead of them (clock stepped back, or \
                 files or interfaces merged out of order): the largest step back {}",
                crate::report::fmt_dur(value.min(i64::MAX as u64) as i64)
            ),
            FindingKind::NegativeTime => "times that came out negative (an answer stamped before \
                 its request): left out of the time figures"
                .into(),
        }
    }
}

#[derive(Clone, Debug, Default)]
struct FindingStat {
    count: u64,
    /// Bytes for gaps and skips, the worst latency for slow exchanges.
    value: u64,
    places: Vec<Where>,
}

/// App keys and domains of the JIDs a connection named (a few), so the text report can print
/// them once and JIDs by their short name.
#[derive(Clone, Debug, Default)]
struct Zones {
    app_keys: Vec<String>,
    domains: Vec<String>,
}

impl Zones {
    fn remember(&mut self, j: &view::Jid<'_>) {
        let p = j.parts();
        remember(&mut self.app_keys, p.app_key);
        remember(&mut self.domains, p.domain);
    }
}

fn remember(v: &mut Vec<String>, s: Option<&str>) {
    if let Some(s) = s.filter(|s| !s.is_empty()) {
        if v.len() < ZONE_CAP && !v.iter().any(|x| x == s) {
            v.push(s.to_string());
        }
    }
}

/// murmur3's finaliser: FxHash mixes the last word of a string poorly, and these hashes are
/// identities, not just bucket indices.
fn fmix(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// The identity of a JID: its parts (an absent part as an empty one, as the SDK prints them),
/// each length-prefixed so that no two part lists run together alike.
fn jid_hash(j: &view::Jid<'_>, with_resource: bool) -> u64 {
    let res = if with_resource { j.client_resource } else { None };
    last_part(bare_parts(j), res)
}

/// [`jid_hash`] with and without the resource, the bare parts hashed once.
fn jid_hashes(j: &view::Jid<'_>) -> (u64, u64) {
    let h = bare_parts(j);
    (last_part(h, j.client_resource), last_part(h, None))
}

fn bare_parts(j: &view::Jid<'_>) -> FxHasher {
    let mut h = FxHasher::default();
    for p in [j.app_key, j.name, j.domain] {
        let s = p.unwrap_or_default();
        h.write_usize(s.len());
        h.write(s);
    }
    h
}

fn last_part(mut h: FxHasher, res: Option<&[u8]>) -> u64 {
    let s = res.unwrap_or_default();
    h.write_usize(s.len());
    h.write(s);
    fmix(h.finish())
}

fn jid_string(j: &view::Jid<'_>, with_resource: bool) -> String {
    let mut p = j.parts();
    if !with_resource {
        p.client_resource = None;
    }
    p.to_string()
}

/// Key of a run-wide table entry: the connection when the tables are split
/// ([`Tables::split`]), else [`ALL`]; and the JID's hash.
type Key = (u32, u64);
const ALL: u32 = u32::MAX;
/// The hash under which JIDs past [`TABLE_CAP`] are counted together.
const OVERFLOW: u64 = u64::MAX;

trait Named {
    fn named(name: String) -> Self;
}

impl<T: Named> Named for Box<T> {
    fn named(name: String) -> Self {
        Box::new(T::named(name))
    }
}

/// One queue's statistics over the run (or over one connection, when split).
#[derive(Clone, Debug, Default)]
struct QueueAcc {
    name: String,
    /// Connections that used the queue (the lowest [`QUEUE_SESSIONS_CAP`] numbers).
    sessions: Vec<u32>,
    /// The connection of the last [`QueueAcc::used_by`]: a repeat changes nothing, and is
    /// told without reading `sessions` (a cache miss per NOTICE and pull, with thousands of
    /// queues).
    last_use: Option<u32>,
    notices: u64,
    pulls: u64,
    metas: u64,
    /// The latest values, with the capture record they came in (the latest wins on merge).
    unread_announced: Option<(u64, u64)>,
    last_next_key: Option<(u64, u64)>,
    /// Some answer had `is_last` set (`Some(false)`: the flag came, never true; `None`: no
    /// answer carried it).
    is_last_reached: Option<bool>,
    notice_to_pull: Histogram,
    pull_rtt: Histogram,
    drains: u64,
    drain_pages: u64,
    drain_metas: u64,
    drain_time: Histogram,
    stalls: u64,
}

impl Named for QueueAcc {
    fn named(name: String) -> Self {
        QueueAcc { name, ..Default::default() }
    }
}

fn latest(a: Option<(u64, u64)>, b: Option<(u64, u64)>) -> Option<(u64, u64)> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.0 >= x.0 { y } else { x }),
        (x, y) => x.or(y),
    }
}

fn either_true(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x || y),
        (x, y) => x.or(y),
    }
}

impl QueueAcc {
    /// Notes that `conn` used the queue. Past the cap the lowest connection numbers are
    /// kept: shards number their connections in the order one pipeline does, so they keep the
    /// same ones whatever the split.
    fn used_by(&mut self, conn: u32) {
        // A repeat of the last call is a no-op whatever that call did: it kept `conn`, or
        // `conn` was past the cap's largest kept number, which only ever decreases.
        if self.last_use.replace(conn) == Some(conn) || self.sessions.contains(&conn) {
            return;
        }
        if self.sessions.len() < QUEUE_SESSIONS_CAP {
            self.sessions.push(conn);
        } else if let Some(max) = self.sessions.iter_mut().max() {
            if conn < *max {
                *max = conn;
            }
        }
    }
    fn merge(&mut self, o: &QueueAcc) {
        for &s in &o.sessions {
            self.used_by(s);
        }
        self.notices += o.notices;
        self.pulls += o.pulls;
        self.metas += o.metas;
        self.unread_announced = latest(self.unread_announced, o.unread_announced);
        self.last_next_key = latest(self.last_next_key, o.last_next_key);
        self.is_last_reached = either_true(self.is_last_reached, o.is_last_reached);
        self.notice_to_pull.merge(&o.notice_to_pull);
        self.pull_rtt.merge(&o.pull_rtt);
        self.drains += o.drains;
        self.drain_pages += o.drain_pages;
        self.drain_metas += o.drain_metas;
        self.drain_time.merge(&o.drain_time);
        self.stalls += o.stalls;
    }
}

/// Metas sent and received by one JID (without resource).
#[derive(Clone, Debug, Default)]
struct PeerAcc {
    name: String,
    sent: u64,
    received: u64,
}

impl Named for PeerAcc {
    fn named(name: String) -> Self {
        PeerAcc { name, ..Default::default() }
    }
}

/// The run-wide tables: queues and peers by JID.
#[derive(Clone, Debug, Default)]
struct Tables {
    /// Entries are kept apart per connection, because a `--user` or `--conn` filter will narrow
    /// the report to some connections once it is known which.
    split: bool,
    /// Boxed: a queue's statistics are a few hundred bytes, and a hash table sized for tens
    /// of thousands of queues holds up to twice as many slots as entries.
    queues: FxHashMap<Key, Box<QueueAcc>>,
    peers: FxHashMap<Key, PeerAcc>,
    /// Latencies by [`Exchange`]. Run-wide rather than per connection: a histogram that every
    /// answer of the run records into stays in cache, one per connection would not.
    latency: FxHashMap<u32, Box<[Histogram; 6]>>,
    /// What a message outside the `--since` / `--until` window would count for its queue,
    /// thrown away (see [`ConnState::quiet`]).
    scratch: QueueAcc,
}

impl Tables {
    fn key(&self, conn: u32, h: u64) -> Key {
        (if self.split { conn } else { ALL }, h)
    }
    fn latency(&mut self, conn: u32) -> &mut [Histogram; 6] {
        let k = if self.split { conn } else { ALL };
        self.latency.entry(k).or_default()
    }
    fn merge(&mut self, o: Tables) {
        for (k, hs) in o.latency {
            let mine = self.latency.entry(k).or_default();
            for (a, b) in mine.iter_mut().zip(hs.iter()) {
                a.merge(b);
            }
        }
        for (k, q) in o.queues {
            match self.queues.entry(k) {
                Entry::Occupied(mut e) => e.get_mut().merge(&q),
                Entry::Vacant(e) => {
                    e.insert(q);
                }
            }
        }
        for (k, p) in o.peers {
            let e = self.peers.entry(k).or_insert_with(|| PeerAcc::named(p.name.clone()));
            e.sent += p.sent;
            e.received += p.received;
        }
    }
}

/// The entry of `key`, made with `name()` when new; past [`TABLE_CAP`] entries, the one that
/// counts the rest together (`overflow` counts those JIDs).
fn slot<'t, V: Named>(
    map: &'t mut FxHashMap<Key, V>,
    key: Key,
    name: impl FnOnce() -> String,
    overflow: &mut u64,
) -> &'t mut V {
    if map.len() >= TABLE_CAP && !map.contains_key(&key) {
        *overflow += 1;
        return map
            .entry((key.0, OVERFLOW))
            .or_insert_with(|| V::named(format!("(JIDs over the cap of {TABLE_CAP})")));
    }
    map.entry(key).or_insert_with(|| V::named(name()))
}

/// The statistics of queue `j` (hash `h`, resource included), used by connection `conn`.
fn queue_acc<'t>(
    t: &'t mut Tables,
    c: &mut ConnState,
    conn: u32,
    h: u64,
    j: &view::Jid<'_>,
) -> &'t mut QueueAcc {
    if c.quiet {
        t.scratch = QueueAcc::default();
        return &mut t.scratch;
    }
    let key = t.key(conn, h);
    let zones = &mut c.zones;
    let acc = slot(
        &mut t.queues,
        key,
        || {
            zones.remember(j);
            jid_string(j, true)
        },
        &mut c.table_overflow,
    );
    acc.used_by(conn);
    acc
}

/// The meta counts of peer `j`.
fn peer_acc<'t>(
    t: &'t mut Tables,
    c: &mut ConnState,
    conn: u32,
    j: &view::Jid<'_>,
) -> &'t mut PeerAcc {
    let key = t.key(conn, jid_hash(j, false));
    let zones = &mut c.zones;
    slot(
        &mut t.peers,
        key,
        || {
            zones.remember(j);
            jid_string(j, false)
        },
        &mut c.table_overflow,
    )
}

/// A NOTICE → pull → … → is_last sequence in progress.
#[derive(Clone, Debug)]
struct Drain {
    start: Timestamp,
    start_frame: u64,
    pages: u64,
    metas: u64,
    last_key: Option<u64>,
    stalled: bool,
}

/// A queue in use on one connection: what awaits an answer. Dropped once idle.
#[derive(Clone, Debug)]
struct LiveQueue {
    /// Hash of the queue's JID without resource (for matching `z13/res` with `z13`).
    bare: u64,
    /// A NOTICE waiting for the client's pull (time, packet).
    notice_pending: Option<(Timestamp, u64)>,
    /// Pulls waiting for their answer (time, packet), oldest first.
    pulls_pending: VecDeque<(Timestamp, u64)>,
    drain: Option<Drain>,
}

impl LiveQueue {
    fn idle(&self) -> bool {
        self.notice_pending.is_none() && self.pulls_pending.is_empty() && self.drain.is_none()
    }
}

#[derive(Clone, Debug, Default)]
struct LatStat {
    requests: u64,
    answered: u64,
}

#[derive(Clone, Debug)]
struct ErrStat {
    source: &'static str,
    count: u64,
    commands: Vec<(Command, u64)>,
    reasons: Vec<(String, u64)>,
    first: Where,
    last: Where,
}

#[derive(Clone, Debug, Default)]
struct Login {
    request: Option<(Timestamp, u64)>,
    answer: Option<LoginInfo>,
}

#[derive(Clone, Debug, Default)]
struct MsgCounts {
    /// By `Meta.ns` 0..=6, then unknown; per direction.
    ns: [[u64; 8]; 2],
    /// By `MessageBody.type` 0..=8, then unknown.
    body: [[u64; 10]; 2],
    /// By `Content.type` 0..=8, then unknown, then empty contents.
    content: [[u64; 11]; 2],
}

/// Queues whose last `next_key` one connection remembers (for "next_key moved backwards"
/// across drains): the most recently answered ones. Within a drain the open drain's own key
/// catches a stuck or backwards key whatever this holds.
const NEXT_KEYS_CAP: usize = 64;

/// Everything known about one connection.
#[derive(Clone, Debug)]
struct ConnState {
    meta: Option<ConnMeta>,
    transport: Option<Transport>,
    /// The WebSocket upgrade: path and the extensions in force.
    ws: Option<(Option<String>, Option<String>)>,
    /// How the WebSocket ended: a close frame or a refused upgrade.
    ws_end: Option<WsEnd>,
    msync: bool,
    user: Option<String>,
    user_bare: Option<String>,
    /// The user was taken from the client's own sends (`Meta.from`), not from PROVISION.
    user_inferred: bool,
    /// Hash of the login JID without resource, for sends whose meta names no sender.
    user_hash: Option<u64>,
    /// The app key and domain of the login JID, which clients leave out of the JIDs they
    /// write (the web SDK's `from` is `{name}` alone), while the server writes them whole.
    home: Option<Box<Home>>,
    resource: Option<String>,
    device_uuid: Option<String>,
    device_name: Option<String>,
    os: Option<String>,
    sdk_version: Option<String>,
    provision_sent: bool,
    login: Login,
    first_ts: Option<Timestamp>,
    last_ts: Option<Timestamp>,
    close: Option<(CloseReason, Timestamp)>,
    logout: bool,
    msgs: [u64; 2],
    bytes: [u64; 2],
    /// By command (SYNC, UNREAD, NOTICE, PROVISION, LOGOUT, other) and direction.
    commands: [[u64; 6]; 2],
    decode_errors: u64,
    gap_bytes: u64,
    errors_total: u64,
    hb_count: u64,
    hb_first: Option<Timestamp>,
    hb_last: Option<Timestamp>,
    hb_rtt: Histogram,
    lat: [LatStat; 6],
    unread_pending: VecDeque<(Timestamp, u64)>,
    sends_pending: FxHashMap<u64, (Timestamp, u64)>,
    /// Later copies of a meta id sent again while its first copy awaited its ack (id, time,
    /// packet), in the order sent: each copy is a request of its own, and clients do send
    /// copies (the web SDK sends some metas twice in one millisecond, and both are acked).
    sends_dup: Vec<(u64, Timestamp, u64)>,
    logout_pending: Option<(Timestamp, u64)>,
    /// The last [`RECENT_IDS_CAP`] meta ids sent, oldest first.
    recent_ids: VecDeque<u64>,
    /// Queues in use, by the hash of their JID (resource included).
    live: FxHashMap<u64, LiveQueue>,
    /// The pending-pull buffer of the last queue forgotten, for the next one made: queues
    /// come and go with every drain, and a fresh buffer would be allocated and grown each time.
    spare_pulls: VecDeque<(Timestamp, u64)>,
    /// (queue hash, last next_key), most recently answered last.
    next_keys: VecDeque<(u64, u64)>,
    zones: Zones,
    /// Made with the first meta (most connections of a flood or of other protocols never
    /// carry one).
    counts: Option<Box<MsgCounts>>,
    errors: HashMap<String, ErrStat>,
    findings: HashMap<FindingKind, FindingStat>,
    /// JIDs counted under the tables' overflow entries, and those already turned into findings.
    table_overflow: u64,
    overflow_reported: u64,
    /// Pending requests were turned into findings (the connection closed).
    settled: bool,
    /// The `--since` / `--until` window (ns, bounds included), as of the latest message.
    window: (i64, i64),
    /// The message being taken in falls outside the window: it moves the state along (who
    /// logged in, what awaits an answer) but counts nothing, so that an exchange is matched
    /// across the window's edges and counted by the time of its request.
    quiet: bool,
}

impl ConnState {
    fn new(meta: Option<ConnMeta>) -> Self {
        ConnState {
            meta,
            transport: None,
            ws: None,
            ws_end: None,
            msync: false,
            user: None,
            user_bare: None,
            user_inferred: false,
            user_hash: None,
            home: None,
            resource: None,
            device_uuid: None,
            device_name: None,
            os: None,
            sdk_version: None,
            provision_sent: false,
            login: Login::default(),
            first_ts: None,
            last_ts: None,
            close: None,
            logout: false,
            msgs: [0; 2],
            bytes: [0; 2],
            commands: [[0; 6]; 2],
            decode_errors: 0,
            gap_bytes: 0,
            errors_total: 0,
            hb_count: 0,
            hb_first: None,
            hb_last: None,
            hb_rtt: Histogram::new(),
            lat: Default::default(),
            unread_pending: VecDeque::new(),
            sends_pending: FxHashMap::default(),
            sends_dup: Vec::new(),
            logout_pending: None,
            recent_ids: VecDeque::new(),
            live: FxHashMap::default(),
            spare_pulls: VecDeque::new(),
            next_keys: VecDeque::new(),
            zones: Zones::default(),
            counts: None,
            errors: HashMap::new(),
            findings: HashMap::new(),
            table_overflow: 0,
            overflow_reported: 0,
            settled: false,
            window: (i64::MIN, i64::MAX),
            quiet: false,
        }
    }

    /// Whether something at `ts` counts: it falls in the window.
    fn counts(&self, ts: Timestamp) -> bool {
        (self.window.0..=self.window.1).contains(&ts.0)
    }

    /// A finding at `at`, counted when `at` falls in the window.
    fn find(&mut self, kind: FindingKind, at: Where, value: u64) {
        if self.counts(at.ts) {
            self.find_anyway(kind, at, value);
        }
    }

    fn find_anyway(&mut self, kind: FindingKind, at: Where, value: u64) {
        let f = self.findings.entry(kind).or_default();
        f.count += 1;
        if kind == FindingKind::SlowExchange {
            f.value = f.value.max(value);
        } else {
            f.value = f.value.saturating_add(value);
        }
        if f.places.len() < PLACES_CAP {
            f.places.push(at);
        }
    }

    /// It goes on with a connection closed as idle, whose PROVISION (or lack of it) was its.
    fn resumed(&self) -> bool {
        self.meta.as_ref().is_some_and(|m| m.resumes.is_some())
    }

    fn touch(&mut self, ts: Timestamp) {
        if self.first_ts.is_none() {
            self.first_ts = Some(ts);
        }
        self.last_ts = Some(self.last_ts.map_or(ts, |l| l.max(ts)));
    }

    /// The live state of queue `h` (its bare JID's hash `bare`), made if new; `None` when the
    /// connection already drains [`LIVE_QUEUE_CAP`] queues (counted as a finding).
    fn live(&mut self, h: u64, bare: u64, at: Where) -> Option<&mut LiveQueue> {
        if self.live.len() >= LIVE_QUEUE_CAP && !self.live.contains_key(&h) {
            self.find(FindingKind::PendingOverflow, at, 0);
            return None;
        }
        Some(self.live.entry(h).or_insert_with(|| LiveQueue {
            bare,
            notice_pending: None,
            pulls_pending: std::mem::take(&mut self.spare_pulls),
            drain: None,
        }))
    }

    /// Forgets queue `h` once nothing about it awaits an answer.
    fn prune(&mut self, h: u64) {
        if self.live.get(&h).is_some_and(LiveQueue::idle) {
            // A buffer that a burst grew is let go: a spare must not keep what the burst held.
            if let Some(q) =
                self.live.remove(&h).filter(|q| q.pulls_pending.capacity() <= SPARE_CAP)
            {
                self.spare_pulls = q.pulls_pending;
            }
        }
    }

    /// An exchange answered at `at`, `latency` after its request: counted when the request
    /// falls in the window, wherever the answer does.
    fn answered(&mut self, t: &mut Tables, kind: Exchange, latency: i64, at: Where, slow_ns: i64) {
        if !self.counts(Timestamp(at.ts.0.saturating_sub(latency))) {
            return;
        }
        if let Some(l) = self.lat.get_mut(kind.index()) {
            l.answered += 1;
        }
        if latency < 0 {
            // Answered all the same; a time of 0 would only pass for a fast answer.
            self.find(FindingKind::NegativeTime, at, 0);
            return;
        }
        if let Some(h) = t.latency(at.conn).get_mut(kind.index()) {
            h.record(latency);
        }
        if latency > slow_ns {
            self.find_anyway(FindingKind::SlowExchange, at, latency.max(0) as u64);
        }
    }

    fn requested(&mut self, kind: Exchange) {
        if self.quiet {
            return;
        }
        if let Some(l) = self.lat.get_mut(kind.index()) {
            l.requests += 1;
        }
    }

    fn error(
        &mut self,
        code: String,
        source: &'static str,
        cmd: Command,
        reason: Option<&str>,
        at: Where,
    ) {
        if !self.counts(at.ts) {
            return;
        }
        self.errors_total += 1;
        let code = match capped_code(&self.errors, code, ERROR_CODES_CAP) {
            Ok(code) => code,
            Err(other) => {
                self.table_overflow += 1;
                other
            }
        };
        let e = self.errors.entry(code).or_insert_with(|| ErrStat {
            source,
            count: 0,
            commands: Vec::new(),
            reasons: Vec::new(),
            first: at,
            last: at,
        });
        e.count += 1;
        // By time, not by the order taken in: a message completed past a hole keeps its
        // earlier packet.
        if at.ts < e.first.ts {
            e.first = at;
        }
        if at.ts >= e.last.ts {
            e.last = at;
        }
        match e.commands.iter_mut().find(|(c, _)| *c == cmd) {
            Some((_, n)) => *n += 1,
            None => e.commands.push((cmd, 1)),
        }
        if let Some(r) = reason.filter(|r| !r.is_empty()) {
            if let Some((_, n)) = e.reasons.iter_mut().find(|(x, _)| x == r) {
                *n += 1;
            } else if e.reasons.len() < REASON_CAP {
                e.reasons.push((r.to_string(), 1));
            }
        }
    }

    /// Requests still pending become "unanswered" findings, and open drains stalls. Runs once,
    /// when the connection closes or the capture ends.
    fn settle(&mut self, conn: u32, tables: &mut Tables) {
        if self.settled {
            return;
        }
        self.settled = true;
        let mut places: Vec<Where> = Vec::new();
        if let Some((ts, frame)) = self.login.request.filter(|_| self.login.answer.is_none()) {
            places.push(Where { conn, frame, ts });
        }
        places.extend(self.unread_pending.drain(..).map(|(ts, frame)| Where { conn, frame, ts }));
        let mut sends: Vec<(Timestamp, u64)> = self.sends_pending.drain().map(|(_, v)| v).collect();
        sends.extend(self.sends_dup.drain(..).map(|(_, ts, frame)| (ts, frame)));
        sends.sort_unstable_by_key(|&(ts, f)| (f, ts));
        places.extend(sends.into_iter().map(|(ts, frame)| Where { conn, frame, ts }));
        if let Some((ts, frame)) = self.logout_pending.take() {
            places.push(Where { conn, frame, ts });
        }
        let mut stalls = Vec::new();
        let mut live: Vec<(u64, LiveQueue)> = std::mem::take(&mut self.live).into_iter().collect();
        // In the order the requests were made, whatever the map's order.
        live.sort_unstable_by_key(|(h, q)| {
            let first = q.notice_pending.iter().chain(q.pulls_pending.iter()).map(|p| p.1).min();
            (first.or(q.drain.as_ref().map(|d| d.start_frame)), *h)
        });
        for (h, q) in live {
            places.extend(q.pulls_pending.into_iter().map(|(ts, frame)| Where { conn, frame, ts }));
            if let Some((ts, frame)) = q.notice_pending {
                places.push(Where { conn, frame, ts });
            }
            if let Some(d) = q.drain.filter(|d| self.counts(d.start)) {
                // Counted once per drain: the finding may already stand for a stuck next_key.
                let key = tables.key(conn, h);
                if let Some(acc) = tables.queues.get_mut(&key) {
                    acc.stalls += 1;
                }
                if !d.stalled {
                    stalls.push(Where { conn, frame: d.start_frame, ts: d.start });
                }
            }
        }
        // Nothing more can be matched on a closed connection: give the memory back.
        self.recent_ids = VecDeque::new();
        self.sends_pending = FxHashMap::default();
        self.sends_dup = Vec::new();
        self.unread_pending = VecDeque::new();
        self.next_keys = VecDeque::new();
        places.sort_unstable_by_key(|w| w.frame);
        for w in places {
            self.find(FindingKind::Unanswered, w, 0);
        }
        for w in stalls {
            self.find(FindingKind::DrainStall, w, 0);
        }
    }

    fn end_ts(&self) -> Timestamp {
        match (self.close, self.last_ts) {
            (Some((_, c)), Some(l)) => c.max(l),
            (Some((_, c)), None) => c,
            (None, Some(l)) => l,
            (None, None) => self.start_ts(),
        }
    }

    fn start_ts(&self) -> Timestamp {
        self.meta.as_ref().map(|m| m.first_ts).or(self.first_ts).unwrap_or_default()
    }
}

/// Messages and decode errors of the bodies this analyzer decoded itself (see
/// [`Consumer::defers_decoding`]), added to the pipeline's totals at the end.
#[derive(Clone, Copy, Debug, Default)]
struct OwnCounts {
    messages: u64,
    decode_errors: u64,
    inflate_capped: u64,
    not_utf8: u64,
}

/// Collects everything `report` shows; a [`Consumer`] of the event stream.
#[derive(Debug)]
pub struct Analyzer {
    /// Packets the capture dropped (libpcap's kernel and interface counts, in live mode).
    capture_drops: u64,
    /// Whether the packets' times only went forward, as the reader saw them all.
    time_order: crate::capture::TimeOrder,
    opts: ReportOptions,
    limits: DecodeLimits,
    /// Boxed: the map keeps its peak capacity, which a flood makes large, and a slot then
    /// costs a pointer rather than a whole state.
    conns: FxHashMap<u32, Box<ConnState>>,
    tables: Tables,
    totals: Option<Totals>,
    own: OwnCounts,
    /// Reused for inflating compressed payloads.
    scratch: Vec<u8>,
    /// Per connection that sent messages larger than their wire bytes (LZ4, permessage-deflate)
    /// or zlib payloads: their wire bytes and what they grew to, against the allowance of
    /// [`crate::msync::decode::INFLATE_FREE`].
    inflation: FxHashMap<u32, Inflation>,
    /// The metas of the last SYNC answer decoded, kept for their buffer.
    metas: Vec<view::Meta<'static>>,
    /// Time of the first event seen (stands in for the capture start until known).
    first_seen: Option<Timestamp>,
    capture_start: Option<Timestamp>,
    /// In a shard ([`Analyzer::number_for_merge`]): every connection opened, so that the merge
    /// numbers connections as one pipeline would, those that left no state behind included.
    opened: Option<Opened>,
    /// Live mode: finished sessions kept as rows; older ones are folded into `folded`.
    fold_keep: Option<usize>,
    finished: VecDeque<u32>,
    folded: Option<Box<ConnState>>,
    folded_sessions: u64,
    /// Users of the folded sessions (at most [`FOLDED_USERS_CAP`]).
    folded_users: std::collections::BTreeSet<String>,
}

/// The most a zlib payload of the message `ctx` (of `len` bytes, before its payload is
/// inflated) may inflate to: what is left of its connection's allowance, the message's wire
/// bytes added (unless they were, as a message that grew). The lossy retry of a message
/// inflates what its first decode inflated and was charged for: it gets the plain cap.
#[cold]
#[inline(never)]
fn zlib_cap(
    inflation: &mut FxHashMap<u32, Inflation>,
    ctx: &MsgCtx<'_>,
    len: usize,
    max: usize,
) -> usize {
    if view::lossy_active() {
        return max;
    }
    let c = inflation.entry(ctx.conn.id.0).or_default();
    if len as u64 <= ctx.wire_len {
        c.wire = c.wire.saturating_add(ctx.wire_len);
    }
    usize::try_from(c.left()).unwrap_or(usize::MAX).min(max)
}

/// What one connection's messages grew to when inflated, against their wire bytes.
#[derive(Clone, Copy, Debug, Default)]
struct Inflation {
    wire: u64,
    made: u64,
}

impl Inflation {
    fn left(&self) -> u64 {
        crate::msync::decode::inflate_left(self.wire, self.made)
    }

    /// Charges a message of `wire` bytes that grew to `len`: false, and nothing charged but
    /// its wire bytes, when that passes the allowance.
    fn charge(&mut self, wire: u64, len: usize) -> bool {
        self.wire = self.wire.saturating_add(wire);
        let len = len as u64;
        if len > self.left() {
            return false;
        }
        self.made = self.made.saturating_add(len);
        true
    }
}

/// The connections a shard opened, (first packet, id) in opening order, as varint deltas:
/// both grow with every connection, so a flood of them costs about two bytes each.
#[derive(Clone, Debug, Default)]
struct Opened {
    bytes: Vec<u8>,
    last: (u64, u32),
}

impl Opened {
    fn push(&mut self, first_packet: u64, id: u32) {
        let (lf, li) = self.last;
        // Packets and ids only grow; were one not to, wrapping keeps the decoding exact.
        put_varint(&mut self.bytes, first_packet.wrapping_sub(lf));
        put_varint(&mut self.bytes, u64::from(id.wrapping_sub(li)));
        self.last = (first_packet, id);
    }
    fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        let mut pos = 0;
        let mut last = (0u64, 0u32);
        std::iter::from_fn(move || {
            let df = get_varint(&self.bytes, &mut pos)?;
            let di = get_varint(&self.bytes, &mut pos)?;
            last = (last.0.wrapping_add(df), last.1.wrapping_add(di as u32));
            Some(last)
        })
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let (v, n) = crate::msync::schema::varint(b.get(*pos..)?)?;
    *pos += n;
    Some(v)
}

/// The id the folded sessions' aggregate goes by in [`build_report`].
const FOLDED: u32 = u32::MAX - 1;
/// Distinct users of folded sessions remembered for the overview.
const FOLDED_USERS_CAP: usize = 100_000;

/// Adds what a finished session counted to the aggregate of folded sessions `dst`: traffic,
/// request and answer counts, errors, findings, message counts. What belongs to the session
/// alone (addresses, login, heartbeats) goes with it.
fn fold_into(dst: &mut ConnState, src: ConnState, id: u32) {
    let start = src.start_ts();
    let resumed = src.resumed();
    for d in 0..2 {
        if let (Some(a), Some(b)) = (dst.msgs.get_mut(d), src.msgs.get(d)) {
            *a += b;
        }
        if let (Some(a), Some(b)) = (dst.bytes.get_mut(d), src.bytes.get(d)) {
            *a = a.saturating_add(*b);
        }
    }
    add2(&mut dst.commands, &src.commands);
    if let Some(sc) = &src.counts {
        let dc = dst.counts.get_or_insert_default();
        add2(&mut dc.ns, &sc.ns);
        add2(&mut dc.body, &sc.body);
        add2(&mut dc.content, &sc.content);
    }
    dst.decode_errors += src.decode_errors;
    dst.gap_bytes = dst.gap_bytes.saturating_add(src.gap_bytes);
    dst.errors_total += src.errors_total;
    for (a, b) in dst.lat.iter_mut().zip(src.lat.iter()) {
        a.requests += b.requests;
        a.answered += b.answered;
    }
    for k in src.zones.app_keys.iter().map(String::as_str) {
        remember(&mut dst.zones.app_keys, Some(k));
    }
    for d in src.zones.domains.iter().map(String::as_str) {
        remember(&mut dst.zones.domains, Some(d));
    }
    for (code, e) in src.errors {
        let code = capped_code(&dst.errors, code, ERROR_ROWS_CAP).unwrap_or_else(|o| o);
        match dst.errors.entry(code) {
            Entry::Vacant(v) => {
                v.insert(e);
            }
            Entry::Occupied(mut o) => {
                let x = o.get_mut();
                x.count += e.count;
                if e.first.ts < x.first.ts {
                    x.first = e.first;
                }
                if e.last.ts > x.last.ts {
                    x.last = e.last;
                }
                for (cmd, n) in e.commands {
                    match x.commands.iter_mut().find(|(c, _)| *c == cmd) {
                        Some((_, m)) => *m += n,
                        None => x.commands.push((cmd, n)),
                    }
                }
                for (r, n) in e.reasons {
                    if let Some((_, m)) = x.reasons.iter_mut().find(|(y, _)| *y == r) {
                        *m += n;
                    } else if x.reasons.len() < REASON_CAP {
                        x.reasons.push((r, n));
                    }
                }
            }
        }
    }
    let mut findings: Vec<(FindingKind, FindingStat)> = src.findings.into_iter().collect();
    if src.msync && !src.provision_sent && !resumed {
        let frame = src.meta.as_ref().map_or(0, |m| m.first_packet);
        let w = Where { conn: id, frame, ts: start };
        findings
            .push((FindingKind::NoProvision, FindingStat { count: 1, value: 0, places: vec![w] }));
    }
    for (k, f) in findings {
        let x = dst.findings.entry(k).or_default();
        x.count += f.count;
        x.value = if k == FindingKind::SlowExchange {
            x.value.max(f.value)
        } else {
            x.value.saturating_add(f.value)
        };
        // The earliest places, whatever the order sessions were folded in (shards fold their
        // own and merge: the same places must come out).
        x.places.extend(f.places);
        x.places.sort_unstable_by_key(|w| (w.frame, w.conn));
        x.places.truncate(PLACES_CAP);
    }
}

fn cmd_index(c: Command) -> usize {
    match c {
        Command::Sync => 0,
        Command::Unread => 1,
        Command::Notice => 2,
        Command::Provision => 3,
        Command::Logout => 4,
        Command::Unknown(_) => 5,
    }
}

const CMD_NAMES: [&str; 6] = ["SYNC", "UNREAD", "NOTICE", "PROVISION", "LOGOUT", "other"];

/// `code` when `map` has it or room for it (`cap` codes and the overflow row), else the
/// overflow row's key as an error.
fn capped_code<V>(map: &HashMap<String, V>, code: String, cap: usize) -> Result<String, String> {
    let room = map.len() - usize::from(map.contains_key(OTHER_CODES)) < cap;
    if room || map.contains_key(&code) {
        Ok(code)
    } else {
        Err(OTHER_CODES.to_string())
    }
}

fn status_name(code: i32) -> String {
    pb::status::ErrorCode::try_from(code)
        .map_or_else(|_| format!("STATUS_{code}"), |c| c.as_str_name().to_string())
}

fn os_name(v: i32) -> String {
    pb::provision::OsType::try_from(v)
        .map_or_else(|_| format!("OS_{v}"), |c| c.as_str_name().to_string())
}

fn bounded_index(v: Option<i32>, known: usize) -> usize {
    match v {
        None => 0,
        Some(x) if x >= 0 && (x as usize) < known => x as usize,
        Some(_) => known,
    }
}

/// The state of connection `id`, made if new, with the latest roles of `meta`.
fn conn_entry<'c>(
    conns: &'c mut FxHashMap<u32, Box<ConnState>>,
    id: u32,
    meta: Option<&ConnMeta>,
) -> &'c mut ConnState {
    let c = conns.entry(id).or_insert_with(|| Box::new(ConnState::new(None)));
    if let Some(m) = meta {
        // Roles may have been swapped since the connection opened: keep the latest.
        // Compared by the fields that can change, so the common path copies nothing.
        let same = c
            .meta
            .as_ref()
            .is_some_and(|x| x.id == m.id && x.client == m.client && x.server == m.server);
        if !same {
            c.meta = Some(m.clone());
        }
    }
    c
}

impl Analyzer {
    pub fn new(opts: &ReportOptions) -> Self {
        Analyzer {
            opts: opts.clone(),
            limits: DecodeLimits::default(),
            conns: FxHashMap::default(),
            tables: Tables {
                split: opts.user.is_some() || !opts.conns.is_empty(),
                ..Default::default()
            },
            totals: None,
            own: OwnCounts::default(),
            scratch: Vec::new(),
            inflation: FxHashMap::default(),
            metas: Vec::new(),
            first_seen: None,
            capture_drops: 0,
            time_order: Default::default(),
            capture_start: None,
            opened: None,
            fold_keep: None,
            finished: VecDeque::new(),
            folded: None,
            folded_sessions: 0,
            folded_users: Default::default(),
        }
    }

    /// For runs that last days (live capture): keeps the rows of the last `keep` finished
    /// sessions and folds older ones into the totals of every section, so memory stays bounded
    /// by the sessions open at once. Not with `--user` / `--conn` (whose tables are per
    /// connection): then nothing is folded.
    pub fn fold_finished_sessions(&mut self, keep: usize) {
        self.fold_keep = Some(keep);
    }

    /// Folds the oldest finished sessions past the number kept.
    fn fold_old_sessions(&mut self) {
        let Some(keep) = self.fold_keep.filter(|_| !self.tables.split) else { return };
        while self.finished.len() > keep {
            let Some(id) = self.finished.pop_front() else { break };
            let Some(c) = self.conns.remove(&id) else { continue };
            if c.msync {
                self.folded_sessions += 1;
            }
            if let Some(u) = c.user_bare.clone() {
                if self.folded_users.len() < FOLDED_USERS_CAP {
                    self.folded_users.insert(u);
                }
            }
            let dst = self.folded.get_or_insert_with(|| Box::new(ConnState::new(None)));
            fold_into(dst, *c, id);
        }
    }

    /// The caps of the pipeline feeding this analyzer (the inflated-size cap for compressed
    /// payloads it decodes itself).
    pub fn set_decode_limits(&mut self, limits: DecodeLimits) {
        self.limits = limits;
    }

    /// Makes this analyzer a shard of a run that [`Analyzer::merge_shards`] will merge: it
    /// remembers every connection opened (a couple of bytes each).
    pub fn number_for_merge(&mut self) {
        self.opened.get_or_insert_default();
    }

    /// Keeps the queue and peer tables apart per connection even though this analyzer's own
    /// options filter nothing: for shards of a run whose `--conn` applies only once they merge.
    pub fn split_tables(&mut self) {
        self.tables.split = true;
    }

    /// Adds the connections of another shard (connections are disjoint between shards).
    pub fn merge(&mut self, other: Analyzer) {
        self.capture_drops = self.capture_drops.saturating_add(other.capture_drops);
        for (id, c) in other.conns {
            match self.conns.entry(id) {
                Entry::Vacant(e) => {
                    e.insert(c);
                }
                // Not expected (shards own disjoint connections); keep the busier one.
                Entry::Occupied(mut e) => {
                    if c.msgs.iter().sum::<u64>() > e.get().msgs.iter().sum::<u64>() {
                        e.insert(c);
                    }
                }
            }
        }
        self.tables.split |= other.tables.split;
        self.tables.merge(other.tables);
        if let Some(f) = other.folded {
            let dst = self.folded.get_or_insert_with(|| Box::new(ConnState::new(None)));
            fold_into(dst, *f, FOLDED);
        }
        self.folded_sessions += other.folded_sessions;
        for u in other.folded_users {
            if self.folded_users.len() < FOLDED_USERS_CAP {
                self.folded_users.insert(u);
            }
        }
        self.first_seen = min_opt(self.first_seen, other.first_seen);
        self.capture_start = min_opt(self.capture_start, other.capture_start);
        self.totals = match (self.totals.take(), other.totals) {
            (Some(a), Some(b)) => Some(merge_totals(a, &b)),
            (a, b) => a.or(b),
        };
    }

    /// Sets the time of the capture's first packet, which `--since` / `--until` offsets count
    /// from. A shard's own first packet may come later than the capture's.
    pub fn set_capture_start(&mut self, ts: Timestamp) {
        self.capture_start = Some(ts);
    }

    /// The analyzer of shards over disjoint connections (see [`crate::pipeline::shard`]), with
    /// connections renumbered as a single pipeline numbers them, in order of their first
    /// packet, and the options (`--conn` among them, which shards cannot apply to numbers they
    /// do not know yet) of the whole run.
    pub fn merge_shards(shards: Vec<Analyzer>, opts: &ReportOptions) -> Analyzer {
        let mut order: Vec<(u64, usize, u32)> = Vec::new();
        for (i, a) in shards.iter().enumerate() {
            order.extend(a.opened.iter().flat_map(Opened::iter).map(|(first, id)| (first, i, id)));
            for (id, c) in &a.conns {
                order.push((c.meta.as_ref().map_or(u64::MAX, |m| m.first_packet), i, *id));
            }
        }
        order.sort_unstable();
        let mut maps: Vec<HashMap<u32, u32>> = vec![HashMap::new(); shards.len()];
        let mut next = 0u32;
        for (_, i, id) in order {
            // A connection both opened and kept is listed twice: its first place counts.
            if let Some(m) = maps.get_mut(i) {
                if let Entry::Vacant(e) = m.entry(id) {
                    e.insert(next);
                    next += 1;
                }
            }
        }
        let mut out = Analyzer::new(opts);
        for (mut a, map) in shards.into_iter().zip(maps) {
            a.renumber(&map);
            out.merge(a);
        }
        // Connections still open at the end were closed by every shard at the capture's last
        // record (`Pipeline::capture_ended_at`), as one pipeline closes them: not at the latest
        // time, which is another record when times run backwards.
        out.opts = opts.clone();
        out
    }

    /// Gives every connection the number `map` assigns it.
    fn renumber(&mut self, map: &HashMap<u32, u32>) {
        let new = |id: u32| map.get(&id).copied().unwrap_or(id);
        let conns = std::mem::take(&mut self.conns);
        for (id, mut c) in conns {
            let n = new(id);
            if let Some(m) = c.meta.as_mut() {
                m.id = crate::net::ConnId(n);
                if let Some(r) = m.resumes.as_mut() {
                    r.conn = crate::net::ConnId(new(r.conn.0));
                }
            }
            for f in c.findings.values_mut() {
                for w in &mut f.places {
                    w.conn = n;
                }
            }
            for e in c.errors.values_mut() {
                e.first.conn = n;
                e.last.conn = n;
            }
            self.conns.insert(n, c);
        }
        if let Some(f) = self.folded.as_mut() {
            for st in f.findings.values_mut() {
                for w in &mut st.places {
                    w.conn = new(w.conn);
                }
            }
            for e in f.errors.values_mut() {
                e.first.conn = new(e.first.conn);
                e.last.conn = new(e.last.conn);
            }
        }
        let renum_key = |(conn, h): Key| (if conn == ALL { ALL } else { new(conn) }, h);
        let queues = std::mem::take(&mut self.tables.queues);
        for (k, mut q) in queues {
            for s in &mut q.sessions {
                *s = new(*s);
            }
            // It names a connection by its number before this renumbering.
            q.last_use = None;
            self.tables.queues.insert(renum_key(k), q);
        }
        let peers = std::mem::take(&mut self.tables.peers);
        self.tables.peers = peers.into_iter().map(|(k, p)| (renum_key(k), p)).collect();
        let lat = std::mem::take(&mut self.tables.latency);
        self.tables.latency = lat.into_iter().map(|(k, h)| (renum_key((k, 0)).0, h)).collect();
    }

    fn start(&self) -> Timestamp {
        self.capture_start
            .or(self.totals.as_ref().and_then(|t| t.first_ts))
            .or(self.first_seen)
            .unwrap_or_default()
    }

    /// The `--since` / `--until` window as capture times (ns, bounds included).
    fn window(&self) -> (i64, i64) {
        if self.opts.since.is_none() && self.opts.until.is_none() {
            return (i64::MIN, i64::MAX);
        }
        let start = self.start();
        let bound = |b: Option<TimeBound>, none: i64| {
            b.map_or(none, |b| b.resolve(start, &self.opts.zone).0)
        };
        (bound(self.opts.since, i64::MIN), bound(self.opts.until, i64::MAX))
    }

    /// Whether an event at `ts` falls in the `--since` / `--until` window.
    fn in_window(&self, ts: Timestamp) -> bool {
        let (since, until) = self.window();
        (since..=until).contains(&ts.0)
    }

    fn wanted_conn(&self, id: u32) -> bool {
        self.opts.conns.is_empty() || self.opts.conns.contains(&id)
    }

    fn seen(&mut self, ts: Timestamp) {
        if self.first_seen.is_none() {
            self.first_seen = Some(ts);
        }
    }

    fn conn(&mut self, id: u32, meta: Option<&ConnMeta>) -> &mut ConnState {
        conn_entry(&mut self.conns, id, meta)
    }

    /// Connection `id` goes on with `old`, closed as idle: the same TCP connection, so the same
    /// session, user and device (its own messages add to them; a PROVISION of its own replaces
    /// them). Not picked up mid-stream, and without a PROVISION of its own by right.
    fn resume(&mut self, id: u32, meta: &ConnMeta, old: u32) {
        // Taken out while the new state borrows the table; a box, so no state is moved.
        let from = self.conns.remove(&old);
        let c = self.conn(id, Some(meta));
        // Whether it carries MSync, and how, its own bytes tell.
        if let Some(o) = &from {
            c.user.clone_from(&o.user);
            c.user_bare.clone_from(&o.user_bare);
            c.user_inferred = o.user_inferred;
            c.user_hash = o.user_hash;
            c.home.clone_from(&o.home);
            c.resource.clone_from(&o.resource);
            c.device_uuid.clone_from(&o.device_uuid);
            c.device_name.clone_from(&o.device_name);
            c.os.clone_from(&o.os);
            c.sdk_version.clone_from(&o.sdk_version);
            c.ws.clone_from(&o.ws);
        }
        if let Some(o) = from {
            self.conns.insert(old, o);
        }
    }

    /// Decodes one message body and takes it in; `own` says the pipeline left counting it to
    /// this analyzer. The command, if the body decoded.
    fn take_in(&mut self, ctx: &MsgCtx<'_>, raw: &[u8], own: bool) -> Option<Command> {
        self.seen(ctx.ts);
        // A message larger than its wire bytes was inflated below (LZ4, permessage-deflate).
        // One without wire bytes of its own shares a SockJS frame whose first message took
        // them: its text holds all of theirs, so they did not grow.
        if raw.len() as u64 > ctx.wire_len && ctx.wire_len > 0 && !self.charge_grown(ctx, raw.len())
        {
            self.refused(ctx, view::ViewError::InflateTooLarge, own);
            return None;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut metas = view::recycle(std::mem::take(&mut self.metas));
        let (inflation, max) = (&mut self.inflation, self.limits.max_inflated);
        let cap = || zlib_cap(inflation, ctx, raw.len(), max);
        let decoded = match view::decode_capped(raw, ctx.dir, cap, &mut scratch, &mut metas) {
            Ok(m) => {
                if own {
                    self.own.messages += 1;
                }
                self.message(ctx, &m);
                Ok(m.command)
            }
            Err(e) => Err(e),
        };
        // The metas borrow the scratch buffer: they go back first.
        self.metas = view::recycle(metas);
        // Holds what a zlib payload inflated to, charged to its connection (not again when the
        // lossy retry inflates the same), and is left empty for the next one.
        if !scratch.is_empty() {
            if !view::lossy_active() {
                let c = self.inflation.entry(ctx.conn.id.0).or_default();
                c.made = c.made.saturating_add(scratch.len() as u64);
            }
            scratch.clear();
        }
        // Keep the buffer for the next compressed payload, unless an outsized one grew it.
        if scratch.capacity() <= 1 << 20 {
            self.scratch = scratch;
        }
        match decoded {
            Ok(c) => Some(c),
            // Not for want of UTF-8: the lossy retry would inflate it again to the same end.
            Err(e)
                if view::lossy_active()
                    || matches!(e, view::ViewError::Inflate | view::ViewError::InflateTooLarge) =>
            {
                self.refused(ctx, e, own);
                None
            }
            Err(_) => self.take_in_lossy(ctx, raw, own),
        }
    }

    /// Charges a message that grew from `ctx.wire_len` bytes to `len` to its connection's
    /// allowance (once: not again in the lossy retry of the same message); false when it does
    /// not fit.
    #[cold]
    #[inline(never)]
    fn charge_grown(&mut self, ctx: &MsgCtx<'_>, len: usize) -> bool {
        view::lossy_active()
            || self.inflation.entry(ctx.conn.id.0).or_default().charge(ctx.wire_len, len)
    }

    /// A frame [`view::decode`] refused, again, accepting `string` fields that are not UTF-8:
    /// such a frame is taken in all the same, as its command, ids and statuses are what the
    /// analyzers need; if it is still refused, that is its decode error. Through
    /// [`Analyzer::take_in`] itself, so that [`view::decode`] keeps one call site and stays
    /// inlined there.
    #[cold]
    #[inline(never)]
    fn take_in_lossy(&mut self, ctx: &MsgCtx<'_>, raw: &[u8], own: bool) -> Option<Command> {
        let command = view::lossy(|| self.take_in(ctx, raw, own));
        if command.is_some() {
            if own {
                self.own.not_utf8 += 1;
            }
            self.not_utf8(ctx);
        }
        command
    }

    /// A message that did not decode.
    fn refused(&mut self, ctx: &MsgCtx<'_>, e: view::ViewError, own: bool) {
        if own {
            self.own.decode_errors += 1;
            if e == view::ViewError::InflateTooLarge {
                self.own.inflate_capped += 1;
            }
        }
        self.decode_error(ctx);
    }

    fn not_utf8(&mut self, ctx: &MsgCtx<'_>) {
        let id = ctx.conn.id.0;
        if self.wanted_conn(id) && self.in_window(ctx.ts) {
            let at = Where { conn: id, frame: ctx.frame, ts: ctx.ts };
            self.conn(id, Some(ctx.conn)).find(FindingKind::StringNotUtf8, at, 0);
        }
    }

    fn decode_error(&mut self, ctx: &MsgCtx<'_>) {
        let id = ctx.conn.id.0;
        if self.wanted_conn(id) && self.in_window(ctx.ts) {
            let c = self.conn(id, Some(ctx.conn));
            c.msync = true;
            c.decode_errors += 1;
            if let Some(m) = c.msgs.get_mut(ctx.dir.index()) {
                *m += 1;
            }
            // Its bytes are on the wire like any message's (it is counted among them).
            if let Some(b) = c.bytes.get_mut(ctx.dir.index()) {
                *b = b.saturating_add(ctx.wire_len);
            }
            c.find(FindingKind::Undecodable, Where { conn: id, frame: ctx.frame, ts: ctx.ts }, 0);
        }
    }

    fn message(&mut self, ctx: &MsgCtx<'_>, msg: &view::Msg<'_>) {
        if self.capture_start.is_none() {
            self.capture_start = Some(ctx.capture_start);
        }
        let id = ctx.conn.id.0;
        if !self.wanted_conn(id) {
            return;
        }
        let window = self.window();
        let slow = self.opts.slow_ns;
        let tables = &mut self.tables;
        let c = conn_entry(&mut self.conns, id, Some(ctx.conn));
        let ts = ctx.ts;
        let at = Where { conn: id, frame: ctx.frame, ts };
        let d = ctx.dir.index();
        c.window = window;
        c.quiet = !c.counts(ts);
        c.transport = Some(ctx.transport);
        c.touch(ts);
        if !c.quiet {
            // A session is one with a message in the window.
            c.msync = true;
            if let Some(m) = c.msgs.get_mut(d) {
                *m += 1;
            }
            if let Some(b) = c.bytes.get_mut(d) {
                *b = b.saturating_add(ctx.wire_len);
            }
            let cmd = cmd_index(msg.command);
            if let Some(n) = c.commands.get_mut(d).and_then(|r| r.get_mut(cmd)) {
                *n += 1;
            }
        }
        match (&msg.body, ctx.dir) {
            (Body::Provision(p), Dir::C2S) => {
                c.provision_sent = true;
                if let Some(g) = &msg.guid {
                    c.zones.remember(g);
                    c.user = Some(jid_string(g, true));
                    c.user_hash = Some(jid_hash(g, false));
                    c.user_bare = Some(jid_string(g, false));
                    c.user_inferred = false;
                    c.home = Home::of(g);
                }
                set_opt(&mut c.resource, p.resource);
                set_opt(&mut c.device_uuid, p.device_uuid);
                set_opt(&mut c.device_name, p.device_name);
                set_opt(&mut c.sdk_version, p.version);
                if let Some(os) = p.os_type {
                    c.os = Some(os_name(os));
                }
                if c.login.request.is_some() && c.login.answer.is_none() {
                    // A second login before the first was answered: the first stays unanswered.
                    c.find(FindingKind::Unanswered, at, 0);
                }
                c.requested(Exchange::Login);
                c.login.request = Some((ts, ctx.frame));
                c.login.answer = None;
            }
            (Body::Provision(p), Dir::S2C) => {
                let code = p.status.as_ref().and_then(|s| s.error_code).unwrap_or(0);
                let reason = p
                    .status
                    .as_ref()
                    .and_then(|s| s.reason)
                    .or(p.reason)
                    .filter(|r| !r.is_empty())
                    .map(str::to_string);
                let latency =
                    c.login.request.filter(|_| c.login.answer.is_none()).map(|(t, _)| ts.since(t));
                let frame = c.login.request.map_or(ctx.frame, |(_, f)| f);
                if let Some(l) = latency {
                    c.answered(tables, Exchange::Login, l, at, slow);
                }
                c.login.answer = Some(LoginInfo {
                    status: status_name(code),
                    reason,
                    // Negative: the clock stepped back (told by the exchange's finding).
                    latency_ns: latency.filter(|&l| l >= 0),
                    session_id: p.session_id.map(str::to_string),
                    frame,
                });
                if code != 0 {
                    c.find(FindingKind::LoginFailed, at, 0);
                }
                status_error(c, p.status.as_ref(), Command::Provision, at);
            }
            (Body::UnreadUl, Dir::C2S) => {
                c.requested(Exchange::Unread);
                push_capped(&mut c.unread_pending, (ts, ctx.frame), at, &mut c.findings);
            }
            (Body::UnreadDl(u), Dir::S2C) => {
                let mut abandoned = Vec::new();
                let req = take_answered(&mut c.unread_pending, &mut abandoned);
                abandon(c, id, abandoned);
                if let Some((t, _)) = req {
                    c.answered(tables, Exchange::Unread, ts.since(t), at, slow);
                }
                let mut pending_data = false;
                for (q, n) in u.queues() {
                    if let Some(j) = q {
                        let n = u64::from(n.unwrap_or(0));
                        pending_data |= n > 0;
                        queue_acc(tables, c, id, jid_hash(&j, true), &j).unread_announced =
                            Some((ctx.frame, n));
                    }
                }
                // A heartbeat is an UNREAD exchange that brought no pending data. One the
                // server refused is an error (below), not a sign the session is alive.
                let refused = u.status.as_ref().is_some_and(|s| s.error_code.unwrap_or(0) != 0);
                if !pending_data && !refused {
                    if let Some((t, _)) = req.filter(|&(t, _)| c.counts(t)) {
                        c.hb_count += 1;
                        // A negative round trip is told as the UNREAD exchange's (above).
                        if ts.since(t) >= 0 {
                            c.hb_rtt.record(ts.since(t));
                        }
                        if c.hb_first.is_none() {
                            c.hb_first = Some(t);
                        }
                        c.hb_last = Some(t);
                    }
                }
                status_error(c, u.status.as_ref(), Command::Unread, at);
            }
            (Body::Notice { queue: Some(j) }, Dir::S2C) => {
                let (h, bare) = jid_hashes(j);
                queue_acc(tables, c, id, h, j).notices += 1;
                let mut new_request = false;
                if let Some(s) = c.live(h, bare, at) {
                    // Several NOTICEs before a pull are one request for that pull.
                    if s.notice_pending.is_none() {
                        s.notice_pending = Some((ts, ctx.frame));
                        new_request = true;
                    }
                    if s.drain.is_none() {
                        s.drain = Some(new_drain(ts, ctx.frame));
                    }
                }
                if new_request {
                    c.requested(Exchange::Notice);
                }
            }
            (Body::SyncUl(s), Dir::C2S) => {
                if let Some(m) = &s.meta {
                    if let Some(f) = m.from.as_ref().filter(|_| c.user.is_none()) {
                        infer_user(c, f);
                    }
                    if let Some(mid) = m.id {
                        sent_meta(c, mid, at);
                    }
                    if !c.quiet {
                        count_meta(tables, c, id, m, Dir::C2S, at);
                    }
                } else if let Some(j) = &s.queue {
                    pull_request(tables, c, j, at, slow);
                }
            }
            (Body::SyncDl(s), Dir::S2C) => {
                let is_pull_answer = s.queue.is_some();
                if let Some(mid) = s.meta_id.filter(|_| s.meta_count == 0 || !is_pull_answer) {
                    acked_meta(tables, c, mid, ts, at, slow);
                }
                if let Some(j) = &s.queue {
                    pull_answer(tables, c, j, s, at, slow);
                }
                if !c.quiet {
                    s.for_each_meta(|m| count_meta(tables, c, id, m, Dir::S2C, at));
                }
                status_error(c, s.status.as_ref(), Command::Sync, at);
            }
            (Body::Logout { .. }, Dir::C2S) => {
                c.logout = true;
                c.requested(Exchange::Logout);
                if c.logout_pending.replace((ts, ctx.frame)).is_some() {
                    c.find(FindingKind::Unanswered, at, 0);
                }
            }
            (Body::Logout { status }, Dir::S2C) => {
                if let Some((t, _)) = c.logout_pending.take() {
                    c.answered(tables, Exchange::Logout, ts.since(t), at, slow);
                }
                status_error(c, status.as_ref(), Command::Logout, at);
            }
            _ => {}
        }
        if c.table_overflow > c.overflow_reported {
            for _ in c.overflow_reported..c.table_overflow {
                c.find(FindingKind::TableOverflow, at, 0);
            }
            c.overflow_reported = c.table_overflow;
        }
    }

    fn note_finding(&mut self, id: u32, kind: FindingKind, pkt: PktCtx, value: u64) {
        if !self.wanted_conn(id) || !self.in_window(pkt.ts) {
            return;
        }
        let c = self.conn(id, None);
        c.touch(pkt.ts);
        c.find(kind, Where { conn: id, frame: pkt.index, ts: pkt.ts }, value);
    }

    /// Packets the capture itself dropped so far (live capture: libpcap's kernel and interface
    /// drop counts, which are cumulative: the latest figure replaces the earlier one).
    pub fn set_capture_drops(&mut self, dropped: u64) {
        self.capture_drops = dropped;
    }

    /// The time order of every packet read (known to the reader only: a shard sees some).
    pub fn set_time_order(&mut self, order: crate::capture::TimeOrder) {
        self.time_order = order;
    }

    /// The report of everything consumed so far, narrowed by the options' filters.
    pub fn report(&self) -> Report {
        build_report(self)
    }
}

fn push_capped(
    q: &mut VecDeque<(Timestamp, u64)>,
    v: (Timestamp, u64),
    at: Where,
    findings: &mut HashMap<FindingKind, FindingStat>,
) {
    if q.len() < PENDING_CAP {
        q.push_back(v);
    } else {
        let f = findings.entry(FindingKind::PendingOverflow).or_default();
        f.count += 1;
        if f.places.len() < PLACES_CAP {
            f.places.push(at);
        }
    }
}

fn new_drain(ts: Timestamp, frame: u64) -> Drain {
    Drain { start: ts, start_frame: frame, pages: 0, metas: 0, last_key: None, stalled: false }
}

/// Takes the request an answer belongs to: the newest pending one. A client asks again (the
/// next page, the next heartbeat) only once answered or tired of waiting, so the newest request
/// is the one still awaited; requests more than [`BURST_NS`] older were given up and are moved
/// to `abandoned`, to be reported unanswered now, so that a stray answer later (its own request
/// lost in a capture gap) is not paired with them.
fn take_answered(
    q: &mut VecDeque<(Timestamp, u64)>,
    abandoned: &mut Vec<(Timestamp, u64)>,
) -> Option<(Timestamp, u64)> {
    let newest = q.pop_back()?;
    while let Some(&(t, f)) = q.front() {
        if newest.0.since(t) <= BURST_NS {
            break;
        }
        abandoned.push((t, f));
        q.pop_front();
    }
    Some(newest)
}

/// Reports requests given up on (see [`take_answered`]) as unanswered.
fn abandon(c: &mut ConnState, conn: u32, abandoned: Vec<(Timestamp, u64)>) {
    for (ts, frame) in abandoned {
        c.find(FindingKind::Unanswered, Where { conn, frame, ts }, 0);
    }
}

/// Takes the session user from the client's own send (`Meta.from`) when no PROVISION named it
/// (a connection picked up mid-stream).
fn infer_user(c: &mut ConnState, from: &view::Jid<'_>) {
    if from.name.is_none_or(<[u8]>::is_empty) {
        return;
    }
    c.zones.remember(from);
    c.user = Some(jid_string(from, true));
    c.user_bare = Some(jid_string(from, false));
    c.user_hash = Some(jid_hash(from, false));
    c.user_inferred = true;
    c.home = Home::of(from);
    if c.resource.is_none() {
        set_opt(&mut c.resource, from.parts().client_resource);
    }
}

/// A client SYNC pulling queue `j`: the reaction to a pending NOTICE of that queue (or of one
/// with the same bare JID), a pull awaiting its answer, the start of a drain.
fn pull_request(t: &mut Tables, c: &mut ConnState, j: &view::Jid<'_>, at: Where, slow: i64) {
    let (h, bare) = jid_hashes(j);
    let notice_q = if c.live.get(&h).is_some_and(|s| s.notice_pending.is_some()) {
        Some(h)
    } else {
        same_bare(c, h, bare, |s| s.notice_pending.is_some())
    };
    let mut notice = None;
    let mut moved_drain = None;
    if let Some(nq) = notice_q {
        if let Some(s) = c.live.get_mut(&nq) {
            notice = s.notice_pending.take();
            if nq != h {
                // The drain the NOTICE opened continues under the queue actually pulled.
                moved_drain = s.drain.take();
            }
        }
        if nq != h {
            c.prune(nq);
        }
    }
    let acc = queue_acc(t, c, at.conn, h, j);
    acc.pulls += 1;
    let reaction = notice.map(|(n, _)| at.ts.since(n));
    // A negative reaction is told as the notice exchange's (below).
    if let Some(dl) = reaction.filter(|&dl| dl >= 0 && notice.is_some_and(|(n, _)| c.counts(n))) {
        acc.notice_to_pull.record(dl);
    }
    let mut overflow = false;
    if let Some(s) = c.live(h, bare, at) {
        if s.pulls_pending.len() < PENDING_CAP {
            s.pulls_pending.push_back((at.ts, at.frame));
        } else {
            overflow = true;
        }
        if s.drain.is_none() {
            // A NOTICE that came while an earlier drain was still open (a pull outstanding)
            // opened none; the drain it called for starts at it all the same.
            let start = notice.unwrap_or((at.ts, at.frame));
            s.drain = Some(moved_drain.unwrap_or_else(|| new_drain(start.0, start.1)));
        }
    }
    c.requested(Exchange::Pull);
    if let Some(dl) = reaction {
        c.answered(t, Exchange::Notice, dl, at, slow);
    }
    if overflow {
        c.find(FindingKind::PendingOverflow, at, 0);
    }
}

/// Another live queue of `c` with bare JID hash `bare` for which `pred` holds. Several can only
/// differ by resource; the one asked about first wins, whatever the map's order.
fn same_bare(c: &ConnState, h: u64, bare: u64, pred: impl Fn(&LiveQueue) -> bool) -> Option<u64> {
    c.live
        .iter()
        .filter(|(k, s)| **k != h && s.bare == bare && pred(s))
        .min_by_key(|(k, s)| {
            let first = s.notice_pending.iter().chain(s.pulls_pending.iter()).map(|p| p.1).min();
            (first, **k)
        })
        .map(|(k, _)| *k)
}

fn set_opt(dst: &mut Option<String>, v: Option<&str>) {
    if let Some(s) = v.filter(|s| !s.is_empty()) {
        *dst = Some(s.to_string());
    }
}

fn min_opt(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn merge_totals(mut a: Totals, b: &Totals) -> Totals {
    a.packets += b.packets;
    a.first_ts = min_opt(a.first_ts, b.first_ts);
    a.last_ts = match (a.last_ts, b.last_ts) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    };
    a.tcp_connections += b.tcp_connections;
    a.msync_connections += b.msync_connections;
    a.other_connections += b.other_connections;
    a.messages += b.messages;
    a.decode_errors += b.decode_errors;
    a.gap_bytes += b.gap_bytes;
    a.skipped_bytes += b.skipped_bytes;
    a.oversize_frames += b.oversize_frames;
    a.inflate_capped += b.inflate_capped;
    a.not_utf8_messages += b.not_utf8_messages;
    a.tls_connections += b.tls_connections;
    a.websocket_connections += b.websocket_connections;
    a.lz4_undecodable += b.lz4_undecodable;
    a.ws_pings += b.ws_pings;
    a.ws_pongs += b.ws_pongs;
    a.ws_closes += b.ws_closes;
    a.ws_odd_masking += b.ws_odd_masking;
    a.net.merge(&b.net);
    a
}

/// Records a client send of meta `mid`: duplicate check and pending ack.
fn sent_meta(c: &mut ConnState, mid: u64, at: Where) {
    c.requested(Exchange::Send);
    let pending = c.sends_pending.contains_key(&mid);
    if pending || c.recent_ids.contains(&mid) {
        c.find(FindingKind::DuplicateMetaId, at, 0);
    } else {
        if c.recent_ids.len() >= RECENT_IDS_CAP {
            c.recent_ids.pop_front();
        }
        c.recent_ids.push_back(mid);
    }
    let room =
        if pending { c.sends_dup.len() < PENDING_CAP } else { c.sends_pending.len() < PENDING_CAP };
    if !room {
        c.find(FindingKind::PendingOverflow, at, 0);
    } else if pending {
        c.sends_dup.push((mid, at.ts, at.frame));
    } else {
        c.sends_pending.insert(mid, (at.ts, at.frame));
    }
}

/// The ack of meta `mid`: it answers the oldest copy still waiting, and the next copy (if
/// the id was sent again meanwhile) waits in its place.
fn acked_meta(t: &mut Tables, c: &mut ConnState, mid: u64, now: Timestamp, at: Where, slow: i64) {
    let Some((sent, _)) = c.sends_pending.remove(&mid) else {
        c.find(FindingKind::UnknownAck, at, 0);
        return;
    };
    c.answered(t, Exchange::Send, now.since(sent), at, slow);
    if let Some(i) = c.sends_dup.iter().position(|d| d.0 == mid) {
        let (_, ts, frame) = c.sends_dup.remove(i);
        c.sends_pending.insert(mid, (ts, frame));
    }
}

/// A pull answer for queue `j`: credited to `j` when a pull of it is pending, else to a queue
/// with the same bare JID that has one, else to `j`.
fn pull_answer(
    t: &mut Tables,
    c: &mut ConnState,
    j: &view::Jid<'_>,
    s: &view::SyncDl<'_>,
    at: Where,
    slow: i64,
) {
    let (jh, bare) = jid_hashes(j);
    let q = if c.live.get(&jh).is_some_and(|l| !l.pulls_pending.is_empty()) {
        jh
    } else {
        same_bare(c, jh, bare, |l| !l.pulls_pending.is_empty()).unwrap_or(jh)
    };
    let n = s.meta_count;
    // Servers of the seed's era send no `is_last`, and their client stops after the answer:
    // an absent flag ends the drain (a further pull starts a new one).
    let is_last = s.is_last.unwrap_or(true);
    let mut abandoned = Vec::new();
    let mut rtt = None;
    let mut pulled = None;
    let mut stalled_now = false;
    let mut finished = None;
    if let Some(l) = c.live(q, bare, at) {
        if let Some((t0, _)) = take_answered(&mut l.pulls_pending, &mut abandoned) {
            rtt = Some(at.ts.since(t0));
            pulled = Some(t0);
        }
        // An answer with no pull or NOTICE captured (mid-stream): a drain from here.
        let d = l.drain.get_or_insert_with(|| new_drain(at.ts, at.frame));
        d.pages += 1;
        d.metas += n;
        if !is_last {
            if let (Some(prev), Some(k)) = (d.last_key, s.next_key) {
                if k <= prev && !d.stalled {
                    d.stalled = true;
                    stalled_now = true;
                }
            }
            if s.next_key.is_some() {
                d.last_key = s.next_key;
            }
        } else {
            finished = l.drain.take();
        }
    }
    c.prune(q);
    let mut backwards = false;
    if let Some(k) = s.next_key {
        if let Some(i) = c.next_keys.iter().position(|&(h, _)| h == q) {
            backwards = c.next_keys.remove(i).is_some_and(|(_, prev)| k < prev);
        } else if c.next_keys.len() >= NEXT_KEYS_CAP {
            c.next_keys.pop_front();
        }
        c.next_keys.push_back((q, k));
    }
    // The answered queue's entry exists when a pull of it was pending (`j` names it only if
    // new, i.e. `q` is `j`).
    let acc = queue_acc(t, c, at.conn, q, j);
    if let Some(flag) = s.is_last {
        acc.is_last_reached = Some(flag || acc.is_last_reached == Some(true));
    }
    // A negative round trip is told as the pull exchange's (below).
    if let Some(r) = rtt.filter(|&r| r >= 0 && pulled.is_some_and(|p| c.counts(p))) {
        acc.pull_rtt.record(r);
    }
    acc.metas += n;
    if let Some(k) = s.next_key {
        // The latest by packet, as shards are merged: an answer completed by bytes that came
        // past a hole keeps its earlier packet, so the order answers are taken in is not
        // always the packets' order.
        acc.last_next_key = latest(acc.last_next_key, Some((at.frame, k)));
    }
    let mut negative_drain = false;
    if let Some(d) = finished {
        acc.drains += 1;
        acc.drain_pages += d.pages;
        acc.drain_metas += d.metas;
        if c.counts(d.start) {
            if at.ts.since(d.start) >= 0 {
                acc.drain_time.record(at.ts.since(d.start));
            } else {
                negative_drain = true;
            }
        }
        if d.stalled {
            acc.stalls += 1;
        }
    }
    abandon(c, at.conn, abandoned);
    if let Some(r) = rtt {
        c.answered(t, Exchange::Pull, r, at, slow);
    }
    // The clock stepped back within the drain, not within its last pull (told above).
    if negative_drain && rtt.is_none_or(|r| r >= 0) {
        c.find(FindingKind::NegativeTime, at, 0);
    }
    if backwards {
        c.find(FindingKind::NextKeyBackwards, at, 0);
    }
    if stalled_now {
        c.find(FindingKind::DrainStall, at, 0);
    }
}

fn status_error(c: &mut ConnState, st: Option<&view::Status<'_>>, cmd: Command, at: Where) {
    let Some(st) = st else { return };
    let code = st.error_code.unwrap_or(0);
    if code == 0 {
        return;
    }
    let redirect: String;
    let reason =
        if code == pb::status::ErrorCode::Redirect as i32 && st.redirects().next().is_some() {
            redirect = st
                .redirects()
                .map(|(host, port)| format!("→ {}:{}", host.unwrap_or("?"), port.unwrap_or(0)))
                .collect::<Vec<_>>()
                .join(", ");
            Some(redirect.as_str())
        } else {
            st.reason
        };
    c.error(status_name(code), "status", cmd, reason, at);
    c.find(FindingKind::ErrorStatus, at, 0);
}

/// A body status of a MUC or roster meta (`MUC.` / `ROSTER.` + the code's name).
fn body_status_name(prefix: &str, code: i32, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("{prefix}.{n}"),
        None => format!("{prefix}.{code}"),
    }
}

/// See [`ConnState::home`].
#[derive(Clone, Debug)]
struct Home {
    app_key: Option<Box<[u8]>>,
    domain: Option<Box<[u8]>>,
}

impl Home {
    fn of(j: &view::Jid<'_>) -> Option<Box<Home>> {
        let part = |p: Option<&[u8]>| p.filter(|s| !s.is_empty()).map(Box::from);
        let h = Home { app_key: part(j.app_key), domain: part(j.domain) };
        (h.app_key.is_some() || h.domain.is_some()).then(|| Box::new(h))
    }
}

fn absent(part: Option<&[u8]>) -> bool {
    part.is_none_or(<[u8]>::is_empty)
}

/// A JID with a name but without its app key or domain.
fn lacks_parts(j: &view::Jid<'_>) -> bool {
    j.name.is_some() && (absent(j.app_key) || absent(j.domain))
}

/// `j` with the parts it leaves out taken from the session's own JID, so that a user the
/// client names `{name}` and the server names in full is one peer.
fn filled<'j>(j: &view::Jid<'j>, home: Option<&'j Home>) -> view::Jid<'j> {
    match home {
        Some(h) if lacks_parts(j) => view::Jid {
            app_key: if absent(j.app_key) { h.app_key.as_deref() } else { j.app_key },
            domain: if absent(j.domain) { h.domain.as_deref() } else { j.domain },
            ..*j
        },
        _ => *j,
    }
}

/// Counts a meta for its sender and receiver.
#[inline(always)]
fn count_peers(
    t: &mut Tables,
    c: &mut ConnState,
    conn: u32,
    from: Option<&view::Jid<'_>>,
    to: Option<&view::Jid<'_>>,
    dir: Dir,
) {
    match (from, dir) {
        (Some(f), _) => peer_acc(t, c, conn, f).sent += 1,
        // The client's own sends: the session user.
        (None, Dir::C2S) => {
            if let (Some(h), Some(name)) = (c.user_hash, c.user_bare.as_ref()) {
                let key = t.key(conn, h);
                slot(&mut t.peers, key, || name.clone(), &mut c.table_overflow).sent += 1;
            }
        }
        (None, Dir::S2C) => {}
    }
    if let Some(to) = to {
        peer_acc(t, c, conn, to).received += 1;
    }
}

fn count_meta(
    t: &mut Tables,
    c: &mut ConnState,
    conn: u32,
    m: &view::Meta<'_>,
    dir: Dir,
    at: Where,
) {
    let d = dir.index();
    let counts = c.counts.get_or_insert_default();
    if let Some(x) = counts.ns.get_mut(d).and_then(|r| r.get_mut(bounded_index(m.ns, 7))) {
        *x += 1;
    }
    // Only a JID that lacks a part needs the session's (the server writes them whole); the
    // session's is taken out meanwhile, as counting borrows the connection too.
    let partial = |j: &Option<view::Jid<'_>>| j.as_ref().is_some_and(lacks_parts);
    match c.home.take_if(|_| partial(&m.from) || partial(&m.to)) {
        Some(h) => {
            let (from, to) =
                (m.from.map(|j| filled(&j, Some(&h))), m.to.map(|j| filled(&j, Some(&h))));
            count_peers(t, c, conn, from.as_ref(), to.as_ref(), dir);
            c.home = Some(h);
        }
        None => count_peers(t, c, conn, m.from.as_ref(), m.to.as_ref(), dir),
    }
    count_body(c, m, m.body(), dir, at);
}

/// Counts what one meta's body (`body`, read from `m`) shows.
#[inline(always)]
fn count_body(c: &mut ConnState, m: &view::Meta<'_>, body: MetaBody<'_>, dir: Dir, at: Where) {
    let d = dir.index();
    match body {
        MetaBody::Chat { r#type, .. } => {
            if let Some(x) = c
                .counts
                .get_or_insert_default()
                .body
                .get_mut(d)
                .and_then(|r| r.get_mut(bounded_index(r#type, 9)))
            {
                *x += 1;
            }
            for ct in body.content_types() {
                if let Some(x) = c.counts.get_or_insert_default().content.get_mut(d).and_then(|r| {
                    r.get_mut(ct.map_or(EMPTY_CONTENT, |t| bounded_index(Some(t), 9)))
                }) {
                    *x += 1;
                }
            }
        }
        MetaBody::Invalid => count_invalid_body(c, m, dir, at),
        MetaBody::Muc(Some(st)) if dir == Dir::S2C => {
            let code = st.error_code.unwrap_or(0);
            if code != 0 {
                let name = pb::muc_body::status::ErrorCode::try_from(code).ok();
                let name = body_status_name("MUC", code, name.map(|x| x.as_str_name()));
                c.error(name, "muc", Command::Sync, st.reason, at);
                c.find(FindingKind::ErrorStatus, at, 0);
            }
        }
        MetaBody::Roster(Some(st)) if dir == Dir::S2C => {
            let code = st.error_code.unwrap_or(0);
            if code != 0 {
                let name = pb::roster_body::status::ErrorCode::try_from(code).ok();
                let name = body_status_name("ROSTER", code, name.map(|x| x.as_str_name()));
                c.error(name, "roster", Command::Sync, st.reason, at);
                c.find(FindingKind::ErrorStatus, at, 0);
            }
        }
        MetaBody::Conference(st) if dir == Dir::S2C => {
            let code = st.and_then(|s| s.error_code).unwrap_or(0);
            if code != 0 {
                c.error(format!("CONFERENCE.{code}"), "conference", Command::Sync, None, at);
                c.find(FindingKind::ErrorStatus, at, 0);
            }
        }
        MetaBody::Statistic { operation, reason } if dir == Dir::S2C => {
            let op = operation.unwrap_or(0);
            if op != 0 {
                let name = pb::statistics_body::Operation::try_from(op)
                    .map_or_else(|_| format!("{op}"), |x| x.as_str_name().to_string());
                c.error(format!("STATISTIC.{name}"), "statistic", Command::Sync, reason, at);
                c.find(FindingKind::Kicked, at, 0);
            }
        }
        _ => {}
    }
}

/// A meta body that does not decode as its namespace's type: read again accepting `string`
/// fields that are not UTF-8 (such a body is counted all the same), else it is undecodable.
#[cold]
#[inline(never)]
fn count_invalid_body(c: &mut ConnState, m: &view::Meta<'_>, dir: Dir, at: Where) {
    match m.body_lossy() {
        MetaBody::Invalid => c.find(FindingKind::UndecodableBody, at, 0),
        body => {
            c.find(FindingKind::StringNotUtf8, at, 0);
            count_body(c, m, body, dir, at);
        }
    }
}

impl Consumer for Analyzer {
    fn warm(&mut self, conn: u32) {
        if let Some(c) = self.conns.get(&conn) {
            crate::hint::prefetch(&**c);
            if let Some(k) = &c.counts {
                crate::hint::prefetch(&**k);
            }
        }
    }

    fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
        match ev {
            Event::ConnOpen { pkt, conn } => {
                self.seen(pkt.ts);
                let id = conn.id.0;
                if let Some(o) = self.opened.as_mut() {
                    o.push(conn.first_packet, id);
                }
                if !self.wanted_conn(id) {
                    return Ok(());
                }
                // No state yet: a connection that only opens and closes (a SYN flood's) needs
                // none. Its first message, finding or transport fact makes one.
                if let Some(r) = conn.resumes {
                    self.resume(id, conn, r.conn.0);
                } else if conn.midstream {
                    self.note_finding(id, FindingKind::Midstream, *pkt, 0);
                }
            }
            Event::MsyncDetected { pkt, conn, transport } => {
                self.seen(pkt.ts);
                let id = conn.id.0;
                if self.wanted_conn(id) {
                    // Not yet a session: that takes a message inside the time window.
                    let c = self.conn(id, Some(conn));
                    c.transport = Some(*transport);
                }
            }
            // Sent only when another consumer shares the pipeline (it decoded for both): the
            // raw bytes are read again here, the views being cheaper than the owned message.
            Event::Message { ctx, raw, .. } => {
                self.take_in(ctx, raw, false);
            }
            Event::DecodeError { ctx, .. } => {
                self.seen(ctx.ts);
                self.decode_error(ctx);
            }
            Event::Frame { pkt, conn, problem, .. } => {
                self.seen(pkt.ts);
                match *problem {
                    FrameProblem::Oversize { .. } => {
                        self.note_finding(conn.0, FindingKind::Oversize, *pkt, 0)
                    }
                    FrameProblem::Skipped { bytes, .. } => {
                        self.note_finding(conn.0, FindingKind::SkippedBytes, *pkt, bytes)
                    }
                }
            }
            Event::Gap { pkt, conn, len, .. } => {
                self.seen(pkt.ts);
                self.note_finding(conn.0, FindingKind::LostSegment, *pkt, *len);
                if self.wanted_conn(conn.0) && self.in_window(pkt.ts) {
                    let c = self.conn(conn.0, None);
                    c.gap_bytes = c.gap_bytes.saturating_add(*len);
                }
            }
            Event::Tcp { pkt, conn, note, .. } => {
                self.seen(pkt.ts);
                let kind = match note {
                    TcpNote::Retransmission => FindingKind::Retransmission,
                    TcpNote::OutOfOrder => FindingKind::OutOfOrder,
                    TcpNote::Overlap => FindingKind::Overlap,
                    TcpNote::BufferLimit => FindingKind::BufferLimit,
                    TcpNote::Snaplen => FindingKind::Snaplen,
                    TcpNote::BadSequence => FindingKind::BadSequence,
                    TcpNote::KeepAlive => FindingKind::KeepAlive,
                    TcpNote::ZeroWindow => FindingKind::ZeroWindow,
                    TcpNote::ZeroWindowProbe => FindingKind::ZeroWindowProbe,
                    TcpNote::RstIgnored => FindingKind::RstIgnored,
                };
                self.note_finding(conn.0, kind, *pkt, 0);
            }
            Event::Transport { pkt, conn, note, dir } => {
                self.seen(pkt.ts);
                let finding = match note {
                    TransportNote::Lz4Crc { .. } => Some(FindingKind::Lz4Crc),
                    TransportNote::Lz4HistoryLost => Some(FindingKind::Lz4HistoryLost),
                    TransportNote::WsProblem { .. } => Some(FindingKind::WsProblem),
                    TransportNote::WsRejected { .. } => Some(FindingKind::WsRejected),
                    _ => None,
                };
                if let Some(k) = finding {
                    self.note_finding(conn.0, k, *pkt, 0);
                }
                if self.wanted_conn(conn.0) {
                    let c = self.conn(conn.0, None);
                    match note {
                        TransportNote::WsUpgrade { path, extensions, .. } => {
                            c.ws = Some((path.clone(), extensions.clone()));
                            // A refused upgrade retried on the same connection and accepted:
                            // the refusal (still a finding) is not how it ended.
                            if matches!(c.ws_end, Some(WsEnd::Refused { .. })) {
                                c.ws_end = None;
                            }
                        }
                        TransportNote::WsRejected { status, reason } => {
                            c.ws_end =
                                Some(WsEnd::Refused { status: *status, reason: reason.clone() });
                        }
                        TransportNote::WsClose { code, reason } if c.ws_end.is_none() => {
                            c.ws_end = Some(WsEnd::Close {
                                by_client: *dir == Dir::C2S,
                                code: *code,
                                reason: reason.clone(),
                            });
                        }
                        _ => {}
                    }
                }
            }
            Event::ConnClose { pkt, conn, reason, last, .. } => {
                self.seen(pkt.ts);
                let id = conn.id.0;
                // Its inflate allowance is of no use once it is closed; `live` runs for days.
                if !self.inflation.is_empty() {
                    self.inflation.remove(&id);
                }
                if !self.wanted_conn(id) {
                    return Ok(());
                }
                if *reason == CloseReason::Rst {
                    self.note_finding(id, FindingKind::Rst, *pkt, 0);
                }
                if !self.conns.contains_key(&id) {
                    return Ok(());
                }
                let c = conn_entry(&mut self.conns, id, Some(conn));
                // An idle or evicted connection ended with its last packet, not with the later
                // packet that found it idle (which may belong to traffic hours later).
                let at = match reason {
                    CloseReason::Idle | CloseReason::Evicted => (*last).min(pkt.ts),
                    _ => pkt.ts,
                };
                c.close = Some((*reason, at));
                c.settle(id, &mut self.tables);
                if !c.msync && !self.tables.split {
                    // Never a session: only its findings count, so it need not be kept. A SYN
                    // flood must not leave a connection state per SYN behind.
                    if let Some(c) = self.conns.remove(&id) {
                        let dst = self.folded.get_or_insert_with(|| Box::new(ConnState::new(None)));
                        fold_into(dst, *c, id);
                    }
                } else if self.fold_keep.is_some() {
                    self.finished.push_back(id);
                    self.fold_old_sessions();
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, totals: &Totals) -> io::Result<()> {
        let mut t = totals.clone();
        t.messages += self.own.messages;
        t.decode_errors += self.own.decode_errors;
        t.inflate_capped += self.own.inflate_capped;
        t.not_utf8_messages += self.own.not_utf8;
        self.own = OwnCounts::default();
        self.totals = Some(t);
        for (id, c) in &mut self.conns {
            if c.close.is_none() {
                let end = totals.last_ts.or(c.last_ts).unwrap_or_default();
                c.close = Some((CloseReason::CaptureEnd, end));
            }
            c.settle(*id, &mut self.tables);
        }
        Ok(())
    }

    /// The report needs none: it reads the views of [`Consumer::undecoded`] bodies.
    fn meta_bodies_wanted(&self) -> usize {
        0
    }

    fn defers_decoding(&self) -> bool {
        true
    }

    fn undecoded(&mut self, ctx: &MsgCtx<'_>, raw: &[u8]) -> io::Result<Option<Command>> {
        Ok(self.take_in(ctx, raw, true))
    }
}

/// `--user NAME` matches the login JID in full, without its resource, or by its name part (the
/// SDK prints `appkey_name@domain`, so the name is what follows the app key's `_`).
fn user_matches(c: &ConnState, want: &str) -> bool {
    if c.user.as_deref() == Some(want) || c.user_bare.as_deref() == Some(want) {
        return true;
    }
    let Some(bare) = c.user_bare.as_deref() else { return false };
    let local = bare.split('@').next().unwrap_or(bare);
    local == want || local.strip_suffix(want).is_some_and(|p| p.ends_with('_'))
}

fn spread(h: &Histogram) -> Spread {
    Spread { count: h.count(), p50_ns: h.quantile(0.5), max_ns: h.max() }
}

/// A bare JID string's app key (if any), name and domain (if any), as [`jid_string`] writes
/// them: `app#key_name@domain`.
fn split_bare(j: &str) -> (Option<&str>, &str, Option<&str>) {
    let (rest, domain) = match j.rsplit_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (j, None),
    };
    // The app key is `org#app`, joined to the name by the first `_` after its `#`.
    let key_end = rest.find('#').and_then(|h| rest.get(h..)?.find('_').map(|u| h + u));
    match key_end {
        Some(e) => (rest.get(..e), rest.get(e + 1..).unwrap_or_default(), domain),
        None => (None, rest, domain),
    }
}

/// Counts under a JID that a client wrote without its app key or domain (the web SDK writes
/// `{name}` alone; a session picked up mid-stream has no login to complete it from) go to the
/// complete JID of the same name, app key and domain that the capture shows, when there is
/// exactly one: otherwise the same user is two senders. The users' list is completed the same
/// way.
fn complete_partial_jids(
    senders: &mut HashMap<String, u64>,
    receivers: &mut HashMap<String, u64>,
    users: &mut Vec<String>,
) {
    let partial = |j: &str| {
        let (k, _, d) = split_bare(j);
        k.is_none() || d.is_none()
    };
    if !senders.keys().chain(receivers.keys()).chain(users.iter()).any(|j| partial(j)) {
        return;
    }
    // Complete JIDs by name, borrowed (`None` once a name has two), and what each partial one
    // becomes: only those are copied.
    let mut by_name: HashMap<&str, Option<&str>> = HashMap::new();
    for j in senders.keys().chain(receivers.keys()).chain(users.iter()) {
        if partial(j) {
            continue;
        }
        let slot = by_name.entry(split_bare(j).1).or_insert(Some(j.as_str()));
        if slot.is_some_and(|f| f != j) {
            *slot = None;
        }
    }
    let complete = |j: &str| -> Option<String> {
        let (k, n, d) = split_bare(j);
        let full = (*by_name.get(n)?)?;
        let (fk, _, fd) = split_bare(full);
        // The parts it has must be the complete one's.
        (k.is_none_or(|k| Some(k) == fk) && d.is_none_or(|d| Some(d) == fd))
            .then(|| full.to_string())
    };
    let moves = |m: &HashMap<String, u64>| -> Vec<(String, String)> {
        m.keys().filter(|j| partial(j)).filter_map(|j| Some((j.clone(), complete(j)?))).collect()
    };
    let (by_sender, by_receiver) = (moves(senders), moves(receivers));
    let user_moves: Vec<(usize, String)> = users
        .iter()
        .enumerate()
        .filter(|(_, u)| partial(u))
        .filter_map(|(i, u)| Some((i, complete(u)?)))
        .collect();
    drop(by_name);
    for (map, moved) in [(senders, by_sender), (receivers, by_receiver)] {
        for (from, to) in moved {
            if let Some(n) = map.remove(&from) {
                *map.entry(to).or_insert(0) += n;
            }
        }
    }
    for (i, full) in user_moves {
        if let Some(u) = users.get_mut(i) {
            *u = full;
        }
    }
    users.sort();
    users.dedup();
}

fn top_n(mut v: Vec<(String, u64)>, n: usize) -> Vec<(String, u64)> {
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

const NS_NAMES: [&str; 7] = ["STATISTIC", "CHAT", "MUC", "ROSTER", "CONFERENCE", "NOTIFY", "QUERY"];
const BODY_NAMES: [&str; 9] = [
    "NORMAL",
    "CHAT",
    "GROUPCHAT",
    "CHATROOM",
    "READ_ACK",
    "DELIVER_ACK",
    "RECALL",
    "CHANNEL_ACK",
    "EDIT",
];
/// `Content.type` names, then the rows of unknown types and of empty contents.
const CONTENT_NAMES: [&str; 11] = [
    "TEXT", "IMAGE", "VIDEO", "LOCATION", "VOICE", "FILE", "COMMAND", "CUSTOM", "COMBINE",
    "unknown", "(empty)",
];
/// The row of empty contents (of no type; acks carry one) in the content counts.
const EMPTY_CONTENT: usize = 10;

fn count_rows<const N: usize>(names: &[&str], m: &[[u64; N]; 2]) -> Vec<CountRow> {
    let mut rows = Vec::new();
    for i in 0..N {
        let up = m[0].get(i).copied().unwrap_or(0);
        let down = m[1].get(i).copied().unwrap_or(0);
        if up + down > 0 {
            let name = names.get(i).map_or_else(|| "unknown".to_string(), |s| s.to_string());
            rows.push(CountRow { name, up, down });
        }
    }
    rows
}

/// Adds per-direction counters.
fn add2<const N: usize>(dst: &mut [[u64; N]; 2], src: &[[u64; N]; 2]) {
    for (d, s) in dst.iter_mut().zip(src.iter()) {
        for (x, y) in d.iter_mut().zip(s.iter()) {
            *x += y;
        }
    }
}

/// A queue's row; `open_drains` count as stalls too.
fn queue_row(q: &QueueAcc, open_drains: u64) -> QueueRow {
    let mut sessions = q.sessions.clone();
    sessions.sort_unstable();
    QueueRow {
        queue: q.name.clone(),
        sessions,
        notices: q.notices,
        pulls: q.pulls,
        metas: q.metas,
        unread_announced: q.unread_announced.map(|x| x.1),
        last_next_key: q.last_next_key.map(|x| x.1),
        is_last_reached: q.is_last_reached,
        notice_to_pull: spread(&q.notice_to_pull),
        pull_rtt: spread(&q.pull_rtt),
        drains: q.drains,
        drain_pages: q.drain_pages,
        drain_metas: q.drain_metas,
        drain_time: spread(&q.drain_time),
        stalls: q.stalls + open_drains,
    }
}

fn build_report(a: &Analyzer) -> Report {
    let opts = &a.opts;
    let mut ids: Vec<u32> = a
        .conns
        .iter()
        .filter(|(id, c)| {
            a.wanted_conn(**id) && opts.user.as_deref().is_none_or(|u| user_matches(c, u))
        })
        .map(|(id, _)| *id)
        .collect();
    ids.sort_unstable();
    let mut conns: Vec<(u32, &ConnState)> =
        ids.iter().filter_map(|id| a.conns.get(id).map(|c| (*id, &**c))).collect();
    // Folded sessions count in every total, under no connection of their own.
    if let Some(f) = a.folded.as_deref() {
        conns.push((FOLDED, f));
    }

    let mut rep = Report {
        // The capture's first packet as the reader saw it: a shard's own first packet may be a
        // later one, and a fragment held for its datagram reaches its shard late.
        capture_start: a
            .capture_start
            .or(a.totals.as_ref().and_then(|t| t.first_ts))
            .or(a.first_seen),
        capture_end: a
            .totals
            .as_ref()
            .and_then(|t| t.last_ts)
            .or_else(|| conns.iter().map(|(_, c)| c.end_ts()).max()),
        zone: opts.zone.clone(),
        filter: crate::report::Filter {
            user: opts.user.clone(),
            conns: opts.conns.clone(),
            since: opts.since.map(|b| b.resolve(a.start(), &opts.zone)),
            until: opts.until.map(|b| b.resolve(a.start(), &opts.zone)),
        },
        ..Default::default()
    };

    for (_, c) in &conns {
        for k in &c.zones.app_keys {
            if !rep.app_keys.contains(k) {
                rep.app_keys.push(k.clone());
            }
        }
        for d in &c.zones.domains {
            if !rep.domains.contains(d) {
                rep.domains.push(d.clone());
            }
        }
    }
    rep.app_keys.sort();
    rep.domains.sort();

    // Sessions. Rows sized once: grown by doubling, ten thousand of them held up to 1.6 times
    // their size while the analysis state is still alive, at the run's peak.
    rep.sessions.reserve_exact(conns.iter().filter(|(_, c)| c.msync).count());
    let mut users: Vec<String> = Vec::new();
    for (id, c) in conns.iter().filter(|(_, c)| c.msync) {
        let (client, server, midstream) = c.meta.as_ref().map_or_else(
            || ("?".to_string(), "?".to_string(), false),
            // A resumed connection's beginning was seen: in the one it goes on with.
            |m| (m.client.to_string(), m.server.to_string(), m.midstream && m.resumes.is_none()),
        );
        let login = match (&c.login.answer, c.login.request) {
            (Some(l), _) => Some(l.clone()),
            (None, Some((_, frame))) => Some(LoginInfo {
                status: "UNANSWERED".into(),
                reason: None,
                latency_ns: None,
                session_id: None,
                frame,
            }),
            (None, None) => None,
        };
        let interval = match (c.hb_first, c.hb_last) {
            (Some(f), Some(l)) if c.hb_count > 1 => Some(l.since(f) / (c.hb_count as i64 - 1)),
            _ => None,
        };
        if let Some(u) = &c.user_bare {
            users.push(u.clone());
        }
        let start = c.start_ts();
        let end = c.end_ts();
        rep.sessions.push(SessionRow {
            conn: *id,
            client,
            server,
            transport: c.transport.map(Transport::as_str),
            ws_path: c.ws.as_ref().and_then(|w| w.0.clone()),
            ws_extensions: c.ws.as_ref().and_then(|w| w.1.clone()),
            midstream,
            resumes: c.meta.as_ref().and_then(|m| m.resumes).map(|r| (r.conn.0, r.idle_ns)),
            user: c.user.clone(),
            user_inferred: c.user_inferred,
            resource: c.resource.clone(),
            device_uuid: c.device_uuid.clone(),
            device_name: c.device_name.clone(),
            os: c.os.clone(),
            sdk_version: c.sdk_version.clone(),
            login,
            start,
            end,
            duration_ns: end.since(start),
            close: c.close.map_or("open".to_string(), |(r, _)| r.as_str().to_string()),
            ws_end: c.ws_end.clone(),
            logout: c.logout,
            msgs_up: c.msgs[0],
            msgs_down: c.msgs[1],
            bytes_up: c.bytes[0],
            bytes_down: c.bytes[1],
            heartbeats: Heartbeats {
                count: c.hb_count,
                interval_ns: interval,
                rtt_p50_ns: c.hb_rtt.quantile(0.5),
                rtt_max_ns: c.hb_rtt.max(),
            },
            errors: c.errors_total,
            decode_errors: c.decode_errors,
        });
    }
    users.extend(a.folded_users.iter().cloned());
    users.sort();
    users.dedup();

    // Entries of the run-wide tables that belong to the connections shown.
    let selected = |conn: u32| conn == ALL || ids.binary_search(&conn).is_ok();

    // Latency.
    for kind in Exchange::ALL {
        let mut h = Histogram::new();
        let (mut req, mut ans) = (0u64, 0u64);
        for (_, c) in &conns {
            if let Some(l) = c.lat.get(kind.index()) {
                req += l.requests;
                ans += l.answered;
            }
        }
        for (k, hs) in &a.tables.latency {
            if let Some(x) = hs.get(kind.index()).filter(|_| selected(*k)) {
                h.merge(x);
            }
        }
        rep.latency.push(LatencyRow {
            kind: kind.name(),
            count: req,
            answered: ans,
            unanswered: req.saturating_sub(ans),
            min_ns: h.min(),
            p50_ns: h.quantile(0.5),
            p90_ns: h.quantile(0.9),
            p99_ns: h.quantile(0.99),
            max_ns: h.max(),
        });
    }

    // Queues, merged by JID over the tables' entries of the connections shown. Drains still
    // open (no settle yet: a running report) count as stalls too.
    let mut open: HashMap<Key, u64> = HashMap::new();
    for (id, c) in &conns {
        for (h, l) in &c.live {
            if l.drain.is_some() {
                *open.entry(a.tables.key(*id, *h)).or_insert(0) += 1;
            }
        }
    }
    // Most names have one entry (tables not split): those rows are read in place; only
    // entries of one queue on several connections are merged (into a copy).
    let mut by_name: HashMap<&str, Vec<(&Key, &QueueAcc)>> = HashMap::new();
    for (k, q) in &a.tables.queues {
        if selected(k.0) {
            by_name.entry(q.name.as_str()).or_default().push((k, &**q));
        }
    }
    let mut queues: Vec<QueueRow> = Vec::with_capacity(by_name.len());
    queues.extend(by_name.into_values().filter_map(|entries| {
        let stalls: u64 = entries.iter().map(|(k, _)| open.get(*k).copied().unwrap_or(0)).sum();
        match entries.as_slice() {
            [(_, q)] => Some(queue_row(q, stalls)),
            [(_, first), rest @ ..] => {
                let mut acc = (*first).clone();
                for (_, q) in rest {
                    acc.merge(q);
                }
                Some(queue_row(&acc, stalls))
            }
            [] => None,
        }
    }));
    // Keys sorted, rows then moved once: a row is a few hundred bytes, and a sort that moves
    // rows moved each of them about log2(n) times.
    queues.sort_by_cached_key(|q| (std::cmp::Reverse(q.notices + q.pulls), q.queue.clone()));
    rep.queues = queues;

    // Errors.
    let mut emap: HashMap<String, ErrorRow> = HashMap::new();
    let mut cmd_acc: HashMap<String, HashMap<String, u64>> = HashMap::new();
    let mut reason_acc: HashMap<String, HashMap<String, u64>> = HashMap::new();
    for (id, c) in &conns {
        for (code, e) in &c.errors {
            let code = &capped_code(&emap, code.clone(), ERROR_ROWS_CAP).unwrap_or_else(|o| o);
            let row = emap.entry(code.clone()).or_insert_with(|| ErrorRow {
                code: code.clone(),
                source: e.source,
                count: 0,
                commands: Vec::new(),
                reasons: Vec::new(),
                first: e.first,
                last: e.last,
                sessions: Vec::new(),
                users: Vec::new(),
            });
            row.count += e.count;
            if e.first.ts < row.first.ts {
                row.first = e.first;
            }
            if e.last.ts > row.last.ts {
                row.last = e.last;
            }
            if *id != FOLDED {
                row.sessions.push(*id);
            }
            // Deduplicated once, after the sort below: a `contains` here made this loop
            // quadratic in the sessions that share an error code.
            if let Some(u) = &c.user_bare {
                row.users.push(u.clone());
            }
            let ca = cmd_acc.entry(code.clone()).or_default();
            for (cmd, n) in &e.commands {
                *ca.entry(cmd.name().into_owned()).or_insert(0) += n;
            }
            let ra = reason_acc.entry(code.clone()).or_default();
            for (r, n) in &e.reasons {
                *ra.entry(r.clone()).or_insert(0) += n;
            }
        }
    }
    let mut errors: Vec<ErrorRow> = emap
        .into_values()
        .map(|mut r| {
            if let Some(ca) = cmd_acc.remove(&r.code) {
                r.commands = top_n(ca.into_iter().collect(), usize::MAX);
            }
            if let Some(ra) = reason_acc.remove(&r.code) {
                r.reasons = top_n(ra.into_iter().collect(), 3);
            }
            r.users.sort_unstable();
            r.users.dedup();
            r
        })
        .collect();
    errors.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.code.cmp(&b.code)));
    rep.errors = errors;

    // Messages.
    let mut ns = [[0u64; 8]; 2];
    let mut body = [[0u64; 10]; 2];
    let mut content = [[0u64; 11]; 2];
    let mut senders: HashMap<String, u64> = HashMap::new();
    let mut receivers: HashMap<String, u64> = HashMap::new();
    for (_, c) in &conns {
        if let Some(k) = &c.counts {
            add2(&mut ns, &k.ns);
            add2(&mut body, &k.body);
            add2(&mut content, &k.content);
        }
    }
    for (k, p) in &a.tables.peers {
        if !selected(k.0) {
            continue;
        }
        if p.sent > 0 {
            *senders.entry(p.name.clone()).or_insert(0) += p.sent;
        }
        if p.received > 0 {
            *receivers.entry(p.name.clone()).or_insert(0) += p.received;
        }
    }
    complete_partial_jids(&mut senders, &mut receivers, &mut users);
    rep.messages = MessageStats {
        namespaces: count_rows(&NS_NAMES, &ns),
        body_types: count_rows(&BODY_NAMES, &body),
        content_types: count_rows(&CONTENT_NAMES, &content),
        top_senders: top_n(senders.into_iter().collect(), 50),
        top_receivers: top_n(receivers.into_iter().collect(), 50),
    };

    // Findings.
    let mut fmap: HashMap<FindingKind, FindingRow> = HashMap::new();
    for (id, c) in &conns {
        let mut extra: Vec<(FindingKind, Where)> = Vec::new();
        if c.msync && !c.provision_sent && !c.resumed() {
            let w = Where {
                conn: *id,
                frame: c.meta.as_ref().map_or(0, |m| m.first_packet),
                ts: c.start_ts(),
            };
            extra.push((FindingKind::NoProvision, w));
        }
        let own = c.findings.iter().map(|(k, f)| (*k, f.count, f.value, f.places.clone()));
        let extra = extra.into_iter().map(|(k, w)| (k, 1, 0, vec![w]));
        for (k, count, value, places) in own.chain(extra) {
            let row = fmap.entry(k).or_insert_with(|| FindingRow {
                severity: k.severity(),
                kind: k.id(),
                summary: String::new(),
                count: 0,
                value: None,
                places: Vec::new(),
                conns: Vec::new(),
            });
            row.count += count;
            let v = row.value.unwrap_or(0);
            row.value = Some(if k == FindingKind::SlowExchange {
                v.max(value)
            } else {
                v.saturating_add(value)
            });
            if *id == FOLDED {
                // Connections that were never sessions share one aggregate; its places still
                // name them.
                row.conns.extend(places.iter().map(|w| w.conn));
            } else {
                row.conns.push(*id);
            }
            row.places.extend(places);
        }
    }
    if a.capture_drops > 0 {
        let k = FindingKind::CaptureDrops;
        fmap.insert(
            k,
            FindingRow {
                severity: k.severity(),
                kind: k.id(),
                summary: String::new(),
                count: a.capture_drops,
                value: None,
                places: Vec::new(),
                conns: Vec::new(),
            },
        );
    }
    let order = &a.time_order;
    if let Some((step, frame, ts)) = order.largest {
        let k = FindingKind::TimeBackwards;
        // The first step back and the largest: where the capture's clock went wrong first, and
        // worst.
        let places = order
            .first
            .map(|(f, t)| Where { conn: crate::report::NO_CONN, frame: f, ts: t })
            .into_iter()
            .chain([Where { conn: crate::report::NO_CONN, frame, ts }])
            .collect();
        fmap.insert(
            k,
            FindingRow {
                severity: k.severity(),
                kind: k.id(),
                summary: String::new(),
                count: order.steps_back,
                value: Some(u64::try_from(step).unwrap_or(0)),
                places,
                conns: Vec::new(),
            },
        );
    }
    let mut fvec: Vec<(FindingKind, FindingRow)> = fmap.into_iter().collect();
    // Most severe, then most frequent; ties in the order of the kinds (capture problems first,
    // as they cast doubt on everything after them).
    fvec.sort_by(|(ka, a), (kb, b)| {
        b.severity.cmp(&a.severity).then(b.count.cmp(&a.count)).then(ka.cmp(kb))
    });
    let findings: Vec<FindingRow> = fvec
        .into_iter()
        .map(|(k, mut r)| {
            let v = r.value.unwrap_or(0);
            r.summary = k.summary(v);
            if !matches!(
                k,
                FindingKind::LostSegment
                    | FindingKind::SkippedBytes
                    | FindingKind::SlowExchange
                    | FindingKind::TimeBackwards
            ) {
                r.value = None;
            }
            r.places.sort_by_key(|w| (w.frame, w.conn));
            // Two requests in one packet are one place to look at.
            r.places.dedup_by_key(|w| (w.frame, w.conn));
            r.places.truncate(PLACES_CAP);
            r.conns.sort_unstable();
            r.conns.dedup();
            r
        })
        .collect();
    rep.findings = findings;

    // Overview.
    let mut per_cmd = [[0u64; 6]; 2];
    let mut msgs = 0;
    let mut decode_errors = 0;
    let mut gap = 0;
    for (_, c) in &conns {
        add2(&mut per_cmd, &c.commands);
        msgs += c.msgs[0] + c.msgs[1];
        decode_errors += c.decode_errors;
        gap = c.gap_bytes.saturating_add(gap);
    }
    let t = a.totals.clone().unwrap_or_default();
    rep.overview = Overview {
        packets: t.packets,
        tcp_connections: if t.tcp_connections > 0 {
            t.tcp_connections
        } else {
            a.conns.len() as u64
        },
        msync_connections: if t.msync_connections > 0 {
            t.msync_connections
        } else {
            a.conns.values().filter(|c| c.msync).count() as u64
        },
        tls_connections: t.tls_connections,
        websocket_connections: t.websocket_connections,
        other_connections: t.other_connections,
        sessions: rep.sessions.len() as u64,
        sessions_folded: a.folded_sessions,
        messages: msgs,
        per_command: CMD_NAMES
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let at = |d: &[u64; 6]| d.get(i).copied().unwrap_or(0);
                let (u, d) = (at(&per_cmd[0]), at(&per_cmd[1]));
                (u + d > 0).then(|| (n.to_string(), u, d))
            })
            .collect(),
        users,
        decode_errors,
        gap_bytes: gap,
        worst: rep.findings.iter().take(3).cloned().collect(),
        not_analysed: NotAnalysed {
            malformed: t.net.malformed,
            unsupported_link: t.net.unsupported_link,
            non_ip: t.net.non_ip,
            non_tcp: t.net.non_tcp,
            fragments_dropped: t.net.ipv4_fragments_dropped + t.net.ipv6_fragments_dropped,
            after_close: t.net.late_data_packets,
            after_close_bytes: t.net.late_data_bytes,
        },
        connections_evicted: t.net.evicted,
        time_order: a.time_order,
    };
    rep
}
