//! Where a run's logs go: the S3 and CloudWatch destinations its
//! `monitoringConfiguration` names, the run's path inside them, and where its
//! Spark event logs (the persistent app UI) are written. The log sidecars
//! (`logging`), the log reader and the log-access check all start here, so
//! they agree on every location.

use super::RenderError;
use sparkvc_proto::v1::JobRun;

/// Where a run's logs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destinations {
    pub s3: Option<S3Destination>,
    pub cloudwatch: Option<CloudWatchDestination>,
}

/// `s3://bucket[/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Destination {
    pub bucket: String,
    /// Without leading or trailing `/`; may be empty.
    pub prefix: String,
}

impl S3Destination {
    /// Parses a `logUri` (validated as an `s3://` URI by the API already).
    pub fn parse(uri: &str) -> Result<Self, RenderError> {
        let field = "monitoringConfiguration.s3MonitoringConfiguration.logUri";
        let rest = uri.strip_prefix("s3://").ok_or_else(|| {
            RenderError::user(field, format!("{field} {uri:?} is not an s3:// URI"))
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(RenderError::user(
                field,
                format!("{field} {uri:?} names no bucket"),
            ));
        }
        Ok(Self {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    /// The key of `path` under the prefix.
    pub fn key(&self, path: &str) -> String {
        if self.prefix.is_empty() {
            path.to_string()
        } else {
            format!("{}/{path}", self.prefix)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudWatchDestination {
    pub log_group: String,
    /// `logStreamNamePrefix`; may be empty.
    pub stream_prefix: String,
}

impl CloudWatchDestination {
    /// The stream name of `path` under the prefix.
    pub fn stream(&self, path: &str) -> String {
        if self.stream_prefix.is_empty() {
            path.to_string()
        } else {
            format!("{}/{path}", self.stream_prefix)
        }
    }
}

/// The destinations a run's `monitoringConfiguration` names, if any.
pub fn destinations(run: &JobRun) -> Result<Option<Destinations>, RenderError> {
    let Some(monitoring) = run
        .configuration_overrides
        .as_ref()
        .and_then(|o| o.monitoring_configuration.as_ref())
    else {
        return Ok(None);
    };
    let s3 = monitoring
        .s3_monitoring_configuration
        .as_ref()
        .map(|s3| S3Destination::parse(&s3.log_uri))
        .transpose()?;
    let cloudwatch = monitoring
        .cloud_watch_monitoring_configuration
        .as_ref()
        .map(|cw| CloudWatchDestination {
            log_group: cw.log_group_name.clone(),
            stream_prefix: cw.log_stream_name_prefix.trim_matches('/').to_string(),
        });
    Ok((s3.is_some() || cloudwatch.is_some()).then_some(Destinations { s3, cloudwatch }))
}

/// Where a run's Spark event logs go (`spark.eventLog.dir`), which is what
/// keeps its Spark UI available after it ends: none when `persistentAppUI`
/// is `DISABLED`; else the server's app-UI event log directory (the one its
/// History Server reads) when configured; else the run's S3 log location
/// `s3a://<bucket>/<prefix>/<vcId>/jobs/<jobId>/sparklogs/`; else none.
pub fn event_log_dir(
    run: &JobRun,
    server_dir: Option<&str>,
) -> Result<Option<String>, RenderError> {
    let monitoring = run
        .configuration_overrides
        .as_ref()
        .and_then(|o| o.monitoring_configuration.as_ref());
    if monitoring.is_some_and(|m| m.persistent_app_ui == "DISABLED") {
        return Ok(None);
    }
    if let Some(dir) = server_dir {
        return Ok(Some(dir.to_string()));
    }
    Ok(destinations(run)?.and_then(|d| d.s3).map(|s3| {
        let key = s3.key(&format!(
            "{}/sparklogs/",
            run_path(&run.virtual_cluster_id, &run.id)
        ));
        format!("s3a://{}/{key}", s3.bucket)
    }))
}

/// The part of every log location that names the run: `<vcId>/jobs/<jobId>`.
pub fn run_path(virtual_cluster_id: &str, job_run_id: &str) -> String {
    format!("{virtual_cluster_id}/jobs/{job_run_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(monitoring: serde_json::Value) -> JobRun {
        serde_json::from_value(
            json!({"configurationOverrides": {"monitoringConfiguration": monitoring}}),
        )
        .unwrap()
    }

    #[test]
    fn destinations_come_from_the_monitoring_configuration() {
        assert_eq!(destinations(&JobRun::default()).unwrap(), None);
        assert_eq!(
            destinations(&run(json!({"persistentAppUI": "ENABLED"}))).unwrap(),
            None
        );
        let both = destinations(&run(json!({
            "s3MonitoringConfiguration": {"logUri": "s3://logs/team-a/"},
            "cloudWatchMonitoringConfiguration": {"logGroupName": "/emr/a", "logStreamNamePrefix": "spark"}
        })))
        .unwrap()
        .unwrap();
        let s3 = both.s3.unwrap();
        assert_eq!((s3.bucket.as_str(), s3.prefix.as_str()), ("logs", "team-a"));
        assert_eq!(
            s3.key("vc/jobs/r/job-metadata.log"),
            "team-a/vc/jobs/r/job-metadata.log"
        );
        assert_eq!(S3Destination::parse("s3://logs").unwrap().key("x"), "x");
        let cw = both.cloudwatch.unwrap();
        assert_eq!(cw.stream("vc/jobs/r"), "spark/vc/jobs/r");
        let err = S3Destination::parse("s3:///x").unwrap_err();
        assert!(err.to_string().contains("logUri"), "{err}");
    }
}
