//! `msyncdump report` driven end to end: captures are synthesized with the library (which
//! returns the ground truth of what it injected), written to a temporary directory, and the
//! binary's `--json` output is checked against that truth number by number. A snapshot of the
//! full text report of `captures/seed.pcap` guards the layout (`UPDATE_EXPECTED=1` rewrites it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use msyncdump::msync::pb;
use msyncdump::msync::pb::status::ErrorCode;
use msyncdump::synth::{
    self, GroundTruth, LoginTruth, Lz4Direction, Lz4Mode, RequestKind, RequestTruth, SynthConfig,
    SynthTransport, WsDeflate,
};
use prost::Message;
use serde_json::Value;

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_msyncdump");

/// A directory of its own per test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let d =
            std::env::temp_dir().join(format!("msyncdump-report-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn synthesize(dir: &TempDir, name: &str, cfg: &SynthConfig) -> (PathBuf, GroundTruth) {
    let path = dir.path(name);
    let file = std::io::BufWriter::new(fs::File::create(&path).unwrap());
    let truth = synth::generate(cfg, file).unwrap();
    (path, truth)
}

fn run(args: &[&str]) -> Vec<u8> {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "msyncdump {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn report_json(path: &Path, extra: &[&str]) -> Value {
    let p = path.to_str().unwrap();
    let mut args = vec!["report", "--json", p];
    args.extend_from_slice(extra);
    serde_json::from_slice(&run(&args)).unwrap()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

fn ms_of(ns: i64) -> f64 {
    ns as f64 / 1e6
}

/// Durations in the document are rounded to the microsecond; min and max are exact.
fn assert_ms(got: &Value, want_ns: i64, what: &str) {
    let g = got.as_f64().unwrap_or_else(|| panic!("{what}: no number: {got}"));
    let w = ms_of(want_ns);
    assert!((g - w).abs() <= 0.0011, "{what}: got {g} ms, want {w} ms");
}

fn kind_name(k: RequestKind) -> &'static str {
    match k {
        RequestKind::Provision => "login",
        RequestKind::Unread | RequestKind::Heartbeat => "unread",
        RequestKind::Send => "send",
        RequestKind::Pull => "pull",
        RequestKind::Logout => "logout",
    }
}

fn code_name(code: i32) -> String {
    ErrorCode::try_from(code).map_or_else(|_| format!("STATUS_{code}"), |c| c.as_str_name().into())
}

/// What the capture shows of a request: seen at all, answered in it, and the latency it
/// shows (time between the moments request and answer became complete in the capture).
fn visible(t: &GroundTruth, r: &RequestTruth) -> Option<Option<i64>> {
    let req = t.messages.get(r.request)?;
    let req_ts = req.complete_ts.filter(|_| !req.lost)?;
    let answer = r
        .response
        .and_then(|i| t.messages.get(i))
        .filter(|m| !m.lost)
        .and_then(|m| m.complete_ts)
        .map(|ts| ts.since(req_ts));
    Some(answer)
}

fn latency_row<'a>(doc: &'a Value, kind: &str) -> &'a Value {
    doc["latency"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == kind)
        .unwrap_or_else(|| panic!("no latency row {kind}"))
}

fn finding_count(doc: &Value, kind: &str) -> u64 {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == kind)
        .map_or(0, |f| u(&f["count"]))
}

/// Latency rows against the truth's requests: counts exactly, min and max to the microsecond.
fn check_latency(doc: &Value, t: &GroundTruth) {
    let mut want: BTreeMap<&str, (u64, u64, Vec<i64>)> = BTreeMap::new();
    for r in &t.requests {
        let Some(answer) = visible(t, r) else { continue };
        let e = want.entry(kind_name(r.kind)).or_default();
        e.0 += 1;
        if let Some(l) = answer {
            e.1 += 1;
            e.2.push(l);
        }
    }
    for (kind, (count, answered, lats)) in &want {
        let row = latency_row(doc, kind);
        assert_eq!(u(&row["count"]), *count, "{kind} count");
        assert_eq!(u(&row["answered"]), *answered, "{kind} answered");
        assert_eq!(u(&row["unanswered"]), count - answered, "{kind} unanswered");
        if let (Some(min), Some(max)) = (lats.iter().min(), lats.iter().max()) {
            assert_ms(&row["min_ms"], *min, &format!("{kind} min"));
            assert_ms(&row["max_ms"], *max, &format!("{kind} max"));
            // Percentiles come from a histogram: within 1 % of a sample of the right rank.
            let mut sorted = lats.clone();
            sorted.sort_unstable();
            let p50 = row["p50_ms"].as_f64().unwrap();
            let lo = ms_of(sorted[(sorted.len() - 1) / 2]) * 0.98;
            let hi = ms_of(sorted[sorted.len() / 2]) * 1.02;
            assert!((lo..=hi).contains(&p50), "{kind} p50 {p50} not in {lo}..{hi}");
        }
    }
    for kind in ["login", "unread", "send", "pull", "logout"] {
        if !want.contains_key(kind) {
            assert_eq!(u(&latency_row(doc, kind)["count"]), 0, "{kind}: none injected");
        }
    }
}

/// Heartbeats per connection: UNREAD exchanges answered without an error and with no queue
/// announced (the login's UNREAD included when it found nothing), with their latencies.
fn heartbeats(t: &GroundTruth) -> BTreeMap<u32, Vec<i64>> {
    let mut out: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    for r in &t.requests {
        if !matches!(r.kind, RequestKind::Unread | RequestKind::Heartbeat) {
            continue;
        }
        let Some(Some(latency)) = visible(t, r) else { continue };
        let Some(answer) = r.response.and_then(|i| t.messages.get(i)) else { continue };
        let env = pb::MSync::decode(answer.bytes.as_slice()).unwrap();
        let dl = pb::CommUnreadDl::decode(env.payload.unwrap_or_default().as_slice()).unwrap();
        let refused = dl.status.and_then(|s| s.error_code).is_some_and(|c| c != 0);
        if dl.unread.is_empty() && !refused {
            out.entry(r.conn).or_default().push(latency);
        }
    }
    out
}

fn check_sessions(doc: &Value, t: &GroundTruth) {
    let beats = heartbeats(t);
    let sessions = doc["sessions"].as_array().unwrap();
    // Every connection carries MSync, except a mid-stream one whose captured part holds no
    // message at all.
    let with_msgs: Vec<usize> = (0..t.connections.len())
        .filter(|&i| {
            let c = &t.connections[i];
            c.messages[0] + c.messages[1] > c.lost_messages[0] + c.lost_messages[1]
        })
        .collect();
    assert_eq!(sessions.len(), with_msgs.len(), "sessions");
    assert_eq!(u(&doc["overview"]["sessions"]), with_msgs.len() as u64);
    assert_eq!(u(&doc["overview"]["tcp_connections"]), t.connections.len() as u64);
    assert_eq!(u(&doc["overview"]["packets"]), t.packets);
    for (s, &i) in sessions.iter().zip(&with_msgs) {
        let c = &t.connections[i];
        assert_eq!(u(&s["conn"]), i as u64);
        assert_eq!(s["client"], c.client.to_string(), "conn {i} client");
        assert_eq!(s["server"], c.server.to_string(), "conn {i} server");
        assert_eq!(s["midstream"], c.midstream, "conn {i} midstream");
        let login = &s["login"];
        match c.login {
            LoginTruth::NotCaptured => {
                assert!(login.is_null(), "conn {i}: login before the capture: {login}");
                // The user, if the client sent anything, is inferred from its sends.
                if let Some(user) = s["user"].as_str() {
                    assert_eq!(s["user_inferred"], true);
                    let name = c.user.split('@').next().unwrap().rsplit('_').next().unwrap();
                    assert!(user.starts_with(name), "conn {i}: {user} is not {name}");
                }
            }
            LoginTruth::Unanswered => {
                assert_eq!(login["status"], "UNANSWERED", "conn {i}");
                assert!(login["latency_ms"].is_null());
                assert_eq!(s["user"], c.user.as_str());
            }
            LoginTruth::Answered { code, latency_ns } => {
                assert_eq!(login["status"], code_name(code).as_str(), "conn {i}");
                assert_ms(&login["latency_ms"], latency_ns, &format!("conn {i} login"));
                assert_eq!(s["user"], c.user.as_str());
                assert_eq!(s["user_inferred"], false);
            }
        }
        let hb = &s["heartbeats"];
        let want = beats.get(&(i as u32)).cloned().unwrap_or_default();
        assert_eq!(u(&hb["count"]), want.len() as u64, "conn {i} heartbeats");
        if let Some(max) = want.iter().max() {
            assert_ms(&hb["rtt_max_ms"], *max, &format!("conn {i} heartbeat rtt"));
        }
        assert_eq!(u(&s["msgs_up"]), c.messages[0] - c.lost_messages[0], "conn {i} up");
        assert_eq!(u(&s["msgs_down"]), c.messages[1] - c.lost_messages[1], "conn {i} down");
    }
    let midstream = t.connections.iter().filter(|c| c.midstream).count() as u64;
    assert_eq!(finding_count(doc, "midstream"), midstream);
    let no_login = sessions.iter().filter(|s| s["login"].is_null()).count() as u64;
    let not_captured =
        with_msgs.iter().filter(|&&i| t.connections[i].login == LoginTruth::NotCaptured).count();
    assert_eq!(no_login, not_captured as u64);
    assert_eq!(finding_count(doc, "no_provision"), no_login);
}

/// Status codes by name against the requests answered with them.
fn check_errors(doc: &Value, t: &GroundTruth) {
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for r in t.errors() {
        if let (Some(Some(_)), Some(code)) = (visible(t, r), r.status) {
            *want.entry(code_name(code)).or_default() += 1;
        }
    }
    let mut got: BTreeMap<String, u64> = BTreeMap::new();
    for e in doc["errors"].as_array().unwrap() {
        if e["source"] == "status" {
            got.insert(e["code"].as_str().unwrap().into(), u(&e["count"]));
        }
    }
    assert_eq!(got, want, "error codes");
    let login_failed = t
        .connections
        .iter()
        .filter(|c| matches!(c.login, LoginTruth::Answered { code, .. } if code != 0))
        .count() as u64;
    assert_eq!(finding_count(doc, "login_failed"), login_failed);
}

fn check_unanswered(doc: &Value, t: &GroundTruth) {
    let want = t.requests.iter().filter(|r| matches!(visible(t, r), Some(None))).count() as u64;
    let notices = u(&latency_row(doc, "notice")["unanswered"]);
    assert_eq!(finding_count(doc, "unanswered_request"), want + notices);
}

/// Messages per command and direction, and NOTICEs over the queues, against the messages the
/// capture holds whole.
fn check_messages(doc: &Value, t: &GroundTruth) {
    let names = ["SYNC", "UNREAD", "NOTICE", "PROVISION", "LOGOUT"];
    let mut want: BTreeMap<&str, [u64; 2]> = BTreeMap::new();
    for m in t.messages.iter().filter(|m| !m.lost) {
        let name = usize::try_from(m.command).ok().and_then(|i| names.get(i)).unwrap();
        want.entry(name).or_default()[m.dir.index()] += 1;
    }
    let per = &doc["overview"]["per_command"];
    for (name, [up, down]) in &want {
        assert_eq!(u(&per[*name]["up"]), *up, "{name} up");
        assert_eq!(u(&per[*name]["down"]), *down, "{name} down");
    }
    let total: u64 = want.values().map(|[a, b]| a + b).sum();
    assert_eq!(u(&doc["overview"]["messages"]), total);
    let notices: u64 = doc["queues"].as_array().unwrap().iter().map(|q| u(&q["notices"])).sum();
    assert_eq!(notices, want.get("NOTICE").map_or(0, |[_, d]| *d), "notices over the queues");
}

/// Top senders and receivers: the metas of each user by name, one entry however its JID was
/// written (clients write `{name}`, the server the whole JID).
fn check_peers(doc: &Value, t: &GroundTruth) {
    let mut want = [BTreeMap::<String, u64>::new(), BTreeMap::new()];
    for m in t.messages.iter().filter(|m| !m.lost && m.command == 0) {
        let env = pb::MSync::decode(m.bytes.as_slice()).unwrap();
        assert_eq!(env.compress_algorimth.unwrap_or(0), 0, "uncompressed payloads");
        let payload = env.payload.unwrap_or_default();
        let metas = if m.dir.index() == 0 {
            pb::CommSyncUl::decode(payload.as_slice()).unwrap().meta.into_iter().collect()
        } else {
            pb::CommSyncDl::decode(payload.as_slice()).unwrap().metas
        };
        for meta in metas {
            for (i, j) in [meta.from, meta.to].into_iter().enumerate() {
                let name = j.and_then(|j| j.name).expect("synthesized metas name both ends");
                *want[i].entry(name).or_default() += 1;
            }
        }
    }
    for (i, key) in ["top_senders", "top_receivers"].into_iter().enumerate() {
        let mut got = BTreeMap::new();
        for e in doc["messages"][key].as_array().unwrap() {
            let jid = e["jid"].as_str().unwrap();
            let local = jid.split('@').next().unwrap();
            let name = local.rsplit('_').next().unwrap().to_string();
            assert!(got.insert(name, u(&e["count"])).is_none(), "{key}: {jid} listed twice");
        }
        assert!(want[i].len() < 50, "all of them listed");
        assert_eq!(got, want[i], "{key}");
    }
}

fn impaired() -> SynthConfig {
    SynthConfig {
        seed: 7,
        reorder: 0.02,
        clients: 16,
        duration_secs: 90.0,
        error_rate: 0.1,
        unanswered: 0.05,
        retransmit: 0.02,
        duplicate: 0.01,
        ..SynthConfig::default()
    }
}

#[test]
fn numbers_match_the_ground_truth() {
    let dir = TempDir::new("truth");
    for seed in 1..12 {
        let (path, t) = synthesize(&dir, "a.pcap", &SynthConfig { seed, ..impaired() });
        assert!(t.errors().count() > 5 && t.unanswered().count() > 2, "a capture worth checking");
        let doc = report_json(&path, &[]);
        check_sessions(&doc, &t);
        check_latency(&doc, &t);
        check_errors(&doc, &t);
        check_unanswered(&doc, &t);
        check_messages(&doc, &t);
        check_peers(&doc, &t);
        assert!(t.impairments.retransmitted_segments > 0);
        assert!(finding_count(&doc, "retransmission") > 0, "retransmissions injected");
        assert_eq!(u(&doc["overview"]["gap_bytes"]), 0, "nothing lost");
        assert_eq!(finding_count(&doc, "lost_segment"), 0);
        assert_eq!(u(&doc["overview"]["decode_errors"]), 0);
    }
}

#[test]
fn midstream_sessions_and_compression() {
    let dir = TempDir::new("midstream");
    let cfg = SynthConfig {
        seed: 3,
        clients: 12,
        duration_secs: 60.0,
        midstream: true,
        zlib: 0.3,
        error_rate: 0.05,
        unanswered: 0.05,
        ipv6: true,
        ..SynthConfig::default()
    };
    let (path, t) =
        synthesize(&dir, "m.pcapng", &SynthConfig { format: synth::CaptureFormat::PcapNg, ..cfg });
    assert!(t.connections.iter().any(|c| c.midstream));
    let doc = report_json(&path, &[]);
    check_sessions(&doc, &t);
    check_latency(&doc, &t);
    check_errors(&doc, &t);
    check_unanswered(&doc, &t);
    check_messages(&doc, &t);
    let inferred =
        doc["sessions"].as_array().unwrap().iter().filter(|s| s["user_inferred"] == true);
    assert!(inferred.count() > 0, "users inferred from sends");
}

/// Sessions picked up mid-stream write their own JID as `{name}/{resource}` (no app key or
/// domain, and no login to complete it from), while the server writes it whole: each sender,
/// receiver and user is still counted once, under the complete JID.
#[test]
fn midstream_senders_and_users_are_counted_once() {
    let dir = TempDir::new("midstream-peers");
    for seed in [3, 4, 5] {
        let cfg = SynthConfig {
            seed,
            clients: 12,
            duration_secs: 60.0,
            midstream: true,
            ..SynthConfig::default()
        };
        let (path, t) = synthesize(&dir, "m.pcap", &cfg);
        let doc = report_json(&path, &[]);
        let inferred =
            doc["sessions"].as_array().unwrap().iter().filter(|s| s["user_inferred"] == true);
        assert!(inferred.count() > 0, "users inferred from sends");
        check_peers(&doc, &t);
        let users: Vec<&str> = doc["overview"]["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap())
            .collect();
        assert!(
            users
                .iter()
                .all(|u| u.starts_with("easemob-demo#chatdemoui_") && u.ends_with("@easemob.com")),
            "{users:?}"
        );
        let mut want: Vec<&str> = doc["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["user"].as_str())
            .map(|u| u.split('/').next().unwrap())
            .map(|u| u.rsplit_once('_').map_or(u, |(_, n)| n))
            .map(|u| u.split('@').next().unwrap())
            .collect();
        want.sort_unstable();
        want.dedup();
        assert_eq!(users.len(), want.len(), "{users:?} against {want:?}");
    }
}

/// A server on a high port that is not a known one, clients picked up mid-stream on lower
/// ports: the roles guessed from the ports are the wrong way round until the first message
/// that decodes only the other way turns them, so every number still matches.
#[test]
fn midstream_roles_guessed_wrong_are_turned_by_the_messages() {
    let dir = TempDir::new("midstream-high-port");
    let cfg = SynthConfig {
        seed: 4,
        clients: 6,
        duration_secs: 30.0,
        midstream: true,
        server_port: 61000,
        ..SynthConfig::default()
    };
    let (path, t) = synthesize(&dir, "m.pcap", &cfg);
    let doc = report_json(&path, &[]);
    let lower = doc["sessions"].as_array().unwrap().iter().filter(|s| {
        let port: u16 = s["client"].as_str().unwrap().rsplit(':').next().unwrap().parse().unwrap();
        s["midstream"] == true && port < 61000
    });
    assert!(lower.count() >= 2, "midstream clients on ports below the server's");
    assert_eq!(u(&doc["overview"]["decode_errors"]), 0);
    check_sessions(&doc, &t);
    check_latency(&doc, &t);
    check_messages(&doc, &t);
    assert_eq!(report_json(&path, &["-j", "2"]), doc, "-j 2");
}

/// The login negotiates LZ4 for the frames after it, which the report must then unwrap: every
/// number still matches, over raw TCP and WebSocket, for each direction the server names.
#[test]
fn lz4_negotiated_at_login() {
    let dir = TempDir::new("lz4");
    for (i, (direction, transport)) in [
        (Lz4Direction::Bi, SynthTransport::Tcp),
        (Lz4Direction::OnlyUp, SynthTransport::Tcp),
        (Lz4Direction::OnlyDown, SynthTransport::WebSocket),
    ]
    .into_iter()
    .enumerate()
    {
        let cfg = SynthConfig {
            seed: 20 + i as u64,
            clients: 8,
            duration_secs: 60.0,
            transport,
            lz4: Some(Lz4Mode { direction }),
            ..impaired()
        };
        let (path, t) = synthesize(&dir, &format!("z{i}.pcap"), &cfg);
        let doc = report_json(&path, &[]);
        assert_eq!(u(&doc["overview"]["decode_errors"]), 0, "{direction:?} {transport:?}");
        check_sessions(&doc, &t);
        check_latency(&doc, &t);
        check_errors(&doc, &t);
        check_messages(&doc, &t);
    }
}

#[test]
fn loss_shows_as_gaps() {
    let dir = TempDir::new("loss");
    let cfg = SynthConfig {
        seed: 11,
        clients: 10,
        duration_secs: 60.0,
        loss: 0.02,
        ..SynthConfig::default()
    };
    let (path, t) = synthesize(&dir, "l.pcap", &cfg);
    assert!(t.impairments.lost_segments > 0);
    let doc = report_json(&path, &[]);
    let gap = u(&doc["overview"]["gap_bytes"]);
    assert!(gap > 0, "gap bytes");
    let lost = doc["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "lost_segment");
    let lost = lost.expect("a lost_segment finding");
    assert_eq!(lost["severity"], "error");
    assert_eq!(u(&lost["value"]), gap);
    assert!(u(&lost["count"]) > 0 && u(&lost["count"]) <= t.impairments.lost_segments);
    // Sessions and logins are still all there.
    check_sessions(&doc, &t);
}

#[test]
fn sharded_output_is_identical() {
    let dir = TempDir::new("shard");
    let configs = [
        impaired(),
        SynthConfig {
            seed: 5,
            clients: 9,
            loss: 0.01,
            reorder: 0.02,
            midstream: true,
            ..impaired()
        },
        SynthConfig { seed: 9, clients: 3, duration_secs: 20.0, ..SynthConfig::default() },
        // Connections still open at the end, with data held back by loss and reordering: each
        // shard closes them at the capture's last packet, not at the last one it saw.
        SynthConfig {
            seed: 13,
            clients: 12,
            duration_secs: 30.0,
            mss: 1400,
            loss: 0.01,
            midstream: true,
            zlib: 0.3,
            ..impaired()
        },
        // Mid-stream web sessions whose transport is decided late (their first bytes held):
        // answers of a queue are then taken in out of their packets' order, and the queue's
        // last next_key must still be the latest packet's, as the shards' merge takes it.
        SynthConfig {
            seed: 124,
            clients: 44,
            duration_secs: 109.0,
            mss: 451,
            mean_gap_secs: 1.0,
            midstream: true,
            zlib: 0.2,
            error_rate: 0.1,
            unanswered: 0.1,
            transport: SynthTransport::WebSocket,
            ws_deflate: Some(WsDeflate { context_takeover: true }),
            ws_fragment: 0.2,
            ws_ping: 0.2,
            ..SynthConfig::default()
        },
        // WebSocket and LZ4 counts live in the pipeline totals that shards add up.
        SynthConfig {
            seed: 11,
            clients: 8,
            transport: SynthTransport::WebSocket,
            ws_deflate: Some(WsDeflate { context_takeover: true }),
            ws_ping: 0.2,
            lz4: Some(Lz4Mode { direction: Lz4Direction::Bi }),
            ..impaired()
        },
    ];
    for (i, cfg) in configs.iter().enumerate() {
        let (path, _) = synthesize(&dir, &format!("s{i}.pcap"), cfg);
        let p = path.to_str().unwrap();
        let variants: [&[&str]; 6] = [
            &["--json"],
            &["--no-color", "--width", "120"],
            &["--json", "--conn", "2"],
            &["--json", "--conn", "3,1", "--conn", "7"],
            &["--json", "--since", "+20s", "--until", "+50s"],
            &["--json", "--user", "user0003"],
        ];
        for extra in variants {
            let one = run(&[&["report", p, "-j", "1"][..], extra].concat());
            for j in ["2", "3"] {
                let many = run(&[&["report", p, "-j", j][..], extra].concat());
                assert!(one == many, "capture {i}, -j {j} {extra:?} differs from -j 1");
            }
        }
    }
}

/// Tables longer than one chunk of rows (the sessions and queues of 700 clients) are laid
/// out on two threads under `-j 2`: the text is that of `-j 1`, in column groups or not.
#[test]
fn long_tables_on_two_threads_read_as_on_one() {
    let dir = TempDir::new("long-tables");
    let cfg = SynthConfig { seed: 5, clients: 700, duration_secs: 2.0, ..SynthConfig::default() };
    let (path, _) = synthesize(&dir, "long.pcap", &cfg);
    let p = path.to_str().unwrap();
    for width in ["80", "400"] {
        let one = run(&["report", p, "-j", "1", "--width", width]);
        let text = String::from_utf8_lossy(&one);
        assert!(text.contains("Sessions (700 ") && text.lines().count() > 1400, "{width}");
        let two = run(&["report", p, "-j", "2", "--width", width]);
        assert!(one == two, "--width {width}: -j 2 differs from -j 1");
    }
}

#[test]
fn seed_report_snapshot() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let capture = root.join("captures/seed.pcap");
    let expected_path = root.join("captures/seed.report.txt");
    let got = run(&["report", "--no-color", "--width", "120", capture.to_str().unwrap()]);
    let got = String::from_utf8(got).unwrap();
    if std::env::var_os("UPDATE_EXPECTED").is_some() {
        fs::write(&expected_path, &got).unwrap();
        return;
    }
    let want = fs::read_to_string(&expected_path).unwrap_or_default();
    if got != want {
        let diff: Vec<String> = got
            .lines()
            .zip(want.lines().chain(std::iter::repeat("<missing>")))
            .enumerate()
            .filter(|(_, (g, w))| g != w)
            .take(10)
            .map(|(i, (g, w))| format!("line {}:\n  want: {w}\n  got:  {g}", i + 1))
            .collect();
        panic!(
            "the report of captures/seed.pcap differs from captures/seed.report.txt \
             ({} lines, expected {}); rerun with UPDATE_EXPECTED=1 to accept it.\n{}",
            got.lines().count(),
            want.lines().count(),
            diff.join("\n")
        );
    }
}

/// The committed captures hold connections that never carry MSync (the web SDK's HTTP, a
/// refused upgrade): shards keep no state for those, yet number connections as one pipeline.
/// The tunnels' captures hold a datagram fragmented on the underlay, which must reach the
/// worker of the connection inside it.
#[test]
fn sharded_output_is_identical_on_committed_captures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let mut n = 0;
    let files = [root.clone(), root.join("tunnels"), root.join("variants")]
        .iter()
        .flat_map(|d| fs::read_dir(d).unwrap().map(|e| e.unwrap().path()).collect::<Vec<_>>())
        .collect::<Vec<_>>();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
            continue;
        }
        let p = path.to_str().unwrap();
        same_with_two_jobs(p, &name);
        n += 1;
    }
    assert!(n >= 25, "only {n} captures found");
}

/// The seed capture with every record from index `from` on moved by `delta_us`, written in
/// `dir`, and the seed's records (offset, time in µs).
fn seed_retimed(dir: &TempDir, from: usize, delta_us: i64) -> (PathBuf, Vec<(usize, u64)>) {
    let seed = fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/seed.pcap")).unwrap();
    let recs = pcap_records(&seed);
    let mut b = seed.clone();
    for &(at, us) in &recs[from..] {
        set_time(&mut b, at, us.checked_add_signed(delta_us).unwrap());
    }
    let path = dir.path("retimed.pcap");
    fs::write(&path, &b).unwrap();
    (path, recs)
}

/// `report` of capture `p` (named `name` in failures), as JSON and as text, is the same with two
/// workers as with one.
fn same_with_two_jobs(p: &str, name: &str) {
    for extra in [&["--json"][..], &["--no-color", "--width", "120"]] {
        let one = run(&[&["report", p, "-j", "1"][..], extra].concat());
        let two = run(&[&["report", p, "-j", "2"][..], extra].concat());
        assert!(one == two, "{name} {extra:?}: -j 2 differs from -j 1");
    }
}

/// The records of a little-endian microsecond pcap: (offset of the record header, its time in
/// microseconds).
fn pcap_records(b: &[u8]) -> Vec<(usize, u64)> {
    let le = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    assert_eq!(le(0), 0xa1b2_c3d4, "a little-endian microsecond pcap");
    let mut out = Vec::new();
    let mut o = 24;
    while o + 16 <= b.len() {
        out.push((o, u64::from(le(o)) * 1_000_000 + u64::from(le(o + 4))));
        o += 16 + le(o + 8) as usize;
    }
    out
}

fn set_time(b: &mut [u8], rec: usize, us: u64) {
    b[rec..rec + 4].copy_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
    b[rec + 4..rec + 8].copy_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
}

/// Times that run backwards: connections still open at the end close at the capture's last
/// record on every shard, as in one pipeline, not at the latest time some shard saw.
#[test]
fn sharded_output_is_identical_when_times_run_backwards() {
    let dir = TempDir::new("backwards");
    let seed = fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/seed.pcap")).unwrap();
    let recs = pcap_records(&seed);
    let n = recs.len();
    assert!(n > 8);
    let mut swapped = seed.clone();
    set_time(&mut swapped, recs[n - 1].0, recs[n - 2].1);
    set_time(&mut swapped, recs[n - 2].0, recs[n - 1].1);
    let mut jump = seed.clone();
    set_time(&mut jump, recs[6].0, recs[6].1 + 150_000_000);
    for (name, bytes) in [("swapped.pcap", swapped), ("jump.pcap", jump)] {
        let path = dir.path(name);
        fs::write(&path, bytes).unwrap();
        same_with_two_jobs(path.to_str().unwrap(), name);
    }
}

/// A clock stepped back 100 s between the send and its ack (frame 9 and every packet after):
/// the step is told in the overview, by a finding at its packet, in `info` and in `dissect`'s
/// tally; the send counts as answered but its negative time stays out of the figures, which a
/// finding says; the other exchanges, each on one side of the step, keep their times.
#[test]
fn a_clock_stepped_back_is_told_and_its_negative_times_are_kept_out() {
    let dir = TempDir::new("stepback");
    let (path, recs) = seed_retimed(&dir, 8, -100_000_000);
    let p = path.to_str().unwrap();
    let step_us = recs[7].1 - (recs[8].1 - 100_000_000);
    let start_us = recs[0].1;

    let doc = report_json(&path, &[]);
    let t = &doc["overview"]["time_order"];
    assert_eq!(t["strict"], false);
    assert_eq!(u(&t["steps_back"]), 1);
    assert_eq!(u(&t["first_frame"]), 9);
    assert_eq!(u(&t["largest_frame"]), 9);
    assert_ms(&t["largest_step_back_ms"], step_us as i64 * 1000, "largest step back");
    assert_eq!(u(&t["earliest_frame"]), 9);
    let early = t["earliest"]["rel_s"].as_f64().unwrap();
    let want = (recs[8].1 as f64 - 100e6 - start_us as f64) / 1e6;
    assert!((early - want).abs() < 1e-6, "earliest at {early} s, want {want} s");
    assert!(early < 0.0);

    let finding = |kind: &str| {
        doc["findings"].as_array().unwrap().iter().find(|f| f["kind"] == kind).cloned()
    };
    let back = finding("time_backwards").expect("a time_backwards finding");
    assert_eq!(u(&back["count"]), 1);
    assert_eq!(u(&back["value"]), step_us * 1000);
    assert_eq!(back["where"][0]["frame"], 9);
    assert!(back["where"][0]["conn"].is_null(), "a capture-wide place: {back}");
    let neg = finding("negative_time").expect("a negative_time finding");
    assert_eq!(u(&neg["count"]), 1);
    assert_eq!(back["severity"], "warning");
    assert_eq!(neg["where"][0]["conn"], 0);
    assert_eq!(neg["where"][0]["frame"], 9);

    let send = latency_row(&doc, "send");
    assert_eq!((u(&send["count"]), u(&send["answered"]), u(&send["unanswered"])), (1, 1, 0));
    for k in ["min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms"] {
        assert!(send[k].is_null(), "send {k}: {}", send[k]);
    }
    // Request and answer on one side of the step: unchanged.
    for (kind, ms) in [("login", 64.0), ("pull", 16.0), ("notice", 1.0)] {
        let row = latency_row(&doc, kind);
        assert_eq!(u(&row["answered"]), 1, "{kind}");
        assert_ms(&row["max_ms"], (ms * 1e6) as i64, kind);
    }
    assert_eq!(finding("slow_exchange"), None);

    let text = String::from_utf8(run(&["report", p, "--no-color", "--width", "200"])).unwrap();
    let row = text.lines().find(|l| l.contains("Time order")).expect("a Time order row");
    assert!(
        row.contains("not strict: 1 packet earlier than the one before, the first #9"),
        "{row}"
    );
    assert!(text.contains("#9 "), "the finding's place is the packet alone");
    assert!(!text.contains("+-"), "a negative relative time keeps one sign");

    let info = String::from_utf8(run(&["info", p])).unwrap();
    assert!(info.contains("time order: not strict: 1 packet earlier than the one before, the first #9; the largest step back"), "{info}");
    let verbose = String::from_utf8(run(&["dissect", "-V", p])).unwrap();
    let frame9 = verbose.lines().find(|l| l.starts_with("Frame 9,")).unwrap();
    assert!(frame9.ends_with(&format!("({want:.6} s)")), "{frame9}");
    let out = Command::new(BIN).args(["dissect", "-q", p]).output().unwrap();
    let tally = String::from_utf8(out.stderr).unwrap();
    assert!(
        tally.contains(
            ", 1 packet earlier than the one before (the first #9, the largest step back"
        ),
        "{tally}"
    );

    // In time order, none of it shows.
    let doc = report_json(&Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/seed.pcap"), &[]);
    let t = &doc["overview"]["time_order"];
    assert_eq!((t["strict"].clone(), u(&t["steps_back"])), (Value::Bool(true), 0));
    assert!(t["first_frame"].is_null() && t["largest_step_back_ms"].is_null());
    assert_eq!(u(&t["earliest_frame"]), 1);
    assert_eq!(finding_count(&doc, "time_backwards") + finding_count(&doc, "negative_time"), 0);
}

/// Connection 0 of the seed goes silent for 700 s (past the 600 s idle time-out) between the
/// send and its ack: closed as idle, then taken up again where its sequence numbers stopped.
/// The rest goes on as connection 1, which names it, has its user and device, and is neither
/// picked up mid-stream nor without PROVISION; connection 0's End names 1.
#[test]
fn a_connection_silent_past_the_idle_time_out_goes_on_as_one_session() {
    let dir = TempDir::new("resumed");
    let (path, recs) = seed_retimed(&dir, 8, 700_000_000);
    let p = path.to_str().unwrap();

    let doc = report_json(&path, &[]);
    let sessions = doc["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3, "conn 0, its continuation, the login's connection");
    let (first, then) = (&sessions[0], &sessions[1]);
    assert_eq!(first["close"], "idle");
    assert!(first["resumes"].is_null());
    assert_eq!(then["resumes"]["conn"], 0);
    assert_ms(
        &then["resumes"]["idle_ms"],
        ((recs[8].1 + 700_000_000 - recs[7].1) * 1000) as i64,
        "idle",
    );
    assert_eq!(then["midstream"], false);
    assert!(first["user"].is_string());
    for k in ["user", "user_inferred", "resource", "device_uuid"] {
        assert_eq!(then[k], first[k], "{k}");
    }
    assert!(then["login"].is_null());
    let places = |kind: &str| -> Vec<u64> {
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == kind)
            .flat_map(|f| f["where"].as_array().unwrap().iter().map(|w| u(&w["conn"])))
            .collect()
    };
    assert_eq!(places("midstream"), vec![0]);
    assert_eq!(places("no_provision"), vec![0]);
    assert_eq!(doc["overview"]["users"].as_array().unwrap().len(), 2);

    let text = String::from_utf8(run(&["report", p, "--no-color", "--width", "200"])).unwrap();
    assert!(text.contains("resumes 0 (idle 11m"), "{text}");
    assert!(text.contains("idle → 1"), "{text}");
    same_with_two_jobs(p, "retimed.pcap");
}

/// The web SDK's real traffic in Chromium, LZ4 inside permessage-deflate with context
/// takeover both ways, silent for 700 s from each packet on in turn: a connection that resumes
/// an idle one goes on with its inflate windows and LZ4 history, so every message decodes as
/// in the capture itself, wherever the silence falls.
#[test]
fn a_resumed_web_session_decodes_with_the_state_it_had() {
    let dir = TempDir::new("resumed-ws");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let orig = fs::read(root.join("websdk-chromium-lz4-deflate.pcap")).unwrap();
    let recs = pcap_records(&orig);
    let tally = |p: &str| {
        let out = Command::new(BIN).args(["dissect", "-q", p]).output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    let whole = tally(root.join("websdk-chromium-lz4-deflate.pcap").to_str().unwrap());
    assert!(whole.contains(" 29 messages, 0 decode errors, 0 gap bytes"), "{whole}");
    let path = dir.path("late.pcap");
    let p = path.to_str().unwrap();
    let mut resumed = 0;
    for k in 1..recs.len() {
        let mut late = orig.clone();
        for &(at, us) in &recs[k..] {
            set_time(&mut late, at, us + 700_000_000);
        }
        fs::write(&path, &late).unwrap();
        let t = tally(p);
        assert!(
            t.contains(" 29 messages, 0 decode errors, 0 gap bytes"),
            "silent from #{}: {t}",
            k + 1
        );
        let doc = report_json(&path, &[]);
        let sessions = doc["sessions"].as_array().unwrap();
        if let Some(s) = sessions.iter().find(|s| !s["resumes"].is_null()) {
            resumed += 1;
            // Silent within the handshake, before any message: that was no session yet.
            let Some(old) = sessions.iter().find(|o| o["conn"] == s["resumes"]["conn"]) else {
                continue;
            };
            assert_eq!(old["tcp_close"], "idle");
            assert_eq!(s["user"], old["user"]);
            assert_eq!(s["transport"], old["transport"]);
            assert_eq!(s["websocket"]["path"], old["websocket"]["path"]);
            assert_eq!(s["websocket"]["extensions"], old["websocket"]["extensions"]);
            assert_eq!(s["midstream"], false);
        }
    }
    // The silences inside the WebSocket session, after its first message.
    assert!(resumed >= 40, "only {resumed} of {} resumed", recs.len());
}

/// A session found idle by a packet far later (here every record from the middle on is dated
/// 5000 s later) ended with its own last packet, not with the packet that found it idle.
#[test]
fn an_idle_session_ends_with_its_own_last_packet() {
    let dir = TempDir::new("idle");
    let mut late =
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/seed.pcap")).unwrap();
    let recs = pcap_records(&late);
    let half = recs.len() / 2;
    for &(at, us) in &recs[half..] {
        set_time(&mut late, at, us + 5_000_000_000);
    }
    let path = dir.path("late.pcap");
    fs::write(&path, late).unwrap();
    let doc = report_json(&path, &[]);
    let before_jump = recs[half - 1].1 as f64 / 1e6;
    let start = recs[0].1 as f64 / 1e6;
    let idle: Vec<&Value> =
        doc["sessions"].as_array().unwrap().iter().filter(|s| s["close"] == "idle").collect();
    assert!(!idle.is_empty(), "a session went idle over the jump");
    for s in idle {
        let end = start + s["end"]["rel_s"].as_f64().unwrap();
        assert!(
            end <= before_jump + 1e-6,
            "{s}: ends at {end}, after its last packet {before_jump}"
        );
    }
}

/// The official web SDK's own bytes: its three chat sends, the two chats it received, and the
/// empty content (`{}`, no type) that it puts in each READ_ACK and DELIVER_ACK body. Those are
/// counted apart, not as TEXT, which protobuf would read an absent type as.
#[test]
fn the_web_sdks_acks_carry_empty_contents_that_are_not_text() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    for name in ["websdk-plain", "websdk-lz4-bi", "websdk-lz4-deflate"] {
        let doc = report_json(&root.join(format!("{name}.pcap")), &[]);
        let m = &doc["messages"];
        let row = |table: &str, n: &str| {
            let rows = m[table].as_array().unwrap();
            let r = rows.iter().find(|r| r["name"] == n);
            r.map_or((0, 0), |r| (u(&r["up"]), u(&r["down"])))
        };
        assert_eq!(row("body_types", "CHAT"), (3, 2), "{name}");
        assert_eq!(row("body_types", "READ_ACK"), (1, 0), "{name}");
        assert_eq!(row("body_types", "DELIVER_ACK"), (2, 0), "{name}");
        assert_eq!(row("content_types", "TEXT"), (3, 2), "{name}");
        assert_eq!(row("content_types", "(empty)"), (3, 0), "{name}");
        assert_eq!(m["content_types"].as_array().unwrap().len(), 2, "{name}");
    }
}

/// Packets that reach no connection are counted in the overview by why, in text and JSON,
/// the same with one worker or two: the tunnel's own ARP and neighbour discovery (not IP, not
/// TCP), and records appended to `seed.pcap` whose IPv4 header is cut short or that hold a
/// lone IPv4 fragment.
#[test]
fn packets_that_reach_no_connection_are_counted_by_why() {
    let vx = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/tunnels/vxlan.pcap");
    let doc = report_json(&vx, &[]);
    let na = &doc["overview"]["packets_not_analysed"];
    assert_eq!((u(&na["non_ip"]), u(&na["non_tcp"]), u(&na["malformed"])), (2, 6, 0));
    assert_eq!(u(&doc["overview"]["connections_evicted"]), 0);

    let dir = TempDir::new("not-analysed");
    let mut cap =
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/seed.pcap")).unwrap();
    let record = |cap: &mut Vec<u8>, frame: &[u8]| {
        // 2017-10-26, after the seed's last packet.
        for v in [1_509_000_000u32, 0, frame.len() as u32, frame.len() as u32] {
            cap.extend_from_slice(&v.to_le_bytes());
        }
        cap.extend_from_slice(frame);
    };
    let mut eth = vec![0u8; 12];
    eth.extend_from_slice(&[0x08, 0x00]);
    let mut cut = eth.clone();
    cut.extend_from_slice(&[0x45, 0, 0, 40, 0, 0]);
    record(&mut cap, &cut);
    // The first fragment of a datagram whose rest never comes (given up at the end).
    let mut frag = eth.clone();
    frag.extend_from_slice(&[0x45, 0, 0, 36, 0, 9, 0x20, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    frag.extend_from_slice(&[0; 16]);
    record(&mut cap, &frag);
    let path = dir.path("odd.pcap");
    fs::write(&path, &cap).unwrap();
    for jobs in ["1", "2"] {
        let doc = report_json(&path, &["-j", jobs]);
        let na = &doc["overview"]["packets_not_analysed"];
        assert_eq!(u(&na["malformed"]), 1, "-j {jobs}");
        assert_eq!(u(&na["fragments_dropped"]), 1, "-j {jobs}");
        assert_eq!(u(&na["non_ip"]) + u(&na["non_tcp"]) + u(&na["unsupported_link"]), 0);
        assert_eq!(u(&doc["overview"]["messages"]), 7, "-j {jobs}: the seed's messages still");
    }
    let text = String::from_utf8(run(&[
        "report",
        "--section",
        "overview",
        "--no-color",
        path.to_str().unwrap(),
    ]))
    .unwrap();
    assert!(
        text.contains("1 packets not parsed (1 malformed, 0 of an unsupported link type)"),
        "{text}"
    );
    assert!(text.contains("1 IP fragments dropped"), "{text}");
}

/// `capture` (pcap, Ethernet) with every IPv4 TCP packet of more than `size` bytes of IP
/// payload cut into IPv4 fragments of `size` bytes, the fragments of every third datagram in
/// reverse order, those of every fifth with its first fragment sent twice, and the last
/// fragment of every seventh (the capture's first among them) after the next packet.
fn fragmented(capture: &[u8], size: usize) -> Vec<u8> {
    fn record(out: &mut Vec<u8>, hdr: &[u8], f: &[u8]) {
        out.extend_from_slice(&hdr[..8]);
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    let mut out = capture[..24].to_vec();
    let mut pos = 24;
    let mut n = 0u16;
    let mut delayed: Option<(Vec<u8>, Vec<u8>)> = None;
    while pos + 16 <= capture.len() {
        let hdr = &capture[pos..pos + 16];
        let caplen = u32::from_le_bytes(hdr[8..12].try_into().unwrap()) as usize;
        let frame = &capture[pos + 16..pos + 16 + caplen];
        pos += 16 + caplen;
        let late = delayed.take();
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 15) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        if frame[12..14] != [8, 0] || ip[9] != 6 || total - ihl <= size {
            record(&mut out, hdr, frame);
            if let Some((h, f)) = late {
                record(&mut out, &h, &f);
            }
            continue;
        }
        n = n.wrapping_add(1);
        let payload = &ip[ihl..total];
        let mut frags = Vec::new();
        let mut off = 0;
        while off < payload.len() {
            let end = (off + size).min(payload.len());
            let more = if end < payload.len() { 0x2000u16 } else { 0 };
            let mut f = frame[..14 + ihl].to_vec();
            f[14 + 2..14 + 4].copy_from_slice(&((ihl + end - off) as u16).to_be_bytes());
            f[14 + 4..14 + 6].copy_from_slice(&n.to_be_bytes());
            f[14 + 6..14 + 8].copy_from_slice(&(more | (off / 8) as u16).to_be_bytes());
            f.extend_from_slice(&payload[off..end]);
            frags.push(f);
            off = end;
        }
        if n % 3 == 0 {
            frags.reverse();
        }
        if n % 5 == 0 {
            let first = frags[0].clone();
            frags.insert(1, first);
        }
        let tail = if n % 7 == 1 { frags.pop() } else { None };
        for f in &frags {
            record(&mut out, hdr, f);
        }
        if let Some((h, f)) = late {
            record(&mut out, &h, &f);
        }
        delayed = tail.map(|f| (hdr.to_vec(), f));
    }
    if let Some((h, f)) = delayed {
        record(&mut out, &h, &f);
    }
    out
}

/// TCP in IPv4 fragments (reordered, duplicated) gives the same report with one worker or
/// several, and the same MSync messages as without fragmentation.
#[test]
fn fragmented_connections_give_the_same_report_with_any_number_of_workers() {
    let dir = TempDir::new("fragmented");
    let cfg = SynthConfig { seed: 21, clients: 12, duration_secs: 40.0, ..SynthConfig::default() };
    let (whole, _) = synthesize(&dir, "whole.pcap", &cfg);
    let plain = report_json(&whole, &[]);
    // 96: the larger segments; 16: every packet, the capture's first (a SYN) among them.
    for size in [96, 16] {
        let path = dir.path(&format!("fragmented-{size}.pcap"));
        fs::write(&path, fragmented(&fs::read(&whole).unwrap(), size)).unwrap();
        let p = path.to_str().unwrap();
        for extra in [&["--json"][..], &["--no-color", "--width", "120"]] {
            let one = run(&[&["report", p, "-j", "1"][..], extra].concat());
            for j in ["2", "3"] {
                let many = run(&[&["report", p, "-j", j][..], extra].concat());
                assert!(one == many, "{size}: -j {j} {extra:?} differs from -j 1");
            }
        }
        let frag = report_json(&path, &[]);
        assert!(u(&frag["overview"]["packets"]) > u(&plain["overview"]["packets"]) + 100);
        for key in ["capture_start", "messages", "per_command", "users"] {
            assert_eq!(frag["overview"][key], plain["overview"][key], "{size}: {key}");
        }
        assert_eq!(frag["latency"], plain["latency"], "{size}");
        assert_eq!(u(&frag["overview"]["gap_bytes"]), 0);
        assert_eq!(u(&frag["overview"]["packets_not_analysed"]["fragments_dropped"]), 0);
    }
}

/// Every connection a finding names among its places is among its `conns`, sessions or not
/// (the lossy capture's HTTP connection has retransmissions too); and the WebSocket count is of
/// MSync connections, so a refused upgrade is not among them.
#[test]
fn findings_list_the_connections_of_their_places() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let want = [
        ("websdk-chromium-lossy.pcap", 1, 1, "retransmission", vec![0, 1]),
        ("ws-sample.pcap", 4, 4, "websocket_rejected", vec![4]),
    ];
    for (name, msync, ws, kind, conns) in want {
        let doc = report_json(&root.join(name), &[]);
        let o = &doc["overview"];
        assert_eq!(
            (u(&o["msync_connections"]), u(&o["websocket_connections"])),
            (msync, ws),
            "{name}"
        );
        let mut seen = false;
        for f in doc["findings"].as_array().unwrap() {
            let listed: Vec<u64> = f["conns"].as_array().unwrap().iter().map(u).collect();
            for w in f["where"].as_array().unwrap() {
                assert!(
                    listed.contains(&u(&w["conn"])),
                    "{name} {}: {w} not in {listed:?}",
                    f["kind"]
                );
            }
            if f["kind"] == kind {
                assert_eq!(listed, conns, "{name} {kind}");
                seen = true;
            }
        }
        assert!(seen, "{name}: no {kind}");
    }
}

/// `capture` (pcap, Ethernet, IPv4) with a keep-alive after every TCP segment that carries
/// data: the same header at the sequence number of its last byte, with `byte` as its payload
/// (Windows and BSD send one byte) or none (Linux). Returns the capture and the probes added.
fn with_keep_alives(capture: &[u8], byte: Option<u8>) -> (Vec<u8>, u64) {
    let mut out = capture[..24].to_vec();
    let mut pos = 24;
    let mut n = 0;
    while pos + 16 <= capture.len() {
        let hdr = &capture[pos..pos + 16];
        let caplen = u32::from_le_bytes(hdr[8..12].try_into().unwrap()) as usize;
        let frame = &capture[pos + 16..pos + 16 + caplen];
        pos += 16 + caplen;
        out.extend_from_slice(hdr);
        out.extend_from_slice(frame);
        let ip = &frame[14..];
        if frame[12..14] != [8, 0] || ip[9] != 6 {
            continue;
        }
        let ihl = usize::from(ip[0] & 15) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let tcp = &ip[ihl..total];
        let thl = usize::from(tcp[12] >> 4) * 4;
        let len = tcp.len() - thl;
        // SYN, FIN or RST: never a keep-alive's template.
        if len == 0 || tcp[13] & 7 != 0 {
            continue;
        }
        let seq = u32::from_be_bytes(tcp[4..8].try_into().unwrap());
        let mut probe = frame[..14 + ihl + thl].to_vec();
        probe.extend(byte);
        let ip_len = (probe.len() - 14) as u16;
        probe[14 + 2..14 + 4].copy_from_slice(&ip_len.to_be_bytes());
        let at = 14 + ihl + 4;
        probe[at..at + 4].copy_from_slice(&seq.wrapping_add(len as u32 - 1).to_be_bytes());
        out.extend_from_slice(&hdr[..8]);
        out.extend_from_slice(&(probe.len() as u32).to_le_bytes());
        out.extend_from_slice(&(probe.len() as u32).to_le_bytes());
        out.extend_from_slice(&probe);
        n += 1;
    }
    (out, n)
}

/// Keep-alives of one byte (already acknowledged) or none, at the sequence number before the
/// next one: counted as a `keep_alive` note, not as retransmissions, and the messages are
/// those of the capture without them, with one worker or two.
#[test]
fn keep_alives_are_a_note_not_retransmissions() {
    let dir = TempDir::new("keepalive");
    let cfg = SynthConfig { seed: 5, clients: 3, duration_secs: 30.0, ..SynthConfig::default() };
    let (plain_path, _) = synthesize(&dir, "plain.pcap", &cfg);
    let plain = report_json(&plain_path, &[]);
    assert_eq!(finding_count(&plain, "retransmission"), 0);
    for (name, byte) in [("one-byte.pcap", Some(0u8)), ("empty.pcap", None)] {
        let (cap, n) = with_keep_alives(&fs::read(&plain_path).unwrap(), byte);
        assert!(n > 50, "{name}: {n} probes");
        let path = dir.path(name);
        fs::write(&path, cap).unwrap();
        let doc = report_json(&path, &[]);
        assert_eq!(finding_count(&doc, "retransmission"), 0, "{name}");
        assert_eq!(finding_count(&doc, "keep_alive"), n, "{name}");
        let f = doc["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "keep_alive");
        assert_eq!(f.unwrap()["severity"], "note", "{name}");
        assert_eq!(u(&doc["overview"]["gap_bytes"]), 0, "{name}");
        for key in ["messages", "per_command", "users"] {
            assert_eq!(doc["overview"][key], plain["overview"][key], "{name}: {key}");
        }
        assert_eq!(doc["latency"], plain["latency"], "{name}");
        assert_eq!(report_json(&path, &["-j", "2"]), doc, "{name}: -j 2");
    }
}

/// The records of a little-endian pcap of Ethernet/IPv4/TCP packets: (record header, frame).
fn records(cap: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pos = 24;
    while pos + 16 <= cap.len() {
        let caplen = u32::from_le_bytes(cap[pos + 8..pos + 12].try_into().unwrap()) as usize;
        out.push((cap[pos..pos + 16].to_vec(), cap[pos + 16..pos + 16 + caplen].to_vec()));
        pos += 16 + caplen;
    }
    out
}

fn pcap_of(head: &[u8], recs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = head[..24].to_vec();
    for (h, f) in recs {
        out.extend_from_slice(&h[..8]);
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// Offset of the TCP header in an Ethernet/IPv4 frame, and its payload length.
fn tcp_at(frame: &[u8]) -> (usize, usize) {
    let ihl = usize::from(frame[14] & 15) * 4;
    let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
    let t = 14 + ihl;
    (t, total - ihl - usize::from(frame[t + 12] >> 4) * 4)
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// What comes on a 4-tuple after its connection closed: a new connection whose handshake was
/// not captured is decoded, picked up mid-stream; the last data segment captured after its
/// sender's RST is counted and shown, in the overview and the tally.
#[test]
fn segments_after_close_are_a_new_connection_or_counted() {
    let dir = TempDir::new("after-close");
    let cfg = SynthConfig { seed: 3, clients: 1, duration_secs: 20.0, ..SynthConfig::default() };
    let (plain_path, _) = synthesize(&dir, "plain.pcap", &cfg);
    let plain_bytes = fs::read(&plain_path).unwrap();
    let plain = report_json(&plain_path, &[]);
    assert_eq!(plain["sessions"][0]["tcp_close"], "FIN");
    let msgs = u(&plain["overview"]["messages"]);
    let recs = records(&plain_bytes);
    let server_port = 6717u16;
    let from_server = |f: &[u8]| {
        let (t, _) = tcp_at(f);
        u16::from_be_bytes([f[t], f[t + 1]]) == server_port
    };

    // The same conversation again 100 s later from the same port, with other ISNs and
    // without its SYN and SYN+ACK.
    let mut again = recs.clone();
    for (h, f) in &recs {
        let (t, _) = tcp_at(f);
        if f[t + 13] & 2 != 0 {
            continue;
        }
        let (mut h, mut f) = (h.clone(), f.clone());
        let secs = u32::from_le_bytes(h[0..4].try_into().unwrap()) + 100;
        h[0..4].copy_from_slice(&secs.to_le_bytes());
        let (own, peer) =
            if from_server(&f) { (50_000_000u32, 1_000_000u32) } else { (1_000_000, 50_000_000) };
        let seq = be32(&f, t + 4).wrapping_add(own);
        let ack = be32(&f, t + 8).wrapping_add(peer);
        f[t + 4..t + 8].copy_from_slice(&seq.to_be_bytes());
        f[t + 8..t + 12].copy_from_slice(&ack.to_be_bytes());
        again.push((h, f));
    }
    let path = dir.path("again.pcap");
    fs::write(&path, pcap_of(&plain_bytes, &again)).unwrap();
    let doc = report_json(&path, &[]);
    assert_eq!(u(&doc["overview"]["messages"]), 2 * msgs);
    assert_eq!(u(&doc["overview"]["tcp_connections"]), 2);
    assert_eq!(doc["sessions"].as_array().unwrap().len(), 2);
    assert_eq!(doc["sessions"][1]["client"], plain["sessions"][0]["client"]);
    assert_eq!(finding_count(&doc, "midstream"), 1);
    assert_eq!(u(&doc["overview"]["packets_not_analysed"]["after_close"]), 0);
    assert_eq!(report_json(&path, &["-j", "2"]), doc, "-j 2");

    // The server's RST captured before its last data segment, nothing after that segment.
    let last = recs.iter().rposition(|(_, f)| from_server(f) && tcp_at(f).1 > 0).unwrap();
    let (h, f) = &recs[last];
    let (t, len) = tcp_at(f);
    let mut rst = f[..t + 20].to_vec();
    rst[t + 12] = 5 << 4;
    rst[t + 13] = 0x14; // RST, ACK
    rst[t + 4..t + 8].copy_from_slice(&be32(f, t + 4).wrapping_add(len as u32).to_be_bytes());
    let ip_len = (rst.len() - 14) as u16;
    rst[16..18].copy_from_slice(&ip_len.to_be_bytes());
    let mut reset = recs[..last].to_vec();
    reset.push((h.clone(), rst));
    reset.push((h.clone(), f.clone()));
    let path = dir.path("reset.pcap");
    fs::write(&path, pcap_of(&plain_bytes, &reset)).unwrap();
    let doc = report_json(&path, &[]);
    let na = &doc["overview"]["packets_not_analysed"];
    assert_eq!((u(&na["after_close"]), u(&na["after_close_bytes"])), (1, len as u64));
    assert!(u(&doc["overview"]["messages"]) < msgs);
    assert_eq!(doc["sessions"][0]["tcp_close"], "RST");
    let out = Command::new(BIN).args(["dissect", "-q", path.to_str().unwrap()]).output().unwrap();
    let tally = String::from_utf8(out.stderr).unwrap();
    let want = format!("1 TCP segments after their connection closed ({len} bytes not analysed)");
    assert!(tally.contains(&want), "{tally}");
    let text = String::from_utf8(run(&[
        "report",
        "--section",
        "overview",
        "--no-color",
        "--width",
        "200",
        path.to_str().unwrap(),
    ]))
    .unwrap();
    let want = format!("1 TCP segments after their connection closed ({len} bytes)");
    assert!(text.contains(&want), "{text}");
}

/// A copy of `f` (Ethernet/IPv4/TCP) with `seq`, `ack`, `flags`, `window` and `payload`,
/// sent the other way when `reverse`.
fn segment_like(
    f: &[u8],
    reverse: bool,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    payload: &[u8],
) -> Vec<u8> {
    let (t, _) = tcp_at(f);
    let mut g = f[..t + 20].to_vec();
    if reverse {
        let (src_mac, dst_mac) = (g[6..12].to_vec(), g[0..6].to_vec());
        g[0..6].copy_from_slice(&src_mac);
        g[6..12].copy_from_slice(&dst_mac);
        let (src_ip, dst_ip) = (g[30..34].to_vec(), g[26..30].to_vec());
        g[26..30].copy_from_slice(&src_ip);
        g[30..34].copy_from_slice(&dst_ip);
        let (sport, dport) = (g[t + 2..t + 4].to_vec(), g[t..t + 2].to_vec());
        g[t..t + 2].copy_from_slice(&sport);
        g[t + 2..t + 4].copy_from_slice(&dport);
    }
    g[t + 4..t + 8].copy_from_slice(&seq.to_be_bytes());
    g[t + 8..t + 12].copy_from_slice(&ack.to_be_bytes());
    g[t + 12] = 5 << 4;
    g[t + 13] = flags;
    g[t + 14..t + 16].copy_from_slice(&window.to_be_bytes());
    g.extend_from_slice(payload);
    let ip_len = (g.len() - 14) as u16;
    g[16..18].copy_from_slice(&ip_len.to_be_bytes());
    g
}

/// A client whose buffer fills before each of the server's data segments: its ACK closes the
/// window, the server probes it twice with the segment's first byte, the window opens and the
/// segment follows. Zero windows are a warning, the probes a note, and nothing else changes:
/// no overlap or retransmission, the same messages and latencies, with one worker or two. An
/// RST far outside the server's sequence space after each segment is ignored.
#[test]
fn zero_windows_probes_and_stray_rsts() {
    const ACK: u8 = 0x10;
    const RST: u8 = 0x04;
    let dir = TempDir::new("zero-window");
    let cfg = SynthConfig { seed: 8, clients: 2, duration_secs: 20.0, ..SynthConfig::default() };
    let (plain_path, _) = synthesize(&dir, "plain.pcap", &cfg);
    let plain_bytes = fs::read(&plain_path).unwrap();
    let plain = report_json(&plain_path, &[]);
    let recs = records(&plain_bytes);
    let from_server = |f: &[u8]| {
        let (t, _) = tcp_at(f);
        u16::from_be_bytes([f[t], f[t + 1]]) == 6717
    };
    let (mut stalled, mut stray) = (Vec::new(), Vec::new());
    let mut n = 0u64;
    for (h, f) in &recs {
        let (t, len) = tcp_at(f);
        if from_server(f) && len > 0 && f[t + 13] & 7 == 0 {
            let (seq, ack) = (be32(f, t + 4), be32(f, t + 8));
            let first = &f[f.len() - len..][..1];
            let closed = segment_like(f, true, ack, seq, ACK, 0, b"");
            let probe = segment_like(f, false, seq, ack, ACK, 0xffff, first);
            let open = segment_like(f, true, ack, seq, ACK, 0xffff, b"");
            for g in [&closed, &probe, &closed, &probe, &open] {
                stalled.push((h.clone(), g.clone()));
            }
            stray.push((h.clone(), f.clone()));
            let far = seq.wrapping_add(len as u32).wrapping_add(1 << 31);
            stray.push((h.clone(), segment_like(f, false, far, ack, RST | ACK, 0, b"")));
            n += 1;
        } else {
            stray.push((h.clone(), f.clone()));
        }
        stalled.push((h.clone(), f.clone()));
    }
    assert!(n > 20, "{n} server segments");
    for (name, recs, kinds) in [
        ("stalled.pcap", stalled, [("zero_window", 2 * n), ("zero_window_probe", 2 * n)]),
        ("stray.pcap", stray, [("rst_ignored", n), ("rst", 0)]),
    ] {
        let path = dir.path(name);
        fs::write(&path, pcap_of(&plain_bytes, &recs)).unwrap();
        let doc = report_json(&path, &[]);
        for (kind, want) in kinds {
            assert_eq!(finding_count(&doc, kind), want, "{name}: {kind}");
        }
        for kind in ["overlap", "retransmission", "lost_segment"] {
            assert_eq!(finding_count(&doc, kind), 0, "{name}: {kind}");
        }
        for key in ["messages", "per_command", "users"] {
            assert_eq!(doc["overview"][key], plain["overview"][key], "{name}: {key}");
        }
        assert_eq!(doc["latency"], plain["latency"], "{name}");
        for (s, p) in
            doc["sessions"].as_array().unwrap().iter().zip(plain["sessions"].as_array().unwrap())
        {
            assert_eq!(s["tcp_close"], p["tcp_close"], "{name}");
        }
        assert_eq!(report_json(&path, &["-j", "2"]), doc, "{name}: -j 2");
    }
}

/// An Ethernet/IPv4/TCP packet of the connection 10.0.0.1:40001 ↔ 198.51.100.10:6717 (an ACK
/// when `ack` is not 0).
fn tcp_packet(up: bool, seq: u32, ack: u32, flags: &str, payload: &[u8]) -> Vec<u8> {
    let (c, s) = (([10, 0, 0, 1], 40001), ([198, 51, 100, 10], 6717));
    let (src, dst) = if up { (c, s) } else { (s, c) };
    let flags = if ack != 0 { format!("{flags}A") } else { flags.to_string() };
    common::tcp_packet(src, dst, seq, ack, &flags, payload)
}

/// An MSync message with its 4-byte length prefix.
fn framed_msync(command: i32, payload: Option<Vec<u8>>) -> Vec<u8> {
    let m = pb::MSync { command: Some(command), payload, ..Default::default() };
    let body = m.encode_to_vec();
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(&body);
    v
}

/// A segment lost before the capture point leaves a hole that is given up only a few packets
/// of the connection later (here a minute later, on a quiet connection). The heartbeat answer
/// that came right behind the hole was captured 20 ms after its request: that is its
/// round-trip, not the minute until the hole was given up.
#[test]
fn an_answer_captured_past_a_lost_segment_keeps_its_own_time() {
    let dir = TempDir::new("past-a-gap");
    let mut pcap = common::Pcap::new();
    let mut times = Vec::new();
    let (mut c, mut s) = (1000u32, 5000u32);
    let mut put = |pcap: &mut common::Pcap, ms: u64, pkt: Vec<u8>| {
        pcap.packet(&pkt);
        times.push(ms * 1000);
    };
    put(&mut pcap, 0, tcp_packet(true, c, 0, "S", &[]));
    c += 1;
    put(&mut pcap, 1, tcp_packet(false, s, c, "S", &[]));
    s += 1;
    put(&mut pcap, 2, tcp_packet(true, c, s, "", &[]));
    let unread_ul = framed_msync(1, None);
    put(&mut pcap, 1000, tcp_packet(true, c, s, "", &unread_ul));
    c += unread_ul.len() as u32;
    // A NOTICE the capture never saw, then the UNREAD answer behind it.
    let notice =
        pb::CommNotice { queue: Some(pb::Jid { name: Some("z13".into()), ..Default::default() }) };
    let lost = framed_msync(2, Some(notice.encode_to_vec()));
    s += lost.len() as u32;
    let answer = pb::CommUnreadDl {
        status: Some(pb::Status { error_code: Some(0), ..Default::default() }),
        ..Default::default()
    };
    let unread_dl = framed_msync(1, Some(answer.encode_to_vec()));
    put(&mut pcap, 1020, tcp_packet(false, s, c, "", &unread_dl));
    s += unread_dl.len() as u32;
    // The client acknowledges everything, then the connection is quiet for a minute.
    for ms in [1030, 61_000, 62_000, 63_000, 64_000, 65_000] {
        put(&mut pcap, ms, tcp_packet(true, c, s, "", &[]));
    }
    put(&mut pcap, 66_000, tcp_packet(true, c, s, "F", &[]));
    put(&mut pcap, 66_001, tcp_packet(false, s, c + 1, "F", &[]));
    let mut bytes = pcap.buf;
    for ((rec, _), us) in pcap_records(&bytes).into_iter().zip(times) {
        set_time(&mut bytes, rec, 1_509_019_200_000_000 + us);
    }
    let path = dir.path("past-a-gap.pcap");
    fs::write(&path, &bytes).unwrap();
    let doc = report_json(&path, &[]);
    assert_eq!(u(&doc["overview"]["gap_bytes"]), lost.len() as u64);
    let unread = latency_row(&doc, "unread");
    assert_eq!((u(&unread["count"]), u(&unread["answered"])), (1, 1));
    assert_eq!(unread["max_ms"].as_f64(), Some(20.0));
    let hb = &doc["sessions"][0]["heartbeats"];
    assert_eq!((u(&hb["count"]), hb["rtt_max_ms"].as_f64()), (1, Some(20.0)));
    assert_eq!(finding_count(&doc, "slow_exchange"), 0);
}

/// The overview's `filter`, and the messages counted, of a `report --json` run.
fn filtered_json(p: &str, extra: &[&str]) -> (Value, u64, Vec<u8>) {
    let out = run(&[&["report", p, "--json"][..], extra].concat());
    let v: Value = serde_json::from_slice(&out).unwrap();
    (v["overview"]["filter"].clone(), v["overview"]["messages"].as_u64().unwrap(), out)
}

#[test]
fn a_time_of_day_is_taken_on_the_capture_s_day_even_across_midnight() {
    let dir = TempDir::new("time-of-day");
    // The seed's first packet, 2017-10-26 04:27:28.743 UTC, moved to 23:59:00 the day before:
    // its exchange now runs over midnight.
    let first = 1_508_992_048_743_000i64;
    let to = 1_508_975_940_000_000i64;
    let (path, _) = seed_retimed(&dir, 0, to - first);
    let p = path.to_str().unwrap();
    let (_, all, _) = filtered_json(p, &[]);

    // 00:00 is the next day's, a minute after the first packet; 23:59:30 the first day's.
    // The login of the second session, at 00:00:47.559, is in the window; the first session's
    // messages, before midnight, are not.
    let (f, n, by_clock) = filtered_json(p, &["--since", "00:00", "--until", "00:01"]);
    assert_eq!(f["since"]["utc"], "2017-10-26T00:00:00.000000Z");
    assert_eq!(f["since"]["rel_s"], 60.0);
    assert_eq!(f["until"]["utc"], "2017-10-26T00:01:00.000000Z");
    assert!(f["user"].is_null() && f["conns"] == serde_json::json!([]));
    assert_eq!((n, all), (2, 7));
    let (_, _, by_offset) = filtered_json(p, &["--since", "+60s", "--until", "+120s"]);
    assert!(by_clock == by_offset, "a time of day and the same offset give one report");
    let (f, _, _) = filtered_json(p, &["--since", "23:59:30"]);
    assert_eq!(f["since"]["utc"], "2017-10-25T23:59:30.000000Z");
    assert!(f["until"].is_null());
    // In the zone the times are shown in: 08:00 at +08:00 is midnight UTC.
    let (f, _, _) = filtered_json(p, &["--since", "08:00", "--utc-offset", "+08:00"]);
    assert_eq!(f["since"]["utc"], "2017-10-26T00:00:00.000000Z");
    let (f, _, _) = filtered_json(p, &["--since", "08:00+08:00"]);
    assert_eq!(f["since"]["utc"], "2017-10-26T00:00:00.000000Z");

    // The text names the window as resolved.
    let text = String::from_utf8(run(&[
        "report",
        p,
        "--section",
        "overview",
        "--width",
        "200",
        "--user",
        "zl2",
        "--since",
        "00:00",
    ]))
    .unwrap();
    assert!(
        text.contains("user zl2, from 2017-10-26 00:00:00.000000 (+60.000s): 1 session shown"),
        "{text}"
    );
    // Without a filter there is no such row, and JSON says null.
    let (f, _, _) = filtered_json(p, &[]);
    assert!(f.is_null());
}

#[test]
fn local_times_follow_the_zone_s_summer_time() {
    // The TZif file of Europe/Berlin: +02:00 until 2017-10-29 01:00 UTC, +01:00 after. The
    // sample is of 2017-10-26, in summer time.
    let tz = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/Europe-Berlin.tzif");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/sample.pcapng");
    let report = |extra: &[&str]| {
        let out = Command::new(BIN)
            .env("TZ", &tz)
            .args([&["report", sample.to_str().unwrap(), "--local"][..], extra].concat())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let text = report(&["--section", "overview", "--width", "200"]);
    assert!(
        text.contains("2017-10-26 14:00:01.645439+02:00 → 2017-10-26 14:00:35.119342+02:00"),
        "{text}"
    );
    // A bound without a zone is read on the same clocks: 14:00:10 there is 12:00:10 UTC.
    for since in ["14:00:10", "2017-10-26 14:00:10"] {
        let v: Value = serde_json::from_str(&report(&["--json", "--since", since])).unwrap();
        assert_eq!(v["overview"]["filter"]["since"]["utc"], "2017-10-26T12:00:10.000000Z");
    }
    // dissect's lines, already per packet, agree.
    let out = Command::new(BIN)
        .env("TZ", &tz)
        .args(["dissect", "--local", "--format", "sdklog", sample.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("[2017/10/26 14:00:01:"));
}
