//! ListJobRuns with a `states` filter over a long history (not a timed
//! test): fills a store, in-process, with `--runs` job runs in one virtual
//! cluster (all COMPLETED but a few hundred RUNNING, PENDING and FAILED,
//! spread at random over the history), then measures
//!
//! - the fill: written through the store's own write path (one journaled,
//!   fsynced write per `--batch` runs, each run through `put_job_run` as the
//!   server stores them), its time and the store's size on disk after;
//! - ListJobRuns with states, through the control plane (as the API serves
//!   it, from the state index): p50/p99 over `--calls` calls, first pages
//!   and pages reached with the nextToken (after 10 unmeasured calls);
//! - the same queries through the walk of every run that served them before
//!   the index (`Store::list_job_runs` with the same filter), over fewer
//!   calls (`--scan-calls`): the baseline;
//! - the time to open the filled store again.
//!
//! ```text
//! nice -n 19 cargo run --release -p sparkvc-bench --bin list-bench
//! ```
//!
//! Prints a table and writes `target/bench-results/list-bench.json`.

use clap::Parser;
use futures::future::BoxFuture;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sparkvc_bench::Latencies;
use sparkvc_proto::v1 as pb;
use sparkvc_server::control::{
    ClusterAccess, ControlPlane, ControlPlaneParts, Identity, NamespaceRefusal,
    timestamp_from_micros,
};
use sparkvc_server::ids::{self, ArnBuilder};
use sparkvc_server::release::Catalogue;
use sparkvc_server::state::{self, JobRunState, Outcome};
use sparkvc_server::store::{Store, Window};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Parser)]
struct Args {
    /// Job runs stored in the one virtual cluster.
    #[arg(long, default_value_t = 1_000_000)]
    runs: usize,
    /// Runs per store write while filling.
    #[arg(long, default_value_t = 2_000)]
    batch: usize,
    /// How many runs are RUNNING, PENDING and FAILED (each); the rest are
    /// COMPLETED.
    #[arg(long, default_value_t = 300)]
    unfinished: usize,
    /// Calls measured per query through the index.
    #[arg(long, default_value_t = 2_000)]
    calls: usize,
    /// Calls measured per query through the walk (each may take seconds).
    #[arg(long, default_value_t = 10)]
    scan_calls: usize,
    /// Where the store goes (a temporary directory if not given).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long, default_value = "target/bench-results/list-bench.json")]
    out: PathBuf,
}

/// No Kubernetes cluster: the control plane here only lists.
#[derive(Debug)]
struct NoClusters;

impl ClusterAccess for NoClusters {
    fn cluster_ids(&self) -> Vec<String> {
        Vec::new()
    }
    fn check_namespace<'a>(
        &'a self,
        _cluster: &'a str,
        _namespace: &'a str,
    ) -> BoxFuture<'a, Result<(), NamespaceRefusal>> {
        Box::pin(async { Ok(()) })
    }
}

/// A run as StartJobRun stores it, taken to `end` as the executor would.
fn job_run(arns: &ArnBuilder, vc_id: &str, micros: u64, i: usize, end: JobRunState) -> pb::JobRun {
    let id = ids::new_id(micros, ids::JOB_RUN_ID_LEN);
    let created_at = timestamp_from_micros(micros);
    let mut run = pb::JobRun {
        arn: arns.job_run(vc_id, &id),
        id,
        name: format!("nightly-etl-{}", i % 100),
        virtual_cluster_id: vc_id.into(),
        client_token: format!("token-{i}"),
        execution_role_arn: "arn:aws:iam::123456789012:role/spark-job-execution".into(),
        release_label: "emr-7.2.0-latest".into(),
        job_driver: Some(pb::JobDriver {
            spark_submit_job_driver: Some(pb::SparkSubmitJobDriver {
                entry_point: "s3://example-bucket/jobs/etl.py".into(),
                entry_point_arguments: vec!["--date".into(), "2026-01-01".into()],
                spark_submit_parameters:
                    "--conf spark.executor.instances=2 --conf spark.executor.memory=2G".into(),
            }),
            spark_sql_job_driver: None,
        }),
        created_at: Some(created_at),
        created_by: "arn:aws:iam::123456789012:user/bench".into(),
        ..Default::default()
    };
    state::initial(&mut run, created_at);
    let path: &[JobRunState] = match end {
        JobRunState::Pending => &[],
        JobRunState::Running => &[JobRunState::Submitted, JobRunState::Running],
        JobRunState::Failed => &[
            JobRunState::Submitted,
            JobRunState::Running,
            JobRunState::Failed,
        ],
        _ => &[
            JobRunState::Submitted,
            JobRunState::Running,
            JobRunState::Completed,
        ],
    };
    for (step, next) in path.iter().enumerate() {
        let at = timestamp_from_micros(micros + (step as u64 + 1) * 5_000_000);
        state::transition(&mut run, *next, Outcome::default(), at);
    }
    run
}

/// A query measured both ways.
struct Query {
    label: &'static str,
    states: Vec<&'static str>,
    name: &'static str,
    /// Follow nextToken this many pages before measuring (0: first page).
    depth: usize,
}

fn request(vc_id: &str, q: &Query, next_token: String) -> pb::ListJobRunsRequest {
    pb::ListJobRunsRequest {
        virtual_cluster_id: vc_id.into(),
        states: q.states.iter().map(|s| s.to_string()).collect(),
        name: q.name.into(),
        next_token,
        ..Default::default()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    let tmp = tempfile::tempdir_in(".").expect("a temporary directory");
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().join("store"));
    let arns = ArnBuilder {
        partition: "aws".into(),
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
    };

    // --- fill ---------------------------------------------------------------
    let store = Store::open(&dir).expect("open the store");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_micros() as u64;
    let span = 30 * 24 * 3_600 * 1_000_000u64;
    let step = span / args.runs as u64;
    let start = now - span;
    let vc_id = ids::new_id(start - 1_000_000, ids::VIRTUAL_CLUSTER_ID_LEN);
    store
        .write(|txn| {
            txn.put_virtual_cluster(&pb::VirtualCluster {
                id: vc_id.clone(),
                arn: arns.virtual_cluster(&vc_id),
                name: "bench".into(),
                state: "RUNNING".into(),
                container_provider: Some(pb::ContainerProvider {
                    id: "bench-cluster".into(),
                    r#type: "EKS".into(),
                    info: None,
                }),
                created_at: Some(timestamp_from_micros(start - 1_000_000)),
                ..Default::default()
            })
        })
        .await
        .expect("store the virtual cluster");
    let mut rng = StdRng::seed_from_u64(18);
    let mut ends = vec![JobRunState::Completed; args.runs];
    for state in [
        JobRunState::Running,
        JobRunState::Pending,
        JobRunState::Failed,
    ] {
        let mut placed = 0;
        while placed < args.unfinished {
            let at = rng.random_range(0..args.runs);
            if ends[at] == JobRunState::Completed {
                ends[at] = state;
                placed += 1;
            }
        }
    }
    println!(
        "filling {} job runs, {} per write ...",
        args.runs, args.batch
    );
    let fill_started = Instant::now();
    let mut done = 0;
    while done < args.runs {
        let upto = (done + args.batch).min(args.runs);
        let runs: Vec<pb::JobRun> = (done..upto)
            .map(|i| job_run(&arns, &vc_id, start + i as u64 * step, i, ends[i]))
            .collect();
        store
            .write(|txn| runs.iter().try_for_each(|run| txn.put_job_run(None, run)))
            .await
            .expect("a batch of runs");
        done = upto;
        if done % 100_000 == 0 {
            println!(
                "  {done} runs, {:.1} s",
                fill_started.elapsed().as_secs_f64()
            );
        }
    }
    let fill_s = fill_started.elapsed().as_secs_f64();
    assert_eq!(store.job_run_count(), args.runs);
    store.close().expect("close the store");
    drop(store);
    let store_bytes = sparkvc_bench::dir_size(&dir);
    println!(
        "filled in {fill_s:.1} s ({:.0} runs/s); store on disk: {:.0} MB",
        args.runs as f64 / fill_s,
        store_bytes as f64 / 1e6
    );

    let open_started = Instant::now();
    let store = Store::open(&dir).expect("open the filled store");
    let open_s = open_started.elapsed().as_secs_f64();
    println!("opened again in {open_s:.2} s");

    let control = ControlPlane::new(ControlPlaneParts {
        store: store.clone(),
        catalogue: Catalogue::builtin(),
        identity: Identity { arns: arns.clone() },
        clusters: Arc::new(NoClusters),
        wake: Arc::default(),
    });

    // --- queries ------------------------------------------------------------
    let queries = [
        Query {
            label: "states=[RUNNING], first page",
            states: vec!["RUNNING"],
            name: "",
            depth: 0,
        },
        Query {
            label: "states=[RUNNING], 4th page (nextToken)",
            states: vec!["RUNNING"],
            name: "",
            depth: 3,
        },
        Query {
            label: "states=[PENDING,RUNNING,FAILED], first page",
            states: vec!["PENDING", "RUNNING", "FAILED"],
            name: "",
            depth: 0,
        },
        Query {
            label: "states=[FAILED], name matching none",
            states: vec!["FAILED"],
            name: "no-such-name",
            depth: 0,
        },
    ];
    let mut results = serde_json::Map::new();
    results.insert("runs".into(), json!(args.runs));
    results.insert("unfinished_per_state".into(), json!(args.unfinished));
    results.insert("fill_batch".into(), json!(args.batch));
    results.insert("fill_seconds".into(), json!(fill_s));
    results.insert("store_bytes".into(), json!(store_bytes));
    results.insert("reopen_seconds".into(), json!(open_s));
    let mut measured = Vec::new();
    println!(
        "\n{:<45} {:>12} {:>12} {:>14} {:>14}",
        "query (page of 50)", "index p50", "index p99", "walk p50", "walk p99"
    );
    for q in &queries {
        // The token of the page to measure, and the items it must hold.
        let mut token = String::new();
        for _ in 0..q.depth {
            token = control
                .list_job_runs(&request(&vc_id, q, token))
                .expect("list")
                .next_token;
        }
        assert!(
            q.depth == 0 || !token.is_empty(),
            "{}: the listing has fewer pages",
            q.label
        );
        let req = request(&vc_id, q, token.clone());
        let expected = control.list_job_runs(&req).expect("list");
        // A few calls first, not measured: the first reads fill sled's cache.
        for _ in 0..10 {
            control.list_job_runs(&req).expect("list");
        }

        let mut indexed = Latencies::new();
        for _ in 0..args.calls {
            let t = Instant::now();
            let page = control.list_job_runs(&req).expect("list");
            indexed.record(t.elapsed());
            assert_eq!(page.job_runs.len(), expected.job_runs.len());
        }

        // The walk, as ListJobRuns served this query before the index.
        let window = Window {
            cursor: (!token.is_empty()).then(|| {
                sparkvc_server::store::keys::Cursor::from_token(&token, &format!("jobruns/{vc_id}"))
                    .expect("a token")
            }),
            limit: 50,
            max_bytes: sparkvc_server::validate::PAGE_BYTES,
            ..Window::default()
        };
        let states: Vec<String> = q.states.iter().map(|s| s.to_string()).collect();
        let keep = |run: &pb::JobRun| {
            states.contains(&run.state) && (q.name.is_empty() || run.name == q.name)
        };
        let mut walked = Latencies::new();
        for _ in 0..args.scan_calls {
            let t = Instant::now();
            let page = store.list_job_runs(&vc_id, &window, keep).expect("walk");
            walked.record(t.elapsed());
            let ids: Vec<&str> = page.items.iter().map(|r| r.id.as_str()).collect();
            let want: Vec<&str> = expected.job_runs.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(ids, want, "{}: the walk and the index differ", q.label);
        }
        println!(
            "{:<45} {:>9.3} ms {:>9.3} ms {:>11.1} ms {:>11.1} ms",
            q.label,
            indexed.ms(0.5),
            indexed.ms(0.99),
            walked.ms(0.5),
            walked.ms(0.99)
        );
        measured.push(json!({
            "query": q.label,
            "items": expected.job_runs.len(),
            "index": indexed.summary(),
            "walk": walked.summary(),
        }));
    }
    results.insert("queries".into(), json!(measured));
    store.close().expect("close");

    sparkvc_bench::write_results(&args.out, &results);
}
