//! TCP reassembly fed arbitrary segment sequences of two connections: sequence and
//! acknowledgement numbers near each side's ISN (wrapping included), any flags, any payload,
//! any order. The checking sink asserts that Data/Gap tile each direction and that every
//! connection closes exactly once.
#![no_main]

use arbitrary::Arbitrary;
use etherparse::{PacketBuilder, TcpHeader};
use libfuzzer_sys::fuzz_target;
use msyncdump::capture::{LinkType, Packet, Timestamp};
use msyncdump::net::{Net, NetConfig};
use msyncdump_fuzz::CheckingSink;

#[derive(Arbitrary, Debug)]
struct Scenario {
    /// Initial sequence numbers: [flow][direction].
    isn: [[u32; 2]; 2],
    segs: Vec<Seg>,
    small_buffers: bool,
}

#[derive(Arbitrary, Debug)]
struct Seg {
    flow: bool,
    from_server: bool,
    /// Sequence number relative to the sender's ISN; `far` adds a large jump.
    rel_seq: u16,
    rel_ack: u16,
    far: u8,
    syn: bool,
    ack: bool,
    fin: bool,
    rst: bool,
    ts_step: u8,
    payload: Vec<u8>,
}

fuzz_target!(|sc: Scenario| {
    let cfg = if sc.small_buffers {
        NetConfig { max_flow_buffer: 256, max_total_buffer: 384, ..NetConfig::default() }
    } else {
        NetConfig::default()
    };
    let mut net = Net::new(cfg);
    let mut sink = CheckingSink::default();
    let mut ts = 1_500_000_000_000_000_000i64;
    let mut buf = Vec::new();
    let hosts: [([u8; 4], u16); 2] = [([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 40001)];
    let server = ([198, 51, 100, 10], 6717u16);
    for (i, s) in sc.segs.iter().enumerate() {
        let flow = usize::from(s.flow);
        let Some(&client) = hosts.get(flow) else { return };
        let Some(isn) = sc.isn.get(flow) else { return };
        let (src, dst, own, peer) = if s.from_server {
            (server, client, isn[1], isn[0])
        } else {
            (client, server, isn[0], isn[1])
        };
        let jump = u32::from(s.far) << 24;
        let mut tcp = TcpHeader::new(
            src.1,
            dst.1,
            own.wrapping_add(u32::from(s.rel_seq)).wrapping_add(jump),
            65535,
        );
        tcp.syn = s.syn;
        tcp.ack = s.ack;
        tcp.fin = s.fin;
        tcp.rst = s.rst;
        tcp.acknowledgment_number = peer.wrapping_add(u32::from(s.rel_ack));
        buf.clear();
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src.0, dst.0, 64)
            .tcp_header(tcp);
        if b.write(&mut buf, &s.payload).is_err() {
            continue;
        }
        ts += i64::from(s.ts_step) * 1_000_000;
        let pkt = Packet {
            index: i as u64 + 1,
            ts: Timestamp(ts),
            link: LinkType::ETHERNET,
            orig_len: buf.len() as u32,
            data: &buf,
            file_offset: 0,
        };
        net.packet(&pkt, &mut sink);
    }
    net.finish(&mut sink);
    sink.assert_all_closed();
});
