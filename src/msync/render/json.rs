//! Canonical protobuf JSON of one message, written by hand into a byte buffer (no per-field
//! allocation: numbers, base64 and string escapes are formatted in place).
//!
//! Beyond proto3 JSON: `MSync.payload` and every `Meta.payload` become the decoded message with
//! an `"@type"` member (and `"@zlib": true` when inflated); unknown fields are listed under
//! `"@unknown": [{"field": 42, "wire": "varint", "value": "7"}]` (values as strings: decimal
//! for varint/fixed, base64 for bytes/group); payloads that cannot be decoded are
//! `{"@encrypted": true, "bytes": …}` or `{"@error": "…", "bytes": …}`; a frame that stops
//! parsing gets a top-level `"@error"` after the fields read before the fault. A singular field
//! repeated on the wire prints its last occurrence (protobuf's rule). Secrets print as `"***"`,
//! also as the `value` of an unknown field that is a secret with a wrong wire type, and as the
//! `bytes` of an undecodable message that could carry one (see `Opaque::may_hold_secrets`).
//!
//! Invariant: whatever the input, the output is one valid JSON object.

use super::{RenderOpts, REDACTED};
use crate::msync::lossy::{self, NotUtf8};
use crate::msync::schema::{
    walk_frame, FieldInfo, Kind, Nested, Opaque, RawValue, Value, Visitor, WireError,
};
use crate::net::Dir;

/// Appends the JSON object for `frame` (no trailing newline).
pub fn write_json(out: &mut Vec<u8>, frame: &[u8], dir: Dir, opts: &RenderOpts) {
    write_json_noting(out, frame, dir, opts, &mut Vec::new());
}

/// As [`write_json`], adding the string fields that are not UTF-8 to `not_utf8` (their value
/// is written with U+FFFD for the invalid bytes).
pub fn write_json_noting(
    out: &mut Vec<u8>,
    frame: &[u8],
    dir: Dir,
    opts: &RenderOpts,
    not_utf8: &mut Vec<NotUtf8>,
) {
    out.push(b'{');
    let mut v = Json { out, opts, stack: Vec::with_capacity(16), not_utf8 };
    v.stack.push(Level { first: true, array: false, unknown: false });
    walk_frame(frame, dir, opts, &mut v);
    v.close_object();
}

#[derive(Clone, Copy)]
struct Level {
    /// Nothing written yet at this level.
    first: bool,
    /// A JSON array (elements have no key).
    array: bool,
    /// An `"@unknown": [` array is open inside this object.
    unknown: bool,
}

struct Json<'o> {
    out: &'o mut Vec<u8>,
    opts: &'o RenderOpts,
    stack: Vec<Level>,
    not_utf8: &'o mut Vec<NotUtf8>,
}

fn is_64bit(k: Kind) -> bool {
    matches!(k, Kind::Int64 | Kind::Uint64 | Kind::Fixed64 | Kind::Sint64 | Kind::Sfixed64)
}

impl Json<'_> {
    fn top(&mut self) -> Option<&mut Level> {
        self.stack.last_mut()
    }

    /// Writes a `,` unless this is the first item at the current level.
    fn sep(&mut self) {
        if let Some(l) = self.top() {
            let first = l.first;
            l.first = false;
            if !first {
                self.out.push(b',');
            }
        }
    }

    fn close_unknown(&mut self) {
        if let Some(l) = self.top() {
            if l.unknown {
                l.unknown = false;
                self.out.push(b']');
            }
        }
    }

    /// Starts a member (or array element) for a known field: separator and key.
    fn member(&mut self, f: &FieldInfo) {
        self.close_unknown();
        self.sep();
        let in_array = self.stack.last().is_some_and(|l| l.array);
        if !in_array {
            let name = f.desc.map_or("", |d| d.json_name);
            push_str(self.out, name);
            self.out.push(b':');
        }
    }

    fn open(&mut self, c: u8, array: bool) {
        self.out.push(c);
        self.stack.push(Level { first: true, array, unknown: false });
    }

    fn close_object(&mut self) {
        self.close_unknown();
        self.out.push(b'}');
        self.stack.pop();
    }

    fn unknown(&mut self, f: &FieldInfo, r: RawValue<'_>) {
        let open = self.stack.last().is_some_and(|l| l.unknown);
        if !open {
            self.sep();
            self.out.extend_from_slice(b"\"@unknown\":[");
            if let Some(l) = self.top() {
                l.unknown = true;
            }
        } else {
            self.out.push(b',');
        }
        self.out.extend_from_slice(b"{\"field\":");
        push_u64(self.out, u64::from(f.number));
        self.out.extend_from_slice(b",\"wire\":\"");
        self.out.extend_from_slice(r.wire_type().as_str().as_bytes());
        self.out.extend_from_slice(b"\",\"value\":\"");
        // A secret field with a wrong wire type lands here: its number still makes it secret.
        if f.is_secret() && !self.opts.show_secrets {
            self.out.extend_from_slice(REDACTED.as_bytes());
        } else {
            match r {
                RawValue::Varint(n) | RawValue::Fixed64(n) => push_u64(self.out, n),
                RawValue::Fixed32(n) => push_u64(self.out, u64::from(n)),
                RawValue::Len(b) | RawValue::Group(b) => push_base64(self.out, b),
            }
        }
        self.out.extend_from_slice(b"\"}");
    }
}

impl Visitor for Json<'_> {
    fn value(&mut self, f: &FieldInfo, v: Value<'_>) {
        if let Value::Raw(r) = v {
            self.unknown(f, r);
            return;
        }
        if f.superseded {
            return;
        }
        if let Value::NotUtf8(_) = v {
            lossy::note(self.not_utf8, f.not_utf8());
        }
        self.member(f);
        // The schema's secrets are all strings or bytes: skip the name check for other values
        // (a credential's value in a KeyValue may be any: `secret_value` says so).
        if (f.secret_value || matches!(v, Value::Str(_) | Value::Bytes(_) | Value::NotUtf8(_)))
            && f.is_secret()
            && !self.opts.show_secrets
        {
            push_str(self.out, REDACTED);
            return;
        }
        let quote = f.desc.is_some_and(|d| is_64bit(d.kind));
        let out = &mut *self.out;
        match v {
            Value::Int(n) => {
                if quote {
                    out.push(b'"');
                }
                push_i64(out, n);
                if quote {
                    out.push(b'"');
                }
            }
            Value::Uint(n) => {
                if quote {
                    out.push(b'"');
                }
                push_u64(out, n);
                if quote {
                    out.push(b'"');
                }
            }
            Value::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
            Value::F32(x) => push_float(out, f64::from(x), Some(x)),
            Value::F64(x) => push_float(out, x, None),
            Value::Str(s) => push_str(out, &super::shown_text(s, self.opts)),
            Value::NotUtf8(b) => {
                push_str(out, &super::shown_text(&String::from_utf8_lossy(b), self.opts));
            }
            Value::Bytes(b) => {
                out.push(b'"');
                push_base64(out, &super::shown_bytes(b, self.opts));
                out.push(b'"');
            }
            Value::Enum { number, name, .. } => match name {
                Some(n) => push_str(out, n),
                None => push_i64(out, i64::from(number)),
            },
            Value::Raw(_) => {}
        }
    }

    fn message_start(&mut self, f: &FieldInfo, n: &Nested<'_>) -> bool {
        if f.superseded {
            return false;
        }
        self.member(f);
        self.open(b'{', false);
        if n.payload {
            self.sep();
            self.out.extend_from_slice(b"\"@type\":");
            push_str(self.out, n.desc.full_name);
            if n.zlib {
                self.out.extend_from_slice(b",\"@zlib\":true");
            }
        }
        true
    }

    fn message_end(&mut self, _f: &FieldInfo, _n: &Nested<'_>) {
        self.close_object();
    }

    fn repeated_start(&mut self, f: &FieldInfo) {
        self.member(f);
        self.open(b'[', true);
    }

    fn repeated_end(&mut self, _f: &FieldInfo) {
        self.out.push(b']');
        self.stack.pop();
    }

    fn opaque(&mut self, f: &FieldInfo, why: Opaque<'_>, bytes: &[u8]) {
        if f.superseded {
            return;
        }
        self.member(f);
        match why {
            Opaque::Encrypted => self.out.extend_from_slice(b"{\"@encrypted\":true"),
            other => {
                self.out.extend_from_slice(b"{\"@error\":");
                // Error path only: the allocation does not touch the common case.
                push_str(self.out, &other.to_string());
            }
        }
        self.out.extend_from_slice(b",\"bytes\":");
        // Bytes that may hold a secret (a message that did not parse, or nested too deep)
        // print as the secret would.
        if why.may_hold_secrets() && !self.opts.show_secrets {
            push_str(self.out, REDACTED);
        } else {
            self.out.push(b'"');
            push_base64(self.out, bytes);
            self.out.push(b'"');
        }
        self.out.push(b'}');
    }

    fn error(&mut self, err: &WireError) {
        self.close_unknown();
        self.sep();
        self.out.extend_from_slice(b"\"@error\":");
        push_str(self.out, &err.to_string());
    }
}

/// A proto3-JSON float. `as_f32` is the value before widening, printed as an `f32` so that
/// `0.1f32` reads `0.1`, not `0.10000000149011612`.
fn push_float(out: &mut Vec<u8>, x: f64, as_f32: Option<f32>) {
    use std::io::Write as _;
    if x.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if x.is_infinite() {
        out.extend_from_slice(if x > 0.0 { b"\"Infinity\"" } else { b"\"-Infinity\"" });
    } else {
        // `{:?}` is the shortest round-trip form and always a valid JSON number (`1.0`,
        // `1e-7`, `1e300`); writing into a Vec cannot fail.
        let _ = match as_f32 {
            Some(f) => write!(out, "{f:?}"),
            None => write!(out, "{x:?}"),
        };
    }
}

pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(b) = buf.get_mut(i) {
            *b = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(buf.get(i..).unwrap_or(&[]));
}

pub(crate) fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_u64(out, n.unsigned_abs());
}

/// A JSON string literal (RFC 8259): `"` and `\` escaped, control characters as `\u00XX`
/// (with the short forms for `\n`, `\r`, `\t`). Unescaped runs are copied at once.
pub(crate) fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let b = s.as_bytes();
    // Most strings need no escape: a branch-free scan (which the compiler vectorises) and one
    // copy, instead of a branch per byte.
    let clean = !b.iter().fold(false, |any, &c| any | (c < 0x20) | (c == b'"') | (c == b'\\'));
    if clean {
        out.extend_from_slice(b);
        out.push(b'"');
        return;
    }
    let mut run = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(b.get(run..i).unwrap_or(&[]));
        run = i + 1;
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            // A nibble indexes a 16-entry table.
            out.extend_from_slice(&[hex_digit(c >> 4), hex_digit(c & 15)]);
        } else {
            out.extend_from_slice(esc);
        }
    }
    out.extend_from_slice(b.get(run..).unwrap_or(&[]));
    out.push(b'"');
}

/// Standard base64 with padding (RFC 4648 §4).
pub(crate) fn push_base64(out: &mut Vec<u8>, b: &[u8]) {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sym = |x: u32| T.get((x & 63) as usize).copied().unwrap_or(b'=');
    out.reserve(b.len().div_ceil(3) * 4);
    let mut chunks = b.chunks_exact(3);
    for c in &mut chunks {
        if let [a, b2, c2] = *c {
            let n = (u32::from(a) << 16) | (u32::from(b2) << 8) | u32::from(c2);
            out.extend_from_slice(&[sym(n >> 18), sym(n >> 12), sym(n >> 6), sym(n)]);
        }
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend_from_slice(&[sym(n >> 18), sym(n >> 12), b'=', b'=']);
        }
        [a, b2] => {
            let n = (u32::from(a) << 16) | (u32::from(b2) << 8);
            out.extend_from_slice(&[sym(n >> 18), sym(n >> 12), sym(n >> 6), b'=']);
        }
        _ => {}
    }
}

/// The lowercase hex digit of a nibble (`n < 16`).
fn hex_digit(n: u8) -> u8 {
    match n {
        0..=9 => b'0' + n,
        _ => b'a' + (n & 15).saturating_sub(10),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msync::pb;
    use crate::msync::schema::samples;
    use prost::Message;
    use serde_json::Value as J;

    fn raw(frame: &[u8], dir: Dir, opts: &RenderOpts) -> String {
        let mut out = Vec::new();
        write_json(&mut out, frame, dir, opts);
        String::from_utf8(out).unwrap_or_else(|e| panic!("not UTF-8: {e}"))
    }

    fn json(frame: &[u8], dir: Dir) -> J {
        json_opts(frame, dir, &RenderOpts::default())
    }

    fn json_opts(frame: &[u8], dir: Dir, opts: &RenderOpts) -> J {
        let s = raw(frame, dir, opts);
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("invalid JSON ({e}): {s}"))
    }

    #[test]
    fn pull_answer_is_canonical() {
        let j = json(&samples::sync_pull_answer(), Dir::S2C);
        assert_eq!(j["command"], "SYNC");
        let p = &j["payload"];
        assert_eq!(p["@type"], "easemob.pb.CommSyncDL");
        assert_eq!(p["status"]["errorCode"], "OK");
        assert_eq!(p["nextKey"], "392677053607969272");
        let m = &p["metas"][0];
        assert_eq!(m["ns"], "CHAT");
        assert_eq!(m["timestamp"], "1508992051149");
        assert_eq!(m["from"]["clientResource"], "webim_device_uuid");
        assert_eq!(m["payload"]["@type"], "easemob.pb.MessageBody");
        assert_eq!(m["payload"]["contents"][0]["text"], "123");
        assert_eq!(m["payload"]["ext"][0]["stringValue"], "{\"originType\":\"webim\"}");
        assert!(p.get("@zlib").is_none());
    }

    #[test]
    fn every_sample_in_both_directions_is_valid() {
        for (f, d) in samples::all() {
            for dir in [d, d.reverse()] {
                let j = json(&f, dir);
                assert!(j.is_object());
            }
        }
        // Direction selects UL or DL.
        let j = json(&samples::sync_pull(), Dir::C2S);
        assert_eq!(j["payload"]["@type"], "easemob.pb.CommSyncUL");
        let j = json(&samples::unread_dl(), Dir::S2C);
        assert_eq!(j["payload"]["@type"], "easemob.pb.CommUnreadDL");
        assert_eq!(j["payload"]["unread"][0]["n"], 2);
        let j = json(&samples::logout(), Dir::C2S);
        assert_eq!(j["payload"]["status"]["errorCode"], "UNAUTHORIZED");
    }

    #[test]
    fn secrets() {
        let f = samples::provision_send();
        let j = json(&f, Dir::C2S);
        assert_eq!(j["auth"], "***");
        assert_eq!(j["payload"]["password"], "***");
        let opts = RenderOpts { show_secrets: true, ..Default::default() };
        let j = json_opts(&f, Dir::C2S, &opts);
        assert_eq!(j["auth"], "YWMtsecret-token");
        assert_eq!(j["payload"]["password"], "hunter2");
    }

    #[test]
    fn secrets_in_bytes_shown_undecoded() {
        samples::check_hidden(|f, d, opts| {
            let mut out = Vec::new();
            write_json(&mut out, f, d, opts);
            String::from_utf8_lossy(&out).into_owned()
        });
        let j = json(&samples::hidden_secrets()[0].0, Dir::C2S);
        assert_eq!(j["payload"]["bytes"], "***");
        let j = json(&samples::hidden_secrets()[3].0, Dir::C2S);
        let content = &j["payload"]["meta"]["payload"]["contents"][0];
        assert_eq!(
            content["@unknown"][0],
            serde_json::json!({"field": 8, "wire": "fixed64", "value": "***"})
        );
    }

    #[test]
    fn zlib_encrypted_unknown() {
        let j = json(&samples::zlib_pull_answer(), Dir::S2C);
        assert_eq!(j["payload"]["@zlib"], true);
        assert_eq!(j["payload"]["metas"][0]["payload"]["contents"][0]["text"], "123");
        let j = json(&samples::encrypted(), Dir::C2S);
        assert_eq!(j["payload"], serde_json::json!({"@encrypted": true, "bytes": "AQIDBA=="}));
        let j = json(&samples::odd(), Dir::S2C);
        assert_eq!(j["payload"]["status"]["errorCode"], 99);
        assert_eq!(
            j["@unknown"][0],
            serde_json::json!({"field": 42, "wire": "varint", "value": "7"})
        );
        // Unknown bytes beside the envelope's credentials may be a newer one.
        assert_eq!(j["@unknown"][3]["value"], "***");
        assert_eq!(j["@unknown"][4]["wire"], "group");
        assert_eq!(j["@unknown"][4]["value"], "***");
        let mut out = Vec::new();
        let opts = RenderOpts { show_secrets: true, ..Default::default() };
        write_json(&mut out, &samples::odd(), Dir::S2C, &opts);
        let j: serde_json::Value = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(j["@unknown"][3]["value"], "aGk=");
        assert_eq!(j["@unknown"][4]["value"], "CAE=");
    }

    #[test]
    fn zlib_over_cap_or_corrupt_is_an_error_note() {
        let opts = RenderOpts { max_inflated: 100, ..Default::default() };
        let j = json_opts(&samples::zlib_pull_answer(), Dir::S2C, &opts);
        let e = j["payload"]["@error"].as_str().unwrap_or_default();
        assert!(e.contains("exceeds 100"), "{j}");
        let mut m = samples::envelope(0, vec![0x78, 0x9c, 1, 2, 3]);
        m.compress_algorimth = Some(1);
        m.trace_id = Some(5);
        let j = json(&m.encode_to_vec(), Dir::S2C);
        assert!(j["payload"]["@error"].as_str().unwrap_or_default().starts_with("zlib"), "{j}");
        // A pull answer can carry attachment keys: its bytes are shown only with the secrets.
        assert_eq!(j["payload"]["bytes"], "***");
        let shown = RenderOpts { show_secrets: true, ..Default::default() };
        let j = json_opts(&m.encode_to_vec(), Dir::S2C, &shown);
        assert_eq!(j["payload"]["bytes"], "eJwBAgM=");
        assert_eq!(j["traceId"], "5");
    }

    #[test]
    fn bad_payload_is_bytes_plus_error() {
        let j = json(&samples::envelope(0, vec![0xff]).encode_to_vec(), Dir::S2C);
        assert!(j["payload"]["@error"].as_str().unwrap_or_default().contains("CommSyncDL"));
        assert_eq!(j["payload"]["bytes"], "***");
        let shown = RenderOpts { show_secrets: true, ..Default::default() };
        let j = json_opts(&samples::envelope(0, vec![0xff]).encode_to_vec(), Dir::S2C, &shown);
        assert_eq!(j["payload"]["bytes"], "/w==");
        // Unknown command: plain bytes.
        let j = json(&samples::envelope(9, vec![1, 2]).encode_to_vec(), Dir::S2C);
        assert_eq!(j["command"], 9);
        assert_eq!(j["payload"], "AQI=");
    }

    #[test]
    fn command_after_payload_and_packed_encrypt_type() {
        let p = pb::Provision { version: Some("1".into()), ..Default::default() }.encode_to_vec();
        let mut f = vec![0x4a, p.len() as u8];
        f.extend_from_slice(&p);
        f.extend_from_slice(&[0x40, 3]);
        let j = json(&f, Dir::C2S);
        assert_eq!(j["payload"]["@type"], "easemob.pb.Provision");
        // encrypt_type packed [0, 1] after the payload.
        f.extend_from_slice(&[0x5a, 2, 0, 1]);
        let j = json(&f, Dir::C2S);
        assert_eq!(j["payload"]["@encrypted"], true);
        assert_eq!(j["encryptType"], serde_json::json!(["ENCRYPT_NONE", "ENCRYPT_AES_128_CBC"]));
    }

    #[test]
    fn meta_namespaces() {
        let stat = pb::StatisticsBody { operation: Some(2), ..Default::default() }.encode_to_vec();
        let mk = |ns: Option<i32>, payload: Vec<u8>| {
            let meta = pb::Meta { ns, payload: Some(payload), ..Default::default() };
            let dl = pb::CommSyncDl { metas: vec![meta], ..Default::default() };
            samples::envelope(0, dl.encode_to_vec()).encode_to_vec()
        };
        let j = json(&mk(None, stat.clone()), Dir::S2C);
        let p = &j["payload"]["metas"][0]["payload"];
        assert_eq!(p["@type"], "easemob.pb.StatisticsBody");
        assert_eq!(p["operation"], "USER_LOGIN_ANOTHER_DEVICE");
        let muc = pb::MucBody { operation: Some(2), ..Default::default() }.encode_to_vec();
        let j = json(&mk(Some(2), muc), Dir::S2C);
        assert_eq!(j["payload"]["metas"][0]["payload"]["@type"], "easemob.pb.MUCBody");
        let j = json(&mk(Some(3), vec![]), Dir::S2C);
        assert_eq!(j["payload"]["metas"][0]["payload"]["@type"], "easemob.pb.RosterBody");
        let j = json(&mk(Some(4), vec![]), Dir::S2C);
        assert_eq!(j["payload"]["metas"][0]["payload"]["@type"], "easemob.pb.ConferenceBody");
        let j = json(&mk(Some(5), vec![1]), Dir::S2C);
        assert_eq!(j["payload"]["metas"][0]["payload"], "AQ==");
        assert_eq!(j["payload"]["metas"][0]["ns"], "NOTIFY");
    }

    #[test]
    fn floats_and_escapes() {
        let kv =
            |v| pb::KeyValue { key: Some("k\u{1}\"\\\n".into()), r#type: None, value: Some(v) };
        let body = pb::MessageBody {
            ext: vec![
                kv(pb::key_value::Value::FloatValue(f32::NAN)),
                kv(pb::key_value::Value::DoubleValue(f64::INFINITY)),
                kv(pb::key_value::Value::DoubleValue(f64::NEG_INFINITY)),
                kv(pb::key_value::Value::FloatValue(0.1)),
                kv(pb::key_value::Value::DoubleValue(1e300)),
                kv(pb::key_value::Value::VarintValue(-5)),
            ],
            meta: Some(b"{\"a\":1}".to_vec()),
            ..Default::default()
        };
        let meta =
            pb::Meta { ns: Some(1), payload: Some(body.encode_to_vec()), ..Default::default() };
        let ul = pb::CommSyncUl { meta: Some(meta), ..Default::default() };
        let f = samples::envelope(0, ul.encode_to_vec()).encode_to_vec();
        let s = raw(&f, Dir::C2S, &RenderOpts::default());
        assert!(s.contains("\"k\\u0001\\\"\\\\\\n\""), "{s}");
        let j = json(&f, Dir::C2S);
        let ext = &j["payload"]["meta"]["payload"]["ext"];
        assert_eq!(ext[0]["key"], "k\u{1}\"\\\n");
        assert_eq!(ext[0]["floatValue"], "NaN");
        assert_eq!(ext[1]["doubleValue"], "Infinity");
        assert_eq!(ext[2]["doubleValue"], "-Infinity");
        assert!(s.contains("\"floatValue\":0.1}"), "{s}");
        assert_eq!(ext[4]["doubleValue"], 1e300);
        assert_eq!(ext[5]["varintValue"], "-5");
        assert_eq!(j["payload"]["meta"]["payload"]["meta"], "eyJhIjoxfQ==");
    }

    #[test]
    fn singular_repeated_on_wire_last_wins() {
        // command 1 then command 3: the payload is a Provision, printed once.
        let f = [0x40, 1, 0x40, 3, 0x4a, 0];
        let s = raw(&f, Dir::C2S, &RenderOpts::default());
        assert_eq!(
            s,
            "{\"command\":\"PROVISION\",\"payload\":{\"@type\":\"easemob.pb.Provision\"}}"
        );
    }

    #[test]
    fn wrong_wire_type_is_unknown() {
        // command (8) as a length-delimited field.
        let j = json(&[0x42, 1, 0], Dir::C2S);
        assert_eq!(
            j["@unknown"][0],
            serde_json::json!({"field": 8, "wire": "bytes", "value": "AA=="})
        );
    }

    #[test]
    fn repeated_field_mixed_with_wrong_wire_type() {
        // CommSyncDL.metas (4) once as a varint (unknown) and once as a message (known): the
        // known run and the unknown list must not interleave (found by proptest).
        let f = samples::envelope(0, vec![0x20, 0x05, 0x22, 0x00, 0x20, 0x06]).encode_to_vec();
        let j = json(&f, Dir::S2C);
        assert_eq!(j["payload"]["metas"], serde_json::json!([{}]));
        assert_eq!(j["payload"]["@unknown"][1]["value"], "6");
    }

    #[test]
    fn every_prefix_is_valid_json() {
        for (f, d) in samples::all() {
            for n in 0..=f.len() {
                let _ = json(f.get(..n).unwrap_or(&[]), d);
            }
        }
        let f = samples::sync_ack();
        let j = json(f.get(..f.len() - 1).unwrap_or(&[]), Dir::S2C);
        assert!(j["@error"].as_str().unwrap_or_default().contains("offset"), "{j}");
    }

    #[test]
    fn deep_nesting_is_bounded() {
        // 300 000 nested groups: an error, quickly, not a stack overflow.
        let f = vec![0x0b; 300_000];
        let j = json(&f, Dir::S2C);
        assert!(j["@error"].as_str().unwrap_or_default().contains("nested"), "{j}");
        // Deeply nested length-delimited unknown fields are bytes, never walked.
        let mut inner = vec![];
        for _ in 0..5_000 {
            let mut outer = vec![0xfa, 0x01];
            let mut len = inner.len();
            while len >= 0x80 {
                outer.push((len as u8) | 0x80);
                len >>= 7;
            }
            outer.push(len as u8);
            outer.extend_from_slice(&inner);
            inner = outer;
        }
        let _ = json(&inner, Dir::S2C);
        // max_depth cuts the tree: the payload is at depth 1, Meta at 2.
        let opts = RenderOpts { max_depth: 1, ..Default::default() };
        let j = json_opts(&samples::sync_pull_answer(), Dir::S2C, &opts);
        assert_eq!(j["payload"]["@type"], "easemob.pb.CommSyncDL");
        let e = j["payload"]["metas"][0]["@error"].as_str().unwrap_or_default();
        assert!(e.contains("too deep"), "{j}");
        let opts = RenderOpts { max_depth: 0, ..Default::default() };
        let j = json_opts(&samples::sync_pull_answer(), Dir::S2C, &opts);
        assert!(j["payload"]["@error"].is_string());
    }

    #[test]
    fn base64_vectors() {
        for (i, o) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg==")]
        {
            let mut v = Vec::new();
            push_base64(&mut v, i.as_bytes());
            assert_eq!(v, o.as_bytes());
        }
        let mut v = Vec::new();
        push_i64(&mut v, i64::MIN);
        v.push(b' ');
        push_u64(&mut v, u64::MAX);
        assert_eq!(v, b"-9223372036854775808 18446744073709551615");
    }

    /// Rough throughput (`cargo test --lib json::tests::throughput -- --ignored --nocapture`);
    /// meaningful only with an optimized build.
    #[test]
    #[ignore]
    fn throughput() {
        let frames = samples::all();
        let total: usize = frames.iter().map(|(f, _)| f.len()).sum();
        let mut out = Vec::with_capacity(1 << 20);
        let t = std::time::Instant::now();
        let rounds = 20_000;
        for _ in 0..rounds {
            for (f, d) in &frames {
                out.clear();
                write_json(&mut out, f, *d, &RenderOpts::default());
            }
        }
        let mb = (total * rounds) as f64 / 1e6;
        println!("{:.1} MB/s", mb / t.elapsed().as_secs_f64());
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_give_valid_json(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            for dir in [Dir::C2S, Dir::S2C] {
                let _ = json(&data, dir);
                let mut s = String::new();
                crate::msync::render::tree::write_tree(&mut s, &data, dir, &RenderOpts::default());
                s.clear();
                crate::msync::render::sdklog::write_sdklog(&mut s, &data, dir, &RenderOpts::default());
            }
        }

        #[test]
        fn mutated_samples_give_valid_json(i in 0usize..14, pos in 0usize..4096, byte in proptest::num::u8::ANY) {
            let all = samples::all();
            if let Some((f, d)) = all.get(i % all.len()) {
                let mut f = f.clone();
                let n = f.len();
                if let Some(b) = f.get_mut(pos % n.max(1)) {
                    *b = byte;
                }
                let _ = json(&f, *d);
                let mut s = String::new();
                crate::msync::render::tree::write_tree(&mut s, &f, *d, &RenderOpts::default());
                crate::msync::render::sdklog::write_sdklog(&mut s, &f, *d, &RenderOpts::default());
            }
        }
    }
}
