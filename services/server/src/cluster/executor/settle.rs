//! What the outcome of a step means for its run: the executor's one way
//! of writing job-run state (see the edge table in `state.rs`).

use super::{Executor, SubmitError};
use crate::state::{self, JobRunState, Outcome};
use crate::store::{StoreError, Timer};
use crate::time::timestamp_from_micros;

impl Executor {
    /// Records what a step's failure means for its run.
    pub(super) async fn settle(
        &self,
        vc_id: &str,
        run_id: &str,
        result: Result<(), SubmitError>,
    ) -> Result<(), StoreError> {
        match result {
            Ok(()) => Ok(()),
            Err(SubmitError::Fatal {
                failure_reason,
                details,
            }) => {
                tracing::info!(job_run_id = %run_id, %failure_reason, details, "job run failed");
                let outcome = Outcome {
                    details,
                    failure_reason: Some(failure_reason),
                };
                self.transition(vc_id, run_id, JobRunState::Failed, outcome)
                    .await
                    .map(|_| ())
            }
            Err(SubmitError::Retry(why)) => {
                self.metrics.reconcile_error("kubernetes");
                tracing::warn!(job_run_id = %run_id, why, "job run step failed; will retry");
                Ok(())
            }
            Err(SubmitError::Store(err)) => {
                self.metrics.reconcile_error("store");
                Err(err)
            }
        }
    }

    /// Records a transition if the state machine allows it.
    pub(super) async fn transition(
        &self,
        vc_id: &str,
        run_id: &str,
        next: JobRunState,
        outcome: Outcome,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now_micros();
        let at = timestamp_from_micros(now);
        let changed = self
            .store
            .write(|txn| -> Result<bool, StoreError> {
                let Some(mut run) = txn.job_run(vc_id, run_id)? else {
                    return Ok(false);
                };
                let before = state::state_of(&run);
                if !state::transition(&mut run, next, outcome, at) {
                    return Ok(false);
                }
                txn.put_job_run(Some(before), &run)?;
                let reached_kubernetes = run
                    .state_history
                    .iter()
                    .any(|t| t.state == JobRunState::Submitted.as_str());
                if next.is_terminal() && reached_kubernetes {
                    let ttl = u64::try_from(self.settings.finished_job_ttl.as_micros())
                        .unwrap_or(u64::MAX);
                    txn.schedule(Timer::Cleanup, now.saturating_add(ttl), vc_id, run_id);
                }
                Ok(true)
            })
            .await?;
        if changed && next.is_terminal() {
            self.metrics.run_finished(vc_id, next.as_str());
            // A slot may have freed: let the queue move.
            self.wake.notify_one();
        }
        if changed {
            tracing::info!(
                virtual_cluster_id = vc_id,
                job_run_id = run_id,
                state = next.as_str(),
                "job run state changed"
            );
        }
        Ok(changed)
    }
}
