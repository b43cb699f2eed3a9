//! The local kube-apiserver validates objects itself: an invalid pod spec is
//! rejected with the API server's own 422 Invalid status.

use anyhow::{Result, bail, ensure};
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use sparkvc_cluster_tests::{api_status, with_namespace};

#[tokio::test]
async fn invalid_pod_spec_is_rejected_by_apiserver_validation() -> Result<()> {
    with_namespace("validation", |_env, client, ns| async move {
        let pods: kube::Api<Pod> = kube::Api::namespaced(client, &ns);
        // Two problems the API server's validation catches: an upper-case
        // container name (not a DNS-1123 label) and an unknown restartPolicy.
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": { "name": "invalid" },
            "spec": {
                "restartPolicy": "Sometimes",
                "containers": [{ "name": "Not_A_Label", "image": "busybox" }]
            }
        }))?;
        let err = match pods.create(&PostParams::default(), &pod).await {
            Ok(_) => bail!("the API server accepted an invalid pod"),
            Err(e) => e,
        };
        let Some(status) = api_status(&err) else {
            bail!("expected an API status error, got {err:?}")
        };
        ensure!(status.code == 422, "expected HTTP 422, got {status:?}");
        ensure!(
            status.reason == "Invalid",
            "expected reason Invalid, got {status:?}"
        );
        ensure!(
            status.message.contains("spec.containers[0].name")
                && status.message.contains("spec.restartPolicy"),
            "message does not name both invalid fields: {}",
            status.message
        );
        ensure!(
            status.message.contains(r#"Unsupported value: "Sometimes""#),
            "unexpected validation message: {}",
            status.message
        );

        // Server-side dry run of a valid pod passes the same validation.
        let valid: Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "valid" },
            "spec": { "containers": [{ "name": "main", "image": "busybox" }] }
        }))?;
        pods.create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &valid,
        )
        .await?;
        Ok(())
    })
    .await
}
