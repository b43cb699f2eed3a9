//! Reads a job run's shipped logs back (GetJobRunLogs, a sparkvc
//! extension), from the layout `render::logging` gives the sidecars, with
//! the run's execution role (assumed through STS), never the server's own
//! credentials. Works after the pods are gone; a
//! `next_token` lets a client follow a running job's log.
//!
//! - S3: the parts `<…>/<pod>/<stream>-<n>.gz` are read in order of `n` and
//!   un-gzipped; the token is the number of parts already returned.
//! - CloudWatch: the stream `<…>/<pod>/<stream>` is read from its head; the
//!   token is CloudWatch's forward token.
//!
//! The driver is the current attempt's driver pod; the job-runner is the
//! current attempt's job-runner pod (`<job name>-<suffix>`).

use crate::error::{ApiError, ApiResult};
use crate::render::log_destinations::{self, Destinations};
use crate::render::names;
use crate::state;
use crate::validate::rules;
use sparkvc_proto::v1 as pb;
use std::io::Read;

/// Which of a run's containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogContainer {
    Driver,
    JobRunner,
}

/// What to read, decided from the request and the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    pub container: LogContainer,
    /// `stdout` or `stderr`.
    pub stream: &'static str,
    pub source: LogSourceKind,
    pub next_token: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSourceKind {
    S3,
    CloudWatch,
}

/// Parses and checks a request against the run's log destinations.
pub fn query(req: &pb::GetJobRunLogsRequest, destinations: &Destinations) -> ApiResult<LogQuery> {
    rules::one_of(
        "container",
        &req.container,
        &["DRIVER", "JOB_RUNNER"],
        false,
    )?;
    rules::one_of("stream", &req.stream, &["STDOUT", "STDERR"], false)?;
    rules::one_of("source", &req.source, &["S3", "CLOUDWATCH"], false)?;
    let container = match req.container.as_str() {
        "JOB_RUNNER" => LogContainer::JobRunner,
        _ => LogContainer::Driver,
    };
    let stream = match req.stream.as_str() {
        "STDERR" => "stderr",
        _ => "stdout",
    };
    let source = match req.source.as_str() {
        "S3" => LogSourceKind::S3,
        "CLOUDWATCH" => LogSourceKind::CloudWatch,
        _ if destinations.cloudwatch.is_some() => LogSourceKind::CloudWatch,
        _ => LogSourceKind::S3,
    };
    let (configured, name, section) = match source {
        LogSourceKind::S3 => (destinations.s3.is_some(), "S3", "s3MonitoringConfiguration"),
        LogSourceKind::CloudWatch => (
            destinations.cloudwatch.is_some(),
            "CloudWatch",
            "cloudWatchMonitoringConfiguration",
        ),
    };
    if !configured {
        return Err(ApiError::validation(format!(
            "The job run ships no logs to {name}: its monitoringConfiguration has no {section} section."
        )));
    }
    Ok(LogQuery {
        container,
        stream,
        source,
        next_token: req.next_token.clone(),
    })
}

/// The directory (S3 key or CloudWatch stream prefix, under the run's
/// path) holding the pods of `container`, and whether a pod name is the
/// one wanted.
fn pods_of(run: &pb::JobRun, container: LogContainer) -> (&'static str, impl Fn(&str) -> bool) {
    let attempt = names::attempt_name(&run.id, state::attempt_of(run));
    let driver = names::driver_pod_name(&attempt);
    let runner = names::job_runner_name(&attempt);
    let dir = match container {
        LogContainer::Driver => "containers/",
        LogContainer::JobRunner => "control-logs/",
    };
    (dir, move |pod: &str| match container {
        LogContainer::Driver => pod == driver,
        LogContainer::JobRunner => pod == runner,
    })
}

/// The S3 parts of one stream among `keys` (all under the run's directory),
/// in upload order: `(n, key)` for keys ending `/<pod>/<stream>-<n>.gz`.
pub fn s3_parts(
    keys: &[String],
    wanted_pod: impl Fn(&str) -> bool,
    stream: &str,
) -> Vec<(u64, String)> {
    let mut parts: Vec<(u64, String)> = keys
        .iter()
        .filter_map(|key| {
            let (dir, file) = key.rsplit_once('/')?;
            let pod = dir.rsplit('/').next()?;
            let n = file
                .strip_prefix(stream)?
                .strip_prefix('-')?
                .strip_suffix(".gz")?
                .parse()
                .ok()?;
            wanted_pod(pod).then(|| (n, key.clone()))
        })
        .collect();
    parts.sort();
    parts
}

/// The CloudWatch stream of one container among `streams`: one ending
/// `/<pod>/<stream>`; the newest pod's when several match.
pub fn cloudwatch_stream(
    streams: &[String],
    wanted_pod: impl Fn(&str) -> bool,
    stream: &str,
) -> Option<String> {
    streams
        .iter()
        .rfind(|name| {
            name.strip_suffix(stream)
                .and_then(|rest| rest.strip_suffix('/'))
                .and_then(|dir| dir.rsplit('/').next())
                .is_some_and(&wanted_pod)
        })
        .cloned()
}

fn internal(what: &str, text: String) -> ApiError {
    ApiError::Internal(format!("{what}: {text}"))
}

/// Reads what `query` asks for.
pub async fn read(
    run: &pb::JobRun,
    destinations: &Destinations,
    query: &LogQuery,
) -> ApiResult<pb::GetJobRunLogsResponse> {
    let run_path = log_destinations::run_path(&run.virtual_cluster_id, &run.id);
    let (dir, wanted) = pods_of(run, query.container);
    // As the run's execution role, never as the server: a caller who names
    // someone else's bucket as a run's logUri must not read it through us.
    let role = crate::aws::assume_execution_role(crate::aws::sdk_config().await, run)
        .await
        .map_err(|e| {
            ApiError::validation(format!(
                "sparkvc could not assume the execution role {} to read the job run's logs (sts:AssumeRole): {e}",
                run.execution_role_arn
            ))
        })?;
    let config = &role;
    match query.source {
        LogSourceKind::S3 => {
            let s3 = destinations.s3.as_ref().expect("checked by query()");
            let prefix = s3.key(&format!("{run_path}/{dir}"));
            let skip: usize = match query.next_token.strip_prefix("s3:") {
                Some(n) => n.parse().map_err(|_| bad_token())?,
                None if query.next_token.is_empty() => 0,
                None => return Err(bad_token()),
            };
            let client = crate::aws::s3_client(config);
            let mut keys = Vec::new();
            let mut pages = client
                .list_objects_v2()
                .bucket(&s3.bucket)
                .prefix(&prefix)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    internal("listing the log parts", crate::aws::error_for_client(&e))
                })?;
                keys.extend(
                    page.contents()
                        .iter()
                        .filter_map(|o| o.key().map(str::to_string)),
                );
            }
            let parts = s3_parts(&keys, wanted, query.stream);
            let mut lines = Vec::new();
            for (_, key) in parts.iter().skip(skip) {
                let object = client
                    .get_object()
                    .bucket(&s3.bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| {
                        internal("reading a log part", crate::aws::error_for_client(&e))
                    })?;
                let bytes = object
                    .body
                    .collect()
                    .await
                    .map_err(|e| {
                        tracing::warn!(error = %e, "reading a log part failed");
                        internal("reading a log part", "the connection broke".into())
                    })?
                    .into_bytes();
                let mut text = String::new();
                flate2::read::MultiGzDecoder::new(&bytes[..])
                    .read_to_string(&mut text)
                    .map_err(|e| {
                        internal(
                            &format!("un-gzipping s3://{}/{key}", s3.bucket),
                            e.to_string(),
                        )
                    })?;
                lines.extend(text.lines().map(str::to_string));
            }
            Ok(pb::GetJobRunLogsResponse {
                lines,
                location: format!("s3://{}/{prefix}", s3.bucket),
                next_token: format!("s3:{}", parts.len().max(skip)),
            })
        }
        LogSourceKind::CloudWatch => {
            let cw = destinations
                .cloudwatch
                .as_ref()
                .expect("checked by query()");
            let token = match query.next_token.strip_prefix("cw:") {
                Some(t) => Some(t.to_string()),
                None if query.next_token.is_empty() => None,
                None => return Err(bad_token()),
            };
            let logs = aws_sdk_cloudwatchlogs::Client::new(config);
            let prefix = cw.stream(&format!("{run_path}/{dir}"));
            let location = format!("log group {}, streams {prefix}…", cw.log_group);
            let mut streams = Vec::new();
            let mut pages = logs
                .describe_log_streams()
                .log_group_name(&cw.log_group)
                .log_stream_name_prefix(&prefix)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                match page {
                    Ok(page) => streams.extend(
                        page.log_streams()
                            .iter()
                            .filter_map(|s| s.log_stream_name().map(str::to_string)),
                    ),
                    // Nothing shipped yet.
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_resource_not_found_exception()) =>
                    {
                        break;
                    }
                    Err(e) => {
                        return Err(internal(
                            "listing the log streams",
                            crate::aws::error_for_client(&e),
                        ));
                    }
                }
            }
            let Some(stream) = cloudwatch_stream(&streams, wanted, query.stream) else {
                return Ok(pb::GetJobRunLogsResponse {
                    lines: vec![],
                    location,
                    next_token: query.next_token.clone(),
                });
            };
            let out = logs
                .get_log_events()
                .log_group_name(&cw.log_group)
                .log_stream_name(&stream)
                .start_from_head(true)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| {
                    internal("reading the log stream", crate::aws::error_for_client(&e))
                })?;
            Ok(pb::GetJobRunLogsResponse {
                lines: out
                    .events()
                    .iter()
                    .filter_map(|e| e.message().map(str::to_string))
                    .collect(),
                location: format!("log group {}, stream {stream}", cw.log_group),
                next_token: out
                    .next_forward_token()
                    .map(|t| format!("cw:{t}"))
                    .unwrap_or_default(),
            })
        }
    }
}

fn bad_token() -> ApiError {
    ApiError::validation("The nextToken is not one GetJobRunLogs returned for this source.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_parts_of_one_pod_and_stream_in_upload_order() {
        let keys: Vec<String> = [
            "p/vc/jobs/r/containers/spark-1/spark-r-driver/stdout-10.gz",
            "p/vc/jobs/r/containers/spark-1/spark-r-driver/stdout-2.gz",
            "p/vc/jobs/r/containers/spark-1/spark-r-driver/stderr-0.gz",
            "p/vc/jobs/r/containers/spark-1/spark-r-exec-1/stdout-0.gz",
            "p/vc/jobs/r/containers/spark-1/spark-r-driver/stdout-x.gz",
        ]
        .map(String::from)
        .to_vec();
        let parts = s3_parts(&keys, |pod| pod == "spark-r-driver", "stdout");
        let n: Vec<u64> = parts.iter().map(|(n, _)| *n).collect();
        assert_eq!(n, [2, 10]);
    }

    #[test]
    fn the_cloudwatch_stream_of_the_wanted_pod() {
        let streams: Vec<String> = [
            "pi/vc/jobs/r/control-logs/r/stdout",
            "pi/vc/jobs/r/control-logs/r/stderr",
            "pi/vc/jobs/r/control-logs/r-2/stdout",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            cloudwatch_stream(&streams, |pod| pod == "r", "stdout").as_deref(),
            Some("pi/vc/jobs/r/control-logs/r/stdout")
        );
        assert_eq!(
            cloudwatch_stream(&streams, |pod| pod == "nope", "stdout"),
            None
        );
    }

    #[test]
    fn requests_are_checked_against_the_destinations() {
        let s3_only = Destinations {
            s3: Some(log_destinations::S3Destination::parse("s3://b/p").unwrap()),
            cloudwatch: None,
        };
        let req = |container: &str, stream: &str, source: &str| pb::GetJobRunLogsRequest {
            container: container.into(),
            stream: stream.into(),
            source: source.into(),
            ..Default::default()
        };
        let q = query(&req("", "", ""), &s3_only).unwrap();
        assert_eq!(
            (q.container, q.stream, q.source),
            (LogContainer::Driver, "stdout", LogSourceKind::S3)
        );
        let err = query(&req("", "", "CLOUDWATCH"), &s3_only).unwrap_err();
        assert!(
            err.to_string()
                .contains("cloudWatchMonitoringConfiguration"),
            "{err}"
        );
        let err = query(&req("EXECUTOR", "", ""), &s3_only).unwrap_err();
        assert!(err.to_string().contains("'container'"), "{err}");
    }
}
