//! A batch/v1 Job runs through the real control plane: the Job controller
//! (kube-controller-manager) creates the pod, the scheduler binds it to a kwok
//! node, kwok drives it Running then Succeeded, the Job completes, and
//! deleting the Job lets the garbage collector remove its pod.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, ResourceExt};
use sparkvc_cluster_tests::{eventually, kwok, with_namespace};

fn pod_phase(p: Option<&Pod>) -> Option<String> {
    p.and_then(|p| p.status.as_ref())
        .and_then(|s| s.phase.clone())
}

#[tokio::test]
async fn job_pod_is_scheduled_runs_succeeds_and_is_garbage_collected() -> Result<()> {
    with_namespace("job", |_env, client, ns| async move {
        let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let job: Job = serde_json::from_value(serde_json::json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": { "name": "runner" },
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": { "annotations": { kwok::RUN_SECONDS: "3" } },
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{
                            "name": "main", "image": "busybox",
                            "resources": { "requests": { "cpu": "1", "memory": "1Gi" } }
                        }]
                    }
                }
            }
        }))?;
        let job = jobs.create(&PostParams::default(), &job).await?;
        let job_uid = job.uid().context("job has no uid")?;

        // The Job controller creates the pod, owned by the Job.
        let pod_name = eventually(
            "the Job controller to create a pod",
            Duration::from_secs(30),
            || async {
                let list = pods
                    .list(&ListParams::default().labels("job-name=runner"))
                    .await?;
                Ok(list.items.first().map(|p| p.name_any()))
            },
        )
        .await?;
        let pod = pods.get(&pod_name).await?;
        ensure!(
            pod.owner_references()
                .iter()
                .any(|o| o.kind == "Job" && o.uid == job_uid && o.controller == Some(true)),
            "pod {pod_name} is not controlled by the Job: {:?}",
            pod.owner_references()
        );

        // The scheduler binds it to one of the kwok nodes, and it runs.
        let running = tokio::time::timeout(
            Duration::from_secs(30),
            await_condition(pods.clone(), &pod_name, |p: Option<&Pod>| {
                matches!(pod_phase(p).as_deref(), Some("Running" | "Succeeded"))
            }),
        )
        .await
        .context("pod did not reach Running within 30s")??
        .context("pod disappeared")?;
        ensure!(
            pod_phase(Some(&running)).as_deref() == Some("Running"),
            "pod skipped Running: {:?}",
            running.status
        );
        let node = running
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        ensure!(
            node.starts_with("kwok-node-"),
            "pod scheduled to unexpected node {node:?}"
        );

        // ... then succeeds with exit code 0, and the Job completes.
        let done = tokio::time::timeout(
            Duration::from_secs(30),
            await_condition(pods.clone(), &pod_name, |p: Option<&Pod>| {
                pod_phase(p).as_deref() == Some("Succeeded")
            }),
        )
        .await
        .context("pod did not reach Succeeded within 30s")??
        .context("pod disappeared")?;
        let term = done
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.terminated.as_ref())
            .context("no terminated container state")?;
        ensure!(term.exit_code == 0, "exit code {}", term.exit_code);
        tokio::time::timeout(
            Duration::from_secs(30),
            await_condition(jobs.clone(), "runner", conditions::is_job_completed()),
        )
        .await
        .context("Job did not complete within 30s")??;
        let job = jobs.get("runner").await?;
        ensure!(
            job.status.as_ref().and_then(|s| s.succeeded) == Some(1),
            "job status {:?}",
            job.status
        );

        // Deleting the Job (background propagation) leaves the pod to the
        // garbage collector, which deletes it; kwok then removes the object.
        jobs.delete("runner", &DeleteParams::background()).await?;
        let pod_uid = done.uid().context("pod has no uid")?;
        tokio::time::timeout(
            Duration::from_secs(60),
            await_condition(pods.clone(), &pod_name, conditions::is_deleted(&pod_uid)),
        )
        .await
        .context("the garbage collector did not delete the Job's pod within 60s")??;
        Ok(())
    })
    .await
}
