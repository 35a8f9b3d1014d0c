//! Helpers shared by the integration tests that build their own captures.
// Each test crate uses its own part of them.
#![allow(dead_code)]

use etherparse::{PacketBuilder, TcpHeader};
use msyncdump::net::Dir;

/// A classic pcap (little-endian, µs, Ethernet) whose record headers can lie.
pub struct Pcap {
    pub buf: Vec<u8>,
    pub usec: u32,
}

impl Pcap {
    pub fn new() -> Pcap {
        let mut buf = Vec::new();
        buf.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        buf.extend_from_slice(&2u16.to_le_bytes());
        buf.extend_from_slice(&4u16.to_le_bytes());
        buf.extend_from_slice(&[0; 8]);
        buf.extend_from_slice(&262_144u32.to_le_bytes());
        buf.extend_from_slice(&1u32.to_le_bytes());
        Pcap { buf, usec: 0 }
    }

    /// A record header with the given lengths, followed by `data` (which may be shorter).
    pub fn raw_record(&mut self, caplen: u32, orig_len: u32, data: &[u8]) {
        self.usec += 1000;
        self.buf.extend_from_slice(&1_509_019_200u32.to_le_bytes());
        self.buf.extend_from_slice(&self.usec.to_le_bytes());
        self.buf.extend_from_slice(&caplen.to_le_bytes());
        self.buf.extend_from_slice(&orig_len.to_le_bytes());
        self.buf.extend_from_slice(data);
    }

    pub fn packet(&mut self, data: &[u8]) {
        self.raw_record(data.len() as u32, data.len() as u32, data);
    }
}

/// An Ethernet/IPv4/TCP packet from `src` to `dst`. `flags`: `S` (SYN), `F` (FIN), `A` (ACK,
/// with `ack` as its number).
pub fn tcp_packet(
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    seq: u32,
    ack: u32,
    flags: &str,
    payload: &[u8],
) -> Vec<u8> {
    let mut tcp = TcpHeader::new(src.1, dst.1, seq, 65535);
    tcp.syn = flags.contains('S');
    tcp.fin = flags.contains('F');
    tcp.psh = !payload.is_empty();
    if flags.contains('A') {
        tcp.ack = true;
        tcp.acknowledgment_number = ack;
    }
    let mut out = Vec::with_capacity(54 + payload.len());
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src.0, dst.0, 64)
        .tcp_header(tcp)
        .write(&mut out, payload)
        .unwrap();
    out
}

/// One TCP connection (with its handshake) from a client to the server port 6717, carrying
/// length-prefixed MSync messages.
pub struct Flow {
    client: ([u8; 4], u16),
    server: ([u8; 4], u16),
    seq: [u32; 2],
}

impl Flow {
    pub fn open(pcap: &mut Pcap, n: u16) -> Flow {
        let mut f = Flow {
            client: ([10, 0, 0, 1], 40_000 + n),
            server: ([198, 51, 100, 10], 6717),
            seq: [1000, 0x8000_0000],
        };
        pcap.packet(&f.segment(Dir::C2S, "S", &[]));
        f.seq[0] += 1;
        pcap.packet(&f.segment(Dir::S2C, "SA", &[]));
        f.seq[1] += 1;
        pcap.packet(&f.segment(Dir::C2S, "A", &[]));
        f
    }

    pub fn segment(&self, dir: Dir, flags: &str, payload: &[u8]) -> Vec<u8> {
        let (src, dst) = match dir {
            Dir::C2S => (self.client, self.server),
            Dir::S2C => (self.server, self.client),
        };
        let (seq, ack) = (self.seq[dir.index()], self.seq[dir.reverse().index()]);
        tcp_packet(src, dst, seq, ack, flags, payload)
    }

    /// Sends one MSync message (length-prefixed).
    pub fn send(&mut self, pcap: &mut Pcap, dir: Dir, msg: &[u8]) {
        let mut framed = (msg.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(msg);
        for chunk in framed.chunks(1400) {
            pcap.packet(&self.segment(dir, "A", chunk));
            self.seq[dir.index()] = self.seq[dir.index()].wrapping_add(chunk.len() as u32);
        }
    }
}
