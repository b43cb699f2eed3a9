//! The merged Spark configuration of a job run (the classifications it
//! draws on are parsed in `classifications`).
//!
//! Order of precedence, lowest first:
//! 1. sparkvc's defaults that users may change (the release image as
//!    `spark.kubernetes.container.image`; EMR lets users bring a custom image);
//! 2. the `spark-defaults` classification;
//! 3. `--conf` pairs of `sparkSubmitParameters` / `sparkSqlParameters` (as on a
//!    real spark-submit command line, they beat the properties file);
//! 4. what sparkvc must control (namespace, pod names, service accounts, pod
//!    template paths, labels, `waitAppCompletion`). A user setting one of these
//!    in 2 or 3 is a USER_ERROR naming the setting, not a silent override.
//!
//! `spark.kubernetes.submission.waitAppCompletion` is `true`: the job-runner
//! (spark-submit) keeps running until the application ends and exits with its
//! outcome, as EMR's job-runner does, so the Job's state follows the app.
//!
//! The result is written as `spark-defaults.conf` in `java.util.Properties`
//! syntax (Spark loads it with `Properties.load`), one `key value` line per
//! setting, sorted by key. Spark trims leading and trailing whitespace of
//! values read from a properties file, so such whitespace cannot survive.

use super::RenderError;
use super::classifications::SPARK_DEFAULTS;
use super::names::{self, ServiceAccountNames};
use std::collections::BTreeMap;

pub const DRIVER_POD_TEMPLATE_FILE: &str = "spark.kubernetes.driver.podTemplateFile";
pub const EXECUTOR_POD_TEMPLATE_FILE: &str = "spark.kubernetes.executor.podTemplateFile";
pub const CONTAINER_IMAGE: &str = "spark.kubernetes.container.image";

/// Keys only sparkvc may set (exact matches).
const CONTROLLED_KEYS: &[&str] = &[
    "spark.master",
    "spark.submit.deployMode",
    "spark.kubernetes.namespace",
    "spark.kubernetes.driver.pod.name",
    "spark.kubernetes.executor.podNamePrefix",
    "spark.kubernetes.driver.podTemplateContainerName",
    "spark.kubernetes.executor.podTemplateContainerName",
    "spark.kubernetes.submission.waitAppCompletion",
];

/// Key prefixes only sparkvc may set: every `spark.kubernetes.authenticate.*`
/// (service accounts and API credentials).
const CONTROLLED_PREFIXES: &[&str] = &["spark.kubernetes.authenticate."];

/// What sparkvc itself puts into the Spark configuration.
#[derive(Debug, Clone)]
pub struct SparkConfInputs<'a> {
    pub job_run_id: &'a str,
    /// Which attempt of the run this is (1 unless it is retried); names
    /// the driver and executor pods.
    pub attempt: u32,
    pub virtual_cluster_id: &'a str,
    pub namespace: &'a str,
    /// The release image, the default for `spark.kubernetes.container.image`.
    pub image: &'a str,
    pub service_accounts: &'a ServiceAccountNames,
    /// Where the job-runner pod sees the driver/executor pod templates.
    pub driver_template_path: &'a str,
    pub executor_template_path: &'a str,
    /// `spark.eventLog.dir` when the run keeps its app UI (see
    /// `log_destinations::event_log_dir`); it overrides the user's.
    pub event_log_dir: Option<&'a str>,
}

/// Merges the Spark configuration (see the module documentation for the
/// order). `spark_defaults` is the classification, `conf` the `--conf` pairs of
/// the member `conf_field`. The pod template file settings are replaced by
/// the paths inside the job-runner pod.
pub fn merge(
    inputs: &SparkConfInputs<'_>,
    spark_defaults: &BTreeMap<String, String>,
    conf_field: &str,
    conf: &[(String, String)],
) -> Result<BTreeMap<String, String>, RenderError> {
    let mut merged = BTreeMap::from([(CONTAINER_IMAGE.to_string(), inputs.image.to_string())]);
    let classification = format!("{SPARK_DEFAULTS} classification");
    let command_line = format!("{conf_field} --conf");
    let user = spark_defaults
        .iter()
        .map(|(k, v)| (k, v, &classification))
        .chain(conf.iter().map(|(k, v)| (k, v, &command_line)));
    for (key, value, source) in user {
        if let Some(reason) = controlled(key) {
            return Err(RenderError::user(
                key,
                format!("{source}: {key} {reason} and cannot be set"),
            ));
        }
        if key.contains(['\n', '\r']) {
            return Err(RenderError::user(
                key,
                format!("{source}: a key contains a line break"),
            ));
        }
        merged.insert(key.clone(), value.clone());
    }
    for (key, value) in controlled_settings(inputs) {
        merged.insert(key, value);
    }
    Ok(merged)
}

/// Why `key` is sparkvc's to set, if it is.
fn controlled(key: &str) -> Option<&'static str> {
    if CONTROLLED_KEYS.contains(&key) || CONTROLLED_PREFIXES.iter().any(|p| key.starts_with(p)) {
        return Some("is set by sparkvc");
    }
    for role in ["driver", "executor"] {
        let label = key.strip_prefix(&format!("spark.kubernetes.{role}.label."));
        if label.is_some_and(is_sparkvc_label) {
            return Some("is a label sparkvc sets");
        }
    }
    None
}

fn is_sparkvc_label(key: &str) -> bool {
    [
        names::EMR_JOB_ID,
        names::EMR_VIRTUAL_CLUSTER_ID,
        names::MANAGED_BY,
        names::JOB_RUN_ID,
        names::VIRTUAL_CLUSTER_ID,
        names::COMPONENT,
        names::SPARK_ROLE,
        names::ATTEMPT,
    ]
    .contains(&key)
}

fn controlled_settings(inputs: &SparkConfInputs<'_>) -> Vec<(String, String)> {
    let attempt = names::attempt_name(inputs.job_run_id, inputs.attempt);
    let mut out: Vec<(String, String)> = [
        ("spark.kubernetes.namespace", inputs.namespace.to_string()),
        (
            "spark.kubernetes.driver.pod.name",
            names::driver_pod_name(&attempt),
        ),
        (
            "spark.kubernetes.executor.podNamePrefix",
            names::executor_pod_prefix(&attempt),
        ),
        (
            "spark.kubernetes.authenticate.driver.serviceAccountName",
            inputs.service_accounts.driver.clone(),
        ),
        (
            "spark.kubernetes.authenticate.executor.serviceAccountName",
            inputs.service_accounts.executor.clone(),
        ),
        (
            DRIVER_POD_TEMPLATE_FILE,
            inputs.driver_template_path.to_string(),
        ),
        (
            EXECUTOR_POD_TEMPLATE_FILE,
            inputs.executor_template_path.to_string(),
        ),
        (
            "spark.kubernetes.driver.podTemplateContainerName",
            super::names::DRIVER_CONTAINER.to_string(),
        ),
        (
            "spark.kubernetes.executor.podTemplateContainerName",
            super::names::EXECUTOR_CONTAINER.to_string(),
        ),
        (
            "spark.kubernetes.submission.waitAppCompletion",
            "true".to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(dir) = inputs.event_log_dir {
        out.push(("spark.eventLog.enabled".into(), "true".into()));
        out.push(("spark.eventLog.dir".into(), dir.into()));
    }
    let labels =
        names::job_run_labels(inputs.job_run_id, inputs.virtual_cluster_id, inputs.attempt);
    for (role, component) in [
        ("driver", names::COMPONENT_DRIVER),
        ("executor", names::COMPONENT_EXECUTOR),
    ] {
        for (key, value) in labels
            .iter()
            .chain([(&names::COMPONENT.to_string(), &component.to_string())])
        {
            out.push((
                format!("spark.kubernetes.{role}.label.{key}"),
                value.clone(),
            ));
        }
    }
    out
}

/// The pod template file settings the user gave (classification, then
/// `--conf`, the later winning), before sparkvc replaces them.
pub fn user_pod_template_files(
    spark_defaults: &BTreeMap<String, String>,
    conf: &[(String, String)],
) -> (Option<String>, Option<String>) {
    let find = |key: &str| {
        conf.iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .or_else(|| spark_defaults.get(key).cloned())
            .filter(|v| !v.trim().is_empty())
    };
    (
        find(DRIVER_POD_TEMPLATE_FILE),
        find(EXECUTOR_POD_TEMPLATE_FILE),
    )
}

/// `spark-defaults.conf` text: one `key value` line per setting, sorted by key,
/// escaped for `java.util.Properties`.
pub fn to_properties_text(conf: &BTreeMap<String, String>) -> String {
    properties_file(
        "# Written by sparkvc; the job run's merged Spark configuration.\n",
        conf,
    )
}

/// A `java.util.Properties` file: `header`, then one escaped `key value`
/// line per entry, sorted by key.
pub fn properties_file(header: &str, conf: &BTreeMap<String, String>) -> String {
    let mut out = String::from(header);
    for (key, value) in conf {
        out.push_str(&escape(key, true));
        out.push(' ');
        out.push_str(&escape(value, false));
        out.push('\n');
    }
    out
}

fn escape(text: &str, is_key: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0c' => out.push_str("\\f"),
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            '=' | ':' if is_key => {
                out.push('\\');
                out.push(c);
            }
            '#' | '!' if is_key || i == 0 => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sas() -> ServiceAccountNames {
        ServiceAccountNames {
            client: "sa-client".into(),
            driver: "sa-driver".into(),
            executor: "sa-executor".into(),
        }
    }

    fn inputs(sas: &ServiceAccountNames) -> SparkConfInputs<'_> {
        SparkConfInputs {
            job_run_id: "0000000000000000001",
            attempt: 1,
            virtual_cluster_id: "vc1",
            namespace: "ns1",
            image: "apache/spark:3.5.5",
            service_accounts: sas,
            driver_template_path: "/etc/spark/pod-templates/driver.json",
            executor_template_path: "/etc/spark/pod-templates/executor.json",
            event_log_dir: None,
        }
    }

    #[test]
    fn command_line_beats_classification_and_sparkvc_sets_last() {
        let sas = sas();
        let defaults = BTreeMap::from([
            ("spark.executor.memory".to_string(), "2g".to_string()),
            ("spark.executor.cores".to_string(), "1".to_string()),
            (
                DRIVER_POD_TEMPLATE_FILE.to_string(),
                "s3://b/driver.yaml".to_string(),
            ),
        ]);
        let conf = vec![("spark.executor.cores".to_string(), "4".to_string())];
        let merged = merge(&inputs(&sas), &defaults, "sparkSubmitParameters", &conf).unwrap();
        assert_eq!(merged["spark.executor.memory"], "2g");
        assert_eq!(merged["spark.executor.cores"], "4");
        assert_eq!(
            merged[DRIVER_POD_TEMPLATE_FILE],
            "/etc/spark/pod-templates/driver.json"
        );
        assert_eq!(merged["spark.kubernetes.namespace"], "ns1");
        assert_eq!(
            merged["spark.kubernetes.driver.pod.name"],
            "spark-0000000000000000001-driver"
        );
        assert_eq!(
            merged["spark.kubernetes.authenticate.driver.serviceAccountName"],
            "sa-driver"
        );
        assert_eq!(
            merged["spark.kubernetes.submission.waitAppCompletion"],
            "true"
        );
        assert_eq!(merged[CONTAINER_IMAGE], "apache/spark:3.5.5");
        assert_eq!(
            merged["spark.kubernetes.executor.label.emr-containers.amazonaws.com/job.id"],
            "0000000000000000001"
        );
        assert_eq!(
            merged["spark.kubernetes.driver.label.sparkvc.io/component"],
            "driver"
        );
    }

    #[test]
    fn users_may_bring_their_own_image() {
        let sas = sas();
        let conf = vec![(CONTAINER_IMAGE.to_string(), "me/spark:custom".to_string())];
        let merged = merge(
            &inputs(&sas),
            &BTreeMap::new(),
            "sparkSubmitParameters",
            &conf,
        )
        .unwrap();
        assert_eq!(merged[CONTAINER_IMAGE], "me/spark:custom");
    }

    #[test]
    fn controlled_settings_are_refused_by_name() {
        let sas = sas();
        for key in [
            "spark.kubernetes.namespace",
            "spark.kubernetes.driver.pod.name",
            "spark.kubernetes.authenticate.driver.serviceAccountName",
            "spark.kubernetes.authenticate.submission.oauthToken",
            "spark.master",
            "spark.submit.deployMode",
            "spark.kubernetes.submission.waitAppCompletion",
            "spark.kubernetes.driver.label.sparkvc.io/job-run-id",
            "spark.kubernetes.executor.label.emr-containers.amazonaws.com/virtual-cluster-id",
        ] {
            let conf = vec![(key.to_string(), "x".to_string())];
            let err = merge(
                &inputs(&sas),
                &BTreeMap::new(),
                "sparkSubmitParameters",
                &conf,
            )
            .unwrap_err();
            assert_eq!(
                err.failure_reason(),
                sparkvc_proto::FailureReason::UserError
            );
            assert!(
                err.to_string()
                    .starts_with("sparkSubmitParameters --conf: "),
                "{err}"
            );
            assert!(err.to_string().contains(key), "{err}");
            let defaults = BTreeMap::from([(key.to_string(), "x".to_string())]);
            let err = merge(&inputs(&sas), &defaults, "sparkSubmitParameters", &[]).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("spark-defaults classification: "),
                "{err}"
            );
        }
        // Other labels are the user's to set.
        let conf = vec![(
            "spark.kubernetes.driver.label.team".to_string(),
            "a".to_string(),
        )];
        assert!(merge(&inputs(&sas), &BTreeMap::new(), "p", &conf).is_ok());
    }

    #[test]
    fn properties_text_is_sorted_and_escaped() {
        let conf = BTreeMap::from([
            ("b".to_string(), "2".to_string()),
            ("a".to_string(), r"C:\x y".to_string()),
            ("k=1 :#".to_string(), " lead\nline".to_string()),
            ("c".to_string(), "#not a comment".to_string()),
        ]);
        assert_eq!(
            to_properties_text(&conf),
            "# Written by sparkvc; the job run's merged Spark configuration.\n\
             a C:\\\\x y\n\
             b 2\n\
             c \\#not a comment\n\
             k\\=1\\ \\:\\# \\ lead\\nline\n"
        );
    }

    #[test]
    fn user_pod_template_files_prefer_the_command_line() {
        let defaults = BTreeMap::from([
            (
                DRIVER_POD_TEMPLATE_FILE.to_string(),
                "s3://b/d.yaml".to_string(),
            ),
            (
                EXECUTOR_POD_TEMPLATE_FILE.to_string(),
                "s3://b/e.yaml".to_string(),
            ),
        ]);
        let conf = vec![(
            DRIVER_POD_TEMPLATE_FILE.to_string(),
            "/local/d.yaml".to_string(),
        )];
        assert_eq!(
            user_pod_template_files(&defaults, &conf),
            (Some("/local/d.yaml".into()), Some("s3://b/e.yaml".into()))
        );
        assert_eq!(user_pod_template_files(&BTreeMap::new(), &[]), (None, None));
    }
}
