//! The WebSocket layer of synthetic web-SDK sessions: the HTTP/1.1 upgrade, RFC 6455 frames
//! (client frames masked with a fresh key each, or unmasked when a test asks for the rule
//! broken), and permessage-deflate (RFC 7692).
//!
//! Invariants: every frame uses the shortest length form (7, 16 or 64 bits), as a peer must;
//! a deflated message is the raw Deflate stream of the message up to a sync flush with its
//! trailing `00 00 ff ff` removed, so the receiver appends it back before inflating.

use std::io::Write;

use flate2::write::DeflateEncoder;
use flate2::Compression;

pub(crate) const OP_CONT: u8 = 0x0;
pub(crate) const OP_BINARY: u8 = 0x2;
pub(crate) const OP_CLOSE: u8 = 0x8;
pub(crate) const OP_PING: u8 = 0x9;
pub(crate) const OP_PONG: u8 = 0xa;

/// The GUID of RFC 6455 section 1.3, appended to the key before hashing.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// SHA-1 (FIPS 180-4). Only the handshake's accept key needs it; it is not used for security.
pub(crate) fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476, 0xc3d2_e1f0];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, c) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5a82_7999),
                20..=39 => (b ^ c ^ d, 0x6ed9_eba1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8f1b_bcdc),
                _ => (b ^ c ^ d, 0xca62_c1d6),
            };
            let t =
                a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (o, x) in out.chunks_exact_mut(4).zip(h) {
        o.copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// Standard base64 with padding (RFC 4648 section 4): the JSON renderer's.
pub(crate) fn base64(data: &[u8]) -> String {
    let mut out = Vec::with_capacity(data.len().div_ceil(3) * 4);
    crate::msync::render::json::push_base64(&mut out, data);
    // The encoder writes only ASCII.
    String::from_utf8_lossy(&out).into_owned()
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub(crate) fn accept_key(key: &str) -> String {
    base64(&sha1(format!("{key}{WS_GUID}").as_bytes()))
}

/// The client's upgrade request, offering permessage-deflate as browsers do.
pub(crate) fn upgrade_request(host: &str, key: &str) -> Vec<u8> {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Origin: https://webim.easemob.com\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: {key}\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    )
    .into_bytes()
}

/// The server's `101`; `deflate` is the accepted permessage-deflate (None: refused).
pub(crate) fn upgrade_response(key: &str, deflate: Option<bool>) -> Vec<u8> {
    let ext = match deflate {
        None => String::new(),
        Some(true) => "Sec-WebSocket-Extensions: permessage-deflate\r\n".to_owned(),
        Some(false) => "Sec-WebSocket-Extensions: permessage-deflate; \
                        server_no_context_takeover; client_no_context_takeover\r\n"
            .to_owned(),
    };
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{ext}\r\n",
        accept_key(key)
    )
    .into_bytes()
}

/// A refused upgrade (the token was not accepted).
pub(crate) fn reject_response() -> Vec<u8> {
    let body = "{\"error\":\"unauthorized\"}";
    format!(
        "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Appends one frame. `mask` is the client's key (client frames must be masked, server frames
/// must not be).
pub(crate) fn frame(
    out: &mut Vec<u8>,
    fin: bool,
    rsv1: bool,
    opcode: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    out.push(u8::from(fin) << 7 | u8::from(rsv1) << 6 | (opcode & 0x0f));
    let m = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(m | len as u8);
    } else if let Ok(l) = u16::try_from(len) {
        out.push(m | 126);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(k) => {
            out.extend_from_slice(&k);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
}

/// The permessage-deflate compressor of one direction.
pub(crate) struct Deflater {
    z: DeflateEncoder<Vec<u8>>,
    takeover: bool,
}

impl Deflater {
    pub(crate) fn new(takeover: bool) -> Self {
        Deflater { z: DeflateEncoder::new(Vec::new(), Compression::default()), takeover }
    }

    /// The compressed payload of one message.
    pub(crate) fn compress(&mut self, msg: &[u8]) -> Vec<u8> {
        if !self.takeover {
            // No context takeover: every message starts with an empty window.
            self.z = DeflateEncoder::new(Vec::new(), Compression::default());
        }
        // Writing into a Vec cannot fail; flush() is a sync flush, ending in 00 00 ff ff.
        let ok = self.z.write_all(msg).and_then(|()| self.z.flush()).is_ok();
        let mut out = std::mem::take(self.z.get_mut());
        if ok && out.ends_with(&[0, 0, 0xff, 0xff]) {
            out.truncate(out.len() - 4);
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::frame::websocket::{Control, WebSocket, WsConfig, WsEvent};
    use crate::frame::MsyncCheck;
    use crate::net::Dir;

    #[derive(Debug, PartialEq, Eq)]
    enum Ev {
        Upgrade(Option<String>),
        Rejected(u16),
        Msg { dir: Dir, data: Vec<u8>, deflated: bool, frames: u32 },
        Ping(Dir, Vec<u8>),
        Pong(Dir, Vec<u8>),
        Close(Dir, Option<u16>, String),
        Other(String),
    }

    /// Feeds both directions (client first) through the dissector's parser, in chunks of `chunk`.
    fn parse(c2s: &[u8], s2c: &[u8], chunk: usize) -> Vec<Ev> {
        let mut ws = WebSocket::new(WsConfig::default(), MsyncCheck);
        let mut evs = Vec::new();
        let mut emit = |e: WsEvent<'_>| {
            evs.push(match e {
                WsEvent::Upgrade(h) => Ev::Upgrade(h.extensions.clone()),
                WsEvent::Rejected { status, .. } => Ev::Rejected(status),
                WsEvent::Message(m) => Ev::Msg {
                    dir: m.dir,
                    data: m.data.to_vec(),
                    deflated: m.deflated,
                    frames: m.frames,
                },
                WsEvent::Control { dir, control, .. } => match control {
                    Control::Ping { payload } => Ev::Ping(dir, payload.to_vec()),
                    Control::Pong { payload } => Ev::Pong(dir, payload.to_vec()),
                    Control::Close { code, reason } => Ev::Close(dir, code, reason.into_owned()),
                },
                other => Ev::Other(format!("{other:?}")),
            })
        };
        for (dir, data) in [(Dir::C2S, c2s), (Dir::S2C, s2c)] {
            for (i, c) in data.chunks(chunk.max(1)).enumerate() {
                ws.feed(dir, (i * chunk.max(1)) as u64, c, &mut emit);
            }
        }
        ws.finish(&mut emit);
        evs
    }

    fn payload(n: usize, seed: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    #[test]
    fn sha1_and_accept_key_match_the_standards() {
        assert_eq!(base64(&sha1(b"abc")), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
        assert_eq!(base64(&sha1(b"")), "2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
        // 56 bytes: the padding needs a second block.
        let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(
            sha1(long).iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        // RFC 6455 section 1.3.
        assert_eq!(accept_key(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }

    #[test]
    fn lengths_and_masks_parse_back() {
        let sizes = [0usize, 1, 125, 126, 127, 65_535, 65_536, 70_000];
        let mut c = upgrade_request("198.51.100.10:6717", KEY);
        let mut s = upgrade_response(KEY, None);
        for (i, &n) in sizes.iter().enumerate() {
            let key = [i as u8, 0x5a, 0xa5, 0xff];
            frame(&mut c, true, false, OP_BINARY, &payload(n, i as u8), Some(key));
            frame(&mut s, true, false, OP_BINARY, &payload(n, 100 + i as u8), None);
        }
        // Header sizes: 7-bit, 16-bit and 64-bit lengths, plus the mask.
        let mut one = Vec::new();
        frame(&mut one, true, false, OP_BINARY, &payload(126, 0), Some([1, 2, 3, 4]));
        assert_eq!(&one[..4], &[0x82, 0x80 | 126, 0, 126]);
        let mut big = Vec::new();
        frame(&mut big, true, false, OP_BINARY, &payload(65_536, 0), None);
        assert_eq!(&big[..10], &[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
        for chunk in [1, 7, 1448, 1 << 20] {
            if chunk == 1 && c.len() > 300_000 {
                continue;
            }
            let evs = parse(&c, &s, chunk);
            assert_eq!(evs[0], Ev::Upgrade(None));
            let msgs: Vec<&Ev> = evs.iter().filter(|e| matches!(e, Ev::Msg { .. })).collect();
            // The empty message of each direction holds no envelope: a problem, not a message.
            let empty = evs
                .iter()
                .filter(|e| matches!(e, Ev::Other(o) if o.contains("EmptyMessage")))
                .count();
            assert_eq!(empty, 2);
            let sizes = &sizes[1..];
            assert_eq!(msgs.len(), 2 * sizes.len());
            for (k, &n) in sizes.iter().enumerate() {
                let i = k + 1;
                let want = Ev::Msg {
                    dir: Dir::C2S,
                    data: payload(n, i as u8),
                    deflated: false,
                    frames: 1,
                };
                assert_eq!(msgs[k], &want);
                let want = Ev::Msg {
                    dir: Dir::S2C,
                    data: payload(n, 100 + i as u8),
                    deflated: false,
                    frames: 1,
                };
                assert_eq!(msgs[sizes.len() + k], &want);
            }
        }
    }

    #[test]
    fn fragments_with_interleaved_control_frames_and_close() {
        let m = payload(300, 9);
        let mut c = upgrade_request("h", KEY);
        frame(&mut c, false, false, OP_BINARY, &m[..100], Some([9, 8, 7, 6]));
        frame(&mut c, true, false, OP_PONG, b"p1", Some([1, 1, 1, 1]));
        frame(&mut c, false, false, OP_CONT, &m[100..200], Some([5, 4, 3, 2]));
        frame(&mut c, true, false, OP_CONT, &m[200..], Some([0, 0, 0, 1]));
        let mut close = 1000u16.to_be_bytes().to_vec();
        close.extend_from_slice(b"bye");
        frame(&mut c, true, false, OP_CLOSE, &close, Some([3, 3, 3, 3]));
        let mut s = upgrade_response(KEY, None);
        frame(&mut s, false, false, OP_BINARY, &m[..10], None);
        frame(&mut s, true, false, OP_PING, b"p1", None);
        frame(&mut s, true, false, OP_CONT, &m[10..], None);
        frame(&mut s, true, false, OP_CLOSE, &[], None);
        let evs = parse(&c, &s, 5);
        let want = vec![
            Ev::Upgrade(None),
            Ev::Pong(Dir::C2S, b"p1".to_vec()),
            Ev::Msg { dir: Dir::C2S, data: m.clone(), deflated: false, frames: 3 },
            Ev::Close(Dir::C2S, Some(1000), "bye".into()),
            Ev::Ping(Dir::S2C, b"p1".to_vec()),
            Ev::Msg { dir: Dir::S2C, data: m.clone(), deflated: false, frames: 2 },
            Ev::Close(Dir::S2C, None, String::new()),
        ];
        assert_eq!(evs, want);
    }

    #[test]
    fn deflate_with_and_without_takeover_inflates_back() {
        for takeover in [true, false] {
            let mut c = upgrade_request("h", KEY);
            let mut s = upgrade_response(KEY, Some(takeover));
            let (mut dc, mut ds) = (Deflater::new(takeover), Deflater::new(takeover));
            let msgs: Vec<Vec<u8>> = (0..6)
                .map(|i| {
                    let mut m = b"easemob-demo#chatdemoui_user0001@easemob.com/webim".to_vec();
                    m.extend(payload(40 * i, i as u8));
                    m
                })
                .collect();
            let mut sizes = Vec::new();
            for (i, m) in msgs.iter().enumerate() {
                let z = dc.compress(m);
                assert!(!z.ends_with(&[0, 0, 0xff, 0xff]));
                sizes.push(z.len());
                // The last one fragmented: RSV1 on the first frame only.
                if i == 5 {
                    let h = z.len() / 2;
                    frame(&mut c, false, true, OP_BINARY, &z[..h], Some([1, 2, 3, 4]));
                    frame(&mut c, true, false, OP_CONT, &z[h..], Some([4, 3, 2, 1]));
                } else {
                    frame(&mut c, true, true, OP_BINARY, &z, Some([7, 7, 7, i as u8]));
                }
                frame(&mut s, true, true, OP_BINARY, &ds.compress(m), None);
            }
            if takeover {
                // The repeated prefix costs almost nothing once it is in the window.
                assert!(sizes[1] < Deflater::new(false).compress(&msgs[1]).len());
            }
            let evs = parse(&c, &s, 3);
            let ext = if takeover {
                "permessage-deflate"
            } else {
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
            };
            assert_eq!(evs[0], Ev::Upgrade(Some(ext.into())));
            let got: Vec<(Dir, Vec<u8>)> = evs
                .iter()
                .filter_map(|e| match e {
                    Ev::Msg { dir, data, deflated: true, .. } => Some((*dir, data.clone())),
                    _ => None,
                })
                .collect();
            let want: Vec<(Dir, Vec<u8>)> = [Dir::C2S, Dir::S2C]
                .iter()
                .flat_map(|&d| msgs.iter().map(move |m| (d, m.clone())))
                .collect();
            assert_eq!(got, want, "takeover {takeover}: {evs:?}");
        }
    }

    #[test]
    fn rejected_upgrade_is_reported() {
        let c = upgrade_request("h", KEY);
        let s = reject_response();
        let evs = parse(&c, &s, 1448);
        assert_eq!(evs.first(), Some(&Ev::Rejected(401)), "{evs:?}");
    }
}
