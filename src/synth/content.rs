//! MSync messages as the SDKs put them on the wire: envelopes with the field presence the
//! seed's client log shows (SEND: version, compress_algorimth, command, plus guid/auth at
//! PROVISION and LOGOUT; RECV: version and command, plus compress_algorimth when zlib is
//! used), and realistic bodies (texts, images with remote paths and secret keys, ...).

use std::cell::RefCell;

use flate2::{Compress, Compression, FlushCompress, Status};
use prost::Message;

use crate::msync::pb;
use crate::msync::pb::message_body::content::Type as ContentType;
use crate::msync::pb::message_body::Type as BodyType;

use super::rng::Rng;

pub(crate) const APP_KEY: &str = "easemob-demo#chatdemoui";
pub(crate) const DOMAIN: &str = "easemob.com";
pub(crate) const GROUP_DOMAIN: &str = "conference.easemob.com";

pub(crate) fn jid(
    app_key: Option<&str>,
    name: &str,
    domain: Option<&str>,
    res: Option<&str>,
) -> pb::Jid {
    pb::Jid {
        app_key: app_key.map(str::to_owned),
        name: Some(name.to_owned()),
        domain: domain.map(str::to_owned),
        client_resource: res.map(str::to_owned),
    }
}

pub(crate) fn full_jid(name: &str, res: Option<&str>) -> pb::Jid {
    jid(Some(APP_KEY), name, Some(DOMAIN), res)
}

pub(crate) fn short_jid(name: &str) -> pb::Jid {
    jid(None, name, None, None)
}

pub(crate) fn ok_status() -> pb::Status {
    pb::Status { error_code: Some(0), ..Default::default() }
}

pub(crate) fn error_status(code: pb::status::ErrorCode, reason: Option<&str>) -> pb::Status {
    pb::Status {
        error_code: Some(code as i32),
        reason: reason.map(str::to_owned),
        ..Default::default()
    }
}

thread_local! {
    // One deflate state reused for every payload: setting one up zeroes a few hundred KiB,
    // which dominated synthesizing small captures.
    static DEFLATE: RefCell<Option<(u32, Compress)>> = const { RefCell::new(None) };
}

fn deflate(data: &[u8], level: u32) -> Vec<u8> {
    // Levels above 9 do not exist: taken as 9.
    let level = level.min(9);
    DEFLATE.with(|c| {
        let mut c = c.borrow_mut();
        let c = match &mut *c {
            Some((l, c)) if *l == level => {
                c.reset();
                c
            }
            // Levels above 9 do not exist: taken as 9.
            slot => {
                &mut slot.insert((level, Compress::new(Compression::new(level.min(9)), true))).1
            }
        };
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        loop {
            let done = usize::try_from(c.total_in()).unwrap_or(usize::MAX);
            let rest = data.get(done..).unwrap_or_default();
            match c.compress_vec(rest, &mut out, FlushCompress::Finish) {
                Ok(Status::StreamEnd) => return out,
                Ok(_) => out.reserve(out.capacity().max(64)),
                // Compressing into memory cannot fail; fall back to the raw bytes if it does.
                Err(_) => return data.to_vec(),
            }
        }
    })
}

/// A client envelope (`SEND:`).
pub(crate) fn send_env(
    cmd: pb::m_sync::Command,
    payload: Option<Vec<u8>>,
    zlib: Option<u32>,
) -> pb::MSync {
    let compressed = zlib.filter(|_| payload.is_some());
    pb::MSync {
        version: Some(0),
        compress_algorimth: Some(u32::from(compressed.is_some())),
        command: Some(cmd as i32),
        payload: payload.map(|p| match compressed {
            Some(level) => deflate(&p, level),
            None => p,
        }),
        ..Default::default()
    }
}

/// A server envelope (`RECV:`); the server mirrors the client's compression.
pub(crate) fn recv_env(cmd: pb::m_sync::Command, payload: Vec<u8>, zlib: Option<u32>) -> pb::MSync {
    pb::MSync {
        version: Some(0),
        compress_algorimth: zlib.map(|_| 1),
        command: Some(cmd as i32),
        payload: Some(match zlib {
            Some(level) => deflate(&payload, level),
            None => payload,
        }),
        ..Default::default()
    }
}

const WORDS: &[&str] = &[
    "hi",
    "hello",
    "ok",
    "see",
    "you",
    "tomorrow",
    "meeting",
    "at",
    "ten",
    "thanks",
    "the",
    "report",
    "is",
    "ready",
    "please",
    "check",
    "photo",
    "lunch",
    "where",
    "are",
    "we",
    "going",
    "sounds",
    "good",
    "call",
    "me",
    "later",
    "done",
    "on",
    "my",
    "way",
    "👍",
    "好的",
    "明天见",
    "收到",
];

pub(crate) fn text(rng: &mut Rng, max_words: u64) -> String {
    let n = rng.range(1, max_words.max(1));
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(rng.pick(WORDS).copied().unwrap_or("ok"));
    }
    s
}

pub(crate) fn uuid(rng: &mut Rng) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

fn secret(rng: &mut Rng) -> String {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..40).map(|_| char::from(ALPHA[rng.below(ALPHA.len() as u64) as usize])).collect()
}

fn kv_str(key: &str, t: pb::key_value::ValueType, v: String) -> pb::KeyValue {
    pb::KeyValue {
        key: Some(key.to_owned()),
        r#type: Some(t as i32),
        value: Some(pb::key_value::Value::StringValue(v)),
    }
}

fn kv_int(key: &str, v: i64) -> pb::KeyValue {
    pb::KeyValue {
        key: Some(key.to_owned()),
        r#type: Some(pb::key_value::ValueType::Int as i32),
        value: Some(pb::key_value::Value::VarintValue(v)),
    }
}

/// One random content of a chat message.
pub(crate) fn random_content(rng: &mut Rng) -> pb::message_body::Content {
    let mut c = pb::message_body::Content::default();
    let roll = rng.below(100);
    let files = "https://a1.easemob.com/easemob-demo/chatdemoui/chatfiles/";
    match roll {
        0..=59 => {
            c.r#type = Some(ContentType::Text as i32);
            c.text = Some(text(rng, 30));
        }
        60..=71 => {
            c.r#type = Some(ContentType::Image as i32);
            let id = uuid(rng);
            c.display_name = Some(format!("IMG_{}.jpg", rng.range(1000, 9999)));
            c.remote_path = Some(format!("{files}{id}"));
            c.secret_key = Some(secret(rng));
            c.file_length = Some(rng.range(20_000, 3_000_000) as i32);
            c.size = Some(pb::message_body::content::Size {
                width: Some(rng.range(320, 4032) as f64),
                height: Some(rng.range(240, 3024) as f64),
            });
            c.thumbnail_remote_path = Some(format!("{files}{id}"));
            c.thumbnail_secret_key = Some(secret(rng));
        }
        72..=77 => {
            c.r#type = Some(ContentType::Location as i32);
            c.latitude = Some(rng.uniform(22.0, 45.0));
            c.longitude = Some(rng.uniform(100.0, 122.0));
            c.address = Some(format!("{} Zhongguancun St, Haidian, Beijing", rng.range(1, 300)));
        }
        78..=83 => {
            c.r#type = Some(ContentType::File as i32);
            c.display_name = Some(format!("report-{}.pdf", rng.range(1, 99)));
            c.remote_path = Some(format!("{files}{}", uuid(rng)));
            c.secret_key = Some(secret(rng));
            c.file_length = Some(rng.range(1_000, 9_000_000) as i32);
        }
        84..=91 => {
            c.r#type = Some(ContentType::Custom as i32);
            c.custom_event = Some("userCard".to_owned());
            c.custom_exts = vec![
                kv_str(
                    "uid",
                    pb::key_value::ValueType::String,
                    format!("user{}", rng.range(1, 999)),
                ),
                kv_str("avatar", pb::key_value::ValueType::String, format!("{files}{}", uuid(rng))),
            ];
        }
        _ => {
            c.r#type = Some(ContentType::Command as i32);
            c.action = Some(
                rng.pick(&["typing", "refresh", "ping"]).copied().unwrap_or("typing").to_owned(),
            );
            c.params = vec![kv_int("v", rng.range(1, 9) as i64)];
        }
    }
    c
}

/// A CHAT or GROUPCHAT body with one content and sometimes ext key/values.
pub(crate) fn chat_body(rng: &mut Rng, from: &str, to: &str, group: bool) -> pb::MessageBody {
    let mut ext = Vec::new();
    if rng.chance(0.3) {
        ext.push(kv_str(
            "weichat",
            pb::key_value::ValueType::JsonString,
            "{\"originType\":\"webim\"}".to_owned(),
        ));
    }
    if rng.chance(0.2) {
        ext.push(kv_int("em_ignore_notification", 0));
    }
    pb::MessageBody {
        r#type: Some(if group { BodyType::Groupchat } else { BodyType::Chat } as i32),
        from: Some(short_jid(from)),
        to: Some(short_jid(to)),
        contents: vec![random_content(rng)],
        ext,
        ..Default::default()
    }
}

/// READ_ACK / DELIVER_ACK / RECALL: no content, the acknowledged message's id.
pub(crate) fn ack_body(kind: BodyType, from: &str, to: &str, acked: u64) -> pb::MessageBody {
    pb::MessageBody {
        r#type: Some(kind as i32),
        from: Some(short_jid(from)),
        to: Some(short_jid(to)),
        ack_message_id: Some(acked),
        ..Default::default()
    }
}

pub(crate) fn muc_body(rng: &mut Rng, group: &str, from: &str, to: &str) -> pb::MucBody {
    use pb::muc_body::Operation as Op;
    let op = *rng
        .pick(&[Op::Join, Op::Leave, Op::Invite, Op::Presence, Op::AddMute, Op::UpdateAnnouncement])
        .unwrap_or(&Op::Join);
    pb::MucBody {
        muc_id: Some(jid(Some(APP_KEY), group, Some(GROUP_DOMAIN), None)),
        operation: Some(op as i32),
        from: Some(full_jid(from, None)),
        to: vec![full_jid(to, None)],
        is_chatroom: Some(false),
        ..Default::default()
    }
}

pub(crate) fn roster_body(rng: &mut Rng, from: &str, to: &str) -> pb::RosterBody {
    use pb::roster_body::Operation as Op;
    let op = *rng.pick(&[Op::Add, Op::Accept, Op::Remove, Op::RemoteAccept]).unwrap_or(&Op::Add);
    pb::RosterBody {
        operation: Some(op as i32),
        from: Some(full_jid(from, None)),
        to: vec![full_jid(to, None)],
        reason: (op == Op::Add).then(|| "hi, let's be friends".to_owned()),
        roster_ver: Some(format!("{:x}", rng.next_u64())),
        ..Default::default()
    }
}

pub(crate) fn statistic_login_elsewhere(device: &str) -> pb::StatisticsBody {
    pb::StatisticsBody {
        operation: Some(pb::statistics_body::Operation::UserLoginAnotherDevice as i32),
        replace_device_name: Some(device.to_owned()),
        ..Default::default()
    }
}

pub(crate) fn enc<M: Message>(m: &M) -> Vec<u8> {
    m.encode_to_vec()
}
