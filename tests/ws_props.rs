//! Property tests of WebSocket and LZ4 captures through the whole offline pipeline, against the
//! synthesizer's ground truth (the unwrapped MSync bytes of every message): however the
//! synthesizer frames (fragments, pings, permessage-deflate with or without context takeover),
//! wraps (LZ4 in either or both directions) and impairs (segmentation, reordering,
//! duplication, retransmission) the sessions, the dissector yields exactly the messages sent.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use msyncdump::capture::{FileReader, PacketSource};
use msyncdump::net::Dir;
use msyncdump::pipeline::{
    run_sources, Consumer, Event, Pipeline, PipelineConfig, Totals, TransportNote,
};
use msyncdump::synth::{
    self, GroundTruth, Lz4Direction, Lz4Mode, SynthConfig, SynthTransport, WsDeflate,
};
use proptest::prelude::*;

type Key = (u32, usize);

#[derive(Default)]
struct Collect {
    msgs: BTreeMap<Key, Vec<Vec<u8>>>,
    /// Stream offset of each message, beside `msgs`.
    offsets: BTreeMap<Key, Vec<u64>>,
    /// Offset of the first gap per (connection, direction).
    first_gap: BTreeMap<Key, u64>,
    errors: u64,
    notes: Vec<(u32, Dir, TransportNote)>,
}

impl Consumer for Collect {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
        match ev {
            Event::Message { ctx, raw, .. } => {
                let k = (ctx.conn.id.0, ctx.dir.index());
                self.msgs.entry(k).or_default().push(raw.to_vec());
                self.offsets.entry(k).or_default().push(ctx.stream_offset);
            }
            Event::DecodeError { .. } => self.errors += 1,
            Event::Gap { conn, dir, offset, .. } => {
                self.first_gap.entry((conn.0, dir.index())).or_insert(*offset);
            }
            Event::Transport { conn, dir, note, .. } => {
                self.notes.push((conn.0, *dir, (*note).clone()))
            }
            _ => {}
        }
        Ok(())
    }
    fn finish(&mut self, _t: &Totals) -> io::Result<()> {
        Ok(())
    }
}

impl Collect {
    fn count(&self, f: impl Fn(&TransportNote) -> bool) -> usize {
        self.notes.iter().filter(|n| f(&n.2)).count()
    }
}

fn dissect(capture: Vec<u8>) -> (Collect, Totals) {
    let reader = FileReader::from_reader("mem".into(), Box::new(io::Cursor::new(capture))).unwrap();
    let mut sources = std::iter::once(Ok(Box::new(reader) as Box<dyn PacketSource>))
        .collect::<Vec<_>>()
        .into_iter();
    let mut p = Pipeline::new(PipelineConfig::default(), Collect::default());
    let outcome = run_sources(&mut sources, &mut p, &mut |l| panic!("{l}")).unwrap();
    assert_eq!(outcome.errors, 0);
    p.finish().unwrap()
}

fn generate(cfg: &SynthConfig) -> (Vec<u8>, GroundTruth) {
    let mut buf = Vec::new();
    let truth = synth::generate(cfg, &mut buf).unwrap();
    (buf, truth)
}

/// The truth's messages per (connection, direction), with their `lost` flags.
fn truth_by_dir(truth: &GroundTruth) -> BTreeMap<Key, Vec<(Vec<u8>, bool)>> {
    let mut m: BTreeMap<Key, Vec<(Vec<u8>, bool)>> = BTreeMap::new();
    for t in &truth.messages {
        m.entry((t.conn, t.dir.index())).or_default().push((t.bytes.clone(), t.lost));
    }
    m
}

fn expected(truth: &GroundTruth) -> BTreeMap<Key, Vec<Vec<u8>>> {
    truth_by_dir(truth)
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().map(|(b, _)| b).collect()))
        .collect()
}

fn deflate_of(k: u8) -> Option<WsDeflate> {
    match k {
        1 => Some(WsDeflate { context_takeover: true }),
        2 => Some(WsDeflate { context_takeover: false }),
        _ => None,
    }
}

fn lz4_of(k: u8) -> Option<Lz4Mode> {
    let direction = match k {
        1 => Lz4Direction::OnlyUp,
        2 => Lz4Direction::OnlyDown,
        3 => Lz4Direction::Bi,
        _ => return None,
    };
    Some(Lz4Mode { direction })
}

#[allow(clippy::too_many_arguments)]
fn cfg(
    seed: u64,
    clients: usize,
    mss: usize,
    websocket: bool,
    deflate: u8,
    fragment: f64,
    ping: f64,
    lz4: u8,
) -> SynthConfig {
    SynthConfig {
        seed,
        clients,
        duration_secs: 30.0,
        mss,
        transport: if websocket { SynthTransport::WebSocket } else { SynthTransport::Tcp },
        ws_deflate: deflate_of(deflate),
        ws_fragment: fragment,
        ws_ping: ping,
        lz4: lz4_of(lz4),
        ..SynthConfig::default()
    }
}

/// Messages per (connection, direction): short enough to read in a failure.
fn counts(m: &BTreeMap<Key, Vec<Vec<u8>>>) -> Vec<(Key, usize)> {
    m.iter().map(|(k, v)| (*k, v.len())).collect()
}

/// Whether `got` appears in `want` in order (not necessarily contiguously).
fn subsequence(got: &[Vec<u8>], want: &[Vec<u8>]) -> bool {
    let mut it = want.iter();
    got.iter().all(|g| it.any(|w| w == g))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn framing_wrapping_and_impairments_change_nothing(
        seed in any::<u64>(),
        clients in 1usize..4,
        mss in 24usize..1500,
        websocket in any::<bool>(),
        deflate in 0u8..3,
        fragment in 0.0f64..0.6,
        ping in 0.0f64..0.5,
        lz4 in 0u8..4,
        reorder in 0.0f64..0.4,
        duplicate in 0.0f64..0.3,
        retransmit in 0.0f64..0.3,
    ) {
        let c = SynthConfig {
            reorder,
            duplicate,
            retransmit,
            ..cfg(seed, clients, mss, websocket, deflate, fragment, ping, lz4)
        };
        let (cap, truth) = generate(&c);
        prop_assert!(truth.messages.iter().all(|m| !m.lost));
        let (got, totals) = dissect(cap);
        let want = expected(&truth);
        prop_assert_eq!(counts(&got.msgs), counts(&want));
        prop_assert!(got.msgs == want);
        prop_assert_eq!(got.errors, 0);
        prop_assert_eq!(totals.gap_bytes, 0);
        prop_assert_eq!(totals.lz4_undecodable, 0);
        prop_assert_eq!(got.count(|n| matches!(n, TransportNote::Lz4HistoryLost)), 0);
        prop_assert_eq!(got.count(|n| matches!(n, TransportNote::Lz4Crc { .. })), 0);
        prop_assert_eq!(got.count(|n| matches!(n, TransportNote::WsProblem { .. })), 0);
        // Every server ping is answered.
        prop_assert_eq!(
            got.count(|n| matches!(n, TransportNote::WsPing { .. })),
            got.count(|n| matches!(n, TransportNote::WsPong { .. }))
        );
        if websocket {
            prop_assert_eq!(totals.websocket_connections, truth.connections.len() as u64);
        }
        prop_assert_eq!(totals.messages, truth.messages.len() as u64);
    }

    /// With loss, a message whose bytes were lost is gone, and so may be later ones of the
    /// same direction: after a gap the LZ4 history (64 KiB of earlier messages) and a
    /// context-takeover deflate window have a hole, so messages referring to it cannot be
    /// rebuilt, and a WebSocket direction resynchronises only on a whole (unfragmented)
    /// binary frame that looks like MSync. What must hold: everything before a direction's
    /// first gap is exact; what comes after is a subsequence of the truth (never a wrong
    /// message: the LZ4 CRC and the protobuf decoder reject guesses); the history loss is
    /// reported once per connection; nothing panics; connections without a gap are exact.
    /// When the server's PROVISION answer itself was lost the dissector never learns that LZ4
    /// was enabled: the wrapped directions of that connection are not checked (their
    /// envelopes may even pass for MSync messages, since an LZ4 block of a short message is
    /// mostly literals; the pipeline does not yet guess the wrapping when the answer is
    /// missing).
    #[test]
    fn loss_loses_only_what_it_must(
        seed in any::<u64>(),
        clients in 1usize..4,
        mss in 100usize..1500,
        websocket in any::<bool>(),
        deflate in 0u8..3,
        fragment in 0.0f64..0.4,
        ping in 0.0f64..0.3,
        lz4 in 0u8..4,
        loss in 0.005f64..0.06,
        reorder in 0.0f64..0.2,
    ) {
        let c = SynthConfig {
            loss,
            reorder,
            ..cfg(seed, clients, mss, websocket, deflate, fragment, ping, lz4)
        };
        let (cap, truth) = generate(&c);
        let (got, totals) = dissect(cap);
        let want = truth_by_dir(&truth);
        let unnegotiated: BTreeSet<u32> = truth
            .messages
            .iter()
            .filter(|m| m.lost && m.dir == Dir::S2C && m.command == 3)
            .map(|m| m.conn)
            .collect();
        let blind = |k: &Key| {
            let dir = if k.1 == Dir::C2S.index() { Dir::C2S } else { Dir::S2C };
            unnegotiated.contains(&k.0) && c.lz4.is_some_and(|m| m.wraps(dir))
        };
        for (k, msgs) in &got.msgs {
            let all: Vec<Vec<u8>> =
                want.get(k).map(|v| v.iter().map(|m| m.0.clone()).collect()).unwrap_or_default();
            let kept: Vec<Vec<u8>> = want
                .get(k)
                .map(|v| v.iter().filter(|m| !m.1).map(|m| m.0.clone()).collect())
                .unwrap_or_default();
            if blind(k) {
                continue;
            }
            // After a gap the WebSocket parser resynchronises on the first frame header whose
            // (inflated) payload looks like MSync; in random bytes that can be a false
            // positive (a few bytes that inflate to a well-formed envelope). Such guesses may
            // only appear after a gap; the real messages keep their order.
            let gap_at = got.first_gap.get(k).copied().unwrap_or(u64::MAX);
            type Placed<'a> = Vec<(u64, &'a Vec<u8>)>;
            let (real, guessed): (Placed, Placed) = got.offsets[k]
                .iter()
                .copied()
                .zip(msgs)
                .partition(|(_, m)| kept.contains(m));
            prop_assert!(guessed.iter().all(|(o, _)| *o >= gap_at), "{:?}: a wrong message", k);
            let real: Vec<Vec<u8>> = real.into_iter().map(|(_, m)| m.clone()).collect();
            prop_assert!(subsequence(&real, &kept), "{:?}: not a subsequence of the truth", k);
            // The other direction's bytes matter too: the server's 101 carries the deflate
            // parameters and its PROVISION answer the LZ4 choice.
            let other_gap = got.first_gap.contains_key(&(k.0, 1 - k.1));
            if other_gap {
                continue;
            }
            let before = match got.first_gap.get(k) {
                Some(&g) => got.offsets[k].iter().take_while(|&&o| o < g).count(),
                None => msgs.len(),
            };
            prop_assert!(msgs[..before] == all[..before], "{:?}: wrong before the first gap", k);
            if !got.first_gap.contains_key(k) {
                prop_assert_eq!(msgs.len(), all.len(), "{:?}: no gap, yet messages missing", k);
                prop_assert!(msgs == &all);
            }
        }
        for (k, v) in &want {
            let gaps = got.first_gap.contains_key(k) || got.first_gap.contains_key(&(k.0, 1 - k.1));
            // A connection whose upgrade request was lost is not recognised at all (and its
            // gaps are not reported): nothing of it is shown.
            let seen = got.msgs.keys().any(|g| g.0 == k.0) || got.notes.iter().any(|n| n.0 == k.0);
            if !got.msgs.contains_key(k) && !gaps && !blind(k) && seen {
                prop_assert!(v.is_empty(), "{:?}: messages missing without a gap", k);
            }
        }
        let lost_notes: BTreeSet<u32> = got
            .notes
            .iter()
            .filter(|n| matches!(n.2, TransportNote::Lz4HistoryLost))
            .map(|n| n.0)
            .collect();
        prop_assert_eq!(
            lost_notes.len(),
            got.count(|n| matches!(n, TransportNote::Lz4HistoryLost)),
            "history loss reported more than once on a connection"
        );
        if c.lz4.is_none() {
            prop_assert!(lost_notes.is_empty());
            prop_assert_eq!(totals.lz4_undecodable, 0);
        }
        if !lost_notes.is_empty() {
            prop_assert!(totals.lz4_undecodable > 0);
        }
        let got_total: usize = got.msgs.values().map(Vec::len).sum();
        prop_assert_eq!(totals.messages, got_total as u64);
        prop_assert_eq!(totals.gap_bytes > 0, truth.impairments.lost_segments > 0);
    }
}

#[test]
fn refused_upgrades_and_close_frames_are_reported() {
    let mut kinds = BTreeSet::new();
    for seed in 21..26 {
        let c = SynthConfig { ws_reject: 0.3, ..cfg(seed, 10, 1448, true, 1, 0.2, 0.2, 3) };
        let (cap, truth) = generate(&c);
        let (got, _) = dissect(cap);
        assert!(truth.connections.iter().any(|c| !c.ws_rejected));
        for (i, ct) in truth.connections.iter().enumerate() {
            let i = i as u32;
            let notes: Vec<&TransportNote> =
                got.notes.iter().filter(|n| n.0 == i).map(|n| &n.2).collect();
            let refused = notes.iter().any(|n| {
                matches!(n, TransportNote::WsRejected { status: 401, reason } if reason == "Unauthorized")
            });
            assert_eq!(refused, ct.ws_rejected, "conn {i}: {notes:?}");
            let upgraded = notes.iter().any(|n| matches!(n, TransportNote::WsUpgrade { .. }));
            assert_eq!(upgraded, !ct.ws_rejected);
            if ct.ws_rejected {
                assert!(!got.msgs.contains_key(&(i, 0)) && !got.msgs.contains_key(&(i, 1)));
                assert_eq!(ct.messages, [0, 0]);
                kinds.insert("rejected");
            }
            let closes: Vec<(Dir, Option<u16>)> = got
                .notes
                .iter()
                .filter(|n| n.0 == i)
                .filter_map(|n| match &n.2 {
                    TransportNote::WsClose { code, .. } => Some((n.1, *code)),
                    _ => None,
                })
                .collect();
            match ct.ws_close {
                Some(code) => {
                    assert_eq!(closes, vec![(Dir::C2S, code), (Dir::S2C, code)]);
                    kinds.insert(if code.is_some() { "close 1000" } else { "close" });
                }
                None => assert!(closes.is_empty()),
            }
        }
        assert_eq!(got.msgs, expected(&truth));
    }
    assert_eq!(kinds.len(), 3, "{kinds:?}");
}

#[test]
fn midstream_websocket_sessions_are_picked_up() {
    // Without context takeover every message inflates on its own, so frames picked up after
    // the upgrade decode in full.
    let c = SynthConfig { midstream: true, ..cfg(5, 6, 600, true, 2, 0.0, 0.2, 0) };
    let (cap, truth) = generate(&c);
    let (got, totals) = dissect(cap);
    assert_eq!(got.msgs, expected(&truth));
    assert_eq!(got.errors, 0);
    assert!(totals.net.midstream_connections > 0);
    assert_eq!(totals.websocket_connections, truth.connections.len() as u64);
}
