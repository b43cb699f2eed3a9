//! The executor against a scripted API server, on a clock that moves only
//! when a test says so: submission, cancellation, the start timeout, retries,
//! clean-up and a virtual cluster's deletion, with no cluster and no real
//! waiting. The local-cluster suites (`tests/e2e`) cover the same steps
//! against a real API server.

use super::*;
use crate::ids::ManualTime;
use crate::render::names;
use crate::state::{JobRunState, Outcome};
use crate::store::Timer;
use crate::time::timestamp_from_micros;
use http::{Method, Request, Response};
use k8s_openapi::api::core::v1::Pod;
use kube::client::Body;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::convert::Infallible;

const CLUSTER: &str = "local";
const NS: &str = "team-a";
const VC: &str = "0000000000000000000000vc1";
const ROLE: &str = "arn:aws:iam::123456789012:role/SparkJobRole";
/// 2026-01-01T00:00:00Z: any fixed time will do.
const START_MICROS: u64 = 1_767_225_600_000_000;

/// An in-memory API server for namespaced objects: creates (409 if the name
/// is taken), gets, deletes (404 if absent) and deletes collections, and
/// records every request as `METHOD plural[/name]`. A fault makes every
/// request of one method on one resource answer an error status.
#[derive(Clone, Default)]
struct FakeApi(Arc<Mutex<FakeState>>);

#[derive(Default)]
struct FakeState {
    objects: BTreeMap<String, Value>,
    calls: Vec<String>,
    faults: Vec<(Method, String, u16)>,
    uids: u64,
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": if code < 300 { "Success" } else { "Failure" },
        "reason": reason, "message": message, "code": code,
    })
}

impl FakeApi {
    fn client(&self) -> kube::Client {
        let api = self.clone();
        let service = tower::service_fn(move |req: Request<Body>| {
            let api = api.clone();
            async move {
                let (parts, body) = req.into_parts();
                let body = body.collect_bytes().await.unwrap_or_default();
                let (code, answer) = api.answer(&parts.method, parts.uri.path(), &body);
                let response = Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap();
                Ok::<_, Infallible>(response)
            }
        });
        kube::Client::new(service, NS)
    }

    fn answer(&self, method: &Method, path: &str, body: &[u8]) -> (u16, Value) {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let at = segments
            .iter()
            .position(|s| *s == "namespaces")
            .expect("namespaced request");
        let plural = segments[at + 2].to_string();
        let name = segments.get(at + 3).map(|s| s.to_string());
        let mut state = self.0.lock().unwrap();
        let call = match &name {
            Some(name) => format!("{method} {plural}/{name}"),
            None => format!("{method} {plural}"),
        };
        state.calls.push(call);
        if let Some((_, _, code)) = state
            .faults
            .iter()
            .find(|(m, p, _)| m == method && *p == plural)
        {
            return (*code, status(*code, "Fault", "injected by the test"));
        }
        match (method.clone(), name) {
            (Method::POST, None) => {
                let mut object: Value = serde_json::from_slice(body).expect("a JSON object");
                let name = object["metadata"]["name"].as_str().unwrap().to_string();
                let key = format!("{plural}/{name}");
                if state.objects.contains_key(&key) {
                    return (409, status(409, "AlreadyExists", "exists"));
                }
                state.uids += 1;
                object["metadata"]["uid"] = json!(format!("uid-{}", state.uids));
                object["metadata"]["namespace"] = json!(NS);
                state.objects.insert(key, object.clone());
                (201, object)
            }
            (Method::GET, Some(name)) => match state.objects.get(&format!("{plural}/{name}")) {
                Some(object) => (200, object.clone()),
                None => (404, status(404, "NotFound", "not found")),
            },
            (Method::DELETE, Some(name)) => match state.objects.remove(&format!("{plural}/{name}"))
            {
                Some(_) => (200, status(200, "", "")),
                None => (404, status(404, "NotFound", "not found")),
            },
            (Method::DELETE, None) => {
                state
                    .objects
                    .retain(|key, _| !key.starts_with(&format!("{plural}/")));
                (200, status(200, "", ""))
            }
            (method, _) => panic!("the executor sent an unexpected {method} {path}"),
        }
    }

    /// The requests since the last call.
    fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap().calls)
    }

    fn fail(&self, method: Method, plural: &str, code: u16) {
        self.0
            .lock()
            .unwrap()
            .faults
            .push((method, plural.into(), code));
    }

    fn heal(&self) {
        self.0.lock().unwrap().faults.clear();
    }

    fn object(&self, plural: &str, name: &str) -> Option<Value> {
        self.0
            .lock()
            .unwrap()
            .objects
            .get(&format!("{plural}/{name}"))
            .cloned()
    }

    /// Stores an object as if an earlier process had created it.
    fn put(&self, plural: &str, object: Value) {
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        let key = format!("{plural}/{name}");
        self.0.lock().unwrap().objects.insert(key, object);
    }

    fn names(&self, plural: &str) -> Vec<String> {
        let prefix = format!("{plural}/");
        self.0
            .lock()
            .unwrap()
            .objects
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }
}

struct Harness {
    executor: Executor,
    store: Store,
    api: FakeApi,
    time: ManualTime,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let api = FakeApi::default();
        let time = ManualTime::new(START_MICROS);
        let executor = Executor::new(
            store.clone(),
            Clusters::from_clients([(CLUSTER.to_string(), api.client())]),
            Catalogue::builtin(),
            Arc::new(Notify::new()),
            Metrics::default(),
            ExecutorSettings {
                account_id: "123456789012".into(),
                region: "us-east-1".into(),
                finished_job_ttl: Duration::from_secs(600),
                event_log_dir: None,
                pod_template_dirs: vec![],
                tenancy: TenancyConfig::default(),
            },
        )
        .with_clock(Clock::manual(&time));
        let harness = Self {
            executor,
            store,
            api,
            time,
            _dir: dir,
        };
        harness.add_virtual_cluster(VC).await;
        harness
    }

    async fn add_virtual_cluster(&self, id: &str) {
        let vc: pb::VirtualCluster = serde_json::from_value(json!({
            "id": id, "name": "team-a", "state": "RUNNING",
            "containerProvider": {"id": CLUSTER, "type": "EKS", "info": {"eksInfo": {"namespace": NS}}},
        }))
        .unwrap();
        self.store
            .write(|txn| -> Result<(), StoreError> {
                txn.put_virtual_cluster(&vc)?;
                txn.claim_namespace(CLUSTER, NS, id);
                Ok(())
            })
            .await
            .unwrap();
    }

    /// Sets a virtual cluster's `maxConcurrentJobRuns`.
    async fn limit_concurrent_runs(&self, vc_id: &str, most: u32) {
        let mut vc = self.store.virtual_cluster(vc_id).unwrap().unwrap();
        vc.scheduler_configuration =
            serde_json::from_value(json!({"maxConcurrentJobRuns": most})).unwrap();
        self.store
            .write(|txn| -> Result<(), StoreError> { txn.put_virtual_cluster(&vc) })
            .await
            .unwrap();
    }

    /// Stores a PENDING run of [`VC`], with `extra` fields.
    async fn add_run(&self, id: &str, extra: Value) {
        let mut fields = json!({
            "id": id, "name": "pi", "virtualClusterId": VC,
            "executionRoleArn": ROLE, "releaseLabel": "emr-7.9.0-latest",
            "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "local:///opt/pi.py"}},
        });
        fields
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let mut run: pb::JobRun = serde_json::from_value(fields).unwrap();
        run.created_at = Some(timestamp_from_micros(self.time_now()));
        state::initial(&mut run, timestamp_from_micros(self.time_now()));
        self.store
            .write(|txn| -> Result<(), StoreError> {
                txn.put_job_run(None, &run)?;
                Ok(())
            })
            .await
            .unwrap();
    }

    fn time_now(&self) -> u64 {
        self.executor.clock.now_micros()
    }

    fn run(&self, id: &str) -> pb::JobRun {
        self.store.job_run(VC, id).unwrap().unwrap()
    }

    /// Moves a run along an edge the control plane or the watch drives.
    async fn force(&self, id: &str, next: JobRunState) {
        assert!(
            self.executor
                .transition(VC, id, next, Outcome::default())
                .await
                .unwrap(),
            "{id} cannot become {next:?}"
        );
    }

    /// Runs one step and records its outcome, as a pass does.
    async fn settle(&self, id: &str, result: Result<(), SubmitError>) {
        self.executor.settle(VC, id, result).await.unwrap();
    }
}

fn runner_of(run_id: &str, attempt: u32) -> String {
    names::job_runner_name(&names::attempt_name(run_id, attempt))
}

fn driver_of(run_id: &str, attempt: u32) -> String {
    names::driver_pod_name(&names::attempt_name(run_id, attempt))
}

#[tokio::test]
async fn submit_sets_up_the_namespace_then_creates_the_job_runner_and_its_config_map() {
    let h = Harness::new().await;
    h.add_run("0000000000000000001", json!({})).await;
    h.executor.submit(VC, "0000000000000000001").await.unwrap();

    let run = h.run("0000000000000000001");
    assert_eq!(run.state, "SUBMITTED", "{}", run.state_details);
    let calls = h.api.take_calls();
    let position = |call: &str| {
        calls
            .iter()
            .position(|c| c == call)
            .unwrap_or_else(|| panic!("no {call} in {calls:?}"))
    };
    // The namespace is set up before the first pod; the ConfigMap is made
    // after the job-runner, which owns it.
    assert!(position("POST roles") < position("POST pods"));
    assert!(position("POST networkpolicies") < position("POST pods"));
    assert!(position("POST serviceaccounts") < position("POST pods"));
    assert!(position("POST rolebindings") < position("POST pods"));
    assert!(position("POST pods") < position("POST configmaps"));
    let runner_name = runner_of("0000000000000000001", 1);
    let runner = h.api.object("pods", &runner_name).expect("the job-runner");
    let config_map = &h.api.names("configmaps")[0];
    let owner = &h.api.object("configmaps", config_map).unwrap()["metadata"]["ownerReferences"][0];
    assert_eq!(owner["name"], runner_name);
    assert_eq!(owner["uid"], runner["metadata"]["uid"]);

    // A second run of the same role reuses what the first one made.
    h.add_run("0000000000000000002", json!({})).await;
    h.executor.submit(VC, "0000000000000000002").await.unwrap();
    assert_eq!(h.api.take_calls(), ["POST pods", "POST configmaps"]);
}

/// A job-runner made before a crash (the create answered 409) is adopted:
/// only its name and UID are read back, and that UID owns the ConfigMap.
#[tokio::test]
async fn a_job_runner_left_by_a_crash_is_adopted_and_owns_the_config_map() {
    let h = Harness::new().await;
    h.add_run("0000000000000000001", json!({})).await;
    let runner_name = runner_of("0000000000000000001", 1);
    h.api.put(
        "pods",
        json!({"metadata": {"name": runner_name, "namespace": NS, "uid": "uid-before-the-crash"}}),
    );
    h.executor.submit(VC, "0000000000000000001").await.unwrap();

    assert_eq!(h.run("0000000000000000001").state, "SUBMITTED");
    let calls = h.api.take_calls();
    let get = format!("GET pods/{runner_name}");
    assert!(calls.contains(&get), "{calls:?}");
    let config_map = &h.api.names("configmaps")[0];
    let owner = &h.api.object("configmaps", config_map).unwrap()["metadata"]["ownerReferences"][0];
    assert_eq!(owner["name"], runner_name);
    assert_eq!(owner["uid"], "uid-before-the-crash");
}

#[tokio::test]
async fn a_refused_job_runner_fails_the_run() {
    let h = Harness::new().await;
    h.add_run("0000000000000000001", json!({})).await;
    h.api.fail(Method::POST, "pods", 403);
    let result = h.executor.submit(VC, "0000000000000000001").await;
    assert!(
        matches!(result, Err(SubmitError::Fatal { .. })),
        "{result:?}"
    );
    h.settle("0000000000000000001", result).await;
    let run = h.run("0000000000000000001");
    assert_eq!(run.state, "FAILED");
    assert_eq!(run.failure_reason, "CLUSTER_UNAVAILABLE");
    assert!(
        run.state_details
            .contains("Kubernetes refused to create the job-runner pod"),
        "{}",
        run.state_details
    );
}

#[tokio::test]
async fn an_api_server_that_is_away_holds_the_cluster_back_until_it_answers() {
    let h = Harness::new().await;
    h.add_run("0000000000000000001", json!({})).await;
    h.api.fail(Method::POST, "pods", 503);
    h.executor.pass(false).await.unwrap();
    assert_eq!(h.run("0000000000000000001").state, "PENDING");
    h.api.take_calls();

    // Within the backoff nothing is sent, even once the API server is back.
    h.api.heal();
    h.executor.pass(false).await.unwrap();
    assert_eq!(h.api.take_calls(), Vec::<String>::new());
    h.time.advance(Duration::from_secs(1));
    h.executor.pass(false).await.unwrap();
    assert_eq!(h.run("0000000000000000001").state, "SUBMITTED");
}

#[tokio::test]
async fn cancelling_deletes_the_pods_then_the_run_is_cancelled() {
    let h = Harness::new().await;
    h.add_run("0000000000000000001", json!({})).await;
    h.executor.submit(VC, "0000000000000000001").await.unwrap();
    h.force("0000000000000000001", JobRunState::CancelPending)
        .await;
    h.api.take_calls();

    h.executor.pass(false).await.unwrap();
    let run = h.run("0000000000000000001");
    assert_eq!(run.state, "CANCELLED");
    let calls = h.api.take_calls();
    assert!(calls.contains(&format!("DELETE pods/{}", runner_of(&run.id, 1))));
    assert!(calls.contains(&format!("DELETE pods/{}", driver_of(&run.id, 1))));
    assert!(h.api.names("pods").is_empty());
}

#[tokio::test]
async fn a_run_that_does_not_start_within_its_timeout_fails() {
    let h = Harness::new().await;
    let timeout = json!({"configurationOverrides": {"applicationConfiguration": [
        {"classification": "emr-containers-defaults", "properties": {"job-start-timeout": "60"}}
    ]}});
    h.add_run("0000000000000000001", timeout).await;
    h.executor.submit(VC, "0000000000000000001").await.unwrap();

    h.time.advance(Duration::from_secs(59));
    h.executor.pass(true).await.unwrap();
    assert_eq!(h.run("0000000000000000001").state, "SUBMITTED");

    h.time.advance(Duration::from_secs(2));
    h.executor.pass(true).await.unwrap();
    let run = h.run("0000000000000000001");
    assert_eq!(run.state, "FAILED");
    assert_eq!(run.failure_reason, "CLUSTER_UNAVAILABLE");
    assert!(
        run.state_details.contains("job-start-timeout of 60 s"),
        "{}",
        run.state_details
    );
    assert!(h.api.names("pods").is_empty(), "its pods are taken down");
}

#[tokio::test]
async fn a_finished_runs_pods_are_deleted_once_its_ttl_passes() {
    let h = Harness::new().await;
    h.add_run("0000000000000000001", json!({})).await;
    h.executor.submit(VC, "0000000000000000001").await.unwrap();
    h.force("0000000000000000001", JobRunState::Completed).await;

    h.time.advance(Duration::from_secs(599));
    h.executor.run_due(Timer::Cleanup).await.unwrap();
    assert_eq!(h.api.names("pods").len(), 1, "kept for the TTL");

    h.time.advance(Duration::from_secs(2));
    h.executor.run_due(Timer::Cleanup).await.unwrap();
    assert!(h.api.names("pods").is_empty());
    assert_eq!(h.store.next_due(Timer::Cleanup).unwrap(), None);
    // The record stays.
    assert_eq!(h.run("0000000000000000001").state, "COMPLETED");
}

#[tokio::test]
async fn a_failed_driver_is_retried_after_its_backoff() {
    let h = Harness::new().await;
    let retries = json!({"retryPolicyConfiguration": {"maxAttempts": 2}});
    h.add_run("0000000000000000001", retries).await;
    h.executor.submit(VC, "0000000000000000001").await.unwrap();

    // The watch sees the first attempt's driver fail.
    let (cache, mut writer) = reflector::store();
    let mut labels = names::job_run_labels("0000000000000000001", VC, 1);
    labels.insert(names::COMPONENT.into(), names::COMPONENT_DRIVER.into());
    let driver: Pod = serde_json::from_value(json!({
        "metadata": {"name": driver_of("0000000000000000001", 1), "namespace": NS, "labels": labels},
        "status": {"phase": "Failed"},
    }))
    .unwrap();
    let driver = ObservedPod::from(driver);
    writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(driver.clone()));
    let client = h.api.client();
    h.executor
        .on_pod(
            &client,
            &cache,
            &driver,
            (VC, "0000000000000000001"),
            std::time::Instant::now(),
        )
        .await
        .unwrap();
    let run = h.run("0000000000000000001");
    assert!(state::awaits_attempt(&run), "{}", run.state_details);
    assert_eq!(state::attempt_of(&run), 2);

    // Not before its 10 s backoff.
    h.time.advance(Duration::from_secs(9));
    h.executor.run_due(Timer::Retry).await.unwrap();
    assert!(h.api.object("pods", &runner_of(&run.id, 2)).is_none());

    h.time.advance(Duration::from_secs(2));
    h.executor.run_due(Timer::Retry).await.unwrap();
    let run = h.run("0000000000000000001");
    assert_eq!(run.state, "SUBMITTED");
    assert!(!state::awaits_attempt(&run));
    assert!(h.api.object("pods", &runner_of(&run.id, 2)).is_some());
    assert!(h.api.object("pods", &runner_of(&run.id, 1)).is_none());
}

#[tokio::test]
async fn a_deleted_virtual_cluster_is_torn_down_and_its_namespace_set_up_anew_for_the_next() {
    let h = Harness::new().await;
    h.add_run("0000000000000000001", json!({})).await;
    h.executor.submit(VC, "0000000000000000001").await.unwrap();
    assert!(!h.api.names("serviceaccounts").is_empty());

    // DeleteVirtualCluster's store write: TERMINATING, its run CANCEL_PENDING.
    let mut vc = h.store.virtual_cluster(VC).unwrap().unwrap();
    vc.state = "TERMINATING".into();
    h.store
        .write(|txn| -> Result<(), StoreError> {
            txn.put_virtual_cluster(&vc)?;
            Ok(())
        })
        .await
        .unwrap();
    h.force("0000000000000000001", JobRunState::CancelPending)
        .await;

    // Not torn down while a run still has pods.
    h.executor.tend_namespaces().await.unwrap();
    assert_eq!(
        h.store.virtual_cluster(VC).unwrap().unwrap().state,
        "TERMINATING"
    );
    h.executor.pass(false).await.unwrap();
    h.executor.tend_namespaces().await.unwrap();
    assert_eq!(
        h.store.virtual_cluster(VC).unwrap().unwrap().state,
        "TERMINATED"
    );
    for plural in [
        "roles",
        "rolebindings",
        "serviceaccounts",
        "networkpolicies",
    ] {
        assert!(h.api.names(plural).is_empty(), "{plural} left behind");
    }

    // A new virtual cluster on the same namespace gets everything again,
    // although the TTL of what the executor remembered has not passed.
    const NEXT: &str = "0000000000000000000000vc2";
    h.add_virtual_cluster(NEXT).await;
    h.executor.tend_namespaces().await.unwrap();
    assert!(h.api.object("roles", "sparkvc-spark").is_some());
    let mut run: pb::JobRun = h.run("0000000000000000001");
    run.id = "0000000000000000009".into();
    run.virtual_cluster_id = NEXT.into();
    state::initial(&mut run, timestamp_from_micros(h.time_now()));
    h.store
        .write(|txn| -> Result<(), StoreError> {
            txn.put_job_run(None, &run)?;
            Ok(())
        })
        .await
        .unwrap();
    h.executor.submit(NEXT, &run.id).await.unwrap();
    assert_eq!(
        h.store.job_run(NEXT, &run.id).unwrap().unwrap().state,
        "SUBMITTED"
    );
    assert!(!h.api.names("serviceaccounts").is_empty());
}

#[test]
fn refusals_name_the_missing_permission_not_the_requester() {
    let escalation = "roles.rbac.authorization.k8s.io \"sparkvc-spark\" is forbidden: user \"system:serviceaccount:sparkvc:sparkvc\" (groups=[\"system:serviceaccounts\" \"system:serviceaccounts:sparkvc\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"patch\"]}";
    assert_eq!(
        super::without_requester(escalation),
        "roles.rbac.authorization.k8s.io \"sparkvc-spark\" is forbidden: sparkvc is attempting to grant RBAC permissions not currently held: {APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"patch\"]}"
    );
    let denied = "serviceaccounts \"emr-containers-sa-spark-driver\" is forbidden: User \"system:serviceaccount:sparkvc:sparkvc\" cannot get resource \"serviceaccounts\" in API group \"\" in the namespace \"team-a\"";
    assert_eq!(
        super::without_requester(denied),
        "serviceaccounts \"emr-containers-sa-spark-driver\" is forbidden: sparkvc cannot get resource \"serviceaccounts\" in API group \"\" in the namespace \"team-a\""
    );
    // Anything else passes unchanged.
    assert_eq!(super::without_requester("quota exceeded"), "quota exceeded");
}

#[tokio::test]
async fn a_plan_gives_free_slots_to_the_oldest_pending_runs_and_skips_runs_in_flight() {
    use crate::cluster::queue::Step;
    let h = Harness::new().await;
    h.limit_concurrent_runs(VC, 2).await;
    for id in [
        "0000000000000000001",
        "0000000000000000002",
        "0000000000000000003",
    ] {
        h.add_run(id, json!({})).await;
    }
    h.force("0000000000000000001", JobRunState::Submitted).await;
    let steps = |check_starts, busy: &HashMap<(String, String), Step>| -> Vec<(String, Step)> {
        h.executor
            .plan(check_starts, busy)
            .unwrap()
            .steps
            .into_iter()
            .map(|p| (p.run.run_id, p.step))
            .collect()
    };

    // One slot of two is held: the oldest PENDING run takes the other.
    let none = HashMap::new();
    assert_eq!(
        steps(false, &none),
        [("0000000000000000002".into(), Step::Submit)]
    );
    // While it is being submitted it holds that slot, and gets no second step.
    let busy = HashMap::from([(
        (VC.to_string(), "0000000000000000002".to_string()),
        Step::Submit,
    )]);
    assert_eq!(steps(false, &busy), []);
    // Start checks look at the SUBMITTED runs only when asked to.
    assert_eq!(
        steps(true, &busy),
        [("0000000000000000001".into(), Step::CheckStart)]
    );
}

#[tokio::test]
async fn a_plan_shares_its_submissions_among_the_virtual_clusters_with_runs_waiting() {
    use super::PLAN_SUBMISSIONS;
    use crate::cluster::queue::Step;
    const OTHER: &str = "0000000000000000000000vc2";
    let h = Harness::new().await;
    h.add_virtual_cluster(OTHER).await;
    // Far more queued runs than one plan takes, in both virtual clusters,
    // VC's all older than OTHER's.
    let queued = PLAN_SUBMISSIONS + 10;
    for i in 0..queued {
        h.add_run(&format!("{i:019}"), json!({})).await;
    }
    for i in 0..queued {
        h.add_run(
            &format!("{:019}", queued + i),
            json!({"virtualClusterId": OTHER}),
        )
        .await;
    }
    let plan = h.executor.plan(false, &HashMap::new()).unwrap();
    assert!(plan.cut_short, "runs are left for the next plan");
    let of = |vc: &str| -> Vec<String> {
        plan.steps
            .iter()
            .filter(|p| p.run.vc_id == vc && p.step == Step::Submit)
            .map(|p| p.run.run_id.clone())
            .collect()
    };
    let half = PLAN_SUBMISSIONS / 2;
    // Each gets half, oldest first: OTHER is not kept waiting behind VC.
    assert_eq!(
        of(VC),
        (0..half).map(|i| format!("{i:019}")).collect::<Vec<_>>()
    );
    assert_eq!(
        of(OTHER),
        (queued..queued + half)
            .map(|i| format!("{i:019}"))
            .collect::<Vec<_>>()
    );
    assert_eq!(plan.steps.len(), PLAN_SUBMISSIONS);

    // The next plan, made while those are in flight, takes the next ones.
    let busy: HashMap<_, _> = plan
        .steps
        .iter()
        .map(|p| ((p.run.vc_id.clone(), p.run.run_id.clone()), Step::Submit))
        .collect();
    let next = h.executor.plan(false, &busy).unwrap();
    assert!(next.cut_short);
    assert_eq!(next.steps.len(), PLAN_SUBMISSIONS);
    assert!(
        next.steps
            .iter()
            .all(|p| !busy.contains_key(&(p.run.vc_id.clone(), p.run.run_id.clone())))
    );

    // A plan that takes every waiting run is not cut short.
    h.limit_concurrent_runs(OTHER, 3).await;
    h.limit_concurrent_runs(VC, 5).await;
    let limited = h.executor.plan(false, &HashMap::new()).unwrap();
    assert!(!limited.cut_short, "the limits, not the share, stopped it");
    assert_eq!(limited.steps.len(), 8);
}
