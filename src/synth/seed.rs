//! The exchange of the protocol seed's client log (`msync-protocol-seed.txt`), message for
//! message and field for field: only the fields its log lines show are present, so an
//! SDK-log rendering of this capture reproduces the log.
//!
//! The log's times are taken as UTC capture times at the server; the request latencies are
//! those the log shows (16 ms pull, 51 ms send, 64 ms login).

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};

use crate::capture::write::{CaptureFormat, CaptureWriter};
use crate::capture::{LinkType, Timestamp};
use crate::msync::pb;
use crate::msync::pb::m_sync::Command;
use crate::net::Dir;

use super::content::{enc, full_jid, jid, APP_KEY, DOMAIN};
use super::rng::Rng;
use super::tcp::{Conn, Host, Impair, Sink};
use super::{
    assemble, server_host, Engine, GroundTruth, LoginTruth, Phase, Req, RequestKind, Session,
    SynthConfig, MS,
};

/// 2017-10-26 04:27:28.000 UTC: the seed's log lines are the device's local time (UTC+8, as
/// its server timestamps show: 1508992051149 is 04:27:31 UTC), so `--utc-offset +08:00`
/// reproduces them.
const BASE_SECS: i64 = 1_508_992_048;
const RESOURCE: &str = "android_3c4df774-1a75-3b61-a912-ffc4d280adae";
const UUID: &str = "3c4df774-1a75-3b61-a912-ffc4d280adae";
const WEB_RES: &str = "webim_device_uuid";

fn session(i: usize, name: &str, port: u16, isn: [u32; 2]) -> Session {
    let client = Host {
        mac: [0x00, 0x1c, 0x73, 0x00, 0x00, 0x01],
        ip: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 105)),
        port,
    };
    // A LAN client: half a millisecond of RTT and no delayed ACK, so that no pure ACK lands
    // between the log's closely spaced lines.
    let mut conn = Conn::new(i, client, server_host(false, 6717), isn, 1448, 500_000);
    conn.delayed_ack = 0;
    Session {
        phase: Phase::Active,
        midstream: i == 0,
        ..Session::new(
            conn,
            name.to_owned(),
            RESOURCE.to_owned(),
            UUID.to_owned(),
            "LGENexus 5".to_owned(),
            1,
        )
    }
}

/// SEND envelope of the log: version, compress_algorimth and command, all explicit.
fn send(cmd: Command, payload: Vec<u8>) -> pb::MSync {
    pb::MSync {
        version: Some(0),
        compress_algorimth: Some(0),
        command: Some(cmd as i32),
        payload: Some(payload),
        ..Default::default()
    }
}

/// RECV envelope of the log: version and command only.
fn recv(cmd: Command, payload: Vec<u8>) -> pb::MSync {
    pb::MSync {
        version: Some(0),
        command: Some(cmd as i32),
        payload: Some(payload),
        ..Default::default()
    }
}

fn ok() -> Option<pb::Status> {
    Some(pb::Status { error_code: Some(0), ..Default::default() })
}

fn text_body(from: &str, to: &str, text: &str) -> pb::MessageBody {
    pb::MessageBody {
        r#type: Some(pb::message_body::Type::Chat as i32),
        from: Some(jid(None, from, None, None)),
        to: Some(jid(None, to, None, None)),
        contents: vec![pb::message_body::Content {
            r#type: Some(pb::message_body::content::Type::Text as i32),
            text: Some(text.to_owned()),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Writes the seed's exchange: connection 0 picked up mid-stream (z12 receives "123" from z13
/// and sends "456"), then connection 1, a new login (as "zl2", spelled as in the seed).
pub fn seed_capture<W: Write>(out: W, format: CaptureFormat) -> io::Result<GroundTruth> {
    let cfg = SynthConfig {
        start_ts: Timestamp::from_secs_nanos(BASE_SECS, 0),
        ..SynthConfig::default()
    };
    let writer = CaptureWriter::new(out, format, LinkType::ETHERNET, 262_144, false)?;
    let mut eng = Engine {
        cfg: &cfg,
        rng: Rng::new(0),
        sink: Sink::new(writer, cfg.start_ts, 2),
        imp: Impair::default(),
        msgs: Vec::new(),
        reqs: Vec::new(),
        gen: 0,
        server_seq: 0,
        users: Vec::new(),
        groups: Vec::new(),
        start_ms: cfg.start_ts.0.div_euclid(MS),
        fixed_latency: None,
    };
    let mut s0 = session(0, "z12", 51_432, [0x1f2e_3d4c, 0x7a6b_5c4d]);
    let mut s1 = session(1, "zl2", 51_437, [0x2b3c_4d5e, 0x0102_0304]);

    // 12:27:28.743 RECV NOTICE
    let z13_web = jid(None, "z13", None, Some(WEB_RES));
    let notice = pb::CommNotice { queue: Some(z13_web.clone()) };
    eng.burst(&mut s0, Dir::S2C, 743 * MS, &[recv(Command::Notice, enc(&notice))]);

    // 12:27:28.744 SEND SYNC{queue} → 12:27:28.760 RECV SYNC{metas}
    let pull = pb::CommSyncUl { queue: Some(z13_web), ..Default::default() };
    let mut body = text_body("z13", "z12", "123");
    body.ext = vec![pb::KeyValue {
        key: Some("weichat".to_owned()),
        r#type: Some(pb::key_value::ValueType::JsonString as i32),
        value: Some(pb::key_value::Value::StringValue("{\"originType\":\"webim\"}".to_owned())),
    }];
    let answer = pb::CommSyncDl {
        status: ok(),
        metas: vec![pb::Meta {
            id: Some(392_677_053_607_969_272),
            from: Some(full_jid("z13", Some(WEB_RES))),
            to: Some(full_jid("z12", None)),
            timestamp: Some(1_508_992_051_149),
            ns: Some(pb::meta::NameSpace::Chat as i32),
            payload: Some(enc(&body)),
            ..Default::default()
        }],
        next_key: Some(392_677_053_607_969_272),
        queue: Some(jid(None, "z13", None, None)),
        timestamp: Some(1_508_992_051_178),
        ..Default::default()
    };
    eng.fixed_latency = Some(16 * MS);
    eng.exchange(
        &mut s0,
        744 * MS,
        vec![Req {
            kind: RequestKind::Pull,
            msg: send(Command::Sync, enc(&pull)),
            resp: Some(recv(Command::Sync, enc(&answer))),
            status: Some(0),
            meta_id: None,
        }],
    );

    // 12:27:38.982 SEND SYNC{meta} → 12:27:39.033 RECV SYNC{ack}
    let meta_id = 15_089_920_589_600_003;
    let ul = pb::CommSyncUl {
        meta: Some(pb::Meta {
            id: Some(meta_id),
            from: Some(jid(None, "z12", None, Some(RESOURCE))),
            to: Some(jid(None, "z13", None, None)),
            ns: Some(pb::meta::NameSpace::Chat as i32),
            payload: Some(enc(&text_body("z12", "z13", "456"))),
            ..Default::default()
        }),
        ..Default::default()
    };
    let ack = pb::CommSyncDl {
        status: ok(),
        meta_id: Some(meta_id),
        server_id: Some(392_677_097_702_688_788),
        timestamp: Some(1_508_992_061_436),
        ..Default::default()
    };
    eng.fixed_latency = Some(51 * MS);
    eng.exchange(
        &mut s0,
        10_982 * MS,
        vec![Req {
            kind: RequestKind::Send,
            msg: send(Command::Sync, enc(&ul)),
            resp: Some(recv(Command::Sync, enc(&ack))),
            status: Some(0),
            meta_id: Some(meta_id),
        }],
    );

    // 12:29:16.302 SEND PROVISION → 12:29:16.366 RECV PROVISION, after a fresh handshake.
    s1.conn.handshake(&mut eng.sink, 108_300 * MS);
    let prov = pb::Provision {
        os_type: Some(pb::provision::OsType::OsAndroid as i32),
        version: Some("3.3.4".to_owned()),
        compress_type: vec![pb::provision::CompressType::CompressNone as i32],
        device_uuid: Some(UUID.to_owned()),
        is_manual_login: Some(true),
        device_name: Some("LGENexus 5".to_owned()),
        resource: Some(RESOURCE.to_owned()),
        password: Some("zl2-secret-pw".to_owned()),
        ..Default::default()
    };
    let mut login = send(Command::Provision, enc(&prov));
    login.guid = Some(jid(Some(APP_KEY), "zl2", Some(DOMAIN), Some(RESOURCE)));
    login.auth = Some("YWMtQm9ndXNUb2tlbkZvclRoZVNlZWRDYXB0dXJlAAAAAAAAAAAAAAAA".to_owned());
    let welcome = pb::Provision {
        compress_type: vec![pb::provision::CompressType::CompressNone as i32],
        status: ok(),
        resource: Some(RESOURCE.to_owned()),
        ..Default::default()
    };
    eng.fixed_latency = Some(64 * MS);
    eng.exchange(
        &mut s1,
        108_302 * MS,
        vec![Req {
            kind: RequestKind::Provision,
            msg: login,
            resp: Some(recv(Command::Provision, enc(&welcome))),
            status: Some(0),
            meta_id: None,
        }],
    );
    s1.login = LoginTruth::Answered { code: 0, latency_ns: 64 * MS };

    let Engine { sink, msgs, reqs, imp, .. } = eng;
    let summary = sink.finish()?;
    Ok(assemble(cfg.start_ts, &[s0, s1], &summary, msgs, reqs, imp.counts))
}
