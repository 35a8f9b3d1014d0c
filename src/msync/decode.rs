//! Decoding of one MSync message: envelope, command dispatch by direction, zlib inflation of
//! compressed payloads (bounded), and decoding of every `Meta.payload` by namespace.

use super::pb;

/// Limits that keep decoding bounded whatever the input claims.
#[derive(Clone, Copy, Debug)]
pub struct DecodeLimits {
    /// Largest inflated size of a zlib-compressed payload.
    pub max_inflated: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits { max_inflated: 16 << 20 }
    }
}

/// `MSync.Command`, tolerant of values the schema does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    Sync,
    Unread,
    Notice,
    Provision,
    Logout,
    Unknown(i32),
}

impl Command {
    pub fn from_i32(v: i32) -> Command {
        match v {
            0 => Command::Sync,
            1 => Command::Unread,
            2 => Command::Notice,
            3 => Command::Provision,
            4 => Command::Logout,
            n => Command::Unknown(n),
        }
    }
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        match self {
            Command::Sync => "SYNC".into(),
            Command::Unread => "UNREAD".into(),
            Command::Notice => "NOTICE".into(),
            Command::Provision => "PROVISION".into(),
            Command::Logout => "LOGOUT".into(),
            Command::Unknown(n) => format!("COMMAND_{n}").into(),
        }
    }
}

/// The command message carried in `MSync.payload`, typed by command and direction.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    Provision(pb::Provision),
    UnreadUl(pb::CommUnreadUl),
    UnreadDl(pb::CommUnreadDl),
    Notice(pb::CommNotice),
    SyncUl(pb::CommSyncUl),
    SyncDl(pb::CommSyncDl),
    Logout(pb::Logout),
    /// `encrypt_type` on the envelope says the payload is encrypted; not decodable.
    Encrypted,
    /// A command the schema does not know, or one that never travels in this direction (e.g. a
    /// NOTICE from the client): the payload bytes are kept as they are.
    Raw(Vec<u8>),
}

/// A decoded `Meta.payload`, typed by `Meta.ns`.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaBody {
    Chat(pb::MessageBody),
    Muc(pb::MucBody),
    Roster(pb::RosterBody),
    Statistic(pb::StatisticsBody),
    Conference(pb::ConferenceBody),
    /// NOTIFY, QUERY and unknown namespaces: bodies not in the schema.
    Raw,
    /// No payload field.
    Empty,
    /// The payload did not decode as the namespace's type; the reason.
    Invalid(String),
}

/// One decoded MSync message.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// The envelope. Its `payload` is left as on the wire (possibly compressed).
    pub env: pb::MSync,
    pub command: Command,
    pub body: Body,
    /// `compress_algorimth = 1`: the payload was zlib-inflated from `wire_payload_len` bytes.
    pub zlib: bool,
    /// Decoded `Meta.payload` of each meta the body carries, in order (the UL `meta` first, then
    /// DL `metas`).
    pub meta_bodies: Vec<MetaBody>,
}

/// Why a frame could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("envelope: {0}")]
    Envelope(String),
    #[error("{command} payload: {reason}")]
    Payload { command: String, reason: String },
    #[error("zlib: {0}")]
    Inflate(String),
    #[error("zlib: inflated payload exceeds {0} bytes")]
    InflateTooLarge(usize),
}

/// Placeholder until the decoder lands.
pub fn plausible_envelope(frame: &[u8]) -> bool {
    !frame.is_empty()
}

/// Placeholder until the decoder lands.
pub fn decode(
    _frame: &[u8],
    _dir: crate::net::Dir,
    _l: &DecodeLimits,
) -> Result<Decoded, DecodeError> {
    Err(DecodeError::Envelope("unimplemented".into()))
}
