//! Deterministic synthesizer of MSync captures over raw TCP (Ethernet, IPv4 or IPv6, 4-byte
//! big-endian length prefix + protobuf) or over WebSocket as the web SDK speaks it (the `ws`
//! submodule), optionally with LZ4 protocol compression, for samples, tests and benchmarks.
//!
//! [`generate`] simulates many concurrent client sessions (login, unread, sends and their
//! acks, notices and multi-page pulls, heartbeats, receipts, recalls, group/roster/statistic
//! metas, logout) with optional impairments, and returns a [`GroundTruth`] against which
//! every number an analysis reports can be checked. [`seed_capture`] reproduces the exchange
//! of the protocol seed's client log field for field.
//!
//! Invariants:
//! - Same [`SynthConfig`] → byte-identical output (own PRNG, no hash-map iteration, no clock).
//! - Memory stays bounded by the sessions' state and the packets in flight: events are taken
//!   from a priority queue in time order and packets are written as soon as no future event
//!   can precede them; per-message truth is only kept when `collect_truth` is set.
//! - The capture point is the server (see the `tcp` submodule): a request's latency in the
//!   truth is the difference of capture timestamps of the last bytes of request and response.
//! - Midstream connections are cut at a step boundary: the first activity that starts at or
//!   after the capture start is the first one captured, whole.
//! - The truth holds MSync bytes as encoded, before any LZ4 wrapping, deflate or framing; the
//!   wrapping and framing state (LZ4 history, deflate window) lives in the session and
//!   advances in stream order, including before the capture starts.
//! - With the default (raw TCP, no LZ4) the PRNG is drawn exactly as before these options
//!   existed, so existing seeds give the same bytes.

// The synthesizer only indexes buffers it built itself, never input read from outside.
#![allow(clippy::indexing_slicing)]

mod content;
mod rng;
mod seed;
mod tcp;
#[cfg(test)]
mod tests;
pub(crate) mod ws;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use prost::Message;

use crate::capture::write::CaptureWriter;
use crate::capture::{LinkType, Timestamp};
use crate::msync::lz4::Lz4Encoder;
use crate::msync::pb;
use crate::msync::pb::m_sync::Command;
use crate::msync::pb::message_body::Type as BodyType;
use crate::msync::pb::meta::NameSpace;
use crate::msync::pb::status::ErrorCode;
use crate::net::Dir;

use content::{enc, full_jid, jid, recv_env, send_env, short_jid, APP_KEY, DOMAIN, GROUP_DOMAIN};
use rng::Rng;
use tcp::{Conn, Host, Impair, Sink};
use ws::Deflater;

pub use crate::capture::write::CaptureFormat;
pub use seed::seed_capture;
pub use tcp::ImpairmentCounts;

const MS: i64 = 1_000_000;
const SEC: i64 = 1_000_000_000;

/// `Provision.CompressType.COMPRESS_LZ4`.
const COMPRESS_LZ4: i32 = 2;

/// How sessions carry their MSync messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SynthTransport {
    /// 4-byte length prefix per message (native SDKs).
    #[default]
    Tcp,
    /// HTTP/1.1 upgrade, then one binary WebSocket message per MSync message (web SDK).
    WebSocket,
}

/// permessage-deflate accepted by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WsDeflate {
    /// False: the server answers `server_no_context_takeover; client_no_context_takeover` and
    /// every message is compressed with an empty window.
    pub context_takeover: bool,
}

/// `Provision.CompressDirection`: which directions the server's PROVISION answer wraps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lz4Direction {
    /// Client messages only; the answer leaves the direction out, as the real server does.
    OnlyUp,
    OnlyDown,
    Bi,
}

/// LZ4 protocol compression offered by the client and accepted by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lz4Mode {
    pub direction: Lz4Direction,
}

impl Lz4Mode {
    /// Whether messages of `dir` are wrapped after the PROVISION pair.
    pub fn wraps(self, dir: Dir) -> bool {
        matches!(
            (self.direction, dir),
            (Lz4Direction::Bi, _)
                | (Lz4Direction::OnlyUp, Dir::C2S)
                | (Lz4Direction::OnlyDown, Dir::S2C)
        )
    }
}

/// Everything that shapes a synthetic capture.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    pub seed: u64,
    /// Number of client sessions (one TCP connection each).
    pub clients: usize,
    /// Length of the captured period; sessions still open at its end stay open.
    pub duration_secs: f64,
    /// Mean pause between two activities of a session (exponential).
    pub mean_gap_secs: f64,
    /// An idle session sends an empty UNREAD after this long.
    pub heartbeat_secs: f64,
    /// Fraction of sent messages that go to a group (GROUPCHAT).
    pub group_fraction: f64,
    /// Most metas in one pull answer; longer queues take several pulls.
    pub page_size: usize,
    /// TCP payload per segment: small values split messages, large ones carry several.
    pub mss: usize,
    /// Per-segment probability that the capture misses it (the receiver still ACKs it).
    pub loss: f64,
    /// Per-segment probability of swapping it with the next one of its burst.
    pub reorder: f64,
    /// Per-segment probability that the packet appears twice.
    pub duplicate: f64,
    /// Per-segment probability that it is sent again 200-300 ms later (maybe split in two);
    /// this recovers a loss of the same segment.
    pub retransmit: f64,
    /// Every other session (0, 2, 4, ...) began before the capture: its handshake, login and
    /// first activities are not in it.
    pub midstream: bool,
    /// Fraction of messages with `compress_algorimth = 1` and a zlib payload.
    pub zlib: f64,
    /// Deflate level of those payloads, 0-9 (zlib's default, 6, unless set); a lower level
    /// makes synthesizing faster, which the round-trip fuzz target wants.
    pub zlib_level: u32,
    /// Fraction of requests answered with an error status.
    pub error_rate: f64,
    /// Fraction of requests never answered.
    pub unanswered: f64,
    pub format: CaptureFormat,
    pub nanos: bool,
    pub ipv6: bool,
    /// Capture time of offset 0 (sessions start after it; midstream ones before).
    pub start_ts: Timestamp,
    pub server_port: u16,
    /// Server response time: base plus an exponential jitter of the given mean; PROVISION
    /// takes three times as long.
    pub latency_base_ms: f64,
    pub latency_jitter_ms: f64,
    /// Client round-trip times are uniform in this range.
    pub rtt_min_ms: f64,
    pub rtt_max_ms: f64,
    /// Keep every message and request in the [`GroundTruth`] (turn off for huge captures).
    pub collect_truth: bool,
    pub transport: SynthTransport,
    /// WebSocket only: permessage-deflate negotiated (the client always offers it).
    pub ws_deflate: Option<WsDeflate>,
    /// WebSocket only: probability that a message is sent as 2-4 frames.
    pub ws_fragment: f64,
    /// WebSocket only: per server message, probability of a server ping before it or between
    /// its fragments; the client answers with a pong after the burst.
    pub ws_ping: f64,
    /// WebSocket only: orderly ends exchange close frames (with no status code, as the web
    /// SDK does, or on some sessions code 1000 and a reason) before the TCP FIN.
    pub ws_close: bool,
    /// WebSocket only: fraction of sessions whose upgrade the server refuses (401, then FIN).
    pub ws_reject: f64,
    /// WebSocket only: client frames carry no mask, against RFC 6455, as test harnesses and
    /// some non-browser clients send them.
    pub ws_unmasked: bool,
    /// LZ4 protocol compression negotiated at login (both transports; on raw TCP the envelope
    /// sits inside the length-prefixed frame). Midstream sessions' negotiation is not captured.
    pub lz4: Option<Lz4Mode>,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 1,
            clients: 4,
            duration_secs: 60.0,
            mean_gap_secs: 3.0,
            heartbeat_secs: 30.0,
            group_fraction: 0.3,
            page_size: 4,
            mss: 1448,
            loss: 0.0,
            reorder: 0.0,
            duplicate: 0.0,
            retransmit: 0.0,
            midstream: false,
            zlib: 0.0,
            zlib_level: 6,
            error_rate: 0.0,
            unanswered: 0.0,
            format: CaptureFormat::Pcap,
            nanos: false,
            ipv6: false,
            // 2017-10-26 12:00:00 UTC, the day of the seed's log.
            start_ts: Timestamp::from_secs_nanos(1_509_019_200, 0),
            server_port: 6717,
            latency_base_ms: 15.0,
            latency_jitter_ms: 10.0,
            rtt_min_ms: 20.0,
            rtt_max_ms: 80.0,
            collect_truth: true,
            transport: SynthTransport::Tcp,
            ws_deflate: None,
            ws_fragment: 0.0,
            ws_ping: 0.0,
            ws_close: true,
            ws_reject: 0.0,
            ws_unmasked: false,
            lz4: None,
        }
    }
}

/// Which request a [`RequestTruth`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    Provision,
    /// The UNREAD right after login.
    Unread,
    /// An empty UNREAD sent after `heartbeat_secs` of silence (UNREAD on the wire).
    Heartbeat,
    /// A SYNC carrying a meta (message, receipt, recall), acked with meta_id/server_id.
    Send,
    /// A SYNC pulling a queue (queue, key).
    Pull,
    Logout,
}

/// How a login went, as the capture shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginTruth {
    /// The login happened before the capture started (midstream).
    NotCaptured,
    /// Answered; `code` 0 is OK. `latency_ns` is the server's response time.
    Answered { code: i32, latency_ns: i64 },
    /// Never answered: the client reset the connection 10 s later.
    Unanswered,
}

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnEnd {
    /// The client closed with FIN (after a LOGOUT exchange when `logout`).
    ClientFin { logout: bool },
    /// The client reset the connection.
    ClientRst,
    /// The server closed with FIN after refusing the login.
    ServerFin,
    /// Still open when the capture ended.
    Open,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnTruth {
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// The user's full JID in SDK notation (`app_key_name@domain/resource`).
    pub user: String,
    pub midstream: bool,
    pub login: LoginTruth,
    pub end: ConnEnd,
    /// Time of the connection's first packet in the capture.
    pub first_ts: Timestamp,
    /// Packet records of the connection.
    pub packets: u64,
    /// MSync messages carried, by [`Dir::index`] (counted even without `collect_truth`).
    pub messages: [u64; 2],
    /// Of those, the ones lost (see [`MessageTruth::lost`]).
    pub lost_messages: [u64; 2],
    /// The server refused the WebSocket upgrade: no MSync follows (login is `NotCaptured`).
    pub ws_rejected: bool,
    /// The close frame the client sent (Some(None): one without a status code), if any.
    pub ws_close: Option<Option<u16>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageTruth {
    /// Connection index, in order of first packet in the capture.
    pub conn: u32,
    pub dir: Dir,
    /// When the last byte was first sent: the capture time of the packet carrying it, except
    /// that reordering moves packets but not this time (so it grows with stream order), and a
    /// lost segment has no packet.
    pub ts: Timestamp,
    /// When all bytes up to the message's end have appeared in the capture (in any order,
    /// retransmissions included); equals `ts` without impairments; None when lost.
    pub complete_ts: Option<Timestamp>,
    /// The MSync protobuf bytes (without the 4-byte length prefix).
    pub bytes: Vec<u8>,
    /// `MSync.command` (SYNC=0, UNREAD=1, NOTICE=2, PROVISION=3, LOGOUT=4).
    pub command: i32,
    /// Some byte was in a segment lost and never retransmitted: no dissector can recover it.
    pub lost: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestTruth {
    pub conn: u32,
    pub kind: RequestKind,
    /// Index into [`GroundTruth::messages`].
    pub request: usize,
    /// Index of the answer, None when unanswered.
    pub response: Option<usize>,
    /// The answer's status code (0 OK), None when unanswered.
    pub status: Option<i32>,
    /// Injected server response time: `messages[response].ts - messages[request].ts`.
    pub latency_ns: Option<i64>,
    /// The sent meta's id (Send only).
    pub meta_id: Option<u64>,
}

/// What the synthesizer put in the capture.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroundTruth {
    /// By connection index (order of first packet); sessions that left no packet are absent.
    pub connections: Vec<ConnTruth>,
    /// Every MSync message of the capture, ordered by (ts, conn, stream order); empty unless
    /// `collect_truth`.
    pub messages: Vec<MessageTruth>,
    /// Every captured request, in the order of its message; empty unless `collect_truth`.
    pub requests: Vec<RequestTruth>,
    pub impairments: ImpairmentCounts,
    /// Packet records written.
    pub packets: u64,
}

impl GroundTruth {
    /// Injected latencies of answered requests of one kind, in capture order.
    pub fn latencies(&self, kind: RequestKind) -> Vec<i64> {
        self.requests.iter().filter(|r| r.kind == kind).filter_map(|r| r.latency_ns).collect()
    }

    /// Requests answered with a non-OK status.
    pub fn errors(&self) -> impl Iterator<Item = &RequestTruth> {
        self.requests.iter().filter(|r| r.status.is_some_and(|s| s != 0))
    }

    /// Requests never answered.
    pub fn unanswered(&self) -> impl Iterator<Item = &RequestTruth> {
        self.requests.iter().filter(|r| r.response.is_none())
    }
}

struct RawMsg {
    sess: usize,
    dir: Dir,
    ts: i64,
    complete: Option<i64>,
    bytes: Vec<u8>,
    command: i32,
    lost: bool,
    gen: u64,
}

struct RawReq {
    sess: usize,
    kind: RequestKind,
    req: u64,
    resp: Option<u64>,
    status: Option<i32>,
    latency: Option<i64>,
    meta_id: Option<u64>,
}

struct Req {
    kind: RequestKind,
    msg: pb::MSync,
    /// None: never answered.
    resp: Option<pb::MSync>,
    status: Option<i32>,
    meta_id: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Connect,
    Unread,
    Pull,
    Active,
    Done,
}

struct Session {
    conn: Conn,
    name: String,
    resource: String,
    uuid: String,
    device: String,
    os: i32,
    phase: Phase,
    end_at: i64,
    midstream: bool,
    /// Queues still to drain: (queue, metas left, key of the next page).
    pulls: VecDeque<(pb::Jid, u32, Option<u64>)>,
    last_active: i64,
    my_ids: Vec<u64>,
    peer_ids: Vec<(String, u64)>,
    counter: u64,
    told_elsewhere: bool,
    /// Captured messages and lost ones, by [`Dir::index`].
    counts: [(u64, u64); 2],
    login: LoginTruth,
    end: ConnEnd,
    /// The LZ4 encoder of each direction ([`Dir::index`]) once the login enabled it.
    lz4: [Option<Lz4Encoder>; 2],
    /// Set once the WebSocket upgrade succeeded: later messages are framed.
    ws: Option<WsConn>,
    ws_rejected: bool,
    ws_close: Option<Option<u16>>,
}

impl Session {
    /// A session of the given identity that has not started: nothing sent, nothing counted.
    /// Callers override the schedule fields (`phase`, `end_at`, `midstream`, `last_active`).
    fn new(
        conn: Conn,
        name: String,
        resource: String,
        uuid: String,
        device: String,
        os: i32,
    ) -> Self {
        Session {
            conn,
            name,
            resource,
            uuid,
            device,
            os,
            phase: Phase::Connect,
            end_at: i64::MAX,
            midstream: false,
            pulls: VecDeque::new(),
            last_active: 0,
            my_ids: Vec::new(),
            peer_ids: Vec::new(),
            counter: 0,
            told_elsewhere: false,
            counts: [(0, 0); 2],
            login: LoginTruth::NotCaptured,
            end: ConnEnd::Open,
            lz4: [None, None],
            ws: None,
            ws_rejected: false,
            ws_close: None,
        }
    }
}

/// WebSocket state of an upgraded session.
struct WsConn {
    /// Per direction, when permessage-deflate was negotiated.
    deflaters: Option<[Deflater; 2]>,
    pings: u32,
}

struct Engine<'a, W: Write> {
    cfg: &'a SynthConfig,
    rng: Rng,
    sink: Sink<W>,
    imp: Impair,
    msgs: Vec<RawMsg>,
    reqs: Vec<RawReq>,
    gen: u64,
    server_seq: u64,
    users: Vec<String>,
    groups: Vec<String>,
    start_ms: i64,
    /// Server response time forced by the seed capture instead of drawn.
    fixed_latency: Option<i64>,
}

impl<W: Write> Engine<'_, W> {
    fn ms(&self, t: i64) -> u64 {
        u64::try_from(self.start_ms + t / MS).unwrap_or(0)
    }

    /// Snowflake-like server ids: milliseconds in the high bits, a counter below.
    fn server_id(&mut self, t: i64) -> u64 {
        self.server_seq += 1;
        (self.ms(t).saturating_sub(1_400_000_000_000) << 22) | (self.server_seq & 0x3f_ffff)
    }

    fn latency(&mut self, kind: RequestKind) -> i64 {
        if let Some(l) = self.fixed_latency {
            return l;
        }
        let f = if kind == RequestKind::Provision { 3.0 } else { 1.0 };
        let ms = self.cfg.latency_base_ms * f + self.rng.exp(self.cfg.latency_jitter_ms.max(0.0));
        ((ms * MS as f64) as i64).max(100_000)
    }

    fn record(
        &mut self,
        s: &mut Session,
        dir: Dir,
        t: &tcp::MsgTiming,
        m: &pb::MSync,
        bytes: Vec<u8>,
    ) -> u64 {
        self.gen += 1;
        if s.conn.captured {
            s.counts[dir.index()].0 += 1;
            s.counts[dir.index()].1 += u64::from(t.lost);
        }
        if self.cfg.collect_truth && s.conn.captured {
            self.msgs.push(RawMsg {
                sess: s.conn.sess,
                dir,
                ts: t.ts,
                complete: t.complete,
                bytes,
                command: m.command.unwrap_or(0),
                lost: t.lost,
                gen: self.gen,
            });
        }
        self.gen
    }

    fn burst(
        &mut self,
        s: &mut Session,
        dir: Dir,
        t: i64,
        ms: &[pb::MSync],
    ) -> (tcp::BurstResult, Vec<u64>) {
        let bytes: Vec<Vec<u8>> = ms.iter().map(|m| m.encode_to_vec()).collect();
        let (stream, ends, pings) = self.wire(s, dir, &bytes);
        let mut r = s.conn.send_stream(
            &mut self.sink,
            &mut self.rng,
            &mut self.imp,
            dir,
            t,
            &stream,
            &ends,
        );
        if !pings.is_empty() {
            // The client answers the server's pings once the burst is in.
            let mut pongs = Vec::new();
            for p in &pings {
                let key = self.client_mask();
                ws::frame(&mut pongs, true, false, ws::OP_PONG, p, key);
            }
            let rp = s.conn.send_stream(
                &mut self.sink,
                &mut self.rng,
                &mut self.imp,
                Dir::C2S,
                r.acked_at + 200_000,
                &pongs,
                &[],
            );
            r.acked_at = rp.acked_at;
        }
        let mut gens = Vec::with_capacity(ms.len());
        for ((m, b), timing) in ms.iter().zip(bytes).zip(r.msgs.iter()) {
            gens.push(self.record(s, dir, timing, m, b));
        }
        (r, gens)
    }

    fn mask_key(&mut self) -> [u8; 4] {
        (self.rng.next_u64() as u32).to_be_bytes()
    }

    /// A client frame's key, or none with `ws_unmasked`. The key is drawn either way, so that
    /// an unmasked capture holds the same sessions as its masked twin.
    fn client_mask(&mut self) -> Option<[u8; 4]> {
        let key = self.mask_key();
        (!self.cfg.ws_unmasked).then_some(key)
    }

    /// The byte stream of a burst of encoded messages: LZ4-wrapped when enabled for `dir`,
    /// then length-prefixed or WebSocket-framed. Returns the stream, each message's byte
    /// range in it, and the payloads of the pings it carries.
    #[allow(clippy::type_complexity)]
    fn wire(
        &mut self,
        s: &mut Session,
        dir: Dir,
        msgs: &[Vec<u8>],
    ) -> (Vec<u8>, Vec<(usize, usize)>, Vec<Vec<u8>>) {
        let mut stream = Vec::with_capacity(msgs.iter().map(|m| m.len() + 14).sum());
        let mut ends = Vec::with_capacity(msgs.len());
        let mut pings = Vec::new();
        for m in msgs {
            let body = match s.lz4.get_mut(dir.index()).and_then(Option::as_mut) {
                Some(enc) => enc.wrap(m),
                None => m.clone(),
            };
            let Some(wsc) = s.ws.as_mut() else {
                let start = stream.len();
                let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
                stream.extend_from_slice(&len.to_be_bytes());
                stream.extend_from_slice(&body);
                ends.push((start, stream.len()));
                continue;
            };
            let (payload, rsv1) = match wsc.deflaters.as_mut().and_then(|d| d.get_mut(dir.index()))
            {
                Some(d) => (d.compress(&body), true),
                None => (body, false),
            };
            let mut cuts = vec![0, payload.len()];
            if payload.len() >= 2 && self.rng.chance(self.cfg.ws_fragment) {
                let k = self.rng.range(2, 4);
                for _ in 1..k {
                    cuts.push(self.rng.range(1, payload.len() as u64 - 1) as usize);
                }
                cuts.sort_unstable();
                cuts.dedup();
            }
            let n = cuts.len() - 1;
            // Where a server ping goes: before the message (0) or before fragment i.
            let ping_at = if dir == Dir::S2C && self.rng.chance(self.cfg.ws_ping) {
                wsc.pings += 1;
                let p = wsc.pings.to_be_bytes().to_vec();
                let at = self.rng.below(n as u64) as usize;
                if at == 0 {
                    ws::frame(&mut stream, true, false, ws::OP_PING, &p, None);
                }
                pings.push(p);
                Some(at)
            } else {
                None
            };
            let start = stream.len();
            for i in 0..n {
                if i > 0 && ping_at == Some(i) {
                    if let Some(p) = pings.last() {
                        ws::frame(&mut stream, true, false, ws::OP_PING, p, None);
                    }
                }
                let piece = payload.get(cuts[i]..cuts[i + 1]).unwrap_or_default();
                let op = if i == 0 { ws::OP_BINARY } else { ws::OP_CONT };
                let mask = if dir == Dir::C2S { self.client_mask() } else { None };
                ws::frame(&mut stream, i + 1 == n, rsv1 && i == 0, op, piece, mask);
            }
            ends.push((start, stream.len()));
        }
        (stream, ends, pings)
    }

    /// Client requests in one burst at `t`, answered together after the server's latency.
    /// Returns when the client can go on.
    fn exchange(&mut self, s: &mut Session, t: i64, reqs: Vec<Req>) -> (i64, Vec<Option<i64>>) {
        let msgs: Vec<pb::MSync> = reqs.iter().map(|r| r.msg.clone()).collect();
        let (r1, g1) = self.burst(s, Dir::C2S, t, &msgs);
        let answered: Vec<usize> = (0..reqs.len()).filter(|&i| reqs[i].resp.is_some()).collect();
        let mut resp_ts = vec![None; reqs.len()];
        let mut resp_gen = vec![None; reqs.len()];
        let mut next = r1.acked_at + s.conn.rtt;
        if let Some(&first) = answered.first() {
            let lat = self.latency(reqs[first].kind);
            let t_resp = r1.last_ts + lat;
            let rm: Vec<pb::MSync> =
                answered.iter().filter_map(|&i| reqs[i].resp.clone()).collect();
            let (r2, g2) = self.burst(s, Dir::S2C, t_resp, &rm);
            for (k, &i) in answered.iter().enumerate() {
                resp_ts[i] = r2.msgs.get(k).map(|m| m.ts);
                resp_gen[i] = g2.get(k).copied();
            }
            next = r2.acked_at + MS;
        }
        let mut lats = Vec::with_capacity(reqs.len());
        for (i, r) in reqs.iter().enumerate() {
            let lat = resp_ts[i].map(|rt| rt - r1.msgs[i].ts);
            lats.push(lat);
            if self.cfg.collect_truth && s.conn.captured {
                self.reqs.push(RawReq {
                    sess: s.conn.sess,
                    kind: r.kind,
                    req: g1[i],
                    resp: resp_gen[i],
                    status: if r.resp.is_some() { r.status } else { None },
                    latency: lat,
                    meta_id: r.meta_id,
                });
            }
        }
        s.last_active = next;
        (next, lats)
    }

    fn answered(&mut self) -> bool {
        !self.rng.chance(self.cfg.unanswered)
    }

    /// Whether the next message is compressed, and at which level.
    fn zlib(&mut self) -> Option<u32> {
        self.rng.chance(self.cfg.zlib).then_some(self.cfg.zlib_level)
    }

    fn gap(&mut self) -> i64 {
        (self.rng.exp(self.cfg.mean_gap_secs.max(0.001)) * SEC as f64) as i64
    }

    fn step(&mut self, s: &mut Session, t: i64) -> Option<i64> {
        if t >= 0 {
            s.conn.captured = true;
        }
        let duration = (self.cfg.duration_secs * SEC as f64) as i64;
        if t > duration {
            s.phase = Phase::Done;
            return None;
        }
        match s.phase {
            Phase::Connect => Some(self.connect(s, t)),
            Phase::Unread => Some(self.unread(s, t, RequestKind::Unread)),
            Phase::Pull => Some(self.pull(s, t)),
            Phase::Active => {
                if t >= s.end_at {
                    self.close(s, t);
                    return None;
                }
                let hb = (self.cfg.heartbeat_secs * SEC as f64) as i64;
                let after = if t - s.last_active >= hb {
                    self.unread(s, t, RequestKind::Heartbeat)
                } else {
                    match self.rng.below(100) {
                        0..=44 => self.send_message(s, t),
                        45..=79 => self.notice(s, t),
                        80..=91 if !s.peer_ids.is_empty() => self.receipts(s, t),
                        92..=95 if !s.my_ids.is_empty() => self.recall(s, t),
                        _ => self.send_message(s, t),
                    }
                };
                if s.phase == Phase::Done {
                    return None;
                }
                let g = self.gap();
                // A long silence is broken by the heartbeat first; the session ends on time.
                let next = if g > hb { s.last_active + hb } else { after + g };
                Some(next.min(s.end_at.max(after)))
            }
            Phase::Done => None,
        }
    }

    /// The WebSocket upgrade after the TCP handshake. Returns when the client can send its
    /// login, or None when the server refused (and closed).
    fn upgrade(&mut self, s: &mut Session, t: i64) -> Option<i64> {
        let mut raw = [0u8; 16];
        for c in raw.chunks_exact_mut(8) {
            c.copy_from_slice(&self.rng.next_u64().to_be_bytes());
        }
        let key = ws::base64(&raw);
        let host = SocketAddr::new(s.conn.server.ip, s.conn.server.port).to_string();
        let req = ws::upgrade_request(&host, &key);
        let r1 = s.conn.send_stream(
            &mut self.sink,
            &mut self.rng,
            &mut self.imp,
            Dir::C2S,
            t,
            &req,
            &[],
        );
        let t_resp = r1.last_ts + 2 * MS;
        if self.rng.chance(self.cfg.ws_reject) {
            let resp = ws::reject_response();
            let r2 = s.conn.send_stream(
                &mut self.sink,
                &mut self.rng,
                &mut self.imp,
                Dir::S2C,
                t_resp,
                &resp,
                &[],
            );
            s.conn.close_fin(&mut self.sink, r2.last_ts + MS, Dir::S2C);
            s.ws_rejected = s.conn.captured;
            s.end = ConnEnd::ServerFin;
            s.phase = Phase::Done;
            return None;
        }
        let takeover = self.cfg.ws_deflate.map(|d| d.context_takeover);
        let resp = ws::upgrade_response(&key, takeover);
        let r2 = s.conn.send_stream(
            &mut self.sink,
            &mut self.rng,
            &mut self.imp,
            Dir::S2C,
            t_resp,
            &resp,
            &[],
        );
        s.ws = Some(WsConn {
            deflaters: takeover.map(|k| [Deflater::new(k), Deflater::new(k)]),
            pings: 0,
        });
        Some(r2.acked_at)
    }

    /// Close frames before an orderly end (client first, the server echoes), when enabled.
    /// Returns when the TCP close can start.
    fn ws_close(&mut self, s: &mut Session, t: i64) -> i64 {
        if s.ws.is_none() || !self.cfg.ws_close {
            return t;
        }
        // The web SDK's close has no status code; other clients send 1000 and a reason.
        let code = self.rng.chance(0.3).then_some(1000u16);
        let mut payload = Vec::new();
        if let Some(c) = code {
            payload.extend_from_slice(&c.to_be_bytes());
            payload.extend_from_slice(b"normal closure");
        }
        let mut c = Vec::new();
        let key = self.client_mask();
        ws::frame(&mut c, true, false, ws::OP_CLOSE, &payload, key);
        let r1 =
            s.conn.send_stream(&mut self.sink, &mut self.rng, &mut self.imp, Dir::C2S, t, &c, &[]);
        let mut e = Vec::new();
        ws::frame(&mut e, true, false, ws::OP_CLOSE, &payload, None);
        let r2 = s.conn.send_stream(
            &mut self.sink,
            &mut self.rng,
            &mut self.imp,
            Dir::S2C,
            r1.last_ts + MS,
            &e,
            &[],
        );
        if s.conn.captured {
            s.ws_close = Some(code);
        }
        r2.acked_at + MS
    }

    fn connect(&mut self, s: &mut Session, t: i64) -> i64 {
        let mut t_ack = s.conn.handshake(&mut self.sink, t);
        if self.cfg.transport == SynthTransport::WebSocket {
            match self.upgrade(s, t_ack + MS) {
                Some(next) => t_ack = next,
                None => return t_ack,
            }
        }
        let guid = full_jid(&s.name, Some(&s.resource));
        let prov = pb::Provision {
            os_type: Some(s.os),
            version: Some(if s.os == 1 { "3.3.4" } else { "3.9.1" }.to_owned()),
            compress_type: vec![pb::provision::CompressType::CompressNone as i32],
            device_uuid: Some(s.uuid.clone()),
            is_manual_login: Some(self.rng.chance(0.3)),
            device_name: Some(s.device.clone()),
            resource: Some(s.resource.clone()),
            password: Some(format!("pw-{}", self.rng.range(100_000, 999_999))),
            protocol_compress_type: if self.cfg.lz4.is_some() {
                vec![COMPRESS_LZ4]
            } else {
                vec![]
            },
            ..Default::default()
        };
        let mut msg = send_env(Command::Provision, Some(enc(&prov)), None);
        msg.guid = Some(guid);
        msg.auth = Some(format!("YWMt{:016x}{:016x}", self.rng.next_u64(), self.rng.next_u64()));
        let err = self.rng.chance(self.cfg.error_rate);
        let code = if !err {
            ErrorCode::Ok
        } else if self.rng.chance(0.7) {
            ErrorCode::Unauthorized
        } else {
            ErrorCode::TokenExpired
        };
        let answer = pb::Provision {
            compress_type: vec![pb::provision::CompressType::CompressNone as i32],
            status: Some(match code {
                ErrorCode::Ok => content::ok_status(),
                ErrorCode::Unauthorized => content::error_status(code, Some("Sorry, who are you?")),
                _ => content::error_status(code, Some("token expired")),
            }),
            resource: (!err).then(|| s.resource.clone()),
            protocol_compress_type: match self.cfg.lz4 {
                Some(_) if !err => vec![COMPRESS_LZ4],
                _ => vec![],
            },
            // The real server leaves the direction out for uplink only.
            protocol_compress_direction: match self.cfg.lz4.map(|m| m.direction) {
                Some(Lz4Direction::OnlyDown) if !err => Some(1),
                Some(Lz4Direction::Bi) if !err => Some(2),
                _ => None,
            },
            ..Default::default()
        };
        let resp = self.answered().then(|| recv_env(Command::Provision, enc(&answer), None));
        let answered = resp.is_some();
        let req = Req {
            kind: RequestKind::Provision,
            msg,
            resp,
            status: Some(code as i32),
            meta_id: None,
        };
        let (next, lats) = self.exchange(s, t_ack + 2 * MS, vec![req]);
        let captured = s.conn.captured;
        if !answered {
            if captured {
                s.login = LoginTruth::Unanswered;
            }
            s.conn.close_rst(&mut self.sink, next + 10 * SEC);
            s.end = ConnEnd::ClientRst;
            s.phase = Phase::Done;
            return next;
        }
        if captured {
            s.login = LoginTruth::Answered {
                code: code as i32,
                latency_ns: lats.first().copied().flatten().unwrap_or(0),
            };
        }
        if err {
            s.conn.close_fin(&mut self.sink, next, Dir::S2C);
            s.end = ConnEnd::ServerFin;
            s.phase = Phase::Done;
            return next;
        }
        if let Some(mode) = self.cfg.lz4 {
            s.lz4 = [
                mode.wraps(Dir::C2S).then(Lz4Encoder::new),
                mode.wraps(Dir::S2C).then(Lz4Encoder::new),
            ];
        }
        s.phase = Phase::Unread;
        next
    }

    fn unread(&mut self, s: &mut Session, t: i64, kind: RequestKind) -> i64 {
        // As the web SDK does: no payload field at all.
        let msg = send_env(Command::Unread, None, None);
        let err = self.rng.chance(self.cfg.error_rate);
        let mut queues = Vec::new();
        if kind == RequestKind::Unread && !err {
            for _ in 0..self.rng.below(4) {
                let peer = self.peer(s);
                let n = self.rng.range(1, (self.cfg.page_size.max(1) * 2 + 1) as u64) as u32;
                let q = if self.rng.chance(self.cfg.group_fraction) {
                    jid(None, &self.group(), Some(GROUP_DOMAIN), None)
                } else {
                    short_jid(&peer)
                };
                queues.push(pb::MetaQueue { queue: Some(q), n: Some(n) });
            }
        }
        let code = if err { ErrorCode::TokenExpired } else { ErrorCode::Ok };
        let dl = pb::CommUnreadDl {
            status: Some(if err {
                content::error_status(code, None)
            } else {
                content::ok_status()
            }),
            unread: queues.clone(),
            timestamp: Some(self.ms(t)),
        };
        let resp = self.answered().then(|| recv_env(Command::Unread, enc(&dl), None));
        let answered = resp.is_some();
        let req = Req { kind, msg, resp, status: Some(code as i32), meta_id: None };
        let (next, _) = self.exchange(s, t, vec![req]);
        if answered {
            for q in queues {
                if let (Some(j), Some(n)) = (q.queue, q.n) {
                    s.pulls.push_back((j, n, None));
                }
            }
        }
        s.phase = if s.pulls.is_empty() { Phase::Active } else { Phase::Pull };
        next
    }

    fn peer(&mut self, s: &Session) -> String {
        let n = self.users.len() as u64;
        for _ in 0..4 {
            let i = self.rng.below(n) as usize;
            if let Some(u) = self.users.get(i) {
                if *u != s.name {
                    return u.clone();
                }
            }
        }
        format!("user{:04}", self.rng.range(5000, 9999))
    }

    fn group(&mut self) -> String {
        self.rng.pick(&self.groups).cloned().unwrap_or_else(|| "122713434161153".to_owned())
    }

    /// One meta of a pull answer, from the queue's owner to this user.
    fn pulled_meta(&mut self, s: &mut Session, queue: &pb::Jid, t: i64) -> pb::Meta {
        let qname = queue.name.clone().unwrap_or_default();
        let is_group = queue.domain.as_deref() == Some(GROUP_DOMAIN);
        let from_user = if is_group { self.peer(s) } else { qname.clone() };
        let id = self.server_id(t);
        let roll = self.rng.below(100);
        let (ns, payload) = if roll < 3 && !s.told_elsewhere {
            s.told_elsewhere = true;
            (NameSpace::Statistic, enc(&content::statistic_login_elsewhere("iPhone 12")))
        } else if roll < 12 && is_group {
            (NameSpace::Muc, enc(&content::muc_body(&mut self.rng, &qname, &from_user, &s.name)))
        } else if roll < 18 {
            (NameSpace::Roster, enc(&content::roster_body(&mut self.rng, &from_user, &s.name)))
        } else if roll < 28 && !s.my_ids.is_empty() && !is_group {
            let acked = s.my_ids[self.rng.below(s.my_ids.len() as u64) as usize];
            let kind = if self.rng.chance(0.5) { BodyType::ReadAck } else { BodyType::DeliverAck };
            (NameSpace::Chat, enc(&content::ack_body(kind, &from_user, &s.name, acked)))
        } else {
            let to = if is_group { qname.as_str() } else { s.name.as_str() };
            let body = content::chat_body(&mut self.rng, &from_user, to, is_group);
            s.peer_ids.push((from_user.clone(), id));
            if s.peer_ids.len() > 16 {
                s.peer_ids.remove(0);
            }
            (NameSpace::Chat, enc(&body))
        };
        let to = if is_group && ns != NameSpace::Statistic {
            jid(Some(APP_KEY), &qname, Some(GROUP_DOMAIN), None)
        } else {
            full_jid(&s.name, None)
        };
        let from = if ns == NameSpace::Statistic {
            jid(Some(APP_KEY), &s.name, Some(DOMAIN), None)
        } else {
            full_jid(&from_user, Some("webim_device_uuid"))
        };
        pb::Meta {
            id: Some(id),
            from: Some(from),
            to: Some(to),
            timestamp: Some(self.ms(t) - self.rng.range(0, 5000)),
            ns: Some(ns as i32),
            payload: Some(payload),
            ..Default::default()
        }
    }

    /// One page of every pending queue: the pulls leave in one burst and the pages come back
    /// in one, so a large MSS carries several messages per segment.
    fn pull(&mut self, s: &mut Session, t: i64) -> i64 {
        let pending: Vec<(pb::Jid, u32, Option<u64>)> = s.pulls.drain(..).collect();
        if pending.is_empty() {
            s.phase = Phase::Active;
            return t;
        }
        let mut reqs = Vec::with_capacity(pending.len());
        let mut more = Vec::new();
        for (queue, left, key) in pending {
            let zl = self.zlib();
            let ul = pb::CommSyncUl { queue: Some(queue.clone()), key, ..Default::default() };
            let msg = send_env(Command::Sync, Some(enc(&ul)), zl);
            let page = left.min(self.cfg.page_size.max(1) as u32);
            let mut metas = Vec::with_capacity(page as usize);
            for _ in 0..page {
                metas.push(self.pulled_meta(s, &queue, t));
            }
            let rest = left - page;
            let next_key = metas.last().and_then(|m| m.id);
            let dl = pb::CommSyncDl {
                status: Some(content::ok_status()),
                metas,
                next_key,
                queue: Some(queue.clone()),
                is_last: Some(rest == 0),
                timestamp: Some(self.ms(t)),
                ..Default::default()
            };
            let resp = self.answered().then(|| recv_env(Command::Sync, enc(&dl), zl));
            // An unanswered pull ends that queue's drain.
            if resp.is_some() && rest > 0 {
                more.push((queue, rest, next_key));
            }
            reqs.push(Req { kind: RequestKind::Pull, msg, resp, status: Some(0), meta_id: None });
        }
        let (next, _) = self.exchange(s, t, reqs);
        s.pulls.extend(more);
        s.phase = if s.pulls.is_empty() { Phase::Active } else { Phase::Pull };
        next
    }

    /// Client meta ids: milliseconds × 10⁴ plus a counter, like the seed's 15089920589600003.
    fn client_id(&mut self, s: &mut Session, t: i64) -> u64 {
        s.counter += 1;
        self.ms(t) * 10_000 + s.counter % 10_000
    }

    fn send_req(
        &mut self,
        s: &mut Session,
        t: i64,
        to: pb::Jid,
        body: pb::MessageBody,
        group: bool,
    ) -> Req {
        let id = self.client_id(s, t);
        let meta = pb::Meta {
            id: Some(id),
            from: Some(jid(None, &s.name, None, Some(&s.resource))),
            to: Some(to),
            ns: Some(NameSpace::Chat as i32),
            payload: Some(enc(&body)),
            ..Default::default()
        };
        let zl = self.zlib();
        let ul = pb::CommSyncUl { meta: Some(meta), ..Default::default() };
        let msg = send_env(Command::Sync, Some(enc(&ul)), zl);
        let err = self.rng.chance(self.cfg.error_rate);
        let code = if !err {
            ErrorCode::Ok
        } else if group {
            ErrorCode::UserMuted
        } else if self.rng.chance(0.5) {
            ErrorCode::TokenExpired
        } else {
            ErrorCode::PermissionDenied
        };
        let dl = pb::CommSyncDl {
            status: Some(if err {
                content::error_status(code, None)
            } else {
                content::ok_status()
            }),
            meta_id: Some(id),
            server_id: (!err).then(|| self.server_id(t)),
            timestamp: Some(self.ms(t)),
            ..Default::default()
        };
        let resp = self.answered().then(|| recv_env(Command::Sync, enc(&dl), zl));
        if !err {
            s.my_ids.push(id);
            if s.my_ids.len() > 16 {
                s.my_ids.remove(0);
            }
        }
        Req { kind: RequestKind::Send, msg, resp, status: Some(code as i32), meta_id: Some(id) }
    }

    fn send_message(&mut self, s: &mut Session, t: i64) -> i64 {
        let group = self.rng.chance(self.cfg.group_fraction);
        let (to, to_name) = if group {
            let g = self.group();
            (jid(None, &g, Some(GROUP_DOMAIN), None), g)
        } else {
            let p = self.peer(s);
            (short_jid(&p), p)
        };
        let body = content::chat_body(&mut self.rng, &s.name, &to_name, group);
        let req = self.send_req(s, t, to, body, group);
        self.exchange(s, t, vec![req]).0
    }

    /// A read and a delivery receipt sent together (one burst, answered together).
    fn receipts(&mut self, s: &mut Session, t: i64) -> i64 {
        let i = self.rng.below(s.peer_ids.len() as u64) as usize;
        let Some((peer, id)) = s.peer_ids.get(i).cloned() else {
            return t;
        };
        let mut reqs = Vec::with_capacity(2);
        for kind in [BodyType::DeliverAck, BodyType::ReadAck] {
            let body = content::ack_body(kind, &s.name, &peer, id);
            reqs.push(self.send_req(s, t, short_jid(&peer), body, false));
        }
        self.exchange(s, t, reqs).0
    }

    fn recall(&mut self, s: &mut Session, t: i64) -> i64 {
        let Some(id) = s.my_ids.pop() else {
            return t;
        };
        let peer = self.peer(s);
        let body = content::ack_body(BodyType::Recall, &s.name, &peer, id);
        let req = self.send_req(s, t, short_jid(&peer), body, false);
        self.exchange(s, t, vec![req]).0
    }

    /// The server announces a queue with new data; the client pulls it dry.
    fn notice(&mut self, s: &mut Session, t: i64) -> i64 {
        let peer = self.peer(s);
        let queue = if self.rng.chance(self.cfg.group_fraction) {
            jid(None, &self.group(), Some(GROUP_DOMAIN), None)
        } else {
            jid(None, &peer, None, Some("webim_device_uuid"))
        };
        let mut queues = vec![queue];
        // Two conversations can have news at once: their notices share a burst.
        if self.rng.chance(0.3) {
            let other = self.peer(s);
            queues.push(jid(None, &other, None, Some("webim_device_uuid")));
        }
        let mut notices = Vec::with_capacity(queues.len());
        for q in &queues {
            let n = pb::CommNotice { queue: Some(q.clone()) };
            let zl = self.zlib();
            notices.push(recv_env(Command::Notice, enc(&n), zl));
        }
        let (r, _) = self.burst(s, Dir::S2C, t, &notices);
        for q in queues {
            let n_metas = self.rng.range(1, (self.cfg.page_size.max(1) * 5 / 2) as u64) as u32;
            s.pulls.push_back((q, n_metas, None));
        }
        let mut now = r.acked_at + MS;
        while !s.pulls.is_empty() {
            now = self.pull(s, now);
        }
        s.phase = Phase::Active;
        now
    }

    fn close(&mut self, s: &mut Session, t: i64) {
        let roll = self.rng.below(100);
        if roll < 40 {
            let mut msg = send_env(Command::Logout, Some(enc(&pb::Logout::default())), None);
            msg.guid = Some(full_jid(&s.name, Some(&s.resource)));
            msg.auth = Some(format!("YWMt{:016x}", self.rng.next_u64()));
            let dl = pb::Logout { status: Some(content::ok_status()), ..Default::default() };
            let resp = self.answered().then(|| recv_env(Command::Logout, enc(&dl), None));
            let req = Req { kind: RequestKind::Logout, msg, resp, status: Some(0), meta_id: None };
            let (next, _) = self.exchange(s, t, vec![req]);
            let next = self.ws_close(s, next);
            s.conn.close_fin(&mut self.sink, next, Dir::C2S);
            s.end = ConnEnd::ClientFin { logout: true };
        } else if roll < 85 {
            let t = self.ws_close(s, t);
            s.conn.close_fin(&mut self.sink, t, Dir::C2S);
            s.end = ConnEnd::ClientFin { logout: false };
        } else {
            s.conn.close_rst(&mut self.sink, t);
            s.end = ConnEnd::ClientRst;
        }
        s.phase = Phase::Done;
    }
}

fn client_host(i: usize, ipv6: bool, rng: &mut Rng) -> Host {
    let ip = if ipv6 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0x100,
            (i >> 16) as u16,
            0,
            0,
            (i >> 8) as u16 & 0xff,
            (i & 0xff) as u16 + 2,
        ))
    } else {
        // Carrier-grade NAT space (100.64.0.0/10), skipping the block's first addresses.
        let j = i + 2;
        IpAddr::V4(Ipv4Addr::new(100, 64 + ((j >> 16) & 0x3f) as u8, (j >> 8) as u8, j as u8))
    };
    Host {
        // Everything reaches the server through one router.
        mac: [0x00, 0x1c, 0x73, 0x00, 0x00, 0x01],
        ip,
        port: 32768 + ((i as u64 * 7919 + rng.below(1000)) % 28000) as u16,
    }
}

fn server_host(ipv6: bool, port: u16) -> Host {
    Host {
        mac: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
        ip: if ipv6 {
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10))
        } else {
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10))
        },
        port,
    }
}

fn jid_string(name: &str, res: &str) -> String {
    format!("{APP_KEY}_{name}@{DOMAIN}/{res}")
}

/// Writes a synthetic capture to `out` and returns what it contains.
pub fn generate<W: Write>(cfg: &SynthConfig, out: W) -> io::Result<GroundTruth> {
    let writer = CaptureWriter::new(out, cfg.format, LinkType::ETHERNET, 262_144, cfg.nanos)?;
    let n = cfg.clients;
    let mut rng = Rng::new(cfg.seed);
    let mut eng = Engine {
        cfg,
        rng: Rng::new(cfg.seed ^ 0x5eed_5eed_5eed_5eed),
        sink: Sink::new(writer, cfg.start_ts, n),
        imp: Impair {
            loss: cfg.loss,
            reorder: cfg.reorder,
            duplicate: cfg.duplicate,
            retransmit: cfg.retransmit,
            counts: ImpairmentCounts::default(),
        },
        msgs: Vec::new(),
        reqs: Vec::new(),
        gen: 0,
        server_seq: 0,
        users: (0..n).map(|i| format!("user{i:04}")).collect(),
        groups: (0..(n / 4).max(2)).map(|i| format!("12271343416{:04}", 1153 + i * 37)).collect(),
        start_ms: cfg.start_ts.0.div_euclid(MS),
        fixed_latency: None,
    };
    let duration = (cfg.duration_secs.max(0.0) * SEC as f64) as i64;
    let server = server_host(cfg.ipv6, cfg.server_port);
    let mut sessions = Vec::with_capacity(n);
    let mut queue = BinaryHeap::with_capacity(n);
    for i in 0..n {
        let midstream = cfg.midstream && i % 2 == 0;
        let start = if midstream {
            -((rng.uniform(5.0, 60.0) * SEC as f64) as i64)
        } else {
            (rng.uniform(0.0, 0.5) * duration as f64) as i64
        };
        let end_at = start.max(0) + (rng.uniform(0.3, 1.1) * duration as f64) as i64;
        let rtt =
            (rng.uniform(cfg.rtt_min_ms, cfg.rtt_max_ms.max(cfg.rtt_min_ms)) * MS as f64) as i64;
        let isn = [rng.next_u64() as u32, rng.next_u64() as u32];
        let mut conn =
            Conn::new(i, client_host(i, cfg.ipv6, &mut rng), server.clone(), isn, cfg.mss, rtt);
        conn.captured = start >= 0;
        let uuid = content::uuid(&mut rng);
        let os = if rng.chance(0.6) { 1 } else { 0 };
        let resource = if os == 1 { format!("android_{uuid}") } else { format!("ios_{uuid}") };
        let device = if os == 1 { "LGENexus 5" } else { "iPhone 8" }.to_owned();
        sessions.push(Session {
            end_at,
            midstream,
            last_active: start,
            ..Session::new(conn, format!("user{i:04}"), resource, uuid, device, os)
        });
        queue.push(Reverse((start, i)));
    }
    while let Some(Reverse((t, i))) = queue.pop() {
        eng.sink.flush_before(Some(t))?;
        let Some(s) = sessions.get_mut(i) else {
            continue;
        };
        if let Some(next) = eng.step(s, t) {
            queue.push(Reverse((next.max(t + 1), i)));
        }
    }
    let Engine { sink, msgs, reqs, imp, .. } = eng;
    let summary = sink.finish()?;
    Ok(assemble(cfg.start_ts, &sessions, &summary, msgs, reqs, imp.counts))
}

fn assemble(
    base: Timestamp,
    sessions: &[Session],
    sum: &tcp::SinkSummary,
    mut msgs: Vec<RawMsg>,
    reqs: Vec<RawReq>,
    counts: ImpairmentCounts,
) -> GroundTruth {
    let conn_of = &sum.conn_of_session;
    let at = |t: i64| Timestamp(base.0.saturating_add(t));
    let mut conns: Vec<(u32, ConnTruth)> = Vec::new();
    for (i, s) in sessions.iter().enumerate() {
        let Some(Some(c)) = conn_of.get(i) else {
            continue;
        };
        conns.push((
            *c,
            ConnTruth {
                client: SocketAddr::new(s.conn.client.ip, s.conn.client.port),
                server: SocketAddr::new(s.conn.server.ip, s.conn.server.port),
                user: jid_string(&s.name, &s.resource),
                midstream: s.midstream,
                login: s.login,
                end: s.end,
                first_ts: at(sum.first_ts.get(i).copied().flatten().unwrap_or(0)),
                packets: sum.packets_of.get(i).copied().unwrap_or(0),
                messages: [s.counts[0].0, s.counts[1].0],
                lost_messages: [s.counts[0].1, s.counts[1].1],
                ws_rejected: s.ws_rejected,
                ws_close: s.ws_close,
            },
        ));
    }
    conns.sort_by_key(|c| c.0);
    let conn = |sess: usize| conn_of.get(sess).copied().flatten().unwrap_or(u32::MAX);
    msgs.sort_by_key(|m| (m.ts, conn(m.sess), m.gen));
    let index: HashMap<u64, usize> = msgs.iter().enumerate().map(|(i, m)| (m.gen, i)).collect();
    let mut requests: Vec<RequestTruth> = reqs
        .iter()
        .filter_map(|r| {
            Some(RequestTruth {
                conn: conn(r.sess),
                kind: r.kind,
                request: *index.get(&r.req)?,
                response: r.resp.and_then(|g| index.get(&g).copied()),
                status: r.status,
                latency_ns: r.latency,
                meta_id: r.meta_id,
            })
        })
        .collect();
    requests.sort_by_key(|r| r.request);
    let messages = msgs
        .into_iter()
        .map(|m| MessageTruth {
            conn: conn(m.sess),
            dir: m.dir,
            ts: at(m.ts),
            complete_ts: m.complete.map(at),
            bytes: m.bytes,
            command: m.command,
            lost: m.lost,
        })
        .collect();
    GroundTruth {
        connections: conns.into_iter().map(|c| c.1).collect(),
        messages,
        requests,
        impairments: counts,
        packets: sum.packets,
    }
}
