//! Fault safety against the real local cluster: the Kubernetes API server is
//! stopped for a minute (`deploy/local/down kube-apiserver`) and started
//! again (`deploy/local/up`) while sparkvc holds open runs and keeps taking
//! requests. Nothing may be lost or failed because of the outage, and
//! everything must proceed once the API server is back.
//!
//! This is the only test in its binary: stopping the API server would break
//! any test running beside it (cargo runs test binaries one at a time).

use serde_json::json;
use sparkvc_cluster_tests::{TestNamespace, default_run_dir, kwok, repo_root};
use sparkvc_e2e::*;
use sparkvc_proto::v1 as pb;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

const OUTAGE: Duration = Duration::from_secs(60);
/// Runs submitted before the outage, started during it, and (of the first)
/// cancelled during it.
const BEFORE: usize = 12;
const DURING: usize = 12;
const CANCELLED: usize = 4;

/// Runs `deploy/local/<script> <args>` on the environment the tests use. A
/// failure's message carries what the script printed: the restart also
/// checks the real node, and a CI log may keep only this message.
fn local(script: &str, args: &[&str]) {
    let out = Command::new(repo_root().join("deploy/local").join(script))
        .args(args)
        .env("SPARKVC_RUN_DIR", default_run_dir())
        .output()
        .unwrap_or_else(|e| panic!("running deploy/local/{script}: {e}"));
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{printed}");
    assert!(
        out.status.success(),
        "deploy/local/{script} {args:?} failed: {}; it printed:\n{printed}",
        out.status
    );
}

/// Starts the API server again if the test ends while it is stopped, so a
/// failure here does not take the tests after it down too.
struct RestartOnDrop;

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        if std::thread::panicking() {
            local("up", &[]);
        }
    }
}

fn is_open(state: &str) -> bool {
    !is_terminal(state)
}

#[tokio::test]
async fn an_api_server_outage_loses_nothing_and_work_resumes_when_it_returns() {
    let setup = ClusterSetup::start("outage", &[]).await;
    let ClusterSetup {
        server,
        mut client,
        kube,
        ns,
        vc,
        ..
    } = setup;
    // The job-runners stay running (there is no driver), so a run's state
    // only changes when sparkvc changes it.
    let overrides: pb::ConfigurationOverrides = serde_json::from_value(json!({
        "applicationConfiguration": [{"classification": "emr-job-submitter", "properties": {
            format!("jobsubmitter.annotation.{}", kwok::STAY_RUNNING): "true"
        }}]
    }))
    .unwrap();
    let start = |client: &mut Client| {
        let mut req = start_request(&vc);
        req.configuration_overrides = Some(overrides.clone());
        let mut client = client.clone();
        async move { client.start_job_run(req).await.unwrap().into_inner().id }
    };

    let mut before = vec![];
    for _ in 0..BEFORE {
        before.push(start(&mut client).await);
    }
    for id in &before {
        wait_for_state_within(&mut client, &vc, id, "SUBMITTED", Duration::from_secs(60)).await;
    }

    // --- the outage ---------------------------------------------------------
    let restart_guard = RestartOnDrop;
    local("down", &["kube-apiserver"]);
    let outage_began = tokio::time::Instant::now();
    assert!(
        kube.apiserver_version().await.is_err(),
        "the API server still answers after being stopped"
    );
    // The API keeps working: new runs are accepted, cancellations too.
    let mut during = vec![];
    for _ in 0..DURING {
        during.push(start(&mut client).await);
    }
    let cancelled: Vec<String> = before[..CANCELLED].to_vec();
    for id in &cancelled {
        client
            .cancel_job_run(pb::CancelJobRunRequest {
                id: id.clone(),
                virtual_cluster_id: vc.clone(),
            })
            .await
            .expect("cancelling during the outage is accepted");
    }
    // Every run keeps its state while the API server is away.
    while outage_began.elapsed() < OUTAGE {
        for run in all_runs(&mut client, &vc).await {
            let want = if during.contains(&run.id) {
                "PENDING"
            } else if cancelled.contains(&run.id) {
                "CANCEL_PENDING"
            } else {
                "SUBMITTED"
            };
            assert_eq!(
                run.state, want,
                "{} changed state during the outage: {}",
                run.id, run.state_details
            );
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    local("up", &[]);
    drop(restart_guard);
    let metrics = http_get(server.metrics_url.as_deref().expect("metrics endpoint"));
    let errors: f64 = metrics
        .lines()
        .find(|l| l.starts_with("sparkvc_reconcile_errors_total{kind=\"kubernetes\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(
        errors > 0.0,
        "the outage should show as retried Kubernetes errors:\n{metrics}"
    );

    // --- everything proceeds --------------------------------------------------
    let back = Duration::from_secs(120);
    for id in &during {
        wait_for_state_within(&mut client, &vc, id, "SUBMITTED", back).await;
    }
    for id in &cancelled {
        wait_for_state_within(&mut client, &vc, id, "CANCELLED", back).await;
    }
    // Exactly one job-runner per live run, none for the cancelled ones.
    let live: BTreeSet<String> = live_pod_names(&kube, &ns.name, "sparkvc.io/component=job-runner")
        .await
        .into_iter()
        .collect();
    let want: BTreeSet<String> = before[CANCELLED..].iter().chain(&during).cloned().collect();
    assert_eq!(live, want, "job-runner pods after the outage");

    // The ones left end normally when cancelled; none ever failed.
    for id in want.iter() {
        client
            .cancel_job_run(pb::CancelJobRunRequest {
                id: id.clone(),
                virtual_cluster_id: vc.clone(),
            })
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let runs = loop {
        let runs = all_runs(&mut client, &vc).await;
        if runs.iter().all(|r| !is_open(&r.state)) {
            break runs;
        }
        assert!(tokio::time::Instant::now() < deadline, "runs stay open");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(runs.len(), BEFORE + DURING);
    for run in &runs {
        let states: Vec<&str> = run.state_history.iter().map(|t| t.state.as_str()).collect();
        assert_eq!(
            states,
            ["PENDING", "SUBMITTED", "CANCEL_PENDING", "CANCELLED"],
            "{}",
            run.id
        );
    }
    eprintln!(
        "outage test: {} s without the API server; {BEFORE} runs kept SUBMITTED, {DURING} accepted and {CANCELLED} cancelled meanwhile, {errors} Kubernetes errors retried",
        OUTAGE.as_secs()
    );
    drop(server);
    ns.delete().await.unwrap();
    // Leave a working cluster: the controllers' watches reconnect with a
    // backoff of their own after the API server comes back.
    TestNamespace::create_within(&kube, "after-outage", Duration::from_secs(180))
        .await
        .expect("the controllers work again after the outage")
        .delete()
        .await
        .unwrap();
}
