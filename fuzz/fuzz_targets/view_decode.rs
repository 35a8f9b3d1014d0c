//! The report's borrowed decoder against the full one: on any bytes, in both directions, both
//! accept or both refuse, and read the same fields (command, JIDs, statuses, queues, keys, every
//! meta and its body).
#![no_main]

use libfuzzer_sys::fuzz_target;
use msyncdump::msync::view::differential::agree;
use msyncdump::net::Dir;

fuzz_target!(|data: &[u8]| {
    for dir in [Dir::C2S, Dir::S2C] {
        if let Err(e) = agree(data, dir) {
            panic!("the decoders disagree on {data:02x?}\n{e}");
        }
    }
});
