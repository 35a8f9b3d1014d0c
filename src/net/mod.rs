//! Link, network and transport layers: parsing of captured packets (Ethernet with VLAN tags,
//! MPLS and PPPoE, Linux cooked v1/v2, BSD loopback, raw IP, PPP, Cisco HDLC, PKTAP, NFLOG;
//! IPv4 with options, IPv6 with extension headers, fragments of both reassembled; tunnels
//! opened, see [`parse`]), the TCP connection table and per-direction reassembly into byte
//! streams.
//!
//! Output is a stream of [`StreamEvent`]s handed to a [`StreamSink`]: connection opened, in-order
//! data, gaps (bytes that will never come), TCP notes (retransmission, out-of-order, …) and
//! close. In-order data borrows the packet whenever it can; only out-of-order segments are copied,
//! and their buffering is bounded per flow and in total.
//!
//! Guarantees to consumers:
//! - Per connection: `Open` first, then `Data`/`Gap`/`Note`, then `Close` exactly once; nothing
//!   after `Close`. Connections are numbered from 0 in order of their first packet.
//! - Per direction, `Data` and `Gap` tile the stream: each starts where the previous ended, from
//!   offset 0 (the byte after the ISN, or the first sequence number seen mid-stream).
//! - `Close{Fin}` comes once both sides sent a FIN and the data before each FIN was emitted or
//!   declared lost; a FIN whose sender's data then starts where the FIN was is forgotten
//!   (`Note{BadSequence}`: its bit was corrupt). `Close{Rst}` on the first RST within its sender's sequence space (others:
//!   `Note{RstIgnored}`). A SYN with a new ISN on an open 4-tuple, or a SYN+ACK that cannot be
//!   the open connection's (`synack_elsewhere`), unless its sequence number lies inside the
//!   stream its sender already sent (a corrupt SYN bit: the segment is taken without it,
//!   `Note{BadSequence}`), closes the old connection as `Close{Evicted}`
//!   (counted in [`NetStats::reused_tuples`], not in `evicted`). `finish()` closes the rest with `CaptureEnd` in connection-id order.
//! - After `Close{Fin}` or `Close{Rst}`, a segment with bytes on the 4-tuple belongs to the
//!   closed connection when it starts within its stream, at or before its end: it is counted
//!   ([`NetStats::late_data_packets`] and `late_data_bytes` for bytes past the end, else
//!   `late_packets`), not emitted. Starting anywhere else, or with bytes from an RST's sender
//!   past that RST's sequence number (which no sender that reset sends: the RST bit was
//!   corrupt), it is a new connection on the same 4-tuple, picked up mid-stream.
//! - A hole is declared lost (`Gap`) when the peer acknowledges past it, when buffering exceeds
//!   a cap (`Note{BufferLimit}` first), when the snaplen cut the bytes (`Note{Snaplen}`), or at
//!   close. An ACK seen before the data it acknowledges (capture reordering) therefore turns that
//!   data into a gap; the late copy is then reported as a retransmission.
//! - Malformed or unsupported input only increments [`NetStats`] counters; nothing panics.

use std::net::SocketAddr;

use crate::capture::{LinkType, Timestamp};

pub(crate) mod frag;
pub(crate) mod hash;
pub(crate) mod parse;
mod reasm;
pub mod seq;
mod table;
#[cfg(test)]
mod tests;

pub use table::Net;

/// Whether packets of this link type can be parsed.
pub fn link_supported(link: LinkType) -> bool {
    parse::link_supported(link)
}

/// Connection index: connections are numbered from 0 in order of their first packet; a new
/// SYN on a reused 4-tuple starts a new connection with a new index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u32);

/// Direction of a byte stream relative to the connection's roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Client to server ("UL", `SEND:` in the SDK's log).
    C2S,
    /// Server to client ("DL", `RECV:` in the SDK's log).
    S2C,
}

impl Dir {
    pub fn index(self) -> usize {
        match self {
            Dir::C2S => 0,
            Dir::S2C => 1,
        }
    }
    pub fn reverse(self) -> Dir {
        match self {
            Dir::C2S => Dir::S2C,
            Dir::S2C => Dir::C2S,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::C2S => "c2s",
            Dir::S2C => "s2c",
        }
    }
}

/// How the client/server roles of a connection were decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleSource {
    /// The server is the receiver of the SYN.
    Syn,
    /// `--server-port` named the server's port.
    Forced,
    /// No SYN seen: a guess from the ports (well-known or lower port is the server). Later
    /// evidence (who sends PROVISION) may swap the roles.
    Guess,
}

/// What is known of a connection when it opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnMeta {
    pub id: ConnId,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub role: RoleSource,
    /// The capture started after the connection's handshake (no SYN seen).
    pub midstream: bool,
    /// Packet index and time of the connection's first packet.
    pub first_packet: u64,
    pub first_ts: Timestamp,
    /// The connection this one goes on with: the same 4-tuple, closed as idle while open, whose
    /// sequence numbers this one's first segment continues (see [`Resumed`]).
    pub resumes: Option<Resumed>,
}

/// A connection closed as idle (no packet for the idle timeout, no FIN or RST) that came back:
/// its sequence numbers went on where they had stopped, so it is the same TCP connection,
/// silent for a while (an app in the background) or seen across a clock stepped forward. Its
/// state was let go at the time-out, so it goes on under a new number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resumed {
    pub conn: ConnId,
    /// From the earlier connection's last packet to this one's first (capture time, ns).
    pub idle_ns: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    Fin,
    Rst,
    /// No packet for longer than the idle timeout (capture time).
    Idle,
    /// Evicted to bound the connection table.
    Evicted,
    /// Still open when the capture ended.
    CaptureEnd,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Fin => "FIN",
            CloseReason::Rst => "RST",
            CloseReason::Idle => "idle",
            CloseReason::Evicted => "evicted",
            CloseReason::CaptureEnd => "capture end",
        }
    }
}

/// Things worth an expert-info line that reassembly notices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcpNote {
    /// A segment whose data was entirely seen before.
    Retransmission,
    /// A segment that arrived after data following it (it fills a hole, or part of one).
    OutOfOrder,
    /// A segment partly overlapping data already seen (first data wins).
    Overlap,
    /// Out-of-order buffering hit its cap; the missing range became a gap.
    BufferLimit,
    /// A record cut by the snaplen: the missing bytes become a gap.
    Snaplen,
    /// Data after the SYN's sequence space was closed, or otherwise impossible sequence numbers.
    BadSequence,
    /// A keep-alive, as Wireshark tells one: no SYN, FIN or RST, at most one byte, at the
    /// sequence number before the next expected one. Its byte (garbage, or one already seen) is
    /// not stream data, and the probe is not a retransmission.
    KeepAlive,
    /// The sender advertises a receive window of zero (Wireshark's "TCP ZeroWindow"): its
    /// receive buffer is full, so its application is not reading, and the peer must stop.
    ZeroWindow,
    /// One byte at the next expected sequence number while the peer's window is zero (Windows
    /// and BSD probe this way; Linux's probes are keep-alives). The byte is stream data; a
    /// probe sent again, and the data that resumes at the probe's byte when the window opens,
    /// are neither retransmissions nor overlaps.
    ZeroWindowProbe,
    /// An RST whose sequence number lies outside anything its sender could have sent
    /// (spoofed, or from an earlier connection on the 4-tuple): it does not end the connection.
    RstIgnored,
}

/// Packet context for events: which record caused them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PktCtx {
    /// 1-based capture record number.
    pub index: u64,
    pub ts: Timestamp,
}

#[derive(Debug)]
pub enum StreamEvent<'a> {
    Open(&'a ConnMeta),
    /// In-order bytes of one direction; `offset` is the stream offset of `data[0]` (bytes since
    /// the ISN+1, or since the first byte seen for a connection picked up mid-stream).
    Data {
        conn: ConnId,
        dir: Dir,
        offset: u64,
        data: &'a [u8],
    },
    /// `len` bytes at stream `offset` are lost: the next Data starts at `offset + len`.
    Gap {
        conn: ConnId,
        dir: Dir,
        offset: u64,
        len: u64,
    },
    Note {
        conn: ConnId,
        dir: Dir,
        note: TcpNote,
    },
    Close {
        conn: ConnId,
        reason: CloseReason,
        /// Time of the connection's last packet: where an idle or evicted connection ended,
        /// whichever later packet (of another connection) found it so.
        last: Timestamp,
    },
}

/// Receiver of reassembly events. Events of one connection arrive in stream order.
pub trait StreamSink {
    fn event(&mut self, pkt: PktCtx, ev: StreamEvent<'_>);
}

#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Ports whose owner is the server, whatever the handshake says.
    pub server_ports: Vec<u16>,
    /// Memory held by out-of-order segments per direction before the missing range becomes a
    /// gap: each segment is charged its bytes and what holding it costs (`reasm::held_cost`:
    /// about 80 bytes and a quarter more), so many small segments cannot hold more than this.
    pub max_flow_buffer: usize,
    /// Memory held by out-of-order segments over all flows, charged the same way.
    pub max_total_buffer: usize,
    /// Connections with no packet for this long (capture time, ns) are closed as idle.
    pub idle_timeout_ns: i64,
    /// Connections tracked at once; past it the idlest is evicted.
    pub max_flows: usize,
    /// IP fragments (IPv4 and IPv6 together) buffered at once (bytes) before the oldest
    /// datagrams are dropped.
    pub max_fragment_buffer: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            server_ports: Vec::new(),
            max_flow_buffer: 4 << 20,
            max_total_buffer: 256 << 20,
            idle_timeout_ns: 600_000_000_000,
            max_flows: 1 << 18,
            max_fragment_buffer: 16 << 20,
        }
    }
}

/// Counters over the whole run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    pub packets: u64,
    /// Packets with a link type we cannot parse.
    pub unsupported_link: u64,
    /// Packets that could not be parsed (malformed or truncated headers).
    pub malformed: u64,
    /// IP packets that are not TCP (UDP, ICMP, …).
    pub non_tcp: u64,
    /// Non-IP frames (ARP, LLDP, …).
    pub non_ip: u64,
    pub ipv4_fragments: u64,
    pub ipv4_reassembled: u64,
    pub tcp_packets: u64,
    pub tcp_connections: u64,
    pub midstream_connections: u64,
    pub retransmissions: u64,
    pub out_of_order: u64,
    pub overlaps: u64,
    /// Times out-of-order buffering hit the per-flow or total cap (each turns a hole into a
    /// gap early).
    pub buffer_limits: u64,
    pub gap_bytes: u64,
    /// Keep-alive probes (see [`TcpNote::KeepAlive`]).
    pub keep_alives: u64,
    /// Segments advertising a zero window (see [`TcpNote::ZeroWindow`]).
    pub zero_windows: u64,
    pub zero_window_probes: u64,
    pub rst: u64,
    /// RSTs outside their sender's sequence space, which closed nothing.
    pub rst_ignored: u64,
    pub evicted: u64,
    pub idle_closed: u64,
    /// IPv4 fragments or datagrams dropped: overlapping with different bytes, inconsistent
    /// lengths, truncated, over the buffer budget, or timed out incomplete.
    pub ipv4_fragments_dropped: u64,
    pub ipv6_fragments: u64,
    pub ipv6_reassembled: u64,
    /// IPv6 fragments or datagrams dropped, as for IPv4.
    pub ipv6_fragments_dropped: u64,
    /// TCP packets for a closed connection that carry nothing new (late ACKs, FINs and RSTs,
    /// retransmissions of what it carried) or lone RSTs: counted, not emitted.
    pub late_packets: u64,
    /// Segments with bytes past the end of their closed connection's stream, in its sequence
    /// space (data in flight when an RST came, or captured after it): counted, with those
    /// bytes, and not emitted (nothing follows a connection's `Close`).
    pub late_data_packets: u64,
    pub late_data_bytes: u64,
    /// Connections closed because a SYN with a new ISN reused their 4-tuple (reported as
    /// `Close{Evicted}`, not counted in `evicted`).
    pub reused_tuples: u64,
}

impl NetStats {
    /// Adds the counts of `o` (another pipeline's, over other packets).
    pub fn merge(&mut self, o: &NetStats) {
        // Destructured so that a counter added later cannot be left out here.
        let NetStats {
            packets,
            unsupported_link,
            malformed,
            non_tcp,
            non_ip,
            ipv4_fragments,
            ipv4_reassembled,
            tcp_packets,
            tcp_connections,
            midstream_connections,
            retransmissions,
            out_of_order,
            overlaps,
            buffer_limits,
            gap_bytes,
            keep_alives,
            zero_windows,
            zero_window_probes,
            rst,
            rst_ignored,
            evicted,
            idle_closed,
            ipv4_fragments_dropped,
            ipv6_fragments,
            ipv6_reassembled,
            ipv6_fragments_dropped,
            late_packets,
            late_data_packets,
            late_data_bytes,
            reused_tuples,
        } = *o;
        self.packets += packets;
        self.unsupported_link += unsupported_link;
        self.malformed += malformed;
        self.non_tcp += non_tcp;
        self.non_ip += non_ip;
        self.ipv4_fragments += ipv4_fragments;
        self.ipv4_reassembled += ipv4_reassembled;
        self.tcp_packets += tcp_packets;
        self.tcp_connections += tcp_connections;
        self.midstream_connections += midstream_connections;
        self.retransmissions += retransmissions;
        self.out_of_order += out_of_order;
        self.overlaps += overlaps;
        self.buffer_limits += buffer_limits;
        self.gap_bytes += gap_bytes;
        self.keep_alives += keep_alives;
        self.zero_windows += zero_windows;
        self.zero_window_probes += zero_window_probes;
        self.rst += rst;
        self.rst_ignored += rst_ignored;
        self.evicted += evicted;
        self.idle_closed += idle_closed;
        self.ipv4_fragments_dropped += ipv4_fragments_dropped;
        self.ipv6_fragments += ipv6_fragments;
        self.ipv6_reassembled += ipv6_reassembled;
        self.ipv6_fragments_dropped += ipv6_fragments_dropped;
        self.late_packets += late_packets;
        self.late_data_packets += late_data_packets;
        self.late_data_bytes += late_data_bytes;
        self.reused_tuples += reused_tuples;
    }
}
