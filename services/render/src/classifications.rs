//! The classifications of `configurationOverrides.applicationConfiguration`
//! that sparkvc understands, as EMR on EKS users send them:
//!
//! - `spark-defaults`: Spark properties (merged by `spark_conf`);
//! - `spark-env` with a nested `export`: environment variables of the driver
//!   and the executors (`spark.kubernetes.driverEnv.*`, `spark.executorEnv.*`);
//! - `spark-hive-site`, `core-site`, `hdfs-site`, `emrfs-site`, `yarn-site`,
//!   `mapred-site`: Spark's Hadoop configuration (`spark.hadoop.*`), which is
//!   what Spark reads those files into;
//! - `spark-metrics`: Spark's metrics system (`spark.metrics.conf.*`);
//! - `spark-log4j2`: a `log4j2.properties` that spark-submit hands to the
//!   driver and the executors (it ships its configuration directory's files);
//! - `emr-job-submitter` (how the job-runner pod is placed and sized) and
//!   `emr-containers-defaults` (start timeout, log sidecars).
//!
//! Parsing only: nothing here knows how the values are used. Property values
//! may be secrets (AWS marks them sensitive), so no error quotes one.

use super::RenderError;
use super::kube_syntax::{check_label, check_quantity, is_qualified_name};
use sparkvc_proto::v1::ConfigurationOverrides;
use std::collections::BTreeMap;

pub const SPARK_DEFAULTS: &str = "spark-defaults";
pub const EMR_JOB_SUBMITTER: &str = "emr-job-submitter";
pub const EMR_CONTAINERS_DEFAULTS: &str = "emr-containers-defaults";
pub const SPARK_ENV: &str = "spark-env";
/// The one classification `spark-env` nests.
pub const EXPORT: &str = "export";
pub const SPARK_LOG4J2: &str = "spark-log4j2";
pub const SPARK_METRICS: &str = "spark-metrics";
/// Hadoop's `*-site` files, read by Spark as its Hadoop configuration.
pub const HADOOP_SITES: &[&str] = &[
    "spark-hive-site",
    "core-site",
    "hdfs-site",
    "emrfs-site",
    "yarn-site",
    "mapred-site",
];

/// Every classification sparkvc takes, for the error that names them.
fn supported() -> String {
    let mut all = vec![
        SPARK_DEFAULTS,
        SPARK_ENV,
        SPARK_LOG4J2,
        SPARK_METRICS,
        EMR_JOB_SUBMITTER,
        EMR_CONTAINERS_DEFAULTS,
    ];
    all.extend(HADOOP_SITES);
    all.join(", ")
}

/// The classifications sparkvc understands, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Classifications {
    /// Spark properties: `spark-defaults`, and what `spark-env`, the Hadoop
    /// `*-site` classifications and `spark-metrics` become, in the order
    /// given (a later entry wins).
    pub spark_defaults: BTreeMap<String, String>,
    /// `spark-log4j2` properties, the lines of `log4j2.properties`; `None`
    /// when the classification is not given.
    pub log4j2: Option<BTreeMap<String, String>>,
    pub job_submitter: JobSubmitterConfig,
    pub containers_defaults: ContainersDefaults,
}

/// The `emr-job-submitter` classification: how the job-runner pod is placed
/// and sized.
///
/// EMR's documented keys: `jobsubmitter.node.selector.<key>`,
/// `jobsubmitter.label.<key>`, `jobsubmitter.annotation.<key>`,
/// `jobsubmitter.logging.image`, `jobsubmitter.logging.request.cores`,
/// `jobsubmitter.logging.request.memory` (the last three are for the logging
/// sidecar, kept here for the log-shipping work). sparkvc extension, named
/// after EMR's logging keys: `jobsubmitter.container.request.cores`,
/// `jobsubmitter.container.request.memory`, `jobsubmitter.container.limit.cores`,
/// `jobsubmitter.container.limit.memory` for the job-runner container itself.
/// Any other key is a USER_ERROR naming it (EMR's `jobsubmitter.node.toleration.*`
/// is not implemented yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobSubmitterConfig {
    pub node_selector: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub cpu_request: Option<String>,
    pub memory_request: Option<String>,
    pub cpu_limit: Option<String>,
    pub memory_limit: Option<String>,
    /// `jobsubmitter.logging`: `false` when set to `DISABLED`.
    pub logging: Option<bool>,
    pub logging_image: Option<String>,
    pub logging_cpu_request: Option<String>,
    pub logging_memory_request: Option<String>,
}

/// The `emr-containers-defaults` classification: the job-start timeout (used
/// by the executor) and the log sidecars' settings (see `render::logging`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainersDefaults {
    /// `job-start-timeout`, seconds.
    pub job_start_timeout_seconds: Option<u64>,
    /// `executor.logging`: `false` when set to `DISABLED`.
    pub executor_logging: Option<bool>,
    pub logging_image: Option<String>,
    pub logging_cpu_request: Option<String>,
    pub logging_memory_request: Option<String>,
}

/// Parses the classifications sparkvc knows; any other classification, or
/// nested configurations, is a USER_ERROR.
pub fn parse_classifications(
    overrides: Option<&ConfigurationOverrides>,
) -> Result<Classifications, RenderError> {
    let mut out = Classifications::default();
    let Some(overrides) = overrides else {
        return Ok(out);
    };
    for config in &overrides.application_configuration {
        let classification = config.classification.as_str();
        if !config.configurations.is_empty() && classification != SPARK_ENV {
            return Err(RenderError::user(
                "applicationConfiguration",
                format!("classification {classification} does not take nested configurations"),
            ));
        }
        let prefixed = |out: &mut Classifications, prefix: &str| {
            for (key, value) in &config.properties {
                out.spark_defaults
                    .insert(format!("{prefix}{key}"), value.clone());
            }
        };
        match classification {
            SPARK_DEFAULTS => out.spark_defaults.extend(config.properties.clone()),
            SPARK_ENV => spark_env(&mut out, config)?,
            SPARK_METRICS => prefixed(&mut out, "spark.metrics.conf."),
            site if HADOOP_SITES.contains(&site) => prefixed(&mut out, "spark.hadoop."),
            SPARK_LOG4J2 => out
                .log4j2
                .get_or_insert_with(BTreeMap::new)
                .extend(config.properties.clone()),
            EMR_JOB_SUBMITTER => {
                for (key, value) in &config.properties {
                    job_submitter_property(&mut out.job_submitter, key, value)?;
                }
            }
            EMR_CONTAINERS_DEFAULTS => {
                for (key, value) in &config.properties {
                    containers_defaults_property(&mut out.containers_defaults, key, value)?;
                }
            }
            other => {
                return Err(RenderError::user(
                    "applicationConfiguration",
                    format!(
                        "classification {other:?} is not supported (supported: {})",
                        supported()
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// `spark-env`: its nested `export` sets environment variables of the
/// driver and the executors, as `spark-env.sh` exports do on EMR.
fn spark_env(
    out: &mut Classifications,
    config: &sparkvc_proto::v1::Configuration,
) -> Result<(), RenderError> {
    if !config.properties.is_empty() {
        return Err(RenderError::user(
            "applicationConfiguration",
            format!(
                "classification {SPARK_ENV} takes no properties of its own: put environment \
                 variables in its nested {EXPORT:?} classification"
            ),
        ));
    }
    for nested in &config.configurations {
        if nested.classification != EXPORT {
            return Err(RenderError::user(
                "applicationConfiguration",
                format!(
                    "classification {SPARK_ENV} nests only {EXPORT:?}, not {:?}",
                    nested.classification
                ),
            ));
        }
        if !nested.configurations.is_empty() {
            return Err(RenderError::user(
                "applicationConfiguration",
                format!("classification {SPARK_ENV} {EXPORT} does not take nested configurations"),
            ));
        }
        for (name, value) in &nested.properties {
            if !is_env_name(name) {
                return Err(RenderError::user(
                    "applicationConfiguration",
                    format!(
                        "{SPARK_ENV} {EXPORT}: {name:?} is not an environment variable name \
                         (letters, digits and _, not starting with a digit)"
                    ),
                ));
            }
            for prefix in ["spark.kubernetes.driverEnv.", "spark.executorEnv."] {
                out.spark_defaults
                    .insert(format!("{prefix}{name}"), value.clone());
            }
        }
    }
    Ok(())
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn job_submitter_property(
    cfg: &mut JobSubmitterConfig,
    key: &str,
    value: &str,
) -> Result<(), RenderError> {
    let field = format!("{EMR_JOB_SUBMITTER} {key}");
    let quantity = |slot: &mut Option<String>| {
        check_quantity(&field, value)?;
        *slot = Some(value.to_string());
        Ok(())
    };
    if let Some(label) = key.strip_prefix("jobsubmitter.node.selector.") {
        check_label(&field, label, value)?;
        cfg.node_selector.insert(label.into(), value.into());
    } else if let Some(label) = key.strip_prefix("jobsubmitter.label.") {
        check_label(&field, label, value)?;
        cfg.labels.insert(label.into(), value.into());
    } else if let Some(annotation) = key.strip_prefix("jobsubmitter.annotation.") {
        if !is_qualified_name(annotation) {
            return Err(RenderError::user(
                &field,
                format!("{field}: {annotation:?} is not a valid annotation key"),
            ));
        }
        cfg.annotations.insert(annotation.into(), value.into());
    } else {
        match key {
            "jobsubmitter.container.request.cores" => quantity(&mut cfg.cpu_request)?,
            "jobsubmitter.container.request.memory" => quantity(&mut cfg.memory_request)?,
            "jobsubmitter.container.limit.cores" => quantity(&mut cfg.cpu_limit)?,
            "jobsubmitter.container.limit.memory" => quantity(&mut cfg.memory_limit)?,
            "jobsubmitter.logging" => cfg.logging = Some(on_off(&field, value)?),
            "jobsubmitter.logging.image" => cfg.logging_image = Some(value.into()),
            "jobsubmitter.logging.request.cores" => quantity(&mut cfg.logging_cpu_request)?,
            "jobsubmitter.logging.request.memory" => quantity(&mut cfg.logging_memory_request)?,
            _ => {
                return Err(RenderError::user(
                    &field,
                    format!("{EMR_JOB_SUBMITTER}: unknown property {key:?}"),
                ));
            }
        }
    }
    Ok(())
}

/// `ENABLED` or `DISABLED`.
fn on_off(field: &str, value: &str) -> Result<bool, RenderError> {
    match value {
        "ENABLED" => Ok(true),
        "DISABLED" => Ok(false),
        _ => Err(RenderError::user(
            field,
            format!("{field}: the value is neither ENABLED nor DISABLED"),
        )),
    }
}

fn containers_defaults_property(
    cfg: &mut ContainersDefaults,
    key: &str,
    value: &str,
) -> Result<(), RenderError> {
    let field = format!("{EMR_CONTAINERS_DEFAULTS} {key}");
    match key {
        "job-start-timeout" => {
            let seconds = value.trim().parse::<u64>().ok().filter(|s| *s > 0);
            cfg.job_start_timeout_seconds = Some(seconds.ok_or_else(|| {
                RenderError::user(
                    &field,
                    format!("{field}: the value is not a positive number of seconds"),
                )
            })?);
        }
        "executor.logging" => cfg.executor_logging = Some(on_off(&field, value)?),
        "logging.image" => cfg.logging_image = Some(value.into()),
        "logging.request.cores" => {
            check_quantity(&field, value)?;
            cfg.logging_cpu_request = Some(value.into());
        }
        "logging.request.memory" => {
            check_quantity(&field, value)?;
            cfg.logging_memory_request = Some(value.into());
        }
        _ => {
            return Err(RenderError::user(
                &field,
                format!("{EMR_CONTAINERS_DEFAULTS}: unknown property {key:?}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparkvc_proto::v1::Configuration;

    fn overrides(configs: &[(&str, &[(&str, &str)])]) -> ConfigurationOverrides {
        ConfigurationOverrides {
            application_configuration: configs
                .iter()
                .map(|(c, props)| Configuration {
                    classification: c.to_string(),
                    properties: props
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    configurations: vec![],
                })
                .collect(),
            monitoring_configuration: None,
        }
    }

    #[test]
    fn classifications_are_parsed() {
        let o = overrides(&[
            (SPARK_DEFAULTS, &[("spark.a", "1")]),
            (
                EMR_JOB_SUBMITTER,
                &[
                    (
                        "jobsubmitter.node.selector.eks.amazonaws.com/capacityType",
                        "ON_DEMAND",
                    ),
                    ("jobsubmitter.label.team", "data"),
                    (
                        "jobsubmitter.annotation.example.com/note",
                        "any text at all",
                    ),
                    ("jobsubmitter.container.request.cores", "250m"),
                    ("jobsubmitter.container.limit.memory", "1Gi"),
                    ("jobsubmitter.logging.request.memory", "200Mi"),
                ],
            ),
            (
                EMR_CONTAINERS_DEFAULTS,
                &[
                    ("job-start-timeout", "1800"),
                    ("executor.logging", "DISABLED"),
                ],
            ),
        ]);
        let c = parse_classifications(Some(&o)).unwrap();
        assert_eq!(c.spark_defaults["spark.a"], "1");
        let js = &c.job_submitter;
        assert_eq!(
            js.node_selector["eks.amazonaws.com/capacityType"],
            "ON_DEMAND"
        );
        assert_eq!(js.labels["team"], "data");
        assert_eq!(js.annotations["example.com/note"], "any text at all");
        assert_eq!(js.cpu_request.as_deref(), Some("250m"));
        assert_eq!(js.memory_limit.as_deref(), Some("1Gi"));
        assert_eq!(js.logging_memory_request.as_deref(), Some("200Mi"));
        assert_eq!(c.containers_defaults.job_start_timeout_seconds, Some(1800));
        assert_eq!(c.containers_defaults.executor_logging, Some(false));
    }

    #[test]
    fn bad_classifications_are_user_errors_naming_the_key() {
        let err = |configs: &[(&str, &[(&str, &str)])]| {
            let e = parse_classifications(Some(&overrides(configs))).unwrap_err();
            assert_eq!(e.failure_reason(), sparkvc_proto::FailureReason::UserError);
            e.to_string()
        };
        assert_eq!(
            err(&[(EMR_JOB_SUBMITTER, &[("jobsubmitter.frob", "1")])]),
            "emr-job-submitter: unknown property \"jobsubmitter.frob\""
        );
        assert!(
            err(&[(
                EMR_JOB_SUBMITTER,
                &[("jobsubmitter.container.request.cores", "lots")]
            )])
            .contains("is not a Kubernetes quantity")
        );
        assert!(
            err(&[(
                EMR_JOB_SUBMITTER,
                &[("jobsubmitter.node.selector.a b", "x")]
            )])
            .contains("is not a valid label key")
        );
        assert!(
            err(&[(EMR_JOB_SUBMITTER, &[("jobsubmitter.label.a", "x y")])])
                .contains("is not a valid label value")
        );
        assert!(
            err(&[(EMR_CONTAINERS_DEFAULTS, &[("job-start-timeout", "soon")])])
                .contains("not a positive number of seconds")
        );
        assert!(err(&[(EMR_CONTAINERS_DEFAULTS, &[("frob", "1")])]).contains("unknown property"));
        let unsupported = err(&[("spark-log4j", &[])]);
        assert!(
            unsupported.contains("\"spark-log4j\" is not supported"),
            "{unsupported}"
        );
        for name in [
            SPARK_ENV,
            SPARK_LOG4J2,
            "spark-hive-site",
            "core-site",
            SPARK_METRICS,
        ] {
            assert!(
                unsupported.contains(name),
                "{unsupported} does not list {name}"
            );
        }
        assert!(err(&[(SPARK_ENV, &[("A", "1")])]).contains("nested \"export\""));
    }

    #[test]
    fn errors_never_quote_a_property_value() {
        let secret = "hunter2-secret-value";
        for (classification, key) in [
            (EMR_JOB_SUBMITTER, "jobsubmitter.container.request.cores"),
            (EMR_JOB_SUBMITTER, "jobsubmitter.label.a"),
            (EMR_JOB_SUBMITTER, "jobsubmitter.logging"),
            (EMR_CONTAINERS_DEFAULTS, "job-start-timeout"),
            (EMR_CONTAINERS_DEFAULTS, "logging.request.memory"),
        ] {
            let value = format!("{secret} !");
            let o = overrides(&[(classification, &[(key, value.as_str())])]);
            let e = parse_classifications(Some(&o)).unwrap_err().to_string();
            assert!(e.contains(key), "{e} does not name {key}");
            assert!(!e.contains(secret), "{e} quotes the value");
        }
    }

    fn nested(classification: &str, inner: &str, props: &[(&str, &str)]) -> ConfigurationOverrides {
        ConfigurationOverrides {
            application_configuration: vec![Configuration {
                classification: classification.into(),
                properties: Default::default(),
                configurations: vec![Configuration {
                    classification: inner.into(),
                    properties: props
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    configurations: vec![],
                }],
            }],
            monitoring_configuration: None,
        }
    }

    #[test]
    fn spark_env_exports_reach_the_driver_and_the_executors() {
        let c = parse_classifications(Some(&nested(
            SPARK_ENV,
            EXPORT,
            &[("PYSPARK_PYTHON", "python3")],
        )))
        .unwrap();
        assert_eq!(
            c.spark_defaults["spark.kubernetes.driverEnv.PYSPARK_PYTHON"],
            "python3"
        );
        assert_eq!(
            c.spark_defaults["spark.executorEnv.PYSPARK_PYTHON"],
            "python3"
        );
        let bad =
            |o: ConfigurationOverrides| parse_classifications(Some(&o)).unwrap_err().to_string();
        assert!(bad(nested(SPARK_ENV, "import", &[])).contains("nests only \"export\""));
        assert!(
            bad(nested(SPARK_ENV, EXPORT, &[("1A", "x")]))
                .contains("not an environment variable name")
        );
        assert!(
            bad(nested(SPARK_DEFAULTS, EXPORT, &[]))
                .contains("does not take nested configurations")
        );
    }

    #[test]
    fn hadoop_sites_metrics_and_log4j2_map_to_spark() {
        let o = overrides(&[
            (
                "spark-hive-site",
                &[("hive.metastore.uris", "thrift://m:9083")],
            ),
            ("yarn-site", &[("yarn.x", "1")]),
            (
                SPARK_METRICS,
                &[(
                    "*.sink.console.class",
                    "org.apache.spark.metrics.sink.ConsoleSink",
                )],
            ),
            (SPARK_LOG4J2, &[("rootLogger.level", "warn")]),
            (SPARK_DEFAULTS, &[("spark.hadoop.yarn.x", "2")]),
        ]);
        let c = parse_classifications(Some(&o)).unwrap();
        assert_eq!(
            c.spark_defaults["spark.hadoop.hive.metastore.uris"],
            "thrift://m:9083"
        );
        // Later entries win, as they do on EMR.
        assert_eq!(c.spark_defaults["spark.hadoop.yarn.x"], "2");
        assert_eq!(
            c.spark_defaults["spark.metrics.conf.*.sink.console.class"],
            "org.apache.spark.metrics.sink.ConsoleSink"
        );
        assert_eq!(c.log4j2.unwrap()["rootLogger.level"], "warn");
        assert_eq!(parse_classifications(None).unwrap().log4j2, None);
    }
}
