//! See [super].
use super::RenderOpts;
use crate::capture::Timestamp;
use crate::net::Dir;
pub fn write_sdklog(out: &mut String, frame: &[u8], _dir: Dir, _opts: &RenderOpts) {
    out.push_str(&format!("{{ {} }}", frame.len()));
}
pub fn write_sdklog_header(out: &mut String, ts: Timestamp, _dir: Dir) {
    out.push_str(&format!("[{}]", ts.0));
}
