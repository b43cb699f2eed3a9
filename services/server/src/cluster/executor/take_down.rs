//! Taking a run's pods off the cluster: for a cancellation, a clean-up, a
//! retry or a start timeout. Deleting the job-runner and the driver is
//! enough: everything else an attempt made is owned by one of them.

use super::{Executor, Placement, SubmitError};
use crate::cluster::apply::delete_if_present;
use crate::render::names;
use crate::state::{self, JobRunState, Outcome};
use k8s_openapi::api::core::v1::Pod;
use sparkvc_proto::v1 as pb;

impl Executor {
    /// Deletes the job-runner and driver of one attempt of a run (the rest
    /// of the attempt goes with them).
    pub(super) async fn take_down_attempt(
        &self,
        at: &Placement,
        attempt_name: &str,
    ) -> Result<(), SubmitError> {
        let runner_name = names::job_runner_name(attempt_name);
        let runner = delete_if_present::<Pod>(&at.client, &at.namespace, &runner_name);
        self.metrics
            .kube("delete", "Pod", runner)
            .await
            .map_err(|e| SubmitError::Retry(format!("deleting the job-runner: {e}")))?;
        let driver_name = names::driver_pod_name(attempt_name);
        let driver = delete_if_present::<Pod>(&at.client, &at.namespace, &driver_name);
        self.metrics
            .kube("delete", "Pod", driver)
            .await
            .map_err(|e| SubmitError::Retry(format!("deleting the driver: {e}")))
    }

    /// Deletes what a run has on the cluster: its current attempt and the
    /// one before (kept until its successor starts).
    pub(super) async fn take_down(
        &self,
        at: &Placement,
        run: &pb::JobRun,
    ) -> Result<(), SubmitError> {
        for attempt_name in names::live_attempt_names(&run.id, state::attempt_of(run)) {
            self.take_down_attempt(at, &attempt_name).await?;
        }
        Ok(())
    }

    pub(super) async fn cancel(&self, vc_id: &str, run_id: &str) -> Result<(), SubmitError> {
        let mut details = String::new();
        if let Some((run, at)) = self.run_and_placement(vc_id, run_id)? {
            self.take_down(&at, &run).await?;
            // Why it was cancelled, as said when it became CANCEL_PENDING.
            details = run.state_details;
        }
        if details.is_empty() {
            details = "Job run cancelled by user.".into();
        }
        let outcome = Outcome {
            details,
            ..Default::default()
        };
        self.transition(vc_id, run_id, JobRunState::Cancelled, outcome)
            .await?;
        Ok(())
    }
}
