//! The verbose (`-V`) tree of one message, Wireshark style: one line per field, four spaces
//! of indentation per level, every field with its name and value.
//!
//! - enums by name and number (`command: SYNC (0)`), unknown values `status: 99 (unknown)`;
//! - embedded messages as a header line with their type and wire length
//!   (`payload: easemob.pb.CommSyncDL (23 bytes)`; zlib payloads
//!   `(40 bytes, zlib-inflated to 57 bytes)`), JIDs with their SDK notation on the header line;
//! - strings quoted, bytes as text when UTF-8 else hex, each with its length; a string that
//!   is not UTF-8 quoted with U+FFFD for its invalid bytes and `[not UTF-8: N bytes]`;
//! - unknown fields `field 42 (varint): 7`; undecodable payloads as hex with a bracketed note;
//! - fields in wire order; with offsets, each line ends in `[@N]`, the tag's offset in the
//!   frame (`[@zlib+N]` inside an inflated payload: offset within the inflated bytes);
//! - control characters, line separators and bidirectional controls escaped (the tree goes to
//!   terminals); secrets `***`, and so are the bytes of an undecoded message that could carry
//!   one (see `Opaque::may_hold_secrets`).

use std::fmt::Write as _;

use super::sdklog::{push_hex, push_text};
use super::{shown_bytes, shown_text, RenderOpts, REDACTED};
use crate::msync::schema::{
    msync_desc, parse_jid, walk_frame, FieldInfo, Nested, Opaque, RawValue, Value, Visitor,
    WireError,
};
use crate::net::Dir;

/// Appends the tree of `frame`, one line per field, each ending in `\n`.
pub fn write_tree(out: &mut String, frame: &[u8], dir: Dir, opts: &RenderOpts) {
    write_tree_with_offsets(out, frame, dir, opts, false);
}

/// As [`write_tree`], with each field's byte offset when `offsets` is set.
pub fn write_tree_with_offsets(
    out: &mut String,
    frame: &[u8],
    dir: Dir,
    opts: &RenderOpts,
    offsets: bool,
) {
    let name = msync_desc().map_or("easemob.pb.MSync", |d| d.full_name);
    let _ = writeln!(out, "{name} ({} bytes)", frame.len());
    let mut v = Tree { out, opts, offsets, depth: 1 };
    walk_frame(frame, dir, opts, &mut v);
}

struct Tree<'o> {
    out: &'o mut String,
    opts: &'o RenderOpts,
    offsets: bool,
    depth: usize,
}

impl Tree<'_> {
    fn start(&mut self, f: &FieldInfo) {
        for _ in 0..self.depth {
            self.out.push_str("    ");
        }
        match f.desc {
            Some(d) => self.out.push_str(d.name),
            None => {
                let _ = write!(self.out, "field {} ({})", f.number, f.wire.as_str());
            }
        }
        self.out.push_str(": ");
    }

    fn end(&mut self, f: &FieldInfo) {
        if self.offsets {
            let _ = match f.offset {
                Some(o) => write!(self.out, " [@{o}]"),
                None => write!(self.out, " [@zlib+{}]", f.local_offset),
            };
        }
        self.out.push('\n');
    }

    /// `b` as text or hex, then `len`: the field's length on the wire (`b` may be its
    /// redaction).
    fn bytes(&mut self, b: &[u8], len: usize) {
        match std::str::from_utf8(b) {
            Ok(s) => {
                self.out.push('"');
                push_text(self.out, s);
                self.out.push('"');
            }
            Err(_) => push_hex(self.out, b),
        }
        let _ = write!(self.out, " ({len} bytes)");
    }
}

impl Visitor for Tree<'_> {
    fn wire_order(&self) -> bool {
        true
    }

    fn value(&mut self, f: &FieldInfo, v: Value<'_>) {
        self.start(f);
        if f.is_secret() && !self.opts.show_secrets {
            self.out.push_str(REDACTED);
        } else {
            let _ = match v {
                Value::Int(n) => write!(self.out, "{n}"),
                Value::Uint(n) => write!(self.out, "{n}"),
                Value::Bool(b) => write!(self.out, "{b}"),
                Value::F32(x) => write!(self.out, "{x}"),
                Value::F64(x) => write!(self.out, "{x}"),
                Value::Str(s) => {
                    self.out.push('"');
                    push_text(self.out, &shown_text(s, self.opts));
                    self.out.push('"');
                    Ok(())
                }
                Value::Bytes(b) => {
                    self.bytes(&shown_bytes(b, self.opts), b.len());
                    Ok(())
                }
                Value::NotUtf8(b) => {
                    self.out.push('"');
                    push_text(self.out, &shown_text(&String::from_utf8_lossy(b), self.opts));
                    self.out.push('"');
                    write!(self.out, " [not UTF-8: {} bytes]", b.len())
                }
                Value::Enum { number, name: Some(n), .. } => write!(self.out, "{n} ({number})"),
                Value::Enum { number, name: None, .. } => write!(self.out, "{number} (unknown)"),
                Value::Raw(RawValue::Varint(n) | RawValue::Fixed64(n)) => write!(self.out, "{n}"),
                Value::Raw(RawValue::Fixed32(n)) => write!(self.out, "{n}"),
                Value::Raw(RawValue::Len(b)) => {
                    self.bytes(b, b.len());
                    Ok(())
                }
                Value::Raw(RawValue::Group(b)) => {
                    push_hex(self.out, b);
                    write!(self.out, " ({} bytes)", b.len())
                }
            };
        }
        self.end(f);
    }

    fn message_start(&mut self, f: &FieldInfo, n: &Nested<'_>) -> bool {
        self.start(f);
        let _ = if n.zlib {
            write!(
                self.out,
                "{} ({} bytes, zlib-inflated to {} bytes)",
                n.desc.full_name,
                n.wire_len,
                n.bytes.len()
            )
        } else {
            write!(self.out, "{} ({} bytes)", n.desc.full_name, n.wire_len)
        };
        if n.desc.full_name == "easemob.pb.JID" {
            if let Some(j) = parse_jid(n.bytes) {
                let s = j.to_string();
                self.out.push_str(": ");
                push_text(self.out, &s);
            }
        }
        self.end(f);
        self.depth += 1;
        true
    }

    fn message_end(&mut self, _f: &FieldInfo, _n: &Nested<'_>) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn opaque(&mut self, f: &FieldInfo, why: Opaque<'_>, bytes: &[u8]) {
        self.start(f);
        if why.may_hold_secrets() && !self.opts.show_secrets {
            self.out.push_str(REDACTED);
        } else {
            push_hex(self.out, bytes);
        }
        let _ = write!(self.out, " ({} bytes) [", bytes.len());
        push_text(self.out, &why.to_string());
        self.out.push(']');
        self.end(f);
    }

    fn error(&mut self, err: &WireError) {
        for _ in 0..self.depth {
            self.out.push_str("    ");
        }
        let _ = writeln!(self.out, "[error: {err}]");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msync::schema::samples;

    fn tree(frame: &[u8], dir: Dir) -> String {
        let mut s = String::new();
        write_tree(&mut s, frame, dir, &RenderOpts::default());
        s
    }

    const PULL_ANSWER: &str = "\
easemob.pb.MSync (230 bytes)
    version: MSYNC_V1 (0)
    command: SYNC (0)
    payload: easemob.pb.CommSyncDL (223 bytes)
        status: easemob.pb.Status (2 bytes)
            error_code: OK (0)
        metas: easemob.pb.Meta (192 bytes)
            id: 392677053607969272
            from: easemob.pb.JID (62 bytes): easemob-demo#chatdemoui_z13@easemob.com/webim_device_uuid
                app_key: \"easemob-demo#chatdemoui\"
                name: \"z13\"
                domain: \"easemob.com\"
                client_resource: \"webim_device_uuid\"
            to: easemob.pb.JID (43 bytes): easemob-demo#chatdemoui_z12@easemob.com
                app_key: \"easemob-demo#chatdemoui\"
                name: \"z12\"
                domain: \"easemob.com\"
            timestamp: 1508992051149
            ns: CHAT (1)
            payload: easemob.pb.MessageBody (62 bytes)
                type: CHAT (1)
                from: easemob.pb.JID (5 bytes): z13
                    name: \"z13\"
                to: easemob.pb.JID (5 bytes): z12
                    name: \"z12\"
                contents: easemob.pb.MessageBody.Content (7 bytes)
                    type: TEXT (0)
                    text: \"123\"
                ext: easemob.pb.KeyValue (35 bytes)
                    key: \"weichat\"
                    type: JSON_STRING (8)
                    string_value: \"{\"originType\":\"webim\"}\"
        next_key: 392677053607969272
        queue: easemob.pb.JID (5 bytes): z13
            name: \"z13\"
        timestamp: 1508992051178
";

    #[test]
    fn pull_answer() {
        assert_eq!(tree(&samples::sync_pull_answer(), Dir::S2C), PULL_ANSWER);
    }

    #[test]
    fn offsets() {
        let mut o = String::new();
        let f = samples::sync_pull_answer();
        write_tree_with_offsets(&mut o, &f, Dir::S2C, &RenderOpts::default(), true);
        assert!(o.contains("\n    command: SYNC (0) [@2]\n"), "{o}");
        assert!(o.contains("\n            error_code: OK (0) [@9]\n"), "{o}");
        assert!(o.contains("\n        timestamp: 1508992051178 [@223]\n"), "{o}");
        o.clear();
        let z = samples::zlib_pull_answer();
        write_tree_with_offsets(&mut o, &z, Dir::S2C, &RenderOpts::default(), true);
        assert!(o.contains("(162 bytes, zlib-inflated to 223 bytes) [@"), "{o}");
        assert!(o.contains("\n            error_code: OK (0) [@zlib+2]\n"), "{o}");
    }

    #[test]
    fn unknowns_secrets_encryption() {
        let t = tree(&samples::odd(), Dir::S2C);
        for line in [
            "            error_code: 99 (unknown)\n",
            "    field 42 (varint): 7\n",
            "    field 43 (fixed32): 1\n",
            "    field 44 (fixed64): 2\n",
            // Unknown bytes beside the envelope's credentials may be a newer one.
            "    field 45 (bytes): ***\n",
            "    field 46 (group): ***\n",
        ] {
            assert!(t.contains(line), "{line} in {t}");
        }
        let mut s = String::new();
        let opts = RenderOpts { show_secrets: true, ..Default::default() };
        write_tree(&mut s, &samples::odd(), Dir::S2C, &opts);
        assert!(s.contains("    field 45 (bytes): \"hi\" (2 bytes)\n"), "{s}");
        assert!(s.contains("    field 46 (group): 0801 (2 bytes)\n"), "{s}");
        let t = tree(&samples::encrypted(), Dir::C2S);
        assert!(t.contains("\n    payload: 01020304 (4 bytes) [encrypted]\n"), "{t}");
        assert!(t.contains("\n    encrypt_type: ENCRYPT_AES_GCM (3)\n"), "{t}");
        let t = tree(&samples::provision_send(), Dir::C2S);
        assert!(t.contains("\n    auth: ***\n") && t.contains("\n        password: ***\n"), "{t}");
        assert!(t.contains("\n        os_type: OS_ANDROID (1)\n"), "{t}");
        assert!(!t.contains("hunter2"));
        let mut s = String::new();
        let opts = RenderOpts { show_secrets: true, ..Default::default() };
        write_tree(&mut s, &samples::provision_send(), Dir::C2S, &opts);
        assert!(s.contains("\n        password: \"hunter2\"\n"), "{s}");
    }

    #[test]
    fn secrets_in_bytes_shown_undecoded() {
        samples::check_hidden(|f, d, opts| {
            let mut s = String::new();
            write_tree(&mut s, f, d, opts);
            s
        });
        let t = tree(&samples::hidden_secrets()[0].0, Dir::C2S);
        assert!(
            t.contains("\n    payload: *** (12 bytes) [not a valid easemob.pb.Provision: "),
            "{t}"
        );
        let t = tree(&samples::hidden_secrets()[3].0, Dir::C2S);
        assert!(t.contains("\n                    field 8 (fixed64): ***\n"), "{t}");
    }

    #[test]
    fn truncated_and_invalid() {
        let f = samples::sync_ack();
        let t = tree(f.get(..f.len() - 3).unwrap_or(&[]), Dir::S2C);
        assert!(t.starts_with("easemob.pb.MSync ("), "{t}");
        assert!(t.lines().last().unwrap_or_default().starts_with("    [error: "), "{t}");
        let bad = prost::Message::encode_to_vec(&samples::envelope(0, vec![0x0a, 5]));
        let t = tree(&bad, Dir::S2C);
        // A pull answer can carry attachment keys: its bytes are shown only with the secrets.
        assert!(
            t.contains("    payload: *** (2 bytes) [not a valid easemob.pb.CommSyncDL: "),
            "{t}"
        );
        let mut t = String::new();
        write_tree(
            &mut t,
            &bad,
            Dir::S2C,
            &RenderOpts { show_secrets: true, ..Default::default() },
        );
        assert!(
            t.contains("    payload: 0a05 (2 bytes) [not a valid easemob.pb.CommSyncDL: "),
            "{t}"
        );
        for (f, d) in samples::all() {
            for n in 0..=f.len() {
                let _ = tree(f.get(..n).unwrap_or(&[]), d);
            }
        }
    }
}
