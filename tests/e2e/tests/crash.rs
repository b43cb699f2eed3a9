//! Crash safety against the real local cluster: the server is killed with
//! SIGKILL at random points in the middle of a load of job runs, and
//! restarted on the same store each time. Every acknowledged run must be
//! there and reach its true final state; no run may get a second job-runner
//! or be submitted again.
//!
//! kwok runs each job-runner pod for two seconds and there is no driver, so
//! each run's true end is FAILED ("the job-runner finished but the Spark
//! driver does not exist"); some runs end while the server is down.
//! The kill points are printed, so a failure can be replayed with
//! `SPARKVC_CRASH_KILL_POINTS=a,b,c`.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::json;
use sparkvc_cluster_tests::{LocalEnv, TestNamespace, rand_u32};
use sparkvc_e2e::*;
use sparkvc_proto::v1 as pb;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const RUNS: usize = 300;
const KILLS: usize = 3;

/// Acknowledgement counts at which the server is killed: random, increasing,
/// spread over the load (or given by `SPARKVC_CRASH_KILL_POINTS`).
fn kill_points() -> Vec<usize> {
    if let Ok(given) = std::env::var("SPARKVC_CRASH_KILL_POINTS") {
        return given
            .split(',')
            .map(|p| p.trim().parse().expect("kill points are numbers"))
            .collect();
    }
    let band = RUNS / (KILLS + 1);
    (0..KILLS)
        .map(|i| band * i + 10 + rand_u32() as usize % band)
        .collect()
}

#[tokio::test]
async fn kill9_at_random_points_loses_nothing_and_submits_nothing_twice() {
    let env = LocalEnv::load().expect("local environment");
    let kube = env.kube_client().await.expect("kube client");
    let ns = TestNamespace::create(&kube, "crash").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args = env.server_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(dir.path(), &args);
    let mut client = server.client().await;
    let vc = virtual_cluster_on(&mut client, &ns.name).await;
    let overrides: pb::ConfigurationOverrides = serde_json::from_value(json!({
        "applicationConfiguration": [{"classification": "emr-job-submitter", "properties": {
            "jobsubmitter.annotation.sparkvc.io/kwok-run-seconds": "2"
        }}]
    }))
    .unwrap();

    let points = kill_points();
    eprintln!("crash test: killing the server after {points:?} acknowledged runs");
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut server = server;
    for &point in &points {
        // 16 clients start runs until the server dies under them.
        let mut clients = vec![];
        for _ in 0..16 {
            let (mut client, acked, vc, overrides) = (
                server.client().await,
                acked.clone(),
                vc.clone(),
                overrides.clone(),
            );
            clients.push(tokio::spawn(async move {
                while acked.lock().unwrap().len() < RUNS {
                    let mut req = start_request(&vc);
                    req.configuration_overrides = Some(overrides.clone());
                    match client.start_job_run(req).await {
                        Ok(r) => acked.lock().unwrap().push(r.into_inner().id),
                        Err(_) => return, // the server is gone
                    }
                }
            }));
        }
        while acked.lock().unwrap().len() < point {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        server.kill9();
        for c in clients {
            c.await.unwrap();
        }
        // Some job-runners finish while nobody watches.
        tokio::time::sleep(Duration::from_secs(3)).await;
        server = Server::start_with(dir.path(), &args);
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();

    let mut client = server.client().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    let runs = loop {
        let runs = all_runs(&mut client, &vc).await;
        let open = runs.iter().filter(|r| !is_terminal(&r.state)).count();
        if open == 0 {
            break runs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{open} of {} runs are still open after the restart",
            runs.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // Nothing acknowledged is lost.
    let stored: BTreeMap<&str, &pb::JobRun> = runs.iter().map(|r| (r.id.as_str(), r)).collect();
    for id in &acked {
        assert!(
            stored.contains_key(id.as_str()),
            "acknowledged run {id} is lost"
        );
    }
    assert!(
        acked.len() >= *points.last().unwrap(),
        "{} acknowledged",
        acked.len()
    );

    // Every run got its true end, once, after exactly one submission.
    for run in &runs {
        assert_eq!(run.state, "FAILED", "{}: {}", run.id, run.state_details);
        assert!(
            run.state_details.contains("does not exist"),
            "{}: {}",
            run.id,
            run.state_details
        );
        let states: Vec<&str> = run.state_history.iter().map(|t| t.state.as_str()).collect();
        assert_eq!(states, ["PENDING", "SUBMITTED", "FAILED"], "{}", run.id);
    }

    // One job-runner pod per run, none for a run that does not exist.
    let pods: Api<Pod> = Api::namespaced(kube.clone(), &ns.name);
    let runner_pods = pods
        .list(&ListParams::default().labels("sparkvc.io/component=job-runner"))
        .await
        .unwrap()
        .items;
    let mut per_run: BTreeMap<String, usize> = BTreeMap::new();
    for pod in &runner_pods {
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        *per_run
            .entry(labels["sparkvc.io/job-run-id"].clone())
            .or_default() += 1;
    }
    let with_pods: BTreeSet<&str> = per_run.keys().map(String::as_str).collect();
    let all: BTreeSet<&str> = stored.keys().copied().collect();
    let without: Vec<&&str> = all.difference(&with_pods).collect();
    let unknown: Vec<&&str> = with_pods.difference(&all).collect();
    assert!(
        without.is_empty() && unknown.is_empty(),
        "runs without a job-runner pod: {without:?}; pods of no stored run: {unknown:?}"
    );
    assert!(
        per_run.values().all(|&n| n == 1),
        "a run got a second job-runner pod: {per_run:?}"
    );
    eprintln!(
        "crash test: {} kills at {points:?}; {} runs acknowledged, {} stored, all FAILED once after one submission",
        points.len(),
        acked.len(),
        runs.len()
    );
    drop(server);
    // Wait for the 300 runs' pods to go, so the cluster's backlog does not
    // delay the job-runner pods of the tests that run next.
    ns.delete_and_wait(Duration::from_secs(180)).await.unwrap();
}
