//! Virtual clusters: one per (cluster, namespace) while not terminated.
//! Deleting one moves it RUNNING -> TERMINATING, cancels its open job runs,
//! then TERMINATED, which frees its namespace for a new virtual cluster.

use super::{ControlPlane, Idempotency, fingerprint, timestamp_from_micros, window};
use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::kube::access::{self, AccessError};
use crate::kube::tenancy as kube_tenancy;
use crate::render::names;
use crate::state::{self, JobRunState, Outcome};
use crate::validate;
use k8s_openapi::api::core::v1::Pod;
use sparkvc_proto::v1 as pb;

pub const RUNNING: &str = "RUNNING";
pub const TERMINATING: &str = "TERMINATING";
pub const TERMINATED: &str = "TERMINATED";

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
        if let Some(client) = self.clusters.get(&provider.id) {
            // Before the record, so a stored virtual cluster is always set up;
            // objects left by a failed attempt are named per namespace and
            // reused by the next one.
            kube_tenancy::set_up(client, &namespace, &vc.id, &self.tenancy)
                .await
                .map_err(|e| {
                    ApiError::Internal(format!("setting up namespace {namespace} failed: {e}"))
                })?;
        }
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
                if !security.is_empty() && txn.security_configuration(security)?.is_none() {
                    return Err(ApiError::not_found(format!(
                        "Security configuration {security} doesn't exist."
                    )));
                }
                if txn.namespace_owner(&provider.id, &namespace)?.is_some() {
                    return Err(ApiError::validation(
                        "A virtual cluster already exists in the given namespace",
                    ));
                }
                txn.put_virtual_cluster(&vc);
                txn.claim_namespace(&provider.id, &namespace, &vc.id);
                token.record(txn, &vc.id);
                Ok(vc)
            })
            .await?;
        tracing::info!(virtual_cluster_id = %created.id, namespace, "virtual cluster created");
        Ok(pb::CreateVirtualClusterResponse {
            id: created.id,
            name: created.name,
            arn: created.arn,
        })
    }

    /// With clusters configured, the provider must be one of them, and the
    /// namespace must exist there with the permissions sparkvc needs.
    async fn check_namespace(&self, provider_id: &str, namespace: &str) -> ApiResult<()> {
        if self.clusters.is_empty() {
            return Ok(());
        }
        let Some(client) = self.clusters.get(provider_id) else {
            let known: Vec<_> = self.clusters.ids().collect();
            return Err(ApiError::validation(format!(
                "containerProvider.id {provider_id} is not a cluster this sparkvc server runs job runs on; known clusters: {}.",
                known.join(", ")
            )));
        };
        access::check_namespace(client, provider_id, namespace)
            .await
            .map_err(|err| match err {
                AccessError::Unreachable { .. } => ApiError::Internal(err.to_string()),
                _ => ApiError::validation(err.to_string()),
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
        let page = self.store.list_virtual_clusters(&window, |vc| {
            let provider = vc.container_provider.as_ref();
            (req.states.is_empty() || req.states.contains(&vc.state))
                && (req.container_provider_id.is_empty()
                    || provider.is_some_and(|p| p.id == req.container_provider_id))
                && (req.container_provider_type.is_empty()
                    || provider.is_some_and(|p| p.r#type == req.container_provider_type))
                // sparkvc has no EKS access entries: no cluster is integrated.
                && req.eks_access_entry_integrated != Some(true)
        })?;
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
                txn.put_virtual_cluster(&vc);
                token.record(txn, &vc.id);
                Ok(vc)
            })
            .await?;
        Ok(self.with_status(updated))
    }

    /// Marks the virtual cluster TERMINATING; [`Self::finish_termination`]
    /// completes the deletion.
    pub async fn delete_virtual_cluster(&self, id: &str) -> ApiResult<()> {
        let needs_finishing = self
            .store
            .write(|txn| -> ApiResult<bool> {
                let mut vc = txn
                    .virtual_cluster(id)?
                    .ok_or_else(|| ApiError::virtual_cluster_not_found(id).into_validation())?;
                match vc.state.as_str() {
                    TERMINATED => Ok(false),
                    TERMINATING => Ok(true),
                    _ => {
                        vc.state = TERMINATING.into();
                        txn.put_virtual_cluster(&vc);
                        Ok(true)
                    }
                }
            })
            .await?;
        if needs_finishing {
            tracing::info!(virtual_cluster_id = id, "virtual cluster terminating");
            self.finish_termination(id).await?;
        }
        Ok(())
    }

    /// Cancels a terminating virtual cluster's open job runs (deleting their
    /// Kubernetes objects), marks it TERMINATED, frees its namespace and
    /// removes what sparkvc set up there. Safe to repeat: start-up calls it
    /// for every cluster a crash left TERMINATING.
    pub async fn finish_termination(&self, id: &str) -> ApiResult<()> {
        let Some(vc) = self.store.virtual_cluster(id)? else {
            return Ok(());
        };
        if vc.state != TERMINATING {
            return Ok(());
        }
        let provider = vc.container_provider.clone().unwrap_or_default();
        let namespace = validate::namespace_of(&provider).map(str::to_string).ok();
        let placement = self.clusters.get(&provider.id).zip(namespace.as_deref());
        if let Some((client, namespace)) = placement {
            for (vc_id, run_id, _) in self
                .store
                .open_job_runs()?
                .into_iter()
                .filter(|(v, _, _)| v == id)
            {
                let attempt = self
                    .store
                    .job_run(&vc_id, &run_id)?
                    .as_ref()
                    .map_or(1, state::attempt_of);
                let deleted = async {
                    for name in names::live_attempt_names(&run_id, attempt) {
                        for pod in [names::job_runner_name(&name), names::driver_pod_name(&name)] {
                            crate::kube::delete_if_present::<Pod>(client, namespace, &pod).await?;
                        }
                    }
                    Ok::<_, kube::Error>(())
                };
                deleted.await.map_err(|e| {
                    ApiError::Internal(format!(
                        "could not delete job run {vc_id}/{run_id} on the cluster: {e}"
                    ))
                })?;
            }
        }
        let now = timestamp_from_micros(self.clock.now_micros());
        self.store
            .write(|txn| -> ApiResult<()> {
                let Some(mut vc) = txn.virtual_cluster(id)? else {
                    return Ok(());
                };
                for run_id in txn.open_job_runs_of(id)? {
                    let Some(mut run) = txn.job_run(id, &run_id)? else {
                        continue;
                    };
                    let before = state::state_of(&run);
                    let outcome = Outcome {
                        details: format!("Virtual cluster {id} was deleted."),
                        ..Default::default()
                    };
                    if before == JobRunState::Pending || before == JobRunState::CancelPending {
                        state::transition(&mut run, JobRunState::Cancelled, outcome, now);
                    } else {
                        // SUBMITTED/RUNNING: its objects are gone, so it is over.
                        state::transition(
                            &mut run,
                            JobRunState::CancelPending,
                            outcome.clone(),
                            now,
                        );
                        state::transition(&mut run, JobRunState::Cancelled, outcome, now);
                    }
                    txn.put_job_run(Some(before), &run);
                }
                vc.state = TERMINATED.into();
                if let Ok(namespace) = validate::namespace_of(&provider) {
                    txn.release_namespace(&provider.id, namespace);
                }
                txn.put_virtual_cluster(&vc);
                Ok(())
            })
            .await?;
        if let Some((client, namespace)) = placement
            && let Err(e) = kube_tenancy::tear_down(client, namespace, id).await
        {
            tracing::warn!(virtual_cluster_id = id, error = %e, "could not remove sparkvc's objects from the namespace");
        }
        tracing::info!(virtual_cluster_id = id, "virtual cluster terminated");
        Ok(())
    }

    /// Completes every deletion a crash interrupted.
    pub async fn resume_terminations(&self) -> ApiResult<()> {
        for vc in self.store.virtual_clusters_in_state(TERMINATING)? {
            self.finish_termination(&vc.id).await?;
        }
        Ok(())
    }
}
