//! Virtual clusters: one per (cluster, namespace) while not terminated.
//! Deleting one moves it RUNNING -> TERMINATING and asks for its open job
//! runs to be cancelled; the executor takes their pods down and then marks it
//! TERMINATED, which frees its namespace for a new virtual cluster.

use super::NamespaceRefusal;
use super::standalone::not_found;
use super::{ControlPlane, Idempotency, fingerprint, timestamp_from_micros, window};
use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::state::{self, JobRunState, Outcome};
use crate::validate;
use sparkvc_proto::v1 as pb;

pub use crate::state::virtual_cluster::{RUNNING, TERMINATED, TERMINATING};

impl ControlPlane {
    /// Adds the live queue counts that `schedulerStatus` reports.
    fn with_status(&self, mut vc: pb::VirtualCluster) -> pb::VirtualCluster {
        let counts = self.store.queue_counts(&vc.id);
        vc.scheduler_status = Some(pb::SchedulerStatus {
            current_in_queue_job_runs: counts.in_queue as i32,
            current_concurrent_job_runs: counts.running as i32,
        });
        vc
    }

    pub async fn create_virtual_cluster(
        &self,
        req: pb::CreateVirtualClusterRequest,
    ) -> ApiResult<pb::CreateVirtualClusterResponse> {
        let provider = req.container_provider.clone().unwrap_or_default();
        let namespace = validate::namespace_of(&provider)?.to_string();
        self.check_namespace(&provider.id, &namespace).await?;
        let micros = self.clock.now_micros();
        let id = ids::new_id(micros, ids::VIRTUAL_CLUSTER_ID_LEN);
        let vc = pb::VirtualCluster {
            arn: self.arns().virtual_cluster(&id),
            id,
            name: req.name.clone(),
            state: RUNNING.into(),
            container_provider: Some(provider.clone()),
            created_at: Some(timestamp_from_micros(micros)),
            tags: req.tags.clone(),
            security_configuration_id: req.security_configuration_id.clone(),
            session_enabled: req.session_enabled,
            scheduler_configuration: req.scheduler_configuration,
            scheduler_status: None,
        };
        let token = Idempotency {
            operation: "CreateVirtualCluster",
            scope: "",
            token: &req.client_token,
            fingerprint: fingerprint(&req, |r| r.client_token.clear()),
        };
        let created = self
            .store
            .write(|txn| {
                if let Some(prior) = token.replayed(txn)? {
                    return txn
                        .virtual_cluster(&prior)?
                        .ok_or_else(|| ApiError::virtual_cluster_not_found(&prior));
                }
                let security = &req.security_configuration_id;
                if !security.is_empty()
                    && txn
                        .standalone::<pb::SecurityConfiguration>(security)?
                        .is_none()
                {
                    return Err(not_found::<pb::SecurityConfiguration>(security));
                }
                if txn.namespace_owner(&provider.id, &namespace)?.is_some() {
                    return Err(ApiError::validation(
                        "A virtual cluster already exists in the given namespace",
                    ));
                }
                txn.put_virtual_cluster(&vc)?;
                txn.claim_namespace(&provider.id, &namespace, &vc.id);
                token.record(txn, &vc.id);
                Ok(vc)
            })
            .await?;
        tracing::info!(virtual_cluster_id = %created.id, namespace, "virtual cluster created");
        // The executor sets up the namespace (Role, NetworkPolicy, quota),
        // always before the virtual cluster's first job-runner.
        self.wake.notify_one();
        Ok(pb::CreateVirtualClusterResponse {
            id: created.id,
            name: created.name,
            arn: created.arn,
        })
    }

    /// With clusters configured, the provider must be one of them, and the
    /// namespace must exist there with the permissions sparkvc needs.
    async fn check_namespace(&self, provider_id: &str, namespace: &str) -> ApiResult<()> {
        let known = self.clusters.cluster_ids();
        if known.is_empty() {
            return Ok(());
        }
        if !self.clusters.runs_on(provider_id) {
            return Err(ApiError::validation(format!(
                "containerProvider.id {provider_id} is not a cluster this sparkvc server runs job runs on; known clusters: {}.",
                known.join(", ")
            )));
        };
        self.clusters
            .check_namespace(provider_id, namespace)
            .await
            .map_err(|refusal| match refusal {
                NamespaceRefusal::Unreachable(why) => ApiError::Internal(why),
                NamespaceRefusal::Unusable(why) => ApiError::validation(why),
            })
    }

    pub fn describe_virtual_cluster(&self, id: &str) -> ApiResult<pb::VirtualCluster> {
        let vc = self
            .store
            .virtual_cluster(id)?
            .ok_or_else(|| ApiError::virtual_cluster_not_found(id))?;
        Ok(self.with_status(vc))
    }

    pub fn list_virtual_clusters(
        &self,
        req: &pb::ListVirtualClustersRequest,
    ) -> ApiResult<pb::ListVirtualClustersResponse> {
        let window = window(
            "virtualclusters",
            req.created_after.as_ref(),
            req.created_before.as_ref(),
            req.max_results,
            &req.next_token,
        )?;
        let keep = |vc: &pb::VirtualCluster| {
            let provider = vc.container_provider.as_ref();
            (req.states.is_empty() || req.states.contains(&vc.state))
                && (req.container_provider_id.is_empty()
                    || provider.is_some_and(|p| p.id == req.container_provider_id))
                && (req.container_provider_type.is_empty()
                    || provider.is_some_and(|p| p.r#type == req.container_provider_type))
                // sparkvc has no EKS access entries: no cluster is integrated.
                && req.eks_access_entry_integrated != Some(true)
        };
        let page = if req.states.is_empty() {
            self.store.list_virtual_clusters(&window, keep)?
        } else {
            self.store
                .list_virtual_clusters_in_states(&req.states, &window, keep)?
        };
        Ok(pb::ListVirtualClustersResponse {
            virtual_clusters: page
                .items
                .into_iter()
                .map(|vc| self.with_status(vc))
                .collect(),
            next_token: page
                .next
                .map(|c| c.to_token("virtualclusters"))
                .unwrap_or_default(),
        })
    }

    pub async fn update_virtual_cluster(
        &self,
        req: pb::UpdateVirtualClusterRequest,
    ) -> ApiResult<pb::VirtualCluster> {
        let token = Idempotency {
            operation: "UpdateVirtualCluster",
            scope: &req.id,
            token: &req.client_token,
            fingerprint: fingerprint(&req, |r| r.client_token.clear()),
        };
        let updated = self
            .store
            .write(|txn| {
                let mut vc = txn
                    .virtual_cluster(&req.id)?
                    .ok_or_else(|| ApiError::virtual_cluster_not_found(&req.id))?;
                // A repeated request is ignored, as AWS documents.
                if token.replayed(txn)?.is_some() {
                    return Ok(vc);
                }
                if vc.state != RUNNING {
                    return Err(ApiError::validation(format!(
                        "Virtual cluster {} is {} and can no longer be updated.",
                        vc.id, vc.state
                    )));
                }
                // The new configuration replaces the old one whole.
                vc.scheduler_configuration = req.scheduler_configuration;
                txn.put_virtual_cluster(&vc)?;
                token.record(txn, &vc.id);
                Ok(vc)
            })
            .await?;
        Ok(self.with_status(updated))
    }

    /// Deletes a virtual cluster as AWS does: TERMINATING, then TERMINATED.
    /// One store write marks it TERMINATING and every open job run
    /// CANCEL_PENDING, and the reply goes out; the executor, the only part
    /// of sparkvc that changes a cluster, then takes the runs' pods down,
    /// removes what sparkvc set up in the namespace, and marks the virtual
    /// cluster TERMINATED, which frees the namespace. A virtual cluster on no
    /// configured Kubernetes cluster has nothing there: it is TERMINATED at
    /// once, its runs CANCELLED.
    pub async fn delete_virtual_cluster(&self, id: &str) -> ApiResult<()> {
        let now = timestamp_from_micros(self.clock.now_micros());
        let terminating = self
            .store
            .write(|txn| -> ApiResult<bool> {
                let mut vc = txn
                    .virtual_cluster(id)?
                    .ok_or_else(|| ApiError::virtual_cluster_not_found(id).into_validation())?;
                if vc.state != RUNNING {
                    // Already TERMINATING (under way) or TERMINATED.
                    return Ok(false);
                }
                let provider = vc.container_provider.clone().unwrap_or_default();
                let on_kubernetes = self.clusters.runs_on(&provider.id);
                cancel_open_runs(txn, id, on_kubernetes, now)?;
                if on_kubernetes {
                    vc.state = TERMINATING.into();
                } else {
                    vc.state = TERMINATED.into();
                    if let Ok(namespace) = validate::namespace_of(&provider) {
                        txn.release_namespace(&provider.id, namespace);
                    }
                }
                txn.put_virtual_cluster(&vc)?;
                Ok(on_kubernetes)
            })
            .await?;
        if terminating {
            tracing::info!(virtual_cluster_id = id, "virtual cluster terminating");
            self.wake.notify_one();
        }
        Ok(())
    }

    /// At start-up, for each virtual cluster left TERMINATING: its open runs
    /// are marked for cancellation (a store written by an earlier sparkvc,
    /// which cancelled them later in the deletion, may still hold PENDING
    /// ones, which must not be submitted now), and the executor finishes it.
    /// One on a Kubernetes cluster that is no longer configured has nobody to
    /// finish it, so it is finished here.
    pub async fn resume_terminations(&self) -> ApiResult<()> {
        let now = timestamp_from_micros(self.clock.now_micros());
        let live = self.store.live_virtual_clusters()?;
        for vc in live.into_iter().filter(|vc| vc.state == TERMINATING) {
            let provider = vc.container_provider.clone().unwrap_or_default();
            if self.clusters.runs_on(&provider.id) {
                self.store
                    .write(|txn| cancel_open_runs(txn, &vc.id, true, now))
                    .await?;
                self.wake.notify_one();
                continue;
            }
            self.store
                .write(|txn| -> ApiResult<()> {
                    let Some(mut vc) = txn.virtual_cluster(&vc.id)? else {
                        return Ok(());
                    };
                    cancel_open_runs(txn, &vc.id, false, now)?;
                    vc.state = TERMINATED.into();
                    if let Ok(namespace) = validate::namespace_of(&provider) {
                        txn.release_namespace(&provider.id, namespace);
                    }
                    txn.put_virtual_cluster(&vc)?;
                    Ok(())
                })
                .await?;
            tracing::info!(virtual_cluster_id = vc.id, "virtual cluster terminated");
        }
        Ok(())
    }
}

/// The part of a deletion that concerns the runs: each open run of
/// virtual cluster `id` is to be cancelled. With pods possibly on a
/// cluster, CANCEL_PENDING, so that the executor deletes them (a PENDING run
/// too: the executor may be creating its job-runner right now); otherwise
/// straight to CANCELLED.
fn cancel_open_runs(
    txn: &mut crate::store::Txn<'_>,
    id: &str,
    on_kubernetes: bool,
    now: prost_types::Timestamp,
) -> ApiResult<()> {
    let outcome = Outcome {
        details: format!("Virtual cluster {id} was deleted."),
        ..Default::default()
    };
    for run_id in txn.open_job_runs_of(id)? {
        let Some(mut run) = txn.job_run(id, &run_id)? else {
            continue;
        };
        let before = state::state_of(&run);
        let next = if on_kubernetes {
            JobRunState::CancelPending
        } else {
            JobRunState::Cancelled
        };
        if before == next {
            continue;
        }
        if !on_kubernetes && before != JobRunState::Pending && before != JobRunState::CancelPending
        {
            // No executor will take it down: nothing of it can be running.
            state::transition(&mut run, JobRunState::CancelPending, outcome.clone(), now);
        }
        state::transition(&mut run, next, outcome.clone(), now);
        txn.put_job_run(Some(before), &run)?;
    }
    Ok(())
}
