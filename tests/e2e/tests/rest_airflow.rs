//! Apache Airflow's amazon provider, unchanged, drives runs on the local
//! cluster through sparkvc's REST protocol, as an Airflow deployment would
//! once its AWS connection points at sparkvc: `EmrContainerHook.submit_job`
//! and `poll_query_status` take a SparkPi run to COMPLETED; a run whose
//! spark-submit fails makes the hook report FAILED with sparkvc's reason;
//! and `EmrContainerOperator.on_kill` (what Airflow runs when a task is
//! killed) cancels a RUNNING run to CANCELLED. Airflow signs with SigV4 as a
//! principal whose policy allows only its own execution roles.
//!
//! Airflow comes from `deploy/local/airflow-env` (pinned in
//! `airflow-requirements.txt`; `make test` installs it). As in the
//! execution tests, `local-job-runner` runs each job-runner pod's real
//! spark-submit on this machine, and kwok plays the driver.

use serde_json::json;
use sparkvc_cluster_tests::{LocalEnv, TestNamespace, kwok};
use sparkvc_e2e::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const KEY: &str = "AKIAAIRFLOWEXAMPLE01";
const SECRET: &str = "airflow-secret";
const ROLE: &str = "arn:aws:iam::123456789012:role/airflow-spark";

fn identities(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("identities.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[policy]]
name = "airflow"
document = '''{{"Version": "2012-10-17", "Statement": [
  {{"Effect": "Allow", "Action": "emr-containers:CreateVirtualCluster", "Resource": "*"}},
  {{"Effect": "Allow", "Action": "emr-containers:*", "Resource": "arn:aws:emr-containers:*:123456789012:/virtualclusters/*"}},
  {{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::123456789012:role/airflow-*"}}
]}}'''

[[principal]]
arn = "arn:aws:sts::123456789012:assumed-role/airflow/worker"
policies = ["airflow"]
[[principal.access_key]]
id = "{KEY}"
secret = "{SECRET}"
"#
        ),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn airflow_submits_polls_fails_and_cancels_through_rest() {
    let python =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local/.airflow-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run deploy/local/airflow-env (make test does)",
        python.display()
    );
    let env = LocalEnv::load().expect("local environment");
    let kube = env.kube_client().await.expect("kube client");
    let ns = TestNamespace::create(&kube, "airflow").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let identities = identities(dir.path());
    let mut args = env.server_args();
    args.extend(["--identities".into(), identities.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with_env(
        &dir.path().join("data"),
        &args,
        &[
            ("AWS_ENDPOINT_URL", env.aws_endpoint.as_str()),
            ("AWS_REGION", env.aws_region.as_str()),
            ("AWS_ACCESS_KEY_ID", env.aws_access_key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", env.aws_secret_access_key.as_str()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    let signed = [
        ("AWS_ACCESS_KEY_ID", KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_REGION", "us-west-2"),
    ];
    let vc = json_of(&sparkvc_isolated(
        &server.endpoint(),
        &signed,
        &[
            "create-virtual-cluster",
            "--name",
            "airflow",
            "--container-provider",
            &format!(
                "id=local,type=EKS,info={{eksInfo={{namespace={}}}}}",
                ns.name
            ),
        ],
    ))["id"]
        .as_str()
        .unwrap()
        .to_string();

    let work = tempfile::tempdir().unwrap();
    let runner_log = work.path().join("runner.log");
    let _runner = ChildGuard(
        Command::new(local_job_runner_binary())
            .args(["--namespace", &ns.name, "--work-dir"])
            .arg(work.path())
            .stderr(std::fs::File::create(&runner_log).unwrap())
            .spawn()
            .expect("start local-job-runner"),
    );
    wait_for_line(&runner_log, &["watching job-runner pods"]).await;

    // Keep the job-runner pods for local-job-runner (kwok would finish them);
    // in the cancel mode keep the driver running too, so that the task is
    // killed while Spark runs.
    let stay = json!({"applicationConfiguration": [{
        "classification": "emr-job-submitter",
        "properties": {format!("jobsubmitter.annotation.{}", kwok::STAY_RUNNING): "true"}
    }]});
    let mut stay_and_drive = stay.clone();
    stay_and_drive["applicationConfiguration"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "classification": "spark-defaults",
            "properties": {format!("spark.kubernetes.driver.annotation.{}", kwok::STAY_RUNNING): "true"}
        }));
    let airflow = |mode: &str, overrides: &serde_json::Value, extra: &[(&str, &str)]| {
        Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("python/airflow_emr_containers.py"))
            .arg(mode)
            .env("SPARKVC_ENDPOINT", server.endpoint())
            .env("SPARKVC_REGION", "us-west-2")
            .env("AWS_ACCESS_KEY_ID", KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_SESSION_TOKEN")
            .env("SPARKVC_VIRTUAL_CLUSTER_ID", &vc)
            .env("SPARKVC_EXECUTION_ROLE_ARN", ROLE)
            .env("SPARKVC_RELEASE_LABEL", RELEASE)
            .env("SPARKVC_CONFIGURATION_OVERRIDES", overrides.to_string())
            .env("SPARKVC_POLL_INTERVAL", "2")
            // JVM start-up on a machine busy with other tests: be generous.
            .env("SPARKVC_MAX_POLLING_ATTEMPTS", "150")
            .envs(extra.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the Airflow script")
    };
    let result = |what: &str, child: Child| -> serde_json::Value {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().last().unwrap_or("");
        assert!(
            out.status.success(),
            "Airflow {what} exited {}: {line}\nAirflow's log:\n{}\nlocal-job-runner:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&runner_log).unwrap_or_default()
        );
        serde_json::from_str(line).unwrap()
    };

    let complete = airflow("complete", &stay, &[]);
    let fail = airflow(
        "fail",
        &stay,
        &[
            (
                "SPARKVC_FAILING_ENTRY_POINT",
                "local:///opt/spark/examples/src/main/python/pi.py",
            ),
            // spark-submit refuses it before any driver exists.
            ("SPARKVC_FAILING_SUBMIT_PARAMETERS", "--driver-memory 0"),
        ],
    );
    let cancel = airflow(
        "cancel",
        &stay_and_drive,
        &[("SPARKVC_CANCEL_WHEN_RUNNING", "1")],
    );

    let completed = result("complete", complete);
    assert_eq!(completed["state"], "COMPLETED");
    let failed = result("fail", fail);
    assert_eq!(failed["state"], "FAILED");
    let reason = failed["failureReason"].as_str().unwrap();
    assert!(
        reason.starts_with("USER_ERROR - ")
            && reason.contains("Driver memory must be a positive number"),
        "Airflow's failure reason: {reason}"
    );
    let cancelled = result("cancel", cancel);
    // Airflow counts CANCEL_PENDING as final; sparkvc then deletes the pods.
    let state = cancelled["state"].as_str().unwrap();
    assert!(matches!(state, "CANCEL_PENDING" | "CANCELLED"), "{state}");
    let describe = |id: &str| {
        json_of(&sparkvc_isolated(
            &server.endpoint(),
            &signed,
            &["describe-job-run", "--virtual-cluster-id", &vc, "--id", id],
        ))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let cancelled_id = cancelled["jobId"].as_str().unwrap();
    while describe(cancelled_id)["jobRun"]["state"] != "CANCELLED" {
        assert!(
            std::time::Instant::now() < deadline,
            "the cancelled run never reached CANCELLED"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Each run is what sparkvc itself reports, made by the Airflow principal.
    for (run, state) in [
        (&completed, "COMPLETED"),
        (&failed, "FAILED"),
        (&cancelled, "CANCELLED"),
    ] {
        let described = describe(run["jobId"].as_str().unwrap());
        assert_eq!(described["jobRun"]["state"], state);
        assert_eq!(
            described["jobRun"]["createdBy"],
            "arn:aws:sts::123456789012:assumed-role/airflow/worker"
        );
    }
    let history = describe(cancelled_id);
    let states: Vec<&str> = history["jobRun"]["stateHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert!(
        states.contains(&"RUNNING") && states.ends_with(&["CANCEL_PENDING", "CANCELLED"]),
        "the killed task's run went {states:?}"
    );
    ns.delete().await.unwrap();
}
