//! Every emr-containers operation through the real server over real gRPC:
//! results, AWS error kinds and messages, idempotency, pagination, filters.

use prost_types::Timestamp;
use sparkvc_e2e::*;
use sparkvc_proto::v1 as pb;
use std::collections::BTreeMap;
use tonic::Code;

struct Env {
    _dir: tempfile::TempDir,
    _server: Server,
    client: Client,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let client = server.client().await;
    Env {
        _dir: dir,
        _server: server,
        client,
    }
}

fn assert_error(status: &tonic::Status, code: Code, aws: &str, message_part: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(aws_error(status), aws, "{status:?}");
    assert!(
        status.message().contains(message_part),
        "message {:?} lacks {message_part:?}",
        status.message()
    );
}

#[tokio::test]
async fn virtual_cluster_lifecycle() {
    let Env {
        mut client,
        _dir,
        _server,
    } = env().await;
    let namespace = unique("ns");
    let mut req = create_vc_request(&namespace);
    req.tags = BTreeMap::from([("team".into(), "data".into())]);
    req.scheduler_configuration = Some(pb::SchedulerConfiguration {
        max_in_queue_job_runs: Some(5),
        max_concurrent_job_runs: None,
    });
    let created = client
        .create_virtual_cluster(req.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.id.len(), 25);
    assert!(
        created
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    );
    assert_eq!(
        created.arn,
        format!(
            "arn:aws:emr-containers:us-west-2:123456789012:/virtualclusters/{}",
            created.id
        )
    );

    let vc = describe_vc(&mut client, &created.id).await;
    assert_eq!(vc.state, "RUNNING");
    assert_eq!(vc.name, req.name);
    assert_eq!(vc.tags, req.tags);
    assert!(vc.created_at.is_some());
    assert_eq!(
        vc.scheduler_status,
        Some(pb::SchedulerStatus {
            current_in_queue_job_runs: 0,
            current_concurrent_job_runs: 0
        })
    );

    // A second virtual cluster on the same namespace is refused.
    let mut again = create_vc_request(&namespace);
    again.name = "other".into();
    let err = client
        .create_virtual_cluster(again.clone())
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "A virtual cluster already exists in the given namespace",
    );

    // Update replaces the scheduler configuration whole.
    let updated = client
        .update_virtual_cluster(pb::UpdateVirtualClusterRequest {
            id: created.id.clone(),
            scheduler_configuration: Some(pb::SchedulerConfiguration {
                max_in_queue_job_runs: None,
                max_concurrent_job_runs: Some(3),
            }),
            client_token: unique("token"),
        })
        .await
        .unwrap()
        .into_inner()
        .virtual_cluster
        .unwrap();
    assert_eq!(
        updated.scheduler_configuration,
        Some(pb::SchedulerConfiguration {
            max_in_queue_job_runs: None,
            max_concurrent_job_runs: Some(3)
        })
    );

    // Delete: its open job runs are cancelled, it ends TERMINATED, and the
    // namespace is free again.
    let run = client
        .start_job_run(start_request(&created.id))
        .await
        .unwrap()
        .into_inner();
    let deleted = client
        .delete_virtual_cluster(pb::DeleteVirtualClusterRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.id, created.id);
    let vc = describe_vc(&mut client, &created.id).await;
    assert_eq!(vc.state, "TERMINATED");
    let run = describe_run(&mut client, &created.id, &run.id).await;
    assert_eq!(run.state, "CANCELLED");
    assert!(run.finished_at.is_some());
    assert!(
        run.state_details.contains("deleted"),
        "{}",
        run.state_details
    );

    let err = client
        .start_job_run(start_request(&created.id))
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "accepts no new job runs",
    );
    let err = client
        .update_virtual_cluster(pb::UpdateVirtualClusterRequest {
            id: created.id.clone(),
            scheduler_configuration: None,
            client_token: unique("t"),
        })
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "TERMINATED",
    );
    // Deleting again is harmless.
    client
        .delete_virtual_cluster(pb::DeleteVirtualClusterRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap();
    client
        .create_virtual_cluster(again)
        .await
        .expect("the namespace is free after termination");
}

#[tokio::test]
async fn unknown_ids_use_the_aws_messages_and_kinds() {
    let Env {
        mut client,
        _dir,
        _server,
    } = env().await;
    let missing = "0000000000000000000000000";
    let err = client
        .describe_virtual_cluster(pb::DescribeVirtualClusterRequest { id: missing.into() })
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::NotFound,
        "ResourceNotFoundException",
        &format!("Virtual cluster {missing} doesn't exist."),
    );
    // Delete, cancel and list declare no ResourceNotFoundException in AWS.
    let err = client
        .delete_virtual_cluster(pb::DeleteVirtualClusterRequest { id: missing.into() })
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "doesn't exist.",
    );
    let err = client
        .start_job_run(start_request(missing))
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::NotFound,
        "ResourceNotFoundException",
        &format!("Virtual cluster {missing} doesn't exist."),
    );

    let vc = new_virtual_cluster(&mut client).await;
    let err = client
        .describe_job_run(pb::DescribeJobRunRequest {
            id: "0000000000000000000".into(),
            virtual_cluster_id: vc.clone(),
        })
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::NotFound,
        "ResourceNotFoundException",
        "Job run 0000000000000000000 doesn't exist.",
    );
    let err = client
        .cancel_job_run(pb::CancelJobRunRequest {
            id: "0000000000000000000".into(),
            virtual_cluster_id: vc.clone(),
        })
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "Job run 0000000000000000000 doesn't exist.",
    );
    let err = client
        .list_job_runs(pb::ListJobRunsRequest {
            virtual_cluster_id: missing.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "doesn't exist.",
    );
    let err = client
        .describe_job_template(pb::DescribeJobTemplateRequest { id: "abc".into() })
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::NotFound,
        "ResourceNotFoundException",
        "Job template abc doesn't exist.",
    );
    let err = client
        .describe_security_configuration(pb::DescribeSecurityConfigurationRequest {
            id: "abc".into(),
        })
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::NotFound,
        "ResourceNotFoundException",
        "Security configuration abc doesn't exist.",
    );

    let mut req = start_request(&vc);
    req.release_label = "emr-9.9.9-latest".into();
    let err = client.start_job_run(req).await.unwrap_err();
    assert_error(
        &err,
        Code::NotFound,
        "ResourceNotFoundException",
        "Release emr-9.9.9-latest doesn't exist.",
    );
}

#[tokio::test]
async fn job_run_lifecycle_without_an_executor() {
    let Env {
        mut client,
        _dir,
        _server,
    } = env().await;
    let vc = new_virtual_cluster(&mut client).await;
    let mut req = start_request(&vc);
    req.tags = BTreeMap::from([("owner".into(), "me".into())]);
    req.retry_policy_configuration = Some(pb::RetryPolicyConfiguration { max_attempts: 3 });
    req.configuration_overrides = Some(pb::ConfigurationOverrides {
        application_configuration: vec![pb::Configuration {
            classification: "spark-defaults".into(),
            properties: BTreeMap::from([("spark.driver.memory".into(), "2G".into())]),
            configurations: vec![],
        }],
        monitoring_configuration: Some(pb::MonitoringConfiguration {
            persistent_app_ui: "ENABLED".into(),
            s3_monitoring_configuration: Some(pb::S3MonitoringConfiguration {
                log_uri: "s3://logs/jobs".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
    });
    let started = client
        .start_job_run(req.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.id.len(), 19);
    assert_eq!(started.virtual_cluster_id, vc);
    assert_eq!(
        started.arn,
        format!(
            "arn:aws:emr-containers:us-west-2:123456789012:/virtualclusters/{vc}/jobruns/{}",
            started.id
        )
    );

    let run = describe_run(&mut client, &vc, &started.id).await;
    // Nothing runs job runs yet: it stays PENDING, and says nothing else.
    assert_eq!(run.state, "PENDING");
    assert_eq!(run.execution_role_arn, ROLE_ARN);
    assert_eq!(run.release_label, RELEASE);
    assert_eq!(run.job_driver, req.job_driver);
    assert_eq!(run.configuration_overrides, req.configuration_overrides);
    assert_eq!(run.tags, req.tags);
    assert_eq!(run.client_token, req.client_token);
    assert_eq!(run.created_by, "arn:aws:iam::123456789012:root");
    assert_eq!(
        run.retry_policy_configuration,
        Some(pb::RetryPolicyConfiguration { max_attempts: 3 })
    );
    assert!(run.finished_at.is_none());
    assert_eq!(
        run.state_history
            .iter()
            .map(|t| t.state.as_str())
            .collect::<Vec<_>>(),
        ["PENDING"]
    );

    let status = describe_vc(&mut client, &vc)
        .await
        .scheduler_status
        .unwrap();
    assert_eq!(status.current_in_queue_job_runs, 1);

    client
        .cancel_job_run(pb::CancelJobRunRequest {
            id: started.id.clone(),
            virtual_cluster_id: vc.clone(),
        })
        .await
        .unwrap();
    let run = describe_run(&mut client, &vc, &started.id).await;
    assert_eq!(run.state, "CANCELLED");
    assert!(run.finished_at.is_some());
    let history: Vec<_> = run.state_history.iter().map(|t| t.state.as_str()).collect();
    assert_eq!(history, ["PENDING", "CANCELLED"]);
    assert!(run.state_history.iter().all(|t| t.at.is_some()));

    let err = client
        .cancel_job_run(pb::CancelJobRunRequest {
            id: started.id.clone(),
            virtual_cluster_id: vc.clone(),
        })
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        &format!("Job run {} is not in a cancellable state", started.id),
    );
    let status = describe_vc(&mut client, &vc)
        .await
        .scheduler_status
        .unwrap();
    assert_eq!(status.current_in_queue_job_runs, 0);
}

/// Gives a request only this monitoring configuration.
fn monitoring(r: &mut pb::StartJobRunRequest, m: pb::MonitoringConfiguration) {
    r.configuration_overrides = Some(pb::ConfigurationOverrides {
        application_configuration: vec![],
        monitoring_configuration: Some(m),
    });
}

#[tokio::test]
async fn validation_names_the_member_and_the_rule() {
    let Env {
        mut client,
        _dir,
        _server,
    } = env().await;
    let vc = new_virtual_cluster(&mut client).await;
    let before = client
        .list_job_runs(pb::ListJobRunsRequest {
            virtual_cluster_id: vc.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .job_runs
        .len();

    // The full table of rules is in the unit tests of `validate`; these few
    // check that a rule's message reaches a client whole, as a
    // ValidationException, and that nothing is stored.
    type Case = (
        &'static str,
        Box<dyn Fn(&mut pb::StartJobRunRequest)>,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "name pattern",
            Box::new(|r| r.name = "bad name!".into()),
            "at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern",
        ),
        (
            "role missing",
            Box::new(|r| r.execution_role_arn.clear()),
            "Value null at 'executionRoleArn'",
        ),
        (
            "two drivers",
            Box::new(|r| {
                r.job_driver.as_mut().unwrap().spark_sql_job_driver = Some(Default::default())
            }),
            "exactly one of sparkSubmitJobDriver and sparkSqlJobDriver",
        ),
        (
            "log uri",
            Box::new(|r| {
                monitoring(
                    r,
                    pb::MonitoringConfiguration {
                        s3_monitoring_configuration: Some(pb::S3MonitoringConfiguration {
                            log_uri: "/tmp/logs".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                )
            }),
            "s3MonitoringConfiguration.logUri",
        ),
    ];
    for (what, mutate, expected) in cases {
        let mut req = start_request(&vc);
        mutate(&mut req);
        let err = client.start_job_run(req).await.expect_err(what);
        assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err:?}");
        assert_eq!(aws_error(&err), "ValidationException", "{what}");
        assert!(
            err.message().contains(expected),
            "{what}: {:?} lacks {expected:?}",
            err.message()
        );
    }

    let bad_ids = [
        ("", "Value null at 'id'"),
        ("ABC", "at 'id'"),
        (&"a".repeat(65) as &str, "less than or equal to 64"),
    ];
    for (id, expected) in bad_ids {
        let err = client
            .describe_virtual_cluster(pb::DescribeVirtualClusterRequest { id: id.into() })
            .await
            .unwrap_err();
        assert_error(&err, Code::InvalidArgument, "ValidationException", expected);
    }

    let vc_req = create_vc_request("Bad_Namespace");
    let err = client.create_virtual_cluster(vc_req).await.unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "containerProvider.info.eksInfo.namespace",
    );
    let mut vc_req = create_vc_request(&unique("ns"));
    vc_req.security_configuration_id = "nosuchconfig".into();
    let err = client.create_virtual_cluster(vc_req).await.unwrap_err();
    assert_error(
        &err,
        Code::NotFound,
        "ResourceNotFoundException",
        "Security configuration nosuchconfig doesn't exist.",
    );

    let err = client
        .list_job_runs(pb::ListJobRunsRequest {
            virtual_cluster_id: vc.clone(),
            states: vec!["DONE".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "at 'states'",
    );
    let err = client
        .list_job_runs(pb::ListJobRunsRequest {
            virtual_cluster_id: vc.clone(),
            next_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "nextToken",
    );

    // None of the rejected requests left anything behind.
    let after = client
        .list_job_runs(pb::ListJobRunsRequest {
            virtual_cluster_id: vc,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .job_runs
        .len();
    assert_eq!(before, after);
}

#[tokio::test]
async fn client_tokens_make_creates_idempotent() {
    let Env {
        mut client,
        _dir,
        _server,
    } = env().await;
    let vc_req = create_vc_request(&unique("ns"));
    let first = client
        .create_virtual_cluster(vc_req.clone())
        .await
        .unwrap()
        .into_inner();
    let second = client
        .create_virtual_cluster(vc_req.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, second, "same token, same request: same result");
    let mut changed = vc_req.clone();
    changed.name = "renamed".into();
    let err = client.create_virtual_cluster(changed).await.unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "already used with a different CreateVirtualCluster request",
    );

    let req = start_request(&first.id);
    let a = client
        .start_job_run(req.clone())
        .await
        .unwrap()
        .into_inner();
    let b = client
        .start_job_run(req.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a, b);
    let mut changed = req.clone();
    changed.name = "other".into();
    let err = client.start_job_run(changed).await.unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "already used with a different StartJobRun request",
    );
    let runs = client
        .list_job_runs(pb::ListJobRunsRequest {
            virtual_cluster_id: first.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .job_runs;
    assert_eq!(runs.len(), 1, "retries made no second run");

    // Concurrent retries of one request still make exactly one run.
    let req = start_request(&first.id);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let mut c = client.clone();
        let r = req.clone();
        tasks.push(tokio::spawn(async move {
            c.start_job_run(r).await.unwrap().into_inner().id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);

    let tpl = template_request();
    let t1 = client
        .create_job_template(tpl.clone())
        .await
        .unwrap()
        .into_inner();
    let t2 = client
        .create_job_template(tpl.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t1, t2);
    let sc = security_configuration_request();
    let s1 = client
        .create_security_configuration(sc.clone())
        .await
        .unwrap()
        .into_inner();
    let s2 = client
        .create_security_configuration(sc)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s1, s2);
}

#[tokio::test]
async fn listing_pages_newest_first_with_filters() {
    let Env {
        mut client,
        _dir,
        _server,
    } = env().await;
    let vc = new_virtual_cluster(&mut client).await;
    let mut ids = Vec::new();
    for i in 0..23 {
        let mut req = start_request(&vc);
        req.name = if i % 2 == 0 {
            "even".into()
        } else {
            "odd".into()
        };
        ids.push(client.start_job_run(req).await.unwrap().into_inner().id);
    }
    let middle = describe_run(&mut client, &vc, &ids[10])
        .await
        .created_at
        .unwrap();
    for id in &ids[..5] {
        client
            .cancel_job_run(pb::CancelJobRunRequest {
                id: id.clone(),
                virtual_cluster_id: vc.clone(),
            })
            .await
            .unwrap();
    }

    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_job_runs(pb::ListJobRunsRequest {
                virtual_cluster_id: vc.clone(),
                max_results: Some(5),
                next_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.job_runs.len() <= 5);
        pages += 1;
        seen.extend(page.job_runs.into_iter().map(|r| r.id));
        if page.next_token.is_empty() {
            break;
        }
        token = page.next_token;
    }
    assert_eq!(pages, 5);
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    let list = |req: pb::ListJobRunsRequest| {
        let mut c = client.clone();
        async move { c.list_job_runs(req).await.unwrap().into_inner().job_runs }
    };
    let cancelled = list(pb::ListJobRunsRequest {
        virtual_cluster_id: vc.clone(),
        states: vec!["CANCELLED".into()],
        ..Default::default()
    })
    .await;
    assert_eq!(cancelled.len(), 5);
    let odd = list(pb::ListJobRunsRequest {
        virtual_cluster_id: vc.clone(),
        name: "odd".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(odd.len(), 11);
    let before = list(pb::ListJobRunsRequest {
        virtual_cluster_id: vc.clone(),
        created_before: Some(middle),
        ..Default::default()
    })
    .await;
    assert_eq!(before.len(), 11, "createdBefore is inclusive");
    let after = list(pb::ListJobRunsRequest {
        virtual_cluster_id: vc.clone(),
        created_after: Some(middle),
        ..Default::default()
    })
    .await;
    assert_eq!(after.len(), 13, "createdAfter is inclusive");
    let future = Timestamp {
        seconds: 4_000_000_000,
        nanos: 0,
    };
    assert!(
        list(pb::ListJobRunsRequest {
            virtual_cluster_id: vc.clone(),
            created_after: Some(future),
            ..Default::default()
        })
        .await
        .is_empty()
    );

    // A token from one listing is refused by another.
    let page = client
        .list_job_runs(pb::ListJobRunsRequest {
            virtual_cluster_id: vc.clone(),
            max_results: Some(1),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let other = new_virtual_cluster(&mut client).await;
    let err = client
        .list_job_runs(pb::ListJobRunsRequest {
            virtual_cluster_id: other,
            next_token: page.next_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "nextToken",
    );
}

#[tokio::test]
async fn virtual_cluster_listing_filters() {
    let Env {
        mut client,
        _dir,
        _server,
    } = env().await;
    let a = new_virtual_cluster(&mut client).await;
    let mut other_provider = create_vc_request(&unique("ns"));
    other_provider.container_provider.as_mut().unwrap().id = "cluster-b".into();
    let b = client
        .create_virtual_cluster(other_provider)
        .await
        .unwrap()
        .into_inner()
        .id;
    let c = new_virtual_cluster(&mut client).await;
    client
        .delete_virtual_cluster(pb::DeleteVirtualClusterRequest { id: c.clone() })
        .await
        .unwrap();

    let ids = |resp: pb::ListVirtualClustersResponse| {
        resp.virtual_clusters
            .into_iter()
            .map(|v| v.id)
            .collect::<Vec<_>>()
    };
    let all = ids(client
        .list_virtual_clusters(pb::ListVirtualClustersRequest::default())
        .await
        .unwrap()
        .into_inner());
    assert_eq!(all, vec![c.clone(), b.clone(), a.clone()]);
    let running = ids(client
        .list_virtual_clusters(pb::ListVirtualClustersRequest {
            states: vec!["RUNNING".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner());
    assert_eq!(running, vec![b.clone(), a.clone()]);
    let on_b = ids(client
        .list_virtual_clusters(pb::ListVirtualClustersRequest {
            container_provider_id: "cluster-b".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner());
    assert_eq!(on_b, vec![b.clone()]);
    let eks = ids(client
        .list_virtual_clusters(pb::ListVirtualClustersRequest {
            container_provider_type: "EKS".into(),
            max_results: Some(2),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner());
    assert_eq!(eks.len(), 2);
    let err = client
        .list_virtual_clusters(pb::ListVirtualClustersRequest {
            states: vec!["GONE".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "enum value set: [RUNNING, TERMINATING, TERMINATED, ARRESTED]",
    );
}

#[tokio::test]
async fn scheduler_queue_limit_rejects_extra_runs() {
    let Env {
        mut client,
        _dir,
        _server,
    } = env().await;
    let mut req = create_vc_request(&unique("ns"));
    req.scheduler_configuration = Some(pb::SchedulerConfiguration {
        max_in_queue_job_runs: Some(2),
        max_concurrent_job_runs: Some(1),
    });
    let vc = client
        .create_virtual_cluster(req)
        .await
        .unwrap()
        .into_inner()
        .id;
    let first = client
        .start_job_run(start_request(&vc))
        .await
        .unwrap()
        .into_inner();
    client.start_job_run(start_request(&vc)).await.unwrap();
    let err = client.start_job_run(start_request(&vc)).await.unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "maxInQueueJobRuns",
    );
    let described = describe_vc(&mut client, &vc).await;
    assert_eq!(
        described
            .scheduler_status
            .unwrap()
            .current_in_queue_job_runs,
        2
    );
    // A slot frees when a queued run ends.
    client
        .cancel_job_run(pb::CancelJobRunRequest {
            id: first.id,
            virtual_cluster_id: vc.clone(),
        })
        .await
        .unwrap();
    client
        .start_job_run(start_request(&vc))
        .await
        .expect("room in the queue again");
}

fn template_request() -> pb::CreateJobTemplateRequest {
    let data: pb::JobTemplateData = serde_json::from_value(serde_json::json!({
        "executionRoleArn": ROLE_ARN,
        "releaseLabel": "${Release}",
        "jobDriver": {"sparkSubmitJobDriver": {
            "entryPoint": "local:///opt/spark/examples/src/main/python/pi.py",
            "entryPointArguments": ["${Partitions}"],
            "sparkSubmitParameters": "--conf spark.executor.instances=${Executors}"
        }},
        "parameterConfiguration": {
            "Release": {"type": "STRING", "defaultValue": RELEASE},
            "Partitions": {"type": "NUMBER"},
            "Executors": {"type": "NUMBER", "defaultValue": "2"}
        },
        "jobTags": {"from": "template"}
    }))
    .unwrap();
    pb::CreateJobTemplateRequest {
        name: "pi-template".into(),
        client_token: unique("tpl"),
        job_template_data: Some(data),
        ..Default::default()
    }
}

fn security_configuration_request() -> pb::CreateSecurityConfigurationRequest {
    let data: pb::SecurityConfigurationData = serde_json::from_value(serde_json::json!({
        "authorizationConfiguration": {"encryptionConfiguration": {"inTransitEncryptionConfiguration": {
            "tlsCertificateConfiguration": {
                "certificateProviderType": "PEM",
                "publicCertificateSecretArn": "arn:aws:secretsmanager:us-west-2:123456789012:secret:public-cert",
                "privateCertificateSecretArn": "arn:aws:secretsmanager:us-west-2:123456789012:secret:private-key"
            }
        }}}
    }))
    .unwrap();
    pb::CreateSecurityConfigurationRequest {
        name: "tls".into(),
        client_token: unique("sc"),
        security_configuration_data: Some(data),
        ..Default::default()
    }
}

#[tokio::test]
async fn job_templates_fill_in_start_job_run() {
    let Env {
        mut client,
        _dir,
        _server,
    } = env().await;
    let created = client
        .create_job_template(template_request())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        created.arn,
        format!(
            "arn:aws:emr-containers:us-west-2:123456789012:/jobtemplates/{}",
            created.id
        )
    );
    assert!(created.created_at.is_some());
    let described = client
        .describe_job_template(pb::DescribeJobTemplateRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .job_template
        .unwrap();
    assert_eq!(
        described.job_template_data,
        template_request().job_template_data
    );

    let vc = new_virtual_cluster(&mut client).await;
    let start = |params: &[(&str, &str)]| pb::StartJobRunRequest {
        virtual_cluster_id: vc.clone(),
        client_token: unique("token"),
        job_template_id: created.id.clone(),
        job_template_parameters: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    let run = client
        .start_job_run(start(&[("Partitions", "8")]))
        .await
        .unwrap()
        .into_inner();
    let run = describe_run(&mut client, &vc, &run.id).await;
    let submit = run.job_driver.unwrap().spark_submit_job_driver.unwrap();
    assert_eq!(submit.entry_point_arguments, vec!["8"]);
    assert_eq!(
        submit.spark_submit_parameters,
        "--conf spark.executor.instances=2"
    );
    assert_eq!(run.release_label, RELEASE);
    assert_eq!(run.tags.get("from").map(String::as_str), Some("template"));
    assert_eq!(run.job_template_id, created.id);

    let err = client.start_job_run(start(&[])).await.unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "requires a value for the parameter Partitions",
    );
    let err = client
        .start_job_run(start(&[("Partitions", "eight")]))
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "The value 'eight' of job template parameter Partitions is not a NUMBER.",
    );
    let err = client
        .start_job_run(start(&[("Partitions", "8"), ("Bogus", "1")]))
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "jobTemplateParameters.Bogus",
    );
    let err = client
        .start_job_run(start(&[
            ("Partitions", "8"),
            ("Release", "emr-0.0.1-latest"),
        ]))
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::NotFound,
        "ResourceNotFoundException",
        "Release emr-0.0.1-latest doesn't exist.",
    );

    let mut undeclared = template_request();
    undeclared
        .job_template_data
        .as_mut()
        .unwrap()
        .parameter_configuration
        .remove("Executors");
    let err = client.create_job_template(undeclared).await.unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "${Executors}",
    );
    let mut bad_type = template_request();
    bad_type
        .job_template_data
        .as_mut()
        .unwrap()
        .parameter_configuration
        .get_mut("Executors")
        .unwrap()
        .r#type = "INTEGER".into();
    let err = client.create_job_template(bad_type).await.unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "parameterConfiguration.Executors.type",
    );

    let listed = client
        .list_job_templates(pb::ListJobTemplatesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .templates;
    assert_eq!(
        listed.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        vec![created.id.clone()]
    );
    client
        .delete_job_template(pb::DeleteJobTemplateRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap();
    let err = client
        .delete_job_template(pb::DeleteJobTemplateRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "doesn't exist.",
    );
    let err = client
        .start_job_run(start(&[("Partitions", "8")]))
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::NotFound,
        "ResourceNotFoundException",
        "Job template",
    );
}

#[tokio::test]
async fn security_configurations_are_stored_and_returned() {
    let Env {
        mut client,
        _dir,
        _server,
    } = env().await;
    let req = security_configuration_request();
    let created = client
        .create_security_configuration(req.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        created.arn,
        format!(
            "arn:aws:emr-containers:us-west-2:123456789012:/securityconfigurations/{}",
            created.id
        )
    );
    let described = client
        .describe_security_configuration(pb::DescribeSecurityConfigurationRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .security_configuration
        .unwrap();
    assert_eq!(
        described.security_configuration_data,
        req.security_configuration_data
    );
    assert_eq!(described.name, "tls");
    let listed = client
        .list_security_configurations(pb::ListSecurityConfigurationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.security_configurations.len(), 1);

    // A virtual cluster can name it.
    let mut vc = create_vc_request(&unique("ns"));
    vc.security_configuration_id = created.id.clone();
    client.create_virtual_cluster(vc).await.unwrap();

    let mut bad = security_configuration_request();
    bad.security_configuration_data = None;
    let err = client.create_security_configuration(bad).await.unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "Value null at 'securityConfigurationData'",
    );
    let mut bad = security_configuration_request();
    let tls = bad
        .security_configuration_data
        .as_mut()
        .unwrap()
        .authorization_configuration
        .as_mut()
        .unwrap()
        .encryption_configuration
        .as_mut()
        .unwrap()
        .in_transit_encryption_configuration
        .as_mut()
        .unwrap()
        .tls_certificate_configuration
        .as_mut()
        .unwrap();
    tls.public_certificate_secret_arn = "not-an-arn".into();
    let err = client.create_security_configuration(bad).await.unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "publicCertificateSecretArn",
    );

    client
        .delete_security_configuration(pb::DeleteSecurityConfigurationRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap();
    let err = client
        .describe_security_configuration(pb::DescribeSecurityConfigurationRequest {
            id: created.id,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn tags_on_virtual_clusters_and_job_runs() {
    let Env {
        mut client,
        _dir,
        _server,
    } = env().await;
    let vc = new_virtual_cluster(&mut client).await;
    let vc_arn = format!("arn:aws:emr-containers:us-west-2:123456789012:/virtualclusters/{vc}");
    let run = client
        .start_job_run(start_request(&vc))
        .await
        .unwrap()
        .into_inner();

    for arn in [vc_arn.clone(), run.arn.clone()] {
        client
            .tag_resource(pb::TagResourceRequest {
                resource_arn: arn.clone(),
                tags: BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())]),
            })
            .await
            .unwrap();
        client
            .untag_resource(pb::UntagResourceRequest {
                resource_arn: arn.clone(),
                tag_keys: vec!["a".into()],
            })
            .await
            .unwrap();
        let tags = client
            .list_tags_for_resource(pb::ListTagsForResourceRequest {
                resource_arn: arn.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .tags;
        assert_eq!(tags, BTreeMap::from([("b".into(), "2".into())]));
    }
    let run = describe_run(&mut client, &vc, &run.id).await;
    assert_eq!(run.tags.get("b").map(String::as_str), Some("2"));
    assert_eq!(run.state, "PENDING", "tagging changes nothing else");

    // The 50-tag limit counts the tags already there.
    let many: BTreeMap<_, _> = (0..50)
        .map(|i| (format!("k{i}"), "v".to_string()))
        .collect();
    let err = client
        .tag_resource(pb::TagResourceRequest {
            resource_arn: vc_arn.clone(),
            tags: many,
        })
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "at 'tags'",
    );
    let tags = client
        .list_tags_for_resource(pb::ListTagsForResourceRequest {
            resource_arn: vc_arn.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tags;
    assert_eq!(tags.len(), 1, "a refused tag request changes nothing");

    let err = client
        .list_tags_for_resource(pb::ListTagsForResourceRequest {
            resource_arn: "arn:aws:s3:::bucket".into(),
        })
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::InvalidArgument,
        "ValidationException",
        "resourceArn",
    );
    let elsewhere =
        "arn:aws:emr-containers:eu-west-1:123456789012:/virtualclusters/0000000000000000000000000";
    let err = client
        .list_tags_for_resource(pb::ListTagsForResourceRequest {
            resource_arn: elsewhere.into(),
        })
        .await
        .unwrap_err();
    assert_error(
        &err,
        Code::NotFound,
        "ResourceNotFoundException",
        "doesn't exist",
    );
}

#[tokio::test]
async fn health_and_graceful_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let channel = tonic::transport::Channel::from_shared(server.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    // The standard gRPC health service answers for the API.
    let mut health = tonic::client::Grpc::new(channel);
    health.ready().await.unwrap();
    let mut client = server.client().await;
    let vc = new_virtual_cluster(&mut client).await;
    assert!(server.terminate(), "SIGTERM exits cleanly with status 0");
    let server = Server::start(dir.path());
    let mut client = server.client().await;
    let described = client
        .describe_virtual_cluster(pb::DescribeVirtualClusterRequest { id: vc })
        .await
        .unwrap();
    assert_eq!(
        described.into_inner().virtual_cluster.unwrap().state,
        "RUNNING"
    );
}
