//! Wiring of the stages: packets → [`crate::net`] → [`crate::frame`] → [`crate::msync`] →
//! [`Consumer`]s. Printers, analyzers and reporters all consume the same [`Event`] stream.

use std::io;

use crate::capture::Timestamp;
use crate::msync::decode::{Command, DecodeError, Decoded};
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
    /// The message was wrapped in the LZ4 protocol-compression envelope.
    pub lz4: Option<Lz4Info>,
}

/// An LZ4-wrapped message: its size on the wire and unwrapped, and whether the CRC held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lz4Info {
    pub wire_len: u64,
    pub original_len: u64,
    pub crc_ok: bool,
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
    /// Bytes not handed on as messages: skipped while resynchronising (after a gap, an
    /// oversize frame, or mid-stream), or a message dropped or cut short.
    Skipped { bytes: u64, why: SkipReason },
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
        /// Time of the connection's own last packet (see [`StreamEvent::Close`]).
        last: Timestamp,
    },
    /// What the transport layer saw: the connection's protocol, the WebSocket handshake and
    /// control frames, LZ4 problems.
    Transport {
        pkt: PktCtx,
        conn: ConnId,
        dir: Dir,
        note: &'a TransportNote,
    },
}

/// Transport-level facts and problems, per connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportNote {
    /// The connection is TLS: its contents cannot be decoded.
    Tls {
        sni: Option<String>,
        alpn: Vec<String>,
    },
    /// Plain HTTP that is not a WebSocket upgrade.
    NotMsync {
        what: &'static str,
    },
    /// The server accepted the WebSocket upgrade.
    WsUpgrade {
        path: Option<String>,
        host: Option<String>,
        origin: Option<String>,
        protocol: Option<String>,
        extensions: Option<String>,
    },
    /// The server refused the upgrade: the session ends with this reason.
    WsRejected {
        status: u16,
        reason: String,
    },
    WsPing {
        len: usize,
    },
    WsPong {
        len: usize,
    },
    /// A close frame: its code (absent when the frame has no body) and reason.
    WsClose {
        code: Option<u16>,
        reason: String,
    },
    /// A text message (not MSync): its length and the start of its text.
    WsText {
        len: usize,
        text: String,
    },
    /// A WebSocket protocol problem: its stable name and its description.
    WsProblem {
        offset: u64,
        kind: &'static str,
        what: String,
    },
    /// LZ4 history is missing (connection picked up after login, a gap, or a damaged wrapped
    /// message before): wrapped messages of this direction cannot be unwrapped until it is
    /// rebuilt (reported once).
    Lz4HistoryLost,
    /// An LZ4-wrapped message whose CRC did not match: its decoding is suspect.
    Lz4Crc {
        offset: u64,
        expected: u32,
        actual: u32,
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
    /// Messages that decode only with a string field of the envelope or the command message
    /// read lossily, as it is not UTF-8 (among `messages`; meta bodies are not counted, as an
    /// undecodable one is not among `decode_errors`).
    pub not_utf8_messages: u64,
    /// Messages and undecodable frames that a printer's selection kept (`dissect --conn`,
    /// `--since`, `--until`; see [`print::Select`]).
    pub selected: u64,
    pub gap_bytes: u64,
    pub skipped_bytes: u64,
    pub oversize_frames: u64,
    /// Connections recognised as TLS.
    pub tls_connections: u64,
    /// MSync connections over WebSocket.
    pub websocket_connections: u64,
    /// LZ4-wrapped messages that could not be unwrapped (history lost, corrupt).
    pub lz4_undecodable: u64,
    /// Compressed payloads whose inflated size exceeds the cap (also decode errors).
    pub inflate_capped: u64,
    /// Messages not decoded because they would take more than their decoding budget (also
    /// decode errors).
    pub decode_capped: u64,
    /// WebSocket control frames seen: pings, pongs, closes.
    pub ws_pings: u64,
    pub ws_pongs: u64,
    pub ws_closes: u64,
    /// WebSocket frames whose masking broke RFC 6455 (unmasked from the client, masked from
    /// the server): decoded, but a sign of a non-browser client or a test rig.
    pub ws_odd_masking: u64,
    pub net: crate::net::NetStats,
}

/// A consumer of the event stream: a printer, an analyzer.
pub trait Consumer {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<()>;
    fn finish(&mut self, totals: &Totals) -> io::Result<()>;
    /// How many metas of each message need their payload decoded into
    /// [`Decoded::meta_bodies`](crate::msync::decode::Decoded::meta_bodies); consumers that
    /// render from the raw bytes need none. Asked once, when the pipeline is built.
    fn meta_bodies_wanted(&self) -> usize {
        usize::MAX
    }
    /// The consumer decodes messages itself (e.g. on another thread): the pipeline hands each
    /// message body over undecoded through [`Consumer::undecoded`] instead of sending
    /// [`Event::Message`] or [`Event::DecodeError`] for it, and leaves `messages`,
    /// `decode_errors` and `not_utf8_messages` of [`Totals`] to the consumer for those bodies. The pipeline still decodes
    /// what its own decisions need (a connection's messages until the first one decodes, and
    /// PROVISIONs). Asked once, when the pipeline is built.
    fn defers_decoding(&self) -> bool {
        false
    }
    /// A message body to decode, when [`Consumer::defers_decoding`]: `raw` is LZ4-unwrapped,
    /// and `ctx` has the connection's settled roles. A consumer that decoded the body on the
    /// spot returns its command, which spares the pipeline a scan for PROVISIONs; `None` when
    /// it did not (decoding elsewhere, or the body did not decode).
    fn undecoded(&mut self, ctx: &MsgCtx<'_>, raw: &[u8]) -> io::Result<Option<Command>> {
        let _ = (ctx, raw);
        Ok(None)
    }
    /// Bytes of connection `conn` arrived and may complete a message: a consumer that keeps
    /// per-connection state can start loading it (see [`crate::hint`]), while the splitting
    /// and decoding in between hide the latency. A hint: it must not change any result.
    fn warm(&mut self, conn: u32) {
        let _ = conn;
    }
}

pub mod parallel;
pub mod print;
pub mod shard;

use crate::net::hash::FxHashMap;

use crate::capture::Packet;
use crate::frame::detect::{self, Detection};
use crate::frame::sockjs;
use crate::frame::websocket::{Control, WebSocket, WsConfig, WsEvent};
use crate::frame::{FrameCheck, LengthPrefixSplitter, MsyncCheck, SkipReason, SplitEvent};
use crate::msync::decode::{self, Body, DecodeLimits};
use crate::msync::lz4::{self, CompressionTracker, Lz4Error};
use crate::net::{Net, NetConfig, RoleSource, StreamEvent, StreamSink};

/// Settings of the whole pipeline.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub net: NetConfig,
    /// Largest MSync frame accepted (bytes after the length prefix).
    pub max_frame: usize,
    pub decode: DecodeLimits,
    pub ws: WsConfig,
    /// Force the transport instead of detecting it (for connections picked up mid-stream).
    pub transport: Option<Transport>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            net: NetConfig::default(),
            max_frame: 16 << 20,
            decode: DecodeLimits::default(),
            ws: WsConfig::default(),
            transport: None,
        }
    }
}

/// Bytes per direction held while the transport is being detected, beyond the detector's own
/// look-ahead: past this the connection is set aside as "other".
const DETECT_HOLD: usize = 2 * detect::LOOKAHEAD + (64 << 10);

/// The native SDKs' server ports (the self-hosted server's 6717 and its neighbours), on which
/// a connection picked up mid-stream is searched past the detector's look-ahead.
const DEEP_PORTS: [u16; 4] = [6717, 6718, 5222, 5280];

/// What one held event costs beyond its bytes (its entry, and its allocation's rounding),
/// charged against [`DETECT_HOLD`] so that the hold bounds memory: a stream of one-byte
/// segments and gaps would otherwise hold some 80 bytes per byte, and a gap none at all.
const HELD_EVENT_COST: usize = 80;
// The entry, and the smallest allocation a one-byte segment's copy takes.
const _: () = assert!(std::mem::size_of::<(PktCtx, Dir, u64, HeldKind)>() + 16 <= HELD_EVENT_COST);

/// How a connection's bytes become messages.
enum Framing {
    /// Not known yet: the first bytes are held (and replayed once the transport is known).
    Detecting(Box<Held>),
    Tcp(Box<[LengthPrefixSplitter; 2]>),
    WebSocket(Box<WebSocket<WsCheck>>),
    /// Not MSync (TLS, HTTP, other): bytes are counted, not examined.
    Ignored,
}

/// Stream events held during detection, in arrival order.
#[derive(Default)]
struct Held {
    events: Vec<(PktCtx, Dir, u64, HeldKind)>,
    /// The first bytes of each direction (by the reassembler's direction), or the first ones
    /// after its last gap.
    heads: [Vec<u8>; 2],
    bytes: usize,
    /// Picked up mid-stream and nothing found in the first [`detect::LOOKAHEAD`] bytes: the
    /// heads grow to [`detect::DEEP_LOOKAHEAD`] and are searched again when `bytes` reaches
    /// `deep_next` (doubling each time, so the searches cost about twice the bytes held).
    deep: bool,
    deep_next: usize,
}

enum HeldKind {
    Data(Vec<u8>),
    Gap(u64),
}

/// What is known of a connection, apart from its framing state.
struct Info {
    meta: ConnMeta,
    /// Roles were swapped relative to the reassembler's guess (it names `meta`'s server as the
    /// client): its directions are reversed before use.
    swapped: bool,
    /// An MSync message decoded on this connection.
    msync: bool,
    transport: Transport,
    lz4: CompressionTracker,
    messages: u64,
    /// Data bytes seen (for "other" connections).
    bytes: u64,
    /// Added to the reassembler's stream offsets, per its direction: a connection that goes on
    /// with an idle-closed one ([`crate::net::Resumed`]) starts at 0 where that one stopped.
    shift: [u64; 2],
}

impl Info {
    /// Stream offset `offset` of the reassembler's direction `net_dir`, as the framing counts.
    #[inline]
    fn shifted(&self, net_dir: Dir, offset: u64) -> u64 {
        let [c2s, s2c] = self.shift;
        offset.saturating_add(if net_dir == Dir::C2S { c2s } else { s2c })
    }

    fn role(&self, net_dir: Dir) -> Dir {
        if self.swapped {
            net_dir.reverse()
        } else {
            net_dir
        }
    }
}

struct Conn {
    info: Info,
    framing: Framing,
}

impl Conn {
    /// Nothing held or pending in its framing: closing it would report nothing more.
    fn at_rest(&self) -> bool {
        match &self.framing {
            Framing::Tcp(sp) => sp.iter().all(LengthPrefixSplitter::at_rest),
            Framing::WebSocket(ws) => ws.at_rest(),
            Framing::Detecting(_) | Framing::Ignored => false,
        }
    }

    /// Where its framing stands in each direction of the reassembler.
    fn positions(&self) -> [u64; 2] {
        match &self.framing {
            Framing::Tcp(sp) => {
                let [c2s, s2c] = &**sp;
                [c2s.position(), s2c.position()]
            }
            Framing::WebSocket(ws) => [ws.position(Dir::C2S), ws.position(Dir::S2C)],
            Framing::Detecting(_) | Framing::Ignored => [0, 0],
        }
    }
}

/// MSync connections closed as idle and at rest, kept for the connection that may resume them
/// (at most this many, the oldest let go first): their framing state (splitter positions, a
/// WebSocket's inflate windows, LZ4 history) is what decodes that connection's bytes. A few
/// KiB each over raw TCP; up to ~240 KiB with LZ4 both ways inside permessage-deflate (two
/// 64 KiB dictionaries and their slack, two 32 KiB windows), so at most ~60 MB in all.
const PARKED_CAP: usize = 256;

/// The stages after the capture: reassembly, splitting, decoding, and the consumer.
pub struct Pipeline<C: Consumer> {
    net: Net,
    inner: Inner<C>,
}

struct Inner<C: Consumer> {
    cfg: PipelineConfig,
    conns: FxHashMap<u32, Conn>,
    /// See [`PARKED_CAP`]; by connection number, and their numbers oldest first.
    parked: FxHashMap<u32, Conn>,
    parked_order: std::collections::VecDeque<u32>,
    out: Out<C>,
}

/// Where results go: the consumer and the totals. Kept apart from the connection table so a
/// connection's state and the output can be borrowed together.
struct Out<C: Consumer> {
    consumer: C,
    totals: Totals,
    capture_start: Timestamp,
    decode: DecodeLimits,
    /// The consumer's [`Consumer::meta_bodies_wanted`].
    meta_bodies: usize,
    /// The consumer's [`Consumer::defers_decoding`].
    defer: bool,
    /// The first error a consumer returned (e.g. a closed pipe): the run stops there.
    failed: Option<io::Error>,
}

impl<C: Consumer> Pipeline<C> {
    pub fn new(cfg: PipelineConfig, consumer: C) -> Self {
        let decode = cfg.decode;
        Pipeline {
            net: Net::new(cfg.net.clone()),
            inner: Inner {
                cfg,
                conns: FxHashMap::default(),
                parked: FxHashMap::default(),
                parked_order: std::collections::VecDeque::new(),
                out: Out {
                    meta_bodies: consumer.meta_bodies_wanted(),
                    defer: consumer.defers_decoding(),
                    consumer,
                    totals: Totals::default(),
                    capture_start: Timestamp::default(),
                    decode,
                    failed: None,
                },
            },
        }
    }

    /// Processes one captured packet. An error is the consumer's (e.g. a closed pipe): stop.
    pub fn packet(&mut self, pkt: &Packet<'_>) -> io::Result<()> {
        let t = &mut self.inner.out.totals;
        t.packets += 1;
        if t.first_ts.is_none() {
            t.first_ts = Some(pkt.ts);
            self.inner.out.capture_start = pkt.ts;
        }
        t.last_ts = Some(t.last_ts.map_or(pkt.ts, |l| l.max(pkt.ts)));
        self.net.packet(pkt, &mut self.inner);
        match self.inner.out.failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Counters so far.
    pub fn totals(&self) -> Totals {
        let mut t = self.inner.out.totals.clone();
        t.net = *self.net.stats();
        t.tcp_connections = t.net.tcp_connections;
        t.gap_bytes = t.net.gap_bytes;
        t
    }

    /// The consumer, e.g. to print a running report.
    pub fn consumer_mut(&mut self) -> &mut C {
        &mut self.inner.out.consumer
    }

    /// The capture's last packet was `end`, which this pipeline may not have seen (a shard sees
    /// its own connections' packets): connections still open at the end are closed there, as
    /// one pipeline over the whole capture closes them.
    pub fn capture_ended_at(&mut self, end: PktCtx) {
        self.net.capture_ended_at(end);
    }

    /// End of input: flushes reassembly, closes every connection, finishes the consumer.
    pub fn finish(mut self) -> io::Result<(C, Totals)> {
        self.net.finish(&mut self.inner);
        let end =
            self.inner.out.totals.last_ts.map_or(PktCtx { index: 0, ts: Timestamp(0) }, |ts| {
                PktCtx { index: self.inner.out.totals.packets, ts }
            });
        while let Some(id) = self.inner.parked_order.pop_front() {
            self.inner.unpark(id, end)?;
        }
        if let Some(e) = self.inner.out.failed.take() {
            return Err(e);
        }
        let totals = self.totals();
        self.inner.out.consumer.finish(&totals)?;
        Ok((self.inner.out.consumer, totals))
    }
}

impl<C: Consumer> StreamSink for Inner<C> {
    fn event(&mut self, pkt: PktCtx, ev: StreamEvent<'_>) {
        if self.out.failed.is_some() {
            return;
        }
        if let Err(e) = self.handle(pkt, ev) {
            self.out.failed = Some(e);
        }
    }
}

impl<C: Consumer> Inner<C> {
    fn handle(&mut self, pkt: PktCtx, ev: StreamEvent<'_>) -> io::Result<()> {
        match ev {
            StreamEvent::Open(meta) => {
                if let Some(c) = meta.resumes.and_then(|r| self.parked.remove(&r.conn.0)) {
                    return self.restore(pkt, meta, c);
                }
                let info = Info {
                    meta: meta.clone(),
                    swapped: false,
                    msync: false,
                    transport: Transport::Tcp,
                    lz4: CompressionTracker::new(self.cfg.decode.max_inflated),
                    messages: 0,
                    bytes: 0,
                    shift: [0, 0],
                };
                let mut conn = Conn { info, framing: Framing::Detecting(Box::default()) };
                if let Some(t) = self.cfg.transport {
                    conn.framing = self.framing_for(conn.info.meta.midstream, t, false);
                    conn.info.transport = t;
                }
                self.out.consumer.event(&Event::ConnOpen { pkt, conn: &conn.info.meta })?;
                self.conns.insert(meta.id.0, conn);
            }
            StreamEvent::Data { conn, dir, offset, data } => {
                let Some(c) = self.conns.get_mut(&conn.0) else { return Ok(()) };
                c.info.bytes += data.len() as u64;
                let offset = c.info.shifted(dir, offset);
                if let Framing::Detecting(held) = &mut c.framing {
                    if let Some(head) = held.heads.get_mut(dir.index()) {
                        // A request head is kept longer: if its answer never comes, the
                        // request alone must tell an upgrade (see `detect::detect_final`).
                        let cap = if held.deep {
                            detect::DEEP_LOOKAHEAD
                        } else if head.starts_with(b"GET ") {
                            detect::HEAD_LOOKAHEAD
                        } else {
                            detect::LOOKAHEAD
                        };
                        let room = cap.saturating_sub(head.len());
                        head.extend_from_slice(data.get(..room.min(data.len())).unwrap_or(data));
                    }
                    held.bytes += data.len() + HELD_EVENT_COST;
                    held.events.push((pkt, dir, offset, HeldKind::Data(data.to_vec())));
                    return self.try_detect(conn, false);
                }
                self.out.consumer.warm(conn.0);
                feed(&mut c.info, &mut c.framing, &mut self.out, pkt, dir, offset, data)?;
            }
            StreamEvent::Gap { conn, dir, offset, len } => {
                let Some(c) = self.conns.get_mut(&conn.0) else { return Ok(()) };
                let offset = c.info.shifted(dir, offset);
                if let Framing::Detecting(held) = &mut c.framing {
                    held.bytes += HELD_EVENT_COST;
                    held.events.push((pkt, dir, offset, HeldKind::Gap(len)));
                    // Judge what came before the gap; if that is not enough, look at what
                    // comes after it instead (the detector resynchronises like the splitter).
                    self.try_detect(conn, false)?;
                    if let Some(Conn { framing: Framing::Detecting(held), .. }) =
                        self.conns.get_mut(&conn.0)
                    {
                        if let Some(h) = held.heads.get_mut(dir.index()) {
                            h.clear();
                        }
                    }
                    return Ok(());
                }
                gap(&mut c.info, &mut c.framing, &mut self.out, pkt, dir, offset, len)?;
            }
            StreamEvent::Note { conn, dir, note } => {
                let Some(c) = self.conns.get(&conn.0) else { return Ok(()) };
                let dir = c.info.role(dir);
                self.out.consumer.event(&Event::Tcp { pkt, conn, dir, note })?;
            }
            StreamEvent::Close { conn, reason, last } => {
                if matches!(
                    self.conns.get(&conn.0).map(|c| &c.framing),
                    Some(Framing::Detecting(_))
                ) {
                    self.try_detect(conn, true)?;
                }
                let Some(mut c) = self.conns.remove(&conn.0) else { return Ok(()) };
                // An MSync connection gone idle between messages may come back: its framing
                // is kept for it, and what `finish` would add, nothing, is not needed.
                let park = reason == CloseReason::Idle && c.info.msync && c.at_rest();
                if !park {
                    finish(&mut c.info, &mut c.framing, &mut self.out, pkt)?;
                }
                if !c.info.msync && c.info.bytes > 0 {
                    self.out.totals.other_connections += 1;
                }
                let msync = c.info.msync;
                self.out.consumer.event(&Event::ConnClose {
                    pkt,
                    conn: &c.info.meta,
                    reason,
                    msync,
                    last,
                })?;
                if park {
                    self.park(conn.0, c, pkt)?;
                }
            }
        }
        Ok(())
    }

    /// Keeps idle connection `id`'s state for the connection that may resume it.
    fn park(&mut self, id: u32, c: Conn, pkt: PktCtx) -> io::Result<()> {
        while self.parked.len() >= PARKED_CAP {
            let Some(old) = self.parked_order.pop_front() else { break };
            self.unpark(old, pkt)?;
        }
        self.parked.insert(id, c);
        self.parked_order.push_back(id);
        // Numbers of connections restored since: dropped when they outnumber the parked.
        if self.parked_order.len() > 2 * self.parked.len() + 64 {
            let parked = &self.parked;
            self.parked_order.retain(|id| parked.contains_key(id));
        }
        Ok(())
    }

    /// Lets go of parked connection `id`, if still parked: no connection resumed it.
    fn unpark(&mut self, id: u32, pkt: PktCtx) -> io::Result<()> {
        match self.parked.remove(&id) {
            // At rest: its framing reports nothing, but adds to the run's totals.
            Some(mut c) => finish(&mut c.info, &mut c.framing, &mut self.out, pkt),
            None => Ok(()),
        }
    }

    /// Connection `meta` resumes parked `c`: it goes on with its framing, its stream offsets
    /// shifted to where that one's stopped, and its roles; it is MSync again from its first
    /// message (so counted as a connection of its own).
    fn restore(&mut self, pkt: PktCtx, meta: &ConnMeta, mut c: Conn) -> io::Result<()> {
        c.info.shift = c.positions();
        c.info.meta = meta.clone();
        if c.info.swapped {
            std::mem::swap(&mut c.info.meta.client, &mut c.info.meta.server);
        }
        c.info.msync = false;
        c.info.messages = 0;
        c.info.bytes = 0;
        self.out.consumer.event(&Event::ConnOpen { pkt, conn: &c.info.meta })?;
        self.conns.insert(meta.id.0, c);
        Ok(())
    }

    fn ws_check(&self) -> WsCheck {
        WsCheck { lz4: false, cap: self.cfg.decode.max_inflated }
    }

    fn framing_for(&self, midstream: bool, t: Transport, ws_upgrade: bool) -> Framing {
        let synced = !midstream;
        match t {
            Transport::Tcp => Framing::Tcp(Box::new([
                LengthPrefixSplitter::new(self.cfg.max_frame, synced, 0),
                LengthPrefixSplitter::new(self.cfg.max_frame, synced, 0),
            ])),
            Transport::WebSocket if ws_upgrade || synced => {
                Framing::WebSocket(Box::new(WebSocket::new(self.cfg.ws, self.ws_check())))
            }
            Transport::WebSocket => Framing::WebSocket(Box::new(WebSocket::new_midstream(
                self.cfg.ws,
                self.ws_check(),
                0,
                0,
            ))),
        }
    }

    /// Whether the connection, if picked up mid-stream with nothing found in the look-ahead,
    /// is searched further for a message, raw or in WebSocket frames (see
    /// [`detect::detect_deep`]): only on the native SDKs' server ports and those given with
    /// `--server-port`. Elsewhere, a capture of a busy
    /// host would hold and search every other mid-stream connection's first 64 KiB (a
    /// thousand of them: twelve times the time, seven times the memory).
    fn deep_search(&self, conn: ConnId) -> bool {
        let Some(c) = self.conns.get(&conn.0) else { return false };
        let meta = &c.info.meta;
        meta.midstream
            && [meta.client.port(), meta.server.port()]
                .iter()
                .any(|p| DEEP_PORTS.contains(p) || self.cfg.net.server_ports.contains(p))
    }

    /// Decides the transport once the held bytes say enough (or `closing`: now), then
    /// replays them through the chosen framing.
    fn try_detect(&mut self, conn: ConnId, closing: bool) -> io::Result<()> {
        let deep = self.deep_search(conn);
        let Some(c) = self.conns.get_mut(&conn.0) else { return Ok(()) };
        let midstream = c.info.meta.midstream;
        let Framing::Detecting(held) = &mut c.framing else { return Ok(()) };
        // The detector reasons in client/server terms.
        let (c2s, s2c) = if c.info.swapped {
            (&held.heads[1], &held.heads[0])
        } else {
            (&held.heads[0], &held.heads[1])
        };
        let last_call = closing || held.bytes > DETECT_HOLD;
        let mut detection = if held.deep {
            if last_call || held.bytes >= held.deep_next {
                held.deep_next = 2 * held.bytes;
                detect::detect_deep(c2s, s2c, last_call).unwrap_or(Detection::NeedMore)
            } else {
                Detection::NeedMore
            }
        } else {
            match detect::detect(c2s, s2c) {
                // A connection seen from its start begins with a message (or a handshake); one
                // picked up mid-stream may begin inside a message longer than the look-ahead.
                Detection::Other if deep => {
                    let d = detect::detect_deep(c2s, s2c, last_call);
                    held.deep = true;
                    held.deep_next = 2 * held.bytes;
                    d.unwrap_or(Detection::NeedMore)
                }
                d => d,
            }
        };
        if matches!(detection, Detection::NeedMore) && last_call {
            detection = detect::detect_final(c2s, s2c);
        }
        let last_pkt = held.events.last().map(|e| e.0);
        let (framing, transport, note) = match detection {
            Detection::NeedMore => return Ok(()),
            Detection::Msync => {
                (self.framing_for(midstream, Transport::Tcp, false), Transport::Tcp, None)
            }
            Detection::WebSocketUpgrade => (
                self.framing_for(midstream, Transport::WebSocket, true),
                Transport::WebSocket,
                None,
            ),
            Detection::WebSocketFrames => (
                self.framing_for(midstream, Transport::WebSocket, false),
                Transport::WebSocket,
                None,
            ),
            Detection::Tls { sni, alpn } => {
                self.out.totals.tls_connections += 1;
                (Framing::Ignored, Transport::Tcp, Some(TransportNote::Tls { sni, alpn }))
            }
            Detection::Http => {
                (Framing::Ignored, Transport::Tcp, Some(TransportNote::NotMsync { what: "HTTP" }))
            }
            Detection::Other => (Framing::Ignored, Transport::Tcp, None),
        };
        let Some(c) = self.conns.get_mut(&conn.0) else { return Ok(()) };
        let held = match std::mem::replace(&mut c.framing, framing) {
            Framing::Detecting(h) => h,
            _ => return Ok(()),
        };
        c.info.transport = transport;
        if let (Some(note), Some(pkt)) = (note, last_pkt) {
            self.out.consumer.event(&Event::Transport { pkt, conn, dir: Dir::C2S, note: &note })?;
        }
        for (pkt, dir, offset, kind) in held.events {
            match kind {
                HeldKind::Data(d) => {
                    feed(&mut c.info, &mut c.framing, &mut self.out, pkt, dir, offset, &d)?
                }
                HeldKind::Gap(len) => {
                    gap(&mut c.info, &mut c.framing, &mut self.out, pkt, dir, offset, len)?
                }
            }
        }
        Ok(())
    }
}

/// The splitter's check for a raw TCP direction: once the login made it LZ4-wrapped, its
/// bodies are envelopes, not MSync, and must be accepted (and resynchronised on) as such, or
/// every wrapped frame would be rejected as invalid. A cell, because a PROVISION answer can
/// switch the direction between two frames of one chunk.
struct TcpCheck<'a> {
    wrapped: &'a std::cell::Cell<bool>,
    cap: usize,
}

impl FrameCheck for TcpCheck<'_> {
    fn plausible(&self, body: &[u8]) -> bool {
        if self.wrapped.get() {
            lz4::plausible_envelope(body, self.cap)
        } else {
            MsyncCheck.plausible(body)
        }
    }
    fn acceptable(&self, body: &[u8]) -> bool {
        if self.wrapped.get() {
            lz4::plausible_envelope(body, self.cap)
        } else {
            MsyncCheck.acceptable(body)
        }
    }
    fn plausible_start(&self, head: &[u8], len: usize) -> bool {
        if self.wrapped.get() {
            lz4::plausible_envelope_start(head, len, self.cap)
        } else {
            MsyncCheck.plausible_start(head, len)
        }
    }
}

/// The WebSocket parser's resynchronisation check: once the login enabled LZ4 on the
/// connection, a binary message may be an envelope rather than MSync, and the parser must be
/// able to find one after a gap (the unwrapping, with its CRC, then judges it).
struct WsCheck {
    lz4: bool,
    cap: usize,
}

impl FrameCheck for WsCheck {
    fn plausible(&self, body: &[u8]) -> bool {
        MsyncCheck.plausible(body) || (self.lz4 && lz4::plausible_envelope(body, self.cap))
    }
    fn plausible_start(&self, head: &[u8], len: usize) -> bool {
        MsyncCheck.plausible_start(head, len)
            || (self.lz4 && lz4::plausible_envelope_start(head, len, self.cap))
    }
}

fn update_ws_check(info: &Info, ws: &mut WebSocket<WsCheck>) {
    ws.check_mut().lz4 = info.lz4.wrapped(Dir::C2S) || info.lz4.wrapped(Dir::S2C);
}

/// In-order bytes of one direction (`net_dir`, the reassembler's) into the framing.
fn feed<C: Consumer>(
    info: &mut Info,
    framing: &mut Framing,
    out: &mut Out<C>,
    pkt: PktCtx,
    net_dir: Dir,
    offset: u64,
    data: &[u8],
) -> io::Result<()> {
    let mut result = Ok(());
    match framing {
        Framing::Tcp(splitters) => {
            let Some(sp) = splitters.get_mut(net_dir.index()) else { return Ok(()) };
            let wrapped = std::cell::Cell::new(info.lz4.wrapped(info.role(net_dir)));
            let check = TcpCheck { wrapped: &wrapped, cap: out.decode.max_inflated };
            sp.feed(offset, data, &check, &mut |ev| {
                if result.is_ok() {
                    result = on_split(info, out, pkt, net_dir, ev);
                }
                wrapped.set(info.lz4.wrapped(info.role(net_dir)));
            });
        }
        Framing::WebSocket(ws) => {
            update_ws_check(info, ws);
            ws.feed(net_dir, offset, data, &mut |ev| {
                if result.is_ok() {
                    result = on_ws(info, out, pkt, ev);
                }
            });
        }
        Framing::Detecting(_) | Framing::Ignored => {}
    }
    result
}

fn gap<C: Consumer>(
    info: &mut Info,
    framing: &mut Framing,
    out: &mut Out<C>,
    pkt: PktCtx,
    net_dir: Dir,
    offset: u64,
    len: u64,
) -> io::Result<()> {
    if matches!(framing, Framing::Ignored) {
        return Ok(());
    }
    let dir = info.role(net_dir);
    out.consumer.event(&Event::Gap { pkt, conn: info.meta.id, dir, offset, len })?;
    info.lz4.gap(dir);
    let mut result = Ok(());
    match framing {
        Framing::Tcp(splitters) => {
            if let Some(sp) = splitters.get_mut(net_dir.index()) {
                sp.gap(offset, len, &mut |ev| {
                    if result.is_ok() {
                        result = on_split(info, out, pkt, net_dir, ev);
                    }
                });
            }
        }
        Framing::WebSocket(ws) => {
            update_ws_check(info, ws);
            ws.gap(net_dir, offset, len, &mut |ev| {
                if result.is_ok() {
                    result = on_ws(info, out, pkt, ev);
                }
            })
        }
        Framing::Detecting(_) | Framing::Ignored => {}
    }
    result
}

fn finish<C: Consumer>(
    info: &mut Info,
    framing: &mut Framing,
    out: &mut Out<C>,
    pkt: PktCtx,
) -> io::Result<()> {
    let mut result = Ok(());
    match framing {
        Framing::Tcp(splitters) => {
            for (i, sp) in splitters.iter_mut().enumerate() {
                let net_dir = if i == 0 { Dir::C2S } else { Dir::S2C };
                let wrapped = std::cell::Cell::new(info.lz4.wrapped(info.role(net_dir)));
                let check = TcpCheck { wrapped: &wrapped, cap: out.decode.max_inflated };
                sp.finish(&check, &mut |ev| {
                    if result.is_ok() {
                        result = on_split(info, out, pkt, net_dir, ev);
                    }
                    wrapped.set(info.lz4.wrapped(info.role(net_dir)));
                });
            }
        }
        Framing::WebSocket(ws) => {
            ws.finish(&mut |ev| {
                if result.is_ok() {
                    result = on_ws(info, out, pkt, ev);
                }
            });
            // Reported once per direction as it happens; the frame count is only known here.
            let odd = ws.odd_masking(Dir::C2S).saturating_add(ws.odd_masking(Dir::S2C));
            out.totals.ws_odd_masking = out.totals.ws_odd_masking.saturating_add(odd);
        }
        Framing::Detecting(_) | Framing::Ignored => {}
    }
    result
}

fn on_split<C: Consumer>(
    info: &mut Info,
    out: &mut Out<C>,
    pkt: PktCtx,
    net_dir: Dir,
    ev: SplitEvent<'_>,
) -> io::Result<()> {
    let conn = info.meta.id;
    let dir = info.role(net_dir);
    match ev {
        SplitEvent::Frame { offset, wire_len, body } => {
            message(info, out, pkt, net_dir, offset, wire_len, body, Transport::Tcp)
        }
        SplitEvent::Invalid { offset, wire_len, body } => {
            let error = match decode::decode(body, dir, &out.decode) {
                Err(e) => e,
                // An empty body decodes as an envelope of defaults, which no client sends: the
                // length prefix said 0.
                Ok(_) if body.is_empty() => {
                    decode::DecodeError::Envelope("empty frame (a length prefix of 0)".into())
                }
                Ok(_) => decode::DecodeError::Envelope("not a well-formed protobuf message".into()),
            };
            let ctx = msg_ctx(info, out, pkt, dir, offset, wire_len, Transport::Tcp, None);
            out.totals.decode_errors += 1;
            out.consumer.event(&Event::DecodeError { ctx: &ctx, raw: body, error: &error })
        }
        SplitEvent::Oversize { offset, len } => {
            out.totals.oversize_frames += 1;
            let problem = FrameProblem::Oversize { len };
            out.consumer.event(&Event::Frame { pkt, conn, dir, offset, problem })
        }
        SplitEvent::Skipped { offset, len } => {
            out.totals.skipped_bytes += len;
            let problem = FrameProblem::Skipped { bytes: len, why: SkipReason::Resync };
            out.consumer.event(&Event::Frame { pkt, conn, dir, offset, problem })
        }
    }
}

fn on_ws<C: Consumer>(
    info: &mut Info,
    out: &mut Out<C>,
    pkt: PktCtx,
    ev: WsEvent<'_>,
) -> io::Result<()> {
    let conn = info.meta.id;
    let note = |info: &Info, out: &mut Out<C>, net_dir: Dir, note: TransportNote| {
        let dir = info.role(net_dir);
        out.consumer.event(&Event::Transport { pkt, conn, dir, note: &note })
    };
    match ev {
        WsEvent::Upgrade(h) => note(
            info,
            out,
            Dir::S2C,
            TransportNote::WsUpgrade {
                path: h.path.clone(),
                host: h.host.clone(),
                origin: h.origin.clone(),
                protocol: h.protocol.clone(),
                extensions: h.extensions.clone(),
            },
        ),
        WsEvent::Rejected { status, reason, .. } => note(
            info,
            out,
            Dir::S2C,
            TransportNote::WsRejected { status, reason: reason.to_string() },
        ),
        WsEvent::Message(m) if m.binary => {
            message(info, out, pkt, m.dir, m.offset, m.wire_len, m.data, Transport::WebSocket)
        }
        WsEvent::Message(m) => {
            if let Some(msgs) = sockjs_messages(info, out, m.dir, m.data) {
                // The frame's wire bytes are counted once, with its first message.
                let mut wire_len = m.wire_len;
                for raw in msgs {
                    let len = std::mem::take(&mut wire_len);
                    message(info, out, pkt, m.dir, m.offset, len, &raw, Transport::WebSocket)?;
                }
                return Ok(());
            }
            let text =
                String::from_utf8_lossy(m.data.get(..m.data.len().min(200)).unwrap_or(m.data))
                    .into_owned();
            note(info, out, m.dir, TransportNote::WsText { len: m.data.len(), text })
        }
        WsEvent::Control { dir, control, .. } => {
            let n = match control {
                Control::Ping { payload } => {
                    out.totals.ws_pings += 1;
                    TransportNote::WsPing { len: payload.len() }
                }
                Control::Pong { payload } => {
                    out.totals.ws_pongs += 1;
                    TransportNote::WsPong { len: payload.len() }
                }
                Control::Close { code, reason } => {
                    out.totals.ws_closes += 1;
                    TransportNote::WsClose { code, reason: reason.into_owned() }
                }
            };
            note(info, out, dir, n)
        }
        WsEvent::Problem { dir, offset, problem } => {
            let (kind, what) = (problem.id(), problem.to_string());
            note(info, out, dir, TransportNote::WsProblem { offset, kind, what })
        }
        WsEvent::Skipped { dir, offset, len, why } => {
            out.totals.skipped_bytes += len;
            let problem = FrameProblem::Skipped { bytes: len, why };
            let dir = info.role(dir);
            out.consumer.event(&Event::Frame { pkt, conn, dir, offset, problem })
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn msg_ctx<'a, C: Consumer>(
    info: &'a Info,
    out: &Out<C>,
    pkt: PktCtx,
    dir: Dir,
    offset: u64,
    wire_len: u64,
    transport: Transport,
    lz4: Option<Lz4Info>,
) -> MsgCtx<'a> {
    MsgCtx {
        frame: pkt.index,
        ts: pkt.ts,
        capture_start: out.capture_start,
        conn: &info.meta,
        dir,
        stream_offset: offset,
        wire_len,
        transport,
        lz4,
    }
}

/// The MSync messages a WebSocket text message carries as a SockJS frame (base64 strings), if
/// it is one whose every string is base64 and, until the connection is known to be MSync,
/// decodes as MSync; otherwise the text stays text.
fn sockjs_messages<C: Consumer>(
    info: &Info,
    out: &Out<C>,
    net_dir: Dir,
    text: &[u8],
) -> Option<Vec<Vec<u8>>> {
    let Some(sockjs::Frame::Messages(list)) = sockjs::parse(text) else { return None };
    let msgs: Vec<Vec<u8>> = list.iter().map(|s| sockjs::base64(s)).collect::<Option<_>>()?;
    let dir = info.role(net_dir);
    let is_msync = |b: &[u8]| decode::decode_metas(b, dir, &out.decode, out.meta_bodies).is_ok();
    (!msgs.is_empty() && (info.msync || msgs.iter().all(|b| is_msync(b)))).then_some(msgs)
}

/// One message body (a length-prefixed frame's or a WebSocket message's): LZ4-unwrapped when
/// negotiated, decoded, handed on.
#[allow(clippy::too_many_arguments)]
fn message<C: Consumer>(
    info: &mut Info,
    out: &mut Out<C>,
    pkt: PktCtx,
    net_dir: Dir,
    offset: u64,
    wire_len: u64,
    body: &[u8],
    transport: Transport,
) -> io::Result<()> {
    let mut dir = info.role(net_dir);
    let conn = info.meta.id;
    // LZ4: unwrap into a buffer of our own so the tracker can be used again below.
    let mut lz4_info = None;
    let unwrapped: Option<Vec<u8>> = if info.lz4.wrapped(dir) {
        match info.lz4.unwrap(dir, body) {
            Ok(u) => {
                let crc_ok = u.crc_ok();
                let (expected, actual) = (u.crc_expected, u.crc_actual);
                lz4_info = Some(Lz4Info {
                    wire_len: body.len() as u64,
                    original_len: u.data.len() as u64,
                    crc_ok,
                });
                let data = u.data.to_vec();
                info.lz4.settle(dir);
                if !crc_ok {
                    let note = TransportNote::Lz4Crc { offset, expected, actual };
                    out.consumer.event(&Event::Transport { pkt, conn, dir, note: &note })?;
                }
                Some(data)
            }
            Err(Lz4Error::HistoryLost { report }) => {
                out.totals.lz4_undecodable += 1;
                if report {
                    let note = TransportNote::Lz4HistoryLost;
                    out.consumer.event(&Event::Transport { pkt, conn, dir, note: &note })?;
                }
                return Ok(());
            }
            Err(e) => {
                out.totals.lz4_undecodable += 1;
                out.totals.decode_errors += 1;
                let error = decode::DecodeError::Envelope(format!("LZ4 envelope: {e}"));
                let ctx = msg_ctx(info, out, pkt, dir, offset, wire_len, transport, None);
                return out.consumer.event(&Event::DecodeError {
                    ctx: &ctx,
                    raw: body,
                    error: &error,
                });
            }
        }
    } else {
        None
    };
    let raw = unwrapped.as_deref().unwrap_or(body);
    // A deferring consumer decodes on its own; this side decodes only what its decisions
    // below need: the roles and MSync detection (until a message of the connection decodes),
    // and LZ4 negotiation (PROVISIONs, found after the consumer has had the body).
    let mut decoded = if !out.defer || !info.msync {
        Some(decode::decode_metas(raw, dir, &out.decode, out.meta_bodies))
    } else {
        None
    };
    if !info.msync && info.meta.role == RoleSource::Guess && matches!(decoded, Some(Err(_))) {
        // Roles guessed from ports can be the wrong way round (a server on a high port, a
        // client on a lower one), and then every message fails: an upload does not decode as
        // a download. Until a message decodes, one that decodes the other way round turns
        // them.
        if let Ok(msg) = decode::decode_metas(raw, dir.reverse(), &out.decode, out.meta_bodies) {
            info.swapped = !info.swapped;
            std::mem::swap(&mut info.meta.client, &mut info.meta.server);
            dir = dir.reverse();
            decoded = Some(Ok(msg));
        }
    }
    if let Some(Ok(msg)) = &decoded {
        if !info.msync && info.meta.role == RoleSource::Guess {
            // The client is whoever sends the first login; the server is whoever sends
            // notices or answers a login.
            let sent_by_server = match &msg.body {
                Body::Provision(p) => p.status.is_some(),
                Body::Notice(_) => true,
                _ => dir == Dir::S2C,
            };
            if sent_by_server != (dir == Dir::S2C) {
                info.swapped = !info.swapped;
                std::mem::swap(&mut info.meta.client, &mut info.meta.server);
                dir = dir.reverse();
            }
        }
        if let Body::Provision(p) = &msg.body {
            info.lz4.on_provision(dir, p);
        }
        if !info.msync {
            info.msync = true;
            out.totals.msync_connections += 1;
            // Counted with the MSync ones: a refused upgrade, or a WebSocket that never carried
            // an MSync message, is among the other connections.
            if transport == Transport::WebSocket {
                out.totals.websocket_connections += 1;
            }
            out.consumer.event(&Event::MsyncDetected { pkt, conn: &info.meta, transport })?;
        }
    }
    info.messages += 1;
    let ctx = msg_ctx(info, out, pkt, dir, offset, wire_len, transport, lz4_info);
    if out.defer {
        let command = out.consumer.undecoded(&ctx, raw)?;
        // A login negotiates LZ4 for the frames after it, so the consumer may see this one
        // first. Until MSync was detected the body was decoded above.
        if decoded.is_none()
            && command.map_or_else(|| decode::may_be_provision(raw), |c| c == Command::Provision)
        {
            if let Ok(msg) = decode::decode_metas(raw, dir, &out.decode, out.meta_bodies) {
                if let Body::Provision(p) = &msg.body {
                    info.lz4.on_provision(dir, p);
                }
            }
        }
        return Ok(());
    }
    match &decoded {
        Some(Ok(msg)) => {
            out.totals.messages += 1;
            out.totals.not_utf8_messages += u64::from(msg.not_utf8_in_message > 0);
            out.consumer.event(&Event::Message { ctx: &ctx, raw, msg })
        }
        Some(Err(error)) => {
            out.totals.decode_errors += 1;
            if matches!(error, decode::DecodeError::InflateTooLarge(_)) {
                out.totals.inflate_capped += 1;
            }
            if matches!(error, decode::DecodeError::OverBudget(_)) {
                out.totals.decode_capped += 1;
            }
            out.consumer.event(&Event::DecodeError { ctx: &ctx, raw, error })
        }
        None => Ok(()),
    }
}

/// What happened while reading capture files.
#[derive(Debug, Default)]
pub struct RunOutcome {
    /// Errors that make the run fail (exit status 2), one line each, already printed.
    pub errors: usize,
    /// Warnings (e.g. a truncated last record), one line each, already printed.
    pub warnings: usize,
    /// Whether the packets' times only went forward, across every file in the order read.
    pub time_order: crate::capture::TimeOrder,
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
    shard::read_all(sources, report, &mut |_| {}, &mut |pkt| pipeline.packet(pkt))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{ConnId, RoleSource};

    struct Nothing;

    impl Consumer for Nothing {
        fn event(&mut self, _: &Event<'_>) -> io::Result<()> {
            Ok(())
        }
        fn finish(&mut self, _: &Totals) -> io::Result<()> {
            Ok(())
        }
    }

    /// Counts the messages decoded and the connections set aside as not MSync.
    #[derive(Default)]
    struct Count {
        messages: u64,
        other: u64,
    }

    impl Consumer for Count {
        fn event(&mut self, e: &Event<'_>) -> io::Result<()> {
            match e {
                Event::Message { .. } => self.messages += 1,
                Event::ConnClose { msync: false, .. } => self.other += 1,
                _ => {}
            }
            Ok(())
        }
        fn finish(&mut self, _: &Totals) -> io::Result<()> {
            Ok(())
        }
    }

    fn ok(r: io::Result<()>) {
        r.unwrap_or_else(|e| panic!("{e}"));
    }

    /// A pipeline with connection 0 to `server` opened, picked up mid-stream; the packet to
    /// feed it with.
    fn midstream_pipeline<C: Consumer>(consumer: C, server: &str) -> (Pipeline<C>, PktCtx) {
        let mut p = Pipeline::new(PipelineConfig::default(), consumer);
        let addr = |s: &str| s.parse().unwrap_or_else(|_| panic!("{s}"));
        let meta = ConnMeta {
            id: ConnId(0),
            client: addr("10.0.0.1:40000"),
            server: addr(server),
            role: RoleSource::Guess,
            midstream: true,
            first_packet: 1,
            first_ts: Timestamp(0),
            resumes: None,
        };
        let pkt = PktCtx { index: 1, ts: Timestamp(0) };
        ok(p.inner.handle(pkt, StreamEvent::Open(&meta)));
        (p, pkt)
    }

    /// What `server` sent on a connection picked up mid-stream, in 300-byte segments, then
    /// the close.
    fn midstream_server_bytes(server: &str, stream: &[u8]) -> Count {
        let (mut p, pkt) = midstream_pipeline(Count::default(), server);
        let (conn, dir) = (ConnId(0), Dir::S2C);
        for (i, data) in stream.chunks(300).enumerate() {
            let offset = 300 * i as u64;
            ok(p.inner.handle(pkt, StreamEvent::Data { conn, dir, offset, data }));
        }
        let reason = crate::net::CloseReason::Fin;
        ok(p.inner.handle(pkt, StreamEvent::Close { conn, reason, last: Timestamp(0) }));
        p.inner.out.consumer
    }

    /// A capture that starts inside a message longer than the detector's first look-ahead,
    /// on a connection to an MSync port where nothing else is said meanwhile: the messages
    /// after it are found; bytes that hold none leave the connection "other", within the hold.
    #[test]
    fn midstream_start_inside_a_long_message() {
        use crate::msync::pb;
        use prost::Message as _;
        let frame = |m: &pb::MSync| {
            let body = m.encode_to_vec();
            let mut f = (body.len() as u32).to_be_bytes().to_vec();
            f.extend(body);
            f
        };
        let text = "hello, a long pull answer ".repeat(1000).into_bytes();
        let long =
            frame(&pb::MSync { command: Some(0), payload: Some(text), ..Default::default() });
        let short = frame(&pb::MSync { command: Some(1), payload: None, ..Default::default() });
        let tail = |n: usize| long.get(long.len() - n..).unwrap_or_default().to_vec();
        for n in [5_000usize, 20_000, 24_000] {
            let mut stream = tail(n);
            stream.extend(&short);
            stream.extend(&short);
            let got = midstream_server_bytes("10.0.0.2:6717", &stream);
            assert_eq!((got.messages, got.other), (2, 0), "a tail of {n} bytes");
            // Elsewhere than on the native SDKs' ports (or those given), the look-ahead decides.
            let got = midstream_server_bytes("10.0.0.2:5432", &stream);
            assert_eq!((got.messages, got.other), (0, 1), "a tail of {n} bytes, port 5432");
        }
        // One message after the tail: found when the connection ends with it.
        let mut stream = tail(9_000);
        stream.extend(&short);
        let got = midstream_server_bytes("10.0.0.2:6717", &stream);
        assert_eq!((got.messages, got.other), (1, 0), "one message after the tail");
        // Bytes with no message in them: other, whatever their length.
        for len in [5_000usize, 50_000, 200_000] {
            let noise: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8 | 0x80).collect();
            let got = midstream_server_bytes("10.0.0.2:6717", &noise);
            assert_eq!((got.messages, got.other), (0, 1), "{len} bytes of noise");
        }
    }

    /// The same over WebSocket (the web SDK): a connection picked up inside a server frame
    /// longer than the look-ahead was "other", and its whole session lost.
    #[test]
    fn midstream_websocket_start_inside_a_long_frame() {
        use crate::msync::pb;
        use prost::Message as _;
        let frame = |m: &pb::MSync| {
            let mut f = Vec::new();
            crate::synth::ws::frame(&mut f, true, false, 2, &m.encode_to_vec(), None);
            f
        };
        let text = "hello, a long pull answer ".repeat(1000).into_bytes();
        let long =
            frame(&pb::MSync { command: Some(0), payload: Some(text), ..Default::default() });
        let short = frame(&pb::MSync { command: Some(1), payload: None, ..Default::default() });
        let tail = |n: usize| long.get(long.len() - n..).unwrap_or_default().to_vec();
        for n in [5_000usize, 20_000] {
            let mut stream = tail(n);
            for _ in 0..3 {
                stream.extend(&short);
            }
            let got = midstream_server_bytes("10.0.0.2:6717", &stream);
            assert_eq!((got.messages, got.other), (3, 0), "a tail of {n} bytes");
            let got = midstream_server_bytes("10.0.0.2:5432", &stream);
            assert_eq!((got.messages, got.other), (0, 1), "a tail of {n} bytes, port 5432");
        }
        // One frame after the tail: found when the connection ends with it.
        let mut stream = tail(9_000);
        stream.extend(&short);
        let got = midstream_server_bytes("10.0.0.2:6717", &stream);
        assert_eq!((got.messages, got.other), (1, 0), "one frame after the tail");
    }

    #[test]
    fn detection_holds_a_bounded_number_of_events() {
        let (mut p, pkt) = midstream_pipeline(Nothing, "10.0.0.2:6717");
        // A byte, then a gap, over and over: the detector's look-ahead starts again after each
        // gap, so only the hold ends the wait, and it must count the events, not the bytes.
        let mut events = 0usize;
        for i in 0..200_000u64 {
            let detecting = p.inner.conns.get(&0).map(|c| &c.framing);
            if !matches!(detecting, Some(Framing::Detecting(_))) {
                break;
            }
            let (conn, dir) = (ConnId(0), Dir::C2S);
            ok(p.inner.handle(pkt, StreamEvent::Data { conn, dir, offset: 2 * i, data: &[0x42] }));
            ok(p.inner.handle(pkt, StreamEvent::Gap { conn, dir, offset: 2 * i + 1, len: 1 }));
            events += 2;
        }
        assert!(events > 100, "{events} events: given up too soon to test the hold");
        assert!(events <= 2 * DETECT_HOLD / HELD_EVENT_COST + 4, "{events} events held");
    }
}
