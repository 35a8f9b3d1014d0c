//! `msyncdump live` on the loopback interface: a real TCP exchange between a small MSync server
//! and client inside the test (login, unread, sends with acks, a notice and a pull), captured
//! with a BPF filter on the test's port, bounded by `--duration` and by `-c`. The `-w` file is
//! read back offline and must hold the same messages.
//!
//! Capturing needs root (or capture rights on the binary): without them the test says so on
//! standard error and checks only that the refusal is a clear error.

#![cfg(feature = "live")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use msyncdump::msync::pb;
use prost::Message;

fn frame(m: &pb::MSync) -> Vec<u8> {
    let body = m.encode_to_vec();
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(&body);
    v
}

fn env(command: i32, payload: Option<Vec<u8>>) -> pb::MSync {
    pb::MSync { version: Some(0), command: Some(command), payload, ..Default::default() }
}

fn read_frame(s: &mut TcpStream) -> Option<pb::MSync> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    pb::MSync::decode(body.as_slice()).ok()
}

fn jid(name: &str) -> pb::Jid {
    pb::Jid { name: Some(name.into()), ..Default::default() }
}

/// Server: answers each request; after the first send, notices a queue and answers its pull.
fn serve(listener: TcpListener) {
    let (mut s, _) = listener.accept().unwrap();
    while let Some(m) = read_frame(&mut s) {
        let answer = match m.command.unwrap_or(0) {
            3 => {
                let p = pb::Provision {
                    status: Some(pb::Status { error_code: Some(0), ..Default::default() }),
                    resource: Some("r1".into()),
                    ..Default::default()
                };
                vec![env(3, Some(p.encode_to_vec()))]
            }
            1 => vec![env(
                1,
                Some(
                    pb::CommUnreadDl { status: Some(Default::default()), ..Default::default() }
                        .encode_to_vec(),
                ),
            )],
            0 => {
                let ul = pb::CommSyncUl::decode(m.payload.unwrap_or_default().as_slice()).unwrap();
                if let Some(meta) = ul.meta {
                    let ack = pb::CommSyncDl {
                        status: Some(Default::default()),
                        meta_id: meta.id,
                        server_id: Some(99),
                        timestamp: Some(1),
                        ..Default::default()
                    };
                    let notice = pb::CommNotice { queue: Some(jid("peer")) };
                    vec![env(0, Some(ack.encode_to_vec())), env(2, Some(notice.encode_to_vec()))]
                } else {
                    let dl = pb::CommSyncDl {
                        status: Some(Default::default()),
                        queue: Some(jid("peer")),
                        is_last: Some(true),
                        next_key: Some(7),
                        ..Default::default()
                    };
                    vec![env(0, Some(dl.encode_to_vec()))]
                }
            }
            4 => vec![env(
                4,
                Some(
                    pb::Logout { status: Some(Default::default()), ..Default::default() }
                        .encode_to_vec(),
                ),
            )],
            _ => vec![],
        };
        for a in answer {
            s.write_all(&frame(&a)).unwrap();
        }
    }
}

fn client(port: u16) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let login = pb::MSync {
        guid: Some(jid("alice")),
        auth: Some("secret-token".into()),
        ..env(
            3,
            Some(
                pb::Provision { version: Some("1.0".into()), ..Default::default() }.encode_to_vec(),
            ),
        )
    };
    s.write_all(&frame(&login)).unwrap();
    read_frame(&mut s).unwrap();
    s.write_all(&frame(&env(1, None))).unwrap();
    read_frame(&mut s).unwrap();
    let meta = pb::Meta { id: Some(42), to: Some(jid("peer")), ns: Some(1), ..Default::default() };
    let send = pb::CommSyncUl { meta: Some(meta), ..Default::default() };
    s.write_all(&frame(&env(0, Some(send.encode_to_vec())))).unwrap();
    read_frame(&mut s).unwrap(); // ack
    read_frame(&mut s).unwrap(); // notice
    let pull = pb::CommSyncUl { queue: Some(jid("peer")), ..Default::default() };
    s.write_all(&frame(&env(0, Some(pull.encode_to_vec())))).unwrap();
    read_frame(&mut s).unwrap();
    s.write_all(&frame(&env(4, None))).unwrap();
    read_frame(&mut s).unwrap();
}

const WANT: &[(&str, &str)] = &[
    ("c2s", "PROVISION"),
    ("s2c", "PROVISION"),
    ("c2s", "UNREAD"),
    ("s2c", "UNREAD"),
    ("c2s", "SYNC"),
    ("s2c", "SYNC"),
    ("s2c", "NOTICE"),
    ("c2s", "SYNC"),
    ("s2c", "SYNC"),
    ("c2s", "LOGOUT"),
    ("s2c", "LOGOUT"),
];

fn commands(json: &str) -> Vec<(String, String)> {
    json.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("msync").is_some())
        .map(|v| {
            (v["dir"].as_str().unwrap().to_string(), v["command"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn live_capture_on_loopback_decodes_the_exchange_and_saves_it() {
    let bin = env!("CARGO_BIN_EXE_msyncdump");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("msyncdump-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let saved = dir.join("live.pcapng");
    let child = Command::new(bin)
        .args(["live", "-i", "lo", "-f", &format!("tcp port {port}"), "--duration", "4s", "--json"])
        .arg("-w")
        .arg(&saved)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Give libpcap time to open the device before the exchange starts.
    thread::sleep(Duration::from_millis(800));
    let server = thread::spawn(move || serve(listener));
    client(port);
    server.join().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    if !out.status.success() {
        assert!(
            stderr.contains("permission") || stderr.contains("not permitted"),
            "a refused capture must say why: {stderr}"
        );
        eprintln!("SKIPPED: cannot capture here (not root, no capture rights): {stderr}");
        return;
    }
    let stdout = String::from_utf8(out.stdout).unwrap();
    let got = commands(&stdout);
    let want: Vec<(String, String)> =
        WANT.iter().map(|(d, c)| (d.to_string(), c.to_string())).collect();
    assert_eq!(got, want, "live output:\n{stdout}\n{stderr}");
    assert!(!stdout.contains("secret-token"));
    assert!(
        stderr.contains("packets captured") && stderr.contains("dropped by kernel"),
        "{stderr}"
    );
    // The saved file, read offline, holds the same messages.
    let offline = Command::new(bin).args(["dissect", "--json"]).arg(&saved).output().unwrap();
    assert!(offline.status.success());
    assert_eq!(commands(&String::from_utf8(offline.stdout).unwrap()), want);
}

#[test]
fn live_stops_after_count_and_rejects_bad_filters_and_interfaces() {
    let bin = env!("CARGO_BIN_EXE_msyncdump");
    let bad = Command::new(bin)
        .args(["live", "-i", "lo", "-f", "tcp port port", "-c", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2));
    if err.contains("permission") || err.contains("not permitted") {
        eprintln!("SKIPPED: cannot capture here: {err}");
        return;
    }
    assert!(err.contains("invalid capture filter \"tcp port port\""), "{err}");
    let tiny =
        Command::new(bin).args(["live", "-i", "lo", "-B", "100", "-c", "1"]).output().unwrap();
    assert_eq!(tiny.status.code(), Some(2));
    let err = String::from_utf8_lossy(&tiny.stderr);
    assert!(err.contains("--buffer-size") && err.contains("256"), "{err}");
    let none = Command::new(bin).args(["live", "-i", "no-such-if0", "-c", "1"]).output().unwrap();
    assert_eq!(none.status.code(), Some(2));
    let err = String::from_utf8_lossy(&none.stderr);
    assert!(
        err.contains("no-such-if0") && err.contains("lo"),
        "the error lists the interfaces: {err}"
    );
    // -c: a few packets of a loopback connection, then it stops by itself.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let child = Command::new(bin)
        .args([
            "live",
            "-i",
            "lo",
            "-f",
            &format!("tcp port {port}"),
            "-c",
            "3",
            "--duration",
            "20s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(800));
    let server = thread::spawn(move || serve(listener));
    client(port);
    server.join().unwrap();
    let start = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(10), "-c 3 must stop well before --duration");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("3 packets captured"));
    let list = Command::new(bin).args(["live", "-D"]).output().unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("lo"));
}
