//! Before a job run that ships logs starts, sparkvc checks that its
//! execution role can write to the destinations: it assumes the role through
//! STS, then with the role's credentials writes the run's job-metadata
//! object to S3 (`<logUri>/<vcId>/jobs/<jobId>/job-metadata.log`) and/or
//! creates the CloudWatch log group (if missing) and a `job-metadata` stream
//! and puts one event in it. A refusal fails the run at once as USER_ERROR,
//! naming the destination and the action, instead of a run whose logs
//! silently go nowhere.

use crate::render::log_destinations::{self, Destinations};
use aws_config::SdkConfig;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_s3::primitives::ByteStream;
use sparkvc_proto::v1::JobRun;

/// Why the execution role cannot write a run's logs: the stateDetails of
/// the failed run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogAccessError {
    #[error("sparkvc could not assume the execution role {role} (sts:AssumeRole): {reason}")]
    AssumeRole { role: String, reason: String },
    #[error(
        "The execution role cannot write the job's logs: {action} on {destination} failed: {reason}"
    )]
    Denied {
        action: &'static str,
        destination: String,
        reason: String,
    },
}

/// The check, run with the server's own AWS credentials for STS.
#[derive(Debug, Default)]
pub struct LogAccessChecker {}

impl LogAccessChecker {
    pub async fn check(
        &self,
        run: &JobRun,
        destinations: &Destinations,
    ) -> Result<(), LogAccessError> {
        let base = crate::aws::sdk_config().await;
        let role = self.assume(base, run).await?;
        let path = log_destinations::run_path(&run.virtual_cluster_id, &run.id);
        let metadata = serde_json::json!({
            "jobRunId": run.id,
            "virtualClusterId": run.virtual_cluster_id,
            "name": run.name,
            "arn": run.arn,
            "releaseLabel": run.release_label,
            "executionRoleArn": run.execution_role_arn,
        })
        .to_string();
        if let Some(s3) = &destinations.s3 {
            let key = s3.key(&format!("{path}/job-metadata.log"));
            crate::aws::s3_client(&role)
                .put_object()
                .bucket(&s3.bucket)
                .key(&key)
                .content_type("application/json")
                .body(ByteStream::from(metadata.clone().into_bytes()))
                .send()
                .await
                .map_err(|e| LogAccessError::Denied {
                    action: "s3:PutObject",
                    destination: format!("s3://{}/{key}", s3.bucket),
                    reason: crate::aws::error_text(&e),
                })?;
        }
        if let Some(cw) = &destinations.cloudwatch {
            let logs = aws_sdk_cloudwatchlogs::Client::new(&role);
            let group = cw.log_group.as_str();
            let denied = |action, destination: String, reason| LogAccessError::Denied {
                action,
                destination,
                reason,
            };
            if let Err(e) = logs.create_log_group().log_group_name(group).send().await {
                let exists = e
                    .as_service_error()
                    .is_some_and(|s| s.is_resource_already_exists_exception());
                if !exists {
                    let text = crate::aws::error_text(&e);
                    return Err(denied(
                        "logs:CreateLogGroup",
                        format!("log group {group}"),
                        text,
                    ));
                }
            }
            let stream = cw.stream(&format!("{path}/job-metadata"));
            let at = format!("log group {group}, stream {stream}");
            if let Err(e) = logs
                .create_log_stream()
                .log_group_name(group)
                .log_stream_name(&stream)
                .send()
                .await
            {
                let exists = e
                    .as_service_error()
                    .is_some_and(|s| s.is_resource_already_exists_exception());
                if !exists {
                    return Err(denied(
                        "logs:CreateLogStream",
                        at,
                        crate::aws::error_text(&e),
                    ));
                }
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let event = InputLogEvent::builder()
                .timestamp(now)
                .message(metadata)
                .build()
                .map_err(|e| denied("logs:PutLogEvents", at.clone(), e.to_string()))?;
            logs.put_log_events()
                .log_group_name(group)
                .log_stream_name(&stream)
                .log_events(event)
                .send()
                .await
                .map_err(|e| denied("logs:PutLogEvents", at, crate::aws::error_text(&e)))?;
        }
        Ok(())
    }

    async fn assume(&self, base: &SdkConfig, run: &JobRun) -> Result<SdkConfig, LogAccessError> {
        crate::aws::assume_execution_role(base, run)
            .await
            .map_err(|reason| LogAccessError::AssumeRole {
                role: run.execution_role_arn.clone(),
                reason,
            })
    }
}
