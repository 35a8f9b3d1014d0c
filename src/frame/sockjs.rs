//! SockJS over WebSocket, as the web SDK releases up to 4.8 reach their server (`http://` URLs,
//! upgraded at `/<prefix>/<server>/<session>/websocket`): each WebSocket text message is one
//! SockJS frame, and each MSync message in it one base64 string.
//!
//! Frames from the server: `o` (open), `h` (heartbeat), `a` followed by a JSON array of
//! messages, `m` followed by one JSON string, `c` followed by `[code, "reason"]` (close). From
//! the client: a JSON array of messages, or one JSON string.
//!
//! Invariants: nothing here allocates more than the text it is given (JSON strings and base64
//! both only shrink); anything that is not exactly one of these shapes is `None`, and the text
//! is shown as text.

use serde_json::Value;

/// One SockJS frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Open,
    Heartbeat,
    /// The messages of an `a` frame, an `m` frame or a client's send, in order.
    Messages(Vec<String>),
    Close {
        code: Option<u16>,
        reason: String,
    },
}

/// The SockJS frame `text` is, if it is one.
pub fn parse(text: &[u8]) -> Option<Frame> {
    match text {
        b"o" => Some(Frame::Open),
        b"h" => Some(Frame::Heartbeat),
        [b'a', rest @ ..] => strings(rest).and_then(messages),
        [b'm', rest @ ..] => one(rest).and_then(|s| messages(vec![s])),
        [b'c', rest @ ..] => close(rest),
        [b'[', ..] => strings(text).and_then(messages),
        [b'"', ..] => one(text).and_then(|s| messages(vec![s])),
        _ => None,
    }
}

/// Messages, unless one is empty: an empty string holds no envelope, and decoded it would read
/// as an all-default MSync (a phantom `SYNC` pull), so such a frame stays text.
fn messages(list: Vec<String>) -> Option<Frame> {
    (!list.iter().any(String::is_empty)).then_some(Frame::Messages(list))
}

fn strings(json: &[u8]) -> Option<Vec<String>> {
    match serde_json::from_slice::<Value>(json).ok()? {
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn one(json: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Value>(json).ok()? {
        Value::String(s) => Some(s),
        _ => None,
    }
}

fn close(json: &[u8]) -> Option<Frame> {
    let Value::Array(items) = serde_json::from_slice::<Value>(json).ok()? else { return None };
    let code = items.first().and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok());
    let reason = items.get(1).and_then(Value::as_str).unwrap_or_default().to_string();
    Some(Frame::Close { code, reason })
}

/// Standard base64 (RFC 4648, `+/`, padding optional): the bytes, or `None` for anything
/// else.
pub fn base64(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let body = b.strip_suffix(b"==").or_else(|| b.strip_suffix(b"=")).unwrap_or(b);
    if body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 2);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in body {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            // Truncation keeps the byte just completed.
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Padding must match the length, and the bits left over must be zero.
    let pad = b.len() - body.len();
    if (pad > 0 && (body.len() + pad) % 4 != 0) || acc != 0 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames() {
        assert_eq!(parse(b"o"), Some(Frame::Open));
        assert_eq!(parse(b"h"), Some(Frame::Heartbeat));
        assert_eq!(
            parse(br#"a["CAA=","CAE="]"#),
            Some(Frame::Messages(vec!["CAA=".into(), "CAE=".into()]))
        );
        assert_eq!(parse(br#"["CAA="]"#), Some(Frame::Messages(vec!["CAA=".into()])));
        assert_eq!(parse(br#""CAA=""#), Some(Frame::Messages(vec!["CAA=".into()])));
        assert_eq!(parse(br#"m"x\u0041""#), Some(Frame::Messages(vec!["xA".into()])));
        assert_eq!(
            parse(br#"c[3000,"Go away!"]"#),
            Some(Frame::Close { code: Some(3000), reason: "Go away!".into() })
        );
        let empty = [&br#"a[""]"#[..], br#"a["CAA=",""]"#, br#"[""]"#, br#""""#, br#"m"""#];
        for not in [&b""[..], b"oo", b"a[1]", b"a{}", br#"a["x""#, b"hello", b"[\"x\",2]"]
            .into_iter()
            .chain(empty)
        {
            assert_eq!(parse(not), None, "{:?}", String::from_utf8_lossy(not));
        }
    }

    #[test]
    fn base64_known_values() {
        assert_eq!(base64("").unwrap(), b"");
        assert_eq!(base64("Zg==").unwrap(), b"f");
        assert_eq!(base64("Zm8=").unwrap(), b"fo");
        assert_eq!(base64("Zm9v").unwrap(), b"foo");
        assert_eq!(base64("Zm9vYg").unwrap(), b"foob");
        assert_eq!(base64("+/8=").unwrap(), [0xfb, 0xff]);
        for bad in ["Z", "Zg=", "Zm9v=", "Zh==", "Zm9v!", "Z===", "Zg==Zg=="] {
            assert_eq!(base64(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn base64_round_trips(data in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut enc = Vec::new();
            crate::msync::render::json::push_base64(&mut enc, &data);
            let s = String::from_utf8(enc).unwrap();
            prop_assert_eq!(base64(&s).unwrap(), data.clone());
            prop_assert_eq!(base64(s.trim_end_matches('=')).unwrap(), data);
        }

        #[test]
        fn any_text_is_safe(text in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Some(Frame::Messages(list)) = parse(&text) {
                for s in list {
                    let _ = base64(&s);
                }
            }
        }
    }
}
