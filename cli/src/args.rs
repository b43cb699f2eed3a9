//! Command-line definitions: the subcommands and flags of
//! `aws emr-containers`, with the same names.
//!
//! Members that the request needs are not `required` here, because they may
//! come from `--cli-input-json` instead; `requests` checks them after merging.

use clap::{Args, Parser, Subcommand};

/// Where the server listens unless `--endpoint-url` or the environment says otherwise.
pub const DEFAULT_ENDPOINT_URL: &str = "http://127.0.0.1:50051";

/// The `sparkvc` command line.
#[derive(Debug, Parser)]
#[command(
    name = "sparkvc",
    version,
    about = "Command-line client for the sparkvc Spark control plane (like `aws emr-containers`)",
    propagate_version = true
)]
pub struct Cli {
    /// URL of the sparkvc server.
    #[arg(
        long,
        global = true,
        env = "SPARKVC_ENDPOINT_URL",
        default_value = DEFAULT_ENDPOINT_URL,
        value_name = "URL"
    )]
    pub endpoint_url: String,

    /// Use credentials and region from this profile of ~/.aws/config and
    /// ~/.aws/credentials (default: $AWS_PROFILE, else "default").
    #[arg(long, global = true, env = "AWS_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,

    /// The region requests are signed for; must be the server's (default:
    /// $AWS_REGION, the profile's region, else us-east-1).
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,

    /// Do not sign requests (a development server accepts unsigned calls).
    #[arg(long, global = true)]
    pub no_sign_request: bool,

    /// PEM bundle of the CAs that sign an https endpoint's certificate
    /// (default: the system's trust store).
    #[arg(long, global = true, env = "AWS_CA_BUNDLE", value_name = "FILE")]
    pub ca_bundle: Option<std::path::PathBuf>,

    /// Send the Kubernetes bearer token in this file instead of signing
    /// (e.g. a projected ServiceAccount token); the server checks it with a
    /// TokenReview.
    #[arg(
        long,
        global = true,
        env = "SPARKVC_BEARER_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub bearer_token_file: Option<std::path::PathBuf>,

    /// PEM certificate (chain) to present to an https endpoint that asks
    /// for client certificates (mutual TLS); needs --client-key.
    #[arg(
        long,
        global = true,
        env = "SPARKVC_CLIENT_CERT",
        value_name = "FILE",
        requires = "client_key"
    )]
    pub client_cert: Option<std::path::PathBuf>,

    /// PEM private key of --client-cert.
    #[arg(
        long,
        global = true,
        env = "SPARKVC_CLIENT_KEY",
        value_name = "FILE",
        requires = "client_cert"
    )]
    pub client_key: Option<std::path::PathBuf>,

    /// Do not verify an https endpoint's certificate. Anyone between the
    /// CLI and the server can then read and change the calls.
    #[arg(long, global = true)]
    pub no_verify_ssl: bool,

    /// How responses are printed, as in the aws CLI.
    #[arg(
        long,
        global = true,
        env = "AWS_DEFAULT_OUTPUT",
        value_enum,
        default_value = "json",
        value_name = "FORMAT"
    )]
    pub output: crate::output::Format,

    /// A JMESPath expression applied to every response before it is
    /// printed (e.g. `jobRuns[].id`, `jobRun.state`).
    #[arg(long, global = true, value_name = "EXPRESSION")]
    pub query: Option<String>,

    /// Print the JSON skeleton of the command's request (`input`, the
    /// default: fill it in and pass it to `--cli-input-json`) or of its
    /// response (`output`), and call nothing.
    #[arg(
        long,
        global = true,
        value_enum,
        num_args = 0..=1,
        default_missing_value = "input",
        value_name = "input|output"
    )]
    pub generate_cli_skeleton: Option<crate::skeleton::Kind>,

    /// Log what the CLI does on stderr: credentials found (never a secret),
    /// each call with its request (sensitive members hidden), the server's
    /// answer, request ID and time taken.
    #[arg(long, global = true)]
    pub debug: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// The operations, named as in the aws CLI.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a virtual cluster (a Kubernetes namespace registered with sparkvc).
    CreateVirtualCluster(CreateVirtualCluster),
    /// Show one virtual cluster.
    DescribeVirtualCluster(IdOnly),
    /// List virtual clusters.
    ListVirtualClusters(ListVirtualClusters),
    /// Replace the scheduler configuration of a virtual cluster.
    UpdateVirtualCluster(UpdateVirtualCluster),
    /// Delete a virtual cluster.
    DeleteVirtualCluster(IdOnly),
    /// Start a job run (optionally waiting for it to finish).
    StartJobRun(StartJobRun),
    /// Show one job run.
    DescribeJobRun(JobRunId),
    /// List the job runs of a virtual cluster.
    ListJobRuns(ListJobRuns),
    /// Cancel a job run.
    CancelJobRun(JobRunId),
    /// Print a job run's logs from S3 or CloudWatch, also after its pods
    /// are gone; `--follow` keeps printing until the run ends (sparkvc
    /// extension).
    GetJobRunLogs(GetJobRunLogs),
    /// Get a signed, expiring link to a job run's Spark UI: live while its
    /// driver runs, from the History Server after (sparkvc extension).
    GetJobRunAppUiUrl(GetJobRunAppUiUrl),
    /// Create a job template.
    CreateJobTemplate(CreateJobTemplate),
    /// Show one job template.
    DescribeJobTemplate(IdOnly),
    /// List job templates.
    ListJobTemplates(ListCreated),
    /// Delete a job template.
    DeleteJobTemplate(IdOnly),
    /// Create a security configuration.
    CreateSecurityConfiguration(CreateSecurityConfiguration),
    /// Show one security configuration.
    DescribeSecurityConfiguration(IdOnly),
    /// List security configurations.
    ListSecurityConfigurations(ListCreated),
    /// Delete a security configuration.
    DeleteSecurityConfiguration(IdOnly),
    /// Add or replace tags on a resource.
    TagResource(TagResource),
    /// Remove tags from a resource.
    UntagResource(UntagResource),
    /// Show the tags of a resource.
    ListTagsForResource(ResourceArn),
}

impl Command {
    /// The API operation the command calls, as the proto's service names it.
    pub fn operation(&self) -> &'static str {
        match self {
            Command::CreateVirtualCluster(_) => "CreateVirtualCluster",
            Command::DescribeVirtualCluster(_) => "DescribeVirtualCluster",
            Command::ListVirtualClusters(_) => "ListVirtualClusters",
            Command::UpdateVirtualCluster(_) => "UpdateVirtualCluster",
            Command::DeleteVirtualCluster(_) => "DeleteVirtualCluster",
            Command::StartJobRun(_) => "StartJobRun",
            Command::DescribeJobRun(_) => "DescribeJobRun",
            Command::ListJobRuns(_) => "ListJobRuns",
            Command::CancelJobRun(_) => "CancelJobRun",
            Command::GetJobRunLogs(_) => "GetJobRunLogs",
            Command::GetJobRunAppUiUrl(_) => "GetJobRunAppUiUrl",
            Command::CreateJobTemplate(_) => "CreateJobTemplate",
            Command::DescribeJobTemplate(_) => "DescribeJobTemplate",
            Command::ListJobTemplates(_) => "ListJobTemplates",
            Command::DeleteJobTemplate(_) => "DeleteJobTemplate",
            Command::CreateSecurityConfiguration(_) => "CreateSecurityConfiguration",
            Command::DescribeSecurityConfiguration(_) => "DescribeSecurityConfiguration",
            Command::ListSecurityConfigurations(_) => "ListSecurityConfigurations",
            Command::DeleteSecurityConfiguration(_) => "DeleteSecurityConfiguration",
            Command::TagResource(_) => "TagResource",
            Command::UntagResource(_) => "UntagResource",
            Command::ListTagsForResource(_) => "ListTagsForResource",
        }
    }
}

/// `--cli-input-json`, accepted by every command.
#[derive(Debug, Args)]
pub struct CliInput {
    /// The whole request as JSON (or file://PATH); flags override its members.
    #[arg(long, value_name = "JSON")]
    pub cli_input_json: Option<String>,
}

/// Pagination flags of the list commands.
#[derive(Debug, Args)]
pub struct Paging {
    /// Items per server call (maxResults).
    #[arg(long, visible_alias = "page-size", value_name = "N")]
    pub max_results: Option<i32>,
    /// Stop after N items in total and print a NextToken if more remain.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_items: Option<u32>,
    /// Resume from the NextToken of an earlier `--max-items` listing.
    #[arg(long, value_name = "TOKEN")]
    pub starting_token: Option<String>,
    /// Make a single call and print its response as is (with `nextToken`).
    #[arg(long)]
    pub no_paginate: bool,
}

#[derive(Debug, Args)]
pub struct IdOnly {
    /// The ID of the resource.
    #[arg(long)]
    pub id: Option<String>,
    #[command(flatten)]
    pub input: CliInput,
}

#[derive(Debug, Args)]
pub struct JobRunId {
    /// The ID of the job run.
    #[arg(long)]
    pub id: Option<String>,
    /// The ID of the virtual cluster of the job run.
    #[arg(long)]
    pub virtual_cluster_id: Option<String>,
    #[command(flatten)]
    pub input: CliInput,
}

#[derive(Debug, Args)]
pub struct GetJobRunAppUiUrl {
    #[command(flatten)]
    pub run: JobRunId,
    /// How long the link works, in seconds (60-86400, default 3600).
    #[arg(long, value_name = "SECONDS")]
    pub expires_in_seconds: Option<i32>,
}

#[derive(Debug, Args)]
pub struct GetJobRunLogs {
    #[command(flatten)]
    pub run: JobRunId,
    /// DRIVER (default) or JOB_RUNNER.
    #[arg(long, value_name = "CONTAINER")]
    pub container: Option<String>,
    /// STDOUT (default) or STDERR.
    #[arg(long, value_name = "STREAM")]
    pub stream: Option<String>,
    /// S3 or CLOUDWATCH (default: CloudWatch when the run ships there).
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// Keep printing new lines until the job run ends.
    #[arg(long)]
    pub follow: bool,
    /// Seconds between reads with --follow.
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    pub poll_interval: f64,
}

#[derive(Debug, Args)]
pub struct CreateVirtualCluster {
    /// Name of the virtual cluster.
    #[arg(long)]
    pub name: Option<String>,
    /// ContainerProvider: JSON, file://PATH or shorthand
    /// (id=CLUSTER,type=EKS,info={eksInfo={namespace=NS}}).
    #[arg(long, value_name = "JSON")]
    pub container_provider: Option<String>,
    /// Idempotency token; a random one is generated when absent.
    #[arg(long)]
    pub client_token: Option<String>,
    /// Tags: k1=v1,k2=v2 or JSON.
    #[arg(long, num_args = 1.., value_name = "TAGS")]
    pub tags: Vec<String>,
    /// ID of a security configuration.
    #[arg(long)]
    pub security_configuration_id: Option<String>,
    /// Enable session support.
    #[arg(long, overrides_with = "no_session_enabled")]
    pub session_enabled: bool,
    /// Disable session support.
    #[arg(long, overrides_with = "session_enabled")]
    pub no_session_enabled: bool,
    /// SchedulerConfiguration: JSON, file://PATH or shorthand
    /// (maxConcurrentJobRuns=N,maxInQueueJobRuns=N).
    #[arg(long, value_name = "JSON")]
    pub scheduler_configuration: Option<String>,
    #[command(flatten)]
    pub input: CliInput,
}

#[derive(Debug, Args)]
pub struct ListVirtualClusters {
    /// Only clusters on this container provider (EKS cluster) ID.
    #[arg(long)]
    pub container_provider_id: Option<String>,
    /// Only clusters on this container provider type (EKS).
    #[arg(long)]
    pub container_provider_type: Option<String>,
    /// Only clusters created after this time (ISO 8601, a date or epoch seconds).
    #[arg(long, value_name = "TIME")]
    pub created_after: Option<String>,
    /// Only clusters created before this time.
    #[arg(long, value_name = "TIME")]
    pub created_before: Option<String>,
    /// Only clusters in these states (space- or comma-separated).
    #[arg(long, num_args = 1.., value_name = "STATE")]
    pub states: Vec<String>,
    /// Only clusters with the EKS access entry integration enabled.
    #[arg(long, overrides_with = "no_eks_access_entry_integrated")]
    pub eks_access_entry_integrated: bool,
    /// Only clusters with the EKS access entry integration disabled.
    #[arg(long, overrides_with = "eks_access_entry_integrated")]
    pub no_eks_access_entry_integrated: bool,
    #[command(flatten)]
    pub paging: Paging,
    #[command(flatten)]
    pub input: CliInput,
}

#[derive(Debug, Args)]
pub struct UpdateVirtualCluster {
    /// The ID of the virtual cluster.
    #[arg(long)]
    pub id: Option<String>,
    /// SchedulerConfiguration: JSON, file://PATH or shorthand.
    #[arg(long, value_name = "JSON")]
    pub scheduler_configuration: Option<String>,
    /// Idempotency token; a random one is generated when absent.
    #[arg(long)]
    pub client_token: Option<String>,
    #[command(flatten)]
    pub input: CliInput,
}

#[derive(Debug, Args)]
pub struct StartJobRun {
    /// Name of the job run.
    #[arg(long)]
    pub name: Option<String>,
    /// The virtual cluster to run in.
    #[arg(long)]
    pub virtual_cluster_id: Option<String>,
    /// Idempotency token; a random one is generated when absent.
    #[arg(long)]
    pub client_token: Option<String>,
    /// IAM role ARN of the job run.
    #[arg(long)]
    pub execution_role_arn: Option<String>,
    /// Release label, e.g. emr-7.0.0-latest.
    #[arg(long)]
    pub release_label: Option<String>,
    /// JobDriver: JSON, file://PATH or shorthand.
    #[arg(long, value_name = "JSON")]
    pub job_driver: Option<String>,
    /// ConfigurationOverrides: JSON, file://PATH or shorthand.
    #[arg(long, value_name = "JSON")]
    pub configuration_overrides: Option<String>,
    /// Tags: k1=v1,k2=v2 or JSON.
    #[arg(long, num_args = 1.., value_name = "TAGS")]
    pub tags: Vec<String>,
    /// Start from this job template.
    #[arg(long)]
    pub job_template_id: Option<String>,
    /// Values of the template's parameters: k1=v1,k2=v2 or JSON.
    #[arg(long, num_args = 1.., value_name = "PARAMS")]
    pub job_template_parameters: Vec<String>,
    /// RetryPolicyConfiguration: JSON, file://PATH or shorthand (maxAttempts=N).
    #[arg(long, value_name = "JSON")]
    pub retry_policy_configuration: Option<String>,
    /// Wait until the job run ends, showing progress on stderr, then print it.
    #[arg(long)]
    pub wait: bool,
    /// Seconds between two polls with --wait.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = parse_poll_interval)]
    pub poll_interval: f64,
    #[command(flatten)]
    pub input: CliInput,
}

#[derive(Debug, Args)]
pub struct ListJobRuns {
    /// The virtual cluster whose job runs to list.
    #[arg(long)]
    pub virtual_cluster_id: Option<String>,
    /// Only job runs created after this time (ISO 8601, a date or epoch seconds).
    #[arg(long, value_name = "TIME")]
    pub created_after: Option<String>,
    /// Only job runs created before this time.
    #[arg(long, value_name = "TIME")]
    pub created_before: Option<String>,
    /// Only job runs with this name.
    #[arg(long)]
    pub name: Option<String>,
    /// Only job runs in these states (space- or comma-separated).
    #[arg(long, num_args = 1.., value_name = "STATE")]
    pub states: Vec<String>,
    #[command(flatten)]
    pub paging: Paging,
    #[command(flatten)]
    pub input: CliInput,
}

#[derive(Debug, Args)]
pub struct CreateJobTemplate {
    /// Name of the job template.
    #[arg(long)]
    pub name: Option<String>,
    /// Idempotency token; a random one is generated when absent.
    #[arg(long)]
    pub client_token: Option<String>,
    /// JobTemplateData: JSON, file://PATH or shorthand.
    #[arg(long, value_name = "JSON")]
    pub job_template_data: Option<String>,
    /// Tags: k1=v1,k2=v2 or JSON.
    #[arg(long, num_args = 1.., value_name = "TAGS")]
    pub tags: Vec<String>,
    /// KMS key ARN used to encrypt the template.
    #[arg(long)]
    pub kms_key_arn: Option<String>,
    #[command(flatten)]
    pub input: CliInput,
}

/// Used by `list-job-templates` and `list-security-configurations`.
#[derive(Debug, Args)]
pub struct ListCreated {
    /// Only items created after this time (ISO 8601, a date or epoch seconds).
    #[arg(long, value_name = "TIME")]
    pub created_after: Option<String>,
    /// Only items created before this time.
    #[arg(long, value_name = "TIME")]
    pub created_before: Option<String>,
    #[command(flatten)]
    pub paging: Paging,
    #[command(flatten)]
    pub input: CliInput,
}

#[derive(Debug, Args)]
pub struct CreateSecurityConfiguration {
    /// Idempotency token; a random one is generated when absent.
    #[arg(long)]
    pub client_token: Option<String>,
    /// Name of the security configuration.
    #[arg(long)]
    pub name: Option<String>,
    /// ContainerProvider: JSON, file://PATH or shorthand.
    #[arg(long, value_name = "JSON")]
    pub container_provider: Option<String>,
    /// SecurityConfigurationData: JSON, file://PATH or shorthand.
    #[arg(long, value_name = "JSON")]
    pub security_configuration_data: Option<String>,
    /// Tags: k1=v1,k2=v2 or JSON.
    #[arg(long, num_args = 1.., value_name = "TAGS")]
    pub tags: Vec<String>,
    #[command(flatten)]
    pub input: CliInput,
}

#[derive(Debug, Args)]
pub struct TagResource {
    /// ARN of the resource.
    #[arg(long)]
    pub resource_arn: Option<String>,
    /// Tags: k1=v1,k2=v2 or JSON.
    #[arg(long, num_args = 1.., value_name = "TAGS")]
    pub tags: Vec<String>,
    #[command(flatten)]
    pub input: CliInput,
}

#[derive(Debug, Args)]
pub struct UntagResource {
    /// ARN of the resource.
    #[arg(long)]
    pub resource_arn: Option<String>,
    /// Keys of the tags to remove (space- or comma-separated).
    #[arg(long, num_args = 1.., value_name = "KEY")]
    pub tag_keys: Vec<String>,
    #[command(flatten)]
    pub input: CliInput,
}

#[derive(Debug, Args)]
pub struct ResourceArn {
    /// ARN of the resource.
    #[arg(long)]
    pub resource_arn: Option<String>,
    #[command(flatten)]
    pub input: CliInput,
}

/// A `--flag`/`--no-flag` pair as an optional boolean.
pub fn flag_pair(yes: bool, no: bool) -> Option<bool> {
    match (yes, no) {
        (true, _) => Some(true),
        (false, true) => Some(false),
        (false, false) => None,
    }
}

fn parse_poll_interval(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs <= 3600.0 => Ok(secs),
        _ => Err("expected a number of seconds greater than 0 (at most 3600)".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn lists_take_space_separated_values() {
        let cli = Cli::try_parse_from([
            "sparkvc",
            "list-job-runs",
            "--virtual-cluster-id",
            "vc",
            "--states",
            "PENDING",
            "RUNNING",
            "--max-items",
            "3",
        ])
        .unwrap();
        let Command::ListJobRuns(args) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(args.states, vec!["PENDING", "RUNNING"]);
        assert_eq!(args.paging.max_items, Some(3));
        assert_eq!(cli.endpoint_url, DEFAULT_ENDPOINT_URL);
    }

    #[test]
    fn flag_pairs_and_the_endpoint_flag_work_anywhere() {
        let cli = Cli::try_parse_from([
            "sparkvc",
            "create-virtual-cluster",
            "--no-session-enabled",
            "--endpoint-url",
            "http://127.0.0.1:1",
        ])
        .unwrap();
        let Command::CreateVirtualCluster(args) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(
            flag_pair(args.session_enabled, args.no_session_enabled),
            Some(false)
        );
        assert_eq!(cli.endpoint_url, "http://127.0.0.1:1");
    }

    #[test]
    fn bad_poll_intervals_are_rejected() {
        assert!(parse_poll_interval("0.5").is_ok());
        assert!(parse_poll_interval("0").is_err());
        assert!(parse_poll_interval("soon").is_err());
    }
}
