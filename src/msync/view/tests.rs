//! The views against prost: same acceptance, same field values, on the seed frames, on crafted
//! edge cases of every prost rule, and on random and mutated bytes.

use proptest::prelude::*;
use prost::Message;

use super::*;
use crate::msync::decode::{self, DecodeError};
use crate::msync::pb;
use crate::msync::schema::samples;

fn agree(frame: &[u8], dir: Dir) {
    if let Err(e) = differential::agree(frame, dir) {
        panic!("frame {frame:02x?}\n{e}");
    }
}

fn digest_view(frame: &[u8], dir: Dir) -> String {
    differential::digest_view(frame, dir)
}

fn env(command: i32, payload: Vec<u8>) -> Vec<u8> {
    samples::envelope(command, payload).encode_to_vec()
}

#[test]
fn seed_frames_read_as_prost_reads_them() {
    for (frame, dir) in samples::all() {
        agree(&frame, dir);
        agree(&frame, dir.reverse());
        assert!(!digest_view(&frame, dir).starts_with("error"), "{}", digest_view(&frame, dir));
    }
}

#[test]
fn every_body_kind_with_metas() {
    let chat = pb::MessageBody {
        r#type: Some(2),
        contents: vec![
            pb::message_body::Content { r#type: Some(1), ..Default::default() },
            pb::message_body::Content::default(),
        ],
        ..Default::default()
    };
    let muc = pb::MucBody {
        status: Some(pb::muc_body::Status {
            error_code: Some(4),
            description: Some("no".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let stat =
        pb::StatisticsBody { operation: Some(2), reason: Some("x".into()), ..Default::default() };
    let metas = vec![
        pb::Meta {
            id: Some(7),
            from: Some(samples::jid(Some("a#b"), "u1", Some("d"), Some("r"))),
            to: Some(samples::jid(None, "u2", None, None)),
            ns: Some(1),
            payload: Some(chat.encode_to_vec()),
            ..Default::default()
        },
        pb::Meta { ns: Some(2), payload: Some(muc.encode_to_vec()), ..Default::default() },
        pb::Meta { ns: Some(0), payload: Some(stat.encode_to_vec()), ..Default::default() },
        pb::Meta { ns: Some(3), payload: Some(vec![0x12, 0x02, 0x08, 0x05]), ..Default::default() },
        pb::Meta { ns: Some(4), payload: Some(vec![0x62, 0x02, 0x08, 0x09]), ..Default::default() },
        pb::Meta { ns: Some(1), payload: Some(vec![0x22, 0x05]), ..Default::default() },
        pb::Meta { ns: Some(6), payload: Some(vec![1, 2, 3]), ..Default::default() },
        pb::Meta { ns: Some(1), ..Default::default() },
    ];
    let dl = pb::CommSyncDl {
        status: Some(pb::Status {
            error_code: Some(1),
            reason: None,
            redirect_info: vec![
                pb::RedirectInfo { host: Some("h1".into()), port: Some(80) },
                pb::RedirectInfo { host: None, port: Some(443) },
            ],
        }),
        meta_id: Some(u64::MAX),
        metas: metas.clone(),
        next_key: Some(9),
        queue: Some(samples::jid(None, "q", Some("d"), None)),
        is_last: Some(false),
        ..Default::default()
    };
    let frame = env(0, dl.encode_to_vec());
    agree(&frame, Dir::S2C);
    assert!(digest_view(&frame, Dir::S2C).contains("invalid"));
    let ul = pb::CommSyncUl { meta: metas.first().cloned(), ..Default::default() };
    agree(&env(0, ul.encode_to_vec()), Dir::C2S);
    let prov = pb::Provision {
        os_type: Some(1),
        version: Some("4.1".into()),
        status: Some(pb::Status { error_code: Some(0), ..Default::default() }),
        device_uuid: Some("u".into()),
        device_name: Some("n".into()),
        resource: Some("r".into()),
        session_id: Some("s".into()),
        reason: Some("why".into()),
        password: Some("secret".into()),
        ..Default::default()
    };
    for dir in [Dir::C2S, Dir::S2C] {
        agree(&env(3, prov.encode_to_vec()), dir);
    }
}

#[test]
fn repeated_singular_fields_merge_as_prost_merges_them() {
    // guid twice: the second's name replaces the first's, the first's domain stays.
    let a = samples::jid(Some("a#b"), "one", Some("d1"), None).encode_to_vec();
    let b = pb::Jid { name: Some("two".into()), ..Default::default() }.encode_to_vec();
    let mut frame = env(2, pb::CommNotice { queue: None }.encode_to_vec());
    for j in [&a, &b] {
        frame.push(0x12);
        frame.push(j.len() as u8);
        frame.extend_from_slice(j);
    }
    // The command twice: the last wins (NOTICE, then SYNC).
    frame.extend_from_slice(&[0x40, 0x00]);
    agree(&frame, Dir::S2C);
    agree(&frame, Dir::C2S);
    assert!(digest_view(&frame, Dir::S2C).contains("two"));
}

/// Frames that break one prost rule each, and their legal neighbours.
#[test]
fn each_prost_rule() {
    let ok_payload = pb::CommNotice { queue: Some(samples::jid(None, "q", None, None)) };
    let base = env(2, ok_payload.encode_to_vec());
    let with = |extra: &[u8]| {
        let mut f = base.clone();
        f.extend_from_slice(extra);
        f
    };
    let cases: Vec<Vec<u8>> = vec![
        // Varints: ten bytes with a final 1 is legal; a final 2, or eleven bytes, is not.
        with(&[0xa8, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
        with(&[0xa8, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
        with(&[0xa8, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x80, 0x00]),
        with(&[0xa8]),
        // Keys: field 0, wire types 6 and 7, a key over 32 bits, the largest field number.
        with(&[0x00, 0x01]),
        with(&[0xae, 0x01]),
        with(&[0xaf, 0x01]),
        with(&[0x80, 0x80, 0x80, 0x80, 0x10, 0x00]),
        with(&[0xf8, 0xff, 0xff, 0xff, 0x0f, 0x00]),
        // Known fields with the wrong wire type: command as bytes, payload as varint,
        // guid as fixed32, encrypt_type packed (legal) and as fixed64 (not).
        with(&[0x42, 0x01, 0x00]),
        with(&[0x48, 0x01]),
        with(&[0x15, 0, 0, 0, 0]),
        with(&[0x5a, 0x02, 0x00, 0x00]),
        with(&[0x5a, 0x02, 0x00, 0x80]),
        with(&[0x59, 0, 0, 0, 0, 0, 0, 0, 0]),
        // Strings: UTF-8 required (auth), bytes not (tag).
        with(&[0x1a, 0x02, 0xc3, 0x28]),
        with(&[0x6a, 0x02, 0xc3, 0x28]),
        with(&[0x1a, 0x02, 0xc3, 0xa9]),
        // Lengths past the end; embedded messages that overrun theirs.
        with(&[0x6a, 0x05, 0x00]),
        with(&[0x12, 0x02, 0x0a, 0x05, 0x41, 0x41, 0x41]),
        with(&[0x12, 0x01, 0x08]),
        // Unknown fields: every wire type, truncated fixed values, groups matched and not.
        with(&[0xd0, 0x02, 0x07, 0xdd, 0x02, 1, 2, 3, 4, 0xe1, 0x02, 1, 2, 3, 4, 5, 6, 7, 8]),
        with(&[0xdd, 0x02, 1, 2, 3]),
        with(&[0xe1, 0x02, 1, 2, 3, 4, 5, 6, 7]),
        with(&[0xf3, 0x02, 0x08, 0x01, 0xf4, 0x02]),
        with(&[0xf3, 0x02, 0x08, 0x01, 0xfc, 0x02]),
        with(&[0xf3, 0x02, 0x08, 0x01]),
        with(&[0xf4, 0x02]),
        // A known field as a group.
        with(&[0x13, 0x14]),
    ];
    for f in &cases {
        agree(f, Dir::S2C);
    }
    // Inside the payload too (the payload is decoded with a budget of its own).
    for extra in [&[0x0a, 0x02, 0x12, 0x80][..], &[0x0a, 0x01, 0xff], &[0x10, 0x01], &[0x0b, 0x0c]]
    {
        let mut p = ok_payload.encode_to_vec();
        p.extend_from_slice(extra);
        agree(&env(2, p), Dir::S2C);
    }
}

/// Groups nest as deep as prost's recursion limit allows, and no deeper: at the top level of a
/// frame, at the depth of an embedded message, and inside the payload.
#[test]
fn group_depth_matches_prost_limit() {
    fn groups(depth: usize) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(std::iter::repeat_n(0xf3u8, depth).flat_map(|x| [x, 0x02]));
        b.extend_from_slice(&[0xd0, 0x02, 0x01]);
        b.extend(std::iter::repeat_n(0xf4u8, depth).flat_map(|x| [x, 0x02]));
        b
    }
    for depth in [1, 50, 98, 99, 100, 101, 102, 300] {
        let mut f = env(2, vec![]);
        f.extend(groups(depth));
        agree(&f, Dir::S2C);
        // In guid (one level down).
        let g = groups(depth);
        let mut f = env(2, vec![]);
        f.push(0x12);
        let mut len = Vec::new();
        prost::encoding::encode_varint(g.len() as u64, &mut len);
        f.extend(len);
        f.extend(g);
        agree(&f, Dir::S2C);
        // In the payload's queue JID.
        let mut q = Vec::new();
        let g = groups(depth);
        q.push(0x0a);
        prost::encoding::encode_varint(g.len() as u64, &mut q);
        q.extend(g);
        agree(&env(2, q), Dir::S2C);
    }
}

#[test]
fn zlib_payloads_and_the_cap() {
    use std::io::Write;
    let big = pb::CommNotice { queue: Some(samples::jid(None, &"x".repeat(5000), None, None)) };
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&big.encode_to_vec()).ok();
    let mut m = samples::envelope(2, z.finish().unwrap_or_default());
    m.compress_algorimth = Some(1);
    let frame = m.encode_to_vec();
    agree(&frame, Dir::S2C);
    let tight = DecodeLimits { max_inflated: 100 };
    let (mut scratch, mut metas) = (Vec::new(), Vec::new());
    assert_eq!(
        decode(&frame, Dir::S2C, &tight, &mut scratch, &mut metas),
        Err(ViewError::InflateTooLarge)
    );
    assert!(matches!(
        decode::decode(&frame, Dir::S2C, &tight),
        Err(DecodeError::InflateTooLarge(100))
    ));
    // Not zlib at all; and an unknown compression (kept raw).
    let mut m = samples::envelope(2, vec![1, 2, 3]);
    m.compress_algorimth = Some(1);
    agree(&m.encode_to_vec(), Dir::S2C);
    m.compress_algorimth = Some(7);
    agree(&m.encode_to_vec(), Dir::S2C);
}

/// Random protobuf-shaped bytes: fields of every wire type with small field numbers (so they
/// hit the schema's), nested.
fn fields() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop::collection::vec(
        (1u32..25, 0u8..8, any::<u64>(), prop::collection::vec(any::<u8>(), 0..12)),
        0..6,
    )
    .prop_map(|fs| {
        let mut b = Vec::new();
        for (n, w, v, bytes) in fs {
            prost::encoding::encode_varint(u64::from(n) << 3 | u64::from(w), &mut b);
            match w {
                0 => prost::encoding::encode_varint(v, &mut b),
                1 => b.extend_from_slice(&v.to_le_bytes()),
                5 => b.extend_from_slice(&(v as u32).to_le_bytes()),
                2 => {
                    prost::encoding::encode_varint(bytes.len() as u64, &mut b);
                    b.extend_from_slice(&bytes);
                }
                _ => b.extend_from_slice(&bytes),
            }
        }
        b
    });
    leaf.prop_recursive(4, 64, 4, |inner| {
        prop::collection::vec((1u32..25, inner), 1..4).prop_map(|subs| {
            let mut b = Vec::new();
            for (n, sub) in subs {
                prost::encoding::encode_varint(u64::from(n) << 3 | 2, &mut b);
                prost::encoding::encode_varint(sub.len() as u64, &mut b);
                b.extend_from_slice(&sub);
            }
            b
        })
    })
}

fn mutate(mut f: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, op, byte) in edits {
        if f.is_empty() {
            f.push(byte);
            continue;
        }
        let i = at % f.len();
        match op % 4 {
            0 => f[i] = byte,
            1 => f.insert(i, byte),
            2 => {
                f.remove(i);
            }
            _ => f.truncate(i),
        }
    }
    f
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn random_payloads_agree(command in 0i32..6, up in any::<bool>(), payload in fields()) {
        let dir = if up { Dir::C2S } else { Dir::S2C };
        agree(&env(command, payload), dir);
    }

    #[test]
    fn random_meta_payloads_agree(ns in 0i32..7, payload in fields(), junk in any::<bool>()) {
        let mut payload = payload;
        if junk {
            payload.push(0xff);
        }
        let dl = pb::CommSyncDl {
            metas: vec![pb::Meta { ns: Some(ns), payload: Some(payload), ..Default::default() }],
            ..Default::default()
        };
        agree(&env(0, dl.encode_to_vec()), Dir::S2C);
    }

    #[test]
    fn generated_validators_agree_with_the_table(
        which in any::<prop::sample::Index>(),
        bytes in fields(),
        budget in prop_oneof![Just(RECURSION_LIMIT), 0u32..4],
    ) {
        let desc = &MESSAGES[which.index(MESSAGES.len())];
        prop_assert_eq!(check(desc, &bytes, budget), check_table(desc, &bytes, budget), "{}", desc.full_name);
    }

    #[test]
    fn random_envelopes_agree(frame in fields()) {
        agree(&frame, Dir::S2C);
        agree(&frame, Dir::C2S);
    }

    #[test]
    fn mutated_seed_frames_agree(
        which in 0usize..14,
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
    ) {
        let all = samples::all();
        let (frame, dir) = all[which % all.len()].clone();
        let f = mutate(frame, &edits);
        agree(&f, dir);
    }
}

/// prost's own varint reader: the value and the bytes it took, or `None` where it fails.
fn prost_varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut rest = b;
    let v = prost::encoding::decode_varint(&mut rest).ok()?;
    Some((v, b.len() - rest.len()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20000, ..ProptestConfig::default() })]

    #[test]
    fn varints_read_as_prost_reads_them(
        v in any::<u64>(),
        shift in 0u32..64,
        tail in prop::collection::vec(any::<u8>(), 0..12),
    ) {
        let v = v >> shift;
        let mut b = Vec::new();
        prost::encoding::encode_varint(v, &mut b);
        let len = b.len();
        b.extend_from_slice(&tail);
        let mut pos = 0;
        prop_assert_eq!(varint(&b, &mut pos), Some(v));
        prop_assert_eq!(pos, len);
    }

    #[test]
    fn any_bytes_read_as_prost_reads_them(b in prop::collection::vec(any::<u8>(), 0..14)) {
        let mut pos = 0;
        let got = varint(&b, &mut pos).map(|v| (v, pos));
        prop_assert_eq!(got, prost_varint(&b));
    }

    /// Runs of continuation bytes as long as a varint can be and longer, at any offset, so
    /// the eight-byte step, its ninth/tenth-byte ends and the short-buffer loop are all taken,
    /// both stepping over and decoding.
    #[test]
    fn varints_are_stepped_over_where_prost_ends_them(
        lead in prop::collection::vec(any::<u8>(), 0..3),
        high in prop::collection::vec(0x80u8..=0xff, 0..12),
        last in any::<u8>(),
        tail in prop::collection::vec(any::<u8>(), 0..10),
    ) {
        let mut b = lead.clone();
        b.extend_from_slice(&high);
        b.push(last);
        b.extend_from_slice(&tail);
        for start in 0..=b.len() {
            let mut pos = start;
            let ok = varint_ok(&b, &mut pos);
            let want = prost_varint(&b[start..]);
            prop_assert_eq!(ok, want.is_some(), "at {}", start);
            if let Some((_, n)) = want {
                prop_assert_eq!(pos, start + n);
            }
            // Decoding takes the same runs: the value and length prost gives, or nothing.
            let mut at = start;
            let got = varint(&b, &mut at).map(|v| (v, at - start));
            prop_assert_eq!(got, want, "decoded at {}", start);
        }
    }

    #[test]
    fn a_validated_length_delimited_value_is_what_follows_its_length(
        body in prop::collection::vec(any::<u8>(), 0..300),
        pad in 0usize..3,
    ) {
        // Padded lengths (0x80 continuation bytes before a final 0x00) are valid to prost too.
        let mut v = Vec::new();
        prost::encoding::encode_varint(body.len() as u64, &mut v);
        if pad > 0 {
            if let Some(last) = v.last_mut() {
                *last |= 0x80;
            }
            v.extend(std::iter::repeat_n(0x80, pad - 1));
            v.push(0);
        }
        v.extend_from_slice(&body);
        let mut pos = 0;
        prop_assert_eq!(delimited(&v, &mut pos), Some(&body[..]));
        prop_assert_eq!(len(&v), &body[..]);
    }
}

/// A JID's wire bytes: string fields 1–4 (and unknown 5) of any length, in any order and
/// repeated, so both the short-field shortcut of [`Jid::merge_checked`] and its fallback are
/// taken.
fn jid_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((1u64..6, prop::collection::vec(b'a'..=b'z', 0..200)), 0..7).prop_map(
        |fs| {
            let mut b = Vec::new();
            for (n, s) in fs {
                prost::encoding::encode_varint(n << 3 | 2, &mut b);
                prost::encoding::encode_varint(s.len() as u64, &mut b);
                b.extend_from_slice(&s);
            }
            b
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn jids_merge_as_prost_merges_them(b in jid_bytes()) {
        let want = pb::Jid::decode(&b[..]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut got = Jid::default();
        prop_assert!(got.merge_checked(&b, RECURSION_LIMIT));
        let owned = |s: Option<&[u8]>| s.map(|s| String::from_utf8_lossy(s).into_owned());
        prop_assert_eq!(owned(got.app_key), want.app_key);
        prop_assert_eq!(owned(got.name), want.name);
        prop_assert_eq!(owned(got.domain), want.domain);
        prop_assert_eq!(owned(got.client_resource), want.client_resource);
    }
}

/// [`jid_bytes`] with some damage: a byte flipped to a non-UTF-8 one, or the end cut off.
fn damaged_jid_bytes() -> impl Strategy<Value = Vec<u8>> {
    (jid_bytes(), any::<prop::sample::Index>(), 0u8..3).prop_map(|(mut b, at, how)| {
        if !b.is_empty() {
            let i = at.index(b.len());
            match how {
                0 => b[i] = 0xff,
                1 => b.truncate(i),
                _ => {}
            }
        }
        b
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn jids_checked_and_merged_in_one_walk_agree_with_prost(b in damaged_jid_bytes()) {
        let want = pb::Jid::decode(&b[..]).ok();
        let mut got = Jid::default();
        let ok = got.merge_checked(&b, RECURSION_LIMIT);
        prop_assert_eq!(ok, want.is_some());
        prop_assert_eq!(ok, check_easemob_pb_jid(&b));
        if let Some(want) = want {
            let owned = |s: Option<&[u8]>| s.map(|s| String::from_utf8_lossy(s).into_owned());
            prop_assert_eq!(owned(got.app_key), want.app_key);
            prop_assert_eq!(owned(got.name), want.name);
            prop_assert_eq!(owned(got.domain), want.domain);
            prop_assert_eq!(owned(got.client_resource), want.client_resource);
        }
    }
}

#[test]
fn metas_past_the_held_ones_are_read_again_in_order() {
    let meta = |i: u64| pb::Meta {
        id: Some(i),
        from: Some(samples::jid(None, &format!("u{i}"), None, None)),
        ns: Some(1),
        payload: Some(pb::MessageBody { r#type: Some(1), ..Default::default() }.encode_to_vec()),
        ..Default::default()
    };
    let n = MAX_HELD_METAS as u64 + 7;
    let dl = pb::CommSyncDl {
        metas: (0..n).map(meta).collect(),
        next_key: Some(3),
        ..Default::default()
    };
    let frame = env(0, dl.encode_to_vec());
    agree(&frame, Dir::S2C);
    let (mut scratch, mut metas) = (Vec::new(), Vec::new());
    let m = decode(&frame, Dir::S2C, &DecodeLimits::default(), &mut scratch, &mut metas);
    let Ok(Msg { body: Body::SyncDl(s), .. }) = m else { panic!("{m:?}") };
    assert_eq!(s.meta_count, n);
    assert_eq!(s.held.len(), MAX_HELD_METAS);
    let mut all = Vec::new();
    s.for_each_meta(|m| all.push(*m));
    let ids: Vec<_> = all.iter().map(|m| m.id).collect();
    assert_eq!(ids, (0..n).map(Some).collect::<Vec<_>>());
    assert_eq!(all.last().and_then(|m| m.from).and_then(|j| j.name), Some(&b"u1030"[..]));

    // A meta past the held ones with a name that is not UTF-8 reads as prost's repaired
    // decode reads it (under `lossy`, as `report` retries such a frame).
    let mut bad = dl.clone();
    if let Some(m) = bad.metas.last_mut() {
        m.payload = None;
        m.from = Some(samples::jid(None, "x", None, None));
    }
    let mut bytes = env(0, bad.encode_to_vec());
    let Some(at) = bytes.windows(3).rposition(|w| w == [0x12, 0x01, b'x']) else {
        panic!("no name x in the last meta")
    };
    bytes[at + 2] = 0xff;
    agree(&bytes, Dir::S2C);
    let digest = digest_view(&bytes, Dir::S2C);
    assert!(digest.ends_with("meta Some(1030) Some(JidParts { app_key: None, name: Some(\\\"\u{fffd}\\\"), domain: None, client_resource: None }) None Some(1) empty\"]"), "{}", digest.get(digest.len().saturating_sub(300)..).unwrap_or_default());
}

#[test]
fn a_recycled_pool_keeps_its_buffer() {
    let mut pool: Vec<Meta<'static>> = Vec::with_capacity(64);
    pool.push(Meta::default());
    let bytes = vec![1u8; 4];
    let mut borrowed: Vec<Meta<'_>> = recycle(pool);
    assert!(borrowed.is_empty());
    assert_eq!(borrowed.capacity(), 64);
    borrowed.push(Meta { payload: Some(&bytes), ..Meta::default() });
    let back: Vec<Meta<'static>> = recycle(borrowed);
    assert!(back.is_empty());
    assert_eq!(back.capacity(), 64);
}

#[test]
fn content_types_past_the_held_ones_are_read_again() {
    for n in 0..=HELD_CONTENTS + 3 {
        let contents = (0..n)
            .map(|i| pb::message_body::Content {
                r#type: (i % 3 != 1).then_some(i as i32 % 8),
                text: Some(format!("t{i}")),
                ..Default::default()
            })
            .collect();
        let chat = pb::MessageBody { r#type: Some(1), contents, ..Default::default() };
        let meta =
            pb::Meta { ns: Some(1), payload: Some(chat.encode_to_vec()), ..Default::default() };
        let dl = pb::CommSyncDl { metas: vec![meta], ..Default::default() };
        // The digest lists the content types, held or read again, against prost's.
        agree(&env(0, dl.encode_to_vec()), Dir::S2C);
        let want: Vec<_> = chat.contents.iter().map(differential::content_type_of).collect();
        let payload = chat.encode_to_vec();
        let m = Meta { ns: Some(1), payload: Some(&payload), ..Meta::default() };
        assert_eq!(m.body().content_types().collect::<Vec<_>>(), want, "{n} contents");
    }
}

/// A content without a type is TEXT, as protobuf reads it, unless it has no field the schema
/// knows (the empty placeholder of the SDKs' acks, or only unknown fields): that one is of no
/// type. The same held and read again, and the same as prost's reading.
#[test]
fn contents_without_a_type_are_text_unless_empty() {
    let kinds: [(&[u8], Option<i32>); 4] = [
        (&[], None),
        // Field 99 only: unknown to the schema, dropped by prost.
        (&[0x98, 0x06, 0x01], None),
        (&[0x12, 0x01, b'a'], Some(0)),
        (&[0x08, 0x01], Some(1)),
    ];
    for n in [4, 9] {
        let mut body = vec![0x08, 0x01];
        let mut want = Vec::new();
        for (bytes, t) in kinds.iter().cycle().take(n) {
            body.extend([0x22, bytes.len() as u8]);
            body.extend_from_slice(bytes);
            want.push(*t);
        }
        let m = Meta { ns: Some(1), payload: Some(&body), ..Meta::default() };
        assert_eq!(m.body().content_types().collect::<Vec<_>>(), want, "{n} contents");
        let meta = pb::Meta { ns: Some(1), payload: Some(body.clone()), ..Default::default() };
        let dl = pb::CommSyncDl { metas: vec![meta], ..Default::default() };
        agree(&env(0, dl.encode_to_vec()), Dir::S2C);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]
    /// The string check agrees with std's on text that mixes ASCII, multi-byte characters
    /// and stray bytes (cut sequences, surrogates, overlongs), short and past the SIMD width.
    #[test]
    fn string_check_agrees_with_std(
        parts in proptest::collection::vec(
            prop_oneof![
                "[a-z0-9#@._-]{0,40}".prop_map(String::into_bytes),
                "\\PC{0,40}".prop_map(String::into_bytes),
                proptest::collection::vec(any::<u8>(), 0..4),
                Just(vec![0xED, 0xA0, 0x80]),
                Just(vec![0xC0, 0xAF]),
                Just(vec![0xF4, 0x90, 0x80, 0x80]),
            ],
            0..12,
        )
    ) {
        let s: Vec<u8> = parts.concat();
        prop_assert_eq!(utf8(&s), std::str::from_utf8(&s).is_ok());
        if let Some(cut) = s.len().checked_sub(1) {
            let t = s.get(..cut).unwrap_or_default();
            prop_assert_eq!(utf8(t), std::str::from_utf8(t).is_ok());
        }
    }
}
