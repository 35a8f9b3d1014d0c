//! Synthesize a small capture from an arbitrary configuration, dissect it, and compare every
//! connection's messages in each direction with the synthesizer's ground truth.
//! No loss is injected: reordering, duplication and retransmission must all be undone.
#![no_main]

use std::collections::BTreeMap;
use std::io::Cursor;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use msyncdump::capture::{CaptureError, FileReader, PacketSource};
use msyncdump::net::Dir;
use msyncdump::pipeline::{run_sources, Consumer, Event, Pipeline, PipelineConfig, Totals};
use msyncdump::synth::{generate, CaptureFormat, SynthConfig};

#[derive(Arbitrary, Debug)]
struct Cfg {
    seed: u64,
    clients: u8,
    duration: u8,
    mss: u16,
    reorder: u8,
    duplicate: u8,
    retransmit: u8,
    zlib: u8,
    errors: u8,
    unanswered: u8,
    pcapng: bool,
    nanos: bool,
    ipv6: bool,
}

#[derive(Default)]
struct Collect {
    /// (connection, direction) → message bytes in stream order.
    msgs: BTreeMap<(u32, usize), Vec<Vec<u8>>>,
}

impl Consumer for Collect {
    fn event(&mut self, ev: &Event<'_>) -> std::io::Result<()> {
        match ev {
            Event::Message { ctx, raw, .. } | Event::DecodeError { ctx, raw, .. } => {
                self.msgs.entry((ctx.conn.id.0, ctx.dir.index())).or_default().push(raw.to_vec());
            }
            _ => {}
        }
        Ok(())
    }
    fn finish(&mut self, _: &Totals) -> std::io::Result<()> {
        Ok(())
    }
}

fn frac(b: u8, max: f64) -> f64 {
    f64::from(b) / 255.0 * max
}

fuzz_target!(|c: Cfg| {
    let cfg = SynthConfig {
        seed: c.seed,
        clients: usize::from(c.clients % 4) + 1,
        // Short captures: many configurations a second find more than a few long ones.
        duration_secs: f64::from(c.duration % 8) + 1.0,
        mean_gap_secs: 1.0,
        mss: usize::from(c.mss % 1460).max(16),
        reorder: frac(c.reorder, 0.3),
        duplicate: frac(c.duplicate, 0.3),
        retransmit: frac(c.retransmit, 0.3),
        zlib: frac(c.zlib, 1.0),
        // Deflating at zlib's default level was half of each execution; what is under test is
        // the inflating side, which level 1 exercises as well (Huffman blocks, back-references).
        zlib_level: 1,
        error_rate: frac(c.errors, 1.0),
        unanswered: frac(c.unanswered, 1.0),
        format: if c.pcapng { CaptureFormat::PcapNg } else { CaptureFormat::Pcap },
        nanos: c.nanos,
        ipv6: c.ipv6,
        ..SynthConfig::default()
    };
    let mut file = Vec::new();
    let Ok(truth) = generate(&cfg, &mut file) else { return };
    let mut want: BTreeMap<(u32, usize), Vec<Vec<u8>>> = BTreeMap::new();
    for m in &truth.messages {
        want.entry((m.conn, m.dir.index())).or_default().push(m.bytes.clone());
    }

    let src: Result<Box<dyn PacketSource>, CaptureError> =
        FileReader::from_reader("synth".into(), Box::new(Cursor::new(file)))
            .map(|r| Box::new(r) as Box<dyn PacketSource>);
    let mut pipeline = Pipeline::new(PipelineConfig::default(), Collect::default());
    let outcome = run_sources(&mut std::iter::once(src), &mut pipeline, &mut |l| {
        panic!("synthesized capture reported: {l}")
    });
    assert!(outcome.is_ok());
    let Ok((got, totals)) = pipeline.finish() else { panic!("pipeline failed") };
    assert_eq!(totals.decode_errors, 0, "decode errors on a synthesized capture");
    assert_eq!(totals.gap_bytes, 0, "gaps on a capture without loss");
    for ((conn, dir), msgs) in &want {
        let d = if *dir == Dir::C2S.index() { "c2s" } else { "s2c" };
        let have = got.msgs.get(&(*conn, *dir)).map(Vec::len).unwrap_or(0);
        assert_eq!(
            got.msgs.get(&(*conn, *dir)),
            Some(msgs),
            "conn {conn} {d}: {have} messages dissected, {} synthesized",
            msgs.len()
        );
    }
    assert_eq!(got.msgs.len(), want.len(), "messages on streams the synthesizer never wrote");
});
