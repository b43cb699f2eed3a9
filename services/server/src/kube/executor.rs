//! Runs job runs on Kubernetes and keeps their state from what the cluster
//! reports.
//!
//! - Submission: every PENDING run of a virtual cluster on a configured
//!   cluster is rendered (`render`) and its objects are created with
//!   deterministic names, so a retry or a restarted server never makes a
//!   second job-runner. The job-runner Job is the run's owner object: the
//!   ConfigMap and the driver pod are owned by it (executors by the driver),
//!   so deleting it garbage-collects the run. Then PENDING → SUBMITTED.
//! - State: one pod watch per cluster (label `app.kubernetes.io/managed-by=sparkvc`)
//!   feeds a cache; every pod event re-evaluates that run with
//!   [`observe`](super::observe::observe).
//! - Cancellation: a CANCEL_PENDING run's Job and driver pod are deleted,
//!   then CANCELLED.
//!
//! The store is the source of truth: the executor is woken when runs are
//! accepted or cancelled, and also re-reads the open runs every few seconds,
//! which resumes everything after a restart.

use super::Clusters;
use super::apply::{create_if_absent, delete_if_present};
use super::observe::{Observation, ObservedOutcome, observe};
use super::templates::{TemplateError, TemplateReader};
use crate::control::timestamp_from_micros;
use crate::ids::Clock;
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
use kube::runtime::{WatchStreamExt, reflector, watcher};
use sparkvc_proto::v1 as pb;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How often the open runs are re-read even without a wake-up.
const RESYNC: Duration = Duration::from_secs(5);

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
    ) -> Self {
        Self {
            store,
            clusters,
            catalogue,
            account_id,
            wake,
            templates: TemplateReader::default(),
            clock: Clock::default(),
        }
    }

    /// Starts the submission loop and one pod watch per cluster.
    pub fn spawn(self: Arc<Self>) {
        for id in self.clusters.ids().map(str::to_string).collect::<Vec<_>>() {
            let this = Arc::clone(&self);
            tokio::spawn(async move { this.watch_pods(id).await });
        }
        tokio::spawn(async move { self.submission_loop().await });
    }

    async fn submission_loop(&self) {
        loop {
            if let Err(err) = self.pass().await {
                tracing::warn!(error = %err, "reconcile pass failed; retrying");
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(RESYNC) => {}
            }
        }
    }

    async fn pass(&self) -> Result<(), StoreError> {
        for (vc_id, run_id, state) in self.store.open_job_runs()? {
            let result = match state {
                JobRunState::Pending => self.submit(&vc_id, &run_id).await,
                JobRunState::CancelPending => self.cancel(&vc_id, &run_id).await,
                _ => Ok(()),
            };
            match result {
                Ok(()) => {}
                Err(SubmitError::Fatal {
                    failure_reason,
                    details,
                }) => {
                    tracing::info!(job_run_id = %run_id, failure_reason, details, "job run failed");
                    let outcome = Outcome {
                        details,
                        failure_reason: failure_reason.into(),
                    };
                    self.transition(&vc_id, &run_id, JobRunState::Failed, outcome)
                        .await?;
                }
                Err(SubmitError::Retry(why)) => {
                    tracing::warn!(job_run_id = %run_id, why, "job run not submitted yet; will retry");
                }
                Err(SubmitError::Store(err)) => return Err(err),
            }
        }
        Ok(())
    }

    /// Records a transition if the state machine allows it.
    async fn transition(
        &self,
        vc_id: &str,
        run_id: &str,
        next: JobRunState,
        outcome: Outcome,
    ) -> Result<bool, StoreError> {
        let at = timestamp_from_micros(self.clock.now_micros());
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
                Ok(true)
            })
            .await?;
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
    fn placement(&self, vc: &pb::VirtualCluster) -> Option<(kube::Client, String)> {
        let provider = vc.container_provider.as_ref()?;
        let client = self.clusters.get(&provider.id)?.clone();
        let namespace = provider.info.as_ref()?.eks_info.as_ref()?.namespace.clone();
        Some((client, namespace))
    }

    async fn submit(&self, vc_id: &str, run_id: &str) -> Result<(), SubmitError> {
        let (Some(run), Some(vc)) = (
            self.store.job_run(vc_id, run_id)?,
            self.store.virtual_cluster(vc_id)?,
        ) else {
            return Ok(());
        };
        // A virtual cluster on no configured cluster has nowhere to run.
        let Some((client, namespace)) = self.placement(&vc) else {
            return Ok(());
        };
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
            namespace: &namespace,
            account_id: &account_id,
            release,
            driver_template: driver_template.as_deref(),
            executor_template: executor_template.as_deref(),
            owner: None,
        };
        let rendered = render::render_job_run(&inputs)?;
        for sa in &rendered.service_accounts {
            create_if_absent::<ServiceAccount>(&client, &namespace, sa)
                .await
                .map_err(|e| kube_failure("create the job's service accounts", e))?;
        }
        create_if_absent::<RoleBinding>(&client, &namespace, &rendered.role_binding)
            .await
            .map_err(|e| kube_failure("bind the job's service accounts", e))?;
        let job = create_if_absent::<Job>(&client, &namespace, &rendered.job)
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
        create_if_absent::<ConfigMap>(&client, &namespace, &owned.config_map)
            .await
            .map_err(|e| kube_failure("create the job's ConfigMap", e))?;
        let outcome = Outcome {
            details: format!(
                "Job-runner {} created in namespace {namespace}.",
                names::job_name(run_id)
            ),
            ..Default::default()
        };
        if !self
            .transition(vc_id, run_id, JobRunState::Submitted, outcome)
            .await?
        {
            // Cancelled while we were creating it: take it down again.
            delete_if_present::<Job>(&client, &namespace, &names::job_name(run_id))
                .await
                .map_err(|e| SubmitError::Retry(format!("deleting a cancelled job-runner: {e}")))?;
        }
        Ok(())
    }

    async fn cancel(&self, vc_id: &str, run_id: &str) -> Result<(), SubmitError> {
        let Some(vc) = self.store.virtual_cluster(vc_id)? else {
            return Ok(());
        };
        if let Some((client, namespace)) = self.placement(&vc) {
            delete_if_present::<Job>(&client, &namespace, &names::job_name(run_id))
                .await
                .map_err(|e| SubmitError::Retry(format!("deleting the job-runner: {e}")))?;
            delete_if_present::<Pod>(&client, &namespace, &names::driver_pod_name(run_id))
                .await
                .map_err(|e| SubmitError::Retry(format!("deleting the driver: {e}")))?;
        }
        let outcome = Outcome {
            details: "Job run cancelled by user.".into(),
            ..Default::default()
        };
        self.transition(vc_id, run_id, JobRunState::Cancelled, outcome)
            .await?;
        Ok(())
    }

    async fn watch_pods(&self, cluster: String) {
        let Some(client) = self.clusters.get(&cluster).cloned() else {
            return;
        };
        let pods: Api<Pod> = Api::all(client.clone());
        let (cache, writer) = reflector::store();
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
            let of_run = |component: &str| {
                cache.state().into_iter().find(|p| {
                    let l = p.metadata.labels.as_ref();
                    p.metadata.namespace.as_deref() == Some(namespace.as_str())
                        && l.and_then(|l| l.get(names::JOB_RUN_ID)) == Some(run_id)
                        && l.and_then(|l| l.get(names::COMPONENT)).map(String::as_str)
                            == Some(component)
                })
            };
            let runner = of_run(names::COMPONENT_JOB_RUNNER);
            let driver = of_run(names::COMPONENT_DRIVER);
            if let Err(err) = self
                .on_pods(
                    &client,
                    &namespace,
                    vc_id,
                    run_id,
                    runner.as_deref(),
                    driver.as_deref(),
                )
                .await
            {
                tracing::warn!(job_run_id = %run_id, error = %err, "recording a state change failed");
            }
        }
    }

    async fn on_pods(
        &self,
        client: &kube::Client,
        namespace: &str,
        vc_id: &str,
        run_id: &str,
        runner: Option<&Pod>,
        driver: Option<&Pod>,
    ) -> Result<(), StoreError> {
        let Some(run) = self.store.job_run(vc_id, run_id)? else {
            return Ok(());
        };
        let current = state::state_of(&run);
        match observe(current, runner, driver) {
            Observation::Unchanged => Ok(()),
            Observation::Transition(next, outcome) => {
                // The driver can finish before RUNNING was ever seen.
                if next == JobRunState::Completed && current.can_become(JobRunState::Running) {
                    self.transition(vc_id, run_id, JobRunState::Running, Outcome::default())
                        .await?;
                }
                self.transition(vc_id, run_id, next, outcome.into())
                    .await
                    .map(|_| ())
            }
            Observation::DriverMissing => {
                // The cache may lag: ask the API server before failing the run.
                let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
                match pods.get_opt(&names::driver_pod_name(run_id)).await {
                    Ok(Some(_)) | Err(_) => Ok(()),
                    Ok(None) => {
                        let outcome = ObservedOutcome {
                            details: format!(
                                "The job-runner finished but the Spark driver {} does not exist.",
                                names::driver_pod_name(run_id)
                            ),
                            failure_reason: "INTERNAL_ERROR".into(),
                        };
                        self.transition(vc_id, run_id, JobRunState::Failed, outcome.into())
                            .await
                            .map(|_| ())
                    }
                }
            }
        }
    }
}

impl From<TemplateError> for SubmitError {
    fn from(err: TemplateError) -> Self {
        Self::Fatal {
            failure_reason: "USER_ERROR",
            details: err.to_string().chars().take(256).collect(),
        }
    }
}
