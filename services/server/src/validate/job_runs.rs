//! StartJobRun as the request gives it, the job run once its template is
//! merged in, ListJobRuns, and the parts a job template shares with a run
//! (driver, configuration overrides, monitoring).

use super::rules::{self, *};
use super::{MAX_JOB_RUN_BYTES, MAX_REQUEST_BYTES, id, next_token, size, states};
use crate::error::{ApiError, ApiResult};
use prost::Message;
use sparkvc_proto::v1 as pb;

pub const JOB_RUN_STATES: &[&str] = &[
    "PENDING",
    "SUBMITTED",
    "RUNNING",
    "FAILED",
    "CANCELLED",
    "CANCEL_PENDING",
    "COMPLETED",
];
const ENABLED_DISABLED: &[&str] = &["ENABLED", "DISABLED"];
/// AWS caps configuration lists (and their nesting) at 100 entries.
const MAX_CONFIGURATIONS: usize = 100;

pub fn list_job_runs(req: &pb::ListJobRunsRequest) -> ApiResult<()> {
    id("virtualClusterId", &req.virtual_cluster_id)?;
    optional("name", &req.name, RESOURCE_NAME)?;
    states("states", &req.states, JOB_RUN_STATES)?;
    next_token(&req.next_token)
}

/// The members of StartJobRun as the request gives them. Whether the run is
/// complete (role, release, driver) is checked after a job template, if any,
/// has been merged in: see [`complete_job_run`].
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

pub(super) fn job_driver(field: &str, driver: &pb::JobDriver) -> ApiResult<()> {
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

pub(super) fn configurations(
    field: &str,
    list: &[pb::Configuration],
    depth: usize,
) -> ApiResult<()> {
    count(field, list.len(), MAX_CONFIGURATIONS)?;
    // Two levels, as the model's documentation says (EMR's `spark-env` with
    // its nested `export`); an entry's own empty list is not a third level.
    if depth > 2 && !list.is_empty() {
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
            PROPERTY_VALUE,
        )?;
        configurations(&format!("{f}.configurations"), &c.configurations, depth + 1)?;
    }
    Ok(())
}

pub(super) fn configuration_overrides(
    field: &str,
    o: &pb::ConfigurationOverrides,
) -> ApiResult<()> {
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

/// A log destination must be an S3 URI naming a bucket.
pub(super) fn s3_uri(field: &str, uri: &str) -> ApiResult<()> {
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
    let bytes = sparkvc_proto::limits::rotation_bytes(size).unwrap_or(0);
    if !(2048..=2 << 30).contains(&bytes) {
        return Err(ApiError::validation(format!(
            "Value '{size}' at '{field}' failed to satisfy constraint: rotation size must be between 2KB and 2GB."
        )));
    }
    Ok(())
}
