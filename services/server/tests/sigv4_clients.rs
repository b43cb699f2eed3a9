//! Requests signed by the AWS SDK for Rust's signer (`aws-sigv4`, as every
//! Rust SDK client signs) verify against the identity store, and every kind
//! of tampering is refused with its own error.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use sparkvc_server::auth::identities::Identities;
use sparkvc_server::auth::sigv4::SignedRequest;
use sparkvc_server::auth::{AuthError, AuthMethod, Caller};
use std::time::{Duration, SystemTime};

const REGION: &str = "us-west-2";
const ALICE_KEY: &str = "AKIAALICEEXAMPLE0001";
const ALICE_SECRET: &str = "alice/secret+example";
const TEMP_KEY: &str = "ASIATEMPEXAMPLE00001";
const TEMP_SECRET: &str = "temp-secret";
const TEMP_TOKEN: &str = "FwoGZXIvYXdzEXAMPLE//token==";

fn identities(temp_expires: &str) -> Identities {
    let text = format!(
        r#"
[[group]]
name = "team-a"

[[principal]]
arn = "arn:aws:iam::111122223333:user/alice"
groups = ["team-a"]
tags = {{ team = "a" }}
[[principal.access_key]]
id = "{ALICE_KEY}"
secret = "{ALICE_SECRET}"

[[principal]]
arn = "arn:aws:sts::111122223333:assumed-role/airflow/worker-1"
[[principal.access_key]]
id = "{TEMP_KEY}"
secret = "{TEMP_SECRET}"
session_token = "{TEMP_TOKEN}"
expires = "{temp_expires}"
"#
    );
    Identities::parse(&text, "test").unwrap()
}

/// A request as it arrives: method, path, query, headers, body.
#[derive(Clone)]
struct Wire {
    method: &'static str,
    path: String,
    query: String,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Wire {
    fn signed(&self) -> SignedRequest<'_> {
        SignedRequest {
            method: self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            authority: None,
            body: &self.body,
        }
    }
}

/// Signs like an SDK client: `aws-sigv4` with its default settings.
fn sign_request(
    method: &'static str,
    path_and_query: &str,
    body: &[u8],
    key: (&str, &str, Option<&str>),
    region: &str,
    service: &str,
    at: SystemTime,
) -> Wire {
    let credentials = Credentials::new(key.0, key.1, key.2.map(str::to_string), None, "test");
    let identity = credentials.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!(
            "https://emr-containers.{REGION}.amazonaws.com{path_and_query}"
        ))
        .header("host", format!("emr-containers.{REGION}.amazonaws.com"))
        .header("content-type", "application/json")
        .header("user-agent", "aws-sdk-rust/1.0")
        .body(())
        .unwrap();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let signable = SignableRequest::new(
        method,
        request.uri().to_string(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(&mut request);
    Wire {
        method,
        path: request.uri().path().to_string(),
        query: request.uri().query().unwrap_or("").to_string(),
        headers: request.headers().clone(),
        body: body.to_vec(),
    }
}

const TAG_PATH: &str =
    "/tags/arn%3Aaws%3Aemr-containers%3Aus-west-2%3A111122223333%3A%2Fvirtualclusters%2Fabc123";

fn alice(method: &'static str, path: &str, body: &[u8], at: SystemTime) -> Wire {
    sign_request(
        method,
        path,
        body,
        (ALICE_KEY, ALICE_SECRET, None),
        REGION,
        "emr-containers",
        at,
    )
}

#[test]
fn sdk_signed_requests_verify_and_name_their_principal() {
    let ids = identities("2100-01-01T00:00:00Z");
    let now = SystemTime::now();
    for wire in [
        alice("POST", TAG_PATH, br#"{"tags":{"team":"a"}}"#, now),
        alice(
            "GET",
            "/virtualclusters/abc123/jobruns?states=RUNNING&states=PENDING&maxResults=10",
            b"",
            now,
        ),
        alice("DELETE", "/virtualclusters/abc123", b"", now),
        // Within the 15 minutes either way.
        alice(
            "GET",
            "/virtualclusters",
            b"",
            now - Duration::from_secs(14 * 60),
        ),
        alice(
            "GET",
            "/virtualclusters",
            b"",
            now + Duration::from_secs(14 * 60),
        ),
    ] {
        let caller: Caller = ids
            .authenticate(&wire.signed(), REGION, now)
            .unwrap_or_else(|e| panic!("{} {}: {e}", wire.method, wire.path));
        assert_eq!(caller.arn, "arn:aws:iam::111122223333:user/alice");
        assert_eq!(caller.tags["team"], "a");
        assert_eq!(caller.method, AuthMethod::SigV4);
        assert_eq!(caller.access_key_id.as_deref(), Some(ALICE_KEY));
    }
    let temp = sign_request(
        "GET",
        "/virtualclusters",
        b"",
        (TEMP_KEY, TEMP_SECRET, Some(TEMP_TOKEN)),
        REGION,
        "emr-containers",
        now,
    );
    let caller = ids.authenticate(&temp.signed(), REGION, now).unwrap();
    assert_eq!(
        caller.arn,
        "arn:aws:sts::111122223333:assumed-role/airflow/worker-1"
    );
}

#[test]
fn each_tampering_is_refused_with_its_own_error() {
    let ids = identities("2100-01-01T00:00:00Z");
    let now = SystemTime::now();
    let good = alice("POST", TAG_PATH, br#"{"tags":{"team":"a"}}"#, now);
    let refused = |wire: &Wire| ids.authenticate(&wire.signed(), REGION, now).unwrap_err();
    let code = |wire: &Wire| refused(wire).code();

    let other_secret = Wire {
        headers: sign_request(
            "POST",
            TAG_PATH,
            &good.body,
            (ALICE_KEY, "not-alices-secret", None),
            REGION,
            "emr-containers",
            now,
        )
        .headers,
        ..good.clone()
    };
    assert_eq!(refused(&other_secret), AuthError::SignatureMismatch);

    let mut body = good.clone();
    body.body = br#"{"tags":{"team":"b"}}"#.to_vec();
    assert_eq!(refused(&body), AuthError::SignatureMismatch);

    let mut path = good.clone();
    path.path = TAG_PATH.replace("abc123", "abc124");
    assert_eq!(refused(&path), AuthError::SignatureMismatch);

    let mut once = good.clone();
    once.path = TAG_PATH.replace("%3A", ":").replace("%2F", "/");
    assert_eq!(refused(&once), AuthError::SignatureMismatch);

    let mut query = alice("GET", "/virtualclusters?maxResults=10", b"", now);
    query.query = "maxResults=11".into();
    assert_eq!(refused(&query), AuthError::SignatureMismatch);

    let mut header = good.clone();
    header.headers.insert(
        "content-type",
        "application/x-amz-json-1.1".parse().unwrap(),
    );
    assert_eq!(refused(&header), AuthError::SignatureMismatch);

    // Unsigned headers may change: the SDK does not sign User-Agent.
    let mut user_agent = good.clone();
    user_agent
        .headers
        .insert("user-agent", "something-else".parse().unwrap());
    assert!(ids.authenticate(&user_agent.signed(), REGION, now).is_ok());

    for minutes in [16i64, -16] {
        let at = if minutes > 0 {
            now - Duration::from_secs(16 * 60)
        } else {
            now + Duration::from_secs(16 * 60)
        };
        let stale = alice("GET", "/virtualclusters", b"", at);
        let err = refused(&stale);
        assert_eq!(err.code(), "InvalidSignatureException", "{minutes}: {err}");
        let text = err.to_string();
        assert!(
            text.starts_with(if minutes > 0 {
                "Signature expired: "
            } else {
                "Signature not yet current: "
            }),
            "{text}"
        );
    }

    let region = sign_request(
        "GET",
        "/virtualclusters",
        b"",
        (ALICE_KEY, ALICE_SECRET, None),
        "eu-west-1",
        "emr-containers",
        now,
    );
    assert_eq!(
        refused(&region).to_string(),
        "Credential should be scoped to a valid region: 'us-west-2'."
    );
    let service = sign_request(
        "GET",
        "/virtualclusters",
        b"",
        (ALICE_KEY, ALICE_SECRET, None),
        REGION,
        "emr",
        now,
    );
    assert_eq!(
        refused(&service).to_string(),
        "Credential should be scoped to correct service: 'emr-containers'."
    );

    let unknown = sign_request(
        "GET",
        "/virtualclusters",
        b"",
        ("AKIANOBODYEXAMPLE001", "x", None),
        REGION,
        "emr-containers",
        now,
    );
    assert_eq!(code(&unknown), "UnrecognizedClientException");

    let mut unsigned = good.clone();
    unsigned.headers.remove("authorization");
    assert_eq!(code(&unsigned), "MissingAuthenticationTokenException");

    let mut garbled = good.clone();
    garbled.headers.insert(
        "authorization",
        "AWS4-HMAC-SHA256 Credential=x".parse().unwrap(),
    );
    assert_eq!(code(&garbled), "IncompleteSignatureException");
}

#[test]
fn temporary_credentials_need_their_token_and_expire() {
    let now = SystemTime::now();
    let temp = |token: Option<&str>| {
        sign_request(
            "GET",
            "/virtualclusters",
            b"",
            (TEMP_KEY, TEMP_SECRET, token),
            REGION,
            "emr-containers",
            now,
        )
    };
    let ids = identities("2100-01-01T00:00:00Z");
    assert!(
        ids.authenticate(&temp(Some(TEMP_TOKEN)).signed(), REGION, now)
            .is_ok()
    );
    assert_eq!(
        ids.authenticate(&temp(None).signed(), REGION, now)
            .unwrap_err(),
        AuthError::UnrecognizedClient
    );
    assert_eq!(
        ids.authenticate(&temp(Some("another-token")).signed(), REGION, now)
            .unwrap_err(),
        AuthError::UnrecognizedClient
    );
    // A long-term key sent with a token is not a session of it.
    let alice_with_token = sign_request(
        "GET",
        "/virtualclusters",
        b"",
        (ALICE_KEY, ALICE_SECRET, Some(TEMP_TOKEN)),
        REGION,
        "emr-containers",
        now,
    );
    assert_eq!(
        ids.authenticate(&alice_with_token.signed(), REGION, now)
            .unwrap_err(),
        AuthError::UnrecognizedClient
    );
    let expired = identities("2020-01-01T00:00:00Z");
    let err = expired
        .authenticate(&temp(Some(TEMP_TOKEN)).signed(), REGION, now)
        .unwrap_err();
    assert_eq!(err.code(), "ExpiredTokenException");
}
