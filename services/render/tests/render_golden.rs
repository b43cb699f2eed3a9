//! Golden tests of `sparkvc_render`: representative job runs rendered
//! to JSON and compared with `tests/golden/*.json`.
//!
//! After an intended change, regenerate with
//! `SPARKVC_UPDATE_GOLDEN=1 cargo test -p sparkvc-render --test render_golden`
//! and review the diff. Without the variable, any difference fails the test.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::{Value, json};
use sparkvc_proto::FailureReason;
use sparkvc_proto::v1::JobRun;
use sparkvc_render::Release;
use sparkvc_render::scheduling::JobPodScheduling;
use sparkvc_render::tenancy::{self, ContainerLimits, TenancyConfig};
use sparkvc_render::{
    JobRunInputs, PodTemplateFiles, RenderError, pod_template_files, render_job_run,
};
use std::collections::BTreeMap;
use std::path::PathBuf;

const ACCOUNT: &str = "123456789012";
const NAMESPACE: &str = "spark-team-a";

fn release() -> Release {
    Release {
        label: "emr-7.9.0-latest".into(),
        spark_version: "3.5.5".into(),
        image: "docker.io/apache/spark:3.5.5-scala2.12-java17-python3-ubuntu".into(),
        aliases: vec![],
    }
}

/// A job run in the AWS JSON shape, as StartJobRun would have stored it.
fn run(extra: Value) -> JobRun {
    let mut base = json!({
        "id": "00000000000000000ab",
        "name": "spark-pi",
        "virtualClusterId": "0000000000000000000000vc1",
        "arn": "arn:aws:emr-containers:us-east-1:123456789012:/virtualclusters/0000000000000000000000vc1/jobruns/00000000000000000ab",
        "state": "PENDING",
        "executionRoleArn": "arn:aws:iam::123456789012:role/team-a/SparkJobRole",
        "releaseLabel": "emr-7.9.0-latest",
    });
    base.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    serde_json::from_value(base).expect("a valid JobRun")
}

/// The owner production gives a run's ConfigMap and driver: the attempt's
/// job-runner pod, created first (see `cluster/executor/submit.rs`).
fn job_runner_owner(name: &str) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Pod".into(),
        name: name.into(),
        uid: "6f1c1a52-1111-4c3b-9d6e-000000000001".into(),
        controller: Some(false),
        block_owner_deletion: Some(false),
    }
}

fn render(
    run: &JobRun,
    driver: Option<&str>,
    executor: Option<&str>,
) -> Result<Value, RenderError> {
    render_attempt(run, driver, executor, 1)
}

fn render_attempt(
    run: &JobRun,
    driver: Option<&str>,
    executor: Option<&str>,
    attempt: u32,
) -> Result<Value, RenderError> {
    render_on(run, driver, executor, attempt, &JobPodScheduling::default())
}

/// Renders on a cluster whose job pods go where `scheduling` says.
fn render_on(
    run: &JobRun,
    driver: Option<&str>,
    executor: Option<&str>,
    attempt: u32,
    scheduling: &JobPodScheduling,
) -> Result<Value, RenderError> {
    let release = release();
    // As production does it: the job-runner pod is rendered and created
    // first, without an owner; then the rest, owned by it.
    let inputs = JobRunInputs {
        run,
        namespace: NAMESPACE,
        account_id: ACCOUNT,
        release: &release,
        driver_template: driver,
        executor_template: executor,
        owner: None,
        attempt,
        region: "us-west-2",
        event_log_dir: None,
        scheduling,
    };
    let runner = render_job_run(&inputs)?.job_runner;
    let rendered = render_job_run(&JobRunInputs {
        owner: Some(job_runner_owner(
            runner.metadata.name.as_deref().unwrap_or_default(),
        )),
        ..inputs
    })?;
    // The pod templates are JSON text inside the ConfigMap; show them parsed
    // as well so the golden files are easy to review.
    let data = rendered.config_map.data.clone().unwrap_or_default();
    let parsed: BTreeMap<&str, Value> = data
        .iter()
        .filter(|(k, _)| k.ends_with(".json"))
        .map(|(k, v)| (k.as_str(), serde_json::from_str(v).unwrap()))
        .collect();
    Ok(json!({
        "serviceAccounts": rendered.service_accounts,
        "roleBinding": rendered.role_binding,
        "configMap": rendered.config_map,
        "jobRunner": runner,
        "sparkSubmitArgv": rendered.spark_submit_argv,
        "podTemplatesParsed": parsed,
    }))
}

fn check_golden(name: &str, value: &Value) {
    let mut text = serde_json::to_string_pretty(value).unwrap();
    text.push('\n');
    check_golden_text(&format!("{name}.json"), &text);
}

/// Compares `text` with `tests/golden/<file>` (or writes it there when
/// `SPARKVC_UPDATE_GOLDEN` is set).
fn check_golden_text(file: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(file);
    if std::env::var_os("SPARKVC_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with SPARKVC_UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if want != text {
        let first = want
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| want.lines().count().min(text.lines().count()));
        panic!(
            "{} differs from the rendered output, first at line {}:\n  golden:   {:?}\n  rendered: {:?}\n\
             If the change is intended, rerun with SPARKVC_UPDATE_GOLDEN=1 and review the diff.",
            path.display(),
            first + 1,
            want.lines().nth(first),
            text.lines().nth(first),
        );
    }
}

#[test]
fn spark_pi_with_defaults() {
    let run = run(json!({
        "jobDriver": {"sparkSubmitJobDriver": {
            "entryPoint": "local:///opt/spark/examples/jars/spark-examples_2.12-3.5.5.jar",
            "entryPointArguments": ["100"],
            "sparkSubmitParameters": "--class org.apache.spark.examples.SparkPi --conf spark.executor.instances=2 --conf 'spark.driver.extraJavaOptions=-Dlog4j.debug=true -Da=$(b)'"
        }},
        "configurationOverrides": {"applicationConfiguration": [
            {"classification": "spark-defaults", "properties": {"spark.executor.memory": "1g", "spark.executor.instances": "1"}}
        ]}
    }));
    assert_eq!(
        pod_template_files(&run).unwrap(),
        PodTemplateFiles::default()
    );
    check_golden("spark_pi", &render(&run, None, None).unwrap());
}

/// The cluster's placement of job pods reaches the job-runner and both pod
/// templates, over the run's own node selectors; a run that names one of
/// the cluster's keys with another value is refused.
#[test]
fn job_pods_go_where_the_cluster_puts_them() {
    let scheduling: JobPodScheduling = toml::from_str(
        r#"
node_selector = { "sparkvc.io/node" = "real" }
tolerations = [{ key = "sparkvc.io/real-node", operator = "Exists", effect = "NoSchedule" }]
"#,
    )
    .unwrap();
    let driver_template = r#"{"spec": {"nodeSelector": {"sparkvc.io/node": "kwok", "disk": "ssd"},
        "tolerations": [{"key": "spot", "operator": "Exists"}]}}"#;
    let run = run(json!({
        "jobDriver": {"sparkSubmitJobDriver": {
            "entryPoint": "local:///opt/spark/examples/src/main/python/pi.py",
            "sparkSubmitParameters": "--conf spark.kubernetes.driver.podTemplateFile=/t/driver.yaml --conf spark.kubernetes.node.selector.zone=a"
        }},
        "configurationOverrides": {"applicationConfiguration": [
            {"classification": "emr-job-submitter", "properties": {"jobsubmitter.node.selector.disk": "ssd"}}
        ]}
    }));
    let rendered = render_on(&run, Some(driver_template), None, 1, &scheduling).unwrap();
    let toleration =
        json!({"key": "sparkvc.io/real-node", "operator": "Exists", "effect": "NoSchedule"});
    let runner = &rendered["jobRunner"]["spec"];
    assert_eq!(
        runner["nodeSelector"],
        json!({"sparkvc.io/node": "real", "disk": "ssd"})
    );
    assert_eq!(runner["tolerations"], json!([toleration]));
    let driver = &rendered["podTemplatesParsed"]["driver-pod-template.json"]["spec"];
    assert_eq!(
        driver["nodeSelector"],
        json!({"sparkvc.io/node": "real", "disk": "ssd"})
    );
    assert_eq!(
        driver["tolerations"],
        json!([{"key": "spot", "operator": "Exists"}, toleration])
    );
    let executor = &rendered["podTemplatesParsed"]["executor-pod-template.json"]["spec"];
    assert_eq!(executor["nodeSelector"], json!({"sparkvc.io/node": "real"}));
    assert_eq!(executor["tolerations"], json!([toleration]));

    // The same run with defaults: no placement at all.
    let plain = render(&run, Some(driver_template), None).unwrap();
    assert_eq!(plain["jobRunner"]["spec"]["tolerations"], Value::Null);
    assert_eq!(
        plain["podTemplatesParsed"]["executor-pod-template.json"]["spec"]["nodeSelector"],
        Value::Null
    );

    for (params, submitter) in [
        (
            "--conf spark.kubernetes.executor.node.selector.sparkvc.io/node=kwok",
            None,
        ),
        ("", Some("kwok")),
    ] {
        let mut overrides = json!([]);
        if let Some(node) = submitter {
            overrides = json!([{"classification": "emr-job-submitter",
                "properties": {"jobsubmitter.node.selector.sparkvc.io/node": node}}]);
        }
        let run = self::run(json!({
            "jobDriver": {"sparkSubmitJobDriver": {
                "entryPoint": "local:///opt/spark/examples/src/main/python/pi.py",
                "sparkSubmitParameters": params
            }},
            "configurationOverrides": {"applicationConfiguration": overrides}
        }));
        let err = render_on(&run, None, None, 1, &scheduling).unwrap_err();
        assert_eq!(err.failure_reason(), FailureReason::UserError);
        assert!(err.to_string().contains("sparkvc.io/node=real"), "{err}");
    }
}

/// A retried attempt gets objects of its own: only the names and the
/// attempt label differ from the first attempt's.
#[test]
fn a_retried_attempt_has_its_own_names() {
    let run = run(json!({
        "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "local:///app.py"}},
        "retryPolicyConfiguration": {"maxAttempts": 3}
    }));
    let first = render_attempt(&run, None, None, 1).unwrap();
    let third = render_attempt(&run, None, None, 3).unwrap();
    let id = run.id.as_str();
    // What attempt 3 must be: attempt 1 with every name and attempt label
    // changed, and nothing else.
    fn renamed(value: &Value, key: &str, id: &str) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), renamed(v, k, id)))
                    .collect(),
            ),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| renamed(v, key, id)).collect())
            }
            Value::String(_) if key == "sparkvc.io/attempt" => json!("3"),
            Value::String(text) if key == "name" && text == id => json!(format!("{id}-3")),
            Value::String(text) => json!(
                text.replace(&format!("spark-{id}-"), &format!("spark-{id}-3-"))
                    // The owner (the attempt's job-runner) inside the
                    // templates' JSON text.
                    .replace(
                        &format!("\"name\": \"{id}\""),
                        &format!("\"name\": \"{id}-3\"")
                    )
                    .replace(
                        &format!("podNamePrefix spark-{id}\n"),
                        &format!("podNamePrefix spark-{id}-3\n"),
                    )
                    .replace("sparkvc.io/attempt 1", "sparkvc.io/attempt 3")
                    .replace(
                        "\"sparkvc.io/attempt\": \"1\"",
                        "\"sparkvc.io/attempt\": \"3\""
                    )
            ),
            other => other.clone(),
        }
    }
    assert_eq!(renamed(&first, "", id), third);
    assert!(third.to_string().contains(&format!(
        "spark.kubernetes.driver.pod.name spark-{id}-3-driver"
    )));
    assert_eq!(third["jobRunner"]["metadata"]["name"], format!("{id}-3"));
}

/// Logs to S3 and CloudWatch: fluentd sidecars on the job-runner, driver and
/// executor pods, and their configurations in the ConfigMap.
#[test]
fn logs_to_s3_and_cloudwatch() {
    let run = run(json!({
        "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "local:///app.py"}},
        "configurationOverrides": {
            "applicationConfiguration": [
                {"classification": "emr-containers-defaults", "properties": {"logging.request.memory": "300Mi"}}
            ],
            "monitoringConfiguration": {
                "s3MonitoringConfiguration": {"logUri": "s3://team-a-logs/spark/"},
                "cloudWatchMonitoringConfiguration": {"logGroupName": "/emr-on-eks/team-a", "logStreamNamePrefix": "pi"},
                "containerLogRotationConfiguration": {"rotationSize": "50MB", "maxFilesToKeep": 5}
            }
        }
    }));
    let rendered = render(&run, None, None).unwrap();
    check_golden("logs_s3_cloudwatch", &rendered);
    // The fluentd configurations are golden files of their own, to read.
    let data = &rendered["configMap"]["data"];
    for key in ["fluentd-job-runner.conf", "fluentd-spark.conf"] {
        check_golden_text(key, data[key].as_str().expect("a fluentd configuration"));
    }
}

/// `jobsubmitter.logging` and `executor.logging` turn sidecars off; an
/// unknown value is refused naming the property.
#[test]
fn log_sidecars_can_be_turned_off_per_component() {
    let with = |properties: Value| {
        run(json!({
            "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "local:///app.py"}},
            "configurationOverrides": {
                "applicationConfiguration": properties,
                "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": "s3://logs"}}
            }
        }))
    };
    let off = render(
        &with(json!([
            {"classification": "emr-job-submitter", "properties": {"jobsubmitter.logging": "DISABLED"}},
            {"classification": "emr-containers-defaults", "properties": {"executor.logging": "DISABLED"}}
        ])),
        None,
        None,
    )
    .unwrap();
    let pod_spec = &off["jobRunner"]["spec"];
    assert!(pod_spec["initContainers"].is_null(), "{pod_spec}");
    assert!(
        off["podTemplatesParsed"]["executor-pod-template.json"]["spec"]["initContainers"].is_null()
    );
    let driver = &off["podTemplatesParsed"]["driver-pod-template.json"]["spec"];
    assert_eq!(driver["initContainers"][0]["name"], "sparkvc-fluentd");
    let err = render(
        &with(json!([{"classification": "emr-containers-defaults", "properties": {"executor.logging": "off"}}])),
        None,
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("executor.logging"), "{err}");
}

#[test]
fn pyspark_with_pod_templates_and_job_submitter_settings() {
    let run = run(json!({
        "name": "nightly-etl",
        "jobDriver": {"sparkSubmitJobDriver": {
            "entryPoint": "s3a://bucket/jobs/etl.py",
            "entryPointArguments": ["--date", "2025-01-01"],
            "sparkSubmitParameters": "--py-files s3a://bucket/jobs/deps.zip --conf spark.kubernetes.executor.podTemplateFile=s3://bucket/templates/executor.json"
        }},
        "configurationOverrides": {"applicationConfiguration": [
            {"classification": "spark-defaults", "properties": {
                "spark.kubernetes.driver.podTemplateFile": "s3://bucket/templates/driver.yaml",
                "spark.dynamicAllocation.enabled": "false"
            }},
            {"classification": "emr-job-submitter", "properties": {
                "jobsubmitter.node.selector.eks.amazonaws.com/capacityType": "ON_DEMAND",
                "jobsubmitter.label.team": "a",
                "jobsubmitter.container.request.cores": "250m",
                "jobsubmitter.container.request.memory": "768Mi"
            }},
            {"classification": "emr-containers-defaults", "properties": {"job-start-timeout": "1800"}}
        ]}
    }));
    assert_eq!(
        pod_template_files(&run).unwrap(),
        PodTemplateFiles {
            driver: Some("s3://bucket/templates/driver.yaml".into()),
            executor: Some("s3://bucket/templates/executor.json".into()),
        }
    );
    let driver = "\
apiVersion: v1
kind: Pod
metadata:
  labels:
    team: a
spec:
  securityContext:
    fsGroup: 65534
  nodeSelector:
    eks.amazonaws.com/capacityType: ON_DEMAND
  containers:
  - name: spark-kubernetes-driver
    env:
    - name: TZ
      value: UTC
  - name: side-car
    image: docker.io/library/busybox:1.36
    command: [sh, -c, 'sleep infinity']
";
    let executor = r#"{"spec": {"tolerations": [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [{"name": "spark-kubernetes-executor", "resources": {"limits": {"ephemeral-storage": "10Gi"}}}]}}"#;
    check_golden(
        "pyspark_with_templates",
        &render(&run, Some(driver), Some(executor)).unwrap(),
    );
}

/// A StartJobRun payload as EMR on EKS users send it, every classification
/// they use: Spark properties, environment variables through `spark-env`'s
/// nested `export`, a log4j2 configuration, Hive and Hadoop settings, and
/// metrics sinks.
#[test]
fn emr_on_eks_application_configuration() {
    let run = run(json!({
        "name": "replayed-from-emr",
        "jobDriver": {"sparkSubmitJobDriver": {
            "entryPoint": "local:///opt/spark/examples/src/main/python/pi.py"
        }},
        "configurationOverrides": {"applicationConfiguration": [
            {"classification": "spark-defaults", "properties": {"spark.executor.instances": "2"}},
            {"classification": "spark-env", "configurations": [
                {"classification": "export", "properties": {
                    "PYSPARK_PYTHON": "/usr/bin/python3",
                    "TZ": "UTC"
                }}
            ]},
            {"classification": "spark-log4j2", "properties": {
                "rootLogger.level": "warn",
                "logger.spark.name": "org.apache.spark",
                "logger.spark.level": "info"
            }},
            {"classification": "spark-hive-site", "properties": {
                "hive.metastore.client.factory.class": "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory"
            }},
            {"classification": "core-site", "properties": {"fs.s3a.connection.maximum": "200"}},
            {"classification": "spark-metrics", "properties": {
                "*.sink.prometheusServlet.class": "org.apache.spark.metrics.sink.PrometheusServlet",
                "*.sink.prometheusServlet.path": "/metrics/prometheus"
            }}
        ]}
    }));
    let rendered = render(&run, None, None).unwrap();
    let data = &rendered["configMap"]["data"];
    let defaults = data["spark-defaults.conf"].as_str().unwrap();
    for line in [
        "spark.executor.instances 2",
        "spark.kubernetes.driverEnv.PYSPARK_PYTHON /usr/bin/python3",
        "spark.executorEnv.PYSPARK_PYTHON /usr/bin/python3",
        "spark.executorEnv.TZ UTC",
        "spark.hadoop.hive.metastore.client.factory.class com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory",
        "spark.hadoop.fs.s3a.connection.maximum 200",
        "spark.metrics.conf.*.sink.prometheusServlet.class org.apache.spark.metrics.sink.PrometheusServlet",
    ] {
        assert!(
            defaults.lines().any(|l| l == line),
            "{line:?} not in:\n{defaults}"
        );
    }
    let log4j2 = data["log4j2.properties"].as_str().unwrap();
    assert!(
        log4j2.lines().any(|l| l == "rootLogger.level warn"),
        "{log4j2}"
    );
    check_golden("emr_on_eks_configuration", &rendered);
}

#[test]
fn spark_sql_file() {
    let run = run(json!({
        "name": "daily-report",
        "jobDriver": {"sparkSqlJobDriver": {
            "entryPoint": "s3a://bucket/sql/report.sql",
            "sparkSqlParameters": "--conf spark.sql.shuffle.partitions=8 --driver-memory 2g"
        }}
    }));
    check_golden("spark_sql", &render(&run, None, None).unwrap());
}

#[test]
fn tenant_objects() {
    let config = TenancyConfig {
        allow_ingress_from_namespaces: vec!["monitoring".into()],
        resource_quota: Some(BTreeMap::from([
            ("requests.cpu".into(), "64".into()),
            ("requests.memory".into(), "256Gi".into()),
        ])),
        container_limits: Some(ContainerLimits {
            default_request: BTreeMap::from([("cpu".into(), "100m".into())]),
            max: BTreeMap::from([("memory".into(), "64Gi".into())]),
            ..ContainerLimits::default()
        }),
    };
    let t = tenancy::render_tenant(NAMESPACE, "0000000000000000000000vc1", &config).unwrap();
    check_golden(
        "tenant",
        &json!({
            "role": t.role,
            "networkPolicy": t.network_policy,
            "resourceQuota": t.resource_quota,
            "limitRange": t.limit_range,
        }),
    );
}

#[test]
fn user_errors_fail_the_run_with_a_message_naming_the_field() {
    let cases = [
        (
            json!({"jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "x", "sparkSubmitParameters": "--conf \"a=b"}}}),
            None,
            "sparkSubmitParameters has an unterminated \" quote",
        ),
        (
            json!({"jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "x", "sparkSubmitParameters": "--conf spark.kubernetes.namespace=kube-system"}}}),
            None,
            "sparkSubmitParameters --conf: spark.kubernetes.namespace is set by sparkvc and cannot be set",
        ),
        (
            json!({"jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "x", "sparkSubmitParameters": "--deploy-mode client"}}}),
            None,
            "sparkSubmitParameters: --deploy-mode is set by sparkvc and cannot be given",
        ),
        (
            json!({"jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "x",
                "sparkSubmitParameters": "--conf spark.kubernetes.driver.podTemplateFile=/t.yaml"}}}),
            Some(
                "spec:\n  containers:\n  - name: spark-kubernetes-driver\n    image: evil/image\n",
            ),
            "driver pod template: spec.containers[spark-kubernetes-driver].image is not allowed (set spark.kubernetes.container.image instead)",
        ),
        (
            json!({"jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "x"}},
                "configurationOverrides": {"applicationConfiguration": [
                    {"classification": "emr-job-submitter", "properties": {"jobsubmitter.magic": "1"}}]}}),
            None,
            "emr-job-submitter: unknown property \"jobsubmitter.magic\"",
        ),
    ];
    for (extra, driver_template, want) in cases {
        let err = render(&run(extra), driver_template, None).unwrap_err();
        assert_eq!(err.failure_reason(), FailureReason::UserError);
        assert_eq!(err.state_details(), want);
    }
}

#[test]
fn a_template_asked_for_but_not_given_is_an_internal_error() {
    let run = run(
        json!({"jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "x",
        "sparkSubmitParameters": "--conf spark.kubernetes.driver.podTemplateFile=/t.yaml"}}}),
    );
    let err = render(&run, None, None).unwrap_err();
    assert_eq!(err.failure_reason(), FailureReason::InternalError);
}

#[test]
fn rendering_is_deterministic() {
    let run = run(
        json!({"jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "x",
        "sparkSubmitParameters": "--conf b=2 --conf a=1"}}}),
    );
    assert_eq!(
        render(&run, None, None).unwrap(),
        render(&run, None, None).unwrap()
    );
}
