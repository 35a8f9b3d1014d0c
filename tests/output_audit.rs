//! What `dissect` (every format) and `report` (text and JSON) print for hostile and unusual
//! MSync messages: secrets stay redacted wherever they hide, strings from the wire cannot break
//! a line or drive a terminal, and every line of JSON parses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use etherparse::{PacketBuilder, TcpHeader};
use msyncdump::msync::pb;
use msyncdump::net::Dir;
use prost::Message;

// ---------------------------------------------------------------------------------------------
// Captures

/// A classic pcap (little-endian, µs, Ethernet).
struct Pcap {
    buf: Vec<u8>,
    usec: u32,
}

impl Pcap {
    fn new() -> Pcap {
        let mut buf = Vec::new();
        buf.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        buf.extend_from_slice(&2u16.to_le_bytes());
        buf.extend_from_slice(&4u16.to_le_bytes());
        buf.extend_from_slice(&[0; 8]);
        buf.extend_from_slice(&262_144u32.to_le_bytes());
        buf.extend_from_slice(&1u32.to_le_bytes());
        Pcap { buf, usec: 0 }
    }

    fn packet(&mut self, data: &[u8]) {
        self.usec += 1000;
        self.buf.extend_from_slice(&1_509_019_200u32.to_le_bytes());
        self.buf.extend_from_slice(&self.usec.to_le_bytes());
        self.buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(data);
    }
}

/// One TCP connection (with its handshake) from a client to the server port 6717, carrying
/// length-prefixed MSync messages.
struct Flow {
    client: ([u8; 4], u16),
    server: ([u8; 4], u16),
    seq: [u32; 2],
}

impl Flow {
    fn open(pcap: &mut Pcap, n: u16) -> Flow {
        let mut f = Flow {
            client: ([10, 0, 0, 1], 40_000 + n),
            server: ([198, 51, 100, 10], 6717),
            seq: [1000, 0x8000_0000],
        };
        pcap.packet(&f.segment(Dir::C2S, "S", &[]));
        f.seq[0] += 1;
        pcap.packet(&f.segment(Dir::S2C, "SA", &[]));
        f.seq[1] += 1;
        pcap.packet(&f.segment(Dir::C2S, "A", &[]));
        f
    }

    fn segment(&self, dir: Dir, flags: &str, payload: &[u8]) -> Vec<u8> {
        let (src, dst) = match dir {
            Dir::C2S => (self.client, self.server),
            Dir::S2C => (self.server, self.client),
        };
        let mut tcp = TcpHeader::new(src.1, dst.1, self.seq[dir.index()], 65535);
        tcp.syn = flags.contains('S');
        tcp.psh = !payload.is_empty();
        if flags.contains('A') {
            tcp.ack = true;
            tcp.acknowledgment_number = self.seq[dir.reverse().index()];
        }
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src.0, dst.0, 64)
            .tcp_header(tcp)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    /// Sends one MSync message (length-prefixed).
    fn send(&mut self, pcap: &mut Pcap, dir: Dir, msg: &[u8]) {
        let mut framed = (msg.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(msg);
        for chunk in framed.chunks(1400) {
            pcap.packet(&self.segment(dir, "A", chunk));
            self.seq[dir.index()] = self.seq[dir.index()].wrapping_add(chunk.len() as u32);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Messages

fn envelope(command: i32, payload: Vec<u8>) -> pb::MSync {
    pb::MSync {
        version: Some(0),
        command: Some(command),
        payload: Some(payload),
        ..Default::default()
    }
}

fn jid(name: &str) -> pb::Jid {
    pb::Jid { name: Some(name.into()), ..Default::default() }
}

// ---------------------------------------------------------------------------------------------
// Running the binary

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("msyncdump-output-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn write(name: &str, pcap: &Pcap) -> PathBuf {
    let p = tmp(name);
    std::fs::write(&p, &pcap.buf).unwrap();
    p
}

fn run(args: &[&str], file: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_msyncdump")).args(args).arg(file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: exit {:?}\n{stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    String::from_utf8(out.stdout).expect("output is UTF-8")
}

/// Every output of `dissect` and `report` for `file`, with `extra` arguments to `dissect`.
fn all_outputs(file: &Path, extra: &[&str]) -> Vec<(String, String)> {
    let mut outs = Vec::new();
    for format in ["summary", "verbose", "sdklog", "json"] {
        let mut args = vec!["dissect", "--format", format];
        args.extend_from_slice(extra);
        outs.push((format!("dissect --format {format} {extra:?}"), run(&args, file)));
    }
    outs.push(("report".into(), run(&["report", "--no-color", "--width", "200"], file)));
    outs.push(("report --json".into(), run(&["report", "--json"], file)));
    outs
}

/// Characters no text output may carry raw: control characters but the line feed, the line
/// and paragraph separators and the bidirectional overrides and isolates.
fn raw_char(s: &str) -> Option<char> {
    s.chars().find(|&c| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    })
}

// ---------------------------------------------------------------------------------------------
// Cases

/// Text that tries every trick on a terminal or a line-oriented reader.
const EVIL: &str =
    "E\u{1b}[31mRED\u{1b}]0;t\u{7}\r\nX\tY\u{0}Z\u{202e}cod.exe\u{2028}L\u{2066}I\u{85}\u{7f}";

#[test]
fn strings_from_the_wire_cannot_break_text_lines() {
    let mut pcap = Pcap::new();
    let mut f = Flow::open(&mut pcap, 1);
    let login = pb::Provision {
        os_type: Some(1),
        version: Some(format!("4.0{EVIL}")),
        device_uuid: Some(format!("uuid{EVIL}")),
        device_name: Some(format!("dev{EVIL}")),
        resource: Some(format!("res{EVIL}")),
        ..Default::default()
    };
    let mut env = envelope(3, login.encode_to_vec());
    env.guid = Some(pb::Jid {
        app_key: Some(format!("app{EVIL}")),
        name: Some(format!("u{EVIL}")),
        domain: Some(format!("dom{EVIL}")),
        client_resource: Some(format!("r{EVIL}")),
    });
    f.send(&mut pcap, Dir::C2S, &env.encode_to_vec());
    let status =
        pb::Status { error_code: Some(2), reason: Some(format!("no{EVIL}")), ..Default::default() };
    let answer = pb::Provision { status: Some(status.clone()), ..Default::default() };
    f.send(&mut pcap, Dir::S2C, &envelope(3, answer.encode_to_vec()).encode_to_vec());
    let dl = pb::CommSyncDl {
        status: Some(status),
        queue: Some(jid(&format!("q{EVIL}"))),
        ..Default::default()
    };
    f.send(&mut pcap, Dir::S2C, &envelope(0, dl.encode_to_vec()).encode_to_vec());
    let file = write("evil-strings.pcap", &pcap);
    for (what, out) in all_outputs(&file, &[]) {
        if what.starts_with("report --json") {
            json_check(&out, &what);
            continue;
        }
        if what.contains("json") {
            for line in out.lines() {
                json_check(line, &what);
            }
            continue;
        }
        for line in out.lines() {
            assert_eq!(raw_char(line), None, "{what}: raw character in {line:?}");
        }
    }
}

/// The text parses as one JSON value.
fn json_check(s: &str, what: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {s}"))
}
