//! Throughput of each stage of the pipeline, over one synthesized capture held in memory (a
//! few MB, hundreds of concurrent sessions, 300-byte segments, as `benches/throughput.sh` uses
//! at scale). Every stage is fed what the previous one produced, prepared once up front, so a
//! figure measures that stage alone:
//!
//! - `records`: iterating the capture's records (`FileReader` over a `Cursor`);
//! - `net`: L2–L4 parsing, the connection table and TCP reassembly (`Net::packet`, no-op sink);
//! - `split`: the length-prefix splitter over the reassembled streams, in capture order;
//! - `decode`: `msync::decode::decode` of every frame (and `decode_metas` with no meta bodies,
//!   as the raw-byte printers ask for);
//! - `summary` / `json`: rendering one summary line / one JSON object per message;
//! - `pipeline`: everything after the records, with a consumer that does nothing.
//!
//! Byte throughputs are of each stage's input (capture bytes, stream bytes or frame bytes).

use std::collections::HashMap;
use std::hint::black_box;
use std::io::{self, Cursor};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use msyncdump::capture::{FileReader, OwnedPacket, PacketSource};
use msyncdump::frame::{LengthPrefixSplitter, MsyncCheck, SplitEvent};
use msyncdump::msync::decode::{decode, decode_metas, DecodeLimits, Decoded};
use msyncdump::msync::render::{json, summary, RenderOpts};
use msyncdump::net::{Dir, Net, NetConfig, PktCtx, StreamEvent, StreamSink};
use msyncdump::pipeline::{Consumer, Event, Pipeline, PipelineConfig, Totals};
use msyncdump::synth::{self, SynthConfig};

const MAX_FRAME: usize = 16 << 20;

/// In-order stream data as reassembly hands it over: (connection, direction, offset, bytes).
type Chunk = (u32, Dir, u64, Vec<u8>);

fn capture() -> Vec<u8> {
    let cfg = SynthConfig {
        seed: 7,
        clients: 400,
        duration_secs: 40.0,
        mss: 300,
        collect_truth: false,
        ..SynthConfig::default()
    };
    let mut out = Vec::new();
    if let Err(e) = synth::generate(&cfg, &mut out) {
        panic!("synth: {e}");
    }
    out
}

fn reader(bytes: &'static [u8]) -> FileReader {
    match FileReader::from_reader("bench".into(), Box::new(Cursor::new(bytes))) {
        Ok(rd) => rd,
        Err(e) => panic!("{e}"),
    }
}

fn records(bytes: &'static [u8]) -> Vec<OwnedPacket> {
    let mut rd = reader(bytes);
    let mut out = Vec::new();
    loop {
        match rd.next_packet() {
            Ok(Some(p)) => out.push(OwnedPacket::of(&p)),
            Ok(None) => break,
            Err(e) => panic!("{e}"),
        }
    }
    out
}

struct Noop;

impl StreamSink for Noop {
    fn event(&mut self, _pkt: PktCtx, ev: StreamEvent<'_>) {
        black_box(&ev);
    }
}

struct Collect(Vec<Chunk>);

impl StreamSink for Collect {
    fn event(&mut self, _pkt: PktCtx, ev: StreamEvent<'_>) {
        if let StreamEvent::Data { conn, dir, offset, data } = ev {
            self.0.push((conn.0, dir, offset, data.to_vec()));
        }
    }
}

fn reassemble(recs: &[OwnedPacket], sink: &mut dyn StreamSink) {
    let mut net = Net::new(NetConfig::default());
    for r in recs {
        net.packet(&r.packet(), sink);
    }
    net.finish(sink);
}

/// Feeds every chunk to its direction's splitter; `on_frame` sees each complete frame.
fn split(chunks: &[Chunk], on_frame: &mut dyn FnMut(Dir, &[u8])) {
    let mut splitters: HashMap<(u32, Dir), LengthPrefixSplitter> = HashMap::new();
    for (conn, dir, offset, data) in chunks {
        let sp = splitters
            .entry((*conn, *dir))
            .or_insert_with(|| LengthPrefixSplitter::new(MAX_FRAME, true, 0));
        sp.feed(*offset, data, &MsyncCheck, &mut |ev| {
            if let SplitEvent::Frame { body, .. } = ev {
                on_frame(*dir, body);
            }
        });
    }
}

struct NoopConsumer;

impl Consumer for NoopConsumer {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
        black_box(ev);
        Ok(())
    }
    fn finish(&mut self, _totals: &Totals) -> io::Result<()> {
        Ok(())
    }
}

fn bench(c: &mut Criterion) {
    let bytes: &'static [u8] = Vec::leak(capture());
    let recs = records(bytes);
    let mut chunks = Collect(Vec::new());
    reassemble(&recs, &mut chunks);
    let chunks = chunks.0;
    let stream_bytes: usize = chunks.iter().map(|c| c.3.len()).sum();
    let mut frames: Vec<(Dir, Vec<u8>)> = Vec::new();
    split(&chunks, &mut |dir, body| frames.push((dir, body.to_vec())));
    let frame_bytes: usize = frames.iter().map(|f| f.1.len()).sum();
    let limits = DecodeLimits::default();
    let decoded: Vec<(Dir, Decoded)> = frames
        .iter()
        .filter_map(|(dir, f)| decode(f, *dir, &limits).ok().map(|d| (*dir, d)))
        .collect();
    assert_eq!(decoded.len(), frames.len(), "synthesized frames must all decode");
    eprintln!(
        "capture: {} bytes, {} records; {} stream bytes in {} chunks; {} frames, {} bytes",
        bytes.len(),
        recs.len(),
        stream_bytes,
        chunks.len(),
        frames.len(),
        frame_bytes
    );
    let opts = RenderOpts::default();

    let mut g = c.benchmark_group("stages");
    g.sample_size(10).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));

    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("records", |b| {
        b.iter(|| {
            let mut rd = reader(bytes);
            let mut n = 0u64;
            while let Ok(Some(p)) = rd.next_packet() {
                n = n.wrapping_add(p.data.len() as u64);
            }
            black_box(n)
        })
    });
    g.bench_function("net", |b| b.iter(|| reassemble(black_box(&recs), &mut Noop)));
    g.bench_function("pipeline", |b| {
        b.iter(|| {
            let mut p = Pipeline::new(PipelineConfig::default(), NoopConsumer);
            for r in &recs {
                if let Err(e) = p.packet(&r.packet()) {
                    panic!("{e}");
                }
            }
            black_box(p.finish().is_ok())
        })
    });

    g.throughput(Throughput::Bytes(stream_bytes as u64));
    g.bench_function("split", |b| {
        b.iter(|| {
            let mut n = 0usize;
            split(black_box(&chunks), &mut |_, f| n += f.len());
            black_box(n)
        })
    });

    g.throughput(Throughput::Bytes(frame_bytes as u64));
    g.bench_function("decode", |b| {
        b.iter(|| {
            for (dir, f) in &frames {
                let _ = black_box(decode(black_box(f), *dir, &limits));
            }
        })
    });
    g.bench_function("decode_no_metas", |b| {
        b.iter(|| {
            for (dir, f) in &frames {
                let _ = black_box(decode_metas(black_box(f), *dir, &limits, 0));
            }
        })
    });
    g.bench_function("summary", |b| {
        let mut line = String::with_capacity(512);
        b.iter(|| {
            for (dir, d) in &decoded {
                line.clear();
                summary::write_summary(&mut line, d, *dir, &opts);
                black_box(&line);
            }
        })
    });
    g.bench_function("json", |b| {
        let mut out = Vec::with_capacity(4096);
        b.iter(|| {
            for (dir, f) in &frames {
                out.clear();
                json::write_json(&mut out, f, *dir, &opts);
                black_box(&out);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
