//! The one-line summary of a message, tshark's info column: `<COMMAND> <arrow> <info>`, e.g.
//! `SYNC ↑ send meta=15089920589600003 to=z13 CHAT TEXT "456"`.
//!
//! Invariants: everything is written into the caller's `String` (this runs once per message on
//! multi-GB captures, so no per-message allocation beyond its growth); a summary is always one
//! line, whatever the strings on the wire hold (control characters are escaped); secrets print
//! as [`REDACTED`] unless `show_secrets`; enum values the schema does not know print as numbers.

use std::fmt::{self, Write as _};

use super::{RenderOpts, REDACTED};
use crate::msync::decode::{peek_command, Body, Command, DecodeError, Decoded, MetaBody};
use crate::msync::jid::JidParts;
use crate::msync::pb;
use crate::net::Dir;

/// Characters of a message text shown before it is cut with "…".
const MAX_TEXT: usize = 40;
/// Characters of a status reason or description shown; longer than texts because the whole
/// reason is usually what the reader is after.
const MAX_REASON: usize = 80;
/// Metas of a pull answer described one by one; the rest are counted.
const MAX_METAS: usize = 3;
/// Queues of an UNREAD answer listed; the rest are counted.
const MAX_QUEUES: usize = 5;
/// JIDs or ids of a list (MUC members, ack ids) listed; the rest are counted.
const MAX_LIST: usize = 3;

/// `MSync.compress_algorimth` meaning zlib.
const COMPRESS_ZLIB: u32 = 1;

/// The name of an enum value, or `None` for a number the schema does not know.
macro_rules! enum_name {
    ($ty:ty, $v:expr) => {
        <$ty>::try_from($v).ok().map(|e| e.as_str_name())
    };
}

/// Writes "<COMMAND> <arrow> <info>" for one message, e.g.
/// `SYNC ↑ send meta=15089920589600003 to=z13 CHAT TEXT "456"`.
pub fn write_summary(out: &mut String, msg: &Decoded, dir: Dir, opts: &RenderOpts) {
    write_header(out, msg.command, dir);
    match &msg.body {
        Body::Provision(p) => match dir {
            Dir::C2S => write_login(out, &msg.env, p, opts),
            Dir::S2C => write_provision_answer(out, p, opts),
        },
        // An empty UNREAD is the heartbeat / poll: nothing to say.
        Body::UnreadUl(_) => {}
        Body::UnreadDl(u) => write_unread(out, u),
        Body::Notice(n) => {
            if let Some(q) = &n.queue {
                out.push_str(" queue=");
                push_jid(out, q);
            }
        }
        Body::SyncUl(ul) => write_sync_ul(out, ul, msg.meta_bodies.first(), opts),
        Body::SyncDl(dl) => write_sync_dl(out, dl, &msg.meta_bodies, opts),
        Body::Logout(l) => write_logout(out, l),
        Body::Encrypted => {
            out.push_str(" encrypted");
            let mut sep = ' ';
            for &t in msg.env.encrypt_type.iter().filter(|&&t| t != 0) {
                out.push(sep);
                sep = ',';
                push_enum(out, enum_name!(pb::EncryptType, t), "ENCRYPT_", t);
            }
            let _ = write!(out, " {} bytes", msg.env.payload.as_ref().map_or(0, Vec::len));
        }
        Body::Raw(b) => {
            let _ = write!(out, " {} bytes", b.len());
        }
    }
    match msg.env.compress_algorimth {
        None | Some(0) => {}
        Some(COMPRESS_ZLIB) => out.push_str(" [zlib]"),
        Some(n) => {
            let _ = write!(out, " [compress_algorimth={n}]");
        }
    }
}

/// For frames that failed to decode: "<COMMAND?> <arrow> [undecodable: reason]". The command is
/// read from the envelope's fields as far as they go; `?` when none could be read.
pub fn write_error_summary(out: &mut String, frame: &[u8], dir: Dir, err: &DecodeError) {
    match peek_command(frame) {
        Some(c) => write_header(out, c, dir),
        None => {
            out.push_str("? ");
            out.push_str(arrow(dir));
        }
    }
    out.push_str(" [undecodable: ");
    let _ = write!(Plain(out), "{err}");
    out.push(']');
}

fn arrow(dir: Dir) -> &'static str {
    match dir {
        Dir::C2S => "↑",
        Dir::S2C => "↓",
    }
}

fn write_header(out: &mut String, command: Command, dir: Dir) {
    match command {
        Command::Sync => out.push_str("SYNC"),
        Command::Unread => out.push_str("UNREAD"),
        Command::Notice => out.push_str("NOTICE"),
        Command::Provision => out.push_str("PROVISION"),
        Command::Logout => out.push_str("LOGOUT"),
        Command::Unknown(n) => {
            let _ = write!(out, "COMMAND_{n}");
        }
    }
    out.push(' ');
    out.push_str(arrow(dir));
}

// ---- commands -------------------------------------------------------------------------------

fn write_login(out: &mut String, env: &pb::MSync, p: &pb::Provision, opts: &RenderOpts) {
    out.push_str(" login");
    if let Some(g) = &env.guid {
        out.push(' ');
        push_jid(out, g);
    }
    if let Some(os) = p.os_type {
        out.push_str(" os=");
        push_enum(out, enum_name!(pb::provision::OsType, os), "", os);
    }
    if let Some(v) = p.version.as_deref() {
        out.push_str(" version=");
        push_plain(out, v);
    }
    if let Some(d) = p.device_uuid.as_deref() {
        out.push_str(" device=");
        push_plain(out, d);
    }
    if let Some(n) = p.device_name.as_deref() {
        out.push_str(" device_name=");
        push_quoted(out, n, MAX_TEXT);
    }
    match p.is_manual_login {
        Some(true) => out.push_str(" manual"),
        Some(false) => out.push_str(" auto"),
        None => {}
    }
    write_secret(out, "auth", env.auth.as_deref().map(str::as_bytes), opts);
    write_secret(out, "auth", p.auth.as_deref().map(str::as_bytes), opts);
    write_secret(out, "password", p.password.as_deref().map(str::as_bytes), opts);
    write_secret(out, "auth_token", p.auth_token.as_deref(), opts);
    write_provision_options(out, p, opts);
    if let Some(s) = &p.status {
        write_status(out, s, p.reason.as_deref());
    }
}

fn write_provision_answer(out: &mut String, p: &pb::Provision, opts: &RenderOpts) {
    if let Some(s) = &p.status {
        write_status(out, s, p.reason.as_deref());
    } else if let Some(r) = p.reason.as_deref() {
        out.push_str(" reason=");
        push_quoted(out, r, MAX_REASON);
    }
    if let Some(r) = p.resource.as_deref() {
        out.push_str(" resource=");
        push_plain(out, r);
    }
    if let Some(s) = p.session_id.as_deref() {
        out.push_str(" session=");
        push_plain(out, s);
    }
    write_provision_options(out, p, opts);
}

/// Compression and encryption negotiated (or offered) in a PROVISION.
fn write_provision_options(out: &mut String, p: &pb::Provision, opts: &RenderOpts) {
    if !p.compress_type.is_empty() {
        out.push_str(" compress=");
        push_compress_list(out, &p.compress_type);
    }
    if !p.protocol_compress_type.is_empty() {
        out.push_str(" protocol_compress=");
        push_compress_list(out, &p.protocol_compress_type);
    }
    if let Some(d) = p.protocol_compress_direction {
        out.push_str(" direction=");
        push_enum(out, enum_name!(pb::provision::CompressDirection, d), "", d);
    }
    if !p.encrypt_type.is_empty() {
        out.push_str(" encrypt=");
        let mut first = true;
        for &t in &p.encrypt_type {
            if !first {
                out.push(',');
            }
            first = false;
            push_enum(out, enum_name!(pb::EncryptType, t), "", t);
        }
    }
    write_secret(out, "encrypt_key", p.encrypt_key.as_deref().map(str::as_bytes), opts);
}

fn push_compress_list(out: &mut String, list: &[i32]) {
    let mut first = true;
    for &c in list {
        if !first {
            out.push(',');
        }
        first = false;
        push_enum(out, enum_name!(pb::provision::CompressType, c), "", c);
    }
}

fn write_unread(out: &mut String, u: &pb::CommUnreadDl) {
    if let Some(s) = &u.status {
        write_status(out, s, None);
    }
    let n = u.unread.len();
    let _ = write!(out, " {n} {}", if n == 1 { "queue" } else { "queues" });
    for (i, q) in u.unread.iter().enumerate() {
        if i == MAX_QUEUES {
            let _ = write!(out, " +{} more", n - i);
            break;
        }
        out.push_str(if i == 0 { ": " } else { " " });
        match &q.queue {
            Some(j) => push_jid(out, j),
            None => out.push('?'),
        }
        let _ = write!(out, "={}", q.n.unwrap_or(0));
    }
}

fn write_sync_ul(
    out: &mut String,
    ul: &pb::CommSyncUl,
    meta_body: Option<&MetaBody>,
    opts: &RenderOpts,
) {
    if let Some(m) = &ul.meta {
        out.push_str(" send");
        if let Some(id) = m.id {
            let _ = write!(out, " meta={id}");
        }
        if let Some(to) = &m.to {
            out.push_str(" to=");
            push_jid(out, to);
        }
        out.push(' ');
        write_meta(out, m, meta_body, false, opts);
    }
    if ul.queue.is_some() || ul.key.is_some() || ul.meta.is_none() {
        out.push_str(" pull");
        if let Some(q) = &ul.queue {
            out.push_str(" queue=");
            push_jid(out, q);
        }
        if let Some(k) = ul.key {
            let _ = write!(out, " key={k}");
        }
        if ul.is_roam == Some(true) {
            out.push_str(" roam");
        }
        if let Some(k) = ul.last_full_roam_key {
            let _ = write!(out, " last_full_roam_key={k}");
        }
        if let Some(rc) = &ul.roam_config {
            if let Some(n) = rc.pull_number {
                let _ = write!(out, " pull_number={n}");
            }
            if rc.is_positive == Some(true) {
                out.push_str(" positive");
            }
        }
    }
}

fn write_sync_dl(
    out: &mut String,
    dl: &pb::CommSyncDl,
    meta_bodies: &[MetaBody],
    opts: &RenderOpts,
) {
    let is_ack = dl.meta_id.is_some() || dl.server_id.is_some();
    let is_pull =
        dl.queue.is_some() || !dl.metas.is_empty() || dl.next_key.is_some() || dl.is_last.is_some();
    if is_ack {
        out.push_str(" ack");
        if let Some(id) = dl.meta_id {
            let _ = write!(out, " meta={id}");
        }
        if let Some(id) = dl.server_id {
            let _ = write!(out, " server_id={id}");
        }
        if let Some(s) = &dl.status {
            write_status(out, s, None);
        }
    }
    if is_pull {
        out.push_str(" pull");
        if let Some(q) = &dl.queue {
            out.push_str(" queue=");
            push_jid(out, q);
        }
        let _ = write!(out, " metas={}", dl.metas.len());
        if let Some(k) = dl.next_key {
            let _ = write!(out, " next_key={k}");
        }
        if dl.is_last == Some(true) {
            out.push_str(" last");
        }
        if dl.is_roam == Some(true) {
            out.push_str(" roam");
        }
        // A pull answer is OK nearly always; only a failure is worth the space.
        if let Some(s) = dl.status.as_ref().filter(|s| !is_ack && s.error_code.unwrap_or(0) != 0) {
            write_status(out, s, None);
        }
        for (i, m) in dl.metas.iter().enumerate() {
            if i == MAX_METAS {
                let _ = write!(out, " +{} more", dl.metas.len() - i);
                break;
            }
            out.push_str(" [");
            write_meta(out, m, meta_bodies.get(i), true, opts);
            out.push(']');
        }
    }
    if !is_ack && !is_pull {
        if let Some(s) = &dl.status {
            write_status(out, s, None);
        }
    }
}

fn write_logout(out: &mut String, l: &pb::Logout) {
    if let Some(s) = &l.status {
        write_status(out, s, None);
    }
    if let Some(r) = l.reason.as_deref() {
        out.push_str(" reason=");
        push_quoted(out, r, MAX_REASON);
    }
    if let Some(s) = l.session_id.as_deref() {
        out.push_str(" session=");
        push_plain(out, s);
    }
}

/// `Status`: the error code's name (`ERROR_CODE_<n>` if unknown), then the reason in quotes,
/// then where a REDIRECT points. `fallback_reason` is used when the status has none (Provision
/// carries a reason of its own).
fn write_status(out: &mut String, s: &pb::Status, fallback_reason: Option<&str>) {
    out.push(' ');
    // proto2 default: a status without a code is OK.
    let code = s.error_code.unwrap_or(0);
    push_enum(out, enum_name!(pb::status::ErrorCode, code), "ERROR_CODE_", code);
    let reason = s.reason.as_deref().filter(|r| !r.is_empty()).or(fallback_reason);
    if let Some(r) = reason.filter(|r| !r.is_empty()) {
        out.push(' ');
        push_quoted(out, r, MAX_REASON);
    }
    for (i, r) in s.redirect_info.iter().enumerate() {
        if i == MAX_LIST {
            let _ = write!(out, " +{} more", s.redirect_info.len() - i);
            break;
        }
        out.push_str(" redirect=");
        push_plain(out, r.host.as_deref().unwrap_or("?"));
        if let Some(p) = r.port {
            let _ = write!(out, ":{p}");
        }
    }
}

// ---- metas ----------------------------------------------------------------------------------

/// A compact description of one meta: a tag (the chat type for CHAT, else the namespace), the
/// endpoints if asked (`from→to`), then what the body says.
fn write_meta(
    out: &mut String,
    meta: &pb::Meta,
    body: Option<&MetaBody>,
    endpoints: bool,
    opts: &RenderOpts,
) {
    // Tag
    match body {
        Some(MetaBody::Chat(mb)) => {
            let t = mb.r#type.unwrap_or(0);
            match enum_name!(pb::message_body::Type, t) {
                Some(n) => out.push_str(n),
                None => {
                    let _ = write!(out, "CHAT type={t}");
                }
            }
        }
        Some(MetaBody::Muc(_)) => out.push_str("MUC"),
        Some(MetaBody::Roster(_)) => out.push_str("ROSTER"),
        Some(MetaBody::Statistic(_)) => out.push_str("STATISTIC"),
        Some(MetaBody::Conference(_)) => out.push_str("CONFERENCE"),
        Some(MetaBody::Raw | MetaBody::Empty | MetaBody::Invalid(_)) | None => {
            let ns = meta.ns.unwrap_or(0);
            match enum_name!(pb::meta::NameSpace, ns) {
                Some(n) => out.push_str(n),
                None => {
                    let _ = write!(out, "ns={ns}");
                }
            }
        }
    }
    if endpoints {
        // The chat body names the users (`z13→z12`); the meta names full JIDs with resources.
        let (from, to) = match body {
            Some(MetaBody::Chat(mb)) => {
                (mb.from.as_ref().or(meta.from.as_ref()), mb.to.as_ref().or(meta.to.as_ref()))
            }
            _ => (meta.from.as_ref(), meta.to.as_ref()),
        };
        if from.is_some() || to.is_some() {
            out.push(' ');
            match from {
                Some(j) => push_jid(out, j),
                None => out.push('?'),
            }
            out.push('→');
            match to {
                Some(j) => push_jid(out, j),
                None => out.push('?'),
            }
        }
    }
    match body {
        Some(MetaBody::Chat(mb)) => write_chat(out, mb, opts),
        Some(MetaBody::Muc(b)) => write_muc(out, b),
        Some(MetaBody::Roster(b)) => write_roster(out, b),
        Some(MetaBody::Statistic(b)) => write_statistic(out, b),
        Some(MetaBody::Conference(b)) => write_conference(out, b),
        Some(MetaBody::Raw) => {
            let _ = write!(out, " {} bytes", meta.payload.as_ref().map_or(0, Vec::len));
        }
        Some(MetaBody::Empty) => out.push_str(" empty"),
        Some(MetaBody::Invalid(r)) => {
            out.push_str(" [undecodable: ");
            push_plain(out, r);
            out.push(']');
        }
        None => {}
    }
}

fn write_chat(out: &mut String, mb: &pb::MessageBody, _opts: &RenderOpts) {
    if let Some(id) = mb.ack_message_id {
        let _ = write!(out, " ack={id}");
    }
    if !mb.ack_message_ids.is_empty() {
        out.push_str(" acks=");
        for (i, id) in mb.ack_message_ids.iter().enumerate() {
            if i == MAX_LIST {
                let _ = write!(out, "+{}", mb.ack_message_ids.len() - i);
                break;
            }
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{id}");
        }
    }
    if let Some(id) = mb.edit_message_id {
        let _ = write!(out, " edit={id}");
    }
    if let Some(c) = mb.contents.first() {
        write_content(out, c);
        if mb.contents.len() > 1 {
            let _ = write!(out, " +{} more", mb.contents.len() - 1);
        }
    }
}

/// One content: its type, then whichever of its descriptive fields are present. File URLs and
/// secret keys are left out (the first is noise here, the second a secret).
fn write_content(out: &mut String, c: &pb::message_body::Content) {
    out.push(' ');
    let t = c.r#type.unwrap_or(0);
    match enum_name!(pb::message_body::content::Type, t) {
        Some(n) => out.push_str(n),
        None => {
            let _ = write!(out, "contenttype={t}");
        }
    }
    if let Some(s) = c.text.as_deref() {
        out.push(' ');
        push_quoted(out, s, MAX_TEXT);
    }
    if let Some(s) = c.display_name.as_deref() {
        out.push(' ');
        push_quoted(out, s, MAX_TEXT);
    }
    if let Some(s) = c.address.as_deref() {
        out.push(' ');
        push_quoted(out, s, MAX_TEXT);
    }
    if let (Some(lat), Some(lon)) = (c.latitude, c.longitude) {
        let _ = write!(out, " at={lat},{lon}");
    }
    if let Some(s) = c.action.as_deref() {
        out.push_str(" action=");
        push_quoted(out, s, MAX_TEXT);
    }
    if let Some(s) = c.custom_event.as_deref() {
        out.push_str(" event=");
        push_quoted(out, s, MAX_TEXT);
    }
    if let Some(s) = c.title.as_deref() {
        out.push_str(" title=");
        push_quoted(out, s, MAX_TEXT);
    }
    if let Some(n) = c.file_length {
        let _ = write!(out, " len={n}");
    }
    if let Some(n) = c.duration {
        let _ = write!(out, " {n}s");
    }
}

fn write_muc(out: &mut String, b: &pb::MucBody) {
    out.push(' ');
    let op = b.operation.unwrap_or(0);
    push_enum(out, enum_name!(pb::muc_body::Operation, op), "op=", op);
    if let Some(j) = &b.muc_id {
        out.push(' ');
        push_jid(out, j);
    }
    if b.is_chatroom == Some(true) {
        out.push_str(" chatroom");
    }
    if b.is_thread == Some(true) {
        out.push_str(" thread");
    }
    write_jid_list(out, " to=", &b.to);
    if let Some(s) = &b.status {
        out.push(' ');
        let code = s.error_code.unwrap_or(0);
        push_enum(out, enum_name!(pb::muc_body::status::ErrorCode, code), "ERROR_CODE_", code);
        if let Some(d) = s.description.as_deref().filter(|d| !d.is_empty()) {
            out.push(' ');
            push_quoted(out, d, MAX_REASON);
        }
    }
    if let Some(r) = b.reason.as_deref().filter(|r| !r.is_empty()) {
        out.push_str(" reason=");
        push_quoted(out, r, MAX_REASON);
    }
}

fn write_roster(out: &mut String, b: &pb::RosterBody) {
    out.push(' ');
    let op = b.operation.unwrap_or(0);
    push_enum(out, enum_name!(pb::roster_body::Operation, op), "op=", op);
    write_jid_list(out, " to=", &b.to);
    if let Some(s) = &b.status {
        out.push(' ');
        let code = s.error_code.unwrap_or(0);
        push_enum(out, enum_name!(pb::roster_body::status::ErrorCode, code), "ERROR_CODE_", code);
        if let Some(d) = s.description.as_deref().filter(|d| !d.is_empty()) {
            out.push(' ');
            push_quoted(out, d, MAX_REASON);
        }
    }
    if let Some(r) = b.reason.as_deref().filter(|r| !r.is_empty()) {
        out.push_str(" reason=");
        push_quoted(out, r, MAX_REASON);
    }
}

fn write_statistic(out: &mut String, b: &pb::StatisticsBody) {
    out.push(' ');
    let op = b.operation.unwrap_or(0);
    push_enum(out, enum_name!(pb::statistics_body::Operation, op), "op=", op);
    if let Some(os) = b.os {
        out.push_str(" os=");
        push_enum(out, enum_name!(pb::statistics_body::OsType, os), "", os);
    }
    if let Some(v) = b.version.as_deref() {
        out.push_str(" version=");
        push_plain(out, v);
    }
    if let Some(d) = b.replace_device_name.as_deref() {
        out.push_str(" by=");
        push_quoted(out, d, MAX_TEXT);
    }
    if let Some(r) = b.reason.as_deref().filter(|r| !r.is_empty()) {
        out.push_str(" reason=");
        push_quoted(out, r, MAX_REASON);
    }
}

fn write_conference(out: &mut String, b: &pb::ConferenceBody) {
    out.push(' ');
    let op = b.operation.unwrap_or(0);
    push_enum(out, enum_name!(pb::conference_body::Operation, op), "op=", op);
    if let Some(t) = b.r#type {
        out.push(' ');
        push_enum(out, enum_name!(pb::conference_body::Type, t), "type=", t);
    }
    if let Some(s) = b.conference_id.as_deref() {
        out.push_str(" conference=");
        push_plain(out, s);
    }
    if let Some(s) = b.peer_name.as_deref() {
        out.push_str(" peer=");
        push_plain(out, s);
    }
    if let Some(r) = b.end_reason {
        out.push_str(" end=");
        push_enum(out, enum_name!(pb::conference_body::EndReason, r), "", r);
    }
    if let Some(code) = b.status.as_ref().and_then(|s| s.error_code).filter(|&c| c != 0) {
        let _ = write!(out, " error_code={code}");
    }
}

fn write_jid_list(out: &mut String, key: &str, list: &[pb::Jid]) {
    if list.is_empty() {
        return;
    }
    out.push_str(key);
    for (i, j) in list.iter().enumerate() {
        if i == MAX_LIST {
            let _ = write!(out, "+{}", list.len() - i);
            break;
        }
        if i > 0 {
            out.push(',');
        }
        push_jid(out, j);
    }
}

// ---- primitives -----------------------------------------------------------------------------

/// ` key=***`, or the value itself (quoted, whole) with `show_secrets`. Nothing if absent.
fn write_secret(out: &mut String, key: &str, value: Option<&[u8]>, opts: &RenderOpts) {
    let Some(v) = value else { return };
    out.push(' ');
    out.push_str(key);
    out.push('=');
    if !opts.show_secrets {
        out.push_str(REDACTED);
        return;
    }
    match std::str::from_utf8(v) {
        Ok(s) => push_quoted(out, s, usize::MAX),
        Err(_) => {
            for b in v {
                let _ = write!(out, "{b:02x}");
            }
        }
    }
}

/// An enum value's name, or `<prefix><number>` for a value the schema does not know.
fn push_enum(out: &mut String, name: Option<&str>, unknown_prefix: &str, v: i32) {
    match name {
        Some(n) => out.push_str(n),
        None => {
            out.push_str(unknown_prefix);
            let _ = write!(out, "{v}");
        }
    }
}

/// A JID in the SDK's notation, control characters escaped; `-` if it has no parts at all.
fn push_jid(out: &mut String, j: &pb::Jid) {
    let before = out.len();
    let _ = write!(Plain(out), "{}", JidParts::from_pb(j));
    if out.len() == before {
        out.push('-');
    }
}

/// Writes `s` unquoted, escaping control characters so the line stays one line.
fn push_plain(out: &mut String, s: &str) {
    if !s.chars().any(char::is_control) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        push_char_escaped(out, c, false);
    }
}

/// Writes `s` in double quotes with `\"`, `\\` and control characters escaped, cut after `max`
/// characters with "…".
fn push_quoted(out: &mut String, s: &str, max: usize) {
    out.push('"');
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        push_char_escaped(out, c, true);
    }
    out.push('"');
}

fn push_char_escaped(out: &mut String, c: char, quoted: bool) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '"' | '\\' if quoted => {
            out.push('\\');
            out.push(c);
        }
        c if c.is_control() => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// A `fmt::Write` that escapes control characters on the way into the line, so `Display`
/// implementations (JIDs, errors) can write straight into it.
struct Plain<'a>(&'a mut String);

impl fmt::Write for Plain<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        push_plain(self.0, s);
        Ok(())
    }
}
