//! The AWS SDK configuration every AWS client of the server starts from:
//! the standard credential and region chain, `AWS_ENDPOINT_URL` honoured
//! (which is how the tests reach the local AWS stand-in), over the same
//! rustls + ring TLS stack as the rest of the server.

use aws_config::SdkConfig;
use tokio::sync::OnceCell;

/// Loaded once, on first use.
pub async fn sdk_config() -> &'static SdkConfig {
    static CONFIG: OnceCell<SdkConfig> = OnceCell::const_new();
    CONFIG
        .get_or_init(|| async {
            use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
            let http = aws_smithy_http_client::Builder::new()
                .tls_provider(Provider::Rustls(CryptoMode::Ring))
                .build_https();
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .http_client(http)
                .load()
                .await
        })
        .await
}

/// An S3 client for `config`, with path-style addressing (which every S3
/// implementation serves).
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    )
}

/// What an SDK call's error says: the service's error code and message when
/// the service answered, otherwise the transport error.
pub fn error_text<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err.as_service_error() {
        Some(service) => match (service.code(), service.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_string(),
            _ => service.to_string(),
        },
        None => {
            use std::error::Error;
            let mut text = err.to_string();
            let mut source = err.source();
            while let Some(cause) = source {
                text = format!("{text}: {cause}");
                source = cause.source();
            }
            text
        }
    }
}

/// What a caller may be told of an SDK call's failure: the service's own
/// error code and message when it answered; otherwise only that it could
/// not be reached. A transport error names the server's endpoints, addresses
/// and proxies, so it goes to the server's log instead.
pub fn error_for_client<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if err.as_service_error().is_some() {
        return error_text(err);
    }
    tracing::warn!(error = %error_text(err), "an AWS call failed before the service answered");
    "the AWS service could not be reached (the server's log has the details)".into()
}

/// `base` with the temporary credentials of `run`'s execution role, from
/// `sts:AssumeRole` (15 minutes, session `sparkvc-<run id>`). Whatever sparkvc
/// reads or writes for a run in AWS, it does with these, never with its own
/// credentials: a tenant's request must not use the server's rights.
pub async fn assume_execution_role(
    base: &SdkConfig,
    run: &sparkvc_proto::v1::JobRun,
) -> Result<SdkConfig, String> {
    let out = aws_sdk_sts::Client::new(base)
        .assume_role()
        .role_arn(&run.execution_role_arn)
        .role_session_name(format!("sparkvc-{}", run.id))
        .duration_seconds(900)
        .send()
        .await
        .map_err(|e| error_for_client(&e))?;
    let creds = out
        .credentials()
        .ok_or_else(|| "STS returned no credentials".to_string())?;
    let credentials = aws_sdk_s3::config::Credentials::new(
        creds.access_key_id(),
        creds.secret_access_key(),
        Some(creds.session_token().to_string()),
        None,
        "sparkvc-execution-role",
    );
    Ok(base
        .to_builder()
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
            credentials,
        ))
        .build())
}
