//! What the executor keeps in a virtual cluster's namespace besides single
//! runs: the objects every run there shares, from the virtual cluster's
//! creation to its deletion.
//!
//! - Set-up: a RUNNING virtual cluster's namespace gets its Role,
//!   same-namespace NetworkPolicy and optional quota and limits, moments
//!   after CreateVirtualCluster stored it (the control plane wakes the
//!   executor) and in any case before its first job-runner. The per-role
//!   ServiceAccounts and RoleBinding follow with the first run of each role.
//! - Memory: each shared object, once created or found, is trusted to exist
//!   for [`SHARED_OBJECT_TTL`](super::SHARED_OBJECT_TTL), keyed by virtual
//!   cluster, so that thousands of runs make no repeated requests.
//! - Tear-down: a TERMINATING virtual cluster whose runs have all ended loses
//!   everything sparkvc made in its namespace (the namespace itself stays),
//!   the executor forgets what it remembered there, and the store marks it
//!   TERMINATED, which frees the namespace for a new virtual cluster.
//!
//! Both walk only the live virtual clusters (the store's namespace index),
//! not the history of terminated ones.

use super::{Executor, Placement, SubmitError, kube_failure};
use crate::cluster::apply::create_if_absent;
use crate::cluster::tenancy;
use crate::render::tenancy::render_tenant;
use crate::state::virtual_cluster::{RUNNING, TERMINATED, TERMINATING};
use crate::store::StoreError;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{LimitRange, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::Role;
use sparkvc_proto::v1 as pb;

/// Namespaces tended at once. After a restart every namespace is checked
/// again (a few requests each): one at a time, 20 virtual clusters held
/// the first reconcile pass 8 s behind a busy API server.
const NAMESPACES_AT_ONCE: usize = 8;

impl Executor {
    /// One round over the live virtual clusters: sets up new namespaces and
    /// finishes deletions, [`NAMESPACES_AT_ONCE`] at a time. A Kubernetes
    /// failure is logged and retried next round.
    pub(super) async fn tend_namespaces(&self) -> Result<(), StoreError> {
        let vcs = self.store.live_virtual_clusters()?;
        futures::stream::iter(vcs)
            .map(|vc| async move { self.tend_namespace(&vc).await })
            .buffer_unordered(NAMESPACES_AT_ONCE)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    async fn tend_namespace(&self, vc: &pb::VirtualCluster) -> Result<(), StoreError> {
        let Some(at) = self.placement(vc) else {
            return Ok(()); // its cluster is not configured: see resume_terminations
        };
        if !self.fence.holds(&at.cluster)
            || self.lock_backoff().waiting(&at.cluster, self.clock.now())
        {
            return Ok(());
        }
        if vc.state == RUNNING {
            if let Err(err) = self.set_up_namespace(&at).await {
                self.metrics.reconcile_error("kubernetes");
                if matches!(err, SubmitError::Retry(_)) {
                    self.lock_backoff().failed(&at.cluster, self.clock.now());
                }
                tracing::warn!(virtual_cluster_id = vc.id, error = %err, "setting up the virtual cluster's namespace failed; will retry");
            }
        } else if vc.state == TERMINATING {
            self.finish_termination(vc, &at).await?;
        }
        Ok(())
    }

    /// Creates the namespace's Role, NetworkPolicy, quota and limits for the
    /// virtual cluster, unless done recently.
    pub(super) async fn set_up_namespace(&self, at: &Placement) -> Result<(), SubmitError> {
        let done = self.shared_key(at, "tenancy", "");
        if self.remembered(&done) {
            return Ok(());
        }
        let objects = render_tenant(
            &at.namespace,
            &at.virtual_cluster_id,
            &self.settings.tenancy,
        )?;
        let what = "set up the virtual cluster's namespace";
        self.ensure_shared::<Role>(at, &objects.role, what).await?;
        self.ensure_shared::<NetworkPolicy>(at, &objects.network_policy, what)
            .await?;
        if let Some(quota) = &objects.resource_quota {
            self.ensure_shared::<ResourceQuota>(at, quota, what).await?;
        }
        if let Some(limits) = &objects.limit_range {
            self.ensure_shared::<LimitRange>(at, limits, what).await?;
        }
        self.remember(done);
        Ok(())
    }

    /// Creates an object shared by many runs unless it was created or found
    /// recently.
    pub(super) async fn ensure_shared<K>(
        &self,
        at: &Placement,
        object: &K,
        what: &str,
    ) -> Result<(), SubmitError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::Serialize
            + serde::de::DeserializeOwned,
        K::DynamicType: Default,
    {
        let kind = K::kind(&K::DynamicType::default()).to_string();
        let key = self.shared_key(at, &kind, object.meta().name.as_deref().unwrap_or_default());
        if self.remembered(&key) {
            return Ok(());
        }
        self.metrics
            .kube(
                "create",
                &kind,
                create_if_absent::<K>(&at.client, &at.namespace, object),
            )
            .await
            .map_err(|e| kube_failure(what, e))?;
        self.remember(key);
        Ok(())
    }

    /// `cluster/namespace/virtual cluster/kind/name`: what the executor
    /// remembers is per virtual cluster (see [`Placement`]).
    fn shared_key(&self, at: &Placement, kind: &str, name: &str) -> String {
        format!(
            "{}/{}/{}/{kind}/{name}",
            at.cluster, at.namespace, at.virtual_cluster_id
        )
    }

    fn remembered(&self, key: &str) -> bool {
        self.lock_shared()
            .get(key)
            .is_some_and(|&at| self.clock.now().saturating_sub(at) < super::SHARED_OBJECT_TTL)
    }

    fn remember(&self, key: String) {
        self.lock_shared().insert(key, self.clock.now());
    }

    /// Finishes the deletion of a TERMINATING virtual cluster once its runs
    /// have all ended (their pods are gone): removes what sparkvc set up in
    /// its namespace, forgets the objects remembered there, and marks it
    /// TERMINATED. One that fails is tried again next round.
    async fn finish_termination(
        &self,
        vc: &pb::VirtualCluster,
        at: &Placement,
    ) -> Result<(), StoreError> {
        if !self.store.open_job_runs_in(&vc.id)?.is_empty() {
            return Ok(());
        }
        let torn_down = self
            .metrics
            .kube(
                "delete",
                "tenancy",
                tenancy::tear_down(&at.client, &at.namespace, &vc.id),
            )
            .await;
        if let Err(err) = torn_down {
            self.lock_backoff().failed(&at.cluster, self.clock.now());
            self.metrics.reconcile_error("kubernetes");
            tracing::warn!(virtual_cluster_id = vc.id, error = %err, "removing sparkvc's objects from the namespace failed; will retry");
            return Ok(());
        }
        self.forget_shared(at);
        let terminated = self
            .store
            .write(|txn| -> Result<bool, StoreError> {
                let Some(mut vc) = txn.virtual_cluster(&vc.id)? else {
                    return Ok(false);
                };
                if vc.state != TERMINATING {
                    return Ok(false);
                }
                vc.state = TERMINATED.into();
                txn.release_namespace(&at.cluster, &at.namespace);
                txn.put_virtual_cluster(&vc)?;
                Ok(true)
            })
            .await?;
        if terminated {
            tracing::info!(virtual_cluster_id = vc.id, "virtual cluster terminated");
        }
        Ok(())
    }

    /// Forgets the shared objects remembered for a virtual cluster whose
    /// namespace objects were removed.
    fn forget_shared(&self, at: &Placement) {
        let prefix = format!("{}/{}/{}/", at.cluster, at.namespace, at.virtual_cluster_id);
        self.lock_shared()
            .retain(|key, _| !key.starts_with(&prefix));
    }
}
