//! The `msyncdump` binary driven on the committed captures in `captures/`, each compared with
//! the expected output committed beside it. `UPDATE_EXPECTED=1 cargo test --test cli` rewrites
//! the expected files (review the diff before committing).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_msyncdump"))
}

fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures")
}

fn run(args: &[&str]) -> Output {
    let out = bin().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic running {args:?}: {stderr}");
    out
}

fn stdout(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Compares `got` with the committed file, or rewrites it under UPDATE_EXPECTED=1.
fn check_expected(name: &str, got: &str) {
    let path = captures().join(name);
    if std::env::var_os("UPDATE_EXPECTED").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{}: {e} (run with UPDATE_EXPECTED=1 to create it)", path.display())
    });
    if want != got {
        let (w, g): (Vec<_>, Vec<_>) = (want.lines().collect(), got.lines().collect());
        let first = w.iter().zip(&g).position(|(a, b)| a != b).unwrap_or(w.len().min(g.len()));
        panic!(
            "{name} differs at line {}:\n  want: {}\n  got:  {}\n({} lines wanted, {} got; UPDATE_EXPECTED=1 rewrites)",
            first + 1,
            w.get(first).unwrap_or(&"<end>"),
            g.get(first).unwrap_or(&"<end>"),
            w.len(),
            g.len()
        );
    }
}

const SAMPLES: &[&str] = &[
    "seed.pcap",
    "sample.pcapng",
    "websdk-plain.pcap",
    "websdk-lz4.pcap",
    "websdk-lz4-bi.pcap",
    "websdk-deflate.pcap",
    "websdk-lz4-deflate.pcap",
    "websdk-chromium-plain.pcap",
    "websdk-chromium-lz4-deflate.pcap",
    "websdk-chromium-heartbeat.pcap",
    "websdk-chromium-kicked.pcap",
    "websdk-chromium-reconnect.pcap",
    "websdk-chromium-login-refused.pcap",
    "websdk-chromium-lossy.pcap",
    "websdk-chromium-rich.pcap",
    "websdk-v4.8-sockjs.pcap",
    "websdk-v4.17-lz4-unoffered.pcap",
    "ws-sample.pcap",
    "dumpcap-lo.pcapng",
];

#[test]
fn summary_output_of_every_sample_is_as_committed() {
    for s in SAMPLES {
        let cap = captures().join(s);
        let got = stdout(&["dissect", cap.to_str().unwrap()]);
        check_expected(&format!("{s}.summary.txt"), &got);
    }
}

#[test]
fn json_output_of_every_sample_is_as_committed_and_valid() {
    for s in SAMPLES {
        let cap = captures().join(s);
        let got = stdout(&["dissect", "--json", cap.to_str().unwrap()]);
        for line in got.lines() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{s}: invalid JSON line {line}: {e}"));
            assert!(v["frame"].as_u64().unwrap() >= 1);
            assert!(v["conn"].is_u64());
            assert!(v["dir"] == "c2s" || v["dir"] == "s2c");
            if let Some(m) = v.get("msync") {
                assert!(v["ts"].as_str().unwrap().ends_with('Z'));
                assert!(v["client"].is_string() && v["server"].is_string());
                assert!(v["transport"] == "tcp" || v["transport"] == "websocket");
                assert!(
                    m["payload"].is_null()
                        || m["payload"]["@type"].as_str().unwrap().starts_with("easemob.pb.")
                );
            }
        }
        check_expected(&format!("{s}.jsonl"), &got);
    }
}

#[test]
fn one_and_two_threads_give_the_same_output() {
    // The default with a file and a pipe is several threads; `-j 1` is the single-threaded
    // path. Three workers share out batches unevenly over small captures.
    let formats: &[&[&str]] =
        &[&[], &["-V"], &["--format", "sdklog"], &["--json"], &["-q"], &["--transport", "tcp"]];
    for s in SAMPLES {
        let cap = captures().join(s);
        for f in formats {
            let mut one = vec!["dissect", "-j", "1"];
            let mut two = vec!["dissect", "-j", "3"];
            one.extend_from_slice(f);
            two.extend_from_slice(f);
            one.push(cap.to_str().unwrap());
            two.push(cap.to_str().unwrap());
            let (a, b) = (run(&one), run(&two));
            assert_eq!(a.status.code(), b.status.code(), "{s} {f:?}");
            assert!(a.stdout == b.stdout, "{s} {f:?}: stdout differs");
            assert_eq!(String::from_utf8_lossy(&a.stderr), String::from_utf8_lossy(&b.stderr));
        }
    }
}

#[test]
fn dissect_prints_only_the_connections_and_times_asked_for() {
    // Messages and error lines (gaps, skipped bytes) of connection 1 and 2, as the committed
    // output of the whole capture has them: its connection is the third column of a message
    // line, the second of an error line.
    let sample = captures().join("sample.pcapng");
    let whole = fs::read_to_string(captures().join("sample.pcapng.summary.txt")).unwrap();
    let is_error = |l: &str| l.split_whitespace().nth(2).is_some_and(|x| x.starts_with('['));
    let conn_of =
        |l: &str| l.split_whitespace().nth(if is_error(l) { 1 } else { 2 }).map(str::to_owned);
    let want: String = whole
        .lines()
        .filter(|l| conn_of(l).is_some_and(|c| c == "1" || c == "2"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(want.contains("[c2s gap: 51 bytes lost"), "an error line of conn 1 is among them");
    for (j, conns) in
        [("1", ["--conn", "1", "--conn", "2"]), ("3", ["--conn", "1,2", "--conn", "1"])]
    {
        let args = [&["dissect", "-j", j][..], &conns, &[sample.to_str().unwrap()]].concat();
        let out = run(&args);
        assert_eq!(String::from_utf8(out.stdout).unwrap(), want, "-j {j}");
        let tally = String::from_utf8(out.stderr).unwrap();
        // The tally counts the whole capture, and says how much was selected.
        assert!(tally.contains(", 120 messages,"), "{tally}");
        let n = want.lines().filter(|l| !is_error(l)).count();
        assert!(tally.contains(&format!(", {n} selected by --conn 1, 2\n")), "{tally}");
    }

    // The seed's send and its ack, 10.239 s and 10.290 s after the first packet (04:27:28.743).
    let seed = captures().join("seed.pcap");
    let seed = seed.to_str().unwrap();
    let frames = |args: &[&str]| -> Vec<String> {
        stdout(&[&["dissect", "-j", "1"][..], args, &[seed]].concat())
            .lines()
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect()
    };
    for window in [
        &["--since", "+10", "--until", "10.3"][..],
        &["--since", "04:27:38", "--until", "04:27:39.1"],
        &["--since", "2017-10-26T04:27:38Z", "--until", "2017-10-26 04:27:39.033"],
        &["--since", "12:27:38", "--until", "12:27:39.1", "--utc-offset", "+08:00"],
    ] {
        assert_eq!(frames(window), ["7", "9"], "{window:?}");
    }
    assert_eq!(frames(&["--since", "+100"]), ["14", "16"]);
    assert_eq!(frames(&["--until", "+5"]), ["1", "3", "5"]);
    assert!(frames(&["--conn", "1", "--until", "+5"]).is_empty());
    // The first packet is the run's: a first file that cannot be read does not count.
    let missing =
        run(&["dissect", "--since", "+10", "--until", "10.3", "/nonexistent/x.pcap", seed]);
    assert_eq!(missing.status.code(), Some(2));
    let got: Vec<String> = String::from_utf8_lossy(&missing.stdout)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(got, ["7", "9"]);

    // Standard input is read once: a time counted from its first packet cannot be resolved.
    let piped = |bound: &str| {
        let mut child = bin()
            .args(["dissect", "--since", bound, "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let bytes = fs::read(seed).unwrap();
        // Refused, it exits without reading: the pipe may be closed before all is written.
        let _ = child.stdin.take().unwrap().write_all(&bytes);
        child.wait_with_output().unwrap()
    };
    let refused = piped("+10");
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("need a date and time"));
    let dated = piped("2017-10-26T04:29:00Z");
    assert!(dated.status.success());
    assert_eq!(String::from_utf8_lossy(&dated.stdout).lines().count(), 2);
}

#[test]
fn verbose_and_report_of_the_seed_are_as_committed() {
    let cap = captures().join("seed.pcap");
    check_expected("seed.pcap.verbose.txt", &stdout(&["dissect", "-V", cap.to_str().unwrap()]));
}

#[test]
fn sdklog_reproduces_the_seed_log_field_for_field() {
    // The seed's log lines are the device's local time, UTC+8. The seed's wrapped lines were
    // joined with their lost spaces restored, and its send line's one unbalanced closing brace
    // dropped (tests/data/seed-sdklog.txt).
    let cap = captures().join("seed.pcap");
    let got =
        stdout(&["dissect", "--format", "sdklog", "--utc-offset", "+08:00", cap.to_str().unwrap()]);
    let want = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/seed-sdklog.txt"),
    )
    .unwrap();
    assert_eq!(got, want);
    // Against the seed file itself, ignoring white space (its lines are wrapped at 80 columns).
    let seed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/msync-protocol-seed.txt");
    if let Ok(seed) = std::fs::read_to_string(seed) {
        let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        let seed = squash(&seed);
        for line in got.lines().filter(|l| l.starts_with('{')) {
            let l = squash(line);
            // The send line's extra brace in the seed: compare without the final one.
            assert!(seed.contains(&l[..l.len() - 1]), "not in the seed: {line}");
        }
    }
}

#[test]
fn secrets_are_redacted_unless_asked() {
    let cap = captures().join("seed.pcap");
    let cap = cap.to_str().unwrap();
    for args in [
        vec!["dissect", cap],
        vec!["dissect", "-V", cap],
        vec!["dissect", "--json", cap],
        vec!["dissect", "--format", "sdklog", cap],
    ] {
        let out = stdout(&args);
        assert!(!out.contains("zl2-secret-pw"), "{args:?} leaks the password");
        assert!(!out.contains("YWMtQm9ndXNUb2tlbk"), "{args:?} leaks the token");
    }
    let shown = stdout(&["dissect", "-V", "--show-secrets", cap]);
    assert!(shown.contains("password"));
    assert!(!shown.contains("password: ***"));
}

#[test]
fn tally_goes_to_stderr() {
    let out = run(&["dissect", captures().join("seed.pcap").to_str().unwrap()]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("17 packets, 2 TCP connections (2 MSync, 0 other), 7 messages, 0 decode errors, 0 gap bytes"),
        "{err}"
    );
}

#[test]
fn gzip_and_pcapng_read_the_same_messages() {
    let dir = tempdir("gz");
    let raw = std::fs::read(captures().join("seed.pcap")).unwrap();
    let gz = dir.join("seed.pcap.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(&raw).unwrap();
    enc.finish().unwrap();
    let plain = stdout(&["dissect", captures().join("seed.pcap").to_str().unwrap()]);
    assert_eq!(stdout(&["dissect", gz.to_str().unwrap()]), plain);
    let ng = dir.join("seed.pcapng");
    let w = run(&["synth", "--seed-exchange", "--format", "pcapng", "-w", ng.to_str().unwrap()]);
    assert!(w.status.success());
    assert_eq!(stdout(&["dissect", ng.to_str().unwrap()]), plain);
    // Standard input.
    let mut child =
        bin().args(["dissect", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(&raw).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), plain);
}

/// seed.pcap.gz padded with zeros (as tar and dd leave it; `gzip -t` accepts it) reads as
/// the file itself; followed by other bytes, it reads whole too, with a warning saying where
/// the trailing data starts, and exit 0: no record is truncated and nothing failed.
#[test]
fn bytes_after_the_last_gzip_member() {
    let dir = tempdir("gztail");
    let raw = std::fs::read(captures().join("seed.pcap")).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&raw).unwrap();
    let gz = enc.finish().unwrap();
    let plain = stdout(&["dissect", captures().join("seed.pcap").to_str().unwrap()]);
    let tally = "17 packets, 2 TCP connections (2 MSync, 0 other), 7 messages";

    let padded = dir.join("padded.pcap.gz");
    let mut bytes = gz.clone();
    bytes.resize(gz.len() + 512, 0);
    std::fs::write(&padded, &bytes).unwrap();
    let out = run(&["dissect", padded.to_str().unwrap()]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), plain);
    assert!(!err.contains("error:") && !err.contains("warning:"), "{err}");
    assert!(err.contains(tally), "{err}");

    let tail = dir.join("tail.pcap.gz");
    let mut bytes = gz.clone();
    bytes.extend_from_slice(b"garbage!");
    std::fs::write(&tail, &bytes).unwrap();
    let out = run(&["dissect", tail.to_str().unwrap()]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), plain);
    let want = format!(
        "msyncdump: warning: {}: offset {}: trailing data after the gzip stream (from byte {} of \
         the file), ignored\n",
        tail.display(),
        raw.len(),
        gz.len()
    );
    assert!(err.contains(&want), "{err}");
    assert!(!err.contains("truncated") && !err.contains("error:"), "{err}");
    assert!(err.contains(tally), "{err}");
}

#[test]
fn several_files_continue_the_numbering() {
    let a = captures().join("seed.pcap");
    let b = captures().join("sample.pcapng");
    let out = stdout(&["dissect", "--json", a.to_str().unwrap(), b.to_str().unwrap()]);
    let frames: Vec<u64> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["frame"].as_u64().unwrap())
        .collect();
    let alone = stdout(&["dissect", "--json", b.to_str().unwrap()]).lines().count();
    assert_eq!(frames.len(), 7 + alone);
    assert!(frames[..7].iter().all(|&f| f <= 17));
    assert!(
        frames[7..].iter().all(|&f| f > 17),
        "the second file's records follow the first's: {frames:?}"
    );
}

#[test]
fn not_a_capture_is_a_one_line_error_with_the_offset() {
    let dir = tempdir("bad");
    let f = dir.join("garbage.pcap");
    std::fs::write(&f, b"this is not a capture file at all").unwrap();
    let out = run(&["dissect", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("garbage.pcap: offset 0: not a pcap or pcapng capture"), "{err}");
    let missing = run(&["dissect", "/nonexistent/x.pcap"]);
    assert_eq!(missing.status.code(), Some(2));
    // A report of zeros would look like an answer: with no packet read and errors, only the
    // errors are printed. A capture that is readable but empty still gets its (empty) report.
    for args in [&["report", "/nonexistent/x.pcap"][..], &["report", "--json", f.to_str().unwrap()]]
    {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&out.stdout));
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    let empty = dir.join("no-packets.pcap");
    let mut header = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    header.extend_from_slice(&[0; 8]);
    header.extend_from_slice(&65535u32.to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes());
    std::fs::write(&empty, &header).unwrap();
    let out = run(&["report", "--no-color", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("0 packets, 0 TCP connections"), "{text}");
    // Every section without rows says so in one word, Messages included.
    assert!(text.contains("Messages\nnone\n"), "{text}");
}

/// A zstd capture damaged inside a compressed block: one plain error line naming the file and
/// offset and what is wrong, not the decoder's nested `Debug` text.
#[test]
fn damaged_zstd_block_is_one_plain_error_line() {
    let dir = tempdir("zst");
    let raw = std::fs::read(captures().join("seed.pcap")).unwrap();
    let packed =
        ruzstd::encoding::compress_to_vec(&raw[..], ruzstd::encoding::CompressionLevel::Fastest);
    let f = dir.join("damaged.pcap.zst");
    // The first change past the middle that the decoder notices as bad data (rather than as a
    // checksum that does not match).
    for at in packed.len() / 2..packed.len() {
        let mut bad = packed.clone();
        bad[at] ^= 0x5a;
        std::fs::write(&f, &bad).unwrap();
        let out = run(&["dissect", f.to_str().unwrap()]);
        let err = String::from_utf8(out.stderr).unwrap();
        let Some(line) = err.lines().find(|l| l.contains("zstd") && !l.contains("checksum")) else {
            continue;
        };
        assert_eq!(out.status.code(), Some(2), "{err}");
        let head = format!("msyncdump: error: {}: offset ", f.display());
        assert!(line.starts_with(&head), "{line}");
        assert!(line.contains(": zstd: corrupt compressed block"), "{line}");
        assert!(!line.contains(['{', '}']) && !line.contains("Error("), "{line}");
        assert_eq!(err.lines().filter(|l| l.contains("error:")).count(), 1, "{err}");
        return;
    }
    panic!("no change to the compressed bytes made the decoder fail");
}

#[test]
fn truncated_last_record_prints_everything_before_it_then_warns() {
    let dir = tempdir("trunc");
    let cap = captures().join("sample.pcapng");
    let raw = std::fs::read(&cap).unwrap();
    let full = stdout(&["dissect", cap.to_str().unwrap()]);
    let f = dir.join("cut.pcapng");
    std::fs::write(&f, &raw[..raw.len() / 2]).unwrap();
    let out = run(&["dissect", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("warning:")
            && err.contains("cut.pcapng: offset")
            && err.contains("truncated record"),
        "{err}"
    );
    let got = String::from_utf8(out.stdout).unwrap();
    let n = got.lines().count();
    assert!(n > 10, "{got}");
    // What was decoded is what the whole file shows up to there (connections still open at the
    // cut are not closed the same way, so compare message lines only).
    let msgs =
        |s: &str| s.lines().filter(|l| !l.contains('[')).map(str::to_string).collect::<Vec<_>>();
    let (g, w) = (msgs(&got), msgs(&full));
    assert_eq!(g[..], w[..g.len()]);
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let cap = captures().join("sample.pcapng");
    let mut child = bin()
        .args(["dissect", "-V", cap.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");
    assert_eq!(out.status.code(), Some(0));
}

/// The reader gone before the first write (`msyncdump report --json … | head -c0`): every
/// command's first write fails with a broken pipe, which is no failure of ours.
#[test]
fn a_reader_gone_before_any_output_is_no_failure() {
    let cap = captures().join("sample.pcapng");
    let cap = cap.to_str().unwrap();
    for args in [
        &["report", cap][..],
        &["report", "--json", cap],
        &["report", "--json", "-j", "2", cap],
        &["dissect", "--json", "-j", "1", cap],
        &["dissect", "-j", "2", cap],
        &["info", cap],
    ] {
        let mut child =
            bin().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

#[test]
fn no_msync_is_success_and_said() {
    let dir = tempdir("empty");
    let f = dir.join("empty.pcap");
    // A valid pcap with no records.
    let mut h = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&65535u32.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    std::fs::write(&f, h).unwrap();
    let out = run(&["dissect", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8(out.stderr).unwrap().contains("no MSync traffic found"));
}

/// `report --json` of a committed capture (a path under `captures/`).
fn report_json(capture: &str) -> serde_json::Value {
    let cap = captures().join(capture);
    serde_json::from_str(&stdout(&["report", "--json", cap.to_str().unwrap()])).unwrap()
}

/// The report's retransmission finding: its count and the packets it names.
fn retransmissions(v: &serde_json::Value) -> (u64, Vec<u64>) {
    let f = v["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "retransmission");
    let f = f.expect("a retransmission finding");
    let frames = f["where"].as_array().unwrap().iter().map(|w| w["frame"].as_u64().unwrap());
    (f["count"].as_u64().unwrap(), frames.collect())
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("msyncdump-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn report_shows_websocket_sessions_and_other_connections() {
    let cap = captures().join("websdk-lz4-deflate.pcap");
    let out = stdout(&["report", "--json", cap.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["overview"]["websocket_connections"], 1);
    assert_eq!(v["overview"]["other_connections"], 1, "the REST login call is plain HTTP");
    let s = &v["sessions"][0];
    assert_eq!(s["transport"], "websocket");
    assert_eq!(s["websocket"]["path"], "/ws");
    assert!(s["websocket"]["extensions"].as_str().unwrap().contains("permessage-deflate"));
    assert_eq!(s["login"]["status"], "OK");
    let lat: Vec<_> =
        v["latency"].as_array().unwrap().iter().filter(|l| l["kind"] == "send").collect();
    assert_eq!(lat[0]["unanswered"], 0);
    assert!(lat[0]["answered"].as_u64().unwrap() >= 3);
    // The SDK's close frame is empty: no status code.
    let want = serde_json::json!({"by": "client", "code": null, "reason": ""});
    assert_eq!(s["websocket"]["close"], want);
    assert_eq!(
        (s["close"].as_str(), s["tcp_close"].as_str()),
        (Some("ws close, FIN"), Some("FIN"))
    );
    assert!(s["websocket"]["refused"].is_null());
}

/// The web SDK in Chromium, logged in for ~77 s: its own heartbeats (an UNREAD with nothing
/// pending, sent once 30 s have passed) as the mock server logged them, against the report.
#[test]
fn report_counts_the_browser_sdks_own_heartbeats() {
    let log = std::fs::read_to_string(captures().join("websdk-chromium-heartbeat.expected.jsonl"))
        .unwrap();
    let unread: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["command"] == "UNREAD")
        .collect();
    // Requests, then the answers that announced nothing: those requests were heartbeats.
    let asked: Vec<f64> =
        unread.iter().filter(|v| v["dir"] == "c2s").map(|v| v["t_ms"].as_f64().unwrap()).collect();
    let empty = unread
        .iter()
        .filter(|v| {
            v["dir"] == "s2c" && v["payload"]["unread"].as_array().is_none_or(Vec::is_empty)
        })
        .count();
    assert_eq!((asked.len(), empty), (3, 2), "the session has a login UNREAD and two heartbeats");
    let interval = asked[2] - asked[1];

    let v = report_json("websdk-chromium-heartbeat.pcap");
    let hb = &v["sessions"][0]["heartbeats"];
    assert_eq!(hb["count"], 2);
    // The server's clock is in whole milliseconds, the capture's in microseconds.
    let got = hb["interval_ms"].as_f64().unwrap();
    assert!((got - interval).abs() < 5.0, "interval {got} ms, the server saw {interval} ms");
    let rtt = hb["rtt_max_ms"].as_f64().unwrap();
    assert!(rtt > 0.0 && rtt < 50.0, "loopback round-trip {rtt} ms");
    let lat: Vec<_> =
        v["latency"].as_array().unwrap().iter().filter(|l| l["kind"] == "unread").collect();
    assert_eq!((lat[0]["count"].as_u64(), lat[0]["answered"].as_u64()), (Some(3), Some(3)));
    assert_eq!(v["sessions"][0]["login"]["status"], "OK");
}

/// The web SDK in Chromium, kicked: the server's log says which pull answer carried the
/// STATISTIC meta (and its reason); the report must name it, where, whom, and how it ended.
#[test]
fn report_tells_that_the_browser_session_was_kicked() {
    let log =
        std::fs::read_to_string(captures().join("websdk-chromium-kicked.expected.jsonl")).unwrap();
    let kicks: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["dir"] == "s2c")
        .flat_map(|v| v["payload"]["metas"].as_array().cloned().unwrap_or_default())
        .filter(|m| m["ns"] == "STATISTIC")
        .collect();
    assert_eq!(kicks.len(), 1);
    assert_eq!(kicks[0]["payload"]["operation"], "USER_LOGIN_ANOTHER_DEVICE");
    let reason = kicks[0]["payload"]["reason"].as_str().unwrap();

    let v = report_json("websdk-chromium-kicked.pcap");
    let e = &v["errors"][0];
    assert_eq!(e["code"], "STATISTIC.USER_LOGIN_ANOTHER_DEVICE");
    assert_eq!((e["count"].as_u64(), e["sessions"][0].as_u64()), (Some(1), Some(1)));
    assert_eq!(e["reasons"][0]["reason"], reason);
    assert_eq!(e["users"][0], "easemob-demo#capture_alice@easemob.com");
    let kicked: Vec<_> =
        v["findings"].as_array().unwrap().iter().filter(|f| f["kind"] == "kicked").collect();
    assert_eq!(kicked.len(), 1);
    assert_eq!(kicked[0]["severity"], "error");
    assert_eq!(kicked[0]["where"][0]["frame"], e["first"]["frame"]);
    let s = &v["sessions"][0];
    assert_eq!(s["login"]["status"], "OK");
    assert_eq!(s["logout"], false, "no LOGOUT: the server ended the session");
    assert_eq!(s["close"], "ws close 1000, FIN");
    assert_eq!(s["tcp_close"], "FIN");
    assert_eq!(s["websocket"]["close"]["code"], 1000);
    assert_eq!(s["websocket"]["close"]["by"], "server");
}

/// The web SDK in Chromium, its connection reset by the server mid-session: the server's log
/// says when it reset and how many logins it answered; the report must show two sessions of
/// the same user, the first ended by the RST without LOGOUT, the second logged out.
#[test]
fn report_shows_the_browser_sdks_reconnection() {
    let log = std::fs::read_to_string(captures().join("websdk-chromium-reconnect.expected.jsonl"))
        .unwrap();
    let recs: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let count = |f: &dyn Fn(&serde_json::Value) -> bool| recs.iter().filter(|v| f(v)).count();
    assert_eq!(count(&|v| v["dir"] == "tcp-reset"), 1);
    assert_eq!(count(&|v| v["dir"] == "ws-open"), 2);
    assert_eq!(count(&|v| v["dir"] == "c2s" && v["command"] == "PROVISION"), 2);
    assert_eq!(count(&|v| v["dir"] == "c2s" && v["command"] == "LOGOUT"), 1);

    let v = report_json("websdk-chromium-reconnect.pcap");
    let s = v["sessions"].as_array().unwrap();
    assert_eq!(s.len(), 2);
    for x in s {
        assert!(x["user"].as_str().unwrap().starts_with("easemob-demo#capture_alice@easemob.com"));
        assert_eq!(x["login"]["status"], "OK");
    }
    assert_eq!((s[0]["tcp_close"].as_str(), s[0]["logout"].as_bool()), (Some("RST"), Some(false)));
    assert!(s[0]["websocket"]["close"].is_null(), "no close frame before the reset");
    assert_eq!((s[1]["tcp_close"].as_str(), s[1]["logout"].as_bool()), (Some("FIN"), Some(true)));
    let rst: Vec<_> =
        v["findings"].as_array().unwrap().iter().filter(|f| f["kind"] == "rst").collect();
    assert_eq!((rst.len(), rst[0]["conns"][0].as_u64()), (1, s[0]["conn"].as_u64()));
    let login = v["latency"].as_array().unwrap().iter().find(|l| l["kind"] == "login").unwrap();
    assert_eq!((login["count"].as_u64(), login["answered"].as_u64()), (Some(2), Some(2)));
}

/// The web SDK in Chromium, its login refused: the status and reason the server logged must be
/// the session's login result, an error row and a failed-login finding.
#[test]
fn report_shows_the_browser_sdks_refused_login() {
    let log =
        std::fs::read_to_string(captures().join("websdk-chromium-login-refused.expected.jsonl"))
            .unwrap();
    let answer = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["dir"] == "s2c" && v["command"] == "PROVISION")
        .unwrap();
    let status = &answer["payload"]["status"];
    let (code, reason) = (status["error_code"].as_str().unwrap(), status["reason"].as_str());

    let v = report_json("websdk-chromium-login-refused.pcap");
    let s = &v["sessions"][0];
    assert_eq!(
        (s["login"]["status"].as_str(), s["login"]["reason"].as_str()),
        (Some(code), reason)
    );
    assert!(s["login"]["latency_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(s["websocket"]["close"]["by"], "server");
    let e = &v["errors"][0];
    assert_eq!((e["code"].as_str(), e["count"].as_u64()), (Some(code), Some(1)));
    assert_eq!(e["commands"][0]["command"], "PROVISION");
    let failed: Vec<_> =
        v["findings"].as_array().unwrap().iter().filter(|f| f["kind"] == "login_failed").collect();
    assert_eq!((failed.len(), failed[0]["count"].as_u64()), (1, Some(1)));
}

/// The web SDK in Chromium over a lossy path: the retransmissions are the packets TShark 4.0
/// flags (`tcp.analysis.retransmission`: 5, 8, 33, 51, 57 and 73) but for 73, the client's FIN
/// sent again after both FINs were seen, which closed the connection here (a late packet).
#[test]
fn report_counts_the_kernels_retransmissions_as_tshark_does() {
    let v = report_json("websdk-chromium-lossy.pcap");
    assert_eq!(retransmissions(&v), (5, vec![5, 8, 33, 51, 57]));
    assert_eq!(v["overview"]["gap_bytes"], 0);
    assert_eq!(v["sessions"][0]["msgs_up"], 14);
    assert_eq!(v["sessions"][0]["msgs_down"], 15);
}

/// The web SDK in Chromium sending every kind of message it sends over MSync: the report's
/// message tables, latency and queues must count what the server logged, nothing may be found
/// wrong, and the two acks that carry a meta (a chat room join, an edit) are acks, not pulls.
#[test]
fn report_counts_every_kind_of_message_the_browser_sdk_sent() {
    let log =
        std::fs::read_to_string(captures().join("websdk-chromium-rich.expected.jsonl")).unwrap();
    let recs: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let recs = &recs;
    let sync = move |dir: &'static str| {
        recs.iter()
            .filter(move |v| v["dir"] == dir && v["command"] == "SYNC")
            .map(|v| &v["payload"])
    };
    let sent: Vec<&serde_json::Value> = sync("c2s").filter_map(|p| p.get("meta")).collect();
    let pulls = sync("c2s").filter(|p| p.get("queue").is_some()).count();
    let down: Vec<&serde_json::Value> =
        sync("s2c").filter_map(|p| p["metas"].as_array()).flatten().collect();
    // Counts by a field of the log's metas, as (name, count) sorted by name.
    let tally = |metas: &[&serde_json::Value], f: &dyn Fn(&serde_json::Value) -> Option<String>| {
        let mut m = std::collections::BTreeMap::<String, u64>::new();
        for v in metas.iter().filter_map(|v| f(v)) {
            *m.entry(v).or_default() += 1;
        }
        m.into_iter().collect::<Vec<_>>()
    };
    let ns = |m: &serde_json::Value| m["ns"].as_str().map(String::from);
    let body = |m: &serde_json::Value| {
        (m["ns"] == "CHAT").then(|| m["payload"]["type"].as_str().map(String::from)).flatten()
    };
    let content = |m: &serde_json::Value| {
        (m["ns"] == "CHAT").then(|| {
            let c = &m["payload"]["contents"];
            let c = if c.is_array() { &c[0] } else { c };
            // protobufjs leaves out a default: an absent type is TEXT, no field at all empty.
            match c.as_object().map(|o| o.is_empty()) {
                Some(false) => c["type"].as_str().unwrap_or("TEXT").to_string(),
                _ => "(empty)".to_string(),
            }
        })
    };

    let v = report_json("websdk-chromium-rich.pcap");
    let table = |name: &str, dir: &str| {
        let mut t: Vec<(String, u64)> = v["messages"][name]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r[dir].as_u64().unwrap() > 0)
            .map(|r| (r["name"].as_str().unwrap().to_string(), r[dir].as_u64().unwrap()))
            .collect();
        t.sort();
        t
    };
    assert_eq!(table("namespaces", "up"), tally(&sent, &ns));
    assert_eq!(table("namespaces", "down"), tally(&down, &ns));
    assert_eq!(table("body_types", "up"), tally(&sent, &body));
    assert_eq!(table("content_types", "up"), tally(&sent, &content));
    assert_eq!(table("body_types", "down"), tally(&down, &body));
    let kinds: Vec<_> = table("body_types", "up").into_iter().map(|(n, _)| n).collect();
    for k in ["CHAT", "GROUPCHAT", "CHATROOM", "READ_ACK", "DELIVER_ACK", "RECALL", "CHANNEL_ACK"] {
        assert!(kinds.iter().any(|n| n == k), "{k} missing from {kinds:?}");
    }
    let lat = |kind: &str| {
        let l = v["latency"].as_array().unwrap().iter().find(|l| l["kind"] == kind).unwrap();
        (l["count"].as_u64().unwrap(), l["answered"].as_u64().unwrap())
    };
    assert_eq!(lat("send"), (sent.len() as u64, sent.len() as u64), "every send acked");
    assert_eq!(lat("pull"), (pulls as u64, pulls as u64), "the acks with metas are no pulls");
    let queued: u64 =
        v["queues"].as_array().unwrap().iter().map(|q| q["metas"].as_u64().unwrap()).sum();
    let pulled = sync("s2c")
        .filter(|p| p.get("queue").is_some())
        .map(|p| p["metas"].as_array().map_or(0, Vec::len) as u64);
    assert_eq!(queued, pulled.sum::<u64>());
    // One real retransmission on loopback (packet 26, the client's segment sent again 12 ms
    // later and answered with a SACK of it), and nothing else.
    assert_eq!(retransmissions(&v), (1, vec![26]));
    assert_eq!(v["findings"].as_array().unwrap().len(), 1, "{}", v["findings"]);
    assert_eq!(v["errors"], serde_json::json!([]));

    // The summary: an ack carrying a meta is an ack with its metas, not a pull answer.
    let cap = captures().join("websdk-chromium-rich.pcap");
    let summary = stdout(&["dissect", cap.to_str().unwrap()]);
    let acks_with_metas: Vec<&str> =
        summary.lines().filter(|l| l.contains("SYNC ↓ ack") && l.contains("metas=")).collect();
    let logged = sync("s2c").filter(|p| p.get("meta_id").is_some() && p.get("metas").is_some());
    assert_eq!(acks_with_metas.len(), logged.count());
    for l in acks_with_metas {
        assert!(!l.contains(" pull"), "{l}");
    }
    // Whom a send is for beyond its `to`: the group message with a receiver list, and the
    // one for online users only, as the SDK sent them.
    for m in &sent {
        let users = m["directed_users"].as_str().map(String::from).or_else(|| {
            m["directed_users"]
                .as_array()
                .map(|a| a.iter().map(|u| u.as_str().unwrap()).collect::<Vec<_>>().join(","))
        });
        let route = m["routetype"].as_str().filter(|r| *r != "ROUTE_ALL");
        if users.is_none() && route.is_none() {
            continue;
        }
        let line =
            summary.lines().find(|l| l.contains(&format!("meta={} ", m["id"].as_str().unwrap())));
        let line = line.unwrap();
        assert!(line.contains(&format!("route={} ", route.unwrap())), "{line}");
        if let Some(u) = users {
            assert!(line.contains(&format!(" directed={u} ")), "{line}");
        }
    }
    // The chat room join's meta goes to the domain alone: named, not an empty row.
    let text = stdout(&["report", cap.to_str().unwrap()]);
    let receivers = text.split("Top receivers").nth(1).unwrap();
    let rows = receivers.lines().skip(2).take_while(|l| l.starts_with('│'));
    for row in rows {
        let name = row.trim_start_matches('│').split('┆').next().unwrap().trim();
        assert!(!name.is_empty(), "an unnamed receiver: {row}");
    }
    assert!(receivers.contains("│ @easemob.com "));
}

/// The kernel's own SYN retransmissions (captures/variants/README.md): the packets TShark flags.
#[test]
fn report_counts_syns_sent_again_as_tshark_does() {
    let v = report_json("variants/syn-retransmitted.pcap");
    assert_eq!(retransmissions(&v), (3, vec![2, 3, 4]));
}

/// A TLS connection (the web SDK's `wss://`, captured without keys) on a port of its own:
/// recognised from its first bytes, its ClientHello's server name and ALPN shown, and counted
/// among the other connections; the report says there was nothing to analyse.
#[test]
fn tls_is_recognised_and_said_not_decodable() {
    let cap = captures().join("variants/tls-sni.pcap");
    let cap = cap.to_str().unwrap();
    let summary = stdout(&["dissect", cap]);
    assert_eq!(
        summary,
        "     4                0 [c2s TLS: not decodable sni=im-api-wechat.easemob.com alpn=http/1.1]\n"
    );
    let text = stdout(&["report", "--section", "overview", "--section", "sessions", cap]);
    assert_eq!(text, stdout(&["report", "--section", "overview,sessions", cap]));
    assert!(
        text.contains("16 packets, 1 TCP connections, 0 MSync, 1 other (1 TLS, not decodable)"),
        "{text}"
    );
    let row = |name: &str| {
        let line = text.lines().find(|l| l.contains(name)).unwrap_or_default();
        line.split('┆').nth(1).unwrap_or_default().trim().trim_end_matches('│').trim().to_string()
    };
    assert_eq!(row("│ Messages"), "0");
    assert!(text.contains("Sessions (0)\nnone\n"), "{text}");
    let v = report_json("variants/tls-sni.pcap");
    assert_eq!(v["overview"]["tls_connections"], 1);
    assert_eq!(v["sessions"].as_array().map(Vec::len), Some(0));
}

/// SockJS (web SDK 4.8.1): the login's token travels base64-encoded inside a text frame; once
/// decoded as MSync it is redacted like any other, and no SockJS frame with messages is left
/// shown as text.
#[test]
fn sockjs_messages_are_decoded_and_their_secrets_redacted() {
    let cap = captures().join("websdk-v4.8-sockjs.pcap");
    let cap = cap.to_str().unwrap();
    for args in
        [vec!["dissect", "-V", cap], vec!["dissect", "--json", cap], vec!["report", "--json", cap]]
    {
        let out = stdout(&args);
        assert!(!out.contains("YWMtcaptureTOKEN"), "{args:?} shows the token");
    }
    let summary = stdout(&["dissect", cap]);
    let texts: Vec<&str> =
        summary.lines().filter(|l| l.contains("websocket text message")).collect();
    assert_eq!(texts, [r#"    17                1 [s2c websocket text message (1 bytes): "o"]"#]);
    assert!(stdout(&["dissect", "-V", "--show-secrets", cap]).contains("YWMtcaptureTOKEN"));
}

/// `seed.pcap` rewritten by Wireshark's `editcap -F` (4.0.17) in the pcap variants it writes:
/// the modified libpcap, Red Hat 6.1's, SuSE 6.3's and Nokia's record headers (the last three
/// under the usual magic numbers) and nanosecond pcap, and the capture compressed by the zstd,
/// pzstd and lz4 tools (one frame, or several). Bytes of another writer, not ours; each must
/// dissect exactly as the original does.
#[test]
fn other_writers_pcap_variants_dissect_as_the_original() {
    let want = std::fs::read_to_string(captures().join("seed.pcap.summary.txt")).unwrap();
    for v in [
        "modpcap",
        "rh6_1pcap",
        "suse6_3pcap",
        "nokiapcap",
        "nsecpcap",
        "pcap.zst",
        "pzstd.pcap.zst",
        "2frames.pcap.zst",
        "pcap.lz4",
        "2frames.pcap.lz4",
        "legacy.pcap.lz4",
        "linked.pcap.lz4",
        "bx.pcap.lz4",
    ] {
        let cap = captures().join("variants").join(format!("seed.{v}"));
        let out = run(&["dissect", cap.to_str().unwrap()]);
        assert!(out.status.success(), "{v}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout == want.as_bytes(), "{v}: not the original's dissection");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"), "{v}");
    }
}

/// `info` says what capinfos would: the format and its variant, the compression, the file
/// size, records cut by the snaplen and whether time goes only forward.
#[test]
fn info_tells_the_format_compression_snaplen_cuts_and_time_order() {
    let info = |path: &std::path::Path| {
        let out = run(&["info", path.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let v = captures().join("variants");
    let zst = info(&v.join("seed.pcap.zst"));
    assert!(zst.contains("format: pcap, little-endian, microsecond timestamps, 16-byte record headers\ncompression: zstd\nfile size: 930 bytes\n"), "{zst}");
    assert!(zst.contains("time order: strict\n"), "{zst}");
    let ns = info(&v.join("seed.nsecpcap"));
    assert!(ns.contains("nanosecond timestamps") && ns.contains("compression: none"), "{ns}");
    let suse = info(&v.join("seed.suse6_3pcap"));
    assert!(suse.contains("pcap (modified libpcap), little-endian, microsecond timestamps, 28-byte record headers"), "{suse}");
    let ng = info(&captures().join("sample.pcapng"));
    assert!(ng.contains("format: pcapng, little-endian\n"), "{ng}");
    // Where dumpcap says the capture was taken: its section's and its interface's options.
    let dc = info(&captures().join("dumpcap-lo.pcapng"));
    for line in [
        "sections: 1",
        "capture hardware: Intel(R) Xeon(R) Processor (with SSE4.2)",
        "capture OS: Linux 6.18.44-fc-v1272",
        "capture application: Dumpcap (Wireshark) 4.0.17 (Git v4.0.17 packaged as 4.0.17-0+deb12u3)",
        "interface 0: lo (Loopback) EN10MB (1), snaplen 262144, filter \"tcp port 6717\", OS Linux 6.18.44-fc-v1272",
        "packets: 23",
    ] {
        assert!(dc.lines().any(|l| l == line), "{line} not in:\n{dc}");
    }
    assert!(zst.contains("interface 0: EN10MB (1), snaplen 262144\n"), "{zst}");
    // seed.pcap with its second and third records swapped, and the fourth cut by a snaplen.
    let mut b = std::fs::read(captures().join("seed.pcap")).unwrap();
    let mut at = vec![24usize];
    while let Some(&o) = at.last().filter(|&&o| o + 16 <= b.len()) {
        let incl = u32::from_le_bytes(b[o + 8..o + 12].try_into().unwrap()) as usize;
        at.push(o + 16 + incl);
    }
    let (r2, r3, r4) = (at[1]..at[2], at[2]..at[3], at[3]);
    let swapped: Vec<u8> = [&b[..r2.start], &b[r3.clone()], &b[r2.clone()], &b[r3.end..]].concat();
    b = swapped;
    let orig = u32::from_le_bytes(b[r4 + 12..r4 + 16].try_into().unwrap());
    b[r4 + 12..r4 + 16].copy_from_slice(&(orig + 100).to_le_bytes());
    let path = tempdir("info").join("odd.pcap");
    std::fs::write(&path, &b).unwrap();
    let odd = info(&path);
    assert!(odd.contains("packets cut by the snaplen: 1\n"), "{odd}");
    assert!(
        odd.contains(
            "time order: not strict: 1 packet earlier than the one before, the first #3; the \
             largest step back 500µs at #3; the earliest packet 2017-10-26 04:27:28.743000 UTC \
             (#1)\n"
        ),
        "{odd}"
    );
}

/// `lz4 seed.pcap` cut short: the whole capture is one block, and the cut falls inside it.
/// The packets the bytes before the cut hold are dissected, then the cut is reported.
#[test]
fn an_lz4_capture_cut_inside_its_block_gives_the_packets_before_the_cut() {
    let whole = std::fs::read(captures().join("variants").join("seed.pcap.lz4")).unwrap();
    let want = std::fs::read_to_string(captures().join("seed.pcap.summary.txt")).unwrap();
    let cut = tempdir("lz4cut").join("cut.pcap.lz4");
    // The end mark and content checksum (8 bytes) and a third of the block.
    std::fs::write(&cut, &whole[..(whole.len() - 8) * 2 / 3]).unwrap();
    let out = run(&["dissect", cut.to_str().unwrap()]);
    let got = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning") && err.contains("truncated"), "{err}");
    let n = got.lines().count();
    assert!(n >= 3, "{n} lines: {got}{err}");
    // The messages decoded are the original's; the last line may tell of a message cut short.
    let first: Vec<_> = got.lines().take(n - 1).collect();
    let orig: Vec<_> = want.lines().take(n - 1).collect();
    assert_eq!(first, orig);
}

/// The same two connections inside tunnels and other link layers (`captures/tunnels`): VXLAN
/// made by the kernel, and what it cannot make re-encapsulated from those frames. Each must
/// dissect exactly as its source capture, whose dissection is committed.
#[test]
fn msync_inside_tunnels_and_other_link_layers_dissects_as_outside() {
    let dir = captures().join("tunnels");
    for (source, variants) in [
        (
            "vxlan",
            &[
                "vxlan", "ipip", "ip4in6", "gre", "gretap", "erspan2", "erspan3", "geneve", "mpls",
                "pppoe", "ppp", "chdlc", "pktap",
            ][..],
        ),
        ("vxlan6", &["vxlan6", "sit", "ip6in6"][..]),
    ] {
        let want = std::fs::read_to_string(dir.join(format!("{source}.pcap.summary.txt"))).unwrap();
        assert_eq!(want.lines().count(), 7, "{source}: the seed's 7 messages");
        for v in variants {
            let cap = dir.join(format!("{v}.pcap"));
            let out = run(&["dissect", cap.to_str().unwrap()]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{v}: {err}");
            assert!(out.stdout == want.as_bytes(), "{v}: not {source}'s dissection");
            assert!(err.contains("2 TCP connections (2 MSync, 0 other), 7 messages"), "{v}: {err}");
        }
    }
    // Linux NFLOG, written by tcpdump from an nftables log group: the seed's messages.
    let cap = dir.join("nflog.pcap");
    let out = run(&["dissect", cap.to_str().unwrap()]);
    let want = std::fs::read_to_string(dir.join("nflog.pcap.summary.txt")).unwrap();
    assert_eq!(want.lines().count(), 7, "nflog: the seed's 7 messages");
    assert!(out.stdout == want.as_bytes(), "nflog: not its committed dissection");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "nflog: {err}");
    assert!(err.contains("2 TCP connections (2 MSync, 0 other), 7 messages"), "nflog: {err}");
    // The kernel fragmented underlay datagrams (IPv4 through a VXLAN device, IPv6 from a
    // socket): reassembled, nothing is missing of the same sessions' 52 messages.
    for name in ["vxlan-fragmented", "vxlan6-fragmented"] {
        let cap = dir.join(format!("{name}.pcap"));
        let out = run(&["dissect", cap.to_str().unwrap()]);
        let want = std::fs::read_to_string(dir.join(format!("{name}.pcap.summary.txt"))).unwrap();
        assert!(out.stdout == want.as_bytes(), "{name}: not its committed dissection");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("52 messages, 0 decode errors, 0 gap bytes"), "{name}: {err}");
    }
}

/// On a terminal the report fits the terminal's own width, which the kernel knows; shells set
/// `COLUMNS` but do not export it.
#[cfg(target_os = "linux")]
#[test]
fn report_fits_the_terminal_it_writes_to() {
    use std::fs::File;
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (0, 0);
    let ws = libc::winsize { ws_row: 50, ws_col: 90, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: openpty writes two descriptors into the integers given; the name and termios
    // arguments may be null, and the window size is only read.
    let rc = unsafe {
        libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &ws)
    };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: both descriptors were just opened for us and are owned by these files alone.
    let (mut master, slave) = unsafe { (File::from_raw_fd(master), File::from_raw_fd(slave)) };
    let seed = captures().join("seed.pcap");
    let mut child = bin()
        .args(["report", "--no-color", seed.to_str().unwrap()])
        .env_remove("COLUMNS")
        .stdout(slave)
        .spawn()
        .unwrap();
    // Read while it writes (the report is larger than the terminal's buffer); the read ends
    // with EIO once the child, the slave's last holder, has gone.
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    });
    assert!(child.wait().unwrap().success());
    let text = String::from_utf8(reader.join().unwrap()).unwrap();
    let widest = text.lines().map(|l| l.trim_end_matches('\r').chars().count()).max();
    assert!(text.contains("Sessions"), "{text}");
    assert_eq!(widest, Some(90));
}

/// A filter that matches nothing says so on standard error (the report itself is empty, and
/// the run is not a failure); an empty window says why.
#[test]
fn filters_that_match_nothing_say_so() {
    let seed = captures().join("seed.pcap");
    let p = seed.to_str().unwrap();
    for (args, want) in [
        (&["--conn", "99"][..], "nothing in the capture matches --conn 99 (the capture: 2 TCP"),
        (&["--user", "nobody"], "nothing in the capture matches --user nobody"),
        (&["--since", "+1h"], "nothing in the capture matches the time window"),
        (&["--since", "+30s", "--until", "+10s"], "--since is after --until"),
    ] {
        let out = run(&[&["report", p][..], args].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let out = run(&["report", p, "--conn", "1"]);
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The number before `what` in the tally line on stderr ("… 12 messages, …"); 0 if absent.
fn tally(stderr: &[u8], what: &str) -> u64 {
    let err = String::from_utf8_lossy(stderr);
    let line = err.lines().rev().find(|l| l.contains(" packets, ")).unwrap_or_default();
    line.split([',', '(', ')'])
        .filter_map(|p| p.trim().trim_start_matches("msyncdump: ").strip_suffix(what))
        .find_map(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Count of a finding kind in `report --json`, 0 if absent.
fn finding(v: &serde_json::Value, kind: &str) -> u64 {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == kind)
        .map_or(0, |f| f["count"].as_u64().unwrap())
}

/// Unmasked client frames (test rigs, some non-browser clients): every one was a masking
/// problem and its message skipped, so a capture of such sessions lost every client message.
/// They are decoded like their masked twin's, with one masking problem per connection.
#[test]
fn unmasked_client_frames_are_decoded_and_reported_once_per_connection() {
    let dir = tempdir("unmasked");
    let synth = |name: &str, extra: &[&str]| {
        let f = dir.join(name);
        let mut args = vec!["synth", "-w", f.to_str().unwrap(), "--seed", "5", "--clients", "20"];
        args.extend_from_slice(&["--duration", "30", "--ws-ping", "0.2", "--ws-fragment", "0.2"]);
        args.extend_from_slice(extra);
        assert!(run(&args).status.success());
        f
    };
    let twin = synth("masked.pcap", &["--websocket"]);
    let odd = synth("unmasked.pcap", &["--ws-unmasked"]);
    let (twin, odd) = (twin.to_str().unwrap(), odd.to_str().unwrap());
    let t = run(&["dissect", twin]);
    let o = run(&["dissect", "--json", odd]);
    let want = tally(&t.stderr, "messages");
    assert!(want > 500, "{}", String::from_utf8_lossy(&t.stderr));
    assert_eq!(tally(&o.stderr, "messages"), want);
    assert_eq!(tally(&o.stderr, "bytes skipped"), 0);
    let lines: Vec<serde_json::Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let problems: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["transport"]["event"] == "websocket_problem").collect();
    assert_eq!(problems.len(), 20, "one per connection");
    assert!(problems.iter().all(|p| p["transport"]["kind"] == "masking" && p["dir"] == "c2s"));
    let c2s = lines.iter().filter(|l| l["dir"] == "c2s" && l["command"].is_string()).count();
    let frames = tally(&o.stderr, "frames with the wrong masking");
    assert!(frames > c2s as u64, "{frames} frames, {c2s} client messages");
    let v: serde_json::Value = serde_json::from_str(&stdout(&["report", "--json", odd])).unwrap();
    assert_eq!(finding(&v, "websocket_problem"), 20);
    assert_eq!(finding(&v, "skipped_bytes"), 0);

    // One client segment lost in every connection, after its first frames: a direction that
    // has shown unmasked frames resynchronises on them (the rest of each connection's client
    // messages were lost), so as many messages are decoded as in the masked twin.
    let drop = |f: &Path| {
        let cut = dir.join(format!("gap-{}", f.file_name().unwrap().to_str().unwrap()));
        std::fs::write(&cut, drop_client_segment(&std::fs::read(f).unwrap(), 3)).unwrap();
        cut
    };
    let (twin, odd) = (drop(Path::new(twin)), drop(Path::new(odd)));
    let t = run(&["dissect", twin.to_str().unwrap()]);
    let o = run(&["dissect", odd.to_str().unwrap()]);
    let want = tally(&t.stderr, "messages");
    assert!(tally(&t.stderr, "gap bytes") > 0);
    assert!(want > 300, "{}", String::from_utf8_lossy(&t.stderr));
    assert_eq!(tally(&o.stderr, "messages"), want, "{}", String::from_utf8_lossy(&o.stderr));
}

/// A classic pcap of synthesized traffic (server port 6717) without the `nth` (1-based) client
/// segment carrying data of every connection.
fn drop_client_segment(pcap: &[u8], nth: usize) -> Vec<u8> {
    let mut out = pcap[..24].to_vec();
    let mut seen = std::collections::HashMap::<u16, usize>::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let caplen = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        let rec = &pcap[at..at + 16 + caplen];
        at += 16 + caplen;
        let p = etherparse::SlicedPacket::from_ethernet(&rec[16..]).unwrap();
        if let Some(etherparse::TransportSlice::Tcp(t)) = &p.transport {
            if t.destination_port() == 6717 && !t.payload().is_empty() {
                let n = seen.entry(t.source_port()).or_default();
                *n += 1;
                if *n == nth {
                    continue;
                }
            }
        }
        out.extend_from_slice(rec);
    }
    out
}

/// Messages dropped for a reason (here inflating past `--max-inflate`) were counted as skipped
/// bytes "(resynchronising)", which nothing was: the line says they were dropped.
#[test]
fn dropped_messages_are_not_said_to_be_resynchronising() {
    let dir = tempdir("dropped");
    let f = dir.join("deflate.pcap");
    let f = f.to_str().unwrap();
    let args = ["synth", "-w", f, "--seed", "2", "--clients", "3", "--duration", "10"];
    assert!(run(&[&args[..], &["--ws-deflate"]].concat()).status.success());
    let out = run(&["dissect", "--max-inflate", "100", f]);
    let text = String::from_utf8(out.stdout).unwrap();
    // The first messages inflate past the cap; the rest cannot be inflated without them.
    let capped = text.matches("inflates past the cap of 100 bytes").count()
        + text.matches("permessage-deflate: cannot inflate").count();
    assert!(capped > 10, "{text}");
    assert_eq!(text.matches("(dropped, see the problem above)]").count(), capped, "{text}");
    assert!(!text.contains("(resynchronising)"), "{text}");
    let json = stdout(&["dissect", "--json", "--max-inflate", "100", f]);
    let whys: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|v| v.get("skipped").map(|s| s["why"].clone()))
        .collect();
    assert_eq!(whys.len(), capped);
    assert!(whys.iter().all(|w| w == "dropped"), "{whys:?}");
}
