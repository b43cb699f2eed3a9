//! A property test over what an untrusted client controls: request bytes.
//! Seeded random bodies, and valid requests with random bytes changed, cut
//! or inserted, are decoded as each request type; whatever decodes is
//! validated. Nothing may panic, and every refusal is a short message
//! (bounded echo, issue 19). `SPARKVC_FUZZ_CASES` sets how many cases per
//! request type (default 20,000); the seed of a failing case is printed.

use prost::Message;
use sparkvc_proto::v1 as pb;
use sparkvc_server::validate;

/// splitmix64: a small, seedable source of bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A random body, or `valid` with a few random changes.
fn case(rng: &mut Rng, valid: &[u8]) -> Vec<u8> {
    if rng.below(4) == 0 {
        let len = rng.below(256);
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    let mut bytes = valid.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(4) {
            0 if !bytes.is_empty() => {
                let at = rng.below(bytes.len());
                bytes[at] = rng.next() as u8;
            }
            1 if !bytes.is_empty() => bytes.truncate(rng.below(bytes.len())),
            2 => {
                let at = rng.below(bytes.len() + 1);
                bytes.insert(at, rng.next() as u8);
            }
            _ => bytes.extend((0..rng.below(16)).map(|_| rng.next() as u8)),
        }
    }
    bytes
}

fn cases() -> u64 {
    std::env::var("SPARKVC_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000)
}

/// Decodes each case as `M` and validates what decodes.
fn check<M: Message + Default>(name: &str, valid: &M, validate: impl Fn(&M) -> Result<(), String>) {
    let valid = valid.encode_to_vec();
    let mut decoded = 0;
    for seed in 0..cases() {
        let mut rng = Rng(seed ^ (name.len() as u64 * 0x1234_5678));
        let bytes = case(&mut rng, &valid);
        let Ok(request) = M::decode(bytes.as_slice()) else {
            continue;
        };
        decoded += 1;
        if let Err(message) = validate(&request) {
            assert!(
                message.len() <= 2048,
                "{name}, seed {seed}: a {}-byte error message",
                message.len()
            );
        }
    }
    assert!(
        decoded > 0,
        "{name}: no case decoded; the test tests nothing"
    );
}

fn json<M: serde::de::DeserializeOwned>(value: serde_json::Value) -> M {
    serde_json::from_value(value).expect("a valid request")
}

#[test]
fn start_job_run() {
    let valid: pb::StartJobRunRequest = json(serde_json::json!({
        "name": "pi", "virtualClusterId": "0hopiaaaaaaaaaaaaaaaaaaaa", "clientToken": "t",
        "executionRoleArn": "arn:aws:iam::123456789012:role/r", "releaseLabel": "emr-7.9.0-latest",
        "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "local:///a.py",
            "entryPointArguments": ["1"], "sparkSubmitParameters": "--conf a=b"}},
        "configurationOverrides": {
            "applicationConfiguration": [{"classification": "spark-defaults", "properties": {"a": "b"}}],
            "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": "s3://b/p"}}},
        "tags": {"k": "v"}
    }));
    check("StartJobRun", &valid, |r| {
        validate::start_job_run(r).map_err(|e| e.to_string())
    });
}

#[test]
fn create_virtual_cluster() {
    let valid: pb::CreateVirtualClusterRequest = json(serde_json::json!({
        "name": "vc", "clientToken": "t",
        "containerProvider": {"id": "local", "type": "EKS", "info": {"eksInfo": {"namespace": "ns"}}},
        "tags": {"k": "v"}
    }));
    check("CreateVirtualCluster", &valid, |r| {
        validate::create_virtual_cluster(r).map_err(|e| e.to_string())
    });
}

#[test]
fn create_job_template() {
    let valid: pb::CreateJobTemplateRequest = json(serde_json::json!({
        "name": "t", "clientToken": "c",
        "jobTemplateData": {
            "executionRoleArn": "arn:aws:iam::123456789012:role/r", "releaseLabel": "emr-7.9.0-latest",
            "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "local:///a.py"}},
            "parameterConfiguration": {"p": {"type": "STRING", "defaultValue": "x"}}
        }
    }));
    check("CreateJobTemplate", &valid, |r| {
        validate::create_job_template(r).map_err(|e| e.to_string())
    });
}

#[test]
fn listings() {
    let valid: pb::ListJobRunsRequest = json(serde_json::json!({
        "virtualClusterId": "0hopiaaaaaaaaaaaaaaaaaaaa", "states": ["RUNNING"], "maxResults": 10,
        "createdAfter": "2026-01-01T00:00:00Z", "name": "n"
    }));
    check("ListJobRuns", &valid, |r| {
        validate::list_job_runs(r).map_err(|e| e.to_string())
    });
    let valid: pb::ListVirtualClustersRequest = json(serde_json::json!({
        "states": ["RUNNING"], "containerProviderType": "EKS", "maxResults": 10
    }));
    check("ListVirtualClusters", &valid, |r| {
        validate::list_virtual_clusters(r).map_err(|e| e.to_string())
    });
}
