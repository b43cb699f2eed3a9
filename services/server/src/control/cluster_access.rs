//! The one thing the control plane asks of the Kubernetes clusters, and it
//! only reads: whether a namespace can hold a virtual cluster.
//!
//! `control` changes no cluster. Its operations change the store and wake
//! the executor, which alone creates and deletes objects, with its backoff,
//! parallelism and metrics. CreateVirtualCluster's synchronous checks go
//! through this trait, which `kube::Clusters` implements; tests use a fake.

use futures::future::BoxFuture;

/// Why a namespace cannot take a virtual cluster.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceRefusal {
    /// Something the caller or the cluster's administrator must fix (the
    /// namespace is missing, sparkvc lacks a permission there): a
    /// ValidationException.
    #[error("{0}")]
    Unusable(String),
    /// The cluster could not be asked: an InternalServerException, since a
    /// retry may succeed.
    #[error("{0}")]
    Unreachable(String),
}

/// The clusters job runs run on, as the control plane sees them.
pub trait ClusterAccess: Send + Sync + std::fmt::Debug {
    /// The configured clusters' IDs; none when the server runs API-only.
    fn cluster_ids(&self) -> Vec<String>;

    /// Whether job runs of a virtual cluster on `cluster` run somewhere.
    fn runs_on(&self, cluster: &str) -> bool {
        self.cluster_ids().iter().any(|id| id == cluster)
    }

    /// Checks, without changing anything, that `namespace` exists on
    /// `cluster` and that sparkvc may do there what job runs need.
    fn check_namespace<'a>(
        &'a self,
        cluster: &'a str,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<(), NamespaceRefusal>>;
}
