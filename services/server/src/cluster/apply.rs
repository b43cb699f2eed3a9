//! Idempotent creation of the objects sparkvc renders. Names are
//! deterministic, so "already exists" means an earlier attempt (perhaps by a
//! process that crashed) made it, and is success.

use k8s_openapi::NamespaceResourceScope;
use kube::api::{DeleteParams, GetParams, PostParams};
use kube::core::Request;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

/// Which object a create made or found: all the executor needs of the
/// answer (the job-runner's UID becomes its ConfigMap's owner reference).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Created {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub uid: String,
}

/// The API server answers a create with the whole stored object (a
/// job-runner pod is about 8 KB of JSON). Decoding it into the typed object
/// was a tenth of the server's CPU under load; this reads its name and UID
/// and skips the rest.
#[derive(Deserialize)]
struct Answer {
    metadata: Created,
}

/// Creates `object` in its namespace unless an object of that name exists;
/// returns the name and UID of the object as stored.
pub async fn create_if_absent<K>(
    client: &kube::Client,
    namespace: &str,
    object: &K,
) -> Result<Created, kube::Error>
where
    K: kube::Resource<Scope = NamespaceResourceScope> + Serialize,
    K::DynamicType: Default,
{
    let url = K::url_path(&K::DynamicType::default(), Some(namespace));
    let body = serde_json::to_vec(object).map_err(kube::Error::SerdeError)?;
    let create = Request::new(&url).create(&PostParams::default(), body);
    match send::<Answer>(client, "create", create).await {
        Ok(answer) => Ok(answer.metadata),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            // Only the metadata, as a PartialObjectMetadata.
            let name = object.meta().name.as_deref().unwrap_or_default();
            let get = Request::new(url).get_metadata(name, &GetParams::default());
            Ok(send::<Answer>(client, "get_metadata", get).await?.metadata)
        }
        Err(err) => Err(err),
    }
}

/// Deletes an object by name; one that is already gone is success. The
/// answer (the object being deleted, or a Status) is checked for being JSON
/// and otherwise skipped, for the reason given at [`Answer`].
pub async fn delete_if_present<K>(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<(), kube::Error>
where
    K: kube::Resource<Scope = NamespaceResourceScope>,
    K::DynamicType: Default,
{
    let url = K::url_path(&K::DynamicType::default(), Some(namespace));
    let delete = Request::new(url).delete(name, &DeleteParams::background());
    match send::<IgnoredAny>(client, "delete", delete).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(err) => Err(err),
    }
}

/// Sends a request built by `kube::core::Request`, named for kube's tracing
/// as its `Api` methods name theirs, and decodes the answer as `T`.
async fn send<T: serde::de::DeserializeOwned>(
    client: &kube::Client,
    verb: &'static str,
    built: Result<http::Request<Vec<u8>>, kube::core::request::Error>,
) -> Result<T, kube::Error> {
    let mut request = built.map_err(kube::Error::BuildRequest)?;
    request.extensions_mut().insert(verb);
    client.request::<T>(request).await
}
