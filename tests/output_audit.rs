//! What `dissect` (every format) and `report` (text and JSON) print for hostile and unusual
//! MSync messages: secrets stay redacted wherever they hide, strings from the wire cannot break
//! a line or drive a terminal, and every line of JSON parses.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::Command;

use msyncdump::msync::pb;
use msyncdump::net::Dir;
use prost::Message;

mod common;
use common::{Flow, Pcap};

// ---------------------------------------------------------------------------------------------
// Captures

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

/// Whether `out` shows `secret` as text, hex or base64 (at any of the three alignments).
fn shows(out: &str, secret: &str) -> bool {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    let b64 = |b: &[u8]| -> String {
        let mut s = String::new();
        for c in b.chunks(3) {
            let n = c.iter().enumerate().fold(0u32, |n, (i, &x)| n | u32::from(x) << (16 - 8 * i));
            for k in 0..=c.len() {
                s.push(char::from(B64[(n >> (18 - 6 * k) & 63) as usize]));
            }
        }
        s
    };
    let aligned = (0..3).any(|a| {
        let mut b = vec![0u8; a];
        b.extend_from_slice(secret.as_bytes());
        let enc = b64(&b);
        let inner = enc.get(a * 4 / 3 + 1..enc.len().saturating_sub(1)).unwrap_or("");
        inner.len() >= 4 && out.contains(inner)
    });
    out.contains(secret) || out.contains(&hex) || aligned
}

fn zlib(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(b).unwrap();
    z.finish().unwrap()
}

#[test]
fn secrets_stay_redacted_wherever_they_hide() {
    const SECRETS: [&str; 14] = [
        "msync-auth-1",
        "msync-ekey-1",
        "prov-auth-1",
        "prov-pass-1",
        "prov-ekey-1",
        "prov-token-1",
        "prov-ntp-1",
        "att-secret-1",
        "thumb-secret-1",
        "bad-body-key",
        "WIRETYPE",
        "ext-call-token",
        "json-ext-pass",
        "meta-json-token",
    ];
    // An application credential as a number (a KeyValue's varint value).
    const PIN: i64 = 918_273_645_546_372;
    let mut pcap = Pcap::new();
    let mut f = Flow::open(&mut pcap, 2);
    let login = pb::Provision {
        os_type: Some(1),
        auth: Some(SECRETS[2].into()),
        password: Some(SECRETS[3].into()),
        encrypt_key: Some(SECRETS[4].into()),
        auth_token: Some(SECRETS[5].into()),
        ntp_key: Some(SECRETS[6].into()),
        device_name: Some("phone".into()),
        ..Default::default()
    };
    let mut env = envelope(3, login.encode_to_vec());
    env.guid = Some(jid("alice"));
    env.auth = Some(SECRETS[0].into());
    env.encrypt_key = Some(SECRETS[1].into());
    f.send(&mut pcap, Dir::C2S, &env.encode_to_vec());
    let ok = pb::Provision {
        status: Some(pb::Status { error_code: Some(0), ..Default::default() }),
        ..Default::default()
    };
    f.send(&mut pcap, Dir::S2C, &envelope(3, ok.encode_to_vec()).encode_to_vec());
    // A chat body with both attachment keys, in a zlib pull answer.
    let content = pb::message_body::Content {
        r#type: Some(1),
        secret_key: Some(SECRETS[7].into()),
        thumbnail_secret_key: Some(SECRETS[8].into()),
        ..Default::default()
    };
    let kv = |key: &str, v: pb::key_value::Value| pb::KeyValue {
        key: Some(key.into()),
        r#type: Some(7),
        value: Some(v),
    };
    let body = pb::MessageBody {
        r#type: Some(1),
        contents: vec![content],
        ext: vec![
            kv("callToken", pb::key_value::Value::StringValue(SECRETS[11].into())),
            kv(
                "em_ext",
                pb::key_value::Value::StringValue(format!(r#"{{"password":"{}"}}"#, SECRETS[12])),
            ),
            kv("pin_pwd", pb::key_value::Value::VarintValue(PIN)),
            kv("weichat", pb::key_value::Value::StringValue(r#"{"originType":"webim"}"#.into())),
        ],
        meta: Some(format!(r#"{{"auth_token": "{}", "n": 1}}"#, SECRETS[13]).into_bytes()),
        ..Default::default()
    };
    let meta = |id: u64, payload: Vec<u8>| pb::Meta {
        id: Some(id),
        ns: Some(1),
        payload: Some(payload),
        ..Default::default()
    };
    let dl = pb::CommSyncDl { metas: vec![meta(1, body.encode_to_vec())], ..Default::default() };
    let mut pull = envelope(0, zlib(&dl.encode_to_vec()));
    pull.compress_algorimth = Some(1);
    f.send(&mut pcap, Dir::S2C, &pull.encode_to_vec());
    // A chat body that does not parse (its bytes hold an attachment key), and one whose
    // attachment key arrives as fixed64 (field 8, wire type 1).
    let content =
        pb::message_body::Content { secret_key: Some(SECRETS[9].into()), ..Default::default() };
    let mut bad = pb::MessageBody { contents: vec![content], ..Default::default() }.encode_to_vec();
    bad.extend_from_slice(&[0x0a, 0x05, 0x01]);
    let mut wrong = vec![0x41];
    wrong.extend_from_slice(SECRETS[10].as_bytes());
    let wrong = [&[0x22, wrong.len() as u8][..], &wrong].concat();
    let dl = pb::CommSyncDl { metas: vec![meta(2, bad), meta(3, wrong)], ..Default::default() };
    f.send(&mut pcap, Dir::S2C, &envelope(0, dl.encode_to_vec()).encode_to_vec());
    let file = write("hidden-secrets.pcap", &pcap);

    for extra in [&[][..], &["--max-depth", "1"], &["--max-depth", "3"], &["-j", "2"]] {
        for (what, out) in all_outputs(&file, extra) {
            for secret in SECRETS {
                assert!(!shows(&out, secret), "{what}: {secret} shows in\n{out}");
            }
            // The fixed64 one would show as a number, and so would the PIN.
            let n = u64::from_le_bytes(*b"WIRETYPE").to_string();
            assert!(!out.contains(&n), "{what}: the fixed64 key shows in\n{out}");
            assert!(!out.contains(&PIN.to_string()), "{what}: the PIN shows in\n{out}");
            // What names no credential stays.
            if extra.is_empty() && (what.contains("verbose") || what.contains("sdklog")) {
                assert!(out.contains("originType"), "{what}: {out}");
            }
        }
    }
    // The secrets are all there to be shown when asked for.
    let shown = run(&["dissect", "-V", "--show-secrets"], &file);
    for secret in SECRETS[..9].iter().chain(&SECRETS[11..]) {
        assert!(shown.contains(secret), "{secret} not in\n{shown}");
    }
    assert!(shown.contains(&PIN.to_string()), "{shown}");
    assert!(shows(&shown, SECRETS[9]), "{shown}");
}

/// The overview's message count includes undecodable frames, and names them, so that its
/// parts add up to it.
#[test]
fn the_overview_names_the_undecodable_frames_it_counts() {
    let mut pcap = Pcap::new();
    let mut f = Flow::open(&mut pcap, 1);
    let login = pb::Provision { os_type: Some(1), ..Default::default() };
    f.send(&mut pcap, Dir::C2S, &envelope(3, login.encode_to_vec()).encode_to_vec());
    // A PROVISION answer whose first field claims more bytes than follow.
    f.send(&mut pcap, Dir::S2C, &envelope(3, vec![0x0a, 0x7f, 1, 2]).encode_to_vec());
    let file = write("undecodable-in-overview.pcap", &pcap);
    let doc = json_check(&run(&["report", "--json"], &file), "report --json");
    assert_eq!(
        (doc["overview"]["messages"].as_u64(), doc["overview"]["decode_errors"].as_u64()),
        (Some(2), Some(1))
    );
    let out = run(&["report", "--section", "overview", "--no-color", "--width", "200"], &file);
    assert!(out.contains("2 (PROVISION 1↑ 0↓, 1 undecodable)"), "{out}");
}

/// A zero-length frame in sync is undecodable and says why: its length prefix was 0.
#[test]
fn an_empty_frame_says_it_is_empty() {
    let mut pcap = Pcap::new();
    let mut f = Flow::open(&mut pcap, 1);
    let login = pb::Provision { os_type: Some(1), ..Default::default() };
    f.send(&mut pcap, Dir::C2S, &envelope(3, login.encode_to_vec()).encode_to_vec());
    f.send(&mut pcap, Dir::C2S, &[]);
    f.send(&mut pcap, Dir::C2S, &envelope(3, login.encode_to_vec()).encode_to_vec());
    let file = write("empty-frame.pcap", &pcap);
    let out = run(&["dissect"], &file);
    let errors: Vec<&str> = out.lines().filter(|l| l.contains("empty frame")).collect();
    assert_eq!(errors.len(), 1, "{out}");
    assert!(!out.contains("not a well-formed"), "{out}");
    assert_eq!(out.lines().filter(|l| l.contains("PROVISION")).count(), 2, "{out}");
}
