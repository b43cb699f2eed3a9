//! One writer per cluster (issue 17, item 3), against the real local API
//! server: two sparkvc instances configured with the same Lease. Only the
//! holder acts on the cluster; the other accepts calls, stores runs, and
//! stands by (not ready). When the holder is killed, the other takes the
//! Lease over once it has seen it unrenewed for a whole duration, and then
//! starts its runs, each with exactly one job-runner.

use sparkvc_e2e::*;
use std::time::{Duration, Instant};

const LEASE_SECONDS: u64 = 6;

async fn readyz(setup: &ClusterSetup) -> u16 {
    let url = setup
        .server
        .metrics_url
        .clone()
        .expect("a metrics URL")
        .replace("/metrics", "/readyz");
    tokio::task::spawn_blocking(move || http_get_status(&url).0)
        .await
        .unwrap()
}

async fn job_runners(setup: &ClusterSetup, run: &str) -> Vec<String> {
    live_pod_names(
        &setup.kube,
        &setup.ns.name,
        &format!("sparkvc.io/job-run-id={run},sparkvc.io/component=job-runner"),
    )
    .await
}

#[tokio::test]
async fn only_the_lease_holder_acts_and_the_other_takes_over_when_it_dies() {
    // The one Lease sparkvc's identity may hold when it is the chart's
    // (deploy/test.sh), or one of this test's own.
    let lease = sparkvc_cluster_tests::LocalEnv::load()
        .expect("local environment")
        .server_lease
        .unwrap_or_else(|| format!("default/sparkvc-test-lease-{}", std::process::id()));
    let seconds = LEASE_SECONDS.to_string();
    let args = [
        "--lease",
        lease.as_str(),
        "--lease-duration-seconds",
        seconds.as_str(),
    ];
    let mut holder = ClusterSetup::start("lease-holder", &args).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while readyz(&holder).await != 200 {
        assert!(
            Instant::now() < deadline,
            "the first instance never took the Lease"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut standby = ClusterSetup::start("lease-standby", &args).await;
    assert_eq!(
        readyz(&standby).await,
        503,
        "the second instance says it is ready"
    );

    // The holder acts.
    let vc = holder.vc.clone();
    let held_run = holder
        .client
        .start_job_run(start_request(&vc))
        .await
        .expect("StartJobRun on the holder")
        .into_inner()
        .id;
    wait_for_state(&mut holder.client, &vc, &held_run, "SUBMITTED").await;
    assert_eq!(job_runners(&holder, &held_run).await.len(), 1);

    // The standby takes calls and stores runs, but creates nothing.
    let vc = standby.vc.clone();
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let id = standby
            .client
            .start_job_run(start_request(&vc))
            .await
            .expect("StartJobRun on the standby")
            .into_inner()
            .id;
        waiting.push(id);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    for id in &waiting {
        assert_eq!(
            describe_run(&mut standby.client, &vc, id).await.state,
            "PENDING"
        );
        assert!(
            job_runners(&standby, id).await.is_empty(),
            "the standby created a pod"
        );
    }
    assert_eq!(readyz(&standby).await, 503);

    // The holder dies without a word; the standby takes over.
    let killed = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-9", &holder.server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for id in &waiting {
        wait_until(
            &mut standby.client,
            &vc,
            id,
            "SUBMITTED after the takeover",
            Duration::from_secs(LEASE_SECONDS * 4),
            |run| run.state == "SUBMITTED",
        )
        .await;
    }
    let failover = killed.elapsed();
    println!(
        "failover: the standby's runs SUBMITTED {failover:?} after the holder was killed (lease {LEASE_SECONDS} s)"
    );
    assert!(
        failover >= Duration::from_secs(LEASE_SECONDS) - Duration::from_secs(LEASE_SECONDS / 3 + 1),
        "took over in {failover:?}, before the Lease could have expired"
    );
    assert!(
        failover <= Duration::from_secs(LEASE_SECONDS * 2 + 5),
        "took {failover:?} to take over a {LEASE_SECONDS} s Lease"
    );
    for id in &waiting {
        assert_eq!(job_runners(&standby, id).await.len(), 1, "run {id}");
    }
    assert_eq!(readyz(&standby).await, 200);
}
