//! The real `sparkvc` CLI against the real server: aws-CLI-shaped commands,
//! flags, JSON output, errors and exit codes.

use serde_json::{Value, json};
use sparkvc_e2e::*;
use std::process::{Command, Stdio};

fn run(endpoint: &str, args: &[&str]) -> Value {
    json_of(&sparkvc(endpoint, args))
}

fn fails(endpoint: &str, args: &[&str], code: i32, message: &str) {
    let out = sparkvc(endpoint, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(
        stderr.contains(message),
        "{args:?}: stderr {stderr:?} lacks {message:?}"
    );
}

fn create_vc(endpoint: &str) -> String {
    let ns = unique("ns");
    let provider = format!("id=local,type=EKS,info={{eksInfo={{namespace={ns}}}}}");
    let out = run(
        endpoint,
        &[
            "create-virtual-cluster",
            "--name",
            "cli-vc",
            "--container-provider",
            &provider,
        ],
    );
    assert_eq!(out["name"], "cli-vc");
    out["id"].as_str().unwrap().to_string()
}

#[test]
fn virtual_clusters_and_job_runs_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let ep = server.endpoint();
    let vc = create_vc(&ep);
    let _second = create_vc(&ep);
    let _third = create_vc(&ep);

    let described = run(&ep, &["describe-virtual-cluster", "--id", &vc]);
    assert_eq!(described["virtualCluster"]["state"], "RUNNING");
    assert_eq!(
        described["virtualCluster"]["containerProvider"]["type"],
        "EKS"
    );
    // Automatic pagination: one page per cluster, all three in the output.
    let listed = run(&ep, &["list-virtual-clusters", "--max-results", "1"]);
    assert_eq!(listed["virtualClusters"].as_array().unwrap().len(), 3);
    assert!(listed.get("nextToken").is_none());
    let first = run(&ep, &["list-virtual-clusters", "--max-items", "2"]);
    assert_eq!(first["virtualClusters"].as_array().unwrap().len(), 2);
    let token = first["NextToken"]
        .as_str()
        .expect("NextToken when items remain")
        .to_string();
    let rest = run(&ep, &["list-virtual-clusters", "--starting-token", &token]);
    assert_eq!(rest["virtualClusters"].as_array().unwrap().len(), 1);

    let driver = dir.path().join("driver.json");
    std::fs::write(
        &driver,
        json!({"sparkSubmitJobDriver": {
            "entryPoint": "local:///opt/spark/examples/src/main/python/pi.py",
            "entryPointArguments": ["10"],
            "sparkSubmitParameters": "--conf spark.executor.instances=2 --conf spark.executor.memory=2G"
        }})
        .to_string(),
    )
    .unwrap();
    let driver_arg = format!("file://{}", driver.display());
    let started = run(
        &ep,
        &[
            "start-job-run",
            "--virtual-cluster-id",
            &vc,
            "--name",
            "pi",
            "--execution-role-arn",
            ROLE_ARN,
            "--release-label",
            RELEASE,
            "--job-driver",
            &driver_arg,
            "--tags",
            "team=data,env=test",
            "--configuration-overrides",
            r#"{"applicationConfiguration":[{"classification":"spark-defaults","properties":{"spark.driver.memory":"2G"}}]}"#,
            "--retry-policy-configuration",
            "maxAttempts=2",
        ],
    );
    let run_id = started["id"].as_str().unwrap().to_string();
    assert_eq!(started["virtualClusterId"], vc.as_str());
    assert_eq!(started["name"], "pi");

    let described = run(
        &ep,
        &[
            "describe-job-run",
            "--virtual-cluster-id",
            &vc,
            "--id",
            &run_id,
        ],
    );
    let job = &described["jobRun"];
    assert_eq!(job["state"], "PENDING");
    assert_eq!(job["tags"], json!({"team": "data", "env": "test"}));
    assert_eq!(job["retryPolicyConfiguration"]["maxAttempts"], 2);
    assert_eq!(
        job["jobDriver"]["sparkSubmitJobDriver"]["entryPointArguments"],
        json!(["10"])
    );
    assert_eq!(job["stateHistory"][0]["state"], "PENDING");
    assert!(job["createdAt"].as_str().unwrap().ends_with("+00:00"));

    // No --client-token: the CLI makes a new one, so this is a second run.
    let input = dir.path().join("input.json");
    std::fs::write(
        &input,
        json!({
            "virtualClusterId": vc, "name": "from-input", "executionRoleArn": ROLE_ARN, "releaseLabel": RELEASE,
            "jobDriver": {"sparkSqlJobDriver": {"entryPoint": "s3://bucket/query.sql"}}
        })
        .to_string(),
    )
    .unwrap();
    let input_arg = format!("file://{}", input.display());
    let second = run(
        &ep,
        &[
            "start-job-run",
            "--cli-input-json",
            &input_arg,
            "--name",
            "overridden",
        ],
    );
    assert_ne!(second["id"], started["id"]);
    assert_eq!(second["name"], "overridden");
    // An explicit token is honoured: the retry returns the same run.
    let with_token = |name: &str| {
        run(
            &ep,
            &[
                "start-job-run",
                "--cli-input-json",
                &input_arg,
                "--client-token",
                "cli-token-1",
                "--name",
                name,
            ],
        )
    };
    assert_eq!(with_token("same")["id"], with_token("same")["id"]);
    fails(
        &ep,
        &[
            "start-job-run",
            "--cli-input-json",
            &input_arg,
            "--client-token",
            "cli-token-1",
            "--name",
            "different",
        ],
        254,
        "An error occurred (ValidationException) when calling the StartJobRun operation: The client token cli-token-1 was already used",
    );

    let pending = run(
        &ep,
        &[
            "list-job-runs",
            "--virtual-cluster-id",
            &vc,
            "--states",
            "PENDING",
            "--max-results",
            "1",
        ],
    );
    assert_eq!(pending["jobRuns"].as_array().unwrap().len(), 3);

    let cancelled = run(
        &ep,
        &[
            "cancel-job-run",
            "--virtual-cluster-id",
            &vc,
            "--id",
            &run_id,
        ],
    );
    assert_eq!(cancelled, json!({"id": run_id, "virtualClusterId": vc}));
    fails(
        &ep,
        &[
            "cancel-job-run",
            "--virtual-cluster-id",
            &vc,
            "--id",
            &run_id,
        ],
        254,
        &format!(
            "An error occurred (ValidationException) when calling the CancelJobRun operation: Job run {run_id} is not in a cancellable state"
        ),
    );
    let by_state = run(
        &ep,
        &[
            "list-job-runs",
            "--virtual-cluster-id",
            &vc,
            "--states",
            "CANCELLED",
        ],
    );
    assert_eq!(by_state["jobRuns"][0]["id"], run_id.as_str());

    let updated = run(
        &ep,
        &[
            "update-virtual-cluster",
            "--id",
            &vc,
            "--scheduler-configuration",
            "maxConcurrentJobRuns=5,maxInQueueJobRuns=10",
        ],
    );
    assert_eq!(
        updated["virtualCluster"]["schedulerConfiguration"],
        json!({"maxInQueueJobRuns": 10, "maxConcurrentJobRuns": 5})
    );
    let deleted = run(&ep, &["delete-virtual-cluster", "--id", &vc]);
    assert_eq!(deleted["id"], vc.as_str());
    let state = run(&ep, &["describe-virtual-cluster", "--id", &vc]);
    assert_eq!(state["virtualCluster"]["state"], "TERMINATED");
    let remaining = run(
        &ep,
        &[
            "list-job-runs",
            "--virtual-cluster-id",
            &vc,
            "--states",
            "PENDING",
        ],
    );
    assert_eq!(remaining["jobRuns"], json!([]));
}

#[test]
fn templates_security_configurations_and_tags_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let ep = server.endpoint();
    let data = json!({
        "executionRoleArn": ROLE_ARN,
        "releaseLabel": RELEASE,
        "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "local:///app.py", "entryPointArguments": ["${Rows}"]}},
        "parameterConfiguration": {"Rows": {"type": "NUMBER", "defaultValue": "100"}}
    })
    .to_string();
    let template = run(
        &ep,
        &[
            "create-job-template",
            "--name",
            "tpl",
            "--job-template-data",
            &data,
        ],
    );
    let template_id = template["id"].as_str().unwrap().to_string();
    assert!(template["createdAt"].is_string());
    let listed = run(&ep, &["list-job-templates"]);
    assert_eq!(listed["templates"][0]["id"], template_id.as_str());
    let described = run(&ep, &["describe-job-template", "--id", &template_id]);
    assert_eq!(
        described["jobTemplate"]["jobTemplateData"]["parameterConfiguration"]["Rows"]["type"],
        "NUMBER"
    );

    let vc = create_vc(&ep);
    let from_template = run(
        &ep,
        &[
            "start-job-run",
            "--virtual-cluster-id",
            &vc,
            "--job-template-id",
            &template_id,
            "--job-template-parameters",
            "Rows=7",
        ],
    );
    let job = run(
        &ep,
        &[
            "describe-job-run",
            "--virtual-cluster-id",
            &vc,
            "--id",
            from_template["id"].as_str().unwrap(),
        ],
    );
    assert_eq!(
        job["jobRun"]["jobDriver"]["sparkSubmitJobDriver"]["entryPointArguments"],
        json!(["7"])
    );
    fails(
        &ep,
        &[
            "start-job-run",
            "--virtual-cluster-id",
            &vc,
            "--job-template-id",
            &template_id,
            "--job-template-parameters",
            "Rows=seven",
        ],
        254,
        "The value 'seven' of job template parameter Rows is not a NUMBER.",
    );
    assert_eq!(
        run(&ep, &["delete-job-template", "--id", &template_id])["id"],
        template_id.as_str()
    );

    let sc_data = r#"{"authenticationConfiguration":{"iamConfiguration":{"systemRole":"arn:aws:iam::123456789012:role/system"}}}"#;
    let sc = run(
        &ep,
        &[
            "create-security-configuration",
            "--name",
            "sc",
            "--security-configuration-data",
            sc_data,
        ],
    );
    let sc_id = sc["id"].as_str().unwrap().to_string();
    let described = run(&ep, &["describe-security-configuration", "--id", &sc_id]);
    assert_eq!(
        described["securityConfiguration"]["securityConfigurationData"]["authenticationConfiguration"]
            ["iamConfiguration"]["systemRole"],
        "arn:aws:iam::123456789012:role/system"
    );
    assert_eq!(
        run(&ep, &["list-security-configurations"])["securityConfigurations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        run(&ep, &["delete-security-configuration", "--id", &sc_id])["id"],
        sc_id.as_str()
    );

    let arn = format!("arn:aws:emr-containers:us-west-2:123456789012:/virtualclusters/{vc}");
    let out = sparkvc(
        &ep,
        &["tag-resource", "--resource-arn", &arn, "--tags", "a=1,b=2"],
    );
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "tag-resource prints nothing, like the aws CLI"
    );
    let out = sparkvc(
        &ep,
        &["untag-resource", "--resource-arn", &arn, "--tag-keys", "a"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        run(&ep, &["list-tags-for-resource", "--resource-arn", &arn]),
        json!({"tags": {"b": "2"}})
    );
}

#[test]
fn bad_input_gets_a_clear_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let ep = server.endpoint();
    let vc = create_vc(&ep);
    let base = [
        "start-job-run",
        "--virtual-cluster-id",
        vc.as_str(),
        "--execution-role-arn",
        ROLE_ARN,
        "--release-label",
        RELEASE,
    ];
    fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        base.iter().chain(extra).copied().collect()
    }

    fails(
        &ep,
        &with(&base, &["--job-driver", "{not json"]),
        252,
        "--job-driver",
    );
    fails(
        &ep,
        &with(
            &base,
            &[
                "--job-driver",
                r#"{"sparkSubmitJobDrivr": {"entryPoint": "x"}}"#,
            ],
        ),
        252,
        "sparkSubmitJobDrivr",
    );
    fails(
        &ep,
        &with(&base, &["--job-driver", "file:///no/such/file.json"]),
        252,
        "/no/such/file.json",
    );
    fails(
        &ep,
        &with(
            &base,
            &[
                "--job-driver",
                r#"{"sparkSubmitJobDriver": {"entryPoint": "x"}, "sparkSqlJobDriver": {}}"#,
            ],
        ),
        254,
        "when calling the StartJobRun operation: jobDriver must specify exactly one",
    );
    fails(
        &ep,
        &with(
            &base,
            &[
                "--job-driver",
                &format!(
                    r#"{{"sparkSubmitJobDriver": {{"entryPoint": "{}"}}}}"#,
                    "x".repeat(300)
                ),
            ],
        ),
        254,
        "at 'jobDriver.sparkSubmitJobDriver.entryPoint' failed to satisfy constraint: Member must have length less than or equal to 256",
    );
    fails(
        &ep,
        &[
            "describe-job-run",
            "--virtual-cluster-id",
            &vc,
            "--id",
            "NOT-AN-ID",
        ],
        254,
        "(ValidationException)",
    );
    fails(
        &ep,
        &[
            "list-job-runs",
            "--virtual-cluster-id",
            &vc,
            "--created-after",
            "yesterday",
        ],
        252,
        "yesterday",
    );
    fails(&ep, &["describe-virtual-cluster"], 252, "--id");

    // The rejected requests stored nothing.
    let listed = run(&ep, &["list-job-runs", "--virtual-cluster-id", &vc]);
    assert_eq!(listed["jobRuns"], json!([]));

    let stopped = server.endpoint();
    server.kill9();
    fails(
        &stopped,
        &["list-virtual-clusters"],
        255,
        "Could not connect to the endpoint URL",
    );
}

#[test]
fn start_job_run_wait_follows_the_run_to_a_terminal_state() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let ep = server.endpoint();
    let vc = create_vc(&ep);
    let waiting = Command::new(cli_binary())
        .args([
            "start-job-run",
            "--virtual-cluster-id",
            &vc,
            "--execution-role-arn",
            ROLE_ARN,
            "--release-label",
            RELEASE,
        ])
        .args([
            "--job-driver",
            r#"{"sparkSubmitJobDriver":{"entryPoint":"local:///app.py"}}"#,
            "--wait",
            "--poll-interval",
            "0.2",
        ])
        .env("SPARKVC_ENDPOINT_URL", &ep)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Nothing runs job runs yet, so the way to end this one is to cancel it.
    let run_id = loop {
        let listed = run(&ep, &["list-job-runs", "--virtual-cluster-id", &vc]);
        if let Some(id) = listed["jobRuns"][0]["id"].as_str() {
            break id.to_string();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    run(
        &ep,
        &[
            "cancel-job-run",
            "--virtual-cluster-id",
            &vc,
            "--id",
            &run_id,
        ],
    );
    let out = waiting.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a cancelled run is not success: {stderr}"
    );
    assert!(
        stderr.contains("PENDING") && stderr.contains("CANCELLED"),
        "progress shows each state: {stderr}"
    );
    let last: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(last["jobRun"]["state"], "CANCELLED");
}
