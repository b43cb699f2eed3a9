//! The Kubernetes clusters this control plane runs job runs on.
//!
//! A virtual cluster's `containerProvider.id` names one of them. With no
//! cluster configured the server runs API-only: virtual clusters are accepted
//! for any provider ID and job runs stay PENDING, since nothing could run
//! them.

pub mod access;
mod apply;
pub use apply::{create_if_absent, delete_if_present};
pub mod executor;
pub mod lease;
pub mod observe;
pub mod observed_pod;
pub mod queue;
pub mod templates;
pub mod tenancy;

use crate::config::ClusterConfig;
use crate::render::scheduling::JobPodScheduling;
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The kubeconfig could not be read or does not have the context.
    #[error("cluster {id}: {source}")]
    Kubeconfig {
        id: String,
        source: kube::config::KubeconfigError,
    },
    /// The in-cluster service-account configuration is missing.
    #[error("cluster {id}: not running inside Kubernetes: {source}")]
    InCluster {
        id: String,
        source: kube::config::InClusterError,
    },
    /// The client could not be built from the configuration.
    #[error("cluster {id}: {source}")]
    Client { id: String, source: kube::Error },
    /// Two clusters share an ID.
    #[error("cluster {0} is configured twice")]
    Duplicate(String),
}

/// One Kubernetes client per configured cluster, and where that cluster's
/// job pods go.
#[derive(Clone, Default)]
pub struct Clusters {
    clients: BTreeMap<String, kube::Client>,
    job_pods: BTreeMap<String, Arc<JobPodScheduling>>,
}

impl std::fmt::Debug for Clusters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.clients.keys()).finish()
    }
}

impl Clusters {
    /// Builds a client for each configured cluster. Connections are made
    /// lazily, on first use.
    pub async fn connect(configs: &[ClusterConfig]) -> Result<Self, ClusterError> {
        let mut clients = BTreeMap::new();
        let mut job_pods = BTreeMap::new();
        for cluster in configs {
            let id = cluster.id.clone();
            let config = if cluster.in_cluster {
                kube::Config::incluster().map_err(|source| ClusterError::InCluster {
                    id: id.clone(),
                    source,
                })?
            } else {
                let options = KubeConfigOptions {
                    context: cluster.context.clone(),
                    ..Default::default()
                };
                let kubeconfig = match &cluster.kubeconfig {
                    Some(path) => Kubeconfig::read_from(path),
                    None => Kubeconfig::read(),
                }
                .map_err(|source| ClusterError::Kubeconfig {
                    id: id.clone(),
                    source,
                })?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|source| ClusterError::Kubeconfig {
                        id: id.clone(),
                        source,
                    })?
            };
            let client = kube::Client::try_from(config).map_err(|source| ClusterError::Client {
                id: id.clone(),
                source,
            })?;
            if clients.insert(id.clone(), client).is_some() {
                return Err(ClusterError::Duplicate(id));
            }
            job_pods.insert(id, Arc::new(cluster.job_pods.clone()));
        }
        Ok(Self { clients, job_pods })
    }

    /// Clusters from clients already made (tests, with a mocked API server).
    pub fn from_clients(clients: impl IntoIterator<Item = (String, kube::Client)>) -> Self {
        Self {
            clients: clients.into_iter().collect(),
            job_pods: BTreeMap::new(),
        }
    }

    /// Where job pods go on a cluster from [`Self::from_clients`] (tests).
    pub fn with_job_pods(mut self, id: &str, scheduling: JobPodScheduling) -> Self {
        self.job_pods.insert(id.into(), Arc::new(scheduling));
        self
    }

    /// Whether job runs can run anywhere.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&kube::Client> {
        self.clients.get(id)
    }

    /// The node selector and tolerations of a cluster's job pods (none
    /// unless configured).
    pub fn job_pods(&self, id: &str) -> Arc<JobPodScheduling> {
        self.job_pods.get(id).cloned().unwrap_or_default()
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.clients.keys().map(String::as_str)
    }
}
