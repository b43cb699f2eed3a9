//! The executor's work loop: plans steps from the open runs and keeps up to
//! [`STEPS_IN_FLIGHT`] of them going, [`PARALLEL`](super::PARALLEL) of them
//! at a time on the Kubernetes API.
//!
//! Why a pipeline and not passes: a pass ran its steps and waited for the
//! slowest before planning again, so under saturation every pass ended with
//! a tail of idle slots, and runs accepted during a pass waited for all of it.
//! Measured with `job-bench` at 245 runs/s offered, passes of 63 steps took
//! 0.8 s where one step took 0.3-0.4 s. Here a step starts as soon as a slot
//! frees; the next plan is made once the last one's steps have all started
//! (and something woke the executor, or that plan left runs waiting beyond
//! its share), leaving out the runs whose steps are still in flight, so no
//! run ever has two steps at once. A submission gives
//! its API slot back before its state is stored, so waiting for the disk
//! does not hold back the next run's requests.

use super::{Executor, PLAN_GAP, PLAN_SUBMISSIONS, RESYNC, STEPS_IN_FLIGHT, SubmitError};
use crate::cluster::queue::{self, OpenRun, Step};
use crate::state::JobRunState;
use crate::store::{StoreError, Timer};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// A step, as planned: what to do to which run, on which cluster.
#[derive(Debug, Clone)]
pub(super) struct Planned {
    pub(super) run: OpenRun,
    pub(super) step: Step,
    /// The Kubernetes cluster of the run's virtual cluster, if configured.
    cluster: Option<String>,
    /// The plan it belongs to, to tell when a plan is done.
    plan: u64,
}

/// What one planning of the open runs produced.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub(super) steps: Vec<Planned>,
    /// Some virtual cluster has runs it could submit beyond its share of
    /// this plan: plan again as soon as these steps have started.
    pub(super) cut_short: bool,
}

/// (virtual cluster ID, job run ID).
pub(super) type RunKey = (String, String);

fn key(run: &OpenRun) -> RunKey {
    (run.vc_id.clone(), run.run_id.clone())
}

/// How many steps of each plan are not finished yet, and whether one failed.
#[derive(Debug, Default)]
struct Plans {
    open: HashMap<u64, (usize, bool)>,
    next: u64,
}

impl Plans {
    fn start(&mut self, steps: usize) -> u64 {
        let id = self.next;
        self.next += 1;
        self.open.insert(id, (steps, false));
        id
    }

    /// A step of `plan` finished; true when it was the plan's last and none
    /// of them failed (a completed reconcile pass).
    fn finish(&mut self, plan: u64, failed: bool) -> bool {
        let Some((left, any_failed)) = self.open.get_mut(&plan) else {
            return false;
        };
        *left -= 1;
        *any_failed |= failed;
        if *left > 0 {
            return false;
        }
        let (_, any_failed) = self.open.remove(&plan).unwrap_or_default();
        !any_failed
    }
}

impl Executor {
    /// Plans and runs steps until the task is stopped.
    pub(super) async fn submission_loop(&self) {
        let mut backlog: VecDeque<Planned> = VecDeque::new();
        let mut busy: HashMap<RunKey, Step> = HashMap::new();
        let mut plans = Plans::default();
        let mut running = FuturesUnordered::new();
        let (mut plan_due, mut check_starts) = (true, true);
        let mut resync_at = Instant::now();
        let mut planned_at = Instant::now();
        loop {
            // See PLAN_GAP: while steps are in flight, plans are spaced out.
            let plan_at = if running.is_empty() {
                Instant::now()
            } else {
                planned_at + PLAN_GAP
            };
            if plan_due && backlog.is_empty() && plan_at <= Instant::now() {
                // Another instance holds every cluster's Lease: nothing to
                // do here but wait (every step would be held back anyway).
                if running.is_empty() && !self.fence.holds_any(self.clusters.ids()) {
                    tokio::select! {
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                    continue;
                }
                plan_due = false;
                planned_at = Instant::now();
                match self.plan(check_starts, &busy) {
                    Ok(plan) if plan.steps.is_empty() => {
                        self.metrics.reconcile_passes.inc();
                    }
                    Ok(Plan { steps, cut_short }) => {
                        plan_due = cut_short;
                        let plan = plans.start(steps.len());
                        backlog.extend(steps.into_iter().map(|p| Planned { plan, ..p }));
                    }
                    Err(err) => {
                        self.metrics.reconcile_error("store");
                        tracing::warn!(error = %err, "planning the open runs failed; retrying");
                    }
                }
                self.chores(check_starts).await;
                check_starts = false;
                resync_at = Instant::now() + self.until_next_retry();
            }
            while running.len() < STEPS_IN_FLIGHT
                && let Some(planned) = backlog.pop_front()
            {
                busy.insert(key(&planned.run), planned.step);
                running.push(async move {
                    let result = self.run_step(&planned).await;
                    (planned, result)
                });
            }
            tokio::select! {
                Some((planned, result)) = running.next(), if !running.is_empty() => {
                    let failed = match result {
                        Some(result) => self.finish_step(&planned, result).await.is_err(),
                        None => false, // held back
                    };
                    busy.remove(&key(&planned.run));
                    if plans.finish(planned.plan, failed) {
                        self.metrics.reconcile_passes.inc();
                    }
                }
                () = self.wake.notified() => plan_due = true,
                () = tokio::time::sleep_until(plan_at), if plan_due && backlog.is_empty() => {}
                () = tokio::time::sleep_until(resync_at) => {
                    plan_due = true;
                    check_starts = true;
                    // Until the plan is made: do not spin on a past deadline.
                    resync_at = Instant::now() + RESYNC;
                }
            }
        }
    }

    /// Timed work beside the plan: retried attempts that are due, deleted
    /// virtual clusters' namespaces, and (with the start checks) clean-up.
    async fn chores(&self, check_starts: bool) {
        if let Err(err) = self.run_due(Timer::Retry).await {
            self.metrics.reconcile_error("store");
            tracing::warn!(error = %err, "starting retried attempts failed; retrying");
        }
        if let Err(err) = self.tend_namespaces().await {
            self.metrics.reconcile_error("store");
            tracing::warn!(error = %err, "finishing virtual cluster deletions failed; retrying");
        }
        if check_starts && let Err(err) = self.run_due(Timer::Cleanup).await {
            self.metrics.reconcile_error("store");
            tracing::warn!(error = %err, "cleaning up finished runs failed; retrying");
        }
    }

    /// How long the loop may wait without a wake-up: until the next resync,
    /// or the next retried attempt if that is sooner.
    fn until_next_retry(&self) -> Duration {
        match self.store.next_due(Timer::Retry) {
            Ok(Some(due)) => {
                let wait = Duration::from_micros(due.saturating_sub(self.clock.now_micros()));
                wait.min(RESYNC)
            }
            Ok(None) | Err(_) => RESYNC,
        }
    }

    /// The steps for the open runs, leaving out the runs in `busy` (a step
    /// of theirs is still in flight). A busy PENDING run is being submitted:
    /// it holds its slot already.
    ///
    /// Reads only what it may act on: each virtual cluster's counts say
    /// how many slots are free, and the state index gives that many PENDING
    /// runs, oldest first, plus the CANCEL_PENDING ones (and the SUBMITTED
    /// ones for a start check). A cluster full of RUNNING runs costs
    /// nothing here, however many there are.
    ///
    /// Submissions are capped at [`PLAN_SUBMISSIONS`], shared evenly among
    /// the virtual clusters with runs waiting; cancellations and start
    /// checks are not capped.
    pub(super) fn plan(
        &self,
        check_starts: bool,
        busy: &HashMap<RunKey, Step>,
    ) -> Result<Plan, StoreError> {
        let mut submitting: HashMap<&str, usize> = HashMap::new();
        for ((vc_id, _), step) in busy {
            if *step == Step::Submit {
                *submitting.entry(vc_id.as_str()).or_default() += 1;
            }
        }
        // First what each virtual cluster may do, so that the submissions
        // can be shared among those with runs waiting.
        let mut clusters = Vec::new();
        for (vc_id, counts) in self.store.all_queue_counts() {
            let checks = if check_starts { counts.submitted } else { 0 };
            if counts.pending + counts.cancel_pending + checks <= 0 {
                continue;
            }
            let vc = self.store.virtual_cluster(&vc_id)?;
            let limit = vc
                .as_ref()
                .and_then(|vc| vc.scheduler_configuration)
                .and_then(|s| s.max_concurrent_job_runs)
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(queue::DEFAULT_MAX_CONCURRENT);
            let cluster = vc
                .and_then(|vc| vc.container_provider)
                .map(|provider| provider.id);
            // A submission whose SUBMITTED state is stored but whose step
            // has not finished counts twice for a moment: that only delays
            // the next submission, never lets one exceed the limit.
            let holding = usize::try_from(counts.holding()).unwrap_or(0)
                + submitting.get(vc_id.as_str()).copied().unwrap_or(0);
            let free = if counts.pending > 0 {
                queue::free_slots(limit, holding)
            } else {
                0
            };
            clusters.push((vc_id, cluster, free));
        }
        let waiting = clusters.iter().filter(|(_, _, free)| *free > 0).count();
        let share = PLAN_SUBMISSIONS.div_ceil(waiting.max(1));

        let mut plan = Plan::default();
        for (vc_id, cluster, free) in clusters {
            let mut wanted = vec![(JobRunState::CancelPending, Step::Cancel, usize::MAX)];
            if free > 0 {
                wanted.push((JobRunState::Pending, Step::Submit, free.min(share)));
            }
            if check_starts {
                wanted.push((JobRunState::Submitted, Step::CheckStart, usize::MAX));
            }
            for (state, step, most) in wanted {
                let mut taken = 0;
                for run_id in self.store.job_run_ids_in_state(&vc_id, state) {
                    let run_id = run_id?;
                    if busy.contains_key(&(vc_id.clone(), run_id.clone())) {
                        continue;
                    }
                    if taken == most {
                        // Only the share ran out, not the free slots.
                        plan.cut_short |= most < free;
                        break;
                    }
                    taken += 1;
                    plan.steps.push(Planned {
                        run: OpenRun {
                            vc_id: vc_id.clone(),
                            run_id,
                            state,
                        },
                        step,
                        cluster: cluster.clone(),
                        plan: 0,
                    });
                }
            }
        }
        Ok(plan)
    }

    /// Runs one step once an API slot is free; None if it was held back
    /// because this instance may not act on its cluster now (another holds
    /// the Lease, or the API server failed recently). Decided once the slot
    /// is taken, so that steps stop soon after the API server fails.
    async fn run_step(&self, planned: &Planned) -> Option<Result<(), SubmitError>> {
        let Planned { run, step, .. } = planned;
        let slot = self.kube_slot().await;
        if planned.cluster.as_deref().is_some_and(|c| {
            !self.fence.holds(c) || self.lock_backoff().waiting(c, self.clock.now())
        }) {
            return None;
        }
        Some(match step {
            // Gives the slot back before its state is stored.
            Step::Submit => self.submit_in(&run.vc_id, &run.run_id, slot).await,
            Step::Cancel => self.cancel(&run.vc_id, &run.run_id).await,
            Step::CheckStart => self.check_start(&run.vc_id, &run.run_id).await,
        })
    }

    /// What a finished step says about its cluster's API server, and what
    /// its outcome means for its run.
    async fn finish_step(
        &self,
        planned: &Planned,
        result: Result<(), SubmitError>,
    ) -> Result<(), StoreError> {
        if let Some(cluster) = &planned.cluster {
            let mut backoff = self.lock_backoff();
            match &result {
                Err(SubmitError::Retry(_)) => backoff.failed(cluster, self.clock.now()),
                // A start check usually only reads the store: its success
                // says nothing about the API server.
                Ok(()) if planned.step != Step::CheckStart => backoff.succeeded(cluster),
                _ => {}
            }
        }
        self.settle(&planned.run.vc_id, &planned.run.run_id, result)
            .await
    }

    /// One whole pass, as the tests drive the executor: plan, run every
    /// step and record their outcomes.
    #[cfg(test)]
    pub(super) async fn pass(&self, check_starts: bool) -> Result<(), StoreError> {
        let steps = self.plan(check_starts, &HashMap::new())?.steps;
        // Lazily started, so a step that starts after another failed sees
        // its cluster's backoff, as in the loop.
        let results = futures::stream::iter(steps)
            .map(|planned| async move {
                let result = self.run_step(&planned).await;
                (planned, result)
            })
            .buffer_unordered(STEPS_IN_FLIGHT);
        futures::pin_mut!(results);
        let mut first_error = None;
        while let Some((planned, result)) = results.next().await {
            if let Some(result) = result
                && let Err(err) = self.finish_step(&planned, result).await
            {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::Plans;

    #[test]
    fn a_plan_is_done_when_its_last_step_finishes_and_counts_only_without_failures() {
        let mut plans = Plans::default();
        let a = plans.start(2);
        let b = plans.start(1);
        assert!(!plans.finish(a, false));
        assert!(plans.finish(b, false));
        assert!(plans.finish(a, false));
        let c = plans.start(2);
        assert!(!plans.finish(c, true));
        assert!(!plans.finish(c, false), "a plan with a failed step");
        assert!(!plans.finish(c, false), "an unknown plan");
    }
}
