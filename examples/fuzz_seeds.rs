//! Writes seed corpora for the fuzz targets into `DIR/<target>/` (default `fuzz/corpus`): small
//! synthetic captures (pcap, pcapng, gzip, impaired) and committed ones (zstd and LZ4 among
//! them) for the file-level targets, and single MSync messages for the decoder. Run by `fuzz/seed.sh`; the output is not
//! committed.

use std::fs;
use std::io::Write;
use std::path::Path;

use msyncdump::synth::{generate, CaptureFormat, SynthConfig};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::write(dir.join(name), bytes)
}

fn main() -> std::io::Result<()> {
    let root = std::env::args_os().nth(1).unwrap_or_else(|| "fuzz/corpus".into());
    let root = Path::new(&root);
    let base =
        SynthConfig { clients: 2, duration_secs: 4.0, mean_gap_secs: 0.5, ..Default::default() };
    let variants: Vec<(&str, SynthConfig)> = vec![
        ("plain.pcap", base.clone()),
        (
            "ng-nanos.pcapng",
            SynthConfig { format: CaptureFormat::PcapNg, nanos: true, ..base.clone() },
        ),
        ("ipv6.pcap", SynthConfig { ipv6: true, seed: 2, ..base.clone() }),
        ("zlib.pcap", SynthConfig { zlib: 0.7, seed: 3, ..base.clone() }),
        (
            "impaired.pcap",
            SynthConfig {
                loss: 0.1,
                reorder: 0.1,
                duplicate: 0.1,
                retransmit: 0.1,
                seed: 4,
                mss: 200,
                ..base.clone()
            },
        ),
        (
            "midstream.pcapng",
            SynthConfig { midstream: true, format: CaptureFormat::PcapNg, seed: 5, ..base.clone() },
        ),
        ("errors.pcap", SynthConfig { error_rate: 0.3, unanswered: 0.3, seed: 6, ..base.clone() }),
    ];
    let mut msgs = 0;
    for (name, cfg) in &variants {
        let mut file = Vec::new();
        let truth = generate(cfg, &mut file)?;
        for target in ["capture_reader", "pipeline"] {
            write(&root.join(target), name, &file)?;
        }
        for m in truth.messages.iter().take(40) {
            let dir = if m.dir.index() == 0 { "c2s" } else { "s2c" };
            for target in ["msync_decode", "view_decode"] {
                write(&root.join(target), &format!("{name}-{msgs}-{dir}"), &m.bytes)?;
            }
            msgs += 1;
        }
        if *name == "plain.pcap" {
            let mut gz = flate2_free_gzip(&file);
            gz.flush()?;
            write(&root.join("capture_reader"), "plain.pcap.gz", gz.get_ref())?;
        }
    }
    let seed = fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/seed.pcap"))?;
    for target in ["capture_reader", "pipeline"] {
        write(&root.join(target), "seed.pcap", &seed)?;
    }
    // The zstd and LZ4 streams of the committed variants (the tools' own bytes).
    let variants_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/variants");
    for entry in fs::read_dir(variants_dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if name.ends_with(".zst") || name.ends_with(".lz4") {
            write(&root.join("capture_reader"), &name, &fs::read(&path)?)?;
        }
    }
    eprintln!("wrote {} captures and {msgs} messages", variants.len() + 1);
    Ok(())
}

/// A gzip member holding `data` in stored (uncompressed) deflate blocks: enough for the reader's
/// gzip path without another dependency.
fn flate2_free_gzip(data: &[u8]) -> std::io::Cursor<Vec<u8>> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut chunks = data.chunks(65535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(c) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let n = c.len() as u16;
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(c);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    std::io::Cursor::new(out)
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
