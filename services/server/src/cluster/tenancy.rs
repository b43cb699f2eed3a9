//! Tears down what sparkvc made for a virtual cluster inside its
//! namespace (the executor creates it: see `executor/namespaces.rs`). Nothing
//! cluster-scoped.

use crate::render::names;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{LimitRange, ResourceQuota, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams};
use serde::de::DeserializeOwned;
use std::fmt::Debug;

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
