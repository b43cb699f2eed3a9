//! Runs the real `sparkvc` binary against a small in-process fake of the
//! server, to check output, pagination, `--wait` and exit codes. The real
//! server is exercised by `tests/e2e`.

use sparkvc_proto::v1::*;
use sparkvc_proto::{ERROR_TYPE_METADATA, EmrContainers, EmrContainersServer};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};
use tonic::{Request, Response, Status};

/// A fake server with seven virtual clusters and two scripted job runs.
#[derive(Default)]
struct Fake {
    polls: Mutex<HashMap<String, usize>>,
}

fn aws_error(status: fn(String) -> Status, error_type: &str, message: &str) -> Status {
    let mut status = status(message.to_string());
    status
        .metadata_mut()
        .insert(ERROR_TYPE_METADATA, error_type.parse().unwrap());
    status
}

/// Calls the tests do not need. `#[async_trait]` does not look inside macro
/// output, so these are written in its desugared form.
macro_rules! unimplemented_calls {
    ($($method:ident($request:ty) -> $response:ty;)*) => {$(
        fn $method<'life0, 'async_trait>(
            &'life0 self,
            _: Request<$request>,
        ) -> Pin<Box<dyn Future<Output = Result<Response<$response>, Status>> + Send + 'async_trait>>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async { Err(Status::unimplemented(stringify!($method))) })
        }
    )*};
}

#[tonic::async_trait]
impl EmrContainers for Fake {
    async fn list_virtual_clusters(
        &self,
        request: Request<ListVirtualClustersRequest>,
    ) -> Result<Response<ListVirtualClustersResponse>, Status> {
        let request = request.into_inner();
        let page = request.max_results.unwrap_or(3) as usize;
        let start: usize = if request.next_token.is_empty() {
            0
        } else {
            request.next_token.parse().map_err(|_| {
                aws_error(
                    Status::invalid_argument,
                    "ValidationException",
                    "bad nextToken",
                )
            })?
        };
        let end = (start + page).min(7);
        Ok(Response::new(ListVirtualClustersResponse {
            virtual_clusters: (start..end)
                .map(|i| VirtualCluster {
                    id: format!("vc{i}"),
                    ..Default::default()
                })
                .collect(),
            next_token: if end < 7 {
                end.to_string()
            } else {
                String::new()
            },
        }))
    }

    async fn describe_virtual_cluster(
        &self,
        request: Request<DescribeVirtualClusterRequest>,
    ) -> Result<Response<DescribeVirtualClusterResponse>, Status> {
        Err(aws_error(
            Status::not_found,
            "ResourceNotFoundException",
            &format!("Virtual cluster {} doesn't exist.", request.into_inner().id),
        ))
    }

    async fn start_job_run(
        &self,
        request: Request<StartJobRunRequest>,
    ) -> Result<Response<StartJobRunResponse>, Status> {
        let request = request.into_inner();
        if request.release_label.is_empty() {
            return Err(aws_error(
                Status::invalid_argument,
                "ValidationException",
                "releaseLabel is required",
            ));
        }
        Ok(Response::new(StartJobRunResponse {
            id: format!("jr{}", request.name),
            name: request.name,
            arn: String::new(),
            virtual_cluster_id: request.virtual_cluster_id,
        }))
    }

    async fn describe_job_run(
        &self,
        request: Request<DescribeJobRunRequest>,
    ) -> Result<Response<DescribeJobRunResponse>, Status> {
        let request = request.into_inner();
        let mut polls = self.polls.lock().unwrap();
        let poll = polls.entry(request.id.clone()).or_default();
        *poll += 1;
        let script: &[&str] = if request.id == "jrok" {
            &["PENDING", "RUNNING", "RUNNING", "COMPLETED"]
        } else {
            &["SUBMITTED", "FAILED"]
        };
        let state = script[(*poll - 1).min(script.len() - 1)];
        let failed = state == "FAILED";
        Ok(Response::new(DescribeJobRunResponse {
            job_run: Some(JobRun {
                id: request.id,
                virtual_cluster_id: request.virtual_cluster_id,
                state: state.to_string(),
                failure_reason: if failed {
                    "USER_ERROR".into()
                } else {
                    String::new()
                },
                state_details: if failed {
                    "driver exited with code 1".into()
                } else {
                    String::new()
                },
                ..Default::default()
            }),
        }))
    }

    async fn tag_resource(
        &self,
        _: Request<TagResourceRequest>,
    ) -> Result<Response<TagResourceResponse>, Status> {
        Ok(Response::new(TagResourceResponse {}))
    }

    async fn list_tags_for_resource(
        &self,
        _: Request<ListTagsForResourceRequest>,
    ) -> Result<Response<ListTagsForResourceResponse>, Status> {
        Ok(Response::new(ListTagsForResourceResponse::default()))
    }

    unimplemented_calls! {
        create_virtual_cluster(CreateVirtualClusterRequest) -> CreateVirtualClusterResponse;
        update_virtual_cluster(UpdateVirtualClusterRequest) -> UpdateVirtualClusterResponse;
        delete_virtual_cluster(DeleteVirtualClusterRequest) -> DeleteVirtualClusterResponse;
        list_job_runs(ListJobRunsRequest) -> ListJobRunsResponse;
        cancel_job_run(CancelJobRunRequest) -> CancelJobRunResponse;
        get_job_run_logs(GetJobRunLogsRequest) -> GetJobRunLogsResponse;
        get_job_run_app_ui_url(GetJobRunAppUiUrlRequest) -> GetJobRunAppUiUrlResponse;
        create_job_template(CreateJobTemplateRequest) -> CreateJobTemplateResponse;
        describe_job_template(DescribeJobTemplateRequest) -> DescribeJobTemplateResponse;
        list_job_templates(ListJobTemplatesRequest) -> ListJobTemplatesResponse;
        delete_job_template(DeleteJobTemplateRequest) -> DeleteJobTemplateResponse;
        create_security_configuration(CreateSecurityConfigurationRequest) -> CreateSecurityConfigurationResponse;
        describe_security_configuration(DescribeSecurityConfigurationRequest) -> DescribeSecurityConfigurationResponse;
        list_security_configurations(ListSecurityConfigurationsRequest) -> ListSecurityConfigurationsResponse;
        delete_security_configuration(DeleteSecurityConfigurationRequest) -> DeleteSecurityConfigurationResponse;
        untag_resource(UntagResourceRequest) -> UntagResourceResponse;
    }
}

/// The URL of a fake server shared by all tests, started on first use.
fn server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                tonic::transport::Server::builder()
                    .add_service(EmrContainersServer::new(Fake::default()))
                    .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                    .await
                    .unwrap();
            });
        });
        url
    })
}

fn sparkvc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sparkvc"))
        .args(args)
        .env("SPARKVC_ENDPOINT_URL", server_url())
        .output()
        .unwrap()
}

fn stdout_json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn ids(value: &serde_json::Value) -> Vec<String> {
    value["virtualClusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|vc| vc["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn lists_follow_next_tokens() {
    let out = sparkvc(&["list-virtual-clusters"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json = stdout_json(&out);
    assert_eq!(
        ids(&json),
        ["vc0", "vc1", "vc2", "vc3", "vc4", "vc5", "vc6"]
    );
    assert!(json.get("NextToken").is_none());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("{\n  \"virtualClusters\": [\n"));
}

#[test]
fn max_items_and_starting_token_walk_the_list() {
    let first = stdout_json(&sparkvc(&["list-virtual-clusters", "--max-items", "4"]));
    assert_eq!(ids(&first), ["vc0", "vc1", "vc2", "vc3"]);
    let token = first["NextToken"].as_str().unwrap();
    let rest = stdout_json(&sparkvc(&[
        "list-virtual-clusters",
        "--starting-token",
        token,
        "--page-size",
        "2",
    ]));
    assert_eq!(ids(&rest), ["vc4", "vc5", "vc6"]);
}

#[test]
fn no_paginate_prints_one_raw_page() {
    let json = stdout_json(&sparkvc(&[
        "list-virtual-clusters",
        "--no-paginate",
        "--max-results",
        "2",
    ]));
    assert_eq!(ids(&json), ["vc0", "vc1"]);
    assert_eq!(json["nextToken"], "2");
}

#[test]
fn service_errors_exit_254_with_the_aws_line() {
    let out = sparkvc(&["describe-virtual-cluster", "--id", "nope"]);
    assert_eq!(out.status.code(), Some(254));
    assert_eq!(
        stderr(&out),
        "An error occurred (ResourceNotFoundException) when calling the \
         DescribeVirtualCluster operation: Virtual cluster nope doesn't exist.\n"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn wait_reports_each_state_and_prints_the_final_run() {
    let out = sparkvc(&[
        "start-job-run",
        "--virtual-cluster-id",
        "vc0",
        "--name",
        "ok",
        "--release-label",
        "emr-7.0.0",
        "--wait",
        "--poll-interval",
        "0.05",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["jobRun"]["state"], "COMPLETED");
    let states: Vec<String> = stderr(&out)
        .lines()
        .filter_map(|line| line.strip_prefix("job run jrok: "))
        .map(|rest| rest.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(states, ["PENDING", "RUNNING", "COMPLETED"]);
}

#[test]
fn wait_fails_with_the_reason_when_the_run_fails() {
    let out = sparkvc(&[
        "start-job-run",
        "--virtual-cluster-id",
        "vc0",
        "--name",
        "bad",
        "--release-label",
        "emr-7.0.0",
        "--wait",
        "--poll-interval",
        "0.05",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout_json(&out)["jobRun"]["state"], "FAILED");
    assert!(
        stderr(&out).ends_with(
            "Job run jrbad ended in state FAILED (failureReason: USER_ERROR): \
             driver exited with code 1\n"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn start_job_run_sends_flags_and_prints_the_response() {
    let out = sparkvc(&[
        "start-job-run",
        "--virtual-cluster-id",
        "vc0",
        "--name",
        "plain",
        "--release-label",
        "emr-7.0.0",
        "--tags",
        "team=data",
        "owner=me",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout_json(&out),
        serde_json::json!({"id": "jrplain", "name": "plain", "virtualClusterId": "vc0"})
    );
    let out = sparkvc(&["start-job-run", "--virtual-cluster-id", "vc0"]);
    assert_eq!(out.status.code(), Some(254));
    assert!(stderr(&out).starts_with(
        "An error occurred (ValidationException) when calling the StartJobRun operation: "
    ));
}

#[test]
fn empty_responses_print_nothing_and_tags_print_an_empty_map() {
    let arn = "arn:aws:emr-containers:us-east-1:123456789012:/virtualclusters/vc0";
    let out = sparkvc(&["tag-resource", "--resource-arn", arn, "--tags", "a=1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let out = sparkvc(&["list-tags-for-resource", "--resource-arn", arn]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\n  \"tags\": {}\n}\n"
    );
}

#[test]
fn a_stopped_server_exits_255() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_sparkvc"))
        .args([
            "list-job-templates",
            "--endpoint-url",
            &format!("http://127.0.0.1:{port}"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).starts_with("Could not connect to the endpoint URL: "));
}

#[test]
fn parse_errors_exit_252_before_any_call() {
    let out = sparkvc(&[
        "start-job-run",
        "--virtual-cluster-id",
        "vc0",
        "--job-driver",
        r#"{"sparkSubmitJobDrivr": {}}"#,
    ]);
    assert_eq!(out.status.code(), Some(252));
    assert!(stderr(&out).starts_with(
        "Error parsing parameter '--job-driver': unknown field `sparkSubmitJobDrivr`"
    ));
    let out = sparkvc(&["list-job-runs", "--bogus"]);
    assert_eq!(out.status.code(), Some(252));
}

/// A URL where nothing listens: a command that tried to call would fail 255.
fn dead_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

#[test]
fn generate_cli_skeleton_prints_the_request_calls_nothing_and_reads_back() {
    let out = Command::new(env!("CARGO_BIN_EXE_sparkvc"))
        .args(["start-job-run", "--generate-cli-skeleton"])
        .env("SPARKVC_ENDPOINT_URL", dead_url())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    // The aws CLI's layout: 4-space indent, members in the model's order.
    assert!(
        text.starts_with("{\n    \"name\": \"\",\n    \"virtualClusterId\": \"\",\n"),
        "{text}"
    );
    let mut skeleton = stdout_json(&out);
    assert_eq!(skeleton["tags"], serde_json::json!({"KeyName": ""}));

    // Filled in, it is a request the CLI sends.
    skeleton["name"] = "fromskeleton".into();
    skeleton["virtualClusterId"] = "vc0".into();
    skeleton["releaseLabel"] = "emr-7.0.0".into();
    let dir = tempfile_dir();
    let path = dir.join("skeleton.json");
    std::fs::write(&path, skeleton.to_string()).unwrap();
    let out = sparkvc(&[
        "start-job-run",
        "--cli-input-json",
        &format!("file://{}", path.display()),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["id"], "jrfromskeleton");

    let out = Command::new(env!("CARGO_BIN_EXE_sparkvc"))
        .args(["describe-job-run", "--generate-cli-skeleton", "output"])
        .env("SPARKVC_ENDPOINT_URL", dead_url())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let output = stdout_json(&out);
    assert_eq!(output["jobRun"]["createdAt"], "1970-01-01T00:00:00");
    assert_eq!(output["jobRun"]["state"], "");

    let out = sparkvc(&["list-job-runs", "--generate-cli-skeleton", "sideways"]);
    assert_eq!(out.status.code(), Some(252));
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sparkvc-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn debug_logs_the_call_and_its_answer_but_no_secret() {
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let out = Command::new(env!("CARGO_BIN_EXE_sparkvc"))
        .args([
            "--debug",
            "start-job-run",
            "--virtual-cluster-id",
            "vc0",
            "--name",
            "debugged",
            "--release-label",
            "emr-7.0.0",
            "--job-driver",
            r#"{"sparkSubmitJobDriver": {"entryPoint": "s3://b/app.py", "entryPointArguments": ["--password", "hunter2"]}}"#,
        ])
        .env("SPARKVC_ENDPOINT_URL", server_url())
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLEDEBUG0001")
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_SESSION_TOKEN", "session-token-that-must-not-show")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout_json(&out)["id"],
        "jrdebugged",
        "stdout stays the answer"
    );
    let log = stderr(&out);
    for expected in [
        "operation=\"StartJobRun\"",
        "found credentials",
        "AKIDEXAMPLEDEBUG0001",
        "making request",
        "debugged",
        "/sparkvc.v1.EmrContainers/StartJobRun",
        "sending, signed with SigV4",
        "response",
        "status=200",
    ] {
        assert!(log.contains(expected), "{expected:?} not in:\n{log}");
    }
    for secret_part in [
        secret,
        "session-token-that-must-not-show",
        "hunter2",
        "app.py",
        "Signature=",
    ] {
        assert!(!log.contains(secret_part), "{secret_part:?} leaked:\n{log}");
    }

    // An error's outcome is in the log too; without --debug nothing is.
    let out = Command::new(env!("CARGO_BIN_EXE_sparkvc"))
        .args(["--debug", "describe-virtual-cluster", "--id", "nope"])
        .env("SPARKVC_ENDPOINT_URL", server_url())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254));
    let log = stderr(&out);
    assert!(
        log.contains("x-amzn-errortype=ResourceNotFoundException"),
        "{log}"
    );
    let out = sparkvc(&["describe-virtual-cluster", "--id", "nope"]);
    assert!(!stderr(&out).contains("DEBUG"), "{}", stderr(&out));
}
