//! The report as one JSON document (`report --json`); every field is described in `JSON.md`
//! beside this file. Durations are milliseconds (floats, µs precision), times are both RFC 3339
//! UTC strings and seconds since capture start, and 64-bit protocol ids (next_key) are strings
//! so that JavaScript readers do not lose precision.

use std::io;

use serde_json::{json, Map, Value};

use super::{ns_to_ms, CountRow, FindingRow, Report, Spread, Where};
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
    json!({ "conn": w.conn, "frame": w.frame, "time": time(w.ts, r) })
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

/// Builds the document.
pub fn to_value(r: &Report) -> Value {
    let o = &r.overview;
    let mut per_command = Map::new();
    for (name, up, down) in &o.per_command {
        per_command.insert(name.clone(), json!({ "up": up, "down": down }));
    }
    let overview = json!({
        "capture_start": r.capture_start.map(rfc3339),
        "capture_end": r.capture_end.map(rfc3339),
        "span_s": match (r.capture_start, r.capture_end) {
            (Some(a), Some(b)) => json!(b.since(a) as f64 / 1e9),
            _ => Value::Null,
        },
        "filtered": r.filtered,
        "packets": o.packets,
        "tcp_connections": o.tcp_connections,
        "msync_connections": o.msync_connections,
        "tls_connections": o.tls_connections,
        "websocket_connections": o.websocket_connections,
        "other_connections": o.other_connections,
        "sessions": o.sessions,
        "messages": o.messages,
        "per_command": per_command,
        "users": o.users,
        "decode_errors": o.decode_errors,
        "gap_bytes": o.gap_bytes,
        "worst_findings": o.worst.iter().map(|f| finding(f, r)).collect::<Vec<_>>(),
    });
    let sessions: Vec<Value> = r
        .sessions
        .iter()
        .map(|s| {
            json!({
                "conn": s.conn,
                "client": s.client,
                "server": s.server,
                "transport": s.transport,
                "websocket": s.ws_path.as_ref().or(s.ws_extensions.as_ref()).map(|_| json!({
                    "path": s.ws_path,
                    "extensions": s.ws_extensions,
                })),
                "midstream": s.midstream,
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
                "close": s.close,
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
        })
        .collect();
    let queues: Vec<Value> = r
        .queues
        .iter()
        .map(|q| {
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
        })
        .collect();
    let latency: Vec<Value> = r
        .latency
        .iter()
        .map(|l| {
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
        })
        .collect();
    let errors: Vec<Value> = r
        .errors
        .iter()
        .map(|e| {
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
        })
        .collect();
    let m = &r.messages;
    let messages = json!({
        "namespaces": counts(&m.namespaces),
        "body_types": counts(&m.body_types),
        "content_types": counts(&m.content_types),
        "top_senders": pairs(&m.top_senders, "jid"),
        "top_receivers": pairs(&m.top_receivers, "jid"),
    });
    json!({
        "overview": overview,
        "sessions": sessions,
        "queues": queues,
        "latency": latency,
        "errors": errors,
        "messages": messages,
        "findings": r.findings.iter().map(|f| finding(f, r)).collect::<Vec<_>>(),
    })
}

impl Report {
    /// Writes the whole report as one pretty-printed JSON document and a newline.
    pub fn write_json(&self, out: &mut dyn io::Write) -> io::Result<()> {
        let v = to_value(self);
        serde_json::to_writer_pretty(&mut *out, &v).map_err(io::Error::other)?;
        out.write_all(b"\n")
    }
}
