//! Two tenants on one real server, each signing with its own key and held
//! to IAM policies: every operation against A's and B's resources, as A, as
//! B and unauthenticated. The matrix (operation × case) is printed with its
//! totals; a cross-tenant call that succeeds fails the test.

use aws_credential_types::Credentials;
use sparkvc_cli::client::{SignedChannel, Signer};
use sparkvc_e2e::*;
use sparkvc_proto::EmrContainersClient;
use sparkvc_proto::v1 as pb;
use std::collections::BTreeMap;

type Client = EmrContainersClient<SignedChannel>;

const REGION: &str = "us-west-2";
const ACCOUNT: &str = "123456789012";

/// One policy for every tenant: resources tagged with the tenant's team,
/// creates only with that tag, its own execution roles only; tenant B may
/// also never delete a virtual cluster (an explicit Deny that beats the
/// Allow).
const TENANT_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "CreateTagged", "Effect": "Allow",
     "Action": ["emr-containers:CreateVirtualCluster", "emr-containers:CreateJobTemplate", "emr-containers:TagResource"],
     "Resource": "*",
     "Condition": {"StringEquals": {"aws:RequestTag/team": "${aws:PrincipalTag/team}"}}},
    {"Sid": "OwnResources", "Effect": "Allow",
     "Action": ["emr-containers:*", "sparkvc:*"],
     "Resource": "*",
     "Condition": {"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}}},
    {"Sid": "Lists", "Effect": "Allow",
     "Action": ["emr-containers:ListVirtualClusters", "emr-containers:ListJobTemplates"],
     "Resource": "*"},
    {"Sid": "OwnRoles", "Effect": "Allow", "Action": "iam:PassRole",
     "Resource": "arn:aws:iam::123456789012:role/${aws:PrincipalTag/team}-*"}
  ]
}"#;

const NO_DELETE: &str = r#"{
  "Version": "2012-10-17",
  "Statement": {"Sid": "KeepClusters", "Effect": "Deny", "Action": "emr-containers:DeleteVirtualCluster", "Resource": "*"}
}"#;

fn identities() -> String {
    format!(
        r#"
[[policy]]
name = "tenant"
document = '''{TENANT_POLICY}'''

[[policy]]
name = "no-delete"
document = '''{NO_DELETE}'''

[[group]]
name = "tenants"
policies = ["tenant"]

[[principal]]
arn = "arn:aws:iam::{ACCOUNT}:user/alice"
groups = ["tenants"]
tags = {{ team = "a" }}
[[principal.access_key]]
id = "AKIATENANTA000000001"
secret = "secret-a"

[[principal]]
arn = "arn:aws:iam::{ACCOUNT}:user/bob"
groups = ["tenants"]
policies = ["no-delete"]
tags = {{ team = "b" }}
[[principal.access_key]]
id = "AKIATENANTB000000001"
secret = "secret-b"
"#
    )
}

async fn client(server: &Server, key: Option<(&str, &str)>) -> Client {
    let signer = key
        .map(|(id, secret)| Signer::new(Credentials::new(id, secret, None, None, "test"), REGION));
    EmrContainersClient::new(
        SignedChannel::connect(&server.endpoint(), signer)
            .await
            .unwrap(),
    )
}

/// What one tenant owns.
struct Owned {
    team: &'static str,
    vc: String,
    run: String,
    template: String,
}

fn tags(team: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("team".to_string(), team.to_string())])
}

fn role(team: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{team}-spark")
}

async fn set_up(c: &mut Client, team: &'static str) -> Owned {
    let mut create = create_vc_request(&unique("ns"));
    create.tags = tags(team);
    let vc = c
        .create_virtual_cluster(create)
        .await
        .unwrap()
        .into_inner()
        .id;
    let mut start = start_request(&vc);
    start.tags = tags(team);
    start.execution_role_arn = role(team);
    let run = c.start_job_run(start).await.unwrap().into_inner().id;
    let template = c
        .create_job_template(pb::CreateJobTemplateRequest {
            name: format!("t-{team}"),
            client_token: unique("t"),
            tags: tags(team),
            job_template_data: Some(pb::JobTemplateData {
                execution_role_arn: role(team),
                release_label: RELEASE.into(),
                job_driver: Some(submit_driver("local:///x.py")),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .id;
    Owned {
        team,
        vc,
        run,
        template,
    }
}

/// The AWS error of a call, or "ok".
fn outcome<T>(result: Result<tonic::Response<T>, tonic::Status>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(status) => aws_error(&status),
    }
}

/// Every operation on `target`'s resources, as `c`: (operation, outcome).
async fn every_operation(c: &mut Client, target: &Owned) -> Vec<(&'static str, String)> {
    let arn = |kind: &str| match kind {
        "vc" => format!(
            "arn:aws:emr-containers:{REGION}:{ACCOUNT}:/virtualclusters/{}",
            target.vc
        ),
        _ => format!(
            "arn:aws:emr-containers:{REGION}:{ACCOUNT}:/virtualclusters/{}/jobruns/{}",
            target.vc, target.run
        ),
    };
    let run_id = || pb::DescribeJobRunRequest {
        id: target.run.clone(),
        virtual_cluster_id: target.vc.clone(),
    };
    let mut start = start_request(&target.vc);
    start.tags = tags(target.team);
    start.execution_role_arn = role(target.team);
    let mut out = vec![
        (
            "DescribeVirtualCluster",
            outcome(
                c.describe_virtual_cluster(pb::DescribeVirtualClusterRequest {
                    id: target.vc.clone(),
                })
                .await,
            ),
        ),
        (
            "UpdateVirtualCluster",
            outcome(
                c.update_virtual_cluster(pb::UpdateVirtualClusterRequest {
                    id: target.vc.clone(),
                    client_token: unique("u"),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "ListJobRuns",
            outcome(
                c.list_job_runs(pb::ListJobRunsRequest {
                    virtual_cluster_id: target.vc.clone(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        ("StartJobRun", outcome(c.start_job_run(start).await)),
        (
            "DescribeJobRun",
            outcome(c.describe_job_run(run_id()).await),
        ),
        (
            "GetJobRunLogs",
            outcome(
                c.get_job_run_logs(pb::GetJobRunLogsRequest {
                    id: target.run.clone(),
                    virtual_cluster_id: target.vc.clone(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "GetJobRunAppUiUrl",
            outcome(
                c.get_job_run_app_ui_url(pb::GetJobRunAppUiUrlRequest {
                    id: target.run.clone(),
                    virtual_cluster_id: target.vc.clone(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "DescribeJobTemplate",
            outcome(
                c.describe_job_template(pb::DescribeJobTemplateRequest {
                    id: target.template.clone(),
                })
                .await,
            ),
        ),
        (
            "ListTagsForResource",
            outcome(
                c.list_tags_for_resource(pb::ListTagsForResourceRequest {
                    resource_arn: arn("vc"),
                })
                .await,
            ),
        ),
        (
            "TagResource",
            outcome(
                c.tag_resource(pb::TagResourceRequest {
                    resource_arn: arn("run"),
                    tags: tags(target.team),
                })
                .await,
            ),
        ),
        (
            "UntagResource",
            outcome(
                c.untag_resource(pb::UntagResourceRequest {
                    resource_arn: arn("run"),
                    tag_keys: vec!["other".into()],
                })
                .await,
            ),
        ),
        (
            "CancelJobRun",
            outcome(
                c.cancel_job_run(pb::CancelJobRunRequest {
                    id: target.run.clone(),
                    virtual_cluster_id: target.vc.clone(),
                })
                .await,
            ),
        ),
        (
            "DeleteJobTemplate",
            outcome(
                c.delete_job_template(pb::DeleteJobTemplateRequest {
                    id: target.template.clone(),
                })
                .await,
            ),
        ),
    ];
    out.push((
        "DeleteVirtualCluster",
        outcome(
            c.delete_virtual_cluster(pb::DeleteVirtualClusterRequest {
                id: target.vc.clone(),
            })
            .await,
        ),
    ));
    out
}

#[tokio::test]
async fn tenants_reach_only_their_own_resources() {
    let dir = tempfile::tempdir().unwrap();
    let ids = dir.path().join("identities.toml");
    std::fs::write(&ids, identities()).unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--identities", ids.to_str().unwrap()],
    );
    let mut a = client(&server, Some(("AKIATENANTA000000001", "secret-a"))).await;
    let mut b = client(&server, Some(("AKIATENANTB000000001", "secret-b"))).await;
    let mut nobody = client(&server, None).await;

    // Creates must carry the creator's own team tag, runs its own role.
    let mut untagged = create_vc_request(&unique("ns"));
    assert_eq!(
        outcome(a.create_virtual_cluster(untagged.clone()).await),
        "AccessDeniedException"
    );
    untagged.tags = tags("b");
    let denied = a.create_virtual_cluster(untagged).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        denied.message(),
        format!(
            "User: arn:aws:iam::{ACCOUNT}:user/alice is not authorized to perform: emr-containers:CreateVirtualCluster on resource: * because no identity-based policy allows the emr-containers:CreateVirtualCluster action"
        )
    );
    let mine_a = set_up(&mut a, "a").await;
    let mine_b = set_up(&mut b, "b").await;
    let mut foreign_role = start_request(&mine_a.vc);
    foreign_role.tags = tags("a");
    foreign_role.execution_role_arn = role("b");
    let denied = a.start_job_run(foreign_role).await.unwrap_err();
    assert!(
        denied
            .message()
            .contains("iam:PassRole on resource: arn:aws:iam::123456789012:role/b-spark"),
        "{}",
        denied.message()
    );

    // Lists show only what the caller may describe.
    let listed = a
        .list_virtual_clusters(pb::ListVirtualClustersRequest::default())
        .await
        .unwrap()
        .into_inner();
    let seen: Vec<&str> = listed
        .virtual_clusters
        .iter()
        .map(|v| v.id.as_str())
        .collect();
    assert_eq!(seen, [mine_a.vc.as_str()]);
    let templates = b
        .list_job_templates(pb::ListJobTemplatesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(templates.templates.len(), 1);
    assert_eq!(templates.templates[0].id, mine_b.template);

    // The matrix: cross-tenant and unauthenticated first, while everything
    // still exists; then each tenant on its own resources.
    let mut rows: Vec<(String, &'static str, String, bool, bool)> = Vec::new();
    let mut record = |case: &str, results: Vec<(&'static str, String)>, expect_allowed: bool| {
        for (op, got) in results {
            let ok = if expect_allowed {
                got != "AccessDeniedException" && !got.contains("Authentication")
            } else {
                got == "AccessDeniedException" || got == "MissingAuthenticationTokenException"
            };
            rows.push((case.to_string(), op, got, expect_allowed, ok));
        }
    };
    record("A on B's", every_operation(&mut a, &mine_b).await, false);
    record("B on A's", every_operation(&mut b, &mine_a).await, false);
    record(
        "nobody on A's",
        every_operation(&mut nobody, &mine_a).await,
        false,
    );
    record("A on A's", every_operation(&mut a, &mine_a).await, true);
    let own_b = every_operation(&mut b, &mine_b).await;
    // B's explicit Deny beats its Allow on its own cluster.
    let (_, delete) = own_b
        .iter()
        .find(|(op, _)| *op == "DeleteVirtualCluster")
        .unwrap();
    assert_eq!(delete, "AccessDeniedException");
    record(
        "B on B's",
        own_b
            .into_iter()
            .filter(|(op, _)| *op != "DeleteVirtualCluster")
            .collect(),
        true,
    );

    println!("{:<16} {:<24} {:<40} pass", "case", "operation", "outcome");
    for (case, op, got, _, ok) in &rows {
        println!(
            "{case:<16} {op:<24} {got:<40} {}",
            if *ok { "yes" } else { "NO" }
        );
    }
    let failures: Vec<_> = rows.iter().filter(|r| !r.4).collect();
    let cross_success = rows
        .iter()
        .filter(|(_, _, got, expect_allowed, _)| !expect_allowed && got == "ok")
        .count();
    println!(
        "{} cells, {} as expected, {} cross-tenant or unauthenticated successes",
        rows.len(),
        rows.len() - failures.len(),
        cross_success
    );
    assert_eq!(cross_success, 0);
    assert!(failures.is_empty(), "unexpected outcomes: {failures:?}");

    // The audit log: one record per call, with the decision that was made.
    // Calls before the matrix: 2 refused creates, 3 + 3 set-up calls, the
    // foreign role, 2 lists; the matrix: its cells plus B's refused delete.
    let calls = 11 + rows.len() + 1;
    let denied = 4 + rows
        .iter()
        .filter(|(_, _, got, _, _)| got == "AccessDeniedException")
        .count();
    // Records reach the file from the log's writer thread just after their
    // calls: wait a little for the last ones (and for any extra ones).
    let audit = dir.path().join("data/audit.log");
    let read = || std::fs::read_to_string(&audit).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while read().lines().count() < calls && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let text = read();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), calls, "one record per call");
    let count =
        |pred: &dyn Fn(&serde_json::Value) -> bool| records.iter().filter(|r| pred(r)).count();
    assert_eq!(
        count(&|r| r["error_code"] == "AccessDeniedException"
            && (r["decision"] == "implicit-deny" || r["decision"] == "explicit-deny")),
        denied
    );
    // B's Deny on DeleteVirtualCluster, on its own cluster and on A's.
    assert_eq!(count(&|r| r["decision"] == "explicit-deny"), 2);
    assert_eq!(
        count(&|r| r["decision"] == "unauthenticated"
            && r["error_code"] == "MissingAuthenticationTokenException"),
        14
    );
    assert!(
        records
            .iter()
            .all(|r| r["request_id"].as_str().is_some_and(|id| id.len() == 36))
    );
    assert!(
        !text.contains("secret-a") && !text.contains("Signature="),
        "no secrets in the audit log"
    );
    let start = records
        .iter()
        .find(|r| r["action"] == "iam:PassRole" && r["decision"] == "implicit-deny")
        .expect("the refused PassRole is audited");
    assert_eq!(
        start["principal"],
        format!("arn:aws:iam::{ACCOUNT}:user/alice")
    );
    assert_eq!(start["source_ip"], "127.0.0.1");
    println!("audit log: {} records, {} denials", records.len(), denied);
}

/// A tenant over its request rate is refused with ThrottlingException and
/// nothing it sent is stored, while another tenant is served as before.
#[tokio::test]
async fn a_flooding_tenant_is_throttled_and_another_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let ids = dir.path().join("identities.toml");
    let limited = identities().replace(
        "[[group]]\nname = \"tenants\"\npolicies = [\"tenant\"]\n",
        "[[group]]\nname = \"tenants\"\npolicies = [\"tenant\"]\nrate_limit = { requests_per_second = 2.0, burst = 5 }\n",
    );
    assert_ne!(limited, identities(), "the limit was written");
    std::fs::write(&ids, limited).unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--identities", ids.to_str().unwrap()],
    );
    let mut a = client(&server, Some(("AKIATENANTA000000001", "secret-a"))).await;
    let mut b = client(&server, Some(("AKIATENANTB000000001", "secret-b"))).await;
    let mut outcomes = Vec::new();
    for _ in 0..20 {
        let mut create = create_vc_request(&unique("ns"));
        create.tags = tags("a");
        outcomes.push(outcome(a.create_virtual_cluster(create).await));
    }
    let served = outcomes.iter().filter(|o| *o == "ok").count();
    let throttled = outcomes
        .iter()
        .filter(|o| *o == "ThrottlingException")
        .count();
    assert_eq!(served + throttled, 20, "{outcomes:?}");
    assert!(
        (5..=7).contains(&served),
        "the burst and a little refill: {outcomes:?}"
    );
    // B's bucket is its own.
    let listed = b
        .list_virtual_clusters(pb::ListVirtualClustersRequest::default())
        .await
        .expect("B is not throttled by A's flood");
    assert!(listed.into_inner().virtual_clusters.is_empty());
    // Only what was served is stored.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let mine = a
        .list_virtual_clusters(pb::ListVirtualClustersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.virtual_clusters.len(), served);
    let status = a
        .list_virtual_clusters(pb::ListVirtualClustersRequest::default())
        .await;
    if let Err(status) = status {
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    }
}
