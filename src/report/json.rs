//! The report as one JSON document (`report --json`); every field is described in `JSON.md`
//! beside this file. Durations are milliseconds (floats, µs precision), times are both RFC 3339
//! UTC strings and seconds since capture start, and 64-bit protocol ids (next_key) are strings
//! so that JavaScript readers do not lose precision.

use std::io;

use serde_json::{json, Map, Value};

use super::{ns_to_ms, CountRow, FindingRow, Report, Spread, Where, WsEnd};
use crate::capture::Timestamp;

fn ms(v: Option<i64>) -> Value {
    v.map_or(Value::Null, |n| json!(ns_to_ms(n)))
}

fn rfc3339(ts: Timestamp) -> String {
    // fmt_abs gives "YYYY-MM-DD HH:MM:SS.ffffff" in UTC.
    format!("{}Z", super::fmt_abs(ts, None).replacen(' ', "T", 1))
}

fn rel(ts: Timestamp, r: &Report) -> Value {
    let s = r.capture_start.map_or(0, |s| ts.since(s));
    json!((s as f64 / 1e3).round() / 1e6)
}

fn time(ts: Timestamp, r: &Report) -> Value {
    json!({ "utc": rfc3339(ts), "rel_s": rel(ts, r) })
}

fn place(w: &Where, r: &Report) -> Value {
    let conn = (w.conn != super::NO_CONN).then_some(w.conn);
    json!({ "conn": conn, "frame": w.frame, "time": time(w.ts, r) })
}

fn spread(s: &Spread) -> Value {
    json!({ "count": s.count, "p50_ms": ms(s.p50_ns), "max_ms": ms(s.max_ns) })
}

fn counts(rows: &[CountRow]) -> Value {
    Value::Array(
        rows.iter().map(|c| json!({ "name": c.name, "up": c.up, "down": c.down })).collect(),
    )
}

fn pairs(v: &[(String, u64)], key: &str) -> Value {
    Value::Array(v.iter().map(|(n, c)| json!({ key: n, "count": c })).collect())
}

fn finding(f: &FindingRow, r: &Report) -> Value {
    json!({
        "severity": f.severity.as_str(),
        "kind": f.kind,
        "summary": f.summary,
        "count": f.count,
        "value": f.value,
        "where": f.places.iter().map(|w| place(w, r)).collect::<Vec<_>>(),
        "conns": f.conns,
    })
}

fn time_order(t: &crate::capture::TimeOrder, r: &Report) -> Value {
    json!({
        "strict": t.is_strict(),
        "steps_back": t.steps_back,
        "first_frame": t.first.map(|(f, _)| f),
        "largest_step_back_ms": t.largest.map_or(Value::Null, |(ns, _, _)| json!(ns_to_ms(ns))),
        "largest_frame": t.largest.map(|(_, f, _)| f),
        "earliest": t.earliest.map(|(ts, _)| time(ts, r)),
        "earliest_frame": t.earliest.map(|(_, f)| f),
    })
}

/// What narrowed the report, or null.
fn filter(r: &Report) -> Value {
    let f = &r.filter;
    if !f.any() {
        return Value::Null;
    }
    json!({
        "user": f.user,
        "conns": f.conns,
        "since": f.since.map(|ts| time(ts, r)),
        "until": f.until.map(|ts| time(ts, r)),
    })
}

/// The `overview` object of the document.
fn overview(r: &Report) -> Value {
    let o = &r.overview;
    let mut per_command = Map::new();
    for (name, up, down) in &o.per_command {
        per_command.insert(name.clone(), json!({ "up": up, "down": down }));
    }
    json!({
        "capture_start": r.capture_start.map(rfc3339),
        "capture_end": r.capture_end.map(rfc3339),
        "span_s": match (r.capture_start, r.capture_end) {
            (Some(a), Some(b)) => json!(b.since(a) as f64 / 1e9),
            _ => Value::Null,
        },
        "filtered": r.filter.any(),
        "filter": filter(r),
        "packets": o.packets,
        "tcp_connections": o.tcp_connections,
        "msync_connections": o.msync_connections,
        "tls_connections": o.tls_connections,
        "websocket_connections": o.websocket_connections,
        "other_connections": o.other_connections,
        "sessions": o.sessions,
        "sessions_folded": o.sessions_folded,
        "messages": o.messages,
        "per_command": per_command,
        "users": o.users,
        "decode_errors": o.decode_errors,
        "gap_bytes": o.gap_bytes,
        "worst_findings": o.worst.iter().map(|f| finding(f, r)).collect::<Vec<_>>(),
        "packets_not_analysed": {
            "malformed": o.not_analysed.malformed,
            "unsupported_link": o.not_analysed.unsupported_link,
            "non_ip": o.not_analysed.non_ip,
            "non_tcp": o.not_analysed.non_tcp,
            "fragments_dropped": o.not_analysed.fragments_dropped,
            "after_close": o.not_analysed.after_close,
            "after_close_bytes": o.not_analysed.after_close_bytes,
        },
        "connections_evicted": o.connections_evicted,
        "time_order": time_order(&o.time_order, r),
    })
}

/// The whole report as one JSON value (the document [`Report::write_json`] streams).
pub fn to_value(r: &Report) -> Value {
    let sessions: Vec<Value> = r.sessions.iter().map(|s| session(s, r)).collect();
    let queues: Vec<Value> = r.queues.iter().map(queue).collect();
    let latency: Vec<Value> = r.latency.iter().map(latency).collect();
    let errors: Vec<Value> = r.errors.iter().map(|e| error(e, r)).collect();
    let findings: Vec<Value> = r.findings.iter().map(|f| finding(f, r)).collect();
    json!({
        "overview": overview(r),
        "sessions": sessions,
        "queues": queues,
        "latency": latency,
        "errors": errors,
        "messages": messages(r),
        "findings": findings,
    })
}

fn session(s: &super::SessionRow, r: &Report) -> Value {
    json!({
        "conn": s.conn,
        "client": s.client,
        "server": s.server,
        "transport": s.transport,
        "websocket": (s.ws_path.is_some() || s.ws_extensions.is_some() || s.ws_end.is_some())
            .then(|| json!({
                "path": s.ws_path,
                "extensions": s.ws_extensions,
                "close": match &s.ws_end {
                    Some(WsEnd::Close { by_client, code, reason }) => json!({
                        "by": if *by_client { "client" } else { "server" },
                        "code": code,
                        "reason": reason,
                    }),
                    _ => Value::Null,
                },
                "refused": match &s.ws_end {
                    Some(WsEnd::Refused { status, reason }) => {
                        json!({ "status": status, "reason": reason })
                    }
                    _ => Value::Null,
                },
            })),
        "midstream": s.midstream,
        "resumes": s.resumes.map(|(conn, ns)| json!({ "conn": conn, "idle_ms": ns_to_ms(ns) })),
        "user": s.user,
        "user_inferred": s.user_inferred,
        "resource": s.resource,
        "device_uuid": s.device_uuid,
        "device_name": s.device_name,
        "os": s.os,
        "sdk_version": s.sdk_version,
        "login": s.login.as_ref().map(|l| json!({
            "status": l.status,
            "reason": l.reason,
            "latency_ms": ms(l.latency_ns),
            "session_id": l.session_id,
            "frame": l.frame,
        })),
        "start": time(s.start, r),
        "end": time(s.end, r),
        "duration_ms": ns_to_ms(s.duration_ns),
        "close": s.closed(),
        "tcp_close": s.close,
        "logout": s.logout,
        "msgs_up": s.msgs_up,
        "msgs_down": s.msgs_down,
        "bytes_up": s.bytes_up,
        "bytes_down": s.bytes_down,
        "heartbeats": {
            "count": s.heartbeats.count,
            "interval_ms": ms(s.heartbeats.interval_ns),
            "rtt_p50_ms": ms(s.heartbeats.rtt_p50_ns),
            "rtt_max_ms": ms(s.heartbeats.rtt_max_ns),
        },
        "errors": s.errors,
        "decode_errors": s.decode_errors,
    })
}

fn queue(q: &super::QueueRow) -> Value {
    json!({
        "queue": q.queue,
        "sessions": q.sessions,
        "notices": q.notices,
        "pulls": q.pulls,
        "metas": q.metas,
        "unread_announced": q.unread_announced,
        "last_next_key": q.last_next_key.map(|k| k.to_string()),
        "is_last_reached": q.is_last_reached,
        "notice_to_pull": spread(&q.notice_to_pull),
        "pull_rtt": spread(&q.pull_rtt),
        "drains": {
            "completed": q.drains,
            "pages": q.drain_pages,
            "metas": q.drain_metas,
            "time": spread(&q.drain_time),
            "stalls": q.stalls,
        },
    })
}

fn latency(l: &super::LatencyRow) -> Value {
    json!({
        "kind": l.kind,
        "count": l.count,
        "answered": l.answered,
        "unanswered": l.unanswered,
        "min_ms": ms(l.min_ns),
        "p50_ms": ms(l.p50_ns),
        "p90_ms": ms(l.p90_ns),
        "p99_ms": ms(l.p99_ns),
        "max_ms": ms(l.max_ns),
    })
}

fn error(e: &super::ErrorRow, r: &Report) -> Value {
    json!({
        "code": e.code,
        "source": e.source,
        "count": e.count,
        "commands": pairs(&e.commands, "command"),
        "reasons": pairs(&e.reasons, "reason"),
        "first": place(&e.first, r),
        "last": place(&e.last, r),
        "sessions": e.sessions,
        "users": e.users,
    })
}

fn messages(r: &Report) -> Value {
    let m = &r.messages;
    json!({
        "namespaces": counts(&m.namespaces),
        "body_types": counts(&m.body_types),
        "content_types": counts(&m.content_types),
        "top_senders": pairs(&m.top_senders, "jid"),
        "top_receivers": pairs(&m.top_receivers, "jid"),
    })
}

/// Rows serialized one at a time: the document is written as it is made, so its size in
/// memory is one row's, not the report's (a report of 10 000 sessions is tens of megabytes of
/// `Value`s).
struct Rows<'r, T> {
    rows: &'r [T],
    each: &'r dyn Fn(&T) -> Value,
}

impl<T> serde::Serialize for Rows<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.rows.len()))?;
        for r in self.rows {
            seq.serialize_element(&(self.each)(r))?;
        }
        seq.end()
    }
}

/// The whole document, its keys in the order a `Value` object keeps them (sorted), so the
/// streamed text is the one [`to_value`] gives.
struct Doc<'r>(&'r Report);

impl serde::Serialize for Doc<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let r = self.0;
        let mut m = s.serialize_map(Some(7))?;
        m.serialize_entry("errors", &Rows { rows: &r.errors, each: &|e| error(e, r) })?;
        m.serialize_entry("findings", &Rows { rows: &r.findings, each: &|f| finding(f, r) })?;
        m.serialize_entry("latency", &Rows { rows: &r.latency, each: &latency })?;
        m.serialize_entry("messages", &messages(r))?;
        m.serialize_entry("overview", &overview(r))?;
        m.serialize_entry("queues", &Rows { rows: &r.queues, each: &queue })?;
        m.serialize_entry("sessions", &Rows { rows: &r.sessions, each: &|x| session(x, r) })?;
        m.end()
    }
}

impl Report {
    /// Writes the whole report as one pretty-printed JSON document and a newline.
    pub fn write_json(&self, out: &mut dyn io::Write) -> io::Result<()> {
        // `From` hands back a write's own error: a broken pipe stays one, which ends quietly.
        serde_json::to_writer_pretty(&mut *out, &Doc(self)).map_err(io::Error::from)?;
        out.write_all(b"\n")
    }
}
