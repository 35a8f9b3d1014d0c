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
