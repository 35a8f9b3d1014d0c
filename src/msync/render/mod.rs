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

/// What a redacted secret prints as.
pub const REDACTED: &str = "***";

/// Whether a field holds a secret that is redacted unless the user asks for it. `message` is
/// the full name (`easemob.pb.Provision`), `field` the `.proto` field name.
pub fn is_secret(message: &str, field: &str) -> bool {
    match field {
        "auth" | "password" | "encrypt_key" | "auth_token" | "ntp_key" => true,
        "secretKey" | "thumbnailSecretKey" => message == "easemob.pb.MessageBody.Content",
        _ => false,
    }
}
