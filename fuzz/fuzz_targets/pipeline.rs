//! The whole pipeline over a capture file made of arbitrary bytes: reader, reassembly,
//! splitting, decoding, and one consumer (each printer format, or the report analyzer with
//! both report renderings). JSON output must be valid JSON.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use msyncdump::analysis::Analyzer;
use msyncdump::capture::{CaptureError, FileReader, PacketSource};
use msyncdump::pipeline::print::{tally, Format, PrintOptions, Printer};
use msyncdump::pipeline::{run_sources, Consumer, Pipeline, PipelineConfig};
use msyncdump::report::ReportOptions;
use msyncdump::time::Zone;

fn config() -> PipelineConfig {
    let mut cfg = PipelineConfig::default();
    // Small caps so that hitting them is part of what is fuzzed.
    cfg.max_frame = 64 << 10;
    cfg.decode.max_inflated = 256 << 10;
    cfg.net.max_flow_buffer = 64 << 10;
    cfg.net.max_total_buffer = 256 << 10;
    cfg.net.max_flows = 64;
    cfg
}

fn run<C: Consumer>(data: &[u8], consumer: C) -> Option<C> {
    let src: Result<Box<dyn PacketSource>, CaptureError> =
        FileReader::from_reader("fuzz".into(), Box::new(Cursor::new(data.to_vec())))
            .map(|r| Box::new(r) as Box<dyn PacketSource>);
    let mut pipeline = Pipeline::new(config(), consumer);
    run_sources(&mut std::iter::once(src), &mut pipeline, &mut |_| {}).ok()?;
    let (c, totals) = pipeline.finish().ok()?;
    let _ = tally(&totals);
    Some(c)
}

/// Checks the syntax of the whole document without building a tree of it: a `Value` tree cost
/// a third of each execution.
fn assert_json(b: &[u8]) {
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(b) {
        panic!("invalid JSON ({e}): {}", String::from_utf8_lossy(b));
    }
}

fuzz_target!(|data: &[u8]| {
    let format = match data.len() % 5 {
        0 => Format::Summary,
        1 => Format::Verbose,
        2 => Format::SdkLog,
        3 => Format::Json,
        _ => {
            let opts = ReportOptions::default();
            if let Some(a) = run(data, Analyzer::new(&opts)) {
                let report = a.report();
                let mut out = Vec::new();
                let _ = report.write_text(&mut out, &opts);
                out.clear();
                let _ = report.write_json(&mut out);
                assert_json(&out);
            }
            return;
        }
    };
    let opts = PrintOptions {
        format,
        render: Default::default(),
        quiet: false,
        zone: Zone::Utc,
        line_buffered: false,
        max_errors: if data.len() % 7 == 0 { Some(2) } else { None },
        select: Default::default(),
    };
    if let Some(p) = run(data, Printer::new(Vec::new(), opts)) {
        if format == Format::Json {
            for line in p.into_inner().split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                assert_json(line);
            }
        }
    }
});
