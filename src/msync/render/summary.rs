//! The one-line summary of a message, tshark's info column: `<COMMAND> <arrow> <info>`, e.g.
//! `SYNC ↑ send meta=15089920589600003 to=z13 CHAT TEXT "456"`.
//!
//! Invariants: everything is written into the caller's `String` (this runs once per message on
//! multi-GB captures, so no per-message allocation beyond its growth); a summary is always one
//! line, whatever the strings on the wire hold (control characters are escaped); secrets print
//! as [`REDACTED`] unless `show_secrets`; enum values the schema does not know print as numbers.

use std::fmt::{self, Write as _};

use super::{needs_escape, RenderOpts, REDACTED};
use crate::msync::decode::{peek_command, Body, Command, DecodeError, Decoded, MetaBody};
use crate::msync::pb;
use crate::net::Dir;

/// Characters of a message text shown before it is cut with "…".
const MAX_TEXT: usize = 40;
/// Characters of a status reason or description shown; longer than texts because the whole
/// reason is usually what the reader is after.
const MAX_REASON: usize = 80;
/// Metas of a pull answer described one by one; the rest are counted.
const MAX_METAS: usize = 3;
/// Metas whose decoded body a summary reads (the UL meta, or the first metas of a pull).
pub const META_BODIES_USED: usize = MAX_METAS;
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
        Body::SyncUl(ul) => write_sync_ul(out, ul, msg.meta_bodies.first()),
        Body::SyncDl(dl) => write_sync_dl(out, dl, &msg.meta_bodies),
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
    // Shown, not hidden: the text of such a field is not what was sent.
    for b in &msg.not_utf8 {
        let _ = write!(out, " [warning: {b}]");
    }
    // Every client writes MSYNC_V1 (or leaves it out): another version is worth a look, and
    // a value the schema does not know would otherwise go unseen outside -V and JSON.
    match msg.env.version {
        None | Some(0) => {}
        Some(v) => {
            out.push_str(" [");
            push_enum(out, enum_name!(pb::m_sync::Version, v), "version=", v);
            out.push(']');
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

fn write_sync_ul(out: &mut String, ul: &pb::CommSyncUl, meta_body: Option<&MetaBody>) {
    if let Some(m) = &ul.meta {
        out.push_str(" send");
        if let Some(id) = m.id {
            let _ = write!(out, " meta={id}");
        }
        if let Some(to) = &m.to {
            out.push_str(" to=");
            push_jid(out, to);
        }
        // Who really gets it: a group message for some members only (the web SDK's
        // `receiverList`), or one for whoever is online (`deliverOnlineOnly`).
        if let Some(r) = m.routetype.filter(|&r| r != 0) {
            match enum_name!(pb::meta::RouteType, r) {
                Some(n) => {
                    let _ = write!(out, " route={n}");
                }
                None => {
                    let _ = write!(out, " route={r}");
                }
            }
        }
        for (i, u) in m.directed_users.iter().enumerate() {
            if i == MAX_LIST {
                let _ = write!(out, "+{}", m.directed_users.len() - i);
                break;
            }
            out.push_str(if i == 0 { " directed=" } else { "," });
            push_plain(out, u);
        }
        out.push(' ');
        write_meta(out, m, meta_body, false);
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

fn write_sync_dl(out: &mut String, dl: &pb::CommSyncDl, meta_bodies: &[MetaBody]) {
    let is_ack = dl.meta_id.is_some() || dl.server_id.is_some();
    // An ack may carry metas of its own (a chat room join's room, an edit's NOTIFY): they make
    // it no pull answer, which only the queue fields tell.
    let is_pull = dl.queue.is_some()
        || dl.next_key.is_some()
        || dl.is_last.is_some()
        || (!is_ack && !dl.metas.is_empty());
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
    } else if !dl.metas.is_empty() {
        let _ = write!(out, " metas={}", dl.metas.len());
    }
    for (i, m) in dl.metas.iter().enumerate() {
        if i == MAX_METAS {
            let _ = write!(out, " +{} more", dl.metas.len() - i);
            break;
        }
        out.push_str(" [");
        write_meta(out, m, meta_bodies.get(i), true);
        out.push(']');
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
fn write_meta(out: &mut String, meta: &pb::Meta, body: Option<&MetaBody>, endpoints: bool) {
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
        Some(MetaBody::Chat(mb)) => write_chat(out, mb),
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

fn write_chat(out: &mut String, mb: &pb::MessageBody) {
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
/// secret keys are left out (the first is noise here, the second a secret). An empty content
/// (the SDKs put one in their acks) shows nothing: it has no type, though TEXT is what its
/// absent type would read as.
fn write_content(out: &mut String, c: &pb::message_body::Content) {
    if *c == pb::message_body::Content::default() {
        return;
    }
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
        let code = s.error_code.unwrap_or(0);
        let name = enum_name!(pb::muc_body::status::ErrorCode, code);
        write_body_status(out, name, code, s.description.as_deref());
    }
    write_reason(out, b.reason.as_deref());
}

fn write_roster(out: &mut String, b: &pb::RosterBody) {
    out.push(' ');
    let op = b.operation.unwrap_or(0);
    push_enum(out, enum_name!(pb::roster_body::Operation, op), "op=", op);
    write_jid_list(out, " to=", &b.to);
    if let Some(s) = &b.status {
        let code = s.error_code.unwrap_or(0);
        let name = enum_name!(pb::roster_body::status::ErrorCode, code);
        write_body_status(out, name, code, s.description.as_deref());
    }
    write_reason(out, b.reason.as_deref());
}

/// The status a MUC or roster body carries: its code's name (or number) and description.
fn write_body_status(out: &mut String, name: Option<&str>, code: i32, description: Option<&str>) {
    out.push(' ');
    push_enum(out, name, "ERROR_CODE_", code);
    if let Some(d) = description.filter(|d| !d.is_empty()) {
        out.push(' ');
        push_quoted(out, d, MAX_REASON);
    }
}

fn write_reason(out: &mut String, reason: Option<&str>) {
    if let Some(r) = reason.filter(|r| !r.is_empty()) {
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
    // What `crate::msync::jid::JidParts`' `Display` writes through `Plain`, without the formatting machinery (a
    // summary line holds up to a dozen JIDs).
    fn part(p: &Option<String>) -> Option<&str> {
        p.as_deref().filter(|s| !s.is_empty())
    }
    let before = out.len();
    let mut any = false;
    if let Some(a) = part(&j.app_key) {
        push_plain(out, a);
        any = true;
    }
    if let Some(n) = part(&j.name) {
        if any {
            out.push('_');
        }
        push_plain(out, n);
    }
    if let Some(d) = part(&j.domain) {
        out.push('@');
        push_plain(out, d);
    }
    if let Some(r) = part(&j.client_resource) {
        out.push('/');
        push_plain(out, r);
    }
    if out.len() == before {
        out.push('-');
    }
}

/// Writes `s` unquoted, escaping what [`needs_escape`] names so the line stays one line.
pub(crate) fn push_plain(out: &mut String, s: &str) {
    if is_printable_ascii(s, false) || !s.chars().any(needs_escape) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        push_char_escaped(out, c, false);
    }
}

/// Writes `s` in double quotes with `\"`, `\\` and what [`needs_escape`] names escaped, cut
/// after `max` characters with "…".
fn push_quoted(out: &mut String, s: &str, max: usize) {
    out.push('"');
    // Short printable ASCII (most ids and texts) needs neither escapes nor a cut.
    if s.len() <= max && is_printable_ascii(s, true) {
        out.push_str(s);
        out.push('"');
        return;
    }
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        push_char_escaped(out, c, true);
    }
    out.push('"');
}

/// All of `s` is ASCII that [`push_char_escaped`] writes as is: no control character, and no
/// `"` or `\\` when `quoted`. A branch-free scan, so the compiler can vectorise it.
fn is_printable_ascii(s: &str, quoted: bool) -> bool {
    let q = if quoted { b'"' } else { 0x7f };
    let bs = if quoted { b'\\' } else { 0x7f };
    !s.as_bytes()
        .iter()
        .fold(false, |bad, &c| bad | !(0x20..0x7f).contains(&c) | (c == q) | (c == bs))
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
        c if needs_escape(c) => {
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use prost::Message;

    use super::*;
    use crate::msync::decode::{decode, DecodeLimits};

    const UUID: &str = "3c4df774-1a75-3b61-a912-ffc4d280adae";

    fn jid(name: &str) -> pb::Jid {
        pb::Jid { name: Some(name.into()), ..Default::default() }
    }

    fn full_jid(app_key: &str, name: &str, domain: &str, res: Option<&str>) -> pb::Jid {
        pb::Jid {
            app_key: Some(app_key.into()),
            name: Some(name.into()),
            domain: Some(domain.into()),
            client_resource: res.map(Into::into),
        }
    }

    fn ok() -> Option<pb::Status> {
        Some(pb::Status { error_code: Some(0), ..Default::default() })
    }

    fn env<M: Message>(command: i32, payload: &M) -> pb::MSync {
        pb::MSync {
            command: Some(command),
            payload: Some(payload.encode_to_vec()),
            ..Default::default()
        }
    }

    fn summarize_with(env: &pb::MSync, dir: Dir, opts: &RenderOpts) -> String {
        let frame = env.encode_to_vec();
        let mut out = String::new();
        match decode(&frame, dir, &DecodeLimits::default()) {
            Ok(d) => write_summary(&mut out, &d, dir, opts),
            Err(e) => write_error_summary(&mut out, &frame, dir, &e),
        }
        out
    }

    fn summarize(env: &pb::MSync, dir: Dir) -> String {
        summarize_with(env, dir, &RenderOpts::default())
    }

    fn text(t: &str) -> pb::message_body::Content {
        pb::message_body::Content { r#type: Some(0), text: Some(t.into()), ..Default::default() }
    }

    fn chat_body(
        from: &str,
        to: &str,
        contents: Vec<pb::message_body::Content>,
    ) -> pb::MessageBody {
        pb::MessageBody {
            r#type: Some(pb::message_body::Type::Chat as i32),
            from: Some(jid(from)),
            to: Some(jid(to)),
            contents,
            ..Default::default()
        }
    }

    fn meta<M: Message>(ns: i32, body: &M) -> pb::Meta {
        pb::Meta { ns: Some(ns), payload: Some(body.encode_to_vec()), ..Default::default() }
    }

    fn pull_answer(metas: Vec<pb::Meta>) -> pb::MSync {
        env(
            0,
            &pb::CommSyncDl { status: ok(), metas, queue: Some(jid("z13")), ..Default::default() },
        )
    }

    // ---- the four exact examples ----

    #[test]
    fn sync_send() {
        let m = pb::Meta {
            id: Some(15089920589600003),
            from: Some(pb::Jid { client_resource: Some(format!("android_{UUID}")), ..jid("z12") }),
            to: Some(jid("z13")),
            ns: Some(1),
            payload: Some(chat_body("z12", "z13", vec![text("456")]).encode_to_vec()),
            ..Default::default()
        };
        let mut e = env(0, &pb::CommSyncUl { meta: Some(m), ..Default::default() });
        e.compress_algorimth = Some(0);
        assert_eq!(
            summarize(&e, Dir::C2S),
            r#"SYNC ↑ send meta=15089920589600003 to=z13 CHAT TEXT "456""#
        );
    }

    #[test]
    fn sync_ack() {
        let dl = pb::CommSyncDl {
            status: ok(),
            meta_id: Some(15089920589600003),
            server_id: Some(392677097702688788),
            timestamp: Some(1508992061436),
            ..Default::default()
        };
        assert_eq!(
            summarize(&env(0, &dl), Dir::S2C),
            "SYNC ↓ ack meta=15089920589600003 server_id=392677097702688788 OK"
        );
        let fail = pb::CommSyncDl {
            status: Some(pb::Status {
                error_code: Some(15),
                reason: Some("muted".into()),
                ..Default::default()
            }),
            meta_id: Some(1),
            ..Default::default()
        };
        assert_eq!(summarize(&env(0, &fail), Dir::S2C), r#"SYNC ↓ ack meta=1 USER_MUTED "muted""#);
    }

    // The web SDK's group message with a `receiverList`, and a message for online users only.
    #[test]
    fn sync_send_shows_its_route_and_directed_users() {
        let body = chat_body("z12", "g1", vec![text("hi")]);
        let meta = |routetype, users: &[&str]| pb::Meta {
            id: Some(1),
            to: Some(jid("g1")),
            routetype: Some(routetype),
            directed_users: users.iter().map(|u| u.to_string()).collect(),
            ..meta(1, &body)
        };
        let send = |m| {
            summarize(&env(0, &pb::CommSyncUl { meta: Some(m), ..Default::default() }), Dir::C2S)
        };
        assert_eq!(send(meta(0, &[])), r#"SYNC ↑ send meta=1 to=g1 CHAT TEXT "hi""#);
        assert_eq!(
            send(meta(1, &[])),
            r#"SYNC ↑ send meta=1 to=g1 route=ROUTE_ONLINE CHAT TEXT "hi""#
        );
        assert_eq!(
            send(meta(2, &["a", "b", "c", "d"])),
            r#"SYNC ↑ send meta=1 to=g1 route=ROUTE_DIRECT directed=a,b,c+1 CHAT TEXT "hi""#
        );
        assert_eq!(send(meta(9, &[])), r#"SYNC ↑ send meta=1 to=g1 route=9 CHAT TEXT "hi""#);
    }

    // The web SDK's chat room join is acked with the room's MUC meta, its edit with a NOTIFY
    // meta: no queue, no next key, so no pull answer (this was "ack … OK pull metas=1").
    #[test]
    fn sync_ack_with_metas_is_no_pull_answer() {
        let room = pb::MucBody {
            muc_id: Some(pb::Jid { domain: Some("conference.easemob.com".into()), ..jid("r1") }),
            operation: Some(pb::muc_body::Operation::Join as i32),
            is_chatroom: Some(true),
            ..Default::default()
        };
        let notify = pb::Meta { payload: Some(b"{}".to_vec()), ..meta(5, &pb::MucBody::default()) };
        let dl = pb::CommSyncDl {
            status: ok(),
            meta_id: Some(7),
            server_id: Some(8),
            metas: vec![meta(2, &room), notify],
            ..Default::default()
        };
        assert_eq!(
            summarize(&env(0, &dl), Dir::S2C),
            "SYNC ↓ ack meta=7 server_id=8 OK metas=2 [MUC JOIN r1@conference.easemob.com chatroom] \
             [NOTIFY 2 bytes]"
        );
    }

    #[test]
    fn notice() {
        let n = pb::CommNotice {
            queue: Some(pb::Jid {
                client_resource: Some("webim_device_uuid".into()),
                ..jid("z13")
            }),
        };
        assert_eq!(summarize(&env(2, &n), Dir::S2C), "NOTICE ↓ queue=z13/webim_device_uuid");
        assert_eq!(summarize(&env(2, &pb::CommNotice::default()), Dir::S2C), "NOTICE ↓");
        // A NOTICE from the client is not in the protocol: shown as bytes.
        assert_eq!(summarize(&env(2, &n), Dir::C2S), format!("NOTICE ↑ {} bytes", n.encoded_len()));
    }

    #[test]
    fn provision_refused() {
        let p = pb::Provision {
            status: Some(pb::Status {
                error_code: Some(2),
                reason: Some("Sorry, who are you?".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            summarize(&env(3, &p), Dir::S2C),
            r#"PROVISION ↓ UNAUTHORIZED "Sorry, who are you?""#
        );
    }

    // ---- the rest ----

    fn login() -> pb::MSync {
        let p = pb::Provision {
            os_type: Some(1),
            version: Some("3.3.4".into()),
            compress_type: vec![0],
            device_uuid: Some(UUID.into()),
            is_manual_login: Some(true),
            device_name: Some("LGENexus 5".into()),
            resource: Some(format!("android_{UUID}")),
            password: Some("hunter2".into()),
            ..Default::default()
        };
        let mut e = env(3, &p);
        e.guid = Some(full_jid(
            "easemob-demo#chatdemoui",
            "zl2",
            "easemob.com",
            Some(&format!("android_{UUID}")),
        ));
        e.auth = Some("YWMtSECRET".into());
        e
    }

    #[test]
    fn provision_login_redacts_secrets() {
        let s = summarize(&login(), Dir::C2S);
        assert_eq!(
            s,
            format!(
                "PROVISION ↑ login easemob-demo#chatdemoui_zl2@easemob.com/android_{UUID} os=OS_ANDROID \
                 version=3.3.4 device={UUID} device_name=\"LGENexus 5\" manual auth=*** password=*** \
                 compress=COMPRESS_NONE"
            )
        );
        assert!(!s.contains("hunter2") && !s.contains("SECRET"));
        let shown = summarize_with(
            &login(),
            Dir::C2S,
            &RenderOpts { show_secrets: true, ..Default::default() },
        );
        assert!(shown.contains(r#" auth="YWMtSECRET" password="hunter2" "#), "{shown}");
    }

    #[test]
    fn provision_login_newer_client() {
        let p = pb::Provision {
            os_type: Some(99),
            version: Some("4.21.1".into()),
            is_manual_login: Some(false),
            auth_token: Some(vec![0xff, 0x01]),
            encrypt_type: vec![0, 3],
            encrypt_key: Some("k".into()),
            protocol_compress_type: vec![2],
            ..Default::default()
        };
        let e = env(3, &p);
        assert_eq!(
            summarize(&e, Dir::C2S),
            "PROVISION ↑ login os=99 version=4.21.1 auto auth_token=*** protocol_compress=COMPRESS_LZ4 \
             encrypt=ENCRYPT_NONE,ENCRYPT_AES_GCM encrypt_key=***"
        );
        let shown =
            summarize_with(&e, Dir::C2S, &RenderOpts { show_secrets: true, ..Default::default() });
        assert!(
            shown.contains(" auth_token=ff01 ") && shown.contains(r#"encrypt_key="k""#),
            "{shown}"
        );
    }

    #[test]
    fn provision_answer() {
        let p = pb::Provision {
            compress_type: vec![0],
            status: ok(),
            resource: Some(format!("android_{UUID}")),
            ..Default::default()
        };
        assert_eq!(
            summarize(&env(3, &p), Dir::S2C),
            format!("PROVISION ↓ OK resource=android_{UUID} compress=COMPRESS_NONE")
        );
        let lz4 = pb::Provision {
            status: ok(),
            session_id: Some("s1".into()),
            protocol_compress_type: vec![2],
            protocol_compress_direction: Some(2),
            ..Default::default()
        };
        assert_eq!(
            summarize(&env(3, &lz4), Dir::S2C),
            "PROVISION ↓ OK session=s1 protocol_compress=COMPRESS_LZ4 direction=BI"
        );
        let redirect = pb::Provision {
            status: Some(pb::Status {
                error_code: Some(5),
                redirect_info: vec![pb::RedirectInfo {
                    host: Some("im2.example".into()),
                    port: Some(443),
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            summarize(&env(3, &redirect), Dir::S2C),
            "PROVISION ↓ REDIRECT redirect=im2.example:443"
        );
        // The reason may sit on the Provision rather than its Status.
        let p = pb::Provision {
            status: Some(pb::Status { error_code: Some(99), ..Default::default() }),
            reason: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(summarize(&env(3, &p), Dir::S2C), r#"PROVISION ↓ ERROR_CODE_99 "x""#);
    }

    #[test]
    fn unread() {
        // The web SDK's heartbeat: UNREAD with no payload at all.
        let hb = pb::MSync { command: Some(1), ..Default::default() };
        assert_eq!(summarize(&hb, Dir::C2S), "UNREAD ↑");
        let dl = pb::CommUnreadDl {
            status: ok(),
            unread: vec![
                pb::MetaQueue { queue: Some(jid("z13")), n: Some(3) },
                pb::MetaQueue {
                    queue: Some(pb::Jid {
                        domain: Some("conference.easemob.com".into()),
                        ..jid("g1")
                    }),
                    n: Some(1),
                },
            ],
            timestamp: Some(1),
        };
        assert_eq!(
            summarize(&env(1, &dl), Dir::S2C),
            "UNREAD ↓ OK 2 queues: z13=3 g1@conference.easemob.com=1"
        );
        let none = pb::CommUnreadDl { status: ok(), ..Default::default() };
        assert_eq!(summarize(&env(1, &none), Dir::S2C), "UNREAD ↓ OK 0 queues");
        let many = pb::CommUnreadDl {
            status: ok(),
            unread: (0..7)
                .map(|i| pb::MetaQueue { queue: Some(jid(&format!("u{i}"))), n: Some(i) })
                .collect(),
            ..Default::default()
        };
        assert_eq!(
            summarize(&env(1, &many), Dir::S2C),
            "UNREAD ↓ OK 7 queues: u0=0 u1=1 u2=2 u3=3 u4=4 +2 more"
        );
        let one = pb::CommUnreadDl {
            unread: vec![pb::MetaQueue { queue: None, n: None }],
            ..Default::default()
        };
        assert_eq!(summarize(&env(1, &one), Dir::S2C), "UNREAD ↓ 1 queue: ?=0");
    }

    #[test]
    fn sync_pull_request() {
        let ul = pb::CommSyncUl {
            queue: Some(pb::Jid {
                client_resource: Some("webim_device_uuid".into()),
                ..jid("z13")
            }),
            key: Some(392677053607969272),
            ..Default::default()
        };
        assert_eq!(
            summarize(&env(0, &ul), Dir::C2S),
            "SYNC ↑ pull queue=z13/webim_device_uuid key=392677053607969272"
        );
        let roam = pb::CommSyncUl {
            queue: Some(jid("g1")),
            is_roam: Some(true),
            last_full_roam_key: Some(4),
            roam_config: Some(pb::RoamConfig { is_positive: Some(true), pull_number: Some(20) }),
            ..Default::default()
        };
        assert_eq!(summarize(&env(0, &pb::CommSyncUl::default()), Dir::C2S), "SYNC ↑ pull");
        assert_eq!(
            summarize(&env(0, &roam), Dir::C2S),
            "SYNC ↑ pull queue=g1 roam last_full_roam_key=4 pull_number=20 positive"
        );
    }

    #[test]
    fn sync_pull_answer() {
        // The seed's receive: meta JIDs are full, the chat body's short.
        let m = pb::Meta {
            id: Some(392677053607969272),
            from: Some(full_jid(
                "easemob-demo#chatdemoui",
                "z13",
                "easemob.com",
                Some("webim_device_uuid"),
            )),
            to: Some(full_jid("easemob-demo#chatdemoui", "z12", "easemob.com", None)),
            timestamp: Some(1508992051149),
            ns: Some(1),
            payload: Some(chat_body("z13", "z12", vec![text("123")]).encode_to_vec()),
            ..Default::default()
        };
        let dl = pb::CommSyncDl {
            status: ok(),
            metas: vec![m],
            next_key: Some(392677053607969272),
            queue: Some(jid("z13")),
            timestamp: Some(1508992051178),
            ..Default::default()
        };
        assert_eq!(
            summarize(&env(0, &dl), Dir::S2C),
            r#"SYNC ↓ pull queue=z13 metas=1 next_key=392677053607969272 [CHAT z13→z12 TEXT "123"]"#
        );
        let last = pb::CommSyncDl {
            queue: Some(jid("z13")),
            is_last: Some(true),
            next_key: Some(9),
            ..Default::default()
        };
        assert_eq!(
            summarize(&env(0, &last), Dir::S2C),
            "SYNC ↓ pull queue=z13 metas=0 next_key=9 last"
        );
        let fail = pb::CommSyncDl {
            status: Some(pb::Status { error_code: Some(1), ..Default::default() }),
            queue: Some(jid("z13")),
            ..Default::default()
        };
        assert_eq!(summarize(&env(0, &fail), Dir::S2C), "SYNC ↓ pull queue=z13 metas=0 FAIL");
        let bare = pb::CommSyncDl { status: ok(), ..Default::default() };
        assert_eq!(summarize(&env(0, &bare), Dir::S2C), "SYNC ↓ OK");
    }

    #[test]
    fn pull_answer_lists_first_metas_only() {
        let metas =
            (0..5).map(|i| meta(1, &chat_body("a", "b", vec![text(&format!("m{i}"))]))).collect();
        assert_eq!(
            summarize(&pull_answer(metas), Dir::S2C),
            r#"SYNC ↓ pull queue=z13 metas=5 [CHAT a→b TEXT "m0"] [CHAT a→b TEXT "m1"] [CHAT a→b TEXT "m2"] +2 more"#
        );
    }

    #[test]
    fn chat_kinds() {
        let ack = |t: pb::message_body::Type| pb::MessageBody {
            r#type: Some(t as i32),
            from: Some(jid("z12")),
            to: Some(jid("z13")),
            ack_message_id: Some(392677053607969272),
            ..Default::default()
        };
        let recall = ack(pb::message_body::Type::Recall);
        let read = ack(pb::message_body::Type::ReadAck);
        let deliver = ack(pb::message_body::Type::DeliverAck);
        let channel = pb::MessageBody {
            ack_message_ids: vec![1, 2, 3, 4, 5],
            ..ack(pb::message_body::Type::ChannelAck)
        };
        let group = pb::MessageBody {
            r#type: Some(2),
            contents: vec![
                pb::message_body::Content {
                    r#type: Some(1),
                    display_name: Some("a.jpg".into()),
                    file_length: Some(12345),
                    secret_key: Some("SK".into()),
                    remote_path: Some("https://x/y".into()),
                    ..Default::default()
                },
                text("and"),
            ],
            ..Default::default()
        };
        let misc = pb::MessageBody {
            r#type: Some(42),
            contents: vec![pb::message_body::Content {
                r#type: Some(6),
                action: Some("typing".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let loc = pb::MessageBody {
            contents: vec![pb::message_body::Content {
                r#type: Some(3),
                address: Some("Beijing".into()),
                latitude: Some(39.9),
                longitude: Some(116.3),
                ..Default::default()
            }],
            ..Default::default()
        };
        let voice = pb::MessageBody {
            r#type: Some(1),
            contents: vec![pb::message_body::Content {
                r#type: Some(4),
                duration: Some(3),
                ..Default::default()
            }],
            ..Default::default()
        };
        let custom = pb::MessageBody {
            r#type: Some(8),
            edit_message_id: Some(77),
            contents: vec![
                pb::message_body::Content {
                    r#type: Some(7),
                    custom_event: Some("gift".into()),
                    ..Default::default()
                },
                pb::message_body::Content { r#type: Some(50), ..Default::default() },
            ],
            ..Default::default()
        };
        let metas = vec![meta(1, &recall), meta(1, &read), meta(1, &deliver)];
        assert_eq!(
            summarize(&pull_answer(metas), Dir::S2C),
            "SYNC ↓ pull queue=z13 metas=3 [RECALL z12→z13 ack=392677053607969272] \
             [READ_ACK z12→z13 ack=392677053607969272] [DELIVER_ACK z12→z13 ack=392677053607969272]"
        );
        let send = |b: &pb::MessageBody| {
            let m = pb::Meta { id: Some(1), ..meta(1, b) };
            summarize(&env(0, &pb::CommSyncUl { meta: Some(m), ..Default::default() }), Dir::C2S)
        };
        assert_eq!(
            send(&channel),
            "SYNC ↑ send meta=1 CHANNEL_ACK ack=392677053607969272 acks=1,2,3+2"
        );
        assert_eq!(send(&group), r#"SYNC ↑ send meta=1 GROUPCHAT IMAGE "a.jpg" len=12345 +1 more"#);
        assert_eq!(send(&misc), r#"SYNC ↑ send meta=1 CHAT type=42 COMMAND action="typing""#);
        assert_eq!(send(&loc), r#"SYNC ↑ send meta=1 NORMAL LOCATION "Beijing" at=39.9,116.3"#);
        assert_eq!(send(&voice), "SYNC ↑ send meta=1 CHAT VOICE 3s");
        assert_eq!(send(&custom), r#"SYNC ↑ send meta=1 EDIT edit=77 CUSTOM event="gift" +1 more"#);
        assert!(!send(&group).contains("SK"));
        // The web SDK's acks carry one empty content: no type to show. A content with fields
        // and no type is TEXT.
        let sdk_ack = pb::MessageBody {
            contents: vec![pb::message_body::Content::default()],
            ..ack(pb::message_body::Type::DeliverAck)
        };
        assert_eq!(send(&sdk_ack), "SYNC ↑ send meta=1 DELIVER_ACK ack=392677053607969272");
        let untyped = pb::MessageBody {
            contents: vec![pb::message_body::Content {
                text: Some("hi".into()),
                ..Default::default()
            }],
            ..ack(pb::message_body::Type::Chat)
        };
        assert_eq!(send(&untyped), r#"SYNC ↑ send meta=1 CHAT ack=392677053607969272 TEXT "hi""#);
    }

    #[test]
    fn other_namespaces() {
        let muc = pb::MucBody {
            muc_id: Some(pb::Jid { domain: Some("conference.easemob.com".into()), ..jid("g1") }),
            operation: Some(pb::muc_body::Operation::Join as i32),
            from: Some(jid("z12")),
            to: vec![jid("a"), jid("b"), jid("c"), jid("d")],
            is_chatroom: Some(true),
            status: Some(pb::muc_body::Status {
                error_code: Some(1),
                description: Some("no".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let roster = pb::RosterBody {
            operation: Some(pb::roster_body::Operation::Add as i32),
            to: vec![jid("z14")],
            reason: Some("hi".into()),
            status: Some(pb::roster_body::Status { error_code: Some(2), ..Default::default() }),
            ..Default::default()
        };
        let stat = pb::StatisticsBody {
            operation: Some(pb::statistics_body::Operation::UserLoginAnotherDevice as i32),
            replace_device_name: Some("iPhone".into()),
            ..Default::default()
        };
        let conf = pb::ConferenceBody {
            operation: Some(pb::conference_body::Operation::Terminate as i32),
            r#type: Some(1),
            conference_id: Some("c1".into()),
            peer_name: Some("z13".into()),
            end_reason: Some(3),
            status: Some(pb::conference_body::Status { error_code: Some(5) }),
            ..Default::default()
        };
        let from_to = |ns: i32, b: &dyn Fn() -> Vec<u8>| pb::Meta {
            ns: Some(ns),
            from: Some(jid("x")),
            to: Some(jid("y")),
            payload: Some(b()),
            ..Default::default()
        };
        let metas = vec![
            from_to(2, &|| muc.encode_to_vec()),
            from_to(3, &|| roster.encode_to_vec()),
            from_to(0, &|| stat.encode_to_vec()),
        ];
        assert_eq!(
            summarize(&pull_answer(metas), Dir::S2C),
            r#"SYNC ↓ pull queue=z13 metas=3 [MUC x→y JOIN g1@conference.easemob.com chatroom to=a,b,c+1 PERMISSION_DENIED "no"] [ROSTER x→y ADD to=z14 USER_ALREADY_FRIEND reason="hi"] [STATISTIC x→y USER_LOGIN_ANOTHER_DEVICE by="iPhone"]"#
        );
        let metas = vec![
            from_to(4, &|| conf.encode_to_vec()),
            from_to(5, &|| vec![1, 2, 3]),
            pb::Meta { ns: Some(6), ..Default::default() },
        ];
        assert_eq!(
            summarize(&pull_answer(metas), Dir::S2C),
            "SYNC ↓ pull queue=z13 metas=3 [CONFERENCE x→y TERMINATE VIDEO conference=c1 peer=z13 end=BUSY error_code=5] \
             [NOTIFY x→y 3 bytes] [QUERY empty]"
        );
        // The web SDK's statistics report after each UNREAD answer, and unknown numbers.
        let info = pb::StatisticsBody {
            operation: Some(0),
            os: Some(16),
            version: Some("4.21.1".into()),
            ..Default::default()
        };
        let m = pb::Meta { id: Some(5), ..meta(0, &info) };
        let e = env(0, &pb::CommSyncUl { meta: Some(m), ..Default::default() });
        assert_eq!(
            summarize(&e, Dir::C2S),
            "SYNC ↑ send meta=5 STATISTIC INFORMATION os=OS_OTHER version=4.21.1"
        );
        let odd = pb::Meta {
            id: Some(6),
            ..meta(2, &pb::MucBody { operation: Some(99), ..Default::default() })
        };
        let e = env(0, &pb::CommSyncUl { meta: Some(odd), ..Default::default() });
        assert_eq!(summarize(&e, Dir::C2S), "SYNC ↑ send meta=6 MUC op=99");
        let odd =
            pb::Meta { id: Some(7), ns: Some(42), payload: Some(vec![9]), ..Default::default() };
        let e = env(0, &pb::CommSyncUl { meta: Some(odd), ..Default::default() });
        assert_eq!(summarize(&e, Dir::C2S), "SYNC ↑ send meta=7 ns=42 1 bytes");
    }

    #[test]
    fn invalid_meta_payload() {
        let bad =
            pb::Meta { ns: Some(1), payload: Some(vec![0x0a, 0x05, 0x01]), ..Default::default() };
        let s = summarize(&pull_answer(vec![bad]), Dir::S2C);
        assert!(
            s.starts_with("SYNC ↓ pull queue=z13 metas=1 [CHAT [undecodable: failed to decode"),
            "{s}"
        );
        assert!(s.ends_with("]]"), "{s}");
    }

    #[test]
    fn logout() {
        assert_eq!(
            summarize(&pb::MSync { command: Some(4), ..Default::default() }, Dir::C2S),
            "LOGOUT ↑"
        );
        assert_eq!(
            summarize(&env(4, &pb::Logout { status: ok(), ..Default::default() }), Dir::S2C),
            "LOGOUT ↓ OK"
        );
        let l = pb::Logout {
            reason: Some("user".into()),
            session_id: Some("s1".into()),
            ..Default::default()
        };
        assert_eq!(summarize(&env(4, &l), Dir::C2S), r#"LOGOUT ↑ reason="user" session=s1"#);
    }

    #[test]
    fn markers() {
        let ack = pb::CommSyncDl { status: ok(), meta_id: Some(1), ..Default::default() };
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        assert!(std::io::Write::write_all(&mut enc, &ack.encode_to_vec()).is_ok());
        let mut e = pb::MSync {
            command: Some(0),
            payload: enc.finish().ok(),
            compress_algorimth: Some(1),
            ..Default::default()
        };
        assert_eq!(summarize(&e, Dir::S2C), "SYNC ↓ ack meta=1 OK [zlib]");
        e.encrypt_type = vec![0, 3];
        let n = e.payload.as_ref().map_or(0, Vec::len);
        assert_eq!(
            summarize(&e, Dir::S2C),
            format!("SYNC ↓ encrypted ENCRYPT_AES_GCM {n} bytes [zlib]")
        );
        e.encrypt_type = vec![9];
        assert_eq!(summarize(&e, Dir::S2C), format!("SYNC ↓ encrypted ENCRYPT_9 {n} bytes [zlib]"));
        let e = pb::MSync {
            command: Some(0),
            payload: Some(vec![1, 2]),
            compress_algorimth: Some(2),
            ..Default::default()
        };
        assert_eq!(summarize(&e, Dir::C2S), "SYNC ↑ 2 bytes [compress_algorimth=2]");
    }

    #[test]
    fn versions_other_than_v1() {
        let mut e = pb::MSync { version: Some(0), command: Some(1), ..Default::default() };
        assert_eq!(summarize(&e, Dir::C2S), "UNREAD ↑");
        e.version = Some(1);
        assert_eq!(summarize(&e, Dir::C2S), "UNREAD ↑ [MSYNC_V2]");
        e.version = Some(7);
        assert_eq!(summarize(&e, Dir::C2S), "UNREAD ↑ [version=7]");
        e.version = Some(-2);
        e.compress_algorimth = Some(1);
        assert_eq!(summarize(&e, Dir::C2S), "UNREAD ↑ [zlib] [version=-2]");
    }

    #[test]
    fn raw_bodies() {
        let e = pb::MSync { command: Some(9), payload: Some(vec![1, 2, 3]), ..Default::default() };
        assert_eq!(summarize(&e, Dir::C2S), "COMMAND_9 ↑ 3 bytes");
        let e = pb::MSync { command: Some(-3), ..Default::default() };
        assert_eq!(summarize(&e, Dir::S2C), "COMMAND_-3 ↓ 0 bytes");
    }

    #[test]
    fn strings_are_escaped_and_cut() {
        let body = chat_body("a\nb", "c", vec![text("line1\nline2\t\"q\" \\ \u{7}")]);
        let s = summarize(&pull_answer(vec![meta(1, &body)]), Dir::S2C);
        assert_eq!(
            s,
            r#"SYNC ↓ pull queue=z13 metas=1 [CHAT a\nb→c TEXT "line1\nline2\t\"q\" \\ \u{7}"]"#
        );
        let long = "好".repeat(50);
        let s = summarize(
            &pull_answer(vec![meta(1, &chat_body("a", "b", vec![text(&long)]))]),
            Dir::S2C,
        );
        assert!(s.ends_with(&format!("TEXT \"{}…\"]", "好".repeat(40))), "{s}");
        let exact = "x".repeat(40);
        let s = summarize(
            &pull_answer(vec![meta(1, &chat_body("a", "b", vec![text(&exact)]))]),
            Dir::S2C,
        );
        assert!(s.ends_with(&format!("TEXT \"{exact}\"]")), "{s}");
        assert!(!s.contains('\n'));
        let s = summarize(
            &pull_answer(vec![meta(1, &chat_body("a", "b", vec![text("x\u{202e}y\u{2028}z")]))]),
            Dir::S2C,
        );
        assert!(s.ends_with(r#"TEXT "x\u{202e}y\u{2028}z"]"#), "{s}");
    }

    #[test]
    fn empty_jid_prints_a_dash() {
        let n = pb::CommNotice { queue: Some(pb::Jid::default()) };
        assert_eq!(summarize(&env(2, &n), Dir::S2C), "NOTICE ↓ queue=-");
    }

    #[test]
    fn undecodable_frames() {
        // A NOTICE whose payload is cut short: the command is still known.
        let e = pb::MSync {
            command: Some(2),
            payload: Some(vec![0x0a, 0x05, 0x01]),
            ..Default::default()
        };
        let s = summarize(&e, Dir::S2C);
        assert!(s.starts_with("NOTICE ↓ [undecodable: NOTICE payload: failed to decode"), "{s}");
        assert!(s.ends_with(']'));
        // The envelope itself is broken before any command field.
        let frame = [0x4a, 0x05, 0x01];
        let err = decode(&frame, Dir::C2S, &DecodeLimits::default())
            .err()
            .unwrap_or(DecodeError::Inflate(String::new()));
        let mut out = String::new();
        write_error_summary(&mut out, &frame, Dir::C2S, &err);
        assert!(out.starts_with("? ↑ [undecodable: envelope: failed to decode"), "{out}");
        let mut out = String::new();
        write_error_summary(&mut out, &[0x40, 0x03], Dir::S2C, &DecodeError::InflateTooLarge(16));
        assert_eq!(out, "PROVISION ↓ [undecodable: zlib: inflated payload exceeds 16 bytes]");
    }

    #[test]
    fn appends_to_the_callers_string() {
        let d = decode(
            &pb::MSync { command: Some(1), ..Default::default() }.encode_to_vec(),
            Dir::C2S,
            &DecodeLimits::default(),
        );
        let mut out = String::from("42 ");
        if let Ok(d) = d {
            write_summary(&mut out, &d, Dir::C2S, &RenderOpts::default());
        }
        assert_eq!(out, "42 UNREAD ↑");
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_one_line(bytes in proptest::collection::vec(any::<u8>(), 0..200), c2s in any::<bool>()) {
            let dir = if c2s { Dir::C2S } else { Dir::S2C };
            let mut out = String::new();
            match decode(&bytes, dir, &DecodeLimits::default()) {
                Ok(d) => write_summary(&mut out, &d, dir, &RenderOpts::default()),
                Err(e) => write_error_summary(&mut out, &bytes, dir, &e),
            }
            prop_assert!(!out.contains('\n') && !out.contains('\r'));
        }

        #[test]
        fn any_text_stays_one_line(t in ".{0,80}", name in ".{0,10}") {
            let body = chat_body(&name, "b", vec![text(&t)]);
            let s = summarize(&pull_answer(vec![meta(1, &body)]), Dir::S2C);
            prop_assert!(!s.chars().any(char::is_control), "{}", s);
        }
    }
}
