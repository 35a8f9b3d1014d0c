//! The length-prefix splitter with resynchronisation, fed arbitrary chunks and gaps.
//!
//! Two properties: with the MSync check on arbitrary bytes, events stay inside the stream and
//! frames respect the cap; with a check that accepts everything, a stream of well-formed frames
//! cut into arbitrary chunks comes back frame for frame.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use msyncdump::frame::{FrameCheck, LengthPrefixSplitter, MsyncCheck, SplitEvent};

#[derive(Arbitrary, Debug)]
enum Op {
    Feed(Vec<u8>),
    Gap(u16),
}

#[derive(Arbitrary, Debug)]
struct Input {
    max_frame: u16,
    synced: bool,
    ops: Vec<Op>,
    /// Round trip: frame bodies and the chunk sizes to cut their stream into.
    bodies: Vec<Vec<u8>>,
    cuts: Vec<u8>,
}

struct AcceptAll;
impl FrameCheck for AcceptAll {
    fn plausible(&self, _: &[u8]) -> bool {
        true
    }
    fn plausible_start(&self, _: &[u8], _: usize) -> bool {
        true
    }
}

fuzz_target!(|inp: Input| {
    let max_frame = usize::from(inp.max_frame);
    let mut sp = LengthPrefixSplitter::new(max_frame, inp.synced, 0);
    let mut pos = 0u64;
    let check_ev = |ev: SplitEvent<'_>, end: u64| match ev {
        SplitEvent::Frame { offset, wire_len, body }
        | SplitEvent::Invalid { offset, wire_len, body } => {
            assert!(body.len() <= max_frame, "frame over the cap");
            assert_eq!(wire_len, body.len() as u64 + 4);
            assert!(offset + wire_len <= end, "frame past the stream end");
        }
        SplitEvent::Oversize { offset, len } => {
            assert!(len > max_frame as u64);
            assert!(offset + 4 <= end);
        }
        SplitEvent::Skipped { offset, len } => {
            assert!(len > 0 || offset <= end);
            assert!(offset + len <= end, "skipped past the stream end");
        }
    };
    for op in &inp.ops {
        match op {
            Op::Feed(d) => {
                let end = pos + d.len() as u64;
                sp.feed(pos, d, &MsyncCheck, &mut |ev| check_ev(ev, end));
                pos = end;
            }
            Op::Gap(n) => {
                let end = pos + u64::from(*n);
                sp.gap(pos, u64::from(*n), &mut |ev| check_ev(ev, end));
                pos = end;
            }
        }
        assert!(sp.buffered() <= max_frame.max(4) + 4 + 65536, "splitter holds too much");
    }
    sp.finish(&MsyncCheck, &mut |ev| check_ev(ev, pos));

    // Round trip.
    let bodies: Vec<&Vec<u8>> = inp.bodies.iter().filter(|b| b.len() <= 4096).collect();
    let mut stream = Vec::new();
    for b in &bodies {
        stream.extend_from_slice(&(b.len() as u32).to_be_bytes());
        stream.extend_from_slice(b);
    }
    let mut sp = LengthPrefixSplitter::new(4096, true, 0);
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut at = 0usize;
    let mut cuts = inp.cuts.iter().cycle();
    while at < stream.len() {
        let n = usize::from(cuts.next().copied().unwrap_or(255)).max(1);
        let end = (at + n).min(stream.len());
        sp.feed(at as u64, &stream[at..end], &AcceptAll, &mut |ev| match ev {
            SplitEvent::Frame { body, .. } => got.push(body.to_vec()),
            other => panic!("unexpected {other:?} in a clean stream"),
        });
        at = end;
    }
    let want: Vec<Vec<u8>> = bodies.into_iter().cloned().collect();
    assert_eq!(got, want);
});
