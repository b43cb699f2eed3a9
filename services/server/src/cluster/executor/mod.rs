//! Runs job runs on Kubernetes and keeps their state from what the cluster
//! reports.
//!
//! - Queue: the executor plans what to do with the open runs
//!   ([`queue`](super::queue)): PENDING runs take their virtual cluster's free
//!   `maxConcurrentJobRuns` slots in submission order. Up to [`PARALLEL`]
//!   steps call the Kubernetes API at once, and a step starts as soon as a
//!   slot frees ([`pipeline`]).
//! - Submission: a run is rendered (`render`) and its objects are created
//!   with deterministic names, so a retry or a restarted server never makes a
//!   second job-runner. The job-runner pod is the run's owner object: the
//!   ConfigMap and the driver pod are owned by it (executors by the driver),
//!   so deleting it garbage-collects the run. Objects shared by the runs of
//!   one role (service accounts, RoleBinding) are created once and then
//!   remembered for [`SHARED_OBJECT_TTL`]. Then PENDING → SUBMITTED.
//! - State: one pod watch per cluster (label `app.kubernetes.io/managed-by=sparkvc`)
//!   feeds a cache; every pod event re-evaluates that run with
//!   [`observe`](super::observe::observe).
//! - Retries ([`watch`]): when the driver of a run with attempts left
//!   (`retryPolicyConfiguration.maxAttempts`) fails or vanishes, the next
//!   attempt is scheduled in the store after a backoff (10 s, doubling, at
//!   most 6 minutes); when it is due, the failed attempt's job-runner and
//!   driver are deleted and the next attempt's objects created under names of
//!   their own (see `names::attempt_name`), and the run is SUBMITTED again.
//! - Failures: a Kubernetes error that may pass (the API server is away)
//!   leaves the run as it is for the next pass, and holds back further steps
//!   on that cluster for 1 s, doubling up to 30 s while errors go on
//!   ([`backoff`]); the pod watch has its own backoff and re-lists.
//! - Start timeout: a run still SUBMITTED after its `job-start-timeout`
//!   (classification `emr-containers-defaults`, default 15 minutes) is taken
//!   down and fails, saying why its pods did not start.
//! - Cancellation: a CANCEL_PENDING run's job-runner and driver pods are
//!   deleted, then CANCELLED.
//! - Clean-up: when a run that reached Kubernetes ends, the same store
//!   transaction schedules the deletion of its job-runner (and so of the
//!   rest of its objects) for `finished_job_ttl` later; the record, its state
//!   history and log locations stay. Kept in the store, so a restart loses
//!   none.
//!
//! The store is the source of truth: the executor is woken when runs are
//! accepted, cancelled or end (a slot frees), and also re-reads the open runs
//! every few seconds, which resumes everything after a restart.

mod backoff;
mod namespaces;
mod pipeline;
mod settle;
mod start_check;
mod submit;
mod take_down;
mod timers;
mod watch;

#[cfg(test)]
mod tests;

use super::Clusters;
use super::lease::Fence;
use super::observed_pod::ObservedPod;
use super::templates::{TemplateError, TemplateReader};
use crate::ids::Clock;
use crate::log_access::LogAccessChecker;
use crate::metrics::Metrics;
use crate::release::Catalogue;
use crate::render::RenderError;
use crate::render::tenancy::TenancyConfig;
use crate::state;
use crate::store::{Store, StoreError};
use backoff::ClusterBackoff;
use kube::runtime::reflector;
use sparkvc_proto::FailureReason;
use sparkvc_proto::v1 as pb;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How often the open runs are re-read even without a wake-up (and start
/// timeouts checked).
const RESYNC: Duration = Duration::from_secs(5);
/// How many steps call the Kubernetes API at once (creating a run's
/// objects, a cancellation, a start check). Each waits mostly on the API
/// server; with 16, a run waited 2.5-6 s from accepted to job-runner created
/// at 100 runs/s on the benchmark machine, with 64 1-2 s, for the same pods
/// per second.
pub const PARALLEL: usize = 64;
/// How many steps are in flight at once, counting those past their
/// Kubernetes requests that wait for their state to be stored: the store
/// write does not hold one of the [`PARALLEL`] slots.
const STEPS_IN_FLIGHT: usize = 4 * PARALLEL;
/// How many submissions one plan holds at most, shared evenly among the
/// virtual clusters with runs waiting; the next plan is made as soon as
/// they have all started (and [`PLAN_GAP`] has passed). A plan that held
/// every queued run (thousands after a restart while filling, or after one
/// tenant's burst) let nothing newer be planned until the cluster had taken
/// all of them: minutes for a cancellation or another tenant's run, and the
/// tenants served one after another in store order.
const PLAN_SUBMISSIONS: usize = 2 * PARALLEL;
/// The least time between two plans while steps are in flight. Every
/// StartJobRun wakes the executor, and each plan walks past the queued runs
/// already being submitted (up to [`STEPS_IN_FLIGHT`]) to reach the new
/// ones: at 180 runs/s that was one plan per run and a twentieth of the
/// server's CPU. An idle pipeline plans at once, so a lone run waits no
/// longer; a busy one picks up the runs that came meanwhile in one plan.
const PLAN_GAP: Duration = Duration::from_millis(20);
/// How long a shared object sparkvc created is trusted to still exist.
const SHARED_OBJECT_TTL: Duration = Duration::from_secs(600);
/// `job-start-timeout` when the run sets none (EMR's default).
const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The executor's fixed settings, from the server configuration.
#[derive(Debug, Clone)]
pub struct ExecutorSettings {
    /// Used for service-account names when a role ARN has no account.
    pub account_id: String,
    /// Where the log sidecars and the log access check write.
    pub region: String,
    /// How long a finished run's pods are kept.
    pub finished_job_ttl: Duration,
    /// Where runs write Spark event logs for the History Server, if set.
    pub event_log_dir: Option<String>,
    /// Directories on the server that local pod templates may come from.
    pub pod_template_dirs: Vec<std::path::PathBuf>,
    /// What each virtual cluster's namespace gets (Role, quota, limits).
    pub tenancy: TenancyConfig,
}

#[derive(Debug)]
pub struct Executor {
    store: Store,
    clusters: Clusters,
    catalogue: Catalogue,
    wake: Arc<Notify>,
    templates: TemplateReader,
    log_access: LogAccessChecker,
    clock: Clock,
    /// The pod cache of each cluster's watch.
    pods: Mutex<HashMap<String, reflector::Store<ObservedPod>>>,
    /// Shared objects known to exist: `cluster/namespace/virtual
    /// cluster/kind/name` → when they were last created or found.
    shared_objects: Mutex<HashMap<String, Duration>>,
    metrics: Metrics,
    settings: ExecutorSettings,
    /// Clusters whose API server failed recently, to hold steps back from.
    backoff: Mutex<ClusterBackoff>,
    /// Clusters this instance may act on (it holds their Lease).
    fence: Fence,
    /// The [`PARALLEL`] slots of the steps that call the Kubernetes API.
    kube_slots: tokio::sync::Semaphore,
}

/// The executor's tasks, as [`Executor::spawn`] started them.
#[derive(Debug)]
pub struct Running {
    tasks: tokio::task::JoinSet<()>,
}

impl Running {
    /// Stops every task and waits until they are gone. A step cut short is
    /// safe: each is idempotent and resumed from the store at the next
    /// start, and a store write already handed over still completes.
    pub async fn stop(mut self) {
        self.tasks.shutdown().await;
    }
}

/// Why a submission attempt stopped.
#[derive(Debug, thiserror::Error)]
enum SubmitError {
    /// The run cannot ever be submitted: it fails with this reason.
    #[error("{details}")]
    Fatal {
        failure_reason: FailureReason,
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
                FailureReason::ClusterUnavailable
            } else {
                FailureReason::InternalError
            },
            details: state::fit_details(&format!(
                "Kubernetes refused to {what}: {}",
                without_requester(&s.message)
            )),
        },
        _ => SubmitError::Retry(format!("{what}: {err}")),
    }
}

/// An API server refusal with its requester written "sparkvc": the user is
/// sparkvc's own identity, and it and its groups (often longer than the rest)
/// would push what the message ends with, the permission that is missing,
/// out of the 256 characters of `stateDetails`.
fn without_requester(message: &str) -> String {
    let mut text = message.replace('\n', " ");
    if let Some(start) = text.find(" (groups=[")
        && let Some(len) = text[start..].find("])")
    {
        text.replace_range(start..start + len + 2, "");
    }
    for prefix in ["User \"", "user \""] {
        if let Some(start) = text.find(prefix)
            && let Some(len) = text[start + prefix.len()..].find('"')
        {
            text.replace_range(start..start + prefix.len() + len + 1, "sparkvc");
            break;
        }
    }
    text
}

impl Executor {
    pub fn new(
        store: Store,
        clusters: Clusters,
        catalogue: Catalogue,
        wake: Arc<Notify>,
        metrics: Metrics,
        settings: ExecutorSettings,
    ) -> Self {
        Self {
            store,
            clusters,
            catalogue,
            wake,
            templates: TemplateReader::new(settings.pod_template_dirs.clone()),
            log_access: LogAccessChecker::default(),
            clock: Clock::default(),
            pods: Mutex::default(),
            shared_objects: Mutex::default(),
            metrics,
            settings,
            backoff: Mutex::default(),
            fence: Fence::default(),
            kube_slots: tokio::sync::Semaphore::new(PARALLEL),
        }
    }

    /// Acts on a cluster only while `fence` says this instance holds its
    /// Lease (see `cluster::lease`).
    pub fn with_fence(mut self, fence: Fence) -> Self {
        self.fence = fence;
        self
    }

    /// Reads `clock` instead of the system clock (tests move time by hand).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Starts the submission loop and one pod watch per cluster; stop them
    /// with [`Running::stop`] before the store closes.
    pub fn spawn(self: Arc<Self>) -> Running {
        let mut tasks = tokio::task::JoinSet::new();
        for id in self.clusters.ids().map(str::to_string).collect::<Vec<_>>() {
            let (reader, writer) = reflector::store();
            self.lock_pods().insert(id.clone(), reader);
            let this = Arc::clone(&self);
            tasks.spawn(async move { this.watch_pods(id, writer).await });
        }
        tasks.spawn(async move { self.submission_loop().await });
        Running { tasks }
    }

    /// Waits for one of the [`PARALLEL`] slots of Kubernetes API work.
    async fn kube_slot(&self) -> tokio::sync::SemaphorePermit<'_> {
        // Never closed, so acquiring only waits.
        self.kube_slots
            .acquire()
            .await
            .expect("the executor's semaphore is never closed")
    }

    fn lock_backoff(&self) -> std::sync::MutexGuard<'_, ClusterBackoff> {
        self.backoff.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_shared(&self) -> std::sync::MutexGuard<'_, HashMap<String, Duration>> {
        self.shared_objects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn lock_pods(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, reflector::Store<ObservedPod>>> {
        self.pods.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the virtual cluster's cluster is one this instance may not
    /// act on now (another holds its Lease).
    fn fenced_off(&self, vc_id: &str) -> bool {
        self.store
            .virtual_cluster(vc_id)
            .ok()
            .flatten()
            .and_then(|vc| vc.container_provider)
            .is_some_and(|p| !self.fence.holds(&p.id))
    }

    /// The virtual cluster's client and namespace, if it runs on a configured cluster.
    fn placement(&self, vc: &pb::VirtualCluster) -> Option<Placement> {
        let provider = vc.container_provider.as_ref()?;

        let client = self.clusters.get(&provider.id)?.clone();
        let namespace = provider.info.as_ref()?.eks_info.as_ref()?.namespace.clone();
        Some(Placement {
            job_pods: self.clusters.job_pods(&provider.id),
            cluster: provider.id.clone(),
            client,
            namespace,
            virtual_cluster_id: vc.id.clone(),
        })
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
}

/// Where a virtual cluster's runs go.
#[derive(Clone)]
struct Placement {
    cluster: String,
    client: kube::Client,
    namespace: String,
    /// The virtual cluster on that namespace. What the executor remembers
    /// about a namespace's objects is per virtual cluster: deleting one
    /// removes its service accounts, and a new virtual cluster on the same
    /// namespace must not trust that they still exist.
    virtual_cluster_id: String,
    /// The cluster's node selector and tolerations for job pods.
    job_pods: std::sync::Arc<crate::render::scheduling::JobPodScheduling>,
}

impl From<TemplateError> for SubmitError {
    fn from(err: TemplateError) -> Self {
        Self::Fatal {
            failure_reason: FailureReason::UserError,
            details: state::fit_details(&err.to_string()),
        }
    }
}
