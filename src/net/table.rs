//! The connection table: finds the connection of each segment, decides roles, opens and closes
//! connections, and feeds each direction's reassembler.
//!
//! Invariants:
//! - Per connection the sink sees `Open` first, then stream events, then `Close` exactly once;
//!   after `Close` a connection emits nothing (late packets are only counted).
//! - `Close{Fin}` is emitted when both directions have sent a FIN and each direction's data up
//!   to its FIN was emitted (or declared lost); data arriving after a FIN's offset is dropped
//!   with a `BadSequence` note, except data starting at it, which undoes the FIN (see
//!   `Half::segment`).
//! - Closed connections stay in the table (absorbing late ACKs and retransmissions) until they
//!   idle out or are evicted; a new SYN on their 4-tuple starts a new connection, and so does a
//!   segment with bytes outside their sequence space (see `Half::after_close`) or, after an
//!   RST, one from its sender with bytes past the RST's sequence number.
//! - Idle/eviction bookkeeping is amortised O(1) per packet: a queue of (time, key, id) entries
//!   pushed at most once per time bucket per connection; stale entries are skipped lazily and the
//!   queue is compacted when it outgrows the table.

use std::collections::VecDeque;

use super::frag::{Defrag, FragResult};
use super::hash::FxHashMap;
use super::parse::{self, Endpoint, Parsed, Segment};
use super::reasm::{Half, Limits, Out};
use super::seq::SeqNumber;
use super::{
    CloseReason, ConnId, ConnMeta, Dir, NetConfig, NetStats, PktCtx, RoleSource, StreamEvent,
    StreamSink, TcpNote,
};
use crate::capture::{Packet, Timestamp};

/// Ports on which Easemob servers listen: their owner is the server when no SYN tells.
const WELL_KNOWN: [u16; 7] = [6717, 443, 80, 8080, 5222, 5280, 6718];
const SECOND: i64 = 1_000_000_000;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct FlowKey {
    lo: Endpoint,
    hi: Endpoint,
}

impl FlowKey {
    fn new(a: Endpoint, b: Endpoint) -> FlowKey {
        if a <= b {
            FlowKey { lo: a, hi: b }
        } else {
            FlowKey { lo: b, hi: a }
        }
    }
}

struct Conn {
    meta: ConnMeta,
    client: Endpoint,
    /// Indexed by `Dir::index()`: the data sent in that direction.
    half: [Half; 2],
    /// Sender and ISN of the SYN (without ACK) that began the connection, to tell a
    /// retransmitted SYN from a new connection on the same 4-tuple.
    syn: Option<(Endpoint, SeqNumber)>,
    /// Sender and sequence number of the RST that closed the connection.
    rst: Option<(Endpoint, SeqNumber)>,
    last_ts: i64,
    /// Time of this connection's newest entry in the idle queue.
    queued_ts: i64,
    closed: bool,
}

/// What is kept of an open connection closed as idle, for a later segment of its 4-tuple to
/// be recognised as its continuation ([`super::Resumed`]).
struct Idled {
    id: ConnId,
    client: Endpoint,
    /// Per direction (`Dir::index()`), the next sequence number expected, if it carried data,
    /// and whether it ended with a FIN (there, at that sequence number).
    expected: [Option<SeqNumber>; 2],
    fin: [bool; 2],
    last_ts: i64,
}

/// Where a resumed connection's directions start: the sequence number each expected next, and
/// whether it had sent its FIN.
type Resume = ([Option<SeqNumber>; 2], [bool; 2]);

/// Idle-closed connections remembered at once; the oldest is forgotten past it. Only
/// connections that carried data are kept (a SYN flood leaves none), at ~100 bytes each.
const IDLED_CAP: usize = 1 << 16;

/// How far a continuing segment's sequence number may lie before (a retransmission, a
/// keep-alive) or after (data the capture missed) the one expected.
const RESUME_BEFORE: i32 = 1 << 16;
const RESUME_AFTER: i32 = 1 << 20;

impl Idled {
    /// What to keep of `c`: nothing if it carried no data.
    fn of(c: &Conn) -> Option<Idled> {
        let expected = [c.half[0].expected(), c.half[1].expected()];
        (expected != [None, None]).then_some(Idled {
            id: c.meta.id,
            client: c.client,
            expected,
            fin: [c.half[0].fin_off.is_some(), c.half[1].fin_off.is_some()],
            last_ts: c.last_ts,
        })
    }

    /// Whether `seg` (not a SYN) goes on with this connection: its sequence number is where its
    /// direction stopped, or, for a direction that never sent data, it acknowledges where the
    /// other one stopped.
    fn continued_by(&self, seg: &Segment<'_>) -> bool {
        let near = |at: SeqNumber, want: Option<SeqNumber>| {
            want.is_some_and(|w| (-RESUME_BEFORE..=RESUME_AFTER).contains(&at.diff(w)))
        };
        let (own, other) = if seg.src == self.client { (0, 1) } else { (1, 0) };
        match self.expected.get(own).copied().flatten() {
            Some(want) => near(SeqNumber(seg.seq), Some(want)),
            None => {
                seg.flags.ack
                    && near(SeqNumber(seg.ack), self.expected.get(other).copied().flatten())
            }
        }
    }
}

/// Parser, connection table and reassembler for a whole capture.
pub struct Net {
    cfg: NetConfig,
    stats: NetStats,
    server_ports: Box<[u64; 1024]>,
    conns: FxHashMap<FlowKey, Conn>,
    idle_queue: VecDeque<(i64, FlowKey, u32)>,
    /// Open connections closed as idle, by 4-tuple, and their keys oldest first (with the
    /// connection number, to skip entries replaced since).
    idled: FxHashMap<FlowKey, Idled>,
    idled_order: VecDeque<(FlowKey, ConnId)>,
    next_id: u32,
    total_buffered: usize,
    defrag: Defrag,
    /// Latest capture time seen (captures may step backwards; time never does here).
    now: i64,
    next_sweep: i64,
    /// Queue/sweep granularity: a fraction of the idle timeout, at most one second.
    bucket: i64,
    last_ctx: PktCtx,
}

impl Net {
    pub fn new(cfg: NetConfig) -> Net {
        let mut server_ports = Box::new([0u64; 1024]);
        for &p in &cfg.server_ports {
            // p >> 6 < 1024: a u16 has ten bits above the low six.
            if let Some(w) = server_ports.get_mut(usize::from(p >> 6)) {
                *w |= 1 << (p & 63);
            }
        }
        let bucket = (cfg.idle_timeout_ns / 8).clamp(1, SECOND);
        Net {
            cfg,
            stats: NetStats::default(),
            server_ports,
            conns: FxHashMap::default(),
            idle_queue: VecDeque::new(),
            idled: FxHashMap::default(),
            idled_order: VecDeque::new(),
            next_id: 0,
            total_buffered: 0,
            defrag: Defrag::default(),
            now: i64::MIN,
            next_sweep: i64::MIN,
            bucket,
            last_ctx: PktCtx { index: 0, ts: Timestamp(0) },
        }
    }

    pub fn stats(&self) -> &NetStats {
        &self.stats
    }

    /// Memory charged to out-of-order segments over all connections (their bytes and what
    /// holding each costs), as the total cap counts it.
    pub fn buffered_bytes(&self) -> usize {
        self.total_buffered
    }

    /// Connections currently in the table (open or recently closed).
    pub fn tracked_connections(&self) -> usize {
        self.conns.len()
    }

    /// IPv4 datagrams waiting for fragments.
    #[cfg(test)]
    pub(crate) fn defrag_pending(&self) -> usize {
        self.defrag.pending()
    }

    fn forced(&self, port: u16) -> bool {
        self.server_ports.get(usize::from(port >> 6)).is_some_and(|w| w & (1 << (port & 63)) != 0)
    }

    pub fn packet<S: StreamSink + ?Sized>(&mut self, pkt: &Packet<'_>, sink: &mut S) {
        self.stats.packets += 1;
        let ctx = PktCtx { index: pkt.index, ts: pkt.ts };
        self.last_ctx = ctx;
        if pkt.ts.0 > self.now {
            self.now = pkt.ts.0;
        }
        if self.now >= self.next_sweep {
            self.sweep(ctx, sink);
            self.next_sweep = self.now.saturating_add(self.bucket);
        }
        match parse::parse(pkt.link, pkt.data, pkt.orig_len) {
            Parsed::Tcp(seg) => self.tcp(&seg, ctx, sink),
            Parsed::Fragment(f) => self.fragment(&f, ctx, sink, 0),
            other => self.count_other(&other),
        }
    }

    /// An IP fragment: held until its datagram is whole, which is then TCP or a tunnel's
    /// packet (whose inner fragments are reassembled in turn, `depth` levels down).
    fn fragment<S: StreamSink + ?Sized>(
        &mut self,
        f: &parse::Fragment<'_>,
        ctx: PktCtx,
        sink: &mut S,
        depth: u32,
    ) {
        if f.v6 {
            self.stats.ipv6_fragments += 1;
        } else {
            self.stats.ipv4_fragments += 1;
        }
        let res = self.defrag.add(f, self.now, self.cfg.max_fragment_buffer);
        self.note_fragment_drops();
        let FragResult::Complete { proto, src, dst, v6, payload } = res else { return };
        if v6 {
            self.stats.ipv6_reassembled += 1;
        } else {
            self.stats.ipv4_reassembled += 1;
        }
        let inner = if proto == 6 {
            parse::parse_tcp(&payload, src, dst, v6, 0)
        } else {
            parse::ip_payload(proto, &payload, 0, depth)
        };
        match inner {
            Parsed::Tcp(seg) => self.tcp(&seg, ctx, sink),
            Parsed::Fragment(g) if depth < parse::MAX_ENCAP => {
                self.fragment(&g, ctx, sink, depth + 1);
            }
            Parsed::Fragment(_) => self.stats.malformed += 1,
            other => self.count_other(&other),
        }
    }

    fn note_fragment_drops(&mut self) {
        let [v4, v6] = self.defrag.dropped;
        self.stats.ipv4_fragments_dropped = v4;
        self.stats.ipv6_fragments_dropped = v6;
    }

    /// Counts a packet that carries no TCP segment by why it does not.
    fn count_other(&mut self, p: &Parsed<'_>) {
        match p {
            Parsed::Tcp(_) | Parsed::Fragment(_) => {}
            Parsed::NonIp => self.stats.non_ip += 1,
            Parsed::NonTcp => self.stats.non_tcp += 1,
            Parsed::Malformed => self.stats.malformed += 1,
            Parsed::Unsupported => self.stats.unsupported_link += 1,
        }
    }

    fn tcp<S: StreamSink + ?Sized>(&mut self, seg: &Segment<'_>, ctx: PktCtx, sink: &mut S) {
        self.stats.tcp_packets += 1;
        let key = FlowKey::new(seg.src, seg.dst);
        let cleared;
        let seg = if seg.flags.syn {
            cleared = self.syn_bit_corrupt(&key, seg, ctx, sink);
            cleared.as_ref().unwrap_or(seg)
        } else {
            seg
        };
        let syn_only = seg.flags.syn && !seg.flags.ack;
        let lim = Limits { flow: self.cfg.max_flow_buffer, total: self.cfg.max_total_buffer };
        let mut q = Queue { queue: &mut self.idle_queue, now: self.now, bucket: self.bucket };
        // One lookup for the common case, a packet of a known open connection; the rest take
        // the slow path below.
        let ended = match self.conns.get_mut(&key) {
            None => {
                if seg.flags.rst {
                    // A lone RST opens nothing: there is no stream to report.
                    self.stats.late_packets += 1;
                    return;
                }
                None
            }
            Some(c) if c.closed && !seg.flags.syn => {
                c.last_ts = self.now;
                // Bytes in the closed connection's sequence space are its own, late: they
                // cannot be emitted after its Close, so they are counted. Bytes elsewhere are a
                // new connection whose handshake was not captured; waiting for a SYN would drop
                // it whole, so it is decoded like any connection picked up mid-stream. Sequence
                // numbers decide, not time: a connection reset by one side can have the other
                // side's data in flight just after, and a new one can follow within a
                // millisecond.
                let len = seg.payload.len() as u64 + u64::from(seg.missing);
                let late = if len == 0 || seg.flags.rst {
                    Some(0)
                } else {
                    let dir = if seg.src == c.client { Dir::C2S } else { Dir::S2C };
                    let rst = c.rst.and_then(|(src, at)| (src == seg.src).then_some(at));
                    c.half.get_mut(dir.index()).and_then(|h| {
                        let off = h.offset_of(SeqNumber(seg.seq));
                        // The RST's sender sending bytes past the RST's sequence number went on
                        // with the connection: that RST was not real (a flipped bit in a
                        // corrupt capture makes a bare ACK one), and taking what follows for
                        // late data would lose the rest of the connection.
                        if rst.is_some_and(|at| off + i128::from(len) > h.offset_of(at)) {
                            return None;
                        }
                        h.after_close(off, len)
                    })
                };
                match late {
                    Some(0) => {
                        self.stats.late_packets += 1;
                        return;
                    }
                    Some(past) => {
                        self.stats.late_data_packets += 1;
                        self.stats.late_data_bytes += past;
                        return;
                    }
                    None => None,
                }
            }
            Some(c) if c.closed => None,
            Some(c)
                if (syn_only && c.syn != Some((seg.src, SeqNumber(seg.seq))))
                    || (seg.flags.syn && seg.flags.ack && synack_elsewhere(c, seg)) =>
            {
                // A new incarnation of the 4-tuple: the old one ended unseen.
                self.stats.reused_tuples += 1;
                None
            }
            Some(c) => Some(segment_in(
                c,
                &key,
                seg,
                ctx,
                sink,
                &mut self.stats,
                &mut self.total_buffered,
                &mut q,
                lim,
            )),
        };
        let ended = match ended {
            Some(e) => e,
            None => {
                if self.conns.get(&key).is_some_and(|c| !c.closed) {
                    self.close(&key, CloseReason::Evicted, ctx, sink);
                }
                let mut prev_client = self.conns.get(&key).map(|c| c.client);
                let resumes = self.resumed(&key, seg, &mut prev_client);
                self.remove(&key);
                while self.conns.len() >= self.cfg.max_flows.max(1) {
                    if !self.evict_one(ctx, sink) {
                        break;
                    }
                }
                self.create(key, seg, ctx, sink, prev_client, resumes);
                let mut q =
                    Queue { queue: &mut self.idle_queue, now: self.now, bucket: self.bucket };
                let Some(c) = self.conns.get_mut(&key) else {
                    return;
                };
                segment_in(
                    c,
                    &key,
                    seg,
                    ctx,
                    sink,
                    &mut self.stats,
                    &mut self.total_buffered,
                    &mut q,
                    lim,
                )
            }
        };
        if let Some(reason) = ended {
            self.close(&key, reason, ctx, sink);
        }
    }

    /// A SYN (or SYN+ACK) at a sequence number inside the stream its sender already sent on an
    /// open connection: no SYN is there (see `Half::inside`), so its SYN bit is corrupt (a
    /// flipped bit in a corrupt capture). Returns the segment without it, its data where its
    /// sequence number puts it, for the open connection (noted as a bad sequence number) rather
    /// than a new one. Kept out of line: SYNs are rare.
    #[cold]
    #[inline(never)]
    fn syn_bit_corrupt<'a, S: StreamSink + ?Sized>(
        &self,
        key: &FlowKey,
        seg: &Segment<'a>,
        ctx: PktCtx,
        sink: &mut S,
    ) -> Option<Segment<'a>> {
        let c = self.conns.get(key).filter(|c| !c.closed)?;
        let dir = if seg.src == c.client { Dir::C2S } else { Dir::S2C };
        if !c.half.get(dir.index())?.inside(SeqNumber(seg.seq)) {
            return None;
        }
        sink.event(ctx, StreamEvent::Note { conn: c.meta.id, dir, note: TcpNote::BadSequence });
        let mut clean = *seg;
        clean.flags.syn = false;
        Some(clean)
    }

    /// The idle-closed connection that `seg`, opening a new one on 4-tuple `key`, goes on with;
    /// its client becomes `prev_client`. The entry goes either way: the 4-tuple is taken now.
    fn resumed(
        &mut self,
        key: &FlowKey,
        seg: &Segment<'_>,
        prev_client: &mut Option<Endpoint>,
    ) -> Option<(super::Resumed, Resume)> {
        if self.idled.is_empty() {
            return None;
        }
        let old = self.idled.remove(key)?;
        if seg.flags.syn || prev_client.is_some() || !old.continued_by(seg) {
            return None;
        }
        *prev_client = Some(old.client);
        let idle_ns = self.now.saturating_sub(old.last_ts);
        Some((super::Resumed { conn: old.id, idle_ns }, (old.expected, old.fin)))
    }

    /// Remembers an open connection closed as idle.
    fn remember_idled(&mut self, key: FlowKey, t: Idled) {
        while self.idled.len() >= IDLED_CAP {
            let Some((k, id)) = self.idled_order.pop_front() else { break };
            if self.idled.get(&k).is_some_and(|e| e.id == id) {
                self.idled.remove(&k);
            }
        }
        self.idled_order.push_back((key, t.id));
        self.idled.insert(key, t);
        // Entries taken or replaced leave theirs behind: dropped when they outnumber the map.
        if self.idled_order.len() > 2 * self.idled.len() + 1024 {
            let idled = &self.idled;
            self.idled_order.retain(|(k, id)| idled.get(k).is_some_and(|e| e.id == *id));
        }
    }

    /// Opens a connection at `seg`; `prev_client` is the client of the connection the 4-tuple
    /// carried before, if any, and `resumes` the idle-closed one it goes on with, with the
    /// sequence numbers where its directions stopped.
    fn create<S: StreamSink + ?Sized>(
        &mut self,
        key: FlowKey,
        seg: &Segment<'_>,
        ctx: PktCtx,
        sink: &mut S,
        prev_client: Option<Endpoint>,
        resumes: Option<(super::Resumed, Resume)>,
    ) {
        let (resumes, (expected, fin)) =
            resumes.map_or((None, ([None, None], [false, false])), |(r, e)| (Some(r), e));
        let syn_only = seg.flags.syn && !seg.flags.ack;
        let syn_ack = seg.flags.syn && seg.flags.ack;
        let (fs, fd) = (self.forced(seg.src.port), self.forced(seg.dst.port));
        let wk = |p: u16| WELL_KNOWN.contains(&p);
        // true: the packet's source is the server.
        let (src_is_server, role) = if fs != fd {
            (fs, RoleSource::Forced)
        } else if syn_only {
            (false, RoleSource::Syn)
        } else if syn_ack {
            (true, RoleSource::Syn)
        } else if let Some(prev) = prev_client {
            // The same 4-tuple again, without its handshake: most likely the same client
            // reconnecting from the same port, whatever the ports would suggest.
            (seg.dst == prev, RoleSource::Guess)
        } else if wk(seg.src.port) != wk(seg.dst.port) {
            (wk(seg.src.port), RoleSource::Guess)
        } else if seg.src.port != seg.dst.port {
            (seg.src.port < seg.dst.port, RoleSource::Guess)
        } else {
            (false, RoleSource::Guess)
        };
        let (client, server) = if src_is_server { (seg.dst, seg.src) } else { (seg.src, seg.dst) };
        let id = ConnId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        let midstream = !seg.flags.syn;
        self.stats.tcp_connections += 1;
        if midstream {
            self.stats.midstream_connections += 1;
        }
        let mut conn = Conn {
            meta: ConnMeta {
                id,
                client: client.socket_addr(),
                server: server.socket_addr(),
                role,
                midstream,
                first_packet: ctx.index,
                first_ts: ctx.ts,
                resumes,
            },
            client,
            half: [Half::default(), Half::default()],
            // From a SYN+ACK, the client's ISN is the acknowledgment minus one.
            syn: if syn_only {
                Some((seg.src, SeqNumber(seg.seq)))
            } else if syn_ack {
                Some((seg.dst, SeqNumber(seg.ack).plus(u32::MAX)))
            } else {
                None
            },
            rst: None,
            last_ts: self.now,
            queued_ts: self.now,
            closed: false,
        };
        // Each direction of a resumed connection starts where it stopped: a retransmission of
        // what came before is no new data, and bytes the capture missed are a gap.
        // A direction that had sent its FIN has it at the start.
        for ((h, at), fin) in conn.half.iter_mut().zip(expected).zip(fin) {
            if let Some(seq) = at {
                h.start(seq);
                if fin {
                    h.fin_off = Some(0);
                }
            }
        }
        self.idle_queue.push_back((self.now, key, id.0));
        let c = self.conns.entry(key).or_insert(conn);
        sink.event(ctx, StreamEvent::Open(&c.meta));
    }

    /// Flushes both directions and emits `Close` (once); the entry stays in the table.
    fn close<S: StreamSink + ?Sized>(
        &mut self,
        key: &FlowKey,
        reason: CloseReason,
        ctx: PktCtx,
        sink: &mut S,
    ) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if c.closed {
            return;
        }
        c.closed = true;
        for dir in [Dir::C2S, Dir::S2C] {
            let mut out = Out {
                sink: &mut *sink,
                pkt: ctx,
                conn: c.meta.id,
                dir,
                stats: &mut self.stats,
                total: &mut self.total_buffered,
            };
            if let Some(h) = c.half.get_mut(dir.index()) {
                h.flush_all(&mut out);
                h.clear(out.total);
            }
        }
        if reason == CloseReason::Idle {
            self.stats.idle_closed += 1;
        }
        sink.event(ctx, StreamEvent::Close { conn: c.meta.id, reason, last: Timestamp(c.last_ts) });
    }

    fn remove(&mut self, key: &FlowKey) {
        if let Some(mut c) = self.conns.remove(key) {
            for h in &mut c.half {
                h.clear(&mut self.total_buffered);
            }
        }
    }

    /// Evicts the (approximately, to a time bucket) least recently active connection.
    fn evict_one<S: StreamSink + ?Sized>(&mut self, ctx: PktCtx, sink: &mut S) -> bool {
        while let Some((ts, key, id)) = self.idle_queue.pop_front() {
            let valid =
                self.conns.get(&key).is_some_and(|c| c.meta.id.0 == id && c.queued_ts == ts);
            if !valid {
                continue;
            }
            if self.conns.get(&key).is_some_and(|c| !c.closed) {
                self.stats.evicted += 1;
                self.close(&key, CloseReason::Evicted, ctx, sink);
            }
            self.remove(&key);
            return true;
        }
        false
    }

    /// Closes connections idle for longer than the timeout and drops stale fragments.
    fn sweep<S: StreamSink + ?Sized>(&mut self, ctx: PktCtx, sink: &mut S) {
        self.defrag.expire(self.now);
        self.note_fragment_drops();
        let idle = self.cfg.idle_timeout_ns;
        while let Some(&(ts, key, id)) = self.idle_queue.front() {
            if self.now.saturating_sub(ts) < idle {
                break;
            }
            self.idle_queue.pop_front();
            let Some(c) = self.conns.get_mut(&key) else {
                continue;
            };
            if c.meta.id.0 != id || c.queued_ts != ts {
                continue;
            }
            if self.now.saturating_sub(c.last_ts) >= idle {
                let closed = c.closed;
                if !closed {
                    self.close(&key, CloseReason::Idle, ctx, sink);
                    if let Some(t) = self.conns.get(&key).and_then(Idled::of) {
                        self.remember_idled(key, t);
                    }
                }
                self.remove(&key);
            } else {
                c.queued_ts = c.last_ts;
                self.idle_queue.push_back((c.last_ts, key, id));
            }
        }
        if self.idle_queue.len() > 2 * self.conns.len() + 1024 {
            let mut live: Vec<(i64, FlowKey, u32)> =
                self.conns.iter().map(|(k, c)| (c.queued_ts, *k, c.meta.id.0)).collect();
            live.sort_unstable_by_key(|e| (e.0, e.2));
            self.idle_queue = live.into();
        }
    }

    /// The capture's last packet, where [`Net::finish`] closes what is still open, when it is
    /// later than the last one this table saw.
    pub fn capture_ended_at(&mut self, end: PktCtx) {
        if end.index >= self.last_ctx.index {
            self.last_ctx = end;
        }
    }

    pub fn finish<S: StreamSink + ?Sized>(&mut self, sink: &mut S) {
        let ctx = self.last_ctx;
        let mut open: Vec<(ConnId, FlowKey)> =
            self.conns.iter().filter(|(_, c)| !c.closed).map(|(k, c)| (c.meta.id, *k)).collect();
        open.sort_unstable_by_key(|e| e.0);
        for (_, key) in open {
            self.close(&key, CloseReason::CaptureEnd, ctx, sink);
        }
        self.conns.clear();
        self.idle_queue.clear();
        self.idled.clear();
        self.idled_order.clear();
        self.total_buffered = 0;
        // Datagrams still missing fragments will never be whole: given up, and counted.
        self.defrag.abandon_all();
        self.note_fragment_drops();
    }
}

/// A SYN+ACK that cannot belong to open connection `c`: its sender's stream starts elsewhere,
/// or it acknowledges another SYN than the one seen (the new SYN was not captured, as when
/// only one direction of the traffic is). One sent again is at the same place.
fn synack_elsewhere(c: &Conn, seg: &Segment<'_>) -> bool {
    let [c2s, s2c] = &c.half;
    let (h, other) = if seg.src == c.client { (c2s, s2c) } else { (s2c, c2s) };
    if h.started {
        h.offset_of(SeqNumber(seg.seq)) != -1
    } else {
        // The SYN it answers took the sequence number before the peer's first byte.
        other.started && other.offset_of(SeqNumber(seg.ack)) != 0
    }
}

/// The idle queue, as a segment of a known connection needs it.
struct Queue<'q> {
    queue: &'q mut VecDeque<(i64, FlowKey, u32)>,
    now: i64,
    bucket: i64,
}

/// Feeds `seg` to its connection `c` (at `key`, open); returns why the connection ends, if the
/// segment ends it (the caller closes it, which needs the whole table).
#[allow(clippy::too_many_arguments)]
fn segment_in<S: StreamSink + ?Sized>(
    c: &mut Conn,
    key: &FlowKey,
    seg: &Segment<'_>,
    ctx: PktCtx,
    sink: &mut S,
    stats: &mut NetStats,
    total: &mut usize,
    q: &mut Queue<'_>,
    lim: Limits,
) -> Option<CloseReason> {
    let now = q.now;
    c.last_ts = now;
    if now.saturating_sub(c.queued_ts) >= q.bucket {
        c.queued_ts = now;
        q.queue.push_back((now, *key, c.meta.id.0));
    }
    let dir = if seg.src == c.client { Dir::C2S } else { Dir::S2C };
    let conn = c.meta.id;
    let [c2s, s2c] = &mut c.half;
    let (h, other) = match dir {
        Dir::C2S => (c2s, s2c),
        Dir::S2C => (s2c, c2s),
    };
    let seq = SeqNumber(seg.seq);
    let mut syn_again = false;
    if seg.flags.syn {
        if !h.started {
            h.start(seq.plus(1));
        } else {
            // The SYN takes the sequence number before the stream's first byte: a second SYN
            // there was sent again (as Wireshark counts it; the first one seen is not, even
            // after the peer's SYN+ACK). Data it carries is judged below.
            syn_again =
                h.syn_seen && h.offset_of(seq) == -1 && seg.payload.is_empty() && seg.missing == 0;
        }
        h.syn_seen = true;
        if seg.flags.ack && !other.started {
            other.start(SeqNumber(seg.ack));
        }
    }
    let mut out = Out { sink: &mut *sink, pkt: ctx, conn, dir, stats, total };
    if seg.flags.rst {
        if !h.rst_plausible(seq) {
            out.note(TcpNote::RstIgnored);
            return None;
        }
        out.stats.rst += 1;
        c.rst = Some((seg.src, seq));
        return Some(CloseReason::Rst);
    }
    if syn_again {
        out.note(TcpNote::Retransmission);
    }
    // Tested first so that the usual packet (an open window, and the peer's too) does no more.
    if (seg.window == 0 || other.peer_window_zero) && seg.flags.ack && !seg.flags.syn {
        // A window is only meaningful with an ACK; SYNs and FINs are not flagged (Wireshark's
        // test), but a FIN's window still tells whether the peer may send.
        let zero = seg.window == 0;
        if zero && !seg.flags.fin {
            out.note(TcpNote::ZeroWindow);
        }
        other.peer_window_zero = zero;
    }
    if !h.started {
        h.start(seq);
    }
    let data_seq = if seg.flags.syn { seq.plus(1) } else { seq };
    let off = h.offset_of(data_seq);
    let len = seg.payload.len() as u64 + u64::from(seg.missing);
    // One call of `Half::segment` only, which keeps it inlined here.
    let bare = !seg.flags.syn && !seg.flags.fin;
    let probe = if h.peer_window_zero && bare { h.zero_window_probe(off, len) } else { None };
    let is_data = match probe {
        Some(first) => {
            out.note(TcpNote::ZeroWindowProbe);
            first
        }
        None if bare && h.is_keep_alive(off, len) => {
            // Windows and BSD stacks probe with one byte already acknowledged: counted as what
            // it is, not as a retransmission, and its byte kept out of the stream. Its ACK still
            // counts.
            out.note(TcpNote::KeepAlive);
            false
        }
        None => true,
    };
    if is_data {
        h.segment(off, seg.payload, seg.missing, seg.flags.fin, lim, &mut out);
    }
    if seg.flags.ack {
        out.dir = dir.reverse();
        other.ack(SeqNumber(seg.ack));
    }
    out.dir = dir;
    h.tick(&mut out);
    out.dir = dir.reverse();
    other.tick(&mut out);
    c.half.iter().all(Half::fin_done).then_some(CloseReason::Fin)
}
