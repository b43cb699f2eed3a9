//! The executor's timers, kept in the store so that a restart loses none:
//! a finished run's clean-up once its TTL passes, and a retried run's next
//! attempt once its backoff passes.

use super::{Executor, PARALLEL, SubmitError};
use crate::store::{Due, StoreError, Timer};
use futures::StreamExt;

impl Executor {
    /// Acts on the timers of `kind` that are due: deletes the objects of
    /// finished runs whose TTL passed, or starts retried attempts whose
    /// backoff passed. A timer is removed once acted on; one whose action
    /// failed for a passing reason stays for the next round.
    pub(super) async fn run_due(&self, kind: Timer) -> Result<(), StoreError> {
        let due = self.store.due(kind, self.clock.now_micros(), 256)?;
        let done = futures::stream::iter(due)
            .map(|timer: Due| async move {
                let (vc_id, run_id) = (timer.vc_id.as_str(), timer.run_id.as_str());
                let result = if self.fenced_off(vc_id) {
                    // Another instance holds this cluster's Lease; the
                    // timer stays for when this one does.
                    return Ok(None);
                } else {
                    match kind {
                        Timer::Cleanup => self.clean_up(vc_id, run_id).await,
                        Timer::Retry => self.start_attempt(vc_id, run_id).await,
                    }
                };
                let acted = !matches!(result, Err(SubmitError::Retry(_)));
                self.settle(vc_id, run_id, result).await?;
                Ok::<_, StoreError>(acted.then_some(timer.key))
            })
            .buffer_unordered(PARALLEL)
            .collect::<Vec<_>>()
            .await;
        let keys: Vec<Vec<u8>> = done
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        self.store
            .write(|txn| -> Result<(), StoreError> {
                for key in &keys {
                    txn.unschedule(kind, key);
                }
                Ok(())
            })
            .await
    }

    /// Deletes a finished run's job-runner and driver (its TTL passed).
    pub(super) async fn clean_up(&self, vc_id: &str, run_id: &str) -> Result<(), SubmitError> {
        if let Some((run, at)) = self.run_and_placement(vc_id, run_id)? {
            self.take_down(&at, &run).await?;
            tracing::debug!(job_run_id = %run_id, "finished run's pods deleted");
        }
        Ok(())
    }
}
