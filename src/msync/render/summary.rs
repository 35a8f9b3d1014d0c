//! See [super].
use super::RenderOpts;
use crate::msync::decode::{DecodeError, Decoded};
use crate::net::Dir;
pub fn write_summary(out: &mut String, msg: &Decoded, _dir: Dir, _opts: &RenderOpts) {
    out.push_str(&msg.command.name());
}
pub fn write_error_summary(out: &mut String, _frame: &[u8], _dir: Dir, err: &DecodeError) {
    out.push_str(&err.to_string());
}
