//! Tests of the synthesizer: determinism, TCP consistency of the packets (parsed back with
//! etherparse), ground truth against the captured bytes, impairment counts, and the seed.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use prost::Message;

use super::*;

/// One TCP packet of a capture, as the tests need it.
#[derive(Clone, Debug)]
struct Seg {
    ts: i64,
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: Option<u32>,
    syn: bool,
    fin: bool,
    rst: bool,
    payload: Vec<u8>,
    raw: Vec<u8>,
}

/// Reads a little-endian pcap (µs or ns) and checks every IP and TCP checksum.
fn read_pcap(b: &[u8]) -> Vec<Seg> {
    let magic = u32::from_le_bytes(b[0..4].try_into().unwrap());
    let nanos = match magic {
        0xa1b2_c3d4 => false,
        0xa1b2_3c4d => true,
        m => panic!("bad magic {m:x}"),
    };
    let mut off = 24;
    let mut out = Vec::new();
    while off < b.len() {
        let le = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let secs = i64::from(le(off));
        let frac = i64::from(le(off + 4));
        let caplen = le(off + 8) as usize;
        let data = &b[off + 16..off + 16 + caplen];
        off += 16 + caplen;
        let ts = secs * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        let p = SlicedPacket::from_ethernet(data).unwrap();
        let Some(TransportSlice::Tcp(tcp)) = p.transport else { panic!("not tcp") };
        let (sip, dip) = match p.net {
            Some(NetSlice::Ipv4(ip)) => {
                let h = ip.header().to_header();
                assert_eq!(h.header_checksum, h.calc_header_checksum());
                let tcph = tcp.to_header();
                assert_eq!(tcph.checksum, tcph.calc_checksum_ipv4(&h, tcp.payload()).unwrap());
                (IpAddr::V4(h.source.into()), IpAddr::V4(h.destination.into()))
            }
            Some(NetSlice::Ipv6(ip)) => {
                let h = ip.header().to_header();
                let tcph = tcp.to_header();
                assert_eq!(tcph.checksum, tcph.calc_checksum_ipv6(&h, tcp.payload()).unwrap());
                (IpAddr::V6(h.source.into()), IpAddr::V6(h.destination.into()))
            }
            _ => panic!("not ip"),
        };
        out.push(Seg {
            ts,
            src: SocketAddr::new(sip, tcp.source_port()),
            dst: SocketAddr::new(dip, tcp.destination_port()),
            seq: tcp.sequence_number(),
            ack: tcp.ack().then(|| tcp.acknowledgment_number()),
            syn: tcp.syn(),
            fin: tcp.fin(),
            rst: tcp.rst(),
            payload: tcp.payload().to_vec(),
            raw: data.to_vec(),
        });
    }
    out
}

fn cfg(seed: u64) -> SynthConfig {
    SynthConfig {
        seed,
        clients: 6,
        duration_secs: 20.0,
        mean_gap_secs: 1.5,
        heartbeat_secs: 4.0,
        ..SynthConfig::default()
    }
}

fn run(c: &SynthConfig) -> (Vec<u8>, GroundTruth) {
    let mut buf = Vec::new();
    let t = generate(c, &mut buf).unwrap();
    (buf, t)
}

/// Per (connection, direction): the bytes in sequence order, each byte first seen wins;
/// also the holes (ranges never seen) relative to the first seq seen.
/// Per (connection, direction): payload by offset from the lowest seq, and that seq.
type Streams = HashMap<(u32, Dir), (BTreeMap<u32, Vec<u8>>, u32)>;

fn streams(t: &GroundTruth, segs: &[Seg]) -> Streams {
    let mut out: Streams = HashMap::new();
    for s in segs {
        let Some((ci, dir)) = t.connections.iter().enumerate().find_map(|(i, c)| {
            if c.client == s.src && c.server == s.dst {
                Some((i as u32, Dir::C2S))
            } else if c.server == s.src && c.client == s.dst {
                Some((i as u32, Dir::S2C))
            } else {
                None
            }
        }) else {
            panic!("packet of unknown connection");
        };
        if s.payload.is_empty() {
            continue;
        }
        let e = out.entry((ci, dir)).or_insert_with(|| (BTreeMap::new(), s.seq));
        // Relative offsets from the lowest seq of the flow (a retransmission may go lower
        // than the first one seen); captures here never span 2 GiB.
        if s.seq.wrapping_sub(e.1) >= 1 << 31 {
            let shift = e.1.wrapping_sub(s.seq);
            e.0 = std::mem::take(&mut e.0).into_iter().map(|(k, v)| (k + shift, v)).collect();
            e.1 = s.seq;
        }
        let rel = s.seq.wrapping_sub(e.1);
        e.0.entry(rel).or_insert_with(|| s.payload.clone());
    }
    out
}

/// Flattens a stream map into contiguous byte runs (split at holes).
fn runs(map: &BTreeMap<u32, Vec<u8>>) -> Vec<Vec<u8>> {
    let mut runs: Vec<Vec<u8>> = Vec::new();
    let mut end = 0u32;
    let mut cur = Vec::new();
    for (&off, data) in map {
        let dend = off + data.len() as u32;
        if dend <= end && !cur.is_empty() {
            continue;
        }
        if off > end && !cur.is_empty() {
            runs.push(std::mem::take(&mut cur));
            cur.extend_from_slice(data);
        } else if cur.is_empty() {
            cur.extend_from_slice(data);
        } else {
            cur.extend_from_slice(&data[(end - off) as usize..]);
        }
        end = end.max(dend);
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

fn frames(mut b: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let n = u32::from_be_bytes(b[0..4].try_into().unwrap()) as usize;
        assert!(b.len() >= 4 + n, "stream ends inside a message");
        out.push(b[4..4 + n].to_vec());
        b = &b[4 + n..];
    }
    assert!(b.is_empty());
    out
}

fn truth_frames(t: &GroundTruth, conn: u32, dir: Dir) -> Vec<Vec<u8>> {
    // Stream order within a connection and direction is time order of the last byte.
    t.messages.iter().filter(|m| m.conn == conn && m.dir == dir).map(|m| m.bytes.clone()).collect()
}

#[test]
fn same_seed_same_bytes() {
    let (a, ta) = run(&cfg(7));
    let (b, tb) = run(&cfg(7));
    assert_eq!(a, b);
    assert_eq!(ta, tb);
    let (c, _) = run(&cfg(8));
    assert_ne!(a, c);
    // Collecting the truth or not never changes the capture.
    let (d, td) = run(&SynthConfig { collect_truth: false, ..cfg(7) });
    assert_eq!(a, d);
    assert_eq!(td.connections, ta.connections);
    assert_eq!(td.impairments, ta.impairments);
}

#[test]
fn clean_capture_matches_truth_exactly() {
    let c = SynthConfig { clients: 10, ..cfg(3) };
    let (buf, t) = run(&c);
    let segs = read_pcap(&buf);
    assert_eq!(segs.len() as u64, t.packets);
    assert_eq!(t.connections.len(), 10);
    assert!(t.messages.len() > 100, "{}", t.messages.len());
    // Timestamps never go backwards.
    assert!(segs.windows(2).all(|w| w[0].ts <= w[1].ts));
    let st = streams(&t, &segs);
    for ((conn, dir), (map, _)) in &st {
        let r = runs(map);
        assert_eq!(r.len(), 1, "hole in a clean capture");
        assert_eq!(frames(&r[0]), truth_frames(&t, *conn, *dir));
    }
    let all: usize = st.values().map(|(m, _)| frames(&runs(m)[0]).len()).sum();
    assert_eq!(all, t.messages.len());
    for (i, c) in t.connections.iter().enumerate() {
        let pk = segs
            .iter()
            .filter(|s| {
                (s.src, s.dst) == (c.client, c.server) || (s.src, s.dst) == (c.server, c.client)
            })
            .count();
        assert_eq!(c.packets, pk as u64);
        for d in [Dir::C2S, Dir::S2C] {
            let n = t.messages.iter().filter(|m| m.conn == i as u32 && m.dir == d).count();
            assert_eq!(c.messages[d.index()], n as u64);
            assert_eq!(c.lost_messages[d.index()], 0);
        }
    }
    assert!(t.messages.iter().all(|m| !m.lost && m.complete_ts == Some(m.ts)));
    // Every request is answered, with the latency the timestamps show.
    for r in &t.requests {
        let resp = r.response.unwrap();
        assert_eq!(r.latency_ns.unwrap(), t.messages[resp].ts.since(t.messages[r.request].ts));
        assert!(r.latency_ns.unwrap() >= 15_000_000);
        assert_eq!(t.messages[r.request].dir, Dir::C2S);
        assert_eq!(t.messages[resp].dir, Dir::S2C);
    }
    for kind in [
        RequestKind::Provision,
        RequestKind::Unread,
        RequestKind::Heartbeat,
        RequestKind::Send,
        RequestKind::Pull,
        RequestKind::Logout,
    ] {
        assert!(!t.latencies(kind).is_empty(), "{kind:?}");
    }
    assert!(t.connections.iter().all(|c| matches!(c.login, LoginTruth::Answered { code: 0, .. })));
    let ends: Vec<ConnEnd> = t.connections.iter().map(|c| c.end).collect();
    for e in
        [ConnEnd::ClientFin { logout: true }, ConnEnd::ClientFin { logout: false }, ConnEnd::Open]
    {
        assert!(ends.contains(&e), "{e:?} in {ends:?}");
    }
}

#[test]
fn message_mix_covers_the_protocol() {
    let (_, t) = run(&cfg(5));
    let mut body_types = std::collections::HashSet::new();
    let mut content_types = std::collections::HashSet::new();
    let mut ns = std::collections::HashSet::new();
    let mut multi_page = false;
    for m in &t.messages {
        let env = pb::MSync::decode(&m.bytes[..]).unwrap();
        let payload = env.payload.clone().unwrap_or_default();
        let metas = match (env.command, m.dir) {
            (Some(0), Dir::C2S) => {
                pb::CommSyncUl::decode(&payload[..]).unwrap().meta.into_iter().collect()
            }
            (Some(0), Dir::S2C) => {
                let dl = pb::CommSyncDl::decode(&payload[..]).unwrap();
                if dl.is_last == Some(false) {
                    multi_page = true;
                }
                dl.metas
            }
            (Some(1), Dir::C2S) => {
                assert!(env.payload.is_none(), "UNREAD request carries no payload");
                vec![]
            }
            _ => vec![],
        };
        for meta in metas {
            ns.insert(meta.ns.unwrap());
            if meta.ns == Some(1) {
                let b = pb::MessageBody::decode(&meta.payload.unwrap()[..]).unwrap();
                body_types.insert(b.r#type.unwrap());
                for c in b.contents {
                    content_types.insert(c.r#type.unwrap());
                }
            }
        }
    }
    assert!(multi_page);
    for n in [0, 1, 2, 3] {
        assert!(ns.contains(&n), "namespace {n}");
    }
    // Several messages share a segment (same connection, direction and send time).
    let shared = t
        .messages
        .windows(2)
        .filter(|w| w[0].conn == w[1].conn && w[0].dir == w[1].dir && w[0].ts == w[1].ts)
        .count();
    assert!(shared > 5, "{shared}");
    for b in [1, 2, 4, 5] {
        assert!(body_types.contains(&b), "body type {b}");
    }
    for c in [0, 1, 3, 5, 6, 7] {
        assert!(content_types.contains(&c), "content type {c}");
    }
    let cmds: std::collections::HashSet<i32> = t.messages.iter().map(|m| m.command).collect();
    for c in 0..=3 {
        assert!(cmds.contains(&c), "command {c}");
    }
    let sizes: Vec<usize> = t.messages.iter().map(|m| m.bytes.len()).collect();
    let mean = sizes.iter().sum::<usize>() / sizes.len();
    assert!((60..600).contains(&mean), "mean message size {mean}");
}

#[test]
fn tcp_sequence_and_ack_consistency() {
    for (ipv6, websocket) in [(false, false), (true, false), (false, true)] {
        let mut c = SynthConfig { ipv6, mss: 120, ..cfg(11) };
        if websocket {
            // Upgrades, refusals, pongs and close frames are sent outside message bursts.
            c.transport = SynthTransport::WebSocket;
            c.ws_ping = 0.5;
            c.ws_reject = 0.3;
            c.ws_fragment = 0.5;
        }
        let (buf, t) = run(&c);
        let segs = read_pcap(&buf);
        // Per flow: SYN first (consumes one), then contiguous data, FIN consumes one.
        let mut next: HashMap<(SocketAddr, SocketAddr), u32> = HashMap::new();
        let mut syns = 0;
        for s in &segs {
            let key = (s.src, s.dst);
            if s.syn {
                syns += 1;
                assert!(!next.contains_key(&key));
                next.insert(key, s.seq.wrapping_add(1));
                continue;
            }
            let n = next.get(&key).copied().unwrap();
            assert_eq!(s.seq, n, "seq continuity");
            let mut adv = s.payload.len() as u32;
            if s.fin {
                adv += 1;
            }
            next.insert(key, n.wrapping_add(adv));
            // The ACK never covers more than the peer has sent.
            let peer = next.get(&(s.dst, s.src)).copied().unwrap();
            if let Some(a) = s.ack {
                assert!(peer.wrapping_sub(a) < 1 << 31, "ack beyond peer data");
            }
            assert!(s.payload.len() <= 120);
        }
        assert_eq!(syns, 2 * t.connections.len());
        // Every flow's data is eventually fully acknowledged (graceful closes aside).
        for c in &t.connections {
            if c.end == ConnEnd::ClientRst {
                continue;
            }
            let sent = next[&(c.client, c.server)];
            let last_ack = segs
                .iter()
                .filter(|s| s.src == c.server && s.dst == c.client)
                .filter_map(|s| s.ack)
                .next_back()
                .unwrap();
            if matches!(c.end, ConnEnd::Open) {
                assert!(sent.wrapping_sub(last_ack) < 1 << 31);
            } else {
                assert_eq!(last_ack, sent);
            }
        }
    }
}

#[test]
fn loss_leaves_acked_holes_and_marks_messages() {
    let c = SynthConfig { loss: 0.05, mss: 200, ..cfg(21) };
    let (buf, t) = run(&c);
    let segs = read_pcap(&buf);
    let lost = t.impairments.lost_segments;
    assert!(lost > 0);
    assert_eq!(t.impairments.retransmitted_segments, 0);
    let st = streams(&t, &segs);
    let holes: usize = st.values().map(|(m, _)| runs(m).len() - 1).sum();
    // Adjacent lost segments merge into one hole; a lost first segment shows no hole.
    assert!(holes as u64 <= lost && holes > 0);
    assert!(t.messages.iter().any(|m| m.lost));
    let lost: u64 = t.connections.iter().map(|c| c.lost_messages[0] + c.lost_messages[1]).sum();
    assert_eq!(lost, t.messages.iter().filter(|m| m.lost).count() as u64);
    // Every message not lost is in the captured bytes of its direction.
    for m in t.messages.iter().filter(|m| !m.lost) {
        let r = runs(&st[&(m.conn, m.dir)].0);
        let mut framed = (m.bytes.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(&m.bytes);
        assert!(
            r.iter().any(|run| run.windows(framed.len()).any(|w| w == &framed[..])),
            "message missing from capture"
        );
    }
    // The receiver's ACKs cover every hole.
    for ((conn, dir), (map, base)) in &st {
        let c = &t.connections[*conn as usize];
        let (rs, rd) = match dir {
            Dir::C2S => (c.server, c.client),
            Dir::S2C => (c.client, c.server),
        };
        let max_ack = segs
            .iter()
            .filter(|s| s.src == rs && s.dst == rd)
            .filter_map(|s| s.ack.map(|a| a.wrapping_sub(*base)))
            .filter(|a| *a < 1 << 31)
            .max()
            .unwrap();
        let (&last_off, last) = map.iter().next_back().unwrap();
        assert!(max_ack >= last_off + last.len() as u32);
    }
}

#[test]
fn retransmission_recovers_loss() {
    let c = SynthConfig { loss: 0.05, retransmit: 1.0, mss: 200, ..cfg(22) };
    let (buf, t) = run(&c);
    assert_eq!(t.impairments.lost_segments, 0);
    assert!(t.impairments.recovered_segments > 0);
    assert!(t.messages.iter().all(|m| !m.lost));
    assert!(t.messages.iter().any(|m| m.complete_ts.unwrap() > m.ts));
    let segs = read_pcap(&buf);
    for ((conn, dir), (map, _)) in &streams(&t, &segs) {
        let r = runs(map);
        assert_eq!(r.len(), 1);
        assert_eq!(frames(&r[0]), truth_frames(&t, *conn, *dir));
    }
}

#[test]
fn duplicate_and_reorder_counts() {
    let c = SynthConfig { duplicate: 0.1, ..cfg(23) };
    let (buf, t) = run(&c);
    let segs = read_pcap(&buf);
    let dups = segs.windows(2).filter(|w| w[0].raw == w[1].raw).count() as u64;
    assert!(t.impairments.duplicated_packets > 0);
    assert_eq!(dups, t.impairments.duplicated_packets);

    let c = SynthConfig { reorder: 0.3, mss: 100, ..cfg(24) };
    let (buf, t) = run(&c);
    let segs = read_pcap(&buf);
    let mut high: HashMap<(SocketAddr, SocketAddr), u32> = HashMap::new();
    let mut backwards = 0u64;
    for s in segs.iter().filter(|s| !s.payload.is_empty()) {
        let h = high.entry((s.src, s.dst)).or_insert(s.seq);
        if s.seq.wrapping_sub(*h) >= 1 << 31 {
            backwards += 1;
        } else {
            *h = s.seq.wrapping_add(s.payload.len() as u32);
        }
    }
    assert!(t.impairments.reordered_pairs > 0);
    assert_eq!(backwards, t.impairments.reordered_pairs);
    for ((conn, dir), (map, _)) in &streams(&t, &segs) {
        assert_eq!(frames(&runs(map)[0]), truth_frames(&t, *conn, *dir));
    }
}

#[test]
fn midstream_connections_have_no_handshake() {
    let c = SynthConfig { midstream: true, ..cfg(31) };
    let (buf, t) = run(&c);
    let segs = read_pcap(&buf);
    assert!(t.connections.iter().any(|c| c.midstream));
    assert!(t.connections.iter().any(|c| !c.midstream));
    for (i, c) in t.connections.iter().enumerate() {
        let syn = segs.iter().any(|s| s.syn && s.src == c.client && s.dst == c.server);
        assert_eq!(syn, !c.midstream, "conn {i}");
        if c.midstream {
            assert_eq!(c.login, LoginTruth::NotCaptured);
            assert!(!t.messages.iter().any(|m| m.conn == i as u32 && m.command == 3));
        }
    }
    // Connection indices follow the first packet.
    assert!(t.connections.windows(2).all(|w| w[0].first_ts <= w[1].first_ts));
    for ((conn, dir), (map, _)) in &streams(&t, &segs) {
        assert_eq!(frames(&runs(map)[0]), truth_frames(&t, *conn, *dir));
    }
}

fn inflate(z: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    flate2::read::ZlibDecoder::new(z).read_to_end(&mut d).unwrap();
    d
}

#[test]
fn errors_unanswered_and_zlib() {
    let c = SynthConfig { clients: 12, error_rate: 0.2, unanswered: 0.1, zlib: 0.5, ..cfg(41) };
    let (_, t) = run(&c);
    assert!(t.errors().count() > 0);
    assert!(t.unanswered().count() > 0);
    for r in t.errors() {
        let resp = &t.messages[r.response.unwrap()];
        let env = pb::MSync::decode(&resp.bytes[..]).unwrap();
        let mut payload = env.payload.unwrap();
        if env.compress_algorimth == Some(1) {
            payload = inflate(&payload);
        }
        let code = match r.kind {
            RequestKind::Provision => pb::Provision::decode(&payload[..]).unwrap().status,
            RequestKind::Send => pb::CommSyncDl::decode(&payload[..]).unwrap().status,
            _ => pb::CommUnreadDl::decode(&payload[..]).unwrap().status,
        }
        .unwrap()
        .error_code;
        assert_eq!(code, r.status);
    }
    // A refused login ends with the server closing.
    for c in &t.connections {
        if let LoginTruth::Answered { code, .. } = c.login {
            assert_eq!(code != 0, c.end == ConnEnd::ServerFin);
        }
    }
    let zl: Vec<&MessageTruth> = t
        .messages
        .iter()
        .filter(|m| pb::MSync::decode(&m.bytes[..]).unwrap().compress_algorimth == Some(1))
        .collect();
    assert!(!zl.is_empty());
    for m in zl {
        let env = pb::MSync::decode(&m.bytes[..]).unwrap();
        assert!(!inflate(&env.payload.unwrap()).is_empty());
    }
}

/// The zlib level changes only the compressed bytes: the same messages at every level, and
/// the level header byte (FLEVEL) says which level wrote them.
#[test]
fn zlib_level() {
    let at = |zlib_level| run(&SynthConfig { zlib: 1.0, zlib_level, ..cfg(42) }).1;
    let inflated = |t: &GroundTruth| -> Vec<(Vec<u8>, u8)> {
        let mut out = Vec::new();
        for m in &t.messages {
            let env = pb::MSync::decode(&m.bytes[..]).unwrap();
            if env.compress_algorimth != Some(1) {
                continue;
            }
            let z = env.payload.unwrap();
            out.push((inflate(&z), z[1] >> 6));
        }
        out
    };
    let (fast, default) = (inflated(&at(1)), inflated(&at(6)));
    assert!(fast.len() > 50);
    assert_eq!(fast.len(), default.len());
    for ((a, la), (b, lb)) in fast.iter().zip(&default) {
        assert_eq!(a, b);
        // FLEVEL 0 is "fastest" (level 1), 2 is the default (6).
        assert_eq!((*la, *lb), (0, 2));
    }
    // Past the last level: the last level (FLEVEL 3, "maximum"), not a panic.
    let over = inflated(&at(12));
    assert_eq!(
        over.iter().map(|(d, _)| d).collect::<Vec<_>>(),
        fast.iter().map(|(d, _)| d).collect::<Vec<_>>()
    );
    assert!(over.iter().all(|(_, l)| *l == 3));
}

#[test]
fn pcapng_nanos_output() {
    let c =
        SynthConfig { format: CaptureFormat::PcapNg, nanos: true, collect_truth: false, ..cfg(51) };
    let (buf, t) = run(&c);
    assert_eq!(&buf[0..4], &[0x0a, 0x0d, 0x0d, 0x0a]);
    assert!(t.messages.is_empty() && t.requests.is_empty());
    assert!(t.packets > 100);
    assert_eq!(t.connections.len(), 6);
}

fn decode_payload<M: Message + Default>(m: &MessageTruth) -> (pb::MSync, M) {
    let env = pb::MSync::decode(&m.bytes[..]).unwrap();
    let p = M::decode(&env.payload.clone().unwrap()[..]).unwrap();
    (env, p)
}

#[test]
fn seed_capture_reproduces_the_log() {
    let mut buf = Vec::new();
    let t = seed_capture(&mut buf, CaptureFormat::Pcap).unwrap();
    let segs = read_pcap(&buf);
    assert_eq!(t.connections.len(), 2);
    assert!(t.connections[0].midstream);
    assert_eq!(t.connections[0].login, LoginTruth::NotCaptured);
    assert_eq!(t.connections[1].login, LoginTruth::Answered { code: 0, latency_ns: 64_000_000 });
    assert_eq!(
        t.connections[1].user,
        "easemob-demo#chatdemoui_zl2@easemob.com/android_3c4df774-1a75-3b61-a912-ffc4d280adae"
    );
    assert!(!segs.iter().any(|s| s.syn && s.src == t.connections[0].client));
    assert!(segs.iter().any(|s| s.syn && s.src == t.connections[1].client));
    assert!(!segs.iter().any(|s| s.fin || s.rst));

    let m = &t.messages;
    assert_eq!(m.len(), 7);
    // 2017-10-26 04:27:28 UTC (12:27:28 at UTC+8, the device's clock in the seed's log)
    let base = 1_508_992_048_000i64;
    let ms: Vec<i64> = m.iter().map(|x| x.ts.0 / 1_000_000 - base).collect();
    assert_eq!(ms, [743, 744, 760, 10_982, 11_033, 108_302, 108_366]);
    let conns: Vec<u32> = m.iter().map(|x| x.conn).collect();
    assert_eq!(conns, [0, 0, 0, 0, 0, 1, 1]);
    let dirs: Vec<Dir> = m.iter().map(|x| x.dir).collect();
    assert_eq!(dirs, [Dir::S2C, Dir::C2S, Dir::S2C, Dir::C2S, Dir::S2C, Dir::C2S, Dir::S2C]);

    let z13 = |res: Option<&str>| pb::Jid {
        name: Some("z13".into()),
        client_resource: res.map(Into::into),
        ..Default::default()
    };
    let (env, notice) = decode_payload::<pb::CommNotice>(&m[0]);
    assert_eq!((env.version, env.command, env.compress_algorimth), (Some(0), Some(2), None));
    assert_eq!(notice.queue, Some(z13(Some("webim_device_uuid"))));

    let (env, pull) = decode_payload::<pb::CommSyncUl>(&m[1]);
    assert_eq!((env.version, env.command, env.compress_algorimth), (Some(0), Some(0), Some(0)));
    assert_eq!(env.guid, None);
    assert_eq!(
        pull,
        pb::CommSyncUl { queue: Some(z13(Some("webim_device_uuid"))), ..Default::default() }
    );

    let (env, dl) = decode_payload::<pb::CommSyncDl>(&m[2]);
    assert_eq!((env.version, env.command, env.compress_algorimth), (Some(0), Some(0), None));
    assert_eq!(dl.status.unwrap().error_code, Some(0));
    assert_eq!(dl.next_key, Some(392_677_053_607_969_272));
    assert_eq!(dl.queue, Some(z13(None)));
    assert_eq!(dl.timestamp, Some(1_508_992_051_178));
    assert_eq!(dl.is_last, None);
    let meta = &dl.metas[0];
    assert_eq!(meta.id, Some(392_677_053_607_969_272));
    assert_eq!(meta.timestamp, Some(1_508_992_051_149));
    assert_eq!(meta.ns, Some(1));
    let from = meta.from.clone().unwrap();
    assert_eq!(from.app_key.as_deref(), Some("easemob-demo#chatdemoui"));
    assert_eq!(from.domain.as_deref(), Some("easemob.com"));
    assert_eq!(from.client_resource.as_deref(), Some("webim_device_uuid"));
    assert_eq!(meta.to.clone().unwrap().client_resource, None);
    let body = pb::MessageBody::decode(&meta.payload.clone().unwrap()[..]).unwrap();
    assert_eq!(body.r#type, Some(1));
    assert_eq!(body.contents[0].r#type, Some(0));
    assert_eq!(body.contents[0].text.as_deref(), Some("123"));
    assert_eq!(body.ext[0].key.as_deref(), Some("weichat"));
    assert_eq!(body.ext[0].r#type, Some(8));

    let (env, ul) = decode_payload::<pb::CommSyncUl>(&m[3]);
    assert_eq!(env.compress_algorimth, Some(0));
    let meta = ul.meta.unwrap();
    assert_eq!(meta.id, Some(15_089_920_589_600_003));
    assert_eq!(meta.timestamp, None);
    let body = pb::MessageBody::decode(&meta.payload.unwrap()[..]).unwrap();
    assert_eq!(body.contents[0].text.as_deref(), Some("456"));
    assert!(body.ext.is_empty());

    let (_, ack) = decode_payload::<pb::CommSyncDl>(&m[4]);
    assert_eq!(ack.meta_id, Some(15_089_920_589_600_003));
    assert_eq!(ack.server_id, Some(392_677_097_702_688_788));
    assert_eq!(ack.timestamp, Some(1_508_992_061_436));
    assert!(ack.metas.is_empty() && ack.next_key.is_none());

    let (env, prov) = decode_payload::<pb::Provision>(&m[5]);
    assert_eq!(env.guid.unwrap().name.as_deref(), Some("zl2"));
    assert!(env.auth.is_some());
    assert_eq!(env.compress_algorimth, Some(0));
    assert_eq!(prov.os_type, Some(1));
    assert_eq!(prov.version.as_deref(), Some("3.3.4"));
    assert_eq!(prov.compress_type, [0]);
    assert_eq!(prov.is_manual_login, Some(true));
    assert_eq!(prov.device_name.as_deref(), Some("LGENexus 5"));
    assert!(prov.password.is_some() && prov.status.is_none() && prov.auth.is_none());

    let (env, prov) = decode_payload::<pb::Provision>(&m[6]);
    assert_eq!((env.version, env.command, env.compress_algorimth), (Some(0), Some(3), None));
    assert_eq!(prov.status.unwrap().error_code, Some(0));
    assert_eq!(prov.compress_type, [0]);
    assert!(prov.os_type.is_none() && prov.password.is_none());

    let kinds: Vec<(RequestKind, Option<i64>)> =
        t.requests.iter().map(|r| (r.kind, r.latency_ns)).collect();
    assert_eq!(
        kinds,
        [
            (RequestKind::Pull, Some(16_000_000)),
            (RequestKind::Send, Some(51_000_000)),
            (RequestKind::Provision, Some(64_000_000)),
        ]
    );
    for ((conn, dir), (map, _)) in &streams(&t, &segs) {
        assert_eq!(frames(&runs(map)[0]), truth_frames(&t, *conn, *dir));
    }
    let mut again = Vec::new();
    seed_capture(&mut again, CaptureFormat::Pcap).unwrap();
    assert_eq!(buf, again);
}

/// A WebSocket session's whole byte streams, parsed back with the dissector's WebSocket parser.
#[test]
fn websocket_sessions_parse_back_frame_by_frame() {
    use crate::frame::websocket::{Control, WebSocket, WsConfig, WsEvent};
    use crate::frame::MsyncCheck;
    use crate::msync::lz4::Lz4Stream;

    for takeover in [true, false] {
        let c = SynthConfig {
            transport: SynthTransport::WebSocket,
            ws_deflate: Some(WsDeflate { context_takeover: takeover }),
            ws_fragment: 1.0,
            ws_ping: 0.5,
            lz4: Some(Lz4Mode { direction: Lz4Direction::Bi }),
            ..cfg(3)
        };
        let (cap, t) = run(&c);
        let segs = read_pcap(&cap);
        let st = streams(&t, &segs);
        let mut interleaved = 0;
        for (ci, conn) in t.connections.iter().enumerate() {
            let ci = ci as u32;
            let stream = |d: Dir| {
                let r = runs(&st.get(&(ci, d)).unwrap().0);
                assert_eq!(r.len(), 1, "no loss: one run");
                r.into_iter().next().unwrap()
            };
            let (c2s, s2c) = (stream(Dir::C2S), stream(Dir::S2C));
            // The accept key answers this session's key.
            let head = String::from_utf8_lossy(
                &c2s[..c2s.windows(4).position(|w| w == b"\r\n\r\n").unwrap()],
            )
            .into_owned();
            let key = head.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).unwrap();
            let want = format!("Sec-WebSocket-Accept: {}\r\n", ws::accept_key(key));
            assert!(String::from_utf8_lossy(&s2c).contains(&want));

            let mut p = WebSocket::new(WsConfig::default(), MsyncCheck);
            // Per direction: offset, wire length, data, frames, deflated.
            type Got = Vec<(u64, u64, Vec<u8>, u32, bool)>;
            let mut got: [Got; 2] = [Vec::new(), Vec::new()];
            let mut pings = Vec::new();
            let mut pongs = 0;
            let mut closes = Vec::new();
            let mut emit = |e: WsEvent<'_>| match e {
                WsEvent::Upgrade(_) => {}
                WsEvent::Message(m) => {
                    assert!(m.binary);
                    got[m.dir.index()].push((
                        m.offset,
                        m.wire_len,
                        m.data.to_vec(),
                        m.frames,
                        m.deflated,
                    ))
                }
                WsEvent::Control { dir, offset, control, .. } => match control {
                    Control::Ping { payload } => {
                        assert_eq!(dir, Dir::S2C);
                        pings.push((offset, payload.to_vec()))
                    }
                    Control::Pong { .. } => {
                        assert_eq!(dir, Dir::C2S);
                        pongs += 1
                    }
                    Control::Close { code, .. } => closes.push((dir, code)),
                },
                other => panic!("conn {ci}: {other:?}"),
            };
            p.feed(Dir::C2S, 0, &c2s, &mut emit);
            p.feed(Dir::S2C, 0, &s2c, &mut emit);
            p.finish(&mut emit);
            assert_eq!(pings.len(), pongs);
            match conn.ws_close {
                Some(code) => assert_eq!(closes, vec![(Dir::C2S, code), (Dir::S2C, code)]),
                None => assert!(closes.is_empty()),
            }
            for dir in [Dir::C2S, Dir::S2C] {
                let truth = truth_frames(&t, ci, dir);
                let msgs = &got[dir.index()];
                assert_eq!(msgs.len(), truth.len());
                let mut lz4 = Lz4Stream::new();
                for (i, ((_, _, data, frames, deflated), want)) in
                    msgs.iter().zip(&truth).enumerate()
                {
                    assert!(*deflated);
                    assert!(*frames >= 2, "every message fragmented");
                    // The PROVISION pair is never wrapped.
                    if i == 0 {
                        assert_eq!(data, want);
                    } else {
                        assert_eq!(lz4.unwrap(data, 1 << 20).unwrap().data, &want[..]);
                    }
                }
                if dir == Dir::S2C {
                    // A ping inside a message: after its first frame, before its end.
                    interleaved += pings
                        .iter()
                        .filter(|(o, _)| msgs.iter().any(|m| m.0 < *o && *o < m.0 + m.1))
                        .count();
                }
            }
        }
        assert!(interleaved > 0, "some ping falls between fragments");
    }
}

#[test]
fn lz4_negotiation_as_the_real_server_answers() {
    for (direction, want) in [
        (Lz4Direction::OnlyUp, None),
        (Lz4Direction::OnlyDown, Some(1)),
        (Lz4Direction::Bi, Some(2)),
    ] {
        let c = SynthConfig { lz4: Some(Lz4Mode { direction }), ..cfg(4) };
        let (_, t) = run(&c);
        let provisions: Vec<(Dir, pb::Provision)> = t
            .messages
            .iter()
            .filter(|m| m.command == Command::Provision as i32)
            .map(|m| {
                let env = pb::MSync::decode(&m.bytes[..]).unwrap();
                (m.dir, pb::Provision::decode(env.payload.unwrap().as_slice()).unwrap())
            })
            .collect();
        assert!(!provisions.is_empty());
        for (dir, p) in provisions {
            assert_eq!(p.protocol_compress_type, vec![COMPRESS_LZ4]);
            if dir == Dir::S2C {
                assert_eq!(p.protocol_compress_direction, want);
            }
        }
    }
}
