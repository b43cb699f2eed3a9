//! Job-run state from the pod watch: every event of a sparkvc pod
//! re-evaluates its run with [`observe`], and a failed driver is retried
//! while the run's retry policy has attempts left.

use super::Executor;
use crate::cluster::observe::{Observation, ObservedOutcome, observe, wants_driver_log};
use crate::cluster::observed_pod::{ObservedPod, observed_event};
use crate::render::names;
use crate::state::{self, JobRunState, Outcome};
use crate::store::{StoreError, Timer};
use crate::time::timestamp_from_micros;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher::Event;
use kube::runtime::{WatchStreamExt, watcher};
use sparkvc_proto::FailureReason;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// Pod events are handled by this many workers, each owning the runs whose
/// ID hashes to it. Their store writes share flushes (group commit), so more
/// workers mean more runs updated per fsync.
const EVENT_SHARDS: usize = 32;
/// Events a worker may have waiting before the watch itself waits.
const SHARD_QUEUE: usize = 1024;

/// The (virtual cluster ID, job run ID) a sparkvc pod belongs to.
fn run_of(pod: &ObservedPod) -> Option<(&str, &str)> {
    Some((
        pod.virtual_cluster_id.as_deref()?,
        pod.job_run_id.as_deref()?,
    ))
}

/// Applies a watch event to the pod cache and returns the pods whose runs
/// it gives news of.
///
/// The pods of a (re-)list are not handed on one by one: until it is done
/// the cache still holds what was there before (nothing, after a restart),
/// so a driver listed before its job-runner, or a job-runner before its
/// driver, would be judged without the other. Once the list is complete,
/// every cached pod is handed on; a re-list means events may have been
/// missed, so each run is looked at again.
fn apply_event(
    event: Event<ObservedPod>,
    writer: &mut reflector::store::Writer<ObservedPod>,
    cache: &reflector::Store<ObservedPod>,
) -> Vec<Arc<ObservedPod>> {
    writer.apply_watcher_event(&event);
    match event {
        Event::Apply(pod) => vec![Arc::new(pod)],
        Event::InitDone => cache.state(),
        Event::Init | Event::InitApply(_) | Event::Delete(_) => vec![],
    }
}

fn shard_of(run_id: &str) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    run_id.hash(&mut hasher);
    (hasher.finish() % EVENT_SHARDS as u64) as usize
}

/// How much of a failed driver's log is read for its error, and for how
/// long at most: Spark's shutdown after the error logs some 20 lines.
const DRIVER_LOG_LINES: i64 = 200;
/// A cap on memory only: the window starts 200 lines from the end, so a
/// cut would lose the end, which a log of sane lines never reaches.
const DRIVER_LOG_BYTES: i64 = 1 << 20;
const DRIVER_LOG_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What a failed attempt leads to.
enum AfterFailure {
    /// The event is about an attempt that is already dealt with.
    Stale,
    /// The next attempt is scheduled.
    Retried,
    /// No attempt is left (or the failure is not the driver's): the run fails.
    Fail { attempt: u32, max: u32 },
}

impl Executor {
    /// Follows the cluster's sparkvc pods. Events are handed to
    /// [`EVENT_SHARDS`] workers by job run: one run's events stay in order,
    /// while different runs proceed side by side, so a slow store write or
    /// API call for one run does not hold up the status of every other.
    pub(super) async fn watch_pods(
        self: Arc<Self>,
        cluster: String,
        mut writer: reflector::store::Writer<ObservedPod>,
    ) {
        let Some(client) = self.clusters.get(&cluster).cloned() else {
            return;
        };
        let Some(cache) = self.lock_pods().get(&cluster).cloned() else {
            return;
        };
        // Owned by this task: when it is stopped (at shutdown), so are they.
        let mut workers = tokio::task::JoinSet::new();
        let shards: Vec<mpsc::Sender<(Arc<ObservedPod>, Instant)>> = (0..EVENT_SHARDS)
            .map(|_| {
                let (tx, rx) = mpsc::channel(SHARD_QUEUE);
                let this = Arc::clone(&self);
                let (client, cache) = (client.clone(), cache.clone());
                workers.spawn(async move { this.handle_events(&client, &cache, rx).await });
                tx
            })
            .collect();
        let pods: Api<Pod> = Api::all(client.clone());
        let config = watcher::Config::default().labels(&format!(
            "{}={}",
            names::MANAGED_BY,
            names::MANAGED_BY_SPARKVC
        ));
        let events = watcher(pods, config)
            .default_backoff()
            // The cache holds every sparkvc pod until its run's TTL passes:
            // only what the state is read from is kept.
            .map_ok(observed_event);
        futures::pin_mut!(events);
        while let Some(event) = events.next().await {
            let received = Instant::now();
            let event = match event {
                Ok(event) => event,
                Err(err) => {
                    tracing::warn!(cluster, error = %err, "pod watch error; the watcher retries");
                    continue;
                }
            };
            // The cache first, so that a worker finds the pod of its event.
            for pod in apply_event(event, &mut writer, &cache) {
                let Some((_, run_id)) = run_of(&pod) else {
                    continue;
                };
                let shard = &shards[shard_of(run_id)];
                if shard.send((pod, received)).await.is_err() {
                    tracing::error!(cluster, "a pod event worker stopped; the pod watch ends");
                    return;
                }
            }
        }
    }

    /// One shard's events, in the order the watch delivered them.
    async fn handle_events(
        &self,
        client: &kube::Client,
        cache: &reflector::Store<ObservedPod>,
        mut events: mpsc::Receiver<(Arc<ObservedPod>, Instant)>,
    ) {
        while let Some((pod, received)) = events.recv().await {
            // The watch sends only pods that have both labels.
            let Some((vc_id, run_id)) = run_of(&pod) else {
                continue;
            };
            if let Err(err) = self
                .on_pod(client, cache, &pod, (vc_id, run_id), received)
                .await
            {
                tracing::warn!(job_run_id = %run_id, error = %err, "recording a state change failed");
            }
        }
    }

    /// Moves a run to what the pods of its current attempt say; `received`
    /// is when the watch event arrived (for the status-lag metric).
    pub(super) async fn on_pod(
        &self,
        client: &kube::Client,
        cache: &reflector::Store<ObservedPod>,
        pod: &ObservedPod,
        (vc_id, run_id): (&str, &str),
        received: Instant,
    ) -> Result<(), StoreError> {
        let Some(run) = self.store.job_run(vc_id, run_id)? else {
            return Ok(());
        };
        let attempt = state::attempt_of(&run);
        if pod.attempt != attempt {
            // A late event of an attempt that failed and was replaced.
            return Ok(());
        }
        let namespace = pod.namespace.as_str();
        let attempt_name = names::attempt_name(run_id, attempt);
        // The driver decides when it exists; the job-runner matters only
        // while no driver does, so the pod of this event is enough.
        let driver =
            cache.get(&ObjectRef::new(&names::driver_pod_name(&attempt_name)).within(namespace));
        let driver = driver.as_deref();
        let is_runner = pod.component.as_deref() == Some(names::COMPONENT_JOB_RUNNER);
        let runner = is_runner.then_some(pod);
        // A run waiting for its next attempt is, for that attempt, SUBMITTED.
        let current = match state::state_of(&run) {
            JobRunState::Running if state::awaits_attempt(&run) => JobRunState::Submitted,
            current => current,
        };
        if let Some(app_id) = driver
            .and_then(|d| d.spark_app_selector.as_deref())
            .filter(|id| *id != run.spark_application_id)
        {
            self.record_app_id((vc_id, run_id), app_id).await?;
        }
        let driver_log = match driver {
            Some(d) if wants_driver_log(current, d) => {
                self.driver_log_tail(client, namespace, &names::driver_pod_name(&attempt_name))
                    .await
            }
            _ => None,
        };
        let observation = observe(current, runner, driver, driver_log.as_deref());
        if observation != Observation::Unchanged {
            self.record_found_attempt(&run, namespace, &attempt_name)
                .await?;
        }
        // Only a driver that existed is retried: spark-submit failing before
        // one did (bad arguments, no permission) would fail the same again.
        let drivers_failure = driver.is_some() || current == JobRunState::Running;
        match observation {
            Observation::Unchanged => Ok(()),
            Observation::Transition(JobRunState::Failed, outcome) => {
                self.fail_or_retry((vc_id, run_id), attempt, outcome, drivers_failure, received)
                    .await
            }
            Observation::Transition(next, outcome) => {
                // The driver can finish before RUNNING was ever seen.
                if next == JobRunState::Completed && current.can_become(JobRunState::Running) {
                    self.transition(vc_id, run_id, JobRunState::Running, Outcome::default())
                        .await?;
                }
                let changed = self.transition(vc_id, run_id, next, outcome.into()).await?;
                if changed && next.is_terminal() {
                    self.metrics
                        .status_lag
                        .observe(received.elapsed().as_secs_f64());
                }
                Ok(())
            }
            Observation::DriverMissing => {
                // The cache may lag: ask the API server before failing the run.
                let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
                let driver_name = names::driver_pod_name(&attempt_name);
                match self
                    .metrics
                    .kube("get", "Pod", pods.get_opt(&driver_name))
                    .await
                {
                    Ok(Some(_)) | Err(_) => Ok(()),
                    Ok(None) => {
                        let outcome = ObservedOutcome {
                            details: format!(
                                "The job-runner finished but the Spark driver {driver_name} does not exist."
                            ),
                            failure_reason: Some(FailureReason::InternalError),
                        };
                        // A driver deleted while it ran is a driver failure.
                        self.fail_or_retry((vc_id, run_id), attempt, outcome, true, received)
                            .await
                    }
                }
            }
        }
    }

    /// The end of a failed driver's log, where its error is (see
    /// [`crate::cluster::observe::error_in_log`]); None if it cannot be read
    /// soon, since the run fails either way and only the details would say
    /// less.
    async fn driver_log_tail(
        &self,
        client: &kube::Client,
        namespace: &str,
        driver_name: &str,
    ) -> Option<String> {
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let params = LogParams {
            container: Some(names::DRIVER_CONTAINER.into()),
            tail_lines: Some(DRIVER_LOG_LINES),
            limit_bytes: Some(DRIVER_LOG_BYTES),
            ..LogParams::default()
        };
        let read = self
            .metrics
            .kube("get", "Pod/log", pods.logs(driver_name, &params));
        match tokio::time::timeout(DRIVER_LOG_TIMEOUT, read).await {
            Ok(Ok(log)) => Some(log),
            Ok(Err(e)) => {
                tracing::debug!(driver = driver_name, error = %e, "cannot read the failed driver's log");
                None
            }
            Err(_) => None,
        }
    }

    /// Records the Spark application ID of the run's driver (for its app UI).
    async fn record_app_id(
        &self,
        (vc_id, run_id): (&str, &str),
        app_id: &str,
    ) -> Result<(), StoreError> {
        self.store
            .write(|txn| -> Result<(), StoreError> {
                if let Some(mut run) = txn.job_run(vc_id, run_id)? {
                    run.spark_application_id = app_id.to_string();
                    let state = state::state_of(&run);
                    txn.put_job_run(Some(state), &run)?;
                }
                Ok(())
            })
            .await
    }

    /// The pods of a run's attempt exist but the store does not say it was
    /// started: the server created them and crashed before recording it.
    /// Record it first, so the history tells the truth.
    async fn record_found_attempt(
        &self,
        run: &sparkvc_proto::v1::JobRun,
        namespace: &str,
        attempt_name: &str,
    ) -> Result<(), StoreError> {
        let (vc_id, run_id) = (run.virtual_cluster_id.as_str(), run.id.as_str());
        let runner = names::job_runner_name(attempt_name);
        if state::state_of(run) == JobRunState::Pending {
            let outcome = Outcome {
                details: format!("Job-runner {runner} found in namespace {namespace}."),
                ..Default::default()
            };
            self.transition(vc_id, run_id, JobRunState::Submitted, outcome)
                .await?;
        } else if state::awaits_attempt(run) {
            let details = format!(
                "Attempt {} of {}: job-runner {runner} found in namespace {namespace}.",
                state::attempt_of(run),
                state::max_attempts(run)
            );
            self.begin_attempt(vc_id, run_id, details).await?;
        }
        Ok(())
    }

    /// Attempt `attempt` of a run failed with `outcome`: schedule the next
    /// attempt if the failure is the driver's and the retry policy has one
    /// left; otherwise the run fails with this attempt's reason.
    async fn fail_or_retry(
        &self,
        (vc_id, run_id): (&str, &str),
        attempt: u32,
        outcome: ObservedOutcome,
        drivers_failure: bool,
        received: Instant,
    ) -> Result<(), StoreError> {
        let now = self.clock.now_micros();
        let backoff = state::retry_backoff(attempt);
        let due = now.saturating_add(u64::try_from(backoff.as_micros()).unwrap_or(u64::MAX));
        let after = self
            .store
            .write(|txn| -> Result<AfterFailure, StoreError> {
                let Some(mut run) = txn.job_run(vc_id, run_id)? else {
                    return Ok(AfterFailure::Stale);
                };
                if state::attempt_of(&run) != attempt || state::awaits_attempt(&run) {
                    return Ok(AfterFailure::Stale);
                }
                let max = state::max_attempts(&run);
                let before = state::state_of(&run);
                if drivers_failure
                    && state::schedule_attempt(
                        &mut run,
                        attempt,
                        &outcome.details,
                        timestamp_from_micros(now),
                        timestamp_from_micros(due),
                    )
                {
                    txn.put_job_run(Some(before), &run)?;
                    txn.schedule(Timer::Retry, due, vc_id, run_id);
                    return Ok(AfterFailure::Retried);
                }
                Ok(AfterFailure::Fail { attempt, max })
            })
            .await?;
        match after {
            AfterFailure::Stale => Ok(()),
            AfterFailure::Retried => {
                tracing::info!(
                    virtual_cluster_id = vc_id,
                    job_run_id = run_id,
                    attempt,
                    backoff_seconds = backoff.as_secs(),
                    details = outcome.details,
                    "job run attempt failed; retrying"
                );
                // Let the executor re-plan its sleep around the new timer.
                self.wake.notify_one();
                Ok(())
            }
            AfterFailure::Fail { attempt, max } => {
                let mut outcome: Outcome = outcome.into();
                if max > 1 {
                    outcome.details = state::fit_details(&format!(
                        "Attempt {attempt} of {max} failed: {}",
                        outcome.details
                    ));
                }
                if self
                    .transition(vc_id, run_id, JobRunState::Failed, outcome)
                    .await?
                {
                    self.metrics
                        .status_lag
                        .observe(received.elapsed().as_secs_f64());
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str) -> ObservedPod {
        ObservedPod {
            name: name.into(),
            namespace: "ns".into(),
            ..ObservedPod::default()
        }
    }

    fn names_of(pods: &[Arc<ObservedPod>]) -> Vec<&str> {
        let mut names: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        names
    }

    /// After a restart the list brings a running driver whose run the store
    /// still has SUBMITTED: judged before the list was complete, it was not
    /// yet in the cache and its run stayed SUBMITTED.
    #[test]
    fn listed_pods_are_handed_on_once_the_list_is_complete() {
        let (cache, mut writer) = reflector::store::<ObservedPod>();
        assert!(apply_event(Event::Init, &mut writer, &cache).is_empty());
        for name in ["spark-r-driver", "r-runner"] {
            let handed = apply_event(Event::InitApply(pod(name)), &mut writer, &cache);
            assert!(handed.is_empty(), "{name} handed on before the list ended");
        }
        let handed = apply_event(Event::InitDone, &mut writer, &cache);
        assert_eq!(names_of(&handed), ["r-runner", "spark-r-driver"]);
        let driver = ObjectRef::new("spark-r-driver").within("ns");
        assert!(
            cache.get(&driver).is_some(),
            "cached before it is handed on"
        );

        let handed = apply_event(Event::Apply(pod("other")), &mut writer, &cache);
        assert_eq!(names_of(&handed), ["other"]);
        let handed = apply_event(Event::Delete(pod("other")), &mut writer, &cache);
        assert!(handed.is_empty());
    }
}
