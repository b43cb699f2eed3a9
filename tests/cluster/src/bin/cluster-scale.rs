//! Scale check of the local cluster (not a timed test): creates N pods (default
//! 1,000) in a fresh namespace through the real API server, and reports
//!
//! - the raw pod-creation throughput (pods/s accepted by kube-apiserver, with
//!   C creates in flight), with create-latency percentiles;
//! - the time from the first create until every pod is Running (scheduler
//!   binding + kwok status updates, observed through a watch);
//! - the time to delete them all again (namespace deletion).
//!
//! Figures are printed and written to `target/bench-results/cluster-scale.json`
//! (or `--out PATH`). Later sparkvc benchmarks are compared against them.
//!
//! usage: cluster-scale [--pods N] [--concurrency C] [--timeout-secs S] [--out PATH] [--keep]
//!
//! The cluster needs room for N pods: 4 nodes x 110 pods is not enough for
//! 1,000, so start it with e.g. `SPARKVC_NODES=10 deploy/local/up`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use sparkvc_cluster_tests::{LocalEnv, TestNamespace, repo_root};
use tokio::sync::Mutex;

#[derive(Debug)]
struct Args {
    pods: usize,
    concurrency: usize,
    timeout: Duration,
    out: PathBuf,
    keep: bool,
}

fn parse_args() -> Result<Args> {
    let root = repo_root().canonicalize().unwrap_or_else(|_| repo_root());
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let mut a = Args {
        pods: 1000,
        concurrency: 32,
        timeout: Duration::from_secs(900),
        out: target.join("bench-results/cluster-scale.json"),
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--pods" => a.pods = val()?.parse()?,
            "--concurrency" => a.concurrency = val()?.parse()?,
            "--timeout-secs" => a.timeout = Duration::from_secs(val()?.parse()?),
            "--out" => a.out = PathBuf::from(val()?),
            "--keep" => a.keep = true,
            "-h" | "--help" => {
                println!(
                    "usage: cluster-scale [--pods N] [--concurrency C] [--timeout-secs S] [--out PATH] [--keep]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn pod(i: usize) -> Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": format!("scale-{i:05}"), "labels": { "app": "cluster-scale" } },
        "spec": {
            "containers": [{
                "name": "main", "image": "busybox",
                "resources": { "requests": { "cpu": "10m", "memory": "16Mi" } }
            }]
        }
    }))?)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let env = LocalEnv::load()?;
    let client = env.kube_client().await?;
    let server_version = client.apiserver_version().await?.git_version;

    // Capacity check: Ready nodes' allocatable pods.
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    let mut slots = 0i64;
    let mut ready_nodes = 0;
    for n in &nodes.items {
        let st = n.status.as_ref();
        let ready = st
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if ready {
            ready_nodes += 1;
            let pods = st
                .and_then(|s| s.allocatable.as_ref())
                .and_then(|a| a.get("pods"));
            slots += pods.and_then(|q| q.0.parse::<i64>().ok()).unwrap_or(0);
        }
    }
    let busy = Api::<Pod>::all(client.clone())
        .list_metadata(&ListParams::default())
        .await?
        .items
        .len() as i64;
    if slots - busy < args.pods as i64 {
        bail!(
            "the cluster has {slots} pod slots on {ready_nodes} Ready nodes ({busy} in use), fewer than the {} pods \
             to create: start it with more nodes, e.g. `SPARKVC_NODES={} deploy/local/up`",
            args.pods,
            (args.pods as i64 + busy) / 110 + 1
        );
    }

    let ns = TestNamespace::create(&client, "scale").await?;
    let pods: Api<Pod> = ns.api();
    println!(
        "cluster-scale: {} pods in namespace {} ({ready_nodes} kwok nodes, {slots} pod slots), {} creates in flight",
        args.pods, ns.name, args.concurrency
    );

    // Watch the namespace and note when each pod is first seen Running.
    let running_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let (done_tx, mut done_rx) = tokio::sync::watch::channel(0usize);
    let watch_task = {
        let running_at = running_at.clone();
        let pods = pods.clone();
        let want = args.pods;
        tokio::spawn(async move {
            let stream = watcher(pods, watcher::Config::default()).applied_objects();
            futures::pin_mut!(stream);
            while let Some(p) = stream.try_next().await? {
                if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
                    let mut m = running_at.lock().await;
                    m.entry(p.name_any()).or_insert_with(Instant::now);
                    let n = m.len();
                    let _ = done_tx.send(n);
                    if n >= want {
                        break;
                    }
                }
            }
            anyhow::Ok(())
        })
    };
    // Let the watch establish before the clock starts.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let t0 = Instant::now();
    let latencies: Vec<Duration> = futures::stream::iter(0..args.pods)
        .map(|i| {
            let pods = pods.clone();
            async move {
                let p = pod(i)?;
                let start = Instant::now();
                pods.create(&PostParams::default(), &p)
                    .await
                    .with_context(|| format!("creating pod {i}"))?;
                anyhow::Ok(start.elapsed())
            }
        })
        .buffer_unordered(args.concurrency)
        .try_collect()
        .await?;
    let create_wall = t0.elapsed();

    let deadline = tokio::time::Instant::now() + args.timeout;
    loop {
        if *done_rx.borrow() >= args.pods {
            break;
        }
        if tokio::time::timeout_at(deadline, done_rx.changed())
            .await
            .is_err()
        {
            bail!(
                "only {} of {} pods Running after {:?}",
                *done_rx.borrow(),
                args.pods,
                args.timeout
            );
        }
    }
    let running = running_at.lock().await;
    let last_running = running.values().max().copied().context("no pod Running")?;
    let first_running = running.values().min().copied().context("no pod Running")?;
    let all_running = last_running.duration_since(t0);
    drop(running);
    watch_task.abort();

    let mut sorted = latencies;
    sorted.sort();
    let throughput = args.pods as f64 / create_wall.as_secs_f64();
    println!(
        "  created {} pods in {:.2}s: {:.1} pods/s",
        args.pods,
        create_wall.as_secs_f64(),
        throughput
    );
    println!(
        "  create latency ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        pct(&sorted, 0.5),
        pct(&sorted, 0.9),
        pct(&sorted, 0.99),
        pct(&sorted, 1.0)
    );
    println!(
        "  all {} pods Running {:.2}s after the first create (first Running after {:.2}s; {:.1} pods/s end to end)",
        args.pods,
        all_running.as_secs_f64(),
        first_running.duration_since(t0).as_secs_f64(),
        args.pods as f64 / all_running.as_secs_f64()
    );

    let mut delete_secs = None;
    if !args.keep {
        let name = ns.name.clone();
        let t1 = Instant::now();
        ns.delete().await?;
        let nss: Api<Namespace> = Api::all(client.clone());
        let gone = tokio::time::timeout(args.timeout, async {
            while nss.get_opt(&name).await?.is_some() {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            anyhow::Ok(())
        })
        .await;
        if let Ok(r) = gone {
            r?;
            let d = t1.elapsed();
            println!(
                "  namespace with {} pods deleted in {:.2}s",
                args.pods,
                d.as_secs_f64()
            );
            delete_secs = Some(d.as_secs_f64());
        } else {
            println!(
                "  namespace {name} still terminating after {:?}",
                args.timeout
            );
        }
    } else {
        println!("  kept namespace {}", ns.name);
    }

    let result = serde_json::json!({
        "benchmark": "cluster-scale",
        "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs(),
        "pods": args.pods,
        "concurrency": args.concurrency,
        "kwok_nodes": ready_nodes,
        "apiserver_version": server_version,
        "machine_cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "create_wall_secs": create_wall.as_secs_f64(),
        "create_throughput_pods_per_sec": throughput,
        "create_latency_ms": {
            "p50": pct(&sorted, 0.5), "p90": pct(&sorted, 0.9), "p99": pct(&sorted, 0.99), "max": pct(&sorted, 1.0)
        },
        "first_running_secs": first_running.duration_since(t0).as_secs_f64(),
        "all_running_secs": all_running.as_secs_f64(),
        "namespace_delete_secs": delete_secs,
    });
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&result)? + "\n")?;
    println!("  results written to {}", args.out.display());
    Ok(())
}
