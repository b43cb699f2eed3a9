//! The job-runner: a pod that runs spark-submit in cluster mode against the
//! in-cluster API server, and the spark-submit argv.
//!
//! - A bare pod, not a `batch/v1` Job as EMR on EKS uses: sparkvc already
//!   does everything a Job would (it watches the pod, retries per the retry
//!   policy, deletes finished runs after their TTL), and leaving the Job out
//!   halves the cluster's writes per run (no Job status updates, no
//!   job-tracking finalizer) and takes the Job controller, which was the
//!   bound on submission throughput, off the path. See the README.
//! - Name: the attempt name (the job run ID for attempt 1).
//!   `restartPolicy: Never`: a failed submission is reported, never silently
//!   retried (retries are the reconciler's, per the retry policy).
//! - It is the run's owner object: the ConfigMap and the driver pod name it
//!   in their owner references (executors are owned by the driver), so
//!   deleting it garbage-collects the run.
//! - Service account: the execution role's `client` account.
//! - One container, `job-runner`: the release image, `command` as an exec
//!   array (no shell ever parses user text), the restricted security context.
//! - The ConfigMap is mounted twice: `spark-defaults.conf` under
//!   [`CONF_DIR`], the pod templates under [`POD_TEMPLATE_DIR`].
//! - Placement, labels, annotations and resources from `emr-job-submitter`
//!   (the cluster's own placement of job pods over it, see [`super::scheduling`]);
//!   resources default to [`DEFAULT_CPU_REQUEST`] / [`DEFAULT_MEMORY`].
//!
//! ## Spark SQL
//! `spark-submit` refuses the Spark SQL CLI (`SparkSQLCLIDriver`) in cluster
//! mode ("Cluster deploy mode is not applicable to Spark SQL shell"), and
//! Apache Spark ships no other "run this SQL file" main class. So for
//! `sparkSqlJobDriver` sparkvc submits a small PySpark program,
//! [`SQL_RUNNER`], stored in the same ConfigMap and mounted into the *driver*
//! pod through the driver pod template, with the SQL file as its argument.
//! It reads the file through Spark (so any Hadoop file system works), splits
//! it into statements at `;` outside quotes and comments, runs them in order
//! and prints the result of each query. The image must contain Python (the
//! `-python3` Apache Spark images do).

use super::classifications::JobSubmitterConfig;
use super::names;
use super::names::{USER_LOG_DIR, USER_LOG_VOLUME};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar, KeyToPath, Pod, PodSpec,
    ResourceRequirements, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

pub const SPARK_SUBMIT: &str = "/opt/spark/bin/spark-submit";
pub const MASTER: &str = "k8s://https://kubernetes.default.svc:443";
pub const CONTAINER_NAME: &str = "job-runner";

/// Where the job-runner pod sees `spark-defaults.conf`.
pub const CONF_DIR: &str = "/etc/spark/conf";
pub const PROPERTIES_FILE: &str = "/etc/spark/conf/spark-defaults.conf";
/// Where the job-runner pod sees the pod templates.
pub const POD_TEMPLATE_DIR: &str = "/etc/spark/pod-templates";
pub const DRIVER_TEMPLATE_PATH: &str = "/etc/spark/pod-templates/driver.json";
pub const EXECUTOR_TEMPLATE_PATH: &str = "/etc/spark/pod-templates/executor.json";
/// Where the driver pod sees the SQL runner.
pub const SQL_RUNNER_DIR: &str = "/etc/spark/sparkvc-sql";
pub const SQL_RUNNER_URI: &str = "local:///etc/spark/sparkvc-sql/run_sql.py";

/// ConfigMap keys.
pub const KEY_SPARK_DEFAULTS: &str = "spark-defaults.conf";
pub const KEY_DRIVER_TEMPLATE: &str = "driver-pod-template.json";
pub const KEY_EXECUTOR_TEMPLATE: &str = "executor-pod-template.json";
pub const KEY_SQL_RUNNER: &str = "run_sql.py";
/// The `spark-log4j2` classification's file. spark-submit ships the files of
/// its configuration directory to the driver and the executors (Spark's
/// `spark.kubernetes` conf-dir propagation), so in [`CONF_DIR`] it reaches
/// every JVM of the run.
pub const KEY_LOG4J2: &str = "log4j2.properties";

pub const DEFAULT_CPU_REQUEST: &str = "500m";
pub const DEFAULT_MEMORY: &str = "512Mi";

/// The PySpark program that runs a `sparkSqlJobDriver` entry point.
pub const SQL_RUNNER: &str = include_str!("run_sql.py");

/// What the job-runner runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryPoint<'a> {
    /// `sparkSubmitJobDriver`: the application and its arguments.
    SparkSubmit {
        entry_point: &'a str,
        arguments: &'a [String],
    },
    /// `sparkSqlJobDriver`: the SQL file.
    SparkSql { sql_file: &'a str },
}

/// The full spark-submit argv (argv[0] included):
/// `spark-submit --master … --deploy-mode cluster --name <name>
/// --properties-file … <user options> <application> <arguments…>`.
pub fn spark_submit_argv(name: &str, options: &[String], entry: &EntryPoint<'_>) -> Vec<String> {
    let mut argv: Vec<String> = [
        SPARK_SUBMIT,
        "--master",
        MASTER,
        "--deploy-mode",
        "cluster",
        "--name",
        name,
        "--properties-file",
        PROPERTIES_FILE,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.extend(options.iter().cloned());
    match entry {
        EntryPoint::SparkSubmit {
            entry_point,
            arguments,
        } => {
            argv.push(entry_point.to_string());
            argv.extend(arguments.iter().cloned());
        }
        EntryPoint::SparkSql { sql_file } => {
            argv.push(SQL_RUNNER_URI.into());
            argv.push(sql_file.to_string());
        }
    }
    argv
}

/// The ConfigMap volume and mount that put the SQL runner into the driver.
pub fn sql_runner_volume(config_map: &str) -> (Volume, VolumeMount) {
    config_map_volume(
        "sparkvc-sql-runner",
        config_map,
        &[(KEY_SQL_RUNNER, "run_sql.py")],
        SQL_RUNNER_DIR,
    )
}

fn config_map_volume(
    volume: &str,
    config_map: &str,
    items: &[(&str, &str)],
    mount_path: &str,
) -> (Volume, VolumeMount) {
    (
        Volume {
            name: volume.into(),
            config_map: Some(ConfigMapVolumeSource {
                name: config_map.into(),
                items: Some(
                    items
                        .iter()
                        .map(|(key, path)| KeyToPath {
                            key: key.to_string(),
                            path: path.to_string(),
                            ..KeyToPath::default()
                        })
                        .collect(),
                ),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        VolumeMount {
            name: volume.into(),
            mount_path: mount_path.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        },
    )
}

/// Everything [`render_job_runner`] needs.
#[derive(Debug, Clone)]
pub struct JobRunnerInputs<'a> {
    /// The pod's name ([`names::job_runner_name`]).
    pub name: &'a str,
    pub namespace: &'a str,
    /// The job run's labels (see [`names::job_run_labels`]).
    pub labels: &'a BTreeMap<String, String>,
    pub image: &'a str,
    pub service_account: &'a str,
    pub config_map: &'a str,
    /// The full argv, argv[0] first.
    pub argv: &'a [String],
    pub submitter: &'a JobSubmitterConfig,
    /// The log sidecar and its configuration volume, when the job-runner
    /// ships its logs (see `render::logging`).
    pub log_capture: Option<super::logging::LogCapture>,
    /// ConfigMap keys beside `spark-defaults.conf` that go into
    /// [`CONF_DIR`] under their own name (such as [`KEY_LOG4J2`]); with any,
    /// `SPARK_CONF_DIR` points spark-submit there.
    pub conf_files: &'a [&'static str],
    /// The operator's node selector and tolerations for job pods, applied
    /// over `jobsubmitter.node.selector.*`.
    pub scheduling: &'a super::scheduling::JobPodScheduling,
}

/// The job-runner pod.
pub fn render_job_runner(inputs: &JobRunnerInputs<'_>) -> Pod {
    // The run's own labels win over the user's (they identify the run).
    let mut labels = inputs.submitter.labels.clone();
    labels.extend(inputs.labels.clone());
    labels.insert(names::COMPONENT.into(), names::COMPONENT_JOB_RUNNER.into());

    let mut conf_items = vec![(KEY_SPARK_DEFAULTS, "spark-defaults.conf")];
    conf_items.extend(inputs.conf_files.iter().map(|key| (*key, *key)));
    let (conf_volume, conf_mount) =
        config_map_volume("spark-conf", inputs.config_map, &conf_items, CONF_DIR);
    let (template_volume, template_mount) = config_map_volume(
        "pod-templates",
        inputs.config_map,
        &[
            (KEY_DRIVER_TEMPLATE, "driver.json"),
            (KEY_EXECUTOR_TEMPLATE, "executor.json"),
        ],
        POD_TEMPLATE_DIR,
    );
    let mut volumes = vec![conf_volume, template_volume];
    let mut mounts = vec![conf_mount, template_mount];
    let mut env = None;
    let mut init_containers = None;
    let argv = match &inputs.log_capture {
        None => inputs.argv.to_vec(),
        Some(capture) => {
            volumes.push(Volume {
                name: USER_LOG_VOLUME.into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            });
            volumes.push(capture.config_volume.clone());
            mounts.push(VolumeMount {
                name: USER_LOG_VOLUME.into(),
                mount_path: USER_LOG_DIR.into(),
                ..VolumeMount::default()
            });
            env = Some(capture.env.clone());
            init_containers = Some(vec![capture.sidecar.clone()]);
            super::logging::capture_argv(CONTAINER_NAME, inputs.argv)
        }
    };
    if !inputs.conf_files.is_empty() {
        env.get_or_insert_with(Vec::new).push(EnvVar {
            name: "SPARK_CONF_DIR".into(),
            value: Some(CONF_DIR.into()),
            ..EnvVar::default()
        });
    }
    let (command, args) = argv.split_first().expect("argv has argv[0]");

    let container = Container {
        name: CONTAINER_NAME.into(),
        image: Some(inputs.image.into()),
        command: Some(vec![command.clone()]),
        args: Some(args.to_vec()),
        env,
        resources: Some(resources(inputs.submitter)),
        volume_mounts: Some(mounts),
        security_context: Some(super::security::restricted_security_context()),
        // spark-submit's own error (bad arguments, no permission to create the
        // driver, ...) becomes the termination message, and so the stateDetails.
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Container::default()
    };
    let mut spec = PodSpec {
        containers: vec![container],
        restart_policy: Some("Never".into()),
        service_account_name: Some(inputs.service_account.into()),
        node_selector: non_empty(inputs.submitter.node_selector.clone()),
        volumes: Some(volumes),
        init_containers,
        ..PodSpec::default()
    };
    inputs.scheduling.apply(&mut spec);
    Pod {
        metadata: ObjectMeta {
            name: Some(inputs.name.into()),
            namespace: Some(inputs.namespace.into()),
            labels: Some(labels),
            annotations: non_empty(inputs.submitter.annotations.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        ..Pod::default()
    }
}

fn resources(cfg: &JobSubmitterConfig) -> ResourceRequirements {
    let q = |v: &Option<String>, default: Option<&str>| {
        v.clone().or(default.map(str::to_string)).map(Quantity)
    };
    let map = |cpu: Option<Quantity>, memory: Option<Quantity>| {
        let m: BTreeMap<String, Quantity> = [("cpu", cpu), ("memory", memory)]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect();
        non_empty(m)
    };
    // A default request applies only when no limit is given: with a limit
    // alone, Kubernetes makes the request equal to it (and a default request
    // above a small limit would be refused).
    let default_if_no = |limit: &Option<String>, default| limit.is_none().then_some(default);
    let memory_request = q(
        &cfg.memory_request,
        default_if_no(&cfg.memory_limit, DEFAULT_MEMORY),
    );
    let cpu_request = q(
        &cfg.cpu_request,
        default_if_no(&cfg.cpu_limit, DEFAULT_CPU_REQUEST),
    );
    // The memory limit defaults to the request: the job-runner never takes
    // more memory than it asked for.
    let memory_limit = q(&cfg.memory_limit, None).or_else(|| memory_request.clone());
    ResourceRequirements {
        requests: map(cpu_request, memory_request),
        limits: map(q(&cfg.cpu_limit, None), memory_limit),
        ..ResourceRequirements::default()
    }
}

fn non_empty<V>(map: BTreeMap<String, V>) -> Option<BTreeMap<String, V>> {
    (!map.is_empty()).then_some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_for_spark_submit() {
        let args = vec!["10".to_string(), "a b".to_string()];
        let argv = spark_submit_argv(
            "pi",
            &["--class".into(), "org.apache.spark.examples.SparkPi".into()],
            &EntryPoint::SparkSubmit {
                entry_point: "local:///opt/spark/examples/jars/spark-examples.jar",
                arguments: &args,
            },
        );
        assert_eq!(
            argv,
            [
                SPARK_SUBMIT,
                "--master",
                "k8s://https://kubernetes.default.svc:443",
                "--deploy-mode",
                "cluster",
                "--name",
                "pi",
                "--properties-file",
                "/etc/spark/conf/spark-defaults.conf",
                "--class",
                "org.apache.spark.examples.SparkPi",
                "local:///opt/spark/examples/jars/spark-examples.jar",
                "10",
                "a b",
            ]
        );
    }

    #[test]
    fn argv_for_spark_sql_runs_the_runner_with_the_file() {
        let argv = spark_submit_argv(
            "q",
            &[],
            &EntryPoint::SparkSql {
                sql_file: "s3a://b/q.sql",
            },
        );
        assert_eq!(argv[argv.len() - 2..], [SQL_RUNNER_URI, "s3a://b/q.sql"]);
        assert!(SQL_RUNNER.contains("def split_statements"));
    }

    fn runner(submitter: &JobSubmitterConfig) -> Pod {
        let labels = names::job_run_labels("r1", "vc1", 1);
        let argv = vec![SPARK_SUBMIT.to_string(), "--master".into(), MASTER.into()];
        render_job_runner(&JobRunnerInputs {
            name: "r1",
            namespace: "ns1",
            labels: &labels,
            image: "img",
            service_account: "sa-client",
            config_map: "spark-r1-conf",
            argv: &argv,
            submitter,
            log_capture: None,
            conf_files: &[],
            scheduling: &Default::default(),
        })
    }

    #[test]
    fn job_runner_defaults() {
        let runner = runner(&JobSubmitterConfig::default());
        assert_eq!(runner.metadata.name.as_deref(), Some("r1"));
        assert_eq!(
            runner.metadata.owner_references, None,
            "it is the run's root object"
        );
        let pod = runner.spec.as_ref().unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(pod.service_account_name.as_deref(), Some("sa-client"));
        let c = &pod.containers[0];
        assert_eq!(c.command.as_ref().unwrap(), &[SPARK_SUBMIT]);
        assert_eq!(c.args.as_ref().unwrap(), &["--master", MASTER]);
        let r = c.resources.as_ref().unwrap();
        assert_eq!(r.requests.as_ref().unwrap()["cpu"].0, "500m");
        assert_eq!(r.requests.as_ref().unwrap()["memory"].0, "512Mi");
        assert_eq!(r.limits.as_ref().unwrap()["memory"].0, "512Mi");
        assert!(!r.limits.as_ref().unwrap().contains_key("cpu"));
        let labels = runner.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[names::COMPONENT], "job-runner");
        assert_eq!(labels[names::EMR_JOB_ID], "r1");
    }

    #[test]
    fn job_runner_from_emr_job_submitter() {
        let cfg = JobSubmitterConfig {
            node_selector: BTreeMap::from([("pool".into(), "on-demand".into())]),
            labels: BTreeMap::from([
                ("team".into(), "a".into()),
                (names::JOB_RUN_ID.into(), "spoof".into()),
            ]),
            annotations: BTreeMap::from([("note".into(), "x".into())]),
            cpu_request: Some("1".into()),
            memory_request: Some("1Gi".into()),
            cpu_limit: Some("2".into()),
            memory_limit: Some("2Gi".into()),
            ..JobSubmitterConfig::default()
        };
        let runner = runner(&cfg);
        let meta = &runner.metadata;
        assert_eq!(meta.labels.as_ref().unwrap()["team"], "a");
        assert_eq!(meta.labels.as_ref().unwrap()[names::JOB_RUN_ID], "r1");
        assert_eq!(meta.annotations.as_ref().unwrap()["note"], "x");
        let pod = runner.spec.as_ref().unwrap();
        assert_eq!(pod.node_selector.as_ref().unwrap()["pool"], "on-demand");
        let r = pod.containers[0].resources.as_ref().unwrap();
        assert_eq!(r.limits.as_ref().unwrap()["cpu"].0, "2");
        assert_eq!(r.limits.as_ref().unwrap()["memory"].0, "2Gi");
        assert_eq!(r.requests.as_ref().unwrap()["memory"].0, "1Gi");
    }
}
