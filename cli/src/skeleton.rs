//! `--generate-cli-skeleton`: the JSON shape of an operation's request (to
//! fill in and pass back with `--cli-input-json`) or of its response, as the
//! aws CLI prints it, without calling the server.
//!
//! The shape comes from the proto's own descriptor, which the proto crate
//! embeds for gRPC reflection, so a member added to the API appears here
//! with no change to the CLI. Placeholder values follow botocore's argument
//! generator: `""` for strings, `0` for numbers, `true` for booleans,
//! `"1970-01-01T00:00:00"` for timestamps, one element in a list and one
//! `"KeyName"` entry in a map; where a message recurs inside itself
//! (`Configuration.configurations`) the inner one is `{}`. botocore puts
//! an enum's first value where sparkvc, whose enums travel as strings,
//! puts `""`.

use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorSet};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use std::collections::HashMap;

/// Which shape `--generate-cli-skeleton` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// The request, ready for `--cli-input-json`.
    Input,
    /// The response the command prints.
    Output,
}

/// A placeholder value, members in the proto's order.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    String,
    Integer,
    Float,
    Boolean,
    Timestamp,
    List(Box<Node>),
    Map(Box<Node>),
    Object(Vec<(String, Node)>),
}

impl serde::Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::String => s.serialize_str(""),
            Node::Integer => s.serialize_i64(0),
            Node::Float => s.serialize_f64(0.0),
            Node::Boolean => s.serialize_bool(true),
            Node::Timestamp => s.serialize_str("1970-01-01T00:00:00"),
            Node::List(element) => {
                let mut seq = s.serialize_seq(Some(1))?;
                seq.serialize_element(element)?;
                seq.end()
            }
            Node::Map(value) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("KeyName", value)?;
                map.end()
            }
            Node::Object(members) => {
                let mut map = s.serialize_map(Some(members.len()))?;
                for (name, node) in members {
                    map.serialize_entry(name, node)?;
                }
                map.end()
            }
        }
    }
}

/// Why a skeleton could not be made: the embedded descriptor and the CLI's
/// operation names disagree, which is a build defect, not a user error.
#[derive(Debug, thiserror::Error)]
pub enum SkeletonError {
    #[error("the embedded API descriptor does not decode: {0}")]
    Descriptor(#[from] prost::DecodeError),
    #[error("the API has no operation {0}")]
    UnknownOperation(String),
    #[error("the API descriptor has no message {0}")]
    UnknownMessage(String),
}

/// The messages and the service's operations of a descriptor set.
#[derive(Debug)]
pub struct Api {
    /// Fully qualified name (`.sparkvc.v1.JobRun`) → message.
    messages: HashMap<String, DescriptorProto>,
    /// Operation name → (input type, output type), fully qualified.
    operations: HashMap<String, (String, String)>,
}

impl Api {
    /// The sparkvc API, from the descriptor set built into the proto crate.
    pub fn sparkvc() -> Result<Self, SkeletonError> {
        Self::from_encoded(sparkvc_proto::FILE_DESCRIPTOR_SET)
    }

    pub fn from_encoded(bytes: &[u8]) -> Result<Self, SkeletonError> {
        let set = FileDescriptorSet::decode(bytes)?;
        let mut messages = HashMap::new();
        let mut operations = HashMap::new();
        for file in &set.file {
            let prefix = match file.package() {
                "" => String::new(),
                package => format!(".{package}"),
            };
            for message in &file.message_type {
                collect_messages(&prefix, message, &mut messages);
            }
            for service in &file.service {
                for method in &service.method {
                    operations.insert(
                        method.name().to_string(),
                        (
                            method.input_type().to_string(),
                            method.output_type().to_string(),
                        ),
                    );
                }
            }
        }
        Ok(Self {
            messages,
            operations,
        })
    }

    /// The skeleton of `operation`'s request or response.
    pub fn skeleton(&self, operation: &str, kind: Kind) -> Result<Node, SkeletonError> {
        let (input, output) = self
            .operations
            .get(operation)
            .ok_or_else(|| SkeletonError::UnknownOperation(operation.to_string()))?;
        let type_name = match kind {
            Kind::Input => input,
            Kind::Output => output,
        };
        self.message(type_name, &mut Vec::new())
    }

    fn message(&self, type_name: &str, stack: &mut Vec<String>) -> Result<Node, SkeletonError> {
        if type_name == ".google.protobuf.Timestamp" {
            return Ok(Node::Timestamp);
        }
        // As botocore: a message already on the way down is `{}` (its
        // generator counts the shape's own entry, pushed first, too).
        if stack.iter().any(|name| name == type_name) {
            return Ok(Node::Object(Vec::new()));
        }
        let message = self
            .messages
            .get(type_name)
            .ok_or_else(|| SkeletonError::UnknownMessage(type_name.to_string()))?;
        stack.push(type_name.to_string());
        let mut members = Vec::with_capacity(message.field.len());
        for field in &message.field {
            members.push((field.json_name().to_string(), self.field(field, stack)?));
        }
        stack.pop();
        Ok(Node::Object(members))
    }

    fn field(
        &self,
        field: &FieldDescriptorProto,
        stack: &mut Vec<String>,
    ) -> Result<Node, SkeletonError> {
        if field.label() == Label::Repeated {
            // A map field is a repeated nested `…Entry` message with the
            // `map_entry` option; its value is the entry's second field.
            if let Some(entry) = self.map_entry(field) {
                let value = entry
                    .field
                    .iter()
                    .find(|f| f.name() == "value")
                    .ok_or_else(|| SkeletonError::UnknownMessage(field.type_name().into()))?;
                return Ok(Node::Map(Box::new(self.single(value, stack)?)));
            }
            return Ok(Node::List(Box::new(self.single(field, stack)?)));
        }
        self.single(field, stack)
    }

    fn map_entry(&self, field: &FieldDescriptorProto) -> Option<&DescriptorProto> {
        let message = self.messages.get(field.type_name())?;
        message
            .options
            .as_ref()
            .is_some_and(|o| o.map_entry())
            .then_some(message)
    }

    fn single(
        &self,
        field: &FieldDescriptorProto,
        stack: &mut Vec<String>,
    ) -> Result<Node, SkeletonError> {
        Ok(match field.r#type() {
            Type::Message | Type::Group => return self.message(field.type_name(), stack),
            Type::Bool => Node::Boolean,
            Type::Double | Type::Float => Node::Float,
            Type::String | Type::Bytes | Type::Enum => Node::String,
            Type::Int32
            | Type::Int64
            | Type::Uint32
            | Type::Uint64
            | Type::Sint32
            | Type::Sint64
            | Type::Fixed32
            | Type::Fixed64
            | Type::Sfixed32
            | Type::Sfixed64 => Node::Integer,
        })
    }
}

fn collect_messages(
    prefix: &str,
    message: &DescriptorProto,
    into: &mut HashMap<String, DescriptorProto>,
) {
    let name = format!("{prefix}.{}", message.name());
    for nested in &message.nested_type {
        collect_messages(&name, nested, into);
    }
    into.insert(name, message.clone());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use sparkvc_proto::v1::*;

    fn json(operation: &str, kind: Kind) -> serde_json::Value {
        let node = Api::sparkvc().unwrap().skeleton(operation, kind).unwrap();
        serde_json::to_value(&node).unwrap()
    }

    /// The point of an input skeleton: filled in (or not), it is accepted
    /// by `--cli-input-json`, which rejects unknown members by name.
    fn reads_back<T: DeserializeOwned>(operation: &str) {
        let value = json(operation, Kind::Input);
        if let Err(err) = serde_json::from_value::<T>(value.clone()) {
            panic!("{operation}'s skeleton does not read back: {err}\n{value:#}");
        }
    }

    #[test]
    fn every_input_skeleton_reads_back_as_its_request() {
        reads_back::<CreateVirtualClusterRequest>("CreateVirtualCluster");
        reads_back::<DescribeVirtualClusterRequest>("DescribeVirtualCluster");
        reads_back::<ListVirtualClustersRequest>("ListVirtualClusters");
        reads_back::<UpdateVirtualClusterRequest>("UpdateVirtualCluster");
        reads_back::<DeleteVirtualClusterRequest>("DeleteVirtualCluster");
        reads_back::<StartJobRunRequest>("StartJobRun");
        reads_back::<DescribeJobRunRequest>("DescribeJobRun");
        reads_back::<ListJobRunsRequest>("ListJobRuns");
        reads_back::<CancelJobRunRequest>("CancelJobRun");
        reads_back::<GetJobRunLogsRequest>("GetJobRunLogs");
        reads_back::<GetJobRunAppUiUrlRequest>("GetJobRunAppUiUrl");
        reads_back::<CreateJobTemplateRequest>("CreateJobTemplate");
        reads_back::<DescribeJobTemplateRequest>("DescribeJobTemplate");
        reads_back::<ListJobTemplatesRequest>("ListJobTemplates");
        reads_back::<DeleteJobTemplateRequest>("DeleteJobTemplate");
        reads_back::<CreateSecurityConfigurationRequest>("CreateSecurityConfiguration");
        reads_back::<DescribeSecurityConfigurationRequest>("DescribeSecurityConfiguration");
        reads_back::<ListSecurityConfigurationsRequest>("ListSecurityConfigurations");
        reads_back::<DeleteSecurityConfigurationRequest>("DeleteSecurityConfiguration");
        reads_back::<TagResourceRequest>("TagResource");
        reads_back::<UntagResourceRequest>("UntagResource");
        reads_back::<ListTagsForResourceRequest>("ListTagsForResource");
    }

    #[test]
    fn start_job_run_has_awss_members_in_order_with_placeholders() {
        let node = Api::sparkvc()
            .unwrap()
            .skeleton("StartJobRun", Kind::Input)
            .unwrap();
        let Node::Object(members) = &node else {
            panic!("{node:?}")
        };
        let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(&names[..2], ["name", "virtualClusterId"], "{names:?}");
        for member in [
            "clientToken",
            "executionRoleArn",
            "releaseLabel",
            "jobDriver",
            "configurationOverrides",
            "tags",
            "jobTemplateId",
            "jobTemplateParameters",
            "retryPolicyConfiguration",
        ] {
            assert!(names.contains(&member), "{member} missing from {names:?}");
        }
        let value = serde_json::to_value(&node).unwrap();
        assert_eq!(value["tags"], serde_json::json!({"KeyName": ""}));
        assert_eq!(
            value["jobDriver"]["sparkSubmitJobDriver"]["entryPointArguments"],
            serde_json::json!([""])
        );
        assert_eq!(
            value["retryPolicyConfiguration"]["maxAttempts"],
            serde_json::json!(0)
        );
    }

    #[test]
    fn a_message_inside_itself_is_left_empty() {
        let value = json("StartJobRun", Kind::Input);
        let outer = &value["configurationOverrides"]["applicationConfiguration"][0];
        assert_eq!(outer["classification"], "");
        assert_eq!(outer["properties"], serde_json::json!({"KeyName": ""}));
        assert_eq!(outer["configurations"], serde_json::json!([{}]));
    }

    #[test]
    fn output_skeletons_show_timestamps_booleans_and_extensions() {
        let value = json("DescribeJobRun", Kind::Output);
        let run = &value["jobRun"];
        assert_eq!(run["createdAt"], "1970-01-01T00:00:00");
        assert_eq!(run["stateHistory"][0]["at"], "1970-01-01T00:00:00");
        let value = json("DescribeVirtualCluster", Kind::Output);
        assert_eq!(value["virtualCluster"]["securityConfigurationId"], "");
        let value = json("DescribeSecurityConfiguration", Kind::Output);
        let lake = &value["securityConfiguration"]["securityConfigurationData"]["authorizationConfiguration"]
            ["lakeFormationConfiguration"];
        assert_eq!(lake["authorizedSessionTagValue"], "");
    }

    #[test]
    fn an_unknown_operation_is_an_error_not_a_panic() {
        let err = Api::sparkvc()
            .unwrap()
            .skeleton("NoSuchOperation", Kind::Input)
            .unwrap_err();
        assert!(err.to_string().contains("NoSuchOperation"), "{err}");
    }
}
