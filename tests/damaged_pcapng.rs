//! A committed pcapng capture with one enhanced packet block's length damaged (a bit flipped in
//! memory, written to a temporary file) is read past the damage: `dissect --json` and
//! `report --json` exit 2 with one error line naming the file and the block's offset, and every
//! message but the one the damaged packet carried is still there, as the undamaged file gives it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures")
}

fn run(args: &[&str], file: &Path) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_msyncdump")).args(args).arg(file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic running {args:?} {}: {stderr}", file.display());
    out
}

/// The offsets and lengths of the packet blocks (enhanced, simple, obsolete) of a
/// little-endian pcapng file, in order: the n-th is packet n + 1.
fn packet_blocks(bytes: &[u8]) -> Vec<(usize, u32)> {
    assert_eq!(&bytes[8..12], &[0x4D, 0x3C, 0x2B, 0x1A], "a little-endian pcapng");
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let mut at = 0;
    let mut out = Vec::new();
    while at < bytes.len() {
        let (kind, len) = (word(at), word(at + 4));
        if matches!(kind, 2 | 3 | 6) {
            out.push((at, len));
        }
        at += len as usize;
    }
    out
}

/// The messages of `dissect --json` output (not its gap and skip records).
fn messages(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("msync").is_some())
        .collect()
}

fn error_lines(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.contains("error:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_damaged_packet_block_costs_that_packet_only() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("damaged-pcapng");
    std::fs::create_dir_all(&dir).unwrap();
    // Packets that carry one whole message each, on connections that have others:
    // sample.pcapng is synthesized, dumpcap-lo's blocks (with their options) are dumpcap's.
    for (name, packet) in [("sample.pcapng", 34u64), ("dumpcap-lo.pcapng", 9)] {
        let path = captures().join(name);
        let bytes = std::fs::read(&path).unwrap();
        let good = run(&["dissect", "--json"], &path);
        assert!(good.status.success(), "{name}");
        let all = messages(&good.stdout);
        assert_eq!(all.iter().filter(|m| m["frame"] == packet).count(), 1, "{name}");
        let good_report: serde_json::Value =
            serde_json::from_slice(&run(&["report", "--json"], &path).stdout).unwrap();
        let (at, len) = packet_blocks(&bytes)[packet as usize - 1];
        // Bit 24: the length runs past the end of the file; bit 6: its trailing copy differs.
        for (bit, what) in [
            (24, format!("block length {} runs past the end of the file", len ^ 1 << 24)),
            (6, {
                // The trailing length is looked for where the damaged length puts it.
                let end = at + (len ^ 1 << 6) as usize;
                let trailer = u32::from_le_bytes(bytes[end - 4..end].try_into().unwrap());
                format!("block length {} differs from its trailing length {trailer}", len ^ 1 << 6)
            }),
        ] {
            let mut damaged = bytes.clone();
            damaged[at + 4..at + 8].copy_from_slice(&(len ^ 1 << bit).to_le_bytes());
            let file = dir.join(format!("bit{bit}-{name}"));
            std::fs::write(&file, &damaged).unwrap();
            let error = format!(
                "error: {}: offset {at}: corrupt capture: {what}; {len} bytes in 1 damaged \
                 stretch passed over, the records after them read",
                file.display()
            );

            let out = run(&["dissect", "--json"], &file);
            assert_eq!(out.status.code(), Some(2), "{name} bit {bit}");
            let errors = error_lines(&out.stderr);
            assert_eq!(errors.len(), 1, "{name} bit {bit}: {errors:?}");
            assert!(errors[0].ends_with(&error), "{name} bit {bit}: {}", errors[0]);
            // Every message but the damaged packet's, the packets after it numbered one less.
            let want: Vec<serde_json::Value> = all
                .iter()
                .filter(|m| m["frame"] != packet)
                .map(|m| {
                    let mut m = m.clone();
                    let frame = m["frame"].as_u64().unwrap();
                    if frame > packet {
                        m["frame"] = (frame - 1).into();
                    }
                    m
                })
                .collect();
            assert_eq!(messages(&out.stdout), want, "{name} bit {bit}");

            let out = run(&["report", "--json"], &file);
            assert_eq!(out.status.code(), Some(2), "{name} bit {bit}");
            let errors = error_lines(&out.stderr);
            assert_eq!(errors.len(), 1, "{name} bit {bit}: {errors:?}");
            assert!(errors[0].ends_with(&error), "{name} bit {bit}: {}", errors[0]);
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let (o, g) = (&report["overview"], &good_report["overview"]);
            for field in ["packets", "messages"] {
                assert_eq!(
                    o[field].as_u64(),
                    g[field].as_u64().map(|n| n - 1),
                    "{name} bit {bit}: {field}"
                );
            }
            assert_eq!(o["msync_connections"], g["msync_connections"], "{name} bit {bit}");
            assert_eq!(
                report["sessions"].as_array().map(Vec::len),
                good_report["sessions"].as_array().map(Vec::len)
            );

            let out = run(&["info"], &file);
            assert_eq!(out.status.code(), Some(2), "{name} bit {bit}");
            let info = String::from_utf8_lossy(&out.stdout);
            assert!(
                info.contains(&format!(
                    "damaged stretches passed over: 1 ({len} bytes; the first at offset {at}: \
                     {what})"
                )),
                "{name} bit {bit}: {info}"
            );
        }
    }
}
