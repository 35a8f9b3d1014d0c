//! Messages whose `string` fields are not all UTF-8.
//!
//! Protobuf requires a `string` to be UTF-8, and prost rejects the whole message when one is
//! not. Other clients and generators do write GBK or Latin-1 text, and a stray byte in a chat
//! text is no reason to lose a message's command, ids and statuses: Wireshark shows such a
//! field with replacement characters and the rest of the message, and so do we. When a decode
//! fails (the error path: what it costs there does not matter), [`decode`] rewrites a copy of
//! the bytes by the schema, each invalid sequence of a string replaced by U+FFFD and the
//! lengths of the messages around it written anew, decodes the copy instead, and names the
//! fields it repaired ([`NotUtf8`]).
//!
//! Invariants:
//! - nothing panics on any input; a message that is malformed in any other way is not
//!   rewritten, and the original error stands;
//! - recursion follows embedded messages at most [`MAX_DEPTH`] deep (the schema nests far
//!   less; deeper ones are copied as they are, and prost then rejects them as before);
//! - the copy grows as it is written, never by a length read from the wire, and is at most
//!   three times the input (an invalid byte becomes a three-byte U+FFFD) plus longer length
//!   prefixes;
//! - `bytes` fields are copied unchanged, payloads included: `MSync.payload` and
//!   `Meta.payload` are decoded, and repaired, on their own;
//! - the fields named are distinct, so the list is bounded by the schema, not the input.

use prost::Message;

use super::schema::{varint, Kind, MessageDesc, RawValue, Reader, MESSAGES};

/// Embedded messages followed at most (the schema's deepest chain is a handful).
pub const MAX_DEPTH: usize = 32;

/// A `string` field whose bytes were not UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotUtf8 {
    /// The message the field belongs to, e.g. `easemob.pb.Status`.
    pub message: &'static str,
    /// The `.proto` field name, e.g. `reason`.
    pub field: &'static str,
}

impl NotUtf8 {
    /// The message's name without the package: `Status`, `MessageBody.Content`.
    pub fn message_name(&self) -> &'static str {
        self.message.strip_prefix("easemob.pb.").unwrap_or(self.message)
    }
}

impl std::fmt::Display for NotUtf8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "string field `{}.{}` is not UTF-8", self.message_name(), self.field)
    }
}

/// Adds `x` to `found` unless it is there already.
pub fn note(found: &mut Vec<NotUtf8>, x: NotUtf8) {
    if !found.contains(&x) {
        found.push(x);
    }
}

/// `M::decode(bytes)`; when that fails and `bytes` decode once their strings are made UTF-8
/// (with `desc`, `M`'s descriptor), the repaired message, with the fields repaired added to
/// `found`.
#[inline]
pub fn decode<M: Message + Default>(
    bytes: &[u8],
    desc: impl FnOnce() -> Option<&'static MessageDesc>,
    found: &mut Vec<NotUtf8>,
) -> Result<M, prost::DecodeError> {
    match M::decode(bytes) {
        Ok(m) => Ok(m),
        Err(e) => decode_repaired(bytes, desc(), found, e),
    }
}

#[cold]
#[inline(never)]
fn decode_repaired<M: Message + Default>(
    bytes: &[u8],
    desc: Option<&'static MessageDesc>,
    found: &mut Vec<NotUtf8>,
    err: prost::DecodeError,
) -> Result<M, prost::DecodeError> {
    let Some(desc) = desc else { return Err(err) };
    let before = found.len();
    let Some(copy) = repair(bytes, desc, found) else {
        // Not a well-formed message: what was named on the way is not the reason.
        found.truncate(before);
        return Err(err);
    };
    match M::decode(copy.as_slice()) {
        Ok(m) => Ok(m),
        // Broken otherwise too: the strings were not what kept it from decoding alone.
        Err(e) => {
            found.truncate(before);
            Err(e)
        }
    }
}

/// A copy of message `bytes` of type `desc` with every invalid sequence of its `string`
/// fields (embedded messages' included) replaced by U+FFFD, and the repaired fields added to
/// `found`; `None` when no string needed it or the bytes are not a well-formed message.
pub fn repair(
    bytes: &[u8],
    desc: &'static MessageDesc,
    found: &mut Vec<NotUtf8>,
) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let repaired = repair_into(bytes, desc, 0, &mut out, found)?;
    repaired.then_some(out)
}

/// Writes the repaired copy of `buf` (a `desc` at nesting `depth`) to `out`: whether anything
/// was repaired, or `None` for bytes that are not a well-formed message.
fn repair_into(
    buf: &[u8],
    desc: &'static MessageDesc,
    depth: usize,
    out: &mut Vec<u8>,
    found: &mut Vec<NotUtf8>,
) -> Option<bool> {
    let mut r = Reader::new(buf);
    // `buf[copied..]` is still to be written to `out`.
    let mut copied = 0;
    let mut repaired = false;
    while let Some((at, number, v)) = r.field().ok()? {
        let RawValue::Len(body) = v else { continue };
        let Some(fd) = desc.field(number) else { continue };
        let fixed = match fd.kind {
            Kind::String if std::str::from_utf8(body).is_err() => {
                note(found, NotUtf8 { message: desc.full_name, field: fd.name });
                String::from_utf8_lossy(body).into_owned().into_bytes()
            }
            Kind::Message(i) if depth < MAX_DEPTH => {
                let Some(sub) = MESSAGES.get(i) else { continue };
                let mut inner = Vec::new();
                if !repair_into(body, sub, depth + 1, &mut inner, found)? {
                    continue;
                }
                inner
            }
            _ => continue,
        };
        // The field's key as it was, then the new length and value.
        let (_, key_len) = varint(buf.get(at..)?)?;
        out.extend_from_slice(buf.get(copied..at.checked_add(key_len)?)?);
        prost::encoding::encode_varint(fixed.len() as u64, out);
        out.extend_from_slice(&fixed);
        copied = r.pos();
        repaired = true;
    }
    out.extend_from_slice(buf.get(copied..)?);
    Some(repaired)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::msync::pb;
    use crate::msync::schema::{message, MESSAGES};

    fn desc(name: &str) -> &'static MessageDesc {
        MESSAGES.get(message(name).unwrap_or(usize::MAX)).unwrap_or_else(|| panic!("{name}"))
    }

    /// `msg` encoded, then each `marker` in it overwritten with `with` (of the same length), so
    /// that a string field holds bytes prost could never encode.
    fn patched(msg: &impl Message, marker: &[u8], with: &[u8]) -> Vec<u8> {
        assert_eq!(marker.len(), with.len());
        let mut b = msg.encode_to_vec();
        let at = b.windows(marker.len()).position(|w| w == marker).unwrap_or_else(|| panic!());
        b[at..at + with.len()].copy_from_slice(with);
        b
    }

    fn provision_answer() -> Vec<u8> {
        let p = pb::Provision {
            status: Some(pb::Status {
                error_code: Some(2),
                reason: Some("caf#-mot de passe".into()),
                ..Default::default()
            }),
            device_name: Some("J#rg".into()),
            resource: Some("res".into()),
            ..Default::default()
        };
        let b = patched(&p, b"caf#", b"caf\xe9");
        let mut b2 = b.clone();
        let at = b2.windows(4).position(|w| w == b"J#rg").unwrap_or_default();
        b2[at + 1] = 0xf6;
        b2
    }

    #[test]
    fn repaired_strings_decode_and_are_named() {
        let bytes = provision_answer();
        assert!(pb::Provision::decode(bytes.as_slice()).is_err(), "prost refuses it");
        let mut found = Vec::new();
        let p: pb::Provision =
            decode(&bytes, || Some(desc("easemob.pb.Provision")), &mut found).unwrap();
        let st = p.status.unwrap_or_default();
        assert_eq!(st.error_code, Some(2));
        assert_eq!(st.reason.as_deref(), Some("caf\u{fffd}-mot de passe"));
        assert_eq!(p.device_name.as_deref(), Some("J\u{fffd}rg"));
        assert_eq!(p.resource.as_deref(), Some("res"));
        let names: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "string field `Status.reason` is not UTF-8",
                "string field `Provision.device_name` is not UTF-8"
            ]
        );
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn valid_and_broken_messages_are_left_alone() {
        let good = pb::Provision { reason: Some("ok".into()), ..Default::default() };
        let mut found = Vec::new();
        let d = desc("easemob.pb.Provision");
        assert_eq!(repair(&good.encode_to_vec(), d, &mut found), None);
        let p: pb::Provision = decode(&good.encode_to_vec(), || Some(d), &mut found).unwrap();
        assert_eq!(p, good);
        assert!(found.is_empty());
        // A bad string and a truncated field: still an error, nothing named.
        let mut bytes = provision_answer();
        bytes.extend_from_slice(&[0x12, 0x05, b'x']);
        assert!(decode::<pb::Provision>(&bytes, || Some(d), &mut found).is_err());
        assert!(found.is_empty());
        // Every cut of a repairable message: no panic.
        let bytes = provision_answer();
        for n in 0..bytes.len() {
            let _ = decode::<pb::Provision>(&bytes[..n], || Some(d), &mut found);
        }
    }

    #[test]
    fn nested_lengths_are_rewritten() {
        // Three invalid bytes become nine: every enclosing length grows.
        let dl = pb::CommSyncDl {
            status: Some(pb::Status { reason: Some("abc###".into()), ..Default::default() }),
            queue: Some(pb::Jid { name: Some("###".into()), ..Default::default() }),
            meta_id: Some(7),
            ..Default::default()
        };
        let mut bytes = dl.encode_to_vec();
        for b in bytes.iter_mut().filter(|b| **b == b'#') {
            *b = 0xff;
        }
        let mut found = Vec::new();
        let got: pb::CommSyncDl =
            decode(&bytes, || Some(desc("easemob.pb.CommSyncDL")), &mut found).unwrap();
        assert_eq!(got.meta_id, Some(7));
        assert_eq!(
            got.status.and_then(|s| s.reason).as_deref(),
            Some("abc\u{fffd}\u{fffd}\u{fffd}")
        );
        assert_eq!(got.queue.and_then(|q| q.name).as_deref(), Some("\u{fffd}\u{fffd}\u{fffd}"));
        assert_eq!(found.len(), 2);
    }
}
