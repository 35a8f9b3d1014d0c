//! What decoding a message into its generated types would allocate, estimated from its bytes
//! before it is decoded.
//!
//! An element of a repeated field can take two bytes on the wire and hundreds in memory: a
//! 16 MiB frame of empty `metas` decodes into 8 million `Meta` structs (2.4 GB). The frame cap
//! bounds the bytes, not what they decode into, so a message is first walked (no allocation,
//! linear in its bytes) and its elements priced; one whose price exceeds its budget is not
//! decoded. Messages small enough that no arrangement of their bytes could exceed the budget
//! are not walked at all.
//!
//! The price is an estimate, not a measure: a message element costs the size of its struct,
//! each field as prost lays it out (an optional number 16 bytes, a string, bytes or repeated
//! field its 24-byte header, a singular message field its own struct inline), a string or
//! bytes element of a repeated field its header, both twice over in a repeated field (its
//! `Vec` grows by doubling), a packed scalar element eight bytes (a `u64`, or a smaller number
//! with the doubling's slack).
//! Contents of strings and bytes are not priced: they are the input's own bytes.

use std::sync::OnceLock;

use super::schema::{self, Kind, MessageDesc, MESSAGES};

/// The least budget of a message, whatever its size: typical messages never come near it.
pub const MIN_BUDGET: u64 = 32 << 20;
/// A message may decode into this many times its bytes: a pull answer of real chat metas is
/// priced at about 11 times its wire size (empty elements at 24 to 400 times).
pub const BUDGET_PER_BYTE: u64 = 16;
/// prost's recursion limit: deeper messages fail to decode anyway.
const MAX_DEPTH: u32 = 100;
/// `String`/`Vec` header.
const HEADER: u64 = 24;
/// A repeated field's `Vec` grows by doubling: up to twice what its elements take.
const SLACK: u64 = 2;
/// A packed scalar element, priced per byte of the packed run (a varint takes at least one).
const PACKED_PER_BYTE: u64 = 8;

/// The budget of a message of `len` bytes (its frame, and the payload inflated from it).
pub fn budget(len: usize) -> u64 {
    (len as u64).saturating_mul(BUDGET_PER_BYTE).max(MIN_BUDGET)
}

/// An optional number, and a `String`/`Vec` header.
const NUMBER: u64 = 16;

/// The price of one element of message type `MESSAGES[i]`: its struct's size, as estimated by
/// [`struct_size`] once for every type.
fn message_cost(i: usize) -> u64 {
    static SIZES: OnceLock<Vec<u64>> = OnceLock::new();
    let sizes = SIZES.get_or_init(|| MESSAGES.iter().map(|d| struct_size(d, 0)).collect());
    sizes.get(i).copied().unwrap_or(HEADER)
}

fn struct_size(desc: &MessageDesc, depth: u32) -> u64 {
    desc.fields
        .iter()
        .map(|f| match f.kind {
            _ if f.repeated => HEADER,
            // Inline; a schema that nested a type in itself would be boxed, and is cut short.
            Kind::Message(i) if depth < 8 => {
                MESSAGES.get(i).map_or(HEADER, |d| struct_size(d, depth + 1)) + 8
            }
            Kind::Message(_) | Kind::String | Kind::Bytes => HEADER,
            _ => NUMBER,
        })
        .sum::<u64>()
        .max(8)
}

/// The most a wire byte can cost: an empty element of the widest message takes two.
fn max_cost_per_byte() -> u64 {
    static MAX: OnceLock<u64> = OnceLock::new();
    *MAX.get_or_init(|| {
        let widest = (0..MESSAGES.len()).map(message_cost).max().unwrap_or(0);
        (widest / 2 + 1).max(PACKED_PER_BYTE).max(HEADER / 2 + 1)
    })
}

/// Whether a message of `len` bytes (frame and inflated payload) needs pricing: whatever its
/// bytes, the command message and all its metas' payloads together cost at most twice the
/// most a byte can cost, for each byte.
pub fn needed(len: usize) -> bool {
    (len as u64).saturating_mul(max_cost_per_byte()).saturating_mul(2) > budget(len)
}

/// Takes the price of decoding `bytes` as `desc` from `left`; false when it does not fit (then
/// `left` is zero). Bytes that are not a well-formed message are priced as far as they go:
/// decoding fails on them anyway.
pub fn charge(bytes: &[u8], desc: &MessageDesc, left: &mut u64) -> bool {
    walk(bytes, desc, 0, left)
}

fn take(left: &mut u64, cost: u64) -> bool {
    match left.checked_sub(cost) {
        Some(l) => {
            *left = l;
            true
        }
        None => {
            *left = 0;
            false
        }
    }
}

fn walk(mut b: &[u8], desc: &MessageDesc, depth: u32, left: &mut u64) -> bool {
    while !b.is_empty() {
        let Some((key, n)) = schema::varint(b) else { return true };
        b = b.get(n..).unwrap_or_default();
        let field = desc.field((key >> 3) as u32);
        match key & 7 {
            0 => {
                let Some((_, n)) = schema::varint(b) else { return true };
                b = b.get(n..).unwrap_or_default();
                if field.is_some_and(|f| f.repeated) && !take(left, PACKED_PER_BYTE) {
                    return false;
                }
            }
            1 | 5 => {
                let n = if key & 7 == 1 { 8 } else { 4 };
                let Some(rest) = b.get(n..) else { return true };
                b = rest;
                if field.is_some_and(|f| f.repeated) && !take(left, PACKED_PER_BYTE) {
                    return false;
                }
            }
            2 => {
                let Some((len, n)) = schema::varint(b) else { return true };
                let Some(sub) = usize::try_from(len)
                    .ok()
                    .and_then(|l| l.checked_add(n))
                    .and_then(|end| b.get(n..end))
                else {
                    return true;
                };
                b = b.get(n + sub.len()..).unwrap_or_default();
                let Some(f) = field else { continue };
                let ok = match f.kind {
                    Kind::Message(i) => {
                        let Some(d) = MESSAGES.get(i) else { continue };
                        take(left, message_cost(i) * if f.repeated { SLACK } else { 1 })
                            && (depth >= MAX_DEPTH || walk(sub, d, depth + 1, left))
                    }
                    Kind::String | Kind::Bytes => !f.repeated || take(left, HEADER * SLACK),
                    _ => {
                        !f.repeated
                            || take(left, (sub.len() as u64).saturating_mul(PACKED_PER_BYTE))
                    }
                };
                if !ok {
                    return false;
                }
            }
            // Groups and invalid wire types: prost skips the one and fails on the other, and
            // neither allocates.
            _ => return true,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msync::pb;
    use prost::Message;

    fn desc(name: &str) -> &'static MessageDesc {
        schema::message(name).and_then(|i| MESSAGES.get(i)).unwrap_or_else(|| panic!("{name}"))
    }

    #[test]
    fn empty_metas_are_priced_beyond_the_budget() {
        // 4 million empty metas: 8 MB on the wire, over a gigabyte decoded.
        let bytes = [0x22u8, 0x00].repeat(4 << 20);
        let mut left = budget(bytes.len());
        assert!(!charge(&bytes, desc("easemob.pb.CommSyncDL"), &mut left));
        assert_eq!(left, 0);
    }

    #[test]
    fn real_messages_fit_with_room_to_spare() {
        // A pull answer of many metas as servers send them, large enough to be walked.
        let jid = |name: &str| pb::Jid {
            app_key: Some("easemob-demo#chatdemoui".into()),
            name: Some(name.into()),
            domain: Some("easemob.com".into()),
            client_resource: None,
        };
        let body = pb::MessageBody {
            r#type: Some(1),
            from: Some(jid("zl2")),
            to: Some(jid("zl3")),
            contents: vec![pb::message_body::Content {
                r#type: Some(0),
                text: Some("see you at nine".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let meta = pb::Meta {
            id: Some(1_234_567_890_123_456_789),
            from: Some(jid("zl2")),
            to: Some(jid("zl3")),
            timestamp: Some(1_700_000_000_000),
            ns: Some(1),
            payload: Some(body.encode_to_vec()),
            ..Default::default()
        };
        let dl = pb::CommSyncDl { metas: vec![meta; 20_000], ..Default::default() };
        let bytes = dl.encode_to_vec();
        assert!(needed(bytes.len()));
        let mut left = budget(bytes.len());
        assert!(charge(&bytes, desc("easemob.pb.CommSyncDL"), &mut left));
        // Each meta's payload, as the decoder charges them.
        for m in &dl.metas {
            let p = m.payload.as_deref().unwrap_or_default();
            assert!(charge(p, desc("easemob.pb.MessageBody"), &mut left));
        }
        assert!(left > budget(bytes.len()) / 4, "{left} of {}", budget(bytes.len()));
    }

    #[test]
    fn small_messages_need_no_pricing() {
        assert!(!needed(0));
        assert!(!needed(16 << 10));
        assert!(needed(1 << 20));
        assert!(needed(16 << 20));
    }

    #[test]
    fn packed_scalars_stay_within_the_ratio_empty_elements_do_not() {
        // Packed zeros decode into eight bytes (a u64) at most for one.
        let mut bytes = vec![0x5a, 0x80, 0x80, 0x80, 0x08];
        bytes.resize(5 + (16 << 20), 0);
        let mut left = budget(bytes.len());
        assert!(charge(&bytes, desc("easemob.pb.MSync"), &mut left));
        // Empty queues of an UNREAD answer (a JID each, inline) do not, nor empty directed
        // users (a 24-byte header each, and the doubling's slack, for two bytes on the wire).
        let bytes = [0x12u8, 0x00].repeat(8 << 20);
        let mut left = budget(bytes.len());
        assert!(!charge(&bytes, desc("easemob.pb.CommUnreadDL"), &mut left));
        let bytes = [0x52u8, 0x00].repeat(8 << 20);
        let mut left = budget(bytes.len());
        assert!(!charge(&bytes, desc("easemob.pb.Meta"), &mut left));
    }

    #[test]
    fn malformed_bytes_end_the_walk() {
        let mut left = 0;
        assert!(walk(&[0x22, 0x7f], desc("easemob.pb.CommSyncDL"), 0, &mut left));
        assert!(walk(&[0x80], desc("easemob.pb.CommSyncDL"), 0, &mut left));
        assert!(walk(&[0x23, 0x00], desc("easemob.pb.CommSyncDL"), 0, &mut left));
    }
}
