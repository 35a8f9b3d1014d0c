//! Inputs the fuzz targets found or that guard a past fix, replayed through the same library
//! entry points as the byte-input targets (`capture_reader`, `msync_decode`, `view_decode`,
//! `pipeline`).
//!
//! To keep a crash: copy the artifact to `tests/data/fuzz/<target>/<short-name>` (or inline it
//! below when it is small), check that this test fails, then fix the bug. Inputs of the
//! structured targets (`net_packet`, `tcp_reassembly`, `splitter`, `roundtrip`) are decoded by
//! `arbitrary`; reproduce those as an explicit test in the module concerned.
//!
//! Found so far: one `view_decode` disagreement (a status merged from six occurrences), kept
//! in `tests/data/fuzz/view_decode/`. The inline cases are inputs that stress the same paths.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::Cursor;
use std::path::Path;

use msyncdump::analysis::Analyzer;
use msyncdump::capture::{CaptureError, FileReader, PacketSource};
use msyncdump::msync::decode::{decode, DecodeLimits};
use msyncdump::msync::render::{json, sdklog, summary, tree, RenderOpts};
use msyncdump::net::Dir;
use msyncdump::pipeline::print::{Format, PrintOptions, Printer};
use msyncdump::pipeline::{run_sources, Consumer, Pipeline, PipelineConfig};
use msyncdump::report::ReportOptions;
use msyncdump::time::Zone;

fn capture_reader(data: &[u8]) {
    let Ok(mut rd) = FileReader::from_reader("fuzz".into(), Box::new(Cursor::new(data.to_vec())))
    else {
        return;
    };
    while let Ok(Some(_)) = rd.next_packet() {}
}

fn msync_decode(data: &[u8]) {
    let limits = DecodeLimits { max_inflated: 1 << 20 };
    let opts = RenderOpts { max_inflated: 1 << 20, ..RenderOpts::default() };
    for dir in [Dir::C2S, Dir::S2C] {
        let mut s = String::new();
        match decode(data, dir, &limits) {
            Ok(msg) => summary::write_summary(&mut s, &msg, dir, &opts),
            Err(e) => summary::write_error_summary(&mut s, data, dir, &e),
        }
        tree::write_tree_with_offsets(&mut s, data, dir, &opts, true);
        sdklog::write_sdklog(&mut s, data, dir, &opts);
        let mut j = Vec::new();
        json::write_json(&mut j, data, dir, &opts);
        serde_json::from_slice::<serde_json::Value>(&j).unwrap();
    }
}

/// Both decoders read the same of `data`, in both directions.
fn view_decode(data: &[u8]) {
    for dir in [Dir::C2S, Dir::S2C] {
        if let Err(e) = msyncdump::msync::view::differential::agree(data, dir) {
            panic!("the decoders disagree on {data:02x?}\n{e}");
        }
    }
}

fn run<C: Consumer>(data: &[u8], consumer: C) -> Option<C> {
    let src: Result<Box<dyn PacketSource>, CaptureError> =
        FileReader::from_reader("fuzz".into(), Box::new(Cursor::new(data.to_vec())))
            .map(|r| Box::new(r) as Box<dyn PacketSource>);
    let mut pipeline = Pipeline::new(PipelineConfig::default(), consumer);
    run_sources(&mut std::iter::once(src), &mut pipeline, &mut |_| {}).ok()?;
    pipeline.finish().ok().map(|(c, _)| c)
}

fn pipeline(data: &[u8]) {
    for format in [Format::Summary, Format::Verbose, Format::SdkLog, Format::Json] {
        let opts = PrintOptions {
            format,
            render: RenderOpts::default(),
            quiet: false,
            zone: Zone::Utc,
            line_buffered: false,
            max_errors: None,
            select: Default::default(),
        };
        if let Some(p) = run(data, Printer::new(Vec::new(), opts)) {
            if format == Format::Json {
                for line in p.into_inner().split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    serde_json::from_slice::<serde_json::Value>(line).unwrap();
                }
            }
        }
    }
    let opts = ReportOptions::default();
    if let Some(a) = run(data, Analyzer::new(&opts)) {
        let mut out = Vec::new();
        a.report().write_text(&mut out, &opts).unwrap();
        out.clear();
        a.report().write_json(&mut out).unwrap();
        serde_json::from_slice::<serde_json::Value>(&out).unwrap();
    }
}

/// A target's entry point over one input.
type Target = fn(&[u8]);

/// Every file under `tests/data/fuzz/<target>/`, through that target's entry point.
#[test]
fn stored_artifacts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz");
    let targets: [(&str, Target); 4] = [
        ("capture_reader", capture_reader),
        ("msync_decode", msync_decode),
        ("view_decode", view_decode),
        ("pipeline", pipeline),
    ];
    for (name, f) in targets {
        let Ok(dir) = std::fs::read_dir(root.join(name)) else { continue };
        for entry in dir {
            let path = entry.unwrap().path();
            eprintln!("replaying {}", path.display());
            f(&std::fs::read(&path).unwrap());
        }
    }
}

#[test]
fn inline_inputs() {
    let cases: &[&[u8]] = &[
        b"",
        // A pcap header with a 2 GiB snaplen and a record claiming 0xFFFFFFFF bytes.
        b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\x7f\x01\x00\x00\x00\
          \x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff",
        // A pcapng section header whose length field is 0xFFFFFFFC.
        b"\x0a\x0d\x0d\x0a\xfc\xff\xff\xff\x4d\x3c\x2b\x1a\x01\x00\x00\x00",
        // A gzip header followed by garbage.
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\x01\x02\x03",
    ];
    for c in cases {
        capture_reader(c);
        pipeline(c);
    }
    let frames: &[&[u8]] = &[
        b"",
        // compress_algorimth = 1 with a payload that is not zlib.
        b"\x40\x00\x20\x01\x4a\x03abc",
        // A payload length running past the frame.
        b"\x40\x00\x4a\xff\xff\xff\xff\x0f",
        // An unterminated group in the payload.
        b"\x40\x00\x4a\x02\x0b\x0b",
        // A varint of eleven bytes.
        b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    ];
    for f in frames {
        msync_decode(f);
        view_decode(f);
    }
}
