//! StartJobRun throughput and latency with durable writes, and read latency
//! with a large store, measured against the real `sparkvc-server` binary over
//! loopback gRPC.
//!
//! ```text
//! cargo run --release -p sparkvc-bench --bin api-bench
//! ```
//!
//! Prints a table and writes `target/bench-results/api-bench.json`.

use clap::Parser;
use serde_json::json;
use sparkvc_bench::Latencies;
use sparkvc_bench::process::{cpu_seconds, peak_rss_mb};
use sparkvc_e2e::{Client, Server, new_virtual_cluster, start_request};
use sparkvc_proto::v1 as pb;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
struct Args {
    /// StartJobRun requests per concurrency level.
    #[arg(long, default_value_t = 10_000)]
    requests: usize,
    /// Concurrency levels (clients, each with its own connection).
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    clients: Vec<usize>,
    /// Offered load for the paced measurement: StartJobRun requests per
    /// second, spread evenly over `paced_clients` clients (0 skips it).
    #[arg(long, default_value_t = 2_000)]
    paced_rate: u32,
    /// Clients for the paced measurement.
    #[arg(long, default_value_t = 64)]
    paced_clients: usize,
    /// Job runs stored before measuring describe/list latency.
    #[arg(long, default_value_t = 100_000)]
    stored: usize,
    /// Read requests measured per read benchmark.
    #[arg(long, default_value_t = 2_000)]
    reads: usize,
    /// Principals in the identity store of the authenticated measurement
    /// (0 skips it); each has a policy of `statements_per_principal`.
    #[arg(long, default_value_t = 1_000)]
    principals: usize,
    #[arg(long, default_value_t = 10)]
    statements_per_principal: usize,
    /// Clients of the authenticated measurement, each its own principal.
    #[arg(long, default_value_t = 64)]
    auth_clients: usize,
    /// Rounds of the authenticated ratio measured once more, each a fresh
    /// unauthenticated server's rate and then the authenticated server's,
    /// one right after the other, both with a virtual cluster per client;
    /// the median ratio is reported beside the single one. This VM's speed
    /// moves by a quarter from one minute to the next, so one pair of
    /// measurements taken minutes apart says little (0: skip them).
    #[arg(long, default_value_t = 3)]
    ratio_rounds: usize,
    /// Seconds of each phase of the flood measurement (0 skips it): one
    /// tenant offers 10x its rate limit while another sends at a steady
    /// rate; the other tenant's latency is compared with its latency alone.
    #[arg(long, default_value_t = 5)]
    flood_seconds: u64,
    /// The flooding tenant's rate limit (requests/s; it offers 10x this).
    #[arg(long, default_value_t = 100)]
    flood_limit: u32,
    /// The steady tenant's rate (requests/s), within its limit.
    #[arg(long, default_value_t = 50)]
    steady_rate: u32,
    /// Also measure StartJobRun over the REST protocol (AWS SDK for Rust) on
    /// the authenticated server, against its gRPC figure.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    rest: bool,
    /// Where to write the figures.
    #[arg(long, default_value = "target/bench-results/api-bench.json")]
    output: PathBuf,
}

/// Sends `total` StartJobRun requests from `clients` clients, each on its
/// own connection (see [`send`] for `rate`).
async fn start_runs(
    server: &Server,
    vc: &str,
    total: usize,
    clients: usize,
    rate: Option<u32>,
) -> (Duration, Latencies) {
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(server.client().await);
    }
    let vcs = vec![vc.to_string(); clients];
    run_clients(connections, &vcs, total, rate).await
}

/// `total` StartJobRuns over `connections` (client i into `vcs[i]`), every
/// one of which must succeed.
async fn run_clients<C>(
    connections: Vec<sparkvc_proto::EmrContainersClient<C>>,
    vcs: &[String],
    total: usize,
    rate: Option<u32>,
) -> (Duration, Latencies)
where
    C: tonic::client::GrpcService<tonic::body::Body> + Send + 'static,
    C::Future: Send,
    C::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    C::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <C::ResponseBody as tonic::codegen::Body>::Error:
        Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let sent = send(connections, vcs, total, rate).await;
    assert_eq!(
        (sent.throttled, sent.failed),
        (0, 0),
        "StartJobRun calls were refused"
    );
    (sent.elapsed, sent.ok)
}

/// What a sender saw.
struct Sent {
    ok: Latencies,
    throttled: usize,
    failed: usize,
    elapsed: Duration,
}

/// Sends `total` StartJobRun requests over `connections` (client i into
/// `vcs[i]`). With no `rate`, a closed loop: each client sends its next
/// request when the last is answered. With a `rate` (requests/s), an open
/// loop: request n is due n/rate seconds in, and its latency counts from
/// then, not from when it was actually sent, so a server that falls behind
/// cannot hide its queueing by delaying the next request (no coordinated
/// omission). Throttled and failed calls are counted, not timed.
async fn send<C>(
    connections: Vec<sparkvc_proto::EmrContainersClient<C>>,
    vcs: &[String],
    total: usize,
    rate: Option<u32>,
) -> Sent
where
    C: tonic::client::GrpcService<tonic::body::Body> + Send + 'static,
    C::Future: Send,
    C::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    C::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <C::ResponseBody as tonic::codegen::Body>::Error:
        Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let clients = connections.len();
    let interval = rate.map(|r| Duration::from_secs_f64(1.0 / f64::from(r)));
    let began = tokio::time::Instant::now();
    let tasks: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| {
            let vc = vcs[i].clone();
            tokio::spawn(async move {
                let (mut ok, mut throttled, mut failed) = (Latencies::new(), 0, 0);
                for n in (i..total).step_by(clients) {
                    let start = match interval {
                        Some(every) => {
                            let due = began + every * n as u32;
                            tokio::time::sleep_until(due).await;
                            due
                        }
                        None => tokio::time::Instant::now(),
                    };
                    match client.start_job_run(start_request(&vc)).await {
                        Ok(_) => ok.record(start.elapsed()),
                        Err(s) if s.code() == tonic::Code::ResourceExhausted => throttled += 1,
                        Err(s) => {
                            eprintln!("StartJobRun failed: {s}");
                            failed += 1;
                        }
                    }
                }
                (ok, throttled, failed)
            })
        })
        .collect();
    let mut out = Sent {
        ok: Latencies::new(),
        throttled: 0,
        failed: 0,
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        let (ok, throttled, failed) = t.await.expect("client task");
        out.ok.0.add(ok.0).expect("same histogram bounds");
        out.throttled += throttled;
        out.failed += failed;
    }
    out.elapsed = began.elapsed();
    out
}

async fn measure<F, Fut>(n: usize, mut call: F) -> Latencies
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut lat = Latencies::new();
    for i in 0..n {
        let t = Instant::now();
        call(i).await;
        lat.record(t.elapsed());
    }
    lat
}

fn per_request_us(before: Option<f64>, after: Option<f64>, requests: usize) -> Option<f64> {
    Some((after? - before?) * 1e6 / requests as f64)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path());
    let mut client = server.client().await;
    let mut results = serde_json::Map::new();
    results.insert(
        "machine".into(),
        json!({"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)}),
    );

    println!(
        "StartJobRun, durable (acknowledged only after fsync), {} requests per level",
        args.requests
    );
    println!(
        "{:>8} {:>12} {:>10} {:>10} {:>10} {:>12}",
        "clients", "runs/s", "p50 ms", "p99 ms", "max ms", "server µs/op"
    );
    let mut start_results = Vec::new();
    for &clients in &args.clients {
        let vc = new_virtual_cluster(&mut client).await;
        let cpu_before = cpu_seconds(server.pid());
        let (elapsed, lat) = start_runs(&server, &vc, args.requests, clients, None).await;
        let cpu = per_request_us(cpu_before, cpu_seconds(server.pid()), args.requests);
        let rate = args.requests as f64 / elapsed.as_secs_f64();
        println!(
            "{clients:>8} {rate:>12.0} {:>10.2} {:>10.2} {:>10.2} {:>12}",
            lat.ms(0.5),
            lat.ms(0.99),
            lat.0.max() as f64 / 1000.0,
            cpu.map_or("-".into(), |us| format!("{us:.0}"))
        );
        let mut entry = lat.summary();
        entry["clients"] = json!(clients);
        entry["runs_per_second"] = json!(rate);
        entry["server_cpu_us_per_request"] = json!(cpu);
        start_results.push(entry);
    }
    results.insert("start_job_run".into(), json!(start_results));

    if args.paced_rate > 0 {
        let vc = new_virtual_cluster(&mut client).await;
        let (elapsed, lat) = start_runs(
            &server,
            &vc,
            args.requests,
            args.paced_clients,
            Some(args.paced_rate),
        )
        .await;
        let rate = args.requests as f64 / elapsed.as_secs_f64();
        println!(
            "\nStartJobRun, durable, offered {}/s from {} clients (open loop; latency from each request's scheduled send time)",
            args.paced_rate, args.paced_clients
        );
        println!(
            "{:>8} {:>12} {:>10} {:>10} {:>10}",
            "clients", "runs/s", "p50 ms", "p99 ms", "max ms"
        );
        println!(
            "{:>8} {rate:>12.0} {:>10.2} {:>10.2} {:>10.2}",
            args.paced_clients,
            lat.ms(0.5),
            lat.ms(0.99),
            lat.0.max() as f64 / 1000.0
        );
        let mut entry = lat.summary();
        entry["clients"] = json!(args.paced_clients);
        entry["offered_per_second"] = json!(args.paced_rate);
        entry["runs_per_second"] = json!(rate);
        results.insert("start_job_run_paced".into(), entry);
    }

    if args.principals > 0 {
        let unauthenticated = start_results
            .iter()
            .find(|r| r["clients"] == json!(args.auth_clients))
            .and_then(|r| r["runs_per_second"].as_f64());
        let entry = authenticated_start(&args, unauthenticated).await;
        results.insert("start_job_run_authenticated".into(), entry);
    }

    if args.flood_seconds > 0 {
        results.insert("flood".into(), flood(&args).await);
    }

    // A large store: one virtual cluster with `stored` runs.
    let vc = new_virtual_cluster(&mut client).await;
    let t = Instant::now();
    start_runs(&server, &vc, args.stored, 64, None).await;
    println!(
        "\nstored {} job runs in {:.1} s",
        args.stored,
        t.elapsed().as_secs_f64()
    );
    let ids: Vec<String> = {
        let mut ids = Vec::new();
        let mut token = String::new();
        while ids.len() < args.stored {
            let page = client
                .list_job_runs(pb::ListJobRunsRequest {
                    virtual_cluster_id: vc.clone(),
                    max_results: Some(1000),
                    next_token: token,
                    ..Default::default()
                })
                .await
                .expect("list")
                .into_inner();
            ids.extend(page.job_runs.into_iter().map(|r| r.id));
            if page.next_token.is_empty() {
                break;
            }
            token = page.next_token;
        }
        ids
    };
    assert_eq!(ids.len(), args.stored, "every stored run is listed");

    let describe = measure(args.reads, |i| {
        let mut c: Client = client.clone();
        let req = pb::DescribeJobRunRequest {
            id: ids[(i * 7919) % ids.len()].clone(),
            virtual_cluster_id: vc.clone(),
        };
        async move {
            c.describe_job_run(req).await.expect("describe");
        }
    })
    .await;
    let first_page = measure(args.reads, |_| {
        let mut c: Client = client.clone();
        let req = pb::ListJobRunsRequest {
            virtual_cluster_id: vc.clone(),
            max_results: Some(50),
            ..Default::default()
        };
        async move {
            assert_eq!(
                c.list_job_runs(req)
                    .await
                    .expect("list")
                    .into_inner()
                    .job_runs
                    .len(),
                50
            );
        }
    })
    .await;
    // A page from the middle of the listing, reached with a nextToken.
    let middle_token = client
        .list_job_runs(pb::ListJobRunsRequest {
            virtual_cluster_id: vc.clone(),
            max_results: Some(1000),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .next_token;
    let deep_page = measure(args.reads, |_| {
        let mut c: Client = client.clone();
        let req = pb::ListJobRunsRequest {
            virtual_cluster_id: vc.clone(),
            max_results: Some(50),
            next_token: middle_token.clone(),
            ..Default::default()
        };
        async move {
            assert_eq!(
                c.list_job_runs(req)
                    .await
                    .expect("list")
                    .into_inner()
                    .job_runs
                    .len(),
                50
            );
        }
    })
    .await;
    // Worst case: a state filter that matches nothing walks the whole cluster.
    let unmatched = measure(5, |_| {
        let mut c: Client = client.clone();
        let req = pb::ListJobRunsRequest {
            virtual_cluster_id: vc.clone(),
            states: vec!["COMPLETED".into()],
            ..Default::default()
        };
        async move {
            c.list_job_runs(req).await.expect("list");
        }
    })
    .await;

    println!("\nreads with {} stored job runs (one client)", args.stored);
    println!("{:>36} {:>10} {:>10}", "", "p50 ms", "p99 ms");
    for (name, lat) in [
        ("DescribeJobRun", &describe),
        ("ListJobRuns, first page of 50", &first_page),
        ("ListJobRuns, page 21 of 50 by token", &deep_page),
        ("ListJobRuns, filter matching none", &unmatched),
    ] {
        println!("{name:>36} {:>10.2} {:>10.2}", lat.ms(0.5), lat.ms(0.99));
    }
    results.insert(
        "reads".into(),
        json!({
            "stored_job_runs": args.stored,
            "describe_job_run": describe.summary(),
            "list_job_runs_first_page_50": first_page.summary(),
            "list_job_runs_deep_page_50": deep_page.summary(),
            "list_job_runs_filter_matching_none": unmatched.summary(),
        }),
    );
    let rss = peak_rss_mb(server.pid());
    if let Some(mb) = rss {
        println!("\nserver peak RSS: {mb:.0} MB");
    }
    results.insert("server_peak_rss_mb".into(), json!(rss));
    results.insert(
        "store_bytes".into(),
        json!(sparkvc_bench::dir_size(&dir.path().join("store"))),
    );

    sparkvc_bench::write_results(&args.output, &results);
}

/// StartJobRun at `auth_clients` clients on a second server that verifies
/// every call's SigV4 signature and evaluates its policies: `principals`
/// principals, each with `statements_per_principal` statements, each client
/// signing as a principal of its own.
async fn authenticated_start(args: &Args, unauthenticated: Option<f64>) -> serde_json::Value {
    use aws_credential_types::Credentials;
    use sparkvc_cli::client::{SignedChannel, Signer};
    use std::fmt::Write;

    let dir = tempfile::tempdir().expect("temp dir");
    let mut file = String::new();
    for i in 0..args.principals {
        let mut statements = vec![
            r#"{"Effect":"Allow","Action":["emr-containers:CreateVirtualCluster","emr-containers:StartJobRun"],"Resource":"*","Condition":{"ArnLikeIfExists":{"emr-containers:ExecutionRoleArn":"arn:aws:iam::*:role/*"}}}"#.to_string(),
            r#"{"Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::*:role/*"}"#.to_string(),
        ];
        // The rest: statements that do not match, as a real policy has.
        for k in statements.len()..args.statements_per_principal {
            statements.push(format!(
                r#"{{"Effect":"Allow","Action":"emr-containers:DescribeJobTemplate","Resource":"arn:aws:emr-containers:*:*:/jobtemplates/p{i}-{k}","Condition":{{"StringEquals":{{"aws:ResourceTag/team":"${{aws:PrincipalTag/team}}"}}}}}}"#
            ));
        }
        let _ = write!(
            file,
            "[[policy]]\nname = \"p{i}\"\ndocument = '{{\"Version\":\"2012-10-17\",\"Statement\":[{}]}}'\n\n[[principal]]\narn = \"arn:aws:iam::123456789012:user/u{i}\"\npolicies = [\"p{i}\"]\ntags = {{ team = \"t{i}\" }}\n[[principal.access_key]]\nid = \"AKIABENCH{i:011}\"\nsecret = \"secret-{i}\"\n\n",
            statements.join(",")
        );
    }
    let path = dir.path().join("identities.toml");
    std::fs::write(&path, file).expect("identity file");
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--identities", path.to_str().expect("utf-8 path")],
    );
    let mut connections = Vec::new();
    let mut vcs = Vec::new();
    for i in 0..args.auth_clients.min(args.principals) {
        let signer = Signer::new(
            Credentials::new(
                format!("AKIABENCH{i:011}"),
                format!("secret-{i}"),
                None,
                None,
                "bench",
            ),
            "us-west-2",
        );
        let channel = SignedChannel::connect(&server.endpoint(), Some(signer))
            .await
            .expect("connect");
        let mut client = sparkvc_proto::EmrContainersClient::new(channel);
        let vc = client
            .create_virtual_cluster(sparkvc_e2e::create_vc_request(&sparkvc_e2e::unique("ns")))
            .await
            .expect("CreateVirtualCluster as a bench principal")
            .into_inner()
            .id;
        connections.push(client);
        vcs.push(vc);
    }
    let clients = connections.len();
    let cpu_before = cpu_seconds(server.pid());
    let (elapsed, lat) = run_clients(connections.clone(), &vcs, args.requests, None).await;
    let cpu = per_request_us(cpu_before, cpu_seconds(server.pid()), args.requests);
    let rate = args.requests as f64 / elapsed.as_secs_f64();
    let ratio = unauthenticated.map(|u| rate / u);
    println!(
        "\nStartJobRun, SigV4 + policies ({} principals x {} statements), {clients} clients",
        args.principals, args.statements_per_principal
    );
    println!(
        "{:>8} {:>12} {:>10} {:>10} {:>10} {:>12} {:>22}",
        "clients", "runs/s", "p50 ms", "p99 ms", "max ms", "server µs/op", "of unauthenticated"
    );
    println!(
        "{clients:>8} {rate:>12.0} {:>10.2} {:>10.2} {:>10.2} {:>12} {:>22}",
        lat.ms(0.5),
        lat.ms(0.99),
        lat.0.max() as f64 / 1000.0,
        cpu.map_or("-".into(), |us| format!("{us:.0}")),
        ratio.map_or("-".to_string(), |r| format!("{:.0}%", r * 100.0))
    );
    let mut entry = lat.summary();
    entry["clients"] = json!(clients);
    entry["principals"] = json!(args.principals);
    entry["statements"] = json!(args.principals * args.statements_per_principal);
    entry["runs_per_second"] = json!(rate);
    entry["fraction_of_unauthenticated"] = json!(ratio);
    entry["server_cpu_us_per_request"] = json!(cpu);
    if args.ratio_rounds > 0 {
        entry["ratio_rounds"] = ratio_rounds(args, &connections, &vcs).await;
    }
    if args.rest {
        entry["rest"] = rest_start(&server, &vcs, args.requests, rate).await;
    }
    entry
}

/// The authenticated ratio measured `args.ratio_rounds` more times: in each
/// round a plain server's StartJobRun rate at as many clients as `signed`,
/// a virtual cluster per client as there, and right after it the signed
/// clients' rate. The plain server is new, so its store starts smaller than
/// the authenticated server's (10,000 runs more), which favours it a little.
async fn ratio_rounds<C>(
    args: &Args,
    signed: &[sparkvc_proto::EmrContainersClient<C>],
    signed_vcs: &[String],
) -> serde_json::Value
where
    C: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + 'static,
    C::Future: Send,
    C::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    C::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <C::ResponseBody as tonic::codegen::Body>::Error:
        Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let plain = Server::start(dir.path());
    let (mut connections, mut vcs) = (vec![], vec![]);
    for _ in signed {
        let mut client = plain.client().await;
        vcs.push(new_virtual_cluster(&mut client).await);
        connections.push(client);
    }
    println!(
        "
ratio rounds: unauthenticated, then SigV4 + policies, {} clients each, {} times",
        signed.len(),
        args.ratio_rounds
    );
    let (mut ratios, mut rounds) = (vec![], vec![]);
    for round in 0..args.ratio_rounds {
        let (elapsed, plain_lat) =
            run_clients(connections.clone(), &vcs, args.requests, None).await;
        let plain_rate = args.requests as f64 / elapsed.as_secs_f64();
        let (elapsed, lat) = run_clients(signed.to_vec(), signed_vcs, args.requests, None).await;
        let rate = args.requests as f64 / elapsed.as_secs_f64();
        let ratio = rate / plain_rate;
        println!(
            "  round {}: unauthenticated {plain_rate:.0}/s (p99 {:.2} ms), authenticated {rate:.0}/s (p99 {:.2} ms): {:.0}%",
            round + 1,
            plain_lat.ms(0.99),
            lat.ms(0.99),
            ratio * 100.0
        );
        ratios.push(ratio);
        rounds.push(json!({
            "unauthenticated_per_second": plain_rate, "unauthenticated_p99_ms": plain_lat.ms(0.99),
            "authenticated_per_second": rate, "authenticated_p99_ms": lat.ms(0.99), "fraction": ratio,
        }));
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!(
        "  median over {} rounds: {:.0}% (goal ≥ 80%)",
        ratios.len(),
        median * 100.0
    );
    json!({"rounds": rounds, "median_fraction": median})
}

/// The same StartJobRuns over AWS's REST protocol, on the same server, as
/// the same principals, each client the AWS SDK for Rust signing with
/// SigV4 (what a service using the SDK sends), compared with the gRPC
/// figure just measured.
async fn rest_start(
    server: &Server,
    vcs: &[String],
    total: usize,
    grpc_rate: f64,
) -> serde_json::Value {
    use aws_sdk_emrcontainers as emr;
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let clients: Vec<emr::Client> = (0..vcs.len())
        .map(|i| {
            emr::Client::from_conf(
                emr::Config::builder()
                    .behavior_version(emr::config::BehaviorVersion::latest())
                    .endpoint_url(server.endpoint())
                    .region(emr::config::Region::new("us-west-2"))
                    .credentials_provider(emr::config::Credentials::new(
                        format!("AKIABENCH{i:011}"),
                        format!("secret-{i}"),
                        None,
                        None,
                        "bench",
                    ))
                    // Each client its own connection pool, as separate services have.
                    .http_client(http.clone())
                    .retry_config(emr::config::retry::RetryConfig::disabled())
                    .build(),
            )
        })
        .collect();
    let n = clients.len();
    let cpu_before = cpu_seconds(server.pid());
    let began = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, client)| {
            let vc = vcs[i].clone();
            tokio::spawn(async move {
                let mut lat = Latencies::new();
                for k in (i..total).step_by(n) {
                    let start = Instant::now();
                    client
                        .start_job_run()
                        .virtual_cluster_id(&vc)
                        .name("pi")
                        .client_token(format!("rest-{k}"))
                        .execution_role_arn("arn:aws:iam::123456789012:role/spark")
                        .release_label(sparkvc_e2e::RELEASE)
                        .job_driver(
                            emr::types::JobDriver::builder()
                                .spark_submit_job_driver(
                                    emr::types::SparkSubmitJobDriver::builder()
                                        .entry_point(
                                            "local:///opt/spark/examples/src/main/python/pi.py",
                                        )
                                        .build()
                                        .expect("entry point set"),
                                )
                                .build(),
                        )
                        .send()
                        .await
                        .expect("REST StartJobRun");
                    lat.record(start.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut lat = Latencies::new();
    for t in tasks {
        lat.0
            .add(t.await.expect("client task").0)
            .expect("same histogram bounds");
    }
    let elapsed = began.elapsed();
    let cpu = per_request_us(cpu_before, cpu_seconds(server.pid()), total);
    let rate = total as f64 / elapsed.as_secs_f64();
    let ratio = rate / grpc_rate;
    println!("\nStartJobRun over REST (AWS SDK for Rust, SigV4 + the same policies), {n} clients");
    println!(
        "{:>8} {:>12} {:>10} {:>10} {:>10} {:>12} {:>22}",
        "clients", "runs/s", "p50 ms", "p99 ms", "max ms", "server µs/op", "of gRPC (same server)"
    );
    println!(
        "{n:>8} {rate:>12.0} {:>10.2} {:>10.2} {:>10.2} {:>12} {:>22}",
        lat.ms(0.5),
        lat.ms(0.99),
        lat.0.max() as f64 / 1000.0,
        cpu.map_or("-".into(), |us| format!("{us:.0}")),
        format!("{:.0}%", ratio * 100.0)
    );
    let mut entry = lat.summary();
    entry["clients"] = json!(n);
    entry["runs_per_second"] = json!(rate);
    entry["fraction_of_grpc"] = json!(ratio);
    entry["server_cpu_us_per_request"] = json!(cpu);
    entry
}

/// Fair share under a flood: tenant `steady` sends `steady_rate`/s alone,
/// then again while tenant `flood` offers ten times its rate limit. Both
/// sign (SigV4) and are held to policies, as on a shared server.
async fn flood(args: &Args) -> serde_json::Value {
    use aws_credential_types::Credentials;
    use sparkvc_cli::client::{SignedChannel, Signer};

    let dir = tempfile::tempdir().expect("temp dir");
    let limit = args.flood_limit;
    let file = format!(
        r#"
[[policy]]
name = "runs"
document = '{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["emr-containers:CreateVirtualCluster","emr-containers:StartJobRun","iam:PassRole"],"Resource":"*"}}]}}'

[[principal]]
arn = "arn:aws:iam::123456789012:user/flood"
policies = ["runs"]
rate_limit = {{ requests_per_second = {limit}, burst = {limit} }}
[[principal.access_key]]
id = "AKIAFLOODEXAMPLE0001"
secret = "flood-secret"

[[principal]]
arn = "arn:aws:iam::123456789012:user/steady"
policies = ["runs"]
[[principal.access_key]]
id = "AKIASTEADYEXAMPLE001"
secret = "steady-secret"
"#
    );
    let path = dir.path().join("identities.toml");
    std::fs::write(&path, file).expect("identity file");
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--identities", path.to_str().expect("utf-8 path")],
    );
    let connect = |key: &'static str, secret: &'static str, n: usize| {
        let endpoint = server.endpoint();
        async move {
            let mut clients = Vec::new();
            for _ in 0..n {
                let signer = Signer::new(
                    Credentials::new(key, secret, None, None, "bench"),
                    "us-west-2",
                );
                let channel = SignedChannel::connect(&endpoint, Some(signer))
                    .await
                    .expect("connect");
                clients.push(sparkvc_proto::EmrContainersClient::new(channel));
            }
            clients
        }
    };
    let mut steady = connect("AKIASTEADYEXAMPLE001", "steady-secret", 4).await;
    let mut flooder = connect("AKIAFLOODEXAMPLE0001", "flood-secret", 32).await;
    let steady_vc = steady[0]
        .create_virtual_cluster(sparkvc_e2e::create_vc_request("steady"))
        .await
        .expect("CreateVirtualCluster")
        .into_inner()
        .id;
    let flood_vc = flooder[0]
        .create_virtual_cluster(sparkvc_e2e::create_vc_request("flood"))
        .await
        .expect("CreateVirtualCluster")
        .into_inner()
        .id;
    // Let the flooder's bucket refill after the create.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let seconds = args.flood_seconds as usize;
    let steady_vcs = vec![steady_vc; steady.len()];
    let flood_vcs = vec![flood_vc; flooder.len()];
    let steady_total = args.steady_rate as usize * seconds;
    let alone = send(
        steady.clone(),
        &steady_vcs,
        steady_total,
        Some(args.steady_rate),
    )
    .await;
    let offered = limit * 10;
    let (during, flooded) = tokio::join!(
        send(steady, &steady_vcs, steady_total, Some(args.steady_rate)),
        send(
            flooder,
            &flood_vcs,
            offered as usize * seconds,
            Some(offered)
        ),
    );
    let flood_accepted = flooded.ok.0.len() as f64 / flooded.elapsed.as_secs_f64();
    println!(
        "\nflood: tenant A offers {offered}/s against its limit of {limit}/s; tenant B sends {}/s ({} s each)",
        args.steady_rate, args.flood_seconds
    );
    println!(
        "{:>28} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "", "p50 ms", "p99 ms", "max ms", "throttled", "failed"
    );
    for (name, r) in [
        ("tenant B alone", &alone),
        ("tenant B during the flood", &during),
    ] {
        println!(
            "{name:>28} {:>10.2} {:>10.2} {:>10.2} {:>10} {:>10}",
            r.ok.ms(0.5),
            r.ok.ms(0.99),
            r.ok.0.max() as f64 / 1000.0,
            r.throttled,
            r.failed
        );
    }
    println!(
        "{:>28} {flood_accepted:>10.0}/s accepted, {} throttled, {} failed",
        "tenant A", flooded.throttled, flooded.failed
    );
    json!({
        "offered_per_second": offered,
        "limit_per_second": limit,
        "steady_rate": args.steady_rate,
        "seconds": args.flood_seconds,
        "steady_alone": alone.ok.summary(),
        "steady_alone_throttled": alone.throttled,
        "steady_during": during.ok.summary(),
        "steady_during_throttled": during.throttled,
        "steady_during_failed": during.failed,
        "flood_accepted_per_second": flood_accepted,
        "flood_throttled": flooded.throttled,
        "flood_failed": flooded.failed,
    })
}
