//! The WebSocket state machine (HTTP upgrade, RFC 6455 frames, masking, fragmentation,
//! permessage-deflate) fed arbitrary bytes in arbitrary chunks of both directions, with gaps,
//! from the start of a connection or picked up mid-stream. Events must stay inside the stream.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use msyncdump::frame::websocket::{WebSocket, WsConfig, WsEvent};
use msyncdump::frame::MsyncCheck;
use msyncdump::net::Dir;

#[derive(Arbitrary, Debug)]
enum Op {
    Feed { server: bool, data: Vec<u8> },
    Gap { server: bool, len: u16 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    midstream: bool,
    ops: Vec<Op>,
}

fuzz_target!(|inp: Input| {
    let cfg = WsConfig {
        max_frame: 1 << 16,
        max_message: 1 << 16,
        max_inflated: 1 << 16,
        ..WsConfig::default()
    };
    let mut ws = if inp.midstream {
        WebSocket::new_midstream(cfg, MsyncCheck, 0, 0)
    } else {
        WebSocket::new(cfg, MsyncCheck)
    };
    let mut pos = [0u64; 2];
    let check = |ev: WsEvent<'_>, end: [u64; 2]| {
        if let WsEvent::Message(m) = ev {
            assert!(m.data.len() <= 1 << 16, "message over the cap");
            assert!(m.offset + m.wire_len <= end[m.dir.index()], "message past the stream end");
        }
    };
    for op in &inp.ops {
        match op {
            Op::Feed { server, data } => {
                let dir = if *server { Dir::S2C } else { Dir::C2S };
                let at = pos[dir.index()];
                pos[dir.index()] += data.len() as u64;
                let end = pos;
                ws.feed(dir, at, data, &mut |ev| check(ev, end));
            }
            Op::Gap { server, len } => {
                let dir = if *server { Dir::S2C } else { Dir::C2S };
                let at = pos[dir.index()];
                pos[dir.index()] += u64::from(*len);
                let end = pos;
                ws.gap(dir, at, u64::from(*len), &mut |ev| check(ev, end));
            }
        }
    }
    let end = pos;
    ws.finish(&mut |ev| check(ev, end));
});
