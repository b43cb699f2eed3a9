//! A cluster full of running jobs (not a timed test): fills the local
//! cluster with `--runs` concurrent job runs (20,000 by default, over 20
//! virtual clusters, since one runs at most 1,000 at once), holds them
//! running for `--hold-seconds`, and reports, on this machine,
//!
//! - how long filling took, and how many job-runner and driver pods ran at
//!   once;
//! - DescribeJobRun and ListJobRuns latency (p50/p99/max), one call at a time
//!   while the cluster fills and while it is full;
//! - status lag of the short runs started while it is full (on a virtual
//!   cluster of their own), which end meanwhile: this program's watch sees
//!   the driver pod end → the terminal state stored (`stateHistory`);
//! - whether every run's state is right at the end (each long run RUNNING,
//!   each short run COMPLETED);
//! - sparkvc's peak RSS, and the CPU each process of the local cluster used
//!   (etcd, the API server, the scheduler, the controller-manager, kwok,
//!   sparkvc, this program): where the limit is;
//! - restart at scale, twice: sparkvc killed with SIGKILL and started again
//!   on the same store,
//!   - while filling, once every StartJobRun is answered: most of the 20,000
//!     runs are still PENDING or SUBMITTED. Time until it serves, until it
//!     creates pods again and until its first reconcile pass, and any
//!     job-runner pod created twice for a run (should be none);
//!   - once full, with every run settled: time until it serves and until its
//!     first reconcile pass, pods it created again (should be 0), and runs
//!     whose state changed (should be 0).
//!
//! kwok runs no containers, so nothing runs spark-submit: this program
//! plays its part. When a run's job-runner pod is Running, it creates the
//! run's driver pod as spark-submit would (the name sparkvc expects, the
//! run's labels, `spark-role=driver`, owned by the job-runner). Long runs'
//! pods stay Running (`sparkvc.io/kwok-stay-running`); short runs' drivers
//! end after `--short-run-seconds`.
//!
//! usage: scale-bench [--runs 20000] [--virtual-clusters 20] [--rate 200]
//!   [--hold-seconds 120] [--short-runs 300] [--short-run-seconds 20]
//!   [--probe-rate 40] [--no-restart] [--no-restart-while-filling] [--out PATH]
//! Needs the local cluster with pod slots for every pod and a scheduler
//! allowed enough requests/s (a binding and an event per pod):
//!   SPARKVC_REAL_NODE=0 SPARKVC_NODES=20 SPARKVC_NODE_PODS=2200 \
//!   SPARKVC_NODE_CPU=4000 SPARKVC_NODE_MEMORY=16Ti SPARKVC_SCHEDULER_QPS=400 \
//!   deploy/local/up

use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use rand::Rng;
use serde_json::json;
use sparkvc_bench::process::{cpu_seconds, metric_sum, peak_rss_mb, rss_mb};
use sparkvc_bench::{Latencies, cluster_server_args, start_server};
use sparkvc_cluster_tests::{LocalEnv, TestNamespace, kwok};
use sparkvc_e2e::{Client, Server, all_runs, http_get, start_request, virtual_cluster_on};
use sparkvc_proto::v1 as pb;
use sparkvc_render::names;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;

#[derive(Debug, Parser)]
struct Args {
    /// Long job runs, all running at once while the cluster is held full.
    #[arg(long, default_value_t = 20_000)]
    runs: usize,
    /// Virtual clusters the long runs are spread over, round robin, each on
    /// a namespace of its own (one runs at most 1,000 runs at once).
    #[arg(long, default_value_t = 20)]
    virtual_clusters: usize,
    /// StartJobRun calls per second while filling; sparkvc queues what it
    /// cannot submit yet.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// How long the cluster is held full.
    #[arg(long, default_value_t = 120)]
    hold_seconds: u64,
    /// Short runs started, evenly, while the cluster is full; they end
    /// meanwhile, for the status lag.
    #[arg(long, default_value_t = 300)]
    short_runs: usize,
    /// How long a short run's driver runs.
    #[arg(long, default_value_t = 20)]
    short_run_seconds: u64,
    /// DescribeJobRun / ListJobRuns calls per second, one at a time.
    #[arg(long, default_value_t = 40)]
    probe_rate: u32,
    /// Skip the restart once full.
    #[arg(long)]
    no_restart: bool,
    /// Skip the restart while filling.
    #[arg(long)]
    no_restart_while_filling: bool,
    #[arg(long, default_value = "target/bench-results/scale-bench.json")]
    out: PathBuf,
}

/// The job-runner annotation that tells the spark-submit stand-in how long
/// the driver runs; absent: it stays Running.
const DRIVER_SECONDS: &str = "sparkvc.io/bench-driver-seconds";

/// What this program saw of one run.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// Its driver was created by the stand-in.
    driver_made: bool,
    /// When the watch saw its driver end (wall clock, to compare with the
    /// stored state history).
    driver_ended: Option<SystemTime>,
    /// The UID of its job-runner pod: a second UID is a run submitted twice.
    runner_uid: Option<String>,
    /// When the watch first saw its job-runner, and in which namespace.
    runner_seen: Option<(Instant, String)>,
}

/// The pods the watch sees running now, and the most at once.
#[derive(Debug, Default)]
struct Running {
    runners: HashSet<String>,
    drivers: HashSet<String>,
    most_at_once: usize,
}

#[derive(Default)]
struct Watched {
    runs: Mutex<HashMap<String, Seen>>,
    running: Mutex<Running>,
    driver_errors: AtomicUsize,
    /// Runs whose job-runner pod the watch saw with a second UID.
    runners_created_again: AtomicUsize,
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// The driver pod spark-submit would create for this job-runner pod: the
/// name sparkvc looks for, the run's labels, owned by the job-runner.
fn driver_for(runner: &Pod) -> Pod {
    let run = runner
        .labels()
        .get(names::JOB_RUN_ID)
        .cloned()
        .unwrap_or_default();
    let attempt = names::attempt_of_labels(runner.metadata.labels.as_ref());
    let mut labels = runner.labels().clone();
    labels.insert(names::COMPONENT.into(), names::COMPONENT_DRIVER.into());
    labels.insert(names::SPARK_ROLE.into(), "driver".into());
    labels.insert(names::SPARK_APP_SELECTOR.into(), format!("spark-{run}"));
    let annotations = match runner.annotations().get(DRIVER_SECONDS) {
        Some(seconds) => [(kwok::RUN_SECONDS.to_string(), seconds.clone())].into(),
        None => [(kwok::STAY_RUNNING.to_string(), "true".to_string())].into(),
    };
    let spec = runner.spec.as_ref();
    serde_json::from_value::<Pod>(json!({
        "spec": {
            "serviceAccountName": spec.and_then(|s| s.service_account_name.clone()),
            "automountServiceAccountToken": false,
            "restartPolicy": "Never",
            "containers": [{"name": names::DRIVER_CONTAINER, "image": "spark:stand-in"}],
        }
    }))
    .map(|mut pod| {
        pod.metadata = ObjectMeta {
            name: Some(names::driver_pod_name(&names::attempt_name(&run, attempt))),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: runner.name_any(),
                uid: runner.uid().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: None,
            }]),
            ..ObjectMeta::default()
        };
        pod
    })
    .expect("driver pod")
}

/// Follows sparkvc's job-runner and driver pods in every namespace: counts
/// what runs at once, records when drivers end, and hands each job-runner
/// that is Running to the spark-submit stand-in once.
fn watch_pods(kube: kube::Client, watched: Arc<Watched>, runners: mpsc::UnboundedSender<Pod>) {
    tokio::spawn(async move {
        let config = watcher::Config::default().labels(&format!(
            "{}={},{} in ({},{})",
            names::MANAGED_BY,
            names::MANAGED_BY_SPARKVC,
            names::COMPONENT,
            names::COMPONENT_JOB_RUNNER,
            names::COMPONENT_DRIVER
        ));
        let events = watcher(Api::<Pod>::all(kube), config).default_backoff();
        futures::pin_mut!(events);
        while let Some(event) = events.next().await {
            let (pod, deleted) = match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => (pod, false),
                Ok(watcher::Event::Delete(pod)) => (pod, true),
                _ => continue,
            };
            let Some(run) = pod.labels().get(names::JOB_RUN_ID).cloned() else {
                continue;
            };
            let is_driver = pod.labels().get(names::COMPONENT).map(String::as_str)
                == Some(names::COMPONENT_DRIVER);
            let running = !deleted && phase(&pod) == "Running";
            {
                let mut now = watched.running.lock().unwrap();
                let set = if is_driver {
                    &mut now.drivers
                } else {
                    &mut now.runners
                };
                if running {
                    set.insert(run.clone());
                } else {
                    set.remove(&run);
                }
                now.most_at_once = now.most_at_once.max(now.runners.len() + now.drivers.len());
            }
            let mut runs = watched.runs.lock().unwrap();
            let seen = runs.entry(run).or_default();
            if !is_driver && !deleted {
                let uid = pod.uid();
                if seen.runner_uid.is_some() && seen.runner_uid != uid {
                    watched
                        .runners_created_again
                        .fetch_add(1, Ordering::Relaxed);
                }
                seen.runner_uid = uid;
                seen.runner_seen
                    .get_or_insert_with(|| (Instant::now(), pod.namespace().unwrap_or_default()));
            }
            if is_driver && matches!(phase(&pod), "Succeeded" | "Failed") {
                seen.driver_ended.get_or_insert_with(SystemTime::now);
            }
            if !is_driver && running && !seen.driver_made {
                seen.driver_made = true;
                let _ = runners.send(pod);
            }
        }
    });
}

/// The spark-submit stand-in: creates each handed job-runner's driver, up
/// to 32 at once.
fn make_drivers(kube: kube::Client, watched: Arc<Watched>, runners: mpsc::UnboundedReceiver<Pod>) {
    tokio::spawn(async move {
        tokio_stream::wrappers::UnboundedReceiverStream::new(runners)
            .for_each_concurrent(32, |runner| {
                let (kube, watched) = (kube.clone(), watched.clone());
                async move {
                    let namespace = runner.namespace().unwrap_or_default();
                    let pods: Api<Pod> = Api::namespaced(kube, &namespace);
                    match pods
                        .create(&PostParams::default(), &driver_for(&runner))
                        .await
                    {
                        Ok(_) => {}
                        Err(kube::Error::Api(e)) if e.code == 409 => {}
                        Err(err) => {
                            if watched.driver_errors.fetch_add(1, Ordering::Relaxed) < 5 {
                                eprintln!("creating a driver pod failed: {err}");
                            }
                        }
                    }
                }
            })
            .await;
    });
}

/// Which part of the benchmark a probe call fell in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Filling,
    /// sparkvc is being killed and started again: no calls.
    Restarting,
    Full,
}

#[derive(Default)]
struct ProbeLatencies {
    describe: Latencies,
    list: Latencies,
    list_running: Latencies,
    errors: usize,
}

/// DescribeJobRun of a random run, ListJobRuns of a random virtual cluster
/// (first page, unfiltered), ListJobRuns with `states=RUNNING`, in turn,
/// `rate` calls a second, one at a time, until `stop`.
async fn probe(
    client: Arc<Mutex<Client>>,
    known: Arc<Mutex<Vec<(String, String)>>>,
    vcs: Vec<String>,
    rate: u32,
    stage: Arc<Mutex<Stage>>,
    stop: Arc<AtomicBool>,
) -> HashMap<&'static str, ProbeLatencies> {
    let mut by_stage: HashMap<&'static str, ProbeLatencies> = HashMap::new();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut turn = 0usize;
    while !stop.load(Ordering::Acquire) {
        ticker.tick().await;
        let name = match *stage.lock().unwrap() {
            Stage::Filling => "filling",
            Stage::Restarting => continue,
            Stage::Full => "full",
        };
        let mut client = client.lock().unwrap().clone();
        let (kind, started, ok) = match turn % 3 {
            0 => {
                let pick = {
                    let known = known.lock().unwrap();
                    (!known.is_empty())
                        .then(|| known[rand::rng().random_range(0..known.len())].clone())
                };
                let Some((vc, id)) = pick else { continue };
                let started = Instant::now();
                let req = pb::DescribeJobRunRequest {
                    id,
                    virtual_cluster_id: vc,
                };
                (
                    "describe",
                    started,
                    client.describe_job_run(req).await.is_ok(),
                )
            }
            k => {
                let vc = vcs[rand::rng().random_range(0..vcs.len())].clone();
                let states = if k == 2 {
                    vec!["RUNNING".into()]
                } else {
                    vec![]
                };
                let started = Instant::now();
                let req = pb::ListJobRunsRequest {
                    virtual_cluster_id: vc,
                    states,
                    ..Default::default()
                };
                let kind = if k == 2 { "list_running" } else { "list" };
                (kind, started, client.list_job_runs(req).await.is_ok())
            }
        };
        let took = started.elapsed();
        turn += 1;
        let lat = by_stage.entry(name).or_default();
        if !ok {
            lat.errors += 1;
            continue;
        }
        match kind {
            "describe" => lat.describe.record(took),
            "list" => lat.list.record(took),
            _ => lat.list_running.record(took),
        }
    }
    by_stage
}

/// CPU seconds each named process has used so far, plus what a process
/// of the same name used before it was killed (`carried`).
fn cpu_now(processes: &[(String, u32)], carried: &[f64]) -> Vec<f64> {
    processes
        .iter()
        .zip(carried)
        .map(|((_, pid), carried)| cpu_seconds(*pid).unwrap_or(0.0) + carried)
        .collect()
}

/// Cores each process used between two readings `secs` apart.
fn cores(
    processes: &[(String, u32)],
    before: &[f64],
    after: &[f64],
    secs: f64,
) -> Vec<(String, f64)> {
    processes
        .iter()
        .zip(before.iter().zip(after))
        .map(|((name, _), (b, a))| (name.clone(), (a - b) / secs.max(1e-9)))
        .collect()
}

/// Starts `n` runs on `vcs` (round robin) at `rate` per second; returns
/// (virtual cluster, run ID) of each run started.
async fn start_runs(
    client: &Client,
    vcs: &[String],
    n: usize,
    rate: f64,
    overrides: pb::ConfigurationOverrides,
    known: Arc<Mutex<Vec<(String, String)>>>,
) -> Vec<(String, String)> {
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut starts = Vec::with_capacity(n);
    for i in 0..n {
        ticker.tick().await;
        let vc = vcs[i % vcs.len()].clone();
        let mut req = start_request(&vc);
        req.configuration_overrides = Some(overrides.clone());
        let started = sparkvc_bench::start_run(client.clone(), req);
        let known = known.clone();
        starts.push(tokio::spawn(async move {
            let id = started.await;
            known.lock().unwrap().push((vc.clone(), id.clone()));
            (vc, id)
        }));
    }
    let mut ids = Vec::with_capacity(n);
    for s in starts {
        ids.push(s.await.expect("start task"));
    }
    ids
}

/// The job-runner's annotations, set through `emr-job-submitter`.
fn runner_overrides(annotations: serde_json::Value) -> pb::ConfigurationOverrides {
    let properties: serde_json::Map<String, serde_json::Value> = annotations
        .as_object()
        .expect("annotations")
        .iter()
        .map(|(k, v)| (format!("jobsubmitter.annotation.{k}"), v.clone()))
        .collect();
    serde_json::from_value(json!({
        "applicationConfiguration": [{"classification": "emr-job-submitter", "properties": properties}]
    }))
    .expect("overrides")
}

/// Every run's state, by run ID, over the given virtual clusters.
async fn states_of(client: &Client, vcs: &[String]) -> HashMap<String, pb::JobRun> {
    let mut states = HashMap::new();
    for vc in vcs {
        let mut client = client.clone();
        for run in all_runs(&mut client, vc).await {
            states.insert(run.id.clone(), run);
        }
    }
    states
}

fn count_states<'a>(
    runs: impl Iterator<Item = &'a pb::JobRun>,
) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for run in runs {
        *counts.entry(run.state.clone()).or_default() += 1;
    }
    counts
}

/// The executor's create requests for pods so far, from its metrics.
fn pod_creates(server: &Server) -> f64 {
    let metrics = http_get(server.metrics_url.as_deref().expect("metrics URL"));
    metric_sum(
        &metrics,
        "sparkvc_kubernetes_request_duration_seconds_count{verb=\"create\",resource=\"Pod\"",
    )
}

/// The executor's completed reconcile passes so far, from its metrics.
fn reconcile_passes(server: &Server) -> f64 {
    let metrics = http_get(server.metrics_url.as_deref().expect("metrics URL"));
    metric_sum(&metrics, "sparkvc_reconcile_passes_total")
}

/// SIGKILL, then a new server on the same store: returns it, when it was
/// killed, and how long until the new one served.
fn kill_and_start(server: Server, dir: &Path, env: &LocalEnv) -> (Server, Instant, f64) {
    server.kill9();
    let killed = Instant::now();
    let server = start_server(dir, &cluster_server_args(env));
    (server, killed, killed.elapsed().as_secs_f64())
}

/// How long after `since` the first job-runner of `runs` appeared in each
/// namespace, for the namespaces that got one, sorted: how soon every
/// tenant's queue moved again.
fn first_runner_per_namespace(watched: &Watched, runs: &HashSet<&str>, since: Instant) -> Vec<f64> {
    let mut first: HashMap<String, Instant> = HashMap::new();
    for (run, seen) in watched.runs.lock().unwrap().iter() {
        if let Some((at, ns)) = &seen.runner_seen
            && *at > since
            && runs.contains(run.as_str())
        {
            let earliest = first.entry(ns.clone()).or_insert(*at);
            *earliest = (*earliest).min(*at);
        }
    }
    let mut after: Vec<f64> = first
        .values()
        .map(|at| (*at - since).as_secs_f64())
        .collect();
    after.sort_by(f64::total_cmp);
    after
}

/// The restart while filling, as measured so far.
struct FillRestart {
    killed: Instant,
    serving_s: f64,
    /// Runs whose job-runner pod was Running when sparkvc was killed.
    runners_running_at_kill: usize,
    /// Until the new server's first pod create (submissions resumed).
    creating_again_s: Option<f64>,
    first_pass_s: Option<f64>,
}

impl FillRestart {
    /// Notes, from the new server's metrics, what has happened since.
    fn check(&mut self, server: &Server) {
        let since = self.killed.elapsed().as_secs_f64();
        if self.creating_again_s.is_none() && pod_creates(server) > 0.0 {
            self.creating_again_s = Some(since);
        }
        if self.first_pass_s.is_none() && reconcile_passes(server) >= 1.0 {
            self.first_pass_s = Some(since);
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let env = LocalEnv::load().expect("the local cluster (deploy/local/up)");
    let kube = env.kube_client().await.expect("kube client");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = start_server(dir.path(), &cluster_server_args(&env));
    let mut client = server.client().await;
    let mut results = serde_json::Map::new();

    // One namespace per virtual cluster; the short runs get one more.
    let (mut namespaces, mut vcs) = (vec![], vec![]);
    for _ in 0..=args.virtual_clusters.max(1) {
        let ns = TestNamespace::create(&kube, "scale-bench")
            .await
            .expect("namespace");
        vcs.push(virtual_cluster_on(&mut client.clone(), &ns.name).await);
        namespaces.push(ns);
    }
    let short_vc = vcs.pop().expect("the short runs' virtual cluster");
    let watched = Arc::new(Watched::default());
    let (to_stand_in, runners) = mpsc::unbounded_channel();
    watch_pods(kube.clone(), watched.clone(), to_stand_in);
    make_drivers(kube.clone(), watched.clone(), runners);

    let mut processes: Vec<(String, u32)> = [
        "etcd",
        "kube-apiserver",
        "kube-scheduler",
        "kube-controller-manager",
        "kwok",
    ]
    .iter()
    .filter_map(|name| Some((name.to_string(), env.component_pid(name)?)))
    .collect();
    let sparkvc_at = processes.len();
    processes.push(("sparkvc".into(), server.pid()));
    processes.push(("scale-bench (this program)".into(), std::process::id()));
    let mut carried = vec![0.0; processes.len()];

    let known: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stage = Arc::new(Mutex::new(Stage::Filling));
    let stop_probe = Arc::new(AtomicBool::new(false));
    let probe_client = Arc::new(Mutex::new(client.clone()));
    let prober = tokio::spawn(probe(
        probe_client.clone(),
        known.clone(),
        vcs.clone(),
        args.probe_rate,
        stage.clone(),
        stop_probe.clone(),
    ));

    // Fill: every long run's job-runner and driver stay Running.
    println!(
        "filling: {} runs over {} virtual clusters at {} StartJobRun/s; this program creates each driver pod as spark-submit would",
        args.runs,
        vcs.len(),
        args.rate
    );
    let cpu_before = cpu_now(&processes, &carried);
    let began = Instant::now();
    let stay = runner_overrides(json!({kwok::STAY_RUNNING: "true"}));
    let long_runs = start_runs(
        &client,
        &vcs,
        args.runs,
        f64::from(args.rate),
        stay,
        known.clone(),
    )
    .await;
    let submitted_in = began.elapsed().as_secs_f64();
    println!(
        "  all {} StartJobRun calls answered after {submitted_in:.1} s",
        args.runs
    );
    let long_ids: HashSet<&str> = long_runs.iter().map(|(_, id)| id.as_str()).collect();

    // kill -9 with every run accepted and most not yet running.
    let mut fill_restart = None;
    if !args.no_restart_while_filling {
        *stage.lock().unwrap() = Stage::Restarting;
        let runners_running_at_kill = watched.running.lock().unwrap().runners.len();
        carried[sparkvc_at] += cpu_seconds(server.pid()).unwrap_or(0.0);
        let (new, killed, serving_s) = kill_and_start(server, dir.path(), &env);
        server = new;
        processes[sparkvc_at].1 = server.pid();
        client = server.client().await;
        *probe_client.lock().unwrap() = client.clone();
        *stage.lock().unwrap() = Stage::Filling;
        println!(
            "  killed sparkvc with SIGKILL ({runners_running_at_kill} job-runners Running): serving again after {serving_s:.2} s"
        );
        fill_restart = Some(FillRestart {
            killed,
            serving_s,
            runners_running_at_kill,
            creating_again_s: None,
            first_pass_s: None,
        });
    }
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut last_report = Instant::now();
    let full_after = loop {
        let (runners, drivers) = {
            let now = watched.running.lock().unwrap();
            (
                now.runners
                    .iter()
                    .filter(|r| long_ids.contains(r.as_str()))
                    .count(),
                now.drivers
                    .iter()
                    .filter(|r| long_ids.contains(r.as_str()))
                    .count(),
            )
        };
        if let Some(restart) = fill_restart.as_mut() {
            restart.check(&server);
        }
        if runners == args.runs && drivers == args.runs {
            break began.elapsed().as_secs_f64();
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            println!(
                "  {:.0} s: {runners} job-runner and {drivers} driver pods Running",
                began.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "the cluster did not fill in 30 minutes: {runners} job-runners and {drivers} drivers Running"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let cpu_full = cpu_now(&processes, &carried);
    let fill_cores = cores(&processes, &cpu_before, &cpu_full, full_after);
    println!(
        "full after {full_after:.1} s: {} job-runner and {} driver pods Running ({:.0} pods/s); sparkvc RSS {:.0} MB",
        args.runs,
        args.runs,
        2.0 * args.runs as f64 / full_after,
        rss_mb(server.pid()).unwrap_or(0.0)
    );

    // Hold: the short runs come and go on their own virtual cluster.
    *stage.lock().unwrap() = Stage::Full;
    let hold_began = Instant::now();
    let short_window = args
        .hold_seconds
        .saturating_sub(args.short_run_seconds + 10)
        .max(1) as f64;
    let short_rate = (args.short_runs as f64 / short_window).max(0.1);
    println!(
        "holding {} s: {} short runs at {short_rate:.1}/s, each driver running {} s",
        args.hold_seconds, args.short_runs, args.short_run_seconds
    );
    let short = runner_overrides(json!({
        DRIVER_SECONDS: args.short_run_seconds.to_string(),
        kwok::RUN_SECONDS: (args.short_run_seconds + 5).to_string(),
    }));
    let short_runs = start_runs(
        &client,
        std::slice::from_ref(&short_vc),
        args.short_runs,
        short_rate,
        short,
        Arc::default(),
    )
    .await;
    let hold_end = hold_began + Duration::from_secs(args.hold_seconds);
    tokio::time::sleep_until(hold_end.into()).await;
    let held = hold_began.elapsed().as_secs_f64();
    let cpu_held = cpu_now(&processes, &carried);
    let hold_cores = cores(&processes, &cpu_full, &cpu_held, held);
    let peak_rss = peak_rss_mb(server.pid()).unwrap_or(0.0);
    stop_probe.store(true, Ordering::Release);
    let probes = prober.await.expect("probe task");

    // kwok, busy with the full cluster, may lag the short runs' pods: wait
    // (up to 10 minutes) until every short run has ended, so that the lag
    // covers them all and the restart below finds every state settled.
    let settle_deadline = Instant::now() + Duration::from_secs(600);
    let short_open = loop {
        let open = all_runs(&mut client.clone(), &short_vc)
            .await
            .iter()
            .filter(|r| !sparkvc_e2e::is_terminal(&r.state))
            .count();
        if open == 0 || Instant::now() > settle_deadline {
            break open;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    println!(
        "short runs: {} not ended {:.0} s after the hold",
        short_open,
        hold_end.elapsed().as_secs_f64()
    );

    // Every run's state, as a client sees it.
    let mut all_vcs = vcs.clone();
    all_vcs.push(short_vc.clone());
    let listed = states_of(&client, &all_vcs).await;
    let long_states = count_states(long_runs.iter().filter_map(|(_, id)| listed.get(id)));
    let short_states = count_states(short_runs.iter().filter_map(|(_, id)| listed.get(id)));
    let mut lag = Latencies::new();
    let mut lag_missing = 0;
    {
        let runs = watched.runs.lock().unwrap();
        for (_, id) in &short_runs {
            let ended = runs.get(id).and_then(|s| s.driver_ended);
            match (
                ended,
                listed.get(id).and_then(sparkvc_bench::terminal_stored_at),
            ) {
                (Some(ended), Some(stored)) => {
                    lag.record(stored.duration_since(ended).unwrap_or_default())
                }
                _ => lag_missing += 1,
            }
        }
    }
    let most_at_once = watched.running.lock().unwrap().most_at_once;
    println!(
        "states after {:.0} s: long runs {long_states:?}; short runs {short_states:?}",
        began.elapsed().as_secs_f64()
    );
    println!(
        "status lag of the short runs (driver ended → terminal state stored): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} runs; {lag_missing} without both times)",
        lag.ms(0.5),
        lag.ms(0.99),
        lag.0.max() as f64 / 1000.0,
        lag.0.len()
    );
    println!("most job-runner + driver pods Running at once: {most_at_once}");
    println!("sparkvc peak RSS {peak_rss:.0} MB");
    println!(
        "API latency, one call at a time ({} calls/s):",
        args.probe_rate
    );
    let mut probe_json = serde_json::Map::new();
    for name in ["filling", "full"] {
        let Some(p) = probes.get(name) else { continue };
        for (kind, l) in [
            ("DescribeJobRun", &p.describe),
            ("ListJobRuns", &p.list),
            ("ListJobRuns states=RUNNING", &p.list_running),
        ] {
            println!(
                "  {name:<8} {kind:<27} p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  ({} calls)",
                l.ms(0.5),
                l.ms(0.99),
                l.0.max() as f64 / 1000.0,
                l.0.len()
            );
        }
        probe_json.insert(
            name.into(),
            json!({"describe": p.describe.summary(), "list": p.list.summary(), "list_running": p.list_running.summary(), "errors": p.errors}),
        );
    }
    println!("CPU used (cores):        filling  full");
    for ((name, fill), (_, hold)) in fill_cores.iter().zip(&hold_cores) {
        println!("  {name:<26} {fill:>5.2}  {hold:>5.2}");
    }
    let driver_errors = watched.driver_errors.load(Ordering::Relaxed);
    if driver_errors > 0 {
        println!("driver pods the stand-in failed to create: {driver_errors}");
    }
    results.insert("runs".into(), json!(args.runs));
    results.insert("virtual_clusters".into(), json!(vcs.len()));
    results.insert("start_job_run_calls_s".into(), json!(submitted_in));
    results.insert("full_after_s".into(), json!(full_after));
    results.insert("most_pods_running_at_once".into(), json!(most_at_once));
    results.insert("long_run_states".into(), json!(long_states));
    results.insert("short_run_states".into(), json!(short_states));
    results.insert("short_run_status_lag".into(), lag.summary());
    results.insert("short_runs_not_ended".into(), json!(short_open));
    results.insert("api_latency".into(), json!(probe_json));
    results.insert("sparkvc_peak_rss_mb".into(), json!(peak_rss));
    results.insert(
        "cpu_cores".into(),
        json!({
            "filling": fill_cores.iter().map(|(n, c)| (n.clone(), json!(c))).collect::<serde_json::Map<_, _>>(),
            "full": hold_cores.iter().map(|(n, c)| (n.clone(), json!(c))).collect::<serde_json::Map<_, _>>(),
        }),
    );
    results.insert("driver_create_errors".into(), json!(driver_errors));
    let runners_created_again = watched.runners_created_again.load(Ordering::Relaxed);
    if let Some(restart) = &fill_restart {
        let secs = |s: Option<f64>| s.map_or("not yet".to_string(), |s| format!("{s:.2} s"));
        println!(
            "restart while filling ({} job-runners Running at the kill): serving after {:.2} s, creating pods again after {}, first reconcile pass after {}",
            restart.runners_running_at_kill,
            restart.serving_s,
            secs(restart.creating_again_s),
            secs(restart.first_pass_s),
        );
        // The new server cannot have created a pod before it served. (The
        // old one's last pods may still be reported after that, so the
        // earliest namespace says little; the latest says when every
        // tenant's queue moved again.)
        let tenants = first_runner_per_namespace(
            &watched,
            &long_ids,
            restart.killed + Duration::from_secs_f64(restart.serving_s),
        );
        let last = tenants.last().map(|s| s + restart.serving_s);
        println!(
            "  every virtual cluster ({} of them) had a job-runner created after the kill within {}",
            tenants.len(),
            secs(last),
        );
        results.insert(
            "restart_while_filling".into(),
            json!({"serving_s": restart.serving_s, "creating_pods_again_s": restart.creating_again_s,
                   "first_pass_s": restart.first_pass_s, "runners_running_at_kill": restart.runners_running_at_kill,
                   "virtual_clusters_creating_again": tenants.len(),
                   "every_virtual_cluster_creating_again_s": last}),
        );
    }
    println!("runs whose job-runner pod was created twice: {runners_created_again}");
    results.insert("runners_created_again".into(), json!(runners_created_again));

    if !args.no_restart {
        // kill -9 with every long run in flight, then the same store again.
        let creates_before = pod_creates(&server);
        let (new, restarted, serving) = kill_and_start(server, dir.path(), &env);
        server = new;
        let first_pass = loop {
            if reconcile_passes(&server) >= 1.0 {
                break restarted.elapsed().as_secs_f64();
            }
            assert!(
                restarted.elapsed() < Duration::from_secs(300),
                "no reconcile pass in 5 minutes"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // Let the new server's pod watch catch up before comparing.
        tokio::time::sleep(Duration::from_secs(20)).await;
        let recreated = pod_creates(&server);
        let after = states_of(&server.client().await, &all_vcs).await;
        let changed = listed
            .iter()
            .filter(|(id, run)| after.get(*id).is_none_or(|a| a.state != run.state))
            .count();
        let long_not_running = long_runs
            .iter()
            .filter(|(_, id)| after.get(id).is_none_or(|a| a.state != "RUNNING"))
            .count();
        let rss_after = rss_mb(server.pid()).unwrap_or(0.0);
        println!(
            "restart with {} runs in flight ({creates_before:.0} pods created before): serving after {serving:.2} s, first reconcile pass after {first_pass:.2} s; \
             pods created again {recreated:.0}; runs whose state changed {changed} of {} ({long_not_running} long runs not RUNNING); RSS 20 s later {rss_after:.0} MB",
            long_runs.len(),
            listed.len()
        );
        results.insert(
            "restart".into(),
            json!({"serving_s": serving, "first_pass_s": first_pass, "pods_created_again": recreated,
                   "runs_changed": changed, "runs_compared": listed.len(), "long_runs_not_running": long_not_running, "rss_mb_after_20s": rss_after}),
        );
    }
    drop(server);
    sparkvc_bench::write_results(&args.out, &results);
    println!("deleting the benchmark's namespaces");
    for ns in namespaces {
        ns.delete().await.ok();
    }
}
