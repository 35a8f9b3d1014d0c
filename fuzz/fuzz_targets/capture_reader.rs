//! The capture-file reader (pcap, pcapng, gzip) over arbitrary bytes.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use msyncdump::capture::{FileReader, PacketSource, MAX_BLOCK_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(mut rd) = FileReader::from_reader("fuzz".into(), Box::new(Cursor::new(data.to_vec())))
    else {
        return;
    };
    let mut last_index = 0;
    // Every record consumes input, so this ends; the bound only guards against a reader that
    // stops making progress, which would itself be the bug to find.
    for _ in 0..1_000_000 {
        match rd.next_packet() {
            Ok(Some(p)) => {
                assert!(p.data.len() <= MAX_BLOCK_LEN);
                assert!(p.index > last_index, "record numbers must increase");
                last_index = p.index;
            }
            Ok(None) | Err(_) => return,
        }
    }
    panic!("reader made no progress");
});
