//! Request validation: every length, pattern, enum and count limit of the
//! emr-containers model, checked before anything is stored. Pure functions
//! over the wire types; each error names the member that broke the rule.

pub mod rules;

use crate::error::{ApiError, ApiResult};
use prost::Message;
use rules::*;
use sparkvc_proto::v1 as pb;
use std::collections::BTreeMap;

pub const VIRTUAL_CLUSTER_STATES: &[&str] = &["RUNNING", "TERMINATING", "TERMINATED", "ARRESTED"];
pub const JOB_RUN_STATES: &[&str] = &[
    "PENDING",
    "SUBMITTED",
    "RUNNING",
    "FAILED",
    "CANCELLED",
    "CANCEL_PENDING",
    "COMPLETED",
];
const CONTAINER_PROVIDER_TYPES: &[&str] = &["EKS"];
const ENABLED_DISABLED: &[&str] = &["ENABLED", "DISABLED"];
const PARAMETER_TYPES: &[&str] = &["NUMBER", "STRING"];
/// AWS caps configuration lists (and their nesting) at 100 entries.
const MAX_CONFIGURATIONS: usize = 100;

pub fn create_virtual_cluster(req: &pb::CreateVirtualClusterRequest) -> ApiResult<()> {
    required("name", &req.name, RESOURCE_NAME)?;
    required("clientToken", &req.client_token, CLIENT_TOKEN)?;
    let provider = req
        .container_provider
        .as_ref()
        .ok_or_else(|| missing("containerProvider"))?;
    container_provider("containerProvider", provider)?;
    tags("tags", &req.tags)?;
    optional(
        "securityConfigurationId",
        &req.security_configuration_id,
        RESOURCE_ID,
    )?;
    if let Some(scheduler) = &req.scheduler_configuration {
        scheduler_configuration("schedulerConfiguration", scheduler)?;
    }
    Ok(())
}

fn container_provider(field: &str, provider: &pb::ContainerProvider) -> ApiResult<()> {
    one_of(
        &format!("{field}.type"),
        &provider.r#type,
        CONTAINER_PROVIDER_TYPES,
        true,
    )?;
    required(&format!("{field}.id"), &provider.id, CLUSTER_ID)?;
    if let Some(eks) = provider.info.as_ref().and_then(|i| i.eks_info.as_ref()) {
        optional(
            &format!("{field}.info.eksInfo.namespace"),
            &eks.namespace,
            KUBERNETES_NAMESPACE,
        )?;
        optional(
            &format!("{field}.info.eksInfo.nodeLabel"),
            &eks.node_label,
            NODE_LABEL,
        )?;
    }
    Ok(())
}

/// The namespace a virtual cluster maps to. AWS requires it in practice even
/// though the model leaves it optional: without it there is nowhere to run.
pub fn namespace_of(provider: &pb::ContainerProvider) -> ApiResult<&str> {
    provider
        .info
        .as_ref()
        .and_then(|i| i.eks_info.as_ref())
        .map(|e| e.namespace.as_str())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| missing("containerProvider.info.eksInfo.namespace"))
}

fn scheduler_configuration(field: &str, s: &pb::SchedulerConfiguration) -> ApiResult<()> {
    if let Some(n) = s.max_in_queue_job_runs {
        in_range(&format!("{field}.maxInQueueJobRuns"), n.into(), 1, 1000)?;
    }
    if let Some(n) = s.max_concurrent_job_runs {
        in_range(&format!("{field}.maxConcurrentJobRuns"), n.into(), 1, 1000)?;
    }
    Ok(())
}

pub fn update_virtual_cluster(req: &pb::UpdateVirtualClusterRequest) -> ApiResult<()> {
    required("id", &req.id, RESOURCE_ID)?;
    required("clientToken", &req.client_token, CLIENT_TOKEN)?;
    if let Some(scheduler) = &req.scheduler_configuration {
        scheduler_configuration("schedulerConfiguration", scheduler)?;
    }
    Ok(())
}

pub fn id(field: &str, value: &str) -> ApiResult<()> {
    required(field, value, RESOURCE_ID)
}

/// `maxResults` is unconstrained in the model; sparkvc pages at most 1000.
pub fn page_size(max_results: Option<i32>) -> ApiResult<usize> {
    match max_results {
        None => Ok(crate::store::DEFAULT_PAGE_SIZE),
        Some(n) => {
            in_range("maxResults", n.into(), 1, 1000)?;
            Ok(n as usize)
        }
    }
}

pub fn next_token(token: &str) -> ApiResult<()> {
    optional("nextToken", token, NEXT_TOKEN)
}

pub fn states(field: &str, states: &[String], allowed: &[&str]) -> ApiResult<()> {
    count(field, states.len(), 10)?;
    for state in states {
        one_of(field, state, allowed, true)?;
    }
    Ok(())
}

pub fn list_virtual_clusters(req: &pb::ListVirtualClustersRequest) -> ApiResult<()> {
    optional(
        "containerProviderId",
        &req.container_provider_id,
        STRING_1024,
    )?;
    one_of(
        "containerProviderType",
        &req.container_provider_type,
        CONTAINER_PROVIDER_TYPES,
        false,
    )?;
    states("states", &req.states, VIRTUAL_CLUSTER_STATES)?;
    next_token(&req.next_token)
}

pub fn list_job_runs(req: &pb::ListJobRunsRequest) -> ApiResult<()> {
    id("virtualClusterId", &req.virtual_cluster_id)?;
    optional("name", &req.name, RESOURCE_NAME)?;
    states("states", &req.states, JOB_RUN_STATES)?;
    next_token(&req.next_token)
}

/// The members of StartJobRun as the request gives them. Whether the run is
/// complete (role, release, driver) is checked after a job template, if any,
/// has been merged in: see [`complete_job_run`].
/// The largest StartJobRun or CreateJobTemplate request sparkvc takes, in
/// encoded bytes. AWS documents no such bound, but a run's arguments end up
/// in one pod spec and one etcd object (1.5 MiB at most), and a run's record
/// is returned whole by DescribeJobRun and ListJobRuns.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// The largest job run record, once a template is merged in.
pub const MAX_JOB_RUN_BYTES: usize = 512 * 1024;
/// A listing page stops before its records pass this many bytes (with at
/// least one record), so a page stays far below the 4 MiB gRPC clients read.
pub const PAGE_BYTES: usize = 2 * 1024 * 1024;

/// `what` is at most `max` bytes.
pub fn size(what: &str, bytes: usize, max: usize) -> ApiResult<()> {
    if bytes > max {
        return Err(ApiError::validation(format!(
            "1 validation error detected: {what} is {bytes} bytes, more than the {max} sparkvc takes; \
             pass large inputs as files (for example in S3) instead"
        )));
    }
    Ok(())
}

pub fn start_job_run(req: &pb::StartJobRunRequest) -> ApiResult<()> {
    size(
        "The StartJobRun request",
        req.encoded_len(),
        MAX_REQUEST_BYTES,
    )?;
    optional("name", &req.name, RESOURCE_NAME)?;
    id("virtualClusterId", &req.virtual_cluster_id)?;
    required("clientToken", &req.client_token, CLIENT_TOKEN)?;
    optional("executionRoleArn", &req.execution_role_arn, IAM_ROLE_ARN)?;
    optional("releaseLabel", &req.release_label, RELEASE_LABEL)?;
    if let Some(driver) = &req.job_driver {
        job_driver("jobDriver", driver)?;
    }
    if let Some(overrides) = &req.configuration_overrides {
        configuration_overrides("configurationOverrides", overrides)?;
    }
    tags("tags", &req.tags)?;
    optional("jobTemplateId", &req.job_template_id, RESOURCE_ID)?;
    string_map(
        "jobTemplateParameters",
        &req.job_template_parameters,
        100,
        TEMPLATE_PARAMETER_NAME,
        STRING_1024,
    )?;
    if !req.job_template_parameters.is_empty() && req.job_template_id.is_empty() {
        return Err(ApiError::validation(
            "jobTemplateParameters can only be given together with jobTemplateId.",
        ));
    }
    if let Some(retry) = &req.retry_policy_configuration {
        retry_policy("retryPolicyConfiguration", retry)?;
    }
    Ok(())
}

/// What every job run needs once its template (if any) is merged in.
pub fn complete_job_run(run: &pb::JobRun) -> ApiResult<()> {
    size(
        "The job run, with its template",
        run.encoded_len(),
        MAX_JOB_RUN_BYTES,
    )?;
    required("executionRoleArn", &run.execution_role_arn, IAM_ROLE_ARN)?;
    required("releaseLabel", &run.release_label, RELEASE_LABEL)?;
    let driver = run
        .job_driver
        .as_ref()
        .ok_or_else(|| missing("jobDriver"))?;
    job_driver("jobDriver", driver)?;
    if let Some(overrides) = &run.configuration_overrides {
        configuration_overrides("configurationOverrides", overrides)?;
    }
    tags("tags", &run.tags)
}

/// sparkvc runs at most this many driver attempts for one job run.
pub const MAX_ATTEMPTS_LIMIT: i64 = 10;

fn retry_policy(field: &str, retry: &pb::RetryPolicyConfiguration) -> ApiResult<()> {
    in_range(
        &format!("{field}.maxAttempts"),
        retry.max_attempts.into(),
        1,
        MAX_ATTEMPTS_LIMIT,
    )
}

fn job_driver(field: &str, driver: &pb::JobDriver) -> ApiResult<()> {
    match (
        &driver.spark_submit_job_driver,
        &driver.spark_sql_job_driver,
    ) {
        (Some(submit), None) => {
            let f = format!("{field}.sparkSubmitJobDriver");
            required(&format!("{f}.entryPoint"), &submit.entry_point, ENTRY_POINT)?;
            for (i, arg) in submit.entry_point_arguments.iter().enumerate() {
                required(
                    &format!("{f}.entryPointArguments.{i}"),
                    arg,
                    ENTRY_POINT_ARGUMENT,
                )?;
            }
            optional(
                &format!("{f}.sparkSubmitParameters"),
                &submit.spark_submit_parameters,
                SPARK_PARAMETERS,
            )
        }
        (None, Some(sql)) => {
            let f = format!("{field}.sparkSqlJobDriver");
            optional(&format!("{f}.entryPoint"), &sql.entry_point, ENTRY_POINT)?;
            optional(
                &format!("{f}.sparkSqlParameters"),
                &sql.spark_sql_parameters,
                SPARK_PARAMETERS,
            )
        }
        _ => Err(ApiError::validation(format!(
            "{field} must specify exactly one of sparkSubmitJobDriver and sparkSqlJobDriver."
        ))),
    }
}

fn configurations(field: &str, list: &[pb::Configuration], depth: usize) -> ApiResult<()> {
    count(field, list.len(), MAX_CONFIGURATIONS)?;
    if depth > 2 {
        return Err(ApiError::validation(format!(
            "{field} is nested too deeply: at most 2 levels of configurations are allowed."
        )));
    }
    for (i, c) in list.iter().enumerate() {
        let f = format!("{field}.{i}");
        required(
            &format!("{f}.classification"),
            &c.classification,
            STRING_1024,
        )?;
        string_map(
            &format!("{f}.properties"),
            &c.properties,
            100,
            STRING_1024,
            STRING_1024,
        )?;
        configurations(&format!("{f}.configurations"), &c.configurations, depth + 1)?;
    }
    Ok(())
}

fn configuration_overrides(field: &str, o: &pb::ConfigurationOverrides) -> ApiResult<()> {
    configurations(
        &format!("{field}.applicationConfiguration"),
        &o.application_configuration,
        1,
    )?;
    let Some(m) = &o.monitoring_configuration else {
        return Ok(());
    };
    let f = format!("{field}.monitoringConfiguration");
    one_of(
        &format!("{f}.persistentAppUI"),
        &m.persistent_app_ui,
        ENABLED_DISABLED,
        false,
    )?;
    if let Some(logs) = &m.managed_logs {
        one_of(
            &format!("{f}.managedLogs.allowAWSToRetainLogs"),
            &logs.allow_aws_to_retain_logs,
            ENABLED_DISABLED,
            false,
        )?;
        optional(
            &format!("{f}.managedLogs.encryptionKeyArn"),
            &logs.encryption_key_arn,
            KMS_KEY_ARN,
        )?;
    }
    if let Some(cw) = &m.cloud_watch_monitoring_configuration {
        let f = format!("{f}.cloudWatchMonitoringConfiguration");
        required(
            &format!("{f}.logGroupName"),
            &cw.log_group_name,
            LOG_GROUP_NAME,
        )?;
        optional(
            &format!("{f}.logStreamNamePrefix"),
            &cw.log_stream_name_prefix,
            STRING_256,
        )?;
    }
    if let Some(s3) = &m.s3_monitoring_configuration {
        let f = format!("{f}.s3MonitoringConfiguration");
        required(&format!("{f}.logUri"), &s3.log_uri, URI_STRING)?;
        s3_uri(&format!("{f}.logUri"), &s3.log_uri)?;
        optional(
            &format!("{f}.encryptionKeyArn"),
            &s3.encryption_key_arn,
            KMS_KEY_ARN,
        )?;
    }
    if let Some(r) = &m.container_log_rotation_configuration {
        let f = format!("{f}.containerLogRotationConfiguration");
        required(
            &format!("{f}.rotationSize"),
            &r.rotation_size,
            ROTATION_SIZE,
        )?;
        rotation_size_bounds(&format!("{f}.rotationSize"), &r.rotation_size)?;
        in_range(
            &format!("{f}.maxFilesToKeep"),
            r.max_files_to_keep.into(),
            1,
            50,
        )?;
    }
    Ok(())
}

/// A timestamp a request gives: its nanoseconds must be a fraction of a
/// second (0 to 999,999,999), as protobuf defines them. Seconds are not
/// bounded: times before 1970 count as 1970, and times past the year 6140
/// (the last an ID can encode) as that year.
pub fn timestamp(field: &str, ts: Option<&prost_types::Timestamp>) -> ApiResult<()> {
    match ts {
        Some(ts) if !(0..1_000_000_000).contains(&ts.nanos) => Err(ApiError::validation(format!(
            "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must be a valid timestamp (nanos {} is not between 0 and 999999999)",
            ts.nanos
        ))),
        _ => Ok(()),
    }
}

/// A log destination must be an S3 URI naming a bucket.
fn s3_uri(field: &str, uri: &str) -> ApiResult<()> {
    let bucket = uri
        .strip_prefix("s3://")
        .map(|rest| rest.split('/').next().unwrap_or(""));
    match bucket {
        Some(b) if !b.is_empty() => Ok(()),
        _ => Err(ApiError::validation(format!(
            "Value '{}' at '{field}' is not a valid S3 URI: expected s3://<bucket>/<prefix>.",
            rules::echo(uri)
        ))),
    }
}

/// The model documents rotation sizes from 2KB to 2GB.
fn rotation_size_bounds(field: &str, size: &str) -> ApiResult<()> {
    let bytes = crate::render::logging::rotation_bytes(size).unwrap_or(0);
    if !(2048..=2 << 30).contains(&bytes) {
        return Err(ApiError::validation(format!(
            "Value '{size}' at '{field}' failed to satisfy constraint: rotation size must be between 2KB and 2GB."
        )));
    }
    Ok(())
}

pub fn create_job_template(req: &pb::CreateJobTemplateRequest) -> ApiResult<()> {
    size(
        "The CreateJobTemplate request",
        req.encoded_len(),
        MAX_REQUEST_BYTES,
    )?;
    required("name", &req.name, RESOURCE_NAME)?;
    required("clientToken", &req.client_token, CLIENT_TOKEN)?;
    tags("tags", &req.tags)?;
    optional("kmsKeyArn", &req.kms_key_arn, KMS_KEY_ARN)?;
    let data = req
        .job_template_data
        .as_ref()
        .ok_or_else(|| missing("jobTemplateData"))?;
    let f = "jobTemplateData";
    required(
        &format!("{f}.executionRoleArn"),
        &data.execution_role_arn,
        PARAMETRIC_IAM_ROLE_ARN,
    )?;
    required(
        &format!("{f}.releaseLabel"),
        &data.release_label,
        PARAMETRIC_RELEASE_LABEL,
    )?;
    let driver = data
        .job_driver
        .as_ref()
        .ok_or_else(|| missing(&format!("{f}.jobDriver")))?;
    job_driver(&format!("{f}.jobDriver"), driver)?;
    tags(&format!("{f}.jobTags"), &data.job_tags)?;
    count(
        &format!("{f}.parameterConfiguration"),
        data.parameter_configuration.len(),
        100,
    )?;
    for (name, config) in &data.parameter_configuration {
        let pf = format!("{f}.parameterConfiguration.{name}");
        required(
            &format!("{f}.parameterConfiguration.key"),
            name,
            TEMPLATE_PARAMETER_NAME,
        )?;
        one_of(
            &format!("{pf}.type"),
            &config.r#type,
            PARAMETER_TYPES,
            false,
        )?;
        optional(
            &format!("{pf}.defaultValue"),
            &config.default_value,
            STRING_1024,
        )?;
    }
    if let Some(o) = &data.configuration_overrides {
        let of = format!("{f}.configurationOverrides");
        configurations(
            &format!("{of}.applicationConfiguration"),
            &o.application_configuration,
            1,
        )?;
        if let Some(m) = &o.monitoring_configuration {
            let mf = format!("{of}.monitoringConfiguration");
            optional(
                &format!("{mf}.persistentAppUI"),
                &m.persistent_app_ui,
                PARAMETRIC_PERSISTENT_APP_UI,
            )?;
            if let Some(cw) = &m.cloud_watch_monitoring_configuration {
                optional(
                    &format!("{mf}.cloudWatchMonitoringConfiguration.logGroupName"),
                    &cw.log_group_name,
                    PARAMETRIC_LOG_GROUP_NAME,
                )?;
                optional(
                    &format!("{mf}.cloudWatchMonitoringConfiguration.logStreamNamePrefix"),
                    &cw.log_stream_name_prefix,
                    STRING_256,
                )?;
            }
            if let Some(s3) = &m.s3_monitoring_configuration {
                let field = format!("{mf}.s3MonitoringConfiguration.logUri");
                optional(&field, &s3.log_uri, URI_STRING)?;
                // A URI with a ${parameter} can only be checked once filled,
                // at StartJobRun; any other is refused now, not at each run.
                if !s3.log_uri.is_empty() && !s3.log_uri.contains("${") {
                    s3_uri(&field, &s3.log_uri)?;
                }
            }
        }
    }
    crate::template::check_placeholders_declared(data)
}

pub fn create_security_configuration(
    req: &pb::CreateSecurityConfigurationRequest,
) -> ApiResult<()> {
    required("clientToken", &req.client_token, CLIENT_TOKEN)?;
    required("name", &req.name, RESOURCE_NAME)?;
    if let Some(provider) = &req.container_provider {
        container_provider("containerProvider", provider)?;
    }
    tags("tags", &req.tags)?;
    let data = req
        .security_configuration_data
        .as_ref()
        .ok_or_else(|| missing("securityConfigurationData"))?;
    let f = "securityConfigurationData";
    if let Some(authz) = &data.authorization_configuration {
        let af = format!("{f}.authorizationConfiguration");
        if let Some(lf) = &authz.lake_formation_configuration {
            let lff = format!("{af}.lakeFormationConfiguration");
            optional(
                &format!("{lff}.authorizedSessionTagValue"),
                &lf.authorized_session_tag_value,
                SESSION_TAG_VALUE,
            )?;
            optional(
                &format!("{lff}.queryEngineRoleArn"),
                &lf.query_engine_role_arn,
                IAM_ROLE_ARN,
            )?;
            if let Some(ns) = &lf.secure_namespace_info {
                optional(
                    &format!("{lff}.secureNamespaceInfo.clusterId"),
                    &ns.cluster_id,
                    CLUSTER_ID,
                )?;
                optional(
                    &format!("{lff}.secureNamespaceInfo.namespace"),
                    &ns.namespace,
                    KUBERNETES_NAMESPACE,
                )?;
            }
        }
        if let Some(tls) = authz
            .encryption_configuration
            .as_ref()
            .and_then(|e| e.in_transit_encryption_configuration.as_ref())
            .and_then(|t| t.tls_certificate_configuration.as_ref())
        {
            let tf = format!(
                "{af}.encryptionConfiguration.inTransitEncryptionConfiguration.tlsCertificateConfiguration"
            );
            one_of(
                &format!("{tf}.certificateProviderType"),
                &tls.certificate_provider_type,
                &["PEM"],
                false,
            )?;
            optional(
                &format!("{tf}.publicCertificateSecretArn"),
                &tls.public_certificate_secret_arn,
                SECRET_ARN,
            )?;
            optional(
                &format!("{tf}.privateCertificateSecretArn"),
                &tls.private_certificate_secret_arn,
                SECRET_ARN,
            )?;
        }
    }
    if let Some(authn) = &data.authentication_configuration {
        let af = format!("{f}.authenticationConfiguration");
        if let Some(ic) = &authn.identity_center_configuration {
            let icf = format!("{af}.identityCenterConfiguration");
            optional(
                &format!("{icf}.identityCenterInstanceARN"),
                &ic.identity_center_instance_arn,
                IDENTITY_CENTER_INSTANCE_ARN,
            )?;
            optional(
                &format!("{icf}.emrIdentityCenterApplicationARN"),
                &ic.emr_identity_center_application_arn,
                IDENTITY_CENTER_APPLICATION_ARN,
            )?;
        }
        if let Some(iam) = &authn.iam_configuration {
            optional(
                &format!("{af}.iamConfiguration.systemRole"),
                &iam.system_role,
                IAM_ROLE_ARN,
            )?;
        }
    }
    Ok(())
}

pub fn resource_arn(arn: &str) -> ApiResult<()> {
    required("resourceArn", arn, RESOURCE_ARN)
}

pub fn tag_keys(keys: &[String]) -> ApiResult<()> {
    count("tagKeys", keys.len(), 50)?;
    for key in keys {
        required("tagKeys.member", key, TAG_KEY)?;
    }
    Ok(())
}

pub fn tag_map(map: &BTreeMap<String, String>) -> ApiResult<()> {
    tags("tags", map)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_job_templates_log_uri_is_checked_unless_it_has_a_parameter() {
        let template = |log_uri: &str| -> pb::CreateJobTemplateRequest {
            serde_json::from_value(serde_json::json!({
                "name": "t",
                "clientToken": "c",
                "jobTemplateData": {
                    "executionRoleArn": "arn:aws:iam::123456789012:role/r",
                    "releaseLabel": "emr-7.9.0-latest",
                    "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "local:///a.py"}},
                    "parameterConfiguration": {"bucket": {"type": "STRING"}},
                    "configurationOverrides": {"monitoringConfiguration": {
                        "s3MonitoringConfiguration": {"logUri": log_uri}
                    }}
                }
            }))
            .unwrap()
        };
        let err = create_job_template(&template("not-an-s3-uri")).unwrap_err();
        assert!(err.to_string().contains("is not a valid S3 URI"), "{err}");
        create_job_template(&template("s3://logs/team-a/")).unwrap();
        create_job_template(&template("s3://${bucket}/team-a/")).unwrap();
    }

    #[test]
    fn timestamps_need_nanoseconds_within_a_second() {
        let at = |seconds, nanos| prost_types::Timestamp { seconds, nanos };
        assert!(timestamp("createdAfter", None).is_ok());
        assert!(timestamp("createdAfter", Some(&at(i64::MAX, 999_999_999))).is_ok());
        assert!(timestamp("createdAfter", Some(&at(i64::MIN, 0))).is_ok());
        for nanos in [-1, 1_000_000_000, i32::MAX] {
            let err = timestamp("createdBefore", Some(&at(0, nanos))).unwrap_err();
            assert!(err.to_string().contains("'createdBefore'"), "{err}");
        }
    }

    use super::*;

    fn submit_driver() -> pb::JobDriver {
        pb::JobDriver {
            spark_submit_job_driver: Some(pb::SparkSubmitJobDriver {
                entry_point: "local:///opt/spark/examples/src/main/python/pi.py".into(),
                ..Default::default()
            }),
            spark_sql_job_driver: None,
        }
    }

    #[test]
    fn job_driver_needs_exactly_one_driver() {
        let mut both = submit_driver();
        both.spark_sql_job_driver = Some(Default::default());
        let err = job_driver("jobDriver", &both).unwrap_err();
        assert!(err.to_string().contains("exactly one"), "{err}");
        assert!(job_driver("jobDriver", &pb::JobDriver::default()).is_err());
        assert!(job_driver("jobDriver", &submit_driver()).is_ok());
    }

    #[test]
    fn log_settings_are_checked() {
        let overrides = |m: pb::MonitoringConfiguration| pb::ConfigurationOverrides {
            application_configuration: vec![],
            monitoring_configuration: Some(m),
        };
        let bad_uri = overrides(pb::MonitoringConfiguration {
            s3_monitoring_configuration: Some(pb::S3MonitoringConfiguration {
                log_uri: "logs/here".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        let err = configuration_overrides("configurationOverrides", &bad_uri).unwrap_err();
        assert!(err.to_string().contains(
            "configurationOverrides.monitoringConfiguration.s3MonitoringConfiguration.logUri"
        ));
        let tiny = overrides(pb::MonitoringConfiguration {
            container_log_rotation_configuration: Some(pb::ContainerLogRotationConfiguration {
                rotation_size: "1KB".into(),
                max_files_to_keep: 3,
            }),
            ..Default::default()
        });
        assert!(
            configuration_overrides("c", &tiny)
                .unwrap_err()
                .to_string()
                .contains("between 2KB and 2GB")
        );
    }

    #[test]
    fn scheduler_limits_are_one_to_a_thousand() {
        let s = pb::SchedulerConfiguration {
            max_in_queue_job_runs: Some(0),
            max_concurrent_job_runs: None,
        };
        let err = scheduler_configuration("schedulerConfiguration", &s).unwrap_err();
        assert!(
            err.to_string()
                .contains("schedulerConfiguration.maxInQueueJobRuns")
        );
    }
}
