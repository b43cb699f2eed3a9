//! Authentication on the real server: started with an identity store, it
//! refuses every unsigned or badly signed call with the AWS error name and
//! stores nothing; the real `sparkvc` CLI signs with credentials from the
//! environment or from `~/.aws`-style profile files; `createdBy` is the
//! caller. Requests signed by botocore (the signer of boto3, the AWS CLI and
//! Airflow) verify, including a tag path that carries an ARN.

use sparkvc_e2e::*;
use std::path::Path;
use std::process::{Command, Output};

const REGION: &str = "us-west-2";
const ALICE_ARN: &str = "arn:aws:iam::123456789012:user/alice";
const ALICE_KEY: &str = "AKIAALICEEXAMPLE0001";
const ALICE_SECRET: &str = "alice/secret+EXAMPLE";
const WORKER_ARN: &str = "arn:aws:sts::123456789012:assumed-role/airflow/worker-1";
const WORKER_KEY: &str = "ASIAWORKEREXAMPLE001";
const WORKER_SECRET: &str = "worker-secret";
const WORKER_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE//token==";
const EXPIRED_KEY: &str = "ASIAEXPIREDEXAMPLE01";
const PROMETHEUS_ARN: &str = "arn:aws:iam::123456789012:user/prometheus";
const PROMETHEUS_KEY: &str = "AKIAPROMEXAMPLE00001";
const PROMETHEUS_SECRET: &str = "prometheus-secret";

fn write_identities(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("identities.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[policy]]
name = "everything"
document = '{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":["emr-containers:*","iam:PassRole"],"Resource":"*"}}}}'

[[policy]]
name = "scrape"
document = '{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"sparkvc:GetMetrics","Resource":"*"}}}}'

[[group]]
name = "admins"
policies = ["everything"]

[[principal]]
arn = "{PROMETHEUS_ARN}"
policies = ["scrape"]
[[principal.access_key]]
id = "{PROMETHEUS_KEY}"
secret = "{PROMETHEUS_SECRET}"

[[principal]]
arn = "{ALICE_ARN}"
groups = ["admins"]
tags = {{ team = "a" }}
[[principal.access_key]]
id = "{ALICE_KEY}"
secret = "{ALICE_SECRET}"

[[principal]]
arn = "{WORKER_ARN}"
groups = ["admins"]
[[principal.access_key]]
id = "{WORKER_KEY}"
secret = "{WORKER_SECRET}"
session_token = "{WORKER_TOKEN}"
expires = "2100-01-01T00:00:00Z"
[[principal.access_key]]
id = "{EXPIRED_KEY}"
secret = "expired-secret"
session_token = "old-token"
expires = "2020-01-01T00:00:00Z"
"#
        ),
    )
    .unwrap();
    path
}

/// The CLI with exactly these AWS variables (none inherited).
fn cli(endpoint: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    sparkvc_isolated(endpoint, env, args)
}

fn alice_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", ALICE_KEY),
        ("AWS_SECRET_ACCESS_KEY", ALICE_SECRET),
        ("AWS_REGION", REGION),
    ]
}

fn refused_with(out: &Output, code: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a refusal, got {stderr}");
    assert!(stderr.contains(code), "stderr {stderr:?} lacks {code}");
}

fn create_vc_args(ns: &str) -> Vec<String> {
    vec![
        "create-virtual-cluster".into(),
        "--name".into(),
        "auth-vc".into(),
        "--container-provider".into(),
        format!("id=local,type=EKS,info={{eksInfo={{namespace={ns}}}}}"),
    ]
}

#[tokio::test]
async fn only_signed_calls_are_served_and_created_by_is_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let identities = write_identities(dir.path());
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--identities", identities.to_str().unwrap()],
    );
    let endpoint = server.endpoint();

    // Unsigned: refused before anything runs; nothing is stored.
    let mut raw = server.client().await;
    let status = raw
        .create_virtual_cluster(create_vc_request(&unique("ns")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert_eq!(aws_error(&status), "MissingAuthenticationTokenException");
    let out = cli(&endpoint, &[], &["list-virtual-clusters"]);
    refused_with(&out, "MissingAuthenticationTokenException");

    // Health stays open for probes.
    let mut health = tonic_health::pb::health_client::HealthClient::new(
        tonic::transport::Channel::from_shared(endpoint.clone())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health is not authenticated");

    // Alice, from the environment.
    let ns = unique("ns");
    let args = create_vc_args(&ns);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let vc = json_of(&cli(&endpoint, &alice_env(), &args));
    let vc_id = vc["id"].as_str().unwrap().to_string();
    let template = json_of(&cli(
        &endpoint,
        &alice_env(),
        &[
            "create-job-template",
            "--name",
            "t",
            "--job-template-data",
            r#"{"executionRoleArn":"arn:aws:iam::123456789012:role/r","releaseLabel":"emr-7.9.0-latest","jobDriver":{"sparkSubmitJobDriver":{"entryPoint":"local:///x.py"}}}"#,
        ],
    ));
    let described = json_of(&cli(
        &endpoint,
        &alice_env(),
        &[
            "describe-job-template",
            "--id",
            template["id"].as_str().unwrap(),
        ],
    ));
    assert_eq!(described["jobTemplate"]["createdBy"], ALICE_ARN);

    // The Airflow worker, with temporary credentials from a profile file.
    let credentials = dir.path().join("credentials");
    std::fs::write(
        &credentials,
        format!(
            "[worker]\naws_access_key_id = {WORKER_KEY}\naws_secret_access_key = {WORKER_SECRET}\naws_session_token = {WORKER_TOKEN}\n"
        ),
    )
    .unwrap();
    let config = dir.path().join("config");
    std::fs::write(&config, format!("[profile worker]\nregion = {REGION}\n")).unwrap();
    let profile_env = [
        ("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().unwrap()),
        ("AWS_CONFIG_FILE", config.to_str().unwrap()),
    ];
    let run = json_of(&cli(
        &endpoint,
        &profile_env,
        &[
            "--profile",
            "worker",
            "start-job-run",
            "--virtual-cluster-id",
            &vc_id,
            "--name",
            "r",
            "--execution-role-arn",
            "arn:aws:iam::123456789012:role/r",
            "--release-label",
            "emr-7.9.0-latest",
            "--job-driver",
            r#"{"sparkSubmitJobDriver":{"entryPoint":"local:///x.py"}}"#,
        ],
    ));
    let described = json_of(&cli(
        &endpoint,
        &alice_env(),
        &[
            "describe-job-run",
            "--virtual-cluster-id",
            &vc_id,
            "--id",
            run["id"].as_str().unwrap(),
        ],
    ));
    assert_eq!(described["jobRun"]["createdBy"], WORKER_ARN);

    // Bad credentials, each with its own error; none stores anything.
    let list = |env: &[(&str, &str)]| cli(&endpoint, env, &["list-virtual-clusters"]);
    let with = |changes: &[(&'static str, &'static str)]| {
        let mut env = alice_env();
        for (name, value) in changes {
            env.retain(|(n, _)| n != name);
            env.push((name, value));
        }
        env
    };
    refused_with(
        &list(&with(&[("AWS_SECRET_ACCESS_KEY", "wrong")])),
        "InvalidSignatureException",
    );
    refused_with(
        &list(&with(&[("AWS_REGION", "eu-west-1")])),
        "Credential should be scoped to a valid region",
    );
    refused_with(
        &list(&with(&[("AWS_ACCESS_KEY_ID", "AKIANOBODYEXAMPLE001")])),
        "UnrecognizedClientException",
    );
    refused_with(
        &list(&[
            ("AWS_ACCESS_KEY_ID", WORKER_KEY),
            ("AWS_SECRET_ACCESS_KEY", WORKER_SECRET),
            ("AWS_REGION", REGION),
        ]),
        "UnrecognizedClientException",
    );
    refused_with(
        &list(&[
            ("AWS_ACCESS_KEY_ID", EXPIRED_KEY),
            ("AWS_SECRET_ACCESS_KEY", "expired-secret"),
            ("AWS_SESSION_TOKEN", "old-token"),
            ("AWS_REGION", REGION),
        ]),
        "ExpiredTokenException",
    );
    let refused_create = cli(
        &endpoint,
        &with(&[("AWS_SECRET_ACCESS_KEY", "wrong")]),
        &args,
    );
    refused_with(&refused_create, "InvalidSignatureException");
    let listed = json_of(&list(&alice_env()));
    let vcs = listed["virtualClusters"].as_array().unwrap();
    assert_eq!(vcs.len(), 1, "only the signed create stored: {listed}");
    // A profile that does not exist is a usage error, not an unsigned call.
    let out = cli(
        &endpoint,
        &profile_env,
        &["--profile", "nobody", "list-virtual-clusters"],
    );
    refused_with(&out, "Unable to locate credentials for profile \"nobody\"");
}

#[tokio::test]
async fn a_development_server_serves_unsigned_calls_as_its_one_caller() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut client = server.client().await;
    let vc = new_virtual_cluster(&mut client).await;
    let run = client
        .start_job_run(start_request(&vc))
        .await
        .unwrap()
        .into_inner();
    let described = describe_run(&mut client, &vc, &run.id).await;
    assert_eq!(described.created_by, "arn:aws:iam::123456789012:root");
}

#[test]
fn a_server_reachable_from_other_machines_will_not_start_unauthenticated() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(server_binary())
        .args(["--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("0.0.0.0:0 is not a loopback address"),
        "{stderr}"
    );
}

/// botocore signs (in the local AWS stand-in's Python environment) a few
/// REST-shaped requests; sparkvc's verifier accepts each, and refuses it
/// once its body is changed.
#[test]
fn requests_signed_by_botocore_verify() {
    use sparkvc_server::auth::identities::Identities;
    use sparkvc_server::auth::sigv4::SignedRequest;

    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local/.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: start the local environment first (deploy/local/up, which `make test` runs)",
        python.display()
    );
    let script = format!(
        r#"
import json, sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
creds = Credentials("{ALICE_KEY}", "{ALICE_SECRET}")
host = "127.0.0.1:50051"
out = []
for method, path, query, body in [
    ("POST", "/tags/arn%3Aaws%3Aemr-containers%3Aus-west-2%3A123456789012%3A%2Fvirtualclusters%2Fabc", "", '{{"tags": {{"team": "a"}}}}'),
    ("GET", "/virtualclusters", "states=RUNNING&states=PENDING&maxResults=10", ""),
    ("POST", "/virtualclusters/abc/jobruns", "", '{{"name": "r", "clientToken": "t"}}'),
    ("DELETE", "/tags/arn%3Aaws%3Aemr-containers%3Aus-west-2%3A123456789012%3A%2Fvirtualclusters%2Fabc", "tagKeys=team&tagKeys=a%20b", ""),
]:
    url = "http://" + host + path + ("?" + query if query else "")
    headers = {{"Content-Type": "application/x-amz-json-1.1"}} if body else {{}}
    req = AWSRequest(method=method, url=url, data=body.encode() if body else None, headers=headers)
    SigV4Auth(creds, "emr-containers", "{REGION}").add_auth(req)
    hdrs = dict(req.headers.items())
    hdrs["Host"] = host
    out.append({{"method": method, "path": path, "query": query, "headers": hdrs, "body": body}})
json.dump(out, sys.stdout)
"#
    );
    let out = Command::new(&python)
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let requests: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(requests.len(), 4);
    let ids = Identities::load(&write_identities(tempfile::tempdir().unwrap().path())).unwrap();
    for request in &requests {
        let mut headers = http::HeaderMap::new();
        for (name, value) in request["headers"].as_object().unwrap() {
            headers.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.as_str().unwrap().parse().unwrap(),
            );
        }
        let body = request["body"].as_str().unwrap().as_bytes().to_vec();
        let signed = SignedRequest {
            method: request["method"].as_str().unwrap(),
            path: request["path"].as_str().unwrap(),
            query: request["query"].as_str().unwrap(),
            headers: &headers,
            authority: None,
            body: &body,
        };
        let caller = ids
            .authenticate(&signed, REGION, std::time::SystemTime::now())
            .unwrap_or_else(|e| panic!("{request}: {e}"));
        assert_eq!(caller.arn, ALICE_ARN);
        let changed = [body.as_slice(), b" "].concat();
        let tampered = SignedRequest {
            body: &changed,
            ..signed
        };
        assert!(
            ids.authenticate(&tampered, REGION, std::time::SystemTime::now())
                .is_err()
        );
    }
}

#[test]
fn identities_are_reloaded_when_the_file_changes_and_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_identities(dir.path());
    let original = std::fs::read_to_string(&path).unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &[
            "--identities",
            path.to_str().unwrap(),
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    let endpoint = server.endpoint();
    let bob = [
        ("AWS_ACCESS_KEY_ID", "AKIABOBEXAMPLE000001"),
        ("AWS_SECRET_ACCESS_KEY", "bob-secret"),
        ("AWS_REGION", REGION),
    ];
    let list = |env: &[(&str, &str)]| cli(&endpoint, env, &["list-virtual-clusters"]);
    refused_with(&list(&bob), "UnrecognizedClientException");

    // Bob is added: within a few polls his calls are served.
    let with_bob = format!(
        "{original}\n[[principal]]\narn = \"arn:aws:iam::123456789012:user/bob\"\ngroups = [\"admins\"]\n[[principal.access_key]]\nid = \"AKIABOBEXAMPLE000001\"\nsecret = \"bob-secret\"\n"
    );
    std::fs::write(&path, &with_bob).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !list(&bob).status.success() {
        assert!(
            std::time::Instant::now() < deadline,
            "bob's key was not loaded"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }

    // A broken edit is refused and changes nothing: both still get in.
    std::fs::write(&path, format!("{with_bob}\n[[principal]]\narn = 42\n")).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(list(&bob).status.success(), "a broken file locked bob out");
    assert!(list(&alice_env()).status.success());

    // Bob is revoked, and a SIGHUP makes it take effect at once.
    std::fs::write(&path, &original).unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while list(&bob).status.success() {
        assert!(std::time::Instant::now() < deadline, "bob was not revoked");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    refused_with(&list(&bob), "UnrecognizedClientException");
    assert!(list(&alice_env()).status.success());

    let (status, metrics) = signed_get(
        server.metrics_url.as_deref().unwrap(),
        (PROMETHEUS_KEY, PROMETHEUS_SECRET),
        REGION,
        &[],
    );
    assert_eq!(status, 200, "{metrics}");
    let count = |result: &str| -> u64 {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("sparkvc_config_reloads_total{")
                    && l.contains("what=\"identities\"")
                    && l.contains(&format!("result=\"{result}\""))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    assert!(count("ok") >= 2, "{metrics}");
    assert_eq!(count("error"), 1, "{metrics}");
}

/// `/metrics` names every tenant's virtual clusters: it is served to a
/// signed caller whose policy allows `sparkvc:GetMetrics`, and to no one
/// else (not even one allowed `emr-containers:*`); each answer is audited.
#[test]
fn metrics_are_served_only_to_callers_allowed_to_read_them() {
    let dir = tempfile::tempdir().unwrap();
    let identities = write_identities(dir.path());
    let audit = dir.path().join("audit.log");
    let server = Server::start_with(
        &dir.path().join("data"),
        &[
            "--identities",
            identities.to_str().unwrap(),
            "--metrics-listen",
            "127.0.0.1:0",
            "--audit-log",
            audit.to_str().unwrap(),
        ],
    );
    let url = server.metrics_url.clone().expect("a metrics URL");

    let (status, body) = http_get_status(&url);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("Missing Authentication Token"), "{body}");

    let (status, body) = signed_get(&url, (ALICE_KEY, ALICE_SECRET), REGION, &[]);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains(&format!(
            "User: {ALICE_ARN} is not authorized to perform: sparkvc:GetMetrics on resource: *"
        )),
        "{body}"
    );

    let (status, body) = signed_get(&url, (ALICE_KEY, "wrong-secret"), REGION, &[]);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("signature we calculated does not match"),
        "{body}"
    );
    assert!(
        !body.contains("wrong-secret"),
        "the secret was echoed: {body}"
    );

    let (status, body) = signed_get(&url, (PROMETHEUS_KEY, PROMETHEUS_SECRET), REGION, &[]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("sparkvc_store_writable 1"), "{body}");

    // The app-UI routes keep their own signatures: an unsigned request for
    // a made-up link is refused by the link check, not let through.
    let base = url.trim_end_matches("/metrics");
    let (status, _) = http_get_status(&format!("{base}/app-ui/vc/run/1/bad/"));
    assert_ne!(status, 200);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let records = loop {
        let text = std::fs::read_to_string(&audit).unwrap_or_default();
        let records: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|r: &serde_json::Value| r["operation"] == "/metrics")
            .collect();
        if records.len() >= 4 || std::time::Instant::now() > deadline {
            break records;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let decisions: Vec<&str> = records
        .iter()
        .map(|r| r["decision"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        decisions,
        [
            "unauthenticated",
            "implicit-deny",
            "unauthenticated",
            "allow"
        ],
        "{records:?}"
    );
    assert_eq!(records[3]["principal"], PROMETHEUS_ARN);
    assert_eq!(records[3]["action"], "sparkvc:GetMetrics");
}

/// A server with the test identities and its HTTP endpoint, and the
/// endpoint's base URL.
fn with_http_endpoint(dir: &std::path::Path) -> (Server, String) {
    let identities = write_identities(dir);
    let server = Server::start_with(
        &dir.join("data"),
        &[
            "--identities",
            identities.to_str().unwrap(),
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    let base = server
        .metrics_url
        .clone()
        .expect("a metrics URL")
        .trim_end_matches("/metrics")
        .to_string();
    (server, base)
}

/// The kubelet's probes need no credentials, even on a server that
/// authenticates everything else, and say nothing about any tenant.
#[test]
fn the_probes_answer_without_credentials_and_reveal_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base) = with_http_endpoint(dir.path());
    for probe in ["livez", "readyz"] {
        let (status, body) = http_get_status(&format!("{base}/{probe}"));
        assert_eq!((status, body.as_str()), (200, "ok\n"), "/{probe}");
    }
    // Anything else on the endpoint still wants a signature.
    let (status, _) = http_get_status(&format!("{base}/metrics"));
    assert_eq!(status, 403);
}

/// A backup holds every tenant's records: only a caller allowed
/// `sparkvc:BackupStore` gets one; not a tenant with `emr-containers:*`,
/// nor the metrics scraper with `sparkvc:GetMetrics`.
#[test]
fn backups_are_served_only_to_callers_allowed_to_take_them() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base) = with_http_endpoint(dir.path());
    let url = format!("{base}/backup");
    let (status, body) = http_get_status(&url);
    assert_eq!(status, 403, "{body}");
    for (who, key, secret) in [
        (ALICE_ARN, ALICE_KEY, ALICE_SECRET),
        (PROMETHEUS_ARN, PROMETHEUS_KEY, PROMETHEUS_SECRET),
    ] {
        let (status, body) = signed_get(&url, (key, secret), REGION, &[]);
        assert_eq!(status, 403, "{body}");
        assert!(
            body.contains(&format!(
                "User: {who} is not authorized to perform: sparkvc:BackupStore on resource: *"
            )),
            "{body}"
        );
    }
}
