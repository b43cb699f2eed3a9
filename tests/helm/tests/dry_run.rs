//! The chart's objects as the real local API server sees them: every
//! rendered object is sent as a server-side apply with `dryRun=All` and
//! strict field validation, so the API server's schema, defaulting,
//! validation and admission (RBAC roles included) judge them, and nothing
//! is stored. Needs the local environment (`deploy/local/up`).
//!
//! Rendered into namespaces that every cluster has, since a dry-run cannot
//! create its namespace: the release in `default`, the tenant RoleBinding in
//! `kube-public`. Objects of CustomResourceDefinitions that the local
//! cluster does not have (the ServiceMonitor of monitoring.coreos.com, the
//! Certificate of cert-manager.io) are left out, and the test says which.

use anyhow::{Context, Result};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};
use sparkvc_cluster_tests::LocalEnv;
use sparkvc_helm_tests::{documents, full_values, render};

/// Kinds whose CustomResourceDefinition the local cluster lacks.
const WITHOUT_CRD: &[&str] = &["ServiceMonitor", "Certificate"];

async fn dry_run(rendered: &str) -> Result<Vec<String>> {
    let env = LocalEnv::load()?;
    let client = env.kube_client().await?;
    // force: an object of the same name that another test made with other
    // values is overwritten (in the dry-run only) instead of a conflict.
    let params = PatchParams::apply("sparkvc-helm-test")
        .dry_run()
        .force()
        .validation_strict();
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for doc in documents(rendered)? {
        let object: DynamicObject = serde_json::from_value(doc)?;
        let types = object.types.clone().context("an object without a kind")?;
        let what = format!(
            "{} {}/{}",
            types.kind,
            object.metadata.namespace.as_deref().unwrap_or("-"),
            object.metadata.name.as_deref().unwrap_or_default()
        );
        if WITHOUT_CRD.contains(&types.kind.as_str()) {
            eprintln!("left out of the dry-run (no CRD on the local cluster): {what}");
            continue;
        }
        let gvk = GroupVersionKind::try_from(&types)?;
        let (resource, caps) = pinned_kind(&client, &gvk)
            .await
            .with_context(|| format!("discovering {what}"))?;
        let name = object.metadata.name.clone().unwrap_or_default();
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(
                client.clone(),
                object.metadata.namespace.as_deref().unwrap_or("default"),
                &resource,
            ),
            Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        match api.patch(&name, &params, &Patch::Apply(&object)).await {
            Ok(_) => checked.push(what),
            Err(err) => failures.push(format!("{what}: {err}")),
        }
    }
    anyhow::ensure!(
        failures.is_empty(),
        "the API server refused {} object(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(checked)
}

#[tokio::test]
async fn the_default_rendering_passes_a_server_side_dry_run() -> Result<()> {
    let checked = dry_run(&render("default", &[], &[])?).await?;
    for kind in ["StatefulSet", "ConfigMap", "ClusterRole", "Service"] {
        assert!(
            checked.iter().any(|c| c.starts_with(kind)),
            "{kind} in {checked:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_full_rendering_passes_a_server_side_dry_run() -> Result<()> {
    let rendered = render(
        "default",
        &[&full_values()],
        &["rbac.tenantNamespaces={kube-public}"],
    )?;
    let checked = dry_run(&rendered).await?;
    for object in [
        "Secret default/sparkvc-tls",
        "Secret default/sparkvc-identities",
        "ConfigMap default/sparkvc-policies",
        "RoleBinding kube-public/sparkvc-tenant",
        "StatefulSet default/sparkvc",
    ] {
        assert!(
            checked.iter().any(|c| c == object),
            "{object} in {checked:?}"
        );
    }
    Ok(())
}
