//! `--debug`: what the CLI does, on stderr, as the aws CLI's `--debug`
//! shows it: where credentials came from, each call with its request, the
//! server's answer, its request ID and the time it took.
//!
//! Never a secret: no secret key, session token, bearer token or signature
//! is logged, and request members that AWS's model marks sensitive (entry
//! points and their arguments, Spark parameters, configuration property
//! values) are replaced by a placeholder, because they often carry
//! passwords. The signer's own tracing is kept at `info`: at `debug` it
//! logs the canonical request, whose signed headers include a session token.

use serde::Serialize;
use serde_json::Value;

/// What a hidden value is replaced with.
pub const HIDDEN: &str = "*** sensitive ***";

/// Members whose values AWS's model marks `sensitive`, and `properties`
/// (`SensitivePropertiesMap`), whose values are hidden one by one.
const SENSITIVE_MEMBERS: &[&str] = &[
    "entryPoint",
    "entryPointArguments",
    "sparkSubmitParameters",
    "sparkSqlParameters",
    "token",
];

/// Turns on debug logging to stderr for the rest of the process.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::new(
        "warn,sparkvc_cli=debug,aws_config=debug,aws_sigv4=info,tonic=debug",
    );
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true)
        .try_init();
}

/// Logs a request about to be sent, sensitive members hidden.
pub fn request<T: Serialize>(operation: &str, request: &T) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let params = serde_json::to_value(request)
        .map(redacted)
        .map(|v| v.to_string())
        .unwrap_or_default();
    tracing::debug!(operation, %params, "making request");
}

/// `value` with every sensitive member's value replaced by [`HIDDEN`].
pub fn redacted(value: Value) -> Value {
    match value {
        Value::Object(members) => Value::Object(
            members
                .into_iter()
                .map(|(name, value)| {
                    let value = if SENSITIVE_MEMBERS.contains(&name.as_str()) {
                        hide(value)
                    } else if name == "properties" {
                        match value {
                            Value::Object(props) => Value::Object(
                                props.into_iter().map(|(k, v)| (k, hide(v))).collect(),
                            ),
                            other => hide(other),
                        }
                    } else {
                        redacted(value)
                    };
                    (name, value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redacted).collect()),
        scalar => scalar,
    }
}

/// A hidden value keeps its shape (a list stays a list of the same length)
/// so that the log still shows what was sent.
fn hide(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(hide).collect()),
        Value::Null => Value::Null,
        _ => Value::String(HIDDEN.to_string()),
    }
}

/// Response headers worth showing: the gRPC outcome, the AWS error type and
/// the request ID (which the server's audit log records too).
pub fn response_headers(headers: &http::HeaderMap) -> String {
    const SHOWN: &[&str] = &[
        "grpc-status",
        "grpc-message",
        "x-amzn-errortype",
        "x-amzn-requestid",
    ];
    SHOWN
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            Some(format!("{name}={value}"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sensitive_members_are_hidden_at_any_depth_and_keep_their_shape() {
        let request = json!({
            "name": "pi",
            "jobDriver": {"sparkSubmitJobDriver": {
                "entryPoint": "s3://bucket/app.py",
                "entryPointArguments": ["--password", "hunter2"],
                "sparkSubmitParameters": "--conf spark.secret=hunter2"
            }},
            "configurationOverrides": {"applicationConfiguration": [{
                "classification": "spark-defaults",
                "properties": {"spark.hadoop.fs.s3a.secret.key": "hunter2"},
                "configurations": [{"classification": "export",
                                    "properties": {"DB_PASSWORD": "hunter2"}}]
            }]},
            "tags": {"team": "a"}
        });
        let out = redacted(request);
        let text = out.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("app.py"), "{text}");
        assert_eq!(out["name"], "pi");
        assert_eq!(out["tags"]["team"], "a");
        let driver = &out["jobDriver"]["sparkSubmitJobDriver"];
        assert_eq!(driver["entryPointArguments"], json!([HIDDEN, HIDDEN]));
        let config = &out["configurationOverrides"]["applicationConfiguration"][0];
        assert_eq!(config["classification"], "spark-defaults");
        assert_eq!(
            config["properties"]["spark.hadoop.fs.s3a.secret.key"],
            HIDDEN
        );
        assert_eq!(
            config["configurations"][0]["properties"]["DB_PASSWORD"],
            HIDDEN
        );
    }

    #[test]
    fn only_the_outcome_headers_are_shown() {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-status", "5".parse().unwrap());
        headers.insert(
            "x-amzn-errortype",
            "ResourceNotFoundException".parse().unwrap(),
        );
        headers.insert("x-amzn-requestid", "abc".parse().unwrap());
        headers.insert("set-cookie", "session=secret".parse().unwrap());
        let shown = response_headers(&headers);
        assert_eq!(
            shown,
            "grpc-status=5 x-amzn-errortype=ResourceNotFoundException x-amzn-requestid=abc"
        );
    }
}
