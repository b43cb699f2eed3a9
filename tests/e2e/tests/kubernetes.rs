//! The server with a real Kubernetes cluster configured (the local cluster of
//! `deploy/local`): virtual clusters are checked against the cluster's
//! namespaces and RBAC before they are created.

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::config::Kubeconfig;
use sparkvc_cluster_tests::{LocalEnv, TestNamespace};
use sparkvc_e2e::*;
use tonic::Code;

fn cluster_args(env: &LocalEnv, kubeconfig: &std::path::Path) -> Vec<String> {
    vec![
        "--cluster".into(),
        format!("local={}", env.context),
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
    ]
}

fn start(dir: &std::path::Path, args: &[String]) -> Server {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_with(dir, &args)
}

#[tokio::test]
async fn virtual_clusters_need_an_existing_namespace_on_a_known_cluster() {
    let env = LocalEnv::load().expect("local environment");
    let kube = env.kube_client().await.expect("kube client");
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &cluster_args(&env, &env.server_kubeconfig));
    let mut client = server.client().await;

    let missing = unique("absent");
    let err = client
        .create_virtual_cluster(create_vc_request(&missing))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.message(),
        format!("Namespace {missing} does not exist on cluster local; create it first.")
    );

    let mut elsewhere = create_vc_request("default");
    elsewhere.container_provider.as_mut().unwrap().id = "prod-east".into();
    let err = client.create_virtual_cluster(elsewhere).await.unwrap_err();
    assert_eq!(aws_error(&err), "ValidationException");
    assert!(err.message().contains("prod-east is not a cluster this sparkvc server runs job runs on; known clusters: local."), "{}", err.message());

    let ns = TestNamespace::create(&kube, "vc-ns").await.unwrap();
    let created = client
        .create_virtual_cluster(create_vc_request(&ns.name))
        .await
        .expect("namespace exists, admin may do everything")
        .into_inner();
    assert_eq!(created.id.len(), 25);
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn missing_permissions_are_named() {
    let env = LocalEnv::load().expect("local environment");
    let kube = env.kube_client().await.expect("kube client");
    let ns = TestNamespace::create(&kube, "vc-rbac").await.unwrap();
    // sparkvc runs as a service account with no RoleBinding at all.
    let sas: Api<ServiceAccount> = Api::namespaced(kube.clone(), &ns.name);
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("powerless".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    sas.create(&PostParams::default(), &sa).await.unwrap();
    let mut kubeconfig = Kubeconfig::read_from(&env.kubeconfig).unwrap();
    for user in &mut kubeconfig.auth_infos {
        if let Some(auth) = user.auth_info.as_mut() {
            auth.impersonate = Some(format!("system:serviceaccount:{}:powerless", ns.name));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let limited = dir.path().join("limited.kubeconfig");
    std::fs::write(&limited, serde_json::to_string(&kubeconfig).unwrap()).unwrap();

    let server = start(&dir.path().join("data"), &cluster_args(&env, &limited));
    let mut client = server.client().await;
    let err = client
        .create_virtual_cluster(create_vc_request(&ns.name))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(
        err.message(),
        format!(
            "sparkvc is not allowed to create pods in namespace {} on cluster local; grant it with a Role and RoleBinding in that namespace.",
            ns.name
        )
    );
    ns.delete().await.unwrap();
}
