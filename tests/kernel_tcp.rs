//! The report on traffic that the kernel's TCP carried, not the synthesizer's: every session of
//! a synthesized capture is replayed over real loopback sockets (the bytes each side sent, in
//! the order they were sent; Nagle on for half the sessions; each side shuts its sending half
//! down after its last bytes, so half-closes happen in both orders) while `msyncdump live`
//! captures it. The kernel segments, coalesces and acknowledges as it likes, so the packets
//! differ; the messages may not. `dissect` must find the same messages per connection and
//! direction, `report` the same sessions, queues, exchanges, errors and messages, and none of
//! the TCP-level findings (loss, retransmission, impossible sequence numbers…) that a clean
//! loopback exchange does not have. The same for web sessions (deflate, fragments, pings,
//! LZ4); with packets dropped (nftables) before the capture point, where only the kernel's
//! retransmissions may show, and after it, where the segments captured twice must show; on
//! Linux "any" (a cooked link type) over ::1; and with the capture started when every session
//! is half-way through, where each direction's messages must be the tail of the original ones.
//!
//! Capturing needs root (or capture rights on the binary): without them the test says so on
//! standard error and stops. `KERNEL_TCP_DUMP=DIR` writes the two compared reports there as
//! `NAME-a.json` (synthesized) and `NAME-b.json` (replayed), for a diff when they differ.

#![cfg(feature = "live")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const SERVER_PORT: u16 = 6717;

/// What each side of one connection sent, in capture order: (from the client, bytes).
type Chunks = Vec<(bool, Vec<u8>)>;

fn u32_le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// The TCP payloads of a clean synthesized capture (little-endian pcap, Ethernet, IPv4),
/// grouped by connection in order of first packet.
fn sessions(pcap: &[u8]) -> Vec<Chunks> {
    assert!(matches!(u32_le(pcap, 0), 0xa1b2_c3d4 | 0xa1b2_3c4d), "a little-endian pcap");
    assert_eq!(u32_le(pcap, 20), 1, "Ethernet");
    let mut order: Vec<u16> = Vec::new();
    let mut by_port: BTreeMap<u16, Chunks> = BTreeMap::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let caplen = u32_le(pcap, at + 8) as usize;
        let frame = &pcap[at + 16..at + 16 + caplen];
        at += 16 + caplen;
        assert_eq!(be16(frame, 12), 0x0800, "IPv4");
        let ip = &frame[14..];
        assert_eq!(ip[9], 6, "TCP");
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(be16(ip, 2));
        let tcp = &ip[ihl..total];
        let (sport, dport) = (be16(tcp, 0), be16(tcp, 2));
        let payload = &tcp[usize::from(tcp[12] >> 4) * 4..];
        let up = dport == SERVER_PORT;
        let client = if up { sport } else { dport };
        let chunks = by_port.entry(client).or_insert_with(|| {
            order.push(client);
            Vec::new()
        });
        if !payload.is_empty() {
            chunks.push((up, payload.to_vec()));
        }
    }
    order.into_iter().map(|p| by_port.remove(&p).unwrap()).collect()
}

/// Reads `s` to its end, counting the bytes in `got` as they arrive.
fn drain(mut s: TcpStream, got: Arc<AtomicUsize>) -> thread::JoinHandle<()> {
    // A stuck replay fails the test instead of hanging it.
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    thread::spawn(move || {
        let mut buf = [0u8; 16384];
        while let Ok(k) = s.read(&mut buf) {
            if k == 0 {
                break;
            }
            got.fetch_add(k, Ordering::SeqCst);
        }
    })
}

/// Waits until `got` reaches `want`: a side answers only what it has received.
fn wait_for(got: &AtomicUsize, want: usize) {
    let start = Instant::now();
    while got.load(Ordering::SeqCst) < want {
        assert!(start.elapsed() < Duration::from_secs(30), "bytes never arrived");
        thread::sleep(Duration::from_micros(200));
    }
}

/// How one side ends its session.
#[derive(Clone, Copy)]
enum End {
    /// Shuts its sending half down and reads until the other side does too.
    Fin,
    /// Once it has received `.0` bytes, resets the connection (SO_LINGER 0, as an application
    /// killed or timing out would).
    Rst(usize),
    /// Shuts down like `Fin`, but the other side may reset the connection first.
    FinOrReset,
}

/// One side of a session: writes its chunks, each once the bytes the other side sent before
/// it have arrived (as in the original exchange: a pull follows its NOTICE, an answer its
/// request), then ends as `end` says. Returns (bytes sent, bytes received).
fn side(mut s: TcpStream, nodelay: bool, mine: Vec<(usize, Vec<u8>)>, end: End) -> (usize, usize) {
    s.set_nodelay(nodelay).unwrap();
    let got = Arc::new(AtomicUsize::new(0));
    let reader = drain(s.try_clone().unwrap(), got.clone());
    let mut sent = 0;
    for (before, bytes) in mine {
        wait_for(&got, before);
        s.write_all(&bytes).unwrap();
        sent += bytes.len();
    }
    match end {
        End::Fin => s.shutdown(Shutdown::Write).unwrap(),
        End::FinOrReset => {
            if let Err(e) = s.shutdown(Shutdown::Write) {
                assert_eq!(e.kind(), std::io::ErrorKind::NotConnected, "{e}");
            }
        }
        End::Rst(all) => {
            wait_for(&got, all);
            let linger = libc::linger { l_onoff: 1, l_linger: 0 };
            // SAFETY: a valid socket and a correctly sized option value.
            let rc = unsafe {
                libc::setsockopt(
                    s.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&linger as *const libc::linger).cast(),
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                )
            };
            assert_eq!(rc, 0);
            // The reader's clone keeps the socket open: shutting down both halves makes it
            // return, and the last close then sends the reset.
            s.shutdown(Shutdown::Read).unwrap();
        }
    }
    reader.join().unwrap();
    (sent, got.load(Ordering::SeqCst))
}

/// Replays each session over a fresh loopback connection to `listener`, one after another;
/// the two sides run in threads of their own. The client resets every session whose index
/// `reset` says, once it has everything.
fn replay(listener: &TcpListener, sessions: &[Chunks], reset: &dyn Fn(usize) -> bool) {
    let addr = listener.local_addr().unwrap();
    for (i, chunks) in sessions.iter().enumerate() {
        // Each side's chunks, with what the other side had sent before each.
        let (mut up, mut down) = (Vec::new(), Vec::new());
        let (mut sent_up, mut sent_down) = (0, 0);
        for (is_up, bytes) in chunks {
            if *is_up {
                up.push((sent_down, bytes.clone()));
                sent_up += bytes.len();
            } else {
                down.push((sent_up, bytes.clone()));
                sent_down += bytes.len();
            }
        }
        let nodelay = i % 2 == 0;
        let (client_end, server_end) =
            if reset(i) { (End::Rst(sent_down), End::FinOrReset) } else { (End::Fin, End::Fin) };
        // Accepted in its own thread: a handshake whose last ACK was lost completes only when
        // the client's first bytes arrive.
        let l = listener.try_clone().unwrap();
        let server = thread::spawn(move || side(l.accept().unwrap().0, nodelay, down, server_end));
        let client = side(TcpStream::connect(addr).unwrap(), nodelay, up, client_end);
        let server = server.join().unwrap();
        assert_eq!(client, (sent_up, sent_down), "session {i}: client sent and received");
        assert_eq!(server, (sent_down, sent_up), "session {i}: server sent and received");
    }
}

fn run(bin: &str, args: &[&str], file: &Path) -> String {
    let out = Command::new(bin).args(args).arg(file).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Per connection and direction, the decoded messages in order.
fn messages(ndjson: &str) -> BTreeMap<(u64, String), Vec<Value>> {
    let mut m: BTreeMap<(u64, String), Vec<Value>> = BTreeMap::new();
    for line in ndjson.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(v.get("error").is_none(), "no decode errors: {line}");
        let key = (v["conn"].as_u64().unwrap(), v["dir"].as_str().unwrap().to_string());
        m.entry(key).or_default().push(v["msync"].clone());
    }
    m
}

/// The fields `keys` of `v`.
fn pick(v: &Value, keys: &[&str]) -> Value {
    Value::Object(keys.iter().map(|k| (k.to_string(), v[*k].clone())).collect())
}

/// The rows of the report's table `name` that `keep` keeps, as `row` sees them.
fn rows(
    report: &Value,
    name: &str,
    keep: &dyn Fn(&Value) -> bool,
    row: &dyn Fn(&Value) -> Value,
) -> Vec<Value> {
    report[name].as_array().unwrap().iter().filter(|r| keep(r)).map(row).collect()
}

const SESSION_KEYS: &[&str] = &[
    "conn",
    "user",
    "resource",
    "device_uuid",
    "device_name",
    "os",
    "sdk_version",
    "msgs_up",
    "msgs_down",
    "bytes_up",
    "bytes_down",
    "errors",
    "decode_errors",
    "logout",
];

// Not `last_next_key`: the latest over all sessions, and the replay runs the sessions one
// after another where the original ran them side by side.
const QUEUE_KEYS: &[&str] =
    &["queue", "notices", "pulls", "metas", "unread_announced", "is_last_reached", "sessions"];

/// The parts of a report that depend on the messages only, not on packets, ports or times.
fn essence(report: &Value) -> Value {
    let all = |_: &Value| true;
    let sessions = rows(report, "sessions", &all, &|s| {
        let mut v = pick(s, SESSION_KEYS);
        v["login"] = s["login"].get("status").cloned().unwrap_or(Value::Null);
        v
    });
    let queues = rows(report, "queues", &all, &|q| {
        let mut v = pick(q, QUEUE_KEYS);
        v["drains"] = pick(&q["drains"], &["completed", "metas", "pages", "stalls"]);
        v
    });
    let latency =
        rows(report, "latency", &all, &|l| pick(l, &["kind", "count", "answered", "unanswered"]));
    let errors = rows(report, "errors", &all, &|e| {
        pick(e, &["code", "count", "commands", "reasons", "sessions", "users", "source"])
    });
    // Findings about the messages; the TCP-level ones are checked apart, and slow exchanges
    // depend on the replay's timing.
    let about_messages = |f: &Value| {
        let kind = f["kind"].as_str().unwrap();
        !TCP_LEVEL.contains(&kind) && kind != "slow_exchange"
    };
    let findings =
        rows(report, "findings", &about_messages, &|f| pick(f, &["kind", "count", "conns"]));
    let overview =
        ["messages", "per_command", "msync_connections", "sessions", "users", "decode_errors"];
    serde_json::json!({
        "overview": pick(&report["overview"], &overview),
        "sessions": sessions,
        "queues": queues,
        "latency": latency,
        "errors": errors,
        "messages": report["messages"],
        "findings": findings,
    })
}

/// Findings about the packets, which differ between the synthesizer's TCP and the kernel's.
const TCP_LEVEL: &[&str] = &[
    "lost_segment",
    "retransmission",
    "out_of_order",
    "overlap",
    "reassembly_buffer_limit",
    "snaplen_cut",
    "bad_sequence",
    "rst",
    "midstream",
    "skipped_bytes",
    "capture_drops",
];

/// Loss of the test port's packets on both sides of the capture point, each rule counting what
/// it dropped. Before it (netfilter's output hook comes before the device, where libpcap sees
/// packets), a random `percent`: the capture holds the kernel's retransmissions and never the
/// lost originals, so a lost segment whose retransmission looks like a first transmission
/// shows nowhere (most do, and a run with no visible retransmission at all happens). After it
/// (the input hook of loopback's receive path), every 20th segment with PSH set, from the first
/// one: the capture holds the original and its retransmission, so each such loss must show.
/// Removed when dropped, also on a failure.
struct Loss {
    table: String,
}

/// What the rules of a [`Loss`] dropped.
#[derive(Debug)]
struct Dropped {
    /// Packets dropped before the capture point.
    before: u64,
    /// Segments with PSH (so with data) dropped after it.
    after: u64,
}

impl Loss {
    /// Fails the test where nftables cannot be used: it runs only where capturing works, that
    /// is as root, where `.ci/run` installs nftables.
    fn new(port: u16, percent: u32) -> Loss {
        let table = format!("msyncdump_test_{}_{port}", std::process::id());
        let random = format!("numgen random mod 100 < {percent} counter drop");
        let every = "tcp flags & psh == psh numgen inc mod 20 == 0 counter drop";
        let rules = format!(
            "table inet {table} {{\n\
             chain out {{\n type filter hook output priority 0;\n\
             tcp dport {port} {random}\n tcp sport {port} {random}\n}}\n\
             chain in {{\n type filter hook input priority 0;\n\
             tcp dport {port} {every}\n tcp sport {port} {every}\n}}\n}}\n"
        );
        let mut nft = Command::new("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nft (Debian: apt-get install nftables)");
        nft.stdin.take().unwrap().write_all(rules.as_bytes()).unwrap();
        let out = nft.wait_with_output().unwrap();
        assert!(out.status.success(), "nft: {}", String::from_utf8_lossy(&out.stderr));
        Loss { table }
    }

    /// What the rules dropped so far, read from their counters.
    fn dropped(&self) -> Dropped {
        let out =
            Command::new("nft").args(["list", "table", "inet", &self.table]).output().unwrap();
        assert!(out.status.success(), "nft: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        let chain = |name: &str| -> u64 {
            let body = text.split(&format!("chain {name} {{")).nth(1).expect(name);
            let body = body.split('}').next().unwrap();
            let counts: Vec<u64> = body
                .split("counter packets ")
                .skip(1)
                .map(|rest| rest.split(' ').next().unwrap().parse().unwrap())
                .collect();
            assert_eq!(counts.len(), 2, "two counted rules in chain {name}: {text}");
            counts.iter().sum()
        };
        Dropped { before: chain("out"), after: chain("in") }
    }
}

impl Drop for Loss {
    fn drop(&mut self) {
        let _ = Command::new("nft").args(["delete", "table", "inet", &self.table]).status();
    }
}

/// Synthesizes a clean capture (the replay needs every byte) into `dir`; its path and sessions.
fn synthesize(bin: &str, dir: &Path, synth: &[&str]) -> (PathBuf, Vec<Chunks>) {
    let orig = dir.join("synth.pcap");
    let st = Command::new(bin)
        .args(["synth", "--no-truth", "--server-port", &SERVER_PORT.to_string()])
        .args(synth)
        .arg("-w")
        .arg(&orig)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let sessions = sessions(&std::fs::read(&orig).unwrap());
    (orig, sessions)
}

/// `msyncdump live` on `iface` for the test's port, saving to `saved`; None (said on standard
/// error) where capturing is not allowed.
fn start_live(bin: &str, iface: &str, port: u16, saved: &Path) -> Option<Child> {
    let mut child = Command::new(bin)
        .args(["live", "-i", iface, "-f", &format!("tcp port {port}"), "--duration", "120s", "-q"])
        .args(["--server-port", &port.to_string(), "-w"])
        .arg(saved)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Give libpcap time to open the device before the replay starts.
    thread::sleep(Duration::from_millis(800));
    if let Ok(Some(status)) = child.try_wait() {
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert!(!status.success());
        assert!(
            err.contains("permission") || err.contains("not permitted"),
            "a refused capture must say why: {err}"
        );
        eprintln!("SKIPPED: cannot capture here (not root, no capture rights): {err}");
        return None;
    }
    Some(child)
}

/// Stops `live` cleanly (as Ctrl-C does) right after the last packets were sent, and checks
/// that it dropped nothing: what the kernel still holds must be read before it stops.
fn stop_live(child: Child) {
    let st = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(" 0 dropped by kernel"), "a complete capture: {stderr}");
}

/// The tests of this file run one at a time: the kernel's TCP counters they read are the
/// machine's, and a replay on a machine busy with another one may see timers fire early.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    // A failed test poisons the lock; the next one may still run.
    ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The segments the kernel's TCP has retransmitted so far (`RetransSegs` of /proc/net/snmp).
fn kernel_retransmissions() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap();
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp: "));
    let (names, values) = (tcp.next().unwrap(), tcp.next().unwrap());
    let at = names.split(' ').position(|n| n == "RetransSegs").expect("RetransSegs");
    values.split(' ').nth(at).unwrap().parse().unwrap()
}

/// What a replay showed beyond the agreement of the reports.
struct Replayed {
    /// The kinds of the replay's TCP-level findings.
    tcp: Vec<String>,
    /// What the loss rules dropped, if there were any.
    dropped: Option<Dropped>,
    /// The segments the kernel retransmitted during the replay.
    retransmitted: u64,
}

impl Replayed {
    /// Over a lossless path the TCP-level findings are `want`, and retransmissions only where
    /// the kernel made them (a loss probe or a timeout that fired before a late ACK came).
    fn assert_clean(&self, want: &[&str]) {
        let mut tcp = self.tcp.clone();
        if self.retransmitted > 0 {
            tcp.retain(|k| k != "retransmission" && k != "overlap");
        }
        assert_eq!(
            tcp, want,
            "a clean loopback exchange ({} kernel retransmissions): {:?}",
            self.retransmitted, self.tcp
        );
    }
}

/// Synthesizes a capture with `synth`, replays its sessions on loopback under `live -i iface`
/// (losing `loss` percent of the packets first, if given; the client resetting the sessions
/// that `reset` picks), and checks that dissect and report agree and how each session ended.
/// None where capturing is not allowed.
fn replay_and_compare(
    name: &str,
    iface: &str,
    synth: &[&str],
    loss: Option<u32>,
    reset: &dyn Fn(usize) -> bool,
) -> Option<Replayed> {
    let bin = env!("CARGO_BIN_EXE_msyncdump");
    let dir = std::env::temp_dir().join(format!("msyncdump-kernel-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (orig, sessions) = synthesize(bin, &dir, synth);
    // The cooked capture also goes over IPv6.
    let listener =
        TcpListener::bind(if iface == "any" { "[::1]:0" } else { "127.0.0.1:0" }).unwrap();
    let port = listener.local_addr().unwrap().port();
    let saved = dir.join("kernel.pcapng");
    let child = start_live(bin, iface, port, &saved)?;
    let loss = loss.map(|p| Loss::new(port, p));
    let retransmitted = kernel_retransmissions();
    replay(&listener, &sessions, reset);
    stop_live(child);
    let retransmitted = kernel_retransmissions() - retransmitted;
    let dropped = loss.as_ref().map(Loss::dropped);
    drop(loss);

    let info = run(bin, &["info"], &saved);
    let link = if iface == "any" { "LINUX_SLL" } else { "EN10MB" };
    assert!(info.contains(&format!("link type {link}")), "{info}");
    let port_arg = port.to_string();
    let a = messages(&run(bin, &["dissect", "--json"], &orig));
    let b = messages(&run(bin, &["dissect", "--json", "--server-port", &port_arg], &saved));
    // Two empty outputs would agree too: the original must hold every session's messages.
    let total: usize = a.values().map(Vec::len).sum();
    assert!(a.len() >= sessions.len() && total > 4 * sessions.len(), "{total} messages");
    assert_eq!(a.len(), b.len(), "directions with messages");
    for (key, msgs) in &a {
        assert_eq!(Some(msgs), b.get(key), "messages of connection {} {}", key.0, key.1);
    }

    let ra: Value = serde_json::from_str(&run(bin, &["report", "--json"], &orig)).unwrap();
    let rb: Value =
        serde_json::from_str(&run(bin, &["report", "--json", "--server-port", &port_arg], &saved))
            .unwrap();
    // Sharding the kernel's connections over two threads changes nothing.
    let rb2: Value = serde_json::from_str(&run(
        bin,
        &["report", "--json", "-j", "2", "--server-port", &port_arg],
        &saved,
    ))
    .unwrap();
    assert!(rb == rb2, "report -j 2 differs from report");
    let (ea, eb) = (essence(&ra), essence(&rb));
    if let Ok(d) = std::env::var("KERNEL_TCP_DUMP") {
        let write = |n: &str, v: &Value| {
            std::fs::write(format!("{d}/{name}-{n}.json"), serde_json::to_string_pretty(v).unwrap())
        };
        write("a", &ea).unwrap();
        write("b", &eb).unwrap();
    }
    for part in ["overview", "sessions", "queues", "latency", "errors", "messages", "findings"] {
        assert_eq!(ea[part], eb[part], "report section {part}");
    }
    // Every byte was delivered, so every byte was captured at least once.
    assert_eq!(rb["overview"]["gap_bytes"], 0);
    assert_eq!(rb["sessions"].as_array().unwrap().len(), sessions.len());
    for (i, row) in rb["sessions"].as_array().unwrap().iter().enumerate() {
        let end = row["close"].as_str().unwrap();
        let want = if reset(i) { "RST" } else { "FIN" };
        assert!(end.ends_with(want), "session {i} ends with {want}: {end}");
    }
    let host = if iface == "any" { "[::1]:" } else { "127.0.0.1:" };
    for s in rb["sessions"].as_array().unwrap() {
        assert!(s["client"].as_str().unwrap().starts_with(host), "{}", s["client"]);
    }
    std::fs::remove_dir_all(&dir).ok();
    let tcp = rb["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .filter(|k| TCP_LEVEL.contains(&k.as_str()))
        .collect();
    Some(Replayed { tcp, dropped, retransmitted })
}

#[test]
fn the_kernels_tcp_carries_the_same_report() {
    let _one = one_at_a_time();
    let synth = ["--seed", "21", "--clients", "24", "--duration", "40", "--zlib", "0.3"];
    let more = ["--errors", "0.1", "--unanswered", "0.05"];
    let args: Vec<&str> = synth.iter().chain(&more).copied().collect();
    // Every fourth client resets its connection once it has everything.
    if let Some(r) = replay_and_compare("tcp", "lo", &args, None, &|i| i % 4 == 3) {
        r.assert_clean(&["rst"]);
    }
}

#[test]
fn the_kernels_tcp_carries_web_sessions_with_deflate_and_lz4() {
    let _one = one_at_a_time();
    let args = ["--seed", "22", "--clients", "12", "--duration", "30", "--websocket"];
    let ws = ["--ws-deflate", "--ws-fragment", "0.2", "--ws-ping", "0.2", "--lz4", "bi"];
    let args: Vec<&str> = args.iter().chain(&ws).copied().collect();
    if let Some(r) = replay_and_compare("ws", "lo", &args, None, &|_| false) {
        r.assert_clean(&[]);
    }
}

#[test]
fn the_kernels_retransmissions_fill_what_a_lossy_path_dropped() {
    let _one = one_at_a_time();
    let args = ["--seed", "23", "--clients", "12", "--duration", "30", "--zlib", "0.3"];
    if let Some(Replayed { tcp, dropped, retransmitted }) =
        replay_and_compare("lossy", "lo", &args, Some(4), &|_| false)
    {
        let dropped = dropped.unwrap();
        // The random rules meet hundreds of packets: none dropped is a one-in-a-million run.
        assert!(dropped.before > 0 && dropped.after > 0, "the loss happened: {dropped:?}");
        assert!(retransmitted > 0, "the kernel retransmitted nothing");
        // Loss shows only as the retransmissions that repaired it; a segment lost after the
        // capture point was captured twice.
        for kind in &tcp {
            assert!(
                matches!(kind.as_str(), "retransmission" | "out_of_order" | "overlap"),
                "only repaired loss: {tcp:?}"
            );
        }
        assert!(
            tcp.iter().any(|k| k == "retransmission" || k == "overlap"),
            "{dropped:?}, yet no segment captured twice: {tcp:?}"
        );
    }
}

#[test]
fn a_cooked_capture_on_the_any_interface_carries_the_same_report_over_ipv6() {
    let _one = one_at_a_time();
    // Linux "any": link type LINUX_SLL2 (or SLL on older libpcap), not Ethernet; and ::1.
    let args = ["--seed", "24", "--clients", "8", "--duration", "30", "--zlib", "0.3"];
    if let Some(r) = replay_and_compare("any", "any", &args, None, &|_| false) {
        r.assert_clean(&[]);
    }
}

/// A session open between two parts of its replay. Writes come from one thread, each once
/// the bytes the other side sent before it have arrived.
struct Open {
    client: TcpStream,
    server: TcpStream,
    /// Received by the client (sent down) and by the server (sent up).
    down: Arc<AtomicUsize>,
    up: Arc<AtomicUsize>,
    readers: Vec<thread::JoinHandle<()>>,
    sent_up: usize,
    sent_down: usize,
}

impl Open {
    /// Waits for the server side to be accepted before anything is written: fine on a
    /// lossless path, where the handshake's last ACK cannot be lost (see [`replay`]).
    fn new(listener: &TcpListener) -> Open {
        let l = listener.try_clone().unwrap();
        let accept = thread::spawn(move || l.accept().unwrap().0);
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let server = accept.join().unwrap();
        let (down, up) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let readers = vec![
            drain(client.try_clone().unwrap(), down.clone()),
            drain(server.try_clone().unwrap(), up.clone()),
        ];
        Open { client, server, down, up, readers, sent_up: 0, sent_down: 0 }
    }

    fn play(&mut self, chunks: &[(bool, Vec<u8>)]) {
        for (is_up, bytes) in chunks {
            if *is_up {
                wait_for(&self.down, self.sent_down);
                self.client.write_all(bytes).unwrap();
                self.sent_up += bytes.len();
            } else {
                wait_for(&self.up, self.sent_up);
                self.server.write_all(bytes).unwrap();
                self.sent_down += bytes.len();
            }
        }
    }

    fn close(self) {
        self.client.shutdown(Shutdown::Write).unwrap();
        self.server.shutdown(Shutdown::Write).unwrap();
        for r in self.readers {
            r.join().unwrap();
        }
        assert_eq!(self.down.load(Ordering::SeqCst), self.sent_down);
        assert_eq!(self.up.load(Ordering::SeqCst), self.sent_up);
    }
}

#[test]
fn sessions_picked_up_mid_stream_keep_the_messages_after_the_start() {
    let _one = one_at_a_time();
    let bin = env!("CARGO_BIN_EXE_msyncdump");
    let dir = std::env::temp_dir().join(format!("msyncdump-kernel-mid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let args = ["--seed", "25", "--clients", "16", "--duration", "40", "--zlib", "0.3"];
    let (orig, sessions) = synthesize(bin, &dir, &args);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Every session is open and half-way through when the capture starts.
    let mut open: Vec<Open> = sessions.iter().map(|_| Open::new(&listener)).collect();
    for (o, chunks) in open.iter_mut().zip(&sessions) {
        o.play(&chunks[..chunks.len() / 2]);
    }
    let clients: Vec<u16> = open.iter().map(|o| o.client.local_addr().unwrap().port()).collect();
    let saved = dir.join("mid.pcapng");
    let Some(child) = start_live(bin, "lo", port, &saved) else { return };
    for (mut o, chunks) in open.into_iter().zip(&sessions) {
        o.play(&chunks[chunks.len() / 2..]);
        o.close();
    }
    stop_live(child);

    // Per session and direction, the messages found are the tail of the original ones.
    let port_arg = port.to_string();
    let by_session = |ndjson: &str, session_of: &dyn Fn(&Value) -> usize| {
        let mut m: BTreeMap<(usize, String), Vec<Value>> = BTreeMap::new();
        for line in ndjson.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            assert!(v.get("error").is_none(), "no decode errors: {line}");
            // Bytes skipped before the first whole message are said on lines of their own.
            if v.get("msync").is_none() {
                assert!(v.get("skipped").is_some(), "{line}");
                continue;
            }
            let key = (session_of(&v), v["dir"].as_str().unwrap().to_string());
            m.entry(key).or_default().push(v["msync"].clone());
        }
        m
    };
    let a = by_session(&run(bin, &["dissect", "--json"], &orig), &|v| {
        usize::try_from(v["conn"].as_u64().unwrap()).unwrap()
    });
    let b =
        by_session(&run(bin, &["dissect", "--json", "--server-port", &port_arg], &saved), &|v| {
            let client = v["client"].as_str().unwrap();
            let p: u16 = client.rsplit(':').next().unwrap().parse().unwrap();
            clients.iter().position(|&c| c == p).unwrap()
        });
    let mut found = 0;
    for (key, tail) in &b {
        let all = &a[key];
        assert!(
            all.ends_with(tail),
            "session {} {}: {} messages, not the last of its {}",
            key.0,
            key.1,
            tail.len(),
            all.len()
        );
        found += tail.len();
    }
    let total: usize = a.values().map(Vec::len).sum();
    eprintln!("mid-stream: {found} of {total} messages after the start");
    assert!(found * 5 >= total * 2, "the second halves decoded: {found} of {total}");

    let r: Value =
        serde_json::from_str(&run(bin, &["report", "--json", "--server-port", &port_arg], &saved))
            .unwrap();
    let rows = r["sessions"].as_array().unwrap();
    assert_eq!(rows.len(), sessions.len());
    assert!(rows.iter().all(|s| s["midstream"] == true), "every session picked up mid-stream");
    assert_eq!(r["overview"]["decode_errors"], 0);
    assert_eq!(r["overview"]["gap_bytes"], 0);
    let kinds: Vec<&str> =
        r["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"midstream"), "{kinds:?}");
    for bad in ["lost_segment", "retransmission", "out_of_order", "bad_sequence", "rst"] {
        assert!(!kinds.contains(&bad), "{bad} in {kinds:?}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
