//! Test harness: builds and starts the real `sparkvc-server` binary on a
//! loopback port with its own data directory, connects real gRPC clients,
//! runs the real `sparkvc` CLI, and kills the server (SIGTERM or SIGKILL)
//! when a test asks.

pub mod store_fixture;

use sparkvc_proto::EmrContainersClient;
use sparkvc_proto::v1 as pb;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::time::Duration;
use tonic::transport::Channel;

pub type Client = EmrContainersClient<Channel>;

/// The workspace's target directory, next to this test binary.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current executable");
    // Tests live in target/<profile>/deps/, examples in
    // target/<profile>/examples/, programs in target/<profile>/.
    let dir = exe.parent().expect("executable directory");
    let dir = if dir.ends_with("deps") || dir.ends_with("examples") {
        dir.parent().expect("target directory")
    } else {
        dir
    };
    dir.to_path_buf()
}

/// `cargo build <args>` for the profile these tests run in, without the
/// variables cargo sets for a test process: ring's build fingerprint
/// depends on `CARGO_MANIFEST_DIR`, so inheriting e2e's would make this build,
/// and the next build from a shell, recompile ring and all that depends on it.
fn cargo_build(args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build").arg("--quiet").args(args);
    if bin_dir().file_name().is_some_and(|p| p == "release") {
        cmd.arg("--release");
    }
    without_test_cargo_env(&mut cmd);
    let status = cmd.status().expect("run cargo build");
    assert!(status.success(), "cargo build {args:?} failed");
}

/// Removes from `cmd` the variables cargo sets for a test process, for a
/// command that runs cargo itself (see [`cargo_build`]).
pub fn without_test_cargo_env(cmd: &mut Command) -> &mut Command {
    let set_for_tests = |key: &str| {
        [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_CRATE_NAME",
            "CARGO_BIN_",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
        ]
        .iter()
        .any(|prefix| key.starts_with(prefix))
    };
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(set_for_tests) {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Builds the server and CLI once per test process, so the binaries under
/// test are always the current code even with `cargo test -p sparkvc-e2e`.
fn ensure_built() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| cargo_build(&["-p", "sparkvc-server", "-p", "sparkvc-cli"]));
}

/// `local-job-runner` (tests/cluster), which runs job-runner pods'
/// spark-submit on this machine. `cargo test --workspace` (deploy/test.sh)
/// builds it with the tests; only when it is missing is it built here, since
/// building it on its own resolves other crate features than the tests do
/// and would make the next test build recompile much of the tree.
pub fn local_job_runner_binary() -> PathBuf {
    let path = bin_dir().join("local-job-runner");
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        if !path.exists() {
            cargo_build(&["-p", "sparkvc-cluster-tests", "--bin", "local-job-runner"]);
        }
    });
    path
}

/// The server under test: `SPARKVC_SERVER_BINARY` when set (a benchmark
/// compares the current code against an older build with it), otherwise the
/// current code, built first.
pub fn server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SPARKVC_SERVER_BINARY") {
        return PathBuf::from(path);
    }
    ensure_built();
    bin_dir().join("sparkvc-server")
}

pub fn cli_binary() -> PathBuf {
    ensure_built();
    bin_dir().join("sparkvc")
}

/// The body of `GET url` (plain HTTP, `http://HOST:PORT/PATH`).
pub fn http_get(url: &str) -> String {
    let (status, body) = http_get_status(url);
    assert_eq!(status, 200, "GET {url}: {body}");
    body
}

/// `GET url` (plain HTTP): the status code and the body.
pub fn http_get_status(url: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut conn = std::net::TcpStream::connect(host).expect("connect");
    write!(
        conn,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut response = Vec::new();
    conn.read_to_end(&mut response).expect("read the response");
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("an HTTP status");
    (status, body.to_string())
}

/// `GET url` signed with SigV4 by curl (`--aws-sigv4`), as an operator's
/// scraper would send it: the status code and the body. `extra` goes to
/// curl before the URL (`--cacert FILE` for https).
pub fn signed_get(
    url: &str,
    (key, secret): (&str, &str),
    region: &str,
    extra: &[&str],
) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--aws-sigv4"])
        .arg(format!("aws:amz:{region}:emr-containers"))
        .arg("--user")
        .arg(format!("{key}:{secret}"))
        .args(["-w", "\n%{http_code}"])
        .args(extra)
        .arg(url)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').expect("curl wrote the status");
    (
        status.trim().parse().expect("an HTTP status"),
        body.to_string(),
    )
}

/// A running `sparkvc-server` process.
pub struct Server {
    child: Child,
    pub addr: std::net::SocketAddr,
    pub data_dir: PathBuf,
    /// `http://ADDR/metrics` when started with `--metrics-listen`.
    pub metrics_url: Option<String>,
}

impl Server {
    /// Starts a server on a free loopback port, storing its data in `data_dir`.
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    pub fn start_with(data_dir: &Path, extra_args: &[&str]) -> Self {
        Self::start_with_env(data_dir, extra_args, &[])
    }

    /// Also sets environment variables of the server process.
    pub fn start_with_env(data_dir: &Path, extra_args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(data_dir, extra_args, env, Stdio::inherit())
    }

    /// Like [`Self::start_with_env`], with the server's log (its stderr)
    /// appended to the file `log`, for tests that read what it reported.
    pub fn start_logging_to(
        data_dir: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("open the server log {}: {e}", log.display()));
        Self::spawn(data_dir, extra_args, env, Stdio::from(file))
    }

    fn spawn(data_dir: &Path, extra_args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Self {
        let mut child = Command::new(server_binary())
            .envs(env.iter().copied())
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(["--account-id", "123456789012", "--region", "us-west-2"])
            .args(extra_args)
            .env(
                "SPARKVC_LOG",
                std::env::var("SPARKVC_LOG").unwrap_or("warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start sparkvc-server");
        // Read stdout on a thread for the server's whole life: it prints the
        // metrics URL (when asked) and then its address, and must never meet
        // a closed pipe.
        let stdout = child.stdout.take().expect("server stdout");
        let (lines_tx, lines_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let mut metrics_url = None;
        let addr = loop {
            let line = lines_rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the server printed no address line (did it start?)");
            if let Some(url) = line.strip_prefix("sparkvc-server metrics on ") {
                metrics_url = Some(url.to_string());
                continue;
            }
            break line
                .trim()
                .strip_prefix("sparkvc-server listening on ")
                .unwrap_or_else(|| panic!("server did not start; it printed {line:?}"))
                .parse()
                .expect("a socket address");
        };
        Self {
            child,
            addr,
            data_dir: data_dir.to_path_buf(),
            metrics_url,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn client(&self) -> Client {
        let channel = Channel::from_shared(self.endpoint())
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .expect("connect to sparkvc-server");
        EmrContainersClient::new(channel)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process gets no chance to flush or clean up.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit; returns whether it exited 0.
    pub fn terminate(mut self) -> bool {
        signal(self.child.id(), "TERM");
        wait_timeout(&mut self.child, Duration::from_secs(20)).is_some_and(|s| s.success())
    }

    /// Whether the process has exited (and with what status).
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status();
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Runs the `sparkvc` CLI against `endpoint`.
pub fn sparkvc(endpoint: &str, args: &[&str]) -> Output {
    Command::new(cli_binary())
        .args(args)
        .env("SPARKVC_ENDPOINT_URL", endpoint)
        .stdin(Stdio::null())
        .output()
        .expect("run sparkvc")
}

/// Runs the `sparkvc` CLI against `endpoint` with exactly the AWS
/// variables in `env`: none inherited from this machine, and no `~/.aws`.
pub fn sparkvc_isolated(endpoint: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(cli_binary());
    for (name, _) in std::env::vars() {
        if name.starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .env("SPARKVC_ENDPOINT_URL", endpoint)
        .env("HOME", "/nonexistent")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run sparkvc")
}

/// stdout as JSON, asserting the command succeeded.
pub fn json_of(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "sparkvc failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

// --- fixtures ----------------------------------------------------------------

pub const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/EMRContainers-JobExecutionRole";
pub const RELEASE: &str = "emr-7.9.0-latest";

pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn create_vc_request(namespace: &str) -> pb::CreateVirtualClusterRequest {
    pb::CreateVirtualClusterRequest {
        name: format!("vc-{namespace}"),
        container_provider: Some(pb::ContainerProvider {
            r#type: "EKS".into(),
            id: "local".into(),
            info: Some(pb::ContainerInfo {
                eks_info: Some(pb::EksInfo {
                    namespace: namespace.into(),
                    node_label: String::new(),
                }),
            }),
        }),
        client_token: unique("token"),
        ..Default::default()
    }
}

pub fn submit_driver(entry_point: &str) -> pb::JobDriver {
    pb::JobDriver {
        spark_submit_job_driver: Some(pb::SparkSubmitJobDriver {
            entry_point: entry_point.into(),
            entry_point_arguments: vec!["100".into()],
            spark_submit_parameters: "--conf spark.executor.instances=2".into(),
        }),
        spark_sql_job_driver: None,
    }
}

pub fn start_request(vc_id: &str) -> pb::StartJobRunRequest {
    pb::StartJobRunRequest {
        name: "pi".into(),
        virtual_cluster_id: vc_id.into(),
        client_token: unique("token"),
        execution_role_arn: ROLE_ARN.into(),
        release_label: RELEASE.into(),
        job_driver: Some(submit_driver(
            "local:///opt/spark/examples/src/main/python/pi.py",
        )),
        ..Default::default()
    }
}

/// Creates a virtual cluster on `namespace` and returns its ID.
pub async fn virtual_cluster_on(client: &mut Client, namespace: &str) -> String {
    client
        .create_virtual_cluster(create_vc_request(namespace))
        .await
        .expect("create virtual cluster")
        .into_inner()
        .id
}

/// Creates a virtual cluster on a fresh namespace and returns its ID.
pub async fn new_virtual_cluster(client: &mut Client) -> String {
    let req = create_vc_request(&unique("ns"));
    client
        .create_virtual_cluster(req)
        .await
        .expect("create virtual cluster")
        .into_inner()
        .id
}

pub async fn describe_vc(client: &mut Client, id: &str) -> pb::VirtualCluster {
    let req = pb::DescribeVirtualClusterRequest { id: id.into() };
    let resp = client
        .describe_virtual_cluster(req)
        .await
        .expect("DescribeVirtualCluster");
    resp.into_inner()
        .virtual_cluster
        .expect("a virtual cluster")
}

pub async fn describe_run(client: &mut Client, vc: &str, id: &str) -> pb::JobRun {
    let req = pb::DescribeJobRunRequest {
        id: id.into(),
        virtual_cluster_id: vc.into(),
    };
    let resp = client.describe_job_run(req).await.expect("DescribeJobRun");
    resp.into_inner().job_run.expect("a job run")
}

/// A server on the local cluster (`deploy/local`) with a fresh store, a test
/// namespace and a virtual cluster on it. The server has its HTTP endpoint on
/// (`metrics_url`) and reads AWS (s3:// pod templates, log destinations) from
/// the local AWS stand-in.
pub struct ClusterSetup {
    _dir: tempfile::TempDir,
    pub server: Server,
    pub client: Client,
    pub kube: kube::Client,
    pub ns: sparkvc_cluster_tests::TestNamespace,
    pub vc: String,
}

impl ClusterSetup {
    /// `test` names the namespace; `extra_args` are more server flags.
    pub async fn start(test: &str, extra_args: &[&str]) -> Self {
        let env = sparkvc_cluster_tests::LocalEnv::load().expect("local environment");
        let kube = env.kube_client().await.expect("kube client");
        let ns = sparkvc_cluster_tests::TestNamespace::create(&kube, test)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut args = env.server_args();
        args.extend(["--metrics-listen".into(), "127.0.0.1:0".into()]);
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.extend_from_slice(extra_args);
        Self::serve(&env, kube, ns, dir, &args).await
    }

    /// Starts the server in `dir` with `args` (AWS from the local stand-in)
    /// and creates a virtual cluster on `ns`.
    async fn serve(
        env: &sparkvc_cluster_tests::LocalEnv,
        kube: kube::Client,
        ns: sparkvc_cluster_tests::TestNamespace,
        dir: tempfile::TempDir,
        args: &[&str],
    ) -> Self {
        let aws = [
            ("AWS_ENDPOINT_URL", env.aws_endpoint.as_str()),
            ("AWS_REGION", env.aws_region.as_str()),
            ("AWS_ACCESS_KEY_ID", env.aws_access_key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", env.aws_secret_access_key.as_str()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ];
        let server = Server::start_with_env(dir.path(), args, &aws);
        let mut client = server.client().await;
        let vc = virtual_cluster_on(&mut client, &ns.name).await;
        Self {
            _dir: dir,
            server,
            client,
            kube,
            ns,
            vc,
        }
    }
}

/// The release label of the Spark image the real node runs
/// (`deploy/local/node/images`).
pub const REAL_NODE_RELEASE: &str = "emr-7.10.0-sparkvc-local";

impl ClusterSetup {
    /// Like [`Self::start`], on a cluster whose job pods all go to the real
    /// node of the local environment (as `make demo` configures it); local
    /// pod templates may come from `template_dir`; `extra_args` are more
    /// server flags. Panics, saying how to get one, when the environment has
    /// no real node: these tests need real containers.
    pub async fn start_on_real_node(test: &str, template_dir: &Path, extra_args: &[&str]) -> Self {
        let env = sparkvc_cluster_tests::LocalEnv::load().expect("local environment");
        assert!(
            env.real_node.is_some(),
            "the local environment has no real node: this test runs real Spark pods. \
             Start it as root (deploy/local/up starts the real node then; see deploy/local/README.md)"
        );
        let kube = env.kube_client().await.expect("kube client");
        wait_for_schedulable_node(&kube, env.real_node.as_deref().unwrap_or_default()).await;
        let ns = sparkvc_cluster_tests::TestNamespace::create(&kube, test)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("server.toml");
        std::fs::write(
            &config,
            format!(
                r#"metrics_listen = "127.0.0.1:0"
pod_template_dirs = [{templates:?}]

[[cluster]]
id = "local"
kubeconfig = {kubeconfig:?}
context = {context:?}

[cluster.job_pods]
node_selector = {{ "sparkvc.io/node" = "real" }}
tolerations = [{{ key = "sparkvc.io/real-node", operator = "Exists", effect = "NoSchedule" }}]
"#,
                templates = template_dir.display().to_string(),
                kubeconfig = env.server_kubeconfig.display().to_string(),
                context = env.context,
            ),
        )
        .unwrap();
        let config = config.to_str().unwrap().to_string();
        let mut args = vec!["--config", config.as_str()];
        args.extend_from_slice(extra_args);
        Self::serve(&env, kube, ns, dir, &args).await
    }
}

/// Waits (up to two minutes) until node `name` is Ready and carries no taint
/// but the real node's own, so that a test's pods can start on it; panics
/// with its conditions and taints otherwise. A node that just lived through
/// an API server outage is tainted unreachable until its kubelet reports.
pub async fn wait_for_schedulable_node(kube: &kube::Client, name: &str) {
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(kube.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let node = nodes.get(name).await.expect("get the real node");
        let ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let foreign_taints: Vec<String> = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .into_iter()
            .flatten()
            .filter(|t| t.key != "sparkvc.io/real-node")
            .map(|t| format!("{}:{}", t.key, t.effect))
            .collect();
        if ready && foreign_taints.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the real node {name} is not ready for pods: Ready={ready}, taints {foreign_taints:?}; \
             conditions {:?}",
            node.status.and_then(|s| s.conditions)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The names of the pods in `namespace` that match `selector` and are not
/// being deleted.
pub async fn live_pod_names(kube: &kube::Client, namespace: &str, selector: &str) -> Vec<String> {
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(kube.clone(), namespace);
    pods.list(&kube::api::ListParams::default().labels(selector))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.metadata.name)
        .collect()
}

/// Waits (up to a minute) until virtual cluster `id` is in `state`.
pub async fn wait_for_vc_state(client: &mut Client, id: &str, state: &str) -> pb::VirtualCluster {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let vc = describe_vc(client, id).await;
        if vc.state == state {
            return vc;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "virtual cluster {id} never reached {state}; it is {}",
            vc.state
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits (up to a minute) until job run `id` is in `state`.
pub async fn wait_for_state(client: &mut Client, vc: &str, id: &str, state: &str) -> pb::JobRun {
    wait_for_state_within(client, vc, id, state, Duration::from_secs(60)).await
}

pub async fn wait_for_state_within(
    client: &mut Client,
    vc: &str,
    id: &str,
    state: &str,
    within: Duration,
) -> pb::JobRun {
    wait_until(client, vc, id, state, within, |run| run.state == state).await
}

/// Polls job run `id` until `done` holds, failing after `within` with what
/// was awaited (`what`) and where the run is.
pub async fn wait_until(
    client: &mut Client,
    vc: &str,
    id: &str,
    what: &str,
    within: Duration,
    done: impl Fn(&pb::JobRun) -> bool,
) -> pb::JobRun {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let run = describe_run(client, vc, id).await;
        if done(&run) {
            return run;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job run {id} never reached {what}; it is {} ({})",
            run.state,
            run.state_details
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits (up to 30 s) for a namespaced object to exist and returns it. The
/// executor sets up a new virtual cluster's namespace moments after
/// CreateVirtualCluster answers.
pub async fn wait_for_object<K>(kube: &kube::Client, namespace: &str, name: &str) -> K
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    let api: kube::Api<K> = kube::Api::namespaced(kube.clone(), namespace);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(object) = api.get_opt(name).await.expect("reading the object") {
            return object;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} {namespace}/{name} never appeared",
            K::kind(&K::DynamicType::default())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a job run state is terminal (COMPLETED, FAILED or CANCELLED).
pub fn is_terminal(state: &str) -> bool {
    matches!(state, "COMPLETED" | "FAILED" | "CANCELLED")
}

/// Every job run of a virtual cluster, following nextToken.
pub async fn all_runs(client: &mut Client, vc: &str) -> Vec<pb::JobRun> {
    let mut runs = Vec::new();
    let mut next_token = String::new();
    loop {
        let req = pb::ListJobRunsRequest {
            virtual_cluster_id: vc.into(),
            max_results: Some(1000),
            next_token,
            ..Default::default()
        };
        let page = client
            .list_job_runs(req)
            .await
            .expect("ListJobRuns")
            .into_inner();
        runs.extend(page.job_runs);
        if page.next_token.is_empty() {
            return runs;
        }
        next_token = page.next_token;
    }
}

/// The AWS error type a failed call carried.
pub fn aws_error(status: &tonic::Status) -> String {
    status
        .metadata()
        .get(sparkvc_proto::ERROR_TYPE_METADATA)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("<none>")
        .to_string()
}

/// Waits (up to a minute) for a line of the file `log` that has every one
/// of `words`.
pub async fn wait_for_line(log: &Path, words: &[&str]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.lines().any(|l| words.iter().all(|w| l.contains(w))) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no line with {words:?} in {}:\n{text}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; bind it soon).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// The real Spark History Server (from the `pyspark` distribution that
/// `deploy/local/spark-env` installs) on 127.0.0.1, reading a `file://`
/// event log directory; stopped when dropped. Its log is beside the
/// directory, in `history-server.log`.
pub struct HistoryServer {
    _process: ChildGuard,
    pub url: String,
    log: PathBuf,
}

impl HistoryServer {
    /// Starts it on `events` and waits (up to two minutes) until it answers.
    pub fn start(spark_home: &Path, events: &Path) -> Self {
        let port = free_port();
        let log = events
            .parent()
            .expect("the event directory's parent")
            .join("history-server.log");
        let child = Command::new(spark_home.join("bin/spark-class"))
            .arg("org.apache.spark.deploy.history.HistoryServer")
            .env("SPARK_HOME", spark_home)
            .env("SPARK_LOCAL_IP", "127.0.0.1")
            .env(
                "SPARK_HISTORY_OPTS",
                format!(
                    "-Dspark.history.fs.logDirectory=file://{} -Dspark.history.ui.port={port} -Dspark.history.fs.update.interval=1s",
                    events.display()
                ),
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("the History Server's log"))
            .spawn()
            .expect("start the History Server");
        let server = Self {
            _process: ChildGuard(child),
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        server.wait_for("answer", |_| true);
        server
    }

    /// Waits (up to two minutes) until it lists application `app_id`.
    pub fn wait_lists(&self, app_id: &str) {
        self.wait_for(&format!("list {app_id}"), |apps| apps.contains(app_id));
    }

    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) {
        let apps = format!("{}/api/v1/applications", self.url);
        let address = self.url.trim_start_matches("http://");
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            if std::net::TcpStream::connect(address).is_ok() {
                let (status, body) = http_get_status(&apps);
                if status == 200 && done(&body) {
                    return;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the History Server did not {what}: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// A child process that is killed when the test lets go of it.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
