//! Compiles `sparkvc/v1/*.proto` with protox (pure Rust, so no `protoc` is
//! needed on the build machine) and generates prost messages, tonic stubs and
//! serde impls that read and write the AWS JSON shapes the CLI speaks, and
//! the REST route table from the `(http)` options of the rpcs (`rest.proto`).

use protox::prost_reflect::prost_types::{
    DescriptorProto, FieldDescriptorProto,
    field_descriptor_proto::{Label, Type},
};
use protox::prost_reflect::{DescriptorPool, Kind, MessageDescriptor, ReflectMessage, Value};
use std::fmt::Write as _;
use std::{env, error::Error, path::PathBuf};

const PROTO: &str = "sparkvc/v1/emr_containers.proto";
const PACKAGE: &str = ".sparkvc.v1";

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=sparkvc");
    let mut compiler = protox::Compiler::new(["."])?;
    compiler.include_imports(true).open_file(PROTO)?;
    let fds = compiler.file_descriptor_set();
    let out = PathBuf::from(env::var("OUT_DIR")?);
    // Served by the gRPC reflection service so that `grpcurl` works; the
    // compiler's own encoding keeps the custom options.
    std::fs::write(
        out.join("sparkvc_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    std::fs::write(
        out.join("rest_routes.rs"),
        rest_routes(&compiler.descriptor_pool())?,
    )?;

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

/// The REST route table and the dispatcher that calls the operation it
/// names, generated from each rpc's `(http)` option. Every rpc must have one.
fn rest_routes(pool: &DescriptorPool) -> Result<String, Box<dyn Error>> {
    let service = pool
        .get_service_by_name("sparkvc.v1.EmrContainers")
        .ok_or("no service sparkvc.v1.EmrContainers")?;
    let http = pool
        .get_extension_by_name("sparkvc.v1.http")
        .ok_or("no extension sparkvc.v1.http")?;
    let unimplemented = pool
        .get_extension_by_name("sparkvc.v1.unimplemented")
        .ok_or("no extension sparkvc.v1.unimplemented")?;
    let mut routes = String::new();
    let mut arms = String::new();
    let mut decode_arms = String::new();
    for method in service.methods() {
        let name = method.name();
        let options = method.options();
        if !options.has_extension(&http) {
            return Err(format!(
                "rpc {name} has no (http) option: every operation needs a REST route"
            )
            .into());
        }
        let route = options.get_extension(&http);
        let (verb, path) = (text(&route, "method")?, text(&route, "path")?);
        let input = method.input();
        let mut members = String::new();
        for field in input.fields() {
            let kind = match field.kind() {
                _ if field.is_map() => "Structure",
                Kind::String => "String",
                Kind::Int32 | Kind::Int64 | Kind::Uint32 | Kind::Uint64 => "Integer",
                Kind::Bool => "Boolean",
                Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => "Timestamp",
                Kind::Message(_) => "Structure",
                other => {
                    return Err(format!(
                        "{name}: member {} has kind {other:?}, which REST does not carry",
                        field.name()
                    )
                    .into());
                }
            };
            let label = path.contains(&format!("{{{}}}", field.json_name()));
            if !label && matches!(verb.as_str(), "GET" | "DELETE") && kind == "Structure" {
                return Err(format!(
                    "{name} is a {verb}: member {} cannot travel in the query string",
                    field.json_name()
                )
                .into());
            }
            write!(
                members,
                "Member {{ name: {:?}, kind: Kind::{kind}, list: {} }}, ",
                field.json_name(),
                field.is_list()
            )?;
        }
        let (lists, maps) = collections(&method.output());
        writeln!(
            routes,
            "    Route {{ operation: {name:?}, method: {verb:?}, path: {path:?}, members: &[{members}], lists: &{lists:?}, maps: &{maps:?} }},"
        )?;
        writeln!(
            decode_arms,
            "        {name:?} => decode::<crate::v1::{input}>({name:?}, input).map(drop),",
            input = input.name(),
        )?;
        writeln!(
            arms,
            "        {name:?} => {{\n            let request: crate::v1::{input} = decode({name:?}, input)?;\n            let response = service.{snake}(tonic::Request::from_parts(Default::default(), extensions, request)).await?;\n            encode(response.get_ref())\n        }}",
            input = input.name(),
            snake = snake(name),
        )?;
    }
    let mut stubs = String::new();
    if let Value::List(list) = service.options().get_extension(&unimplemented).as_ref() {
        for entry in list {
            writeln!(
                stubs,
                "    Unimplemented {{ operation: {:?}, method: {:?}, path: {:?} }},",
                text(entry, "operation")?,
                text(entry, "method")?,
                text(entry, "path")?
            )?;
        }
    }
    Ok(format!(
        "/// Every operation's REST route (generated by build.rs from the rpcs' `(http)` options).\n\
         pub static ROUTES: &[Route] = &[\n{routes}];\n\n\
         /// The AWS operations sparkvc does not implement, with their routes.\n\
         pub static UNIMPLEMENTED: &[Unimplemented] = &[\n{stubs}];\n\n\
         /// Calls `operation` of `service` with the request that `input` (the\n\
         /// request's JSON shape) decodes to, and gives its response's JSON shape.\n\
         pub async fn dispatch<S: crate::EmrContainers>(\n    service: &S,\n    operation: &str,\n    input: serde_json::Value,\n    extensions: tonic::Extensions,\n) -> Result<serde_json::Value, tonic::Status> {{\n    match operation {{\n{arms}        other => Err(tonic::Status::unimplemented(format!(\"no operation {{other}}\"))),\n    }}\n}}\n\n\
         /// Decodes `input` as `operation`'s request and drops it: what [`dispatch`] checks before it calls.\n\
         pub fn decode_only(operation: &str, input: serde_json::Value) -> Result<(), tonic::Status> {{\n    match operation {{\n{decode_arms}        other => Err(tonic::Status::unimplemented(format!(\"no operation {{other}}\"))),\n    }}\n}}\n"
    ))
}

/// The string field `name` of an option message.
fn text(value: &Value, name: &str) -> Result<String, Box<dyn Error>> {
    let Value::Message(message) = value else {
        return Err(format!("option is not a message: {value:?}").into());
    };
    match message.get_field_by_name(name).as_deref() {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(format!("option {} has no {name}", message.descriptor().name()).into()),
    }
}

/// The top-level lists and maps of a response: AWS sends them empty rather
/// than leaving them out, and clients index them without checking.
fn collections(output: &MessageDescriptor) -> (Vec<String>, Vec<String>) {
    let names = |keep: fn(&protox::prost_reflect::FieldDescriptor) -> bool| {
        output
            .fields()
            .filter(keep)
            .map(|f| f.json_name().to_string())
            .collect()
    };
    (names(|f| f.is_list()), names(|f| f.is_map()))
}

/// `GetJobRunAppUiUrl` -> `get_job_run_app_ui_url`, as tonic names methods.
fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
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
