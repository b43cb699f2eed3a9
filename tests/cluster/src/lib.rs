//! Helpers shared by the local-environment proof tests (`tests/*.rs`) and the
//! scale check (`src/bin/cluster-scale.rs`), and running a job-runner's
//! spark-submit on this machine ([`host_submit`], for the spark-submit proof
//! and `src/bin/local-job-runner.rs`).
//!
//! Everything here talks to the environment started by `deploy/local/up`: a
//! real kube-apiserver (with etcd, controller-manager, scheduler and kwok
//! nodes) and moto as the AWS stand-in. Nothing is mocked. When the
//! environment is not up, [`LocalEnv::load`] fails with a message that says
//! how to start it; tests fail rather than skip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

/// Label put on every namespace the tests create, so leftovers are easy to find:
/// `kubectl get ns -l sparkvc.io/test`.
pub const TEST_LABEL: &str = "sparkvc.io/test";

pub mod host_submit;

/// Pod annotations understood by the kwok stages in `deploy/local/kwok/stages.yaml`.
pub mod kwok {
    /// Seconds from Running to the terminal phase (Never/OnFailure pods).
    pub const RUN_SECONDS: &str = "sparkvc.io/kwok-run-seconds";
    /// Seconds from scheduled to Running.
    pub const START_SECONDS: &str = "sparkvc.io/kwok-start-seconds";
    /// Non-zero: the pod ends Failed with this container exit code.
    pub const EXIT_CODE: &str = "sparkvc.io/kwok-exit-code";
    /// Container termination reason for a failure (default `Error`).
    pub const REASON: &str = "sparkvc.io/kwok-reason";
    /// Container termination message for a failure.
    pub const MESSAGE: &str = "sparkvc.io/kwok-message";
    /// Only this container fails; the others exit 0.
    pub const CONTAINER: &str = "sparkvc.io/kwok-container";
    /// Pod-level `status.reason` on failure (for example `Evicted`).
    pub const POD_REASON: &str = "sparkvc.io/kwok-pod-reason";
    /// `"true"`: the pod stays Running until deleted.
    pub const STAY_RUNNING: &str = "sparkvc.io/kwok-stay-running";
}

/// Connection settings of the local environment (the values of the env file
/// that `deploy/local/up` writes).
#[derive(Debug, Clone)]
pub struct LocalEnv {
    pub kubeconfig: PathBuf,
    pub context: String,
    pub aws_endpoint: String,
    pub aws_region: String,
    pub aws_access_key_id: String,
    pub aws_secret_access_key: String,
    /// The real node's name, when `deploy/local/up` started one.
    pub real_node: Option<String>,
    /// The kubeconfig the tests give sparkvc-server:
    /// `$SPARKVC_SERVER_KUBECONFIG` (`deploy/test.sh` sets it to one that
    /// acts as the Helm chart's ServiceAccount) or else the admin's.
    pub server_kubeconfig: PathBuf,
    /// `NAMESPACE/NAME` of the Lease that identity may hold
    /// (`$SPARKVC_SERVER_LEASE`), if it is limited to one.
    pub server_lease: Option<String>,
    /// Where `deploy/local/up` keeps the cluster's state, logs and PID
    /// files (`$SPARKVC_LOCAL_RUN_DIR`).
    pub run_dir: PathBuf,
}

impl LocalEnv {
    /// Reads the settings from the process environment when the env file has
    /// been sourced (`SPARKVC_LOCAL_RUN_DIR` is set), otherwise from the env
    /// file in `$SPARKVC_RUN_DIR` or `deploy/local/.run`.
    pub fn load() -> Result<Self> {
        let vars: BTreeMap<String, String> = if std::env::var_os("SPARKVC_LOCAL_RUN_DIR").is_some()
        {
            std::env::vars().collect()
        } else {
            let file = default_run_dir().join("env");
            let text = std::fs::read_to_string(&file).with_context(|| {
                format!(
                    "the local environment is not up: {} is missing. Start it with \
                     `deploy/local/up` (then optionally `source deploy/local/.run/env`)",
                    file.display()
                )
            })?;
            parse_env_file(&text)
        };
        let get = |k: &str| -> Result<String> {
            vars.get(k).filter(|v| !v.is_empty()).cloned().with_context(|| {
                format!("{k} is not set: start the local environment with `deploy/local/up` and source deploy/local/.run/env")
            })
        };
        let kubeconfig = PathBuf::from(get("KUBECONFIG")?);
        let from_process = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Ok(Self {
            server_kubeconfig: from_process("SPARKVC_SERVER_KUBECONFIG")
                .map_or_else(|| kubeconfig.clone(), PathBuf::from),
            server_lease: from_process("SPARKVC_SERVER_LEASE"),
            kubeconfig,
            context: get("SPARKVC_KUBE_CONTEXT")?,
            run_dir: PathBuf::from(get("SPARKVC_LOCAL_RUN_DIR")?),
            aws_endpoint: get("AWS_ENDPOINT_URL")?,
            aws_region: get("AWS_REGION")?,
            aws_access_key_id: get("AWS_ACCESS_KEY_ID")?,
            aws_secret_access_key: get("AWS_SECRET_ACCESS_KEY")?,
            real_node: vars
                .get("SPARKVC_REAL_NODE_NAME")
                .filter(|v| !v.is_empty())
                .cloned(),
        })
    }

    /// The PID of a process `deploy/local/up` started (`etcd`,
    /// `kube-apiserver`, `kwok`, ...), from its PID file; None when it has
    /// none.
    pub fn component_pid(&self, name: &str) -> Option<u32> {
        let file = self.run_dir.join("pids").join(format!("{name}.pid"));
        std::fs::read_to_string(file)
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// The `sparkvc-server` flags that serve this cluster as `local`, as
    /// [`Self::server_kubeconfig`].
    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--cluster".into(),
            format!("local={}", self.context),
            "--kubeconfig".into(),
            self.server_kubeconfig.display().to_string(),
        ]
    }

    /// kube-rs configuration for the admin user of the local cluster.
    pub async fn kube_config(&self) -> Result<Config> {
        let kc = Kubeconfig::read_from(&self.kubeconfig)
            .with_context(|| format!("reading kubeconfig {}", self.kubeconfig.display()))?;
        let opts = KubeConfigOptions {
            context: Some(self.context.clone()),
            ..Default::default()
        };
        Ok(Config::from_custom_kubeconfig(kc, &opts).await?)
    }

    /// A client for the local cluster, checked by one request so that a
    /// stopped environment fails here with a clear message.
    pub async fn kube_client(&self) -> Result<Client> {
        let client = Client::try_from(self.kube_config().await?)?;
        client.apiserver_version().await.with_context(|| {
            format!(
                "the local kube-apiserver does not answer (kubeconfig {}); is the environment up? \
                 Run `deploy/local/up`",
                self.kubeconfig.display()
            )
        })?;
        Ok(client)
    }

    /// AWS SDK configuration pointed at the local AWS stand-in, with the
    /// rustls + ring HTTP client and static dummy credentials.
    pub async fn aws_config(&self) -> aws_config::SdkConfig {
        use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let creds = aws_sdk_sts::config::Credentials::new(
            &self.aws_access_key_id,
            &self.aws_secret_access_key,
            None,
            None,
            "sparkvc-local-env",
        );
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .endpoint_url(&self.aws_endpoint)
            .region(aws_config::Region::new(self.aws_region.clone()))
            .credentials_provider(creds)
            .load()
            .await
    }

    /// An S3 client for the local AWS stand-in (path-style addressing).
    pub async fn s3_client(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.aws_config().await)
                .force_path_style(true)
                .build(),
        )
    }
}

/// `deploy/local/.run`, or `$SPARKVC_RUN_DIR`.
pub fn default_run_dir() -> PathBuf {
    match std::env::var_os("SPARKVC_RUN_DIR") {
        Some(d) => PathBuf::from(d),
        None => repo_root().join("deploy/local/.run"),
    }
}

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Parses `export KEY='value'` / `KEY=value` lines.
pub fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                .unwrap_or(v);
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

/// A namespace created for one test, labelled [`TEST_LABEL`]. Call
/// [`TestNamespace::delete`] at the end; the namespace controller then
/// removes everything in it.
pub struct TestNamespace {
    pub client: Client,
    pub name: String,
}

impl TestNamespace {
    pub async fn create(client: &Client, test: &str) -> Result<Self> {
        Self::create_within(client, test, Duration::from_secs(30)).await
    }

    /// [`TestNamespace::create`], allowing the controllers `timeout` to make
    /// its `default` service account (long after the API server restarted,
    /// while their watches back off).
    pub async fn create_within(client: &Client, test: &str, timeout: Duration) -> Result<Self> {
        let suffix = format!("{:x}", rand_u32());
        let name = format!("t-{test}-{suffix}");
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(BTreeMap::from([(TEST_LABEL.to_string(), test.to_string())])),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        // The ServiceAccount admission plugin rejects pods until the service
        // account controller has created the namespace's `default` account.
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
        eventually("the default service account", timeout, || async {
            Ok(sas.get_opt("default").await?.map(|_| ()))
        })
        .await?;
        Ok(Self {
            client: client.clone(),
            name,
        })
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    pub async fn delete(self) -> Result<()> {
        match Api::<Namespace>::all(self.client.clone())
            .delete(&self.name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the namespace and waits until the namespace controller has
    /// removed it. Tests that leave hundreds of objects behind use this so the
    /// controllers' clean-up backlog does not slow the tests that follow.
    pub async fn delete_and_wait(self, timeout: Duration) -> Result<()> {
        let namespaces = Api::<Namespace>::all(self.client.clone());
        let name = self.name.clone();
        self.delete().await?;
        eventually(&format!("namespace {name} to be gone"), timeout, || async {
            Ok(namespaces.get_opt(&name).await?.is_none().then_some(()))
        })
        .await
    }
}

/// Runs `body` in a fresh test namespace and deletes the namespace afterwards,
/// whether the body succeeded or not.
pub async fn with_namespace<F, Fut>(test: &str, body: F) -> Result<()>
where
    F: FnOnce(LocalEnv, Client, String) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let env = LocalEnv::load()?;
    let client = env.kube_client().await?;
    let ns = TestNamespace::create(&client, test).await?;
    let name = ns.name.clone();
    let result = body(env, client, name).await;
    let cleanup = ns.delete().await;
    result.and(cleanup)
}

/// Polls `probe` until it returns `Some`, or fails after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A small non-cryptographic random number for unique names.
pub fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish() as u32
}

/// A `kube::Error::Api` status, if that is what `err` is.
pub fn api_status(err: &kube::Error) -> Option<&kube::core::Status> {
    match err {
        kube::Error::Api(s) => Some(s),
        _ => None,
    }
}
