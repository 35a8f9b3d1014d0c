//! The `dissect` printers: one [`Consumer`] that renders every message in the chosen format
//! (summary lines, `-V` trees, the SDK's log notation, NDJSON) as it completes.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::{Consumer, Event, FrameProblem, MsgCtx, Totals, TransportNote};
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
}

/// Prints the event stream of `dissect`.
pub struct Printer<W: Write> {
    out: W,
    opts: PrintOptions,
    line: String,
    json: Vec<u8>,
}

impl<W: Write> Printer<W> {
    pub fn new(out: W, opts: PrintOptions) -> Self {
        Printer { out, opts, line: String::with_capacity(512), json: Vec::with_capacity(1024) }
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
        if let Some(l) = ctx.lz4 {
            let _ = writeln!(
                line,
                "    LZ4 envelope: {} bytes on the wire, {} bytes unwrapped, CRC {}",
                l.wire_len,
                l.original_len,
                if l.crc_ok { "ok" } else { "MISMATCH" }
            );
        }
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

    /// Transport facts: in the summary the ones that matter to a session (upgrade, refusal,
    /// close, TLS, LZ4 trouble); pings and pongs only in `-V`; all of them in JSON.
    fn transport_note(
        &mut self,
        pkt: PktCtx,
        conn: ConnId,
        dir: Dir,
        note: &TransportNote,
    ) -> io::Result<()> {
        let verbose_only =
            matches!(note, TransportNote::WsPing { .. } | TransportNote::WsPong { .. });
        match self.opts.format {
            Format::SdkLog => Ok(()),
            Format::Summary if verbose_only => Ok(()),
            Format::Summary | Format::Verbose => {
                let text = describe_note(note);
                let _ = writeln!(
                    self.line,
                    "{:>6} {:>11} {:>4} [{} {text}]",
                    pkt.index,
                    "",
                    conn.0,
                    dir.as_str()
                );
                self.flush_line()
            }
            Format::Json => {
                self.json_head(pkt.index, conn, dir);
                self.json.extend_from_slice(b",\"transport\":");
                write_note_json(&mut self.json, note);
                self.json.push(b'}');
                self.flush_json()
            }
        }
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
                        if let Some(l) = ctx.lz4 {
                            let _ = write!(
                                self.json,
                                ",\"lz4\":{{\"wire_len\":{},\"original_len\":{},\"crc_ok\":{}}}",
                                l.wire_len, l.original_len, l.crc_ok
                            );
                        }
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
            Event::Transport { pkt, conn, dir, note } => self.transport_note(pkt, conn, dir, note),
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
    let n = &t.net;
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

/// One line of text for a transport note.
pub fn describe_note(note: &TransportNote) -> String {
    fn opt(label: &str, v: &Option<String>) -> String {
        v.as_deref().map(|v| format!(" {label}={v}")).unwrap_or_default()
    }
    match note {
        TransportNote::Tls { sni, alpn } => format!(
            "TLS: not decodable{}{}",
            sni.as_deref().map(|s| format!(" sni={s}")).unwrap_or_default(),
            if alpn.is_empty() { String::new() } else { format!(" alpn={}", alpn.join(",")) }
        ),
        TransportNote::NotMsync { what } => format!("{what}: not MSync"),
        TransportNote::WsUpgrade { path, host, origin, protocol, extensions } => format!(
            "websocket upgrade{}{}{}{}{}",
            opt("path", path),
            opt("host", host),
            opt("origin", origin),
            opt("protocol", protocol),
            opt("extensions", extensions)
        ),
        TransportNote::WsRejected { status, reason } => format!("websocket upgrade refused: {status} {reason}"),
        TransportNote::WsPing { len } => format!("websocket ping ({len} bytes)"),
        TransportNote::WsPong { len } => format!("websocket pong ({len} bytes)"),
        TransportNote::WsClose { code, reason } => match code {
            Some(c) => format!("websocket close {c} {reason:?}"),
            None => "websocket close (no status code)".to_string(),
        },
        TransportNote::WsText { len, text } => format!("websocket text message ({len} bytes): {text:?}"),
        TransportNote::WsProblem { offset, what } => format!("websocket problem at stream offset {offset}: {what}"),
        TransportNote::Lz4HistoryLost => {
            "LZ4 history missing (picked up after login, or a gap): wrapped messages cannot be unwrapped until it is rebuilt".to_string()
        }
        TransportNote::Lz4Crc { offset, expected, actual } => {
            format!("LZ4 CRC mismatch at stream offset {offset}: expected {expected:08x}, got {actual:08x}")
        }
    }
}

fn write_note_json(out: &mut Vec<u8>, note: &TransportNote) {
    fn field(out: &mut Vec<u8>, key: &str, v: &Option<String>) {
        if let Some(v) = v {
            let _ = write!(out, ",\"{key}\":");
            write_json_str(out, v);
        }
    }
    match note {
        TransportNote::Tls { sni, alpn } => {
            out.extend_from_slice(b"{\"event\":\"tls\"");
            field(out, "sni", sni);
            out.extend_from_slice(b",\"alpn\":[");
            for (i, a) in alpn.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(out, a);
            }
            out.extend_from_slice(b"]}");
        }
        TransportNote::NotMsync { what } => {
            out.extend_from_slice(b"{\"event\":\"not_msync\",\"protocol\":");
            write_json_str(out, what);
            out.push(b'}');
        }
        TransportNote::WsUpgrade { path, host, origin, protocol, extensions } => {
            out.extend_from_slice(b"{\"event\":\"websocket_upgrade\"");
            field(out, "path", path);
            field(out, "host", host);
            field(out, "origin", origin);
            field(out, "protocol", protocol);
            field(out, "extensions", extensions);
            out.push(b'}');
        }
        TransportNote::WsRejected { status, reason } => {
            let _ =
                write!(out, "{{\"event\":\"websocket_rejected\",\"status\":{status},\"reason\":");
            write_json_str(out, reason);
            out.push(b'}');
        }
        TransportNote::WsPing { len } => {
            let _ = write!(out, "{{\"event\":\"websocket_ping\",\"len\":{len}}}");
        }
        TransportNote::WsPong { len } => {
            let _ = write!(out, "{{\"event\":\"websocket_pong\",\"len\":{len}}}");
        }
        TransportNote::WsClose { code, reason } => {
            out.extend_from_slice(b"{\"event\":\"websocket_close\",\"code\":");
            match code {
                Some(c) => {
                    let _ = write!(out, "{c}");
                }
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(b",\"reason\":");
            write_json_str(out, reason);
            out.push(b'}');
        }
        TransportNote::WsText { len, text } => {
            let _ = write!(out, "{{\"event\":\"websocket_text\",\"len\":{len},\"text\":");
            write_json_str(out, text);
            out.push(b'}');
        }
        TransportNote::WsProblem { offset, what } => {
            let _ =
                write!(out, "{{\"event\":\"websocket_problem\",\"offset\":{offset},\"problem\":");
            write_json_str(out, what);
            out.push(b'}');
        }
        TransportNote::Lz4HistoryLost => out.extend_from_slice(b"{\"event\":\"lz4_history_lost\"}"),
        TransportNote::Lz4Crc { offset, expected, actual } => {
            let _ = write!(
                out,
                "{{\"event\":\"lz4_crc_mismatch\",\"offset\":{offset},\"expected\":{expected},\"actual\":{actual}}}"
            );
        }
    }
}
