//! The REST decoder under random input: method, path, query string,
//! content type and body, mutated from real requests of every operation.
//! It may never panic, and every refusal must be an AWS error an SDK reads
//! (a known code at its HTTP status, a short message). Bounded in time;
//! `SPARKVC_FUZZ_SECONDS` and `SPARKVC_FUZZ_SEED` change the budget and
//! replay a run. A seeded mutation fuzzer, not coverage guided, so that it
//! runs in the normal test suite.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sparkvc_server::rest::parse;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn budget() -> Duration {
    let seconds = std::env::var("SPARKVC_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(seconds)
}

const VC: &str = "0horz0wur58fa7qbb6doww3zs";
const ARN: &str = "arn%3Aaws%3Aemr-containers%3Aus-west-2%3A123456789012%3A%2Fvirtualclusters%2F0horz0wur58fa7qbb6doww3zs";

/// Real requests, one or more per operation: (method, path, query, body).
fn seeds() -> Vec<(&'static str, String, String, String)> {
    let run = r#"{"name":"pi","clientToken":"t","executionRoleArn":"arn:aws:iam::123456789012:role/spark","releaseLabel":"emr-7.2.0-latest","jobDriver":{"sparkSubmitJobDriver":{"entryPoint":"local:///x.py","entryPointArguments":["10"],"sparkSubmitParameters":"--conf a=b"}},"configurationOverrides":{"applicationConfiguration":[{"classification":"spark-env","configurations":[{"classification":"export","properties":{"A":"1"}}]}],"monitoringConfiguration":{"persistentAppUI":"ENABLED","s3MonitoringConfiguration":{"logUri":"s3://b/l"}}},"retryPolicyConfiguration":{"maxAttempts":2},"tags":{"team":"a"}}"#;
    vec![
        ("POST", "/virtualclusters".into(), "".into(),
         r#"{"name":"a","clientToken":"c","containerProvider":{"id":"local","type":"EKS","info":{"eksInfo":{"namespace":"ns"}}},"tags":{"t":"1"}}"#.into()),
        ("GET", format!("/virtualclusters/{VC}"), "".into(), "".into()),
        ("GET", "/virtualclusters".into(),
         "states=RUNNING&states=ARRESTED&maxResults=10&createdAfter=2026-01-01T00%3A00%3A00Z&containerProviderType=EKS&eksAccessEntryIntegrated=true".into(), "".into()),
        ("PATCH", format!("/virtualclusters/{VC}"), "".into(),
         r#"{"clientToken":"u","schedulerConfiguration":{"maxConcurrentJobRuns":5}}"#.into()),
        ("DELETE", format!("/virtualclusters/{VC}"), "".into(), "".into()),
        ("POST", format!("/virtualclusters/{VC}/jobruns"), "".into(), run.into()),
        ("GET", format!("/virtualclusters/{VC}/jobruns/0horz0wv3w2qf3kjoa6"), "".into(), "".into()),
        ("GET", format!("/virtualclusters/{VC}/jobruns"), "states=PENDING&name=pi&maxResults=2&nextToken=abc".into(), "".into()),
        ("DELETE", format!("/virtualclusters/{VC}/jobruns/0horz0wv3w2qf3kjoa6"), "".into(), "".into()),
        ("GET", format!("/sparkvc/virtualclusters/{VC}/jobruns/0horz0wv3w2qf3kjoa6/logs"), "container=DRIVER&stream=STDERR".into(), "".into()),
        ("GET", format!("/sparkvc/virtualclusters/{VC}/jobruns/0horz0wv3w2qf3kjoa6/appuiurl"), "expiresInSeconds=600".into(), "".into()),
        ("POST", "/jobtemplates".into(), "".into(),
         r#"{"name":"t","clientToken":"c","jobTemplateData":{"executionRoleArn":"${Role}","releaseLabel":"emr-7.2.0-latest","jobDriver":{"sparkSqlJobDriver":{"entryPoint":"s3://b/q.sql"}},"parameterConfiguration":{"Role":{"type":"STRING","defaultValue":"x"}}}}"#.into()),
        ("GET", "/jobtemplates/0horz0wur58fa7qbb6doww3zs".into(), "".into(), "".into()),
        ("GET", "/jobtemplates".into(), "createdBefore=1700000000&maxResults=1".into(), "".into()),
        ("DELETE", "/jobtemplates/0horz0wur58fa7qbb6doww3zs".into(), "".into(), "".into()),
        ("POST", "/securityconfigurations".into(), "".into(),
         r#"{"name":"s","clientToken":"c","securityConfigurationData":{"authorizationConfiguration":{"lakeFormationConfiguration":{"authorizedSessionTagValue":"x"}}}}"#.into()),
        ("GET", "/securityconfigurations".into(), "".into(), "".into()),
        ("POST", format!("/tags/{ARN}"), "".into(), r#"{"tags":{"a":"b"}}"#.into()),
        ("DELETE", format!("/tags/{ARN}"), "tagKeys=a&tagKeys=b%20c".into(), "".into()),
        ("GET", format!("/tags/{ARN}"), "".into(), "".into()),
        ("POST", format!("/virtualclusters/{VC}/endpoints"), "".into(), "{}".into()),
    ]
}

const PIECES: &[&str] = &[
    "/",
    "//",
    "%",
    "%2F",
    "%ZZ",
    "%00",
    "%C3%28",
    "{",
    "}",
    "{id}",
    "..",
    "?",
    "&",
    "=",
    "&&",
    "states=",
    "maxResults=",
    "maxResults=-1",
    "maxResults=99999999999999999999",
    "nextToken=",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "[",
    "]",
    ":",
    ",",
    "null",
    "true",
    "1e999",
    "-0",
    "{}",
    "[]",
    "\"name\":",
    "\"tags\":{",
    "\"configurations\":[",
    "é",
    "\u{0}",
    "\u{feff}",
    "💥",
];

fn mutate(rng: &mut StdRng, text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..rng.random_range(1..6) {
        let at = if bytes.is_empty() {
            0
        } else {
            rng.random_range(0..=bytes.len())
        };
        match rng.random_range(0..6) {
            0 if !bytes.is_empty() => {
                let end = (at + rng.random_range(1..16)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            1 => {
                let piece = PIECES[rng.random_range(0..PIECES.len())];
                bytes.splice(at..at, piece.bytes());
            }
            2 if !bytes.is_empty() => {
                let i = rng.random_range(0..bytes.len());
                bytes[i] ^= 1 << rng.random_range(0..8);
            }
            3 => bytes.truncate(at),
            4 if !bytes.is_empty() => {
                // Repeat a slice: duplicated keys, deeper nesting, long values.
                let start = rng.random_range(0..bytes.len());
                let end = (start + rng.random_range(1..64)).min(bytes.len());
                let slice = bytes[start..end].to_vec();
                for _ in 0..rng.random_range(1..40) {
                    bytes.splice(at..at, slice.iter().copied());
                }
            }
            _ => bytes.insert(at, rng.random()),
        }
    }
    // The HTTP layer hands the decoder text: invalid UTF-8 in a path or
    // query never reaches it, but in a body it does.
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The AWS errors the REST side may answer, each at its one status.
fn expected_status(code: &str) -> Option<u16> {
    Some(match code {
        "ValidationException" => 400,
        "SerializationException" => 400,
        "ResourceNotFoundException" => 400,
        "UnknownOperationException" => return None,
        "UnsupportedMediaTypeException" => 415,
        _ => return Some(0),
    })
}

#[test]
fn the_rest_decoder_never_panics_and_answers_only_aws_errors() {
    let seed = std::env::var("SPARKVC_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("rest decoder: seed {seed} (SPARKVC_FUZZ_SEED={seed} replays it)");
    let mut rng = StdRng::seed_from_u64(seed);
    let seeds = seeds();
    for (method, path, query, body) in &seeds {
        let query = (!query.is_empty()).then_some(query.as_str());
        let parsed = parse(
            method,
            path,
            query,
            Some("application/json"),
            body.as_bytes(),
        );
        if path.ends_with("/endpoints") {
            assert_eq!(parsed.unwrap_err().code, "ValidationException");
        } else if let Err(err) = parsed {
            panic!("the seed {method} {path} does not parse: {err:?}");
        }
    }
    let methods = [
        "GET", "POST", "DELETE", "PATCH", "PUT", "HEAD", "OPTIONS", "get",
    ];
    let content_types = [
        None,
        Some("application/json"),
        Some("application/x-amz-json-1.1"),
        Some("application/json; charset=utf-8"),
        Some("text/plain"),
        Some(""),
        Some("application/grpc"),
    ];
    let deadline = Instant::now() + budget();
    let mut tried = 0u64;
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    while Instant::now() < deadline {
        let (method, path, query, body) = &seeds[rng.random_range(0..seeds.len())];
        let method = if rng.random_bool(0.1) {
            methods[rng.random_range(0..methods.len())]
        } else {
            method
        };
        let path = if rng.random_bool(0.4) {
            mutate(&mut rng, path)
        } else {
            path.clone()
        };
        let query = if rng.random_bool(0.4) {
            mutate(&mut rng, query)
        } else {
            query.clone()
        };
        let body = if rng.random_bool(0.6) {
            mutate(&mut rng, body)
        } else {
            body.clone()
        };
        let content_type = content_types[rng.random_range(0..content_types.len())];
        let query = (!query.is_empty()).then_some(query.as_str());
        let outcome = parse(method, &path, query, content_type, body.as_bytes());
        tried += 1;
        let key = match outcome {
            Ok(route) => format!("ok {}", route.operation),
            Err(err) => {
                match expected_status(&err.code) {
                    None => assert!(
                        matches!(err.status, 404 | 405),
                        "{err:?} for {method} {path:?}"
                    ),
                    Some(0) => panic!(
                        "{method} {path:?} {query:?}: not an AWS error an SDK models: {err:?}"
                    ),
                    Some(status) => assert_eq!(err.status, status, "{err:?}"),
                }
                assert!(!err.message.is_empty(), "{err:?}");
                assert!(
                    err.message.len() < 1024,
                    "a {}-byte message for {method} {path:?}: {}",
                    err.message.len(),
                    err.message
                );
                err.code
            }
        };
        *outcomes.entry(key).or_default() += 1;
    }
    eprintln!("rest decoder: {tried} requests, outcomes {outcomes:?}");
    assert!(tried > 1000, "only {tried} requests in the budget");
    // The mutations reach the decoder's depths, not only the router.
    for code in [
        "SerializationException",
        "ValidationException",
        "UnknownOperationException",
    ] {
        assert!(
            outcomes.contains_key(code),
            "no request ended in {code}: {outcomes:?}"
        );
    }
    assert!(
        outcomes.keys().any(|k| k.starts_with("ok ")),
        "{outcomes:?}"
    );
}
