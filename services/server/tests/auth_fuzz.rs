//! Untrusted input to authentication and authorization, randomized: policy
//! documents (mutated from real ones, and generated from the grammar's
//! pieces) and signed requests (every part mutated). Neither parser nor
//! evaluator may panic, and a request whose signed parts changed never
//! verifies. Bounded in time; `SPARKVC_FUZZ_SECONDS` and
//! `SPARKVC_FUZZ_SEED` change the budget and replay a run. Not coverage
//! guided: a seeded mutation fuzzer that runs in the normal test suite.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sparkvc_server::auth::policy::{self, Context, Policy, Question};
use sparkvc_server::auth::sigv4::{self, KeySecret, Scope, SignedRequest};
use std::time::{Duration, Instant};

fn budget() -> Duration {
    let seconds = std::env::var("SPARKVC_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(seconds)
}

fn rng(name: &str) -> (StdRng, u64) {
    let seed = std::env::var("SPARKVC_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("{name}: seed {seed} (SPARKVC_FUZZ_SEED={seed} replays it)");
    (StdRng::seed_from_u64(seed), seed)
}

const SEEDS: &[&str] = &[
    r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"emr-containers:*","Resource":"*"}}"#,
    r#"{"Version":"2012-10-17","Statement":[{"Sid":"a","Effect":"Deny","NotAction":["iam:PassRole"],"NotResource":"arn:aws:iam::*:role/${aws:PrincipalTag/team}-*","Condition":{"ForAllValues:StringLike":{"aws:TagKeys":["t*","?x"]},"NumericLessThanIfExists":{"k":5},"Null":{"aws:RequestTag/x":"true"},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"},"Bool":{"aws:SecureTransport":false}}}]}"#,
];

const PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\"Version\"",
    "\"2012-10-17\"",
    "\"Statement\"",
    "\"Effect\"",
    "\"Allow\"",
    "\"Deny\"",
    "\"Action\"",
    "\"Resource\"",
    "\"Condition\"",
    "\"StringEquals\"",
    "\"ForAnyValue:ArnLike\"",
    "\"${aws:x}\"",
    "\"${*}\"",
    "\"${\"",
    "\"*\"",
    "\"?\"",
    "null",
    "true",
    "1e309",
    "-0",
    "\"\\u0000\"",
    "\"ሴ\"",
    "\"a:b\"",
];

fn mutate(rng: &mut StdRng, text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..rng.random_range(1..4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.random_range(0..bytes.len());
        match rng.random_range(0..5) {
            0 => bytes[at] = rng.random(),
            1 => {
                bytes.remove(at);
            }
            2 => bytes.truncate(at),
            3 => {
                let piece = PIECES[rng.random_range(0..PIECES.len())];
                bytes.splice(at..at, piece.bytes());
            }
            _ => {
                let end = rng.random_range(at..bytes.len());
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn context(rng: &mut StdRng) -> Context {
    let mut c = Context::default();
    for key in [
        "aws:PrincipalTag/team",
        "aws:ResourceTag/team",
        "aws:SourceIp",
        "k",
    ] {
        if rng.random_bool(0.7) {
            let value = PIECES[rng.random_range(0..PIECES.len())].trim_matches('"');
            c.set(key, value);
        }
    }
    c.set_many("aws:TagKeys", vec!["team".into(), "x".into()]);
    c
}

#[test]
fn policy_parsing_and_evaluation_never_panic() {
    let (mut rng, _) = rng("policies");
    let deadline = Instant::now() + budget();
    let (mut parsed, mut total) = (0u64, 0u64);
    while Instant::now() < deadline {
        let text = if rng.random_bool(0.5) {
            let seed = SEEDS[rng.random_range(0..SEEDS.len())];
            mutate(&mut rng, seed)
        } else {
            (0..rng.random_range(1..40))
                .map(|_| PIECES[rng.random_range(0..PIECES.len())])
                .collect()
        };
        total += 1;
        if let Ok(p) = Policy::parse("fuzz", &text) {
            parsed += 1;
            let ctx = context(&mut rng);
            let _ = policy::evaluate(
                std::slice::from_ref(&p),
                Question {
                    action: "iam:PassRole",
                    resource: "arn:aws:iam::1:role/a*-x",
                    context: &ctx,
                },
            );
        }
    }
    eprintln!("{total} documents, {parsed} parsed, 0 panics");
    assert!(total > 1000, "too few cases in the budget: {total}");
}

#[test]
fn mutated_signed_requests_never_panic_and_never_verify() {
    let (mut rng, _) = rng("signatures");
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let now = sigv4::parse_amz_date("20150830T123600Z").unwrap();
    let scope = Scope {
        region: "us-east-1",
        service: "emr-containers",
    };
    let body = br#"{"tags":{"team":"a"}}"#;
    let path = "/tags/arn%3Aaws%3Aemr-containers%3Aus-east-1%3A1%3A%2Fvirtualclusters%2Fx";
    let query = "a=1&b=%20";
    // Sign once, then check the original verifies.
    let mut headers = http::HeaderMap::new();
    headers.insert("host", "example.com".parse().unwrap());
    headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
    let request = SignedRequest {
        method: "POST",
        path,
        query,
        headers: &headers,
        authority: None,
        body,
    };
    let creq =
        sigv4::canonical_request(&request, &["host", "x-amz-date"], sigv4::Slashes::Keep).unwrap();
    let to_sign = sigv4::string_to_sign(
        "20150830T123600Z",
        "20150830/us-east-1/emr-containers/aws4_request",
        &creq,
    );
    let key = aws_sigv4::sign::v4::generate_signing_key(secret, now, "us-east-1", "emr-containers");
    let signature = aws_sigv4::sign::v4::calculate_signature(key, to_sign.as_bytes());
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/emr-containers/aws4_request, SignedHeaders=host;x-amz-date, Signature={signature}"
    );
    headers.insert("authorization", authorization.parse().unwrap());
    let lookup = |_: &str| {
        Some(KeySecret {
            secret_access_key: secret,
        })
    };
    let original = SignedRequest {
        method: "POST",
        path,
        query,
        headers: &headers,
        authority: None,
        body,
    };
    sigv4::verify(&original, scope, now, lookup).expect("the unmutated request verifies");

    let deadline = Instant::now() + budget();
    let mut total = 0u64;
    while Instant::now() < deadline {
        total += 1;
        let mut h = headers.clone();
        let (mut m_path, mut m_query, mut m_body) =
            (path.to_string(), query.to_string(), body.to_vec());
        match rng.random_range(0..5) {
            0 => {
                let value = mutate(&mut rng, &authorization);
                match http::HeaderValue::from_str(&value) {
                    Ok(v) => {
                        h.insert("authorization", v);
                    }
                    Err(_) => continue,
                }
            }
            1 => {
                let value = mutate(&mut rng, "20150830T123600Z");
                match http::HeaderValue::from_str(&value) {
                    Ok(v) => {
                        h.insert("x-amz-date", v);
                    }
                    Err(_) => continue,
                }
            }
            2 => m_path = mutate(&mut rng, path),
            3 => m_query = mutate(&mut rng, query),
            _ => m_body = mutate(&mut rng, std::str::from_utf8(body).unwrap()).into_bytes(),
        }
        let mutated = SignedRequest {
            method: "POST",
            path: &m_path,
            query: &m_query,
            headers: &h,
            authority: None,
            body: &m_body,
        };
        let changed = h != headers || m_path != path || m_query != query || m_body != body;
        let result = sigv4::verify(&mutated, scope, now, lookup);
        if changed && result.is_ok() {
            // Only changes the canonical form undoes may verify: the same
            // canonical request as the original.
            let same =
                sigv4::canonical_request(&mutated, &["host", "x-amz-date"], sigv4::Slashes::Keep)
                    .is_ok_and(|c| c == creq)
                    || h.get("authorization") != headers.get("authorization");
            assert!(same, "a changed request verified: {m_path} {m_query} {h:?}");
        }
    }
    eprintln!("{total} mutated requests, 0 panics, none verified with a changed canonical request");
    assert!(total > 1000, "too few cases in the budget: {total}");
}
