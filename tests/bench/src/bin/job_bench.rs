//! Job runs through the local cluster (not a timed test): submits job runs
//! through the API at increasing rates and reports, on this machine,
//!
//! - per rate: the achieved StartJobRun rate, the sustained rate of job-runner
//!   pods created, and p50/p99 submit latency (StartJobRun acknowledged → the
//!   job-runner pod seen by this program's watch);
//! - p50/p99 status lag: this program's watch shows the job-runner pod
//!   terminal → the run's terminal state stored (the time of that transition
//!   in its `stateHistory`); and, as a client sees it, → the state visible
//!   through DescribeJobRun, polled every 20 ms;
//! - the time until every run is terminal, Kubernetes API writes per run
//!   (sparkvc's own, from its metrics, and the whole cluster's, from the API
//!   server's `apiserver_request_total`), the server's CPU time and peak
//!   memory;
//! - a baseline in the same run, on the same API server and kwok nodes: a
//!   plain client creating exactly what sparkvc creates per run (the
//!   job-runner pod and its ConfigMap, copied from a run sparkvc made) as
//!   fast as it can at a few concurrencies; then one more sparkvc phase at
//!   the best of those rates, and sparkvc's job-runner pods/s there as a
//!   fraction of the baseline's; then `--ratio-rounds` more rounds of the
//!   plain client and sparkvc right after each other, and their median ratio
//!   (the plain client's rate drifts from one minute to the next here);
//! - the raw pod-creation throughput of the same API server, for comparison;
//! - restart: a server holding 10,000 queued (PENDING) runs is killed with
//!   SIGKILL and restarted; time until it serves and until its first full
//!   reconcile pass.
//!
//! kwok runs no containers: each job-runner pod is Running, then Succeeded
//! after `--run-seconds`; with no driver, the run ends FAILED ("the
//! job-runner finished but the Spark driver does not exist"). That is the
//! whole submission and status path of a real run, without Spark itself.
//!
//! usage: job-bench [--rates 20,50,100] [--runs 2000] [--run-seconds 1]
//!   [--baseline-pairs 600] [--baseline-concurrency 8,32,64]
//!   [--raw-pods 500] [--ratio-rounds 3] [--restart-runs 10000] [--out PATH]
//! Needs the local cluster with room for the pods and a scheduler allowed
//! more than its default 50 requests/s (a binding and an event per pod, so
//! about 25 pods/s, would otherwise bound when the job-runners run and end):
//!   SPARKVC_NODES=10 SPARKVC_SCHEDULER_QPS=200 deploy/local/up

use clap::Parser;
use futures::StreamExt;
use hdrhistogram::Histogram;
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use serde_json::json;
use sparkvc_bench::process::{cpu_seconds, metric_sum, peak_rss_mb};
use sparkvc_bench::{baseline, cluster_server_args, start_server};
use sparkvc_cluster_tests::{LocalEnv, TestNamespace};
use sparkvc_e2e::{
    Client, create_vc_request, http_get, is_terminal, start_request, virtual_cluster_on,
};
use sparkvc_proto::v1 as pb;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, Parser)]
struct Args {
    /// StartJobRun rates (runs/s), one phase each, equally long.
    #[arg(long, value_delimiter = ',', default_value = "20,50,100")]
    rates: Vec<u32>,
    /// Job runs in all.
    #[arg(long, default_value_t = 2000)]
    runs: usize,
    /// How long kwok keeps each job-runner pod Running.
    #[arg(long, default_value_t = 1)]
    run_seconds: u32,
    /// Job-runner pod + ConfigMap pairs the plain client creates at each
    /// baseline concurrency (0: no baseline, and no phase at its rate).
    #[arg(long, default_value_t = 600)]
    baseline_pairs: usize,
    /// Concurrencies the plain client tries; its fastest is the baseline.
    #[arg(long, value_delimiter = ',', default_value = "8,32,64")]
    baseline_concurrency: Vec<usize>,
    /// Pods created directly, for the raw pod-creation figure.
    #[arg(long, default_value_t = 500)]
    raw_pods: usize,
    /// Virtual clusters the runs are spread over, round robin, each on a
    /// namespace of its own. One virtual cluster runs at most 1,000 runs at once (AWS's
    /// cap); the plain client has no such cap, so with one the comparison
    /// measures the cap while the cluster's backlog holds the slots.
    #[arg(long, default_value_t = 8)]
    virtual_clusters: usize,
    /// Rounds of the ratio measured once more after the phases, each the
    /// plain client at its fastest concurrency and then sparkvc at the rate
    /// it reached, one right after the other; the median ratio is reported
    /// beside the single one. On a shared 2-core VM the plain client's rate
    /// moves by a quarter from one minute to the next, so one pair of
    /// measurements says little (0: skip them).
    #[arg(long, default_value_t = 3)]
    ratio_rounds: usize,
    /// Queued runs for the restart measurement (0: skip it).
    #[arg(long, default_value_t = 10_000)]
    restart_runs: usize,
    #[arg(long, default_value = "target/bench-results/job-bench.json")]
    out: PathBuf,
}

/// Per job run: when this program saw each milestone.
#[derive(Debug, Default, Clone, Copy)]
struct Times {
    acked: Option<Instant>,
    runner_created: Option<Instant>,
    runner_ended: Option<Instant>,
    /// The same moment on the wall clock, to compare with stored times.
    runner_ended_wall: Option<SystemTime>,
    state_terminal: Option<Instant>,
    phase: usize,
    /// Index of the run's virtual cluster.
    vc: usize,
}

type Board = Arc<Mutex<HashMap<String, Times>>>;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Records job-runner pod creation and termination as the watch sees them.
fn watch_runners(pods: Api<Pod>, board: Board) {
    tokio::spawn(async move {
        let config = watcher::Config::default().labels("sparkvc.io/component=job-runner");
        let events = watcher(pods, config).default_backoff().applied_objects();
        futures::pin_mut!(events);
        while let Some(Ok(pod)) = events.next().await {
            let now = Instant::now();
            let Some(run) = pod.labels().get("sparkvc.io/job-run-id").cloned() else {
                continue;
            };
            let phase = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            let mut board = board.lock().unwrap();
            let times = board.entry(run).or_default();
            times.runner_created.get_or_insert(now);
            if matches!(phase.as_str(), "Succeeded" | "Failed") {
                times.runner_ended.get_or_insert(now);
                times.runner_ended_wall.get_or_insert_with(SystemTime::now);
            }
        }
    });
}

/// Write requests the API server has served so far, by resource, from its
/// `apiserver_request_total` counter.
async fn api_server_writes(kube: &kube::Client) -> HashMap<String, f64> {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("metrics request");
    let text = kube
        .request_text(request)
        .await
        .expect("the API server's /metrics");
    let mut writes = HashMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let label = |name: &str| {
            line.split_once(&format!("{name}=\""))
                .and_then(|(_, rest)| rest.split_once('"'))
                .map(|(value, _)| value.to_string())
                .unwrap_or_default()
        };
        if !matches!(label("verb").as_str(), "POST" | "PUT" | "PATCH" | "DELETE") {
            continue;
        }
        let Some(count) = line
            .rsplit_once(' ')
            .and_then(|(_, v)| v.parse::<f64>().ok())
        else {
            continue;
        };
        let resource = match label("subresource").as_str() {
            "" => label("resource"),
            sub => format!("{}/{sub}", label("resource")),
        };
        *writes.entry(resource).or_default() += count;
    }
    writes
}

/// DescribeJobRun for each of `ids` (virtual cluster, run), 16 at a time: each run (None if the
/// call failed) and when its answer came.
async fn describe_all(
    client: &Client,
    ids: Vec<(String, String)>,
) -> Vec<(String, Option<pb::JobRun>, Instant)> {
    futures::stream::iter(ids)
        .map(|(vc, id)| {
            let mut client = client.clone();
            let req = pb::DescribeJobRunRequest {
                id: id.clone(),
                virtual_cluster_id: vc,
            };
            async move {
                let run = client
                    .describe_job_run(req)
                    .await
                    .ok()
                    .and_then(|r| r.into_inner().job_run);
                (id, run, Instant::now())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await
}

/// When each run's terminal state was stored, from its `stateHistory`.
async fn terminal_stored_at(
    client: &Client,
    ids: Vec<(String, String)>,
) -> HashMap<String, SystemTime> {
    describe_all(client, ids)
        .await
        .into_iter()
        .filter_map(|(id, run, _)| Some((id, sparkvc_bench::terminal_stored_at(run.as_ref()?)?)))
        .collect()
}

/// Polls, while runs are being submitted and after, until every run is
/// terminal; records when each was first seen so.
async fn follow_states(
    client: Client,
    vcs: Vec<String>,
    board: Board,
    submitting: Arc<AtomicBool>,
    deadline: Instant,
) {
    loop {
        let waiting: Vec<(String, String)> = {
            let board = board.lock().unwrap();
            board
                .iter()
                .filter(|(_, t)| {
                    t.acked.is_some() && t.runner_ended.is_some() && t.state_terminal.is_none()
                })
                .map(|(id, t)| (vcs[t.vc].clone(), id.clone()))
                .collect()
        };
        let all_done = {
            let board = board.lock().unwrap();
            board
                .values()
                .all(|t| t.acked.is_none() || t.state_terminal.is_some())
        };
        if (all_done && !submitting.load(Ordering::Acquire)) || Instant::now() > deadline {
            return;
        }
        let checks = describe_all(&client, waiting).await;
        {
            let mut board = board.lock().unwrap();
            for (id, run, at) in checks {
                let done = run.is_some_and(|r| is_terminal(&r.state));
                if done && let Some(t) = board.get_mut(&id) {
                    t.state_terminal.get_or_insert(at);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates `n` pods directly, 16 at a time: pods/s accepted.
async fn raw_pod_creation(kube: &kube::Client, n: usize) -> f64 {
    let ns = TestNamespace::create(kube, "raw-pods")
        .await
        .expect("namespace");
    let pods: Api<Pod> = ns.api();
    let started = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(16, |i| {
            let pods = pods.clone();
            async move {
                let pod: Pod = serde_json::from_value(json!({
                    "metadata": {"name": format!("raw-{i}")},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}
                }))
                .expect("pod");
                pods.create(&PostParams::default(), &pod)
                    .await
                    .expect("create pod");
            }
        })
        .await;
    let rate = n as f64 / started.elapsed().as_secs_f64();
    ns.delete().await.ok();
    rate
}

/// Restart with `n` queued runs: (seconds until serving, until the first pass).
async fn restart(env: &LocalEnv, kube: &kube::Client, n: usize) -> (f64, f64) {
    let ns = TestNamespace::create(kube, "restart")
        .await
        .expect("namespace");
    let dir = tempfile::tempdir().expect("temp dir");
    // API-only first: the runs are stored, nothing is submitted.
    let server = start_server(dir.path(), &[]);
    let mut client = server.client().await;
    let mut req = create_vc_request(&ns.name);
    req.scheduler_configuration = Some(pb::SchedulerConfiguration {
        max_concurrent_job_runs: Some(1),
        max_in_queue_job_runs: None,
    });
    let vc = client
        .create_virtual_cluster(req)
        .await
        .expect("vc")
        .into_inner()
        .id;
    futures::stream::iter(0..n)
        .for_each_concurrent(32, |_| {
            let mut client = client.clone();
            let vc = vc.clone();
            async move {
                client
                    .start_job_run(start_request(&vc))
                    .await
                    .expect("StartJobRun");
            }
        })
        .await;
    server.kill9();
    let started = Instant::now();
    let server = start_server(dir.path(), &cluster_server_args(env));
    let serving = started.elapsed().as_secs_f64();
    let url = server.metrics_url.clone().expect("metrics URL");
    loop {
        if metric_sum(&http_get(&url), "sparkvc_reconcile_passes_total") >= 1.0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no reconcile pass in 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reconciled = started.elapsed().as_secs_f64();
    drop(server);
    ns.delete().await.ok();
    (serving, reconciled)
}

/// What each ratio round needs besides the plain client's objects.
struct RoundSetup<'a> {
    client: &'a Client,
    vcs: &'a [String],
    overrides: &'a pb::ConfigurationOverrides,
    board: &'a Board,
    /// The board's phase number of the first round's runs.
    first_phase: usize,
    /// The plain client's first pair number (names must not repeat).
    first_pair: usize,
    pairs: usize,
}

/// The ratio measured `rounds` times more, each round the plain client at
/// `concurrency` and then, once its pods have ended, sparkvc at the rate it
/// reached for about as long as a phase (six seconds). Prints each round
/// and the median ratio; returns them for the results file.
async fn ratio_rounds(
    kube: &kube::Client,
    namespace: &str,
    objects: &baseline::RunObjects,
    concurrency: usize,
    at: &RoundSetup<'_>,
    rounds: usize,
) -> serde_json::Value {
    println!(
        "ratio rounds: the plain client at {concurrency} in flight, then sparkvc at the rate it reached, {rounds} times"
    );
    let mut ratios = vec![];
    let mut out = vec![];
    for round in 0..rounds {
        let plain = baseline::plain_client(
            kube,
            namespace,
            objects,
            at.first_pair + round * at.pairs,
            at.pairs,
            concurrency,
        )
        .await;
        wait_until_all_ended(kube, namespace).await;
        let rate = plain.pods_per_s.round().max(1.0) as u32;
        let n = (rate as usize * 6).max(100);
        let phase = at.first_phase + round;
        let starts =
            submit_at_rate(at.client, at.vcs, at.overrides, at.board, rate, n, phase).await;
        for s in starts {
            s.await.expect("start task");
        }
        wait_for_phase(at.board, phase, false).await;
        let (pods_per_s, submit) = phase_throughput(&at.board.lock().unwrap(), phase);
        // Before the next round's plain client: let these pods end too.
        wait_for_phase(at.board, phase, true).await;
        let ratio = pods_per_s / plain.pods_per_s;
        println!(
            "  round {}: plain client {:.1} pods/s; sparkvc {pods_per_s:.1} job-runner pods/s ({n} runs, submit p99 {:.0} ms); ratio {ratio:.2}",
            round + 1,
            plain.pods_per_s,
            ms(&submit, 0.99)
        );
        ratios.push(ratio);
        out.push(json!({
            "plain_pods_per_s": plain.pods_per_s, "sparkvc_pods_per_s": pods_per_s, "runs": n,
            "submit_p99_ms": ms(&submit, 0.99), "ratio": ratio,
        }));
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!("median ratio over {rounds} rounds: {median:.2} (goal ≥ 0.8)");
    json!({"rounds": out, "median_ratio": median})
}

/// Waits (up to three minutes) until every pod in `namespace` has ended.
async fn wait_until_all_ended(kube: &kube::Client, namespace: &str) {
    let pods: Api<Pod> = Api::namespaced(kube.clone(), namespace);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let list = pods
            .list(&kube::api::ListParams::default())
            .await
            .expect("list the baseline's pods");
        let running = list
            .items
            .iter()
            .filter(|p| {
                let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                !matches!(phase, Some("Succeeded" | "Failed"))
            })
            .count();
        if running == 0 || Instant::now() > deadline {
            println!("  the baseline's pods: {running} not ended");
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Starts `n` runs at `rate` runs/s, round robin over `vcs`, each marked
/// with `phase` on the board once acknowledged; returns the tasks waiting
/// for the acknowledgements.
async fn submit_at_rate(
    client: &Client,
    vcs: &[String],
    overrides: &pb::ConfigurationOverrides,
    board: &Board,
    rate: u32,
    n: usize,
    phase: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut ticker = tokio::time::interval(interval);
    let mut starts = Vec::with_capacity(n);
    for i in 0..n {
        ticker.tick().await;
        let vc_index = i % vcs.len();
        let started =
            sparkvc_bench::start_run(client.clone(), kwok_request(&vcs[vc_index], overrides));
        let board = board.clone();
        starts.push(tokio::spawn(async move {
            let id = started.await;
            let now = Instant::now();
            let mut board = board.lock().unwrap();
            let t = board.entry(id).or_default();
            t.acked = Some(now);
            t.phase = phase;
            t.vc = vc_index;
        }));
    }
    starts
}

/// The job-runner pods/s of `phase`: its runs over the time from its first
/// acknowledgement to its last job-runner seen, and the submit latencies.
fn phase_throughput(board: &HashMap<String, Times>, phase: usize) -> (f64, Histogram<u64>) {
    let mut submit = histogram();
    let (mut first_ack, mut last_created) = (None::<Instant>, None::<Instant>);
    for t in board.values().filter(|t| t.phase == phase) {
        if let (Some(a), Some(c)) = (t.acked, t.runner_created) {
            submit
                .record(c.saturating_duration_since(a).as_micros().max(1) as u64)
                .ok();
            first_ack = Some(first_ack.map_or(a, |f| f.min(a)));
            last_created = Some(last_created.map_or(c, |l| l.max(c)));
        }
    }
    let pods_per_s = match (first_ack, last_created) {
        (Some(a), Some(c)) => submit.len() as f64 / c.duration_since(a).as_secs_f64(),
        _ => 0.0,
    };
    (pods_per_s, submit)
}

/// Waits (up to three minutes) until every run of `phase` has had its
/// job-runner created, or also ended if `ended`.
async fn wait_for_phase(board: &Board, phase: usize, ended: bool) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let left = board
            .lock()
            .unwrap()
            .values()
            .filter(|t| t.phase == phase && t.acked.is_some())
            .filter(|t| t.runner_created.is_none() || (ended && t.runner_ended.is_none()))
            .count();
        if left == 0 || Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// StartJobRun with the overrides that set how long kwok runs its pods.
fn kwok_request(vc: &str, overrides: &pb::ConfigurationOverrides) -> pb::StartJobRunRequest {
    let mut req = start_request(vc);
    req.configuration_overrides = Some(overrides.clone());
    req
}

/// Starts one run and returns the objects sparkvc made for it, once its
/// job-runner pod and ConfigMap both exist.
async fn capture_a_run(
    client: &mut Client,
    kube: &kube::Client,
    vc: &str,
    namespace: &str,
    overrides: &pb::ConfigurationOverrides,
) -> baseline::RunObjects {
    let id = client
        .start_job_run(kwok_request(vc, overrides))
        .await
        .expect("StartJobRun")
        .into_inner()
        .id;
    let pods: Api<Pod> = Api::namespaced(kube.clone(), namespace);
    let maps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(kube.clone(), namespace);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pod = pods.get_opt(&id).await.expect("read the job-runner pod");
        let map = maps
            .get_opt(&format!("spark-{id}-conf"))
            .await
            .expect("read the ConfigMap");
        if let (Some(pod), Some(map)) = (pod, map) {
            return baseline::RunObjects::new(&id, pod, map);
        }
        assert!(
            Instant::now() < deadline,
            "run {id}'s job-runner objects never appeared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let env = LocalEnv::load().expect("the local cluster (deploy/local/up)");
    let kube = env.kube_client().await.expect("kube client");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_server(dir.path(), &cluster_server_args(&env));
    let mut client = server.client().await;
    let board: Board = Arc::default();
    // One namespace per virtual cluster (a namespace holds at most one).
    let (mut namespaces, mut vcs) = (vec![], vec![]);
    for _ in 0..args.virtual_clusters.max(1) {
        let ns = TestNamespace::create(&kube, "job-bench")
            .await
            .expect("namespace");
        vcs.push(virtual_cluster_on(&mut client, &ns.name).await);
        watch_runners(ns.api(), board.clone());
        namespaces.push(ns);
    }
    let (ns, vc) = (&namespaces[0], vcs[0].clone());
    let mut results = serde_json::Map::new();
    let overrides: pb::ConfigurationOverrides = serde_json::from_value(json!({
        "applicationConfiguration": [{"classification": "emr-job-submitter", "properties": {
            "jobsubmitter.annotation.sparkvc.io/kwok-run-seconds": args.run_seconds.to_string()
        }}]
    }))
    .expect("overrides");

    let mut rates = args.rates.clone();
    let mut baseline_ns = None;
    // What the ratio rounds repeat: the objects and the fastest concurrency.
    let mut plain_setup = None;
    let baseline = if args.baseline_pairs > 0 {
        let objects = capture_a_run(&mut client, &kube, &vc, &ns.name, &overrides).await;
        let bns = TestNamespace::create(&kube, "baseline")
            .await
            .expect("namespace");
        baseline::service_account_for(&kube, &bns.name, &objects).await;
        println!(
            "baseline: a plain client creates sparkvc's job-runner pod and ConfigMap ({} bytes as JSON, from run {})",
            objects.bytes(),
            objects.run
        );
        let mut figures = vec![];
        for (k, &concurrency) in args.baseline_concurrency.iter().enumerate() {
            let f = baseline::plain_client(
                &kube,
                &bns.name,
                &objects,
                k * args.baseline_pairs,
                args.baseline_pairs,
                concurrency,
            )
            .await;
            println!(
                "  {} pairs, {concurrency:>3} at a time: {:.1} pods/s; pod sent → ConfigMap created p50 {:.1} ms, p99 {:.1} ms",
                f.pairs,
                f.pods_per_s,
                f.pair.ms(0.5),
                f.pair.ms(0.99)
            );
            figures.push(f);
        }
        // The plain client's pods still have to be scheduled, run and end:
        // let the cluster finish with them before sparkvc's phases.
        wait_until_all_ended(&kube, &bns.name).await;
        baseline_ns = Some(bns);
        let fastest = figures
            .iter()
            .max_by(|a, b| a.pods_per_s.total_cmp(&b.pods_per_s))
            .expect("at least one baseline concurrency");
        let best = fastest.pods_per_s;
        let concurrency = fastest.concurrency;
        rates.push(best.round().max(1.0) as u32);
        results.insert(
            "baseline".into(),
            json!({
                "object_bytes": objects.bytes(),
                "by_concurrency": figures.iter().map(|f| json!({
                    "concurrency": f.concurrency, "pairs": f.pairs, "pods_per_s": f.pods_per_s,
                    "pair_latency_ms": {"p50": f.pair.ms(0.5), "p99": f.pair.ms(0.99)},
                })).collect::<Vec<_>>(),
                "pods_per_s": best,
            }),
        );
        plain_setup = Some((objects, concurrency));
        Some(best)
    } else {
        None
    };

    // Counted from here: sparkvc's phases only, not the baseline.
    let cluster_writes_before = api_server_writes(&kube).await;
    let cpu_before = cpu_seconds(server.pid()).unwrap_or(0.0);
    let total_rate: u32 = rates.iter().sum();
    let phase_secs = args.runs as f64 / f64::from(total_rate.max(1));
    println!(
        "{} job runs over {} virtual clusters: {} phases of {phase_secs:.1} s at {:?} runs/s; kwok ends each job-runner after {} s",
        args.runs,
        vcs.len(),
        rates.len(),
        rates,
        args.run_seconds
    );
    let began = Instant::now();
    let submitting = Arc::new(AtomicBool::new(true));
    let follower = tokio::spawn(follow_states(
        client.clone(),
        vcs.clone(),
        board.clone(),
        submitting.clone(),
        Instant::now() + Duration::from_secs(900),
    ));
    let mut starts = vec![];
    let mut phase_bounds = vec![];
    let mut left = args.runs;
    for (phase, &rate) in rates.iter().enumerate() {
        // The last phase takes what rounding left, so the total is exact.
        let n = if phase + 1 == rates.len() {
            left
        } else {
            ((phase_secs * f64::from(rate)).round() as usize).min(left)
        };
        left -= n;
        let phase_start = Instant::now();
        starts.extend(submit_at_rate(&client, &vcs, &overrides, &board, rate, n, phase).await);
        phase_bounds.push((rate, n, phase_start, phase_start.elapsed()));
    }
    for s in starts {
        s.await.expect("start task");
    }
    let submitted_in = began.elapsed();
    submitting.store(false, Ordering::Release);
    follower.await.expect("state follower");
    let all_terminal = began.elapsed();
    let cluster_writes: Vec<(String, f64)> = {
        let after = api_server_writes(&kube).await;
        let mut delta: Vec<(String, f64)> = after
            .into_iter()
            .map(|(resource, n)| {
                let before = cluster_writes_before.get(&resource).copied().unwrap_or(0.0);
                (resource, (n - before) / args.runs as f64)
            })
            .filter(|(_, per_run)| *per_run >= 0.005)
            .collect();
        delta.sort_by(|a, b| b.1.total_cmp(&a.1));
        delta
    };
    let cpu = cpu_seconds(server.pid()).unwrap_or(0.0) - cpu_before;
    let rss = peak_rss_mb(server.pid()).unwrap_or(0.0);
    let metrics = http_get(server.metrics_url.as_deref().expect("metrics URL"));
    let writes = metric_sum(
        &metrics,
        "sparkvc_kubernetes_request_duration_seconds_count{verb=\"create\"",
    ) + metric_sum(
        &metrics,
        "sparkvc_kubernetes_request_duration_seconds_count{verb=\"delete\"",
    );

    // The server's own view: accepted → job-runner created (SUBMITTED stored).
    let server_submit_mean_ms = 1000.0 * metric_sum(&metrics, "sparkvc_submit_latency_seconds_sum")
        / metric_sum(&metrics, "sparkvc_submit_latency_seconds_count").max(1.0);
    let server_lag_mean_ms = 1000.0 * metric_sum(&metrics, "sparkvc_status_lag_seconds_sum")
        / metric_sum(&metrics, "sparkvc_status_lag_seconds_count").max(1.0);
    println!(
        "server metrics: mean accepted → job-runner created {server_submit_mean_ms:.1} ms; \
         mean terminal pod event → state stored {server_lag_mean_ms:.1} ms"
    );
    // Where a submission's time goes: the executor's own requests.
    let mut request_means = serde_json::Map::new();
    for kind in ["Pod", "ConfigMap"] {
        let selector = format!("{{verb=\"create\",resource=\"{kind}\"");
        let sum = metric_sum(
            &metrics,
            &format!("sparkvc_kubernetes_request_duration_seconds_sum{selector}"),
        );
        let count = metric_sum(
            &metrics,
            &format!("sparkvc_kubernetes_request_duration_seconds_count{selector}"),
        );
        let mean = 1000.0 * sum / count.max(1.0);
        println!("  create {kind}: {count:.0} requests, mean {mean:.1} ms");
        request_means.insert(format!("create_{kind}_mean_ms"), json!(mean));
    }
    results.insert("server_requests".into(), json!(request_means));
    let seen = board.lock().unwrap().clone();
    let ids = seen
        .iter()
        .filter(|(_, t)| t.acked.is_some())
        .map(|(id, t)| (vcs[t.vc].clone(), id.clone()))
        .collect();
    let stored_at = terminal_stored_at(&client, ids).await;
    println!(
        "{:>8} {:>6} {:>10} {:>13} {:>14} {:>14} {:>11} {:>11}",
        "rate",
        "runs",
        "starts/s",
        "runner pods/s",
        "submit p50 ms",
        "submit p99 ms",
        "lag p50 ms",
        "lag p99 ms"
    );
    let mut phases = vec![];
    let mut last_pods_per_s = 0.0;
    for (phase, (rate, n, _, took)) in phase_bounds.iter().enumerate() {
        // Status lag of the runs started in this phase: pod terminal → the
        // terminal state stored.
        let mut phase_lag = histogram();
        for (id, t) in seen
            .iter()
            .filter(|(_, t)| t.phase == phase && t.acked.is_some())
        {
            if let (Some(ended), Some(stored)) = (t.runner_ended_wall, stored_at.get(id)) {
                let lag = stored.duration_since(ended).unwrap_or_default();
                phase_lag.record(lag.as_micros().max(1) as u64).ok();
            }
        }
        let (pods_per_s, submit) = phase_throughput(&seen, phase);
        let starts_per_s = *n as f64 / took.as_secs_f64();
        println!(
            "{rate:>8} {n:>6} {starts_per_s:>10.1} {pods_per_s:>13.1} {:>14.1} {:>14.1} {:>11.1} {:>11.1}",
            ms(&submit, 0.5),
            ms(&submit, 0.99),
            ms(&phase_lag, 0.5),
            ms(&phase_lag, 0.99)
        );
        phases.push(json!({
            "target_rate": rate, "runs": n, "start_job_run_per_s": starts_per_s,
            "job_runner_pods_per_s": pods_per_s,
            "submit_latency_ms": {"p50": ms(&submit, 0.5), "p99": ms(&submit, 0.99), "max": ms(&submit, 1.0)},
            "status_lag_stored_ms": {"p50": ms(&phase_lag, 0.5), "p99": ms(&phase_lag, 0.99)},
        }));
        last_pods_per_s = pods_per_s;
    }
    results.insert("phases".into(), json!(phases));
    if let Some(base) = baseline {
        let ratio = last_pods_per_s / base;
        println!(
            "sparkvc at the baseline's rate: {last_pods_per_s:.1} job-runner pods/s = {ratio:.2} of the plain client's {base:.1} (goal ≥ 0.8)"
        );
        results.insert("ratio_to_baseline".into(), json!(ratio));
    }
    let mut stored_lag = histogram();
    for (id, t) in &seen {
        if let (Some(ended), Some(stored)) = (t.runner_ended_wall, stored_at.get(id)) {
            let lag = stored.duration_since(ended).unwrap_or_default();
            stored_lag.record(lag.as_micros().max(1) as u64).ok();
        }
    }
    println!(
        "status lag (pod terminal → state stored): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} runs)",
        ms(&stored_lag, 0.5),
        ms(&stored_lag, 0.99),
        ms(&stored_lag, 1.0),
        stored_lag.len()
    );
    let mut lag = histogram();
    let mut terminal = 0;
    for t in seen.values() {
        if let (Some(e), Some(s)) = (t.runner_ended, t.state_terminal) {
            lag.record(s.saturating_duration_since(e).as_micros().max(1) as u64)
                .ok();
        }
        terminal += usize::from(t.state_terminal.is_some());
    }
    println!(
        "status lag (pod terminal → state visible to a client): p50 {:.1} ms, p99 {:.1} ms ({} runs; polled every 20 ms)",
        ms(&lag, 0.5),
        ms(&lag, 0.99),
        lag.len()
    );
    println!(
        "all {} runs submitted in {:.1} s; {terminal} terminal after {:.1} s",
        args.runs,
        submitted_in.as_secs_f64(),
        all_terminal.as_secs_f64()
    );
    println!(
        "Kubernetes API writes per run: {:.2}; server CPU {cpu:.1} s ({:.2} ms per run); peak RSS {rss:.0} MB",
        writes / args.runs as f64,
        cpu * 1000.0 / args.runs as f64
    );
    let cluster_total: f64 = cluster_writes.iter().map(|(_, n)| n).sum();
    println!(
        "Kubernetes API writes per run, whole cluster (API server counters): {cluster_total:.1}"
    );
    for (resource, per_run) in &cluster_writes {
        println!("  {resource:<28} {per_run:>6.2}");
    }
    results.insert(
        "cluster_writes_per_run".into(),
        json!({"total": cluster_total, "by_resource": cluster_writes.iter().map(|(r, n)| (r.clone(), json!(n))).collect::<serde_json::Map<_, _>>()}),
    );
    results.insert(
        "status_lag_stored_ms".into(),
        json!({"p50": ms(&stored_lag, 0.5), "p99": ms(&stored_lag, 0.99), "max": ms(&stored_lag, 1.0), "samples": stored_lag.len()}),
    );
    results.insert(
        "status_lag_visible_ms".into(),
        json!({"p50": ms(&lag, 0.5), "p99": ms(&lag, 0.99), "max": ms(&lag, 1.0), "samples": lag.len()}),
    );
    results.insert("server_submit_mean_ms".into(), json!(server_submit_mean_ms));
    results.insert(
        "server_status_lag_mean_ms".into(),
        json!(server_lag_mean_ms),
    );
    results.insert("runs".into(), json!(args.runs));
    results.insert("virtual_clusters".into(), json!(vcs.len()));
    results.insert("terminal_runs".into(), json!(terminal));
    results.insert("all_terminal_s".into(), json!(all_terminal.as_secs_f64()));
    results.insert(
        "kube_writes_per_run".into(),
        json!(writes / args.runs as f64),
    );
    results.insert("server_cpu_s".into(), json!(cpu));
    results.insert("server_peak_rss_mb".into(), json!(rss));
    if let (Some((objects, concurrency)), Some(bns)) = (&plain_setup, &baseline_ns)
        && args.ratio_rounds > 0
    {
        let rounds = ratio_rounds(
            &kube,
            &bns.name,
            objects,
            *concurrency,
            &RoundSetup {
                client: &client,
                vcs: &vcs,
                overrides: &overrides,
                board: &board,
                first_phase: rates.len(),
                first_pair: args.baseline_concurrency.len() * args.baseline_pairs,
                pairs: args.baseline_pairs,
            },
            args.ratio_rounds,
        )
        .await;
        results.insert("ratio_rounds".into(), rounds);
    }
    drop(server);
    for ns in namespaces {
        ns.delete().await.ok();
    }
    if let Some(bns) = baseline_ns {
        bns.delete().await.ok();
    }

    if args.raw_pods > 0 {
        let rate = raw_pod_creation(&kube, args.raw_pods).await;
        println!(
            "raw pod creation on the same API server: {rate:.1} pods/s ({} pods, 16 in flight)",
            args.raw_pods
        );
        results.insert("raw_pods_per_s".into(), json!(rate));
    }
    if args.restart_runs > 0 {
        let (serving, reconciled) = restart(&env, &kube, args.restart_runs).await;
        println!(
            "restart with {} queued runs: serving after {serving:.2} s, first reconcile pass done after {reconciled:.2} s",
            args.restart_runs
        );
        results.insert(
            "restart".into(),
            json!({"queued_runs": args.restart_runs, "serving_s": serving, "first_pass_s": reconciled}),
        );
    }
    sparkvc_bench::write_results(&args.out, &results);
}
