//! The `dissect` printers: one [`Consumer`] that renders every message in the chosen format
//! (summary lines, `-V` trees, the SDK's log notation, NDJSON) as it completes.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::{Consumer, Event, FrameProblem, MsgCtx, Totals};
use crate::msync::render::{json, sdklog, summary, tree, RenderOpts};
use crate::net::{ConnId, Dir, PktCtx};
use crate::time::{write_human, Rfc3339, Zone};

/// Output format of `dissect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One line per message, tshark-style.
    Summary,
    /// The full decoded tree of every message (`-V`).
    Verbose,
    /// The client SDK's own log notation.
    SdkLog,
    /// NDJSON, one object per message.
    Json,
}

#[derive(Clone, Debug)]
pub struct PrintOptions {
    pub format: Format,
    pub render: RenderOpts,
    /// Print nothing per message (the tally is still printed by the caller).
    pub quiet: bool,
    /// Where absolute times are shown (UTC unless `--local` / `--utc-offset`).
    pub zone: Zone,
    /// Flush after every message (a terminal, or `--line-buffered`).
    pub line_buffered: bool,
    /// Print at most this many error lines (undecodable frames, oversize frames, skipped bytes,
    /// gaps); later ones are only counted, so a damaged capture cannot drown the messages.
    pub max_errors: Option<u64>,
}

/// Prints the event stream of `dissect`.
pub struct Printer<W: Write> {
    out: W,
    opts: PrintOptions,
    line: String,
    json: Vec<u8>,
    errors_printed: u64,
    errors_suppressed: u64,
}

impl<W: Write> Printer<W> {
    pub fn new(out: W, opts: PrintOptions) -> Self {
        Printer {
            out,
            opts,
            line: String::with_capacity(512),
            json: Vec::with_capacity(1024),
            errors_printed: 0,
            errors_suppressed: 0,
        }
    }

    /// Error lines not printed because of [`PrintOptions::max_errors`].
    pub fn errors_suppressed(&self) -> u64 {
        self.errors_suppressed
    }

    /// Whether the next error line may be printed; counts it either way.
    fn error_line_allowed(&mut self) -> bool {
        match self.opts.max_errors {
            Some(max) if self.errors_printed >= max => {
                self.errors_suppressed += 1;
                false
            }
            _ => {
                self.errors_printed += 1;
                true
            }
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    fn arrow(ctx: &MsgCtx<'_>, line: &mut String) {
        let arrow = match ctx.dir {
            Dir::C2S => "→",
            Dir::S2C => "←",
        };
        let _ = write!(line, "{} {arrow} {}", ctx.conn.client, ctx.conn.server);
    }

    /// The columns every summary line starts with: frame, relative time, connection, peers.
    fn summary_prefix(ctx: &MsgCtx<'_>, line: &mut String) {
        let _ = write!(line, "{:>6} {:>11.6} {:>4} ", ctx.frame, ctx.rel_secs(), ctx.conn.id.0);
        Self::arrow(ctx, line);
        line.push_str("  ");
    }

    fn verbose_header(&self, ctx: &MsgCtx<'_>, line: &mut String) {
        let _ = write!(line, "Frame {}, conn {} {} (", ctx.frame, ctx.conn.id.0, ctx.dir.as_str());
        Self::arrow(ctx, line);
        line.push_str("), ");
        write_human(line, ctx.ts, self.opts.zone.offset_at(ctx.ts));
        let _ = writeln!(
            line,
            " (+{:.6} s)\n    {}: stream offset {}, {} bytes on the stream ({} of MSync)",
            ctx.rel_secs(),
            ctx.transport.as_str(),
            ctx.stream_offset,
            ctx.wire_len,
            ctx.wire_len.saturating_sub(4),
        );
    }

    fn sdklog_header(&self, line: &mut String, ctx: &MsgCtx<'_>) {
        match self.opts.zone.offset_at(ctx.ts) {
            None => sdklog::write_sdklog_header(line, ctx.ts, ctx.dir),
            Some(o) => sdklog::write_sdklog_header_offset(line, ctx.ts, ctx.dir, o),
        }
    }

    fn json_head(&mut self, frame: u64, conn: ConnId, dir: Dir) {
        let _ = write!(
            self.json,
            "{{\"frame\":{frame},\"conn\":{},\"dir\":\"{}\"",
            conn.0,
            dir.as_str()
        );
    }

    fn flush_line(&mut self) -> io::Result<()> {
        self.out.write_all(self.line.as_bytes())?;
        self.line.clear();
        if self.opts.line_buffered {
            self.out.flush()?;
        }
        Ok(())
    }

    fn flush_json(&mut self) -> io::Result<()> {
        self.json.push(b'\n');
        self.out.write_all(&self.json)?;
        self.json.clear();
        if self.opts.line_buffered {
            self.out.flush()?;
        }
        Ok(())
    }

    /// A line about the stream rather than a message (gap, skipped bytes, oversize frame).
    fn stream_note(
        &mut self,
        pkt: PktCtx,
        conn: ConnId,
        dir: Dir,
        what: &str,
        json_key: &str,
        fields: &str,
    ) -> io::Result<()> {
        match self.opts.format {
            Format::Json => {
                self.json_head(pkt.index, conn, dir);
                let _ = write!(self.json, ",\"{json_key}\":{{{fields}}}}}");
                self.flush_json()
            }
            Format::SdkLog => Ok(()),
            Format::Summary | Format::Verbose => {
                let _ = writeln!(
                    self.line,
                    "{:>6} {:>11} {:>4} [{} {what}]",
                    pkt.index,
                    "",
                    conn.0,
                    dir.as_str()
                );
                self.flush_line()
            }
        }
    }
}

impl<W: Write> Consumer for Printer<W> {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
        if self.opts.quiet {
            return Ok(());
        }
        if matches!(ev, Event::DecodeError { .. } | Event::Gap { .. } | Event::Frame { .. })
            && !self.error_line_allowed()
        {
            return Ok(());
        }
        match *ev {
            Event::Message { ctx, raw, msg } => {
                let mut line = std::mem::take(&mut self.line);
                match self.opts.format {
                    Format::Summary => {
                        Self::summary_prefix(ctx, &mut line);
                        summary::write_summary(&mut line, msg, ctx.dir, &self.opts.render);
                        line.push('\n');
                    }
                    Format::Verbose => {
                        self.verbose_header(ctx, &mut line);
                        tree::write_tree(&mut line, raw, ctx.dir, &self.opts.render);
                        line.push('\n');
                    }
                    Format::SdkLog => {
                        self.sdklog_header(&mut line, ctx);
                        line.push('\n');
                        sdklog::write_sdklog(&mut line, raw, ctx.dir, &self.opts.render);
                        line.push('\n');
                    }
                    Format::Json => {
                        self.line = line;
                        self.json_head(ctx.frame, ctx.conn.id, ctx.dir);
                        let _ = write!(
                            self.json,
                            ",\"ts\":\"{}\",\"client\":\"{}\",\"server\":\"{}\",\"transport\":\"{}\",\"command\":\"{}\",\"msync\":",
                            Rfc3339(ctx.ts),
                            ctx.conn.client,
                            ctx.conn.server,
                            ctx.transport.as_str(),
                            msg.command.name()
                        );
                        json::write_json(&mut self.json, raw, ctx.dir, &self.opts.render);
                        self.json.push(b'}');
                        return self.flush_json();
                    }
                }
                self.line = line;
                self.flush_line()
            }
            Event::DecodeError { ctx, raw, error } => {
                let mut line = std::mem::take(&mut self.line);
                match self.opts.format {
                    Format::Summary | Format::Verbose => {
                        Self::summary_prefix(ctx, &mut line);
                        summary::write_error_summary(&mut line, raw, ctx.dir, error);
                        let _ = writeln!(
                            line,
                            " ({} bytes at stream offset {})",
                            raw.len(),
                            ctx.stream_offset
                        );
                    }
                    Format::SdkLog => {
                        self.sdklog_header(&mut line, ctx);
                        let _ = writeln!(
                            line,
                            "\n[undecodable frame {} (conn {}, {} bytes at stream offset {}): {error}]",
                            ctx.frame,
                            ctx.conn.id.0,
                            raw.len(),
                            ctx.stream_offset
                        );
                    }
                    Format::Json => {
                        self.line = line;
                        self.json_head(ctx.frame, ctx.conn.id, ctx.dir);
                        self.json.extend_from_slice(b",\"error\":");
                        write_json_str(&mut self.json, &error.to_string());
                        let _ = write!(
                            self.json,
                            ",\"offset\":{},\"len\":{}}}",
                            ctx.stream_offset,
                            raw.len()
                        );
                        return self.flush_json();
                    }
                }
                self.line = line;
                self.flush_line()
            }
            Event::Gap { pkt, conn, dir, offset, len } => self.stream_note(
                pkt,
                conn,
                dir,
                &format!("gap: {len} bytes lost at stream offset {offset}"),
                "gap",
                &format!("\"offset\":{offset},\"len\":{len}"),
            ),
            Event::Frame { pkt, conn, dir, offset, problem } => match problem {
                FrameProblem::Oversize { len } => self.stream_note(
                    pkt,
                    conn,
                    dir,
                    &format!("oversize frame: length prefix {len} at stream offset {offset}"),
                    "oversize",
                    &format!("\"offset\":{offset},\"len\":{len}"),
                ),
                FrameProblem::Skipped { bytes } => self.stream_note(
                    pkt,
                    conn,
                    dir,
                    &format!("skipped {bytes} bytes at stream offset {offset} (resynchronising)"),
                    "skipped",
                    &format!("\"offset\":{offset},\"len\":{bytes}"),
                ),
            },
            Event::ConnOpen { .. }
            | Event::MsyncDetected { .. }
            | Event::Tcp { .. }
            | Event::ConnClose { .. } => Ok(()),
        }
    }

    fn finish(&mut self, _totals: &Totals) -> io::Result<()> {
        self.out.flush()
    }
}

/// `s` as a JSON string literal (RFC 8259; control characters escaped).
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(s.as_bytes().get(start..i).unwrap_or_default());
        match esc {
            Some(e) => out.extend_from_slice(e),
            None => {
                let _ = write!(out, "\\u{:04x}", b);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(s.as_bytes().get(start..).unwrap_or_default());
    out.push(b'"');
}

/// The one-line tally printed on stderr at the end of a run.
pub fn tally(t: &Totals) -> String {
    let mut s = format!(
        "{} packets, {} TCP connections ({} MSync, {} other), {} messages, {} decode errors, {} gap bytes",
        t.packets,
        t.tcp_connections,
        t.msync_connections,
        t.other_connections,
        t.messages,
        t.decode_errors,
        t.gap_bytes
    );
    if t.skipped_bytes > 0 || t.oversize_frames > 0 {
        let _ =
            write!(s, ", {} bytes skipped, {} oversize frames", t.skipped_bytes, t.oversize_frames);
    }
    // Caps that were hit: each means evidence was cut short, so say which.
    let n = &t.net;
    if t.inflate_capped > 0 {
        let _ = write!(s, ", {} payloads over the inflate cap", t.inflate_capped);
    }
    if n.buffer_limits > 0 {
        let _ = write!(s, ", {} out-of-order buffer overflows", n.buffer_limits);
    }
    if n.evicted > 0 {
        let _ = write!(s, ", {} connections evicted (flow table full)", n.evicted);
    }
    if n.ipv4_fragments_dropped > 0 {
        let _ = write!(s, ", {} IPv4 fragments dropped", n.ipv4_fragments_dropped);
    }
    let bad = n.malformed + n.unsupported_link;
    if bad > 0 {
        let _ = write!(
            s,
            ", {} packets not parsed ({} malformed, {} unsupported link type)",
            bad, n.malformed, n.unsupported_link
        );
    }
    if t.msync_connections == 0 {
        s.push_str(" — no MSync traffic found");
    }
    s
}
