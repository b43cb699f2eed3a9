//! Sets up, and tears down, what a virtual cluster needs inside its
//! namespace: the Spark Role, the same-namespace-only NetworkPolicy and the
//! optional quota and limits. Nothing cluster-scoped.

use super::apply::create_if_absent;
use crate::render::names;
use crate::render::tenancy::{TenancyConfig, render_tenant};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{LimitRange, ResourceQuota, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams};
use serde::de::DeserializeOwned;
use std::fmt::Debug;

#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error("{0}")]
    Render(#[from] crate::render::RenderError),
    #[error("setting up namespace {namespace}: {source}")]
    Kube {
        namespace: String,
        source: kube::Error,
    },
}

pub async fn set_up(
    client: &kube::Client,
    namespace: &str,
    vc_id: &str,
    config: &TenancyConfig,
) -> Result<(), TenancyError> {
    let objects = render_tenant(namespace, vc_id, config)?;
    let kube_err = |source| TenancyError::Kube {
        namespace: namespace.into(),
        source,
    };
    create_if_absent(client, namespace, &objects.role)
        .await
        .map_err(kube_err)?;
    create_if_absent(client, namespace, &objects.network_policy)
        .await
        .map_err(kube_err)?;
    if let Some(quota) = &objects.resource_quota {
        create_if_absent(client, namespace, quota)
            .await
            .map_err(kube_err)?;
    }
    if let Some(limits) = &objects.limit_range {
        create_if_absent(client, namespace, limits)
            .await
            .map_err(kube_err)?;
    }
    Ok(())
}

async fn delete_labelled<K>(
    client: &kube::Client,
    namespace: &str,
    selector: &str,
) -> Result<(), kube::Error>
where
    K: kube::Resource<Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.delete_collection(
        &DeleteParams::background(),
        &ListParams::default().labels(selector),
    )
    .await?;
    Ok(())
}

/// Removes everything sparkvc created for the virtual cluster; the namespace
/// itself and anything else in it stay.
pub async fn tear_down(
    client: &kube::Client,
    namespace: &str,
    vc_id: &str,
) -> Result<(), kube::Error> {
    let selector = format!("{}={vc_id}", names::VIRTUAL_CLUSTER_ID);
    delete_labelled::<RoleBinding>(client, namespace, &selector).await?;
    delete_labelled::<Role>(client, namespace, &selector).await?;
    delete_labelled::<ServiceAccount>(client, namespace, &selector).await?;
    delete_labelled::<NetworkPolicy>(client, namespace, &selector).await?;
    delete_labelled::<ResourceQuota>(client, namespace, &selector).await?;
    delete_labelled::<LimitRange>(client, namespace, &selector).await?;
    Ok(())
}
