//! Building proto requests from flags and `--cli-input-json`.
//!
//! A request starts as the `--cli-input-json` object (or `{}`); every flag
//! given on the command line then replaces the member of the same name; the
//! result is deserialised into the proto request, so unknown members in
//! `--cli-input-json` are rejected by name. Flag values are parsed into their
//! own member type first, so their errors name the flag.

use crate::args::{self, CliInput, Paging};
use crate::error::CliError;
use crate::input;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};
use sparkvc_proto::v1::{
    CancelJobRunRequest, ConfigurationOverrides, ContainerProvider, CreateJobTemplateRequest,
    CreateSecurityConfigurationRequest, CreateVirtualClusterRequest, DeleteJobTemplateRequest,
    DeleteSecurityConfigurationRequest, DeleteVirtualClusterRequest, DescribeJobRunRequest,
    DescribeJobTemplateRequest, DescribeSecurityConfigurationRequest,
    DescribeVirtualClusterRequest, GetJobRunAppUiUrlRequest, GetJobRunLogsRequest, JobDriver,
    JobTemplateData, ListJobRunsRequest, ListJobTemplatesRequest,
    ListSecurityConfigurationsRequest, ListTagsForResourceRequest, ListVirtualClustersRequest,
    RetryPolicyConfiguration, SchedulerConfiguration, SecurityConfigurationData,
    StartJobRunRequest, TagResourceRequest, UntagResourceRequest, UpdateVirtualClusterRequest,
};

/// The members of a request being assembled, keyed by AWS member name.
#[derive(Debug, Default)]
pub struct Members(Map<String, Value>);

impl Members {
    /// Starts from `--cli-input-json`, if given.
    pub fn new(input: &CliInput) -> Result<Self, CliError> {
        match &input.cli_input_json {
            None => Ok(Self::default()),
            Some(raw) => input::parse_cli_input(raw).map(Self),
        }
    }

    fn set(&mut self, member: &str, value: Value) -> &mut Self {
        self.0.insert(member.to_string(), value);
        self
    }

    /// A plain string flag.
    pub fn string(&mut self, member: &str, value: Option<&String>) -> &mut Self {
        if let Some(value) = value {
            self.set(member, Value::String(value.clone()));
        }
        self
    }

    /// A structure flag of member type `T` (JSON, `file://` or shorthand).
    pub fn structure<T: DeserializeOwned + Serialize>(
        &mut self,
        flag: &str,
        member: &str,
        value: Option<&String>,
    ) -> Result<&mut Self, CliError> {
        if let Some(raw) = value {
            let parsed: T = input::parse_structure(flag, raw)?;
            let json =
                serde_json::to_value(&parsed).map_err(|e| CliError::param(flag, e.to_string()))?;
            self.set(member, json);
        }
        Ok(self)
    }

    /// A map-of-strings flag such as `--tags`.
    pub fn string_map(
        &mut self,
        flag: &str,
        member: &str,
        values: &[String],
    ) -> Result<&mut Self, CliError> {
        if !values.is_empty() {
            let map = input::parse_string_map(flag, values)?;
            let json = map
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            self.set(member, Value::Object(json));
        }
        Ok(self)
    }

    /// A list-of-strings flag such as `--states`.
    pub fn string_list(
        &mut self,
        flag: &str,
        member: &str,
        values: &[String],
    ) -> Result<&mut Self, CliError> {
        if !values.is_empty() {
            let list = input::parse_string_list(flag, values)?;
            self.set(
                member,
                Value::Array(list.into_iter().map(Value::String).collect()),
            );
        }
        Ok(self)
    }

    /// A timestamp flag such as `--created-after`.
    pub fn timestamp(
        &mut self,
        flag: &str,
        member: &str,
        value: Option<&String>,
    ) -> Result<&mut Self, CliError> {
        if let Some(raw) = value {
            let text = input::parse_timestamp(flag, raw)?;
            self.set(member, Value::String(text));
        }
        Ok(self)
    }

    /// An optional boolean (a `--flag`/`--no-flag` pair).
    pub fn boolean(&mut self, member: &str, value: Option<bool>) -> &mut Self {
        if let Some(value) = value {
            self.set(member, Value::Bool(value));
        }
        self
    }

    pub fn integer(&mut self, member: &str, value: Option<i32>) -> &mut Self {
        if let Some(value) = value {
            self.set(member, Value::from(value));
        }
        self
    }

    /// The `--max-results` flag of a list command.
    pub fn paging(&mut self, paging: &Paging) -> &mut Self {
        if let Some(max) = paging.max_results {
            self.set("maxResults", Value::from(max));
        }
        self
    }

    /// Builds the request, then checks the required members, given as
    /// `(member, flag)`. Shape errors can only come from `--cli-input-json`:
    /// flag values were checked as they were added.
    pub fn finish<R: DeserializeOwned>(self, required: &[(&str, &str)]) -> Result<R, CliError> {
        let missing: Vec<String> = required
            .iter()
            .filter(|(member, _)| is_absent(self.0.get(*member)))
            .map(|(_, flag)| flag.to_string())
            .collect();
        let request = serde_json::from_value(Value::Object(self.0))
            .map_err(|e| CliError::param("--cli-input-json", e.to_string()))?;
        if !missing.is_empty() {
            return Err(CliError::MissingArguments(missing));
        }
        Ok(request)
    }
}

fn is_absent(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(items)) => items.is_empty(),
        Some(Value::Object(map)) => map.is_empty(),
        Some(_) => false,
    }
}

/// A new idempotency token: a random UUID (version 4) in its usual form.
pub fn new_client_token() -> String {
    let bits: u128 = rand::random();
    // Set the version (4) and variant (10xx) bits.
    let bits = (bits & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn or_new_token(token: &mut String) {
    if token.is_empty() {
        *token = new_client_token();
    }
}

pub fn create_virtual_cluster(
    a: &args::CreateVirtualCluster,
) -> Result<CreateVirtualClusterRequest, CliError> {
    let mut m = Members::new(&a.input)?;
    m.string("name", a.name.as_ref())
        .string("clientToken", a.client_token.as_ref())
        .string(
            "securityConfigurationId",
            a.security_configuration_id.as_ref(),
        )
        .boolean(
            "sessionEnabled",
            args::flag_pair(a.session_enabled, a.no_session_enabled),
        );
    m.structure::<ContainerProvider>(
        "--container-provider",
        "containerProvider",
        a.container_provider.as_ref(),
    )?
    .string_map("--tags", "tags", &a.tags)?
    .structure::<SchedulerConfiguration>(
        "--scheduler-configuration",
        "schedulerConfiguration",
        a.scheduler_configuration.as_ref(),
    )?;
    let mut req: CreateVirtualClusterRequest = m.finish(&[
        ("name", "--name"),
        ("containerProvider", "--container-provider"),
    ])?;
    or_new_token(&mut req.client_token);
    Ok(req)
}

pub fn describe_virtual_cluster(
    a: &args::IdOnly,
) -> Result<DescribeVirtualClusterRequest, CliError> {
    by_id(a)
}

pub fn delete_virtual_cluster(a: &args::IdOnly) -> Result<DeleteVirtualClusterRequest, CliError> {
    by_id(a)
}

pub fn describe_job_template(a: &args::IdOnly) -> Result<DescribeJobTemplateRequest, CliError> {
    by_id(a)
}

pub fn delete_job_template(a: &args::IdOnly) -> Result<DeleteJobTemplateRequest, CliError> {
    by_id(a)
}

pub fn describe_security_configuration(
    a: &args::IdOnly,
) -> Result<DescribeSecurityConfigurationRequest, CliError> {
    by_id(a)
}

pub fn delete_security_configuration(
    a: &args::IdOnly,
) -> Result<DeleteSecurityConfigurationRequest, CliError> {
    by_id(a)
}

fn by_id<R: DeserializeOwned>(a: &args::IdOnly) -> Result<R, CliError> {
    let mut m = Members::new(&a.input)?;
    m.string("id", a.id.as_ref());
    m.finish(&[("id", "--id")])
}

pub fn list_virtual_clusters(
    a: &args::ListVirtualClusters,
) -> Result<ListVirtualClustersRequest, CliError> {
    let mut m = Members::new(&a.input)?;
    m.string("containerProviderId", a.container_provider_id.as_ref())
        .string("containerProviderType", a.container_provider_type.as_ref())
        .boolean(
            "eksAccessEntryIntegrated",
            args::flag_pair(
                a.eks_access_entry_integrated,
                a.no_eks_access_entry_integrated,
            ),
        )
        .paging(&a.paging);
    m.timestamp("--created-after", "createdAfter", a.created_after.as_ref())?
        .timestamp(
            "--created-before",
            "createdBefore",
            a.created_before.as_ref(),
        )?
        .string_list("--states", "states", &a.states)?;
    m.finish(&[])
}

pub fn update_virtual_cluster(
    a: &args::UpdateVirtualCluster,
) -> Result<UpdateVirtualClusterRequest, CliError> {
    let mut m = Members::new(&a.input)?;
    m.string("id", a.id.as_ref())
        .string("clientToken", a.client_token.as_ref());
    m.structure::<SchedulerConfiguration>(
        "--scheduler-configuration",
        "schedulerConfiguration",
        a.scheduler_configuration.as_ref(),
    )?;
    let mut req: UpdateVirtualClusterRequest = m.finish(&[("id", "--id")])?;
    or_new_token(&mut req.client_token);
    Ok(req)
}

pub fn start_job_run(a: &args::StartJobRun) -> Result<StartJobRunRequest, CliError> {
    let mut m = Members::new(&a.input)?;
    m.string("name", a.name.as_ref())
        .string("virtualClusterId", a.virtual_cluster_id.as_ref())
        .string("clientToken", a.client_token.as_ref())
        .string("executionRoleArn", a.execution_role_arn.as_ref())
        .string("releaseLabel", a.release_label.as_ref())
        .string("jobTemplateId", a.job_template_id.as_ref());
    m.structure::<JobDriver>("--job-driver", "jobDriver", a.job_driver.as_ref())?
        .structure::<ConfigurationOverrides>(
            "--configuration-overrides",
            "configurationOverrides",
            a.configuration_overrides.as_ref(),
        )?
        .string_map("--tags", "tags", &a.tags)?
        .string_map(
            "--job-template-parameters",
            "jobTemplateParameters",
            &a.job_template_parameters,
        )?
        .structure::<RetryPolicyConfiguration>(
            "--retry-policy-configuration",
            "retryPolicyConfiguration",
            a.retry_policy_configuration.as_ref(),
        )?;
    let mut req: StartJobRunRequest = m.finish(&[("virtualClusterId", "--virtual-cluster-id")])?;
    or_new_token(&mut req.client_token);
    Ok(req)
}

pub fn describe_job_run(a: &args::JobRunId) -> Result<DescribeJobRunRequest, CliError> {
    job_run_by_id(a)
}

pub fn cancel_job_run(a: &args::JobRunId) -> Result<CancelJobRunRequest, CliError> {
    job_run_by_id(a)
}

pub fn get_job_run_app_ui_url(
    a: &args::GetJobRunAppUiUrl,
) -> Result<GetJobRunAppUiUrlRequest, CliError> {
    let mut m = Members::new(&a.run.input)?;
    m.string("id", a.run.id.as_ref())
        .string("virtualClusterId", a.run.virtual_cluster_id.as_ref())
        .integer("expiresInSeconds", a.expires_in_seconds);
    m.finish(&[("id", "--id"), ("virtualClusterId", "--virtual-cluster-id")])
}

pub fn get_job_run_logs(a: &args::GetJobRunLogs) -> Result<GetJobRunLogsRequest, CliError> {
    let mut m = Members::new(&a.run.input)?;
    m.string("id", a.run.id.as_ref())
        .string("virtualClusterId", a.run.virtual_cluster_id.as_ref())
        .string("container", a.container.as_ref())
        .string("stream", a.stream.as_ref())
        .string("source", a.source.as_ref());
    m.finish(&[("id", "--id"), ("virtualClusterId", "--virtual-cluster-id")])
}

fn job_run_by_id<R: DeserializeOwned>(a: &args::JobRunId) -> Result<R, CliError> {
    let mut m = Members::new(&a.input)?;
    m.string("id", a.id.as_ref())
        .string("virtualClusterId", a.virtual_cluster_id.as_ref());
    m.finish(&[("id", "--id"), ("virtualClusterId", "--virtual-cluster-id")])
}

pub fn list_job_runs(a: &args::ListJobRuns) -> Result<ListJobRunsRequest, CliError> {
    let mut m = Members::new(&a.input)?;
    m.string("virtualClusterId", a.virtual_cluster_id.as_ref())
        .string("name", a.name.as_ref())
        .paging(&a.paging);
    m.timestamp("--created-after", "createdAfter", a.created_after.as_ref())?
        .timestamp(
            "--created-before",
            "createdBefore",
            a.created_before.as_ref(),
        )?
        .string_list("--states", "states", &a.states)?;
    m.finish(&[("virtualClusterId", "--virtual-cluster-id")])
}

pub fn create_job_template(
    a: &args::CreateJobTemplate,
) -> Result<CreateJobTemplateRequest, CliError> {
    let mut m = Members::new(&a.input)?;
    m.string("name", a.name.as_ref())
        .string("clientToken", a.client_token.as_ref())
        .string("kmsKeyArn", a.kms_key_arn.as_ref());
    m.structure::<JobTemplateData>(
        "--job-template-data",
        "jobTemplateData",
        a.job_template_data.as_ref(),
    )?
    .string_map("--tags", "tags", &a.tags)?;
    let mut req: CreateJobTemplateRequest = m.finish(&[
        ("name", "--name"),
        ("jobTemplateData", "--job-template-data"),
    ])?;
    or_new_token(&mut req.client_token);
    Ok(req)
}

pub fn list_job_templates(a: &args::ListCreated) -> Result<ListJobTemplatesRequest, CliError> {
    list_created(a)
}

pub fn list_security_configurations(
    a: &args::ListCreated,
) -> Result<ListSecurityConfigurationsRequest, CliError> {
    list_created(a)
}

fn list_created<R: DeserializeOwned>(a: &args::ListCreated) -> Result<R, CliError> {
    let mut m = Members::new(&a.input)?;
    m.paging(&a.paging);
    m.timestamp("--created-after", "createdAfter", a.created_after.as_ref())?
        .timestamp(
            "--created-before",
            "createdBefore",
            a.created_before.as_ref(),
        )?;
    m.finish(&[])
}

pub fn create_security_configuration(
    a: &args::CreateSecurityConfiguration,
) -> Result<CreateSecurityConfigurationRequest, CliError> {
    let mut m = Members::new(&a.input)?;
    m.string("name", a.name.as_ref())
        .string("clientToken", a.client_token.as_ref());
    m.structure::<ContainerProvider>(
        "--container-provider",
        "containerProvider",
        a.container_provider.as_ref(),
    )?
    .structure::<SecurityConfigurationData>(
        "--security-configuration-data",
        "securityConfigurationData",
        a.security_configuration_data.as_ref(),
    )?
    .string_map("--tags", "tags", &a.tags)?;
    let mut req: CreateSecurityConfigurationRequest = m.finish(&[
        ("name", "--name"),
        ("securityConfigurationData", "--security-configuration-data"),
    ])?;
    or_new_token(&mut req.client_token);
    Ok(req)
}

pub fn tag_resource(a: &args::TagResource) -> Result<TagResourceRequest, CliError> {
    let mut m = Members::new(&a.input)?;
    m.string("resourceArn", a.resource_arn.as_ref());
    m.string_map("--tags", "tags", &a.tags)?;
    m.finish(&[("resourceArn", "--resource-arn"), ("tags", "--tags")])
}

pub fn untag_resource(a: &args::UntagResource) -> Result<UntagResourceRequest, CliError> {
    let mut m = Members::new(&a.input)?;
    m.string("resourceArn", a.resource_arn.as_ref());
    m.string_list("--tag-keys", "tagKeys", &a.tag_keys)?;
    m.finish(&[("resourceArn", "--resource-arn"), ("tagKeys", "--tag-keys")])
}

pub fn list_tags_for_resource(
    a: &args::ResourceArn,
) -> Result<ListTagsForResourceRequest, CliError> {
    let mut m = Members::new(&a.input)?;
    m.string("resourceArn", a.resource_arn.as_ref());
    m.finish(&[("resourceArn", "--resource-arn")])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    fn parse(argv: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("sparkvc").chain(argv.iter().copied()))
            .unwrap()
            .command
    }

    fn start(argv: &[&str]) -> Result<StartJobRunRequest, CliError> {
        let mut full = vec!["start-job-run"];
        full.extend_from_slice(argv);
        match parse(&full) {
            Command::StartJobRun(a) => start_job_run(&a),
            _ => unreachable!(),
        }
    }

    #[test]
    fn flags_override_cli_input_json_members() {
        let req = start(&[
            "--cli-input-json",
            r#"{"virtualClusterId": "vc1", "name": "from-json", "releaseLabel": "emr-7.0.0",
                "tags": {"a": "1"}, "clientToken": "tok"}"#,
            "--name",
            "from-flag",
            "--tags",
            "b=2",
        ])
        .unwrap();
        assert_eq!(req.virtual_cluster_id, "vc1");
        assert_eq!(req.name, "from-flag");
        assert_eq!(req.release_label, "emr-7.0.0");
        assert_eq!(req.client_token, "tok");
        // A flag replaces the whole member, as in the aws CLI.
        assert_eq!(req.tags.len(), 1);
        assert_eq!(req.tags["b"], "2");
    }

    #[test]
    fn unknown_cli_input_members_are_named() {
        let err = start(&["--cli-input-json", r#"{"virtualClusterID": "vc1"}"#])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "Error parsing parameter '--cli-input-json': unknown field `virtualClusterID`"
            ),
            "{err}"
        );
    }

    #[test]
    fn required_members_may_come_from_either_side() {
        let err = start(&["--name", "x"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the following arguments are required: --virtual-cluster-id"
        );
        assert!(start(&["--cli-input-json", r#"{"virtualClusterId": "vc1"}"#]).is_ok());
    }

    #[test]
    fn client_tokens_are_generated_when_absent() {
        let a = start(&["--virtual-cluster-id", "vc"]).unwrap();
        let b = start(&["--virtual-cluster-id", "vc"]).unwrap();
        assert_eq!(a.client_token.len(), 36);
        assert_ne!(a.client_token, b.client_token);
        let given = start(&["--virtual-cluster-id", "vc", "--client-token", "mine"]).unwrap();
        assert_eq!(given.client_token, "mine");
    }

    #[test]
    fn client_tokens_look_like_uuids() {
        let token = new_client_token();
        let parts: Vec<&str> = token.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(
            parts[3].chars().next(),
            Some('8' | '9' | 'a' | 'b')
        ));
    }

    #[test]
    fn structure_flags_fill_their_members() {
        let req = start(&[
            "--virtual-cluster-id",
            "vc",
            "--job-driver",
            r#"{"sparkSubmitJobDriver": {"entryPoint": "local:///pi.py", "entryPointArguments": ["10"]}}"#,
            "--retry-policy-configuration",
            "maxAttempts=2",
            "--job-template-parameters",
            "ROLE=r1",
        ])
        .unwrap();
        let driver = req.job_driver.unwrap().spark_submit_job_driver.unwrap();
        assert_eq!(driver.entry_point, "local:///pi.py");
        assert_eq!(driver.entry_point_arguments, ["10"]);
        assert_eq!(req.retry_policy_configuration.unwrap().max_attempts, 2);
        assert_eq!(req.job_template_parameters["ROLE"], "r1");
    }

    #[test]
    fn list_filters_are_parsed() {
        let Command::ListVirtualClusters(a) = parse(&[
            "list-virtual-clusters",
            "--states",
            "RUNNING",
            "TERMINATED",
            "--created-after",
            "2026-01-01",
            "--max-results",
            "5",
            "--no-eks-access-entry-integrated",
        ]) else {
            unreachable!()
        };
        let req = list_virtual_clusters(&a).unwrap();
        assert_eq!(req.states, ["RUNNING", "TERMINATED"]);
        assert_eq!(req.created_after.unwrap().seconds, 1_767_225_600);
        assert_eq!(req.max_results, Some(5));
        assert_eq!(req.eks_access_entry_integrated, Some(false));
    }

    #[test]
    fn tag_commands_use_shorthand() {
        let Command::UntagResource(a) = parse(&[
            "untag-resource",
            "--resource-arn",
            "arn:x",
            "--tag-keys",
            "a",
            "b",
        ]) else {
            unreachable!()
        };
        assert_eq!(untag_resource(&a).unwrap().tag_keys, ["a", "b"]);
        let Command::TagResource(a) = parse(&["tag-resource", "--resource-arn", "arn:x"]) else {
            unreachable!()
        };
        assert_eq!(
            tag_resource(&a).unwrap_err().to_string(),
            "the following arguments are required: --tags"
        );
    }
}
