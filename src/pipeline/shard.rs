//! Sharding connections over worker threads: the calling thread reads capture records and
//! hashes each packet's TCP 4-tuple (order-independent, so both directions agree) to pick a
//! shard; each shard runs its own [`Pipeline`] over the packets of its connections, and the
//! caller merges what they return. Shard 0 gets a smaller share of the connections (see
//! [`READER_SHARE`]). Shard 0 runs on the calling thread itself, between reads:
//! with N jobs there are N busy threads, not a reader and N workers, and shard 0's packets are
//! never copied.
//!
//! Invariants:
//! - Every packet of one TCP connection goes to one worker, in capture order, with its capture
//!   record number: a worker sees exactly what a single pipeline would see of its connections.
//!   Packets that are not TCP (or not parseable) go to worker 0, so totals still add up.
//! - Packets travel in batches of about [`BATCH_BYTES`] copied into buffers that come back
//!   for reuse, and the channels are bounded: memory stays at a few batches per worker,
//!   whatever the capture size.
//! - With one job no thread is started: the pipeline runs on the calling thread.
//! - Every shard closes the connections still open at the end at the capture's last packet,
//!   whichever shard that packet went to, as one pipeline closes them.
//! - IP fragments are held on the reading thread until their datagram is whole, then all of
//!   them go to the worker of the connection inside (TCP, or TCP in a tunnel), which
//!   reassembles them as one pipeline does; fragments of datagrams given up go to worker 0.
//!
//! What can still differ from a single pipeline: per-pipeline limits and clocks. Idle
//! time-outs are swept when a worker's own packets arrive, and flow-table eviction, the
//! global out-of-order buffer cap and the idle connections kept for resumption count per
//! worker.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::io;
use std::sync::mpsc::{self, Receiver, SyncSender};

use super::{Consumer, Pipeline, RunOutcome, Totals};
use crate::capture::{CaptureError, LinkType, OwnedPacket, Packet, PacketSource, Timestamp};
use crate::net::frag::{datagram_of, DatagramId, Defrag, FragResult};
use crate::net::hash::FxHashMap;
use crate::net::parse::{self, Endpoint, Parsed};
use crate::net::PktCtx;

/// Bytes of packet data per batch handed to a worker.
pub const BATCH_BYTES: usize = 256 << 10;
/// Batches in flight per worker (queued plus being processed).
const IN_FLIGHT: usize = 4;
/// Records between two progress reports.
const PROGRESS_EVERY: u64 = 1024;

/// Where the reader is: the index of the file being read (in the order given) and the bytes
/// of it read so far (decompressed, for gzip input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub file: usize,
    pub bytes: u64,
}

/// One packet's header in a batch; its data is `data[start..start + len]` of the batch.
#[derive(Clone, Copy, Debug)]
struct Header {
    index: u64,
    ts: Timestamp,
    link: LinkType,
    orig_len: u32,
    file_offset: u64,
    start: usize,
    len: usize,
}

#[derive(Debug, Default)]
struct Batch {
    data: Vec<u8>,
    headers: Vec<Header>,
    /// Time of the capture's first packet, for the worker's pipeline to be made with.
    capture_start: Timestamp,
    /// In the last batch: the capture's last packet, which ends every shard's connections as
    /// it ends them in one pipeline (see [`Pipeline::capture_ended_at`]).
    end: Option<PktCtx>,
}

impl Batch {
    fn push(&mut self, p: &Packet<'_>) {
        let start = self.data.len();
        self.data.extend_from_slice(p.data);
        self.headers.push(Header {
            index: p.index,
            ts: p.ts,
            link: p.link,
            orig_len: p.orig_len,
            file_offset: p.file_offset,
            start,
            len: p.data.len(),
        });
    }

    fn clear(&mut self) {
        self.data.clear();
        self.headers.clear();
        self.end = None;
    }

    fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.end.is_none()
    }
}

/// The worker a packet belongs to: a hash of its TCP endpoints, smaller one first.
pub fn shard_of(link: LinkType, data: &[u8], orig_len: u32, jobs: usize) -> usize {
    match route(link, data, orig_len, jobs) {
        Route::Worker(i) => i,
        Route::Fragment(_) | Route::Other => 0,
    }
}

/// Where the reading thread sends a packet, from one parse of it.
enum Route<'a> {
    /// A TCP packet as it stands: to its connection's worker.
    Worker(usize),
    /// An IP fragment: to the hold, until its datagram tells the connection.
    Fragment(parse::Fragment<'a>),
    /// Anything else: to worker 0, which counts it as one pipeline would.
    Other,
}

/// The TCP endpoints of a packet decide its worker, as [`parse::parse`] reads them. Every
/// packet passes here on the reading thread, so plain Ethernet + IPv4 (unfragmented) or IPv6
/// (no extension header) + TCP is read directly; anything else goes through the full parser,
/// once. A packet read directly that the full parser would reject (a TCP header cut short,
/// say) is only counted by whichever shard gets it, as it would be by shard 0.
fn route(link: LinkType, data: &[u8], orig_len: u32, jobs: usize) -> Route<'_> {
    if jobs <= 1 {
        return Route::Worker(0);
    }
    if link == LinkType::ETHERNET {
        if let Some((src, dst)) = ethernet_tcp(data) {
            return Route::Worker(shard_for(src, dst, jobs));
        }
    }
    match parse::parse(link, data, orig_len) {
        Parsed::Tcp(seg) => Route::Worker(shard_for(seg.src, seg.dst, jobs)),
        Parsed::Fragment(f) => Route::Fragment(f),
        _ => Route::Other,
    }
}

/// The worker of the connection between `src` and `dst`.
fn shard_for(src: Endpoint, dst: Endpoint, jobs: usize) -> usize {
    let (a, b) = if src <= dst { (src, dst) } else { (dst, src) };
    // A fixed hash: the same capture shards the same way on every run. FxHash mixes its last
    // word poorly, hence the multiply-shift at the end.
    let mut h = crate::net::hash::FxHasher::default();
    a.hash(&mut h);
    b.hash(&mut h);
    let x = h.finish();
    let u = (x ^ (x >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9) >> 32;
    // A point in [0, total) spread evenly, where shard 0 owns the first READER_SHARE and each
    // other shard WORKER_SHARE after it.
    let total = u128::from(READER_SHARE) + u128::from(WORKER_SHARE) * (jobs as u128 - 1);
    let at = u64::try_from((u128::from(u) * total) >> 32).unwrap_or(u64::MAX);
    match at.checked_sub(READER_SHARE) {
        None => 0,
        Some(rest) => (1 + rest / WORKER_SHARE) as usize,
    }
}

/// Shard 0 runs on the thread that also reads, parses and hands out every packet (and merges
/// at the end), so it is given fewer connections than a worker: relative shares. With two
/// jobs, 550 : 1000 balanced the instructions of the two threads (callgrind, `report`) to
/// 170.9 M / 167.1 M on 19 MB of 400 sessions and 252.0 M / 252.0 M on 26 MB of 1000, against
/// 298.8 M and 445.1 M for one pipeline; at 570 the first capture's reader thread ran 172.6 M.
/// Which connections hash where moves the split by a few percent either way. The share falls
/// as the per-message and per-packet work gets cheaper, since the reading, which only the
/// reader thread does, does not.
const READER_SHARE: u64 = 550;
const WORKER_SHARE: u64 = 1000;

fn ethernet_tcp(data: &[u8]) -> Option<(Endpoint, Endpoint)> {
    let ethertype = u16::from_be_bytes(*data.get(12..)?.first_chunk::<2>()?);
    let ip = data.get(14..)?;
    let (mut s, mut d) = ([0u8; 16], [0u8; 16]);
    let (l4, v6) = match (ethertype, ip.first()? >> 4) {
        (0x0800, 4) => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            let frag = u16::from_be_bytes(*ip.get(6..)?.first_chunk::<2>()?);
            // A fragment (more to come, or an offset) is reassembled on shard 0.
            if ihl < 20 || frag & 0x3fff != 0 || *ip.get(9)? != 6 {
                return None;
            }
            s.get_mut(..4)?.copy_from_slice(ip.get(12..16)?);
            d.get_mut(..4)?.copy_from_slice(ip.get(16..20)?);
            (ip.get(ihl..)?, false)
        }
        (0x86dd, 6) => {
            if *ip.get(6)? != 6 {
                return None;
            }
            s.copy_from_slice(ip.get(8..24)?);
            d.copy_from_slice(ip.get(24..40)?);
            (ip.get(40..)?, true)
        }
        _ => return None,
    };
    // Ports and the rest of a minimal TCP header.
    let ports = l4.get(..20)?;
    let port = |at: usize| {
        ports.get(at..at + 2).and_then(|b| b.first_chunk::<2>()).map(|b| u16::from_be_bytes(*b))
    };
    Some((Endpoint { ip: s, v6, port: port(0)? }, Endpoint { ip: d, v6, port: port(2)? }))
}

/// IP fragments, held on the reading thread until their datagram is whole: the connection a
/// datagram carries (TCP, or TCP inside a tunnel) is known only then, and every fragment of it
/// must reach that connection's worker, which reassembles them again, so that `-j N` reads a
/// fragmented connection as one pipeline does. A datagram given up (a conflicting overlap, the
/// buffer full, the time-out, the end of the input) sends what was held to worker 0, which
/// counts it as one pipeline would. Held bytes are bounded as the pipelines' own are.
struct Fragments {
    defrag: Defrag,
    budget: usize,
    /// What is held of each datagram, under the number it was first held with.
    held: FxHashMap<DatagramId, (u64, Vec<OwnedPacket>)>,
    /// Datagrams in the order they were first held, which is the order the defragmenter gives
    /// them up in when it needs room or times them out (entries of datagrams gone otherwise
    /// are skipped by their number).
    order: VecDeque<(DatagramId, u64)>,
    serial: u64,
    /// Bytes of the packets held, with a fixed cost each: bounded by `budget` too, since a
    /// datagram cut into 8-byte fragments holds many packets for few bytes of its own.
    held_bytes: usize,
    /// The defragmenter's drop counts when last looked at: a change means datagrams went.
    dropped: [u64; 2],
    /// Latest capture time seen, and when incomplete datagrams are next timed out.
    now: i64,
    next_expiry: i64,
}

impl Fragments {
    fn new() -> Fragments {
        Fragments {
            defrag: Defrag::default(),
            budget: crate::net::NetConfig::default().max_fragment_buffer,
            held: FxHashMap::default(),
            order: VecDeque::new(),
            serial: 0,
            held_bytes: 0,
            dropped: [0; 2],
            now: i64::MIN,
            next_expiry: i64::MIN,
        }
    }

    /// The capture's clock reached `ts`: datagrams held too long are given up, their packets
    /// put in `out` for worker 0. Every packet that is not whole TCP passes here, fragment or
    /// not, so that time-outs follow the capture's clock.
    fn tick(&mut self, ts: Timestamp, out: &mut Vec<(usize, OwnedPacket)>) {
        self.now = self.now.max(ts.0);
        if self.now >= self.next_expiry {
            self.defrag.expire(self.now);
            self.next_expiry = self.now.saturating_add(1_000_000_000);
            self.release_given_up(out);
        }
    }

    /// Takes packet `p`, the IP fragment `f` (as [`route`] parsed it), and puts in `out` the
    /// held packets that can go now, with their worker (`p` among them, or held).
    fn hold(
        &mut self,
        p: &Packet<'_>,
        f: &parse::Fragment<'_>,
        jobs: usize,
        out: &mut Vec<(usize, OwnedPacket)>,
    ) {
        self.tick(p.ts, out);
        let id = datagram_of(f);
        let res = self.defrag.add(f, self.now, self.budget);
        let (serial, mine) = match self.held.remove(&id) {
            Some(h) => h,
            None => {
                self.serial += 1;
                (self.serial, Vec::new())
            }
        };
        let worker = match res {
            FragResult::Complete { proto, src, dst, v6, payload } => {
                let inner = if proto == 6 {
                    parse::parse_tcp(&payload, src, dst, v6, 0)
                } else {
                    parse::ip_payload(proto, &payload, 0, 0)
                };
                match inner {
                    Parsed::Tcp(seg) => Some(shard_for(seg.src, seg.dst, jobs)),
                    _ => Some(0),
                }
            }
            _ if self.defrag.holds(&id) => None,
            _ => Some(0),
        };
        match worker {
            Some(w) => {
                self.held_bytes = self.held_bytes.saturating_sub(held_cost(&mine));
                out.extend(mine.into_iter().map(|h| (w, h)));
                out.push((w, OwnedPacket::of(p)));
            }
            None => {
                if mine.is_empty() {
                    self.order.push_back((id, serial));
                }
                let mut mine = mine;
                let packet = OwnedPacket::of(p);
                self.held_bytes += held_cost(std::slice::from_ref(&packet));
                mine.push(packet);
                self.held.insert(id, (serial, mine));
            }
        }
        self.release_given_up(out);
        // Over the budget (tiny fragments): the oldest held go to worker 0 as they are; only a
        // crafted flood gets here, and it is counted there as one pipeline would count it.
        let mut released = Vec::new();
        while self.held_bytes > self.budget {
            let Some(entry) = self.order.pop_front() else { break };
            if self.is_held(&entry) {
                if let Some((_, packets)) = self.held.remove(&entry.0) {
                    self.held_bytes = self.held_bytes.saturating_sub(held_cost(&packets));
                    released.extend(packets);
                }
            }
        }
        released.sort_by_key(|h| h.index);
        out.extend(released.into_iter().map(|h| (0, h)));
        // Completed datagrams leave their entries behind: gone from the front as they reach
        // it, and all at once when they outnumber what is held.
        while self.order.front().is_some_and(|e| !self.is_held(e)) {
            self.order.pop_front();
        }
        if self.order.len() > 2 * self.held.len() + 1024 {
            let held = &self.held;
            self.order.retain(|(id, n)| held.get(id).is_some_and(|(s, _)| s == n));
        }
    }

    /// Whether `entry` of the order is what is held under its datagram now.
    fn is_held(&self, &(id, serial): &(DatagramId, u64)) -> bool {
        self.held.get(&id).is_some_and(|&(s, _)| s == serial)
    }

    /// Sends to worker 0 what was held of datagrams the defragmenter has given up: the oldest
    /// held, up to the first it still holds.
    fn release_given_up(&mut self, out: &mut Vec<(usize, OwnedPacket)>) {
        if self.defrag.dropped == self.dropped {
            return;
        }
        self.dropped = self.defrag.dropped;
        let mut released = Vec::new();
        while let Some(&entry) = self.order.front() {
            // Entries of datagrams completed or given up already (and perhaps held again since)
            // are passed over.
            if self.is_held(&entry) {
                if self.defrag.holds(&entry.0) {
                    break;
                }
                if let Some((_, packets)) = self.held.remove(&entry.0) {
                    self.held_bytes = self.held_bytes.saturating_sub(held_cost(&packets));
                    released.extend(packets);
                }
            }
            self.order.pop_front();
        }
        // In capture order, as one pipeline would have seen them.
        released.sort_by_key(|h| h.index);
        out.extend(released.into_iter().map(|h| (0, h)));
    }

    /// The input ended: whatever is held goes to worker 0, in capture order.
    fn release_all(&mut self, out: &mut Vec<(usize, OwnedPacket)>) {
        self.order.clear();
        self.held_bytes = 0;
        let mut released: Vec<OwnedPacket> = self.held.drain().flat_map(|(_, (_, v))| v).collect();
        released.sort_by_key(|h| h.index);
        out.extend(released.into_iter().map(|h| (0, h)));
    }
}

/// What a held packet costs against the budget beyond its bytes (its record, its place in the
/// hold), as `frag::DATAGRAM_COST` is a datagram's in the defragmenter.
const HELD_PACKET_COST: usize = 96;

/// What held packets cost against the budget: their bytes and a fixed cost each.
fn held_cost(packets: &[OwnedPacket]) -> usize {
    packets.iter().map(|p| p.data.len() + HELD_PACKET_COST).sum()
}

/// A worker as the reader sees it: where to send full batches and where empty ones return.
struct Lane {
    to: SyncSender<Batch>,
    back: Receiver<Batch>,
    filling: Batch,
    /// Batches allocated for this lane so far (bounded by [`IN_FLIGHT`] + 1).
    allocated: usize,
}

impl Lane {
    /// Sends the batch being filled; false when the worker is gone (it failed).
    fn flush(&mut self) -> bool {
        if self.filling.is_empty() {
            return true;
        }
        let next = match self.back.try_recv() {
            Ok(b) => b,
            Err(_) if self.allocated <= IN_FLIGHT => {
                self.allocated += 1;
                Batch::default()
            }
            // Every batch is in flight: wait for the worker to return one.
            Err(_) => match self.back.recv() {
                Ok(b) => b,
                Err(_) => return false,
            },
        };
        let full = std::mem::replace(&mut self.filling, next);
        self.to.send(full).is_ok()
    }
}

/// Feeds every packet of `sources` (numbering records across them) through `jobs` pipelines
/// made by `make`, one per worker, and returns each pipeline's finished consumer and totals in
/// worker order. `make` is given the time of the capture's first packet (a worker's own first
/// packet may come much later, and relative times must not depend on the sharding). Capture errors are reported through `report` as in
/// [`super::run_sources`]; `progress` hears where the reader is every so often. A consumer
/// error stops the run and is returned.
pub fn run_sharded<C, M>(
    sources: &mut dyn Iterator<Item = Result<Box<dyn PacketSource>, CaptureError>>,
    jobs: usize,
    make: M,
    report: &mut dyn FnMut(&str),
    progress: &mut dyn FnMut(Position),
) -> io::Result<(Vec<(C, Totals)>, RunOutcome)>
where
    C: Consumer + Send,
    M: Fn(Timestamp) -> Pipeline<C> + Sync,
{
    let jobs = jobs.max(1);
    if jobs == 1 {
        let mut pipeline = None;
        let outcome = read_all(sources, report, progress, &mut |p| {
            pipeline.get_or_insert_with(|| make(p.ts)).packet(p)
        })?;
        let pipeline = pipeline.unwrap_or_else(|| make(Timestamp::default()));
        return Ok((vec![pipeline.finish()?], outcome));
    }
    std::thread::scope(|scope| {
        // Lanes to the workers of shards 1..jobs; shard 0 is `inline`.
        let mut lanes = Vec::with_capacity(jobs - 1);
        let mut handles = Vec::with_capacity(jobs - 1);
        for _ in 1..jobs {
            let (to, from) = mpsc::sync_channel::<Batch>(IN_FLIGHT);
            let (give_back, back) = mpsc::channel::<Batch>();
            let make = &make;
            handles.push(scope.spawn(move || work(make, from, give_back)));
            lanes.push(Lane {
                to,
                back,
                filling: Batch { data: Vec::with_capacity(BATCH_BYTES), ..Batch::default() },
                allocated: 1,
            });
        }
        let mut capture_start = None;
        let mut last = None;
        let mut inline: Option<Pipeline<C>> = None;
        let mut fragments = Fragments::new();
        let mut ready: Vec<(usize, OwnedPacket)> = Vec::new();
        // Hands packet `p` to worker `i`.
        let mut send = |i: usize, p: &Packet<'_>, start: Timestamp| -> io::Result<()> {
            if i == 0 {
                return inline.get_or_insert_with(|| make(start)).packet(p);
            }
            let Some(lane) = lanes.get_mut(i - 1) else { return Ok(()) };
            lane.filling.capture_start = start;
            lane.filling.push(p);
            if lane.filling.data.len() >= BATCH_BYTES && !lane.flush() {
                return Err(io::Error::other("a worker stopped"));
            }
            Ok(())
        };
        let read = read_all(sources, report, progress, &mut |p| {
            let start = *capture_start.get_or_insert(p.ts);
            last = Some(PktCtx { index: p.index, ts: p.ts });
            // Whole TCP packets are routed at once; only what is not (fragments among it) is
            // looked at further.
            match route(p.link, p.data, p.orig_len, jobs) {
                Route::Worker(i) => send(i, p, start)?,
                Route::Fragment(f) => fragments.hold(p, &f, jobs, &mut ready),
                Route::Other => {
                    fragments.tick(p.ts, &mut ready);
                    send(0, p, start)?;
                }
            }
            for (w, h) in ready.drain(..) {
                send(w, &h.packet(), start)?;
            }
            Ok(())
        });
        let start = capture_start.unwrap_or_default();
        fragments.release_all(&mut ready);
        for (w, h) in ready.drain(..) {
            send(w, &h.packet(), start)?;
        }
        for lane in &mut lanes {
            lane.filling.capture_start = start;
            lane.filling.end = last;
            lane.flush();
        }
        // Closing the channels ends the workers; shard 0 finishes meanwhile.
        drop(lanes);
        let mut results = Vec::with_capacity(jobs);
        let mut first_error = None;
        let mut shard0 = inline.unwrap_or_else(|| make(start));
        if let Some(end) = last {
            shard0.capture_ended_at(end);
        }
        match shard0.finish() {
            Ok(r) => results.push(r),
            Err(e) => first_error = Some(e),
        }
        for h in handles {
            match h.join() {
                Ok(Ok(r)) => results.push(r),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(io::Error::other("a worker thread panicked"));
                }
            }
        }
        // A worker's own error (e.g. a closed pipe) explains a failed send better.
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok((results, read?))
    })
}

/// A worker: runs its pipeline over the batches it receives until the channel closes.
fn work<C: Consumer>(
    make: &dyn Fn(Timestamp) -> Pipeline<C>,
    from: Receiver<Batch>,
    give_back: mpsc::Sender<Batch>,
) -> io::Result<(C, Totals)> {
    let mut pipeline = None;
    while let Ok(mut batch) = from.recv() {
        let pipeline = pipeline.get_or_insert_with(|| make(batch.capture_start));
        for h in &batch.headers {
            let data = h.start.checked_add(h.len).and_then(|end| batch.data.get(h.start..end));
            let pkt = Packet {
                index: h.index,
                ts: h.ts,
                link: h.link,
                orig_len: h.orig_len,
                data: data.unwrap_or(&[]),
                file_offset: h.file_offset,
            };
            pipeline.packet(&pkt)?;
        }
        if let Some(end) = batch.end {
            pipeline.capture_ended_at(end);
        }
        batch.clear();
        // The reader may be done and gone: then the buffer is simply dropped.
        let _ = give_back.send(batch);
    }
    pipeline.unwrap_or_else(|| make(Timestamp::default())).finish()
}

/// Reads every record of `sources` in order and hands it to `each`, with the same numbering,
/// warnings and errors as [`super::run_sources`].
#[inline]
pub(crate) fn read_all(
    sources: &mut dyn Iterator<Item = Result<Box<dyn PacketSource>, CaptureError>>,
    report: &mut dyn FnMut(&str),
    progress: &mut dyn FnMut(Position),
    each: &mut dyn FnMut(&Packet<'_>) -> io::Result<()>,
) -> io::Result<RunOutcome> {
    let mut outcome = RunOutcome::default();
    let mut next_index = 1u64;
    for (file, source) in sources.enumerate() {
        let mut src = match source {
            Ok(s) => s,
            Err(e) => {
                report(&format!("error: {e}"));
                outcome.errors += 1;
                continue;
            }
        };
        src.set_next_index(next_index);
        let name = src.name().to_string();
        let mut unsupported: Vec<LinkType> = Vec::new();
        let mut since_progress = 0u64;
        loop {
            match src.next_packet() {
                Ok(Some(pkt)) => {
                    next_index = pkt.index + 1;
                    outcome.time_order.see(pkt.index, pkt.ts);
                    if !crate::net::link_supported(pkt.link) && !unsupported.contains(&pkt.link) {
                        unsupported.push(pkt.link);
                        report(&format!(
                            "error: {}: offset {}: unsupported link type {} (its packets are counted, not decoded)",
                            name, pkt.file_offset, pkt.link
                        ));
                        outcome.errors += 1;
                    }
                    each(&pkt)?;
                    since_progress += 1;
                    if since_progress >= PROGRESS_EVERY {
                        since_progress = 0;
                        progress(Position { file, bytes: src.stats().bytes });
                    }
                }
                Ok(None) => break,
                Err(e) if e.is_warning() => {
                    report(&format!("warning: {e}"));
                    outcome.warnings += 1;
                    break;
                }
                Err(e) => {
                    report(&format!("error: {e}"));
                    outcome.errors += 1;
                    break;
                }
            }
        }
        progress(Position { file, bytes: src.stats().bytes });
        // Damage the reader passed over: the file is corrupt (an error, as when reading stopped
        // there), but the records after it were read.
        let st = src.stats();
        if let Some((at, damage)) = st.first_damage {
            let after = if st.damaged > 0 { ", the records after them read" } else { "" };
            report(&format!(
                "error: {name}: offset {at}: corrupt capture: {damage}; {}{after}",
                st.damage_done()
            ));
            outcome.errors += 1;
        }
        // Records the reader had to drop are lost evidence: say so even though the rest of the
        // file is usable.
        let bad = src.stats().bad_records;
        if bad > 0 {
            report(&format!(
                "warning: {name}: {bad} packet records skipped (they name an undeclared interface)"
            ));
            outcome.warnings += 1;
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 + TCP (no payload) from `src` to `dst`.
    fn tcp_packet(src: ([u8; 4], u16), dst: ([u8; 4], u16)) -> Vec<u8> {
        let ip = [&[0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0][..], &src.0, &dst.0].concat();
        ethernet(0x0800, &ip, src.1, dst.1)
    }

    /// Ethernet + IPv6 + TCP (no payload) from `src` to `dst`.
    fn tcp6_packet(src: ([u8; 16], u16), dst: ([u8; 16], u16)) -> Vec<u8> {
        let ip = [&[0x60, 0, 0, 0, 0, 20, 6, 64][..], &src.0, &dst.0].concat();
        ethernet(0x86dd, &ip, src.1, dst.1)
    }

    /// An Ethernet frame of `ethertype` around the IP header `ip` and a bare TCP ACK.
    fn ethernet(ethertype: u16, ip: &[u8], sport: u16, dport: u16) -> Vec<u8> {
        let mut p = vec![0u8; 12];
        p.extend_from_slice(&ethertype.to_be_bytes());
        p.extend_from_slice(ip);
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&sport.to_be_bytes());
        tcp[2..4].copy_from_slice(&dport.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x10;
        p.extend_from_slice(&tcp);
        p
    }

    #[test]
    fn both_directions_go_to_one_worker() {
        let mut seen = [false; 4];
        for port in 40000u16..40064 {
            let c = ([10, 0, 0, 1], port);
            let s = ([192, 0, 2, 7], 6717);
            let up = tcp_packet(c, s);
            let down = tcp_packet(s, c);
            let a = shard_of(LinkType::ETHERNET, &up, up.len() as u32, 4);
            let b = shard_of(LinkType::ETHERNET, &down, down.len() as u32, 4);
            assert_eq!(a, b, "port {port}");
            if let Some(x) = seen.get_mut(a) {
                *x = true;
            }
            assert_eq!(shard_of(LinkType::ETHERNET, &up, up.len() as u32, 1), 0);
        }
        assert!(seen.iter().all(|&x| x), "64 connections spread over 4 workers: {seen:?}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 20000, ..Default::default() })]
        /// Where the full parser finds a TCP segment, the direct read finds the same endpoints
        /// or defers to it; so every packet of a connection reaches the same shard.
        #[test]
        fn the_direct_read_agrees_with_the_parser(
            v6 in proptest::prelude::any::<bool>(),
            edits in proptest::collection::vec((0usize..80, proptest::prelude::any::<u8>()), 0..4),
            cut in 0usize..80,
            extra in 0usize..40,
        ) {
            let mut p = if v6 {
                tcp6_packet(([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 40000), ([0xfe; 16], 6717))
            } else {
                tcp_packet(([10, 0, 0, 1], 40000), ([192, 0, 2, 7], 6717))
            };
            p.extend(std::iter::repeat_n(0xab, extra));
            for (at, b) in edits {
                if let Some(x) = p.get_mut(at) {
                    *x = b;
                }
            }
            p.truncate(p.len().saturating_sub(cut % 8 * (cut / 8 % 2)));
            let len = p.len() as u32;
            if let Parsed::Tcp(seg) = parse::parse(LinkType::ETHERNET, &p, len) {
                if let Some((s, d)) = ethernet_tcp(&p) {
                    proptest::prop_assert_eq!((s, d), (seg.src, seg.dst));
                }
            }
            proptest::prop_assert_eq!(
                matches!(route(LinkType::ETHERNET, &p, len, 2), Route::Worker(_)),
                ethernet_tcp(&p).is_some() || matches!(parse::parse(LinkType::ETHERNET, &p, len), Parsed::Tcp(_))
            );
        }
    }

    #[test]
    fn unmodified_packets_are_read_directly() {
        let p = tcp_packet(([10, 0, 0, 1], 40000), ([192, 0, 2, 7], 6717));
        let Parsed::Tcp(seg) = parse::parse(LinkType::ETHERNET, &p, p.len() as u32) else {
            panic!()
        };
        assert_eq!(ethernet_tcp(&p), Some((seg.src, seg.dst)));
        let p = tcp6_packet(([1; 16], 1), ([2; 16], 2));
        let Parsed::Tcp(seg) = parse::parse(LinkType::ETHERNET, &p, p.len() as u32) else {
            panic!()
        };
        assert_eq!(ethernet_tcp(&p), Some((seg.src, seg.dst)));
    }

    /// Shard 0 gets READER_SHARE / (READER_SHARE + WORKER_SHARE · (jobs − 1)) of the
    /// connections, the others equal parts of the rest.
    #[test]
    fn connections_are_shared_by_weight() {
        for jobs in 2..=4usize {
            let mut n = vec![0u32; jobs];
            let conns = 20_000u32;
            for i in 0..conns {
                let c = ([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 40000 + (i % 997) as u16);
                let p = tcp_packet(c, ([192, 0, 2, 7], 6717));
                if let Some(x) = n.get_mut(shard_of(LinkType::ETHERNET, &p, p.len() as u32, jobs)) {
                    *x += 1;
                }
            }
            let total = (READER_SHARE + WORKER_SHARE * (jobs as u64 - 1)) as f64;
            for (i, &got) in n.iter().enumerate() {
                let share = if i == 0 { READER_SHARE } else { WORKER_SHARE } as f64 / total;
                let got = f64::from(got) / f64::from(conns);
                assert!((got - share).abs() < 0.02, "{jobs} jobs, shard {i}: {got} of {share}");
            }
        }
    }

    #[test]
    fn what_is_not_tcp_goes_to_worker_0() {
        for len in 0..54 {
            let p = tcp_packet(([10, 0, 0, 1], 1), ([10, 0, 0, 2], 2));
            let cut = p.get(..len).unwrap_or(&[]);
            // Truncated headers are not TCP; whatever they are, they must not panic.
            let w = shard_of(LinkType::ETHERNET, cut, 54, 3);
            assert!(w < 3);
        }
        let arp = [0u8; 42];
        assert_eq!(shard_of(LinkType::ETHERNET, &arp, 42, 3), 0);
    }

    /// An IPv4 fragment (Ethernet) of datagram `id` from 10.1.`host`: `data` at `offset`.
    fn fragment(host: [u8; 2], id: u16, offset: u16, more: bool, data: &[u8]) -> Vec<u8> {
        let flags = (if more { 0x2000 } else { 0 }) | (offset / 8);
        let mut p = vec![0u8; 12];
        p.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
        p.extend_from_slice(&(20 + data.len() as u16).to_be_bytes());
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&flags.to_be_bytes());
        p.extend_from_slice(&[64, 6, 0, 0, 10, 1, host[0], host[1], 10, 0, 0, 1]);
        p.extend_from_slice(data);
        p
    }

    /// What the reader does with packet `p` that is a fragment; `false` if it is not.
    fn take(
        f: &mut Fragments,
        p: &Packet<'_>,
        jobs: usize,
        out: &mut Vec<(usize, OwnedPacket)>,
    ) -> bool {
        match route(p.link, p.data, p.orig_len, jobs) {
            Route::Fragment(g) => {
                f.hold(p, &g, jobs, out);
                true
            }
            _ => false,
        }
    }

    fn pkt(index: u64, data: &[u8]) -> Packet<'_> {
        let ts = Timestamp(1_000_000_000_000 + index as i64 * 1000);
        let orig_len = data.len() as u32;
        Packet { index, ts, link: LinkType::ETHERNET, orig_len, data, file_offset: 0 }
    }

    /// A datagram's fragments are held until it is whole and then all go to its connection's
    /// worker; one never completed goes to worker 0 at the end; and what completed datagrams
    /// leave behind does not pile up behind an old incomplete one.
    #[test]
    fn fragments_go_to_the_worker_of_their_connection() {
        let jobs = 3;
        let mut f = Fragments::new();
        let mut out = Vec::new();
        // Datagram 1 never completes.
        let lone = fragment([255, 255], 1, 0, true, &[0u8; 16]);
        assert!(take(&mut f, &pkt(1, &lone), jobs, &mut out));
        assert!(out.is_empty());
        let mut index = 1;
        for n in 0..3000u16 {
            let host = n.to_be_bytes();
            let mut tcp = vec![0u8; 20];
            tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
            tcp[2..4].copy_from_slice(&6717u16.to_be_bytes());
            tcp[12] = 5 << 4;
            tcp.extend_from_slice(&[7u8; 20]);
            let (a, b) = tcp.split_at(24);
            let first = fragment(host, 2, 0, true, a);
            let last = fragment(host, 2, 24, false, b);
            index += 1;
            assert!(take(&mut f, &pkt(index, &first), jobs, &mut out));
            assert!(out.is_empty(), "{n}: sent before it was whole");
            index += 1;
            assert!(take(&mut f, &pkt(index, &last), jobs, &mut out));
            let whole = tcp_packet(([10, 1, host[0], host[1]], 40000), ([10, 0, 0, 1], 6717));
            let want = shard_of(LinkType::ETHERNET, &whole, whole.len() as u32, jobs);
            let got: Vec<(usize, u64)> = out.drain(..).map(|(w, p)| (w, p.index)).collect();
            assert_eq!(got, vec![(want, index - 1), (want, index)], "{n}");
            assert!(f.order.len() <= 2 * f.held.len() + 1025, "{n}: {} entries", f.order.len());
            assert_eq!(f.held_bytes, f.held.values().map(|(_, v)| held_cost(v)).sum::<usize>());
        }
        f.release_all(&mut out);
        let got: Vec<(usize, u64)> = out.drain(..).map(|(w, p)| (w, p.index)).collect();
        assert_eq!(got, vec![(0, 1)]);
    }

    /// Packets held past the budget (datagrams cut into many tiny fragments, never whole): the
    /// oldest datagram's go to worker 0, in capture order, before the hold outgrows the budget;
    /// the defragmenter, with far less to hold for the same fragments, keeps them all.
    #[test]
    fn held_packets_past_the_budget_go_to_worker_0_oldest_first() {
        let jobs = 2;
        let mut f = Fragments::new();
        f.budget = 2000;
        let mut out = Vec::new();
        let mut index = 0;
        let mut send = |f: &mut Fragments, out: &mut Vec<_>, id: u16, k: u16| {
            index += 1;
            let p = fragment([0, 1], id, k * 8, true, &[k as u8; 8]);
            assert!(take(f, &pkt(index, &p), jobs, out));
            assert!(f.held_bytes <= f.budget, "{index}: {} held", f.held_bytes);
            assert_eq!(f.held_bytes, f.held.values().map(|(_, v)| held_cost(v)).sum::<usize>());
            index
        };
        // Datagram 1: ten fragments, 42 bytes each, 1380 counted against 2000.
        for k in 0..10 {
            send(&mut f, &mut out, 1, k);
        }
        assert!(out.is_empty());
        let mut released_at = None;
        for k in 0..10 {
            let i = send(&mut f, &mut out, 2, k);
            if !out.is_empty() && released_at.is_none() {
                released_at = Some(i);
                let got: Vec<(usize, u64)> = out.drain(..).map(|(w, p)| (w, p.index)).collect();
                assert_eq!(got, (1..=10).map(|i| (0, i)).collect::<Vec<_>>());
            }
        }
        // The fifteenth packet (2070 bytes counted) was the first over the budget.
        assert_eq!(released_at, Some(15));
        assert!(out.is_empty(), "only datagram 1 went");
        assert_eq!(f.held.len(), 1);
        assert!(f.defrag.holds(&fragment_datagram(2)), "the defragmenter still has datagram 2");
        f.release_all(&mut out);
        let got: Vec<(usize, u64)> = out.drain(..).map(|(w, p)| (w, p.index)).collect();
        assert_eq!(got, (11..=20).map(|i| (0, i)).collect::<Vec<_>>());
    }

    /// The datagram of [`fragment`]`([0, 1], id, ..)`.
    fn fragment_datagram(id: u16) -> DatagramId {
        let p = fragment([0, 1], id, 0, true, &[0; 8]);
        match parse::parse(LinkType::ETHERNET, &p, p.len() as u32) {
            Parsed::Fragment(g) => datagram_of(&g),
            _ => panic!("not a fragment"),
        }
    }
}
