//! CreateJobTemplate: the template's run parts, and its parameters.

use super::job_runs::{configurations, job_driver, s3_uri};
use super::rules::*;
use super::{MAX_REQUEST_BYTES, size};
use crate::error::ApiResult;
use prost::Message;
use sparkvc_proto::v1 as pb;

const PARAMETER_TYPES: &[&str] = &["NUMBER", "STRING"];

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
