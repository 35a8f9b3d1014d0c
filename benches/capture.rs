//! Throughput of iterating records of an in-memory capture (pcap and pcapng, uncompressed).
//! The source is a `Read` over a static slice, so each refill is one memcpy, as from the page
//! cache.

use std::hint::black_box;
use std::io::Cursor;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use msyncdump::capture::{FileReader, PacketSource};

const TARGET: usize = 64 * 1024 * 1024;

/// Packet sizes cycling over small ACKs, mid-size and full frames.
fn sizes() -> impl Iterator<Item = usize> {
    [66usize, 1514, 590, 66, 1514, 1200, 120, 1514].into_iter().cycle()
}

fn pcap() -> &'static [u8] {
    let mut v = Vec::with_capacity(TARGET + 4096);
    for x in [0xA1B2_C3D4u32, 0x0004_0002, 0, 0, 65535, 1] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    for (i, n) in sizes().enumerate() {
        if v.len() >= TARGET {
            break;
        }
        for x in [1_700_000_000 + (i as u32 / 1000), (i as u32 % 1000) * 1000, n as u32, n as u32] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.resize(v.len() + n, i as u8);
    }
    Vec::leak(v)
}

fn pcapng() -> &'static [u8] {
    let mut v = Vec::with_capacity(TARGET + 4096);
    let words = |v: &mut Vec<u8>, ws: &[u32]| {
        for w in ws {
            v.extend_from_slice(&w.to_le_bytes());
        }
    };
    words(&mut v, &[0x0A0D_0D0A, 28, 0x1A2B_3C4D, 1, u32::MAX, u32::MAX, 28]);
    words(&mut v, &[1, 20, 1, 0, 20]);
    for (i, n) in sizes().enumerate() {
        if v.len() >= TARGET {
            break;
        }
        let padded = (n + 3) & !3;
        let len = (32 + padded) as u32;
        let ts = 1_700_000_000_000_000u64 + i as u64;
        words(&mut v, &[6, len, 0, (ts >> 32) as u32, ts as u32, n as u32, n as u32]);
        v.resize(v.len() + padded, i as u8);
        words(&mut v, &[len]);
    }
    Vec::leak(v)
}

fn iterate(bytes: &'static [u8]) -> u64 {
    let mut rd = match FileReader::from_reader("bench".into(), Box::new(Cursor::new(bytes))) {
        Ok(rd) => rd,
        Err(e) => panic!("{e}"),
    };
    let mut sum = 0u64;
    while let Ok(Some(p)) = rd.next_packet() {
        sum = sum.wrapping_add(p.data.len() as u64 ^ p.ts.0 as u64);
    }
    sum
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("capture");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    for (name, bytes) in [("pcap", pcap()), ("pcapng", pcapng())] {
        let mut rd = match FileReader::from_reader("check".into(), Box::new(Cursor::new(bytes))) {
            Ok(rd) => rd,
            Err(e) => panic!("{e}"),
        };
        loop {
            match rd.next_packet() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => panic!("{e}"),
            }
        }
        let stats = rd.stats();
        assert_eq!(stats.bytes, bytes.len() as u64, "{name}: not read to the end");
        eprintln!("{name}: {} records, {} bytes", stats.records, stats.bytes);
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(name, |b| b.iter(|| black_box(iterate(black_box(bytes)))));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
