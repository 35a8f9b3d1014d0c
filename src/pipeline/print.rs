//! The `dissect` printers: one [`Consumer`] that renders every message in the chosen format
//! (summary lines, `-V` trees, the SDK's log notation, NDJSON) as it completes.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::{Consumer, Event, FrameProblem, MsgCtx, Totals, TransportNote};
use std::net::SocketAddr;

use crate::capture::Timestamp;
use crate::msync::render::{json, sdklog, summary, tree, RenderOpts};
use crate::net::hash::FxHashMap;
use crate::net::{ConnId, ConnMeta, Dir, PktCtx};
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
    /// Which messages and error lines are printed (`--conn`, `--since`, `--until`).
    pub select: Select,
}

/// The connections and the time window whose messages are printed; the default, everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Select {
    /// Connection indexes; empty: all.
    pub conns: Vec<u32>,
    /// Bounds, included, as capture times.
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl Select {
    /// Whether what connection `conn` shows at `ts` is printed.
    pub fn wants(&self, conn: u32, ts: Timestamp) -> bool {
        (self.conns.is_empty() || self.conns.contains(&conn))
            && self.since.is_none_or(|s| ts >= s)
            && self.until.is_none_or(|u| ts <= u)
    }

    /// Whether anything is left out.
    pub fn narrows(&self) -> bool {
        *self != Select::default()
    }
}

/// A connection's endpoints as text, kept because formatting two socket addresses costs more
/// than the rest of a summary line. The addresses it was made from are kept beside it: the
/// pipeline may swap client and server when the first PROVISION shows who is who.
struct Peers {
    client: SocketAddr,
    server: SocketAddr,
    client_text: String,
    server_text: String,
}

/// Prints the event stream of `dissect`.
pub struct Printer<W: Write> {
    out: W,
    opts: PrintOptions,
    line: String,
    json: Vec<u8>,
    /// Open connections' [`Peers`], dropped when the connection closes so the table stays as
    /// small as the pipeline's.
    peers: FxHashMap<u32, Peers>,
    errors_printed: u64,
    errors_suppressed: u64,
    selected: u64,
}

impl<W: Write> Printer<W> {
    pub fn new(out: W, opts: PrintOptions) -> Self {
        Printer {
            out,
            opts,
            line: String::with_capacity(512),
            json: Vec::with_capacity(1024),
            peers: FxHashMap::default(),
            errors_printed: 0,
            errors_suppressed: 0,
            selected: 0,
        }
    }

    /// Messages and undecodable frames that [`PrintOptions::select`] kept (printed unless
    /// `quiet`).
    pub fn selected(&self) -> u64 {
        self.selected
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

    /// The output, e.g. to take what was rendered into a buffer.
    pub fn out_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Drops what is cached of a closed connection (which the printer may not have seen close:
    /// [`super::parallel`] gives each printer only some of the events).
    pub fn forget(&mut self, conn: ConnId) {
        self.peers.remove(&conn.0);
    }

    fn peers<'p>(peers: &'p mut FxHashMap<u32, Peers>, conn: &ConnMeta) -> &'p Peers {
        let p = peers.entry(conn.id.0).or_insert_with(|| Peers {
            client: conn.client,
            server: conn.server,
            client_text: conn.client.to_string(),
            server_text: conn.server.to_string(),
        });
        if p.client != conn.client || p.server != conn.server {
            *p = Peers {
                client: conn.client,
                server: conn.server,
                client_text: conn.client.to_string(),
                server_text: conn.server.to_string(),
            };
        }
        p
    }

    fn arrow(peers: &mut FxHashMap<u32, Peers>, ctx: &MsgCtx<'_>, line: &mut String) {
        let arrow = match ctx.dir {
            Dir::C2S => " → ",
            Dir::S2C => " ← ",
        };
        let p = Self::peers(peers, ctx.conn);
        line.push_str(&p.client_text);
        line.push_str(arrow);
        line.push_str(&p.server_text);
    }

    /// The columns every summary line starts with: frame, relative time, connection, peers.
    fn summary_prefix(peers: &mut FxHashMap<u32, Peers>, ctx: &MsgCtx<'_>, line: &mut String) {
        push_padded(line, ctx.frame, 6);
        line.push(' ');
        push_rel_secs(line, ctx.ts.since(ctx.capture_start));
        line.push(' ');
        push_padded(line, u64::from(ctx.conn.id.0), 4);
        line.push(' ');
        Self::arrow(peers, ctx, line);
        line.push_str("  ");
    }

    fn verbose_header(&mut self, ctx: &MsgCtx<'_>, line: &mut String) {
        let _ = write!(line, "Frame {}, conn {} {} (", ctx.frame, ctx.conn.id.0, ctx.dir.as_str());
        Self::arrow(&mut self.peers, ctx, line);
        line.push_str("), ");
        write_human(line, ctx.ts, self.opts.zone.offset_at(ctx.ts));
        // A time before the first packet's (the clock stepped back) carries its own sign.
        let sign = if ctx.ts < ctx.capture_start { "" } else { "+" };
        let _ = writeln!(
            line,
            " ({sign}{:.6} s)\n    {}: stream offset {}, {} bytes on the stream ({} of MSync)",
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
        // Only these print; the rest keep the printer's state whatever is selected.
        let printed = match *ev {
            Event::Message { ctx, .. } | Event::DecodeError { ctx, .. } => {
                let wanted = self.opts.select.wants(ctx.conn.id.0, ctx.ts);
                self.selected += u64::from(wanted);
                wanted
            }
            Event::Gap { pkt, conn, .. }
            | Event::Frame { pkt, conn, .. }
            | Event::Transport { pkt, conn, .. } => self.opts.select.wants(conn.0, pkt.ts),
            _ => true,
        };
        if self.opts.quiet || !printed {
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
                        Self::summary_prefix(&mut self.peers, ctx, &mut line);
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
                        let mut bad = Vec::new();
                        let opts = &self.opts.render;
                        sdklog::write_sdklog_noting(&mut line, raw, ctx.dir, opts, &mut bad);
                        line.push('\n');
                        for b in &bad {
                            let _ = writeln!(line, "[warning: {b}]");
                        }
                    }
                    Format::Json => {
                        self.line = line;
                        self.json_head(ctx.frame, ctx.conn.id, ctx.dir);
                        let _ = write!(self.json, ",\"ts\":\"{}\",\"client\":\"", Rfc3339(ctx.ts));
                        let p = Self::peers(&mut self.peers, ctx.conn);
                        self.json.extend_from_slice(p.client_text.as_bytes());
                        self.json.extend_from_slice(b"\",\"server\":\"");
                        self.json.extend_from_slice(p.server_text.as_bytes());
                        let _ = write!(
                            self.json,
                            "\",\"transport\":\"{}\",\"command\":\"{}\",\"msync\":",
                            ctx.transport.as_str(),
                            msg.command.name()
                        );
                        let mut bad = Vec::new();
                        let opts = &self.opts.render;
                        json::write_json_noting(&mut self.json, raw, ctx.dir, opts, &mut bad);
                        if !bad.is_empty() {
                            // Named as the warnings name them: `Status.reason`.
                            self.json.extend_from_slice(b",\"not_utf8\":[");
                            for (i, b) in bad.iter().enumerate() {
                                if i > 0 {
                                    self.json.push(b',');
                                }
                                let name = format!("{}.{}", b.message_name(), b.field);
                                write_json_str(&mut self.json, &name);
                            }
                            self.json.push(b']');
                        }
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
                        Self::summary_prefix(&mut self.peers, ctx, &mut line);
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
                FrameProblem::Skipped { bytes, why } => self.stream_note(
                    pkt,
                    conn,
                    dir,
                    &format!("skipped {bytes} bytes at stream offset {offset} ({})", why.words()),
                    "skipped",
                    &skipped_json(offset, bytes, why),
                ),
            },
            Event::Transport { pkt, conn, dir, note } => self.transport_note(pkt, conn, dir, note),
            Event::ConnClose { conn, .. } => {
                self.peers.remove(&conn.id.0);
                Ok(())
            }
            Event::ConnOpen { .. } | Event::MsyncDetected { .. } | Event::Tcp { .. } => Ok(()),
        }
    }

    fn finish(&mut self, _totals: &Totals) -> io::Result<()> {
        self.out.flush()
    }

    fn meta_bodies_wanted(&self) -> usize {
        match self.opts.format {
            _ if self.opts.quiet => 0,
            Format::Summary => summary::META_BODIES_USED,
            // These render from the raw bytes.
            Format::Verbose | Format::SdkLog | Format::Json => 0,
        }
    }
}

/// `n` right-aligned in `width` columns, as `{:>width$}` would print it.
// A u64 has at most 20 decimal digits: the 20-byte buffer's index never goes below 0.
#[allow(clippy::indexing_slicing)]
fn push_padded(line: &mut String, n: u64, width: usize) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = n;
    loop {
        i -= 1;
        // `v % 10` is a digit, so the cast cannot truncate.
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let digits = &buf[i..];
    for _ in digits.len()..width {
        line.push(' ');
    }
    // Only ASCII digits were written.
    line.push_str(std::str::from_utf8(digits).unwrap_or_default());
}

/// Seconds since the capture's start as `{:>11.6}` prints [`MsgCtx::rel_secs`], with integer
/// arithmetic: the float formatting was a tenth of the summary printer's time. Where the two
/// could differ (a time exactly halfway between two microseconds, a negative or enormous
/// offset) the float formatting is used.
// Under 10^15 ns the text is at most 9 + 1 + 6 bytes, well inside the 32-byte buffer.
#[allow(clippy::indexing_slicing)]
fn push_rel_secs(line: &mut String, ns: i64) {
    // Below 10^15 ns the float's error is under 10^-10 s, so a time at least 1 ns away from a
    // rounding midpoint rounds the same way in both.
    if !(0..1_000_000_000_000_000).contains(&ns) || ns % 1000 == 500 {
        let _ = write!(line, "{:>11.6}", ns as f64 / 1e9);
        return;
    }
    // In range and non-negative, so the casts cannot wrap.
    let micros = (ns as u64 + 500) / 1000;
    let (secs, frac) = (micros / 1_000_000, micros % 1_000_000);
    let mut buf = [0u8; 32];
    let mut i = buf.len();
    let mut f = frac;
    for _ in 0..6 {
        i -= 1;
        buf[i] = b'0' + (f % 10) as u8;
        f /= 10;
    }
    i -= 1;
    buf[i] = b'.';
    let mut s = secs;
    loop {
        i -= 1;
        buf[i] = b'0' + (s % 10) as u8;
        s /= 10;
        if s == 0 {
            break;
        }
    }
    let text = &buf[i..];
    for _ in text.len()..11 {
        line.push(' ');
    }
    line.push_str(std::str::from_utf8(text).unwrap_or_default());
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
    if t.not_utf8_messages > 0 {
        let _ = write!(
            s,
            ", {} messages with a string that is not UTF-8 (decoded with U+FFFD)",
            t.not_utf8_messages
        );
    }
    if t.skipped_bytes > 0 || t.oversize_frames > 0 {
        let _ =
            write!(s, ", {} bytes skipped, {} oversize frames", t.skipped_bytes, t.oversize_frames);
    }
    if t.websocket_connections > 0 {
        let _ = write!(
            s,
            ", {} over WebSocket ({} pings, {} pongs, {} close frames)",
            t.websocket_connections, t.ws_pings, t.ws_pongs, t.ws_closes
        );
        if t.ws_odd_masking > 0 {
            let _ = write!(s, ", {} frames with the wrong masking (decoded)", t.ws_odd_masking);
        }
    }
    if t.tls_connections > 0 {
        let _ = write!(s, ", {} TLS connections (not decodable)", t.tls_connections);
    }
    if t.lz4_undecodable > 0 {
        let _ = write!(s, ", {} LZ4-wrapped messages not unwrapped", t.lz4_undecodable);
    }
    // Caps that were hit: each means evidence was cut short, so say which.
    let n = &t.net;
    if t.inflate_capped > 0 {
        let _ = write!(s, ", {} payloads over the inflate cap", t.inflate_capped);
    }
    if t.decode_capped > 0 {
        let _ = write!(s, ", {} messages over the decoding budget", t.decode_capped);
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
    if n.ipv6_fragments_dropped > 0 {
        let _ = write!(s, ", {} IPv6 fragments dropped", n.ipv6_fragments_dropped);
    }
    if n.late_data_packets > 0 {
        let _ = write!(
            s,
            ", {} TCP segments after their connection closed ({} bytes not analysed)",
            n.late_data_packets, n.late_data_bytes
        );
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

/// One line of text for a transport note. What the peers sent (SNI, ALPN, HTTP header values,
/// a refusal's reason) is escaped as the summary escapes strings: a terminal must not receive
/// their escape sequences, line breaks or bidirectional overrides.
pub fn describe_note(note: &TransportNote) -> String {
    use crate::msync::render::escape_text as esc;
    fn opt(label: &str, v: &Option<String>) -> String {
        v.as_deref().map(|v| format!(" {label}={}", esc(v))).unwrap_or_default()
    }
    match note {
        TransportNote::Tls { sni, alpn } => format!(
            "TLS: not decodable{}{}",
            sni.as_deref().map(|s| format!(" sni={}", esc(s))).unwrap_or_default(),
            if alpn.is_empty() {
                String::new()
            } else {
                format!(" alpn={}", esc(&alpn.join(",")))
            }
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
        TransportNote::WsRejected { status, reason } => {
            format!("websocket upgrade refused: {status} {}", esc(reason))
        }
        TransportNote::WsPing { len } => format!("websocket ping ({len} bytes)"),
        TransportNote::WsPong { len } => format!("websocket pong ({len} bytes)"),
        TransportNote::WsClose { code, reason } => match code {
            Some(c) => format!("websocket close {c} {reason:?}"),
            None => "websocket close (no status code)".to_string(),
        },
        TransportNote::WsText { len, text } => format!("websocket text message ({len} bytes): {text:?}"),
        TransportNote::WsProblem { offset, what, .. } => {
            format!("websocket problem at stream offset {offset}: {}", esc(what))
        }
        TransportNote::Lz4HistoryLost => {
            "LZ4 history missing (picked up after login, a gap, or an earlier wrapped message that was damaged): wrapped messages cannot be unwrapped until it is rebuilt".to_string()
        }
        TransportNote::Lz4Crc { offset, expected, actual } => {
            format!("LZ4 CRC mismatch at stream offset {offset}: expected {expected:08x}, got {actual:08x}")
        }
    }
}

/// The JSON fields of a `skipped` event.
fn skipped_json(offset: u64, len: u64, why: crate::frame::SkipReason) -> String {
    format!("\"offset\":{offset},\"len\":{len},\"why\":\"{}\"", why.id())
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
        TransportNote::WsProblem { offset, kind, what } => {
            let _ = write!(
                out,
                "{{\"event\":\"websocket_problem\",\"offset\":{offset},\"kind\":\"{kind}\",\"problem\":"
            );
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

/// Hands every event to two consumers (e.g. a printer and an analyzer for a running report).
pub struct Tee<A: Consumer, B: Consumer> {
    pub a: A,
    pub b: B,
}

impl<A: Consumer, B: Consumer> Consumer for Tee<A, B> {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
        self.a.event(ev)?;
        self.b.event(ev)
    }
    fn finish(&mut self, totals: &Totals) -> io::Result<()> {
        self.a.finish(totals)?;
        self.b.finish(totals)
    }
    fn meta_bodies_wanted(&self) -> usize {
        self.a.meta_bodies_wanted().max(self.b.meta_bodies_wanted())
    }
    fn warm(&mut self, conn: u32) {
        self.a.warm(conn);
        self.b.warm(conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_notes_escape_what_the_peers_sent() {
        let evil = "a\u{1b}[2J\r\nb\u{7}\u{202e}c\u{2028}d\u{85}";
        let s = || Some(evil.to_string());
        let notes = [
            TransportNote::Tls { sni: s(), alpn: vec![evil.into()] },
            TransportNote::WsUpgrade {
                path: s(),
                host: s(),
                origin: s(),
                protocol: s(),
                extensions: s(),
            },
            TransportNote::WsRejected { status: 403, reason: evil.into() },
            TransportNote::WsClose { code: Some(1000), reason: evil.into() },
            TransportNote::WsText { len: 9, text: evil.into() },
            TransportNote::WsProblem { offset: 0, kind: "not_http", what: evil.into() },
        ];
        for n in &notes {
            let line = describe_note(n);
            let raw = line.chars().find(|&c| crate::msync::render::needs_escape(c));
            assert_eq!(raw, None, "{line:?}");
        }
        assert_eq!(
            describe_note(&notes[2]),
            "websocket upgrade refused: 403 a\\u{1b}[2J\\r\\nb\\u{7}\\u{202e}c\\u{2028}d\\u{85}"
        );
    }

    #[test]
    fn padded_integers_match_format() {
        for n in [0u64, 7, 42, 99_999, 999_999, 1_000_000, 123_456_789, u64::MAX] {
            for w in [0usize, 4, 6] {
                let mut s = String::new();
                push_padded(&mut s, n, w);
                assert_eq!(s, format!("{n:>w$}"));
            }
        }
    }

    #[test]
    fn relative_times_match_float_formatting() {
        let mut ns_values = vec![
            0i64,
            1,
            499,
            500,
            501,
            999,
            1000,
            1_499,
            1_500,
            999_999_499,
            999_999_500,
            999_999_501,
            59_999_999_999,
            -1,
            -1_500,
            i64::MIN,
            i64::MAX,
            999_999_999_999_999,
            1_000_000_000_000_000,
        ];
        // A deterministic spread of values, microsecond-aligned and not.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = (x % 2_000_000_000_000_000) as i64;
            ns_values.push(v);
            ns_values.push(v / 1000 * 1000);
            ns_values.push(v % 100_000_000_000);
        }
        for ns in ns_values {
            let mut s = String::new();
            push_rel_secs(&mut s, ns);
            assert_eq!(s, format!("{:>11.6}", ns as f64 / 1e9), "{ns}");
        }
    }
}
