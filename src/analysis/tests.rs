//! Tests over hand-built event streams whose every number is known: latencies are injected
//! through timestamps, and every section's figures are checked against them.

use std::collections::HashMap;
use std::net::SocketAddr;

use prost::Message;

use super::*;
use crate::msync::decode::{Body, Command, Decoded, MetaBody};
use crate::net::{ConnId, RoleSource};
use crate::report::{parse_time_bound, Section};

/// 2017-10-26T12:29:00Z.
const BASE: i64 = 1_509_020_940_000_000_000;
const MS: i64 = 1_000_000;
const APP: &str = "easemob-demo#chatdemoui";

fn ts(ms: f64) -> Timestamp {
    Timestamp(BASE + (ms * 1e6).round() as i64)
}

fn jid(name: &str) -> pb::Jid {
    pb::Jid {
        app_key: Some(APP.into()),
        name: Some(name.into()),
        domain: Some("easemob.com".into()),
        client_resource: None,
    }
}

fn status(code: i32, reason: Option<&str>) -> Option<pb::Status> {
    Some(pb::Status {
        error_code: Some(code),
        reason: reason.map(Into::into),
        redirect_info: vec![],
    })
}

fn dec(command: Command, body: Body, meta_bodies: Vec<MetaBody>) -> Decoded {
    Decoded {
        env: pb::MSync::default(),
        command,
        body,
        zlib: false,
        meta_bodies,
        plain_payload: None,
        not_utf8: Vec::new(),
        not_utf8_in_message: 0,
    }
}

/// Message builders, one per request and answer kind.
mod m {
    use super::*;

    pub fn provision_req(user: &str, resource: &str) -> Decoded {
        let mut d = dec(
            Command::Provision,
            Body::Provision(pb::Provision {
                os_type: Some(1),
                version: Some("4.1.0".into()),
                device_uuid: Some(format!("uuid-{user}")),
                device_name: Some("Pixel".into()),
                resource: Some(resource.into()),
                auth: Some("secret-token".into()),
                ..Default::default()
            }),
            vec![],
        );
        let mut g = jid(user);
        g.client_resource = Some(resource.into());
        d.env.guid = Some(g);
        d.env.auth = Some("secret-token".into());
        d
    }
    pub fn provision_resp(code: i32, reason: Option<&str>) -> Decoded {
        dec(
            Command::Provision,
            Body::Provision(pb::Provision {
                status: status(code, reason),
                session_id: Some("sess-1".into()),
                ..Default::default()
            }),
            vec![],
        )
    }
    pub fn unread_req() -> Decoded {
        dec(Command::Unread, Body::UnreadUl(pb::CommUnreadUl {}), vec![])
    }
    pub fn unread_resp(queues: &[(&str, u32)]) -> Decoded {
        dec(
            Command::Unread,
            Body::UnreadDl(pb::CommUnreadDl {
                status: status(0, None),
                unread: queues
                    .iter()
                    .map(|(q, n)| pb::MetaQueue { queue: Some(jid(q)), n: Some(*n) })
                    .collect(),
                timestamp: Some(1),
            }),
            vec![],
        )
    }
    pub fn notice(q: &str) -> Decoded {
        dec(Command::Notice, Body::Notice(pb::CommNotice { queue: Some(jid(q)) }), vec![])
    }
    pub fn chat(to: &str, ty: i32, content: i32) -> (pb::Meta, MetaBody) {
        let meta = pb::Meta { to: Some(jid(to)), ns: Some(1), ..Default::default() };
        let body = pb::MessageBody {
            r#type: Some(ty),
            contents: vec![pb::message_body::Content {
                r#type: Some(content),
                ..Default::default()
            }],
            ..Default::default()
        };
        (meta, MetaBody::Chat(body))
    }
    pub fn send(id: u64, to: &str) -> Decoded {
        let (mut meta, body) = chat(to, 1, 0);
        meta.id = Some(id);
        dec(
            Command::Sync,
            Body::SyncUl(pb::CommSyncUl { meta: Some(meta), ..Default::default() }),
            vec![body],
        )
    }
    pub fn ack(id: u64, code: i32, reason: Option<&str>) -> Decoded {
        dec(
            Command::Sync,
            Body::SyncDl(pb::CommSyncDl {
                status: status(code, reason),
                meta_id: Some(id),
                server_id: Some(id.wrapping_add(1_000_000)),
                timestamp: Some(5),
                ..Default::default()
            }),
            vec![],
        )
    }
    pub fn pull(q: &str, key: u64) -> Decoded {
        dec(
            Command::Sync,
            Body::SyncUl(pb::CommSyncUl {
                queue: Some(jid(q)),
                key: Some(key),
                ..Default::default()
            }),
            vec![],
        )
    }
    /// A pull answer with `metas` CHAT metas from `q` to the user.
    pub fn pull_resp(q: &str, metas: usize, next_key: u64, is_last: bool) -> Decoded {
        let items: Vec<(pb::Meta, MetaBody)> = (0..metas)
            .map(|_| {
                let (mut meta, body) = chat("me", 1, 1);
                meta.from = Some(jid(q));
                (meta, body)
            })
            .collect();
        pull_resp_with(q, items, next_key, is_last)
    }
    pub fn pull_resp_with(
        q: &str,
        items: Vec<(pb::Meta, MetaBody)>,
        next_key: u64,
        is_last: bool,
    ) -> Decoded {
        let (metas, bodies): (Vec<_>, Vec<_>) = items.into_iter().unzip();
        dec(
            Command::Sync,
            Body::SyncDl(pb::CommSyncDl {
                status: status(0, None),
                metas,
                next_key: Some(next_key),
                queue: Some(jid(q)),
                is_last: Some(is_last),
                ..Default::default()
            }),
            bodies,
        )
    }
    pub fn logout_req() -> Decoded {
        dec(Command::Logout, Body::Logout(pb::Logout::default()), vec![])
    }
    pub fn logout_resp() -> Decoded {
        dec(
            Command::Logout,
            Body::Logout(pb::Logout { status: status(0, None), ..Default::default() }),
            vec![],
        )
    }
}

/// A meta body's payload bytes; an invalid one gets bytes that decode as no body.
fn meta_payload(b: &MetaBody) -> Option<Vec<u8>> {
    match b {
        MetaBody::Chat(x) => Some(x.encode_to_vec()),
        MetaBody::Muc(x) => Some(x.encode_to_vec()),
        MetaBody::Roster(x) => Some(x.encode_to_vec()),
        MetaBody::Statistic(x) => Some(x.encode_to_vec()),
        MetaBody::Conference(x) => Some(x.encode_to_vec()),
        MetaBody::Raw => Some(vec![1, 2, 3]),
        MetaBody::Empty => None,
        MetaBody::Invalid(_) => Some(vec![0xff]),
    }
}

/// The wire bytes of a message built with the prost types: the analyzer reads bytes.
fn encode(msg: &Decoded) -> Vec<u8> {
    let mut env = msg.env.clone();
    env.command = Some(msg.command.to_i32());
    let with_bodies = |metas: &mut [pb::Meta]| {
        for (m, b) in metas.iter_mut().zip(&msg.meta_bodies) {
            m.payload = meta_payload(b);
        }
    };
    env.payload = Some(match &msg.body {
        Body::Provision(p) => p.encode_to_vec(),
        Body::UnreadUl(u) => u.encode_to_vec(),
        Body::UnreadDl(u) => u.encode_to_vec(),
        Body::Notice(n) => n.encode_to_vec(),
        Body::SyncUl(s) => {
            let mut s = s.clone();
            if let Some(m) = s.meta.as_mut() {
                with_bodies(std::slice::from_mut(m));
            }
            s.encode_to_vec()
        }
        Body::SyncDl(s) => {
            let mut s = s.clone();
            with_bodies(&mut s.metas);
            s.encode_to_vec()
        }
        Body::Logout(l) => l.encode_to_vec(),
        Body::Encrypted => {
            env.encrypt_type = vec![1];
            vec![1, 2, 3]
        }
        Body::Raw(r) => r.clone(),
    });
    env.encode_to_vec()
}

/// Feeds events to an analyzer; frames are numbered 1, 2, … in feeding order.
struct Sim {
    a: Analyzer,
    metas: HashMap<u32, ConnMeta>,
    frame: u64,
    /// Only these connections' events reach the analyzer (a shard's share of a run).
    only: Option<Vec<u32>>,
}

impl Sim {
    fn new(opts: &ReportOptions) -> Self {
        Sim { a: Analyzer::new(opts), metas: HashMap::new(), frame: 0, only: None }
    }
    fn only(opts: &ReportOptions, conns: &[u32]) -> Self {
        Sim { only: Some(conns.to_vec()), ..Sim::new(opts) }
    }
    fn keeps(&self, conn: u32) -> bool {
        self.only.as_ref().is_none_or(|o| o.contains(&conn))
    }
    fn pkt(&mut self, t: f64) -> PktCtx {
        self.frame += 1;
        PktCtx { index: self.frame, ts: ts(t) }
    }
    fn open(&mut self, conn: u32, t: f64, midstream: bool) {
        let p = self.pkt(t);
        let client: SocketAddr = format!("10.0.0.{}:{}", conn + 1, 40000 + conn)
            .parse()
            .unwrap_or_else(|_| unreachable!());
        let server: SocketAddr = "192.0.2.7:6717".parse().unwrap_or_else(|_| unreachable!());
        let meta = ConnMeta {
            id: ConnId(conn),
            client,
            server,
            role: if midstream { RoleSource::Guess } else { RoleSource::Syn },
            midstream,
            first_packet: p.index,
            first_ts: p.ts,
            resumes: None,
        };
        if self.keeps(conn) {
            self.a.event(&Event::ConnOpen { pkt: p, conn: &meta }).ok();
            let detected = Event::MsyncDetected { pkt: p, conn: &meta, transport: Transport::Tcp };
            self.a.event(&detected).ok();
        }
        self.metas.insert(conn, meta);
    }
    /// Sends `msg` on `conn` at `t` ms; up messages are 100 bytes on the wire, down 200.
    fn msg(&mut self, conn: u32, t: f64, dir: Dir, msg: Decoded) -> u64 {
        let wire_len = if dir == Dir::C2S { 100 } else { 200 };
        self.raw(conn, t, dir, &encode(&msg), wire_len)
    }
    /// Sends the message `raw`, which took `wire_len` bytes on the wire (fewer than its own
    /// when it was inflated on the way: LZ4, permessage-deflate).
    fn raw(&mut self, conn: u32, t: f64, dir: Dir, raw: &[u8], wire_len: u64) -> u64 {
        let p = self.pkt(t);
        let Some(meta) = self.metas.get(&conn) else { return 0 };
        let ctx = MsgCtx {
            frame: p.index,
            ts: p.ts,
            capture_start: ts(0.0),
            conn: meta,
            dir,
            stream_offset: 0,
            wire_len,
            transport: Transport::Tcp,
            lz4: None,
        };
        if self.keeps(conn) {
            self.a.undecoded(&ctx, raw).ok();
        }
        p.index
    }
    fn up(&mut self, conn: u32, t: f64, msg: Decoded) -> u64 {
        self.msg(conn, t, Dir::C2S, msg)
    }
    fn down(&mut self, conn: u32, t: f64, msg: Decoded) -> u64 {
        self.msg(conn, t, Dir::S2C, msg)
    }
    fn decode_error(&mut self, conn: u32, t: f64) {
        let p = self.pkt(t);
        let Some(meta) = self.metas.get(&conn) else { return };
        let ctx = MsgCtx {
            frame: p.index,
            ts: p.ts,
            capture_start: ts(0.0),
            conn: meta,
            dir: Dir::S2C,
            stream_offset: 0,
            wire_len: 10,
            transport: Transport::Tcp,
            lz4: None,
        };
        let error = crate::msync::decode::DecodeError::Envelope("bad".into());
        if self.keeps(conn) {
            self.a.event(&Event::DecodeError { ctx: &ctx, raw: &[], error: &error }).ok();
        }
    }
    fn gap(&mut self, conn: u32, t: f64, len: u64) -> u64 {
        let p = self.pkt(t);
        if self.keeps(conn) {
            self.a
                .event(&Event::Gap { pkt: p, conn: ConnId(conn), dir: Dir::S2C, offset: 0, len })
                .ok();
        }
        p.index
    }
    fn tcp(&mut self, conn: u32, t: f64, note: TcpNote) {
        let p = self.pkt(t);
        if self.keeps(conn) {
            self.a.event(&Event::Tcp { pkt: p, conn: ConnId(conn), dir: Dir::S2C, note }).ok();
        }
    }
    fn frame_problem(&mut self, conn: u32, t: f64, problem: FrameProblem) {
        let p = self.pkt(t);
        if self.keeps(conn) {
            let ev = Event::Frame { pkt: p, conn: ConnId(conn), dir: Dir::S2C, offset: 0, problem };
            self.a.event(&ev).ok();
        }
    }
    fn close(&mut self, conn: u32, t: f64, reason: CloseReason) {
        self.close_after(conn, t, t, reason);
    }
    fn transport(&mut self, conn: u32, t: f64, dir: Dir, note: TransportNote) {
        let p = self.pkt(t);
        if self.keeps(conn) {
            self.a.event(&Event::Transport { pkt: p, conn: ConnId(conn), dir, note: &note }).ok();
        }
    }
    /// A close found at `t` of a connection whose last packet came at `last`.
    fn close_after(&mut self, conn: u32, last: f64, t: f64, reason: CloseReason) {
        let p = self.pkt(t);
        let last = ts(last);
        let Some(meta) = self.metas.get(&conn) else { return };
        if self.keeps(conn) {
            self.a.event(&Event::ConnClose { pkt: p, conn: meta, reason, msync: true, last }).ok();
        }
    }
    fn finish(&mut self, end_ms: f64) {
        let totals = Totals {
            packets: self.frame,
            first_ts: Some(ts(0.0)),
            last_ts: Some(ts(end_ms)),
            tcp_connections: self.metas.len() as u64,
            msync_connections: self.metas.len() as u64,
            ..Default::default()
        };
        self.a.finish(&totals).ok();
    }
}

/// Three connections:
/// - 0: z13 logs in (12.5 ms), drains z14 (2 pages), sends (one unanswered, one duplicate, an
///   unknown ack, one PERMISSION_DENIED), a NOTICE/pull of z15 with a slow 690 ms answer, three
///   heartbeats 30 s apart, LOGOUT (5 ms), FIN.
/// - 1: z20 fails to log in (TOKEN_EXPIRED, 50 ms), RST.
/// - 2: picked up mid-stream, no PROVISION; a drain of z30 whose next_key goes backwards and
///   never reaches is_last; a kick and a MUC error; gaps, retransmissions, a bad frame.
fn scenario(opts: &ReportOptions) -> Sim {
    play(Sim::new(opts))
}

fn play(mut s: Sim) -> Sim {
    s.open(0, 0.0, false);
    s.up(0, 10.0, m::provision_req("z13", "android_abc"));
    s.down(0, 22.5, m::provision_resp(0, None));
    s.up(0, 30.0, m::unread_req());
    s.down(0, 35.0, m::unread_resp(&[("z14", 3)]));
    s.up(0, 40.0, m::pull("z14", 0));
    s.down(0, 50.0, m::pull_resp("z14", 2, 100, false));
    s.up(0, 55.0, m::pull("z14", 100));
    s.down(0, 70.0, m::pull_resp("z14", 1, 101, true));
    s.up(0, 100.0, m::send(1001, "z14"));
    s.down(0, 120.0, m::ack(1001, 0, None));
    s.up(0, 130.0, m::send(1002, "z14"));
    s.down(0, 170.0, m::ack(1002, 0, None));
    s.up(0, 200.0, m::send(1003, "z15"));
    s.up(0, 210.0, m::send(1001, "z14"));
    s.down(0, 215.0, m::ack(1001, 0, None));
    s.down(0, 220.0, m::ack(9999, 0, None));
    s.down(0, 300.0, m::notice("z15"));
    s.up(0, 310.0, m::pull("z15", 0));
    s.down(0, 1000.0, m::pull_resp("z15", 1, 500, true));
    s.up(0, 1100.0, m::send(1004, "z16"));
    s.down(0, 1110.0, m::ack(1004, 7, Some("blocked")));
    for (t, rtt) in [(30_000.0, 8.0), (60_000.0, 12.0), (90_000.0, 10.0)] {
        s.up(0, t, m::unread_req());
        s.down(0, t + rtt, m::unread_resp(&[]));
    }
    s.up(0, 95_000.0, m::logout_req());
    s.down(0, 95_005.0, m::logout_resp());
    s.close(0, 95_010.0, CloseReason::Fin);

    s.open(1, 2000.0, false);
    s.up(1, 2010.0, m::provision_req("z20", "ios_1"));
    s.down(1, 2060.0, m::provision_resp(6, Some("token expired")));
    s.close(1, 2070.0, CloseReason::Rst);

    s.open(2, 3000.0, true);
    s.down(2, 3100.0, m::notice("z30"));
    s.up(2, 3107.0, m::pull("z30", 0));
    let kick = (
        pb::Meta { ns: Some(0), ..Default::default() },
        MetaBody::Statistic(pb::StatisticsBody {
            operation: Some(4),
            reason: Some("other device".into()),
            ..Default::default()
        }),
    );
    let muc = (
        pb::Meta { ns: Some(2), ..Default::default() },
        MetaBody::Muc(pb::MucBody {
            status: Some(pb::muc_body::Status {
                error_code: Some(1),
                description: Some("not admin".into()),
                chatroom_info: None,
            }),
            ..Default::default()
        }),
    );
    s.down(2, 3127.0, m::pull_resp_with("z30", vec![kick, muc], 50, false));
    s.up(2, 3130.0, m::pull("z30", 50));
    s.down(2, 3160.0, m::pull_resp("z30", 0, 40, false));
    s.gap(2, 3200.0, 1000);
    s.tcp(2, 3201.0, TcpNote::Retransmission);
    s.tcp(2, 3202.0, TcpNote::Retransmission);
    s.tcp(2, 3203.0, TcpNote::OutOfOrder);
    s.decode_error(2, 3204.0);
    s.frame_problem(2, 3205.0, FrameProblem::Oversize { len: 1 << 30 });
    s.finish(100_000.0);
    s
}

fn approx(got: Option<i64>, want_ms: f64) {
    let g = got.unwrap_or(i64::MIN) as f64 / 1e6;
    assert!((g - want_ms).abs() <= want_ms * 0.01 + 1e-9, "got {g} ms, want {want_ms} ms");
}

fn lat<'a>(r: &'a Report, kind: &str) -> &'a LatencyRow {
    r.latency.iter().find(|l| l.kind == kind).unwrap_or_else(|| panic!("no {kind}"))
}

fn finding<'a>(r: &'a Report, kind: &str) -> Option<&'a FindingRow> {
    r.findings.iter().find(|f| f.kind == kind)
}

fn fcount(r: &Report, kind: &str) -> u64 {
    finding(r, kind).map_or(0, |f| f.count)
}

#[test]
fn sessions_section() {
    let r = scenario(&ReportOptions::default()).a.report();
    assert_eq!(r.sessions.len(), 3);
    let s0 = &r.sessions[0];
    assert_eq!(s0.conn, 0);
    assert_eq!(s0.client, "10.0.0.1:40000");
    assert_eq!(s0.server, "192.0.2.7:6717");
    assert_eq!(s0.user.as_deref(), Some("easemob-demo#chatdemoui_z13@easemob.com/android_abc"));
    assert_eq!(s0.resource.as_deref(), Some("android_abc"));
    assert_eq!(s0.device_uuid.as_deref(), Some("uuid-z13"));
    assert_eq!(s0.device_name.as_deref(), Some("Pixel"));
    assert_eq!(s0.os.as_deref(), Some("OS_ANDROID"));
    assert_eq!(s0.sdk_version.as_deref(), Some("4.1.0"));
    let login = s0.login.as_ref().unwrap_or_else(|| panic!("login"));
    assert_eq!(login.status, "OK");
    assert_eq!(login.latency_ns, Some(12_500_000));
    assert_eq!(login.session_id.as_deref(), Some("sess-1"));
    assert_eq!(login.frame, 2);
    assert_eq!(s0.start, ts(0.0));
    assert_eq!(s0.end, ts(95_010.0));
    assert_eq!(s0.duration_ns, 95_010 * MS);
    assert_eq!(s0.close, "FIN");
    assert!(s0.logout);
    assert_eq!(s0.ended(), "LOGOUT, FIN");
    assert_eq!((s0.msgs_up, s0.msgs_down), (14, 15));
    assert_eq!((s0.bytes_up, s0.bytes_down), (1400, 3000));
    assert_eq!(s0.heartbeats.count, 3);
    assert_eq!(s0.heartbeats.interval_ns, Some(30_000 * MS));
    approx(s0.heartbeats.rtt_p50_ns, 10.0);
    assert_eq!(s0.heartbeats.rtt_max_ns, Some(12 * MS));
    assert_eq!(s0.errors, 1);
    assert_eq!(s0.transport, Some("tcp"));

    let s1 = &r.sessions[1];
    let l1 = s1.login.as_ref().unwrap_or_else(|| panic!("login"));
    assert_eq!(l1.status, "TOKEN_EXPIRED");
    assert_eq!(l1.reason.as_deref(), Some("token expired"));
    assert_eq!(l1.latency_ns, Some(50 * MS));
    assert_eq!(s1.close, "RST");
    assert_eq!(s1.ended(), "RST");
    assert_eq!(s1.duration_ns, 70 * MS);

    let s2 = &r.sessions[2];
    assert!(s2.midstream);
    assert!(s2.login.is_none());
    assert!(s2.user.is_none());
    assert_eq!(s2.close, "capture end");
    assert_eq!(s2.end, ts(100_000.0));
    assert_eq!((s2.msgs_up, s2.msgs_down), (2, 4));
    assert_eq!(s2.decode_errors, 1);
    // The undecodable frame (10 bytes) is one of the messages down, and its bytes count too.
    assert_eq!((s2.bytes_up, s2.bytes_down), (200, 3 * 200 + 10));
    // The kick and the MUC error.
    assert_eq!(s2.errors, 2);
}

#[test]
fn latency_section() {
    let r = scenario(&ReportOptions::default()).a.report();
    let kinds: Vec<&str> = r.latency.iter().map(|l| l.kind).collect();
    assert_eq!(kinds, ["login", "unread", "send", "pull", "notice", "logout"]);

    let l = lat(&r, "login");
    assert_eq!((l.count, l.answered, l.unanswered), (2, 2, 0));
    assert_eq!(l.min_ns, Some(12_500_000));
    approx(l.p50_ns, 12.5);
    assert_eq!(l.max_ns, Some(50 * MS));

    let u = lat(&r, "unread");
    assert_eq!((u.count, u.answered, u.unanswered), (4, 4, 0));
    assert_eq!(u.min_ns, Some(5 * MS));
    approx(u.p50_ns, 8.0);
    approx(u.p90_ns, 12.0);
    assert_eq!(u.max_ns, Some(12 * MS));

    // 1001 (20), 1002 (40), 1003 (never), 1001 again (5), 1004 (10, with an error status).
    let s = lat(&r, "send");
    assert_eq!((s.count, s.answered, s.unanswered), (5, 4, 1));
    assert_eq!(s.min_ns, Some(5 * MS));
    approx(s.p50_ns, 10.0);
    approx(s.p90_ns, 40.0);
    assert_eq!(s.max_ns, Some(40 * MS));

    // 10, 15, 690 on conn 0; 20, 30 on conn 2.
    let p = lat(&r, "pull");
    assert_eq!((p.count, p.answered, p.unanswered), (5, 5, 0));
    assert_eq!(p.min_ns, Some(10 * MS));
    approx(p.p50_ns, 20.0);
    approx(p.p99_ns, 690.0);
    assert_eq!(p.max_ns, Some(690 * MS));

    let n = lat(&r, "notice");
    assert_eq!((n.count, n.answered, n.unanswered), (2, 2, 0));
    assert_eq!(n.min_ns, Some(7 * MS));
    assert_eq!(n.max_ns, Some(10 * MS));

    let o = lat(&r, "logout");
    assert_eq!((o.count, o.answered, o.unanswered), (1, 1, 0));
    assert_eq!(o.min_ns, Some(5 * MS));
}

#[test]
fn errors_section() {
    let r = scenario(&ReportOptions::default()).a.report();
    let codes: Vec<&str> = r.errors.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "MUC.PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "STATISTIC.USER_KICKED_BY_OTHER_DEVICE",
            "TOKEN_EXPIRED"
        ]
    );
    let pd = &r.errors[1];
    assert_eq!(pd.source, "status");
    assert_eq!(pd.count, 1);
    assert_eq!(pd.commands, vec![("SYNC".to_string(), 1)]);
    assert_eq!(pd.reasons, vec![("blocked".to_string(), 1)]);
    assert_eq!(pd.sessions, vec![0]);
    assert_eq!(pd.users, vec!["easemob-demo#chatdemoui_z13@easemob.com".to_string()]);
    assert_eq!(pd.first.ts, ts(1110.0));
    assert_eq!(pd.first, pd.last);
    let te = &r.errors[3];
    assert_eq!(te.commands, vec![("PROVISION".to_string(), 1)]);
    assert_eq!(te.reasons, vec![("token expired".to_string(), 1)]);
    assert_eq!(te.sessions, vec![1]);
    let kick = &r.errors[2];
    assert_eq!(kick.source, "statistic");
    assert_eq!(kick.reasons, vec![("other device".to_string(), 1)]);
    assert_eq!(kick.sessions, vec![2]);
    assert!(kick.users.is_empty());
    assert_eq!(r.errors[0].reasons, vec![("not admin".to_string(), 1)]);
}

#[test]
fn findings_section() {
    let r = scenario(&ReportOptions::default()).a.report();
    let want = [
        ("lost_segment", 1),
        ("retransmission", 2),
        ("out_of_order", 1),
        ("rst", 1),
        ("midstream", 1),
        ("undecodable_frame", 1),
        ("oversize_frame", 1),
        ("unanswered_request", 1),
        ("ack_unknown_meta_id", 1),
        ("duplicate_meta_id", 1),
        ("next_key_backwards", 1),
        ("drain_stall", 1),
        ("login_failed", 1),
        ("no_provision", 1),
        ("slow_exchange", 1),
        ("error_status", 3),
        ("kicked", 1),
    ];
    for (k, n) in want {
        assert_eq!(fcount(&r, k), n, "{k}");
    }
    assert_eq!(r.findings.len(), want.len());
    // Most severe first.
    assert!(r.findings.windows(2).all(|w| w[0].severity >= w[1].severity));
    let gap = finding(&r, "lost_segment").unwrap_or_else(|| panic!());
    assert_eq!(gap.value, Some(1000));
    assert_eq!(gap.severity, Severity::Error);
    assert_eq!(gap.places[0].conn, 2);
    let slow = finding(&r, "slow_exchange").unwrap_or_else(|| panic!());
    assert_eq!(slow.value, Some(690 * MS as u64));
    assert_eq!(slow.places[0].ts, ts(1000.0));
    // The unanswered request is the send of 1003 (frame 14).
    let un = finding(&r, "unanswered_request").unwrap_or_else(|| panic!());
    assert_eq!((un.places[0].conn, un.places[0].frame), (0, 14));
    assert_eq!(finding(&r, "midstream").map(|f| f.severity), Some(Severity::Note));
    // A higher threshold drops the slow finding.
    let opts = ReportOptions { slow_ns: 1_000 * MS, ..Default::default() };
    assert_eq!(fcount(&scenario(&opts).a.report(), "slow_exchange"), 0);
}

#[test]
fn overview_section() {
    let r = scenario(&ReportOptions::default()).a.report();
    let o = &r.overview;
    assert_eq!(r.capture_start, Some(ts(0.0)));
    assert_eq!(r.capture_end, Some(ts(100_000.0)));
    assert_eq!(o.tcp_connections, 3);
    assert_eq!(o.msync_connections, 3);
    assert_eq!(o.sessions, 3);
    assert_eq!(o.messages, 14 + 15 + 2 + 2 + 4);
    assert_eq!(
        o.users,
        vec![
            "easemob-demo#chatdemoui_z13@easemob.com".to_string(),
            "easemob-demo#chatdemoui_z20@easemob.com".to_string()
        ]
    );
    assert_eq!(o.decode_errors, 1);
    assert_eq!(o.gap_bytes, 1000);
    let per: HashMap<&str, (u64, u64)> =
        o.per_command.iter().map(|(n, u, d)| (n.as_str(), (*u, *d))).collect();
    assert_eq!(per.get("PROVISION"), Some(&(2, 2)));
    assert_eq!(per.get("UNREAD"), Some(&(4, 4)));
    assert_eq!(per.get("NOTICE"), Some(&(0, 2)));
    assert_eq!(per.get("LOGOUT"), Some(&(1, 1)));
    // SYNC up: 5 pulls + 5 sends; down: 5 pull answers + 5 acks.
    assert_eq!(per.get("SYNC"), Some(&(10, 10)));
    assert_eq!(o.worst.len(), 3);
    assert!(o.worst.iter().all(|f| f.severity == Severity::Error));
    let worst: Vec<&str> = o.worst.iter().map(|f| f.kind).collect();
    assert_eq!(worst, ["lost_segment", "undecodable_frame", "oversize_frame"]);
}

#[test]
fn queues_section() {
    let r = scenario(&ReportOptions::default()).a.report();
    let q = |name: &str| {
        let full = format!("{APP}_{name}@easemob.com");
        r.queues.iter().find(|x| x.queue == full).cloned().unwrap_or_else(|| panic!("{name}"))
    };
    let z14 = q("z14");
    assert_eq!((z14.notices, z14.pulls, z14.metas), (0, 2, 3));
    assert_eq!(z14.unread_announced, Some(3));
    assert_eq!(z14.last_next_key, Some(101));
    assert_eq!(z14.is_last_reached, Some(true));
    assert_eq!(z14.notice_to_pull.count, 0);
    assert_eq!(z14.pull_rtt.count, 2);
    approx(z14.pull_rtt.p50_ns, 10.0);
    assert_eq!(z14.pull_rtt.max_ns, Some(15 * MS));
    assert_eq!((z14.drains, z14.drain_pages, z14.drain_metas, z14.stalls), (1, 2, 3, 0));
    assert_eq!(z14.drain_time.max_ns, Some(30 * MS));
    assert_eq!(z14.sessions, vec![0]);

    let z15 = q("z15");
    assert_eq!((z15.notices, z15.pulls, z15.metas), (1, 1, 1));
    assert_eq!(z15.notice_to_pull.max_ns, Some(10 * MS));
    assert_eq!(z15.pull_rtt.max_ns, Some(690 * MS));
    assert_eq!((z15.drains, z15.drain_pages, z15.drain_metas), (1, 1, 1));
    assert_eq!(z15.drain_time.max_ns, Some(700 * MS));
    assert_eq!(z15.last_next_key, Some(500));

    let z30 = q("z30");
    assert_eq!((z30.notices, z30.pulls, z30.metas), (1, 2, 2));
    assert_eq!(z30.last_next_key, Some(40));
    assert_eq!(z30.is_last_reached, Some(false));
    assert_eq!((z30.drains, z30.stalls), (0, 1));
    assert_eq!(z30.notice_to_pull.max_ns, Some(7 * MS));
    assert_eq!(r.queues.len(), 3);
}

#[test]
fn messages_section() {
    let r = scenario(&ReportOptions::default()).a.report();
    let m = &r.messages;
    let row = |v: &[CountRow], n: &str| {
        v.iter().find(|c| c.name == n).map(|c| (c.up, c.down)).unwrap_or((0, 0))
    };
    // 5 sends up; 4 CHAT metas delivered in pulls, plus a STATISTIC and a MUC meta.
    assert_eq!(row(&m.namespaces, "CHAT"), (5, 4));
    assert_eq!(row(&m.namespaces, "STATISTIC"), (0, 1));
    assert_eq!(row(&m.namespaces, "MUC"), (0, 1));
    assert_eq!(row(&m.body_types, "CHAT"), (5, 4));
    assert_eq!(row(&m.content_types, "TEXT"), (5, 0));
    assert_eq!(row(&m.content_types, "IMAGE"), (0, 4));
    let z13 = format!("{APP}_z13@easemob.com");
    let z14 = format!("{APP}_z14@easemob.com");
    assert_eq!(m.top_senders.first(), Some(&(z13, 5)));
    assert!(m.top_senders.contains(&(z14.clone(), 3)));
    assert_eq!(m.top_receivers.first(), Some(&(format!("{APP}_me@easemob.com"), 4)));
    assert!(m.top_receivers.contains(&(z14, 3)));
}

#[test]
fn filters_narrow_every_section() {
    let opts = ReportOptions { user: Some("z20".into()), ..Default::default() };
    let r = scenario(&opts).a.report();
    assert_eq!(r.filter.user.as_deref(), Some("z20"));
    assert_eq!(r.sessions.len(), 1);
    assert_eq!(r.sessions[0].conn, 1);
    assert_eq!(lat(&r, "login").count, 1);
    assert_eq!(lat(&r, "send").count, 0);
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].code, "TOKEN_EXPIRED");
    assert!(r.queues.is_empty());
    assert_eq!(fcount(&r, "rst"), 1);
    assert_eq!(fcount(&r, "lost_segment"), 0);
    // The full JID and the bare JID match too; a prefix of the name does not.
    for u in
        ["easemob-demo#chatdemoui_z20@easemob.com", "easemob-demo#chatdemoui_z20@easemob.com/ios_1"]
    {
        let o = ReportOptions { user: Some(u.into()), ..Default::default() };
        assert_eq!(scenario(&o).a.report().sessions.len(), 1, "{u}");
    }
    let o = ReportOptions { user: Some("z2".into()), ..Default::default() };
    assert_eq!(scenario(&o).a.report().sessions.len(), 0);

    let opts = ReportOptions { conns: vec![2], ..Default::default() };
    let r = scenario(&opts).a.report();
    assert_eq!(r.sessions.len(), 1);
    assert_eq!(r.queues.len(), 1);
    assert_eq!(lat(&r, "pull").count, 2);
    assert_eq!(fcount(&r, "lost_segment"), 1);
    assert_eq!(fcount(&r, "rst"), 0);
    // Several connections: the sessions of each, and the filter names them.
    let two = ReportOptions { conns: vec![1, 2], ..Default::default() };
    let r2 = scenario(&two).a.report();
    assert_eq!(r2.sessions.iter().map(|s| s.conn).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(r2.filter.conns, [1, 2]);

    // From 1.5 s on: only the heartbeats, logout and the other connections.
    let since = parse_time_bound("+1.5s").ok();
    let r = scenario(&ReportOptions { since, ..Default::default() }).a.report();
    assert_eq!(lat(&r, "unread").count, 3);
    assert_eq!(lat(&r, "send").count, 0);
    assert_eq!(lat(&r, "login").count, 1);
    // Until 1.5 s: conn 0's start only; absolute bounds work the same.
    let until = parse_time_bound("2017-10-26T12:29:01.5Z").ok();
    let r = scenario(&ReportOptions { until, ..Default::default() }).a.report();
    assert_eq!(lat(&r, "send").count, 5);
    assert_eq!(lat(&r, "unread").count, 1);
    assert_eq!(lat(&r, "login").count, 1);
    assert_eq!(r.errors.len(), 1);
}

/// A window narrows what is counted, not what is known: a login before it still names the
/// session, and an exchange is matched across the window's edges and counted by its request.
#[test]
fn a_window_counts_exchanges_by_their_request() {
    // From 110 ms: conn 0 logged in at 10 ms and sent 1001 at 100 ms (acked at 120 ms).
    let since = parse_time_bound("+0.11s").ok();
    let r = scenario(&ReportOptions { since, ..Default::default() }).a.report();
    let s0 = r.sessions.iter().find(|s| s.conn == 0).unwrap_or_else(|| panic!());
    assert_eq!(s0.user.as_deref(), Some("easemob-demo#chatdemoui_z13@easemob.com/android_abc"));
    assert!(!s0.user_inferred);
    assert_eq!(s0.login.as_ref().map(|l| l.status.as_str()), Some("OK"));
    // Only the midstream connection lacks a PROVISION; only 9999 was never sent.
    assert_eq!(fcount(&r, "no_provision"), 1);
    assert_eq!(fcount(&r, "ack_unknown_meta_id"), 1);
    // 1002, 1003, 1001 again and 1004; 1003 unanswered.
    let send = lat(&r, "send");
    assert_eq!((send.count, send.answered, send.unanswered), (4, 3, 1));
    assert_eq!(lat(&r, "login").count, 1, "conn 1's, at 2.01 s");
    // --user with the whole JID finds the session whose login came before the window.
    let user = Some("easemob-demo#chatdemoui_z13@easemob.com".to_string());
    let r = scenario(&ReportOptions { since, user, ..Default::default() }).a.report();
    assert_eq!(r.sessions.iter().map(|s| s.conn).collect::<Vec<_>>(), vec![0]);

    // Until 110 ms: the send of 1001 is answered after the window, but answered.
    let until = parse_time_bound("+0.11s").ok();
    let r = scenario(&ReportOptions { until, ..Default::default() }).a.report();
    let send = lat(&r, "send");
    assert_eq!((send.count, send.answered, send.unanswered), (1, 1, 0));
    approx(send.max_ns, 20.0);
    assert_eq!(fcount(&r, "unanswered_request"), 0);
    let pull = lat(&r, "pull");
    assert_eq!((pull.count, pull.answered), (2, 2));
    // Nothing after the window is counted: one session, its messages up to 100 ms.
    assert_eq!(r.sessions.len(), 1);
    assert_eq!(r.overview.messages, 9);
}

#[test]
fn json_core_keys_and_types() {
    let r = scenario(&ReportOptions::default()).a.report();
    let mut buf = Vec::new();
    r.write_json(&mut buf).unwrap_or_else(|e| panic!("{e}"));
    let v: serde_json::Value = serde_json::from_slice(&buf).unwrap_or_else(|e| panic!("{e}"));
    for k in ["overview", "sessions", "queues", "latency", "errors", "messages", "findings"] {
        assert!(v.get(k).is_some(), "{k}");
    }
    let s0 = &v["sessions"][0];
    assert_eq!(s0["conn"], 0);
    assert_eq!(s0["client"], "10.0.0.1:40000");
    assert_eq!(s0["server"], "192.0.2.7:6717");
    assert_eq!(s0["user"], "easemob-demo#chatdemoui_z13@easemob.com/android_abc");
    assert_eq!(s0["login"]["status"], "OK");
    assert_eq!(s0["login"]["latency_ms"], 12.5);
    assert!(v["sessions"][2]["login"].is_null());
    let l = &v["latency"][2];
    assert_eq!(l["kind"], "send");
    for k in ["count", "answered", "unanswered"] {
        assert!(l[k].is_u64(), "{k}");
    }
    for k in ["min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms"] {
        assert!(l[k].is_f64(), "{k}");
    }
    assert_eq!(l["min_ms"], 5.0);
    assert_eq!(l["unanswered"], 1);
    assert!(v["latency"][0]["p50_ms"].is_number());
    let e = v["errors"].as_array().unwrap_or_else(|| panic!());
    let te = e.iter().find(|x| x["code"] == "TOKEN_EXPIRED").unwrap_or_else(|| panic!());
    assert_eq!(te["count"], 1);
    assert_eq!(te["commands"][0]["command"], "PROVISION");
    assert_eq!(te["reasons"][0]["reason"], "token expired");
    assert_eq!(te["sessions"][0], 1);
    let f = &v["findings"][0];
    assert!(f["severity"].is_string() && f["kind"].is_string() && f["count"].is_u64());
    assert!(f["where"][0]["conn"].is_u64() && f["where"][0]["frame"].is_u64());
    // 64-bit protocol ids are strings.
    let q = v["queues"].as_array().unwrap_or_else(|| panic!());
    assert!(q.iter().all(|x| x["last_next_key"].is_string()));
    assert_eq!(v["overview"]["capture_start"], "2017-10-26T12:29:00.000000Z");
    assert_eq!(v["sessions"][0]["start"]["rel_s"], 0.0);
    // Secrets never reach the report.
    assert!(!String::from_utf8_lossy(&buf).contains("secret-token"));
}

fn text(r: &Report, opts: &ReportOptions) -> String {
    let mut buf = Vec::new();
    r.write_text(&mut buf, opts).unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8(buf).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn text_sections_top_and_width() {
    let r = scenario(&ReportOptions::default()).a.report();
    let all = text(&r, &ReportOptions::default());
    for h in [
        "Overview",
        "Sessions (3 with server 192.0.2.7:6717; * picked up mid-stream)",
        "Queues (3)",
        "Latency",
        "Errors (4)",
        "Messages",
        "Findings (17)",
    ] {
        assert!(all.contains(h), "{h}");
    }
    assert!(!all.contains('\x1b'));
    assert!(!all.contains("secret-token"));
    for w in [80u16, 100, 160] {
        let o = ReportOptions { width: Some(w), ..Default::default() };
        for line in text(&r, &o).lines() {
            assert!(line.chars().count() <= w as usize, "width {w}: {line}");
        }
    }
    // Too wide for 80 columns: the queue table is cut into groups that repeat the key column.
    let o = ReportOptions {
        width: Some(80),
        sections: Some(vec![Section::Queues]),
        ..Default::default()
    };
    let q = text(&r, &o);
    assert!(q.matches("│ Queue ").count() >= 2, "{q}");
    assert!(q.contains("Stalls") && q.contains("│ z30 "));
    let o = ReportOptions { sections: Some(vec![Section::Latency]), ..Default::default() };
    let only = text(&r, &o);
    assert!(only.contains("Latency") && !only.contains("Sessions") && !only.contains("Overview"));
    let o = ReportOptions { top: Some(1), ..Default::default() };
    let top = text(&r, &o);
    assert!(top.contains("… 2 more"), "{top}");
    assert!(top.contains("… 16 more"));
    let o = ReportOptions { color: true, ..Default::default() };
    assert!(text(&r, &o).contains("\x1b[1;36mOverview"));
    let o = ReportOptions {
        zone: crate::time::Zone::Fixed(8 * 3600),
        width: Some(200),
        ..Default::default()
    };
    assert!(text(&r, &o).contains("2017-10-26 20:29:00.000000+08:00"));
}

#[test]
fn sample_text_output() {
    // Prints the report for `cargo test -- --nocapture sample_text_output`.
    let r = scenario(&ReportOptions::default()).a.report();
    let w = std::env::var("REPORT_WIDTH").ok().and_then(|w| w.parse().ok());
    let o = ReportOptions { width: w, ..Default::default() };
    let t = text(&r, &o);
    println!("{t}");
    assert!(t.contains("TOKEN_EXPIRED") && t.contains("│ z13 ") && t.contains("android_abc"));
}

#[test]
fn merge_of_shards_equals_whole() {
    for opts in
        [ReportOptions::default(), ReportOptions { user: Some("z13".into()), ..Default::default() }]
    {
        let whole = scenario(&opts).a.report();
        // The same scenario, as two shards that each see only their connections.
        let mut a = play(Sim::only(&opts, &[0, 1]));
        let mut b = play(Sim::only(&opts, &[2]));
        a.finish(100_000.0);
        b.finish(100_000.0);
        a.a.merge(b.a);
        let merged = a.a.report();
        assert_eq!(merged.sessions, whole.sessions);
        assert_eq!(merged.latency, whole.latency);
        assert_eq!(merged.errors, whole.errors);
        assert_eq!(merged.findings, whole.findings);
        assert_eq!(merged.messages, whole.messages);
        assert_eq!(merged.queues, whole.queues);
        assert_eq!(merged.app_keys, whole.app_keys);
    }
}

#[test]
fn pending_requests_are_bounded() {
    let mut s = Sim::new(&ReportOptions::default());
    s.open(0, 0.0, false);
    for i in 0..(PENDING_CAP as u64 + 5) {
        s.up(0, 1.0, m::send(i, "z"));
    }
    s.finish(2.0);
    let r = s.a.report();
    assert_eq!(fcount(&r, "pending_overflow"), 5);
    assert_eq!(fcount(&r, "unanswered_request"), PENDING_CAP as u64);
    assert_eq!(lat(&r, "send").unanswered, PENDING_CAP as u64 + 5);
    assert!(s.a.conns.get(&0).is_some_and(|c| c.sends_pending.is_empty()));
}

#[test]
fn distinct_error_codes_are_bounded() {
    // One session answered with a new status each time, and 200 sessions with 16 codes of
    // their own each: the rows stop at the caps, the rest counted under one row, none lost.
    let mut s = Sim::new(&ReportOptions::default());
    s.open(0, 0.0, false);
    let n = ERROR_CODES_CAP as i32 + 100;
    for i in 0..n {
        s.down(0, 1.0, m::ack(u64::from(i as u32), 1000 + i, None));
    }
    assert!(s.a.conns.get(&0).is_some_and(|c| c.errors.len() == ERROR_CODES_CAP + 1));
    let sessions = 200u32;
    for conn in 1..=sessions {
        s.open(conn, 2.0, false);
        for k in 0..ERROR_CODES_CAP as i32 {
            s.down(conn, 3.0, m::ack(1, 100_000 + conn as i32 * 100 + k, None));
        }
    }
    s.finish(10.0);
    let r = s.a.report();
    assert_eq!(r.errors.len(), ERROR_ROWS_CAP + 1);
    let total: u64 = r.errors.iter().map(|e| e.count).sum();
    let per = ERROR_CODES_CAP as u64;
    assert_eq!(total, n as u64 + u64::from(sessions) * per);
    let other = r.errors.iter().find(|e| e.code == OTHER_CODES).map_or(0, |e| e.count);
    assert_eq!(other, total - ERROR_ROWS_CAP as u64);
    assert_eq!(fcount(&r, "table_overflow"), 100);
}

#[test]
fn redirect_and_unknown_codes() {
    let mut s = Sim::new(&ReportOptions::default());
    s.open(0, 0.0, false);
    s.up(0, 1.0, m::provision_req("u", "r"));
    let mut d = m::provision_resp(5, None);
    if let Body::Provision(p) = &mut d.body {
        if let Some(st) = p.status.as_mut() {
            st.redirect_info
                .push(pb::RedirectInfo { host: Some("im2.example".into()), port: Some(443) });
        }
    }
    s.down(0, 3.0, d);
    s.up(0, 4.0, m::provision_req("u", "r"));
    s.down(0, 5.0, m::provision_resp(99, None));
    s.down(0, 6.0, m::ack(77, -3, None));
    s.finish(10.0);
    let r = s.a.report();
    let codes: Vec<(&str, u64)> = r.errors.iter().map(|e| (e.code.as_str(), e.count)).collect();
    assert!(codes.contains(&("REDIRECT", 1)));
    assert!(codes.contains(&("STATUS_99", 1)));
    assert!(codes.contains(&("STATUS_-3", 1)));
    let red = r.errors.iter().find(|e| e.code == "REDIRECT").unwrap_or_else(|| panic!());
    assert_eq!(red.reasons, vec![("→ im2.example:443".to_string(), 1)]);
    assert_eq!(r.sessions[0].login.as_ref().map(|l| l.status.as_str()), Some("STATUS_99"));
    assert_eq!(fcount(&r, "login_failed"), 2);
    assert_eq!(lat(&r, "login").answered, 2);
}

#[test]
fn error_rows_list_each_user_once_in_order() {
    // 240 sessions of 80 users (each user on three connections, opened out of name order),
    // all refused with the same code: one row, every session, each user once, sorted.
    let mut s = Sim::new(&ReportOptions::default());
    for conn in 0..240u32 {
        let user = format!("u{:03}", (conn * 37) % 80);
        let t = f64::from(conn) * 10.0;
        s.open(conn, t, false);
        s.up(conn, t + 1.0, m::provision_req(&user, "r"));
        s.down(conn, t + 2.0, m::provision_resp(6, Some("token expired")));
        s.close(conn, t + 3.0, CloseReason::Fin);
    }
    s.finish(5000.0);
    let r = s.a.report();
    assert_eq!(r.errors.len(), 1);
    let e = &r.errors[0];
    assert_eq!(e.count, 240);
    assert_eq!(e.sessions, (0..240).collect::<Vec<u32>>());
    let want: Vec<String> =
        (0..80).map(|i| format!("easemob-demo#chatdemoui_u{i:03}@easemob.com")).collect();
    assert_eq!(e.users, want);
}

#[test]
fn empty_analyzer_reports_nothing() {
    let a = Analyzer::new(&ReportOptions::default());
    let r = a.report();
    assert!(r.sessions.is_empty() && r.findings.is_empty() && r.errors.is_empty());
    assert_eq!(r.latency.len(), 6);
    let t = text(&r, &ReportOptions { width: Some(80), ..Default::default() });
    assert!(t.contains("Sessions (0)"));
    let mut buf = Vec::new();
    r.write_json(&mut buf).unwrap_or_else(|e| panic!("{e}"));
    assert!(serde_json::from_slice::<serde_json::Value>(&buf).is_ok());
}

#[test]
fn odd_streams_do_not_panic() {
    // Answers without requests, events for connections never opened, times going backwards,
    // extreme values: the report must still come out, in both renderings.
    let mut s = Sim::new(&ReportOptions { slow_ns: 0, ..Default::default() });
    s.gap(9, -5.0, u64::MAX);
    s.gap(9, -4.0, u64::MAX);
    s.gap(8, -4.0, u64::MAX);
    s.tcp(9, -3.0, TcpNote::BadSequence);
    s.frame_problem(
        9,
        -2.0,
        FrameProblem::Skipped { bytes: u64::MAX, why: crate::frame::SkipReason::Resync },
    );
    s.open(0, 10.0, true);
    s.down(0, 5.0, m::provision_resp(0, None));
    s.down(0, 6.0, m::unread_resp(&[("q", u32::MAX)]));
    s.down(0, 7.0, m::pull_resp("q", 1, u64::MAX, false));
    s.down(0, 8.0, m::pull_resp("q", 0, 0, true));
    s.down(0, 9.0, m::ack(u64::MAX, i32::MIN, Some("")));
    s.down(0, 9.5, m::logout_resp());
    s.up(0, 1.0, m::logout_req());
    s.up(0, 1.0, m::logout_req());
    s.up(0, 2.0, m::provision_req("", ""));
    s.up(0, 3.0, m::provision_req("a", "b"));
    s.up(0, 4.0, m::unread_req());
    s.down(0, 0.0, m::unread_resp(&[]));
    s.up(0, 4.0, dec(Command::Unknown(77), Body::Raw(vec![1, 2]), vec![]));
    s.up(0, 4.0, dec(Command::Sync, Body::Encrypted, vec![]));
    s.down(0, 4.0, dec(Command::Notice, Body::Notice(pb::CommNotice { queue: None }), vec![]));
    let mut weird = m::pull_resp("q", 2, 1, false);
    weird.meta_bodies = vec![MetaBody::Invalid("x".into())];
    s.down(0, 4.0, weird);
    s.close(0, 3.0, CloseReason::Evicted);
    s.close(0, 4.0, CloseReason::Idle);
    s.finish(-100.0);
    let r = s.a.report();
    assert!(r.sessions.iter().any(|x| x.conn == 0));
    assert_eq!(finding(&r, "lost_segment").and_then(|f| f.value), Some(u64::MAX));
    // The pull answer's meta whose payload is not a MessageBody is counted, not dropped.
    let body = finding(&r, "undecodable_meta_body").unwrap_or_else(|| panic!("no finding"));
    assert_eq!((body.count, body.severity), (1, Severity::Warning));
    for w in [20u16, 80, 300] {
        let t = text(&r, &ReportOptions { width: Some(w), top: Some(0), ..Default::default() });
        assert!(t.contains("Findings"));
    }
    let mut buf = Vec::new();
    r.write_json(&mut buf).unwrap_or_else(|e| panic!("{e}"));
    assert!(serde_json::from_slice::<serde_json::Value>(&buf).is_ok());
}

#[test]
fn sample_json_output() {
    // Prints the JSON for `cargo test -- --nocapture sample_json_output`.
    let r = scenario(&ReportOptions::default()).a.report();
    let mut buf = Vec::new();
    r.write_json(&mut buf).unwrap_or_else(|e| panic!("{e}"));
    println!("{}", String::from_utf8_lossy(&buf));
}

#[test]
fn state_stays_bounded_with_many_messages() {
    let mut s = Sim::new(&ReportOptions::default());
    s.open(0, 0.0, false);
    for i in 0..10_000u64 {
        let t = i as f64 * 10.0;
        s.up(0, t, m::send(i, "peer"));
        s.down(0, t + 1.0 + (i % 97) as f64 * 0.01, m::ack(i, 0, None));
        s.down(0, t + 2.0, m::notice("q"));
        s.up(0, t + 3.0, m::pull("q", i));
        s.down(0, t + 4.0, m::pull_resp("q", 1, i + 1, true));
    }
    let c = s.a.conns.get(&0).unwrap_or_else(|| panic!());
    assert!(c.recent_ids.len() <= RECENT_IDS_CAP);
    assert!(c.sends_pending.is_empty());
    // Every drain ended: no queue state is held for the connection.
    assert!(c.live.is_empty());
    assert_eq!(s.a.tables.queues.len(), 1);
    // "peer", and "q" → "me" in the pull answers.
    assert_eq!(s.a.tables.peers.len(), 3);
    let hists = s.a.tables.latency.get(&ALL).unwrap_or_else(|| panic!());
    assert!(hists[Exchange::Send.index()].bucket_count() < 200);
    s.finish(200_000.0);
    let r = s.a.report();
    assert_eq!(lat(&r, "send").answered, 10_000);
    assert_eq!(r.queues[0].drains, 10_000);
    assert_eq!(fcount(&r, "duplicate_meta_id"), 0);
}

#[test]
fn a_meta_id_sent_again_before_its_ack_is_a_request_of_its_own() {
    let mut s = Sim::new(&ReportOptions::default());
    s.open(0, 0.0, false);
    // Two copies, both acked (as the web SDK's STATISTIC metas are): 10 ms and 12 ms.
    s.up(0, 10.0, m::send(7, "peer"));
    s.up(0, 10.0, m::send(7, "peer"));
    s.down(0, 20.0, m::ack(7, 0, None));
    s.down(0, 22.0, m::ack(7, 0, None));
    // Three copies, one ack: it answers the first, the two later ones stay unanswered.
    s.up(0, 30.0, m::send(8, "peer"));
    s.up(0, 31.0, m::send(8, "peer"));
    s.up(0, 32.0, m::send(8, "peer"));
    s.down(0, 40.0, m::ack(8, 0, None));
    s.close(0, 50.0, CloseReason::Fin);
    s.finish(60.0);
    let r = s.a.report();
    let send = lat(&r, "send");
    assert_eq!((send.count, send.answered, send.unanswered), (5, 3, 2));
    approx(send.min_ns, 10.0);
    approx(send.max_ns, 12.0);
    assert_eq!(fcount(&r, "ack_unknown_meta_id"), 0);
    assert_eq!(fcount(&r, "duplicate_meta_id"), 3);
    let un = finding(&r, "unanswered_request").unwrap_or_else(|| panic!());
    assert_eq!(un.count, 2);
    assert_eq!(un.places.iter().map(|w| w.ts).collect::<Vec<_>>(), vec![ts(31.0), ts(32.0)]);
}

#[test]
fn an_idle_session_ends_with_its_last_packet() {
    let mut s = Sim::new(&ReportOptions::default());
    s.open(0, 0.0, false);
    s.up(0, 10.0, m::provision_req("z13", "android_abc"));
    s.down(0, 20.0, m::provision_resp(0, None));
    // Found idle an hour later, by another connection's packet; or evicted likewise.
    s.close_after(0, 20.0, 3_600_000.0, CloseReason::Idle);
    s.open(1, 0.0, false);
    s.up(1, 30.0, m::provision_req("z14", "android_abd"));
    s.close_after(1, 30.0, 3_600_000.0, CloseReason::Evicted);
    s.finish(3_600_000.0);
    let r = s.a.report();
    let end = |i: usize| r.sessions.get(i).map(|x| (x.end, x.duration_ns, x.close.clone()));
    assert_eq!(end(0), Some((ts(20.0), 20 * MS, "idle".to_string())));
    assert_eq!(end(1), Some((ts(30.0), 30 * MS, "evicted".to_string())));
}

/// An UNREAD the server refused is an error of the session, not a heartbeat: a client whose
/// every check is refused (an expired token, a throttled app) must not look alive.
#[test]
fn a_refused_unread_is_no_heartbeat() {
    let mut s = Sim::new(&ReportOptions::default());
    s.open(0, 0.0, false);
    s.up(0, 10.0, m::provision_req("z13", "android_abc"));
    s.down(0, 20.0, m::provision_resp(0, None));
    for (t, code) in [(30_000.0, 0), (60_000.0, 6), (90_000.0, 0)] {
        s.up(0, t, m::unread_req());
        let mut resp = m::unread_resp(&[]);
        if let Body::UnreadDl(u) = &mut resp.body {
            u.status = status(code, (code != 0).then_some("token expired"));
        }
        s.down(0, t + 10.0, resp);
    }
    s.close(0, 95_000.0, CloseReason::Fin);
    s.finish(95_000.0);
    let r = s.a.report();
    let hb = &r.sessions[0].heartbeats;
    assert_eq!((hb.count, hb.interval_ns), (2, Some(60_000 * MS)));
    assert_eq!(lat(&r, "unread").answered, 3);
    let e = r.errors.iter().find(|e| e.code == "TOKEN_EXPIRED");
    assert_eq!(e.map(|e| (e.count, e.commands.clone())), Some((1, vec![("UNREAD".into(), 1)])));
}

#[test]
fn tables_count_jids_over_the_cap_together() {
    let mut t = Tables::default();
    let mut c = ConnState::new(None);
    let names: Vec<String> = (0..TABLE_CAP + 2).map(|n| format!("u{n}")).collect();
    let jid =
        |n: usize| view::Jid { name: names.get(n).map(String::as_bytes), ..Default::default() };
    for n in 0..TABLE_CAP + 2 {
        peer_acc(&mut t, &mut c, 0, &jid(n)).sent += 1;
    }
    // Known JIDs keep their entries.
    peer_acc(&mut t, &mut c, 0, &jid(7)).sent += 1;
    assert_eq!(t.peers.len(), TABLE_CAP + 1);
    assert_eq!(c.table_overflow, 2);
    let over = t.peers.get(&(ALL, OVERFLOW)).unwrap_or_else(|| panic!());
    assert!(over.name.contains("over the cap") && over.sent == 2);
    assert_eq!(t.peers.get(&(ALL, jid_hash(&jid(7), false))).map(|p| p.sent), Some(2));
}

/// A queue that many sessions share (a group's) and many queues per session (one per chat
/// peer, as the SDK's) keep one table entry each; a connection holds state only for the queues
/// it is draining.
#[test]
fn queue_state_is_per_queue_not_per_message() {
    let mut s = Sim::new(&ReportOptions::default());
    for conn in 0..3 {
        s.open(conn, 0.0, false);
    }
    let mut t = 1.0;
    for round in 0..200 {
        for conn in 0..3 {
            let q = if round % 2 == 0 { "group".to_string() } else { format!("peer{round}") };
            s.down(conn, t, m::notice(&q));
            s.up(conn, t + 1.0, m::pull(&q, 0));
            s.down(conn, t + 2.0, m::pull_resp(&q, 1, 1, true));
            t += 3.0;
        }
        for conn in 0..3 {
            assert!(s.a.conns.get(&conn).is_some_and(|c| c.live.is_empty()));
        }
    }
    // One group, one queue per odd round.
    assert_eq!(s.a.tables.queues.len(), 101);
    s.finish(t);
    let r = s.a.report();
    let g = r.queues.iter().find(|q| q.queue.contains("group")).unwrap_or_else(|| panic!());
    assert_eq!((g.notices, g.pulls, g.drains, g.sessions.clone()), (300, 300, 300, vec![0, 1, 2]));
    assert_eq!(fcount(&r, "drain_stall") + fcount(&r, "unanswered_request"), 0);
}

#[test]
fn capture_drops_are_an_error_finding() {
    let mut a = Analyzer::new(&ReportOptions::default());
    a.set_capture_drops(17);
    let r = a.report();
    let f = r.findings.iter().find(|f| f.kind == "capture_drops");
    assert_eq!(f.map(|f| (f.count, f.severity)), Some((17, Severity::Error)));
    assert_eq!(r.overview.worst.first().map(|w| w.kind), Some("capture_drops"));
    let mut b = Analyzer::new(&ReportOptions::default());
    b.set_capture_drops(3);
    a.merge(b);
    assert_eq!(
        a.report().findings.iter().find(|f| f.kind == "capture_drops").map(|f| f.count),
        Some(20)
    );
}

/// The streamed JSON document is the one the whole `Value` gives.
#[test]
fn streamed_json_is_the_value_document() {
    for opts in [ReportOptions::default(), ReportOptions { top: Some(1), ..Default::default() }] {
        let r = scenario(&opts).a.report();
        let mut streamed = Vec::new();
        r.write_json(&mut streamed).unwrap_or_else(|e| panic!("{e}"));
        let whole = serde_json::to_string_pretty(&crate::report::json::to_value(&r))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(String::from_utf8_lossy(&streamed), format!("{whole}\n"));
    }
}

/// Live mode folds finished sessions past the number kept: their rows go, every total stays.
#[test]
fn folded_sessions_keep_every_total() {
    fn run(fold: Option<usize>) -> (Report, usize) {
        let mut s = Sim::new(&ReportOptions::default());
        if let Some(k) = fold {
            s.a.fold_finished_sessions(k);
        }
        let mut t = 0.0;
        for conn in 0..40u32 {
            s.open(conn, t, conn % 7 == 3);
            let user = format!("u{}", conn % 13);
            if conn % 7 != 3 {
                s.up(conn, t + 1.0, m::provision_req(&user, "r"));
                let code = if conn % 5 == 0 { 200 } else { 0 };
                s.down(conn, t + 5.0 + f64::from(conn), m::provision_resp(code, Some("x")));
            }
            s.up(conn, t + 50.0, m::send(u64::from(conn), "peer"));
            if conn % 3 != 0 {
                s.down(conn, t + 60.0, m::ack(u64::from(conn), 0, None));
            }
            s.down(conn, t + 70.0, m::notice("q"));
            s.up(conn, t + 71.0, m::pull("q", 0));
            s.down(conn, t + 80.0, m::pull_resp("q", 2, 1, true));
            s.gap(conn, t + 81.0, 10);
            let reason = if conn % 4 == 0 { CloseReason::Rst } else { CloseReason::Fin };
            s.close(conn, t + 90.0, reason);
            t += 100.0;
        }
        s.finish(t);
        let kept = s.a.conns.len();
        (s.a.report(), kept)
    }
    let (whole, all) = run(None);
    let (folded, kept) = run(Some(5));
    assert_eq!(all, 40);
    assert_eq!(kept, 5);
    assert_eq!(folded.sessions.len(), 5);
    assert_eq!(folded.overview.sessions_folded, 35);
    assert_eq!(folded.sessions, whole.sessions[35..].to_vec());
    assert_eq!(folded.latency, whole.latency);
    assert_eq!(folded.queues, whole.queues);
    assert_eq!(folded.messages, whole.messages);
    assert_eq!(folded.overview.users, whole.overview.users);
    assert_eq!(folded.overview.messages, whole.overview.messages);
    assert_eq!(folded.overview.per_command, whole.overview.per_command);
    assert_eq!(folded.overview.gap_bytes, whole.overview.gap_bytes);
    let strip = |r: &Report| {
        r.errors.iter().map(|e| (e.code.clone(), e.count, e.commands.clone())).collect::<Vec<_>>()
    };
    assert_eq!(strip(&folded), strip(&whole));
    let counts = |r: &Report| r.findings.iter().map(|f| (f.kind, f.count)).collect::<Vec<_>>();
    assert_eq!(counts(&folded), counts(&whole));
    assert!(finding(&folded, "no_provision").is_some());
}

/// A queue used by more sessions than a row lists keeps the lowest numbers, whatever the
/// order of use, so shards keep the same ones.
#[test]
fn queue_sessions_past_the_cap_are_the_lowest() {
    let mut q = QueueAcc::default();
    for c in (0..200u32).rev() {
        q.used_by(c);
    }
    let mut s = q.sessions.clone();
    s.sort_unstable();
    assert_eq!(s, (0..QUEUE_SESSIONS_CAP as u32).collect::<Vec<_>>());
    let (mut a, mut b) = (QueueAcc::default(), QueueAcc::default());
    for c in 0..200u32 {
        if c % 3 == 0 {
            a.used_by(c)
        } else {
            b.used_by(c)
        }
    }
    a.merge(&b);
    let mut m = a.sessions.clone();
    m.sort_unstable();
    assert_eq!(m, s);
}

proptest::proptest! {
    /// `used_by` keeps what a plain scan of `sessions` on every call keeps: the shortcut for
    /// a repeat of the last connection changes nothing, below the cap or past it, and merges
    /// go through it too.
    #[test]
    fn used_by_shortcut_keeps_what_a_full_scan_keeps(
        calls in proptest::collection::vec(0u32..(QUEUE_SESSIONS_CAP as u32 * 2), 0..400),
        split in 0usize..400,
    ) {
        fn model(kept: &mut Vec<u32>, conn: u32) {
            if kept.contains(&conn) {
                return;
            }
            if kept.len() < QUEUE_SESSIONS_CAP {
                kept.push(conn);
            } else if let Some(max) = kept.iter_mut().max() {
                if conn < *max {
                    *max = conn;
                }
            }
        }
        let mut want = Vec::new();
        let mut q = QueueAcc::default();
        for &c in &calls {
            model(&mut want, c);
            q.used_by(c);
            proptest::prop_assert_eq!(&q.sessions, &want);
        }
        let (left, right) = calls.split_at(split.min(calls.len()));
        let (mut a, mut b) = (QueueAcc::default(), QueueAcc::default());
        let (mut wa, mut wb) = (Vec::new(), Vec::new());
        for &c in left {
            a.used_by(c);
            model(&mut wa, c);
        }
        for &c in right {
            b.used_by(c);
            model(&mut wb, c);
        }
        a.merge(&b);
        for &c in &wb {
            model(&mut wa, c);
        }
        proptest::prop_assert_eq!(a.sessions, wa);
    }
}

#[test]
fn opened_connections_round_trip() {
    let mut o = Opened::default();
    let want = [(1u64, 0u32), (2, 1), (2, 2), (900_000_000_000, 3), (900_000_000_001, 70_000)];
    for &(f, i) in &want {
        o.push(f, i);
    }
    assert_eq!(o.iter().collect::<Vec<_>>(), want);
    assert!(o.bytes.len() < 20);
}

#[test]
fn both_jid_hashes_at_once_are_the_two_hashes() {
    let parts: [Option<&[u8]>; 4] =
        [None, Some(b""), Some(b"user0001"), Some(b"easemob-demo#chatdemoui")];
    for (a, n, d, r) in (0..64).map(|i| (i & 3, i >> 2 & 3, i >> 4 & 3, (i + 1) & 3)) {
        let j = view::Jid {
            app_key: parts[a],
            name: parts[n],
            domain: parts[d],
            client_resource: parts[r],
        };
        assert_eq!(jid_hashes(&j), (jid_hash(&j, true), jid_hash(&j, false)));
    }
    // The resource counts in the first only.
    let j = |r: Option<&'static [u8]>| view::Jid {
        name: Some(b"u"),
        client_resource: r,
        ..Default::default()
    };
    assert_ne!(jid_hash(&j(Some(b"r")), true), jid_hash(&j(Some(b"r")), false));
    assert_eq!(jid_hash(&j(Some(b"r")), false), jid_hash(&j(None), false));
}

#[test]
fn a_forgotten_queue_leaves_its_pull_buffer_to_the_next_unless_a_burst_grew_it() {
    let mut c = ConnState::new(None);
    let at = Where { conn: 0, frame: 1, ts: Timestamp(0) };
    let with_pending = |c: &mut ConnState, h: u64, n: u64| {
        let Some(q) = c.live(h, h, at) else { panic!("no room for a queue") };
        q.pulls_pending.extend((0..n).map(|i| (Timestamp(0), i)));
        q.pulls_pending.clear();
        c.prune(h);
    };
    with_pending(&mut c, 1, 3);
    assert!(!c.live.contains_key(&1), "an idle queue is forgotten");
    let kept = c.spare_pulls.capacity();
    assert!(kept >= 3);
    let Some(q) = c.live(2, 2, at) else { panic!("no room for a queue") };
    assert_eq!(q.pulls_pending.capacity(), kept, "the next queue takes the buffer");
    assert_eq!(c.spare_pulls.capacity(), 0);
    c.prune(2);
    with_pending(&mut c, 3, SPARE_CAP as u64 + 1);
    assert_eq!(c.spare_pulls.capacity(), 0, "a burst's buffer is freed, not kept");
}

/// An upgrade refused, then retried on the same connection and accepted: the session did not
/// end refused, though the refusal stays a finding. Refused alone, it did.
#[test]
fn an_upgrade_accepted_after_a_refusal_is_how_the_session_went_on() {
    let refused = || TransportNote::WsRejected { status: 401, reason: "Unauthorized".into() };
    let upgrade = || TransportNote::WsUpgrade {
        path: Some("/ws".into()),
        host: None,
        origin: None,
        protocol: None,
        extensions: None,
    };
    let mut s = Sim::new(&ReportOptions::default());
    s.open(0, 0.0, false);
    s.transport(0, 1.0, Dir::S2C, refused());
    s.transport(0, 2.0, Dir::S2C, upgrade());
    s.up(0, 2.5, m::unread_req());
    s.open(1, 3.0, false);
    s.transport(1, 4.0, Dir::S2C, refused());
    s.up(1, 4.5, m::unread_req());
    s.close(0, 5.0, CloseReason::Fin);
    s.close(1, 6.0, CloseReason::Fin);
    s.finish(10.0);
    let r = s.a.report();
    let end = |i: usize| r.sessions.get(i).map(|x| x.ws_end.clone());
    assert_eq!(end(0), Some(None));
    assert!(matches!(end(1), Some(Some(WsEnd::Refused { status: 401, .. }))));
    assert_eq!(fcount(&r, "websocket_rejected"), 2);
}

#[test]
fn a_notice_during_an_open_drain_starts_the_drain_that_answers_it() {
    let mut s = Sim::new(&ReportOptions::default());
    s.open(0, 0.0, false);
    // A pull of z40 is outstanding when a NOTICE of z40 comes; the answer ends that drain,
    // and the client's next pull (the NOTICE's reaction, 40 ms after it) starts another.
    s.up(0, 1000.0, m::pull("z40", 0));
    s.down(0, 1010.0, m::notice("z40"));
    s.down(0, 1030.0, m::pull_resp("z40", 1, 40, true));
    s.up(0, 1050.0, m::pull("z40", 40));
    s.down(0, 1070.0, m::pull_resp("z40", 0, 41, true));
    s.close(0, 2000.0, CloseReason::Fin);
    s.finish(2000.0);
    let r = s.a.report();
    let q = r.queues.first().unwrap_or_else(|| panic!("z40"));
    assert_eq!((q.notices, q.pulls, q.drains, q.drain_pages, q.stalls), (1, 2, 2, 2, 0));
    assert_eq!(q.notice_to_pull.max_ns, Some(40 * MS));
    // NOTICE (1010) → is_last (1070): 60 ms, not the 20 ms from the pull that reacted to it.
    assert_eq!(q.drain_time.count, 2);
    assert_eq!(q.drain_time.max_ns, Some(60 * MS));
    approx(q.drain_time.p50_ns, 30.0);
}

/// Messages that grew on the way (LZ4, permessage-deflate) are taken in while a connection's
/// messages stay within 16 KiB plus 64 times their wire bytes; past that they are refused, as
/// decode errors over the inflate cap, until its wire bytes pay for more. A zlib payload is
/// charged the same way (`tests/hostile.rs`).
#[test]
fn messages_grown_past_their_wire_bytes_are_bounded() {
    let run = |len: usize| {
        let mut s = Sim::new(&ReportOptions::default());
        s.open(0, 0.0, false);
        let raw = encode(&m::provision_req("u", &"r".repeat(len)));
        for i in 0..50 {
            s.raw(0, f64::from(i), Dir::C2S, &raw, 1000);
        }
        s.finish(100.0);
        let r = s.a.report();
        // Refused messages count among the messages, and as decode errors.
        assert_eq!(r.overview.messages, 50);
        (raw.len() as u64, 50 - r.overview.decode_errors, r.overview.decode_errors)
    };
    // About 40 times its wire bytes: every message taken in.
    // (The resource is written twice: in the JID and in PROVISION.)
    let (len, taken, refused) = run(20_000);
    assert!((40_000..41_000).contains(&len), "{len}");
    assert_eq!((taken, refused), (50, 0));
    // About 100 times: the allowance after k messages is 16 KiB + 64 000 k; a message is taken
    // in when what was taken in before it leaves room for it.
    let (len, taken, refused) = run(50_000);
    assert!((100_000..101_000).contains(&len), "{len}");
    let (mut made, mut want) = (0u64, 0u64);
    for k in 1..=50u64 {
        if (16 << 10) + 64_000 * k - made >= len {
            made += len;
            want += 1;
        }
    }
    assert_eq!((taken, refused), (want, 50 - want));
    assert!((31..=33).contains(&want), "{want}");
    // A connection's allowance is its own: the messages of another are not refused for it.
    let mut s = Sim::new(&ReportOptions::default());
    s.open(0, 0.0, false);
    s.open(1, 0.0, false);
    let big = encode(&m::provision_req("u", &"r".repeat(50_000)));
    let small = encode(&m::provision_req("u", "r"));
    for i in 0..20 {
        s.raw(0, f64::from(i), Dir::C2S, &big, 10);
        s.raw(1, f64::from(i), Dir::C2S, &small, 10);
    }
    s.finish(100.0);
    let r = s.a.report();
    assert_eq!(r.overview.decode_errors, 20);
    let errors = |conn: u32| r.sessions.iter().find(|x| x.conn == conn).map(|x| x.decode_errors);
    assert_eq!((errors(0), errors(1)), (Some(20), Some(0)));
    // The messages of a SockJS frame after its first take no wire bytes of their own (the
    // first took the frame's): they did not grow, whatever their number.
    let mut s = Sim::new(&ReportOptions::default());
    s.open(0, 0.0, false);
    for i in 0..100 {
        s.raw(0, f64::from(i), Dir::C2S, &big, 0);
    }
    s.finish(200.0);
    assert_eq!(s.a.report().overview.decode_errors, 0);
}

#[test]
fn partial_jids_go_to_the_one_complete_jid_of_their_name() {
    assert_eq!(
        split_bare("easemob-demo#chat_demo_user_1@easemob.com"),
        (Some("easemob-demo#chat"), "demo_user_1", Some("easemob.com"))
    );
    assert_eq!(split_bare("u_1"), (None, "u_1", None));
    assert_eq!(
        split_bare("123@conference.easemob.com"),
        (None, "123", Some("conference.easemob.com"))
    );
    let full = |n: &str| format!("app#key_{n}@easemob.com");
    let mut senders: HashMap<String, u64> =
        [(full("a"), 5), ("a".into(), 2), (full("b"), 1), ("c".into(), 4)].into_iter().collect();
    // `d` has two complete JIDs (another app key): which one it is cannot be told.
    let mut receivers: HashMap<String, u64> = [
        (full("d"), 1),
        ("other#app_d@easemob.com".into(), 1),
        ("d".into(), 3),
        ("app#key_b".into(), 2),
        ("b@elsewhere.com".into(), 7),
        ("9@conference.easemob.com".into(), 1),
        ("app#key_9@conference.easemob.com".into(), 2),
    ]
    .into_iter()
    .collect();
    let mut users = vec!["a".to_string(), full("a"), "c".into()];
    complete_partial_jids(&mut senders, &mut receivers, &mut users);
    let sorted = |m: &HashMap<String, u64>| {
        let mut v: Vec<(String, u64)> = m.iter().map(|(k, v)| (k.clone(), *v)).collect();
        v.sort();
        v
    };
    // `c` has no complete JID anywhere: left as it is.
    assert_eq!(sorted(&senders), vec![(full("a"), 7), (full("b"), 1), ("c".into(), 4)]);
    assert_eq!(
        sorted(&receivers),
        vec![
            // A group the client names without the app key that the server writes.
            ("app#key_9@conference.easemob.com".to_string(), 3),
            (full("b"), 2),
            (full("d"), 1),
            ("b@elsewhere.com".into(), 7),
            ("d".into(), 3),
            ("other#app_d@easemob.com".into(), 1),
        ]
    );
    assert_eq!(users, vec![full("a"), "c".to_string()]);
}
