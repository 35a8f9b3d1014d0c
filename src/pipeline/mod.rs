//! Wiring of the stages: packets → [`crate::net`] → [`crate::frame`] → [`crate::msync`] →
//! [`Consumer`]s. Printers, analyzers and reporters all consume the same [`Event`] stream.

use std::io;

use crate::capture::Timestamp;
use crate::msync::decode::{DecodeError, Decoded};
use crate::net::{CloseReason, ConnId, ConnMeta, Dir, PktCtx, TcpNote};

/// How MSync messages are carried on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// 4-byte big-endian length prefix, then the protobuf bytes.
    Tcp,
    /// One MSync message per WebSocket binary message.
    WebSocket,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::WebSocket => "websocket",
        }
    }
}

/// Where one MSync message came from.
#[derive(Clone, Copy, Debug)]
pub struct MsgCtx<'a> {
    /// 1-based capture record number of the packet that completed the message.
    pub frame: u64,
    pub ts: Timestamp,
    /// Time of the first packet of the capture (for relative times).
    pub capture_start: Timestamp,
    /// The connection, with its roles settled (client/server may have been swapped since it
    /// opened, when the first PROVISION showed who the client is).
    pub conn: &'a ConnMeta,
    pub dir: Dir,
    /// Offset in the direction's byte stream of the frame's first byte (its length prefix).
    pub stream_offset: u64,
    /// Bytes the frame occupies in the stream (prefix included).
    pub wire_len: u64,
    pub transport: Transport,
}

impl MsgCtx<'_> {
    /// Seconds since the first packet of the capture.
    pub fn rel_secs(&self) -> f64 {
        self.ts.since(self.capture_start) as f64 / 1e9
    }
}

/// Framing problems, per connection and direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameProblem {
    /// A length prefix over the cap: the stream is resynchronised after it.
    Oversize { len: u64 },
    /// Bytes skipped while resynchronising (after a gap, an oversize frame, or mid-stream).
    Skipped { bytes: u64 },
}

/// One thing that happened, in capture order.
#[derive(Debug)]
pub enum Event<'a> {
    /// A TCP connection's first packet.
    ConnOpen {
        pkt: PktCtx,
        conn: &'a ConnMeta,
    },
    /// A connection was recognised as carrying MSync (first message decoded).
    MsyncDetected {
        pkt: PktCtx,
        conn: &'a ConnMeta,
        transport: Transport,
    },
    Message {
        ctx: &'a MsgCtx<'a>,
        raw: &'a [u8],
        msg: &'a Decoded,
    },
    DecodeError {
        ctx: &'a MsgCtx<'a>,
        raw: &'a [u8],
        error: &'a DecodeError,
    },
    Frame {
        pkt: PktCtx,
        conn: ConnId,
        dir: Dir,
        offset: u64,
        problem: FrameProblem,
    },
    Gap {
        pkt: PktCtx,
        conn: ConnId,
        dir: Dir,
        offset: u64,
        len: u64,
    },
    Tcp {
        pkt: PktCtx,
        conn: ConnId,
        dir: Dir,
        note: TcpNote,
    },
    ConnClose {
        pkt: PktCtx,
        conn: &'a ConnMeta,
        reason: CloseReason,
        msync: bool,
    },
}

/// Totals of a run, handed to consumers at the end.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    pub packets: u64,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    pub tcp_connections: u64,
    pub msync_connections: u64,
    /// Connections with data that never showed MSync.
    pub other_connections: u64,
    pub messages: u64,
    pub decode_errors: u64,
    pub gap_bytes: u64,
    pub skipped_bytes: u64,
    pub oversize_frames: u64,
    /// Compressed payloads whose inflated size exceeds the cap (also decode errors).
    pub inflate_capped: u64,
    pub net: crate::net::NetStats,
}

/// A consumer of the event stream: a printer, an analyzer.
pub trait Consumer {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<()>;
    fn finish(&mut self, totals: &Totals) -> io::Result<()>;
}

pub mod print;

use std::collections::HashMap;

use crate::capture::Packet;
use crate::frame::{LengthPrefixSplitter, MsyncCheck, SplitEvent};
use crate::msync::decode::{self, Body, DecodeLimits};
use crate::net::{Net, NetConfig, RoleSource, StreamEvent, StreamSink};

/// Settings of the whole pipeline.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub net: NetConfig,
    /// Largest MSync frame accepted (bytes after the length prefix).
    pub max_frame: usize,
    pub decode: DecodeLimits,
    /// Bytes per direction examined for MSync before a connection is set aside as "other".
    pub detect_limit: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            net: NetConfig::default(),
            max_frame: 16 << 20,
            decode: DecodeLimits::default(),
            detect_limit: 64 << 10,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// No MSync message seen yet.
    Unknown,
    Msync,
    /// Examined past the detection limit without finding MSync: data is ignored.
    Other,
}

struct ConnState {
    meta: ConnMeta,
    /// Roles were swapped relative to the reassembler's guess (it names `meta`'s server as the
    /// client): its directions are reversed before use.
    swapped: bool,
    kind: Kind,
    /// Indexed by the reassembler's direction.
    splitters: [LengthPrefixSplitter; 2],
    /// Bytes examined before MSync was recognised, per reassembler direction.
    examined: [u64; 2],
    /// Bytes skipped before MSync was recognised, per reassembler direction: (packet of the
    /// first skip, offset of the first skip, total). Reported once MSync is recognised.
    early_skips: [Option<(PktCtx, u64, u64)>; 2],
    messages: u64,
}

/// The stages after the capture: reassembly, splitting, decoding, and the consumer.
pub struct Pipeline<C: Consumer> {
    net: Net,
    inner: Inner<C>,
}

struct Inner<C: Consumer> {
    cfg: PipelineConfig,
    conns: HashMap<u32, ConnState>,
    consumer: C,
    totals: Totals,
    capture_start: Timestamp,
    /// The first error a consumer returned (e.g. a closed pipe): the run stops there.
    failed: Option<io::Error>,
}

impl<C: Consumer> Pipeline<C> {
    pub fn new(cfg: PipelineConfig, consumer: C) -> Self {
        Pipeline {
            net: Net::new(cfg.net.clone()),
            inner: Inner {
                cfg,
                conns: HashMap::new(),
                consumer,
                totals: Totals::default(),
                capture_start: Timestamp::default(),
                failed: None,
            },
        }
    }

    /// Processes one captured packet. An error is the consumer's (e.g. a closed pipe): stop.
    pub fn packet(&mut self, pkt: &Packet<'_>) -> io::Result<()> {
        let t = &mut self.inner.totals;
        t.packets += 1;
        if t.first_ts.is_none() {
            t.first_ts = Some(pkt.ts);
            self.inner.capture_start = pkt.ts;
        }
        t.last_ts = Some(t.last_ts.map_or(pkt.ts, |l| l.max(pkt.ts)));
        self.net.packet(pkt, &mut self.inner);
        match self.inner.failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Counters so far.
    pub fn totals(&self) -> &Totals {
        &self.inner.totals
    }

    /// The consumer, e.g. to print a running report.
    pub fn consumer_mut(&mut self) -> &mut C {
        &mut self.inner.consumer
    }

    /// End of input: flushes reassembly, closes every connection, finishes the consumer.
    pub fn finish(mut self) -> io::Result<(C, Totals)> {
        self.net.finish(&mut self.inner);
        if let Some(e) = self.inner.failed.take() {
            return Err(e);
        }
        let mut totals = self.inner.totals.clone();
        totals.net = *self.net.stats();
        totals.tcp_connections = totals.net.tcp_connections;
        totals.gap_bytes = totals.net.gap_bytes;
        self.inner.consumer.finish(&totals)?;
        Ok((self.inner.consumer, totals))
    }
}

impl<C: Consumer> StreamSink for Inner<C> {
    fn event(&mut self, pkt: PktCtx, ev: StreamEvent<'_>) {
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = self.handle(pkt, ev) {
            self.failed = Some(e);
        }
    }
}

impl<C: Consumer> Inner<C> {
    fn handle(&mut self, pkt: PktCtx, ev: StreamEvent<'_>) -> io::Result<()> {
        match ev {
            StreamEvent::Open(meta) => {
                let synced = !meta.midstream;
                let st = ConnState {
                    meta: meta.clone(),
                    swapped: false,
                    kind: Kind::Unknown,
                    splitters: [
                        LengthPrefixSplitter::new(self.cfg.max_frame, synced, 0),
                        LengthPrefixSplitter::new(self.cfg.max_frame, synced, 0),
                    ],
                    examined: [0; 2],
                    early_skips: [None; 2],
                    messages: 0,
                };
                self.consumer.event(&Event::ConnOpen { pkt, conn: &st.meta })?;
                self.conns.insert(meta.id.0, st);
            }
            StreamEvent::Data { conn, dir, offset, data } => {
                self.data(pkt, conn, dir, offset, data)?
            }
            StreamEvent::Gap { conn, dir, offset, len } => {
                let Some(st) = self.conns.get_mut(&conn.0) else { return Ok(()) };
                let d = if st.swapped { dir.reverse() } else { dir };
                let mut skips = Vec::new();
                if let Some(sp) = st.splitters.get_mut(dir.index()) {
                    sp.gap(offset, len, &mut |e| {
                        if let SplitEvent::Skipped { offset, len } = e {
                            skips.push((offset, len));
                        }
                    });
                }
                let kind = st.kind;
                if kind != Kind::Other {
                    self.consumer.event(&Event::Gap { pkt, conn, dir: d, offset, len })?;
                }
                for (o, l) in skips {
                    self.skipped(pkt, conn, dir, o, l)?;
                }
            }
            StreamEvent::Note { conn, dir, note } => {
                let Some(st) = self.conns.get(&conn.0) else { return Ok(()) };
                let d = if st.swapped { dir.reverse() } else { dir };
                self.consumer.event(&Event::Tcp { pkt, conn, dir: d, note })?;
            }
            StreamEvent::Close { conn, reason } => {
                let Some(mut st) = self.conns.remove(&conn.0) else { return Ok(()) };
                let mut skips = Vec::new();
                for (i, sp) in st.splitters.iter_mut().enumerate() {
                    sp.finish(&mut |e| {
                        if let SplitEvent::Skipped { offset, len } = e {
                            skips.push((i, offset, len));
                        }
                    });
                }
                let msync = st.kind == Kind::Msync;
                match st.kind {
                    Kind::Msync => {
                        for (i, offset, len) in skips {
                            let dir = if i == 0 { Dir::C2S } else { Dir::S2C };
                            let d = if st.swapped { dir.reverse() } else { dir };
                            self.totals.skipped_bytes += len;
                            let problem = FrameProblem::Skipped { bytes: len };
                            self.consumer.event(&Event::Frame {
                                pkt,
                                conn,
                                dir: d,
                                offset,
                                problem,
                            })?;
                        }
                    }
                    Kind::Unknown | Kind::Other => {
                        if st.examined.iter().any(|&n| n > 0) {
                            self.totals.other_connections += 1;
                        }
                    }
                }
                self.consumer.event(&Event::ConnClose { pkt, conn: &st.meta, reason, msync })?;
            }
        }
        Ok(())
    }

    /// Reports bytes the splitter of `net_dir` skipped (held back until the connection is
    /// known to carry MSync: other protocols are not MSync errors).
    fn skipped(
        &mut self,
        pkt: PktCtx,
        conn: ConnId,
        net_dir: Dir,
        offset: u64,
        len: u64,
    ) -> io::Result<()> {
        let Some(st) = self.conns.get_mut(&conn.0) else { return Ok(()) };
        let d = if st.swapped { net_dir.reverse() } else { net_dir };
        match st.kind {
            Kind::Msync => {
                self.totals.skipped_bytes += len;
                let problem = FrameProblem::Skipped { bytes: len };
                self.consumer.event(&Event::Frame { pkt, conn, dir: d, offset, problem })
            }
            Kind::Unknown => {
                note_early_skip(&mut st.early_skips, pkt, net_dir, offset, len);
                Ok(())
            }
            Kind::Other => Ok(()),
        }
    }

    fn data(
        &mut self,
        pkt: PktCtx,
        conn: ConnId,
        net_dir: Dir,
        offset: u64,
        data: &[u8],
    ) -> io::Result<()> {
        let Inner { cfg, conns, consumer, totals, capture_start, .. } = self;
        let Some(st) = conns.get_mut(&conn.0) else { return Ok(()) };
        if st.kind == Kind::Other {
            return Ok(());
        }
        if st.kind == Kind::Unknown {
            if let Some(ex) = st.examined.get_mut(net_dir.index()) {
                *ex = ex.saturating_add(data.len() as u64);
                if *ex > cfg.detect_limit {
                    st.kind = Kind::Other;
                    return Ok(());
                }
            }
        }
        let ConnState { meta, swapped, kind, splitters, early_skips, messages, .. } = st;
        let Some(sp) = splitters.get_mut(net_dir.index()) else { return Ok(()) };
        let mut result = Ok(());
        let decode_limits = cfg.decode;
        let capture_start = *capture_start;
        sp.feed(offset, data, &MsyncCheck, &mut |ev| {
            if result.is_err() {
                return;
            }
            result = (|| -> io::Result<()> {
                match ev {
                    SplitEvent::Frame { offset, wire_len, body } => {
                        let mut dir = if *swapped { net_dir.reverse() } else { net_dir };
                        let decoded = decode::decode(body, dir, &decode_limits);
                        if let Ok(msg) = &decoded {
                            if *messages == 0 && meta.role == RoleSource::Guess {
                                // The client is whoever sends the first login; the server is
                                // whoever sends notices.
                                let sent_by_server = match &msg.body {
                                    Body::Provision(p) => p.status.is_some(),
                                    Body::Notice(_) => true,
                                    _ => dir == Dir::S2C,
                                };
                                if sent_by_server != (dir == Dir::S2C) {
                                    *swapped = !*swapped;
                                    std::mem::swap(&mut meta.client, &mut meta.server);
                                    dir = dir.reverse();
                                }
                            }
                        }
                        if *kind == Kind::Unknown {
                            if decoded.is_err() {
                                // Not yet evidence of MSync: a well-formed protobuf frame that
                                // is not an envelope.
                                return Ok(());
                            }
                            *kind = Kind::Msync;
                            totals.msync_connections += 1;
                            consumer.event(&Event::MsyncDetected {
                                pkt,
                                conn: &*meta,
                                transport: Transport::Tcp,
                            })?;
                            for (i, skip) in early_skips.iter_mut().enumerate() {
                                let Some((p, o, l)) = skip.take() else { continue };
                                let d = if i == 0 { Dir::C2S } else { Dir::S2C };
                                let d = if *swapped { d.reverse() } else { d };
                                totals.skipped_bytes += l;
                                let problem = FrameProblem::Skipped { bytes: l };
                                consumer.event(&Event::Frame {
                                    pkt: p,
                                    conn,
                                    dir: d,
                                    offset: o,
                                    problem,
                                })?;
                            }
                        }
                        *messages += 1;
                        let ctx = MsgCtx {
                            frame: pkt.index,
                            ts: pkt.ts,
                            capture_start,
                            conn: meta,
                            dir,
                            stream_offset: offset,
                            wire_len,
                            transport: Transport::Tcp,
                        };
                        match &decoded {
                            Ok(msg) => {
                                totals.messages += 1;
                                consumer.event(&Event::Message { ctx: &ctx, raw: body, msg })
                            }
                            Err(error) => {
                                totals.decode_errors += 1;
                                if matches!(error, decode::DecodeError::InflateTooLarge(_)) {
                                    totals.inflate_capped += 1;
                                }
                                consumer.event(&Event::DecodeError { ctx: &ctx, raw: body, error })
                            }
                        }
                    }
                    SplitEvent::Invalid { offset, wire_len, body } => {
                        if *kind != Kind::Msync {
                            return Ok(());
                        }
                        let dir = if *swapped { net_dir.reverse() } else { net_dir };
                        let error = match decode::decode(body, dir, &decode_limits) {
                            Err(e) => e,
                            Ok(_) => decode::DecodeError::Envelope(
                                "not a well-formed protobuf message".into(),
                            ),
                        };
                        totals.decode_errors += 1;
                        let ctx = MsgCtx {
                            frame: pkt.index,
                            ts: pkt.ts,
                            capture_start,
                            conn: meta,
                            dir,
                            stream_offset: offset,
                            wire_len,
                            transport: Transport::Tcp,
                        };
                        consumer.event(&Event::DecodeError { ctx: &ctx, raw: body, error: &error })
                    }
                    SplitEvent::Oversize { offset, len } => {
                        if *kind != Kind::Msync {
                            return Ok(());
                        }
                        let dir = if *swapped { net_dir.reverse() } else { net_dir };
                        totals.oversize_frames += 1;
                        let problem = FrameProblem::Oversize { len };
                        consumer.event(&Event::Frame { pkt, conn, dir, offset, problem })
                    }
                    SplitEvent::Skipped { offset, len } => match kind {
                        Kind::Msync => {
                            let dir = if *swapped { net_dir.reverse() } else { net_dir };
                            totals.skipped_bytes += len;
                            let problem = FrameProblem::Skipped { bytes: len };
                            consumer.event(&Event::Frame { pkt, conn, dir, offset, problem })
                        }
                        _ => {
                            note_early_skip(early_skips, pkt, net_dir, offset, len);
                            Ok(())
                        }
                    },
                }
            })();
        });
        result
    }
}

/// Adds skipped bytes to a direction's pre-detection tally.
fn note_early_skip(
    skips: &mut [Option<(PktCtx, u64, u64)>; 2],
    pkt: PktCtx,
    dir: Dir,
    offset: u64,
    len: u64,
) {
    if let Some(slot) = skips.get_mut(dir.index()) {
        match slot {
            Some((_, _, total)) => *total += len,
            None => *slot = Some((pkt, offset, len)),
        }
    }
}

/// What happened while reading capture files.
#[derive(Debug, Default)]
pub struct RunOutcome {
    /// Errors that make the run fail (exit status 2), one line each, already printed.
    pub errors: usize,
    /// Warnings (e.g. a truncated last record), one line each, already printed.
    pub warnings: usize,
}

/// Feeds every packet of `sources` (in order, numbering records across them) through the
/// pipeline. Capture errors are reported through `report` as they happen and the next file is
/// read; everything decodable is still delivered. A consumer error (e.g. a closed pipe) stops
/// the run and is returned.
pub fn run_sources<C: Consumer>(
    sources: &mut dyn Iterator<
        Item = Result<Box<dyn crate::capture::PacketSource>, crate::capture::CaptureError>,
    >,
    pipeline: &mut Pipeline<C>,
    report: &mut dyn FnMut(&str),
) -> io::Result<RunOutcome> {
    let mut outcome = RunOutcome::default();
    let mut next_index = 1u64;
    for source in sources {
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
        let mut unsupported: Vec<crate::capture::LinkType> = Vec::new();
        loop {
            match src.next_packet() {
                Ok(Some(pkt)) => {
                    next_index = pkt.index + 1;
                    if !crate::net::link_supported(pkt.link) && !unsupported.contains(&pkt.link) {
                        unsupported.push(pkt.link);
                        report(&format!(
                            "error: {}: offset {}: unsupported link type {} (its packets are counted, not decoded)",
                            name,
                            pkt.file_offset,
                            pkt.link
                        ));
                        outcome.errors += 1;
                    }
                    pipeline.packet(&pkt)?;
                }
                Ok(None) => break,
                Err(e) if e.is_truncation() => {
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
