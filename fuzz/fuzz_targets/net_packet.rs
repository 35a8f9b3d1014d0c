//! L2–L4 parsing and the connection table over arbitrary packets of arbitrary link types.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use msyncdump::capture::{LinkType, Packet, Timestamp};
use msyncdump::net::{Net, NetConfig};
use msyncdump_fuzz::CheckingSink;

const LINKS: [u32; 16] = [0, 1, 9, 12, 14, 50, 101, 104, 108, 113, 228, 229, 239, 258, 276, 147];

#[derive(Arbitrary, Debug)]
struct Pkt {
    link: u8,
    /// Added to the captured length to make the original length (snaplen cuts).
    cut: u16,
    ts_step: u16,
    data: Vec<u8>,
}

fuzz_target!(|pkts: Vec<Pkt>| {
    let cfg = NetConfig {
        // Small caps so that the limits themselves are exercised.
        max_flow_buffer: 4096,
        max_total_buffer: 16384,
        max_flows: 8,
        max_fragment_buffer: 8192,
        idle_timeout_ns: 5_000_000_000,
        ..NetConfig::default()
    };
    let mut net = Net::new(cfg);
    let mut sink = CheckingSink::default();
    let mut ts = 1_500_000_000_000_000_000i64;
    for (i, p) in pkts.iter().enumerate() {
        ts += i64::from(p.ts_step) * 1_000_000;
        let link = LINKS.get(usize::from(p.link) % LINKS.len()).copied().unwrap_or(1);
        let orig_len =
            u32::try_from(p.data.len()).unwrap_or(u32::MAX).saturating_add(u32::from(p.cut));
        let pkt = Packet {
            index: i as u64 + 1,
            ts: Timestamp(ts),
            link: LinkType(link),
            orig_len,
            data: &p.data,
            file_offset: 0,
        };
        net.packet(&pkt, &mut sink);
        assert!(net.tracked_connections() <= 8 + 1);
    }
    net.finish(&mut sink);
    sink.assert_all_closed();
});
