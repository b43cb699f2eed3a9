//! Plays the kubelet for sparkvc's job-runner pods on the local cluster, so
//! that their spark-submit really runs (used by the demo, `deploy/demo.sh`).
//!
//! kwok nodes run no containers: left alone, kwok would report a job-runner
//! pod Succeeded after a few seconds without anything having been submitted.
//! This program watches job-runner pods (label `sparkvc.io/component=job-runner`)
//! in one namespace or all of them and, for each:
//!
//! 1. annotates it `sparkvc.io/kwok-stay-running: "true"` as soon as it
//!    appears, so kwok starts it (Running) but leaves its end to us. On a
//!    busy machine this can come after kwok has already scheduled the pod's
//!    end, so callers should create job-runner pods with the annotation
//!    (StartJobRun: `emr-job-submitter` property
//!    `jobsubmitter.annotation.sparkvc.io/kwok-stay-running=true`);
//! 2. once it is Running, runs the container's spark-submit on this machine
//!    with the installed Apache Spark, as the pod would: its ConfigMaps
//!    mounted at the same paths, a token of its service account as the only
//!    credential (see `sparkvc_cluster_tests::host_submit`);
//! 3. when spark-submit exits, writes the pod's status as a kubelet would:
//!    Succeeded or Failed with the exit code, and for a failure the end of the
//!    output as the termination message (`FallbackToLogsOnError`);
//! 4. kills spark-submit if the pod is deleted (a cancelled job run).
//!
//! The driver and executor pods that spark-submit creates are still simulated
//! by kwok (they run no Spark code): this program makes the submission real,
//! not the application.
//!
//! usage: local-job-runner [--namespace NS] [--work-dir DIR] [--parallel N]
//! It prints `local-job-runner: watching job-runner pods` once it sees every
//! existing pod; job-runner pods created before then may be finished by kwok.
//! Needs the local environment (`deploy/local/up`) and Spark
//! (`deploy/local/spark-env`). spark-submit's output for pod NS/NAME goes to
//! `DIR/NS/NAME/spark-submit.log` (default DIR: `deploy/local/.run/job-runner`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use sparkvc_cluster_tests::host_submit::{self, HostSubmit};
use sparkvc_cluster_tests::{LocalEnv, default_run_dir, kwok};
use tokio::sync::Semaphore;
use tokio::task::AbortHandle;

const SELECTOR: &str = "sparkvc.io/component=job-runner";
const CONTAINER: &str = "job-runner";
/// A spark-submit that runs longer than this is killed and its pod failed.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(3600);
/// How long a job-runner pod waits for its ConfigMap to appear.
const CONFIG_MAP_WAIT: Duration = Duration::from_secs(30);
/// The kubelet keeps at most this much of the log as a termination message.
const MESSAGE_BYTES: usize = 2048;
const MESSAGE_LINES: usize = 80;

#[derive(Debug)]
struct Args {
    /// Only this namespace's pods (default: every namespace).
    namespace: Option<String>,
    work_dir: PathBuf,
    parallel: usize,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        namespace: None,
        work_dir: default_run_dir().join("job-runner"),
        parallel: 4,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--namespace" => args.namespace = Some(value()?),
            "--work-dir" => args.work_dir = PathBuf::from(value()?),
            "--parallel" => {
                args.parallel = value()?
                    .parse()
                    .context("--parallel must be a positive number")?
            }
            "-h" | "--help" => {
                println!(
                    "usage: local-job-runner [--namespace NS] [--work-dir DIR] [--parallel N]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}; see --help"),
        }
    }
    if args.parallel == 0 {
        bail!("--parallel must be a positive number");
    }
    Ok(args)
}

/// What every pod's run needs.
struct Runner {
    client: Client,
    spark_home: PathBuf,
    api_server: String,
    ca_file: PathBuf,
    work_dir: PathBuf,
    slots: Semaphore,
}

/// What we know about one pod, by UID.
#[derive(Default)]
struct Seen {
    annotated: bool,
    task: Option<AbortHandle>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let env = LocalEnv::load()?;
    let client = env.kube_client().await?;
    let runner = Arc::new(Runner {
        api_server: env.kube_config().await?.cluster_url.to_string(),
        client: client.clone(),
        spark_home: host_submit::spark_home()?,
        ca_file: default_run_dir().join("pki/ca.crt"),
        work_dir: args.work_dir.clone(),
        slots: Semaphore::new(args.parallel),
    });
    eprintln!(
        "local-job-runner: running job-runner pods' spark-submit with {} (logs under {})",
        runner.spark_home.display(),
        runner.work_dir.display()
    );

    let pods = match &args.namespace {
        Some(ns) => Api::<Pod>::namespaced(client, ns),
        None => Api::<Pod>::all(client),
    };
    let mut events = watcher(pods, watcher::Config::default().labels(SELECTOR))
        .default_backoff()
        .boxed();
    let mut seen: HashMap<String, Seen> = HashMap::new();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                eprintln!("local-job-runner: watch error (retrying): {err}");
                continue;
            }
        };
        match event {
            watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => {
                let uid = pod.uid().unwrap_or_default();
                let entry = seen.entry(uid).or_default();
                on_pod(&runner, pod, entry).await;
            }
            watcher::Event::Delete(pod) => {
                if let Some(task) = seen
                    .remove(&pod.uid().unwrap_or_default())
                    .and_then(|s| s.task)
                {
                    task.abort();
                }
            }
            watcher::Event::InitDone => {
                // Callers wait for this line before they start job runs.
                eprintln!("local-job-runner: watching job-runner pods");
            }
            watcher::Event::Init => {}
        }
    }
    Ok(())
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

fn pod_key(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())
}

async fn on_pod(runner: &Arc<Runner>, pod: Pod, seen: &mut Seen) {
    let key = pod_key(&pod);
    if pod.metadata.deletion_timestamp.is_some() {
        if let Some(task) = seen.task.take() {
            eprintln!("{key}: pod is being deleted; stopping its spark-submit");
            task.abort();
        }
        return;
    }
    if matches!(phase(&pod), "Succeeded" | "Failed") {
        return;
    }
    let has_annotation = pod
        .annotations()
        .get(kwok::STAY_RUNNING)
        .is_some_and(|v| v == "true");
    if !seen.annotated && !has_annotation {
        let patch = json!({"metadata": {"annotations": {kwok::STAY_RUNNING: "true"}}});
        let namespaced = Api::<Pod>::namespaced(runner.client.clone(), &namespace(&pod));
        if let Err(err) = namespaced
            .patch(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            eprintln!("{key}: cannot annotate the pod for kwok: {err}");
            return;
        }
    }
    seen.annotated = true;
    if phase(&pod) == "Running" && seen.task.is_none() {
        let runner = Arc::clone(runner);
        let task = tokio::spawn(async move { runner.run(pod).await });
        seen.task = Some(task.abort_handle());
    }
}

fn namespace(pod: &Pod) -> String {
    pod.namespace().unwrap_or_default()
}

impl Runner {
    async fn run(&self, pod: Pod) {
        let key = pod_key(&pod);
        let Ok(_slot) = self.slots.acquire().await else {
            return;
        };
        let started = Instant::now();
        let (code, message) = match self.submit(&pod).await {
            Ok((status, log)) => {
                let code = status.code().unwrap_or(128 + 9);
                let out = std::fs::read_to_string(&log).unwrap_or_default();
                eprintln!(
                    "{key}: spark-submit exited {code} after {:.1}s (output: {})",
                    started.elapsed().as_secs_f64(),
                    log.display()
                );
                (code, (code != 0).then(|| termination_message(&out)))
            }
            Err(err) => {
                eprintln!("{key}: could not run spark-submit: {err:#}");
                (128, Some(format!("local-job-runner: {err:#}")))
            }
        };
        if let Err(err) = self.finish(&pod, code, message).await {
            eprintln!("{key}: cannot write the pod's final status: {err:#}");
        }
    }

    /// Runs the pod's spark-submit; returns its exit status and log path.
    async fn submit(&self, pod: &Pod) -> Result<(std::process::ExitStatus, PathBuf)> {
        let ns = namespace(pod);
        let spec = pod.spec.as_ref().context("the pod has no spec")?;
        let container = spec
            .containers
            .iter()
            .find(|c| c.name == CONTAINER)
            .with_context(|| format!("the pod has no {CONTAINER} container"))?;
        let argv = host_submit::container_argv(container);

        let work = self.work_dir.join(&ns).join(pod.name_any());
        if work.exists() {
            std::fs::remove_dir_all(&work)?;
        }
        std::fs::create_dir_all(&work)?;
        let config_maps = self.config_maps(&ns, spec).await?;
        let root = work.join("pod");
        let mounts = host_submit::materialize_mounts(spec, container, &config_maps, &root)?;
        let token_file = work.join("token");
        std::fs::write(&token_file, self.token(pod).await?)?;
        let argv = host_submit::outside_the_pod(
            &argv,
            &HostSubmit {
                root: &root,
                mounts: &mounts,
                spark_submit: &self.spark_home.join("bin/spark-submit"),
                api_server: &self.api_server,
                ca_file: &self.ca_file,
                token_file: &token_file,
            },
        )?;
        let log = work.join("spark-submit.log");
        eprintln!(
            "{}: running spark-submit (output: {})",
            pod_key(pod),
            log.display()
        );
        let status =
            host_submit::run_spark_submit(&argv, &self.spark_home, &work, &log, SUBMIT_TIMEOUT)
                .await?;
        Ok((status, log))
    }

    /// The data of every ConfigMap the pod's volumes name. Like the
    /// kubelet, it waits for one that does not exist yet (sparkvc creates a
    /// run's ConfigMap just after its job-runner pod, which owns it).
    async fn config_maps(
        &self,
        ns: &str,
        spec: &k8s_openapi::api::core::v1::PodSpec,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
        let api = Api::<ConfigMap>::namespaced(self.client.clone(), ns);
        let mut out = BTreeMap::new();
        for volume in spec.volumes.iter().flatten() {
            let Some(cm) = volume.config_map.as_ref() else {
                continue;
            };
            if out.contains_key(&cm.name) {
                continue;
            }
            let deadline = tokio::time::Instant::now() + CONFIG_MAP_WAIT;
            let found = loop {
                let found = api
                    .get_opt(&cm.name)
                    .await
                    .with_context(|| format!("reading ConfigMap {ns}/{}", cm.name))?;
                if found.is_some() || tokio::time::Instant::now() >= deadline {
                    break found;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            let data = found
                .with_context(|| {
                    format!(
                        "ConfigMap {ns}/{} does not exist after {CONFIG_MAP_WAIT:?}",
                        cm.name
                    )
                })?
                .data
                .unwrap_or_default();
            out.insert(cm.name.clone(), data);
        }
        Ok(out)
    }

    /// A token of the pod's service account, bound to the pod, as the
    /// kubelet would project it.
    async fn token(&self, pod: &Pod) -> Result<String> {
        let ns = namespace(pod);
        let sa = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into());
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(3600),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: Some(pod.name_any()),
                    uid: pod.uid(),
                }),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(self.client.clone(), &ns)
            .create_token_request(&sa, &PostParams::default(), &request)
            .await
            .with_context(|| format!("TokenRequest for service account {ns}/{sa}"))?
            .status
            .and_then(|s| s.token)
            .context("the TokenRequest returned no token")
    }

    /// Writes the terminal status a kubelet would write for this exit.
    async fn finish(&self, pod: &Pod, code: i32, message: Option<String>) -> Result<()> {
        let api = Api::<Pod>::namespaced(self.client.clone(), &namespace(pod));
        let Some(current) = api.get_opt(&pod.name_any()).await? else {
            return Ok(()); // deleted meanwhile: nothing to report
        };
        if current.metadata.deletion_timestamp.is_some()
            || matches!(phase(&current), "Succeeded" | "Failed")
        {
            return Ok(());
        }
        let status = final_status(&current, code, message, &now());
        api.patch_status(
            &current.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": status })),
        )
        .await?;
        Ok(())
    }
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The kubelet's `FallbackToLogsOnError`: the end of the log, at most 2048
/// bytes or 80 lines.
fn termination_message(log: &str) -> String {
    let text = host_submit::tail(log.trim_end(), MESSAGE_LINES);
    let mut start = text.len().saturating_sub(MESSAGE_BYTES);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

/// The pod status after its one container exited with `code`.
fn final_status(pod: &Pod, code: i32, message: Option<String>, now: &str) -> serde_json::Value {
    let status = pod.status.clone().unwrap_or_default();
    let containers: Vec<serde_json::Value> = status
        .container_statuses
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let started = c
                .state
                .as_ref()
                .and_then(|s| s.running.as_ref())
                .and_then(|r| r.started_at.as_ref())
                .map(|t| t.0.to_string())
                .unwrap_or_else(|| now.to_string());
            let mut terminated = json!({
                "exitCode": code,
                "reason": if code == 0 { "Completed" } else { "Error" },
                "startedAt": started,
                "finishedAt": now,
            });
            if let Some(message) = &message {
                terminated["message"] = json!(message);
            }
            json!({
                "name": c.name,
                "image": c.image,
                "imageID": c.image_id,
                "ready": false,
                "started": false,
                "restartCount": c.restart_count,
                "state": {"terminated": terminated},
            })
        })
        .collect();
    let conditions: Vec<serde_json::Value> = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let mut v = serde_json::to_value(&c).unwrap_or_default();
            if matches!(c.type_.as_str(), "Ready" | "ContainersReady") {
                v["status"] = json!("False");
                v["reason"] = json!("PodCompleted");
                v["lastTransitionTime"] = json!(now);
            }
            v
        })
        .collect();
    json!({
        "phase": if code == 0 { "Succeeded" } else { "Failed" },
        "conditions": conditions,
        "containerStatuses": containers,
    })
}
