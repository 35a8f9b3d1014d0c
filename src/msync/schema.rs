//! The schema as a static table generated at build time from `proto/`, and a walker over
//! protobuf wire bytes guided by it.

include!(concat!(env!("OUT_DIR"), "/schema_table.rs"));

/// A field's wire-level kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Double,
    Float,
    Int64,
    Uint64,
    Int32,
    Fixed64,
    Fixed32,
    Bool,
    String,
    Bytes,
    Uint32,
    Sfixed32,
    Sfixed64,
    Sint32,
    Sint64,
    /// Index into [`ENUMS`].
    Enum(usize),
    /// Index into [`MESSAGES`].
    Message(usize),
}

#[derive(Debug)]
pub struct FieldDesc {
    pub number: u32,
    /// The `.proto` name (snake_case, with the schema's few camelCase exceptions).
    pub name: &'static str,
    /// The canonical protobuf-JSON name (lowerCamelCase).
    pub json_name: &'static str,
    pub kind: Kind,
    pub repeated: bool,
}

#[derive(Debug)]
pub struct MessageDesc {
    /// e.g. `easemob.pb.CommSyncDL`.
    pub full_name: &'static str,
    /// Sorted by field number.
    pub fields: &'static [FieldDesc],
}

#[derive(Debug)]
pub struct EnumDesc {
    pub full_name: &'static str,
    pub values: &'static [(i32, &'static str)],
}
