//! Hostile captures: the real binary on crafted files. Each case asserts no panic, the exit
//! status (0 when the file is usable, 2 when it is not), the error or finding printed, the
//! messages still decoded around the damage, and bounds on wall time and peak memory.
//!
//! Files are built by the test in a temporary directory: a minimal pcap/pcapng writer (so that
//! headers can lie), a TCP flow builder over etherparse, and MSync frames taken from the
//! synthesizer's ground truth.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use msyncdump::net::Dir;
use msyncdump::synth::{generate, SynthConfig};

mod common;
use common::{tcp_packet, Pcap};

const MAX_SECS: f64 = 60.0;
const MAX_RSS_KB: u64 = 512 * 1024;

// ---------------------------------------------------------------------------------------------
// Running the binary

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
    /// Peak resident memory, where `/usr/bin/time` measured it.
    rss_kb: Option<u64>,
}

impl Run {
    /// The number before `what` in the tally line ("… 12 messages, …").
    fn tally(&self, what: &str) -> u64 {
        let line = self
            .stderr
            .lines()
            .rev()
            .find(|l| l.contains(" packets, "))
            .unwrap_or_else(|| panic!("no tally in stderr:\n{}", self.stderr));
        for part in line.split([',', '(', ')']) {
            let part = part.trim().trim_start_matches("msyncdump: ");
            if let Some(n) = part.strip_suffix(what).map(str::trim) {
                if let Ok(n) = n.parse() {
                    return n;
                }
            }
        }
        0
    }
}

fn tmpdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("msyncdump-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A crafted file, removed (with its RSS measurement) when the test is done with it.
struct TempFile(PathBuf);

impl std::ops::Deref for TempFile {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_file(self.0.with_extension("rss"));
    }
}

fn write_file(name: &str, bytes: &[u8]) -> TempFile {
    let p = tmpdir().join(name);
    std::fs::write(&p, bytes).unwrap();
    TempFile(p)
}

/// Runs `msyncdump dissect ARGS FILE` under `/usr/bin/time` when it exists, and checks the
/// bounds every case shares: no panic, under a minute, under 512 MB.
fn dissect(file: &Path, args: &[&str]) -> Run {
    run_bounded("dissect", file, args)
}

/// As [`dissect`], for `msyncdump report ARGS FILE`.
fn report(file: &Path, args: &[&str]) -> Run {
    run_bounded("report", file, args)
}

fn run_bounded(sub: &str, file: &Path, args: &[&str]) -> Run {
    let bin = env!("CARGO_BIN_EXE_msyncdump");
    let rss_file = file.with_extension("rss");
    let time = Path::new("/usr/bin/time");
    let mut cmd = if time.exists() {
        let mut c = Command::new(time);
        c.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.arg(sub).args(args).arg(file);
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let elapsed = start.elapsed();
    let rss_kb: Option<u64> = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|s| s.lines().rev().find_map(|l| l.trim().parse().ok()));
    let run = Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        rss_kb,
    };
    let name = file.file_name().unwrap().to_string_lossy();
    eprintln!(
        "{sub} {name} {args:?}: exit {}, {:.2} s, peak RSS {} KiB",
        run.status,
        elapsed.as_secs_f64(),
        rss_kb.map_or("?".into(), |k| k.to_string())
    );
    assert!(!run.stderr.contains("panicked"), "{name}: panic:\n{}", run.stderr);
    assert!(run.status == 0 || run.status == 2, "{name}: killed or crashed: {}", run.status);
    assert!(elapsed.as_secs_f64() < MAX_SECS, "{name}: took {elapsed:?}");
    if let Some(kb) = rss_kb {
        assert!(kb < MAX_RSS_KB, "{name}: peak RSS {kb} KiB");
    }
    run
}

// ---------------------------------------------------------------------------------------------
// Building captures

/// One TCP connection between a client and the server port 6717.
struct Flow {
    client: ([u8; 4], u16),
    server: ([u8; 4], u16),
    /// Next sequence number of each direction (by `Dir::index`).
    seq: [u32; 2],
}

impl Flow {
    fn new(n: u32) -> Flow {
        let [_, a, b, c] = n.to_be_bytes();
        Flow {
            client: ([10, a, b, c], 40_000 + (n % 20_000) as u16),
            server: ([198, 51, 100, 10], 6717),
            seq: [1_000_000u32.wrapping_mul(n + 1), 0x8000_0000],
        }
    }

    fn segment(&self, dir: Dir, seq: u32, flags: &str, payload: &[u8]) -> Vec<u8> {
        let (src, dst) = match dir {
            Dir::C2S => (self.client, self.server),
            Dir::S2C => (self.server, self.client),
        };
        tcp_packet(src, dst, seq, self.seq[dir.reverse().index()], flags, payload)
    }

    fn handshake(&mut self, pcap: &mut Pcap) {
        pcap.packet(&self.segment(Dir::C2S, self.seq[0], "S", &[]));
        self.seq[0] = self.seq[0].wrapping_add(1);
        pcap.packet(&self.segment(Dir::S2C, self.seq[1], "SA", &[]));
        self.seq[1] = self.seq[1].wrapping_add(1);
        pcap.packet(&self.segment(Dir::C2S, self.seq[0], "A", &[]));
    }

    /// Sends `payload` in order, in segments of at most 1400 bytes.
    fn send(&mut self, pcap: &mut Pcap, dir: Dir, payload: &[u8]) {
        for chunk in payload.chunks(1400) {
            pcap.packet(&self.segment(dir, self.seq[dir.index()], "A", chunk));
            self.seq[dir.index()] = self.seq[dir.index()].wrapping_add(chunk.len() as u32);
        }
    }
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

/// MSync messages of one synthetic session, in stream order, with their directions.
fn session_messages() -> Vec<(Dir, Vec<u8>)> {
    let cfg =
        SynthConfig { clients: 1, duration_secs: 30.0, mean_gap_secs: 1.0, ..Default::default() };
    let truth = generate(&cfg, Vec::new()).unwrap();
    let msgs: Vec<(Dir, Vec<u8>)> =
        truth.messages.iter().filter(|m| m.conn == 0).map(|m| (m.dir, m.bytes.clone())).collect();
    assert!(msgs.len() >= 10, "the synthesizer wrote too few messages");
    msgs
}

/// A capture of one session carried over a connection with a handshake, with `inject` called
/// after message `at` (to add damage); returns the capture and the number of messages.
fn session_capture(at: usize, inject: impl FnOnce(&mut Flow, &mut Pcap)) -> (Vec<u8>, u64) {
    let msgs = session_messages();
    let mut pcap = Pcap::new();
    let mut flow = Flow::new(1);
    flow.handshake(&mut pcap);
    let mut inject = Some(inject);
    for (i, (dir, body)) in msgs.iter().enumerate() {
        flow.send(&mut pcap, *dir, &framed(body));
        if i + 1 == at {
            if let Some(f) = inject.take() {
                f(&mut flow, &mut pcap);
            }
        }
    }
    (pcap.buf, msgs.len() as u64)
}

/// A deterministic stream of bytes that look random.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// An MSync envelope: command `cmd`, optional zlib flag, payload.
fn envelope(cmd: u8, zlib: bool, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x40, cmd];
    if zlib {
        v.extend_from_slice(&[0x20, 1]);
    }
    v.push(0x4a);
    let mut n = payload.len();
    while n >= 0x80 {
        v.push((n as u8) | 0x80);
        n >>= 7;
    }
    v.push(n as u8);
    v.extend_from_slice(payload);
    v
}

// ---------------------------------------------------------------------------------------------
// Cases: files that are not usable captures (exit 2)

#[test]
fn empty_file() {
    let r = dissect(&write_file("empty.pcap", &[]), &[]);
    assert_eq!(r.status, 2);
    assert!(r.stderr.contains("empty.pcap: offset 0: empty: no capture header"), "{}", r.stderr);
}

#[test]
fn garbage_file() {
    let r = dissect(&write_file("garbage.pcap", &noise(64 << 10, 7)), &[]);
    assert_eq!(r.status, 2);
    assert!(r.stderr.contains("not a pcap or pcapng capture"), "{}", r.stderr);
}

#[test]
fn truncated_file_header() {
    let pcap = Pcap::new();
    let path = write_file("short-header.pcap", &pcap.buf[..10]);
    let r = dissect(&path, &[]);
    assert_eq!(r.status, 2);
    // There is no record yet: what is cut is the file header.
    let want = format!(
        "error: {}: offset 0: truncated file header (file ends inside it)\n",
        path.display()
    );
    assert!(r.stderr.contains(&want), "{}", r.stderr);
    let mut ng = Vec::new();
    ng.extend_from_slice(&0x0a0d_0d0au32.to_le_bytes());
    ng.extend_from_slice(&28u32.to_le_bytes());
    ng.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    let path = write_file("short-header.pcapng", &ng);
    let r = dissect(&path, &[]);
    assert_eq!(r.status, 2);
    let want = format!(
        "error: {}: offset 0: truncated section header block (file ends inside it)\n",
        path.display()
    );
    assert!(r.stderr.contains(&want), "{}", r.stderr);
}

#[test]
fn record_claiming_2_gib() {
    let (mut file, n) = session_capture(usize::MAX, |_, _| {});
    // A record header whose captured length is 2 GiB, followed by a few bytes.
    let offset = file.len();
    let mut p = Pcap { buf: Vec::new(), usec: 999_000 };
    p.raw_record(0x8000_0000, 0x8000_0000, &[0; 64]);
    file.extend_from_slice(&p.buf);
    let r = dissect(&write_file("2gib-record.pcap", &file), &[]);
    assert_eq!(r.status, 2);
    assert!(
        r.stderr.contains(&format!("offset {offset}: corrupt capture: record length 2147483648")),
        "{}",
        r.stderr
    );
    // Everything before the bad record was dissected.
    assert_eq!(r.tally("messages"), n);
}

/// Five bytes slipped in after a few records: the next header is read five bytes late, its
/// captured length made of the seconds' last byte and the microseconds (over 5 MB here, in a
/// file of 262 144-byte snaplen and a few KB). That is damage at that offset, read from the
/// file or through gzip, not a last record the file ends inside: an error naming it, and the
/// records after the five bytes read all the same.
#[test]
fn misaligned_record_header_mid_file() {
    let at = std::cell::Cell::new(0);
    let (file, messages) = session_capture(3, |_, pcap| {
        at.set(pcap.buf.len());
        pcap.buf.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x00]);
    });
    let at = at.get();
    // Every record but the 5 bytes of damage: the reader passes over them to the next one.
    let records = {
        let mut pos = 24;
        let mut n = 0;
        while pos < file.len() {
            if pos == at {
                pos += 5;
            }
            pos += 16 + u32::from_le_bytes(file[pos + 8..pos + 12].try_into().unwrap()) as usize;
            n += 1;
        }
        n
    };
    let claimed = u32::from_le_bytes(file[at + 8..at + 12].try_into().unwrap());
    assert!(claimed > 262_144 && (claimed as usize) > file.len(), "{claimed}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&file).unwrap();
    let gz = gz.finish().unwrap();
    for (name, bytes) in [("misaligned.pcap", &file), ("misaligned.pcap.gz", &gz)] {
        let r = dissect(&write_file(name, bytes), &[]);
        assert_eq!(r.status, 2, "{name}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!(
                "error: {}: offset {at}: corrupt capture: record length {claimed} is implausible",
                tmpdir().join(name).display()
            )),
            "{name}: {}",
            r.stderr
        );
        assert!(
            r.stderr
                .contains("5 bytes in 1 damaged stretch passed over, the records after them read"),
            "{name}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains("truncated"), "{name}: {}", r.stderr);
        assert_eq!(r.tally("packets"), records, "{name}");
        assert_eq!(r.tally("messages"), messages, "{name}");
    }
}

/// One record's captured length with a bit flipped, to a larger length that can be and to a
/// smaller one: before, the larger swallowed the records it covered and the smaller left the
/// rest of the record to be read as a header. The record's original length is where the next
/// record starts, so it is read with that: an error naming the offset (the file is damaged),
/// and every packet and message is there.
#[test]
fn a_record_length_with_a_flipped_bit_is_repaired() {
    let (file, messages) = session_capture(3, |_, _| {});
    let mut records = Vec::new();
    let mut pos = 24;
    while pos + 16 <= file.len() {
        records.push(pos);
        pos += 16 + u32::from_le_bytes(file[pos + 8..pos + 12].try_into().unwrap()) as usize;
    }
    let at = records[records.len() / 2];
    let caplen = u32::from_le_bytes(file[at + 8..at + 12].try_into().unwrap());
    for flipped in [caplen ^ 0x400, caplen ^ (1 << caplen.trailing_zeros().min(5))] {
        let mut bad = file.clone();
        bad[at + 8..at + 12].copy_from_slice(&flipped.to_le_bytes());
        let name = format!("flipped-{flipped}.pcap");
        let path = write_file(&name, &bad);
        let r = dissect(&path, &[]);
        assert_eq!(r.status, 2, "{name}: {}", r.stderr);
        let damage = format!(
            "record length {flipped} does not end where a record starts; its original length \
             {caplen} does"
        );
        let want = format!("offset {at}: corrupt capture: {damage}; 1 record length repaired");
        assert!(r.stderr.contains(&want), "{name}: {}", r.stderr);
        assert!(!r.stderr.contains("passed over"), "{name}: {}", r.stderr);
        assert_eq!(r.tally("packets"), records.len() as u64, "{name}");
        assert_eq!(r.tally("messages"), messages, "{name}");
        let info = run_bounded("info", &path, &[]);
        assert_eq!(info.status, 2, "{name}: {}", info.stdout);
        assert!(!info.stdout.contains("damaged stretches"), "{name}: {}", info.stdout);
        let line = format!(
            "record lengths repaired: 1 (damaged, read as the original length, where the next \
             record starts; the first at offset {at}: {damage})"
        );
        assert!(info.stdout.contains(&line), "{name}: {}", info.stdout);
    }
}

/// A gzip stream holding a pcap header (snaplen 65535) and a record header claiming 255 MiB,
/// then 40 MB of zeros: the record is rejected as it is read, before anything is buffered for
/// it. Taken for a record cut short, it grew the buffer by doubling as the zeros came (64 MiB
/// here, and the allocator kept the smaller buffers it outgrew), only to call it truncated.
#[test]
fn implausible_record_in_a_stream_is_not_buffered() {
    let mut file = Pcap::new().buf;
    file[16..20].copy_from_slice(&65_535u32.to_le_bytes());
    let mut p = Pcap { buf: Vec::new(), usec: 0 };
    p.raw_record(255 << 20, 255 << 20, &[]);
    file.extend_from_slice(&p.buf);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&file).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..40 {
        gz.write_all(&zeros).unwrap();
    }
    let path = write_file("255mib-record.pcap.gz", &gz.finish().unwrap());
    let r = dissect(&path, &[]);
    assert_eq!(r.status, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("offset 24: corrupt capture: record length 267386880 is implausible"),
        "{}",
        r.stderr
    );
    if let Some(kb) = r.rss_kb {
        assert!(kb < 40 * 1024, "peak RSS {kb} KiB");
    }
}

// ---------------------------------------------------------------------------------------------
// Cases: damaged but usable files (exit 0, the damage reported, the rest decoded)

#[test]
fn truncated_last_record() {
    let (file, n) = session_capture(usize::MAX, |_, _| {});
    let cut = &file[..file.len() - 10];
    let r = dissect(&write_file("cut-record.pcap", cut), &[]);
    assert_eq!(r.status, 0);
    assert!(r.stderr.contains("warning:") && r.stderr.contains("truncated record"), "{}", r.stderr);
    // Only the message in the cut record is lost.
    assert_eq!(r.tally("messages"), n - 1);
}

#[test]
fn caplen_greater_than_original_length() {
    let msgs = session_messages();
    let mut pcap = Pcap::new();
    let mut flow = Flow::new(2);
    flow.handshake(&mut pcap);
    for (dir, body) in &msgs {
        let seg = flow.segment(*dir, flow.seq[dir.index()], "A", &framed(body));
        flow.seq[dir.index()] = flow.seq[dir.index()].wrapping_add(body.len() as u32 + 4);
        // The original length claims less than was captured: the captured bytes stand.
        pcap.raw_record(seg.len() as u32, 20, &seg);
    }
    let r = dissect(&write_file("caplen-gt-len.pcap", &pcap.buf), &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.tally("messages"), msgs.len() as u64);
}

#[test]
fn length_prefix_0xffffffff_mid_stream() {
    let (file, n) = session_capture(3, |flow, pcap| {
        flow.send(pcap, Dir::C2S, &[0xff; 4]);
    });
    let r = dissect(&write_file("ffffffff.pcap", &file), &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(r.stdout.contains("oversize frame: length prefix 4294967295"), "{}", r.stdout);
    assert_eq!(r.tally("oversize frames"), 1);
    // Every valid message, including all those after the bad prefix, is decoded.
    assert_eq!(r.tally("messages"), n);
    assert_eq!(r.tally("decode errors"), 0);
}

#[test]
fn random_bytes_inside_an_msync_stream() {
    let junk = noise(3000, 99);
    let (file, n) = session_capture(4, |flow, pcap| {
        flow.send(pcap, Dir::S2C, &junk);
    });
    let r = dissect(&write_file("random-inside.pcap", &file), &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(r.stdout.contains("(resynchronising)"), "{}", r.stdout);
    assert!(r.tally("bytes skipped") > 0);
    // At most the frames the noise happens to imitate are undecodable; the real ones all stand.
    assert_eq!(r.tally("messages"), n);
}

#[test]
fn zlib_bomb_of_1_gib() {
    use flate2::write::ZlibEncoder;
    // 1 GiB of zeros, compressed as a stream: never held in memory.
    let mut enc = ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    let body = envelope(0, true, &bomb);
    let (file, n) = session_capture(2, |flow, pcap| {
        flow.send(pcap, Dir::S2C, &framed(&body));
    });
    let path = write_file("zlib-bomb.pcap", &file);
    for args in [&[][..], &["-V"][..], &["--json"][..]] {
        let r = dissect(&path, args);
        assert_eq!(r.status, 0, "{}", r.stderr);
        assert_eq!(r.tally("messages"), n);
        assert_eq!(r.tally("decode errors"), 1);
        assert_eq!(r.tally("payloads over the inflate cap"), 1, "{}", r.stderr);
        if args.is_empty() {
            assert!(r.stdout.contains("exceeds 16777216 bytes"), "{}", r.stdout);
        }
    }
}

/// A SYNC answer of 8 million empty metas (16 MB) as a zlib payload of some 16 KB.
fn empty_metas_in_zlib() -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&[0x22, 0x00].repeat(8_000_000)).unwrap();
    envelope(0, true, &enc.finish().unwrap())
}

#[test]
fn repeated_fields_of_millions_of_empty_elements() {
    // 8 million empty metas (16 MB) inflated from a zlib payload of a few kilobytes: 2.4 GB as
    // decoded structs. Not decoded, and said so; the report counts the message, and refuses it
    // too: 16 MB is past what its connection's 16 KB on the wire allow to be inflated.
    let body = empty_metas_in_zlib();
    let (file, n) = session_capture(2, |flow, pcap| {
        flow.send(pcap, Dir::S2C, &framed(&body));
    });
    let path = write_file("empty-metas.pcap", &file);
    for args in [&[][..], &["--json"][..]] {
        let r = dissect(&path, args);
        assert_eq!(r.status, 0, "{}", r.stderr);
        assert_eq!(r.tally("messages"), n);
        assert_eq!(r.tally("decode errors"), 1);
        assert_eq!(r.tally("messages over the decoding budget"), 1, "{}", r.stderr);
        assert!(r.stdout.contains("repeated fields of too many elements"), "{}", r.stdout);
    }
    let r = report(&path, &["--json", "--section", "overview"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["overview"]["messages"], n + 1);
    assert_eq!(v["overview"]["decode_errors"], 1);
}

/// A hundred of the messages above on one connection: 1.6 GB of empty metas inflated from a
/// 1.7 MB capture took `report` 23 s to walk. A connection's zlib payloads may inflate to 16
/// KiB plus 64 times their wire bytes: each of these is past that, refused as a decode error
/// over the inflate cap, and the session's own messages are all taken in.
#[test]
fn a_hundred_zlib_bombs_on_one_connection() {
    let body = empty_metas_in_zlib();
    let (file, n) = session_capture(2, |flow, pcap| {
        for _ in 0..100 {
            flow.send(pcap, Dir::S2C, &framed(&body));
        }
    });
    let path = write_file("zlib-bombs.pcap", &file);
    for args in [&["--json"][..], &["--json", "-j", "2"][..]] {
        let r = report(&path, args);
        assert_eq!(r.status, 0, "{}", r.stderr);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["overview"]["messages"], n + 100);
        assert_eq!(v["overview"]["decode_errors"], 100);
        assert_eq!(v["sessions"][0]["decode_errors"], 100);
    }
    // `dissect` decodes no more of them: each is over its decoding budget, found before the
    // metas are decoded.
    let r = dissect(&path, &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!((r.tally("messages"), r.tally("decode errors")), (n, 100), "{}", r.stderr);
}

#[test]
fn a_new_error_status_in_every_answer() {
    // 100 000 answers, each with a status code of its own: one error row each had held 880 MB
    // for 500 000. Past the per-session cap they are counted under one row.
    let (file, _) = session_capture(2, |flow, pcap| {
        let mut run = Vec::new();
        for i in 0..100_000u32 {
            // CommSyncDL { status: { error_code: 1000 + i } }
            let mut status = vec![0x08];
            let mut c = 1000 + i;
            while c >= 0x80 {
                status.push((c as u8) | 0x80);
                c >>= 7;
            }
            status.push(c as u8);
            let mut dl = vec![0x0a, status.len() as u8];
            dl.extend_from_slice(&status);
            run.extend_from_slice(&framed(&envelope(0, false, &dl)));
        }
        flow.send(pcap, Dir::S2C, &run);
    });
    let path = write_file("error-codes.pcap", &file);
    for jobs in ["1", "2"] {
        let r = report(&path, &["--json", "-j", jobs]);
        assert_eq!(r.status, 0, "{}", r.stderr);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let rows = v["errors"].as_array().unwrap();
        assert!(rows.len() <= 17, "{} rows", rows.len());
        let other = rows.iter().find(|e| e["code"] == "(other codes)").unwrap();
        assert!(other["count"].as_u64().unwrap() >= 100_000 - 16, "{other}");
        let total: u64 = rows.iter().map(|e| e["count"].as_u64().unwrap()).sum();
        assert!(total >= 100_000, "{total}");
    }
}

#[test]
fn deeply_nested_protobuf_groups() {
    // 300 000 nested groups (field 1, start-group … end-group) as a SYNC payload, and the same
    // inside an unknown envelope field.
    let depth = 300_000;
    let mut groups = vec![0x0b; depth];
    groups.extend(std::iter::repeat_n(0x0c, depth));
    let body = envelope(0, false, &groups);
    let mut unknown = vec![0x40, 0x00];
    unknown.extend_from_slice(&[0xfb, 0x01]); // field 31, start group
    unknown.extend_from_slice(&groups);
    unknown.extend_from_slice(&[0xfc, 0x01]);
    let (file, n) = session_capture(2, |flow, pcap| {
        flow.send(pcap, Dir::C2S, &framed(&body));
        flow.send(pcap, Dir::C2S, &framed(&unknown));
    });
    let path = write_file("nested-groups.pcap", &file);
    for args in [&[][..], &["-V"][..], &["--json"][..], &["--format", "sdklog"][..]] {
        let r = dissect(&path, args);
        assert_eq!(r.status, 0, "{}", r.stderr);
        // The valid messages are all there; the nested ones are shown as errors or bytes.
        assert!(r.tally("messages") >= n, "{}", r.stderr);
        assert_eq!(r.tally("messages") + r.tally("decode errors"), n + 2, "{}", r.stderr);
    }
}

/// Connection `n` to port 80, from its handshake through a WebSocket upgrade.
fn websocket_flow(n: u32) -> (Pcap, Flow) {
    let mut pcap = Pcap::new();
    let mut flow = Flow::new(n);
    flow.server.1 = 80;
    flow.handshake(&mut pcap);
    flow.send(&mut pcap, Dir::C2S, b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n");
    flow.send(
        &mut pcap,
        Dir::S2C,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    );
    (pcap, flow)
}

#[test]
fn websocket_frame_claiming_2_pow_63_bytes() {
    let (mut pcap, mut flow) = websocket_flow(3);
    let mut ws = vec![0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0];
    ws.extend_from_slice(&noise(5000, 3));
    flow.send(&mut pcap, Dir::S2C, &ws);
    let r = dissect(&write_file("ws-2pow63.pcap", &pcap.buf), &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(r.stderr.contains("no MSync traffic found"), "{}", r.stderr);
}

/// A web session that negotiates LZ4, then sends 200 000 tiny envelopes (18 bytes each) that
/// each declare the 16 MiB cap as their original length. No block of 6 bytes can give that:
/// each is an undecodable message at once, never a buffer of the cap allocated and zeroed
/// (which made this 4 MB capture take minutes).
#[test]
fn lz4_envelopes_declaring_the_cap() {
    use msyncdump::msync::pb::Provision;
    use prost::Message;
    let provision = |dir: Option<i32>| {
        let p = Provision {
            protocol_compress_type: vec![2],
            protocol_compress_direction: dir,
            ..Default::default()
        };
        envelope(3, false, &p.encode_to_vec())
    };
    // One server frame (FIN, binary, unmasked) of `body`.
    let frame = |body: &[u8]| {
        let mut f = vec![0x82];
        if body.len() < 126 {
            f.push(body.len() as u8);
        } else {
            f.push(126);
            f.extend_from_slice(&(body.len() as u16).to_be_bytes());
        }
        f.extend_from_slice(body);
        f
    };
    // A client frame: masked, with a zero key (so the payload reads as it is).
    let cframe = |body: &[u8]| {
        let mut f = frame(body);
        f[1] |= 0x80;
        let at = if body.len() < 126 { 2 } else { 4 };
        f.splice(at..at, [0u8; 4]);
        f
    };
    let (mut pcap, mut flow) = websocket_flow(5);
    flow.send(&mut pcap, Dir::C2S, &cframe(&provision(None)));
    flow.send(&mut pcap, Dir::S2C, &frame(&provision(Some(2))));
    let mut liar = vec![0x80, 0x80, 0x80, 0x08]; // varint 16 MiB
    liar.extend_from_slice(&[0, 0, 0, 0, 0x50, b'a', b'b', b'c', b'd', b'e']);
    let n = 200_000u64;
    let mut burst = Vec::new();
    for _ in 0..n {
        burst.extend_from_slice(&frame(&liar));
    }
    flow.send(&mut pcap, Dir::S2C, &burst);
    let path = write_file("lz4-liars.pcap", &pcap.buf);
    let r = dissect(&path, &["-q"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.tally("messages"), 2);
    // The first is a decode error; it leaves the history unknown, so the rest are counted as
    // not unwrapped.
    assert_eq!(r.tally("decode errors"), 1, "{}", r.stderr);
    assert_eq!(r.tally("LZ4-wrapped messages not unwrapped"), n, "{}", r.stderr);
    let r = report(&path, &["--json"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    // The report counts undecodable frames among the messages (src/report/JSON.md).
    assert_eq!(v["overview"]["messages"], 3, "{}", r.stdout);
    assert_eq!(v["overview"]["decode_errors"], 1, "{}", r.stdout);
    let kinds: Vec<&str> =
        v["findings"].as_array().unwrap().iter().filter_map(|f| f["kind"].as_str()).collect();
    assert!(kinds.contains(&"lz4_history_lost"), "{kinds:?}");
}

#[test]
fn syn_flood_of_200_000() {
    let mut pcap = Pcap::new();
    for i in 0..200_000u32 {
        let f = Flow::new(i);
        pcap.packet(&f.segment(Dir::C2S, f.seq[0], "S", &[]));
    }
    // A real session after the flood is still dissected.
    let msgs = session_messages();
    let mut flow = Flow::new(300_000);
    flow.handshake(&mut pcap);
    for (dir, body) in &msgs {
        flow.send(&mut pcap, *dir, &framed(body));
    }
    let path = write_file("syn-flood.pcap", &pcap.buf);
    let r = dissect(&path, &["-q"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.tally("TCP connections"), 200_001);
    assert_eq!(r.tally("messages"), msgs.len() as u64);
    // With a small flow table the idlest connections are evicted and counted; the live session
    // survives.
    let r = dissect(&path, &["-q", "--max-flows", "10000"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.tally("connections evicted"), 200_001 - 10_000, "{}", r.stderr);
    assert_eq!(r.tally("messages"), msgs.len() as u64);
    // The report keeps no state for the connections that never carried MSync once they end,
    // and finds the one session, whole, on one thread and on two.
    for jobs in ["1", "2"] {
        let r = report(&path, &["--json", "-j", jobs]);
        assert_eq!(r.status, 0, "{}", r.stderr);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["sessions"].as_array().map(Vec::len), Some(1));
        assert_eq!(v["overview"]["messages"], msgs.len() as u64);
        assert_eq!(v["overview"]["tcp_connections"], 200_001);
    }
}

#[test]
fn out_of_order_segments_that_never_fill() {
    let msgs = session_messages();
    let mut pcap = Pcap::new();
    let mut flow = Flow::new(4);
    flow.handshake(&mut pcap);
    let (dir, first) = &msgs[0];
    flow.send(&mut pcap, *dir, &framed(first));
    // A 100-byte hole the capture never fills, then 50 000 segments of valid frames after it,
    // each acknowledged by nothing: past the per-flow buffer cap the hole becomes a gap.
    let hole = flow.seq[0];
    let mut seq = hole.wrapping_add(100);
    let frame = framed(&msgs.iter().find(|(d, _)| *d == Dir::C2S).unwrap().1);
    for _ in 0..50_000 {
        pcap.packet(&flow.segment(Dir::C2S, seq, "A", &frame));
        seq = seq.wrapping_add(frame.len() as u32);
    }
    let r = dissect(&write_file("ooo-never-fill.pcap", &pcap.buf), &["-q"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(r.tally("gap bytes") >= 100, "{}", r.stderr);
    assert!(r.tally("out-of-order buffer overflows") >= 1, "{}", r.stderr);
    // Frames beyond the hole are decoded once the hole is given up.
    assert!(r.tally("messages") > 40_000, "{}", r.stderr);
}

/// A corrupt capture: one bit flipped in the ACK number of a bare ACK, and in the sequence
/// number of a data segment (a copy, so no data is missing). Neither declares the stream
/// lost up to it: every message decodes, no gap, and the bad sequence number is reported.
#[test]
fn sequence_and_ack_numbers_with_a_flipped_bit() {
    let (buf, n) = session_capture(3, |flow, pcap| {
        let mut ack = flow.segment(Dir::S2C, flow.seq[1], "A", &[]);
        // The ACK number: Ethernet 14 + IPv4 20 + 8 bytes into the TCP header.
        ack[42] ^= 0x01;
        pcap.packet(&ack);
        let copy = flow.segment(Dir::C2S, flow.seq[0] ^ (1 << 23), "A", b"stray copy");
        pcap.packet(&copy);
    });
    let path = write_file("flipped-bits.pcap", &buf);
    let r = dissect(&path, &["-q"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.tally("messages"), n, "{}", r.stderr);
    assert_eq!(r.tally("gap bytes"), 0, "{}", r.stderr);
    let r = report(&path, &["--json", "--section", "findings"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let kinds: Vec<&str> =
        doc["findings"].as_array().unwrap().iter().filter_map(|f| f["kind"].as_str()).collect();
    assert!(kinds.contains(&"bad_sequence"), "{kinds:?}");
    assert!(!kinds.contains(&"lost_segment"), "{kinds:?}");
    assert!(!kinds.contains(&"out_of_order"), "{kinds:?}");
}

/// A bare ACK with its RST bit flipped: the connection goes on after it, so the RST was not
/// real. The build before this fix took everything after it for late data of the closed
/// connection (3 of 76 messages decoded, 73 segments after close).
#[test]
fn rst_bit_flipped_on_a_bare_ack() {
    let (buf, n) = session_capture(3, |flow, pcap| {
        let mut ack = flow.segment(Dir::S2C, flow.seq[1], "A", &[]);
        // The flags: Ethernet 14 + IPv4 20 + 13 bytes into the TCP header.
        ack[47] |= 0x04;
        pcap.packet(&ack);
    });
    let path = write_file("rst-bit.pcap", &buf);
    let r = dissect(&path, &["-q"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.tally("messages"), n, "{}", r.stderr);
    assert_eq!(r.tally("TCP connections"), 2, "{}", r.stderr);
    assert_eq!(r.tally("gap bytes"), 0, "{}", r.stderr);
}

/// One session with TCP flag bits `bits` set where they do not belong: on the client's bare
/// ACK after the second message (`on_ack`), and on the first segment of the server's first
/// answer after the third (`on_data`). Checks that the session reads whole: every message,
/// one connection, no gap, no decode error.
fn flag_flipped_session(name: &str, bits: u8, on_ack: bool, on_data: bool) {
    let msgs = session_messages();
    let hit = (3..msgs.len()).find(|&i| msgs[i].0 == Dir::S2C).unwrap();
    // The flags: Ethernet 14 + IPv4 20 + 13 bytes into the TCP header.
    const FLAGS: usize = 47;
    let mut pcap = Pcap::new();
    let mut flow = Flow::new(1);
    flow.handshake(&mut pcap);
    for (i, (dir, body)) in msgs.iter().enumerate() {
        if i == 2 && on_ack {
            let mut ack = flow.segment(Dir::C2S, flow.seq[0], "A", &[]);
            ack[FLAGS] |= bits;
            pcap.packet(&ack);
        }
        for (k, chunk) in framed(body).chunks(1400).enumerate() {
            let d = dir.index();
            let mut seg = flow.segment(*dir, flow.seq[d], "A", chunk);
            if on_data && i == hit && k == 0 {
                seg[FLAGS] |= bits;
            }
            pcap.packet(&seg);
            flow.seq[d] = flow.seq[d].wrapping_add(chunk.len() as u32);
        }
    }
    let path = write_file(name, &pcap.buf);
    let r = dissect(&path, &["-q"]);
    assert_eq!(r.status, 0, "{name}: {}", r.stderr);
    assert_eq!(r.tally("messages"), msgs.len() as u64, "{name}: {}", r.stderr);
    assert_eq!(r.tally("decode errors"), 0, "{name}: {}", r.stderr);
    assert_eq!(r.tally("TCP connections"), 1, "{name}: {}", r.stderr);
    assert_eq!(r.tally("gap bytes"), 0, "{name}: {}", r.stderr);
}

/// A SYN bit flipped on a bare ACK and on a data segment of an open connection: no SYN lies
/// inside the stream, so neither starts a new connection. The build before this fix took each
/// for a new connection on the 4-tuple, with the roles turned round and the data one byte off.
#[test]
fn syn_bit_flipped_mid_stream() {
    flag_flipped_session("syn-bit.pcap", 0x02, true, true);
}

/// A FIN bit flipped on a client's bare ACK, or on a server's data segment: the sender goes on
/// where the FIN was, which no sender does after a real one. The build before this fix took
/// the stream to end there and dropped the rest of that direction as data past the FIN (43 and
/// 36 of 76 messages).
#[test]
fn fin_bit_flipped_mid_stream() {
    flag_flipped_session("fin-bit-ack.pcap", 0x01, true, false);
    flag_flipped_session("fin-bit-data.pcap", 0x01, false, true);
}

/// pcapng blocks: a section header, an interface, packets; helpers to make lying ones.
fn ng_block(kind: u32, body: &[u8], claimed: Option<u32>) -> Vec<u8> {
    let pad = (4 - body.len() % 4) % 4;
    let len = (12 + body.len() + pad) as u32;
    let mut v = kind.to_le_bytes().to_vec();
    v.extend_from_slice(&claimed.unwrap_or(len).to_le_bytes());
    v.extend_from_slice(body);
    v.extend_from_slice(&[0; 3][..pad]);
    v.extend_from_slice(&len.to_le_bytes());
    v
}

fn ng_header() -> Vec<u8> {
    let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&u64::MAX.to_le_bytes());
    let mut v = ng_block(0x0a0d_0d0a, &shb, None);
    let mut idb = 1u16.to_le_bytes().to_vec();
    idb.extend_from_slice(&[0, 0]);
    idb.extend_from_slice(&262_144u32.to_le_bytes());
    v.extend(ng_block(1, &idb, None));
    v
}

fn ng_packet(iface: u32, usec: u64, data: &[u8], claimed: Option<u32>) -> Vec<u8> {
    let mut epb = iface.to_le_bytes().to_vec();
    let t = 1_509_019_200_000_000u64 + usec;
    epb.extend_from_slice(&((t >> 32) as u32).to_le_bytes());
    epb.extend_from_slice(&(t as u32).to_le_bytes());
    epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
    epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
    epb.extend_from_slice(data);
    ng_block(6, &epb, claimed)
}

/// The packets of one session as pcapng, with `damage` deciding each packet's interface and
/// claimed block length.
fn ng_session(damage: impl Fn(usize) -> (u32, Option<u32>)) -> (Vec<u8>, u64) {
    let (file, n) = session_capture(usize::MAX, |_, _| {});
    let mut out = ng_header();
    // Re-read the records of the pcap just built.
    let mut pos = 24;
    let mut i = 0;
    while pos + 16 <= file.len() {
        let caplen = u32::from_le_bytes(file[pos + 8..pos + 12].try_into().unwrap()) as usize;
        let data = &file[pos + 16..pos + 16 + caplen];
        let (iface, claimed) = damage(i);
        out.extend(ng_packet(iface, i as u64 * 1000, data, claimed));
        pos += 16 + caplen;
        i += 1;
    }
    (out, n)
}

#[test]
fn pcapng_packet_on_undeclared_interface() {
    // The fourth packet (the first message) names interface 7, which no block declared.
    let (file, n) = ng_session(|i| (if i == 3 { 7 } else { 0 }, None));
    let r = dissect(&write_file("ng-undeclared-if.pcapng", &file), &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(r.stderr.contains("undeclared interface"), "{}", r.stderr);
    // Losing the first message's packet loses that message only: the stream resynchronises.
    let got = r.tally("messages");
    assert!(got + 1 >= n && got < n, "{got} of {n}:\n{}", r.stderr);
}

#[test]
fn pcapng_block_lengths_that_lie() {
    let (file, _) = ng_session(|_| (0, None));
    let total = dissect(&write_file("ng-undamaged.pcapng", &file), &[]).tally("packets");
    // The eleventh packet's block claims more than the limit, its leading length disagrees with
    // its trailing one, or is not a multiple of four: an error at its offset, and the packets
    // after it are read (the reader finds the next block).
    for (name, claimed, what) in [
        ("ng-huge-block.pcapng", 0x7fff_fff0, "exceeds the limit"),
        ("ng-mismatched-block.pcapng", 64, "differs from its trailing length"),
        ("ng-odd-block.pcapng", 99, "multiple of 4"),
    ] {
        let (file, _) = ng_session(|i| (0, if i == 10 { Some(claimed) } else { None }));
        let r = dissect(&write_file(name, &file), &[]);
        assert_eq!(r.status, 2, "{name}: {}", r.stderr);
        assert!(r.stderr.contains("corrupt capture") && r.stderr.contains(what), "{}", r.stderr);
        assert!(r.stderr.contains("in 1 damaged stretch passed over"), "{name}: {}", r.stderr);
        assert_eq!(r.tally("packets"), total - 1, "{name}");
    }
}

#[test]
fn max_errors_limits_error_lines_but_not_the_count() {
    let extra = session_messages();
    let (file, n) = session_capture(2, |flow, pcap| {
        for (dir, body) in extra.iter().take(10) {
            flow.send(pcap, *dir, &[0xff; 4]);
            flow.send(pcap, *dir, &framed(body));
        }
    });
    let path = write_file("many-errors.pcap", &file);
    let all = dissect(&path, &[]);
    assert_eq!(all.status, 0, "{}", all.stderr);
    let oversize = all.tally("oversize frames");
    assert_eq!(oversize, 10);
    let r = dissect(&path, &["--max-errors", "3"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let error_lines =
        |s: &str| s.lines().filter(|l| l.contains(" [c2s ") || l.contains(" [s2c ")).count() as u64;
    let total = error_lines(&all.stdout);
    assert!(total >= oversize);
    assert_eq!(error_lines(&r.stdout), 3, "{}", r.stdout);
    assert_eq!(r.tally("oversize frames"), oversize);
    assert_eq!(r.tally("error lines not shown"), total - 3, "{}", r.stderr);
    assert_eq!(r.tally("messages"), n + 10);
}

/// A browser's upgrade request whose cookies push `Upgrade: websocket` past the detector's
/// look-ahead, and whose answer the capture never shows: the connection was classed "other"
/// and nothing was said of it. It is an unanswered upgrade; the same request without the
/// `Upgrade` header is plain HTTP.
#[test]
fn a_long_upgrade_request_whose_answer_never_came() {
    let cookie: String = (0..120).map(|i| format!("c{i}={}; ", "v".repeat(40))).collect();
    let head = format!("GET /ws HTTP/1.1\r\nHost: im.example.com\r\nCookie: {cookie}\r\n");
    let mut pcap = Pcap::new();
    for (n, last) in [(1, "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n"), (2, "\r\n")] {
        let mut flow = Flow::new(n);
        flow.server.1 = 80;
        flow.handshake(&mut pcap);
        flow.send(&mut pcap, Dir::C2S, format!("{head}{last}").as_bytes());
    }
    let r = dissect(&write_file("long-upgrade.pcap", &pcap.buf), &["--json"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let notes: Vec<(u64, String)> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["transport"].is_object())
        .map(|v| {
            let t = &v["transport"];
            let what = t["kind"].as_str().or(t["protocol"].as_str()).unwrap_or_default();
            (v["conn"].as_u64().unwrap(), format!("{} {what}", t["event"].as_str().unwrap()))
        })
        .collect();
    assert_eq!(
        notes,
        [(0, "websocket_problem handshake_incomplete".into()), (1, "not_msync HTTP".into())],
        "{}",
        r.stdout
    );
}

// ---------------------------------------------------------------------------------------------
// WebSocket picked up mid-stream

/// One WebSocket frame; client frames masked (unless `unmasked`), server frames not.
fn ws_frame(dir: Dir, unmasked: bool, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mask = dir == Dir::C2S && !unmasked;
    let m = if mask { 0x80 } else { 0 };
    let mut f = vec![0x82];
    match payload.len() {
        n @ 0..=125 => f.push(m | n as u8),
        n @ 126..=0xffff => {
            f.push(m | 126);
            f.extend((n as u16).to_be_bytes());
        }
        n => {
            f.push(m | 127);
            f.extend((n as u64).to_be_bytes());
        }
    }
    if mask {
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, x)| x ^ key[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

/// A web session picked up mid-stream inside a server frame longer than the detector's
/// look-ahead (a big pull answer), then the session's messages: the connection was taken for
/// "other" and all of them lost. With client frames unmasked too (a test rig's), which were
/// lost before any was seen in sync.
#[test]
fn a_websocket_session_picked_up_inside_a_long_frame() {
    let msgs = session_messages();
    // An envelope (command SYNC) whose payload is 30000 bytes of text.
    let mut long = vec![0x40, 0x00, 0x4a];
    let mut n = 30_000u32;
    while n >= 0x80 {
        long.push((n as u8) | 0x80);
        n >>= 7;
    }
    long.push(n as u8);
    long.extend("metas of a long pull answer; ".repeat(1100).as_bytes().get(..30_000).unwrap());
    let long = ws_frame(Dir::S2C, false, &long, [0; 4]);
    for unmasked in [false, true] {
        let mut pcap = Pcap::new();
        let mut flow = Flow::new(1);
        // No handshake: the capture begins 12000 bytes before the long frame ends.
        flow.send(&mut pcap, Dir::S2C, &long[long.len() - 12_000..]);
        for (i, (dir, body)) in msgs.iter().enumerate() {
            let key = (i as u32).wrapping_mul(0x9e37_79b9).to_be_bytes();
            flow.send(&mut pcap, *dir, &ws_frame(*dir, unmasked, body, key));
        }
        let name = format!("ws-midstream-long-{unmasked}.pcap");
        let r = dissect(&write_file(&name, &pcap.buf), &["-q"]);
        assert_eq!(r.status, 0, "{}", r.stderr);
        assert_eq!(r.tally("messages"), msgs.len() as u64, "unmasked {unmasked}: {}", r.stderr);
        assert_eq!(r.tally("decode errors"), 0, "{}", r.stderr);
        assert!(r.stderr.contains("1 over WebSocket"), "{}", r.stderr);
    }
}

/// A synthesized web capture picked up mid-stream whose client never masks its frames: the
/// client's messages before any was read in sync were lost (275 of 350 decoded).
#[test]
fn a_midstream_web_capture_with_unmasked_client_frames() {
    use msyncdump::synth::SynthTransport;
    let cfg = SynthConfig {
        clients: 6,
        duration_secs: 60.0,
        seed: 3,
        midstream: true,
        transport: SynthTransport::WebSocket,
        ws_unmasked: true,
        ..Default::default()
    };
    let mut bytes = Vec::new();
    let truth = generate(&cfg, &mut bytes).unwrap();
    let r = dissect(&write_file("ws-midstream-unmasked.pcap", &bytes), &["-q"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.tally("messages"), truth.messages.len() as u64, "{}", r.stderr);
    assert_eq!(r.tally("bytes skipped"), 0, "{}", r.stderr);
}

/// Random bytes on a connection picked up mid-stream, holding a short binary frame whose two
/// bytes pass the envelope check, followed by bytes that cannot begin a frame: "other", not a
/// message over WebSocket (random connections were, about 4 in 1000).
#[test]
fn random_bytes_with_a_short_plausible_frame_are_not_websocket() {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // No byte that could begin a final binary frame, so only the planted one does.
        let b = (x >> 32) as u8;
        if b & 0xbf == 0x82 {
            0x55
        } else {
            b
        }
    };
    let mut bytes: Vec<u8> = (0..1000).map(|_| rnd()).collect();
    // UNREAD (command 1), then a reserved opcode.
    bytes.extend_from_slice(&[0x82, 0x02, 0x40, 0x01, 0x83]);
    bytes.extend((0..7000).map(|_| rnd()));
    let mut pcap = Pcap::new();
    let mut flow = Flow::new(1);
    flow.server.1 = 5432;
    flow.send(&mut pcap, Dir::S2C, &bytes);
    flow.send(&mut pcap, Dir::C2S, &bytes[3000..]);
    let r = dissect(&write_file("ws-random.pcap", &pcap.buf), &["-q"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.tally("messages"), 0, "{}", r.stderr);
    assert!(r.stderr.contains("(0 MSync, 1 other)"), "{}", r.stderr);
}

/// A web session that negotiates permessage-deflate with context takeover; the client logs in,
/// then the server sends 100 messages of 8 million empty metas each: 16 MB apiece from 16 KB
/// on the wire, 1.6 GB from a capture of 1.6 MB, which `report` took 26 s to walk. A direction
/// may inflate 64 times its wire bytes: the bomb's messages are dropped and said so, the
/// client's login is still decoded.
#[test]
fn websocket_deflate_bomb() {
    use flate2::write::DeflateEncoder;
    let mut pcap = Pcap::new();
    let mut flow = Flow::new(5);
    flow.server.1 = 80;
    flow.handshake(&mut pcap);
    flow.send(
        &mut pcap,
        Dir::C2S,
        b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    );
    flow.send(
        &mut pcap,
        Dir::S2C,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    );
    // One raw deflate stream per direction (context takeover), flushed after each message and
    // the flush's 00 00 ff ff taken off, as RFC 7692 has it.
    let deflated = |enc: &mut DeflateEncoder<Vec<u8>>, msg: &[u8]| {
        enc.write_all(msg).unwrap();
        enc.flush().unwrap();
        let mut out = std::mem::take(enc.get_mut());
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
        out.truncate(out.len() - 4);
        out
    };
    let login = session_messages().into_iter().find(|(d, _)| *d == Dir::C2S).unwrap().1;
    let mut client = DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    let mut frame = ws_frame(Dir::C2S, false, &deflated(&mut client, &login), [1, 2, 3, 4]);
    frame[0] |= 0x40;
    flow.send(&mut pcap, Dir::C2S, &frame);
    let bomb = envelope(0, false, &[0x22, 0x00].repeat(8_000_000));
    let mut server = DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..100 {
        let mut frame = ws_frame(Dir::S2C, false, &deflated(&mut server, &bomb), [0; 4]);
        frame[0] |= 0x40;
        flow.send(&mut pcap, Dir::S2C, &frame);
    }
    assert!(pcap.buf.len() < 2_000_000, "{} bytes", pcap.buf.len());
    let path = write_file("ws-deflate-bomb.pcap", &pcap.buf);

    let r = dissect(&path, &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.tally("messages"), 1, "{}", r.stderr);
    assert_eq!(r.tally("decode errors"), 0, "{}", r.stderr);
    // Every bomb message is accounted for: dropped, its bytes skipped, a problem line each.
    let problems = r.stdout.lines().filter(|l| l.contains("permessage-deflate:")).count();
    assert_eq!(problems, 100, "{}", r.stdout);
    assert!(r.stdout.contains("a deflate bomb (message dropped)"), "{}", r.stdout);
    assert!(r.tally("bytes skipped") > 1_500_000, "{}", r.stderr);
    // The first one stopped within what the direction's bytes allow (16 KiB and 64 per byte),
    // past it by the one byte that tells.
    let first = r.stdout.lines().find(|l| l.contains("deflate bomb")).unwrap();
    let n = |after: &str| -> u64 {
        let at = first.find(after).unwrap();
        first[..at].split_whitespace().last().unwrap().parse().unwrap()
    };
    let (inflated, wire) = (n(" bytes inflated"), n(" bytes of stream"));
    assert_eq!(inflated, (16 << 10) + 64 * wire + 1, "{first}");

    let r = report(&path, &["--json"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["overview"]["messages"], 1);
    let ws = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "websocket_problem")
        .unwrap_or_else(|| panic!("{}", v["findings"]));
    assert_eq!(ws["count"], 100);
}
