//! Property tests over the whole offline pipeline: however the synthesizer segments, reorders,
//! duplicates and retransmits a session's TCP streams, the dissector yields exactly the
//! messages of the clean capture; with loss, exactly those minus the ones the loss touched, and
//! the loss is reported as gap bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::io;

use msyncdump::capture::{FileReader, PacketSource};
use msyncdump::net::Dir;
use msyncdump::pipeline::{run_sources, Consumer, Event, Pipeline, PipelineConfig, Totals};
use msyncdump::synth::{self, CaptureFormat, GroundTruth, SynthConfig};
use proptest::prelude::*;

/// Every decoded message's bytes per (connection, direction), in order; errors and gaps.
#[derive(Default)]
struct Collect {
    msgs: BTreeMap<(u32, usize), Vec<Vec<u8>>>,
    errors: u64,
    gaps: u64,
}

impl Consumer for Collect {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
        match ev {
            Event::Message { ctx, raw, .. } => {
                self.msgs.entry((ctx.conn.id.0, ctx.dir.index())).or_default().push(raw.to_vec())
            }
            Event::DecodeError { .. } => self.errors += 1,
            Event::Gap { len, .. } => self.gaps += len,
            _ => {}
        }
        Ok(())
    }
    fn finish(&mut self, _t: &Totals) -> io::Result<()> {
        Ok(())
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

fn expected(truth: &GroundTruth, keep_lost: bool) -> BTreeMap<(u32, usize), Vec<Vec<u8>>> {
    let mut m: BTreeMap<(u32, usize), Vec<Vec<u8>>> = BTreeMap::new();
    for t in &truth.messages {
        if keep_lost || !t.lost {
            m.entry((t.conn, t.dir.index())).or_default().push(t.bytes.clone());
        }
    }
    m
}

fn generate(cfg: &SynthConfig) -> (Vec<u8>, GroundTruth) {
    let mut buf = Vec::new();
    let truth = synth::generate(cfg, &mut buf).unwrap();
    (buf, truth)
}

fn base(seed: u64, clients: usize, mss: usize, pcapng: bool) -> SynthConfig {
    SynthConfig {
        seed,
        clients,
        duration_secs: 40.0,
        mss,
        format: if pcapng { CaptureFormat::PcapNg } else { CaptureFormat::Pcap },
        ..SynthConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn segmentation_reordering_duplication_change_nothing(
        seed in any::<u64>(),
        clients in 1usize..4,
        mss in 24usize..1500,
        reorder in 0.0f64..0.5,
        duplicate in 0.0f64..0.3,
        retransmit in 0.0f64..0.3,
        zlib in 0.0f64..0.5,
        pcapng in any::<bool>(),
    ) {
        let clean_cfg = SynthConfig { zlib, ..base(seed, clients, 1448, pcapng) };
        let (clean, truth) = generate(&clean_cfg);
        let impaired_cfg = SynthConfig { mss, reorder, duplicate, retransmit, ..clean_cfg.clone() };
        let (impaired, truth2) = generate(&impaired_cfg);
        // Timing (and so ids derived from time) depends on the segmentation, so each capture
        // is checked against its own ground truth.
        let (a, _) = dissect(clean);
        let (b, tb) = dissect(impaired);
        prop_assert_eq!(&a.msgs, &expected(&truth, true));
        prop_assert_eq!(&b.msgs, &expected(&truth2, true));
        prop_assert!(truth2.messages.iter().all(|m| !m.lost));
        prop_assert_eq!(b.errors, 0);
        prop_assert_eq!(tb.gap_bytes, 0);
    }

    #[test]
    fn loss_removes_exactly_the_touched_messages(
        seed in any::<u64>(),
        clients in 1usize..4,
        mss in 100usize..1500,
        loss in 0.005f64..0.08,
        reorder in 0.0f64..0.2,
    ) {
        let cfg = SynthConfig { loss, reorder, ..base(seed, clients, mss, false) };
        let (cap, truth) = generate(&cfg);
        let (got, totals) = dissect(cap);
        prop_assert_eq!(&got.msgs, &expected(&truth, false));
        let any_lost = truth.messages.iter().any(|m| m.lost);
        prop_assert_eq!(totals.gap_bytes > 0, truth.impairments.lost_segments > 0);
        if any_lost {
            prop_assert!(totals.gap_bytes > 0);
        }
    }
}

#[test]
fn midstream_capture_recovers_every_captured_message() {
    let cfg = SynthConfig { midstream: true, clients: 6, ..base(11, 6, 300, false) };
    let (cap, truth) = generate(&cfg);
    let (got, totals) = dissect(cap);
    assert_eq!(got.msgs, expected(&truth, false));
    assert_eq!(got.errors, 0);
    assert!(totals.net.midstream_connections > 0);
}

#[test]
fn directions_follow_the_truth() {
    let (cap, truth) = generate(&base(5, 3, 1448, false));
    let (got, _) = dissect(cap);
    let c2s: usize =
        got.msgs.iter().filter(|(k, _)| k.1 == Dir::C2S.index()).map(|(_, v)| v.len()).sum();
    let want = truth.messages.iter().filter(|m| m.dir == Dir::C2S).count();
    assert_eq!(c2s, want);
}
