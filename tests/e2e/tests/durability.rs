//! Crash safety of the store through the real server process: everything
//! acknowledged survives `kill -9`, nothing is duplicated, and client-token
//! retries after the crash find what the first attempt made.

use sparkvc_e2e::*;
use sparkvc_proto::v1 as pb;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test]
async fn nothing_acknowledged_is_lost_when_the_server_is_killed_mid_load() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut client = server.client().await;
    let vc = new_virtual_cluster(&mut client).await;

    // 32 clients start job runs as fast as they can; each remembers which of
    // its requests were acknowledged.
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let sent: Arc<Mutex<Vec<pb::StartJobRunRequest>>> = Arc::default();
    let mut workers = Vec::new();
    for _ in 0..32 {
        let mut c = client.clone();
        let (acked, sent, vc) = (acked.clone(), sent.clone(), vc.clone());
        workers.push(tokio::spawn(async move {
            for _ in 0..400 {
                let req = start_request(&vc);
                sent.lock().unwrap().push(req.clone());
                match c.start_job_run(req.clone()).await {
                    Ok(resp) => {
                        acked
                            .lock()
                            .unwrap()
                            .insert(req.client_token, resp.into_inner().id);
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    // Let the load build up, then pull the plug.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < 300 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill9();
    for w in workers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    let sent = sent.lock().unwrap().clone();
    assert!(
        acked.len() >= 300,
        "only {} runs were acknowledged before the kill",
        acked.len()
    );
    assert!(acked.len() < sent.len(), "the kill landed mid-load");

    let server = Server::start(dir.path());
    let mut client = server.client().await;
    let runs = all_runs(&mut client, &vc).await;
    let by_token: BTreeMap<_, _> = runs
        .iter()
        .map(|r| (r.client_token.clone(), r.id.clone()))
        .collect();
    assert_eq!(by_token.len(), runs.len(), "no client token has two runs");
    for (token, id) in &acked {
        assert_eq!(
            by_token.get(token),
            Some(id),
            "acknowledged run {id} survived the crash"
        );
    }
    assert!(runs.iter().all(|r| r.state == "PENDING"));

    // Retrying every request (acknowledged or not) makes no duplicates: the
    // acknowledged ones come back with their original IDs.
    let mut retried = BTreeSet::new();
    for req in &sent {
        let id = client
            .start_job_run(req.clone())
            .await
            .unwrap()
            .into_inner()
            .id;
        if let Some(original) = acked.get(&req.client_token) {
            assert_eq!(&id, original);
        }
        retried.insert(id);
    }
    let runs = all_runs(&mut client, &vc).await;
    assert_eq!(
        runs.len(),
        sent.len(),
        "exactly one run per distinct request"
    );
    assert_eq!(retried.len(), sent.len());

    let status = describe_vc(&mut client, &vc)
        .await
        .scheduler_status
        .unwrap();
    assert_eq!(
        status.current_in_queue_job_runs as usize,
        sent.len(),
        "queue counts are rebuilt from the store"
    );
}

#[tokio::test]
async fn every_kind_of_record_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut client = server.client().await;
    let vc = new_virtual_cluster(&mut client).await;
    let run = client
        .start_job_run(start_request(&vc))
        .await
        .unwrap()
        .into_inner();
    let cancelled = client
        .start_job_run(start_request(&vc))
        .await
        .unwrap()
        .into_inner();
    client
        .cancel_job_run(pb::CancelJobRunRequest {
            id: cancelled.id.clone(),
            virtual_cluster_id: vc.clone(),
        })
        .await
        .unwrap();
    let template = client
        .create_job_template(pb::CreateJobTemplateRequest {
            name: "t".into(),
            client_token: unique("t"),
            job_template_data: Some(pb::JobTemplateData {
                execution_role_arn: ROLE_ARN.into(),
                release_label: RELEASE.into(),
                job_driver: Some(submit_driver("local:///app.py")),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let gone = new_virtual_cluster(&mut client).await;
    client
        .delete_virtual_cluster(pb::DeleteVirtualClusterRequest { id: gone.clone() })
        .await
        .unwrap();
    let describe = |c: &mut Client, id: String, vc: String| {
        let mut c = c.clone();
        async move {
            c.describe_job_run(pb::DescribeJobRunRequest {
                id,
                virtual_cluster_id: vc,
            })
            .await
            .unwrap()
            .into_inner()
            .job_run
            .unwrap()
        }
    };
    let before_run = describe(&mut client, run.id.clone(), vc.clone()).await;
    let before_cancelled = describe(&mut client, cancelled.id.clone(), vc.clone()).await;
    server.kill9();

    let server = Server::start(dir.path());
    let mut client = server.client().await;
    assert_eq!(describe(&mut client, run.id, vc.clone()).await, before_run);
    assert_eq!(
        describe(&mut client, cancelled.id, vc.clone()).await,
        before_cancelled
    );
    client
        .describe_job_template(pb::DescribeJobTemplateRequest { id: template.id })
        .await
        .unwrap();
    let state = |id: String| {
        let mut c = client.clone();
        async move {
            c.describe_virtual_cluster(pb::DescribeVirtualClusterRequest { id })
                .await
                .unwrap()
                .into_inner()
                .virtual_cluster
                .unwrap()
                .state
        }
    };
    assert_eq!(state(vc).await, "RUNNING");
    assert_eq!(state(gone).await, "TERMINATED");
}
