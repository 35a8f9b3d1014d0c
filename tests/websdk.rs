//! Real traffic of the official web SDK (easemob-websdk 4.21.1) against a test server,
//! captured on the wire (see captures/websdk-README.md), run in Node and in headless Chromium:
//! WebSocket with masked frames, with and without permessage-deflate, with and without LZ4
//! protocol compression in one or both directions. Every MSync message the server logged (`*.expected.jsonl`, protobuf bytes after
//! all compression is removed) must come out of the dissector byte for byte, in order.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use msyncdump::capture::{FileReader, PacketSource};
use msyncdump::pipeline::{
    run_sources, Consumer, Event, Pipeline, PipelineConfig, Totals, Transport,
};

#[derive(Default)]
struct Collect {
    msgs: BTreeMap<&'static str, Vec<(String, Vec<u8>)>>,
    lz4: usize,
    other: Vec<String>,
}

impl Consumer for Collect {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
        match ev {
            Event::Message { ctx, raw, msg } => {
                assert_eq!(ctx.transport, Transport::WebSocket);
                if let Some(l) = ctx.lz4 {
                    assert!(l.crc_ok);
                    self.lz4 += 1;
                }
                self.msgs
                    .entry(ctx.dir.as_str())
                    .or_default()
                    .push((msg.command.name().into_owned(), raw.to_vec()))
            }
            Event::DecodeError { error, .. } => self.other.push(format!("decode error: {error}")),
            Event::Gap { .. } => self.other.push("gap".into()),
            Event::Frame { problem, .. } => self.other.push(format!("{problem:?}")),
            _ => {}
        }
        Ok(())
    }
    fn finish(&mut self, _: &Totals) -> io::Result<()> {
        Ok(())
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

fn check(name: &str, want_lz4: bool, messages: usize) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let reader = FileReader::open(&dir.join(format!("{name}.pcap"))).unwrap();
    let mut sources = vec![Ok(Box::new(reader) as Box<dyn PacketSource>)].into_iter();
    let mut p = Pipeline::new(PipelineConfig::default(), Collect::default());
    run_sources(&mut sources, &mut p, &mut |l| panic!("{l}")).unwrap();
    let (got, totals) = p.finish().unwrap();
    assert!(got.other.is_empty(), "{name}: {:?}", got.other);
    let log = std::fs::read_to_string(dir.join(format!("{name}.expected.jsonl"))).unwrap();
    let opened = log.lines().filter(|l| l.contains(r#""dir":"ws-open""#)).count();
    assert_eq!(totals.websocket_connections, opened as u64, "{name}: WebSocket connections");
    let mut want: BTreeMap<&str, Vec<(String, Vec<u8>)>> = BTreeMap::new();
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let d = match v["dir"].as_str() {
            Some("c2s") => "c2s",
            Some("s2c") => "s2c",
            _ => continue,
        };
        want.entry(d)
            .or_default()
            .push((v["command"].as_str().unwrap().to_string(), hex(v["pb_hex"].as_str().unwrap())));
    }
    assert_eq!(
        want.values().map(Vec::len).sum::<usize>(),
        messages,
        "{name}: the session has {messages} messages"
    );
    for d in ["c2s", "s2c"] {
        let (w, g) = (&want[d], &got.msgs[d]);
        assert_eq!(w.len(), g.len(), "{name} {d}: message count");
        for (i, (a, b)) in w.iter().zip(g).enumerate() {
            assert_eq!(a.0, b.0, "{name} {d} #{i}: command");
            assert!(a.1 == b.1, "{name} {d} #{i} ({}): bytes differ", a.0);
        }
    }
    assert_eq!(got.lz4 > 0, want_lz4, "{name}: LZ4-wrapped messages");
}

#[test]
fn plain() {
    check("websdk-plain", false, 29);
}

#[test]
fn lz4_uplink() {
    check("websdk-lz4", true, 29);
}

#[test]
fn lz4_both_directions() {
    check("websdk-lz4-bi", true, 29);
}

#[test]
fn permessage_deflate() {
    check("websdk-deflate", false, 29);
}

#[test]
fn lz4_and_permessage_deflate() {
    check("websdk-lz4-deflate", true, 29);
}

// The same session run by headless Chromium: the browser's own WebSocket (handshake with Origin
// and User-Agent, its masking, its permessage-deflate) and XMLHttpRequest (CORS preflight).
#[test]
fn chromium_plain() {
    check("websdk-chromium-plain", false, 29);
}

#[test]
fn chromium_lz4_and_permessage_deflate() {
    check("websdk-chromium-lz4-deflate", true, 29);
}

// Logged in for ~77 s: the SDK's own heartbeats (an UNREAD once 30 s have passed), each with the
// STATISTIC metas the SDK sends beside it.
#[test]
fn chromium_heartbeats() {
    check("websdk-chromium-heartbeat", false, 41);
}

// Another device logs in as the user: the server's STATISTIC meta USER_LOGIN_ANOTHER_DEVICE in
// a pull answer, the SDK's reaction, and the server closing the WebSocket.
#[test]
fn chromium_kicked() {
    check("websdk-chromium-kicked", false, 32);
}

// The server resets the TCP connection after the third text message: the SDK reconnects on a
// new connection, logs in again, sends one more message and logs out.
#[test]
fn chromium_reconnect() {
    check("websdk-chromium-reconnect", false, 34);
}

// The server refuses the login (PROVISION answered UNAUTHORIZED): two messages, then the close.
#[test]
fn chromium_login_refused() {
    check("websdk-chromium-login-refused", false, 2);
}

// LZ4 inside permessage-deflate over a lossy path: packets dropped before the capture point
// and after it (nftables), so the capture holds the kernel's retransmissions; every message
// must still come out whole, deflate and LZ4 contexts intact.
#[test]
fn chromium_lossy() {
    check("websdk-chromium-lossy", true, 29);
}

// Every kind of message the SDK sends over MSync: single chat text (with ext, online only),
// custom, command, location, image, file, audio and video by URL, recall, edit, the three
// acks; group, targeted group and thread messages; a chat room joined, written to and left.
// The server's acks of the join and the edit carry a MUC and a NOTIFY meta.
#[test]
fn chromium_rich() {
    check("websdk-chromium-rich", false, 61);
}

// easemob-websdk 4.8.1 reaches its server through SockJS: WebSocket text frames, each MSync
// message a base64 string in SockJS's JSON frames. No LOGOUT: that release only closes.
#[test]
fn sockjs_of_release_4_8() {
    check("websdk-v4.8-sockjs", false, 27);
}

// easemob-websdk 4.17.0 offers no LZ4; this server selects it for both directions anyway. The
// client keeps sending plain messages, the server wraps its own (which that release cannot
// read: the session stops there).
#[test]
fn lz4_selected_but_not_offered() {
    check("websdk-v4.17-lz4-unoffered", true, 6);
}
