//! Job runs: accepted PENDING once durable. Nothing here runs them; the
//! reconciler that drives them on Kubernetes picks them up from the store's
//! open-run index.

use super::virtual_clusters::RUNNING;
use super::{ControlPlane, Idempotency, fingerprint, timestamp_from_micros, window};
use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::state::{self, JobRunState, Outcome};
use crate::template;
use crate::validate;
use sparkvc_proto::v1 as pb;

impl ControlPlane {
    /// Builds the job run a request asks for, merging in its job template.
    fn job_run_from(
        &self,
        req: &pb::StartJobRunRequest,
        created_by: &str,
        micros: u64,
    ) -> ApiResult<pb::JobRun> {
        let id = ids::new_id(micros, ids::JOB_RUN_ID_LEN);
        let created_at = timestamp_from_micros(micros);
        let mut run = pb::JobRun {
            arn: self.arns().job_run(&req.virtual_cluster_id, &id),
            id,
            name: req.name.clone(),
            virtual_cluster_id: req.virtual_cluster_id.clone(),
            client_token: req.client_token.clone(),
            execution_role_arn: req.execution_role_arn.clone(),
            release_label: req.release_label.clone(),
            configuration_overrides: req.configuration_overrides.clone(),
            job_driver: req.job_driver.clone(),
            created_at: Some(created_at),
            created_by: created_by.to_string(),
            tags: req.tags.clone(),
            retry_policy_configuration: req.retry_policy_configuration,
            job_template_id: req.job_template_id.clone(),
            ..Default::default()
        };
        if !req.job_template_id.is_empty() {
            let template: pb::JobTemplate = self.describe_standalone(&req.job_template_id)?;
            template::apply(
                &mut run,
                template::instantiate(&template, &req.job_template_parameters)?,
            );
        }
        validate::complete_job_run(&run)?;
        self.catalogue.resolve(&run.release_label)?;
        state::initial(&mut run, created_at);
        Ok(run)
    }

    /// Accepts a run; `created_by` is the caller's principal ARN.
    pub async fn start_job_run(
        &self,
        req: pb::StartJobRunRequest,
        created_by: &str,
    ) -> ApiResult<pb::StartJobRunResponse> {
        let vc_id = req.virtual_cluster_id.clone();
        if self.store.virtual_cluster(&vc_id)?.is_none() {
            return Err(ApiError::virtual_cluster_not_found(&vc_id));
        }
        let run = self.job_run_from(&req, created_by, self.clock.now_micros())?;
        let token = Idempotency {
            operation: "StartJobRun",
            scope: &vc_id,
            token: &req.client_token,
            fingerprint: fingerprint(&req, |r| r.client_token.clear()),
        };
        let accepted = self
            .store
            .write(|txn| {
                if let Some(prior) = token.replayed(txn)? {
                    return txn.job_run(&vc_id, &prior)?.ok_or_else(|| ApiError::job_run_not_found(&prior));
                }
                let vc = txn.virtual_cluster(&vc_id)?.ok_or_else(|| ApiError::virtual_cluster_not_found(&vc_id))?;
                if vc.state != RUNNING {
                    return Err(ApiError::validation(format!(
                        "Virtual cluster {vc_id} is {} and accepts no new job runs.",
                        vc.state
                    )));
                }
                let limit = vc.scheduler_configuration.and_then(|s| s.max_in_queue_job_runs);
                if let Some(limit) = limit {
                    let queued = txn.queue_counts(&vc_id).in_queue;
                    if queued >= i64::from(limit) {
                        return Err(ApiError::validation(format!(
                            "Virtual cluster {vc_id} already has {queued} job runs in its queue, its maxInQueueJobRuns limit; retry once some have started."
                        )));
                    }
                }
                txn.put_job_run(None, &run)?;
                token.record(txn, &run.id);
                Ok(run)
            })
            .await?;
        tracing::info!(virtual_cluster_id = %vc_id, job_run_id = %accepted.id, "job run accepted");
        self.wake.notify_one();
        Ok(pb::StartJobRunResponse {
            id: accepted.id,
            name: accepted.name,
            arn: accepted.arn,
            virtual_cluster_id: accepted.virtual_cluster_id,
        })
    }

    pub fn describe_job_run(&self, vc_id: &str, id: &str) -> ApiResult<pb::JobRun> {
        self.store
            .job_run(vc_id, id)?
            .ok_or_else(|| ApiError::job_run_not_found(id))
    }

    /// GetJobRunLogs (extension): the run's shipped logs, read back.
    pub async fn get_job_run_logs(
        &self,
        req: &pb::GetJobRunLogsRequest,
    ) -> ApiResult<pb::GetJobRunLogsResponse> {
        let run = self.describe_job_run(&req.virtual_cluster_id, &req.id)?;
        let destinations = crate::render::log_destinations::destinations(&run)
            .map_err(|e| ApiError::validation(e.to_string()))?
            .ok_or_else(|| {
                ApiError::validation(format!(
                    "Job run {} ships no logs: its monitoringConfiguration names neither S3 nor CloudWatch.",
                    run.id
                ))
            })?;
        let query = crate::log_reader::query(req, &destinations)?;
        crate::log_reader::read(&run, &destinations, &query).await
    }

    pub fn list_job_runs(
        &self,
        req: &pb::ListJobRunsRequest,
    ) -> ApiResult<pb::ListJobRunsResponse> {
        let vc_id = &req.virtual_cluster_id;
        if self.store.virtual_cluster(vc_id)?.is_none() {
            return Err(ApiError::virtual_cluster_not_found(vc_id).into_validation());
        }
        let listing = format!("jobruns/{vc_id}");
        let window = window(
            &listing,
            req.created_after.as_ref(),
            req.created_before.as_ref(),
            req.max_results,
            &req.next_token,
        )?;
        let keep = |run: &pb::JobRun| {
            (req.states.is_empty() || req.states.contains(&run.state))
                && (req.name.is_empty() || run.name == req.name)
        };
        // With states, from the state index: as fast with a long history of
        // finished runs as without. Same pages, same tokens.
        let page = if req.states.is_empty() {
            self.store.list_job_runs(vc_id, &window, keep)?
        } else {
            self.store
                .list_job_runs_in_states(vc_id, &req.states, &window, keep)?
        };
        Ok(pb::ListJobRunsResponse {
            job_runs: page.items,
            next_token: page.next.map(|c| c.to_token(&listing)).unwrap_or_default(),
        })
    }

    /// A run that has not been handed to Kubernetes is cancelled at once; one
    /// that has goes to CANCEL_PENDING until its pods are gone.
    pub async fn cancel_job_run(&self, vc_id: &str, id: &str) -> ApiResult<()> {
        let now = timestamp_from_micros(self.clock.now_micros());
        self.store
            .write(|txn| {
                let mut run = txn
                    .job_run(vc_id, id)?
                    .ok_or_else(|| ApiError::job_run_not_found(id).into_validation())?;
                let before = state::state_of(&run);
                let next = match before {
                    JobRunState::Pending => JobRunState::Cancelled,
                    JobRunState::Submitted | JobRunState::Running => JobRunState::CancelPending,
                    _ => {
                        return Err(ApiError::validation(format!(
                            "Job run {id} is not in a cancellable state"
                        )));
                    }
                };
                let outcome = Outcome {
                    details: "Job run cancelled by user.".into(),
                    ..Default::default()
                };
                state::transition(&mut run, next, outcome, now);
                txn.put_job_run(Some(before), &run)?;
                Ok(())
            })
            .await?;
        tracing::info!(
            virtual_cluster_id = vc_id,
            job_run_id = id,
            "job run cancel requested"
        );
        Ok(())
    }
}
