//! The LZ4 envelope unwrapper with its per-direction 64 KiB history: arbitrary envelopes,
//! history losses, and a round trip of arbitrary messages through the encoder.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use msyncdump::msync::lz4::{Lz4Encoder, Lz4Stream};

#[derive(Arbitrary, Debug)]
struct Input {
    envelopes: Vec<Vec<u8>>,
    lose_at: Option<u8>,
    messages: Vec<Vec<u8>>,
}

fuzz_target!(|inp: Input| {
    let cap = 1 << 16;
    let mut s = Lz4Stream::new();
    for (i, e) in inp.envelopes.iter().enumerate() {
        if inp.lose_at == Some(i as u8) {
            s.lose_history();
        }
        if let Ok(u) = s.unwrap(e, cap) {
            assert!(u.data.len() <= cap, "unwrapped past the cap");
        }
    }
    // Whatever the encoder writes, a fresh stream reads back exactly, in order.
    let mut enc = Lz4Encoder::new();
    let mut dec = Lz4Stream::new();
    for m in inp.messages.iter().filter(|m| m.len() <= cap) {
        let wire = enc.wrap(m);
        match dec.unwrap(&wire, cap) {
            Ok(u) => {
                assert!(u.crc_ok(), "CRC of a clean round trip");
                assert_eq!(u.data, &m[..], "round trip changed the message");
            }
            Err(e) => panic!("clean envelope failed: {e}"),
        }
    }
});
