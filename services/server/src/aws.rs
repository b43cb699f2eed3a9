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
