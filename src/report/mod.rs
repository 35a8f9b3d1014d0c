//! `msyncdump report`: the computed result of an analysis ([`Report`], plain data) and its two
//! renderings, terminal tables ([`text`]) and one JSON document ([`json`]).
//!
//! The [`crate::analysis::Analyzer`] builds a [`Report`]; nothing here looks at packets. Times
//! are kept as capture timestamps (ns since the Unix epoch, UTC) and durations as ns; the
//! renderers turn them into text (absolute in UTC or a given offset, relative to capture start)
//! or milliseconds.

pub mod json;
pub mod progress;
pub mod text;

use std::fmt;

use crate::capture::Timestamp;

/// The report's sections, in display order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Section {
    Overview,
    Sessions,
    Queues,
    Latency,
    Errors,
    Messages,
    Findings,
}

impl Section {
    pub const ALL: [Section; 7] = [
        Section::Overview,
        Section::Sessions,
        Section::Queues,
        Section::Latency,
        Section::Errors,
        Section::Messages,
        Section::Findings,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Section::Overview => "overview",
            Section::Sessions => "sessions",
            Section::Queues => "queues",
            Section::Latency => "latency",
            Section::Errors => "errors",
            Section::Messages => "messages",
            Section::Findings => "findings",
        }
    }

    /// Parses a section name (case-insensitive; a unique prefix is enough).
    pub fn parse(s: &str) -> Result<Section, String> {
        let l = s.trim().to_ascii_lowercase();
        if l.is_empty() {
            return Err("empty section name".into());
        }
        let hits: Vec<Section> =
            Section::ALL.iter().copied().filter(|x| x.name().starts_with(&l)).collect();
        match hits.as_slice() {
            [one] => Ok(*one),
            _ => Err(format!(
                "unknown section {s:?} (one of: {})",
                Section::ALL.map(|x| x.name()).join(", ")
            )),
        }
    }
}

/// A bound of the `--since` / `--until` window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeBound {
    /// Nanoseconds since the Unix epoch. `zoned` is false when the text named no zone: the
    /// time is then read as the clocks of the zone times are shown in (`--local`,
    /// `--utc-offset`, else UTC).
    Absolute { ns: i64, zoned: bool },
    /// A time of day without a date (`12:29`), in nanoseconds after midnight: at `offset`
    /// seconds from UTC when the text named one, else in the zone times are shown in. It is
    /// taken on the day that puts it nearest to the capture's first packet (within 12 hours), so
    /// that `--since 23:58` and `--until 00:02` on a capture that starts at 23:55 mean the
    /// minutes around midnight.
    TimeOfDay { ns: i64, offset: Option<i32> },
    /// Nanoseconds after the capture's first packet.
    Offset(i64),
}

const DAY_NS: i64 = 86_400 * 1_000_000_000;

impl TimeBound {
    /// The bound as a capture timestamp; `zone` is the zone times are shown in.
    pub fn resolve(self, capture_start: Timestamp, zone: &crate::time::Zone) -> Timestamp {
        let secs = |o: Option<i32>| i64::from(o.unwrap_or(0)) * 1_000_000_000;
        match self {
            TimeBound::Absolute { ns, zoned: true } => Timestamp(ns),
            TimeBound::Absolute { ns, zoned: false } => {
                Timestamp(ns.saturating_sub(secs(zone.offset_at_wall(Timestamp(ns)))))
            }
            TimeBound::TimeOfDay { ns, offset } => {
                let at = |o: Option<i32>| {
                    let start = capture_start.0.saturating_add(secs(o));
                    let mut wall =
                        start.div_euclid(DAY_NS).saturating_mul(DAY_NS).saturating_add(ns);
                    if wall.saturating_sub(start) >= DAY_NS / 2 {
                        wall = wall.saturating_sub(DAY_NS);
                    } else if start.saturating_sub(wall) > DAY_NS / 2 {
                        wall = wall.saturating_add(DAY_NS);
                    }
                    wall
                };
                match offset {
                    Some(o) => Timestamp(at(Some(o)).saturating_sub(secs(Some(o)))),
                    None => {
                        // The day is the one of the zone's clocks at the capture's start; the
                        // offset, the one in force at that wall-clock time (DST may differ).
                        let wall = at(zone.offset_at(capture_start));
                        Timestamp(wall.saturating_sub(secs(zone.offset_at_wall(Timestamp(wall)))))
                    }
                }
            }
            TimeBound::Offset(off) => Timestamp(capture_start.0.saturating_add(off)),
        }
    }
}

/// What the user asked of the report.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// Sections to show; `None` shows all.
    pub sections: Option<Vec<Section>>,
    /// Rows shown per long table; the rest is summed up in a "… N more" line.
    pub top: Option<usize>,
    pub color: bool,
    /// Terminal width the tables are fitted to; `None`: 120 columns.
    pub width: Option<u16>,
    /// Exchanges slower than this (ns) are findings.
    pub slow_ns: i64,
    /// Only sessions of this user (the JID's name, bare JID or full JID).
    pub user: Option<String>,
    /// Only these connection indexes (sorted, no repeats); empty: all.
    pub conns: Vec<u32>,
    pub since: Option<TimeBound>,
    pub until: Option<TimeBound>,
    /// Where absolute times are shown, and unzoned `--since` / `--until` times are read.
    pub zone: crate::time::Zone,
    /// The report prints no secrets today; kept so that a later field that could hold one
    /// (e.g. a token in a reason string) honours the same switch as `dissect`.
    pub show_secrets: bool,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            sections: None,
            top: None,
            color: false,
            width: None,
            slow_ns: 500_000_000,
            user: None,
            conns: Vec::new(),
            since: None,
            until: None,
            zone: crate::time::Zone::Utc,
            show_secrets: false,
        }
    }
}

impl ReportOptions {
    pub fn shows(&self, s: Section) -> bool {
        self.sections.as_ref().is_none_or(|v| v.contains(&s))
    }
}

/// Wireshark's expert-info severities that we use, least severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Note,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// The connection of a [`Where`] that belongs to no connection (a packet's timestamp, say).
pub const NO_CONN: u32 = u32::MAX;

/// A place in the capture: connection and packet (record) number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Where {
    /// The connection, or [`NO_CONN`] for a place in the capture at large.
    pub conn: u32,
    pub frame: u64,
    pub ts: Timestamp,
}

/// The filters a report was narrowed by, as given (the user, the connection) and as resolved
/// (the `--since` / `--until` window in capture time).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub user: Option<String>,
    pub conns: Vec<u32>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl Filter {
    /// Whether any filter narrowed the report.
    pub fn any(&self) -> bool {
        *self != Filter::default()
    }
}

/// The whole computed report.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub capture_start: Option<Timestamp>,
    pub capture_end: Option<Timestamp>,
    /// The zone absolute times are shown in (from the options).
    pub zone: crate::time::Zone,
    /// What narrowed the report, the window resolved to capture times.
    pub filter: Filter,
    pub overview: Overview,
    pub sessions: Vec<SessionRow>,
    pub queues: Vec<QueueRow>,
    pub latency: Vec<LatencyRow>,
    pub errors: Vec<ErrorRow>,
    pub messages: MessageStats,
    pub findings: Vec<FindingRow>,
    /// App keys and domains of the JIDs in the report (sorted). When there is one of each, the
    /// text tables print JIDs without them.
    pub app_keys: Vec<String>,
    pub domains: Vec<String>,
}

impl Report {
    /// The single app key of the report's JIDs, which the text tables leave out.
    pub fn home_app_key(&self) -> Option<&str> {
        match self.app_keys.as_slice() {
            [one] => Some(one.as_str()),
            _ => None,
        }
    }

    /// The users' domain, which the text tables leave out: the only domain, or the one every
    /// other is a subdomain of (`easemob.com` beside `conference.easemob.com`).
    pub fn home_domain(&self) -> Option<&str> {
        self.domains
            .iter()
            .find(|d| self.domains.iter().all(|o| o == *d || o.ends_with(&format!(".{d}"))))
            .map(String::as_str)
    }

    /// A JID for a narrow table: `appkey_name@domain/res` becomes `name/res` without the home
    /// app key and domain (printed once in the overview); other domains stay
    /// (`123@conference.easemob.com`).
    pub fn short_jid(&self, jid: &str) -> String {
        let (app, home) = (self.home_app_key(), self.home_domain());
        if app.is_none() && home.is_none() {
            return jid.to_string();
        }
        let (main, res) = match jid.split_once('/') {
            Some((m, r)) => (m, Some(r)),
            None => (jid, None),
        };
        let (local, dom) = match main.split_once('@') {
            Some((l, d)) => (l, Some(d)),
            None => (main, None),
        };
        // A JID of the app key and no name (the server's NOTIFY metas come from one) is not
        // a user: shortened, it would read as a user named like the app key.
        let app_only = app == Some(local);
        let local = app.and_then(|a| local.strip_prefix(a)?.strip_prefix('_')).unwrap_or(local);
        let mut out = local.to_string();
        // A JID of the domain alone (the web SDK's chat room join is sent to `@easemob.com`)
        // keeps it: left out, the table would show an empty name. So does one of the app key.
        if let Some(d) = dom.filter(|d| Some(*d) != home || out.is_empty() || app_only) {
            out.push('@');
            out.push_str(d);
        }
        if let Some(r) = res {
            out.push('/');
            out.push_str(r);
        }
        out
    }
}

#[derive(Clone, Debug, Default)]
pub struct Overview {
    /// Capture-wide counts (from the pipeline's totals; not narrowed by filters).
    pub packets: u64,
    pub tcp_connections: u64,
    pub msync_connections: u64,
    /// Connections recognised as TLS (not decodable), as WebSocket, and with data that was not
    /// MSync.
    pub tls_connections: u64,
    pub websocket_connections: u64,
    pub other_connections: u64,
    /// Sessions in this report (after filters).
    pub sessions: u64,
    /// Finished sessions folded into the totals without a row of their own (live capture).
    pub sessions_folded: u64,
    /// MSync messages in this report (after filters).
    pub messages: u64,
    /// Per command: (name, client→server, server→client).
    pub per_command: Vec<(String, u64, u64)>,
    /// Distinct users (login JIDs without resource), sorted.
    pub users: Vec<String>,
    pub decode_errors: u64,
    pub gap_bytes: u64,
    /// The three most severe findings (most severe, then most frequent, first).
    pub worst: Vec<FindingRow>,
    /// Packets that carried nothing to analyse, by why (capture-wide).
    pub not_analysed: NotAnalysed,
    /// Connections dropped from a full flow table before they ended (capture-wide).
    pub connections_evicted: u64,
    /// Whether the packets' times only went forward (capture-wide).
    pub time_order: crate::capture::TimeOrder,
}

/// Packets that reached no connection, by why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NotAnalysed {
    /// Headers cut short or contradictory.
    pub malformed: u64,
    /// Of a link type that is not read.
    pub unsupported_link: u64,
    /// Not IP (ARP, LLDP, …).
    pub non_ip: u64,
    /// IP, but not TCP (UDP, ICMP, …), and in no tunnel that is opened.
    pub non_tcp: u64,
    /// IPv4 and IPv6 fragments (or whole datagrams) given up: conflicting overlaps, over the
    /// buffer, or never completed.
    pub fragments_dropped: u64,
    /// TCP segments with bytes past the end of their connection, after it closed (FIN or RST),
    /// and those bytes.
    pub after_close: u64,
    pub after_close_bytes: u64,
}

impl NotAnalysed {
    pub fn is_empty(&self) -> bool {
        *self == NotAnalysed::default()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LoginInfo {
    /// `Status.ErrorCode` name of the server's answer; "UNANSWERED" when none came.
    pub status: String,
    pub reason: Option<String>,
    pub latency_ns: Option<i64>,
    pub session_id: Option<String>,
    /// Packet of the request (or of the answer when the request was not captured).
    pub frame: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Heartbeats {
    pub count: u64,
    pub interval_ns: Option<i64>,
    pub rtt_p50_ns: Option<i64>,
    pub rtt_max_ns: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SessionRow {
    pub conn: u32,
    pub client: String,
    pub server: String,
    pub transport: Option<&'static str>,
    /// WebSocket sessions: the upgrade's path and the extensions in force.
    pub ws_path: Option<String>,
    pub ws_extensions: Option<String>,
    pub midstream: bool,
    /// The session goes on with this one's earlier connection (its number), closed as idle
    /// after no packet for the idle timeout, and how long it was silent (ns).
    pub resumes: Option<(u32, i64)>,
    /// The login JID (PROVISION envelope's `guid`), as the SDK prints it; without PROVISION,
    /// the `from` of the client's own first send ([`SessionRow::user_inferred`]).
    pub user: Option<String>,
    /// `user` was inferred from the client's sends, not read from its login.
    pub user_inferred: bool,
    pub resource: Option<String>,
    pub device_uuid: Option<String>,
    pub device_name: Option<String>,
    pub os: Option<String>,
    pub sdk_version: Option<String>,
    /// `None`: no PROVISION seen at all.
    pub login: Option<LoginInfo>,
    pub start: Timestamp,
    pub end: Timestamp,
    pub duration_ns: i64,
    /// FIN, RST, idle, evicted, capture end, open (no close seen yet): the TCP connection's.
    pub close: String,
    /// How the WebSocket ended, when it did before the TCP connection: its first close frame,
    /// or the refused upgrade.
    pub ws_end: Option<WsEnd>,
    /// The client logged out (LOGOUT sent) before the connection ended.
    pub logout: bool,
    pub msgs_up: u64,
    pub msgs_down: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub heartbeats: Heartbeats,
    /// Non-OK statuses returned on this connection.
    pub errors: u64,
    pub decode_errors: u64,
}

/// How a session's WebSocket ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WsEnd {
    /// The first close frame: who sent it, its status code (none in an empty frame), reason.
    Close { by_client: bool, code: Option<u16>, reason: String },
    /// The server answered the upgrade request with another status than 101.
    Refused { status: u16, reason: String },
}

impl fmt::Display for WsEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsEnd::Close { code: Some(code), reason, .. } if reason.is_empty() => {
                write!(f, "ws close {code}")
            }
            WsEnd::Close { code: Some(code), reason, .. } => {
                write!(f, "ws close {code} {reason:?}")
            }
            WsEnd::Close { code: None, .. } => f.write_str("ws close"),
            WsEnd::Refused { status, reason } => write!(f, "upgrade refused {status} {reason}"),
        }
    }
}

impl SessionRow {
    /// How the connection ended: the WebSocket's end, then the TCP connection's (which is left
    /// out while the connection is still open).
    pub fn closed(&self) -> String {
        match (&self.ws_end, self.close.as_str()) {
            (Some(ws), "open") => ws.to_string(),
            (Some(ws), tcp) => format!("{ws}, {tcp}"),
            (None, tcp) => tcp.to_string(),
        }
    }

    /// How the session ended, LOGOUT first when the client logged out.
    pub fn ended(&self) -> String {
        if self.logout {
            format!("LOGOUT, {}", self.closed())
        } else {
            self.closed()
        }
    }
}

/// p50 / max of a distribution, with its sample count.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Spread {
    pub count: u64,
    pub p50_ns: Option<i64>,
    pub max_ns: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct QueueRow {
    pub queue: String,
    pub sessions: Vec<u32>,
    pub notices: u64,
    pub pulls: u64,
    pub metas: u64,
    /// Last unread count the server announced in an UNREAD answer.
    pub unread_announced: Option<u64>,
    pub last_next_key: Option<u64>,
    /// Some answer had `is_last`; `None` when no answer carried the flag at all.
    pub is_last_reached: Option<bool>,
    pub notice_to_pull: Spread,
    pub pull_rtt: Spread,
    /// Drains that reached `is_last`.
    pub drains: u64,
    pub drain_pages: u64,
    pub drain_metas: u64,
    pub drain_time: Spread,
    /// Drains that never reached `is_last`, or whose next_key did not advance.
    pub stalls: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LatencyRow {
    /// login, unread, send, pull, notice, logout.
    pub kind: &'static str,
    pub count: u64,
    pub answered: u64,
    pub unanswered: u64,
    pub min_ns: Option<i64>,
    pub p50_ns: Option<i64>,
    pub p90_ns: Option<i64>,
    pub p99_ns: Option<i64>,
    pub max_ns: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ErrorRow {
    /// The code's enum name, e.g. TOKEN_EXPIRED; MUC/roster/conference codes and statistics
    /// events are prefixed with their body (`MUC.PERMISSION_DENIED`,
    /// `STATISTIC.USER_KICKED_BY_OTHER_DEVICE`).
    pub code: String,
    /// status, muc, roster, conference, statistic.
    pub source: &'static str,
    pub count: u64,
    /// The commands it answered, most frequent first.
    pub commands: Vec<(String, u64)>,
    /// Most frequent reasons (or redirect targets), most frequent first.
    pub reasons: Vec<(String, u64)>,
    pub first: Where,
    pub last: Where,
    pub sessions: Vec<u32>,
    pub users: Vec<String>,
}

/// A counted category with its two directions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CountRow {
    pub name: String,
    pub up: u64,
    pub down: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct MessageStats {
    /// Metas by `Meta.ns`.
    pub namespaces: Vec<CountRow>,
    /// CHAT metas by `MessageBody.type`.
    pub body_types: Vec<CountRow>,
    /// Contents of CHAT metas by `Content.type`.
    pub content_types: Vec<CountRow>,
    /// Senders (meta `from`, or the session user for the client's own sends) by count.
    pub top_senders: Vec<(String, u64)>,
    pub top_receivers: Vec<(String, u64)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FindingRow {
    pub severity: Severity,
    /// Stable identifier, e.g. `lost_segment`, `unanswered_request`.
    pub kind: &'static str,
    /// One line for people.
    pub summary: String,
    pub count: u64,
    /// A quantity that goes with the count (bytes for gaps, the worst ns for slow exchanges).
    pub value: Option<u64>,
    /// The first places it happened (bounded).
    pub places: Vec<Where>,
    pub conns: Vec<u32>,
}

/// Parses a duration: a number with a unit `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`; a bare number is
/// milliseconds. Returns nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().map_err(|_| format!("bad duration {s:?} (e.g. 500ms, 1.5s)"))?;
    let mult = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "" | "ms" => 1e6,
        "s" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        u => return Err(format!("bad duration unit {u:?} in {s:?} (ns, us, ms, s, m, h)")),
    };
    let ns = v * mult;
    if !ns.is_finite() || ns < 0.0 || ns > i64::MAX as f64 {
        return Err(format!("duration out of range: {s:?}"));
    }
    Ok(ns.round() as i64)
}

/// Parses a `--since` / `--until` bound: an RFC 3339-like time (`2017-10-26T12:29:00Z`,
/// `2017-10-26 12:29:00.5`, `…+08:00`), a time of day (`12:29`, `12:29:30.5`, `04:29Z`), or an
/// offset from the capture start (`+30s`, `90` seconds, `1.5m`).
pub fn parse_time_bound(s: &str) -> Result<TimeBound, String> {
    let t = s.trim();
    let bad = || {
        format!(
            "bad time {s:?}: give a date and time (2017-10-26T12:29:00Z, 2017-10-26 12:29:00, \
             optionally with +08:00), a time of day (12:29, 12:29:30.5) or an offset from the \
             capture's start (+30s, 90, 1.5m, 2h)"
        )
    };
    if t.len() >= 10 && t.as_bytes().get(4) == Some(&b'-') {
        return parse_datetime(t).map(|(ns, zoned)| TimeBound::Absolute { ns, zoned });
    }
    let colon = t.find(':');
    if colon.is_some_and(|i| (1..=2).contains(&i) && t.bytes().take(i).all(|b| b.is_ascii_digit()))
    {
        // `9:05` is read as `09:05`.
        let padded = if colon == Some(1) { format!("0{t}") } else { t.to_string() };
        let (h, mi, sec, frac, rest) = parse_clock(&padded).ok_or_else(bad)?;
        let offset = match parse_zone(rest).ok_or_else(bad)? {
            (o, true) => Some(i32::try_from(o).map_err(|_| bad())?),
            (_, false) => None,
        };
        let ns = ((h * 60 + mi) * 60 + sec) * 1_000_000_000 + frac;
        return Ok(TimeBound::TimeOfDay { ns, offset });
    }
    let body = t.strip_prefix('+').unwrap_or(t);
    if body.is_empty() {
        return Err(bad());
    }
    let ns = if body.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // A bare number is seconds, as for tcpdump/editcap offsets.
        parse_duration(&format!("{body}s"))
    } else {
        parse_duration(body)
    };
    Ok(TimeBound::Offset(ns.map_err(|_| bad())?))
}

/// `HH:MM[:SS[.fraction]]` at the start of `r`: hours, minutes, seconds, nanoseconds and what
/// follows. None when malformed or out of range (a leap second, `:60`, is let through).
fn parse_clock(r: &str) -> Option<(i64, i64, i64, i64, &str)> {
    let n = |s: &str, a: usize, b: usize| -> Option<i64> {
        let d = s.get(a..b)?;
        d.bytes().all(|c| c.is_ascii_digit()).then(|| d.parse().ok())?
    };
    let (h, mi) = (n(r, 0, 2)?, n(r, 3, 5)?);
    if r.as_bytes().get(2) != Some(&b':') {
        return None;
    }
    let mut rest = r.get(5..)?;
    let (mut sec, mut frac_ns) = (0, 0);
    if let Some(r2) = rest.strip_prefix(':') {
        sec = n(r2, 0, 2)?;
        rest = r2.get(2..)?;
        if let Some(r3) = rest.strip_prefix('.') {
            let digits = r3.bytes().take_while(u8::is_ascii_digit).count();
            for (i, c) in r3.bytes().take(digits.min(9)).enumerate() {
                frac_ns += i64::from(c - b'0') * 10i64.pow(8 - i as u32);
            }
            rest = r3.get(digits..)?;
        }
    }
    (h <= 23 && mi <= 59 && sec <= 60).then_some((h, mi, sec, frac_ns, rest))
}

/// A zone suffix: `` (none: false), `Z`, or `±HH:MM`; its offset in seconds and whether one
/// was named.
fn parse_zone(z: &str) -> Option<(i64, bool)> {
    match z {
        "" => Some((0, false)),
        "Z" | "z" => Some((0, true)),
        z if z.len() == 6 && (z.starts_with('+') || z.starts_with('-')) => {
            let hh: i64 = z.get(1..3)?.parse().ok()?;
            let mm: i64 = z.get(4..6)?.parse().ok()?;
            (z.as_bytes().get(3) == Some(&b':') && hh <= 23 && mm <= 59)
                .then_some(((hh * 3600 + mm * 60) * if z.starts_with('-') { -1 } else { 1 }, true))
        }
        _ => None,
    }
}

fn parse_datetime(t: &str) -> Result<(i64, bool), String> {
    let bad = || format!("bad time {t:?} (e.g. 2017-10-26T12:29:00Z, 2017-10-26 12:29:00, +30s)");
    let num = |a: usize, b: usize| -> Result<i64, String> {
        t.get(a..b).and_then(|x| x.parse::<i64>().ok()).ok_or_else(bad)
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    if t.as_bytes().get(7) != Some(&b'-') || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let mut rest = t.get(10..).ok_or_else(bad)?;
    let (mut h, mut mi, mut sec, mut frac_ns) = (0i64, 0i64, 0i64, 0i64);
    if let Some(r) = rest.strip_prefix(['T', 't', ' ']) {
        (h, mi, sec, frac_ns, rest) = parse_clock(r).ok_or_else(bad)?;
    }
    let (offset, zoned) = parse_zone(rest).ok_or_else(bad)?;
    // mo and d were range-checked above (1..=12, 1..=31), so they fit u32.
    let days = crate::time::days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    secs.checked_mul(1_000_000_000)
        .and_then(|x| x.checked_add(frac_ns))
        .map(|ns| (ns, zoned))
        .ok_or_else(bad)
}

/// `2017-10-26 12:29:00.123456` in UTC, or at the given offset (then suffixed `+08:00`).
pub fn fmt_abs(ts: Timestamp, utc_offset_secs: Option<i32>) -> String {
    let off = i64::from(utc_offset_secs.unwrap_or(0));
    let local = ts.0.saturating_add(off.saturating_mul(1_000_000_000));
    let secs = local.div_euclid(1_000_000_000);
    let micros = local.rem_euclid(1_000_000_000) / 1000;
    let (y, mo, d) = crate::time::civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let zone = match utc_offset_secs {
        None => String::new(),
        Some(o) => {
            let sign = if o < 0 { '-' } else { '+' };
            let a = o.unsigned_abs();
            format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
        }
    };
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}.{micros:06}{zone}",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// Seconds since capture start with microseconds: `12.345678`.
pub fn fmt_rel(ts: Timestamp, start: Option<Timestamp>) -> String {
    let ns = start.map_or(0, |s| ts.since(s));
    format!("{:.6}", ns as f64 / 1e9)
}

/// What `info` and the Overview say of a capture whose times step back: `None` when they only go
/// forward. `at` writes the earliest packet's time.
pub fn time_order_text(
    t: &crate::capture::TimeOrder,
    at: impl Fn(Timestamp) -> String,
) -> Option<String> {
    let (first, _) = t.first?;
    let n = t.steps_back;
    let mut s = format!(
        "not strict: {n} packet{} earlier than the one before, the first #{first}",
        if n == 1 { "" } else { "s" }
    );
    if let Some((step, frame, _)) = t.largest {
        s.push_str(&format!("; the largest step back {} at #{frame}", fmt_dur(step)));
    }
    if let Some((ts, frame)) = t.earliest {
        s.push_str(&format!("; the earliest packet {} (#{frame})", at(ts)));
    }
    Some(s)
}

/// Connection indexes as the filters name them: `1, 3`.
pub fn fmt_conns(conns: &[u32]) -> String {
    conns.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

/// A duration for people: `850µs`, `12.5ms`, `1.234s`, `2m03s`, `1h02m`.
pub fn fmt_dur(ns: i64) -> String {
    let a = ns.unsigned_abs();
    let sign = if ns < 0 { "-" } else { "" };
    if a < 1_000 {
        format!("{sign}{a}ns")
    } else if a < 1_000_000 {
        format!("{sign}{:.0}µs", a as f64 / 1e3)
    } else if a < 1_000_000_000 {
        let ms = a as f64 / 1e6;
        if ms < 10.0 {
            format!("{sign}{ms:.2}ms")
        } else {
            format!("{sign}{ms:.1}ms")
        }
    } else if a < 60_000_000_000 {
        format!("{sign}{:.3}s", a as f64 / 1e9)
    } else if a < 3_600_000_000_000 {
        let s = a / 1_000_000_000;
        format!("{sign}{}m{:02}s", s / 60, s % 60)
    } else {
        let m = a / 60_000_000_000;
        format!("{sign}{}h{:02}m", m / 60, m % 60)
    }
}

/// Milliseconds as a float, for JSON.
pub fn ns_to_ms(ns: i64) -> f64 {
    // Rounded to the microsecond so documents stay readable and stable.
    (ns as f64 / 1e3).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Zone;

    #[test]
    fn websocket_ends() {
        let close =
            |code, reason: &str| WsEnd::Close { by_client: true, code, reason: reason.into() };
        assert_eq!(close(None, "").to_string(), "ws close");
        assert_eq!(close(Some(1000), "").to_string(), "ws close 1000");
        assert_eq!(
            close(Some(1001), "going \"away\"").to_string(),
            "ws close 1001 \"going \\\"away\\\"\""
        );
        let refused = WsEnd::Refused { status: 403, reason: "Forbidden".into() };
        assert_eq!(refused.to_string(), "upgrade refused 403 Forbidden");
    }

    #[test]
    fn short_jids() {
        let r = Report {
            app_keys: vec!["easemob-demo#capture".into()],
            domains: vec!["conference.easemob.com".into(), "easemob.com".into()],
            ..Default::default()
        };
        assert_eq!(r.short_jid("easemob-demo#capture_bob@easemob.com"), "bob");
        assert_eq!(r.short_jid("easemob-demo#capture_alice@easemob.com/web_1"), "alice/web_1");
        assert_eq!(
            r.short_jid("easemob-demo#capture_208123456789@conference.easemob.com"),
            "208123456789@conference.easemob.com"
        );
        // Only the domain: it stays (it was an empty string).
        assert_eq!(r.short_jid("@easemob.com"), "@easemob.com");
        // The app key and no name: the domain stays (it read as a user named like the app key).
        assert_eq!(
            r.short_jid("easemob-demo#capture@easemob.com"),
            "easemob-demo#capture@easemob.com"
        );
        // A user of that name is still shortened.
        assert_eq!(r.short_jid("easemob-demo#capture_easemob-demo@easemob.com"), "easemob-demo");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(500_000_000));
        assert_eq!(parse_duration("2s"), Ok(2_000_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("250us"), Ok(250_000));
        assert_eq!(parse_duration("250µs"), Ok(250_000));
        assert_eq!(parse_duration("100"), Ok(100_000_000));
        assert_eq!(parse_duration("1m"), Ok(60_000_000_000));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1e400s").is_err());
    }

    #[test]
    fn time_bounds() {
        // 2017-10-26T12:29:00Z = 1509020940.
        let want = 1_509_020_940_000_000_000;
        assert_eq!(
            parse_time_bound("2017-10-26T12:29:00Z"),
            Ok(TimeBound::Absolute { ns: want, zoned: true })
        );
        assert_eq!(
            parse_time_bound("2017-10-26 12:29:00"),
            Ok(TimeBound::Absolute { ns: want, zoned: false })
        );
        assert_eq!(
            parse_time_bound("2017-10-26T20:29:00.25+08:00"),
            Ok(TimeBound::Absolute { ns: want + 250_000_000, zoned: true })
        );
        assert_eq!(
            parse_time_bound("2017-10-26"),
            Ok(TimeBound::Absolute {
                ns: want - (12 * 3600 + 29 * 60) * 1_000_000_000,
                zoned: false
            })
        );
        assert_eq!(parse_time_bound("+30s"), Ok(TimeBound::Offset(30_000_000_000)));
        assert_eq!(parse_time_bound("90"), Ok(TimeBound::Offset(90_000_000_000)));
        assert_eq!(parse_time_bound("1.5"), Ok(TimeBound::Offset(1_500_000_000)));
        assert_eq!(parse_time_bound("+500ms"), Ok(TimeBound::Offset(500_000_000)));
        assert_eq!(parse_time_bound("+2h"), Ok(TimeBound::Offset(7_200_000_000_000)));
        let e = parse_time_bound("12:61").err().unwrap_or_default();
        assert!(e.contains("2017-10-26T12:29:00Z") && e.contains("12:29") && e.contains("+30s"));
        assert!(parse_time_bound("2017-13-01").is_err());
        assert!(parse_time_bound("2017-10-26T25:00:00").is_err());
        assert!(parse_time_bound("2017-10-26T12:29:00Q").is_err());
        assert!(parse_time_bound("+").is_err());
        let local = TimeBound::Absolute { ns: want, zoned: false };
        let cet = Zone::Fixed(3600);
        assert_eq!(local.resolve(Timestamp(0), &cet), Timestamp(want - 3_600_000_000_000));
        assert_eq!(TimeBound::Offset(5).resolve(Timestamp(10), &Zone::Utc), Timestamp(15));
    }

    #[test]
    fn times_of_day() {
        const H: i64 = 3_600_000_000_000;
        const M: i64 = 60_000_000_000;
        let tod = |h: i64, m: i64| TimeBound::TimeOfDay { ns: h * H + m * M, offset: None };
        assert_eq!(parse_time_bound("12:29"), Ok(tod(12, 29)));
        assert_eq!(parse_time_bound("9:05"), Ok(tod(9, 5)));
        assert_eq!(
            parse_time_bound("12:29:30.25"),
            Ok(TimeBound::TimeOfDay { ns: 12 * H + 29 * M + 30_250_000_000, offset: None })
        );
        assert_eq!(
            parse_time_bound("04:29Z"),
            Ok(TimeBound::TimeOfDay { ns: 4 * H + 29 * M, offset: Some(0) })
        );
        assert_eq!(
            parse_time_bound("12:29-05:30"),
            Ok(TimeBound::TimeOfDay { ns: 12 * H + 29 * M, offset: Some(-(5 * 3600 + 1800)) })
        );
        for bad in ["24:00", "12:60", "12:29:61", "123:00", "12:2", "12:29Q", "12:29+8", "1a:00"] {
            assert!(parse_time_bound(bad).is_err(), "{bad}");
        }

        // 2017-10-26 12:00:00 UTC.
        let noon = Timestamp(1_509_019_200_000_000_000);
        let day = 24 * H;
        // On the first packet's day, also a little before it…
        assert_eq!(tod(12, 29).resolve(noon, &Zone::Utc), Timestamp(noon.0 + 29 * M));
        assert_eq!(tod(11, 0).resolve(noon, &Zone::Utc), Timestamp(noon.0 - H));
        // …and on the next day when that is nearer: a capture across midnight.
        let late = Timestamp(noon.0 + 11 * H + 55 * M);
        assert_eq!(tod(0, 2).resolve(late, &Zone::Utc), Timestamp(noon.0 + 12 * H + 2 * M));
        assert_eq!(tod(23, 58).resolve(late, &Zone::Utc), Timestamp(noon.0 + 11 * H + 58 * M));
        // …or the day before, for a capture that starts just after midnight.
        let early = Timestamp(noon.0 + 12 * H + 5 * M);
        assert_eq!(tod(23, 50).resolve(early, &Zone::Utc), Timestamp(noon.0 + 11 * H + 50 * M));
        assert_eq!(tod(12, 0).resolve(noon, &Zone::Utc).0 % day, noon.0 % day);
        // In the zone times are shown in: 20:29 at +08:00 is 12:29 UTC.
        let cst = Zone::Fixed(8 * 3600);
        assert_eq!(tod(20, 29).resolve(noon, &cst), Timestamp(noon.0 + 29 * M));
        // A zone written in the bound wins.
        let z = TimeBound::TimeOfDay { ns: 14 * H + 29 * M, offset: Some(2 * 3600) };
        assert_eq!(z.resolve(noon, &cst), Timestamp(noon.0 + 29 * M));
    }

    #[test]
    fn bounds_read_in_a_zone_with_summer_time() {
        const H: i64 = 3_600_000_000_000;
        // Central European: +01:00, +02:00 from 2017-03-26 01:00 UTC to 2017-10-29 01:00 UTC.
        let zone = Zone::Local {
            initial: 3600,
            transitions: vec![(1_490_490_000, 7200), (1_509_238_800, 3600)],
            rule: None,
        };
        // 2017-10-26 12:00:00 UTC is 14:00 in summer time.
        let noon = Timestamp(1_509_019_200_000_000_000);
        let tod = TimeBound::TimeOfDay { ns: 14 * H, offset: None };
        assert_eq!(tod.resolve(noon, &zone), noon);
        let wall = TimeBound::Absolute { ns: noon.0 + 2 * H, zoned: false };
        assert_eq!(wall.resolve(Timestamp(0), &zone), noon);
        // After the change back, the same wall time is an hour later in UTC.
        let nov = Timestamp(noon.0 + 10 * 24 * H);
        let wall = TimeBound::Absolute { ns: nov.0 + H, zoned: false };
        assert_eq!(wall.resolve(Timestamp(0), &zone), nov);
    }

    #[test]
    fn formatting() {
        let ts = Timestamp(1_509_020_940_123_456_789);
        assert_eq!(fmt_abs(ts, None), "2017-10-26 12:29:00.123456");
        assert_eq!(fmt_abs(ts, Some(8 * 3600)), "2017-10-26 20:29:00.123456+08:00");
        assert_eq!(fmt_abs(Timestamp(-1), None), "1969-12-31 23:59:59.999999");
        assert_eq!(fmt_rel(Timestamp(3_500_000_000), Some(Timestamp(1_000_000_000))), "2.500000");
        assert_eq!(fmt_dur(850_000), "850µs");
        assert_eq!(fmt_dur(12_500_000), "12.5ms");
        assert_eq!(fmt_dur(1_234_000_000), "1.234s");
        assert_eq!(fmt_dur(123_000_000_000), "2m03s");
        assert_eq!(fmt_dur(3_720_000_000_000), "1h02m");
        assert_eq!(ns_to_ms(12_500_000), 12.5);
        for d in [-1_000_000, 0, 59, 365 * 30, 20_000] {
            let (y, m, dd) = crate::time::civil_from_days(d);
            assert_eq!(crate::time::days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn sections() {
        assert_eq!(Section::parse("Latency"), Ok(Section::Latency));
        assert_eq!(Section::parse("find"), Ok(Section::Findings));
        assert!(Section::parse("x").is_err());
        assert!(Section::parse("").is_err());
    }
}
