//! The REST routes and shapes, checked against the AWS service model that
//! the pinned botocore ships (`emr-containers` 2020-10-01, in
//! `deploy/local/requirements.txt`): every operation of the model has a
//! route here with its method and path, or is listed as unimplemented with
//! that route; every member of every input and output shape, at any depth,
//! has a field of the same JSON name and kind in the proto. The proto is the
//! one source of both protocols, so this is the test that keeps it honest
//! when AWS's model grows.

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};
use serde_json::Value;
use sparkvc_proto::rest::{ROUTES, UNIMPLEMENTED};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

/// The service model botocore loads for `emr-containers`.
fn botocore_model() -> Value {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local/.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: start the local environment first (deploy/local/up, which `make test` runs)",
        python.display()
    );
    let out = Command::new(&python)
        .args([
            "-c",
            "import json, sys\n\
             from botocore.loaders import Loader\n\
             json.dump(Loader().load_service_model('emr-containers', 'service-2'), sys.stdout)",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The proto's messages by full name (`.sparkvc.v1.JobRun`), nested ones
/// (map entries) included.
fn messages(set: &FileDescriptorSet) -> HashMap<String, &DescriptorProto> {
    fn add<'a>(
        prefix: &str,
        message: &'a DescriptorProto,
        out: &mut HashMap<String, &'a DescriptorProto>,
    ) {
        let name = format!("{prefix}.{}", message.name());
        for nested in &message.nested_type {
            add(&name, nested, out);
        }
        out.insert(name, message);
    }
    let mut out = HashMap::new();
    for file in &set.file {
        for message in &file.message_type {
            add(&format!(".{}", file.package()), message, &mut out);
        }
    }
    out
}

struct Checker<'a> {
    shapes: &'a serde_json::Map<String, Value>,
    messages: HashMap<String, &'a DescriptorProto>,
    checked: BTreeSet<(String, String)>,
    problems: Vec<String>,
}

impl Checker<'_> {
    /// The model's structure `shape` against the proto message `message`.
    fn structure(&mut self, shape: &str, message: &str) {
        if !self
            .checked
            .insert((shape.to_string(), message.to_string()))
        {
            return;
        }
        let Some(proto) = self.messages.get(message).copied() else {
            self.problems
                .push(format!("{shape}: no proto message {message}"));
            return;
        };
        let members = self.shapes[shape]["members"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (name, member) in &members {
            let at = format!("{shape}.{name}");
            let Some(field) = proto.field.iter().find(|f| f.json_name() == name) else {
                self.problems.push(format!(
                    "{at}: {message} has no field with JSON name {name}"
                ));
                continue;
            };
            let target = member["shape"].as_str().unwrap();
            let repeated = field.label() == Label::Repeated;
            match self.shapes[target]["type"].as_str().unwrap() {
                "list" => {
                    if !repeated {
                        self.problems.push(format!(
                            "{at}: a list, but {message}.{} is not repeated",
                            field.name()
                        ));
                        continue;
                    }
                    let element = self.shapes[target]["member"]["shape"].as_str().unwrap();
                    self.value(&at, element, field.r#type(), field.type_name());
                }
                "map" => {
                    let entry = self.messages.get(field.type_name()).copied();
                    let is_map = repeated
                        && entry.is_some_and(|e| e.options.as_ref().is_some_and(|o| o.map_entry()));
                    if !is_map {
                        self.problems.push(format!(
                            "{at}: a map, but {message}.{} is not a proto map",
                            field.name()
                        ));
                        continue;
                    }
                    let value = entry
                        .unwrap()
                        .field
                        .iter()
                        .find(|f| f.name() == "value")
                        .unwrap();
                    let element = self.shapes[target]["value"]["shape"].as_str().unwrap();
                    self.value(&at, element, value.r#type(), value.type_name());
                }
                _ if repeated => self.problems.push(format!(
                    "{at}: a single value, but {message}.{} is repeated",
                    field.name()
                )),
                _ => self.value(&at, target, field.r#type(), field.type_name()),
            }
        }
    }

    /// One value of the model's `shape` against a proto field's type.
    fn value(&mut self, at: &str, shape: &str, kind: Type, type_name: &str) {
        let fits = match self.shapes[shape]["type"].as_str().unwrap() {
            "structure" => {
                if kind == Type::Message {
                    self.structure(shape, type_name);
                    true
                } else {
                    false
                }
            }
            "string" => matches!(kind, Type::String | Type::Enum),
            "integer" | "long" => matches!(
                kind,
                Type::Int32 | Type::Int64 | Type::Uint32 | Type::Uint64
            ),
            "boolean" => kind == Type::Bool,
            "timestamp" => type_name == ".google.protobuf.Timestamp",
            // Nested collections: none in this model; say so if one appears.
            other => {
                self.problems.push(format!(
                    "{at}: element type {other} is not handled by this check"
                ));
                return;
            }
        };
        if !fits {
            self.problems.push(format!(
                "{at}: model type {shape} does not fit proto type {kind:?} {type_name}"
            ));
        }
    }
}

/// The model's request URI with each label renamed from its wire name to
/// the member it carries (`/jobtemplates/{templateId}` → `{id}`), as the
/// proto's routes write labels.
fn path_with_member_labels(operation: &Value, input: &Value) -> String {
    let mut path = operation["http"]["requestUri"]
        .as_str()
        .unwrap()
        .to_string();
    if let Some(members) = input["members"].as_object() {
        for (name, member) in members {
            if member["location"] == "uri" {
                let wire = member["locationName"].as_str().unwrap();
                path = path.replace(&format!("{{{wire}}}"), &format!("{{{name}}}"));
            }
        }
    }
    path
}

/// Labels reduced to `{}`, to compare routes whose member names differ.
fn without_label_names(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_operation_and_member_of_the_aws_model_has_a_route_and_a_field() {
    let model = botocore_model();
    assert_eq!(model["metadata"]["protocol"], "rest-json");
    let shapes = model["shapes"].as_object().unwrap();
    let set = FileDescriptorSet::decode(sparkvc_proto::FILE_DESCRIPTOR_SET).unwrap();
    let service = set
        .file
        .iter()
        .flat_map(|f| &f.service)
        .find(|s| s.name() == "EmrContainers")
        .unwrap();
    let mut checker = Checker {
        shapes,
        messages: messages(&set),
        checked: BTreeSet::new(),
        problems: Vec::new(),
    };
    let operations = model["operations"].as_object().unwrap();
    assert!(
        operations.len() >= 25,
        "the model lists {} operations",
        operations.len()
    );
    for (name, operation) in operations {
        let method = operation["http"]["method"].as_str().unwrap();
        let input_shape = operation["input"]["shape"].as_str().unwrap();
        let input = &shapes[input_shape];
        if let Some(stub) = UNIMPLEMENTED.iter().find(|u| u.operation == name) {
            let want = without_label_names(operation["http"]["requestUri"].as_str().unwrap());
            if stub.method != method || without_label_names(stub.path) != want {
                checker.problems.push(format!(
                    "{name}: unimplemented at {} {}, but the model routes it at {method} {want}",
                    stub.method, stub.path
                ));
            }
            continue;
        }
        let Some(route) = ROUTES.iter().find(|r| r.operation == name) else {
            checker
                .problems
                .push(format!("{name}: no route and not listed as unimplemented"));
            continue;
        };
        let path = path_with_member_labels(operation, input);
        if route.method != method || route.path != path {
            checker.problems.push(format!(
                "{name}: routed at {} {}, but the model has {method} {path}",
                route.method, route.path
            ));
        }
        if let Some(code) = operation["http"]["responseCode"].as_u64() {
            assert_eq!(code, 200, "{name}: sparkvc answers every success with 200");
        }
        for (member, spec) in input["members"].as_object().into_iter().flatten() {
            if spec["location"] == "querystring" {
                let wire = spec["locationName"].as_str().unwrap();
                if wire != member || !route.members.iter().any(|m| m.name == wire) {
                    checker.problems.push(format!(
                        "{name}: query parameter {wire} (member {member}) is not read"
                    ));
                }
            }
        }
        let rpc = service
            .method
            .iter()
            .find(|m| m.name() == name)
            .unwrap_or_else(|| panic!("a route for {name} but no rpc"));
        checker.structure(input_shape, rpc.input_type());
        if let Some(output) = operation["output"]["shape"].as_str() {
            checker.structure(output, rpc.output_type());
        }
    }
    // sparkvc's own operations may exist only under /sparkvc/, where AWS
    // can never add a route that collides with them.
    for route in ROUTES {
        if !operations.contains_key(route.operation) {
            assert!(
                route.path.starts_with("/sparkvc/"),
                "{} is not an AWS operation, so its route must be under /sparkvc/, not {}",
                route.operation,
                route.path
            );
        }
    }
    assert!(
        checker.problems.is_empty(),
        "the proto does not cover the AWS model:\n  {}",
        checker.problems.join("\n  ")
    );
    // The walk really went deep: the nested shapes of a job run were seen.
    for nested in [
        "JobDriver",
        "SparkSubmitJobDriver",
        "ConfigurationOverrides",
        "ContainerInfo",
    ] {
        assert!(
            checker.checked.iter().any(|(shape, _)| shape == nested),
            "{nested} was never compared"
        );
    }
}
