//! A pipeline over two threads: the calling thread reads records, reassembles, splits and
//! LZ4-unwraps; a second thread decodes each message and runs the consumer.
//!
//! Invariants:
//! - The consumer sees exactly the events a single-threaded [`Pipeline`] would give it, in the
//!   same order, and its [`Totals`] are the same. The reading side runs an ordinary pipeline
//!   whose consumer ([`Forwarder`]) [defers decoding](Consumer::defers_decoding): it copies
//!   each message body and the little context the consumer needs into a batch, and every
//!   other event as an owned copy. The pipeline still decodes what its own decisions need
//!   (roles, MSync detection, LZ4 negotiation), so those come out as before. The second
//!   thread decodes the bodies with the consumer's [`Consumer::meta_bodies_wanted`] and counts
//!   `messages` and `decode_errors` for them.
//! - A connection's [`ConnMeta`] is sent when a message first needs it and again whenever it
//!   changes (the roles are swapped at most once), not with every message.
//! - Batches hold about [`BATCH_BYTES`] of message bytes, come back for reuse, and the channel
//!   is bounded: memory stays at a few batches whatever the capture size.
//! - A consumer error (e.g. a closed pipe) ends the second thread; the reading thread's next
//!   hand-over fails and stops the run, and the consumer's error is the one returned.

use std::io;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread;

use super::{
    run_sources, Consumer, Event, FrameProblem, Lz4Info, MsgCtx, Pipeline, PipelineConfig,
    RunOutcome, Totals, Transport, TransportNote,
};
use crate::capture::{CaptureError, PacketSource, Timestamp};
use crate::msync::decode::{self, DecodeError, DecodeLimits};
use crate::net::hash::FxHashMap;
use crate::net::{CloseReason, ConnId, ConnMeta, Dir, PktCtx, TcpNote};

/// Bytes of message data per batch.
pub const BATCH_BYTES: usize = 256 << 10;
/// Items per batch at most (for batches of small events).
const BATCH_ITEMS: usize = 4096;
/// Batches queued for the second thread.
const QUEUED: usize = 4;
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
    ConnClose { pkt: PktCtx, conn: ConnMeta, reason: CloseReason, msync: bool },
    Transport { pkt: PktCtx, conn: ConnId, dir: Dir, note: TransportNote },
}

#[derive(Debug, Default)]
struct Batch {
    items: Vec<Item>,
    data: Vec<u8>,
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

enum Msg {
    Batch(Batch),
    /// End of input, with the reading side's totals.
    Finish(Box<Totals>),
}

/// The reading side's consumer: packs events into batches for the second thread.
struct Forwarder {
    tx: SyncSender<Msg>,
    back: Receiver<Batch>,
    batch: Batch,
    /// What was last sent of each open connection.
    sent: FxHashMap<u32, ConnMeta>,
}

/// The second thread is gone (its consumer failed): the run stops.
fn stopped() -> io::Error {
    io::Error::other("the output thread stopped")
}

impl Forwarder {
    fn conn(&mut self, meta: &ConnMeta) {
        if self.sent.get(&meta.id.0) != Some(meta) {
            self.sent.insert(meta.id.0, meta.clone());
            self.batch.items.push(Item::Conn(Box::new(meta.clone())));
        }
    }

    fn push(&mut self, ev: Owned) -> io::Result<()> {
        self.batch.items.push(Item::Event(Box::new(ev)));
        self.full()
    }

    fn full(&mut self) -> io::Result<()> {
        if self.batch.data.len() >= BATCH_BYTES || self.batch.items.len() >= BATCH_ITEMS {
            self.send()
        } else {
            Ok(())
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let next = self.back.try_recv().unwrap_or_default();
        let full = std::mem::replace(&mut self.batch, next);
        self.tx.send(Msg::Batch(full)).map_err(|_| stopped())
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
            Event::Message { ctx, raw, .. } => return self.undecoded(ctx, raw),
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
            Event::ConnClose { pkt, conn, reason, msync } => {
                self.sent.remove(&conn.id.0);
                Owned::ConnClose { pkt, conn: conn.clone(), reason, msync }
            }
            Event::Transport { pkt, conn, dir, note } => {
                Owned::Transport { pkt, conn, dir, note: note.clone() }
            }
        };
        self.push(owned)
    }

    fn undecoded(&mut self, ctx: &MsgCtx<'_>, raw: &[u8]) -> io::Result<()> {
        self.conn(ctx.conn);
        let raw = self.batch.bytes(raw);
        self.batch.items.push(Item::Message { ctx: Ctx::of(ctx), raw });
        self.full()
    }

    fn finish(&mut self, totals: &Totals) -> io::Result<()> {
        if !self.batch.items.is_empty() {
            self.send()?;
        }
        self.tx.send(Msg::Finish(Box::new(totals.clone()))).map_err(|_| stopped())
    }

    fn meta_bodies_wanted(&self) -> usize {
        0
    }

    fn defers_decoding(&self) -> bool {
        true
    }
}

/// The second thread: decodes and runs the consumer until the reading side finishes (then
/// returns the consumer and the whole run's totals) or goes away (None).
fn work<C: Consumer>(
    mut consumer: C,
    rx: Receiver<Msg>,
    back: Sender<Batch>,
    limits: DecodeLimits,
) -> io::Result<Option<(C, Totals)>> {
    let metas = consumer.meta_bodies_wanted();
    let mut conns: FxHashMap<u32, ConnMeta> = FxHashMap::default();
    let (mut messages, mut decode_errors) = (0u64, 0u64);
    let unknown = || io::Error::other("a message of an unknown connection");
    for msg in rx {
        let mut batch = match msg {
            Msg::Batch(b) => b,
            Msg::Finish(mut totals) => {
                totals.messages += messages;
                totals.decode_errors += decode_errors;
                consumer.finish(&totals)?;
                return Ok(Some((consumer, *totals)));
            }
        };
        for item in &batch.items {
            match item {
                Item::Message { ctx, raw } => {
                    let conn = conns.get(&ctx.conn).ok_or_else(unknown)?;
                    let ctx = ctx.with(conn);
                    let raw = batch.get(*raw);
                    match decode::decode_metas(raw, ctx.dir, &limits, metas) {
                        Ok(msg) => {
                            messages += 1;
                            consumer.event(&Event::Message { ctx: &ctx, raw, msg: &msg })?;
                        }
                        Err(error) => {
                            decode_errors += 1;
                            consumer.event(&Event::DecodeError {
                                ctx: &ctx,
                                raw,
                                error: &error,
                            })?;
                        }
                    }
                }
                Item::Conn(meta) => {
                    conns.insert(meta.id.0, (**meta).clone());
                }
                Item::Event(ev) => match &**ev {
                    Owned::ConnOpen { pkt, conn } => {
                        consumer.event(&Event::ConnOpen { pkt: *pkt, conn })?;
                    }
                    Owned::MsyncDetected { pkt, conn, transport } => {
                        let transport = *transport;
                        consumer.event(&Event::MsyncDetected { pkt: *pkt, conn, transport })?;
                    }
                    Owned::DecodeError { ctx, raw, error } => {
                        let conn = conns.get(&ctx.conn).ok_or_else(unknown)?;
                        let ctx = ctx.with(conn);
                        let raw = batch.get(*raw);
                        consumer.event(&Event::DecodeError { ctx: &ctx, raw, error })?;
                    }
                    &Owned::Frame { pkt, conn, dir, offset, problem } => {
                        consumer.event(&Event::Frame { pkt, conn, dir, offset, problem })?;
                    }
                    &Owned::Gap { pkt, conn, dir, offset, len } => {
                        consumer.event(&Event::Gap { pkt, conn, dir, offset, len })?;
                    }
                    &Owned::Tcp { pkt, conn, dir, note } => {
                        consumer.event(&Event::Tcp { pkt, conn, dir, note })?;
                    }
                    Owned::ConnClose { pkt, conn, reason, msync } => {
                        let (pkt, reason, msync) = (*pkt, *reason, *msync);
                        consumer.event(&Event::ConnClose { pkt, conn, reason, msync })?;
                        conns.remove(&conn.id.0);
                    }
                    Owned::Transport { pkt, conn, dir, note } => {
                        let (pkt, conn, dir) = (*pkt, *conn, *dir);
                        consumer.event(&Event::Transport { pkt, conn, dir, note })?;
                    }
                },
            }
        }
        batch.items.clear();
        batch.data.clear();
        if batch.data.capacity() <= KEEP_CAPACITY {
            // The reading side may be gone already: then the batch is simply dropped.
            let _ = back.send(batch);
        }
    }
    Ok(None)
}

/// As [`run_sources`] followed by [`Pipeline::finish`], with decoding and the consumer on a
/// second thread. Returns what the run read, the consumer (finished) and the totals, which
/// are those a single-threaded pipeline would give.
pub fn run_sources_two_threads<C: Consumer + Send>(
    cfg: PipelineConfig,
    consumer: C,
    sources: &mut dyn Iterator<Item = Result<Box<dyn PacketSource>, CaptureError>>,
    report: &mut dyn FnMut(&str),
) -> io::Result<(RunOutcome, C, Totals)> {
    let limits = cfg.decode;
    let (tx, rx) = mpsc::sync_channel(QUEUED);
    let (back_tx, back_rx) = mpsc::channel();
    thread::scope(|s| {
        let worker = s.spawn(move || work(consumer, rx, back_tx, limits));
        let read = {
            let forwarder = Forwarder {
                tx,
                back: back_rx,
                batch: Batch::default(),
                sent: FxHashMap::default(),
            };
            let mut pipeline = Pipeline::new(cfg, forwarder);
            match run_sources(sources, &mut pipeline, report) {
                Ok(outcome) => pipeline.finish().map(|_| outcome),
                Err(e) => Err(e),
            }
            // The pipeline, and with it the sender, is dropped here: the worker ends.
        };
        let worked = worker.join().map_err(|_| io::Error::other("the output thread panicked"))?;
        match (read, worked?) {
            (Ok(outcome), Some((consumer, totals))) => Ok((outcome, consumer, totals)),
            (Err(e), _) => Err(e),
            (Ok(_), None) => Err(stopped()),
        }
    })
}
