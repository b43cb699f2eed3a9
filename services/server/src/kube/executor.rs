//! Runs job runs on Kubernetes and keeps their state from what the cluster
//! reports.
//!
//! - Queue: each pass plans what to do with the open runs ([`queue`]): PENDING
//!   runs take their virtual cluster's free `maxConcurrentJobRuns` slots in
//!   submission order; the steps run up to [`PARALLEL`] at a time.
//! - Submission: a run is rendered (`render`) and its objects are created
//!   with deterministic names, so a retry or a restarted server never makes a
//!   second job-runner. The job-runner Job is the run's owner object: the
//!   ConfigMap and the driver pod are owned by it (executors by the driver),
//!   so deleting it garbage-collects the run. Objects shared by the runs of
//!   one role (service accounts, RoleBinding) are created once and then
//!   remembered for [`SHARED_OBJECT_TTL`]. Then PENDING → SUBMITTED.
//! - State: one pod watch per cluster (label `app.kubernetes.io/managed-by=sparkvc`)
//!   feeds a cache; every pod event re-evaluates that run with
//!   [`observe`](super::observe::observe).
//! - Start timeout: a run still SUBMITTED after its `job-start-timeout`
//!   (classification `emr-containers-defaults`, default 15 minutes) is taken
//!   down and fails, saying why its pods did not start.
//! - Cancellation: a CANCEL_PENDING run's Job and driver pod are deleted,
//!   then CANCELLED.
//! - Clean-up: when a run that reached Kubernetes ends, the same store
//!   transaction schedules the deletion of its Job (and so of its pods) for
//!   `finished_job_ttl` later; the record, its state history and log
//!   locations stay. Kept in the store, so a restart loses none.
//!
//! The store is the source of truth: the executor is woken when runs are
//! accepted, cancelled or end (a slot frees), and also re-reads the open runs
//! every few seconds, which resumes everything after a restart.

use super::Clusters;
use super::apply::{create_if_absent, delete_if_present};
use super::observe::{Observation, ObservedOutcome, observe, why_not_started};
use super::queue::{self, OpenRun, Step};
use super::templates::{TemplateError, TemplateReader};
use crate::control::{micros_from_timestamp, timestamp_from_micros};
use crate::ids::Clock;
use crate::metrics::Metrics;
use crate::release::Catalogue;
use crate::render::{self, JobRunInputs, RenderError, names};
use crate::state::{self, JobRunState, Outcome};
use crate::store::{Store, StoreError};
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use sparkvc_proto::v1 as pb;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How often the open runs are re-read even without a wake-up (and start
/// timeouts checked).
const RESYNC: Duration = Duration::from_secs(5);
/// How many submissions and cancellations are in flight at once.
pub const PARALLEL: usize = 16;
/// How long a shared object sparkvc created is trusted to still exist.
const SHARED_OBJECT_TTL: Duration = Duration::from_secs(600);
/// `job-start-timeout` when the run sets none (EMR's default).
const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(15 * 60);

#[derive(Debug)]
pub struct Executor {
    store: Store,
    clusters: Clusters,
    catalogue: Catalogue,
    /// Used for service-account names when a role ARN has no account.
    account_id: String,
    wake: Arc<Notify>,
    templates: TemplateReader,
    clock: Clock,
    /// The pod cache of each cluster's watch.
    pods: Mutex<HashMap<String, reflector::Store<Pod>>>,
    /// Shared objects known to exist: `cluster/namespace/kind/name` → when
    /// they were last created or found.
    shared_objects: Mutex<HashMap<String, Instant>>,
    metrics: Metrics,
    /// How long a finished run's pods are kept.
    finished_job_ttl: Duration,
}

/// Why a submission attempt stopped.
#[derive(Debug, thiserror::Error)]
enum SubmitError {
    /// The run cannot ever be submitted: it fails with this reason.
    #[error("{details}")]
    Fatal {
        failure_reason: &'static str,
        details: String,
    },
    /// A passing problem (the API server is away): try again later.
    #[error("{0}")]
    Retry(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<RenderError> for SubmitError {
    fn from(err: RenderError) -> Self {
        Self::Fatal {
            failure_reason: err.failure_reason(),
            details: err.state_details(),
        }
    }
}

fn kube_failure(what: &str, err: kube::Error) -> SubmitError {
    match &err {
        // The request itself is wrong: retrying will not help.
        kube::Error::Api(s) if matches!(s.code, 400 | 403 | 422) => SubmitError::Fatal {
            failure_reason: if s.code == 403 {
                "CLUSTER_UNAVAILABLE"
            } else {
                "INTERNAL_ERROR"
            },
            details: format!("Kubernetes refused to {what}: {}", s.message)
                .chars()
                .take(256)
                .collect(),
        },
        _ => SubmitError::Retry(format!("{what}: {err}")),
    }
}

fn role_account(role_arn: &str) -> Option<&str> {
    role_arn.split(':').nth(4).filter(|a| !a.is_empty())
}

impl Executor {
    pub fn new(
        store: Store,
        clusters: Clusters,
        catalogue: Catalogue,
        account_id: String,
        wake: Arc<Notify>,
        metrics: Metrics,
        finished_job_ttl: Duration,
    ) -> Self {
        Self {
            store,
            clusters,
            catalogue,
            account_id,
            wake,
            templates: TemplateReader::default(),
            clock: Clock::default(),
            pods: Mutex::default(),
            shared_objects: Mutex::default(),
            metrics,
            finished_job_ttl,
        }
    }

    /// Starts the submission loop and one pod watch per cluster.
    pub fn spawn(self: Arc<Self>) {
        for id in self.clusters.ids().map(str::to_string).collect::<Vec<_>>() {
            let (reader, writer) = reflector::store();
            self.lock_pods().insert(id.clone(), reader);
            let this = Arc::clone(&self);
            tokio::spawn(async move { this.watch_pods(id, writer).await });
        }
        tokio::spawn(async move { self.submission_loop().await });
    }

    fn lock_pods(&self) -> std::sync::MutexGuard<'_, HashMap<String, reflector::Store<Pod>>> {
        self.pods.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn submission_loop(&self) {
        let mut check_starts = true;
        loop {
            if let Err(err) = self.pass(check_starts).await {
                tracing::warn!(error = %err, "reconcile pass failed; retrying");
            }
            if check_starts && let Err(err) = self.clean_up_finished().await {
                self.metrics.reconcile_error("store");
                tracing::warn!(error = %err, "cleaning up finished runs failed; retrying");
            }
            check_starts = tokio::select! {
                () = self.wake.notified() => false,
                () = tokio::time::sleep(RESYNC) => true,
            };
        }
    }

    /// One pass over the open runs: plan the steps, then run them.
    async fn pass(&self, check_starts: bool) -> Result<(), StoreError> {
        let open: Vec<OpenRun> = self
            .store
            .open_job_runs()?
            .into_iter()
            .map(|(vc_id, run_id, state)| OpenRun {
                vc_id,
                run_id,
                state,
            })
            .collect();
        let mut limits = HashMap::new();
        let mut lookup_error = None;
        let steps = queue::plan(
            &open,
            |vc_id| {
                *limits.entry(vc_id.to_string()).or_insert_with(|| {
                    match self.store.virtual_cluster(vc_id) {
                        Ok(vc) => vc
                            .and_then(|vc| vc.scheduler_configuration)
                            .and_then(|s| s.max_concurrent_job_runs)
                            .and_then(|n| usize::try_from(n).ok())
                            .unwrap_or(queue::DEFAULT_MAX_CONCURRENT),
                        Err(err) => {
                            lookup_error = Some(err);
                            0
                        }
                    }
                })
            },
            check_starts,
        );
        if let Some(err) = lookup_error {
            return Err(err);
        }
        let results = futures::stream::iter(steps)
            .map(|(i, step)| {
                let run = &open[i];
                async move {
                    let result = match step {
                        Step::Submit => self.submit(&run.vc_id, &run.run_id).await,
                        Step::Cancel => self.cancel(&run.vc_id, &run.run_id).await,
                        Step::CheckStart => self.check_start(&run.vc_id, &run.run_id).await,
                    };
                    (run, result)
                }
            })
            .buffer_unordered(PARALLEL);
        futures::pin_mut!(results);
        let mut first_error = None;
        while let Some((run, result)) = results.next().await {
            if let Err(err) = self.settle(&run.vc_id, &run.run_id, result).await {
                first_error.get_or_insert(err);
            }
        }
        if first_error.is_none() {
            self.metrics.reconcile_passes.inc();
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Deletes the Jobs of finished runs whose TTL has passed.
    async fn clean_up_finished(&self) -> Result<(), StoreError> {
        let due = self.store.due_cleanups(self.clock.now_micros(), 256)?;
        let done = futures::stream::iter(due)
            .map(|cleanup| async move {
                let vc = self.store.virtual_cluster(&cleanup.vc_id)?;
                if let Some(at) = vc.as_ref().and_then(|vc| self.placement(vc))
                    && let Err(err) = self.take_down(&at, &cleanup.run_id).await
                {
                    self.metrics.reconcile_error("kubernetes");
                    tracing::warn!(job_run_id = %cleanup.run_id, error = %err, "deleting a finished run's pods failed; will retry");
                    return Ok(None);
                }
                tracing::debug!(job_run_id = %cleanup.run_id, "finished run's pods deleted");
                Ok::<_, StoreError>(Some(cleanup.key))
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
                    txn.remove_cleanup(key);
                }
                Ok(())
            })
            .await
    }

    /// Records what a step's failure means for its run.
    async fn settle(
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
                tracing::info!(job_run_id = %run_id, failure_reason, details, "job run failed");
                let outcome = Outcome {
                    details,
                    failure_reason: failure_reason.into(),
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
    async fn transition(
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
                txn.put_job_run(Some(before), &run);
                let reached_kubernetes = run
                    .state_history
                    .iter()
                    .any(|t| t.state == JobRunState::Submitted.as_str());
                if next.is_terminal() && reached_kubernetes {
                    let ttl = u64::try_from(self.finished_job_ttl.as_micros()).unwrap_or(u64::MAX);
                    txn.schedule_cleanup(now.saturating_add(ttl), vc_id, run_id);
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

    /// The virtual cluster's client and namespace, if it runs on a configured cluster.
    fn placement(&self, vc: &pb::VirtualCluster) -> Option<Placement> {
        let provider = vc.container_provider.as_ref()?;
        let client = self.clusters.get(&provider.id)?.clone();
        let namespace = provider.info.as_ref()?.eks_info.as_ref()?.namespace.clone();
        Some(Placement {
            cluster: provider.id.clone(),
            client,
            namespace,
        })
    }

    /// Creates an object shared by many runs unless it was created or found
    /// recently.
    async fn ensure_shared<K>(
        &self,
        at: &Placement,
        object: &K,
        what: &str,
    ) -> Result<(), SubmitError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::Serialize
            + serde::de::DeserializeOwned,
        K::DynamicType: Default,
    {
        let key = format!(
            "{}/{}/{}/{}",
            at.cluster,
            at.namespace,
            K::kind(&K::DynamicType::default()),
            object.meta().name.as_deref().unwrap_or_default()
        );
        let fresh = |objects: &HashMap<String, Instant>| {
            objects
                .get(&key)
                .is_some_and(|t| t.elapsed() < SHARED_OBJECT_TTL)
        };
        if fresh(
            &self
                .shared_objects
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        ) {
            return Ok(());
        }
        let kind = K::kind(&K::DynamicType::default()).to_string();
        self.metrics
            .kube(
                "create",
                &kind,
                create_if_absent::<K>(&at.client, &at.namespace, object),
            )
            .await
            .map_err(|e| kube_failure(what, e))?;
        self.shared_objects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, Instant::now());
        Ok(())
    }

    /// A run and where it runs; None if either is gone, or its virtual
    /// cluster is on no configured cluster (it has nowhere to run).
    fn run_and_placement(
        &self,
        vc_id: &str,
        run_id: &str,
    ) -> Result<Option<(pb::JobRun, Placement)>, StoreError> {
        let (Some(run), Some(vc)) = (
            self.store.job_run(vc_id, run_id)?,
            self.store.virtual_cluster(vc_id)?,
        ) else {
            return Ok(None);
        };
        Ok(self.placement(&vc).map(|at| (run, at)))
    }

    async fn submit(&self, vc_id: &str, run_id: &str) -> Result<(), SubmitError> {
        let Some((run, at)) = self.run_and_placement(vc_id, run_id)? else {
            return Ok(());
        };
        let (client, namespace) = (&at.client, at.namespace.as_str());
        let release =
            self.catalogue
                .resolve(&run.release_label)
                .map_err(|e| SubmitError::Fatal {
                    failure_reason: "VALIDATION_ERROR",
                    details: e.to_string(),
                })?;
        let files = render::pod_template_files(&run)?;
        let driver_template = self
            .templates
            .read("driver", files.driver.as_deref())
            .await?;
        let executor_template = self
            .templates
            .read("executor", files.executor.as_deref())
            .await?;
        let account_id = role_account(&run.execution_role_arn)
            .unwrap_or(&self.account_id)
            .to_string();
        let inputs = JobRunInputs {
            run: &run,
            namespace,
            account_id: &account_id,
            release,
            driver_template: driver_template.as_deref(),
            executor_template: executor_template.as_deref(),
            owner: None,
        };
        let rendered = render::render_job_run(&inputs)?;
        for sa in &rendered.service_accounts {
            self.ensure_shared::<ServiceAccount>(&at, sa, "create the job's service accounts")
                .await?;
        }
        self.ensure_shared::<RoleBinding>(
            &at,
            &rendered.role_binding,
            "bind the job's service accounts",
        )
        .await?;
        let job = self
            .metrics
            .kube(
                "create",
                "Job",
                create_if_absent::<Job>(client, namespace, &rendered.job),
            )
            .await
            .map_err(|e| kube_failure("create the job-runner Job", e))?;
        // The Job exists now, so it can own the rest of the run.
        let owner = OwnerReference {
            api_version: "batch/v1".into(),
            kind: "Job".into(),
            name: job.metadata.name.clone().unwrap_or_default(),
            uid: job.metadata.uid.clone().unwrap_or_default(),
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
        let outcome = Outcome {
            details: format!(
                "Job-runner {} created in namespace {namespace}.",
                names::job_name(run_id)
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
        } else {
            // Not PENDING any more. If it was cancelled meanwhile, take the
            // job-runner down again. Otherwise the pod watch got there first
            // (its job-runner already existed, e.g. from before a crash) and
            // the objects are the run's own: leave them.
            let now = self.store.job_run(vc_id, run_id)?;
            let cancelled = now
                .as_ref()
                .map(state::state_of)
                .is_some_and(|s| matches!(s, JobRunState::CancelPending | JobRunState::Cancelled));
            if cancelled {
                delete_if_present::<Job>(client, namespace, &names::job_name(run_id))
                    .await
                    .map_err(|e| {
                        SubmitError::Retry(format!("deleting a cancelled job-runner: {e}"))
                    })?;
            }
        }
        Ok(())
    }

    /// Deletes a run's job-runner and driver (the rest goes with them).
    async fn take_down(&self, at: &Placement, run_id: &str) -> Result<(), SubmitError> {
        let job_name = names::job_name(run_id);
        let job = delete_if_present::<Job>(&at.client, &at.namespace, &job_name);
        self.metrics
            .kube("delete", "Job", job)
            .await
            .map_err(|e| SubmitError::Retry(format!("deleting the job-runner: {e}")))?;
        let driver_name = names::driver_pod_name(run_id);
        let driver = delete_if_present::<Pod>(&at.client, &at.namespace, &driver_name);
        self.metrics
            .kube("delete", "Pod", driver)
            .await
            .map_err(|e| SubmitError::Retry(format!("deleting the driver: {e}")))
    }

    async fn cancel(&self, vc_id: &str, run_id: &str) -> Result<(), SubmitError> {
        let Some(vc) = self.store.virtual_cluster(vc_id)? else {
            return Ok(());
        };
        if let Some(at) = self.placement(&vc) {
            self.take_down(&at, run_id).await?;
        }
        let outcome = Outcome {
            details: "Job run cancelled by user.".into(),
            ..Default::default()
        };
        self.transition(vc_id, run_id, JobRunState::Cancelled, outcome)
            .await?;
        Ok(())
    }

    /// Fails a run that is still SUBMITTED after its job-start-timeout.
    async fn check_start(&self, vc_id: &str, run_id: &str) -> Result<(), SubmitError> {
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
        if state::state_of(&run) != JobRunState::Submitted || waited < timeout {
            return Ok(());
        }
        let (runner, driver) = self.cached_pods(&at, run_id);
        let why = why_not_started(runner.as_deref(), driver.as_deref());
        self.take_down(&at, run_id).await?;
        Err(SubmitError::Fatal {
            failure_reason: "CLUSTER_UNAVAILABLE",
            details: format!(
                "The job run did not start within its job-start-timeout of {} s: {why}.",
                timeout.as_secs()
            )
            .chars()
            .take(256)
            .collect(),
        })
    }

    /// A run's job-runner and driver pods as the watch last saw them.
    fn cached_pods(&self, at: &Placement, run_id: &str) -> (Option<Arc<Pod>>, Option<Arc<Pod>>) {
        let Some(cache) = self.lock_pods().get(&at.cluster).cloned() else {
            return (None, None);
        };
        let driver =
            cache.get(&ObjectRef::new(&names::driver_pod_name(run_id)).within(&at.namespace));
        let runner = cache.state().into_iter().find(|p| {
            let labels = p.metadata.labels.as_ref();
            p.metadata.namespace.as_deref() == Some(at.namespace.as_str())
                && labels
                    .and_then(|l| l.get(names::JOB_RUN_ID))
                    .map(String::as_str)
                    == Some(run_id)
                && labels
                    .and_then(|l| l.get(names::COMPONENT))
                    .map(String::as_str)
                    == Some(names::COMPONENT_JOB_RUNNER)
        });
        (runner, driver)
    }

    async fn watch_pods(&self, cluster: String, writer: reflector::store::Writer<Pod>) {
        let Some(client) = self.clusters.get(&cluster).cloned() else {
            return;
        };
        let Some(cache) = self.lock_pods().get(&cluster).cloned() else {
            return;
        };
        let pods: Api<Pod> = Api::all(client.clone());
        let config = watcher::Config::default().labels(&format!(
            "{}={}",
            names::MANAGED_BY,
            names::MANAGED_BY_SPARKVC
        ));
        let events = watcher(pods, config)
            .default_backoff()
            .reflect(writer)
            .applied_objects();
        futures::pin_mut!(events);
        while let Some(event) = events.next().await {
            let received = Instant::now();
            let pod = match event {
                Ok(pod) => pod,
                Err(err) => {
                    tracing::warn!(cluster, error = %err, "pod watch error; the watcher retries");
                    continue;
                }
            };
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            let (Some(vc_id), Some(run_id)) = (
                labels.get(names::VIRTUAL_CLUSTER_ID),
                labels.get(names::JOB_RUN_ID),
            ) else {
                continue;
            };
            let namespace = pod.metadata.namespace.clone().unwrap_or_default();
            // The driver decides when it exists; the job-runner matters only
            // while no driver does, so the pod of this event is enough.
            let driver =
                cache.get(&ObjectRef::new(&names::driver_pod_name(run_id)).within(&namespace));
            let is_runner = labels.get(names::COMPONENT).map(String::as_str)
                == Some(names::COMPONENT_JOB_RUNNER);
            let runner = is_runner.then_some(&pod);
            if let Err(err) = self
                .on_pods(
                    &client,
                    &namespace,
                    (vc_id, run_id),
                    (runner, driver.as_deref()),
                    received,
                )
                .await
            {
                tracing::warn!(job_run_id = %run_id, error = %err, "recording a state change failed");
            }
        }
    }

    /// Moves a run to what its pods say; `received` is when the watch
    /// event arrived (for the status-lag metric).
    async fn on_pods(
        &self,
        client: &kube::Client,
        namespace: &str,
        (vc_id, run_id): (&str, &str),
        (runner, driver): (Option<&Pod>, Option<&Pod>),
        received: Instant,
    ) -> Result<(), StoreError> {
        let Some(run) = self.store.job_run(vc_id, run_id)? else {
            return Ok(());
        };
        let current = state::state_of(&run);
        let observation = observe(current, runner, driver);
        if current == JobRunState::Pending && observation != Observation::Unchanged {
            // Its job-runner exists, so it was submitted: by this server
            // before it crashed between creating the objects and recording
            // SUBMITTED. Record that first, so the history tells the truth.
            let outcome = Outcome {
                details: format!(
                    "Job-runner {} found in namespace {namespace}.",
                    names::job_name(run_id)
                ),
                ..Default::default()
            };
            self.transition(vc_id, run_id, JobRunState::Submitted, outcome)
                .await?;
        }
        match observation {
            Observation::Unchanged => Ok(()),
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
                let driver_name = names::driver_pod_name(run_id);
                match self
                    .metrics
                    .kube("get", "Pod", pods.get_opt(&driver_name))
                    .await
                {
                    Ok(Some(_)) | Err(_) => Ok(()),
                    Ok(None) => {
                        let outcome = ObservedOutcome {
                            details: format!(
                                "The job-runner finished but the Spark driver {} does not exist.",
                                names::driver_pod_name(run_id)
                            ),
                            failure_reason: "INTERNAL_ERROR".into(),
                        };
                        if self
                            .transition(vc_id, run_id, JobRunState::Failed, outcome.into())
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
    }
}

/// Where a virtual cluster's runs go.
#[derive(Clone)]
struct Placement {
    cluster: String,
    client: kube::Client,
    namespace: String,
}

/// The run's `job-start-timeout` (classification `emr-containers-defaults`).
fn start_timeout(run: &pb::JobRun) -> Duration {
    render::spark_conf::parse_classifications(run.configuration_overrides.as_ref())
        .ok()
        .and_then(|c| c.containers_defaults.job_start_timeout_seconds)
        .map_or(DEFAULT_START_TIMEOUT, Duration::from_secs)
}

impl From<TemplateError> for SubmitError {
    fn from(err: TemplateError) -> Self {
        Self::Fatal {
            failure_reason: "USER_ERROR",
            details: err.to_string().chars().take(256).collect(),
        }
    }
}
