//! Idempotent creation of the objects sparkvc renders. Names are
//! deterministic, so "already exists" means an earlier attempt (perhaps by a
//! process that crashed) made it, and is success.

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, PostParams};
use serde::{Serialize, de::DeserializeOwned};
use std::fmt::Debug;

/// Creates `object` in its namespace unless an object of that name exists;
/// returns the object as stored.
pub async fn create_if_absent<K>(
    client: &kube::Client,
    namespace: &str,
    object: &K,
) -> Result<K, kube::Error>
where
    K: kube::Resource<Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match api.create(&PostParams::default(), object).await {
        Ok(created) => Ok(created),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let name = object.meta().name.clone().unwrap_or_default();
            api.get(&name).await
        }
        Err(err) => Err(err),
    }
}

/// Deletes an object by name; one that is already gone is success.
pub async fn delete_if_present<K>(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<(), kube::Error>
where
    K: kube::Resource<Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(err) => Err(err),
    }
}
