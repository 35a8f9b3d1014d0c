//! The report as terminal tables (comfy-table), fitted to a width.
//!
//! Every table is laid out dynamically to the width given (120 columns by default), so no line
//! is wider than that unless a single word is. Long tables stop after `--top N` rows with a
//! "… N more" line. Colour (headings only: cells stay plain so widths are exact) is off
//! unless asked for.

use std::io::{self, Write};

use comfy_table::{
    presets, Cell, CellAlignment, ColumnConstraint, ContentArrangement, Table, Width,
};

use super::{
    fmt_abs, fmt_dur, CountRow, FindingRow, Report, ReportOptions, Section, Spread, Where,
};
use crate::capture::Timestamp;
use crate::msync::render::escape_text as esc;
use crate::time::Zone;

const DEFAULT_WIDTH: u16 = 120;

struct Ctx<'a> {
    r: &'a Report,
    o: &'a ReportOptions,
    width: u16,
    /// Threads that may make and lay out a long table (see [`Ctx::add_rows`] and
    /// [`Ctx::emit_chunked`]).
    threads: usize,
}

/// `first()` on this thread while `later()` runs on a second one; both results.
fn alongside<A, B: Send>(first: impl FnOnce() -> A, later: impl FnOnce() -> B + Send) -> (A, B) {
    std::thread::scope(|scope| {
        let side = scope.spawn(later);
        let a = first();
        (a, side.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    })
}

impl Ctx<'_> {
    /// `2017-10-26 12:29:00.123456` in the chosen zone, with the offset in force at `ts`
    /// unless UTC. The rendering's zone wins over the one the report was computed with.
    fn abs(&self, ts: Timestamp) -> String {
        let zone = if self.o.zone == Zone::Utc { &self.r.zone } else { &self.o.zone };
        fmt_abs(ts, zone.offset_at(ts))
    }

    fn table(&self, header: &[&str]) -> Table {
        let mut t = Table::new();
        t.load_style(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(self.width);
        if header.iter().any(|h| !h.is_empty()) {
            t.set_header(header.iter().map(Cell::new).collect::<Vec<_>>());
        }
        t
    }

    fn heading(&self, out: &mut dyn Write, title: &str) -> io::Result<()> {
        if self.o.color {
            writeln!(out, "\x1b[1;36m{title}\x1b[0m")
        } else {
            writeln!(out, "{title}")
        }
    }

    /// `12:29:00.123 (+1.234s)`: the time of day in the chosen zone, and since capture start.
    fn when(&self, ts: Timestamp) -> String {
        let abs = self.abs(ts);
        let tod = abs.get(11..23).unwrap_or(&abs);
        format!("{tod} {}", self.rel(ts))
    }

    /// `(+1.234s)`: the time since capture start.
    fn rel(&self, ts: Timestamp) -> String {
        let rel = self.r.capture_start.map_or(0, |s| ts.since(s));
        let sign = if rel < 0 { "" } else { "+" };
        format!("({sign}{:.3}s)", rel as f64 / 1e9)
    }

    /// A JID as the tables show it (see [`Report::short_jid`]), escaped: it comes off the wire.
    fn jid(&self, jid: &str) -> String {
        esc(&self.r.short_jid(jid)).into_owned()
    }

    fn place(&self, w: &Where) -> String {
        if w.conn == super::NO_CONN {
            format!("#{}", w.frame)
        } else {
            format!("conn {} #{}", w.conn, w.frame)
        }
    }

    /// Rows allowed in a long table.
    fn limit(&self) -> usize {
        self.o.top.unwrap_or(usize::MAX)
    }

    /// Adds to `t` a row per item of `items` (as many as are allowed), in order: the later
    /// half made on a second thread when [`Ctx::threads`] allows and the table is longer than
    /// one chunk.
    fn add_rows<T: Sync>(&self, t: &mut Table, items: &[T], row: impl Fn(&T) -> Vec<Cell> + Sync) {
        let items = items.get(..self.limit()).unwrap_or(items);
        if self.threads < 2 || items.len() <= ROWS_PER_CHUNK {
            for item in items {
                t.add_row(row(item));
            }
            return;
        }
        let (first, later) = items.split_at(items.len() / 2);
        let ((), later_rows) = alongside(
            || {
                for item in first {
                    t.add_row(row(item));
                }
            },
            || later.iter().map(&row).collect::<Vec<_>>(),
        );
        t.add_rows(later_rows);
    }

    fn emit(&self, out: &mut dyn Write, t: &Table, total: usize) -> io::Result<()> {
        self.emit_chunked(out, t, ROWS_PER_CHUNK)?;
        let shown = total.min(self.limit());
        if total > shown {
            writeln!(out, "… {} more", total - shown)?;
        }
        writeln!(out)
    }

    /// Writes `t` (cut into column groups, see [`Ctx::groups`]). A group whose columns fit the
    /// width is rendered `chunk` rows at a time with its columns fixed at their widths over the
    /// whole table: the lines are those of one rendering, without holding a second copy of a
    /// table of ten thousand sessions and its text at once.
    fn emit_chunked(&self, out: &mut dyn Write, t: &Table, chunk: usize) -> io::Result<()> {
        let widths: Vec<u16> = t.column_max_content_widths();
        let rows = t.row_count();
        for g in self.groups(&widths) {
            let natural: usize =
                g.iter().filter_map(|&i| widths.get(i)).map(|&w| usize::from(w) + 3).sum();
            if rows <= chunk || natural + 1 > usize::from(self.width) {
                let part = self.part(t, &g, 0..rows, true);
                write_lines(out, &part.to_string(), 0, 0)?;
                continue;
            }
            // The lines of the chunk of rows from `start`, written to `out`.
            let chunk_at = |out: &mut dyn Write, start: usize| -> io::Result<()> {
                let end = (start + chunk).min(rows);
                let mut part = self.part(t, &g, start..end, start == 0);
                for (col, &i) in part.column_iter_mut().zip(&g) {
                    let w = widths.get(i).copied().unwrap_or(0);
                    col.set_constraint(ColumnConstraint::Absolute(Width::Fixed(w + 2)));
                }
                // Chunks join where the bottom border of one and the top border of the next
                // would be: both are left out.
                let skip_first = usize::from(start > 0);
                let skip_last = usize::from(end < rows);
                write_lines(out, &part.to_string(), skip_first, skip_last)
            };
            let starts: Vec<usize> = (0..rows).step_by(chunk.max(1)).collect();
            if self.threads < 2 || starts.len() < 2 {
                for &start in &starts {
                    chunk_at(out, start)?;
                }
                continue;
            }
            // Laying out the chunks is most of the time the text report takes: a second
            // thread lays out the later half into memory (text, a fraction of the size of the
            // table's cells) while this one writes the first.
            let (first, later) = starts.split_at(starts.len() / 2);
            let (done, later_text) = alongside(
                || first.iter().try_for_each(|&start| chunk_at(&mut *out, start)),
                || {
                    let mut buf = Vec::new();
                    later.iter().try_for_each(|&start| chunk_at(&mut buf, start)).map(|()| buf)
                },
            );
            done?;
            out.write_all(&later_text?)?;
        }
        Ok(())
    }

    /// A table of columns `cols` of `t` (header only when `header`) and rows `rows`.
    fn part(&self, t: &Table, cols: &[usize], rows: std::ops::Range<usize>, header: bool) -> Table {
        let pick = |cells: Vec<&Cell>| -> Vec<Cell> {
            cols.iter().filter_map(|&i| cells.get(i).map(|c| (*c).clone())).collect()
        };
        let mut part = Table::new();
        part.load_style(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(self.width);
        if header {
            if let Some(h) = t.header() {
                part.set_header(pick(h.cell_iter().collect()));
            }
        }
        for row in t.row_iter().skip(rows.start).take(rows.len()) {
            part.add_row(pick(row.cell_iter().collect()));
        }
        part
    }

    /// The column groups of a table whose columns' content widths are `content`: all its
    /// columns, or, when it is wider than the terminal, groups that each repeat the first (key)
    /// column, so cells do not wrap; what still does not fit (a single wide column) is wrapped
    /// by comfy-table.
    fn groups(&self, content: &[u16]) -> Vec<Vec<usize>> {
        let widths: Vec<usize> = content.iter().map(|&w| usize::from(w) + 3).collect();
        let all: Vec<usize> = (0..widths.len()).collect();
        let width = usize::from(self.width);
        let natural: usize = widths.iter().sum::<usize>() + 1;
        // Cells wrapped mid-word (JIDs, times) are harder to read than a second table that
        // repeats the key column.
        let too_wide = natural > width;
        let (Some(&key), true) = (widths.first(), widths.len() > 2 && too_wide) else {
            return vec![all];
        };
        let greedy = |limit: usize| {
            let mut groups: Vec<Vec<usize>> = Vec::new();
            let mut cur: Vec<usize> = Vec::new();
            let mut cur_w = 1 + key;
            for (i, &w) in widths.iter().enumerate().skip(1) {
                if !cur.is_empty() && cur_w + w > limit {
                    groups.push(std::mem::take(&mut cur));
                    cur_w = 1 + key;
                }
                cur.push(i);
                cur_w += w;
            }
            if !cur.is_empty() {
                groups.push(cur);
            }
            groups
        };
        let mut groups = greedy(width);
        // Even the groups out, so the last one is not a lone column.
        let k = groups.len().max(1);
        let rest: usize = widths.iter().skip(1).sum();
        let widest = widths.iter().skip(1).copied().max().unwrap_or(0);
        // The narrowest limit that still needs no more groups than the terminal width does.
        let lowest = rest.div_ceil(k).max(widest) + 1 + key;
        for limit in lowest..width {
            let g = greedy(limit);
            if g.len() <= k {
                groups = g;
                break;
            }
        }
        for g in &mut groups {
            g.insert(0, 0);
        }
        groups
    }
}

/// Rows of a long table rendered at a time.
const ROWS_PER_CHUNK: usize = 512;

/// Writes the lines of `text` but the first `skip_first` and the last `skip_last`, each
/// without trailing blanks.
fn write_lines(
    out: &mut dyn Write,
    text: &str,
    skip_first: usize,
    skip_last: usize,
) -> io::Result<()> {
    let n = text.lines().count();
    for line in text.lines().skip(skip_first).take(n.saturating_sub(skip_first + skip_last)) {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// The device name, and its uuid unless the resource already shows it (`android_<uuid>`).
fn device(s: &super::SessionRow) -> String {
    let name = esc(opt(&s.device_name));
    match s.device_uuid.as_deref() {
        Some(u) if !s.resource.as_deref().is_some_and(|r| r.contains(u)) => {
            format!("{name} ({})", esc(u))
        }
        _ => name.into_owned(),
    }
}

/// An empty section: a word instead of a table of headers.
fn none(out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "none")?;
    writeln!(out)
}

fn num(n: u64) -> Cell {
    Cell::new(n).set_alignment(CellAlignment::Right)
}

fn opt_dur(v: Option<i64>) -> String {
    v.map_or_else(|| "-".to_string(), fmt_dur)
}

fn spread(s: &Spread) -> String {
    if s.count == 0 {
        "-".into()
    } else {
        format!("{} / {}", opt_dur(s.p50_ns), opt_dur(s.max_ns))
    }
}

/// The first few items and how many more: `1, 2, 3, 4, 5, 6 … (+9)`.
fn list(items: impl Iterator<Item = String>, total: usize) -> String {
    const SHOWN: usize = 6;
    let mut s = items.take(SHOWN).collect::<Vec<_>>().join(", ");
    if total > SHOWN {
        s.push_str(&format!(" … (+{})", total - SHOWN));
    }
    s
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("-")
}

impl Report {
    /// Writes the sections the options select, as tables.
    pub fn write_text(&self, out: &mut dyn Write, opts: &ReportOptions) -> io::Result<()> {
        self.write_text_threads(out, opts, 1)
    }

    /// [`Report::write_text`], the same text, with long tables laid out on up to two threads
    /// when `threads` allows.
    pub fn write_text_threads(
        &self,
        out: &mut dyn Write,
        opts: &ReportOptions,
        threads: usize,
    ) -> io::Result<()> {
        let width = opts.width.unwrap_or(DEFAULT_WIDTH).max(20);
        let c = Ctx { r: self, o: opts, width, threads };
        for s in Section::ALL {
            if !opts.shows(s) {
                continue;
            }
            match s {
                Section::Overview => overview(&c, out)?,
                Section::Sessions => sessions(&c, out)?,
                Section::Queues => queues(&c, out)?,
                Section::Latency => latency(&c, out)?,
                Section::Errors => errors(&c, out)?,
                Section::Messages => messages(&c, out)?,
                Section::Findings => findings(&c, out)?,
            }
        }
        Ok(())
    }
}

fn finding_line(c: &Ctx<'_>, f: &FindingRow) -> String {
    let at = f.places.first().map(|w| format!(", first at {}", c.place(w))).unwrap_or_default();
    format!("{}: {} ×{}{}", f.severity.as_str(), esc(&f.summary), f.count, at)
}

fn overview(c: &Ctx<'_>, out: &mut dyn Write) -> io::Result<()> {
    let r = c.r;
    let o = &r.overview;
    c.heading(out, "Overview")?;
    let mut t = c.table(&["", ""]);
    let span = match (r.capture_start, r.capture_end) {
        (Some(a), Some(b)) => format!("{} → {} ({})", c.abs(a), c.abs(b), fmt_dur(b.since(a))),
        _ => "-".into(),
    };
    t.add_row(vec![Cell::new("Capture"), Cell::new(span)]);
    if let Some(line) = super::time_order_text(&o.time_order, |ts| c.abs(ts)) {
        let line = format!("{line}. Relative times count from the first packet");
        t.add_row(vec![Cell::new("Time order"), Cell::new(line)]);
    }
    t.add_row(vec![
        Cell::new("Packets / connections"),
        Cell::new({
            let mut s = format!(
                "{} packets, {} TCP connections, {} MSync",
                o.packets, o.tcp_connections, o.msync_connections
            );
            if o.websocket_connections > 0 {
                s.push_str(&format!(" ({} over WebSocket)", o.websocket_connections));
            }
            // TLS connections are among the other ones: said inside their count, so the parts
            // add up to the total.
            if o.other_connections > 0 || o.tls_connections > 0 {
                s.push_str(&format!(", {} other", o.other_connections.max(o.tls_connections)));
                if o.tls_connections > 0 {
                    s.push_str(&format!(" ({} TLS, not decodable)", o.tls_connections));
                }
            }
            s
        }),
    ]);
    let na = &o.not_analysed;
    if !na.is_empty() || o.connections_evicted > 0 {
        let mut parts = Vec::new();
        let bad = na.malformed + na.unsupported_link;
        if bad > 0 {
            parts.push(format!(
                "{bad} packets not parsed ({} malformed, {} of an unsupported link type)",
                na.malformed, na.unsupported_link
            ));
        }
        if na.non_ip + na.non_tcp > 0 {
            parts.push(format!("{} not IP, {} IP but not TCP", na.non_ip, na.non_tcp));
        }
        if na.fragments_dropped > 0 {
            parts.push(format!("{} IP fragments dropped", na.fragments_dropped));
        }
        if na.after_close > 0 {
            parts.push(format!(
                "{} TCP segments after their connection closed ({} bytes)",
                na.after_close, na.after_close_bytes
            ));
        }
        if o.connections_evicted > 0 {
            parts.push(format!("{} connections evicted (flow table full)", o.connections_evicted));
        }
        t.add_row(vec![Cell::new("Not analysed"), Cell::new(parts.join("; "))]);
    }
    if r.filter.any() {
        let f = &r.filter;
        let mut by = Vec::new();
        if let Some(u) = &f.user {
            by.push(format!("user {}", esc(u)));
        }
        if !f.conns.is_empty() {
            by.push(format!("conn {}", super::fmt_conns(&f.conns)));
        }
        let at = |ts: Timestamp| format!("{} {}", c.abs(ts), c.rel(ts));
        match (f.since, f.until) {
            (Some(a), Some(b)) => by.push(format!("{} → {}", at(a), at(b))),
            (Some(a), None) => by.push(format!("from {}", at(a))),
            (None, Some(b)) => by.push(format!("until {}", at(b))),
            (None, None) => {}
        }
        t.add_row(vec![
            Cell::new("Filtered"),
            Cell::new(format!(
                "{}: {} session{} shown",
                by.join(", "),
                o.sessions,
                if o.sessions == 1 { "" } else { "s" }
            )),
        ]);
    }
    if o.sessions_folded > 0 {
        t.add_row(vec![
            Cell::new("Sessions"),
            Cell::new(format!(
                "{} shown, {} older finished ones folded into the totals",
                o.sessions, o.sessions_folded
            )),
        ]);
    }
    let mut cmds: Vec<String> =
        o.per_command.iter().map(|(n, u, d)| format!("{n} {u}↑ {d}↓")).collect();
    // The total counts undecodable frames too: named, so that the parts add up to it.
    if o.decode_errors > 0 {
        cmds.push(format!("{} undecodable", o.decode_errors));
    }
    let cmds = cmds.join(", ");
    let msgs =
        if cmds.is_empty() { o.messages.to_string() } else { format!("{} ({cmds})", o.messages) };
    t.add_row(vec![Cell::new("Messages"), Cell::new(msgs)]);
    let mut names: Vec<String> = o.users.iter().map(|u| c.jid(u)).collect();
    names.sort();
    names.truncate(5);
    let users = if o.users.len() > 5 {
        format!("{} ({}, …)", o.users.len(), names.join(", "))
    } else if o.users.is_empty() {
        "0".into()
    } else {
        format!("{} ({})", o.users.len(), names.join(", "))
    };
    t.add_row(vec![Cell::new("Users"), Cell::new(users)]);
    if !r.app_keys.is_empty() || !r.domains.is_empty() {
        let short = match (r.home_app_key(), r.home_domain()) {
            (Some(a), Some(d)) => {
                format!(" (JIDs below are shown without {}_ and @{})", esc(a), esc(d))
            }
            (Some(a), None) => format!(" (JIDs below are shown without {}_)", esc(a)),
            (None, Some(d)) => format!(" (JIDs below are shown without @{})", esc(d)),
            (None, None) => String::new(),
        };
        t.add_row(vec![
            Cell::new("App key / domain"),
            Cell::new(format!(
                "{} / {}{short}",
                esc(&r.app_keys.join(", ")),
                esc(&r.domains.join(", "))
            )),
        ]);
    }
    t.add_row(vec![
        Cell::new("Decode errors / gaps"),
        Cell::new(format!("{} undecodable frames, {} gap bytes", o.decode_errors, o.gap_bytes)),
    ]);
    let worst = if o.worst.is_empty() {
        "none".to_string()
    } else {
        o.worst.iter().map(|f| finding_line(c, f)).collect::<Vec<_>>().join("\n")
    };
    t.add_row(vec![Cell::new("Worst findings"), Cell::new(worst)]);
    c.emit(out, &t, 0)
}

fn sessions(c: &Ctx<'_>, out: &mut dyn Write) -> io::Result<()> {
    let rows = &c.r.sessions;
    let legend = if rows.iter().any(|s| s.midstream) { "; * picked up mid-stream" } else { "" };
    // One server for all (the usual capture, taken at the server): said once, not per row.
    let server =
        rows.first().map(|s| s.server.as_str()).filter(|f| rows.iter().all(|s| s.server == *f));
    let to = server.map(|s| format!(" with server {s}")).unwrap_or_default();
    // A session closed as idle that came back: its End names the connection it went on as.
    let resumed_as: std::collections::HashMap<u32, u32> =
        rows.iter().filter_map(|s| s.resumes.map(|(old, _)| (old, s.conn))).collect();
    c.heading(out, &format!("Sessions ({}{to}{legend})", rows.len()))?;
    if rows.is_empty() {
        return none(out);
    }
    let mut t = c.table(&[
        "#",
        if server.is_some() { "Client" } else { "Client → Server" },
        "User",
        "Login",
        "Start",
        "Duration",
        "End",
        "Msgs ↑/↓",
        "Err",
    ]);
    c.add_rows(&mut t, rows, |s| {
        let login = match (&s.login, s.resumes) {
            // Its PROVISION, if any, was on the connection it goes on with.
            (None, Some((conn, ns))) => format!("resumes {conn} (idle {})", fmt_dur(ns)),
            (None, None) => "no PROVISION".to_string(),
            (Some(l), _) => {
                let mut x = esc(&l.status).into_owned();
                if let Some(r) = &l.reason {
                    x.push_str(&format!(" ({})", esc(r)));
                }
                if let Some(ns) = l.latency_ns {
                    x.push_str(&format!(" {}", fmt_dur(ns)));
                }
                x
            }
        };
        let mut conn = s.conn.to_string();
        if s.midstream {
            conn.push('*');
        }
        let user = s.user.as_deref().map_or_else(
            || "-".to_string(),
            |u| {
                // The resource is in the clients table below.
                let short = c.jid(u);
                let bare = short.split('/').next().unwrap_or(&short).to_string();
                if s.user_inferred {
                    format!("{bare} (inferred)")
                } else {
                    bare
                }
            },
        );
        vec![
            Cell::new(conn),
            Cell::new(if server.is_some() {
                s.client.clone()
            } else {
                format!("{} → {}", s.client, s.server)
            }),
            Cell::new(user),
            Cell::new(login),
            Cell::new(c.when(s.start)),
            Cell::new(fmt_dur(s.duration_ns)),
            Cell::new(match resumed_as.get(&s.conn) {
                Some(n) => format!("{} → {n}", s.ended()),
                None => s.ended(),
            }),
            Cell::new(format!("{}/{}", s.msgs_up, s.msgs_down)),
            num(s.errors + s.decode_errors),
        ]
    });
    c.emit(out, &t, rows.len())?;
    if rows.is_empty() {
        return Ok(());
    }
    c.heading(out, "Session clients")?;
    let mut t = c.table(&[
        "#",
        "Resource",
        "Device",
        "OS / SDK",
        "Transport",
        "Bytes ↑/↓",
        "Heartbeats (RTT p50 / max)",
    ]);
    c.add_rows(&mut t, rows, |s| {
        let hb = &s.heartbeats;
        let every = hb.interval_ns.map(|i| format!(" every {}", fmt_dur(i))).unwrap_or_default();
        let hbs = if hb.count == 0 {
            "0".to_string()
        } else {
            format!("{}{every}, {} / {}", hb.count, opt_dur(hb.rtt_p50_ns), opt_dur(hb.rtt_max_ns))
        };
        vec![
            Cell::new(s.conn),
            Cell::new(esc(opt(&s.resource))),
            Cell::new(device(s)),
            Cell::new(format!("{} / {}", esc(opt(&s.os)), esc(opt(&s.sdk_version)))),
            Cell::new(transport(s)),
            Cell::new(format!("{}/{}", s.bytes_up, s.bytes_down)),
            Cell::new(hbs),
        ]
    });
    c.emit(out, &t, rows.len())
}

fn queues(c: &Ctx<'_>, out: &mut dyn Write) -> io::Result<()> {
    let rows = &c.r.queues;
    c.heading(out, &format!("Queues ({}); times are p50 / max", rows.len()))?;
    if rows.is_empty() {
        return none(out);
    }
    let mut t = c.table(&[
        "Queue",
        "Notices",
        "Pulls",
        "Metas",
        "Unread",
        "Next key",
        "Last",
        "Notice→pull",
        "Pull RTT",
        "Drains (pages / metas)",
        "Drain time",
        "Stalls",
    ]);
    c.add_rows(&mut t, rows, |q| {
        vec![
            Cell::new(c.jid(&q.queue)),
            num(q.notices),
            num(q.pulls),
            num(q.metas),
            Cell::new(q.unread_announced.map_or("-".into(), |n| n.to_string())),
            Cell::new(q.last_next_key.map_or("-".into(), |n| n.to_string())),
            Cell::new(match q.is_last_reached {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            }),
            Cell::new(spread(&q.notice_to_pull)),
            Cell::new(spread(&q.pull_rtt)),
            Cell::new(format!("{} ({} / {})", q.drains, q.drain_pages, q.drain_metas)),
            Cell::new(spread(&q.drain_time)),
            num(q.stalls),
        ]
    });
    c.emit(out, &t, rows.len())
}

fn latency(c: &Ctx<'_>, out: &mut dyn Write) -> io::Result<()> {
    c.heading(out, "Latency (service response time)")?;
    let mut t = c.table(&[
        "Exchange",
        "Count",
        "Answered",
        "Unanswered",
        "Min",
        "p50",
        "p90",
        "p99",
        "Max",
    ]);
    for l in &c.r.latency {
        t.add_row(vec![
            Cell::new(l.kind),
            num(l.count),
            num(l.answered),
            num(l.unanswered),
            Cell::new(opt_dur(l.min_ns)),
            Cell::new(opt_dur(l.p50_ns)),
            Cell::new(opt_dur(l.p90_ns)),
            Cell::new(opt_dur(l.p99_ns)),
            Cell::new(opt_dur(l.max_ns)),
        ]);
    }
    c.emit(out, &t, 0)
}

fn errors(c: &Ctx<'_>, out: &mut dyn Write) -> io::Result<()> {
    let rows = &c.r.errors;
    c.heading(out, &format!("Errors ({})", rows.len()))?;
    if rows.is_empty() {
        return none(out);
    }
    let mut t =
        c.table(&["Code", "Count", "Commands", "Reasons", "First / last", "Sessions (users)"]);
    for e in rows.iter().take(c.limit()) {
        let cmds = e
            .commands
            .iter()
            .map(|(n, k)| format!("{} {k}", esc(n)))
            .collect::<Vec<_>>()
            .join("\n");
        let reasons = e
            .reasons
            .iter()
            .map(|(n, k)| format!("{} ({k})", esc(n)))
            .collect::<Vec<_>>()
            .join("\n");
        // The full lists are in the JSON; a table cell names the first few.
        let mut who = list(e.sessions.iter().map(u32::to_string), e.sessions.len());
        if !e.users.is_empty() {
            let users = list(e.users.iter().map(|u| c.jid(u)), e.users.len());
            who.push_str(&format!("\n({users})"));
        }
        t.add_row(vec![
            Cell::new(esc(&e.code)),
            num(e.count),
            Cell::new(cmds),
            Cell::new(if reasons.is_empty() { "-".into() } else { reasons }),
            Cell::new(if e.first == e.last {
                format!("{} #{}", c.when(e.first.ts), e.first.frame)
            } else {
                format!(
                    "{} #{}\n{} #{}",
                    c.when(e.first.ts),
                    e.first.frame,
                    c.when(e.last.ts),
                    e.last.frame
                )
            }),
            Cell::new(who),
        ]);
    }
    c.emit(out, &t, rows.len())
}

fn count_table(c: &Ctx<'_>, title: &str, rows: &[CountRow]) -> Table {
    let mut t = c.table(&[title, "Up", "Down"]);
    for r in rows {
        t.add_row(vec![Cell::new(esc(&r.name)), num(r.up), num(r.down)]);
    }
    t
}

fn messages(c: &Ctx<'_>, out: &mut dyn Write) -> io::Result<()> {
    let m = &c.r.messages;
    c.heading(out, "Messages")?;
    // Five empty tables say less than the one word the other sections print.
    if m.namespaces.is_empty()
        && m.body_types.is_empty()
        && m.content_types.is_empty()
        && m.top_senders.is_empty()
        && m.top_receivers.is_empty()
    {
        return none(out);
    }
    c.emit(out, &count_table(c, "Namespace", &m.namespaces), 0)?;
    c.emit(out, &count_table(c, "Body type", &m.body_types), 0)?;
    c.emit(out, &count_table(c, "Content type", &m.content_types), 0)?;
    for (title, v) in [("Top senders", &m.top_senders), ("Top receivers", &m.top_receivers)] {
        let limit = c.limit().min(10);
        let mut t = c.table(&[title, "Metas"]);
        for (n, k) in v.iter().take(limit) {
            t.add_row(vec![Cell::new(c.jid(n)), num(*k)]);
        }
        for line in t.lines() {
            writeln!(out, "{}", line.trim_end())?;
        }
        if v.len() > limit {
            writeln!(out, "… {} more", v.len() - limit)?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn findings(c: &Ctx<'_>, out: &mut dyn Write) -> io::Result<()> {
    let rows = &c.r.findings;
    c.heading(out, &format!("Findings ({})", rows.len()))?;
    if rows.is_empty() {
        return none(out);
    }
    let mut t = c.table(&["Severity", "Count", "Finding", "Where (conn #packet)"]);
    for f in rows.iter().take(c.limit()) {
        let mut wh = f.places.iter().take(3).map(|w| c.place(w)).collect::<Vec<_>>().join("\n");
        if f.count > f.places.len().min(3) as u64 {
            wh.push_str("\n…");
        }
        t.add_row(vec![
            Cell::new(f.severity.as_str()),
            num(f.count),
            Cell::new(format!("{}\n[{}]", esc(&f.summary), f.kind)),
            Cell::new(wh),
        ]);
    }
    c.emit(out, &t, rows.len())
}

/// "tcp", or "ws /path (extensions)" for WebSocket sessions.
fn transport(s: &super::SessionRow) -> String {
    match s.transport {
        Some("websocket") => {
            let mut t = "ws".to_string();
            if let Some(p) = &s.ws_path {
                t.push(' ');
                t.push_str(&esc(p));
            }
            if let Some(e) = s.ws_extensions.as_ref().filter(|e| !e.is_empty()) {
                t.push_str(&format!(" ({})", esc(e)));
            }
            t
        }
        Some(t) => t.to_string(),
        None => "-".to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A table of `rows` rows whose cells vary in width, some right-aligned, one multi-line.
    fn table(rows: usize, cols: usize) -> Table {
        let mut t = Table::new();
        t.set_header((0..cols).map(|c| Cell::new(format!("column {c}"))).collect::<Vec<_>>());
        for r in 0..rows {
            let cells = (0..cols).map(|c| {
                let text = "x".repeat((r * 7 + c * 3) % 23);
                match c % 3 {
                    0 => Cell::new(format!("{r}{text}")),
                    1 => Cell::new(r * c).set_alignment(CellAlignment::Right),
                    _ if r == 5 => Cell::new(format!("two\nlines{text}")),
                    _ => Cell::new(text),
                }
            });
            t.add_row(cells.collect::<Vec<_>>());
        }
        t
    }

    fn render(t: &Table, width: u16, chunk: usize, threads: usize) -> String {
        let (r, o) = (Report::default(), ReportOptions::default());
        let c = Ctx { r: &r, o: &o, width, threads };
        let mut out = Vec::new();
        c.emit_chunked(&mut out, t, chunk).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Chunks join into exactly the lines of one rendering: narrow and wide terminals (column
    /// groups or not), chunk edges on and off row counts, a group too wide to fit (wrapped),
    /// chunks laid out on one thread or two.
    #[test]
    fn chunked_tables_read_as_one() {
        for (rows, cols) in [(1, 3), (7, 2), (100, 4), (333, 9), (64, 12)] {
            let t = table(rows, cols);
            for width in [40u16, 80, 120, 400] {
                let whole = render(&t, width, usize::MAX, 1);
                assert!(whole.lines().count() > rows, "{rows}x{cols} at {width}");
                for chunk in [1, 2, 7, 64, rows] {
                    for threads in [1, 2] {
                        assert_eq!(
                            render(&t, width, chunk, threads),
                            whole,
                            "{rows}x{cols} at {width} by {chunk} on {threads} threads"
                        );
                    }
                }
            }
        }
    }
}
