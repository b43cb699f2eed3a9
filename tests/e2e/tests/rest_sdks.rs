//! Three more AWS SDKs, unchanged, against the real server over the REST
//! protocol, so that the protocol is not tuned to botocore: the AWS SDK for
//! Rust (`aws-sdk-emrcontainers`, in this test), for JavaScript v3
//! (`tests/e2e/js`, pinned by its package-lock) and for Java v2
//! (`tests/e2e/java`, pinned by its pom). Each creates a virtual cluster,
//! starts a run, describes it, lists (with the SDK's paginator), cancels
//! another, tags, and reads an error as the SDK's modeled exception, signing
//! with SigV4 as a principal held to a policy.
//!
//! The JavaScript and Java clients are installed on first use (`npm ci`,
//! `mvn package`, from the registries) and reused after. The server runs
//! without Kubernetes here, so runs stay PENDING; SparkPi through a REST
//! client to COMPLETED is in the Airflow test on the local cluster.

use aws_sdk_emrcontainers as emr;
use emr::types::{ContainerInfo, ContainerProvider, ContainerProviderType, EksInfo, JobDriver};
use sparkvc_e2e::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const REGION: &str = "us-west-2";
const KEY: &str = "AKIASDKEXAMPLE000001";
const SECRET: &str = "sdk-secret";
const ROLE: &str = "arn:aws:iam::123456789012:role/spark";

fn start_server(dir: &Path) -> Server {
    let identities = dir.join("identities.toml");
    std::fs::write(
        &identities,
        format!(
            r#"
[[policy]]
name = "everything"
document = '{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":["emr-containers:*","iam:PassRole"],"Resource":"*"}}}}'

[[principal]]
arn = "arn:aws:iam::123456789012:user/sdk"
policies = ["everything"]
[[principal.access_key]]
id = "{KEY}"
secret = "{SECRET}"
"#
        ),
    )
    .unwrap();
    Server::start_with(
        &dir.join("data"),
        &["--identities", identities.to_str().unwrap()],
    )
}

fn client(server: &Server) -> emr::Client {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let config = emr::Config::builder()
        .behavior_version(emr::config::BehaviorVersion::latest())
        .endpoint_url(server.endpoint())
        .region(emr::config::Region::new(REGION))
        .credentials_provider(emr::config::Credentials::new(
            KEY, SECRET, None, None, "test",
        ))
        .http_client(http)
        .retry_config(emr::config::retry::RetryConfig::disabled())
        .build();
    emr::Client::from_conf(config)
}

fn driver() -> JobDriver {
    JobDriver::builder()
        .spark_submit_job_driver(
            emr::types::SparkSubmitJobDriver::builder()
                .entry_point("local:///opt/spark/examples/src/main/python/pi.py")
                .entry_point_arguments("10")
                .build()
                .unwrap(),
        )
        .build()
}

#[tokio::test]
async fn the_aws_sdk_for_rust_drives_the_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path());
    let c = client(&server);
    let namespace = unique("rust-sdk");

    let vc = c
        .create_virtual_cluster()
        .name("rust-sdk")
        .container_provider(
            ContainerProvider::builder()
                .id("local")
                .r#type(ContainerProviderType::Eks)
                .info(ContainerInfo::EksInfo(
                    EksInfo::builder().namespace(&namespace).build(),
                ))
                .build()
                .unwrap(),
        )
        .tags("team", "rust")
        .send()
        .await
        .unwrap();
    let vc_id = vc.id().unwrap().to_string();

    let mut runs = Vec::new();
    for i in 0..3 {
        let run = c
            .start_job_run()
            .virtual_cluster_id(&vc_id)
            .name(format!("pi-{i}"))
            .client_token(format!("token-{i}"))
            .execution_role_arn(ROLE)
            .release_label("emr-7.2.0-latest")
            .job_driver(driver())
            .send()
            .await
            .unwrap();
        runs.push(run.id().unwrap().to_string());
    }
    let described = c
        .describe_job_run()
        .virtual_cluster_id(&vc_id)
        .id(&runs[0])
        .send()
        .await
        .unwrap();
    let job = described.job_run().unwrap();
    assert_eq!(job.name(), Some("pi-0"));
    assert_eq!(job.job_driver(), Some(&driver()));
    assert_eq!(job.created_by(), Some("arn:aws:iam::123456789012:user/sdk"));
    let created = job.created_at().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (created.secs() - now).abs() < 120,
        "createdAt {created} is not now"
    );
    assert!(matches!(
        job.state(),
        Some(emr::types::JobRunState::Pending | emr::types::JobRunState::Submitted)
    ));

    // The SDK's paginator, two runs a page.
    let pages: Vec<_> = c
        .list_job_runs()
        .virtual_cluster_id(&vc_id)
        .max_results(2)
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await;
    assert_eq!(pages.len(), 2, "3 runs in pages of 2");
    let mut listed: Vec<String> = pages
        .into_iter()
        .flat_map(|p| p.unwrap().job_runs.unwrap_or_default())
        .map(|r| r.id.unwrap())
        .collect();
    listed.sort();
    let mut want = runs.clone();
    want.sort();
    assert_eq!(listed, want);
    let filtered = c
        .list_job_runs()
        .virtual_cluster_id(&vc_id)
        .states(emr::types::JobRunState::Completed)
        .send()
        .await
        .unwrap();
    assert!(filtered.job_runs().is_empty());

    let cancelled = c
        .cancel_job_run()
        .virtual_cluster_id(&vc_id)
        .id(&runs[2])
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.id(), Some(runs[2].as_str()));

    let arn = vc.arn().unwrap();
    c.tag_resource()
        .resource_arn(arn)
        .tags("stage", "test")
        .send()
        .await
        .unwrap();
    let tags = c
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap();
    let tags = tags.tags().unwrap();
    assert_eq!(tags.get("stage").map(String::as_str), Some("test"));
    assert_eq!(tags.get("team").map(String::as_str), Some("rust"));

    // Errors arrive as the SDK's modeled exceptions.
    let err = c
        .describe_job_run()
        .virtual_cluster_id(&vc_id)
        .id("0000000000000000000")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    assert!(
        emr::error::ProvideErrorMetadata::message(&err)
            .is_some_and(|m| m.contains("doesn't exist")),
        "{err:?}"
    );
    let err = c
        .start_job_run()
        .virtual_cluster_id(&vc_id)
        .name("x".repeat(300))
        .client_token("long")
        .execution_role_arn(ROLE)
        .release_label("emr-7.2.0-latest")
        .job_driver(driver())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_validation_exception(), "{err:?}");
}

fn e2e_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

fn run_checked(what: &str, command: &mut Command) -> Output {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs an SDK program against a fresh server and checks its summary.
fn run_sdk(program: &mut Command, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path());
    let out = run_checked(
        what,
        program
            .env("SPARKVC_ENDPOINT", server.endpoint())
            .env("SPARKVC_REGION", REGION)
            .env("SPARKVC_NAMESPACE", unique("sdk"))
            .env("AWS_ACCESS_KEY_ID", KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    let checks = summary["checks"].as_u64().unwrap();
    assert!(checks >= 50, "{what}: only {checks} checks ran");
    println!("{what}: {checks} checks passed ({summary})");
}

#[test]
fn the_aws_sdk_for_javascript_v3_drives_the_workflow() {
    let js = e2e_dir("js");
    if !js
        .join("node_modules/@aws-sdk/client-emr-containers")
        .exists()
    {
        eprintln!("installing the JavaScript SDK (npm ci, pinned by package-lock.json)");
        run_checked(
            "npm ci",
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--prefix"])
                .arg(&js),
        );
    }
    run_sdk(
        Command::new("node").arg(js.join("emr_containers.mjs")),
        "the JavaScript SDK",
    );
}

#[test]
fn the_aws_sdk_for_java_v2_drives_the_workflow() {
    let java = e2e_dir("java");
    let jar = java.join("target/sparkvc-e2e-java.jar");
    if !jar.exists() {
        eprintln!("building the Java SDK program (mvn package, pinned by pom.xml)");
        run_checked(
            "mvn package",
            Command::new("mvn")
                .args(["-q", "-B", "-f"])
                .arg(java.join("pom.xml"))
                .arg("package"),
        );
    }
    run_sdk(Command::new("java").arg("-jar").arg(&jar), "the Java SDK");
}
