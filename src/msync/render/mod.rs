//! Renderings of one message: the summary line ([`summary`]), the `-V` tree ([`tree`]), the
//! SDK's log notation ([`sdklog`]) and canonical protobuf JSON ([`json`]).

pub mod json;
pub mod sdklog;
pub mod summary;
pub mod tree;

/// Options shared by every rendering.
#[derive(Clone, Copy, Debug)]
pub struct RenderOpts {
    /// Print secrets (tokens, passwords, keys) instead of `***`.
    pub show_secrets: bool,
    /// Largest inflated size of a zlib-compressed payload.
    pub max_inflated: usize,
    /// Deepest nesting of embedded messages that is expanded; deeper ones print as bytes.
    pub max_depth: usize,
}

impl Default for RenderOpts {
    fn default() -> Self {
        RenderOpts { show_secrets: false, max_inflated: 16 << 20, max_depth: 64 }
    }
}

/// Characters a text output (summary, `-V`, sdklog, the report's tables) never writes as they
/// are: control characters (C0, DEL, C1), which break the line or drive a terminal; the line and
/// paragraph separators, which readers such as Python's `splitlines` take as line ends; and the
/// bidirectional overrides and isolates, which reorder what a terminal shows after them
/// ("Trojan Source"). Every text rendering escapes the same set.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with what [`needs_escape`] names written as `\n`, `\r`, `\t` or `\u{XX}` (the summary's
/// notation), borrowed when there is nothing to escape.
pub fn escape_text(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    summary::push_plain(&mut out, s);
    out.into()
}

/// Whether an application's own key names a credential: a `KeyValue.key` (message and meta
/// extensions, command params) or a member name in JSON text. Applications put call tokens,
/// passwords and keys there as well, so their values are redacted like the schema's secrets.
/// Case, `_`, `-` and other separators are ignored: `token`, `accessToken`, `em_push_token`,
/// `Password`, `passwd`, `pin_pwd`, `app-secret`, `private_key`, `Authorization`, `auth`.
pub fn is_secret_key(key: &str) -> bool {
    // The key's letters and digits, lowercased, on the stack (a longer key is judged by its
    // first 64).
    let mut buf = [0u8; 64];
    let mut n = 0;
    for b in key.bytes().filter(u8::is_ascii_alphanumeric) {
        let Some(slot) = buf.get_mut(n) else { break };
        *slot = b.to_ascii_lowercase();
        n += 1;
    }
    let k = buf.get(..n).unwrap_or_default();
    const WHOLE: [&[u8]; 2] = [b"auth", b"sig"];
    const PART: [&[u8]; 9] = [
        b"token",
        b"passw",
        b"pwd",
        b"secret",
        b"credential",
        b"authorization",
        b"privatekey",
        b"apikey",
        b"accesskey",
    ];
    WHOLE.contains(&k) || PART.iter().any(|p| k.windows(p.len()).any(|w| w == *p))
}

/// `s` with the values of the members whose names are credentials ([`is_secret_key`]) replaced
/// by [`REDACTED`], when `s` looks like JSON text (an object or array) and has such a member;
/// `None` otherwise. A scan of its tokens, not a parse: text that is not JSON is left alone
/// where it stops looking like it. Strings and scalars are redacted; an object or array under
/// such a name is kept, and its own members are judged by their names.
pub fn redact_json_text(s: &str) -> Option<String> {
    let t = s.trim_start();
    if !(t.starts_with('{') || t.starts_with('[')) || !s.contains(':') {
        return None;
    }
    let b = s.as_bytes();
    let mut out: Option<String> = None;
    // Bytes of `s` already copied to `out`.
    let mut copied = 0;
    let mut i = 0;
    // The end of a string token starting at `j` (the index after its closing quote).
    let string_end = |mut j: usize| -> Option<usize> {
        j += 1;
        loop {
            match *b.get(j)? {
                b'\\' => j += 2,
                b'"' => return Some(j + 1),
                _ => j += 1,
            }
        }
    };
    while i < b.len() {
        if b.get(i) != Some(&b'"') {
            i += 1;
            continue;
        }
        let Some(key_end) = string_end(i) else { break };
        let key = s.get(i + 1..key_end - 1).unwrap_or_default();
        let mut j = key_end;
        while b.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        if b.get(j) != Some(&b':') || !is_secret_key(key) {
            i = key_end;
            continue;
        }
        j += 1;
        while b.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        // The value's extent: a string, or a scalar up to the next `,`, `}` or `]`.
        let (start, end) = match b.get(j) {
            Some(b'"') => match string_end(j) {
                Some(e) => (j, e),
                None => break,
            },
            Some(b'{' | b'[') | None => {
                i = j;
                continue;
            }
            Some(_) => {
                let mut e = j;
                while b.get(e).is_some_and(|c| !matches!(c, b',' | b'}' | b']')) {
                    e += 1;
                }
                (j, e)
            }
        };
        let o = out.get_or_insert_with(|| String::with_capacity(s.len()));
        o.push_str(s.get(copied..start).unwrap_or_default());
        // A scalar becomes a string too: the text stays JSON.
        o.push_str("\"***\"");
        copied = end;
        i = end;
    }
    let mut o = out?;
    o.push_str(s.get(copied..).unwrap_or_default());
    Some(o)
}

/// A string field's text as it is shown: with its credentials redacted
/// ([`redact_json_text`]) unless secrets are shown.
pub fn shown_text<'a>(s: &'a str, opts: &RenderOpts) -> std::borrow::Cow<'a, str> {
    match redact_json_text(s).filter(|_| !opts.show_secrets) {
        Some(r) => r.into(),
        None => s.into(),
    }
}

/// As [`shown_text`], for a `bytes` field (`Meta.meta` and `MessageBody.meta` carry JSON text).
pub fn shown_bytes<'a>(b: &'a [u8], opts: &RenderOpts) -> std::borrow::Cow<'a, [u8]> {
    let json =
        b.iter().find(|c| !c.is_ascii_whitespace()).is_some_and(|c| matches!(c, b'{' | b'['));
    match std::str::from_utf8(b)
        .ok()
        .filter(|_| json && !opts.show_secrets)
        .and_then(redact_json_text)
    {
        Some(r) => std::borrow::Cow::Owned(r.into_bytes()),
        None => b.into(),
    }
}

/// What a redacted secret prints as.
pub const REDACTED: &str = "***";

/// Whether a field holds a secret that is redacted unless the user asks for it. `message` is
/// the full name (`easemob.pb.Provision`), `field` the `.proto` field name.
pub fn is_secret(message: &str, field: &str) -> bool {
    match field {
        "secretKey" | "thumbnailSecretKey" => message == "easemob.pb.MessageBody.Content",
        _ => is_credential(field),
    }
}

/// Whether a field is one of the login's credentials (the envelope's and PROVISION's secrets,
/// not a chat attachment's key).
pub fn is_credential(field: &str) -> bool {
    matches!(field, "auth" | "password" | "encrypt_key" | "auth_token" | "ntp_key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_keys() {
        for k in [
            "token",
            "accessToken",
            "em_push_token",
            "Password",
            "app-secret",
            "private_key",
            "Authorization",
            "auth",
            "PWD",
            "rtc.credential",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["author", "em_apns_ext", "weichat", "sign", "callId", ""] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn credentials_in_json_text() {
        let r = |s: &str| redact_json_text(s);
        assert_eq!(
            r(r#"{"token":"abc","user":"z1","n":{"password" : "p\"w","k":1},"pwd":123, "ok":true}"#)
                .as_deref(),
            Some(r#"{"token":"***","user":"z1","n":{"password" : "***","k":1},"pwd":"***", "ok":true}"#)
        );
        assert_eq!(r(r#"[{"accessToken":null}]"#).as_deref(), Some(r#"[{"accessToken":"***"}]"#));
        // An object under a credential's name is kept; its members are judged by their names.
        assert_eq!(r(r#"{"secret":{"a":1}}"#), None);
        // Nothing to redact, not JSON, or cut short: left alone.
        assert_eq!(r(r#"{"originType":"webim"}"#), None);
        assert_eq!(r("token: abc"), None);
        assert_eq!(r(r#"{"token":"ab"#), None);
        assert_eq!(r(r#"{"token""#), None);
        // Every cut of a redactable text gives JSON-looking text or nothing, never a panic.
        let full = r#" {"a":[1,2],"token" :"x\\","b":{"secret":false}} "#;
        for n in 0..=full.len() {
            let _ = r(full.get(..n).unwrap_or_default());
        }
    }
}
