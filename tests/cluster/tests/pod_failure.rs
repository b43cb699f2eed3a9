//! Failure paths driven through the real API with the kwok stage annotations:
//! a pod fails with a chosen exit code and reason; a Job whose pod fails is
//! marked Failed by the Job controller; a pod can be kept Running.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use kube::api::PostParams;
use kube::runtime::wait::await_condition;
use kube::{Api, ResourceExt};
use sparkvc_cluster_tests::{kwok, with_namespace};

fn phase(p: Option<&Pod>) -> Option<String> {
    p.and_then(|p| p.status.as_ref())
        .and_then(|s| s.phase.clone())
}

fn terminated(p: &Pod, container: &str) -> Option<ContainerStateTerminated> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == container)?
        .state
        .as_ref()?
        .terminated
        .clone()
}

async fn wait_phase(pods: &Api<Pod>, name: &str, want: &'static str, secs: u64) -> Result<Pod> {
    tokio::time::timeout(
        Duration::from_secs(secs),
        await_condition(pods.clone(), name, move |p: Option<&Pod>| {
            phase(p).as_deref() == Some(want)
        }),
    )
    .await
    .with_context(|| format!("pod {name} did not reach {want} within {secs}s"))??
    .with_context(|| format!("pod {name} disappeared"))
}

#[tokio::test]
async fn pod_marked_to_fail_ends_failed_with_chosen_exit_code_and_reason() -> Result<()> {
    with_namespace("podfail", |_env, client, ns| async move {
        let pods: Api<Pod> = Api::namespaced(client, &ns);
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "driver",
                "annotations": {
                    kwok::EXIT_CODE: "137",
                    kwok::REASON: "OOMKilled",
                    kwok::MESSAGE: "container exceeded its memory limit",
                    kwok::CONTAINER: "spark-kubernetes-driver",
                    kwok::RUN_SECONDS: "1"
                }
            },
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    { "name": "spark-kubernetes-driver", "image": "spark" },
                    { "name": "fluentd", "image": "fluentd" }
                ]
            }
        }))?;
        pods.create(&PostParams::default(), &pod).await?;
        wait_phase(&pods, "driver", "Running", 30).await?;
        let failed = wait_phase(&pods, "driver", "Failed", 30).await?;
        let t = terminated(&failed, "spark-kubernetes-driver")
            .context("driver container not terminated")?;
        ensure!(t.exit_code == 137, "exit code {}", t.exit_code);
        ensure!(
            t.reason.as_deref() == Some("OOMKilled"),
            "reason {:?}",
            t.reason
        );
        ensure!(
            t.message.as_deref() == Some("container exceeded its memory limit"),
            "message {:?}",
            t.message
        );
        let side = terminated(&failed, "fluentd").context("sidecar not terminated")?;
        ensure!(
            side.exit_code == 0,
            "other container exit code {}",
            side.exit_code
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn job_whose_pod_fails_is_marked_failed_by_the_job_controller() -> Result<()> {
    with_namespace("jobfail", |_env, client, ns| async move {
        let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
        let job: Job = serde_json::from_value(serde_json::json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": { "name": "failing" },
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": { "annotations": { kwok::EXIT_CODE: "3", kwok::RUN_SECONDS: "1" } },
                    "spec": { "restartPolicy": "Never", "containers": [{ "name": "main", "image": "busybox" }] }
                }
            }
        }))?;
        jobs.create(&PostParams::default(), &job).await?;
        let job_failed = |j: Option<&Job>| {
            j.and_then(|j| j.status.as_ref())
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Failed" && c.status == "True"))
        };
        tokio::time::timeout(Duration::from_secs(60), await_condition(jobs.clone(), "failing", job_failed))
            .await
            .context("Job was not marked Failed within 60s")??;
        let job = jobs.get("failing").await?;
        let status = job.status.context("no job status")?;
        let failed = status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Failed" && c.status == "True")
            .context("Job has no Failed=True condition")?;
        ensure!(failed.reason.as_deref() == Some("BackoffLimitExceeded"), "reason {:?}", failed.reason);
        ensure!(status.failed == Some(1), "failed count {:?}", status.failed);

        let pods: Api<Pod> = Api::namespaced(client, &ns);
        let list = pods.list(&kube::api::ListParams::default().labels("job-name=failing")).await?;
        let pod = list.items.first().context("the Job's pod is gone")?;
        let t = terminated(pod, "main").context("container not terminated")?;
        ensure!(t.exit_code == 3, "exit code {} in pod {}", t.exit_code, pod.name_any());
        Ok(())
    })
    .await
}

#[tokio::test]
async fn pod_marked_to_stay_running_does_not_complete() -> Result<()> {
    with_namespace("stay", |_env, client, ns| async move {
        let pods: Api<Pod> = Api::namespaced(client, &ns);
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "server", "annotations": { kwok::STAY_RUNNING: "true", kwok::RUN_SECONDS: "1" } },
            "spec": { "restartPolicy": "Never", "containers": [{ "name": "main", "image": "busybox" }] }
        }))?;
        pods.create(&PostParams::default(), &pod).await?;
        wait_phase(&pods, "server", "Running", 30).await?;
        tokio::time::sleep(Duration::from_secs(4)).await;
        let p = pods.get("server").await?;
        ensure!(phase(Some(&p)).as_deref() == Some("Running"), "phase {:?}", phase(Some(&p)));
        Ok(())
    })
    .await
}

#[tokio::test]
async fn pod_with_init_container_and_native_sidecar_runs_then_succeeds() -> Result<()> {
    with_namespace("sidecar", |_env, client, ns| async move {
        let pods: Api<Pod> = Api::namespaced(client, &ns);
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "job-runner", "annotations": { kwok::RUN_SECONDS: "1" } },
            "spec": {
                "restartPolicy": "Never",
                "initContainers": [
                    { "name": "setup", "image": "busybox" },
                    { "name": "fluentd", "image": "fluentd", "restartPolicy": "Always" }
                ],
                "containers": [{ "name": "main", "image": "spark" }]
            }
        }))?;
        pods.create(&PostParams::default(), &pod).await?;
        let running = wait_phase(&pods, "job-runner", "Running", 30).await?;
        let init = running
            .status
            .as_ref()
            .and_then(|s| s.init_container_statuses.clone())
            .context("no init container statuses")?;
        let state = |name: &str| {
            init.iter()
                .find(|c| c.name == name)
                .and_then(|c| c.state.clone())
        };
        ensure!(
            state("setup")
                .and_then(|s| s.terminated)
                .is_some_and(|t| t.exit_code == 0),
            "init container not Completed: {:?}",
            state("setup")
        );
        ensure!(
            state("fluentd").and_then(|s| s.running).is_some(),
            "sidecar not running: {:?}",
            state("fluentd")
        );
        let done = wait_phase(&pods, "job-runner", "Succeeded", 30).await?;
        ensure!(
            terminated(&done, "main").is_some_and(|t| t.exit_code == 0),
            "main did not exit 0"
        );
        Ok(())
    })
    .await
}
