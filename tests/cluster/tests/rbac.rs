//! RBAC is enforced by the local API server: a service account with no
//! RoleBinding may not create pods; a namespace Role + RoleBinding grants it,
//! in that namespace only. Checked both with SubjectAccessReview and by
//! impersonating the service account.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use sparkvc_cluster_tests::{LocalEnv, api_status, eventually, with_namespace};

async fn can_create_pods(client: &Client, user: &str, groups: &[String], ns: &str) -> Result<bool> {
    let sar = SubjectAccessReview {
        metadata: ObjectMeta::default(),
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_string()),
            groups: Some(groups.to_vec()),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(ns.to_string()),
                verb: Some("create".into()),
                resource: Some("pods".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        status: None,
    };
    let out = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &sar)
        .await
        .context("creating SubjectAccessReview")?;
    Ok(out.status.is_some_and(|s| s.allowed))
}

/// A client that impersonates `user` in `groups` (the admin may impersonate).
async fn impersonating(env: &LocalEnv, user: &str, groups: &[String]) -> Result<Client> {
    let mut cfg = env.kube_config().await?;
    cfg.auth_info.impersonate = Some(user.to_string());
    cfg.auth_info.impersonate_groups = Some(groups.to_vec());
    Ok(Client::try_from(cfg)?)
}

fn pod(name: &str) -> Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": { "name": name },
        "spec": { "containers": [{ "name": "main", "image": "busybox" }] }
    }))?)
}

#[tokio::test]
async fn service_account_needs_a_role_binding_to_create_pods() -> Result<()> {
    with_namespace("rbac", |env, client, ns| async move {
        let sa_name = "job-runner";
        Api::<ServiceAccount>::namespaced(client.clone(), &ns)
            .create(
                &PostParams::default(),
                &ServiceAccount {
                    metadata: ObjectMeta { name: Some(sa_name.into()), ..Default::default() },
                    ..Default::default()
                },
            )
            .await?;
        let user = format!("system:serviceaccount:{ns}:{sa_name}");
        let groups = vec![
            "system:serviceaccounts".to_string(),
            format!("system:serviceaccounts:{ns}"),
            "system:authenticated".to_string(),
        ];

        // No binding: denied, by the authorizer and on a real request.
        ensure!(!can_create_pods(&client, &user, &groups, &ns).await?, "allowed before any RoleBinding");
        let as_sa = impersonating(&env, &user, &groups).await?;
        let sa_pods: Api<Pod> = Api::namespaced(as_sa.clone(), &ns);
        match sa_pods.create(&PostParams::default(), &pod("denied")?).await {
            Ok(_) => bail!("the service account created a pod without any RoleBinding"),
            Err(e) => {
                let s = api_status(&e).with_context(|| format!("expected a Forbidden status, got {e:?}"))?;
                ensure!(s.code == 403 && s.reason == "Forbidden", "expected 403 Forbidden, got {s:?}");
                ensure!(s.message.contains(&user), "message does not name the user: {}", s.message);
            }
        }

        // Grant it with a namespace Role and RoleBinding.
        let role: Role = serde_json::from_value(serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": { "name": "pod-creator" },
            "rules": [{ "apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get", "list", "watch", "delete"] }]
        }))?;
        Api::<Role>::namespaced(client.clone(), &ns).create(&PostParams::default(), &role).await?;
        let binding: RoleBinding = serde_json::from_value(serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": { "name": "pod-creator" },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-creator" },
            "subjects": [{ "kind": "ServiceAccount", "name": sa_name, "namespace": ns }]
        }))?;
        Api::<RoleBinding>::namespaced(client.clone(), &ns).create(&PostParams::default(), &binding).await?;

        // The RBAC authorizer works from informer caches: allow a moment.
        eventually("the RoleBinding to take effect", Duration::from_secs(10), || async {
            Ok(can_create_pods(&client, &user, &groups, &ns).await?.then_some(()))
        })
        .await?;
        sa_pods.create(&PostParams::default(), &pod("allowed")?).await.context("create as the bound SA")?;

        // The grant is namespace-scoped: still denied in another namespace.
        ensure!(
            !can_create_pods(&client, &user, &groups, "default").await?,
            "a namespace RoleBinding granted access outside its namespace"
        );
        Ok(())
    })
    .await
}
