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
    pub net: crate::net::NetStats,
}

/// A consumer of the event stream: a printer, an analyzer.
pub trait Consumer {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<()>;
    fn finish(&mut self, totals: &Totals) -> io::Result<()>;
}
