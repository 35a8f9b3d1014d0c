//! See [super].
use super::RenderOpts;
use crate::net::Dir;
pub fn write_tree(out: &mut String, frame: &[u8], _dir: Dir, _opts: &RenderOpts) {
    out.push_str(&format!("{} bytes\n", frame.len()));
}
