//! Job runs executed on the real local cluster (deploy/local): the server
//! creates the job-runner objects, and state follows the pods' real status
//! through a watch.
//!
//! kwok simulates nodes, so no container runs: the job-runner pod does not
//! really run spark-submit. Where spark-submit would create the driver pod,
//! the test creates it, with the name, labels and owner spark-submit would
//! give it from sparkvc's configuration; kwok then moves it through Running to
//! Succeeded or Failed as its annotations ask (see deploy/local/README.md).
//! The real spark-submit is exercised in tests/cluster/tests/spark_submit.rs,
//! and end to end (server → job-runner pod → spark-submit → driver) in
//! [`the_real_spark_submit_runs_the_job_runner_pod`], where `local-job-runner`
//! runs the job-runner pod's spark-submit on this machine.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::Role;
use kube::api::{Api, PostParams};
use serde_json::json;
use sparkvc_cluster_tests::{LocalEnv, kwok};
use sparkvc_e2e::*;
use sparkvc_proto::v1 as pb;
use std::collections::BTreeMap;
use std::time::Duration;

type Setup = ClusterSetup;

async fn setup(test: &str) -> Setup {
    ClusterSetup::start(test, &[]).await
}

async fn setup_with(test: &str, extra_args: &[&str]) -> Setup {
    ClusterSetup::start(test, extra_args).await
}

/// Starts a plain job run and waits until its job-runner exists.
async fn start_submitted(s: &mut Setup) -> pb::StartJobRunResponse {
    let run = s
        .client
        .start_job_run(start_request(&s.vc))
        .await
        .unwrap()
        .into_inner();
    wait_for_state(&mut s.client, &s.vc, &run.id, "SUBMITTED").await;
    run
}

/// What spark-submit would create: the driver pod, owned by the job-runner.
async fn create_driver(s: &Setup, run_id: &str, annotations: &[(&str, &str)]) {
    create_attempt_driver(s, run_id, 1, annotations).await;
}

/// The driver of one attempt of a run: `spark-<attempt name>-driver`, owned by
/// that attempt's job-runner pod (`<jobRunId>`, then `<jobRunId>-<n>`).
async fn create_attempt_driver(
    s: &Setup,
    run_id: &str,
    attempt: u32,
    annotations: &[(&str, &str)],
) {
    let name = if attempt == 1 {
        run_id.to_string()
    } else {
        format!("{run_id}-{attempt}")
    };
    let runner: Pod = Api::namespaced(s.kube.clone(), &s.ns.name)
        .get(&name)
        .await
        .expect("the job-runner pod");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {
            "name": format!("spark-{name}-driver"),
            "labels": {
                "app.kubernetes.io/managed-by": "sparkvc",
                "sparkvc.io/job-run-id": run_id,
                "sparkvc.io/virtual-cluster-id": s.vc,
                "sparkvc.io/component": "driver",
                "sparkvc.io/attempt": attempt.to_string(),
                "spark-role": "driver"
            },
            "annotations": annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
            "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": name, "uid": runner.metadata.uid}]
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "spark-kubernetes-driver", "image": "docker.io/apache/spark:3.5.5-scala2.12-java17-python3-ubuntu"}]
        }
    }))
    .unwrap();
    Api::<Pod>::namespaced(s.kube.clone(), &s.ns.name)
        .create(&PostParams::default(), &pod)
        .await
        .expect("create the driver pod");
}

#[tokio::test]
async fn a_job_run_goes_pending_submitted_running_completed() {
    let mut s = setup("exec-ok").await;
    let ns = s.ns.name.clone();
    // The executor set up the virtual cluster's namespace.
    wait_for_object::<Role>(&s.kube, &ns, "sparkvc-spark").await;
    wait_for_object::<NetworkPolicy>(&s.kube, &ns, "sparkvc-same-namespace-only").await;

    let run = s
        .client
        .start_job_run(start_request(&s.vc))
        .await
        .unwrap()
        .into_inner();
    let submitted = wait_for_state(&mut s.client, &s.vc, &run.id, "SUBMITTED").await;
    assert!(
        submitted.state_details.contains(&run.id),
        "{}",
        submitted.state_details
    );

    let runner: Pod = Api::namespaced(s.kube.clone(), &ns)
        .get(&run.id)
        .await
        .expect("job-runner pod named after the run");
    assert_eq!(runner.metadata.owner_references, None);
    let labels = runner.metadata.labels.clone().unwrap();
    assert_eq!(
        labels.get("emr-containers.amazonaws.com/job.id"),
        Some(&run.id)
    );
    assert_eq!(labels.get("sparkvc.io/virtual-cluster-id"), Some(&s.vc));
    assert_eq!(
        labels.get("sparkvc.io/component").map(String::as_str),
        Some("job-runner")
    );
    let pod_spec = runner.spec.unwrap();
    assert_eq!(pod_spec.restart_policy.as_deref(), Some("Never"));
    let args = pod_spec.containers[0]
        .args
        .clone()
        .unwrap_or_default()
        .join(" ");
    assert!(args.contains("--deploy-mode cluster"), "{args}");
    assert!(
        args.contains("k8s://https://kubernetes.default.svc:443"),
        "{args}"
    );
    let client_sa = pod_spec.service_account_name.unwrap();
    assert!(
        client_sa.starts_with("emr-containers-sa-spark-client-123456789012-"),
        "{client_sa}"
    );
    let sa: ServiceAccount = Api::namespaced(s.kube.clone(), &ns)
        .get(&client_sa)
        .await
        .unwrap();
    assert_eq!(
        sa.metadata
            .annotations
            .unwrap()
            .get("eks.amazonaws.com/role-arn")
            .map(String::as_str),
        Some(ROLE_ARN)
    );
    let config: ConfigMap = Api::namespaced(s.kube.clone(), &ns)
        .get(&format!("spark-{}-conf", run.id))
        .await
        .unwrap();
    let owner = &config.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Pod", run.id.as_str()),
        "the job-runner pod owns the run's objects"
    );

    create_driver(&s, &run.id, &[(kwok::RUN_SECONDS, "2")]).await;
    wait_for_state(&mut s.client, &s.vc, &run.id, "RUNNING").await;
    let done = wait_for_state(&mut s.client, &s.vc, &run.id, "COMPLETED").await;
    assert!(done.finished_at.is_some());
    let history: Vec<_> = done
        .state_history
        .iter()
        .map(|t| t.state.as_str())
        .collect();
    assert_eq!(history, ["PENDING", "SUBMITTED", "RUNNING", "COMPLETED"]);

    // Deleting the virtual cluster removes what sparkvc made and keeps the
    // namespace: TERMINATING at once, TERMINATED once the executor is done.
    s.client
        .delete_virtual_cluster(pb::DeleteVirtualClusterRequest { id: s.vc.clone() })
        .await
        .unwrap();
    wait_for_vc_state(&mut s.client, &s.vc, "TERMINATED").await;
    assert!(
        Api::<Role>::namespaced(s.kube.clone(), &ns)
            .get_opt("sparkvc-spark")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Api::<NetworkPolicy>::namespaced(s.kube.clone(), &ns)
            .get_opt("sparkvc-same-namespace-only")
            .await
            .unwrap()
            .is_none()
    );
    s.ns.delete().await.unwrap();
}

/// DeleteVirtualCluster while the executor is still creating the runs'
/// job-runners: it answers at once, every run ends CANCELLED, and not one
/// pod of the virtual cluster is left behind.
#[tokio::test]
async fn deleting_a_virtual_cluster_while_its_runs_start_leaves_no_pods() {
    let mut s = setup("exec-delete-race").await;
    // Enough runs that the deletion overlaps the executor's submissions;
    // their job-runners stay Running until deleted, so every run can only
    // end by being cancelled.
    let starts = (0..300).map(|_| {
        let mut client = s.client.clone();
        let mut req = start_request(&s.vc);
        req.configuration_overrides = Some(
            serde_json::from_value(json!({"applicationConfiguration": [{
                "classification": "emr-job-submitter",
                "properties": {format!("jobsubmitter.annotation.{}", kwok::STAY_RUNNING): "true"}
            }]}))
            .unwrap(),
        );
        async move { client.start_job_run(req).await.unwrap().into_inner().id }
    });
    let ids: Vec<String> = futures::stream::iter(starts)
        .buffer_unordered(32)
        .collect()
        .await;
    s.client
        .delete_virtual_cluster(pb::DeleteVirtualClusterRequest { id: s.vc.clone() })
        .await
        .unwrap();
    wait_for_vc_state(&mut s.client, &s.vc, "TERMINATED").await;
    for id in &ids {
        let run = describe_run(&mut s.client, &s.vc, id).await;
        assert_eq!(run.state, "CANCELLED", "run {id}: {}", run.state_details);
        assert!(
            run.state_details.contains("was deleted"),
            "{}",
            run.state_details
        );
    }
    let selector = format!("sparkvc.io/virtual-cluster-id={}", s.vc);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = live_pod_names(&s.kube, &s.ns.name, &selector).await;
        if left.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pods left after the virtual cluster was TERMINATED: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    s.ns.delete().await.unwrap();
}

/// Terraform's replace: delete a virtual cluster, then create another on
/// the same namespace at once. Deleting the first removed its service
/// accounts; the second's runs must get them again, not fail because the
/// executor still remembers them.
#[tokio::test]
async fn a_new_virtual_cluster_on_a_namespace_gets_its_own_service_accounts() {
    let mut s = setup("exec-replace").await;
    let first = start_submitted(&mut s).await;
    s.client
        .delete_virtual_cluster(pb::DeleteVirtualClusterRequest { id: s.vc.clone() })
        .await
        .unwrap();
    wait_for_vc_state(&mut s.client, &s.vc, "TERMINATED").await;
    let cancelled = describe_run(&mut s.client, &s.vc, &first.id).await;
    assert_eq!(cancelled.state, "CANCELLED");

    let second = virtual_cluster_on(&mut s.client, &s.ns.name).await;
    let run = s
        .client
        .start_job_run(start_request(&second))
        .await
        .unwrap()
        .into_inner();
    let run = wait_until(
        &mut s.client,
        &second,
        &run.id,
        "SUBMITTED or FAILED",
        Duration::from_secs(60),
        |r| matches!(r.state.as_str(), "SUBMITTED" | "FAILED"),
    )
    .await;
    assert_eq!(run.state, "SUBMITTED", "{}", run.state_details);
    let accounts: Api<ServiceAccount> = Api::namespaced(s.kube.clone(), &s.ns.name);
    let names: Vec<String> = accounts
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|sa| sa.metadata.name)
        .filter(|n| n.starts_with("emr-containers-sa-spark-"))
        .collect();
    assert_eq!(
        names.len(),
        3,
        "client, driver and executor accounts: {names:?}"
    );
    s.ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_failing_driver_fails_the_run_with_its_exit_code() {
    let mut s = setup("exec-oom").await;
    let run = start_submitted(&mut s).await;
    create_driver(
        &s,
        &run.id,
        &[
            (kwok::RUN_SECONDS, "1"),
            (kwok::EXIT_CODE, "137"),
            (kwok::REASON, "OOMKilled"),
        ],
    )
    .await;
    let failed = wait_for_state(&mut s.client, &s.vc, &run.id, "FAILED").await;
    assert_eq!(failed.failure_reason, "USER_ERROR");
    assert!(
        failed
            .state_details
            .contains("exited with code 137 (OOMKilled)"),
        "{}",
        failed.state_details
    );
    assert!(failed.finished_at.is_some());
    s.ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_job_runner_that_fails_before_the_driver_fails_the_run() {
    let mut s = setup("exec-runner").await;
    let mut req = start_request(&s.vc);
    // The job-runner's pod gets these annotations (EMR's emr-job-submitter
    // classification), which tell kwok to fail it as spark-submit would.
    req.configuration_overrides = Some(pb::ConfigurationOverrides {
        application_configuration: vec![pb::Configuration {
            classification: "emr-job-submitter".into(),
            properties: BTreeMap::from([
                (
                    format!("jobsubmitter.annotation.{}", kwok::EXIT_CODE),
                    "1".into(),
                ),
                (
                    format!("jobsubmitter.annotation.{}", kwok::RUN_SECONDS),
                    "1".into(),
                ),
                (
                    format!("jobsubmitter.annotation.{}", kwok::MESSAGE),
                    "Forbidden: cannot create pods".into(),
                ),
            ]),
            configurations: vec![],
        }],
        monitoring_configuration: None,
    });
    let run = s.client.start_job_run(req).await.unwrap().into_inner();
    let failed = wait_for_state(&mut s.client, &s.vc, &run.id, "FAILED").await;
    assert_eq!(failed.failure_reason, "USER_ERROR");
    assert!(
        failed
            .state_details
            .starts_with("spark-submit failed before a Spark driver existed"),
        "{}",
        failed.state_details
    );
    assert!(
        failed.state_details.contains("code 1"),
        "{}",
        failed.state_details
    );
    s.ns.delete().await.unwrap();
}

#[tokio::test]
async fn bad_spark_parameters_fail_the_run_as_a_user_error() {
    let mut s = setup("exec-bad").await;
    let mut req = start_request(&s.vc);
    req.job_driver
        .as_mut()
        .unwrap()
        .spark_submit_job_driver
        .as_mut()
        .unwrap()
        .spark_submit_parameters = "--conf spark.kubernetes.namespace=other".into();
    let run = s.client.start_job_run(req).await.unwrap().into_inner();
    let failed = wait_for_state(&mut s.client, &s.vc, &run.id, "FAILED").await;
    assert_eq!(failed.failure_reason, "USER_ERROR");
    assert!(
        failed.state_details.contains("spark.kubernetes.namespace"),
        "{}",
        failed.state_details
    );
    assert!(
        Api::<Pod>::namespaced(s.kube.clone(), &s.ns.name)
            .get_opt(&run.id)
            .await
            .unwrap()
            .is_none(),
        "nothing was created"
    );
    s.ns.delete().await.unwrap();
}

#[tokio::test]
async fn cancelling_a_running_job_deletes_its_pods() {
    let mut s = setup("exec-cancel").await;
    let run = start_submitted(&mut s).await;
    create_driver(&s, &run.id, &[(kwok::STAY_RUNNING, "true")]).await;
    wait_for_state(&mut s.client, &s.vc, &run.id, "RUNNING").await;
    s.client
        .cancel_job_run(pb::CancelJobRunRequest {
            id: run.id.clone(),
            virtual_cluster_id: s.vc.clone(),
        })
        .await
        .unwrap();
    let cancelled = wait_for_state(&mut s.client, &s.vc, &run.id, "CANCELLED").await;
    let history: Vec<_> = cancelled
        .state_history
        .iter()
        .map(|t| t.state.as_str())
        .collect();
    assert_eq!(
        history,
        [
            "PENDING",
            "SUBMITTED",
            "RUNNING",
            "CANCEL_PENDING",
            "CANCELLED"
        ]
    );
    let pods: Api<Pod> = Api::namespaced(s.kube.clone(), &s.ns.name);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for name in [format!("spark-{}-driver", run.id), run.id.clone()] {
        while pods.get_opt(&name).await.unwrap().is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "pod {name} was not deleted"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    s.ns.delete().await.unwrap();
}

#[tokio::test]
async fn pod_templates_are_read_from_s3() {
    let mut s = setup("exec-s3").await;
    let s3 = LocalEnv::load().unwrap().s3_client().await;
    let bucket = unique("templates").replace('_', "-");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    let template = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - name: log-shipper\n      image: fluent/fluentd:v1.17\n";
    s3.put_object()
        .bucket(&bucket)
        .key("templates/driver.yaml")
        .body(template.as_bytes().to_vec().into())
        .send()
        .await
        .expect("put template");

    let with_template = |key: &str| {
        let mut req = start_request(&s.vc);
        req.job_driver
            .as_mut()
            .unwrap()
            .spark_submit_job_driver
            .as_mut()
            .unwrap()
            .spark_submit_parameters =
            format!("--conf spark.kubernetes.driver.podTemplateFile=s3://{bucket}/{key}");
        req
    };
    let run = s
        .client
        .start_job_run(with_template("templates/driver.yaml"))
        .await
        .unwrap()
        .into_inner();
    wait_for_state(&mut s.client, &s.vc, &run.id, "SUBMITTED").await;
    let config: ConfigMap = Api::namespaced(s.kube.clone(), &s.ns.name)
        .get(&format!("spark-{}-conf", run.id))
        .await
        .unwrap();
    let data = config.data.unwrap_or_default();
    assert!(
        data.values()
            .any(|v| v.contains("log-shipper") && v.contains("spark-kubernetes-driver")),
        "the merged driver template keeps the S3 template's sidecar: {:?}",
        data.keys()
    );

    let missing = s
        .client
        .start_job_run(with_template("templates/nope.yaml"))
        .await
        .unwrap()
        .into_inner();
    let failed = wait_for_state(&mut s.client, &s.vc, &missing.id, "FAILED").await;
    assert_eq!(failed.failure_reason, "USER_ERROR");
    assert!(
        failed
            .state_details
            .contains(&format!("s3://{bucket}/templates/nope.yaml cannot be read")),
        "{}",
        failed.state_details
    );
    s.ns.delete().await.unwrap();
}

/// The server reads no local file a caller names as a pod template (it
/// would read it with its own rights: the store, its keys, /etc/shadow),
/// and the refusal is the same whether or not the file exists.
#[tokio::test]
async fn local_pod_templates_are_refused_without_revealing_the_servers_files() {
    let mut s = setup("exec-local-tpl").await;
    let mut details = Vec::new();
    for path in ["/etc/shadow", "/root/.bashrc", "/no/such/template.yaml"] {
        let mut req = start_request(&s.vc);
        req.job_driver
            .as_mut()
            .unwrap()
            .spark_submit_job_driver
            .as_mut()
            .unwrap()
            .spark_submit_parameters =
            format!("--conf spark.kubernetes.driver.podTemplateFile={path}");
        let run = s.client.start_job_run(req).await.unwrap().into_inner();
        let failed = wait_for_state(&mut s.client, &s.vc, &run.id, "FAILED").await;
        assert_eq!(failed.failure_reason, "USER_ERROR", "{path}");
        details.push(failed.state_details.replace(path, "<path>"));
    }
    assert!(
        details.iter().all(|d| d == &details[0]),
        "the answers differ: {details:?}"
    );
    assert!(details[0].contains("from S3 only"), "{}", details[0]);
    s.ns.delete().await.unwrap();
}

/// A run that ships logs: before it starts, its execution role (assumed
/// through STS on the local AWS stand-in) writes the run's job-metadata to
/// the S3 log location and to a CloudWatch stream, and its pods get the
/// fluentd sidecar. A log bucket that does not exist fails the run at once
/// as USER_ERROR naming the destination and the action.
#[tokio::test]
async fn log_destinations_are_checked_and_sidecars_added() {
    let mut s = setup("exec-logs").await;
    let env = LocalEnv::load().unwrap();
    let aws = env.aws_config().await;
    let s3 = env.s3_client().await;
    let bucket = unique("logs").replace('_', "-");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    let group = format!("/sparkvc/{}", unique("logs"));
    let with_logs = |log_uri: &str| {
        let mut req = start_request(&s.vc);
        req.configuration_overrides = Some(
            serde_json::from_value(json!({"monitoringConfiguration": {
                "s3MonitoringConfiguration": {"logUri": log_uri},
                "cloudWatchMonitoringConfiguration": {"logGroupName": group, "logStreamNamePrefix": "pi"}
            }}))
            .unwrap(),
        );
        req
    };
    let run = s
        .client
        .start_job_run(with_logs(&format!("s3://{bucket}/team-a/")))
        .await
        .unwrap()
        .into_inner();
    wait_for_state(&mut s.client, &s.vc, &run.id, "SUBMITTED").await;

    let key = format!("team-a/{}/jobs/{}/job-metadata.log", s.vc, run.id);
    let object = s3.get_object().bucket(&bucket).key(&key).send().await;
    let body = object
        .expect("the job-metadata object")
        .body
        .collect()
        .await
        .unwrap();
    let metadata: serde_json::Value = serde_json::from_slice(&body.into_bytes()).unwrap();
    assert_eq!(metadata["jobRunId"], run.id.as_str());
    let logs = aws_sdk_cloudwatchlogs::Client::new(&aws);
    let stream = format!("pi/{}/jobs/{}/job-metadata", s.vc, run.id);
    let events = logs
        .get_log_events()
        .log_group_name(&group)
        .log_stream_name(&stream)
        .send()
        .await
        .expect("the job-metadata stream in the group sparkvc created");
    assert_eq!(events.events().len(), 1);

    let runner: Pod = Api::namespaced(s.kube.clone(), &s.ns.name)
        .get(&run.id)
        .await
        .unwrap();
    let pod = runner.spec.unwrap();
    let sidecar = &pod.init_containers.unwrap_or_default()[0];
    assert_eq!(
        (sidecar.name.as_str(), sidecar.restart_policy.as_deref()),
        ("sparkvc-fluentd", Some("Always"))
    );
    assert_eq!(
        pod.containers[0].command.as_deref(),
        Some(&["/bin/bash".to_string()][..])
    );

    // Read back what the sidecars ship. kwok runs no containers, so the test
    // writes what fluentd would, where the rendered configuration puts it.
    let driver_dir = format!(
        "team-a/{}/jobs/{}/containers/spark-app-1/spark-{}-driver",
        s.vc, run.id, run.id
    );
    for (part, text) in [
        ("stdout-0.gz", "line 1\nline 2\n"),
        ("stdout-1.gz", "line 3\n"),
    ] {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text.as_bytes()).unwrap();
        s3.put_object()
            .bucket(&bucket)
            .key(format!("{driver_dir}/{part}"))
            .body(gz.finish().unwrap().into())
            .send()
            .await
            .unwrap();
    }
    let driver_stream = format!(
        "pi/{}/jobs/{}/containers/spark-app-1/spark-{}-driver/stdout",
        s.vc, run.id, run.id
    );
    logs.create_log_stream()
        .log_group_name(&group)
        .log_stream_name(&driver_stream)
        .send()
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for (i, message) in ["cw line 1", "cw line 2"].into_iter().enumerate() {
        logs.put_log_events()
            .log_group_name(&group)
            .log_stream_name(&driver_stream)
            .log_events(
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(now + i as i64)
                    .message(message)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
    let read = |source: &str, next_token: &str| pb::GetJobRunLogsRequest {
        virtual_cluster_id: s.vc.clone(),
        id: run.id.clone(),
        source: source.into(),
        next_token: next_token.into(),
        ..Default::default()
    };
    let from_s3 = s
        .client
        .get_job_run_logs(read("S3", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(from_s3.lines, ["line 1", "line 2", "line 3"]);
    assert_eq!(
        from_s3.location,
        format!("s3://{bucket}/team-a/{}/jobs/{}/containers/", s.vc, run.id)
    );
    let again = s
        .client
        .get_job_run_logs(read("S3", &from_s3.next_token))
        .await
        .unwrap()
        .into_inner();
    assert!(again.lines.is_empty(), "{:?}", again.lines);
    // CloudWatch is the default when the run ships there.
    let from_cw = s
        .client
        .get_job_run_logs(read("", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(from_cw.lines, ["cw line 1", "cw line 2"]);
    // The CLI prints the lines, like `aws logs tail`.
    let out = sparkvc(
        &s.server.endpoint(),
        &[
            "get-job-run-logs",
            "--virtual-cluster-id",
            &s.vc,
            "--id",
            &run.id,
            "--source",
            "S3",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "line 1\nline 2\nline 3\n"
    );
    let mut bad = read("S3", "");
    bad.container = "EXECUTOR".into();
    let err = s.client.get_job_run_logs(bad).await.unwrap_err();
    assert!(err.message().contains("'container'"), "{}", err.message());

    let missing_bucket = unique("nobucket").replace('_', "-");
    let bad = s
        .client
        .start_job_run(with_logs(&format!("s3://{missing_bucket}")))
        .await
        .unwrap()
        .into_inner();
    let failed = wait_for_state(&mut s.client, &s.vc, &bad.id, "FAILED").await;
    assert_eq!(failed.failure_reason, "USER_ERROR");
    assert!(
        failed.state_details.starts_with(&format!(
            "The execution role cannot write the job's logs: s3:PutObject on s3://{missing_bucket}/{}/jobs/{}/job-metadata.log failed: NoSuchBucket",
            s.vc, bad.id
        )),
        "{}",
        failed.state_details
    );
    // Nothing was created for it.
    let pods: Api<Pod> = Api::namespaced(s.kube.clone(), &s.ns.name);
    assert!(pods.get_opt(&bad.id).await.unwrap().is_none());
    s.ns.delete().await.unwrap();
}

/// The whole chain with nothing played by the test: the server creates the
/// job-runner, `local-job-runner` runs its spark-submit (the real Apache
/// Spark, as the pod's service account), Spark creates the driver, kwok runs
/// it, and the server follows the pods to COMPLETED. A second run, whose
/// arguments spark-submit rejects, fails with Spark's own reason.
#[tokio::test]
async fn the_real_spark_submit_runs_the_job_runner_pod() {
    let mut s = setup("exec-spark").await;
    let work = tempfile::tempdir().unwrap();
    let runner = ChildGuard(
        std::process::Command::new(local_job_runner_binary())
            .args(["--namespace", &s.ns.name, "--work-dir"])
            .arg(work.path())
            .stderr(std::fs::File::create(work.path().join("runner.log")).unwrap())
            .spawn()
            .expect("start local-job-runner"),
    );
    // JVM start-up on a machine busy with the other tests: be generous.
    let within = Duration::from_secs(240);
    let runner_log = || std::fs::read_to_string(work.path().join("runner.log")).unwrap_or_default();
    // Until it watches, kwok would finish the job-runner pods by itself.
    let log = work.path().join("runner.log");
    wait_for_line(&log, &["watching job-runner pods"]).await;

    // The job-runner pods are created with kwok's stay-running annotation,
    // so kwok cannot finish them before local-job-runner takes them over
    // (it annotates pods it sees too, but on a busy machine it may be late).
    let on_local_runner: pb::ConfigurationOverrides = serde_json::from_value(json!({
        "applicationConfiguration": [{
            "classification": "emr-job-submitter",
            "properties": {
                format!("jobsubmitter.annotation.{}", kwok::STAY_RUNNING): "true"
            }
        }]
    }))
    .unwrap();
    let mut ok = start_request(&s.vc);
    ok.name = "spark-pi".into();
    ok.configuration_overrides = Some(on_local_runner.clone());
    let ok = s.client.start_job_run(ok).await.unwrap().into_inner();
    let mut bad = start_request(&s.vc);
    bad.name = "bad-memory".into();
    bad.configuration_overrides = Some(on_local_runner);
    bad.job_driver
        .as_mut()
        .and_then(|j| j.spark_submit_job_driver.as_mut())
        .expect("a sparkSubmitJobDriver")
        .spark_submit_parameters = "--driver-memory 0".into();
    let bad = s.client.start_job_run(bad).await.unwrap().into_inner();

    let done = wait_for_state_within(&mut s.client, &s.vc, &ok.id, "COMPLETED", within).await;
    let states: Vec<&str> = done
        .state_history
        .iter()
        .map(|t| t.state.as_str())
        .collect();
    assert_eq!(
        states,
        ["PENDING", "SUBMITTED", "RUNNING", "COMPLETED"],
        "runner log:\n{}",
        runner_log()
    );
    // The driver was made by Spark (its own labels), from sparkvc's settings.
    let driver: Pod = Api::namespaced(s.kube.clone(), &s.ns.name)
        .get(&format!("spark-{}-driver", ok.id))
        .await
        .expect("the driver pod spark-submit created");
    let labels = driver.metadata.labels.unwrap_or_default();
    assert!(labels.contains_key("spark-app-selector"), "{labels:?}");
    assert_eq!(labels.get("sparkvc.io/job-run-id"), Some(&ok.id));
    // spark-submit saw its driver finish (waitAppCompletion) and exited 0.
    wait_for_line(&log, &[&ok.id, "spark-submit exited 0"]).await;

    let failed = wait_for_state_within(&mut s.client, &s.vc, &bad.id, "FAILED", within).await;
    assert_eq!(failed.failure_reason, "USER_ERROR");
    assert!(
        failed
            .state_details
            .contains("spark-submit failed before a Spark driver existed")
            && failed
                .state_details
                .contains("SparkException: Driver memory must be a positive number"),
        "{}",
        failed.state_details
    );
    drop(runner);
}

/// After `--finished-job-ttl`, a finished run's pods are deleted;
/// its record and state history stay.
#[tokio::test]
async fn finished_runs_pods_are_deleted_after_the_ttl() {
    let mut s = setup_with("exec-ttl", &["--finished-job-ttl", "1"]).await;
    let run = start_submitted(&mut s).await;
    create_driver(&s, &run.id, &[(kwok::RUN_SECONDS, "1")]).await;
    wait_for_state(&mut s.client, &s.vc, &run.id, "COMPLETED").await;
    let pods: Api<Pod> = Api::namespaced(s.kube.clone(), &s.ns.name);
    let config_maps: Api<ConfigMap> = Api::namespaced(s.kube.clone(), &s.ns.name);
    let selector = format!("sparkvc.io/job-run-id={}", run.id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let config_map = config_maps
            .get_opt(&format!("spark-{}-conf", run.id))
            .await
            .unwrap();
        let left = pods
            .list(&kube::api::ListParams::default().labels(&selector))
            .await
            .unwrap()
            .items
            .len();
        if config_map.is_none() && left == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "after the TTL the pods ({left}) and the ConfigMap ({}) should be gone",
            config_map.is_some()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let kept = describe_run(&mut s.client, &s.vc, &run.id).await;
    assert_eq!(kept.state, "COMPLETED");
    let states: Vec<&str> = kept
        .state_history
        .iter()
        .map(|t| t.state.as_str())
        .collect();
    assert_eq!(states, ["PENDING", "SUBMITTED", "RUNNING", "COMPLETED"]);
}

/// StartJobRun with one `emr-job-submitter` property.
fn start_with_submitter(vc: &str, key: &str, value: &str) -> pb::StartJobRunRequest {
    start_with_overrides(
        vc,
        json!([{"classification": "emr-job-submitter", "properties": {key: value}}]),
    )
}

fn start_with_overrides(
    vc: &str,
    application_configuration: serde_json::Value,
) -> pb::StartJobRunRequest {
    let mut req = start_request(vc);
    req.configuration_overrides = Some(
        serde_json::from_value(json!({ "applicationConfiguration": application_configuration }))
            .unwrap(),
    );
    req
}

/// With maxConcurrentJobRuns 1, runs wait PENDING and start one at a time,
/// in submission order, as each ends (here: kwok finishes each job-runner
/// after a second without a driver, so each run fails and frees its slot).
#[tokio::test]
async fn runs_beyond_max_concurrent_wait_and_start_in_order() {
    let mut s = setup("exec-queue").await;
    s.client
        .update_virtual_cluster(pb::UpdateVirtualClusterRequest {
            id: s.vc.clone(),
            scheduler_configuration: Some(pb::SchedulerConfiguration {
                max_concurrent_job_runs: Some(1),
                max_in_queue_job_runs: None,
            }),
            client_token: unique("token"),
        })
        .await
        .expect("set maxConcurrentJobRuns");
    let mut ids = vec![];
    for _ in 0..3 {
        let req = start_with_submitter(
            &s.vc,
            "jobsubmitter.annotation.sparkvc.io/kwok-run-seconds",
            "1",
        );
        ids.push(s.client.start_job_run(req).await.unwrap().into_inner().id);
    }
    // While the first holds the slot the others stay PENDING.
    wait_for_state(&mut s.client, &s.vc, &ids[0], "SUBMITTED").await;
    let status = describe_vc(&mut s.client, &s.vc)
        .await
        .scheduler_status
        .unwrap();
    assert_eq!(status.current_in_queue_job_runs, 3, "{status:?}");
    for id in &ids[1..] {
        assert_eq!(
            describe_run(&mut s.client, &s.vc, id).await.state,
            "PENDING"
        );
    }
    let mut submitted_at = vec![];
    for id in &ids {
        let run = wait_for_state(&mut s.client, &s.vc, id, "FAILED").await;
        let at = |state: &str| {
            run.state_history
                .iter()
                .find(|t| t.state == state)
                .and_then(|t| t.at)
                .map(|t| (t.seconds, t.nanos))
                .unwrap_or_else(|| panic!("{id} has no {state} in {:?}", run.state_history))
        };
        submitted_at.push((at("SUBMITTED"), at("FAILED")));
    }
    for pair in submitted_at.windows(2) {
        let ((_, earlier_ended), (later_submitted, _)) = (pair[0], pair[1]);
        assert!(
            later_submitted >= earlier_ended,
            "a run was submitted before the one ahead of it ended: {submitted_at:?}"
        );
    }
    let status = describe_vc(&mut s.client, &s.vc)
        .await
        .scheduler_status
        .unwrap();
    assert_eq!(
        (
            status.current_in_queue_job_runs,
            status.current_concurrent_job_runs
        ),
        (0, 0)
    );
}

/// A run whose job-runner cannot be scheduled fails at its job-start-timeout,
/// saying why, and its job-runner is deleted. (30 s: under the full suite's
/// load the scheduler can take seconds to report; the crash test before
/// this one waits for its namespace to drain for the same reason.)
#[tokio::test]
async fn a_run_that_cannot_start_fails_at_its_start_timeout() {
    let mut s = setup("exec-timeout").await;
    let req = start_with_overrides(
        &s.vc,
        json!([
            {"classification": "emr-job-submitter",
             "properties": {"jobsubmitter.node.selector.sparkvc.io/no-such-node": "true"}},
            {"classification": "emr-containers-defaults",
             "properties": {"job-start-timeout": "30"}}
        ]),
    );
    let run = s.client.start_job_run(req).await.unwrap().into_inner();
    let failed = wait_for_state(&mut s.client, &s.vc, &run.id, "FAILED").await;
    assert_eq!(failed.failure_reason, "CLUSTER_UNAVAILABLE");
    assert!(
        failed
            .state_details
            .starts_with("The job run did not start within its job-start-timeout of 30 s: the job-runner pod cannot be scheduled: 0/")
            && failed.state_details.contains("node affinity/selector"),
        "{}",
        failed.state_details
    );
    let pods: Api<Pod> = Api::namespaced(s.kube.clone(), &s.ns.name);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while pods
        .get_opt(&run.id)
        .await
        .unwrap()
        .is_some_and(|p| p.metadata.deletion_timestamp.is_none())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job-runner was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The metrics endpoint reports the run's end, its submit latency and
/// status lag, and the Kubernetes calls made for it.
#[tokio::test]
async fn metrics_report_runs_latencies_and_kubernetes_calls() {
    let mut s = setup("exec-metrics").await;
    let req = start_with_submitter(
        &s.vc,
        "jobsubmitter.annotation.sparkvc.io/kwok-run-seconds",
        "1",
    );
    let run = s.client.start_job_run(req).await.unwrap().into_inner();
    // Pending for now (or already submitted): an open run is counted.
    let url = s.server.metrics_url.clone().expect("metrics URL");
    let text = http_get(&url);
    assert!(
        text.contains(&format!(
            "sparkvc_job_runs{{virtual_cluster_id=\"{}\"",
            s.vc
        )),
        "{text}"
    );
    // kwok ends the job-runner after a second, with no driver: FAILED.
    wait_for_state(&mut s.client, &s.vc, &run.id, "FAILED").await;
    let text = http_get(&url);
    for want in [
        format!(
            "sparkvc_job_runs_finished_total{{virtual_cluster_id=\"{}\",state=\"FAILED\"}} 1",
            s.vc
        ),
        "sparkvc_submit_latency_seconds_count 1".into(),
        "sparkvc_status_lag_seconds_count 1".into(),
        "sparkvc_kubernetes_request_duration_seconds_count{verb=\"create\",resource=\"Pod\"} 1".into(),
        "sparkvc_kubernetes_request_duration_seconds_count{verb=\"create\",resource=\"ConfigMap\"} 1".into(),
    ] {
        assert!(text.contains(&want), "{want} missing from:\n{text}");
    }
    assert!(
        !text.contains(&format!(
            "sparkvc_job_runs{{virtual_cluster_id=\"{}\"",
            s.vc
        )),
        "no open runs are left: {text}"
    );
}

/// With `retryPolicyConfiguration.maxAttempts` 2, a failed driver gets a
/// second attempt after the 10 s backoff, under names of its own, and the
/// first attempt's job-runner is deleted. Run `retried` then succeeds; run
/// `exhausted` fails again and ends FAILED with its last attempt's reason.
#[tokio::test]
async fn a_failed_driver_is_retried_with_backoff_until_attempts_run_out() {
    let mut s = setup("exec-retry").await;
    let mut ids = vec![];
    for _ in 0..2 {
        // kwok keeps the job-runners running: only the drivers decide.
        let mut req = start_with_overrides(
            &s.vc,
            json!([{"classification": "emr-job-submitter",
                    "properties": {format!("jobsubmitter.annotation.{}", kwok::STAY_RUNNING): "true"}}]),
        );
        req.retry_policy_configuration = Some(pb::RetryPolicyConfiguration { max_attempts: 2 });
        ids.push(s.client.start_job_run(req).await.unwrap().into_inner().id);
    }
    let (retried, exhausted) = (ids[0].clone(), ids[1].clone());
    for id in &ids {
        let run = wait_for_state(&mut s.client, &s.vc, id, "SUBMITTED").await;
        assert_eq!(run.retry_policy_execution.unwrap().current_attempt_count, 1);
        create_attempt_driver(
            &s,
            id,
            1,
            &[(kwok::RUN_SECONDS, "1"), (kwok::EXIT_CODE, "3")],
        )
        .await;
    }

    // The failure is recorded and the next attempt scheduled, not the end.
    let minute = Duration::from_secs(60);
    for id in &ids {
        let waiting = wait_until(&mut s.client, &s.vc, id, "a scheduled retry", minute, |r| {
            r.next_attempt_at.is_some() || r.state == "FAILED"
        })
        .await;
        assert_eq!(
            waiting
                .retry_policy_execution
                .unwrap()
                .current_attempt_count,
            2
        );
        assert!(
            waiting.state_details.starts_with("Attempt 1 of 2 failed: The Spark driver failed: container spark-kubernetes-driver exited with code 3")
                && waiting.state_details.ends_with("Attempt 2 starts in 10 s."),
            "{}",
            waiting.state_details
        );
    }

    // After the backoff: attempt 2's job-runner exists, attempt 1's is gone.
    let pods: Api<Pod> = Api::namespaced(s.kube.clone(), &s.ns.name);
    for id in &ids {
        let run = wait_until(&mut s.client, &s.vc, id, "attempt 2", minute, |r| {
            let last = r.state_history.last();
            last.is_some_and(|t| t.state == "SUBMITTED" && t.details.starts_with("Attempt 2 of 2"))
        })
        .await;
        let failed_at = &run.state_history[run.state_history.len() - 2];
        let started_at = run.state_history.last().unwrap();
        let waited = started_at.at.unwrap().seconds - failed_at.at.unwrap().seconds;
        assert!(
            (9..=20).contains(&waited),
            "the backoff was {waited} s: {:?}",
            run.state_history
        );
        assert!(run.next_attempt_at.is_none());
        pods.get(&format!("{id}-2"))
            .await
            .expect("attempt 2's job-runner");
        let first = pods.get_opt(id).await.unwrap();
        assert!(
            first.is_none_or(|p| p.metadata.deletion_timestamp.is_some()),
            "attempt 1's job-runner was not deleted"
        );
    }
    create_attempt_driver(&s, &retried, 2, &[(kwok::RUN_SECONDS, "1")]).await;
    create_attempt_driver(
        &s,
        &exhausted,
        2,
        &[(kwok::RUN_SECONDS, "1"), (kwok::EXIT_CODE, "4")],
    )
    .await;

    let done = wait_for_state(&mut s.client, &s.vc, &retried, "COMPLETED").await;
    assert_eq!(
        done.retry_policy_execution.unwrap().current_attempt_count,
        2
    );
    let failed = wait_for_state(&mut s.client, &s.vc, &exhausted, "FAILED").await;
    assert_eq!(failed.failure_reason, "USER_ERROR");
    assert!(
        failed.state_details.starts_with(
            "Attempt 2 of 2 failed: The Spark driver failed: container spark-kubernetes-driver exited with code 4"
        ),
        "{}",
        failed.state_details
    );
    let states: Vec<&str> = failed
        .state_history
        .iter()
        .map(|t| t.state.as_str())
        .collect();
    assert_eq!(
        states,
        [
            "PENDING",
            "SUBMITTED",
            "RUNNING",
            "RUNNING",
            "SUBMITTED",
            "RUNNING",
            "FAILED"
        ],
        "{:?}",
        failed.state_history
    );
}
