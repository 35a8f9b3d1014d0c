//! What a connection carries, from the first bytes of each direction.
//!
//! [`detect`] looks at no more than [`LOOKAHEAD`] bytes per direction and never panics: TLS
//! (the ClientHello's SNI and ALPN), HTTP (a WebSocket upgrade or not), raw length-prefixed
//! MSync, WebSocket frames carrying MSync without the upgrade (a connection picked up
//! mid-stream; a plausible message confirmed by the frame header after it), or something
//! else. [`detect_deep`] searches further for either framing. Its answer depends only on the bytes given, so the caller
//! can call it again as more arrive until it is not [`Detection::NeedMore`].

use super::websocket::{
    head_end, msync_frame_run, next_header_fits, parse_head, WebSocket, WsConfig, WsEvent,
};
use super::{FrameCheck, LengthPrefixSplitter, MsyncCheck, SplitEvent};
use crate::net::Dir;

/// Bytes per direction examined at most.
pub const LOOKAHEAD: usize = 4096;

/// Bytes per direction examined by [`detect_deep`]: a connection picked up mid-stream may
/// begin inside a message longer than [`LOOKAHEAD`] (a pull answer of many metas, a large
/// custom message), and its first message boundary then lies beyond the look-ahead.
pub const DEEP_LOOKAHEAD: usize = 64 << 10;

/// Bytes of a request head read by [`detect_final`] to find its `Upgrade` header: the
/// WebSocket parser's own cap on a head.
pub const HEAD_LOOKAHEAD: usize = 16 << 10;

/// What a connection carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detection {
    /// Nothing conclusive yet: fewer than [`LOOKAHEAD`] bytes in both directions, or a
    /// request head longer than that whose answer is still to come.
    NeedMore,
    /// 4-byte length-prefixed MSync (from the start, or found within the look-ahead).
    Msync,
    /// An HTTP/1.1 request with `Upgrade: websocket` (or a `101` answer when the request is
    /// missing).
    WebSocketUpgrade,
    /// WebSocket frames whose binary payload is a plausible MSync envelope, without the
    /// upgrade: a connection picked up mid-stream.
    WebSocketFrames,
    /// TLS: what the ClientHello offered, when it was seen.
    Tls {
        sni: Option<String>,
        alpn: Vec<String>,
    },
    /// HTTP that is not a WebSocket upgrade.
    Http,
    Other,
}

/// Classifies a connection from the first bytes of each direction (either may be empty).
pub fn detect(c2s_head: &[u8], s2c_head: &[u8]) -> Detection {
    detect_with(c2s_head, s2c_head, &MsyncCheck)
}

/// [`detect`] with another notion of a plausible message (tests).
pub fn detect_with<C: FrameCheck>(c2s_head: &[u8], s2c_head: &[u8], check: &C) -> Detection {
    detect_inner(c2s_head, s2c_head, check, false)
}

/// [`detect_with`]; `last`: no more bytes will come, so a WebSocket message that ends where a
/// direction's bytes do needs no frame after it.
fn detect_inner<C: FrameCheck>(
    c2s_head: &[u8],
    s2c_head: &[u8],
    check: &C,
    last: bool,
) -> Detection {
    let c = c2s_head.get(..LOOKAHEAD.min(c2s_head.len())).unwrap_or_default();
    let s = s2c_head.get(..LOOKAHEAD.min(s2c_head.len())).unwrap_or_default();
    let full = c.len() >= LOOKAHEAD || s.len() >= LOOKAHEAD;
    // A direction's bytes end here only if the look-ahead did not cut them.
    let ends = [last && c2s_head.len() <= LOOKAHEAD, last && s2c_head.len() <= LOOKAHEAD];

    if let Some(d) = tls(c, s, full) {
        return d;
    }
    if let Some(d) = http(c, s, full) {
        return d;
    }
    if let Some(d) = framed(c, s, check, ends) {
        return d;
    }
    if full {
        Detection::Other
    } else {
        Detection::NeedMore
    }
}

/// For a connection picked up mid-stream that [`detect`] found to be [`Detection::Other`]:
/// whether raw MSync follows within the first [`DEEP_LOOKAHEAD`] bytes of either direction,
/// by a stricter test than the look-ahead's, as the search is sixteen times as long: two
/// plausible length-prefixed messages back to back, or (`last`: no more bytes will come) one
/// that ends where the bytes do; else WebSocket, by the same test on frames: two whole final
/// binary frames back to back (server frames unmasked, client frames masked, or both
/// unmasked) whose payloads, unmasked and inflated, are plausible envelopes, or one that ends
/// where the bytes do (see [`msync_frame_run`]).
pub fn detect_deep(c2s_head: &[u8], s2c_head: &[u8], last: bool) -> Option<Detection> {
    let c = c2s_head.get(..DEEP_LOOKAHEAD.min(c2s_head.len())).unwrap_or_default();
    let s = s2c_head.get(..DEEP_LOOKAHEAD.min(s2c_head.len())).unwrap_or_default();
    if prefixed_run(c, last) || prefixed_run(s, last) {
        return Some(Detection::Msync);
    }
    // Bytes cut by the search's own bound do not end there.
    let c_last = last && c2s_head.len() <= DEEP_LOOKAHEAD;
    let s_last = last && s2c_head.len() <= DEEP_LOOKAHEAD;
    (msync_frame_run(c, Dir::C2S, c_last, &MsyncCheck)
        || msync_frame_run(s, Dir::S2C, s_last, &MsyncCheck))
    .then_some(Detection::WebSocketFrames)
}

/// Whether `b` holds two plausible length-prefixed messages back to back, or (`last`) one
/// that ends where `b` does.
fn prefixed_run(b: &[u8], last: bool) -> bool {
    let mut sp = LengthPrefixSplitter::new(DEEP_LOOKAHEAD, false, 0);
    // The end of the last frame found, while no byte was skipped after it.
    let mut run_end: Option<u64> = None;
    let mut found = false;
    let mut note = |e: SplitEvent<'_>| match e {
        SplitEvent::Frame { offset, wire_len, .. } => {
            found |= run_end == Some(offset);
            run_end = Some(offset + wire_len);
        }
        _ => run_end = None,
    };
    sp.feed(0, b, &MsyncCheck, &mut note);
    // A false candidate claiming most of the search would otherwise hide every message behind
    // it; a real one cut off by the end of `b` is found on a later call, when more has come.
    sp.finish(&MsyncCheck, &mut note);
    found || (last && run_end == Some(b.len() as u64))
}

/// The framing under which a plausible message comes first in either direction.
fn framed<C: FrameCheck>(c: &[u8], s: &[u8], check: &C, ends: [bool; 2]) -> Option<Detection> {
    // Where each framing first finds a plausible message (offset into either direction).
    let lp = [first_prefixed(c, check), first_prefixed(s, check)].into_iter().flatten().min();
    let ws = first_ws_message(c, s, check, ends);
    match (lp, ws) {
        (Some(a), Some(b)) if b < a => Some(Detection::WebSocketFrames),
        (Some(_), _) => Some(Detection::Msync),
        (None, Some(_)) => Some(Detection::WebSocketFrames),
        (None, None) => None,
    }
}

/// What the connection is taken for when no more bytes will come (it closed, or the caller
/// holds no more): [`detect`], except that a request still waiting on its answer is decided
/// from the request alone. A request line `GET <target> HTTP/1.x` is plainly HTTP, whatever
/// the server did not say: an upgrade when the `Upgrade: websocket` header is among the first
/// [`HEAD_LOOKAHEAD`] bytes of `c2s_head` (a browser's cookies push it past the look-ahead),
/// else plain HTTP. Anything else undecided is [`Detection::Other`].
pub fn detect_final(c2s_head: &[u8], s2c_head: &[u8]) -> Detection {
    match detect_inner(c2s_head, s2c_head, &MsyncCheck, true) {
        Detection::NeedMore => {}
        d => return d,
    }
    let c = c2s_head.get(..HEAD_LOOKAHEAD.min(c2s_head.len())).unwrap_or_default();
    let line_end = c.iter().position(|&b| b == b'\n').unwrap_or(c.len());
    let line = String::from_utf8_lossy(c.get(..line_end).unwrap_or_default()).into_owned();
    let words: Vec<&str> = line.split_whitespace().collect();
    let request = line_end < c.len()
        && matches!(words.as_slice(), ["GET", target, version]
            if !target.is_empty() && version.starts_with("HTTP/1."));
    if !request {
        return Detection::Other;
    }
    let head = parse_head(c.get(..head_end(c).unwrap_or(c.len())).unwrap_or_default());
    let upgrade = head
        .get("upgrade")
        .is_some_and(|u| u.split(',').any(|t| t.trim().eq_ignore_ascii_case("websocket")));
    if upgrade {
        Detection::WebSocketUpgrade
    } else {
        Detection::Http
    }
}

/// TLS from the first record of either direction.
fn tls(c: &[u8], s: &[u8], full: bool) -> Option<Detection> {
    match tls_record_start(c) {
        Some(0x16) => {
            let Some(hello) = client_hello(c, full) else { return Some(Detection::NeedMore) };
            return Some(hello);
        }
        // Application data or an alert first: picked up mid-stream.
        Some(_) => return Some(Detection::Tls { sni: None, alpn: Vec::new() }),
        None => {}
    }
    if c.is_empty() && tls_record_start(s).is_some() {
        return Some(Detection::Tls { sni: None, alpn: Vec::new() });
    }
    None
}

/// The content type of a TLS record header at the start of `b`, if it looks like one.
fn tls_record_start(b: &[u8]) -> Option<u8> {
    let (&t, &major, &minor) = (b.first()?, b.get(1)?, b.get(2)?);
    if !matches!(t, 0x14..=0x17) || major != 3 || minor > 4 {
        return None;
    }
    // The length, when present, must fit a record (2^14 plus expansion).
    if let (Some(&h), Some(&l)) = (b.get(3), b.get(4)) {
        let len = u16::from_be_bytes([h, l]);
        if len == 0 || len > (1 << 14) + 2048 {
            return None;
        }
    }
    Some(t)
}

/// Bounds-checked reading of TLS structures.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Self {
        Reader { b, pos: 0 }
    }
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.bytes(1)?.first().copied()
    }
    fn u16(&mut self) -> Option<u16> {
        let s = self.bytes(2)?;
        Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
    }
    fn u24(&mut self) -> Option<usize> {
        let s = self.bytes(3)?;
        Some(
            usize::from(*s.first()?) << 16 | usize::from(*s.get(1)?) << 8 | usize::from(*s.get(2)?),
        )
    }
    /// A vector with a length prefix of `n` bytes; truncated to what is present when the data
    /// ends early (`lax`), so a ClientHello cut at the look-ahead still yields its first
    /// extensions.
    fn vec(&mut self, n: usize, lax: bool) -> Option<Reader<'a>> {
        let len = match n {
            1 => usize::from(self.u8()?),
            2 => usize::from(self.u16()?),
            _ => self.u24()?,
        };
        let avail = self.b.len().saturating_sub(self.pos);
        let take = if lax { len.min(avail) } else { len };
        Some(Reader::new(self.bytes(take)?))
    }
    fn done(&self) -> bool {
        self.pos >= self.b.len()
    }
}

/// The SNI and ALPN of a ClientHello in the first record(s) of `c`, or `None` when more bytes
/// are needed (and may still come).
fn client_hello(c: &[u8], full: bool) -> Option<Detection> {
    // Handshake messages may span records: gather the fragments of consecutive handshake
    // records that are present.
    let mut hs = Vec::new();
    let mut r = Reader::new(c);
    while let Some(0x16) = r.b.get(r.pos).copied() {
        let Some(_hdr) = r.bytes(3) else { break };
        let Some(len) = r.u16() else { break };
        let avail = r.b.len().saturating_sub(r.pos);
        let frag = r.bytes(usize::from(len).min(avail)).unwrap_or_default();
        hs.extend_from_slice(frag);
        if usize::from(len) > avail {
            break;
        }
        // Enough once the handshake message inside is whole.
        let mut h = Reader::new(&hs);
        if let (Some(_), Some(n)) = (h.u8(), h.u24()) {
            if hs.len() >= n.saturating_add(4) {
                break;
            }
        }
    }
    let mut h = Reader::new(&hs);
    let msg_type = h.u8();
    let len = h.u24();
    let whole = len.is_some_and(|n| hs.len() >= n.saturating_add(4));
    if !whole && !full {
        return None;
    }
    let none = Detection::Tls { sni: None, alpn: Vec::new() };
    if msg_type != Some(1) {
        return Some(none);
    }
    let lax = !whole;
    let avail = hs.len().saturating_sub(4);
    let Some(mut body) = h.bytes(len.unwrap_or(0).min(avail)).map(Reader::new) else {
        return Some(none);
    };
    let mut sni = None;
    let mut alpn = Vec::new();
    let _ = (|| -> Option<()> {
        body.bytes(2 + 32)?; // version, random
        body.vec(1, false)?; // session id
        body.vec(2, false)?; // cipher suites
        body.vec(1, false)?; // compression methods
        let mut exts = body.vec(2, lax)?;
        while !exts.done() {
            let ty = exts.u16()?;
            let mut data = exts.vec(2, lax)?;
            match ty {
                0 => {
                    let mut list = data.vec(2, lax)?;
                    while !list.done() {
                        let kind = list.u8()?;
                        let name = list.vec(2, false)?;
                        if kind == 0 && sni.is_none() {
                            sni = Some(String::from_utf8_lossy(name.b).into_owned());
                        }
                    }
                }
                16 => {
                    let mut list = data.vec(2, lax)?;
                    while !list.done() {
                        let p = list.vec(1, false)?;
                        alpn.push(String::from_utf8_lossy(p.b).into_owned());
                    }
                }
                _ => {}
            }
        }
        Some(())
    })();
    Some(Detection::Tls { sni, alpn })
}

const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

/// HTTP from the request (or, without one, the answer).
fn http(c: &[u8], s: &[u8], full: bool) -> Option<Detection> {
    let is_prefix = |b: &[u8], p: &[u8]| {
        let n = b.len().min(p.len());
        !b.is_empty() && b.get(..n) == p.get(..n)
    };
    if let Some(m) = METHODS.iter().find(|m| is_prefix(c, m)) {
        if c.len() < m.len() {
            return Some(Detection::NeedMore);
        }
        if *m != b"GET " {
            return Some(Detection::Http);
        }
        let upgrade = |head: &super::websocket::Head| {
            head.get("upgrade")
                .is_some_and(|u| u.split(',').any(|t| t.trim().eq_ignore_ascii_case("websocket")))
        };
        let Some(end) = head_end(c) else {
            if !full {
                return Some(Detection::NeedMore);
            }
            // A head longer than the look-ahead (a browser's cookies easily pass 4 KiB): the
            // header lines seen so far tell an upgrade, or else the server's status line (a
            // browser may send `Upgrade` last), which is waited for. The WebSocket parser
            // reads heads up to its own, larger, cap.
            if upgrade(&parse_head(c)) {
                return Some(Detection::WebSocketUpgrade);
            }
            return Some(match switching(s) {
                Some(true) => Detection::WebSocketUpgrade,
                Some(false) => Detection::Http,
                None => Detection::NeedMore,
            });
        };
        let head = parse_head(c.get(..end).unwrap_or_default());
        return Some(if upgrade(&head) { Detection::WebSocketUpgrade } else { Detection::Http });
    }
    if c.is_empty() && is_prefix(s, b"HTTP/1.") {
        let Some(end) = head_end(s) else {
            return Some(if full { Detection::Http } else { Detection::NeedMore });
        };
        let head = parse_head(s.get(..end).unwrap_or_default());
        let switching = head.first.get(1).is_some_and(|st| st == "101");
        return Some(if switching { Detection::WebSocketUpgrade } else { Detection::Http });
    }
    None
}

/// Whether the server's first line is an HTTP `101` status line; `None` until the line is
/// whole.
fn switching(s: &[u8]) -> Option<bool> {
    let Some(nl) = s.iter().position(|&b| b == b'\n') else {
        return (s.len() >= LOOKAHEAD).then_some(false);
    };
    let line = String::from_utf8_lossy(s.get(..nl).unwrap_or_default()).into_owned();
    let mut w = line.split_whitespace();
    Some(w.next().is_some_and(|v| v.starts_with("HTTP/1.")) && w.next() == Some("101"))
}

/// Offset of the first plausible length-prefixed message in `b`.
fn first_prefixed<C: FrameCheck>(b: &[u8], check: &C) -> Option<u64> {
    let mut sp = LengthPrefixSplitter::new(LOOKAHEAD, false, 0);
    let mut first = None;
    let mut note = |e: SplitEvent<'_>| {
        if let (None, SplitEvent::Frame { offset, .. }) = (first, &e) {
            first = Some(*offset);
        }
    };
    sp.feed(0, b, check, &mut note);
    first
}

/// Offset of the first binary WebSocket message with a plausible payload in either direction
/// (masked client to server, unmasked server to client) that the bytes after it confirm: a
/// frame header that could follow it (same masking, see [`next_header_fits`]), or (`ends`, per
/// direction: no more bytes will come) nothing at all. A message of a few bytes passes the
/// envelope check in random bytes about once in 250 connections; with a header after it, some
/// forty times less often.
fn first_ws_message<C: FrameCheck>(c: &[u8], s: &[u8], check: &C, ends: [bool; 2]) -> Option<u64> {
    let cfg = WsConfig {
        max_frame: LOOKAHEAD as u64,
        max_message: LOOKAHEAD,
        max_inflated: 64 << 10,
        ..WsConfig::default()
    };
    let mut ws = WebSocket::new_midstream(cfg, Borrowed(check), 0, 0);
    let mut first: Option<u64> = None;
    let mut note = |e: WsEvent<'_>| {
        if let WsEvent::Message(m) = e {
            if m.binary && check.plausible(m.data) && confirmed(&m, c, s, ends) {
                first = Some(first.map_or(m.offset, |f| f.min(m.offset)));
            }
        }
    };
    ws.feed(Dir::C2S, 0, c, &mut note);
    ws.feed(Dir::S2C, 0, s, &mut note);
    first
}

/// Whether what follows a message found by [`first_ws_message`] confirms it.
fn confirmed(m: &super::websocket::WsMessage<'_>, c: &[u8], s: &[u8], ends: [bool; 2]) -> bool {
    let (b, ends) = match m.dir {
        Dir::C2S => (c, ends[0]),
        Dir::S2C => (s, ends[1]),
    };
    let at = |o: u64| b.get(usize::try_from(o).unwrap_or(usize::MAX)..).unwrap_or_default();
    let masked = at(m.offset).get(1).is_some_and(|&b1| b1 & 0x80 != 0);
    let next = at(m.offset.saturating_add(m.wire_len));
    match next_header_fits(next, masked) {
        Some(fits) => fits,
        None => ends && next.is_empty(),
    }
}

/// A [`FrameCheck`] by reference.
struct Borrowed<'a, C: FrameCheck>(&'a C);

impl<C: FrameCheck> FrameCheck for Borrowed<'_, C> {
    fn plausible(&self, body: &[u8]) -> bool {
        self.0.plausible(body)
    }
    fn acceptable(&self, body: &[u8]) -> bool {
        self.0.acceptable(body)
    }
    fn plausible_start(&self, head: &[u8], len: usize) -> bool {
        self.0.plausible_start(head, len)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::frame::testutil::{body, TestCheck};

    fn vec16(b: &[u8]) -> Vec<u8> {
        let mut v = (b.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(b);
        v
    }

    /// Past the look-ahead, raw MSync is two plausible messages back to back, or one that
    /// ends with the bytes when no more will come.
    #[test]
    fn deep_search_wants_two_messages_back_to_back() {
        use crate::msync::pb;
        use prost::Message;
        let frame = |command: i32| {
            let body = pb::MSync { command: Some(command), ..Default::default() }.encode_to_vec();
            let mut f = (body.len() as u32).to_be_bytes().to_vec();
            f.extend(body);
            f
        };
        // Bytes of a long message's tail, none of which can start a frame under the cap.
        let tail: Vec<u8> =
            (0..10_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 | 0x80).collect();
        let mut one = tail.clone();
        one.extend(frame(1));
        let mut two = one.clone();
        two.extend(frame(0));
        assert_eq!(detect_deep(&two, &[], false), Some(Detection::Msync));
        assert_eq!(detect_deep(&[], &two, false), Some(Detection::Msync));
        assert_eq!(detect_deep(&one, &[], false), None);
        assert_eq!(detect_deep(&one, &[], true), Some(Detection::Msync));
        let mut more = two.clone();
        more.extend_from_slice(&[0, 0]);
        assert_eq!(detect_deep(&more, &[], false), Some(Detection::Msync));
        assert_eq!(detect_deep(&tail, &tail, true), None);
        // Only the first DEEP_LOOKAHEAD bytes are searched.
        let mut late = vec![0x80; DEEP_LOOKAHEAD];
        late.extend(&two);
        assert_eq!(detect_deep(&late, &[], true), None);
    }

    fn ext(ty: u16, data: &[u8]) -> Vec<u8> {
        let mut v = ty.to_be_bytes().to_vec();
        v.extend(vec16(data));
        v
    }

    /// A ClientHello as a browser sends it: GREASE, SNI, ALPN, supported versions, key share.
    fn client_hello_msg(sni: &str, alpn: &[&str]) -> Vec<u8> {
        let mut b = vec![0x03, 0x03];
        b.extend((0..32u8).map(|i| i.wrapping_mul(37)));
        b.push(32);
        b.extend((0..32u8).map(|i| i ^ 0x5a));
        b.extend(vec16(&[0x0a, 0x0a, 0x13, 0x01, 0x13, 0x02, 0x13, 0x03, 0xc0, 0x2b, 0xc0, 0x2f]));
        b.extend_from_slice(&[1, 0]);
        let mut exts = ext(0x0a0a, &[]);
        let mut name = vec![0u8];
        name.extend(vec16(sni.as_bytes()));
        exts.extend(ext(0, &vec16(&name)));
        exts.extend(ext(23, &[]));
        let mut protos = Vec::new();
        for p in alpn {
            protos.push(p.len() as u8);
            protos.extend_from_slice(p.as_bytes());
        }
        exts.extend(ext(16, &vec16(&protos)));
        exts.extend(ext(43, &[6, 0x1a, 0x1a, 3, 4, 3, 3]));
        let mut ks = vec![0x00, 0x1d];
        ks.extend(vec16(&[0x42; 32]));
        exts.extend(ext(51, &vec16(&ks)));
        exts.extend(ext(21, &[0; 200]));
        b.extend(vec16(&exts));
        let mut m = vec![1];
        m.extend_from_slice(&(b.len() as u32).to_be_bytes()[1..]);
        m.extend(b);
        m
    }

    fn records(msg: &[u8], split: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for part in [&msg[..split], &msg[split..]] {
            if part.is_empty() {
                continue;
            }
            out.extend_from_slice(&[0x16, 0x03, 0x01]);
            out.extend(vec16(part));
        }
        out
    }

    #[test]
    fn tls_client_hello_gives_sni_and_alpn() {
        let msg = client_hello_msg("im-api-v2.easemob.com", &["h2", "http/1.1"]);
        let want = Detection::Tls {
            sni: Some("im-api-v2.easemob.com".into()),
            alpn: vec!["h2".into(), "http/1.1".into()],
        };
        assert_eq!(detect(&records(&msg, msg.len()), b""), want);
        // The same message over two records.
        assert_eq!(detect(&records(&msg, 100), b""), want);
        // Every truncation asks for more, or already knows it is TLS.
        let rec = records(&msg, msg.len());
        for n in 0..rec.len() {
            let d = detect(&rec[..n], b"");
            assert!(matches!(d, Detection::NeedMore | Detection::Tls { .. }), "{n}: {d:?}");
        }
        // At the look-ahead limit a cut hello still yields what it holds.
        let mut big = client_hello_msg("a.example", &["h2"]);
        big.extend(vec![0u8; 0]);
        let mut rec = records(&big, big.len());
        rec.truncate(150);
        rec.resize(LOOKAHEAD, 0);
        assert!(matches!(detect(&rec, b""), Detection::Tls { .. }));
    }

    #[test]
    fn tls_picked_up_mid_stream() {
        let mut c = vec![0x17, 0x03, 0x03, 0x00, 0x20];
        c.extend([0x99; 32]);
        assert_eq!(detect(&c, b""), Detection::Tls { sni: None, alpn: vec![] });
        assert_eq!(detect(b"", &c), Detection::Tls { sni: None, alpn: vec![] });
    }

    #[test]
    fn http_and_websocket_upgrade() {
        let req =
            b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
        assert_eq!(detect(req, b""), Detection::WebSocketUpgrade);
        assert_eq!(detect(&req[..20], b""), Detection::NeedMore);
        assert_eq!(detect(b"GE", b""), Detection::NeedMore);
        assert_eq!(detect(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", b""), Detection::Http);
        assert_eq!(detect(b"POST /x HTTP/1.1\r\n", b""), Detection::Http);
        assert_eq!(
            detect(b"", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"),
            Detection::WebSocketUpgrade
        );
        assert_eq!(detect(b"", b"HTTP/1.1 200 OK\r\n\r\n"), Detection::Http);
    }

    /// A browser's upgrade request carries its cookies: a head longer than the look-ahead was
    /// taken for plain HTTP, and every message of the connection was dropped.
    #[test]
    fn an_upgrade_request_longer_than_the_look_ahead() {
        let cookie: String = (0..120).map(|i| format!("c{i}={}; ", "v".repeat(40))).collect();
        let mut req = b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n".to_vec();
        req.extend(format!("Cookie: {cookie}\r\n\r\n").into_bytes());
        assert!(req.len() > LOOKAHEAD);
        assert_eq!(detect(&req, b""), Detection::WebSocketUpgrade);
        assert_eq!(detect(&req[..LOOKAHEAD - 1], b""), Detection::NeedMore);
        // Upgrade after the cookies: the server's 101 tells.
        let mut late = b"GET /ws HTTP/1.1\r\nHost: h\r\n".to_vec();
        late.extend(format!("Cookie: {cookie}\r\nUpgrade: websocket\r\n\r\n").into_bytes());
        assert_eq!(
            detect(&late, b"HTTP/1.1 101 Switching Protocols\r\n"),
            Detection::WebSocketUpgrade
        );
        assert_eq!(detect(&late, b"HTTP/1.1 200 OK\r\n"), Detection::Http);
        assert_eq!(detect(&late, b""), Detection::NeedMore);
        assert_eq!(detect(&late, b"HTTP/1.1 1"), Detection::NeedMore);
    }

    /// An upgrade request whose `Upgrade` header lies past the look-ahead and whose answer
    /// never came was taken for "other": the request alone is plainly HTTP.
    #[test]
    fn a_long_request_without_its_answer_is_decided_from_the_request() {
        let cookie: String = (0..120).map(|i| format!("c{i}={}; ", "v".repeat(40))).collect();
        let mut late = b"GET /ws HTTP/1.1\r\nHost: h\r\n".to_vec();
        late.extend(format!("Cookie: {cookie}\r\nUpgrade: websocket\r\n\r\n").into_bytes());
        assert!(late.len() > LOOKAHEAD && late.len() < HEAD_LOOKAHEAD);
        assert_eq!(detect(&late, b""), Detection::NeedMore);
        assert_eq!(detect_final(&late, b""), Detection::WebSocketUpgrade);
        // Cut before its end (the connection closed, or the hold ran out): what it holds.
        assert_eq!(detect_final(&late[..late.len() - 4], b""), Detection::WebSocketUpgrade);
        let plain = late.split(|&b| b == b'U').next().unwrap();
        assert_eq!(detect_final(plain, b""), Detection::Http);
        let short_head = b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n";
        assert_eq!(detect(short_head, b""), Detection::NeedMore);
        assert_eq!(detect_final(short_head, b""), Detection::WebSocketUpgrade);
        // Not plainly a request: still other.
        for other in [&b"GET "[..], b"GET /ws", b"GET /ws SSH-2.0\r\n", b"SSH-2.0-OpenSSH\r\n"] {
            assert_eq!(detect_final(other, b""), Detection::Other, "{other:?}");
        }
        // What detect decides stands.
        assert_eq!(detect_final(&late, b"HTTP/1.1 200 OK\r\n"), Detection::Http);
    }

    #[test]
    fn raw_msync_from_the_start_and_mid_stream() {
        // version 0, command PROVISION, a payload: an envelope as the real check reads it.
        let env = [0x08, 0x00, 0x40, 0x03, 0x4a, 0x03, 0x0a, 0x01, 0x41];
        let mut c = (env.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(&env);
        assert_eq!(detect(&c, b""), Detection::Msync);
        let mut s = b"\x33\x44tail of an earlier message".to_vec();
        for i in 0..3 {
            let b = body(20, i);
            s.extend((b.len() as u32).to_be_bytes());
            s.extend(b);
        }
        assert_eq!(detect_with(b"", &s, &TestCheck), Detection::Msync);
    }

    #[test]
    fn websocket_frames_without_the_upgrade() {
        let b = body(30, 1);
        let key = [1u8, 2, 3, 4];
        let mut c = b"ail of a frame".to_vec();
        c.extend_from_slice(&[0x82, 0x80 | b.len() as u8]);
        c.extend_from_slice(&key);
        c.extend(b.iter().enumerate().map(|(i, x)| x ^ key[i % 4]));
        // A message is taken once a frame header that could follow it does, or when it ends
        // the connection.
        assert_eq!(detect_with(&c, b"", &TestCheck), Detection::NeedMore);
        assert_eq!(detect_inner(&c, b"", &TestCheck, true), Detection::WebSocketFrames);
        c.extend_from_slice(&[0x82, 0x85, 9, 9, 9, 9]);
        assert_eq!(detect_with(&c, b"", &TestCheck), Detection::WebSocketFrames);
        let mut s = vec![0x82, b.len() as u8];
        s.extend_from_slice(&b);
        s.extend_from_slice(&[0x88, 0x00]);
        assert_eq!(detect_with(b"", &s, &TestCheck), Detection::WebSocketFrames);
    }

    /// Random bytes holding a short binary frame whose payload passes the envelope check were
    /// taken for MSync over WebSocket (about 4 connections in 1000): the bytes after it must
    /// begin a frame that could follow it.
    #[test]
    fn a_short_frame_alone_in_random_bytes_is_not_websocket() {
        // An UNREAD envelope of two bytes, in a frame, then bytes that are not a frame header.
        let junk: Vec<u8> = (0..LOOKAHEAD as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 | 0x80)
            .collect();
        let junk: Vec<u8> = junk.iter().map(|&b| if b & 0xbf == 0x82 { 0x90 } else { b }).collect();
        let short = [0x82u8, 0x02, 0x40, 0x01];
        for next in [&[0x83u8, 0x05][..], &[0x80, 0x05], &[0x89, 0x7e, 0x01, 0x00], &[0x82, 0xfe]] {
            let mut s = junk[..100].to_vec();
            s.extend_from_slice(&short);
            s.extend_from_slice(next);
            s.extend_from_slice(&junk[100..]);
            s.truncate(LOOKAHEAD);
            assert_eq!(detect(b"", &s), Detection::Other, "{next:?}");
            assert_eq!(detect_final(b"", &s), Detection::Other, "{next:?}");
        }
        // Followed by a frame that could follow it: taken.
        let mut s = junk[..100].to_vec();
        s.extend_from_slice(&short);
        s.extend_from_slice(&[0x82, 0x7e, 0x01, 0x00]);
        s.extend_from_slice(&junk[100..]);
        s.truncate(LOOKAHEAD);
        assert_eq!(detect(b"", &s), Detection::WebSocketFrames);
        // Ending the connection: taken; ending where the look-ahead cut it: not.
        let mut s = junk[..100].to_vec();
        s.extend_from_slice(&short);
        assert_eq!(detect(b"", &s), Detection::NeedMore);
        assert_eq!(detect_final(b"", &s), Detection::WebSocketFrames);
        let mut cut = junk[..LOOKAHEAD - short.len()].to_vec();
        cut.extend_from_slice(&short);
        let mut longer = cut.clone();
        longer.extend_from_slice(&[0x83, 0x05]);
        assert_eq!(detect_final(b"", &cut), Detection::WebSocketFrames);
        assert_eq!(detect_final(b"", &longer), Detection::Other);
    }

    fn ws_frame(b0: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        crate::synth::ws::frame(&mut f, b0 & 0x80 != 0, b0 & 0x40 != 0, b0 & 0x0f, payload, mask);
        f
    }

    /// A web connection picked up inside a message longer than the look-ahead was "other":
    /// the deep search finds two binary frames back to back whose payloads are envelopes
    /// (masked or unmasked client frames, deflated ones too), or one that ends the bytes.
    #[test]
    fn deep_search_finds_websocket_frames_after_a_long_message() {
        use crate::msync::pb;
        use prost::Message;
        let env = |command: i32, text: &str| {
            pb::MSync {
                command: Some(command),
                payload: Some(text.as_bytes().to_vec()),
                ..Default::default()
            }
            .encode_to_vec()
        };
        // The tail of a long server frame: no frame header in it can be taken.
        let tail: Vec<u8> = "hello, a long pull answer ".repeat(400).into_bytes();
        let s1 = ws_frame(0x82, None, &env(0, "first"));
        let s2 = ws_frame(0x82, None, &env(1, "second"));
        let mut two = tail.clone();
        two.extend(&s1);
        two.extend(&s2);
        assert_eq!(detect(b"", &two), Detection::Other);
        assert_eq!(detect_deep(b"", &two, false), Some(Detection::WebSocketFrames));
        let mut one = tail.clone();
        one.extend(&s1);
        assert_eq!(detect_deep(b"", &one, false), None);
        assert_eq!(detect_deep(b"", &one, true), Some(Detection::WebSocketFrames));
        // Cut by the search's bound, the bytes do not end there.
        let mut late = vec![0x41; DEEP_LOOKAHEAD - s1.len()];
        late.extend(&s1);
        late.push(0x41);
        assert_eq!(detect_deep(b"", &late, true), None);
        // A server frame must be unmasked.
        let k = Some([9, 8, 7, 6]);
        let mut masked = tail.clone();
        masked.extend(ws_frame(0x82, k, &env(0, "a")));
        masked.extend(ws_frame(0x82, k, &env(0, "b")));
        assert_eq!(detect_deep(b"", &masked, false), None);
        // Client frames: masked, or unmasked in both.
        assert_eq!(detect_deep(&masked, b"", false), Some(Detection::WebSocketFrames));
        let mut unmasked = tail.clone();
        unmasked.extend(ws_frame(0x82, None, &env(0, "a")));
        unmasked.extend(ws_frame(0x82, None, &env(0, "b")));
        assert_eq!(detect_deep(&unmasked, b"", false), Some(Detection::WebSocketFrames));
        let mut mixed = tail.clone();
        mixed.extend(ws_frame(0x82, None, &env(0, "a")));
        mixed.extend(ws_frame(0x82, k, &env(0, "b")));
        assert_eq!(detect_deep(&mixed, b"", false), None);
        // permessage-deflate with context takeover: the second frame refers to the first.
        let mut z = flate2::Compress::new(flate2::Compression::default(), false);
        let mut deflated = tail.clone();
        for text in ["some text, some text", "some text, some more text"] {
            let mut out = Vec::with_capacity(256);
            z.compress_vec(&env(0, text), &mut out, flate2::FlushCompress::Sync).unwrap();
            out.truncate(out.len() - 4);
            deflated.extend(ws_frame(0xc2, None, &out));
        }
        assert_eq!(detect_deep(b"", &deflated, false), Some(Detection::WebSocketFrames));
        // Noise, however long: nothing.
        let noise: Vec<u8> = (0..DEEP_LOOKAHEAD).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(detect_deep(&noise, &noise, true), None);
    }

    #[test]
    fn other_needs_the_whole_look_ahead() {
        assert_eq!(detect_with(b"SSH-2.0-OpenSSH_9.6\r\n", b"", &TestCheck), Detection::NeedMore);
        let text = b"SSH-2.0-OpenSSH_9.6 ".repeat(300);
        assert_eq!(detect_with(&text, b"", &TestCheck), Detection::Other);
        assert_eq!(detect(b"", b""), Detection::NeedMore);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(a in prop::collection::vec(any::<u8>(), 0..5000), b in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = detect(&a, &b);
            let _ = detect(&b, &a);
            let _ = detect_with(&a, &b, &TestCheck);
            prop_assert_ne!(detect_final(&a, &b), Detection::NeedMore);
            let mut req = b"GET / HTTP/1.1\r\n".to_vec();
            req.extend_from_slice(&a);
            prop_assert_ne!(detect_final(&req, &b), Detection::NeedMore);
        }

        #[test]
        fn mutated_client_hellos_never_panic(pos in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>(), full in any::<bool>()) {
            let msg = client_hello_msg("x.example.com", &["h2"]);
            let mut rec = records(&msg, msg.len() / 3);
            for (i, v) in pos {
                let i = i.index(rec.len());
                rec[i] = v;
            }
            rec.truncate(cut.index(rec.len() + 1));
            if full {
                rec.resize(LOOKAHEAD, 0);
            }
            let _ = detect(&rec, b"");
        }
    }
}
