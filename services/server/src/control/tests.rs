//! The control plane's operations on a real store, with the clusters faked
//! behind [`ClusterAccess`]: what each call stores and answers, and that
//! nothing in `control` needs a cluster to decide it.

use super::*;
use crate::ids::ManualTime;
use crate::state::{self, JobRunState};
use futures::future::BoxFuture;
use sparkvc_proto::v1 as pb;
use std::collections::BTreeMap;

const TESTER: &str = "arn:aws:iam::123456789012:user/tester";

const CLUSTER: &str = "local";

/// Clusters as the control plane sees them: each namespace's answer is
/// scripted; an unscripted namespace is fine.
#[derive(Debug, Default)]
struct FakeClusters {
    ids: Vec<String>,
    refusals: BTreeMap<String, NamespaceRefusal>,
}

impl ClusterAccess for FakeClusters {
    fn cluster_ids(&self) -> Vec<String> {
        self.ids.clone()
    }

    fn check_namespace<'a>(
        &'a self,
        _cluster: &'a str,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<(), NamespaceRefusal>> {
        let answer = match self.refusals.get(namespace) {
            Some(NamespaceRefusal::Unusable(why)) => Err(NamespaceRefusal::Unusable(why.clone())),
            Some(NamespaceRefusal::Unreachable(why)) => {
                Err(NamespaceRefusal::Unreachable(why.clone()))
            }
            None => Ok(()),
        };
        Box::pin(async move { answer })
    }
}

struct Harness {
    control: ControlPlane,
    wake: Arc<Notify>,
    _dir: tempfile::TempDir,
}

fn control_plane(clusters: FakeClusters) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let wake = Arc::new(Notify::new());
    let control = ControlPlane::new(ControlPlaneParts {
        store: Store::open(&dir.path().join("store")).unwrap(),
        catalogue: Catalogue::builtin(),
        identity: Identity {
            arns: ArnBuilder {
                partition: "aws".into(),
                region: "us-east-1".into(),
                account_id: "123456789012".into(),
            },
        },
        clusters: Arc::new(clusters),
        wake: wake.clone(),
    })
    .with_clock(Clock::manual(&ManualTime::new(1_767_225_600_000_000)));
    Harness {
        control,
        wake,
        _dir: dir,
    }
}

fn on_kubernetes() -> Harness {
    control_plane(FakeClusters {
        ids: vec![CLUSTER.into()],
        ..Default::default()
    })
}

fn create_request(namespace: &str, token: &str) -> pb::CreateVirtualClusterRequest {
    pb::CreateVirtualClusterRequest {
        name: format!("vc-{namespace}"),
        container_provider: Some(pb::ContainerProvider {
            r#type: "EKS".into(),
            id: CLUSTER.into(),
            info: Some(pb::ContainerInfo {
                eks_info: Some(pb::EksInfo {
                    namespace: namespace.into(),
                    node_label: String::new(),
                }),
            }),
        }),
        client_token: token.into(),
        ..Default::default()
    }
}

fn start_request(vc_id: &str, token: &str) -> pb::StartJobRunRequest {
    pb::StartJobRunRequest {
        name: "pi".into(),
        virtual_cluster_id: vc_id.into(),
        client_token: token.into(),
        execution_role_arn: "arn:aws:iam::123456789012:role/SparkJobRole".into(),
        release_label: "emr-7.9.0-latest".into(),
        job_driver: Some(pb::JobDriver {
            spark_submit_job_driver: Some(pb::SparkSubmitJobDriver {
                entry_point: "local:///opt/pi.py".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl Harness {
    async fn create(&self, namespace: &str) -> String {
        self.control
            .create_virtual_cluster(create_request(namespace, &format!("t-{namespace}")))
            .await
            .unwrap()
            .id
    }

    async fn start(&self, vc_id: &str, token: &str) -> String {
        self.control
            .start_job_run(start_request(vc_id, token), TESTER)
            .await
            .unwrap()
            .id
    }

    fn run(&self, vc_id: &str, id: &str) -> pb::JobRun {
        self.control.describe_job_run(vc_id, id).unwrap()
    }

    fn vc_state(&self, id: &str) -> String {
        self.control.describe_virtual_cluster(id).unwrap().state
    }

    /// What the executor does when it hands a run to Kubernetes.
    async fn submitted(&self, vc_id: &str, id: &str) {
        let at = timestamp_from_micros(self.control.clock.now_micros());
        self.control
            .store
            .write(|txn| -> ApiResult<()> {
                let mut run = txn.job_run(vc_id, id)?.unwrap();
                assert!(state::transition(
                    &mut run,
                    JobRunState::Submitted,
                    Default::default(),
                    at
                ));
                txn.put_job_run(Some(JobRunState::Pending), &run)?;
                Ok(())
            })
            .await
            .unwrap();
    }
}

fn message(err: ApiError) -> (&'static str, String) {
    let kind = err.aws_type();
    (kind, err.to_string())
}

#[tokio::test]
async fn a_namespace_that_cannot_hold_a_virtual_cluster_is_refused_and_nothing_is_stored() {
    let h = control_plane(FakeClusters {
        ids: vec![CLUSTER.into()],
        refusals: BTreeMap::from([
            (
                "missing".into(),
                NamespaceRefusal::Unusable("Namespace missing does not exist".into()),
            ),
            (
                "far".into(),
                NamespaceRefusal::Unreachable("cluster local could not be reached".into()),
            ),
        ]),
    });
    let refused = h
        .control
        .create_virtual_cluster(create_request("missing", "a"))
        .await
        .unwrap_err();
    assert_eq!(
        message(refused),
        (
            "ValidationException",
            "Namespace missing does not exist".into()
        )
    );
    let away = h
        .control
        .create_virtual_cluster(create_request("far", "b"))
        .await
        .unwrap_err();
    assert_eq!(message(away).0, "InternalServerException");

    let mut elsewhere = create_request("fine", "c");
    elsewhere.container_provider.as_mut().unwrap().id = "other".into();
    let (kind, text) = message(
        h.control
            .create_virtual_cluster(elsewhere)
            .await
            .unwrap_err(),
    );
    assert_eq!(kind, "ValidationException");
    assert!(text.contains("known clusters: local"), "{text}");

    let listed = h
        .control
        .list_virtual_clusters(&Default::default())
        .unwrap();
    assert!(listed.virtual_clusters.is_empty());
}

#[tokio::test]
async fn a_namespace_holds_one_virtual_cluster_until_the_executor_terminates_it() {
    let h = on_kubernetes();
    let vc = h.create("team-a").await;
    assert_eq!(h.vc_state(&vc), "RUNNING");
    let (kind, text) = message(
        h.control
            .create_virtual_cluster(create_request("team-a", "other-token"))
            .await
            .unwrap_err(),
    );
    assert_eq!(kind, "ValidationException");
    assert!(
        text.contains("already exists in the given namespace"),
        "{text}"
    );

    let pending = h.start(&vc, "r1").await;
    let submitted = h.start(&vc, "r2").await;
    h.submitted(&vc, &submitted).await;
    h.control.delete_virtual_cluster(&vc).await.unwrap();
    // The reply comes before any pod is gone: TERMINATING, and every open
    // run marked for the executor to cancel (a PENDING one too, since the
    // executor may be creating its job-runner right now).
    assert_eq!(h.vc_state(&vc), "TERMINATING");
    assert_eq!(h.run(&vc, &pending).state, "CANCEL_PENDING");
    assert_eq!(h.run(&vc, &submitted).state, "CANCEL_PENDING");
    assert!(h.run(&vc, &pending).state_details.contains("was deleted"),);
    let refused = h
        .control
        .start_job_run(start_request(&vc, "r3"), TESTER)
        .await;
    assert!(
        message(refused.unwrap_err())
            .1
            .contains("accepts no new job runs")
    );
    // Still the namespace's owner until TERMINATED.
    assert!(
        h.control
            .create_virtual_cluster(create_request("team-a", "third"))
            .await
            .is_err()
    );
    // A repeated delete changes nothing.
    h.control.delete_virtual_cluster(&vc).await.unwrap();
    assert_eq!(h.vc_state(&vc), "TERMINATING");
}

#[tokio::test]
async fn api_only_deletion_is_immediate_and_frees_the_namespace() {
    let h = control_plane(FakeClusters::default());
    let vc = h.create("team-a").await;
    let run = h.start(&vc, "r1").await;
    h.control.delete_virtual_cluster(&vc).await.unwrap();
    assert_eq!(h.vc_state(&vc), "TERMINATED");
    let run = h.run(&vc, &run);
    assert_eq!(run.state, "CANCELLED");
    assert!(run.finished_at.is_some());
    // A new virtual cluster (a new client token) may take the namespace.
    let again = h
        .control
        .create_virtual_cluster(create_request("team-a", "second"))
        .await
        .unwrap()
        .id;
    assert_ne!(again, vc);
}

#[tokio::test]
async fn cancelling_a_run_depends_on_how_far_it_got() {
    let h = on_kubernetes();
    let vc = h.create("team-a").await;
    let pending = h.start(&vc, "r1").await;
    let submitted = h.start(&vc, "r2").await;
    h.submitted(&vc, &submitted).await;

    h.control.cancel_job_run(&vc, &pending).await.unwrap();
    assert_eq!(h.run(&vc, &pending).state, "CANCELLED");
    h.control.cancel_job_run(&vc, &submitted).await.unwrap();
    assert_eq!(h.run(&vc, &submitted).state, "CANCEL_PENDING");
    let (kind, text) = message(h.control.cancel_job_run(&vc, &pending).await.unwrap_err());
    assert_eq!(kind, "ValidationException");
    assert!(text.contains("not in a cancellable state"), "{text}");
}

#[tokio::test]
async fn a_client_token_replays_its_request_and_refuses_a_different_one() {
    let h = on_kubernetes();
    let vc = h.create("team-a").await;
    let first = h.start(&vc, "same").await;
    assert_eq!(h.start(&vc, "same").await, first);
    let mut different = start_request(&vc, "same");
    different.name = "other".into();
    let (kind, text) = message(
        h.control
            .start_job_run(different, TESTER)
            .await
            .unwrap_err(),
    );
    assert_eq!(kind, "ValidationException");
    assert!(
        text.contains("already used with a different StartJobRun"),
        "{text}"
    );
    let again = h
        .control
        .create_virtual_cluster(create_request("team-a", "t-team-a"))
        .await
        .unwrap();
    assert_eq!(again.id, vc, "CreateVirtualCluster replayed");
}

#[tokio::test]
async fn the_queue_limit_refuses_runs_beyond_max_in_queue() {
    let h = on_kubernetes();
    let mut request = create_request("team-a", "t");
    request.scheduler_configuration = Some(pb::SchedulerConfiguration {
        max_in_queue_job_runs: Some(2),
        max_concurrent_job_runs: None,
    });
    let vc = h.control.create_virtual_cluster(request).await.unwrap().id;
    h.start(&vc, "r1").await;
    h.start(&vc, "r2").await;
    let (kind, text) = message(
        h.control
            .start_job_run(start_request(&vc, "r3"), TESTER)
            .await
            .unwrap_err(),
    );
    assert_eq!(kind, "ValidationException");
    assert!(text.contains("maxInQueueJobRuns"), "{text}");
}

#[tokio::test]
async fn accepting_or_deleting_wakes_the_executor() {
    let h = on_kubernetes();
    let vc = h.create("team-a").await;
    // notify_one keeps one permit: a wake-up sent before anyone waits is
    // not lost.
    tokio::time::timeout(std::time::Duration::from_secs(1), h.wake.notified())
        .await
        .expect("CreateVirtualCluster woke the executor");
    h.start(&vc, "r1").await;
    tokio::time::timeout(std::time::Duration::from_secs(1), h.wake.notified())
        .await
        .expect("StartJobRun woke the executor");
    h.control.delete_virtual_cluster(&vc).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(1), h.wake.notified())
        .await
        .expect("DeleteVirtualCluster woke the executor");
}
