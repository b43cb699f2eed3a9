//! The job-start timeout: a run still SUBMITTED after its
//! `job-start-timeout` is taken down and fails, saying why its pods did
//! not start.

use super::{DEFAULT_START_TIMEOUT, Executor, Placement, SubmitError};
use crate::cluster::observe::why_not_started;
use crate::cluster::observed_pod::ObservedPod;
use crate::render::{self, names};
use crate::state::{self, JobRunState};
use crate::time::micros_from_timestamp;
use kube::runtime::reflector::ObjectRef;
use sparkvc_proto::FailureReason;
use sparkvc_proto::v1 as pb;
use std::sync::Arc;
use std::time::Duration;

impl Executor {
    /// Fails a run that is still SUBMITTED after its job-start-timeout.
    pub(super) async fn check_start(&self, vc_id: &str, run_id: &str) -> Result<(), SubmitError> {
        let Some((run, at)) = self.run_and_placement(vc_id, run_id)? else {
            return Ok(());
        };
        let timeout = start_timeout(&run);
        let submitted_at = run
            .state_history
            .iter()
            .rev()
            .find(|t| t.state == JobRunState::Submitted.as_str())
            .and_then(|t| t.at.as_ref())
            .map(micros_from_timestamp);
        let Some(submitted_at) = submitted_at else {
            return Ok(());
        };
        let waited = Duration::from_micros(self.clock.now_micros().saturating_sub(submitted_at));
        // A run waiting out a retry's backoff is not late: its next attempt's
        // clock starts when that attempt is SUBMITTED.
        if state::state_of(&run) != JobRunState::Submitted
            || state::awaits_attempt(&run)
            || waited < timeout
        {
            return Ok(());
        }
        let (runner, driver) = self.cached_pods(&at, &run);
        let why = why_not_started(runner.as_deref(), driver.as_deref());
        self.take_down(&at, &run).await?;
        Err(SubmitError::Fatal {
            failure_reason: FailureReason::ClusterUnavailable,
            details: state::fit_details(&format!(
                "The job run did not start within its job-start-timeout of {} s: {why}.",
                timeout.as_secs()
            )),
        })
    }

    /// The job-runner and driver pods of a run's current attempt as the
    /// watch last saw them.
    pub(super) fn cached_pods(
        &self,
        at: &Placement,
        run: &pb::JobRun,
    ) -> (Option<Arc<ObservedPod>>, Option<Arc<ObservedPod>>) {
        let Some(cache) = self.lock_pods().get(&at.cluster).cloned() else {
            return (None, None);
        };
        let attempt = state::attempt_of(run);
        let attempt_name = names::attempt_name(&run.id, attempt);
        let get = |name: String| cache.get(&ObjectRef::new(&name).within(&at.namespace));
        let runner = get(names::job_runner_name(&attempt_name));
        let driver = get(names::driver_pod_name(&attempt_name));
        (runner, driver)
    }
}

/// The run's `job-start-timeout` (classification `emr-containers-defaults`).
pub(super) fn start_timeout(run: &pb::JobRun) -> Duration {
    render::classifications::parse_classifications(run.configuration_overrides.as_ref())
        .ok()
        .and_then(|c| c.containers_defaults.job_start_timeout_seconds)
        .map_or(DEFAULT_START_TIMEOUT, Duration::from_secs)
}
