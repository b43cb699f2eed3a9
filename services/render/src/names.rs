//! Deterministic names and labels for what a job run creates.
//!
//! Every name is a pure function of the job run (and, for service accounts,
//! of the AWS account and the execution role), so a create is idempotent and
//! a restarted control plane finds what it made.
//!
//! | object | name |
//! |---|---|
//! | service accounts | `emr-containers-sa-spark-{client,driver,executor}-<account>-<base36(roleName)>` (EMR's) |
//! | RoleBinding for those accounts | `sparkvc-spark-<account>-<base36(roleName)>` |
//! | job-runner pod | `<attempt>` (EMR names its job-runner Job so: the job run ID) |
//! | ConfigMap (Spark conf, pod templates) | `spark-<attempt>-conf` |
//! | driver pod | `spark-<attempt>-driver` |
//! | executor pods | `spark-<attempt>-exec-<n>` (Spark appends `-<n>` to the prefix) |
//!
//! `<attempt>` ([`attempt_name`]) is the job run ID for a run's first attempt
//! and `<jobRunId>-<n>` for its attempt n (a run with a retry policy), so each
//! attempt has its own objects and a late event of a failed attempt cannot be
//! mistaken for the next one.
//!
//! Job run IDs are 19 lowercase base36 characters and attempts at most two
//! digits, so every job-run name above is a valid DNS label (≤ 63 characters).

use super::RenderError;
use std::collections::BTreeMap;

/// EMR on EKS's label for the job run ID, kept so existing dashboards work.
pub const EMR_JOB_ID: &str = "emr-containers.amazonaws.com/job.id";
/// EMR on EKS's label for the virtual cluster ID.
pub const EMR_VIRTUAL_CLUSTER_ID: &str = "emr-containers.amazonaws.com/virtual-cluster-id";
/// The standard "who manages this" label; its value is [`MANAGED_BY_SPARKVC`].
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_SPARKVC: &str = "sparkvc";
/// sparkvc's own label for the job run ID.
pub const JOB_RUN_ID: &str = "sparkvc.io/job-run-id";
/// sparkvc's own label for the virtual cluster ID.
pub const VIRTUAL_CLUSTER_ID: &str = "sparkvc.io/virtual-cluster-id";
/// Which part of a job run a pod is: [`COMPONENT_JOB_RUNNER`],
/// [`COMPONENT_DRIVER`] or [`COMPONENT_EXECUTOR`]. Lets one label selector tell
/// the job-runner pod from the Spark pods.
pub const COMPONENT: &str = "sparkvc.io/component";
pub const COMPONENT_JOB_RUNNER: &str = "job-runner";
pub const COMPONENT_DRIVER: &str = "driver";
pub const COMPONENT_EXECUTOR: &str = "executor";
/// Set by Spark itself on the pods it creates: `driver` or `executor`.
pub const SPARK_ROLE: &str = "spark-role";
/// Set by Spark itself on the pods it creates: the application ID.
pub const SPARK_APP_SELECTOR: &str = "spark-app-selector";

/// The IRSA annotation EKS reads on a service account.
pub const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

/// Longest name of an object whose name must be a DNS subdomain.
pub const MAX_SUBDOMAIN_LEN: usize = 253;

/// The attempt label: which attempt of its run a pod belongs to (`1`, `2`, …).
pub const ATTEMPT: &str = "sparkvc.io/attempt";

/// The name every object of one attempt of a run derives from: the job run
/// ID for attempt 1, `<jobRunId>-<attempt>` after.
pub fn attempt_name(job_run_id: &str, attempt: u32) -> String {
    if attempt <= 1 {
        job_run_id.to_string()
    } else {
        format!("{job_run_id}-{attempt}")
    }
}

/// The attempts of a run that may still have objects on the cluster when it
/// is on attempt `attempt`: that one, and the one before (whose objects are
/// deleted only when its successor starts).
pub fn live_attempt_names(job_run_id: &str, attempt: u32) -> Vec<String> {
    (attempt.saturating_sub(1).max(1)..=attempt.max(1))
        .map(|n| attempt_name(job_run_id, n))
        .collect()
}

/// The job-runner pod: the attempt name itself (for attempt 1 the job run
/// ID, the name EMR gives its job-runner Job).
pub fn job_runner_name(attempt_name: &str) -> String {
    attempt_name.to_string()
}

/// The ConfigMap holding `spark-defaults.conf` and the pod templates.
pub fn config_map_name(attempt_name: &str) -> String {
    format!("spark-{attempt_name}-conf")
}

/// The Spark driver pod (`spark.kubernetes.driver.pod.name`).
pub fn driver_pod_name(attempt_name: &str) -> String {
    format!("spark-{attempt_name}-driver")
}

/// The executor pod name prefix (`spark.kubernetes.executor.podNamePrefix`),
/// to which Spark appends `-exec-<n>`.
pub fn executor_pod_prefix(attempt_name: &str) -> String {
    format!("spark-{attempt_name}")
}

/// The three IRSA service accounts of one (account, execution role) pair,
/// shared by every job run of that role in a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountNames {
    /// Runs the job-runner pod (spark-submit).
    pub client: String,
    /// Runs the Spark driver.
    pub driver: String,
    /// Runs the Spark executors.
    pub executor: String,
}

impl ServiceAccountNames {
    /// EMR's naming: `emr-containers-sa-spark-<kind>-<account>-<base36(roleName)>`.
    ///
    /// Names longer than [`MAX_SUBDOMAIN_LEN`] are cut to that length (and a
    /// trailing `-` dropped). This never happens for real IAM role names (at
    /// most 64 bytes, so at most 100 base36 digits and 146 characters in all),
    /// and is deterministic if it ever does.
    pub fn new(account_id: &str, execution_role_arn: &str) -> Result<Self, RenderError> {
        let suffix = role_suffix(account_id, execution_role_arn)?;
        let name =
            |kind: &str| truncate_subdomain(format!("emr-containers-sa-spark-{kind}-{suffix}"));
        Ok(Self {
            client: name("client"),
            driver: name("driver"),
            executor: name("executor"),
        })
    }

    pub fn all(&self) -> [&str; 3] {
        [&self.client, &self.driver, &self.executor]
    }
}

/// The RoleBinding that grants the Spark Role to one execution role's
/// client and driver service accounts.
pub fn role_binding_name(
    account_id: &str,
    execution_role_arn: &str,
) -> Result<String, RenderError> {
    let suffix = role_suffix(account_id, execution_role_arn)?;
    Ok(truncate_subdomain(format!("sparkvc-spark-{suffix}")))
}

/// `<account>-<base36(roleName)>`.
fn role_suffix(account_id: &str, execution_role_arn: &str) -> Result<String, RenderError> {
    if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RenderError::Internal(format!(
            "the AWS account ID {account_id:?} is not 12 digits"
        )));
    }
    let role = role_name(execution_role_arn)?;
    Ok(format!("{account_id}-{}", base36(role.as_bytes())))
}

/// The role name of an IAM role ARN: its last path segment
/// (`arn:aws:iam::123456789012:role/path/MyRole` → `MyRole`).
pub fn role_name(execution_role_arn: &str) -> Result<&str, RenderError> {
    let resource = execution_role_arn
        .splitn(6, ':')
        .nth(5)
        .filter(|r| r.starts_with("role/"))
        .ok_or_else(|| RenderError::User {
            field: "executionRoleArn".into(),
            message: format!("executionRoleArn {execution_role_arn:?} is not an IAM role ARN"),
        })?;
    match resource.rsplit('/').next() {
        Some(name) if !name.is_empty() => Ok(name),
        _ => Err(RenderError::User {
            field: "executionRoleArn".into(),
            message: format!("executionRoleArn {execution_role_arn:?} has an empty role name"),
        }),
    }
}

/// `bytes` read as one big-endian unsigned integer, written in lowercase
/// base 36 without leading zeros (`"0"` for no bytes or all-zero bytes).
pub fn base36(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    // Long division of the number (as base-256 digits, in place) by 36^6,
    // the largest power of 36 below 2^32: six base-36 digits a pass rather
    // than one, and no allocation per pass. Rendering names this way twice a
    // submission, so it showed in profiles.
    const CHUNK: u64 = 36u64.pow(6);
    let mut number: Vec<u8> = bytes.to_vec();
    let mut start = number.iter().position(|&b| b != 0).unwrap_or(number.len());
    let mut out = Vec::with_capacity(bytes.len() * 8 / 5 + 6);
    while start < number.len() {
        let mut remainder: u64 = 0;
        for byte in &mut number[start..] {
            let acc = (remainder << 8) | u64::from(*byte);
            *byte = (acc / CHUNK) as u8;
            remainder = acc % CHUNK;
        }
        while start < number.len() && number[start] == 0 {
            start += 1;
        }
        // Six digits, least significant first; the last chunk's leading
        // zeros are dropped below.
        for _ in 0..6 {
            out.push(DIGITS[(remainder % 36) as usize]);
            remainder /= 36;
        }
    }
    while out.last() == Some(&b'0') {
        out.pop();
    }
    if out.is_empty() {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8(out).expect("base36 digits are ASCII")
}

fn truncate_subdomain(mut name: String) -> String {
    if name.len() > MAX_SUBDOMAIN_LEN {
        name.truncate(MAX_SUBDOMAIN_LEN);
        while name.ends_with('-') {
            name.pop();
        }
    }
    name
}

/// The labels every object of a job run carries (EMR's and sparkvc's).
pub fn job_run_labels(
    job_run_id: &str,
    virtual_cluster_id: &str,
    attempt: u32,
) -> BTreeMap<String, String> {
    let mut labels = virtual_cluster_labels(virtual_cluster_id);
    labels.insert(EMR_JOB_ID.into(), job_run_id.into());
    labels.insert(JOB_RUN_ID.into(), job_run_id.into());
    labels.insert(ATTEMPT.into(), attempt.max(1).to_string());
    labels
}

/// The attempt a pod's labels name; 1 for pods made before the label existed.
pub fn attempt_of_labels(labels: Option<&BTreeMap<String, String>>) -> u32 {
    labels
        .and_then(|l| l.get(ATTEMPT))
        .and_then(|a| a.parse().ok())
        .unwrap_or(1)
}

/// The labels of objects that belong to a virtual cluster but to no single
/// job run (Role, RoleBinding, NetworkPolicy, service accounts).
pub fn virtual_cluster_labels(virtual_cluster_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.into(), MANAGED_BY_SPARKVC.into()),
        (EMR_VIRTUAL_CLUSTER_ID.into(), virtual_cluster_id.into()),
        (VIRTUAL_CLUSTER_ID.into(), virtual_cluster_id.into()),
    ])
}

/// The Spark containers' names, as Spark on Kubernetes gives them.
pub const DRIVER_CONTAINER: &str = "spark-kubernetes-driver";
pub const EXECUTOR_CONTAINER: &str = "spark-kubernetes-executor";

/// The emptyDir shared by the Spark container and the log sidecars, and
/// where it is mounted.
pub const USER_LOG_VOLUME: &str = "sparkvc-user-logs";
pub const USER_LOG_DIR: &str = "/var/log/spark/user";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_of_hand_computed_values() {
        assert_eq!(base36(&[]), "0");
        assert_eq!(base36(&[0]), "0");
        assert_eq!(base36(&[0x01]), "1");
        assert_eq!(base36(&[35]), "z");
        assert_eq!(base36(&[36]), "10");
        assert_eq!(base36(b"a"), "2p"); // 97 = 2*36 + 25
        assert_eq!(base36(&[0x01, 0x00]), "74"); // 256 = 7*36 + 4
        assert_eq!(base36(&[0xff, 0xff]), "1ekf"); // 65535 = 1*36^3 + 14*36^2 + 20*36 + 15
        assert_eq!(base36(&[0, 0, 0x01]), "1"); // leading zero bytes do not count
        // "AB" = 0x4142 = 16706 = 12*36^2 + 32*36 + 2
        assert_eq!(base36(b"AB"), "cw2");
    }

    #[test]
    fn base36_agrees_with_u128_arithmetic() {
        for text in ["MyRole", "EMRJobRole", "a+b=c,d.e@f-g_h"] {
            let bytes = text.as_bytes();
            assert!(bytes.len() <= 16);
            let mut n = bytes.iter().fold(0u128, |n, &b| (n << 8) | u128::from(b));
            let mut want = String::new();
            while n > 0 {
                want.insert(0, char::from_digit((n % 36) as u32, 36).unwrap());
                n /= 36;
            }
            assert_eq!(base36(bytes), want, "{text}");
        }
    }

    /// Long names (IAM allows 64 bytes) against Horner's rule in base 36:
    /// reading the base-36 answer back digit by digit, times 256 plus each
    /// byte, must give the same digits.
    #[test]
    fn base36_of_long_names_reads_back() {
        for len in [17, 31, 32, 33, 63, 64] {
            for fill in [b'a', b'Z', 0xff, 0x01] {
                let mut bytes = vec![fill; len];
                bytes[0] = b'R';
                // The number, rebuilt as base-36 digits (least significant
                // first) by multiplying by 256 and adding each byte.
                let mut digits: Vec<u32> = vec![];
                for &b in &bytes {
                    let mut carry = u32::from(b);
                    for d in &mut digits {
                        let v = *d * 256 + carry;
                        *d = v % 36;
                        carry = v / 36;
                    }
                    while carry > 0 {
                        digits.push(carry % 36);
                        carry /= 36;
                    }
                }
                let want: String = digits
                    .iter()
                    .rev()
                    .map(|&d| char::from_digit(d, 36).unwrap())
                    .collect();
                assert_eq!(base36(&bytes), want, "{len} bytes of {fill}");
            }
        }
    }

    #[test]
    fn role_name_is_the_last_path_segment() {
        assert_eq!(
            role_name("arn:aws:iam::123456789012:role/path/to/MyRole").unwrap(),
            "MyRole"
        );
        assert_eq!(role_name("arn:aws:iam::123456789012:role/R").unwrap(), "R");
        assert!(role_name("arn:aws:iam::123456789012:user/bob").is_err());
        assert!(role_name("arn:aws:iam::123456789012:role/").is_err());
        assert!(role_name("not-an-arn").is_err());
    }

    #[test]
    fn service_account_names_follow_emr() {
        let names =
            ServiceAccountNames::new("123456789012", "arn:aws:iam::123456789012:role/a").unwrap();
        assert_eq!(
            names.client,
            "emr-containers-sa-spark-client-123456789012-2p"
        );
        assert_eq!(
            names.driver,
            "emr-containers-sa-spark-driver-123456789012-2p"
        );
        assert_eq!(
            names.executor,
            "emr-containers-sa-spark-executor-123456789012-2p"
        );
        assert_eq!(
            role_binding_name("123456789012", "arn:aws:iam::123456789012:role/x/a").unwrap(),
            "sparkvc-spark-123456789012-2p"
        );
    }

    #[test]
    fn longest_iam_role_name_fits_and_overlong_names_are_cut() {
        let role = "R".repeat(64);
        let arn = format!("arn:aws:iam::123456789012:role/{role}");
        let names = ServiceAccountNames::new("123456789012", &arn).unwrap();
        assert!(names.executor.len() <= 150, "{}", names.executor.len());
        let cut = truncate_subdomain(format!("{}-{}", "a".repeat(252), "b"));
        assert_eq!(cut, "a".repeat(252));
    }

    #[test]
    fn bad_account_id_is_an_internal_error() {
        let err =
            ServiceAccountNames::new("12345", "arn:aws:iam::123456789012:role/a").unwrap_err();
        assert!(matches!(err, RenderError::Internal(_)));
    }

    #[test]
    fn job_run_object_names() {
        let id = "0123456789abcdefghi";
        assert_eq!(job_runner_name(id), id);
        assert_eq!(config_map_name(id), "spark-0123456789abcdefghi-conf");
        assert_eq!(driver_pod_name(id), "spark-0123456789abcdefghi-driver");
        assert_eq!(executor_pod_prefix(id), "spark-0123456789abcdefghi");
        let labels = job_run_labels(id, "vc", 1);
        assert_eq!(labels[ATTEMPT], "1");
        assert_eq!(attempt_of_labels(Some(&labels)), 1);
        assert_eq!(attempt_of_labels(None), 1);
        let second = attempt_name(id, 2);
        assert_eq!(second, "0123456789abcdefghi-2");
        assert_eq!(
            driver_pod_name(&second),
            "spark-0123456789abcdefghi-2-driver"
        );
        assert_eq!(attempt_name(id, 1), id);
        assert_eq!(live_attempt_names(id, 1), [id]);
        assert_eq!(
            live_attempt_names(id, 3),
            [attempt_name(id, 2), attempt_name(id, 3)]
        );
        assert_eq!(attempt_of_labels(Some(&job_run_labels(id, "vc", 2))), 2);
        assert_eq!(labels[EMR_JOB_ID], id);
        assert_eq!(labels[JOB_RUN_ID], id);
        assert_eq!(labels[EMR_VIRTUAL_CLUSTER_ID], "vc");
        assert_eq!(labels[VIRTUAL_CLUSTER_ID], "vc");
        assert_eq!(labels[MANAGED_BY], "sparkvc");
    }
}
