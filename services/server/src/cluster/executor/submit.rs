//! Creating a run's objects on Kubernetes: its first attempt (PENDING →
//! SUBMITTED) and each retried attempt (a failed driver's run, SUBMITTED
//! again).

use super::{Executor, Placement, SubmitError, kube_failure};
use crate::cluster::apply::{create_if_absent, delete_if_present};
use crate::render::{self, JobRunInputs, log_destinations, names};
use crate::state::{self, JobRunState, Outcome};
use crate::store::StoreError;
use crate::time::micros_from_timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use sparkvc_proto::FailureReason;
use sparkvc_proto::v1 as pb;

/// The AWS account in an IAM role ARN, if it names one.
fn role_account(role_arn: &str) -> Option<&str> {
    role_arn.split(':').nth(4).filter(|a| !a.is_empty())
}

impl Executor {
    /// Renders one attempt of a run and creates its objects, each only if
    /// absent (names are deterministic, so a repeat after a crash is safe).
    /// Returns the job-runner pod's name.
    async fn create_attempt(
        &self,
        run: &pb::JobRun,
        at: &Placement,
        attempt: u32,
    ) -> Result<String, SubmitError> {
        let (client, namespace) = (&at.client, at.namespace.as_str());
        // Before the first pod, the namespace has its Role, NetworkPolicy
        // and quota (usually made moments after CreateVirtualCluster).
        self.set_up_namespace(at).await?;
        let release =
            self.catalogue
                .resolve(&run.release_label)
                .map_err(|e| SubmitError::Fatal {
                    failure_reason: FailureReason::ValidationError,
                    details: e.to_string(),
                })?;
        let files = render::pod_template_files(run)?;
        let driver_template = self
            .templates
            .read("driver", files.driver.as_deref(), run)
            .await?;
        let executor_template = self
            .templates
            .read("executor", files.executor.as_deref(), run)
            .await?;
        let account_id = role_account(&run.execution_role_arn)
            .unwrap_or(&self.settings.account_id)
            .to_string();
        let inputs = JobRunInputs {
            run,
            namespace,
            account_id: &account_id,
            release,
            driver_template: driver_template.as_deref(),
            executor_template: executor_template.as_deref(),
            owner: None,
            attempt,
            region: &self.settings.region,
            event_log_dir: self.settings.event_log_dir.as_deref(),
            scheduling: &at.job_pods,
        };
        let rendered = render::render_job_run(&inputs)?;
        for sa in &rendered.service_accounts {
            self.ensure_shared::<ServiceAccount>(at, sa, "create the job's service accounts")
                .await?;
        }
        self.ensure_shared::<RoleBinding>(
            at,
            &rendered.role_binding,
            "bind the job's service accounts",
        )
        .await?;
        let runner = self
            .metrics
            .kube(
                "create",
                "Pod",
                create_if_absent::<Pod>(client, namespace, &rendered.job_runner),
            )
            .await
            .map_err(|e| kube_failure("create the job-runner pod", e))?;
        // The job-runner exists now, so it can own the rest of the attempt.
        // It mounts the ConfigMap made next: until that exists the kubelet
        // holds the pod back and retries, as for any missing volume source.
        let runner_name = runner.name;
        let owner = OwnerReference {
            api_version: "v1".into(),
            kind: "Pod".into(),
            name: runner_name.clone(),
            uid: runner.uid,
            controller: Some(false),
            block_owner_deletion: Some(false),
        };
        let owned = render::render_job_run(&JobRunInputs {
            owner: Some(owner),
            ..inputs
        })?;
        let config_map = create_if_absent::<ConfigMap>(client, namespace, &owned.config_map);
        self.metrics
            .kube("create", "ConfigMap", config_map)
            .await
            .map_err(|e| kube_failure("create the job's ConfigMap", e))?;
        Ok(runner_name)
    }

    /// [`Self::submit_in`] once an API slot is free (tests).
    #[cfg(test)]
    pub(super) async fn submit(&self, vc_id: &str, run_id: &str) -> Result<(), SubmitError> {
        self.submit_in(vc_id, run_id, self.kube_slot().await).await
    }

    /// PENDING → SUBMITTED: checks that the run's logs can be written, then
    /// creates its first attempt. `slot` is the step's share of the API
    /// server, given back once the objects exist.
    pub(super) async fn submit_in(
        &self,
        vc_id: &str,
        run_id: &str,
        slot: tokio::sync::SemaphorePermit<'_>,
    ) -> Result<(), SubmitError> {
        let Some((run, at)) = self.run_and_placement(vc_id, run_id)? else {
            return Ok(());
        };
        if let Some(destinations) = log_destinations::destinations(&run)? {
            self.log_access
                .check(&run, &destinations)
                .await
                .map_err(|e| SubmitError::Fatal {
                    failure_reason: FailureReason::UserError,
                    details: state::fit_details(&e.to_string()),
                })?;
        }
        let runner_name = self
            .create_attempt(&run, &at, state::attempt_of(&run))
            .await?;
        drop(slot);
        let outcome = Outcome {
            details: format!(
                "Job-runner {runner_name} created in namespace {}.",
                at.namespace
            ),
            ..Default::default()
        };
        let submitted = self
            .transition(vc_id, run_id, JobRunState::Submitted, outcome)
            .await?;
        if submitted {
            let created = run.created_at.as_ref().map_or(0, micros_from_timestamp);
            let waited = self.clock.now_micros().saturating_sub(created);
            self.metrics.submit_latency.observe(waited as f64 / 1e6);
            return Ok(());
        }
        // Not PENDING any more. Otherwise the pod watch got there first (its
        // job-runner already existed, e.g. from before a crash) and the
        // objects are the run's own: leave them.
        self.undo_if_cancelled(vc_id, run_id, &at, &runner_name)
            .await
    }

    /// Starts a retried run's next attempt once its backoff has passed: the
    /// failed attempt's job-runner and driver are deleted, the next
    /// attempt's objects created, and the run is SUBMITTED again.
    pub(super) async fn start_attempt(&self, vc_id: &str, run_id: &str) -> Result<(), SubmitError> {
        let Some((run, at)) = self.run_and_placement(vc_id, run_id)? else {
            return Ok(());
        };
        if !state::awaits_attempt(&run) || state::state_of(&run).is_terminal() {
            return Ok(());
        }
        let attempt = state::attempt_of(&run);
        self.take_down_attempt(&at, &names::attempt_name(run_id, attempt - 1))
            .await?;
        let runner_name = self.create_attempt(&run, &at, attempt).await?;
        let details = format!(
            "Attempt {attempt} of {}: job-runner {runner_name} created in namespace {}.",
            state::max_attempts(&run),
            at.namespace
        );
        if self.begin_attempt(vc_id, run_id, details).await? {
            return Ok(());
        }
        self.undo_if_cancelled(vc_id, run_id, &at, &runner_name)
            .await
    }

    /// Records the start of a run's scheduled attempt (SUBMITTED again).
    /// False if the run no longer waits for one.
    pub(super) async fn begin_attempt(
        &self,
        vc_id: &str,
        run_id: &str,
        details: String,
    ) -> Result<bool, StoreError> {
        let at = crate::time::timestamp_from_micros(self.clock.now_micros());
        let begun = self
            .store
            .write(|txn| -> Result<Option<u32>, StoreError> {
                let Some(mut run) = txn.job_run(vc_id, run_id)? else {
                    return Ok(None);
                };
                let before = state::state_of(&run);
                if !state::begin_attempt(&mut run, details, at) {
                    return Ok(None);
                }
                txn.put_job_run(Some(before), &run)?;
                Ok(Some(state::attempt_of(&run)))
            })
            .await?;
        if let Some(attempt) = begun {
            tracing::info!(
                virtual_cluster_id = vc_id,
                job_run_id = run_id,
                attempt,
                "job run attempt started"
            );
        }
        Ok(begun.is_some())
    }

    /// A submission lost a race with the run's own change of state: if it
    /// was cancelled meanwhile, take the job-runner just made down again.
    async fn undo_if_cancelled(
        &self,
        vc_id: &str,
        run_id: &str,
        at: &Placement,
        runner_name: &str,
    ) -> Result<(), SubmitError> {
        let now = self.store.job_run(vc_id, run_id)?;
        let cancelled = now
            .as_ref()
            .map(state::state_of)
            .is_some_and(|s| matches!(s, JobRunState::CancelPending | JobRunState::Cancelled));
        if cancelled {
            delete_if_present::<Pod>(&at.client, &at.namespace, runner_name)
                .await
                .map_err(|e| SubmitError::Retry(format!("deleting a cancelled job-runner: {e}")))?;
        }
        Ok(())
    }
}
