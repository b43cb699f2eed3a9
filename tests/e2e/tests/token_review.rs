//! Kubernetes bearer tokens on the real server and the local cluster: a
//! ServiceAccount token requested for the `sparkvc` audience authenticates
//! as the principal the identity store maps it to (policies, tags and
//! `createdBy` included); a token for the API server's own audience, a
//! token of an unmapped ServiceAccount and garbage are refused.

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, ObjectMeta, PostParams};
use sparkvc_cluster_tests::{LocalEnv, TestNamespace};
use sparkvc_e2e::*;
use std::path::Path;
use std::process::Output;

const WORKER_ARN: &str = "arn:aws:sts::123456789012:assumed-role/airflow/worker";

fn identities(dir: &Path, namespace: &str) -> std::path::PathBuf {
    let path = dir.join("identities.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[token_review]
cluster = "local"
audiences = ["sparkvc"]

[[policy]]
name = "own-namespace"
document = '''
{{"Version":"2012-10-17","Statement":[
  {{"Effect":"Allow","NotAction":"emr-containers:CreateVirtualCluster","Resource":"*"}},
  {{"Effect":"Allow","Action":"emr-containers:CreateVirtualCluster","Resource":"*",
    "Condition":{{"StringEquals":{{"aws:RequestTag/namespace":"${{aws:PrincipalTag/kubernetes-namespace}}"}}}}}}]}}
'''

[[principal]]
arn = "{WORKER_ARN}"
policies = ["own-namespace"]
tags = {{ team = "data" }}

[[kubernetes_identity]]
service_account = "{namespace}:worker"
principal = "{WORKER_ARN}"
"#
        ),
    )
    .unwrap();
    path
}

async fn token_for(api: &Api<ServiceAccount>, name: &str, audience: &str) -> String {
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(vec![audience.to_string()]),
            expiration_seconds: Some(600),
            ..Default::default()
        }),
        ..Default::default()
    };
    api.create_token_request(name, &PostParams::default(), &request)
        .await
        .expect("a token request")
        .status
        .and_then(|status| status.token)
        .expect("a token")
}

/// The CLI, sending the token in `token_file` and no AWS credentials.
fn cli(endpoint: &str, token_file: &Path, args: &[&str]) -> Output {
    let token_file = token_file.to_str().expect("utf-8 path");
    let args: Vec<&str> = args
        .iter()
        .copied()
        .chain(["--bearer-token-file", token_file])
        .collect();
    sparkvc_isolated(endpoint, &[], &args)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn service_account_tokens_act_as_the_mapped_principal() {
    let env = LocalEnv::load().expect("local environment");
    let kube = env.kube_client().await.expect("kube client");
    let ns = TestNamespace::create(&kube, "tokens").await.unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(kube.clone(), &ns.name);
    for name in ["worker", "stranger"] {
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        accounts.create(&PostParams::default(), &sa).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let ids = identities(dir.path(), &ns.name);
    let mut args = vec!["--identities".to_string(), ids.display().to_string()];
    args.extend(env.server_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(&dir.path().join("data"), &args);
    let endpoint = server.endpoint();
    let write = |name: &str, token: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, token).unwrap();
        path
    };

    let worker = write("worker", &token_for(&accounts, "worker", "sparkvc").await);
    let created = cli(
        &endpoint,
        &worker,
        &[
            "create-virtual-cluster",
            "--name",
            "by-token",
            "--container-provider",
            &format!(
                "id=local,type=EKS,info={{eksInfo={{namespace={}}}}}",
                ns.name
            ),
            "--tags",
            &format!("namespace={}", ns.name),
        ],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let id = json_of(&created)["id"].as_str().unwrap().to_string();
    let template = cli(
        &endpoint,
        &worker,
        &[
            "create-job-template",
            "--name",
            "t",
            "--job-template-data",
            r#"{"executionRoleArn":"arn:aws:iam::123456789012:role/r","releaseLabel":"emr-7.9.0-latest","jobDriver":{"sparkSubmitJobDriver":{"entryPoint":"local:///x.py"}}}"#,
        ],
    );
    assert!(template.status.success(), "{}", stderr(&template));
    let template_id = json_of(&template)["id"].as_str().unwrap().to_string();
    let described = cli(
        &endpoint,
        &worker,
        &["describe-job-template", "--id", &template_id],
    );
    assert!(described.status.success(), "{}", stderr(&described));
    assert_eq!(
        json_of(&described)["jobTemplate"]["createdBy"],
        WORKER_ARN,
        "createdBy is the mapped principal"
    );

    // The same worker, but a token for the API server's audience: refused.
    let api_audience = write(
        "api-audience",
        &token_for(
            &accounts,
            "worker",
            "https://kubernetes.default.svc.cluster.local",
        )
        .await,
    );
    let out = cli(&endpoint, &api_audience, &["list-virtual-clusters"]);
    assert!(
        stderr(&out).contains("UnrecognizedClientException"),
        "{}",
        stderr(&out)
    );

    // A valid token of a ServiceAccount nobody mapped: refused.
    let stranger = write(
        "stranger",
        &token_for(&accounts, "stranger", "sparkvc").await,
    );
    let out = cli(&endpoint, &stranger, &["list-virtual-clusters"]);
    assert!(
        stderr(&out).contains("UnrecognizedClientException"),
        "{}",
        stderr(&out)
    );

    // Garbage.
    let garbage = write("garbage", "not.a.token");
    let out = cli(&endpoint, &garbage, &["list-virtual-clusters"]);
    assert!(
        stderr(&out).contains("UnrecognizedClientException"),
        "{}",
        stderr(&out)
    );

    // Policies see the tags the token brings: a create tagged for another
    // namespace than the ServiceAccount's is denied.
    let out = cli(
        &endpoint,
        &worker,
        &[
            "create-virtual-cluster",
            "--name",
            "elsewhere",
            "--container-provider",
            "id=local,type=EKS,info={eksInfo={namespace=default}}",
            "--tags",
            "namespace=default",
        ],
    );
    assert!(
        stderr(&out).contains("AccessDeniedException"),
        "{}",
        stderr(&out)
    );

    let deleted = cli(&endpoint, &worker, &["delete-virtual-cluster", "--id", &id]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    drop(server);
    ns.delete().await.unwrap();
}
