//! The verbose (`-V`) tree of one message, Wireshark style: one line per field, four spaces
//! of indentation per level, every field with its name and value.
//!
//! - enums by name and number (`command: SYNC (0)`), unknown values `status: 99 (unknown)`;
//! - embedded messages as a header line with their type and wire length
//!   (`payload: easemob.pb.CommSyncDL (23 bytes)`; zlib payloads
//!   `(40 bytes, zlib-inflated to 57 bytes)`), JIDs with their SDK notation on the header line;
//! - strings quoted, bytes as text when UTF-8 else hex, each with its length;
//! - unknown fields `field 42 (varint): 7`; undecodable payloads as hex with a bracketed note;
//! - fields in wire order; with offsets, each line ends in `[@N]`, the tag's offset in the
//!   frame (`[@zlib+N]` inside an inflated payload: offset within the inflated bytes);
//! - control characters escaped (the tree goes to terminals); secrets `***`.

use std::fmt::Write as _;

use super::sdklog::{push_hex, push_text};
use super::{RenderOpts, REDACTED};
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

    fn bytes(&mut self, b: &[u8]) {
        match std::str::from_utf8(b) {
            Ok(s) => {
                self.out.push('"');
                push_text(self.out, s);
                self.out.push('"');
            }
            Err(_) => push_hex(self.out, b),
        }
        let _ = write!(self.out, " ({} bytes)", b.len());
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
                    push_text(self.out, s);
                    self.out.push('"');
                    Ok(())
                }
                Value::Bytes(b) => {
                    self.bytes(b);
                    Ok(())
                }
                Value::Enum { number, name: Some(n), .. } => write!(self.out, "{n} ({number})"),
                Value::Enum { number, name: None, .. } => write!(self.out, "{number} (unknown)"),
                Value::Raw(RawValue::Varint(n) | RawValue::Fixed64(n)) => write!(self.out, "{n}"),
                Value::Raw(RawValue::Fixed32(n)) => write!(self.out, "{n}"),
                Value::Raw(RawValue::Len(b)) => {
                    self.bytes(b);
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
        push_hex(self.out, bytes);
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

    #[test]
    fn pull_answer() {
        let f = samples::sync_pull_answer();
        let t = tree(&f, Dir::S2C);
        println!("{t}");
        let mut o = String::new();
        write_tree_with_offsets(&mut o, &f, Dir::S2C, &RenderOpts::default(), true);
        println!("{o}");
        let mut j = Vec::new();
        super::super::json::write_json(&mut j, &f, Dir::S2C, &RenderOpts::default());
        println!("{}", String::from_utf8_lossy(&j));
        let mut s = String::new();
        super::super::sdklog::write_sdklog(
            &mut s,
            &samples::zlib_pull_answer(),
            Dir::S2C,
            &RenderOpts::default(),
        );
        println!("{}", tree(&samples::zlib_pull_answer(), Dir::S2C));
        println!("{}", tree(&samples::odd(), Dir::S2C));
        println!("{}", tree(&samples::encrypted(), Dir::C2S));
        println!("{}", tree(&samples::provision_send(), Dir::C2S));
        for (f, d) in samples::all() {
            let mut j = Vec::new();
            super::super::json::write_json(&mut j, &f, d, &RenderOpts::default());
            println!("{}", String::from_utf8_lossy(&j));
        }
    }
}
