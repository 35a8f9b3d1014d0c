//! `dissect` over several threads: the calling thread reads records, reassembles, splits and
//! LZ4-unwraps; worker threads decode the messages and render them, a batch each in turn; a
//! writer thread writes the rendered batches in their order.
//!
//! Invariants:
//! - The output is byte for byte what a [`Printer`] driven by a single-threaded [`Pipeline`]
//!   writes, and the totals are the same. The reading side runs an ordinary pipeline whose
//!   consumer ([`Forwarder`]) [defers decoding](Consumer::defers_decoding): it copies each
//!   message body and the little context the printer needs into a batch, and every other
//!   event as an owned copy. The pipeline still decodes what its own decisions need (roles,
//!   MSync detection, LZ4 negotiation), so those come out as before. The workers decode the
//!   bodies with the printer's [`Consumer::meta_bodies_wanted`] and count `messages`,
//!   `decode_errors` and `not_utf8_messages` for them.
//! - Batch `i` goes to worker `i mod n`, and the writer takes batch `i`'s output from worker
//!   `i mod n`: the order is kept without sequence numbers. A printer's only state is a cache
//!   of connection endpoints (checked against the addresses on every use), so each worker has
//!   its own; the connections closed since a worker's last batch come with its next one, so
//!   that it can drop them from its cache.
//! - A connection's [`ConnMeta`] is sent when a message first needs it and again whenever it
//!   changes (the roles are swapped at most once), to every worker, not with every message.
//! - Batches hold about [`BATCH_BYTES`] of message bytes and come back for reuse, as do the
//!   output buffers, and every channel is bounded: memory stays at a few batches per worker
//!   whatever the capture size.
//! - A write error (e.g. a closed pipe) ends the writer; the workers' next hand-over fails,
//!   then the reading side's, which stops the run, and the write error is the one returned.

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread;

use super::print::{PrintOptions, Printer};
use super::{
    run_sources, Consumer, Event, FrameProblem, Lz4Info, MsgCtx, Pipeline, PipelineConfig,
    RunOutcome, Totals, Transport, TransportNote,
};
use crate::capture::{CaptureError, PacketSource, Timestamp};
use crate::msync::decode::{self, Command, DecodeError, DecodeLimits};
use crate::net::hash::FxHashMap;
use crate::net::{CloseReason, ConnId, ConnMeta, Dir, PktCtx, TcpNote};

/// Bytes of message data per batch.
pub const BATCH_BYTES: usize = 256 << 10;
/// Items per batch at most (for batches of small events).
const BATCH_ITEMS: usize = 4096;
/// Batches queued per worker, and rendered outputs queued per worker for the writer.
const QUEUED: usize = 2;
/// A returned batch whose buffer grew past this (a huge message) is not reused.
const KEEP_CAPACITY: usize = 4 << 20;

/// A [`MsgCtx`] without the borrow: the connection by its id.
#[derive(Clone, Copy, Debug)]
struct Ctx {
    frame: u64,
    ts: Timestamp,
    capture_start: Timestamp,
    conn: u32,
    dir: Dir,
    stream_offset: u64,
    wire_len: u64,
    transport: Transport,
    lz4: Option<Lz4Info>,
}

impl Ctx {
    fn of(ctx: &MsgCtx<'_>) -> Ctx {
        Ctx {
            frame: ctx.frame,
            ts: ctx.ts,
            capture_start: ctx.capture_start,
            conn: ctx.conn.id.0,
            dir: ctx.dir,
            stream_offset: ctx.stream_offset,
            wire_len: ctx.wire_len,
            transport: ctx.transport,
            lz4: ctx.lz4,
        }
    }

    fn with<'a>(&self, conn: &'a ConnMeta) -> MsgCtx<'a> {
        MsgCtx {
            frame: self.frame,
            ts: self.ts,
            capture_start: self.capture_start,
            conn,
            dir: self.dir,
            stream_offset: self.stream_offset,
            wire_len: self.wire_len,
            transport: self.transport,
            lz4: self.lz4,
        }
    }
}

/// Bytes `start..end` of a batch's data.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    end: usize,
}

#[derive(Debug)]
enum Item {
    /// A message body to decode.
    Message { ctx: Ctx, raw: Span },
    /// A connection's current endpoints and roles, for the messages after it.
    Conn(Box<ConnMeta>),
    /// Any other event.
    Event(Box<Owned>),
}

/// An [`Event`] other than a message, owned.
#[derive(Debug)]
enum Owned {
    ConnOpen { pkt: PktCtx, conn: ConnMeta },
    MsyncDetected { pkt: PktCtx, conn: ConnMeta, transport: Transport },
    DecodeError { ctx: Ctx, raw: Span, error: DecodeError },
    Frame { pkt: PktCtx, conn: ConnId, dir: Dir, offset: u64, problem: FrameProblem },
    Gap { pkt: PktCtx, conn: ConnId, dir: Dir, offset: u64, len: u64 },
    Tcp { pkt: PktCtx, conn: ConnId, dir: Dir, note: TcpNote },
    ConnClose { pkt: PktCtx, conn: ConnMeta, reason: CloseReason, msync: bool, last: Timestamp },
    Transport { pkt: PktCtx, conn: ConnId, dir: Dir, note: TransportNote },
}

#[derive(Debug, Default)]
struct Batch {
    items: Vec<Item>,
    data: Vec<u8>,
    /// Connections closed since the worker's previous batch.
    closed: Vec<ConnId>,
}

impl Batch {
    fn bytes(&mut self, raw: &[u8]) -> Span {
        let start = self.data.len();
        self.data.extend_from_slice(raw);
        Span { start, end: self.data.len() }
    }

    fn get(&self, s: Span) -> &[u8] {
        self.data.get(s.start..s.end).unwrap_or_default()
    }
}

/// The reading side's consumer: packs events into batches for the workers, in turn.
struct Forwarder {
    /// One per worker, used in turn.
    txs: Vec<SyncSender<Batch>>,
    /// The worker the batch being filled goes to.
    next: usize,
    back: Receiver<Batch>,
    batch: Batch,
    /// Per worker, the connections closed since its last batch.
    closed: Vec<Vec<ConnId>>,
    /// What was last sent of each open connection, and to which workers (a bit each).
    sent: FxHashMap<u32, (ConnMeta, u64)>,
    /// A batch is handed over once its data reaches this.
    batch_bytes: usize,
}

/// The next stage is gone (the output failed): the run stops.
fn stopped() -> io::Error {
    io::Error::other("the output thread stopped")
}

impl Forwarder {
    /// Makes sure the worker of the current batch knows `meta` as it is now.
    fn conn(&mut self, meta: &ConnMeta) {
        let bit = 1u64 << (self.next % 64);
        match self.sent.get_mut(&meta.id.0) {
            Some((m, workers)) if m == meta => {
                if *workers & bit != 0 {
                    return;
                }
                *workers |= bit;
            }
            _ => {
                self.sent.insert(meta.id.0, (meta.clone(), bit));
            }
        }
        self.batch.items.push(Item::Conn(Box::new(meta.clone())));
    }

    fn push(&mut self, ev: Owned) -> io::Result<()> {
        self.batch.items.push(Item::Event(Box::new(ev)));
        self.full()
    }

    fn full(&mut self) -> io::Result<()> {
        if self.batch.data.len() >= self.batch_bytes || self.batch.items.len() >= BATCH_ITEMS {
            self.send()
        } else {
            Ok(())
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let next = self.back.try_recv().unwrap_or_default();
        let mut full = std::mem::replace(&mut self.batch, next);
        let k = self.next;
        self.next = (k + 1) % self.txs.len().max(1);
        if let Some(closed) = self.closed.get_mut(k) {
            std::mem::swap(&mut full.closed, closed);
        }
        self.txs.get(k).ok_or_else(stopped)?.send(full).map_err(|_| stopped())
    }
}

impl Consumer for Forwarder {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
        let owned = match *ev {
            Event::ConnOpen { pkt, conn } => Owned::ConnOpen { pkt, conn: conn.clone() },
            Event::MsyncDetected { pkt, conn, transport } => {
                Owned::MsyncDetected { pkt, conn: conn.clone(), transport }
            }
            // Not sent while decoding is deferred; handed on the same way if it were.
            Event::Message { ctx, raw, .. } => return self.undecoded(ctx, raw).map(drop),
            Event::DecodeError { ctx, raw, error } => {
                self.conn(ctx.conn);
                let raw = self.batch.bytes(raw);
                Owned::DecodeError { ctx: Ctx::of(ctx), raw, error: error.clone() }
            }
            Event::Frame { pkt, conn, dir, offset, problem } => {
                Owned::Frame { pkt, conn, dir, offset, problem }
            }
            Event::Gap { pkt, conn, dir, offset, len } => {
                Owned::Gap { pkt, conn, dir, offset, len }
            }
            Event::Tcp { pkt, conn, dir, note } => Owned::Tcp { pkt, conn, dir, note },
            Event::ConnClose { pkt, conn, reason, msync, last } => {
                self.sent.remove(&conn.id.0);
                for closed in &mut self.closed {
                    closed.push(conn.id);
                }
                Owned::ConnClose { pkt, conn: conn.clone(), reason, msync, last }
            }
            Event::Transport { pkt, conn, dir, note } => {
                Owned::Transport { pkt, conn, dir, note: note.clone() }
            }
        };
        self.push(owned)
    }

    fn undecoded(&mut self, ctx: &MsgCtx<'_>, raw: &[u8]) -> io::Result<Option<Command>> {
        self.conn(ctx.conn);
        let raw = self.batch.bytes(raw);
        self.batch.items.push(Item::Message { ctx: Ctx::of(ctx), raw });
        self.full().map(|()| None)
    }

    fn finish(&mut self, _totals: &Totals) -> io::Result<()> {
        if !self.batch.items.is_empty() {
            self.send()?;
        }
        Ok(())
    }

    fn meta_bodies_wanted(&self) -> usize {
        0
    }

    fn defers_decoding(&self) -> bool {
        true
    }
}

/// A worker's rendering of one batch.
struct Output {
    bytes: Vec<u8>,
    counts: Counts,
}

/// What the workers count for the run's totals.
#[derive(Clone, Copy, Default)]
struct Counts {
    messages: u64,
    decode_errors: u64,
    inflate_capped: u64,
    decode_capped: u64,
    not_utf8: u64,
    selected: u64,
}

/// A worker: decodes and renders its batches, in the order they come, until the reading side
/// is done (or the writer is gone).
fn work(
    mut printer: Printer<Vec<u8>>,
    rx: Receiver<Batch>,
    back: Sender<Batch>,
    out: SyncSender<Output>,
    out_back: Receiver<Vec<u8>>,
    limits: DecodeLimits,
) -> io::Result<()> {
    let metas = printer.meta_bodies_wanted();
    let mut conns: FxHashMap<u32, ConnMeta> = FxHashMap::default();
    let unknown = || io::Error::other("a message of an unknown connection");
    for mut batch in rx {
        let mut counts = Counts::default();
        let selected = printer.selected();
        for item in &batch.items {
            match item {
                Item::Message { ctx, raw } => {
                    let conn = conns.get(&ctx.conn).ok_or_else(unknown)?;
                    let ctx = ctx.with(conn);
                    let raw = batch.get(*raw);
                    match decode::decode_metas(raw, ctx.dir, &limits, metas) {
                        Ok(msg) => {
                            counts.messages += 1;
                            counts.not_utf8 += u64::from(msg.not_utf8_in_message > 0);
                            printer.event(&Event::Message { ctx: &ctx, raw, msg: &msg })?;
                        }
                        Err(error) => {
                            counts.decode_errors += 1;
                            if matches!(error, decode::DecodeError::InflateTooLarge(_)) {
                                counts.inflate_capped += 1;
                            }
                            if matches!(error, decode::DecodeError::OverBudget(_)) {
                                counts.decode_capped += 1;
                            }
                            printer.event(&Event::DecodeError { ctx: &ctx, raw, error: &error })?;
                        }
                    }
                }
                Item::Conn(meta) => {
                    conns.insert(meta.id.0, (**meta).clone());
                }
                Item::Event(ev) => match &**ev {
                    Owned::ConnOpen { pkt, conn } => {
                        printer.event(&Event::ConnOpen { pkt: *pkt, conn })?;
                    }
                    Owned::MsyncDetected { pkt, conn, transport } => {
                        let transport = *transport;
                        printer.event(&Event::MsyncDetected { pkt: *pkt, conn, transport })?;
                    }
                    Owned::DecodeError { ctx, raw, error } => {
                        let conn = conns.get(&ctx.conn).ok_or_else(unknown)?;
                        let ctx = ctx.with(conn);
                        let raw = batch.get(*raw);
                        printer.event(&Event::DecodeError { ctx: &ctx, raw, error })?;
                    }
                    &Owned::Frame { pkt, conn, dir, offset, problem } => {
                        printer.event(&Event::Frame { pkt, conn, dir, offset, problem })?;
                    }
                    &Owned::Gap { pkt, conn, dir, offset, len } => {
                        printer.event(&Event::Gap { pkt, conn, dir, offset, len })?;
                    }
                    &Owned::Tcp { pkt, conn, dir, note } => {
                        printer.event(&Event::Tcp { pkt, conn, dir, note })?;
                    }
                    Owned::ConnClose { pkt, conn, reason, msync, last } => {
                        let (pkt, reason, msync, last) = (*pkt, *reason, *msync, *last);
                        printer.event(&Event::ConnClose { pkt, conn, reason, msync, last })?;
                        conns.remove(&conn.id.0);
                    }
                    Owned::Transport { pkt, conn, dir, note } => {
                        let (pkt, conn, dir) = (*pkt, *conn, *dir);
                        printer.event(&Event::Transport { pkt, conn, dir, note })?;
                    }
                },
            }
        }
        // Closed before this batch's events (and after the previous batch's): no later
        // message refers to them.
        for id in batch.closed.drain(..) {
            printer.forget(id);
            conns.remove(&id.0);
        }
        counts.selected = printer.selected() - selected;
        let next = out_back.try_recv().unwrap_or_default();
        let bytes = std::mem::replace(printer.out_mut(), next);
        out.send(Output { bytes, counts }).map_err(|_| stopped())?;
        batch.items.clear();
        batch.data.clear();
        if batch.data.capacity() <= KEEP_CAPACITY {
            // The reading side may be gone already: then the batch is simply dropped.
            let _ = back.send(batch);
        }
    }
    Ok(())
}

/// The writer: takes the workers' outputs in turn (batch order) and writes them, until the
/// worker whose turn it is has no more. Returns the output and the counts of messages and
/// decode errors.
fn write_all<W: Write>(
    mut w: W,
    outs: Vec<Receiver<Output>>,
    backs: Vec<Sender<Vec<u8>>>,
) -> io::Result<(W, Counts)> {
    let mut counts = Counts::default();
    loop {
        for (rx, back) in outs.iter().zip(&backs) {
            let Ok(mut o) = rx.recv() else {
                return Ok((w, counts));
            };
            w.write_all(&o.bytes)?;
            counts.messages += o.counts.messages;
            counts.decode_errors += o.counts.decode_errors;
            counts.inflate_capped += o.counts.inflate_capped;
            counts.decode_capped += o.counts.decode_capped;
            counts.not_utf8 += o.counts.not_utf8;
            counts.selected += o.counts.selected;
            o.bytes.clear();
            if o.bytes.capacity() <= KEEP_CAPACITY {
                let _ = back.send(o.bytes);
            }
        }
    }
}

/// Most workers [`print`] runs (the reading side tracks them in a 64-bit set).
pub const MAX_WORKERS: usize = 64;

/// As [`run_sources`] followed by [`Pipeline::finish`] with a [`Printer`] writing to `out`,
/// with decoding and rendering on `workers` threads. Returns what the run read, the output
/// (written, not flushed) and the totals, which are those of a single-threaded run.
pub fn print<W: Write + Send>(
    cfg: PipelineConfig,
    opts: &PrintOptions,
    out: W,
    workers: usize,
    sources: &mut dyn Iterator<Item = Result<Box<dyn PacketSource>, CaptureError>>,
    report: &mut dyn FnMut(&str),
) -> io::Result<(RunOutcome, W, Totals)> {
    print_batched(cfg, opts, out, workers, BATCH_BYTES, sources, report)
}

fn print_batched<W: Write + Send>(
    cfg: PipelineConfig,
    opts: &PrintOptions,
    out: W,
    workers: usize,
    batch_bytes: usize,
    sources: &mut dyn Iterator<Item = Result<Box<dyn PacketSource>, CaptureError>>,
    report: &mut dyn FnMut(&str),
) -> io::Result<(RunOutcome, W, Totals)> {
    let workers = workers.clamp(1, MAX_WORKERS);
    let limits = cfg.decode;
    let (back_tx, back_rx) = mpsc::channel();
    thread::scope(|s| {
        let mut txs = Vec::with_capacity(workers);
        let mut outs = Vec::with_capacity(workers);
        let mut out_backs = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (tx, rx) = mpsc::sync_channel(QUEUED);
            let (out_tx, out_rx) = mpsc::sync_channel(QUEUED);
            let (ob_tx, ob_rx) = mpsc::channel();
            let printer = Printer::new(Vec::new(), opts.clone());
            let back = back_tx.clone();
            handles.push(s.spawn(move || work(printer, rx, back, out_tx, ob_rx, limits)));
            txs.push(tx);
            outs.push(out_rx);
            out_backs.push(ob_tx);
        }
        drop(back_tx);
        let writer = s.spawn(move || write_all(out, outs, out_backs));
        let read = {
            let forwarder = Forwarder {
                txs,
                next: 0,
                back: back_rx,
                batch: Batch::default(),
                closed: vec![Vec::new(); workers],
                sent: FxHashMap::default(),
                batch_bytes,
            };
            let mut pipeline = Pipeline::new(cfg, forwarder);
            match run_sources(sources, &mut pipeline, report) {
                Ok(outcome) => pipeline.finish().map(|(_, totals)| (outcome, totals)),
                Err(e) => Err(e),
            }
            // The pipeline, and with it the senders, is dropped here: the workers end.
        };
        let panicked = || io::Error::other("an output thread panicked");
        let mut worked = Ok(());
        for h in handles {
            let r = h.join().map_err(|_| panicked())?;
            if worked.is_ok() {
                worked = r;
            }
        }
        // The writer's error (e.g. a closed pipe) is the cause of the others.
        let (w, counts) = writer.join().map_err(|_| panicked())??;
        worked?;
        let (outcome, mut totals) = read?;
        totals.messages += counts.messages;
        totals.decode_errors += counts.decode_errors;
        totals.inflate_capped += counts.inflate_capped;
        totals.decode_capped += counts.decode_capped;
        totals.not_utf8_messages += counts.not_utf8;
        totals.selected += counts.selected;
        Ok((outcome, w, totals))
    })
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::capture::FileReader;
    use crate::msync::render::RenderOpts;
    use crate::pipeline::print::{Format, Select};
    use crate::synth::{self, SynthConfig};
    use crate::time::Zone;

    fn sources(
        caps: &[Vec<u8>],
    ) -> impl Iterator<Item = Result<Box<dyn PacketSource>, CaptureError>> + '_ {
        caps.iter().map(|c| {
            FileReader::from_reader("mem".into(), Box::new(Cursor::new(c.clone())))
                .map(|r| Box::new(r) as Box<dyn PacketSource>)
        })
    }

    fn single(caps: &[Vec<u8>], opts: &PrintOptions) -> io::Result<(Vec<u8>, Totals)> {
        let mut pipeline =
            Pipeline::new(PipelineConfig::default(), Printer::new(Vec::new(), opts.clone()));
        run_sources(&mut sources(caps), &mut pipeline, &mut |_| {})?;
        let (printer, mut totals) = pipeline.finish()?;
        totals.selected = printer.selected();
        Ok((printer.into_inner(), totals))
    }

    #[test]
    fn workers_print_what_one_thread_prints() -> io::Result<()> {
        let cfg = SynthConfig {
            seed: 11,
            clients: 30,
            duration_secs: 40.0,
            mss: 200,
            loss: 0.01,
            reorder: 0.02,
            duplicate: 0.02,
            retransmit: 0.02,
            midstream: true,
            zlib: 0.3,
            collect_truth: false,
            ..SynthConfig::default()
        };
        let mut synthesized = Vec::new();
        synth::generate(&cfg, &mut synthesized).map_err(io::Error::other)?;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
        let caps = vec![
            synthesized,
            std::fs::read(dir.join("websdk-lz4-bi.pcap"))?,
            std::fs::read(dir.join("sample.pcapng"))?,
        ];
        // Connections 1, 4 and 7 from ten seconds in, of the synthesized capture.
        let some = Select {
            conns: vec![1, 4, 7],
            since: Some(Timestamp(1_509_019_210_000_000_000)),
            until: None,
        };
        for (format, quiet, select) in [
            (Format::Summary, false, Select::default()),
            (Format::Verbose, false, Select::default()),
            (Format::SdkLog, false, Select::default()),
            (Format::Json, false, Select::default()),
            (Format::Summary, true, Select::default()),
            (Format::Summary, false, some.clone()),
            (Format::Json, true, some.clone()),
        ] {
            let opts = PrintOptions {
                format,
                render: RenderOpts::default(),
                quiet,
                zone: Zone::Utc,
                line_buffered: false,
                max_errors: None,
                select,
            };
            let (want, want_totals) = single(&caps, &opts)?;
            if opts.select.narrows() {
                assert!((1..want_totals.messages).contains(&want_totals.selected));
            }
            for (workers, batch_bytes) in [(1, BATCH_BYTES), (2, 1000), (3, 1)] {
                let (_, got, totals) = print_batched(
                    PipelineConfig::default(),
                    &opts,
                    Vec::new(),
                    workers,
                    batch_bytes,
                    &mut sources(&caps),
                    &mut |_| {},
                )?;
                assert!(got == want, "{format:?} with {workers} workers: output differs");
                assert_eq!(format!("{totals:?}"), format!("{want_totals:?}"));
            }
        }
        Ok(())
    }
}
