//! Hand-built Ethernet/IP/TCP packets for one synthetic connection, the time-ordered output
//! queue, and the impairments applied to each burst of segments.
//!
//! The capture point is the server: client packets carry the time they reach the server,
//! server packets the time they leave it, so the server's response time is exactly the
//! difference of capture timestamps, and the client's ACKs arrive one RTT after the data.
//!
//! Invariants: sequence numbers advance by exactly the bytes (and SYN/FIN) each side sends;
//! every packet's ACK field is what that side had received when its burst was generated (a late
//! retransmission may repeat an older ACK, never one beyond the peer's data); a segment "lost"
//! by the loss knob never reaches the capture but the receiver still acknowledges it, so the
//! dissector sees an ACK above a hole and can declare a gap. Timestamps of the written packets
//! never decrease.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};
use std::net::IpAddr;

use crate::capture::write::CaptureWriter;
use crate::capture::{LinkType, Timestamp};
use crate::net::Dir;

use super::rng::Rng;

pub(crate) const FIN: u8 = 0x01;
pub(crate) const SYN: u8 = 0x02;
pub(crate) const RST: u8 = 0x04;
pub(crate) const PSH: u8 = 0x08;
pub(crate) const ACK: u8 = 0x10;

/// One end of a connection.
#[derive(Clone, Debug)]
pub(crate) struct Host {
    pub mac: [u8; 6],
    pub ip: IpAddr,
    pub port: u16,
}

/// Impairment probabilities, per segment, and what they injected so far.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Impair {
    pub loss: f64,
    pub reorder: f64,
    pub duplicate: f64,
    pub retransmit: f64,
    pub counts: ImpairmentCounts,
}

/// Counts of what was injected (only packets that reach the capture count).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImpairmentCounts {
    /// Segments dropped and never retransmitted: their bytes never appear in the capture.
    pub lost_segments: u64,
    /// Segments dropped whose retransmission does appear.
    pub recovered_segments: u64,
    /// Segments sent again later (possibly split in two), whether or not the first copy was lost.
    pub retransmitted_segments: u64,
    /// Packets written twice in a row.
    pub duplicated_packets: u64,
    /// Adjacent segment pairs whose order was swapped.
    pub reordered_pairs: u64,
}

/// Timing of one message of a burst, as the capture shows it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MsgTiming {
    /// When the segment carrying the message's last byte was first sent (before any
    /// reordering on the way, so it grows with the stream).
    pub ts: i64,
    /// When every byte up to the message's end has appeared in the capture (None: lost).
    pub complete: Option<i64>,
    /// Some byte of the message was in a segment lost for good.
    pub lost: bool,
}

pub(crate) struct BurstResult {
    /// Capture time of the burst's last original segment.
    pub last_ts: i64,
    /// When the receiver's final ACK shows in the capture.
    pub acked_at: i64,
    pub msgs: Vec<MsgTiming>,
}

/// A synthetic TCP connection.
pub(crate) struct Conn {
    pub sess: usize,
    pub client: Host,
    pub server: Host,
    /// Next sequence number to send, by [`Dir::index`] of the sender.
    pub seq: [u32; 2],
    ip_id: [u16; 2],
    pub mss: usize,
    pub rtt: i64,
    /// False while steps happen before the capture started (midstream): nothing is written.
    pub captured: bool,
    /// Per direction: time by which all bytes so far have appeared in the capture.
    ready: [i64; 2],
    /// The client's delayed-ACK timer for a lone segment.
    pub delayed_ack: i64,
}

/// A packet waiting in the output queue.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Queued {
    ts: i64,
    order: u64,
    sess: usize,
    data: Vec<u8>,
}

/// Per session: connection index, first packet time, packet count; and the total.
pub(crate) struct SinkSummary {
    pub conn_of_session: Vec<Option<u32>>,
    pub first_ts: Vec<Option<i64>>,
    pub packets_of: Vec<u64>,
    pub packets: u64,
}

/// Time-ordered output: packets are queued as steps generate them and written once no
/// future step can produce an earlier one.
pub(crate) struct Sink<W: Write> {
    writer: CaptureWriter<W>,
    base: i64,
    heap: BinaryHeap<Reverse<Queued>>,
    order: u64,
    /// Connection index of each session, assigned when its first packet is written.
    pub conn_of_session: Vec<Option<u32>>,
    next_conn: u32,
    pub packets: u64,
    pub bytes: u64,
    pub first_ts: Vec<Option<i64>>,
    /// Packets written per session.
    pub packets_of: Vec<u64>,
    pub last_written: i64,
}

impl<W: Write> Sink<W> {
    pub(crate) fn new(writer: CaptureWriter<W>, base: Timestamp, sessions: usize) -> Self {
        Sink {
            writer,
            base: base.0,
            heap: BinaryHeap::new(),
            order: 0,
            conn_of_session: vec![None; sessions],
            next_conn: 0,
            packets: 0,
            bytes: 0,
            first_ts: vec![None; sessions],
            packets_of: vec![0; sessions],
            last_written: i64::MIN,
        }
    }

    pub(crate) fn push(&mut self, ts: i64, sess: usize, data: Vec<u8>) {
        self.order += 1;
        self.heap.push(Reverse(Queued { ts, order: self.order, sess, data }));
    }

    /// Writes every queued packet strictly earlier than `t` (all if `t` is None).
    pub(crate) fn flush_before(&mut self, t: Option<i64>) -> io::Result<()> {
        while let Some(Reverse(top)) = self.heap.peek() {
            if t.is_some_and(|t| top.ts >= t) {
                break;
            }
            let Some(Reverse(q)) = self.heap.pop() else {
                break;
            };
            if let Some(slot) = self.conn_of_session.get_mut(q.sess) {
                if slot.is_none() {
                    *slot = Some(self.next_conn);
                    self.next_conn += 1;
                    if let Some(f) = self.first_ts.get_mut(q.sess) {
                        *f = Some(q.ts);
                    }
                }
            }
            let len = u32::try_from(q.data.len()).unwrap_or(u32::MAX);
            self.writer.write_packet_on(
                LinkType::ETHERNET,
                Timestamp(self.base.saturating_add(q.ts)),
                &q.data,
                len,
            )?;
            self.packets += 1;
            if let Some(n) = self.packets_of.get_mut(q.sess) {
                *n += 1;
            }
            self.bytes += q.data.len() as u64;
            self.last_written = q.ts;
        }
        Ok(())
    }

    /// Writes what is left, flushes the file and says what went where.
    pub(crate) fn finish(mut self) -> io::Result<SinkSummary> {
        self.flush_before(None)?;
        self.writer.finish()?;
        Ok(SinkSummary {
            conn_of_session: self.conn_of_session,
            first_ts: self.first_ts,
            packets_of: self.packets_of,
            packets: self.packets,
        })
    }
}

fn checksum_add(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn checksum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl Conn {
    pub(crate) fn new(
        sess: usize,
        client: Host,
        server: Host,
        isn: [u32; 2],
        mss: usize,
        rtt: i64,
    ) -> Self {
        Conn {
            sess,
            client,
            server,
            seq: isn,
            ip_id: [(isn[0] >> 16) as u16, (isn[1] >> 16) as u16],
            mss: mss.max(1),
            rtt,
            captured: true,
            ready: [0, 0],
            delayed_ack: 20_000_000,
        }
    }

    /// Builds one Ethernet frame from `dir`'s sender with the given sequence and flags; the ACK
    /// number is everything the peer has sent so far.
    pub(crate) fn packet(&mut self, dir: Dir, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let (src, dst) = match dir {
            Dir::C2S => (&self.client, &self.server),
            Dir::S2C => (&self.server, &self.client),
        };
        let ack = if flags & ACK != 0 { self.seq[dir.reverse().index()] } else { 0 };
        let opts: &[u8] =
            if flags & SYN != 0 { &[2, 4, (self.mss >> 8) as u8, self.mss as u8] } else { &[] };
        let tcp_len = 20 + opts.len() + payload.len();
        let mut tcp = Vec::with_capacity(tcp_len);
        tcp.extend_from_slice(&src.port.to_be_bytes());
        tcp.extend_from_slice(&dst.port.to_be_bytes());
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&ack.to_be_bytes());
        tcp.push((((20 + opts.len()) / 4) as u8) << 4);
        tcp.push(flags);
        let window: u16 = match dir {
            Dir::C2S => 0xfaf0,
            Dir::S2C => 0x7210,
        };
        tcp.extend_from_slice(&window.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 0]);
        tcp.extend_from_slice(opts);
        tcp.extend_from_slice(payload);

        // Client packets crossed the Internet to reach the capture point at the server.
        let ttl: u8 = match dir {
            Dir::C2S => 51,
            Dir::S2C => 64,
        };
        let id = self.ip_id[dir.index()];
        self.ip_id[dir.index()] = id.wrapping_add(1);

        let mut out = Vec::with_capacity(14 + 40 + tcp_len);
        out.extend_from_slice(&dst.mac);
        out.extend_from_slice(&src.mac);
        match (src.ip, dst.ip) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                out.extend_from_slice(&[0x08, 0x00]);
                let total = (20 + tcp_len) as u16;
                let mut ip = [0u8; 20];
                ip[0] = 0x45;
                ip[2..4].copy_from_slice(&total.to_be_bytes());
                ip[4..6].copy_from_slice(&id.to_be_bytes());
                ip[6] = 0x40; // DF
                ip[8] = ttl;
                ip[9] = 6;
                ip[12..16].copy_from_slice(&s.octets());
                ip[16..20].copy_from_slice(&d.octets());
                let c = checksum_fold(checksum_add(0, &ip));
                ip[10..12].copy_from_slice(&c.to_be_bytes());
                out.extend_from_slice(&ip);
                let mut sum = checksum_add(0, &s.octets());
                sum = checksum_add(sum, &d.octets());
                sum += 6 + tcp_len as u32;
                let c = checksum_fold(checksum_add(sum, &tcp));
                tcp[16..18].copy_from_slice(&c.to_be_bytes());
            }
            (s, d) => {
                let s6 = match s {
                    IpAddr::V6(a) => a,
                    IpAddr::V4(a) => a.to_ipv6_mapped(),
                };
                let d6 = match d {
                    IpAddr::V6(a) => a,
                    IpAddr::V4(a) => a.to_ipv6_mapped(),
                };
                out.extend_from_slice(&[0x86, 0xdd]);
                out.extend_from_slice(&[0x60, 0, 0, 0]);
                out.extend_from_slice(&(tcp_len as u16).to_be_bytes());
                out.push(6);
                out.push(ttl);
                out.extend_from_slice(&s6.octets());
                out.extend_from_slice(&d6.octets());
                let mut sum = checksum_add(0, &s6.octets());
                sum = checksum_add(sum, &d6.octets());
                sum += tcp_len as u32 + 6;
                let c = checksum_fold(checksum_add(sum, &tcp));
                tcp[16..18].copy_from_slice(&c.to_be_bytes());
            }
        }
        out.extend_from_slice(&tcp);
        out
    }

    fn emit<W: Write>(
        &mut self,
        sink: &mut Sink<W>,
        ts: i64,
        dir: Dir,
        seq: u32,
        flags: u8,
        payload: &[u8],
    ) {
        let p = self.packet(dir, seq, flags, payload);
        if self.captured {
            sink.push(ts, self.sess, p);
        }
    }

    /// SYN at `t` (arriving at the server), SYN-ACK right away, the client's ACK one RTT later.
    /// Returns the time of the client's ACK.
    pub(crate) fn handshake<W: Write>(&mut self, sink: &mut Sink<W>, t: i64) -> i64 {
        let c = Dir::C2S.index();
        let s = Dir::S2C.index();
        let isn_c = self.seq[c];
        self.emit(sink, t, Dir::C2S, isn_c, SYN, &[]);
        self.seq[c] = isn_c.wrapping_add(1);
        let isn_s = self.seq[s];
        self.emit(sink, t + 40_000, Dir::S2C, isn_s, SYN | ACK, &[]);
        self.seq[s] = isn_s.wrapping_add(1);
        let t_ack = t + 40_000 + self.rtt;
        let seq = self.seq[c];
        self.emit(sink, t_ack, Dir::C2S, seq, ACK, &[]);
        self.ready = [t_ack, t_ack];
        t_ack
    }

    /// Orderly close started by `by` at `t`: FIN, the peer's FIN-ACK, the last ACK.
    pub(crate) fn close_fin<W: Write>(&mut self, sink: &mut Sink<W>, t: i64, by: Dir) -> i64 {
        let a = by.index();
        let b = by.reverse().index();
        // Capture at the server: whichever side's packet travels to it takes half an RTT more.
        let (d1, d2) = match by {
            Dir::C2S => (50_000, self.rtt),
            Dir::S2C => (self.rtt, 50_000),
        };
        let sa = self.seq[a];
        self.emit(sink, t, by, sa, FIN | ACK, &[]);
        self.seq[a] = sa.wrapping_add(1);
        let sb = self.seq[b];
        self.emit(sink, t + d1, by.reverse(), sb, FIN | ACK, &[]);
        self.seq[b] = sb.wrapping_add(1);
        let sa = self.seq[a];
        self.emit(sink, t + d1 + d2, by, sa, ACK, &[]);
        t + d1 + d2
    }

    /// Abortive close by the client.
    pub(crate) fn close_rst<W: Write>(&mut self, sink: &mut Sink<W>, t: i64) -> i64 {
        let sa = self.seq[Dir::C2S.index()];
        self.emit(sink, t, Dir::C2S, sa, RST | ACK, &[]);
        t
    }

    /// Sends `stream` from `dir` starting at `t0`, split into MSS-sized segments, with
    /// impairments, and the receiver's ACKs (every second segment and after the last). `ends`
    /// are the (start, end) byte ranges of the messages it carries (bytes outside them, such as
    /// HTTP heads or WebSocket control frames, belong to no message). An empty stream sends
    /// nothing.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_stream<W: Write>(
        &mut self,
        sink: &mut Sink<W>,
        rng: &mut Rng,
        imp: &mut Impair,
        dir: Dir,
        t0: i64,
        stream: &[u8],
        ends: &[(usize, usize)],
    ) -> BurstResult {
        let seq0 = self.seq[dir.index()];
        let segs: Vec<(usize, usize)> = (0..stream.len())
            .step_by(self.mss)
            .map(|o| (o, (o + self.mss).min(stream.len())))
            .collect();
        let n = segs.len();
        // Arrival spacing at the capture point: the client's segments were spread by the path.
        let gap: i64 = match dir {
            Dir::C2S => 120_000,
            Dir::S2C => 15_000,
        };
        let sent: Vec<i64> = (0..n as i64).map(|i| t0 + i * gap).collect();
        let mut times = sent.clone();
        let mut i = 0;
        while i + 1 < n {
            if rng.chance(imp.reorder) {
                times.swap(i, i + 1);
                if self.captured {
                    imp.counts.reordered_pairs += 1;
                }
                i += 2;
            } else {
                i += 1;
            }
        }
        let mut earliest: Vec<Option<i64>> = vec![None; n];
        let mut perm_lost = vec![false; n];
        for (k, &(a, b)) in segs.iter().enumerate() {
            let payload = &stream[a..b];
            let seq = seq0.wrapping_add(a as u32);
            let flags = if k + 1 == n { ACK | PSH } else { ACK };
            let lost = rng.chance(imp.loss);
            let retx = rng.chance(imp.retransmit);
            if !lost {
                let p = self.packet(dir, seq, flags, payload);
                earliest[k] = Some(times[k]);
                // A true duplicate: the same frame, IP id included, seen twice.
                if rng.chance(imp.duplicate) && self.captured {
                    sink.push(times[k] + 1_000, self.sess, p.clone());
                    imp.counts.duplicated_packets += 1;
                }
                if self.captured {
                    sink.push(times[k], self.sess, p);
                }
            }
            if retx {
                let rt = times[k] + 200_000_000 + rng.below(100_000_000) as i64;
                let split = payload.len() >= 2 && rng.chance(0.5);
                let last = if split {
                    let h = payload.len() / 2;
                    self.emit(sink, rt, dir, seq, ACK, &payload[..h]);
                    self.emit(
                        sink,
                        rt + gap,
                        dir,
                        seq.wrapping_add(h as u32),
                        flags,
                        &payload[h..],
                    );
                    rt + gap
                } else {
                    self.emit(sink, rt, dir, seq, flags, payload);
                    rt
                };
                if earliest[k].is_none() {
                    earliest[k] = Some(last);
                    if self.captured {
                        imp.counts.recovered_segments += 1;
                    }
                }
                if self.captured {
                    imp.counts.retransmitted_segments += 1;
                }
            } else if lost {
                perm_lost[k] = true;
                if self.captured {
                    imp.counts.lost_segments += 1;
                }
            }
        }
        // The receiver got everything (losses are the capture's), so it acknowledges it all.
        let seq_end = seq0.wrapping_add(stream.len() as u32);
        self.seq[dir.index()] = seq_end;
        let rdir = dir.reverse();
        let ack_delay = |this: &Self, k: usize| -> i64 {
            match dir {
                Dir::C2S => 30_000,
                // A lone segment waits for the client's delayed-ACK timer.
                Dir::S2C if k % 2 == 0 && k + 1 == n => this.rtt + this.delayed_ack,
                Dir::S2C => this.rtt,
            }
        };
        let mut max_t = i64::MIN;
        let mut acked_at = t0;
        for k in 0..n {
            max_t = max_t.max(times[k]);
            if k % 2 == 1 || k + 1 == n {
                let t = max_t + ack_delay(self, k);
                let rseq = self.seq[rdir.index()];
                // The ACK number covers this segment's end: temporarily present that as the
                // sender's progress.
                let saved = self.seq[dir.index()];
                self.seq[dir.index()] = seq0.wrapping_add(segs[k].1 as u32);
                self.emit(sink, t, rdir, rseq, ACK, &[]);
                self.seq[dir.index()] = saved;
                acked_at = t;
            }
        }
        let mut timings = Vec::with_capacity(ends.len());
        let mut ready = self.ready[dir.index()];
        for &(start, end) in ends {
            let mut lost = false;
            let mut complete = ready;
            let mut ts = t0;
            for (k, &(a, b)) in segs.iter().enumerate() {
                if a >= end {
                    break;
                }
                if b > start && perm_lost[k] {
                    lost = true;
                }
                if let Some(e) = earliest[k] {
                    complete = complete.max(e);
                }
                if a < end && end <= b {
                    ts = sent[k];
                }
            }
            timings.push(MsgTiming { ts, complete: (!lost).then_some(complete), lost });
        }
        for e in earliest.iter().flatten() {
            ready = ready.max(*e);
        }
        self.ready[dir.index()] = ready;
        BurstResult { last_ts: times.iter().copied().max().unwrap_or(t0), acked_at, msgs: timings }
    }
}
