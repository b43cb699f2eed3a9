//! Checks that a namespace exists and that sparkvc may do there what running
//! job runs needs, before a virtual cluster is created on it.
//!
//! Each permission is asked of the API server with a SelfSubjectAccessReview,
//! so the answer reflects the real RBAC (or whatever authorizer) of the
//! cluster, namespace-scoped, for sparkvc's own identity.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};

/// What sparkvc does inside a virtual cluster's namespace, as
/// (API group, resource, verb).
pub const REQUIRED_PERMISSIONS: &[(&str, &str, &str)] = &[
    ("", "pods", "create"),
    ("", "pods", "get"),
    ("", "pods", "list"),
    ("", "pods", "watch"),
    ("", "pods", "delete"),
    ("", "configmaps", "create"),
    ("", "configmaps", "delete"),
    ("", "serviceaccounts", "create"),
    ("", "services", "get"),
    ("rbac.authorization.k8s.io", "roles", "create"),
    ("rbac.authorization.k8s.io", "rolebindings", "create"),
    ("networking.k8s.io", "networkpolicies", "create"),
];

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The namespace does not exist on the cluster.
    #[error("Namespace {namespace} does not exist on cluster {cluster}; create it first.")]
    NamespaceMissing { cluster: String, namespace: String },
    /// sparkvc lacks a permission it needs.
    #[error(
        "sparkvc is not allowed to {verb} {resource} in namespace {namespace} on cluster {cluster}{reason}; grant it with a Role and RoleBinding in that namespace."
    )]
    Denied {
        cluster: String,
        namespace: String,
        verb: String,
        resource: String,
        reason: String,
    },
    /// The cluster could not be asked.
    #[error("cluster {cluster} could not be reached: {source}")]
    Unreachable {
        cluster: String,
        source: kube::Error,
    },
}

/// `group/resource` as kubectl shows it (`jobs.batch`, or `pods` for core).
fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

pub async fn check_namespace(
    client: &kube::Client,
    cluster: &str,
    namespace: &str,
) -> Result<(), AccessError> {
    let unreachable = |source| AccessError::Unreachable {
        cluster: cluster.into(),
        source,
    };
    let denied = |group: &str, resource: &str, verb: &str, reason: String| AccessError::Denied {
        cluster: cluster.into(),
        namespace: namespace.into(),
        verb: verb.into(),
        resource: qualified(group, resource),
        reason,
    };
    // Access reviews need no permission of their own, so they come first and
    // name exactly what is missing.
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    for (group, resource, verb) in REQUIRED_PERMISSIONS {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(namespace.into()),
                    group: Some((*group).into()),
                    resource: Some((*resource).into()),
                    verb: Some((*verb).into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = reviews
            .create(&PostParams::default(), &review)
            .await
            .map_err(unreachable)?;
        let status = answer.status.unwrap_or_default();
        if !status.allowed {
            let reason = status
                .reason
                .filter(|r| !r.is_empty())
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            return Err(denied(group, resource, verb, reason));
        }
    }
    // Reading the namespace object needs only a namespaced grant (a Role in
    // that namespace may allow `get` on `namespaces`).
    let namespaces: Api<Namespace> = Api::all(client.clone());
    match namespaces.get_opt(namespace).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(AccessError::NamespaceMissing {
            cluster: cluster.into(),
            namespace: namespace.into(),
        }),
        Err(kube::Error::Api(status)) if status.code == 403 => {
            Err(denied("", "namespaces", "get", String::new()))
        }
        Err(source) => Err(unreachable(source)),
    }
}

/// The control plane's read-only view of the clusters.
impl crate::control::ClusterAccess for super::Clusters {
    fn cluster_ids(&self) -> Vec<String> {
        self.ids().map(str::to_string).collect()
    }

    fn runs_on(&self, cluster: &str) -> bool {
        self.get(cluster).is_some()
    }

    fn check_namespace<'a>(
        &'a self,
        cluster: &'a str,
        namespace: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), crate::control::NamespaceRefusal>> {
        use crate::control::NamespaceRefusal;
        Box::pin(async move {
            let Some(client) = self.get(cluster) else {
                return Err(NamespaceRefusal::Unusable(format!(
                    "cluster {cluster} is not configured"
                )));
            };
            check_namespace(client, cluster, namespace)
                .await
                .map_err(|err| match err {
                    AccessError::Unreachable { .. } => {
                        NamespaceRefusal::Unreachable(err.to_string())
                    }
                    _ => NamespaceRefusal::Unusable(err.to_string()),
                })
        })
    }
}
