//! Messages with `string` fields that are not UTF-8 (Latin-1 text from another client): they
//! decode in every output of `dissect`, with the field shown with U+FFFD and a counted warning,
//! and `report` takes them in (sessions, logins, latencies) with a `string_not_utf8` finding.
//! Secrets stay redacted whatever their bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::PathBuf;
use std::process::Command;

use msyncdump::msync::pb;
use msyncdump::net::Dir;
use prost::Message;
use serde_json::Value;

mod common;
use common::{Flow, Pcap};

/// `msg` encoded, with `marker` (which must occur once) overwritten by `with`, of the same
/// length: bytes a string field of prost's types can never hold.
fn patched(msg: &impl Message, marker: &str, with: &[u8]) -> Vec<u8> {
    assert_eq!(marker.len(), with.len());
    let mut b = msg.encode_to_vec();
    let at = b.windows(marker.len()).position(|w| w == marker.as_bytes()).unwrap();
    b[at..at + with.len()].copy_from_slice(with);
    b
}

fn envelope(command: i32, payload: Vec<u8>) -> pb::MSync {
    pb::MSync { command: Some(command), payload: Some(payload), ..Default::default() }
}

fn jid(name: &str) -> pb::Jid {
    pb::Jid { name: Some(name.into()), ..Default::default() }
}

/// A login whose device name and password are Latin-1, its answer whose status reason is, a
/// chat text that is, and the send's acknowledgement.
fn capture() -> PathBuf {
    let mut pcap = Pcap::new();
    let mut f = Flow::open(&mut pcap, 1);
    let login = pb::Provision {
        os_type: Some(1),
        version: Some("4.1.0".into()),
        device_name: Some("J#rg's phone".into()),
        password: Some("p#ss-SECRET".into()),
        resource: Some("android_1".into()),
        ..Default::default()
    };
    let login = patched(&login, "J#rg", b"J\xf6rg");
    let login = {
        let at = login.windows(4).position(|w| w == b"p#ss").unwrap();
        let mut l = login.clone();
        l[at + 1] = 0xe4;
        l
    };
    let mut env = envelope(3, login);
    env.guid = Some(jid("alice"));
    f.send(&mut pcap, Dir::C2S, &env.encode_to_vec());

    let answer = pb::Provision {
        status: Some(pb::Status {
            error_code: Some(0),
            reason: Some("r#ussi".into()),
            ..Default::default()
        }),
        resource: Some("android_1".into()),
        ..Default::default()
    };
    let answer = patched(&answer, "r#ussi", b"r\xe9ussi");
    f.send(&mut pcap, Dir::S2C, &envelope(3, answer).encode_to_vec());

    let body = pb::MessageBody {
        r#type: Some(1),
        from: Some(jid("alice")),
        to: Some(jid("bob")),
        contents: vec![pb::message_body::Content {
            r#type: Some(0),
            text: Some("d#j# vu".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut text = body.encode_to_vec();
    let at = text.windows(7).position(|w| w == b"d#j# vu").unwrap();
    text[at + 1] = 0xe9;
    text[at + 3] = 0xe0;
    let meta = pb::Meta {
        id: Some(777),
        from: Some(jid("alice")),
        to: Some(jid("bob")),
        ns: Some(1),
        payload: Some(text),
        ..Default::default()
    };
    let ul = pb::CommSyncUl { meta: Some(meta), ..Default::default() };
    f.send(&mut pcap, Dir::C2S, &envelope(0, ul.encode_to_vec()).encode_to_vec());
    let ack = pb::CommSyncDl {
        status: Some(pb::Status { error_code: Some(0), ..Default::default() }),
        meta_id: Some(777),
        server_id: Some(9001),
        timestamp: Some(1_509_019_200_000),
        ..Default::default()
    };
    f.send(&mut pcap, Dir::S2C, &envelope(0, ack.encode_to_vec()).encode_to_vec());

    let dir = std::env::temp_dir().join(format!("msyncdump-not-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("latin1.pcap");
    std::fs::write(&p, &pcap.buf).unwrap();
    p
}

/// stdout and stderr of a successful run.
fn run(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_msyncdump")).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: exit {:?}\n{stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    (String::from_utf8(out.stdout).expect("output is UTF-8"), stderr)
}

#[test]
fn dissect_decodes_every_message_and_counts_the_warnings() {
    let p = capture();
    let file = p.to_str().unwrap();
    for format in ["summary", "verbose", "sdklog", "json"] {
        let (out, err) = run(&["dissect", "--format", format, file]);
        assert!(!out.contains("undecodable"), "{format}:\n{out}");
        assert!(err.contains("4 messages, 0 decode errors"), "{format}: {err}");
        assert!(err.contains("2 messages with a string that is not UTF-8"), "{format}: {err}");
        assert!(out.contains("r\u{fffd}ussi"), "{format}:\n{out}");
        assert!(out.contains("J\u{fffd}rg"), "{format}:\n{out}");
        assert!(out.contains("d\u{fffd}j\u{fffd} vu"), "{format}:\n{out}");
        // The password: redacted, in none of its spellings.
        assert!(!out.contains("SECRET"), "{format}:\n{out}");
        if format != "summary" {
            let (shown, _) = run(&["dissect", "--format", format, "--show-secrets", file]);
            assert!(shown.contains("p\u{fffd}ss-SECRET"), "{format}:\n{shown}");
        }
    }
    let (summary, _) = run(&["dissect", file]);
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines.len(), 4, "{summary}");
    assert!(lines[0].contains("PROVISION ↑"), "{summary}");
    assert!(
        lines[0].contains("[warning: string field `Provision.device_name` is not UTF-8]"),
        "{summary}"
    );
    assert!(lines[1].contains("[warning: string field `Status.reason` is not UTF-8]"), "{summary}");
    assert!(lines[2].contains("SYNC ↑ send meta=777"), "{summary}");
    assert!(
        lines[2].contains("[warning: string field `MessageBody.Content.text` is not UTF-8]"),
        "{summary}"
    );
    assert!(lines[3].contains("ack meta=777"), "{summary}");

    let (tree, _) = run(&["dissect", "-V", file]);
    assert!(tree.contains("reason: \"r\u{fffd}ussi\" [not UTF-8: 6 bytes]"), "{tree}");
    assert!(tree.contains("password: ***"), "{tree}");

    let (sdk, _) = run(&["dissect", "--format", "sdklog", file]);
    assert!(sdk.contains("[warning: string field `Status.reason` is not UTF-8]"), "{sdk}");

    let (json, _) = run(&["dissect", "--json", file]);
    let docs: Vec<Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(docs.len(), 4);
    assert_eq!(
        docs[0]["not_utf8"],
        serde_json::json!(["Provision.password", "Provision.device_name"])
    );
    assert_eq!(docs[0]["msync"]["payload"]["password"], "***");
    assert_eq!(docs[1]["not_utf8"], serde_json::json!(["Status.reason"]));
    assert_eq!(docs[1]["msync"]["payload"]["status"]["reason"], "r\u{fffd}ussi");
    assert_eq!(docs[2]["not_utf8"], serde_json::json!(["MessageBody.Content.text"]));
    assert!(docs[3].get("not_utf8").is_none());
}

#[test]
fn report_takes_the_messages_in() {
    let p = capture();
    let (out, _) = run(&["report", "--json", p.to_str().unwrap()]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["overview"]["messages"], 4);
    assert_eq!(doc["overview"]["decode_errors"], 0);
    let finding = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "string_not_utf8")
        .unwrap_or_else(|| panic!("no finding"));
    // The login, its answer, and the chat body.
    assert_eq!(finding["count"], 3);
    assert_eq!(finding["severity"], "warning");
    assert!(!out.contains("SECRET"));
}
