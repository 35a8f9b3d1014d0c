//! Tests of parsing, the connection table and reassembly over hand-built packets.

use std::collections::HashMap;

use proptest::prelude::*;

use super::reasm::held_cost;
use super::*;
use crate::capture::{LinkType, Packet, Timestamp};

const FIN: u8 = 1;
const SYN: u8 = 2;
const RST: u8 = 4;
const ACK: u8 = 16;

const C: ([u8; 4], u16) = ([10, 0, 0, 1], 40000);
const S: ([u8; 4], u16) = ([10, 0, 0, 2], 6717);

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Open(ConnMeta),
    Data(u32, Dir, u64, Vec<u8>),
    Gap(u32, Dir, u64, u64),
    Note(u32, Dir, TcpNote),
    Close(u32, CloseReason),
}

#[derive(Default)]
struct Rec {
    evs: Vec<Ev>,
    /// (conn, dir, offset, packet number) of every Data event.
    data_pkts: Vec<(u32, Dir, u64, u64)>,
}

impl StreamSink for Rec {
    fn event(&mut self, pkt: PktCtx, ev: StreamEvent<'_>) {
        if let StreamEvent::Data { conn, dir, offset, .. } = ev {
            self.data_pkts.push((conn.0, dir, offset, pkt.index));
        }
        self.evs.push(match ev {
            StreamEvent::Open(m) => Ev::Open(m.clone()),
            StreamEvent::Data { conn, dir, offset, data } => {
                Ev::Data(conn.0, dir, offset, data.to_vec())
            }
            StreamEvent::Gap { conn, dir, offset, len } => Ev::Gap(conn.0, dir, offset, len),
            StreamEvent::Note { conn, dir, note } => Ev::Note(conn.0, dir, note),
            StreamEvent::Close { conn, reason, .. } => Ev::Close(conn.0, reason),
        });
    }
}

impl Rec {
    /// Data of one direction; checks Data/Gap tile the stream from `start` without overlap.
    /// Gap bytes are returned as `None`.
    fn stream(&self, conn: u32, dir: Dir) -> Vec<Option<u8>> {
        let mut out: Vec<Option<u8>> = Vec::new();
        let mut at: Option<u64> = None;
        for e in &self.evs {
            match e {
                Ev::Data(c, d, off, data) if *c == conn && *d == dir => {
                    if let Some(a) = at {
                        assert_eq!(*off, a, "data offset");
                    }
                    out.extend(data.iter().map(|&b| Some(b)));
                    at = Some(off + data.len() as u64);
                }
                Ev::Gap(c, d, off, len) if *c == conn && *d == dir => {
                    if let Some(a) = at {
                        assert_eq!(*off, a, "gap offset");
                    }
                    assert!(*len > 0);
                    out.extend(std::iter::repeat_n(None, *len as usize));
                    at = Some(off + len);
                }
                _ => {}
            }
        }
        out
    }
    fn bytes(&self, conn: u32, dir: Dir) -> Vec<u8> {
        self.stream(conn, dir).into_iter().flatten().collect()
    }
    fn gaps(&self, conn: u32, dir: Dir) -> Vec<(u64, u64)> {
        self.evs
            .iter()
            .filter_map(|e| match e {
                Ev::Gap(c, d, o, l) if *c == conn && *d == dir => Some((*o, *l)),
                _ => None,
            })
            .collect()
    }
    fn notes(&self, conn: u32) -> Vec<TcpNote> {
        self.evs
            .iter()
            .filter_map(|e| match e {
                Ev::Note(c, _, n) if *c == conn => Some(*n),
                _ => None,
            })
            .collect()
    }
    fn opens(&self) -> Vec<ConnMeta> {
        self.evs
            .iter()
            .filter_map(|e| match e {
                Ev::Open(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }
    fn closes(&self) -> Vec<(u32, CloseReason)> {
        self.evs
            .iter()
            .filter_map(|e| match e {
                Ev::Close(c, r) => Some((*c, *r)),
                _ => None,
            })
            .collect()
    }
    /// Open first, Close exactly once and last, per connection.
    fn check_order(&self) {
        let mut state: HashMap<u32, u8> = HashMap::new();
        for e in &self.evs {
            let (c, kind) = match e {
                Ev::Open(m) => (m.id.0, 0),
                Ev::Data(c, ..) | Ev::Gap(c, ..) | Ev::Note(c, ..) => (*c, 1),
                Ev::Close(c, _) => (*c, 2),
            };
            let st = state.get(&c).copied();
            match kind {
                0 => assert_eq!(st, None, "second Open of {c}"),
                1 => assert_eq!(st, Some(0), "event outside open/close of {c}: {e:?}"),
                _ => assert_eq!(st, Some(0), "Close without Open or twice for {c}"),
            }
            state.insert(c, if kind == 2 { 2 } else { 0 });
        }
    }
}

fn tcp_hdr(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    tcp_hdr_win(sport, dport, seq, ack, flags, 0xffff, payload)
}

fn tcp_hdr_win(
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut t = Vec::with_capacity(20 + payload.len());
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.push(5 << 4);
    t.push(flags);
    t.extend_from_slice(&window.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, frag: u16, id: u16, l4: &[u8]) -> Vec<u8> {
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(l4);
    p
}

#[allow(clippy::too_many_arguments)]
fn pkt4(
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    ipv4(src.0, dst.0, 6, 0x4000, 0, &tcp_hdr(src.1, dst.1, seq, ack, flags, payload))
}

struct T {
    net: Net,
    rec: Rec,
    idx: u64,
    ts: i64,
}

impl T {
    fn new(cfg: NetConfig) -> T {
        T { net: Net::new(cfg), rec: Rec::default(), idx: 0, ts: 1_000_000_000_000 }
    }
    fn raw(&mut self, link: u32, data: &[u8], orig_len: u32) {
        self.idx += 1;
        let p = Packet {
            index: self.idx,
            ts: Timestamp(self.ts),
            link: LinkType(link),
            orig_len,
            data,
            file_offset: 0,
        };
        self.net.packet(&p, &mut self.rec);
    }
    fn ip(&mut self, data: &[u8]) {
        self.raw(228, data, data.len() as u32);
    }
    /// A segment between `C` and `S`.
    fn seg(&mut self, from_client: bool, seq: u32, ack: u32, flags: u8, payload: &[u8]) {
        let p = if from_client {
            pkt4(C, S, seq, ack, flags, payload)
        } else {
            pkt4(S, C, seq, ack, flags, payload)
        };
        self.ip(&p);
    }
    /// A segment advertising `window`.
    fn seg_win(
        &mut self,
        from_client: bool,
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
        data: &[u8],
    ) {
        let (a, b) = if from_client { (C, S) } else { (S, C) };
        let l4 = tcp_hdr_win(a.1, b.1, seq, ack, flags, window, data);
        self.ip(&ipv4(a.0, b.0, 6, 0x4000, 0, &l4));
    }
    fn finish(&mut self) {
        self.net.finish(&mut self.rec);
        self.rec.check_order();
    }
}

fn sock(a: ([u8; 4], u16)) -> std::net::SocketAddr {
    std::net::SocketAddr::from((a.0, a.1))
}

#[test]
fn handshake_data_fin() {
    let mut t = T::new(NetConfig::default());
    t.seg(true, 1000, 0, SYN, b"");
    t.seg(false, 5000, 1001, SYN | ACK, b"");
    t.seg(true, 1001, 5001, ACK, b"");
    t.seg(true, 1001, 5001, ACK, b"hello");
    t.seg(false, 5001, 1006, ACK, b"world!");
    t.seg(true, 1006, 5007, ACK | FIN, b"");
    t.seg(false, 5007, 1007, ACK | FIN, b"");
    t.seg(true, 1007, 5008, ACK, b"");
    let opens = t.rec.opens();
    assert_eq!(opens.len(), 1);
    assert_eq!(opens[0].client, sock(C));
    assert_eq!(opens[0].server, sock(S));
    assert_eq!(opens[0].role, RoleSource::Syn);
    assert!(!opens[0].midstream);
    assert_eq!(opens[0].first_packet, 1);
    assert_eq!(t.rec.bytes(0, Dir::C2S), b"hello");
    assert_eq!(t.rec.bytes(0, Dir::S2C), b"world!");
    assert!(t.rec.evs.contains(&Ev::Data(0, Dir::S2C, 0, b"world!".to_vec())));
    assert_eq!(t.rec.closes(), vec![(0, CloseReason::Fin)]);
    t.finish();
    assert_eq!(t.rec.closes(), vec![(0, CloseReason::Fin)]);
    assert_eq!(t.net.stats().tcp_connections, 1);
    assert_eq!(t.net.stats().late_packets, 1);
}

#[test]
fn synack_first_decides_roles() {
    let mut t = T::new(NetConfig::default());
    // Server on a non-well-known high port, client on a lower one: only the SYN+ACK tells.
    let srv = ([10, 0, 0, 2], 50000);
    let cli = ([10, 0, 0, 1], 1000);
    t.ip(&pkt4(srv, cli, 7000, 301, SYN | ACK, b""));
    t.ip(&pkt4(cli, srv, 300, 0, SYN, b"")); // late SYN: same connection
    t.ip(&pkt4(cli, srv, 301, 7001, ACK, b"abc"));
    t.finish();
    let m = &t.rec.opens()[0];
    assert_eq!((m.client, m.server, m.role), (sock(cli), sock(srv), RoleSource::Syn));
    assert!(!m.midstream);
    // The first SYN of its direction, though after the SYN+ACK: not a retransmission.
    assert_eq!(t.rec.evs[1], Ev::Data(0, Dir::C2S, 0, b"abc".to_vec()));
}

/// As Wireshark counts them: a SYN, SYN+ACK or FIN sent again (same sequence number, no data)
/// is a retransmission; the first of each is not, nor is a new SYN on a reused 4-tuple.
#[test]
fn syn_and_fin_sent_again_are_retransmissions() {
    let rtx =
        |t: &T, conn| t.rec.notes(conn).iter().filter(|n| **n == TcpNote::Retransmission).count();
    let srv = ([10, 0, 0, 2], 6717);
    let cli = ([10, 0, 0, 1], 40000);
    let mut t = T::new(NetConfig::default());
    t.ip(&pkt4(cli, srv, 100, 0, SYN, b""));
    t.ip(&pkt4(cli, srv, 100, 0, SYN, b"")); // no answer yet: sent again
    t.ip(&pkt4(srv, cli, 900, 101, SYN | ACK, b""));
    t.ip(&pkt4(srv, cli, 900, 101, SYN | ACK, b"")); // its ACK was lost
    assert_eq!(rtx(&t, 0), 2);
    t.ip(&pkt4(cli, srv, 101, 901, ACK, b"abc"));
    t.ip(&pkt4(cli, srv, 104, 901, ACK | FIN, b""));
    t.ip(&pkt4(cli, srv, 104, 901, ACK | FIN, b"")); // the FIN again, before the server's
    assert_eq!(rtx(&t, 0), 3);
    t.ip(&pkt4(srv, cli, 901, 105, ACK | FIN, b""));
    t.finish();
    assert_eq!(rtx(&t, 0), 3);
    assert_eq!(t.net.stats().retransmissions, 3);
    assert_eq!(t.rec.bytes(0, Dir::C2S), b"abc");
    assert_eq!(t.rec.closes(), vec![(0, CloseReason::Fin)]);

    // A FIN that first came with data, then again alone, is one retransmission, as is the copy
    // with its data.
    let mut t = T::new(NetConfig::default());
    t.ip(&pkt4(cli, srv, 100, 0, SYN, b""));
    t.ip(&pkt4(cli, srv, 101, 0, ACK | FIN, b"xy"));
    assert_eq!(rtx(&t, 0), 0);
    t.ip(&pkt4(cli, srv, 101, 0, ACK | FIN, b"xy"));
    t.ip(&pkt4(cli, srv, 103, 0, ACK | FIN, b""));
    assert_eq!(rtx(&t, 0), 2);

    // A new SYN (another ISN) on the tuple is a new connection, not a retransmission.
    let mut t = T::new(NetConfig::default());
    t.ip(&pkt4(cli, srv, 100, 0, SYN, b""));
    t.ip(&pkt4(cli, srv, 5000, 0, SYN, b""));
    t.finish();
    assert_eq!((rtx(&t, 0), rtx(&t, 1)), (0, 0));
    assert_eq!(t.net.stats().tcp_connections, 2);
}

#[test]
fn midstream_role_guess() {
    let mut t = T::new(NetConfig::default());
    // Well-known port wins over the lower port.
    let srv = ([1, 1, 1, 1], 6717);
    let cli = ([2, 2, 2, 2], 1000);
    t.ip(&pkt4(srv, cli, 123_456, 99, ACK, b"xy"));
    t.ip(&pkt4(srv, cli, 123_458, 99, ACK, b"z"));
    // Neither well-known: lower port.
    t.ip(&pkt4(([3, 3, 3, 3], 40001), ([4, 4, 4, 4], 3000), 5, 5, ACK, b"q"));
    // Same port: destination of the first packet.
    t.ip(&pkt4(([5, 5, 5, 5], 7000), ([6, 6, 6, 6], 7000), 5, 5, ACK, b"r"));
    t.finish();
    let o = t.rec.opens();
    assert_eq!((o[0].server, o[0].role, o[0].midstream), (sock(srv), RoleSource::Guess, true));
    assert_eq!(o[1].server, sock(([4, 4, 4, 4], 3000)));
    assert_eq!(o[2].server, sock(([6, 6, 6, 6], 7000)));
    assert_eq!(t.rec.bytes(0, Dir::S2C), b"xyz");
    assert!(t.rec.evs.contains(&Ev::Data(0, Dir::S2C, 2, b"z".to_vec())));
    assert_eq!(t.net.stats().midstream_connections, 3);
}

#[test]
fn forced_server_port() {
    let mut t = T::new(NetConfig { server_ports: vec![40000], ..NetConfig::default() });
    t.seg(true, 1, 0, SYN, b"");
    t.finish();
    let m = &t.rec.opens()[0];
    assert_eq!((m.server, m.role), (sock(C), RoleSource::Forced));
}

#[test]
fn sequence_wraparound() {
    let mut t = T::new(NetConfig::default());
    let isn = u32::MAX - 5;
    t.seg(true, isn, 0, SYN, b"");
    t.seg(true, isn.wrapping_add(1), 0, ACK, b"0123");
    t.seg(true, isn.wrapping_add(9), 0, ACK, b"89ab");
    t.seg(true, isn.wrapping_add(5), 0, ACK, b"4567");
    t.finish();
    assert_eq!(t.rec.bytes(0, Dir::C2S), b"0123456789ab");
    assert!(t.rec.gaps(0, Dir::C2S).is_empty());
}

#[test]
fn stream_past_4gib() {
    // Acknowledged-but-unseen data moves the stream forward 1 GiB at a time.
    let mut t = T::new(NetConfig::default());
    let isn = 77u32;
    t.seg(true, isn, 0, SYN, b"");
    t.seg(false, 9000, isn + 1, SYN | ACK, b"");
    let step = (1u32 << 30) - 1;
    let mut ack = isn + 1;
    for _ in 0..5 {
        ack = ack.wrapping_add(step);
        t.seg(false, 9001, ack, ACK, b"");
    }
    t.seg(true, ack, 9001, ACK, b"late");
    t.finish();
    let total = 5 * u64::from(step);
    assert!(total > 1 << 32);
    assert!(t.rec.evs.contains(&Ev::Data(0, Dir::C2S, total, b"late".to_vec())), "{:?}", t.rec.evs);
    let gaps: u64 = t.rec.gaps(0, Dir::C2S).iter().map(|g| g.1).sum();
    assert_eq!(gaps, total);
}

#[test]
fn retransmission_overlap_out_of_order() {
    let mut t = T::new(NetConfig::default());
    t.seg(true, 100, 0, SYN, b"");
    t.seg(true, 101, 0, ACK, b"AAAAAAAAAA");
    t.seg(true, 121, 0, ACK, b"CCCCCCCCCC");
    t.seg(true, 121, 0, ACK, b"xxxxxxxxxx"); // retransmitted out-of-order copy: first wins
    t.seg(true, 101, 0, ACK, b"AAAAAAAAAA"); // retransmission
    t.seg(true, 106, 0, ACK, b"aaaaaBBBBBBBBBBccccc"); // overlaps both sides of the hole
                                                       // Ahead of a hole is not out of order (nothing so far was late)...
    assert!(!t.rec.notes(0).contains(&TcpNote::OutOfOrder));
    t.seg(true, 133, 0, ACK, b"EE");
    assert!(!t.rec.notes(0).contains(&TcpNote::OutOfOrder));
    // ...the segment that fills it after the data beyond it is.
    t.seg(true, 131, 0, ACK, b"DD");
    t.finish();
    assert_eq!(t.rec.bytes(0, Dir::C2S), b"AAAAAAAAAABBBBBBBBBBCCCCCCCCCCDDEE");
    let notes = t.rec.notes(0);
    assert!(notes.contains(&TcpNote::OutOfOrder));
    assert!(notes.contains(&TcpNote::Retransmission));
    assert!(notes.contains(&TcpNote::Overlap));
    let st = t.net.stats();
    assert!(st.retransmissions >= 2 && st.overlaps >= 1 && st.out_of_order >= 1);
    assert_eq!(t.net.buffered_bytes(), 0);
}

/// Wireshark's keep-alive: no SYN/FIN/RST, zero or one byte, one before the next expected
/// sequence number. Neither a retransmission nor stream data; its ACK still counts.
#[test]
fn keep_alives_are_not_retransmissions_or_data() {
    let count = |t: &T, n: TcpNote| t.rec.notes(0).iter().filter(|x| **x == n).count();
    let mut t = T::new(NetConfig::default());
    t.seg(true, 100, 0, SYN, b"");
    t.seg(false, 500, 101, SYN | ACK, b"");
    t.seg(true, 101, 501, ACK, b"hello");
    t.seg(false, 501, 106, ACK, b"world");
    // Windows/BSD: one garbage byte at snd.nxt - 1; Linux: no byte there.
    t.seg(true, 105, 506, ACK, b"\0");
    t.seg(true, 105, 506, ACK, b"");
    t.seg(false, 505, 106, ACK, b"\0");
    assert_eq!(count(&t, TcpNote::KeepAlive), 3);
    assert_eq!(t.net.stats().keep_alives, 3);
    // One byte at the next expected sequence number is data, not a probe.
    t.seg(true, 106, 506, ACK, b"!");
    // A FIN (with or without a byte) is never a keep-alive: this one resends '!' with the FIN.
    t.seg(true, 106, 506, ACK | FIN, b"!");
    assert_eq!(count(&t, TcpNote::KeepAlive), 3);
    assert_eq!(count(&t, TcpNote::Retransmission), 1);
    t.finish();
    assert_eq!(t.rec.bytes(0, Dir::C2S), b"hello!");
    assert_eq!(t.rec.bytes(0, Dir::S2C), b"world");
    assert_eq!(t.net.stats().retransmissions, 1);
    assert!(t.rec.gaps(0, Dir::C2S).is_empty() && t.rec.gaps(0, Dir::S2C).is_empty());

    // With a hole, the next expected sequence number is after the buffered data: a byte there
    // is a probe (the buffered byte stands), the byte filling the hole is data.
    let mut t = T::new(NetConfig::default());
    t.seg(true, 100, 0, SYN, b"");
    t.seg(true, 101, 0, ACK, b"ab");
    t.seg(true, 104, 0, ACK, b"de");
    t.seg(true, 105, 0, ACK, b"X");
    assert_eq!(count(&t, TcpNote::KeepAlive), 1);
    t.seg(true, 103, 0, ACK, b"c");
    t.finish();
    assert_eq!(t.rec.bytes(0, Dir::C2S), b"abcde");
    assert_eq!(count(&t, TcpNote::Retransmission), 0);
    assert_eq!(t.net.stats().keep_alives, 1);
}

#[test]
fn ack_beyond_hole_is_gap() {
    let mut t = T::new(NetConfig::default());
    t.seg(true, 100, 0, SYN, b"");
    t.seg(false, 500, 101, SYN | ACK, b"");
    t.seg(true, 101, 501, ACK, b"0123456789");
    t.seg(true, 121, 501, ACK, b"klmnopqrst");
    assert!(t.rec.gaps(0, Dir::C2S).is_empty());
    t.seg(false, 501, 131, ACK, b"");
    // The capture may have seen the ACK before reordered data: wait a few packets.
    assert!(t.rec.gaps(0, Dir::C2S).is_empty());
    t.seg(true, 131, 501, ACK, b"uv");
    for _ in 0..3 {
        t.seg(false, 501, 133, ACK, b"");
    }
    assert_eq!(t.rec.gaps(0, Dir::C2S), vec![(10, 10)]);
    t.finish();
    let s = t.rec.stream(0, Dir::C2S);
    assert_eq!(s.len(), 32);
    assert_eq!(t.rec.bytes(0, Dir::C2S), b"0123456789klmnopqrstuv");
    assert_eq!(t.net.stats().gap_bytes, 10);
}

#[test]
fn bytes_past_a_gap_are_those_of_the_packet_that_brought_them() {
    let mut t = T::new(NetConfig::default());
    t.seg(true, 100, 0, SYN, b""); // 1
    t.seg(false, 500, 101, SYN | ACK, b""); // 2
    t.seg(true, 101, 501, ACK, b"0123456789"); // 3
    t.seg(true, 121, 501, ACK, b"klmnopqrst"); // 4: past a hole of 10 bytes
    t.seg(false, 501, 131, ACK, b""); // 5: acknowledges the hole
    for _ in 0..5 {
        t.seg(false, 501, 131, ACK, b""); // 6..=10: the hole is given up on one of these
    }
    assert_eq!(t.rec.gaps(0, Dir::C2S), vec![(10, 10)]);
    // A hole filled late: what it makes contiguous is part of the packet that filled it.
    t.seg(true, 133, 501, ACK, b"wx"); // 11
    t.seg(true, 131, 501, ACK, b"uv"); // 12
    t.finish();
    assert_eq!(t.rec.bytes(0, Dir::C2S), b"0123456789klmnopqrstuvwx");
    let pkts: Vec<(u64, u64)> = t
        .rec
        .data_pkts
        .iter()
        .filter(|d| d.0 == 0 && d.1 == Dir::C2S)
        .map(|d| (d.2, d.3))
        .collect();
    // "klmnopqrst" came with packet 4, not with the packet on which its hole was given up.
    assert_eq!(pkts, vec![(0, 3), (20, 4), (30, 12), (32, 12)]);
}

#[test]
fn buffer_limit_gap() {
    // Room for two held segments of 10 bytes, not three.
    let cap = 2 * held_cost(10) + 5;
    let mut t = T::new(NetConfig { max_flow_buffer: cap, ..NetConfig::default() });
    t.seg(true, 0, 0, SYN, b"");
    t.seg(true, 1, 0, ACK, b"0123456789");
    for i in 0..3u32 {
        t.seg(true, 21 + 10 * i, 0, ACK, b"ABCDEFGHIJ");
    }
    assert_eq!(t.rec.gaps(0, Dir::C2S), vec![(10, 10)]);
    assert!(t.rec.notes(0).contains(&TcpNote::BufferLimit));
    t.finish();
    assert_eq!(t.rec.stream(0, Dir::C2S).len(), 50);
}

#[test]
fn total_buffer_limit_gap() {
    let mut t = T::new(NetConfig { max_total_buffer: held_cost(10) + 5, ..NetConfig::default() });
    t.seg(true, 0, 0, SYN, b"");
    t.seg(true, 11, 0, ACK, b"0123456789");
    assert!(t.rec.gaps(0, Dir::C2S).is_empty());
    t.seg(true, 31, 0, ACK, b"0123456789");
    // Only the first hole is given up: that brings the total under the cap.
    assert_eq!(t.rec.gaps(0, Dir::C2S), vec![(0, 10)]);
    assert_eq!(t.net.buffered_bytes(), held_cost(10));
    t.finish();
    assert_eq!(t.rec.gaps(0, Dir::C2S), vec![(0, 10), (20, 10)]);
    assert_eq!(t.net.buffered_bytes(), 0);
}

/// The caps bound what held segments cost, not only their bytes: a flood of one-byte segments
/// past a hole holds as many as the cap pays for, the rest given up as gaps.
#[test]
fn buffer_caps_charge_each_segment_its_cost() {
    // 8100 bytes: what 100 one-byte segments cost (81 bytes each, see `held_cost`).
    let mut t = T::new(NetConfig { max_flow_buffer: 8100, ..NetConfig::default() });
    t.seg(true, 0, 0, SYN, b"");
    // Every other byte from offset 1: offset 0 never comes, nothing is ever contiguous.
    for i in 0..1000u32 {
        t.seg(true, 2 + 2 * i, 0, ACK, b"x");
        assert!(t.net.buffered_bytes() <= 8100);
    }
    assert_eq!(t.net.stats().buffer_limits, 900);
    assert_eq!(t.net.buffered_bytes(), 8100);
    // Each overflow gave up the first hole and released the byte after it.
    assert_eq!(t.net.stats().gap_bytes, 900);
    assert_eq!(t.rec.bytes(0, Dir::C2S).len(), 900);
    t.finish();
    assert_eq!(t.net.buffered_bytes(), 0);
    assert_eq!(t.rec.bytes(0, Dir::C2S).len(), 1000);

    // Over all flows: four flows of 50 one-byte segments under a total cap of 120 segments.
    let mut t = T::new(NetConfig { max_total_buffer: 120 * 81, ..NetConfig::default() });
    for f in 0..4u8 {
        t.ip(&pkt4(([10, 0, 1, f], 40000), S, 0, 0, SYN, b""));
    }
    for i in 0..50u32 {
        for f in 0..4u8 {
            t.ip(&pkt4(([10, 0, 1, f], 40000), S, 2 + 2 * i, 0, ACK, b"x"));
            assert!(t.net.buffered_bytes() <= 120 * 81);
        }
    }
    assert_eq!(t.net.stats().buffer_limits, 80);
    assert_eq!(t.net.buffered_bytes(), 120 * 81);
    t.finish();
    // A full-size segment: its bytes, a quarter for the allocator's rounding, 80 of map.
    assert_eq!((held_cost(1), held_cost(1448)), (81, 1890));
}

#[test]
fn snaplen_cut_becomes_gap() {
    let mut t = T::new(NetConfig::default());
    t.seg(true, 0, 0, SYN, b"");
    let full = pkt4(C, S, 1, 0, ACK, b"0123456789");
    // Record cut by the snaplen: IP total length and orig_len both say 10 payload bytes.
    t.raw(228, &full[..full.len() - 6], full.len() as u32);
    t.seg(true, 11, 0, ACK, b"next");
    // IP total length larger than the record although orig_len agrees with it.
    let full2 = pkt4(C, S, 15, 0, ACK, b"abcdef");
    let cut = &full2[..full2.len() - 2];
    t.raw(228, cut, cut.len() as u32);
    t.seg(true, 21, 0, ACK, b"!");
    t.finish();
    assert_eq!(t.rec.gaps(0, Dir::C2S), vec![(4, 6), (18, 2)]);
    assert_eq!(t.rec.bytes(0, Dir::C2S), b"0123nextabcd!");
    assert!(t.rec.notes(0).contains(&TcpNote::Snaplen));
}

/// A record the snaplen did not cut, whose IP total length claims more than it holds (a
/// flipped bit): its bytes are the segment's, and the data after it follows on without a gap.
#[test]
fn ip_length_past_an_uncut_record_is_no_gap() {
    let mut t = T::new(NetConfig::default());
    t.seg(true, 0, 0, SYN, b"");
    let mut p = pkt4(C, S, 1, 0, ACK, b"0123456789");
    // Total length 50 with bit 12 flipped: 4146 bytes claimed.
    p[2] ^= 0x10;
    t.raw(228, &p, p.len() as u32);
    t.seg(true, 11, 0, ACK, b"next");
    t.finish();
    assert_eq!(t.rec.gaps(0, Dir::C2S), vec![]);
    assert_eq!(t.rec.bytes(0, Dir::C2S), b"0123456789next");
    assert!(!t.rec.notes(0).contains(&TcpNote::Snaplen));
}

/// A receiver's zero window, and the sender's one-byte probes of it (Windows, BSD): the probe's
/// byte is stream data; probes sent again and the data resuming at the probe's byte when the
/// window opens are neither retransmissions nor overlaps.
#[test]
fn zero_windows_and_their_probes() {
    let count = |t: &T, n: TcpNote| t.rec.notes(0).iter().filter(|x| **x == n).count();
    // The receiver drops the probes: the sender resumes at the probe's byte.
    let mut t = T::new(NetConfig::default());
    t.seg(true, 100, 0, SYN, b"");
    t.seg(false, 500, 101, SYN | ACK, b"");
    t.seg(true, 101, 501, ACK, b"req");
    t.seg(false, 501, 104, ACK, b"hello");
    t.seg_win(true, 104, 506, ACK, 0, b"");
    t.seg(false, 506, 104, ACK, b"!");
    t.seg_win(true, 104, 506, ACK, 0, b"");
    t.seg(false, 506, 104, ACK, b"!");
    t.seg_win(true, 104, 506, ACK, 4096, b"");
    t.seg(false, 506, 104, ACK, b"!world");
    t.seg(true, 104, 512, ACK | FIN, b"");
    t.seg(false, 512, 105, ACK | FIN, b"");
    t.finish();
    assert_eq!(t.rec.bytes(0, Dir::S2C), b"hello!world");
    assert_eq!(count(&t, TcpNote::ZeroWindow), 2);
    assert_eq!(count(&t, TcpNote::ZeroWindowProbe), 2);
    for n in [TcpNote::Overlap, TcpNote::Retransmission, TcpNote::KeepAlive] {
        assert_eq!(count(&t, n), 0, "{n:?}");
    }
    let st = t.net.stats();
    assert_eq!((st.zero_windows, st.zero_window_probes, st.overlaps), (2, 2, 0));

    // The receiver keeps the probe's byte: the sender goes on after it. A byte sent while the
    // window is open is plain data, and a FIN with a zero window is not flagged.
    let mut t = T::new(NetConfig::default());
    t.seg(true, 100, 0, SYN, b"");
    t.seg(false, 500, 101, SYN | ACK, b"");
    t.seg(false, 501, 101, ACK, b"hello");
    t.seg_win(true, 101, 506, ACK, 0, b"");
    t.seg(false, 506, 101, ACK, b"!");
    t.seg_win(true, 101, 507, ACK, 100, b"");
    t.seg(false, 507, 101, ACK, b"w");
    t.seg(false, 508, 101, ACK, b"orld");
    t.seg_win(true, 101, 512, ACK | FIN, 0, b"");
    t.finish();
    assert_eq!(t.rec.bytes(0, Dir::S2C), b"hello!world");
    assert_eq!(count(&t, TcpNote::ZeroWindow), 1);
    assert_eq!(count(&t, TcpNote::ZeroWindowProbe), 1);
    assert_eq!(count(&t, TcpNote::Overlap), 0);
}

/// An RST with a sequence number outside what its sender could have sent (spoofed, or from an
/// earlier connection) is noted and ends nothing; one within it does.
#[test]
fn rst_outside_the_sequence_space_is_ignored() {
    let mut t = T::new(NetConfig::default());
    t.seg(true, 100, 0, SYN, b"");
    t.seg(false, 500, 101, SYN | ACK, b"");
    t.seg(true, 101, 501, ACK, b"abc");
    t.seg(false, 501, 104, ACK, b"xyz");
    t.seg(false, 504u32.wrapping_add(1 << 31), 104, RST | ACK, b"");
    t.seg(true, 104u32.wrapping_sub(1 << 28), 0, RST, b"");
    t.seg(true, 104, 504, ACK, b"def");
    assert!(t.rec.closes().is_empty());
    // Data the capture missed lies between the last byte seen and a genuine RST.
    t.seg(false, 504 + 3000, 107, RST | ACK, b"");
    t.seg(true, 107, 504, ACK, b"late");
    t.finish();
    assert_eq!(t.rec.bytes(0, Dir::C2S), b"abcdef");
    assert_eq!(t.rec.closes(), vec![(0, CloseReason::Rst)]);
    let st = t.net.stats();
    assert_eq!((st.rst, st.rst_ignored, st.late_data_packets), (1, 2, 1));
    let ignored = t.rec.notes(0).iter().filter(|n| **n == TcpNote::RstIgnored).count();
    assert_eq!(ignored, 2);
}

/// An RST whose sender then sends bytes past the RST's sequence number was not real (a bare
/// ACK with its RST bit flipped in a corrupt capture): what follows is a new connection picked
/// up mid-stream, not late data of the closed one. Bytes up to the RST are still late.
#[test]
fn rst_contradicted_by_its_sender() {
    let mut t = T::new(NetConfig::default());
    t.seg(true, 100, 0, SYN, b"");
    t.seg(false, 500, 101, SYN | ACK, b"");
    t.seg(true, 101, 501, ACK, b"ask");
    t.seg(false, 501, 104, ACK, b"ok");
    t.seg(false, 503, 104, ACK | RST, b"");
    assert_eq!(t.rec.closes(), vec![(0, CloseReason::Rst)]);
    // The client's data in flight, and a copy of what the server had sent: late.
    t.seg(true, 104, 503, ACK, b"more");
    t.seg(false, 501, 108, ACK, b"ok");
    assert_eq!(t.rec.opens().len(), 1);
    // The server goes on from where its RST was: the RST was not real.
    t.seg(false, 503, 108, ACK, b"answer");
    t.seg(true, 108, 509, ACK, b"next");
    t.seg(false, 509, 112, ACK, b"reply");
    t.finish();
    let o = t.rec.opens();
    assert_eq!(o.len(), 2);
    assert_eq!((o[1].client, o[1].midstream), (sock(C), true));
    assert_eq!(t.rec.bytes(0, Dir::S2C), b"ok");
    assert_eq!(t.rec.bytes(1, Dir::S2C), b"answerreply");
    assert_eq!(t.rec.bytes(1, Dir::C2S), b"next");
    let st = *t.net.stats();
    assert_eq!((st.rst, st.late_data_packets, st.late_data_bytes, st.late_packets), (1, 1, 4, 1));
    assert_eq!(t.rec.closes(), vec![(0, CloseReason::Rst), (1, CloseReason::CaptureEnd)]);
}

/// A SYN bit on a segment inside the stream its sender already sent (flipped in a corrupt
/// capture: a SYN takes the sequence number before the first byte) starts no new connection
/// and does not move the segment's data one byte on; it is noted as a bad sequence number.
#[test]
fn syn_bit_inside_the_stream_is_corrupt() {
    let mut t = T::new(NetConfig::default());
    t.seg(true, 100, 0, SYN, b"");
    t.seg(false, 500, 101, SYN | ACK, b"");
    t.seg(true, 101, 501, ACK, b"ask");
    t.seg(false, 501, 104, SYN | ACK, b"answer");
    t.seg(true, 104, 507, SYN | ACK, b"");
    t.seg(true, 104, 0, SYN, b"more");
    t.seg(false, 507, 108, ACK, b"reply");
    // A SYN sent again is still one.
    t.seg(true, 100, 0, SYN, b"");
    t.finish();
    assert_eq!(t.rec.opens().len(), 1);
    assert_eq!(t.rec.bytes(0, Dir::C2S), b"askmore");
    assert_eq!(t.rec.bytes(0, Dir::S2C), b"answerreply");
    let bad = t.rec.notes(0).iter().filter(|n| **n == TcpNote::BadSequence).count();
    assert_eq!(bad, 3);
    assert_eq!(t.rec.notes(0).iter().filter(|n| **n == TcpNote::Retransmission).count(), 1);
    let st = *t.net.stats();
    assert_eq!((st.tcp_connections, st.reused_tuples, st.gap_bytes), (1, 0, 0));
    assert_eq!(t.rec.closes(), vec![(0, CloseReason::CaptureEnd)]);
}

#[test]
fn rst_and_data_after_fin() {
    let mut t = T::new(NetConfig::default());
    t.seg(true, 0, 0, SYN, b"");
    t.seg(true, 1, 0, ACK | FIN, b"ab");
    // Past the FIN's own sequence number (3).
    t.seg(true, 4, 0, ACK, b"after-fin");
    t.seg(false, 50, 4, RST | ACK, b"");
    t.seg(false, 50, 4, RST | ACK, b"");
    t.finish();
    assert_eq!(t.rec.bytes(0, Dir::C2S), b"ab");
    assert!(t.rec.notes(0).contains(&TcpNote::BadSequence));
    assert_eq!(t.rec.closes(), vec![(0, CloseReason::Rst)]);
    assert_eq!(t.net.stats().rst, 1);
}

/// Data from a FIN's sender starting where the FIN was (the sequence number the FIN took) shows
/// the FIN was not real (its bit flipped in a corrupt capture): the end of the stream is
/// forgotten and the data kept, noted as a bad sequence number. A FIN that data does not
/// contradict still ends the connection.
#[test]
fn fin_contradicted_by_data_where_it_was() {
    let mut t = T::new(NetConfig::default());
    t.seg(true, 100, 0, SYN, b"");
    t.seg(false, 500, 101, SYN | ACK, b"");
    t.seg(true, 101, 501, ACK | FIN, b"ask");
    t.seg(false, 501, 104, ACK, b"answer");
    t.seg(true, 104, 507, ACK, b"more");
    t.seg(false, 507, 108, ACK | FIN, b"");
    t.seg(false, 507, 108, ACK, b"reply");
    assert!(t.rec.closes().is_empty());
    t.seg(true, 108, 512, ACK | FIN, b"");
    t.seg(false, 512, 109, ACK | FIN, b"");
    assert_eq!(t.rec.closes(), vec![(0, CloseReason::Fin)]);
    t.finish();
    assert_eq!(t.rec.bytes(0, Dir::C2S), b"askmore");
    assert_eq!(t.rec.bytes(0, Dir::S2C), b"answerreply");
    let bad = t.rec.notes(0).iter().filter(|n| **n == TcpNote::BadSequence).count();
    assert_eq!(bad, 2);
    assert_eq!(t.net.stats().gap_bytes, 0);
}

#[test]
fn fin_with_hole_flushes_on_ack() {
    let mut t = T::new(NetConfig::default());
    t.seg(true, 0, 0, SYN, b"");
    t.seg(false, 0, 1, SYN | ACK, b"");
    t.seg(true, 6, 1, ACK | FIN, b"world");
    t.seg(false, 1, 1, ACK | FIN, b"");
    t.seg(true, 11, 2, ACK, b"");
    assert!(t.rec.closes().is_empty());
    for _ in 0..5 {
        t.seg(false, 2, 12, ACK, b"");
    }
    assert_eq!(t.rec.gaps(0, Dir::C2S), vec![(0, 5)]);
    assert_eq!(t.rec.closes(), vec![(0, CloseReason::Fin)]);
    t.finish();
}

#[test]
fn ack_seen_before_reordered_data_is_no_gap() {
    let mut t = T::new(NetConfig::default());
    t.seg(true, 100, 0, SYN, b"");
    t.seg(false, 500, 101, SYN | ACK, b"");
    t.seg(true, 101, 501, ACK, b"0123456789");
    // The server's ACK for bytes 10..20 reaches the capture before those bytes do.
    t.seg(false, 501, 121, ACK, b"");
    t.seg(true, 111, 501, ACK, b"abcdefghij");
    t.seg(true, 121, 501, ACK, b"KL");
    t.finish();
    assert!(t.rec.gaps(0, Dir::C2S).is_empty());
    assert_eq!(t.rec.bytes(0, Dir::C2S), b"0123456789abcdefghijKL");
    assert!(!t.rec.notes(0).contains(&TcpNote::Retransmission));
}

/// An ACK far ahead of the data, contradicted by the peer's next ACK (one bit flipped in the
/// capture): no gap, and the data that follows is the stream's, not a retransmission.
#[test]
fn ack_contradicted_by_the_next_is_no_gap() {
    let mut t = T::new(NetConfig::default());
    t.seg(true, 100, 0, SYN, b"");
    t.seg(false, 500, 101, SYN | ACK, b"");
    t.seg(true, 101, 501, ACK, b"0123456789");
    t.seg(false, 501, 111 ^ (1 << 24), ACK, b"");
    t.seg(true, 111, 501, ACK, b"abcdefghij");
    t.seg(false, 501, 121, ACK, b"");
    for i in 0..6u32 {
        t.seg(true, 121 + 2 * i, 501, ACK, b"KL");
        t.seg(false, 501, 123 + 2 * i, ACK, b"");
    }
    t.finish();
    assert!(t.rec.gaps(0, Dir::C2S).is_empty(), "{:?}", t.rec.gaps(0, Dir::C2S));
    assert_eq!(t.rec.bytes(0, Dir::C2S), b"0123456789abcdefghijKLKLKLKLKLKL");
    assert!(!t.rec.notes(0).contains(&TcpNote::Retransmission));
    assert_eq!(t.net.stats().gap_bytes, 0);
}

/// A data segment whose sequence number is far ahead of everything else (a flipped bit) is
/// a bad sequence number, not data after a hole: nothing is reported lost up to it, and the
/// segments after it are not out of order. Data after a hole near the rest is kept.
#[test]
fn segment_far_past_the_rest_is_a_bad_sequence() {
    let mut t = T::new(NetConfig::default());
    t.seg(true, 100, 0, SYN, b"");
    t.seg(false, 500, 101, SYN | ACK, b"");
    t.seg(true, 101, 501, ACK, b"0123456789");
    t.seg(true, 111 ^ (1 << 23), 501, ACK, b"abcdefghij");
    t.seg(true, 121, 501, ACK, b"KL");
    t.seg(true, 123, 501, ACK, b"MN");
    t.seg(false, 501, 111, ACK, b"");
    // The server sends past a hole of 100 000 bytes, nothing acknowledges them.
    t.seg(true, 125, 501, ACK, b"");
    t.seg(false, 501 + 100_000, 125, ACK, b"far");
    t.finish();
    let notes = t.rec.notes(0);
    assert_eq!(notes.iter().filter(|n| **n == TcpNote::BadSequence).count(), 1, "{notes:?}");
    assert!(!notes.contains(&TcpNote::OutOfOrder), "{notes:?}");
    assert_eq!(t.rec.gaps(0, Dir::C2S), vec![(10, 10)]);
    assert_eq!(t.rec.bytes(0, Dir::C2S), b"0123456789KLMN");
    assert_eq!(t.rec.gaps(0, Dir::S2C), vec![(0, 100_000)]);
    assert_eq!(t.rec.bytes(0, Dir::S2C), b"far");
    assert_eq!(t.net.stats().gap_bytes, 100_010);
}

#[test]
fn reused_tuple_new_syn() {
    let mut t = T::new(NetConfig::default());
    t.seg(true, 0, 0, SYN, b"");
    t.seg(true, 1, 0, ACK | FIN, b"");
    t.seg(false, 0, 2, ACK | FIN, b"");
    assert_eq!(t.rec.closes(), vec![(0, CloseReason::Fin)]);
    // Closed 4-tuple, new SYN: connection 1.
    t.seg(true, 1000, 0, SYN, b"");
    t.seg(true, 1000, 0, SYN, b""); // retransmitted SYN: same connection
    t.seg(true, 1001, 0, ACK, b"one");
    // Open 4-tuple, SYN with another ISN: old closed, connection 2.
    t.seg(true, 9000, 0, SYN, b"");
    t.seg(true, 9001, 0, ACK, b"two");
    t.finish();
    let ids: Vec<u32> = t.rec.opens().iter().map(|m| m.id.0).collect();
    assert_eq!(ids, vec![0, 1, 2]);
    assert_eq!(
        t.rec.closes(),
        vec![(0, CloseReason::Fin), (1, CloseReason::Evicted), (2, CloseReason::CaptureEnd)]
    );
    assert_eq!(t.rec.bytes(1, Dir::C2S), b"one");
    assert_eq!(t.rec.bytes(2, Dir::C2S), b"two");
    assert_eq!(t.net.stats().reused_tuples, 1);
}

/// A SYN+ACK on an open 4-tuple that is not this connection's (another ISN, or acknowledging
/// another SYN) starts a new one, whose roles it tells; one sent again does not.
#[test]
fn reused_tuple_new_synack() {
    let mut t = T::new(NetConfig::default());
    t.seg(true, 100, 0, SYN, b"");
    t.seg(false, 500, 101, SYN | ACK, b"");
    t.seg(false, 500, 101, SYN | ACK, b""); // sent again: the same connection
    t.seg(true, 101, 501, ACK, b"one");
    // Only the server's side of the next connection was captured.
    t.seg(false, 7000, 9001, SYN | ACK, b"");
    t.seg(false, 7001, 9001, ACK, b"two");
    // A connection picked up mid-stream, then a SYN+ACK acknowledging an unseen SYN.
    t.seg(false, 7004, 9001, ACK | RST, b"");
    t.seg(true, 20_000, 30_000, ACK, b"three");
    t.seg(false, 40_000, 60_001, SYN | ACK, b"");
    t.seg(false, 40_001, 60_001, ACK, b"four");
    t.finish();
    let ids: Vec<u32> = t.rec.opens().iter().map(|m| m.id.0).collect();
    assert_eq!(ids, vec![0, 1, 2, 3]);
    assert_eq!(t.rec.bytes(0, Dir::C2S), b"one");
    assert_eq!(t.rec.bytes(1, Dir::S2C), b"two");
    assert_eq!(t.rec.bytes(2, Dir::C2S), b"three");
    assert_eq!(t.rec.bytes(3, Dir::S2C), b"four");
    assert_eq!(t.rec.opens()[3].client, sock(C));
    assert_eq!(t.rec.opens()[3].role, RoleSource::Syn);
    assert_eq!(t.net.stats().reused_tuples, 2);
    assert_eq!(t.net.stats().retransmissions, 1);
}

/// After FIN or RST, a segment with bytes that starts within the closed connection's stream
/// is its own, late: counted, bytes past the end apart. Bytes elsewhere are a new connection on
/// the 4-tuple whose handshake was not captured, with the old connection's roles.
#[test]
fn segments_after_close_are_late_or_a_new_connection() {
    // Neither port well-known, the client's the lower: only the old SYN told the roles.
    let cli = ([10, 0, 0, 1], 1500);
    let srv = ([10, 0, 0, 2], 30000);
    let mut t = T::new(NetConfig::default());
    t.ip(&pkt4(cli, srv, 100, 0, SYN, b""));
    t.ip(&pkt4(srv, cli, 500, 101, SYN | ACK, b""));
    t.ip(&pkt4(cli, srv, 101, 501, ACK, b"ask"));
    t.ip(&pkt4(srv, cli, 501, 104, ACK, b"answer"));
    t.ip(&pkt4(cli, srv, 104, 507, RST | ACK, b""));
    assert_eq!(t.rec.closes(), vec![(0, CloseReason::Rst)]);
    // The server's data in flight when the client reset: two segments past the end.
    t.ip(&pkt4(srv, cli, 507, 104, ACK, b"more"));
    t.ip(&pkt4(srv, cli, 511, 104, ACK, b"tail"));
    // A retransmission of what the connection carried, and bare ACKs: nothing new.
    t.ip(&pkt4(srv, cli, 501, 104, ACK, b"answer"));
    t.ip(&pkt4(srv, cli, 515, 104, ACK, b""));
    t.ip(&pkt4(cli, srv, 104, 515, ACK, b""));
    let st = *t.net.stats();
    assert_eq!((st.late_data_packets, st.late_data_bytes, st.late_packets), (2, 8, 3));
    assert_eq!(t.rec.opens().len(), 1);
    // The client again from the same port, its handshake not captured: another ISN.
    t.ip(&pkt4(cli, srv, 90_000, 7_000_000, ACK, b"new"));
    t.ip(&pkt4(srv, cli, 7_000_000, 90_003, ACK, b"reply"));
    t.finish();
    let o = t.rec.opens();
    assert_eq!(o.len(), 2);
    assert_eq!((o[1].client, o[1].server), (sock(cli), sock(srv)));
    assert_eq!((o[1].role, o[1].midstream), (RoleSource::Guess, true));
    assert_eq!(t.rec.bytes(0, Dir::S2C), b"answer");
    assert_eq!(t.rec.bytes(1, Dir::C2S), b"new");
    assert_eq!(t.rec.bytes(1, Dir::S2C), b"reply");
    assert_eq!(t.rec.closes(), vec![(0, CloseReason::Rst), (1, CloseReason::CaptureEnd)]);
    assert_eq!(t.net.stats().late_data_packets, 2);
    assert_eq!(t.net.stats().midstream_connections, 1);

    // After both FINs: data where the old stream ended is late; past it, a new connection.
    let mut t = T::new(NetConfig::default());
    t.seg(true, 100, 0, SYN, b"");
    t.seg(false, 500, 101, SYN | ACK, b"");
    t.seg(true, 101, 501, ACK | FIN, b"bye");
    t.seg(false, 501, 105, ACK | FIN, b"");
    t.seg(true, 105, 502, ACK, b"");
    assert_eq!(t.rec.closes(), vec![(0, CloseReason::Fin)]);
    t.seg(false, 502, 105, ACK, b"late");
    t.seg(false, 900_000, 105, ACK, b"fresh");
    t.finish();
    let st = *t.net.stats();
    assert_eq!((st.late_data_packets, st.late_data_bytes, st.late_packets), (1, 4, 1));
    assert_eq!(t.rec.opens().len(), 2);
    assert_eq!(t.rec.bytes(1, Dir::S2C), b"fresh");
}

#[test]
fn idle_timeout_closes() {
    let mut t = T::new(NetConfig { idle_timeout_ns: 10_000_000_000, ..NetConfig::default() });
    t.seg(true, 0, 0, SYN, b"");
    let other = ([9, 9, 9, 9], 1234);
    for i in 0..30 {
        t.ts += 1_000_000_000;
        t.ip(&pkt4(other, S, i, 0, ACK, b""));
        if i == 8 {
            assert!(t.rec.closes().is_empty());
        }
    }
    assert_eq!(t.rec.closes(), vec![(0, CloseReason::Idle)]);
    assert_eq!(t.net.stats().idle_closed, 1);
    assert_eq!(t.net.tracked_connections(), 1);
    t.finish();
    assert_eq!(t.rec.closes(), vec![(0, CloseReason::Idle), (1, CloseReason::CaptureEnd)]);
}

/// A connection closed as idle that comes back where its sequence numbers stopped goes on as a
/// new connection that names it; one that comes back elsewhere, or with a SYN, or a connection
/// that never carried data, names none.
#[test]
fn an_idle_connection_that_comes_back_resumes_it() {
    const SEC: i64 = 1_000_000_000;
    let cfg = NetConfig { idle_timeout_ns: 10 * SEC, ..NetConfig::default() };
    let other = ([9, 9, 9, 9], 1234);
    // Idles connection `C`–`S` out: packets of another flow move the clock past the timeout.
    let idle_out = |t: &mut T, secs: i64| {
        for i in 0..secs {
            t.ts += SEC;
            t.ip(&pkt4(other, S, i as u32, 0, ACK, b""));
        }
    };
    let opened =
        |t: &T| t.rec.opens().into_iter().filter(|m| m.client == sock(C)).collect::<Vec<_>>();
    let data = |t: &mut T| {
        t.seg(true, 100, 0, SYN, b"");
        t.seg(false, 500, 101, SYN | ACK, b"");
        t.seg(true, 101, 501, ACK, b"hello");
        t.seg(false, 501, 106, ACK, b"world!");
    };

    // The client goes on where it stopped: resumed, after the idle time.
    let mut t = T::new(cfg.clone());
    data(&mut t);
    let last = t.ts;
    idle_out(&mut t, 30);
    assert_eq!(t.rec.closes().first(), Some(&(0, CloseReason::Idle)));
    t.seg(true, 106, 507, ACK, b"again");
    let c = opened(&t);
    assert_eq!(c.len(), 2);
    let r = c[1].resumes.unwrap_or_else(|| panic!("no resumption: {:?}", c[1]));
    assert_eq!((r.conn, r.idle_ns), (c[0].id, t.ts - last));
    assert_eq!(c[1].client, sock(C), "the roles of the connection it goes on with");
    assert_eq!(t.rec.bytes(c[1].id.0, Dir::C2S), b"again");
    // So does a server that acknowledges where the client stopped, from a keep-alive's place.
    let mut t = T::new(cfg.clone());
    data(&mut t);
    idle_out(&mut t, 30);
    t.seg(false, 506, 106, ACK, b"");
    assert!(opened(&t)[1].resumes.is_some());

    // Sequence numbers elsewhere (a new connection whose handshake was missed), a SYN: none.
    for (flags, seq) in [(ACK, 90_000_000), (SYN, 106)] {
        let mut t = T::new(cfg.clone());
        data(&mut t);
        idle_out(&mut t, 30);
        t.seg(true, seq, 507, flags, b"x");
        let c = opened(&t);
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].resumes, None, "flags {flags:#x} seq {seq}");
    }
    // A connection that carried no data leaves nothing to resume (a SYN flood keeps no entry).
    let mut t = T::new(cfg.clone());
    t.seg(true, 100, 0, SYN, b"");
    idle_out(&mut t, 30);
    t.seg(true, 101, 0, ACK, b"data");
    assert_eq!(opened(&t)[1].resumes, None);
    // Nor one closed by FIN.
    let mut t = T::new(cfg);
    data(&mut t);
    t.seg(true, 106, 507, FIN | ACK, b"");
    t.seg(false, 507, 107, FIN | ACK, b"");
    idle_out(&mut t, 30);
    t.seg(true, 107, 508, ACK, b"late");
    assert!(opened(&t).iter().all(|m| m.resumes.is_none()));
    t.finish();
}

#[test]
fn max_flows_evicts_idlest() {
    let mut t = T::new(NetConfig { max_flows: 2, ..NetConfig::default() });
    for i in 0..3u8 {
        t.ts += 2_000_000_000;
        t.ip(&pkt4(([1, 0, 0, i], 5000), S, 0, 0, SYN, b""));
    }
    assert_eq!(t.rec.closes(), vec![(0, CloseReason::Evicted)]);
    assert_eq!(t.net.stats().evicted, 1);
    t.finish();
    assert_eq!(t.rec.closes().len(), 3);
}

#[test]
fn finish_closes_in_id_order_and_flushes() {
    let mut t = T::new(NetConfig::default());
    for i in 0..20u8 {
        t.ip(&pkt4(([1, 0, 0, i], 5000), S, 0, 0, SYN, b""));
        t.ip(&pkt4(([1, 0, 0, i], 5000), S, 5, 0, ACK, b"tail"));
    }
    t.finish();
    let ids: Vec<u32> = t.rec.closes().iter().map(|c| c.0).collect();
    assert_eq!(ids, (0..20).collect::<Vec<_>>());
    assert_eq!(t.rec.gaps(3, Dir::C2S), vec![(0, 4)]);
    assert_eq!(t.rec.bytes(3, Dir::C2S), b"tail");
}

fn fragments(l4: &[u8], size: usize, id: u16) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < l4.len() {
        let end = (off + size).min(l4.len());
        let more = if end < l4.len() { 0x2000 } else { 0 };
        out.push(ipv4(C.0, S.0, 6, more | (off / 8) as u16, id, &l4[off..end]));
        off = end;
    }
    out
}

#[test]
fn ipv4_fragments_in_order_reversed_overlapping_timeout() {
    let payload: Vec<u8> = (0..100u8).collect();
    let l4 = tcp_hdr(C.1, S.1, 1, 0, ACK, &payload);
    let mut t = T::new(NetConfig::default());
    // In order.
    for f in fragments(&l4, 48, 1) {
        t.ip(&f);
    }
    assert_eq!(t.rec.bytes(0, Dir::C2S), payload);
    // Reversed (next datagram's data continues the stream), with a duplicate.
    let l4b = tcp_hdr(C.1, S.1, 101, 0, ACK, &payload);
    let mut fr = fragments(&l4b, 32, 2);
    fr.reverse();
    let dup = fr[1].clone();
    fr.insert(2, dup);
    for f in &fr {
        t.ip(f);
    }
    assert_eq!(t.rec.bytes(0, Dir::C2S).len(), 200);
    assert_eq!(t.net.stats().ipv4_reassembled, 2);
    // Overlapping with different content: dropped.
    let l4c = tcp_hdr(C.1, S.1, 201, 0, ACK, &payload);
    let fc = fragments(&l4c, 64, 3);
    let mut evil = fc[0].clone();
    let n = evil.len();
    evil[n - 1] ^= 0xff;
    t.ip(&fc[0]);
    t.ip(&evil);
    t.ip(&fc[1]);
    assert_eq!(t.net.stats().ipv4_reassembled, 2);
    assert!(t.net.stats().ipv4_fragments_dropped >= 1);
    // Bogus offsets and a lone first fragment that times out.
    t.ip(&ipv4(C.0, S.0, 6, 0x2000 | 8191, 4, &[0; 16]));
    t.ip(&fragments(&l4c, 64, 5)[0]);
    // Datagram 5 and what is left of datagram 3 after its poisoned start was dropped.
    assert_eq!(t.net.defrag_pending(), 2);
    t.ts += 31_000_000_000;
    t.ip(&pkt4(C, S, 9999, 0, ACK, b""));
    assert_eq!(t.net.defrag_pending(), 0);
    t.finish();
}

/// An IPv6 packet from `C` to `S` (as IPv6 addresses) with extension headers `ext` (each
/// naming the next) before `payload`, whose protocol the last names.
fn ipv6_pkt(first: u8, ext: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&((ext.len() + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[first, 64]);
    p.extend_from_slice(&[0xfd; 16]);
    p.extend_from_slice(&[0xfe; 16]);
    p.extend_from_slice(ext);
    p.extend_from_slice(payload);
    p
}

/// IPv6 fragments of `l4` (protocol `proto`) in pieces of `size` bytes, each behind a
/// hop-by-hop options header and the fragment header.
fn fragments6(l4: &[u8], proto: u8, size: usize, id: u32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < l4.len() {
        let end = (off + size).min(l4.len());
        let more = u16::from(end < l4.len());
        let mut ext = vec![44, 0, 1, 4, 0, 0, 0, 0];
        ext.extend_from_slice(&[proto, 0]);
        ext.extend_from_slice(&((off as u16) | more).to_be_bytes());
        ext.extend_from_slice(&id.to_be_bytes());
        out.push(ipv6_pkt(0, &ext, &l4[off..end]));
        off = end;
    }
    out
}

/// IPv6 datagrams are reassembled as IPv4 ones are: in any order, duplicates harmless,
/// conflicting overlaps dropping the datagram; a tunnel inside one is opened.
#[test]
fn ipv6_fragments_are_reassembled() {
    let payload: Vec<u8> = (0..150u8).collect();
    let v6 = |b: u8| {
        let mut a = [b; 16];
        a[15] = b;
        a
    };
    let tcp6 = |seq: u32| tcp_hdr(C.1, S.1, seq, 0, ACK, &payload);
    let mut t = T::new(NetConfig::default());
    let mut fr = fragments6(&tcp6(1), 6, 64, 1);
    fr.reverse();
    let dup = fr[0].clone();
    fr.push(dup);
    for f in &fr {
        t.raw(229, f, f.len() as u32);
    }
    assert_eq!(t.rec.bytes(0, Dir::C2S), payload);
    let o = &t.rec.opens()[0];
    assert_eq!(o.client, std::net::SocketAddr::from((v6(0xfd), C.1)));
    assert_eq!(o.server, std::net::SocketAddr::from((v6(0xfe), S.1)));
    // Overlap with other bytes: the datagram is dropped.
    let fc = fragments6(&tcp6(151), 6, 64, 2);
    let mut evil = fc[1].clone();
    let n = evil.len();
    evil[n - 1] ^= 0xff;
    for f in [&fc[0], &fc[1], &evil, &fc[2]] {
        t.raw(229, f, f.len() as u32);
    }
    // A GRE tunnel carrying IPv4, fragmented on an IPv6 underlay.
    let inner = pkt4(C, S, 151, 0, ACK, &payload);
    for f in fragments6(&gre_hdr(0, 0x0800, 0, &inner), 47, 80, 3) {
        t.raw(229, &f, f.len() as u32);
    }
    let s = *t.net.stats();
    assert_eq!((s.ipv6_fragments, s.ipv6_reassembled, s.ipv6_fragments_dropped), (11, 2, 1));
    assert_eq!(s.ipv4_fragments + s.ipv4_fragments_dropped, 0);
    assert_eq!(t.rec.bytes(1, Dir::C2S), payload);
    t.finish();
}

#[test]
fn fragment_budget() {
    let mut t = T::new(NetConfig { max_fragment_buffer: 200, ..NetConfig::default() });
    let l4 = tcp_hdr(C.1, S.1, 1, 0, ACK, &[7u8; 300]);
    for id in 0..10 {
        t.ip(&fragments(&l4, 96, id)[0]);
    }
    assert!(t.net.defrag_pending() <= 2);
    assert!(t.net.stats().ipv4_fragments_dropped >= 8);
}

fn eth_frame(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn gre_hdr(flags: u16, proto: u16, extra_words: usize, body: &[u8]) -> Vec<u8> {
    let mut g = flags.to_be_bytes().to_vec();
    g.extend_from_slice(&proto.to_be_bytes());
    g.extend(std::iter::repeat_n(0u8, 4 * extra_words));
    g.extend_from_slice(body);
    g
}

fn udp_to(port: u16, body: &[u8]) -> Vec<u8> {
    let mut u = 40000u16.to_be_bytes().to_vec();
    u.extend_from_slice(&port.to_be_bytes());
    u.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(body);
    u
}

const OUTER_A: [u8; 4] = [10, 9, 0, 1];
const OUTER_B: [u8; 4] = [10, 9, 0, 2];

/// The same IPv4 TCP segment inside every tunnel that is opened, as (link type, record).
fn tunnelled(ip: &[u8]) -> Vec<(&'static str, u32, Vec<u8>)> {
    let frame = eth_frame(0x0800, ip);
    let outer =
        |proto: u8, l4: &[u8]| eth_frame(0x0800, &ipv4(OUTER_A, OUTER_B, proto, 0x4000, 9, l4));
    let mut v6 = vec![0x60, 0, 0, 0];
    v6.extend_from_slice(&(ip.len() as u16).to_be_bytes());
    v6.extend_from_slice(&[4, 64]);
    v6.extend_from_slice(&[0xfd; 32]);
    v6.extend_from_slice(ip);
    let mut vxlan = vec![0x08, 0, 0, 0, 0, 0, 7, 0];
    vxlan.extend_from_slice(&frame);
    let mut geneve = vec![1, 0, 0x65, 0x58, 0, 0, 9, 0, 1, 1, 0x80, 0];
    geneve.extend_from_slice(&frame);
    let mut geneve_ip = vec![0, 0, 0x08, 0x00, 0, 0, 9, 0];
    geneve_ip.extend_from_slice(ip);
    let mut erspan2 = vec![0x10, 0, 0, 5, 0, 0, 0, 0];
    erspan2.extend_from_slice(&frame);
    let mut erspan3 = vec![0x20, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 1];
    erspan3.extend_from_slice(&[0xee; 8]);
    erspan3.extend_from_slice(&frame);
    let mut erspan3_plain = vec![0x20, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0];
    erspan3_plain.extend_from_slice(&frame);
    let mut mpls = vec![0, 0x3e, 0x90, 64, 0, 0x7d, 0x21, 64];
    mpls.extend_from_slice(ip);
    let mut pppoe = vec![0x11, 0, 0x12, 0x34];
    pppoe.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
    pppoe.extend_from_slice(&[0x00, 0x21]);
    pppoe.extend_from_slice(ip);
    let mut ppp = vec![0xff, 0x03, 0x00, 0x21];
    ppp.extend_from_slice(ip);
    let mut ppp_bare = vec![0x00, 0x21];
    ppp_bare.extend_from_slice(ip);
    let mut chdlc = vec![0x0f, 0, 0x08, 0x00];
    chdlc.extend_from_slice(ip);
    let mut pktap = vec![0u8; 108];
    pktap[0] = 108;
    pktap[4] = 1;
    pktap[8] = 1;
    pktap.extend_from_slice(&frame);
    let mut pktap_raw = vec![0u8; 12];
    pktap_raw[0] = 12;
    pktap_raw[4] = 1;
    pktap_raw[8] = 12;
    pktap_raw.extend_from_slice(ip);
    // NFLOG: family, version, group; a packet header, a 5-byte prefix padded to 8, then the
    // packet. Lengths and types in the capturing host's order.
    let nflog = |le: bool| {
        let tlv = |len: u16, kind: u16, value: &[u8]| {
            let mut v = Vec::new();
            let (l, k) = if le {
                (len.to_le_bytes(), kind.to_le_bytes())
            } else {
                (len.to_be_bytes(), kind.to_be_bytes())
            };
            v.extend_from_slice(&l);
            v.extend_from_slice(&k);
            v.extend_from_slice(value);
            v.resize(v.len().next_multiple_of(4), 0);
            v
        };
        let mut n = vec![2, 0, 0, 5];
        n.extend(tlv(8, 1, &[0x08, 0x00, 3, 0]));
        n.extend(tlv(5, 10, &[0]));
        n.extend(tlv(4 + ip.len() as u16, 9, ip));
        n
    };
    vec![
        ("nflog", 239, nflog(true)),
        ("nflog, big-endian host", 239, nflog(false)),
        ("ipip", 1, outer(4, ip)),
        ("ipv4 in ipv6", 1, eth_frame(0x86dd, &v6)),
        ("gre", 1, outer(47, &gre_hdr(0, 0x0800, 0, ip))),
        ("gre csum key seq", 1, outer(47, &gre_hdr(0xb000, 0x0800, 3, ip))),
        ("gretap", 1, outer(47, &gre_hdr(0x2000, 0x6558, 1, &frame))),
        ("erspan i", 1, outer(47, &gre_hdr(0, 0x88be, 0, &frame))),
        ("erspan ii", 1, outer(47, &gre_hdr(0x1000, 0x88be, 1, &erspan2))),
        ("erspan iii", 1, outer(47, &gre_hdr(0x1000, 0x22eb, 1, &erspan3))),
        ("erspan iii, no subheader", 1, outer(47, &gre_hdr(0x1000, 0x22eb, 1, &erspan3_plain))),
        ("vxlan", 1, outer(17, &udp_to(4789, &vxlan))),
        ("vxlan, linux port", 1, outer(17, &udp_to(8472, &vxlan))),
        ("geneve", 1, outer(17, &udp_to(6081, &geneve))),
        ("geneve, ip", 1, outer(17, &udp_to(6081, &geneve_ip))),
        ("mpls", 1, eth_frame(0x8847, &mpls)),
        ("pppoe", 1, eth_frame(0x8864, &pppoe)),
        ("ppp", 9, ppp),
        ("ppp, no address and control", 9, ppp_bare),
        ("chdlc", 104, chdlc),
        ("pktap", 258, pktap),
        ("pktap, raw ip", 258, pktap_raw),
        (
            "vxlan in gre",
            1,
            outer(
                47,
                &gre_hdr(0, 0x0800, 0, &ipv4(OUTER_A, OUTER_B, 17, 0, 3, &udp_to(4789, &vxlan))),
            ),
        ),
    ]
}

/// A TCP segment inside each tunnel reaches the reassembler as the inner connection's.
#[test]
fn tunnels_are_opened_to_the_inner_connection() {
    let ip = pkt4(C, S, 1, 0, ACK, b"payload");
    for (name, link, data) in tunnelled(&ip) {
        assert!(link_supported(LinkType(link)), "{name}");
        let mut t = T::new(NetConfig::default());
        t.raw(link, &data, data.len() as u32);
        t.finish();
        assert_eq!(t.rec.bytes(0, Dir::C2S), b"payload", "{name}");
        let o = &t.rec.opens()[0];
        assert_eq!((o.client, o.server), (sock(C), sock(S)), "{name}");
        // Cut anywhere, a record is counted as something and never panics.
        for cut in 0..data.len() {
            let mut t = T::new(NetConfig::default());
            t.raw(link, &data[..cut], data.len() as u32);
            let st = t.net.stats();
            let counted = st.tcp_packets
                + st.malformed
                + st.non_tcp
                + st.non_ip
                + st.ipv4_fragments
                + st.unsupported_link;
            assert_eq!(counted, 1, "{name} cut at {cut}: {st:?}");
        }
    }
}

/// What is not a tunnel we open is counted as what it is; crafted headers are malformed.
#[test]
fn tunnel_headers_that_are_not_followed() {
    let ip = pkt4(C, S, 1, 0, ACK, b"payload");
    let frame = eth_frame(0x0800, &ip);
    let outer = |proto: u8, l4: &[u8]| ipv4(OUTER_A, OUTER_B, proto, 0x4000, 9, l4);
    let mut vxlan_no_i = vec![0, 0, 0, 0, 0, 0, 7, 0];
    vxlan_no_i.extend_from_slice(&frame);
    let mut geneve_v1 = vec![0x40, 0, 0x65, 0x58, 0, 0, 9, 0];
    geneve_v1.extend_from_slice(&frame);
    let non_tcp: Vec<(&str, Vec<u8>)> = vec![
        ("gre version 1 (pptp)", outer(47, &gre_hdr(0x0001, 0x880b, 0, &ip))),
        ("gre source route", outer(47, &gre_hdr(0x4000, 0x0800, 0, &ip))),
        ("gre of another protocol", outer(47, &gre_hdr(0, 0x0806, 0, &ip))),
        ("vxlan without its I flag", outer(17, &udp_to(4789, &vxlan_no_i))),
        ("geneve version 1", outer(17, &udp_to(6081, &geneve_v1))),
        ("udp to another port", outer(17, &udp_to(53, &frame))),
    ];
    for (name, data) in non_tcp {
        let mut t = T::new(NetConfig::default());
        t.ip(&data);
        assert_eq!(t.net.stats().non_tcp, 1, "{name}");
    }
    let malformed: Vec<(u32, &str, Vec<u8>)> = vec![
        (228, "gre header cut", outer(47, &[0x30, 0])),
        (228, "gre options past the end", outer(47, &gre_hdr(0xb000, 0x0800, 0, &[]))),
        (
            228,
            "geneve options past the end",
            outer(17, &udp_to(6081, &[0x3f, 0, 0x65, 0x58, 0, 0, 0, 0])),
        ),
        (1, "mpls without a bottom label", eth_frame(0x8847, &[0u8; 40])),
        (1, "pppoe of another version", eth_frame(0x8864, &[0x21, 0, 0, 0, 0, 2, 0, 0x21])),
        (258, "pktap longer than the record", vec![0xff, 0xff, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]),
        (258, "pktap in pktap", vec![12, 0, 0, 0, 1, 0, 0, 0, 2, 1, 0, 0]),
    ];
    for (link, name, data) in malformed {
        let mut t = T::new(NetConfig::default());
        t.raw(link, &data, data.len() as u32);
        assert_eq!(t.net.stats().malformed, 1, "{name}");
    }
}

/// Tunnels nested past the limit are not opened: a crafted packet costs a bounded walk.
#[test]
fn nested_tunnels_stop_at_the_limit() {
    let mut ip = pkt4(C, S, 1, 0, ACK, b"payload");
    for depth in 1..=parse::MAX_ENCAP + 2 {
        ip = ipv4(OUTER_A, OUTER_B, 4, 0x4000, depth as u16, &ip);
        let mut t = T::new(NetConfig::default());
        t.ip(&ip);
        let st = t.net.stats();
        if depth <= parse::MAX_ENCAP {
            assert_eq!(st.tcp_packets, 1, "depth {depth}");
        } else {
            assert_eq!((st.tcp_packets, st.non_tcp), (0, 1), "depth {depth}");
        }
    }
}

/// A tunnel packet fragmented on the underlay is reassembled, then opened; the inner
/// connection's fragments inside it are reassembled in turn.
#[test]
fn fragmented_tunnel_packets_are_reassembled_then_opened() {
    let payload: Vec<u8> = (0..200u8).collect();
    let mut t = T::new(NetConfig::default());
    // The outer datagram with `id`, carrying `l4` in GRE, in fragments of 64 bytes.
    let underlay = |t: &mut T, id: u16, l4: &[u8]| {
        let gre = gre_hdr(0, 0x0800, 0, l4);
        let mut off = 0;
        while off < gre.len() {
            let end = (off + 64).min(gre.len());
            let more = if end < gre.len() { 0x2000 } else { 0 };
            t.ip(&ipv4(OUTER_A, OUTER_B, 47, more | (off / 8) as u16, id, &gre[off..end]));
            off = end;
        }
    };
    underlay(&mut t, 77, &pkt4(C, S, 1, 0, ACK, &payload));
    assert_eq!(t.rec.bytes(0, Dir::C2S), payload);
    assert_eq!(t.net.stats().ipv4_reassembled, 1);
    // The inner packet's own fragments, each in a GRE packet fragmented on the underlay.
    let l4 = tcp_hdr(C.1, S.1, 201, 0, ACK, &payload);
    for (i, f) in fragments(&l4, 96, 5).iter().enumerate() {
        underlay(&mut t, 78 + i as u16, f);
    }
    assert_eq!(t.rec.bytes(0, Dir::C2S).len(), 400);
    // Underlay datagrams: the first, two of the three carrying inner fragments (the last is
    // small enough to go whole), then the inner datagram.
    assert_eq!(t.net.stats().ipv4_reassembled, 1 + 2 + 1);
    t.finish();
}

/// The same IPv4 TCP segment behind every supported link header.
#[test]
fn link_types() {
    let ip = pkt4(C, S, 1, 0, ACK, b"payload");
    let mut eth = vec![0u8; 12];
    eth.extend_from_slice(&[0x08, 0x00]);
    eth.extend_from_slice(&ip);
    let mut vlan = vec![0u8; 12];
    vlan.extend_from_slice(&[0x81, 0x00, 0, 5, 0x08, 0x00]);
    vlan.extend_from_slice(&ip);
    let mut qinq = vec![0u8; 12];
    qinq.extend_from_slice(&[0x88, 0xa8, 0, 5, 0x81, 0x00, 0, 6, 0x08, 0x00]);
    qinq.extend_from_slice(&ip);
    let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip);
    let mut sll2 = vec![0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0];
    sll2.extend_from_slice(&ip);
    let mut null_le = vec![2, 0, 0, 0];
    null_le.extend_from_slice(&ip);
    let mut null_be = vec![0, 0, 0, 2];
    null_be.extend_from_slice(&ip);
    let mut lo = vec![0, 0, 0, 2];
    lo.extend_from_slice(&ip);
    let mut opts = ip.clone();
    // IPv4 with 4 bytes of options (NOPs).
    opts[0] = 0x46;
    opts.splice(20..20, [1, 1, 1, 1]);
    let tl = (opts.len() as u16).to_be_bytes();
    opts[2..4].copy_from_slice(&tl);
    let cases: Vec<(u32, Vec<u8>)> = vec![
        (1, eth),
        (1, vlan),
        (1, qinq),
        (113, sll),
        (276, sll2),
        (0, null_le),
        (0, null_be),
        (108, lo),
        (101, ip.clone()),
        (228, ip.clone()),
        (12, ip.clone()),
        (14, ip),
        (228, opts),
    ];
    for (link, data) in cases {
        assert!(link_supported(LinkType(link)));
        let mut t = T::new(NetConfig::default());
        t.raw(link, &data, data.len() as u32);
        t.finish();
        assert_eq!(t.rec.bytes(0, Dir::C2S), b"payload", "link {link}");
    }
    assert!(!link_supported(LinkType(147)));
}

#[test]
fn ipv6_with_extension_header() {
    use etherparse::PacketBuilder;
    let mut buf = Vec::new();
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv6([1; 16], [2; 16], 64)
        .tcp(40000, 6717, 10, 1000)
        .ack(5);
    assert!(b.write(&mut buf, b"v6data").is_ok());
    let mut t = T::new(NetConfig::default());
    t.raw(1, &buf, buf.len() as u32);
    // Insert a hop-by-hop header (8 bytes) in front of TCP.
    let mut ip6 = buf[14..].to_vec();
    let next = ip6[6];
    ip6[6] = 0;
    ip6.splice(40..40, [next, 0, 1, 4, 0, 0, 0, 0]);
    let pl = ((ip6.len() - 40) as u16).to_be_bytes();
    ip6[4..6].copy_from_slice(&pl);
    // Same connection, next bytes.
    let seqpos = 40 + 8 + 4;
    ip6[seqpos..seqpos + 4].copy_from_slice(&16u32.to_be_bytes());
    t.raw(229, &ip6, ip6.len() as u32);
    t.finish();
    assert_eq!(t.rec.bytes(0, Dir::C2S), b"v6datav6data");
    assert_eq!(
        t.rec.opens()[0].server,
        "[202:202:202:202:202:202:202:202]:6717".parse().unwrap_or(sock(S))
    );
}

#[test]
fn non_tcp_non_ip_malformed_counted() {
    let mut t = T::new(NetConfig::default());
    let udp = ipv4(C.0, S.0, 17, 0, 0, &[0; 8]);
    t.ip(&udp);
    let mut arp = vec![0u8; 12];
    arp.extend_from_slice(&[0x08, 0x06, 0, 0]);
    t.raw(1, &arp, arp.len() as u32);
    t.raw(1, &[0u8; 5], 5);
    t.raw(4242, &[0u8; 5], 5);
    let s = *t.net.stats();
    assert_eq!((s.non_tcp, s.non_ip, s.malformed, s.unsupported_link), (1, 1, 1, 1));
    assert_eq!(s.packets, 4);
}

#[test]
fn every_prefix_parses() {
    let ip = pkt4(C, S, 1, 0, ACK, b"payload");
    let mut qinq = vec![0u8; 12];
    qinq.extend_from_slice(&[0x88, 0xa8, 0, 5, 0x81, 0x00, 0, 6, 0x08, 0x00]);
    qinq.extend_from_slice(&ip);
    let mut t = T::new(NetConfig::default());
    for len in 0..=qinq.len() {
        t.raw(1, &qinq[..len], qinq.len() as u32);
    }
    for link in [0, 101, 108, 113, 228, 229, 276] {
        for len in 0..=ip.len() {
            t.raw(link, &ip[..len], ip.len() as u32);
        }
    }
    t.finish();
}

/// Segmentation of `len` bytes into pieces of 1..=max bytes.
fn split(len: usize, cuts: &[usize]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < len {
        let n = cuts.get(i % cuts.len().max(1)).copied().unwrap_or(7).max(1);
        let end = (at + n).min(len);
        out.push((at, end));
        at = end;
        i += 1;
    }
    out
}

proptest! {
    #[test]
    fn reorder_dup_overlap_reassembles_exactly(
        stream in proptest::collection::vec(any::<u8>(), 1..3000),
        cuts in proptest::collection::vec(1usize..400, 1..20),
        extra in proptest::collection::vec((0usize..3000, 1usize..500), 0..10),
        order in proptest::collection::vec(any::<u32>(), 0..64),
        isn in any::<u32>(),
    ) {
        let mut segs = split(stream.len(), &cuts);
        for (a, n) in extra {
            let a = a % stream.len();
            segs.push((a, (a + n).min(stream.len())));
        }
        let dup: Vec<_> = segs.iter().step_by(3).copied().collect();
        segs.extend(dup);
        // Deterministic shuffle from the random keys.
        let mut keyed: Vec<(u32, (usize, usize))> = segs
            .into_iter()
            .enumerate()
            .map(|(i, s)| (order.get(i % order.len().max(1)).copied().unwrap_or(0) ^ (i as u32).wrapping_mul(2_654_435_761), s))
            .collect();
        keyed.sort_by_key(|k| k.0);
        let mut t = T::new(NetConfig::default());
        t.seg(true, isn, 0, SYN, b"");
        for (_, (a, b)) in keyed {
            t.seg(true, isn.wrapping_add(1 + a as u32), 0, ACK, &stream[a..b]);
        }
        t.finish();
        prop_assert_eq!(t.rec.bytes(0, Dir::C2S), stream);
        prop_assert!(t.rec.gaps(0, Dir::C2S).is_empty());
        prop_assert_eq!(t.net.buffered_bytes(), 0);
    }

    #[test]
    fn drops_become_exact_gaps(
        stream in proptest::collection::vec(any::<u8>(), 1..3000),
        cuts in proptest::collection::vec(1usize..400, 1..20),
        drop in proptest::collection::vec(any::<bool>(), 1..30),
        order in proptest::collection::vec(any::<u32>(), 0..64),
        isn in any::<u32>(),
    ) {
        let segs = split(stream.len(), &cuts);
        let mut kept = Vec::new();
        let mut expect: Vec<Option<u8>> = stream.iter().map(|&b| Some(b)).collect();
        let mut dropped: Vec<(u64, u64)> = Vec::new();
        for (i, &(a, b)) in segs.iter().enumerate() {
            if drop.get(i % drop.len()).copied().unwrap_or(false) {
                for e in &mut expect[a..b] {
                    *e = None;
                }
                match dropped.last_mut() {
                    Some(d) if d.0 + d.1 == a as u64 => d.1 += (b - a) as u64,
                    _ => dropped.push((a as u64, (b - a) as u64)),
                }
            } else {
                kept.push((a, b));
                if i % 4 == 0 {
                    kept.push((a, b));
                }
            }
        }
        let mut keyed: Vec<(u32, (usize, usize))> = kept
            .into_iter()
            .enumerate()
            .map(|(i, s)| (order.get(i % order.len().max(1)).copied().unwrap_or(0) ^ (i as u32).wrapping_mul(2_654_435_761), s))
            .collect();
        keyed.sort_by_key(|k| k.0);
        let mut t = T::new(NetConfig::default());
        t.seg(true, isn, 0, SYN, b"");
        for (_, (a, b)) in keyed {
            t.seg(true, isn.wrapping_add(1 + a as u32), 0, ACK, &stream[a..b]);
        }
        // The receiver acknowledges everything.
        t.seg(false, 0, isn.wrapping_add(1 + stream.len() as u32), ACK, b"");
        t.finish();
        prop_assert_eq!(t.rec.stream(0, Dir::C2S), expect);
        prop_assert_eq!(t.rec.gaps(0, Dir::C2S), dropped);
    }

    #[test]
    fn random_bytes_never_panic(
        link in prop::sample::select(vec![0u32, 1, 12, 14, 101, 108, 113, 228, 229, 276, 9999]),
        data in proptest::collection::vec(any::<u8>(), 0..200),
        orig_extra in 0u32..100,
    ) {
        let mut t = T::new(NetConfig { max_flows: 4, ..NetConfig::default() });
        t.raw(link, &data, data.len() as u32 + orig_extra);
        // Also as the IP payload of every link type's valid header.
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x08, 0x00]);
        eth.extend_from_slice(&data);
        t.raw(1, &eth, eth.len() as u32);
        let mut ip = pkt4(C, S, 1, 0, ACK, b"");
        ip.truncate(20);
        ip.extend_from_slice(&data);
        t.raw(228, &ip, ip.len() as u32 + orig_extra);
        t.finish();
    }
}

/// Throughput of parsing and in-order reassembly (run with optimisations:
/// `CARGO_PROFILE_DEV_OPT_LEVEL=3 cargo test --lib net::tests::speed -- --ignored --nocapture`).
#[test]
#[ignore]
fn speed() {
    struct Count(u64);
    impl StreamSink for Count {
        fn event(&mut self, _pkt: PktCtx, ev: StreamEvent<'_>) {
            if let StreamEvent::Data { data, .. } = ev {
                self.0 += data.len() as u64;
            }
        }
    }
    let payload = [0x5au8; 300];
    let flows = 64u16;
    let per_flow = 4000u32;
    let mut frames = Vec::new();
    for i in 0..per_flow {
        for f in 0..flows {
            let mut eth = vec![0u8; 12];
            eth.extend_from_slice(&[0x08, 0x00]);
            let cli = ([10, 0, (f >> 8) as u8, f as u8], 40000 + f);
            eth.extend_from_slice(&pkt4(cli, S, 1 + i * 300, 7, ACK, &payload));
            frames.push(eth);
        }
    }
    let mut net = Net::new(NetConfig::default());
    let mut sink = Count(0);
    let start = std::time::Instant::now();
    for (n, fr) in frames.iter().enumerate() {
        let p = Packet {
            index: n as u64 + 1,
            ts: Timestamp(n as i64 * 1000),
            link: LinkType::ETHERNET,
            orig_len: fr.len() as u32,
            data: fr,
            file_offset: 0,
        };
        net.packet(&p, &mut sink);
    }
    net.finish(&mut sink);
    let secs = start.elapsed().as_secs_f64();
    let bytes: usize = frames.iter().map(Vec::len).sum();
    println!(
        "{} packets, {:.1} MB of frames in {:.3} s: {:.2} GB/s, {:.0} ns/packet",
        frames.len(),
        bytes as f64 / 1e6,
        secs,
        bytes as f64 / secs / 1e9,
        secs * 1e9 / frames.len() as f64
    );
    assert_eq!(sink.0, u64::from(per_flow) * 300 * u64::from(flows));
}

#[test]
fn forced_server_sending_syn_retransmits() {
    let mut t = T::new(NetConfig { server_ports: vec![40000], ..NetConfig::default() });
    t.seg(true, 5, 0, SYN, b"");
    t.seg(true, 5, 0, SYN, b"");
    t.seg(true, 6, 0, ACK, b"x");
    t.finish();
    assert_eq!(t.rec.opens().len(), 1);
    assert_eq!(t.rec.bytes(0, Dir::S2C), b"x");
}

proptest! {
    /// Arbitrary flag/sequence soup on a few 4-tuples, with tiny limits: the event order
    /// invariant holds and nothing panics.
    #[test]
    fn random_tcp_keeps_event_order(
        segs in proptest::collection::vec(
            (0u8..3, any::<bool>(), 0u32..64, 0u32..64, any::<u8>(), 0usize..40, 0i64..3_000_000_000),
            1..200,
        ),
        base in any::<u32>(),
    ) {
        let mut t = T::new(NetConfig {
            max_flows: 2,
            // Room for a few held segments per flow, fewer than all flows want.
            max_flow_buffer: 3 * held_cost(10),
            max_total_buffer: 5 * held_cost(10),
            idle_timeout_ns: 5_000_000_000,
            ..NetConfig::default()
        });
        let payload = [0xabu8; 40];
        for (flow, from_client, seq, ack, flags, len, dt) in segs {
            t.ts += dt;
            let cli = ([10, 0, 0, flow], 40000);
            let (src, dst) = if from_client { (cli, S) } else { (S, cli) };
            let flags = flags & (FIN | SYN | RST | ACK);
            let seq = base.wrapping_add(seq * 7);
            let ack = base.wrapping_add(ack * 7);
            t.ip(&pkt4(src, dst, seq, ack, flags, &payload[..len]));
        }
        t.finish();
        prop_assert_eq!(t.net.buffered_bytes(), 0);
        // Every opened connection is closed exactly once (check_order ran in finish()).
        prop_assert_eq!(t.rec.opens().len(), t.rec.closes().len());
    }
}

#[test]
fn odd_inputs_are_counted() {
    let mut t = T::new(NetConfig::default());
    // Nine VLAN tags: deeper than any real network.
    let mut deep = vec![0u8; 12];
    for _ in 0..9 {
        deep.extend_from_slice(&[0x81, 0x00, 0, 1]);
    }
    deep.extend_from_slice(&[0x08, 0x00]);
    deep.extend_from_slice(&pkt4(C, S, 1, 0, ACK, b"x"));
    t.raw(1, &deep, deep.len() as u32);
    // TCP header cut by the snaplen.
    let p = pkt4(C, S, 1, 0, ACK, b"x");
    t.raw(228, &p[..30], p.len() as u32);
    // A fragment cut by the snaplen cannot be reassembled.
    let l4 = tcp_hdr(C.1, S.1, 1, 0, ACK, &[1u8; 64]);
    let f = &fragments(&l4, 48, 9)[0];
    t.raw(228, &f[..f.len() - 4], f.len() as u32);
    // The first IPv6 fragment (header 44) of a datagram whose rest never comes.
    let mut v6 = vec![0x60, 0, 0, 0, 0, 16, 44, 64];
    v6.extend_from_slice(&[1; 16]);
    v6.extend_from_slice(&[2; 16]);
    v6.extend_from_slice(&[6, 0, 0, 1, 0, 0, 0, 7]);
    v6.extend_from_slice(&[0; 8]);
    t.raw(229, &v6, v6.len() as u32);
    t.finish();
    let s = *t.net.stats();
    assert_eq!(s.malformed, 2);
    assert_eq!(s.ipv4_fragments_dropped, 1);
    assert_eq!(s.ipv6_fragments, 1);
    assert_eq!(s.tcp_connections, 0);
}

/// An IPv4 header (and what follows it) with the fields the quick path looks at drawn from
/// the values around its edges.
fn ipv4_packet() -> impl Strategy<Value = (Vec<u8>, usize)> {
    (
        prop_oneof![Just(0x45u8), Just(0x46), Just(0x44), Just(0x65), any::<u8>()],
        prop_oneof![Just(0u8), Just(0x40), Just(0x20), Just(0x80), Just(0x01), any::<u8>()],
        prop_oneof![Just(0u8), Just(1), any::<u8>()],
        prop_oneof![Just(6u8), Just(17), any::<u8>()],
        prop_oneof![Just(0i32), Just(-1), Just(-20), Just(-21), Just(1), Just(5), -60i32..60],
        proptest::collection::vec(any::<u8>(), 0..80),
        prop_oneof![Just(0usize), 0usize..100],
    )
        .prop_map(|(vi, flags, off, proto, total_delta, rest, cut)| {
            let mut ip =
                vec![vi, 0, 0, 0, 0, 1, flags, off, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
            ip.extend_from_slice(&rest);
            let total = (ip.len() as i32 + total_delta).clamp(0, 65535) as u16;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            (ip, cut)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20000, ..ProptestConfig::default() })]

    #[test]
    fn quick_ipv4_path_parses_as_etherparse_does((ip, cut) in ipv4_packet()) {
        let quick = format!("{:?}", parse::parse_ip(&ip, cut));
        let lax = format!("{:?}", parse::parse_ip_lax(&ip, cut, 0));
        prop_assert_eq!(quick, lax);
    }

}

#[test]
fn acks_after_a_half_close_are_not_bad_sequences() {
    let mut t = T::new(NetConfig::default());
    t.seg(true, 0, 0, SYN, b"");
    t.seg(false, 100, 1, SYN | ACK, b"");
    t.seg(true, 1, 101, ACK, b"");
    // The client sends its last bytes and closes its side; the server goes on sending.
    t.seg(true, 1, 101, ACK | FIN, b"ab");
    t.seg(false, 101, 4, ACK, b"xyz");
    // The client's ACKs now carry the sequence number after its FIN.
    t.seg(true, 4, 104, ACK, b"");
    t.seg(false, 104, 4, ACK, b"more");
    t.seg(true, 4, 108, ACK, b"");
    t.finish();
    assert_eq!(t.rec.bytes(0, Dir::C2S), b"ab");
    assert_eq!(t.rec.bytes(0, Dir::S2C), b"xyzmore");
    assert_eq!(t.rec.notes(0), vec![], "no TCP notes on a clean half-close");

    // One past the FIN's own sequence number is as far as an empty segment can be.
    let mut t = T::new(NetConfig::default());
    t.seg(true, 0, 0, SYN, b"");
    t.seg(true, 1, 0, ACK | FIN, b"ab");
    t.seg(true, 4, 0, ACK, b"");
    t.seg(true, 5, 0, ACK, b"");
    t.finish();
    assert_eq!(t.rec.notes(0), vec![TcpNote::BadSequence]);
}

/// As Wireshark counts them: a segment past a hole is not out of order (the hole is a gap if
/// it is never filled); a segment that arrives after data beyond it is, whether it fills the
/// hole from its start or lands inside it.
#[test]
fn out_of_order_is_the_late_segment_not_the_one_past_a_hole() {
    let ooo = |t: &T| t.rec.notes(0).iter().filter(|n| **n == TcpNote::OutOfOrder).count();
    // Loss only: no out-of-order segment, a gap.
    let mut t = T::new(NetConfig::default());
    t.seg(true, 100, 0, SYN, b"");
    t.seg(true, 101, 0, ACK, b"AAAAAAAAAA");
    t.seg(true, 121, 0, ACK, b"CCCCCCCCCC");
    t.seg(true, 131, 0, ACK, b"DDDDDDDDDD");
    t.finish();
    assert_eq!(ooo(&t), 0);
    assert_eq!(t.rec.gaps(0, Dir::C2S).iter().map(|g| g.1).sum::<u64>(), 10);
    // Reordering: the late ones are, inside the hole and at its start.
    let mut t = T::new(NetConfig::default());
    t.seg(true, 100, 0, SYN, b"");
    t.seg(true, 101, 0, ACK, b"AAAAAAAAAA");
    t.seg(true, 131, 0, ACK, b"DDDDDDDDDD");
    assert_eq!(ooo(&t), 0);
    t.seg(true, 121, 0, ACK, b"CCCCCCCCCC");
    assert_eq!(ooo(&t), 1);
    t.seg(true, 111, 0, ACK, b"BBBBBBBBBB");
    assert_eq!(ooo(&t), 2);
    t.finish();
    assert_eq!(t.rec.bytes(0, Dir::C2S), b"AAAAAAAAAABBBBBBBBBBCCCCCCCCCCDDDDDDDDDD");
    assert!(t.rec.gaps(0, Dir::C2S).is_empty());
}
