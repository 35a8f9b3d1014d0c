//! The MSync decoder (envelope, every command body, metas, zlib) and every rendering of
//! arbitrary bytes, in both directions. JSON output must be valid JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msyncdump::msync::decode::{decode, DecodeLimits};
use msyncdump::msync::render::{json, sdklog, summary, tree, RenderOpts};
use msyncdump::net::Dir;

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits { max_inflated: 1 << 20 };
    let show_secrets = data.first().is_some_and(|b| b & 1 == 1);
    let opts = RenderOpts { show_secrets, max_inflated: 1 << 20, ..RenderOpts::default() };
    for dir in [Dir::C2S, Dir::S2C] {
        let mut s = String::new();
        match decode(data, dir, &limits) {
            Ok(msg) => summary::write_summary(&mut s, &msg, dir, &opts),
            Err(e) => summary::write_error_summary(&mut s, data, dir, &e),
        }
        s.clear();
        tree::write_tree_with_offsets(&mut s, data, dir, &opts, true);
        s.clear();
        sdklog::write_sdklog(&mut s, data, dir, &opts);
        let mut j = Vec::new();
        json::write_json(&mut j, data, dir, &opts);
        if let Err(e) = serde_json::from_slice::<serde_json::Value>(&j) {
            panic!("invalid JSON ({e}): {}", String::from_utf8_lossy(&j));
        }
    }
});
