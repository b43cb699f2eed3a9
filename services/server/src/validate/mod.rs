//! Request validation: every length, pattern, enum and count limit of the
//! emr-containers model, checked before anything is stored. Pure functions
//! over the wire types; each error names the member that broke the rule.

mod job_runs;
mod job_templates;
pub mod rules;
mod security_configurations;
mod virtual_clusters;

#[cfg(test)]
mod tests;

pub use job_runs::{
    JOB_RUN_STATES, MAX_ATTEMPTS_LIMIT, complete_job_run, list_job_runs, start_job_run,
};
pub use job_templates::create_job_template;
pub use security_configurations::create_security_configuration;
pub use virtual_clusters::{
    VIRTUAL_CLUSTER_STATES, create_virtual_cluster, list_virtual_clusters, namespace_of,
    update_virtual_cluster,
};

use crate::error::{ApiError, ApiResult};
use rules::*;
use std::collections::BTreeMap;

/// The page size of a listing that gives no `maxResults`.
pub const DEFAULT_PAGE_SIZE: usize = 50;

pub fn id(field: &str, value: &str) -> ApiResult<()> {
    required(field, value, RESOURCE_ID)
}

/// `maxResults` is unconstrained in the model; sparkvc pages at most 1000.
pub fn page_size(max_results: Option<i32>) -> ApiResult<usize> {
    match max_results {
        None => Ok(DEFAULT_PAGE_SIZE),
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

pub fn resource_arn(arn: &str) -> ApiResult<()> {
    required("resourceArn", arn, RESOURCE_ARN)
}

/// UntagResource's `tagKeys`: required, as in AWS (an empty list is how an
/// absent one arrives over gRPC and REST alike).
pub fn tag_keys(keys: &[String]) -> ApiResult<()> {
    if keys.is_empty() {
        return Err(rules::missing("tagKeys"));
    }
    count("tagKeys", keys.len(), 50)?;
    for key in keys {
        required("tagKeys.member", key, TAG_KEY)?;
    }
    Ok(())
}

/// TagResource's `tags`: required, as in AWS.
pub fn tag_map(map: &BTreeMap<String, String>) -> ApiResult<()> {
    if map.is_empty() {
        return Err(rules::missing("tags"));
    }
    tags("tags", map)
}
