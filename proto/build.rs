//! Compiles `sparkvc/v1/*.proto` with protox (pure Rust, so no `protoc` is
//! needed on the build machine) and generates prost messages, tonic stubs and
//! serde impls that read and write the AWS JSON shapes the CLI speaks.

use prost::Message;
use protox::prost_reflect::prost_types::{
    DescriptorProto, FieldDescriptorProto,
    field_descriptor_proto::{Label, Type},
};
use std::{env, error::Error, path::PathBuf};

const PROTO: &str = "sparkvc/v1/emr_containers.proto";
const PACKAGE: &str = ".sparkvc.v1";

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=sparkvc");
    let fds = protox::compile([PROTO], ["."])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    // Served by the gRPC reflection service so that `grpcurl` works.
    std::fs::write(out.join("sparkvc_descriptor.bin"), fds.encode_to_vec())?;

    let mut builder = tonic_prost_build::configure()
        // Undecodable requests are ValidationExceptions (see src/codec.rs).
        .codec_path("crate::codec::AwsCodec")
        // Ordered maps make the encoding of a request deterministic, which the
        // clientToken fingerprint relies on.
        .btree_map(".")
        .type_attribute(
            PACKAGE,
            "#[derive(serde::Serialize, serde::Deserialize)] \
             #[serde(rename_all = \"camelCase\", default, deny_unknown_fields)]",
        );
    for file in &fds.file {
        for message in &file.message_type {
            builder = add_field_attributes(builder, message);
        }
    }
    builder.compile_fds(fds)?;
    Ok(())
}

/// Absent members are left out of JSON output, as the aws CLI does, and a few
/// members keep AWS's irregular capitalisation (`persistentAppUI`).
fn add_field_attributes(
    mut builder: tonic_prost_build::Builder,
    message: &DescriptorProto,
) -> tonic_prost_build::Builder {
    for field in &message.field {
        let path = format!("{PACKAGE}.{}.{}", message.name(), field.name());
        let mut attrs = vec![skip_if(field).to_string()];
        if field.type_name() == ".google.protobuf.Timestamp" {
            attrs.push("with = \"crate::json::timestamp\"".to_string());
        }
        if field.json_name() != lower_camel(field.name()) {
            attrs.push(format!("rename = \"{}\"", field.json_name()));
        }
        let attrs: Vec<_> = attrs.into_iter().filter(|a| !a.is_empty()).collect();
        if !attrs.is_empty() {
            builder = builder.field_attribute(path, format!("#[serde({})]", attrs.join(", ")));
        }
    }
    builder
}

fn skip_if(field: &FieldDescriptorProto) -> &'static str {
    let repeated = field.label() == Label::Repeated;
    match field.r#type() {
        Type::Message if repeated && field.type_name().ends_with("Entry") => {
            "skip_serializing_if = \"std::collections::BTreeMap::is_empty\""
        }
        _ if repeated => "skip_serializing_if = \"Vec::is_empty\"",
        Type::Message => "skip_serializing_if = \"Option::is_none\"",
        _ if field.proto3_optional() => "skip_serializing_if = \"Option::is_none\"",
        Type::String => "skip_serializing_if = \"String::is_empty\"",
        _ => "",
    }
}

fn lower_camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}
