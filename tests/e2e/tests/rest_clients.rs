//! Real AWS clients, unchanged, against the real server over the REST
//! protocol: boto3 (every operation, every paginator, modeled exceptions,
//! bad input on the wire) and the AWS CLI, each signing with SigV4 as two
//! tenants held to IAM policies. Both are the pinned versions of
//! `deploy/local/requirements.txt`. What they create is read back over
//! gRPC, and by the `sparkvc` CLI: the two protocols are one control plane.
//!
//! The server runs without a Kubernetes cluster here (runs stay PENDING);
//! runs that execute through REST clients are in the Airflow and cluster
//! tests.

use serde_json::Value;
use sparkvc_e2e::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const REGION: &str = "us-west-2";
const ACCOUNT: &str = "123456789012";
const A_KEY: &str = "AKIARESTTENANTA00001";
const A_SECRET: &str = "rest/secret+a";
const B_KEY: &str = "AKIARESTTENANTB00001";
const B_SECRET: &str = "rest-secret-b";
const OPERATOR_KEY: &str = "AKIARESTOPERATOR0001";
const OPERATOR_SECRET: &str = "rest-secret-operator";

/// Resources tagged with the caller's team, creates only with that tag,
/// and the team's own execution roles: the policy of the tenants test.
const TENANT_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "CreateTagged", "Effect": "Allow",
     "Action": ["emr-containers:CreateVirtualCluster", "emr-containers:CreateJobTemplate",
                "emr-containers:CreateSecurityConfiguration", "emr-containers:TagResource"],
     "Resource": "*",
     "Condition": {"StringEquals": {"aws:RequestTag/team": "${aws:PrincipalTag/team}"}}},
    {"Sid": "OwnResources", "Effect": "Allow",
     "Action": ["emr-containers:*", "sparkvc:*"],
     "Resource": "*",
     "Condition": {"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}}},
    {"Sid": "Lists", "Effect": "Allow",
     "Action": ["emr-containers:ListVirtualClusters", "emr-containers:ListJobTemplates",
                "emr-containers:ListSecurityConfigurations", "emr-containers:*ManagedEndpoint*",
                "emr-containers:DescribeSecurityConfiguration", "emr-containers:DeleteSecurityConfiguration"],
     "Resource": "*"},
    {"Sid": "OwnRoles", "Effect": "Allow", "Action": "iam:PassRole",
     "Resource": "arn:aws:iam::123456789012:role/${aws:PrincipalTag/team}-*"}
  ]
}"#;

fn identities(dir: &Path) -> PathBuf {
    let path = dir.join("identities.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[policy]]
name = "tenant"
document = '''{TENANT_POLICY}'''

[[principal]]
arn = "arn:aws:iam::{ACCOUNT}:user/alice"
policies = ["tenant"]
tags = {{ team = "a" }}
[[principal.access_key]]
id = "{A_KEY}"
secret = "{A_SECRET}"

[[principal]]
arn = "arn:aws:iam::{ACCOUNT}:user/bob"
policies = ["tenant"]
tags = {{ team = "b" }}
[[principal.access_key]]
id = "{B_KEY}"
secret = "{B_SECRET}"

[[policy]]
name = "everything"
document = '{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":["emr-containers:*","iam:PassRole"],"Resource":"*"}}}}'

[[principal]]
arn = "arn:aws:iam::{ACCOUNT}:user/operator"
policies = ["everything"]
[[principal.access_key]]
id = "{OPERATOR_KEY}"
secret = "{OPERATOR_SECRET}"
"#
        ),
    )
    .unwrap();
    path
}

fn venv_bin(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/local/.venv/bin")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: start the local environment first (deploy/local/up, which `make test` runs)",
        path.display()
    );
    path
}

fn start_server(dir: &Path) -> Server {
    let identities = identities(dir);
    Server::start_with(
        &dir.join("data"),
        &["--identities", identities.to_str().unwrap()],
    )
}

fn succeeded(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn boto3_drives_every_operation_paginator_and_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path());
    let namespace = unique("rest-ns");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/boto3_every_operation.py");
    let out = Command::new(venv_bin("python"))
        .arg(&script)
        .env("SPARKVC_ENDPOINT", server.endpoint())
        .env("SPARKVC_REGION", REGION)
        .env("SPARKVC_NAMESPACE", &namespace)
        .env("TENANT_A_KEY", A_KEY)
        .env("TENANT_A_SECRET", A_SECRET)
        .env("TENANT_B_KEY", B_KEY)
        .env("TENANT_B_SECRET", B_SECRET)
        .env("OPERATOR_KEY", OPERATOR_KEY)
        .env("OPERATOR_SECRET", OPERATOR_SECRET)
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    let stdout = succeeded("the boto3 script", &out);
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    let checks = summary["checks"].as_u64().unwrap();
    assert!(checks > 150, "only {checks} checks ran");
    println!("boto3: {checks} checks passed");

    // What boto3 made over REST is what the gRPC API and the sparkvc CLI
    // see: one store, one control plane.
    let vc = summary["virtualClusterId"].as_str().unwrap();
    let run = summary["jobRunId"].as_str().unwrap();
    let env = [
        ("AWS_ACCESS_KEY_ID", A_KEY),
        ("AWS_SECRET_ACCESS_KEY", A_SECRET),
        ("AWS_REGION", REGION),
    ];
    let described = json_of(&sparkvc_isolated(
        &server.endpoint(),
        &env,
        &["describe-job-run", "--virtual-cluster-id", vc, "--id", run],
    ));
    assert_eq!(described["jobRun"]["name"], "pi-0");
    assert_eq!(
        described["jobRun"]["createdBy"],
        format!("arn:aws:iam::{ACCOUNT}:user/alice")
    );
    assert_eq!(described["jobRun"]["tags"]["step"], "0");
}

/// `aws emr-containers …` with `--endpoint-url`.
fn aws(endpoint: &str, home: &Path, args: &[&str]) -> Output {
    Command::new(venv_bin("aws"))
        .args(["--endpoint-url", endpoint, "--region", REGION])
        .args(if args.contains(&"--output") {
            &[][..]
        } else {
            &["--output", "json"][..]
        })
        .arg("emr-containers")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("aws-config"))
        .env("AWS_ACCESS_KEY_ID", A_KEY)
        .env("AWS_SECRET_ACCESS_KEY", A_SECRET)
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .unwrap()
}

fn aws_json(endpoint: &str, home: &Path, args: &[&str]) -> Value {
    let stdout = succeeded(
        &format!("aws emr-containers {}", args.join(" ")),
        &aws(endpoint, home, args),
    );
    if stdout.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn the_aws_cli_runs_the_emr_on_eks_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path());
    let endpoint = server.endpoint();
    let home = dir.path();
    // Timestamps as AWS CLI v2 prints them by default, and the sparkvc CLI too.
    std::fs::write(
        home.join("aws-config"),
        "[default]\ncli_timestamp_format = iso8601\n",
    )
    .unwrap();
    let namespace = unique("cli-ns");

    let vc = aws_json(
        &endpoint,
        home,
        &[
            "create-virtual-cluster",
            "--name",
            "from-aws-cli",
            "--container-provider",
            &format!(
                r#"{{"id":"local","type":"EKS","info":{{"eksInfo":{{"namespace":"{namespace}"}}}}}}"#
            ),
            "--tags",
            "team=a",
        ],
    );
    let vc_id = vc["id"].as_str().unwrap().to_string();

    // A StartJobRun payload as teams keep them for EMR on EKS, from a file.
    let input = dir.path().join("start-job-run.json");
    std::fs::write(
        &input,
        serde_json::json!({
            "name": "pi-from-file",
            "virtualClusterId": vc_id,
            "executionRoleArn": format!("arn:aws:iam::{ACCOUNT}:role/a-spark"),
            "releaseLabel": "emr-7.2.0-latest",
            "jobDriver": {"sparkSubmitJobDriver": {
                "entryPoint": "local:///opt/spark/examples/src/main/python/pi.py",
                "entryPointArguments": ["10"],
                "sparkSubmitParameters": "--conf spark.executor.instances=2"}},
            "configurationOverrides": {
                "applicationConfiguration": [{"classification": "spark-defaults",
                                              "properties": {"spark.driver.memory": "1g"}}],
                "monitoringConfiguration": {"persistentAppUI": "ENABLED"}},
            "tags": {"team": "a"}
        })
        .to_string(),
    )
    .unwrap();
    let started = aws_json(
        &endpoint,
        home,
        &[
            "start-job-run",
            "--cli-input-json",
            &format!("file://{}", input.display()),
        ],
    );
    let run_id = started["id"].as_str().unwrap().to_string();
    assert_eq!(started["virtualClusterId"], vc_id.as_str());

    let described = aws_json(
        &endpoint,
        home,
        &[
            "describe-job-run",
            "--virtual-cluster-id",
            &vc_id,
            "--id",
            &run_id,
        ],
    );
    assert_eq!(described["jobRun"]["name"], "pi-from-file");
    assert_eq!(described["jobRun"]["state"], "PENDING");
    // The same run as the sparkvc CLI prints it: the same document, member
    // for member, timestamps included.
    let env = [
        ("AWS_ACCESS_KEY_ID", A_KEY),
        ("AWS_SECRET_ACCESS_KEY", A_SECRET),
        ("AWS_REGION", REGION),
    ];
    let mut ours = json_of(&sparkvc_isolated(
        &endpoint,
        &env,
        &[
            "describe-job-run",
            "--virtual-cluster-id",
            &vc_id,
            "--id",
            &run_id,
        ],
    ));
    // sparkvc's own member (not in AWS's model, so the AWS CLI never shows it).
    let history = ours["jobRun"]
        .as_object_mut()
        .unwrap()
        .remove("stateHistory");
    assert!(history.is_some(), "the sparkvc CLI shows the state history");
    assert_eq!(described, ours, "the AWS CLI and the sparkvc CLI disagree");

    // --query and --output text print the same in both CLIs.
    let describe = [
        "describe-job-run",
        "--virtual-cluster-id",
        &vc_id,
        "--id",
        &run_id,
    ];
    let list = ["list-job-runs", "--virtual-cluster-id", &vc_id];
    for (query, args) in [
        (
            "jobRun.{id:id,name:name,state:state,createdAt:createdAt,driver:jobDriver.sparkSubmitJobDriver.entryPoint}",
            &describe[..],
        ),
        ("jobRuns[].[id,state,tags.team]", &list[..]),
        (
            "virtualClusters[?state=='RUNNING'].name | [0]",
            &["list-virtual-clusters"][..],
        ),
    ] {
        let mut with = args.to_vec();
        with.extend(["--query", query, "--output", "text"]);
        let theirs = succeeded("aws --output text", &aws(&endpoint, home, &with));
        let ours = succeeded(
            "sparkvc --output text",
            &sparkvc_isolated(&endpoint, &env, &with),
        );
        assert_eq!(theirs, ours, "--query {query} --output text");
        assert!(!ours.trim().is_empty());
    }

    let listed = aws_json(
        &endpoint,
        home,
        &[
            "list-job-runs",
            "--virtual-cluster-id",
            &vc_id,
            "--states",
            "PENDING",
            "SUBMITTED",
        ],
    );
    let ids: Vec<&str> = listed["jobRuns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [run_id.as_str()]);
    let none = aws_json(
        &endpoint,
        home,
        &[
            "list-job-runs",
            "--virtual-cluster-id",
            &vc_id,
            "--states",
            "COMPLETED",
        ],
    );
    assert_eq!(none["jobRuns"], serde_json::json!([]));

    let arn = started["arn"].as_str().unwrap();
    aws_json(
        &endpoint,
        home,
        &[
            "tag-resource",
            "--resource-arn",
            arn,
            "--tags",
            "team=a,stage=test",
        ],
    );
    let tags = aws_json(
        &endpoint,
        home,
        &["list-tags-for-resource", "--resource-arn", arn],
    );
    assert_eq!(
        tags["tags"],
        serde_json::json!({"team": "a", "stage": "test"})
    );

    let cancelled = aws_json(
        &endpoint,
        home,
        &[
            "cancel-job-run",
            "--virtual-cluster-id",
            &vc_id,
            "--id",
            &run_id,
        ],
    );
    assert_eq!(cancelled["id"], run_id.as_str());

    // Errors read as the AWS CLI prints AWS's own.
    let refused = aws(
        &endpoint,
        home,
        &[
            "describe-job-run",
            "--virtual-cluster-id",
            &vc_id,
            "--id",
            "0000000000000000000",
        ],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("(AccessDeniedException) when calling the DescribeJobRun operation")
            && stderr
                .contains("user/alice is not authorized to perform: emr-containers:DescribeJobRun"),
        "{stderr}"
    );
    let invalid = aws(
        &endpoint,
        home,
        &[
            "start-job-run",
            "--cli-input-json",
            &format!("file://{}", input.display()),
            "--release-label",
            "emr-0.0-x",
            "--client-token",
            "other",
        ],
    );
    let stderr = String::from_utf8_lossy(&invalid.stderr);
    assert!(
        stderr.contains("(ResourceNotFoundException) when calling the StartJobRun operation: Release emr-0.0-x doesn't exist"),
        "{stderr}"
    );
}

/// `value` with every empty string replaced by a placeholder.
fn filled(value: Value) -> Value {
    match value {
        Value::String(s) if s.is_empty() => Value::String("x".into()),
        Value::Object(members) => members.into_iter().map(|(k, v)| (k, filled(v))).collect(),
        Value::Array(items) => items.into_iter().map(filled).collect(),
        other => other,
    }
}

/// Every member path of a JSON document with the kind of value there
/// (`jobDriver.sparkSubmitJobDriver.entryPointArguments[]: string`).
fn member_paths(value: &Value, at: String, out: &mut std::collections::BTreeSet<String>) {
    match value {
        Value::Object(members) => {
            out.insert(format!("{at}: object"));
            for (name, member) in members {
                let path = if at.is_empty() {
                    name.clone()
                } else {
                    format!("{at}.{name}")
                };
                member_paths(member, path, out);
            }
        }
        Value::Array(items) => {
            out.insert(format!("{at}: list"));
            for item in items {
                member_paths(item, format!("{at}[]"), out);
            }
        }
        Value::String(_) => {
            out.insert(format!("{at}: string"));
        }
        Value::Number(_) => {
            out.insert(format!("{at}: number"));
        }
        Value::Bool(_) => {
            out.insert(format!("{at}: boolean"));
        }
        Value::Null => {
            out.insert(format!("{at}: null"));
        }
    }
}

/// `--generate-cli-skeleton` (input) of every operation AWS has prints the
/// same members, at the same depths and of the same kinds, in the AWS CLI
/// and in the sparkvc CLI; and the AWS CLI's skeleton, as it prints it,
/// is accepted by the sparkvc CLI's `--cli-input-json` (which rejects
/// unknown members by name). Values differ only where botocore puts an
/// enum's first value and sparkvc `""`.
#[test]
fn the_aws_cli_and_the_sparkvc_cli_print_the_same_skeletons() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    std::fs::write(home.join("aws-config"), "[default]\n").unwrap();
    // Nothing listens here: neither CLI may call anything.
    let nowhere = "http://127.0.0.1:9";
    let mut compared = 0;
    for command in [
        "create-virtual-cluster",
        "describe-virtual-cluster",
        "list-virtual-clusters",
        "update-virtual-cluster",
        "delete-virtual-cluster",
        "start-job-run",
        "describe-job-run",
        "list-job-runs",
        "cancel-job-run",
        "create-job-template",
        "describe-job-template",
        "list-job-templates",
        "delete-job-template",
        "create-security-configuration",
        "describe-security-configuration",
        "list-security-configurations",
        "delete-security-configuration",
        "tag-resource",
        "untag-resource",
        "list-tags-for-resource",
    ] {
        let theirs_text = succeeded(
            &format!("aws emr-containers {command} --generate-cli-skeleton"),
            &aws(nowhere, home, &[command, "--generate-cli-skeleton"]),
        );
        let theirs: Value = serde_json::from_str(&theirs_text).unwrap();
        let ours = json_of(&sparkvc_isolated(
            nowhere,
            &[],
            &[command, "--generate-cli-skeleton"],
        ));
        let (mut a, mut b) = (Default::default(), Default::default());
        member_paths(&theirs, String::new(), &mut a);
        member_paths(&ours, String::new(), &mut b);
        assert_eq!(
            a, b,
            "{command}: the AWS CLI's skeleton (left) and sparkvc's (right) differ:\n{theirs:#}\n{ours:#}"
        );
        // The AWS CLI's own skeleton reads back as sparkvc CLI input: the
        // call is built (members, types, timestamps) and only the
        // connection fails.
        // Empty strings filled in, since the CLI asks for required members
        // that are empty before it calls.
        let file = home.join(format!("{command}.json"));
        std::fs::write(&file, filled(theirs).to_string()).unwrap();
        let out = sparkvc_isolated(
            nowhere,
            &[],
            &[
                command,
                "--no-sign-request",
                "--cli-input-json",
                &format!("file://{}", file.display()),
            ],
        );
        assert_eq!(
            out.status.code(),
            Some(255),
            "{command}: the AWS CLI's skeleton is not sparkvc CLI input: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        compared += 1;
    }
    println!("skeletons: {compared} operations compared with the AWS CLI's");
}
