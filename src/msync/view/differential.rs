//! What the views and the prost decoder make of one frame, as comparable text: the unit tests
//! and the `view_decode` fuzz target hold the two decoders to the same answer with it.

use super::*;
use crate::msync::decode::{self, DecodeError, MetaBody as PbMetaBody};
use crate::msync::pb;

/// `Err` with both readings when the two decoders disagree on `frame`.
pub fn agree(frame: &[u8], dir: Dir) -> Result<(), String> {
    let (v, p) = (lossy_text(&digest_view(frame, dir)), lossy_text(&digest_pb(frame, dir)));
    if v == p {
        Ok(())
    } else {
        Err(format!("views: {v}\nprost: {p}"))
    }
}

/// `digest` with every quoted string that holds U+FFFD written `"<lossy>"`: a string that was
/// not UTF-8 reads as U+FFFD in the views and with its valid parts kept in prost's repaired
/// decode, and the two agree when both read it so.
fn lossy_text(digest: &str) -> String {
    let mut out = String::with_capacity(digest.len());
    let mut rest = digest;
    while let Some(start) = rest.find('"') {
        out.push_str(rest.get(..start).unwrap_or_default());
        let s = rest.get(start..).unwrap_or_default();
        // The closing quote: the first not escaped by a backslash.
        let mut end = s.len();
        let mut escaped = false;
        for (i, c) in s.char_indices().skip(1) {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = i + 1;
                    break;
                }
                _ => escaped = false,
            }
        }
        let quoted = s.get(..end).unwrap_or_default();
        out.push_str(if quoted.contains('\u{fffd}') { "\"<lossy>\"" } else { quoted });
        rest = s.get(end..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

fn jid_pb(j: &Option<pb::Jid>) -> String {
    format!("{:?}", j.as_ref().map(super::super::jid::JidParts::from_pb))
}

fn jid_view(j: &Option<Jid<'_>>) -> String {
    format!("{:?}", j.as_ref().map(Jid::parts))
}

fn status_pb(s: &Option<pb::Status>) -> String {
    format!(
        "{:?}",
        s.as_ref().map(|s| (
            s.error_code,
            s.reason.as_deref(),
            s.redirect_info.iter().map(|r| (r.host.as_deref(), r.port)).collect::<Vec<_>>()
        ))
    )
}

fn status_view(s: &Option<Status<'_>>) -> String {
    format!("{:?}", s.as_ref().map(|s| (s.error_code, s.reason, s.redirects().collect::<Vec<_>>())))
}

/// What [`MetaBody::content_types`] says of a content prost decoded: its type, TEXT where
/// left out, None for the default (empty) content.
pub fn content_type_of(c: &pb::message_body::Content) -> Option<i32> {
    (*c != pb::message_body::Content::default()).then(|| c.r#type.unwrap_or(0))
}

fn meta_body_pb(b: &PbMetaBody) -> String {
    match b {
        PbMetaBody::Chat(m) => format!(
            "chat {:?} {:?}",
            m.r#type,
            m.contents.iter().map(content_type_of).collect::<Vec<_>>()
        ),
        PbMetaBody::Muc(m) => {
            format!("muc {:?}", m.status.as_ref().map(|s| (s.error_code, s.description.as_deref())))
        }
        PbMetaBody::Roster(m) => format!(
            "roster {:?}",
            m.status.as_ref().map(|s| (s.error_code, s.description.as_deref()))
        ),
        PbMetaBody::Conference(m) => {
            format!("conference {:?}", m.status.as_ref().map(|s| s.error_code))
        }
        PbMetaBody::Statistic(m) => format!("statistic {:?} {:?}", m.operation, m.reason),
        PbMetaBody::Raw => "raw".into(),
        PbMetaBody::Empty => "empty".into(),
        PbMetaBody::Invalid(_) => "invalid".into(),
    }
}

fn meta_body_view(b: &MetaBody<'_>) -> String {
    match b {
        MetaBody::Chat { r#type, .. } => {
            format!("chat {:?} {:?}", r#type, b.content_types().collect::<Vec<_>>())
        }
        MetaBody::Muc(s) => format!("muc {:?}", s.as_ref().map(|s| (s.error_code, s.reason))),
        MetaBody::Roster(s) => {
            format!("roster {:?}", s.as_ref().map(|s| (s.error_code, s.reason)))
        }
        MetaBody::Conference(s) => format!("conference {:?}", s.as_ref().map(|s| s.error_code)),
        MetaBody::Statistic { operation, reason } => format!("statistic {operation:?} {reason:?}"),
        MetaBody::Raw => "raw".into(),
        MetaBody::Empty => "empty".into(),
        MetaBody::Invalid => "invalid".into(),
    }
}

fn meta_pb(m: &pb::Meta) -> String {
    format!(
        "meta {:?} {} {} {:?} {}",
        m.id,
        jid_pb(&m.from),
        jid_pb(&m.to),
        m.ns,
        meta_body_pb(&decode::decode_meta(m))
    )
}

fn meta_view(m: &Meta<'_>) -> String {
    format!(
        "meta {:?} {} {} {:?} {}",
        m.id,
        jid_view(&m.from),
        jid_view(&m.to),
        m.ns,
        meta_body_view(&match m.body() {
            MetaBody::Invalid => m.body_lossy(),
            b => b,
        })
    )
}

/// What both decoders say of a frame, as comparable text.
pub fn digest_pb(frame: &[u8], dir: Dir) -> String {
    let d = match decode::decode(frame, dir, &DecodeLimits::default()) {
        Ok(d) => d,
        Err(DecodeError::Envelope(_)) => return "error envelope".into(),
        Err(DecodeError::Payload { .. }) => return "error payload".into(),
        Err(DecodeError::Inflate(_)) => return "error inflate".into(),
        Err(DecodeError::InflateTooLarge(_)) => return "error inflate cap".into(),
        // The views allocate nothing per element: they have no such limit.
        Err(DecodeError::OverBudget(_)) => return "error decoding budget".into(),
    };
    let body = match &d.body {
        decode::Body::Provision(p) => format!(
            "provision {:?} {:?} {} {:?} {:?} {:?} {:?} {:?}",
            p.os_type,
            p.version,
            status_pb(&p.status),
            p.device_uuid,
            p.device_name,
            p.resource,
            p.session_id,
            p.reason
        ),
        decode::Body::UnreadUl(_) => "unread ul".into(),
        decode::Body::UnreadDl(u) => format!(
            "unread dl {} {:?}",
            status_pb(&u.status),
            u.unread.iter().map(|q| (jid_pb(&q.queue), q.n)).collect::<Vec<_>>()
        ),
        decode::Body::Notice(n) => format!("notice {}", jid_pb(&n.queue)),
        decode::Body::SyncUl(s) => {
            format!("sync ul {:?} {}", s.meta.as_ref().map(meta_pb), jid_pb(&s.queue))
        }
        decode::Body::SyncDl(s) => format!(
            "sync dl {} {:?} {:?} {} {:?} {} {:?}",
            status_pb(&s.status),
            s.meta_id,
            s.next_key,
            jid_pb(&s.queue),
            s.is_last,
            s.metas.len(),
            s.metas.iter().map(meta_pb).collect::<Vec<_>>()
        ),
        decode::Body::Logout(l) => format!("logout {}", status_pb(&l.status)),
        decode::Body::Encrypted => "encrypted".into(),
        decode::Body::Raw(_) => "raw".into(),
    };
    format!("{:?} {} {}", d.command, jid_pb(&d.env.guid), body)
}

pub fn digest_view(frame: &[u8], dir: Dir) -> String {
    let (mut scratch, mut metas) = (Vec::new(), Vec::new());
    let strict = decode(frame, dir, &DecodeLimits::default(), &mut scratch, &mut metas).is_ok();
    // The whole reading under `lossy`, as `report` reads a frame it retries: the metas past
    // the held ones are read again while the digest is made.
    if strict {
        digest_view_once(frame, dir)
    } else {
        lossy(|| digest_view_once(frame, dir))
    }
}

fn digest_view_once(frame: &[u8], dir: Dir) -> String {
    let (mut scratch, mut metas) = (Vec::new(), Vec::new());
    let decoded = decode(frame, dir, &DecodeLimits::default(), &mut scratch, &mut metas);
    let m = match decoded {
        Ok(m) => m,
        Err(ViewError::Envelope) => return "error envelope".into(),
        Err(ViewError::Payload) => return "error payload".into(),
        Err(ViewError::Inflate) => return "error inflate".into(),
        Err(ViewError::InflateTooLarge) => return "error inflate cap".into(),
    };
    let body = match &m.body {
        Body::Provision(p) => format!(
            "provision {:?} {:?} {} {:?} {:?} {:?} {:?} {:?}",
            p.os_type,
            p.version,
            status_view(&p.status),
            p.device_uuid,
            p.device_name,
            p.resource,
            p.session_id,
            p.reason
        ),
        Body::UnreadUl => "unread ul".into(),
        Body::UnreadDl(u) => format!(
            "unread dl {} {:?}",
            status_view(&u.status),
            u.queues().map(|(q, n)| (jid_view(&q), n)).collect::<Vec<_>>()
        ),
        Body::Notice { queue } => format!("notice {}", jid_view(queue)),
        Body::SyncUl(s) => {
            format!("sync ul {:?} {}", s.meta.as_ref().map(meta_view), jid_view(&s.queue))
        }
        Body::SyncDl(s) => format!(
            "sync dl {} {:?} {:?} {} {:?} {} {:?}",
            status_view(&s.status),
            s.meta_id,
            s.next_key,
            jid_view(&s.queue),
            s.is_last,
            s.meta_count,
            {
                let mut v = Vec::new();
                s.for_each_meta(|x| v.push(meta_view(x)));
                v
            }
        ),
        Body::Logout { status } => format!("logout {}", status_view(status)),
        Body::Encrypted => "encrypted".into(),
        Body::Raw => "raw".into(),
    };
    format!("{:?} {} {}", m.command, jid_view(&m.guid), body)
}
