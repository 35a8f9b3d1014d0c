//! Canonical protobuf JSON of one message, written by hand into a byte buffer (no per-field
//! allocation: numbers, base64 and string escapes are formatted in place).
//!
//! Beyond proto3 JSON: `MSync.payload` and every `Meta.payload` become the decoded message with
//! an `"@type"` member (and `"@zlib": true` when inflated); unknown fields are listed under
//! `"@unknown": [{"field": 42, "wire": "varint", "value": "7"}]` (values as strings: decimal
//! for varint/fixed, base64 for bytes/group); payloads that cannot be decoded are
//! `{"@encrypted": true, "bytes": …}` or `{"@error": "…", "bytes": …}`; a frame that stops
//! parsing gets a top-level `"@error"` after the fields read before the fault. A singular field
//! repeated on the wire prints its last occurrence (protobuf's rule). Secrets print as `"***"`.
//!
//! Invariant: whatever the input, the output is one valid JSON object.

use super::{RenderOpts, REDACTED};
use crate::msync::schema::{
    walk_frame, FieldInfo, Kind, Nested, Opaque, RawValue, Value, Visitor, WireError,
};
use crate::net::Dir;

/// Appends the JSON object for `frame` (no trailing newline).
pub fn write_json(out: &mut Vec<u8>, frame: &[u8], dir: Dir, opts: &RenderOpts) {
    out.push(b'{');
    let mut v = Json { out, opts, stack: Vec::with_capacity(16) };
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
        match r {
            RawValue::Varint(n) | RawValue::Fixed64(n) => push_u64(self.out, n),
            RawValue::Fixed32(n) => push_u64(self.out, u64::from(n)),
            RawValue::Len(b) | RawValue::Group(b) => push_base64(self.out, b),
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
        self.member(f);
        if f.is_secret() && !self.opts.show_secrets {
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
            Value::Str(s) => push_str(out, s),
            Value::Bytes(b) => {
                out.push(b'"');
                push_base64(out, b);
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
        self.out.extend_from_slice(b",\"bytes\":\"");
        push_base64(self.out, bytes);
        self.out.extend_from_slice(b"\"}");
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
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let b = s.as_bytes();
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
            out.push(HEX[usize::from(c >> 4)]);
            out.push(HEX[usize::from(c & 15)]);
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
    let sym = |x: u32| T[(x & 63) as usize];
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
