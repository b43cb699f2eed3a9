//! Least privilege, shown on the local cluster: the chart's RBAC is what
//! sparkvc uses on a cluster, and each permission in it is needed.
//!
//! The chart is rendered with a tenant namespace bound and TokenReviews on;
//! its ServiceAccount, Roles, ClusterRoles and bindings are created on the
//! cluster, and sparkvc-server runs as that ServiceAccount (a kubeconfig
//! that impersonates it) through a scenario that does everything sparkvc does
//! on a cluster: hold the Lease, authenticate a caller's ServiceAccount token,
//! create a virtual cluster and set up its namespace, run a job to COMPLETED
//! and clean it up, restart (the shared objects then exist and are read back),
//! show a running driver's live UI, cancel a run, delete the virtual cluster.
//!
//! With the whole RBAC every step passes and the API server forbids nothing.
//! Then, for each (role, API group, resource, verb) the chart grants, the
//! same scenario runs with that one permission taken out, and must fail at a
//! named step; the test prints the table of which step failed and why. A
//! permission whose removal fails nothing is reported as unneeded, and the
//! test fails.
//!
//! kwok simulates the pods (no container runs): the test creates the driver
//! pods that spark-submit would create, as `tests/e2e/tests/execution.rs`
//! does. The live UI is reached through the API server's pod proxy; a kwok
//! pod serves nothing there, so that step checks only that the API server
//! let sparkvc through (no Forbidden), not a page.

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, LimitRange, Pod, ResourceQuota, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::config::Kubeconfig;
use serde_json::json;
use sparkvc_cluster_tests::{LocalEnv, TestNamespace, kwok};
use sparkvc_e2e::{Server, create_vc_request, start_request};
use sparkvc_helm_tests::rbac::{Permission, Rbac};
use sparkvc_helm_tests::render_release;
use sparkvc_proto::v1 as pb;
use sparkvc_proto::v1::emr_containers_client::EmrContainersClient;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Labels every object this test creates outside a test namespace, so that
/// a run that died half-way is cleaned up by the next.
const TEST_LABEL: &str = "sparkvc.io/test";
const TEST_LABEL_VALUE: &str = "least-privilege";

/// Scenarios run at once: each is one server and two namespaces.
const PARALLEL: usize = 4;

/// How long one step may take before it counts as failed.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// A gRPC client that sends a Kubernetes bearer token.
type Client = EmrContainersClient<InterceptedService<Channel, Bearer>>;

#[derive(Clone)]
struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

/// Where and why a scenario stopped.
#[derive(Debug)]
struct Failure {
    step: &'static str,
    why: String,
}

/// The server's log, read for the API server's refusals.
struct Log(PathBuf);

impl Log {
    /// The first line that reports a Forbidden answer of the API server.
    fn forbidden(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.0).unwrap_or_default();
        text.lines()
            .find(|l| l.to_ascii_lowercase().contains("forbidden"))
            .map(|l| l.to_string())
    }
}

/// Everything one scenario needs.
struct Scenario<'a> {
    env: &'a LocalEnv,
    kube: &'a kube::Client,
    release_namespace: &'a str,
}

/// What one scenario made, for the trial to clean up.
struct Made {
    tenant: TestNamespace,
    rbac: Rbac,
}

impl Scenario<'_> {
    /// Installs `rbac` (the chart's, perhaps less one permission) for a fresh
    /// tenant namespace and runs the scenario as its ServiceAccount.
    async fn run(&self, index: usize, without: Option<&Permission>) -> Result<Option<Failure>> {
        let tenant = TestNamespace::create(self.kube, "lp").await?;
        let release = format!("lp{index}-{:x}", sparkvc_cluster_tests::rand_u32() & 0xffff);
        let set_tenant = format!("rbac.tenantNamespaces={{{}}}", tenant.name);
        let rendered = render_release(
            &release,
            self.release_namespace,
            &[],
            &[&set_tenant, "rbac.tokenReview=true"],
        )?;
        let full = Rbac::from_rendering(&rendered)?;
        let rbac = match without {
            Some(p) => full.without(p),
            None => full,
        };
        let made = Made { tenant, rbac };
        let labels = [(TEST_LABEL, TEST_LABEL_VALUE)];
        let outcome = match made.rbac.apply(self.kube, &labels).await {
            Ok(()) => self.steps(&made).await,
            Err(e) => Err(e),
        };
        made.rbac.delete_cluster_scoped(self.kube).await;
        let _ = made.tenant.delete().await;
        outcome
    }

    async fn steps(&self, made: &Made) -> Result<Option<Failure>> {
        let tenant = made.tenant.name.as_str();
        let sparkvc = made.rbac.fullname();
        let work = tempfile::tempdir()?;
        let config = self.write_config(work.path(), tenant, &sparkvc).await?;
        let data = work.path().join("data");
        std::fs::create_dir(&data)?;
        let log = Log(work.path().join("server.log"));
        let args = ["--config", config.to_str().context("utf-8 path")?];
        let token = caller_token(self.kube, tenant).await?;

        let fail = |step: &'static str, why: String| Ok(Some(Failure { step, why }));
        let mut server = Server::start_logging_to(&data, &args, &[], &log.0);
        if let Err(why) = ready(&server, &log).await {
            return fail("Lease held (/readyz)", why);
        }
        let mut client = connect(&server, &token).await?;
        if let Err(why) = client
            .list_virtual_clusters(pb::ListVirtualClustersRequest::default())
            .await
        {
            return fail("token caller authenticated", status_text(&why, &log));
        }
        let vc = match client
            .create_virtual_cluster(create_vc_request(tenant))
            .await
        {
            Ok(vc) => vc.into_inner().id,
            Err(why) => return fail("CreateVirtualCluster", status_text(&why, &log)),
        };
        if let Err(why) = self.namespace_set_up(tenant, &log).await {
            return fail("namespace set up", why);
        }
        if let Err(why) = self.run_completes(&mut client, &vc, tenant, &log).await {
            return fail("run COMPLETED, its pods removed", why);
        }
        // A clean stop releases the Lease; the successor reads it back and
        // takes it, and finds the namespace's shared objects already there.
        server.terminate();
        server = Server::start_logging_to(&data, &args, &[], &log.0);
        if let Err(why) = ready(&server, &log).await {
            return fail("restart: Lease taken again", why);
        }
        client = connect(&server, &token).await?;
        if let Err(why) = self.namespace_set_up(tenant, &log).await {
            return fail("restart: namespace set up", why);
        }
        if let Err(why) = self
            .live_ui_then_cancel(&server, &mut client, &vc, tenant, &log)
            .await
        {
            return fail("live UI link, cancel", why);
        }
        if let Err(why) = self
            .delete_virtual_cluster(&mut client, &vc, tenant, &log)
            .await
        {
            return fail("DeleteVirtualCluster tears down", why);
        }
        if let Some(line) = log.forbidden() {
            return fail("(after the scenario)", line);
        }
        server.terminate();
        Ok(None)
    }

    /// The server's configuration: the local cluster as the chart's
    /// ServiceAccount, the chart's Lease, TokenReviews for callers, and
    /// tenancy settings that make every per-namespace object.
    async fn write_config(&self, dir: &Path, tenant: &str, sparkvc: &str) -> Result<PathBuf> {
        let mut kubeconfig = Kubeconfig::read_from(&self.env.kubeconfig)?;
        for user in &mut kubeconfig.auth_infos {
            if let Some(auth) = user.auth_info.as_mut() {
                auth.impersonate = Some(format!(
                    "system:serviceaccount:{}:{sparkvc}",
                    self.release_namespace
                ));
            }
        }
        let kubeconfig_path = dir.join("kubeconfig");
        std::fs::write(&kubeconfig_path, serde_json::to_string(&kubeconfig)?)?;
        let identities = dir.join("identities.toml");
        std::fs::write(
            &identities,
            format!(
                r#"[token_review]
cluster = "local"
audiences = ["sparkvc"]

[[policy]]
name = "all"
document = '{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"*","Resource":"*"}}]}}'

[[principal]]
arn = "arn:aws:iam::123456789012:role/tenant-admin"
policies = ["all"]

[[kubernetes_identity]]
service_account = "{tenant}:caller"
principal = "arn:aws:iam::123456789012:role/tenant-admin"
"#
            ),
        )?;
        let config = dir.join("server.toml");
        std::fs::write(
            &config,
            format!(
                r#"listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"
account_id = "123456789012"
region = "us-west-2"
identities_file = {identities:?}
audit_log = "off"
finished_job_ttl_seconds = 1

[[cluster]]
id = "local"
kubeconfig = {kubeconfig:?}
context = {context:?}

[lease]
namespace = {namespace:?}
name = {sparkvc:?}
duration_seconds = 3

[tenancy]
resource_quota = {{ pods = "100" }}

[tenancy.container_limits]
default = {{ cpu = "1", memory = "1Gi" }}

[app_ui]
history_server_url = "http://127.0.0.1:9"
"#,
                identities = identities.display().to_string(),
                kubeconfig = kubeconfig_path.display().to_string(),
                context = self.env.context,
                namespace = self.release_namespace,
            ),
        )?;
        Ok(config)
    }

    /// The Role, NetworkPolicy, quota and limits of the virtual cluster.
    async fn namespace_set_up(&self, tenant: &str, log: &Log) -> Result<(), String> {
        let kube = self.kube;
        until(log, "the namespace's shared objects", || async move {
            let all = exists::<Role>(kube, tenant, "sparkvc-spark").await?
                && exists::<NetworkPolicy>(kube, tenant, "sparkvc-same-namespace-only").await?
                && exists::<ResourceQuota>(kube, tenant, "sparkvc").await?
                && exists::<LimitRange>(kube, tenant, "sparkvc").await?;
            Ok(all.then_some(()))
        })
        .await
    }

    /// A run whose driver ends at once: COMPLETED, then its job-runner pod
    /// and ConfigMap are removed (finished_job_ttl_seconds).
    async fn run_completes(
        &self,
        client: &mut Client,
        vc: &str,
        tenant: &str,
        log: &Log,
    ) -> Result<(), String> {
        let run = start_run(client, vc, log).await?;
        wait_state(client, vc, &run, "SUBMITTED", log).await?;
        self.create_driver(tenant, &run, &[(kwok::RUN_SECONDS, "1")])
            .await?;
        wait_state(client, vc, &run, "COMPLETED", log).await?;
        let kube = self.kube.clone();
        until(
            log,
            "the finished run's job-runner pod and ConfigMap to go",
            || {
                let pods = Api::<Pod>::namespaced(kube.clone(), tenant);
                let maps = Api::<ConfigMap>::namespaced(kube.clone(), tenant);
                let run = run.clone();
                async move {
                    let pod = pods.get_opt(&run).await.map_err(text)?;
                    let map = maps
                        .get_opt(&format!("spark-{run}-conf"))
                        .await
                        .map_err(text)?;
                    Ok((pod.is_none() && map.is_none()).then_some(()))
                }
            },
        )
        .await
    }

    /// A run whose driver keeps running: its live UI through the app-UI
    /// link (the API server's pod proxy), then CancelJobRun removes its pods.
    async fn live_ui_then_cancel(
        &self,
        server: &Server,
        client: &mut Client,
        vc: &str,
        tenant: &str,
        log: &Log,
    ) -> Result<(), String> {
        let run = start_run(client, vc, log).await?;
        wait_state(client, vc, &run, "SUBMITTED", log).await?;
        self.create_driver(tenant, &run, &[(kwok::STAY_RUNNING, "true")])
            .await?;
        wait_state(client, vc, &run, "RUNNING", log).await?;
        let link = client
            .get_job_run_app_ui_url(pb::GetJobRunAppUiUrlRequest {
                virtual_cluster_id: vc.into(),
                id: run.clone(),
                expires_in_seconds: Some(600),
            })
            .await
            .map_err(|s| status_text(&s, log))?
            .into_inner()
            .url;
        let page = first_bytes_of(&link, server).await?;
        if page.to_ascii_lowercase().contains("forbidden") {
            return Err(format!("the live UI link answered: {page}"));
        }
        client
            .cancel_job_run(pb::CancelJobRunRequest {
                id: run.clone(),
                virtual_cluster_id: vc.into(),
            })
            .await
            .map_err(|s| status_text(&s, log))?;
        wait_state(client, vc, &run, "CANCELLED", log).await?;
        let pods = Api::<Pod>::namespaced(self.kube.clone(), tenant);
        until(log, "the cancelled run's pods to go", || {
            let pods = pods.clone();
            let selector = format!("sparkvc.io/job-run-id={run}");
            async move {
                let left = pods
                    .list(&ListParams::default().labels(&selector))
                    .await
                    .map_err(text)?
                    .items
                    .into_iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .count();
                Ok((left == 0).then_some(()))
            }
        })
        .await
    }

    /// DeleteVirtualCluster: TERMINATED, and sparkvc's objects are gone from
    /// the namespace.
    async fn delete_virtual_cluster(
        &self,
        client: &mut Client,
        vc: &str,
        tenant: &str,
        log: &Log,
    ) -> Result<(), String> {
        client
            .delete_virtual_cluster(pb::DeleteVirtualClusterRequest { id: vc.into() })
            .await
            .map_err(|s| status_text(&s, log))?;
        let kube = self.kube;
        until(log, "the virtual cluster's objects to go", || {
            let mut client = client.clone();
            async move {
                let state = client
                    .describe_virtual_cluster(pb::DescribeVirtualClusterRequest { id: vc.into() })
                    .await
                    .map_err(|s| s.message().to_string())?
                    .into_inner()
                    .virtual_cluster
                    .map(|v| v.state)
                    .unwrap_or_default();
                let left = managed::<Role>(kube, tenant).await?
                    + managed::<RoleBinding>(kube, tenant).await?
                    + managed::<ServiceAccount>(kube, tenant).await?
                    + managed::<NetworkPolicy>(kube, tenant).await?
                    + managed::<ResourceQuota>(kube, tenant).await?
                    + managed::<LimitRange>(kube, tenant).await?;
                Ok((state == "TERMINATED" && left == 0).then_some(()))
            }
        })
        .await
    }

    /// What spark-submit would create: the driver pod, owned by the
    /// job-runner, labelled with an application ID.
    async fn create_driver(
        &self,
        tenant: &str,
        run: &str,
        annotations: &[(&str, &str)],
    ) -> Result<(), String> {
        let pods = Api::<Pod>::namespaced(self.kube.clone(), tenant);
        let runner = pods.get(run).await.map_err(text)?;
        let annotations: BTreeMap<_, _> = annotations.iter().copied().collect();
        let vc = runner
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("sparkvc.io/virtual-cluster-id"))
            .cloned()
            .unwrap_or_default();
        let driver: Pod = serde_json::from_value(json!({
            "metadata": {
                "name": format!("spark-{run}-driver"),
                "labels": {
                    "app.kubernetes.io/managed-by": "sparkvc",
                    "sparkvc.io/job-run-id": run,
                    "sparkvc.io/virtual-cluster-id": vc,
                    "sparkvc.io/component": "driver",
                    "sparkvc.io/attempt": "1",
                    "spark-role": "driver",
                    "spark-app-selector": format!("spark-{run}")
                },
                "annotations": annotations,
                "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": run, "uid": runner.metadata.uid}]
            },
            "spec": {"restartPolicy": "Never", "containers": [{"name": "spark-kubernetes-driver", "image": "spark"}]}
        }))
        .map_err(text)?;
        pods.create(&PostParams::default(), &driver)
            .await
            .map_err(text)?;
        Ok(())
    }
}

fn text(err: impl fmt::Display) -> String {
    err.to_string()
}

/// Whether the object exists (read as the cluster's admin).
async fn exists<K>(kube: &kube::Client, namespace: &str, name: &str) -> Result<bool, String>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + fmt::Debug
        + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(kube.clone(), namespace);
    Ok(api.get_opt(name).await.map_err(text)?.is_some())
}

/// How many objects of this kind sparkvc made in the namespace.
async fn managed<K>(kube: &kube::Client, namespace: &str) -> Result<usize, String>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + fmt::Debug
        + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(kube.clone(), namespace);
    let lp = ListParams::default().labels("app.kubernetes.io/managed-by=sparkvc");
    Ok(api.list(&lp).await.map_err(text)?.items.len())
}

/// A failed call's status, with the server's Forbidden line when it logged
/// one (the API server's own words name the permission).
fn status_text(status: &tonic::Status, log: &Log) -> String {
    let mut why = format!("{:?}: {}", status.code(), status.message());
    if let Some(line) = log.forbidden() {
        why.push_str(&format!("; the server logged: {line}"));
    }
    why
}

/// Polls `probe` until it gives `Some`; fails at once when the server logs
/// a Forbidden answer, or after [`STEP_TIMEOUT`].
async fn until<T, F, Fut>(log: &Log, what: &str, mut probe: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, String>>,
{
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    loop {
        if let Some(line) = log.forbidden() {
            return Err(format!("waiting for {what}, the server logged: {line}"));
        }
        if let Some(value) = probe().await? {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("{what}: not within {STEP_TIMEOUT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `/readyz` answers 200: the server holds its Lease.
async fn ready(server: &Server, log: &Log) -> Result<(), String> {
    let url = format!("{}/readyz", http_base(server).map_err(|e| e.to_string())?);
    until(log, "/readyz to answer 200", || {
        let url = url.clone();
        async move {
            let (status, _) =
                tokio::task::spawn_blocking(move || sparkvc_e2e::http_get_status(&url))
                    .await
                    .map_err(text)?;
            Ok((status == 200).then_some(()))
        }
    })
    .await
}

/// `http://ADDR` of the server's HTTP endpoint.
fn http_base(server: &Server) -> Result<String> {
    let metrics = server
        .metrics_url
        .as_deref()
        .context("the server printed no HTTP endpoint")?;
    Ok(metrics.trim_end_matches("/metrics").to_string())
}

/// The first few kilobytes `url` answers within three seconds: enough to
/// see a refusal. A kwok pod serves nothing, so the API server's proxy may
/// take long to give up on it; an answer that takes longer is no refusal.
async fn first_bytes_of(url: &str, server: &Server) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let base = http_base(server).map_err(text)?;
    let host = base.trim_start_matches("http://").to_string();
    let path = url
        .strip_prefix(&base)
        .ok_or_else(|| format!("the link {url} is not on the server's endpoint {base}"))?;
    let mut conn = tokio::net::TcpStream::connect(&host).await.map_err(text)?;
    conn.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .map_err(text)?;
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(Duration::from_secs(3), conn.read(&mut buf)).await {
        Ok(read) => {
            let n = read.map_err(text)?;
            Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
        }
        Err(_) => Ok(String::new()),
    }
}

async fn connect(server: &Server, token: &str) -> Result<Client> {
    let channel = Channel::from_shared(server.endpoint())?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    let header = format!("Bearer {token}").parse()?;
    Ok(EmrContainersClient::with_interceptor(
        channel,
        Bearer(header),
    ))
}

async fn start_run(client: &mut Client, vc: &str, log: &Log) -> Result<String, String> {
    client
        .start_job_run(start_request(vc))
        .await
        .map(|r| r.into_inner().id)
        .map_err(|s| status_text(&s, log))
}

async fn wait_state(
    client: &mut Client,
    vc: &str,
    run: &str,
    state: &str,
    log: &Log,
) -> Result<(), String> {
    until(log, &format!("run {run} to be {state}"), || {
        let mut client = client.clone();
        async move {
            let got = client
                .describe_job_run(pb::DescribeJobRunRequest {
                    id: run.into(),
                    virtual_cluster_id: vc.into(),
                })
                .await
                .map_err(|s| s.message().to_string())?
                .into_inner()
                .job_run
                .unwrap_or_default();
            if got.state == "FAILED" && state != "FAILED" {
                return Err(format!("run {run} FAILED: {}", got.state_details));
            }
            Ok((got.state == state).then_some(()))
        }
    })
    .await
}

/// A token of ServiceAccount `caller` in the tenant's namespace, for the
/// `sparkvc` audience: the caller of the scenario.
async fn caller_token(kube: &kube::Client, tenant: &str) -> Result<String> {
    let accounts = Api::<ServiceAccount>::namespaced(kube.clone(), tenant);
    let account: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "caller"}}))?;
    accounts.create(&PostParams::default(), &account).await?;
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(vec!["sparkvc".into()]),
            expiration_seconds: Some(1800),
            ..Default::default()
        }),
        ..Default::default()
    };
    accounts
        .create_token_request("caller", &PostParams::default(), &request)
        .await?
        .status
        .and_then(|s| s.token)
        .context("no token in the TokenRequest's answer")
}

/// Deletes what an earlier, interrupted run of this test left outside its
/// namespaces.
async fn clean_up_leftovers(kube: &kube::Client) {
    let lp = ListParams::default().labels(&format!("{TEST_LABEL}={TEST_LABEL_VALUE}"));
    let dp = DeleteParams::background();
    let _ = Api::<ClusterRoleBinding>::all(kube.clone())
        .delete_collection(&dp, &lp)
        .await;
    let _ = Api::<ClusterRole>::all(kube.clone())
        .delete_collection(&dp, &lp)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_permission_of_the_charts_rbac_is_needed() -> Result<()> {
    let env = LocalEnv::load()?;
    let kube = env.kube_client().await?;
    clean_up_leftovers(&kube).await;
    let release_ns = TestNamespace::create(&kube, "lp-release").await?;
    let scenario = Scenario {
        env: &env,
        kube: &kube,
        release_namespace: &release_ns.name,
    };

    // The whole RBAC: every step passes, nothing is forbidden.
    if let Some(failure) = scenario.run(0, None).await? {
        bail!(
            "with the chart's whole RBAC, step '{}' failed: {}",
            failure.step,
            failure.why
        );
    }

    // Each permission taken out in turn.
    let probe = render_release(
        "lp",
        &release_ns.name,
        &[],
        &["rbac.tenantNamespaces={tenant}", "rbac.tokenReview=true"],
    )?;
    let permissions = Rbac::from_rendering(&probe)?.permissions();
    let results: Vec<(Permission, Result<Option<Failure>>)> =
        futures::stream::iter(permissions.into_iter().enumerate())
            .map(|(i, p)| {
                let scenario = &scenario;
                async move {
                    let outcome = scenario.run(i + 1, Some(&p)).await;
                    (p, outcome)
                }
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
    let mut results = results;
    results.sort_by(|a, b| a.0.cmp(&b.0));

    let mut table = String::from(
        "| role | permission taken out | first step that fails | why |\n|---|---|---|---|\n",
    );
    let mut details = String::new();
    let mut unneeded = Vec::new();
    let mut errors = Vec::new();
    for (p, outcome) in &results {
        let (step, why) = match outcome {
            Ok(Some(f)) => (f.step.to_string(), essence(&f.why)),
            Ok(None) => {
                unneeded.push(p.to_string());
                ("none: UNNEEDED".into(), String::new())
            }
            Err(e) => {
                errors.push(format!("{p}: {e:#}"));
                (
                    "(the trial itself failed)".into(),
                    essence(&format!("{e:#}")),
                )
            }
        };
        table.push_str(&format!("| {} | {p} | {step} | {why} |\n", p.role));
        if let Ok(Some(f)) = outcome {
            details.push_str(&format!("{} {p}: {}\n\n", p.role, strip_ansi(&f.why)));
        }
    }
    println!("{table}");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("least-privilege.md");
    std::fs::write(&out, &table)?;
    std::fs::write(out.with_extension("details.txt"), &details)?;
    eprintln!(
        "the table is in {}, each failure in full beside it",
        out.display()
    );

    release_ns.delete().await?;
    if !errors.is_empty() {
        bail!("trials could not run:\n{}\n{table}", errors.join("\n"));
    }
    if !unneeded.is_empty() {
        bail!("the chart grants permissions that sparkvc did not need: {unneeded:?}\n{table}");
    }
    Ok(())
}

/// The words of a failure that name what was refused, on one line of at
/// most 160 characters, for the table: the API server's "cannot VERB
/// resource ..." or "... not currently held: {...}", or sparkvc's own.
fn essence(text: &str) -> String {
    let plain = strip_ansi(text)
        .replace('|', "/")
        .replace('\n', " ")
        .replace("\\\"", "\"");
    let from = ["not currently held", "cannot ", "is not allowed to"]
        .iter()
        .find_map(|marker| plain.find(marker))
        .unwrap_or(0);
    let line = &plain[from..];
    // Up to where the words turn into the names of this trial's namespaces
    // or a dump of the error's fields.
    let to = [
        ": Forbidden (",
        "\", metadata",
        "; grant it",
        " in the namespace ",
        " in namespace ",
    ]
    .iter()
    .filter_map(|end| line.find(end))
    .min()
    .unwrap_or(line.len());
    let line = &line[..to];
    if line.chars().count() > 160 {
        format!("{}…", line.chars().take(160).collect::<String>())
    } else {
        line.to_string()
    }
}

/// `text` without terminal colour sequences (ESC [ ... m).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
