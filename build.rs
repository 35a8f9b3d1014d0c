//! Compiles `proto/` without a system `protoc`: protox parses the schema into a descriptor set,
//! prost-build generates the typed messages from it, and a static schema table is emitted beside
//! them for the schema-driven walker that renders messages (it keeps unknown fields and enum
//! values, which generated types would drop).

use std::fmt::Write as _;
use std::path::PathBuf;

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorSet};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["msync.proto"], ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("schema_table.rs"), schema_table(&fds)?)?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}

struct Collected {
    messages: Vec<(String, DescriptorProto)>,
    enums: Vec<(String, EnumDescriptorProto)>,
}

fn collect_msg(prefix: &str, m: &DescriptorProto, c: &mut Collected) {
    let full = format!("{prefix}.{}", m.name());
    c.messages.push((full.clone(), m.clone()));
    for e in &m.enum_type {
        c.enums.push((format!("{full}.{}", e.name()), e.clone()));
    }
    for n in &m.nested_type {
        collect_msg(&full, n, c);
    }
}

fn json_name(name: &str) -> String {
    // protobuf's lowerCamelCase rule: drop underscores, upper-case the letter after each.
    let mut s = String::new();
    let mut up = false;
    for ch in name.chars() {
        if ch == '_' {
            up = true;
        } else if up {
            s.extend(ch.to_uppercase());
            up = false;
        } else {
            s.push(ch);
        }
    }
    s
}

fn schema_table(fds: &FileDescriptorSet) -> Result<String, Box<dyn std::error::Error>> {
    let mut c = Collected { messages: Vec::new(), enums: Vec::new() };
    for f in &fds.file {
        let pkg = format!(".{}", f.package());
        for m in &f.message_type {
            collect_msg(&pkg, m, &mut c);
        }
        for e in &f.enum_type {
            c.enums.push((format!("{pkg}.{}", e.name()), e.clone()));
        }
    }
    let msg_index = |n: &str| c.messages.iter().position(|(full, _)| full == n);
    let enum_index = |n: &str| c.enums.iter().position(|(full, _)| full == n);
    let mut s = String::new();
    writeln!(s, "pub static ENUMS: &[EnumDesc] = &[")?;
    for (full, e) in &c.enums {
        writeln!(s, "    EnumDesc {{ full_name: {:?}, values: &[", &full[1..])?;
        for v in &e.value {
            writeln!(s, "        ({}, {:?}),", v.number(), v.name())?;
        }
        writeln!(s, "    ] }},")?;
    }
    writeln!(s, "];")?;
    writeln!(s, "pub static MESSAGES: &[MessageDesc] = &[")?;
    for (full, m) in &c.messages {
        writeln!(s, "    MessageDesc {{ full_name: {:?}, fields: &[", &full[1..])?;
        let mut fields: Vec<_> = m.field.iter().collect();
        fields.sort_by_key(|f| f.number());
        for f in fields {
            let kind = match f.r#type() {
                Type::Double => "Double".to_string(),
                Type::Float => "Float".to_string(),
                Type::Int64 => "Int64".to_string(),
                Type::Uint64 => "Uint64".to_string(),
                Type::Int32 => "Int32".to_string(),
                Type::Fixed64 => "Fixed64".to_string(),
                Type::Fixed32 => "Fixed32".to_string(),
                Type::Bool => "Bool".to_string(),
                Type::String => "String".to_string(),
                Type::Bytes => "Bytes".to_string(),
                Type::Uint32 => "Uint32".to_string(),
                Type::Sfixed32 => "Sfixed32".to_string(),
                Type::Sfixed64 => "Sfixed64".to_string(),
                Type::Sint32 => "Sint32".to_string(),
                Type::Sint64 => "Sint64".to_string(),
                Type::Enum => format!(
                    "Enum({})",
                    enum_index(f.type_name())
                        .ok_or_else(|| format!("no enum {}", f.type_name()))?
                ),
                Type::Message | Type::Group => format!(
                    "Message({})",
                    msg_index(f.type_name())
                        .ok_or_else(|| format!("no message {}", f.type_name()))?
                ),
            };
            writeln!(
                s,
                "        FieldDesc {{ number: {}, name: {:?}, json_name: {:?}, kind: Kind::{}, repeated: {} }},",
                f.number(),
                f.name(),
                json_name(f.name()),
                kind,
                f.label() == Label::Repeated
            )?;
        }
        writeln!(s, "    ] }},")?;
    }
    writeln!(s, "];")?;
    Ok(s)
}
